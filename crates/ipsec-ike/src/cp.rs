//! Configuration payloads (RFC 7296 §3.15, §2.19): virtual addresses and the
//! attributes that come with them (DNS servers, ...), requested by an initiator in
//! its IKE_AUTH request and assigned by the responder from an [`AddressPool`].

use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use ipsec_ike_wire::CfgAttrType;

use crate::config::Identity;

/// A configuration attribute other than the address itself (RFC 7296 §3.15.1):
/// its type and value bytes, as sent in a CFG_REPLY.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CfgAttribute {
    /// The attribute type (15 bits).
    pub ty: CfgAttrType,
    /// The value.
    pub value: Vec<u8>,
}

impl CfgAttribute {
    /// A DNS server: INTERNAL_IP4_DNS or INTERNAL_IP6_DNS by the address's family.
    pub fn dns(server: IpAddr) -> Self {
        match server {
            IpAddr::V4(a) => CfgAttribute {
                ty: CfgAttrType::INTERNAL_IP4_DNS,
                value: a.octets().to_vec(),
            },
            IpAddr::V6(a) => CfgAttribute {
                ty: CfgAttrType::INTERNAL_IP6_DNS,
                value: a.octets().to_vec(),
            },
        }
    }
}

/// What a responder assigns one peer: its virtual addresses and the other
/// attributes of the CFG_REPLY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Virtual addresses, at most one per family the peer asked for.
    pub addresses: Vec<IpAddr>,
    /// Further attributes (DNS servers, ...), sent whatever the peer asked for.
    pub attributes: Vec<CfgAttribute>,
}

/// Hands out virtual addresses (the shape of strongSwan's `pools`): installed on a
/// responder's [`Config::pool`](crate::Config::pool).
///
/// The endpoint calls [`acquire`](AddressPool::acquire) when an IKE_AUTH request
/// carrying a CFG_REQUEST authenticates, and [`release`](AddressPool::release) for
/// each address when the IKE SA that holds it ends (not when it is rekeyed: the new
/// IKE SA keeps the lease). A pool that keeps leases per identity gives a peer that
/// reconnects its old address back.
pub trait AddressPool: Send + Sync {
    /// The lease for `peer` (its EAP identity when EAP authenticated it, else its
    /// IKE identity), which asked for `requested`: `0.0.0.0` or `::` for any address
    /// of that family, a specific address to ask for that one back. Families the
    /// pool does not serve are left out of the lease; an empty lease answers the
    /// request with INTERNAL_ADDRESS_FAILURE.
    fn acquire(&self, peer: &Identity, requested: &[IpAddr]) -> Lease;

    /// `peer`'s IKE SA that held `address` ended.
    fn release(&self, peer: &Identity, address: IpAddr);
}

impl fmt::Debug for dyn AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddressPool")
    }
}
