//! Validation of an institution's answer against the catalogue and the request, before any of
//! it is imported (MK403 p.3.3, p.13, p.15, p.16): fields that were not asked for, rows about
//! subjects that were not asked about, duplicate rows, bad dates. An answer with any such row
//! is rejected whole — nothing of it is imported — with a report naming each row by its
//! position and the problem, never by an identifier.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use studyflow_spec::catalogue::{self, FieldClass, Source};

use crate::linkage::AnswerRow;
use crate::vault::StudyKeys;

/// What was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The sources the answer may carry fields of (the Prison Administration answers p.15 and
    /// p.16 together).
    pub sources: Vec<Source>,
    /// The catalogue keys asked for.
    pub fields: Vec<String>,
    /// Blind indexes of the personal codes asked about (current and previous).
    pub subjects: HashSet<[u8; 32]>,
}

impl Request {
    /// A request for `fields` about the subjects with these codes.
    pub fn new<'a>(
        keys: &StudyKeys,
        sources: &[Source],
        fields: &[&str],
        codes: impl IntoIterator<Item = &'a str>,
    ) -> Request {
        Request {
            sources: sources.to_vec(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            subjects: codes
                .into_iter()
                .map(|c| keys.blind_index("personal_code", c))
                .collect(),
        }
    }
}

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    /// 1-based position of the row in the answer.
    pub row: usize,
    pub problem: String,
}

/// Why an answer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("the answer was rejected and nothing of it imported: {} problem(s) in {} row(s), first at row {}: {}", .problems.len(), .rows, .problems.first().map_or(0, |p| p.row), .problems.first().map_or("", |p| p.problem.as_str()))]
pub struct Rejected {
    pub rows: usize,
    pub problems: Vec<RowProblem>,
}

/// Checks the whole answer; `Ok` only when every row is as asked.
pub fn validate(keys: &StudyKeys, request: &Request, rows: &[AnswerRow]) -> Result<(), Rejected> {
    let asked: HashSet<&str> = request.fields.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let row = i + 1;
        let mut report = |problem: String| problems.push(RowProblem { row, problem });
        if !request.sources.contains(&r.source) {
            report(format!(
                "it comes from {}, which was not asked",
                r.source.title()
            ));
        }
        if !request
            .subjects
            .contains(&keys.blind_index("personal_code", &r.personal_code))
        {
            report("it is about a subject that was not asked about".into());
        }
        for (key, value) in &r.values {
            let known = request
                .sources
                .iter()
                .find_map(|s| catalogue::lookup(*s, key));
            match known {
                None => report(format!(
                    "field `{key}` is not a field of {}",
                    request.sources.first().map_or("the source", |s| s.title())
                )),
                Some(_) if !asked.contains(key.as_str()) => {
                    report(format!("field `{key}` was not asked for"))
                }
                Some(f) if f.class == FieldClass::Date => {
                    if let Some(text) = value.as_str()
                        && text.parse::<jiff::civil::Date>().is_err()
                    {
                        report(format!("field `{key}` is not a valid date"));
                    } else if !(value.is_null() || value.is_string()) {
                        report(format!("field `{key}` is not a date"));
                    }
                }
                Some(_) => {}
            }
        }
        let fingerprint = format!(
            "{}|{}",
            hex(&keys.blind_index("personal_code", &r.personal_code)),
            serde_json::to_string(&r.values.iter().collect::<BTreeMap<_, _>>()).unwrap_or_default()
        );
        if !seen.insert(fingerprint) {
            report("it repeats an earlier row".into());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Rejected {
            rows: problems.iter().map(|p| p.row).collect::<HashSet<_>>().len(),
            problems,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads an answer body (a JSON array of objects with `personal_code` and the fields) into rows;
/// a body that is not such an array is rejected as a whole, at the position it failed.
pub fn parse(source: Source, body: &[u8]) -> Result<Vec<AnswerRow>, Rejected> {
    let reject = |row: usize, problem: &str| Rejected {
        rows: 1,
        problems: vec![RowProblem {
            row,
            problem: problem.to_owned(),
        }],
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        reject(
            0,
            &format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let items = value
        .as_array()
        .ok_or_else(|| reject(0, "the body is not a list of rows"))?;
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| reject(i + 1, "the row is not an object"))?;
        let code = obj
            .get("personal_code")
            .and_then(Value::as_str)
            .ok_or_else(|| reject(i + 1, "the row names no personal code"))?;
        rows.push(AnswerRow {
            source,
            personal_code: code.to_owned(),
            values: obj
                .iter()
                .filter(|(k, _)| *k != "personal_code")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_answer_passes_and_any_bad_row_rejects_all() {
        let keys = StudyKeys::generate("answers");
        let req = Request::new(
            &keys,
            &[Source::InformationCentre],
            &["offence_date", "sentence"],
            ["290758-10403", "325035-11782"],
        );
        let good =
            br#"[{"personal_code":"290758-10403","offence_date":"2026-01-05","sentence":"fine"},
                        {"personal_code":"32503511782","offence_date":null}]"#;
        let rows = parse(Source::InformationCentre, good).unwrap();
        assert!(validate(&keys, &req, &rows).is_ok());
        let bad = br#"[{"personal_code":"290758-10403","offence_date":"2026-02-30"},
                       {"personal_code":"290758-10403","judgment_date":"2026-01-01"},
                       {"personal_code":"010180-10006","offence_date":"2026-01-05"},
                       {"personal_code":"290758-10403","offence_date":"2026-01-05","release_regime":"low"},
                       {"personal_code":"325035-11782"},
                       {"personal_code":"325035-11782"}]"#;
        let e = validate(&keys, &req, &parse(Source::InformationCentre, bad).unwrap()).unwrap_err();
        let at: Vec<(usize, &str)> = e
            .problems
            .iter()
            .map(|p| (p.row, p.problem.as_str()))
            .collect();
        assert_eq!(at[0], (1, "field `offence_date` is not a valid date"));
        assert_eq!(at[1], (2, "field `judgment_date` was not asked for"));
        assert_eq!(at[2], (3, "it is about a subject that was not asked about"));
        assert!(
            at[3].1.contains("`release_regime` is not a field of"),
            "{at:?}"
        );
        assert_eq!(at[4], (6, "it repeats an earlier row"));
        assert!(
            !format!("{e} {e:?}").contains("290758"),
            "no identifier in the report"
        );
    }

    #[test]
    fn malformed_bodies_are_rejected_whole() {
        assert_eq!(
            parse(Source::InformationCentre, b"[{\"personal_code\": 1")
                .unwrap_err()
                .problems[0]
                .row,
            0
        );
        assert!(parse(Source::InformationCentre, b"{}").is_err());
        assert_eq!(
            parse(Source::InformationCentre, b"[{}]")
                .unwrap_err()
                .problems[0]
                .problem,
            "the row names no personal code"
        );
    }
}
