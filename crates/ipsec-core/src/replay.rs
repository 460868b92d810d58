//! The anti-replay window (RFC 4303 §3.4.3), as a bitmap ring after RFC 6479.
//!
//! The window never shifts bits: it is a ring of 64-bit blocks, and moving the top of the
//! window forward only clears the blocks that come into use. A receiver first asks
//! [`ReplayWindow::check`] (cheap, before any crypto), then verifies the ICV, and only
//! then calls [`ReplayWindow::mark`], so that forged packets can never move the window.

use core::fmt;

use crate::seq::infer_esn;

/// The largest supported window, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 4096;
/// The smallest window RFC 4303 §3.4.3 allows when anti-replay is on.
pub const MIN_REPLAY_WINDOW: u32 = 32;

const BLOCK_BITS: u64 = 64;
// One block more than the largest window, so that the block holding the bottom of the
// window is never the one being cleared for the top (RFC 6479 §2).
const BLOCKS: usize = (MAX_REPLAY_WINDOW as usize) / 64 + 1;

/// Why a sequence number was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Sequence number 0 is never sent (RFC 4303 §3.3.3).
    #[error("sequence number zero")]
    Zero,
    /// Older than the bottom of the window.
    #[error("sequence number left of the replay window")]
    TooOld,
    /// Already received.
    #[error("replayed sequence number")]
    Duplicate,
    /// The requested window size is outside 32..=4096.
    #[error("replay window size outside 32..=4096")]
    InvalidSize,
}

/// An anti-replay window over 64-bit sequence numbers.
#[derive(Clone)]
pub struct ReplayWindow {
    bitmap: [u64; BLOCKS],
    top: u64,
    size: u32,
    enabled: bool,
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .field("size", &self.size)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// A window of `size` packets (32 to 4096).
    pub fn new(size: u32) -> Result<Self, ReplayError> {
        if !(MIN_REPLAY_WINDOW..=MAX_REPLAY_WINDOW).contains(&size) {
            return Err(ReplayError::InvalidSize);
        }
        Ok(ReplayWindow {
            bitmap: [0; BLOCKS],
            top: 0,
            size,
            enabled: true,
        })
    }

    /// A window with anti-replay switched off: every authentic packet is accepted, but
    /// the highest sequence number is still tracked so ESN high bits can be inferred.
    pub fn disabled() -> Self {
        ReplayWindow {
            bitmap: [0; BLOCKS],
            top: 0,
            size: MAX_REPLAY_WINDOW,
            enabled: false,
        }
    }

    /// Whether replay checks are on.
    pub const fn enabled(&self) -> bool {
        self.enabled
    }

    /// The window size in packets.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The highest sequence number marked so far (0 before the first).
    pub const fn top(&self) -> u64 {
        self.top
    }

    /// Infers the 64-bit sequence number of a packet carrying `seq_lo`
    /// (RFC 4303 Appendix A). Without ESN, pass `esn = false`: the high bits are 0.
    pub fn infer(&self, seq_lo: u32, esn: bool) -> Result<u64, ReplayError> {
        if !esn {
            return if seq_lo == 0 {
                Err(ReplayError::Zero)
            } else {
                Ok(u64::from(seq_lo))
            };
        }
        infer_esn(self.top, self.size, seq_lo).ok_or(ReplayError::TooOld)
    }

    fn slot(seq: u64) -> (usize, u64) {
        let block = ((seq / BLOCK_BITS) % BLOCKS as u64) as usize;
        (block, 1u64 << (seq % BLOCK_BITS))
    }

    /// The cheap pre-check before decryption: would `seq` be accepted?
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if !self.enabled || seq > self.top {
            return Ok(());
        }
        if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = Self::slot(seq);
        match self.bitmap.get(block) {
            Some(b) if b & bit != 0 => Err(ReplayError::Duplicate),
            _ => Ok(()),
        }
    }

    /// Records `seq` as received; call only after the packet was authenticated.
    ///
    /// It checks again, so that two copies of one packet verified in parallel cannot
    /// both be accepted.
    pub fn mark(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check(seq)?;
        if seq > self.top {
            let old = self.top / BLOCK_BITS;
            let new = seq / BLOCK_BITS;
            let diff = new - old;
            if diff >= BLOCKS as u64 {
                self.bitmap = [0; BLOCKS];
            } else {
                for i in 1..=diff {
                    let idx = ((old + i) % BLOCKS as u64) as usize;
                    if let Some(b) = self.bitmap.get_mut(idx) {
                        *b = 0;
                    }
                }
            }
            self.top = seq;
        }
        let (block, bit) = Self::slot(seq);
        if let Some(b) = self.bitmap.get_mut(block) {
            *b |= bit;
        }
        Ok(())
    }

    /// Restores a window from exported state: everything at or below `top` that is
    /// older than the window is refused, and everything inside it counts as received
    /// (the conservative choice after moving an SA between nodes).
    pub fn restore(size: u32, enabled: bool, top: u64) -> Result<Self, ReplayError> {
        let mut w = if enabled {
            Self::new(size)?
        } else {
            Self::disabled()
        };
        w.top = top;
        if enabled && top > 0 {
            w.bitmap = [u64::MAX; BLOCKS];
            // Numbers above `top` in its own block have not been received: `mark` only
            // clears blocks it moves into, so they must start clear.
            let (block, bit) = Self::slot(top);
            if let Some(b) = w.bitmap.get_mut(block) {
                *b = bit | (bit - 1);
            }
        }
        Ok(w)
    }
}

/// The anti-replay window as the ESP and AH codecs use it on their shared-reference
/// paths (`open_with`, `open_*_with`), through the inbound core ([`crate::inbound`]).
///
/// Their `&mut self` `open*` methods use the SA's own [`ReplayWindow`]. A data plane that
/// opens packets of one SA on several threads at once keeps the window itself, behind a
/// lock that it takes only for [`ReplayGuard::check_seq`] and [`ReplayGuard::mark_seq`],
/// never across the integrity check in between (RFC 4303 §3.4.3, RFC 4302 §3.4.3:
/// check before, mark after).
pub trait ReplayGuard {
    /// Infers the full sequence number of a packet carrying `seq_lo` (with ESN,
    /// RFC 4303 Appendix A) and checks it against the window, before any crypto.
    ///
    /// # Errors
    /// The [`ReplayError`] that refuses the packet.
    fn check_seq(&mut self, seq_lo: u32, esn: bool) -> Result<u64, ReplayError>;

    /// Marks `seq` as received; called only after the packet proved authentic. It
    /// checks again, since another packet with the same number may have been marked in
    /// the meantime.
    ///
    /// # Errors
    /// The [`ReplayError`] that refuses the packet.
    fn mark_seq(&mut self, seq: u64) -> Result<(), ReplayError>;
}

impl ReplayGuard for ReplayWindow {
    fn check_seq(&mut self, seq_lo: u32, esn: bool) -> Result<u64, ReplayError> {
        let seq = self.infer(seq_lo, esn)?;
        self.check(seq)?;
        Ok(seq)
    }

    fn mark_seq(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.mark(seq)
    }
}

/// When and how hard a receiver tries to re-synchronize the high half of an extended
/// sequence number after a long loss ([RFC 4303 Appendix A3], [RFC 4302 Appendix B3]).
///
/// If 2^32 or more consecutive packets of an ESN SA are lost, the receiver infers the
/// wrong high half for every later packet, and every later packet fails authentication.
/// The receiver counts consecutive authentication failures per SA (a valid packet
/// resets the count, see [`ResyncCounter`]); when the count reaches
/// [`trigger`](Self::trigger), one failing packet is authenticated again with the
/// high halves Seqh + 1, Seqh + 2, ..., Seqh + [`max_tries`](Self::max_tries). Only a
/// packet that truly authenticates moves the window, exactly as a normally accepted
/// packet does.
///
/// Anyone can send packets that fail authentication, so both numbers are bounded:
/// `max_tries` is at most [`ResyncPolicy::MAX_TRIES`], and `trigger` is at least
/// `max_tries`. Since the count restarts after every attempt, forged packets cost the
/// receiver at most `max_tries / trigger` (at most one) extra verification each on
/// average, whatever their rate.
///
/// [RFC 4303 Appendix A3]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.3
/// [RFC 4302 Appendix B3]: https://www.rfc-editor.org/rfc/rfc4302#appendix-B.3
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResyncPolicy {
    trigger: u32,
    max_tries: u32,
}

impl ResyncPolicy {
    /// The largest number of high halves one attempt tries.
    pub const MAX_TRIES: u32 = 64;

    /// The default: re-synchronize after 64 consecutive failures, trying up to 8 high
    /// halves.
    ///
    /// Once the high halves disagree, *every* packet fails, so 64 consecutive failures
    /// come within a fraction of a second on any SA busy enough to have lost 2^32
    /// packets, while genuine traffic interleaved with corrupted or forged packets
    /// keeps resetting the count. Each extra high half stands for another 2^32 lost
    /// packets (over an hour at a million packets per second), so 8 covers any outage
    /// an SA survives in practice without being rekeyed, and keeps the cost of forged
    /// packets at one eighth of a verification each.
    pub const DEFAULT: ResyncPolicy = ResyncPolicy {
        trigger: 64,
        max_tries: 8,
    };

    /// No re-synchronization: packets keep failing until the SA is rekeyed.
    pub const DISABLED: ResyncPolicy = ResyncPolicy {
        trigger: 0,
        max_tries: 0,
    };

    /// A policy that re-synchronizes after `trigger` consecutive authentication
    /// failures, trying up to `max_tries` high halves. `max_tries` is capped at
    /// [`ResyncPolicy::MAX_TRIES`] and `trigger` raised to at least `max_tries`; a
    /// `trigger` or `max_tries` of 0 gives [`ResyncPolicy::DISABLED`].
    pub const fn new(trigger: u32, max_tries: u32) -> Self {
        if trigger == 0 || max_tries == 0 {
            return Self::DISABLED;
        }
        let max_tries = if max_tries > Self::MAX_TRIES {
            Self::MAX_TRIES
        } else {
            max_tries
        };
        let trigger = if trigger < max_tries {
            max_tries
        } else {
            trigger
        };
        ResyncPolicy { trigger, max_tries }
    }

    /// How many consecutive authentication failures start an attempt (0: never).
    pub const fn trigger(&self) -> u32 {
        self.trigger
    }

    /// How many high halves one attempt tries after the inferred one (0: none).
    pub const fn max_tries(&self) -> u32 {
        self.max_tries
    }

    /// Whether re-synchronization is on.
    pub const fn enabled(&self) -> bool {
        self.trigger != 0
    }
}

impl Default for ResyncPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The per-SA count of consecutive packets that failed authentication
/// ([RFC 4303 Appendix A3.1]), kept beside the SA's [`ReplayWindow`].
///
/// A receiver calls [`ResyncCounter::armed`] before opening a packet: when it says
/// yes, the receiver keeps a copy of the packet, since a failed verification leaves
/// the buffer's bytes unspecified. After opening, it calls [`ResyncCounter::reset`] for
/// a valid packet and [`ResyncCounter::failed`] for one that failed authentication;
/// when `failed` says so, the receiver re-synchronizes with the copy: any `open` entry
/// point of ESP or AH with the `OpenOptions::resync` option, which runs the loop of
/// [`crate::inbound`] (`ipsec_esp::OpenOptions::resync(scratch, max_tries)`; AH needs
/// no copy, since a failed AH verification leaves the packet as it was:
/// `ipsec_ah::OpenOptions::resync(max_tries)` retries the same buffer). The count
/// restarts after
/// every attempt, successful or not, so attempts are at least
/// [`ResyncPolicy::trigger`] failures apart.
///
/// [RFC 4303 Appendix A3.1]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.3.1
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResyncCounter {
    failures: u32,
}

impl ResyncCounter {
    /// A count of zero.
    pub const fn new() -> Self {
        ResyncCounter { failures: 0 }
    }

    /// Consecutive failures so far.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the next failure starts an attempt under `policy`: keep a copy of the
    /// next packet before opening it.
    pub const fn armed(&self, policy: &ResyncPolicy) -> bool {
        policy.enabled() && self.failures.saturating_add(1) >= policy.trigger
    }

    /// A valid packet arrived: the count restarts.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// A packet failed authentication. Returns `true` when this failure reaches the
    /// trigger: attempt a re-synchronization with it now. The count then restarts, so
    /// the next attempt needs another `trigger` failures.
    pub fn failed(&mut self, policy: &ResyncPolicy) -> bool {
        if !policy.enabled() {
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= policy.trigger {
            self.failures = 0;
            true
        } else {
            false
        }
    }
}

/// The anti-replay setting of an inbound SA (RFC 4303 §3.4.3): off, or a window of
/// this many packets. Converts from `u32` (0 = [`Replay::Off`]), so window sizes
/// from configuration pass as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// No anti-replay check (for SAs with manual keys that the sender restarts, or
    /// without integrity).
    Off,
    /// A window of this many packets (32 to 4096 for [`ReplayWindow::new`]).
    Window(u32),
}

impl Replay {
    /// The window size, 0 for [`Replay::Off`].
    pub const fn window(self) -> u32 {
        match self {
            Replay::Off => 0,
            Replay::Window(n) => n,
        }
    }
}

impl From<u32> for Replay {
    fn from(n: u32) -> Self {
        if n == 0 {
            Replay::Off
        } else {
            Replay::Window(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(ReplayWindow::new(31).unwrap_err(), ReplayError::InvalidSize);
        assert_eq!(
            ReplayWindow::new(4097).unwrap_err(),
            ReplayError::InvalidSize
        );
        assert!(ReplayWindow::new(4096).is_ok());
    }

    #[test]
    fn basic_window() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::Zero));
        w.mark(1).unwrap();
        assert_eq!(w.check(1), Err(ReplayError::Duplicate));
        w.mark(100).unwrap();
        assert_eq!(w.check(36), Err(ReplayError::TooOld));
        assert_eq!(w.check(37), Ok(()));
        w.mark(37).unwrap();
        assert_eq!(w.mark(37), Err(ReplayError::Duplicate));
        w.mark(10_000).unwrap();
        assert_eq!(w.check(100), Err(ReplayError::TooOld));
        assert_eq!(w.check(9_999), Ok(()));
    }

    #[test]
    fn restore_accepts_numbers_above_top_in_any_order() {
        let mut w = ReplayWindow::restore(64, true, 100).unwrap();
        assert_eq!(w.check(100), Err(ReplayError::Duplicate));
        assert_eq!(w.check(60), Err(ReplayError::Duplicate));
        w.mark(120).unwrap();
        w.mark(101).unwrap();
        w.mark(127).unwrap();
        w.mark(126).unwrap();
        assert_eq!(w.check(101), Err(ReplayError::Duplicate));
    }

    #[test]
    fn disabled_accepts_repeats_but_tracks_top() {
        let mut w = ReplayWindow::disabled();
        w.mark(5).unwrap();
        w.mark(5).unwrap();
        w.mark(3).unwrap();
        assert_eq!(w.top(), 5);
        assert_eq!(w.check(0), Err(ReplayError::Zero));
    }

    #[test]
    fn esn_across_the_boundary() {
        let mut w = ReplayWindow::new(128).unwrap();
        let near = u64::from(u32::MAX) - 10;
        w.mark(near).unwrap();
        // Low bits 5 after the top near 2^32 means the next subspace.
        let s = w.infer(5, true).unwrap();
        assert_eq!(s, (1 << 32) | 5);
        w.mark(s).unwrap();
        // A late packet from before the wrap is still inside the window.
        let late = w.infer(u32::MAX - 20, true).unwrap();
        assert_eq!(late, u64::from(u32::MAX - 20));
        w.mark(late).unwrap();
        assert_eq!(w.check(late), Err(ReplayError::Duplicate));
    }

    #[test]
    fn resync_policy_bounds() {
        assert_eq!(ResyncPolicy::default(), ResyncPolicy::DEFAULT);
        assert!(ResyncPolicy::DEFAULT.enabled());
        assert!(!ResyncPolicy::DISABLED.enabled());
        assert_eq!(ResyncPolicy::new(0, 5), ResyncPolicy::DISABLED);
        assert_eq!(ResyncPolicy::new(5, 0), ResyncPolicy::DISABLED);
        let p = ResyncPolicy::new(1, 1000);
        assert_eq!(p.max_tries(), ResyncPolicy::MAX_TRIES);
        assert_eq!(p.trigger(), ResyncPolicy::MAX_TRIES);
        let p = ResyncPolicy::new(3, 2);
        assert_eq!((p.trigger(), p.max_tries()), (3, 2));
    }

    #[test]
    fn resync_counter_triggers_once_per_trigger_failures() {
        let p = ResyncPolicy::new(4, 2);
        let mut c = ResyncCounter::new();
        let mut fired = 0;
        for i in 1..=12u32 {
            assert_eq!(c.armed(&p), i % 4 == 0, "{i}");
            if c.failed(&p) {
                fired += 1;
                assert_eq!(i % 4, 0);
            }
        }
        assert_eq!(fired, 3);
        c.failed(&p);
        c.failed(&p);
        c.reset();
        assert_eq!(c.failures(), 0);
        assert!(!c.armed(&p));
        let mut off = ResyncCounter::new();
        for _ in 0..100 {
            assert!(!off.armed(&ResyncPolicy::DISABLED));
            assert!(!off.failed(&ResyncPolicy::DISABLED));
        }
    }

    /// The model: a set of received numbers and the top.
    fn model_check(seen: &BTreeSet<u64>, top: u64, size: u32, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            Err(ReplayError::Zero)
        } else if seq > top {
            Ok(())
        } else if top - seq >= u64::from(size) {
            Err(ReplayError::TooOld)
        } else if seen.contains(&seq) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    proptest! {
        #[test]
        fn agrees_with_naive_model(
            size in 32u32..=4096,
            start in prop_oneof![Just(0u64), Just(u64::from(u32::MAX) - 3000), 0u64..1 << 40],
            steps in proptest::collection::vec((0u64..12_000, any::<bool>()), 1..400),
        ) {
            let mut w = ReplayWindow::new(size).unwrap();
            let mut seen = BTreeSet::new();
            let mut top = 0u64;
            let mut cursor = start;
            for (delta, forward) in steps {
                let seq = if forward { cursor + delta / 8 } else { cursor.saturating_sub(delta) };
                let expect = model_check(&seen, top, size, seq);
                prop_assert_eq!(w.check(seq), expect);
                let marked = w.mark(seq);
                prop_assert_eq!(marked, expect);
                if expect.is_ok() {
                    seen.insert(seq);
                    top = top.max(seq);
                    cursor = top;
                }
            }
        }

        #[test]
        fn esn_inference_matches_sender(size in 32u32..=4096, base in 1u64..(1 << 36), ahead in 0u64..1 << 20, behind in 0u64..4096) {
            let mut w = ReplayWindow::new(size).unwrap();
            w.mark(base).unwrap();
            // A packet ahead of the top by less than 2^31 is inferred exactly.
            let fwd = base + ahead;
            prop_assert_eq!(w.infer(fwd as u32, true), Ok(fwd));
            // A packet inside the window behind the top is inferred exactly.
            let back = base.saturating_sub(behind % u64::from(size));
            if back > 0 {
                prop_assert_eq!(w.infer(back as u32, true), Ok(back));
            }
        }
    }
}
