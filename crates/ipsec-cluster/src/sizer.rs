//! Block sizes that follow traffic: a busy SA leases large blocks (few store round
//! trips), an idle one small blocks (little space lost when a node dies).

use std::time::Duration;

/// Chooses the size of the next sequence block from the recent packet rate.
///
/// `next_size = rate × horizon`, rounded up to a power of two and clamped to
/// `[min, max]`; a block should be renewed when what is left lasts less than half the
/// horizon ([`BlockSizer::should_renew`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BlockSizer {
    /// How long a block should last at the current rate.
    pub horizon: Duration,
    /// The smallest block (at least 1).
    pub min: u64,
    /// The largest block (at least `min`).
    pub max: u64,
}

impl Default for BlockSizer {
    /// Horizon 2 s, blocks of 1024 to 2^22 numbers.
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(2),
            min: 1024,
            max: 1 << 22,
        }
    }
}

impl BlockSizer {
    /// A sizer; `min` is raised to 1 and `max` to `min` when lower.
    pub fn new(horizon: Duration, min: u64, max: u64) -> Self {
        let min = min.max(1);
        Self {
            horizon,
            min,
            max: max.max(min),
        }
    }

    /// Packets per second from `packets` sent during `interval`: `f64::INFINITY` for
    /// packets in no time, 0 for none.
    pub fn rate(packets: u64, interval: Duration) -> f64 {
        if packets == 0 {
            0.0
        } else if interval.is_zero() {
            f64::INFINITY
        } else {
            packets as f64 / interval.as_secs_f64()
        }
    }

    /// The size of the next block after `packets` were sent during `interval`.
    pub fn next_size(&self, packets: u64, interval: Duration) -> u64 {
        self.size_for_rate(Self::rate(packets, interval))
    }

    /// The size of the next block at `rate` packets per second (NaN counts as 0).
    pub fn size_for_rate(&self, rate: f64) -> u64 {
        let want = rate * self.horizon.as_secs_f64();
        let (min, max) = (self.min.max(1), self.max.max(self.min.max(1)));
        if want.is_nan() || want <= min as f64 {
            return min;
        }
        if want >= max as f64 {
            return max;
        }
        // min < want < max <= u64::MAX: the cast is in range (ceil, then saturating)
        let n = want.ceil() as u64;
        n.checked_next_power_of_two().unwrap_or(max).clamp(min, max)
    }

    /// Whether to lease the next block now: what is left (`remaining` numbers of the
    /// current block) lasts less than half the horizon at `rate` packets per second, or
    /// is below `min / 2`.
    pub fn should_renew(&self, remaining: u64, rate: f64) -> bool {
        if remaining < self.min.max(1) / 2 {
            return true;
        }
        let rate = if rate.is_nan() { 0.0 } else { rate };
        (remaining as f64) < rate * self.horizon.as_secs_f64() / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_and_examples() {
        let s = BlockSizer::default();
        assert_eq!(s.next_size(0, Duration::from_secs(1)), 1024);
        assert_eq!(s.next_size(100, Duration::from_secs(1)), 1024);
        // 1000 pps x 2 s = 2000 -> 2048
        assert_eq!(s.next_size(1000, Duration::from_secs(1)), 2048);
        // 300 000 pps x 2 s = 600 000 -> 2^20
        assert_eq!(s.next_size(30_000, Duration::from_millis(100)), 1 << 20);
        assert_eq!(s.next_size(u64::MAX, Duration::from_secs(1)), 1 << 22);
        assert_eq!(s.next_size(1, Duration::ZERO), 1 << 22);
        assert_eq!(s.size_for_rate(f64::NAN), 1024);
        assert_eq!(s.size_for_rate(-5.0), 1024);
        // exactly a power of two stays
        assert_eq!(s.size_for_rate(2048.0), 4096);
        assert_eq!(s.size_for_rate(1024.0), 2048);
    }

    #[test]
    fn renewal() {
        let s = BlockSizer::default();
        assert!(s.should_renew(511, 0.0), "below min/2");
        assert!(!s.should_renew(512, 0.0));
        // 10 000 pps: half the horizon is 10 000 packets
        assert!(s.should_renew(9_999, 10_000.0));
        assert!(!s.should_renew(10_000, 10_000.0));
        assert!(s.should_renew(u64::MAX, f64::INFINITY));
        assert!(!s.should_renew(1 << 20, f64::NAN));
    }

    #[test]
    fn new_normalizes_bounds() {
        let s = BlockSizer::new(Duration::from_secs(1), 0, 0);
        assert_eq!((s.min, s.max), (1, 1));
        assert_eq!(s.size_for_rate(1e9), 1);
    }

    proptest! {
        #[test]
        fn size_is_a_bounded_power_of_two(packets in any::<u64>(), ms in 0u64..100_000, min_exp in 0u32..20, span in 0u32..20) {
            let s = BlockSizer::new(Duration::from_secs(2), 1 << min_exp, 1 << (min_exp + span));
            let n = s.next_size(packets, Duration::from_millis(ms));
            prop_assert!(n >= s.min && n <= s.max);
            prop_assert!(n.is_power_of_two());
            // enough for the horizon unless clamped at max
            let want = BlockSizer::rate(packets, Duration::from_millis(ms)) * 2.0;
            prop_assert!(n == s.max || n as f64 >= want);
        }

        #[test]
        fn size_is_monotone_in_rate(a in 0.0f64..1e9, b in 0.0f64..1e9) {
            let s = BlockSizer::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(s.size_for_rate(lo) <= s.size_for_rate(hi));
        }

        #[test]
        fn renew_is_monotone(r1 in 0.0f64..1e9, r2 in 0.0f64..1e9, left in any::<u64>(), more in any::<u64>()) {
            let s = BlockSizer::default();
            let (lo, hi) = if r1 <= r2 { (r1, r2) } else { (r2, r1) };
            // a higher rate renews no later; more left renews no earlier
            prop_assert!(!s.should_renew(left, lo) || s.should_renew(left, hi));
            prop_assert!(!s.should_renew(left.saturating_add(more), lo) || s.should_renew(left, lo));
        }
    }
}
