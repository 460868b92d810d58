//! IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of RFC 9370,
//! both roles.
//!
//! After IKE_SA_INIT, each additional key exchange the responder chose (ADDKE1 to
//! ADDKE7, in that order, NONE skipped) runs in one IKE_INTERMEDIATE exchange: the
//! initiator's KE payload in the request, the responder's in the answer, both
//! protected by the keys of the step before. Each shared secret then updates every
//! IKE SA key (RFC 9370 §2.2.2):
//!
//! ```text
//! SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//! {SK_d(n) | SK_ai(n) | SK_ar(n) | SK_ei(n) | SK_er(n) | SK_pi(n) | SK_pr(n)}
//!             = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//! ```
//!
//! Every IKE_INTERMEDIATE message is also chained into the IntAuth values that
//! IKE_AUTH's AUTH payloads cover (RFC 9242 §3.3.2, [`crate::session::IntAuth`]), so
//! an attacker who changed one of them cannot complete the handshake.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::Instant;
use ipsec_crypto::suites::KeDesc;
use ipsec_crypto::{ActiveKx, CryptoError};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, NotifyType};

use crate::error::{CloseReason, Error, PeerMisbehaved};
use crate::event::{ChildSaId, Event};
use crate::inflight::Inflight;
use crate::keys;
use crate::msg::{InMsg, Out};
use crate::sa::auth::ExpectAuthReq;
use crate::sa::{Closed, IkeSa, State};
use crate::session::Session;
use crate::shared::{Path, Shared};
use crate::timers::{Timer, Timers};

/// What the initiator's IKE_AUTH needs from IKE_SA_INIT, carried through the
/// IKE_INTERMEDIATE exchanges.
pub(crate) struct AuthStart {
    /// Our IKE_SA_INIT request, which our AUTH signs.
    pub(crate) init_request: Vec<u8>,
    /// The responder's IKE_SA_INIT response, which its AUTH signs.
    pub(crate) init_response: Vec<u8>,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    pub(crate) child_id: ChildSaId,
    /// The hashes of the responder's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
    pub(crate) peer_hashes: Vec<u16>,
    /// The responder sent USE_PPK (RFC 8784 §3).
    pub(crate) peer_ppk: bool,
}

/// Initiator: an IKE_INTERMEDIATE request with an additional key exchange sent.
pub(crate) struct ExpectIntermediateResp {
    pub(crate) session: Session,
    pub(crate) start: AuthStart,
    /// The key exchange of this request.
    pub(crate) kx: Box<dyn ActiveKx>,
    /// The additional key exchanges after this one.
    pub(crate) rest: Vec<&'static KeDesc>,
}

impl IkeSa {
    /// Initiator: the next additional key exchange, or IKE_AUTH when none is left.
    pub(crate) fn next_key_exchange(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        mut session: Session,
        start: AuthStart,
        mut additional: Vec<&'static KeDesc>,
    ) -> Result<(), Error> {
        if additional.is_empty() {
            return self.send_auth(cx, now, session, start);
        }
        let method = additional.remove(0);
        let kx = cx
            .provider
            .kx(method.id)
            .ok_or(CryptoError::Unsupported)?
            .start(cx.provider.secure_random)?;
        session.request(
            cx,
            now,
            self.path,
            ExchangeType::IKE_INTERMEDIATE,
            &[Out::Ke(method.id, kx.public().to_vec())],
            Inflight::Auth,
        )?;
        self.state = State::IntermediateSent(Box::new(ExpectIntermediateResp {
            session,
            start,
            kx,
            rest: additional,
        }));
        Ok(())
    }

    /// Initiator: the answer to an IKE_INTERMEDIATE request.
    pub(crate) fn intermediate_response(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        s: Box<ExpectIntermediateResp>,
        m: &InMsg,
    ) {
        let ExpectIntermediateResp {
            mut session,
            start,
            kx,
            rest,
        } = *s;
        let step = keys::complete_with_answer(kx, m).and_then(|secret| {
            session.add_key_exchange(cx, self.handle, secret.expose(), &start.ni, &start.nr)
        });
        let next = step.and_then(|()| self.next_key_exchange(cx, now, session, start, rest));
        if let Err(e) = next {
            self.state = State::Closed(Box::new(Closed {
                session: None,
                timers: Timers::new().with(Timer::Linger, now),
            }));
            cx.event(
                self.handle,
                Event::IkeSaClosed {
                    reason: CloseReason::from_error(e),
                },
            );
        }
    }

    /// Responder: an IKE_INTERMEDIATE request, which must carry the next additional
    /// key exchange. A wrong or missing one ends the half-open SA with
    /// INVALID_SYNTAX (RFC 9370 §2.2.2).
    pub(crate) fn intermediate_request(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        mut s: Box<ExpectAuthReq>,
        h: &IkeHeaderRepr,
        m: &InMsg,
    ) {
        let expected = s.additional.first().copied();
        let answered = (|| -> Result<(Vec<u8>, ipsec_crypto::SharedSecret), Error> {
            let method = expected.ok_or(PeerMisbehaved::BadKeyExchange)?;
            let (group, ke) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
            if *group != method.id {
                return Err(PeerMisbehaved::BadKeyExchange.into());
            }
            let kx = cx.provider.kx(method.id).ok_or(CryptoError::Unsupported)?;
            kx.respond(cx.provider.secure_random, ke)
                .map_err(|_| PeerMisbehaved::BadKeyExchange.into())
        })();
        match answered {
            Ok((public, secret)) => {
                self.path = path;
                let group = s.additional.remove(0).id;
                // The answer goes out under the current keys; the new ones apply
                // from the next message on.
                s.session.respond(cx, path, h, &[Out::Ke(group, public)]);
                let (ni, nr) = (s.ni.clone(), s.nr.clone());
                match s
                    .session
                    .add_key_exchange(cx, self.handle, secret.expose(), &ni, &nr)
                {
                    Ok(()) => self.state = State::InitReplied(s),
                    Err(e) => {
                        self.state = State::InitReplied(s);
                        self.close_with(cx, now, Some(CloseReason::from_error(e)));
                    }
                }
            }
            Err(e) => {
                s.session
                    .respond_error(cx, path, h, NotifyType::INVALID_SYNTAX);
                self.state = State::InitReplied(s);
                self.close_with(cx, now, Some(CloseReason::from_error(e)));
            }
        }
    }
}
