//! Finding where AH goes (or is) in an IPv4 or IPv6 packet, and fixing the IP header
//! around it: crate-internal glue to [`ipsec_core::ip::walk`], the IPv4/IPv6 header
//! walker AH shares with ESP, with AH's checks and stopping points, and the mapping of
//! the walker's errors into AH's [`ParseError`] (in one place: [`parse_error`]).
//!
//! What AH asks of the walker (RFC 4302 §3.1.1, RFC 8200 §4.1): when protecting, the
//! hop-by-hop, routing and (atomic) fragment headers and the destination options for
//! the hops of a routing header stay in front of AH, those for the final destination
//! follow it. A received packet may carry destination options on either side (RFC 4302
//! §3.1.1 allows both), so the receiver walks over any of them to find AH. Unlike ESP,
//! AH refuses a second routing header (the ICV input rewrites the one routing header as
//! the receiver sees it) and accepts an empty IPv6 payload that cannot be a jumbogram
//! (an inner packet with No Next Header). The IPv4 checksum is a mutable field and is
//! never verified.
//!
//! AH protects whole datagrams only: IPv4 fragments and non-atomic IPv6 fragments are
//! refused on both sides (RFC 4302 §3.3.4 and §3.4.1).

use ipsec_core::ip::walk::{self, Checks, IpVersion, Stop, WalkError, WalkErrorKind};
use ipsec_core::IpProto;

use crate::wire::{Family, ParseError};

pub(crate) const HOPOPT: u8 = IpProto::HOPOPT.0;
pub(crate) const ROUTING: u8 = IpProto::IPV6_ROUTE.0;
pub(crate) const FRAGMENT: u8 = IpProto::IPV6_FRAG.0;
pub(crate) const DSTOPTS: u8 = IpProto::IPV6_OPTS.0;
#[cfg(test)]
pub(crate) const AH: u8 = IpProto::AH.0;

/// AH's checks (see the module documentation).
const CHECKS: Checks = Checks::new()
    .with_v6_empty_payload(true)
    .with_single_routing_header(true);

/// The walker's error as AH's [`ParseError`], same kind and offset.
fn parse_error(e: WalkError) -> ParseError {
    match e.kind {
        WalkErrorKind::Truncated { needed } => ParseError::truncated(e.offset, needed),
        WalkErrorKind::LengthField => ParseError::length_field(e.offset),
        WalkErrorKind::BadValue(what) => ParseError::bad_value(e.offset, what),
        WalkErrorKind::Fragment(IpVersion::V4) => ParseError::bad_value(e.offset, "ipv4 fragment"),
        WalkErrorKind::Fragment(IpVersion::V6) => ParseError::bad_value(e.offset, "ipv6 fragment"),
        WalkErrorKind::NotFound => ParseError::bad_value(e.offset, "next header is not ah"),
        _ => ParseError::bad_value(e.offset, "ip header"),
    }
}

const fn version_of(family: Family) -> IpVersion {
    match family {
        Family::Ipv4 => IpVersion::V4,
        Family::Ipv6 => IpVersion::V6,
    }
}

const fn family_of(version: IpVersion) -> Family {
    match version {
        IpVersion::V4 => Family::Ipv4,
        IpVersion::V6 => Family::Ipv6,
    }
}

/// Where AH goes or is in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// The IP version of the header.
    pub(crate) family: Family,
    /// The packet length from the IP header's length field.
    pub(crate) total_len: usize,
    /// Bytes in front of AH: the IPv4 header with options, or the IPv6 header with the
    /// extension headers that precede AH.
    pub(crate) hdr_len: usize,
    /// The protocol at that point (the protocol AH will protect, or AH itself).
    pub(crate) proto: IpProto,
    /// The offset of the byte that holds `proto`.
    pub(crate) proto_offset: usize,
}

/// How far to walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// To where AH goes when protecting a packet in transport mode.
    Protect,
    /// To the AH header of a received packet.
    ToAh,
}

/// The family from the version nibble.
pub(crate) fn family(packet: &[u8]) -> Result<Family, ParseError> {
    walk::version(packet).map(family_of).map_err(parse_error)
}

/// Checks an IPv4 header (version, IHL, lengths; not the checksum, which is mutable)
/// and returns header and total length.
pub(crate) fn check_v4(packet: &[u8]) -> Result<(usize, usize), ParseError> {
    walk::check_v4(packet, CHECKS).map_err(parse_error)
}

/// Checks the fixed IPv6 header and returns the packet length (40 + payload length).
pub(crate) fn check_v6(packet: &[u8]) -> Result<usize, ParseError> {
    walk::check_v6(packet, CHECKS).map_err(parse_error)
}

/// Finds where AH goes (`Walk::Protect`) or is (`Walk::ToAh`).
pub(crate) fn locate(packet: &[u8], walk: Walk) -> Result<Located, ParseError> {
    let stop = match walk {
        Walk::Protect => Stop::Protect,
        Walk::ToAh => Stop::At(&[IpProto::AH]),
    };
    let l = walk::locate(packet, stop, CHECKS).map_err(parse_error)?;
    // The walker leaves the IPv4 protocol field to the caller (an IPv6 chain it has
    // already followed to AH).
    if walk == Walk::ToAh && l.proto != IpProto::AH {
        return Err(ParseError::bad_value(l.proto_offset, "protocol is not ah"));
    }
    Ok(Located {
        family: family_of(l.version),
        total_len: l.total_len,
        hdr_len: l.header_len,
        proto: l.proto,
        proto_offset: l.proto_offset,
    })
}

/// The length of the extension header at `off` with next header value `nh`, for the
/// four kinds AH steps over.
pub(crate) fn ext_len(packet: &[u8], off: usize, nh: u8) -> Result<usize, ParseError> {
    walk::ext_len(packet, off, nh).map_err(parse_error)
}

/// Recomputes the IPv4 header checksum.
pub(crate) fn set_v4_checksum(header: &mut [u8]) -> Result<(), ParseError> {
    walk::set_v4_checksum(header).map_err(parse_error)
}

/// Sets length and protocol fields for `family`.
pub(crate) fn fix(
    header: &mut [u8],
    family: Family,
    total_len: usize,
    proto_offset: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    walk::fix(header, version_of(family), total_len, proto_offset, proto).map_err(parse_error)
}

/// The longest packet the length field of `family` can describe.
pub(crate) const fn max_total(family: Family) -> usize {
    version_of(family).max_total_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn v6(nh: u8, ext: &[u8], payload: usize) -> Vec<u8> {
        let mut p = alloc::vec![0u8; 40];
        p[0] = 0x60;
        let pl = u16::try_from(ext.len() + payload).unwrap();
        p[4..6].copy_from_slice(&pl.to_be_bytes());
        p[6] = nh;
        p.extend_from_slice(ext);
        p.resize(40 + ext.len() + payload, 0xab);
        p
    }

    #[test]
    fn protect_keeps_hop_by_hop_routing_and_leading_dstopts() {
        // HbH -> DstOpts -> Routing -> DstOpts -> TCP
        let mut ext = Vec::new();
        ext.extend_from_slice(&[DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[DSTOPTS, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        let p = v6(HOPOPT, &ext, 20);
        let l = locate(&p, Walk::Protect).unwrap();
        assert_eq!(
            (l.hdr_len, l.proto, l.proto_offset),
            (64, IpProto(DSTOPTS), 56)
        );
        assert!(locate(&p, Walk::ToAh).is_err());
        let mut to_ah = ext.clone();
        to_ah[24] = AH;
        let p = v6(HOPOPT, &to_ah, 20);
        let l = locate(&p, Walk::ToAh).unwrap();
        assert_eq!((l.hdr_len, l.proto_offset), (72, 64));
    }

    /// Which packets the walker refuses is tested next to it (`ipsec_core::ip::walk`);
    /// here, the checks AH picks or adds on top of it.
    #[test]
    fn ah_checks_on_top_of_the_walker() {
        // A second routing header (AH's ICV input rewrites the one).
        let p = v6(
            ROUTING,
            &[ROUTING, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(locate(&p, Walk::Protect).is_err());
        // An IPv4 protocol other than AH (the walker leaves it to the caller).
        let mut v4 =
            alloc::vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 51, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
        assert_eq!(locate(&v4, Walk::ToAh).unwrap().hdr_len, 20);
        v4[9] = 6;
        assert!(locate(&v4, Walk::ToAh).is_err());
    }
}
