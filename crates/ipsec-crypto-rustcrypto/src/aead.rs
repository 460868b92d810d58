//! AEAD algorithms: AES-GCM-16 (RFC 4106, RFC 5282), ChaCha20-Poly1305 (RFC 7634) and
//! AES-CCM with 8-, 12- and 16-byte ICVs (RFC 4309, RFC 5282).

use alloc::boxed::Box;

use aead::consts::{U11, U12, U16, U8};
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
    /// AES-CCM with an 11-byte nonce (RFC 4309 §4: 3-byte salt ‖ 8-byte IV, so the
    /// length field has 4 bytes) and a key of `key_len` bytes and an ICV of `tag_len`.
    Ccm {
        key_len: usize,
        tag_len: usize,
    },
}

/// An AEAD algorithm of this backend. The instances are [`AES_128_GCM`],
/// [`AES_256_GCM`], [`CHACHA20_POLY1305`], and AES-GCM registered for GMAC
/// ([`AES_128_GMAC`], [`AES_256_GMAC`]), which take a 12-byte nonce and produce a
/// 16-byte tag; and AES-CCM (`AES_{128,192,256}_CCM_{8,12,16}`), which takes the
/// 11-byte nonce of RFC 4309 §4 and produces the tag its name says.
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

/// AES-128-CCM with a 8-byte ICV (ENCR_AES_CCM_8, 16-byte key, 11-byte nonce).
pub static AES_128_CCM_8: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 16,
        tag_len: 8,
    },
    id: EncrId::ENCR_AES_CCM_8,
};
/// AES-192-CCM with a 8-byte ICV (ENCR_AES_CCM_8, 24-byte key, 11-byte nonce).
pub static AES_192_CCM_8: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 24,
        tag_len: 8,
    },
    id: EncrId::ENCR_AES_CCM_8,
};
/// AES-256-CCM with a 8-byte ICV (ENCR_AES_CCM_8, 32-byte key, 11-byte nonce).
pub static AES_256_CCM_8: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 32,
        tag_len: 8,
    },
    id: EncrId::ENCR_AES_CCM_8,
};
/// AES-128-CCM with a 12-byte ICV (ENCR_AES_CCM_12, 16-byte key, 11-byte nonce).
pub static AES_128_CCM_12: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 16,
        tag_len: 12,
    },
    id: EncrId::ENCR_AES_CCM_12,
};
/// AES-192-CCM with a 12-byte ICV (ENCR_AES_CCM_12, 24-byte key, 11-byte nonce).
pub static AES_192_CCM_12: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 24,
        tag_len: 12,
    },
    id: EncrId::ENCR_AES_CCM_12,
};
/// AES-256-CCM with a 12-byte ICV (ENCR_AES_CCM_12, 32-byte key, 11-byte nonce).
pub static AES_256_CCM_12: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 32,
        tag_len: 12,
    },
    id: EncrId::ENCR_AES_CCM_12,
};
/// AES-128-CCM with a 16-byte ICV (ENCR_AES_CCM_16, 16-byte key, 11-byte nonce).
pub static AES_128_CCM_16: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 16,
        tag_len: 16,
    },
    id: EncrId::ENCR_AES_CCM_16,
};
/// AES-192-CCM with a 16-byte ICV (ENCR_AES_CCM_16, 24-byte key, 11-byte nonce).
pub static AES_192_CCM_16: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 24,
        tag_len: 16,
    },
    id: EncrId::ENCR_AES_CCM_16,
};
/// AES-256-CCM with a 16-byte ICV (ENCR_AES_CCM_16, 32-byte key, 11-byte nonce).
pub static AES_256_CCM_16: Aead = Aead {
    kind: Kind::Ccm {
        key_len: 32,
        tag_len: 16,
    },
    id: EncrId::ENCR_AES_CCM_16,
};

/// Nonce length of AES-GCM and ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;
/// Nonce length of AES-CCM in IPsec (RFC 4309 §4, RFC 5282 §4).
const CCM_NONCE_LEN: usize = 11;
/// Tag length of AES-GCM and ChaCha20-Poly1305.
const TAG_LEN: usize = 16;

/// AES-CCM on cipher `C` with tag `M` and the 11-byte IPsec nonce.
type Ccm<C, M> = ccm::Ccm<C, M, U11>;

impl AeadAlgorithm for Aead {
    fn id(&self) -> EncrId {
        self.id
    }

    fn key_len(&self) -> usize {
        match self.kind {
            Kind::Aes128Gcm => 16,
            Kind::Aes256Gcm | Kind::ChaCha20Poly1305 => 32,
            Kind::Ccm { key_len, .. } => key_len,
        }
    }

    fn nonce_len(&self) -> usize {
        match self.kind {
            Kind::Ccm { .. } => CCM_NONCE_LEN,
            _ => NONCE_LEN,
        }
    }

    fn tag_len(&self) -> usize {
        match self.kind {
            Kind::Ccm { tag_len, .. } => tag_len,
            _ => TAG_LEN,
        }
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
            Kind::Ccm { key_len, tag_len } => ccm_key(key_len, tag_len, key)?,
        })
    }
}

/// A keyed AES-CCM of the given key and tag lengths.
fn ccm_key(key_len: usize, tag_len: usize, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
    use aes::{Aes128, Aes192, Aes256};
    Ok(match (key_len, tag_len) {
        (16, 8) => Box::new(KeyImpl::<Ccm<Aes128, U8>>::new(key)?),
        (16, 12) => Box::new(KeyImpl::<Ccm<Aes128, U12>>::new(key)?),
        (16, _) => Box::new(KeyImpl::<Ccm<Aes128, U16>>::new(key)?),
        (24, 8) => Box::new(KeyImpl::<Ccm<Aes192, U8>>::new(key)?),
        (24, 12) => Box::new(KeyImpl::<Ccm<Aes192, U12>>::new(key)?),
        (24, _) => Box::new(KeyImpl::<Ccm<Aes192, U16>>::new(key)?),
        (_, 8) => Box::new(KeyImpl::<Ccm<Aes256, U8>>::new(key)?),
        (_, 12) => Box::new(KeyImpl::<Ccm<Aes256, U12>>::new(key)?),
        _ => Box::new(KeyImpl::<Ccm<Aes256, U16>>::new(key)?),
    })
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
            // (2^36 - 32 bytes for GCM, 2^38 - 64 for ChaCha20-Poly1305, 2^32 - 1
            // for CCM with its 4-byte length field).
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
