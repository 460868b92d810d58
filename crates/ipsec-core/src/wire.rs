//! The errors of the ESP and AH wire codecs: one [`ParseError`] for reading bytes
//! (what was wrong, and at which offset) and one [`EmitError`] for writing them.
//!
//! `ipsec-esp` and `ipsec-ah` re-export both from their `wire` modules and crate
//! roots, so `ipsec_esp::ParseError` and `ipsec_ah::ParseError` are this one type.

use core::fmt;

/// What was wrong with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input ends before a structure does.
    Truncated {
        /// Bytes the structure needs from `offset`.
        needed: usize,
    },
    /// A length field disagrees with the bytes present or with what the SA expects.
    LengthField,
    /// A reserved field is not zero.
    ReservedNonZero,
    /// A field holds a value this layer cannot accept.
    BadValue(&'static str),
    /// The ciphertext is not a whole number of cipher blocks.
    BlockAlignment {
        /// The block length it must be a multiple of.
        block_len: usize,
    },
}

/// A wire parse error: what, and at which byte offset of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// The byte offset in the parsed input where the problem is.
    pub offset: usize,
}

impl ParseError {
    /// An error of `kind` at `offset`.
    pub const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// A [`ParseErrorKind::Truncated`] error.
    pub const fn truncated(offset: usize, needed: usize) -> Self {
        Self::new(ParseErrorKind::Truncated { needed }, offset)
    }

    /// A [`ParseErrorKind::BadValue`] error.
    pub const fn bad_value(offset: usize, what: &'static str) -> Self {
        Self::new(ParseErrorKind::BadValue(what), offset)
    }

    /// A [`ParseErrorKind::LengthField`] error.
    pub const fn length_field(offset: usize) -> Self {
        Self::new(ParseErrorKind::LengthField, offset)
    }

    /// The same error with its offset moved by `base` (for errors found in a sub-slice).
    pub const fn at(self, base: usize) -> Self {
        Self::new(self.kind, self.offset.saturating_add(base))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::Truncated { needed } => {
                write!(
                    f,
                    "truncated: {needed} bytes needed at offset {}",
                    self.offset
                )
            }
            ParseErrorKind::LengthField => {
                write!(
                    f,
                    "length field at offset {} disagrees with the data",
                    self.offset
                )
            }
            ParseErrorKind::ReservedNonZero => {
                write!(f, "reserved field at offset {} is not zero", self.offset)
            }
            ParseErrorKind::BadValue(what) => write!(f, "bad {what} at offset {}", self.offset),
            ParseErrorKind::BlockAlignment { block_len } => {
                write!(
                    f,
                    "ciphertext at offset {} is not a multiple of {block_len} bytes",
                    self.offset
                )
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// Why bytes could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The output (or the room in front of the body) is shorter than what is written.
    #[error("buffer too small: {need} bytes needed, {have} there")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A length is not one its field can carry (too long, or not a valid value).
    #[error("{what} of {len} bytes does not fit its field")]
    LengthOutOfRange {
        /// Which length.
        what: &'static str,
        /// The length asked for.
        len: usize,
    },
}

impl EmitError {
    /// An [`EmitError::BufferTooSmall`] error.
    pub const fn buffer_too_small(need: usize, have: usize) -> Self {
        Self::BufferTooSmall { need, have }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_and_offsets() {
        let e = ParseError::truncated(2, 8).at(10);
        assert_eq!(e.offset, 12);
        assert_eq!(e.to_string(), "truncated: 8 bytes needed at offset 12");
        assert_eq!(
            EmitError::buffer_too_small(8, 7).to_string(),
            "buffer too small: 8 bytes needed, 7 there"
        );
    }
}
