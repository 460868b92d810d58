//! Signatures on the RustCrypto crates: ECDSA P-256/SHA-256 and P-384/SHA-384 (DER
//! and `r ‖ s`; `p256`, `p384`), Ed25519 (`ed25519-dalek`), and verification of
//! RSASSA-PKCS1-v1_5 and RSASSA-PSS with SHA-256/384/512 (`rsa`) and of
//! RSASSA-PKCS1-v1_5 with SHA-1 (`rsa` with `sha1`; IKEv2 AUTH method 1, which we
//! accept from peers without RFC 7427 and never sign with).
//!
//! Keys are parsed by [`ipsec_crypto::keys`], as in every backend.
//!
//! - **ECDSA** signs deterministically (RFC 6979) and ignores the `rng` argument;
//!   the nonce depends on key and message only, so a broken random source cannot leak
//!   the key. Verification accepts any `s` (no low-S rule), as ring does.
//! - **Ed25519** is RFC 8032's cofactorless verification with a canonical `S`
//!   (`ed25519-dalek`'s `verify`), as ring does.
//! - **RSA** is verification only. RSA signing is left out on purpose: the `rsa`
//!   crate's private-key operation is not constant time (RUSTSEC-2023-0071, the
//!   "Marvin" timing side channel, without a fixed release), and a signing key in an
//!   IKE responder answers to anyone who sends an IKE_AUTH. Use ring for RSA
//!   signing. Verification uses public values only.
//!
//! A key that parses but is not valid (a point off the curve, an RSA modulus the
//! `rsa` crate refuses) gives [`CryptoError::Authentication`] when verifying, as in
//! the ring backend, which cannot tell these apart.
//!
//! # Key hygiene
//! ECDSA signing keys (`ecdsa::SigningKey`) and Ed25519 signing keys
//! (`ed25519_dalek::SigningKey`, with its `zeroize` feature) zeroize on drop.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::Verifier as _;
use ipsec_crypto::keys::{self, EcCurve, PrivateKey, PublicKey, RSA_MAX_BITS};
use ipsec_crypto::{
    CryptoError, SecureRandom, SignatureScheme, SignatureVerifier, Signer, SigningAlgorithm,
};

use crate::BACKEND;

/// ECDSA on one curve with one signature encoding. The instances are
/// [`ECDSA_P256_SHA256`], [`ECDSA_P384_SHA384`], [`ECDSA_P256_SHA256_FIXED`] and
/// [`ECDSA_P384_SHA384_FIXED`].
pub struct Ecdsa {
    scheme: SignatureScheme,
    name: &'static str,
    curve: EcCurve,
    /// DER `Ecdsa-Sig-Value` (true) or `r ‖ s` (false).
    der: bool,
}

/// ECDSA on P-256 with SHA-256, DER signatures (RFC 7427 `ecdsa-with-SHA256`).
pub static ECDSA_P256_SHA256: Ecdsa = Ecdsa {
    scheme: SignatureScheme::EcdsaP256Sha256,
    name: "ECDSA P-256 SHA-256",
    curve: EcCurve::P256,
    der: true,
};
/// ECDSA on P-384 with SHA-384, DER signatures (RFC 7427 `ecdsa-with-SHA384`).
pub static ECDSA_P384_SHA384: Ecdsa = Ecdsa {
    scheme: SignatureScheme::EcdsaP384Sha384,
    name: "ECDSA P-384 SHA-384",
    curve: EcCurve::P384,
    der: true,
};
/// ECDSA on P-256 with SHA-256, `r ‖ s` signatures (RFC 4754, AUTH method 9).
pub static ECDSA_P256_SHA256_FIXED: Ecdsa = Ecdsa {
    scheme: SignatureScheme::EcdsaP256Sha256Fixed,
    name: "ECDSA P-256 SHA-256 (r||s)",
    curve: EcCurve::P256,
    der: false,
};
/// ECDSA on P-384 with SHA-384, `r ‖ s` signatures (RFC 4754, AUTH method 10).
pub static ECDSA_P384_SHA384_FIXED: Ecdsa = Ecdsa {
    scheme: SignatureScheme::EcdsaP384Sha384Fixed,
    name: "ECDSA P-384 SHA-384 (r||s)",
    curve: EcCurve::P384,
    der: false,
};

impl fmt::Debug for Ecdsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rustcrypto)", self.name)
    }
}

/// Verification and signing, written once for `p256` and `p384`, whose ECDSA types
/// have the same API.
macro_rules! ecdsa_curve {
    ($module:ident, $verify:ident, $key:ident) => {
        fn $verify(point: &[u8], message: &[u8], sig: &[u8], der: bool) -> Result<(), CryptoError> {
            use $module::ecdsa::signature::Verifier as _;
            use $module::ecdsa::{Signature, VerifyingKey};
            let key =
                VerifyingKey::from_sec1_bytes(point).map_err(|_| CryptoError::Authentication)?;
            let sig = if der {
                Signature::from_der(sig)
            } else {
                Signature::from_slice(sig)
            }
            .map_err(|_| CryptoError::Authentication)?;
            key.verify(message, &sig)
                .map_err(|_| CryptoError::Authentication)
        }

        /// A signing key; `ecdsa::SigningKey` zeroizes its scalar on drop.
        struct $key($module::ecdsa::SigningKey);

        impl $key {
            fn new(scalar: &[u8], public: Option<&[u8]>) -> Result<Self, CryptoError> {
                let key = $module::ecdsa::SigningKey::from_slice(scalar)
                    .map_err(|_| CryptoError::InvalidKey)?;
                if let Some(p) = public {
                    let mine = key.verifying_key().to_encoded_point(false);
                    if mine.as_bytes() != p {
                        return Err(CryptoError::InvalidKey);
                    }
                }
                Ok(Self(key))
            }

            fn sign(&self, message: &[u8], der: bool) -> Vec<u8> {
                use $module::ecdsa::signature::Signer as _;
                let sig: $module::ecdsa::Signature = self.0.sign(message);
                if der {
                    sig.to_der().as_bytes().to_vec()
                } else {
                    sig.to_bytes().to_vec()
                }
            }
        }
    };
}

ecdsa_curve!(p256, verify_p256, P256Key);
ecdsa_curve!(p384, verify_p384, P384Key);

impl SignatureVerifier for Ecdsa {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match keys::parse_spki(public_key)? {
            PublicKey::Ec { curve, point } if curve == self.curve => match curve {
                EcCurve::P256 => verify_p256(point, message, signature, self.der),
                EcCurve::P384 => verify_p384(point, message, signature, self.der),
                _ => Err(CryptoError::Unsupported),
            },
            _ => Err(CryptoError::InvalidKey),
        }
    }
}

/// An ECDSA private key of either curve.
enum EcdsaKey {
    P256(P256Key),
    P384(P384Key),
}

struct EcdsaSigner {
    alg: &'static Ecdsa,
    key: EcdsaKey,
}

impl fmt::Debug for EcdsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} signer (rustcrypto)", self.alg.name)
    }
}

impl SigningAlgorithm for Ecdsa {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// `rng` is not used.
    fn new_signer(
        &self,
        private_key: &[u8],
        _rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, CryptoError> {
        let key = match keys::parse_private_key(private_key)? {
            PrivateKey::Ec {
                curve,
                scalar,
                public,
            } if curve == self.curve => match curve {
                EcCurve::P256 => EcdsaKey::P256(P256Key::new(scalar, public)?),
                EcCurve::P384 => EcdsaKey::P384(P384Key::new(scalar, public)?),
                _ => return Err(CryptoError::Unsupported),
            },
            _ => return Err(CryptoError::InvalidKey),
        };
        let alg = match (self.curve, self.der) {
            (EcCurve::P256, true) => &ECDSA_P256_SHA256,
            (EcCurve::P256, false) => &ECDSA_P256_SHA256_FIXED,
            (_, true) => &ECDSA_P384_SHA384,
            (_, false) => &ECDSA_P384_SHA384_FIXED,
        };
        Ok(Box::new(EcdsaSigner { alg, key }))
    }
}

impl Signer for EcdsaSigner {
    fn scheme(&self) -> SignatureScheme {
        self.alg.scheme
    }

    /// RFC 6979 deterministic ECDSA: `rng` is not used.
    fn sign(&self, _rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(match &self.key {
            EcdsaKey::P256(k) => k.sign(message, self.alg.der),
            EcdsaKey::P384(k) => k.sign(message, self.alg.der),
        })
    }
}

/// Ed25519 (RFC 8032, RFC 8420); the instance is [`ED25519`].
pub struct Ed25519 {
    _private: (),
}

/// Ed25519 (RFC 8032, RFC 8420).
pub static ED25519: Ed25519 = Ed25519 { _private: () };

impl fmt::Debug for Ed25519 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519 (rustcrypto)")
    }
}

impl SignatureVerifier for Ed25519 {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let PublicKey::Ed25519(raw) = keys::parse_spki(public_key)? else {
            return Err(CryptoError::InvalidKey);
        };
        let raw: &[u8; 32] = raw.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(raw)
            .map_err(|_| CryptoError::Authentication)?;
        let sig = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| CryptoError::Authentication)?;
        key.verify(message, &sig)
            .map_err(|_| CryptoError::Authentication)
    }
}

/// An Ed25519 private key; `ed25519_dalek::SigningKey` zeroizes on drop.
struct Ed25519Signer(ed25519_dalek::SigningKey);

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519 signer (rustcrypto)")
    }
}

impl SigningAlgorithm for Ed25519 {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// `rng` is not used.
    fn new_signer(
        &self,
        private_key: &[u8],
        _rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, CryptoError> {
        let PrivateKey::Ed25519 { seed, public } = keys::parse_private_key(private_key)? else {
            return Err(CryptoError::InvalidKey);
        };
        let seed: &[u8; 32] = seed.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        if public.is_some_and(|p| p != key.verifying_key().as_bytes()) {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Box::new(Ed25519Signer(key)))
    }
}

impl Signer for Ed25519Signer {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519
    }

    /// Ed25519 is deterministic: `rng` is not used.
    fn sign(&self, _rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use ed25519_dalek::Signer as _;
        Ok(self.0.sign(message).to_bytes().to_vec())
    }
}

/// The hash of an RSA scheme.
#[derive(Clone, Copy)]
enum Hash {
    /// SHA-1, for PKCS#1 v1.5 only (AUTH method 1).
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// RSA signature verification, PKCS#1 v1.5 or PSS; the instances are
/// [`RSA_PKCS1_SHA256`] and its siblings. Verification only: see the
/// [crate docs](crate#side-channels).
pub struct RsaVerifier {
    scheme: SignatureScheme,
    name: &'static str,
    hash: Hash,
    pss: bool,
}

macro_rules! rsa_verifier {
    ($name:ident, $scheme:ident, $text:literal, $hash:ident, $pss:literal, $doc:literal) => {
        #[doc = $doc]
        pub static $name: RsaVerifier = RsaVerifier {
            scheme: SignatureScheme::$scheme,
            name: $text,
            hash: Hash::$hash,
            pss: $pss,
        };
    };
}

rsa_verifier!(
    RSA_PKCS1_SHA256,
    RsaPkcs1Sha256,
    "RSA PKCS#1 v1.5 SHA-256",
    Sha256,
    false,
    "RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2), verification only."
);
rsa_verifier!(
    RSA_PKCS1_SHA384,
    RsaPkcs1Sha384,
    "RSA PKCS#1 v1.5 SHA-384",
    Sha384,
    false,
    "RSASSA-PKCS1-v1_5 with SHA-384 (RFC 8017 §8.2), verification only."
);
rsa_verifier!(
    RSA_PKCS1_SHA512,
    RsaPkcs1Sha512,
    "RSA PKCS#1 v1.5 SHA-512",
    Sha512,
    false,
    "RSASSA-PKCS1-v1_5 with SHA-512 (RFC 8017 §8.2), verification only."
);
rsa_verifier!(
    RSA_PSS_SHA256,
    RsaPssSha256,
    "RSA-PSS SHA-256",
    Sha256,
    true,
    "RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (RFC 8017 §8.1), verification only."
);
rsa_verifier!(
    RSA_PSS_SHA384,
    RsaPssSha384,
    "RSA-PSS SHA-384",
    Sha384,
    true,
    "RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt (RFC 8017 §8.1), verification only."
);
rsa_verifier!(
    RSA_PSS_SHA512,
    RsaPssSha512,
    "RSA-PSS SHA-512",
    Sha512,
    true,
    "RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt (RFC 8017 §8.1), verification only."
);

rsa_verifier!(
    RSA_PKCS1_SHA1,
    RsaPkcs1Sha1,
    "RSA PKCS#1 v1.5 SHA-1",
    Sha1,
    false,
    "RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017 §8.2), the AUTH data of IKEv2 method 1 (`RSA_SIG`, RFC 7296 §3.8), verification only. SHA-1 signatures are legacy: we accept them from peers without RFC 7427 and always sign with method 14."
);

impl fmt::Debug for RsaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rustcrypto)", self.name)
    }
}

/// `pkcs1v15` or `pss` verification of `sig` with hash `D`.
fn rsa_verify<D>(
    key: rsa::RsaPublicKey,
    pss: bool,
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError>
where
    D: sha2::Digest + sha2::digest::FixedOutputReset + rsa::pkcs8::spki::der::oid::AssociatedOid,
{
    let bad = |_| CryptoError::Authentication;
    if pss {
        let sig = rsa::pss::Signature::try_from(sig).map_err(bad)?;
        rsa::pss::VerifyingKey::<D>::new(key)
            .verify(message, &sig)
            .map_err(bad)
    } else {
        let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(bad)?;
        rsa::pkcs1v15::VerifyingKey::<D>::new(key)
            .verify(message, &sig)
            .map_err(bad)
    }
}

impl SignatureVerifier for RsaVerifier {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let PublicKey::Rsa {
            modulus, exponent, ..
        } = keys::parse_spki(public_key)?
        else {
            return Err(CryptoError::InvalidKey);
        };
        // RFC 8017 §8.1.2 / §8.2.2 step 1: the signature is exactly k bytes.
        if signature.len() != modulus.len() {
            return Err(CryptoError::Authentication);
        }
        let key = rsa::RsaPublicKey::new_with_max_size(
            rsa::BigUint::from_bytes_be(modulus),
            rsa::BigUint::from_bytes_be(exponent),
            RSA_MAX_BITS,
        )
        .map_err(|_| CryptoError::Authentication)?;
        match self.hash {
            Hash::Sha1 => rsa_verify::<sha1::Sha1>(key, self.pss, message, signature),
            Hash::Sha256 => rsa_verify::<sha2::Sha256>(key, self.pss, message, signature),
            Hash::Sha384 => rsa_verify::<sha2::Sha384>(key, self.pss, message, signature),
            Hash::Sha512 => rsa_verify::<sha2::Sha512>(key, self.pss, message, signature),
        }
    }
}
