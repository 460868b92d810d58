//! The Encrypted and Authenticated payload SK ([RFC 7296 §3.14]) and the Encrypted and
//! Authenticated Fragment payload SKF ([RFC 7383 §2.5]), as carried on the wire.
//! Protecting and opening them is in the `protect` module.
//!
//! ```text
//! SK:
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Initialization Vector                     |
//! |         (length is block size for encryption algorithm)       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Encrypted IKE Payloads                     ~
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               |             Padding (0-255 octets)            |
//! +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//! |                                               |  Pad Length   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Integrity Checksum Data                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! SKF (RFC 7383 §2.5):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Fragment Number        |        Total Fragments        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Initialization Vector                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Encrypted content                        ~
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               |             Padding (0-255 octets)            |
//! +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//! |                                               |  Pad Length   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Integrity Checksum Data                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The Next Payload field of SK names the first inner payload; in SKF, that of the
//! first fragment does and the others carry 0.
//!
//! [RFC 7296 §3.14]: https://www.rfc-editor.org/rfc/rfc7296#section-3.14
//! [RFC 7383 §2.5]: https://www.rfc-editor.org/rfc/rfc7383#section-2.5

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Reader, Writer};
use crate::registry::PayloadType;

/// Length of the SKF fields before the IV.
pub const SKF_HEADER_LEN: usize = 4;

/// The SKF fields before the IV.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SkfHeader {
    /// Fragment number, from 1.
    pub fragment_number: U16,
    /// Total number of fragments.
    pub total_fragments: U16,
}

/// An SK payload: the protected data, opaque until opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SkRepr<'a> {
    /// Type of the first payload inside (the SK payload's Next Payload field).
    pub first_inner: PayloadType,
    /// IV, ciphertext and ICV.
    pub data: &'a [u8],
}

impl<'a> SkRepr<'a> {
    /// Length of the body [`SkRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`SkRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        Writer::new(buf).put(self.data);
    }
}

/// A view of an SKF payload body.
#[derive(Clone, Copy, Debug)]
pub struct SkfPayload<'a> {
    header: &'a SkfHeader,
    data: &'a [u8],
}

impl<'a> SkfPayload<'a> {
    /// Parses an SKF payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the 4-byte fragment fields.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header = Ref::into_ref(r.header::<SkfHeader>()?);
        Ok(SkfPayload {
            header,
            data: r.take_rest(),
        })
    }

    /// Fragment number.
    pub fn fragment_number(&self) -> u16 {
        self.header.fragment_number.get()
    }

    /// Total fragments.
    pub fn total_fragments(&self) -> u16 {
        self.header.total_fragments.get()
    }

    /// IV, ciphertext and ICV.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// An SKF payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SkfRepr<'a> {
    /// Type of the first inner payload in fragment 1, [`PayloadType::NONE`] in others.
    pub first_inner: PayloadType,
    /// Fragment number, 1..=`total_fragments`.
    pub fragment_number: u16,
    /// Total number of fragments, at least 1.
    pub total_fragments: u16,
    /// IV, ciphertext and ICV.
    pub data: &'a [u8],
}

impl<'a> SkfRepr<'a> {
    /// Reads a parsed SKF payload whose Next Payload field was `first_inner`.
    ///
    /// # Errors
    /// `BadValue` when the fragment number is 0 or above the total (RFC 7383 §2.6).
    pub fn parse(first_inner: PayloadType, p: &SkfPayload<'a>) -> Result<Self, ParseError> {
        let (n, t) = (p.fragment_number(), p.total_fragments());
        if n == 0 || n > t {
            return Err(ParseError::new(
                ParseErrorKind::BadValue("fragment number"),
                0,
            ));
        }
        Ok(SkfRepr {
            first_inner,
            fragment_number: n,
            total_fragments: t,
            data: p.data(),
        })
    }

    /// Parses and reads an SKF payload body.
    ///
    /// # Errors
    /// See [`SkfPayload::parse`] and [`SkfRepr::parse`].
    pub fn from_body(first_inner: PayloadType, body: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse(first_inner, &SkfPayload::parse(body)?)
    }

    /// Length of the body [`SkfRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(SKF_HEADER_LEN)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`SkfRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u16(self.fragment_number);
        w.u16(self.total_fragments);
        w.put(self.data);
    }
}
