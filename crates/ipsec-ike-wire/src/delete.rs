//! The Delete payload ([RFC 7296 §3.11]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Protocol ID   |   SPI Size    |          Num of SPIs          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~               Security Parameter Index(es) (SPI)              ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Deleting an IKE SA uses protocol 1 with SPI size 0 and no SPIs. Parsing requires
//! Num of SPIs × SPI Size to be exactly the data present.
//!
//! [RFC 7296 §3.11]: https://www.rfc-editor.org/rfc/rfc7296#section-3.11

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, len16, Reader, Writer};
use crate::registry::ProtocolId;

/// The fixed part of a Delete payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DeleteHeader {
    /// Protocol ID.
    pub protocol_id: u8,
    /// SPI size.
    pub spi_size: u8,
    /// Number of SPIs.
    pub num_spis: U16,
}

/// A view of a Delete payload body.
#[derive(Clone, Copy, Debug)]
pub struct DeletePayload<'a> {
    header: &'a DeleteHeader,
    spis: &'a [u8],
}

impl<'a> DeletePayload<'a> {
    /// Parses a Delete payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the fixed part or the SPIs it announces,
    /// `LengthField` when data is left after them, `BadValue` for SPIs of size 0.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header: &'a DeleteHeader = Ref::into_ref(r.header::<DeleteHeader>()?);
        let n = usize::from(header.num_spis.get());
        if header.spi_size == 0 && n != 0 {
            return Err(Reader::error_at(
                ParseErrorKind::BadValue("SPIs of size 0"),
                2,
            ));
        }
        let spis = r.take(n.saturating_mul(usize::from(header.spi_size)))?;
        if !r.is_empty() {
            return Err(r.error(ParseErrorKind::LengthField));
        }
        Ok(DeletePayload { header, spis })
    }

    /// Protocol ID.
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId(self.header.protocol_id)
    }

    /// SPI size.
    pub fn spi_size(&self) -> u8 {
        self.header.spi_size
    }

    /// The SPIs, concatenated.
    pub fn spis(&self) -> &'a [u8] {
        self.spis
    }
}

/// A Delete payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeleteRepr<'a> {
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// Size of each SPI (0 for the IKE SA, 4 for ESP and AH).
    pub spi_size: u8,
    /// The SPIs, concatenated: a multiple of `spi_size` bytes (empty when it is 0).
    pub spis: &'a [u8],
}

impl<'a> DeleteRepr<'a> {
    /// The Delete payload that deletes the IKE SA it is sent on.
    pub const fn ike_sa() -> Self {
        DeleteRepr {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: &[],
        }
    }

    /// Reads a parsed Delete payload.
    pub fn parse(p: &DeletePayload<'a>) -> Self {
        DeleteRepr {
            protocol: p.protocol(),
            spi_size: p.spi_size(),
            spis: p.spis(),
        }
    }

    /// Parses and reads a Delete payload body.
    ///
    /// # Errors
    /// See [`DeletePayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&DeletePayload::parse(body)?))
    }

    /// The SPIs one by one.
    pub fn iter_spis(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let size = usize::from(self.spi_size).max(1);
        let spis = if self.spi_size == 0 {
            &[][..]
        } else {
            self.spis
        };
        spis.chunks_exact(size)
    }

    /// Number of SPIs.
    pub fn num_spis(&self) -> usize {
        match self.spi_size {
            0 => 0,
            s => self.spis.len().checked_div(usize::from(s)).unwrap_or(0),
        }
    }

    /// Length of the body [`DeleteRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        4usize.saturating_add(if self.spi_size == 0 {
            0
        } else {
            self.spis.len()
        })
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`DeleteRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.protocol.0);
        w.u8(self.spi_size);
        w.u16(len16(self.num_spis()));
        if self.spi_size != 0 {
            w.put(self.spis);
        }
    }
}
