//! Selector extraction: the RFC 4301 §4.4.1.1 selector fields of an IPv4 or IPv6
//! packet, as seen from this node.
//!
//! ```text
//! IPv4: | IP header (IHL) | next layer ...
//! IPv6: | IPv6 header | hop-by-hop | routing | fragment | dest. options | next layer ...
//!                       (any of them, in any order, each at most 16 deep here)
//! ```
//!
//! The next-layer protocol is the first header that is not an IPv6 extension header
//! (hop-by-hop, routing, fragment, destination options). Its "ports" are:
//! - TCP, UDP, SCTP, DCCP, UDP-Lite: source and destination port;
//! - ICMP and ICMPv6: the 16-bit type ‖ code (RFC 4301 §4.4.1.1, RFC 7296 §3.13.1: type in
//!   the high byte) in both port fields, so a rule may restrict either;
//! - Mobility Header: the MH type in the high byte, in both port fields;
//! - anything else: [`PortValue::Opaque`].
//!
//! Non-initial fragments carry no next-layer header: their ports are
//! [`PortValue::Opaque`] and they match only rules whose port selectors are ANY or
//! OPAQUE (RFC 4301 §4.4.1.1, §7.1). An initial fragment too short to hold the ports is
//! treated the same way; an unfragmented packet that is too short is malformed.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::IpProto;

/// A port-like selector value of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortValue {
    /// A port, or an ICMP type ‖ code, or an MH type ‖ 0.
    Port(u16),
    /// Not available: a non-initial fragment, or a protocol without ports.
    Opaque,
}

impl PortValue {
    /// The value on the 17-bit axis the SPD index uses: ports 0..=65535, OPAQUE 65536.
    pub(crate) const fn axis(self) -> u128 {
        match self {
            PortValue::Port(p) => p as u128,
            PortValue::Opaque => OPAQUE_AXIS,
        }
    }

    /// The port, if there is one.
    pub const fn port(self) -> Option<u16> {
        match self {
            PortValue::Port(p) => Some(p),
            PortValue::Opaque => None,
        }
    }
}

/// Where OPAQUE sits on the port axis: one past the largest port.
pub(crate) const OPAQUE_AXIS: u128 = 0x1_0000;

/// Which way a packet travels, which decides which address is "local".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We send it: the source is local.
    Outbound,
    /// We received it: the destination is local.
    Inbound,
}

/// The selector fields of one packet (RFC 4301 §4.4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Our address (source outbound, destination inbound).
    pub local: IpAddr,
    /// The peer's address.
    pub remote: IpAddr,
    /// The next-layer protocol.
    pub protocol: IpProto,
    /// Our port (source port outbound).
    pub local_port: PortValue,
    /// The peer's port.
    pub remote_port: PortValue,
    /// True for a non-initial fragment (its ports are [`PortValue::Opaque`]).
    pub non_initial_fragment: bool,
}

impl FlowKey {
    /// A key for a packet with ports (or ICMP type ‖ code).
    pub const fn new(
        local: IpAddr,
        remote: IpAddr,
        protocol: IpProto,
        local_port: PortValue,
        remote_port: PortValue,
    ) -> Self {
        FlowKey {
            local,
            remote,
            protocol,
            local_port,
            remote_port,
            non_initial_fragment: false,
        }
    }

    /// Reads the selector fields of the IPv4 or IPv6 packet `packet`.
    ///
    /// # Errors
    /// [`ClassifyError`] when the packet is truncated, its version is not 4 or 6, its
    /// lengths are inconsistent, or its extension headers go on for more than 16.
    pub fn parse(packet: &[u8], dir: Direction) -> Result<Self, ClassifyError> {
        let p = parse_ip(packet)?;
        let (local, remote, local_port, remote_port) = match dir {
            Direction::Outbound => (p.src, p.dst, p.src_port, p.dst_port),
            Direction::Inbound => (p.dst, p.src, p.dst_port, p.src_port),
        };
        Ok(FlowKey {
            local,
            remote,
            protocol: p.proto,
            local_port,
            remote_port,
            non_initial_fragment: p.non_initial,
        })
    }
}

/// Why a packet's selectors could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// Shorter than its headers say.
    #[error("packet truncated")]
    Truncated,
    /// Not IPv4 or IPv6.
    #[error("not an IPv4 or IPv6 packet")]
    Version,
    /// A length field is inconsistent.
    #[error("inconsistent length field")]
    Length,
    /// More than 16 IPv6 extension headers.
    #[error("too many IPv6 extension headers")]
    TooManyExtensions,
}

/// What [`parse_ip`] found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpInfo {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) proto: IpProto,
    /// Offset of the next-layer header (meaningless for non-initial fragments).
    pub(crate) l4: usize,
    /// End of the datagram (from its length field).
    pub(crate) end: usize,
    pub(crate) src_port: PortValue,
    pub(crate) dst_port: PortValue,
    pub(crate) non_initial: bool,
    /// Any fragment, initial or not.
    pub(crate) fragment: bool,
}

const MAX_EXTENSIONS: usize = 16;

fn byte(p: &[u8], at: usize) -> Result<u8, ClassifyError> {
    p.get(at).copied().ok_or(ClassifyError::Truncated)
}

fn be16(p: &[u8], at: usize) -> Result<u16, ClassifyError> {
    match p.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(ClassifyError::Truncated),
    }
}

fn arr<const N: usize>(p: &[u8], at: usize) -> Result<[u8; N], ClassifyError> {
    p.get(at..at.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(ClassifyError::Truncated)
}

/// Parses the IP header (and IPv6 extension headers) and the next-layer ports.
pub(crate) fn parse_ip(p: &[u8]) -> Result<IpInfo, ClassifyError> {
    let version = byte(p, 0)? >> 4;
    let (src, dst, mut proto, mut off, end, mut fragment, mut non_initial) = match version {
        4 => {
            let ihl = usize::from(byte(p, 0)? & 0x0f) * 4;
            let total = usize::from(be16(p, 2)?);
            if ihl < 20 || total < ihl {
                return Err(ClassifyError::Length);
            }
            if total > p.len() {
                return Err(ClassifyError::Truncated);
            }
            let flags_frag = be16(p, 6)?;
            let offset = flags_frag & 0x1fff;
            let more = flags_frag & 0x2000 != 0;
            let src = IpAddr::V4(Ipv4Addr::from(arr::<4>(p, 12)?));
            let dst = IpAddr::V4(Ipv4Addr::from(arr::<4>(p, 16)?));
            (
                src,
                dst,
                IpProto(byte(p, 9)?),
                ihl,
                total,
                offset != 0 || more,
                offset != 0,
            )
        }
        6 => {
            let payload = usize::from(be16(p, 4)?);
            // A payload length of 0 announces a jumbogram (RFC 2675): take the buffer.
            let end = if payload == 0 {
                p.len()
            } else {
                payload.saturating_add(40)
            };
            if end > p.len() || end < 40 {
                return Err(ClassifyError::Truncated);
            }
            let src = IpAddr::V6(Ipv6Addr::from(arr::<16>(p, 8)?));
            let dst = IpAddr::V6(Ipv6Addr::from(arr::<16>(p, 24)?));
            (src, dst, IpProto(byte(p, 6)?), 40, end, false, false)
        }
        _ => return Err(ClassifyError::Version),
    };
    let p = p.get(..end).ok_or(ClassifyError::Truncated)?;
    if version == 6 {
        let mut n = 0;
        while !non_initial && matches!(proto.0, 0 | 43 | 44 | 60) {
            n += 1;
            if n > MAX_EXTENSIONS {
                return Err(ClassifyError::TooManyExtensions);
            }
            let next = IpProto(byte(p, off)?);
            if proto == IpProto::IPV6_FRAG {
                let offset = be16(p, off.saturating_add(2))? >> 3;
                let more = byte(p, off.saturating_add(3))? & 1 != 0;
                fragment = fragment || offset != 0 || more;
                non_initial = offset != 0;
                off = off.saturating_add(8);
            } else {
                let len = (usize::from(byte(p, off.saturating_add(1))?) + 1) * 8;
                off = off.saturating_add(len);
            }
            if off > end {
                return Err(ClassifyError::Truncated);
            }
            proto = next;
        }
    }
    let (src_port, dst_port) = if non_initial {
        (PortValue::Opaque, PortValue::Opaque)
    } else {
        match ports(p, off, proto) {
            Ok(v) => v,
            // An initial fragment may stop before the ports (RFC 4301 §7.3): OPAQUE.
            Err(_) if fragment => (PortValue::Opaque, PortValue::Opaque),
            Err(e) => return Err(e),
        }
    };
    Ok(IpInfo {
        src,
        dst,
        proto,
        l4: off,
        end,
        src_port,
        dst_port,
        non_initial,
        fragment,
    })
}

fn ports(p: &[u8], off: usize, proto: IpProto) -> Result<(PortValue, PortValue), ClassifyError> {
    Ok(match proto.0 {
        // TCP, UDP, DCCP, SCTP, UDP-Lite.
        6 | 17 | 33 | 132 | 136 => (
            PortValue::Port(be16(p, off)?),
            PortValue::Port(be16(p, off.saturating_add(2))?),
        ),
        // ICMP, ICMPv6: type ‖ code.
        1 | 58 => {
            let tc = be16(p, off)?;
            (PortValue::Port(tc), PortValue::Port(tc))
        }
        // Mobility Header: MH type in the high byte.
        135 => {
            let t = u16::from(byte(p, off.saturating_add(2))?) << 8;
            (PortValue::Port(t), PortValue::Port(t))
        }
        _ => (PortValue::Opaque, PortValue::Opaque),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn v4(proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0];
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(l4);
        p
    }

    #[test]
    fn parse_ipv4_udp_both_directions() {
        let p = v4(17, 0, &[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]);
        let k = FlowKey::parse(&p, Direction::Outbound).unwrap();
        assert_eq!(k.local, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(k.remote_port, PortValue::Port(53));
        assert_eq!(k.local_port, PortValue::Port(0x1234));
        let k = FlowKey::parse(&p, Direction::Inbound).unwrap();
        assert_eq!(k.local, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(k.local_port, PortValue::Port(53));
    }

    #[test]
    fn non_initial_ipv4_fragment_is_opaque() {
        let p = v4(6, 0x0010, &[0xde, 0xad, 0xbe, 0xef]);
        let k = FlowKey::parse(&p, Direction::Outbound).unwrap();
        assert!(k.non_initial_fragment);
        assert_eq!(k.local_port, PortValue::Opaque);
        // An initial fragment with too few bytes for the ports: OPAQUE, not an error.
        let p = v4(6, 0x2000, &[0xde]);
        assert_eq!(
            FlowKey::parse(&p, Direction::Outbound).unwrap().local_port,
            PortValue::Opaque
        );
        // The same bytes unfragmented are malformed.
        let p = v4(6, 0, &[0xde]);
        assert_eq!(
            FlowKey::parse(&p, Direction::Outbound),
            Err(ClassifyError::Truncated)
        );
    }

    fn v6(first: u8, ext: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        p.extend_from_slice(&[first, 64]);
        p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(ext);
        p
    }

    #[test]
    fn parse_ipv6_across_extension_headers() {
        // hop-by-hop (8) -> dest opts (8) -> fragment (offset 0, M) -> ICMPv6 echo request.
        let ext = [
            60, 0, 0, 0, 0, 0, 0, 0, //
            44, 0, 0, 0, 0, 0, 0, 0, //
            58, 0, 0, 1, 0, 0, 0, 1, //
            128, 0, 0, 0,
        ];
        let k = FlowKey::parse(&v6(0, &ext), Direction::Outbound).unwrap();
        assert_eq!(k.protocol, IpProto::ICMPV6);
        assert_eq!(k.local_port, PortValue::Port(0x8000));
        assert!(!k.non_initial_fragment);
        // A non-initial fragment of TCP.
        let ext = [6, 0, 0, 0x10, 0, 0, 0, 1, 1, 2, 3, 4];
        let k = FlowKey::parse(&v6(44, &ext), Direction::Outbound).unwrap();
        assert_eq!(k.protocol, IpProto::TCP);
        assert!(k.non_initial_fragment);
        assert_eq!(k.remote_port, PortValue::Opaque);
        // A routing header that claims more bytes than there are.
        let ext = [6, 4, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FlowKey::parse(&v6(43, &ext), Direction::Outbound),
            Err(ClassifyError::Truncated)
        );
        // A chain of 17 destination-options headers.
        let mut ext = Vec::new();
        for _ in 0..17 {
            ext.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(
            FlowKey::parse(&v6(60, &ext), Direction::Outbound),
            Err(ClassifyError::TooManyExtensions)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            FlowKey::parse(&[], Direction::Inbound),
            Err(ClassifyError::Truncated)
        );
        assert_eq!(
            FlowKey::parse(&[0x50; 40], Direction::Inbound),
            Err(ClassifyError::Version)
        );
        let mut p = v4(17, 0, &[0, 1, 0, 2]);
        p[3] = 200;
        assert_eq!(
            FlowKey::parse(&p, Direction::Inbound),
            Err(ClassifyError::Truncated)
        );
        p[0] = 0x44;
        assert_eq!(
            FlowKey::parse(&p, Direction::Inbound),
            Err(ClassifyError::Length)
        );
        // GRE has no ports.
        let p = v4(47, 0, &[0, 0, 0x08, 0]);
        assert_eq!(
            FlowKey::parse(&p, Direction::Inbound).unwrap().local_port,
            PortValue::Opaque
        );
    }
}
