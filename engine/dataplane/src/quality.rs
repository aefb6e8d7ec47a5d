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

/// Whether `field` should have a value in `row`. Some fields hold a value only when something
/// happened: their absence is the answer, not a gap (a report that counted every acquitted
/// proceeding's missing sentence would be learnt to be ignored).
fn applies(field: &str, row: &Record) -> bool {
    let has = |k: &str| row.values.get(k).is_some_and(|v| !v.is_null());
    match field {
        // What a judgment brings exists for a proceeding that ended in a conviction
        // (MK403 p.13.12, p.13.13, p.13.19, p.13.20, p.13.22); an open or terminated one has none.
        "judgment_date" | "judgment_effective_date" | "sentence" | "sentence_execution_type" => {
            row.values
                .get("proceeding_end_grounds")
                .and_then(Value::as_str)
                == Some("conviction")
        }
        // A proceeding runs through its stages in order (p.13.5, p.13.6): an open one may have
        // no suspect or charge yet; a later stage without an earlier one is a gap.
        "suspect_date" => has("prosecution_date"),
        "prosecution_date" => has("judgment_date"),
        // An open proceeding has neither its end nor its grounds (p.13.21–13.22); one without
        // the other is a gap.
        "proceeding_end_date" => has("proceeding_end_grounds"),
        "proceeding_end_grounds" => has("proceeding_end_date"),
        // Measures some clients had: their start and end go together (p.19 a, c).
        "educational_measure_start_date" => has("educational_measure_end_date"),
        "educational_measure_end_date" => has("educational_measure_start_date"),
        "mediation_start_date" => has("mediation_end_date"),
        "mediation_end_date" => has("mediation_start_date"),
        // Events that happen to some subjects or proceedings only (p.13.4, p.13.7–13.9,
        // p.13.14–13.18, p.13.23, p.15.3, p.16.8–16.10, p.16.13).
        "detention_date"
        | "related_proceedings"
        | "merge_split_date"
        | "merged_split_proceeding_number"
        | "credited_custody"
        | "unserved_part_decision"
        | "prison_release_date"
        | "prison_release_grounds"
        | "sentence_substitution"
        | "educational_measure"
        | "progressive_system_moves"
        | "psychological_care"
        | "social_work"
        | "leisure"
        | "substance_use_incidents" => false,
        _ => true,
    }
}

/// Checks `rows`, expecting each of `expected` fields to be present where it applies (a
/// sentence only for a conviction, an end date only with its grounds, …).
pub fn check(rows: &[Record], expected: &[&str], today: Date) -> QualityReport {
    let mut r = QualityReport {
        rows: rows.len(),
        ..QualityReport::default()
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let mut any = false;
        for f in expected {
            if applies(f, row) && row.values.get(f).is_none_or(Value::is_null) {
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
                row.values.get(a).and_then(date),
                row.values.get(b).and_then(date),
            ) && x > y
            {
                *r.date_order.entry(format!("{a} > {b}")).or_default() += 1;
                any = true;
            }
        }
        for (k, v) in &row.values {
            let bad = match date(v) {
                Some(Err(())) => true,
                Some(Ok(d)) => d > today && !SCHEDULED_ENDS.contains(&k),
                None => match (k, v.as_i64()) {
                    ("birth_year", Some(y)) => !(1900..=i64::from(today.year())).contains(&y),
                    (_, Some(n)) => n < 0,
                    _ => false,
                },
            };
            if bad {
                *r.impossible.entry(k.to_owned()).or_default() += 1;
                any = true;
            }
            // A negative count is impossible already, not counted twice.
            else if catalogue::sources_of(k)
                .find_map(|f| f.domain())
                .is_some_and(|d| !d.admits(v))
            {
                *r.out_of_domain.entry(k.to_owned()).or_default() += 1;
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
    fn a_field_is_missing_only_where_it_applies() {
        let rows = vec![
            row(
                "a",
                json!({"proceeding_end_grounds": "conviction", "proceeding_end_date": "2026-01-05",
                       "judgment_date": "2025-12-01", "sentence": null, "detention_date": null}),
            ),
            row(
                "a",
                json!({"proceeding_end_grounds": "termination: no offence", "proceeding_end_date": "2026-01-05",
                       "judgment_date": null, "sentence": null, "detention_date": null}),
            ),
            row(
                "b",
                json!({"proceeding_end_grounds": null, "proceeding_end_date": null,
                       "judgment_date": null, "sentence": null, "detention_date": null}),
            ),
            row(
                "b",
                json!({"proceeding_end_grounds": "conviction", "proceeding_end_date": null,
                       "judgment_date": null, "sentence": "fine", "detention_date": null}),
            ),
        ];
        let expected = [
            "proceeding_end_grounds",
            "proceeding_end_date",
            "judgment_date",
            "sentence",
            "detention_date",
        ];
        let r = check(&rows, &expected, date(2027, 1, 4));
        assert_eq!(
            r.missing["sentence"], 1,
            "a conviction without its sentence"
        );
        assert_eq!(r.missing["judgment_date"], 1);
        assert_eq!(
            r.missing["proceeding_end_date"], 1,
            "grounds without the end"
        );
        assert_eq!(r.missing.len(), 3, "{:?}", r.missing);
        assert_eq!(r.examples, [1, 4]);
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
