//! Local accounts and the credentials (sessions, personal tokens) of signed-in persons
//! (issue #12). The store keeps rows; hashing passwords, checking second factors and minting
//! secrets is `studyflow-identity`'s. Every change is audited in the same transaction.

use sqlx::Row;

use crate::audit::{audited_if_changed, push_audit};
use crate::{AuditEvent, Result, Store, StoreError, in_tx, on_pool, optional_row};

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Lv,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Lv => "lv",
            Language::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "lv" => Some(Language::Lv),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub login: String,
    pub display_name: String,
    /// Argon2id, as a PHC string (algorithm, parameters, salt and hash).
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub totp_last_step: i64,
    pub disabled: bool,
    /// A person outside the Service (an external researcher's team member).
    pub external: bool,
    /// The identity provider's subject this login is bound to, for a person who signs in there.
    pub oidc_subject: Option<String>,
    pub failed_attempts: i64,
    pub locked_until: i64,
    /// Until when (µs) the one-time enrolment code, whose hash `password_hash` then holds, is
    /// good: the person has not chosen their password and second factor yet. 0 otherwise.
    pub enrolling_until: i64,
    /// The second factor a person enrolling was shown, until they prove it with a code.
    pub pending_totp_secret: Option<Vec<u8>>,
    /// For a signed-in person's replacement of their second factor: the credential (its hash)
    /// that began it, the only one that may end it…
    pub pending_by: Option<Vec<u8>>,
    /// …and until when (µs).
    pub pending_until: i64,
    /// How many times its password or second factor changed (reset, enrolled, the person's own
    /// change): a credential is issued only for a sign-in proven since the last.
    pub credentials_epoch: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A browser session (a cookie).
    Session,
    /// A personal token (the CLI's).
    Token,
}

/// What a signed-in person changes of their own credentials
/// ([`Store::own_credentials_changed`]).
#[derive(Clone, Copy)]
pub enum OwnChange<'a> {
    /// A new password: its Argon2id hash.
    Password(&'a str),
    /// The second factor begun ([`Store::second_factor_begun`]), proven by a code of time step
    /// `totp_step`.
    SecondFactor {
        totp_secret: &'a [u8],
        totp_step: i64,
    },
}

impl std::fmt::Debug for OwnChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OwnChange::Password(_) => "OwnChange::Password(..)",
            OwnChange::SecondFactor { .. } => "OwnChange::SecondFactor { .. }",
        })
    }
}

/// The credentials a person's change of their own ended besides the one it came with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: u64,
    pub tokens: u64,
}

impl CredentialKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
        }
    }
    fn parse(s: &str) -> Option<CredentialKind> {
        match s {
            "session" => Some(CredentialKind::Session),
            "token" => Some(CredentialKind::Token),
            _ => None,
        }
    }
}

/// A session or personal token, by the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub hash: Vec<u8>,
    pub kind: CredentialKind,
    pub login: String,
    pub issuer: String,
    pub subject: String,
    /// A token's name, given by its holder; a session's client.
    pub label: String,
    /// A session's CSRF token, hashed.
    pub csrf_hash: Option<Vec<u8>>,
    pub created_at: i64,
    /// When the holder last proved who they are (password and second factor).
    pub auth_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

macro_rules! account_from {
    ($r:expr) => {
        AccountRow {
            login: $r.try_get("login")?,
            display_name: $r.try_get("display_name")?,
            password_hash: $r.try_get("password_hash")?,
            totp_secret: $r.try_get("totp_secret")?,
            totp_last_step: $r.try_get("totp_last_step")?,
            disabled: $r.try_get::<i64, _>("disabled")? != 0,
            external: $r.try_get::<i64, _>("external")? != 0,
            oidc_subject: $r.try_get("oidc_subject")?,
            failed_attempts: $r.try_get("failed_attempts")?,
            locked_until: $r.try_get("locked_until")?,
            enrolling_until: $r.try_get("enrolling_until")?,
            pending_totp_secret: $r.try_get("pending_totp_secret")?,
            pending_by: $r.try_get("pending_by")?,
            pending_until: $r.try_get("pending_until")?,
            credentials_epoch: $r.try_get("credentials_epoch")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! credential_from {
    ($r:expr) => {{
        let kind: String = $r.try_get("kind")?;
        CredentialRow {
            hash: $r.try_get("hash")?,
            kind: CredentialKind::parse(&kind).ok_or_else(|| {
                StoreError::Conflict(format!("a credential of an unknown kind `{kind}`"))
            })?,
            login: $r.try_get("login")?,
            issuer: $r.try_get("issuer")?,
            subject: $r.try_get("subject")?,
            label: $r.try_get("label")?,
            csrf_hash: $r.try_get("csrf_hash")?,
            created_at: $r.try_get("created_at")?,
            auth_at: $r.try_get("auth_at")?,
            last_used_at: $r.try_get("last_used_at")?,
            expires_at: $r.try_get("expires_at")?,
            revoked_at: $r.try_get("revoked_at")?,
        }
    }};
}

const ACCOUNT_COLUMNS: &str = "login, display_name, password_hash, totp_secret, totp_last_step, disabled, external, oidc_subject, failed_attempts, locked_until, enrolling_until, pending_totp_secret, pending_by, pending_until, credentials_epoch, created_at, updated_at";
pub(crate) const CREDENTIAL_COLUMNS: &str = "hash, kind, login, issuer, subject, label, csrf_hash, created_at, auth_at, last_used_at, expires_at, revoked_at";

impl Store {
    /// Adds a local account; refused if the login is taken.
    pub async fn add_account(&self, a: &AccountRow, audit: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM accounts WHERE login = $1 OR (oidc_subject IS NOT NULL AND oidc_subject = $2)",
            )
            .bind(&a.login)
            .bind(&a.oidc_subject)
            .fetch_one(&mut *tx)
            .await?;
            if taken > 0 {
                return Err(StoreError::Conflict(format!(
                    "an account `{}`, or one bound to that subject of the identity provider, exists already; `studyflow user reset` gives a local account a new password and second factor",
                    a.login
                )));
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
            )))
            .bind(&a.login)
            .bind(&a.display_name)
            .bind(&a.password_hash)
            .bind(&a.totp_secret)
            .bind(a.totp_last_step)
            .bind(i64::from(a.disabled))
            .bind(i64::from(a.external))
            .bind(&a.oidc_subject)
            .bind(a.failed_attempts)
            .bind(a.locked_until)
            .bind(a.enrolling_until)
            .bind(&a.pending_totp_secret)
            .bind(&a.pending_by)
            .bind(a.pending_until)
            .bind(a.credentials_epoch)
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(&mut *tx)
            .await?;
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// The account of `login`, if there is one.
    pub async fn account(&self, login: &str) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = $1");
        Ok(optional_row!(self, sql, login, account_from))
    }

    /// The language `login` chose for the pages, if they chose one.
    pub async fn language(&self, login: &str) -> Result<Option<Language>> {
        let code: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT language FROM preferences WHERE login = $1")
                .bind(login)
                .fetch_optional(p)
                .await?
        });
        Ok(code.as_deref().and_then(Language::from_code))
    }

    /// Keeps the language `login` chose for the pages.
    pub async fn set_language(&self, login: &str, language: Language) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO preferences (login, language) VALUES ($1, $2) \
                 ON CONFLICT (login) DO UPDATE SET language = excluded.language",
            )
            .bind(login)
            .bind(language.code())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Every account, by login.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY login");
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(account_from!(r));
            }
            Ok(out)
        })
    }

    /// Gives a local account a new password and second factor (or, with `enrolling_until` not
    /// 0, a new enrolment code's hash in `password_hash`), enables it, clears its failures and
    /// any enrolment begun, and revokes every credential it holds. An account of the identity
    /// provider's person is not found.
    #[allow(clippy::too_many_arguments)]
    pub async fn reset_account(
        &self,
        login: &str,
        password_hash: &str,
        totp_secret: &[u8],
        enrolling_until: i64,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE accounts SET password_hash = $2, totp_secret = $3, totp_last_step = 0,
                     disabled = 0, failed_attempts = 0, locked_until = 0, enrolling_until = $5,
                     pending_password_hash = NULL, pending_totp_secret = NULL, pending_by = NULL,
                     pending_until = 0, credentials_epoch = credentials_epoch + 1, updated_at = $4
                 WHERE login = $1 AND oidc_subject IS NULL",
            )
            .bind(login)
            .bind(password_hash)
            .bind(totp_secret)
            .bind(at)
            .bind(enrolling_until)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "no local account `{login}` (a person of the identity provider has no password or second factor here: the provider resets them)"
                )));
            }
            revoke_all!(tx, login, at);
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// Disables an account (or enables it again); disabling revokes every credential it holds.
    pub async fn set_account_disabled(
        &self,
        login: &str,
        disabled: bool,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n =
                sqlx::query(
                    "UPDATE accounts SET disabled = $2, updated_at = $3,
                         pending_totp_secret = CASE WHEN $2 = 1 THEN NULL ELSE pending_totp_secret END,
                         pending_password_hash = CASE WHEN $2 = 1 THEN NULL ELSE pending_password_hash END,
                         pending_by = CASE WHEN $2 = 1 THEN NULL ELSE pending_by END
                     WHERE login = $1",
                )
                    .bind(login)
                    .bind(i64::from(disabled))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("no account `{login}`")));
            }
            if disabled {
                revoke_all!(tx, login, at);
            }
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// Counts a sign-in attempt on `login` before its password and code are checked, so that
    /// attempts made side by side are each counted: the account then refuses sign-in for
    /// `lock_for` once `lock_after` attempts in a row failed. A lock that has run out starts the
    /// count again. The account as it now is, or `None` when there is no such login or it is
    /// locked (the caller cannot tell which).
    pub async fn reserve_sign_in(
        &self,
        login: &str,
        now: i64,
        lock_after: i64,
        lock_for: i64,
    ) -> Result<Option<AccountRow>> {
        let sql = format!(
            "UPDATE accounts SET
                 failed_attempts = CASE WHEN locked_until > 0 THEN 1 ELSE failed_attempts + 1 END,
                 locked_until = CASE
                     WHEN (CASE WHEN locked_until > 0 THEN 1 ELSE failed_attempts + 1 END) >= $3 THEN $2 + $4
                     ELSE 0 END,
                 updated_at = $2
             WHERE login = $1 AND locked_until <= $2
             RETURNING {ACCOUNT_COLUMNS}"
        );
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(login)
                .bind(now)
                .bind(lock_after)
                .bind(lock_for)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(account_from!(r))),
                None => Ok(None),
            }
        })
    }

    /// Records a sign-in whose password and code were right: the count of failures goes back
    /// to 0 and `totp_step` becomes the last code accepted. Refused (`Ok(false)`, nothing
    /// changed) when the code's step is not later than the last accepted (a replay), or the
    /// account was reset or disabled, or its second factor replaced, since `password_hash` and
    /// `totp_secret` were read.
    pub async fn sign_in_succeeded(
        &self,
        login: &str,
        totp_step: i64,
        password_hash: &str,
        totp_secret: &[u8],
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let accepted = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE accounts SET failed_attempts = 0, locked_until = 0,
                         totp_last_step = $2, updated_at = $3
                     WHERE login = $1 AND totp_last_step < $2 AND password_hash = $4
                         AND totp_secret = $5 AND disabled = 0",
                )
                .bind(login)
                .bind(totp_step)
                .bind(at)
                .bind(password_hash)
                .bind(totp_secret),
                audit
            )
        });
        Ok(accepted)
    }

    /// Keeps what a person enrolling chose (the password's hash) and was shown (the new second
    /// factor) until they prove it works ([`Store::enrolled`]); a new start replaces it. The
    /// enrolment code was right: the count of failures goes back to 0. Refused
    /// (`Ok(false)`, nothing changed) when the enrolment code has run out or was spent, or the
    /// account was reset or disabled since `code_hash` was read.
    pub async fn enrolment_begun(
        &self,
        login: &str,
        code_hash: &str,
        password_hash: &str,
        totp_secret: &[u8],
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let accepted = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE accounts SET pending_password_hash = $3, pending_totp_secret = $4,
                         failed_attempts = 0, locked_until = 0, updated_at = $5
                     WHERE login = $1 AND password_hash = $2 AND enrolling_until > $5
                         AND disabled = 0 AND oidc_subject IS NULL",
                )
                .bind(login)
                .bind(code_hash)
                .bind(password_hash)
                .bind(totp_secret)
                .bind(at),
                audit
            )
        });
        Ok(accepted)
    }

    /// Records a person's enrolment, proven by a code of the new second factor (of time step
    /// `totp_step`): the password and second factor kept by [`Store::enrolment_begun`] replace
    /// the enrolment code, which is spent, and the count of failures goes back to 0. Refused
    /// (`Ok(false)`, nothing changed) when the code has run out or was spent, nothing was
    /// begun, the second factor begun is not `totp_secret` any more (a new start meanwhile), or
    /// the account was reset or disabled since `code_hash` was read.
    pub async fn enrolled(
        &self,
        login: &str,
        code_hash: &str,
        totp_secret: &[u8],
        totp_step: i64,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let accepted = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE accounts SET password_hash = pending_password_hash,
                         totp_secret = pending_totp_secret, totp_last_step = $4,
                         pending_password_hash = NULL, pending_totp_secret = NULL,
                         enrolling_until = 0, failed_attempts = 0, locked_until = 0,
                         credentials_epoch = credentials_epoch + 1, updated_at = $5
                     WHERE login = $1 AND password_hash = $2 AND pending_totp_secret = $3
                         AND pending_password_hash IS NOT NULL AND enrolling_until > $5
                         AND disabled = 0 AND oidc_subject IS NULL",
                )
                .bind(login)
                .bind(code_hash)
                .bind(totp_secret)
                .bind(totp_step)
                .bind(at),
                audit
            )
        });
        Ok(accepted)
    }

    /// Keeps the second factor a signed-in person was shown to replace theirs until they prove
    /// it works ([`Store::own_credentials_changed`]) with the credential `by` (the one that
    /// began it) before `until`; a new start replaces it. Refused (`Ok(false)`, nothing
    /// changed) when the account was reset, disabled or sent to enrol again since
    /// `password_hash` was read with the person's proof.
    #[allow(clippy::too_many_arguments)]
    pub async fn second_factor_begun(
        &self,
        login: &str,
        password_hash: &str,
        totp_secret: &[u8],
        by: &[u8],
        until: i64,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let accepted = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE accounts SET pending_totp_secret = $3, pending_by = $5,
                         pending_until = $6, updated_at = $4
                     WHERE login = $1 AND password_hash = $2 AND enrolling_until = 0
                         AND disabled = 0 AND oidc_subject IS NULL",
                )
                .bind(login)
                .bind(password_hash)
                .bind(totp_secret)
                .bind(at)
                .bind(by)
                .bind(until),
                audit
            )
        });
        Ok(accepted)
    }

    /// Forgets a second factor begun and not proven (too many wrong codes of it), audited.
    pub async fn forget_second_factor(&self, login: &str, audit: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            sqlx::query(
                "UPDATE accounts SET pending_totp_secret = NULL, pending_by = NULL, pending_until = 0
                 WHERE login = $1 AND enrolling_until = 0",
            )
            .bind(login)
            .execute(&mut *tx)
            .await?;
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// A signed-in person's change of their own credentials, proven with the password whose
    /// hash `password_hash` was read: a new password (which forgets a second factor begun), or
    /// the second factor begun by [`Store::second_factor_begun`], proven by a code of it (of
    /// time step `totp_step`) with the credential `keep` that began it, in time. Every other
    /// browser session of the account ends, and with `tokens` every other personal token; the
    /// credential `keep` (the one the change came with) stays. Refused (`Ok(None)`, nothing
    /// changed) when the account was reset, disabled or sent to enrol again since, or the
    /// second factor begun is not that one any more (begun again, forgotten, run out, begun
    /// elsewhere). `audit` makes the change's events from what ended, which is returned too.
    #[allow(clippy::too_many_arguments)]
    pub async fn own_credentials_changed(
        &self,
        login: &str,
        password_hash: &str,
        change: OwnChange<'_>,
        keep: &[u8],
        tokens: bool,
        at: i64,
        audit: impl FnOnce(Ended) -> Vec<AuditEvent>,
    ) -> Result<Option<Ended>> {
        const PROVEN: &str = "login = $1 AND password_hash = $2 AND enrolling_until = 0
                 AND disabled = 0 AND oidc_subject IS NULL";
        let ended = in_tx!(self, |tx, _b| {
            let changed = match change {
                OwnChange::Password(new_hash) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE accounts SET password_hash = $3, updated_at = $4,
                         pending_totp_secret = NULL, pending_by = NULL, pending_until = 0,
                         credentials_epoch = credentials_epoch + 1
                     WHERE {PROVEN}"
                )))
                .bind(login)
                .bind(password_hash)
                .bind(new_hash)
                .bind(at),
                OwnChange::SecondFactor {
                    totp_secret,
                    totp_step,
                } => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE accounts SET totp_secret = pending_totp_secret, totp_last_step = $5,
                         pending_totp_secret = NULL, pending_by = NULL, pending_until = 0,
                         failed_attempts = 0, locked_until = 0,
                         credentials_epoch = credentials_epoch + 1, updated_at = $4
                     WHERE {PROVEN} AND pending_totp_secret = $3 AND pending_by = $6
                         AND pending_until > $4"
                )))
                .bind(login)
                .bind(password_hash)
                .bind(totp_secret)
                .bind(at)
                .bind(totp_step)
                .bind(keep),
            }
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !changed {
                return Ok(None);
            }
            // A command line's sign-in approved and not yet collected gives no token after.
            deny_approved_grants!(tx, login);
            let ended = Ended {
                sessions: revoke_others!(tx, login, CredentialKind::Session, keep, at),
                tokens: if tokens {
                    revoke_others!(tx, login, CredentialKind::Token, keep, at)
                } else {
                    0
                },
            };
            let events = audit(ended);
            push_audit!(self, tx, &events);
            Some(ended)
        });
        Ok(ended)
    }

    /// Unlocks an account locked after failed sign-ins, without changing its secrets.
    pub async fn unlock_account(&self, login: &str, at: i64, audit: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE accounts SET failed_attempts = 0, locked_until = 0, updated_at = $2 WHERE login = $1",
            )
            .bind(login)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("no account `{login}`")));
            }
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// Stores a new credential, only while its account is enabled and not waiting for its
    /// enrolment, and — with `epoch` — while its credentials are the ones the sign-in it is
    /// issued for was proven with (its `credentials_epoch`: not after a reset, an enrolment or
    /// the person's own change since). Refused (`Ok(false)`, nothing stored) otherwise. The
    /// account's row is held meanwhile, so no change comes between.
    pub async fn put_credential(
        &self,
        c: &CredentialRow,
        epoch: Option<i64>,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let stored = in_tx!(self, |tx, _b| {
            if !hold_account!(tx, &c.login, epoch) {
                return Ok(false);
            }
            insert_credential!(tx, c);
            push_audit!(self, tx, audit);
            true
        });
        Ok(stored)
    }

    /// A new credential `c` in place of `old` (a browser's session renewed after a change of
    /// its person's credentials), in one transaction: only while `old` is not revoked and its
    /// account as [`Store::put_credential`] asks, so a reset, a disabling or a sign-out that
    /// came first is not undone. Refused (`Ok(false)`, nothing changed) otherwise.
    pub async fn replace_credential(
        &self,
        old: &[u8],
        c: &CredentialRow,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let replaced = in_tx!(self, |tx, _b| {
            if !hold_account!(tx, &c.login, None::<i64>) {
                return Ok(false);
            }
            let revoked = sqlx::query(
                "UPDATE credentials SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
            )
            .bind(old)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 0 {
                return Ok(false);
            }
            insert_credential!(tx, c);
            push_audit!(self, tx, audit);
            true
        });
        Ok(replaced)
    }

    /// The credential whose secret hashes to `hash`, revoked or expired included.
    pub async fn credential(&self, hash: &[u8]) -> Result<Option<CredentialRow>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE hash = $1");
        Ok(optional_row!(self, sql, hash, credential_from))
    }

    /// The credentials of `login` of one kind, newest first.
    pub async fn credentials_of(
        &self,
        login: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRow>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE login = $1 AND kind = $2 ORDER BY created_at DESC"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(login)
                .bind(kind.as_str())
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(credential_from!(r));
            }
            Ok(out)
        })
    }

    /// Notes that a credential was used at `at`, and (for a step-up) that its holder proved who
    /// they are again.
    pub async fn touch_credential(
        &self,
        hash: &[u8],
        at: i64,
        reauthenticated: bool,
    ) -> Result<()> {
        let sql = if reauthenticated {
            "UPDATE credentials SET last_used_at = $2, auth_at = $2 WHERE hash = $1"
        } else {
            "UPDATE credentials SET last_used_at = $2 WHERE hash = $1"
        };
        on_pool!(self, |p| {
            sqlx::query(sql).bind(hash).bind(at).execute(p).await?;
        });
        Ok(())
    }

    /// Revokes a credential (a sign-out, a revoked token); `Ok(false)` when it was revoked
    /// already or does not exist.
    pub async fn revoke_credential(
        &self,
        hash: &[u8],
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let revoked = in_tx!(self, |tx, _b| {
            audited_if_changed!(
                self,
                tx,
                sqlx::query(
                    "UPDATE credentials SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
                )
                .bind(hash)
                .bind(at),
                audit
            )
        });
        Ok(revoked)
    }
}

/// Holds the account `$login`'s row inside the transaction `$tx` (no change of it comes
/// between) when it is enabled, not waiting for its enrolment, and — with `$epoch` — its
/// credentials are those of that `credentials_epoch`; whether it is.
macro_rules! hold_account {
    ($tx:expr, $login:expr, $epoch:expr) => {{
        let epoch: Option<i64> = $epoch;
        sqlx::query(
            "UPDATE accounts SET credentials_epoch = credentials_epoch
             WHERE login = $1 AND disabled = 0 AND enrolling_until = 0
                 AND (CAST($2 AS BIGINT) IS NULL OR credentials_epoch = CAST($2 AS BIGINT))",
        )
        .bind($login)
        .bind(epoch)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0
    }};
}
use hold_account;

/// Inserts the credential `$c` inside the transaction `$tx`.
macro_rules! insert_credential {
    ($tx:expr, $c:expr) => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&$c.hash)
        .bind($c.kind.as_str())
        .bind(&$c.login)
        .bind(&$c.issuer)
        .bind(&$c.subject)
        .bind(&$c.label)
        .bind(&$c.csrf_hash)
        .bind($c.created_at)
        .bind($c.auth_at)
        .bind($c.last_used_at)
        .bind($c.expires_at)
        .bind($c.revoked_at)
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use insert_credential;

/// Revokes every credential of `$login` inside the transaction `$tx`, and denies the
/// command-line sign-ins it approved that have not given their token yet (so none is given
/// after the revocation).
macro_rules! revoke_all {
    ($tx:expr, $login:expr, $at:expr) => {{
        deny_approved_grants!($tx, $login);
        sqlx::query(
            "UPDATE credentials SET revoked_at = $2 WHERE login = $1 AND revoked_at IS NULL",
        )
        .bind($login)
        .bind($at)
        .execute(&mut *$tx)
        .await?
    }};
}
use revoke_all;

/// Denies, inside the transaction `$tx`, the command-line sign-ins `$login` approved that have
/// not given their token yet (none is given after).
macro_rules! deny_approved_grants {
    ($tx:expr, $login:expr) => {
        sqlx::query(
            "UPDATE device_grants SET state = 'denied' WHERE login = $1 AND state = 'approved'",
        )
        .bind($login)
        .execute(&mut *$tx)
        .await?
    };
}
use deny_approved_grants;

/// Revokes, inside the transaction `$tx`, `$login`'s credentials of `$kind` but `$keep`; how
/// many.
macro_rules! revoke_others {
    ($tx:expr, $login:expr, $kind:expr, $keep:expr, $at:expr) => {
        sqlx::query(
            "UPDATE credentials SET revoked_at = $2
             WHERE login = $1 AND kind = $4 AND hash <> $3 AND revoked_at IS NULL",
        )
        .bind($login)
        .bind($at)
        .bind($keep)
        .bind($kind.as_str())
        .execute(&mut *$tx)
        .await?
        .rows_affected()
    };
}
use revoke_others;
