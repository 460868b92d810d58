//! The IKEv2 redirect mechanism (RFC 5685): the public vocabulary. A gateway's policy
//! ([`Redirects`](crate::Redirects), on [`Config::redirect`](crate::Config::redirect)) says which clients
//! go elsewhere; a client that follows one gets [`Event::Redirected`](crate::Event)
//! with a [`Redirect`] and connects to the new gateway with
//! [`IkeEndpoint::connect_redirected`](crate::IkeEndpoint::connect_redirected). The
//! state machine's part is in `sa/redirect.rs`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use ipsec_core::{Duration, Instant};
use ipsec_ike_wire::redirect::fqdn_ok;
use ipsec_ike_wire::{GatewayIdRepr, RedirectRepr};

/// A gateway a client is sent to (RFC 5685 §8: GW Ident Type 1, 2 or 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gateway {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A domain name the client resolves (printable ASCII, 1..=255 bytes).
    Fqdn(String),
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gateway::Ip(a) => write!(f, "{a}"),
            Gateway::Fqdn(n) => f.write_str(n),
        }
    }
}

impl From<IpAddr> for Gateway {
    fn from(a: IpAddr) -> Self {
        Gateway::Ip(a)
    }
}

impl Gateway {
    /// Whether the gateway can be put on the wire: an address, or a name of 1..=255
    /// printable ASCII bytes.
    pub fn is_valid(&self) -> bool {
        match self {
            Gateway::Ip(_) => true,
            Gateway::Fqdn(n) => fqdn_ok(n.as_bytes()),
        }
    }

    /// The REDIRECT / REDIRECTED_FROM notification data with `nonce` (RFC 5685 §8),
    /// `None` for a name [`is_valid`](Self::is_valid) refuses.
    pub(crate) fn notify_data(&self, nonce: &[u8]) -> Option<Vec<u8>> {
        let gateway = match self {
            Gateway::Ip(a) => GatewayIdRepr::Ip(*a),
            Gateway::Fqdn(n) if fqdn_ok(n.as_bytes()) => GatewayIdRepr::Fqdn(n.as_bytes()),
            Gateway::Fqdn(_) => return None,
        };
        Some(RedirectRepr { gateway, nonce }.to_vec())
    }

    /// The gateway and nonce of received notification data, `None` if it does not
    /// parse.
    pub(crate) fn from_notify(data: &[u8]) -> Option<(Gateway, &[u8])> {
        let r = RedirectRepr::parse(data).ok()?;
        let gw = match r.gateway {
            GatewayIdRepr::Ip(a) => Gateway::Ip(a),
            // Printable ASCII, checked by the parser.
            GatewayIdRepr::Fqdn(n) => Gateway::Fqdn(n.iter().map(|b| char::from(*b)).collect()),
        };
        Some((gw, r.nonce))
    }
}

/// Where in the life of an IKE SA a redirect came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectPhase {
    /// In the IKE_SA_INIT response (RFC 5685 §4), which carried our nonce back.
    Init,
    /// In the IKE_AUTH response, after the gateway authenticated itself (§6).
    Auth,
    /// In an INFORMATIONAL request of the established IKE SA (§5).
    Established,
}

/// A redirect the initiator follows: [`Event::Redirected`](crate::Event::Redirected).
/// Pass it to [`IkeEndpoint::connect_redirected`](crate::IkeEndpoint::connect_redirected)
/// to connect to the new gateway: it carries the original gateway's address for
/// REDIRECTED_FROM and the recent redirects for the loop cap (RFC 5685 §9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redirect {
    /// The gateway to connect to now.
    pub to: Gateway,
    /// The address of the gateway that redirected us.
    pub from: SocketAddr,
    /// When it came.
    pub phase: RedirectPhase,
    /// The redirects followed within the loop window, this one included.
    pub(crate) history: Vec<Instant>,
}

impl Redirect {
    /// How many redirects were followed within the loop window, this one included.
    pub fn count(&self) -> usize {
        self.history.len()
    }
}

/// The redirects of `history` that are still within `window` at `now`, plus `now`,
/// unless that makes more than `max` (RFC 5685 §9: a client limits how often it is
/// redirected; strongSwan allows 5 within 300 s).
pub(crate) fn admit(
    history: &[Instant],
    now: Instant,
    max: u8,
    window: Duration,
) -> Option<Vec<Instant>> {
    let mut recent: Vec<Instant> = history
        .iter()
        .copied()
        .filter(|t| now.saturating_duration_since(*t) < window)
        .collect();
    if recent.len() >= usize::from(max) {
        return None;
    }
    recent.push(now);
    Some(recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_cap() {
        let t0 = Instant::from_secs(0);
        let w = Duration::from_secs(300);
        let mut h = Vec::new();
        for i in 0..5 {
            h = admit(&h, t0 + Duration::from_secs(i), 5, w).unwrap();
        }
        assert_eq!(h.len(), 5);
        assert!(admit(&h, t0 + Duration::from_secs(10), 5, w).is_none());
        // The first ones leave the window.
        let later = admit(&h, t0 + Duration::from_secs(302), 5, w).unwrap();
        assert_eq!(later.len(), 3);
        assert!(admit(&[], t0, 0, w).is_none());
    }

    #[test]
    fn notify_data_roundtrip() {
        let g = Gateway::Fqdn("gw2.example".into());
        let d = g.notify_data(&[1, 2, 3]).unwrap();
        assert_eq!(Gateway::from_notify(&d), Some((g, &[1u8, 2, 3][..])));
        assert!(Gateway::Fqdn("bad name".into()).notify_data(&[]).is_none());
        assert!(Gateway::Fqdn(String::new()).notify_data(&[]).is_none());
        assert!(Gateway::from_notify(&[9, 0]).is_none());
    }
}
