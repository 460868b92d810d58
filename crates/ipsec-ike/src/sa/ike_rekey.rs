//! CREATE_CHILD_SA for the IKE SA (RFC 7296 §1.3.2, §2.18), both roles: new SPIs,
//! nonces and key exchange, `SKEYSEED` from the old SK_d, the move of the Child SAs,
//! the deletion of the old IKE SA, and simultaneous rekeys (§2.8.2, decided in
//! [`collision`]).

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Instant};
use ipsec_crypto::{kdf, KeId, ProposalKind, SharedSecret};
use ipsec_ike_wire::{ExchangeType, NotifyType};

use crate::error::{ApiMisuse, Error};
use crate::inflight::{FollowupOf, IkeRekeyReq, Inflight};
use crate::keys::{self, IkeCrypto};
use crate::msg::{InMsg, Out};
use crate::proposal::{self, Chosen, KeMode};
use crate::sa::child_sa::additional_secrets;
use crate::sa::collision::{self, min_nonce, Redundant};
use crate::sa::established::{ike_rekeyed, Established, Incoming, Pending, Retiring, Which};
use crate::sa::followup::{chosen_additional, Deferred, DeferredOf};
use crate::sa::{IkeSa, NONCE_LEN};
use crate::session::Session;
use crate::shared::Shared;
use crate::timers::Timer;
use crate::trace;

impl IkeSa {
    pub(crate) fn start_ike_rekey(
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
            .ok_or(ApiMisuse::NoUsableProposal)?;
        let kx = cx
            .provider
            .kx(g)
            .ok_or(ApiMisuse::NoUsableProposal)?
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
        e.timers.stop(Timer::Rekey);
        Ok(())
    }

    pub(crate) fn ike_rekey_request(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
        ni: &[u8],
    ) {
        let Incoming { now, path, w, h, m } = *r;
        if let Some(n) = collision::refuse_ike_rekey(w == Which::Current, e.ike_collision.is_some())
        {
            e.refuse(cx, r, n, &[]);
            return;
        }
        let (Some(sa), Some((group, ke))) = (&m.sa, &m.ke) else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some((num, peer_spi, chosen)) = proposal::choose(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            sa,
            cx.provider,
            KeMode::Required {
                hint: Some(*group),
                addke: true,
            },
        ) else {
            e.refuse(cx, r, NotifyType::NO_PROPOSAL_CHOSEN, &[]);
            return;
        };
        let Some(want) = chosen.ke.map(|k| k.id) else {
            self.dropped(path, h, "crypto");
            return;
        };
        if want != *group {
            e.refuse(cx, r, NotifyType::INVALID_KE_PAYLOAD, &want.0.to_be_bytes());
            return;
        }
        let Some(peer_spi) = <[u8; 8]>::try_from(peer_spi.as_slice())
            .ok()
            .map(IkeSpi)
            .filter(|s| !s.is_zero())
        else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Some(kx) = cx.provider.kx(*group) else {
            self.dropped(path, h, "crypto");
            return;
        };
        let Ok((public, g_ir)) = kx.respond(cx.provider.secure_random, ke) else {
            e.refuse(cx, r, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            self.dropped(path, h, "random_source");
            return;
        };
        let Ok(our_spi) = cx.new_ike_spi(self.handle) else {
            self.dropped(path, h, "random_source");
            return;
        };
        self.my_spis.push(our_spi);
        let answer = alloc::vec![
            Out::Sa(alloc::vec![chosen.answer(
                ProposalKind::Ike,
                num,
                our_spi.0.to_vec()
            )]),
            Out::Nonce(nr.clone()),
            Out::Ke(*group, public),
        ];
        let additional = chosen.additional();
        if !additional.is_empty() {
            // RFC 9370 §2.2.4: the new IKE SA comes after IKE_FOLLOWUP_KE.
            let d = Deferred {
                link: Self::new_link(cx),
                rest: additional,
                secrets: Vec::new(),
                ni: ni.to_vec(),
                nr,
                of: DeferredOf::IkeRekey {
                    chosen,
                    peer_spi,
                    our_spi,
                    g_ir,
                },
            };
            self.defer(e, cx, r, answer, d);
            return;
        }
        let crypto = Self::rekeyed_crypto(e, cx, chosen, (peer_spi, our_spi), &g_ir, &[], ni, &nr);
        let Ok(mut crypto) = crypto else {
            cx.spis.remove(&our_spi);
            self.my_spis.retain(|s| *s != our_spi);
            e.refuse(cx, r, NotifyType::NO_PROPOSAL_CHOSEN, &[]);
            return;
        };
        crypto.export_keys(cx, self.handle);
        e.current.respond(cx, path, h, &answer);
        let new = Session::new(peer_spi, our_spi, false, crypto, e.current.fragment_mtu);
        self.ike_rekeyed_as_responder(e, cx, now, new, ni, &nr);
    }

    /// The keys of the new IKE SA: `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr
    /// [| SK(1) | ... | SK(n)])` (RFC 7296 §2.18, RFC 9370 §2.2.4).
    #[allow(clippy::too_many_arguments)]
    fn rekeyed_crypto(
        e: &Established,
        cx: &Shared,
        chosen: Chosen,
        (spi_i, spi_r): (IkeSpi, IkeSpi),
        g_ir: &SharedSecret,
        extra: &[SharedSecret],
        ni: &[u8],
        nr: &[u8],
    ) -> Result<IkeCrypto, Error> {
        let old = &e.current.crypto;
        // RFC 9370 §2.2.4: `prf(SK_d (old), g^ir (new) | Ni | Nr | SK(1) | ... | SK(n))`.
        let extra = additional_secrets(extra);
        let sk = kdf::prf(
            old.prf,
            old.sk_d.expose(),
            &[g_ir.expose(), ni, nr, extra.expose()],
        )?;
        IkeCrypto::derive(cx, chosen, &sk, ni, nr, spi_i, spi_r)
    }

    /// Responder: the IKE SA's successor after its last additional key exchange.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ike_rekey_finish_as_responder(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        chosen: Chosen,
        peer_spi: IkeSpi,
        our_spi: IkeSpi,
        g_ir: &SharedSecret,
        extra: &[SharedSecret],
        ni: &[u8],
        nr: &[u8],
    ) {
        match Self::rekeyed_crypto(e, cx, chosen, (peer_spi, our_spi), g_ir, extra, ni, nr) {
            Ok(mut crypto) => {
                crypto.export_keys(cx, self.handle);
                let new = Session::new(peer_spi, our_spi, false, crypto, e.current.fragment_mtu);
                self.ike_rekeyed_as_responder(e, cx, now, new, ni, nr);
            }
            Err(_) => {
                cx.spis.remove(&our_spi);
                self.my_spis.retain(|s| *s != our_spi);
            }
        }
    }

    /// Responder: the new IKE SA is keyed; adopt it, or keep it for the collision
    /// rules when our own rekey is in flight (RFC 7296 §2.8.2).
    fn ike_rekeyed_as_responder(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        new: Session,
        ni: &[u8],
        nr: &[u8],
    ) {
        if e.rekeying_ike {
            e.ike_collision = Some((new, min_nonce(ni, nr).to_vec()));
        } else {
            // The peer deletes the old IKE SA; keep it until then.
            let until = now + cx.config.retransmit.total().saturating_mul(2);
            e.adopt_ike(cx, self.handle, now, new, until, false);
        }
    }

    /// Initiator: the answer to our IKE SA rekey; with `extra`, the secrets of the
    /// additional key exchanges that followed it (RFC 9370 §2.2.4).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ike_rekey_done(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        w: Which,
        req: IkeRekeyReq,
        m: &InMsg,
        extra: &[SharedSecret],
    ) {
        if extra.is_empty() {
            let additional = chosen_additional(&req.offer, ProposalKind::Ike, m, true);
            if !additional.is_empty() {
                let of = FollowupOf::IkeRekey(Box::new(req));
                self.start_followup(e, cx, now, w, of, m, additional);
                return;
            }
        }
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
            if chosen.additional().len() != extra.len() {
                return Err(None);
            }
            let g_ir = req.kx.complete(data).map_err(|_| None)?;
            let crypto = Self::rekeyed_crypto(
                e,
                cx,
                chosen,
                (req.spi, peer_spi),
                &g_ir,
                extra,
                &req.nonce,
                nr,
            )
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
                    let del = [Out::delete_ike()];
                    let _ = s.request(
                        cx,
                        now,
                        self.path,
                        ExchangeType::INFORMATIONAL,
                        &del,
                        Inflight::DeleteIke,
                    );
                    e.retiring.push(Retiring::new(s, linger, false));
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
                trace::warning!(
                    sa = %self.handle,
                    notify = ?n,
                    "IKE SA rekey refused or unusable answer: the old IKE SA stays"
                );
                if let Some((peer_new, _)) = e.ike_collision.take() {
                    // Ours failed, the peer's succeeded: adopt it.
                    let until = now + cx.config.retransmit.total().saturating_mul(2);
                    e.adopt_ike(cx, self.handle, now, peer_new, until, false);
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
                        e.timers
                            .set(Timer::Rekey, now + cx.config.retransmit.total());
                    }
                }
                return;
            }
        };
        let nr = m.nonce.clone().unwrap_or_default();
        let old = match e.ike_collision.take() {
            Some((peer_new, their_min))
                if collision::redundant(&req.nonce, &nr, &their_min) == Redundant::Ours =>
            {
                // §2.8.2: ours is redundant: we delete it, the peer deletes the old one.
                let old = core::mem::replace(&mut e.current, peer_new);
                let mut mine = new;
                let _ = mine.request(
                    cx,
                    now,
                    self.path,
                    ExchangeType::INFORMATIONAL,
                    &[Out::delete_ike()],
                    Inflight::DeleteIke,
                );
                e.retiring.push(Retiring::new(mine, linger, false));
                e.retiring.push(Retiring::new(old, linger, false));
                None
            }
            Some((peer_new, _)) => {
                // The peer's is redundant: it deletes it; we delete the old one.
                e.retiring.push(Retiring::new(peer_new, linger, false));
                Some(core::mem::replace(&mut e.current, new))
            }
            None => Some(core::mem::replace(&mut e.current, new)),
        };
        if let Some(mut old) = old {
            cx.event(self.handle, ike_rekeyed(&old, &e.current));
            old.out = None;
            let _ = old.request(
                cx,
                now,
                self.path,
                ExchangeType::INFORMATIONAL,
                &[Out::delete_ike()],
                Inflight::DeleteIke,
            );
            e.retiring.push(Retiring::new(old, linger, false));
        } else if let Some(r) = e.retiring.last() {
            // Ours was redundant: the peer's is current now, the old one retiring.
            cx.event(self.handle, ike_rekeyed(&r.session, &e.current));
        }
        e.timers.set(
            Timer::Rekey,
            cx.config.ike_rekey.map(|d| now + cx.jitter(d)),
        );
    }
}
