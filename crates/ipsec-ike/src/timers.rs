//! The timers of one state: named slots and the earliest of them.
//!
//! Every state of an IKE SA, every retiring IKE SA and every Child SA keeps its
//! deadlines in one [`Timers`]; the SA's next timer is the earliest [`Timers::next`]
//! over what it holds, which the endpoint files in its timer index.

use ipsec_core::Instant;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retransmission of our IKE_SA_INIT request (or giving up on it).
    Retransmit = 0,
    /// A half-open responder SA that got no IKE_AUTH is forgotten.
    HalfOpen,
    /// A closed or retiring IKE SA, answering retransmissions until then, is forgotten.
    Linger,
    /// Rekey (of the IKE SA or of a Child SA).
    Rekey,
    /// Hard expiry of a Child SA (deleted then).
    Expire,
    /// A NAT keepalive is due.
    Keepalive,
    /// We redirected the peer (RFC 5685 §5, §6): delete the IKE SA if it has not.
    Redirected,
}

const SLOTS: usize = 7;

/// One deadline per [`Timer`], each armed or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timers {
    at: [Option<Instant>; SLOTS],
}

impl Timers {
    /// No timer armed.
    pub(crate) const fn new() -> Self {
        Timers { at: [None; SLOTS] }
    }

    /// With `t` set to `at` (builder form of [`set`](Self::set)).
    #[must_use]
    pub(crate) fn with(mut self, t: Timer, at: impl Into<Option<Instant>>) -> Self {
        self.set(t, at);
        self
    }

    /// When `t` fires, if armed.
    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.at.get(t as usize).copied().flatten()
    }

    /// Arms `t` for `at` (`None`: disarms it).
    pub(crate) fn set(&mut self, t: Timer, at: impl Into<Option<Instant>>) {
        if let Some(slot) = self.at.get_mut(t as usize) {
            *slot = at.into();
        }
    }

    /// Disarms `t`.
    pub(crate) fn stop(&mut self, t: Timer) {
        self.set(t, None);
    }

    /// Moves `t` to `at` if that is sooner (arms it if it was not).
    pub(crate) fn sooner(&mut self, t: Timer, at: Instant) {
        let at = self.get(t).map_or(at, |old| old.min(at));
        self.set(t, at);
    }

    /// Whether `t` is armed and due at `now`.
    pub(crate) fn due(&self, t: Timer, now: Instant) -> bool {
        self.get(t).is_some_and(|at| now >= at)
    }

    /// Whether `t` is due at `now`; if it is, it is disarmed.
    pub(crate) fn take_due(&mut self, t: Timer, now: Instant) -> bool {
        let due = self.due(t, now);
        if due {
            self.stop(t);
        }
        due
    }

    /// The earliest armed timer.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

/// The earliest of some deadlines (`None` where there is none).
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_independent_and_next_is_the_earliest() {
        let mut t = Timers::new();
        assert_eq!(t.next(), None);
        t.set(Timer::Rekey, Instant(30));
        t.set(Timer::Expire, Instant(20));
        assert_eq!(t.next(), Some(Instant(20)));
        assert_eq!(t.get(Timer::Rekey), Some(Instant(30)));
        t.stop(Timer::Expire);
        assert_eq!(t.next(), Some(Instant(30)));
        assert!(!t.due(Timer::Rekey, Instant(29)));
        assert!(!t.take_due(Timer::Rekey, Instant(29)));
        assert!(t.take_due(Timer::Rekey, Instant(30)));
        assert_eq!(t.get(Timer::Rekey), None);
        assert!(!t.due(Timer::Keepalive, Instant(u64::MAX)));
    }

    #[test]
    fn sooner_only_moves_forward_in_time() {
        let mut t = Timers::new().with(Timer::Linger, Instant(10));
        t.sooner(Timer::Linger, Instant(20));
        assert_eq!(t.get(Timer::Linger), Some(Instant(10)));
        t.sooner(Timer::Linger, Instant(5));
        assert_eq!(t.get(Timer::Linger), Some(Instant(5)));
        t.sooner(Timer::HalfOpen, Instant(7));
        assert_eq!(t.get(Timer::HalfOpen), Some(Instant(7)));
        assert_eq!(
            earliest([None, Some(Instant(3)), Some(Instant(2))]),
            Some(Instant(2))
        );
        assert_eq!(earliest([None]), None);
    }
}
