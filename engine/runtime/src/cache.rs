//! Values computed at most once in a window and shared by the requests meanwhile (a study's
//! status in the server, [`crate::Options::status_cache`]): per key the value, when it was
//! computed and under which generation of the engine's acts, and a lock held by the one request
//! that computes it anew. A request finding the value fresh takes it; finding it stale while
//! another computes, takes the stale one (no request waits on another's computation); finding
//! none, waits for the one computing it (one computation, not fifty). [`Shared::forget`] —
//! after every act of the engine — makes every value stale at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What is kept: the owner downcasts it to its own type.
pub type Value = Arc<dyn std::any::Any + Send + Sync>;

/// Keys kept at most; beyond, all are dropped (the keys are a client's).
const KEYS: usize = 10_000;

#[derive(Default)]
pub struct Shared {
    generation: AtomicU64,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    value: Mutex<Option<Cached>>,
    computing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Cached {
    at: Instant,
    generation: u64,
    value: Value,
}

impl Shared {
    /// After an act: no value holds any more.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= KEYS && !slots.contains_key(key) {
            slots.clear();
        }
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// The value of `key`, fresh within `ttl`, or computed by `compute` (a `None` is not kept).
    pub async fn get_or_compute<E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<Option<Value>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Value>, E>>,
    {
        let generation = || self.generation.load(Ordering::SeqCst);
        let fresh = |c: &Cached| c.generation == generation() && c.at.elapsed() < ttl;
        let slot = self.slot(key);
        let cached = slot.get();
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(Some(c.value.clone()));
        }
        let _computing = match slot.computing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another request computes it: a stale value of the same generation (the
                // workers' progress of a moment ago) rather than a wait — not one from long
                // ago on a quiet server.
                if let Some(c) =
                    cached.filter(|c| c.generation == generation() && c.at.elapsed() < ttl * 4)
                {
                    return Ok(Some(c.value));
                }
                let guard = slot.computing.lock().await;
                if let Some(c) = slot.get().filter(|c| fresh(c)) {
                    return Ok(Some(c.value));
                }
                guard
            }
        };
        let computed_under = generation();
        let value = compute().await?;
        if let Some(v) = &value {
            *slot.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
                at: Instant::now(),
                generation: computed_under,
                value: v.clone(),
            });
        }
        Ok(value)
    }
}

impl Slot {
    fn get(&self) -> Option<Cached> {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
