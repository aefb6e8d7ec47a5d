//! The one retry policy of the runtime: exponential backoff with jitter, used for the
//! connector's attempts at a request, the worker's retries of a failed step and the worker's
//! pause after a database error.
//!
//! Jitter spreads the retries of many runs (a cohort's follow-up requests failing together when
//! a registry is down) so they do not come back in one wave. Two kinds:
//!
//! - [`Jitter::Full`] — uniform between zero and the exponential delay. It needs only the
//!   attempt number, so it suits a retry whose previous delay is not kept (a step's run row
//!   keeps the attempt count, not the delay).
//! - [`Jitter::Decorrelated`] — uniform between the base and `factor` times the previous delay,
//!   capped: for a loop that keeps its previous delay ([`Backoff`]). Never below the base, so it
//!   never spins.
//!
//! Randomness comes from the operating system (`getrandom`); when that fails the delay is the
//! upper bound of its range, so a failure makes retries slower, never faster.

use std::time::Duration;

/// How a delay is spread around the exponential one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// The exponential delay itself (deterministic).
    None,
    /// Uniform in `[0, ceiling(attempt)]`.
    Full,
    /// Uniform in `[base, min(max_delay, factor × previous)]`.
    Decorrelated,
}

/// When to try again and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// Growth per attempt.
    pub factor: u32,
    /// No delay exceeds this.
    pub max_delay: Duration,
    /// Attempts in all, the first included; at least one is always made.
    pub max_attempts: u32,
    pub jitter: Jitter,
}

impl Policy {
    /// The exponential delay after attempt `attempt` (1-based) failed, before jitter:
    /// `base × factor^(attempt−1)`, capped at `max_delay`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let mut d = self.base.min(self.max_delay);
        if self.factor <= 1 {
            return d;
        }
        for _ in 1..attempt.max(1) {
            if d >= self.max_delay || d.is_zero() {
                break;
            }
            d = d.saturating_mul(self.factor).min(self.max_delay);
        }
        d
    }

    /// Whether another attempt may follow attempt `attempt` (1-based).
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts.max(1)
    }

    /// The delay after attempt `attempt` failed, for a caller that does not keep the previous
    /// delay. With [`Jitter::Decorrelated`] the previous delay is taken to be the ceiling of
    /// the attempt before.
    pub fn delay(&self, attempt: u32) -> Duration {
        let previous = (attempt > 1).then(|| self.ceiling(attempt - 1));
        self.delay_after(attempt, previous)
    }

    fn delay_after(&self, attempt: u32, previous: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => uniform(Duration::ZERO, ceiling),
            Jitter::Decorrelated => {
                let low = self.base.min(self.max_delay);
                let high = previous
                    .unwrap_or(low)
                    .saturating_mul(self.factor.max(1))
                    .min(self.max_delay)
                    .max(low);
                uniform(low, high)
            }
        }
    }

    /// A fresh sequence of delays for one operation.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: *self,
            attempt: 0,
            previous: None,
        }
    }
}

/// The delays of one operation's retries: the attempts made so far and the last delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    attempt: u32,
    previous: Option<Duration>,
}

impl Backoff {
    /// Records a failed attempt; returns how long to wait before the next one, or `None` when
    /// the attempts are spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        if !self.policy.retries_after(self.attempt) {
            return None;
        }
        let d = self.policy.delay_after(self.attempt, self.previous);
        self.previous = Some(d);
        Some(d)
    }

    /// Failed attempts recorded so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over (the operation succeeded).
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.previous = None;
    }
}

/// A duration drawn uniformly from `[low, high]` (nanosecond resolution); `high` when the
/// operating system has no randomness to give.
fn uniform(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    // Past 2^64 ns (584 years) the spread is capped: no retry waits that long.
    let span = (high - low).as_nanos().min(u128::from(u64::MAX));
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return high;
    }
    // Multiply-shift: a 64-bit random number scaled onto `0..=span`.
    let r = u128::from(u64::from_le_bytes(bytes));
    let offset = (r * (span + 1)) >> 64;
    let offset = u64::try_from(offset).unwrap_or(u64::MAX);
    low.saturating_add(Duration::from_nanos(offset)).min(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: Jitter) -> Policy {
        Policy {
            base: Duration::from_millis(100),
            factor: 2,
            max_delay: Duration::from_secs(5),
            max_attempts: 8,
            jitter,
        }
    }

    #[test]
    fn the_ceiling_grows_by_the_factor_and_stops_at_the_maximum() {
        let p = policy(Jitter::None);
        let ceilings: Vec<u128> = (1..=10).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
        assert_eq!(p.ceiling(0), p.ceiling(1));
        // No overflow however far it goes.
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(5));
        let huge = Policy {
            factor: u32::MAX,
            max_delay: Duration::MAX,
            ..p
        };
        assert_eq!(huge.ceiling(40), Duration::MAX);
        for a in 1..=10 {
            assert_eq!(p.delay(a), p.ceiling(a), "no jitter: the ceiling itself");
        }
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let p = policy(Jitter::Full);
        for attempt in [1, 3, 7, 30] {
            let ceiling = p.ceiling(attempt);
            let samples: Vec<Duration> = (0..2000).map(|_| p.delay(attempt)).collect();
            assert!(samples.iter().all(|d| *d <= ceiling && *d <= p.max_delay));
            let low = samples.iter().min().copied().unwrap_or_default();
            let high = samples.iter().max().copied().unwrap_or_default();
            // 2000 uniform draws: the extremes land in the outer tenths (failure odds ~1e-90).
            assert!(low < ceiling / 10, "attempt {attempt}: lowest {low:?}");
            assert!(
                high > ceiling * 9 / 10,
                "attempt {attempt}: highest {high:?}"
            );
            let mut distinct = samples.clone();
            distinct.sort();
            distinct.dedup();
            assert!(distinct.len() > 1900, "spread: {} distinct", distinct.len());
        }
    }

    #[test]
    fn full_jitter_grows_on_average() {
        let p = policy(Jitter::Full);
        let mean = |a: u32| (0..2000).map(|_| p.delay(a).as_secs_f64()).sum::<f64>() / 2000.0;
        let (m1, m3, m5) = (mean(1), mean(3), mean(5));
        assert!(m1 < m3 && m3 < m5, "{m1} {m3} {m5}");
        // Expected means: 0.05 s, 0.2 s, 0.8 s.
        assert!((m5 - 0.8).abs() < 0.1, "{m5}");
    }

    #[test]
    fn decorrelated_jitter_never_goes_below_the_base_nor_above_the_maximum() {
        let p = policy(Jitter::Decorrelated);
        for _ in 0..200 {
            let mut b = p.backoff();
            let mut previous = p.base;
            while let Some(d) = b.next_delay() {
                assert!(d >= p.base, "{d:?}");
                assert!(d <= p.max_delay, "{d:?}");
                assert!(d <= previous * 2, "{d:?} after {previous:?}");
                previous = d;
            }
            assert_eq!(
                b.attempts(),
                p.max_attempts,
                "attempts are counted to the end"
            );
        }
        let late: Vec<Duration> = (0..500).map(|_| p.delay(9)).collect();
        assert!(late.iter().all(|d| *d >= p.base && *d <= p.max_delay));
        assert!(late.iter().any(|d| *d > Duration::from_secs(2)), "it grows");
        let mut distinct = late.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 450, "spread: {}", distinct.len());
    }

    #[test]
    fn a_backoff_stops_when_the_attempts_are_spent_and_starts_over_on_reset() {
        let p = Policy {
            max_attempts: 3,
            ..policy(Jitter::None)
        };
        let mut b = p.backoff();
        assert_eq!(b.next_delay(), Some(Duration::from_millis(100)));
        assert_eq!(b.next_delay(), Some(Duration::from_millis(200)));
        assert_eq!(
            b.next_delay(),
            None,
            "three attempts: two waits between them"
        );
        b.reset();
        assert_eq!(b.next_delay(), Some(Duration::from_millis(100)));
        assert!(!p.retries_after(3) && p.retries_after(2));
        let once = Policy {
            max_attempts: 0,
            ..p
        };
        assert!(
            !once.retries_after(1),
            "zero attempts still means one, and no retry"
        );
    }

    #[test]
    fn degenerate_ranges_do_not_panic() {
        assert_eq!(uniform(Duration::ZERO, Duration::ZERO), Duration::ZERO);
        let one = Duration::from_nanos(1);
        assert_eq!(uniform(one, Duration::ZERO), one);
        assert!(uniform(Duration::ZERO, Duration::MAX) <= Duration::MAX);
        let zero = Policy {
            base: Duration::ZERO,
            ..policy(Jitter::Decorrelated)
        };
        assert_eq!(zero.backoff().next_delay(), Some(Duration::ZERO));
    }
}
