//! Proposals on the wire (RFC 7296 §3.3) from and to [`Proposal`] strings, and the
//! responder's choice (§2.7, §3.3.6): by our own order of preference among what the
//! initiator offers.

use alloc::string::String;
use alloc::vec::Vec;

use ipsec_core::iana::{EncrId, EsnId, IntegId, KeId, PrfId, TransformType};
use ipsec_crypto::suites::{self, EncrDesc, IntegDesc, KeDesc, PrfDesc};
use ipsec_crypto::{CryptoProvider, Proposal, ProposalKind};
use ipsec_ike_wire::ProtocolId;

use crate::msg::{InProposal, OutProposal};

/// One algorithm of each type: what was agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub encr: &'static EncrDesc,
    pub integ: Option<&'static IntegDesc>,
    /// IKE only.
    pub prf: Option<&'static PrfDesc>,
    /// IKE: always; Child SAs: with PFS.
    pub ke: Option<&'static KeDesc>,
    /// Child SAs only.
    pub esn: bool,
    /// The additional key exchanges (RFC 9370), ADDKE1 to ADDKE7; `None` where the
    /// type was not negotiated or NONE was chosen.
    pub addke: [Option<&'static KeDesc>; 7],
}

impl Chosen {
    /// The canonical proposal string.
    pub(crate) fn suite(&self, kind: ProposalKind) -> String {
        let p = Proposal {
            kind,
            encr: alloc::vec![self.encr],
            integ: self.integ.into_iter().collect(),
            prf: self.prf.into_iter().collect(),
            ke: self.ke.into_iter().collect(),
            esn: if kind == ProposalKind::Ike {
                Vec::new()
            } else {
                alloc::vec![self.esn]
            },
            addke: self.addke.map(|a| a.map(Some).into_iter().collect()),
        };
        alloc::format!("{p}")
    }

    /// The transforms to send for this choice.
    pub(crate) fn transforms(&self, kind: ProposalKind) -> Vec<(TransformType, u16, Option<u16>)> {
        let mut t = alloc::vec![encr_transform(self.encr)];
        if let Some(p) = self.prf {
            t.push((TransformType::PRF, p.id.0, None));
        }
        if let Some(i) = self.integ {
            t.push((TransformType::INTEG, i.id.0, None));
        }
        if let Some(k) = self.ke {
            t.push((TransformType::KE, k.id.0, None));
        }
        for (ty, k) in addke_types().zip(self.addke) {
            if let Some(k) = k {
                t.push((ty, k.id.0, None));
            }
        }
        if kind != ProposalKind::Ike {
            t.push((
                TransformType::ESN,
                if self.esn {
                    EsnId::ESN.0
                } else {
                    EsnId::NO_ESN.0
                },
                None,
            ));
        }
        t
    }

    /// The additional key exchanges to run, in order (ADDKE1 first; NONE skipped).
    pub(crate) fn additional(&self) -> Vec<&'static KeDesc> {
        self.addke.iter().flatten().copied().collect()
    }

    /// An SA payload answering proposal `num` with this choice and our `spi`.
    pub(crate) fn answer(&self, kind: ProposalKind, num: u8, spi: Vec<u8>) -> OutProposal {
        OutProposal {
            num,
            protocol: protocol_of(kind),
            spi,
            transforms: self.transforms(kind),
        }
    }
}

/// ADDKE1 to ADDKE7.
fn addke_types() -> impl Iterator<Item = TransformType> {
    (1..=7).filter_map(TransformType::addke)
}

fn encr_transform(e: &EncrDesc) -> (TransformType, u16, Option<u16>) {
    (
        TransformType::ENCR,
        e.id.0,
        e.key_len_attr.then_some(e.key_bits),
    )
}

/// The protocol id of a proposal kind.
pub(crate) fn protocol_of(kind: ProposalKind) -> ProtocolId {
    match kind {
        ProposalKind::Ike => ProtocolId::IKE,
        ProposalKind::Esp => ProtocolId::ESP,
        ProposalKind::Ah => ProtocolId::AH,
    }
}

fn encr_ok(p: &CryptoProvider, e: &EncrDesc) -> bool {
    p.supports_encr(e)
}

fn integ_ok(p: &CryptoProvider, i: &IntegDesc) -> bool {
    p.integ(i.id).is_some()
}

fn prf_ok(p: &CryptoProvider, d: &PrfDesc) -> bool {
    p.prf(d.id).is_some()
}

fn ke_ok(p: &CryptoProvider, k: &KeDesc) -> bool {
    p.kx(k.id).is_some()
}

/// Our offer: one wire proposal per configured [`Proposal`], numbered from 1, with
/// only the transforms `provider` can run. `with_ke` = false leaves key exchange
/// transforms out (IKE_AUTH, RFC 7296 §1.2), the additional key exchanges of RFC 9370
/// included.
pub(crate) fn offer(
    ours: &[Proposal],
    kind: ProposalKind,
    provider: &CryptoProvider,
    spi: &[u8],
    with_ke: bool,
) -> Vec<OutProposal> {
    let mut out = Vec::new();
    for p in ours.iter().filter(|p| p.kind == kind) {
        let mut t = Vec::new();
        t.extend(
            p.encr
                .iter()
                .filter(|e| encr_ok(provider, e))
                .map(|e| encr_transform(e)),
        );
        if t.is_empty() {
            continue;
        }
        if kind == ProposalKind::Ike {
            let prfs: Vec<_> = p.prf.iter().filter(|d| prf_ok(provider, d)).collect();
            if prfs.is_empty() {
                continue;
            }
            t.extend(prfs.iter().map(|d| (TransformType::PRF, d.id.0, None)));
        }
        let integs: Vec<_> = p.integ.iter().filter(|i| integ_ok(provider, i)).collect();
        if !p.integ.is_empty() && integs.is_empty() {
            continue;
        }
        t.extend(integs.iter().map(|i| (TransformType::INTEG, i.id.0, None)));
        if with_ke {
            let kes: Vec<_> = p.ke.iter().filter(|k| ke_ok(provider, k)).collect();
            if !p.ke.is_empty() && kes.is_empty() {
                continue;
            }
            t.extend(kes.iter().map(|k| (TransformType::KE, k.id.0, None)));
            let mut usable = true;
            for (ty, methods) in addke_types().zip(&p.addke) {
                let ok: Vec<_> = methods
                    .iter()
                    .filter(|m| m.is_none_or(|k| ke_ok(provider, k)))
                    .map(|m| (ty, m.map_or(KeId::NONE.0, |k| k.id.0), None))
                    .collect();
                usable &= methods.is_empty() || !ok.is_empty();
                t.extend(ok);
            }
            if !usable {
                continue;
            }
        }
        if kind != ProposalKind::Ike {
            for e in &p.esn {
                t.push((
                    TransformType::ESN,
                    if *e { EsnId::ESN.0 } else { EsnId::NO_ESN.0 },
                    None,
                ));
            }
        }
        let num = u8::try_from(out.len() + 1).unwrap_or(u8::MAX);
        out.push(OutProposal {
            num,
            protocol: protocol_of(kind),
            spi: spi.to_vec(),
            transforms: t,
        });
    }
    out
}

/// The key exchange group our offer starts with (the one we send a KE payload for).
pub(crate) fn first_group(offer: &[OutProposal]) -> Option<KeId> {
    offer
        .iter()
        .flat_map(|p| p.transforms.iter())
        .find(|t| t.0 == TransformType::KE)
        .map(|t| KeId(t.1))
}

/// Whether our offer proposes an additional key exchange (RFC 9370) anywhere, so
/// that IKE_SA_INIT must announce INTERMEDIATE_EXCHANGE_SUPPORTED.
pub(crate) fn offer_has_addke(offer: &[OutProposal]) -> bool {
    offer
        .iter()
        .flat_map(|p| p.transforms.iter())
        .any(|t| t.0.addke_number().is_some() && t.1 != KeId::NONE.0)
}

/// Whether `group` is in any proposal of our offer.
pub(crate) fn offer_has_group(offer: &[OutProposal], group: KeId) -> bool {
    offer
        .iter()
        .flat_map(|p| p.transforms.iter())
        .any(|t| t.0 == TransformType::KE && t.1 == group.0)
}

fn offered(
    t: &InProposal,
    ty: TransformType,
) -> impl Iterator<Item = &crate::msg::InTransform> + '_ {
    t.transforms
        .iter()
        .filter(move |x| x.ty == ty && !x.unknown_attr)
}

fn has_type(t: &InProposal, ty: TransformType) -> bool {
    t.transforms.iter().any(|x| x.ty == ty)
}

fn offers_encr(t: &InProposal, e: &EncrDesc) -> bool {
    offered(t, TransformType::ENCR).any(|x| {
        x.id == e.id.0
            && if e.key_len_attr {
                x.key_len == Some(e.key_bits)
            } else {
                x.key_len.is_none() || x.key_len == Some(e.key_bits)
            }
    })
}

fn offers(t: &InProposal, ty: TransformType, id: u16) -> bool {
    offered(t, ty).any(|x| x.id == id)
}

/// How key exchange transforms take part in a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeMode {
    /// IKE_SA_INIT, IKE rekey: a group is required; prefer `hint` (the group of the
    /// KE payload) when it is acceptable. `addke`: additional key exchanges may be
    /// chosen (IKE_SA_INIT: the initiator announced IKE_INTERMEDIATE support).
    Required { hint: Option<KeId>, addke: bool },
    /// IKE_AUTH: key exchange transforms are ignored.
    Ignore,
    /// CREATE_CHILD_SA for a Child SA: PFS if our proposal has groups, with any
    /// additional key exchanges it has.
    Optional { hint: Option<KeId> },
}

/// The responder's choice: the first of our proposals (our preference) that matches
/// one of theirs, and in it our most preferred algorithm of each type.
/// Returns their proposal number, their SPI and the choice.
pub(crate) fn choose(
    ours: &[Proposal],
    kind: ProposalKind,
    theirs: &[InProposal],
    provider: &CryptoProvider,
    ke_mode: KeMode,
) -> Option<(u8, Vec<u8>, Chosen)> {
    let proto = protocol_of(kind);
    for p in ours.iter().filter(|p| p.kind == kind) {
        for t in theirs.iter().filter(|t| t.protocol == proto) {
            if let Some(c) = match_one(p, t, kind, provider, ke_mode) {
                return Some((t.num, t.spi.clone(), c));
            }
        }
    }
    None
}

fn match_one(
    p: &Proposal,
    t: &InProposal,
    kind: ProposalKind,
    provider: &CryptoProvider,
    ke_mode: KeMode,
) -> Option<Chosen> {
    let encr = *p
        .encr
        .iter()
        .find(|e| encr_ok(provider, e) && offers_encr(t, e))?;
    let integ = if p.integ.is_empty() {
        // AEAD: the peer may only offer "none".
        if offered(t, TransformType::INTEG).any(|x| x.id != IntegId::NONE.0)
            && !offers(t, TransformType::INTEG, 0)
        {
            return None;
        }
        None
    } else {
        Some(
            *p.integ
                .iter()
                .find(|i| integ_ok(provider, i) && offers(t, TransformType::INTEG, i.id.0))?,
        )
    };
    let prf = if kind == ProposalKind::Ike {
        Some(
            *p.prf
                .iter()
                .find(|d| prf_ok(provider, d) && offers(t, TransformType::PRF, d.id.0))?,
        )
    } else {
        None
    };
    let pick_ke = |hint: Option<KeId>| -> Option<&'static KeDesc> {
        let ok: Vec<&'static KeDesc> =
            p.ke.iter()
                .copied()
                .filter(|k| ke_ok(provider, k) && offers(t, TransformType::KE, k.id.0))
                .collect();
        hint.and_then(|h| ok.iter().copied().find(|k| k.id == h))
            .or_else(|| ok.first().copied())
    };
    let ke = match ke_mode {
        KeMode::Ignore => None,
        KeMode::Required { hint, .. } => Some(pick_ke(hint)?),
        KeMode::Optional { hint } => {
            if p.ke.is_empty() {
                // No PFS wanted: the peer must not insist on a group.
                if has_type(t, TransformType::KE) && !offers(t, TransformType::KE, KeId::NONE.0) {
                    return None;
                }
                None
            } else {
                Some(pick_ke(hint)?)
            }
        }
    };
    let mut addke = [None; 7];
    let allowed = match ke_mode {
        KeMode::Required { addke, .. } => Some(addke),
        KeMode::Optional { .. } => Some(true),
        KeMode::Ignore => None,
    };
    if let Some(allowed) = allowed {
        for ((ty, methods), slot) in addke_types().zip(&p.addke).zip(&mut addke) {
            let peer_none = !has_type(t, ty) || offers(t, ty, KeId::NONE.0);
            if methods.is_empty() {
                // Not wanted: the peer must let it out.
                if !peer_none {
                    return None;
                }
                continue;
            }
            // Without `allowed` only NONE can be chosen, and only where our
            // proposal makes the exchange optional (`keN_none`).
            let pick = methods.iter().find(|m| match m {
                None => peer_none,
                Some(k) => allowed && ke_ok(provider, k) && offers(t, ty, k.id.0),
            })?;
            *slot = *pick;
        }
    }
    let esn = if kind == ProposalKind::Ike {
        false
    } else if !has_type(t, TransformType::ESN) {
        // ESN is mandatory in ESP proposals; treat a missing one as "no ESN".
        if !p.esn.contains(&false) {
            return None;
        }
        false
    } else {
        *p.esn
            .iter()
            .find(|e| offers(t, TransformType::ESN, if **e { 1 } else { 0 }))?
    };
    Some(Chosen {
        encr,
        integ,
        prf,
        ke,
        esn,
        addke,
    })
}

/// The initiator's check of the responder's answer: exactly one proposal, with one
/// transform of each type, all taken from our proposal of that number.
pub(crate) fn accept_answer(
    offer: &[OutProposal],
    kind: ProposalKind,
    answer: &[InProposal],
    with_ke: bool,
) -> Option<(Vec<u8>, Chosen)> {
    let [a] = answer else { return None };
    let ours = offer.iter().find(|o| o.num == a.num)?;
    if a.protocol != protocol_of(kind) {
        return None;
    }
    for x in &a.transforms {
        if x.unknown_attr
            || !ours
                .transforms
                .iter()
                .any(|o| o.0 == x.ty && o.1 == x.id && o.2 == x.key_len)
        {
            // Accept "no integrity" with an AEAD and a NONE group even if not listed.
            let benign = x.id == 0
                && (x.ty == TransformType::INTEG
                    || x.ty == TransformType::KE
                    || x.ty.addke_number().is_some());
            if !benign {
                return None;
            }
        }
    }
    let one = |ty: TransformType| -> Result<Option<&crate::msg::InTransform>, ()> {
        let mut it = a.transforms.iter().filter(|x| x.ty == ty);
        let first = it.next();
        if it.next().is_some() {
            return Err(());
        }
        Ok(first)
    };
    let e = one(TransformType::ENCR).ok()??;
    let encr = suites::encr(EncrId(e.id), e.key_len.unwrap_or(0))?;
    let integ = match one(TransformType::INTEG).ok()? {
        Some(i) if i.id != 0 => Some(suites::integ(IntegId(i.id))?),
        _ => None,
    };
    if !encr.is_combined() && integ.is_none() {
        return None;
    }
    let prf = match one(TransformType::PRF).ok()? {
        Some(d) => Some(suites::prf(PrfId(d.id))?),
        None => None,
    };
    if kind == ProposalKind::Ike && prf.is_none() {
        return None;
    }
    let ke = match one(TransformType::KE).ok()? {
        Some(k) if k.id != 0 => Some(suites::ke(KeId(k.id))?),
        _ => None,
    };
    if kind == ProposalKind::Ike && ke.is_none() {
        return None;
    }
    // With key exchange expected (PFS offered), the answer must name a group.
    if with_ke
        && kind != ProposalKind::Ike
        && ke.is_none()
        && ours
            .transforms
            .iter()
            .any(|o| o.0 == TransformType::KE && o.1 != 0)
    {
        return None;
    }
    let esn = match one(TransformType::ESN).ok()? {
        Some(x) => x.id == EsnId::ESN.0,
        None => false,
    };
    let mut addke = [None; 7];
    if with_ke {
        for (ty, slot) in addke_types().zip(&mut addke) {
            *slot = match one(ty).ok()? {
                Some(k) if k.id != KeId::NONE.0 => Some(suites::ke(KeId(k.id))?),
                _ => None,
            };
            // Offered without NONE: the answer must choose one.
            let ours_of_ty = || ours.transforms.iter().filter(|o| o.0 == ty);
            if slot.is_none()
                && ours_of_ty().next().is_some()
                && !ours_of_ty().any(|o| o.1 == KeId::NONE.0)
            {
                return None;
            }
        }
    }
    Some((
        a.spi.clone(),
        Chosen {
            encr,
            integ,
            prf,
            ke,
            esn,
            addke,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::InTransform;

    fn to_in(o: &[OutProposal]) -> Vec<InProposal> {
        o.iter()
            .map(|p| InProposal {
                num: p.num,
                protocol: p.protocol,
                spi: p.spi.clone(),
                transforms: p
                    .transforms
                    .iter()
                    .map(|&(ty, id, kl)| InTransform {
                        ty,
                        id,
                        key_len: kl,
                        unknown_attr: false,
                    })
                    .collect(),
            })
            .collect()
    }

    const P: &CryptoProvider = &ipsec_crypto_rustcrypto::PROVIDER;

    #[test]
    fn responder_prefers_its_own_order() {
        let init = Proposal::parse_list(
            ProposalKind::Ike,
            "aes128gcm16-prfsha256-x25519,aes256gcm16-prfsha384-ecp384",
        )
        .unwrap();
        let resp = Proposal::parse_list(
            ProposalKind::Ike,
            "aes256gcm16-prfsha384-ecp384,aes128gcm16-prfsha256-x25519",
        )
        .unwrap();
        let o = offer(&init, ProposalKind::Ike, P, &[], true);
        assert_eq!(o.len(), 2);
        let (num, _, c) = choose(
            &resp,
            ProposalKind::Ike,
            &to_in(&o),
            P,
            KeMode::Required {
                hint: None,
                addke: true,
            },
        )
        .unwrap();
        assert_eq!(num, 2);
        assert_eq!(c.suite(ProposalKind::Ike), "aes256gcm16-prfsha384-ecp384");
        let ans = c.answer(ProposalKind::Ike, num, Vec::new());
        let (_, back) = accept_answer(&o, ProposalKind::Ike, &to_in(&[ans]), true).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn key_length_must_match() {
        let init = Proposal::parse_list(ProposalKind::Esp, "aes128-sha256").unwrap();
        let resp = Proposal::parse_list(ProposalKind::Esp, "aes256-sha256").unwrap();
        let o = offer(&init, ProposalKind::Esp, P, &[1, 2, 3, 4], false);
        assert!(choose(&resp, ProposalKind::Esp, &to_in(&o), P, KeMode::Ignore).is_none());
        let c = choose(&init, ProposalKind::Esp, &to_in(&o), P, KeMode::Ignore).unwrap();
        assert_eq!(c.1, [1, 2, 3, 4]);
        assert_eq!(c.2.suite(ProposalKind::Esp), "aes128-sha256");
    }

    #[test]
    fn ke_hint_and_pfs() {
        let init =
            Proposal::parse_list(ProposalKind::Ike, "aes128gcm16-prfsha256-x25519-ecp256").unwrap();
        let o = offer(&init, ProposalKind::Ike, P, &[], true);
        let c = choose(
            &init,
            ProposalKind::Ike,
            &to_in(&o),
            P,
            KeMode::Required {
                hint: Some(KeId::ECP_256),
                addke: true,
            },
        )
        .unwrap();
        assert_eq!(c.2.ke.unwrap().id, KeId::ECP_256);
        let esp_pfs = Proposal::parse_list(ProposalKind::Esp, "aes128gcm16-x25519").unwrap();
        let esp = Proposal::parse_list(ProposalKind::Esp, "aes128gcm16").unwrap();
        let o = offer(&esp_pfs, ProposalKind::Esp, P, &[0; 4], true);
        assert!(choose(
            &esp,
            ProposalKind::Esp,
            &to_in(&o),
            P,
            KeMode::Optional { hint: None }
        )
        .is_none());
        let c = choose(
            &esp_pfs,
            ProposalKind::Esp,
            &to_in(&o),
            P,
            KeMode::Optional { hint: None },
        )
        .unwrap();
        assert_eq!(c.2.suite(ProposalKind::Esp), "aes128gcm16-x25519");
    }
}
