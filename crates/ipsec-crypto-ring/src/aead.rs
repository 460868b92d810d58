//! AEAD transforms on `ring::aead`: AES-GCM-16 (RFC 4106) and ChaCha20-Poly1305
//! (RFC 7634).

use alloc::boxed::Box;
use core::fmt;

use ipsec_crypto::{AeadAlgorithm, AeadKey, CryptoError, EncrId};
use ring::aead::{self as raead, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

/// Nonce length of every ring AEAD (96 bits).
const NONCE_LEN: usize = raead::NONCE_LEN;
/// Tag length of every ring AEAD (128 bits, the only ICV length IKEv2 and ESP use
/// for these transforms: `ENCR_AES_GCM_16`, `ENCR_CHACHA20_POLY1305`).
const TAG_LEN: usize = raead::MAX_TAG_LEN;

/// An AEAD algorithm implemented by ring.
///
/// The values of this type are the statics [`AES_128_GCM`](crate::AES_128_GCM),
/// [`AES_256_GCM`](crate::AES_256_GCM) and
/// [`CHACHA20_POLY1305`](crate::CHACHA20_POLY1305); use them through
/// [`AeadAlgorithm`].
pub struct RingAead {
    id: EncrId,
    name: &'static str,
    alg: &'static raead::Algorithm,
}

impl RingAead {
    pub(crate) const fn new(
        id: EncrId,
        name: &'static str,
        alg: &'static raead::Algorithm,
    ) -> Self {
        Self { id, name, alg }
    }
}

impl fmt::Debug for RingAead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl AeadAlgorithm for RingAead {
    fn id(&self) -> EncrId {
        self.id
    }
    fn key_len(&self) -> usize {
        self.alg.key_len()
    }
    fn nonce_len(&self) -> usize {
        NONCE_LEN
    }
    fn tag_len(&self) -> usize {
        TAG_LEN
    }
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        CryptoError::check_len("key", self.alg.key_len(), key.len())?;
        let unbound = UnboundKey::new(self.alg, key)
            .map_err(|_| CryptoError::length("key", self.alg.key_len(), key.len()))?;
        Ok(Box::new(RingAeadKey {
            key: LessSafeKey::new(unbound),
        }))
    }
}

/// A keyed ring AEAD. ring expands the key schedule once in `new_key`.
struct RingAeadKey {
    key: LessSafeKey,
}

/// The nonce as ring wants it, or a length error.
fn nonce(nonce: &[u8]) -> Result<Nonce, CryptoError> {
    let n: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::length("nonce", NONCE_LEN, nonce.len()))?;
    // The caller builds salt ‖ IV (RFC 4106 §4, RFC 7634 §2) and is responsible for
    // never repeating it under one key, which the ESP/IKE sequence numbers ensure.
    Ok(Nonce::assume_unique_for_key(n))
}

impl AeadKey for RingAeadKey {
    fn seal_detached(
        &self,
        nonce_bytes: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        let n = nonce(nonce_bytes)?;
        CryptoError::check_len("tag", TAG_LEN, tag.len())?;
        // ring fails only when `data` exceeds the algorithm's maximum input length
        // (about 64 GiB for GCM), which no packet or IKE message can reach.
        let t = self
            .key
            .seal_in_place_separate_tag(n, Aad::from(aad), data)
            .map_err(|_| CryptoError::length("data", 0, data.len()))?;
        tag.copy_from_slice(t.as_ref());
        Ok(())
    }

    fn open_detached(
        &self,
        nonce_bytes: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let n = nonce(nonce_bytes)?;
        let t: [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| CryptoError::length("tag", TAG_LEN, tag.len()))?;
        // `open_in_place_separate_tag` (ring 0.17) verifies the detached tag in
        // constant time and decrypts `data[0..]` in place without moving it.
        self.key
            .open_in_place_separate_tag(n, Aad::from(aad), Tag::from(t), data, 0..)
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}
