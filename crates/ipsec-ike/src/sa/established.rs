//! The established IKE SA: its sessions (the current one, retiring ones, a collision
//! candidate), Child SAs and request queue; demultiplexing to the exchanges, the queue
//! driver (window size 1, RFC 7296 §2.3) and the timers (rekeys, liveness §2.4,
//! NAT keepalives, expiries).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Instant, Spi};
use ipsec_crypto::KeId;
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, NotifyType};

use crate::error::CloseReason;
use crate::event::{ChildSaId, Event, NatState, SaHandle};
use crate::inflight::Inflight;
use crate::msg::{InMsg, Out};
use crate::sa::child_sa::{ChildSa, ChildState};
use crate::sa::{Flow, IkeSa};
use crate::session::{Received, Request, Session};
use crate::shared::{Path, Shared};
use crate::timers::{earliest, Timer, Timers};
use crate::trace;

/// Work waiting for the request window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    CreateChild {
        id: ChildSaId,
        rekey: Option<ChildSaId>,
        group: Option<KeId>,
    },
    RekeyIke {
        group: Option<KeId>,
    },
    DeleteChild(ChildSaId),
    /// Delete the peer's half of a Child SA we refused after the peer had set it up
    /// (its answer to our request was unusable, e.g. a reserved SPI or selectors we
    /// did not ask for; RFC 7296 §2.9): our inbound SPI of that request names it.
    DeleteRefused(Spi),
    DeleteIke,
    Liveness,
    /// Send the peer to another gateway (RFC 5685 §5).
    Redirect(crate::redirect::Gateway),
    /// An INFORMATIONAL with UPDATE_SA_ADDRESSES on the current path (RFC 4555 §3.5).
    UpdateAddresses,
}

/// A Child SA request to send ([`Pending::CreateChild`] when its turn comes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChildPlan {
    /// The id of the new Child SA.
    pub id: ChildSaId,
    /// The Child SA it replaces (a rekey).
    pub rekey: Option<ChildSaId>,
    /// The PFS group to use (after INVALID_KE_PAYLOAD); `None`: the first offered.
    pub group: Option<KeId>,
}

/// An old (or redundant) IKE SA on its way out.
pub(crate) struct Retiring {
    pub session: Session,
    /// [`Timer::Linger`]: forget it then, deleted or not.
    pub timers: Timers,
    /// The peer deleted it; it only answers retransmissions now.
    pub dead: bool,
}

impl Retiring {
    /// An IKE SA on its way out, forgotten at `until` ([`Timer::Linger`]); `dead`: the
    /// peer has deleted it already.
    pub(crate) fn new(session: Session, until: Instant, dead: bool) -> Self {
        Retiring {
            session,
            timers: Timers::new().with(Timer::Linger, until),
            dead,
        }
    }
}

/// [`Event::IkeSaRekeyed`] from the `old` IKE SA to the `new` one.
pub(crate) fn ike_rekeyed(old: &Session, new: &Session) -> Event {
    Event::IkeSaRekeyed {
        old_local_spi: old.local_spi(),
        old_remote_spi: old.remote_spi(),
        new_local_spi: new.local_spi(),
        new_remote_spi: new.remote_spi(),
    }
}

/// Which session a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Current,
    Retiring(usize),
    Collision,
}

/// A request of the peer on one of the sessions of the established SA, as the
/// handlers of the exchanges take it.
#[derive(Clone, Copy)]
pub(crate) struct Incoming<'a> {
    /// When it arrived.
    pub now: Instant,
    /// Where it came from (and where the answer goes).
    pub path: Path,
    /// The session it came on.
    pub w: Which,
    /// Its header.
    pub h: &'a IkeHeaderRepr,
    /// It, authenticated and parsed.
    pub m: &'a InMsg,
}

/// The established IKE SA.
pub(crate) struct Established {
    pub current: Session,
    pub retiring: Vec<Retiring>,
    pub children: Vec<ChildSa>,
    pub queue: VecDeque<Pending>,
    pub last_heard: Instant,
    /// IKE SA rekey and NAT keepalive.
    pub timers: Timers,
    /// The peer rekeyed the IKE SA while our own rekey was in flight: its new IKE SA
    /// and the lowest nonce of its exchange (RFC 7296 §2.8.2).
    pub ike_collision: Option<(Session, Vec<u8>)>,
    pub rekeying_ike: bool,
    pub deleting: bool,
    /// Liveness check interval.
    pub dpd: Option<core::time::Duration>,
    /// A CREATE_CHILD_SA of the peer waiting for its IKE_FOLLOWUP_KE exchanges
    /// (RFC 9370 §2.2.4).
    pub deferred: Option<alloc::boxed::Box<crate::sa::followup::Deferred>>,
    /// What MOBIKE (RFC 4555) negotiated and keeps.
    pub mobike: crate::sa::mobike::Mobike,
}

impl Established {
    pub(crate) fn new(cx: &Shared, now: Instant, current: Session, nat: NatState) -> Self {
        Established {
            current,
            retiring: Vec::new(),
            children: Vec::new(),
            queue: VecDeque::new(),
            last_heard: now,
            timers: Timers::new()
                .with(
                    Timer::Rekey,
                    cx.config.ike_rekey.map(|d| now + cx.jitter(d)),
                )
                .with(
                    Timer::Keepalive,
                    nat.local_behind_nat.then(|| now + cx.config.nat_keepalive),
                ),
            ike_collision: None,
            rekeying_ike: false,
            deleting: false,
            dpd: cx.config.dpd,
            deferred: None,
            mobike: crate::sa::mobike::Mobike::default(),
        }
    }

    pub(crate) fn queued_rekey(&self, child: ChildSaId) -> bool {
        self.queue
            .iter()
            .any(|p| matches!(p, Pending::CreateChild { rekey: Some(c), .. } if *c == child))
    }

    pub(crate) fn dpd_at(&self) -> Option<Instant> {
        let d = self.dpd?;
        if self.current.busy() || !self.queue.is_empty() || self.deleting {
            return None;
        }
        Some(self.last_heard + d)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let sessions = [Some(&self.current)]
            .into_iter()
            .chain(self.retiring.iter().map(|r| Some(&r.session)))
            .chain([self.ike_collision.as_ref().map(|(s, _)| s)])
            .flatten();
        earliest(
            sessions
                .map(Session::poll_timeout)
                .chain(self.retiring.iter().map(|r| r.timers.next()))
                .chain(self.children.iter().map(|c| c.timers.next()))
                .chain([self.timers.next(), self.dpd_at()]),
        )
    }

    pub(crate) fn session(&mut self, w: Which) -> Option<&mut Session> {
        match w {
            Which::Current => Some(&mut self.current),
            Which::Retiring(i) => self.retiring.get_mut(i).map(|r| &mut r.session),
            Which::Collision => self.ike_collision.as_mut().map(|c| &mut c.0),
        }
    }

    pub(crate) fn which(&self, local_spi: IkeSpi) -> Option<Which> {
        if self.current.local_spi() == local_spi {
            return Some(Which::Current);
        }
        if let Some(i) = self
            .retiring
            .iter()
            .position(|r| r.session.local_spi() == local_spi)
        {
            return Some(Which::Retiring(i));
        }
        if self
            .ike_collision
            .as_ref()
            .is_some_and(|(s, _)| s.local_spi() == local_spi)
        {
            return Some(Which::Collision);
        }
        None
    }

    pub(crate) fn child_index(&self, id: ChildSaId) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    /// Retires the Child SA `old` after a rekey (RFC 7296 §2.8): marks it rekeyed,
    /// lets it expire after the retransmission time (the peer deletes it; if it does
    /// not, we do) and reports `successor`, if given, as its replacement
    /// ([`Event::ChildSaRekeyed`]).
    pub(crate) fn retire_child(
        &mut self,
        cx: &mut Shared,
        h: SaHandle,
        now: Instant,
        old: ChildSaId,
        successor: Option<ChildSaId>,
    ) {
        let Some(c) = self.children.iter_mut().find(|c| c.id == old) else {
            return;
        };
        c.state = ChildState::Rekeyed;
        c.timers.stop(Timer::Rekey);
        c.timers
            .set(Timer::Expire, now + cx.config.retransmit.total());
        if let Some(new) = successor {
            cx.event(h, Event::ChildSaRekeyed { old, new });
        }
    }

    /// Makes `new` the current IKE SA after a rekey (RFC 7296 §2.18): reports it
    /// ([`Event::IkeSaRekeyed`]), keeps the old one answering retransmissions until
    /// `until` (`dead`: the peer has deleted it already) and schedules the next rekey.
    pub(crate) fn adopt_ike(
        &mut self,
        cx: &mut Shared,
        h: SaHandle,
        now: Instant,
        new: Session,
        until: Instant,
        dead: bool,
    ) {
        let old = core::mem::replace(&mut self.current, new);
        cx.event(h, ike_rekeyed(&old, &self.current));
        self.retiring.push(Retiring::new(old, until, dead));
        self.timers.set(
            Timer::Rekey,
            cx.config.ike_rekey.map(|d| now + cx.jitter(d)),
        );
    }

    /// Answers the peer's request `r` with `out`, on the session it came on.
    pub(crate) fn answer(&mut self, cx: &mut Shared, r: &Incoming<'_>, out: &[Out]) {
        if let Some(s) = self.session(r.w) {
            s.respond(cx, r.path, r.h, out);
        }
    }

    /// Answers the peer's request `r` with the error notification `n` alone.
    pub(crate) fn refuse(&mut self, cx: &mut Shared, r: &Incoming<'_>, n: NotifyType, data: &[u8]) {
        trace::debug!(
            spi = %self.current.local_spi(),
            remote = %r.path.remote,
            exchange = %r.h.exchange_type,
            message_id = r.h.message_id,
            notify = %n,
            "IKE request refused"
        );
        self.answer(cx, r, &[Out::notify(n, data)]);
    }

    pub(crate) fn push_unique(&mut self, p: Pending) {
        if !self.queue.contains(&p) {
            self.queue.push_back(p);
        }
    }

    /// Queues `p` first, unless it is queued already.
    pub(crate) fn push_front_unique(&mut self, p: Pending) {
        if !self.queue.contains(&p) {
            self.queue.push_front(p);
        }
    }
}

impl IkeSa {
    pub(crate) fn remove_child(&self, e: &mut Established, cx: &mut Shared, idx: usize) {
        if idx < e.children.len() {
            let c = e.children.remove(idx);
            self.child_gone(cx, &c);
        }
    }

    /// A datagram for one of the sessions of the established SA.
    pub(crate) fn est_datagram(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
    ) -> Flow {
        let local_spi = if h.flags.is_initiator() {
            h.spi_r
        } else {
            h.spi_i
        };
        let Some(w) = e.which(local_spi) else {
            self.dropped(path, h, "unknown_spi");
            return Flow::Continue;
        };
        let dead = matches!(w, Which::Retiring(i) if e.retiring.get(i).is_some_and(|r| r.dead));
        let Some(sess) = e.session(w) else {
            self.dropped(path, h, "unknown_spi");
            return Flow::Continue;
        };
        let received = sess.receive(cx, now, path, bytes, h);
        if dead && matches!(received, Received::Request(..)) {
            // A deleted IKE SA only answers retransmissions (from the cache) and
            // finishes our own request on it.
            self.dropped(path, h, "ike_sa_deleted");
            return Flow::Continue;
        }
        let flow = match received {
            Received::Request(rh, m) => {
                e.last_heard = now;
                // A MOBIKE path update moves the SA itself (RFC 4555 §3.5).
                if !(e.mobike.negotiated && m.has(NotifyType::UPDATE_SA_ADDRESSES)) {
                    self.follow_peer(cx, path);
                }
                let r = Incoming {
                    now,
                    path,
                    w,
                    h: &rh,
                    m: &m,
                };
                self.est_request(e, cx, &r)
            }
            Received::Response(m) => {
                e.last_heard = now;
                self.follow_peer(cx, path);
                let req = e.session(w).and_then(|s| s.out.take());
                match req {
                    Some(req) => self.est_response(e, cx, now, w, req, &m),
                    None => Flow::Continue,
                }
            }
            Received::Nothing => Flow::Continue,
            Received::InvalidSpiHint => {
                // RFC 7296 §2.21.4: no state change, but a reason to check liveness.
                // A request in flight already is such a check: its retransmissions
                // time out if the peer really lost the IKE SA.
                if w == Which::Current && !e.current.busy() && !e.deleting {
                    e.push_unique(Pending::Liveness);
                }
                Flow::Continue
            }
        };
        if let Flow::Close(_) = flow {
            return flow;
        }
        self.kick(e, cx, now);
        Flow::Continue
    }

    /// RFC 7296 §2.23: behind a NAT, use the address of the latest authenticated
    /// message.
    pub(crate) fn follow_peer(&mut self, cx: &mut Shared, path: Path) {
        if self.nat.any()
            && path.remote != self.path.remote
            && path.remote.is_ipv4() == self.path.remote.is_ipv4()
        {
            self.path = path;
            cx.event(
                self.handle,
                Event::PeerAddressChanged {
                    remote: path.remote,
                },
            );
        }
    }

    pub(crate) fn est_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) -> Flow {
        let Incoming {
            now: _,
            path,
            w,
            h,
            m: _,
        } = *r;
        match h.exchange_type {
            ExchangeType::INFORMATIONAL => self.informational(e, cx, r),
            ExchangeType::CREATE_CHILD_SA => {
                self.create_child_sa_request(e, cx, r);
                Flow::Continue
            }
            ExchangeType::IKE_FOLLOWUP_KE => {
                self.followup_request(e, cx, r);
                Flow::Continue
            }
            _ => {
                self.dropped(path, h, "unexpected_exchange");
                if let Some(s) = e.session(w) {
                    s.respond_error(cx, path, h, NotifyType::INVALID_SYNTAX);
                }
                Flow::Continue
            }
        }
    }

    pub(crate) fn est_response(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        req: Request,
        m: &InMsg,
    ) -> Flow {
        match req.kind {
            Inflight::Liveness => {
                cx.event(self.handle, Event::LivenessOk);
                Flow::Continue
            }
            Inflight::Redirect => Flow::Continue,
            Inflight::Auth => Flow::Continue,
            Inflight::DeleteIke => match w {
                Which::Current => Flow::Close(CloseReason::Deleted { by_peer: false }),
                Which::Retiring(i) => {
                    if let Some(r) = e.retiring.get_mut(i) {
                        r.dead = true;
                        r.timers
                            .sooner(Timer::Linger, now + cx.config.retransmit.total());
                    }
                    Flow::Continue
                }
                Which::Collision => Flow::Continue,
            },
            Inflight::DeleteChild(ids) => {
                for id in ids {
                    if let Some(i) = e.child_index(id) {
                        self.remove_child(e, cx, i);
                    }
                }
                Flow::Continue
            }
            Inflight::CreateChild(req) => {
                self.child_done(e, cx, now, w, *req, m, &[]);
                Flow::Continue
            }
            Inflight::RekeyIke(req) => {
                self.ike_rekey_done(e, cx, now, w, *req, m, &[]);
                Flow::Continue
            }
            Inflight::Followup(f) => {
                self.followup_done(e, cx, now, w, *f, m);
                Flow::Continue
            }
            Inflight::UpdateAddresses(cookie2) => self.update_done(e, cx, now, &cookie2, m),
        }
    }

    /// A request on an old IKE SA that will never be answered: redo it on the
    /// current one.
    pub(crate) fn abandon(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        _now: Instant,
        req: Request,
    ) {
        trace::debug!(
            sa = %self.handle,
            exchange = %req.exchange,
            message_id = req.id,
            "request on a retired IKE SA unanswered: redone on the current one"
        );
        let kind = match req.kind {
            Inflight::Followup(f) => match f.of {
                crate::inflight::FollowupOf::Child(c) => Inflight::CreateChild(c),
                crate::inflight::FollowupOf::IkeRekey(r) => Inflight::RekeyIke(r),
            },
            k => k,
        };
        match kind {
            Inflight::CreateChild(c) => {
                cx.child_spis.remove(&c.spi.0);
                if let Some(old) = c
                    .rekey
                    .and_then(|o| e.child_index(o))
                    .and_then(|i| e.children.get_mut(i))
                {
                    if old.state == ChildState::Rekeying {
                        old.state = ChildState::Installed;
                    }
                }
                e.queue.push_front(Pending::CreateChild {
                    id: c.id,
                    rekey: c.rekey,
                    group: None,
                });
            }
            Inflight::RekeyIke(r) => {
                cx.spis.remove(&r.spi);
                self.my_spis.retain(|x| *x != r.spi);
                e.rekeying_ike = false;
            }
            Inflight::DeleteChild(ids) => {
                for id in ids {
                    if let Some(c) = e.children.iter_mut().find(|c| c.id == id) {
                        c.state = ChildState::Installed;
                        e.queue.push_front(Pending::DeleteChild(id));
                    }
                }
            }
            Inflight::Liveness => e.queue.push_front(Pending::Liveness),
            Inflight::Auth | Inflight::DeleteIke | Inflight::Followup(_) | Inflight::Redirect => {}
            Inflight::UpdateAddresses(_) => e.push_front_unique(Pending::UpdateAddresses),
        }
    }

    /// Starts the next queued exchange if the request window is free.
    pub(crate) fn kick(&mut self, e: &mut Established, cx: &mut Shared, now: Instant) {
        while !e.current.busy() {
            let Some(p) = e.queue.pop_front() else { break };
            let r = match p {
                Pending::Liveness => {
                    trace::info!(
                        sa = %self.handle,
                        remote = %self.path.remote,
                        idle = ?now.saturating_duration_since(e.last_heard),
                        "liveness check (DPD, RFC 7296 §2.4)"
                    );
                    e.current.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &[],
                        Inflight::Liveness,
                    )
                }
                Pending::DeleteIke => {
                    e.deleting = true;
                    e.queue.clear();
                    let out = [Out::delete_ike()];
                    e.current.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &out,
                        Inflight::DeleteIke,
                    )
                }
                Pending::DeleteChild(id) => {
                    let Some(c) = e.children.iter_mut().find(|c| c.id == id) else {
                        continue;
                    };
                    if c.state == ChildState::Deleting {
                        continue;
                    }
                    c.state = ChildState::Deleting;
                    c.timers.stop(Timer::Rekey);
                    c.timers.stop(Timer::Expire);
                    let out = [Out::delete_esp(c.inbound_spi)];
                    e.current.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &out,
                        Inflight::DeleteChild(alloc::vec![id]),
                    )
                }
                Pending::DeleteRefused(spi) => {
                    let out = [Out::delete_esp(spi)];
                    e.current.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &out,
                        Inflight::DeleteChild(Vec::new()),
                    )
                }
                Pending::UpdateAddresses => self.send_update(e, cx, now),
                Pending::RekeyIke { group } => self.start_ike_rekey(e, cx, now, group),
                Pending::Redirect(to) => self.send_redirect(e, cx, now, to),
                Pending::CreateChild { id, rekey, group } => {
                    self.start_child(e, cx, now, ChildPlan { id, rekey, group })
                }
            };
            if let Err(err) = r {
                // The random source failed; nothing was sent. Give up on this one.
                trace::warning!(sa = %self.handle, error = %err, "IKE request not sent");
                continue;
            }
        }
    }

    /// Timers of the established SA.
    pub(crate) fn est_timeout(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
    ) -> Flow {
        let path = self.path;
        if let Err(err) = e.current.on_timeout(cx, now, path) {
            let reason = if e.deleting {
                CloseReason::Deleted { by_peer: false }
            } else {
                CloseReason::from_error(err)
            };
            return Flow::Close(reason);
        }
        let mut dropped: Vec<Retiring> = Vec::new();
        let mut kept = Vec::new();
        for mut r in e.retiring.drain(..) {
            let timed_out = r.session.on_timeout(cx, now, path).is_err();
            if !timed_out && (!r.timers.due(Timer::Linger, now) || r.session.busy()) {
                kept.push(r);
            } else {
                dropped.push(r);
            }
        }
        e.retiring = kept;
        for mut r in dropped {
            let s = r.session.local_spi();
            cx.spis.remove(&s);
            self.my_spis.retain(|x| *x != s);
            if let Some(req) = r.session.out.take() {
                self.abandon(e, cx, now, req);
            }
        }
        if let Some((s, _)) = e.ike_collision.as_mut() {
            let _ = s.on_timeout(cx, now, path);
        }
        // Taken when due, whether or not a rekey is queued now.
        if e.timers.take_due(Timer::Rekey, now) && !e.rekeying_ike && !e.deleting {
            e.push_unique(Pending::RekeyIke { group: None });
        }
        let mut todo = Vec::new();
        for c in &mut e.children {
            if c.timers.take_due(Timer::Rekey, now) && c.state == ChildState::Installed {
                todo.push((c.id, true));
            }
            if c.timers.take_due(Timer::Expire, now) && c.state != ChildState::Deleting {
                todo.push((c.id, false));
            }
        }
        for (id, rekey) in todo {
            if e.deleting {
                break;
            }
            if rekey {
                if !e.queued_rekey(id) {
                    let new = cx.child_id();
                    e.queue.push_back(Pending::CreateChild {
                        id: new,
                        rekey: Some(id),
                        group: None,
                    });
                }
            } else {
                e.push_unique(Pending::DeleteChild(id));
            }
        }
        if e.timers.due(Timer::Keepalive, now) {
            cx.event(
                self.handle,
                Event::NatKeepaliveDue {
                    local: self.path.local,
                    remote: self.path.remote,
                },
            );
            e.timers
                .set(Timer::Keepalive, now + cx.config.nat_keepalive);
        }
        if e.dpd_at().is_some_and(|t| now >= t) {
            e.push_unique(Pending::Liveness);
        }
        self.kick(e, cx, now);
        Flow::Continue
    }
}
