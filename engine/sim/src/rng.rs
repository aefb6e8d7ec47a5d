//! A small deterministic generator (xoshiro256**, seeded through SplitMix64): the same seed
//! gives the same registries on every machine and every version of every dependency.

use jiff::civil::Date;

#[derive(Debug, Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n` > 0), without modulo bias worth speaking of for these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A date in `from..=to`.
    pub fn date(&mut self, from: Date, to: Date) -> Date {
        let days = (to - from).get_days().max(0);
        from.checked_add(jiff::Span::new().days(self.range(0, i64::from(days))))
            .unwrap_or(from)
    }

    /// `d` plus between `lo` and `hi` days, never past `cap`.
    pub fn after(&mut self, d: Date, lo: i64, hi: i64, cap: Date) -> Date {
        d.checked_add(jiff::Span::new().days(self.range(lo, hi)))
            .unwrap_or(d)
            .min(cap)
            .max(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        let mut seen = [false; 6];
        for _ in 0..10_000 {
            let v = r.range(-2, 3);
            assert!((-2..=3).contains(&v));
            seen[(v + 2) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
