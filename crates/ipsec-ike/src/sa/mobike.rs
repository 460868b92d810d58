//! MOBIKE (RFC 4555), both roles: MOBIKE_SUPPORTED in IKE_AUTH (§3.1), the original
//! initiator's INFORMATIONAL with UPDATE_SA_ADDRESSES and NAT detection after its
//! address changed (§3.5, [`IkeSa::update_path`]), the responder's answer that moves
//! the IKE SA and its Child SAs to the request's addresses ([`Event::PathUpdated`]),
//! the return routability cookie COOKIE2 (§3.8), the peer's additional addresses
//! (ADDITIONAL_IP4/6_ADDRESS, NO_ADDITIONAL_ADDRESSES, §3.6) and NO_NATS_ALLOWED
//! (§3.9).
//!
//! Only what the notifications carry lives here; the request queue is
//! [`established`](super::established)'s ([`Pending::UpdateAddresses`]).

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipsec_core::{Instant, UdpEncap};
use ipsec_ike_wire::{ExchangeType, NotifyType};
use subtle::ConstantTimeEq;

use crate::error::{ApiMisuse, CloseReason, Error, PeerMisbehaved};
use crate::event::{Event, NatState};
use crate::inflight::Inflight;
use crate::msg::{InMsg, Out};
use crate::sa::established::{Established, Incoming, Pending, Which};
use crate::sa::init::{detect_nat, nat_notifies};
use crate::sa::{Flow, IkeSa, State};
use crate::shared::{Path, Shared, NAT_T_PORT};
use crate::timers::Timer;
use crate::trace;

/// Length of our COOKIE2 (RFC 4555 §3.8 allows 8 to 64 octets).
pub(crate) const COOKIE2_LEN: usize = 16;

/// The lengths of a COOKIE2 we echo (RFC 4555 §3.8).
const COOKIE2_LENS: core::ops::RangeInclusive<usize> = 8..=64;

/// The most additional addresses of the peer we keep (a cap on what a peer can make
/// us hold; more are ignored).
pub(crate) const MAX_PEER_ADDRESSES: usize = 8;

/// What MOBIKE negotiated for an established IKE SA, kept across IKE SA rekeys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mobike {
    /// Both sides sent MOBIKE_SUPPORTED in IKE_AUTH.
    pub negotiated: bool,
    /// We were the original initiator (the IKE_SA_INIT of the first IKE SA): the only
    /// side that may send UPDATE_SA_ADDRESSES (RFC 4555 §3.5). Kept across IKE SA
    /// rekeys, since the side that moves is the same.
    pub initiator: bool,
    /// The peer's additional addresses (ADDITIONAL_IP4/6_ADDRESS), at most
    /// [`MAX_PEER_ADDRESSES`]; empty after NO_ADDITIONAL_ADDRESSES or none given.
    pub peer_addresses: Vec<IpAddr>,
    /// Our address changed again while an UPDATE_SA_ADDRESSES was in flight: send
    /// another once it is answered.
    pub again: bool,
}

/// MOBIKE_SUPPORTED for our IKE_AUTH request (RFC 4555 §3.1), when configured.
pub(crate) fn offer(cx: &Shared) -> Option<Out> {
    cx.config
        .mobike
        .then(|| Out::notify(NotifyType::MOBIKE_SUPPORTED, &[]))
}

/// MOBIKE_SUPPORTED for our IKE_AUTH response: when configured and the initiator's
/// request `m` announced it (RFC 4555 §3.1).
pub(crate) fn answer(cx: &Shared, m: &InMsg) -> Option<Out> {
    offer(cx).filter(|_| m.has(NotifyType::MOBIKE_SUPPORTED))
}

/// What the peer's IKE_AUTH message `m` negotiated: MOBIKE when both sides announced
/// it, and the peer's additional addresses. `initiator`: our role.
pub(crate) fn negotiated(cx: &Shared, m: &InMsg, initiator: bool) -> Mobike {
    let mut mobike = Mobike {
        negotiated: cx.config.mobike && m.has(NotifyType::MOBIKE_SUPPORTED),
        initiator,
        ..Mobike::default()
    };
    if mobike.negotiated {
        record_addresses(&mut mobike, m);
    }
    mobike
}

/// Takes the peer's address list from `m` if it has one (RFC 4555 §3.6: each list
/// replaces the one before; NO_ADDITIONAL_ADDRESSES empties it).
fn record_addresses(mobike: &mut Mobike, m: &InMsg) {
    let mut list = Vec::new();
    let mut any = m.has(NotifyType::NO_ADDITIONAL_ADDRESSES);
    for n in &m.notifies {
        let a = match n.ty {
            NotifyType::ADDITIONAL_IP4_ADDRESS => <[u8; 4]>::try_from(n.data.as_slice())
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            NotifyType::ADDITIONAL_IP6_ADDRESS => <[u8; 16]>::try_from(n.data.as_slice())
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => continue,
        };
        any = true;
        if let Some(a) = a {
            if list.len() < MAX_PEER_ADDRESSES && !list.contains(&a) {
                list.push(a);
            }
        }
    }
    if any {
        mobike.peer_addresses = list;
    }
}

/// UDP encapsulation on `path` after NAT detection found `nat`.
fn udp_encap(path: Path, nat: NatState) -> Option<UdpEncap> {
    nat.any().then_some(UdpEncap {
        local_port: path.local.port(),
        remote_port: path.remote.port(),
    })
}

impl IkeSa {
    /// The IKE SA now runs on `path`, with NAT detection's `nat`: keepalives follow
    /// the new NAT state and the data plane is told ([`Event::PathUpdated`]).
    fn path_updated(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        nat: NatState,
    ) {
        self.path = path;
        self.nat = nat;
        e.timers.set(
            Timer::Keepalive,
            nat.local_behind_nat.then(|| now + cx.config.nat_keepalive),
        );
        cx.event(
            self.handle,
            Event::PathUpdated {
                local: path.local,
                remote: path.remote,
                nat,
                udp_encap: udp_encap(path, nat),
            },
        );
    }

    /// The MOBIKE notifications of the peer's INFORMATIONAL request `r`, as
    /// responder: returns the payloads they add to the answer (NAT detection after an
    /// UPDATE_SA_ADDRESSES, the echoed COOKIE2, or UNACCEPTABLE_ADDRESSES). Without
    /// MOBIKE negotiated they are ignored (RFC 7296 §3.10.1: unknown status types).
    pub(crate) fn mobike_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        if !e.mobike.negotiated {
            return out;
        }
        let m = r.m;
        record_addresses(&mut e.mobike, m);
        if m.has(NotifyType::UPDATE_SA_ADDRESSES) {
            if e.mobike.initiator || r.w != Which::Current {
                // RFC 4555 §3.5: only the original initiator moves the IKE SA; an
                // update on an IKE SA being retired has a successor to go to.
                self.dropped(r.path, r.h, "mobike_not_initiator");
            } else {
                // The message is authenticated and inside the Message ID window, so
                // it is newer than every update before it (RFC 4555 §3.5).
                let (spi_i, spi_r) = (e.current.spi_i, e.current.spi_r);
                let nat = detect_nat(cx, m, spi_i, spi_r, r.path);
                if nat.any() && m.has(NotifyType::NO_NATS_ALLOWED) {
                    // RFC 4555 §3.9: the initiator does not accept a NAT on the path.
                    out.push(Out::notify(NotifyType::UNACCEPTABLE_ADDRESSES, &[]));
                } else {
                    self.path_updated(e, cx, r.now, r.path, nat);
                    out.extend(nat_notifies(cx, spi_i, spi_r, r.path));
                }
            }
        }
        if let Some(c) = m.notify(NotifyType::COOKIE2) {
            // RFC 4555 §3.8: copied into the answer, whatever else it carries.
            if COOKIE2_LENS.contains(&c.data.len()) {
                out.push(Out::notify(NotifyType::COOKIE2, &c.data));
            }
        }
        out
    }

    /// Our UPDATE_SA_ADDRESSES request on the current path (RFC 4555 §3.5), with NAT
    /// detection for the new addresses and a fresh COOKIE2 (§3.8).
    pub(crate) fn send_update(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
    ) -> Result<(), Error> {
        let mut cookie2 = alloc::vec![0u8; COOKIE2_LEN];
        cx.provider.secure_random.fill(&mut cookie2)?;
        let mut out = alloc::vec![Out::notify(NotifyType::UPDATE_SA_ADDRESSES, &[])];
        out.extend(nat_notifies(
            cx,
            e.current.spi_i,
            e.current.spi_r,
            self.path,
        ));
        out.push(Out::notify(NotifyType::COOKIE2, &cookie2));
        e.mobike.again = false;
        trace::info!(
            sa = %self.handle,
            local = %self.path.local,
            remote = %self.path.remote,
            "UPDATE_SA_ADDRESSES sent (MOBIKE, RFC 4555 §3.5)"
        );
        e.current.request(
            cx,
            now,
            self.path,
            ExchangeType::INFORMATIONAL,
            &out,
            Inflight::UpdateAddresses(cookie2),
        )
    }

    /// The answer `m` to our UPDATE_SA_ADDRESSES with `cookie2`: checks the echoed
    /// cookie (RFC 4555 §3.8; a wrong one ends the IKE SA), redoes NAT detection and
    /// reports the path.
    pub(crate) fn update_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        cookie2: &[u8],
        m: &InMsg,
    ) -> Flow {
        let echoed = m
            .notify(NotifyType::COOKIE2)
            .is_some_and(|n| n.data.len() == cookie2.len() && bool::from(n.data.ct_eq(cookie2)));
        if !echoed {
            return Flow::Close(CloseReason::from_error(
                PeerMisbehaved::UnexpectedMessage.into(),
            ));
        }
        if let Some(n) = m.error_notify() {
            // UNACCEPTABLE_ADDRESSES (§3.9) or another refusal: the responder kept
            // the old addresses; so does the data plane.
            trace::warning!(sa = %self.handle, notify = %n, "UPDATE_SA_ADDRESSES refused");
        } else {
            record_addresses(&mut e.mobike, m);
            let path = self.path;
            let nat = detect_nat(cx, m, e.current.spi_i, e.current.spi_r, path);
            self.path_updated(e, cx, now, path, nat);
        }
        if e.mobike.again {
            e.push_front_unique(Pending::UpdateAddresses);
        }
        Flow::Continue
    }

    /// Our own address changed to `local` (the embedder noticed). With MOBIKE, as the
    /// original initiator: IKE moves to `local` at once (port 4500 at the peer,
    /// RFC 4555 §3.3), an UPDATE_SA_ADDRESSES goes out first in the queue and is
    /// retransmitted on the new path; its answer gives [`Event::PathUpdated`].
    /// Without MOBIKE: IKE moves to `local` and a liveness check follows, so that
    /// a peer that sees us behind a NAT follows us (RFC 7296 §2.23); the path event
    /// comes at once. Returns whether an UPDATE_SA_ADDRESSES was queued.
    pub(crate) fn update_path(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        local: SocketAddr,
    ) -> Result<bool, Error> {
        let State::Established(e) = &mut self.state else {
            return Err(ApiMisuse::NotEstablished.into());
        };
        if e.deleting {
            return Err(ApiMisuse::NotEstablished.into());
        }
        if e.mobike.negotiated && !e.mobike.initiator {
            return Err(ApiMisuse::NotOriginalInitiator.into());
        }
        let mut remote = self.path.remote;
        if local.is_ipv4() != remote.is_ipv4() {
            // Another family: one of the peer's additional addresses, if it gave one.
            let a = e
                .mobike
                .peer_addresses
                .iter()
                .find(|a| a.is_ipv4() == local.is_ipv4())
                .filter(|_| e.mobike.negotiated)
                .ok_or(ApiMisuse::AddressFamily)?;
            remote = SocketAddr::new(*a, NAT_T_PORT);
        }
        let state = core::mem::replace(&mut self.state, State::Gone);
        let State::Established(mut e) = state else {
            self.state = state;
            return Err(ApiMisuse::NotEstablished.into());
        };
        let mobike = e.mobike.negotiated;
        if mobike {
            if remote.port() != NAT_T_PORT {
                remote.set_port(NAT_T_PORT);
            }
            self.path = Path { local, remote };
            let in_flight = matches!(
                e.current.out.as_ref().map(|r| &r.kind),
                Some(Inflight::UpdateAddresses(_))
            );
            if in_flight {
                e.mobike.again = true;
            } else {
                e.push_front_unique(Pending::UpdateAddresses);
            }
        } else {
            let path = Path { local, remote };
            let nat = self.nat;
            self.path_updated(&mut e, cx, now, path, nat);
            e.push_unique(Pending::Liveness);
        }
        self.kick(&mut e, cx, now);
        self.state = State::Established(e);
        Ok(mobike)
    }
}
