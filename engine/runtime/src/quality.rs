//! The automated quality checks whose report the service researcher's sign-off task shows
//! (MK403 p.18, p.22.2): completeness, duplicates, dates in the wrong order, impossible values.
//! The report counts and names fields and checks, and points at rows by their position in the
//! dataset — never by an identifier.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde_json::Value;

use crate::anonymise::Record;

/// Pairs of date fields that must not run backwards (first ≤ second), in the catalogue's
/// terms: the order of a criminal proceeding, and of supervision and imprisonment.
pub const DATE_ORDER: &[(&str, &str)] = &[
    ("offence_date", "proceeding_start_date"),
    ("proceeding_start_date", "suspect_date"),
    ("suspect_date", "prosecution_date"),
    ("prosecution_date", "judgment_date"),
    ("judgment_date", "judgment_effective_date"),
    ("supervision_start_date", "supervision_end_date"),
    (
        "educational_measure_start_date",
        "educational_measure_end_date",
    ),
    ("mediation_start_date", "mediation_end_date"),
    ("prison_admission_date", "prison_release_date"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QualityReport {
    pub rows: usize,
    /// Field → rows where it is missing.
    pub missing: BTreeMap<String, usize>,
    /// Rows repeating an earlier row exactly (same subject, same values).
    pub duplicates: usize,
    /// "first > second" → rows where the dates run backwards.
    pub date_order: BTreeMap<String, usize>,
    /// Field → rows with an impossible value (a date that does not exist or lies after
    /// `today`, a birth year outside 1900–today, a negative count).
    pub impossible: BTreeMap<String, usize>,
    /// Up to 20 row positions (1-based) with any finding, for the researcher to look at.
    pub examples: Vec<usize>,
}

impl QualityReport {
    pub fn findings(&self) -> usize {
        self.missing.values().sum::<usize>()
            + self.duplicates
            + self.date_order.values().sum::<usize>()
            + self.impossible.values().sum::<usize>()
    }
}

fn date(v: &Value) -> Option<Result<Date, ()>> {
    let s = v.as_str()?;
    if s.len() == 10 && s.as_bytes()[4] == b'-' {
        Some(s.parse().map_err(|_| ()))
    } else {
        None
    }
}

/// Checks `rows`, expecting each of `expected` fields to be present.
pub fn check(rows: &[Record], expected: &[&str], today: Date) -> QualityReport {
    let mut r = QualityReport {
        rows: rows.len(),
        ..QualityReport::default()
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let mut any = false;
        for f in expected {
            if row.values.get(*f).is_none_or(Value::is_null) {
                *r.missing.entry((*f).to_owned()).or_default() += 1;
                any = true;
            }
        }
        let fingerprint = format!(
            "{}|{}",
            row.subject,
            serde_json::to_string(&row.values).unwrap_or_default()
        );
        if seen.insert(fingerprint, i).is_some() {
            r.duplicates += 1;
            any = true;
        }
        for (a, b) in DATE_ORDER {
            if let (Some(Ok(x)), Some(Ok(y))) = (
                row.values.get(*a).and_then(date),
                row.values.get(*b).and_then(date),
            ) && x > y
            {
                *r.date_order.entry(format!("{a} > {b}")).or_default() += 1;
                any = true;
            }
        }
        for (k, v) in &row.values {
            let bad = match date(v) {
                Some(Err(())) => true,
                Some(Ok(d)) => d > today,
                None => match (k.as_str(), v.as_i64()) {
                    ("birth_year", Some(y)) => !(1900..=i64::from(today.year())).contains(&y),
                    (_, Some(n)) => n < 0,
                    _ => false,
                },
            };
            if bad {
                *r.impossible.entry(k.clone()).or_default() += 1;
                any = true;
            }
        }
        if any && r.examples.len() < 20 {
            r.examples.push(i + 1);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;

    fn row(s: &str, v: serde_json::Value) -> Record {
        Record {
            subject: s.into(),
            values: v
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn each_kind_of_problem_is_counted_where_it_is() {
        let rows = vec![
            row(
                "a",
                json!({"sex": "male", "birth_year": 1990, "supervision_start_date": "2026-02-01", "supervision_end_date": "2027-01-31"}),
            ),
            row(
                "b",
                json!({"sex": null, "birth_year": 1890, "supervision_start_date": "2026-05-01", "supervision_end_date": "2026-04-01"}),
            ),
            row(
                "a",
                json!({"sex": "male", "birth_year": 1990, "supervision_start_date": "2026-02-01", "supervision_end_date": "2027-01-31"}),
            ),
            row(
                "c",
                json!({"sex": "female", "birth_year": 1985, "supervision_start_date": "2026-02-30", "offence_date": "2031-01-01", "incentives": -1}),
            ),
        ];
        let r = check(&rows, &["sex", "birth_year"], date(2027, 6, 1));
        assert_eq!(r.missing["sex"], 1);
        assert_eq!(r.duplicates, 1);
        assert_eq!(
            r.date_order["supervision_start_date > supervision_end_date"],
            1
        );
        assert_eq!(r.impossible["birth_year"], 1);
        assert_eq!(r.impossible["supervision_start_date"], 1, "30 February");
        assert_eq!(r.impossible["offence_date"], 1, "in the future");
        assert_eq!(r.impossible["incentives"], 1);
        assert_eq!(r.examples, [2, 3, 4]);
        assert_eq!(r.findings(), 7);
        assert_eq!(check(&rows[..1], &["sex"], date(2027, 6, 1)).findings(), 0);
    }
}
