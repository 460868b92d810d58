//! The minimal IPv4 and IPv6 header views the codecs need, and ([`walk`]) the one
//! walker ESP and AH use to find where their header goes or is.
//!
//! ```text
//! IPv4 (RFC 791 §3.1)                       IPv6 (RFC 8200 §3)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub mod walk;

/// The fixed 20-byte part of an IPv4 header.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Ipv4Header {
    /// Version (4) and header length in 32-bit words.
    pub version_ihl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Total length of the datagram.
    pub total_len: U16,
    /// Identification.
    pub ident: U16,
    /// Flags (DF = 0x4000, MF = 0x2000) and fragment offset.
    pub flags_frag: U16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Header checksum.
    pub checksum: U16,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
}

impl Ipv4Header {
    /// The length of the fixed header.
    pub const LEN: usize = 20;
    /// The Don't Fragment flag in `flags_frag`.
    pub const DF: u16 = 0x4000;
    /// The More Fragments flag in `flags_frag`.
    pub const MF: u16 = 0x2000;

    /// The header length in bytes, from IHL.
    pub fn header_len(&self) -> usize {
        usize::from(self.version_ihl & 0x0f) * 4
    }

    /// The fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag.get() & 0x1fff
    }
}

/// The fixed 40-byte IPv6 header.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Ipv6Header {
    /// Version (6), traffic class and flow label.
    pub ver_tc_flow: U32,
    /// Length of everything after this header.
    pub payload_len: U16,
    /// Protocol of the next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// The length of the header.
    pub const LEN: usize = 40;

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        ((self.ver_tc_flow.get() >> 20) & 0xff) as u8
    }
}

/// The Internet checksum (RFC 1071) over `data`, starting from a partial `sum`.
pub fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [a, b] = c {
            sum = sum.wrapping_add(u32::from(u16::from_be_bytes([*a, *b])));
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a partial sum into the final one's-complement checksum.
pub fn checksum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 header checksum over `header` (whose checksum field must be zero or is
/// included as is: a correct header sums to zero).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    checksum_fold(checksum_add(0, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_of_known_header() {
        // From the first ESP vector's inner packet (draft-mcgrew-gcm-test case 1).
        let h: [u8; 20] = [
            0x45, 0x00, 0x00, 0x48, 0x69, 0x9a, 0x00, 0x00, 0x80, 0x11, 0x4d, 0xb7, 0xc0, 0xa8,
            0x01, 0x02, 0xc0, 0xa8, 0x01, 0x01,
        ];
        assert_eq!(ipv4_checksum(&h), 0);
        let mut z = h;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(ipv4_checksum(&z), 0x4db7);
        let v = Ipv4Header::ref_from_bytes(&h[..]).unwrap();
        assert_eq!(v.header_len(), 20);
        assert_eq!(v.total_len.get(), 0x48);
    }
}
