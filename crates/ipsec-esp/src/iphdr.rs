//! Crate-internal IPv4/IPv6 header checks shared by [`tunnel`](crate::tunnel) and
//! [`transport`](crate::transport).
//!
//! ```text
//! IPv6 extension headers in front of ESP (RFC 4303 §3.1.1, RFC 8200 §4.1):
//! +-------------+-----------+---------+-----------+----------+-----+-----------+
//! | IPv6 header | hop-by-hop| dest    | routing   | fragment | ESP | dest opt* |
//! |             |           | options*|           |          |     | upper ... |
//! +-------------+-----------+---------+-----------+----------+-----+-----------+
//!     * destination options before a routing header stay in front of ESP; the
//!       last destination options header (for the final destination) is protected.
//!
//! Extension header (hop-by-hop, routing, destination options):
//! +---------------+---------------+-------------------------------+
//! |  Next Header  |  Hdr Ext Len  |  (Hdr Ext Len + 1) * 8 bytes  |
//! +---------------+---------------+-------------------------------+
//! Fragment header: 8 bytes; bytes 2..4 hold the offset (13 bits) and the M flag.
//! ```

use ipsec_core::ip::{ipv4_checksum, Ipv4Header, Ipv6Header};
use ipsec_core::IpProto;
use zerocopy::FromBytes;

use crate::wire::ParseError;

/// IPv6 next header value for the routing header.
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DSTOPTS: u8 = 60;
const HOPOPT: u8 = 0;

/// Where the IP header (with the extension headers in front of ESP) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    /// The IP version, 4 or 6.
    pub(crate) version: u8,
    /// Bytes of IP header (IPv4 with options; IPv6 with the extension headers kept in
    /// front of ESP).
    pub(crate) header_len: usize,
    /// The packet length from the header's length field.
    pub(crate) total_len: usize,
    /// The protocol at the split point.
    pub(crate) proto: IpProto,
    /// Offset of the byte that holds `proto` (IPv4 protocol field, IPv6 next header
    /// field of the fixed header or of the last kept extension header).
    pub(crate) proto_offset: usize,
}

/// Why [`split`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// Malformed header.
    Parse(ParseError),
    /// A fragment (not a whole datagram).
    Fragment,
    /// [`Walk::ToEsp`] met an upper-layer protocol other than ESP or UDP.
    NotEsp,
}

impl From<ParseError> for SplitError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

/// How far to walk the IPv6 extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// To where ESP goes when protecting (upper layer or final destination options).
    Protect,
    /// To the ESP (or UDP-encapsulated ESP) header of a received packet.
    ToEsp,
}

/// The IP version from the first nibble.
pub(crate) fn version(packet: &[u8]) -> Result<u8, ParseError> {
    packet
        .first()
        .map(|b| b >> 4)
        .ok_or(ParseError::truncated(0, 1))
}

/// Checks an IPv4 header: version, IHL, lengths, and (with `verify_checksum`) the
/// header checksum. Returns header and total length.
pub(crate) fn check_v4(packet: &[u8], verify_checksum: bool) -> Result<(usize, usize), ParseError> {
    let (h, _) = Ipv4Header::ref_from_prefix(packet)
        .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
    if h.version_ihl >> 4 != 4 {
        return Err(ParseError::bad_value(0, "ip version"));
    }
    let hl = h.header_len();
    if hl < Ipv4Header::LEN {
        return Err(ParseError::bad_value(0, "ihl"));
    }
    let total = usize::from(h.total_len.get());
    if hl > packet.len() {
        return Err(ParseError::truncated(0, hl));
    }
    if total < hl || total > packet.len() {
        return Err(ParseError::length_field(2));
    }
    if verify_checksum && ipv4_checksum(packet.get(..hl).unwrap_or(&[])) != 0 {
        return Err(ParseError::bad_value(10, "ipv4 header checksum"));
    }
    Ok((hl, total))
}

/// True if the IPv4 header describes a fragment (MF set or a non-zero offset).
pub(crate) fn v4_is_fragment(packet: &[u8]) -> bool {
    Ipv4Header::ref_from_prefix(packet)
        .map(|(h, _)| h.flags_frag.get() & (Ipv4Header::MF | 0x1fff) != 0)
        .unwrap_or(false)
}

/// Checks the fixed IPv6 header and returns the total length (40 + payload length).
pub(crate) fn check_v6(packet: &[u8]) -> Result<usize, ParseError> {
    let (h, _) = Ipv6Header::ref_from_prefix(packet)
        .map_err(|_| ParseError::truncated(0, Ipv6Header::LEN))?;
    if h.ver_tc_flow.get() >> 28 != 6 {
        return Err(ParseError::bad_value(0, "ip version"));
    }
    let pl = usize::from(h.payload_len.get());
    if pl == 0 {
        // A jumbogram (RFC 2675) or an empty packet: neither carries ESP here.
        return Err(ParseError::bad_value(4, "ipv6 payload length 0"));
    }
    let total = pl.saturating_add(Ipv6Header::LEN);
    if total > packet.len() {
        return Err(ParseError::length_field(4));
    }
    Ok(total)
}

/// Finds where ESP goes (or is) in an IPv4 or IPv6 packet.
///
/// IPv4 fragments and non-atomic IPv6 fragments are refused: ESP works on whole
/// datagrams (RFC 4303 §3.3.4, §3.4.1).
pub(crate) fn split(packet: &[u8], walk: Walk, verify_checksum: bool) -> Result<Split, SplitError> {
    match version(packet)? {
        4 => {
            let (hl, total) = check_v4(packet, verify_checksum)?;
            if v4_is_fragment(packet) {
                return Err(SplitError::Fragment);
            }
            let proto = IpProto(packet.get(9).copied().unwrap_or(0));
            Ok(Split {
                version: 4,
                header_len: hl,
                total_len: total,
                proto,
                proto_offset: 9,
            })
        }
        6 => {
            let total = check_v6(packet)?;
            let packet = packet.get(..total).unwrap_or(&[]);
            walk_v6(packet, walk).map(|(header_len, proto, proto_offset)| Split {
                version: 6,
                header_len,
                total_len: total,
                proto,
                proto_offset,
            })
        }
        _ => Err(ParseError::bad_value(0, "ip version").into()),
    }
}

fn walk_v6(packet: &[u8], walk: Walk) -> Result<(usize, IpProto, usize), SplitError> {
    let mut off = Ipv6Header::LEN;
    let mut nh_off = 6;
    let mut nh = packet.get(6).copied().ok_or(ParseError::truncated(6, 1))?;
    let mut first = true;
    loop {
        let len = match nh {
            HOPOPT if first => ext_len(packet, off)?,
            HOPOPT => {
                return Err(ParseError::bad_value(nh_off, "hop-by-hop header not first").into())
            }
            ROUTING => ext_len(packet, off)?,
            DSTOPTS => {
                // Destination options for the final destination belong to the
                // protected payload; those for the hops of a routing header stay in front.
                let next = packet
                    .get(off)
                    .copied()
                    .ok_or(ParseError::truncated(off, 2))?;
                if walk == Walk::Protect && next != ROUTING {
                    return Ok((off, IpProto(nh), nh_off));
                }
                ext_len(packet, off)?
            }
            FRAGMENT => {
                let fo = packet
                    .get(off.saturating_add(2)..off.saturating_add(4))
                    .ok_or(ParseError::truncated(off, 8))?;
                // Offset and M flag both zero: an atomic fragment, a whole datagram.
                if let [a, b] = fo {
                    if u16::from_be_bytes([*a, *b]) & 0xfff9 != 0 {
                        return Err(SplitError::Fragment);
                    }
                }
                8
            }
            _ if walk == Walk::Protect => return Ok((off, IpProto(nh), nh_off)),
            _ if nh == IpProto::ESP.0 || nh == IpProto::UDP.0 => {
                return Ok((off, IpProto(nh), nh_off))
            }
            _ => return Err(SplitError::NotEsp),
        };
        let end = off.saturating_add(len);
        if end > packet.len() {
            return Err(ParseError::truncated(off, len).into());
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

fn ext_len(packet: &[u8], off: usize) -> Result<usize, ParseError> {
    let l = packet
        .get(off.saturating_add(1))
        .copied()
        .ok_or(ParseError::truncated(off, 2))?;
    // At most (255 + 1) * 8 = 2048: no overflow.
    Ok(usize::from(l).saturating_add(1).saturating_mul(8))
}

/// Sets the IPv4 total length and protocol and recomputes the header checksum.
pub(crate) fn fix_v4(
    header: &mut [u8],
    total_len: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    let total = u16::try_from(total_len).map_err(|_| ParseError::length_field(2))?;
    let hl = {
        let (h, _) = Ipv4Header::mut_from_prefix(&mut *header)
            .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
        h.total_len.set(total);
        h.protocol = proto.0;
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
    fn walk_keeps_hop_by_hop_routing_and_leading_dstopts() {
        // HbH -> DstOpts -> Routing -> DstOpts -> TCP
        let mut ext = Vec::new();
        ext.extend_from_slice(&[DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[DSTOPTS, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        let p = v6(HOPOPT, &ext, 20);
        let s = split(&p, Walk::Protect, false).unwrap();
        assert_eq!(
            (s.header_len, s.proto, s.proto_offset),
            (64, IpProto(DSTOPTS), 56)
        );
        let p = v6(HOPOPT, &ext[..24], 0);
        assert!(matches!(
            split(&p, Walk::ToEsp, false),
            Err(SplitError::Parse(_))
        ));
        let mut to_tcp = ext[..24].to_vec();
        to_tcp[16] = 6;
        let p = v6(HOPOPT, &to_tcp, 8);
        assert_eq!(
            split(&p, Walk::ToEsp, false).unwrap_err(),
            SplitError::NotEsp
        );
        to_tcp[16] = 50;
        let p = v6(HOPOPT, &to_tcp, 8);
        assert_eq!(split(&p, Walk::ToEsp, false).unwrap().header_len, 64);
    }

    #[test]
    fn refuses_fragments_and_bad_headers() {
        let p = v6(FRAGMENT, &[6, 0, 0, 9, 0, 0, 0, 1], 8);
        assert_eq!(
            split(&p, Walk::Protect, false).unwrap_err(),
            SplitError::Fragment
        );
        let p = v6(FRAGMENT, &[6, 0, 0, 0, 0, 0, 0, 1], 8);
        assert_eq!(split(&p, Walk::Protect, false).unwrap().header_len, 48);
        let p = v6(
            ROUTING,
            &[HOPOPT, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(split(&p, Walk::Protect, false).is_err());
        let p = v6(ROUTING, &[6, 9], 0);
        assert!(split(&p, Walk::Protect, false).is_err());
        assert!(split(&[0x45, 0, 0, 10], Walk::Protect, false).is_err());
        assert!(split(&[], Walk::Protect, false).is_err());
    }
}
