//! Shared vocabulary and mechanisms of the IPsec workspace.
//!
//! `ipsec-core` has no crypto, no I/O and no heap: it builds as `#![no_std]` without
//! `alloc`, so that every other layer (ESP and AH codecs, the SA database, the IKEv2
//! state machine) and every embedder can share these types.
//!
//! - [`Spi`], [`IkeSpi`]: security parameter indexes.
//! - [`seq`]: 64-bit sequence counters with extended sequence numbers (RFC 4303 §2.2.1,
//!   Appendix A).
//! - [`ReplayWindow`]: the anti-replay window as an RFC 6479 bitmap ring.
//! - [`inbound`]: the inbound core ESP and AH share (replay pre-check, constant-time
//!   verification, window update, ESN re-synchronization), with its security ordering.
//! - [`IpProto`], [`SecurityProtocol`], [`Mode`]: protocol numbers and modes.
//! - [`TrafficSelector`], [`TsSet`]: RFC 4301 / RFC 7296 §3.13 selectors.
//! - [`Lifetime`], [`Instant`]: SA lifetimes with time supplied by the caller.
//! - [`iana`]: the IKEv2 transform registries as open newtypes.
//! - [`ChildSaParams`]: what an IKE implementation hands to a data plane.
//! - [`ip`]: the minimal IPv4/IPv6 header views the codecs need, and [`ip::walk`], the
//!   IPv4/IPv6 header and extension-header walker ESP and AH share.
//! - [`nat_t`]: the port, marker and keepalive of UDP encapsulation (RFC 3948),
//!   shared by ESP and IKE.
//! - [`tunnel`]: the outer-header policies and RFC 6040 ECN rules ESP and AH share.
//! - [`wire`]: the [`ParseError`] and [`EmitError`] of the ESP and AH codecs.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

pub mod buf;
pub mod child;
pub mod iana;
pub mod inbound;
pub mod ip;
pub mod lifetime;
pub mod nat_t;
pub mod proto;
pub mod replay;
pub mod selector;
pub mod seq;
pub mod spi;
pub mod time;
pub mod tunnel;
pub mod wire;

pub use buf::{BufError, PacketBuf};
pub use child::{ChildSaParams, KeyMaterial, UdpEncap, MAX_KEY_MATERIAL};
pub use lifetime::{Lifetime, LifetimeLimits};
pub use nat_t::{NAT_KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER};
pub use proto::{IpProto, Mode, SecurityProtocol};
pub use replay::{
    ReplayError, ReplayGuard, ReplayWindow, ResyncCounter, ResyncPolicy, MAX_REPLAY_WINDOW,
};
pub use selector::{TrafficSelector, TsSet, MAX_SELECTORS};
pub use seq::{SeqCounter, SeqError};
pub use spi::{IkeSpi, Spi};
pub use time::{Duration, Instant};
pub use wire::{EmitError, ParseError, ParseErrorKind};
