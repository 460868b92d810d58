//! The AH packet format ([RFC 4302 §2]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header   |  Payload Len  |          RESERVED             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Security Parameters Index (SPI)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                Integrity Check Value-ICV (variable)           |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!  Payload Len: the AH length in 32-bit words, minus 2 (RFC 4302 §2.2).
//!  The ICV field is the ICV plus padding to a multiple of 32 bits (IPv4) or
//!  64 bits (IPv6) (§2.6). With AES-GMAC the field starts with the 8-byte IV
//!  (RFC 4543 §3.1 and §5):
//!
//! |  Next Header  |  Payload Len  |          RESERVED             |
//! |                 Security Parameters Index (SPI)               |
//! |                    Sequence Number Field                      |
//! |                 Initialization Vector (IV), 8 bytes           |
//! |                 Integrity Check Value (ICV), 16 bytes         |
//! ```
//!
//! This module only reads and writes bytes. [`AhPacket`] is the view of a received
//! header (parse), [`AhRepr`] the semantic value that [`AhRepr::emit`] writes; neither
//! makes a cryptographic judgement. [`AhLayout`] says how an SA cuts the ICV field.
//!
//! [RFC 4302 §2]: https://www.rfc-editor.org/rfc/rfc4302#section-2

use core::fmt;

use ipsec_core::{IpProto, Spi};
use zerocopy::network_endian::{U16, U32};
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

/// Length of the fixed AH header: next header, payload length, reserved, SPI and
/// sequence number.
pub const HEADER_LEN: usize = 12;
/// The longest AH the 8-bit Payload Length field can describe: (255 + 2) * 4.
pub const MAX_AH_LEN: usize = (255 + 2) * 4;

pub use ipsec_core::wire::{EmitError, ParseError, ParseErrorKind};

/// The fixed part of the AH header.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct AhHeader {
    /// The protocol of what follows the AH.
    pub next_header: u8,
    /// The AH length in 32-bit words, minus 2.
    pub payload_len: u8,
    /// Reserved: sent as zero, covered by the ICV, otherwise ignored (RFC 4302 §2.3).
    pub reserved: U16,
    /// Security parameters index.
    pub spi: U32,
    /// The low 32 bits of the sequence number.
    pub seq: U32,
}

impl AhHeader {
    /// The AH length in bytes that `payload_len` describes.
    pub const fn ah_len(&self) -> usize {
        (self.payload_len as usize)
            .saturating_add(2)
            .saturating_mul(4)
    }
}

/// A view of an AH header and what follows it.
///
/// [`AhPacket::parse`] checks what the accessors rely on: the fixed header is present,
/// Payload Length is at least 1 (so the AH is at least [`HEADER_LEN`] bytes) and the
/// whole AH is inside the input. The view accepts any reserved value and any ICV field
/// length; [`AhLayout::split`] checks the field against an SA.
pub struct AhPacket<B> {
    header: Ref<B, AhHeader>,
    icv_field: B,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for AhPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AhPacket")
            .field("next_header", &self.next_header())
            .field("ah_len", &self.ah_len())
            .field("reserved", &self.reserved())
            .field("spi", &self.spi())
            .field("seq", &self.seq())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> AhPacket<B> {
    /// Parses an AH header at the start of `bytes`.
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] when `bytes` is shorter than the header or than
    /// the AH length; [`ParseErrorKind::LengthField`] (offset 1) when Payload Length is 0.
    pub fn parse(bytes: B) -> Result<Self, ParseError> {
        let (header, rest) = Ref::<B, AhHeader>::from_prefix(bytes)
            .map_err(|_| ParseError::truncated(0, HEADER_LEN))?;
        if header.payload_len == 0 {
            return Err(ParseError::length_field(1));
        }
        let ah_len = header.ah_len();
        let field_len = ah_len.saturating_sub(HEADER_LEN);
        let (icv_field, payload) = rest
            .split_at(field_len)
            .map_err(|_| ParseError::truncated(0, ah_len))?;
        Ok(Self {
            header,
            icv_field,
            payload,
        })
    }

    /// The protocol of what follows the AH.
    pub fn next_header(&self) -> IpProto {
        IpProto(self.header.next_header)
    }

    /// The raw Payload Length field.
    pub fn payload_len_field(&self) -> u8 {
        self.header.payload_len
    }

    /// The AH length in bytes (at least [`HEADER_LEN`]).
    pub fn ah_len(&self) -> usize {
        self.header.ah_len()
    }

    /// The reserved field.
    pub fn reserved(&self) -> u16 {
        self.header.reserved.get()
    }

    /// The SPI.
    pub fn spi(&self) -> Spi {
        Spi(self.header.spi.get())
    }

    /// The low 32 bits of the sequence number.
    pub fn seq(&self) -> u32 {
        self.header.seq.get()
    }

    /// The fixed header.
    pub fn header(&self) -> &AhHeader {
        &self.header
    }

    /// The ICV field: IV (AES-GMAC), ICV and padding.
    pub fn icv_field(&self) -> &[u8] {
        &self.icv_field
    }

    /// Everything after the AH.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

impl<B: SplitByteSliceMut> AhPacket<B> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, p: IpProto) {
        self.header.next_header = p.0;
    }

    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: Spi) {
        self.header.spi = U32::new(spi.0);
    }

    /// Sets the low 32 bits of the sequence number.
    pub fn set_seq(&mut self, seq: u32) {
        self.header.seq = U32::new(seq);
    }

    /// The ICV field, writable.
    pub fn icv_field_mut(&mut self) -> &mut [u8] {
        &mut self.icv_field
    }

    /// Everything after the AH, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// Where the IP header that carries an AH comes from: the ICV field is padded to
/// 32 bits for IPv4 and 64 bits for IPv6 (RFC 4302 §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The AH alignment in bytes: 4 or 8.
    pub const fn alignment(self) -> usize {
        match self {
            Self::Ipv4 => 4,
            Self::Ipv6 => 8,
        }
    }
}

/// How an SA's transform fills the ICV field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AhLayout {
    /// IV bytes at the start of the ICV field (8 for AES-GMAC, else 0).
    pub iv_len: usize,
    /// ICV bytes after the IV.
    pub icv_len: usize,
}

/// The ICV field of a packet cut up for one transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AhParts<'a> {
    /// The IV (empty for HMAC transforms).
    pub iv: &'a [u8],
    /// The ICV.
    pub icv: &'a [u8],
    /// The padding behind the ICV (RFC 4302 §2.6: chosen by the sender, covered by
    /// the ICV as sent).
    pub padding: &'a [u8],
}

impl AhLayout {
    /// The AH length this transform produces for `family`: header, IV and ICV,
    /// padded to the family's alignment.
    pub const fn ah_len(&self, family: Family) -> usize {
        let raw = HEADER_LEN
            .saturating_add(self.iv_len)
            .saturating_add(self.icv_len);
        let a = family.alignment();
        raw.div_ceil(a).saturating_mul(a)
    }

    /// Checks the ICV field length of a received AH of `ah_len` bytes.
    ///
    /// Accepted are the length this transform produces for `family`, and for IPv4 also
    /// the 64-bit aligned length (some implementations pad IPv4 AH like IPv6; the padding
    /// is covered by the ICV, so accepting it costs nothing). Every other length is a
    /// [`ParseErrorKind::LengthField`] error at offset 1.
    ///
    /// # Errors
    /// As described.
    pub fn check(&self, ah_len: usize, family: Family) -> Result<(), ParseError> {
        let ok = ah_len == self.ah_len(family)
            || (family == Family::Ipv4 && ah_len == self.ah_len(Family::Ipv6));
        if ok && ah_len <= MAX_AH_LEN {
            Ok(())
        } else {
            Err(ParseError::length_field(1))
        }
    }

    /// Cuts the ICV field of `packet` into IV, ICV and padding.
    ///
    /// # Errors
    /// [`ParseErrorKind::LengthField`] when the field is shorter than IV and ICV.
    pub fn split<'a, B: SplitByteSlice>(
        &self,
        packet: &'a AhPacket<B>,
    ) -> Result<AhParts<'a>, ParseError> {
        let f = packet.icv_field();
        let (iv, rest) = f
            .split_at_checked(self.iv_len)
            .ok_or(ParseError::length_field(1))?;
        let (icv, padding) = rest
            .split_at_checked(self.icv_len)
            .ok_or(ParseError::length_field(1))?;
        Ok(AhParts { iv, icv, padding })
    }
}

/// The semantic content of an AH header, for emitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AhRepr {
    /// The protocol of what follows the AH.
    pub next_header: IpProto,
    /// The SPI.
    pub spi: Spi,
    /// The sequence number; only its low 32 bits are sent (RFC 4302 §2.5).
    pub seq: u64,
    /// The AH length in bytes: a multiple of 4 from [`HEADER_LEN`] to [`MAX_AH_LEN`].
    pub ah_len: usize,
}

impl AhRepr {
    /// Reads the semantic content of a parsed header.
    pub fn parse<B: SplitByteSlice>(packet: &AhPacket<B>) -> Self {
        Self {
            next_header: packet.next_header(),
            spi: packet.spi(),
            seq: u64::from(packet.seq()),
            ah_len: packet.ah_len(),
        }
    }

    /// The bytes [`AhRepr::emit`] writes: the whole AH.
    pub const fn buffer_len(&self) -> usize {
        self.ah_len
    }

    /// Writes the header with reserved = 0 and a zeroed ICV field into the first
    /// [`AhRepr::buffer_len`] bytes of `out` (which may hold stale bytes).
    ///
    /// # Errors
    /// [`EmitError::LengthOutOfRange`] when `ah_len` is not a multiple of 4 in
    /// [`HEADER_LEN`]`..=`[`MAX_AH_LEN`]; [`EmitError::BufferTooSmall`] when `out` is
    /// too short.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), EmitError> {
        let bad_len = EmitError::LengthOutOfRange {
            what: "ah length",
            len: self.ah_len,
        };
        if self.ah_len % 4 != 0 || !(HEADER_LEN..=MAX_AH_LEN).contains(&self.ah_len) {
            return Err(bad_len);
        }
        let payload_len = u8::try_from((self.ah_len / 4).saturating_sub(2)).map_err(|_| bad_len)?;
        let have = out.len();
        let out = out
            .get_mut(..self.ah_len)
            .ok_or(EmitError::buffer_too_small(self.ah_len, have))?;
        let (seq_hi_dropped, seq_lo) = ipsec_core::seq::split(self.seq);
        let _ = seq_hi_dropped; // RFC 4302 §2.5.1: the high half is never sent.
        let h = AhHeader {
            next_header: self.next_header.0,
            payload_len,
            reserved: U16::ZERO,
            spi: U32::new(self.spi.0),
            seq: U32::new(seq_lo),
        };
        let (head, field) = out.split_at_mut(HEADER_LEN);
        h.write_to(head)
            .map_err(|_| EmitError::buffer_too_small(HEADER_LEN, have))?;
        field.fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HMAC_SHA256: AhLayout = AhLayout {
        iv_len: 0,
        icv_len: 16,
    };
    const GMAC: AhLayout = AhLayout {
        iv_len: 8,
        icv_len: 16,
    };
    const SHA1: AhLayout = AhLayout {
        iv_len: 0,
        icv_len: 12,
    };

    #[test]
    fn parse_header_and_split() {
        // The AH of ODP's IPv6 transport vector: ICV 16 bytes, 4 bytes of padding.
        let bytes =
            hex::decode("3a0600000000007b00000001d9148727201ac266c1ca992b8aae2f2700000000ffee")
                .unwrap();
        let p = AhPacket::parse(&bytes[..]).unwrap();
        assert_eq!(p.next_header(), IpProto::ICMPV6);
        assert_eq!(p.ah_len(), 32);
        assert_eq!((p.spi(), p.seq(), p.reserved()), (Spi(123), 1, 0));
        assert_eq!(p.payload(), &[0xff, 0xee]);
        let parts = HMAC_SHA256.split(&p).unwrap();
        assert_eq!(parts.icv.len(), 16);
        assert_eq!(parts.padding, &[0, 0, 0, 0]);
        assert!(HMAC_SHA256.check(p.ah_len(), Family::Ipv6).is_ok());
        assert!(HMAC_SHA256.check(p.ah_len(), Family::Ipv4).is_ok());
        assert!(HMAC_SHA256.check(28, Family::Ipv6).is_err());
        assert!(HMAC_SHA256.check(28, Family::Ipv4).is_ok());
        assert!(HMAC_SHA256.check(36, Family::Ipv4).is_err());
        assert!(AhLayout {
            iv_len: 0,
            icv_len: 40
        }
        .split(&p)
        .is_err());
    }

    #[test]
    fn layout_lengths() {
        assert_eq!(SHA1.ah_len(Family::Ipv4), 24);
        assert_eq!(SHA1.ah_len(Family::Ipv6), 24);
        assert_eq!(HMAC_SHA256.ah_len(Family::Ipv4), 28);
        assert_eq!(HMAC_SHA256.ah_len(Family::Ipv6), 32);
        assert_eq!(GMAC.ah_len(Family::Ipv4), 36);
        assert_eq!(GMAC.ah_len(Family::Ipv6), 40);
        assert_eq!(
            AhLayout {
                iv_len: 0,
                icv_len: 24
            }
            .ah_len(Family::Ipv6),
            40
        );
        assert_eq!(
            AhLayout {
                iv_len: 0,
                icv_len: 32
            }
            .ah_len(Family::Ipv6),
            48
        );
    }

    #[test]
    fn rejects_truncated_and_zero_length() {
        assert_eq!(
            AhPacket::parse(&[0u8; 11][..]).unwrap_err(),
            ParseError::truncated(0, 12)
        );
        let mut h = [0u8; 12];
        assert_eq!(
            AhPacket::parse(&h[..]).unwrap_err(),
            ParseError::length_field(1)
        );
        h[1] = 1;
        let p = AhPacket::parse(&h[..]).unwrap();
        assert_eq!(
            (p.ah_len(), p.icv_field().len(), p.payload().len()),
            (12, 0, 0)
        );
        h[1] = 2;
        assert_eq!(
            AhPacket::parse(&h[..]).unwrap_err(),
            ParseError::truncated(0, 16)
        );
    }

    #[test]
    fn emit_and_roundtrip() {
        let r = AhRepr {
            next_header: IpProto::TCP,
            spi: Spi(0x0102_0304),
            seq: 0x0000_0007_0000_0009,
            ah_len: 24,
        };
        let mut out = [0xaau8; 26];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..12], &[6, 4, 0, 0, 1, 2, 3, 4, 0, 0, 0, 9]);
        assert_eq!(&out[12..24], &[0; 12]);
        assert_eq!(&out[24..], &[0xaa, 0xaa]);
        let p = AhPacket::parse(&out[..]).unwrap();
        assert_eq!(AhRepr::parse(&p), AhRepr { seq: 9, ..r });
        assert!(r.emit(&mut out[..23]).is_err());
        assert!(AhRepr { ah_len: 26, ..r }.emit(&mut out).is_err());
        assert!(AhRepr { ah_len: 8, ..r }.emit(&mut out).is_err());
        let mut big = [0u8; MAX_AH_LEN + 4];
        assert!(AhRepr {
            ah_len: MAX_AH_LEN,
            ..r
        }
        .emit(&mut big)
        .is_ok());
        assert_eq!(AhPacket::parse(&big[..]).unwrap().ah_len(), MAX_AH_LEN);
        assert!(AhRepr {
            ah_len: MAX_AH_LEN + 4,
            ..r
        }
        .emit(&mut big)
        .is_err());
    }

    #[test]
    fn setters() {
        let mut b = [0u8; 16];
        b[1] = 2;
        let mut p = AhPacket::parse(&mut b[..]).unwrap();
        p.set_next_header(IpProto::UDP);
        p.set_spi(Spi(5));
        p.set_seq(6);
        p.icv_field_mut().fill(7);
        assert!(p.payload_mut().is_empty());
        assert_eq!(b, [17, 2, 0, 0, 0, 0, 0, 5, 0, 0, 0, 6, 7, 7, 7, 7]);
    }
}
