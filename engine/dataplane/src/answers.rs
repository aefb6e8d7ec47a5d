//! Validation of an institution's answer against the catalogue and the request, before any of
//! it is imported (MK403 p.3.3, p.13, p.15, p.16): fields that were not asked for or named
//! twice, rows about subjects that were not asked about, duplicate rows, bad dates, control
//! characters, values outside the field's domain in the catalogue. An answer with any such row
//! is rejected whole — nothing of it is imported — with a report naming each row by its
//! position and the field, never by an identifier or a value.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// A data subject as a request names it (MK403 p.12): the personal code, the previous one if
/// it was changed (p.12.1), and the criminal proceeding, court ruling or prosecutor's decision
/// number when the study has it (p.12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub personal_code: &'a str,
    pub previous_personal_code: Option<&'a str>,
    pub proceeding_number: Option<&'a str>,
}

impl<'a> Asked<'a> {
    /// A subject by its personal code alone.
    pub fn code(personal_code: &'a str) -> Asked<'a> {
        Asked {
            personal_code,
            previous_personal_code: None,
            proceeding_number: None,
        }
    }

    /// The subject as the request body names it (empty values left out).
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"personal_code": self.personal_code});
        if let Some(p) = self.previous_personal_code.filter(|p| !p.is_empty()) {
            v["previous_personal_code"] = p.into();
        }
        if let Some(n) = self.proceeding_number.filter(|n| !n.is_empty()) {
            v["proceeding_number"] = n.into();
        }
        v
    }

    /// The codes an answer row may name for this subject.
    pub fn codes(&self) -> impl Iterator<Item = &'a str> {
        std::iter::once(self.personal_code).chain(self.previous_personal_code)
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

/// The problems of a file being checked: the first [`Problems::KEPT`] kept with their rows,
/// every row with a problem counted — a file of a million bad rows costs a counter, not a
/// million messages.
#[derive(Debug, Default)]
pub struct Problems {
    kept: Vec<RowProblem>,
    rows: usize,
    last_row: Option<usize>,
}

impl Problems {
    /// The problems kept at most.
    pub const KEPT: usize = 100;

    pub fn push(&mut self, p: RowProblem) {
        // Problems come row by row: a row is counted when it first has one.
        if self.last_row != Some(p.row) {
            self.rows += 1;
            self.last_row = Some(p.row);
        }
        if self.kept.len() < Self::KEPT {
            self.kept.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The file refused with these problems.
    pub fn rejected(self) -> Rejected {
        Rejected {
            rows: self.rows,
            problems: self.kept,
        }
    }
}

impl Rejected {
    /// The whole file or answer rejected with these problems.
    pub(crate) fn of(problems: Vec<RowProblem>) -> Rejected {
        Rejected {
            rows: problems.iter().map(|p| p.row).collect::<HashSet<_>>().len(),
            problems,
        }
    }
}

/// Checks the whole answer; `Ok` only when every row is as asked.
pub fn validate(keys: &StudyKeys, request: &Request, rows: &[AnswerRow]) -> Result<(), Rejected> {
    let asked: HashSet<&str> = request.fields.iter().map(String::as_str).collect();
    let mut problems = Problems::default();
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
        if crate::csvio::forbidden_char(&r.personal_code).is_some() {
            report("`personal_code` holds a control character".into());
        }
        for (key, value) in &r.values {
            let known = request
                .sources
                .iter()
                .find_map(|s| catalogue::lookup(*s, key));
            if crate::csvio::forbidden_char(key).is_some() {
                report("a field's name holds a control character".into());
                continue;
            }
            if let Some(what) = strings(value).find_map(crate::csvio::forbidden_char) {
                report(format!("field `{}` holds {what}", shown(key)));
            }
            match known {
                None => report(format!(
                    "field `{}` is not a field of {}",
                    shown(key),
                    request.sources.first().map_or("the source", |s| s.title())
                )),
                Some(_) if !asked.contains(key) => {
                    report(format!("field `{key}` was not asked for"))
                }
                Some(f) if f.class == FieldClass::Date => {
                    if let Some(text) = value.as_str()
                        && crate::table::parse_day(text).is_none()
                    {
                        report(format!("field `{key}` is not a valid date"));
                    } else if !(value.is_null() || value.is_string()) {
                        report(format!("field `{key}` is not a date"));
                    }
                }
                Some(f) => {
                    if let Some(domain) = f.domain()
                        && !domain.admits(value)
                    {
                        report(format!(
                            "field `{key}` is not {} (MK403 {}; docs/catalogue.md)",
                            domain.describe(),
                            f.point.unwrap_or(f.source.point())
                        ));
                    }
                }
            }
        }
        let fingerprint = format!(
            "{}|{}",
            hex::encode(keys.blind_index("personal_code", &r.personal_code)),
            serde_json::to_string(&r.values).unwrap_or_default()
        );
        if !seen.insert(fingerprint) {
            report("it repeats an earlier row".into());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.rejected())
    }
}

/// A supplied field name as a message may show it: a name of the catalogue's form (short,
/// lower-case words that begin with a letter, never a run of digits that could be a personal
/// code), or else no name at all — an unknown key could be anything.
fn shown(key: &str) -> &str {
    let mut digits = 0usize;
    let code_like = key.bytes().any(|b| {
        digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
        digits >= 4
    });
    if !key.is_empty()
        && key.len() <= 40
        && !code_like
        && key.as_bytes()[0].is_ascii_lowercase()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        key
    } else {
        "(unnamed)"
    }
}

/// Every text in a value (a list's items included).
fn strings(v: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        Value::String(s) => Box::new(std::iter::once(s.as_str())),
        Value::Array(items) => Box::new(items.iter().flat_map(strings)),
        Value::Object(members) => Box::new(
            members
                .iter()
                .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(strings(v))),
        ),
        _ => Box::new(std::iter::empty()),
    }
}

/// At most this many values (members, list items, scalars) in one row of an answer: a row of a
/// register is a few dozen; a body that packs millions into one is refused as it is read, not
/// built into memory first.
const ROW_VALUES: usize = 10_000;
const TOO_MANY: &str = "a row holds more than 10000 values";
/// At most this many values in a whole answer (a register's answer about 100,000 subjects
/// with twenty fields is two million): kept rows cost memory until the answer is checked.
const BODY_VALUES: usize = 4_000_000;
const TOO_MANY_IN_ALL: &str = "the answer holds more than 4000000 values";

/// A member's value read with its row's budget of values and the whole answer's.
#[derive(Clone, Copy)]
struct Bounded<'b> {
    row: &'b std::cell::Cell<usize>,
    body: &'b std::cell::Cell<usize>,
}

impl Bounded<'_> {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        for (cell, why) in [(self.row, TOO_MANY), (self.body, TOO_MANY_IN_ALL)] {
            match cell.get() {
                0 => return Err(E::custom(why)),
                left => cell.set(left - 1),
            }
        }
        Ok(())
    }
}

impl<'de> de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

/// One element of an answer's list, its members in the order given: a name given twice is
/// kept twice so that it can be refused (`serde_json::Value` keeps the last one silently).
enum Item {
    Object(Vec<(String, Value)>),
    Other,
}

/// A row of an answer read against the whole answer's budget of values.
struct RowSeed<'b>(&'b std::cell::Cell<usize>);

impl<'de> de::DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
        struct Row<'b>(&'b std::cell::Cell<usize>);
        impl<'de> Visitor<'de> for Row<'_> {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut members = Vec::new();
                let row = std::cell::Cell::new(ROW_VALUES);
                let budget = Bounded {
                    row: &row,
                    body: self.0,
                };
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value_seed(budget)?;
                    members.push((key, value));
                }
                Ok(Item::Object(members))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
                Ok(Item::Other)
            }
        }
        d.deserialize_any(Row(self.0))
    }
}

/// Reads an answer body (a JSON array of objects with `personal_code` and the fields) into rows;
/// a body that is not such an array, or any row that is not an object, names no personal code
/// or names a field twice, rejects it as a whole, with every such row reported.
pub fn parse(source: Source, body: &[u8]) -> Result<Vec<AnswerRow>, Rejected> {
    let reject = |row: usize, problem: &str| Rejected {
        rows: 1,
        problems: vec![RowProblem {
            row,
            problem: problem.to_owned(),
        }],
    };
    // Row by row as the list is read: a row with a problem is counted, not kept, so a body of
    // millions of bad rows costs a counter (at most `Problems::KEPT` messages are kept).
    struct List(Source);
    impl<'de> Visitor<'de> for List {
        type Value = (Vec<AnswerRow>, Problems);
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of rows")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let (mut rows, mut problems) = (Vec::new(), Problems::default());
            let mut row = 0;
            let budget = std::cell::Cell::new(BODY_VALUES);
            while let Some(item) = seq.next_element_seed(RowSeed(&budget))? {
                row += 1;
                if let Some(r) = take_row(self.0, row, item, &mut problems) {
                    rows.push(r);
                }
            }
            Ok((rows, problems))
        }
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let read = reader
        .deserialize_seq(List(source))
        .and_then(|v| reader.end().map(|()| v));
    let (rows, problems) = read.map_err(|e| match e.classify() {
        serde_json::error::Category::Data
            if [TOO_MANY, TOO_MANY_IN_ALL]
                .iter()
                .any(|w| e.to_string().starts_with(w)) =>
        {
            let why = e.to_string();
            let why = why.split(" at line").next().unwrap_or("");
            reject(
                0,
                &format!("{why} (line {}): refused as it was read", e.line()),
            )
        }
        serde_json::error::Category::Data => reject(0, "the body is not a list of rows"),
        _ => reject(
            0,
            &format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        ),
    })?;
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems.rejected())
    }
}

/// One element of an answer's list as a row, or its problems reported.
fn take_row(source: Source, row: usize, item: Item, problems: &mut Problems) -> Option<AnswerRow> {
    {
        let Item::Object(members) = item else {
            problems.push(RowProblem {
                row,
                problem: "the row is not an object".into(),
            });
            return None;
        };
        let mut seen = HashSet::with_capacity(members.len());
        let mut twice = false;
        for (key, _) in &members {
            if !seen.insert(key.as_str()) {
                problems.push(RowProblem {
                    row,
                    problem: format!("field `{}` is named twice", shown(key)),
                });
                twice = true;
            }
        }
        let mut code = None;
        let mut values = BTreeMap::new();
        for (key, value) in members {
            if key == "personal_code" {
                code = value.as_str().map(str::to_owned);
            } else {
                values.insert(key, value);
            }
        }
        let Some(personal_code) = code else {
            problems.push(RowProblem {
                row,
                problem: "the row names no personal code".into(),
            });
            return None;
        };
        // A refused file keeps nothing: once a problem is found, rows are only counted.
        if twice || !problems.is_empty() {
            return None;
        }
        Some(AnswerRow {
            source,
            personal_code,
            values: values.into_iter().collect(),
        })
    }
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
        let e = parse(
            Source::InformationCentre,
            br#"[{"personal_code":"290758-10403","sentence":"fine","sentence":"none"}, 7,
                 {"personal_code":"290758-10403","personal_code":"325035-11782"}]"#,
        )
        .unwrap_err();
        let at: Vec<(usize, &str)> = e
            .problems
            .iter()
            .map(|p| (p.row, p.problem.as_str()))
            .collect();
        assert_eq!(
            at,
            [
                (1, "field `sentence` is named twice"),
                (2, "the row is not an object"),
                (3, "field `personal_code` is named twice"),
            ]
        );
        assert!(!format!("{e:?}").contains("290758"));
    }

    #[test]
    fn control_characters_and_values_outside_the_domain_reject_the_answer() {
        let keys = StudyKeys::generate("answers");
        let sources = [Source::PrisonRulings, Source::PrisonResocialisation];
        let req = Request::new(
            &keys,
            &sources,
            &[
                "admission_status",
                "release_grounds",
                "education",
                "incentives",
            ],
            ["290758-10403"],
        );
        let good = br#"[{"personal_code":"290758-10403","admission_status":"remand prisoner","education":"basic","incentives":2}]"#;
        assert!(validate(&keys, &req, &parse(sources[0], good).unwrap()).is_ok());
        let bad = br#"[{"personal_code":"290758-10403","admission_status":"alien"},
                       {"personal_code":"290758-10403","release_grounds":"escape\u0000d"},
                       {"personal_code":"290758-10403","incentives":-1},
                       {"personal_code":"290758-10403","Secret Name\u0007":"x"}]"#;
        let e = validate(&keys, &req, &parse(sources[0], bad).unwrap()).unwrap_err();
        let at: Vec<(usize, &str)> = e
            .problems
            .iter()
            .map(|p| (p.row, p.problem.as_str()))
            .collect();
        assert_eq!(
            at[0],
            (
                1,
                "field `admission_status` is not one of `remand prisoner`, `convict` (MK403 p.15.2; docs/catalogue.md)"
            )
        );
        assert_eq!(at[1], (2, "field `release_grounds` holds a NUL character"));
        assert!(at[2].1.starts_with("field `release_grounds` is not one of"));
        assert!(
            at[3]
                .1
                .starts_with("field `incentives` is not a whole number")
        );
        assert_eq!(at[4], (4, "a field's name holds a control character"));
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("alien") && !shown.contains("escape") && !shown.contains("Secret"));
    }

    /// A body of a million bad rows is refused with every row counted and a page of them
    /// kept, read row by row (nothing of it kept whole); a key that could be a personal code
    /// is never echoed.
    #[test]
    fn a_hostile_answer_is_counted_not_kept_and_echoes_no_code() {
        let body = format!("[{}{{}}]", "{},".repeat(999_999));
        let e = parse(Source::InformationCentre, body.as_bytes()).unwrap_err();
        assert_eq!((e.rows, e.problems.len()), (1_000_000, Problems::KEPT));
        let twice = format!("[{{\"personal_code\":\"1\"{}}}]", ",\"a\":0".repeat(5_000));
        let e = parse(Source::InformationCentre, twice.as_bytes()).unwrap_err();
        assert_eq!((e.rows, e.problems.len()), (1, Problems::KEPT));
        // A million values packed into one row: refused as they are read.
        let packed = format!(
            "[{{\"personal_code\":\"1\",\"a\":[{}0]}}]",
            "0,".repeat(1_000_000)
        );
        let e = parse(Source::InformationCentre, packed.as_bytes()).unwrap_err();
        assert!(e.problems[0].problem.starts_with(TOO_MANY), "{e}");
        // Rows each within their budget, past the whole answer's: refused as they are read.
        let row = format!(
            "{{\"personal_code\":\"1\",\"a\":[{}0]}}",
            "0,".repeat(9_000)
        );
        let many = format!("[{}{row}]", format!("{row},").repeat(450));
        let e = parse(Source::InformationCentre, many.as_bytes()).unwrap_err();
        assert!(e.problems[0].problem.starts_with(TOO_MANY_IN_ALL), "{e}");
        let keys = StudyKeys::generate("answers");
        let req = Request::new(
            &keys,
            &[Source::InformationCentre],
            &["sentence"],
            ["290758-10403"],
        );
        let rows = parse(
            Source::InformationCentre,
            br#"[{"personal_code":"290758-10403","29075810403":1,"x290758":2}]"#,
        )
        .unwrap();
        let e = validate(&keys, &req, &rows).unwrap_err().to_string();
        assert!(!e.contains("290758") && e.contains("(unnamed)"), "{e}");
    }
}
