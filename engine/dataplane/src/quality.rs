//! The automated quality checks whose report the service researcher's sign-off task shows
//! (MK403 p.18, p.22.2): completeness, duplicates, dates in the wrong order, impossible values,
//! values outside their field's domain (`studyflow_spec::catalogue::Domain`).
//! The report counts and names fields and checks, and points at rows by their position in the
//! dataset — never by an identifier.

use std::collections::BTreeMap;

use jiff::civil::Date;
use studyflow_spec::catalogue;

use crate::table::{self, Column, Table};

/// Dates that may lie after today: the end of a measure the Service is still executing is
/// the end the court set, which the Service IS records when the measure begins (and from
/// which the p.19 follow-ups "after the end" are scheduled). For ongoing supervision it is
/// ahead of the study's clock, which is not a mistake. Every other date is of something that
/// has happened (an offence, a judgment, a release) and cannot lie in the future.
pub const SCHEDULED_ENDS: &[&str] = &["supervision_end_date", "educational_measure_end_date"];

/// Fields holding a list of measures or programmes (p.16.2–16.3, and the Service IS's
/// programmes): an empty list means none was planned or applied, not a gap. A field whose
/// catalogue domain is a list (`Domain::SomeOf`) is one too.
pub const LISTS: &[&str] = &[
    "probation_programmes",
    "resocialisation_planned",
    "resocialisation_applied",
    "behaviour_programmes",
];

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

/// Whether `field` should have a value in a row; `has` says whether the row has a value of a
/// field, `text` what text. Some fields hold a value only when something happened: their
/// absence is the answer, not a gap (a report that counted every acquitted proceeding's missing
/// sentence would be learnt to be ignored).
fn applies(field: &str, has: impl Fn(&str) -> bool, text: impl Fn(&str) -> Option<String>) -> bool {
    match field {
        // What a judgment brings exists for a proceeding that ended in a conviction
        // (MK403 p.13.12, p.13.13, p.13.19, p.13.20, p.13.22); an open or terminated one has none.
        "judgment_date" | "judgment_effective_date" | "sentence" | "sentence_execution_type" => {
            text("proceeding_end_grounds").as_deref() == Some("conviction")
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

/// What is wrong with a text value of `field`, once per distinct value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Fine,
    Impossible,
    OutOfDomain,
}

fn verdict(field: &str, v: &str, today: Date) -> Verdict {
    let looks_like_date = v.len() == 10 && v.as_bytes()[4] == b'-';
    let bad = if looks_like_date {
        match table::parse_day(v) {
            None => true,
            Some(d) => d > table::day(today) && !SCHEDULED_ENDS.contains(&field),
        }
    } else {
        match (field, v.trim().parse::<i64>()) {
            ("birth_year", Ok(y)) => !(1900..=i64::from(today.year())).contains(&y),
            (_, Ok(n)) => n < 0,
            _ => false,
        }
    };
    if bad {
        Verdict::Impossible
    }
    // A negative count is impossible already, not counted twice.
    else if catalogue::sources_of(field)
        .find_map(|f| f.domain())
        .is_some_and(|d| !d.admits_text(v))
    {
        Verdict::OutOfDomain
    } else {
        Verdict::Fine
    }
}

/// The rows repeating an earlier row exactly (the same subject, the same cells): sorted by
/// subject and cells, each row equal to the one before it (the earliest of a group stays).
fn repeated(t: &Table) -> Vec<bool> {
    let mut order: Vec<u32> = (0..t.rows as u32).collect();
    let key = |i: u32| {
        let i = i as usize;
        std::iter::once(t.subject_of(i) as u32).chain(t.columns.iter().map(move |c| c.raw(i)))
    };
    order.sort_by(|a, b| key(*a).cmp(key(*b)));
    let mut out = vec![false; t.rows];
    for w in order.windows(2) {
        if key(w[0]).eq(key(w[1])) {
            out[w[1] as usize] = true;
        }
    }
    out
}

/// Checks table `t`, expecting each of `expected` fields to be present where it applies (a
/// sentence only for a conviction, an end date only with its grounds, …).
pub fn check(t: &Table, expected: &[&str], today: Date) -> QualityReport {
    let mut r = QualityReport {
        rows: t.rows,
        ..QualityReport::default()
    };
    let at = |f: &str| t.fields.iter().position(|x| x == f);
    let verdicts: Vec<Vec<Verdict>> = t
        .columns
        .iter()
        .zip(&t.fields)
        .map(|(c, f)| match c {
            Column::Text { dict, .. } => dict.iter().map(|v| verdict(f, v, today)).collect(),
            Column::Date(_) | Column::Int(_) => Vec::new(),
        })
        .collect();
    // A list (programmes taken) with no item is an answer, "none", which a cell cannot tell
    // from a gap: it is not counted as missing.
    let expected: Vec<(&str, Option<usize>)> = expected
        .iter()
        .filter(|f| {
            !LISTS.contains(f)
                && !catalogue::sources_of(f)
                    .any(|d| matches!(d.domain(), Some(catalogue::Domain::SomeOf(_))))
        })
        .map(|f| (*f, at(f)))
        .collect();
    let order: Vec<(&str, Option<usize>, Option<usize>)> = DATE_ORDER
        .iter()
        .map(|(a, b)| (*a, at(a), at(b)))
        .filter(|(_, a, b)| a.is_some() && b.is_some())
        .collect();
    let repeated = repeated(t);
    let today_day = table::day(today);
    for i in 0..t.rows {
        let mut any = false;
        let has = |f: &str| at(f).is_some_and(|j| t.columns[j].has(i));
        let text = |f: &str| {
            at(f).and_then(|j| {
                let c = &t.columns[j];
                c.has(i).then(|| {
                    let mut s = String::new();
                    c.cell_raw(c.raw(i), &mut s);
                    s
                })
            })
        };
        for (f, j) in &expected {
            if applies(f, has, text) && !j.is_some_and(|j| t.columns[j].has(i)) {
                *r.missing.entry((*f).to_owned()).or_default() += 1;
                any = true;
            }
        }
        if repeated[i] {
            r.duplicates += 1;
            any = true;
        }
        for (a, x, y) in &order {
            let day = |j: &Option<usize>| j.and_then(|j| t.columns[j].day_at(i));
            if let (Some(x_day), Some(y_day)) = (day(x), day(y))
                && x_day > y_day
            {
                let b = DATE_ORDER
                    .iter()
                    .find(|(first, _)| first == a)
                    .map_or("", |p| p.1);
                *r.date_order.entry(format!("{a} > {b}")).or_default() += 1;
                any = true;
            }
        }
        for (j, (c, f)) in t.columns.iter().zip(&t.fields).enumerate() {
            let v = match c {
                Column::Date(v) if v[i] == table::BAD_DAY => Verdict::Impossible,
                Column::Date(_) => match c.day_at(i) {
                    Some(d) if d > today_day && !SCHEDULED_ENDS.contains(&f.as_str()) => {
                        Verdict::Impossible
                    }
                    _ => Verdict::Fine,
                },
                Column::Text { codes, .. } => verdicts[j]
                    .get(codes[i] as usize)
                    .copied()
                    .unwrap_or(Verdict::Fine),
                Column::Int(_) => Verdict::Fine,
            };
            let counts = match v {
                Verdict::Fine => continue,
                Verdict::Impossible => &mut r.impossible,
                Verdict::OutOfDomain => &mut r.out_of_domain,
            };
            *counts.entry(f.clone()).or_default() += 1;
            any = true;
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

    use crate::values::Values;

    fn row(s: &str, v: serde_json::Value) -> (u32, Values) {
        (
            u32::from(s.as_bytes()[0]),
            serde_json::from_value(v).unwrap(),
        )
    }

    /// The rows as a linked table, each under its subject.
    fn check(rows: &[(u32, Values)], expected: &[&str], today: Date) -> QualityReport {
        let t = Table::from_rows("t", rows.iter().map(|(s, v)| (Some(*s), v)), true);
        super::check(&t, expected, today)
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
