//! One IKE SA: the state enum of per-state structs moved by value, the dispatch of
//! datagrams, timers and commands to the state, and the end of the SA.
//!
//! The exchanges are submodules, each for both roles: [`init`] (IKE_SA_INIT),
//! [`auth`] (IKE_AUTH), [`child`] (CREATE_CHILD_SA for Child SAs), [`ike_rekey`]
//! (CREATE_CHILD_SA for the IKE SA), [`info`] (INFORMATIONAL); [`established`] holds the
//! established state and its request queue, [`child_sa`] the Child SAs and their
//! negotiation, [`collision`] the rules for simultaneous rekeys.

pub(crate) mod auth;
pub(crate) mod child;
pub(crate) mod child_sa;
pub(crate) mod collision;
pub(crate) mod established;
pub(crate) mod followup;
pub(crate) mod ike_rekey;
pub(crate) mod info;
pub(crate) mod init;
pub(crate) mod intermediate;
pub(crate) mod mobike;
pub(crate) mod redirect;
pub(crate) mod takeover;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem;

use ipsec_core::{IkeSpi, Instant};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, NotifyType};

use crate::config::Config;
use crate::error::{ApiMisuse, AuthFailure, CloseReason, Error};
use crate::event::{ChildSaId, Event, NatState, SaHandle};
use crate::inflight::Inflight;
use crate::sa::auth::eap::EapServing;
use crate::sa::auth::{ExpectAuthReq, ExpectAuthResp};
use crate::sa::child_sa::{ChildSa, ChildState};
use crate::sa::established::{Established, Pending};
use crate::sa::init::ExpectSaInitResp;
use crate::sa::intermediate::ExpectIntermediateResp;
use crate::sa::redirect::RedirectState;
use crate::session::{Received, Session};
use crate::shared::{Path, Shared};
use crate::timers::{Timer, Timers};
use crate::trace;

/// Length of our nonces: at least half the key size of every PRF we offer
/// (RFC 7296 §2.10), and 128 bits.
pub(crate) const NONCE_LEN: usize = 32;

/// Gone, but still answering retransmitted requests from the cache for a while.
pub(crate) struct Closed {
    session: Option<Session>,
    /// [`Timer::Linger`]: forgotten then.
    timers: Timers,
}

pub(crate) enum State {
    InitSent(Box<ExpectSaInitResp>),
    /// Initiator: an additional key exchange in IKE_INTERMEDIATE (RFC 9370).
    IntermediateSent(Box<ExpectIntermediateResp>),
    AuthSent(Box<ExpectAuthResp>),
    InitReplied(Box<ExpectAuthReq>),
    /// Responder: running EAP with the initiator over IKE_AUTH exchanges (RFC 7296
    /// §2.16).
    EapServing(Box<EapServing>),
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
    /// This SA's configuration: the endpoint's, the one given to
    /// [`connect_with`](crate::IkeEndpoint::connect_with), or the resolver's.
    pub config: Arc<Config>,
    pub path: Path,
    pub nat: NatState,
    pub state: State,
    /// Every IKE SPI registered for this SA, released when it is removed.
    pub my_spis: Vec<IkeSpi>,
    /// Virtual addresses (RFC 7296 §3.15): as initiator, those assigned to us; as
    /// responder, those leased to the peer. They outlive IKE SA rekeys.
    pub vips: Vec<core::net::IpAddr>,
    /// As responder: the pool `vips` came from and the identity that holds them,
    /// released when the SA ends.
    pub lease: Option<(Arc<dyn crate::config::AddressPool>, crate::config::Identity)>,
    /// Redirects (RFC 5685): announced, followed, sent.
    pub redirect: RedirectState,
}

impl IkeSa {
    /// A Child SA is gone: its inbound SPI is free again and the data plane is told.
    pub(crate) fn child_gone(&self, cx: &mut Shared, c: &ChildSa) {
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

    /// Whether this is a responder SA waiting for IKE_AUTH.
    pub(crate) fn is_half_open(&self) -> bool {
        // A peer running EAP has not authenticated itself yet.
        matches!(self.state, State::InitReplied(_) | State::EapServing(_))
    }

    /// Whether the IKE SA is established.
    pub(crate) fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Whether the endpoint can forget this SA.
    pub(crate) fn is_gone(&self, now: Instant) -> bool {
        match &self.state {
            State::Closed(c) => c.timers.due(Timer::Linger, now),
            State::Gone => true,
            _ => false,
        }
    }

    /// Whether MOBIKE was negotiated (RFC 4555 §3.1).
    pub(crate) fn mobike(&self) -> bool {
        matches!(&self.state, State::Established(e) if e.mobike.negotiated)
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
            State::InitSent(s) => s.timers.next(),
            State::AuthSent(s) => s.session.poll_timeout(),
            State::IntermediateSent(s) => s.session.poll_timeout(),
            State::InitReplied(s) => s.timers.next(),
            State::EapServing(s) => s.timers.next(),
            State::Established(e) => e.poll_timeout(),
            State::Closed(c) => c.timers.next(),
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
                // Child SAs we asked for and got no answer to: their inbound SPIs
                // were reserved when the request went out.
                let sessions =
                    core::iter::once(&e.current).chain(e.retiring.iter().map(|r| &r.session));
                for s in sessions {
                    match s.out.as_ref().map(|r| &r.kind) {
                        Some(Inflight::CreateChild(req)) => {
                            cx.child_spis.remove(&req.spi.0);
                        }
                        Some(Inflight::Followup(f)) => {
                            if let crate::inflight::FollowupOf::Child(req) = &f.of {
                                cx.child_spis.remove(&req.spi.0);
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(d) = &e.deferred {
                    if let crate::sa::followup::DeferredOf::Child { choice, .. } = &d.of {
                        cx.child_spis.remove(&choice.our_spi.0);
                    }
                }
                (Some(e.current), e.children)
            }
            State::AuthSent(s) => {
                cx.child_spis.remove(&s.child.spi.0);
                (Some(s.session), Vec::new())
            }
            State::IntermediateSent(s) => (Some(s.session), Vec::new()),
            State::InitReplied(s) => (Some(s.session), Vec::new()),
            State::EapServing(s) => (Some(s.session), Vec::new()),
            State::Closed(c) => {
                self.state = State::Closed(c);
                return;
            }
            State::InitSent(_) | State::Gone => (None, Vec::new()),
        };
        for c in &children {
            self.child_gone(cx, c);
        }
        if let Some((pool, holder)) = self.lease.take() {
            for a in &self.vips {
                pool.release(&holder, *a);
            }
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
            timers: Timers::new().with(Timer::Linger, linger),
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
                        trace::debug!(sa = %self.handle, remote = %path.remote,
                            "retransmitted IKE_SA_INIT: response sent again");
                        cx.send(path, &s.init_response);
                    } else {
                        self.dropped(path, h, "unexpected_message");
                    }
                    self.state = State::InitReplied(s);
                    return;
                }
                match s.session.receive(cx, now, path, bytes, h) {
                    Received::Request(rh, m) if rh.exchange_type == ExchangeType::IKE_AUTH => {
                        self.auth_request(cx, now, path, s, &rh, &m);
                    }
                    Received::Request(rh, m)
                        if rh.exchange_type == ExchangeType::IKE_INTERMEDIATE =>
                    {
                        self.intermediate_request(cx, now, path, s, &rh, &m);
                    }
                    r => {
                        if matches!(r, Received::Request(..) | Received::Response(_)) {
                            // Only IKE_INTERMEDIATE or IKE_AUTH may follow IKE_SA_INIT
                            // (RFC 7296 §1.2, RFC 9242 §3).
                            self.dropped(path, h, "unexpected_exchange");
                        }
                        self.state = State::InitReplied(s);
                    }
                }
            }
            State::EapServing(mut s) => match s.session.receive(cx, now, path, bytes, h) {
                Received::Request(rh, m) if rh.exchange_type == ExchangeType::IKE_AUTH => {
                    self.eap_request(cx, now, path, s, &rh, &m);
                }
                Received::Request(rh, m)
                    if rh.exchange_type == ExchangeType::INFORMATIONAL
                        && m.has(NotifyType::AUTHENTICATION_FAILED) =>
                {
                    // The initiator gave up inside EAP (charon does so after an
                    // MSCHAPv2 Failure request, instead of answering it).
                    s.session.respond(cx, path, &rh, &[]);
                    self.state = State::EapServing(s);
                    self.close_with(
                        cx,
                        now,
                        Some(CloseReason::from_error(AuthFailure::EapFailed.into())),
                    );
                }
                r => {
                    if matches!(r, Received::Request(..) | Received::Response(_)) {
                        self.dropped(path, h, "unexpected_exchange");
                    }
                    self.state = State::EapServing(s);
                }
            },
            State::IntermediateSent(mut s) => match s.session.receive(cx, now, path, bytes, h) {
                Received::Response(m) => {
                    s.session.out = None;
                    self.intermediate_response(cx, now, s, &m);
                }
                r => {
                    if matches!(r, Received::Request(..)) {
                        // The responder has nothing to ask before IKE_AUTH completes.
                        self.dropped(path, h, "unexpected_exchange");
                    }
                    self.state = State::IntermediateSent(s);
                }
            },
            State::AuthSent(mut s) => match s.session.receive(cx, now, path, bytes, h) {
                Received::Response(m) => {
                    s.session.out = None;
                    self.auth_response(cx, now, s, &m);
                }
                r => {
                    if matches!(r, Received::Request(..)) {
                        // The responder has nothing to ask before IKE_AUTH completes.
                        self.dropped(path, h, "unexpected_exchange");
                    }
                    self.state = State::AuthSent(s);
                }
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
                    if let Received::Request(..) | Received::Response(_) =
                        s.receive(cx, now, path, bytes, h)
                    {
                        self.dropped(path, h, "sa_closed");
                    }
                } else {
                    self.dropped(path, h, "sa_closed");
                }
                self.state = State::Closed(c);
            }
            State::Gone => {}
        }
    }

    /// The event of a datagram this SA drops in its state, after any integrity check.
    pub(crate) fn dropped(&self, path: Path, h: &IkeHeaderRepr, reason: &'static str) {
        trace::debug!(
            sa = %self.handle,
            remote = %path.remote,
            reason = reason,
            exchange = %h.exchange_type,
            message_id = h.message_id,
            response = h.flags.is_response(),
            "IKE message dropped"
        );
    }

    /// Timers.
    pub(crate) fn handle_timeout(&mut self, cx: &mut Shared, now: Instant) {
        let state = mem::replace(&mut self.state, State::Gone);
        match state {
            State::InitSent(mut s) => {
                if s.timers.due(Timer::Retransmit, now) {
                    if s.sent >= cx.config.retransmit.max_tries.max(1) {
                        // An unauthenticated error we kept waiting past says more
                        // than "timeout" (RFC 7296 §2.21.2).
                        let reason = s.unauth_error.unwrap_or(CloseReason::Timeout);
                        self.state = State::InitSent(s);
                        self.close_with(cx, now, Some(reason));
                        return;
                    }
                    cx.send(self.path, &s.request);
                    cx.counters.retransmissions += 1;
                    trace::info!(
                        sa = %self.handle,
                        remote = %self.path.remote,
                        exchange = "IKE_SA_INIT",
                        attempt = s.sent,
                        "IKE request retransmitted"
                    );
                    s.timers
                        .set(Timer::Retransmit, now + cx.config.retransmit.wait(s.sent));
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
            State::IntermediateSent(mut s) => {
                let r = s.session.on_timeout(cx, now, self.path);
                self.state = State::IntermediateSent(s);
                if r.is_err() {
                    self.close_with(cx, now, Some(CloseReason::Timeout));
                }
            }
            State::EapServing(s) => {
                self.state = State::EapServing(s);
                if self.poll_timeout().is_some_and(|t| now >= t) {
                    // The EAP conversation stalled (a user who never typed a
                    // password): the peer never authenticated.
                    self.close_with(cx, now, Some(CloseReason::Timeout));
                }
            }
            State::InitReplied(s) => {
                self.state = State::InitReplied(s);
                if self.poll_timeout().is_some_and(|t| now >= t) {
                    // Half-open for too long: forget it without telling anyone.
                    trace::debug!(
                        sa = %self.handle,
                        remote = %self.path.remote,
                        reason = "half_open_timeout",
                        "half-open IKE SA forgotten: no IKE_AUTH came"
                    );
                    self.close_with(cx, now, None);
                }
            }
            State::Established(mut e) => {
                self.redirect_timeout(&mut e, now);
                let flow = self.est_timeout(&mut e, cx, now);
                self.state = State::Established(e);
                if let Flow::Close(r) = flow {
                    self.close_with(cx, now, Some(r));
                }
            }
            other => self.state = other,
        }
    }

    pub(crate) fn established(&mut self) -> Result<&mut Established, Error> {
        match &mut self.state {
            State::Established(e) => Ok(e),
            _ => Err(ApiMisuse::NotEstablished.into()),
        }
    }

    /// Runs `f` on the established state, then starts the next queued exchange.
    pub(crate) fn command<R>(
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
