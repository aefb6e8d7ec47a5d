//! A command line signing in through a browser (RFC 8628's device authorization grant, issue
//! #12): the grants asked for by the CLI, decided by a signed-in person, and turned into that
//! person's personal token once. The store keeps rows and makes each change whole (the token
//! and the grant's end in one transaction); minting the codes and checking the person is
//! `studyflow-identity`'s.

use sqlx::Row;

use crate::accounts::{CREDENTIAL_COLUMNS, insert_credential};
use crate::audit::{audited_if_changed, push_audit};
use crate::{AuditEvent, CredentialRow, Result, Store, StoreError, in_tx, on_pool, optional_row};

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Asked for; no one has decided.
    Pending,
    /// A person approved it; the CLI has not collected its token yet.
    Approved,
    /// A person denied it.
    Denied,
    /// Its token was given to the CLI: it is spent.
    Issued,
}

impl DeviceState {
    fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Approved => "approved",
            DeviceState::Denied => "denied",
            DeviceState::Issued => "issued",
        }
    }

    fn parse(s: &str) -> Result<DeviceState> {
        Ok(match s {
            "pending" => DeviceState::Pending,
            "approved" => DeviceState::Approved,
            "denied" => DeviceState::Denied,
            "issued" => DeviceState::Issued,
            other => {
                return Err(StoreError::Conflict(format!(
                    "a device grant in an unknown state `{other}`"
                )));
            }
        })
    }
}

/// A grant, by the SHA-256 of its device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrantRow {
    pub device_hash: Vec<u8>,
    /// Eight letters, without the hyphen it is shown with.
    pub user_code: String,
    /// What the token is for, as the CLI named it.
    pub label: String,
    /// The address that asked.
    pub client: String,
    /// The token's life asked for, in days.
    pub days: Option<i64>,
    pub requested_at: i64,
    pub expires_at: i64,
    pub polled_at: i64,
    pub state: DeviceState,
    /// Who decided: their login, issuer, subject, and when they last proved who they are.
    pub login: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub auth_at: Option<i64>,
    pub decided_at: Option<i64>,
}

/// The most grants waiting for a decision at once (each lives 10 minutes).
const MAX_LIVE_GRANTS: i64 = 10_000;

const COLUMNS: &str = "device_hash, user_code, label, client, days, requested_at, expires_at, polled_at, state, login, issuer, subject, auth_at, decided_at";

macro_rules! grant_from {
    ($r:expr) => {{
        let state: String = $r.try_get("state")?;
        DeviceGrantRow {
            device_hash: $r.try_get("device_hash")?,
            user_code: $r.try_get("user_code")?,
            label: $r.try_get("label")?,
            client: $r.try_get("client")?,
            days: $r.try_get("days")?,
            requested_at: $r.try_get("requested_at")?,
            expires_at: $r.try_get("expires_at")?,
            polled_at: $r.try_get("polled_at")?,
            state: DeviceState::parse(&state)?,
            login: $r.try_get("login")?,
            issuer: $r.try_get("issuer")?,
            subject: $r.try_get("subject")?,
            auth_at: $r.try_get("auth_at")?,
            decided_at: $r.try_get("decided_at")?,
        }
    }};
}

impl Store {
    /// Keeps a new grant; grants expired before `now` are deleted first (the user code of an
    /// expired grant may be drawn again). A user code taken by a live grant is a conflict: draw
    /// another.
    pub async fn put_device_grant(&self, g: &DeviceGrantRow, now: i64) -> Result<()> {
        in_tx!(self, |tx, _b| {
            sqlx::query("DELETE FROM device_grants WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // However many addresses ask, the table stays small: beyond this many grants no one
            // has decided yet, a new one waits for the older ones to expire.
            let live: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM device_grants WHERE state = 'pending'")
                    .fetch_one(&mut *tx)
                    .await?;
            if live >= MAX_LIVE_GRANTS {
                return Err(StoreError::Busy(
                    "too many command-line sign-ins are waiting; try again in a few minutes".into(),
                ));
            }
            let taken: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM device_grants WHERE user_code = $1")
                    .bind(&g.user_code)
                    .fetch_one(&mut *tx)
                    .await?;
            if taken > 0 {
                return Err(StoreError::Conflict(
                    "the user code is taken by a live grant".into(),
                ));
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO device_grants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            )))
            .bind(&g.device_hash)
            .bind(&g.user_code)
            .bind(&g.label)
            .bind(&g.client)
            .bind(g.days)
            .bind(g.requested_at)
            .bind(g.expires_at)
            .bind(g.polled_at)
            .bind(g.state.as_str())
            .bind(&g.login)
            .bind(&g.issuer)
            .bind(&g.subject)
            .bind(g.auth_at)
            .bind(g.decided_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// The grant shown with `user_code`, whatever its state.
    pub async fn device_grant(&self, user_code: &str) -> Result<Option<DeviceGrantRow>> {
        let sql = format!("SELECT {COLUMNS} FROM device_grants WHERE user_code = $1");
        Ok(optional_row!(self, sql, user_code, grant_from))
    }

    /// Decides the pending grant shown with `user_code`, not expired at `at`: approved for, or
    /// denied by, the person named (`login`, `issuer`, `subject`, proven at `auth_at`), with
    /// the audit in the same transaction. `Ok(false)`, nothing changed, when there is no such
    /// pending grant (decided already, expired, or never asked for).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_device_grant(
        &self,
        user_code: &str,
        approve: bool,
        login: &str,
        issuer: &str,
        subject: &str,
        auth_at: i64,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let state = if approve {
            DeviceState::Approved
        } else {
            DeviceState::Denied
        };
        let decided = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE device_grants SET state = $2, login = $3, issuer = $4, subject = $5,
                         auth_at = $6, decided_at = $7
                     WHERE user_code = $1 AND state = 'pending' AND expires_at > $7",
                )
                .bind(user_code)
                .bind(state.as_str())
                .bind(login)
                .bind(issuer)
                .bind(subject)
                .bind(auth_at)
                .bind(at),
                audit
            )
        });
        Ok(decided)
    }

    /// A poll of the grant whose device code hashes to `device_hash` at `now` (the machine's
    /// clock): the grant as it stands, and whether the poll came sooner than `interval` (µs)
    /// after the last (`None`: no grant has this device code); the poll's time is kept.
    pub async fn poll_device_grant(
        &self,
        device_hash: &[u8],
        now: i64,
        interval: i64,
    ) -> Result<Option<(DeviceGrantRow, bool)>> {
        // Read first, written only for a grant that exists: polls with made-up codes take no
        // write lock.
        let sql = format!("SELECT {COLUMNS} FROM device_grants WHERE device_hash = $1");
        let Some(g) = optional_row!(self, sql, device_hash, grant_from) else {
            return Ok(None);
        };
        // The last poll's time as this one found it: two polls side by side may both pass,
        // which costs nothing (the token is given once, by `issue_device_token`).
        on_pool!(self, |p| {
            sqlx::query("UPDATE device_grants SET polled_at = $2 WHERE device_hash = $1")
                .bind(device_hash)
                .bind(now)
                .execute(p)
                .await?;
        });
        let too_soon = g.polled_at > 0 && now - g.polled_at < interval;
        Ok(Some((g, too_soon)))
    }

    /// Spends the approved grant whose device code hashes to `device_hash` on the personal
    /// token `token`, in one transaction with its audit: `Ok(false)`, nothing written, when the
    /// grant is not approved (any more) or expired at `at`, so a grant gives one token at most.
    pub async fn issue_device_token(
        &self,
        device_hash: &[u8],
        token: &CredentialRow,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let issued = in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE device_grants SET state = 'issued'
                 WHERE device_hash = $1 AND state = 'approved' AND expires_at > $2",
            )
            .bind(device_hash)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                insert_credential!(tx, token);
                push_audit!(self, tx, audit);
            }
            n > 0
        });
        Ok(issued)
    }
}
