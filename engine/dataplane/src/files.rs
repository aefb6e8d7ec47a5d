//! Files of the work folder: made for their owner only, whatever the umask (folders 0700,
//! files 0600, a link never written through), and files that held identifiers in plaintext
//! overwritten before they are removed. Every stage that writes or deletes a file of a study
//! goes through here (releases, the secure electronic exchange, the contact list, linkage).

use std::io::Write;
use std::path::Path;

/// Folders (and the folders above them) made only for their owner (0700) whatever the umask:
/// the work folder holds requests naming subjects, answers, letters and releases (MK403 p.25.3).
/// Folders that exist already keep their mode.
pub fn private_dirs(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// One new folder only for its owner (0700); an error if it exists.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// A new file only its owner may read (0600): a release is for its recipients, not for every
/// account on the machine (MK403 p.25.1, p.33).
/// A file left from before keeps nothing of its mode (it is made 0600 through the open
/// handle), and a link is not written through.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(format!(
            "{} is a link; studyflow writes only files of its own",
            path.display()
        )));
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(f)
}

/// Writes `bytes` to a private file ([`private_file`]) and syncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The error opening a link with O_NOFOLLOW gives.
fn libc_eloop() -> i32 {
    #[cfg(unix)]
    {
        libc::ELOOP
    }
    #[cfg(not(unix))]
    {
        -1
    }
}

/// Deletes a file that held identifiers in plaintext (an export a person supplied), after
/// overwriting it with zeros — on a journalling or copy-on-write file system the old blocks
/// may survive, which is why such files should live only on the encrypted work volume.
pub fn shred(path: &Path) -> std::io::Result<()> {
    // A link is removed, never followed: someone who can write the inbox could otherwise
    // point one at the master key or the database and have it overwritten.
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return std::fs::remove_file(path);
    }
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true);
        // A link put in its place meanwhile is not opened either.
        // Nor a FIFO (it would block the open for ever): O_NONBLOCK, then a regular file only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut o,
            libc::O_NOFOLLOW | libc::O_NONBLOCK,
        );
        let mut f = match o.open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc_eloop()) => return std::fs::remove_file(path),
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        if !meta.is_file() {
            drop(f);
            return std::fs::remove_file(path);
        }
        let len = meta.len();
        let zeros = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file left open by an earlier version is made private when written again; a link is
    /// not written through.
    #[cfg(unix)]
    #[test]
    fn private_files_are_private_and_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sf-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("contacts.partial");
        std::fs::write(&old, "left from before").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_synced(&old, b"new").unwrap();
        let mode = std::fs::metadata(&old).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let target = dir.join("elsewhere.txt");
        std::fs::write(&target, "not ours").unwrap();
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_synced(&link, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not ours");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
