//! Configuration payloads (RFC 7296 §3.15, §2.19): virtual addresses and the
//! attributes that come with them (DNS servers, ...), requested by an initiator in
//! its IKE_AUTH request and assigned by the responder from an [`AddressPool`](crate::AddressPool).

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::TrafficSelector;
use ipsec_ike_wire::{CfgAttrType, CfgType};

use crate::config::{CfgAttribute, Lease};
use crate::msg::{CfgAttrs, InMsg, Out};

/// Initiator: the CFG_REQUEST for `vips` (RFC 7296 §3.15.1): per address an
/// INTERNAL_IP4_ADDRESS or INTERNAL_IP6_ADDRESS, empty for any (`0.0.0.0`, `::`),
/// and a request for that family's DNS servers. `None` for no addresses.
pub(crate) fn request(vips: &[IpAddr]) -> Option<Out> {
    if vips.is_empty() {
        return None;
    }
    let mut attrs = CfgAttrs::new();
    for a in vips {
        match a {
            IpAddr::V4(v) => {
                let value = if v.is_unspecified() {
                    Vec::new()
                } else {
                    v.octets().to_vec()
                };
                attrs.push((CfgAttrType::INTERNAL_IP4_ADDRESS, value));
                attrs.push((CfgAttrType::INTERNAL_IP4_DNS, Vec::new()));
            }
            IpAddr::V6(v) => {
                let value = if v.is_unspecified() {
                    Vec::new()
                } else {
                    let mut b = v.octets().to_vec();
                    b.push(128);
                    b
                };
                attrs.push((CfgAttrType::INTERNAL_IP6_ADDRESS, value));
                attrs.push((CfgAttrType::INTERNAL_IP6_DNS, Vec::new()));
            }
        }
    }
    Some(Out::Cp(CfgType::CFG_REQUEST, attrs))
}

/// Responder: the addresses a CFG_REQUEST asks for (`0.0.0.0` / `::` for any);
/// `None` without a CFG_REQUEST that asks for an address. Values of the wrong
/// length ask for any address of their family (RFC 7296 §3.15.1 gives the lengths).
pub(crate) fn requested(m: &InMsg) -> Option<Vec<IpAddr>> {
    let (ty, attrs) = m.cp.as_ref()?;
    if *ty != CfgType::CFG_REQUEST {
        return None;
    }
    let mut out = Vec::new();
    for (t, v) in attrs {
        let a = match *t {
            CfgAttrType::INTERNAL_IP4_ADDRESS => <[u8; 4]>::try_from(v.as_slice())
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |b| {
                    IpAddr::V4(Ipv4Addr::from(b))
                }),
            CfgAttrType::INTERNAL_IP6_ADDRESS => v
                .get(..16)
                .filter(|_| v.len() == 17)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |b| {
                    IpAddr::V6(Ipv6Addr::from(b))
                }),
            _ => continue,
        };
        // One per family, as every implementation asks (a bounded answer).
        if !out.iter().any(|o: &IpAddr| o.is_ipv4() == a.is_ipv4()) {
            out.push(a);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Responder: the CFG_REPLY for `lease`.
pub(crate) fn reply(lease: &Lease) -> Out {
    let mut attrs = CfgAttrs::new();
    for a in &lease.addresses {
        match a {
            IpAddr::V4(v) => attrs.push((CfgAttrType::INTERNAL_IP4_ADDRESS, v.octets().to_vec())),
            IpAddr::V6(v) => {
                let mut b = v.octets().to_vec();
                b.push(128);
                attrs.push((CfgAttrType::INTERNAL_IP6_ADDRESS, b));
            }
        }
    }
    attrs.extend(lease.attributes.iter().map(|a| (a.ty, a.value.clone())));
    Out::Cp(CfgType::CFG_REPLY, attrs)
}

/// Most attributes besides the addresses we keep from a CFG_REPLY: more DNS servers
/// and the like than any gateway sends.
const MAX_REPLY_ATTRIBUTES: usize = 32;

/// Initiator: the addresses and other attributes of a CFG_REPLY (empty without
/// one). We ask for one address per family, so the first of each family is kept
/// (selector narrowing is then linear, not quadratic, in what a responder sends);
/// addresses of the wrong length are skipped, as are empty attributes and those past
/// [`MAX_REPLY_ATTRIBUTES`].
pub(crate) fn parse_reply(m: &InMsg) -> Lease {
    let mut lease = Lease::default();
    let Some((CfgType::CFG_REPLY, attrs)) = &m.cp else {
        return lease;
    };
    for (t, v) in attrs {
        let address = match *t {
            CfgAttrType::INTERNAL_IP4_ADDRESS => <[u8; 4]>::try_from(v.as_slice())
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            CfgAttrType::INTERNAL_IP6_ADDRESS => v
                .get(..16)
                .filter(|_| v.len() == 17)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        };
        if let Some(a) = address {
            if !lease.addresses.iter().any(|o| o.is_ipv4() == a.is_ipv4()) {
                lease.addresses.push(a);
            }
            continue;
        }
        match *t {
            CfgAttrType::INTERNAL_IP4_ADDRESS | CfgAttrType::INTERNAL_IP6_ADDRESS => {}
            _ if !v.is_empty() && lease.attributes.len() < MAX_REPLY_ATTRIBUTES => {
                lease.attributes.push(CfgAttribute {
                    ty: *t,
                    value: v.clone(),
                })
            }
            _ => {}
        }
    }
    lease
}

/// The selectors of `proposed` narrowed to the virtual addresses `vips` (RFC 7296
/// §2.9, §3.15): each address that a proposed selector covers becomes a host
/// selector with that selector's protocol and ports. Empty when none covers one.
pub(crate) fn narrow(proposed: &[TrafficSelector], vips: &[IpAddr]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for ts in proposed {
        for &a in vips {
            if ts.contains_addr(a) {
                let host =
                    TrafficSelector::host(a).with_ports(ts.protocol, ts.start_port, ts.end_port);
                if !out.contains(&host) {
                    out.push(host);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_keeps_one_address_per_family_and_a_bounded_number_of_attributes() {
        let mut attrs = CfgAttrs::new();
        for n in 1..=3u8 {
            attrs.push((CfgAttrType::INTERNAL_IP4_ADDRESS, alloc::vec![10, 3, 0, n]));
        }
        let mut v6 = Ipv6Addr::LOCALHOST.octets().to_vec();
        v6.push(128);
        attrs.push((CfgAttrType::INTERNAL_IP6_ADDRESS, v6.clone()));
        attrs.push((CfgAttrType::INTERNAL_IP6_ADDRESS, v6));
        // A wrong length is no address.
        attrs.push((CfgAttrType::INTERNAL_IP4_ADDRESS, alloc::vec![1, 2, 3]));
        for n in 0..40u8 {
            attrs.push((CfgAttrType::INTERNAL_IP4_DNS, alloc::vec![10, 0, 0, n]));
        }
        let m = InMsg {
            cp: Some((CfgType::CFG_REPLY, attrs)),
            ..InMsg::default()
        };
        let lease = parse_reply(&m);
        assert_eq!(
            lease.addresses,
            [
                IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(lease.attributes.len(), MAX_REPLY_ATTRIBUTES);
        assert_eq!(
            lease.attributes[0].dns_server(),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)))
        );
    }
}
