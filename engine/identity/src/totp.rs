//! The second factor: time-based one-time passwords (RFC 6238, HMAC-SHA-1, 6 digits, 30-second
//! steps), as every authenticator app reads them from an `otpauth://` URI.

use hmac::{Hmac, Mac};

/// Seconds per step.
pub const STEP: i64 = 30;
/// Steps either side of now that are accepted (clock drift between phone and server).
pub const DRIFT: i64 = 1;

/// A new secret: 20 random bytes (RFC 4226 §4 recommends 160 bits).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    getrandom::fill(&mut s).expect("the operating system's random source");
    s
}

/// The step of a Unix time in seconds.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP)
}

/// The code of `secret` at time step `step` (RFC 4226 §5.3 dynamic truncation).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// The step within [`DRIFT`] of `now_step` whose code `code` is, if any.
pub fn matching_step(secret: &[u8], code: &str, now_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (now_step - DRIFT..=now_step + DRIFT)
        .find(|s| crate::secret::same(code_at(secret, *s).as_bytes(), code.as_bytes()))
}

/// The secret in base32, as typed into an authenticator app.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// A secret typed as base32 (spaces and case ignored).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// The issuer an authenticator app shows beside the code.
pub const ISSUER: &str = "studyflow";

/// The `otpauth://` URI an authenticator app reads (as a QR code, or pasted).
pub fn uri(secret: &[u8], login: &str, issuer: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        enc(issuer),
        enc(login),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the 8-digit values' last six digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_of(t)), expected, "T = {t}");
        }
    }

    #[test]
    fn a_code_matches_within_one_step_either_side_only() {
        let secret = new_secret();
        let now = 1_800_000_000 / STEP;
        for d in -1..=1 {
            assert_eq!(
                matching_step(&secret, &code_at(&secret, now + d), now),
                Some(now + d)
            );
        }
        for d in [-3, -2, 2, 3] {
            let c = code_at(&secret, now + d);
            if (-1..=1).all(|e| code_at(&secret, now + e) != c) {
                assert_eq!(matching_step(&secret, &c, now), None);
            }
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "12345a", now), None);
    }

    #[test]
    fn the_uri_carries_the_secret_in_base32() {
        let u = uri(b"12345678901234567890", "inese.kalnina", "studyflow demo");
        assert_eq!(
            u,
            "otpauth://totp/studyflow%20demo:inese.kalnina?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=studyflow%20demo&algorithm=SHA1&digits=6&period=30"
        );
    }
}
