//! The data plane that moves real data: the Service IS sample, the registries' answers, linkage,
//! deletion of identifiers, anonymisation, the follow-up waves and releases, each step reading
//! and writing datasets that the store keeps sealed under the study's keys between steps.
//!
//! Datasets holding identifying or pseudonymised data are marked so; the destruction step
//! (MK403 p.26) deletes them with the study's keys. Nothing identifying is ever written in
//! plaintext: not to the database, not to a log, not to a step's recorded output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use studyflow_plan::StepKind;
use studyflow_spec::catalogue::Source;
use studyflow_spec::model::Exchange;
use studyflow_store::{Store, TaskMode};

use crate::anonymise::{self, AnonRecord, Policy, Record};
use crate::clock::{Clock, micros, riga_date};
use crate::connector::Connector;
use crate::dataplane::{
    BoxFuture, DataPlane, StepContext, StepError, StepOutput, Subject as Cohort,
};
use crate::linkage::{self, AnswerRow, Subject};
use crate::vault::{MasterKey, StudyKeys};

/// Where the Service IS sample comes from.
pub enum ServiceIs {
    /// The Service's database (p.10).
    Sql(studyflow_store::service_is::ServiceIsSource),
    /// A researcher's CSV export (p.22.1).
    Csv(PathBuf),
    /// Given in memory (tests, the demo).
    Subjects(Arc<Vec<Subject>>),
    /// None configured: an automated extraction fails with a clear message.
    None,
}

pub struct RegistryDataPlane {
    pub store: Store,
    pub master: MasterKey,
    pub service_is: ServiceIs,
    pub connector: Connector,
    /// Release folders are written below this folder.
    pub releases: PathBuf,
    /// The secure electronic exchange's folders (MK403 p.12.3, p.14.2), one subfolder per study.
    pub outbox: PathBuf,
    pub inbox: PathBuf,
    /// The external researchers' age public keys, one file per study (`<study>.txt`), to which
    /// the consented contact details are encrypted (MK403 p.32).
    pub recipients: PathBuf,
    pub clock: Arc<dyn Clock>,
}

impl RegistryDataPlane {
    /// The data plane with its folders in the work folder `work`: `releases/`, `outbox/`,
    /// `inbox/` and `recipients/`.
    pub fn new(
        store: Store,
        master: MasterKey,
        service_is: ServiceIs,
        connector: Connector,
        work: &std::path::Path,
        clock: Arc<dyn Clock>,
    ) -> RegistryDataPlane {
        RegistryDataPlane {
            store,
            master,
            service_is,
            connector,
            releases: work.join("releases"),
            outbox: work.join("outbox"),
            inbox: work.join("inbox"),
            recipients: work.join("recipients"),
            clock,
        }
    }
}

/// The file a service researcher puts in the study's inbox for a manual extraction from the
/// Service IS (MK403 p.22.1) before completing the task.
pub const MANUAL_EXTRACTION_FILE: &str = "service-is.csv";
/// The file with the consenting clients' contact details (MK403 p.31–32).
pub const CONSENTED_CONTACTS_FILE: &str = "consented-contacts.csv";

/// How long a step waiting for a file or an answer sleeps before it looks again.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The name of a study's exchange with a registry, as the outbox and the inbox know it.
pub fn exchange_id(study: &str, version: i64, request_step: &str) -> String {
    format!("{study}-v{version}-{request_step}")
}

/// Whether the study needs its subjects' personal codes: to link the registries' answers
/// (p.17) or to request the follow-ups (p.19).
fn links_or_follows_up(spec: &studyflow_spec::Spec) -> bool {
    spec.follow_up.is_some()
        || spec
            .data_scope
            .as_ref()
            .is_some_and(|d| d.information_centre.is_some() || d.prison_administration.is_some())
}

/// Every file below `dir`, recursively (none when it does not exist or cannot be read).
pub fn files_below(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The first byte of a stored dataset: sealed under the study's keys, or plain (anonymised).
const SEALED: u8 = 1;
const PLAIN: u8 = 0;

fn fail(message: impl Into<String>, retryable: bool) -> StepError {
    StepError::new(message, retryable)
}

fn store_err(e: studyflow_store::StoreError) -> StepError {
    fail(format!("database: {e}"), true)
}

impl RegistryDataPlane {
    /// The study's keys: made and stored wrapped when the first data arrives (`create`; the
    /// first writer wins); afterwards only read — once destroyed they are never made again.
    async fn keys(&self, study: &str, create: bool) -> Result<StudyKeys, StepError> {
        let wrapped = match self.store.study_keys(study).await.map_err(store_err)? {
            Some(w) => w,
            None if !create => {
                return Err(fail(
                    "the study's keys were destroyed (MK403 p.26); its identifying data no longer exists",
                    false,
                ));
            }
            None => {
                let fresh = StudyKeys::generate(study).wrap(&self.master);
                self.store
                    .put_study_keys(study, &fresh, micros(self.clock.now()))
                    .await
                    .map_err(store_err)?
            }
        };
        StudyKeys::unwrap(study, &wrapped, &self.master).map_err(|e| fail(e.to_string(), false))
    }

    /// Stores a dataset: sealed under the study's keys when it is identifying or pseudonymised
    /// (destroyed with them, p.26), as plain JSON when it is anonymised — anonymised data is
    /// kept for as long as the Service decides (p.27), so it must outlive the keys.
    async fn save<T: Serialize>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
        identifying: bool,
        value: &T,
    ) -> Result<(), StepError> {
        let text = serde_json::to_string(value)
            .map_err(|e| fail(format!("dataset {name}: {e}"), false))?;
        let stored = if identifying {
            let mut b = vec![SEALED];
            b.extend(keys.seal(&format!("dataset:{name}"), &text));
            b
        } else {
            let mut b = vec![PLAIN];
            b.extend(text.into_bytes());
            b
        };
        self.store
            .put_dataset(study, name, identifying, &stored, micros(self.clock.now()))
            .await
            .map_err(store_err)
    }

    async fn load<T: DeserializeOwned>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
    ) -> Result<T, StepError> {
        self.load_optional(keys, study, name)
            .await?
            .ok_or_else(|| fail(format!("dataset {name} is missing"), false))
    }

    /// A dataset that may not exist (a source the study does not use).
    async fn load_optional<T: DeserializeOwned>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
    ) -> Result<Option<T>, StepError> {
        let Some(stored) = self.store.dataset(study, name).await.map_err(store_err)? else {
            return Ok(None);
        };
        let text = match stored.split_first() {
            Some((&SEALED, sealed)) => keys
                .open(&format!("dataset:{name}"), sealed)
                .map_err(|e| fail(e.to_string(), false))?,
            Some((&PLAIN, plain)) => String::from_utf8(plain.to_vec())
                .map_err(|_| fail(format!("dataset {name} is damaged"), false))?,
            _ => return Err(fail(format!("dataset {name} is damaged"), false)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| fail(format!("dataset {name}: {e}"), false))
    }

    async fn sample(&self, ctx: &StepContext<'_>) -> Result<Vec<Subject>, StepError> {
        match &self.service_is {
            // A configuration to fix, not a failure of the study: it waits.
            ServiceIs::None => Err(StepError::waiting(
                "no Service IS source is configured (studyflow worker --service-is)",
                LOOK_AGAIN,
            )),
            ServiceIs::Subjects(s) => Ok(s.as_ref().clone()),
            ServiceIs::Csv(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| fail(format!("cannot read the Service IS export: {e}"), true))?;
                let fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
                crate::csv_import::import(&bytes, &fields, links_or_follows_up(ctx.spec))
                    .map_err(|e| fail(e.to_string(), false))
            }
            ServiceIs::Sql(src) => {
                let mut fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
                if !fields.contains(&"personal_code") {
                    fields.push("personal_code");
                }
                let rows = studyflow_store::service_is::read(src, &fields)
                    .await
                    .map_err(store_err)?;
                Ok(rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| Subject {
                        key: format!("S{:06}", i + 1),
                        personal_code: values
                            .get("personal_code")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        previous_personal_code: values
                            .get("previous_personal_code")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        values,
                    })
                    .collect())
            }
        }
    }

    fn source_of(step_id: &str) -> Option<(Source, &'static str)> {
        if step_id.starts_with("information-centre") {
            Some((Source::InformationCentre, "answer/information_centre"))
        } else if step_id.starts_with("prison-administration") {
            Some((Source::PrisonRulings, "answer/prison_administration"))
        } else {
            None
        }
    }

    async fn run(&self, ctx: StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let needs_data = matches!(
            ctx.step.kind,
            StepKind::AcquireServiceIs
                | StepKind::Request
                | StepKind::Answer
                | StepKind::MergeLink
                | StepKind::DeleteIdentifiers
                | StepKind::Anonymise
                | StepKind::FollowUpRequest
                | StepKind::FollowUpAnonymise
                | StepKind::Transfer
                | StepKind::QualityCheck
                | StepKind::ConsentCollection
                | StepKind::ContactTransfer
        );
        if !needs_data {
            return self.without_data(&ctx).await;
        }
        // Keys are made by the first step that receives personal data: the extraction, or the
        // consent list when it comes first (never after destruction: the plan puts that last).
        let keys = self
            .keys(
                study,
                matches!(
                    ctx.step.kind,
                    StepKind::AcquireServiceIs | StepKind::ConsentCollection
                ),
            )
            .await?;
        let fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
        let record = match ctx.step.kind {
            StepKind::AcquireServiceIs if ctx.mode == TaskMode::TaskThenApply => {
                // Manual extraction (p.22.1): the researcher has put the export in the inbox.
                let path = self.inbox.join(study).join(MANUAL_EXTRACTION_FILE);
                if let Some(done) = self.imported_before(study, "service_is", &path).await? {
                    return Ok(done);
                }
                let bytes = self.supplied(&path)?;
                let sample =
                    crate::csv_import::import(&bytes, &fields, links_or_follows_up(ctx.spec))
                        .map_err(|e| {
                            StepError::waiting(
                                format!("{}: {e}; put a corrected export there", path.display()),
                                LOOK_AGAIN,
                            )
                        })?;
                self.save(&keys, study, "service_is", true, &sample).await?;
                crate::contact::shred(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display()), true))?;
                json!({"subjects": sample.len(), "imported_from": "manual extraction (MK403 p.22.1)", "export_deleted": true})
            }
            StepKind::AcquireServiceIs => {
                let sample = self.sample(&ctx).await?;
                self.save(&keys, study, "service_is", true, &sample).await?;
                json!({"subjects": sample.len()})
            }
            StepKind::QualityCheck => {
                // Prepared for the sign-off task (p.18, p.22.2): counts and row positions only.
                let subjects: Vec<Record> = self.load(&keys, study, "linked/subjects").await?;
                let today = riga_date(self.clock.now());
                let expected: Vec<&str> = ctx
                    .spec
                    .data_scope
                    .as_ref()
                    .and_then(|d| d.service_is.as_ref())
                    .map(|s| s.fields.0.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let expected: Vec<&str> = expected
                    .into_iter()
                    .filter(|k| {
                        studyflow_spec::catalogue::lookup(Source::ServiceIs, k).is_some_and(|f| {
                            f.class != studyflow_spec::catalogue::FieldClass::Identifier
                        })
                    })
                    .collect();
                let mut reports = BTreeMap::new();
                reports.insert(
                    "subjects".to_owned(),
                    crate::quality::check(&subjects, &expected, today),
                );
                if let Some(rows) = self
                    .load_optional::<BTreeMap<String, Vec<Record>>>(&keys, study, "linked/rows")
                    .await?
                {
                    for (source, records) in &rows {
                        let seen: std::collections::BTreeSet<&str> = records
                            .iter()
                            .flat_map(|r| r.values.keys().map(String::as_str))
                            .collect();
                        let seen: Vec<&str> = seen.into_iter().collect();
                        reports
                            .insert(source.clone(), crate::quality::check(records, &seen, today));
                    }
                }
                let findings: usize = reports
                    .values()
                    .map(crate::quality::QualityReport::findings)
                    .sum();
                json!({"quality": reports, "findings": findings,
                       "sign_off": "the service researcher checks this report before the data goes on (MK403 p.18, p.22.2)"})
            }
            StepKind::ConsentCollection => {
                // The consenting clients' contact details (p.31–32), supplied by the researcher.
                let path = self.inbox.join(study).join(CONSENTED_CONTACTS_FILE);
                if let Some(done) = self
                    .imported_before(study, "contact/consented", &path)
                    .await?
                {
                    return Ok(done);
                }
                let bytes = self.supplied(&path)?;
                let allowed: Vec<&str> = ctx
                    .spec
                    .direct_contact
                    .as_ref()
                    .map(|d| d.fields.iter().map(|f| f.0.as_str()).collect())
                    .unwrap_or_default();
                let contacts = crate::contact::import(&bytes, &allowed).map_err(|e| {
                    StepError::waiting(
                        format!("{}: {e}; put a corrected list there", path.display()),
                        LOOK_AGAIN,
                    )
                })?;
                self.save(&keys, study, "contact/consented", true, &contacts)
                    .await?;
                crate::contact::shred(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display()), true))?;
                json!({"contacts": contacts.rows.len(), "columns": contacts.columns, "list_deleted": true})
            }
            StepKind::ContactTransfer => {
                self.contract_in_place(&ctx).await?;
                let contacts: crate::contact::Contacts =
                    self.load(&keys, study, "contact/consented").await?;
                let key_file = self.recipients.join(format!("{study}.txt"));
                if !key_file.exists() {
                    return Err(StepError::waiting(
                        format!(
                            "the external researcher's age public key is not at {} yet (MK403 p.32)",
                            key_file.display()
                        ),
                        LOOK_AGAIN,
                    ));
                }
                let recipients = crate::contact::recipients(&key_file)
                    .map_err(|e| StepError::waiting(e.to_string(), LOOK_AGAIN))?;
                let path = self
                    .releases
                    .join(study)
                    .join(format!("contacts-v{}.csv.age", ctx.version));
                let t = crate::contact::transfer(&contacts, &recipients, &path)
                    .map_err(|e| fail(e.to_string(), true))?;
                let detail = json!({"contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256, "columns": contacts.columns});
                return Ok(StepOutput {
                    record: json!({"file": t.file, "contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256}),
                    subjects: Vec::new(),
                    audit: vec![("contact.transferred", detail)],
                });
            }
            StepKind::Request => {
                let (source, name) = Self::source_of(&ctx.step.id)
                    .ok_or_else(|| fail("a request to an unknown registry", false))?;
                let exchange = match source {
                    Source::InformationCentre => ctx
                        .spec
                        .data_scope
                        .as_ref()
                        .and_then(|d| d.information_centre.as_ref())
                        .map(|s| s.exchange),
                    _ => ctx
                        .spec
                        .data_scope
                        .as_ref()
                        .and_then(|d| d.prison_administration.as_ref())
                        .map(|s| s.exchange),
                };
                let sample: Vec<Subject> = self.load(&keys, study, "service_is").await?;
                let codes: Vec<&str> = sample.iter().map(|s| s.personal_code.as_str()).collect();
                if exchange == Some(Exchange::SecureElectronic) {
                    // The request goes to the outbox with its cover letter; the answer step
                    // waits for the inbox (MK403 p.12.3, p.14.2).
                    let id = exchange_id(study, ctx.version, &ctx.step.id);
                    let hash = self
                        .store
                        .version(study, Some(ctx.version))
                        .await
                        .map_err(store_err)?
                        .map(|v| v.plan_hash)
                        .unwrap_or_default();
                    let registry = if source == Source::InformationCentre {
                        crate::letters::Registry::InformationCentre
                    } else {
                        crate::letters::Registry::PrisonAdministration
                    };
                    let letter = crate::letters::Letters::new(None)
                        .and_then(|l| {
                            l.request(
                                ctx.spec,
                                &hash,
                                registry,
                                codes.len(),
                                riga_date(self.clock.now()),
                                "Valsts probācijas dienests",
                            )
                        })
                        .map_err(|e| fail(e.to_string(), false))?;
                    match crate::exchange::send(
                        &self.outbox.join(study),
                        &id,
                        &letter,
                        &fields,
                        &codes,
                    ) {
                        Ok(_) | Err(crate::exchange::ExchangeError::Exists(_)) => {}
                        Err(e) => return Err(fail(e.to_string(), true)),
                    }
                    return Ok(StepOutput {
                        record: json!({"sent": id, "subjects": codes.len()}),
                        subjects: Vec::new(),
                        audit: Vec::new(),
                    });
                }
                self.registries_configured()?;
                let rows = self
                    .connector
                    .query(&keys, source, &fields, &codes)
                    .await
                    .map_err(|e| {
                        let retryable = e.retryable();
                        fail(e.to_string(), retryable)
                    })?;
                self.save(&keys, study, name, true, &rows).await?;
                json!({"rows": rows.len()})
            }
            StepKind::Answer => {
                let (source, name) = Self::source_of(&ctx.step.id)
                    .ok_or_else(|| fail("an answer from an unknown registry", false))?;
                if self
                    .store
                    .dataset(study, name)
                    .await
                    .map_err(store_err)?
                    .is_none()
                {
                    // Secure electronic: the answer comes through the inbox.
                    let request_step = ctx.step.id.replace("-answer", "-request");
                    let id = exchange_id(study, ctx.version, &request_step);
                    let sample: Vec<Subject> = self.load(&keys, study, "service_is").await?;
                    let codes: Vec<&str> =
                        sample.iter().map(|s| s.personal_code.as_str()).collect();
                    let sources: &[Source] = if source == Source::InformationCentre {
                        &[Source::InformationCentre]
                    } else {
                        &[Source::PrisonRulings, Source::PrisonResocialisation]
                    };
                    let request = crate::answers::Request::new(
                        &keys,
                        sources,
                        &fields,
                        codes.iter().copied(),
                    );
                    match crate::exchange::receive(
                        &self.inbox.join(study),
                        &self.outbox.join(study),
                        &id,
                        &keys,
                        sources,
                        &request,
                    ) {
                        Ok(Some(rows)) => self.save(&keys, study, name, true, &rows).await?,
                        Ok(None) => {
                            return Err(StepError::waiting(
                                format!("the answer to {id} has not arrived in the inbox"),
                                std::time::Duration::from_secs(86_400),
                            ));
                        }
                        // A rejected answer waits to be replaced: nothing of it was imported.
                        Err(e) => {
                            return Err(StepError::waiting(
                                e.to_string(),
                                std::time::Duration::from_secs(86_400),
                            ));
                        }
                    }
                }
                let rows: Vec<AnswerRow> = self.load(&keys, study, name).await?;
                json!({"rows": rows.len(), "validated": true})
            }
            StepKind::MergeLink => {
                let sample: Vec<Subject> = self.load(&keys, study, "service_is").await?;
                let mut answers: Vec<AnswerRow> = Vec::new();
                for name in ["answer/information_centre", "answer/prison_administration"] {
                    if let Some(rows) = self
                        .load_optional::<Vec<AnswerRow>>(&keys, study, name)
                        .await?
                    {
                        answers.extend(rows);
                    }
                }
                let linked = linkage::link(&keys, &sample, &answers);
                self.save(&keys, study, "linked/subjects", true, &linked.subjects)
                    .await?;
                self.save(&keys, study, "linked/rows", true, &linked.rows)
                    .await?;
                serde_json::to_value(&linked.report).unwrap_or_default()
            }
            StepKind::DeleteIdentifiers => {
                // The follow-ups (p.19) are requested from the Service IS's own records: keep
                // only subject key → codes, sealed, for the engine alone; the rest goes.
                let sample: Vec<Subject> = self.load(&keys, study, "service_is").await?;
                let codes: BTreeMap<String, (String, Option<String>)> = sample
                    .iter()
                    .map(|s| {
                        (
                            s.key.clone(),
                            (s.personal_code.clone(), s.previous_personal_code.clone()),
                        )
                    })
                    .collect();
                self.save(&keys, study, "vault/codes", true, &codes).await?;
                if self
                    .store
                    .dataset(study, "linked/subjects")
                    .await
                    .map_err(store_err)?
                    .is_none()
                {
                    // No registry to link (the Service IS alone): the subjects without their
                    // identifiers are the study dataset.
                    let linked = linkage::link(&keys, &sample, &[]);
                    self.save(&keys, study, "linked/subjects", true, &linked.subjects)
                        .await?;
                    self.save(&keys, study, "linked/rows", true, &linked.rows)
                        .await?;
                }
                let deleted = self
                    .store
                    .delete_datasets(
                        study,
                        &[
                            "service_is",
                            "answer/information_centre",
                            "answer/prison_administration",
                        ],
                    )
                    .await
                    .map_err(store_err)?;
                json!({"datasets_deleted": deleted, "fields_deleted": ctx.step.fields})
            }
            StepKind::Anonymise => {
                let subjects: Vec<Record> = self.load(&keys, study, "linked/subjects").await?;
                let rows: BTreeMap<String, Vec<Record>> =
                    self.load(&keys, study, "linked/rows").await?;
                let policy = ctx
                    .spec
                    .anonymisation
                    .as_ref()
                    .map(Policy::from_spec)
                    .ok_or_else(|| fail("no anonymisation policy", false))?;
                let out = anonymise::anonymise_study(
                    &subjects,
                    &rows,
                    &policy,
                    &anonymise::random_secret(),
                )
                .map_err(|b| fail(b.to_string(), false))?;
                let tables = &out.tables;
                self.save(&keys, study, "anonymised/tables", false, &tables)
                    .await?;
                self.save(&keys, study, "vault/study_ids", true, &out.vault)
                    .await?;
                // The cohort for the waves: study IDs and anchor dates (p.19).
                let cohort: Vec<Cohort> = match &ctx.spec.follow_up {
                    Some(f) => {
                        let [start_key, end_key] = f.anchor_event.date_fields();
                        subjects
                            .iter()
                            .filter_map(|s| {
                                let id = out.vault.get(&s.subject)?;
                                let date = |k: &str| {
                                    s.values
                                        .get(k)
                                        .and_then(Value::as_str)
                                        .and_then(|d| d.parse().ok())
                                };
                                Some(Cohort {
                                    pseudonym: id.clone(),
                                    start: date(start_key)?,
                                    end: date(end_key),
                                })
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                return Ok(StepOutput {
                    record: json!({"k": out.report, "dropped": out.dropped, "subjects": out.tables["subjects"].len()}),
                    subjects: cohort,
                    audit: Vec::new(),
                });
            }
            StepKind::FollowUpRequest => {
                let ids: BTreeMap<String, String> =
                    self.load(&keys, study, "vault/study_ids").await?;
                let codes: BTreeMap<String, (String, Option<String>)> =
                    self.load(&keys, study, "vault/codes").await?;
                let key = ids
                    .iter()
                    .find(|(_, id)| id.as_str() == ctx.subject)
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| fail("the subject is not in the vault", false))?;
                let (code, _) = codes
                    .get(&key)
                    .ok_or_else(|| fail("the subject's code is not in the vault", false))?;
                self.registries_configured()?;
                let rows = self
                    .connector
                    .query(&keys, Source::InformationCentre, &fields, &[code.as_str()])
                    .await
                    .map_err(|e| {
                        let retryable = e.retryable();
                        fail(e.to_string(), retryable)
                    })?;
                self.save(
                    &keys,
                    study,
                    &format!("followup/{}/{}/raw", ctx.step.id, ctx.subject),
                    true,
                    &rows,
                )
                .await?;
                json!({"rows": rows.len()})
            }
            StepKind::FollowUpAnonymise => {
                let request_id = ctx.step.id.replace("-anonymise", "-request");
                let raw_name = format!("followup/{request_id}/{}/raw", ctx.subject);
                let rows: Vec<AnswerRow> = self.load(&keys, study, &raw_name).await?;
                // Anonymised on arrival (p.20): identifiers dropped, under the study ID.
                let policy = ctx
                    .spec
                    .anonymisation
                    .as_ref()
                    .map(Policy::from_spec)
                    .ok_or_else(|| fail("no anonymisation policy", false))?;
                let records: Vec<Record> = rows
                    .iter()
                    .map(|r| Record {
                        subject: ctx.subject.to_owned(),
                        values: r.values.clone(),
                    })
                    .collect();
                let keep_dates = Policy {
                    quasi_identifiers: Vec::new(),
                    date_policy: studyflow_spec::model::DatePolicy::Month,
                    ..policy
                };
                let out = anonymise::anonymise(&records, &keep_dates, &anonymise::random_secret())
                    .map_err(|b| fail(b.to_string(), false))?;
                let rows: Vec<AnonRecord> = out
                    .records
                    .into_iter()
                    .map(|mut r| {
                        r.study_id = ctx.subject.to_owned();
                        r
                    })
                    .collect();
                self.save(
                    &keys,
                    study,
                    &format!("followup/{request_id}/{}/anonymised", ctx.subject),
                    false,
                    &rows,
                )
                .await?;
                self.store
                    .delete_datasets(study, &[raw_name.as_str()])
                    .await
                    .map_err(store_err)?;
                json!({"rows": rows.len()})
            }
            StepKind::Transfer => {
                self.contract_in_place(&ctx).await?;
                let tables: BTreeMap<String, Vec<AnonRecord>> =
                    self.load(&keys, study, "anonymised/tables").await?;
                let folder = self.releases.join(study).join(format!(
                    "{}-v{}",
                    riga_date(self.clock.now()),
                    ctx.version
                ));
                let list: Vec<crate::release::Table<'_>> = tables
                    .iter()
                    .map(|(name, records)| crate::release::Table { name, records })
                    .collect();
                match crate::release::write(&folder, &list) {
                    Ok(w) => {
                        let detail = json!({"files": w.files});
                        return Ok(StepOutput {
                            record: json!({"release": w.folder, "files": w.files.len()}),
                            subjects: Vec::new(),
                            audit: vec![("release.written", detail)],
                        });
                    }
                    Err(crate::release::ReleaseError::Exists(_)) => {
                        json!({"release": folder, "written_before": true})
                    }
                    Err(e) => return Err(fail(e.to_string(), false)),
                }
            }
            _ => return self.without_data(&ctx).await,
        };
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: Vec::new(),
        })
    }

    /// A retried import whose data is already saved (the file was removed after the save, the
    /// commit did not happen): nothing to import again; a file still there is removed.
    async fn imported_before(
        &self,
        study: &str,
        dataset: &str,
        file: &std::path::Path,
    ) -> Result<Option<StepOutput>, StepError> {
        if self
            .store
            .dataset(study, dataset)
            .await
            .map_err(store_err)?
            .is_none()
        {
            return Ok(None);
        }
        if file.exists() {
            crate::contact::shred(file)
                .map_err(|e| fail(format!("{}: {e}", file.display()), true))?;
        }
        Ok(Some(StepOutput {
            record: json!({"imported_before": true}),
            ..StepOutput::default()
        }))
    }

    /// Nothing leaves for an external researcher without the contract, its non-disclosure
    /// declarations and recorded measures (MK403 p.30.2, p.33): the plan's gate comes first,
    /// this checks once more.
    async fn contract_in_place(&self, ctx: &StepContext<'_>) -> Result<(), StepError> {
        if ctx.spec.external.is_none() {
            return Ok(());
        }
        let contract = self.store.contract(ctx.study).await.map_err(store_err)?;
        if contract.is_some_and(|c| c.measures_recorded) {
            Ok(())
        } else {
            Err(fail(
                "no contract with non-disclosure declarations and recorded measures: nothing is transferred to an external researcher (MK403 p.30.2, p.33)",
                false,
            ))
        }
    }

    /// A registry query needs the registries' address; without it the step waits for the
    /// configuration to be fixed (it is not the study's failure).
    fn registries_configured(&self) -> Result<(), StepError> {
        if self.connector.is_configured() {
            Ok(())
        } else {
            Err(StepError::waiting(
                "no registry address is configured (studyflow worker --registries)",
                LOOK_AGAIN,
            ))
        }
    }

    /// A file a person supplies through the inbox; the step waits while it is not there.
    fn supplied(&self, path: &std::path::Path) -> Result<Vec<u8>, StepError> {
        match std::fs::read(path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StepError::waiting(
                format!("{} is not there yet", path.display()),
                LOOK_AGAIN,
            )),
            Err(e) => Err(fail(format!("{}: {e}", path.display()), true)),
        }
    }
}

impl RegistryDataPlane {
    /// Steps that move no data: human decisions recorded by their tasks, destruction (the store
    /// deletes the identifying datasets and the keys as it finishes), and retention.
    async fn without_data(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let mut record = json!({"kind": ctx.step.kind});
        if ctx.step.kind == StepKind::DestroyIdentifying {
            // The store deletes the identifying datasets and the keys as this step finishes;
            // the files that held identifiers in plaintext go now: what people put in the inbox
            // and the request files in the outbox (a study terminated mid-exchange leaves
            // some). Cover letters carry no identifier and stay as the record of the exchange.
            let mut files = files_below(&self.inbox.join(ctx.study));
            files.extend(
                files_below(&self.outbox.join(ctx.study))
                    .into_iter()
                    .filter(|p| p.file_name().is_some_and(|n| n == "request.json")),
            );
            for f in &files {
                crate::contact::shred(f)
                    .map_err(|e| fail(format!("{}: {e}", f.display()), true))?;
            }
            record = json!({"plaintext_files_deleted": files.len()});
        }
        if ctx.step.kind == StepKind::AnonymisedRetention {
            let keep = ctx
                .spec
                .retention
                .as_ref()
                .and_then(|r| r.anonymised_data.as_ref())
                .map(|t| t.keep);
            if keep.is_some_and(|k| k != studyflow_spec::model::Keep::Permanent) {
                let names = self
                    .store
                    .dataset_names(ctx.study, "anonymised/")
                    .await
                    .map_err(store_err)?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let n = self
                    .store
                    .delete_datasets(ctx.study, &names)
                    .await
                    .map_err(store_err)?;
                record = json!({"anonymised_datasets_deleted": n});
            } else {
                record = json!({"anonymised_data": "kept permanently (MK403 p.27)"});
            }
        }
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: Vec::new(),
        })
    }
}

impl DataPlane for RegistryDataPlane {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(self.run(ctx))
    }
}
