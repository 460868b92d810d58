//! One IKE SA: the handshake states (IKE_SA_INIT, IKE_AUTH) as an enum of per-state
//! structs moved by value, and the transition into [`Established`].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem;

use ipsec_core::{
    ChildSaParams, IkeSpi, Instant, Lifetime, LifetimeLimits, Mode, SecurityProtocol, Spi,
    TrafficSelector, TsSet, UdpEncap, MAX_SELECTORS,
};
use ipsec_crypto::{kdf, ActiveKx, CryptoError, KeId, ProposalKind};
use ipsec_ike_wire::{
    AuthMethod, ExchangeType, IkeHeaderRepr, IkePacket, NotifyType, PayloadType, HEADER_LEN,
};

use crate::config::Identity;
use crate::error::{ApiMisuse, CloseReason, Error, PeerIncompatible, PeerMisbehaved};
use crate::established::{Established, Pending};
use crate::event::{ChildSaId, Event, NatState, SaHandle};
use crate::inflight::{ChildReq, Inflight};
use crate::keys::{self, IkeCrypto};
use crate::msg::{self, InMsg, InNotify, Out, OutProposal};
use crate::proposal::{self, Chosen, KeMode};
use crate::puzzle;
use crate::session::{Cached, Received, Session};
use crate::shared::{Path, Shared, NAT_T_PORT};

/// Length of our nonces: at least half the key size of every PRF we offer
/// (RFC 7296 §2.10), and 128 bits.
pub(crate) const NONCE_LEN: usize = 32;

/// Initiator: IKE_SA_INIT sent, waiting for its response.
pub(crate) struct ExpectSaInitResp {
    spi_i: IkeSpi,
    offer: Vec<OutProposal>,
    kx: Box<dyn ActiveKx>,
    nonce: Vec<u8>,
    cookie: Option<Vec<u8>>,
    /// Our solution of the responder's puzzle (RFC 8019), sent after the cookie.
    puzzle_solution: Option<Vec<u8>>,
    request: Vec<u8>,
    sent: u32,
    deadline: Instant,
    restarts: u8,
    child_id: ChildSaId,
    /// The latest unauthenticated error answer (an error notification, or a response
    /// we cannot use), reported as the close reason if no valid response comes before
    /// the retransmissions run out (RFC 7296 §2.21.1, §2.21.2).
    unauth_error: Option<CloseReason>,
}

/// Initiator: IKE_AUTH sent, waiting for its response.
pub(crate) struct ExpectAuthResp {
    session: Session,
    init_response: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    child: ChildReq,
}

/// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
pub(crate) struct ExpectAuthReq {
    session: Session,
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    deadline: Instant,
    child_id: ChildSaId,
}

/// Gone, but still answering retransmitted requests from the cache for a while.
pub(crate) struct Closed {
    session: Option<Session>,
    until: Instant,
}

pub(crate) enum State {
    InitSent(Box<ExpectSaInitResp>),
    AuthSent(Box<ExpectAuthResp>),
    InitReplied(Box<ExpectAuthReq>),
    Established(Box<Established>),
    Closed(Box<Closed>),
    /// Placeholder while a state is moved out.
    Gone,
}

/// What to do after handling something in the established state.
pub(crate) enum Flow {
    Continue,
    Close(CloseReason),
}

/// The result of a new IKE_SA_INIT request.
pub(crate) enum NewResponder {
    Created(Box<IkeSa>),
    Reject(NotifyType, Vec<u8>),
    Drop,
}

/// One IKE SA of an endpoint.
pub(crate) struct IkeSa {
    pub handle: SaHandle,
    pub path: Path,
    pub nat: NatState,
    pub state: State,
    /// Every IKE SPI registered for this SA, released when it is removed.
    pub my_spis: Vec<IkeSpi>,
}

fn id_body(id: &Identity) -> Vec<u8> {
    let mut b = alloc::vec![id.id_type().0, 0, 0, 0];
    b.extend_from_slice(&id.data());
    b
}

/// Narrowing (RFC 7296 §2.9): every non-empty intersection of a proposed selector
/// with one of ours.
pub(crate) fn narrow(
    proposed: &[TrafficSelector],
    ours: &[TrafficSelector],
) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for o in ours {
            if let Some(x) = p.intersect(o) {
                if !out.contains(&x) && out.len() < MAX_SELECTORS {
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Whether every selector of `got` lies within one of `proposed`.
pub(crate) fn within(got: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !got.is_empty()
        && got
            .iter()
            .all(|g| proposed.iter().any(|p| p.intersect(g) == Some(*g)))
}

fn ts_set(v: &[TrafficSelector]) -> TsSet {
    let mut s = TsSet::new();
    for t in v {
        let _ = s.push(*t);
    }
    s
}

fn nat_notifies(cx: &Shared, spi_i: IkeSpi, spi_r: IkeSpi, path: Path) -> Vec<Out> {
    match (
        keys::nat_hash(cx.provider, spi_i, spi_r, path.local),
        keys::nat_hash(cx.provider, spi_i, spi_r, path.remote),
    ) {
        (Some(src), Some(dst)) => alloc::vec![
            Out::notify(NotifyType::NAT_DETECTION_SOURCE_IP, &src),
            Out::notify(NotifyType::NAT_DETECTION_DESTINATION_IP, &dst),
        ],
        _ => Vec::new(),
    }
}

/// NAT detection from the peer's NAT_DETECTION_* notifications, hashed with the SPIs
/// of the message that carried them (RFC 7296 §2.23).
fn detect_nat(cx: &Shared, m: &InMsg, spi_i: IkeSpi, spi_r: IkeSpi, path: Path) -> NatState {
    let of =
        |t: NotifyType| -> Vec<&InNotify> { m.notifies.iter().filter(|n| n.ty == t).collect() };
    let src = of(NotifyType::NAT_DETECTION_SOURCE_IP);
    let dst = of(NotifyType::NAT_DETECTION_DESTINATION_IP);
    let (Some(peer), Some(me)) = (
        keys::nat_hash(cx.provider, spi_i, spi_r, path.remote),
        keys::nat_hash(cx.provider, spi_i, spi_r, path.local),
    ) else {
        return NatState::default();
    };
    NatState {
        remote_behind_nat: !src.is_empty() && !src.iter().any(|n| n.data == peer),
        local_behind_nat: !dst.is_empty() && !dst.iter().any(|n| n.data == me),
    }
}

/// Everything [`build_child`] needs.
pub(crate) struct ChildInput<'a> {
    pub crypto: &'a IkeCrypto,
    pub chosen: Chosen,
    pub g_ir: Option<&'a [u8]>,
    pub ni: &'a [u8],
    pub nr: &'a [u8],
    pub we_initiated: bool,
    pub id: ChildSaId,
    pub our_spi: Spi,
    pub peer_spi: Spi,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub transport: bool,
}

/// A Child SA as the IKE side tracks it.
pub(crate) struct ChildSa {
    pub id: ChildSaId,
    pub inbound_spi: Spi,
    pub outbound_spi: Spi,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub transport: bool,
    pub state: ChildState,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// The peer rekeyed this SA while our own rekey of it was in flight: the Child SA
    /// it created and the lowest nonce of its exchange (RFC 7296 §2.8.1).
    pub peer_rekey: Option<(ChildSaId, Vec<u8>)>,
}

/// Where a Child SA is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildState {
    Installed,
    /// Our rekey of it is in flight.
    Rekeying,
    /// Replaced; waiting to be deleted (by us or the peer).
    Rekeyed,
    /// Our Delete is in flight.
    Deleting,
}

/// Derives the keys of a Child SA and builds what the data plane gets.
pub(crate) fn build_child(
    cx: &Shared,
    now: Instant,
    path: Path,
    nat: NatState,
    i: ChildInput<'_>,
) -> Result<(ChildSa, Event), Error> {
    let k = keys::child_keys(
        i.crypto.prf,
        i.crypto.sk_d.expose(),
        &i.chosen,
        i.g_ir,
        i.ni,
        i.nr,
    )?;
    let (inbound_keys, outbound_keys) = if i.we_initiated {
        (k.r_to_i, k.i_to_r)
    } else {
        (k.i_to_r, k.r_to_i)
    };
    let (local_ts, remote_ts) = if i.we_initiated {
        (i.tsi, i.tsr)
    } else {
        (i.tsr, i.tsi)
    };
    let cfg = &cx.config;
    let (rekey_at, expire_at, lifetime) = match cfg.child_rekey {
        Some(d) => {
            let hard = d.saturating_add(d / 10);
            (
                Some(now + cx.jitter(d)),
                Some(now + hard),
                Lifetime {
                    soft: LifetimeLimits::UNLIMITED,
                    hard: LifetimeLimits {
                        bytes: None,
                        packets: None,
                        time: Some(hard),
                    },
                },
            )
        }
        None => (None, None, Lifetime::UNLIMITED),
    };
    let params = ChildSaParams {
        protocol: SecurityProtocol::Esp,
        mode: if i.transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        },
        inbound_spi: i.our_spi,
        outbound_spi: i.peer_spi,
        encr: Some(i.chosen.encr.id),
        encr_key_bits: if i.chosen.encr.key_len_attr {
            i.chosen.encr.key_bits
        } else {
            0
        },
        integ: i
            .chosen
            .integ
            .map_or(ipsec_core::iana::IntegId::NONE, |x| x.id),
        ke: i.chosen.ke.map_or(KeId::NONE, |x| x.id),
        esn: i.chosen.esn,
        inbound_keys,
        outbound_keys,
        local_addr: path.local.ip(),
        remote_addr: path.remote.ip(),
        local_ts: ts_set(&local_ts),
        remote_ts: ts_set(&remote_ts),
        udp_encap: nat.any().then_some(UdpEncap {
            local_port: path.local.port(),
            remote_port: path.remote.port(),
        }),
        lifetime,
        replay_window: cfg.replay_window,
    };
    let child = ChildSa {
        id: i.id,
        inbound_spi: i.our_spi,
        outbound_spi: i.peer_spi,
        local_ts,
        remote_ts,
        transport: i.transport,
        state: ChildState::Installed,
        rekey_at,
        expire_at,
        peer_rekey: None,
    };
    let suite = i.chosen.suite(ProposalKind::Esp);
    Ok((
        child,
        Event::ChildSaInstalled {
            id: i.id,
            params,
            suite,
        },
    ))
}

/// A Child SA created as the responder, its event and the payloads of the answer.
pub(crate) type ChildAnswer = (ChildSa, Event, Vec<Out>);
/// The error notification (with its data) refusing a Child SA.
pub(crate) type ChildReject = (NotifyType, Vec<u8>);

/// The SPI in a 4-byte proposal or notify SPI field.
pub(crate) fn spi4(b: &[u8]) -> Option<Spi> {
    <[u8; 4]>::try_from(b).ok().map(Spi::from_be_bytes)
}

/// The peer's SPI for a Child SA: four bytes and not reserved (0..=255, RFC 4303
/// §2.1, RFC 4302 §2.4). A zero SPI sent as ESP-in-UDP would even read as the non-ESP
/// marker (RFC 3948 §2.2).
pub(crate) fn peer_child_spi(b: &[u8]) -> Option<Spi> {
    spi4(b).filter(|s| !s.is_reserved())
}

impl IkeSa {
    /// Starts an initiator.
    pub(crate) fn connect(
        cx: &mut Shared,
        handle: SaHandle,
        now: Instant,
        path: Path,
    ) -> Result<IkeSa, Error> {
        let offer = proposal::offer(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            cx.provider,
            &[],
            true,
        );
        let group = proposal::first_group(&offer).ok_or(ApiMisuse::NoUsableProposal)?;
        let kx = cx
            .provider
            .kx(group)
            .ok_or(ApiMisuse::NoUsableProposal)?
            .start(cx.provider.secure_random)?;
        let nonce = keys::random(cx.provider, NONCE_LEN)?;
        let spi_i = cx.new_ike_spi(handle)?;
        let s = ExpectSaInitResp {
            spi_i,
            offer,
            kx,
            nonce,
            cookie: None,
            puzzle_solution: None,
            request: Vec::new(),
            sent: 0,
            deadline: now,
            restarts: 0,
            child_id: cx.child_id(),
            unauth_error: None,
        };
        let mut sa = IkeSa {
            handle,
            path,
            nat: NatState::default(),
            state: State::InitSent(Box::new(s)),
            my_spis: alloc::vec![spi_i],
        };
        if let State::InitSent(s) = &mut sa.state {
            Self::send_init(cx, now, path, s);
        }
        Ok(sa)
    }

    fn send_init(cx: &mut Shared, now: Instant, path: Path, s: &mut ExpectSaInitResp) {
        let h = msg::header(
            s.spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            true,
            false,
            0,
        );
        let mut out = Vec::new();
        if let Some(c) = &s.cookie {
            out.push(Out::notify(NotifyType::COOKIE, c));
        }
        if let Some(ps) = &s.puzzle_solution {
            out.push(Out::Raw(PayloadType::PS, ps.clone()));
        }
        out.push(Out::Sa(s.offer.clone()));
        out.push(Out::Ke(s.kx.group(), s.kx.public().to_vec()));
        out.push(Out::Nonce(s.nonce.clone()));
        out.extend(nat_notifies(cx, s.spi_i, IkeSpi::ZERO, path));
        if cx.config.fragment_mtu.is_some() {
            out.push(Out::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
        }
        s.request = msg::plain(h, &out);
        cx.send(path, &s.request);
        s.sent = 1;
        s.deadline = now + cx.config.retransmit.wait(0);
    }

    /// Whether this is a responder SA waiting for IKE_AUTH.
    pub(crate) fn is_half_open(&self) -> bool {
        matches!(self.state, State::InitReplied(_))
    }

    /// Whether the IKE SA is established.
    pub(crate) fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Whether the endpoint can forget this SA.
    pub(crate) fn is_gone(&self, now: Instant) -> bool {
        match &self.state {
            State::Closed(c) => now >= c.until,
            State::Gone => true,
            _ => false,
        }
    }

    /// The installed Child SAs.
    pub(crate) fn child_ids(&self) -> Vec<ChildSaId> {
        match &self.state {
            State::Established(e) => e.children.iter().map(|c| c.id).collect(),
            _ => Vec::new(),
        }
    }

    /// Unregisters every SPI.
    pub(crate) fn release(self, cx: &mut Shared) {
        for s in &self.my_spis {
            if cx.spis.get(s) == Some(&self.handle) {
                cx.spis.remove(s);
            }
        }
        if let State::Established(e) = &self.state {
            for c in &e.children {
                cx.child_spis.remove(&c.inbound_spi.0);
            }
        }
    }

    /// The earliest timer.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::InitSent(s) => Some(s.deadline),
            State::AuthSent(s) => s.session.poll_timeout(),
            State::InitReplied(s) => Some(s.deadline),
            State::Established(e) => e.poll_timeout(),
            State::Closed(c) => Some(c.until),
            State::Gone => None,
        }
    }

    /// Ends the SA: reports its Child SAs deleted, then the SA closed, and lingers to
    /// answer retransmissions.
    pub(crate) fn close_with(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        reason: Option<CloseReason>,
    ) {
        let state = mem::replace(&mut self.state, State::Gone);
        let (session, children) = match state {
            State::Established(e) => {
                let e = *e;
                (Some(e.current), e.children)
            }
            State::AuthSent(s) => {
                cx.child_spis.remove(&s.child.spi.0);
                (Some(s.session), Vec::new())
            }
            State::InitReplied(s) => (Some(s.session), Vec::new()),
            State::Closed(c) => {
                self.state = State::Closed(c);
                return;
            }
            State::InitSent(_) | State::Gone => (None, Vec::new()),
        };
        for c in children {
            cx.child_spis.remove(&c.inbound_spi.0);
            cx.event(
                self.handle,
                Event::ChildSaDeleted {
                    id: c.id,
                    inbound_spi: c.inbound_spi,
                    outbound_spi: c.outbound_spi,
                },
            );
        }
        if let Some(reason) = reason {
            cx.event(self.handle, Event::IkeSaClosed { reason });
        }
        let linger = if session.as_ref().is_some_and(|s| s.cached.is_some()) {
            now + cx.config.retransmit.total()
        } else {
            now
        };
        self.state = State::Closed(Box::new(Closed {
            session,
            until: linger,
        }));
    }

    /// A datagram for this SA.
    pub(crate) fn handle_datagram(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
    ) {
        let state = mem::replace(&mut self.state, State::Gone);
        match state {
            State::InitSent(s) => self.init_sent(cx, now, path, bytes, h, s),
            State::InitReplied(mut s) => {
                if h.exchange_type == ExchangeType::IKE_SA_INIT && !h.flags.is_response() {
                    // A retransmitted IKE_SA_INIT: the same response again.
                    if h.message_id == 0 && bytes == s.init_request.as_slice() {
                        cx.send(path, &s.init_response);
                    }
                    self.state = State::InitReplied(s);
                    return;
                }
                match s.session.receive(cx, now, path, bytes, h) {
                    Received::Request(rh, m) if rh.exchange_type == ExchangeType::IKE_AUTH => {
                        self.auth_request(cx, now, path, s, &rh, &m);
                    }
                    _ => self.state = State::InitReplied(s),
                }
            }
            State::AuthSent(mut s) => match s.session.receive(cx, now, path, bytes, h) {
                Received::Response(m) => {
                    s.session.out = None;
                    self.auth_response(cx, now, s, &m);
                }
                _ => self.state = State::AuthSent(s),
            },
            State::Established(mut e) => {
                let flow = self.est_datagram(&mut e, cx, now, path, bytes, h);
                self.state = State::Established(e);
                if let Flow::Close(r) = flow {
                    self.close_with(cx, now, Some(r));
                }
            }
            State::Closed(mut c) => {
                if let Some(s) = c.session.as_mut() {
                    // Only retransmissions get an answer (from the cache).
                    let _ = s.receive(cx, now, path, bytes, h);
                }
                self.state = State::Closed(c);
            }
            State::Gone => {}
        }
    }

    /// Timers.
    pub(crate) fn handle_timeout(&mut self, cx: &mut Shared, now: Instant) {
        let state = mem::replace(&mut self.state, State::Gone);
        match state {
            State::InitSent(mut s) => {
                if now >= s.deadline {
                    if s.sent >= cx.config.retransmit.max_tries.max(1) {
                        // An unauthenticated error we kept waiting past says more
                        // than "timeout" (RFC 7296 §2.21.2).
                        let reason = s.unauth_error.unwrap_or(CloseReason::Timeout);
                        self.state = State::InitSent(s);
                        self.close_with(cx, now, Some(reason));
                        return;
                    }
                    cx.send(self.path, &s.request);
                    s.deadline = now + cx.config.retransmit.wait(s.sent);
                    s.sent = s.sent.saturating_add(1);
                }
                self.state = State::InitSent(s);
            }
            State::AuthSent(mut s) => {
                let r = s.session.on_timeout(cx, now, self.path);
                self.state = State::AuthSent(s);
                if r.is_err() {
                    self.close_with(cx, now, Some(CloseReason::Timeout));
                }
            }
            State::InitReplied(s) => {
                self.state = State::InitReplied(s);
                if self.poll_timeout().is_some_and(|t| now >= t) {
                    // Half-open for too long: forget it without telling anyone.
                    self.close_with(cx, now, None);
                }
            }
            State::Established(mut e) => {
                let flow = self.est_timeout(&mut e, cx, now);
                self.state = State::Established(e);
                if let Flow::Close(r) = flow {
                    self.close_with(cx, now, Some(r));
                }
            }
            other => self.state = other,
        }
    }

    // ---- initiator: IKE_SA_INIT ---------------------------------------------------

    fn init_sent(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        mut s: Box<ExpectSaInitResp>,
    ) {
        let relevant = h.exchange_type == ExchangeType::IKE_SA_INIT
            && h.flags.is_response()
            && !h.flags.is_initiator()
            && h.message_id == 0
            && h.spi_i == s.spi_i;
        let parsed = IkePacket::parse(bytes).ok().and_then(|p| {
            InMsg::parse(p.next_payload(), bytes.get(HEADER_LEN..).unwrap_or(&[])).ok()
        });
        let (true, Some(m)) = (relevant, parsed) else {
            self.state = State::InitSent(s);
            return;
        };
        if m.sa.is_none() {
            if let Some(c) = m.notify(NotifyType::COOKIE) {
                if s.restarts < 4 && !c.data.is_empty() && c.data.len() <= 64 {
                    s.restarts += 1;
                    s.cookie = Some(c.data.clone());
                    // A puzzle with it (RFC 8019 §7.1.2): solve it if we can and it is
                    // not harder than we accept; otherwise retry with the cookie only,
                    // as an initiator without puzzle support would.
                    s.puzzle_solution = m
                        .notify(NotifyType::PUZZLE)
                        .and_then(|p| puzzle::parse(&p.data))
                        .and_then(|(prf, difficulty)| {
                            puzzle::solve(
                                cx.provider,
                                prf,
                                difficulty,
                                cx.config.max_puzzle_difficulty,
                                &c.data,
                            )
                        });
                    Self::send_init(cx, now, self.path, &mut s);
                }
                self.state = State::InitSent(s);
                return;
            }
            if let Some(n) = m.notify(NotifyType::INVALID_KE_PAYLOAD) {
                let group = n
                    .data
                    .get(..2)
                    .and_then(|b| <[u8; 2]>::try_from(b).ok())
                    .map(|b| KeId(u16::from_be_bytes(b)));
                let retry = group.filter(|g| {
                    *g != s.kx.group() && proposal::offer_has_group(&s.offer, *g) && s.restarts < 4
                });
                match retry
                    .and_then(|g| cx.provider.kx(g))
                    .map(|k| k.start(cx.provider.secure_random))
                {
                    Some(Ok(kx)) => {
                        s.restarts += 1;
                        s.kx = kx;
                        Self::send_init(cx, now, self.path, &mut s);
                    }
                    // A group we cannot use (or one retry too many): unauthenticated,
                    // so only remembered (RFC 7296 §2.21.2).
                    _ => s.unauth_error = Some(CloseReason::NoProposalChosen),
                }
                self.state = State::InitSent(s);
                return;
            }
            if let Some(n) = m.error_notify() {
                // RFC 7296 §2.21.2: an unprotected error may be forged; keep waiting
                // for a valid response until the retransmissions run out, and report
                // the error then.
                s.unauth_error = Some(CloseReason::from_error(Error::NotifyReceived(n)));
                self.state = State::InitSent(s);
                return;
            }
        }
        if h.spi_r.is_zero() {
            self.state = State::InitSent(s);
            return;
        }
        let _ = path;
        if let Err(e) = Self::check_init_response(&s, &m) {
            // Equally unauthenticated: a forged answer must not end the handshake.
            s.unauth_error = Some(CloseReason::from_error(e));
            self.state = State::InitSent(s);
            return;
        }
        match self.finish_init(cx, now, bytes, h, *s, &m) {
            Ok(()) => {}
            Err(e) => {
                // `finish_init` put nothing back: close from a bare state.
                self.state = State::Gone;
                cx.event(
                    self.handle,
                    Event::IkeSaClosed {
                        reason: CloseReason::from_error(e),
                    },
                );
                self.state = State::Closed(Box::new(Closed {
                    session: None,
                    until: now,
                }));
            }
        }
    }

    /// The checks of an IKE_SA_INIT response that need no key exchange, so a response
    /// failing them leaves the handshake waiting for a better one.
    fn check_init_response(s: &ExpectSaInitResp, m: &InMsg) -> Result<(), Error> {
        let sa = m.sa.as_ref().ok_or(PeerMisbehaved::MissingPayload("SA"))?;
        let (_, chosen) = proposal::accept_answer(&s.offer, ProposalKind::Ike, sa, true)
            .ok_or(PeerMisbehaved::BadProposal)?;
        let (group, _) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
        if chosen.ke.map(|k| k.id) != Some(*group) || *group != s.kx.group() {
            return Err(PeerMisbehaved::BadKeyExchange.into());
        }
        if m.nonce.is_none() {
            return Err(PeerMisbehaved::MissingPayload("Nonce").into());
        }
        if chosen.prf.is_none() {
            return Err(PeerMisbehaved::BadProposal.into());
        }
        Ok(())
    }

    fn finish_init(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        s: ExpectSaInitResp,
        m: &InMsg,
    ) -> Result<(), Error> {
        let sa = m.sa.as_ref().ok_or(PeerMisbehaved::MissingPayload("SA"))?;
        let (_, chosen) = proposal::accept_answer(&s.offer, ProposalKind::Ike, sa, true)
            .ok_or(PeerMisbehaved::BadProposal)?;
        let (group, ke) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
        if chosen.ke.map(|k| k.id) != Some(*group) || *group != s.kx.group() {
            return Err(PeerMisbehaved::BadKeyExchange.into());
        }
        let nr = m
            .nonce
            .clone()
            .ok_or(PeerMisbehaved::MissingPayload("Nonce"))?;
        let g_ir =
            s.kx.complete(ke)
                .map_err(|_| PeerMisbehaved::BadKeyExchange)?;
        let prf_desc = chosen.prf.ok_or(PeerMisbehaved::BadProposal)?;
        let prf = cx
            .provider
            .prf(prf_desc.id)
            .ok_or(CryptoError::Unsupported)?;
        let skeyseed = kdf::skeyseed(prf, &s.nonce, &nr, g_ir.expose())?;
        let spi_r = h.spi_r;
        let mut crypto = IkeCrypto::derive(cx, chosen, &skeyseed, &s.nonce, &nr, s.spi_i, spi_r)?;
        crypto.export_keys(cx, self.handle);
        self.nat = detect_nat(cx, m, s.spi_i, spi_r, self.path);
        let frag = cx
            .config
            .fragment_mtu
            .filter(|_| m.has(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        if self.nat.any() && !self.path.encap() {
            // RFC 7296 §2.23: move to port 4500 from IKE_AUTH on.
            self.path.local.set_port(NAT_T_PORT);
            self.path.remote.set_port(NAT_T_PORT);
        }
        let mut session = Session::new(s.spi_i, spi_r, true, crypto, frag);
        session.next_id = 1;
        let child_spi = cx.new_child_spi()?;
        let child_offer = proposal::offer(
            &cx.config.esp_proposals,
            ProposalKind::Esp,
            cx.provider,
            &child_spi.to_be_bytes(),
            false,
        );
        let transport = cx.config.mode == Mode::Transport;
        let child = ChildReq {
            id: s.child_id,
            rekey: None,
            spi: child_spi,
            nonce: s.nonce.clone(),
            kx: None,
            offer: child_offer,
            tsi: cx.config.local_ts.clone(),
            tsr: cx.config.remote_ts.clone(),
            transport,
        };
        let idi = id_body(&cx.config.local_id);
        let auth = keys::psk_auth(
            prf,
            cx.config.psk.expose(),
            &s.request,
            &nr,
            session.crypto.sk_pi.expose(),
            &idi,
        )?;
        let mut out = alloc::vec![
            Out::IdI(cx.config.local_id.id_type(), cx.config.local_id.data()),
            Out::Auth(AuthMethod::SHARED_KEY_MIC, auth.expose().to_vec()),
            Out::notify(NotifyType::INITIAL_CONTACT, &[]),
        ];
        if transport {
            out.push(Out::notify(NotifyType::USE_TRANSPORT_MODE, &[]));
        }
        if !child.offer.is_empty() {
            out.push(Out::Sa(child.offer.clone()));
            out.push(Out::TsI(child.tsi.clone()));
            out.push(Out::TsR(child.tsr.clone()));
        }
        session.request(
            cx,
            now,
            self.path,
            ExchangeType::IKE_AUTH,
            &out,
            Inflight::Auth,
        )?;
        self.state = State::AuthSent(Box::new(ExpectAuthResp {
            session,
            init_response: bytes.to_vec(),
            ni: s.nonce,
            nr,
            child,
        }));
        Ok(())
    }

    // ---- initiator: IKE_AUTH ------------------------------------------------------

    fn auth_response(&mut self, cx: &mut Shared, now: Instant, s: Box<ExpectAuthResp>, m: &InMsg) {
        let s = *s;
        let checked = (|| -> Result<(), Error> {
            let Some((method, data)) = &m.auth else {
                return Err(match m.error_notify() {
                    Some(n) => Error::NotifyReceived(n),
                    None => PeerMisbehaved::MissingPayload("AUTH").into(),
                });
            };
            let (idt, idd, body) = m
                .idr
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("IDr"))?;
            if let Some(want) = &cx.config.remote_id {
                if Identity::from_wire(*idt, idd).as_ref() != Some(want) {
                    return Err(Error::AuthenticationFailed);
                }
            }
            if *method != AuthMethod::SHARED_KEY_MIC {
                return Err(Error::AuthenticationFailed);
            }
            let want = keys::psk_auth(
                s.session.crypto.prf,
                cx.config.psk.expose(),
                &s.init_response,
                &s.ni,
                s.session.crypto.sk_pr.expose(),
                body,
            )?;
            if want != ipsec_crypto::SecretBytes::from_slice(data) {
                return Err(Error::AuthenticationFailed);
            }
            Ok(())
        })();
        if let Err(e) = checked {
            cx.child_spis.remove(&s.child.spi.0);
            self.state = State::Closed(Box::new(Closed {
                session: Some(s.session),
                until: now,
            }));
            cx.event(
                self.handle,
                Event::IkeSaClosed {
                    reason: CloseReason::from_error(e),
                },
            );
            return;
        }
        let ExpectAuthResp {
            session,
            ni,
            nr,
            child,
            ..
        } = s;
        cx.event(
            self.handle,
            Event::IkeSaEstablished {
                local_spi: session.local_spi(),
                remote_spi: session.remote_spi(),
                suite: session.crypto.chosen.suite(ProposalKind::Ike),
                nat: self.nat,
            },
        );
        let mut e = Established::new(cx, now, session, self.nat);
        let id = child.id;
        let spi = child.spi;
        match self.child_response(cx, now, &e.current.crypto, child, &ni, Some(&nr), m) {
            Ok((c, ev)) => {
                cx.event(self.handle, ev);
                e.children.push(c);
            }
            Err(err) => {
                cx.child_spis.remove(&spi.0);
                cx.event(self.handle, Event::ChildSaFailed { id, error: err });
            }
        }
        self.state = State::Established(Box::new(e));
    }

    /// Checks the answer to a Child SA request of ours and builds the Child SA.
    #[allow(clippy::too_many_arguments)]
    /// `init_nr` is the IKE_SA_INIT nonce for the first Child SA (IKE_AUTH has none).
    pub(crate) fn child_response(
        &self,
        cx: &Shared,
        now: Instant,
        crypto: &IkeCrypto,
        req: ChildReq,
        ni: &[u8],
        init_nr: Option<&[u8]>,
        m: &InMsg,
    ) -> Result<(ChildSa, Event), Error> {
        let Some(sa) = &m.sa else {
            return Err(match m.error_notify() {
                Some(n) => Error::NotifyReceived(n),
                None => PeerMisbehaved::MissingPayload("SA").into(),
            });
        };
        let with_ke = req.kx.is_some();
        let (peer_spi, chosen) =
            proposal::accept_answer(&req.offer, ProposalKind::Esp, sa, with_ke)
                .ok_or(PeerMisbehaved::BadProposal)?;
        let peer_spi = peer_child_spi(&peer_spi).ok_or(PeerMisbehaved::BadSpi)?;
        let nr: &[u8] = match init_nr {
            Some(n) => n,
            None => m
                .nonce
                .as_deref()
                .ok_or(PeerMisbehaved::MissingPayload("Nonce"))?,
        };
        let g_ir = match (chosen.ke, req.kx) {
            (Some(k), Some(kx)) => {
                let (g, data) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
                if *g != k.id || kx.group() != k.id {
                    return Err(PeerMisbehaved::BadKeyExchange.into());
                }
                Some(
                    kx.complete(data)
                        .map_err(|_| PeerMisbehaved::BadKeyExchange)?,
                )
            }
            (None, _) => None,
            (Some(_), None) => return Err(PeerMisbehaved::BadProposal.into()),
        };
        let tsi = m.tsi.clone().ok_or(PeerMisbehaved::MissingPayload("TSi"))?;
        let tsr = m.tsr.clone().ok_or(PeerMisbehaved::MissingPayload("TSr"))?;
        if !within(&tsi, &req.tsi) || !within(&tsr, &req.tsr) {
            return Err(PeerMisbehaved::BadTrafficSelectors.into());
        }
        if m.has(NotifyType::USE_TRANSPORT_MODE) != req.transport {
            return Err(PeerIncompatible::NoProposalChosen.into());
        }
        build_child(
            cx,
            now,
            self.path,
            self.nat,
            ChildInput {
                crypto,
                chosen,
                g_ir: g_ir.as_ref().map(|g| g.expose()),
                ni,
                nr,
                we_initiated: true,
                id: req.id,
                our_spi: req.spi,
                peer_spi,
                tsi,
                tsr,
                transport: req.transport,
            },
        )
    }

    // ---- responder: IKE_SA_INIT ---------------------------------------------------

    /// Answers a new IKE_SA_INIT request (cookies are checked by the endpoint).
    pub(crate) fn respond_init(
        cx: &mut Shared,
        handle: SaHandle,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        m: InMsg,
    ) -> NewResponder {
        let (Some(sa), Some((group, ke)), Some(ni)) = (&m.sa, &m.ke, &m.nonce) else {
            return NewResponder::Reject(NotifyType::INVALID_SYNTAX, Vec::new());
        };
        let Some((num, _, chosen)) = proposal::choose(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            sa,
            cx.provider,
            KeMode::Required { hint: Some(*group) },
        ) else {
            return NewResponder::Reject(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
        };
        let Some(ke_desc) = chosen.ke else {
            return NewResponder::Drop;
        };
        if ke_desc.id != *group {
            // RFC 7296 §1.3: the group we want.
            return NewResponder::Reject(
                NotifyType::INVALID_KE_PAYLOAD,
                ke_desc.id.0.to_be_bytes().to_vec(),
            );
        }
        let Some(kx) = cx.provider.kx(*group) else {
            return NewResponder::Drop;
        };
        let Ok((public, g_ir)) = kx.respond(cx.provider.secure_random, ke) else {
            return NewResponder::Reject(NotifyType::INVALID_SYNTAX, Vec::new());
        };
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            return NewResponder::Drop;
        };
        let Some(prf) = chosen.prf.and_then(|p| cx.provider.prf(p.id)) else {
            return NewResponder::Drop;
        };
        let Ok(skeyseed) = kdf::skeyseed(prf, ni, &nr, g_ir.expose()) else {
            return NewResponder::Drop;
        };
        let Ok(spi_r) = cx.new_ike_spi(handle) else {
            return NewResponder::Drop;
        };
        let mut crypto = match IkeCrypto::derive(cx, chosen, &skeyseed, ni, &nr, h.spi_i, spi_r) {
            Ok(c) => c,
            Err(_) => {
                cx.spis.remove(&spi_r);
                return NewResponder::Drop;
            }
        };
        // The request's NAT-D hashes use a zero responder SPI.
        let nat = detect_nat(cx, &m, h.spi_i, IkeSpi::ZERO, path);
        let peer_frag = m.has(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED);
        let frag = cx.config.fragment_mtu.filter(|_| peer_frag);
        let header = msg::header(h.spi_i, spi_r, ExchangeType::IKE_SA_INIT, false, true, 0);
        let mut out = alloc::vec![
            Out::Sa(alloc::vec![chosen.answer(
                ProposalKind::Ike,
                num,
                Vec::new()
            )]),
            Out::Ke(*group, public),
            Out::Nonce(nr.clone()),
        ];
        out.extend(nat_notifies(cx, h.spi_i, spi_r, path));
        if frag.is_some() {
            out.push(Out::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
        }
        let response = msg::plain(header, &out);
        cx.send(path, &response);
        crypto.export_keys(cx, handle);
        let mut session = Session::new(h.spi_i, spi_r, false, crypto, frag);
        session.cached = Some(Cached {
            id: 0,
            datagrams: alloc::vec![response.clone()],
        });
        session.expect_id = 1;
        let s = ExpectAuthReq {
            session,
            init_request: bytes.to_vec(),
            init_response: response,
            ni: ni.clone(),
            nr,
            deadline: now + cx.config.half_open_timeout,
            child_id: cx.child_id(),
        };
        NewResponder::Created(Box::new(IkeSa {
            handle,
            path,
            nat,
            state: State::InitReplied(Box::new(s)),
            my_spis: alloc::vec![spi_r],
        }))
    }

    // ---- responder: IKE_AUTH ------------------------------------------------------

    fn auth_request(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        mut s: Box<ExpectAuthReq>,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) {
        let verified = (|| -> Result<Vec<u8>, Error> {
            let (idt, idd, body) = m
                .idi
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("IDi"))?;
            let (method, data) = m
                .auth
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("AUTH"))?;
            if *method != AuthMethod::SHARED_KEY_MIC {
                return Err(Error::AuthenticationFailed);
            }
            if let Some(want) = &cx.config.remote_id {
                if Identity::from_wire(*idt, idd).as_ref() != Some(want) {
                    return Err(Error::AuthenticationFailed);
                }
            }
            let want = keys::psk_auth(
                s.session.crypto.prf,
                cx.config.psk.expose(),
                &s.init_request,
                &s.nr,
                s.session.crypto.sk_pi.expose(),
                body,
            )?;
            if want != ipsec_crypto::SecretBytes::from_slice(data) {
                return Err(Error::AuthenticationFailed);
            }
            let idr = id_body(&cx.config.local_id);
            let mine = keys::psk_auth(
                s.session.crypto.prf,
                cx.config.psk.expose(),
                &s.init_response,
                &s.ni,
                s.session.crypto.sk_pr.expose(),
                &idr,
            )?;
            Ok(mine.expose().to_vec())
        })();
        let auth = match verified {
            Ok(a) => a,
            Err(e) => {
                // RFC 7296 §2.21.2: the answer is AUTHENTICATION_FAILED and the SA ends.
                let n = match e {
                    Error::PeerMisbehaved(PeerMisbehaved::MissingPayload(_)) => {
                        NotifyType::INVALID_SYNTAX
                    }
                    _ => NotifyType::AUTHENTICATION_FAILED,
                };
                s.session.respond_error(cx, path, h, n);
                self.state = State::InitReplied(s);
                self.close_with(cx, now, Some(CloseReason::AuthenticationFailed));
                return;
            }
        };
        // The initiator may have moved to port 4500: answer and keep using its path.
        self.path = path;
        let mut out = alloc::vec![
            Out::IdR(cx.config.local_id.id_type(), cx.config.local_id.data()),
            Out::Auth(AuthMethod::SHARED_KEY_MIC, auth),
        ];
        let ExpectAuthReq {
            mut session,
            ni,
            nr,
            child_id,
            ..
        } = *s;
        let child = if m.sa.is_some() {
            Some(self.child_request_as_responder(
                cx,
                now,
                &session.crypto,
                m,
                child_id,
                None,
                &ni,
                &nr,
            ))
        } else {
            None
        };
        match &child {
            Some(Ok((_, _, answer))) => out.extend(answer.iter().cloned()),
            Some(Err((n, d))) => out.push(Out::notify(*n, d)),
            None => {}
        }
        session.respond(cx, path, h, &out);
        cx.event(
            self.handle,
            Event::IkeSaEstablished {
                local_spi: session.local_spi(),
                remote_spi: session.remote_spi(),
                suite: session.crypto.chosen.suite(ProposalKind::Ike),
                nat: self.nat,
            },
        );
        let mut e = Established::new(cx, now, session, self.nat);
        match child {
            Some(Ok((c, ev, _))) => {
                cx.event(self.handle, ev);
                e.children.push(c);
            }
            Some(Err((n, _))) => cx.event(
                self.handle,
                Event::ChildSaFailed {
                    id: child_id,
                    error: Error::NotifyReceived(n),
                },
            ),
            None => {}
        }
        self.state = State::Established(Box::new(e));
    }

    /// The responder's side of a Child SA request (IKE_AUTH: `ke` ignored and the
    /// IKE_SA_INIT nonces given; CREATE_CHILD_SA: the exchange's nonces and KE).
    /// Returns the Child SA, its event, and the payloads of the answer; or the error
    /// notification to send.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child_request_as_responder(
        &self,
        cx: &mut Shared,
        now: Instant,
        crypto: &IkeCrypto,
        m: &InMsg,
        id: ChildSaId,
        ke: Option<(KeId, &[u8])>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<ChildAnswer, ChildReject> {
        let e = |n: NotifyType| (n, Vec::new());
        let sa = m.sa.as_ref().ok_or(e(NotifyType::INVALID_SYNTAX))?;
        let mode = match ke {
            None if m.ke.is_none() && m.nonce.is_none() => KeMode::Ignore,
            _ => KeMode::Optional {
                hint: ke.map(|k| k.0),
            },
        };
        let (num, peer_spi, chosen) = proposal::choose(
            &cx.config.esp_proposals,
            ProposalKind::Esp,
            sa,
            cx.provider,
            mode,
        )
        .ok_or(e(NotifyType::NO_PROPOSAL_CHOSEN))?;
        let peer_spi = peer_child_spi(&peer_spi).ok_or(e(NotifyType::INVALID_SYNTAX))?;
        let (tsi, tsr) = match (&m.tsi, &m.tsr) {
            (Some(i), Some(r)) => (
                narrow(i, &cx.config.remote_ts),
                narrow(r, &cx.config.local_ts),
            ),
            _ => return Err(e(NotifyType::INVALID_SYNTAX)),
        };
        if tsi.is_empty() || tsr.is_empty() {
            return Err(e(NotifyType::TS_UNACCEPTABLE));
        }
        let transport = m.has(NotifyType::USE_TRANSPORT_MODE);
        if transport != (cx.config.mode == Mode::Transport) {
            return Err(e(NotifyType::NO_PROPOSAL_CHOSEN));
        }
        // PFS: the KE payload must be for the chosen group.
        let mut ke_out = None;
        let g_ir = match chosen.ke {
            Some(k) => match ke {
                Some((g, data)) if g == k.id => {
                    let kx = cx.provider.kx(g).ok_or(e(NotifyType::NO_PROPOSAL_CHOSEN))?;
                    let (public, secret) = kx
                        .respond(cx.provider.secure_random, data)
                        .map_err(|_| e(NotifyType::INVALID_SYNTAX))?;
                    ke_out = Some(Out::Ke(g, public));
                    Some(secret)
                }
                _ => {
                    return Err((
                        NotifyType::INVALID_KE_PAYLOAD,
                        k.id.0.to_be_bytes().to_vec(),
                    ))
                }
            },
            None => None,
        };
        let our_spi = cx
            .new_child_spi()
            .map_err(|_| e(NotifyType::TEMPORARY_FAILURE))?;
        let built = build_child(
            cx,
            now,
            self.path,
            self.nat,
            ChildInput {
                crypto,
                chosen,
                g_ir: g_ir.as_ref().map(|g| g.expose()),
                ni,
                nr,
                we_initiated: false,
                id,
                our_spi,
                peer_spi,
                tsi: tsi.clone(),
                tsr: tsr.clone(),
                transport,
            },
        );
        let (child, ev) = match built {
            Ok(x) => x,
            Err(_) => {
                cx.child_spis.remove(&our_spi.0);
                return Err(e(NotifyType::NO_PROPOSAL_CHOSEN));
            }
        };
        let mut out = alloc::vec![Out::Sa(alloc::vec![chosen.answer(
            ProposalKind::Esp,
            num,
            our_spi.to_be_bytes().to_vec()
        )])];
        if m.nonce.is_some() {
            out.push(Out::Nonce(nr.to_vec()));
        }
        out.extend(ke_out);
        out.push(Out::TsI(tsi));
        out.push(Out::TsR(tsr));
        if transport {
            out.push(Out::notify(NotifyType::USE_TRANSPORT_MODE, &[]));
        }
        Ok((child, ev, out))
    }

    // ---- commands -------------------------------------------------------------------

    fn established(&mut self) -> Result<&mut Established, Error> {
        match &mut self.state {
            State::Established(e) => Ok(e),
            _ => Err(ApiMisuse::NotEstablished.into()),
        }
    }

    /// Runs `f` on the established state, then starts the next queued exchange.
    fn command<R>(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        f: impl FnOnce(&mut Established, &mut Shared) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let e = self.established()?;
        if e.deleting {
            return Err(ApiMisuse::NotEstablished.into());
        }
        let r = f(e, cx)?;
        let state = mem::replace(&mut self.state, State::Gone);
        if let State::Established(mut e) = state {
            self.kick(&mut e, cx, now);
            self.state = State::Established(e);
        } else {
            self.state = state;
        }
        Ok(r)
    }

    pub(crate) fn create_child(
        &mut self,
        cx: &mut Shared,
        now: Instant,
    ) -> Result<ChildSaId, Error> {
        self.command(cx, now, |e, cx| {
            let id = cx.child_id();
            e.queue.push_back(Pending::CreateChild {
                id,
                rekey: None,
                group: None,
            });
            Ok(id)
        })
    }

    pub(crate) fn rekey_child(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        child: ChildSaId,
    ) -> Result<(), Error> {
        self.command(cx, now, |e, cx| {
            let c = e
                .children
                .iter()
                .find(|c| c.id == child)
                .ok_or(ApiMisuse::UnknownChildSa)?;
            if c.state == ChildState::Installed && !e.queued_rekey(child) {
                let id = cx.child_id();
                e.queue.push_back(Pending::CreateChild {
                    id,
                    rekey: Some(child),
                    group: None,
                });
            }
            Ok(())
        })
    }

    pub(crate) fn delete_child(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        child: ChildSaId,
    ) -> Result<(), Error> {
        self.command(cx, now, |e, _| {
            e.children
                .iter()
                .find(|c| c.id == child)
                .ok_or(ApiMisuse::UnknownChildSa)?;
            e.queue.push_back(Pending::DeleteChild(child));
            Ok(())
        })
    }

    pub(crate) fn rekey_ike(&mut self, cx: &mut Shared, now: Instant) -> Result<(), Error> {
        self.command(cx, now, |e, _| {
            if !e.rekeying_ike
                && !e
                    .queue
                    .iter()
                    .any(|p| matches!(p, Pending::RekeyIke { .. }))
            {
                e.queue.push_back(Pending::RekeyIke { group: None });
            }
            Ok(())
        })
    }

    pub(crate) fn check_liveness(&mut self, cx: &mut Shared, now: Instant) -> Result<(), Error> {
        self.command(cx, now, |e, _| {
            e.queue.push_back(Pending::Liveness);
            Ok(())
        })
    }

    pub(crate) fn close(&mut self, cx: &mut Shared, now: Instant) {
        match &mut self.state {
            State::Established(e) => {
                if e.deleting {
                    return;
                }
                e.queue.retain(|p| matches!(p, Pending::DeleteIke));
                if e.queue.is_empty() {
                    e.queue.push_back(Pending::DeleteIke);
                }
                let state = mem::replace(&mut self.state, State::Gone);
                if let State::Established(mut e) = state {
                    self.kick(&mut e, cx, now);
                    self.state = State::Established(e);
                }
            }
            State::Closed(_) | State::Gone => {}
            _ => self.close_with(cx, now, Some(CloseReason::Deleted { by_peer: false })),
        }
    }
}

/// Whether `a` is lower than `b` octet by octet, a prefix being lower (RFC 7296 §2.8.1).
pub(crate) fn nonce_lower(a: &[u8], b: &[u8]) -> bool {
    a < b
}

/// The lower of two nonces.
pub(crate) fn min_nonce<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if nonce_lower(a, b) {
        a
    } else {
        b
    }
}

/// The initial VecDeque for an established SA.
pub(crate) fn empty_queue() -> VecDeque<Pending> {
    VecDeque::new()
}
