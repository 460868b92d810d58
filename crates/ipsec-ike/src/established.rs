//! The established IKE SA: CREATE_CHILD_SA (new Child SAs, Child SA and IKE SA
//! rekeys, RFC 7296 §1.3, §2.8, §2.18), INFORMATIONAL (liveness, deletes, §1.4),
//! simultaneous rekeys (§2.8.1, §2.8.2, §2.25) and the timers that drive them.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Instant, Mode};
use ipsec_crypto::{kdf, KeId, ProposalKind};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, NotifyType, ProtocolId};

use crate::error::{CloseReason, Error, PeerMisbehaved};
use crate::event::{ChildSaId, Event, NatState};
use crate::inflight::{ChildReq, IkeRekeyReq, Inflight};
use crate::keys::{self, IkeCrypto};
use crate::msg::{InMsg, Out};
use crate::proposal::{self, KeMode};
use crate::sa::{min_nonce, nonce_lower, spi4, ChildSa, ChildState, Flow, IkeSa, NONCE_LEN};
use crate::session::{Received, Request, Session};
use crate::shared::{Path, Shared};

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
    DeleteIke,
    Liveness,
}

/// An old (or redundant) IKE SA on its way out.
pub(crate) struct Retiring {
    pub session: Session,
    /// Forget it then, deleted or not.
    pub until: Instant,
    /// The peer deleted it; it only answers retransmissions now.
    pub dead: bool,
}

/// Which session a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Current,
    Retiring(usize),
    Collision,
}

/// The established IKE SA.
pub(crate) struct Established {
    pub current: Session,
    pub retiring: Vec<Retiring>,
    pub children: Vec<ChildSa>,
    pub queue: VecDeque<Pending>,
    pub ike_rekey_at: Option<Instant>,
    pub last_heard: Instant,
    pub keepalive_at: Option<Instant>,
    /// The peer rekeyed the IKE SA while our own rekey was in flight: its new IKE SA
    /// and the lowest nonce of its exchange (RFC 7296 §2.8.2).
    pub ike_collision: Option<(Session, Vec<u8>)>,
    pub rekeying_ike: bool,
    pub deleting: bool,
    /// Liveness check interval.
    pub dpd: Option<core::time::Duration>,
}

impl Established {
    pub(crate) fn new(cx: &Shared, now: Instant, current: Session, nat: NatState) -> Self {
        Established {
            current,
            retiring: Vec::new(),
            children: Vec::new(),
            queue: crate::sa::empty_queue(),
            ike_rekey_at: cx.config.ike_rekey.map(|d| now + cx.jitter(d)),
            last_heard: now,
            keepalive_at: nat.local_behind_nat.then(|| now + cx.config.nat_keepalive),
            ike_collision: None,
            rekeying_ike: false,
            deleting: false,
            dpd: cx.config.dpd,
        }
    }

    pub(crate) fn queued_rekey(&self, child: ChildSaId) -> bool {
        self.queue
            .iter()
            .any(|p| matches!(p, Pending::CreateChild { rekey: Some(c), .. } if *c == child))
    }

    fn dpd_at(&self) -> Option<Instant> {
        let d = self.dpd?;
        if self.current.busy() || !self.queue.is_empty() || self.deleting {
            return None;
        }
        Some(self.last_heard + d)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        add(self.current.poll_timeout());
        for r in &self.retiring {
            add(r.session.poll_timeout());
            add(Some(r.until));
        }
        if let Some((s, _)) = &self.ike_collision {
            add(s.poll_timeout());
        }
        add(self.ike_rekey_at);
        add(self.keepalive_at);
        for c in &self.children {
            add(c.rekey_at);
            add(c.expire_at);
        }
        add(self.dpd_at());
        t
    }

    fn session(&mut self, w: Which) -> Option<&mut Session> {
        match w {
            Which::Current => Some(&mut self.current),
            Which::Retiring(i) => self.retiring.get_mut(i).map(|r| &mut r.session),
            Which::Collision => self.ike_collision.as_mut().map(|c| &mut c.0),
        }
    }

    fn which(&self, local_spi: IkeSpi) -> Option<Which> {
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

    fn child_index(&self, id: ChildSaId) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    fn push_unique(&mut self, p: Pending) {
        if !self.queue.contains(&p) {
            self.queue.push_back(p);
        }
    }
}

impl IkeSa {
    fn remove_child(&self, e: &mut Established, cx: &mut Shared, idx: usize) {
        if idx < e.children.len() {
            let c = e.children.remove(idx);
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
            return Flow::Continue;
        };
        let dead = matches!(w, Which::Retiring(i) if e.retiring.get(i).is_some_and(|r| r.dead));
        let Some(sess) = e.session(w) else {
            return Flow::Continue;
        };
        let received = sess.receive(cx, now, path, bytes, h);
        if dead && matches!(received, Received::Request(..)) {
            // A deleted IKE SA only answers retransmissions (from the cache) and
            // finishes our own request on it.
            return Flow::Continue;
        }
        let flow = match received {
            Received::Request(rh, m) => {
                e.last_heard = now;
                self.follow_peer(cx, path);
                self.est_request(e, cx, now, path, w, &rh, &m)
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
    fn follow_peer(&mut self, cx: &mut Shared, path: Path) {
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

    #[allow(clippy::too_many_arguments)]
    fn est_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        w: Which,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) -> Flow {
        match h.exchange_type {
            ExchangeType::INFORMATIONAL => self.informational(e, cx, now, path, w, h, m),
            ExchangeType::CREATE_CHILD_SA => {
                self.create_child_sa_request(e, cx, now, path, w, h, m);
                Flow::Continue
            }
            _ => {
                if let Some(s) = e.session(w) {
                    s.respond_error(cx, path, h, NotifyType::INVALID_SYNTAX);
                }
                Flow::Continue
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn informational(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        w: Which,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) -> Flow {
        let mut out = Vec::new();
        let mut delete_ike = false;
        for d in &m.deletes {
            if d.protocol == ProtocolId::IKE {
                delete_ike = true;
                continue;
            }
            if d.protocol != ProtocolId::ESP && d.protocol != ProtocolId::AH {
                continue;
            }
            let mut ours = Vec::new();
            for spi in d.spis.iter().filter_map(|s| spi4(s)) {
                let Some(idx) = e.children.iter().position(|c| c.outbound_spi == spi) else {
                    continue;
                };
                let Some(c) = e.children.get(idx) else {
                    continue;
                };
                // RFC 7296 §1.4.1: SAs we are deleting ourselves are not answered.
                if c.state != ChildState::Deleting {
                    ours.extend_from_slice(&c.inbound_spi.to_be_bytes());
                }
                self.remove_child(e, cx, idx);
            }
            if !ours.is_empty() {
                out.push(Out::Delete {
                    protocol: d.protocol,
                    spi_size: 4,
                    spis: ours,
                });
            }
        }
        if let Some(s) = e.session(w) {
            s.respond(cx, path, h, &out);
        }
        if !delete_ike {
            return Flow::Continue;
        }
        match w {
            Which::Current => {
                if let Some((new, _)) = e.ike_collision.take() {
                    // §2.25.2: the peer closes the SA we were rekeying; its own rekey
                    // already gave us the successor.
                    e.rekeying_ike = false;
                    let old = core::mem::replace(&mut e.current, new);
                    self.emit_ike_rekeyed(cx, &old, &e.current);
                    e.retiring.push(Retiring {
                        session: old,
                        until: now + cx.config.retransmit.total(),
                        dead: true,
                    });
                    e.ike_rekey_at = cx.config.ike_rekey.map(|d| now + cx.jitter(d));
                    Flow::Continue
                } else {
                    Flow::Close(CloseReason::Deleted { by_peer: true })
                }
            }
            Which::Retiring(i) => {
                if let Some(r) = e.retiring.get_mut(i) {
                    r.dead = true;
                    r.until = r
                        .until
                        .min(now + cx.config.retransmit.total().saturating_mul(2));
                    // A request of ours on it may or may not have been processed:
                    // it keeps its retransmissions, which the peer answers from its
                    // cache if it was; if it times out it is redone on the new IKE SA.
                    if let Some(req) = r.session.out.as_ref() {
                        for d in &req.datagrams {
                            cx.send(self.path, d);
                        }
                    }
                }
                Flow::Continue
            }
            Which::Collision => {
                if let Some((s, _)) = e.ike_collision.take() {
                    e.retiring.push(Retiring {
                        session: s,
                        until: now + cx.config.retransmit.total(),
                        dead: true,
                    });
                }
                Flow::Continue
            }
        }
    }

    fn emit_ike_rekeyed(&self, cx: &mut Shared, old: &Session, new: &Session) {
        cx.event(
            self.handle,
            Event::IkeSaRekeyed {
                old_local_spi: old.local_spi(),
                old_remote_spi: old.remote_spi(),
                new_local_spi: new.local_spi(),
                new_remote_spi: new.remote_spi(),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn create_child_sa_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        w: Which,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) {
        let reject = |e: &mut Established, cx: &mut Shared, n: NotifyType, data: &[u8]| {
            if let Some(s) = e.session(w) {
                s.respond(cx, path, h, &[Out::notify(n, data)]);
            }
        };
        if e.deleting {
            reject(e, cx, NotifyType::TEMPORARY_FAILURE, &[]);
            return;
        }
        let Some(sa) = &m.sa else {
            reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some(ni) = m.nonce.clone() else {
            reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        if sa.iter().any(|p| p.protocol == ProtocolId::IKE) {
            self.ike_rekey_request(e, cx, now, path, w, h, m, &ni);
            return;
        }
        // A Child SA, new or a rekey.
        let rekey = match m.notify(NotifyType::REKEY_SA) {
            Some(n) => {
                let Some(spi) = spi4(&n.spi) else {
                    reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
                    return;
                };
                match e.children.iter().position(|c| c.outbound_spi == spi) {
                    None => {
                        if let Some(s) = e.session(w) {
                            let out = [Out::Notify {
                                protocol: n.protocol,
                                spi: n.spi.clone(),
                                ty: NotifyType::CHILD_SA_NOT_FOUND,
                                data: Vec::new(),
                            }];
                            s.respond(cx, path, h, &out);
                        }
                        return;
                    }
                    Some(i) => {
                        let st = e.children.get(i).map(|c| c.state);
                        if matches!(st, Some(ChildState::Deleting) | Some(ChildState::Rekeyed)) {
                            // §2.25.1: being closed.
                            reject(e, cx, NotifyType::TEMPORARY_FAILURE, &[]);
                            return;
                        }
                        Some(i)
                    }
                }
            }
            None => None,
        };
        if rekey.is_none() && e.children.len() >= cx.config.max_child_sas {
            reject(e, cx, NotifyType::NO_ADDITIONAL_SAS, &[]);
            return;
        }
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            return;
        };
        let id = cx.child_id();
        let ke = m.ke.as_ref().map(|(g, d)| (*g, d.as_slice()));
        let result = {
            let Some(sess) = e.session(w) else { return };
            let crypto: &IkeCrypto = &sess.crypto;
            // Rekeys keep the old SA's selectors where ours would not narrow them.
            self.child_request_as_responder(cx, now, crypto, m, id, ke, &ni, &nr)
        };
        match result {
            Ok((child, ev, answer)) => {
                if let Some(s) = e.session(w) {
                    s.respond(cx, path, h, &answer);
                }
                cx.event(self.handle, ev);
                let new_id = child.id;
                e.children.push(child);
                if let Some(old) = rekey.and_then(|i| e.children.get_mut(i)) {
                    if old.state == ChildState::Rekeying {
                        // §2.8.1: both rekey at once; decide when ours completes.
                        old.peer_rekey = Some((new_id, min_nonce(&ni, &nr).to_vec()));
                    } else {
                        old.state = ChildState::Rekeyed;
                        old.rekey_at = None;
                        // The peer deletes it; if it does not, we do.
                        old.expire_at = Some(now + cx.config.retransmit.total());
                        let old_id = old.id;
                        cx.event(
                            self.handle,
                            Event::ChildSaRekeyed {
                                old: old_id,
                                new: new_id,
                            },
                        );
                    }
                }
            }
            Err((n, data)) => reject(e, cx, n, &data),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ike_rekey_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        w: Which,
        h: &IkeHeaderRepr,
        m: &InMsg,
        ni: &[u8],
    ) {
        let reject = |e: &mut Established, cx: &mut Shared, n: NotifyType, data: &[u8]| {
            if let Some(s) = e.session(w) {
                s.respond(cx, path, h, &[Out::notify(n, data)]);
            }
        };
        if w != Which::Current || e.ike_collision.is_some() {
            reject(e, cx, NotifyType::TEMPORARY_FAILURE, &[]);
            return;
        }
        let (Some(sa), Some((group, ke))) = (&m.sa, &m.ke) else {
            reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some((num, peer_spi, chosen)) = proposal::choose(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            sa,
            cx.provider,
            KeMode::Required { hint: Some(*group) },
        ) else {
            reject(e, cx, NotifyType::NO_PROPOSAL_CHOSEN, &[]);
            return;
        };
        let Some(want) = chosen.ke.map(|k| k.id) else {
            return;
        };
        if want != *group {
            reject(e, cx, NotifyType::INVALID_KE_PAYLOAD, &want.0.to_be_bytes());
            return;
        }
        let Some(peer_spi) = <[u8; 8]>::try_from(peer_spi.as_slice())
            .ok()
            .map(IkeSpi)
            .filter(|s| !s.is_zero())
        else {
            reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some(kx) = cx.provider.kx(*group) else {
            return;
        };
        let Ok((public, g_ir)) = kx.respond(cx.provider.secure_random, ke) else {
            reject(e, cx, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            return;
        };
        let Ok(our_spi) = cx.new_ike_spi(self.handle) else {
            return;
        };
        self.my_spis.push(our_spi);
        let old = &e.current.crypto;
        let crypto = kdf::rekey_skeyseed(old.prf, old.sk_d.expose(), g_ir.expose(), ni, &nr)
            .map_err(Error::from)
            .and_then(|sk| IkeCrypto::derive(cx, chosen, &sk, ni, &nr, peer_spi, our_spi));
        let Ok(mut crypto) = crypto else {
            reject(e, cx, NotifyType::NO_PROPOSAL_CHOSEN, &[]);
            return;
        };
        crypto.export_keys(cx, self.handle);
        let answer = [
            Out::Sa(alloc::vec![chosen.answer(
                ProposalKind::Ike,
                num,
                our_spi.0.to_vec()
            )]),
            Out::Nonce(nr.clone()),
            Out::Ke(*group, public),
        ];
        e.current.respond(cx, path, h, &answer);
        let new = Session::new(peer_spi, our_spi, false, crypto, e.current.fragment_mtu);
        if e.rekeying_ike {
            e.ike_collision = Some((new, min_nonce(ni, &nr).to_vec()));
        } else {
            let old = core::mem::replace(&mut e.current, new);
            self.emit_ike_rekeyed(cx, &old, &e.current);
            // The peer deletes the old IKE SA; keep it until then.
            e.retiring.push(Retiring {
                session: old,
                until: now + cx.config.retransmit.total().saturating_mul(2),
                dead: false,
            });
            e.ike_rekey_at = cx.config.ike_rekey.map(|d| now + cx.jitter(d));
        }
    }

    fn est_response(
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
            Inflight::Auth => Flow::Continue,
            Inflight::DeleteIke => match w {
                Which::Current => Flow::Close(CloseReason::Deleted { by_peer: false }),
                Which::Retiring(i) => {
                    if let Some(r) = e.retiring.get_mut(i) {
                        r.dead = true;
                        r.until = r.until.min(now + cx.config.retransmit.total());
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
                self.child_done(e, cx, now, w, *req, m);
                Flow::Continue
            }
            Inflight::RekeyIke(req) => {
                self.ike_rekey_done(e, cx, now, w, *req, m);
                Flow::Continue
            }
        }
    }

    fn child_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        req: ChildReq,
        m: &InMsg,
    ) {
        let id = req.id;
        let rekey = req.rekey;
        let spi = req.spi;
        let group = req.kx.as_ref().map(|k| k.group());
        if let Some(n) = m.error_notify().filter(|_| m.sa.is_none()) {
            cx.child_spis.remove(&spi.0);
            let old = rekey.and_then(|o| e.child_index(o));
            match n {
                NotifyType::INVALID_KE_PAYLOAD => {
                    let g = m
                        .notify(n)
                        .and_then(|x| x.data.get(..2))
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map(|b| KeId(u16::from_be_bytes(b)));
                    if let Some(g) =
                        g.filter(|g| Some(*g) != group && proposal::offer_has_group(&req.offer, *g))
                    {
                        e.queue.push_front(Pending::CreateChild {
                            id,
                            rekey,
                            group: Some(g),
                        });
                        return;
                    }
                }
                NotifyType::CHILD_SA_NOT_FOUND => {
                    if let Some(i) = old {
                        self.remove_child(e, cx, i);
                    }
                    return;
                }
                _ => {}
            }
            if let Some(c) = old.and_then(|i| e.children.get_mut(i)) {
                if let Some((peer_new, _)) = c.peer_rekey.take() {
                    // Our rekey failed but the peer's went through.
                    c.state = ChildState::Rekeyed;
                    c.expire_at = Some(now + cx.config.retransmit.total());
                    let old_id = c.id;
                    cx.event(
                        self.handle,
                        Event::ChildSaRekeyed {
                            old: old_id,
                            new: peer_new,
                        },
                    );
                    return;
                }
                if c.state == ChildState::Rekeying {
                    c.state = ChildState::Installed;
                    // Try again a little later (TEMPORARY_FAILURE and the like).
                    c.rekey_at = Some(now + cx.config.retransmit.initial.saturating_mul(5));
                }
            }
            if rekey.is_none() || n != NotifyType::TEMPORARY_FAILURE {
                cx.event(
                    self.handle,
                    Event::ChildSaFailed {
                        id,
                        error: Error::NotifyReceived(n),
                    },
                );
            }
            return;
        }
        let my_nonce = req.nonce.clone();
        let built = match e.session(w) {
            Some(s) => self.child_response(cx, now, &s.crypto, req, &my_nonce, None, m),
            None => Err(PeerMisbehaved::UnexpectedMessage.into()),
        };
        let (child, ev) = match built {
            Ok(x) => x,
            Err(err) => {
                cx.child_spis.remove(&spi.0);
                if let Some(c) = rekey
                    .and_then(|o| e.child_index(o))
                    .and_then(|i| e.children.get_mut(i))
                {
                    if let Some((peer_new, _)) = c.peer_rekey.take() {
                        c.state = ChildState::Rekeyed;
                        c.expire_at = Some(now + cx.config.retransmit.total());
                        let old_id = c.id;
                        cx.event(
                            self.handle,
                            Event::ChildSaRekeyed {
                                old: old_id,
                                new: peer_new,
                            },
                        );
                    } else if c.state == ChildState::Rekeying {
                        c.state = ChildState::Installed;
                        c.rekey_at = Some(now + cx.config.retransmit.initial.saturating_mul(2));
                    }
                }
                cx.event(self.handle, Event::ChildSaFailed { id, error: err });
                return;
            }
        };
        cx.event(self.handle, ev);
        e.children.push(child);
        let Some(old_id) = rekey else { return };
        let Some(old) = e.child_index(old_id).and_then(|i| e.children.get_mut(i)) else {
            return;
        };
        let nr = m.nonce.clone().unwrap_or_default();
        let peer = old.peer_rekey.take();
        old.rekey_at = None;
        old.state = ChildState::Rekeyed;
        match peer {
            Some((peer_new, their_min)) if nonce_lower(min_nonce(&my_nonce, &nr), &their_min) => {
                // §2.8.1: ours holds the lowest nonce, so it is redundant and we delete
                // it; the peer, whose SA survives, deletes the old one.
                old.expire_at = Some(now + cx.config.retransmit.total());
                cx.event(
                    self.handle,
                    Event::ChildSaRekeyed {
                        old: old_id,
                        new: peer_new,
                    },
                );
                if let Some(c) = e.children.iter_mut().find(|c| c.id == id) {
                    c.state = ChildState::Rekeyed;
                    c.rekey_at = None;
                    c.expire_at = None;
                }
                e.push_unique(Pending::DeleteChild(id));
            }
            Some((peer_new, _)) => {
                cx.event(
                    self.handle,
                    Event::ChildSaRekeyed {
                        old: old_id,
                        new: id,
                    },
                );
                e.push_unique(Pending::DeleteChild(old_id));
                // The peer deletes its redundant one; if it does not, we do.
                if let Some(c) = e.children.iter_mut().find(|c| c.id == peer_new) {
                    c.state = ChildState::Rekeyed;
                    c.rekey_at = None;
                    c.expire_at = Some(now + cx.config.retransmit.total());
                }
            }
            None => {
                cx.event(
                    self.handle,
                    Event::ChildSaRekeyed {
                        old: old_id,
                        new: id,
                    },
                );
                e.push_unique(Pending::DeleteChild(old_id));
            }
        }
    }

    fn ike_rekey_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        req: IkeRekeyReq,
        m: &InMsg,
    ) {
        let release = |this: &mut Self, cx: &mut Shared, spi: IkeSpi| {
            cx.spis.remove(&spi);
            this.my_spis.retain(|s| *s != spi);
        };
        let result = (|| -> Result<Session, Option<NotifyType>> {
            if let Some(n) = m.error_notify().filter(|_| m.sa.is_none()) {
                return Err(Some(n));
            }
            let sa = m.sa.as_ref().ok_or(None)?;
            let (peer_spi, chosen) =
                proposal::accept_answer(&req.offer, ProposalKind::Ike, sa, true).ok_or(None)?;
            let peer_spi = <[u8; 8]>::try_from(peer_spi.as_slice())
                .ok()
                .map(IkeSpi)
                .filter(|s| !s.is_zero())
                .ok_or(None)?;
            let (g, data) = m.ke.as_ref().ok_or(None)?;
            if Some(*g) != chosen.ke.map(|k| k.id) || *g != req.kx.group() {
                return Err(None);
            }
            let nr = m.nonce.as_ref().ok_or(None)?;
            let g_ir = req.kx.complete(data).map_err(|_| None)?;
            let old = &e.current.crypto;
            let sk = kdf::rekey_skeyseed(old.prf, old.sk_d.expose(), g_ir.expose(), &req.nonce, nr)
                .map_err(|_| None)?;
            let crypto = IkeCrypto::derive(cx, chosen, &sk, &req.nonce, nr, req.spi, peer_spi)
                .map_err(|_| None)?;
            Ok(Session::new(
                req.spi,
                peer_spi,
                true,
                crypto,
                e.current.fragment_mtu,
            ))
        })();
        let mut result = result;
        if let Ok(s) = result.as_mut() {
            s.crypto.export_keys(cx, self.handle);
        }
        let linger = now + cx.config.retransmit.total().saturating_mul(2);
        if w != Which::Current {
            // The IKE SA we rekeyed was replaced meanwhile (the peer deleted it after
            // its own, winning rekey, §2.25.2): what we created is redundant.
            match result {
                Ok(mut s) => {
                    let del = [Out::Delete {
                        protocol: ProtocolId::IKE,
                        spi_size: 0,
                        spis: Vec::new(),
                    }];
                    let _ = s.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &del,
                        Inflight::DeleteIke,
                    );
                    e.retiring.push(Retiring {
                        session: s,
                        until: linger,
                        dead: false,
                    });
                }
                Err(_) => release(self, cx, req.spi),
            }
            return;
        }
        e.rekeying_ike = false;
        let new = match result {
            Ok(s) => s,
            Err(n) => {
                release(self, cx, req.spi);
                if let Some((peer_new, _)) = e.ike_collision.take() {
                    // Ours failed, the peer's succeeded: adopt it.
                    let old = core::mem::replace(&mut e.current, peer_new);
                    self.emit_ike_rekeyed(cx, &old, &e.current);
                    e.retiring.push(Retiring {
                        session: old,
                        until: now + cx.config.retransmit.total().saturating_mul(2),
                        dead: false,
                    });
                    e.ike_rekey_at = cx.config.ike_rekey.map(|d| now + cx.jitter(d));
                    return;
                }
                let retry_group = n
                    .filter(|n| *n == NotifyType::INVALID_KE_PAYLOAD)
                    .and_then(|n| m.notify(n))
                    .and_then(|x| x.data.get(..2))
                    .and_then(|b| <[u8; 2]>::try_from(b).ok())
                    .map(|b| KeId(u16::from_be_bytes(b)));
                match retry_group
                    .filter(|g| *g != req.kx_group && proposal::offer_has_group(&req.offer, *g))
                {
                    Some(g) => e.queue.push_front(Pending::RekeyIke { group: Some(g) }),
                    None => {
                        // Try again later.
                        e.ike_rekey_at = Some(now + cx.config.retransmit.total());
                    }
                }
                return;
            }
        };
        let nr = m.nonce.clone().unwrap_or_default();
        let my_min = min_nonce(&req.nonce, &nr).to_vec();
        let old = match e.ike_collision.take() {
            Some((peer_new, their_min)) if nonce_lower(&my_min, &their_min) => {
                // §2.8.2: ours is redundant: we delete it, the peer deletes the old one.
                let old = core::mem::replace(&mut e.current, peer_new);
                let mut mine = new;
                let _ = mine.request(
                    cx,
                    now,
                    self.path,
                    ExchangeType::INFORMATIONAL,
                    &[Out::Delete {
                        protocol: ProtocolId::IKE,
                        spi_size: 0,
                        spis: Vec::new(),
                    }],
                    Inflight::DeleteIke,
                );
                e.retiring.push(Retiring {
                    session: mine,
                    until: linger,
                    dead: false,
                });
                e.retiring.push(Retiring {
                    session: old,
                    until: linger,
                    dead: false,
                });
                None
            }
            Some((peer_new, _)) => {
                // The peer's is redundant: it deletes it; we delete the old one.
                e.retiring.push(Retiring {
                    session: peer_new,
                    until: linger,
                    dead: false,
                });
                Some(core::mem::replace(&mut e.current, new))
            }
            None => Some(core::mem::replace(&mut e.current, new)),
        };
        if let Some(mut old) = old {
            self.emit_ike_rekeyed(cx, &old, &e.current);
            old.out = None;
            let _ = old.request(
                cx,
                now,
                self.path,
                ExchangeType::INFORMATIONAL,
                &[Out::Delete {
                    protocol: ProtocolId::IKE,
                    spi_size: 0,
                    spis: Vec::new(),
                }],
                Inflight::DeleteIke,
            );
            e.retiring.push(Retiring {
                session: old,
                until: linger,
                dead: false,
            });
        } else if let Some(r) = e.retiring.last() {
            let _ = r;
            let old_spis = e
                .retiring
                .last()
                .map(|r| (r.session.local_spi(), r.session.remote_spi()));
            if let Some((l, r)) = old_spis {
                cx.event(
                    self.handle,
                    Event::IkeSaRekeyed {
                        old_local_spi: l,
                        old_remote_spi: r,
                        new_local_spi: e.current.local_spi(),
                        new_remote_spi: e.current.remote_spi(),
                    },
                );
            }
        }
        e.ike_rekey_at = cx.config.ike_rekey.map(|d| now + cx.jitter(d));
    }

    /// A request on an old IKE SA that will never be answered: redo it on the
    /// current one.
    fn abandon(&mut self, e: &mut Established, cx: &mut Shared, _now: Instant, req: Request) {
        match req.kind {
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
            Inflight::Auth | Inflight::DeleteIke => {}
        }
    }

    /// Starts the next queued exchange if the request window is free.
    pub(crate) fn kick(&mut self, e: &mut Established, cx: &mut Shared, now: Instant) {
        while !e.current.busy() {
            let Some(p) = e.queue.pop_front() else { break };
            let r = match p {
                Pending::Liveness => e.current.request(
                    cx,
                    now,
                    self.path,
                    ExchangeType::INFORMATIONAL,
                    &[],
                    Inflight::Liveness,
                ),
                Pending::DeleteIke => {
                    e.deleting = true;
                    e.queue.clear();
                    let out = [Out::Delete {
                        protocol: ProtocolId::IKE,
                        spi_size: 0,
                        spis: Vec::new(),
                    }];
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
                    c.rekey_at = None;
                    c.expire_at = None;
                    let out = [Out::Delete {
                        protocol: ProtocolId::ESP,
                        spi_size: 4,
                        spis: c.inbound_spi.to_be_bytes().to_vec(),
                    }];
                    e.current.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &out,
                        Inflight::DeleteChild(alloc::vec![id]),
                    )
                }
                Pending::RekeyIke { group } => self.start_ike_rekey(e, cx, now, group),
                Pending::CreateChild { id, rekey, group } => {
                    self.start_child(e, cx, now, id, rekey, group)
                }
            };
            if r.is_err() {
                // The random source failed; nothing was sent. Give up on this one.
                continue;
            }
        }
    }

    fn start_ike_rekey(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        group: Option<KeId>,
    ) -> Result<(), Error> {
        let spi = cx.new_ike_spi(self.handle)?;
        self.my_spis.push(spi);
        let offer = proposal::offer(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            cx.provider,
            &spi.0,
            true,
        );
        let g = group
            .or_else(|| proposal::first_group(&offer))
            .ok_or(crate::error::ApiMisuse::NoUsableProposal)?;
        let kx = cx
            .provider
            .kx(g)
            .ok_or(crate::error::ApiMisuse::NoUsableProposal)?
            .start(cx.provider.secure_random)?;
        let nonce = keys::random(cx.provider, NONCE_LEN)?;
        let out = [
            Out::Sa(offer.clone()),
            Out::Nonce(nonce.clone()),
            Out::Ke(g, kx.public().to_vec()),
        ];
        let req = IkeRekeyReq {
            spi,
            nonce,
            kx_group: g,
            kx,
            offer,
        };
        e.current.request(
            cx,
            now,
            self.path,
            ExchangeType::CREATE_CHILD_SA,
            &out,
            Inflight::RekeyIke(Box::new(req)),
        )?;
        e.rekeying_ike = true;
        e.ike_rekey_at = None;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn start_child(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        id: ChildSaId,
        rekey: Option<ChildSaId>,
        group: Option<KeId>,
    ) -> Result<(), Error> {
        let (tsi, tsr, transport, rekey_spi) = match rekey {
            Some(old) => {
                let Some(c) = e.children.iter_mut().find(|c| c.id == old) else {
                    return Ok(());
                };
                if !matches!(c.state, ChildState::Installed | ChildState::Rekeying) {
                    return Ok(());
                }
                c.state = ChildState::Rekeying;
                c.rekey_at = None;
                (
                    c.local_ts.clone(),
                    c.remote_ts.clone(),
                    c.transport,
                    Some(c.inbound_spi),
                )
            }
            None => (
                cx.config.local_ts.clone(),
                cx.config.remote_ts.clone(),
                cx.config.mode == Mode::Transport,
                None,
            ),
        };
        let spi = cx.new_child_spi()?;
        let offer = proposal::offer(
            &cx.config.esp_proposals,
            ProposalKind::Esp,
            cx.provider,
            &spi.to_be_bytes(),
            true,
        );
        let pfs = group.or_else(|| proposal::first_group(&offer));
        let kx = match pfs {
            Some(g) => Some(
                cx.provider
                    .kx(g)
                    .ok_or(crate::error::ApiMisuse::NoUsableProposal)?
                    .start(cx.provider.secure_random)?,
            ),
            None => None,
        };
        let nonce = keys::random(cx.provider, NONCE_LEN)?;
        let mut out = Vec::new();
        if let Some(old) = rekey_spi {
            out.push(Out::Notify {
                protocol: ProtocolId::ESP,
                spi: old.to_be_bytes().to_vec(),
                ty: NotifyType::REKEY_SA,
                data: Vec::new(),
            });
        }
        if transport {
            out.push(Out::notify(NotifyType::USE_TRANSPORT_MODE, &[]));
        }
        out.push(Out::Sa(offer.clone()));
        out.push(Out::Nonce(nonce.clone()));
        if let Some(k) = &kx {
            out.push(Out::Ke(k.group(), k.public().to_vec()));
        }
        out.push(Out::TsI(tsi.clone()));
        out.push(Out::TsR(tsr.clone()));
        let req = ChildReq {
            id,
            rekey,
            spi,
            nonce,
            kx,
            offer,
            tsi,
            tsr,
            transport,
        };
        let r = e.current.request(
            cx,
            now,
            self.path,
            ExchangeType::CREATE_CHILD_SA,
            &out,
            Inflight::CreateChild(Box::new(req)),
        );
        if r.is_err() {
            cx.child_spis.remove(&spi.0);
        }
        r
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
            if !timed_out && (now < r.until || r.session.busy()) {
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
        if e.ike_rekey_at.is_some_and(|t| now >= t) {
            e.ike_rekey_at = None;
            if !e.rekeying_ike && !e.deleting {
                e.push_unique(Pending::RekeyIke { group: None });
            }
        }
        let mut todo = Vec::new();
        for c in &mut e.children {
            if c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                if c.state == ChildState::Installed {
                    todo.push((c.id, true));
                }
            }
            if c.expire_at.is_some_and(|t| now >= t) {
                c.expire_at = None;
                if c.state != ChildState::Deleting {
                    todo.push((c.id, false));
                }
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
        if let Some(t) = e.keepalive_at.filter(|t| now >= *t) {
            let _ = t;
            cx.event(
                self.handle,
                Event::NatKeepaliveDue {
                    local: self.path.local,
                    remote: self.path.remote,
                },
            );
            e.keepalive_at = Some(now + cx.config.nat_keepalive);
        }
        if e.dpd_at().is_some_and(|t| now >= t) {
            e.push_unique(Pending::Liveness);
        }
        self.kick(e, cx, now);
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_order_is_octet_by_octet() {
        assert!(nonce_lower(&[1, 2, 3], &[1, 2, 4]));
        assert!(nonce_lower(&[1, 2], &[1, 2, 0]));
        assert!(!nonce_lower(&[2], &[1, 255, 255]));
    }
}
