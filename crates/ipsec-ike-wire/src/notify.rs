//! The Notify payload ([RFC 7296 §3.10]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Protocol ID  |   SPI Size    |      Notify Message Type      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                Security Parameter Index (SPI)                 ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       Notification Data                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.10]: https://www.rfc-editor.org/rfc/rfc7296#section-3.10

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::ParseError;
use crate::field::{check_emit_len, Reader, Writer};
use crate::registry::{NotifyType, ProtocolId};

/// The fixed part of a Notify payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NotifyHeader {
    /// Protocol ID (0 when no SA is concerned).
    pub protocol_id: u8,
    /// SPI size.
    pub spi_size: u8,
    /// Notify message type.
    pub notify_type: U16,
}

/// A view of a Notify payload body.
#[derive(Clone, Copy, Debug)]
pub struct NotifyPayload<'a> {
    header: &'a NotifyHeader,
    spi: &'a [u8],
    data: &'a [u8],
}

impl<'a> NotifyPayload<'a> {
    /// Parses a Notify payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the fixed part plus the SPI.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header: &'a NotifyHeader = Ref::into_ref(r.header::<NotifyHeader>()?);
        let spi = r.take(usize::from(header.spi_size))?;
        Ok(NotifyPayload {
            header,
            spi,
            data: r.take_rest(),
        })
    }

    /// Protocol ID.
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId(self.header.protocol_id)
    }

    /// Notify message type.
    pub fn notify_type(&self) -> NotifyType {
        NotifyType(self.header.notify_type.get())
    }

    /// The SPI (empty for notifications that concern no SA).
    pub fn spi(&self) -> &'a [u8] {
        self.spi
    }

    /// The notification data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// A Notify payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotifyRepr<'a> {
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// The SPI (at most 255 bytes).
    pub spi: &'a [u8],
    /// Notify message type.
    pub notify_type: NotifyType,
    /// Notification data.
    pub data: &'a [u8],
}

impl<'a> NotifyRepr<'a> {
    /// A notification about no SA: protocol 0, no SPI.
    pub const fn new(notify_type: NotifyType, data: &'a [u8]) -> Self {
        NotifyRepr {
            protocol: ProtocolId::NONE,
            spi: &[],
            notify_type,
            data,
        }
    }

    /// Reads a parsed Notify payload.
    pub fn parse(p: &NotifyPayload<'a>) -> Self {
        NotifyRepr {
            protocol: p.protocol(),
            spi: p.spi(),
            notify_type: p.notify_type(),
            data: p.data(),
        }
    }

    /// Parses and reads a Notify payload body.
    ///
    /// # Errors
    /// See [`NotifyPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&NotifyPayload::parse(body)?))
    }

    /// True for error notifications (types below 16384).
    pub const fn is_error(&self) -> bool {
        self.notify_type.is_error()
    }

    /// Length of the body [`NotifyRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.spi
            .len()
            .saturating_add(self.data.len())
            .saturating_add(4)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`NotifyRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.protocol.0);
        w.u8(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        w.u16(self.notify_type.0);
        w.put(self.spi);
        w.put(self.data);
    }
}
