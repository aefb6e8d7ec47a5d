//! What a release says about itself, so people can analyse it: a Frictionless Data Package
//! (`datapackage.json`: each table's fields with their type, format, unit, categories, the
//! missing-value convention, how tables join, and the release's k-anonymity and date policy)
//! and a codebook for people generated from it (`codebook.md`). MK403 p.7, p.20, p.24, p.30.
//!
//! Types come from what the release holds, never from its values: the catalogue's class and
//! value domain of each field, and the spec's anonymisation policy (dates kept, coarsened to the
//! month, or counted in days from the anchor; whole numbers released in bands).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use studyflow_spec::catalogue::{self, Domain, FieldClass};
use studyflow_spec::model::DatePolicy;

/// What a release is and how it was anonymised.
#[derive(Debug, Clone)]
pub struct Description {
    pub study: String,
    pub title: String,
    pub version: i64,
    /// `baseline`, the wave's name, or `transfer`.
    pub label: String,
    /// Who it is for, in words.
    pub recipient: String,
    pub date_policy: DatePolicy,
    /// The catalogue key of the date relative dates count from.
    pub anchor_field: Option<String>,
    pub k: usize,
    pub quasi_identifiers: Vec<String>,
    pub suppression_allowed: bool,
    /// Whole-number fields released in bands of this width.
    pub bands: BTreeMap<String, i64>,
}

impl Description {
    /// The description of a release of `spec`'s study under its anonymisation policy.
    pub fn of(spec: &studyflow_spec::Spec, version: i64, label: &str, recipient: &str) -> Self {
        let policy = spec.anonymisation.as_ref();
        Description {
            study: spec.id.clone(),
            title: spec.title.clone().unwrap_or_default(),
            version,
            label: label.to_owned(),
            recipient: recipient.to_owned(),
            date_policy: policy.map_or(DatePolicy::Keep, |a| a.date_policy),
            anchor_field: policy.and_then(|a| a.anchor_field.clone()),
            k: policy.map_or(0, |a| a.k.0 as usize),
            quasi_identifiers: policy
                .map(|a| a.quasi_identifiers.clone())
                .unwrap_or_default(),
            suppression_allowed: policy.is_some_and(|a| a.suppression_allowed),
            bands: policy
                .map(|a| {
                    a.bands
                        .iter()
                        .map(|(k, w)| (k.clone(), i64::from(w.0)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn anchor_words(&self) -> String {
        self.anchor_field
            .as_deref()
            .and_then(|k| catalogue::sources_of(k).next())
            .map_or_else(
                || "the anchor date".to_owned(),
                |f| format!("{} (`{}`)", f.meaning, f.key),
            )
    }
}

/// The Frictionless field descriptor of `column` in a release described by `d`.
pub fn field(column: &str, d: &Description) -> Value {
    if column == "study_id" {
        return json!({
            "name": "study_id", "type": "string",
            "description": "The subject's random study ID (MK403 p.7): the same in every table of this release, in no other study and no other release of another study.",
            "constraints": {"required": true},
        });
    }
    if let Some(derived) = crate::followup::derived(column) {
        let mut f = json!({"name": column, "description": derived.meaning});
        match column {
            "wave" => {
                f["type"] = "string".into();
                f["constraints"] = json!({"enum": studyflow_spec::model::WAVES.iter().map(|w| w.name).collect::<Vec<_>>()});
            }
            "wave_point" => f["type"] = "string".into(),
            "censoring" => {
                f["type"] = "string".into();
                f["constraints"] = json!({"enum": ["follow_up_complete", "follow_up_in_progress", "end_not_known", "cut_off", "anchor_not_known"]});
            }
            "reoffended" | "late_registration" => {
                f["type"] = "integer".into();
                f["constraints"] = json!({"enum": [0, 1]});
            }
            "events" | "waves_arrived" => {
                f["type"] = "integer".into();
                f["constraints"] = json!({"minimum": 0});
            }
            _ => {
                f["type"] = "integer".into();
                f["unit"] = crate::followup::Unit::of(d.date_policy).words().into();
            }
        }
        return f;
    }
    let Some(c) = catalogue::sources_of(column).next() else {
        // The release refuses such a column; described as text should it ever be asked.
        return json!({"name": column, "type": "string"});
    };
    let point = c.point.unwrap_or(c.source.point());
    let mut f = json!({
        "name": column,
        "title": c.meaning_lv(),
        "description": format!("{} — {} ({}, MK403 {point})", c.meaning, c.meaning_lv(), c.source.title()),
    });
    if c.class == FieldClass::Date {
        match d.date_policy {
            DatePolicy::Keep => {
                f["type"] = "date".into();
                f["format"] = "%Y-%m-%d".into();
            }
            DatePolicy::Month => {
                f["type"] = "yearmonth".into();
                f["description"] = format!(
                    "{} Coarsened to the month (MK403 p.7).",
                    f["description"].as_str().unwrap_or_default()
                )
                .into();
            }
            DatePolicy::RelativeToAnchor => {
                f["type"] = "integer".into();
                f["unit"] = format!("days relative to {}", d.anchor_words()).into();
                f["description"] = format!(
                    "{} Days relative to {}: negative before it (MK403 p.7).",
                    f["description"].as_str().unwrap_or_default(),
                    d.anchor_words()
                )
                .into();
            }
        }
        return f;
    }
    if let Some(width) = d.bands.get(column) {
        f["type"] = "string".into();
        f["description"] = format!(
            "{} Released in bands of {width} (e.g. `1980–1989`), MK403 p.7.",
            f["description"].as_str().unwrap_or_default()
        )
        .into();
        return f;
    }
    match c.domain() {
        Some(Domain::OneOf(values)) => {
            f["type"] = "string".into();
            f["constraints"] = json!({"enum": values});
        }
        Some(Domain::SomeOf(values)) => {
            f["type"] = "string".into();
            f["description"] = format!(
                "{} Multi-valued: the values separated by `; ` in one cell, each one of: {}.",
                f["description"].as_str().unwrap_or_default(),
                values.join(", ")
            )
            .into();
            f["studyflow:values"] = json!(values);
            f["studyflow:separator"] = "; ".into();
        }
        Some(Domain::YesNo) => {
            f["type"] = "boolean".into();
            f["trueValues"] = json!(["true"]);
            f["falseValues"] = json!(["false"]);
        }
        Some(Domain::Count) => {
            f["type"] = "integer".into();
            f["constraints"] = json!({"minimum": 0});
        }
        None if column.ends_with("_year") => f["type"] = "integer".into(),
        None => f["type"] = "string".into(),
    }
    f
}

/// The data package of a release: one resource per table, in the order given.
pub fn package(d: &Description, tables: &[(String, Vec<String>)]) -> Value {
    let has_subjects = tables.iter().any(|(t, _)| t == "subjects");
    let resources: Vec<Value> = tables
        .iter()
        .map(|(name, columns)| {
            let mut fields = vec![field("study_id", d)];
            fields.extend(columns.iter().map(|c| field(c, d)));
            let mut schema = json!({
                "fields": fields,
                "missingValues": [""],
            });
            if name == "subjects" || name == "follow_up_observation" {
                schema["primaryKey"] = json!(["study_id"]);
            }
            if name != "subjects" && has_subjects {
                schema["foreignKeys"] = json!([{
                    "fields": ["study_id"],
                    "reference": {"resource": "subjects", "fields": ["study_id"]},
                }]);
            }
            json!({
                "name": name,
                "path": format!("{name}.csv"),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": {"delimiter": ",", "quoteChar": "\"", "header": true},
                "schema": schema,
            })
        })
        .collect();
    let dates = match d.date_policy {
        DatePolicy::Keep => "dates kept as they are".to_owned(),
        DatePolicy::Month => "dates coarsened to the month (YYYY-MM)".to_owned(),
        DatePolicy::RelativeToAnchor => format!("dates as days relative to {}", d.anchor_words()),
    };
    json!({
        "profile": "tabular-data-package",
        "name": format!("{}-v{}-{}", d.study, d.version, d.label).to_lowercase().replace('_', "-"),
        "title": d.title,
        "description": format!(
            "The anonymised analysis dataset of study {} (version {}), release `{}`, for {}. Identifiers removed and subjects under random study IDs (MK403 p.7, p.20, p.24); {dates}; k-anonymity k = {} over {} ({}). A missing value is an empty cell.",
            d.study,
            d.version,
            d.label,
            d.recipient,
            d.k,
            if d.quasi_identifiers.is_empty() { "no quasi-identifiers".to_owned() } else { d.quasi_identifiers.join(", ") },
            if d.suppression_allowed { "smaller classes suppressed" } else { "a smaller class blocks the release" },
        ),
        "resources": resources,
        "studyflow:anonymisation": {
            "k": d.k,
            "quasi_identifiers": d.quasi_identifiers,
            "suppression_allowed": d.suppression_allowed,
            "date_policy": dates,
            "bands": d.bands,
            "regulation": ["p.7", "p.20", "p.24"],
        },
    })
}

/// The codebook for people, from the package: per table, each column with its type, unit and
/// categories.
pub fn codebook_markdown(package: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = format!(
        "# {}\n\n{}\n\nMissing values are empty cells. `study_id` joins the tables.\n",
        s(&package["title"]),
        s(&package["description"])
    );
    for r in package["resources"].as_array().into_iter().flatten() {
        out.push_str(&format!("\n## `{}`\n\n", s(&r["path"])));
        out.push_str("| column | type | unit | values | meaning |\n|---|---|---|---|---|\n");
        for f in r["schema"]["fields"].as_array().into_iter().flatten() {
            let values = f["constraints"]["enum"]
                .as_array()
                .or_else(|| f["studyflow:values"].as_array())
                .map(|v| {
                    v.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                s(&f["name"]),
                s(&f["type"]),
                s(&f["unit"]),
                values.replace('|', "\\|"),
                s(&f["description"]).replace('|', "\\|"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(policy: DatePolicy) -> Description {
        Description {
            study: "s".into(),
            title: "T".into(),
            version: 1,
            label: "baseline".into(),
            recipient: "the Service's researchers".into(),
            date_policy: policy,
            anchor_field: Some("supervision_start_date".into()),
            k: 5,
            quasi_identifiers: vec!["sex".into(), "birth_year".into()],
            suppression_allowed: true,
            bands: BTreeMap::from([("birth_year".to_owned(), 10)]),
        }
    }

    #[test]
    fn types_follow_the_catalogue_and_the_policy() {
        let d = description(DatePolicy::RelativeToAnchor);
        assert_eq!(field("offence_date", &d)["type"], "integer");
        assert!(
            field("offence_date", &d)["unit"]
                .as_str()
                .unwrap()
                .contains("days relative to")
        );
        assert_eq!(field("birth_year", &d)["type"], "string", "banded");
        let sexes = field("sex", &d)["constraints"]["enum"].clone();
        assert!(
            sexes.as_array().unwrap().iter().any(|v| v == "female"),
            "{sexes}"
        );
        assert_eq!(field("due", &d)["type"], "integer");
        assert_eq!(
            field("first_offence", &description(DatePolicy::Month))["unit"],
            "calendar months from the month of the start of the anchor event (0: the same month)"
        );
        assert_eq!(field("censoring", &d)["type"], "string");
        let m = description(DatePolicy::Month);
        assert_eq!(field("offence_date", &m)["type"], "yearmonth");
        let k = description(DatePolicy::Keep);
        assert_eq!(field("offence_date", &k)["type"], "date");
    }

    #[test]
    fn the_package_joins_tables_by_study_id_and_the_codebook_lists_every_column() {
        let d = description(DatePolicy::RelativeToAnchor);
        let p = package(
            &d,
            &[
                ("subjects".into(), vec!["sex".into(), "birth_year".into()]),
                ("information_centre".into(), vec!["offence_date".into()]),
            ],
        );
        let r = p["resources"].as_array().unwrap();
        assert_eq!(r[0]["schema"]["primaryKey"][0], "study_id");
        assert_eq!(
            r[1]["schema"]["foreignKeys"][0]["reference"]["resource"],
            "subjects"
        );
        assert_eq!(r[1]["schema"]["missingValues"][0], "");
        let md = codebook_markdown(&p);
        for c in ["`sex`", "`birth_year`", "`offence_date`", "`study_id`"] {
            assert!(md.contains(c), "{c} in\n{md}");
        }
    }
}
