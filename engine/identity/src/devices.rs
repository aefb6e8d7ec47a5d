//! A command line signing in through a browser: RFC 8628's device authorization grant, served
//! by studyflow for its own CLI (issue #12). `studyflow login --device` asks for a grant and
//! shows its user code; the person opens `/device` on the server, signed in (at the identity
//! provider, or with a local account) and with a recent proof of identity, checks what asks —
//! the CLI's label, its address, when — and approves or denies; the CLI, polling with its
//! device code, receives a personal token of that person, once. This is how a person of the
//! identity provider, who has no password here, gets a personal token at all.
//!
//! The device code is a 32-byte secret kept only as its SHA-256; the user code is eight
//! letters (RFC 8628 §6.1: consonants only, case and hyphen ignored), good for 10 minutes and
//! only through a signed-in person's decision, which is audited, as is the token it gives.

use studyflow_store::{CredentialKind, CredentialRow, DeviceGrantRow, DeviceState, StoreError};

use crate::accounts::{DAY, MINUTE, credential, event, hex_prefix};
use crate::secret::Secret;
use crate::{Accounts, Identity, IdentityError, LOCAL_ISSUER, Result};

/// How long a grant waits for its person's decision and the CLI's poll (µs).
pub const GRANT_FOR: i64 = 10 * MINUTE;
/// How often the CLI may poll (seconds); sooner is `slow_down` (RFC 8628 §3.5).
pub const POLL_EVERY_SECONDS: i64 = 5;
/// The letters of a user code: no vowels (no words), none that look alike (RFC 8628 §6.1).
const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const CODE_LEN: usize = 8;

/// A grant asked for: what the CLI keeps and what it shows.
#[derive(Debug)]
pub struct DeviceRequest {
    /// The CLI's secret to poll with.
    pub device_code: Secret,
    /// The code the person enters, as shown (`BCDF-GHJK`).
    pub user_code: String,
    pub expires_at: i64,
}

/// A pending grant as its person sees it before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The token's life asked for, in days (the policy's default when none).
    pub days: Option<i64>,
    /// As shown (`BCDF-GHJK`).
    pub user_code: String,
    /// What the token is for, as the CLI named it.
    pub label: String,
    /// The address that asked.
    pub client: String,
    pub requested_at: i64,
    pub expires_at: i64,
}

/// What a poll of the CLI finds (RFC 8628 §3.5).
#[derive(Debug)]
pub enum DevicePoll {
    /// No one has decided yet: poll again after the interval.
    Pending,
    /// Polled sooner than the interval: wait longer.
    SlowDown,
    /// The person denied it.
    Denied,
    /// It expired, or its token was given already.
    Expired,
    /// The person's personal token, given once.
    Issued(Secret, Box<CredentialRow>),
}

/// Whether `presented` can be a device code at all (`sfd_` and 43 characters of base64url): any
/// other is refused before the database is asked.
pub fn is_device_code(presented: &str) -> bool {
    presented.strip_prefix("sfd_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether `c` is shown as nothing or turns the text around it (Unicode's format characters:
/// bidirectional overrides, zero-width joiners and spaces, the soft hyphen, the byte-order
/// mark), so a label cannot pose as another.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// A typed user code as stored: its letters in capitals, without hyphens or spaces; `None`
/// when it cannot be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| LETTERS.contains(&b))).then_some(code)
}

/// A stored user code as shown: `BCDF-GHJK`.
pub fn show_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(CODE_LEN / 2));
    format!("{a}-{b}")
}

fn draw_user_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    // 256 = 12 × 20 + 16: bytes of the last 16 values are drawn again, so every letter is
    // equally likely.
    bytes
        .iter()
        .map(|&b| {
            let mut b = b;
            while usize::from(b) >= LETTERS.len() * (256 / LETTERS.len()) {
                let mut again = [0u8; 1];
                getrandom::fill(&mut again).expect("the operating system's random source");
                b = again[0];
            }
            char::from(LETTERS[usize::from(b) % LETTERS.len()])
        })
        .collect()
}

fn no_such_code() -> IdentityError {
    IdentityError::Invalid(
        "no sign-in waits for this code: it was mistyped, decided already or is older than 10 minutes; run `studyflow login --device` again"
            .into(),
    )
}

impl Accounts {
    /// A new grant for a CLI at `client` that asks for a token labelled `label`, living `days`
    /// (refused at once when the policy does not allow that life).
    pub async fn request_device(
        &self,
        label: &str,
        days: Option<i64>,
        client: &str,
        now: i64,
    ) -> Result<DeviceRequest> {
        self.token_days(days)?;
        let kept: String = label
            .chars()
            .filter(|c| !c.is_control() && !invisible(*c))
            .take(80)
            .collect();
        let label = match kept.trim() {
            "" => "cli".to_owned(),
            kept => kept.to_owned(),
        };
        // A user code taken by a live grant is drawn again (one in 2.5 × 10¹⁰ per live grant).
        for _ in 0..5 {
            let device_code = Secret::random("sfd_");
            let row = DeviceGrantRow {
                device_hash: device_code.hash(),
                user_code: draw_user_code(),
                label: label.clone(),
                client: client.to_owned(),
                days,
                requested_at: now,
                expires_at: now + GRANT_FOR,
                polled_at: 0,
                state: DeviceState::Pending,
                login: None,
                issuer: None,
                subject: None,
                auth_at: None,
                decided_at: None,
            };
            match self.store.put_device_grant(&row, now).await {
                Ok(()) => {
                    return Ok(DeviceRequest {
                        device_code,
                        user_code: show_user_code(&row.user_code),
                        expires_at: row.expires_at,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IdentityError::Busy)
    }

    /// The grant waiting for a decision under the typed `user_code` at `now`, if any.
    pub async fn pending_device(&self, user_code: &str, now: i64) -> Result<Option<DeviceGrant>> {
        let Some(code) = normalise_user_code(user_code) else {
            return Ok(None);
        };
        Ok(self
            .store
            .device_grant(&code)
            .await?
            .filter(|g| g.state == DeviceState::Pending && g.expires_at > now)
            .map(|g| DeviceGrant {
                days: g.days,
                user_code: show_user_code(&g.user_code),
                label: g.label,
                client: g.client,
                requested_at: g.requested_at,
                expires_at: g.expires_at,
            }))
    }

    /// `who` approves (a personal token of theirs for the CLI) or denies the grant waiting
    /// under the typed `user_code`; audited. The caller has checked that `who` proved who they
    /// are recently: the token carries that proof's time.
    pub async fn decide_device(
        &self,
        user_code: &str,
        who: &Identity,
        approve: bool,
        now: i64,
    ) -> Result<()> {
        let code = normalise_user_code(user_code).ok_or_else(no_such_code)?;
        let grant = self
            .store
            .device_grant(&code)
            .await?
            .ok_or_else(no_such_code)?;
        let action = if approve {
            "device.approved"
        } else {
            "device.denied"
        };
        let decided = event(
            now,
            &who.actor(),
            action,
            who.login(),
            serde_json::json!({
                "grant": hex_prefix(&grant.device_hash),
                "label": grant.label,
                "client": grant.client,
            }),
        );
        let done = self
            .store
            .decide_device_grant(
                &code,
                approve,
                who.login(),
                who.issuer(),
                who.subject(),
                who.auth_at(),
                now,
                &[decided],
            )
            .await?;
        if !done {
            return Err(no_such_code());
        }
        self.seal().await
    }

    /// How long a token given through the browser lives (µs): the life asked for (the
    /// policy's default when none), and for a person of the identity provider no longer than
    /// [`crate::Policy::provider_token_life`].
    pub fn device_token_life(&self, days: Option<i64>, issuer: &str) -> Result<i64> {
        let asked = self.token_days(days)? * DAY;
        Ok(if issuer == LOCAL_ISSUER {
            asked
        } else {
            asked.min(self.policy.provider_token_life)
        })
    }

    /// The CLI's poll with its `device_code` at `now`. An approved grant gives its person's
    /// personal token here, once; a device code never asked for is refused. How often it
    /// polls is measured by the machine's own clock, not the engine's (which a test or the
    /// demo may hold still).
    pub async fn poll_device(&self, device_code: &str, now: i64) -> Result<DevicePoll> {
        let hash = crate::secret::hash(device_code);
        let interval = POLL_EVERY_SECONDS * 1_000_000;
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let grant = match self.store.poll_device_grant(&hash, wall, interval).await? {
            None => {
                return Err(IdentityError::Invalid(
                    "no sign-in was asked for with this device code".into(),
                ));
            }
            Some((g, too_soon)) => {
                if g.expires_at <= now || g.state == DeviceState::Issued {
                    return Ok(DevicePoll::Expired);
                }
                match g.state {
                    DeviceState::Denied => return Ok(DevicePoll::Denied),
                    DeviceState::Pending if too_soon => return Ok(DevicePoll::SlowDown),
                    DeviceState::Pending => return Ok(DevicePoll::Pending),
                    _ => g,
                }
            }
        };
        let (Some(login), Some(issuer), Some(subject), Some(auth_at)) = (
            grant.login.as_deref(),
            grant.issuer.as_deref(),
            grant.subject.as_deref(),
            grant.auth_at,
        ) else {
            return Err(IdentityError::Invalid(
                "an approved sign-in names no person".into(),
            ));
        };
        // The person as the account stands now: one disabled or reset since deciding (whose
        // grants the reset denied) gets nothing; nor does one no longer bound to that subject
        // of the identity provider.
        let standing = self.store.account(login).await?.is_some_and(|a| {
            !a.disabled && (issuer == LOCAL_ISSUER || a.oidc_subject.as_deref() == Some(subject))
        });
        if !standing {
            return Ok(DevicePoll::Denied);
        }
        // Whether the person is of the Service is read from their account whenever the token
        // is used, not kept in it.
        let who = Identity::new(login, issuer, subject, auth_at, false);
        let life = self.device_token_life(grant.days, issuer)?;
        let token = Secret::random("sfp_");
        let (row, issued) = credential(
            &who,
            CredentialKind::Token,
            &token,
            None,
            &grant.label,
            now,
            now + life,
        );
        if !self
            .store
            .issue_device_token(&hash, &row, now, &[issued])
            .await?
        {
            return Ok(DevicePoll::Expired);
        }
        self.seal().await?;
        Ok(DevicePoll::Issued(token, Box::new(row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_code_is_read_as_typed_and_shown_with_its_hyphen() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert!(is_device_code(Secret::random("sfd_").expose()));
        for wrong in [
            "sfd_",
            "sfp_x",
            "sfd_../../etc",
            &format!("sfd_{}", "a".repeat(44)),
        ] {
            assert!(!is_device_code(wrong), "{wrong}");
        }
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{3164}',
            '\u{2028}',
        ] {
            assert!(invisible(c), "{c:?}");
        }
        assert!(!invisible('ā') && !invisible(' '));
        for wrong in ["BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", ""] {
            assert_eq!(normalise_user_code(wrong), None, "{wrong}");
        }
        assert_eq!(show_user_code("BCDFGHJK"), "BCDF-GHJK");
        for _ in 0..200 {
            let drawn = draw_user_code();
            assert_eq!(normalise_user_code(&drawn).as_deref(), Some(drawn.as_str()));
        }
    }
}
