//! Building the plain IP packets the demo sends through its tunnel.

use std::net::Ipv4Addr;

use ipsec::core::ip::{checksum_add, checksum_fold, ipv4_checksum};

/// IP protocol numbers used here.
pub const PROTO_ICMP: u8 = 1;
/// UDP.
pub const PROTO_UDP: u8 = 17;

/// An IPv4 header (20 bytes, no options) for a packet of `total_len` bytes.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    total_len: usize,
    ident: u16,
) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A whole IPv4 packet of exactly `len` bytes (at least 28): an ICMP echo request
/// when `icmp`, else a UDP datagram to the discard port, with a recognisable payload.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, len: usize, seq: u16, icmp: bool) -> Vec<u8> {
    let len = len.max(28);
    let mut p = Vec::with_capacity(len);
    let proto = if icmp { PROTO_ICMP } else { PROTO_UDP };
    p.extend_from_slice(&ipv4_header(src, dst, proto, len, seq));
    if icmp {
        p.extend_from_slice(&[8, 0, 0, 0]);
        p.extend_from_slice(&0x1234u16.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
    } else {
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&9u16.to_be_bytes());
        p.extend_from_slice(&((len - 20) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]); // checksum 0: none (allowed over IPv4)
    }
    let mut i = 0u8;
    while p.len() < len {
        p.push(i);
        i = i.wrapping_add(1);
    }
    if icmp {
        let c = checksum_fold(checksum_add(0, &p[20..]));
        p[22..24].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Turns an IPv4 packet from [`ipv4_packet`] into the reply the far side sends:
/// addresses swapped, an echo request answered with an echo reply.
pub fn reply_to(req: &[u8]) -> Option<Vec<u8>> {
    if req.len() < 28 || req[0] != 0x45 {
        return None;
    }
    let mut p = req.to_vec();
    let (src, dst) = (
        Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        Ipv4Addr::new(p[16], p[17], p[18], p[19]),
    );
    let ident = u16::from_be_bytes([p[4], p[5]]);
    let h = ipv4_header(dst, src, p[9], p.len(), ident);
    p[..20].copy_from_slice(&h);
    if p[9] == PROTO_ICMP && p[20] == 8 {
        p[20] = 0;
        p[22] = 0;
        p[23] = 0;
        let c = checksum_fold(checksum_add(0, &p[20..]));
        p[22..24].copy_from_slice(&c.to_be_bytes());
    } else if p[9] == PROTO_UDP {
        p.swap(20, 22);
        p.swap(21, 23);
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_well_formed() {
        let a = Ipv4Addr::new(10, 1, 0, 1);
        let b = Ipv4Addr::new(10, 2, 0, 1);
        for (len, icmp) in [(28, true), (64, false), (1400, true), (9000, false)] {
            let p = ipv4_packet(a, b, len, 7, icmp);
            assert_eq!(p.len(), len);
            assert_eq!(ipv4_checksum(&p[..20]), 0);
            if icmp {
                assert_eq!(checksum_fold(checksum_add(0, &p[20..])), 0);
            }
            let r = reply_to(&p).unwrap();
            assert_eq!(&r[12..16], &b.octets());
            assert_eq!(ipv4_checksum(&r[..20]), 0);
            if icmp {
                assert_eq!(r[20], 0);
                assert_eq!(checksum_fold(checksum_add(0, &r[20..])), 0);
            }
        }
    }
}
