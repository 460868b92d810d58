#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
// Codec crate: untrusted offsets are never indexed and offset arithmetic cannot
// overflow (docs/style.md §10).
#![warn(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::use_self,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_debug_implementations,
    unreachable_pub
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod integ;
mod ip;
pub mod mutable;
mod sa;
mod transport;
pub mod tunnel;
pub mod wire;

pub use ipsec_core::buf::{BufError, PacketBuf};
// The vocabulary this crate's API takes, so that it and one crypto backend are all
// an embedder needs to depend on.
pub use ipsec_core::{ChildSaParams, IpProto, KeyMaterial, Mode, ReplayWindow, Spi};
pub use ipsec_crypto::suites;
pub use ipsec_crypto::{CryptoProvider, EncrDesc, IntegDesc};
pub use sa::{
    AhInbound, AhOutbound, OpenError, OpenOptions, Opened, Overhead, ReplayGuard, ResyncCounter,
    ResyncPolicy, SaError, SealError, GMAC_ESN_SCRATCH, GMAC_IV_LEN, GMAC_SALT_LEN, MAX_ICV_LEN,
};
pub use tunnel::{Tunnel, TunnelConfig};
pub use wire::{EmitError, Family, ParseError, ParseErrorKind};
