#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod aead;
mod hmac;
pub mod kx;
mod rand;
pub mod sig;

use ipsec_crypto::{
    Compliance, CryptoProvider, EncrId, IntegId, KeId, PrfId, SignatureScheme, SignatureVerifier,
    SigningAlgorithm,
};

pub use crate::aead::RingAead;
pub use crate::hmac::{RingInteg, RingPrf};
pub use crate::kx::RingKx;
pub use crate::rand::SystemRandom;
pub use crate::sig::{RingSignature, RingVerifier};

/// What [`backend()`](ipsec_crypto::AeadAlgorithm::backend) returns for every
/// algorithm of this crate.
pub const BACKEND: &str = "ring";

/// AES-128-GCM with a 16-byte ICV (`ENCR_AES_GCM_16`, RFC 4106): 16-byte key,
/// 12-byte nonce.
pub static AES_128_GCM: RingAead = RingAead::new(
    EncrId::ENCR_AES_GCM_16,
    "AES-128-GCM",
    &::ring::aead::AES_128_GCM,
);

/// AES-256-GCM with a 16-byte ICV (`ENCR_AES_GCM_16`, RFC 4106): 32-byte key,
/// 12-byte nonce.
pub static AES_256_GCM: RingAead = RingAead::new(
    EncrId::ENCR_AES_GCM_16,
    "AES-256-GCM",
    &::ring::aead::AES_256_GCM,
);

/// ChaCha20-Poly1305 (`ENCR_CHACHA20_POLY1305`, RFC 7634): 32-byte key, 12-byte
/// nonce.
pub static CHACHA20_POLY1305: RingAead = RingAead::new(
    EncrId::ENCR_CHACHA20_POLY1305,
    "ChaCha20-Poly1305",
    &::ring::aead::CHACHA20_POLY1305,
);

/// HMAC-SHA1-96 (`AUTH_HMAC_SHA1_96`, RFC 2404): 20-byte key, 12-byte ICV.
pub static HMAC_SHA1_96: RingInteg = RingInteg::new(
    IntegId::AUTH_HMAC_SHA1_96,
    "HMAC-SHA1-96",
    ::ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
    20,
    12,
);

/// HMAC-SHA2-256-128 (`AUTH_HMAC_SHA2_256_128`, RFC 4868): 32-byte key, 16-byte ICV.
pub static HMAC_SHA256_128: RingInteg = RingInteg::new(
    IntegId::AUTH_HMAC_SHA2_256_128,
    "HMAC-SHA2-256-128",
    ::ring::hmac::HMAC_SHA256,
    32,
    16,
);

/// HMAC-SHA2-384-192 (`AUTH_HMAC_SHA2_384_192`, RFC 4868): 48-byte key, 24-byte ICV.
pub static HMAC_SHA384_192: RingInteg = RingInteg::new(
    IntegId::AUTH_HMAC_SHA2_384_192,
    "HMAC-SHA2-384-192",
    ::ring::hmac::HMAC_SHA384,
    48,
    24,
);

/// HMAC-SHA2-512-256 (`AUTH_HMAC_SHA2_512_256`, RFC 4868): 64-byte key, 32-byte ICV.
pub static HMAC_SHA512_256: RingInteg = RingInteg::new(
    IntegId::AUTH_HMAC_SHA2_512_256,
    "HMAC-SHA2-512-256",
    ::ring::hmac::HMAC_SHA512,
    64,
    32,
);

/// PRF_HMAC_SHA1 (RFC 2104): 20-byte output.
pub static PRF_HMAC_SHA1: RingPrf = RingPrf::new(
    PrfId::PRF_HMAC_SHA1,
    "PRF-HMAC-SHA1",
    ::ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
);

/// PRF_HMAC_SHA2_256 (RFC 4868): 32-byte output.
pub static PRF_HMAC_SHA256: RingPrf = RingPrf::new(
    PrfId::PRF_HMAC_SHA2_256,
    "PRF-HMAC-SHA2-256",
    ::ring::hmac::HMAC_SHA256,
);

/// PRF_HMAC_SHA2_384 (RFC 4868): 48-byte output.
pub static PRF_HMAC_SHA384: RingPrf = RingPrf::new(
    PrfId::PRF_HMAC_SHA2_384,
    "PRF-HMAC-SHA2-384",
    ::ring::hmac::HMAC_SHA384,
);

/// PRF_HMAC_SHA2_512 (RFC 4868): 64-byte output.
pub static PRF_HMAC_SHA512: RingPrf = RingPrf::new(
    PrfId::PRF_HMAC_SHA2_512,
    "PRF-HMAC-SHA2-512",
    ::ring::hmac::HMAC_SHA512,
);

/// Curve25519 (group 31, RFC 8031): 32-byte public value and shared secret. The
/// private key is 32 bytes drawn from the `rng` argument: see [`kx`].
pub static X25519: RingKx = RingKx::x25519();

/// NIST P-256 (group 19, RFC 5903): 64-byte `x ‖ y` public value, 32-byte shared
/// secret. The private key is drawn from the `rng` argument: see [`kx`].
pub static ECP256: RingKx = RingKx::ecp(
    KeId::ECP_256,
    "NIST P-256",
    &::ring::agreement::ECDH_P256,
    32,
);

/// NIST P-384 (group 20, RFC 5903): 96-byte `x ‖ y` public value, 48-byte shared
/// secret. The private key is drawn from the `rng` argument: see [`kx`].
pub static ECP384: RingKx = RingKx::ecp(
    KeId::ECP_384,
    "NIST P-384",
    &::ring::agreement::ECDH_P384,
    48,
);

/// ECDSA on P-256 with SHA-256, DER signatures (RFC 7427 `ecdsa-with-SHA256`).
pub static ECDSA_P256_SHA256: RingSignature = RingSignature::ecdsa(
    SignatureScheme::EcdsaP256Sha256,
    "ECDSA P-256 SHA-256",
    &::ring::signature::ECDSA_P256_SHA256_ASN1,
    &::ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
);

/// ECDSA on P-384 with SHA-384, DER signatures (RFC 7427 `ecdsa-with-SHA384`).
pub static ECDSA_P384_SHA384: RingSignature = RingSignature::ecdsa(
    SignatureScheme::EcdsaP384Sha384,
    "ECDSA P-384 SHA-384",
    &::ring::signature::ECDSA_P384_SHA384_ASN1,
    &::ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
);

/// ECDSA on P-256 with SHA-256, `r ‖ s` signatures (RFC 4754, AUTH method 9).
pub static ECDSA_P256_SHA256_FIXED: RingSignature = RingSignature::ecdsa(
    SignatureScheme::EcdsaP256Sha256Fixed,
    "ECDSA P-256 SHA-256 (r||s)",
    &::ring::signature::ECDSA_P256_SHA256_FIXED,
    &::ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
);

/// ECDSA on P-384 with SHA-384, `r ‖ s` signatures (RFC 4754, AUTH method 10).
pub static ECDSA_P384_SHA384_FIXED: RingSignature = RingSignature::ecdsa(
    SignatureScheme::EcdsaP384Sha384Fixed,
    "ECDSA P-384 SHA-384 (r||s)",
    &::ring::signature::ECDSA_P384_SHA384_FIXED,
    &::ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
);

/// Ed25519 (RFC 8032, RFC 8420).
pub static ED25519: RingSignature = RingSignature::ed25519();

/// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2).
pub static RSA_PKCS1_SHA256: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPkcs1Sha256,
    "RSA PKCS#1 v1.5 SHA-256",
    &::ring::signature::RSA_PKCS1_2048_8192_SHA256,
    &::ring::signature::RSA_PKCS1_SHA256,
    0,
);

/// RSASSA-PKCS1-v1_5 with SHA-384 (RFC 8017 §8.2).
pub static RSA_PKCS1_SHA384: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPkcs1Sha384,
    "RSA PKCS#1 v1.5 SHA-384",
    &::ring::signature::RSA_PKCS1_2048_8192_SHA384,
    &::ring::signature::RSA_PKCS1_SHA384,
    0,
);

/// RSASSA-PKCS1-v1_5 with SHA-512 (RFC 8017 §8.2).
pub static RSA_PKCS1_SHA512: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPkcs1Sha512,
    "RSA PKCS#1 v1.5 SHA-512",
    &::ring::signature::RSA_PKCS1_2048_8192_SHA512,
    &::ring::signature::RSA_PKCS1_SHA512,
    0,
);

/// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 8017 §8.1).
pub static RSA_PSS_SHA256: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPssSha256,
    "RSA-PSS SHA-256",
    &::ring::signature::RSA_PSS_2048_8192_SHA256,
    &::ring::signature::RSA_PSS_SHA256,
    32,
);

/// RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt (RFC 8017 §8.1).
pub static RSA_PSS_SHA384: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPssSha384,
    "RSA-PSS SHA-384",
    &::ring::signature::RSA_PSS_2048_8192_SHA384,
    &::ring::signature::RSA_PSS_SHA384,
    48,
);

/// RSASSA-PSS with SHA-512, MGF1-SHA-512 and a 64-byte salt (RFC 8017 §8.1).
pub static RSA_PSS_SHA512: RingSignature = RingSignature::rsa(
    SignatureScheme::RsaPssSha512,
    "RSA-PSS SHA-512",
    &::ring::signature::RSA_PSS_2048_8192_SHA512,
    &::ring::signature::RSA_PSS_SHA512,
    64,
);

/// RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017 §8.2), the AUTH data of IKEv2 method 1
/// (`RSA_SIG`, RFC 7296 §3.8): verification only (ring's
/// `RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY`), and not in [`SIGNERS`]: SHA-1
/// signatures are legacy, accepted only from peers without RFC 7427; we always sign
/// with method 14.
pub static RSA_PKCS1_SHA1: RingVerifier = RingVerifier::rsa(
    SignatureScheme::RsaPkcs1Sha1,
    "RSA PKCS#1 v1.5 SHA-1",
    &::ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
);

/// Every signature scheme of this crate, as verifiers.
pub static SIGNATURE_VERIFIERS: [&dyn SignatureVerifier; 12] = [
    &ED25519,
    &ECDSA_P256_SHA256,
    &ECDSA_P384_SHA384,
    &ECDSA_P256_SHA256_FIXED,
    &ECDSA_P384_SHA384_FIXED,
    &RSA_PSS_SHA256,
    &RSA_PSS_SHA384,
    &RSA_PSS_SHA512,
    &RSA_PKCS1_SHA256,
    &RSA_PKCS1_SHA384,
    &RSA_PKCS1_SHA512,
    &RSA_PKCS1_SHA1,
];

/// Every signature scheme of this crate that it signs with: all but
/// [`RSA_PKCS1_SHA1`], which is verification only.
pub static SIGNERS: [&dyn SigningAlgorithm; 11] = [
    &ED25519,
    &ECDSA_P256_SHA256,
    &ECDSA_P384_SHA384,
    &ECDSA_P256_SHA256_FIXED,
    &ECDSA_P384_SHA384_FIXED,
    &RSA_PSS_SHA256,
    &RSA_PSS_SHA384,
    &RSA_PSS_SHA512,
    &RSA_PKCS1_SHA256,
    &RSA_PKCS1_SHA384,
    &RSA_PKCS1_SHA512,
];

/// The operating system's CSPRNG through ring.
pub static SYSTEM_RANDOM: SystemRandom = SystemRandom::new();

/// Every transform ring implements, with the OS random source.
///
/// ring has no AES-CBC and no MODP groups, so this provider alone cannot run
/// `aes128-sha256` or `modp2048` proposals; the `ipsec` facade composes it with the
/// RustCrypto backend for those.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "ring",
    aeads: &[&AES_128_GCM, &AES_256_GCM, &CHACHA20_POLY1305],
    ciphers: &[],
    integs: &[
        &HMAC_SHA256_128,
        &HMAC_SHA384_192,
        &HMAC_SHA512_256,
        &HMAC_SHA1_96,
    ],
    prfs: &[
        &PRF_HMAC_SHA256,
        &PRF_HMAC_SHA384,
        &PRF_HMAC_SHA512,
        &PRF_HMAC_SHA1,
    ],
    kx_groups: &[&X25519, &ECP256, &ECP384],
    signature_verifiers: &SIGNATURE_VERIFIERS,
    signers: &SIGNERS,
    secure_random: &SYSTEM_RANDOM,
    compliance: Compliance::Unvalidated,
};
