//! The inbound core ESP and AH share: anti-replay pre-check → constant-time
//! verification → window update, and the ESN re-synchronization loop
//! ([RFC 4303 Appendix A3], [RFC 4302 Appendix B3]).
//!
//! A codec parses its header (SPI, low 32 bits of the sequence number, lengths) and
//! hands the rest to [`open`] with:
//! - the sequence-number facts of the packet ([`SeqFacts`]: the low half from the
//!   header, whether the SA uses extended sequence numbers);
//! - the anti-replay window as a [`ReplayGuard`] (the SA's own [`ReplayWindow`](crate::ReplayWindow), or one
//!   the caller keeps behind a lock);
//! - a [`Verifier`]: the protocol's constant-time ICV check (AH) or AEAD open / ICV
//!   check and decryption (ESP) with a given full sequence number;
//! - an [`Attempt`]: a normal open, or a re-synchronization with one packet.
//!
//! # The security ordering, written down once
//!
//! 1. **Check before verify.** The window is asked (ESN high half inferred, RFC 4303
//!    Appendix A) *before* any cryptography, so a replayed or too-old packet costs a
//!    bitmap lookup, not a MAC or a decryption (RFC 4303 §3.4.3, RFC 4302 §3.4.3). The
//!    check never changes the window.
//! 2. **Verify in constant time.** The verifier compares ICVs / tags in constant time;
//!    it reports only authentic or not. Nothing about *why* a packet failed leaks to the
//!    window or the caller beyond [`Refused::Unauthentic`].
//! 3. **Mark only after verify.** Only an authentic packet may move the window, so a
//!    forgery can neither advance the window's top (which would make genuine packets
//!    "too old") nor mark a sequence number as received. [`ReplayGuard::mark_seq`]
//!    checks again: a data plane that releases its lock around the verification lets
//!    concurrent duplicates both pass the check and both verify, and only the first
//!    mark succeeds, so a replay is still refused once.
//! 4. **Between check and mark nothing of the guard is borrowed**, except through the
//!    `&mut` this function holds: a [`ReplayGuard`] implementation that wraps a lock
//!    takes it inside `check_seq` and `mark_seq` only, never across the cryptography.
//!
//! # What the re-synchronization loop may and may not do
//!
//! With ESN, if 2^32 or more consecutive packets are lost, the receiver infers the
//! wrong high half (Seqh) and every later packet fails authentication. When the
//! caller's [`ResyncCounter`](crate::ResyncCounter) says so, it passes one packet that
//! just failed as [`Attempt::Resync`], and the loop:
//! - **may** verify the packet again with the high halves Seqh + 1, Seqh + 2, ...,
//!   Seqh + `max_tries`, capped at [`ResyncPolicy::MAX_TRIES`] (so a forged packet
//!   costs a bounded number of verifications; the caller's policy spaces attempts at
//!   least `trigger >= max_tries` failures apart);
//! - **may not** try the inferred high half again (it has just failed), nor any high
//!   half below it, nor wrap past 2^32 - 1;
//! - **may not** change the window unless a candidate verifies; the one that does is
//!   marked exactly as a normally accepted packet (step 3), which moves the top forward
//!   since every candidate lies above it;
//! - **may not** run without ESN (there is no high half to get wrong): it refuses at
//!   once with [`Refused::Unauthentic`];
//! - still runs the pre-check of step 1 first: a packet the window refuses is refused
//!   before any candidate is tried.
//!
//! Between two candidates the verifier puts the packet back as it arrived
//! ([`Verifier::restore`]), since a failed verification may leave the buffer
//! unspecified (ESP decrypts in place; AH restores its mutable fields itself).
//!
//! [RFC 4303 Appendix A3]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.3
//! [RFC 4302 Appendix B3]: https://www.rfc-editor.org/rfc/rfc4302#appendix-B.3

use crate::replay::{ReplayError, ReplayGuard, ResyncPolicy};

/// What the parsed header says about a packet's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqFacts {
    /// The low 32 bits, as carried in the ESP or AH header.
    pub low: u32,
    /// Whether the SA uses extended sequence numbers (the high half is inferred).
    pub esn: bool,
}

/// Which kind of open [`open`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attempt {
    /// The normal path: verify once with the inferred sequence number.
    #[default]
    Normal,
    /// Re-synchronize the ESN high half with a packet that failed with the inferred
    /// one: try Seqh + 1 ..= Seqh + `max_tries` (at most [`ResyncPolicy::MAX_TRIES`]).
    Resync {
        /// How many high halves after the inferred one to try.
        max_tries: u32,
    },
}

/// Why [`open`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused<E> {
    /// The anti-replay window refused it: before verification (the pre-check) or after
    /// it (another packet with the same number was marked meanwhile).
    #[error("replay check: {0}")]
    Replay(ReplayError),
    /// It did not verify (with every candidate, in a re-synchronization), or a
    /// re-synchronization was asked for on an SA without ESN.
    #[error("integrity check failed")]
    Unauthentic,
    /// The protocol refused it for a reason of its own after the pre-check and before
    /// verification ([`Verifier::prepare`]).
    #[error("{0}")]
    Protocol(E),
}

impl<E> Refused<E> {
    /// The protocol's own error for this refusal: `replay` for a window refusal,
    /// `unauthentic` for a packet that did not verify, the verifier's error as it is.
    /// One exhaustive match, so that a new kind of refusal cannot quietly become an
    /// integrity failure in a codec.
    pub fn into_error(self, replay: impl FnOnce(ReplayError) -> E, unauthentic: E) -> E {
        match self {
            Refused::Replay(e) => replay(e),
            Refused::Unauthentic => unauthentic,
            Refused::Protocol(e) => e,
        }
    }
}

/// The protocol's part of [`open`]: the cryptographic check of one parsed packet.
pub trait Verifier {
    /// What [`Verifier::prepare`] may refuse a packet with.
    type Error;

    /// Runs once, after the window's pre-check passed and before the first
    /// verification: room checks, and for a re-synchronization the copy to restore
    /// the packet from. The default does nothing.
    ///
    /// # Errors
    /// The protocol's reason to refuse the packet; it is returned as
    /// [`Refused::Protocol`] and the window is untouched.
    #[inline]
    fn prepare(&mut self, attempt: Attempt) -> Result<(), Self::Error> {
        let _ = attempt;
        Ok(())
    }

    /// Verifies (and, for ESP, decrypts) the packet as if its full sequence number were
    /// `seq`, comparing ICVs or tags in constant time. Returns whether it is authentic.
    fn verify(&mut self, seq: u64) -> bool;

    /// Puts the packet back as it arrived after a failed [`Verifier::verify`], before
    /// the next candidate of a re-synchronization (also after the last one). Called only
    /// for [`Attempt::Resync`]. The default does nothing (for a verification that leaves
    /// the packet as it was).
    #[inline]
    fn restore(&mut self) {}
}

/// Pre-check → verify → mark (or the re-synchronization loop): the inbound sequence of
/// ESP and AH, in the order the module documentation explains. Returns the packet's
/// full sequence number, marked in `replay`.
///
/// # Errors
/// [`Refused::Replay`] from the window (before verification the packet is untouched),
/// [`Refused::Protocol`] from [`Verifier::prepare`] (the packet is untouched),
/// [`Refused::Unauthentic`] when the packet did not verify (after [`Attempt::Normal`]
/// the verifier decides what the packet looks like; after [`Attempt::Resync`] it has
/// been [restored](Verifier::restore)). Only `Ok` changes the window.
#[inline]
pub fn open<R: ReplayGuard + ?Sized, V: Verifier + ?Sized>(
    replay: &mut R,
    facts: SeqFacts,
    attempt: Attempt,
    verifier: &mut V,
) -> Result<u64, Refused<V::Error>> {
    // 1. Check before any cryptography.
    let inferred = replay
        .check_seq(facts.low, facts.esn)
        .map_err(Refused::Replay)?;
    let seq = match attempt {
        Attempt::Normal => {
            verifier.prepare(attempt).map_err(Refused::Protocol)?;
            // 2. Verify in constant time.
            if !verifier.verify(inferred) {
                return Err(Refused::Unauthentic);
            }
            inferred
        }
        Attempt::Resync { max_tries } => {
            if !facts.esn || max_tries.min(ResyncPolicy::MAX_TRIES) == 0 {
                // Without ESN there is no high half to get wrong; with no tries there
                // is nothing to prepare the packet for.
                return Err(Refused::Unauthentic);
            }
            verifier.prepare(attempt).map_err(Refused::Protocol)?;
            resync_candidates(inferred, facts.low, max_tries, verifier)
                .ok_or(Refused::Unauthentic)?
        }
    };
    // 3. Authentic: only now may the window move. Every re-synchronization candidate
    // lies above the window's top, so then the window moves forward.
    replay.mark_seq(seq).map_err(Refused::Replay)?;
    Ok(seq)
}

/// RFC 4303 Appendix A3.2 / RFC 4302 Appendix B3: the first of the high halves
/// inferred + 1 ..= inferred + `max_tries` (capped) with which the packet verifies.
fn resync_candidates<V: Verifier + ?Sized>(
    inferred: u64,
    low: u32,
    max_tries: u32,
    verifier: &mut V,
) -> Option<u64> {
    let (base, _) = crate::seq::split(inferred);
    for k in 1..=max_tries.min(ResyncPolicy::MAX_TRIES) {
        let hi = base.checked_add(k)?;
        let seq = (u64::from(hi) << 32) | u64::from(low);
        if verifier.verify(seq) {
            return Some(seq);
        }
        // A failed verification may have left anything in the packet.
        verifier.restore();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplayWindow;
    use std::vec::Vec;

    /// Accepts exactly one full sequence number; records every call.
    struct Fake {
        good: u64,
        tried: Vec<u64>,
        restores: usize,
        prepared: usize,
        refuse: bool,
    }

    impl Fake {
        fn new(good: u64) -> Self {
            Fake {
                good,
                tried: Vec::new(),
                restores: 0,
                prepared: 0,
                refuse: false,
            }
        }
    }

    impl Verifier for Fake {
        type Error = &'static str;
        fn prepare(&mut self, _: Attempt) -> Result<(), &'static str> {
            self.prepared += 1;
            if self.refuse {
                Err("no room")
            } else {
                Ok(())
            }
        }
        fn verify(&mut self, seq: u64) -> bool {
            self.tried.push(seq);
            seq == self.good
        }
        fn restore(&mut self) {
            self.restores += 1;
        }
    }

    fn facts(low: u32, esn: bool) -> SeqFacts {
        SeqFacts { low, esn }
    }

    #[test]
    fn check_verify_mark() {
        let mut w = ReplayWindow::new(64).unwrap();
        let mut v = Fake::new(5);
        assert_eq!(
            open(&mut w, facts(5, false), Attempt::Normal, &mut v),
            Ok(5)
        );
        assert_eq!(w.top(), 5);
        // A replay is refused before verification.
        let mut v = Fake::new(5);
        assert_eq!(
            open(&mut w, facts(5, false), Attempt::Normal, &mut v),
            Err(Refused::Replay(ReplayError::Duplicate))
        );
        assert!(v.tried.is_empty());
        assert_eq!(v.prepared, 0);
        // A forgery does not move the window.
        let mut v = Fake::new(0);
        assert_eq!(
            open(&mut w, facts(100, false), Attempt::Normal, &mut v),
            Err(Refused::Unauthentic)
        );
        assert_eq!(w.top(), 5);
        assert_eq!(w.check(100), Ok(()));
        // The protocol's refusal comes before verification and leaves the window.
        let mut v = Fake::new(100);
        v.refuse = true;
        assert_eq!(
            open(&mut w, facts(100, false), Attempt::Normal, &mut v),
            Err(Refused::Protocol("no room"))
        );
        assert!(v.tried.is_empty());
        assert_eq!(w.top(), 5);
    }

    /// A guard whose check passes but whose mark refuses, as when a duplicate was
    /// marked by another thread while this one verified.
    struct RacingGuard;

    impl ReplayGuard for RacingGuard {
        fn check_seq(&mut self, low: u32, _esn: bool) -> Result<u64, ReplayError> {
            Ok(u64::from(low))
        }
        fn mark_seq(&mut self, _seq: u64) -> Result<(), ReplayError> {
            Err(ReplayError::Duplicate)
        }
    }

    #[test]
    fn a_verified_packet_marked_meanwhile_is_a_replay() {
        let mut v = Fake::new(7);
        assert_eq!(
            open(&mut RacingGuard, facts(7, false), Attempt::Normal, &mut v),
            Err(Refused::Replay(ReplayError::Duplicate))
        );
        assert_eq!(v.tried, [7], "verified, then refused by the mark");
    }

    #[test]
    fn resync_with_no_tries_prepares_nothing() {
        let mut w = ReplayWindow::new(64).unwrap();
        let mut v = Fake::new(5);
        assert_eq!(
            open(
                &mut w,
                facts(5, true),
                Attempt::Resync { max_tries: 0 },
                &mut v
            ),
            Err(Refused::Unauthentic)
        );
        assert_eq!((v.prepared, v.tried.len()), (0, 0));
        assert_eq!(w.top(), 0);
    }

    #[test]
    fn refusals_map_to_the_protocols_errors() {
        let map = |r: Refused<&'static str>| r.into_error(|_| "replay", "integrity");
        assert_eq!(map(Refused::Replay(ReplayError::Duplicate)), "replay");
        assert_eq!(map(Refused::Unauthentic), "integrity");
        assert_eq!(map(Refused::Protocol("room")), "room");
    }

    #[test]
    fn resync_tries_the_next_high_halves_only() {
        let mut w = ReplayWindow::new(64).unwrap();
        w.mark(3 << 32 | 10).unwrap();
        let good = (6u64 << 32) | 20;
        let mut v = Fake::new(good);
        assert_eq!(
            open(
                &mut w,
                facts(20, true),
                Attempt::Resync { max_tries: 8 },
                &mut v
            ),
            Ok(good)
        );
        assert_eq!(v.tried, [4 << 32 | 20, 5 << 32 | 20, good]);
        assert_eq!(v.restores, 2);
        assert_eq!(w.top(), good);
        // Not found: every candidate restored, window unchanged.
        let mut v = Fake::new(0);
        assert_eq!(
            open(
                &mut w,
                facts(30, true),
                Attempt::Resync { max_tries: 1000 },
                &mut v
            ),
            Err(Refused::Unauthentic)
        );
        assert_eq!(v.tried.len(), ResyncPolicy::MAX_TRIES as usize);
        assert_eq!(v.restores, v.tried.len());
        assert_eq!(w.top(), good);
        // Without ESN: nothing tried.
        let mut v = Fake::new(0);
        assert_eq!(
            open(
                &mut ReplayWindow::new(64).unwrap(),
                facts(300, false),
                Attempt::Resync { max_tries: 8 },
                &mut v
            ),
            Err(Refused::Unauthentic)
        );
        assert!(v.tried.is_empty());
        assert_eq!(v.prepared, 0);
        // The pre-check still runs first.
        let mut v = Fake::new(good);
        assert_eq!(
            open(
                &mut w,
                facts(20, true),
                Attempt::Resync { max_tries: 8 },
                &mut v
            ),
            Err(Refused::Replay(ReplayError::Duplicate))
        );
        assert!(v.tried.is_empty());
    }

    #[test]
    fn resync_never_wraps_the_high_half() {
        let mut w = ReplayWindow::new(64).unwrap();
        let top = (u64::from(u32::MAX - 1) << 32) | 10;
        w.mark(top).unwrap();
        let mut v = Fake::new(0);
        let r = open(
            &mut w,
            facts(20, true),
            Attempt::Resync { max_tries: 8 },
            &mut v,
        );
        assert_eq!(r, Err(Refused::Unauthentic));
        assert_eq!(v.tried, [u64::from(u32::MAX) << 32 | 20]);
    }
}
