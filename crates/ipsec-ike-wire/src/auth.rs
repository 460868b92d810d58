//! The Authentication payload ([RFC 7296 §3.8]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Auth Method   |                RESERVED                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Authentication Data                      ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.8]: https://www.rfc-editor.org/rfc/rfc7296#section-3.8

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::ParseError;
use crate::field::{check_emit_len, Reader, Writer};
use crate::registry::AuthMethod;

/// The fixed part of an AUTH payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AuthHeader {
    /// Authentication method.
    pub method: u8,
    /// Reserved.
    pub reserved: [u8; 3],
}

/// A view of an AUTH payload body.
#[derive(Clone, Copy, Debug)]
pub struct AuthPayload<'a> {
    header: &'a AuthHeader,
    data: &'a [u8],
}

impl<'a> AuthPayload<'a> {
    /// Parses an AUTH payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the 4-byte fixed part.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header = Ref::into_ref(r.header::<AuthHeader>()?);
        Ok(AuthPayload {
            header,
            data: r.take_rest(),
        })
    }

    /// The authentication method.
    pub fn method(&self) -> AuthMethod {
        AuthMethod(self.header.method)
    }

    /// The authentication data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// True when the reserved bytes are zero.
    pub fn reserved_clear(&self) -> bool {
        self.header.reserved == [0; 3]
    }
}

/// An AUTH payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthRepr<'a> {
    /// Authentication method.
    pub method: AuthMethod,
    /// Authentication data (MAC or signature; for RFC 7427, the AlgorithmIdentifier
    /// and signature).
    pub data: &'a [u8],
}

impl<'a> AuthRepr<'a> {
    /// Reads a parsed AUTH payload.
    pub fn parse(p: &AuthPayload<'a>) -> Self {
        AuthRepr {
            method: p.method(),
            data: p.data(),
        }
    }

    /// Parses and reads an AUTH payload body.
    ///
    /// # Errors
    /// See [`AuthPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&AuthPayload::parse(body)?))
    }

    /// Length of the body [`AuthRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(4)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`AuthRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.method.0);
        w.zeros(3);
        w.put(self.data);
    }
}
