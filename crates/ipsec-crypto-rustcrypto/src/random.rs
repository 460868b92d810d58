//! The operating system's random source.

use ipsec_crypto::{CryptoError, SecureRandom};

/// Randomness from the operating system through getrandom; the instance is
/// [`OS_RANDOM`].
#[derive(Debug)]
pub struct OsRandom {
    _private: (),
}

/// The operating system's random source (`getrandom(2)` on Linux).
pub static OS_RANDOM: OsRandom = OsRandom { _private: () };

impl SecureRandom for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::getrandom(dest).map_err(|_| CryptoError::Random)
    }
}
