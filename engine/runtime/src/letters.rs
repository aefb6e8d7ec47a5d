//! Letters: the Service's requests to the Information Centre and the Prison Administration
//! (MK403 p.6, p.11, p.12.3, p.14.2) and the notice of results to the Prison Administration
//! (p.8). minijinja templates, Latvian first and English second, shipped in
//! `engine/runtime/templates/` and overridable file by file from a directory. Strict: a
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

/// Which institution a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    InformationCentre,
    PrisonAdministration,
}

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
        let (sources, exchange, reason, volume, recipient_lv, recipient_en): (
            Vec<Source>,
            _,
            _,
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
                    ic.automation_not_possible_because.clone(),
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
                    pa.automation_not_possible_because.clone(),
                    volume,
                    "Ieslodzījuma vietu pārvaldei (Ieslodzīto reģistrs)",
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
                            a.agreed_on.map(|d| d.to_string()).unwrap_or_default(),
                        ),
                        ("volume", a.volume.clone().unwrap_or_default()),
                        ("availability", a.availability.clone().unwrap_or_default()),
                        (
                            "delivery_deadlines",
                            a.delivery_deadlines.clone().unwrap_or_default(),
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
            date => date.to_string(),
            recipient_lv, recipient_en,
            points => format!("{} punkts", points_lv.join(", ")),
            points_en => points_en.join(", "),
            title => spec.title.clone().unwrap_or_default(),
            study => spec.id.clone(),
            version => spec.version.0,
            plan_hash => plan_hash.to_owned(),
            purpose => spec.purpose.clone().unwrap_or_default().trim().to_owned(),
            exchange_lv, exchange_en,
            reason => reason.map(|r| r.trim().to_owned()),
            period_from => volume.period.from.to_string(),
            period_to => volume.period.to.to_string(),
            expected_records => volume.expected_records.0,
            subjects,
            by_proceeding => registry == Registry::InformationCentre,
            data_types => spec.personal_data_types.iter().map(|t| t.key()).collect::<Vec<_>>(),
            agreement,
            fields,
            sender,
        };
        self.render("registry_request.txt", ctx)
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
        let publication = spec
            .publication
            .as_ref()
            .and_then(|p| p.planned_date)
            .ok_or_else(|| {
                LetterError::NotApplicable("no publication date is planned yet".into())
            })?;
        let deadline = notice
            .deadline
            .as_ref()
            .and_then(|d| d.date)
            .map(|d| d.to_string())
            .unwrap_or_default();
        let ctx = context! {
            date => date.to_string(),
            title => spec.title.clone().unwrap_or_default(),
            study => spec.id.clone(),
            summary => studyflow_spec::diagnostic::mask_personal_codes(summary.trim()).into_owned(),
            publication => publication.to_string(),
            deadline,
            sender,
        };
        self.render("prison_administration_notice.txt", ctx)
    }
}
