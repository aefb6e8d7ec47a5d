//! Manual extraction from the Service IS (MK403 p.22.1): a service researcher exports the
//! sample as CSV and the engine imports it whole or not at all. The header names catalogue
//! keys of the Service IS, each once; every column must have been asked for in the spec and
//! `personal_code` must be there. Each row is checked — its length, control characters, the
//! personal code's form and check digit, a code given twice, dates that do not exist, values
//! outside the field's domain in the catalogue — and any problem rejects the file with a
//! report naming lines and columns, never a value. The CSV itself is read by [`crate::csvio`].

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use studyflow_spec::catalogue::{self, FieldClass, Source};

use crate::answers::{Rejected, RowProblem};
use crate::csvio;
use crate::linkage::Subject;

/// Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, CRLF or LF; blank
/// lines skipped), as [`csvio::read`] reads it. `Err(line)` for the first problem: a quote
/// left open or stray, a bare carriage return, a control character in a cell.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, usize> {
    match csvio::read(text) {
        Ok(sheet) => Ok(sheet.records.into_iter().map(|r| r.cells).collect()),
        Err(problems) => Err(problems.first().map_or(1, |p| p.line)),
    }
}

/// A file a person supplied, as its CSV header and records (UTF-8, a byte-order mark
/// skipped), each record with its line, or the whole file rejected.
pub(crate) type Records = (Vec<String>, Vec<csvio::Record>);

/// `name` says what a header cell may be called in a message: a cell that is not a known
/// column name is never shown (without a header row it would be a person's data).
pub(crate) fn records(bytes: &[u8], name: impl Fn(&str) -> bool) -> Result<Records, Rejected> {
    let one = |row: usize, problem: String| Rejected::of(vec![RowProblem { row, problem }]);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        one(
            0,
            format!("the file is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let sheet = csvio::read(text).map_err(|problems| {
        // Name the column by its header, when the header is a known column.
        let header: Vec<String> = csvio::reader_builder()
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes())
            .records()
            .next()
            .and_then(Result::ok)
            .map(|r| r.iter().map(|c| c.trim().to_owned()).collect())
            .unwrap_or_default();
        Rejected::of(
            problems
                .into_iter()
                .map(|m| RowProblem {
                    row: m.line,
                    problem: match m.column {
                        Some(c) => match header.get(c - 1).filter(|h| name(h)) {
                            Some(h) => format!("column {c} `{h}`: {}", m.problem),
                            None => format!("column {c}: {}", m.problem),
                        },
                        None => m.problem,
                    },
                })
                .collect(),
        )
    })?;
    let mut records = sheet.records.into_iter();
    let Some(header) = records.next() else {
        return Err(one(1, "the file is empty".into()));
    };
    Ok((header.cells, records.collect()))
}

/// Problems of a header: a column named twice (MK403 p.3.3: each field is asked for once, and
/// two columns of one name would leave it to chance which value counts).
pub(crate) fn repeated_columns(columns: &[String], problems: &mut crate::answers::Problems) {
    let mut seen = HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        let c = c.trim();
        if !seen.insert(c) {
            problems.push(RowProblem {
                row: 1,
                problem: if catalogue::sources_of(c).next().is_some() {
                    format!("column {} `{c}` appears twice", i + 1)
                } else {
                    format!("column {} repeats the name of an earlier column", i + 1)
                },
            });
        }
    }
}

/// Imports the CSV export of the Service IS sample; `asked` are the Service IS keys the spec
/// requests (with their reasons, MK403 p.3.3). `with_codes`: the study links the sample to
/// the registries or follows it up (p.12.1, p.17), so `personal_code` (and
/// `previous_personal_code`) must be there; otherwise a code is allowed only if asked for —
/// a survey of the Service's own clients needs none (data minimisation, p.3.3).
pub fn import(bytes: &[u8], asked: &[&str], with_codes: bool) -> Result<Vec<Subject>, Rejected> {
    let (header, rows) = records(bytes, |h| catalogue::lookup(Source::ServiceIs, h).is_some())?;
    let mut problems = crate::answers::Problems::default();
    repeated_columns(&header, &mut problems);
    for (i, column) in header.iter().enumerate() {
        let column = column.trim();
        if catalogue::lookup(Source::ServiceIs, column).is_none() {
            // The cell is not named: without a header it would be a client's data.
            problems.push(RowProblem {
                row: 1,
                problem: format!(
                    "column {} is not a Service IS field (is the header row missing?)",
                    i + 1
                ),
            });
        } else if !(asked.contains(&column)
            || (with_codes && matches!(column, "personal_code" | "previous_personal_code")))
        {
            problems.push(RowProblem {
                row: 1,
                problem: format!(
                    "column {} `{column}` was not asked for in the spec (MK403 p.3.3)",
                    i + 1
                ),
            });
        }
    }
    let code_at = header.iter().position(|h| h.trim() == "personal_code");
    if code_at.is_none() && with_codes {
        problems.push(RowProblem {
            row: 1,
            problem: "there is no `personal_code` column (MK403 p.12.1)".into(),
        });
    }
    if !problems.is_empty() {
        return Err(problems.rejected());
    }
    let previous_at = header
        .iter()
        .position(|h| h.trim() == "previous_personal_code");
    let mut seen = HashSet::with_capacity(rows.len());
    let mut subjects = Vec::with_capacity(rows.len());
    let domains: Vec<Option<catalogue::Domain>> = header
        .iter()
        .map(|h| catalogue::lookup(Source::ServiceIs, h.trim()).and_then(|f| f.domain()))
        .collect();
    for record in &rows {
        let (line, row) = (record.line, &record.cells);
        if row.len() == 1 && row[0].trim().is_empty() {
            continue; // a line of blanks
        }
        if row.len() != header.len() {
            problems.push(RowProblem {
                row: line,
                problem: format!("{} fields where the header has {}", row.len(), header.len()),
            });
            continue;
        }
        let code = code_at.map_or("", |c| row[c].trim());
        if code_at.is_none() {
            // No codes in this extraction: nothing to check or repeat.
        } else if !catalogue::is_valid_personal_code(code) {
            problems.push(RowProblem {
                row: line,
                problem: "`personal_code` is not a valid personal code".into(),
            });
        } else if !seen.insert(
            code.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>(),
        ) {
            problems.push(RowProblem {
                row: line,
                problem: "`personal_code` repeats an earlier line".into(),
            });
        }
        if let Some(p) = previous_at
            && !row[p].trim().is_empty()
            && !catalogue::is_valid_personal_code(row[p].trim())
        {
            problems.push(RowProblem {
                row: line,
                problem: "`previous_personal_code` is not a valid personal code".into(),
            });
        }
        let mut values = BTreeMap::new();
        for (i, (column, cell)) in header.iter().zip(row).enumerate() {
            let (column, cell) = (column.trim(), cell.trim());
            if let Some(domain) = domains[i]
                && !domain.admits_text(cell)
            {
                problems.push(RowProblem {
                    row: line,
                    problem: format!(
                        "column {} `{column}` is not {} (docs/catalogue.md; correct the extraction, MK403 p.22.1–22.2)",
                        i + 1,
                        domain.describe()
                    ),
                });
            }
            let value = if cell.is_empty() {
                Value::Null
            } else if catalogue::lookup(Source::ServiceIs, column)
                .is_some_and(|f| f.class == FieldClass::Date)
            {
                if crate::table::parse_day(cell).is_none() {
                    problems.push(RowProblem {
                        row: line,
                        problem: format!("`{column}` is not a date (YYYY-MM-DD)"),
                    });
                }
                Value::String(cell.to_owned())
            } else if column == "birth_year" {
                match cell.parse::<i64>() {
                    Ok(y) => Value::from(y),
                    Err(_) => {
                        problems.push(RowProblem {
                            row: line,
                            problem: "`birth_year` is not a year".into(),
                        });
                        Value::Null
                    }
                }
            } else {
                Value::String(cell.to_owned())
            };
            values.insert(column.to_owned(), value);
        }
        subjects.push(Subject {
            key: format!("S{:06}", subjects.len() + 1),
            personal_code: code.to_owned(),
            previous_personal_code: previous_at
                .map(|p| row[p].trim().to_owned())
                .filter(|p| !p.is_empty()),
            values: values.into_iter().collect(),
        });
    }
    if problems.is_empty() {
        Ok(subjects)
    } else {
        Err(problems.rejected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASKED: [&str; 5] = [
        "personal_code",
        "previous_personal_code",
        "sex",
        "birth_year",
        "supervision_start_date",
    ];

    #[test]
    fn a_clean_export_is_imported_and_any_bad_line_rejects_it_all() {
        let good = "\u{feff}personal_code,previous_personal_code,sex,birth_year,supervision_start_date\r\n290758-10403,,male,1958,2026-03-02\r\n32503511782,\"\",female,1990,2026-04-15\r\n";
        let s = import(good.as_bytes(), &ASKED, true).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].values["birth_year"], serde_json::json!(1990));
        assert_eq!(s[0].previous_personal_code, None);
        let bad = "personal_code,sex,birth_year,supervision_start_date\n290758-10404,male,1958,2026-03-02\n290758-10403,male,1958,2026-02-30\n29075810403,male,19x8,2026-03-02\nonly,three,fields\n";
        let e = import(bad.as_bytes(), &ASKED, true).unwrap_err();
        let at: Vec<(usize, &str)> = e
            .problems
            .iter()
            .map(|p| (p.row, p.problem.as_str()))
            .collect();
        assert_eq!(at[0], (2, "`personal_code` is not a valid personal code"));
        assert_eq!(
            at[1],
            (3, "`supervision_start_date` is not a date (YYYY-MM-DD)")
        );
        assert_eq!(at[2], (4, "`personal_code` repeats an earlier line"));
        assert_eq!(at[3], (4, "`birth_year` is not a year"));
        assert_eq!(at[4], (5, "3 fields where the header has 4"));
        assert!(!format!("{e}").contains("290758"));
    }

    #[test]
    fn columns_must_be_asked_for_and_the_code_present() {
        let e = import(b"sex,case_number,nickname\nmale,R-1,x\n", &ASKED, true).unwrap_err();
        let msgs: Vec<&str> = e.problems.iter().map(|p| p.problem.as_str()).collect();
        assert!(
            msgs[0].contains("`case_number` was not asked for"),
            "{msgs:?}"
        );
        assert!(msgs[1].contains("column 3 is not a Service IS field"));
        assert!(
            !msgs[1].contains("nickname"),
            "an unknown header cell is never echoed"
        );
        assert!(msgs[2].contains("no `personal_code` column"));
        assert_eq!(
            import(b"personal_code\n\"290758-10403\n", &ASKED, true)
                .unwrap_err()
                .problems[0]
                .problem,
            "a quoted field is never closed"
        );
        assert_eq!(
            parse_csv("a,\"b \"\"q\"\", c\"\n1,2\n").unwrap(),
            vec![
                vec!["a".to_owned(), "b \"q\", c".to_owned()],
                vec!["1".to_owned(), "2".to_owned()]
            ]
        );
    }

    #[test]
    fn codes_are_needed_only_where_the_study_links_or_follows_up() {
        const SURVEY: [&str; 2] = ["sex", "birth_year"];
        let without = "sex,birth_year
female,1980
male,1975
";
        let s = import(without.as_bytes(), &SURVEY, false).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|x| x.personal_code.is_empty()));
        // A study that does not need codes refuses them unless asked (p.3.3) ...
        let with = "personal_code,sex
290758-10403,female
";
        let e = import(with.as_bytes(), &SURVEY, false).unwrap_err();
        assert!(e.problems[0].problem.contains("was not asked for"), "{e}");
        // ... and one that links needs them, asked or not.
        let e = import(without.as_bytes(), &SURVEY, true).unwrap_err();
        assert!(
            e.problems[0].problem.contains("no `personal_code` column"),
            "{e}"
        );
        assert_eq!(import(with.as_bytes(), &SURVEY, true).unwrap().len(), 1);
    }
}
