//! Anonymisation of a study dataset (MK403 p.7, p.20, p.24) and the k-anonymity check that
//! guards every release.
//!
//! What it does, in order:
//! 1. keeps only catalogue fields that are not identifiers: personal codes, proceeding and
//!    ruling numbers, case numbers, contact data (p.7, p.17.3, p.22.3–22.4) and any field the
//!    catalogue does not know — identifiers other systems assigned (p.24) — are dropped;
//! 2. replaces each subject's key by a random study ID: an HMAC of the key under a fresh
//!    random secret that is never stored, so the mapping exists only in the returned vault
//!    (which the engine keeps encrypted and destroys with the study's keys);
//! 3. treats dates by the spec's policy: kept, coarsened to the month, or turned into days
//!    relative to the subject's anchor date;
//! 4. checks k-anonymity over the declared quasi-identifiers: every combination of their values
//!    must occur at least `k` times. A smaller class blocks the release with a report of the
//!    classes (their quasi-identifier values and sizes, nothing identifying) — unless the spec
//!    allows suppression, when those records are removed and the removal is reported.
//!
//! Missing values count the conservative way: a missing quasi-identifier is a value of its own
//! ("missing"), not a wildcard that could join any class; records with gaps must form classes of
//! `k` among themselves.

use crate::values::Values;
use std::collections::{BTreeMap, HashMap};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use studyflow_spec::catalogue::{self, FieldClass};
use studyflow_spec::model::DatePolicy;

/// One subject's record: catalogue key → value, under the subject's key in the study.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub subject: String,
    pub values: Values,
}

/// The anonymisation the spec asks for (MK403 p.7).
#[derive(Debug, Clone)]
pub struct Policy {
    pub date_policy: DatePolicy,
    /// Service IS date field the dates are counted from (`relative_to_anchor`).
    pub anchor_field: Option<String>,
    pub quasi_identifiers: Vec<String>,
    pub k: usize,
    pub suppression_allowed: bool,
    /// Whole-number fields released in bands of this width (`1985–1989`).
    pub bands: BTreeMap<String, i64>,
}

impl Policy {
    pub fn from_spec(a: &studyflow_spec::model::Anonymisation) -> Policy {
        Policy {
            date_policy: a.date_policy,
            anchor_field: a.anchor_field.clone(),
            quasi_identifiers: a.quasi_identifiers.clone(),
            k: a.k.0 as usize,
            suppression_allowed: a.suppression_allowed,
            bands: a
                .bands
                .iter()
                .map(|(k, w)| (k.clone(), i64::from(w.0)))
                .collect(),
        }
    }
}

/// An anonymised record, under its study ID.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnonRecord {
    pub study_id: String,
    pub values: Values,
}

/// One equivalence class over the quasi-identifiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Class {
    /// (quasi-identifier, value as released) pairs.
    pub values: Vec<(String, String)>,
    pub size: usize,
}

/// What the k-anonymity check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KReport {
    pub k: usize,
    pub records: usize,
    pub classes: usize,
    /// Size of the smallest class (0 for an empty dataset).
    pub smallest: usize,
    /// The classes smaller than `k`, largest first.
    pub offending: Vec<Class>,
    /// Records removed because their class was smaller than `k` (suppression allowed).
    pub suppressed: usize,
}

/// The anonymised dataset.
#[derive(Debug, Clone)]
pub struct Anonymised {
    pub records: Vec<AnonRecord>,
    /// Subject key → study ID: the pseudonym vault (the engine alone keeps it, encrypted).
    pub vault: HashMap<String, String>,
    /// Fields dropped as identifiers or unknown to the catalogue (names only).
    pub dropped: Vec<String>,
    pub report: KReport,
}

/// A release blocked by k-anonymity (suppression not allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("k-anonymity not reached: {} class(es) smaller than k = {} (the smallest has {}); the release is blocked (MK403 p.7)", .0.offending.len(), .0.k, .0.smallest)]
pub struct Blocked(pub KReport);

fn is_date_field(key: &str) -> bool {
    catalogue::sources_of(key).any(|f| f.class == FieldClass::Date)
}

fn is_releasable(key: &str) -> bool {
    let mut fields = catalogue::sources_of(key).peekable();
    fields.peek().is_some() && catalogue::sources_of(key).all(|f| f.class != FieldClass::Identifier)
}

fn date_of(v: &Value) -> Option<jiff::civil::Date> {
    v.as_str()?.parse().ok()
}

/// A value as a class key shows it: missing values are a value of their own.
fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "missing".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Anonymises `records` by `policy`. `secret` keys the study IDs: pass fresh random bytes
/// (see [`random_secret`]) and drop them; tests pass a fixed one.
pub fn anonymise(
    records: &[Record],
    policy: &Policy,
    secret: &[u8; 32],
) -> Result<Anonymised, Blocked> {
    let anchor_of = |r: &Record| {
        policy
            .anchor_field
            .as_ref()
            .and_then(|a| r.values.get(a))
            .and_then(date_of)
    };
    let (mut out, vault, dropped) = transform(records, policy, &StudyIds::new(secret), anchor_of);
    let report = check(&mut out, policy)?;
    Ok(Anonymised {
        records: out,
        vault,
        dropped,
        report,
    })
}

/// Identifiers dropped, study IDs, dates and bands, in a fixed order that says nothing about
/// the subjects' order in the source; `anchor_of` gives a record's anchor date.
fn transform(
    records: &[Record],
    policy: &Policy,
    ids: &StudyIds,
    anchor_of: impl Fn(&Record) -> Option<jiff::civil::Date>,
) -> (Vec<AnonRecord>, HashMap<String, String>, Vec<String>) {
    let mut dropped: Vec<String> = Vec::new();
    let mut vault = HashMap::with_capacity(records.len());
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let study_id = ids.of(&r.subject);
        vault.insert(r.subject.clone(), study_id.clone());
        let anchor = anchor_of(r);
        let mut values = Values::new();
        for (key, value) in &r.values {
            if !is_releasable(key) {
                if !dropped.iter().any(|d| d == key) {
                    dropped.push(key.to_owned());
                }
                continue;
            }
            let value = if is_date_field(key) {
                match (policy.date_policy, date_of(value)) {
                    (DatePolicy::Keep, _) => value.clone(),
                    // Not a date: it can be neither coarsened nor made relative, so it is not
                    // released (as the bulk path treats it).
                    (_, None) => Value::Null,
                    (DatePolicy::Month, Some(d)) => Value::String(month(d)),
                    (DatePolicy::RelativeToAnchor, Some(d)) => match anchor {
                        Some(a) => Value::from((d - a).get_days()),
                        // No anchor for this subject: the date cannot be made relative, so it
                        // is not released.
                        None => Value::Null,
                    },
                }
            } else if let (Some(width), Some(n)) = (policy.bands.get(key), value.as_i64()) {
                Value::String(band(n, *width))
            } else {
                value.clone()
            };
            values.insert(key, value);
        }
        out.push(AnonRecord { study_id, values });
    }
    dropped.sort();
    out.sort_by(|a, b| a.study_id.cmp(&b.study_id));
    (out, vault, dropped)
}

/// The rows of one subject already known by its study ID — a follow-up answer, anonymised on
/// arrival (MK403 p.20): identifiers dropped, dates by the policy (relative to `anchor`),
/// bands. No k-anonymity check here: the subject's class was checked with the study's
/// subjects, and a suppressed subject's rows are dropped when they are joined.
pub fn anonymise_rows(
    study_id: &str,
    rows: impl IntoIterator<Item = Values>,
    policy: &Policy,
    anchor: Option<jiff::civil::Date>,
) -> Vec<Values> {
    let records: Vec<Record> = rows
        .into_iter()
        .map(|values| Record {
            subject: study_id.to_owned(),
            values,
        })
        .collect();
    let (out, _, _) = transform(&records, policy, &StudyIds::new(&[0; 32]), |_| anchor);
    out.into_iter().map(|r| r.values).collect()
}

/// An anonymised study: its tables (`subjects` and one per source) under one set of study IDs.
#[derive(Debug, Clone)]
pub struct Study {
    pub tables: BTreeMap<String, Vec<AnonRecord>>,
    /// Subject key → study ID (every subject, the suppressed ones too).
    pub vault: HashMap<String, String>,
    pub dropped: Vec<String>,
    pub report: KReport,
}

/// Anonymises a linked study: the subjects with the k-anonymity check over their
/// quasi-identifiers, and each source's rows (`rows`, under their subjects' keys) with the
/// same study IDs and date policy — dates relative to their subject's anchor. The rows of a
/// subject suppressed for k-anonymity go with it: a row under a study ID the subjects' table
/// does not show would still single it out.
pub fn anonymise_study(
    subjects: &[Record],
    rows: &BTreeMap<String, Vec<Record>>,
    policy: &Policy,
    secret: &[u8; 32],
) -> Result<Study, Blocked> {
    let out = anonymise(subjects, policy, secret)?;
    let anchors: HashMap<&str, jiff::civil::Date> = subjects
        .iter()
        .filter_map(|s| {
            let a = policy.anchor_field.as_deref()?;
            Some((s.subject.as_str(), date_of(s.values.get(a)?)?))
        })
        .collect();
    let released: std::collections::HashSet<&str> =
        out.records.iter().map(|r| r.study_id.as_str()).collect();
    let ids = StudyIds::new(secret);
    let mut tables = BTreeMap::new();
    let mut dropped = out.dropped.clone();
    for (source, records) in rows {
        let kept: Vec<Record> = records
            .iter()
            .filter(|r| {
                out.vault
                    .get(&r.subject)
                    .is_some_and(|id| released.contains(id.as_str()))
            })
            .cloned()
            .collect();
        let (t, _, d) = transform(&kept, policy, &ids, |r| {
            anchors.get(r.subject.as_str()).copied()
        });
        dropped.extend(d);
        tables.insert(source.clone(), t);
    }
    dropped.sort();
    dropped.dedup();
    tables.insert("subjects".to_owned(), out.records);
    Ok(Study {
        tables,
        vault: out.vault,
        dropped,
        report: out.report,
    })
}

/// The k-anonymity check; removes the small classes when suppression is allowed.
pub fn check(records: &mut Vec<AnonRecord>, policy: &Policy) -> Result<KReport, Blocked> {
    let key = |r: &AnonRecord| -> Vec<String> {
        policy
            .quasi_identifiers
            .iter()
            .map(|q| shown(r.values.get(q)))
            .collect()
    };
    let mut sizes: HashMap<Vec<String>, usize> = HashMap::new();
    for r in records.iter() {
        *sizes.entry(key(r)).or_default() += 1;
    }
    let report = k_report(&sizes, records.len(), policy, |values| values.clone())?;
    let k = report.k;
    let before = records.len();
    records.retain(|r| sizes.get(&key(r)).is_some_and(|n| *n >= k));
    Ok(KReport {
        suppressed: before - records.len(),
        ..report
    })
}

/// The report of the k-anonymity check from the class sizes, whatever the class keys are
/// (`show` turns a key into the released values of the quasi-identifiers, in the policy's
/// order): `Err` when a class is smaller than k and suppression is not allowed. The caller
/// removes the small classes when it is (and sets `suppressed`).
pub fn k_report<K>(
    sizes: &HashMap<K, usize>,
    records: usize,
    policy: &Policy,
    show: impl Fn(&K) -> Vec<String>,
) -> Result<KReport, Blocked> {
    let k = policy.k.max(1);
    let mut offending: Vec<Class> = sizes
        .iter()
        .filter(|(_, n)| **n < k)
        .map(|(values, n)| Class {
            values: policy
                .quasi_identifiers
                .iter()
                .cloned()
                .zip(show(values))
                .collect(),
            size: *n,
        })
        .collect();
    offending.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.values.cmp(&b.values)));
    let report = KReport {
        k,
        records,
        classes: sizes.len(),
        smallest: sizes.values().copied().min().unwrap_or(0),
        offending,
        suppressed: 0,
    };
    if !report.offending.is_empty() && !policy.suppression_allowed {
        return Err(Blocked(report));
    }
    Ok(report)
}

/// A whole number's band of `width`: `1985–1989` for 1987 in bands of five.
pub fn band(n: i64, width: i64) -> String {
    let low = n.div_euclid(width) * width;
    format!("{low}–{}", low + width - 1)
}

/// A date coarsened to its month (`2026-03`).
pub fn month(d: jiff::civil::Date) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Study IDs under one secret, keyed once (see [`study_id`]).
#[derive(Clone)]
pub struct StudyIds(Hmac<Sha256>);

impl StudyIds {
    pub fn new(secret: &[u8; 32]) -> StudyIds {
        StudyIds(<Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length"))
    }

    /// The study ID of a subject key: `P-` and the first 16 hex digits of the HMAC.
    pub fn of(&self, subject: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(subject.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut out = String::with_capacity(18);
        out.push_str("P-");
        for b in &bytes[..8] {
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        out
    }
}

/// A study ID: the first 16 hex digits of HMAC-SHA-256(secret, subject key).
pub fn study_id(secret: &[u8; 32], subject: &str) -> String {
    StudyIds::new(secret).of(subject)
}

/// 32 random bytes from the operating system, for one anonymisation's study IDs.
pub fn random_secret() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS generator failing is not something to anonymise around.
    getrandom::fill(&mut b).expect("the operating system's random generator");
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(subject: &str, values: serde_json::Value) -> Record {
        Record {
            subject: subject.into(),
            values: values
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn policy(k: usize, suppression: bool, dates: DatePolicy) -> Policy {
        Policy {
            date_policy: dates,
            anchor_field: Some("supervision_start_date".into()),
            quasi_identifiers: vec!["sex".into(), "birth_year".into(), "region".into()],
            k,
            suppression_allowed: suppression,
            bands: BTreeMap::new(),
        }
    }

    fn cohort() -> Vec<Record> {
        let mut v = Vec::new();
        for i in 0..12 {
            v.push(record(
                &format!("subject-{i}"),
                json!({
                    "personal_code": "010180-12345",
                    "case_number": "R-2026-00012",
                    "email": "someone@example.lv",
                    "population_register_id": "PR-77",
                    "sex": if i < 6 { "male" } else { "female" },
                    "birth_year": if i < 11 { 1990 } else { 1950 },
                    "region": "Rīga",
                    "supervision_start_date": "2026-03-10",
                    "supervision_end_date": "2027-03-09",
                    "offence_date": "2027-01-20",
                }),
            ));
        }
        v
    }

    #[test]
    fn identifiers_and_unknown_fields_go_and_dates_follow_the_policy() {
        let secret = [7u8; 32];
        let a = anonymise(
            &cohort(),
            &policy(1, false, DatePolicy::RelativeToAnchor),
            &secret,
        )
        .unwrap();
        assert_eq!(
            a.dropped,
            [
                "case_number",
                "email",
                "personal_code",
                "population_register_id"
            ]
        );
        let r = &a.records[0];
        assert!(!r.values.contains_key("personal_code"));
        assert_eq!(r.values["supervision_start_date"], json!(0));
        assert_eq!(r.values["supervision_end_date"], json!(364));
        assert_eq!(r.values["offence_date"], json!(316));
        let m = anonymise(&cohort(), &policy(1, false, DatePolicy::Month), &secret).unwrap();
        assert_eq!(m.records[0].values["offence_date"], json!("2027-01"));
        // Study IDs are not the subject keys, are stable for one secret, differ for another.
        assert!(
            a.vault
                .values()
                .all(|id| id.starts_with("P-") && !id.contains("subject"))
        );
        assert_eq!(a.vault["subject-3"], study_id(&secret, "subject-3"));
        assert_ne!(
            study_id(&secret, "subject-3"),
            study_id(&[8u8; 32], "subject-3")
        );
        let text = serde_json::to_string(&a.records.iter().map(|r| &r.values).collect::<Vec<_>>())
            .unwrap();
        assert!(
            !text.contains("010180") && !text.contains("example.lv") && !text.contains("subject-")
        );
    }

    #[test]
    fn a_small_class_blocks_the_release_or_is_suppressed() {
        let secret = [1u8; 32];
        // 6 men 1990, 5 women 1990, 1 woman 1950: with k = 5 the lone woman is a class of one.
        let e = anonymise(&cohort(), &policy(5, false, DatePolicy::Keep), &secret).unwrap_err();
        assert_eq!(e.0.offending.len(), 1);
        assert_eq!(e.0.offending[0].size, 1);
        assert_eq!(
            e.0.offending[0].values[1],
            ("birth_year".to_owned(), "1950".to_owned())
        );
        assert_eq!(e.0.smallest, 1);
        assert!(e.to_string().contains("MK403 p.7"));
        let ok = anonymise(&cohort(), &policy(5, true, DatePolicy::Keep), &secret).unwrap();
        assert_eq!((ok.records.len(), ok.report.suppressed), (11, 1));
        // Passing: k = 5 holds for the rest.
        assert!(
            anonymise(
                &cohort()[..11],
                &policy(5, false, DatePolicy::Keep),
                &secret
            )
            .is_ok()
        );
    }

    #[test]
    fn banded_fields_make_larger_classes() {
        // 1990 and 1992 fall in the band 1990–1994: banded, a 1992 man joins the 1990 men.
        let mut c = cohort();
        c[0].values.insert("birth_year", json!(1992));
        let mut p = policy(5, false, DatePolicy::Keep);
        assert!(
            anonymise(&c[..11], &p, &[3u8; 32]).is_err(),
            "exact years: 1992 alone"
        );
        p.bands.insert("birth_year".into(), 5);
        let a = anonymise(&c[..11], &p, &[3u8; 32]).unwrap();
        assert!(
            a.records
                .iter()
                .all(|r| r.values["birth_year"] == json!("1990–1994"))
        );
    }

    #[test]
    fn missing_values_form_classes_of_their_own() {
        let mut c = cohort();
        c.truncate(11);
        c[0].values.remove("region");
        let e = anonymise(&c, &policy(5, false, DatePolicy::Keep), &[2u8; 32]).unwrap_err();
        assert_eq!(
            e.0.offending[0].values[2],
            ("region".to_owned(), "missing".to_owned())
        );
    }
}
