//! What an [`IkeEndpoint`](crate::IkeEndpoint) hands back: datagrams to send and
//! events.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use ipsec_core::{ChildSaParams, IkeSpi, Spi};
use ipsec_crypto::{EncrDesc, IntegDesc, PrfDesc, SecretBytes};

use crate::error::{CloseReason, Error};

/// Names one IKE SA of an endpoint for its whole life, across IKE SA rekeys (which
/// change the SPIs but not the handle).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SaHandle(pub u64);

impl fmt::Display for SaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ike#{}", self.0)
    }
}

/// Names one Child SA (a pair of SAs, one per direction); unique within an endpoint.
/// A rekeyed Child SA gets a new id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ChildSaId(pub u64);

impl fmt::Display for ChildSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "child#{}", self.0)
    }
}

/// One UDP datagram to send.
///
/// `payload` is exactly the UDP payload: when either port is 4500 it starts with the
/// four zero bytes of the non-ESP marker (RFC 3948 §2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Send from this address and port.
    pub local: SocketAddr,
    /// Send to this address and port.
    pub remote: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// What NAT detection (RFC 7296 §2.23) found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NatState {
    /// Our address as the peer sees it differs from ours: we are behind a NAT (and
    /// send keepalives).
    pub local_behind_nat: bool,
    /// The peer's address as we see it differs from what it sent: it is behind a NAT.
    pub remote_behind_nat: bool,
}

impl NatState {
    /// True when either side is behind a NAT: IKE runs on port 4500 and ESP is
    /// encapsulated in UDP.
    pub fn any(&self) -> bool {
        self.local_behind_nat || self.remote_behind_nat
    }
}

/// The keys that protect the messages of one IKE SA (RFC 7296 §2.14), handed out
/// for debugging by [`Event::IkeSaKeysDerived`] when
/// [`Config::export_ike_keys`](crate::Config::export_ike_keys) is set: what
/// Wireshark's `ikev2_decryption_table` (and strongSwan's save-keys plugin) needs to
/// decrypt and verify captured IKE messages.
///
/// The keys zeroize on drop, the struct is not `Clone`, and `Debug` prints the SPIs
/// and transforms but never a key.
#[non_exhaustive]
pub struct IkeSaKeys {
    /// The original initiator's SPI (SPIi) of this IKE SA.
    pub spi_i: IkeSpi,
    /// The original responder's SPI (SPIr) of this IKE SA.
    pub spi_r: IkeSpi,
    /// The encryption transform (IANA id in `encr.id`, key size in `encr.key_bits`).
    pub encr: &'static EncrDesc,
    /// The integrity transform; `None` with a combined-mode (AEAD) cipher.
    pub integ: Option<&'static IntegDesc>,
    /// The PRF.
    pub prf: &'static PrfDesc,
    /// SK_ei: encryption key, initiator to responder (with the salt after the key
    /// for AEAD ciphers, RFC 5282 §7.1 and RFC 7634 §3).
    pub sk_ei: SecretBytes,
    /// SK_er: encryption key, responder to initiator (with the salt, as `sk_ei`).
    pub sk_er: SecretBytes,
    /// SK_ai: integrity key, initiator to responder (empty with an AEAD cipher).
    pub sk_ai: SecretBytes,
    /// SK_ar: integrity key, responder to initiator (empty with an AEAD cipher).
    pub sk_ar: SecretBytes,
}

impl fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeSaKeys")
            .field("spi_i", &self.spi_i)
            .field("spi_r", &self.spi_r)
            .field("encr", &self.encr.token)
            .field("integ", &self.integ.map(|i| i.token))
            .field("prf", &self.prf.token)
            .finish_non_exhaustive()
    }
}

/// Something that happened to an IKE SA or one of its Child SAs.
///
/// `ChildSaInstalled` is large (it carries the keys inline, without a heap
/// allocation); events are rare, so the enum is not boxed.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Event {
    /// IKE_SA_INIT and IKE_AUTH completed, the peer is authenticated.
    IkeSaEstablished {
        /// Our IKE SPI.
        local_spi: IkeSpi,
        /// The peer's IKE SPI.
        remote_spi: IkeSpi,
        /// The chosen IKE proposal as a canonical proposal string.
        suite: String,
        /// What NAT detection found.
        nat: NatState,
        /// The peer's identity, as its ID payload (IDi or IDr) carried it and its AUTH
        /// payload proved it: the authenticated identity a gateway binds policy to.
        peer_id: crate::Identity,
        /// The identity the initiator proved with EAP (RFC 7296 §2.16; its
        /// EAP-Identity, or its IDi when none was asked for), when it authenticated
        /// with EAP: the user a remote-access gateway binds policy and leases to.
        eap_identity: Option<Vec<u8>>,
        /// Virtual addresses (RFC 7296 §3.15): as initiator, those the responder
        /// assigned us (use them as the inner source address; the Child SAs' local
        /// selectors are narrowed to them); as responder, those our
        /// [`AddressPool`](crate::AddressPool) leased to the peer. Empty without a
        /// CFG_REQUEST.
        virtual_ips: Vec<core::net::IpAddr>,
        /// As initiator: the other attributes of the responder's CFG_REPLY (DNS
        /// servers, ...). Empty as responder.
        attributes: Vec<crate::CfgAttribute>,
    },
    /// The keys of an IKE SA were derived, for debugging tools (decrypting captured
    /// IKE messages); only with
    /// [`Config::export_ike_keys`](crate::Config::export_ike_keys) set.
    ///
    /// Comes as soon as the keys exist, like strongSwan's `ike_derived_keys` hook:
    /// after IKE_SA_INIT (before [`Event::IkeSaEstablished`], and also when IKE_AUTH
    /// then fails, which is when a decrypted IKE_AUTH helps most) and for every new
    /// IKE SA of a CREATE_CHILD_SA rekey (before [`Event::IkeSaRekeyed`]; after
    /// simultaneous rekeys also for the redundant IKE SA that is deleted at once).
    IkeSaKeysDerived {
        /// The SPIs, transforms and SK_e/SK_a keys (zeroize on drop).
        keys: IkeSaKeys,
    },
    /// A Child SA is ready: install both directions in the data plane.
    ChildSaInstalled {
        /// Its id.
        id: ChildSaId,
        /// Everything the data plane needs (keys zeroize on drop).
        params: ChildSaParams,
        /// The chosen ESP proposal as a canonical proposal string.
        suite: String,
    },
    /// A Child SA could not be created (the IKE SA stays up).
    ChildSaFailed {
        /// The id that [`create_child_sa`](crate::IkeEndpoint::create_child_sa)
        /// returned, or the one the first Child SA would have had.
        id: ChildSaId,
        /// Why.
        error: Error,
    },
    /// `new` (installed just before) replaces `old`, which is deleted shortly after.
    ChildSaRekeyed {
        /// The rekeyed Child SA.
        old: ChildSaId,
        /// Its successor.
        new: ChildSaId,
    },
    /// A Child SA is gone: remove both directions from the data plane.
    ChildSaDeleted {
        /// Its id.
        id: ChildSaId,
        /// The SPI it received with.
        inbound_spi: Spi,
        /// The SPI it sent with.
        outbound_spi: Spi,
    },
    /// The IKE SA was rekeyed (RFC 7296 §2.18): same handle and Child SAs, new SPIs
    /// and keys.
    IkeSaRekeyed {
        /// Our SPI of the old IKE SA.
        old_local_spi: IkeSpi,
        /// The peer's SPI of the old IKE SA.
        old_remote_spi: IkeSpi,
        /// Our SPI of the new IKE SA.
        new_local_spi: IkeSpi,
        /// The peer's SPI of the new IKE SA.
        new_remote_spi: IkeSpi,
    },
    /// The peer answered a liveness check.
    LivenessOk,
    /// The peer's address or port changed (a NAT mapping changed, RFC 7296 §2.23):
    /// IKE and the outbound ESP of every Child SA should go there now.
    PeerAddressChanged {
        /// The new address and port.
        remote: SocketAddr,
    },
    /// The IKE SA moved to a new pair of addresses by MOBIKE (RFC 4555 §3.5): as
    /// responder, the initiator's UPDATE_SA_ADDRESSES came from `remote` to `local`;
    /// as initiator, the responder answered ours after
    /// [`IkeEndpoint::update_path`](crate::IkeEndpoint::update_path) (or, without
    /// MOBIKE, `update_path` switched our address at once). NAT detection was redone
    /// on the new path. The data plane moves the outbound ESP of every Child SA of
    /// the IKE SA to `remote` (from `local`) and encapsulates it in UDP as
    /// `udp_encap` says; sequence numbers and replay windows stay.
    ///
    /// Unlike [`Event::PeerAddressChanged`] (RFC 7296 §2.23 NAT following, where
    /// only the peer's address changes and encapsulation stays), both ends and the
    /// encapsulation may change here.
    PathUpdated {
        /// Our address and port.
        local: SocketAddr,
        /// The peer's address and port.
        remote: SocketAddr,
        /// What NAT detection found on the new path.
        nat: NatState,
        /// UDP encapsulation of ESP (RFC 3948) on the new path: when a NAT is
        /// detected (or forced), with these ports; `None`: plain ESP.
        udp_encap: Option<ipsec_core::UdpEncap>,
    },
    /// We are behind a NAT and nothing was sent to the peer for
    /// [`Config::nat_keepalive`](crate::Config::nat_keepalive): the data plane
    /// should send a NAT keepalive (the single byte `0xff`, RFC 3948 §2.3) from
    /// `local` to `remote` unless it sent ESP meanwhile. Comes every `nat_keepalive`
    /// while the IKE SA is up and a NAT is detected on our side.
    NatKeepaliveDue {
        /// Our address (port 4500).
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
    },
    /// The gateway redirected us (RFC 5685) and we follow: connect to
    /// `redirect.to` with
    /// [`IkeEndpoint::connect_redirected`](crate::IkeEndpoint::connect_redirected).
    /// This IKE SA ends: at once after IKE_SA_INIT ([`CloseReason::Redirected`]),
    /// with a Delete sent once after IKE_AUTH (the same reason), or, when
    /// established, after our Delete exchange (`Deleted { by_peer: false }`).
    ///
    /// [`CloseReason::Redirected`]: crate::CloseReason::Redirected
    Redirected {
        /// Where to, from where, when; the token for the next connect.
        redirect: crate::Redirect,
    },
    /// As gateway: we redirected the peer of this IKE SA to `to` (RFC 5685), in
    /// IKE_AUTH or with [`IkeEndpoint::redirect`](crate::IkeEndpoint::redirect). The
    /// client deletes the IKE SA; if it does not, we do after
    /// [`Config::half_open_timeout`](crate::Config::half_open_timeout).
    PeerRedirected {
        /// The gateway the peer was sent to.
        to: crate::Gateway,
    },
    /// The IKE SA is gone (its Child SAs were reported deleted before).
    IkeSaClosed {
        /// Why.
        reason: CloseReason,
    },
}
