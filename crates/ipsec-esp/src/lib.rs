#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
// Codec crate: untrusted offsets are never indexed and offset arithmetic cannot
// overflow (docs/style.md §10).
#![warn(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::use_self
)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod ip;
mod sa;
mod trace;
pub mod transport;
pub mod tunnel;
pub mod udp;
pub mod wire;

pub use ipsec_core::buf::{BufError, PacketBuf};
// The vocabulary this crate's API takes, so that it and one crypto backend are all
// an embedder needs to depend on.
pub use ipsec_core::{ChildSaParams, Esn, IpProto, KeyMaterial, Mode, Replay, ReplayWindow, Spi};
pub use ipsec_crypto::suites;
pub use ipsec_crypto::{CryptoProvider, EncrDesc, IntegDesc};
pub use sa::{
    EspInbound, EspOutbound, ExternalReplay, OpenError, OpenOptions, Opened, Overhead, ReplayGuard,
    ResyncCounter, ResyncPolicy, SaError, SealError, MAX_ICV_LEN, MAX_IV_LEN, MAX_SALT_LEN,
};
pub use wire::{EmitError, ParseError, ParseErrorKind};
