//! What an [`IkeEndpoint`](crate::IkeEndpoint) negotiates: identities, the pre-shared
//! key, proposals, traffic selectors, lifetimes and timers.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

use ipsec_core::{Duration, Mode, TrafficSelector};
use ipsec_crypto::{
    CryptoError, CryptoProvider, Proposal, ProposalError, ProposalKind, SignatureScheme, Signer,
};
use ipsec_ike_wire::IdType;

use crate::cert::CertRejection;
use crate::eap::{EapAuthenticator, EapPeer};
use crate::redirect::Gateway;
use ipsec_core::Instant;
use ipsec_ike_wire::CfgAttrType;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An IKE identity (RFC 7296 §3.5).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN, a domain name without terminator.
    Fqdn(String),
    /// ID_RFC822_ADDR, an e-mail address.
    Rfc822(String),
    /// ID_KEY_ID, opaque bytes.
    KeyId(Vec<u8>),
    /// An ID payload of another type (ID_DER_ASN1_DN, ID_DER_ASN1_GN, ...) or a
    /// malformed one of the types above, as it was on the wire. Only received: it is
    /// how [`Event::IkeSaEstablished`](crate::Event::IkeSaEstablished) reports a peer
    /// identity this crate does not interpret.
    Other {
        /// The ID type.
        id_type: IdType,
        /// The identification data.
        data: Vec<u8>,
    },
}

impl Identity {
    /// The ID type on the wire.
    pub fn id_type(&self) -> IdType {
        match self {
            Identity::Ipv4(_) => IdType::ID_IPV4_ADDR,
            Identity::Ipv6(_) => IdType::ID_IPV6_ADDR,
            Identity::Fqdn(_) => IdType::ID_FQDN,
            Identity::Rfc822(_) => IdType::ID_RFC822_ADDR,
            Identity::KeyId(_) => IdType::ID_KEY_ID,
            Identity::Other { id_type, .. } => *id_type,
        }
    }

    /// The identification data on the wire.
    pub fn data(&self) -> Vec<u8> {
        match self {
            Identity::Ipv4(a) => a.octets().to_vec(),
            Identity::Ipv6(a) => a.octets().to_vec(),
            Identity::Fqdn(s) | Identity::Rfc822(s) => s.as_bytes().to_vec(),
            Identity::KeyId(k) | Identity::Other { data: k, .. } => k.clone(),
        }
    }

    /// The identity of an authenticated ID payload: as [`Identity::from_wire`], and
    /// [`Identity::Other`] for what that does not interpret.
    pub fn from_wire_or_other(id_type: IdType, data: &[u8]) -> Identity {
        Identity::from_wire(id_type, data).unwrap_or_else(|| Identity::Other {
            id_type,
            data: data.to_vec(),
        })
    }

    /// The identity of an ID payload, if its type is one of ours.
    pub fn from_wire(id_type: IdType, data: &[u8]) -> Option<Identity> {
        Some(match id_type {
            IdType::ID_IPV4_ADDR => Identity::Ipv4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?)),
            IdType::ID_IPV6_ADDR => {
                Identity::Ipv6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))
            }
            IdType::ID_FQDN => Identity::Fqdn(String::from(core::str::from_utf8(data).ok()?)),
            IdType::ID_RFC822_ADDR => {
                Identity::Rfc822(String::from(core::str::from_utf8(data).ok()?))
            }
            IdType::ID_KEY_ID => Identity::KeyId(data.to_vec()),
            _ => return None,
        })
    }
}

impl From<IpAddr> for Identity {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::Fqdn(s) => write!(f, "@{s}"),
            Identity::Rfc822(s) => f.write_str(s),
            Identity::KeyId(k) => {
                f.write_str("@#")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Identity::Other { id_type, data } => {
                write!(f, "{id_type:?}:#")?;
                data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// An identity string that cannot be parsed (an empty one, or a bad `@#` key id).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("invalid identity (empty, or '@#' not followed by hex)")]
pub struct IdentityError;

impl FromStr for Identity {
    type Err = IdentityError;

    /// strongSwan's syntax: an IP address is `Ipv4`/`Ipv6`; `@#hex` is a key id;
    /// `@name` is the FQDN `name`; `user@host` is RFC 822; anything else is an FQDN.
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        if s.is_empty() {
            return Err(IdentityError);
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(a.into());
        }
        if let Some(hex) = s.strip_prefix("@#") {
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err(IdentityError);
            }
            let bytes = hex
                .as_bytes()
                .chunks(2)
                .map(|c| {
                    core::str::from_utf8(c)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or(IdentityError)?;
            return Ok(Identity::KeyId(bytes));
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err(IdentityError);
            }
            return Ok(Identity::Fqdn(String::from(name)));
        }
        if s.contains('@') {
            return Ok(Identity::Rfc822(String::from(s)));
        }
        Ok(Identity::Fqdn(String::from(s)))
    }
}

/// A pre-shared key: zeroized on drop, never printed, compared in constant time.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Psk(Vec<u8>);

impl PartialEq for Psk {
    /// Constant time in the contents (only the lengths may differ visibly).
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Psk {}

impl Psk {
    /// The key.
    pub fn new(key: Vec<u8>) -> Self {
        Psk(key)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Psk {
    fn from(v: Vec<u8>) -> Self {
        Psk(v)
    }
}

impl From<&[u8]> for Psk {
    fn from(v: &[u8]) -> Self {
        Psk(v.to_vec())
    }
}

impl From<String> for Psk {
    /// Takes the string's buffer (no copy is left behind).
    fn from(v: String) -> Self {
        Psk(v.into_bytes())
    }
}

impl From<&str> for Psk {
    fn from(v: &str) -> Self {
        Psk(v.as_bytes().to_vec())
    }
}

/// A post-quantum preshared key (RFC 8784): mixed into SK_d, SK_pi and SK_pr after
/// IKE_SA_INIT (and any IKE_INTERMEDIATE exchanges), so that the IKE SA's Child SAs
/// stay secret even against an attacker who breaks the key exchange later.
#[derive(Clone, PartialEq, Eq)]
pub struct Ppk {
    /// The PPK_ID (sent as PPK_ID_FIXED, RFC 8784 §3): names the key for the peer.
    pub id: Vec<u8>,
    /// The key: zeroized on drop, never printed.
    pub key: Psk,
    /// Whether the IKE SA must fail without it. Otherwise an initiator also sends
    /// NO_PPK_AUTH, so that a responder without the key still authenticates it, and
    /// either side accepts a peer that does not use PPKs.
    pub required: bool,
}

impl Ppk {
    /// A PPK named `id`.
    pub fn new(id: impl Into<Vec<u8>>, key: impl Into<Psk>, required: bool) -> Self {
        Ppk {
            id: id.into(),
            key: key.into(),
            required,
        }
    }
}

impl fmt::Debug for Ppk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ppk")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("key", &self.key)
            .field("required", &self.required)
            .finish()
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Psk([redacted; {}])", self.0.len())
    }
}

/// How we authenticate ourselves in IKE_AUTH (RFC 7296 §2.15).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum LocalAuth {
    /// AUTH method 2, SHARED_KEY_MIC, with [`Config::psk`].
    #[default]
    Psk,
    /// AUTH method 14, DIGITAL_SIGNATURE (RFC 7427 §3), signed with `signer`. Used
    /// only when the peer announced `scheme`'s hash in SIGNATURE_HASH_ALGORITHMS;
    /// otherwise the IKE SA fails with
    /// [`PeerIncompatible::SignatureHashNotAnnounced`](crate::PeerIncompatible::SignatureHashNotAnnounced).
    Signature {
        /// The private key (its `Debug` names the scheme only).
        signer: Arc<dyn Signer>,
        /// The scheme, [`Signer::scheme`] of `signer`; one with an RFC 7427
        /// AlgorithmIdentifier ([`sigauth::algorithm_identifier`](crate::sigauth::algorithm_identifier)).
        scheme: SignatureScheme,
    },
    /// EAP (RFC 7296 §2.16): our first IKE_AUTH request carries no AUTH, the
    /// responder proves itself with its own AUTH and runs an EAP method with `peer`'s
    /// credentials; our AUTH, sent after EAP-Success, is keyed with the method's MSK.
    /// Initiators only.
    Eap {
        /// Our EAP identity and methods.
        peer: Arc<dyn EapPeer>,
    },
}

impl LocalAuth {
    /// Signature authentication with a DER private key (PKCS#8, SEC1 or PKCS#1) of
    /// `scheme`, through `provider`'s signing algorithm.
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] when the provider cannot sign with `scheme`; the
    /// signing algorithm's errors for a bad key.
    pub fn signature_from_der(
        provider: &CryptoProvider,
        scheme: SignatureScheme,
        private_key_der: &[u8],
    ) -> Result<Self, CryptoError> {
        let alg = provider
            .signing_algorithm(scheme)
            .ok_or(CryptoError::Unsupported)?;
        let signer = alg.new_signer(private_key_der, provider.secure_random)?;
        Ok(LocalAuth::Signature {
            signer: Arc::from(signer),
            scheme,
        })
    }
}

impl fmt::Debug for LocalAuth {
    /// Never prints key material: the scheme only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalAuth::Psk => f.write_str("Psk"),
            LocalAuth::Signature { scheme, .. } => f
                .debug_struct("Signature")
                .field("scheme", scheme)
                .finish_non_exhaustive(),
            LocalAuth::Eap { .. } => f.write_str("Eap"),
        }
    }
}

/// How the peer must authenticate itself in IKE_AUTH: the AUTH method it uses must
/// be one this allows (a PSK peer cannot switch to signatures, nor the other way round).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum PeerAuth {
    /// AUTH method 2, SHARED_KEY_MIC, with [`Config::psk`].
    #[default]
    Psk,
    /// A signature (AUTH method 14, RFC 7427 §3; or 1, 9, 10 of RFC 7296 §3.8 and
    /// RFC 4754) verified with this trusted public key: a raw key, no certificates.
    PublicKey {
        /// The peer's DER SubjectPublicKeyInfo.
        spki_der: Vec<u8>,
    },
    /// A signature (methods 14, 1, 9, 10) verified with the key of the end-entity
    /// certificate the peer sends in CERT payloads, once `verifier` has accepted the
    /// certificates and their binding to the peer's identity (RFC 4945). We ask for
    /// them with a CERTREQ naming the verifier's trust anchors (RFC 7296 §3.7).
    Certificate {
        /// Checks the peer's certificates.
        verifier: Arc<dyn VerifiesPeerCert>,
    },
    /// EAP (RFC 7296 §2.16): the initiator sends no AUTH in its first IKE_AUTH
    /// request; we answer with ours (a signature, normally) and run the EAP method
    /// `authenticator` chooses, then check the initiator's AUTH keyed with the
    /// method's MSK. Responders only.
    Eap {
        /// Chooses the method and credentials per peer.
        authenticator: Arc<dyn EapAuthenticator>,
        /// Ask for the peer's identity with EAP-Identity first (strongSwan's
        /// `eap_id = %any`; what Windows and macOS clients expect, their IDi being
        /// an address); otherwise the IDi is the EAP identity.
        ask_identity: bool,
    },
}

impl PeerAuth {
    /// Certificate authentication through `verifier`.
    pub fn certificate(verifier: impl VerifiesPeerCert + 'static) -> Self {
        PeerAuth::Certificate {
            verifier: Arc::new(verifier),
        }
    }

    /// True for the variants that verify a signature.
    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            PeerAuth::PublicKey { .. } | PeerAuth::Certificate { .. }
        )
    }
}

impl fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAuth::Psk => f.write_str("Psk"),
            PeerAuth::PublicKey { spki_der } => f
                .debug_struct("PublicKey")
                .field("spki_der_len", &spki_der.len())
                .finish(),
            PeerAuth::Certificate { .. } => f.debug_struct("Certificate").finish_non_exhaustive(),
            PeerAuth::Eap { ask_identity, .. } => f
                .debug_struct("Eap")
                .field("ask_identity", ask_identity)
                .finish_non_exhaustive(),
        }
    }
}

impl PartialEq for PeerAuth {
    /// Keys compare by value; certificate verifiers by identity (the same `Arc`).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PeerAuth::Psk, PeerAuth::Psk) => true,
            (PeerAuth::PublicKey { spki_der: a }, PeerAuth::PublicKey { spki_der: b }) => a == b,
            (PeerAuth::Certificate { verifier: a }, PeerAuth::Certificate { verifier: b }) => {
                Arc::ptr_eq(a, b)
            }
            (
                PeerAuth::Eap {
                    authenticator: a,
                    ask_identity: x,
                },
                PeerAuth::Eap {
                    authenticator: b,
                    ask_identity: y,
                },
            ) => Arc::ptr_eq(a, b) && x == y,
            _ => false,
        }
    }
}

impl Eq for PeerAuth {}

/// Retransmission of requests (RFC 7296 §2.1): the first retransmission after
/// `initial`, each further one after `multiplier` times the previous wait, and giving
/// up (closing the IKE SA with [`CloseReason::Timeout`](crate::CloseReason::Timeout))
/// when the wait after the `max_tries`-th transmission runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retransmit {
    /// Wait after the first transmission.
    pub initial: Duration,
    /// Factor between successive waits (1 = constant).
    pub multiplier: u32,
    /// Longest single wait.
    pub max_wait: Duration,
    /// Transmissions in total before giving up (at least 1).
    pub max_tries: u32,
}

impl Default for Retransmit {
    /// 1 s, doubling up to 32 s, 6 transmissions: give up after 63 s.
    fn default() -> Self {
        Retransmit {
            initial: Duration::from_secs(1),
            multiplier: 2,
            max_wait: Duration::from_secs(32),
            max_tries: 6,
        }
    }
}

impl Retransmit {
    /// The wait after transmission number `n` (0-based).
    pub fn wait(&self, n: u32) -> Duration {
        let mut d = self.initial;
        // 64 doublings exceed any Duration; more iterations change nothing.
        for _ in 0..n.min(64) {
            d = d.saturating_mul(self.multiplier.max(1));
            if d >= self.max_wait {
                return self.max_wait;
            }
        }
        d.min(self.max_wait)
    }

    /// The time from the first transmission to giving up.
    pub fn total(&self) -> Duration {
        let tries = self.max_tries.max(1);
        let head = (0..tries.min(64)).fold(Duration::ZERO, |t, n| t.saturating_add(self.wait(n)));
        head.saturating_add(self.wait(64).saturating_mul(tries.saturating_sub(64)))
    }
}

/// The configuration of an [`IkeEndpoint`](crate::IkeEndpoint), shared by all its SAs
/// (hold it in an `Arc`; it is `Clone` for building variants).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// A name for this configuration (a connection's name, as in strongSwan's
    /// `connections.<name>`): never sent, empty by default. An embedder that
    /// serves several configurations reads it back through
    /// [`IkeEndpoint::sa_config`](crate::IkeEndpoint::sa_config) to tell which one an
    /// IKE SA runs with, also for configurations its [`ResolvesPeer`] derives per peer.
    pub name: String,
    /// Our identity, sent in IDi / IDr.
    pub local_id: Identity,
    /// The identity the peer must prove; `None` accepts any identity that knows the PSK.
    pub remote_id: Option<Identity>,
    /// The pre-shared key (RFC 7296 §2.15), for whichever direction of `auth` and
    /// `peer_auth` is [`LocalAuth::Psk`] / [`PeerAuth::Psk`].
    pub psk: Psk,
    /// How we authenticate ourselves; PSK by default.
    pub auth: LocalAuth,
    /// How the peer must authenticate itself; PSK by default.
    pub peer_auth: PeerAuth,
    /// Our certificate chain, DER, end-entity first: sent in CERT payloads
    /// (encoding 4, RFC 7296 §3.6) in IKE_AUTH when `auth` is a signature. The
    /// end-entity certificate must hold the public key of `auth`'s signer. Empty by
    /// default (raw keys, or a peer that has our certificate already).
    pub local_certs: Vec<Vec<u8>>,
    /// IKE SA proposals in order of preference (`ProposalKind::Ike`).
    pub ike_proposals: Vec<Proposal>,
    /// ESP proposals in order of preference (`ProposalKind::Esp`); key exchange
    /// methods in them mean PFS in CREATE_CHILD_SA.
    pub esp_proposals: Vec<Proposal>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Tunnel or transport mode (transport sends USE_TRANSPORT_MODE, RFC 7296 §1.3.1).
    pub mode: Mode,
    /// Rekey the IKE SA after this long (minus jitter); `None` = never on our own.
    pub ike_rekey: Option<Duration>,
    /// Rekey each Child SA after this long (minus jitter); `None` = never on our own.
    pub child_rekey: Option<Duration>,
    /// Rekey times are shortened by a random amount of up to this percentage, so both
    /// ends rarely rekey at the same moment (RFC 7296 §2.8.1). At most 50.
    pub rekey_jitter_percent: u8,
    /// Retransmission of our requests.
    pub retransmit: Retransmit,
    /// Send a liveness check (empty INFORMATIONAL) when nothing authenticated came from
    /// the peer for this long; `None` = only on [`check_liveness`](crate::IkeEndpoint::check_liveness).
    pub dpd: Option<Duration>,
    /// IKE fragmentation (RFC 7383): the IP MTU of the path. With `Some`, we announce
    /// IKEV2_FRAGMENTATION_SUPPORTED and, when the peer does too, split protected
    /// messages whose IP datagrams would exceed it.
    pub fragment_mtu: Option<usize>,
    /// Interval of NAT keepalives (RFC 3948 §2.3) while we are behind a NAT; see
    /// [`Event::NatKeepaliveDue`](crate::Event::NatKeepaliveDue).
    pub nat_keepalive: Duration,
    /// Force UDP encapsulation of ESP (RFC 3948) even without a NAT on the path, for
    /// networks that pass UDP but not raw ESP: our NAT_DETECTION_SOURCE_IP hash is
    /// made not to match, so the peer sees us behind a NAT, and we act so (IKE moves
    /// to port 4500, Child SAs get `udp_encap`, keepalives are due). Needs a peer that
    /// does NAT detection (every RFC 7296 peer). `false` by default.
    pub force_udp_encap: bool,
    /// MOBIKE (RFC 4555): announce MOBIKE_SUPPORTED in IKE_AUTH, and when the peer
    /// does too, let the original initiator move the IKE SA and its Child SAs to a
    /// new address ([`IkeEndpoint::update_path`](crate::IkeEndpoint::update_path))
    /// and the responder follow its UPDATE_SA_ADDRESSES
    /// ([`Event::PathUpdated`](crate::Event::PathUpdated)). `true` by default, as
    /// strongSwan's `mobike = yes`.
    pub mobike: bool,
    /// A post-quantum preshared key (RFC 8784); `None` by default. With one, we send
    /// USE_PPK in IKE_SA_INIT; when both sides do, it is mixed into the keys.
    pub ppk: Option<Ppk>,
    /// As initiator: the virtual addresses to ask for in a CFG_REQUEST (RFC 7296
    /// §3.15), strongSwan's `vips`: `0.0.0.0` or `::` for any address of the family,
    /// a specific one to ask for it. Empty (the default) sends no CP payload. The
    /// assigned addresses come in [`Event::IkeSaEstablished`](crate::Event::IkeSaEstablished)
    /// and the Child SAs' local selectors narrow to them.
    pub virtual_ips: Vec<IpAddr>,
    /// As responder: where virtual addresses come from for initiators that ask for
    /// them (RFC 7296 §3.15); `None` (the default) answers no CFG_REQUEST.
    pub pool: Option<Arc<dyn AddressPool>>,
    /// Anti-replay window handed to the data plane in each `ChildSaParams`.
    pub replay_window: u32,
    /// Most Child SAs one IKE SA may have; further CREATE_CHILD_SA requests for new
    /// ones are refused with NO_ADDITIONAL_SAS (rekeys are always allowed), so an
    /// authenticated but hostile peer cannot exhaust memory or SPIs.
    pub max_child_sas: usize,
    /// Demand a COOKIE (RFC 7296 §2.6) once this many responder SAs are half open;
    /// 0 demands it always.
    pub half_open_cookie_threshold: usize,
    /// How long a half-open responder SA waits for IKE_AUTH. Keep it above the
    /// peers' retransmission time ([`Retransmit::total`]), or a lossy path loses
    /// handshakes whose IKE_AUTH needed many retransmissions.
    pub half_open_timeout: Duration,
    /// How long a cookie secret is used before it is replaced (the previous one stays
    /// valid for as long again).
    pub cookie_secret_lifetime: Duration,
    /// Most responder SAs that may be half open at once. A new IKE_SA_INIT that passed
    /// the cookie (and puzzle) checks when this many are half open displaces the
    /// oldest half-open SA: a flood of initiators that never send IKE_AUTH then
    /// cannot hold more state than this, and cannot lock out a legitimate initiator,
    /// whose IKE_AUTH follows within a round trip. 0 refuses every new responder SA.
    pub max_half_open: usize,
    /// Most responder SAs one source address may hold half open; IKE_SA_INIT requests
    /// above it are dropped (and counted in [`EndpointStats`](crate::EndpointStats)).
    /// It is checked after the cookie, so the address is not spoofed.
    pub max_half_open_per_source: usize,
    /// Largest IKE_SA_INIT request a responder keeps: the whole request must be kept
    /// until IKE_AUTH, whose AUTH payload signs it (RFC 7296 §2.15), so larger
    /// requests are dropped unanswered. RFC 7296 §2 asks implementations to accept
    /// 3000-byte messages.
    pub max_init_request_len: usize,
    /// Client puzzles (RFC 8019): `Some` demands a puzzle solution with the cookie
    /// once this many responder SAs are half open (it is only asked for while cookies
    /// are, so set `half_open_cookie_threshold` at or below it). `None` never asks.
    pub puzzle_threshold: Option<usize>,
    /// The puzzle's difficulty (RFC 8019 §7.1.1.1): how many trailing zero bits each
    /// of the initiator's four results must have (RFC 8019 excludes 1..=8; 0 lets the
    /// initiator choose). Each step doubles the initiator's work; the responder's
    /// check is four PRF calls whatever the difficulty. Solutions with more bits rank
    /// higher when half-open SAs must be displaced.
    pub puzzle_difficulty: u8,
    /// As initiator: the hardest puzzle (in zero bits) we solve when a responder asks
    /// (RFC 8019 §9 asks initiators to cap it); harder ones are answered with the
    /// cookie only. Solving takes about `4 * 2^bits` PRF calls inside
    /// [`handle_datagram`](crate::IkeEndpoint::handle_datagram): 16 bits is a few
    /// tenths of a second.
    pub max_puzzle_difficulty: u8,
    /// Hand out the keys of every IKE SA in an [`Event::IkeSaKeysDerived`]
    /// (`false` by default), so a debugging tool can decrypt captured IKE messages,
    /// as strongSwan's save-keys plugin does. The keys let anyone holding a capture
    /// read and forge this IKE SA's messages: switch it on for debugging only.
    ///
    /// [`Event::IkeSaKeysDerived`]: crate::Event::IkeSaKeysDerived
    pub export_ike_keys: bool,
    /// Answer protected requests (an SK or SKF payload first) for IKE SAs we do not
    /// know with an unprotected INVALID_IKE_SPI notification (RFC 7296 §2.21.4), so a
    /// peer whose IKE SA we lost (we restarted) learns of it; at most this many
    /// answers per second, counted over the whole endpoint; 0 answers nothing.
    /// Responses and unprotected messages are never answered. The answer is smaller
    /// than the request, so it cannot amplify a spoofed flood, and the limit caps
    /// what such a flood can make us send.
    pub invalid_ike_spi_per_second: u32,
    /// As initiator: announce RFC 5685 redirect support (REDIRECT_SUPPORTED in
    /// IKE_SA_INIT) and follow a gateway's REDIRECT ([`Event::Redirected`]);
    /// `true` by default, as strongSwan's `follow_redirects`.
    ///
    /// [`Event::Redirected`]: crate::Event::Redirected
    pub follow_redirects: bool,
    /// As initiator: the most redirects followed within
    /// [`redirect_window`](Self::redirect_window) (RFC 5685 §9 loop prevention);
    /// one more is not followed. 5 by default, as strongSwan.
    pub max_redirects: u8,
    /// The window of [`max_redirects`](Self::max_redirects): 300 s by default.
    pub redirect_window: Duration,
    /// As responder: which clients are sent to another gateway (RFC 5685); `None`
    /// (the default) redirects nobody. The endpoint's configuration is asked in
    /// IKE_SA_INIT, the peer's (the resolver's) in IKE_AUTH; an established IKE SA is
    /// redirected with [`IkeEndpoint::redirect`](crate::IkeEndpoint::redirect).
    pub redirect: Option<Arc<dyn Redirects>>,
}

impl Config {
    /// A configuration with the defaults below, identity `local_id` and key `psk`:
    /// IKE `aes256gcm16-prfsha256-x25519` and `aes128gcm16-prfsha256-x25519`, ESP
    /// `aes256gcm16` and `aes128gcm16`, selectors covering all IPv4 traffic, tunnel
    /// mode, no automatic rekeying, [`Retransmit::default`], no DPD, no fragmentation,
    /// 20 s NAT keepalives, a 1024-packet replay window, cookies above 64 half-open
    /// SAs, which wait 64 s for IKE_AUTH, at most 4096 half-open SAs (32 per source
    /// address) of IKE_SA_INIT requests up to 4096 bytes, no client puzzles, at most
    /// 256 Child SAs per IKE SA, no export of IKE SA keys, at most 10
    /// INVALID_IKE_SPI answers per second, and redirects (RFC 5685) followed at most
    /// 5 times in 300 s but sent to nobody.
    pub fn new(local_id: Identity, psk: impl Into<Psk>) -> Self {
        Config {
            name: String::new(),
            local_id,
            remote_id: None,
            psk: psk.into(),
            auth: LocalAuth::Psk,
            peer_auth: PeerAuth::Psk,
            local_certs: Vec::new(),
            ike_proposals: Proposal::parse_list(
                ProposalKind::Ike,
                "aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-x25519",
            )
            .unwrap_or_default(),
            esp_proposals: Proposal::parse_list(ProposalKind::Esp, "aes256gcm16,aes128gcm16")
                .unwrap_or_default(),
            local_ts: alloc::vec![TrafficSelector::any_v4()],
            remote_ts: alloc::vec![TrafficSelector::any_v4()],
            mode: Mode::Tunnel,
            ike_rekey: None,
            child_rekey: None,
            rekey_jitter_percent: 10,
            retransmit: Retransmit::default(),
            dpd: None,
            fragment_mtu: None,
            nat_keepalive: Duration::from_secs(20),
            force_udp_encap: false,
            mobike: true,
            ppk: None,
            virtual_ips: Vec::new(),
            pool: None,
            replay_window: 1024,
            max_child_sas: 256,
            half_open_cookie_threshold: 64,
            half_open_timeout: Duration::from_secs(64),
            cookie_secret_lifetime: Duration::from_secs(300),
            max_half_open: 4096,
            max_half_open_per_source: 32,
            max_init_request_len: 4096,
            puzzle_threshold: None,
            puzzle_difficulty: 10,
            max_puzzle_difficulty: 16,
            export_ike_keys: false,
            invalid_ike_spi_per_second: 10,
            follow_redirects: true,
            max_redirects: 5,
            redirect_window: Duration::from_secs(300),
            redirect: None,
        }
    }

    /// Replaces the IKE proposals with those of a strongSwan-style list
    /// (`"aes128gcm16-prfsha256-x25519,aes256-sha384-ecp384"`).
    ///
    /// # Errors
    /// The proposal parser's error.
    pub fn with_ike_proposals(mut self, s: &str) -> Result<Self, ProposalError> {
        self.ike_proposals = Proposal::parse_list(ProposalKind::Ike, s)?;
        Ok(self)
    }

    /// Authenticates us with signatures (RFC 7427) made by `signer`.
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> Self {
        let scheme = signer.scheme();
        self.auth = LocalAuth::Signature { signer, scheme };
        self
    }

    /// Requires the peer to authenticate with signatures (RFC 7427) under this
    /// public key (DER SubjectPublicKeyInfo).
    pub fn with_peer_public_key(mut self, spki_der: impl Into<Vec<u8>>) -> Self {
        self.peer_auth = PeerAuth::PublicKey {
            spki_der: spki_der.into(),
        };
        self
    }

    /// Whether either direction uses signatures, so IKE_SA_INIT announces
    /// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
    pub fn uses_signatures(&self) -> bool {
        matches!(self.auth, LocalAuth::Signature { .. }) || self.peer_auth.is_signature()
    }

    /// Requires the peer to authenticate with a certificate that `verifier` accepts
    /// (see [`PeerAuth::Certificate`]).
    pub fn with_peer_certificates(mut self, verifier: Arc<dyn VerifiesPeerCert>) -> Self {
        self.peer_auth = PeerAuth::Certificate { verifier };
        self
    }

    /// Sends this certificate chain (DER, end-entity first) in IKE_AUTH.
    pub fn with_local_certs(mut self, chain: Vec<Vec<u8>>) -> Self {
        self.local_certs = chain;
        self
    }

    /// The CA key hashes for our CERTREQ payloads (RFC 7296 §3.7): those of the
    /// certificate verifier, if the peer authenticates with certificates.
    pub(crate) fn certreq_hashes(&self) -> Option<Vec<[u8; 20]>> {
        match &self.peer_auth {
            PeerAuth::Certificate { verifier } => Some(verifier.ca_key_hashes()),
            _ => None,
        }
    }

    /// Replaces the ESP proposals with those of a strongSwan-style list.
    ///
    /// # Errors
    /// The proposal parser's error.
    pub fn with_esp_proposals(mut self, s: &str) -> Result<Self, ProposalError> {
        self.esp_proposals = Proposal::parse_list(ProposalKind::Esp, s)?;
        Ok(self)
    }
}

/// A gateway's redirect policy (RFC 5685), installed on
/// [`Config::redirect`](crate::Config::redirect): the shape of strongSwan's
/// `redirect_provider_t`. Only clients that announced support (REDIRECT_SUPPORTED or
/// REDIRECTED_FROM in their IKE_SA_INIT request) are asked about; a `None` (the
/// default of both methods) keeps the client here.
pub trait Redirects: Send + Sync {
    /// IKE_SA_INIT (RFC 5685 §4), asked of the endpoint's configuration before any
    /// state is created or key exchange computed: `Some` answers the request with a
    /// REDIRECT carrying the client's nonce and nothing else. The client is not
    /// authenticated yet; only its addresses are known.
    fn redirect_init(&self, local: SocketAddr, remote: SocketAddr) -> Option<Gateway> {
        let _ = (local, remote);
        None
    }

    /// IKE_AUTH (RFC 5685 §6), asked of the peer's configuration (the resolver's)
    /// once the client is authenticated as `peer_id`: `Some` puts a REDIRECT in our
    /// IKE_AUTH response, creates no Child SA, and deletes the IKE SA after
    /// [`Config::half_open_timeout`](crate::Config::half_open_timeout) if the client
    /// does not.
    fn redirect_auth(
        &self,
        peer_id: &Identity,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<Gateway> {
        let _ = (peer_id, local, remote);
        None
    }
}

impl fmt::Debug for dyn Redirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redirects")
    }
}

/// Redirects every authenticated client to one gateway (in IKE_AUTH, RFC 5685 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectAll(pub Gateway);

impl Redirects for RedirectAll {
    fn redirect_auth(&self, _: &Identity, _: SocketAddr, _: SocketAddr) -> Option<Gateway> {
        Some(self.0.clone())
    }
}

/// What a responder knows of a peer when its IKE_AUTH request arrives, before the
/// peer is authenticated: the identity it claims (IDi), the identity it wants us to
/// be (IDr, optional in the request, RFC 7296 §3.5), and the addresses.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PeerHello<'a> {
    /// The identity the peer claims (its IDi payload). Not yet proven: the
    /// credentials the resolver returns are what proves it.
    pub peer_id: &'a Identity,
    /// The identity the peer asks us to use (its IDr payload), if it sent one.
    pub requested_id: Option<&'a Identity>,
    /// Our address and port the request arrived at.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// Chooses a peer's credentials and policy, so that one
/// [`IkeEndpoint`](crate::IkeEndpoint) serves many peers, each with its own key,
/// selectors, proposals and lifetimes (the shape of rustls's `ResolvesServerCert`).
///
/// A responder calls it once per IKE SA, when the IKE_AUTH request arrives: the
/// returned [`Config`] replaces the endpoint's for that IKE SA from then on (its
/// `psk`, `auth`, `peer_auth`, `local_id` and `remote_id` authenticate this exchange; its ESP proposals,
/// selectors, mode, lifetimes, DPD and retransmission serve its Child SAs and later
/// exchanges). The IKE SA's own proposal was chosen in IKE_SA_INIT, before the peer
/// named itself, from the endpoint's configuration. `None` refuses the peer with
/// AUTHENTICATION_FAILED. The returned configuration's `remote_id`, when set, must
/// still equal the claimed identity.
///
/// Initiators choose their configuration per IKE SA with
/// [`IkeEndpoint::connect_with`](crate::IkeEndpoint::connect_with).
pub trait ResolvesPeer: Send + Sync {
    /// The configuration for this peer, or `None` to refuse it.
    fn resolve(&self, hello: &PeerHello<'_>) -> Option<Arc<Config>>;
}

impl<F> ResolvesPeer for F
where
    F: Fn(&PeerHello<'_>) -> Option<Arc<Config>> + Send + Sync,
{
    fn resolve(&self, hello: &PeerHello<'_>) -> Option<Arc<Config>> {
        self(hello)
    }
}

/// Checks a peer's certificates (RFC 7296 §3.6, RFC 4945 §5): installed per peer
/// with [`PeerAuth::Certificate`](crate::PeerAuth::Certificate).
///
/// Called once per IKE_AUTH the peer sends, before its AUTH signature is checked.
/// Implementations must take any bytes without panicking.
pub trait VerifiesPeerCert: Send + Sync {
    /// Verifies `certs`, the DER X.509 certificates of the peer's CERT payloads
    /// (encoding 4) in the order received: the first holds the key that signed AUTH
    /// (RFC 7296 §3.6), the rest are candidate intermediates. `peer_id` is the
    /// identity the peer claims in its ID payload; `now` is the endpoint's clock,
    /// which the verifier maps to wall-clock time for the validity check.
    ///
    /// Returns the end-entity certificate's DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// The reason the certificates are not accepted.
    fn verify(
        &self,
        certs: &[&[u8]],
        peer_id: &Identity,
        now: Instant,
    ) -> Result<Vec<u8>, CertRejection>;

    /// The SHA-1 hashes of the trust anchors' SubjectPublicKeyInfo, sent in a
    /// CERTREQ payload (RFC 7296 §3.7) so that the peer sends a certificate it can
    /// chain to one of them. Empty by default.
    fn ca_key_hashes(&self) -> Vec<[u8; 20]> {
        Vec::new()
    }
}

impl<F> VerifiesPeerCert for F
where
    F: Fn(&[&[u8]], &Identity, Instant) -> Result<Vec<u8>, CertRejection> + Send + Sync,
{
    fn verify(
        &self,
        certs: &[&[u8]],
        peer_id: &Identity,
        now: Instant,
    ) -> Result<Vec<u8>, CertRejection> {
        self(certs, peer_id, now)
    }
}

/// A [`Config`] field whose value cannot work, from [`Config::validate`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("config field {field}: {problem}")]
pub struct ConfigError {
    /// The field, as it is named in [`Config`] (`"psk"`, `"retransmit.max_tries"`).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl Config {
    /// Checks the fields whose values cannot work, naming the first bad one: an empty
    /// PSK (which anyone could prove) when either direction uses the PSK, a signer
    /// whose scheme is not the configured one or has no RFC 7427 AlgorithmIdentifier,
    /// an empty peer public key, no IKE or ESP proposal, no traffic selectors, a
    /// replay window other than 0 (off) or 32..=4096 (RFC 6479 windows as the data
    /// plane builds them), a rekey jitter above 50 %, no transmission at all, a zero
    /// or shrinking retransmission wait, and caps that would refuse every responder
    /// SA. [`IkeEndpoint::with_config`](crate::IkeEndpoint::with_config) runs it.
    ///
    /// # Errors
    /// The first [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, problem| Err(ConfigError { field, problem });
        let psk_used =
            matches!(self.auth, LocalAuth::Psk) || matches!(self.peer_auth, PeerAuth::Psk);
        if psk_used && self.psk.expose().is_empty() {
            return bad("psk", "empty: any peer could prove it");
        }
        if let LocalAuth::Signature { signer, scheme } = &self.auth {
            if signer.scheme() != *scheme {
                return bad("auth", "the signer's scheme is not the one configured");
            }
            if crate::sigauth::algorithm_identifier(*scheme).is_none() {
                return bad(
                    "auth",
                    "scheme not usable with RFC 7427 signature authentication",
                );
            }
        }
        if let PeerAuth::PublicKey { spki_der } = &self.peer_auth {
            if spki_der.is_empty() {
                return bad("peer_auth", "empty public key");
            }
        }
        if !self
            .ike_proposals
            .iter()
            .any(|p| p.kind == ProposalKind::Ike)
        {
            return bad("ike_proposals", "no IKE proposal");
        }
        if !self
            .esp_proposals
            .iter()
            .any(|p| p.kind == ProposalKind::Esp)
        {
            return bad("esp_proposals", "no ESP proposal");
        }
        if self.local_ts.is_empty() {
            return bad("local_ts", "no traffic selector");
        }
        if self.remote_ts.is_empty() {
            return bad("remote_ts", "no traffic selector");
        }
        if self.replay_window != 0 && !(32..=4096).contains(&self.replay_window) {
            return bad("replay_window", "must be 0 (off) or 32..=4096");
        }
        if self.rekey_jitter_percent > 50 {
            return bad("rekey_jitter_percent", "must be at most 50");
        }
        if self.retransmit.max_tries == 0 {
            return bad("retransmit.max_tries", "must be at least 1");
        }
        if self.retransmit.initial == Duration::ZERO {
            return bad("retransmit.initial", "must be above zero");
        }
        if self.retransmit.multiplier == 0 {
            return bad("retransmit.multiplier", "must be at least 1");
        }
        if self.retransmit.max_wait < self.retransmit.initial {
            return bad("retransmit.max_wait", "must be at least retransmit.initial");
        }
        if self.max_half_open_per_source == 0 {
            return bad(
                "max_half_open_per_source",
                "0 would refuse every initiator that answers a cookie",
            );
        }
        if self.max_init_request_len < 1280 {
            return bad(
                "max_init_request_len",
                "below 1280 bytes (RFC 7296 §2: messages up to 1280 bytes MUST be accepted)",
            );
        }
        Ok(())
    }
}

impl Default for Config {
    /// [`Config::new`] with an empty FQDN identity and an empty key: set both.
    fn default() -> Self {
        Config::new(Identity::Fqdn(String::new()), Psk::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn identity_from_str() {
        assert_eq!(
            "10.0.0.1".parse::<Identity>().unwrap(),
            Identity::Ipv4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert!(matches!(
            "::1".parse::<Identity>().unwrap(),
            Identity::Ipv6(_)
        ));
        assert_eq!(
            "@vpn.example".parse::<Identity>().unwrap(),
            Identity::Fqdn("vpn.example".into())
        );
        assert_eq!(
            "vpn.example".parse::<Identity>().unwrap(),
            Identity::Fqdn("vpn.example".into())
        );
        assert_eq!(
            "a@b".parse::<Identity>().unwrap(),
            Identity::Rfc822("a@b".into())
        );
        assert_eq!(
            "@#0aff".parse::<Identity>().unwrap(),
            Identity::KeyId(alloc::vec![10, 255])
        );
        assert!("".parse::<Identity>().is_err());
        assert!("@#0".parse::<Identity>().is_err());
        assert_eq!(Identity::Fqdn("x".into()).to_string(), "@x");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let good = Config::new(Identity::Fqdn("gw".into()), "secret");
        assert_eq!(good.validate(), Ok(()));
        let field = |c: Config| c.validate().unwrap_err().field;
        assert_eq!(field(Config::default()), "psk");
        let mut c = good.clone();
        c.replay_window = 16;
        assert_eq!(field(c), "replay_window");
        let mut c = good.clone();
        c.replay_window = 0;
        assert_eq!(c.validate(), Ok(()), "0 switches anti-replay off");
        let mut c = good.clone();
        c.rekey_jitter_percent = 51;
        assert_eq!(field(c), "rekey_jitter_percent");
        let mut c = good.clone();
        c.retransmit.max_tries = 0;
        assert_eq!(field(c), "retransmit.max_tries");
        let mut c = good.clone();
        c.retransmit.multiplier = 0;
        assert_eq!(field(c), "retransmit.multiplier");
        let mut c = good.clone();
        c.esp_proposals.clear();
        assert_eq!(field(c), "esp_proposals");
        let mut c = good.clone();
        c.local_ts.clear();
        assert_eq!(field(c), "local_ts");
        let mut c = good.clone();
        c.max_half_open_per_source = 0;
        assert_eq!(field(c), "max_half_open_per_source");
        let mut c = good;
        c.max_init_request_len = 1000;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "max_init_request_len");
        assert!(alloc::format!("{e}").contains("max_init_request_len"));
    }

    #[test]
    fn psk_compares_by_value() {
        assert_eq!(Psk::from("hunter2"), Psk::from(&b"hunter2"[..]));
        assert_ne!(Psk::from("hunter2"), Psk::from("hunter3"));
        assert_ne!(Psk::from("hunter2"), Psk::from("hunter"));
        assert_eq!(Psk::default(), Psk::from(""));
    }

    #[test]
    fn psk_is_redacted() {
        let p = Psk::from("hunter2");
        assert!(!alloc::format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn retransmit_schedule() {
        let r = Retransmit::default();
        assert_eq!(r.wait(0), Duration::from_secs(1));
        assert_eq!(r.wait(3), Duration::from_secs(8));
        assert_eq!(r.wait(10), Duration::from_secs(32));
        assert_eq!(r.total(), Duration::from_secs(63));
        let big = Retransmit {
            max_tries: u32::MAX,
            ..r
        };
        assert!(big.total() > Duration::from_secs(1 << 30));
    }
}

/// A configuration attribute other than the address itself (RFC 7296 §3.15.1):
/// its type and value bytes, as sent in a CFG_REPLY.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CfgAttribute {
    /// The attribute type (15 bits).
    pub ty: CfgAttrType,
    /// The value.
    pub value: Vec<u8>,
}

impl CfgAttribute {
    /// A DNS server: INTERNAL_IP4_DNS or INTERNAL_IP6_DNS by the address's family.
    pub fn dns(server: IpAddr) -> Self {
        match server {
            IpAddr::V4(a) => CfgAttribute {
                ty: CfgAttrType::INTERNAL_IP4_DNS,
                value: a.octets().to_vec(),
            },
            IpAddr::V6(a) => CfgAttribute {
                ty: CfgAttrType::INTERNAL_IP6_DNS,
                value: a.octets().to_vec(),
            },
        }
    }

    /// The DNS server this attribute names: the inverse of [`CfgAttribute::dns`];
    /// `None` for another type or a value of the wrong length.
    pub fn dns_server(&self) -> Option<IpAddr> {
        match self.ty {
            CfgAttrType::INTERNAL_IP4_DNS => <[u8; 4]>::try_from(self.value.as_slice())
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            CfgAttrType::INTERNAL_IP6_DNS => <[u8; 16]>::try_from(self.value.as_slice())
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        }
    }
}

/// What a responder assigns one peer: its virtual addresses and the other
/// attributes of the CFG_REPLY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Virtual addresses, at most one per family the peer asked for.
    pub addresses: Vec<IpAddr>,
    /// Further attributes (DNS servers, ...), sent whatever the peer asked for.
    pub attributes: Vec<CfgAttribute>,
}

/// Hands out virtual addresses (the shape of strongSwan's `pools`): installed on a
/// responder's [`Config::pool`](crate::Config::pool).
///
/// The endpoint calls [`acquire`](AddressPool::acquire) when an IKE_AUTH request
/// carrying a CFG_REQUEST authenticates, and [`release`](AddressPool::release) for
/// each address when the IKE SA that holds it ends (not when it is rekeyed: the new
/// IKE SA keeps the lease). A pool that keeps leases per identity gives a peer that
/// reconnects its old address back.
pub trait AddressPool: Send + Sync {
    /// The lease for `peer` (its EAP identity when EAP authenticated it, else its
    /// IKE identity), which asked for `requested`: `0.0.0.0` or `::` for any address
    /// of that family, a specific address to ask for that one back. Families the
    /// pool does not serve are left out of the lease; an empty lease answers the
    /// request with INTERNAL_ADDRESS_FAILURE.
    fn acquire(&self, peer: &Identity, requested: &[IpAddr]) -> Lease;

    /// `peer`'s IKE SA that held `address` ended.
    fn release(&self, peer: &Identity, address: IpAddr);
}

impl fmt::Debug for dyn AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddressPool")
    }
}
