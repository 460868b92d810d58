//! CREATE_CHILD_SA for Child SAs (RFC 7296 §1.3.1, §1.3.3), both roles: new Child
//! SAs, rekeys with REKEY_SA, PFS and INVALID_KE_PAYLOAD retries, and simultaneous
//! rekeys (§2.8.1, decided in [`collision`]).

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::{Instant, Mode};
use ipsec_crypto::{KeId, ProposalKind, SharedSecret};
use ipsec_ike_wire::{ExchangeType, NotifyType, ProtocolId};

use crate::error::{ApiMisuse, Error, PeerMisbehaved};
use crate::event::{ChildSaId, Event};
use crate::inflight::{ChildReq, FollowupOf, Inflight};
use crate::keys;
use crate::msg::{InMsg, Out};
use crate::proposal;
use crate::sa::child_sa::{spi4, ChildRequest, ChildResponse, ChildSa, ChildState};
use crate::sa::collision::{self, min_nonce, Redundant};
use crate::sa::established::{ChildPlan, Established, Incoming, Pending, Which};
use crate::sa::followup::{chosen_additional, Deferred, DeferredOf};
use crate::sa::{IkeSa, NONCE_LEN};
use crate::shared::Shared;
use crate::timers::Timer;

impl IkeSa {
    pub(crate) fn start_child(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        plan: ChildPlan,
    ) -> Result<(), Error> {
        let ChildPlan { id, rekey, group } = plan;
        let (tsi, tsr, transport, rekey_spi) = match rekey {
            Some(old) => {
                let Some(c) = e.children.iter_mut().find(|c| c.id == old) else {
                    return Ok(());
                };
                if !matches!(c.state, ChildState::Installed | ChildState::Rekeying) {
                    return Ok(());
                }
                c.state = ChildState::Rekeying;
                c.timers.stop(Timer::Rekey);
                (
                    c.local_ts.clone(),
                    c.remote_ts.clone(),
                    c.transport,
                    Some(c.inbound_spi),
                )
            }
            None => (
                // With virtual addresses assigned, ours are the local selectors.
                match crate::cp::narrow(&cx.config.local_ts, &self.vips) {
                    v if v.is_empty() => cx.config.local_ts.clone(),
                    v => v,
                },
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
                    .ok_or(ApiMisuse::NoUsableProposal)?
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

    pub(crate) fn create_child_sa_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) {
        let Incoming { now, path, w, h, m } = *r;
        if let Some(n) = collision::refuse_while_deleting(e.deleting) {
            e.refuse(cx, r, n, &[]);
            return;
        }
        let Some(sa) = &m.sa else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some(ni) = m.nonce.clone() else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        if sa.iter().any(|p| p.protocol == ProtocolId::IKE) {
            self.ike_rekey_request(e, cx, r, &ni);
            return;
        }
        // A Child SA, new or a rekey.
        let rekey = match m.notify(NotifyType::REKEY_SA) {
            Some(n) => {
                let Some(spi) = spi4(&n.spi) else {
                    e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
                    return;
                };
                let i = e.children.iter().position(|c| c.outbound_spi == spi);
                match collision::refuse_child_rekey(
                    i.and_then(|i| e.children.get(i)).map(|c| c.state),
                ) {
                    Some(NotifyType::CHILD_SA_NOT_FOUND) => {
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
                    Some(refusal) => {
                        // §2.25.1: being closed.
                        e.refuse(cx, r, refusal, &[]);
                        return;
                    }
                    None => i,
                }
            }
            None => None,
        };
        if rekey.is_none() && e.children.len() >= cx.config.max_child_sas {
            e.refuse(cx, r, NotifyType::NO_ADDITIONAL_SAS, &[]);
            return;
        }
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            self.dropped(path, h, "random_source");
            return;
        };
        let id = cx.child_id();
        let ke = m.ke.as_ref().map(|(g, d)| (*g, d.as_slice()));
        let rekey = rekey.and_then(|i| e.children.get(i)).map(|c| c.id);
        let Some(sess) = e.session(w) else { return };
        let req = ChildRequest {
            crypto: &sess.crypto,
            m,
            id,
            ke,
            ni: &ni,
            nr: &nr,
        };
        let choice = match self.child_choice_as_responder(cx, &req) {
            Ok(c) => c,
            Err((n, data)) => {
                e.refuse(cx, r, n, &data);
                return;
            }
        };
        let additional = choice.chosen.additional();
        if !additional.is_empty() {
            // RFC 9370 §2.2.4: the Child SA comes after IKE_FOLLOWUP_KE.
            let answer = Self::child_answer_payloads(&choice, Some(&nr));
            let d = Deferred {
                link: Self::new_link(cx),
                rest: additional,
                secrets: Vec::new(),
                ni,
                nr,
                of: DeferredOf::Child {
                    choice: Box::new(choice),
                    id,
                    rekey,
                },
            };
            self.defer(e, cx, r, answer, d);
            return;
        }
        let result = {
            let Some(sess) = e.session(w) else { return };
            self.child_build_as_responder(cx, now, &sess.crypto, choice, id, &ni, &nr, &[], true)
        };
        match result {
            Ok((child, ev, answer)) => {
                e.answer(cx, r, &answer);
                self.child_created(e, cx, now, child, ev, rekey, &ni, &nr);
            }
            Err((n, data)) => e.refuse(cx, r, n, &data),
        }
    }

    /// Responder: a Child SA is created (answered already); a rekey retires the old
    /// one, or, when our own rekey of it is in flight, waits for that to decide
    /// (RFC 7296 §2.8.1).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child_created(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        child: ChildSa,
        ev: Event,
        rekey: Option<ChildSaId>,
        ni: &[u8],
        nr: &[u8],
    ) {
        cx.event(self.handle, ev);
        let new_id = child.id;
        e.children.push(child);
        let Some(old) = rekey
            .and_then(|o| e.child_index(o))
            .and_then(|i| e.children.get_mut(i))
        else {
            return;
        };
        if old.state == ChildState::Rekeying {
            // §2.8.1: both rekey at once; decide when ours completes.
            old.peer_rekey = Some((new_id, min_nonce(ni, nr).to_vec()));
        } else {
            // The peer deletes it; if it does not, we do.
            let old_id = old.id;
            e.retire_child(cx, self.handle, now, old_id, Some(new_id));
        }
    }

    /// Initiator: the answer to our CREATE_CHILD_SA for a Child SA; with `extra`, the
    /// secrets of the additional key exchanges that followed it (RFC 9370 §2.2.4).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        req: ChildReq,
        m: &InMsg,
        extra: &[SharedSecret],
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
                    let old_id = c.id;
                    e.retire_child(cx, self.handle, now, old_id, Some(peer_new));
                    return;
                }
                if c.state == ChildState::Rekeying {
                    c.state = ChildState::Installed;
                    // Try again a little later (TEMPORARY_FAILURE and the like).
                    c.timers.set(
                        Timer::Rekey,
                        now + cx.config.retransmit.initial.saturating_mul(5),
                    );
                }
            }
            if collision::report_child_failure(rekey.is_some(), n) {
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
        if extra.is_empty() {
            let additional = chosen_additional(&req.offer, ProposalKind::Esp, m, req.kx.is_some());
            if !additional.is_empty() {
                let of = FollowupOf::Child(Box::new(req));
                self.start_followup(e, cx, now, w, of, m, additional);
                return;
            }
        }
        let my_nonce = req.nonce.clone();
        let answered = m.sa.is_some();
        let built = match e.session(w) {
            Some(s) => {
                let resp = ChildResponse {
                    crypto: &s.crypto,
                    req,
                    ni: &my_nonce,
                    init_nr: None,
                    m,
                    extra,
                };
                self.child_response(cx, now, resp)
            }
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
                        let old_id = c.id;
                        e.retire_child(cx, self.handle, now, old_id, Some(peer_new));
                    } else if c.state == ChildState::Rekeying {
                        c.state = ChildState::Installed;
                        c.timers.set(
                            Timer::Rekey,
                            now + cx.config.retransmit.initial.saturating_mul(2),
                        );
                    }
                }
                cx.event(self.handle, Event::ChildSaFailed { id, error: err });
                if answered {
                    // The peer set up its half of what we now refuse: delete it
                    // (RFC 7296 §2.9); queued, sent when the window is free.
                    e.push_unique(Pending::DeleteRefused(spi));
                }
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
        old.timers.stop(Timer::Rekey);
        old.state = ChildState::Rekeyed;
        match peer {
            Some((peer_new, their_min))
                if collision::redundant(&my_nonce, &nr, &their_min) == Redundant::Ours =>
            {
                // §2.8.1: ours holds the lowest nonce, so it is redundant and we delete
                // it; the peer, whose SA survives, deletes the old one.
                e.retire_child(cx, self.handle, now, old_id, Some(peer_new));
                if let Some(c) = e.children.iter_mut().find(|c| c.id == id) {
                    c.state = ChildState::Rekeyed;
                    c.timers.stop(Timer::Rekey);
                    c.timers.stop(Timer::Expire);
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
                e.retire_child(cx, self.handle, now, peer_new, None);
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
}
