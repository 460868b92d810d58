//! The crypto error type.

/// What went wrong in a crypto operation.
///
/// Authentication failures are deliberately one variant without detail: a wrong tag
/// and a failed decryption cannot be told apart. Wrong lengths are caller or peer
/// errors and say which input was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An input had the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    Length {
        /// Which input: "key", "nonce", "iv", "tag", "data", "output", "public key".
        what: &'static str,
        /// The length required (for data: the block size it must be a multiple of).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The tag, ICV or signature did not verify. A signature that is not even well
    /// formed (bad DER, wrong length) is this error too.
    #[error("authentication failed")]
    Authentication,
    /// The peer's public value is not valid for the group (off curve, small order,
    /// out of range).
    #[error("invalid public key-exchange value")]
    InvalidPublicValue,
    /// A signature key is malformed, or is not a key of the scheme it was given to
    /// (see [`crate::keys`] for the encodings accepted).
    #[error("invalid or mismatched signature key")]
    InvalidKey,
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// The transform is not available in this provider.
    #[error("transform not supported by this provider")]
    Unsupported,
}

impl CryptoError {
    /// Shorthand for a [`CryptoError::Length`] error.
    pub const fn length(what: &'static str, expected: usize, got: usize) -> Self {
        CryptoError::Length {
            what,
            expected,
            got,
        }
    }

    /// `Ok(())` when `got == expected`, a length error otherwise.
    pub const fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Self> {
        if expected == got {
            Ok(())
        } else {
            Err(CryptoError::Length {
                what,
                expected,
                got,
            })
        }
    }
}
