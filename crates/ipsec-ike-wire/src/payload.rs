//! The generic payload header and payload chains ([RFC 7296 §3.2]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Each payload names the type of the one after it; the IKE header names the first.
//! An SK or SKF payload must be the last one of its chain ([RFC 7296 §3.14]): its Next
//! Payload field names the first payload *inside* the encrypted data.
//!
//! [RFC 7296 §3.2]: https://www.rfc-editor.org/rfc/rfc7296#section-3.2
//! [RFC 7296 §3.14]: https://www.rfc-editor.org/rfc/rfc7296#section-3.14

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::Reader;
use crate::registry::PayloadType;

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;

/// Largest payload body: the Payload Length field is 16 bits and counts the header.
pub const MAX_BODY_LEN: usize = u16::MAX as usize - GENERIC_HEADER_LEN;

/// The critical bit in the second byte of the generic payload header.
pub const CRITICAL: u8 = 0x80;

/// The generic payload header as laid out on the wire.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GenericPayloadHeader {
    /// Type of the next payload (or of the first inner payload for SK/SKF).
    pub next_payload: u8,
    /// The critical bit and seven reserved bits.
    pub flags: u8,
    /// Length of the payload including this header.
    pub length: U16,
}

/// One payload of a chain, not interpreted beyond the generic header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// This payload's type (named by the previous payload or the IKE header).
    pub payload_type: PayloadType,
    /// The Next Payload field.
    pub next_payload: PayloadType,
    /// The second header byte: the critical bit and the reserved bits.
    pub flags: u8,
    /// The payload body after the generic header.
    pub body: &'a [u8],
    /// Offset of the body, from the start of the buffer the iterator was given plus the
    /// base offset it was created with.
    pub body_offset: usize,
}

impl RawPayload<'_> {
    /// The critical bit.
    pub const fn is_critical(&self) -> bool {
        self.flags & CRITICAL != 0
    }

    /// True when the seven reserved bits are zero (as RFC 7296 requires senders to set
    /// them; receivers ignore them).
    pub const fn reserved_clear(&self) -> bool {
        self.flags & !CRITICAL == 0
    }
}

/// Iterates over a payload chain, yielding each payload or the first error, then
/// nothing (it is fused after an error).
///
/// It checks the generic structure only: every length in bounds, the chain ending with
/// Next Payload = NONE exactly at the end of the data, and SK/SKF being last. It does
/// not allocate and makes no decision about payload types.
#[derive(Clone, Debug)]
pub struct PayloadIter<'a> {
    reader: Reader<'a>,
    next: PayloadType,
    base: usize,
    done: bool,
}

impl<'a> PayloadIter<'a> {
    /// Iterates over `chain`, whose first payload has type `first`.
    pub const fn new(first: PayloadType, chain: &'a [u8]) -> Self {
        Self::with_offset(first, chain, 0)
    }

    /// Like [`PayloadIter::new`], reporting offsets as `base` + offset in `chain`
    /// (`base` = 28 for the payloads of a whole message).
    pub const fn with_offset(first: PayloadType, chain: &'a [u8], base: usize) -> Self {
        PayloadIter {
            reader: Reader::new(chain),
            next: first,
            base,
            done: false,
        }
    }

    fn fail(&mut self, e: ParseError) -> Option<Result<RawPayload<'a>, ParseError>> {
        self.done = true;
        Some(Err(e.shifted(self.base)))
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = Result<RawPayload<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.next == PayloadType::NONE {
            self.done = true;
            if self.reader.is_empty() {
                return None;
            }
            let e = self.reader.error(ParseErrorKind::LengthField);
            return self.fail(e);
        }
        let start = self.reader.pos();
        let header = match self.reader.header::<GenericPayloadHeader>() {
            Ok(h) => h,
            Err(e) => return self.fail(e),
        };
        let length = usize::from(header.length.get());
        let Some(body_len) = length.checked_sub(GENERIC_HEADER_LEN) else {
            return self.fail(Reader::error_at(ParseErrorKind::LengthField, start));
        };
        let body_offset = self.reader.pos();
        let body = match self.reader.take(body_len) {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        let payload_type = self.next;
        let raw = RawPayload {
            payload_type,
            next_payload: PayloadType(header.next_payload),
            flags: header.flags,
            body,
            body_offset: body_offset.saturating_add(self.base),
        };
        if payload_type.is_encrypted() {
            if !self.reader.is_empty() {
                let e = Reader::error_at(
                    ParseErrorKind::BadValue("SK/SKF payload is not last"),
                    start,
                );
                return self.fail(e);
            }
            self.done = true;
        } else {
            self.next = raw.next_payload;
        }
        Some(Ok(raw))
    }
}

impl core::iter::FusedIterator for PayloadIter<'_> {}

/// Writes a generic payload header.
pub(crate) fn emit_generic_header(
    w: &mut crate::field::Writer<'_>,
    next: PayloadType,
    critical: bool,
    body_len: usize,
) {
    w.u8(next.0);
    w.u8(if critical { CRITICAL } else { 0 });
    w.u16(crate::field::len16(
        body_len.saturating_add(GENERIC_HEADER_LEN),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;

    // Nonce(4 bytes) -> Vendor ID(2 bytes) -> end
    const CHAIN: [u8; 14] = [43, 0, 0, 8, 1, 2, 3, 4, 0, 0, 0, 6, 9, 9];

    #[test]
    fn iterates_chain() {
        let v: Vec<_> = PayloadIter::new(PayloadType::NONCE, &CHAIN).collect();
        assert_eq!(v.len(), 2);
        let a = v[0].unwrap();
        assert_eq!(a.payload_type, PayloadType::NONCE);
        assert_eq!(a.body, &[1, 2, 3, 4]);
        assert_eq!(a.body_offset, 4);
        let b = v[1].unwrap();
        assert_eq!(b.payload_type, PayloadType::VENDOR_ID);
        assert_eq!(b.body, &[9, 9]);
    }

    #[test]
    fn rejects_trailing_data_and_fuses() {
        let mut c = CHAIN.to_vec();
        c.push(0);
        let v: Vec<_> = PayloadIter::new(PayloadType::NONCE, &c).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].unwrap_err().kind, ParseErrorKind::LengthField);
        let mut c = CHAIN;
        c[3] = 3; // length below the header
        let v: Vec<_> = PayloadIter::with_offset(PayloadType::NONCE, &c, 28).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].unwrap_err(),
            ParseError::new(ParseErrorKind::LengthField, 28)
        );
    }

    #[test]
    fn rejects_truncated_everywhere() {
        for n in 0..CHAIN.len() {
            let r: Result<Vec<_>, _> = PayloadIter::new(PayloadType::NONCE, &CHAIN[..n]).collect();
            assert!(r.is_err(), "{n}");
        }
    }

    #[test]
    fn sk_must_be_last() {
        // SK (first inner = Notify) with 2 body bytes, then junk
        let c = [41, 0, 0, 6, 1, 2, 0];
        let v: Vec<_> = PayloadIter::new(PayloadType::SK, &c).collect();
        assert!(matches!(
            v[0],
            Err(ParseError {
                kind: ParseErrorKind::BadValue(_),
                ..
            })
        ));
        let v: Vec<_> = PayloadIter::new(PayloadType::SK, &c[..6]).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].unwrap().next_payload, PayloadType::NOTIFY);
    }
}
