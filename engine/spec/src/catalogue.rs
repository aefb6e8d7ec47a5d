//! The data catalogue of MK403 p.13, p.15 and p.16 plus the Service IS catalogue, in one
//! table. The schema's per-source key enums, the source and personal-data rules, and
//! `docs/catalogue.md` are all derived from it.

use serde::Serialize;

/// Where a field comes from (MK403 p.9).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The Service's own information system (p.9, p.17.1).
    ServiceIs,
    /// The Punishment Register, via the Interior Ministry's Information Centre (p.13).
    InformationCentre,
    /// Prison Administration, per court ruling (p.15).
    PrisonRulings,
    /// Prison Administration, resocialisation (p.16).
    PrisonResocialisation,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::ServiceIs,
        Source::InformationCentre,
        Source::PrisonRulings,
        Source::PrisonResocialisation,
    ];

    /// Human name used in messages.
    pub fn title(self) -> &'static str {
        match self {
            Source::ServiceIs => "the Service IS",
            Source::InformationCentre => "the Information Centre (Punishment Register, p.13)",
            Source::PrisonRulings => "the Prison Administration rulings (p.15)",
            Source::PrisonResocialisation => {
                "the Prison Administration resocialisation data (p.16)"
            }
        }
    }

    /// [`Source::title`] in Latvian, in the nominative (the subject of "… sniedz `key`").
    pub fn title_lv(self) -> &'static str {
        match self {
            Source::ServiceIs => "dienesta informācijas sistēma",
            Source::InformationCentre => "Informācijas centrs (Sodu reģistrs, 13. p.)",
            Source::PrisonRulings => "Ieslodzījuma vietu pārvalde par tiesas nolēmumiem (15. p.)",
            Source::PrisonResocialisation => {
                "Ieslodzījuma vietu pārvalde par resocializācijas līdzekļiem un pasākumiem (16. p.)"
            }
        }
    }

    /// Where in a spec fields of this source are requested.
    pub fn spec_path(self) -> &'static str {
        match self {
            Source::ServiceIs => "data_scope.service_is.fields",
            Source::InformationCentre => "data_scope.information_centre.fields",
            Source::PrisonRulings => "data_scope.prison_administration.rulings.fields",
            Source::PrisonResocialisation => {
                "data_scope.prison_administration.resocialisation.fields"
            }
        }
    }

    /// The MK403 point that lists this source's fields.
    pub fn point(self) -> &'static str {
        match self {
            Source::ServiceIs => "p.17.1",
            Source::InformationCentre => "p.13",
            Source::PrisonRulings => "p.15",
            Source::PrisonResocialisation => "p.16",
        }
    }
}

/// How the regulation treats a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Identifies a person, proceeding, ruling or case; deleted after linkage (p.7, p.17.3,
    /// p.22.3–22.4) or, for contact data, used only for a consented contact (p.32).
    Identifier,
    /// A date: kept, coarsened or made relative by the anonymisation policy; a quasi-identifier.
    Date,
    /// Any other attribute.
    Attribute,
}

/// Personal-data types of MK403 p.3.5: the closed vocabulary a spec declares.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonalDataType {
    /// Personal codes, including a previous code (p.12.1).
    PersonalCode,
    /// Criminal proceeding, court ruling and prosecutor's decision numbers (p.12.2, p.13.1, p.13.9).
    ProceedingIdentifiers,
    /// Service IS case and case-section numbers (p.7).
    CaseIdentifiers,
    /// First name, surname, e-mail, phone (p.32).
    ContactDetails,
    /// Sex, birth year, region.
    Demographics,
    /// Offences, proceedings, judgments and sentences from the Punishment Register (p.13).
    CriminalRecords,
    /// Probation supervision, educational measures, mediation and their assessments (Service IS).
    ProbationRecords,
    /// Detention and imprisonment, admission and release (p.15).
    Imprisonment,
    /// Resocialisation measures, programmes, education, work, discipline (p.16).
    Resocialisation,
    /// Health-related data: addiction programmes and measures, psychological care, substance
    /// use (p.16.4, 16.5, 16.8, 16.13) — special-category data.
    Health,
    /// Answers the data subjects give in a survey or interview (p.31).
    SurveyResponses,
}

impl PersonalDataType {
    pub fn key(self) -> &'static str {
        match self {
            PersonalDataType::PersonalCode => "personal_code",
            PersonalDataType::ProceedingIdentifiers => "proceeding_identifiers",
            PersonalDataType::CaseIdentifiers => "case_identifiers",
            PersonalDataType::ContactDetails => "contact_details",
            PersonalDataType::Demographics => "demographics",
            PersonalDataType::CriminalRecords => "criminal_records",
            PersonalDataType::ProbationRecords => "probation_records",
            PersonalDataType::Imprisonment => "imprisonment",
            PersonalDataType::Resocialisation => "resocialisation",
            PersonalDataType::Health => "health",
            PersonalDataType::SurveyResponses => "survey_responses",
        }
    }
}

/// The check digit of a Latvian personal code's first ten digits (both formats):
/// `(1101 − Σ wᵢ·dᵢ) mod 11` with weights 1, 6, 3, 7, 9, 10, 5, 8, 4, 2; `None` when the remainder
/// is 10 (such a code is never issued).
pub fn personal_code_check_digit(first_ten: &[u8; 10]) -> Option<u8> {
    const WEIGHTS: [u32; 10] = [1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first_ten
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    let c = (1101 - sum % 1101) % 11;
    (c < 10).then_some(c as u8)
}

/// Whether `text` is a well-formed personal code: eleven digits, a hyphen after the sixth or
/// none, and the right check digit. (It does not check that the code was ever issued.)
pub fn is_valid_personal_code(text: &str) -> bool {
    let hyphens = text.matches('-').count();
    if hyphens > 1 || (hyphens == 1 && text.find('-') != Some(6)) {
        return false;
    }
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'-')
        .map(|b| b.wrapping_sub(b'0'))
        .collect();
    if digits.len() != 11 || digits.iter().any(|d| *d > 9) {
        return false;
    }
    let mut ten = [0u8; 10];
    ten.copy_from_slice(&digits[..10]);
    personal_code_check_digit(&ten) == Some(digits[10])
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Field {
    pub key: &'static str,
    pub source: Source,
    /// MK403 point, e.g. `p.13.19`; `None` for Service IS fields the regulation does not list.
    pub point: Option<&'static str>,
    pub class: FieldClass,
    pub data_type: PersonalDataType,
    pub meaning: &'static str,
}

use FieldClass::{Attribute as A, Date as D, Identifier as I};
use PersonalDataType as T;
use Source::{
    InformationCentre as IC, PrisonResocialisation as PR, PrisonRulings as PW, ServiceIs as IS,
};

const fn f(
    key: &'static str,
    source: Source,
    point: Option<&'static str>,
    class: FieldClass,
    data_type: PersonalDataType,
    meaning: &'static str,
) -> Field {
    Field {
        key,
        source,
        point,
        class,
        data_type,
        meaning,
    }
}

/// The catalogue. Keys are exactly those of the regulation digest; Service IS keys are the
/// project's own (the regulation does not enumerate them).
pub static CATALOGUE: &[Field] = &[
    // Service IS (p.9, p.17.1; identifiers p.7 and p.12)
    f(
        "personal_code",
        IS,
        Some("p.12.1"),
        I,
        T::PersonalCode,
        "personal code (or personal identification code)",
    ),
    f(
        "previous_personal_code",
        IS,
        Some("p.12.1"),
        I,
        T::PersonalCode,
        "previous personal code, if it changed",
    ),
    f(
        "case_number",
        IS,
        Some("p.7"),
        I,
        T::CaseIdentifiers,
        "Service IS case number",
    ),
    f(
        "case_section_number",
        IS,
        Some("p.7"),
        I,
        T::CaseIdentifiers,
        "Service IS case section number",
    ),
    f(
        "proceeding_number",
        IS,
        Some("p.12.2"),
        I,
        T::ProceedingIdentifiers,
        "criminal proceeding number known to the Service, used to request p.13 data",
    ),
    f(
        "court_ruling_number",
        IS,
        Some("p.12.2"),
        I,
        T::ProceedingIdentifiers,
        "court ruling number known to the Service, used to request p.15 data",
    ),
    f(
        "prosecutor_decision_number",
        IS,
        Some("p.12.2"),
        I,
        T::ProceedingIdentifiers,
        "prosecutor's decision number known to the Service",
    ),
    f(
        "first_name",
        IS,
        Some("p.32"),
        I,
        T::ContactDetails,
        "first name (only for a consented contact, p.31–32)",
    ),
    f(
        "last_name",
        IS,
        Some("p.32"),
        I,
        T::ContactDetails,
        "surname (only for a consented contact, p.31–32)",
    ),
    f(
        "email",
        IS,
        Some("p.32"),
        I,
        T::ContactDetails,
        "e-mail address (only for a consented contact, p.31–32)",
    ),
    f(
        "phone",
        IS,
        Some("p.32"),
        I,
        T::ContactDetails,
        "phone number (only for a consented contact, p.31–32)",
    ),
    f(
        "supervision_start_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "start of sentence execution (supervision) in the Service",
    ),
    f(
        "supervision_end_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "end of sentence execution (supervision) in the Service",
    ),
    f(
        "educational_measure_start_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "start of a compulsory measure of an educational nature",
    ),
    f(
        "educational_measure_end_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "end of a compulsory measure of an educational nature",
    ),
    f(
        "mediation_start_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "start of a mediation (settlement) process",
    ),
    f(
        "mediation_end_date",
        IS,
        Some("p.19"),
        D,
        T::ProbationRecords,
        "end of a mediation (settlement) process",
    ),
    f("sex", IS, None, A, T::Demographics, "sex"),
    f("birth_year", IS, None, A, T::Demographics, "year of birth"),
    f(
        "region",
        IS,
        None,
        A,
        T::Demographics,
        "region of the Service's territorial unit",
    ),
    f(
        "sanction_type",
        IS,
        None,
        A,
        T::ProbationRecords,
        "type of sanction executed by the Service",
    ),
    f(
        "risk_needs_level",
        IS,
        None,
        A,
        T::ProbationRecords,
        "risk-and-needs assessment level in probation",
    ),
    f(
        "probation_programmes",
        IS,
        None,
        A,
        T::ProbationRecords,
        "probation programmes attended, and completion",
    ),
    // Information Centre / Punishment Register, per criminal proceeding (p.13)
    f(
        "proceeding_number",
        IC,
        Some("p.13.1"),
        I,
        T::ProceedingIdentifiers,
        "criminal proceeding number",
    ),
    f(
        "proceeding_start_date",
        IC,
        Some("p.13.2"),
        D,
        T::CriminalRecords,
        "date the proceeding was started",
    ),
    f(
        "offence_date",
        IC,
        Some("p.13.3"),
        D,
        T::CriminalRecords,
        "date the offence was committed",
    ),
    f(
        "detention_date",
        IC,
        Some("p.13.4"),
        D,
        T::CriminalRecords,
        "date of detention (arrest)",
    ),
    f(
        "suspect_date",
        IC,
        Some("p.13.5"),
        D,
        T::CriminalRecords,
        "date the subject was recognised as a suspect",
    ),
    f(
        "prosecution_date",
        IC,
        Some("p.13.6"),
        D,
        T::CriminalRecords,
        "date the subject was charged",
    ),
    f(
        "related_proceedings",
        IC,
        Some("p.13.7"),
        A,
        T::CriminalRecords,
        "related (merged or split) proceedings",
    ),
    f(
        "merge_split_date",
        IC,
        Some("p.13.8"),
        D,
        T::CriminalRecords,
        "date of merging or splitting",
    ),
    f(
        "merged_split_proceeding_number",
        IC,
        Some("p.13.9"),
        I,
        T::ProceedingIdentifiers,
        "number of the merged or split proceeding",
    ),
    f(
        "offence_qualification",
        IC,
        Some("p.13.10"),
        A,
        T::CriminalRecords,
        "legal qualification (Criminal Law section)",
    ),
    f(
        "initiating_authority",
        IC,
        Some("p.13.11"),
        A,
        T::CriminalRecords,
        "institution that started the proceeding",
    ),
    f(
        "sentence",
        IC,
        Some("p.13.12"),
        A,
        T::CriminalRecords,
        "penalty applied and its size",
    ),
    f(
        "sentence_execution_type",
        IC,
        Some("p.13.13"),
        A,
        T::CriminalRecords,
        "type of sentence execution",
    ),
    f(
        "credited_custody",
        IC,
        Some("p.13.14"),
        A,
        T::CriminalRecords,
        "security measures, detention and pre-trial custody counted into the sentence",
    ),
    f(
        "unserved_part_decision",
        IC,
        Some("p.13.15"),
        D,
        T::CriminalRecords,
        "date of the decision to execute the unserved part, and its size",
    ),
    f(
        "prison_release_date",
        IC,
        Some("p.13.16"),
        D,
        T::CriminalRecords,
        "date released from prison",
    ),
    f(
        "prison_release_grounds",
        IC,
        Some("p.13.17"),
        A,
        T::CriminalRecords,
        "grounds for release",
    ),
    f(
        "sentence_substitution",
        IC,
        Some("p.13.18"),
        A,
        T::CriminalRecords,
        "substitution of the penalty",
    ),
    f(
        "judgment_date",
        IC,
        Some("p.13.19"),
        D,
        T::CriminalRecords,
        "date of the judgment or prosecutor's penal order",
    ),
    f(
        "judgment_effective_date",
        IC,
        Some("p.13.20"),
        D,
        T::CriminalRecords,
        "date the judgment or penal order took effect",
    ),
    f(
        "proceeding_end_date",
        IC,
        Some("p.13.21"),
        D,
        T::CriminalRecords,
        "date the proceeding was terminated",
    ),
    f(
        "proceeding_end_grounds",
        IC,
        Some("p.13.22"),
        A,
        T::CriminalRecords,
        "grounds for termination",
    ),
    f(
        "educational_measure",
        IC,
        Some("p.13.23"),
        A,
        T::CriminalRecords,
        "compulsory measure of an educational nature applied",
    ),
    // Prison Administration, per court ruling (p.15)
    f(
        "prison_admission_date",
        PW,
        Some("p.15.1"),
        D,
        T::Imprisonment,
        "date placed in a prison",
    ),
    f(
        "admission_status",
        PW,
        Some("p.15.2"),
        A,
        T::Imprisonment,
        "status at admission: remand prisoner or convict",
    ),
    f(
        "progressive_system_moves",
        PW,
        Some("p.15.3"),
        D,
        T::Imprisonment,
        "moves in the progressive execution system (dates of transfer decisions, easing or tightening the regime)",
    ),
    f(
        "prison_release_date",
        PW,
        Some("p.15.4"),
        D,
        T::Imprisonment,
        "date released",
    ),
    f(
        "release_regime",
        PW,
        Some("p.15.5"),
        A,
        T::Imprisonment,
        "type (regime) of imprisonment at release",
    ),
    f(
        "release_grounds",
        PW,
        Some("p.15.6"),
        A,
        T::Imprisonment,
        "grounds for release",
    ),
    // Prison Administration, resocialisation (p.16)
    f(
        "risk_needs_assessment",
        PR,
        Some("p.16.1"),
        A,
        T::Resocialisation,
        "risk and needs assessment",
    ),
    f(
        "resocialisation_planned",
        PR,
        Some("p.16.2.1"),
        A,
        T::Resocialisation,
        "planned resocialisation means and measures",
    ),
    f(
        "resocialisation_applied",
        PR,
        Some("p.16.2.2"),
        A,
        T::Resocialisation,
        "applied means and measures, and their volume",
    ),
    f(
        "behaviour_programmes",
        PR,
        Some("p.16.3"),
        A,
        T::Resocialisation,
        "social-behaviour correction, rehabilitation and motivation programmes: volume and results",
    ),
    f(
        "addiction_programme",
        PR,
        Some("p.16.4"),
        A,
        T::Health,
        "participation in an addiction-reduction programme",
    ),
    f(
        "addiction_measures",
        PR,
        Some("p.16.5"),
        A,
        T::Health,
        "involvement in addiction-reduction measures",
    ),
    f(
        "education",
        PR,
        Some("p.16.6"),
        A,
        T::Resocialisation,
        "education programmes and measures: volume and results",
    ),
    f(
        "prison_employment",
        PR,
        Some("p.16.7"),
        A,
        T::Resocialisation,
        "employment in prison",
    ),
    f(
        "psychological_care",
        PR,
        Some("p.16.8"),
        A,
        T::Health,
        "psychological care (consultations): volume",
    ),
    f(
        "social_work",
        PR,
        Some("p.16.9"),
        A,
        T::Resocialisation,
        "social worker services: volume",
    ),
    f(
        "leisure",
        PR,
        Some("p.16.10"),
        A,
        T::Resocialisation,
        "leisure activities",
    ),
    f(
        "incentives",
        PR,
        Some("p.16.11"),
        A,
        T::Resocialisation,
        "incentives applied",
    ),
    f(
        "disciplinary_penalties",
        PR,
        Some("p.16.12"),
        A,
        T::Resocialisation,
        "disciplinary penalties applied",
    ),
    f(
        "substance_use_incidents",
        PR,
        Some("p.16.13"),
        A,
        T::Health,
        "cases of alcohol, narcotic, toxic or psychotropic substance use in prison",
    ),
];

/// The entry for `key` in `source`.
pub fn lookup(source: Source, key: &str) -> Option<&'static Field> {
    CATALOGUE
        .iter()
        .find(|f| f.source == source && f.key == key)
}

/// Every source that has `key`.
pub fn sources_of(key: &str) -> impl Iterator<Item = &'static Field> + '_ {
    CATALOGUE.iter().filter(move |f| f.key == key)
}

/// The keys of one source, in catalogue order.
pub fn keys(source: Source) -> impl Iterator<Item = &'static str> {
    CATALOGUE
        .iter()
        .filter(move |f| f.source == source)
        .map(|f| f.key)
}

/// The fields a consented direct contact may carry (p.32).
pub const CONTACT_FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone"];

/// A field's value as one cell of text (a CSV file, a release): empty when missing, a list as
/// `a; b`. The releases and the generated registry files write values alike through it.
pub fn value_text(v: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

/// The values a categorical field may take. A supplied file (a manual extraction, p.22.1; a
/// registry's answer, p.13, p.15, p.16) with a value outside its field's domain is refused
/// whole, and the quality report (p.18, p.22.2) counts such values. A missing value is not
/// out of the domain: completeness is the quality report's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "values")]
pub enum Domain {
    /// Exactly one of these values.
    OneOf(&'static [&'static str]),
    /// Any number of these values: a JSON list, or `a; b` in one CSV cell (as
    /// [`value_text`] writes a list).
    SomeOf(&'static [&'static str]),
    /// Yes or no: JSON `true`/`false`, `true`/`false` in a CSV cell.
    YesNo,
    /// A count: a whole number, zero or more.
    Count,
}

impl Domain {
    /// Whether `v` (a value of a JSON answer or a dataset) lies in the domain; `null` does.
    pub fn admits(&self, v: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self, v) {
            (_, Value::Null) => true,
            (Domain::OneOf(values), Value::String(s)) => values.contains(&s.as_str()),
            (Domain::SomeOf(values), Value::Array(items)) => items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| values.contains(&s))),
            // A list that reached a dataset through a CSV cell is still its text.
            (Domain::SomeOf(_), Value::String(s)) => self.admits_text(s),
            (Domain::YesNo, Value::Bool(_)) => true,
            (Domain::Count, Value::Number(n)) => n.as_u64().is_some(),
            _ => false,
        }
    }

    /// Whether one CSV cell lies in the domain; an empty cell does (a missing value).
    pub fn admits_text(&self, cell: &str) -> bool {
        let cell = cell.trim();
        if cell.is_empty() {
            return true;
        }
        match self {
            Domain::OneOf(values) => values.contains(&cell),
            Domain::SomeOf(values) => cell
                .split(';')
                .map(str::trim)
                .all(|item| values.contains(&item)),
            Domain::YesNo => matches!(cell, "true" | "false"),
            Domain::Count => cell.parse::<u64>().is_ok(),
        }
    }

    /// The domain in words, for `docs/catalogue.md` and messages.
    pub fn describe(&self) -> String {
        let list = |values: &[&str]| {
            values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Domain::OneOf(values) => format!("one of {}", list(values)),
            Domain::SomeOf(values) => format!("any of {} (a list)", list(values)),
            Domain::YesNo => "`true` or `false`".to_owned(),
            Domain::Count => "a whole number, 0 or more".to_owned(),
        }
    }
}

/// The Service's regions: the planning regions its territorial units belong to.
pub const REGIONS: &[&str] = &["Rīga", "Kurzeme", "Latgale", "Vidzeme", "Zemgale"];
/// The sanctions whose execution the Service supervises (p.19 b: sentence execution in the
/// Service); educational measures and mediation (p.19 a, c) have their own date fields.
pub const SANCTION_TYPES: &[&str] = &[
    "probation_supervision",
    "community_service",
    "conditional_release",
];
/// Levels of a risk-and-needs assessment (the Service's, and the prison's of p.16.1).
pub const RISK_LEVELS: &[&str] = &["low", "medium", "high"];
/// The Service's probation programmes.
pub const PROBATION_PROGRAMMES: &[&str] = &[
    "ETS",
    "Cognitive skills",
    "Anger management",
    "Addiction prevention",
    "Domestic violence",
];
/// Status at admission to a prison, in the words of p.15.2 ("apcietinātais vai notiesātais").
pub const ADMISSION_STATUSES: &[&str] = &["remand prisoner", "convict"];
/// The regime (level of the progressive system) of imprisonment at release (p.15.5).
pub const RELEASE_REGIMES: &[&str] = &["low", "medium", "high"];
/// Grounds for release from a prison (p.13.17, p.15.6).
pub const RELEASE_GROUNDS: &[&str] = &["end of sentence", "conditional early release"];
/// Type of sentence execution (p.13.13).
pub const SENTENCE_EXECUTION_TYPES: &[&str] = &["non-custodial", "custodial", "conditional"];
/// Grounds for ending a criminal proceeding (p.13.22).
pub const PROCEEDING_END_GROUNDS: &[&str] = &[
    "conviction",
    "termination: reconciliation",
    "termination: no offence",
];
/// Education in prison: the level of the programme followed (p.16.6).
pub const PRISON_EDUCATION: &[&str] = &["none", "basic", "secondary", "vocational"];

/// The domains of the catalogue's categorical fields: taken from the regulation's words where
/// it names the values (p.15.2) and otherwise from the values the Service IS and the
/// registries use (the synthetic registries of `engine/sim` produce exactly these). A field
/// not listed is free text, a date or an identifier.
static DOMAINS: &[(Source, &str, Domain)] = &[
    (IS, "sex", Domain::OneOf(&["male", "female"])),
    (IS, "region", Domain::OneOf(REGIONS)),
    (IS, "sanction_type", Domain::OneOf(SANCTION_TYPES)),
    (IS, "risk_needs_level", Domain::OneOf(RISK_LEVELS)),
    (
        IS,
        "probation_programmes",
        Domain::SomeOf(PROBATION_PROGRAMMES),
    ),
    (
        IC,
        "sentence_execution_type",
        Domain::OneOf(SENTENCE_EXECUTION_TYPES),
    ),
    (IC, "prison_release_grounds", Domain::OneOf(RELEASE_GROUNDS)),
    (
        IC,
        "proceeding_end_grounds",
        Domain::OneOf(PROCEEDING_END_GROUNDS),
    ),
    (PW, "admission_status", Domain::OneOf(ADMISSION_STATUSES)),
    (PW, "release_regime", Domain::OneOf(RELEASE_REGIMES)),
    (PW, "release_grounds", Domain::OneOf(RELEASE_GROUNDS)),
    (PR, "risk_needs_assessment", Domain::OneOf(RISK_LEVELS)),
    (PR, "addiction_programme", Domain::YesNo),
    (PR, "addiction_measures", Domain::YesNo),
    (PR, "education", Domain::OneOf(PRISON_EDUCATION)),
    (PR, "prison_employment", Domain::YesNo),
    (PR, "incentives", Domain::Count),
    (PR, "disciplinary_penalties", Domain::Count),
];

/// Each field's name in Latvian, for the Latvian part of the letters: the words of MK403
/// (`MK403-2025.lv.txt`) for the fields it lists (p.12, p.13, p.15, p.16), the Service's own
/// terms for the Service IS fields it does not enumerate.
static LATVIAN: &[(Source, &str, &str)] = &[
    (
        IS,
        "personal_code",
        "personas kods vai personas identifikācijas kods",
    ),
    (
        IS,
        "previous_personal_code",
        "iepriekšējais personas kods vai personas identifikācijas kods, ja tas ir mainīts",
    ),
    (
        IS,
        "case_number",
        "lietas numurs (dienesta informācijas sistēmas datu subjekta identifikators)",
    ),
    (
        IS,
        "case_section_number",
        "lietas sekcijas numurs (dienesta informācijas sistēmas datu subjekta identifikators)",
    ),
    (
        IS,
        "proceeding_number",
        "kriminālprocesa numurs (kas zināms dienestam)",
    ),
    (
        IS,
        "court_ruling_number",
        "tiesas nolēmuma numurs (kas zināms dienestam)",
    ),
    (
        IS,
        "prosecutor_decision_number",
        "prokurora lēmuma numurs (kas zināms dienestam)",
    ),
    (
        IS,
        "first_name",
        "vārds (tikai saziņai ar piekrišanu, 31.–32. punkts)",
    ),
    (
        IS,
        "last_name",
        "uzvārds (tikai saziņai ar piekrišanu, 31.–32. punkts)",
    ),
    (
        IS,
        "email",
        "elektroniskā pasta adrese (tikai saziņai ar piekrišanu, 31.–32. punkts)",
    ),
    (
        IS,
        "phone",
        "tālruņa numurs (tikai saziņai ar piekrišanu, 31.–32. punkts)",
    ),
    (
        IS,
        "supervision_start_date",
        "soda izpilde dienestā – uzsākta (datums)",
    ),
    (
        IS,
        "supervision_end_date",
        "soda izpilde dienestā – pabeigta (datums)",
    ),
    (
        IS,
        "educational_measure_start_date",
        "audzinoša rakstura piespiedu līdzekļa piemērošana – uzsākta (datums)",
    ),
    (
        IS,
        "educational_measure_end_date",
        "audzinoša rakstura piespiedu līdzekļa piemērošana – pabeigta (datums)",
    ),
    (
        IS,
        "mediation_start_date",
        "izlīguma process – uzsākts (datums)",
    ),
    (
        IS,
        "mediation_end_date",
        "izlīguma process – pabeigts (datums)",
    ),
    (IS, "sex", "dzimums"),
    (IS, "birth_year", "dzimšanas gads"),
    (
        IS,
        "region",
        "dienesta teritoriālās struktūrvienības reģions",
    ),
    (IS, "sanction_type", "dienesta izpildītā soda veids"),
    (
        IS,
        "risk_needs_level",
        "riska un vajadzību novērtējuma līmenis probācijā",
    ),
    (
        IS,
        "probation_programmes",
        "apmeklētās probācijas programmas un to pabeigšana",
    ),
    (IC, "proceeding_number", "kriminālprocesa numurs"),
    (
        IC,
        "proceeding_start_date",
        "kriminālprocesa uzsākšanas datums",
    ),
    (
        IC,
        "offence_date",
        "noziedzīga nodarījuma izdarīšanas datums",
    ),
    (IC, "detention_date", "aizturēšanas datums"),
    (
        IC,
        "suspect_date",
        "datums, kad datu subjekts atzīts par aizdomās turēto",
    ),
    (
        IC,
        "prosecution_date",
        "datums, kad datu subjekts saukts pie kriminālatbildības",
    ),
    (
        IC,
        "related_proceedings",
        "saistītie kriminālprocesi (apvienotie vai izdalītie)",
    ),
    (
        IC,
        "merge_split_date",
        "kriminālprocesa apvienošanas vai izdalīšanas datums",
    ),
    (
        IC,
        "merged_split_proceeding_number",
        "apvienotā vai izdalītā kriminālprocesa numurs",
    ),
    (
        IC,
        "offence_qualification",
        "noziedzīga nodarījuma juridiskā kvalifikācija",
    ),
    (
        IC,
        "initiating_authority",
        "iestāde, kas uzsākusi kriminālprocesu",
    ),
    (IC, "sentence", "piemērotais sods un tā apmērs"),
    (IC, "sentence_execution_type", "soda izpildes veids"),
    (
        IC,
        "credited_custody",
        "sodā ieskaitītie drošības līdzekļi, aizturēšanā un iepriekšējā apcietinājumā pavadītais laiks",
    ),
    (
        IC,
        "unserved_part_decision",
        "datums, kad pieņemts lēmums par neizciestās soda daļas izpildīšanu, un neizciestās soda daļas apmērs",
    ),
    (
        IC,
        "prison_release_date",
        "datums, kad datu subjekts atbrīvots no ieslodzījuma vietas",
    ),
    (
        IC,
        "prison_release_grounds",
        "pamatojums atbrīvošanai no ieslodzījuma vietas",
    ),
    (IC, "sentence_substitution", "soda aizstāšana"),
    (
        IC,
        "judgment_date",
        "datums, kad pieņemts tiesas spriedums vai prokurora priekšraksts par sodu",
    ),
    (
        IC,
        "judgment_effective_date",
        "datums, kad stājies spēkā tiesas spriedums vai prokurora priekšraksts par sodu",
    ),
    (
        IC,
        "proceeding_end_date",
        "kriminālprocesa izbeigšanas datums",
    ),
    (
        IC,
        "proceeding_end_grounds",
        "kriminālprocesa izbeigšanas pamats",
    ),
    (
        IC,
        "educational_measure",
        "piemērotais audzinoša rakstura piespiedu līdzeklis",
    ),
    (
        PW,
        "prison_admission_date",
        "datums, kad datu subjekts ievietots ieslodzījuma vietā",
    ),
    (
        PW,
        "admission_status",
        "ieslodzītā statuss – apcietinātais vai notiesātais – brīdī, kad datu subjekts ievietots ieslodzījuma vietā",
    ),
    (
        PW,
        "progressive_system_moves",
        "virzība soda progresīvās izpildes sistēmā (lēmumu datumi)",
    ),
    (
        PW,
        "prison_release_date",
        "datums, kad datu subjekts atbrīvots no ieslodzījuma vietas",
    ),
    (
        PW,
        "release_regime",
        "ieslodzījuma veids, datu subjektu atbrīvojot",
    ),
    (
        PW,
        "release_grounds",
        "pamatojums datu subjekta atbrīvošanai no ieslodzījuma vietas",
    ),
    (
        PR,
        "risk_needs_assessment",
        "datu subjekta riska un vajadzību novērtējums",
    ),
    (
        PR,
        "resocialisation_planned",
        "plānotie resocializācijas līdzekļi un pasākumi soda izpildes laikā",
    ),
    (
        PR,
        "resocialisation_applied",
        "datu subjektam piemērotie resocializācijas līdzekļi un veiktie resocializācijas pasākumi, to apjoms",
    ),
    (
        PR,
        "behaviour_programmes",
        "dalība sociālās uzvedības korekcijas, sociālās rehabilitācijas un motivācijas programmās, to apjoms un rezultāti",
    ),
    (
        PR,
        "addiction_programme",
        "dalība atkarības mazināšanas programmā",
    ),
    (
        PR,
        "addiction_measures",
        "iesaiste atkarības mazināšanas pasākumos",
    ),
    (
        PR,
        "education",
        "iesaiste izglītības programmās un pasākumos, to apjoms un rezultāti",
    ),
    (PR, "prison_employment", "nodarbinātība ieslodzījuma vietā"),
    (
        PR,
        "psychological_care",
        "sniegtās psiholoģiskās aprūpes (konsultāciju) apjoms",
    ),
    (
        PR,
        "social_work",
        "sociālā darbinieka sniegto pakalpojumu apjoms",
    ),
    (PR, "leisure", "piedalīšanās brīvā laika pasākumos"),
    (PR, "incentives", "piemērotie pamudinājumi"),
    (PR, "disciplinary_penalties", "piemērotie disciplinārsodi"),
    (
        PR,
        "substance_use_incidents",
        "alkohola, narkotisko, toksisko vai psihotropo vielu lietošanas gadījumi brīvības atņemšanas iestādē",
    ),
];

impl Field {
    /// The values the field may take, when it is categorical.
    pub fn domain(&self) -> Option<Domain> {
        DOMAINS
            .iter()
            .find(|(s, k, _)| *s == self.source && *k == self.key)
            .map(|(_, _, d)| *d)
    }

    /// The field's name in Latvian.
    pub fn meaning_lv(&self) -> &'static str {
        LATVIAN
            .iter()
            .find(|(s, k, _)| *s == self.source && *k == self.key)
            .map_or(self.meaning, |(_, _, lv)| lv)
    }
}

/// The catalogue as a Markdown reference (`docs/catalogue.md`).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Data catalogue\n\n<!-- Generated from engine/spec/src/catalogue.rs by `studyflow catalogue`; a test fails when it is stale. -->\n\n\
         The keys a spec requests under `data_scope`. `identifier` fields are deleted right after linkage \
         (MK403 p.7, p.17.3, p.22.3–22.4); `date` fields are quasi-identifiers handled by the anonymisation \
         date policy. The personal-data type is what a spec must declare under `personal_data_types` \
         (MK403 p.3.5) when it requests the field.\n",
    );
    for source in Source::ALL {
        out.push_str(&format!(
            "\n## {} — `{}`\n\n| key | MK403 | class | personal-data type | meaning | latviski |\n|---|---|---|---|---|---|\n",
            capitalise(source.title()),
            source.spec_path()
        ));
        for field in CATALOGUE.iter().filter(|f| f.source == source) {
            let class = match field.class {
                FieldClass::Identifier => "identifier",
                FieldClass::Date => "date",
                FieldClass::Attribute => "attribute",
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} | {} |\n",
                field.key,
                field.point.unwrap_or("—"),
                class,
                field.data_type.key(),
                field.meaning,
                field.meaning_lv()
            ));
        }
        let domains: Vec<(&Field, Domain)> = CATALOGUE
            .iter()
            .filter(|f| f.source == source)
            .filter_map(|f| Some((f, f.domain()?)))
            .collect();
        if !domains.is_empty() {
            out.push_str(
                "\nAllowed values of the categorical fields: a supplied file (manual extraction, registry answer) \
                 with any other value is refused whole, and the quality report (MK403 p.18, p.22.2) counts it.\n\n",
            );
            for (field, domain) in domains {
                out.push_str(&format!("- `{}`: {}\n", field.key, domain.describe()));
            }
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let s = s.strip_prefix("the ").unwrap_or(s);
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The text of each numbered point (`7`, `12.2`, `16.2.2`), whitespace collapsed and in
    /// lower case, as `regulation` reads the official text.
    fn points() -> std::collections::HashMap<String, String> {
        crate::regulation::latvian_points()
            .iter()
            .map(|(n, t)| (n.clone(), format!(" {}", t.to_lowercase())))
            .collect()
    }

    /// The Latvian name of every field the regulation lists is the regulation's own words: the
    /// name (before a remark in brackets, or before a dash that adds which edge of an event
    /// it is) stands in the text of the field's point or of a point above it (MK403 p.7 says
    /// "lietas sekcijas numurs", not "lietas sadaļas numurs").
    #[test]
    fn latvian_names_are_the_regulations_words() {
        let points = points();
        assert!(points.contains_key("7") && points.contains_key("16.2.2"));
        let mut wrong = Vec::new();
        for f in super::CATALOGUE {
            let Some(point) = f.point else { continue };
            let name = f.meaning_lv().to_lowercase();
            let name = name.split(" (").next().unwrap_or(&name).trim();
            let core = name.split(" – ").next().unwrap_or(name);
            let number = point.trim_start_matches("p.");
            let says = |t: &String| t.contains(name) || t.contains(core);
            // The point itself and its sub-points (p.19's events are in 19.1–19.6)…
            let mut found = points
                .iter()
                .any(|(n, t)| (n == number || n.starts_with(&format!("{number}."))) && says(t));
            // …or a point above it.
            let mut number = number.to_owned();
            while !found {
                match number.rsplit_once('.') {
                    Some((up, _)) => number = up.to_owned(),
                    None => break,
                }
                found = points.get(&number).is_some_and(says);
            }
            if !found {
                wrong.push(format!("{:?} {} ({point}): {name}", f.source, f.key));
            }
        }
        assert!(
            wrong.is_empty(),
            "not in the regulation's words:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_field_has_its_latvian_name() {
        for f in super::CATALOGUE {
            assert!(
                super::LATVIAN
                    .iter()
                    .any(|(s, k, _)| *s == f.source && *k == f.key),
                "{:?} {} has no Latvian name",
                f.source,
                f.key
            );
        }
        assert_eq!(super::LATVIAN.len(), super::CATALOGUE.len());
    }

    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_domain_names_a_field_and_admits_only_its_values() {
        for (source, key, _) in DOMAINS {
            assert!(lookup(*source, key).is_some(), "{key} of {source:?}");
        }
        let sex = lookup(Source::ServiceIs, "sex").and_then(|f| f.domain());
        let sex = sex.expect("sex has a domain");
        assert!(sex.admits_text("female") && sex.admits_text(""));
        assert!(!sex.admits_text("alien"));
        assert!(!sex.admits(&serde_json::json!("alien")) && sex.admits(&serde_json::Value::Null));
        let programmes = Domain::SomeOf(PROBATION_PROGRAMMES);
        assert!(programmes.admits_text("ETS; Anger management"));
        assert!(programmes.admits(&serde_json::json!(["ETS"])));
        assert!(!programmes.admits(&serde_json::json!(["ETS", "Juggling"])));
        assert!(Domain::Count.admits(&serde_json::json!(3)));
        assert!(!Domain::Count.admits(&serde_json::json!(-1)));
        assert!(!Domain::YesNo.admits_text("maybe"));
        assert!(
            lookup(Source::ServiceIs, "birth_year")
                .and_then(|f| f.domain())
                .is_none()
        );
    }

    #[test]
    fn keys_are_unique_per_source() {
        let mut seen = HashSet::new();
        for f in CATALOGUE {
            assert!(
                seen.insert((f.source, f.key)),
                "{} twice in {:?}",
                f.key,
                f.source
            );
        }
    }

    #[test]
    fn regulation_lists_are_complete() {
        assert_eq!(keys(Source::InformationCentre).count(), 23, "p.13.1–13.23");
        assert_eq!(keys(Source::PrisonRulings).count(), 6, "p.15.1–15.6");
        assert_eq!(
            keys(Source::PrisonResocialisation).count(),
            14,
            "p.16.1–16.13 with 16.2.1/16.2.2"
        );
        for i in 1..=23 {
            let p = format!("p.13.{i}");
            assert!(
                CATALOGUE.iter().any(|f| f.point == Some(p.as_str())),
                "{p} missing"
            );
        }
    }

    #[test]
    fn identifiers_of_p12_are_identifiers() {
        for key in [
            "personal_code",
            "previous_personal_code",
            "proceeding_number",
            "case_number",
            "case_section_number",
        ] {
            for f in sources_of(key) {
                assert_eq!(f.class, FieldClass::Identifier, "{key}");
            }
        }
        assert_eq!(
            lookup(Source::PrisonRulings, "prison_release_date")
                .unwrap()
                .point,
            Some("p.15.4")
        );
        assert_eq!(
            lookup(Source::InformationCentre, "prison_release_date")
                .unwrap()
                .point,
            Some("p.13.16")
        );
    }
}
