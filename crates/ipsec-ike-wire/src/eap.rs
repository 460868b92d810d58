//! The EAP payload ([RFC 7296 §3.16]). The EAP message is kept as bytes; an EAP
//! implementation interprets it.
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       EAP Message                             ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! EAP Message:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      | Identifier    |           Length              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      | Type_Data...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.16]: https://www.rfc-editor.org/rfc/rfc7296#section-3.16

use crate::field::{check_emit_len, Writer};

/// An EAP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EapRepr<'a> {
    /// The whole EAP message (RFC 3748 §4).
    pub message: &'a [u8],
}

impl<'a> EapRepr<'a> {
    /// Reads an EAP payload body (not interpreted).
    pub const fn from_body(body: &'a [u8]) -> Self {
        EapRepr { message: body }
    }

    /// The EAP Code (1 Request, 2 Response, 3 Success, 4 Failure), if present.
    pub fn code(&self) -> Option<u8> {
        self.message.first().copied()
    }

    /// Length of the body [`EapRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.message.len()
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`EapRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        Writer::new(buf).put(self.message);
    }
}
