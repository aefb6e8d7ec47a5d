//! # studyflow-identity
//!
//! Who acts. Every act of a person on a study (MK403 p.3, p.21, p.25, p.30) is done by an
//! [`Identity`]: a person who proved who they are — a local account's password and a TOTP
//! second factor ([`Accounts::sign_in`]), a session or personal token issued after that
//! ([`Accounts::authenticate`]), or the Service's identity provider. An `Identity` cannot be
//! made any other way outside this crate (but for the `testing` feature's
//! [`Identity::for_tests`]), so the engine's role checks rest on a proof, not on a typed name.
//!
//! The spec binds a person to a login (rule SF142); the engine compares that login with the
//! identity's.
//!
//! Invariants: no password, code or secret is ever stored, logged or audited — only Argon2id
//! hashes of passwords and SHA-256 hashes of session and token secrets; a TOTP code is good
//! once; a disabled or reset account's credentials are revoked with it.

mod accounts;
pub mod devices;
pub mod oidc;
pub mod password;
mod secret;
pub mod totp;

pub use accounts::{Accounts, Authenticated, Enrolment, NOT_THE_NEW_CODE, NewAccount, Policy};
pub use password::{hash_password, verify_password};
pub use secret::Secret;

/// Whether two secrets are equal, in time independent of where they differ.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    secret::same(a, b)
}

/// The issuer of local accounts' identities.
pub const LOCAL_ISSUER: &str = "studyflow:local";

/// A person who proved who they are.
#[derive(Debug, Clone)]
pub struct Identity {
    login: String,
    issuer: String,
    subject: String,
    /// When they last proved it (password and second factor), µs since the epoch.
    auth_at: i64,
    /// A person of the Service (not of an external researcher's team): only such a person acts
    /// in a role of the Service — approver, supervisor, service researcher.
    service: bool,
    /// For a sign-in just proven with a local account's password and code: the account's
    /// `credentials_epoch` it was proven under. A session or token is issued for it only
    /// while that stands (not after a reset or a change of the credentials meanwhile).
    proven_under: Option<i64>,
}

/// The same person with the same proof; how it was proven is not part of who it is.
impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        (
            &self.login,
            &self.issuer,
            &self.subject,
            self.auth_at,
            self.service,
        ) == (
            &other.login,
            &other.issuer,
            &other.subject,
            other.auth_at,
            other.service,
        )
    }
}

impl Eq for Identity {}

impl Identity {
    pub(crate) fn new(
        login: &str,
        issuer: &str,
        subject: &str,
        auth_at: i64,
        service: bool,
    ) -> Identity {
        Identity {
            login: login.to_owned(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            auth_at,
            service,
            proven_under: None,
        }
    }

    /// A sign-in proven under the account's `credentials_epoch` `epoch`.
    pub(crate) fn proven_under(mut self, epoch: i64) -> Identity {
        self.proven_under = Some(epoch);
        self
    }

    /// The account's `credentials_epoch` this sign-in was proven under, if it is one.
    pub(crate) fn epoch(&self) -> Option<i64> {
        self.proven_under
    }

    /// A person of the Service who proved nothing, for tests of what the engine lets a login
    /// do.
    #[cfg(feature = "testing")]
    pub fn for_tests(login: &str) -> Identity {
        Identity::new(login, LOCAL_ISSUER, login, i64::MAX / 2, true)
    }

    /// As [`Identity::for_tests`], a person outside the Service.
    #[cfg(feature = "testing")]
    pub fn for_tests_external(login: &str) -> Identity {
        Identity::new(login, LOCAL_ISSUER, login, i64::MAX / 2, false)
    }

    /// Whether this is a person of the Service, who may act in a role of the Service.
    pub fn is_service(&self) -> bool {
        self.service
    }

    /// The login a spec binds to a person (SF142).
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Who vouches for it: [`LOCAL_ISSUER`] or the identity provider's issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's stable subject identifier.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// When the person last proved who they are (µs since the epoch).
    pub fn auth_at(&self) -> i64 {
        self.auth_at
    }

    /// Whether they proved it within `window_us` of `now` (the acts that need a recent proof:
    /// approve, contract, terminate, release downloads; the window is the engine's).
    pub fn recently_authenticated(&self, now: i64, window_us: i64) -> bool {
        now.saturating_sub(self.auth_at) <= window_us
    }

    /// The audit's actor: the login, and for an identity provider's person also the issuer
    /// and subject that name them there.
    pub fn actor(&self) -> String {
        if self.issuer == LOCAL_ISSUER {
            self.login.clone()
        } else {
            format!("{} ({} {})", self.login, self.issuer, self.subject)
        }
    }
}

/// Why an identity could not be established or an account changed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Wrong login, password or code, a disabled or locked account, a replayed code: one
    /// message for all, so a refusal does not tell which part was wrong or whether the login
    /// exists.
    #[error(
        "sign-in refused: wrong login, password or code, or too many failed attempts (then wait 15 minutes)"
    )]
    Refused,
    /// The identity provider refused, or what it sent did not verify.
    #[error("sign-in through the identity provider refused: {0}")]
    Provider(String),
    /// The identity provider did not answer (or answered nonsense) when asked to confirm a
    /// session: the session is kept, the request is not served.
    #[error("the identity provider does not answer: {0}; try again in a moment")]
    ProviderUnavailable(String),
    /// Too many sign-ins are being checked at once.
    #[error("the server is busy checking other sign-ins; try again in a moment")]
    Busy,
    /// A session or token that is unknown, expired, revoked or of a disabled account.
    #[error("not signed in: the session or token is unknown, expired or revoked; sign in again")]
    Unauthenticated,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] studyflow_store::StoreError),
}

pub type Result<T> = std::result::Result<T, IdentityError>;

/// A login as the spec writes it (SF142's pattern).
pub(crate) fn check_login(login: &str) -> Result<()> {
    let ok = !login.is_empty()
        && login.len() <= 64
        && login.as_bytes()[0].is_ascii_alphanumeric()
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        IdentityError::Invalid(format!(
            "`{login}` is not a login: lowercase letters, digits, `.`, `_`, `@` and `-`, at most 64, starting with a letter or digit (as a spec's `login`)"
        ))
    })
}
