//! The Nonce payload ([RFC 7296 §3.9]) and the Vendor ID payload ([§3.12]): both are
//! just data after the generic header.
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                   Nonce Data / Vendor ID (VID)                ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! "The size of the Nonce Data MUST be between 16 and 256 octets, inclusive."
//!
//! [RFC 7296 §3.9]: https://www.rfc-editor.org/rfc/rfc7296#section-3.9
//! [§3.12]: https://www.rfc-editor.org/rfc/rfc7296#section-3.12

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Writer};

/// Smallest nonce RFC 7296 §3.9 allows.
pub const MIN_NONCE_LEN: usize = 16;
/// Largest nonce RFC 7296 §3.9 allows.
pub const MAX_NONCE_LEN: usize = 256;

/// A Nonce payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NonceRepr<'a> {
    /// The nonce, 16 to 256 bytes.
    pub data: &'a [u8],
}

impl<'a> NonceRepr<'a> {
    /// Reads a Nonce payload body.
    ///
    /// # Errors
    /// `BadValue` when the nonce is not 16 to 256 bytes long.
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        if (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&body.len()) {
            Ok(NonceRepr { data: body })
        } else {
            Err(ParseError::new(ParseErrorKind::BadValue("nonce length"), 0))
        }
    }

    /// Length of the body [`NonceRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`NonceRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        Writer::new(buf).put(self.data);
    }
}

/// A Vendor ID payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VendorIdRepr<'a> {
    /// The vendor ID, usually a hash of a vendor string.
    pub data: &'a [u8],
}

impl<'a> VendorIdRepr<'a> {
    /// Reads a Vendor ID payload body (any length).
    pub const fn from_body(body: &'a [u8]) -> Self {
        VendorIdRepr { data: body }
    }

    /// Length of the body [`VendorIdRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`VendorIdRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        Writer::new(buf).put(self.data);
    }
}
