//! Letters: the Service's requests to the Information Centre and the Prison Administration
//! (MK403 p.6, p.11, p.12.3, p.14.2) and the notice of results to the Prison Administration
//! (p.8). minijinja templates, Latvian first and English second, shipped in
//! `engine/dataplane/templates/` and overridable file by file from a directory. Strict: a
//! template that names a value the letter does not have is an error, not a blank. No letter
//! carries an identifier of a subject — they travel in the request file.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::Date;
use minijinja::{Environment, UndefinedBehavior, context};
use studyflow_plan::{Plan, StepKind};
use studyflow_spec::Spec;
use studyflow_spec::catalogue::{self, Source};
use studyflow_spec::model::Exchange;

/// The templates, by file name.
pub const TEMPLATES: [(&str, &str); 2] = [
    (
        "registry_request.txt",
        include_str!("../templates/registry_request.txt"),
    ),
    (
        "prison_administration_notice.txt",
        include_str!("../templates/prison_administration_notice.txt"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("cannot read the letter template {path}: {message}")]
    Read { path: String, message: String },
    #[error("letter template {name}: {message}")]
    Template { name: String, message: String },
    #[error("{0}")]
    NotApplicable(String),
}

/// Which institution a request goes to: the plan's registry.
pub use studyflow_plan::Registry;

const MONTHS_LOCATIVE: [&str; 12] = [
    "janvārī",
    "februārī",
    "martā",
    "aprīlī",
    "maijā",
    "jūnijā",
    "jūlijā",
    "augustā",
    "septembrī",
    "oktobrī",
    "novembrī",
    "decembrī",
];
const MONTHS_GENITIVE: [&str; 12] = [
    "janvāra",
    "februāra",
    "marta",
    "aprīļa",
    "maija",
    "jūnija",
    "jūlija",
    "augusta",
    "septembra",
    "oktobra",
    "novembra",
    "decembra",
];
const MONTHS_DATIVE: [&str; 12] = [
    "janvārim",
    "februārim",
    "martam",
    "aprīlim",
    "maijam",
    "jūnijam",
    "jūlijam",
    "augustam",
    "septembrim",
    "oktobrim",
    "novembrim",
    "decembrim",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The grammatical case a Latvian date is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvCase {
    /// "2026. gada 30. jūnijā" — on a day.
    Locative,
    /// "no 2016. gada 1. janvāra" — from a day.
    Genitive,
    /// "līdz 2026. gada 31. decembrim" — until a day.
    Dative,
}

/// A date the Latvian way: `2026. gada 30. jūnijā`.
pub fn lv_date(d: Date, case: LvCase) -> String {
    let month = usize::try_from(d.month() - 1).unwrap_or(0);
    let name = match case {
        LvCase::Locative => MONTHS_LOCATIVE[month],
        LvCase::Genitive => MONTHS_GENITIVE[month],
        LvCase::Dative => MONTHS_DATIVE[month],
    };
    format!("{}. gada {}. {name}", d.year(), d.day())
}

/// A date in English: `30 June 2026`.
pub fn en_date(d: Date) -> String {
    let month = usize::try_from(d.month() - 1).unwrap_or(0);
    format!("{} {} {}", d.day(), MONTHS_EN[month], d.year())
}

/// A point of MK403 the way the Latvian text cites it: `p.13.3` → `13.3. apakšpunkts`,
/// `p.13` → `13. punkts`.
fn lv_point(point: &str) -> String {
    let number = point.trim_start_matches("p.");
    if number.contains('.') {
        format!("{number}. apakšpunkts")
    } else {
        format!("{number}. punkts")
    }
}

/// The personal-data types of p.3.5 in Latvian.
fn lv_data_type(t: studyflow_spec::catalogue::PersonalDataType) -> &'static str {
    use studyflow_spec::catalogue::PersonalDataType as T;
    match t {
        T::PersonalCode => "personas kods",
        T::ProceedingIdentifiers => "procesa, nolēmuma un lēmuma numuri",
        T::CaseIdentifiers => "lietu numuri",
        T::ContactDetails => "kontaktinformācija",
        T::Demographics => "demogrāfiskie dati",
        T::CriminalRecords => "sodāmības un kriminālprocesu dati",
        T::ProbationRecords => "probācijas dati",
        T::Imprisonment => "brīvības atņemšanas dati",
        T::Resocialisation => "resocializācijas dati",
        T::Health => "ar veselību saistīti dati",
        T::SurveyResponses => "aptaujas atbildes",
    }
}

/// The service researcher who signs the Service's letters for a study: the first authorised
/// person with that role (MK403 p.21, p.25).
pub fn signatory(spec: &Spec) -> Option<&str> {
    spec.authorised_persons
        .iter()
        .find(|p| p.role == studyflow_spec::model::ServiceRole::ServiceResearcher)
        .map(|p| p.name.as_str())
}

/// Wraps text to lines of at most `width` characters, breaking at spaces; a line that starts
/// with spaces keeps them on the lines it breaks into (a numbered item's text stays indented).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let hang = if line.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            format!("{indent}   ")
        } else {
            indent.clone()
        };
        let mut len = 0;
        for (j, word) in line.split_whitespace().enumerate() {
            let w = word.chars().count();
            if j == 0 {
                out.push_str(&indent);
                len = indent.chars().count();
            } else if len + 1 + w > width {
                out.push('\n');
                out.push_str(&hang);
                len = hang.chars().count();
            } else {
                out.push(' ');
                len += 1;
            }
            out.push_str(word);
            len += w;
        }
    }
    out
}

/// The spec's Latvian text where it gives one, else its English text (the letter then says
/// so, in Latvian).
fn latvian(lv: &Option<String>, en: &Option<String>) -> String {
    // A text of spaces or invisible characters is none: the English one, marked, instead.
    match lv
        .as_deref()
        .filter(|t| !studyflow_spec::rules::blank(Some(t)))
        .map(str::trim)
    {
        Some(t) => t.to_owned(),
        None => format!("{} (angliski)", en.as_deref().unwrap_or_default().trim()),
    }
}

/// How wide a letter's lines are.
const LINE: usize = 80;

pub struct Letters {
    env: Environment<'static>,
}

fn template_error(name: &str, e: minijinja::Error) -> LetterError {
    LetterError::Template {
        name: name.to_owned(),
        message: e.to_string(),
    }
}

impl Letters {
    /// The shipped templates, each replaced by a file of the same name in `overrides`.
    pub fn new(overrides: Option<&Path>) -> Result<Letters, LetterError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        for (name, builtin) in TEMPLATES {
            let source = match overrides.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| LetterError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?,
                None => builtin.to_owned(),
            };
            env.add_template_owned(name, source)
                .map_err(|e| template_error(name, e))?;
        }
        Ok(Letters { env })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, LetterError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| template_error(name, e))
    }

    /// The request letter to `registry` for `subjects` data subjects, dated `date`.
    pub fn request(
        &self,
        spec: &Spec,
        plan_hash: &str,
        registry: Registry,
        subjects: usize,
        date: Date,
        sender: &str,
    ) -> Result<String, LetterError> {
        let scope = spec
            .data_scope
            .as_ref()
            .ok_or_else(|| LetterError::NotApplicable("the spec requests no data".into()))?;
        let (sources, exchange, (reason, reason_lv), volume, recipient_lv, recipient_en): (
            Vec<Source>,
            _,
            (&Option<String>, &Option<String>),
            _,
            _,
            _,
        ) = match registry {
            Registry::InformationCentre => {
                let ic = scope.information_centre.as_ref().ok_or_else(|| {
                    LetterError::NotApplicable(
                        "the spec requests nothing from the Information Centre".into(),
                    )
                })?;
                (
                    vec![Source::InformationCentre],
                    ic.exchange,
                    (
                        &ic.automation_not_possible_because,
                        &ic.automation_not_possible_because_lv,
                    ),
                    ic.volume,
                    "Iekšlietu ministrijas Informācijas centram (Sodu reģistrs)",
                    "To the Information Centre of the Ministry of the Interior (Punishment Register)",
                )
            }
            Registry::PrisonAdministration => {
                let pa = scope.prison_administration.as_ref().ok_or_else(|| {
                    LetterError::NotApplicable(
                        "the spec requests nothing from the Prison Administration".into(),
                    )
                })?;
                let volume = pa
                    .rulings
                    .as_ref()
                    .map(|r| r.volume)
                    .or_else(|| pa.resocialisation.as_ref().map(|r| r.volume))
                    .ok_or_else(|| {
                        LetterError::NotApplicable(
                            "no Prison Administration data is requested".into(),
                        )
                    })?;
                (
                    vec![Source::PrisonRulings, Source::PrisonResocialisation],
                    pa.exchange,
                    (
                        &pa.automation_not_possible_because,
                        &pa.automation_not_possible_because_lv,
                    ),
                    volume,
                    "Ieslodzījuma vietu pārvaldei (Ieslodzīto informācijas sistēma)",
                    "To the Prison Administration (Prisoners' IS)",
                )
            }
        };
        let fields: Vec<BTreeMap<&str, String>> = spec
            .requested_fields()
            .iter()
            .filter(|f| sources.contains(&f.source))
            .filter_map(|f| catalogue::lookup(f.source, f.key))
            .map(|c| {
                BTreeMap::from([
                    ("key", c.key.to_owned()),
                    ("point", c.point.unwrap_or("").to_owned()),
                    ("meaning", c.meaning.to_owned()),
                    ("meaning_lv", c.meaning_lv().to_owned()),
                    (
                        "point_lv",
                        lv_point(c.point.unwrap_or(match c.source {
                            Source::InformationCentre => "p.13",
                            Source::PrisonRulings => "p.15",
                            Source::PrisonResocialisation => "p.16",
                            Source::ServiceIs => "p.9",
                        })),
                    ),
                ])
            })
            .collect();
        let mut points_lv = vec!["6.", "11.", "12."];
        let mut points_en = vec!["p.6", "p.11", "p.12"];
        if exchange == Exchange::SecureElectronic {
            points_lv.push("12.3.");
            points_en.push("p.12.3");
        }
        if registry == Registry::PrisonAdministration {
            let (lv, en) = match exchange {
                Exchange::Automated => ("14.1.", "p.14.1"),
                Exchange::SecureElectronic => ("14.2.", "p.14.2"),
            };
            points_lv.push(lv);
            points_en.push(en);
        }
        let agreement = match registry {
            Registry::PrisonAdministration => scope
                .prison_administration
                .as_ref()
                .and_then(|pa| pa.agreement.as_ref())
                .map(|a| {
                    BTreeMap::from([
                        (
                            "agreed_on",
                            a.agreed_on.map(|d| en_date(d.0)).unwrap_or_default(),
                        ),
                        (
                            "agreed_on_lv",
                            a.agreed_on
                                .map(|d| lv_date(d.0, LvCase::Locative))
                                .unwrap_or_default(),
                        ),
                        ("volume", a.volume.clone().unwrap_or_default()),
                        ("availability", a.availability.clone().unwrap_or_default()),
                        (
                            "delivery_deadlines",
                            a.delivery_deadlines.clone().unwrap_or_default(),
                        ),
                        // The Latvian part quotes the Latvian text where the spec gives it.
                        ("volume_lv", latvian(&a.volume_lv, &a.volume)),
                        (
                            "availability_lv",
                            latvian(&a.availability_lv, &a.availability),
                        ),
                        (
                            "delivery_deadlines_lv",
                            latvian(&a.delivery_deadlines_lv, &a.delivery_deadlines),
                        ),
                    ])
                }),
            Registry::InformationCentre => None,
        };
        let (exchange_lv, exchange_en) = match exchange {
            Exchange::Automated => ("automatizēta", "automated"),
            Exchange::SecureElectronic => (
                "drošiem elektroniskiem līdzekļiem",
                "by secure electronic means",
            ),
        };
        let ctx = context! {
            date_lv => lv_date(date, LvCase::Locative),
            date_en => en_date(date),
            recipient_lv, recipient_en,
            points => format!("{} punkts", points_lv.join(", ")),
            points_en => points_en.join(", "),
            title => spec.title.clone().unwrap_or_default(),
            title_lv => latvian(&spec.title_lv, &spec.title),
            study => spec.id.clone(),
            version => spec.version.0,
            plan_hash => plan_hash.to_owned(),
            purpose => spec.purpose.clone().unwrap_or_default().trim().to_owned(),
            purpose_lv => latvian(&spec.purpose_lv, &spec.purpose),
            exchange_lv, exchange_en,
            reason => reason.as_deref().map(|r| r.trim().to_owned()),
            reason_lv => (reason.is_some() || reason_lv.is_some()).then(|| latvian(reason_lv, reason)),
            period_from_lv => lv_date(volume.period.from.0, LvCase::Genitive),
            period_to_lv => lv_date(volume.period.to.0, LvCase::Dative),
            period_from => en_date(volume.period.from.0),
            period_to => en_date(volume.period.to.0),
            expected_records => volume.expected_records.0,
            subjects,
            by_proceeding => registry == Registry::InformationCentre,
            data_types => spec.personal_data_types.iter().map(|t| t.key()).collect::<Vec<_>>(),
            data_types_lv => spec.personal_data_types.iter().map(|t| lv_data_type(*t)).collect::<Vec<_>>(),
            agreement,
            fields,
            sender,
        };
        Ok(wrap(&self.render("registry_request.txt", ctx)?, LINE))
    }

    /// The notice of results to the Prison Administration (MK403 p.8).
    pub fn notice(
        &self,
        spec: &Spec,
        plan: &Plan,
        summary: &str,
        date: Date,
        sender: &str,
    ) -> Result<String, LetterError> {
        let (_, notice) = plan
            .steps_of(StepKind::PrisonAdministrationNotice)
            .next()
            .ok_or_else(|| {
                LetterError::NotApplicable(
                    "the study uses no Prison Administration data, so no notice is due (MK403 p.8)"
                        .into(),
                )
            })?;
        self.notice_for(spec, notice, summary, date, sender)
    }

    /// The notice of results for the plan's notice step `notice` (its deadline, p.8).
    pub fn notice_for(
        &self,
        spec: &Spec,
        notice: &studyflow_plan::Step,
        summary: &str,
        date: Date,
        sender: &str,
    ) -> Result<String, LetterError> {
        let publication = spec
            .publication
            .as_ref()
            .and_then(|p| p.planned_date)
            .ok_or_else(|| {
                LetterError::NotApplicable("no publication date is planned yet".into())
            })?;
        let deadline = notice.deadline.as_ref().and_then(|d| d.date);
        let ctx = context! {
            date_lv => lv_date(date, LvCase::Locative),
            date_en => en_date(date),
            title => spec.title.clone().unwrap_or_default(),
            title_lv => latvian(&spec.title_lv, &spec.title),
            study => spec.id.clone(),
            summary => studyflow_spec::diagnostic::mask_personal_codes(summary.trim()).into_owned(),
            publication_lv => lv_date(publication.0, LvCase::Locative),
            publication => en_date(publication.0),
            deadline_lv => deadline.map(|d| lv_date(d, LvCase::Locative)).unwrap_or_default(),
            deadline => deadline.map(en_date).unwrap_or_default(),
            sender,
        };
        Ok(wrap(
            &self.render("prison_administration_notice.txt", ctx)?,
            LINE,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dates_the_latvian_way() {
        assert_eq!(
            lv_date(date(2026, 6, 30), LvCase::Locative),
            "2026. gada 30. jūnijā"
        );
        assert_eq!(
            lv_date(date(2016, 1, 1), LvCase::Genitive),
            "2016. gada 1. janvāra"
        );
        assert_eq!(
            lv_date(date(2026, 12, 31), LvCase::Dative),
            "2026. gada 31. decembrim"
        );
        assert_eq!(en_date(date(2026, 4, 2)), "2 April 2026");
        assert_eq!(lv_point("p.13.3"), "13.3. apakšpunkts");
        assert_eq!(lv_point("p.16"), "16. punkts");
    }

    #[test]
    fn lines_wrap_at_spaces_and_items_keep_their_indent() {
        let text = format!("  1. {}\nshort", "word ".repeat(30).trim());
        let wrapped = wrap(&text, 40);
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 40),
            "{wrapped}"
        );
        assert!(
            wrapped.lines().nth(1).unwrap().starts_with("     word"),
            "{wrapped}"
        );
        assert!(wrapped.ends_with("\nshort"));
    }
}
