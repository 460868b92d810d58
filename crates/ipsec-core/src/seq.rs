//! Sequence numbers, with and without extended sequence numbers (ESN).
//!
//! The wire carries the low 32 bits of a 64-bit counter (RFC 4303 §2.2). With ESN the
//! high 32 bits are never sent: the sender includes them in the integrity check and the
//! receiver infers them from its replay window (RFC 4303 §2.2.1 and Appendix A), which
//! is [`ReplayWindow::infer`](crate::ReplayWindow::infer).

/// The outbound sequence counter of one SA.
///
/// The first packet carries sequence number 1. Without ESN the counter stops at
/// 2^32 - 1 and with ESN at 2^64 - 1: RFC 4303 §3.3.3 forbids cycling, so exhaustion is
/// an error and the SA must be rekeyed before it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqCounter {
    last: u64,
    esn: bool,
}

/// The outbound counter would have to cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("sequence number space exhausted; rekey the SA")]
pub struct SeqError;

impl SeqCounter {
    /// A fresh counter: the next packet gets sequence number 1.
    pub const fn new(esn: bool) -> Self {
        SeqCounter { last: 0, esn }
    }

    /// A counter that continues after `last` (for SA import and tests).
    pub const fn starting_after(last: u64, esn: bool) -> Self {
        SeqCounter { last, esn }
    }

    /// Whether extended sequence numbers are in use.
    pub const fn esn(&self) -> bool {
        self.esn
    }

    /// The last sequence number handed out (0 before the first packet).
    pub const fn last(&self) -> u64 {
        self.last
    }

    /// The largest sequence number this counter may hand out.
    pub const fn limit(&self) -> u64 {
        if self.esn {
            u64::MAX
        } else {
            u32::MAX as u64
        }
    }

    /// How many sequence numbers are left.
    pub const fn remaining(&self) -> u64 {
        self.limit() - self.last
    }

    /// Takes the next sequence number.
    #[allow(clippy::should_implement_trait)] // fallible: not an Iterator
    pub fn next(&mut self) -> Result<u64, SeqError> {
        if self.last >= self.limit() {
            return Err(SeqError);
        }
        self.last += 1;
        Ok(self.last)
    }

    /// Moves the counter forward to at least `last` (never backwards).
    pub fn advance_to(&mut self, last: u64) {
        self.last = self.last.max(last.min(self.limit()));
    }
}

/// Splits a 64-bit sequence number into its (high, low) 32-bit halves.
pub const fn split(seq: u64) -> (u32, u32) {
    ((seq >> 32) as u32, seq as u32)
}

/// Infers the full 64-bit sequence number from the 32 low bits received.
///
/// `top` is the highest authenticated sequence number seen so far and `window` the
/// replay window size. This is the algorithm of RFC 4303 Appendix A2.2. It returns
/// `None` where the answer would lie below sequence number 1 (the packet is older than
/// anything the SA can have sent).
pub fn infer_esn(top: u64, window: u32, seq_lo: u32) -> Option<u64> {
    let (th, tl) = split(top);
    let w = window.max(1);
    let high = if tl >= w - 1 {
        // Case A: the window lies within one 2^32 subspace.
        if seq_lo >= tl - (w - 1) {
            Some(th)
        } else {
            th.checked_add(1)
        }
    } else {
        // Case B: the window spans two subspaces.
        let bottom = tl.wrapping_sub(w - 1);
        if seq_lo >= bottom {
            th.checked_sub(1)
        } else {
            Some(th)
        }
    }?;
    let seq = (u64::from(high) << 32) | u64::from(seq_lo);
    if seq == 0 {
        None
    } else {
        Some(seq)
    }
}

/// Sequence numbers of an SA (RFC 4303 §2.2.1, RFC 4302 §2.5): 32 bits, or 64-bit
/// extended sequence numbers of which the low 32 bits are sent. Converts from `bool`
/// (`true` = [`Esn::On`]), so `esn: bool` values from negotiation pass as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Esn {
    /// 32-bit sequence numbers.
    Off,
    /// 64-bit extended sequence numbers.
    On,
}

impl Esn {
    /// Whether extended sequence numbers are on.
    pub const fn is_on(self) -> bool {
        matches!(self, Esn::On)
    }
}

impl From<bool> for Esn {
    fn from(on: bool) -> Self {
        if on {
            Esn::On
        } else {
            Esn::Off
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_starts_at_one_and_stops_without_wrap() {
        let mut c = SeqCounter::new(false);
        assert_eq!(c.next(), Ok(1));
        let mut c = SeqCounter::starting_after(u32::MAX as u64 - 1, false);
        assert_eq!(c.next(), Ok(u32::MAX as u64));
        assert_eq!(c.next(), Err(SeqError));
        assert_eq!(c.next(), Err(SeqError));
        let mut c = SeqCounter::starting_after(u32::MAX as u64, true);
        assert_eq!(c.next(), Ok(1 << 32));
        let mut c = SeqCounter::starting_after(u64::MAX, true);
        assert_eq!(c.next(), Err(SeqError));
    }

    #[test]
    fn esn_case_a() {
        // Window [1000-63, 1000] in subspace 5.
        let top = (5u64 << 32) | 1000;
        assert_eq!(infer_esn(top, 64, 1000), Some(top));
        assert_eq!(infer_esn(top, 64, 990), Some((5 << 32) | 990));
        assert_eq!(infer_esn(top, 64, 2000), Some((5 << 32) | 2000));
        // Below the window: must be the next subspace (wrapped forward).
        assert_eq!(infer_esn(top, 64, 5), Some((6 << 32) | 5));
    }

    #[test]
    fn esn_case_b() {
        // Top just after a wrap: window reaches back into the previous subspace.
        let top = (7u64 << 32) | 10;
        assert_eq!(infer_esn(top, 64, 5), Some((7 << 32) | 5));
        assert_eq!(
            infer_esn(top, 64, u32::MAX - 2),
            Some((6 << 32) | (u32::MAX - 2) as u64)
        );
        assert_eq!(infer_esn(top, 64, 100), Some((7 << 32) | 100));
        // At the very start there is no previous subspace.
        assert_eq!(infer_esn(3, 64, u32::MAX), None);
        assert_eq!(infer_esn(0, 64, 0), None);
        assert_eq!(infer_esn(0, 64, 1), Some(1));
    }
}
