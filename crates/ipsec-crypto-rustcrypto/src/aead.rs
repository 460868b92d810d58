//! AEAD algorithms: AES-GCM-16 (RFC 4106, RFC 5282) and ChaCha20-Poly1305 (RFC 7634).

use alloc::boxed::Box;

use aead::generic_array::typenum::Unsigned;
use aead::{AeadCore, AeadInPlace, KeyInit, Nonce, Tag};
use ipsec_crypto::{AeadAlgorithm, AeadKey, CryptoError, EncrId};

use crate::BACKEND;

/// Which AEAD construction an [`Aead`] object runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

/// An AEAD algorithm of this backend. The instances are [`AES_128_GCM`],
/// [`AES_256_GCM`], [`CHACHA20_POLY1305`], and AES-GCM registered for GMAC
/// ([`AES_128_GMAC`], [`AES_256_GMAC`]); all take a 12-byte nonce and produce a 16-byte
/// tag.
#[derive(Debug)]
pub struct Aead {
    kind: Kind,
    /// The transform id it is registered under.
    id: EncrId,
}

/// AES-128-GCM with a 16-byte ICV (ENCR_AES_GCM_16, 16-byte key).
pub static AES_128_GCM: Aead = Aead {
    kind: Kind::Aes128Gcm,
    id: EncrId::ENCR_AES_GCM_16,
};
/// AES-256-GCM with a 16-byte ICV (ENCR_AES_GCM_16, 32-byte key).
pub static AES_256_GCM: Aead = Aead {
    kind: Kind::Aes256Gcm,
    id: EncrId::ENCR_AES_GCM_16,
};
/// ChaCha20-Poly1305 (ENCR_CHACHA20_POLY1305, 32-byte key).
pub static CHACHA20_POLY1305: Aead = Aead {
    kind: Kind::ChaCha20Poly1305,
    id: EncrId::ENCR_CHACHA20_POLY1305,
};
/// AES-128-GCM registered as ENCR_NULL_AUTH_AES_GMAC (RFC 4543), 16-byte key: the
/// same algorithm as [`AES_128_GCM`], for a provider that wants GMAC (all input is
/// AAD) run by this backend and AES-GCM by another
/// (see `CryptoProvider::aead_for`).
pub static AES_128_GMAC: Aead = Aead {
    kind: Kind::Aes128Gcm,
    id: EncrId::ENCR_NULL_AUTH_AES_GMAC,
};
/// AES-256-GCM registered as ENCR_NULL_AUTH_AES_GMAC, 32-byte key; see
/// [`AES_128_GMAC`].
pub static AES_256_GMAC: Aead = Aead {
    kind: Kind::Aes256Gcm,
    id: EncrId::ENCR_NULL_AUTH_AES_GMAC,
};

/// Nonce length of every AEAD here.
const NONCE_LEN: usize = 12;
/// Tag length of every AEAD here.
const TAG_LEN: usize = 16;

impl AeadAlgorithm for Aead {
    fn id(&self) -> EncrId {
        self.id
    }

    fn key_len(&self) -> usize {
        match self.kind {
            Kind::Aes128Gcm => 16,
            Kind::Aes256Gcm | Kind::ChaCha20Poly1305 => 32,
        }
    }

    fn nonce_len(&self) -> usize {
        NONCE_LEN
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        CryptoError::check_len("key", self.key_len(), key.len())?;
        // The RustCrypto key objects zeroize their key schedules on drop (the `zeroize`
        // features of aes and aes-gcm; chacha20poly1305 always does).
        Ok(match self.kind {
            Kind::Aes128Gcm => Box::new(KeyImpl::<aes_gcm::Aes128Gcm>::new(key)?),
            Kind::Aes256Gcm => Box::new(KeyImpl::<aes_gcm::Aes256Gcm>::new(key)?),
            Kind::ChaCha20Poly1305 => {
                Box::new(KeyImpl::<chacha20poly1305::ChaCha20Poly1305>::new(key)?)
            }
        })
    }
}

/// A keyed AEAD; `A` is the RustCrypto cipher.
struct KeyImpl<A>(A);

impl<A: KeyInit + AeadCore> KeyImpl<A> {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        A::new_from_slice(key)
            .map(KeyImpl)
            .map_err(|_| CryptoError::length("key", A::KeySize::USIZE, key.len()))
    }
}

impl<A: AeadCore> KeyImpl<A> {
    /// Checks the nonce and tag lengths, so that the `from_slice` conversions below
    /// cannot panic.
    fn check(nonce: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("nonce", A::NonceSize::USIZE, nonce.len())?;
        CryptoError::check_len("tag", A::TagSize::USIZE, tag.len())
    }
}

impl<A: AeadInPlace + Send + Sync> AeadKey for KeyImpl<A> {
    fn seal_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        Self::check(nonce, tag)?;
        let t = self
            .0
            .encrypt_in_place_detached(Nonce::<A>::from_slice(nonce), aad, data)
            // The only failure is input beyond the algorithm's maximum length
            // (2^36 - 32 bytes for GCM, 2^38 - 64 for ChaCha20-Poly1305).
            .map_err(|_| CryptoError::length("data", 0, data.len()))?;
        tag.copy_from_slice(&t);
        Ok(())
    }

    fn open_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        Self::check(nonce, tag)?;
        self.0
            .decrypt_in_place_detached(
                Nonce::<A>::from_slice(nonce),
                aad,
                data,
                Tag::<A>::from_slice(tag),
            )
            .map_err(|_| CryptoError::Authentication)
    }
}
