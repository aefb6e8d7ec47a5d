//! What a plan is made of: steps, who performs them, what data they touch, when they run and
//! by when they are due.

use jiff::civil::Date;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use studyflow_spec::model::{AnchorEvent, Stage};

/// What a step does. The engine gives each kind its body; the checks read kinds to know which
/// steps transfer, anonymise, analyse or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The study application is approved (MK403 p.3, p.30.1).
    Approval,
    /// Contract, non-disclosure declarations and security measures recorded (MK403 p.5, p.30.2, p.33).
    ContractGate,
    /// Extraction from the Service IS (MK403 p.9, p.10, p.22.1).
    AcquireServiceIs,
    /// A request to the Information Centre or the Prison Administration (MK403 p.6, p.10–12, p.14).
    Request,
    /// The institution's answer, received and imported (MK403 p.13, p.15, p.16).
    Answer,
    /// Merge into one study dataset and linkage of each subject's records (MK403 p.17.1–17.2).
    MergeLink,
    /// Irreversible deletion of personal codes, proceeding/ruling numbers and case numbers (MK403 p.7, p.17.3, p.22.3–22.4).
    DeleteIdentifiers,
    /// The service researcher's quality check and corrections (MK403 p.18, p.22.2).
    QualityCheck,
    /// Automated quality check or supplementation through another institution's system (MK403 p.23).
    OtherSystem,
    /// Processing of the still identifiable data by service researchers, when the purpose
    /// cannot be reached with anonymised data (MK403 p.7, p.21).
    IdentifiableProcessing,
    /// Anonymisation of the study dataset (MK403 p.7, p.24).
    Anonymise,
    /// Consent and contact details of the subjects who agree to be contacted (MK403 p.31).
    ConsentCollection,
    /// The consented contact transfer: first name, surname, e-mail or phone (MK403 p.32).
    ContactTransfer,
    /// Contacting consenting subjects; their answers are recorded without contact details (MK403 p.31).
    Survey,
    /// Transfer of anonymised data to the external researcher (MK403 p.30).
    Transfer,
    /// Release of the anonymised analysis dataset to the study workspace of the Service's
    /// authorised researchers (MK403 p.7, p.22.5, p.24): after anonymisation and after each
    /// follow-up wave, for an internal study.
    Release,
    /// Analysis (MK403 p.22.5).
    Analysis,
    /// Report and recommendations (MK403 p.22.6).
    Report,
    /// Presentation and dissemination (MK403 p.22.7).
    Presentation,
    /// The notice of the results to the Prison Administration (MK403 p.8).
    PrisonAdministrationNotice,
    /// Publication of the results (MK403 p.8, p.22.7).
    Publication,
    /// A recidivism follow-up request for one subject (MK403 p.19).
    FollowUpRequest,
    /// The Information Centre's follow-up answer (MK403 p.13, p.19).
    FollowUpAnswer,
    /// Anonymisation of a follow-up answer before anything else touches it (MK403 p.20).
    FollowUpAnonymise,
    /// The anonymised answer joined to the study by pseudonym (MK403 p.20).
    FollowUpJoin,
    /// Destruction of everything identifying (MK403 p.26, p.34).
    DestroyIdentifying,
    /// Retention or deletion of the Service's anonymised data (MK403 p.27).
    AnonymisedRetention,
    /// The external researcher's deletion of their anonymised copy and what they created (MK403 p.35).
    ExternalCopyDeletion,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Approval => "approval",
            StepKind::ContractGate => "contract_gate",
            StepKind::AcquireServiceIs => "acquire_service_is",
            StepKind::Request => "request",
            StepKind::Answer => "answer",
            StepKind::MergeLink => "merge_link",
            StepKind::DeleteIdentifiers => "delete_identifiers",
            StepKind::QualityCheck => "quality_check",
            StepKind::OtherSystem => "other_system",
            StepKind::IdentifiableProcessing => "identifiable_processing",
            StepKind::Anonymise => "anonymise",
            StepKind::ConsentCollection => "consent_collection",
            StepKind::ContactTransfer => "contact_transfer",
            StepKind::Survey => "survey",
            StepKind::Transfer => "transfer",
            StepKind::Release => "release",
            StepKind::Analysis => "analysis",
            StepKind::Report => "report",
            StepKind::Presentation => "presentation",
            StepKind::PrisonAdministrationNotice => "prison_administration_notice",
            StepKind::Publication => "publication",
            StepKind::FollowUpRequest => "follow_up_request",
            StepKind::FollowUpAnswer => "follow_up_answer",
            StepKind::FollowUpAnonymise => "follow_up_anonymise",
            StepKind::FollowUpJoin => "follow_up_join",
            StepKind::DestroyIdentifying => "destroy_identifying",
            StepKind::AnonymisedRetention => "anonymised_retention",
            StepKind::ExternalCopyDeletion => "external_copy_deletion",
        }
    }

    /// Whether the step's output replaces what it read: what reaches it goes no further, only
    /// its own output does (anonymisation, deletion of identifiers, a survey whose answers are
    /// recorded without contact details).
    pub fn transforms(self) -> bool {
        matches!(
            self,
            StepKind::DeleteIdentifiers
                | StepKind::Anonymise
                | StepKind::FollowUpAnonymise
                | StepKind::Survey
                | StepKind::DestroyIdentifying
                | StepKind::AnonymisedRetention
                | StepKind::ExternalCopyDeletion
        )
    }

    /// Steps that analyse or release results: only anonymised data may reach them (MK403 p.7,
    /// p.20, p.22.5–22.7, p.24, p.30).
    pub fn uses_results(self) -> bool {
        matches!(
            self,
            StepKind::Analysis
                | StepKind::Report
                | StepKind::Presentation
                | StepKind::PrisonAdministrationNotice
                | StepKind::Publication
                | StepKind::Transfer
                | StepKind::Release
        )
    }

    /// Steps through which data legitimately leaves the Service for the external researcher.
    pub fn is_transfer(self) -> bool {
        matches!(self, StepKind::Transfer | StepKind::ContactTransfer)
    }
}

/// Who performs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// studyflow itself, automatically.
    Engine,
    /// A service researcher of the Service (MK403 p.21–22).
    ServiceResearcher,
    /// The Service's approver (MK403 p.3, p.30.1).
    Approver,
    /// The external researcher (MK403 p.28–35).
    ExternalResearcher,
    /// The Interior Ministry's Information Centre (MK403 p.11–13).
    InformationCentre,
    /// The Prison Administration (MK403 p.14–16).
    PrisonAdministration,
}

impl Actor {
    pub const ALL: [Actor; 6] = [
        Actor::Engine,
        Actor::ServiceResearcher,
        Actor::Approver,
        Actor::ExternalResearcher,
        Actor::InformationCentre,
        Actor::PrisonAdministration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Engine => "engine",
            Actor::ServiceResearcher => "service_researcher",
            Actor::Approver => "approver",
            Actor::ExternalResearcher => "external_researcher",
            Actor::InformationCentre => "information_centre",
            Actor::PrisonAdministration => "prison_administration",
        }
    }
}

/// The class of data a step reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// No personal data.
    None,
    /// Personal codes, proceeding/ruling numbers, case numbers with the data (MK403 p.12, p.17).
    Identifying,
    /// Identifiers deleted, subjects under study pseudonyms; still personal data (MK403 p.17.3, p.18).
    Pseudonymised,
    /// Anonymised (MK403 p.7, p.20, p.24).
    Anonymised,
    /// First name, surname, e-mail or phone of consenting subjects (MK403 p.32).
    Contact,
}

impl DataClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::None => "none",
            DataClass::Identifying => "identifying",
            DataClass::Pseudonymised => "pseudonymised",
            DataClass::Anonymised => "anonymised",
            DataClass::Contact => "contact",
        }
    }

    /// Personal data that must not reach analysis, release or an external researcher.
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            DataClass::Identifying | DataClass::Pseudonymised | DataClass::Contact
        )
    }

    pub const ALL: [DataClass; 5] = [
        DataClass::None,
        DataClass::Identifying,
        DataClass::Pseudonymised,
        DataClass::Anonymised,
        DataClass::Contact,
    ];
}

/// An institution whose registry the Service asks (MK403 p.10–16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registry {
    /// The Punishment Register, through the Information Centre (p.13).
    InformationCentre,
    /// The Prisoners' IS of the Prison Administration (p.15, p.16).
    PrisonAdministration,
}

impl Registry {
    pub fn as_str(self) -> &'static str {
        match self {
            Registry::InformationCentre => "information_centre",
            Registry::PrisonAdministration => "prison_administration",
        }
    }
}

/// One follow-up wave of MK403 p.19, as the steps of the wave carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct WaveRef {
    /// The spec's name of the wave (`1y_after_start`).
    pub name: &'static str,
    /// Its point of p.19 (`p.19.1`).
    pub point: &'static str,
    pub edge: AnchorEdge,
    /// Years after the anchor edge at which the wave falls due.
    pub years: i16,
    /// The observation window the wave's request asks for starts this many years after the
    /// same anchor edge: the previous wave of the same edge the spec asks for, or 0 (the edge
    /// itself). The window ends at `years`.
    pub since_years: i16,
}

/// What a step is about beyond its kind: the typed reference the engine and the data plane
/// act on, never the step's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum About {
    /// The study as a whole.
    Study,
    /// A request to, or the answer of, an institution (MK403 p.10–16).
    Registry { registry: Registry },
    /// A follow-up wave (MK403 p.19–20).
    Wave { wave: WaveRef },
}

impl About {
    pub fn registry(self) -> Option<Registry> {
        match self {
            About::Registry { registry } => Some(registry),
            _ => None,
        }
    }
    pub fn wave(self) -> Option<WaveRef> {
        match self {
            About::Wave { wave } => Some(wave),
            _ => None,
        }
    }
}

/// Start or end of a subject's anchor event (MK403 p.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorEdge {
    Start,
    End,
}

/// When a step becomes ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// When every step it depends on is done.
    AfterDependencies,
    /// On a date, and not before its dependencies are done.
    AtDate { date: Date },
    /// Per subject, `years` after the start or end of the subject's anchor event (MK403 p.19).
    PerSubject {
        anchor_event: AnchorEvent,
        edge: AnchorEdge,
        years: i16,
    },
    /// At the study's completion or termination (MK403 p.26, p.34).
    AtCompletion,
}

impl Trigger {
    pub fn describe(&self) -> String {
        match self {
            Trigger::AfterDependencies => "after dependencies".into(),
            Trigger::AtDate { date } => format!("on {date}"),
            Trigger::PerSubject { edge, years, .. } => format!(
                "per subject, {years} y after {}",
                match edge {
                    AnchorEdge::Start => "start",
                    AnchorEdge::End => "end",
                }
            ),
            Trigger::AtCompletion => "at completion or termination".into(),
        }
    }
}

/// The kind of a deadline, as the engine's timers and `status` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// The deadline of the phases covering the step's stage (MK403 p.3.4).
    PhaseDeadline,
    /// No later than the 10th working day before the planned publication (MK403 p.8).
    PrisonAdministrationNotice,
    /// The planned publication date (MK403 p.22.7).
    Publication,
    /// A subject's follow-up falls due (MK403 p.19).
    FollowUpWave,
    /// Everything identifying deleted (MK403 p.26, p.34).
    IdentifyingDataDeletion,
    /// Anonymised data deleted at the end of the retention period the Service set (MK403 p.27).
    AnonymisedDataRetention,
    /// The external researcher's copy deleted (MK403 p.35).
    ExternalCopyDeletion,
}

impl DeadlineKind {
    /// The MK403 point the deadline rests on.
    pub fn point(self) -> &'static str {
        match self {
            DeadlineKind::PhaseDeadline => "p.3.4",
            DeadlineKind::PrisonAdministrationNotice => "p.8",
            DeadlineKind::Publication => "p.22.7",
            DeadlineKind::FollowUpWave => "p.19",
            DeadlineKind::IdentifyingDataDeletion => "p.26",
            DeadlineKind::AnonymisedDataRetention => "p.27",
            DeadlineKind::ExternalCopyDeletion => "p.35",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::PhaseDeadline => "phase_deadline",
            DeadlineKind::PrisonAdministrationNotice => "prison_administration_notice",
            DeadlineKind::Publication => "publication",
            DeadlineKind::FollowUpWave => "follow_up_wave",
            DeadlineKind::IdentifyingDataDeletion => "identifying_data_deletion",
            DeadlineKind::AnonymisedDataRetention => "anonymised_data_retention",
            DeadlineKind::ExternalCopyDeletion => "external_copy_deletion",
        }
    }
}

/// By when a step is due, the rule that says so, and the date when it is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub kind: DeadlineKind,
    /// The rule in words, citing its point.
    pub rule: String,
    /// The same rule in Latvian, for the Latvian pages.
    pub rule_lv: String,
    /// The computed date; absent for per-subject deadlines and dates the spec does not give.
    pub date: Option<Date>,
}

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// The later step reads what the earlier one wrote (and waits for it).
    Data,
    /// The later step only waits for the earlier one: a gate (approval, contract, the p.8
    /// notice before publication) or completion.
    Order,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable id, unique in the plan; the engine keys step runs and idempotency on it.
    pub id: String,
    pub kind: StepKind,
    /// The registry or wave it is about (typed: nothing parses the id).
    pub about: About,
    /// What the step does, for people.
    pub title: String,
    /// The same in Latvian, for the pages of a person who reads Latvian.
    pub title_lv: String,
    pub actor: Actor,
    pub data_in: DataClass,
    pub data_out: DataClass,
    /// The MK403 points it rests on.
    pub regulation: Vec<&'static str>,
    pub trigger: Trigger,
    /// Whether it runs once per subject (the follow-up waves).
    pub per_subject: bool,
    /// The stage whose phases bound it (`phases[].covers`), if any.
    pub stage: Option<Stage>,
    /// Catalogue keys the step requests, deletes or releases.
    pub fields: Vec<String>,
    pub deadline: Option<Deadline>,
    /// A human task (someone completes it) rather than an engine step.
    pub human_task: bool,
}

/// Where a human task has an engine body too, and on which side of the person's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskBody {
    /// No body: the person's completion is the step (a decision, a signature, work done
    /// outside the engine), or an engine step with no person at all.
    None,
    /// The engine prepares, then the person acts on what it prepared: the secure electronic
    /// request written to the outbox before the service researcher sends it (MK403 p.12.3,
    /// p.14.2), the quality report before the sign-off (p.18, p.22.2).
    Before,
    /// The person acts, then the engine imports what they supplied: the manual extraction
    /// from the Service IS (p.22.1), the contact details of consenting clients (p.31–32).
    After,
}

impl Step {
    /// Whether the step reads or writes personal data (identifying, pseudonymised or contact).
    pub fn handles_personal_data(&self) -> bool {
        self.data_in.is_personal() || self.data_out.is_personal()
    }

    /// The engine body a human task has, if any (see [`TaskBody`]).
    pub fn task_body(&self) -> TaskBody {
        if !self.human_task {
            return TaskBody::None;
        }
        match self.kind {
            StepKind::Request | StepKind::QualityCheck | StepKind::PrisonAdministrationNotice => {
                TaskBody::Before
            }
            StepKind::AcquireServiceIs | StepKind::ConsentCollection => TaskBody::After,
            _ => TaskBody::None,
        }
    }
}

/// The compiled plan of one study version.
#[derive(Debug, Clone)]
pub struct Plan {
    pub study: String,
    pub version: u32,
    /// sha256 over the spec bytes, the calendar data version and the compiler version.
    pub hash: String,
    pub calendar_version: String,
    pub graph: DiGraph<Step, Edge>,
}

impl Plan {
    /// Steps in a deterministic topological order: among the steps that are ready, the one
    /// added first comes first. `None` when the graph has a cycle.
    pub fn topological(&self) -> Option<Vec<NodeIndex>> {
        let g = &self.graph;
        let mut indegree: Vec<usize> = g
            .node_indices()
            .map(|n| g.neighbors_directed(n, petgraph::Incoming).count())
            .collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = indegree
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| std::cmp::Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(g.node_count());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            let n = NodeIndex::new(i);
            order.push(n);
            for m in g.neighbors_directed(n, petgraph::Outgoing) {
                indegree[m.index()] -= 1;
                if indegree[m.index()] == 0 {
                    ready.push(std::cmp::Reverse(m.index()));
                }
            }
        }
        (order.len() == g.node_count()).then_some(order)
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.graph.node_weights().find(|s| s.id == id)
    }

    /// The steps of a kind, in insertion order.
    pub fn steps_of(&self, kind: StepKind) -> impl Iterator<Item = (NodeIndex, &Step)> {
        self.graph
            .node_indices()
            .map(|n| (n, &self.graph[n]))
            .filter(move |(_, s)| s.kind == kind)
    }

    /// Edges as (from id, to id, meaning), in topological order of their ends.
    pub fn edges(&self) -> Vec<(&str, &str, Edge)> {
        let order = self
            .topological()
            .unwrap_or_else(|| self.graph.node_indices().collect());
        let mut position = vec![0; self.graph.node_count()];
        for (i, n) in order.iter().enumerate() {
            position[n.index()] = i;
        }
        let mut edges: Vec<_> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                self.graph
                    .edge_endpoints(e)
                    .map(|(a, b)| (a, b, self.graph[e]))
            })
            .collect();
        edges.sort_by_key(|(a, b, _)| (position[a.index()], position[b.index()]));
        edges
            .into_iter()
            .map(|(a, b, e)| (self.graph[a].id.as_str(), self.graph[b].id.as_str(), e))
            .collect()
    }

    /// The p.8 notice's computed date, if the plan has the notice and the date is known.
    pub fn prison_notice_due(&self) -> Option<Date> {
        self.steps_of(StepKind::PrisonAdministrationNotice)
            .find_map(|(_, s)| s.deadline.as_ref().and_then(|d| d.date))
    }
}
