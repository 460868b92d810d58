//! IKE_AUTH (RFC 7296 §1.2, §2.15), both roles: PSK or RFC 7427 signature
//! authentication, the identities and the first Child SA; its success makes the SA
//! [`Established`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::Instant;
use ipsec_crypto::{CryptoError, PrfAlgorithm, ProposalKind, SecretBytes};
use ipsec_ike_wire::{AuthMethod, ExchangeType, IdType, IkeHeaderRepr, NotifyType};

use crate::config::{Config, Identity, LocalAuth, PeerAuth, PeerHello, Ppk, ResolvesPeer};
use crate::error::{ApiMisuse, AuthFailure, CloseReason, Error, PeerIncompatible, PeerMisbehaved};
use crate::event::{ChildSaId, Event};
use crate::inflight::{ChildReq, Inflight};
use crate::keys;
use crate::msg::{InMsg, Out};
use crate::sa::auth::eap::EapClient;
use crate::sa::child_sa::{ChildRequest, ChildResponse};
use crate::sa::established::{Established, Pending};
use crate::sa::{Closed, IkeSa, State};
use crate::session::Session;
use crate::shared::{Path, Shared};
use crate::sigauth;
use crate::timers::{Timer, Timers};

pub(crate) mod eap;

/// PPK_ID type of a PPK_IDENTITY notification: a fixed PPK_ID (RFC 8784 §3).
pub(crate) const PPK_ID_FIXED: u8 = 2;

/// Initiator: IKE_AUTH sent, waiting for its response.
pub(crate) struct ExpectAuthResp {
    pub(crate) session: Session,
    pub(crate) init_response: Vec<u8>,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    pub(crate) child: ChildReq,
    /// The IntAuth octets our AUTH covered (RFC 9242 §3.3.2), empty without
    /// IKE_INTERMEDIATE; the responder's covers the same.
    pub(crate) int_auth: Vec<u8>,
    /// The PPK our AUTH used (RFC 8784); the responder's answer says whether it did.
    pub(crate) ppk: Option<Ppk>,
    /// With [`LocalAuth::Eap`]: the EAP conversation, over as many IKE_AUTH
    /// exchanges as it takes (RFC 7296 §2.16).
    pub(crate) eap: Option<Box<EapClient>>,
}

/// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
pub(crate) struct ExpectAuthReq {
    pub(crate) session: Session,
    pub(crate) init_request: Vec<u8>,
    pub(crate) init_response: Vec<u8>,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    /// [`Timer::HalfOpen`].
    pub(crate) timers: Timers,
    pub(crate) child_id: ChildSaId,
    /// The hash algorithms the initiator announced in SIGNATURE_HASH_ALGORITHMS
    /// (RFC 7427 §4); empty when it sent none.
    pub(crate) peer_hashes: Vec<u16>,
    /// The additional key exchanges (RFC 9370) still to run in IKE_INTERMEDIATE
    /// exchanges before IKE_AUTH, in order.
    pub(crate) additional: Vec<&'static ipsec_crypto::suites::KeDesc>,
    /// Both sides sent USE_PPK (RFC 8784 §3).
    pub(crate) ppk: bool,
}

/// What an AUTH value signs besides its ID payload (RFC 7296 §2.15): the first
/// message its sender sent, the other side's nonce, and the sender's SK_p.
pub(crate) struct PeerOctets<'a> {
    pub(crate) message: &'a [u8],
    pub(crate) nonce: &'a [u8],
    pub(crate) sk_p: &'a [u8],
    /// `IntAuth_iN | IntAuth_rN | IKE_AUTH_MID` after IKE_INTERMEDIATE exchanges
    /// (RFC 9242 §3.3.2), empty without them.
    pub(crate) int_auth: &'a [u8],
}

impl PeerOctets<'_> {
    /// `prf(prf(PSK, "Key Pad for IKEv2"), <these octets and the ID payload>)`.
    fn psk_mac(
        &self,
        cx: &Shared,
        prf: &dyn PrfAlgorithm,
        id_body: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        keys::psk_auth(
            prf,
            cx.config.psk.expose(),
            self.message,
            self.nonce,
            self.sk_p,
            id_body,
            self.int_auth,
        )
    }

    /// The octets a signature covers: these and `prf(SK_p, <ID payload>)`.
    fn to_sign(&self, prf: &dyn PrfAlgorithm, id_body: &[u8]) -> Result<Vec<u8>, CryptoError> {
        keys::signed_octets(
            prf,
            self.message,
            self.nonce,
            self.sk_p,
            id_body,
            self.int_auth,
        )
    }
}

/// The peer's ID, CERT and AUTH payloads checked, the same for both roles (RFC 7296
/// §2.15): the identity is the configured `remote_id` if there is one, the method is
/// one `peer_auth` allows, and the value is either `prf(prf(PSK, "Key Pad for
/// IKEv2"), <the peer's signed octets>)`, compared in constant time, or a signature
/// of the signed octets under the configured public key or that of the peer's
/// certificate, once the certificate verifier has accepted it for this identity.
/// Returns the identity.
pub(crate) fn check_peer_auth(
    cx: &Shared,
    prf: &dyn PrfAlgorithm,
    now: Instant,
    (id_type, id_data, id_body): &(IdType, Vec<u8>, Vec<u8>),
    (method, value): (AuthMethod, &[u8]),
    certs: &[Vec<u8>],
    signed: PeerOctets<'_>,
) -> Result<Identity, Error> {
    let peer_id = Identity::from_wire_or_other(*id_type, id_data);
    if let Some(want) = &cx.config.remote_id {
        // from_wire_or_other: a DN (or other uninterpreted type) compares by its bytes.
        if peer_id != *want {
            return Err(AuthFailure::IdentityMismatch.into());
        }
    }
    let signature_method = matches!(
        method,
        AuthMethod::DIGITAL_SIGNATURE
            | AuthMethod::RSA_SIG
            | AuthMethod::ECDSA_SHA256_P256
            | AuthMethod::ECDSA_SHA384_P384
            | AuthMethod::ECDSA_SHA512_P521
    );
    let spki = match (&cx.config.peer_auth, method) {
        (PeerAuth::Psk, AuthMethod::SHARED_KEY_MIC) => {
            if signed.psk_mac(cx, prf, id_body)? != SecretBytes::from_slice(value) {
                return Err(AuthFailure::WrongSharedKey.into());
            }
            return Ok(peer_id);
        }
        (PeerAuth::PublicKey { spki_der }, _) if signature_method => spki_der.clone(),
        (PeerAuth::Certificate { verifier }, _) if signature_method => {
            if certs.is_empty() {
                return Err(AuthFailure::MissingCertificate.into());
            }
            let chain: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
            verifier.verify(&chain, &peer_id, now)?
        }
        _ => return Err(AuthFailure::MethodNotAllowed(method).into()),
    };
    let octets = signed.to_sign(prf, id_body)?;
    sigauth::verify(cx.provider, &spki, method, value, &octets)?;
    Ok(peer_id)
}

/// Our CERT payloads: the configured chain, when we sign.
pub(crate) fn cert_payloads(config: &Config) -> Vec<Out> {
    if matches!(config.auth, LocalAuth::Signature { .. }) {
        config.local_certs.iter().cloned().map(Out::Cert).collect()
    } else {
        Vec::new()
    }
}

/// Our CERTREQ payload (RFC 7296 §3.7), when the peer authenticates with
/// certificates: the hashes of the verifier's trust anchors (possibly none, which
/// still asks for a certificate).
pub(crate) fn certreq_payload(config: &Config) -> Option<Out> {
    config
        .certreq_hashes()
        .map(|h| Out::CertReq(crate::cert::certreq_data(&h)))
}

/// Our AUTH payload (RFC 7296 §2.15): the PSK MIC, or with [`LocalAuth::Signature`]
/// an RFC 7427 signature of `signed` (our first message, the peer's nonce, our SK_p)
/// and our ID payload `id_body`, if the peer announced the scheme's hash in
/// `peer_hashes`.
pub(crate) fn our_auth(
    cx: &Shared,
    prf: &dyn PrfAlgorithm,
    signed: PeerOctets<'_>,
    id_body: &[u8],
    peer_hashes: &[u16],
) -> Result<(AuthMethod, Vec<u8>), Error> {
    match &cx.config.auth {
        LocalAuth::Psk => {
            let mac = signed.psk_mac(cx, prf, id_body)?;
            Ok((AuthMethod::SHARED_KEY_MIC, mac.expose().to_vec()))
        }
        LocalAuth::Signature { signer, scheme } => {
            let hash = sigauth::hash_algorithm(*scheme).ok_or(CryptoError::Unsupported)?;
            if !peer_hashes.contains(&hash) {
                return Err(PeerIncompatible::SignatureHashNotAnnounced.into());
            }
            let octets = signed.to_sign(prf, id_body)?;
            let sig = signer.sign(cx.provider.secure_random, &octets)?;
            let data = sigauth::encode(*scheme, &sig).ok_or(CryptoError::Unsupported)?;
            Ok((AuthMethod::DIGITAL_SIGNATURE, data))
        }
        // Our AUTH with EAP is keyed with the MSK, after EAP-Success (sa/eap.rs).
        LocalAuth::Eap { .. } => Err(ApiMisuse::EapRole.into()),
    }
}

/// Responder: the resolver's configuration for the peer that claims `idi` becomes
/// this SA's (`cx.config`, which the endpoint keeps for the SA), before its AUTH is
/// checked with that configuration's PSK and `remote_id`.
fn resolve_peer(
    cx: &mut Shared,
    resolver: &dyn ResolvesPeer,
    path: Path,
    (idi_type, idi_data, _): &(IdType, Vec<u8>, Vec<u8>),
    idr: Option<&(IdType, Vec<u8>, Vec<u8>)>,
) -> Result<(), Error> {
    let peer_id = Identity::from_wire_or_other(*idi_type, idi_data);
    let requested = idr.map(|(t, d, _)| Identity::from_wire_or_other(*t, d));
    let hello = PeerHello {
        peer_id: &peer_id,
        requested_id: requested.as_ref(),
        local: path.local,
        remote: path.remote,
    };
    cx.config = resolver
        .resolve(&hello)
        .ok_or(Error::AuthenticationFailed(AuthFailure::UnknownPeer))?;
    Ok(())
}

pub(crate) fn id_body(id: &Identity) -> Vec<u8> {
    let mut b = alloc::vec![id.id_type().0, 0, 0, 0];
    b.extend_from_slice(&id.data());
    b
}

impl IkeSa {
    pub(crate) fn auth_response(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        s: Box<ExpectAuthResp>,
        m: &InMsg,
    ) {
        let mut s = *s;
        if s.eap.is_some() {
            return self.eap_response(cx, now, s, m);
        }
        // RFC 8784 §3: the responder used our PPK if it answered PPK_IDENTITY.
        let used_ppk = s.ppk.take().filter(|_| m.has(NotifyType::PPK_IDENTITY));
        let checked = (|| -> Result<Identity, Error> {
            if used_ppk.is_none() && cx.config.ppk.as_ref().is_some_and(|p| p.required) {
                return Err(PeerIncompatible::PpkRequired.into());
            }
            let sk_pr_ppk = used_ppk
                .as_ref()
                .map(|p| {
                    keys::ppk_key(
                        s.session.crypto.prf,
                        p.key.expose(),
                        s.session.crypto.sk_pr.expose(),
                    )
                })
                .transpose()?;
            let Some((method, data)) = &m.auth else {
                return Err(match m.error_notify() {
                    Some(n) => Error::NotifyReceived(n),
                    None => PeerMisbehaved::MissingPayload("AUTH").into(),
                });
            };
            let id = m
                .idr
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("IDr"))?;
            check_peer_auth(
                cx,
                s.session.crypto.prf,
                now,
                id,
                (*method, data),
                &m.certs,
                PeerOctets {
                    message: &s.init_response,
                    nonce: &s.ni,
                    sk_p: sk_pr_ppk
                        .as_ref()
                        .map_or(s.session.crypto.sk_pr.expose(), |k| k.expose()),
                    int_auth: &s.int_auth,
                },
            )
        })();
        match checked {
            Ok(peer_id) => self.auth_done(cx, now, s, m, peer_id, used_ppk),
            Err(e) => self.auth_failed(cx, now, s, e),
        }
    }

    /// Initiator: IKE_AUTH failed (the responder's AUTH, or its refusal of ours).
    pub(crate) fn auth_failed(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        s: ExpectAuthResp,
        e: Error,
    ) {
        cx.child_spis.remove(&s.child.spi.0);
        let mut session = s.session;
        if matches!(e, Error::AuthenticationFailed(r) if r != AuthFailure::RejectedByPeer) {
            // We refuse the responder: tell it in an INFORMATIONAL of its own
            // (RFC 7296 §2.21.2 allows it), sent once and not retransmitted,
            // since the SA closes now.
            let _ = session.request(
                cx,
                now,
                self.path,
                ExchangeType::INFORMATIONAL,
                &[Out::notify(NotifyType::AUTHENTICATION_FAILED, &[])],
                Inflight::Liveness,
            );
        }
        self.state = State::Closed(Box::new(Closed {
            session: Some(session),
            timers: Timers::new().with(Timer::Linger, now),
        }));
        cx.event(
            self.handle,
            Event::IkeSaClosed {
                reason: CloseReason::from_error(e),
            },
        );
    }

    /// Initiator: the responder is authenticated (`peer_id`), the IKE SA is
    /// established; the first Child SA and the virtual addresses (RFC 7296 §3.15)
    /// come from the last IKE_AUTH response `m`.
    pub(crate) fn auth_done(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        s: ExpectAuthResp,
        m: &InMsg,
        peer_id: Identity,
        used_ppk: Option<Ppk>,
    ) {
        // RFC 5685 §6: the gateway, now authenticated, may send us elsewhere.
        let Some(s) = self.auth_redirected(cx, now, s, m) else {
            return;
        };
        let ExpectAuthResp {
            mut session,
            ni,
            nr,
            child,
            eap,
            ..
        } = s;
        if let Some(p) = &used_ppk {
            // SK_d', SK_pi', SK_pr' from now on (RFC 8784 §3). Cannot fail: the PRF
            // took these keys before.
            let _ = session.crypto.apply_ppk(p.key.expose());
        }
        let lease = crate::cp::parse_reply(m);
        self.vips = lease.addresses.clone();
        cx.event(
            self.handle,
            Event::IkeSaEstablished {
                local_spi: session.local_spi(),
                remote_spi: session.remote_spi(),
                suite: session.crypto.chosen.suite(ProposalKind::Ike),
                nat: self.nat,
                peer_id,
                eap_identity: eap.map(|e| e.identity()),
                virtual_ips: lease.addresses,
                attributes: lease.attributes,
            },
        );
        let mut e = Established::new(cx, now, session, self.nat);
        e.mobike = crate::sa::mobike::negotiated(cx, m, true);
        let id = child.id;
        let spi = child.spi;
        let answered = m.sa.is_some();
        match self.child_response(
            cx,
            now,
            ChildResponse {
                crypto: &e.current.crypto,
                req: child,
                ni: &ni,
                init_nr: Some(&nr),
                m,
                extra: &[],
            },
        ) {
            Ok((c, ev)) => {
                cx.event(self.handle, ev);
                e.children.push(c);
            }
            Err(err) => {
                cx.child_spis.remove(&spi.0);
                cx.event(self.handle, Event::ChildSaFailed { id, error: err });
                if answered {
                    // The responder set up its half; delete it (RFC 7296 §2.9).
                    e.queue.push_back(Pending::DeleteRefused(spi));
                    self.kick(&mut e, cx, now);
                }
            }
        }
        self.state = State::Established(Box::new(e));
    }

    pub(crate) fn auth_request(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        mut s: Box<ExpectAuthReq>,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) {
        let int_auth = s
            .session
            .int_auth
            .as_ref()
            .map(|ia| ia.octets(h.message_id))
            .unwrap_or_default();
        let mut ppk: Option<Ppk> = None;
        let verified = (|| -> Result<Verified, Error> {
            if !s.additional.is_empty() {
                // IKE_AUTH before every additional key exchange ran (RFC 9370 §2.2.2).
                return Err(PeerMisbehaved::BadKeyExchange.into());
            }
            let id = m
                .idi
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("IDi"))?;
            if let Some(resolver) = cx.resolver.clone() {
                resolve_peer(cx, &*resolver, path, id, m.idr.as_ref())?;
            }
            let idr = id_body(&cx.config.local_id);
            let prf = s.session.crypto.prf;
            let Some((method, data)) = m.auth.as_ref() else {
                // No AUTH: the initiator wants EAP (RFC 7296 §2.16), if we do.
                let PeerAuth::Eap { .. } = &cx.config.peer_auth else {
                    return Err(PeerMisbehaved::MissingPayload("AUTH").into());
                };
                // No PPK with EAP (the initiator refuses the combination too): a
                // required one cannot be skipped by leaving out AUTH.
                if cx.config.ppk.as_ref().is_some_and(|p| p.required) {
                    return Err(PeerIncompatible::PpkRequired.into());
                }
                let peer = Identity::from_wire_or_other(id.0, &id.1);
                if let Some(want) = &cx.config.remote_id {
                    if peer != *want {
                        return Err(AuthFailure::IdentityMismatch.into());
                    }
                }
                let mine = our_auth(
                    cx,
                    prf,
                    PeerOctets {
                        message: &s.init_response,
                        nonce: &s.ni,
                        sk_p: s.session.crypto.sk_pr.expose(),
                        int_auth: &int_auth,
                    },
                    &idr,
                    &s.peer_hashes,
                )?;
                return Ok(Verified::StartEap { mine, peer });
            };
            // RFC 8784 §3: use the PPK the initiator names if it is ours; else its
            // NO_PPK_AUTH, unless ours is required.
            let named = m
                .notify(NotifyType::PPK_IDENTITY)
                .and_then(|n| n.data.split_first())
                .filter(|(t, _)| **t == PPK_ID_FIXED)
                .map(|(_, id)| id.to_vec());
            ppk = cx
                .config
                .ppk
                .clone()
                .filter(|p| s.ppk && named.as_deref() == Some(p.id.as_slice()));
            if ppk.is_none() && cx.config.ppk.as_ref().is_some_and(|p| p.required) {
                return Err(PeerIncompatible::PpkRequired.into());
            }
            let auth_data = match (&ppk, &named) {
                (None, Some(_)) => {
                    &m.notify(NotifyType::NO_PPK_AUTH)
                        .ok_or(Error::AuthenticationFailed(AuthFailure::WrongSharedKey))?
                        .data
                }
                _ => data,
            };
            let ppk_key = |k: &[u8]| -> Result<Option<SecretBytes>, CryptoError> {
                ppk.as_ref()
                    .map(|p| keys::ppk_key(prf, p.key.expose(), k))
                    .transpose()
            };
            let sk_pi = ppk_key(s.session.crypto.sk_pi.expose())?;
            let sk_pr = ppk_key(s.session.crypto.sk_pr.expose())?;
            let peer = check_peer_auth(
                cx,
                prf,
                now,
                id,
                (*method, auth_data),
                &m.certs,
                PeerOctets {
                    message: &s.init_request,
                    nonce: &s.nr,
                    sk_p: sk_pi
                        .as_ref()
                        .map_or(s.session.crypto.sk_pi.expose(), |k| k.expose()),
                    int_auth: &int_auth,
                },
            )?;
            let mine = our_auth(
                cx,
                s.session.crypto.prf,
                PeerOctets {
                    message: &s.init_response,
                    nonce: &s.ni,
                    sk_p: sk_pr
                        .as_ref()
                        .map_or(s.session.crypto.sk_pr.expose(), |k| k.expose()),
                    int_auth: &int_auth,
                },
                &idr,
                &s.peer_hashes,
            )?;
            Ok(Verified::Done { mine, peer })
        })();
        let (auth, peer_id) = match verified {
            Ok(Verified::Done { mine, peer }) => (mine, peer),
            Ok(Verified::StartEap { mine, peer }) => {
                self.path = path;
                return self.eap_start(cx, now, path, s, h, m, mine, peer, int_auth);
            }
            Err(e) => {
                // RFC 7296 §2.21.2: the answer is AUTHENTICATION_FAILED and the SA ends.
                let n = match e {
                    Error::PeerMisbehaved(PeerMisbehaved::MissingPayload(_)) => {
                        NotifyType::INVALID_SYNTAX
                    }
                    _ => NotifyType::AUTHENTICATION_FAILED,
                };
                // The local reason, for the event: which check failed, or which way
                // our own configuration cannot answer this peer.
                let reason = CloseReason::from_error(e);
                s.session.respond_error(cx, path, h, n);
                self.state = State::InitReplied(s);
                self.close_with(cx, now, Some(reason));
                return;
            }
        };
        // The initiator may have moved to port 4500: answer and keep using its path.
        self.path = path;
        let mut out = alloc::vec![Out::IdR(
            cx.config.local_id.id_type(),
            cx.config.local_id.data()
        )];
        out.extend(cert_payloads(&cx.config));
        out.push(Out::Auth(auth.0, auth.1));
        if ppk.is_some() {
            // We used the initiator's PPK (RFC 8784 §3).
            out.push(Out::notify(NotifyType::PPK_IDENTITY, &[]));
        }
        let ExpectAuthReq {
            mut session,
            ni,
            nr,
            child_id,
            ..
        } = *s;
        if let Some(p) = &ppk {
            // SK_d', SK_pi', SK_pr' from now on; the PRF took these keys before.
            let _ = session.crypto.apply_ppk(p.key.expose());
        }
        self.responder_done(
            cx,
            now,
            ResponderDone {
                path,
                h,
                session,
                ni: &ni,
                nr: &nr,
                child_id,
                m,
                out,
                peer_id,
                eap_identity: None,
            },
        );
    }

    /// Responder: the initiator is authenticated; answers the last IKE_AUTH request
    /// with `out` (our AUTH and what goes with it), the CP reply for the virtual
    /// addresses the first request `m` asked for (RFC 7296 §3.15) and the first
    /// Child SA of `m`, and establishes the IKE SA.
    pub(crate) fn responder_done(&mut self, cx: &mut Shared, now: Instant, d: ResponderDone<'_>) {
        let ResponderDone {
            path,
            h,
            mut session,
            ni,
            nr,
            child_id,
            m,
            mut out,
            peer_id,
            eap_identity,
        } = d;
        // RFC 5685 §6: a redirected peer gets REDIRECT instead of a Child SA or a lease.
        let redirect = self.auth_redirect(cx, &peer_id, path);
        out.extend(redirect.as_ref().map(|(_, n)| n.clone()));
        // Virtual addresses: leased for the EAP identity if there is one.
        let mut lease_ok = redirect.is_none();
        if let (true, Some(requested), Some(pool)) =
            (lease_ok, crate::cp::requested(m), cx.config.pool.clone())
        {
            let holder = eap_identity
                .as_deref()
                .map_or_else(|| peer_id.clone(), eap::identity_of);
            let lease = pool.acquire(&holder, &requested);
            if lease.addresses.is_empty() {
                // RFC 7296 §3.15.4: no address for it, and no Child SA either.
                out.push(Out::notify(NotifyType::INTERNAL_ADDRESS_FAILURE, &[]));
                lease_ok = false;
            } else {
                out.push(crate::cp::reply(&lease));
                self.vips = lease.addresses;
                self.lease = Some((pool, holder));
            }
        }
        let child = if m.sa.is_some() && lease_ok {
            Some(self.child_request_as_responder(
                cx,
                now,
                ChildRequest {
                    crypto: &session.crypto,
                    m,
                    id: child_id,
                    ke: None,
                    ni,
                    nr,
                },
            ))
        } else {
            None
        };
        match &child {
            Some(Ok((_, _, answer))) => out.extend(answer.iter().cloned()),
            Some(Err((n, d))) => out.push(Out::notify(*n, d)),
            None => {}
        }
        out.extend(crate::sa::mobike::answer(cx, m));
        session.respond(cx, path, h, &out);
        cx.event(
            self.handle,
            Event::IkeSaEstablished {
                local_spi: session.local_spi(),
                remote_spi: session.remote_spi(),
                suite: session.crypto.chosen.suite(ProposalKind::Ike),
                nat: self.nat,
                peer_id,
                eap_identity,
                virtual_ips: self.vips.clone(),
                attributes: Vec::new(),
            },
        );
        let mut e = Established::new(cx, now, session, self.nat);
        e.mobike = crate::sa::mobike::negotiated(cx, m, false);
        if let Some((to, _)) = redirect {
            self.peer_redirected(&mut e, cx, now, to);
        }
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
}

/// What a responder's IKE_AUTH checks found.
enum Verified {
    /// The initiator is authenticated; `mine` is our AUTH.
    Done {
        mine: (AuthMethod, Vec<u8>),
        peer: Identity,
    },
    /// The initiator sent no AUTH and its configuration authenticates it with EAP;
    /// `mine` is our AUTH, `peer` the identity it claims.
    StartEap {
        mine: (AuthMethod, Vec<u8>),
        peer: Identity,
    },
}

/// The arguments of [`IkeSa::responder_done`].
pub(crate) struct ResponderDone<'a> {
    pub(crate) path: Path,
    /// The header of the request being answered.
    pub(crate) h: &'a IkeHeaderRepr,
    pub(crate) session: Session,
    pub(crate) ni: &'a [u8],
    pub(crate) nr: &'a [u8],
    pub(crate) child_id: ChildSaId,
    /// The first IKE_AUTH request: its SA, TS and CP payloads.
    pub(crate) m: &'a InMsg,
    /// What the answer carries before the CP and Child SA payloads.
    pub(crate) out: Vec<Out>,
    pub(crate) peer_id: Identity,
    pub(crate) eap_identity: Option<Vec<u8>>,
}
