//! AES-CTR (RFC 3686) for the non-combined ESP and IKE transforms (RFC 5930).
//!
//! The IV handed in is the whole initial counter block: the protocol layer builds it
//! as nonce ‖ IV ‖ 0x00000001 (RFC 3686 §4), and the last 32 bits count the blocks,
//! big-endian ([`ipsec_crypto::CipherAlgorithm`]). Encryption and decryption are the
//! same operation; any data length is accepted (the block length is 1).

use alloc::boxed::Box;

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use ipsec_crypto::{CipherAlgorithm, CipherKey, CryptoError, EncrId};

use crate::BACKEND;

/// The AES block, which is the counter block's length.
const BLOCK_LEN: usize = 16;

/// AES-CTR with a given key length. The instances are [`AES_128_CTR`],
/// [`AES_192_CTR`] and [`AES_256_CTR`].
#[derive(Debug)]
pub struct AesCtr {
    key_len: usize,
}

/// AES-128-CTR (ENCR_AES_CTR, 16-byte key).
pub static AES_128_CTR: AesCtr = AesCtr { key_len: 16 };
/// AES-192-CTR (ENCR_AES_CTR, 24-byte key).
pub static AES_192_CTR: AesCtr = AesCtr { key_len: 24 };
/// AES-256-CTR (ENCR_AES_CTR, 32-byte key).
pub static AES_256_CTR: AesCtr = AesCtr { key_len: 32 };

impl CipherAlgorithm for AesCtr {
    fn id(&self) -> EncrId {
        EncrId::ENCR_AES_CTR
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn block_len(&self) -> usize {
        1
    }

    fn iv_len(&self) -> usize {
        BLOCK_LEN
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn new_key(&self, key: &[u8]) -> Result<Box<dyn CipherKey>, CryptoError> {
        CryptoError::check_len("key", self.key_len, key.len())?;
        let bad_key = |_| CryptoError::length("key", self.key_len, key.len());
        // aes' `zeroize` feature zeroizes the key schedule on drop.
        Ok(match self.key_len {
            16 => Box::new(KeyImpl(aes::Aes128::new_from_slice(key).map_err(bad_key)?)),
            24 => Box::new(KeyImpl(aes::Aes192::new_from_slice(key).map_err(bad_key)?)),
            _ => Box::new(KeyImpl(aes::Aes256::new_from_slice(key).map_err(bad_key)?)),
        })
    }
}

/// A keyed AES-CTR; `C` is the block cipher.
struct KeyImpl<C>(C);

impl<C> KeyImpl<C>
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockEncrypt + Clone,
    C: aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    /// XORs the key stream that starts at counter block `iv` into `data`.
    fn apply(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("iv", BLOCK_LEN, iv.len())?;
        let len = data.len();
        let core =
            ctr::CtrCore::<C, ctr::flavors::Ctr32BE>::inner_iv_slice_init(self.0.clone(), iv)
                .map_err(|_| CryptoError::length("iv", BLOCK_LEN, iv.len()))?;
        StreamCipherCoreWrapper::from_core(core)
            // Fails only past 2^32 blocks (64 GiB), which RFC 3686 §3 forbids anyway.
            .try_apply_keystream(data)
            .map_err(|_| CryptoError::length("data", 0, len))
    }
}

impl<C> CipherKey for KeyImpl<C>
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockEncrypt + Clone + Send + Sync,
    C: aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.apply(iv, data)
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.apply(iv, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_wraps_in_the_last_32_bits_only() {
        // Two blocks from a counter block ending in ff ff ff ff: the second block's
        // key stream is that of the same block with the low word 0 (RFC 3686 §4:
        // the block counter is the least significant 32 bits).
        let k = AES_128_CTR.new_key(&[3; 16]).unwrap();
        let mut iv = [0x5a; 16];
        iv[12..].copy_from_slice(&[0xff; 4]);
        let mut two = [0u8; 32];
        k.encrypt(&iv, &mut two).unwrap();
        let mut wrapped = iv;
        wrapped[12..].copy_from_slice(&[0; 4]);
        let mut one = [0u8; 16];
        k.encrypt(&wrapped, &mut one).unwrap();
        assert_eq!(two[16..], one);
        assert_ne!(two[..16], one);
    }

    #[test]
    fn any_length_round_trips() {
        let k = AES_256_CTR.new_key(&[9; 32]).unwrap();
        let iv = [1u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let mut d: alloc::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
            k.encrypt(&iv, &mut d).unwrap();
            k.decrypt(&iv, &mut d).unwrap();
            assert!(d.iter().copied().eq((0..len).map(|i| i as u8)));
        }
        assert!(k.encrypt(&[0; 12], &mut [0; 4]).is_err());
    }
}
