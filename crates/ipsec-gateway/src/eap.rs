//! EAP credentials for the gateway's connections (RFC 7296 §2.16): the password
//! database a responder checks EAP-MSCHAPv2 peers against
//! ([`password_authenticator`], from `secrets.eap<suffix>`), and the identity and
//! password an initiator answers with ([`password_peer`]).
//!
//! The EAP-MSCHAPv2 method itself is `ipsec_ike::eap::mschapv2` (ipsec-ike's
//! `eap-mschapv2` feature). A leaf module: it names the protocol's types only.

use std::sync::Arc;

use ipsec::ike::eap::mschapv2::{NtHash, PasswordAuthenticator, PasswordPeer};
use ipsec::ike::eap::{EapAuthenticator, EapPeer};
use zeroize::Zeroize;

/// Finds the password (UTF-8) of an EAP identity; `None` for an unknown identity.
pub type PasswordLookup = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// A responder's EAP-MSCHAPv2 authenticator over `lookup`: install it with
/// [`PeerAuth::Eap`](ipsec::ike::PeerAuth::Eap). An unknown identity runs the method
/// against a password nobody knows, so failures do not tell which identities exist.
pub fn password_authenticator(lookup: PasswordLookup) -> Arc<dyn EapAuthenticator> {
    Arc::new(PasswordAuthenticator::new(move |id: &[u8]| {
        let mut password = lookup(id)?;
        let hash = NtHash::from_password(&password);
        password.zeroize();
        Some(hash)
    }))
}

/// An initiator's EAP-MSCHAPv2 credentials: install them with
/// [`LocalAuth::Eap`](ipsec::ike::LocalAuth::Eap). Only the password's hash is kept.
pub fn password_peer(identity: Vec<u8>, password: &str) -> Arc<dyn EapPeer> {
    Arc::new(PasswordPeer::new(identity, password))
}
