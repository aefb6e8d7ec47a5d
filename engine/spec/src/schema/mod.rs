//! The JSON Schema of a spec: generated from [`crate::model`] by schemars (draft-07, the
//! newest draft yaml-language-server reads), post-processed for editors, compiled once, and
//! its violations mapped back to YAML positions with suggestions.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Lang, Severity, pointer_join};
use crate::model::Spec;
use crate::suggest;
use crate::yaml::YamlDocument;

mod instance;

use instance::{Kind, Validator};

pub(crate) const UNKNOWN_PROPERTY: (&str, &str) = ("SF010", "unknown-property");
pub(crate) const MISSING_PROPERTY: (&str, &str) = ("SF011", "missing-property");
pub(crate) const INVALID_VALUE: (&str, &str) = ("SF012", "invalid-value");

/// Where the checked-in copy lives, relative to the workspace root; the modeline of every spec
/// points at it.
pub const SCHEMA_PATH: &str = "schemas/study-spec.schema.json";

/// The schema as a JSON value.
pub fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = SchemaSettings::draft07().into_generator();
        let root = generator.into_root_schema_for::<Spec>();
        let mut value = root.to_value();
        finalize(&mut value);
        if let Value::Object(map) = &mut value {
            map.insert(
                "$comment".into(),
                Value::String(
                    "Generated from engine/spec/src/model.rs by `studyflow schema`; do not edit."
                        .into(),
                ),
            );
        }
        value
    })
}

/// The schema as the pretty-printed text that is checked in.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(schema_value()).unwrap_or_default();
    s.push('\n');
    s
}

/// Rewrites what schemars generates into what editors and validators handle best:
/// optional fields are not nullable (an empty value is a mistake in a spec) and have no `null`
/// default, integer `format`s
/// that draft-07 does not define are dropped, and `oneOf` lists of constants become `enum`s
/// with `enumDescriptions` (clear errors, and completion with documentation in VS Code).
fn finalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            strip_null(map);
            if let Some(Value::String(f)) = map.get("format")
                && (f.starts_with("uint") || f.starts_with("int"))
            {
                // draft-07 has no integer formats; keep their range as `maximum`.
                match f.as_str() {
                    "uint32" => {
                        map.entry("maximum").or_insert(Value::from(u32::MAX));
                    }
                    "uint64" => {
                        map.entry("maximum").or_insert(Value::from(u64::MAX));
                    }
                    _ => {}
                }
                map.remove("format");
            }
            constants_to_enum(map);
            for v in map.values_mut() {
                finalize(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(finalize),
        _ => {}
    }
}

fn strip_null(map: &mut Map<String, Value>) {
    // A `null` default is no value an editor can offer: yaml-language-server fails on it and
    // completes nothing where a suggestion would reach it (issue #14).
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    if let Some(Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types.remove(0);
            map.insert("type".into(), t);
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get(key) else {
            continue;
        };
        let non_null: Vec<&Value> = branches
            .iter()
            .filter(|b| b.get("type") != Some(&Value::String("null".into())))
            .collect();
        if non_null.len() == 1 && branches.len() == 2 {
            let only = non_null[0].clone();
            map.remove(key);
            if only.get("$ref").is_some() {
                map.insert("allOf".into(), Value::Array(vec![only]));
            } else if let Value::Object(inner) = only {
                for (k, v) in inner {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
}

fn constants_to_enum(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get("oneOf") else {
        return;
    };
    if branches.is_empty() || !branches.iter().all(|b| b.get("const").is_some()) {
        return;
    }
    let values: Vec<Value> = branches
        .iter()
        .filter_map(|b| b.get("const").cloned())
        .collect();
    let descriptions: Vec<Value> = branches
        .iter()
        .map(|b| {
            b.get("description")
                .cloned()
                .unwrap_or(Value::String(String::new()))
        })
        .collect();
    map.remove("oneOf");
    map.insert("type".into(), Value::String("string".into()));
    map.insert("enum".into(), Value::Array(values));
    map.insert(
        "enumDescriptions".into(),
        Value::Array(descriptions.clone()),
    );
    map.insert(
        "markdownEnumDescriptions".into(),
        Value::Array(descriptions),
    );
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        Validator::new(schema_value())
            // The schema is generated by this crate and tested; failing to compile it is a bug.
            .unwrap_or_else(|e| panic!("the generated spec schema does not compile: {e}"))
    })
}

/// What the schema says about the instance location `pointer`.
struct SchemaInfo<'s> {
    node: Option<&'s Value>,
    /// The nearest description on the way (the node's own, or its closest ancestor's).
    description: Option<&'s str>,
}

fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..16 {
        if let Some(Value::String(r)) = node.get("$ref") {
            let Some(p) = r.strip_prefix('#') else { break };
            match root.pointer(p) {
                Some(n) => node = n,
                None => break,
            }
        } else if let Some(Value::Array(all)) = node.get("allOf")
            && all.len() == 1
        {
            node = &all[0];
        } else {
            break;
        }
    }
    node
}

fn schema_at<'s>(root: &'s Value, pointer: &str) -> SchemaInfo<'s> {
    let mut node = root;
    let mut description = root.get("description").and_then(Value::as_str);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let n = resolve(root, node);
        let next = n
            .get("properties")
            .and_then(|p| p.get(&seg))
            .or_else(|| n.get("items").filter(|_| seg.parse::<usize>().is_ok()))
            .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()));
        let Some(next) = next else {
            return SchemaInfo {
                node: None,
                description,
            };
        };
        if let Some(d) = next.get("description").and_then(Value::as_str) {
            description = Some(d);
        } else if let Some(d) = resolve(root, next)
            .get("description")
            .and_then(Value::as_str)
        {
            description = Some(d);
        }
        node = next;
    }
    SchemaInfo {
        node: Some(resolve(root, node)),
        description,
    }
}

/// The kind of value a key of a spec holds, as the schema says: what an editor inserts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A mapping: its keys go on the lines below.
    Mapping,
    /// A list: its items go on the lines below, each after `- `.
    List,
    /// A single value on the key's line.
    Scalar,
}

/// A key the schema allows in a mapping of a spec.
#[derive(Debug, Clone)]
pub struct AllowedKey {
    pub key: &'static str,
    pub description: Option<&'static str>,
    /// Whether the mapping must have it.
    pub required: bool,
    pub shape: Shape,
    /// The values it may take, if the schema lists them.
    pub values: Vec<&'static str>,
}

/// What the schema allows at a place in a spec named by its keys, outermost first (a list on
/// the way stands for its items, so `["phases", "covers"]` is every phase's `covers`): the keys
/// of the mapping there, and the values listed for it (an enum, or a list of an enum's items).
/// An editor's completion; empty where the schema says nothing.
pub fn allowed(keys: &[&str]) -> (Vec<AllowedKey>, Vec<&'static str>) {
    let root = schema_value();
    let mut node = resolve(root, root);
    for key in keys {
        node = items(root, node);
        let next = node
            .get("properties")
            .and_then(|p| p.get(*key))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
        match next {
            Some(n) => node = resolve(root, n),
            None => return (Vec::new(), Vec::new()),
        }
    }
    let values = enum_values(items(root, node));
    let node = items(root, node);
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(key, own)| {
                    let n = resolve(root, own);
                    let description = own
                        .get("description")
                        .or_else(|| n.get("description"))
                        .and_then(Value::as_str);
                    let shape = match n.get("type").and_then(Value::as_str) {
                        Some("object") => Shape::Mapping,
                        Some("array") => Shape::List,
                        _ if n.get("properties").is_some() => Shape::Mapping,
                        _ => Shape::Scalar,
                    };
                    AllowedKey {
                        key: key.as_str(),
                        description,
                        required: required.contains(&key.as_str()),
                        shape,
                        values: enum_values(items(root, n)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (keys, values)
}

/// A list's items, or the node itself.
fn items<'s>(root: &'s Value, node: &'s Value) -> &'s Value {
    match node.get("items") {
        Some(i) if node.get("type").and_then(Value::as_str) == Some("array") => resolve(root, i),
        _ => node,
    }
}

fn enum_values(node: &Value) -> Vec<&str> {
    node.get("enum")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What the schema says of the field at `pointer` (its description, with the MK403 points
/// it cites), or of the nearest field above it that says something (an editor's hover).
pub fn field_help(pointer: &str) -> Option<&'static str> {
    schema_at(schema_value(), pointer).description
}

/// MK403 points cited in a description: every `p.N[.N…]`.
pub(crate) fn cited_points(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("p.") {
        let preceded_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let tail = &rest[i + 2..];
        let len = tail
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
            .last()
            .map_or(0, |(j, c)| j + c.len_utf8());
        let num = tail[..len].trim_end_matches('.');
        if preceded_ok && num.starts_with(|c: char| c.is_ascii_digit()) {
            let p = format!("p.{num}");
            if !out.contains(&p) {
                out.push(p);
            }
        }
        rest = &rest[i + 2..];
    }
    out
}

/// A value as a message shows it, in `lang`.
fn describe(v: &Value, lang: Lang) -> String {
    let lv = lang == Lang::Lv;
    match v {
        Value::Null if lv => "tukša vērtība".into(),
        Value::Null => "an empty value".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) if crate::diagnostic::number_looks_like_personal_code(n) => {
            crate::diagnostic::shown_in("32000000000", lang)
        }
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => crate::diagnostic::shown_in(s, lang),
        Value::Array(_) if lv => "saraksts".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) if lv => "kartējums".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// What the schema expects, in `lang`: "a whole number or text".
fn type_name(expected: &[String], lang: Lang) -> String {
    let name = |t: &str| {
        match (t, lang) {
            ("object", Lang::En) => "a mapping",
            ("object", Lang::Lv) => "kartējums",
            ("array", Lang::En) => "a list",
            ("array", Lang::Lv) => "saraksts",
            ("string", Lang::En) => "text",
            ("string", Lang::Lv) => "teksts",
            ("integer", Lang::En) => "a whole number",
            ("integer", Lang::Lv) => "vesels skaitlis",
            ("number", Lang::En) => "a number",
            ("number", Lang::Lv) => "skaitlis",
            ("boolean", Lang::En) => "`true` or `false`",
            ("boolean", Lang::Lv) => "`true` vai `false`",
            (other, _) => other,
        }
        .to_owned()
    };
    let or = match lang {
        Lang::En => " or ",
        Lang::Lv => " vai ",
    };
    expected
        .iter()
        .map(|t| name(t))
        .collect::<Vec<_>>()
        .join(or)
}

fn list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Validates the document against the schema; every violation becomes a diagnostic at the
/// YAML position of the offending node (an unknown property at its key).
pub fn validate(doc: &YamlDocument) -> Vec<Diagnostic> {
    // Most files are valid: `is_valid` short-circuits and builds no errors.
    if validator().is_valid(&doc.value) {
        return Vec::new();
    }
    let root = schema_value();
    let mut out = Vec::new();
    for violation in validator().violations(&doc.value) {
        let at = violation.path;
        let instance = violation.instance;
        match &violation.kind {
            Kind::AdditionalProperties { unexpected } => {
                let info = schema_at(root, &at);
                let allowed: Vec<&str> = info
                    .node
                    .and_then(|n| n.get("properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for name in unexpected {
                    let pointer = pointer_join(&at, name);
                    let span = doc.spans.get(&pointer).and_then(|s| s.key);
                    let (message, message_lv) = if crate::diagnostic::looks_like_personal_code(name)
                    {
                        (
                                "unknown property (its name looks like a personal code and is not shown)"
                                    .to_owned(),
                                "nezināma īpašība (tās nosaukums izskatās pēc personas koda un netiek rādīts)"
                                    .to_owned(),
                            )
                    } else {
                        (
                            format!("unknown property `{name}`"),
                            format!("nezināma īpašība `{name}`"),
                        )
                    };
                    let mut d = Diagnostic::new(
                        UNKNOWN_PROPERTY.0,
                        UNKNOWN_PROPERTY.1,
                        Severity::Error,
                        message,
                    )
                    .with_latvian(message_lv)
                    .at(pointer)
                    .citing(info.description.map(cited_points).unwrap_or_default());
                    // A key the mapping has already is not what was meant (it would be written
                    // twice).
                    let guess = suggest::closest(
                        name,
                        allowed
                            .iter()
                            .copied()
                            .filter(|k| instance.get(*k).is_none()),
                    );
                    d.fix = guess.map(|s| crate::diagnostic::Fix::Replace(s.to_owned()));
                    d.help = Some(match guess {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if allowed.len() <= 12 => {
                            format!("expected one of {}", list(&allowed))
                        }
                        None => "see `studyflow schema` for the properties allowed here".into(),
                    });
                    d.span = span;
                    d.replaceable = true;
                    out.push(d);
                }
            }
            Kind::Required { property } => {
                let name = property.as_str();
                let pointer = pointer_join(&at, name);
                let info = schema_at(root, &pointer);
                let mut d = Diagnostic::new(
                    MISSING_PROPERTY.0,
                    MISSING_PROPERTY.1,
                    Severity::Error,
                    format!("missing required property `{name}`"),
                )
                .with_latvian(format!("trūkst obligātās īpašības `{name}`"))
                .at(pointer)
                .citing(info.description.map(cited_points).unwrap_or_default());
                if let Some(desc) = info.description {
                    d.help = Some(format!("add `{name}`: {desc}"));
                }
                d.fix = Some(crate::diagnostic::Fix::Add);
                d.replaceable = true;
                out.push(d);
            }
            kind => {
                let info = schema_at(root, &at);
                let (message, help) = value_message(kind, instance, Lang::En);
                let (message_lv, _) = value_message(kind, instance, Lang::Lv);
                let mut d =
                    Diagnostic::new(INVALID_VALUE.0, INVALID_VALUE.1, Severity::Error, message)
                        .with_latvian(message_lv)
                        .at(at.clone())
                        .citing(info.description.map(cited_points).unwrap_or_default());
                d.help = help;
                d.fix = enum_guess(kind, instance).map(crate::diagnostic::Fix::Replace);
                d.span = doc.spans.nearest(&at).map(|(s, _)| s.value);
                // A rule explains an empty value ("must state …") and a value outside an enum
                // better than the schema can.
                d.replaceable = matches!(kind, Kind::Enum { .. }) || instance.is_null();
                out.push(d);
            }
        }
    }
    out
}

/// The options of an enum as shown, and the one a value outside it most likely meant.
fn enum_guess_and_options(kind: &Kind, instance: &Value) -> Option<(Option<String>, Vec<String>)> {
    let Kind::Enum { options } = kind else {
        return None;
    };
    // Enums of strings, and of numbers (the spec format version): every option shown.
    let shown_opts: Vec<String> = options
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    let guess = instance
        .as_str()
        .and_then(|s| suggest::closest(s, shown_opts.iter().map(String::as_str)))
        .map(str::to_owned);
    Some((guess, shown_opts))
}

/// The allowed value a value outside an enum most likely meant.
fn enum_guess(kind: &Kind, instance: &Value) -> Option<String> {
    enum_guess_and_options(kind, instance).and_then(|(g, _)| g)
}

/// The message of a value the schema refuses, in `lang`, and its help (in English; the pages
/// show none).
fn value_message(kind: &Kind, instance: &Value, lang: Lang) -> (String, Option<String>) {
    let shown = describe(instance, lang);
    let lv = lang == Lang::Lv;
    let not_a_date = || {
        (
            if lv {
                format!("{shown} nav derīgs datums (GGGG-MM-DD)")
            } else {
                format!("{shown} is not a valid date")
            },
            Some("write dates as YYYY-MM-DD, e.g. 2026-06-30".into()),
        )
    };
    if let Some((guess, opts)) = enum_guess_and_options(kind, instance) {
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        let help = match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None if opts.len() <= 12 => format!("expected one of {}", list(&opts)),
            None => "see `studyflow schema` for the values allowed here".into(),
        };
        let message = if lv {
            format!("{shown} šeit nav atļauta vērtība")
        } else {
            format!("{shown} is not an allowed value here")
        };
        return (message, Some(help));
    }
    let (en, lv_text) = match kind {
        Kind::Type { expected } => (
            format!("expected {}, found {shown}", type_name(expected, lang)),
            format!("jābūt: {}; ir: {shown}", type_name(expected, lang)),
        ),
        Kind::Format { format } if format == "date" => return not_a_date(),
        // The date's pattern says the same as its format, in a form editors check.
        Kind::Pattern { pattern } if pattern == crate::model::DATE_PATTERN => return not_a_date(),
        Kind::Pattern { pattern } => {
            let help = Some(format!("it must match `{pattern}`"));
            return (
                if lv {
                    format!("{shown} neatbilst prasītajai formai (`{pattern}`)")
                } else {
                    format!("{shown} does not have the required form")
                },
                help,
            );
        }
        Kind::Minimum { limit } => (
            format!("{shown} is too small; the minimum is {limit}"),
            format!("{shown} ir par mazu; mazākā atļautā vērtība ir {limit}"),
        ),
        Kind::Maximum { limit } => (
            format!("{shown} is too large; the maximum is {limit}"),
            format!("{shown} ir par lielu; lielākā atļautā vērtība ir {limit}"),
        ),
        Kind::MinItems { limit } => (
            format!("the list needs at least {limit} item(s)"),
            if *limit == 1 {
                "sarakstā jābūt vismaz vienam elementam".to_owned()
            } else {
                format!("sarakstā jābūt vismaz {limit} elementiem")
            },
        ),
        Kind::MinProperties { limit } => (
            format!(
                "the mapping needs at least {limit} entr{}",
                if *limit == 1 { "y" } else { "ies" }
            ),
            if *limit == 1 {
                "kartējumā jābūt vismaz vienam ierakstam".to_owned()
            } else {
                format!("kartējumā jābūt vismaz {limit} ierakstiem")
            },
        ),
        Kind::Format { .. }
        | Kind::Enum { .. }
        | Kind::Nothing
        | Kind::AdditionalProperties { .. }
        | Kind::Required { .. } => (
            "the value does not match the schema".to_owned(),
            "vērtība neatbilst shēmai".to_owned(),
        ),
    };
    (if lv { lv_text } else { en }, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No `"default": null` anywhere: yaml-language-server throws on it and offers nothing.
    #[test]
    fn no_property_has_a_null_default() {
        fn walk(v: &Value, at: &str, found: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if m.get("default") == Some(&Value::Null) {
                        found.push(at.to_owned());
                    }
                    for (k, v) in m {
                        walk(v, &format!("{at}/{k}"), found);
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, &format!("{at}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(schema_value(), "", &mut found);
        assert!(found.is_empty(), "{found:?}");
    }

    /// Every finding of the schema (SF010–SF012) and the structure note (SF013) on the corpus
    /// of invalid specs is said in Latvian too, for the Latvian pages.
    #[test]
    fn the_schema_findings_are_said_in_latvian_too() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/specs/invalid");
        let mut said = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            for d in crate::check(&bytes).diagnostics {
                if ["SF010", "SF011", "SF012", "SF013"].contains(&d.code) {
                    let lv = d.message_lv.as_deref().unwrap_or_default();
                    assert!(
                        !lv.is_empty() && lv != d.message,
                        "{}: {} has no Latvian: {}",
                        entry.path().display(),
                        d.code,
                        d.message
                    );
                    said += 1;
                }
            }
        }
        assert!(said >= 20, "{said} findings");
    }

    #[test]
    fn points_are_extracted_from_descriptions() {
        assert_eq!(
            cited_points("The data (MK403 p.3.3, p.9–p.16). See p.33.3."),
            vec!["p.3.3", "p.9", "p.16", "p.33.3"]
        );
        assert!(cited_points("map.x").is_empty());
    }

    #[test]
    fn every_property_cites_mk403() {
        fn walk(v: &Value, path: &str, missing: &mut Vec<String>) {
            if let Some(props) = v.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    let d = p.get("description").and_then(Value::as_str).unwrap_or("");
                    if !d.contains("MK403 p.") {
                        missing.push(format!("{path}/{k}"));
                    }
                    walk(p, &format!("{path}/{k}"), missing);
                }
            }
            if let Some(defs) = v.get("definitions").and_then(Value::as_object) {
                for (k, d) in defs {
                    walk(d, &format!("#{k}"), missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(schema_value(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "properties without an MK403 citation: {missing:?}"
        );
    }

    #[test]
    fn schema_is_draft07_without_nullables_or_oneof() {
        let text = schema_text();
        assert!(text.contains("http://json-schema.org/draft-07/schema#"));
        assert!(
            !text.contains("\"null\""),
            "optional fields must not be nullable"
        );
        assert!(!text.contains("oneOf"));
        let v = schema_value();
        let ic = schema_at(v, "/data_scope/information_centre/fields");
        let props = ic
            .node
            .unwrap()
            .get("properties")
            .unwrap()
            .as_object()
            .unwrap();
        assert_eq!(props.len(), 23);
    }
}
