#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod admission;
mod cert;
mod config;
mod cp;
pub mod eap;
mod endpoint;
mod error;
mod event;
mod inflight;
mod keys;
mod msg;
mod proposal;
mod puzzle;
mod redirect;
mod sa;
mod session;
mod shared;
pub mod sigauth;
mod snapshot;
mod stateless;
mod timers;
mod trace;

pub use admission::EndpointStats;
pub use cert::CertRejection;
pub use config::{
    AddressPool, CfgAttribute, Config, ConfigError, Identity, IdentityError, Lease, LocalAuth,
    PeerAuth, PeerHello, Ppk, Psk, RedirectAll, Redirects, ResolvesPeer, Retransmit,
    VerifiesPeerCert,
};
pub use endpoint::{Handled, IkeEndpoint};
pub use error::{ApiMisuse, AuthFailure, CloseReason, Error, PeerIncompatible, PeerMisbehaved};
pub use event::{ChildSaId, Event, IkeSaKeys, NatState, SaHandle, Transmit};
pub use ipsec_core::{ChildSaParams, Duration, Instant, Mode, TrafficSelector};
pub use ipsec_crypto::{CryptoProvider, KeId, Proposal, ProposalKind};
pub use ipsec_ike_wire::NotifyType;
pub use redirect::{Gateway, Redirect, RedirectPhase};
pub use shared::{IkeCounters, SpiInUse, SpiSpace, SpiSpaceError, NAT_T_PORT, NON_ESP_MARKER};
pub use snapshot::{
    CachedResponse, ChildSnapshot, ExportError, IkeSaSnapshot, IkeSnapshotKeys, ImportError,
    TsSnapshot, IKE_SNAPSHOT_VERSION,
};
