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
        inline_references(&mut value);
        add_snippets(&mut value);
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

/// Puts in place of every property that only names a definition (`allOf: [{"$ref": …}]`,
/// schemars' form for a field with a description of its own) the definition's keywords, the
/// property's own description kept, and drops the definitions nothing refers to any more.
/// yaml-language-server completes such a property by its name alone, without its colon or a
/// skeleton of its value (issue #14: `initiator`, `publication`, `external`, every date); a
/// property with its `type` and `properties` in place it completes as `key: ` or `key:` and
/// the keys below. Validation is the same: the same keywords, at the same place.
fn inline_references(root: &mut Value) {
    let definitions = root.get("definitions").cloned().unwrap_or(Value::Null);
    inline_in(root, &definitions, 0);
    // What is still referred to (list items), from outside the definitions and then from
    // the definitions so reached.
    let mut used = std::collections::BTreeSet::new();
    let mut outside = root.clone();
    if let Value::Object(map) = &mut outside {
        map.remove("definitions");
    }
    let mut todo = Vec::new();
    references(&outside, &mut todo);
    while let Some(name) = todo.pop() {
        if used.insert(name.clone())
            && let Some(definition) = definitions.get(&name)
        {
            let mut inlined = definition.clone();
            inline_in(&mut inlined, &definitions, 0);
            references(&inlined, &mut todo);
        }
    }
    if let Some(Value::Object(defs)) = root.get_mut("definitions") {
        defs.retain(|name, _| used.contains(name));
    }
}

fn inline_in(node: &mut Value, definitions: &Value, depth: usize) {
    // The model has no recursive type; a depth this great would be one, left as a reference.
    if depth > 32 {
        return;
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for property in properties.values_mut() {
                    inline_one(property, definitions);
                }
            }
            for v in map.values_mut() {
                inline_in(v, definitions, depth + 1);
            }
        }
        Value::Array(items) => {
            for v in items {
                inline_in(v, definitions, depth + 1);
            }
        }
        _ => {}
    }
}

fn inline_one(property: &mut Value, definitions: &Value) {
    let Value::Object(map) = property else {
        return;
    };
    let name = match map.get("allOf") {
        Some(Value::Array(all)) if all.len() == 1 => all[0]
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/")),
        _ => None,
    };
    let Some(Value::Object(definition)) = name.and_then(|n| definitions.get(n)) else {
        return;
    };
    map.remove("allOf");
    for (key, value) in definition {
        map.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

/// The definitions `node` refers to.
fn references(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/definitions/")
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// What a snippet's placeholder for a date says until the author writes one: not a date, so
/// a skeleton accepted as it is is flagged where the date is missing (SF012).
pub const SNIPPET_DATE: &str = "YYYY-MM-DD";

/// yaml-language-server's `defaultSnippets` (issue #14) where a skeleton helps: a new data
/// source with its exchange (or extraction), volume and a first field with its reason
/// (MK403 p.3.3, p.9–16), a phase (p.3.4), an authorised person (p.25) and a member of an
/// external team (p.4.2). The editor offers each as a value of its key or as a new item of its
/// list; placeholders hold an enum's values as a choice and a date's place as
/// [`SNIPPET_DATE`].
fn add_snippets(root: &mut Value) {
    use crate::catalogue::{CATALOGUE, FieldClass, Source};
    // The values of the enum at the place named by its keys (lists on the way stand for their
    // items), as a snippet's choice lists them.
    let choice = |place: &str| -> String {
        let mut node = resolve(root, root);
        for key in place.split('.') {
            let Some(next) = items(root, node).get("properties").and_then(|p| p.get(key)) else {
                return String::new();
            };
            node = resolve(root, next);
        }
        enum_values(items(root, node)).join(",")
    };
    // A source's first field that identifies nobody: a skeleton does not suggest asking for
    // identifiers (MK403 p.3.3: only what the study needs).
    let first_key = |source: Source| {
        CATALOGUE
            .iter()
            .find(|f| f.source == source && f.class != FieldClass::Identifier)
            .map_or("field", |f| f.key)
    };
    let date = |n: usize| format!("${{{n}:{SNIPPET_DATE}}}");
    let volume = |n: usize| {
        serde_json::json!({
            "period": {"from": date(n), "to": date(n + 1)},
            "expected_records": format!("${{{}:1}}", n + 2),
        })
    };
    let fields = |source: Source, n: usize| {
        let mut map = Map::new();
        map.insert(
            format!("${{{n}:{}}}", first_key(source)),
            Value::String(format!("${{{}:why the study needs it}}", n + 1)),
        );
        Value::Object(map)
    };
    let exchange = choice("data_scope.information_centre.exchange");
    let extraction = choice("data_scope.service_is.extraction");
    let snippets = [
        (
            "/properties/data_scope/properties/information_centre",
            "new Information Centre source",
            "The Punishment Register through the Information Centre: how it is exchanged (MK403 p.10), the volume (p.12.3) and each p.13 field with why the study needs it (p.3.3).",
            serde_json::json!({
                "exchange": format!("${{1|{exchange}|}}"),
                "volume": volume(2),
                "fields": fields(Source::InformationCentre, 5),
            }),
        ),
        (
            "/properties/data_scope/properties/service_is",
            "new Service IS source",
            "The Service's own information system: how the data is extracted (MK403 p.10, p.22.1), the volume (p.3.3) and each field with why the study needs it (p.3.3, p.9).",
            serde_json::json!({
                "extraction": format!("${{1|{extraction}|}}"),
                "volume": volume(2),
                "fields": fields(Source::ServiceIs, 5),
            }),
        ),
        (
            "/properties/data_scope/properties/prison_administration",
            "new Prison Administration source",
            "The Prisoners' IS: how it is exchanged (MK403 p.10) and the p.15 rulings' volume and fields, each with why the study needs it (p.3.3, p.14–15).",
            serde_json::json!({
                "exchange": format!("${{1|{exchange}|}}"),
                "rulings": {
                    "volume": volume(2),
                    "fields": fields(Source::PrisonRulings, 5),
                },
            }),
        ),
        (
            "/properties/phases",
            "new phase",
            "A phase of the study with its dates and the stages it covers (MK403 p.3.4).",
            serde_json::json!({
                "id": "${1:phase-id}",
                "title": "${2:title}",
                "start": date(3),
                "deadline": date(4),
                "covers": [format!("${{5|{}|}}", choice("phases.covers"))],
            }),
        ),
        (
            "/properties/authorised_persons",
            "new authorised person",
            "An authorised person of the Service, their role and what they may access (MK403 p.21, p.25.1–25.3).",
            serde_json::json!({
                "name": "${1:name surname}",
                "login": "${2:login}",
                "role": format!("${{3|{}|}}", choice("authorised_persons.role")),
                "access": [format!("${{4|{}|}}", choice("authorised_persons.access"))],
            }),
        ),
        (
            "/properties/external/properties/team",
            "new team member",
            "A member of the external researcher's team and their role, saying whether they process personal data (MK403 p.4.2, p.33.1).",
            serde_json::json!({
                "name": "${1:name surname}",
                "role": "${2:role}",
                "processes_personal_data": "${3|false,true|}",
            }),
        ),
    ];
    let resolved: Vec<(String, Value)> = snippets
        .into_iter()
        .map(|(pointer, label, description, body)| {
            (
                pointer.to_owned(),
                serde_json::json!([{"label": label, "description": description, "body": body}]),
            )
        })
        .collect();
    for (pointer, snippet) in resolved {
        if let Some(Value::Object(node)) = root.pointer_mut(&pointer) {
            node.insert("defaultSnippets".into(), snippet);
        }
    }
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

    /// No property only names a definition (`allOf: [{"$ref": …}]`): yaml-language-server
    /// completes such a one by its name alone, without its colon (issue #14). Only list items
    /// refer to definitions, and every definition left is referred to.
    #[test]
    fn properties_carry_their_definitions_keywords_in_place() {
        let text = schema_text();
        assert!(
            !text.contains("allOf"),
            "a property only names a definition"
        );
        let v = schema_value();
        let mut referred = Vec::new();
        references(v, &mut referred);
        for name in v["definitions"].as_object().unwrap().keys() {
            assert!(referred.contains(name), "{name} is referred to by nothing");
        }
        // The properties are as they were: a source's fields, an initiator's kinds.
        let initiator = schema_at(v, "/initiator").node.unwrap();
        assert_eq!(initiator["type"], "object");
        assert!(initiator["properties"]["kind"]["enum"].is_array());
    }

    /// A snippet's text as the editor leaves it once the author has accepted each placeholder's
    /// default (a choice: its first value), read as YAML reads it (`1` a number, `false` a
    /// boolean), the dates given when `dates` says so.
    fn accepted(body: &Value, dates: bool) -> Value {
        fn text(s: &str, dates: bool) -> String {
            let mut out = String::new();
            let mut rest = s;
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let inner = &rest[i + 2..];
                let end = inner.find('}').unwrap();
                let (_, spec) = inner[..end].split_at(inner[..end].find([':', '|']).unwrap());
                let value = match spec.strip_prefix('|') {
                    Some(choices) => choices.split([',', '|']).next().unwrap(),
                    None => &spec[1..],
                };
                out.push_str(value);
                rest = &inner[end + 1..];
            }
            out.push_str(rest);
            if dates {
                out = out.replace(SNIPPET_DATE, "2026-01-05");
            }
            out
        }
        match body {
            Value::String(s) => {
                let t = text(s, dates);
                crate::yaml::parse(
                    &crate::source::SourceText::new(&t),
                    crate::yaml::Limits::default(),
                )
                .0
                .map(|d| d.value)
                .unwrap_or(Value::String(t))
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| accepted(i, dates)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (text(k, dates), accepted(v, dates)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Each snippet, accepted as it comes, put where the editor offers it in a valid spec,
    /// leaves nothing there the schema refuses but the dates still to be written (SF012 at
    /// each); with the dates written, nothing at all.
    #[test]
    fn every_snippet_is_a_skeleton_the_schema_accepts() {
        let spec = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../specs/resocialisation-programmes-university.yaml"
        ))
        .unwrap();
        let base = crate::yaml::parse(
            &crate::source::SourceText::new(&spec),
            crate::yaml::Limits::default(),
        )
        .0
        .unwrap()
        .value;
        let mut found = Vec::new();
        fn snippets(v: &Value, at: &str, out: &mut Vec<(String, Value, bool)>) {
            if let Some(s) = v.get("defaultSnippets") {
                let list = v.get("type") == Some(&Value::String("array".into()));
                out.push((at.to_owned(), s[0]["body"].clone(), list));
            }
            if let Some(props) = v.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    snippets(p, &format!("{at}/{k}"), out);
                }
            }
        }
        snippets(schema_value(), "", &mut found);
        let places: Vec<&str> = found.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            places,
            [
                "/data_scope/service_is",
                "/data_scope/information_centre",
                "/data_scope/prison_administration",
                "/phases",
                "/external/team",
                "/authorised_persons"
            ]
        );
        for (at, body, list) in &found {
            // A list's snippet is a new item of it.
            let place = if *list { format!("{at}/0") } else { at.clone() };
            for dates in [false, true] {
                let mut doc = base.clone();
                let (parent, key) = place.rsplit_once('/').unwrap();
                match doc.pointer_mut(parent).unwrap() {
                    Value::Object(m) => {
                        m.insert(key.to_owned(), accepted(body, dates));
                    }
                    Value::Array(a) => a[0] = accepted(body, dates),
                    _ => unreachable!(),
                }
                let text = serde_json::to_string_pretty(&doc).unwrap();
                let refused: Vec<String> = crate::check(text.as_bytes())
                    .diagnostics
                    .into_iter()
                    .filter(|d| ["SF010", "SF011", "SF012"].contains(&d.code))
                    .filter(|d| d.pointer.starts_with(&place))
                    .filter(|d| dates || !d.message.contains(SNIPPET_DATE))
                    .map(|d| format!("{} {} {}", d.code, d.pointer, d.message))
                    .collect();
                assert!(refused.is_empty(), "{place} (dates {dates}): {refused:?}");
                if !dates {
                    // The dates left to write are said to be missing.
                    let count = body.to_string().matches(SNIPPET_DATE).count();
                    let flagged = crate::check(text.as_bytes())
                        .diagnostics
                        .into_iter()
                        .filter(|d| d.code == "SF012" && d.pointer.starts_with(&place))
                        .count();
                    assert_eq!(flagged, count, "{place}");
                }
            }
        }
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
