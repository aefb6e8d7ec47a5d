//! Direct contact with data subjects (MK403 p.31–32): the contact details of the clients who
//! consented, and their transfer to the external researcher.
//!
//! A service researcher collects the written consents and extracts, for the consenting clients
//! only, the contact fields the spec names (`direct_contact.fields`: first name, surname,
//! e-mail, phone — p.32 allows nothing else). The engine imports that list whole or not at all
//! and keeps it sealed under the study's keys. The transfer encrypts it to the external
//! researcher's public key(s) with age (X25519), so that only the holder of the matching
//! private key reads it; the file carries no other data and is audited by count, never by
//! content. The list is read and written by [`crate::csvio`]: a supplied list with a column
//! named twice or a control character is refused whole, and the researcher's copy defuses
//! spreadsheet formulas (a name `=HYPERLINK(…)` arrives as the text `'=HYPERLINK(…)`; a phone
//! number `+371 …` as `'+371 …`, which a spreadsheet shows as text).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use studyflow_spec::catalogue::CONTACT_FIELDS;

use crate::answers::{Rejected, RowProblem};

/// The contact list: the columns (contact fields, in the file's order) and one row per client.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contacts {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Imports the consenting clients' contact list (CSV with a header). `allowed` are the contact
/// fields the spec names (p.32). Any problem rejects the whole file; the report names rows and
/// columns, never a value.
pub fn import(bytes: &[u8], allowed: &[&str]) -> Result<Contacts, Rejected> {
    let (header, rows) = crate::csv_import::records(bytes, |h| CONTACT_FIELDS.contains(&h))?;
    let columns: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let mut problems = crate::answers::Problems::default();
    crate::csv_import::repeated_columns(&columns, &mut problems);
    for (i, c) in columns.iter().enumerate() {
        if !CONTACT_FIELDS.contains(&c.as_str()) {
            // Not named: without a header row the cell would be a client's name or address.
            problems.push(RowProblem {
                row: 1,
                problem: format!(
                    "column {} is not a contact field (is the header row missing?); only first_name, last_name, email and phone may be passed on (MK403 p.32)",
                    i + 1
                ),
            });
        } else if !allowed.contains(&c.as_str()) {
            problems.push(RowProblem {
                row: 1,
                problem: format!(
                    "column {} `{c}` is not among the spec's `direct_contact.fields` (MK403 p.32)",
                    i + 1
                ),
            });
        }
    }
    for needed in ["first_name", "last_name"] {
        if !columns.iter().any(|c| c == needed) {
            problems.push(RowProblem {
                row: 1,
                problem: format!("there is no `{needed}` column (MK403 p.32)"),
            });
        }
    }
    if !columns.iter().any(|c| c == "email" || c == "phone") {
        problems.push(RowProblem {
            row: 1,
            problem: "there is neither an `email` nor a `phone` column (MK403 p.32)".into(),
        });
    }
    if !problems.is_empty() {
        return Err(problems.rejected());
    }
    let at = |name: &str| columns.iter().position(|c| c == name);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for record in &rows {
        let (line, row) = (record.line, &record.cells);
        if row.len() == 1 && row[0].trim().is_empty() {
            continue;
        }
        if row.len() != columns.len() {
            problems.push(RowProblem {
                row: line,
                problem: format!("{} fields, the header has {}", row.len(), columns.len()),
            });
            continue;
        }
        let row: Vec<String> = row.iter().map(|v| v.trim().to_owned()).collect();
        let get = |name: &str| at(name).map(|j| row[j].as_str()).unwrap_or("");
        for name in ["first_name", "last_name"] {
            if get(name).is_empty() {
                problems.push(RowProblem {
                    row: line,
                    problem: format!("`{name}` is empty"),
                });
            }
        }
        let email = get("email");
        let phone = get("phone");
        if email.is_empty() && phone.is_empty() {
            problems.push(RowProblem {
                row: line,
                problem: "neither an e-mail address nor a phone number".into(),
            });
        }
        if !email.is_empty() && !is_email(email) {
            problems.push(RowProblem {
                row: line,
                problem: "`email` is not an e-mail address".into(),
            });
        }
        if !phone.is_empty() && !is_phone(phone) {
            problems.push(RowProblem {
                row: line,
                problem: "`phone` is not a phone number".into(),
            });
        }
        if !seen.insert(row.clone()) {
            problems.push(RowProblem {
                row: line,
                problem: "repeats an earlier row".into(),
            });
        }
        out.push(row);
    }
    if !problems.is_empty() {
        return Err(problems.rejected());
    }
    Ok(Contacts { columns, rows: out })
}

fn is_email(v: &str) -> bool {
    let mut parts = v.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

fn is_phone(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && v.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '-') || (c == '+' && i == 0))
}

/// Why the transfer cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{path}: line {line} is not an age public key (age1…)")]
    BadRecipient { path: PathBuf, line: usize },
    #[error("{0}: names no recipient's public key")]
    NoRecipient(PathBuf),
    #[error("encrypting to the recipients failed: {0}")]
    Encrypt(String),
    #[error("the contact list cannot be written as CSV: {0}")]
    Csv(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Where the keys the contact list of `study` is encrypted to are kept under the work
/// folder's `recipients/`: a file per person who receives it, named by their login, holding
/// the age public key they gave through the server (MK403 p.32).
pub fn key_folder(recipients: &Path, study: &str) -> PathBuf {
    recipients.join(study)
}

/// Why a key given for the contact list is not taken.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not an age public key (age1… of 62 characters; `age-keygen` makes a pair and prints it)"
    )]
    NotAKey,
    #[error("the login or the study's id cannot name a key file")]
    Login,
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// A person's key for a study's contact list, written beside its place and not yet in it
/// ([`give_key`]): placed once its giving is audited, or discarded.
#[derive(Debug)]
pub struct StagedKey {
    staged: PathBuf,
    target: PathBuf,
    /// SHA-256 of the key as given, for the audit.
    pub sha256: String,
}

impl StagedKey {
    /// Puts the key in place (replacing the person's key before it); how many people's keys
    /// the study's contact list is now encrypted to.
    pub fn place(self) -> Result<usize, KeyError> {
        let io = |e| KeyError::Io(self.target.clone(), e);
        std::fs::rename(&self.staged, &self.target).map_err(io)?;
        let folder = self.target.parent().unwrap_or(Path::new("."));
        Ok(key_files(folder).map_err(io)?.len())
    }

    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.staged);
    }
}

/// Checks `key` as an age X25519 public key and writes it, owner-only, beside the place of
/// `login`'s key for the contact list of `study` ([`key_folder`]).
pub fn give_key(
    recipients: &Path,
    study: &str,
    login: &str,
    key: &str,
) -> Result<StagedKey, KeyError> {
    let key = key.trim();
    let parsed = age::x25519::Recipient::from_str(key).map_err(|_| KeyError::NotAKey)?;
    let plain = |n: &str| {
        !n.is_empty()
            && !n.starts_with('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    };
    if !plain(login) || !plain(study) {
        return Err(KeyError::Login);
    }
    let folder = key_folder(recipients, study);
    let io = |e| KeyError::Io(folder.clone(), e);
    crate::files::private_dirs(&folder).map_err(io)?;
    let target = folder.join(format!("{login}.txt"));
    // A name of its own (two gifts at once, or two servers on one folder, never share one),
    // made new: nothing there before is written through.
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let staged = folder.join(format!(".{login}.{}.partial", hex::encode(nonce)));
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&staged).map_err(io)?;
        f.write_all(format!("{parsed}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io)?;
    }
    Ok(StagedKey {
        staged,
        target,
        sha256: hex::encode(Sha256::digest(parsed.to_string().as_bytes())),
    })
}

/// The keys given for the contact list of `study` ([`give_key`]), each with the login that gave
/// it, in the order of the logins: the transfer holds each to the spec and the contract.
pub fn study_recipients(
    recipients: &Path,
    study: &str,
) -> Result<Vec<(String, age::x25519::Recipient)>, TransferError> {
    let folder = key_folder(recipients, study);
    let files = key_files(&folder).map_err(|e| TransferError::Io(folder.clone(), e))?;
    let mut out = Vec::new();
    for f in &files {
        let login = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.extend(recipients_in(f)?.into_iter().map(|r| (login.clone(), r)));
    }
    if out.is_empty() {
        return Err(TransferError::NoRecipient(folder));
    }
    Ok(out)
}

/// The key files of a study's folder ([`key_folder`]), a person's each, in the order of their
/// names (a staged one, hidden, is none).
fn key_files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

/// The age public keys of one file: one per line, `#` comments and blank lines ignored.
fn recipients_in(path: &Path) -> Result<Vec<age::x25519::Recipient>, TransferError> {
    let text = std::fs::read_to_string(path).map_err(|e| TransferError::Io(path.into(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(age::x25519::Recipient::from_str(line).map_err(|_| {
            TransferError::BadRecipient {
                path: path.into(),
                line: i + 1,
            }
        })?);
    }
    Ok(out)
}

/// The contact list as CSV for the researcher, who opens it in a spreadsheet: every cell
/// through [`crate::csvio::for_spreadsheet`], so no supplied text runs as a formula.
pub fn to_csv(contacts: &Contacts) -> Result<String, TransferError> {
    let bad = |e: csv::Error| TransferError::Csv(e.to_string());
    let mut w = crate::csvio::writer(Vec::new());
    w.write_record(&contacts.columns).map_err(bad)?;
    for r in &contacts.rows {
        w.write_record(
            r.iter()
                .map(|c| crate::csvio::for_spreadsheet(c).into_owned()),
        )
        .map_err(bad)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| TransferError::Csv(e.error().to_string()))?;
    String::from_utf8(bytes).map_err(|e| TransferError::Csv(e.to_string()))
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transferred {
    /// The folder: the encrypted list ([`CONTACTS_FILE`]) and its `MANIFEST.sha256`, served to
    /// the recipients like a release (MK403 p.32).
    pub folder: PathBuf,
    pub file: PathBuf,
    pub contacts: usize,
    pub recipients: usize,
    /// sha256 of the encrypted file, for the audit and the receipt.
    pub sha256: String,
}

/// The encrypted contact list's name in its folder.
pub const CONTACTS_FILE: &str = "contacts.csv.age";

/// Encrypts the list to every recipient and writes it into the new folder `folder` as
/// [`CONTACTS_FILE`] with a `MANIFEST.sha256` (staged, then renamed: the folder is there whole
/// or not at all), once. Only ciphertext touches the disk.
pub fn transfer(
    contacts: &Contacts,
    recipients: &[age::x25519::Recipient],
    folder: &Path,
) -> Result<Transferred, TransferError> {
    let path = folder.join(CONTACTS_FILE);
    if let Ok(cipher) = std::fs::read(&path) {
        // Written once: a retried step (after a crash between writing and recording it) finds
        // the file and reports it as it is, with the same hash.
        return Ok(Transferred {
            folder: folder.into(),
            file: path,
            contacts: contacts.rows.len(),
            recipients: recipients.len(),
            sha256: hex::encode(Sha256::digest(&cipher)),
        });
    }
    let plain = to_csv(contacts)?;
    let list: Vec<&dyn age::Recipient> = recipients
        .iter()
        .map(|r| r as &dyn age::Recipient)
        .collect();
    let encryptor = age::Encryptor::with_recipients(list.into_iter())
        .map_err(|e| TransferError::Encrypt(e.to_string()))?;
    let mut cipher = Vec::with_capacity(plain.len() + 512);
    let mut w = encryptor
        .wrap_output(&mut cipher)
        .map_err(|e| TransferError::Encrypt(e.to_string()))?;
    w.write_all(plain.as_bytes())
        .and_then(|_| w.finish().map(|_| ()))
        .map_err(|e| TransferError::Encrypt(e.to_string()))?;
    let io = |e| TransferError::Io(folder.into(), e);
    if let Some(dir) = folder.parent() {
        crate::files::private_dirs(dir).map_err(io)?;
    }
    let staging = folder.with_extension("partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io)?;
    }
    crate::files::private_dir(&staging).map_err(io)?;
    let sha256 = hex::encode(Sha256::digest(&cipher));
    crate::files::write_synced(&staging.join(CONTACTS_FILE), &cipher).map_err(io)?;
    crate::files::write_synced(
        &staging.join("MANIFEST.sha256"),
        format!("{sha256}  {CONTACTS_FILE}\n").as_bytes(),
    )
    .map_err(io)?;
    std::fs::rename(&staging, folder).map_err(io)?;
    Ok(Transferred {
        folder: folder.into(),
        file: path,
        contacts: contacts.rows.len(),
        recipients: recipients.len(),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &["first_name", "last_name", "email", "phone"];

    /// A fresh folder of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("studyflow-contact-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_good_list_is_imported_and_only_the_recipient_reads_it() {
        let csv = "first_name,last_name,email,phone\nAnna,Bērziņa,anna@example.lv,\nJānis,Ozols,,+371 2000 0000\n";
        let contacts = import(csv.as_bytes(), ALL).unwrap();
        assert_eq!(contacts.rows.len(), 2);
        let identity = age::x25519::Identity::generate();
        let dir = scratch("transfer");
        let t = transfer(&contacts, &[identity.to_public()], &dir.join("contacts-v1")).unwrap();
        assert_eq!(t.contacts, 2);
        let path = dir.join("contacts-v1").join(CONTACTS_FILE);
        assert_eq!(t.file, path);
        assert_eq!(
            crate::release::manifest(&dir.join("contacts-v1")).unwrap(),
            [(CONTACTS_FILE.to_owned(), t.sha256.clone())],
            "listed with its sha256, as a release's files are"
        );
        let cipher = std::fs::read(&path).unwrap();
        assert!(!cipher.windows(5).any(|w| w == b"Ozols"));
        let plain = age::decrypt(&identity, &cipher).unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            to_csv(&contacts).unwrap()
        );
        let other = age::x25519::Identity::generate();
        assert!(age::decrypt(&other, &cipher).is_err());
    }

    #[test]
    fn anything_but_the_allowed_contact_fields_rejects_the_whole_list() {
        let with_code =
            "first_name,last_name,email,personal_code\nAnna,Bērziņa,anna@example.lv,010180-12345\n";
        let e = import(with_code.as_bytes(), ALL).unwrap_err();
        assert!(e.problems[0].problem.contains("p.32"), "{e}");
        assert!(!e.to_string().contains("010180"));
        let not_in_spec = "first_name,last_name,phone\nAnna,Bērziņa,+37120000000\n";
        assert!(
            import(
                not_in_spec.as_bytes(),
                &["first_name", "last_name", "email"]
            )
            .is_err()
        );
        // A list without its header row: the error names columns, never the cells.
        let headless = "Anna,Bērziņa,anna@example.lv,\n";
        let e = import(headless.as_bytes(), ALL).unwrap_err().to_string();
        assert!(e.contains("header row missing"), "{e}");
        assert!(!e.contains("Anna") && !e.contains("example.lv"), "{e}");
        let bad_rows = "first_name,last_name,email\nAnna,,anna@example.lv\nJānis,Ozols,not-an-address\nJānis,Ozols,not-an-address\n";
        let e = import(bad_rows.as_bytes(), ALL).unwrap_err();
        let rows: Vec<usize> = e.problems.iter().map(|p| p.row).collect();
        assert_eq!(rows, vec![2, 3, 4, 4]);
    }

    #[test]
    fn a_column_named_twice_or_a_control_character_rejects_the_list() {
        let twice = "first_name,last_name,email,email\nAnna,Bērziņa,a@example.lv,b@example.lv\n";
        let e = import(twice.as_bytes(), ALL).unwrap_err();
        assert_eq!(e.problems[0].problem, "column 4 `email` appears twice");
        let headless_twice = "Anna,Anna,a@example.lv\n";
        let e = import(headless_twice.as_bytes(), ALL)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("Anna"), "{e}");
        let nul =
            "first_name,last_name,email\nAnna,Bērziņa,a@example.lv\nJānis,Oz\0ols,j@example.lv\n";
        let e = import(nul.as_bytes(), ALL).unwrap_err();
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].row, 3);
        assert_eq!(
            e.problems[0].problem,
            "column 2 `last_name`: the cell holds a NUL character"
        );
    }

    /// A person's key given for a study's contact list: checked, written owner-only, placed
    /// over the key they gave before; the keys of all who gave one are what the list is
    /// encrypted to; a bad line in a key file is named.
    #[test]
    fn keys_are_given_per_person_and_read_per_study() {
        let dir = scratch("recipients");
        assert!(matches!(
            study_recipients(&dir, "s1"),
            Err(TransferError::Io(..))
        ));
        let (a, b, c) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let give = |login: &str, key: &str| give_key(&dir, "s1", login, key);
        assert!(matches!(
            give("liga", "age1notakey"),
            Err(KeyError::NotAKey)
        ));
        assert!(matches!(
            give("../liga", &a.to_public().to_string()),
            Err(KeyError::Login)
        ));
        let staged = give("liga", &a.to_public().to_string()).unwrap();
        assert_eq!(
            staged.sha256,
            hex::encode(Sha256::digest(a.to_public().to_string().as_bytes()))
        );
        // Not in place until placed: a discarded one leaves nothing.
        give("arturs", &b.to_public().to_string())
            .unwrap()
            .discard();
        assert_eq!(staged.place().unwrap(), 1);
        assert_eq!(study_recipients(&dir, "s1").unwrap().len(), 1);
        // A second key of the same person replaces the first.
        assert_eq!(
            give("liga", &format!("  {}\n", c.to_public()))
                .unwrap()
                .place()
                .unwrap(),
            1
        );
        let keys = study_recipients(&dir, "s1").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, "liga");
        assert_eq!(keys[0].1.to_string(), c.to_public().to_string());
        assert_eq!(
            give("arturs", &b.to_public().to_string())
                .unwrap()
                .place()
                .unwrap(),
            2
        );
        assert_eq!(study_recipients(&dir, "s1").unwrap().len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&key_folder(&dir, "s1")), 0o700);
            assert_eq!(mode(&key_folder(&dir, "s1").join("liga.txt")), 0o600);
        }
        std::fs::write(
            key_folder(&dir, "s1").join("zz.txt"),
            "# comment\nage1notakey\n",
        )
        .unwrap();
        assert!(matches!(
            study_recipients(&dir, "s1"),
            Err(TransferError::BadRecipient { line: 2, .. })
        ));
    }

    #[test]
    fn shred_removes_the_file() {
        let dir = scratch("shred");
        let p = dir.join("export.csv");
        std::fs::write(&p, "personal_code\n010180-12345\n").unwrap();
        crate::files::shred(&p).unwrap();
        assert!(!p.exists());
    }
}
