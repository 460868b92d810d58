//! SA lifetimes (RFC 4301 §4.4.2.1): soft and hard limits in bytes, packets and time.

use crate::time::Duration;

/// One set of limits; `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct LifetimeLimits {
    /// Bytes of payload processed.
    pub bytes: Option<u64>,
    /// Packets processed.
    pub packets: Option<u64>,
    /// Time since the SA was installed.
    pub time: Option<Duration>,
}

impl LifetimeLimits {
    /// No limit at all.
    pub const UNLIMITED: LifetimeLimits = LifetimeLimits {
        bytes: None,
        packets: None,
        time: None,
    };

    /// Whether any limit is reached by the given use.
    pub fn reached(&self, bytes: u64, packets: u64, age: Duration) -> bool {
        self.bytes.is_some_and(|b| bytes >= b)
            || self.packets.is_some_and(|p| packets >= p)
            || self.time.is_some_and(|t| age >= t)
    }
}

/// Soft (rekey now) and hard (remove now) limits of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Lifetime {
    /// Reaching one of these asks for a rekey.
    pub soft: LifetimeLimits,
    /// Reaching one of these ends the SA.
    pub hard: LifetimeLimits,
}

impl Lifetime {
    /// No limits.
    pub const UNLIMITED: Lifetime = Lifetime {
        soft: LifetimeLimits::UNLIMITED,
        hard: LifetimeLimits::UNLIMITED,
    };

    /// Limits in time only.
    pub const fn time(soft: Duration, hard: Duration) -> Lifetime {
        Lifetime {
            soft: LifetimeLimits {
                bytes: None,
                packets: None,
                time: Some(soft),
            },
            hard: LifetimeLimits {
                bytes: None,
                packets: None,
                time: Some(hard),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let l = LifetimeLimits {
            bytes: Some(100),
            packets: None,
            time: Some(Duration::from_secs(5)),
        };
        assert!(!l.reached(99, 1_000_000, Duration::from_secs(4)));
        assert!(l.reached(100, 0, Duration::ZERO));
        assert!(l.reached(0, 0, Duration::from_secs(5)));
        assert!(!LifetimeLimits::UNLIMITED.reached(u64::MAX, u64::MAX, Duration::MAX));
    }
}
