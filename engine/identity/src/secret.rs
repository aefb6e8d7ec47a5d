//! Random secrets (session cookies, CSRF tokens, personal tokens) and their stored form.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A secret handed to its holder once; the store keeps only [`Secret::hash`].
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// 32 random bytes behind `prefix`, base64url.
    pub(crate) fn random(prefix: &str) -> Secret {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).expect("the operating system's random source");
        Secret(Zeroizing::new(format!(
            "{prefix}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
        )))
    }

    /// A secret received from elsewhere (a refresh token of the identity provider).
    pub(crate) fn received(s: String) -> Secret {
        Secret(Zeroizing::new(s))
    }

    /// A password made up for a person who will change it, or for the demo's people: 32 random
    /// bytes, base64url.
    pub fn generated_password() -> Secret {
        Secret::random("")
    }

    /// A one-time enrolment code, for a person to type from what the operator gave them: 15
    /// random bytes (120 bits) in base32, in groups of four (`ABCD-EFGH-…`).
    pub(crate) fn enrolment_code() -> Secret {
        let mut bytes = Zeroizing::new([0u8; 15]);
        getrandom::fill(bytes.as_mut()).expect("the operating system's random source");
        let text = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes.as_ref()));
        let groups: Vec<&str> = text
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
            .collect();
        Secret(Zeroizing::new(groups.join("-")))
    }

    /// The secret as given to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> Vec<u8> {
        hash(self.expose())
    }
}

/// An enrolment code as typed, as it is hashed: its letters and digits in capitals, whatever
/// the person put between the groups or however they wrote the letters, and the digits base32
/// has not read as the letters they look like (0 as O, 1 as I, 8 as B).
pub(crate) fn enrolment_text(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(
        typed
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| match c.to_ascii_uppercase() {
                '0' => 'O',
                '1' => 'I',
                '8' => 'B',
                c => c,
            })
            .collect(),
    )
}

/// The stored form of a presented secret.
pub fn hash(presented: &str) -> Vec<u8> {
    Sha256::digest(presented.as_bytes()).to_vec()
}

/// Equal in time independent of where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
