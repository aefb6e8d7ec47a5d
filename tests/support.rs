//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// What one command line did.
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Exit code, stdout and stderr together, for snapshots.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The day the tests' date checks count from, unless a test says `--today` itself: outputs
/// must not change with the day the suite runs.
pub const TODAY: &str = "2026-11-28";

/// Runs `studyflow ARGS` in-process, from the workspace root, without colour. `validate` and
/// `plan` count dates from [`TODAY`] unless the arguments say otherwise.
pub fn studyflow(args: &[&str]) -> Outcome {
    fixed_clock();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let dated = matches!(args.first(), Some(&"validate" | &"plan"))
        && !args.iter().any(|a| a.starts_with("--today"));
    let today: &[&str] = if dated { &["--today", TODAY] } else { &[] };
    let argv = std::iter::once("studyflow")
        .chain(args.first().copied())
        .chain(today.iter().copied())
        .chain(args.iter().skip(1).copied());
    let code = {
        let _cwd = CwdGuard::enter(&root());
        studyflow_cli::run(argv, &mut out, &mut err, false)
    };
    Outcome {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// The engine's commands run on a fixed clock: 4 January 2027, 09:00 UTC, when the example
/// studies' first phases have begun (their steps wait for their phase, MK403 p.3.4). Set once
/// for the whole test process, before any command runs.
pub const NOW: &str = "2027-01-04T09:00:00Z";

fn fixed_clock() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        assert!(
            studyflow_runtime::clock::test_clock(),
            "the tests' build reads STUDYFLOW_NOW"
        );
        // SAFETY: set once, before any command of this process reads the environment.
        unsafe { std::env::set_var("STUDYFLOW_NOW", NOW) };
    });
}

/// Serialises tests that change the working directory.
static CWD: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct CwdGuard {
    previous: PathBuf,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl CwdGuard {
    fn enter(dir: &Path) -> Self {
        let lock = CWD.lock().unwrap_or_else(|e| e.into_inner());
        let previous = std::env::current_dir().unwrap_or_else(|_| dir.to_path_buf());
        std::env::set_current_dir(dir).unwrap_or_else(|e| panic!("cd {}: {e}", dir.display()));
        CwdGuard {
            previous,
            _lock: lock,
        }
    }
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.previous);
    }
}

/// A fresh directory under the system's temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("studyflow-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Writes `name` in the directory and returns its path as text.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_string_lossy().into_owned()
    }

    pub fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `studyflow serve` running in this process (as the tests' other commands do) on a free
/// loopback port, for the commands a person runs. It serves until the test process ends.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Starts `studyflow serve --listen 127.0.0.1:0 ARGS` and waits for its address.
pub fn serve(args: &[&str]) -> Served {
    // A trial's audit, unless the test gives the key.
    let unsigned: &[&str] = if args.contains(&"--audit-key-file") {
        &[]
    } else {
        &["--unsigned-audit"]
    };
    let argv: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"]
        .iter()
        .chain(unsigned)
        .chain(args)
        .copied()
        .collect();
    background(&argv).0
}

/// Runs `studyflow ARGS` in this process in the background until it says where it serves
/// (`serve`, `demo --serve`): its address, and everything it said until then. It serves until
/// the test process ends.
pub fn background(args: &[&str]) -> (Served, String) {
    let mut running = start(args);
    let (line, text) = running.said_line("studyflow serves http://");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .and_then(|u| u.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    // Still serving when this returns (its thread detached); what it says later is not read.
    drop(running);
    (Served { url }, text)
}

/// `studyflow user add LOGIN` with the password in `password_file` (and `more` arguments,
/// such as the audit key); the second factor's secret it prints, decoded.
pub fn add_user(db: &str, login: &str, password_file: &str, more: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "user",
        "add",
        login,
        "--name",
        login,
        "--password-file",
        password_file,
        "--database",
        db,
    ];
    args.extend(more);
    let r = studyflow(&args);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let secret = r
        .stdout
        .lines()
        .skip_while(|l| !l.ends_with("the secret"))
        .nth(1)
        .unwrap_or_else(|| panic!("no secret in {}", r.stdout))
        .trim()
        .to_owned();
    studyflow_identity::totp::from_base32(&secret).expect("base32")
}

/// The code of `secret` now (the tests' fixed clock), `ahead` steps later.
pub fn code(secret: &[u8], ahead: i64) -> String {
    let now: i64 = NOW
        .parse::<jiff::Timestamp>()
        .expect("NOW is a timestamp")
        .as_second();
    studyflow_identity::totp::code_at(secret, studyflow_identity::totp::step_of(now) + ahead)
}

/// A `studyflow` command running in this process in the background (one that waits, such as
/// `login --device`): what it says on either stream, as it says it, and its exit code.
pub struct Started {
    said: std::sync::mpsc::Receiver<Vec<u8>>,
    text: String,
    done: std::thread::JoinHandle<u8>,
}

impl Started {
    /// Everything said until `needle` was (at most five minutes).
    pub fn said_until(&mut self, needle: &str) -> String {
        while !self.text.contains(needle) {
            match self.said.recv_timeout(std::time::Duration::from_secs(300)) {
                Ok(b) => self.text.push_str(&String::from_utf8_lossy(&b)),
                Err(e) => panic!("studyflow did not say {needle:?} ({e}):\n{}", self.text),
            }
        }
        self.text.clone()
    }

    /// The first whole line said that starts with `prefix`, and everything said until then.
    pub fn said_line(&mut self, prefix: &str) -> (String, String) {
        loop {
            if let Some(line) = self
                .text
                .lines()
                .find(|l| l.starts_with(prefix) && self.text.contains(&format!("{l}\n")))
            {
                return (line.to_owned(), self.text.clone());
            }
            match self.said.recv_timeout(std::time::Duration::from_secs(300)) {
                Ok(b) => self.text.push_str(&String::from_utf8_lossy(&b)),
                Err(e) => panic!("studyflow said no line {prefix:?} ({e}):\n{}", self.text),
            }
        }
    }

    /// Its exit code, once it ends, and everything it said.
    pub fn ended(mut self) -> (u8, String) {
        let code = self.done.join().expect("the command ran");
        while let Ok(b) = self.said.try_recv() {
            self.text.push_str(&String::from_utf8_lossy(&b));
        }
        (code, self.text)
    }
}

/// Starts `studyflow ARGS` in this process in the background.
pub fn start(args: &[&str]) -> Started {
    fixed_clock();
    struct Lines(std::sync::mpsc::Sender<Vec<u8>>);
    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (tx, said) = std::sync::mpsc::channel();
    let argv: Vec<String> = std::iter::once("studyflow")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let done = std::thread::spawn(move || {
        let mut out = Lines(tx.clone());
        let mut err = Lines(tx);
        studyflow_cli::run(argv, &mut out, &mut err, false)
    });
    Started {
        said,
        text: String::new(),
        done,
    }
}
