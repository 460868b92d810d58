//! EAP in IKE_AUTH (RFC 7296 §2.16), both roles.
//!
//! ```text
//! Initiator                               Responder
//! HDR, SK {IDi, [CERTREQ,] [IDr,] SA, TSi, TSr, [CP(CFG_REQUEST)]}  (no AUTH)  -->
//!                     <--  HDR, SK {IDr, [CERT,] AUTH, EAP(Request)}
//! HDR, SK {EAP(Response)}  -->
//!                     <--  HDR, SK {EAP(Request)}          ... as many rounds as the method takes
//!                     <--  HDR, SK {EAP(Success)}
//! HDR, SK {AUTH}  -->                                      keyed with the MSK
//!                     <--  HDR, SK {AUTH, [CP(CFG_REPLY),] SA, TSi, TSr}
//! ```
//!
//! The AUTH payloads after EAP-Success are `prf(prf(MSK, "Key Pad for IKEv2"),
//! <signed octets>)`, the PSK computation with the MSK as the key; a method that
//! makes no MSK uses SK_pi and SK_pr instead (RFC 7296 §2.16). The signed octets are
//! those of the first IKE_AUTH: each side's IKE_SA_INIT message, the other's nonce
//! and its ID payload of the first IKE_AUTH exchange. The methods themselves plug in
//! through [`crate::eap`]'s traits; EAP-Identity and Nak are run here.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use ipsec_core::Instant;
use ipsec_crypto::SecretBytes;
use ipsec_ike_wire::{AuthMethod, ExchangeType, IkeHeaderRepr, NotifyType};

use crate::config::{Identity, PeerAuth};
use crate::eap::{
    EapAuthenticator, EapCode, EapError, EapPacket, EapPeer, EapPeerMethod, EapServerMethod,
    EapType, EapVerdict,
};
use crate::error::{AuthFailure, CloseReason, Error, PeerMisbehaved};
use crate::event::ChildSaId;
use crate::inflight::Inflight;
use crate::keys;
use crate::msg::{InMsg, Out};
use crate::sa::auth::{
    cert_payloads, check_peer_auth, id_body, ExpectAuthReq, ExpectAuthResp, PeerOctets,
    ResponderDone,
};
use crate::sa::{IkeSa, State};
use crate::session::Session;
use crate::shared::{Path, Shared};
use crate::timers::{Timer, Timers};

/// Most EAP round trips one authentication may take: MSCHAPv2 needs three, EAP-TLS
/// a dozen with large certificates; more is a peer that never ends.
const MAX_ROUNDS: u8 = 50;

/// An EAP error as an authentication failure: a refused proof is
/// [`AuthFailure::EapFailed`], the rest [`AuthFailure::Eap`].
fn eap_failure(e: EapError) -> Error {
    match e {
        EapError::AuthenticationFailed => AuthFailure::EapFailed.into(),
        e => AuthFailure::Eap(e).into(),
    }
}

/// A response without the payload the step needs: the responder's error
/// notification if it sent one (it refused us), else a missing payload.
fn missing(m: &InMsg, payload: &'static str) -> Error {
    match m.error_notify() {
        Some(NotifyType::AUTHENTICATION_FAILED) => AuthFailure::RejectedByPeer.into(),
        Some(n) => Error::NotifyReceived(n),
        None => PeerMisbehaved::MissingPayload(payload).into(),
    }
}

/// `prf(prf(key, "Key Pad for IKEv2"), <signed octets>)` compared with `value` in
/// constant time.
fn check_msk_auth(expected: &SecretBytes, (method, value): &(AuthMethod, Vec<u8>)) -> bool {
    *method == AuthMethod::SHARED_KEY_MIC && *expected == SecretBytes::from_slice(value)
}

/// The initiator's side of the conversation, carried in [`ExpectAuthResp`].
pub(crate) struct EapClient {
    peer: Arc<dyn EapPeer>,
    /// The responder's identity and ID payload body, once its AUTH in the first
    /// IKE_AUTH response checked.
    responder: Option<(Identity, Vec<u8>)>,
    method: Option<Box<dyn EapPeerMethod>>,
    /// What our AUTH covers: our IKE_SA_INIT request and our ID payload body.
    init_request: Vec<u8>,
    idi: Vec<u8>,
    /// The MSK-keyed AUTH went out: the next response ends IKE_AUTH.
    auth_sent: bool,
    msk: Option<SecretBytes>,
    rounds: u8,
}

impl EapClient {
    pub(crate) fn new(peer: Arc<dyn EapPeer>, init_request: Vec<u8>, idi: Vec<u8>) -> Self {
        EapClient {
            peer,
            responder: None,
            method: None,
            init_request,
            idi,
            auth_sent: false,
            msk: None,
            rounds: 0,
        }
    }

    /// Our EAP identity.
    pub(crate) fn identity(&self) -> Vec<u8> {
        self.peer.identity()
    }
}

/// Where a responder's EAP conversation is.
enum Phase {
    /// EAP-Identity was asked for.
    Identity,
    /// The method runs.
    Method,
    /// EAP-Success went out; the initiator's AUTH comes next, keyed with this MSK
    /// (`None`: with SK_pi / SK_pr).
    Succeeded(Option<SecretBytes>),
}

/// Responder: authenticated ourselves, running EAP with the initiator.
pub(crate) struct EapServing {
    pub(crate) session: Session,
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// [`Timer::HalfOpen`]: the whole conversation must end by then.
    pub(crate) timers: Timers,
    child_id: ChildSaId,
    /// The first IKE_AUTH request: its SA, TS and CP payloads are answered at the end.
    first: InMsg,
    /// The identity the initiator claims (IDi) and its ID payload body.
    peer: Identity,
    idi: Vec<u8>,
    /// Our ID payload body.
    idr: Vec<u8>,
    int_auth: Vec<u8>,
    authenticator: Arc<dyn EapAuthenticator>,
    method: Option<Box<dyn EapServerMethod>>,
    /// The Identifier of our outstanding Request.
    identifier: u8,
    eap_identity: Option<Vec<u8>>,
    phase: Phase,
    rounds: u8,
}

/// What a responder answers an EAP round with.
enum Answer {
    /// Another Request of this type.
    Request(EapType, Vec<u8>),
    Success,
    Failure,
    /// The initiator's MSK AUTH checked; ours.
    Done(Out),
}

/// An EAP identity as an [`Identity`](Identity), for the address pool and
/// the events: `user@realm` as an RFC 822 name, other UTF-8 as an FQDN-typed name,
/// anything else as a key id (the bytes as they are).
pub(crate) fn identity_of(b: &[u8]) -> Identity {
    match core::str::from_utf8(b) {
        Ok(s) if s.contains('@') => Identity::Rfc822(s.into()),
        Ok(s) if !s.is_empty() => Identity::Fqdn(s.into()),
        _ => Identity::KeyId(b.to_vec()),
    }
}

impl IkeSa {
    /// Initiator: one IKE_AUTH response of an EAP authentication.
    pub(crate) fn eap_response(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        mut s: ExpectAuthResp,
        m: &InMsg,
    ) {
        let path = self.path;
        let step = (|| -> Result<Option<Identity>, Error> {
            let ExpectAuthResp {
                session,
                init_response,
                ni,
                nr,
                int_auth,
                eap,
                ..
            } = &mut s;
            let Some(c) = eap.as_deref_mut() else {
                return Err(PeerMisbehaved::UnexpectedMessage.into());
            };
            let prf = session.crypto.prf;
            if c.auth_sent {
                // The last response: the responder's AUTH keyed with the MSK.
                let auth = m.auth.as_ref().ok_or_else(|| missing(m, "AUTH"))?;
                let Some((peer_id, idr)) = c.responder.clone() else {
                    return Err(PeerMisbehaved::UnexpectedMessage.into());
                };
                let sk_pr = session.crypto.sk_pr.expose();
                let key = c.msk.as_ref().map_or(sk_pr, |k| k.expose());
                let want = keys::psk_auth(prf, key, init_response, ni, sk_pr, &idr, int_auth)?;
                if !check_msk_auth(&want, auth) {
                    return Err(AuthFailure::EapFailed.into());
                }
                return Ok(Some(peer_id));
            }
            if c.responder.is_none() {
                // The first response: the responder proves itself before EAP starts.
                let auth = m.auth.as_ref().ok_or_else(|| missing(m, "AUTH"))?;
                let id = m.idr.as_ref().ok_or_else(|| missing(m, "IDr"))?;
                let peer_id = check_peer_auth(
                    cx,
                    prf,
                    now,
                    id,
                    (auth.0, &auth.1),
                    &m.certs,
                    PeerOctets {
                        message: init_response,
                        nonce: ni,
                        sk_p: session.crypto.sk_pr.expose(),
                        int_auth,
                    },
                )?;
                c.responder = Some((peer_id, id.2.clone()));
            }
            let bytes = m.eap.as_ref().ok_or_else(|| missing(m, "EAP"))?;
            let p = EapPacket::parse(bytes).map_err(eap_failure)?;
            c.rounds = c.rounds.saturating_add(1);
            if c.rounds > MAX_ROUNDS {
                return Err(eap_failure(EapError::Malformed));
            }
            let rng = cx.provider.secure_random;
            let out = match (p.code, p.ty) {
                (EapCode::REQUEST, Some(ty)) => {
                    let (rty, data) = match ty {
                        EapType::IDENTITY => (ty, c.peer.identity()),
                        EapType::NOTIFICATION => (ty, Vec::new()),
                        EapType::NAK => return Err(eap_failure(EapError::Malformed)),
                        t => {
                            if c.method.as_ref().map(|x| x.method()) != Some(t) {
                                c.method = c.peer.start(t);
                            }
                            match c.method.as_mut() {
                                Some(x) => (t, x.process(rng, p.data).map_err(eap_failure)?),
                                // RFC 3748 §5.3.1: a Nak listing the methods we do.
                                None => {
                                    (EapType::NAK, c.peer.methods().iter().map(|t| t.0).collect())
                                }
                            }
                        }
                    };
                    let reply = EapPacket {
                        code: EapCode::RESPONSE,
                        identifier: p.identifier,
                        ty: Some(rty),
                        data: &data,
                    };
                    Out::Eap(reply.to_vec().map_err(eap_failure)?)
                }
                (EapCode::SUCCESS, _) => {
                    // A Success before a method ran to its end (or after it failed)
                    // would skip the authenticator's proof.
                    let Some(method) = c.method.as_ref().filter(|m| m.succeeded()) else {
                        return Err(AuthFailure::EapFailed.into());
                    };
                    c.msk = method.msk();
                    let sk_pi = session.crypto.sk_pi.expose();
                    let key = c.msk.as_ref().map_or(sk_pi, |k| k.expose());
                    let auth =
                        keys::psk_auth(prf, key, &c.init_request, nr, sk_pi, &c.idi, int_auth)?;
                    c.auth_sent = true;
                    Out::Auth(AuthMethod::SHARED_KEY_MIC, auth.expose().to_vec())
                }
                (EapCode::FAILURE, _) => return Err(AuthFailure::EapFailed.into()),
                _ => return Err(eap_failure(EapError::UnexpectedCode(p.code.0))),
            };
            session.request(
                cx,
                now,
                path,
                ExchangeType::IKE_AUTH,
                &[out],
                Inflight::Auth,
            )?;
            Ok(None)
        })();
        match step {
            Ok(None) => self.state = State::AuthSent(Box::new(s)),
            Ok(Some(peer_id)) => self.auth_done(cx, now, s, m, peer_id, None),
            Err(e) => self.auth_failed(cx, now, s, e),
        }
    }

    /// Responder: the first IKE_AUTH request came without AUTH and the initiator's
    /// configuration authenticates it with EAP: answer with our identity, AUTH
    /// (`mine`) and the first EAP Request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn eap_start(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        s: Box<ExpectAuthReq>,
        h: &IkeHeaderRepr,
        m: &InMsg,
        mine: (AuthMethod, Vec<u8>),
        peer: Identity,
        int_auth: Vec<u8>,
    ) {
        let PeerAuth::Eap {
            authenticator,
            ask_identity,
        } = cx.config.peer_auth.clone()
        else {
            // auth_request starts EAP only for this configuration.
            self.state = State::InitReplied(s);
            self.close_with(cx, now, None);
            return;
        };
        let ExpectAuthReq {
            session,
            init_request,
            init_response,
            ni,
            nr,
            child_id,
            ..
        } = *s;
        let mut e = EapServing {
            session,
            init_request,
            init_response,
            ni,
            nr,
            timers: Timers::new().with(Timer::HalfOpen, now + cx.config.half_open_timeout),
            child_id,
            first: m.clone(),
            idi: m.idi.as_ref().map(|i| i.2.clone()).unwrap_or_default(),
            idr: id_body(&cx.config.local_id),
            peer,
            int_auth,
            authenticator,
            method: None,
            identifier: 0,
            eap_identity: None,
            phase: Phase::Identity,
            rounds: 0,
        };
        let mut byte = [0u8; 1];
        let _ = cx.provider.secure_random.fill(&mut byte);
        e.identifier = byte[0];
        let first = if ask_identity {
            Some(Answer::Request(EapType::IDENTITY, Vec::new()))
        } else {
            // The IDi is the EAP identity.
            let ident = e.peer.data();
            e.start_method(cx, ident).ok()
        };
        let mut out = alloc::vec![Out::IdR(
            cx.config.local_id.id_type(),
            cx.config.local_id.data()
        )];
        out.extend(cert_payloads(&cx.config));
        out.push(Out::Auth(mine.0, mine.1));
        let failed = !matches!(first, Some(Answer::Request(..)));
        out.push(e.packet(first.unwrap_or(Answer::Failure)));
        e.session.respond(cx, path, h, &out);
        self.state = State::EapServing(Box::new(e));
        if failed {
            self.close_with(
                cx,
                now,
                Some(CloseReason::from_error(AuthFailure::EapFailed.into())),
            );
        }
    }

    /// Responder: one IKE_AUTH request of the EAP conversation.
    pub(crate) fn eap_request(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        mut s: Box<EapServing>,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) {
        self.path = path;
        let answer = s.step(cx, m);
        match answer {
            Ok(Answer::Done(auth)) => {
                let EapServing {
                    session,
                    ni,
                    nr,
                    child_id,
                    first,
                    peer,
                    eap_identity,
                    ..
                } = *s;
                let eap_identity = eap_identity.or_else(|| Some(peer.data()));
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
                        m: &first,
                        out: alloc::vec![auth],
                        peer_id: peer,
                        eap_identity,
                    },
                );
            }
            Ok(a) => {
                let failed = matches!(a, Answer::Failure);
                let out = s.packet(a);
                s.session.respond(cx, path, h, &[out]);
                self.state = State::EapServing(s);
                if failed {
                    self.close_with(
                        cx,
                        now,
                        Some(CloseReason::from_error(AuthFailure::EapFailed.into())),
                    );
                }
            }
            Err(e) => {
                s.session
                    .respond_error(cx, path, h, NotifyType::AUTHENTICATION_FAILED);
                self.state = State::EapServing(s);
                self.close_with(cx, now, Some(CloseReason::from_error(e)));
            }
        }
    }
}

impl EapServing {
    /// Starts the method for `identity`; `Err` when the authenticator refuses it.
    fn start_method(&mut self, cx: &Shared, identity: Vec<u8>) -> Result<Answer, Error> {
        let mut method = self
            .authenticator
            .start(&identity)
            .ok_or(Error::AuthenticationFailed(AuthFailure::EapFailed))?;
        let data = method
            .initiate(cx.provider.secure_random)
            .map_err(eap_failure)?;
        let ty = method.method();
        self.method = Some(method);
        self.eap_identity = Some(identity);
        self.phase = Phase::Method;
        Ok(Answer::Request(ty, data))
    }

    /// The EAP payload of `a`: a Request gets the next Identifier.
    fn packet(&mut self, a: Answer) -> Out {
        let (code, ty, data) = match a {
            Answer::Request(t, d) => (EapCode::REQUEST, Some(t), d),
            Answer::Success => (EapCode::SUCCESS, None, Vec::new()),
            Answer::Failure | Answer::Done(_) => (EapCode::FAILURE, None, Vec::new()),
        };
        if code == EapCode::REQUEST {
            self.identifier = self.identifier.wrapping_add(1);
        }
        let p = EapPacket {
            code,
            identifier: self.identifier,
            ty,
            data: &data,
        };
        // A Request longer than 65535 bytes is a method bug: fail the peer instead.
        Out::Eap(
            p.to_vec()
                .unwrap_or_else(|_| alloc::vec![EapCode::FAILURE.0, self.identifier, 0, 4]),
        )
    }

    /// The answer to one request of the conversation.
    fn step(&mut self, cx: &Shared, m: &InMsg) -> Result<Answer, Error> {
        let prf = self.session.crypto.prf;
        if let Phase::Succeeded(msk) = &self.phase {
            let auth = m
                .auth
                .as_ref()
                .ok_or(PeerMisbehaved::MissingPayload("AUTH"))?;
            let sk_pi = self.session.crypto.sk_pi.expose();
            let key = msk.as_ref().map_or(sk_pi, |k| k.expose());
            let want = keys::psk_auth(
                prf,
                key,
                &self.init_request,
                &self.nr,
                sk_pi,
                &self.idi,
                &self.int_auth,
            )?;
            if !check_msk_auth(&want, auth) {
                return Err(AuthFailure::EapFailed.into());
            }
            let sk_pr = self.session.crypto.sk_pr.expose();
            let key = msk.as_ref().map_or(sk_pr, |k| k.expose());
            let mine = keys::psk_auth(
                prf,
                key,
                &self.init_response,
                &self.ni,
                sk_pr,
                &self.idr,
                &self.int_auth,
            )?;
            return Ok(Answer::Done(Out::Auth(
                AuthMethod::SHARED_KEY_MIC,
                mine.expose().to_vec(),
            )));
        }
        let bytes = m
            .eap
            .as_ref()
            .ok_or(PeerMisbehaved::MissingPayload("EAP"))?;
        let p = EapPacket::parse(bytes).map_err(eap_failure)?;
        self.rounds = self.rounds.saturating_add(1);
        if self.rounds > MAX_ROUNDS {
            return Err(eap_failure(EapError::Malformed));
        }
        let (EapCode::RESPONSE, Some(ty)) = (p.code, p.ty) else {
            return Err(eap_failure(EapError::UnexpectedCode(p.code.0)));
        };
        if p.identifier != self.identifier {
            return Err(eap_failure(EapError::Malformed));
        }
        if ty == EapType::NAK {
            // The peer does not do our method (RFC 3748 §5.3.1); we offer no other.
            return Ok(Answer::Failure);
        }
        match self.phase {
            Phase::Identity => {
                if ty != EapType::IDENTITY {
                    return Err(eap_failure(EapError::Malformed));
                }
                match self.start_method(cx, p.data.to_vec()) {
                    Ok(a) => Ok(a),
                    Err(_) => Ok(Answer::Failure),
                }
            }
            Phase::Method => {
                let Some(method) = self.method.as_mut() else {
                    return Ok(Answer::Failure);
                };
                if ty != method.method() {
                    return Err(eap_failure(EapError::Malformed));
                }
                match method.process(cx.provider.secure_random, p.data) {
                    EapVerdict::Request(d) => Ok(Answer::Request(ty, d)),
                    EapVerdict::Success => {
                        self.phase = Phase::Succeeded(method.msk());
                        Ok(Answer::Success)
                    }
                    EapVerdict::Failure => Ok(Answer::Failure),
                }
            }
            Phase::Succeeded(_) => Ok(Answer::Failure),
        }
    }
}
