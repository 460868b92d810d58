//! Parse errors.
//!
//! [`ParseError`] is small, `Copy` and never allocates: a [`ParseErrorKind`] and the
//! byte offset where the defect was found. What a responder answers to one is decided
//! in one place, [`error_response`](crate::response::error_response).

use core::fmt;

use crate::registry::PayloadType;

/// What is wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input ended early: `needed` more bytes were required at `offset`.
    Truncated {
        /// How many more bytes a complete structure needs.
        needed: usize,
    },
    /// A length field is below its structure's minimum, runs past its enclosing
    /// structure, or does not account for the bytes present (data left over).
    LengthField,
    /// A field holds a value the RFC does not allow here (count fields that disagree with
    /// the data, a nonce of the wrong size, an SK payload that is not the last ...).
    BadValue(&'static str),
    /// The IKE header's major version is not 2 (RFC 7296 §2.5).
    UnsupportedMajorVersion {
        /// The major version found.
        major: u8,
    },
    /// A payload of an unknown type had the critical bit set (RFC 7296 §3.2).
    UnsupportedCriticalPayload {
        /// The unknown payload type.
        payload_type: PayloadType,
    },
}

/// A defect in received bytes: what and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
#[error("{kind} at offset {offset}")]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Byte offset of the defect, from the start of the buffer given to the parser.
    pub offset: usize,
}

impl ParseError {
    /// An error of `kind` at `offset`.
    pub const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        ParseError { kind, offset }
    }

    /// The same error with `base` added to its offset (for errors found in a nested
    /// structure that was parsed on its own).
    #[must_use]
    pub const fn shifted(self, base: usize) -> Self {
        ParseError {
            kind: self.kind,
            offset: self.offset.saturating_add(base),
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Truncated { needed } => {
                write!(f, "truncated, {needed} more bytes needed")
            }
            ParseErrorKind::LengthField => f.write_str("inconsistent length field"),
            ParseErrorKind::BadValue(what) => write!(f, "invalid value: {what}"),
            ParseErrorKind::UnsupportedMajorVersion { major } => {
                write!(f, "unsupported major version {major}")
            }
            ParseErrorKind::UnsupportedCriticalPayload { payload_type } => {
                write!(f, "unsupported critical payload {payload_type}")
            }
        }
    }
}
