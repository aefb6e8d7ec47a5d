//! Anonymisation of a study (MK403 p.7, p.20, p.24) and the k-anonymity check that guards
//! every release: one function for every study ([`anonymise_linked`]), on the linked tables.
//!
//! What it does, in order:
//! 1. identifiers are gone already: linkage keeps only catalogue fields that are not
//!    identifiers (p.7, p.17.3, p.22.3–22.4, p.24) — [`crate::linkage`];
//! 2. dates are treated by the spec's policy: kept, coarsened to the month, or turned into days
//!    relative to the subject's anchor date; whole numbers the spec bands are released in bands;
//! 3. k-anonymity over the declared quasi-identifiers, on the values as released: every
//!    combination must occur at least `k` times. A smaller class blocks the release with a
//!    report of the classes (their quasi-identifier values and sizes, nothing identifying) —
//!    unless the spec allows suppression, when those subjects are removed with all their rows;
//! 4. each subject's key becomes a random study ID: an HMAC of the key under a fresh random
//!    secret that is never stored, so the mapping exists nowhere once the step ends;
//! 5. the tables are put in the order of the study IDs, and every text column keeps in its
//!    dictionary only the values released rows use: nothing of the extraction's order or of a
//!    suppressed subject stays in the anonymised study.
//!
//! Missing values count the conservative way: a missing quasi-identifier is a value of its own
//! ("missing"), not a wildcard that could join any class; records with gaps must form classes of
//! `k` among themselves.
//!
//! A follow-up answer (p.20) is anonymised on arrival by the same date and band rules
//! ([`anonymise_rows`]), under the study ID its subject already has.

use crate::values::Values;
use std::collections::{BTreeMap, HashMap};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use studyflow_spec::catalogue::{self, FieldClass};
use studyflow_spec::model::DatePolicy;

use crate::linkage::LinkedTables;
use crate::table::{self, Column, MISSING, NO_DAY, Table};

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

/// One equivalence class over the quasi-identifiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Class {
    /// (quasi-identifier, value as released) pairs.
    pub values: Vec<(String, String)>,
    pub size: usize,
}

/// What the k-anonymity check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

impl KReport {
    /// The report without the quasi-identifier values of its small classes, only their sizes:
    /// what is kept and recorded after a suppression, since the values describe the very
    /// subjects the suppression protects (p.7).
    pub fn counts_only(&self) -> KReport {
        KReport {
            offending: self
                .offending
                .iter()
                .map(|c| Class {
                    values: Vec::new(),
                    size: c.size,
                })
                .collect(),
            ..self.clone()
        }
    }
}

/// A release blocked by k-anonymity (suppression not allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("k-anonymity not reached: {} class(es) smaller than k = {} (the smallest has {}); the release is blocked (MK403 p.7)", .0.offending.len(), .0.k, .0.smallest)]
pub struct Blocked(pub KReport);

/// A row of an anonymised table held as values (the follow-up tables), under its study ID.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnonRecord {
    pub study_id: String,
    pub values: Values,
}

/// The anonymised study: its tables under one set of study IDs, in their order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnonymisedTables {
    /// The released subjects' study IDs, sorted; the subjects' table's row `i` is
    /// `study_ids[i]`, and a source row names its subject by that position.
    pub study_ids: Vec<String>,
    /// `subjects` first, then one table per source.
    pub tables: Vec<Table>,
    /// Counts only ([`KReport::counts_only`]): the values of the suppressed classes would
    /// describe the subjects the suppression protects.
    pub report: KReport,
    /// The released subjects' positions in the linked study, in the order of their study IDs:
    /// for the cohort of the follow-ups (their anchor dates and codes) while the step runs.
    /// Never stored: with the extraction it would tell who each study ID is.
    #[serde(skip)]
    pub linked_positions: Vec<u32>,
}

/// Study ID → its position among `study_ids` (how a table's row names its subject).
pub fn positions(study_ids: &[String]) -> HashMap<&str, u32> {
    study_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect()
}

/// The study IDs and tables of an anonymised study held as rows of values (a study anonymised
/// before tables): the subjects' table gives the study IDs. `None` without a subjects' table,
/// or with a study ID twice in it.
pub fn tables_from_records(
    tables: &BTreeMap<String, Vec<AnonRecord>>,
) -> Option<(Vec<String>, Vec<Table>)> {
    let mut study_ids: Vec<String> = tables
        .get("subjects")?
        .iter()
        .map(|r| r.study_id.clone())
        .collect();
    study_ids.sort();
    if study_ids.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let positions = positions(&study_ids);
    let mut out: Vec<Table> = tables
        .iter()
        .map(|(name, records)| records_table(name, records, &positions))
        .collect();
    for t in &mut out {
        if t.name == "subjects" {
            t.subject.clear();
        }
    }
    out.sort_by_key(|t| t.name != "subjects");
    Some((study_ids, out))
}

/// A table of anonymised rows held as values, each under the position of its study ID; a row
/// under a study ID the subjects' table does not release is not released.
pub fn records_table(name: &str, records: &[AnonRecord], positions: &HashMap<&str, u32>) -> Table {
    let mut sorted: Vec<&AnonRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.study_id.cmp(&b.study_id));
    Table::from_rows(
        name,
        sorted.iter().filter_map(|r| {
            let at = positions.get(r.study_id.as_str())?;
            Some((Some(*at), &r.values))
        }),
        false,
    )
}

/// A class of the k-anonymity check: the raw values of its quasi-identifiers, held inline for
/// up to eight of them (a million subjects, no allocation each).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClassKey {
    Inline(u8, [u32; 8]),
    Long(Vec<u32>),
}

impl ClassKey {
    fn of(values: impl ExactSizeIterator<Item = u32>) -> ClassKey {
        if values.len() > 8 {
            return ClassKey::Long(values.collect());
        }
        let mut inline = [0u32; 8];
        let mut n = 0;
        for (slot, v) in inline.iter_mut().zip(values) {
            *slot = v;
            n += 1;
        }
        ClassKey::Inline(n, inline)
    }

    fn values(&self) -> &[u32] {
        match self {
            ClassKey::Inline(n, v) => &v[..usize::from(*n)],
            ClassKey::Long(v) => v,
        }
    }
}

/// A date as the policy releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasedDate {
    /// The date itself (`keep`).
    Kept,
    /// Its month (`2026-03`).
    Month(String),
    /// Days after the subject's anchor date (before it: negative).
    Relative(i32),
    /// Not released: not a date, or relative to an anchor the subject lacks.
    Gone,
}

/// How `policy` releases the date `day` of a subject whose anchor date is `anchor` (day
/// numbers, [`table::day`]): the one rule of the baseline tables and the follow-up answers.
/// `None`: missing, or not a date.
pub fn release_date(policy: DatePolicy, day: Option<i32>, anchor: Option<i32>) -> ReleasedDate {
    match (policy, day, anchor) {
        (_, None, _) => ReleasedDate::Gone,
        (DatePolicy::Keep, _, _) => ReleasedDate::Kept,
        (DatePolicy::Month, Some(d), _) => {
            let (y, m, _) = table::civil(d);
            ReleasedDate::Month(format!("{y:04}-{m:02}"))
        }
        (DatePolicy::RelativeToAnchor, Some(d), Some(a)) => ReleasedDate::Relative(d - a),
        (DatePolicy::RelativeToAnchor, Some(_), None) => ReleasedDate::Gone,
    }
}

/// The band a cell is released in, when it is a whole number (`1987` → `1985–1989`) whose band
/// can be written (not at the ends of the 64-bit range).
pub fn banded(cell: &str, width: i64) -> Option<String> {
    let n = cell.trim().parse::<i64>().ok()?;
    let width = width.max(1);
    let low = n.div_euclid(width).checked_mul(width)?;
    let high = low.checked_add(width - 1)?;
    Some(format!("{low}–{high}"))
}

/// A date column treated by the policy; `anchor` is each row's anchor day. A cell that was not
/// a date is not released.
fn treat_dates(column: Column, policy: DatePolicy, anchor: impl Fn(usize) -> i32) -> Column {
    let Column::Date(mut days) = column else {
        return column;
    };
    for d in &mut days {
        if *d == table::BAD_DAY {
            *d = NO_DAY;
        }
    }
    if policy == DatePolicy::Keep {
        return Column::Date(days);
    }
    let treated = days.iter().enumerate().map(|(i, &d)| {
        let a = anchor(i);
        release_date(
            policy,
            (d != NO_DAY).then_some(d),
            (a != NO_DAY).then_some(a),
        )
    });
    match policy {
        DatePolicy::Month => {
            let mut out = Column::text();
            for t in treated {
                out.push(match &t {
                    ReleasedDate::Month(m) => m,
                    _ => "",
                });
            }
            out
        }
        _ => Column::Int(
            treated
                .map(|t| match t {
                    ReleasedDate::Relative(n) => n,
                    _ => NO_DAY,
                })
                .collect(),
        ),
    }
}

/// A text column released in bands of `width` (values that are not whole numbers stay).
fn treat_bands(column: Column, width: i64) -> Column {
    let Column::Text { dict, codes, .. } = &column else {
        return column;
    };
    let banded: Vec<String> = dict
        .iter()
        .map(|v| banded(v, width).unwrap_or_else(|| v.to_string()))
        .collect();
    let mut out = Column::text();
    for &c in codes {
        out.push(if c == MISSING {
            ""
        } else {
            &banded[c as usize]
        });
    }
    out
}

/// Anonymises the linked study by `policy` (p.7): dates and bands as the policy says,
/// k-anonymity over the quasi-identifiers of the subjects — blocked, or with suppression the
/// small classes removed together with all their rows — then study IDs under `secret` and the
/// order of the study IDs. `secret`: fresh random bytes ([`random_secret`]), dropped after;
/// tests pass a fixed one.
pub fn anonymise_linked(
    linked: LinkedTables,
    policy: &Policy,
    secret: &[u8; 32],
) -> Result<AnonymisedTables, Blocked> {
    let LinkedTables {
        keys,
        subjects,
        sources,
        ..
    } = linked;
    // A subject's anchor day; one that is not a date is no anchor.
    let anchor: Vec<i32> = match policy
        .anchor_field
        .as_deref()
        .and_then(|a| subjects.column(a))
    {
        Some(c @ Column::Date(_)) => (0..subjects.rows)
            .map(|i| c.day_at(i).unwrap_or(NO_DAY))
            .collect(),
        _ => vec![NO_DAY; subjects.rows],
    };
    // Linkage keeps no identifier (p.17.3); a column that is one, or that the catalogue does
    // not know, is dropped here all the same, before anything is stored (p.7, p.24).
    let treat = |mut t: Table| -> Table {
        let subject = std::mem::take(&mut t.subject);
        let (fields, columns): (Vec<String>, Vec<Column>) = std::mem::take(&mut t.fields)
            .into_iter()
            .zip(std::mem::take(&mut t.columns))
            .filter(|(f, _)| is_releasable(f))
            .unzip();
        t.fields = fields;
        let columns = columns
            .into_iter()
            .zip(&t.fields)
            .map(|(c, f)| {
                let c = treat_dates(c, policy.date_policy, |i| {
                    anchor[if subject.is_empty() {
                        i
                    } else {
                        subject[i] as usize
                    }]
                });
                match policy.bands.get(f) {
                    Some(w) => treat_bands(c, *w),
                    None => c,
                }
            })
            .collect();
        Table {
            columns,
            subject,
            ..t
        }
    };
    let subjects = treat(subjects);
    // k-anonymity over the released values of the quasi-identifiers, in the policy's order; a
    // quasi-identifier the data lacks is missing for everyone.
    let qi: Vec<Option<&Column>> = policy
        .quasi_identifiers
        .iter()
        .map(|q| subjects.column(q))
        .collect();
    let key = |i: usize| ClassKey::of(qi.iter().map(|c| c.map_or(MISSING, |c| c.raw(i))));
    // A class key per subject, a million at a time: hashed by Fx rather than SipHash (the keys
    // are the study's own quasi-identifiers, not an adversary's).
    let mut sizes: HashMap<ClassKey, usize, rustc_hash::FxBuildHasher> =
        HashMap::with_capacity_and_hasher(1024, rustc_hash::FxBuildHasher);
    for i in 0..subjects.rows {
        *sizes.entry(key(i)).or_default() += 1;
    }
    let mut report = k_report(&sizes, subjects.rows, policy, |k| {
        k.values()
            .iter()
            .zip(&qi)
            .map(|(raw, c)| c.map_or_else(|| "missing".to_owned(), |c| c.shown(*raw)))
            .collect()
    })?;
    // The released subjects under their study IDs, in the IDs' order.
    let kept: Vec<u32> = (0..subjects.rows)
        .filter(|&i| sizes.get(&key(i)).is_some_and(|n| *n >= report.k))
        .map(|i| i as u32)
        .collect();
    drop(qi);
    let mut released: Vec<(String, u32)> = study_ids_of(&kept, &keys, &StudyIds::new(secret));
    // Sorted on the IDs' leading 64 bits (fixed-length hex: the order of the text), the text
    // itself on a tie: no chasing a million strings through the heap.
    let lead = |id: &str| {
        id.get(2..18)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let mut order: Vec<(u64, u32)> = released
        .iter()
        .enumerate()
        .map(|(j, (id, _))| (lead(id), j as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| released[a.1 as usize].cmp(&released[b.1 as usize]))
    });
    let mut slots: Vec<Option<(String, u32)>> = released.drain(..).map(Some).collect();
    released = order
        .into_iter()
        .filter_map(|(_, j)| slots[j as usize].take())
        .collect();
    drop(slots);
    report.suppressed = subjects.rows - released.len();
    let (study_ids, order): (Vec<String>, Vec<u32>) = released.into_iter().unzip();
    let mut rank = vec![u32::MAX; subjects.rows];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let mut tables = vec![subjects.take(&order, None)];
    drop(subjects);
    for t in sources {
        let t = treat(t);
        // A subject's rows in the order of its study ID, keeping their order among themselves;
        // a suppressed subject's rows go with it.
        let mut rows: Vec<(u32, u32)> = t
            .subject
            .iter()
            .enumerate()
            .filter(|(_, s)| rank[**s as usize] != u32::MAX)
            .map(|(i, s)| (rank[*s as usize], i as u32))
            .collect();
        rows.sort_unstable();
        let rows: Vec<u32> = rows.into_iter().map(|(_, i)| i).collect();
        tables.push(t.take(&rows, Some(&|s| rank[s])));
    }
    Ok(AnonymisedTables {
        study_ids,
        tables,
        report: report.counts_only(),
        linked_positions: order,
    })
}

/// The study IDs of the subjects at `positions` (their keys in `keys`), each with its position:
/// the HMACs computed on both cores for a large study.
fn study_ids_of(positions: &[u32], keys: &[String], ids: &StudyIds) -> Vec<(String, u32)> {
    let of = |part: &[u32]| -> Vec<(String, u32)> {
        part.iter()
            .map(|&i| (ids.of(&keys[i as usize]), i))
            .collect()
    };
    if positions.len() < 100_000 {
        return of(positions);
    }
    let (first, second) = positions.split_at(positions.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| of(second));
        let mut out = of(first);
        out.extend(
            other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        out
    })
}

fn is_releasable(key: &str) -> bool {
    let mut fields = catalogue::sources_of(key).peekable();
    fields.peek().is_some() && catalogue::sources_of(key).all(|f| f.class != FieldClass::Identifier)
}

/// The rows of one subject already known by its study ID — a follow-up answer, anonymised on
/// arrival (MK403 p.20) by the rules of [`anonymise_linked`]: identifiers and fields the
/// catalogue does not know dropped, dates by the policy (relative to `anchor`), bands. No
/// k-anonymity check here: the subject's class was checked with the study's subjects, and a
/// suppressed subject has no follow-up.
pub fn anonymise_rows(
    rows: impl IntoIterator<Item = Values>,
    policy: &Policy,
    anchor: Option<jiff::civil::Date>,
) -> Vec<Values> {
    let anchor = anchor.map(table::day);
    rows.into_iter()
        .map(|row| {
            let mut values = Values::new();
            for (key, value) in &row {
                if !is_releasable(key) {
                    continue;
                }
                let text = catalogue::value_text(Some(value));
                let value = if table::is_date_field(key) {
                    match release_date(policy.date_policy, table::parse_day(&text), anchor) {
                        ReleasedDate::Kept => value.clone(),
                        ReleasedDate::Month(m) => Value::String(m),
                        ReleasedDate::Relative(n) => Value::from(n),
                        ReleasedDate::Gone => Value::Null,
                    }
                } else if let Some(b) = policy.bands.get(key).and_then(|w| banded(&text, *w)) {
                    Value::String(b)
                } else {
                    value.clone()
                };
                values.insert(key, value);
            }
            values
        })
        .collect()
}

/// The report of the k-anonymity check from the class sizes, whatever the class keys are
/// (`show` turns a key into the released values of the quasi-identifiers, in the policy's
/// order): `Err` when a class is smaller than k and suppression is not allowed. The caller
/// removes the small classes when it is (and sets `suppressed`).
pub fn k_report<K, S>(
    sizes: &HashMap<K, usize, S>,
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

/// A whole number's band of `width`: `1985–1989` for 1987 in bands of five (the number itself
/// at the ends of the 64-bit range, where no band can be written).
pub fn band(n: i64, width: i64) -> String {
    banded(&n.to_string(), width).unwrap_or_else(|| n.to_string())
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
    use crate::linkage::{self, AnswerRow, Subject};
    use crate::vault::StudyKeys;
    use serde_json::json;
    use studyflow_spec::catalogue::Source;

    fn values(v: serde_json::Value) -> Values {
        serde_json::from_value(v).unwrap()
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

    /// Six men born 1990, five women born 1990 and one woman born 1950, in Rīga.
    fn cohort() -> Vec<Subject> {
        (0..12)
            .map(|i| Subject {
                key: format!("subject-{i}"),
                personal_code: format!("0101{i:02}-12345"),
                previous_personal_code: None,
                values: values(json!({
                    "personal_code": format!("0101{i:02}-12345"),
                    "case_number": "R-2026-00012",
                    "email": "someone@example.lv",
                    "population_register_id": "PR-77",
                    "sex": if i < 6 { "male" } else { "female" },
                    "birth_year": if i < 11 { 1990 } else { 1950 },
                    "region": "Rīga",
                    "supervision_start_date": "2026-03-10",
                    "supervision_end_date": "2027-03-09",
                })),
            })
            .collect()
    }

    /// Linked (no registry) and anonymised: the one path of every study.
    fn anonymise(
        subjects: &[Subject],
        policy: &Policy,
        secret: &[u8; 32],
    ) -> Result<AnonymisedTables, Blocked> {
        let keys = StudyKeys::generate("anonymise-test");
        anonymise_linked(linkage::link(&keys, subjects, &[]), policy, secret)
    }

    /// Row `i`'s cell of `field` as released.
    fn cell(t: &Table, field: &str, i: usize) -> String {
        let c = t.column(field).unwrap();
        let mut s = String::new();
        c.cell_raw(c.raw(i), &mut s);
        s
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
        let subjects = &a.tables[0];
        assert_eq!(
            subjects.fields,
            [
                "birth_year",
                "region",
                "sex",
                "supervision_end_date",
                "supervision_start_date"
            ]
        );
        assert_eq!(cell(subjects, "supervision_start_date", 0), "0");
        assert_eq!(cell(subjects, "supervision_end_date", 0), "364");
        let m = anonymise(&cohort(), &policy(1, false, DatePolicy::Month), &secret).unwrap();
        assert_eq!(cell(&m.tables[0], "supervision_end_date", 0), "2027-03");
        // Study IDs are not the subject keys, are stable for one secret, differ for another,
        // and come sorted.
        assert!(
            a.study_ids
                .iter()
                .all(|id| id.starts_with("P-") && !id.contains("subject"))
        );
        assert!(a.study_ids.contains(&study_id(&secret, "subject-3")));
        assert!(a.study_ids.is_sorted());
        assert_ne!(
            study_id(&secret, "subject-3"),
            study_id(&[8u8; 32], "subject-3")
        );
        let text = serde_json::to_string(&a).unwrap();
        for gone in ["010100", "example.lv", "subject-", "R-2026", "PR-77"] {
            assert!(!text.contains(gone), "{gone} in the anonymised study");
        }
        assert!(!text.contains("linked_positions"), "never stored");
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
        assert_eq!((ok.study_ids.len(), ok.report.suppressed), (11, 1));
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

    /// A suppressed subject takes its rows with it, and leaves nothing in the anonymised
    /// study: not its value in a column's dictionary, not the order of the extraction.
    #[test]
    fn a_suppressed_subject_leaves_nothing_behind() {
        let keys = StudyKeys::generate("suppressed");
        let subjects = cohort();
        let answers: Vec<AnswerRow> = subjects
            .iter()
            .flat_map(|s| {
                let day = if s.values["birth_year"] == json!(1950) {
                    "13"
                } else {
                    "20"
                };
                (0..2).map(move |n| AnswerRow {
                    source: Source::InformationCentre,
                    personal_code: s.personal_code.clone(),
                    values: values(json!({
                        "proceeding_number": "11826001234",
                        "offence_date": format!("2027-0{}-{day}", n + 1),
                    })),
                })
            })
            .collect();
        let linked = linkage::link(&keys, &subjects, &answers);
        assert_eq!(linked.sources[0].rows, 24);
        let a = anonymise_linked(linked, &policy(5, true, DatePolicy::Keep), &[4u8; 32]).unwrap();
        let ic = &a.tables[1];
        assert_eq!(ic.name, "information_centre");
        assert_eq!(ic.rows, 22, "the suppressed subject's two rows went");
        assert!(ic.subject.is_sorted(), "in the order of the study IDs");
        assert_eq!(cell(ic, "offence_date", 0), "2027-01-20");
        assert_eq!(
            cell(ic, "offence_date", 1),
            "2027-02-20",
            "a subject's rows keep their order"
        );
        // Nothing of the suppressed subject is kept: not its values in the tables, nor in the
        // k-anonymity report (its classes' sizes only).
        assert_eq!(a.report.offending[0].size, 1);
        let text = serde_json::to_string(&a).unwrap();
        let thirteenth = crate::table::day(jiff::civil::date(2027, 1, 13)).to_string();
        assert!(
            !text.contains("1950") && !text.contains(&thirteenth),
            "{text}"
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
        assert!((0..11).all(|i| cell(&a.tables[0], "birth_year", i) == "1990–1994"));
        // A year that arrived as text (a CSV extraction) is banded the same way.
        c[0].values.insert("birth_year", json!("1992"));
        let a = anonymise(&c[..11], &p, &[3u8; 32]).unwrap();
        assert!((0..11).all(|i| cell(&a.tables[0], "birth_year", i) == "1990–1994"));
    }

    /// More quasi-identifiers than a class key holds inline are counted the same way.
    #[test]
    fn many_quasi_identifiers_are_counted_like_few() {
        let mut p = policy(5, true, DatePolicy::Keep);
        let few = anonymise(&cohort(), &p, &[6u8; 32]).unwrap().report;
        p.quasi_identifiers.extend(
            [
                "risk_needs_level",
                "sanction_type",
                "probation_programmes",
                "education",
            ]
            .into_iter()
            .chain(["supervision_start_date", "supervision_end_date"])
            .map(str::to_owned),
        );
        assert!(p.quasi_identifiers.len() > 8);
        let many = anonymise(&cohort(), &p, &[6u8; 32]).unwrap().report;
        assert_eq!(
            (many.classes, many.suppressed),
            (few.classes, few.suppressed)
        );
        assert_eq!((few.classes, few.suppressed), (3, 1));
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

    /// An anchor date that is not a date is no anchor: that subject's dates are not released
    /// (a day counted from a sentinel would give the date back), and nothing panics.
    #[test]
    fn a_subject_without_a_readable_anchor_has_no_relative_dates() {
        let mut c = cohort();
        c[2].values
            .insert("supervision_start_date", json!("2026-02-30"));
        let a = anonymise(
            &c,
            &policy(1, false, DatePolicy::RelativeToAnchor),
            &[5u8; 32],
        )
        .unwrap();
        let t = &a.tables[0];
        let days: Vec<String> = (0..12)
            .map(|i| cell(t, "supervision_end_date", i))
            .collect();
        assert_eq!(days.iter().filter(|d| d.is_empty()).count(), 1, "{days:?}");
        assert!(days.iter().all(|d| d.is_empty() || d == "364"), "{days:?}");
        // Bands at the ends of the 64-bit range cannot be written: the number stays.
        assert_eq!(banded(&i64::MAX.to_string(), 5), None);
        assert_eq!(banded("1987", 5).as_deref(), Some("1985–1989"));
        assert_eq!(band(i64::MIN, 10), i64::MIN.to_string());
    }

    /// The follow-up rows follow the same date and band rules.
    #[test]
    fn follow_up_rows_are_anonymised_by_the_same_rules() {
        let mut p = policy(5, false, DatePolicy::RelativeToAnchor);
        p.bands.insert("birth_year".into(), 10);
        let rows = anonymise_rows(
            [values(
                json!({"proceeding_number": "11826001234", "offence_date": "2027-03-20",
                            "birth_year": "1987", "not_in_the_catalogue": "x"}),
            )],
            &p,
            Some(jiff::civil::date(2027, 3, 10)),
        );
        assert_eq!(
            serde_json::to_value(&rows[0]).unwrap(),
            json!({"birth_year": "1980–1989", "offence_date": 10})
        );
    }
}
