//! Why a command of the engine was refused or failed.

use studyflow_spec::Diagnostic;
use studyflow_store::StoreError;

/// Why a command was refused or failed. Messages name studies, steps and users, never data
/// about a subject.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the spec does not validate ({} error(s)); nothing was stored", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Refused(String),
    /// The act needs a recent proof of identity (step-up): sign in again, then repeat it.
    #[error("{0}")]
    Reauthenticate(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;
