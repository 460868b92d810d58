//! [`Notice`]: what the driver did with an IKE event, for an embedder that reports
//! it (the `ipsec connect`, `listen` and `demo` commands print one line per notice).
//! A leaf module: it names the protocol's types only.

use std::net::{IpAddr, SocketAddr};

use ipsec::core::{IkeSpi, Mode, Spi, TrafficSelector, UdpEncap};
use ipsec::ike::{
    CfgAttribute, ChildSaId, CloseReason, Error, Identity, IkeSaKeys, NatState, SaHandle,
};
use ipsec::sad::SaId;

/// Something that happened to an IKE SA or a Child SA, after the driver acted on it
/// (a Child SA is in the SAD when its [`Notice::ChildUp`] comes, and gone from it when
/// its [`Notice::ChildDeleted`] comes). Queued only when asked for with
/// [`Driver::keep_notices`](super::Driver::keep_notices), and drained with
/// [`Driver::poll_notice`](super::Driver::poll_notice).
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice {
    /// IKE_SA_INIT and IKE_AUTH completed: the peer is authenticated (RFC 7296 §1.2).
    IkeUp {
        /// The IKE SA.
        sa: SaHandle,
        /// The connection's name.
        connection: String,
        /// Whether we initiated it.
        initiator: bool,
        /// Our IKE SPI.
        local_spi: IkeSpi,
        /// The peer's IKE SPI.
        remote_spi: IkeSpi,
        /// The chosen IKE proposal.
        suite: String,
        /// What NAT detection found (RFC 7296 §2.23).
        nat: NatState,
        /// The peer's authenticated identity.
        peer_id: Identity,
        /// The peer's EAP identity, when EAP authenticated it (responder).
        eap_identity: Option<Vec<u8>>,
        /// Virtual addresses (RFC 7296 §3.15): assigned to us (initiator; the
        /// Child SAs' local selectors are narrowed to them), or leased to the peer
        /// (responder).
        virtual_ips: Vec<IpAddr>,
        /// As initiator, the other attributes of the CFG_REPLY (DNS servers, ...).
        attributes: Vec<CfgAttribute>,
    },
    /// The keys of an IKE SA were derived (only with the connection's
    /// `export_ike_keys` set: a debugging aid that hands out keys).
    IkeKeys {
        /// The IKE SA.
        sa: SaHandle,
        /// The SPIs, transforms and keys (zeroize on drop).
        keys: IkeSaKeys,
    },
    /// The IKE SA was rekeyed (RFC 7296 §2.18): same handle, new SPIs.
    IkeRekeyed {
        /// The IKE SA.
        sa: SaHandle,
        /// Our SPI of the new IKE SA.
        local_spi: IkeSpi,
        /// The peer's SPI of the new IKE SA.
        remote_spi: IkeSpi,
    },
    /// A Child SA was negotiated and installed in the SAD with its outbound policy.
    ChildUp {
        /// Its IKE SA.
        sa: SaHandle,
        /// The endpoint's id of the Child SA.
        child: ChildSaId,
        /// Its id in the SAD; `None` when the SAD refused it (it carries no traffic).
        sad: Option<SaId>,
        /// The chosen ESP proposal.
        suite: String,
        /// Tunnel or transport mode.
        mode: Mode,
        /// Extended sequence numbers.
        esn: bool,
        /// UDP encapsulation as IKE negotiated it (RFC 3948); `None` when it did not,
        /// also when [`Driver::set_esp_in_udp`](super::Driver::set_esp_in_udp)
        /// installed the SA with UDP encapsulation anyway.
        udp_encap: Option<UdpEncap>,
        /// Our inbound SPI.
        inbound_spi: Spi,
        /// The peer's SPI, our outbound.
        outbound_spi: Spi,
        /// Our selectors.
        local_ts: Vec<TrafficSelector>,
        /// The peer's selectors.
        remote_ts: Vec<TrafficSelector>,
    },
    /// `new` (announced by its [`Notice::ChildUp`] just before) replaces `old`, which is
    /// deleted shortly after (RFC 7296 §2.8).
    ChildRekeyed {
        /// The IKE SA.
        sa: SaHandle,
        /// The rekeyed Child SA.
        old: ChildSaId,
        /// Its successor.
        new: ChildSaId,
    },
    /// A Child SA could not be created or rekeyed (the IKE SA stays up).
    ChildFailed {
        /// The IKE SA.
        sa: SaHandle,
        /// The Child SA's id.
        child: ChildSaId,
        /// Why.
        error: Error,
    },
    /// A Child SA is gone, and removed from the SAD.
    ChildDeleted {
        /// The IKE SA.
        sa: SaHandle,
        /// The Child SA.
        child: ChildSaId,
        /// The SPI it received with.
        inbound_spi: Spi,
        /// The SPI it sent with.
        outbound_spi: Spi,
    },
    /// The peer's address or port changed (a NAT mapping changed, RFC 7296 §2.23).
    /// IKE follows it, and so do the SAD's SAs of the IKE SA (`Sad::update_sa_path`:
    /// the new address and UDP port, our side unchanged).
    PeerMoved {
        /// The IKE SA.
        sa: SaHandle,
        /// The new address and port.
        remote: SocketAddr,
    },
    /// The gateway redirected IKE SA `sa` (RFC 5685); `new` is the IKE SA the driver
    /// started toward `to`, if it could (an FQDN is not resolved here).
    Redirected {
        /// The redirected IKE SA (it ends).
        sa: SaHandle,
        /// The new gateway.
        to: ipsec::ike::Gateway,
        /// The IKE SA initiated toward it.
        new: Option<SaHandle>,
    },
    /// As responder, we sent the peer of IKE SA `sa` to gateway `to` (RFC 5685).
    PeerRedirected {
        /// The IKE SA.
        sa: SaHandle,
        /// The gateway.
        to: ipsec::ike::Gateway,
    },
    /// MOBIKE (RFC 4555) moved the IKE SA to `local` / `remote` (the peer's
    /// UPDATE_SA_ADDRESSES, or the answer to ours after
    /// [`Driver::local_address_changed`](crate::driver::Driver::local_address_changed)); its
    /// Child SAs in the SAD were moved with it (`Sad::update_sa_path`).
    PathUpdated {
        /// The IKE SA.
        sa: SaHandle,
        /// Our address and port.
        local: SocketAddr,
        /// The peer's address and port.
        remote: SocketAddr,
        /// UDP encapsulation of ESP on the new path.
        udp_encap: Option<UdpEncap>,
    },
    /// The IKE SA is gone, with its Child SAs.
    IkeClosed {
        /// The IKE SA.
        sa: SaHandle,
        /// Why.
        reason: CloseReason,
        /// Whether it had been established (its peer authenticated); `false` for a
        /// handshake that failed.
        established: bool,
    },
}

impl Notice {
    /// The IKE SA the notice is about.
    pub fn sa(&self) -> SaHandle {
        match self {
            Notice::IkeUp { sa, .. }
            | Notice::IkeKeys { sa, .. }
            | Notice::IkeRekeyed { sa, .. }
            | Notice::ChildUp { sa, .. }
            | Notice::ChildRekeyed { sa, .. }
            | Notice::ChildFailed { sa, .. }
            | Notice::ChildDeleted { sa, .. }
            | Notice::PeerMoved { sa, .. }
            | Notice::Redirected { sa, .. }
            | Notice::PeerRedirected { sa, .. }
            | Notice::PathUpdated { sa, .. }
            | Notice::IkeClosed { sa, .. } => *sa,
        }
    }
}
