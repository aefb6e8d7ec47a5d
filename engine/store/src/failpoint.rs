//! Crash points for the recovery tests. They exist only when the crate is built with the
//! `failpoints` feature (the CLI's dev-dependency turns it on, so `cargo test` builds the
//! binary the crash test kills with them); otherwise [`hit`] is an empty function and the
//! binary reads no environment variable for it.
//!
//! With the feature, `STUDYFLOW_FAILPOINT=NAME:N` makes the N-th pass through the point `NAME`
//! (`claim`: inside the claim transaction, before commit; `commit`: inside a worker's finish
//! transaction, before commit; `step`: before a step body runs) write the file named by
//! `STUDYFLOW_FAILPOINT_MARKER` and stop the process's progress, so the test can kill it with
//! SIGKILL exactly there. Nothing else reads these variables.

/// Whether this build has crash points.
pub fn enabled() -> bool {
    cfg!(feature = "failpoints")
}

#[cfg(feature = "failpoints")]
mod active {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static PASSES: AtomicU64 = AtomicU64::new(0);

    fn config() -> &'static Option<(String, u64)> {
        CONFIG.get_or_init(|| {
            let v = std::env::var("STUDYFLOW_FAILPOINT").ok()?;
            let (name, n) = v.split_once(':')?;
            Some((name.to_owned(), n.parse().ok()?))
        })
    }

    pub async fn hit(name: &str) {
        let Some((point, n)) = config() else {
            return;
        };
        if point != name || PASSES.fetch_add(1, Ordering::SeqCst) + 1 != *n {
            return;
        }
        if let Ok(marker) = std::env::var("STUDYFLOW_FAILPOINT_MARKER") {
            let _ = std::fs::write(marker, name);
        }
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
}

/// Passes the crash point `name`: returns at once unless this build has crash points and this
/// is the configured point and pass, in which case it marks and never returns.
#[cfg(feature = "failpoints")]
pub async fn hit(name: &str) {
    active::hit(name).await
}

/// Passes the crash point `name`: this build has none, so it returns at once.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn hit(_name: &str) {}
