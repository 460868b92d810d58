//! What a request of ours is about: the kind of an outstanding request, with what is
//! needed to finish its exchange when the response comes.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Spi, TrafficSelector};
use ipsec_crypto::{ActiveKx, KeId};

use crate::event::ChildSaId;
use crate::msg::OutProposal;

/// What a request of ours is about.
pub(crate) enum Inflight {
    Auth,
    CreateChild(Box<ChildReq>),
    RekeyIke(Box<IkeRekeyReq>),
    DeleteChild(Vec<ChildSaId>),
    DeleteIke,
    Liveness,
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
