#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, unreachable_pub)]

extern crate alloc;
// Locks (std::sync::Mutex) and arc-swap need std; everything else is core + alloc.
extern crate std;

pub mod classify;
mod event;
pub mod export;
mod id;
mod nat_t;
mod process;
mod sa;
mod sad;
pub mod spd;
mod stats;
mod trace;

pub use classify::{ClassifyError, Direction, FlowKey, PortValue};
pub use event::{Acquire, Event, ExpiryCause};
pub use export::{
    ImportOptions, OutboundSeq, SaSnapshot, SeqRange, SnapshotKeys, SNAPSHOT_VERSION,
};
pub use nat_t::{UdpInbound, UdpOutbound, UDP_INBOUND_HEADROOM};
pub use process::{Inbound, Outbound, MAX_HEADROOM, MAX_TAILROOM};
pub use sa::{InboundLookup, SaId, SaInfo, SaOptions, SadError};
pub use sad::{Sad, SadConfig, SadReader};
pub use spd::{
    Action, AddrRange, PolicyId, PolicyRule, PortSel, SaTemplate, Selector, Spd, SpdError,
};
pub use stats::{DropCounts, DropReason, SaStats, DROP_REASONS};
