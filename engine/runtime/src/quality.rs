//! The automated quality checks whose report the service researcher's sign-off task shows
//! (MK403 p.18, p.22.2): completeness, duplicates, dates in the wrong order, impossible values,
//! values outside their field's domain (`studyflow_spec::catalogue::Domain`).
//! The report counts and names fields and checks, and points at rows by their position in the
//! dataset — never by an identifier.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde_json::Value;
use studyflow_spec::catalogue;

use crate::anonymise::Record;

/// Dates that may lie after today: the end of a measure the Service is still executing is
/// the end the court set, which the Service IS records when the measure begins (and from
/// which the p.19 follow-ups "after the end" are scheduled). For ongoing supervision it is
/// ahead of the study's clock, which is not a mistake. Every other date is of something that
/// has happened (an offence, a judgment, a release) and cannot lie in the future.
pub const SCHEDULED_ENDS: &[&str] = &["supervision_end_date", "educational_measure_end_date"];

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
    /// Field → rows with an impossible value (a date that does not exist, or lies after
    /// `today` unless it is a [`SCHEDULED_ENDS`] date, a birth year outside 1900–today, a
    /// negative count).
    pub impossible: BTreeMap<String, usize>,
    /// Field → rows with a value outside the field's domain in the catalogue (`sex: alien`).
    pub out_of_domain: BTreeMap<String, usize>,
    /// Up to 20 row positions (1-based) with any finding, for the researcher to look at.
    pub examples: Vec<usize>,
}

impl QualityReport {
    pub fn findings(&self) -> usize {
        self.missing.values().sum::<usize>()
            + self.duplicates
            + self.date_order.values().sum::<usize>()
            + self.impossible.values().sum::<usize>()
            + self.out_of_domain.values().sum::<usize>()
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
                Some(Ok(d)) => d > today && !SCHEDULED_ENDS.contains(&k.as_str()),
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
            // A negative count is impossible already, not counted twice.
            else if catalogue::sources_of(k)
                .find_map(|f| f.domain())
                .is_some_and(|d| !d.admits(v))
            {
                *r.out_of_domain.entry(k.clone()).or_default() += 1;
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

    #[test]
    fn a_planned_end_may_lie_ahead_but_nothing_else_may() {
        let ongoing = row(
            "a",
            json!({"supervision_start_date": "2026-02-01", "supervision_end_date": "2028-01-31",
                   "educational_measure_start_date": "2026-02-01", "educational_measure_end_date": "2027-08-01"}),
        );
        assert_eq!(check(&[ongoing], &[], date(2027, 1, 4)).findings(), 0);
        let impossible = row(
            "b",
            json!({"supervision_start_date": "2027-03-01", "supervision_end_date": "2028-02-30",
                   "mediation_end_date": "2027-02-01"}),
        );
        let r = check(&[impossible], &[], date(2027, 1, 4));
        assert_eq!(r.impossible["supervision_start_date"], 1, "a start ahead");
        assert_eq!(r.impossible["supervision_end_date"], 1, "30 February");
        assert_eq!(r.impossible["mediation_end_date"], 1, "a finished process");
        assert_eq!(r.findings(), 3);
    }

    #[test]
    fn values_outside_the_catalogue_domain_are_counted() {
        let rows = vec![
            row(
                "a",
                json!({"sex": "alien", "region": "Mars", "sanction_type": "death_penalty",
                       "probation_programmes": ["ETS", "Juggling"], "risk_needs_level": "low"}),
            ),
            row(
                "b",
                json!({"sex": "female", "region": "Latgale", "probation_programmes": "ETS; Anger management",
                       "addiction_programme": "perhaps", "incentives": 2}),
            ),
        ];
        let r = check(&rows, &[], date(2027, 1, 4));
        let flagged: Vec<&str> = r.out_of_domain.keys().map(String::as_str).collect();
        assert_eq!(
            flagged,
            [
                "addiction_programme",
                "probation_programmes",
                "region",
                "sanction_type",
                "sex"
            ]
        );
        assert_eq!(r.findings(), 5);
        assert_eq!(r.examples, [1, 2]);
    }
}
