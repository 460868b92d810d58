//! Secret byte strings.

use alloc::vec::Vec;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (keys, shared secrets, SKEYSEED): zeroized on drop, not `Clone`, and
/// `Debug` prints `[redacted]`.
#[derive(Zeroize, ZeroizeOnDrop, Default)]
pub struct SecretBytes(Vec<u8>);

/// The result of a key exchange.
pub type SharedSecret = SecretBytes;

impl SecretBytes {
    /// Takes ownership of `v`.
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }

    /// A copy of `s`.
    pub fn from_slice(s: &[u8]) -> Self {
        SecretBytes(s.to_vec())
    }

    /// `len` zero bytes, to be filled in.
    pub fn zeroed(len: usize) -> Self {
        SecretBytes(alloc::vec![0; len])
    }

    /// The secret.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret, writable.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An explicit copy (secrets are not `Clone`, so copies stay visible in review).
    pub fn duplicate(&self) -> Self {
        SecretBytes(self.0.clone())
    }

    /// A copy of `self[start..start + len]`, or `None` if out of range.
    pub fn slice(&self, start: usize, len: usize) -> Option<SecretBytes> {
        self.0
            .get(start..start.checked_add(len)?)
            .map(SecretBytes::from_slice)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), b"hunter2");
        assert_eq!(s.slice(1, 2).unwrap().expose(), b"un");
        assert!(s.slice(6, 2).is_none());
        assert!(s.slice(usize::MAX, 2).is_none());
    }
}
