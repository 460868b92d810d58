//! Password credentials for EAP-MSCHAPv2: a responder's user database
//! ([`PasswordAuthenticator`]) and an initiator's user name and password
//! ([`PasswordPeer`]).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::{MsChapV2Peer, MsChapV2Server, NtHash, DEFAULT_SERVER_NAME};
use crate::eap::{EapAuthenticator, EapPeer, EapPeerMethod, EapServerMethod, EapType};

/// The look-up behind a [`PasswordAuthenticator`].
type Lookup = dyn Fn(&[u8]) -> Option<NtHash> + Send + Sync;

/// A responder's EAP-MSCHAPv2 user database: install it with
/// [`PeerAuth::Eap`](crate::PeerAuth::Eap). For each EAP identity it asks a
/// look-up for the password hash and runs [`MsChapV2Server`] with it.
///
/// An identity the look-up does not know still gets a full MSCHAPv2 run, against a
/// random password hash, which fails exactly like a wrong password (the same
/// Failure request, the same work): the exchange does not reveal which identities
/// exist.
pub struct PasswordAuthenticator {
    lookup: Box<Lookup>,
    name: Vec<u8>,
}

impl PasswordAuthenticator {
    /// Passwords from `lookup`, called with the peer's EAP identity. It returns the
    /// password's [`NtHash`] (`NtHash::from_password`), or `None` for an unknown
    /// identity.
    pub fn new<F>(lookup: F) -> Self
    where
        F: Fn(&[u8]) -> Option<NtHash> + Send + Sync + 'static,
    {
        PasswordAuthenticator {
            lookup: Box::new(lookup),
            name: DEFAULT_SERVER_NAME.to_vec(),
        }
    }

    /// A fixed table of identities and passwords (UTF-8). The passwords are hashed
    /// here and only their hashes kept.
    pub fn from_passwords<I, K, P>(users: I) -> Self
    where
        I: IntoIterator<Item = (K, P)>,
        K: Into<Vec<u8>>,
        P: AsRef<str>,
    {
        let table: BTreeMap<Vec<u8>, NtHash> = users
            .into_iter()
            .map(|(k, p)| (k.into(), NtHash::from_password(p.as_ref())))
            .collect();
        Self::new(move |id| table.get(id).map(NtHash::duplicate))
    }

    /// Sets the Name our Challenges carry (`ipsec-rs` by default).
    #[must_use]
    pub fn with_server_name(mut self, name: &[u8]) -> Self {
        self.name = name.to_vec();
        self
    }
}

impl fmt::Debug for PasswordAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordAuthenticator")
            .field("name", &alloc::string::String::from_utf8_lossy(&self.name))
            .finish_non_exhaustive()
    }
}

impl EapAuthenticator for PasswordAuthenticator {
    fn start(&self, identity: &[u8]) -> Option<Box<dyn EapServerMethod>> {
        let server = match (self.lookup)(identity) {
            Some(hash) => MsChapV2Server::with_nt_hash(identity, hash),
            None => MsChapV2Server::unknown_user(identity),
        };
        Some(Box::new(server.with_name(&self.name)))
    }
}

/// An initiator's EAP-MSCHAPv2 credentials: install it with
/// [`LocalAuth::Eap`](crate::LocalAuth::Eap). It answers EAP-Identity with the
/// identity and runs [`MsChapV2Peer`] when asked for MSCHAPv2 (a Nak listing
/// MSCHAPv2 for any other method).
pub struct PasswordPeer {
    identity: Vec<u8>,
    hash: NtHash,
}

impl PasswordPeer {
    /// `identity` (e.g. `user`, `user@realm` or `DOMAIN\user`) with `password`
    /// (UTF-8). The password is hashed here and only the hash kept.
    pub fn new(identity: impl Into<Vec<u8>>, password: &str) -> Self {
        Self::with_nt_hash(identity, NtHash::from_password(password))
    }

    /// `identity` with the password hash `hash`.
    pub fn with_nt_hash(identity: impl Into<Vec<u8>>, hash: NtHash) -> Self {
        PasswordPeer {
            identity: identity.into(),
            hash,
        }
    }
}

impl fmt::Debug for PasswordPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPeer")
            .field(
                "identity",
                &alloc::string::String::from_utf8_lossy(&self.identity),
            )
            .finish_non_exhaustive()
    }
}

impl EapPeer for PasswordPeer {
    fn identity(&self) -> Vec<u8> {
        self.identity.clone()
    }

    fn start(&self, ty: EapType) -> Option<Box<dyn EapPeerMethod>> {
        (ty == EapType::MSCHAPV2).then(|| {
            Box::new(MsChapV2Peer::with_nt_hash(
                &self.identity,
                self.hash.duplicate(),
            )) as Box<dyn EapPeerMethod>
        })
    }

    fn methods(&self) -> Vec<EapType> {
        vec![EapType::MSCHAPV2]
    }
}
