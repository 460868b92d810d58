#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod field;

pub mod auth;
pub mod cert;
pub mod cp;
pub mod delete;
pub mod eap;
pub mod encrypted;
pub mod error;
pub mod frag;
pub mod header;
pub mod id;
pub mod ke;
pub mod message;
pub mod nonce;
pub mod notify;
pub mod payload;
pub mod protect;
pub mod redirect;
pub mod registry;
pub mod response;
pub mod sa;
pub mod ts;

pub use auth::AuthRepr;
pub use cert::CertRepr;
pub use cp::{CpAttr, CpRepr};
pub use delete::DeleteRepr;
pub use eap::EapRepr;
pub use encrypted::{SkRepr, SkfRepr};
pub use error::{ParseError, ParseErrorKind};
pub use frag::{
    fragment, max_message_len, open_fragment, IpVersion, OpenedFragment, Reassembled, Reassembler,
    ReassemblyError, ReassemblyLimits,
};
pub use header::{Flags, IkeHeader, IkeHeaderRepr, IkePacket, HEADER_LEN};
pub use id::IdRepr;
pub use ke::KeRepr;
pub use message::{is_canonical, parse_payloads, Message, Payload, UnknownPayload};
pub use nonce::{NonceRepr, VendorIdRepr};
pub use notify::NotifyRepr;
pub use payload::{PayloadIter, RawPayload};
pub use protect::{open, seal, seal_payloads, OpenError, Opened, SealError, SkCrypter, SkKeys};
pub use redirect::{GatewayIdRepr, GatewayIdType, RedirectRepr};
pub use registry::{
    AuthMethod, CertEncoding, CfgAttrType, CfgType, ExchangeType, IdType, NotifyType, PayloadType,
    ProtocolId, TsType,
};
pub use response::{error_response, ErrorResponse, Trust};
pub use sa::{AttrValue, ProposalRepr, SaRepr, TransformAttr, TransformRepr};
pub use ts::{TsEntry, TsRepr};
