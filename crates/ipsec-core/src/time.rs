//! Time as the caller supplies it.
//!
//! Library crates never read a clock. The caller passes an [`Instant`], a monotonic
//! count of nanoseconds from an epoch of its choosing, so the same code runs in tests
//! (a virtual clock), in async runtimes and in kernels.

use core::ops::{Add, Sub};

/// A span of time; this is `core::time::Duration`.
pub use core::time::Duration;

/// A monotonic point in time: nanoseconds since an epoch the caller chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms.saturating_mul(1_000_000))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at the largest representable instant.
    pub fn saturating_add(self, d: Duration) -> Instant {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(n))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Converts between `std::time::Instant` and [`Instant`] (nanoseconds since a fixed
/// origin), both ways: [`StdClock::instant`] for the time an endpoint is given, and
/// [`StdClock::to_std`] for a deadline it returns (`poll_timeout`) to sleep on.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose epoch is `origin`.
    pub fn new(origin: std::time::Instant) -> Self {
        StdClock { origin }
    }

    /// The [`Instant`] that corresponds to `t` (zero if `t` is before the origin).
    pub fn instant(&self, t: std::time::Instant) -> Instant {
        let d = t.saturating_duration_since(self.origin);
        Instant(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The `std::time::Instant` that corresponds to `t`: the origin plus `t`'s
    /// nanoseconds. Where the platform cannot represent that (about 584 years after
    /// the origin, for `Instant(u64::MAX)`, the "never" of some timers), the latest of
    /// one year, one day or one second after the origin that it can.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        let o = self.origin;
        o.checked_add(core::time::Duration::from_nanos(t.0))
            .or_else(|| o.checked_add(core::time::Duration::from_secs(365 * 86_400)))
            .or_else(|| o.checked_add(core::time::Duration::from_secs(86_400)))
            .or_else(|| o.checked_add(core::time::Duration::from_secs(1)))
            .unwrap_or(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_clock_converts_both_ways() {
        #[allow(clippy::disallowed_methods)] // a test needs one real std instant
        let origin = std::time::Instant::now();
        let c = StdClock::new(origin);
        let later = origin + core::time::Duration::from_millis(1500);
        assert_eq!(c.instant(later), Instant(1_500_000_000));
        assert_eq!(c.to_std(Instant(1_500_000_000)), later);
        assert_eq!(c.to_std(c.instant(later)), later);
        assert_eq!(c.instant(origin), Instant::ZERO);
        // Far in the future: no panic, and not before the origin.
        assert!(c.to_std(Instant(u64::MAX)) >= origin);
    }

    #[test]
    fn arithmetic_saturates() {
        let a = Instant::from_secs(5);
        assert_eq!(a + Duration::from_millis(500), Instant(5_500_000_000));
        assert_eq!(Instant::from_secs(1) - a, Duration::ZERO);
        assert_eq!(a - Instant::from_secs(1), Duration::from_secs(4));
        assert_eq!(
            Instant(u64::MAX) + Duration::from_secs(1),
            Instant(u64::MAX)
        );
    }
}
