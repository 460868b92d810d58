//! What a request of ours is about: the kind of an outstanding request, with what is
//! needed to finish its exchange when the response comes.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Spi, TrafficSelector};
use ipsec_crypto::suites::KeDesc;
use ipsec_crypto::{ActiveKx, KeId, SharedSecret};

use crate::event::ChildSaId;
use crate::msg::{InMsg, OutProposal};

/// What a request of ours is about.
pub(crate) enum Inflight {
    Auth,
    CreateChild(Box<ChildReq>),
    RekeyIke(Box<IkeRekeyReq>),
    DeleteChild(Vec<ChildSaId>),
    DeleteIke,
    Liveness,
    /// An IKE_FOLLOWUP_KE request (RFC 9370 §2.2.4).
    Followup(Box<FollowupReq>),
    /// An INFORMATIONAL request with REDIRECT (RFC 5685 §5).
    Redirect,
    /// An INFORMATIONAL with UPDATE_SA_ADDRESSES (RFC 4555 §3.5) and the COOKIE2 it
    /// carries, which the answer must echo (§3.8).
    UpdateAddresses(Vec<u8>),
}

/// What additional key exchanges in IKE_FOLLOWUP_KE complete.
pub(crate) enum FollowupOf {
    Child(Box<ChildReq>),
    IkeRekey(Box<IkeRekeyReq>),
}

/// Our additional key exchanges after a CREATE_CHILD_SA response that chose them.
pub(crate) struct FollowupReq {
    pub of: FollowupOf,
    /// The CREATE_CHILD_SA response, which finishes the exchange after the last one.
    pub answer: InMsg,
    /// The responder's ADDITIONAL_KEY_EXCHANGE data, echoed in the next request.
    pub link: Vec<u8>,
    /// The key exchange of the request in flight.
    pub kx: Box<dyn ActiveKx>,
    /// The additional key exchanges after it.
    pub rest: Vec<&'static KeDesc>,
    /// The secrets of those done, in order.
    pub secrets: Vec<SharedSecret>,
}

/// A Child SA we asked for.
pub(crate) struct ChildReq {
    pub id: ChildSaId,
    pub rekey: Option<ChildSaId>,
    pub spi: Spi,
    pub nonce: Vec<u8>,
    pub kx: Option<Box<dyn ActiveKx>>,
    pub offer: Vec<OutProposal>,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub transport: bool,
}

/// An IKE SA rekey we asked for.
pub(crate) struct IkeRekeyReq {
    pub spi: IkeSpi,
    pub nonce: Vec<u8>,
    pub kx_group: KeId,
    pub kx: Box<dyn ActiveKx>,
    pub offer: Vec<OutProposal>,
}
