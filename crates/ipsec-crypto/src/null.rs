//! ENCR_NULL (RFC 2410): the identity cipher. It needs no backend.

use alloc::boxed::Box;

use crate::error::CryptoError;
use crate::traits::{CipherAlgorithm, CipherKey};
use crate::EncrId;

/// The NULL encryption algorithm (RFC 2410).
#[derive(Debug)]
pub struct NullCipher;

/// The one NULL cipher, usable in any provider.
pub static NULL_CIPHER: NullCipher = NullCipher;

impl CipherAlgorithm for NullCipher {
    fn id(&self) -> EncrId {
        EncrId::ENCR_NULL
    }
    fn key_len(&self) -> usize {
        0
    }
    fn block_len(&self) -> usize {
        1
    }
    fn iv_len(&self) -> usize {
        0
    }
    fn backend(&self) -> &'static str {
        "ipsec-crypto"
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn CipherKey>, CryptoError> {
        CryptoError::check_len("key", 0, key.len())?;
        Ok(Box::new(NullCipher))
    }
}

impl CipherKey for NullCipher {
    fn encrypt(&self, iv: &[u8], _data: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("iv", 0, iv.len())
    }
    fn decrypt(&self, iv: &[u8], _data: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("iv", 0, iv.len())
    }
}
