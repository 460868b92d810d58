//! HMAC integrity (RFC 2404, RFC 4868) and HMAC PRFs (RFC 2104, RFC 4868).
//!
//! A key object keeps the HMAC state after absorbing the padded key, and clones it
//! for each message, so the key is hashed once per key, not once per packet.
//!
//! hmac 0.12 has no `zeroize` support, so that keyed state is not zeroized on drop.
//! The outputs this module computes on the stack are.

use alloc::boxed::Box;

use hmac::digest::generic_array::typenum::Unsigned;
use hmac::digest::{KeyInit, Mac};
use ipsec_crypto::{CryptoError, IntegAlgorithm, IntegId, IntegKey, PrfAlgorithm, PrfId, PrfKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::BACKEND;

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// A keyed HMAC that outputs its first `out_len` bytes.
    fn keyed(self, key: &[u8], out_len: usize) -> Result<Box<Keyed>, CryptoError> {
        Ok(Box::new(match self {
            Self::Sha1 => Keyed::Sha1(Key::new(key, out_len)?),
            Self::Sha256 => Keyed::Sha256(Key::new(key, out_len)?),
            Self::Sha384 => Keyed::Sha384(Key::new(key, out_len)?),
            Self::Sha512 => Keyed::Sha512(Key::new(key, out_len)?),
        }))
    }
}

/// An HMAC integrity algorithm (truncated output). The instances are
/// [`HMAC_SHA1_96`], [`HMAC_SHA256_128`], [`HMAC_SHA384_192`] and [`HMAC_SHA512_256`].
#[derive(Debug)]
pub struct HmacInteg {
    id: IntegId,
    hash: Hash,
    icv_len: usize,
}

/// AUTH_HMAC_SHA1_96 (RFC 2404): 20-byte key, 12-byte ICV.
pub static HMAC_SHA1_96: HmacInteg = HmacInteg {
    id: IntegId::AUTH_HMAC_SHA1_96,
    hash: Hash::Sha1,
    icv_len: 12,
};
/// AUTH_HMAC_SHA2_256_128 (RFC 4868): 32-byte key, 16-byte ICV.
pub static HMAC_SHA256_128: HmacInteg = HmacInteg {
    id: IntegId::AUTH_HMAC_SHA2_256_128,
    hash: Hash::Sha256,
    icv_len: 16,
};
/// AUTH_HMAC_SHA2_384_192 (RFC 4868): 48-byte key, 24-byte ICV.
pub static HMAC_SHA384_192: HmacInteg = HmacInteg {
    id: IntegId::AUTH_HMAC_SHA2_384_192,
    hash: Hash::Sha384,
    icv_len: 24,
};
/// AUTH_HMAC_SHA2_512_256 (RFC 4868): 64-byte key, 32-byte ICV.
pub static HMAC_SHA512_256: HmacInteg = HmacInteg {
    id: IntegId::AUTH_HMAC_SHA2_512_256,
    hash: Hash::Sha512,
    icv_len: 32,
};

impl IntegAlgorithm for HmacInteg {
    fn id(&self) -> IntegId {
        self.id
    }

    /// The key is as long as the hash output (RFC 2404 §3, RFC 4868 §2.1.1).
    fn key_len(&self) -> usize {
        self.hash.output_len()
    }

    fn icv_len(&self) -> usize {
        self.icv_len
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn new_key(&self, key: &[u8]) -> Result<Box<dyn IntegKey>, CryptoError> {
        CryptoError::check_len("key", self.key_len(), key.len())?;
        Ok(self.hash.keyed(key, self.icv_len)?)
    }
}

/// An HMAC PRF (full output). The instances are [`PRF_HMAC_SHA1`],
/// [`PRF_HMAC_SHA256`], [`PRF_HMAC_SHA384`] and [`PRF_HMAC_SHA512`].
#[derive(Debug)]
pub struct HmacPrf {
    id: PrfId,
    hash: Hash,
}

/// PRF_HMAC_SHA1 (RFC 2104): 20-byte output.
pub static PRF_HMAC_SHA1: HmacPrf = HmacPrf {
    id: PrfId::PRF_HMAC_SHA1,
    hash: Hash::Sha1,
};
/// PRF_HMAC_SHA2_256 (RFC 4868): 32-byte output.
pub static PRF_HMAC_SHA256: HmacPrf = HmacPrf {
    id: PrfId::PRF_HMAC_SHA2_256,
    hash: Hash::Sha256,
};
/// PRF_HMAC_SHA2_384 (RFC 4868): 48-byte output.
pub static PRF_HMAC_SHA384: HmacPrf = HmacPrf {
    id: PrfId::PRF_HMAC_SHA2_384,
    hash: Hash::Sha384,
};
/// PRF_HMAC_SHA2_512 (RFC 4868): 64-byte output.
pub static PRF_HMAC_SHA512: HmacPrf = HmacPrf {
    id: PrfId::PRF_HMAC_SHA2_512,
    hash: Hash::Sha512,
};

impl PrfAlgorithm for HmacPrf {
    fn id(&self) -> PrfId {
        self.id
    }

    fn output_len(&self) -> usize {
        self.hash.output_len()
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// HMAC takes keys of any length (RFC 2104 §2; RFC 7296 §2.13 relies on it for
    /// `prf(Ni | Nr, ...)`).
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn PrfKey>, CryptoError> {
        Ok(self.hash.keyed(key, self.hash.output_len())?)
    }

    /// The hash under the HMAC, for NAT detection (RFC 7296 §2.23).
    fn hash(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        use sha2::Digest;
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            out.copy_from_slice(&d.finalize());
        }
        CryptoError::check_len("output", self.hash.output_len(), out.len())?;
        match self.hash {
            Hash::Sha1 => run::<sha1::Sha1>(parts, out),
            Hash::Sha256 => run::<sha2::Sha256>(parts, out),
            Hash::Sha384 => run::<sha2::Sha384>(parts, out),
            Hash::Sha512 => run::<sha2::Sha512>(parts, out),
        }
        Ok(())
    }
}

/// A keyed HMAC for one hash.
struct Key<M> {
    mac: M,
    /// Output length after truncation.
    out_len: usize,
}

impl<M: Mac + KeyInit + Clone> Key<M> {
    fn new(key: &[u8], out_len: usize) -> Result<Self, CryptoError> {
        // HMAC accepts every key length; the error cannot happen.
        let mac = <M as KeyInit>::new_from_slice(key)
            .map_err(|_| CryptoError::length("key", M::OutputSize::USIZE, key.len()))?;
        Ok(Self { mac, out_len })
    }

    /// Writes the first `out.len()` bytes (exactly the truncated length) of the MAC of
    /// `parts` to `out`.
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.out_len, out.len())?;
        let mut full = self.full(parts);
        let r = match full.get(..self.out_len) {
            Some(t) => {
                out.copy_from_slice(t);
                Ok(())
            }
            None => Err(CryptoError::length("output", full.len(), self.out_len)),
        };
        full.as_mut_slice().zeroize();
        r
    }

    /// Compares the truncated MAC of `parts` with `icv` in constant time.
    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("tag", self.out_len, icv.len())?;
        let mut full = self.full(parts);
        let ok = full
            .get(..self.out_len)
            .is_some_and(|t| bool::from(t.ct_eq(icv)));
        full.as_mut_slice().zeroize();
        if ok {
            Ok(())
        } else {
            Err(CryptoError::Authentication)
        }
    }

    fn full(&self, parts: &[&[u8]]) -> hmac::digest::Output<M> {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes()
    }
}

/// A keyed HMAC over one of the supported hashes.
enum Keyed {
    Sha1(Key<hmac::Hmac<sha1::Sha1>>),
    Sha256(Key<hmac::Hmac<sha2::Sha256>>),
    Sha384(Key<hmac::Hmac<sha2::Sha384>>),
    Sha512(Key<hmac::Hmac<sha2::Sha512>>),
}

impl Keyed {
    fn out_len(&self) -> usize {
        match self {
            Self::Sha1(k) => k.out_len,
            Self::Sha256(k) => k.out_len,
            Self::Sha384(k) => k.out_len,
            Self::Sha512(k) => k.out_len,
        }
    }

    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            Self::Sha1(k) => k.compute(parts, out),
            Self::Sha256(k) => k.compute(parts, out),
            Self::Sha384(k) => k.compute(parts, out),
            Self::Sha512(k) => k.compute(parts, out),
        }
    }

    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        match self {
            Self::Sha1(k) => k.verify(parts, icv),
            Self::Sha256(k) => k.verify(parts, icv),
            Self::Sha384(k) => k.verify(parts, icv),
            Self::Sha512(k) => k.verify(parts, icv),
        }
    }
}

impl IntegKey for Keyed {
    fn icv_len(&self) -> usize {
        self.out_len()
    }

    fn compute(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError> {
        Self::compute(self, parts, icv).map_err(|e| match e {
            CryptoError::Length { expected, got, .. } => CryptoError::length("tag", expected, got),
            e => e,
        })
    }

    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        Self::verify(self, parts, icv)
    }
}

impl PrfKey for Keyed {
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        Self::compute(self, parts, out)
    }
}
