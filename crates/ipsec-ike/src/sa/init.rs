//! IKE_SA_INIT (RFC 7296 §1.2), both roles: the initiator's request with its COOKIE,
//! INVALID_KE_PAYLOAD and puzzle retries (§1.3, §2.6, RFC 8019) and the unprotected
//! errors it only remembers (§2.21.2); the responder's answer (cookies and half-open
//! caps are the endpoint's, before); NAT detection (§2.23).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::IpAddr;

use ipsec_core::{IkeSpi, Instant, Mode};
use ipsec_crypto::{kdf, ActiveKx, CryptoError, KeId, ProposalKind};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, IkePacket, NotifyType, PayloadType, HEADER_LEN};

use crate::config::LocalAuth;
use crate::error::{ApiMisuse, CloseReason, Error, PeerIncompatible, PeerMisbehaved};
use crate::event::{ChildSaId, Event, NatState, SaHandle};
use crate::inflight::{ChildReq, Inflight};
use crate::keys::{self, IkeCrypto};
use crate::msg::{self, InMsg, InNotify, Out, OutProposal};
use crate::proposal::{self, KeMode};
use crate::puzzle;
use crate::redirect::Redirect;
use crate::sa::auth::eap::EapClient;
use crate::sa::auth::{
    cert_payloads, certreq_payload, id_body, our_auth, ExpectAuthReq, ExpectAuthResp, PeerOctets,
    PPK_ID_FIXED,
};
use crate::sa::intermediate::AuthStart;
use crate::sa::redirect::{InitRedirect, RedirectState};
use crate::sa::{Closed, IkeSa, NewResponder, State, NONCE_LEN};
use crate::session::{Cached, Session};
use crate::shared::{Path, Shared, NAT_T_PORT};
use crate::sigauth;
use crate::timers::{Timer, Timers};
use crate::trace;

/// Initiator: IKE_SA_INIT sent, waiting for its response.
pub(crate) struct ExpectSaInitResp {
    pub(crate) spi_i: IkeSpi,
    pub(crate) offer: Vec<OutProposal>,
    pub(crate) kx: Box<dyn ActiveKx>,
    pub(crate) nonce: Vec<u8>,
    pub(crate) cookie: Option<Vec<u8>>,
    /// Our solution of the responder's puzzle (RFC 8019), sent after the cookie.
    pub(crate) puzzle_solution: Option<Vec<u8>>,
    pub(crate) request: Vec<u8>,
    pub(crate) sent: u32,
    /// [`Timer::Retransmit`].
    pub(crate) timers: Timers,
    pub(crate) restarts: u8,
    pub(crate) child_id: ChildSaId,
    /// The latest unauthenticated error answer (an error notification, or a response
    /// we cannot use), reported as the close reason if no valid response comes before
    /// the retransmissions run out (RFC 7296 §2.21.1, §2.21.2).
    pub(crate) unauth_error: Option<CloseReason>,
    /// Whether we announce redirect support (RFC 5685 §3), and the address of the
    /// gateway that redirected us here, for REDIRECTED_FROM (§7).
    pub(crate) redirect: (bool, Option<IpAddr>),
}

pub(crate) fn nat_notifies(cx: &Shared, spi_i: IkeSpi, spi_r: IkeSpi, path: Path) -> Vec<Out> {
    let mut source = keys::nat_hash(cx.provider, spi_i, spi_r, path.local);
    if cx.config.force_udp_encap {
        // A source hash that matches no address: the peer sees us behind a NAT and
        // encapsulates (RFC 7296 §2.23 lets an implementation pretend so; strongSwan's
        // `encap = yes` does the same).
        if let Some(h) = source.as_mut() {
            if cx.provider.secure_random.fill(h).is_err() {
                h.iter_mut().for_each(|b| *b = !*b);
            }
        }
    }
    match (
        source,
        keys::nat_hash(cx.provider, spi_i, spi_r, path.remote),
    ) {
        (Some(src), Some(dst)) => alloc::vec![
            Out::notify(NotifyType::NAT_DETECTION_SOURCE_IP, &src),
            Out::notify(NotifyType::NAT_DETECTION_DESTINATION_IP, &dst),
        ],
        _ => Vec::new(),
    }
}

/// NAT detection from the peer's NAT_DETECTION_* notifications, hashed with the SPIs
/// of the message that carried them (RFC 7296 §2.23).
pub(crate) fn detect_nat(
    cx: &Shared,
    m: &InMsg,
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    path: Path,
) -> NatState {
    let of =
        |t: NotifyType| -> Vec<&InNotify> { m.notifies.iter().filter(|n| n.ty == t).collect() };
    let src = of(NotifyType::NAT_DETECTION_SOURCE_IP);
    let dst = of(NotifyType::NAT_DETECTION_DESTINATION_IP);
    let (Some(peer), Some(me)) = (
        keys::nat_hash(cx.provider, spi_i, spi_r, path.remote),
        keys::nat_hash(cx.provider, spi_i, spi_r, path.local),
    ) else {
        return NatState::default();
    };
    NatState {
        remote_behind_nat: !src.is_empty() && !src.iter().any(|n| n.data == peer),
        // With `force_udp_encap` we act as the side behind a NAT, as our faked hash
        // made the peer believe: float to 4500, encapsulate, keep the mapping alive.
        local_behind_nat: (!dst.is_empty() && !dst.iter().any(|n| n.data == me))
            || (cx.config.force_udp_encap && !dst.is_empty()),
    }
}

impl IkeSa {
    /// Starts an initiator; `after`: the redirect (RFC 5685) that sends us to this
    /// peer.
    pub(crate) fn connect(
        cx: &mut Shared,
        handle: SaHandle,
        now: Instant,
        path: Path,
        after: Option<&Redirect>,
    ) -> Result<IkeSa, Error> {
        let offer = proposal::offer(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            cx.provider,
            &[],
            true,
        );
        let group = proposal::first_group(&offer).ok_or(ApiMisuse::NoUsableProposal)?;
        let kx = cx
            .provider
            .kx(group)
            .ok_or(ApiMisuse::NoUsableProposal)?
            .start(cx.provider.secure_random)?;
        let nonce = keys::random(cx.provider, NONCE_LEN)?;
        let spi_i = cx.new_ike_spi(handle)?;
        let s = ExpectSaInitResp {
            spi_i,
            offer,
            kx,
            nonce,
            cookie: None,
            puzzle_solution: None,
            request: Vec::new(),
            sent: 0,
            timers: Timers::new().with(Timer::Retransmit, now),
            restarts: 0,
            child_id: cx.child_id(),
            unauth_error: None,
            redirect: (cx.config.follow_redirects, after.map(|r| r.from.ip())),
        };
        let mut sa = IkeSa {
            handle,
            config: Arc::clone(&cx.config),
            path,
            nat: NatState::default(),
            state: State::InitSent(Box::new(s)),
            my_spis: alloc::vec![spi_i],
            vips: Vec::new(),
            lease: None,
            redirect: RedirectState::initiator(cx.config.follow_redirects, after),
        };
        if let State::InitSent(s) = &mut sa.state {
            Self::send_init(cx, now, path, s);
        }
        Ok(sa)
    }

    pub(crate) fn send_init(cx: &mut Shared, now: Instant, path: Path, s: &mut ExpectSaInitResp) {
        let h = msg::header(
            s.spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            true,
            false,
            0,
        );
        let mut out = Vec::new();
        if let Some(c) = &s.cookie {
            out.push(Out::notify(NotifyType::COOKIE, c));
        }
        if let Some(ps) = &s.puzzle_solution {
            out.push(Out::Raw(PayloadType::PS, ps.clone()));
        }
        out.push(Out::Sa(s.offer.clone()));
        out.push(Out::Ke(s.kx.group(), s.kx.public().to_vec()));
        out.push(Out::Nonce(s.nonce.clone()));
        out.extend(nat_notifies(cx, s.spi_i, IkeSpi::ZERO, path));
        if cx.config.fragment_mtu.is_some() {
            out.push(Out::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
        }
        if cx.config.uses_signatures() {
            out.push(signature_hash_notify());
        }
        if cx.config.ppk.is_some() {
            // RFC 8784 §3.
            out.push(Out::notify(NotifyType::USE_PPK, &[]));
        }
        out.extend(IkeSa::redirect_announcement(s.redirect.0, s.redirect.1));
        if proposal::offer_has_addke(&s.offer) {
            // RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE.
            out.push(Out::notify(
                NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED,
                &[],
            ));
        }
        s.request = msg::plain(h, &out);
        cx.send(path, &s.request);
        s.sent = 1;
        s.timers
            .set(Timer::Retransmit, now + cx.config.retransmit.wait(0));
    }

    pub(crate) fn init_sent(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        mut s: Box<ExpectSaInitResp>,
    ) {
        let relevant = h.exchange_type == ExchangeType::IKE_SA_INIT
            && h.flags.is_response()
            && !h.flags.is_initiator()
            && h.message_id == 0
            && h.spi_i == s.spi_i;
        let parsed = IkePacket::parse(bytes).ok().and_then(|p| {
            InMsg::parse(p.next_payload(), bytes.get(HEADER_LEN..).unwrap_or(&[])).ok()
        });
        let (true, Some(m)) = (relevant, parsed) else {
            self.dropped(
                path,
                h,
                if relevant {
                    "malformed"
                } else {
                    "unexpected_message"
                },
            );
            self.state = State::InitSent(s);
            return;
        };
        if m.sa.is_none() {
            if let Some(n) = m.notify(NotifyType::REDIRECT) {
                // RFC 5685 §4: the response is the REDIRECT alone.
                match self.init_redirected(cx, now, &n.data, &s.nonce) {
                    InitRedirect::Ignore(why) => self.dropped(path, h, why),
                    InitRedirect::Remember(why, reason) => {
                        self.dropped(path, h, why);
                        s.unauth_error = Some(reason);
                    }
                    InitRedirect::Followed => {
                        self.state = State::InitSent(s);
                        self.close_with(cx, now, Some(CloseReason::Redirected));
                        return;
                    }
                }
                self.state = State::InitSent(s);
                return;
            }
            if let Some(c) = m.notify(NotifyType::COOKIE) {
                if s.restarts < 4 && !c.data.is_empty() && c.data.len() <= 64 {
                    trace::debug!(
                        sa = %self.handle,
                        remote = %path.remote,
                        puzzle = m.has(NotifyType::PUZZLE),
                        "IKE_SA_INIT sent again with the responder's COOKIE (RFC 7296 §2.6)"
                    );
                    s.restarts += 1;
                    s.cookie = Some(c.data.clone());
                    // A puzzle with it (RFC 8019 §7.1.2): solve it if we can and it is
                    // not harder than we accept; otherwise retry with the cookie only,
                    // as an initiator without puzzle support would.
                    s.puzzle_solution = m
                        .notify(NotifyType::PUZZLE)
                        .and_then(|p| puzzle::parse(&p.data))
                        .and_then(|(prf, difficulty)| {
                            puzzle::solve(
                                cx.provider,
                                prf,
                                difficulty,
                                cx.config.max_puzzle_difficulty,
                                &c.data,
                            )
                        });
                    Self::send_init(cx, now, self.path, &mut s);
                } else {
                    self.dropped(path, h, "cookie_refused");
                }
                self.state = State::InitSent(s);
                return;
            }
            if let Some(n) = m.notify(NotifyType::INVALID_KE_PAYLOAD) {
                let group = n
                    .data
                    .get(..2)
                    .and_then(|b| <[u8; 2]>::try_from(b).ok())
                    .map(|b| KeId(u16::from_be_bytes(b)));
                let retry = group.filter(|g| {
                    *g != s.kx.group() && proposal::offer_has_group(&s.offer, *g) && s.restarts < 4
                });
                match retry
                    .and_then(|g| cx.provider.kx(g))
                    .map(|k| k.start(cx.provider.secure_random))
                {
                    Some(Ok(kx)) => {
                        trace::debug!(
                            sa = %self.handle,
                            remote = %path.remote,
                            group = %kx.group(),
                            "IKE_SA_INIT sent again with the group of INVALID_KE_PAYLOAD (RFC 7296 §1.3)"
                        );
                        s.restarts += 1;
                        s.kx = kx;
                        Self::send_init(cx, now, self.path, &mut s);
                    }
                    // A group we cannot use (or one retry too many): unauthenticated,
                    // so only remembered (RFC 7296 §2.21.2).
                    _ => {
                        self.unprotected_error(path, "INVALID_KE_PAYLOAD with an unusable group");
                        s.unauth_error = Some(CloseReason::NoProposalChosen);
                    }
                }
                self.state = State::InitSent(s);
                return;
            }
            if let Some(n) = m.error_notify() {
                // RFC 7296 §2.21.2: an unprotected error may be forged; keep waiting
                // for a valid response until the retransmissions run out, and report
                // the error then.
                self.unprotected_error(path, n);
                s.unauth_error = Some(CloseReason::from_error(Error::NotifyReceived(n)));
                self.state = State::InitSent(s);
                return;
            }
        }
        if h.spi_r.is_zero() {
            self.dropped(path, h, "malformed");
            self.state = State::InitSent(s);
            return;
        }
        if let Err(e) = Self::check_init_response(&s, &m) {
            // Equally unauthenticated: a forged answer must not end the handshake.
            self.unprotected_error(path, e);
            s.unauth_error = Some(CloseReason::from_error(e));
            self.state = State::InitSent(s);
            return;
        }
        match self.finish_init(cx, now, bytes, h, *s, &m) {
            Ok(()) => {}
            Err(e) => {
                // `finish_init` put nothing back: close from a bare state.
                self.state = State::Gone;
                cx.event(
                    self.handle,
                    Event::IkeSaClosed {
                        reason: CloseReason::from_error(e),
                    },
                );
                self.state = State::Closed(Box::new(Closed {
                    session: None,
                    timers: Timers::new().with(Timer::Linger, now),
                }));
            }
        }
    }

    /// The event of an unprotected error answer to our IKE_SA_INIT, kept as the close
    /// reason should the retransmissions run out (RFC 7296 §2.21.2).
    fn unprotected_error(&self, path: Path, error: impl core::fmt::Display) {
        trace::debug!(
            sa = %self.handle,
            remote = %path.remote,
            reason = "unprotected_error",
            error = %error,
            "IKE_SA_INIT answer not acted on (unauthenticated): still waiting"
        );
    }

    /// The checks of an IKE_SA_INIT response that need no key exchange, so a response
    /// failing them leaves the handshake waiting for a better one.
    pub(crate) fn check_init_response(s: &ExpectSaInitResp, m: &InMsg) -> Result<(), Error> {
        let sa = m.sa.as_ref().ok_or(PeerMisbehaved::MissingPayload("SA"))?;
        let (_, chosen) = proposal::accept_answer(&s.offer, ProposalKind::Ike, sa, true)
            .ok_or(PeerMisbehaved::BadProposal)?;
        let (group, _) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
        if chosen.ke.map(|k| k.id) != Some(*group) || *group != s.kx.group() {
            return Err(PeerMisbehaved::BadKeyExchange.into());
        }
        if m.nonce.is_none() {
            return Err(PeerMisbehaved::MissingPayload("Nonce").into());
        }
        if chosen.prf.is_none() {
            return Err(PeerMisbehaved::BadProposal.into());
        }
        Ok(())
    }

    pub(crate) fn finish_init(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        s: ExpectSaInitResp,
        m: &InMsg,
    ) -> Result<(), Error> {
        let sa = m.sa.as_ref().ok_or(PeerMisbehaved::MissingPayload("SA"))?;
        let (_, chosen) = proposal::accept_answer(&s.offer, ProposalKind::Ike, sa, true)
            .ok_or(PeerMisbehaved::BadProposal)?;
        let (group, ke) = m.ke.as_ref().ok_or(PeerMisbehaved::MissingPayload("KE"))?;
        if chosen.ke.map(|k| k.id) != Some(*group) || *group != s.kx.group() {
            return Err(PeerMisbehaved::BadKeyExchange.into());
        }
        let nr = m
            .nonce
            .clone()
            .ok_or(PeerMisbehaved::MissingPayload("Nonce"))?;
        let g_ir =
            s.kx.complete(ke)
                .map_err(|_| PeerMisbehaved::BadKeyExchange)?;
        let prf_desc = chosen.prf.ok_or(PeerMisbehaved::BadProposal)?;
        let prf = cx
            .provider
            .prf(prf_desc.id)
            .ok_or(CryptoError::Unsupported)?;
        let skeyseed = kdf::skeyseed(prf, &s.nonce, &nr, g_ir.expose())?;
        let spi_r = h.spi_r;
        let mut crypto = IkeCrypto::derive(cx, chosen, &skeyseed, &s.nonce, &nr, s.spi_i, spi_r)?;
        crypto.export_keys(cx, self.handle);
        self.nat = detect_nat(cx, m, s.spi_i, spi_r, self.path);
        let frag = cx
            .config
            .fragment_mtu
            .filter(|_| m.has(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        if self.nat.any() && !self.path.encap() {
            // RFC 7296 §2.23: move to port 4500 from IKE_AUTH on.
            self.path.local.set_port(NAT_T_PORT);
            self.path.remote.set_port(NAT_T_PORT);
        }
        let mut session = Session::new(s.spi_i, spi_r, true, crypto, frag);
        session.next_id = 1;
        let additional = chosen.additional();
        if !additional.is_empty() && !m.has(NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED) {
            // RFC 9370 §2.2.1: additional key exchanges run in IKE_INTERMEDIATE.
            return Err(PeerMisbehaved::BadProposal.into());
        }
        let start = AuthStart {
            init_request: s.request,
            init_response: bytes.to_vec(),
            ni: s.nonce,
            nr,
            child_id: s.child_id,
            peer_hashes: peer_hashes(m),
            peer_ppk: m.has(NotifyType::USE_PPK),
        };
        self.next_key_exchange(cx, now, session, start, additional)
    }

    /// Sends IKE_AUTH (RFC 7296 §1.2) once the keys are final: after IKE_SA_INIT, or
    /// after the last IKE_INTERMEDIATE exchange (RFC 9242).
    pub(crate) fn send_auth(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        mut session: Session,
        start: AuthStart,
    ) -> Result<(), Error> {
        let AuthStart {
            init_request,
            init_response,
            ni,
            nr,
            child_id,
            peer_hashes,
            peer_ppk,
        } = start;
        let prf = session.crypto.prf;
        // RFC 8784 §3: with a PPK on both sides, AUTH uses SK_pi' = prf+(PPK, SK_pi).
        let ppk = match &cx.config.ppk {
            Some(p) if peer_ppk => Some(p.clone()),
            Some(p) if p.required => return Err(PeerIncompatible::PpkRequired.into()),
            _ => None,
        };
        let sk_pi_ppk = ppk
            .as_ref()
            .map(|p| keys::ppk_key(prf, p.key.expose(), session.crypto.sk_pi.expose()))
            .transpose()?;
        let int_auth = session
            .int_auth
            .as_ref()
            .map(|ia| ia.octets(session.next_id))
            .unwrap_or_default();
        let child_spi = cx.new_child_spi()?;
        let child_offer = proposal::offer(
            &cx.config.esp_proposals,
            ProposalKind::Esp,
            cx.provider,
            &child_spi.to_be_bytes(),
            false,
        );
        let transport = cx.config.mode == Mode::Transport;
        let child = ChildReq {
            id: child_id,
            rekey: None,
            spi: child_spi,
            nonce: ni.clone(),
            kx: None,
            offer: child_offer,
            tsi: cx.config.local_ts.clone(),
            tsr: cx.config.remote_ts.clone(),
            transport,
        };
        let idi = id_body(&cx.config.local_id);
        // With EAP our AUTH comes after EAP-Success, keyed with the MSK (sa/eap.rs);
        // the PPK is not used then.
        let eap = match &cx.config.auth {
            LocalAuth::Eap { peer } => {
                if ppk.as_ref().is_some_and(|p| p.required) {
                    return Err(PeerIncompatible::PpkRequired.into());
                }
                Some(Box::new(EapClient::new(
                    peer.clone(),
                    init_request.clone(),
                    idi.clone(),
                )))
            }
            _ => None,
        };
        let ppk = if eap.is_some() { None } else { ppk };
        let auth = match &eap {
            Some(_) => None,
            None => Some(our_auth(
                cx,
                prf,
                PeerOctets {
                    message: &init_request,
                    nonce: &nr,
                    sk_p: sk_pi_ppk
                        .as_ref()
                        .map_or(session.crypto.sk_pi.expose(), |k| k.expose()),
                    int_auth: &int_auth,
                },
                &idi,
                &peer_hashes,
            )?),
        };
        // Without a required PPK, NO_PPK_AUTH: the AUTH data with the plain SK_pi,
        // for a responder that does not have the PPK.
        let no_ppk_auth = match &ppk {
            Some(p) if !p.required => Some(
                our_auth(
                    cx,
                    prf,
                    PeerOctets {
                        message: &init_request,
                        nonce: &nr,
                        sk_p: session.crypto.sk_pi.expose(),
                        int_auth: &int_auth,
                    },
                    &idi,
                    &peer_hashes,
                )?
                .1,
            ),
            _ => None,
        };
        let mut out = alloc::vec![Out::IdI(
            cx.config.local_id.id_type(),
            cx.config.local_id.data()
        )];
        out.extend(cert_payloads(&cx.config));
        out.extend(certreq_payload(&cx.config));
        if let Some((method, auth)) = auth {
            out.push(Out::Auth(method, auth));
        }
        if let Some(p) = &ppk {
            let mut data = alloc::vec![PPK_ID_FIXED];
            data.extend_from_slice(&p.id);
            out.push(Out::notify(NotifyType::PPK_IDENTITY, &data));
        }
        if let Some(a) = &no_ppk_auth {
            out.push(Out::notify(NotifyType::NO_PPK_AUTH, a));
        }
        out.push(Out::notify(NotifyType::INITIAL_CONTACT, &[]));
        out.extend(crate::sa::mobike::offer(cx));
        if transport {
            out.push(Out::notify(NotifyType::USE_TRANSPORT_MODE, &[]));
        }
        out.extend(crate::cp::request(&cx.config.virtual_ips));
        if !child.offer.is_empty() {
            out.push(Out::Sa(child.offer.clone()));
            out.push(Out::TsI(child.tsi.clone()));
            out.push(Out::TsR(child.tsr.clone()));
        }
        session.request(
            cx,
            now,
            self.path,
            ExchangeType::IKE_AUTH,
            &out,
            Inflight::Auth,
        )?;
        self.state = State::AuthSent(Box::new(ExpectAuthResp {
            session,
            init_response,
            ni,
            nr,
            child,
            int_auth,
            ppk,
            eap,
        }));
        Ok(())
    }

    /// Answers a new IKE_SA_INIT request (cookies are checked by the endpoint).
    pub(crate) fn respond_init(
        cx: &mut Shared,
        handle: SaHandle,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
        m: InMsg,
    ) -> NewResponder {
        let (Some(sa), Some((group, ke)), Some(ni)) = (&m.sa, &m.ke, &m.nonce) else {
            return NewResponder::Reject(NotifyType::INVALID_SYNTAX, Vec::new());
        };
        // RFC 5685 §4: sent elsewhere before any state or key exchange.
        if let Some(data) = IkeSa::init_redirect(cx, path, &m, ni) {
            return NewResponder::Reject(NotifyType::REDIRECT, data);
        }
        let Some((num, _, chosen)) = proposal::choose(
            &cx.config.ike_proposals,
            ProposalKind::Ike,
            sa,
            cx.provider,
            KeMode::Required {
                hint: Some(*group),
                addke: m.has(NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED),
            },
        ) else {
            return NewResponder::Reject(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
        };
        let Some(ke_desc) = chosen.ke else {
            return NewResponder::Drop;
        };
        if ke_desc.id != *group {
            // RFC 7296 §1.3: the group we want.
            return NewResponder::Reject(
                NotifyType::INVALID_KE_PAYLOAD,
                ke_desc.id.0.to_be_bytes().to_vec(),
            );
        }
        let Some(kx) = cx.provider.kx(*group) else {
            return NewResponder::Drop;
        };
        let Ok((public, g_ir)) = kx.respond(cx.provider.secure_random, ke) else {
            return NewResponder::Reject(NotifyType::INVALID_SYNTAX, Vec::new());
        };
        let Ok(nr) = keys::random(cx.provider, NONCE_LEN) else {
            return NewResponder::Drop;
        };
        let Some(prf) = chosen.prf.and_then(|p| cx.provider.prf(p.id)) else {
            return NewResponder::Drop;
        };
        let Ok(skeyseed) = kdf::skeyseed(prf, ni, &nr, g_ir.expose()) else {
            return NewResponder::Drop;
        };
        let Ok(spi_r) = cx.new_ike_spi(handle) else {
            return NewResponder::Drop;
        };
        let mut crypto = match IkeCrypto::derive(cx, chosen, &skeyseed, ni, &nr, h.spi_i, spi_r) {
            Ok(c) => c,
            Err(_) => {
                cx.spis.remove(&spi_r);
                return NewResponder::Drop;
            }
        };
        // The request's NAT-D hashes use a zero responder SPI.
        let nat = detect_nat(cx, &m, h.spi_i, IkeSpi::ZERO, path);
        let peer_frag = m.has(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED);
        let frag = cx.config.fragment_mtu.filter(|_| peer_frag);
        let header = msg::header(h.spi_i, spi_r, ExchangeType::IKE_SA_INIT, false, true, 0);
        let mut out = alloc::vec![
            Out::Sa(alloc::vec![chosen.answer(
                ProposalKind::Ike,
                num,
                Vec::new()
            )]),
            Out::Ke(*group, public),
            Out::Nonce(nr.clone()),
        ];
        out.extend(certreq_payload(&cx.config));
        out.extend(nat_notifies(cx, h.spi_i, spi_r, path));
        if frag.is_some() {
            out.push(Out::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
        }
        if m.has(NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED) {
            out.push(Out::notify(
                NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED,
                &[],
            ));
        }
        // RFC 8784 §3: a PPK is possible when both send USE_PPK. The resolver may
        // give the peer one only at IKE_AUTH.
        let ppk = m.has(NotifyType::USE_PPK) && (cx.config.ppk.is_some() || cx.resolver.is_some());
        if ppk {
            out.push(Out::notify(NotifyType::USE_PPK, &[]));
        }
        // The resolver may choose signatures for this peer only at IKE_AUTH.
        if cx.config.uses_signatures() || cx.resolver.is_some() {
            out.push(signature_hash_notify());
        }
        let response = msg::plain(header, &out);
        cx.send(path, &response);
        crypto.export_keys(cx, handle);
        let mut session = Session::new(h.spi_i, spi_r, false, crypto, frag);
        session.cached = Some(Cached {
            id: 0,
            datagrams: alloc::vec![response.clone()],
        });
        session.expect_id = 1;
        let s = ExpectAuthReq {
            session,
            init_request: bytes.to_vec(),
            init_response: response,
            ni: ni.clone(),
            nr,
            timers: Timers::new().with(Timer::HalfOpen, now + cx.config.half_open_timeout),
            child_id: cx.child_id(),
            peer_hashes: peer_hashes(&m),
            additional: chosen.additional(),
            ppk,
        };
        NewResponder::Created(Box::new(IkeSa {
            handle,
            config: Arc::clone(&cx.config),
            path,
            nat,
            state: State::InitReplied(Box::new(s)),
            my_spis: alloc::vec![spi_r],
            vips: Vec::new(),
            lease: None,
            redirect: RedirectState {
                peer_supports: IkeSa::peer_announces_redirect(&m),
                ..RedirectState::default()
            },
        }))
    }
}

/// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) with the hashes we verify.
fn signature_hash_notify() -> Out {
    Out::notify(
        NotifyType::SIGNATURE_HASH_ALGORITHMS,
        &sigauth::encode_hash_algorithms(&sigauth::ANNOUNCED_HASHES),
    )
}

/// The hash algorithms of the peer's SIGNATURE_HASH_ALGORITHMS, empty without one.
fn peer_hashes(m: &InMsg) -> Vec<u16> {
    m.notify(NotifyType::SIGNATURE_HASH_ALGORITHMS)
        .map(|n| sigauth::decode_hash_algorithms(&n.data))
        .unwrap_or_default()
}
