//! Passwords: Argon2id (RFC 9106), stored as PHC strings that carry their parameters, so a
//! later change of parameters still verifies old hashes.
//!
//! The parameters: 64 MiB, 3 passes, one lane — RFC 9106's second recommended option — about
//! 150–250 ms per sign-in on the reference machine (`identity_bench`), slow for a guesser and
//! quick enough for a person.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{IdentityError, Result};

/// Memory (KiB), passes, lanes.
pub const PARAMS: (u32, u32, u32) = (64 * 1024, 3, 1);

/// The shortest password accepted (NIST SP 800-63B §3.1.1.2: at least 15 without a second
/// factor; 12 with one, which studyflow always asks for).
pub const MIN_LENGTH: usize = 12;

fn argon2() -> Argon2<'static> {
    let (m, t, p) = PARAMS;
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m, t, p, None).expect("valid Argon2 parameters"),
    )
}

/// The PHC string of `password`, after checking it is long enough.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(IdentityError::Invalid(format!(
            "a password has at least {MIN_LENGTH} characters"
        )));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| IdentityError::Invalid(format!("cannot hash the password: {e}")))?
        .to_string())
}

/// Whether `password` matches the PHC string `stored` (with the parameters it names).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of no one's password, verified against when the login is unknown so that a refusal
/// takes as long whether or not the login exists.
pub(crate) fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no one's password, never matched").expect("long enough"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Two hashes of one password differ (salt).
        assert_ne!(h, hash_password("correct horse battery").unwrap());
        assert!(hash_password("short").is_err());
    }
}
