//! The connections as the driver runs them, and the resolver it gives the IKE
//! endpoint: the connection by the peer's identity and address, its key from the
//! secrets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipsec::ike::{Config, Identity, LocalAuth, PeerAuth, PeerHello, Psk, ResolvesPeer};
use ipsec::sad::AddrRange;
use serde::Serialize;

/// How a connection starts its Child SA (swanctl.conf's `start_action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartAction {
    /// Install the policy at once; the first packet that matches it starts the
    /// negotiation (`trap`).
    pub trap: bool,
    /// Initiate at start-up, and again when the IKE SA is lost (`start`).
    pub start: bool,
}

/// One connection as the driver runs it: the IKE configuration its SAs use (the
/// first Child SA's selectors, mode and proposals in it), where it reaches the peer,
/// and how it starts.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    /// The IKE configuration; its [`Config::name`] must be the connection's name and
    /// unique. `remote_id: None` accepts any peer identity for which the secret
    /// lookup finds a key.
    pub config: Arc<Config>,
    /// Our address (the one IKE and ESP are sent from).
    pub local: IpAddr,
    /// The peer's IKE address and port, when fixed (needed to initiate).
    pub remote: Option<SocketAddr>,
    /// Addresses a peer may come from for this connection as a responder (empty:
    /// any).
    pub remote_addrs: Vec<AddrRange>,
    /// How it starts.
    pub start_action: StartAction,
}

/// Finds the pre-shared key for a pair of identities (ours, the peer's), as
/// swanctl.conf's `secrets` do; `None` when there is none.
pub type SecretLookup = Arc<dyn Fn(&Identity, &Identity) -> Option<Psk> + Send + Sync>;

/// Whether either direction of `cfg` authenticates with the pre-shared key (else no
/// secret is looked up for it).
pub(crate) fn uses_psk(cfg: &Config) -> bool {
    matches!(cfg.auth, LocalAuth::Psk) || matches!(cfg.peer_auth, PeerAuth::Psk)
}

/// The resolver the driver gives the endpoint: the connection by identity and
/// address, its key from the secrets.
pub(crate) struct Resolver {
    pub(crate) conns: Vec<ConnSpec>,
    pub(crate) secrets: SecretLookup,
}

impl ResolvesPeer for Resolver {
    fn resolve(&self, h: &PeerHello<'_>) -> Option<Arc<Config>> {
        for c in &self.conns {
            let cfg = &c.config;
            if !c.local.is_unspecified() && c.local != h.local.ip() {
                continue;
            }
            if !c.remote_addrs.is_empty()
                && !c.remote_addrs.iter().any(|r| r.contains(h.remote.ip()))
            {
                continue;
            }
            if let Some(want) = &cfg.remote_id {
                if want != h.peer_id {
                    continue;
                }
            }
            if let Some(asked) = h.requested_id {
                if *asked != cfg.local_id {
                    continue;
                }
            }
            // The claimed identity is not proven yet: a connection without a key for
            // it is skipped, and nothing is kept per claimed identity (the derived
            // configuration lives with the SA, which admission control bounds).
            // A connection where neither side uses the PSK (certificates, raw keys,
            // EAP for the peer) needs no key: the peer's certificate or key proves the identity, and
            // without `remote_id` any identity it proves is accepted (the verifier
            // checks the binding, RFC 4945 §3.1).
            let mut d = Config::clone(cfg);
            if uses_psk(cfg) {
                let Some(key) = (self.secrets)(&cfg.local_id, h.peer_id) else {
                    continue;
                };
                d.psk = key;
            }
            d.remote_id = Some(h.peer_id.clone());
            return Some(Arc::new(d));
        }
        None
    }
}
