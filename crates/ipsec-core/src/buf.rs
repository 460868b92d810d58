//! [`PacketBuf`]: a caller-owned buffer with headroom, body and tailroom.
//!
//! ```text
//! 0            body_start            body_end              len
//! |  headroom  |        body         |       tailroom       |
//! ```
//!
//! Sealing grows the body into both rooms (ESP header and IV in front, padding, trailer
//! and ICV behind); opening shrinks it back to the inner payload. The bytes outside the
//! body are never interpreted: they may hold anything, including stale data from an
//! earlier packet.

use core::fmt;
use core::ops::Range;

/// Why a [`PacketBuf`] operation was refused. The buffer is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BufError {
    /// The body would start before the buffer or end after it.
    #[error("body ends at {end}, past the buffer length {len}")]
    OutOfBounds {
        /// The first byte past the requested body.
        end: usize,
        /// The buffer length.
        len: usize,
    },
    /// Not enough headroom.
    #[error("needs {needed} bytes of headroom, has {available}")]
    Headroom {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Not enough tailroom.
    #[error("needs {needed} bytes of tailroom, has {available}")]
    Tailroom {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The body is shorter than the bytes to remove.
    #[error("needs a body of {needed} bytes, has {available}")]
    Body {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

/// Headroom | body | tailroom cursors over a caller buffer (`&mut [u8]`, `Vec<u8>`,
/// `bytes::BytesMut` or anything else that is `AsRef<[u8]> + AsMut<[u8]>`).
///
/// The buffer's length is fixed for the life of the `PacketBuf`: for a `Vec<u8>` it is
/// `len()`, not the capacity. Size it once from
/// `ipsec_esp::EspOutbound::overhead` and reuse it.
///
/// Invariant: `start <= end <= buf.as_ref().len()`. Every method keeps it, so the
/// accessors cannot fail.
#[derive(Clone)]
pub struct PacketBuf<B> {
    buf: B,
    start: usize,
    end: usize,
}

impl<B: AsRef<[u8]>> fmt::Debug for PacketBuf<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("headroom", &self.start)
            .field("body_len", &self.end.saturating_sub(self.start))
            .field(
                "tailroom",
                &self.buf.as_ref().len().saturating_sub(self.end),
            )
            .finish()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketBuf<B> {
    /// Wraps `buf` with the body at `body_start .. body_start + body_len`.
    ///
    /// # Errors
    /// [`BufError::OutOfBounds`] when the body does not fit into the buffer.
    pub fn new(buf: B, body_start: usize, body_len: usize) -> Result<Self, BufError> {
        let len = buf.as_ref().len();
        let end = body_start
            .checked_add(body_len)
            .ok_or(BufError::OutOfBounds {
                end: usize::MAX,
                len,
            })?;
        if end > len {
            return Err(BufError::OutOfBounds { end, len });
        }
        Ok(PacketBuf {
            buf,
            start: body_start,
            end,
        })
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.buf.as_ref().get(self.start..self.end).unwrap_or(&[])
    }

    /// The body, writable.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.start, self.end);
        self.buf.as_mut().get_mut(s..e).unwrap_or(&mut [])
    }

    /// The body length.
    pub fn body_len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True when the body is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes free in front of the body.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free behind the body.
    pub fn tailroom(&self) -> usize {
        self.buf.as_ref().len().saturating_sub(self.end)
    }

    /// Where the body sits in the buffer.
    pub fn body_range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The whole buffer, rooms included.
    pub fn buffer(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// Moves the body to `range` (anywhere in the buffer).
    ///
    /// # Errors
    /// [`BufError::OutOfBounds`] when `range` is empty-reversed or past the end.
    pub fn set_body_range(&mut self, range: Range<usize>) -> Result<(), BufError> {
        let len = self.buf.as_ref().len();
        if range.start > range.end || range.end > len {
            return Err(BufError::OutOfBounds {
                end: range.end,
                len,
            });
        }
        self.start = range.start;
        self.end = range.end;
        Ok(())
    }

    /// Grows the body by `n` bytes into the headroom and returns the new front bytes
    /// (which hold whatever was in the headroom).
    ///
    /// # Errors
    /// [`BufError::Headroom`] when there are fewer than `n` bytes of headroom.
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        let start = self.start.checked_sub(n).ok_or(BufError::Headroom {
            needed: n,
            available: self.start,
        })?;
        let old = self.start;
        self.start = start;
        Ok(self.buf.as_mut().get_mut(start..old).unwrap_or(&mut []))
    }

    /// Grows the body by `n` bytes into the tailroom and returns the new back bytes
    /// (which hold whatever was in the tailroom).
    ///
    /// # Errors
    /// [`BufError::Tailroom`] when there are fewer than `n` bytes of tailroom.
    pub fn push_back(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        let available = self.tailroom();
        if n > available {
            return Err(BufError::Tailroom {
                needed: n,
                available,
            });
        }
        let old = self.end;
        self.end = old.saturating_add(n);
        let end = self.end;
        Ok(self.buf.as_mut().get_mut(old..end).unwrap_or(&mut []))
    }

    /// Removes `n` bytes from the front of the body (they become headroom).
    ///
    /// # Errors
    /// [`BufError::Body`] when the body is shorter than `n`.
    pub fn pull_front(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.body_len() {
            return Err(BufError::Body {
                needed: n,
                available: self.body_len(),
            });
        }
        self.start = self.start.saturating_add(n);
        Ok(())
    }

    /// Removes `n` bytes from the back of the body (they become tailroom).
    ///
    /// # Errors
    /// [`BufError::Body`] when the body is shorter than `n`.
    pub fn pull_back(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.body_len() {
            return Err(BufError::Body {
                needed: n,
                available: self.body_len(),
            });
        }
        self.end = self.end.saturating_sub(n);
        Ok(())
    }

    /// Shortens the body to `len` bytes (no effect if it is already shorter or equal).
    pub fn truncate(&mut self, len: usize) {
        if len < self.body_len() {
            self.end = self.start.saturating_add(len);
        }
    }

    /// The whole buffer and the body cursors `(buffer, start, end)`, for codecs that
    /// work on head- and tailroom directly.
    pub fn raw_mut(&mut self) -> (&mut [u8], usize, usize) {
        (self.buf.as_mut(), self.start, self.end)
    }

    /// Sets the body cursors; out-of-range cursors leave the body unchanged (use
    /// [`PacketBuf::set_body_range`] to learn whether they were accepted).
    pub fn set_cursors(&mut self, start: usize, end: usize) {
        let _ = self.set_body_range(start..end);
    }
}

#[cfg(feature = "bytes")]
impl PacketBuf<bytes::BytesMut> {
    /// A zeroed `BytesMut` of `headroom + body_len + tailroom` bytes with the body in
    /// the middle.
    pub fn zeroed(headroom: usize, body_len: usize, tailroom: usize) -> Self {
        let len = headroom.saturating_add(body_len).saturating_add(tailroom);
        let end = headroom.saturating_add(body_len);
        PacketBuf {
            buf: bytes::BytesMut::zeroed(len),
            start: headroom,
            end,
        }
    }

    /// The body as frozen [`bytes::Bytes`], without copying (for handing a sealed
    /// packet to a socket or a queue).
    pub fn freeze_body(self) -> bytes::Bytes {
        let mut b = self.buf;
        b.truncate(self.end);
        b.split_off(self.start).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn cursors_and_errors() {
        let mut storage = [0u8; 32];
        let mut b = PacketBuf::new(&mut storage[..], 8, 10).unwrap();
        assert_eq!((b.headroom(), b.body_len(), b.tailroom()), (8, 10, 14));
        assert_eq!(
            b.push_front(9).unwrap_err(),
            BufError::Headroom {
                needed: 9,
                available: 8
            }
        );
        b.push_front(8).unwrap().fill(1);
        b.push_back(14).unwrap().fill(2);
        assert_eq!(b.body_len(), 32);
        assert!(b.push_back(1).is_err());
        b.pull_front(30).unwrap();
        assert_eq!(b.body(), &[2, 2]);
        assert!(b.pull_back(3).is_err());
        b.truncate(1);
        assert_eq!(b.body_range(), 30..31);
        assert!(PacketBuf::new(vec![0u8; 4], 3, 2).is_err());
        assert!(PacketBuf::new(vec![0u8; 4], usize::MAX, 2).is_err());
        assert!(b.set_body_range(5..40).is_err());
    }
}
