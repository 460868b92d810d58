//! Signatures on `ring::signature`: ECDSA P-256/SHA-256 and P-384/SHA-384 (DER and
//! `r ‖ s`), Ed25519, RSASSA-PKCS1-v1_5 and RSASSA-PSS with SHA-256/384/512, and the
//! verification of RSASSA-PKCS1-v1_5 with SHA-1 (IKEv2 AUTH method 1).
//!
//! Each scheme is one [`RingSignature`] static that is both a [`SignatureVerifier`]
//! and a [`SigningAlgorithm`], except RSASSA-PKCS1-v1_5 with SHA-1, a
//! [`RingVerifier`] that only verifies (ring's
//! `RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY`; ring has no SHA-1 signing, and we
//! never sign with SHA-1: see [`SignatureScheme::RsaPkcs1Sha1`]). Keys are parsed by [`ipsec_crypto::keys`] and handed
//! to ring in the raw forms it takes (the SEC1 point, the PKCS#1 `RSAPublicKey`, the
//! 32-byte Ed25519 key; the private scalar and point, the PKCS#1 `RSAPrivateKey`, the
//! Ed25519 seed).
//!
//! # Limits
//! - Verification: RSA moduli of 2048 to 8192 bits (as the key parser allows).
//! - Signing: RSA moduli of 2048 to 4096 bits with a public exponent of at least
//!   65537 (ring's limits); larger keys are [`CryptoError::Unsupported`].
//! - ring checks a public key's validity (point on the curve, RSA modulus form) only
//!   while verifying, so a key that parses but is not valid gives
//!   [`CryptoError::Authentication`], as in the RustCrypto backend.
//!
//! # Randomness
//! As for key exchange ([`crate::kx`]), randomness comes from the caller's
//! [`SecureRandom`] and reaches ring through its deprecated
//! `test::rand::FixedSliceRandom`, which copies a slice we fill from `rng` into the
//! buffer ring asks for. That slice must have exactly the length ring asks for, so
//! this module draws exactly what ring 0.17 requests:
//! - ECDSA key setup: the curve's scalar-seed length (32 or 48 bytes), hashed by ring
//!   with the private key into the key its nonces are derived from;
//! - ECDSA signing: the hash's block length less its output length (32 bytes for
//!   SHA-256, 80 for SHA-384), hashed by ring with that key and the message digest
//!   into the nonce (hedged nonces). If ring rejects the nonce (probability below
//!   2^-32) we draw again, up to [`MAX_NONCE_DRAWS`] times;
//! - PSS signing: the salt, the hash length; PKCS#1 v1.5 and Ed25519 draw nothing.
//!
//! The conformance suite signs with every scheme, so a ring release that asks for
//! other lengths fails the tests (as a panic inside ring) rather than in use unnoticed;
//! `Cargo.lock` pins ring.
//!
//! # Key hygiene
//! ring keeps private keys in its own types, which it does not zeroize. Our copies of
//! the random bytes are zeroized; the caller zeroizes the DER it passed in.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ipsec_crypto::keys::{self, EcCurve, PrivateKey, PublicKey};
use ipsec_crypto::{
    CryptoError, SecureRandom, SignatureScheme, SignatureVerifier, Signer, SigningAlgorithm,
};
use ring::agreement;
use ring::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, RsaEncoding, RsaKeyPair,
    UnparsedPublicKey, VerificationAlgorithm,
};
use zeroize::Zeroizing;

/// How often an ECDSA signature is tried with fresh random bytes before
/// [`Signer::sign`] gives up with [`CryptoError::Random`].
pub const MAX_NONCE_DRAWS: usize = 16;

/// The largest RSA modulus ring signs with, in bits.
const RSA_SIGNING_MAX_BITS: usize = 4096;

/// How a scheme signs.
#[derive(Clone, Copy)]
enum Kind {
    Ecdsa {
        curve: EcCurve,
        signing: &'static EcdsaSigningAlgorithm,
        /// For computing a public key that a SEC1 key leaves out.
        agreement: &'static agreement::Algorithm,
        /// Bytes ring draws at key setup.
        seed_len: usize,
        /// Bytes ring draws per signature.
        nonce_len: usize,
    },
    Ed25519,
    Rsa {
        encoding: &'static dyn RsaEncoding,
        /// PSS salt length (the hash length); 0 for PKCS#1 v1.5.
        salt_len: usize,
    },
}

/// A signature scheme implemented by ring; the instances are the statics of this
/// crate (`ECDSA_P256_SHA256`, `ED25519`, `RSA_PSS_SHA256`...).
pub struct RingSignature {
    scheme: SignatureScheme,
    name: &'static str,
    verification: &'static dyn VerificationAlgorithm,
    kind: Kind,
}

impl RingSignature {
    pub(crate) const fn ecdsa(
        scheme: SignatureScheme,
        name: &'static str,
        verification: &'static signature::EcdsaVerificationAlgorithm,
        signing: &'static EcdsaSigningAlgorithm,
    ) -> Self {
        let (curve, agreement, seed_len, nonce_len) = match scheme {
            SignatureScheme::EcdsaP384Sha384 | SignatureScheme::EcdsaP384Sha384Fixed => {
                (EcCurve::P384, &agreement::ECDH_P384, 48, 128 - 48)
            }
            _ => (EcCurve::P256, &agreement::ECDH_P256, 32, 64 - 32),
        };
        Self {
            scheme,
            name,
            verification,
            kind: Kind::Ecdsa {
                curve,
                signing,
                agreement,
                seed_len,
                nonce_len,
            },
        }
    }

    pub(crate) const fn ed25519() -> Self {
        Self {
            scheme: SignatureScheme::Ed25519,
            name: "Ed25519",
            verification: &signature::ED25519,
            kind: Kind::Ed25519,
        }
    }

    pub(crate) const fn rsa(
        scheme: SignatureScheme,
        name: &'static str,
        verification: &'static signature::RsaParameters,
        encoding: &'static dyn RsaEncoding,
        salt_len: usize,
    ) -> Self {
        Self {
            scheme,
            name,
            verification,
            kind: Kind::Rsa { encoding, salt_len },
        }
    }
}

impl fmt::Debug for RingSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl SignatureVerifier for RingSignature {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        crate::BACKEND
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let raw = match (keys::parse_spki(public_key)?, self.kind) {
            (PublicKey::Ec { curve, point }, Kind::Ecdsa { curve: c, .. }) if curve == c => point,
            (PublicKey::Ed25519(k), Kind::Ed25519) => k,
            (PublicKey::Rsa { pkcs1, .. }, Kind::Rsa { .. }) => pkcs1,
            _ => return Err(CryptoError::InvalidKey),
        };
        UnparsedPublicKey::new(self.verification, raw)
            .verify(message, signature)
            .map_err(|_| CryptoError::Authentication)
    }
}

/// A scheme that ring verifies and we never sign with: RSASSA-PKCS1-v1_5 with SHA-1
/// (IKEv2 AUTH method 1, RFC 7296 §3.8); the instance is `RSA_PKCS1_SHA1`. It is a
/// [`SignatureVerifier`] only, so it cannot be listed among a provider's signers.
pub struct RingVerifier {
    scheme: SignatureScheme,
    name: &'static str,
    /// RSA verification parameters: the key must be an RSA key.
    verification: &'static signature::RsaParameters,
}

impl RingVerifier {
    pub(crate) const fn rsa(
        scheme: SignatureScheme,
        name: &'static str,
        verification: &'static signature::RsaParameters,
    ) -> Self {
        Self {
            scheme,
            name,
            verification,
        }
    }
}

impl fmt::Debug for RingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring, verification only)", self.name)
    }
}

impl SignatureVerifier for RingVerifier {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        crate::BACKEND
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let PublicKey::Rsa { pkcs1, .. } = keys::parse_spki(public_key)? else {
            return Err(CryptoError::InvalidKey);
        };
        UnparsedPublicKey::new(self.verification, pkcs1)
            .verify(message, signature)
            .map_err(|_| CryptoError::Authentication)
    }
}

/// A ring [`FixedSliceRandom`](ring::test::rand::FixedSliceRandom) over `bytes`: see
/// the [module docs](self#randomness).
#[allow(deprecated)]
fn fixed(bytes: &[u8]) -> ring::test::rand::FixedSliceRandom<'_> {
    ring::test::rand::FixedSliceRandom { bytes }
}

/// `len` bytes from `rng`, zeroized on drop.
fn draw(rng: &dyn SecureRandom, len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut v = Zeroizing::new(alloc::vec![0u8; len]);
    rng.fill(&mut v)?;
    Ok(v)
}

/// The uncompressed point of `scalar`, through ring's ECDH key generation (the only
/// public scalar multiplication ring has).
fn public_point(
    alg: &'static agreement::Algorithm,
    scalar: &[u8],
) -> Result<agreement::PublicKey, CryptoError> {
    let private = agreement::EphemeralPrivateKey::generate(alg, &fixed(scalar))
        .map_err(|_| CryptoError::InvalidKey)?;
    private
        .compute_public_key()
        .map_err(|_| CryptoError::InvalidKey)
}

impl SigningAlgorithm for RingSignature {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn backend(&self) -> &'static str {
        crate::BACKEND
    }

    fn new_signer(
        &self,
        private_key: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, CryptoError> {
        let key = keys::parse_private_key(private_key)?;
        let inner = match (key, self.kind) {
            (
                PrivateKey::Ec {
                    curve,
                    scalar,
                    public,
                },
                Kind::Ecdsa {
                    curve: c,
                    signing,
                    agreement,
                    seed_len,
                    ..
                },
            ) if curve == c => {
                let computed;
                let public = match public {
                    Some(p) => p,
                    None => {
                        computed = public_point(agreement, scalar)?;
                        computed.as_ref()
                    }
                };
                let seed = draw(rng, seed_len)?;
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    signing,
                    scalar,
                    public,
                    &fixed(&seed),
                )
                .map_err(|_| CryptoError::InvalidKey)?;
                Inner::Ecdsa(pair)
            }
            (PrivateKey::Ed25519 { seed, public }, Kind::Ed25519) => {
                let pair = match public {
                    Some(p) => Ed25519KeyPair::from_seed_and_public_key(seed, p),
                    None => Ed25519KeyPair::from_seed_unchecked(seed),
                }
                .map_err(|_| CryptoError::InvalidKey)?;
                Inner::Ed25519(pair)
            }
            (PrivateKey::Rsa { pkcs1, modulus }, Kind::Rsa { .. }) => {
                let bits = (modulus.len() * 8)
                    .saturating_sub(modulus.first().map_or(8, |b| b.leading_zeros() as usize));
                if bits > RSA_SIGNING_MAX_BITS {
                    return Err(CryptoError::Unsupported);
                }
                Inner::Rsa(RsaKeyPair::from_der(pkcs1).map_err(|_| CryptoError::InvalidKey)?)
            }
            _ => return Err(CryptoError::InvalidKey),
        };
        Ok(Box::new(RingSigner {
            scheme: self.scheme,
            name: self.name,
            kind: self.kind,
            inner,
        }))
    }
}

/// ring's key pair for one of the schemes.
enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key in ring's hands.
struct RingSigner {
    scheme: SignatureScheme,
    name: &'static str,
    kind: Kind,
    inner: Inner,
}

impl fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} signer (ring)", self.name)
    }
}

impl Signer for RingSigner {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn sign(&self, rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match (&self.inner, self.kind) {
            (Inner::Ecdsa(pair), Kind::Ecdsa { nonce_len, .. }) => {
                for _ in 0..MAX_NONCE_DRAWS {
                    let bytes = draw(rng, nonce_len)?;
                    if let Ok(sig) = pair.sign(&fixed(&bytes), message) {
                        return Ok(sig.as_ref().to_vec());
                    }
                }
                Err(CryptoError::Random)
            }
            (Inner::Ed25519(pair), _) => Ok(pair.sign(message).as_ref().to_vec()),
            (Inner::Rsa(pair), Kind::Rsa { encoding, salt_len }) => {
                let salt = draw(rng, salt_len)?;
                let mut sig = alloc::vec![0u8; pair.public().modulus_len()];
                pair.sign(encoding, &fixed(&salt), message, &mut sig)
                    .map_err(|_| CryptoError::Unsupported)?;
                Ok(sig)
            }
            _ => Err(CryptoError::Unsupported),
        }
    }
}
