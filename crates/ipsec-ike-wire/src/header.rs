//! The IKE header ([RFC 7296 §3.1]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Flags:  +-+-+-+-+-+-+-+-+
//!         |X|X|R|V|I|X|X|X|
//!         +-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.1]: https://www.rfc-editor.org/rfc/rfc7296#section-3.1

use core::fmt;

use ipsec_core::IkeSpi;
use zerocopy::network_endian::U32;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Writer};
use crate::registry::{ExchangeType, PayloadType};

/// Length of the IKE header.
pub const HEADER_LEN: usize = 28;

/// The only major version this crate speaks.
pub const MAJOR_VERSION: u8 = 2;

/// The IKE header as laid out on the wire.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IkeHeader {
    /// IKE SA Initiator's SPI.
    pub spi_i: [u8; 8],
    /// IKE SA Responder's SPI.
    pub spi_r: [u8; 8],
    /// Type of the first payload.
    pub next_payload: u8,
    /// Major version (high nibble) and minor version (low nibble).
    pub version: u8,
    /// Exchange type.
    pub exchange_type: u8,
    /// Flags.
    pub flags: u8,
    /// Message ID.
    pub message_id: U32,
    /// Length of the whole message, header included.
    pub length: U32,
}

/// The IKE header flags byte. All eight bits are kept, so reserved bits survive a
/// parse/emit round trip; RFC 7296 says to send them as zero and ignore them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Response (R): this message answers a request with the same Message ID.
    pub const RESPONSE: u8 = 0x20;
    /// Version (V): the sender could speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// Initiator (I): sent by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// Bits RFC 7296 reserves.
    pub const RESERVED: u8 = !(Self::RESPONSE | Self::VERSION | Self::INITIATOR);

    /// Flags with the given bits.
    pub const fn new(initiator: bool, response: bool) -> Self {
        let mut f = 0;
        if initiator {
            f |= Self::INITIATOR;
        }
        if response {
            f |= Self::RESPONSE;
        }
        Flags(f)
    }

    /// The R bit.
    pub const fn is_response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// The I bit.
    pub const fn is_initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// The V bit.
    pub const fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }

    /// True when no reserved bit is set.
    pub const fn reserved_clear(self) -> bool {
        self.0 & Self::RESERVED == 0
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags(")?;
        let mut sep = "";
        for (bit, name) in [
            (Self::INITIATOR, "I"),
            (Self::VERSION, "V"),
            (Self::RESPONSE, "R"),
        ] {
            if self.0 & bit != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        if !self.reserved_clear() {
            write!(f, "{sep}0x{:02x}", self.0 & Self::RESERVED)?;
        }
        write!(f, ")")
    }
}

/// A view of an IKE message: the header and the payload bytes after it.
///
/// [`IkePacket::parse`] checks that the buffer holds a header, that the major version
/// is 2 and that the Length field equals the buffer length, so every accessor is
/// infallible.
pub struct IkePacket<B> {
    header: Ref<B, IkeHeader>,
    payloads: B,
}

impl<B: SplitByteSlice> fmt::Debug for IkePacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkePacket")
            .field("header", &*self.header)
            .field("payloads_len", &self.payloads.len())
            .finish()
    }
}

impl<B: SplitByteSlice> IkePacket<B> {
    /// Parses the IKE header of a whole message (exactly one UDP payload, without the
    /// non-ESP marker).
    ///
    /// # Errors
    /// `Truncated` when the buffer is shorter than the header or its Length field,
    /// `LengthField` when the Length field is below 28 or shorter than the buffer,
    /// `UnsupportedMajorVersion` when the major version is not 2.
    pub fn parse(bytes: B) -> Result<Self, ParseError> {
        let total = bytes.len();
        let (header, payloads) = Ref::<B, IkeHeader>::from_prefix(bytes).map_err(|_| {
            ParseError::new(
                ParseErrorKind::Truncated {
                    needed: HEADER_LEN.saturating_sub(total),
                },
                total,
            )
        })?;
        let major = header.version >> 4;
        if major != MAJOR_VERSION {
            return Err(ParseError::new(
                ParseErrorKind::UnsupportedMajorVersion { major },
                17,
            ));
        }
        let length = usize::try_from(header.length.get()).unwrap_or(usize::MAX);
        if length < HEADER_LEN || length < total {
            return Err(ParseError::new(ParseErrorKind::LengthField, 24));
        }
        if length > total {
            return Err(ParseError::new(
                ParseErrorKind::Truncated {
                    needed: length.saturating_sub(total),
                },
                total,
            ));
        }
        Ok(IkePacket { header, payloads })
    }

    /// The raw header.
    pub fn header(&self) -> &IkeHeader {
        &self.header
    }

    /// Initiator's SPI.
    pub fn spi_i(&self) -> IkeSpi {
        IkeSpi(self.header.spi_i)
    }

    /// Responder's SPI.
    pub fn spi_r(&self) -> IkeSpi {
        IkeSpi(self.header.spi_r)
    }

    /// Type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.header.next_payload)
    }

    /// Minor version.
    pub fn minor_version(&self) -> u8 {
        self.header.version & 0x0f
    }

    /// Exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.header.exchange_type)
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.header.flags)
    }

    /// Message ID.
    pub fn message_id(&self) -> u32 {
        self.header.message_id.get()
    }

    /// The Length field (equal to the buffer length).
    pub fn length(&self) -> u32 {
        self.header.length.get()
    }

    /// The payload chain after the header.
    pub fn payloads(&self) -> &[u8] {
        &self.payloads
    }
}

impl<B: SplitByteSliceMut> IkePacket<B> {
    /// Sets the Next Payload field.
    pub fn set_next_payload(&mut self, t: PayloadType) {
        self.header.next_payload = t.0;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, f: Flags) {
        self.header.flags = f.0;
    }

    /// Sets the Message ID.
    pub fn set_message_id(&mut self, id: u32) {
        self.header.message_id.set(id);
    }

    /// Sets the Length field. The check made by [`IkePacket::parse`] (length equals the
    /// buffer) no longer holds afterwards unless `len` is the buffer length.
    pub fn set_length(&mut self, len: u32) {
        self.header.length.set(len);
    }

    /// The payload bytes, writable.
    pub fn payloads_mut(&mut self) -> &mut [u8] {
        &mut self.payloads
    }
}

/// The semantic content of an IKE header. Next Payload and Length describe the rest of
/// the message and are supplied when emitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IkeHeaderRepr {
    /// Initiator's SPI.
    pub spi_i: IkeSpi,
    /// Responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: IkeSpi,
    /// Minor version (0 in RFC 7296; kept as received).
    pub minor_version: u8,
    /// Exchange type.
    pub exchange_type: ExchangeType,
    /// Flags, all eight bits.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

impl IkeHeaderRepr {
    /// Reads the header of a parsed message.
    pub fn parse<B: SplitByteSlice>(packet: &IkePacket<B>) -> Self {
        IkeHeaderRepr {
            spi_i: packet.spi_i(),
            spi_r: packet.spi_r(),
            minor_version: packet.minor_version(),
            exchange_type: packet.exchange_type(),
            flags: packet.flags(),
            message_id: packet.message_id(),
        }
    }

    /// Bytes [`IkeHeaderRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with the given first payload type and total message length.
    ///
    /// # Panics
    /// When `buf` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, next_payload: PayloadType, length: u32, buf: &mut [u8]) {
        check_emit_len(buf.len(), HEADER_LEN);
        let mut w = Writer::new(buf);
        w.put(&self.spi_i.0);
        w.put(&self.spi_r.0);
        w.u8(next_payload.0);
        w.u8((MAJOR_VERSION << 4) | (self.minor_version & 0x0f));
        w.u8(self.exchange_type.0);
        w.u8(self.flags.0);
        w.u32(self.message_id);
        w.u32(length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::prelude::rust_2021::*;

    const HDR: [u8; 28] = [
        1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28,
    ];

    #[test]
    fn parse_header_fields() {
        let p = IkePacket::parse(&HDR[..]).unwrap();
        assert_eq!(p.exchange_type(), ExchangeType::IKE_SA_INIT);
        assert!(p.flags().is_initiator());
        assert!(!p.flags().is_response());
        assert_eq!(p.length(), 28);
        assert_eq!(p.next_payload(), PayloadType::NONE);
        let r = IkeHeaderRepr::parse(&p);
        let mut out = [0xffu8; 28];
        r.emit(PayloadType::NONE, 28, &mut out);
        assert_eq!(out, HDR);
    }

    #[test]
    fn rejects_bad_lengths_and_versions() {
        let mut h = HDR;
        h[27] = 27;
        assert_eq!(
            IkePacket::parse(&h[..]).unwrap_err().kind,
            ParseErrorKind::LengthField
        );
        h[27] = 29;
        assert_eq!(
            IkePacket::parse(&h[..]).unwrap_err().kind,
            ParseErrorKind::Truncated { needed: 1 }
        );
        let mut h = HDR;
        h[17] = 0x30;
        assert_eq!(
            IkePacket::parse(&h[..]).unwrap_err().kind,
            ParseErrorKind::UnsupportedMajorVersion { major: 3 }
        );
        let mut long = [0u8; 29];
        long[..28].copy_from_slice(&HDR);
        assert_eq!(
            IkePacket::parse(&long[..]).unwrap_err().kind,
            ParseErrorKind::LengthField
        );
    }

    #[test]
    fn set_fields_on_mutable_view() {
        let mut h = HDR;
        let mut p = IkePacket::parse(&mut h[..]).unwrap();
        p.set_message_id(7);
        p.set_flags(Flags::new(true, true));
        assert_eq!(p.message_id(), 7);
        assert!(p.flags().is_response());
        assert_eq!(format!("{:?}", p.flags()), "Flags(I|R)");
    }
}
