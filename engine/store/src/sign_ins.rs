//! What sign-ins need kept, shared by every server of an installation (issue #12): of those at
//! the Service's identity provider, the sign-ins sent to the provider and not yet back, the
//! sessions they opened (the provider's person and session, the sealed refresh token, when the
//! provider last vouched) and the back-channel logout tokens taken; and the attempts counted
//! against the sign-in rate limits. The store keeps rows and makes each change whole; minting,
//! sealing, asking the provider and choosing the buckets are `studyflow-identity`'s and the
//! server's.

use sqlx::Row;

use crate::{Backend, Result, Store, in_tx, on_pool, optional_row};

/// Held by a PostgreSQL transaction that prunes and adds pending sign-ins, so that sign-ins
/// begun together neither deadlock on the rows they prune nor pass the cap.
const SIGN_INS_LOCK: i64 = 0x5346_5349_474e_494e;
/// Held by a PostgreSQL transaction that counts an attempt, for the same reasons.
const ATTEMPTS_LOCK: i64 = 0x5346_4154_5445_4d50;

/// A sign-in sent to the provider, by the SHA-256 of its `state`.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSignInRow {
    pub state_hash: Vec<u8>,
    pub nonce: String,
    /// The PKCE verifier the code is exchanged with.
    pub verifier: String,
    pub begun_at: i64,
}

/// A session opened by a sign-in at the provider, by the hash of the session's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSessionRow {
    pub session_hash: Vec<u8>,
    /// The provider's person (`sub`) and session (`sid`), which a back-channel logout names.
    pub subject: String,
    pub provider_session: Option<String>,
    pub signed_in_at: i64,
    /// The seal `studyflow-identity` keeps for the session: the refresh token (the store never
    /// sees it plain), bound to the row's session, person, provider session and times.
    pub refresh: Option<Vec<u8>>,
    /// When the provider last vouched for the person.
    pub confirmed_at: i64,
    /// A server is asking the provider again until then.
    pub confirming_until: Option<i64>,
    /// A back-channel logout ended the session then.
    pub logged_out_at: Option<i64>,
}

// Neither row is written out whole where it could be logged: a pending sign-in's nonce and
// verifier are secrets, and a session names a person at the provider.
impl std::fmt::Debug for OidcSignInRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignInRow")
            .field("begun_at", &self.begun_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OidcSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSessionRow")
            .field("signed_in_at", &self.signed_in_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("confirming_until", &self.confirming_until)
            .field("logged_out_at", &self.logged_out_at)
            .finish_non_exhaustive()
    }
}

const SESSION_COLUMNS: &str = "session_hash, subject, provider_session, signed_in_at, refresh, confirmed_at, confirming_until, logged_out_at";

macro_rules! session_from {
    ($r:expr) => {{
        OidcSessionRow {
            session_hash: $r.try_get("session_hash")?,
            subject: $r.try_get("subject")?,
            provider_session: $r.try_get("provider_session")?,
            signed_in_at: $r.try_get("signed_in_at")?,
            refresh: $r.try_get("refresh")?,
            confirmed_at: $r.try_get("confirmed_at")?,
            confirming_until: $r.try_get("confirming_until")?,
            logged_out_at: $r.try_get("logged_out_at")?,
        }
    }};
}

impl Store {
    /// Keeps a sign-in sent to the provider. Sign-ins begun before `expired_before` are
    /// deleted first, and beyond `at_most` waiting the oldest goes, so that however many are
    /// begun (no one needs to be signed in to begin one) the table stays small.
    pub async fn put_oidc_sign_in(
        &self,
        row: &OidcSignInRow,
        expired_before: i64,
        at_most: i64,
    ) -> Result<()> {
        in_tx!(self, |tx, backend| {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SIGN_INS_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM oidc_sign_ins WHERE begun_at < $1")
                .bind(expired_before)
                .execute(&mut *tx)
                .await?;
            let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oidc_sign_ins")
                .fetch_one(&mut *tx)
                .await?;
            if waiting >= at_most {
                sqlx::query(
                    "DELETE FROM oidc_sign_ins WHERE state_hash IN
                       (SELECT state_hash FROM oidc_sign_ins ORDER BY begun_at LIMIT $1)",
                )
                .bind(waiting - at_most + 1)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO oidc_sign_ins (state_hash, nonce, verifier, begun_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&row.state_hash)
            .bind(&row.nonce)
            .bind(&row.verifier)
            .bind(row.begun_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Takes the sign-in whose `state` hashes to `state_hash`: it is gone afterwards, whether
    /// or not it is still young enough (the caller's judgement), so a `state` is good once.
    pub async fn take_oidc_sign_in(&self, state_hash: &[u8]) -> Result<Option<OidcSignInRow>> {
        let row = on_pool!(self, |p| {
            match sqlx::query(
                "DELETE FROM oidc_sign_ins WHERE state_hash = $1
                 RETURNING state_hash, nonce, verifier, begun_at",
            )
            .bind(state_hash)
            .fetch_optional(p)
            .await?
            {
                Some(r) => Some(OidcSignInRow {
                    state_hash: r.try_get("state_hash")?,
                    nonce: r.try_get("nonce")?,
                    verifier: r.try_get("verifier")?,
                    begun_at: r.try_get("begun_at")?,
                }),
                None => None,
            }
        });
        Ok(row)
    }

    /// Keeps what a sign-in gave for its session (replacing what was kept for the same
    /// session). Sessions signed in before `expired_before` are deleted first: a session lives
    /// at most that long.
    pub async fn put_oidc_session(&self, row: &OidcSessionRow, expired_before: i64) -> Result<()> {
        in_tx!(self, |tx, _b| {
            sqlx::query("DELETE FROM oidc_sessions WHERE signed_in_at < $1 OR session_hash = $2")
                .bind(expired_before)
                .bind(&row.session_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO oidc_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )))
            .bind(&row.session_hash)
            .bind(&row.subject)
            .bind(&row.provider_session)
            .bind(row.signed_in_at)
            .bind(&row.refresh)
            .bind(row.confirmed_at)
            .bind(row.confirming_until)
            .bind(row.logged_out_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// What is kept for the session whose secret hashes to `session_hash`.
    pub async fn oidc_session(&self, session_hash: &[u8]) -> Result<Option<OidcSessionRow>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM oidc_sessions WHERE session_hash = $1");
        Ok(optional_row!(self, sql, session_hash, session_from))
    }

    /// Claims the confirmation of a session with the provider until `until` (the claim, which
    /// [`Store::end_oidc_confirmation`] names): the session's row, when it was last confirmed
    /// no later than `due` or implausibly after `ahead` (a clock that ran ahead), was not ended
    /// by a logout, and no other claim runs at `now`; none otherwise (another server, or
    /// another request of this one, is asking the provider, or it was just confirmed).
    pub async fn claim_oidc_confirmation(
        &self,
        session_hash: &[u8],
        due: i64,
        ahead: i64,
        now: i64,
        until: i64,
    ) -> Result<Option<OidcSessionRow>> {
        let sql = format!(
            "UPDATE oidc_sessions SET confirming_until = $5
             WHERE session_hash = $1 AND (confirmed_at <= $2 OR confirmed_at > $3)
               AND logged_out_at IS NULL
               AND (confirming_until IS NULL OR confirming_until <= $4)
             RETURNING {SESSION_COLUMNS}"
        );
        let row = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(session_hash)
                .bind(due)
                .bind(ahead)
                .bind(now)
                .bind(until)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Some(session_from!(r)),
                None => None,
            }
        });
        Ok(row)
    }

    /// Ends the claim `claim` (its `until`): the provider vouched at `confirmed_at`, with the
    /// session's new seal; or, with none, it could not be asked and the claim is released for
    /// the next request. False, nothing changed, when the claim is no longer held (the session
    /// was signed out or forgotten meanwhile, or its claim outlived and was taken over).
    pub async fn end_oidc_confirmation(
        &self,
        session_hash: &[u8],
        claim: i64,
        confirmed: Option<(i64, &[u8])>,
    ) -> Result<bool> {
        let (confirmed_at, seal) = confirmed.unzip();
        let ended = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE oidc_sessions SET confirming_until = NULL,
                     confirmed_at = COALESCE($3, confirmed_at), refresh = COALESCE($4, refresh)
                 WHERE session_hash = $1 AND confirming_until = $2",
            )
            .bind(session_hash)
            .bind(claim)
            .bind(confirmed_at)
            .bind(seal)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(ended == 1)
    }

    /// Forgets the session whose secret hashes to `session_hash`, returning what was kept (the
    /// refresh token to revoke at the provider).
    pub async fn forget_oidc_session(&self, session_hash: &[u8]) -> Result<Option<OidcSessionRow>> {
        let sql = format!(
            "DELETE FROM oidc_sessions WHERE session_hash = $1 RETURNING {SESSION_COLUMNS}"
        );
        Ok(optional_row!(self, sql, session_hash, session_from))
    }

    /// A back-channel logout: the token `jti` is taken (tokens seen before `forget_before` are
    /// forgotten first), and every session of the provider's person `subject` and session
    /// `provider_session` — each when given — not ended yet is ended at `now`. `None`, nothing
    /// changed, when the token was taken before; else how many sessions it ends.
    pub async fn oidc_logout(
        &self,
        jti: &str,
        subject: Option<&str>,
        provider_session: Option<&str>,
        now: i64,
        forget_before: i64,
    ) -> Result<Option<u64>> {
        let ended = in_tx!(self, |tx, _b| {
            sqlx::query("DELETE FROM oidc_logout_tokens WHERE seen_at < $1")
                .bind(forget_before)
                .execute(&mut *tx)
                .await?;
            let taken = sqlx::query(
                "INSERT INTO oidc_logout_tokens (jti, seen_at) VALUES ($1, $2)
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                None
            } else {
                let ended = sqlx::query(
                    "UPDATE oidc_sessions SET logged_out_at = $3
                     WHERE logged_out_at IS NULL
                       AND ($1 IS NULL OR subject = $1)
                       AND ($2 IS NULL OR provider_session = $2)",
                )
                .bind(subject)
                .bind(provider_session)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                Some(ended)
            }
        });
        Ok(ended)
    }
}

impl Store {
    /// Counts an attempt in `bucket` at `now` unless `limit` were counted there in the
    /// `window` before it: `None` when counted, else when the oldest of them was made (it
    /// leaves the window first). Attempts of every bucket older than the window are deleted.
    pub async fn count_attempt(
        &self,
        bucket: &[u8],
        now: i64,
        window: i64,
        limit: i64,
    ) -> Result<Option<i64>> {
        let over = in_tx!(self, |tx, backend| {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ATTEMPTS_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM attempts WHERE at <= $1")
                .bind(now - window)
                .execute(&mut *tx)
                .await?;
            let (made, oldest): (i64, Option<i64>) =
                sqlx::query_as("SELECT COUNT(*), MIN(at) FROM attempts WHERE bucket = $1")
                    .bind(bucket)
                    .fetch_one(&mut *tx)
                    .await?;
            if made >= limit {
                Some(oldest.unwrap_or(now))
            } else {
                sqlx::query("INSERT INTO attempts (bucket, at) VALUES ($1, $2)")
                    .bind(bucket)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                None
            }
        });
        Ok(over)
    }
}
