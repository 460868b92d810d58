//! The operating system's CSPRNG through AWS-LC.

use core::fmt;

use ipsec_crypto::{CryptoError, SecureRandom};

/// AWS-LC's random source (its DRBG, seeded from the operating system).
///
/// Its one value is [`SYSTEM_RANDOM`](crate::SYSTEM_RANDOM). Library crates receive it
/// through `CryptoProvider::secure_random` and never call the OS themselves.
pub struct SystemRandom(());

impl SystemRandom {
    pub(crate) const fn new() -> Self {
        Self(())
    }
}

impl fmt::Debug for SystemRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemRandom (aws-lc)")
    }
}

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Random)
    }
}
