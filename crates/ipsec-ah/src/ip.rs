//! Finding where AH goes (or is) in an IPv4 or IPv6 packet, and fixing the IP header
//! around it.
//!
//! ```text
//! IPv6 extension headers in front of AH (RFC 4302 §3.1.1, RFC 8200 §4.1):
//! +-------------+-----------+---------+-----------+----------+----+-----------+-----+
//! | IPv6 header | hop-by-hop| dest    | routing   | fragment | AH | dest opt* | TCP |
//! |             |           | options*|           | (atomic) |    |           |     |
//! +-------------+-----------+---------+-----------+----------+----+-----------+-----+
//!     * destination options for the hops of a routing header stay in front of AH;
//!       those for the final destination follow it (RFC 8200 §4.1 order). A received
//!       packet may carry destination options on either side (RFC 4302 §3.1.1
//!       allows both), so the receiver walks over any of them to find AH.
//!
//! Extension header (hop-by-hop, routing, destination options):
//! +---------------+---------------+-------------------------------+
//! |  Next Header  |  Hdr Ext Len  |  (Hdr Ext Len + 1) * 8 bytes  |
//! +---------------+---------------+-------------------------------+
//! Fragment header: 8 bytes; bytes 2..4 hold the offset (13 bits) and the M flag.
//! ```
//!
//! AH protects whole datagrams only: IPv4 fragments and non-atomic IPv6 fragments are
//! refused on both sides (RFC 4302 §3.3.4 and §3.4.1).

use ipsec_core::ip::{ipv4_checksum, Ipv4Header, Ipv6Header};
use ipsec_core::IpProto;
use zerocopy::FromBytes;

use crate::wire::{Family, ParseError};

pub(crate) const HOPOPT: u8 = 0;
pub(crate) const ROUTING: u8 = 43;
pub(crate) const FRAGMENT: u8 = 44;
pub(crate) const DSTOPTS: u8 = 60;
pub(crate) const AH: u8 = 51;

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
    match packet.first().map(|b| b >> 4) {
        Some(4) => Ok(Family::Ipv4),
        Some(6) => Ok(Family::Ipv6),
        Some(_) => Err(ParseError::bad_value(0, "ip version")),
        None => Err(ParseError::truncated(0, 1)),
    }
}

/// Checks an IPv4 header (version, IHL, lengths; not the checksum, which is mutable)
/// and returns header and total length.
pub(crate) fn check_v4(packet: &[u8]) -> Result<(usize, usize), ParseError> {
    let (h, _) = Ipv4Header::ref_from_prefix(packet)
        .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
    if h.version_ihl >> 4 != 4 {
        return Err(ParseError::bad_value(0, "ip version"));
    }
    let hl = h.header_len();
    if hl < Ipv4Header::LEN {
        return Err(ParseError::bad_value(0, "ihl"));
    }
    if hl > packet.len() {
        return Err(ParseError::truncated(0, hl));
    }
    let total = usize::from(h.total_len.get());
    if total < hl || total > packet.len() {
        return Err(ParseError::length_field(2));
    }
    Ok((hl, total))
}

/// Checks the fixed IPv6 header and returns the packet length (40 + payload length).
pub(crate) fn check_v6(packet: &[u8]) -> Result<usize, ParseError> {
    let (h, _) = Ipv6Header::ref_from_prefix(packet)
        .map_err(|_| ParseError::truncated(0, Ipv6Header::LEN))?;
    if h.ver_tc_flow.get() >> 28 != 6 {
        return Err(ParseError::bad_value(0, "ip version"));
    }
    let pl = usize::from(h.payload_len.get());
    if pl == 0 && h.next_header == HOPOPT {
        // Possibly a jumbogram (RFC 2675: payload length 0 and a Jumbo Payload
        // option), which is not supported. An empty packet with another next header
        // (No Next Header, say) is a valid inner packet.
        return Err(ParseError::bad_value(4, "ipv6 jumbogram"));
    }
    let total = pl.saturating_add(Ipv6Header::LEN);
    if total > packet.len() {
        return Err(ParseError::length_field(4));
    }
    Ok(total)
}

/// Finds where AH goes (`Walk::Protect`) or is (`Walk::ToAh`).
pub(crate) fn locate(packet: &[u8], walk: Walk) -> Result<Located, ParseError> {
    match family(packet)? {
        Family::Ipv4 => {
            let (hl, total) = check_v4(packet)?;
            let (h, _) = Ipv4Header::ref_from_prefix(packet)
                .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
            if h.flags_frag.get() & (Ipv4Header::MF | 0x1fff) != 0 {
                return Err(ParseError::bad_value(6, "ipv4 fragment"));
            }
            if walk == Walk::ToAh && h.protocol != AH {
                return Err(ParseError::bad_value(9, "protocol is not ah"));
            }
            Ok(Located {
                family: Family::Ipv4,
                total_len: total,
                hdr_len: hl,
                proto: IpProto(h.protocol),
                proto_offset: 9,
            })
        }
        Family::Ipv6 => {
            let total = check_v6(packet)?;
            let packet = packet.get(..total).unwrap_or(&[]);
            let (hdr_len, proto, proto_offset) = walk_v6(packet, walk)?;
            Ok(Located {
                family: Family::Ipv6,
                total_len: total,
                hdr_len,
                proto,
                proto_offset,
            })
        }
    }
}

/// The length of the extension header at `off` with next header value `nh`, for the
/// four kinds AH steps over.
pub(crate) fn ext_len(packet: &[u8], off: usize, nh: u8) -> Result<usize, ParseError> {
    if nh == FRAGMENT {
        return Ok(8);
    }
    let l = packet
        .get(off.saturating_add(1))
        .copied()
        .ok_or(ParseError::truncated(off, 2))?;
    Ok(usize::from(l).saturating_add(1).saturating_mul(8))
}

fn walk_v6(packet: &[u8], walk: Walk) -> Result<(usize, IpProto, usize), ParseError> {
    let mut off = Ipv6Header::LEN;
    let mut nh_off = 6;
    let mut nh = packet.get(6).copied().ok_or(ParseError::truncated(6, 1))?;
    let mut first = true;
    let mut seen_routing = false;
    loop {
        match nh {
            HOPOPT if !first => {
                return Err(ParseError::bad_value(nh_off, "hop-by-hop header not first"));
            }
            HOPOPT => {}
            ROUTING if seen_routing => {
                return Err(ParseError::bad_value(nh_off, "second routing header"));
            }
            ROUTING => seen_routing = true,
            DSTOPTS => {
                let next = packet
                    .get(off)
                    .copied()
                    .ok_or(ParseError::truncated(off, 2))?;
                // Destination options for the final destination follow AH; those for
                // the hops of a routing header stay in front.
                if walk == Walk::Protect && next != ROUTING {
                    return Ok((off, IpProto(nh), nh_off));
                }
            }
            FRAGMENT => {
                let fo = packet
                    .get(off.saturating_add(2)..off.saturating_add(4))
                    .ok_or(ParseError::truncated(off, 8))?;
                // Offset and M flag both zero: an atomic fragment, a whole datagram.
                if let [a, b] = fo {
                    if u16::from_be_bytes([*a, *b]) & 0xfff9 != 0 {
                        return Err(ParseError::bad_value(off, "ipv6 fragment"));
                    }
                }
            }
            AH if walk == Walk::ToAh => return Ok((off, IpProto(nh), nh_off)),
            _ if walk == Walk::Protect => return Ok((off, IpProto(nh), nh_off)),
            _ => return Err(ParseError::bad_value(nh_off, "next header is not ah")),
        }
        let len = ext_len(packet, off, nh)?;
        let end = off.saturating_add(len);
        if end > packet.len() {
            return Err(ParseError::truncated(off, len));
        }
        nh = packet
            .get(off)
            .copied()
            .ok_or(ParseError::truncated(off, 1))?;
        nh_off = off;
        off = end;
        first = false;
    }
}

/// Sets the IPv4 total length and protocol and recomputes the header checksum.
pub(crate) fn fix_v4(
    header: &mut [u8],
    total_len: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    let total = u16::try_from(total_len).map_err(|_| ParseError::length_field(2))?;
    {
        let (h, _) = Ipv4Header::mut_from_prefix(&mut *header)
            .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
        h.total_len.set(total);
        h.protocol = proto.0;
    }
    set_v4_checksum(header)
}

/// Recomputes the IPv4 header checksum.
pub(crate) fn set_v4_checksum(header: &mut [u8]) -> Result<(), ParseError> {
    let hl = {
        let (h, _) = Ipv4Header::mut_from_prefix(&mut *header)
            .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
        h.checksum.set(0);
        h.header_len()
    };
    let c = ipv4_checksum(header.get(..hl).ok_or(ParseError::truncated(0, hl))?);
    let (h, _) = Ipv4Header::mut_from_prefix(header)
        .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
    h.checksum.set(c);
    Ok(())
}

/// Sets the IPv6 payload length and the next header byte at `proto_offset`.
pub(crate) fn fix_v6(
    header: &mut [u8],
    total_len: usize,
    proto_offset: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    let pl = total_len
        .checked_sub(Ipv6Header::LEN)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(ParseError::length_field(4))?;
    let (h, _) = Ipv6Header::mut_from_prefix(&mut *header)
        .map_err(|_| ParseError::truncated(0, Ipv6Header::LEN))?;
    h.payload_len.set(pl);
    *header
        .get_mut(proto_offset)
        .ok_or(ParseError::truncated(proto_offset, 1))? = proto.0;
    Ok(())
}

/// Sets length and protocol fields for `family`.
pub(crate) fn fix(
    header: &mut [u8],
    family: Family,
    total_len: usize,
    proto_offset: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    match family {
        Family::Ipv4 => fix_v4(header, total_len, proto),
        Family::Ipv6 => fix_v6(header, total_len, proto_offset, proto),
    }
}

/// The longest packet the length field of `family` can describe.
pub(crate) const fn max_total(family: Family) -> usize {
    match family {
        Family::Ipv4 => u16::MAX as usize,
        Family::Ipv6 => (u16::MAX as usize).saturating_add(Ipv6Header::LEN),
    }
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

    #[test]
    fn refuses_fragments_bad_chains_and_bad_headers() {
        let p = v6(FRAGMENT, &[6, 0, 0, 9, 0, 0, 0, 1], 8);
        assert!(locate(&p, Walk::Protect).is_err());
        let p = v6(FRAGMENT, &[6, 0, 0, 0, 0, 0, 0, 1], 8);
        assert_eq!(locate(&p, Walk::Protect).unwrap().hdr_len, 48);
        let p = v6(
            ROUTING,
            &[HOPOPT, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(locate(&p, Walk::Protect).is_err());
        let p = v6(
            ROUTING,
            &[ROUTING, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(locate(&p, Walk::Protect).is_err());
        let p = v6(ROUTING, &[6, 9], 0);
        assert!(locate(&p, Walk::Protect).is_err());
        let mut v4 =
            alloc::vec![0x45, 0, 0, 20, 0, 0, 0x20, 0, 64, 51, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
        assert!(locate(&v4, Walk::ToAh).is_err());
        v4[6] = 0x40;
        assert_eq!(locate(&v4, Walk::ToAh).unwrap().hdr_len, 20);
        v4[9] = 6;
        assert!(locate(&v4, Walk::ToAh).is_err());
        assert!(locate(&[0x45, 0, 0, 10], Walk::Protect).is_err());
        assert!(locate(&[], Walk::Protect).is_err());
        assert!(locate(&[0x55; 40], Walk::Protect).is_err());
    }
}
