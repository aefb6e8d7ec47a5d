//! Sign-in through the Service's identity provider: OpenID Connect, authorization code flow
//! with PKCE (RFC 7636, S256), a confidential client (`client_secret_basic`). The provider is
//! found by discovery; its ID tokens are verified here — RS256 signature against its JWKS,
//! issuer, audience, expiry (on the engine's clock), nonce — before an [`Identity`] is made of
//! them: login `preferred_username` (the login specs bind, SF142), issuer, subject.
//!
//! What sign-ins need kept is in the store, shared by every server of an installation, so
//! several servers can stand behind one address without sticky sessions: a pending sign-in
//! (state, nonce, PKCE verifier; 10 minutes, used once) is finished by whichever server the
//! provider's answer reaches, and a back-channel logout received by any ends the session at all.
//!
//! A session opened on the provider's word lasts only as long as the provider keeps vouching
//! for the person: every [`RECONFIRM_EVERY`] a server asks again with the refresh token kept
//! for the session — in the store sealed with ChaCha20-Poly1305 under a key derived from the
//! client secret, which the database does not hold, and bound to its session — one server at a
//! time, so a rotated refresh token is never sent twice; a provider that refuses — the person
//! disabled or removed there, their grant revoked, their session at the provider ended — ends
//! the session. Signing out revokes the refresh token at the provider (RFC 7009) and names the
//! provider's sign-out page (RP-Initiated Logout).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use studyflow_store::{OidcSessionRow, OidcSignInRow, Store};
use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::{Identity, IdentityError, Result};

/// How long a person has to sign in at the provider (µs).
const PENDING_FOR: i64 = 10 * 60 * 1_000_000;
/// At most this many sign-ins pending at once (the oldest are dropped).
const MAX_PENDING: i64 = 10_000;
/// How often a session of the provider's person is confirmed with the provider (µs).
pub const RECONFIRM_EVERY: i64 = 5 * 60 * 1_000_000;
/// Grants held longer than this are forgotten (µs): no session lives as long.
const HELD_AT_MOST: i64 = 13 * 60 * 60 * 1_000_000;
/// How long a server may take to ask the provider again before another may (µs); meanwhile
/// the session's other requests go on on the provider's last word, if it is no older than
/// [`RECONFIRM_EVERY`] and this. Longer than an ask may take ([`ASK_AT_MOST`]).
const CONFIRMING_FOR: i64 = 60 * 1_000_000;
/// The longest an ask of the provider may take, keys read again included.
const ASK_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);
/// How far the servers' clocks may disagree (µs): a confirmation dated further ahead than this
/// is due at once. The servers of an installation keep their clocks in step (NTP).
const CLOCKS_AGREE_WITHIN: i64 = 60 * 1_000_000;
/// The sealing's format, the first byte of a seal.
const SEAL_VERSION: u8 = 1;

/// The installation's client at the provider.
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document states it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The client's secrets before this one, while the provider changes over: the sessions
    /// sealed under one of them still open, and are sealed again under the current secret at
    /// their next confirmation (within 5 minutes of use). Drop them once every session of the
    /// old secret has been confirmed or has ended (12 hours at most).
    pub previous_client_secrets: Vec<String>,
    /// This server's callback, as registered at the provider
    /// (`https://…/api/v1/oidc/callback`).
    pub redirect_uri: String,
    /// The scopes asked for ([`DEFAULT_SCOPE`]; with `offline_access` for a provider that
    /// gives a refresh token only then).
    pub scope: String,
    /// The authentication context classes the Service accepts (the provider's names for, say,
    /// a sign-in with a second factor): asked for at sign-in (`acr_values`), and an ID token
    /// whose `acr` is none of them is refused. Empty: not asked, not checked.
    pub acr_values: Vec<String>,
    /// Authentication methods (RFC 8176: `otp`, `hwk`, `mfa`, …) of which the sign-in must
    /// have used at least one, by the ID token's `amr`: for a provider that says how it
    /// signed the person in by method rather than by class (MK403 p.33.3 speaks of
    /// multi-factor authentication). Empty: not checked.
    pub amr_values: Vec<String>,
}

/// Everything but the client's secrets.
impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("acr_values", &self.acr_values)
            .field("amr_values", &self.amr_values)
            .finish_non_exhaustive()
    }
}

/// The scopes asked for unless configured: the ID token with `preferred_username`.
pub const DEFAULT_SCOPE: &str = "openid profile";

/// What discovery says of the provider.
#[derive(Debug, Clone, serde::Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    /// Whether the provider takes the `claims` request parameter (absent: it does not,
    /// OpenID Connect Discovery §3).
    #[serde(default)]
    claims_parameter_supported: bool,
}

/// The provider's word on a session's person, asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Still vouched for (within [`RECONFIRM_EVERY`], or just now).
    Vouched,
    /// No longer: why, in words for the person.
    Ended(String),
}

/// The claims of an ID token that studyflow reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The provider's session the sign-in belongs to (for its back-channel logout).
    #[serde(default)]
    pub sid: Option<String>,
    /// How the provider signed the person in (its authentication context class).
    #[serde(default)]
    pub acr: Option<String>,
    /// The methods the provider used to sign the person in (RFC 8176): an array, or one
    /// method as a string from a provider that sends it so.
    #[serde(default, deserialize_with = "one_or_many")]
    pub amr: Option<Vec<String>>,
    /// When the provider last proved who the person is (seconds since the epoch): required,
    /// as the sign-in asks with `max_age=0` ([`fresh_proof`]).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// When the provider issued the token (seconds since the epoch).
    #[serde(default)]
    pub iat: Option<i64>,
}

/// `amr` as an array of methods, or one method as a string.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<String>>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Said {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match <Option<Said> as serde::Deserialize>::deserialize(d)? {
            None => None,
            Some(Said::One(m)) => Some(vec![m]),
            Some(Said::Many(m)) => Some(m),
        },
    )
}

/// Leeway for the provider's own clock between the sign-in and the token (seconds).
const SKEW_SECONDS: i64 = 60;

/// Whether the provider proved who the person is during this very sign-in: `auth_time` given,
/// no earlier before its token was issued (`iat`) than this sign-in has taken here
/// (`elapsed`, µs, from sending the person there to now, on this server's clock) and a
/// minute's leeway, nor after it. Each clock is compared only with itself: the provider's
/// `auth_time` with its `iat`, this server's start with its now. A sign-in is a proof of
/// identity for the acts that need a recent one (approve, contract, terminate, downloads;
/// MK403 p.25.3), so a provider that answers `prompt=login` from an earlier session —
/// ignoring it, or a session fixed long ago — is refused, not trusted to have asked again.
pub fn fresh_proof(auth_time: Option<i64>, iat: Option<i64>, elapsed: i64) -> Result<()> {
    let Some(at) = auth_time else {
        return Err(refused(
            "the identity provider did not say when it signed you in (auth_time): it cannot prove a new sign-in here",
        ));
    };
    let Some(issued) = iat else {
        return Err(refused(
            "the identity provider's ID token does not say when it was issued (iat)",
        ));
    };
    if at < issued - elapsed.clamp(0, PENDING_FOR) / 1_000_000 - SKEW_SECONDS {
        return Err(refused(
            "the identity provider signed you in from an earlier session instead of asking again: sign in there again",
        ));
    }
    if at > issued + SKEW_SECONDS {
        return Err(refused(
            "the identity provider's time of sign-in is after its token's: its clock is wrong",
        ));
    }
    Ok(())
}

/// The claims of a back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.4).
#[derive(Debug, serde::Deserialize)]
struct LogoutClaims {
    iat: i64,
    #[serde(default)]
    exp: Option<i64>,
    jti: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

/// The event a logout token must carry.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The Service's identity provider. A clone shares the provider's keys and the store: a
/// confirmation runs on a task of its own ([`Oidc::reconfirm`]).
#[derive(Clone)]
pub struct Oidc {
    config: OidcConfig,
    metadata: Metadata,
    http: reqwest::Client,
    jwks: Arc<Mutex<jsonwebtoken::jwk::JwkSet>>,
    /// When the keys were last read again for an unknown key id (a monotonic instant): at
    /// most once a minute, so tokens naming made-up keys cannot make the server hammer the
    /// provider.
    keys_read: Arc<Mutex<Option<std::time::Instant>>>,
    /// Where pending sign-ins, sessions' sealed refresh tokens and logouts are kept.
    store: Store,
    /// The keys sessions are sealed with, derived from the client secret (the first, which
    /// seals) and from the secrets before it (which only open).
    sealing: Arc<Vec<Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

fn refused(why: impl Into<String>) -> IdentityError {
    IdentityError::Provider(why.into())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Oidc {
    /// Whether the sign-in used one of the methods the Service requires (`amr`), when it
    /// requires any.
    fn methods_accepted(&self, claims: &IdClaims) -> bool {
        self.config.amr_values.is_empty()
            || claims
                .amr
                .iter()
                .flatten()
                .any(|m| self.config.amr_values.contains(m))
    }

    /// Reads the provider's discovery document and keys; refused when the document names
    /// another issuer than the one configured.
    pub async fn discover(mut config: OidcConfig, store: Store) -> Result<Oidc> {
        // `a, b` or an empty variable: classes and methods are names, never blank.
        for names in [&mut config.acr_values, &mut config.amr_values] {
            *names = names
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| refused(format!("no HTTP client: {e}")))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        secure_url("the issuer", &config.issuer)?;
        secure_url("the redirect URI", &config.redirect_uri)?;
        let metadata: Metadata = get_json(&http, &url).await?;
        for (what, u) in [
            (
                "the authorization endpoint",
                &metadata.authorization_endpoint,
            ),
            ("the token endpoint", &metadata.token_endpoint),
            ("the keys' address", &metadata.jwks_uri),
        ] {
            secure_url(what, u)?;
        }
        for (what, u) in [
            ("the sign-out page", &metadata.end_session_endpoint),
            ("the revocation endpoint", &metadata.revocation_endpoint),
        ] {
            if let Some(u) = u {
                secure_url(what, u)?;
            }
        }
        if metadata.issuer != config.issuer {
            return Err(refused(format!(
                "the provider at {url} says its issuer is `{}`, not `{}`",
                metadata.issuer, config.issuer
            )));
        }
        // The methods are asked for with the `claims` parameter; a provider that does not take
        // it must put them in its ID tokens unasked, or every sign-in is refused for naming
        // none.
        if !config.amr_values.is_empty() && !metadata.claims_parameter_supported {
            tracing::warn!(
                issuer = %config.issuer,
                "the provider does not say it takes the `claims` request parameter: --oidc-amr relies on it putting `amr` in its ID tokens unasked, and refuses every sign-in whose token does not"
            );
        }
        let jwks = get_json(&http, &metadata.jwks_uri).await?;
        Ok(Oidc {
            metadata,
            http,
            jwks: Arc::new(Mutex::new(jwks)),
            keys_read: Arc::new(Mutex::new(None)),
            sealing: Arc::new(
                std::iter::once(&config.client_secret)
                    .chain(&config.previous_client_secrets)
                    .map(|s| sealing_key(s))
                    .collect(),
            ),
            config,
            store,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Where to send the person to sign in, and the `state` that names this sign-in (kept in
    /// the store by its hash, for whichever server the answer reaches).
    pub async fn begin(&self, now: i64) -> Result<(String, String)> {
        let state = Secret::random("").expose().to_owned();
        let nonce = Secret::random("").expose().to_owned();
        let verifier = Secret::random("").expose().to_owned();
        let challenge = b64(&Sha256::digest(verifier.as_bytes()));
        // Checked a URL by `discover`.
        let mut url = reqwest::Url::parse(&self.metadata.authorization_endpoint)
            .unwrap_or_else(|_| reqwest::Url::parse("https://invalid.invalid/").expect("a URL"));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", &self.config.scope)
            // A sign-in here is a proof of identity (the acts that need a recent one rest on
            // it): the provider asks again, whatever session it has.
            .append_pair("prompt", "login")
            // …and says when it did (`auth_time`, which `max_age` makes required).
            .append_pair("max_age", "0")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if !self.config.acr_values.is_empty() {
            url.query_pairs_mut()
                .append_pair("acr_values", &self.config.acr_values.join(" "));
        }
        // The methods are in the ID token only when asked for (OpenID Connect Core §5.5), by
        // a provider that takes the parameter.
        if !self.config.amr_values.is_empty() && self.metadata.claims_parameter_supported {
            url.query_pairs_mut()
                .append_pair("claims", r#"{"id_token":{"amr":{"essential":true}}}"#);
        }
        let pending = OidcSignInRow {
            state_hash: crate::secret::hash(&state),
            nonce,
            verifier,
            begun_at: now,
        };
        self.store
            .put_oidc_sign_in(&pending, now - PENDING_FOR, MAX_PENDING)
            .await?;
        Ok((url.to_string(), state))
    }

    /// The provider's answer: the code is exchanged (with the PKCE verifier) and the ID token
    /// verified. A state not pending — unknown, used before, or older than 10 minutes — is
    /// refused before anything is sent to the provider. Who the verified token names becomes a
    /// person only through [`crate::Accounts::sign_in_oidc`], which binds it to an account
    /// registered for its subject.
    pub async fn finish(&self, state: &str, code: &str, now: i64) -> Result<Verified> {
        let pending = self
            .store
            .take_oidc_sign_in(&crate::secret::hash(state))
            .await?
            .filter(|p| now - p.begun_at < PENDING_FOR)
            .ok_or_else(|| refused("this sign-in is unknown, was used before or took longer than 10 minutes; sign in again"))?;
        let response = self
            .http
            .post(&self.metadata.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.config.redirect_uri),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| refused(format!("the identity provider did not answer: {e}")))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|_| {
            refused(format!(
                "the identity provider answered {status} without JSON"
            ))
        })?;
        if !status.is_success() {
            return Err(refused(format!(
                "the identity provider refused the code: {}",
                body.get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("no reason given")
            )));
        }
        let token = body
            .get("id_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| refused("the identity provider sent no ID token"))?;
        let claims = self.verify(token, Some(&pending.nonce), now).await?;
        fresh_proof(claims.auth_time, claims.iat, now - pending.begun_at)?;
        // The Service's own rule on how people sign in (say, with a second factor) is the
        // provider's word in `acr`: a sign-in of another class is refused.
        if !self.config.acr_values.is_empty()
            && !claims
                .acr
                .as_ref()
                .is_some_and(|a| self.config.acr_values.contains(a))
        {
            return Err(refused(format!(
                "the identity provider signed you in as `{}`, and this server accepts only {}: sign in there with the second factor it asks for",
                claims.acr.as_deref().unwrap_or("(no class given)"),
                self.config.acr_values.join(", ")
            )));
        }
        if !self.methods_accepted(&claims) {
            return Err(refused(format!(
                "the identity provider signed you in by {}, and this server needs one of {}: sign in there with the second factor it asks for",
                claims
                    .amr
                    .as_ref()
                    .filter(|m| !m.is_empty())
                    .map_or("(no method given)".to_owned(), |m| m.join(" and ")),
                self.config.amr_values.join(", ")
            )));
        }
        Ok(Verified {
            claims,
            refresh: refresh_token(&body),
        })
    }

    /// Keeps what the provider gave with `verified` for the session whose secret hashes to
    /// `session`, so the session can be confirmed with the provider ([`Oidc::reconfirm`]) by
    /// any server.
    pub async fn hold(&self, session: &[u8], verified: Verified, now: i64) -> Result<()> {
        if verified.refresh.is_none() {
            tracing::warn!(
                issuer = %self.config.issuer,
                "the identity provider gave no refresh token: the session ends at its first 5-minute confirmation; allow the client the refresh_token grant, or ask for offline_access (--oidc-scope)"
            );
        }
        let mut row = OidcSessionRow {
            session_hash: session.to_vec(),
            refresh: None,
            subject: verified.claims.sub,
            provider_session: verified.claims.sid,
            signed_in_at: now,
            confirmed_at: now,
            confirming_until: None,
            logged_out_at: None,
        };
        row.refresh = Some(self.seal(&row, verified.refresh.as_ref()));
        self.store
            .put_oidc_session(&row, now - HELD_AT_MOST)
            .await?;
        Ok(())
    }

    /// Whether the provider still vouches for the person of the session whose secret hashes to
    /// `session` (`subject` at the provider): asked again with the refresh token once
    /// [`RECONFIRM_EVERY`] has passed, by one request of one server at a time. While another
    /// asks, the session goes on on the provider's last word if that is no older than
    /// [`RECONFIRM_EVERY`] and [`CONFIRMING_FOR`]; beyond, the provider counts as unavailable.
    /// A session nothing is kept for, whose seal does not open (its row changed in the
    /// database, or sealed under another client secret), ended by a back-channel logout, or for
    /// which the provider gave no refresh token, has ended once it is due. A provider that does
    /// not answer is an error; the session is kept.
    pub async fn reconfirm(&self, session: &[u8], subject: &str, now: i64) -> Result<Standing> {
        let kept = match self.kept(session).await? {
            Ok(kept) => kept,
            Err(ended) => return Ok(ended),
        };
        let age = now - kept.confirmed_at;
        if (-CLOCKS_AGREE_WITHIN..RECONFIRM_EVERY).contains(&age) {
            return Ok(Standing::Vouched);
        }
        let until = now + CONFIRMING_FOR;
        let claimed = self
            .store
            .claim_oidc_confirmation(
                session,
                now - RECONFIRM_EVERY,
                now + CLOCKS_AGREE_WITHIN,
                now,
                until,
            )
            .await?;
        let Some(claimed) = claimed else {
            // Another request is asking right now, or has just answered.
            let kept = match self.kept(session).await? {
                Ok(kept) => kept,
                Err(ended) => return Ok(ended),
            };
            let age = now - kept.confirmed_at;
            return if (-CLOCKS_AGREE_WITHIN..RECONFIRM_EVERY + CONFIRMING_FOR).contains(&age) {
                Ok(Standing::Vouched)
            } else {
                Err(IdentityError::ProviderUnavailable(
                    "it is being asked about this session; try again in a moment".into(),
                ))
            };
        };
        // The refresh token as the claim found it (another server may have rotated it since
        // the row was read above).
        let Some(refresh) = self.open(&claimed) else {
            self.store.forget_oidc_session(session).await?;
            return Ok(Standing::Ended(
                "what is kept of the identity provider's word for the session does not verify"
                    .into(),
            ));
        };
        // On a task of its own: a request that goes away while the provider is asked neither
        // leaves the claim held nor loses the refresh token the provider rotated.
        let this = self.clone();
        let subject = subject.to_owned();
        tokio::spawn(async move { this.confirm(claimed, refresh, &subject, now, until).await })
            .await
            .map_err(|e| {
                IdentityError::ProviderUnavailable(format!("the confirmation stopped: {e}"))
            })?
    }

    /// What is kept for `session`, its seal opened; or, when nothing is, it does not open or a
    /// back-channel logout ended it, the standing that ends the session (forgotten).
    async fn kept(&self, session: &[u8]) -> Result<std::result::Result<OidcSessionRow, Standing>> {
        let ended = |why: &str| Ok(Err(Standing::Ended(why.into())));
        let Some(kept) = self.store.oidc_session(session).await? else {
            return ended(
                "nothing is kept of the identity provider's word for the session (it was forgotten, or opened before this server kept it)",
            );
        };
        if kept.logged_out_at.is_some() {
            self.store.forget_oidc_session(session).await?;
            return ended("you signed out at the identity provider");
        }
        if self.open(&kept).is_none() {
            tracing::warn!(
                issuer = %self.config.issuer,
                "what is kept of a session of the identity provider does not open: changed in the database, or sealed under another client secret"
            );
            self.store.forget_oidc_session(session).await?;
            return ended(
                "what is kept of the identity provider's word for the session does not verify",
            );
        }
        Ok(Ok(kept))
    }

    /// Asks the provider again for the session `claimed` (the claim ends at `until`), and
    /// keeps its answer: vouched, with a new seal; ended, forgotten; unavailable, the claim
    /// released.
    async fn confirm(
        &self,
        claimed: OidcSessionRow,
        refresh: Option<Secret>,
        subject: &str,
        now: i64,
        until: i64,
    ) -> Result<Standing> {
        let session = claimed.session_hash.clone();
        let asked = tokio::time::timeout(
            ASK_AT_MOST,
            self.ask_again(&claimed, refresh.as_ref(), subject, now),
        )
        .await
        .unwrap_or_else(|_| {
            Err(IdentityError::ProviderUnavailable(format!(
                "it did not answer within {} s",
                ASK_AT_MOST.as_secs()
            )))
        });
        match asked {
            Ok((Standing::Vouched, rotated)) => {
                let refresh = rotated.clone().or(refresh);
                let confirmed = OidcSessionRow {
                    confirmed_at: now,
                    ..claimed
                };
                let seal = self.seal(&confirmed, refresh.as_ref());
                if self
                    .store
                    .end_oidc_confirmation(&session, until, Some((now, &seal)))
                    .await?
                {
                    return Ok(Standing::Vouched);
                }
                // Signed out or forgotten meanwhile: the token the provider just gave is kept
                // by no one, so it is revoked.
                if let Some(rotated) = &rotated {
                    self.revoke(rotated).await;
                }
                Ok(Standing::Ended(
                    "the session ended while the identity provider was asked".into(),
                ))
            }
            Ok((ended, _)) => {
                self.store.forget_oidc_session(&session).await?;
                Ok(ended)
            }
            Err(e) => {
                self.store
                    .end_oidc_confirmation(&session, until, None)
                    .await?;
                Err(e)
            }
        }
    }

    /// The provider's word on the person of `kept`, asked with its refresh token; with the
    /// refresh token it gave in exchange, when it rotated it.
    async fn ask_again(
        &self,
        kept: &OidcSessionRow,
        refresh: Option<&Secret>,
        subject: &str,
        now: i64,
    ) -> Result<(Standing, Option<Secret>)> {
        let ended = |why: &str| Ok((Standing::Ended(why.into()), None));
        if kept.subject != subject {
            return ended("the session is not of the person the provider signed in");
        }
        let Some(refresh) = refresh else {
            return ended(
                "the identity provider gave no refresh token to confirm the sign-in with",
            );
        };
        let unavailable = |why: String| IdentityError::ProviderUnavailable(why);
        let response = self
            .http
            .post(&self.metadata.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ])
            .send()
            .await
            .map_err(|e| unavailable(format!("{e}")))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| unavailable(format!("it answered {status} without JSON")))?;
        let error = body.get("error").and_then(|e| e.as_str());
        if !status.is_success() {
            // RFC 6749 §5.2: `invalid_grant` is the provider's no; anything else is its fault.
            return match error {
                Some("invalid_grant") => ended(
                    "the identity provider no longer vouches for your sign-in (ended or revoked there)",
                ),
                _ => Err(unavailable(format!(
                    "it answered {status} ({})",
                    error.unwrap_or("no reason given")
                ))),
            };
        }
        // A new ID token (OpenID Connect Core §12.2) is verified as at sign-in, and must name
        // the same person.
        if let Some(token) = body.get("id_token").and_then(|t| t.as_str()) {
            match self.verify(token, None, now).await {
                Ok(c)
                    if (!self.config.acr_values.is_empty()
                        && c.acr
                            .as_ref()
                            .is_some_and(|a| !self.config.acr_values.contains(a)))
                        || (c.amr.is_some() && !self.methods_accepted(&c)) =>
                {
                    return ended(
                        "the identity provider now signs you in without the second factor this server requires",
                    );
                }
                Ok(c) if c.sub == kept.subject => {}
                Ok(_) => return ended("the identity provider now names another person"),
                Err(e) => return Ok((Standing::Ended(e.to_string()), None)),
            }
        }
        Ok((Standing::Vouched, refresh_token(&body)))
    }

    /// Forgets what is kept for the session whose secret hashes to `session`, revoking its
    /// refresh token at the provider (RFC 7009; best effort: a provider that does not answer
    /// keeps a token that the store no longer holds). Returns the provider's sign-out page,
    /// where the person ends their session at the provider too.
    pub async fn sign_out(&self, session: &[u8]) -> Option<String> {
        let kept = match self.store.forget_oidc_session(session).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(error = %e, "what was kept of a signed-out session could not be forgotten");
                None
            }
        };
        if let Some(refresh) = kept.and_then(|k| self.open(&k)).flatten() {
            self.revoke(&refresh).await;
        }
        self.logout_url()
    }

    /// Revokes `refresh` at the provider (RFC 7009), when it publishes where; best effort.
    async fn revoke(&self, refresh: &Secret) {
        let Some(endpoint) = &self.metadata.revocation_endpoint else {
            return;
        };
        let revoked = self
            .http
            .post(endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("token", refresh.expose()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await;
        if !revoked.is_ok_and(|r| r.status().is_success()) {
            tracing::warn!(
                issuer = %self.config.issuer,
                "the identity provider did not confirm the revocation of a refresh token no session keeps"
            );
        }
    }

    /// The ID token's claims, if its signature is the provider's and it is for this client,
    /// from this issuer, not expired at `now` and of this sign-in (`nonce`; a refreshed ID token
    /// need not carry one).
    pub async fn verify(&self, token: &str, nonce: Option<&str>, now: i64) -> Result<IdClaims> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refused("the ID token is not a JWT"))?;
        let key = self
            .key_for(&header.kid.unwrap_or_default(), "ID token")
            .await?;
        verify_with(
            token,
            &key,
            &self.config.issuer,
            &self.config.client_id,
            nonce,
            now,
        )
    }

    /// The seal of `row` with its refresh token, if the provider gave one.
    fn seal(&self, row: &OidcSessionRow, refresh: Option<&Secret>) -> Vec<u8> {
        seal(&self.sealing[0], &bound_to(row), refresh)
    }

    /// The refresh token sealed in `row` (`Some(None)`: the provider gave none); none when the
    /// seal does not open.
    fn open(&self, row: &OidcSessionRow) -> Option<Option<Secret>> {
        open_any(&self.sealing, &bound_to(row), row.refresh.as_deref()?)
    }

    /// The provider's key `kid`, its keys read again once when it is not among them (the
    /// provider may have rotated them).
    async fn key_for(&self, kid: &str, what: &str) -> Result<jsonwebtoken::DecodingKey> {
        if let Some(k) = self.key(kid) {
            return Ok(k);
        }
        let unknown = || {
            refused(format!(
                "the {what} is signed by a key the provider does not publish"
            ))
        };
        {
            let mut last = self.keys_read.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60)) {
                return Err(unknown());
            }
            *last = Some(std::time::Instant::now());
        }
        let fresh: jsonwebtoken::jwk::JwkSet =
            get_json(&self.http, &self.metadata.jwks_uri).await?;
        *self.jwks.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.key(kid).ok_or_else(|| {
            refused(format!(
                "the {what} is signed by a key the provider does not publish"
            ))
        })
    }

    /// The provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0): a logout
    /// token signed by the provider for this client, naming the person (`sub`) and, when it
    /// does, the provider's session (`sid`), ends every session here of that sign-in at its
    /// next request, without waiting for the 5-minute confirmation. The token must carry the
    /// logout event and no nonce, be issued within the last 5 minutes by `now`, and be seen
    /// once. Returns how many sessions it ends.
    pub async fn back_channel_logout(&self, token: &str, now: i64) -> Result<usize> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refused("the logout token is not a JWT"))?;
        if header.typ.as_deref().is_some_and(|t| {
            !t.eq_ignore_ascii_case("logout+jwt") && !t.eq_ignore_ascii_case("JWT")
        }) {
            return Err(refused("the token is not a logout token (typ)"));
        }
        let key = self
            .key_for(&header.kid.unwrap_or_default(), "logout token")
            .await?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_issuer(&[self.config.issuer.as_str()]);
        v.set_audience(&[self.config.client_id.as_str()]);
        v.validate_exp = false;
        v.set_required_spec_claims(&["iss", "aud", "iat"]);
        let claims = jsonwebtoken::decode::<LogoutClaims>(token, &key, &v)
            .map_err(|e| refused(format!("the logout token is not valid: {:?}", e.kind())))?
            .claims;
        if !claims.events.contains_key(LOGOUT_EVENT) || claims.nonce.is_some() {
            return Err(refused("the token is not a logout token (events, nonce)"));
        }
        let iat = claims.iat.saturating_mul(1_000_000);
        if iat > now + 60_000_000 || now - iat > RECONFIRM_EVERY {
            return Err(refused("the logout token is not of the last 5 minutes"));
        }
        if claims
            .exp
            .is_some_and(|exp| exp.saturating_mul(1_000_000) <= now)
        {
            return Err(refused("the logout token has expired"));
        }
        if claims.sub.is_none() && claims.sid.is_none() {
            return Err(refused(
                "the logout token names neither a person nor a session",
            ));
        }
        // The spec requires `jti`; without one (a refusal from serde) no token is taken twice.
        let ended = self
            .store
            .oidc_logout(
                &claims.jti,
                claims.sub.as_deref(),
                claims.sid.as_deref(),
                now,
                now - RECONFIRM_EVERY * 2,
            )
            .await?
            .ok_or_else(|| refused("the logout token was used before"))?;
        Ok(usize::try_from(ended).unwrap_or(usize::MAX))
    }

    fn key(&self, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
        let jwks = self.jwks.lock().unwrap_or_else(|e| e.into_inner());
        let jwk = jwks.find(kid)?;
        jsonwebtoken::DecodingKey::from_jwk(jwk).ok()
    }

    /// Where to send a person signing out, to end their session at the provider too
    /// (RP-Initiated Logout with `client_id`; no ID token in the address).
    pub fn logout_url(&self) -> Option<String> {
        let mut url = reqwest::Url::parse(self.metadata.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id);
        Some(url.to_string())
    }
}

/// What a session's seal is bound to: the session, the provider's person and session, and when
/// it was signed in and last confirmed, each length-prefixed. A row changed in the database —
/// another person, a confirmation moved ahead, a seal copied from another session — does not
/// open.
fn bound_to(row: &OidcSessionRow) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [
        row.session_hash.as_slice(),
        row.subject.as_bytes(),
        row.provider_session.as_deref().unwrap_or("").as_bytes(),
        &[u8::from(row.provider_session.is_some())],
        &row.signed_in_at.to_be_bytes(),
        &row.confirmed_at.to_be_bytes(),
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A seal under `key`, bound to `bound` (authenticated, not encrypted): [`SEAL_VERSION`], a
/// random nonce, and the refresh token encrypted (empty when there is none).
fn seal(key: &[u8; 32], bound: &[u8], refresh: Option<&Secret>) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("the operating system's random source");
    let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: refresh.map_or(&b""[..], |r| r.expose().as_bytes()),
                aad: bound,
            },
        )
        .expect("ChaCha20-Poly1305 seals any length a refresh token has");
    [&[SEAL_VERSION][..], &nonce, &sealed].concat()
}

/// What [`seal`] sealed under `key` bound to `bound`: the refresh token, or none when there was
/// none; `None` when it does not open (another key, other bindings, altered, another format).
fn open(key: &[u8; 32], bound: &[u8], sealed: &[u8]) -> Option<Option<Secret>> {
    let (&version, rest) = sealed.split_first()?;
    let (nonce, ciphertext) = rest.split_at_checked(12)?;
    if version != SEAL_VERSION {
        return None;
    }
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: bound,
                },
            )
            .ok()?,
    );
    let text = String::from_utf8(plain.to_vec()).ok()?;
    Some((!text.is_empty()).then(|| Secret::received(text)))
}

/// What [`seal`] sealed under one of `keys` (the current client secret's, then those before
/// it) bound to `bound`; `None` when it opens under none.
fn open_any(keys: &[Zeroizing<[u8; 32]>], bound: &[u8], sealed: &[u8]) -> Option<Option<Secret>> {
    keys.iter().find_map(|key| open(key, bound, sealed))
}

/// The key refresh tokens are sealed with: HMAC-SHA256 of a fixed label under the client
/// secret, which the server is configured with and the database does not hold.
fn sealing_key(client_secret: &str) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"studyflow: the identity provider's refresh tokens kept in the store");
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Whether secrets (a password, a code, a token, a client secret) may be sent to `url`:
/// `https://`, or plain `http://` on this machine only (loopback), where nothing crosses a
/// network. The server's client in the CLI asks the same.
pub fn secrets_may_go_to(url: &reqwest::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// An address the client secret, codes or tokens may go to ([`secrets_may_go_to`]).
fn secure_url(what: &str, u: &str) -> Result<()> {
    let url = reqwest::Url::parse(u).map_err(|_| refused(format!("{what} `{u}` is not a URL")))?;
    if secrets_may_go_to(&url) {
        Ok(())
    } else {
        Err(refused(format!(
            "{what} `{u}` is not https: the client secret, codes and tokens would travel in clear"
        )))
    }
}

/// The refresh token in a token endpoint's answer, if any.
fn refresh_token(body: &serde_json::Value) -> Option<Secret> {
    body.get("refresh_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(|t| Secret::received(t.to_owned()))
}

/// Verifies an RS256 ID token with `key`: signature, issuer, audience, expiry at `now` (µs,
/// the engine's clock, no leeway), and nonce (`None`: a refreshed token, whose nonce, if any,
/// was checked at sign-in).
pub fn verify_with(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    issuer: &str,
    audience: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<IdClaims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    // Expiry is checked below against the engine's clock, not the machine's.
    v.validate_exp = false;
    v.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    let data = jsonwebtoken::decode::<IdClaims>(token, key, &v).map_err(|e| {
        refused(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                "the ID token is from another issuer".into()
            }
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                "the ID token is for another client".into()
            }
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "the ID token's signature does not verify".into()
            }
            other => format!("the ID token is not valid: {other:?}"),
        })
    })?;
    let claims = data.claims;
    if claims.exp * 1_000_000 <= now {
        return Err(refused("the ID token has expired; sign in again"));
    }
    if let Some(nonce) = nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return Err(refused("the ID token is not of this sign-in (nonce)"));
    }
    Ok(claims)
}

/// An ID token verified by [`Oidc::finish`], with the refresh token that came with it: made
/// nowhere else.
#[derive(Debug, Clone)]
pub struct Verified {
    claims: IdClaims,
    refresh: Option<Secret>,
}

impl Verified {
    pub fn issuer(&self) -> &str {
        &self.claims.iss
    }

    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// The login it names (`preferred_username`), if it is one as specs write logins.
    pub fn login(&self) -> Result<&str> {
        let login = self.claims.preferred_username.as_deref().ok_or_else(|| {
            refused("the ID token carries no preferred_username to bind to a spec's login")
        })?;
        crate::check_login(login)?;
        Ok(login)
    }
}

/// The identity a verified token names, once its account is known (`service`: not external).
pub(crate) fn identity_of(v: &Verified, now: i64, service: bool) -> Result<Identity> {
    Ok(Identity::new(
        v.login()?,
        v.issuer(),
        v.subject(),
        now,
        service,
    ))
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let r = http.get(url).send().await.map_err(|e| {
        refused(format!(
            "the identity provider at {url} did not answer: {e}"
        ))
    })?;
    if !r.status().is_success() {
        return Err(refused(format!(
            "the identity provider at {url} answered {}",
            r.status()
        )));
    }
    r.json().await.map_err(|e| {
        refused(format!(
            "the identity provider at {url} answered what is not its JSON: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `amr` is read as RFC 8176 writes it (an array) and as some providers send it (one
    /// method as a string); absent is absent, not an error.
    /// A session is kept sealed: its refresh token not readable in the row, opened only for
    /// its own session, person and times under the key of the same client secret, and not
    /// when altered.
    #[test]
    fn a_session_is_sealed_with_what_it_is_bound_to() {
        let key = sealing_key("studyflow-test-secret");
        let row = OidcSessionRow {
            session_hash: vec![1; 32],
            subject: "sub-inese".into(),
            provider_session: Some("sid-1".into()),
            signed_in_at: 10,
            refresh: None,
            confirmed_at: 20,
            confirming_until: None,
            logged_out_at: None,
        };
        let token = Secret::received("refresh-token-of-inese".into());
        let sealed = seal(&key, &bound_to(&row), Some(&token));
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
        assert_ne!(
            sealed,
            seal(&key, &bound_to(&row), Some(&token)),
            "a nonce of its own"
        );
        let opened = open(&key, &bound_to(&row), &sealed).unwrap().unwrap();
        assert_eq!(opened.expose(), "refresh-token-of-inese");
        // Without a refresh token: still sealed, opening to none.
        let empty = seal(&key, &bound_to(&row), None);
        assert!(open(&key, &bound_to(&row), &empty).unwrap().is_none());
        // Anything the seal is bound to, changed in the row, and it does not open.
        for changed in [
            OidcSessionRow {
                session_hash: vec![2; 32],
                ..row.clone()
            },
            OidcSessionRow {
                subject: "sub-gatis".into(),
                ..row.clone()
            },
            OidcSessionRow {
                provider_session: None,
                ..row.clone()
            },
            OidcSessionRow {
                provider_session: Some(String::new()),
                ..row.clone()
            },
            OidcSessionRow {
                signed_in_at: 11,
                ..row.clone()
            },
            OidcSessionRow {
                confirmed_at: 10_000,
                ..row.clone()
            },
        ] {
            assert!(
                open(&key, &bound_to(&changed), &sealed).is_none(),
                "{changed:?}"
            );
        }
        assert!(open(&sealing_key("another-secret"), &bound_to(&row), &sealed).is_none());
        // The client secret changed over: a seal of the secret before still opens while it is
        // given as a previous one, and not once it is dropped.
        let changed_over = [
            sealing_key("the-new-secret"),
            sealing_key("studyflow-test-secret"),
        ];
        let opened = open_any(&changed_over, &bound_to(&row), &sealed)
            .unwrap()
            .unwrap();
        assert_eq!(opened.expose(), "refresh-token-of-inese");
        assert!(open_any(&changed_over[..1], &bound_to(&row), &sealed).is_none());
        assert!(
            open_any(
                &changed_over,
                &bound_to(&OidcSessionRow {
                    subject: "sub-gatis".into(),
                    ..row.clone()
                }),
                &sealed
            )
            .is_none()
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(open(&key, &bound_to(&row), &altered).is_none());
        let mut other_format = sealed.clone();
        other_format[0] = 2;
        assert!(open(&key, &bound_to(&row), &other_format).is_none());
        assert!(open(&key, &bound_to(&row), &sealed[..8]).is_none());
    }

    #[test]
    fn amr_is_an_array_or_one_method() {
        let amr = |v: Option<serde_json::Value>| {
            let mut c = claims();
            match v {
                Some(v) => c["amr"] = v,
                None => {
                    c.as_object_mut().unwrap().remove("amr");
                }
            }
            serde_json::from_value::<IdClaims>(c).unwrap().amr
        };
        assert_eq!(
            amr(Some(serde_json::json!(["pwd", "otp"]))),
            Some(vec!["pwd".to_owned(), "otp".to_owned()])
        );
        assert_eq!(
            amr(Some(serde_json::json!("mfa"))),
            Some(vec!["mfa".to_owned()])
        );
        assert_eq!(amr(None), None);
    }

    /// A key made for these tests only (`openssl genrsa 2048`), signing nothing elsewhere.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDjqxgKFNSFRuln\nrpA85IDV8kgPMR3yxsgvh0caCiQWZNYPEQIOypUPTDlgXhTVMKeCdy0lzQXgmyST\nNmj7GW/U+fQQfLSLMGnNkh1LqparyaN/Cs7GTaP6fdTJxozOsMpvWOcNZAqkNYD7\nq/I2tghyEKC9ctnqUHPKxxWHEYKN8vK5NsHXME7tdf0TUKnZTK1P6dji4BqcejyH\nwV6CxJ++45PBvz/NxjodxhwZSLdveFd4ail1JPEGNhUBgPQet5KHct/PfZCsD0om\nJuFiVk9zuXzSCkOfcsU+ysX43KZYwoo8OVJJQV37ezaMeulVspblF1HP6ka38LZc\n65j7cHK/AgMBAAECggEAN/2MaHJN/8b8QPTz4R3bN4KhySattFbBxbqRuGw1CtLa\nuBLZPDUDKqN22uXYXsPb9mCD2G+PGfldqdywPcy4LZsZNHLO3gpWgumDzeeSrYXl\n8SkByFAw2zpV+heb6nsdFfw5upfXbCICaiKT63OiKRdAyMa1pAQMLhr/Btw+DNVz\nrWrPwAvYkcCrwXZs8vxsEiKQ2h0S6UVrq2bKQ0kbB/jjBO5OEClcCcPoP+j7IWaJ\nCgtiEwBAOp5SaqU0TJgoIoX9Nw/tjqrPZypU1zDMxGsDvPXhpb80Q+LLTtJG/YOB\nHE05Es6NXiOn7qfDfDYO3DmvUY98onN8CCnfg4wwpQKBgQD0tBY5KoW4Rr/WmnnZ\nxoTyZBHPEgOlG9w8vYTyKiH0lfVjflJXdd3pVZLQycW5IxQ+k38lMhBz54OA88fg\nQB/yASQAnWGnrBzcL3Qfm5Vn9GbxCoWR1OsMMzIloMZro9QS7HlfDyqnUJQ6bZOF\nBgS6xHm0qIhnsBCZc2wnEkcRqwKBgQDuLa93LmRj4OV5gAoR3RarZv5LKkMGfv/v\n2I42Qx+eMJyAJMgBtasM3uoYcnGHadH6sNRturdcaQPWR5+yZ4wXk1KRovEumWHf\nvpYqs5SAxrayL4tjOuIpl+SX5nbBZqR8wzl1s0TP7VFzKVoddsRz645+Arf6z84o\nNfQxWKC3PQKBgQDXtOQeMnC714oGOBgPs+K/9RyJx5x08FE9LedCvYc/Hu24bcNS\nG7GpnWiVKjhkkhqnasfa1v4P3dZbVworkPtYDk9ZR2KtNpgeNKqNrk2O3K/d7WN/\nAQzNrVeYOdiPTFSG9fOrqyfzY6G2u58d1QdYSBfs+996X4bSbh+5dXA2jwKBgQDi\nytW9oostH8TiQK1V/TPM2jFh2UghM2T5OTeRK7E7rAYZbuyT1CygANLfnHnF+1la\nYG6mXZijgcuJioHiGv8mo72Ht6P4P00XBB9xYbYSOSVV3jfXsQYRnPSqP2TtG5Oc\nyTg5fw4S/2MDSWjpjWHbD32LN4OAa8deOqHfKwk98QKBgAqL7wExiWOhOHn9k7G2\nro1/pTfKGY9xGhgFP0RGVChY19TYmlFvAdZjAICW1/57tm6X1/XKw17hDBP1jFnE\nIp9RCJda8u9PJjrNpJROeV7kEe/ldFOEhKuPC+nSvkrqT71k1H6mXF+uceB38+nn\nsB4l0KExp3aCs5syj7fd8Bi1\n-----END PRIVATE KEY-----";
    const TEST_N: &str = "46sYChTUhUbpZ66QPOSA1fJIDzEd8sbIL4dHGgokFmTWDxECDsqVD0w5YF4U1TCngnctJc0F4JskkzZo-xlv1Pn0EHy0izBpzZIdS6qWq8mjfwrOxk2j-n3UycaMzrDKb1jnDWQKpDWA-6vyNrYIchCgvXLZ6lBzyscVhxGCjfLyuTbB1zBO7XX9E1Cp2UytT-nY4uAanHo8h8FegsSfvuOTwb8_zcY6HcYcGUi3b3hXeGopdSTxBjYVAYD0HreSh3Lfz32QrA9KJibhYlZPc7l80gpDn3LFPsrF-NymWMKKPDlSSUFd-3s2jHrpVbKW5RdRz-pGt_C2XOuY-3Byvw";
    const ISS: &str = "https://idp.example.test";
    const NOW: i64 = 1_800_000_000_000_000;

    fn token(claims: serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .unwrap()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISS, "sub": "sub-inese", "aud": "studyflow", "nonce": "n1",
            "exp": NOW / 1_000_000 + 60, "iat": NOW / 1_000_000, "preferred_username": "inese.kalnina",
        })
    }

    fn check(t: &str) -> Result<IdClaims> {
        let key = jsonwebtoken::DecodingKey::from_rsa_components(TEST_N, "AQAB").unwrap();
        verify_with(t, &key, ISS, "studyflow", Some("n1"), NOW)
    }

    fn verified(claims: IdClaims) -> Verified {
        Verified {
            claims,
            refresh: None,
        }
    }

    /// A sign-in proves who the person is only when the provider asked during it (`auth_time`
    /// since the sign-in began here, within a minute's leeway of the clocks).
    #[test]
    fn a_sign_in_is_a_proof_only_when_the_provider_asked_during_it() {
        let iat = NOW / 1_000_000;
        let secs = |s: i64| s * 1_000_000;
        // A sign-in of 20 s here: signed in there within it (and a minute's leeway), or just
        // after the token by the leeway; one of 9 minutes, 8 minutes before the token.
        for (auth_time, took) in [
            (iat - 5, secs(20)),
            (iat - 70, secs(20)),
            (iat + 50, secs(20)),
            (iat - 8 * 60, secs(9 * 60)),
        ] {
            assert!(
                fresh_proof(Some(auth_time), Some(iat), took).is_ok(),
                "{auth_time} {took}"
            );
        }
        for (auth_time, issued, took, says) in [
            (None, Some(iat), secs(20), "did not say when"),
            (Some(iat), None, secs(20), "when it was issued"),
            // A session five minutes old, for a sign-in of 20 s: not asked again.
            (Some(iat - 5 * 60), Some(iat), secs(20), "earlier session"),
            (
                Some(iat - 3_600),
                Some(iat),
                secs(9 * 60),
                "earlier session",
            ),
            (Some(iat + 3_600), Some(iat), secs(20), "after its token's"),
        ] {
            let e = fresh_proof(auth_time, issued, took)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{auth_time:?}: {e}");
        }
        // Read from the token.
        let mut c = claims();
        c["auth_time"] = serde_json::json!(iat);
        let read = check(&token(c)).unwrap();
        assert_eq!((read.auth_time, read.iat), (Some(iat), Some(iat)));
    }

    #[test]
    fn an_id_token_is_verified_whole() {
        let c = check(&token(claims())).unwrap();
        let who = identity_of(&verified(c), NOW, true).unwrap();
        assert_eq!(
            (who.login(), who.issuer(), who.subject()),
            ("inese.kalnina", ISS, "sub-inese")
        );
        assert!(who.is_service());
        let refused_for = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            edit(&mut c);
            match check(&token(c)) {
                Err(IdentityError::Provider(m)) => m,
                other => panic!("accepted: {other:?}"),
            }
        };
        assert!(refused_for(&|c| c["aud"] = "another-client".into()).contains("another client"));
        assert!(
            refused_for(&|c| c["iss"] = "https://evil.example.test".into())
                .contains("another issuer")
        );
        assert!(refused_for(&|c| c["exp"] = (NOW / 1_000_000).into()).contains("expired"));
        assert!(refused_for(&|c| c["nonce"] = "n2".into()).contains("nonce"));
        assert!(
            refused_for(&|c| {
                c.as_object_mut().unwrap().remove("nonce");
            })
            .contains("nonce")
        );
        // A refreshed ID token need not carry the sign-in's nonce; everything else is checked.
        let key = jsonwebtoken::DecodingKey::from_rsa_components(TEST_N, "AQAB").unwrap();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("nonce");
        assert!(verify_with(&token(c.clone()), &key, ISS, "studyflow", None, NOW).is_ok());
        c["aud"] = "another-client".into();
        assert!(verify_with(&token(c), &key, ISS, "studyflow", None, NOW).is_err());
        // A signature that is not the provider's.
        let mut t = token(claims());
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        assert!(check(&t).is_err());
        // A token signed with a shared secret (alg HS256) is not accepted in place of RS256.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(TEST_N.as_bytes()),
        )
        .unwrap();
        assert!(check(&hs).is_err());
    }

    #[test]
    fn the_login_is_the_preferred_username_as_specs_write_logins() {
        let mut c = check(&token(claims())).unwrap();
        c.preferred_username = None;
        assert!(identity_of(&verified(c.clone()), NOW, true).is_err());
        c.preferred_username = Some("Inese Kalniņa".into());
        assert!(identity_of(&verified(c), NOW, true).is_err());
    }
}
