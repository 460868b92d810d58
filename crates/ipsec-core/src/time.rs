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

/// Converts `std::time::Instant`s into [`Instant`]s relative to a fixed origin.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
