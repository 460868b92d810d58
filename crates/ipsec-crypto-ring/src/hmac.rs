//! HMAC on `ring::hmac`: the truncated integrity transforms of RFC 2404 and RFC 4868
//! and the untruncated PRFs of RFC 2104 and RFC 4868.

use alloc::boxed::Box;
use core::fmt;

use ipsec_crypto::{CryptoError, IntegAlgorithm, IntegId, IntegKey, PrfAlgorithm, PrfId, PrfKey};
use ring::hmac;

/// The HMAC of the concatenation of `parts`.
fn hmac_parts(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

/// An integrity transform (HMAC truncated to the ICV length) implemented by ring.
///
/// The values of this type are the statics [`HMAC_SHA1_96`](crate::HMAC_SHA1_96),
/// [`HMAC_SHA256_128`](crate::HMAC_SHA256_128),
/// [`HMAC_SHA384_192`](crate::HMAC_SHA384_192) and
/// [`HMAC_SHA512_256`](crate::HMAC_SHA512_256); use them through [`IntegAlgorithm`].
pub struct RingInteg {
    id: IntegId,
    name: &'static str,
    alg: hmac::Algorithm,
    key_len: usize,
    icv_len: usize,
}

impl RingInteg {
    pub(crate) const fn new(
        id: IntegId,
        name: &'static str,
        alg: hmac::Algorithm,
        key_len: usize,
        icv_len: usize,
    ) -> Self {
        Self {
            id,
            name,
            alg,
            key_len,
            icv_len,
        }
    }
}

impl fmt::Debug for RingInteg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl IntegAlgorithm for RingInteg {
    fn id(&self) -> IntegId {
        self.id
    }
    fn key_len(&self) -> usize {
        self.key_len
    }
    fn icv_len(&self) -> usize {
        self.icv_len
    }
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn IntegKey>, CryptoError> {
        // RFC 2404 §3 and RFC 4868 §2.1.1: the key is exactly the hash output length.
        CryptoError::check_len("key", self.key_len, key.len())?;
        Ok(Box::new(RingIntegKey {
            key: hmac::Key::new(self.alg, key),
            icv_len: self.icv_len,
        }))
    }
}

/// A keyed truncated HMAC.
struct RingIntegKey {
    key: hmac::Key,
    icv_len: usize,
}

impl IntegKey for RingIntegKey {
    fn icv_len(&self) -> usize {
        self.icv_len
    }

    fn compute(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.icv_len, icv.len())?;
        let tag = hmac_parts(&self.key, parts);
        let t = tag.as_ref().get(..self.icv_len).ok_or(CryptoError::length(
            "output",
            tag.as_ref().len(),
            self.icv_len,
        ))?;
        icv.copy_from_slice(t);
        Ok(())
    }

    // `verify` is the trait's default: it recomputes the truncated ICV and compares
    // with `subtle` in constant time. `ring::hmac::verify` cannot be used because it
    // only checks the full, untruncated tag.
}

/// A PRF (untruncated HMAC, RFC 7296 §2.13) implemented by ring.
///
/// The values of this type are the statics [`PRF_HMAC_SHA1`](crate::PRF_HMAC_SHA1),
/// [`PRF_HMAC_SHA256`](crate::PRF_HMAC_SHA256),
/// [`PRF_HMAC_SHA384`](crate::PRF_HMAC_SHA384) and
/// [`PRF_HMAC_SHA512`](crate::PRF_HMAC_SHA512); use them through [`PrfAlgorithm`].
pub struct RingPrf {
    id: PrfId,
    name: &'static str,
    alg: hmac::Algorithm,
}

impl RingPrf {
    pub(crate) const fn new(id: PrfId, name: &'static str, alg: hmac::Algorithm) -> Self {
        Self { id, name, alg }
    }
}

impl fmt::Debug for RingPrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl PrfAlgorithm for RingPrf {
    fn id(&self) -> PrfId {
        self.id
    }
    fn output_len(&self) -> usize {
        self.alg.digest_algorithm().output_len()
    }
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn PrfKey>, CryptoError> {
        // HMAC takes keys of any length (RFC 2104 §3): ring hashes long keys and pads
        // short ones, as IKEv2 needs for `prf(Ni | Nr, g^ir)`.
        Ok(Box::new(RingPrfKey {
            key: hmac::Key::new(self.alg, key),
            output_len: self.output_len(),
        }))
    }
    /// The hash under the HMAC (`ring::digest`), for NAT detection (RFC 7296 §2.23).
    fn hash(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.output_len(), out.len())?;
        let mut ctx = ring::digest::Context::new(self.alg.digest_algorithm());
        for p in parts {
            ctx.update(p);
        }
        out.copy_from_slice(ctx.finish().as_ref());
        Ok(())
    }
}

/// A keyed PRF.
struct RingPrfKey {
    key: hmac::Key,
    output_len: usize,
}

impl PrfKey for RingPrfKey {
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.output_len, out.len())?;
        out.copy_from_slice(hmac_parts(&self.key, parts).as_ref());
        Ok(())
    }
}
