//! The operating system's CSPRNG through `ring::rand::SystemRandom`.

use core::fmt;

use ipsec_crypto::{CryptoError, SecureRandom};
use ring::rand::SecureRandom as _;

/// The operating system's random source (`getrandom(2)` on Linux), through ring.
///
/// Its one value is [`SYSTEM_RANDOM`](crate::SYSTEM_RANDOM). It is the only
/// [`SecureRandom`] of this backend; library crates receive it through
/// `CryptoProvider::secure_random` and never call the OS themselves.
pub struct SystemRandom(());

impl SystemRandom {
    pub(crate) const fn new() -> Self {
        Self(())
    }
}

impl fmt::Debug for SystemRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemRandom (ring)")
    }
}

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        // `ring::rand::SystemRandom::new` is free (it holds no state); creating it per
        // call keeps ring's type out of our static.
        ring::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| CryptoError::Random)
    }
}
