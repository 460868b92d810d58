//! IKE_FOLLOWUP_KE (RFC 9370 §2.2.4), both roles: the additional key exchanges of a
//! CREATE_CHILD_SA exchange, for a new or rekeyed Child SA or an IKE SA rekey.
//!
//! ```text
//! CREATE_CHILD_SA  SA, Ni, KEi, [TSi, TSr]  -->
//!                  <--  SA, Nr, KEr, [TSi, TSr], N(ADDITIONAL_KEY_EXCHANGE)(link)
//! IKE_FOLLOWUP_KE  KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link)  -->
//!                  <--  KEr(1) [, N(ADDITIONAL_KEY_EXCHANGE)(link) if more follow]
//! ...
//! ```
//!
//! The new SA exists only after the last exchange. Its keys take every secret, the
//! additional ones after the nonces: `KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr | SK(1)
//! | ... | SK(n))` for a Child SA, `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr |
//! SK(1) | ... | SK(n))` for an IKE SA rekey. A responder keeps one such exchange at a
//! time; a new CREATE_CHILD_SA request replaces an unfinished one.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Instant};
use ipsec_crypto::suites::KeDesc;
use ipsec_crypto::{CryptoError, ProposalKind, SharedSecret};
use ipsec_ike_wire::{ExchangeType, NotifyType};

use crate::error::{Error, PeerMisbehaved};
use crate::event::{ChildSaId, Event};
use crate::inflight::{FollowupOf, FollowupReq, Inflight};
use crate::keys;
use crate::msg::{InMsg, Out};
use crate::proposal::{self, Chosen};
use crate::sa::child_sa::{ChildChoice, ChildState};
use crate::sa::established::{Established, Incoming, Which};
use crate::sa::IkeSa;
use crate::shared::Shared;
use crate::timers::Timer;
use crate::trace;

/// Length of the ADDITIONAL_KEY_EXCHANGE data we send as a responder.
const LINK_LEN: usize = 8;

/// A responder's CREATE_CHILD_SA waiting for its IKE_FOLLOWUP_KE exchanges.
pub(crate) struct Deferred {
    /// Our ADDITIONAL_KEY_EXCHANGE data, which every IKE_FOLLOWUP_KE request echoes.
    pub link: Vec<u8>,
    /// The additional key exchanges still to come, in order.
    pub rest: Vec<&'static KeDesc>,
    /// The secrets of those done.
    pub secrets: Vec<SharedSecret>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub of: DeferredOf,
}

/// What a [`Deferred`] exchange creates.
pub(crate) enum DeferredOf {
    /// A Child SA, new or replacing `rekey`.
    Child {
        choice: Box<ChildChoice>,
        id: ChildSaId,
        rekey: Option<ChildSaId>,
    },
    /// The IKE SA's successor.
    IkeRekey {
        chosen: Chosen,
        peer_spi: IkeSpi,
        our_spi: IkeSpi,
        g_ir: SharedSecret,
    },
}

/// The additional key exchanges a CREATE_CHILD_SA response chose, if any.
pub(crate) fn chosen_additional(
    offer: &[crate::msg::OutProposal],
    kind: ProposalKind,
    m: &InMsg,
    with_ke: bool,
) -> Vec<&'static KeDesc> {
    m.sa.as_ref()
        .and_then(|sa| proposal::accept_answer(offer, kind, sa, with_ke))
        .map(|(_, c)| c.additional())
        .unwrap_or_default()
}

impl IkeSa {
    /// Initiator: the CREATE_CHILD_SA response chose additional key exchanges; run
    /// the first in IKE_FOLLOWUP_KE.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_followup(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        of: FollowupOf,
        answer: &InMsg,
        additional: Vec<&'static KeDesc>,
    ) {
        let link = answer
            .notify(NotifyType::ADDITIONAL_KEY_EXCHANGE)
            .map(|n| n.data.clone());
        let (Some(link), Which::Current) = (link, w) else {
            let err = PeerMisbehaved::MissingPayload("N(ADDITIONAL_KEY_EXCHANGE)").into();
            self.followup_failed(e, cx, now, of, err);
            return;
        };
        let kx = match Self::followup_kx(cx, additional.first().copied()) {
            Ok(kx) => kx,
            Err(err) => {
                self.followup_failed(e, cx, now, of, err);
                return;
            }
        };
        let f = FollowupReq {
            of,
            answer: answer.clone(),
            link,
            kx,
            rest: additional.get(1..).unwrap_or(&[]).to_vec(),
            secrets: Vec::new(),
        };
        self.send_followup(e, cx, now, f);
    }

    fn followup_kx(
        cx: &Shared,
        method: Option<&'static KeDesc>,
    ) -> Result<Box<dyn ipsec_crypto::ActiveKx>, Error> {
        let method = method.ok_or(PeerMisbehaved::BadKeyExchange)?;
        Ok(cx
            .provider
            .kx(method.id)
            .ok_or(CryptoError::Unsupported)?
            .start(cx.provider.secure_random)?)
    }

    fn send_followup(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        f: FollowupReq,
    ) {
        let out = [
            Out::Ke(f.kx.group(), f.kx.public().to_vec()),
            Out::notify(NotifyType::ADDITIONAL_KEY_EXCHANGE, &f.link),
        ];
        // The window is ours: the CREATE_CHILD_SA response just freed it.
        let _ = e.current.request(
            cx,
            now,
            self.path,
            ExchangeType::IKE_FOLLOWUP_KE,
            &out,
            Inflight::Followup(Box::new(f)),
        );
    }

    /// Initiator: the answer to an IKE_FOLLOWUP_KE request.
    pub(crate) fn followup_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        f: FollowupReq,
        m: &InMsg,
    ) {
        let FollowupReq {
            of,
            answer,
            mut link,
            kx,
            rest,
            mut secrets,
        } = f;
        let step = keys::complete_with_answer(kx, m).map(|secret| secrets.push(secret));
        if let Err(err) = step {
            self.followup_failed(e, cx, now, of, err);
            return;
        }
        if let Some(n) = m.notify(NotifyType::ADDITIONAL_KEY_EXCHANGE) {
            link = n.data.clone();
        }
        if let Some(next) = rest.first().copied() {
            match Self::followup_kx(cx, Some(next)) {
                Ok(kx) => {
                    let f = FollowupReq {
                        of,
                        answer,
                        link,
                        kx,
                        rest: rest.get(1..).unwrap_or(&[]).to_vec(),
                        secrets,
                    };
                    self.send_followup(e, cx, now, f);
                }
                Err(err) => self.followup_failed(e, cx, now, of, err),
            }
            return;
        }
        match of {
            FollowupOf::Child(req) => self.child_done(e, cx, now, w, *req, &answer, &secrets),
            FollowupOf::IkeRekey(req) => {
                self.ike_rekey_done(e, cx, now, w, *req, &answer, &secrets);
            }
        }
    }

    /// Initiator: additional key exchanges that could not complete. The responder
    /// created nothing yet; we undo what we reserved and try again later.
    pub(crate) fn followup_failed(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        of: FollowupOf,
        err: Error,
    ) {
        match of {
            FollowupOf::Child(req) => {
                cx.child_spis.remove(&req.spi.0);
                if let Some(c) = req
                    .rekey
                    .and_then(|o| e.child_index(o))
                    .and_then(|i| e.children.get_mut(i))
                {
                    if c.state == ChildState::Rekeying {
                        c.state = ChildState::Installed;
                        c.timers.set(
                            Timer::Rekey,
                            now + cx.config.retransmit.initial.saturating_mul(5),
                        );
                    }
                }
                cx.event(
                    self.handle,
                    Event::ChildSaFailed {
                        id: req.id,
                        error: err,
                    },
                );
            }
            FollowupOf::IkeRekey(req) => {
                trace::warning!(
                    sa = %self.handle,
                    error = %err,
                    "IKE SA rekey: additional key exchanges failed, the old IKE SA stays"
                );
                cx.spis.remove(&req.spi);
                self.my_spis.retain(|s| *s != req.spi);
                e.rekeying_ike = false;
                e.timers
                    .set(Timer::Rekey, now + cx.config.retransmit.total());
            }
        }
    }

    /// Responder: a CREATE_CHILD_SA whose choice has additional key exchanges is
    /// answered now and finished by IKE_FOLLOWUP_KE.
    pub(crate) fn defer(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
        mut answer: Vec<Out>,
        d: Deferred,
    ) {
        answer.push(Out::notify(NotifyType::ADDITIONAL_KEY_EXCHANGE, &d.link));
        e.answer(cx, r, &answer);
        if let Some(old) = e.deferred.replace(Box::new(d)) {
            release_deferred(self, cx, *old);
        }
    }

    /// Responder: an IKE_FOLLOWUP_KE request.
    pub(crate) fn followup_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) {
        let m = r.m;
        let link_ok = |d: &Deferred| {
            m.notify(NotifyType::ADDITIONAL_KEY_EXCHANGE)
                .is_some_and(|n| n.data == d.link)
        };
        let Some(mut d) = e.deferred.take().filter(|d| link_ok(d)) else {
            // Nothing of that link (RFC 9370 §2.2.4: STATE_NOT_FOUND).
            e.refuse(cx, r, NotifyType::STATE_NOT_FOUND, &[]);
            return;
        };
        let method = d.rest.first().copied();
        let answered = (|| {
            let method = method?;
            let (group, ke) = m.ke.as_ref()?;
            if *group != method.id {
                return None;
            }
            cx.provider
                .kx(method.id)?
                .respond(cx.provider.secure_random, ke)
                .ok()
                .map(|x| (method.id, x))
        })();
        let Some((group, (public, secret))) = answered else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            release_deferred(self, cx, *d);
            return;
        };
        d.rest.remove(0);
        d.secrets.push(secret);
        let mut out = alloc::vec![Out::Ke(group, public)];
        if !d.rest.is_empty() {
            out.push(Out::notify(NotifyType::ADDITIONAL_KEY_EXCHANGE, &d.link));
            e.answer(cx, r, &out);
            e.deferred = Some(d);
            return;
        }
        e.answer(cx, r, &out);
        let Deferred {
            secrets,
            ni,
            nr,
            of,
            ..
        } = *d;
        match of {
            DeferredOf::Child { choice, id, rekey } => {
                let Some(sess) = e.session(r.w) else { return };
                let built = self.child_build_as_responder(
                    cx,
                    r.now,
                    &sess.crypto,
                    *choice,
                    id,
                    &ni,
                    &nr,
                    &secrets,
                    true,
                );
                match built {
                    Ok((child, ev, _)) => {
                        self.child_created(e, cx, r.now, child, ev, rekey, &ni, &nr)
                    }
                    Err((n, _)) => cx.event(
                        self.handle,
                        Event::ChildSaFailed {
                            id,
                            error: Error::NotifyReceived(n),
                        },
                    ),
                }
            }
            DeferredOf::IkeRekey {
                chosen,
                peer_spi,
                our_spi,
                g_ir,
            } => {
                self.ike_rekey_finish_as_responder(
                    e, cx, r.now, chosen, peer_spi, our_spi, &g_ir, &secrets, &ni, &nr,
                );
            }
        }
    }

    /// A fresh link value for a deferred exchange.
    pub(crate) fn new_link(cx: &Shared) -> Vec<u8> {
        let mut v = alloc::vec![0u8; LINK_LEN];
        if cx.provider.secure_random.fill(&mut v).is_err() {
            v.iter_mut().for_each(|b| *b = 0x5a);
        }
        v
    }
}

/// Releases what an unfinished deferred exchange reserved.
pub(crate) fn release_deferred(sa: &mut IkeSa, cx: &mut Shared, d: Deferred) {
    match d.of {
        DeferredOf::Child { choice, .. } => {
            cx.child_spis.remove(&choice.our_spi.0);
        }
        DeferredOf::IkeRekey { our_spi, .. } => {
            cx.spis.remove(&our_spi);
            sa.my_spis.retain(|s| *s != our_spi);
        }
    }
}
