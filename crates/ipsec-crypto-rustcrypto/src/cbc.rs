//! AES-CBC (RFC 3602) for the non-combined ESP and IKE transforms.
//!
//! No padding is added or removed: ESP (RFC 4303 §2.4) and the IKE SK payload
//! (RFC 7296 §3.14) pad the plaintext themselves, so the data must already be a
//! multiple of the block size.

use alloc::boxed::Box;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, InnerIvInit, KeyInit,
};
use ipsec_crypto::{CipherAlgorithm, CipherKey, CryptoError, EncrId};

use crate::BACKEND;

/// The AES block length, which is also the IV length.
const BLOCK_LEN: usize = 16;

/// AES-CBC with a given key length. The instances are [`AES_128_CBC`] and
/// [`AES_256_CBC`].
#[derive(Debug)]
pub struct AesCbc {
    key_len: usize,
}

/// AES-128-CBC (ENCR_AES_CBC, 16-byte key).
pub static AES_128_CBC: AesCbc = AesCbc { key_len: 16 };
/// AES-256-CBC (ENCR_AES_CBC, 32-byte key).
pub static AES_256_CBC: AesCbc = AesCbc { key_len: 32 };

impl CipherAlgorithm for AesCbc {
    fn id(&self) -> EncrId {
        EncrId::ENCR_AES_CBC
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn block_len(&self) -> usize {
        BLOCK_LEN
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
            _ => Box::new(KeyImpl(aes::Aes256::new_from_slice(key).map_err(bad_key)?)),
        })
    }
}

/// A keyed AES-CBC; `C` is the block cipher.
struct KeyImpl<C>(C);

/// Checks the IV and data lengths, so that the CBC calls below cannot fail.
fn check(iv: &[u8], data: &[u8]) -> Result<(), CryptoError> {
    CryptoError::check_len("iv", BLOCK_LEN, iv.len())?;
    if data.len() % BLOCK_LEN != 0 {
        return Err(CryptoError::length("data", BLOCK_LEN, data.len()));
    }
    Ok(())
}

impl<C> CipherKey for KeyImpl<C>
where
    C: BlockCipher + BlockEncrypt + BlockDecrypt + Clone + Send + Sync,
    C: aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        check(iv, data)?;
        let len = data.len();
        cbc::Encryptor::<C>::inner_iv_slice_init(self.0.clone(), iv)
            .map_err(|_| CryptoError::length("iv", BLOCK_LEN, iv.len()))?
            .encrypt_padded_mut::<NoPadding>(data, len)
            .map_err(|_| CryptoError::length("data", BLOCK_LEN, len))?;
        Ok(())
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        check(iv, data)?;
        let len = data.len();
        cbc::Decryptor::<C>::inner_iv_slice_init(self.0.clone(), iv)
            .map_err(|_| CryptoError::length("iv", BLOCK_LEN, iv.len()))?
            .decrypt_padded_mut::<NoPadding>(data)
            .map_err(|_| CryptoError::length("data", BLOCK_LEN, len))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> alloc::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38A §F.2.5/F.2.6 (CBC-AES256): esp.json has no AES-256-CBC packet.
    #[test]
    fn sp800_38a_cbc_aes256() {
        let key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        let pt = unhex(concat!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        ));
        let ct = unhex(concat!(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d",
            "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
        ));
        let k = AES_256_CBC.new_key(&key).unwrap();
        let mut data = pt.clone();
        k.encrypt(&iv, &mut data).unwrap();
        assert_eq!(data, ct);
        k.decrypt(&iv, &mut data).unwrap();
        assert_eq!(data, pt);
    }

    #[test]
    fn rejects_partial_blocks_and_bad_ivs() {
        let k = AES_128_CBC.new_key(&[0; 16]).unwrap();
        let mut d = [0u8; 17];
        assert!(matches!(
            k.encrypt(&[0; 16], &mut d),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            k.decrypt(&[0; 16], &mut d[..15]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            k.decrypt(&[0; 8], &mut d[..16]),
            Err(CryptoError::Length { .. })
        ));
        assert!(AES_128_CBC.new_key(&[0; 32]).is_err());
        assert!(AES_256_CBC.new_key(&[0; 16]).is_err());
    }
}
