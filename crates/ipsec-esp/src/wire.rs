//! The ESP packet format ([RFC 4303 §2]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |               Security Parameters Index (SPI)                 | ^Int.
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |                      Sequence Number                          | |ered
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
//! |                    Payload Data* (variable)                   | |   ^
//! ~                                                               ~ |   |
//! |                                                               | |Conf.
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |               |     Padding (0-255 bytes)                     | |ered*
//! +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//! |                               |  Pad Length   | Next Header   | v   v
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//! |         Integrity Check Value-ICV   (variable)                |
//! ~                                                               ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!     * The Payload Data starts with the explicit IV where the cipher has one
//!       (RFC 4303 §2.3); the IV is not encrypted.
//! ```
//!
//! This module only reads and writes bytes; it makes no cryptographic judgement.
//! [`EspPacket`] is the view of a received packet, [`Trailer`] the parsed (decrypted)
//! trailer. Emitting lives in [`EspHeader::emit`] and [`Trailer::emit`], apart from
//! parsing.
//!
//! [RFC 4303 §2]: https://www.rfc-editor.org/rfc/rfc4303#section-2

use core::fmt;

use ipsec_core::{IpProto, Spi};
use zerocopy::network_endian::U32;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

/// Length of the ESP header (SPI and sequence number).
pub const HEADER_LEN: usize = 8;
/// Length of the ESP trailer after the padding (pad length and next header).
pub const TRAILER_LEN: usize = 2;
/// The longest padding an ESP packet can carry.
pub const MAX_PAD_LEN: usize = 255;

pub use ipsec_core::wire::{EmitError, ParseError, ParseErrorKind};

/// The fixed ESP header.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct EspHeader {
    /// Security parameters index.
    pub spi: U32,
    /// The low 32 bits of the sequence number.
    pub seq: U32,
}

impl EspHeader {
    /// A header for `spi` carrying the low 32 bits of `seq`.
    pub fn new(spi: Spi, seq: u64) -> Self {
        // RFC 4303 §2.2: only the low-order 32 bits are transmitted.
        let (_, lo) = ipsec_core::seq::split(seq);
        Self {
            spi: U32::new(spi.0),
            seq: U32::new(lo),
        }
    }

    /// Writes the header to the first [`HEADER_LEN`] bytes of `out`.
    ///
    /// # Errors
    /// [`EmitError::BufferTooSmall`] when `out` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, out: &mut [u8]) -> Result<(), EmitError> {
        Self::write(Spi(self.spi.get()), u64::from(self.seq.get()), out)
    }

    /// Writes the header for `spi` and the low 32 bits of `seq` (RFC 4303 §2.2) to the
    /// first [`HEADER_LEN`] bytes of `out`, without building an [`EspHeader`] first.
    ///
    /// It is one 8-byte store: the AEAD reads these bytes back right after as AAD, and
    /// a wide load of bytes written by two narrower stores just before defeats the
    /// CPU's store-to-load forwarding (a stall of a dozen cycles or more per packet).
    ///
    /// # Errors
    /// [`EmitError::BufferTooSmall`] when `out` is shorter than [`HEADER_LEN`].
    pub fn write(spi: Spi, seq: u64, out: &mut [u8]) -> Result<(), EmitError> {
        let (_, lo) = ipsec_core::seq::split(seq);
        let v = (u64::from(spi.0) << 32) | u64::from(lo);
        let have = out.len();
        out.get_mut(..HEADER_LEN)
            .ok_or(EmitError::buffer_too_small(HEADER_LEN, have))?
            .copy_from_slice(&v.to_be_bytes());
        Ok(())
    }
}

/// A view of an ESP packet: the header and everything after it.
///
/// [`EspPacket::parse`] only checks that the header is present: where the IV ends and the
/// ICV starts depends on the SA. [`EspPacket::split`] cuts the rest up for a given
/// transform.
pub struct EspPacket<B> {
    header: Ref<B, EspHeader>,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for EspPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspPacket")
            .field("spi", &self.spi())
            .field("seq", &self.seq())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The parts of an ESP packet's payload for one transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspParts<'a> {
    /// The explicit IV (empty for NULL encryption).
    pub iv: &'a [u8],
    /// The ciphertext: encrypted payload, padding, pad length, next header.
    pub ciphertext: &'a [u8],
    /// The integrity check value.
    pub icv: &'a [u8],
}

/// The lengths that depend on the transform, for [`EspPacket::split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspLayout {
    /// Explicit IV length.
    pub iv_len: usize,
    /// ICV length.
    pub icv_len: usize,
    /// The block length the ciphertext must be a multiple of (1 if none).
    pub block_len: usize,
}

impl EspLayout {
    /// Checks the lengths of a packet of `len` bytes (header included) and returns the
    /// ciphertext length.
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] when it cannot hold header, IV, trailer and ICV;
    /// [`ParseErrorKind::BlockAlignment`] when the ciphertext is not whole blocks.
    pub fn ciphertext_len(&self, len: usize) -> Result<usize, ParseError> {
        let min = HEADER_LEN
            .saturating_add(self.iv_len)
            .saturating_add(TRAILER_LEN)
            .saturating_add(self.icv_len);
        if len < min {
            return Err(ParseError::truncated(0, min));
        }
        let ct = len
            .saturating_sub(HEADER_LEN)
            .saturating_sub(self.iv_len)
            .saturating_sub(self.icv_len);
        if self.block_len > 1 && ct.checked_rem(self.block_len) != Some(0) {
            return Err(ParseError::new(
                ParseErrorKind::BlockAlignment {
                    block_len: self.block_len,
                },
                HEADER_LEN.saturating_add(self.iv_len),
            ));
        }
        Ok(ct)
    }
}

impl<B: SplitByteSlice> EspPacket<B> {
    /// Parses the header of an ESP packet.
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] when `bytes` is shorter than [`HEADER_LEN`].
    pub fn parse(bytes: B) -> Result<Self, ParseError> {
        let (header, payload) = Ref::<B, EspHeader>::from_prefix(bytes)
            .map_err(|_| ParseError::truncated(0, HEADER_LEN))?;
        Ok(Self { header, payload })
    }

    /// The SPI.
    pub fn spi(&self) -> Spi {
        Spi(self.header.spi.get())
    }

    /// The low 32 bits of the sequence number.
    pub fn seq(&self) -> u32 {
        self.header.seq.get()
    }

    /// The header.
    pub fn header(&self) -> &EspHeader {
        &self.header
    }

    /// Everything after the header: IV, ciphertext and ICV.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Cuts the payload into IV, ciphertext and ICV for a transform.
    ///
    /// # Errors
    /// As [`EspLayout::ciphertext_len`].
    pub fn split(&self, layout: &EspLayout) -> Result<EspParts<'_>, ParseError> {
        let total = self.payload.len().saturating_add(HEADER_LEN);
        let ct_len = layout.ciphertext_len(total)?;
        let (iv, rest) = self
            .payload
            .split_at_checked(layout.iv_len)
            .ok_or(ParseError::truncated(HEADER_LEN, layout.iv_len))?;
        let (ciphertext, icv) = rest
            .split_at_checked(ct_len)
            .ok_or(ParseError::truncated(HEADER_LEN, ct_len))?;
        Ok(EspParts {
            iv,
            ciphertext,
            icv,
        })
    }
}

impl<B: SplitByteSliceMut> EspPacket<B> {
    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: Spi) {
        self.header.spi = U32::new(spi.0);
    }

    /// Sets the low 32 bits of the sequence number.
    pub fn set_seq(&mut self, seq: u32) {
        self.header.seq = U32::new(seq);
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The decrypted ESP trailer: how much padding there is and what the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Padding length in bytes.
    pub pad_len: u8,
    /// The protocol of the payload ([`IpProto::NO_NEXT_HEADER`] for a dummy packet).
    pub next_header: IpProto,
}

impl Trailer {
    /// Parses the trailer at the end of `plaintext` (payload ‖ padding ‖ pad length ‖
    /// next header) and returns it with the payload length.
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] when `plaintext` is shorter than the two trailer
    /// bytes; [`ParseErrorKind::LengthField`] when the pad length is longer than what
    /// precedes the trailer.
    pub fn parse(plaintext: &[u8]) -> Result<(Self, usize), ParseError> {
        let body_len = plaintext
            .len()
            .checked_sub(TRAILER_LEN)
            .ok_or(ParseError::truncated(0, TRAILER_LEN))?;
        let [pad_len, next_header] = plaintext
            .get(body_len..)
            .and_then(|t| <[u8; 2]>::try_from(t).ok())
            .ok_or(ParseError::truncated(0, TRAILER_LEN))?;
        let payload_len = body_len
            .checked_sub(usize::from(pad_len))
            .ok_or(ParseError::length_field(body_len))?;
        Ok((
            Self {
                pad_len,
                next_header: IpProto(next_header),
            },
            payload_len,
        ))
    }

    /// Checks that the `pad_len` bytes before the trailer are 1, 2, 3, ... (the default
    /// padding of [RFC 4303 §2.4](https://www.rfc-editor.org/rfc/rfc4303#section-2.4)).
    /// `plaintext` is the same slice given to [`Trailer::parse`].
    pub fn padding_is_default(&self, plaintext: &[u8]) -> bool {
        let end = plaintext.len().saturating_sub(TRAILER_LEN);
        let Some(start) = end.checked_sub(usize::from(self.pad_len)) else {
            return false;
        };
        plaintext
            .get(start..end)
            .is_some_and(|p| p.iter().zip(1u8..).all(|(&b, want)| b == want))
    }

    /// Writes `pad_len` bytes of default padding and the two trailer bytes to the
    /// start of `out`.
    ///
    /// # Errors
    /// [`EmitError::BufferTooSmall`] when `out` is too short.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), EmitError> {
        let pad = usize::from(self.pad_len);
        let need = pad.saturating_add(TRAILER_LEN);
        let have = out.len();
        let out = out
            .get_mut(..need)
            .ok_or(EmitError::buffer_too_small(need, have))?;
        let (padding, tail) = out.split_at_mut(pad);
        for (b, v) in padding.iter_mut().zip(1u8..) {
            *b = v;
        }
        if let [pl, nh] = tail {
            *pl = self.pad_len;
            *nh = self.next_header.0;
        }
        Ok(())
    }

    /// The bytes [`Trailer::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        // At most 255 + 2.
        (self.pad_len as usize).saturating_add(TRAILER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_header_and_split() {
        let bytes = [0, 0, 1, 0, 0, 0, 0, 5, 9, 9, 1, 2, 3, 4, 0, 4, 7, 7];
        let p = EspPacket::parse(&bytes[..]).unwrap();
        assert_eq!(p.spi(), Spi(256));
        assert_eq!(p.seq(), 5);
        let parts = p
            .split(&EspLayout {
                iv_len: 2,
                icv_len: 2,
                block_len: 2,
            })
            .unwrap();
        assert_eq!(parts.iv, &[9, 9]);
        assert_eq!(parts.ciphertext, &[1, 2, 3, 4, 0, 4]);
        assert_eq!(parts.icv, &[7, 7]);
        assert_eq!(
            p.split(
                &EspLayout {
                    iv_len: 2,
                    icv_len: 2,
                    block_len: 2
                }
                .with_block(4)
            )
            .unwrap_err()
            .kind,
            ParseErrorKind::BlockAlignment { block_len: 4 }
        );
        assert!(p
            .split(&EspLayout {
                iv_len: 8,
                icv_len: 16,
                block_len: 1
            })
            .is_err());
    }

    impl EspLayout {
        fn with_block(mut self, b: usize) -> Self {
            self.block_len = b;
            self
        }
    }

    #[test]
    fn rejects_truncated_header() {
        assert_eq!(
            EspPacket::parse(&[0u8; 7][..]).unwrap_err(),
            ParseError::truncated(0, 8)
        );
    }

    #[test]
    fn emit_header() {
        let mut out = [0xaa; 8];
        EspHeader::new(Spi(0x01020304), 0x1_0000_0005)
            .emit(&mut out)
            .unwrap();
        assert_eq!(out, [1, 2, 3, 4, 0, 0, 0, 5]);
        assert!(EspHeader::new(Spi(1), 1).emit(&mut out[..7]).is_err());
        // `write` (the seal path's) gives the same bytes, and writes nothing else.
        let mut w = [0xaa; 10];
        EspHeader::write(Spi(0x0102_0304), 0x1_0000_0005, &mut w[..9]).unwrap();
        assert_eq!(w, [1, 2, 3, 4, 0, 0, 0, 5, 0xaa, 0xaa]);
        assert!(EspHeader::write(Spi(1), 1, &mut w[..7]).is_err());
    }

    #[test]
    fn roundtrip_trailer() {
        let mut buf = [0u8; 9];
        let t = Trailer {
            pad_len: 3,
            next_header: IpProto::TCP,
        };
        t.emit(&mut buf[4..]).unwrap();
        assert_eq!(&buf[4..], &[1, 2, 3, 3, 6]);
        let (p, len) = Trailer::parse(&buf).unwrap();
        assert_eq!((p, len), (t, 4));
        assert!(p.padding_is_default(&buf));
        buf[5] = 9;
        assert!(!p.padding_is_default(&buf));
        assert_eq!(
            Trailer::parse(&[1]).unwrap_err(),
            ParseError::truncated(0, 2)
        );
        assert_eq!(
            Trailer::parse(&[0, 2, 4]).unwrap_err(),
            ParseError::length_field(1)
        );
        assert!(t.emit(&mut buf[..4]).is_err());
    }
}
