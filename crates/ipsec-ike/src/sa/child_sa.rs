//! A Child SA as the IKE side tracks it, and its negotiation, shared by IKE_AUTH and
//! CREATE_CHILD_SA: proposal choice, traffic selector narrowing (RFC 7296 §2.9),
//! USE_TRANSPORT_MODE, PFS, the peer's SPI, and the keys and parameters the data plane
//! gets (§2.17).

use alloc::vec::Vec;

use ipsec_core::{
    ChildSaParams, Instant, Lifetime, LifetimeLimits, Mode, Spi, TrafficSelector, TsSet, UdpEncap,
    MAX_SELECTORS,
};
use ipsec_crypto::{KeId, ProposalKind, SecretBytes, SharedSecret};
use ipsec_ike_wire::NotifyType;

use crate::error::{Error, PeerIncompatible, PeerMisbehaved};
use crate::event::{ChildSaId, Event, NatState};
use crate::inflight::ChildReq;
use crate::keys::{self, IkeCrypto};
use crate::msg::{InMsg, Out};
use crate::proposal::{self, Chosen, KeMode};
use crate::sa::IkeSa;
use crate::shared::{Path, Shared};
use crate::timers::{Timer, Timers};

/// A Child SA as the IKE side tracks it.
pub(crate) struct ChildSa {
    pub id: ChildSaId,
    pub inbound_spi: Spi,
    pub outbound_spi: Spi,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub transport: bool,
    pub state: ChildState,
    /// Rekey and hard expiry.
    pub timers: Timers,
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

/// Everything [`build_child`] needs.
pub(crate) struct ChildInput<'a> {
    pub crypto: &'a IkeCrypto,
    pub chosen: Chosen,
    pub g_ir: Option<&'a [u8]>,
    /// The secrets of the additional key exchanges, concatenated (RFC 9370 §2.2.4).
    pub extra: &'a [u8],
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
        i.extra,
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
    let (rekey_at, expire_at, lifetime) = child_lifetime(cx, now);
    let params = ChildSaParams::esp(
        path.local.ip(),
        path.remote.ip(),
        i.chosen.encr.id,
        if i.chosen.encr.key_len_attr {
            i.chosen.encr.key_bits
        } else {
            0
        },
        (i.our_spi, inbound_keys),
        (i.peer_spi, outbound_keys),
    )
    .with_mode(if i.transport {
        Mode::Transport
    } else {
        Mode::Tunnel
    })
    .with_integ(
        i.chosen
            .integ
            .map_or(ipsec_core::iana::IntegId::NONE, |x| x.id),
    )
    .with_ke(i.chosen.ke.map_or(KeId::NONE, |x| x.id))
    .with_esn(i.chosen.esn)
    .with_selectors(ts_set(&local_ts), ts_set(&remote_ts))
    .with_udp_encap(nat.any().then_some(UdpEncap {
        local_port: path.local.port(),
        remote_port: path.remote.port(),
    }))
    .with_lifetime(lifetime)
    .with_replay_window(cfg.replay_window);
    let child = ChildSa {
        id: i.id,
        inbound_spi: i.our_spi,
        outbound_spi: i.peer_spi,
        local_ts,
        remote_ts,
        transport: i.transport,
        state: ChildState::Installed,
        timers: Timers::new()
            .with(Timer::Rekey, rekey_at)
            .with(Timer::Expire, expire_at),
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

/// When a Child SA made at `now` is rekeyed and expires, and the lifetime the data
/// plane gets: from `Config::child_rekey` (jittered; hard expiry 10% later), or never.
pub(crate) fn child_lifetime(
    cx: &Shared,
    now: Instant,
) -> (Option<Instant>, Option<Instant>, Lifetime) {
    match cx.config.child_rekey {
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
    }
}

fn ts_set(v: &[TrafficSelector]) -> TsSet {
    let mut s = TsSet::new();
    for t in v {
        let _ = s.push(*t);
    }
    s
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

/// A Child SA request of the peer, as [`IkeSa::child_request_as_responder`] takes it.
pub(crate) struct ChildRequest<'a> {
    /// The keys of the IKE SA the request came on.
    pub crypto: &'a IkeCrypto,
    /// The request.
    pub m: &'a InMsg,
    /// The id the Child SA gets.
    pub id: ChildSaId,
    /// The request's KE payload (CREATE_CHILD_SA; `None` in IKE_AUTH).
    pub ke: Option<(KeId, &'a [u8])>,
    /// The initiator's nonce (of IKE_SA_INIT for the first Child SA).
    pub ni: &'a [u8],
    /// Our nonce.
    pub nr: &'a [u8],
}

/// The answer to a Child SA request of ours, as [`IkeSa::child_response`] takes it.
pub(crate) struct ChildResponse<'a> {
    /// The keys of the IKE SA the request went on.
    pub crypto: &'a IkeCrypto,
    /// Our request.
    pub req: ChildReq,
    /// Our nonce.
    pub ni: &'a [u8],
    /// The IKE_SA_INIT nonce of the responder for the first Child SA (IKE_AUTH has
    /// none); `None`: the response's nonce.
    pub init_nr: Option<&'a [u8]>,
    /// The response.
    pub m: &'a InMsg,
    /// The secrets of the additional key exchanges (RFC 9370 §2.2.4), in order.
    pub extra: &'a [SharedSecret],
}

/// What the responder chose for a Child SA request, before the Child SA is built:
/// at once, or after the additional key exchanges (RFC 9370 §2.2.4).
pub(crate) struct ChildChoice {
    pub chosen: Chosen,
    pub num: u8,
    pub peer_spi: Spi,
    pub our_spi: Spi,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub transport: bool,
    pub ke_out: Option<Out>,
    pub g_ir: Option<SharedSecret>,
}

/// `SK(1) | ... | SK(n)`: the secrets of the additional key exchanges, which follow
/// the nonces in the seed of KEYMAT and of a rekeyed SKEYSEED (RFC 9370 §2.2.4).
pub(crate) fn additional_secrets(extra: &[SharedSecret]) -> SecretBytes {
    let mut v = SecretBytes::zeroed(extra.iter().map(SecretBytes::len).sum());
    let mut at = 0;
    for p in extra {
        if let Some(dst) = v.expose_mut().get_mut(at..at + p.len()) {
            dst.copy_from_slice(p.expose());
        }
        at += p.len();
    }
    v
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
    /// The responder's side of a Child SA request (IKE_AUTH: `ke` ignored and the
    /// IKE_SA_INIT nonces given; CREATE_CHILD_SA: the exchange's nonces and KE), for a
    /// choice without additional key exchanges. Returns the Child SA, its event, and
    /// the payloads of the answer; or the error notification to send.
    pub(crate) fn child_request_as_responder(
        &self,
        cx: &mut Shared,
        now: Instant,
        req: ChildRequest<'_>,
    ) -> Result<ChildAnswer, ChildReject> {
        let (crypto, id, ni, nr, with_nonce) =
            (req.crypto, req.id, req.ni, req.nr, req.m.nonce.is_some());
        let choice = self.child_choice_as_responder(cx, &req)?;
        self.child_build_as_responder(cx, now, crypto, choice, id, ni, nr, &[], with_nonce)
    }

    /// The responder's choice for a Child SA request: proposal (in CREATE_CHILD_SA with
    /// any additional key exchanges), selectors, mode, the main key exchange answered,
    /// and our SPI reserved.
    pub(crate) fn child_choice_as_responder(
        &self,
        cx: &mut Shared,
        req: &ChildRequest<'_>,
    ) -> Result<ChildChoice, ChildReject> {
        let ChildRequest { m, ke, .. } = *req;
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
        // A peer with virtual addresses gets Child SAs for them only (RFC 7296 §3.15).
        let tsi = if self.lease.is_some() {
            crate::cp::narrow(&tsi, &self.vips)
        } else {
            tsi
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
        Ok(ChildChoice {
            chosen,
            num,
            peer_spi,
            our_spi,
            tsi,
            tsr,
            transport,
            ke_out,
            g_ir,
        })
    }

    /// The payloads that answer `c`: SA, Nr (CREATE_CHILD_SA), KEr, TSi, TSr, mode.
    pub(crate) fn child_answer_payloads(c: &ChildChoice, nr: Option<&[u8]>) -> Vec<Out> {
        let mut out = alloc::vec![Out::Sa(alloc::vec![c.chosen.answer(
            ProposalKind::Esp,
            c.num,
            c.our_spi.to_be_bytes().to_vec()
        )])];
        if let Some(nr) = nr {
            out.push(Out::Nonce(nr.to_vec()));
        }
        out.extend(c.ke_out.clone());
        out.push(Out::TsI(c.tsi.clone()));
        out.push(Out::TsR(c.tsr.clone()));
        if c.transport {
            out.push(Out::notify(NotifyType::USE_TRANSPORT_MODE, &[]));
        }
        out
    }

    /// Builds the Child SA of a responder's choice, its key material from the main
    /// key exchange's secret followed by `extra`, the secrets of the additional ones
    /// (RFC 9370 §2.2.4).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child_build_as_responder(
        &self,
        cx: &mut Shared,
        now: Instant,
        crypto: &IkeCrypto,
        c: ChildChoice,
        id: ChildSaId,
        ni: &[u8],
        nr: &[u8],
        extra: &[SharedSecret],
        with_nonce: bool,
    ) -> Result<ChildAnswer, ChildReject> {
        let out = Self::child_answer_payloads(&c, with_nonce.then_some(nr));
        let extra = additional_secrets(extra);
        let our_spi = c.our_spi;
        let built = build_child(
            cx,
            now,
            self.path,
            self.nat,
            ChildInput {
                crypto,
                chosen: c.chosen,
                g_ir: c.g_ir.as_ref().map(|g| g.expose()),
                extra: extra.expose(),
                ni,
                nr,
                we_initiated: false,
                id,
                our_spi,
                peer_spi: c.peer_spi,
                tsi: c.tsi,
                tsr: c.tsr,
                transport: c.transport,
            },
        );
        match built {
            Ok((child, ev)) => Ok((child, ev, out)),
            Err(_) => {
                cx.child_spis.remove(&our_spi.0);
                Err((NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()))
            }
        }
    }

    /// Checks the answer to a Child SA request of ours and builds the Child SA.
    pub(crate) fn child_response(
        &self,
        cx: &Shared,
        now: Instant,
        resp: ChildResponse<'_>,
    ) -> Result<(ChildSa, Event), Error> {
        let ChildResponse {
            crypto,
            req,
            ni,
            init_nr,
            m,
            extra,
        } = resp;
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
        if chosen.additional().len() != extra.len() {
            return Err(PeerMisbehaved::BadKeyExchange.into());
        }
        let extra = additional_secrets(extra);
        build_child(
            cx,
            now,
            self.path,
            self.nat,
            ChildInput {
                crypto,
                chosen,
                g_ir: g_ir.as_ref().map(|g| g.expose()),
                extra: extra.expose(),
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
}
