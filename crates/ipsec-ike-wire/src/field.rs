//! Private helpers: a bounds-checked reader that reports offsets, a writer for
//! emitting into buffers already checked to be large enough, and the macro for
//! open registry newtypes.

use zerocopy::{FromBytes, Immutable, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};

/// A cursor over untrusted bytes. Every read is bounds checked and failures carry
/// the offset (relative to the start of the reader's buffer) where they happened.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next unread byte.
    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining().is_empty()
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let rest = self.remaining();
        match rest.split_at_checked(n) {
            Some((head, _)) => {
                self.pos = self.pos.saturating_add(n);
                Ok(head)
            }
            None => Err(ParseError::new(
                ParseErrorKind::Truncated {
                    needed: n.saturating_sub(rest.len()),
                },
                self.pos,
            )),
        }
    }

    /// Takes everything that is left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.remaining();
        self.pos = self.buf.len();
        rest
    }

    /// Casts the next bytes to a fixed-size header.
    pub(crate) fn header<T>(&mut self) -> Result<Ref<&'a [u8], T>, ParseError>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned,
    {
        let bytes = self.take(core::mem::size_of::<T>())?;
        Ref::from_bytes(bytes).map_err(|_| ParseError::new(ParseErrorKind::LengthField, self.pos))
    }

    /// An error of `kind` at the current offset.
    pub(crate) fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.pos)
    }

    /// An error of `kind` at `at`.
    pub(crate) fn error_at(kind: ParseErrorKind, at: usize) -> ParseError {
        ParseError::new(kind, at)
    }
}

/// A cursor that writes into a buffer whose size the caller has asserted. Writes past
/// the end are dropped instead of panicking: emitters assert the length once, up front.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        let end = self.pos.saturating_add(n);
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.fill(0);
        }
        self.pos = end;
    }

    /// The next `n` bytes, for a nested emitter.
    pub(crate) fn slot(&mut self, n: usize) -> &mut [u8] {
        let start = self.pos;
        let end = start.saturating_add(n);
        self.pos = end;
        self.buf.get_mut(start..end).unwrap_or(&mut [])
    }
}

/// Length as a `u16` length field. Callers have checked the bound; saturates otherwise.
pub(crate) fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Asserts that an emit buffer is large enough (the one documented panic of `emit`).
#[track_caller]
pub(crate) fn check_emit_len(have: usize, need: usize) {
    assert!(
        have >= need,
        "emit buffer too small: {have} bytes, need {need}"
    );
}
