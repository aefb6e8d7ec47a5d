//! The pages' words in Latvian and English, by key. Every key a template uses is here in both
//! languages (a test reads the templates); the words of the regulation follow the official
//! Latvian text of MK403 and the project's English digest.

use axum::http::StatusCode;

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Lv,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Lv => "lv",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "lv" => Some(Lang::Lv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

impl From<studyflow_runtime::Language> for Lang {
    fn from(l: studyflow_runtime::Language) -> Lang {
        match l {
            studyflow_runtime::Language::Lv => Lang::Lv,
            studyflow_runtime::Language::En => Lang::En,
        }
    }
}

impl From<Lang> for studyflow_runtime::Language {
    fn from(l: Lang) -> studyflow_runtime::Language {
        match l {
            Lang::Lv => studyflow_runtime::Language::Lv,
            Lang::En => studyflow_runtime::Language::En,
        }
    }
}

/// The text of `key` in `lang`, if there is one.
fn lookup(lang: Lang, key: &str) -> Option<&'static str> {
    let i = TEXTS.binary_search_by(|(k, _, _)| k.cmp(&key)).ok()?;
    Some(match lang {
        Lang::Lv => TEXTS[i].1,
        Lang::En => TEXTS[i].2,
    })
}

/// The text of `key` in `lang`; an unknown key is shown as "(text missing)" (and fails the
/// test).
pub fn text(lang: Lang, key: &str) -> &'static str {
    lookup(lang, key).unwrap_or_else(|| {
        // A key is ASCII from a template, never a data subject's.
        tracing::warn!(key, "a page's text has no translation");
        lookup(lang, "error.missing_text").unwrap_or("?")
    })
}

/// The title of an error page for `status`.
pub fn problem_title(lang: Lang, status: StatusCode) -> &'static str {
    let key = match status.as_u16() {
        400 => "error.400",
        401 => "error.401",
        403 => "error.403",
        404 => "error.404",
        405 => "error.405",
        408 => "error.408",
        410 => "error.410",
        409 => "error.409",
        413 => "error.413",
        422 => "error.422",
        429 => "error.429",
        503 => "error.503",
        _ => "error.500",
    };
    text(lang, key)
}

/// (key, Latvian, English), sorted by key (a test checks).
pub(crate) const TEXTS: &[(&str, &str, &str)] = &[
    (
        "account.at_provider",
        "Jūsu paroli un otro faktoru pārvalda dienesta identitātes nodrošinātājs: mainiet tos tur.",
        "Your password and second factor are kept by the Service's identity provider: change them there.",
    ),
    (
        "account.confirm_refused",
        "Kods neatbilst jaunajai atslēgai, vai arī pa to laiku ir izsniegta cita jauna atslēga. Otrais faktors netika mainīts; sāciet no jauna.",
        "That is not a code of the new key, or a key was given again meanwhile. Your second factor is unchanged: begin again.",
    ),
    ("account.current", "Pašreizējā parole", "Current password"),
    (
        "account.current_code",
        "Pašreizējā otrā faktora kods (6 cipari)",
        "A code of your current second factor (6 digits)",
    ),
    (
        "account.new_key_confirm",
        "Apstiprināt jauno otro faktoru",
        "Confirm the new second factor",
    ),
    (
        "account.new_key_intro",
        "Pievienojiet šo atslēgu savai autentifikācijas lietotnei un ievadiet kodu, ko rāda lietotne (10 minūšu laikā). Tad jaunā atslēga aizstās iepriekšējo otro faktoru, un jūsu sesijas citās pārlūkprogrammās tiks izbeigtas.",
        "Add this key to your authenticator app and enter the code it shows (within 10 minutes): then it replaces your second factor, and your sessions in other browsers end.",
    ),
    (
        "account.new_key_once",
        "Atslēga tiek parādīta tikai šoreiz. Līdz koda ievadīšanai derīgs ir iepriekšējais otrais faktors.",
        "The key is shown this once only. Until you enter its code, your second factor is the one you had.",
    ),
    (
        "account.password_help",
        "Jaunā parole stājas spēkā uzreiz. Jūsu sesijas citās pārlūkprogrammās tiek izbeigtas, un šī tiek atjaunota; komandrindu piekļuves marķieri paliek derīgi, ja vien neizvēlaties tos atsaukt.",
        "The new password takes effect at once. Your sessions in other browsers end and this one is renewed; your command lines' tokens stay unless you choose to revoke them.",
    ),
    (
        "account.password_submit",
        "Mainīt paroli",
        "Change password",
    ),
    (
        "account.password_title",
        "Paroles maiņa",
        "Change your password",
    ),
    (
        "account.proven",
        "Identitāte pēdējoreiz apliecināta",
        "Identity last proven",
    ),
    (
        "account.provider",
        "Identitātes nodrošinātājs un lietotāja identifikators",
        "Identity provider and subject",
    ),
    (
        "account.refused",
        "Atteikts: nepareiza parole vai kods, vai pārāk daudz neveiksmīgu mēģinājumu (tad jāgaida 15 minūtes). Nekas netika mainīts.",
        "Refused: wrong password or code, or too many failed attempts (then wait 15 minutes). Nothing was changed.",
    ),
    (
        "account.revoke_tokens",
        "Atsaukt arī manu komandrindu piekļuves marķierus (ja kāds no tiem varētu būt nonācis svešās rokās)",
        "Revoke my command lines' tokens too (if any of them may be in someone else's hands)",
    ),
    (
        "account.same",
        "Jaunajai parolei jāatšķiras no pašreizējās; nekas netika mainīts.",
        "The new password must differ from the current one; nothing was changed.",
    ),
    (
        "account.second_factor_help",
        "Piemēram, ja pārejat uz jaunu tālruni. Jums tiks parādīta jauna atslēga; līdz tās koda ievadīšanai pierakstieties ar pašreizējo otro faktoru.",
        "For a new phone, say. You are shown a new key; until you enter a code of it, you sign in with the one you have.",
    ),
    (
        "account.second_factor_submit",
        "Saņemt jaunu atslēgu",
        "Get a new key",
    ),
    (
        "account.second_factor_title",
        "Otrā faktora nomaiņa",
        "Replace your second factor",
    ),
    ("account.title", "Mans konts", "My account"),
    (
        "account.tokens",
        "Komandrindas, kas rīkojas jūsu vārdā",
        "Command lines acting as you",
    ),
    (
        "account.wrong_code",
        "Kods neatbilst jaunajai atslēgai. Ievadiet kodu, ko lietotne rāda tagad šai atslēgai; pēc vairākiem nepareiziem kodiem atslēga tiek atmesta un konts uz laiku bloķēts.",
        "That is not a code of the new key. Type the code the app shows now for it; after several wrong codes the key is dropped and the account locked for a while.",
    ),
    ("act.concluded_on", "Noslēgšanas datums", "Concluded on"),
    (
        "act.contact_key",
        "Jūsu atslēga kontaktu sarakstam",
        "Your key for the contact list",
    ),
    (
        "act.contact_key_help",
        "Datu subjektu, kas piekrituši saziņai, kontaktinformāciju jums nodod tikai šifrētu ar jūsu age publisko atslēgu (MK403 32. p.). Izveidojiet atslēgu pāri ar age-keygen un ielīmējiet šeit publisko atslēgu (age1…); privāto atslēgu glabājiet pie sevis. Jauna atslēga aizstāj iepriekšējo.",
        "The contact details of the data subjects who consented to contact reach you only encrypted to your age public key (MK403 p.32). Make a key pair with age-keygen and paste the public key (age1…) here; keep the private key to yourself. A new key replaces the one before.",
    ),
    (
        "act.contact_key_label",
        "age publiskā atslēga",
        "age public key",
    ),
    ("act.contact_key_submit", "Iesniegt atslēgu", "Give the key"),
    (
        "act.contract",
        "Līgums ar pētījuma izstrādātāju",
        "The contract with the external researcher",
    ),
    (
        "act.contract_submit",
        "Ierakstīt līgumu",
        "Record the contract",
    ),
    (
        "act.measures",
        "Drošības pasākumi pārbaudīti (MK403 33. p.)",
        "Security measures checked (MK403 p.33)",
    ),
    (
        "act.proof_refused",
        "Parole vai kods nav pareizs; nekas netika darīts.",
        "The password or code was wrong; nothing was done.",
    ),
    (
        "act.signatories_help",
        "Ierakstiet katru apliecinājuma par informācijas neizpaušanu parakstītāju atsevišķā rindā tā, kā viņš norādīts pētījuma komandā (MK403 30.2. p.).",
        "Each signatory of a non-disclosure declaration on a line of its own, as named in the team (MK403 p.30.2).",
    ),
    ("act.start", "Sākt pētījumu", "Start the study"),
    (
        "act.start_help",
        "Sāk apstiprinātā plāna izpildi: informācijas ieguvi, apvienošanu un termiņu uzskaiti (MK403 21., 22. p.).",
        "Starts the approved plan: data acquisition, linkage and the deadlines (MK403 p.21, p.22).",
    ),
    ("act.terminate", "Pārtraukt pētījumu", "End the study"),
    (
        "act.terminate_help",
        "Neizpildītās darbības tiek atceltas, visi identificējošie dati tiek neatgriezeniski dzēsti, un pētījuma atslēgas tiek iznīcinātas (MK403 26. p.).",
        "What was not done is cancelled, and all identifying data and the study's keys are destroyed for good (MK403 p.26).",
    ),
    (
        "act.terminate_understood",
        "Saprotu, ka identificējošie dati tiks neatgriezeniski dzēsti un to nevarēs atsaukt",
        "I understand that the identifying data is destroyed and this cannot be undone",
    ),
    (
        "act.terminate_understood_missing",
        "Atzīmējiet, ka saprotat: identificējošie dati tiks neatgriezeniski dzēsti.",
        "Tick that you understand that the identifying data is destroyed.",
    ),
    ("act.title", "Darbības", "Acts"),
    ("activity.cancelled", "atcelts", "cancelled"),
    ("activity.done", "izpildīts", "done"),
    ("activity.failed", "neizdevās", "failed"),
    ("activity.pending", "gaida iepriekšējos soļus", "pending"),
    ("activity.ready", "gatavs", "ready"),
    ("activity.retrying", "atkārto", "retrying"),
    ("activity.running", "notiek", "running"),
    ("activity.task open", "uzdevums atvērts", "task open"),
    ("activity.timer", "gaida termiņu", "timer"),
    ("activity.waiting", "gaida atbildi", "waiting"),
    ("actor.approver", "apstiprinātājs", "the approver"),
    (
        "actor.engine",
        "studyflow (automātiski)",
        "studyflow (automatically)",
    ),
    (
        "actor.external_researcher",
        "pētījuma izstrādātājs",
        "the external researcher",
    ),
    (
        "actor.information_centre",
        "Informācijas centrs",
        "the Information Centre",
    ),
    (
        "actor.prison_administration",
        "Ieslodzījuma vietu pārvalde",
        "the Prison Administration",
    ),
    (
        "actor.service_researcher",
        "dienesta pētnieks",
        "a service researcher",
    ),
    ("approve.added", "pievienots", "added"),
    ("approve.after", "Pēc", "After"),
    (
        "approve.amendment",
        "Ko groza salīdzinājumā ar spēkā esošo versiju",
        "What it amends against the version in force,",
    ),
    (
        "approve.amendment_help",
        "Grozījums jāapstiprina atsevišķi (MK403 3. p.); spēkā esošās versijas plāns:",
        "An amendment needs its own approval (MK403 p.3); the plan in force:",
    ),
    ("approve.approve", "Apstiprināt plānu", "Approve plan"),
    ("approve.before", "Pirms", "Before"),
    ("approve.change", "Izmaiņas", "Change"),
    ("approve.data_in", "Dati ienāk", "Data in"),
    ("approve.data_out", "Dati iziet", "Data out"),
    ("approve.decide", "Lēmums", "Decision"),
    ("approve.graph", "Plāns kā grafs:", "The plan as a graph:"),
    (
        "approve.graph_help",
        "Katrs solis zem tiem, ko tas gaida; krāsa un vārds norāda datu klasi, ko solis nodod; raustīta līnija — tikai secība; biezs rāmis un „uzdevums” — cilvēka uzdevums. Tā pati informācija ir tabulā zemāk.",
        "Each step below the steps it waits for; colour and word name the class of data it gives; a dashed line is order only; a thick frame and “task” mark a person's task. The same as the table below.",
    ),
    ("approve.legend", "Datu klase:", "Data class:"),
    ("approve.new_line", "Jaunā rinda", "New line"),
    ("approve.no_warnings", "Brīdinājumu nav.", "No warnings."),
    (
        "approve.not_yours",
        "Šo versiju apstiprina pētījumā norādīts apstiprinātājs, kurš to nav iesniedzis (MK403 3. p.).",
        "This version is approved by an approver named in the study who did not submit it (MK403 p.3).",
    ),
    ("approve.old_line", "Vecā rinda", "Old line"),
    (
        "approve.plan_changes",
        "Plāna izmaiņas",
        "Changes to the plan",
    ),
    (
        "approve.plan_same",
        "Plāna soļi, datu klases un termiņi nemainās.",
        "The plan's steps, data classes and deadlines do not change.",
    ),
    ("approve.points", "MK403 punkti", "MK403 points"),
    (
        "approve.reason",
        "Iemesls (iesniedzējam)",
        "Reason (for the submitter)",
    ),
    (
        "approve.reason_help",
        "Nenorādiet datu subjektu personas datus; personas kodi tiek aizklāti. Iemesls tiek ierakstīts pētījuma audita žurnālā.",
        "No personal data of data subjects; personal codes are masked. The reason is kept in the study's audit.",
    ),
    (
        "approve.reauth",
        "Lai apstiprinātu, vēlreiz aplieciniet savu identitāti ar paroli un kodu.",
        "To approve, prove who you are again: password and code.",
    ),
    (
        "approve.reauth_provider",
        "Lai apstiprinātu, jums jābūt pierakstījušamies pie identitātes nodrošinātāja pēdējo 5 minūšu laikā; ja tā nav, pierakstieties no jauna.",
        "To approve you must have signed in at the identity provider within the last 5 minutes; if not, sign in again.",
    ),
    ("approve.refuse", "Neapstiprināt", "Refuse"),
    (
        "approve.refuse_title",
        "Vai arī neapstiprināt, norādot iemeslu",
        "Or refuse, with a reason",
    ),
    ("approve.removed", "izņemts", "removed"),
    (
        "approve.steps",
        "Plāna soļi un datu klases",
        "The plan's steps and data classes",
    ),
    (
        "approve.steps_help",
        "Katrs solis ar datu klasi, ko tas saņem un nodod, un MK403 punktiem, uz kuriem tas balstās.",
        "Each step with the class of data it takes and gives, and the MK403 points it rests on.",
    ),
    ("approve.submitted_by", "Iesniedza", "Submitted by"),
    ("approve.task", "uzdevums", "task"),
    ("approve.text", "Teksts", "Text"),
    (
        "approve.text_changes",
        "Specifikācijas teksta izmaiņas",
        "Changes to the spec's text",
    ),
    ("approve.title", "Apstiprināšana:", "Approval:"),
    ("approve.version", "Versija", "Version"),
    ("approve.warnings", "Brīdinājumi", "Warnings"),
    ("approve.what", "Ko dara", "What it does"),
    ("audit.action", "Darbība", "Action"),
    ("audit.actor", "Kas", "Who"),
    ("audit.at", "Kad", "When"),
    (
        "audit.broken",
        "Audita žurnāls IR BOJĀTS: pirmais ieraksts, kas neiztur pārbaudi",
        "The audit log is NOT intact: the first entry that does not verify",
    ),
    (
        "audit.caption",
        "Notikumi, sākot ar vecākajiem",
        "Events, oldest first",
    ),
    (
        "audit.checkpoint",
        "Pēdējais parakstītais kontrolpunkts",
        "The latest signed checkpoint",
    ),
    (
        "audit.checkpoints",
        "parakstīti kontrolpunkti",
        "signed checkpoints",
    ),
    ("audit.detail", "Sīkāk", "Detail"),
    (
        "audit.erased",
        "dzēsts pēc glabāšanas termiņa",
        "erased after its retention period",
    ),
    (
        "audit.export",
        "Eksportēt (JSON Lines)",
        "Export (JSON Lines)",
    ),
    ("audit.from", "No", "From"),
    (
        "audit.help",
        "Visas darbības ar pētījumu un katra tā datu nolasīšana, norādot, kas to veica (MK403 25.3. un 25.5. p.). To redz tikai pētījumā iesaistītie dienesta nodarbinātie.",
        "Every act on the study and every read of its data, with who did it (MK403 p.25.3, p.25.5). Only the Service's persons of the study see it.",
    ),
    (
        "audit.intact",
        "Audita žurnāls ir nebojāts",
        "The audit log is intact",
    ),
    (
        "audit.none",
        "Nav notikumu, kas atbilst atlasei.",
        "No events match.",
    ),
    ("audit.object", "Par ko", "About"),
    (
        "audit.pending",
        "reģistrēti notikumi, kas vēl nav iekļauti ķēdē",
        "events recorded, not sealed into the chain yet",
    ),
    ("audit.rows", "ieraksti", "entries"),
    ("audit.title", "Audits", "Audit"),
    (
        "audit.unsealed",
        "Auditu pašlaik nevar noslēgt: darbības tiek ierakstītas un gaida, kad tās iekļaus parakstītajā žurnālā. Paziņojiet operatoram (iemeslu var noskaidrot ar komandu `studyflow status`).",
        "The audit cannot be sealed at the moment: acts are recorded and wait to be included in the signed log. Tell the operator (who sees why with `studyflow status`).",
    ),
    (
        "audit.unsigned",
        "paraksti nav pārbaudīti: šai instalācijai nav audita atslēgas",
        "signatures not checked: this installation has no audit key",
    ),
    ("audit.until", "Līdz", "Until"),
    ("audit.verify", "Pārbaudīt žurnālu", "Verify the log"),
    (
        "audit.verify_help",
        "Pārbauda visu žurnālu: ķēdi, Merkle koku un parakstītos kontrolpunktus ar instalācijas publisko atslēgu un kontrolpunktu žurnālu ārpus datubāzes.",
        "Checks the whole log: the chain, the Merkle tree and the signed checkpoints with the installation's public key and the checkpoint log outside the database.",
    ),
    (
        "calendar.answer_after",
        "(10. darbdiena pirms publicēšanas, MK403 8. p.).",
        "(the 10th working day before publication, MK403 p.8).",
    ),
    (
        "calendar.answer_before",
        "Ja publicējam",
        "If we publish on",
    ),
    (
        "calendar.answer_middle",
        ", Ieslodzījuma vietu pārvalde ar rezultātiem jāiepazīstina ne vēlāk kā",
        ", the Prison Administration must have the results by",
    ),
    (
        "calendar.bad_date",
        "Ievadiet publicēšanas datumu formātā GGGG-MM-DD (no 2000. līdz 2100. gadam).",
        "Write the publication day as YYYY-MM-DD, from 2000 to 2100.",
    ),
    (
        "calendar.caption",
        "Dienas no publicēšanas atpakaļ",
        "The days from publication backwards",
    ),
    ("calendar.count", "Skaitīt", "Count"),
    ("calendar.counted", "Darbdiena Nr.", "Working day no."),
    ("calendar.data", "Kalendāra dati:", "Calendar data:"),
    ("calendar.day", "Diena", "Day"),
    (
        "calendar.help",
        "Ieslodzījuma vietu pārvaldi iepazīstina ar pētījuma rezultātiem ne vēlāk kā 10 darbdienas pirms to publicēšanas (MK403 8. p.). Netiek skaitītas brīvdienas, svētku dienas un darbdienas, kas pārceltas uz sestdienu; sestdiena, kurā jāstrādā, tiek skaitīta.",
        "The Prison Administration is told of the results no later than 10 working days before publication (MK403 p.8). Weekends, holidays and weekdays whose work moved to a Saturday are not counted; a Saturday worked in their place is.",
    ),
    (
        "calendar.publish_on",
        "Publicēšanas diena",
        "Publication day",
    ),
    ("calendar.title", "Paziņojuma termiņš", "Notice deadline"),
    ("calendar.why", "Kāpēc neskaita", "Why not counted"),
    ("class.anonymised", "anonimizēti", "anonymised"),
    ("class.contact", "kontaktinformācija", "contact details"),
    ("class.identifying", "identificējoši", "identifying"),
    ("class.none", "bez personas datiem", "no personal data"),
    ("class.pseudonymised", "pseidonimizēti", "pseudonymised"),
    ("continue.go", "Turpināt", "Continue"),
    (
        "continue.title",
        "Pierakstīšanās ir izdevusies",
        "You are signed in",
    ),
    (
        "device.approve",
        "Atļaut un izsniegt personīgo piekļuves marķieri",
        "Approve and issue a personal token",
    ),
    (
        "device.approved",
        "Atļauts. Komandrinda saņems jūsu personīgo piekļuves marķieri; atgriezieties komandrindā.",
        "Approved. The command line receives your personal token; go back to it.",
    ),
    (
        "device.check",
        "Komandrinda lūdz atļauju pierakstīties jūsu vārdā. Atļaujiet to tikai tad, ja komandu palaidāt jūs un kods sakrīt ar komandrindā redzamo.",
        "A command line asks to sign in as you. Approve it only if you started it and the code is the one it shows.",
    ),
    (
        "device.client",
        "Adrese, no kuras nosūtīts pieprasījums",
        "Asked from the address",
    ),
    ("device.code", "Kods", "Code"),
    (
        "device.code_expires",
        "Kods derīgs līdz",
        "The code is valid until",
    ),
    (
        "device.code_help",
        "Astoņi burti, ko rāda komanda `studyflow login --device`, piemēram, BCDF-GHJK.",
        "The eight letters that `studyflow login --device` shows, such as BCDF-GHJK.",
    ),
    ("device.continue", "Turpināt", "Continue"),
    (
        "device.denied",
        "Atteikts. Komandrinda piekļuves marķieri nesaņems.",
        "Denied. The command line gets no token.",
    ),
    ("device.deny", "Atteikt", "Deny"),
    ("device.expires", "Derīgs līdz", "Valid until"),
    (
        "device.help",
        "Ievadiet kodu, ko rāda jūsu komandrinda, lai tā varētu rīkoties jūsu vārdā ar personīgo piekļuves marķieri.",
        "Enter the code your command line shows, so that it can act as you with a personal token.",
    ),
    (
        "device.label",
        "Piekļuves marķiera nosaukums",
        "The token's name",
    ),
    (
        "device.named",
        "Nosaukums, ko devusi komandrinda",
        "The name the command line gave",
    ),
    ("device.requested", "Pieprasījuma laiks", "Asked at"),
    (
        "device.title",
        "Komandrindas pierakstīšanās",
        "A command line's sign-in",
    ),
    (
        "device.token_until",
        "Piekļuves marķieris būs derīgs aptuveni līdz",
        "The token would be valid until about",
    ),
    (
        "device.unknown",
        "Ar šo kodu nav gaidoša pierakstīšanās pieprasījuma: kods ievadīts kļūdaini, par to jau pieņemts lēmums vai tas ir vecāks par 10 minūtēm.",
        "No sign-in waits for this code: it is mistyped, decided already or older than 10 minutes.",
    ),
    (
        "device.warning",
        "Piekļuves marķieris ļauj komandrindai darīt visu, ko drīkstat darīt jūs, līdz tā derīguma termiņa beigām vai atsaukšanai.",
        "The token lets the command line do everything you may, until it expires or is revoked.",
    ),
    ("diff.actor", "Kas izpilda", "Who acts"),
    ("diff.data_in", "Dati ienāk", "Data in"),
    ("diff.data_out", "Dati iziet", "Data out"),
    ("diff.deadline", "Termiņš", "Deadline"),
    ("diff.fields", "Lauki", "Fields"),
    ("diff.regulation", "MK403 punkti", "MK403 points"),
    ("diff.title", "Nosaukums", "Title"),
    (
        "done.approved",
        "Plāns apstiprināts.",
        "The plan is approved.",
    ),
    (
        "done.completed",
        "Uzdevums izpildīts.",
        "The task is completed.",
    ),
    (
        "done.contact_key",
        "Atslēga saņemta: kontaktu sarakstu šifrēs arī jums.",
        "The key is taken: the contact list is encrypted to you too.",
    ),
    (
        "done.contracted",
        "Līgums ierakstīts.",
        "The contract is recorded.",
    ),
    (
        "done.password",
        "Parole nomainīta. Jūsu sesijas citās pārlūkprogrammās ir izbeigtas (un komandrindu piekļuves marķieri, ja to izvēlējāties); šī sesija ir atjaunota.",
        "Password changed. Your sessions in other browsers have ended (and your command lines' tokens, if you chose so); this one was renewed.",
    ),
    (
        "done.refused",
        "Versija nav apstiprināta; iemesls ir pētījuma audita žurnālā.",
        "The version is refused; the reason is in the study's audit.",
    ),
    (
        "done.revoked",
        "Piekļuves marķieris atsaukts: komandrinda ar to vairs nevar rīkoties.",
        "Token revoked: the command line can no longer act with it.",
    ),
    (
        "done.second_factor",
        "Otrais faktors nomainīts. Jūsu sesijas citās pārlūkprogrammās ir izbeigtas (un komandrindu piekļuves marķieri, ja to izvēlējāties); šī sesija ir atjaunota.",
        "Second factor replaced. Your sessions in other browsers have ended (and your command lines' tokens, if you chose so); this one was renewed.",
    ),
    ("done.started", "Pētījums sākts.", "The study is started."),
    (
        "done.submitted",
        "Pētījums iesniegts apstiprināšanai.",
        "The study is submitted for approval.",
    ),
    (
        "done.supplied",
        "Fails pieņemts: tas tiks importēts, kad atzīmēsiet uzdevumu kā izpildītu.",
        "The file is accepted: it is imported when you mark the task done.",
    ),
    (
        "done.terminated",
        "Pētījums pārtraukts; identificējošos datus neatgriezeniski dzēsīs studyflow fona process, kad tas nākamreiz darbosies (MK403 26. p.).",
        "The study is ended; the next worker destroys its identifying data (MK403 p.26).",
    ),
    (
        "enrol.again",
        "Jaunā parole vēlreiz",
        "The new password again",
    ),
    ("enrol.code", "Reģistrācijas kods", "Enrolment code"),
    (
        "enrol.code_help",
        "Vienreizējais kods, ko jums izsniedzis sistēmas operators (sešas četru rakstzīmju grupas).",
        "The one-time code the operator gave you (six groups of four characters).",
    ),
    (
        "enrol.confirm_refused",
        "Lietotnes kods neatbilda atslēgai, vai arī reģistrācija pa to laiku tika sākta vēlreiz. Sāciet no jauna — tiks parādīta jauna atslēga.",
        "The app's code did not match, or the enrolment was begun again; begin again: a new key will be shown.",
    ),
    (
        "enrol.differ",
        "Abas paroles nesakrīt; nekas netika mainīts.",
        "The two passwords differ; nothing was changed.",
    ),
    (
        "enrol.intro",
        "Izvēlieties paroli un iestatiet otro faktoru; operatoram tie nebūs zināmi.",
        "Choose your own password and get your second factor: the operator knows neither.",
    ),
    ("enrol.password", "Jaunā parole", "New password"),
    (
        "enrol.password_help",
        "Vismaz 12 rakstzīmes; garāka frāze ir labāka.",
        "At least 12 characters; a longer phrase is better.",
    ),
    (
        "enrol.refused",
        "Reģistrācija atteikta: nepareizs lietotājvārds vai kods, kods jau izmantots vai tā derīguma termiņš beidzies, vai pārāk daudz neveiksmīgu mēģinājumu (tad jāgaida 15 minūtes). Operators var izsniegt jaunu kodu.",
        "Enrolment refused: wrong login or code, a code spent or run out, or too many failed attempts (then wait 15 minutes). The operator can give you a new code.",
    ),
    (
        "enrol.short",
        "Parolē jābūt vismaz 12 rakstzīmēm; nekas netika mainīts.",
        "A password has at least 12 characters; nothing was changed.",
    ),
    ("enrol.submit", "Reģistrēties", "Enrol"),
    (
        "enrol.title",
        "Pirmā pierakstīšanās: reģistrācija",
        "First sign-in: enrolment",
    ),
    (
        "enrolled.confirm",
        "Apstiprināt un pabeigt reģistrāciju",
        "Confirm and finish enrolling",
    ),
    (
        "enrolled.confirm_help",
        "Kods, ko lietotne rāda tagad šai atslēgai: tas apliecina, ka atslēga ir saglabāta.",
        "The code the app shows now for this key: it proves the key is kept.",
    ),
    (
        "enrolled.intro",
        "Pievienojiet šo atslēgu savai autentifikācijas lietotnei (ievadot to vai tālrunī atverot saiti) un ievadiet kodu, ko rāda lietotne. Tad parole un otrais faktors stāsies spēkā.",
        "Add this key to your authenticator app (typed in, or by opening the link on your phone) and enter the code it shows: then your password and second factor take effect.",
    ),
    ("enrolled.key", "Atslēga", "Key"),
    (
        "enrolled.once",
        "Atslēga tiek parādīta tikai šoreiz. Ja tā tiek pazaudēta, operators var izsniegt jaunu reģistrācijas kodu.",
        "The key is shown this once only. If it is lost, the operator can give you a new enrolment code.",
    ),
    ("enrolled.title", "Otrais faktors", "Your second factor"),
    ("enrolled.uri", "Saite lietotnei", "Link for the app"),
    ("error.400", "Nepareizs pieprasījums", "Bad request"),
    ("error.401", "Nepieciešama pierakstīšanās", "Sign-in needed"),
    ("error.403", "Nav atļauts", "Not allowed"),
    ("error.404", "Nav atrasts", "Not found"),
    ("error.405", "Metode nav atļauta", "Not this way"),
    (
        "error.408",
        "Fails nepienāca laikā",
        "The file did not arrive in time",
    ),
    ("error.409", "Darbību nevar izpildīt", "Cannot be done"),
    ("error.410", "Vairs nav pieejams", "Gone"),
    ("error.413", "Pārāk liels", "Too large"),
    ("error.422", "Nederīgi dati", "Not valid"),
    ("error.429", "Pārāk daudz mēģinājumu", "Too many attempts"),
    ("error.500", "Kļūda serverī", "Server error"),
    (
        "error.503",
        "Pagaidām nav pieejams",
        "Not available for now",
    ),
    ("error.back", "Atpakaļ uz pētījumiem", "Back to the studies"),
    (
        "error.generic",
        "Pieprasījumu nevarēja izpildīt.",
        "The request could not be served.",
    ),
    ("error.missing_text", "(teksts trūkst)", "(text missing)"),
    (
        "footer.text",
        "studyflow — Valsts probācijas dienesta pētījumi saskaņā ar MK noteikumiem Nr. 403 (2025).",
        "studyflow — the State Probation Service's research studies under Cabinet Regulation No. 403 (2025).",
    ),
    ("nav.account", "Mans konts", "My account"),
    ("nav.calendar", "Termiņi", "Deadlines"),
    ("nav.label", "Galvenā izvēlne", "Main menu"),
    ("nav.sign_out", "Izrakstīties", "Sign out"),
    ("nav.signed_in_as", "Konts:", "Signed in:"),
    ("nav.skip", "Pāriet uz saturu", "Skip to content"),
    ("nav.studies", "Pētījumi", "Studies"),
    ("nav.submit", "Iesniegt", "Submit"),
    ("nav.tasks", "Mani uzdevumi", "My tasks"),
    ("nav.tokens", "Komandrindas", "Command lines"),
    ("nav.validate", "Pārbaudīt specifikāciju", "Validate a spec"),
    (
        "reauth.help",
        "Šai darbībai identitāte jāapliecina atkārtoti (pēdējo 5 minūšu laikā, MK403 25.3. p.).",
        "This needs a fresh proof of who you are (within the last 5 minutes, MK403 p.25.3).",
    ),
    (
        "reauth.submit",
        "Apliecināt un turpināt",
        "Prove it and go on",
    ),
    (
        "reauth.title",
        "Vēlreiz aplieciniet savu identitāti",
        "Prove who you are again",
    ),
    ("severity.error", "kļūda", "error"),
    ("severity.note", "piezīme", "note"),
    ("severity.warning", "brīdinājums", "warning"),
    ("sign_in.code", "Kods (6 cipari)", "Code (6 digits)"),
    (
        "sign_in.code_help",
        "Kods no autentifikācijas lietotnes.",
        "The code from your authenticator app.",
    ),
    (
        "sign_in.enrol",
        "Pirmo reizi? Reģistrējieties ar operatora izsniegto kodu",
        "First time? Enrol with the code the operator gave you",
    ),
    (
        "sign_in.enrolled",
        "Reģistrācija pabeigta: pierakstieties ar savu paroli un lietotnes kodu.",
        "Enrolled: sign in with your password and the app's code.",
    ),
    ("sign_in.login", "Lietotājvārds", "Login"),
    (
        "sign_in.or_local",
        "Vai ar vietējo kontu:",
        "Or with a local account:",
    ),
    ("sign_in.password", "Parole", "Password"),
    (
        "sign_in.provider",
        "Pierakstīties, izmantojot dienesta identitātes nodrošinātāju",
        "Sign in at the Service's identity provider",
    ),
    (
        "sign_in.refused",
        "Pierakstīšanās atteikta: nepareizs lietotājvārds, parole vai kods, vai pārāk daudz neveiksmīgu mēģinājumu (tad jāgaida 15 minūtes).",
        "Sign-in refused: wrong login, password or code, or too many failed attempts (then wait 15 minutes).",
    ),
    ("sign_in.submit", "Pierakstīties", "Sign in"),
    ("sign_in.title", "Pierakstīšanās", "Sign in"),
    (
        "signed_out.provider",
        "Izrakstīties arī pie identitātes nodrošinātāja",
        "Sign out at the identity provider too",
    ),
    (
        "signed_out.text",
        "Jūsu sesija šajā vietnē ir beigusies.",
        "Your session here has ended.",
    ),
    (
        "signed_out.title",
        "Izrakstīšanās ir pabeigta",
        "You are signed out",
    ),
    ("state.approved", "apstiprināts", "approved"),
    ("state.completed", "pabeigts", "completed"),
    ("state.contracted", "līgums noslēgts", "contracted"),
    ("state.running", "notiek", "running"),
    ("state.submitted", "iesniegts", "submitted"),
    ("state.terminated", "pārtraukts", "terminated"),
    ("studies.any_state", "jebkurš", "any"),
    (
        "studies.caption",
        "Pētījumi, kuros jūs piedalāties",
        "The studies you take part in",
    ),
    ("studies.filter", "Atlasīt", "Filter"),
    ("studies.filter_state", "Stāvoklis", "State"),
    (
        "studies.mine",
        "tikai ar maniem uzdevumiem",
        "only with tasks of mine",
    ),
    ("studies.my_tasks", "Mani uzdevumi", "My tasks"),
    ("studies.next_deadline", "Nākamais termiņš", "Next deadline"),
    (
        "studies.none",
        "Jūs nepiedalāties nevienā pētījumā.",
        "There are no studies you take part in.",
    ),
    ("studies.overdue", "Nokavēti", "Overdue"),
    ("studies.state", "Stāvoklis", "State"),
    ("studies.study", "Pētījums", "Study"),
    ("studies.title", "Pētījumi", "Studies"),
    ("studies.version", "Spēkā esošā versija", "Version in force"),
    ("study.activity", "Stāvoklis", "State"),
    ("study.approved_by", "Apstiprināja", "Approved by"),
    (
        "study.contract",
        "Līgums ar pētījuma izstrādātāju (MK403 30. p.)",
        "The contract with the external researcher (MK403 p.30)",
    ),
    (
        "study.contract_number",
        "Numurs un datums",
        "Number and date",
    ),
    (
        "study.declarations",
        "Apliecinājumi par informācijas neizpaušanu",
        "Non-disclosure declarations",
    ),
    ("study.due", "Termiņš", "Due"),
    ("study.following", "Nākamā", "Next"),
    (
        "study.graph",
        "Plāns kā grafs: versija",
        "The plan as a graph: version",
    ),
    (
        "study.graph_help",
        "Katrs solis zem tiem, ko tas gaida; krāsa un vārds norāda datu klasi, ko solis nodod; raustīta līnija — tikai secība; biezs rāmis un „uzdevums” — cilvēka uzdevums. Ko versija groza salīdzinājumā ar iepriekš apstiprināto (katrs grozījums jāapstiprina atsevišķi, MK403 3. p.):",
        "Each step below the steps it waits for; colour and word name the class of data it gives; a dashed line is order only; a thick frame and “task” mark a person's task. What the version changes against the one approved before it (each amendment is approved on its own, MK403 p.3):",
    ),
    ("study.late", "nokavēts", "late"),
    ("study.latest_version", "Jaunākā versija", "Latest version"),
    (
        "study.measures",
        "Drošības pasākumi pārbaudīti",
        "Security measures checked",
    ),
    ("study.next", "Nākamais", "Next"),
    ("study.no", "nē", "no"),
    (
        "study.no_releases",
        "Datu kopas vēl nav nodotas.",
        "No dataset has been released yet.",
    ),
    (
        "study.no_steps",
        "Pētījums vēl nav sākts.",
        "The study has not started.",
    ),
    (
        "study.not_approved",
        "vēl nav apstiprināts",
        "not approved yet",
    ),
    ("study.open_runs", "Atvērti", "Open"),
    ("study.overdue", "Nokavētie termiņi", "Overdue deadlines"),
    ("study.page", "Lapa", "Page"),
    ("study.pages", "Lapas", "Pages"),
    ("study.past", "pagājis", "past"),
    ("study.per_subject", "katram datu subjektam", "per subject"),
    ("study.plan_hash", "Plāna jaucējkods", "Plan hash"),
    ("study.previous", "Iepriekšējā", "Previous"),
    ("study.recorded_by", "Ierakstīja", "Recorded by"),
    ("study.release", "Nodošana", "Release"),
    (
        "study.release_contacts",
        "kontaktu saraksts (MK403 32. p.)",
        "the contact list (MK403 p.32)",
    ),
    (
        "study.release_not_yours",
        "tikai tās saņēmējiem",
        "for its recipients only",
    ),
    ("study.releases", "Nodotās datu kopas", "Released datasets"),
    (
        "study.review",
        "Izskatīt apstiprināšanai",
        "Review for approval",
    ),
    ("study.rule", "Noteikums", "Rule"),
    (
        "study.running_version",
        "Izpildē esošā versija",
        "Running version",
    ),
    ("study.runs", "Izpildes", "Runs"),
    ("study.step", "Solis", "Step"),
    ("study.steps", "Soļi", "Steps"),
    ("study.timeline", "Laika grafiks", "Timeline"),
    (
        "study.timeline_help",
        "Plāna termiņi pēc kārtas: posmi, atkārtotie pieprasījumi, Ieslodzījuma vietu pārvaldes iepazīstināšana ar rezultātiem (MK403 8. p.), publicēšana. Šodien:",
        "The plan's deadlines in order: phases, follow-up waves, the notice to the Prison Administration (MK403 p.8), publication. Today:",
    ),
    ("study.title", "Pētījums", "Study"),
    ("study.versions", "Versijas", "Versions"),
    ("study.when", "Kad", "When"),
    ("study.yes", "jā", "yes"),
    (
        "submit.help",
        "Ielīmējiet pētījuma specifikāciju (YAML). Tā tiks pārbaudīta pilnībā un, ja būs derīga, iesniegta apstiprināšanai.",
        "Paste the study's spec (YAML). It is checked whole; a valid one is submitted for approval.",
    ),
    (
        "submit.refused",
        "Nav iesniegts: specifikācija nav derīga",
        "Not submitted: the spec is not valid",
    ),
    ("submit.submit", "Iesniegt", "Submit"),
    ("submit.title", "Iesniegt pētījumu", "Submit a study"),
    (
        "task.awaiting_file",
        "Uzdevums ir izpildīts; tas gaida tikai failu, kas jānosūta šeit. Kad tas pieņemts, sistēma to importē uzreiz.",
        "The task is done; it waits only for the file to send here. Once it is accepted, the engine imports it at once.",
    ),
    ("task.column", "Kolonna", "Column"),
    (
        "task.columns",
        "Kolonnas, kuras drīkst norādīt galvenē:",
        "The columns its header may name:",
    ),
    ("task.complete", "Pabeigt uzdevumu", "Finish the task"),
    (
        "task.date_order",
        "Datumi nepareizā secībā",
        "Dates out of order",
    ),
    ("task.duplicates", "dublikāti", "duplicates"),
    (
        "task.fields",
        "Lauki, kurus drīkst norādīt rindās (objektos):",
        "The fields its rows (objects) may name:",
    ),
    (
        "task.file",
        "Fails (CSV ar galvenes rindu)",
        "File (CSV with a header row)",
    ),
    (
        "task.file_help",
        "Fails pirms pieņemšanas tiek pārbaudīts pilnībā; ja kaut viena rinda nav derīga, netiek saglabāts nekas.",
        "It is checked whole before it is taken; if any row is wrong, nothing of it is kept.",
    ),
    (
        "task.file_json",
        "Fails (iestādes atbilde JSON: objektu masīvs, viens katrai rindai)",
        "File (the institution's answer as JSON: an array of objects, one per row)",
    ),
    ("task.guide", "Kas jādara", "What to do"),
    (
        "task.impossible",
        "Neiespējamas vērtības",
        "Impossible values",
    ),
    ("task.missing", "Trūkst", "Missing"),
    ("task.no_findings", "Nav atradumu.", "No findings."),
    (
        "task.out_of_domain",
        "Ārpus pieļaujamo vērtību robežām",
        "Outside their domain",
    ),
    ("task.prepared", "Sagatavotie faili", "Prepared files"),
    (
        "task.prepared_help",
        "Ko sistēma sagatavoja šim uzdevumam; katra lejupielāde tiek reģistrēta audita žurnālā.",
        "What the engine prepared for this task; each download is recorded in the audit.",
    ),
    ("task.problem", "Problēma", "Problem"),
    ("task.quality", "Kvalitātes pārskats", "The quality report"),
    (
        "task.quality_help",
        "Pētījuma datu kopas kvalitāte (MK403 18. un 22.2. p.): skaiti, nevis vērtības. Izlabojiet kļūdas to avotā, tad pabeidziet uzdevumu, piezīmē norādot, ko pārbaudījāt.",
        "The study dataset's quality (MK403 p.18, p.22.2): counts, never values. Correct what is wrong at its source, then finish the task with a note of what you checked.",
    ),
    (
        "task.refused_objects",
        "Problēmas pa rindām (1 ir pirmais objekts)",
        "Problems by row (1 is the first object)",
    ),
    (
        "task.refused_rows",
        "Problēmas pa rindām (1 ir galvene)",
        "Problems by row (1 is the header)",
    ),
    ("task.row", "Rinda", "Row"),
    ("task.rows", "rindas", "rows"),
    ("task.send", "Nosūtīt failu", "Send the file"),
    (
        "task.supplied",
        "Fails ir saņemts un gaida uzdevuma pabeigšanu.",
        "A file was received and waits for the task to be finished.",
    ),
    (
        "task.supply",
        "Fails, ko uzdevums saņem",
        "The file this task takes",
    ),
    (
        "task.supply_help",
        "Augšupielādējiet failu šeit; serveris to pārbauda tāpat, kā to pārbaudīs importēšana.",
        "Upload the file here; the server checks it as the import will.",
    ),
    ("tasks.awaiting_file", "gaida failu", "waiting for its file"),
    ("tasks.caption", "Jūsu atvērtie uzdevumi", "Your open tasks"),
    ("tasks.complete", "Atzīmēt kā izpildītu", "Mark as done"),
    ("tasks.for", "veic", "for"),
    (
        "tasks.none",
        "Jums nav atvērtu uzdevumu.",
        "You have no open tasks.",
    ),
    ("tasks.note", "Piezīme (neobligāta)", "Note (optional)"),
    (
        "tasks.note_help",
        "Nenorādiet datu subjektu personas datus; piezīme tiek šifrēta ar pētījuma atslēgām.",
        "No personal data of data subjects; the note is sealed under the study's keys.",
    ),
    ("tasks.task", "Uzdevums", "Task"),
    ("tasks.title", "Mani uzdevumi", "My tasks"),
    ("tokens.active", "derīgs", "valid"),
    (
        "tokens.caption",
        "Jūsu personīgie piekļuves marķieri",
        "Your personal tokens",
    ),
    (
        "tokens.connect",
        "Pievienot komandrindu",
        "Connect a command line",
    ),
    ("tokens.created", "Izsniegts", "Issued"),
    ("tokens.expired", "beidzies", "expired"),
    (
        "tokens.help",
        "Katra komandrinda, kas rīkojas jūsu vārdā, izmanto savu personīgo piekļuves marķieri. Atsauciet marķieri, ko vairs neizmantojat vai kura dators ir nozaudēts.",
        "Each command line that acts as you uses a personal token of its own. Revoke one you no longer use, or whose computer is lost.",
    ),
    ("tokens.last_used", "Pēdējoreiz lietots", "Last used"),
    (
        "tokens.none",
        "Jums nav personīgo piekļuves marķieru.",
        "You have no personal tokens.",
    ),
    ("tokens.revoke", "Atsaukt", "Revoke"),
    ("tokens.revoked", "atsaukts", "revoked"),
    ("tokens.state", "Stāvoklis", "State"),
    ("tokens.title", "Komandrindas", "Command lines"),
    ("validate.check", "Pārbaudīt", "Check"),
    (
        "validate.checked_file",
        "Pārbaudīts fails:",
        "The file checked:",
    ),
    (
        "validate.empty",
        "Ielīmējiet specifikāciju vai izvēlieties tās failu.",
        "Paste a spec, or choose its file.",
    ),
    ("validate.errors", "Kļūdas", "Errors"),
    (
        "validate.file",
        "Vai arī specifikācijas fails (YAML)",
        "Or the spec's file (YAML)",
    ),
    (
        "validate.file_help",
        "Līdz 1 MiB, tāpat kā `studyflow validate`. Ja fails ir izvēlēts, tiek pārbaudīts tas, nevis ielīmētais teksts; tas netiek saglabāts.",
        "Up to 1 MiB, as for `studyflow validate`. When a file is chosen, it is checked rather than the pasted text; it is not kept.",
    ),
    ("validate.line", "rinda", "line"),
    ("validate.message", "Ziņojums", "Message"),
    ("validate.result", "Rezultāts", "Result"),
    ("validate.rule", "Noteikums", "Rule"),
    ("validate.severity", "Nozīmīgums", "Severity"),
    ("validate.spec", "Specifikācija (YAML)", "Spec (YAML)"),
    (
        "validate.spec_help",
        "Ielīmējiet specifikācijas tekstu vai izvēlieties tās failu zemāk.",
        "Paste the spec's text, or choose its file below.",
    ),
    (
        "validate.title",
        "Pārbaudīt specifikāciju",
        "Validate a spec",
    ),
    (
        "validate.too_large",
        "Fails ir lielāks par 1 MiB — lielāko specifikācijas apjomu, ko pārbauda (SF003). Nekas no tā netika pārbaudīts vai saglabāts; izvēlieties mazāku failu.",
        "The file is larger than 1 MiB, the most a spec may be (SF003). Nothing of it was checked or kept; choose a smaller file.",
    ),
    ("validate.warnings", "Brīdinājumi", "Warnings"),
    ("validate.where", "Kur", "Where"),
    ("version.approved", "apstiprināta", "approved"),
    (
        "version.diff",
        "Salīdzinājumā ar iepriekš apstiprināto versiju:",
        "Compared with the version approved before it:",
    ),
    (
        "version.diff_help",
        "Katrs grozījums jāapstiprina atsevišķi (MK403 3. p.); salīdzināmās versijas plāns:",
        "Each amendment is approved on its own (MK403 p.3); the plan it is compared with:",
    ),
    (
        "version.first",
        "Šī ir pētījuma pirmā versija: nav ar ko to salīdzināt.",
        "This is the study's first version: there is nothing to compare it with.",
    ),
    (
        "version.none_before",
        "Pirms šīs versijas neviena versija netika apstiprināta: nav ar ko to salīdzināt.",
        "No version was approved before this one: there is nothing to compare it with.",
    ),
    ("version.refused", "neapstiprināta", "refused"),
    (
        "version.submitted",
        "gaida apstiprinājumu",
        "waiting for approval",
    ),
    ("version.superseded", "aizstāta", "superseded"),
    ("weekday.friday", "piektdiena", "Friday"),
    ("weekday.monday", "pirmdiena", "Monday"),
    ("weekday.saturday", "sestdiena", "Saturday"),
    ("weekday.sunday", "svētdiena", "Sunday"),
    ("weekday.thursday", "ceturtdiena", "Thursday"),
    ("weekday.tuesday", "otrdiena", "Tuesday"),
    ("weekday.wednesday", "trešdiena", "Wednesday"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_are_sorted_and_whole() {
        for w in TEXTS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (k, lv, en) in TEXTS {
            assert!(!lv.trim().is_empty() && !en.trim().is_empty(), "{k}");
        }
    }

    /// Every `t("…")` of every template, and every key a template builds from a value
    /// (`t("state." ~ s.state)`) for every value it can have, is here in both languages.
    #[test]
    fn every_text_a_page_shows_is_translated() {
        let known = |k: &str| TEXTS.binary_search_by(|(t, _, _)| t.cmp(&k)).is_ok();
        let mut used = Vec::new();
        for (name, text) in super::super::TEMPLATES {
            for quote in ['"', '\''] {
                let open = format!("t({quote}");
                for piece in text.split(open.as_str()).skip(1) {
                    let key = piece.split(quote).next().unwrap();
                    if !key.ends_with('.') {
                        used.push((*name, key.to_owned()));
                    }
                }
            }
        }
        assert!(used.len() > 100, "{}", used.len());
        let built = [
            (
                "state.",
                studyflow_store::StudyState::ALL
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect::<Vec<_>>(),
            ),
            (
                "actor.",
                studyflow_plan::Actor::ALL
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect(),
            ),
            (
                "diff.",
                studyflow_plan::diff::What::ALL
                    .map(|w| w.as_str().to_owned())
                    .to_vec(),
            ),
            (
                "class.",
                studyflow_plan::DataClass::ALL
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
            ),
            (
                "activity.",
                studyflow_runtime::status::Activity::ALL
                    .map(|a| a.as_str().to_owned())
                    .to_vec(),
            ),
            (
                "version.",
                ["submitted", "approved", "superseded", "refused"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            (
                "severity.",
                ["error", "warning", "note"].map(str::to_owned).to_vec(),
            ),
            (
                "weekday.",
                [
                    jiff::civil::Weekday::Monday,
                    jiff::civil::Weekday::Tuesday,
                    jiff::civil::Weekday::Wednesday,
                    jiff::civil::Weekday::Thursday,
                    jiff::civil::Weekday::Friday,
                    jiff::civil::Weekday::Saturday,
                    jiff::civil::Weekday::Sunday,
                ]
                .map(|d| format!("{d:?}").to_lowercase())
                .to_vec(),
            ),
        ];
        for (prefix, values) in built {
            for v in values {
                used.push(("(built)", format!("{prefix}{v}")));
            }
        }
        let missing: Vec<_> = used.iter().filter(|(_, k)| !known(k)).collect();
        assert!(missing.is_empty(), "not translated: {missing:?}");
    }
}
