//! # studyflow-runtime
//!
//! The control plane: the study lifecycle with approvals pinned to the plan hash
//! ([`engine`]), who may act ([`people`]), workers with leases, a heartbeat task and fencing tokens ([`worker`]), one
//! retry policy ([`retry`]), timers that are rows, human tasks with authorisation from the spec,
//! the typed status people read ([`status`]), and the hash-chained audit (through the store).
//! The clock is injected ([`clock`]). Step bodies go through the [`dataplane`] trait; the data
//! plane that moves data is a crate of its own (`studyflow-dataplane`), which this one does not
//! know.

pub(crate) mod cache;
pub mod clock;
pub mod dataplane;
pub mod engine;
pub mod error;
pub mod people;
pub mod retry;
pub mod status;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dataplane::{DataPlane, PlaceholderDataPlane, StepContext, StepError, StepOutput, Subject};
pub use engine::{ContractInput, Engine, Options, TaskNote, run_key};
pub use error::{EngineError, ProvenAct, Said};
pub use people::{StudyAct, authorise, authorise_act, has_role, service_persons, team_member};
pub use studyflow_identity::Identity;
pub use studyflow_store::Language;
pub use worker::{Worker, owner_name};
