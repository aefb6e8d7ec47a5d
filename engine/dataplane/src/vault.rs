//! Identifiers never rest in plaintext (design: "Identifiers never rest in plaintext").
//!
//! Each study has its own keys: one for AEAD encryption of identifiers (XChaCha20-Poly1305,
//! the study id and the field as associated data, so a ciphertext cannot be moved to another
//! study or field) and one for the blind index that linkage joins on (HMAC-SHA-256, so equal
//! identifiers meet without being decrypted). The study keys are stored only wrapped by the
//! master key, which is read from a file (`STUDYFLOW_MASTER_KEY_FILE`) and never from the
//! database. Irreversible deletion (MK403 p.17.3, p.22.3–22.4, p.26, p.34) destroys the wrapped
//! keys: afterwards every ciphertext of the study in the live database and the work folder is
//! noise, and even the master key opens nothing there. A backup (or a PostgreSQL or SQLite page not
//! yet reused) taken before the destruction still holds the wrapped keys, which the master key
//! still opens: keep database backups no longer than the study's identifying data may be kept
//! (p.26). studyflow cannot yet rotate the master key after a destruction (a gap, listed in
//! docs/regulation-coverage.md). The keys also hold an age identity whose public half seals people's
//! notes on steps with personal data ([`StudyKeys::note_recipient`]), so those go with them.

use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a key or a ciphertext could not be used. Never carries key or plaintext material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the master key file {0} cannot be read")]
    MasterKeyUnreadable(String),
    #[error("the master key file {0} must hold 32 bytes as 64 hexadecimal digits")]
    MasterKeyMalformed(String),
    #[error(
        "the master key file {0} can be read by other accounts (mode {1:o}); make it the service account's alone: chmod 600 {0}"
    )]
    MasterKeyExposed(String, u32),
    #[error(
        "the master key file {0} belongs to another account; it must be the service account's own"
    )]
    MasterKeyNotOwn(String),
    #[error("the study keys of `{0}` do not open with this master key (wrong key, or altered)")]
    Unwrap(String),
    #[error("a ciphertext of `{0}` does not open (its keys were destroyed, or it was altered)")]
    Open(String),
}

/// The master key. Its `Debug` shows nothing; its bytes are wiped when it is dropped.
#[derive(zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

fn unhex(text: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    hex::decode(text.trim()).ok().map(zeroize::Zeroizing::new)
}

/// The length of a nonce, which leads every ciphertext.
pub const NONCE: usize = 24;
/// The length of the authentication tag, which ends every ciphertext.
const TAG: usize = 16;

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random generator");
    b
}

impl MasterKey {
    /// Reads the key file: 64 hexadecimal digits.
    pub fn from_file(path: &Path) -> Result<MasterKey, VaultError> {
        let shown = path.display().to_string();
        // A key every account on the machine can read protects nothing (MK403 p.25.3).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|_| VaultError::MasterKeyUnreadable(shown.clone()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(VaultError::MasterKeyExposed(shown, mode & 0o777));
            }
            // Owned by the account that runs studyflow (the owner of /proc/self): a private
            // file of another account is still another account's.
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::fs::MetadataExt;
                if let (Ok(key), Ok(me)) =
                    (std::fs::metadata(path), std::fs::metadata("/proc/self"))
                    && key.uid() != me.uid()
                {
                    return Err(VaultError::MasterKeyNotOwn(shown));
                }
            }
        }
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|_| VaultError::MasterKeyUnreadable(shown.clone()))?,
        );
        let bytes = unhex(&text).ok_or_else(|| VaultError::MasterKeyMalformed(shown.clone()))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::MasterKeyMalformed(shown))?;
        Ok(MasterKey(key))
    }

    /// Makes a new random key file readable by its owner only (the demo makes one).
    pub fn create_file(path: &Path) -> std::io::Result<MasterKey> {
        let key = random::<32>();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        use std::io::Write;
        let mut f = options.open(path)?;
        f.write_all(zeroize::Zeroizing::new(hex::encode(key)).as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        Ok(MasterKey(key))
    }

    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        MasterKey(key)
    }
}

/// A study's keys. Their `Debug` shows nothing; their bytes are wiped when they are dropped.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct StudyKeys {
    #[zeroize(skip)]
    study: String,
    encryption: [u8; 32],
    index: [u8; 32],
    /// The age identity that opens the study's task notes (see [`StudyKeys::note_recipient`]),
    /// in its text form; `None` for keys made before notes were sealed.
    notes: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for StudyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StudyKeys({}, ***)", self.study)
    }
}

impl StudyKeys {
    /// New random keys for a study.
    pub fn generate(study: &str) -> StudyKeys {
        StudyKeys {
            study: study.to_owned(),
            encryption: random(),
            index: random(),
            notes: Some(zeroize::Zeroizing::new(
                age::x25519::Identity::generate()
                    .to_string()
                    .expose_secret()
                    .to_owned(),
            )),
        }
    }

    /// The keys encrypted under the master key, the study id as associated data: what the
    /// store keeps.
    pub fn wrap(&self, master: &MasterKey) -> Vec<u8> {
        // Sized whole up front: a buffer that grew would leave the keys in the memory it freed.
        let notes = self.notes.as_deref().map_or(0, String::len);
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(64 + notes));
        plain.extend_from_slice(&self.encryption);
        plain.extend_from_slice(&self.index);
        if let Some(notes) = &self.notes {
            plain.extend_from_slice(notes.as_bytes());
        }
        seal_with(
            &master.0,
            &plain,
            format!("studyflow/keys/{}", self.study).as_bytes(),
        )
    }

    /// The keys from their wrapped form.
    pub fn unwrap(
        study: &str,
        wrapped: &[u8],
        master: &MasterKey,
    ) -> Result<StudyKeys, VaultError> {
        let plain = zeroize::Zeroizing::new(
            open_with(
                &master.0,
                wrapped,
                format!("studyflow/keys/{study}").as_bytes(),
            )
            .ok_or_else(|| VaultError::Unwrap(study.to_owned()))?,
        );
        if plain.len() < 64 {
            return Err(VaultError::Unwrap(study.to_owned()));
        }
        let mut encryption = [0u8; 32];
        let mut index = [0u8; 32];
        encryption.copy_from_slice(&plain[..32]);
        index.copy_from_slice(&plain[32..64]);
        let notes = match &plain[64..] {
            [] => None,
            rest => Some(zeroize::Zeroizing::new(
                std::str::from_utf8(rest)
                    .ok()
                    .filter(|s| age::x25519::Identity::from_str(s).is_ok())
                    .ok_or_else(|| VaultError::Unwrap(study.to_owned()))?
                    .to_owned(),
            )),
        };
        Ok(StudyKeys {
            study: study.to_owned(),
            encryption,
            index,
            notes,
        })
    }

    /// The public key people's notes on the study's steps with personal data are sealed to
    /// (MK403 p.26): whoever completes a task can seal, only these keys open, and the notes go
    /// with them. `None` for keys made before notes were sealed.
    pub fn note_recipient(&self) -> Option<String> {
        Some(self.note_identity()?.to_public().to_string())
    }

    fn note_identity(&self) -> Option<age::x25519::Identity> {
        age::x25519::Identity::from_str(self.notes.as_deref()?).ok()
    }

    /// Opens a note sealed to [`StudyKeys::note_recipient`].
    pub fn open_note(&self, sealed: &[u8]) -> Result<String, VaultError> {
        let failed = || VaultError::Open(self.study.clone());
        let identity = self.note_identity().ok_or_else(failed)?;
        let plain = zeroize::Zeroizing::new(age::decrypt(&identity, sealed).map_err(|_| failed())?);
        String::from_utf8(plain.to_vec()).map_err(|_| failed())
    }

    /// Encrypts an identifier of `field` (e.g. `personal_code`).
    pub fn seal(&self, field: &str, plaintext: &str) -> Vec<u8> {
        seal_with(&self.encryption, plaintext.as_bytes(), &self.aad(field))
    }

    /// Decrypts what [`StudyKeys::seal`] made for the same study and field.
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<String, VaultError> {
        open_with(&self.encryption, sealed, &self.aad(field))
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or_else(|| VaultError::Open(self.study.clone()))
    }

    /// Seals `buf[at + NONCE..]` in place, in the layout of [`StudyKeys::seal`]: a fresh nonce
    /// goes into `buf[at..at + NONCE]` (which the caller reserved) and the tag is appended. A
    /// dataset of hundreds of megabytes is sealed without a second copy of it.
    pub fn seal_in_place(&self, field: &str, buf: &mut Vec<u8>, at: usize) {
        let cipher = XChaCha20Poly1305::new((&self.encryption).into());
        let nonce = random::<NONCE>();
        buf[at..at + NONCE].copy_from_slice(&nonce);
        let tag = cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &self.aad(field),
                &mut buf[at + NONCE..],
            )
            .expect("encryption of a bounded message cannot fail");
        buf.extend_from_slice(&tag);
    }

    /// Opens in place what [`StudyKeys::seal_in_place`] (or [`StudyKeys::seal`]) made, starting
    /// at `at`: the plaintext's range in `buf`.
    pub fn open_in_place(
        &self,
        field: &str,
        buf: &mut [u8],
        at: usize,
    ) -> Result<std::ops::Range<usize>, VaultError> {
        let failed = || VaultError::Open(self.study.clone());
        if buf.len() < at + NONCE + TAG {
            return Err(failed());
        }
        let (nonce, rest) = buf[at..].split_at_mut(NONCE);
        let n = rest.len() - TAG;
        let (text, tag) = rest.split_at_mut(n);
        XChaCha20Poly1305::new((&self.encryption).into())
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &self.aad(field),
                text,
                Tag::from_slice(tag),
            )
            .map_err(|_| failed())?;
        Ok(at + NONCE..at + NONCE + n)
    }

    /// The blind index of an identifier: equal identifiers of the study give equal indexes;
    /// without the key it says nothing. Personal codes are compared by their digits, so
    /// `010180-12345` and `01018012345` meet.
    pub fn blind_index(&self, field: &str, value: &str) -> [u8; 32] {
        self.blind_indexer(field).index(value)
    }

    /// The blind index of one field, keyed once for many values (linkage of millions of rows).
    pub fn blind_indexer(&self, field: &str) -> BlindIndexer {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index).expect("any key length");
        mac.update(field.as_bytes());
        mac.update(&[0]);
        BlindIndexer {
            mac,
            digits_only: field.contains("personal_code"),
        }
    }

    fn aad(&self, field: &str) -> Vec<u8> {
        format!("studyflow/{}/{field}", self.study).into_bytes()
    }
}

/// [`StudyKeys::blind_index`] of one field, with the key and the field absorbed once.
#[derive(Clone)]
pub struct BlindIndexer {
    mac: Hmac<Sha256>,
    digits_only: bool,
}

impl Drop for BlindIndexer {
    /// The MAC's state is derived from the study's index key: it is overwritten in place with
    /// the state of an all-zero key when the indexer goes. `hmac` 0.12 offers no zeroize of its
    /// own; the state holds no heap memory, so overwriting the field covers all of it, and
    /// `black_box` keeps the compiler from dropping the write as dead (best effort, without
    /// `unsafe`, which this project has none of).
    fn drop(&mut self) {
        self.mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("any key length");
        std::hint::black_box(&mut self.mac);
    }
}

impl BlindIndexer {
    pub fn index(&self, value: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        if self.digits_only {
            // Personal codes meet by their digits (with or without the hyphen).
            let mut buf = [0u8; 64];
            let mut n = 0;
            for b in value.bytes().filter(u8::is_ascii_digit) {
                if n == buf.len() {
                    mac.update(&buf);
                    n = 0;
                }
                buf[n] = b;
                n += 1;
            }
            mac.update(&buf[..n]);
        } else {
            mac.update(value.trim().as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// nonce (24 bytes) || ciphertext with tag.
fn seal_with(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = random::<24>();
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("encryption of a bounded message cannot fail");
    let mut out = Vec::with_capacity(24 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_with(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 24 + 16 {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(&sealed[..24]),
            Payload {
                msg: &sealed[24..],
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place seal is the same envelope as `seal`: each opens the other's, and a
    /// changed byte or another field opens nothing.
    #[test]
    fn datasets_seal_in_place_in_the_layout_of_seal() {
        let keys = StudyKeys::generate("s1");
        let mut buf = vec![7u8; 1 + NONCE];
        buf.extend_from_slice(b"{\"rows\":1}");
        keys.seal_in_place("dataset:x", &mut buf, 1);
        assert_eq!(buf[0], 7);
        assert_eq!(keys.open("dataset:x", &buf[1..]).unwrap(), "{\"rows\":1}");
        let mut other = buf.clone();
        assert!(keys.open_in_place("dataset:y", &mut other, 1).is_err());
        let mut altered = buf.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(keys.open_in_place("dataset:x", &mut altered, 1).is_err());
        let mut sealed = vec![0u8];
        sealed.extend(keys.seal("dataset:x", "{}"));
        let range = keys.open_in_place("dataset:x", &mut sealed, 1).unwrap();
        assert_eq!(&sealed[range], b"{}");
        assert!(keys.open_in_place("dataset:x", &mut [0u8; 10], 1).is_err());
    }

    #[test]
    fn identifiers_round_trip_only_with_the_right_keys_study_and_field() {
        let master = MasterKey::from_bytes([9u8; 32]);
        let keys = StudyKeys::generate("study-a");
        let sealed = keys.seal("personal_code", "010180-12345");
        assert!(
            !sealed.windows(6).any(|w| w == b"010180"),
            "no plaintext in the ciphertext"
        );
        assert_eq!(keys.open("personal_code", &sealed).unwrap(), "010180-12345");
        assert!(
            keys.open("proceeding_number", &sealed).is_err(),
            "bound to its field"
        );
        let wrapped = keys.wrap(&master);
        let again = StudyKeys::unwrap("study-a", &wrapped, &master).unwrap();
        assert_eq!(
            again.open("personal_code", &sealed).unwrap(),
            "010180-12345"
        );
        assert!(
            StudyKeys::unwrap("study-b", &wrapped, &master).is_err(),
            "bound to its study"
        );
        assert!(StudyKeys::unwrap("study-a", &wrapped, &MasterKey::from_bytes([8u8; 32])).is_err());
        // Other keys (the study's keys destroyed, new ones made): nothing opens.
        assert!(
            StudyKeys::generate("study-a")
                .open("personal_code", &sealed)
                .is_err()
        );
        assert!(!format!("{keys:?} {master:?}").contains('9'));
    }

    /// Task notes (MK403 p.26): sealed to the public half, opened only with the study's keys
    /// as wrapped and unwrapped; keys wrapped before notes existed still open, without it.
    #[test]
    fn task_notes_open_only_with_the_study_keys() {
        let master = MasterKey::from_bytes([4u8; 32]);
        let keys = StudyKeys::generate("s");
        let recipient = keys.note_recipient().unwrap();
        assert!(recipient.starts_with("age1"));
        let to = age::x25519::Recipient::from_str(&recipient).unwrap();
        let sealed = age::encrypt(&to, "Anna called back".as_bytes()).unwrap();
        let back = StudyKeys::unwrap("s", &keys.wrap(&master), &master).unwrap();
        assert_eq!(back.note_recipient().as_deref(), Some(recipient.as_str()));
        assert_eq!(back.open_note(&sealed).unwrap(), "Anna called back");
        assert!(StudyKeys::generate("s").open_note(&sealed).is_err());
        // The keys as wrapped before: 64 bytes, no note key.
        let mut plain = keys.encryption.to_vec();
        plain.extend_from_slice(&keys.index);
        let old = seal_with(&master.0, &plain, b"studyflow/keys/s");
        let old = StudyKeys::unwrap("s", &old, &master).unwrap();
        assert_eq!(old.note_recipient(), None);
        assert!(old.open_note(&sealed).is_err());
        // Anything else after the 64 bytes is not a key.
        plain.extend_from_slice(b"AGE-SECRET-KEY-1NOTAKEY");
        let bad = seal_with(&master.0, &plain, b"studyflow/keys/s");
        assert!(StudyKeys::unwrap("s", &bad, &master).is_err());
    }

    #[test]
    fn the_blind_index_joins_equal_identifiers_only() {
        let keys = StudyKeys::generate("s");
        assert_eq!(
            keys.blind_index("personal_code", "010180-12345"),
            keys.blind_index("personal_code", "01018012345")
        );
        assert_ne!(
            keys.blind_index("personal_code", "010180-12345"),
            keys.blind_index("personal_code", "010180-12346")
        );
        assert_ne!(
            keys.blind_index("personal_code", "11826001234"),
            keys.blind_index("proceeding_number", "11826001234")
        );
        assert_ne!(
            keys.blind_index("personal_code", "010180-12345"),
            StudyKeys::generate("s").blind_index("personal_code", "010180-12345")
        );
    }

    #[test]
    fn the_master_key_file_is_made_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("studyflow-vault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let _ = std::fs::remove_file(&path);
        let made = MasterKey::create_file(&path).unwrap();
        let read = MasterKey::from_file(&path).unwrap();
        assert_eq!(made.0, read.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(MasterKey::create_file(&path).is_err(), "never overwritten");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            MasterKey::from_file(&path),
            Err(VaultError::MasterKeyMalformed(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
