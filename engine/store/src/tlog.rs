//! The audit as a transparency log (issue #12): a Merkle tree per RFC 6962 over the sealed
//! events, and signed checkpoints of it in the standard formats — a C2SP `tlog-checkpoint`
//! (origin, tree size, root hash) inside a C2SP `signed-note`, signed with Ed25519 under a key
//! kept outside the database. A database writer who rewrites a row and recomputes every hash
//! after it still cannot make a checkpoint the public key accepts; one who deletes the chain
//! with its checkpoints is caught by the copy of the latest checkpoint kept outside the
//! database (the checkpoint log).
//!
//! Keys are in the formats of the Go reference implementation (`golang.org/x/mod/sumdb/note`),
//! so other tools read them: a signer key `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`
//! in a file only its owner can read, and a verifier key `<name>+<key id>+<base64(0x01 ‖
//! public key)>` that can be published (the key id: the first four bytes of SHA-256 over the
//! name, a newline, 0x01 and the public key, in hex).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The Ed25519 signature type of a note key.
const ED25519: u8 = 0x01;

/// Why a key or a note cannot be used. Never shows a key's secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("the audit key file {0} cannot be read")]
    Unreadable(String),
    #[error(
        "the audit key file {0} can be read by other accounts (mode {1:o}): make it the owner's only (chmod 600)"
    )]
    Exposed(String, u32),
    #[error("the audit key file {0} belongs to another account")]
    NotOwn(String),
    #[error("{0} is not a signer key (PRIVATE+KEY+name+id+key)")]
    MalformedSigner(String),
    #[error("not a verifier key (name+id+key): {0}")]
    MalformedVerifier(String),
    #[error("not a signed checkpoint: {0}")]
    MalformedNote(String),
    #[error("the checkpoint is not signed by {0}")]
    NotSigned(String),
}

/// SHA-256 of an empty tree, per RFC 6962 §2.1.
pub fn empty_root() -> [u8; 32] {
    Sha256::digest([]).into()
}

/// A leaf's hash (RFC 6962: SHA-256 of 0x00 and the leaf's bytes, given as parts that are
/// each hashed length-prefixed).
pub fn leaf<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// An interior node (RFC 6962: SHA-256 of 0x01, the left and the right child).
fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The right edge of the tree: the roots of its perfect subtrees, largest first (the binary
/// digits of its size). Appending a leaf and taking the root are O(log n): the log grows for
/// years and is sealed thousands of times a day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<[u8; 32]>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.nodes.pop().unwrap_or_default();
            h = node(&left, &h);
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The tree's root hash (RFC 6962 §2.1: the subtrees folded from the right).
    pub fn root(&self) -> [u8; 32] {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |h, left| node(left, &h))
    }

    /// As kept in the database: `size:hex,hex,…`.
    pub fn encode(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(hex::encode).collect();
        format!("{}:{}", self.size, nodes.join(","))
    }

    pub fn decode(text: &str) -> Option<Frontier> {
        let (size, nodes) = text.split_once(':')?;
        let size: u64 = size.parse().ok()?;
        let nodes = nodes
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| hex::decode(n).ok()?.try_into().ok())
            .collect::<Option<Vec<[u8; 32]>>>()?;
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }
}

/// The root of the tree over `leaves` (leaf hashes), RFC 6962 §2.1's MTH: the left subtree
/// the largest power of two smaller than the whole.
pub fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The proof that the tree of the first `old` leaves is a prefix of the tree over all of
/// `leaves` (RFC 6962 §2.1.2, `PROOF(m, D[n])`): what a witness needs to cosign a larger
/// checkpoint of the same log. Empty when `old` is 0 or the whole.
pub fn consistency_proof(leaves: &[[u8; 32]], old: usize) -> Vec<[u8; 32]> {
    fn subproof(m: usize, leaves: &[[u8; 32]], whole: bool, out: &mut Vec<[u8; 32]>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                out.push(root_of(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], whole, out);
            out.push(root_of(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, out);
            out.push(root_of(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    if old > 0 && old < leaves.len() {
        subproof(old, leaves, true, &mut out);
    }
    out
}

/// Whether `proof` shows the tree of `old` leaves with root `old_root` to be a prefix of the
/// tree of `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn consistent(
    old: u64,
    new: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<[u8; 32]> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == old_root && &sr == new_root && s == 0
}

/// The audit path of the leaf at `index` in the tree over `leaves` (RFC 6962 §2.1.1,
/// `PATH(m, D[n])`): what proves that one event is in the tree a signed checkpoint names.
/// Empty for a tree of one leaf.
pub fn inclusion_proof(leaves: &[[u8; 32]], index: usize) -> Vec<[u8; 32]> {
    fn path(m: usize, leaves: &[[u8; 32]], out: &mut Vec<[u8; 32]>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, &leaves[..k], out);
            out.push(root_of(&leaves[k..]));
        } else {
            path(m - k, &leaves[k..], out);
            out.push(root_of(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    if index < leaves.len() {
        path(index, leaves, &mut out);
    }
    out
}

/// Whether `proof` shows `leaf` to be the leaf at `index` of the tree of `size` leaves with
/// root `root` (RFC 9162 §2.1.3.2).
pub fn included(
    index: u64,
    size: u64,
    leaf: &[u8; 32],
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// A note key's id: the first four bytes of SHA-256 over the name, a newline, the signature
/// type (0x01 a log's Ed25519 key, 0x04 a witness's cosignature/v1 key) and the public key.
pub(crate) fn key_id_of(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    key_id_of(name, ED25519, public)
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| !c.is_whitespace() && c != '+' && !c.is_control())
}

/// The key that signs the audit's checkpoints; its name is the log's origin.
pub struct AuditSigner {
    name: String,
    key: SigningKey,
    /// The key of the events' MACs, derived from the signing key: whoever may sign the log may
    /// write events into it.
    mac_key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSigner({})", self.name)
    }
}

impl AuditSigner {
    fn of(name: &str, seed: &[u8; 32]) -> AuditSigner {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(seed).expect("any key length");
        mac.update(b"studyflow audit event MAC v1");
        AuditSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
            mac_key: zeroize::Zeroizing::new(mac.finalize().into_bytes().into()),
        }
    }

    /// The MAC of an event written into the log (its parts length-prefixed), in hex.
    pub fn event_mac<'p>(&self, parts: impl IntoIterator<Item = &'p [u8]>) -> String {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key[..]).expect("any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new key named `name` (the log's origin, e.g. `vpd.gov.lv/studyflow/audit`).
    pub fn generate(name: &str) -> Result<AuditSigner, TlogError> {
        if !valid_name(name) {
            return Err(TlogError::MalformedSigner(format!("the name `{name}`")));
        }
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).expect("the operating system's random generator");
        Ok(AuditSigner::of(name, &seed))
    }

    /// Parses a signer key (`PRIVATE+KEY+name+id+key`).
    pub fn parse(text: &str) -> Result<AuditSigner, TlogError> {
        let bad = || TlogError::MalformedSigner("the key".into());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let (name, id, seed) = key_parts(rest, ED25519).ok_or_else(bad)?;
        let signer = AuditSigner::of(name, &seed);
        if hex::encode(signer.id()) != id {
            return Err(bad());
        }
        Ok(signer)
    }

    /// Reads the key file, which must be its owner's only (like the master key).
    pub fn from_file(path: &Path) -> Result<AuditSigner, TlogError> {
        let text = read_key_file(path)?;
        AuditSigner::parse(&text)
            .map_err(|_| TlogError::MalformedSigner(path.display().to_string()))
    }

    /// Writes the key to a new file only its owner can read.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        write_key_file(path, &self.encode())
    }

    fn encode(&self) -> zeroize::Zeroizing<String> {
        let key = key_text(&self.name, ED25519, self.id(), self.key.as_bytes());
        zeroize::Zeroizing::new(format!("PRIVATE+KEY+{}", key.as_str()))
    }

    fn id(&self) -> [u8; 4] {
        key_id(&self.name, self.key.verifying_key().as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier of this key.
    pub fn verifier(&self) -> AuditVerifier {
        AuditVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// `text` as a signed note (text, a blank line, the signature line).
    pub fn sign(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.id().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }

    /// The signed checkpoint of a tree of `size` leaves with root `root`.
    pub fn checkpoint(&self, size: u64, root: &[u8; 32]) -> String {
        self.sign(&checkpoint_text(&self.name, size, root))
    }
}

/// A secret key file's text, when the file is its owner's only and belongs to this account
/// (like the master key).
pub(crate) fn read_key_file(path: &Path) -> Result<zeroize::Zeroizing<String>, TlogError> {
    let shown = path.display().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|_| TlogError::Unreadable(shown.clone()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(TlogError::Exposed(shown, mode & 0o777));
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            if let Ok(me) = std::fs::metadata("/proc/self")
                && meta.uid() != me.uid()
            {
                return Err(TlogError::NotOwn(shown));
            }
        }
    }
    Ok(zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|_| TlogError::Unreadable(shown))?,
    ))
}

/// Writes a secret key to a new file only its owner can read.
pub(crate) fn write_key_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// The body of a C2SP `tlog-checkpoint`: origin, size, root.
pub(crate) fn checkpoint_text(origin: &str, size: u64, root: &[u8; 32]) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

/// The public key that checks the audit's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifier {
    name: String,
    key: VerifyingKey,
}

/// A checkpoint the verifier accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

impl AuditVerifier {
    /// Parses a verifier key (`name+id+key`).
    pub fn parse(text: &str) -> Result<AuditVerifier, TlogError> {
        let (name, key) = public_key(text, ED25519)
            .ok_or_else(|| TlogError::MalformedVerifier(text.trim().chars().take(80).collect()))?;
        Ok(AuditVerifier { name, key })
    }

    /// The key as it is published.
    pub fn encode(&self) -> String {
        let id = key_id(&self.name, self.key.as_bytes());
        key_text(&self.name, ED25519, id, self.key.as_bytes()).to_string()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text of a note this key signed; other signatures (a witness's) are skipped.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, TlogError> {
        let bad = |why: &str| TlogError::MalformedNote(why.to_owned());
        let (text, signatures) = split_note(note).ok_or_else(|| bad("no blank line"))?;
        let id = key_id(&self.name, self.key.as_bytes());
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(bad("a line that is not a signature"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(bad("a signature without its name"));
            };
            if name != self.name {
                continue;
            }
            let blob = B64
                .decode(blob)
                .map_err(|_| bad("a signature that is not base64"))?;
            if blob.len() != 68 || blob[..4] != id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| bad("a malformed signature"))?;
            if self.key.verify(text.as_bytes(), &signature).is_ok() {
                return Ok(text);
            }
        }
        Err(TlogError::NotSigned(self.name.clone()))
    }

    /// The checkpoint of a signed note, when this key signed it and its origin is this key's.
    pub fn checkpoint(&self, note: &str) -> Result<Checkpoint, TlogError> {
        let text = self.open(note)?;
        parse_checkpoint(text)
            .filter(|c| c.origin == self.name)
            .ok_or_else(|| TlogError::MalformedNote("not a checkpoint of this log".into()))
    }
}

/// The origin, size and root of a checkpoint's text (signature not checked).
pub fn parse_checkpoint(text: &str) -> Option<Checkpoint> {
    let mut lines = text.lines();
    let origin = lines.next()?.to_owned();
    let size = lines.next()?.parse().ok()?;
    let root = B64.decode(lines.next()?).ok()?.try_into().ok()?;
    Some(Checkpoint { origin, size, root })
}

/// The size and root of a signed note without checking its signature (what the database
/// holds, read to compare with the chain).
pub fn unsigned_checkpoint(note: &str) -> Option<Checkpoint> {
    parse_checkpoint(split_note(note)?.0)
}

/// A signed note's text (up to its blank line, the text's last newline kept) and its
/// signature lines.
pub fn split_note(note: &str) -> Option<(&str, &str)> {
    let split = note.find("\n\n")?;
    Some((&note[..split + 1], &note[split + 2..]))
}

/// The parts of a key in the note formats, `<name>+<id>+base64(<kind> ‖ 32 bytes)` (a secret
/// key's after its `PRIVATE+KEY+`): its name, id (hex) and 32 bytes, when the name is one and
/// the key is of `kind`. The id is the caller's to check (a secret key's needs its public key).
pub(crate) fn key_parts(
    text: &str,
    kind: u8,
) -> Option<(&str, &str, zeroize::Zeroizing<[u8; 32]>)> {
    // A name holds no `+`; the key's base64 may.
    let mut parts = text.trim().splitn(3, '+');
    let (name, id, key) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = zeroize::Zeroizing::new(B64.decode(key).ok()?);
    if bytes.len() != 33 || bytes[0] != kind || !valid_name(name) {
        return None;
    }
    let key: [u8; 32] = bytes[1..].try_into().ok()?;
    Some((name, id, zeroize::Zeroizing::new(key)))
}

/// A published key of `kind` (`<name>+<id>+base64(<kind> ‖ key)`) whose id matches it.
pub(crate) fn public_key(text: &str, kind: u8) -> Option<(String, VerifyingKey)> {
    let (name, id, public) = key_parts(text, kind)?;
    if hex::encode(key_id_of(name, kind, &public)) != id {
        return None;
    }
    Some((name.to_owned(), VerifyingKey::from_bytes(&public).ok()?))
}

/// A key in the note formats: `<name>+<id>+base64(<kind> ‖ bytes)`.
pub(crate) fn key_text(
    name: &str,
    kind: u8,
    id: [u8; 4],
    bytes: &[u8; 32],
) -> zeroize::Zeroizing<String> {
    let mut raw = zeroize::Zeroizing::new(vec![kind]);
    raw.extend_from_slice(bytes);
    zeroize::Zeroizing::new(format!(
        "{name}+{}+{}",
        hex::encode(id),
        B64.encode(&raw[..])
    ))
}

/// The last note of a checkpoint log file, read from its end (the log grows with every seal
/// for years; a seal reads only its tail). `None` for a missing or empty log.
pub fn last_note(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // A checkpoint with a few signatures is a few hundred bytes.
    let from = len.saturating_sub(16 * 1024);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    // The cut may fall inside a character; the note after it is whole.
    let tail = String::from_utf8_lossy(&bytes);
    // Cut to the start of a note: after a blank line not followed by a signature (within a
    // note, the blank line comes before its signatures).
    let start = if from == 0 {
        0
    } else {
        match tail
            .match_indices("\n\n")
            .map(|(i, _)| i + 2)
            .find(|&i| !tail[i..].starts_with('\u{2014}'))
        {
            Some(i) => i,
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "no note begins in the last 16 KiB of the checkpoint log",
                ));
            }
        }
    };
    let mut notes = notes_in(&tail[start..]);
    // A last note not ended by its blank line was cut short by a crash: the one before it is
    // the last written whole (the next append mends the file).
    if !tail.ends_with("\n\n") {
        notes.pop();
    }
    Ok(notes.pop())
}

/// The notes of a checkpoint log file: one after another, each followed by a blank line. A
/// note whose blank line after it is missing (an append cut short) does not take the next one
/// with it: a line that is not a signature after signatures starts the next note.
pub fn notes_in(log: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let (mut body, mut signatures) = (String::new(), String::new());
    let mut in_signatures = false;
    let mut emit = |body: &mut String, signatures: &mut String| {
        if !body.is_empty() && !signatures.is_empty() {
            notes.push(format!("{body}\n{signatures}"));
        }
        body.clear();
        signatures.clear();
    };
    for line in log.lines() {
        let signature = line.starts_with('\u{2014}');
        match (in_signatures, line.is_empty(), signature) {
            (false, true, _) => in_signatures = !body.is_empty(),
            (false, false, _) => {
                body.push_str(line);
                body.push('\n');
            }
            (true, true, _) => {
                emit(&mut body, &mut signatures);
                in_signatures = false;
            }
            (true, false, true) => {
                signatures.push_str(line);
                signatures.push('\n');
            }
            (true, false, false) => {
                emit(&mut body, &mut signatures);
                in_signatures = false;
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    emit(&mut body, &mut signatures);
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Go reference implementation's documentation (`sumdb/note`): its
    /// signer key gives its verifier key, and Ed25519 being deterministic, its exact signature.
    #[test]
    fn the_reference_implementations_example_signs_the_same() {
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let signer = AuditSigner::parse(skey).unwrap();
        assert_eq!(signer.verifier().encode(), vkey);
        let note = signer.sign(text);
        assert_eq!(
            note,
            format!(
                "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            )
        );
        let verifier = AuditVerifier::parse(vkey).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), text);
        assert_eq!(&*signer.encode(), skey);
        // A changed text, another key, a mangled key: refused.
        let forged = note.replace("problem is", "problem was");
        assert!(verifier.open(&forged).is_err());
        let other = AuditSigner::generate("PeterNeumann").unwrap().verifier();
        assert!(other.open(&note).is_err());
        assert!(AuditVerifier::parse(&vkey.replace("c74f", "c75f")).is_err());
    }

    /// The root from the frontier is RFC 6962's Merkle tree hash, for every size to 40.
    #[test]
    fn the_frontier_gives_the_rfc_6962_root() {
        fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                n => {
                    let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
                    node(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        let leaves: Vec<[u8; 32]> = (0..40u64)
            .map(|i| leaf([i.to_be_bytes().as_slice(), b"event"]))
            .collect();
        let mut f = Frontier::default();
        assert_eq!(f.root(), mth(&[]));
        for n in 1..=leaves.len() {
            f.push(leaves[n - 1]);
            assert_eq!(f.root(), mth(&leaves[..n]), "size {n}");
            assert_eq!(Frontier::decode(&f.encode()), Some(f.clone()));
        }
        assert_eq!(
            Frontier::decode("3:00"),
            None,
            "three leaves need two subtrees"
        );
    }

    /// Inclusion proofs of RFC 6962's test tree (the eight leaves of certificate-transparency's
    /// reference tests) and, for every leaf of every tree to 33 leaves, a proof that verifies
    /// for that leaf at that place in that tree and for nothing else.
    #[test]
    fn inclusion_proofs_prove_a_leaf_and_nothing_else() {
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let rfc: Vec<[u8; 32]> = data
            .iter()
            .map(|d| {
                Sha256::new()
                    .chain_update([0])
                    .chain_update(d)
                    .finalize()
                    .into()
            })
            .collect();
        assert_eq!(
            hex::encode(root_of(&rfc)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        let path: Vec<String> = inclusion_proof(&rfc, 0).iter().map(hex::encode).collect();
        assert_eq!(
            path,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );

        let leaves: Vec<[u8; 32]> = (0..33u64)
            .map(|i| leaf([i.to_be_bytes().as_slice(), b"event"]))
            .collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let root = root_of(tree);
            for m in 0..n {
                let proof = inclusion_proof(tree, m);
                let (m64, n64) = (m as u64, n as u64);
                assert!(included(m64, n64, &tree[m], &proof, &root), "{m} of {n}");
                let other = leaves[(m + 1) % leaves.len()];
                assert!(!included(m64, n64, &other, &proof, &root), "another leaf");
                if n > 1 {
                    assert!(
                        !included((m64 + 1) % n64, n64, &tree[m], &proof, &root),
                        "another place"
                    );
                }
                assert!(
                    !included(m64, n64, &tree[m], &proof, &[0; 32]),
                    "another root"
                );
                if let Some((_, short)) = proof.split_last() {
                    assert!(
                        !included(m64, n64, &tree[m], short, &root),
                        "a step left out"
                    );
                }
            }
            assert!(
                !included(n as u64, n as u64, &tree[0], &[], &root),
                "past the end"
            );
        }
    }

    #[test]
    fn checkpoints_round_trip_and_logs_split_into_notes() {
        let signer = AuditSigner::generate("studyflow.test/audit").unwrap();
        let a = signer.checkpoint(3, &[7; 32]);
        let b = signer.checkpoint(5, &[8; 32]);
        let log = format!("{a}\n{b}\n");
        let notes = notes_in(&log);
        assert_eq!(notes, [a.clone(), b.clone()]);
        // An append cut short before its blank line does not swallow the next note.
        assert_eq!(notes_in(&format!("{a}{b}\n")), [a.clone(), b.clone()]);
        // From the end of a log file: a last note cut short is not the last note; a tail with
        // no note beginning in it is an error, not "no log".
        let dir = std::env::temp_dir().join(format!("sf-tlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        std::fs::write(&path, format!("{a}\n{b}\n{}", &a[..a.len() - 9])).unwrap();
        assert_eq!(last_note(&path).unwrap(), Some(b.clone()));
        std::fs::write(&path, format!("{a}\n{}", "x".repeat(20_000))).unwrap();
        assert!(last_note(&path).is_err());
        assert_eq!(last_note(&dir.join("none")).unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
        let c = signer.verifier().checkpoint(&notes[1]).unwrap();
        assert_eq!((c.size, c.root), (5, [8; 32]));
        assert_eq!(unsigned_checkpoint(&a).unwrap().size, 3);
    }
}
