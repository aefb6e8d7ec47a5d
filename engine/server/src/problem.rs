//! Errors as RFC 9457 problem details (`application/problem+json`). A problem names the study,
//! step or login it is about, never data of a data subject; a failure inside (a database
//! error) is logged by its kind and answered with a generic 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use studyflow_identity::IdentityError;
use studyflow_runtime::EngineError;

/// Where the problem types are described.
pub const TYPES: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/api.md#problem-"
);

/// A problem, as sent (RFC 9457).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: Box<str>,
    pub status: u16,
    pub detail: String,
    /// The detail in Latvian, when the engine said it in both languages (a refusal of an act):
    /// what a Latvian page shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_lv: Option<Box<str>>,
    /// The spec's findings, when it did not validate (file positions, codes, MK403 points).
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub diagnostics: Box<[serde_json::Value]>,
    /// A supplied file's refusal, row by row (`row`, 1 the header, and `problem`): where and
    /// what, never a value of the file.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub rows: Box<[serde_json::Value]>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("{TYPES}{kind}"),
            title: status.canonical_reason().unwrap_or("error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            detail_lv: None,
            diagnostics: Box::default(),
            rows: Box::default(),
        }
    }

    /// With its detail in Latvian too.
    pub fn in_latvian(mut self, lv: String) -> Problem {
        self.detail_lv = Some(lv.into());
        self
    }

    /// The short name of its type (`forbidden`, `reauthenticate`, …).
    pub fn short(&self) -> &str {
        self.kind.strip_prefix(TYPES).unwrap_or(&self.kind)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; the operator finds the cause in its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, axum::Json(&self)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Problem {
        match e {
            EngineError::Invalid(diagnostics) => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-spec",
                    EngineError::Invalid(diagnostics.clone()).to_string(),
                );
                p.diagnostics = diagnostics
                    .iter()
                    .map(|d| serde_json::to_value(d).unwrap_or_default())
                    .collect();
                p
            }
            EngineError::NotFound(m) => Problem::not_found(m.en).in_latvian(m.lv),
            EngineError::Forbidden(m) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", m.en).in_latvian(m.lv)
            }
            EngineError::Refused(m) => {
                Problem::new(StatusCode::CONFLICT, "refused", m.en).in_latvian(m.lv)
            }
            EngineError::Reauthenticate(m) => {
                Problem::new(StatusCode::UNAUTHORIZED, "reauthenticate", m.en).in_latvian(m.lv)
            }
            EngineError::Store(studyflow_store::StoreError::Conflict(m)) => {
                Problem::new(StatusCode::CONFLICT, "refused", m)
            }
            EngineError::Store(studyflow_store::StoreError::NotFound(m)) => Problem::not_found(m),
            EngineError::Store(other) => {
                tracing::error!(error = %other, "store error");
                Problem::internal()
            }
        }
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Problem {
        match e {
            IdentityError::Refused => Problem::unauthenticated(e.to_string()),
            IdentityError::Provider(_) => Problem::unauthenticated(e.to_string()),
            IdentityError::ProviderUnavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity-provider-unavailable",
                e.to_string(),
            ),
            IdentityError::Busy => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            IdentityError::Unauthenticated => Problem::unauthenticated(e.to_string()),
            IdentityError::Invalid(m) => Problem::bad_request(m),
            IdentityError::Store(studyflow_store::StoreError::Conflict(m)) => {
                Problem::new(StatusCode::CONFLICT, "refused", m)
            }
            IdentityError::Store(studyflow_store::StoreError::NotFound(m)) => Problem::not_found(m),
            IdentityError::Store(studyflow_store::StoreError::Busy(m)) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", m)
            }
            IdentityError::Store(other) => {
                tracing::error!(error = %other, "store error");
                Problem::internal()
            }
        }
    }
}
