//! EAP credentials for the gateway's connections (RFC 7296 §2.16): the password
//! database a responder checks EAP-MSCHAPv2 peers against
//! ([`password_authenticator`], from `secrets.eap<suffix>`), and the identity and
//! password an initiator answers with ([`password_peer`]).
//!
//! The EAP-MSCHAPv2 method itself is `ipsec_ike::eap::mschapv2` (ipsec-ike's
//! `eap-mschapv2` feature). A leaf module: it names the protocol's types only.

use std::sync::Arc;

use ipsec::ike::eap::{EapAuthenticator, EapPeer, EapPeerMethod, EapServerMethod, EapType};

/// Finds the password (UTF-8) of an EAP identity; `None` for an unknown identity.
pub type PasswordLookup = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// A responder's EAP-MSCHAPv2 authenticator over `lookup`: install it with
/// [`PeerAuth::Eap`](ipsec::ike::PeerAuth::Eap). An unknown identity runs the method
/// against a password nobody knows, so failures do not tell which identities exist.
pub fn password_authenticator(lookup: PasswordLookup) -> Arc<dyn EapAuthenticator> {
    Arc::new(Authenticator { lookup })
}

/// An initiator's EAP-MSCHAPv2 credentials: install them with
/// [`LocalAuth::Eap`](ipsec::ike::LocalAuth::Eap).
pub fn password_peer(identity: Vec<u8>, password: &str) -> Arc<dyn EapPeer> {
    Arc::new(Peer {
        identity,
        password: ipsec::ike::Psk::new(password.as_bytes().to_vec()),
    })
}

// TODO(pools): replace `Authenticator` and `Peer` with
// `ipsec::ike::eap::mschapv2::{PasswordAuthenticator, PasswordPeer}` once the
// `eap-mschapv2` feature is on main (turn it on in Cargo.toml). Until then these
// stand-ins refuse every EAP run: the responder answers with EAP-Failure and the
// initiator with a Nak, so an EAP connection parses, converts and is resolved, but
// no peer authenticates.
struct Authenticator {
    lookup: PasswordLookup,
}

impl EapAuthenticator for Authenticator {
    fn start(&self, identity: &[u8]) -> Option<Box<dyn EapServerMethod>> {
        let _password = (self.lookup)(identity);
        None
    }
}

struct Peer {
    identity: Vec<u8>,
    /// Zeroized on drop.
    password: ipsec::ike::Psk,
}

impl EapPeer for Peer {
    fn identity(&self) -> Vec<u8> {
        self.identity.clone()
    }

    fn start(&self, _ty: EapType) -> Option<Box<dyn EapPeerMethod>> {
        let _ = self.password.expose();
        None
    }

    fn methods(&self) -> Vec<EapType> {
        vec![EapType::MSCHAPV2]
    }
}
