//! The Key Exchange payload ([RFC 7296 §3.4]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Diffie-Hellman Group Num    |           RESERVED            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       Key Exchange Data                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.4]: https://www.rfc-editor.org/rfc/rfc7296#section-3.4

use ipsec_core::iana::KeId;
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::ParseError;
use crate::field::{check_emit_len, Reader, Writer};

/// The fixed part of a KE payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct KeHeader {
    /// Key exchange method (Diffie-Hellman group) number.
    pub group: U16,
    /// Reserved.
    pub reserved: U16,
}

/// A view of a KE payload body.
#[derive(Clone, Copy, Debug)]
pub struct KePayload<'a> {
    header: &'a KeHeader,
    data: &'a [u8],
}

impl<'a> KePayload<'a> {
    /// Parses a KE payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the 4-byte fixed part.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header = Ref::into_ref(r.header::<KeHeader>()?);
        Ok(KePayload {
            header,
            data: r.take_rest(),
        })
    }

    /// The group number.
    pub fn group(&self) -> KeId {
        KeId(self.header.group.get())
    }

    /// The key exchange data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// True when the reserved field is zero.
    pub fn reserved_clear(&self) -> bool {
        self.header.reserved.get() == 0
    }
}

/// A KE payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeRepr<'a> {
    /// Key exchange method.
    pub group: KeId,
    /// Public value (or KEM ciphertext).
    pub data: &'a [u8],
}

impl<'a> KeRepr<'a> {
    /// Reads a parsed KE payload.
    pub fn parse(p: &KePayload<'a>) -> Self {
        KeRepr {
            group: p.group(),
            data: p.data(),
        }
    }

    /// Parses and reads a KE payload body.
    ///
    /// # Errors
    /// See [`KePayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&KePayload::parse(body)?))
    }

    /// Length of the body [`KeRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(4)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`KeRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u16(self.group.0);
        w.u16(0);
        w.put(self.data);
    }
}
