//! The automated exchange with the Information Centre and the Prison Administration (MK403
//! p.10, p.14.1): the Service sends the request (p.6, p.11–12) over HTTP — rustls when the URL
//! is `https` — with a timeout per attempt and retries by the runtime's one [`Policy`]
//! (exponential backoff with jitter) for what may pass (a timeout, a dropped connection, a
//! 5xx). The answer is parsed and validated whole
//! against the request before anything of it is returned ([`crate::answers`]); a rejected
//! answer is an error that names rows by position and carries no identifier.

use std::time::Duration;

use serde_json::json;
use studyflow_spec::catalogue::Source;

use crate::answers::{self, Rejected, Request};
use crate::linkage::AnswerRow;
use crate::vault::StudyKeys;
use studyflow_runtime::retry::{Jitter, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Every attempt failed in a way that may pass: retry the step later.
    #[error("{registry} did not answer after {attempts} attempt(s): {last}")]
    Unavailable {
        registry: &'static str,
        attempts: u32,
        last: String,
    },
    /// The registry refused the request (4xx): a fault of the request, not of the moment.
    #[error("{registry} refused the request ({status}): {message}")]
    Refused {
        registry: &'static str,
        status: u16,
        message: String,
    },
    /// The answer came but is not what was asked; nothing of it was imported.
    #[error("{registry}: {rejected}")]
    Rejected {
        registry: &'static str,
        #[source]
        rejected: Rejected,
    },
    /// The answer holds rows outside the requested period or dated after the request: a
    /// registry answering with more than was asked; nothing of it was imported.
    #[error("{registry}: {message}")]
    OutOfPeriod {
        registry: &'static str,
        message: String,
    },
}

impl ConnectorError {
    /// Whether retrying the step later may succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, ConnectorError::Refused { .. })
    }
}

/// Where and how to reach the registries.
#[derive(Debug, Clone)]
pub struct Connector {
    client: reqwest::Client,
    base: String,
    pub timeout: Duration,
    /// Attempts per request and the pauses between them.
    pub retry: Policy,
    /// The most subjects one request names: a larger request goes in parts of this size, each
    /// validated on its own, and succeeds only whole (a registry, like any HTTP service, limits
    /// the size of what it accepts).
    pub max_subjects: usize,
}

/// Subjects per request part: about 0.5 MB of request body.
pub const MAX_SUBJECTS: usize = 5_000;

/// The connector's retries: four attempts within a few seconds; a registry down for longer is
/// the worker's business (the step is retried later by the worker's policy).
pub const RETRY: Policy = Policy {
    base: Duration::from_millis(500),
    factor: 3,
    max_delay: Duration::from_secs(8),
    max_attempts: 4,
    jitter: Jitter::Decorrelated,
};

impl Connector {
    pub fn new(base: &str) -> Connector {
        Connector {
            client: reqwest::Client::builder()
                .use_rustls_tls()
                .build()
                .expect("an HTTP client with rustls"),
            base: base.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            retry: RETRY,
            max_subjects: MAX_SUBJECTS,
        }
    }

    /// Whether a registry address was given.
    pub fn is_configured(&self) -> bool {
        !self.base.is_empty()
    }

    /// Asks `source`'s registry for `fields` about `subjects` (MK403 p.12); returns the
    /// validated rows, or an error and nothing. More subjects than [`Connector::max_subjects`]
    /// are asked in parts, one after the other; the answer is every part's or none.
    pub async fn query(
        &self,
        keys: &StudyKeys,
        source: Source,
        fields: &[&str],
        subjects: &[crate::answers::Asked<'_>],
        period: Option<&crate::followup::Period>,
    ) -> Result<Vec<AnswerRow>, ConnectorError> {
        if subjects.is_empty() {
            return self
                .query_part(keys, source, fields, subjects, period)
                .await;
        }
        let mut rows = Vec::new();
        for part in subjects.chunks(self.max_subjects.max(1)) {
            rows.extend(self.query_part(keys, source, fields, part, period).await?);
        }
        Ok(rows)
    }

    /// One request of a query.
    async fn query_part(
        &self,
        keys: &StudyKeys,
        source: Source,
        fields: &[&str],
        subjects: &[crate::answers::Asked<'_>],
        period: Option<&crate::followup::Period>,
    ) -> Result<Vec<AnswerRow>, ConnectorError> {
        let (registry, path, sources): (_, _, &[Source]) = match source {
            Source::InformationCentre => (
                "the Information Centre",
                "information-centre",
                &[Source::InformationCentre],
            ),
            Source::PrisonRulings | Source::PrisonResocialisation => (
                "the Prison Administration",
                "prison-administration",
                &[Source::PrisonRulings, Source::PrisonResocialisation],
            ),
            Source::ServiceIs => ("the Service IS", "service-is", &[Source::ServiceIs]),
        };
        if self.base.is_empty() {
            return Err(ConnectorError::Refused {
                registry,
                status: 0,
                message: "no registry address is configured (studyflow worker --registries)".into(),
            });
        }
        let url = format!("{}/v1/{path}/query", self.base);
        let mut body = json!({
            "fields": fields,
            "subjects": subjects.iter().map(crate::answers::Asked::json).collect::<Vec<_>>(),
        });
        // The period the spec asks about and the day of the request (MK403 p.3.3, p.12):
        // the registry answers as of that day and within the period.
        if let Some(p) = period {
            body["period"] = json!({"from": p.from, "to": p.to});
            body["as_of"] = json!(p.as_of);
        }
        let mut backoff = self.retry.backoff();
        let last = loop {
            let sent = self
                .client
                .post(&url)
                .json(&body)
                .timeout(self.timeout)
                .send()
                .await;
            let outcome = match sent {
                Err(e) if e.is_timeout() => Err(format!("no answer within {:?}", self.timeout)),
                Err(e) => Err(format!("connection failed: {}", without_url(&e))),
                Ok(r) if r.status().is_server_error() => {
                    Err(format!("server error {}", r.status().as_u16()))
                }
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status().as_u16();
                    let message = r.text().await.unwrap_or_default();
                    return Err(ConnectorError::Refused {
                        registry,
                        status,
                        message: studyflow_runtime::worker::redact(&message),
                    });
                }
                Ok(r) => match r.bytes().await {
                    Ok(bytes) => Ok(bytes),
                    Err(e) => Err(format!("the answer broke off: {}", without_url(&e))),
                },
            };
            match outcome {
                Ok(bytes) => {
                    let rows = answers::parse(sources[0], &bytes).map_err(|e| {
                        ConnectorError::Rejected {
                            registry,
                            rejected: e,
                        }
                    })?;
                    let request = Request::new(
                        keys,
                        sources,
                        fields,
                        subjects.iter().flat_map(crate::answers::Asked::codes),
                    );
                    answers::validate(keys, &request, &rows).map_err(|e| {
                        ConnectorError::Rejected {
                            registry,
                            rejected: e,
                        }
                    })?;
                    if let Some(p) = period {
                        crate::followup::check_period(rows.iter().map(|r| &r.values), p).map_err(
                            |e| ConnectorError::OutOfPeriod {
                                registry,
                                message: e.to_string(),
                            },
                        )?;
                    }
                    return Ok(rows);
                }
                Err(e) => {
                    let Some(delay) = backoff.next_delay() else {
                        break e;
                    };
                    tracing::info!(
                        registry,
                        attempt = backoff.attempts(),
                        delay_ms = delay.as_millis() as u64,
                        error = %studyflow_runtime::worker::redact(&e),
                        "registry request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
        tracing::warn!(
            registry,
            attempts = backoff.attempts(),
            error = %studyflow_runtime::worker::redact(&last),
            "registry did not answer"
        );
        Err(ConnectorError::Unavailable {
            registry,
            attempts: backoff.attempts(),
            last,
        })
    }
}

/// A reqwest error's text without the URL (it may carry a query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the registry");
    }
    text
}
