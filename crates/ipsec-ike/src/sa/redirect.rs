//! The redirect mechanism (RFC 5685) in the state machine, both roles.
//!
//! Client (initiator): REDIRECT_SUPPORTED, or REDIRECTED_FROM after a redirect, in
//! IKE_SA_INIT (§3, §7) while [`Config::follow_redirects`](crate::Config) is set; a
//! REDIRECT is followed in the IKE_SA_INIT response when its nonce data is our Ni
//! (§4), in the IKE_AUTH response once the gateway's AUTH verified (§6), and in an
//! INFORMATIONAL request of the established IKE SA, which is answered first (§5).
//! Following means [`Event::Redirected`] and the end of this IKE SA; the embedder
//! connects anew with [`IkeEndpoint::connect_redirected`](crate::IkeEndpoint). At
//! most `max_redirects` within `redirect_window` are followed (§9).
//!
//! Gateway (responder): only an initiator that announced support is redirected: in
//! IKE_SA_INIT (a stateless REDIRECT with the initiator's nonce, before the key
//! exchange), in IKE_AUTH (the response carries REDIRECT instead of a Child SA), or
//! established, with an INFORMATIONAL request; the IKE SA is deleted
//! `half_open_timeout` later if the client has not deleted it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::IpAddr;

use ipsec_core::Instant;
use ipsec_ike_wire::{ExchangeType, NotifyType};

use crate::config::Identity;
use crate::error::{ApiMisuse, CloseReason, Error};
use crate::event::Event;
use crate::inflight::Inflight;
use crate::msg::{InMsg, Out};
use crate::redirect::{admit, Gateway, Redirect, RedirectPhase};
use crate::sa::auth::ExpectAuthResp;
use crate::sa::established::{Established, Incoming, Pending};
use crate::sa::{Closed, IkeSa, State};
use crate::shared::{Path, Shared};
use crate::timers::{Timer, Timers};
use crate::trace;

/// What became of a REDIRECT answering our IKE_SA_INIT.
pub(crate) enum InitRedirect {
    /// Dropped for this reason (it does not parse, or its nonce is not ours).
    Ignore(&'static str),
    /// Not followed: kept as the close reason should nothing better come.
    Remember(&'static str, CloseReason),
    /// Followed: [`Event::Redirected`] is out, close the IKE SA.
    Followed,
}

/// What an IKE SA knows of redirects.
#[derive(Clone, Debug, Default)]
pub(crate) struct RedirectState {
    /// Initiator: we announced support, so we follow a REDIRECT.
    pub follow: bool,
    /// Initiator: the redirects followed before this IKE SA, within the window.
    pub history: Vec<Instant>,
    /// Responder: the initiator announced support (REDIRECT_SUPPORTED or
    /// REDIRECTED_FROM, RFC 5685 §3).
    pub peer_supports: bool,
    /// Responder: this IKE SA was redirected already.
    pub sent: bool,
}

impl RedirectState {
    /// An initiator's: following if the configuration says so, with the history of
    /// the redirect that led here.
    pub(crate) fn initiator(follow: bool, after: Option<&Redirect>) -> Self {
        RedirectState {
            follow,
            history: after.map(|r| r.history.clone()).unwrap_or_default(),
            ..RedirectState::default()
        }
    }
}

impl IkeSa {
    /// The notification our IKE_SA_INIT request announces support with (RFC 5685 §3):
    /// REDIRECTED_FROM with the original gateway's address after a redirect (§7), which
    /// implies support, else REDIRECT_SUPPORTED; none when we do not follow redirects.
    pub(crate) fn redirect_announcement(follow: bool, from: Option<IpAddr>) -> Option<Out> {
        if !follow {
            return None;
        }
        Some(match from.and_then(|a| Gateway::Ip(a).notify_data(&[])) {
            Some(d) => Out::notify(NotifyType::REDIRECTED_FROM, &d),
            None => Out::notify(NotifyType::REDIRECT_SUPPORTED, &[]),
        })
    }

    /// Whether an IKE_SA_INIT request announces redirect support (RFC 5685 §3): a
    /// REDIRECT_SUPPORTED, or a REDIRECTED_FROM that parses.
    pub(crate) fn peer_announces_redirect(m: &InMsg) -> bool {
        m.has(NotifyType::REDIRECT_SUPPORTED)
            || m.notify(NotifyType::REDIRECTED_FROM)
                .is_some_and(|n| Gateway::from_notify(&n.data).is_some())
    }

    /// Responder, IKE_SA_INIT (RFC 5685 §4): the REDIRECT data to answer with (the new
    /// gateway and the initiator's nonce `ni`), if the initiator announced support and
    /// the endpoint's policy sends it elsewhere.
    pub(crate) fn init_redirect(cx: &Shared, path: Path, m: &InMsg, ni: &[u8]) -> Option<Vec<u8>> {
        if !Self::peer_announces_redirect(m) {
            return None;
        }
        let gw = cx
            .config
            .redirect
            .as_ref()?
            .redirect_init(path.local, path.remote)?;
        let data = gw.notify_data(ni)?;
        trace::info!(remote = %path.remote, to = %gw, "client redirected in IKE_SA_INIT (RFC 5685 §4)");
        Some(data)
    }

    /// Initiator: a REDIRECT answering our IKE_SA_INIT (RFC 5685 §4), whose request
    /// carried `ni`. Followed when its nonce data is our Ni (which only someone who
    /// saw our request knows) and the loop cap allows; otherwise ignored, or
    /// remembered as the close reason should nothing better come, like every
    /// unprotected answer (RFC 7296 §2.21.2).
    pub(crate) fn init_redirected(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        data: &[u8],
        ni: &[u8],
    ) -> InitRedirect {
        let Some((to, _)) = Gateway::from_notify(data).filter(|(_, nonce)| *nonce == ni) else {
            return InitRedirect::Ignore("bad_redirect");
        };
        if !self.redirect.follow {
            // We never announced support: a gateway that redirects anyway refuses us.
            return InitRedirect::Remember(
                "redirect_not_announced",
                CloseReason::NotifyReceived(NotifyType::REDIRECT),
            );
        }
        match self.admit(cx, now) {
            Some(history) => {
                self.follow(cx, to, RedirectPhase::Init, history);
                InitRedirect::Followed
            }
            None => InitRedirect::Remember("too_many_redirects", CloseReason::TooManyRedirects),
        }
    }

    /// Initiator: a REDIRECT in the IKE_AUTH response, whose AUTH has verified
    /// (RFC 5685 §6). Returns the state untouched when there is none (or we do not
    /// follow redirects, or it does not parse); otherwise the IKE SA is deleted (one
    /// Delete, not retransmitted: the gateway deletes it anyway) and closed, and
    /// `None` comes back.
    pub(crate) fn auth_redirected(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        s: ExpectAuthResp,
        m: &InMsg,
    ) -> Option<ExpectAuthResp> {
        let Some(n) = m.notify(NotifyType::REDIRECT) else {
            return Some(s);
        };
        let to = match Gateway::from_notify(&n.data) {
            Some((to, _)) if self.redirect.follow => to,
            _ => {
                trace::debug!(sa = %self.handle, reason = "bad_redirect",
                    "REDIRECT in IKE_AUTH ignored");
                return Some(s);
            }
        };
        cx.child_spis.remove(&s.child.spi.0);
        let reason = match self.admit(cx, now) {
            Some(history) => {
                self.follow(cx, to, RedirectPhase::Auth, history);
                CloseReason::Redirected
            }
            None => CloseReason::TooManyRedirects,
        };
        let mut session = s.session;
        let _ = session.request(
            cx,
            now,
            self.path,
            ExchangeType::INFORMATIONAL,
            &[Out::delete_ike()],
            Inflight::DeleteIke,
        );
        self.state = State::Closed(Box::new(Closed {
            session: Some(session),
            timers: Timers::new().with(Timer::Linger, now),
        }));
        cx.event(self.handle, Event::IkeSaClosed { reason });
        None
    }

    /// Initiator: a REDIRECT in an INFORMATIONAL request of the established IKE SA
    /// (RFC 5685 §5), already answered: followed by deleting the IKE SA. Past the
    /// loop cap it is ignored (the gateway deletes the IKE SA itself).
    pub(crate) fn informational_redirected(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) {
        let Some(n) = r.m.notify(NotifyType::REDIRECT) else {
            return;
        };
        let Some((to, _)) = Gateway::from_notify(&n.data).filter(|_| self.redirect.follow) else {
            self.dropped(r.path, r.h, "bad_redirect");
            return;
        };
        if e.deleting {
            return;
        }
        let Some(history) = self.admit(cx, r.now) else {
            self.dropped(r.path, r.h, "too_many_redirects");
            return;
        };
        self.follow(cx, to, RedirectPhase::Established, history);
        e.queue.retain(|p| matches!(p, Pending::DeleteIke));
        if e.queue.is_empty() {
            e.queue.push_back(Pending::DeleteIke);
        }
    }

    /// Responder, IKE_AUTH (RFC 5685 §6): the gateway to send the authenticated
    /// peer to, if it announced support and the peer's configuration says so.
    pub(crate) fn auth_redirect(
        &self,
        cx: &Shared,
        peer_id: &Identity,
        path: Path,
    ) -> Option<(Gateway, Out)> {
        if !self.redirect.peer_supports {
            return None;
        }
        let gw = cx
            .config
            .redirect
            .as_ref()?
            .redirect_auth(peer_id, path.local, path.remote)?;
        let data = gw.notify_data(&[])?;
        Some((gw, Out::notify(NotifyType::REDIRECT, &data)))
    }

    /// Responder: the peer was sent to `to` (in IKE_AUTH, or by our INFORMATIONAL
    /// request): reported, and the IKE SA deleted `half_open_timeout` from now if the
    /// client has not deleted it by then.
    pub(crate) fn peer_redirected(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        to: Gateway,
    ) {
        self.redirect.sent = true;
        e.timers
            .set(Timer::Redirected, now + cx.config.half_open_timeout);
        cx.event(self.handle, Event::PeerRedirected { to });
    }

    /// Responder: [`IkeEndpoint::redirect`](crate::IkeEndpoint::redirect).
    pub(crate) fn redirect_peer(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        to: Gateway,
    ) -> Result<(), Error> {
        if !self.redirect.peer_supports || self.redirect.sent || !to.is_valid() {
            return Err(ApiMisuse::CannotRedirect.into());
        }
        self.command(cx, now, |e, _| {
            e.queue.push_back(Pending::Redirect(to));
            Ok(())
        })?;
        self.redirect.sent = true;
        Ok(())
    }

    /// Sends the queued INFORMATIONAL request with REDIRECT (RFC 5685 §5; no nonce
    /// data).
    pub(crate) fn send_redirect(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        now: Instant,
        to: Gateway,
    ) -> Result<(), Error> {
        let data = to
            .notify_data(&[])
            .ok_or(Error::ApiMisuse(ApiMisuse::CannotRedirect))?;
        e.current.request(
            cx,
            now,
            self.path,
            ExchangeType::INFORMATIONAL,
            &[Out::notify(NotifyType::REDIRECT, &data)],
            Inflight::Redirect,
        )?;
        self.peer_redirected(e, cx, now, to);
        Ok(())
    }

    /// Responder: the redirected client did not delete the IKE SA in time; we do.
    pub(crate) fn redirect_timeout(&mut self, e: &mut Established, now: Instant) {
        if e.timers.take_due(Timer::Redirected, now) && !e.deleting {
            trace::info!(sa = %self.handle, "redirected peer kept its IKE SA: deleted");
            e.queue.retain(|p| matches!(p, Pending::DeleteIke));
            if e.queue.is_empty() {
                e.queue.push_back(Pending::DeleteIke);
            }
        }
    }

    /// The history with this redirect, or `None` past the loop cap (RFC 5685 §9).
    fn admit(&self, cx: &Shared, now: Instant) -> Option<Vec<Instant>> {
        let h = admit(
            &self.redirect.history,
            now,
            cx.config.max_redirects,
            cx.config.redirect_window,
        );
        if h.is_none() {
            trace::warning!(sa = %self.handle, max = cx.config.max_redirects,
                "redirect not followed: too many within the window (RFC 5685 §9)");
        }
        h
    }

    /// Reports the redirect we follow.
    fn follow(
        &mut self,
        cx: &mut Shared,
        to: Gateway,
        phase: RedirectPhase,
        history: Vec<Instant>,
    ) {
        self.redirect.history.clone_from(&history);
        cx.event(
            self.handle,
            Event::Redirected {
                redirect: Redirect {
                    to,
                    from: self.path.remote,
                    phase,
                    history,
                },
            },
        );
    }
}
