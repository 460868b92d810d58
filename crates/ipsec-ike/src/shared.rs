//! What every state of every IKE SA shares: the datagram [`Path`], and [`Shared`], the
//! endpoint's context (configuration, provider, output queues, SPI tables, jitter).
//!
//! The leaf of the crate's module tree (as quinn-proto's `shared.rs`): the endpoint,
//! the SA states, the sessions and the key schedule all build on it, and it imports
//! none of them.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use ipsec_core::{Duration, IkeSpi, Spi};
use ipsec_crypto::{CryptoError, CryptoProvider};

use crate::config::{Config, ResolvesPeer};
use crate::error::{CloseReason, Error};
use crate::event::{ChildSaId, Event, SaHandle, Transmit};
use crate::trace;

pub use ipsec_core::nat_t::{NAT_T_PORT, NON_ESP_MARKER};

/// The two ends of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Path {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Path {
    /// Whether IKE on this path carries the non-ESP marker.
    pub(crate) fn encap(&self) -> bool {
        self.local.port() == NAT_T_PORT || self.remote.port() == NAT_T_PORT
    }
}

/// The part of the inbound ESP/AH SPI space an endpoint chooses its SPIs from
/// ([`IkeEndpoint::set_child_spi_space`](crate::IkeEndpoint::set_child_spi_space)):
/// the top `bits` bits of every SPI are `index`. Gateways that serve the same SAs
/// behind one address (an anycast cluster) each take their own index, so no two of
/// them ever choose the same SPI, with no coordination per SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpiSpace {
    index: u32,
    bits: u8,
}

impl SpiSpace {
    /// Index `index` of `2^bits` disjoint parts (`bits` from 1 to 16).
    ///
    /// # Errors
    /// `bits` out of range, or `index` not below `2^bits`.
    pub fn new(index: u32, bits: u8) -> Result<Self, SpiSpaceError> {
        if !(1..=16).contains(&bits) || index >= 1 << bits {
            return Err(SpiSpaceError { index, bits });
        }
        Ok(SpiSpace { index, bits })
    }

    /// The index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of top bits fixed to the index.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Whether `spi` lies in this part of the space.
    pub fn contains(&self, spi: Spi) -> bool {
        spi.0 >> (32 - u32::from(self.bits)) == self.index
    }

    /// `random` moved into this part: its top bits replaced by the index.
    fn place(&self, random: u32) -> u32 {
        let low = 32 - u32::from(self.bits);
        (self.index << low) | (random & ((1u32 << low) - 1))
    }
}

/// An index that does not fit its number of bits ([`SpiSpace::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SPI space index {index} does not fit {bits} bits (1 to 16)")]
pub struct SpiSpaceError {
    /// The index asked for.
    pub index: u32,
    /// The bits asked for.
    pub bits: u8,
}

/// Tells the endpoint that an inbound SPI is taken elsewhere (in the embedder's SAD,
/// by an SA it did not negotiate itself): see
/// [`IkeEndpoint::set_child_spi_in_use`](crate::IkeEndpoint::set_child_spi_in_use).
pub type SpiInUse = Arc<dyn Fn(Spi) -> bool + Send + Sync>;

/// What every IKE SA of an endpoint shares: configuration, provider, output queues
/// and the SPI tables.
pub(crate) struct Shared {
    /// The configuration of the IKE SA being handled: the endpoint sets it to the
    /// SA's own before each call into the SA and keeps what it is after (the IKE_AUTH
    /// responder replaces it with the resolver's). Outside such calls, the
    /// endpoint's.
    pub config: Arc<Config>,
    /// Chooses each peer's configuration at IKE_AUTH (responder).
    pub resolver: Option<Arc<dyn ResolvesPeer>>,
    pub provider: &'static CryptoProvider,
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<(SaHandle, Event)>,
    /// Our IKE SPIs (of every session) to their IKE SA.
    pub spis: BTreeMap<IkeSpi, SaHandle>,
    /// Our inbound ESP SPIs in use.
    pub child_spis: BTreeSet<u32>,
    /// Where new inbound SPIs come from (all of the space without one).
    pub child_spi_space: Option<SpiSpace>,
    /// SPIs taken outside this endpoint.
    pub child_spi_in_use: Option<SpiInUse>,
    pub next_child: u64,
    /// IKE SAs that reported [`Event::IkeSaEstablished`] and have not closed: a close
    /// of any other is a failed handshake.
    pub established: BTreeSet<SaHandle>,
    /// Handshake and retransmission counters.
    pub counters: IkeCounters,
}

/// Counters of an endpoint's handshakes and retransmissions, since it was made; in
/// [`EndpointStats::ike`](crate::EndpointStats::ike).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IkeCounters {
    /// IKE SAs established (IKE_AUTH completed), both roles; rekeys not counted.
    pub handshakes: u64,
    /// Handshakes that ended before the IKE SA was established, by reason:
    /// authentication refused (by us or by the peer).
    pub failed_authentication: u64,
    /// ... no proposal in common.
    pub failed_no_proposal: u64,
    /// ... the peer did not answer (retransmissions exhausted, half-open timeout).
    pub failed_timeout: u64,
    /// ... another reason (an error notification, a protocol error, a close).
    pub failed_other: u64,
    /// Requests we sent again because no answer came in time.
    pub retransmissions: u64,
}

impl Shared {
    /// Queues a datagram, with the non-ESP marker on port 4500.
    pub(crate) fn send(&mut self, path: Path, message: &[u8]) {
        let mut payload = Vec::with_capacity(message.len() + 4);
        if path.encap() {
            payload.extend_from_slice(&NON_ESP_MARKER);
        }
        payload.extend_from_slice(message);
        self.transmits.push_back(Transmit {
            local: path.local,
            remote: path.remote,
            payload,
        });
    }

    /// Queues an event, counts it, and traces it (the `tracing` feature).
    pub(crate) fn event(&mut self, h: SaHandle, e: Event) {
        let mut established = false;
        match &e {
            Event::IkeSaEstablished { .. } => {
                self.established.insert(h);
                self.counters.handshakes += 1;
            }
            Event::IkeSaClosed { reason } => {
                established = self.established.remove(&h);
                if !established {
                    let c = &mut self.counters;
                    match reason {
                        CloseReason::AuthenticationFailed(_) => c.failed_authentication += 1,
                        CloseReason::NoProposalChosen => c.failed_no_proposal += 1,
                        CloseReason::Timeout => c.failed_timeout += 1,
                        _ => c.failed_other += 1,
                    }
                }
            }
            _ => {}
        }
        trace_event(h, &e, established);
        self.events.push_back((h, e));
    }

    /// A fresh, unused, non-zero IKE SPI, registered for `h`.
    pub(crate) fn new_ike_spi(&mut self, h: SaHandle) -> Result<IkeSpi, Error> {
        for _ in 0..16 {
            let mut s = [0u8; 8];
            self.provider.secure_random.fill(&mut s)?;
            let spi = IkeSpi(s);
            if !spi.is_zero() && !self.spis.contains_key(&spi) {
                self.spis.insert(spi, h);
                return Ok(spi);
            }
        }
        Err(Error::Crypto(CryptoError::Random))
    }

    /// A fresh inbound ESP SPI (above the reserved range, not in use).
    pub(crate) fn new_child_spi(&mut self) -> Result<Spi, Error> {
        for _ in 0..16 {
            let mut s = [0u8; 4];
            self.provider.secure_random.fill(&mut s)?;
            let v = u32::from_be_bytes(s);
            let v = self.child_spi_space.map_or(v, |sp| sp.place(v));
            let taken_elsewhere = self.child_spi_in_use.as_ref().is_some_and(|f| f(Spi(v)));
            if v >= 256 && !self.child_spis.contains(&v) && !taken_elsewhere {
                self.child_spis.insert(v);
                return Ok(Spi(v));
            }
        }
        Err(Error::Crypto(CryptoError::Random))
    }

    /// A fresh Child SA id.
    pub(crate) fn child_id(&mut self) -> ChildSaId {
        self.next_child = self.next_child.wrapping_add(1);
        ChildSaId(self.next_child)
    }

    /// `d` shortened by a random amount of up to `rekey_jitter_percent`.
    pub(crate) fn jitter(&self, d: Duration) -> Duration {
        let pct = u64::from(self.config.rekey_jitter_percent.min(50));
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let span = nanos / 100 * pct;
        if span == 0 {
            return d;
        }
        let mut b = [0u8; 8];
        let random = match self.provider.secure_random.fill(&mut b) {
            Ok(()) => u64::from_be_bytes(b),
            Err(_) => 0,
        };
        let r = random % span.saturating_add(1);
        Duration::from_nanos(nanos.saturating_sub(r))
    }
}

/// The `tracing` event of an [`Event`]: transitions at `info`, failures at `warn`, the
/// periodic ones lower. `was_established`: an [`Event::IkeSaClosed`] ends an IKE SA
/// that had been established (otherwise it ends a handshake). Never a key: the keys of
/// [`Event::IkeSaKeysDerived`] and [`Event::ChildSaInstalled`] stay out.
fn trace_event(h: SaHandle, e: &Event, was_established: bool) {
    match e {
        Event::IkeSaEstablished {
            local_spi,
            remote_spi,
            suite,
            nat,
            peer_id,
            virtual_ips,
            ..
        } => trace::info!(
            sa = %h,
            local_spi = %local_spi,
            remote_spi = %remote_spi,
            suite = %suite,
            peer = %peer_id,
            local_behind_nat = nat.local_behind_nat,
            remote_behind_nat = nat.remote_behind_nat,
            virtual_ips = ?virtual_ips,
            "IKE SA established"
        ),
        Event::IkeSaKeysDerived { keys } => trace::debug!(
            sa = %h,
            spi_i = %keys.spi_i,
            spi_r = %keys.spi_r,
            "IKE SA keys derived and handed out (Config::export_ike_keys)"
        ),
        Event::ChildSaInstalled { id, params, suite } => trace::info!(
            sa = %h,
            child = %id,
            suite = %suite,
            inbound_spi = %params.inbound_spi,
            outbound_spi = %params.outbound_spi,
            mode = ?params.mode,
            "Child SA installed"
        ),
        Event::ChildSaFailed { id, error } => trace::warning!(
            sa = %h,
            child = %id,
            error = %error,
            "Child SA not created"
        ),
        Event::ChildSaRekeyed { old, new } => {
            trace::info!(sa = %h, old = %old, new = %new, "Child SA rekeyed");
        }
        Event::ChildSaDeleted {
            id,
            inbound_spi,
            outbound_spi,
        } => trace::info!(
            sa = %h,
            child = %id,
            inbound_spi = %inbound_spi,
            outbound_spi = %outbound_spi,
            "Child SA deleted"
        ),
        Event::IkeSaRekeyed {
            old_local_spi,
            new_local_spi,
            new_remote_spi,
            ..
        } => trace::info!(
            sa = %h,
            old_local_spi = %old_local_spi,
            local_spi = %new_local_spi,
            remote_spi = %new_remote_spi,
            "IKE SA rekeyed"
        ),
        Event::LivenessOk => trace::debug!(sa = %h, "liveness check answered"),
        Event::PeerAddressChanged { remote } => {
            trace::info!(sa = %h, remote = %remote, "peer address changed (NAT)");
        }
        Event::PathUpdated {
            local,
            remote,
            nat,
            udp_encap,
        } => trace::info!(
            sa = %h,
            local = %local,
            remote = %remote,
            local_behind_nat = nat.local_behind_nat,
            remote_behind_nat = nat.remote_behind_nat,
            udp_encap = udp_encap.is_some(),
            "IKE SA path updated (MOBIKE, RFC 4555)"
        ),
        Event::NatKeepaliveDue { local, remote } => {
            trace::trace!(sa = %h, local = %local, remote = %remote, "NAT keepalive due");
        }
        Event::Redirected { redirect } => trace::info!(
            sa = %h,
            from = %redirect.from,
            to = %redirect.to,
            phase = ?redirect.phase,
            "redirected to another gateway (RFC 5685): following"
        ),
        Event::PeerRedirected { to } => {
            trace::info!(sa = %h, to = %to, "peer redirected to another gateway (RFC 5685)");
        }
        Event::IkeSaClosed { reason } => match (was_established, reason) {
            (_, CloseReason::Redirected) | (true, CloseReason::Deleted { .. }) => {
                trace::info!(sa = %h, reason = %reason, "IKE SA closed");
            }
            (true, _) => trace::warning!(sa = %h, reason = %reason, "IKE SA closed"),
            (false, _) => trace::warning!(sa = %h, reason = %reason, "IKE SA handshake failed"),
        },
    }
}
