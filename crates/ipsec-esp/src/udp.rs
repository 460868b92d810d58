//! UDP encapsulation of ESP for NAT traversal ([RFC 3948]).
//!
//! ```text
//! UDP-encapsulated ESP (RFC 3948 §2.1)      IKE on port 4500 (RFC 3948 §2.2)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Source Port            |      Destination Port         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Length              |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  ESP header: a non-zero SPI ...  or  Non-ESP Marker (4 zero    |
//! |                                      bytes) followed by IKE    |
//! ~                                                               ~
//!
//! NAT-keepalive (RFC 3948 §2.3): a UDP payload of the single byte 0xFF.
//! ```
//!
//! [`classify`] sorts a UDP payload received on port 4500 into these cases. The header
//! helpers write and strip the 8-byte UDP header around an ESP packet in a
//! [`PacketBuf`]. For IPv4 the checksum is sent as 0 (RFC 3948 §2.1); over IPv6 it is
//! computed, since RFC 8200 §8.1 forbids zero UDP checksums.
//!
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948

use core::net::IpAddr;

use ipsec_core::ip::{checksum_add, checksum_fold};
use ipsec_core::IpProto;
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::wire::{EmitError, ParseError, HEADER_LEN};
use ipsec_core::PacketBuf;

pub use ipsec_core::nat_t::{NAT_KEEPALIVE as KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER};
/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// The UDP header (RFC 768).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: U16,
    /// Destination port.
    pub dst_port: U16,
    /// Length of header and payload.
    pub len: U16,
    /// Checksum (0 = none, IPv4 only).
    pub checksum: U16,
}

/// Source and destination port of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpPorts {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

impl UdpPorts {
    /// 4500 to 4500.
    pub const NAT_T: Self = Self {
        src: NAT_T_PORT,
        dst: NAT_T_PORT,
    };
}

/// What a UDP payload received on the NAT-T port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified<'a> {
    /// A NAT-keepalive: drop it.
    Keepalive,
    /// An IKE message; the slice starts after the Non-ESP Marker.
    Ike(&'a [u8]),
    /// An ESP packet (the whole payload, from the SPI on).
    Esp(&'a [u8]),
    /// Neither: too short for ESP, an empty IKE message, or a one-byte payload that is
    /// not 0xFF.
    Malformed,
}

/// Sorts a UDP payload from port 4500 (RFC 3948 §2.2, §2.3): a single 0xFF byte is a
/// keepalive, four zero bytes mark IKE, anything else of at least 8 bytes is ESP (whose
/// SPI is never 0).
pub fn classify(datagram: &[u8]) -> Classified<'_> {
    if datagram == KEEPALIVE {
        return Classified::Keepalive;
    }
    match datagram.split_at_checked(NON_ESP_MARKER.len()) {
        Some((marker, ike)) if marker == NON_ESP_MARKER => {
            if ike.is_empty() {
                Classified::Malformed
            } else {
                Classified::Ike(ike)
            }
        }
        Some(_) if datagram.len() >= HEADER_LEN => Classified::Esp(datagram),
        _ => Classified::Malformed,
    }
}

/// The UDP checksum over IPv6 (RFC 8200 §8.1) of `segment` (header with a zero checksum
/// field, and payload). Returns 0xFFFF for a computed 0, as RFC 768 requires.
pub fn checksum_v6(src: &[u8; 16], dst: &[u8; 16], segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let mut sum = checksum_add(0, src);
    sum = checksum_add(sum, dst);
    sum = checksum_add(sum, &len.to_be_bytes());
    sum = checksum_add(sum, &[0, 0, 0, IpProto::UDP.0]);
    sum = checksum_add(sum, segment);
    match checksum_fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// The UDP checksum over IPv4 (RFC 768) of `segment`, for completeness; ESP-in-UDP over
/// IPv4 sends 0 instead.
pub fn checksum_v4(src: &[u8; 4], dst: &[u8; 4], segment: &[u8]) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    let mut sum = checksum_add(0, src);
    sum = checksum_add(sum, dst);
    sum = checksum_add(sum, &[0, IpProto::UDP.0]);
    sum = checksum_add(sum, &len.to_be_bytes());
    sum = checksum_add(sum, segment);
    match checksum_fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// Writes a UDP header for `payload_len` bytes of payload to the start of `out`, with
/// a zero checksum.
///
/// # Errors
/// [`EmitError::LengthOutOfRange`] when the payload is longer than a UDP datagram can
/// be; [`EmitError::BufferTooSmall`] when `out` is shorter than 8 bytes.
pub fn emit_header(out: &mut [u8], ports: UdpPorts, payload_len: usize) -> Result<(), EmitError> {
    let len = payload_len
        .checked_add(UDP_HEADER_LEN)
        .and_then(|l| u16::try_from(l).ok())
        .ok_or(EmitError::LengthOutOfRange {
            what: "udp payload",
            len: payload_len,
        })?;
    let h = UdpHeader {
        src_port: U16::new(ports.src),
        dst_port: U16::new(ports.dst),
        len: U16::new(len),
        checksum: U16::ZERO,
    };
    let have = out.len();
    h.write_to_prefix(out)
        .map_err(|_| EmitError::buffer_too_small(UDP_HEADER_LEN, have))
}

/// Puts a UDP header in front of the ESP packet in the body. With `addrs` given as an
/// IPv6 pair the checksum is computed; otherwise it stays 0 (RFC 3948 §2.1).
///
/// # Errors
/// [`EmitError::BufferTooSmall`] when there are fewer than 8 bytes of headroom,
/// [`EmitError::LengthOutOfRange`] when the datagram would exceed 65535 bytes. The
/// body is unchanged then.
pub fn encap<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    ports: UdpPorts,
    addrs: Option<(IpAddr, IpAddr)>,
) -> Result<(), EmitError> {
    let payload_len = buf.body_len();
    let headroom = buf.headroom();
    if headroom < UDP_HEADER_LEN {
        return Err(EmitError::buffer_too_small(UDP_HEADER_LEN, headroom));
    }
    let mut hdr = [0u8; UDP_HEADER_LEN];
    emit_header(&mut hdr, ports, payload_len)?;
    buf.push_front(UDP_HEADER_LEN)
        .map_err(|_| EmitError::buffer_too_small(UDP_HEADER_LEN, headroom))?
        .copy_from_slice(&hdr);
    if let Some((IpAddr::V6(s), IpAddr::V6(d))) = addrs {
        let c = checksum_v6(&s.octets(), &d.octets(), buf.body());
        if let Some(slot) = buf.body_mut().get_mut(6..8) {
            slot.copy_from_slice(&c.to_be_bytes());
        }
    }
    Ok(())
}

/// Parses the UDP header at the start of `datagram`, checks its length field against
/// the bytes present and returns the ports and the payload (trimmed to the length
/// field). The checksum is not verified: the ESP ICV covers the payload, and RFC 3948
/// §3.1.2 lets receivers ignore it.
///
/// # Errors
/// [`ParseError`] when the header is truncated or its length field is below 8 or past
/// the data.
pub fn parse(datagram: &[u8]) -> Result<(UdpPorts, &[u8]), ParseError> {
    let (h, rest) = Ref::<&[u8], UdpHeader>::from_prefix(datagram)
        .map_err(|_| ParseError::truncated(0, UDP_HEADER_LEN))?;
    let payload_len = usize::from(h.len.get())
        .checked_sub(UDP_HEADER_LEN)
        .ok_or(ParseError::length_field(4))?;
    let payload = rest.get(..payload_len).ok_or(ParseError::length_field(4))?;
    Ok((
        UdpPorts {
            src: h.src_port.get(),
            dst: h.dst_port.get(),
        },
        payload,
    ))
}

/// Strips the UDP header in front of an ESP packet: the body then holds only the ESP
/// packet. Keepalives and IKE messages are refused, so call [`classify`] first if
/// they may arrive on the same path.
///
/// # Errors
/// [`ParseError`] when the UDP header is malformed or the payload is not ESP.
pub fn decap<B: AsRef<[u8]> + AsMut<[u8]>>(buf: &mut PacketBuf<B>) -> Result<UdpPorts, ParseError> {
    let (ports, payload_len) = {
        let (ports, payload) = parse(buf.body())?;
        match classify(payload) {
            Classified::Esp(_) => (ports, payload.len()),
            _ => return Err(ParseError::bad_value(UDP_HEADER_LEN, "non-ESP UDP payload")),
        }
    };
    buf.pull_front(UDP_HEADER_LEN)
        .map_err(|_| ParseError::truncated(0, UDP_HEADER_LEN))?;
    buf.truncate(payload_len);
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_cases() {
        assert_eq!(classify(&[0xff]), Classified::Keepalive);
        assert_eq!(classify(&[0xfe]), Classified::Malformed);
        assert_eq!(classify(&[]), Classified::Malformed);
        assert_eq!(classify(&[0, 0, 0, 0]), Classified::Malformed);
        assert_eq!(classify(&[0, 0, 0, 0, 1, 2]), Classified::Ike(&[1, 2]));
        assert_eq!(classify(&[0, 0, 1, 0, 0, 0, 0]), Classified::Malformed);
        let esp = [0, 0, 1, 0, 0, 0, 0, 1];
        assert_eq!(classify(&esp), Classified::Esp(&esp));
    }

    #[test]
    fn roundtrip_header() {
        let mut storage = [0u8; 32];
        storage[8..16].copy_from_slice(&[0, 0, 1, 0, 0, 0, 0, 1]);
        let mut b = PacketBuf::new(&mut storage[..], 8, 8).unwrap();
        encap(&mut b, UdpPorts::NAT_T, None).unwrap();
        assert_eq!(&b.body()[..8], &[0x11, 0x94, 0x11, 0x94, 0, 16, 0, 0]);
        assert_eq!(decap(&mut b).unwrap(), UdpPorts::NAT_T);
        assert_eq!(b.body_range(), 8..16);
        assert!(encap(&mut b, UdpPorts::NAT_T, None).is_ok());
        assert!(encap(&mut b, UdpPorts::NAT_T, None).is_err());
    }

    #[test]
    fn rejects_bad_length() {
        assert!(parse(&[0, 1, 0, 2, 0, 7, 0, 0]).is_err());
        assert!(parse(&[0, 1, 0, 2, 0, 10, 0, 0, 1]).is_err());
        assert_eq!(parse(&[0, 1, 0, 2, 0, 9, 0, 0, 1, 2]).unwrap().1, &[1]);
    }
}
