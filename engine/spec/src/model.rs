//! The study spec: the serde + schemars types of one study YAML file.
//!
//! Doc comments here become the JSON Schema's descriptions, which editors show on hover; each
//! cites the MK403 point it serves. Fields that a legal rule checks for presence are `Option`
//! (or default to empty) so that a spec with gaps still deserializes and every rule still
//! runs; the schema marks them required all the same, so editors flag them at once.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::catalogue::{self, PersonalDataType, Source};

/// A date's form in the schema: `YYYY-MM-DD` with a month that exists and a day that month
/// can have (29 February in any year: the leap years are `format: date`'s). Editors that do
/// not check `format` (yaml-language-server) flag 2026-02-30 by it.
pub const DATE_PATTERN: &str = "^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-9]))$";

/// A calendar date, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Date(pub jiff::civil::Date);

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date",
            "pattern": DATE_PATTERN,
            "description": "A calendar date, YYYY-MM-DD (the MK403 deadlines are counted in calendar and working days)."
        })
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A whole number that may be written `5` or `5.0`, as JSON Schema allows: YAML reads
/// `5.0` as a float, and a spec must not fail on it after the schema passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Whole<T>(pub T);

impl<T> std::ops::Deref for Whole<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<T: TryFrom<u64>> serde::de::Visitor<'_> for Visitor<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::try_from(v)
                    .map(Whole)
                    .map_err(|_| E::custom("the number is too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("the number must not be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&v) {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::custom("a whole number is needed"))
                }
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Whole<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One study application and everything the engine needs to run it (MK403 p.3, p.4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "studyflow study spec")]
pub struct Spec {
    /// Version of this spec format; always 1. (The study application of MK403 p.3 in studyflow's format.)
    pub spec_version: SpecVersion,
    /// Stable identifier of the study: lower-case letters, digits and hyphens (MK403 p.3: the approved application it names).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{2,63}$"))]
    pub id: String,
    /// Title of the study as it appears on the application (MK403 p.3: the application that names the study; the title itself is studyflow's requirement).
    #[schemars(required)]
    pub title: Option<String>,
    /// The title in Latvian, as the Latvian part of the Service's letters quotes it (the requests
    /// of MK403 p.11, the notice of p.8); without it they quote `title`.
    #[serde(default)]
    pub title_lv: Option<String>,
    /// Version of this study's spec; raise it for every amendment. studyflow runs only an approved version (MK403 p.3: a study runs under an approved application).
    #[schemars(range(min = 1))]
    pub version: Whole<u32>,
    /// Who initiates the study: the Service or an external researcher (MK403 p.2, p.4).
    pub initiator: Initiator,
    /// The purpose of the study (MK403 p.3.1).
    #[schemars(required)]
    pub purpose: Option<String>,
    /// The purpose in Latvian, as the Latvian part of the request letters quotes it
    /// (MK403 p.3.1, p.11); without it they quote `purpose`.
    #[serde(default)]
    pub purpose_lv: Option<String>,
    /// Methodology, planned sample, acquisition methods and procedures (MK403 p.3.2).
    #[schemars(required)]
    pub methodology: Option<Methodology>,
    /// The information needed from each source and its volume (MK403 p.3.3, p.9–p.16).
    #[schemars(required)]
    pub data_scope: Option<DataScope>,
    /// Personal-data types processed, from a closed vocabulary (MK403 p.3.5). Must cover every
    /// type the requested fields carry.
    #[serde(default)]
    pub personal_data_types: Vec<PersonalDataType>,
    /// The study's phases and their deadlines, in order (MK403 p.3.4).
    #[schemars(required)]
    pub phases: Option<Vec<Phase>>,
    /// Planned publication of the results; the Prison Administration notice is due no later than
    /// 10 working days before it (MK403 p.8, p.22.7).
    #[serde(default)]
    pub publication: Option<Publication>,
    /// Whether and how the data is anonymised before analysis and release (MK403 p.7, p.20, p.24, p.27).
    #[schemars(required)]
    pub anonymisation: Option<Anonymisation>,
    /// The external researcher who carries out the study — whether they initiated it (then the
    /// p.4 items are required) or the Service commissioned it (p.30.1: "plan or procurement
    /// offer"): justification, team, programme, ethics review, contract, non-disclosure
    /// declarations and security measures (MK403 p.4, p.5, p.28–35).
    #[serde(default)]
    pub external: Option<ExternalStudy>,
    /// The Service's authorised persons for this study: who may receive its information and who
    /// may access the Service IS and identifying information (MK403 p.21, p.25.1–25.3).
    #[serde(default)]
    pub authorised_persons: Vec<AuthorisedPerson>,
    /// Recidivism follow-ups from the Punishment Register (MK403 p.19–20).
    #[serde(default)]
    pub follow_up: Option<FollowUp>,
    /// Direct contact with data subjects, only with their consent (MK403 p.31–32).
    #[serde(default)]
    pub direct_contact: Option<DirectContact>,
    /// How long data is kept (MK403 p.26, p.27, p.34, p.35).
    #[schemars(required)]
    pub retention: Option<Retention>,
}

/// The spec format version (MK403 p.3: the application's format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SpecVersion(pub u32);

impl<'de> Deserialize<'de> for SpecVersion {
    /// Accepts `1` and `1.0` alike, as JSON Schema does.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = f64::deserialize(d)?;
        if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
            Ok(SpecVersion(n as u32))
        } else {
            Err(serde::de::Error::custom(
                "the spec version is a whole number",
            ))
        }
    }
}

impl JsonSchema for SpecVersion {
    fn schema_name() -> Cow<'static, str> {
        "SpecVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "enum": [1],
            "description": "Version of the spec format; always 1 (MK403 p.3: the study application)."
        })
    }
}

/// Who initiates the study (MK403 p.2, p.4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Initiator {
    /// The Service itself, or an external researcher who is a natural or a legal person (MK403 p.2, p.4).
    pub kind: InitiatorKind,
    /// Name of the initiating unit, person or organisation (MK403 p.4).
    pub name: String,
}

/// Who initiates a study (MK403 p.2, p.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InitiatorKind {
    /// The State Probation Service; its service researchers do the study (MK403 p.2).
    Service,
    /// An external researcher who is a natural person (MK403 p.4).
    ExternalNaturalPerson,
    /// An external researcher that is a legal person, e.g. a university (MK403 p.4).
    ExternalLegalPerson,
}

impl Sample {
    /// The inclusion criteria (MK403 p.3.2).
    pub fn inclusion_criteria(&self) -> &[String] {
        self.inclusion_criteria.as_deref().unwrap_or_default()
    }
}

impl ExternalStudy {
    /// The team (MK403 p.4.2).
    pub fn team(&self) -> &[TeamMember] {
        self.team.as_deref().unwrap_or_default()
    }
}

impl InitiatorKind {
    pub fn is_external(self) -> bool {
        !matches!(self, InitiatorKind::Service)
    }
}

/// Methodology (MK403 p.3.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Methodology {
    /// The study design. Only a longitudinal study follows subjects over time and may request
    /// recidivism follow-ups (MK403 p.3.2, p.19).
    pub design: StudyDesign,
    /// The methodology in prose: methods of analysis, variables, comparison groups (MK403 p.3.2).
    #[schemars(required)]
    pub description: Option<String>,
    /// The planned sample (MK403 p.3.2).
    #[schemars(required)]
    pub sample: Option<Sample>,
    /// The planned methods and procedures of acquiring the information (MK403 p.3.2).
    #[schemars(required)]
    pub acquisition: Option<Acquisition>,
}

/// Study design (MK403 p.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StudyDesign {
    /// Follows the same subjects over time, e.g. a recidivism cohort (MK403 p.3.2, p.19).
    Longitudinal,
    /// One point in time (MK403 p.3.2).
    CrossSectional,
    /// Questionnaires or interviews with data subjects (MK403 p.3.2, p.31).
    Survey,
    /// Register data combined with a survey or interviews at one point in time (MK403 p.3.2).
    MixedMethods,
}

/// The planned sample (MK403 p.3.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The population the sample is drawn from (MK403 p.3.2).
    #[schemars(required)]
    pub population: Option<String>,
    /// Who is included (MK403 p.3.2).
    #[schemars(required)]
    pub inclusion_criteria: Option<Vec<String>>,
    /// Who is excluded, if anyone (MK403 p.3.2).
    #[serde(default)]
    pub exclusion_criteria: Vec<String>,
    /// The period the sample covers (MK403 p.3.2).
    #[schemars(required)]
    pub period: Option<Period>,
    /// Expected number of subjects (MK403 p.3.2).
    #[schemars(required, range(min = 1))]
    pub expected_size: Option<Whole<u64>>,
}

/// A closed range of dates (MK403 p.3.2, p.3.3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// First day (MK403 p.3.3: the volume of information).
    pub from: Date,
    /// Last day (MK403 p.3.3: the volume of information).
    pub to: Date,
}

/// Acquisition methods and procedures (MK403 p.3.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acquisition {
    /// The planned acquisition methods (MK403 p.3.2).
    #[schemars(required)]
    pub methods: Option<String>,
    /// The planned acquisition procedures (MK403 p.3.2).
    #[schemars(required)]
    pub procedures: Option<String>,
}

/// The data scope per source (MK403 p.3.3, p.9).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataScope {
    /// The Service's own information system (MK403 p.9, p.17.1, p.22.1).
    #[serde(default)]
    pub service_is: Option<ServiceIsScope>,
    /// The Punishment Register, through the Interior Ministry's Information Centre (MK403 p.11–13).
    #[serde(default)]
    pub information_centre: Option<InformationCentreScope>,
    /// The Prisoners' IS of the Prison Administration (MK403 p.11, p.14–16).
    #[serde(default)]
    pub prison_administration: Option<PrisonAdministrationScope>,
    /// Automated quality checks and supplementation through other institutions' systems
    /// (MK403 p.23); the Service anonymises after them, deleting the identifiers those systems
    /// assign (MK403 p.24).
    #[serde(default)]
    pub other_systems: Vec<OtherSystem>,
}

/// An exchange with another institution's system (MK403 p.23).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtherSystem {
    /// The institution and its system, e.g. "Office of Citizenship and Migration Affairs, Population Register" (MK403 p.23).
    pub system: String,
    /// A quality check of the study data, or supplementing it (MK403 p.23.1, p.23.2).
    pub operation: OtherSystemOperation,
    /// What is checked or added and why the study needs it (MK403 p.3.3, p.23).
    #[schemars(required)]
    pub description: Option<String>,
}

/// What an exchange with another system does (MK403 p.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtherSystemOperation {
    /// Checks the quality of the study data (MK403 p.23.1).
    QualityCheck,
    /// Supplements the study data (MK403 p.23.2).
    Supplement,
}

/// How the Service IS data is extracted (MK403 p.10, p.22.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceIsExtraction {
    /// Extracted by the system (MK403 p.10).
    Automated,
    /// Extracted manually by a service researcher where automation is not possible (MK403 p.22.1).
    ManualExtraction,
}

/// How information is exchanged with another institution (MK403 p.10, p.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exchange {
    /// Automated exchange between systems (MK403 p.10, p.14.1).
    Automated,
    /// Secure electronic means, where automation is not possible (MK403 p.10, p.12.3, p.14.2).
    SecureElectronic,
}

/// How much information is requested (MK403 p.3.3, p.12.3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The period the requested information covers (MK403 p.3.3).
    pub period: Period,
    /// Expected number of records (MK403 p.3.3, p.12.3).
    #[schemars(range(min = 1))]
    pub expected_records: Whole<u64>,
}

/// Service IS scope (MK403 p.9, p.17.1, p.22.1).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceIsScope {
    /// Automated extraction or manual extraction by a service researcher (MK403 p.10, p.22.1).
    pub extraction: ServiceIsExtraction,
    /// The volume of the information (MK403 p.3.3).
    pub volume: Volume,
    /// The Service IS fields requested, each with why the study needs it (MK403 p.3.3).
    pub fields: ServiceIsFields,
}

/// Information Centre scope (MK403 p.11–13).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InformationCentreScope {
    /// Automated, or secure electronic where automation is not possible (MK403 p.10).
    pub exchange: Exchange,
    /// Why automated exchange is not possible, when secure electronic exchange is used (MK403 p.10).
    #[serde(default)]
    pub automation_not_possible_because: Option<String>,
    /// The same reason in Latvian, as the Latvian part of the request letter quotes it
    /// (MK403 p.10, p.11); without it the letter quotes the English text, marked as such.
    #[serde(default)]
    pub automation_not_possible_because_lv: Option<String>,
    /// The volume of the information (MK403 p.3.3, p.12.3).
    pub volume: Volume,
    /// The p.13 fields requested, each with why the study needs it (MK403 p.3.3, p.13).
    pub fields: InformationCentreFields,
}

/// Prison Administration scope (MK403 p.11, p.14–16).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrisonAdministrationScope {
    /// Automated where the integration allows, otherwise secure electronic (MK403 p.14).
    pub exchange: Exchange,
    /// Why automated exchange is not possible, when secure electronic exchange is used (MK403 p.10, p.14.2).
    #[serde(default)]
    pub automation_not_possible_because: Option<String>,
    /// The same reason in Latvian, as the Latvian part of the request letter quotes it
    /// (MK403 p.10, p.11); without it the letter quotes the English text, marked as such.
    #[serde(default)]
    pub automation_not_possible_because_lv: Option<String>,
    /// The agreement that secure electronic exchange requires (MK403 p.14.2).
    #[serde(default)]
    pub agreement: Option<PrisonAdministrationAgreement>,
    /// Information about court rulings that applied detention or imprisonment (MK403 p.14, p.15).
    #[serde(default)]
    pub rulings: Option<PrisonRulingsScope>,
    /// Resocialisation information (MK403 p.16).
    #[serde(default)]
    pub resocialisation: Option<ResocialisationScope>,
}

/// The p.14.2 agreement with the Prison Administration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrisonAdministrationAgreement {
    /// The date the agreement was reached (MK403 p.14.2).
    #[serde(default)]
    pub agreed_on: Option<Date>,
    /// The agreed data volume (MK403 p.14.2).
    #[schemars(required)]
    pub volume: Option<String>,
    /// The agreed availability of the data (MK403 p.14.2).
    #[schemars(required)]
    pub availability: Option<String>,
    /// The agreed delivery deadlines (MK403 p.14.2).
    #[schemars(required)]
    pub delivery_deadlines: Option<String>,
    /// The agreed volume in Latvian, as the Latvian part of the request letter quotes it
    /// (MK403 p.14.2); without it the letter quotes `volume`, marked as English.
    #[serde(default)]
    pub volume_lv: Option<String>,
    /// The agreed availability in Latvian, for the request letter (MK403 p.14.2).
    #[serde(default)]
    pub availability_lv: Option<String>,
    /// The agreed delivery deadlines in Latvian, for the request letter (MK403 p.14.2).
    #[serde(default)]
    pub delivery_deadlines_lv: Option<String>,
    /// Whether the Prison Administration's resources were assessed (MK403 p.14.2).
    #[schemars(required)]
    pub resources_assessed: Option<bool>,
}

/// Prison Administration rulings scope (MK403 p.15).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrisonRulingsScope {
    /// The volume of the information (MK403 p.3.3, p.14.2).
    pub volume: Volume,
    /// The p.15 fields requested, each with why the study needs it (MK403 p.3.3, p.15).
    pub fields: PrisonRulingsFields,
}

/// Prison Administration resocialisation scope (MK403 p.16).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResocialisationScope {
    /// The volume of the information (MK403 p.3.3, p.14.2).
    pub volume: Volume,
    /// The p.16 fields requested, each with why the study needs it (MK403 p.3.3, p.16).
    pub fields: ResocialisationFields,
}

/// Requested fields of one source: catalogue key → why it is needed (MK403 p.3.3).
pub trait FieldRequests {
    const SOURCE: Source;
    fn entries(&self) -> &IndexMap<String, Option<String>>;
}

macro_rules! field_requests {
    ($name:ident, $source:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub IndexMap<String, Option<String>>);

        impl FieldRequests for $name {
            const SOURCE: Source = $source;
            fn entries(&self) -> &IndexMap<String, Option<String>> {
                &self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                fields_schema($source)
            }
        }
    };
}

field_requests!(
    ServiceIsFields,
    Source::ServiceIs,
    "Service IS fields requested."
);
field_requests!(
    InformationCentreFields,
    Source::InformationCentre,
    "Information Centre (p.13) fields requested."
);
field_requests!(
    PrisonRulingsFields,
    Source::PrisonRulings,
    "Prison Administration ruling (p.15) fields requested."
);
field_requests!(
    ResocialisationFields,
    Source::PrisonResocialisation,
    "Prison Administration resocialisation (p.16) fields requested."
);

/// One property per catalogue key of the source, so editors complete keys and show what
/// each means; anything else is refused.
fn fields_schema(source: Source) -> Schema {
    let mut properties = serde_json::Map::new();
    for field in catalogue::CATALOGUE.iter().filter(|f| f.source == source) {
        let point = field.point.map_or_else(
            || format!("MK403 {}: Service IS field", source.point()),
            |p| format!("MK403 {p}"),
        );
        properties.insert(
            field.key.to_owned(),
            serde_json::json!({
                "type": "string",
                "description": format!("{} ({point}). The value says why the study needs it (MK403 p.3.3).", field.meaning),
            }),
        );
    }
    json_schema!({
        "type": "object",
        "description": format!(
            "Fields requested from {}: catalogue key → why the study needs it (MK403 p.3.3, {}).",
            source.title(),
            source.point()
        ),
        "properties": properties,
        "additionalProperties": false,
        "minProperties": 1,
    })
}

/// A phase of the study (MK403 p.3.4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Identifier of the phase, unique in the spec (MK403 p.3.4).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// What happens in the phase (MK403 p.3.4).
    #[schemars(required)]
    pub title: Option<String>,
    /// When the phase starts (MK403 p.3.4).
    #[schemars(required)]
    pub start: Option<Date>,
    /// The phase's deadline (MK403 p.3.4).
    #[schemars(required)]
    pub deadline: Option<Date>,
    /// The stages of the study's plan whose steps this phase's deadline bounds; the plan gives
    /// each step the latest deadline of the phases covering its stage (MK403 p.3.4).
    #[serde(default)]
    pub covers: Vec<Stage>,
}

/// A stage of the study's plan, for `phases[].covers` (MK403 p.3.4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Extraction from the Service IS and the requests to the Information Centre and the Prison Administration (MK403 p.10–16, p.22.1).
    Acquisition,
    /// Merge, linkage and the deletion of identifiers right after it (MK403 p.17).
    Linkage,
    /// The service researcher's quality check (MK403 p.18, p.22.2).
    QualityCheck,
    /// Quality checks and supplementation through other institutions' systems (MK403 p.23).
    Supplementation,
    /// Anonymisation of the study dataset (MK403 p.7, p.24).
    Anonymisation,
    /// The recidivism follow-ups (MK403 p.19–20).
    FollowUp,
    /// Direct contact with consenting data subjects (MK403 p.31–32).
    Contact,
    /// Transfer of anonymised data to the external researcher (MK403 p.30).
    Transfer,
    /// Analysis (MK403 p.22.5).
    Analysis,
    /// The report and recommendations (MK403 p.22.6).
    Report,
    /// Presentation and dissemination of the results (MK403 p.22.7).
    Presentation,
}

impl Stage {
    /// The spelling used in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Acquisition => "acquisition",
            Stage::Linkage => "linkage",
            Stage::QualityCheck => "quality_check",
            Stage::Supplementation => "supplementation",
            Stage::Anonymisation => "anonymisation",
            Stage::FollowUp => "follow_up",
            Stage::Contact => "contact",
            Stage::Transfer => "transfer",
            Stage::Analysis => "analysis",
            Stage::Report => "report",
            Stage::Presentation => "presentation",
        }
    }
}

/// Planned publication (MK403 p.8, p.22.7).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    /// Planned publication date of the results (MK403 p.8, p.22.7).
    #[serde(default)]
    pub planned_date: Option<Date>,
    /// Where or how the results are presented and disseminated (MK403 p.22.7).
    #[serde(default)]
    pub form: Option<String>,
}

/// Anonymisation (MK403 p.7, p.20, p.24, p.27).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Anonymisation {
    /// Whether the study's purpose can be reached with anonymised information; if so the
    /// Service anonymises immediately after verification and linkage (MK403 p.7).
    #[schemars(required)]
    pub purpose_reachable_with_anonymised_data: Option<bool>,
    /// Why identifying information is needed, when the purpose cannot be reached with
    /// anonymised information (MK403 p.7, p.21).
    #[serde(default)]
    pub why_identifying_data_is_needed: Option<String>,
    /// What anonymisation does with dates (MK403 p.7: dates are quasi-identifiers).
    pub date_policy: DatePolicy,
    /// Service IS date field the dates are counted from, when `date_policy` is
    /// `relative_to_anchor` (MK403 p.7, p.19).
    #[serde(default)]
    pub anchor_field: Option<String>,
    /// Requested fields that together could single a person out; k-anonymity is checked over
    /// them before any release (MK403 p.7).
    #[serde(default)]
    pub quasi_identifiers: Vec<String>,
    /// Every combination of quasi-identifier values must occur at least k times before a
    /// release (MK403 p.7).
    #[schemars(range(min = 2))]
    pub k: Whole<u32>,
    /// Whether records in classes smaller than k may be suppressed (and reported) instead of
    /// blocking the release (MK403 p.7).
    #[serde(default)]
    pub suppression_allowed: bool,
    /// Whole-number fields released in bands of this width instead of exactly, e.g.
    /// `birth_year: 5` gives `1985–1989`; coarser quasi-identifiers make classes of k possible
    /// (MK403 p.7).
    #[serde(default)]
    pub bands: std::collections::BTreeMap<String, Whole<u32>>,
}

/// What anonymisation does with dates (MK403 p.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatePolicy {
    /// Dates kept as they are (MK403 p.7: only when k-anonymity still holds).
    Keep,
    /// Dates coarsened to year and month (MK403 p.7).
    Month,
    /// Dates turned into days relative to the subject's anchor event (MK403 p.7, p.19).
    RelativeToAnchor,
}

/// External researcher's part of the application (MK403 p.4, p.5, p.30, p.33).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalStudy {
    /// Why the study is needed; required when the external researcher initiates the study (MK403 p.4.1).
    #[serde(default)]
    pub justification: Option<String>,
    /// Expected benefit for the Service's effectiveness or for public safety; required when the
    /// external researcher initiates the study (MK403 p.4.1).
    #[serde(default)]
    pub expected_benefit: Option<String>,
    /// Persons involved and their roles, naming who processes personal data (MK403 p.4.2, p.33.1).
    #[schemars(required)]
    pub team: Option<Vec<TeamMember>>,
    /// The state research programme, if the study is part of one (MK403 p.4.3).
    #[serde(default)]
    pub state_research_programme: Option<StateResearchProgramme>,
    /// The research ethics committee's review, if there was one (MK403 p.4.4).
    #[serde(default)]
    pub ethics_review: Option<EthicsReview>,
    /// The contract between the Service and the external researcher (MK403 p.5, p.29, p.30.2).
    #[schemars(required)]
    pub contract: Option<Contract>,
    /// Signed non-disclosure declarations for restricted information (MK403 p.30.2).
    #[serde(default)]
    pub non_disclosure_declarations: Vec<NonDisclosureDeclaration>,
    /// The external researcher's security measures (MK403 p.33.3–33.5).
    #[schemars(required)]
    pub security_measures: Option<SecurityMeasures>,
}

/// A member of the external research team (MK403 p.4.2, p.33.1).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    /// Name of the person (MK403 p.4.2).
    pub name: String,
    /// The person's login in studyflow: the identity provider's `preferred_username`, or a
    /// local account's login (`studyflow user add`). The person acts on the study only when
    /// signed in as this login; a new binding is an amendment. One login per person
    /// (MK403 p.25.1, p.33.1; rule SF142).
    #[schemars(required, regex(pattern = r"^[a-z0-9][a-z0-9._@-]{0,63}$"))]
    #[serde(default)]
    pub login: Option<String>,
    /// The person's role in the study (MK403 p.4.2).
    #[schemars(required)]
    pub role: Option<String>,
    /// Whether this person processes personal data (MK403 p.4.2, p.30.2).
    #[serde(default)]
    pub processes_personal_data: bool,
    /// Whether this person is an authorised person designated by the external researcher and
    /// agreed with the Service (MK403 p.25.1, p.33.1).
    #[serde(default)]
    pub authorised_person: bool,
}

impl TeamMember {
    /// Why this person needs a non-disclosure declaration before information is handed over
    /// (MK403 p.30.2), if they do: they process personal data, or they receive the study's
    /// restricted-access information as an authorised person (p.33.1). The one rule SF134 and
    /// `studyflow contract` share.
    pub fn needs_declaration(&self) -> Option<&'static str> {
        self.needs_declaration_in_both().map(|(en, _)| en)
    }

    /// [`TeamMember::needs_declaration`] in English and in Latvian.
    pub fn needs_declaration_in_both(&self) -> Option<(&'static str, &'static str)> {
        if self.processes_personal_data {
            Some(("processes personal data", "apstrādā personas datus"))
        } else if self.authorised_person {
            Some((
                "receives the study's restricted-access information as an authorised person",
                "kā pilnvarotā persona saņem pētījuma ierobežotas pieejamības informāciju",
            ))
        } else {
            None
        }
    }
}

/// State research programme (MK403 p.4.3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateResearchProgramme {
    /// Name of the programme (MK403 p.4.3).
    #[schemars(required)]
    pub programme: Option<String>,
    /// Name of the project (MK403 p.4.3).
    #[schemars(required)]
    pub project: Option<String>,
    /// Registration number of the project (MK403 p.4.3).
    #[schemars(required)]
    pub registration_number: Option<String>,
}

/// Research ethics committee review (MK403 p.4.4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EthicsReview {
    /// Name of the research ethics committee (MK403 p.4.4).
    #[schemars(required)]
    pub committee: Option<String>,
    /// The committee's permission (MK403 p.4.4).
    #[schemars(required)]
    pub permission: Option<String>,
    /// Number of the permission (MK403 p.4.4).
    #[schemars(required)]
    pub permission_number: Option<String>,
    /// Date the permission was granted (MK403 p.4.4).
    #[serde(default)]
    pub granted_on: Option<Date>,
}

/// Contract with the external researcher (MK403 p.5, p.30.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Whether the contract is only planned or already concluded; no information is
    /// transferred before it is concluded (MK403 p.5, p.30.2).
    pub status: ContractStatus,
    /// Contract number, once concluded (MK403 p.5).
    #[serde(default)]
    pub number: Option<String>,
    /// Date concluded (MK403 p.5, p.30.2).
    #[serde(default)]
    pub concluded_on: Option<Date>,
    /// End of the contract term; anonymised data held by the external researcher is kept no
    /// longer (MK403 p.35).
    #[serde(default)]
    pub term_ends_on: Option<Date>,
}

/// Contract status (MK403 p.5, p.30.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    /// To be concluded after approval and before any transfer (MK403 p.30).
    Planned,
    /// Concluded (MK403 p.5, p.30.2).
    Concluded,
}

/// A non-disclosure declaration (MK403 p.30.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NonDisclosureDeclaration {
    /// Who signs it: a team member's name (MK403 p.30.2).
    pub signatory: String,
    /// When it was signed; absent while it is still to be signed before any transfer (MK403 p.30.2).
    #[serde(default)]
    pub signed_on: Option<Date>,
}

/// External researcher's security measures (MK403 p.33.3–33.5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityMeasures {
    /// How devices are protected (MK403 p.33.3).
    #[schemars(required)]
    pub device_protection: Option<DeviceProtection>,
    /// Whether antivirus software is installed and kept up to date (MK403 p.33.4).
    #[schemars(required)]
    pub antivirus_up_to_date: Option<bool>,
    /// The network security tools used (MK403 p.33.5).
    #[schemars(required)]
    pub network_security: Option<String>,
}

/// Device protection (MK403 p.33.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceProtection {
    /// Passwords (MK403 p.33.3).
    Password,
    /// Multi-factor authentication (MK403 p.33.3).
    MultiFactor,
}

/// An authorised person of the Service (MK403 p.25.1–25.2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorisedPerson {
    /// Name (MK403 p.25.1).
    pub name: String,
    /// The person's login in studyflow: the identity provider's `preferred_username`, or a
    /// local account's login (`studyflow user add`). The person acts on the study only when
    /// signed in as this login; a new binding is an amendment. One login per person
    /// (MK403 p.25.1, p.33.1; rule SF142).
    #[schemars(required, regex(pattern = r"^[a-z0-9][a-z0-9._@-]{0,63}$"))]
    #[serde(default)]
    pub login: Option<String>,
    /// The person's role (MK403 p.21, p.25.2).
    pub role: ServiceRole,
    /// What the person may access (MK403 p.25.1–25.3).
    pub access: Vec<Access>,
    /// Date of the designation (MK403 p.25.1–25.2).
    #[serde(default)]
    pub designated_on: Option<Date>,
}

/// Roles in the Service (MK403 p.21, p.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceRole {
    /// A Service employee doing research, who processes the identifying data in the Service (MK403 p.21, p.22).
    ServiceResearcher,
    /// Approves study applications (MK403 p.3, p.30.1).
    Approver,
    /// Supervises an external study (MK403 p.25.5, p.28).
    Supervisor,
}

/// Access an authorised person has (MK403 p.25.1–25.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The Service IS (MK403 p.25.2).
    ServiceIs,
    /// Identifying information: personal data and proceeding/ruling identifiers (MK403 p.21, p.25.2).
    IdentifyingData,
    /// Anonymised study data (MK403 p.25.1).
    AnonymisedData,
}

/// Recidivism follow-ups (MK403 p.19–20).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// The event whose start and end the waves are counted from (MK403 p.19).
    pub anchor_event: AnchorEvent,
    /// Which of the six follow-ups of MK403 p.19 are requested.
    pub waves: Vec<Wave>,
    /// The p.13 fields requested at each wave (MK403 p.19).
    pub fields: Vec<FollowUpField>,
    /// Follow-up exchange is automated (MK403 p.20).
    #[serde(default = "automated")]
    pub exchange: Exchange,
}

fn automated() -> Exchange {
    Exchange::Automated
}

/// Anchor event of the follow-ups (MK403 p.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnchorEvent {
    /// A compulsory measure of an educational nature (MK403 p.19).
    CompulsoryEducationalMeasure,
    /// Sentence execution in the Service (MK403 p.19).
    SentenceExecution,
    /// A mediation (settlement) process (MK403 p.19).
    Mediation,
}

impl AnchorEvent {
    /// The Service IS fields holding the event's start and end.
    pub fn date_fields(self) -> [&'static str; 2] {
        match self {
            AnchorEvent::CompulsoryEducationalMeasure => [
                "educational_measure_start_date",
                "educational_measure_end_date",
            ],
            AnchorEvent::SentenceExecution => ["supervision_start_date", "supervision_end_date"],
            AnchorEvent::Mediation => ["mediation_start_date", "mediation_end_date"],
        }
    }
}

/// A follow-up wave name; the schema lists the six of MK403 p.19, and rule SF150 explains any other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Wave(pub String);

/// One of the six follow-ups of MK403 p.19.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpWave {
    /// The name a spec uses, e.g. `3y_after_end`.
    pub name: &'static str,
    /// Its sub-point, e.g. `p.19.4`.
    pub point: &'static str,
    pub years: i16,
    /// Counted from the end of the anchor event, not its start.
    pub from_end: bool,
}

impl FollowUpWave {
    const fn new(name: &'static str, point: &'static str, years: i16, from_end: bool) -> Self {
        FollowUpWave {
            name,
            point,
            years,
            from_end,
        }
    }

    /// What it is, citing its point.
    pub fn description(&self) -> String {
        format!(
            "{} year{} after the {} of the anchor event (MK403 {})",
            self.years,
            if self.years == 1 { "" } else { "s" },
            if self.from_end { "end" } else { "start" },
            self.point
        )
    }

    /// [`FollowUpWave::description`] in Latvian, in the words of p.19 (`3 gadus pēc tam, kad
    /// uzsākta soda izpilde, piespiedu līdzekļa piemērošana vai izlīguma process (MK403
    /// p.19.3)`).
    pub fn description_lv(&self) -> String {
        self.after_lv(&format!(
            "{} soda izpilde, piespiedu līdzekļa piemērošana vai izlīguma process",
            if self.from_end {
                "pabeigta"
            } else {
                "uzsākta"
            }
        ))
    }

    /// [`FollowUpWave::description_lv`] for one anchor event, in the words of p.19 (`3 gadus
    /// pēc tam, kad datu subjektam ir uzsākta soda izpilde dienestā (MK403 19.3. p.)`).
    pub fn description_lv_of(&self, anchor: AnchorEvent) -> String {
        let (started, ended, event) = match anchor {
            AnchorEvent::CompulsoryEducationalMeasure => (
                "uzsākta",
                "pabeigta",
                "audzinoša rakstura piespiedu līdzekļa piemērošana",
            ),
            AnchorEvent::SentenceExecution => ("uzsākta", "pabeigta", "soda izpilde dienestā"),
            AnchorEvent::Mediation => ("uzsākts", "pabeigts", "izlīguma process"),
        };
        self.after_lv(&format!(
            "datu subjektam ir {} {event}",
            if self.from_end { ended } else { started }
        ))
    }

    /// `N gadu(s) pēc tam, kad {what} (MK403 19.x. p.)`.
    fn after_lv(&self, what: &str) -> String {
        format!(
            "{} {} pēc tam, kad {what} (MK403 {}. p.)",
            self.years,
            if self.years % 10 == 1 && self.years % 100 != 11 {
                "gadu"
            } else {
                "gadus"
            },
            self.point.trim_start_matches("p.")
        )
    }
}

/// The six follow-ups of MK403 p.19 (19.1–19.6), in the regulation's order.
pub const WAVES: [FollowUpWave; 6] = [
    FollowUpWave::new("1y_after_start", "p.19.1", 1, false),
    FollowUpWave::new("1y_after_end", "p.19.2", 1, true),
    FollowUpWave::new("3y_after_start", "p.19.3", 3, false),
    FollowUpWave::new("3y_after_end", "p.19.4", 3, true),
    FollowUpWave::new("5y_after_start", "p.19.5", 5, false),
    FollowUpWave::new("5y_after_end", "p.19.6", 5, true),
];

impl JsonSchema for Wave {
    fn schema_name() -> Cow<'static, str> {
        "Wave".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A follow-up of MK403 p.19: 1, 3 or 5 years after the start or the end of the anchor event.",
            "enum": WAVES.iter().map(|w| w.name).collect::<Vec<_>>(),
            "enumDescriptions": WAVES.iter().map(FollowUpWave::description).collect::<Vec<_>>(),
        })
    }
}

/// A p.13 field requested at a follow-up; the schema lists the Information Centre keys, and
/// rule SF150 explains any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FollowUpField(pub String);

impl JsonSchema for FollowUpField {
    fn schema_name() -> Cow<'static, str> {
        "FollowUpField".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let fields: Vec<_> = catalogue::CATALOGUE
            .iter()
            .filter(|f| f.source == Source::InformationCentre)
            .collect();
        json_schema!({
            "type": "string",
            "description": "A Punishment Register field requested at each follow-up (MK403 p.13, p.19).",
            "enum": fields.iter().map(|f| f.key).collect::<Vec<_>>(),
            "enumDescriptions": fields.iter().map(|f| format!("{} (MK403 {})", f.meaning, f.point.unwrap_or("p.13"))).collect::<Vec<_>>(),
        })
    }
}

/// Direct contact with data subjects (MK403 p.31–32).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectContact {
    /// How the data subjects' (or their legal representatives') consent is obtained; contact
    /// happens only with consent (MK403 p.31).
    #[schemars(required)]
    pub consent: Option<ConsentForm>,
    /// The specific target group that must be surveyed (MK403 p.31.1).
    #[schemars(required)]
    pub target_group: Option<String>,
    /// Why there is no alternative way to get the information (MK403 p.31.2).
    #[schemars(required)]
    pub why_no_alternative: Option<String>,
    /// The risk to the data subjects weighed against the public-interest benefit (MK403 p.31.3).
    #[schemars(required)]
    pub risk_assessment: Option<String>,
    /// The contact fields transferred: first name, surname, e-mail or phone, nothing else (MK403 p.32).
    pub fields: Vec<ContactField>,
}

/// How consent is obtained (MK403 p.31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentForm {
    /// Signed on paper (MK403 p.31).
    Written,
    /// Given electronically and recorded (MK403 p.31).
    Electronic,
}

/// A contact field; the schema lists the four of MK403 p.32, and rule SF160 explains any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactField(pub String);

impl JsonSchema for ContactField {
    fn schema_name() -> Cow<'static, str> {
        "ContactField".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A contact field the Service may transfer for a consented contact (MK403 p.32).",
            "enum": catalogue::CONTACT_FIELDS,
        })
    }
}

/// Retention (MK403 p.26, p.27, p.34, p.35).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// How long the Service keeps the anonymised information: permanently, or for a period the
    /// Service sets — until the study ends or until a date (MK403 p.27).
    #[schemars(required)]
    pub anonymised_data: Option<RetentionTerm>,
    /// Latest date by which everything identifying is deleted; never after the study ends
    /// (MK403 p.26, p.34). Absent: at completion or termination.
    #[serde(default)]
    pub identifying_data_deleted_by: Option<Date>,
    /// How long an external researcher keeps the anonymised information and what they created:
    /// until the study ends, or until the contract's term (MK403 p.35).
    #[serde(default)]
    pub external_researcher_copy: Option<RetentionTerm>,
}

/// A retention term (MK403 p.27, p.35).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionTerm {
    /// Permanently, until the study ends, or until a date (MK403 p.27, p.35).
    pub keep: Keep,
    /// The date, when `keep` is `until_date` (MK403 p.27, p.35).
    #[serde(default)]
    pub until: Option<Date>,
}

/// How long something is kept (MK403 p.27, p.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Permanently (MK403 p.27: anonymised information only).
    Permanent,
    /// Until the study ends (MK403 p.35).
    UntilStudyEnd,
    /// Until the date in `until` (MK403 p.27, p.35).
    UntilDate,
}

impl Spec {
    /// The phases, in the order written (MK403 p.3.4).
    pub fn phases(&self) -> &[Phase] {
        self.phases.as_deref().unwrap_or_default()
    }

    /// Whether an external researcher initiates the study (MK403 p.4).
    pub fn is_external(&self) -> bool {
        self.initiator.kind.is_external()
    }

    /// Whether personal data reaches the external researcher: only the contact details of a
    /// consented contact (MK403 p.32); studyflow transfers nothing else identifying (SF140).
    pub fn personal_data_reaches_external_researcher(&self) -> bool {
        self.external.is_some() && self.direct_contact.is_some()
    }

    /// The last phase deadline: the planned end of the study (MK403 p.3.4, p.26).
    pub fn study_end(&self) -> Option<Date> {
        self.phases().iter().filter_map(|p| p.deadline).max()
    }

    /// Every requested field with its source and its pointer in the spec.
    pub fn requested_fields(&self) -> Vec<RequestedField<'_>> {
        let mut out = Vec::new();
        let Some(scope) = &self.data_scope else {
            return out;
        };
        fn push<'a, F: FieldRequests>(
            out: &mut Vec<RequestedField<'a>>,
            base: &'static str,
            fields: &'a F,
        ) {
            for (key, why) in fields.entries() {
                out.push(RequestedField {
                    source: F::SOURCE,
                    key,
                    why: why.as_deref(),
                    base,
                });
            }
        }
        if let Some(s) = &scope.service_is {
            push(&mut out, "/data_scope/service_is", &s.fields);
        }
        if let Some(s) = &scope.information_centre {
            push(&mut out, "/data_scope/information_centre", &s.fields);
        }
        if let Some(pa) = &scope.prison_administration {
            if let Some(r) = &pa.rulings {
                push(
                    &mut out,
                    "/data_scope/prison_administration/rulings",
                    &r.fields,
                );
            }
            if let Some(r) = &pa.resocialisation {
                push(
                    &mut out,
                    "/data_scope/prison_administration/resocialisation",
                    &r.fields,
                );
            }
        }
        out
    }

    /// Whether information is requested from the Prison Administration (MK403 p.8, p.14).
    pub fn uses_prison_administration(&self) -> bool {
        self.data_scope
            .as_ref()
            .and_then(|d| d.prison_administration.as_ref())
            .is_some_and(|pa| pa.rulings.is_some() || pa.resocialisation.is_some())
    }
}

/// A requested field as the rules see it.
#[derive(Debug, Clone)]
pub struct RequestedField<'a> {
    /// The source it is requested from (where it sits in the spec).
    pub source: Source,
    pub key: &'a str,
    pub why: Option<&'a str>,
    /// Pointer of the source's section, e.g. `/data_scope/service_is`.
    base: &'static str,
}

impl RequestedField<'_> {
    /// The field's JSON pointer, for a finding about it.
    pub fn pointer(&self) -> String {
        crate::diagnostic::pointer_join(&format!("{}/fields", self.base), self.key)
    }
}

/// A person's name as the engine compares it: Unicode NFKC, invisible format characters
/// (category Cf, e.g. U+200B) dropped, lower case, no whitespace at the ends, each run of
/// whitespace one space. `Kalniņa` typed with a precomposed `ņ` and with `n` + a combining
/// cedilla is one person, and so are ` INESE  Kalniņa` and `Inese Kalniņa\u{200b}`: no one acts
/// under a look-alike of a name the spec gives another role, and a stray space locks no one out.
pub fn person_key(name: &str) -> String {
    use unicode_general_category::{GeneralCategory, get_general_category};
    use unicode_normalization::UnicodeNormalization;
    let folded: String = name
        .nfkc()
        .filter(|c| get_general_category(*c) != GeneralCategory::Format)
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether two names are the same person's ([`person_key`]); a blank name is no one's.
pub fn same_person(a: &str, b: &str) -> bool {
    let a = person_key(a);
    !a.is_empty() && a == person_key(b)
}

#[cfg(test)]
mod person_tests {
    use super::*;

    #[test]
    fn a_name_is_one_person_however_written() {
        assert!(same_person("Inese Kalniņa", " Inese  Kalnin\u{327}a "));
        assert!(same_person("Inese\tKalniņa", "Inese Kalniņa"));
        assert!(!same_person("Inese Kalniņa", "Inese Kalnina"));
        assert!(same_person("INESE KALNIŅA", "Inese Kalniņa\u{200b}"));
        assert!(
            same_person("Ｉnese Kalniņa", "Inese Kalniņa"),
            "a full-width letter"
        );
        assert!(!same_person("", ""));
        assert!(!same_person("  ", " "));
        assert_eq!(person_key(" Jānis  Ozols\n"), "jānis ozols");
    }
}
