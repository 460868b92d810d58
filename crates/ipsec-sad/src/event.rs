//! Events the SAD reports to the control plane, polled sans-I/O style.

use alloc::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use ipsec_core::Spi;

use crate::classify::{Direction, FlowKey};
use crate::id::SaId;
use crate::spd::{PolicyId, SaTemplate};
use crate::trace;

/// Which limit of an SA was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiryCause {
    /// The byte limit, counted in this direction.
    Bytes(Direction),
    /// The packet limit, counted in this direction.
    Packets(Direction),
    /// The time limit.
    Time,
}

/// A PROTECT rule matched a packet but has no SA: negotiate one (RFC 4301 §5.1,
/// "ACQUIRE").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Acquire {
    /// The rule.
    pub policy: PolicyId,
    /// What it asks for.
    pub template: SaTemplate,
    /// The packet that triggered it (IKE narrows the selectors to it or not).
    pub flow: FlowKey,
}

/// Something the control plane must act on. Drain them with
/// [`Sad::poll_event`](crate::Sad::poll_event) after processing packets or timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A soft limit was reached: rekey the SA now (it keeps working).
    SoftExpired {
        /// The SA.
        sa: SaId,
        /// Its inbound SPI.
        inbound_spi: Spi,
        /// Its outbound SPI.
        outbound_spi: Spi,
        /// Which limit.
        cause: ExpiryCause,
    },
    /// A hard limit was reached: the SA no longer processes packets and has been
    /// removed from the SAD by the time this event is returned.
    HardExpired {
        /// The SA.
        sa: SaId,
        /// Its inbound SPI.
        inbound_spi: Spi,
        /// Its outbound SPI.
        outbound_spi: Spi,
        /// Which limit.
        cause: ExpiryCause,
    },
    /// The outbound sequence number is close to its limit (no wrap is allowed, RFC 4303
    /// §3.3.3): rekey before it runs out.
    SeqNearExhaustion {
        /// The SA.
        sa: SaId,
        /// Its outbound SPI.
        outbound_spi: Spi,
        /// Sequence numbers left when the event fired.
        remaining: u64,
    },
    /// An ESP or AH SA with ESN lost more than 2^32 consecutive packets and
    /// re-synchronized the high half of its sequence numbers (RFC 4303 Appendix A3,
    /// RFC 4302 Appendix B3): a packet
    /// authenticated with a larger high half than inferred, was delivered, and moved
    /// the anti-replay window up to `seq`.
    EsnResynced {
        /// The SA.
        sa: SaId,
        /// Its inbound SPI.
        inbound_spi: Spi,
        /// The full sequence number of the packet that re-synchronized it.
        seq: u64,
    },
    /// A PROTECT rule has no SA (reported at most once per rule per
    /// [`SadConfig::acquire_retry`](crate::SadConfig::acquire_retry)).
    Acquire(Acquire),
}

/// The event queue. Pushed from the data path only when a threshold is crossed (once
/// per SA and kind), so its lock is almost never contended.
#[derive(Debug, Default)]
pub(crate) struct Events {
    q: Mutex<VecDeque<Event>>,
}

impl Events {
    pub(crate) fn push(&self, e: Event) {
        trace_event(&e);
        self.q
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(e);
    }

    pub(crate) fn pop(&self) -> Option<Event> {
        self.q
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    pub(crate) fn take_all(&self) -> VecDeque<Event> {
        core::mem::take(&mut *self.q.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The `tracing` event of an [`Event`] as it is queued: lifetimes and re-synchronization
/// at `info`, sequence numbers running out at `warn`, acquires at `debug`.
fn trace_event(e: &Event) {
    match *e {
        Event::SoftExpired {
            sa,
            inbound_spi,
            outbound_spi,
            cause,
        } => trace::info!(
            sa = sa.0,
            inbound_spi = %inbound_spi,
            outbound_spi = %outbound_spi,
            cause = ?cause,
            "SA soft lifetime reached: rekey it"
        ),
        Event::HardExpired {
            sa,
            inbound_spi,
            outbound_spi,
            cause,
        } => trace::info!(
            sa = sa.0,
            inbound_spi = %inbound_spi,
            outbound_spi = %outbound_spi,
            cause = ?cause,
            "SA hard lifetime reached: it processes no more packets"
        ),
        Event::SeqNearExhaustion {
            sa,
            outbound_spi,
            remaining,
        } => trace::warning!(
            sa = sa.0,
            outbound_spi = %outbound_spi,
            remaining = remaining,
            "SA sequence numbers running out: rekey it"
        ),
        Event::EsnResynced {
            sa,
            inbound_spi,
            seq,
        } => trace::info!(
            sa = sa.0,
            inbound_spi = %inbound_spi,
            seq = seq,
            "SA re-synchronized its ESN high half (RFC 4303 App. A3)"
        ),
        Event::Acquire(a) => trace::debug!(
            policy = ?a.policy,
            flow = ?a.flow,
            "acquire: a PROTECT rule has no SA"
        ),
    }
}
