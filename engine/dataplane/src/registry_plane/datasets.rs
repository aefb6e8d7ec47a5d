//! A study's datasets between steps, behind one typed API that owns their envelope.
//!
//! Each dataset is declared once in [`super::names`] with the type it holds and how it is
//! stored: **sealed** under the study's keys when it is identifying or pseudonymised — destroyed
//! with them (MK403 p.26), so no step can read it afterwards — or **anonymised**, plain, kept
//! for as long as the Service decides (p.27) and readable without any key. A step names the
//! dataset, never the envelope: it cannot store identifying data in plaintext by passing the
//! wrong flag, nor read a dataset as another type.
//!
//! Stored bytes: one byte for the envelope, then for a sealed dataset the nonce, the JSON text
//! encrypted in place and the tag (the layout of [`StudyKeys::seal`]); for an anonymised one the
//! JSON text. Encoding, sealing, opening and decoding run through
//! [`studyflow_runtime::dataplane::blocking`]: a dataset of a hundred thousand subjects takes
//! a while, and the lease heartbeat must not wait for it. A large dataset is held once in
//! memory as structures and once as bytes, never as a second or third copy of the bytes.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use studyflow_runtime::clock::micros;
use studyflow_runtime::dataplane::{StepError, blocking};

use super::{RegistryDataPlane, fail, store_err};
use crate::vault::{NONCE, StudyKeys};

/// The first byte of a stored dataset.
const SEALED: u8 = 1;
const PLAIN: u8 = 0;

/// How a dataset is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Envelope {
    /// Identifying or pseudonymised: sealed under the study's keys, destroyed with them.
    Sealed,
    /// Anonymised, plain, with the time it was stored.
    Anonymised,
    /// Anonymised, without the time it was stored: the day a subject's wave arrives is its
    /// anchor date plus the wave's years, and would date every relative day of its released
    /// rows (p.7).
    AnonymisedUntimed,
}

/// A dataset of a study: its name and envelope, and the type it holds.
pub(super) struct Dataset<T> {
    name: Cow<'static, str>,
    envelope: Envelope,
    of: PhantomData<fn() -> T>,
}

impl<T> Dataset<T> {
    pub(super) const fn sealed(name: &'static str) -> Dataset<T> {
        Dataset::named(Cow::Borrowed(name), Envelope::Sealed)
    }

    pub(super) const fn anonymised(name: &'static str) -> Dataset<T> {
        Dataset::named(Cow::Borrowed(name), Envelope::Anonymised)
    }

    pub(super) const fn named(name: Cow<'static, str>, envelope: Envelope) -> Dataset<T> {
        Dataset {
            name,
            envelope,
            of: PhantomData,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The associated data a sealed dataset is bound to: its name, so a ciphertext cannot be
    /// moved to another dataset.
    fn field(&self) -> String {
        format!("dataset:{}", self.name)
    }
}

/// The datasets of one study, as a step body sees them: with the study's keys when the step
/// handles identifying data, without them when it handles anonymised data only.
pub(super) struct Datasets<'a> {
    plane: &'a RegistryDataPlane,
    study: &'a str,
    keys: Option<StudyKeys>,
}

impl RegistryDataPlane {
    /// The study's datasets with its keys: made and stored wrapped when the first data arrives
    /// (`create`; the first writer wins); afterwards only read — once destroyed they are never
    /// made again.
    pub(super) async fn sealed_datasets<'a>(
        &'a self,
        study: &'a str,
        create: bool,
    ) -> Result<Datasets<'a>, StepError> {
        let wrapped = match self.store.study_keys(study).await.map_err(store_err)? {
            Some(w) => w,
            None if !create => {
                return Err(fail(
                    "the study's keys were destroyed (MK403 p.26); its identifying data no longer exists",
                    false,
                ));
            }
            None => {
                let keys = StudyKeys::generate(study);
                let recipient = keys.note_recipient().unwrap_or_default();
                self.store
                    .put_study_keys(
                        study,
                        &keys.wrap(&self.master),
                        &recipient,
                        micros(self.clock.now()),
                    )
                    .await
                    .map_err(store_err)?
            }
        };
        let keys = StudyKeys::unwrap(study, &wrapped, &self.master)
            .map_err(|e| fail(e.to_string(), false))?;
        Ok(Datasets {
            plane: self,
            study,
            keys: Some(keys),
        })
    }

    /// The study's anonymised datasets: no key is needed, and they outlive the keys (p.27).
    pub(super) fn anonymised_datasets<'a>(&'a self, study: &'a str) -> Datasets<'a> {
        Datasets {
            plane: self,
            study,
            keys: None,
        }
    }
}

impl Datasets<'_> {
    /// The study's keys (a step with identifying data has them).
    pub(super) fn keys(&self) -> Result<&StudyKeys, StepError> {
        self.keys
            .as_ref()
            .ok_or_else(|| fail("identifying data without the study's keys", false))
    }

    /// Stores `value` in its dataset's envelope, replacing what was there.
    pub(super) async fn save<T: Serialize>(
        &self,
        dataset: &Dataset<T>,
        value: &T,
    ) -> Result<(), StepError> {
        let stored = blocking(|| self.envelope(dataset, value))?;
        self.put(dataset, &stored).await
    }

    /// Stores anonymised `value` under the name `named` makes of its JSON text (a joined wave:
    /// the same name when a join is retried), encoding it once.
    pub(super) async fn save_named_by_content<T: Serialize>(
        &self,
        named: impl FnOnce(&[u8]) -> Dataset<T>,
        value: &T,
    ) -> Result<(), StepError> {
        let mut stored = vec![PLAIN];
        serde_json::to_writer(&mut stored, value)
            .map_err(|e| fail(format!("dataset: {e}"), false))?;
        let dataset = named(&stored[1..]);
        if dataset.envelope == Envelope::Sealed {
            return Err(fail(
                format!(
                    "dataset {} is sealed: it cannot be named by its content",
                    dataset.name
                ),
                false,
            ));
        }
        self.put(&dataset, &stored).await
    }

    async fn put<T>(&self, dataset: &Dataset<T>, stored: &[u8]) -> Result<(), StepError> {
        let at = match dataset.envelope {
            Envelope::AnonymisedUntimed => 0,
            Envelope::Sealed | Envelope::Anonymised => micros(self.plane.clock.now()),
        };
        self.plane
            .store
            .put_dataset(
                self.study,
                dataset.name(),
                dataset.envelope == Envelope::Sealed,
                stored,
                at,
            )
            .await
            .map_err(store_err)
    }

    fn envelope<T: Serialize>(
        &self,
        dataset: &Dataset<T>,
        value: &T,
    ) -> Result<Vec<u8>, StepError> {
        let encoding = |e: serde_json::Error| fail(format!("dataset {}: {e}", dataset.name), false);
        let mut buf = Vec::new();
        match dataset.envelope {
            Envelope::Sealed => {
                let keys = self.keys()?;
                buf.resize(1 + NONCE, 0);
                buf[0] = SEALED;
                serde_json::to_writer(&mut buf, value).map_err(encoding)?;
                keys.seal_in_place(&dataset.field(), &mut buf, 1);
            }
            Envelope::Anonymised | Envelope::AnonymisedUntimed => {
                buf.push(PLAIN);
                serde_json::to_writer(&mut buf, value).map_err(encoding)?;
            }
        }
        Ok(buf)
    }

    /// The dataset, which must exist.
    pub(super) async fn load<T: DeserializeOwned>(
        &self,
        dataset: &Dataset<T>,
    ) -> Result<T, StepError> {
        self.load_optional(dataset)
            .await?
            .ok_or_else(|| fail(format!("dataset {} is missing", dataset.name), false))
    }

    /// A dataset that may not exist (a source the study does not use).
    pub(super) async fn load_optional<T: DeserializeOwned>(
        &self,
        dataset: &Dataset<T>,
    ) -> Result<Option<T>, StepError> {
        let Some(stored) = self
            .plane
            .store
            .dataset(self.study, dataset.name())
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        blocking(|| self.open(dataset, stored)).map(Some)
    }

    /// Every dataset whose name starts with `prefix`, decoded one at a time and handed to
    /// `each` (the joined follow-up waves: read all at once they would be held twice, as bytes
    /// and as structures).
    pub(super) async fn for_each_under<T: DeserializeOwned>(
        &self,
        prefix: &str,
        envelope: Envelope,
        mut each: impl FnMut(T),
    ) -> Result<(), StepError> {
        for name in self.names_under(prefix).await? {
            if let Some(v) = self
                .load_optional(&Dataset::named(name.into(), envelope))
                .await?
            {
                each(v);
            }
        }
        Ok(())
    }

    fn open<T: DeserializeOwned>(
        &self,
        dataset: &Dataset<T>,
        mut stored: Vec<u8>,
    ) -> Result<T, StepError> {
        let range = match (stored.first(), dataset.envelope) {
            (Some(&SEALED), Envelope::Sealed) => self
                .keys()?
                .open_in_place(&dataset.field(), &mut stored, 1)
                .map_err(|e| fail(e.to_string(), false))?,
            (Some(&PLAIN), Envelope::Anonymised | Envelope::AnonymisedUntimed) => 1..stored.len(),
            (Some(&SEALED | &PLAIN), _) => {
                return Err(fail(
                    format!(
                        "dataset {} is not stored as {} data",
                        dataset.name,
                        if dataset.envelope == Envelope::Sealed {
                            "sealed"
                        } else {
                            "anonymised"
                        }
                    ),
                    false,
                ));
            }
            _ => return Err(fail(format!("dataset {} is damaged", dataset.name), false)),
        };
        serde_json::from_slice(&stored[range])
            .map_err(|e| fail(format!("dataset {}: {e}", dataset.name), false))
    }

    /// Whether the dataset exists (a step retried after its commit was lost finds its output).
    pub(super) async fn exists<T>(&self, dataset: &Dataset<T>) -> Result<bool, StepError> {
        self.plane
            .store
            .dataset_exists(self.study, dataset.name())
            .await
            .map_err(store_err)
    }

    /// Deletes datasets by name; how many there were.
    pub(super) async fn delete(&self, names: &[&str]) -> Result<u64, StepError> {
        self.plane
            .store
            .delete_datasets(self.study, names)
            .await
            .map_err(store_err)
    }

    /// The names of the datasets that start with `prefix`.
    pub(super) async fn names_under(&self, prefix: &str) -> Result<Vec<String>, StepError> {
        self.plane
            .store
            .dataset_names(self.study, prefix)
            .await
            .map_err(store_err)
    }
}
