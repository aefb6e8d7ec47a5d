//! # studyflow-runtime
//!
//! The durable engine: the study lifecycle with approvals pinned to the plan hash
//! ([`engine`]), workers with leases, heartbeats and fencing tokens ([`worker`]), timers that
//! are rows, human tasks with authorisation from the spec, and the hash-chained audit (through
//! the store). The clock is injected ([`clock`]); step bodies go through the [`dataplane`]
//! trait.

pub mod anonymise;
pub mod answers;
pub mod bulk;
pub mod clock;
pub mod connector;
pub mod contact;
pub mod csv_import;
pub mod csvio;
pub mod datapackage;
pub mod dataplane;
pub mod engine;
pub mod exchange;
pub mod followup;
pub mod letters;
pub mod linkage;
pub mod quality;
pub mod registry_plane;
pub mod release;
pub mod retry;
pub mod status;
pub mod vault;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dataplane::{DataPlane, PlaceholderDataPlane, StepContext, StepError, StepOutput, Subject};
pub use engine::{ContractInput, Engine, EngineError, Options, authorise, run_key};
pub use worker::{Worker, owner_name};
