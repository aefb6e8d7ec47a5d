//! Local accounts, sign-in, sessions and personal tokens over the store.

use studyflow_store::{
    AccountRow, AuditEvent, CredentialKind, CredentialRow, Ended, OwnChange, Store,
};

use crate::secret::{self, Secret};
use crate::{Identity, IdentityError, LOCAL_ISSUER, Result, check_login, password, totp};

pub(crate) const MINUTE: i64 = 60_000_000;
pub(crate) const DAY: i64 = 24 * 60 * MINUTE;

/// How long a second factor begun by a signed-in person waits for a code of it.
pub const SECOND_FACTOR_FOR: i64 = 10 * MINUTE;

/// What [`Accounts::confirm_second_factor`] says (as [`IdentityError::Invalid`]) of a code that
/// is not one of the second factor begun, which waits for the next: the pages and the CLI
/// offer to try again on it.
pub const NOT_THE_NEW_CODE: &str = "not a code of the new second factor: type the one the app shows now for the key you were shown last";

/// The limits of sign-in and of credentials.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Consecutive failed sign-ins after which an account refuses sign-in for a while.
    pub lock_after: i64,
    /// How long it then refuses (µs).
    pub lock_for: i64,
    /// A session ends after this long without a request (µs)…
    pub session_idle: i64,
    /// …and this long after sign-in, whatever happens (µs).
    pub session_absolute: i64,
    /// A personal token's life when none is asked for, and the longest (days).
    pub token_days: (i64, i64),
    /// The longest life of a personal token of the identity provider's person (µs): studyflow
    /// cannot ask the provider about a token as it asks about a session, so the token lives
    /// no longer than a session would.
    pub provider_token_life: i64,
    /// How long an enrolment code is good for (µs): the time for the operator's letter to
    /// reach the person.
    pub enrol_for: i64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            lock_after: 5,
            lock_for: 15 * MINUTE,
            session_idle: 30 * MINUTE,
            session_absolute: 12 * 60 * MINUTE,
            token_days: (30, 90),
            provider_token_life: 12 * 60 * MINUTE,
            enrol_for: 7 * DAY,
        }
    }
}

/// A new local account, as `studyflow user add` makes it.
#[derive(Debug)]
pub struct NewAccount {
    pub login: String,
    /// Shown to the person when they sign in; no data of a data subject.
    pub display_name: String,
    /// The TOTP secret to give the person (`otpauth://` URI), once.
    pub totp_secret: Vec<u8>,
}

/// The one-time code with which a person chooses their own password and second factor
/// ([`Accounts::enrol`]), given them by the operator, privately; the store keeps its Argon2id
/// hash only.
#[derive(Debug)]
pub struct Enrolment {
    pub code: Secret,
    /// Until when (µs) it is good.
    pub until: i64,
}

/// A credential presented and found good, with the identity it carries.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub credential: CredentialRow,
}

/// Accounts and credentials on one store.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub(crate) store: Store,
    pub(crate) policy: Policy,
    /// The Service's identity provider, whose people are the Service's.
    provider: Option<String>,
}

pub(crate) fn event(
    at: i64,
    actor: &str,
    action: &str,
    login: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent::new(
        at,
        actor,
        action,
        format!("account/{login}"),
        "p.25.1",
        detail.to_string(),
    )
}

impl Accounts {
    /// Seals the events just written into the audit chain (as the engine does after its
    /// writes), so an account's history is chained, MAC'd and checkpointed at once; the change
    /// stands once committed ([`Store::seal_committed`]).
    pub(crate) async fn seal(&self) -> Result<()> {
        Ok(self.store.seal_committed().await?)
    }

    pub fn new(store: Store, policy: Policy) -> Accounts {
        Accounts {
            store,
            policy,
            provider: None,
        }
    }

    /// With the Service's identity provider (its issuer): the sessions of its people are of
    /// the Service.
    pub fn with_provider(mut self, issuer: &str) -> Accounts {
        self.provider = Some(issuer.to_owned());
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Adds a local account with `password` and a new TOTP secret, returned to give the person.
    /// `external`: a person outside the Service, who never acts in a role of the Service.
    /// `operator` is who adds it (the audit's actor).
    pub async fn add(
        &self,
        login: &str,
        display_name: &str,
        password: &str,
        external: bool,
        operator: &str,
        now: i64,
    ) -> Result<NewAccount> {
        check_new(login, display_name)?;
        let hash = hash_off_thread(password).await?;
        let row = new_row(login, display_name, hash, external, None, now);
        let secret = row.totp_secret.clone();
        self.insert(&row, operator, serde_json::json!({"external": external}))
            .await?;
        Ok(NewAccount {
            login: row.login,
            display_name: row.display_name,
            totp_secret: secret,
        })
    }

    /// Stores a new account, audited as added by `operator` with `detail`, and seals.
    async fn insert(
        &self,
        row: &AccountRow,
        operator: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.store
            .add_account(
                row,
                &[event(
                    row.created_at,
                    operator,
                    "account.added",
                    &row.login,
                    detail,
                )],
            )
            .await?;
        self.seal().await
    }

    /// Gives `login` the password hash `hash` (or an enrolment code's) and the second factor
    /// `secret`, audited as reset by `operator` with `detail`, and seals.
    #[allow(clippy::too_many_arguments)]
    async fn replace(
        &self,
        login: &str,
        hash: &str,
        secret: &[u8],
        enrolling_until: i64,
        operator: &str,
        now: i64,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.store
            .reset_account(
                login,
                hash,
                secret,
                enrolling_until,
                now,
                &[event(now, operator, "account.reset", login, detail)],
            )
            .await?;
        self.seal().await
    }

    /// A new password and second factor for `login`; every session and token it held is
    /// revoked. Returns the new TOTP secret.
    pub async fn reset(
        &self,
        login: &str,
        password: &str,
        operator: &str,
        now: i64,
    ) -> Result<Vec<u8>> {
        let hash = hash_off_thread(password).await?;
        let secret = totp::new_secret();
        self.replace(
            login,
            &hash,
            &secret,
            0,
            operator,
            now,
            serde_json::json!({}),
        )
        .await?;
        Ok(secret)
    }

    /// Adds a local account whose person chooses their own password and second factor at
    /// first sign-in, with the [`Enrolment`] code returned here: the operator is never shown
    /// either. Until then the account signs in with nothing.
    pub async fn add_enrolling(
        &self,
        login: &str,
        display_name: &str,
        external: bool,
        operator: &str,
        now: i64,
    ) -> Result<Enrolment> {
        check_new(login, display_name)?;
        let (enrolment, hash) = self.enrolment(now).await?;
        let mut row = new_row(login, display_name, hash, external, None, now);
        row.enrolling_until = enrolment.until;
        let detail = serde_json::json!({"external": external, "enrolment_until": enrolment.until});
        self.insert(&row, operator, detail).await?;
        Ok(enrolment)
    }

    /// A new enrolment for `login`: its password and second factor are gone, every session and
    /// token it held is revoked, and its person chooses new ones with the code returned.
    pub async fn reset_enrolling(
        &self,
        login: &str,
        operator: &str,
        now: i64,
    ) -> Result<Enrolment> {
        let (enrolment, hash) = self.enrolment(now).await?;
        let detail = serde_json::json!({"enrolment_until": enrolment.until});
        let (secret, until) = (totp::new_secret(), enrolment.until);
        self.replace(login, &hash, &secret, until, operator, now, detail)
            .await?;
        Ok(enrolment)
    }

    /// A new enrolment code and the hash the store keeps of it.
    async fn enrolment(&self, now: i64) -> Result<(Enrolment, String)> {
        let code = Secret::enrolment_code();
        let hash = hash_off_thread(&secret::enrolment_text(code.expose())).await?;
        Ok((
            Enrolment {
                code,
                until: now + self.policy.enrol_for,
            },
            hash,
        ))
    }

    /// The start of a person's enrolment: with the code the operator gave them, they choose
    /// their password (at least [`password::MIN_LENGTH`] characters) and are given a new second
    /// factor, whose secret is returned to show them. Nothing changes for signing in until
    /// they prove it with a code of that second factor ([`Accounts::confirm_enrolment`]); a new
    /// start replaces it. A wrong, spent or expired code is refused as a wrong sign-in is, and
    /// counts towards the account's lock; a password too short is refused before the code is
    /// tried.
    pub async fn begin_enrolment(
        &self,
        login: &str,
        code: &str,
        new_password: &str,
        from: &str,
        now: i64,
    ) -> Result<Vec<u8>> {
        if new_password.chars().count() < password::MIN_LENGTH {
            return Err(IdentityError::Invalid(format!(
                "a password has at least {} characters",
                password::MIN_LENGTH
            )));
        }
        let account = self.enrolling(login, code, from, now).await?;
        let hash = hash_off_thread(new_password).await?;
        let secret = totp::new_secret();
        let begun = self
            .store
            .enrolment_begun(
                login,
                &account.password_hash,
                &hash,
                &secret,
                now,
                &[event(
                    now,
                    "unauthenticated",
                    "account.enrolment_begun",
                    login,
                    serde_json::json!({"from": from}),
                )],
            )
            .await?;
        if !begun {
            return Err(self
                .enrol_refused(login, "the account changed", from, now)
                .await);
        }
        self.seal().await?;
        Ok(secret)
    }

    /// The end of a person's enrolment: a code of the second factor they were shown proves
    /// they keep it; the password and second factor they were given replace the enrolment
    /// code, which is spent. Refused (and counted) for a wrong enrolment code or a wrong code
    /// of the app, and when nothing was begun or it was begun again since (its second factor
    /// is not that one any more).
    pub async fn confirm_enrolment(
        &self,
        login: &str,
        code: &str,
        app_code: &str,
        from: &str,
        now: i64,
    ) -> Result<()> {
        let account = self.enrolling(login, code, from, now).await?;
        let Some(secret) = account.pending_totp_secret.clone() else {
            return Err(self.enrol_refused(login, "not begun", from, now).await);
        };
        let Some(step) =
            totp::matching_step(&secret, app_code, totp::step_of(now.div_euclid(1_000_000)))
        else {
            return Err(self
                .enrol_refused(login, "wrong code of the app", from, now)
                .await);
        };
        let enrolled = self
            .store
            .enrolled(
                login,
                &account.password_hash,
                &secret,
                step,
                now,
                &[event(
                    now,
                    login,
                    "account.enrolled",
                    login,
                    serde_json::json!({"from": from}),
                )],
            )
            .await?;
        if !enrolled {
            return Err(self
                .enrol_refused(login, "begun again, or the account changed", from, now)
                .await);
        }
        self.seal().await
    }

    /// The account of `login` when it waits for its enrolment and `code` is its enrolment
    /// code: the attempt counted first (as a sign-in's), an unknown or locked login refused
    /// after as long, each refusal audited with its reason.
    async fn enrolling(&self, login: &str, code: &str, from: &str, now: i64) -> Result<AccountRow> {
        let typed = secret::enrolment_text(code);
        let (account, code_ok) = self.attempt(login, &typed, now).await?;
        let reason = match (account.disabled, account.enrolling_until, code_ok) {
            _ if account.oidc_subject.is_some() => "signs in at the identity provider",
            (true, _, _) => "disabled",
            (false, 0, _) => "enrolled already",
            (false, until, _) if until <= now => "enrolment code expired",
            (false, _, false) => "wrong enrolment code",
            (false, _, true) => return Ok(account),
        };
        Err(self.enrol_refused(login, reason, from, now).await)
    }

    /// Audits a refused enrolment with its reason; the refusal to answer (or the store's
    /// error).
    async fn enrol_refused(
        &self,
        login: &str,
        reason: &str,
        from: &str,
        now: i64,
    ) -> IdentityError {
        match self
            .store
            .append_audit(&[event(
                now,
                "unauthenticated",
                "account.enrol_refused",
                login,
                serde_json::json!({"reason": reason, "from": from}),
            )])
            .await
        {
            Ok(()) => IdentityError::Refused,
            Err(e) => e.into(),
        }
    }

    /// Disables `login` (revoking its sessions and tokens), or enables it again.
    pub async fn set_disabled(
        &self,
        login: &str,
        disabled: bool,
        operator: &str,
        now: i64,
    ) -> Result<()> {
        let action = if disabled {
            "account.disabled"
        } else {
            "account.enabled"
        };
        self.store
            .set_account_disabled(
                login,
                disabled,
                now,
                &[event(now, operator, action, login, serde_json::json!({}))],
            )
            .await?;
        self.seal().await?;
        Ok(())
    }

    /// Registers a person who signs in at the Service's identity provider: `login` (the one
    /// specs bind) for the provider's `subject` (`sub`). Only a registered subject signs in
    /// there, and only as its login: a username chosen at the provider binds nothing.
    /// `external`: a person outside the Service.
    pub async fn add_oidc(
        &self,
        login: &str,
        display_name: &str,
        subject: &str,
        external: bool,
        operator: &str,
        now: i64,
    ) -> Result<()> {
        check_login(login)?;
        if subject.trim().is_empty() {
            return Err(IdentityError::Invalid(
                "the provider's subject is empty".into(),
            ));
        }
        // No password of its own: no Argon2 string is `!`, so none verifies.
        let row = new_row(
            login,
            display_name,
            "!".to_owned(),
            external,
            Some(subject.to_owned()),
            now,
        );
        let detail = serde_json::json!({"external": external, "identity_provider": true});
        self.insert(&row, operator, detail).await
    }

    /// A person signed in at the identity provider: the verified token's login must be an
    /// account registered for exactly that subject, and enabled.
    pub async fn sign_in_oidc(
        &self,
        verified: &crate::oidc::Verified,
        from: &str,
        now: i64,
    ) -> Result<Identity> {
        let login = verified.login()?;
        let account = self.store.account(login).await?;
        let bound = account
            .as_ref()
            .is_some_and(|a| !a.disabled && a.oidc_subject.as_deref() == Some(verified.subject()));
        if !bound || self.provider.as_deref() != Some(verified.issuer()) {
            self.store
                .append_audit(&[event(
                    now,
                    "unauthenticated",
                    "account.sign_in_refused",
                    login,
                    serde_json::json!({"reason": "not registered for this subject of the identity provider", "from": from}),
                )])
                .await?;
            return Err(IdentityError::Provider(format!(
                "`{login}` is not registered for this person of the identity provider; the operator registers them (`studyflow user add {login} --oidc-subject …`)"
            )));
        }
        let service = account.is_some_and(|a| !a.external);
        let who = crate::oidc::identity_of(verified, now, service)?;
        self.store
            .append_audit(&[event(
                now,
                &who.actor(),
                "account.signed_in",
                login,
                serde_json::json!({"from": from, "identity_provider": verified.issuer()}),
            )])
            .await?;
        Ok(who)
    }

    /// Lets an account locked after failed sign-ins sign in again, its secrets unchanged.
    pub async fn unlock(&self, login: &str, operator: &str, now: i64) -> Result<()> {
        self.store
            .unlock_account(
                login,
                now,
                &[event(
                    now,
                    operator,
                    "account.unlocked",
                    login,
                    serde_json::json!({}),
                )],
            )
            .await?;
        self.seal().await
    }

    /// A token's life in days, as asked for: the policy's default when `None`; refused beyond
    /// its longest. Checked before the sign-in that would issue it, which uses up a code.
    pub fn token_days(&self, days: Option<i64>) -> Result<i64> {
        let (default, max) = self.policy.token_days;
        let days = days.unwrap_or(default);
        if (1..=max).contains(&days) {
            Ok(days)
        } else {
            Err(IdentityError::Invalid(format!(
                "a token lives 1 to {max} days, not {days}"
            )))
        }
    }

    /// Every local account.
    pub async fn list(&self) -> Result<Vec<AccountRow>> {
        Ok(self.store.accounts().await?)
    }

    /// An attempt on `login` with `typed` (a password, or an enrolment code), counted before it
    /// is checked so attempts side by side cannot slip past the lockout: the account and
    /// whether `typed` matches its hash. An unknown login and a locked one are refused alike,
    /// after as long (a decoy hash checked).
    async fn attempt(&self, login: &str, typed: &str, now: i64) -> Result<(AccountRow, bool)> {
        let reserved = self
            .store
            .reserve_sign_in(login, now, self.policy.lock_after, self.policy.lock_for)
            .await?;
        let Some(account) = reserved else {
            let _ = verify_off_thread(typed, password::decoy().to_owned()).await?;
            return Err(IdentityError::Refused);
        };
        let matches = verify_off_thread(typed, account.password_hash.clone()).await?;
        Ok((account, matches))
    }

    /// Signs in with a password and a TOTP code; `from` (the client's address, or `cli`) is
    /// audited with the outcome. A code is accepted once.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        code: &str,
        from: &str,
        now: i64,
    ) -> Result<Identity> {
        Ok(self.prove(login, password, code, None, from, now).await?.0)
    }

    /// [`Accounts::sign_in`] — or, for `again` (the person signed in), a proof of who they are
    /// again, audited as theirs (`account.proven`, `account.proof_refused`) — with the
    /// password hash the proof was checked against (what a change that follows it holds the
    /// account to).
    async fn prove(
        &self,
        login: &str,
        password: &str,
        code: &str,
        again: Option<&Identity>,
        from: &str,
        now: i64,
    ) -> Result<(Identity, String)> {
        let (account, password_ok) = self.attempt(login, password, now).await?;
        let (actor, proven, refused_action) = match again {
            None => (
                "unauthenticated".to_owned(),
                "account.signed_in",
                "account.sign_in_refused",
            ),
            Some(who) => (who.actor(), "account.proven", "account.proof_refused"),
        };
        let step = totp::matching_step(
            &account.totp_secret,
            code,
            totp::step_of(now.div_euclid(1_000_000)),
        );
        // A sign-in's attempt is an unauthenticated one: its actor is not the account's holder.
        let refused = |reason: &str| {
            event(
                now,
                &actor,
                refused_action,
                login,
                serde_json::json!({"reason": reason, "from": from}),
            )
        };
        let reason = match (account.disabled, password_ok, step) {
            _ if account.oidc_subject.is_some() => Some("signs in at the identity provider"),
            _ if account.enrolling_until != 0 => Some("not enrolled yet"),
            (true, _, _) => Some("disabled"),
            (false, false, _) => Some("wrong password"),
            (false, true, None) => Some("wrong code"),
            (false, true, Some(_)) => None,
        };
        if let (None, Some(step)) = (reason, step) {
            let accepted = self
                .store
                .sign_in_succeeded(
                    login,
                    step,
                    &account.password_hash,
                    &account.totp_secret,
                    now,
                    &[event(
                        now,
                        login,
                        proven,
                        login,
                        serde_json::json!({"from": from}),
                    )],
                )
                .await?;
            if accepted {
                self.seal().await?;
                return Ok((
                    Identity::new(login, LOCAL_ISSUER, login, now, !account.external)
                        .proven_under(account.credentials_epoch),
                    account.password_hash,
                ));
            }
        }
        // A code used before (or a later one was), or an account reset or disabled meanwhile,
        // is refused as the rest: the attempt stays counted.
        self.store
            .append_audit(&[refused(
                reason.unwrap_or("code used before, or the account changed"),
            )])
            .await?;
        Err(IdentityError::Refused)
    }

    /// A new browser session for `who`: the session secret (the cookie) and its CSRF token.
    pub async fn open_session(
        &self,
        who: &Identity,
        client: &str,
        now: i64,
    ) -> Result<(Secret, Secret)> {
        let session = Secret::random("sfs_");
        let csrf = Secret::random("");
        self.put(
            who,
            CredentialKind::Session,
            &session,
            Some(csrf.hash()),
            client,
            now,
            now + self.policy.session_absolute,
        )
        .await?;
        Ok((session, csrf))
    }

    /// A new browser session in place of `held` (after the person changed their credentials,
    /// so a copy of the old cookie is worth nothing): the same person and proof time (as the
    /// store has it now), ending when the old one would have; the old one revoked. The new
    /// session's secret, its CSRF token, and until when it lives.
    pub async fn renew_session(
        &self,
        held: &Authenticated,
        client: &str,
        now: i64,
    ) -> Result<(Secret, Secret, i64)> {
        // Read for its proof time and end; whether it still stands is the store's to say, in
        // the transaction that replaces it.
        let Some(old) = self.store.credential(&held.credential.hash).await? else {
            return Err(IdentityError::Unauthenticated);
        };
        if old.kind != CredentialKind::Session {
            return Err(IdentityError::Unauthenticated);
        }
        let who = Identity::new(
            &old.login,
            &old.issuer,
            &old.subject,
            old.auth_at,
            held.identity.is_service(),
        );
        let session = Secret::random("sfs_");
        let csrf = Secret::random("");
        let (row, opened) = credential(
            &who,
            CredentialKind::Session,
            &session,
            Some(csrf.hash()),
            client,
            now,
            old.expires_at,
        );
        let closed = event(
            now,
            &who.actor(),
            "session.closed",
            who.login(),
            serde_json::json!({"credential": hex_prefix(&old.hash), "renewed": hex_prefix(&row.hash)}),
        );
        // One transaction: a reset, a disabling or a sign-out that came first is not undone.
        if !self
            .store
            .replace_credential(&old.hash, &row, &[closed, opened])
            .await?
        {
            return Err(IdentityError::Unauthenticated);
        }
        self.seal().await?;
        Ok((session, csrf, old.expires_at))
    }

    /// A new personal token for `who`, living `days` (the policy's default when `None`, at most
    /// its longest).
    pub async fn issue_token(
        &self,
        who: &Identity,
        label: &str,
        days: Option<i64>,
        now: i64,
    ) -> Result<(Secret, CredentialRow)> {
        let days = self.token_days(days)?;
        let token = Secret::random("sfp_");
        let row = self
            .put(
                who,
                CredentialKind::Token,
                &token,
                None,
                label,
                now,
                now + days * DAY,
            )
            .await?;
        Ok((token, row))
    }

    #[allow(clippy::too_many_arguments)]
    async fn put(
        &self,
        who: &Identity,
        kind: CredentialKind,
        secret: &Secret,
        csrf_hash: Option<Vec<u8>>,
        label: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<CredentialRow> {
        let (row, opened) = credential(who, kind, secret, csrf_hash, label, now, expires_at);
        // A sign-in's credential only while the password and second factor it was proven with
        // stand: a reset or a change of them meanwhile leaves nothing issued.
        if !self
            .store
            .put_credential(&row, who.epoch(), &[opened])
            .await?
        {
            return Err(IdentityError::Refused);
        }
        self.seal().await?;
        Ok(row)
    }

    /// The identity a presented session or token carries, if it is good: known, of this kind,
    /// not revoked, not expired, not idle too long (a session), and of an enabled account.
    pub async fn authenticate(
        &self,
        kind: CredentialKind,
        presented: &str,
        now: i64,
    ) -> Result<Authenticated> {
        let hash = secret::hash(presented);
        let Some(c) = self.store.credential(&hash).await? else {
            return Err(IdentityError::Unauthenticated);
        };
        let idle =
            kind == CredentialKind::Session && now - c.last_used_at > self.policy.session_idle;
        if c.kind != kind || c.revoked_at.is_some() || c.expires_at <= now || idle {
            return Err(IdentityError::Unauthenticated);
        }
        // A local account must still be enabled; whether it is the Service's is read now.
        let service = if c.issuer == LOCAL_ISSUER {
            match self.store.account(&c.login).await? {
                Some(a) if !a.disabled && a.enrolling_until == 0 => !a.external,
                _ => return Err(IdentityError::Unauthenticated),
            }
        } else {
            // Of the Service's identity provider, or of no provider this server trusts now.
            if self.provider.as_deref() != Some(c.issuer.as_str()) {
                return Err(IdentityError::Unauthenticated);
            }
            // Still registered to the login for this subject, and enabled.
            match self.store.account(&c.login).await? {
                Some(a) if !a.disabled && a.oidc_subject.as_deref() == Some(c.subject.as_str()) => {
                    !a.external
                }
                _ => return Err(IdentityError::Unauthenticated),
            }
        };
        // Noted at most once a minute (the idle timeout's grain): a request is then a read.
        if now - c.last_used_at >= MINUTE {
            self.store.touch_credential(&hash, now, false).await?;
        }
        Ok(Authenticated {
            identity: Identity::new(&c.login, &c.issuer, &c.subject, c.auth_at, service),
            credential: c,
        })
    }

    /// Whether `presented` is the CSRF token of the session `c`.
    pub fn csrf_matches(c: &CredentialRow, presented: &str) -> bool {
        c.csrf_hash
            .as_deref()
            .is_some_and(|h| secret::same(h, &secret::hash(presented)))
    }

    /// Proves again who holds the credential (password and code), for the acts that need a
    /// recent proof; returns the identity with its new proof time.
    pub async fn step_up(
        &self,
        held: &Authenticated,
        password: &str,
        code: &str,
        from: &str,
        now: i64,
    ) -> Result<Identity> {
        if held.identity.issuer() != LOCAL_ISSUER {
            return Err(IdentityError::Invalid(
                "a person of the identity provider proves it again by signing in there".into(),
            ));
        }
        let (fresh, _) = self.proven_again(held, password, code, from, now).await?;
        Ok(fresh)
    }

    /// A signed-in person's own new password, proven with their password and a code (the
    /// proof counts as [`Accounts::step_up`]'s). Their other browser sessions end — and their
    /// other personal tokens with `revoke_tokens` — and a second factor begun and not proven is
    /// forgotten; the session or token the change came with stays. Returns what ended.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_password(
        &self,
        held: &Authenticated,
        password: &str,
        code: &str,
        new_password: &str,
        revoke_tokens: bool,
        from: &str,
        now: i64,
    ) -> Result<Ended> {
        own_account(held)?;
        if new_password.chars().count() < password::MIN_LENGTH {
            return Err(IdentityError::Invalid(format!(
                "a password has at least {} characters",
                password::MIN_LENGTH
            )));
        }
        if new_password == password {
            return Err(IdentityError::Invalid(
                "the new password is the one you have".into(),
            ));
        }
        let (_, hash) = self.proven_again(held, password, code, from, now).await?;
        let new_hash = hash_off_thread(new_password).await?;
        self.own_change(
            held,
            &hash,
            OwnChange::Password(&new_hash),
            revoke_tokens,
            "account.password_changed",
            from,
            now,
        )
        .await
    }

    /// The start of a signed-in person's replacement of their second factor (a new phone),
    /// proven with their password and a code of the one they have: a new second factor, whose
    /// secret is returned to show them. Nothing changes for signing in until they prove it
    /// with a code of it, from the same session or token, within [`SECOND_FACTOR_FOR`]
    /// ([`Accounts::confirm_second_factor`]); a new start replaces it.
    pub async fn begin_second_factor(
        &self,
        held: &Authenticated,
        password: &str,
        code: &str,
        from: &str,
        now: i64,
    ) -> Result<Vec<u8>> {
        own_account(held)?;
        let login = held.identity.login();
        let (_, hash) = self.proven_again(held, password, code, from, now).await?;
        let secret = totp::new_secret();
        let until = now + SECOND_FACTOR_FOR;
        let begun = self
            .store
            .second_factor_begun(
                login,
                &hash,
                &secret,
                &held.credential.hash,
                until,
                now,
                &[event(
                    now,
                    &held.identity.actor(),
                    "account.second_factor_begun",
                    login,
                    serde_json::json!({"from": from, "until": until}),
                )],
            )
            .await?;
        if !begun {
            return Err(IdentityError::Refused);
        }
        self.seal().await?;
        Ok(secret)
    }

    /// The end of a second factor's replacement: a code of the one begun, from the session or
    /// token that began it and in time, proves the person keeps it, and it replaces the one
    /// they had. Their other browser sessions end (and their other personal tokens with
    /// `revoke_tokens`), as at a new password. Each code is counted as a sign-in attempt is:
    /// wrong ones lock the account as wrong passwords do, and forget the second factor begun.
    /// Invalid when nothing waits for this credential, and for a wrong code (each audited);
    /// refused when the account is locked, or changed meanwhile. Returns what ended.
    pub async fn confirm_second_factor(
        &self,
        held: &Authenticated,
        app_code: &str,
        revoke_tokens: bool,
        from: &str,
        now: i64,
    ) -> Result<Ended> {
        own_account(held)?;
        let login = held.identity.login();
        let refused = |reason: &str| {
            event(
                now,
                &held.identity.actor(),
                "account.second_factor_refused",
                login,
                serde_json::json!({"reason": reason, "from": from}),
            )
        };
        // Counted before it is checked, as a sign-in is.
        let Some(account) = self
            .store
            .reserve_sign_in(login, now, self.policy.lock_after, self.policy.lock_for)
            .await?
        else {
            self.store.append_audit(&[refused("locked")]).await?;
            return Err(IdentityError::Refused);
        };
        let waiting = account.pending_totp_secret.clone().filter(|_| {
            account.enrolling_until == 0
                && account.pending_until > now
                && account
                    .pending_by
                    .as_deref()
                    .is_some_and(|by| secret::same(by, &held.credential.hash))
        });
        let Some(secret) = waiting else {
            self.store
                .append_audit(&[refused("none begun by this session or token, or run out")])
                .await?;
            return Err(IdentityError::Invalid(
                "no new second factor begun by this session or token waits for its code (they wait 10 minutes): begin again".into(),
            ));
        };
        let Some(step) =
            totp::matching_step(&secret, app_code, totp::step_of(now.div_euclid(1_000_000)))
        else {
            if account.locked_until > now {
                // The last attempt before the lock: the second factor begun is forgotten.
                self.store
                    .forget_second_factor(login, &[refused("wrong code of the app; forgotten")])
                    .await?;
                self.seal().await?;
                return Err(IdentityError::Refused);
            }
            self.store
                .append_audit(&[refused("wrong code of the app")])
                .await?;
            return Err(IdentityError::Invalid(NOT_THE_NEW_CODE.into()));
        };
        self.own_change(
            held,
            &account.password_hash,
            OwnChange::SecondFactor {
                totp_secret: &secret,
                totp_step: step,
            },
            revoke_tokens,
            "account.second_factor_replaced",
            from,
            now,
        )
        .await
    }

    /// The person's password and code checked again, as a [`Accounts::step_up`] (their
    /// credential's proof renewed): the password hash it was checked against.
    async fn proven_again(
        &self,
        held: &Authenticated,
        password: &str,
        code: &str,
        from: &str,
        now: i64,
    ) -> Result<(Identity, String)> {
        let proven = self
            .prove(
                held.identity.login(),
                password,
                code,
                Some(&held.identity),
                from,
                now,
            )
            .await?;
        self.store
            .touch_credential(&held.credential.hash, now, true)
            .await?;
        Ok(proven)
    }

    /// Records a person's change of their own credentials, audited as `action` with what it
    /// ended, and seals; refused when the account changed since `hash` was read.
    #[allow(clippy::too_many_arguments)]
    async fn own_change(
        &self,
        held: &Authenticated,
        hash: &str,
        change: OwnChange<'_>,
        revoke_tokens: bool,
        action: &str,
        from: &str,
        now: i64,
    ) -> Result<Ended> {
        let login = held.identity.login();
        let kept = hex_prefix(&held.credential.hash);
        let Some(ended) = self
            .store
            .own_credentials_changed(
                login,
                hash,
                change,
                &held.credential.hash,
                revoke_tokens,
                now,
                |ended| {
                    vec![event(
                        now,
                        &held.identity.actor(),
                        action,
                        login,
                        serde_json::json!({
                            "from": from,
                            "kept": kept,
                            "sessions_ended": ended.sessions,
                            "tokens_revoked": ended.tokens,
                        }),
                    )]
                },
            )
            .await?
        else {
            return Err(IdentityError::Refused);
        };
        self.seal().await?;
        Ok(ended)
    }

    /// Revokes a credential held by `who` (sign-out, a revoked token). A credential of another
    /// login is not found.
    pub async fn revoke(&self, who: &Identity, hash: &[u8], now: i64) -> Result<()> {
        match self.store.credential(hash).await? {
            Some(c) if c.login == who.login() && c.issuer == who.issuer() => {
                let action = match c.kind {
                    CredentialKind::Session => "session.closed",
                    CredentialKind::Token => "token.revoked",
                };
                self.store
                    .revoke_credential(
                        hash,
                        now,
                        &[event(
                            now,
                            &who.actor(),
                            action,
                            who.login(),
                            serde_json::json!({"credential": hex_prefix(hash)}),
                        )],
                    )
                    .await?;
                self.seal().await?;
                Ok(())
            }
            _ => Err(IdentityError::Invalid(
                "no such session or token of yours".into(),
            )),
        }
    }

    /// Ends a session the identity provider no longer vouches for ([`crate::oidc::Standing`]):
    /// revoked, with the provider as the actor and its reason in the audit.
    pub async fn end_session(&self, held: &Authenticated, why: &str, now: i64) -> Result<()> {
        let who = &held.identity;
        self.store
            .revoke_credential(
                &held.credential.hash,
                now,
                &[event(
                    now,
                    &format!("identity provider {}", who.issuer()),
                    "session.ended",
                    who.login(),
                    serde_json::json!({"credential": hex_prefix(&held.credential.hash), "reason": why}),
                )],
            )
            .await?;
        self.seal().await
    }

    /// The personal tokens of `who`, newest first.
    pub async fn tokens(&self, who: &Identity) -> Result<Vec<CredentialRow>> {
        Ok(self
            .store
            .credentials_of(who.login(), CredentialKind::Token)
            .await?)
    }
}

/// A local account's own credentials, which only its holder changes here; a person of the
/// identity provider changes them there.
fn own_account(held: &Authenticated) -> Result<()> {
    if held.identity.issuer() == LOCAL_ISSUER {
        Ok(())
    } else {
        Err(IdentityError::Invalid(
            "a person of the identity provider changes their password and second factor there"
                .into(),
        ))
    }
}

/// A login as specs bind it, and a display name that is not blank.
fn check_new(login: &str, display_name: &str) -> Result<()> {
    check_login(login)?;
    if display_name.trim().is_empty() {
        return Err(IdentityError::Invalid(
            "an account needs a display name".into(),
        ));
    }
    Ok(())
}

/// A new, enabled account with a new TOTP secret.
fn new_row(
    login: &str,
    display_name: &str,
    password_hash: String,
    external: bool,
    oidc_subject: Option<String>,
    now: i64,
) -> AccountRow {
    AccountRow {
        login: login.to_owned(),
        display_name: display_name.trim().to_owned(),
        password_hash,
        totp_secret: totp::new_secret(),
        totp_last_step: 0,
        disabled: false,
        external,
        oidc_subject,
        failed_attempts: 0,
        locked_until: 0,
        enrolling_until: 0,
        pending_totp_secret: None,
        pending_by: None,
        pending_until: 0,
        credentials_epoch: 0,
        created_at: now,
        updated_at: now,
    }
}

/// The first bytes of a credential's hash, naming it in the audit and in listings without
/// revealing it.
/// The stored form of a new credential of `who` for `secret`, and the audit event of its
/// opening (`session.opened`, `token.issued`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn credential(
    who: &Identity,
    kind: CredentialKind,
    secret: &Secret,
    csrf_hash: Option<Vec<u8>>,
    label: &str,
    now: i64,
    expires_at: i64,
) -> (CredentialRow, AuditEvent) {
    let row = CredentialRow {
        hash: secret.hash(),
        kind,
        login: who.login().to_owned(),
        issuer: who.issuer().to_owned(),
        subject: who.subject().to_owned(),
        label: label.chars().take(80).collect(),
        csrf_hash,
        created_at: now,
        auth_at: who.auth_at(),
        last_used_at: now,
        expires_at,
        revoked_at: None,
    };
    let action = match kind {
        CredentialKind::Session => "session.opened",
        CredentialKind::Token => "token.issued",
    };
    let opened = event(
        now,
        &who.actor(),
        action,
        who.login(),
        serde_json::json!({
            "credential": hex_prefix(&row.hash),
            "label": row.label,
            "expires_at": expires_at,
        }),
    );
    (row, opened)
}

pub fn hex_prefix(hash: &[u8]) -> String {
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Argon2id takes 64 MiB and a core for a fifth of a second: at most this many run at once,
/// whatever the number of requests (a flood of sign-ins would otherwise take all memory).
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores.clamp(1, 4))
    })
}

/// A slot for Argon2id, waited for at most 10 s.
async fn argon2_slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), argon2_slots().acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(IdentityError::Busy),
    }
}

async fn hash_off_thread(password: &str) -> Result<String> {
    let _slot = argon2_slot().await?;
    let p = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || password::hash_password(&p))
        .await
        .map_err(|e| IdentityError::Invalid(format!("password hashing stopped: {e}")))?
}

async fn verify_off_thread(password: &str, stored: String) -> Result<bool> {
    let _slot = argon2_slot().await?;
    let p = zeroize::Zeroizing::new(password.to_owned());
    Ok(
        tokio::task::spawn_blocking(move || password::verify_password(&p, &stored))
            .await
            .unwrap_or(false),
    )
}
