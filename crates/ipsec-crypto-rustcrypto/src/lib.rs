//! Pure-Rust crypto backend for the IPsec workspace, built on the RustCrypto crates.
//!
//! It implements the [`ipsec_crypto`] provider traits; no RustCrypto type appears in
//! its API, so the RustCrypto versions can change without breaking users.
//!
//! | transform | objects |
//! |---|---|
//! | ENCR_AES_GCM_16 (RFC 4106, RFC 5282) | [`AES_128_GCM`], [`AES_256_GCM`] |
//! | ENCR_CHACHA20_POLY1305 (RFC 7634) | [`CHACHA20_POLY1305`] |
//! | ENCR_NULL_AUTH_AES_GMAC (RFC 4543) | through the AES-GCM objects, see [`CryptoProvider::aead_for`] |
//! | ENCR_AES_CBC (RFC 3602) | [`AES_128_CBC`], [`AES_256_CBC`] |
//! | ENCR_AES_CTR (RFC 3686, RFC 5930) | [`AES_128_CTR`], [`AES_192_CTR`], [`AES_256_CTR`] |
//! | ENCR_AES_CCM_8/12/16 (RFC 4309, RFC 5282) | `AES_{128,192,256}_CCM_{8,12,16}`, e.g. [`AES_128_CCM_16`] |
//! | AUTH_HMAC_SHA1_96, AUTH_HMAC_SHA2_* (RFC 2404, RFC 4868) | [`HMAC_SHA1_96`], [`HMAC_SHA256_128`], [`HMAC_SHA384_192`], [`HMAC_SHA512_256`] |
//! | PRF_HMAC_SHA1, PRF_HMAC_SHA2_* (RFC 2104, RFC 4868) | [`PRF_HMAC_SHA1`], [`PRF_HMAC_SHA256`], [`PRF_HMAC_SHA384`], [`PRF_HMAC_SHA512`] |
//! | Curve25519, Curve448 (RFC 8031) | [`X25519`], [`X448`] |
//! | ECP-256, ECP-384, ECP-521 (RFC 5903) | [`ECP256`], [`ECP384`], [`ECP521`] |
//! | MODP-2048, MODP-3072, MODP-4096 (RFC 3526) | [`MODP2048`], [`MODP3072`], [`MODP4096`] |
//! | ML-KEM-512/768/1024 (FIPS 203, draft-ietf-ipsecme-ikev2-mlkem), on `libcrux-ml-kem` | [`ML_KEM_512`], [`ML_KEM_768`], [`ML_KEM_1024`] |
//! | ECDSA P-256/SHA-256, P-384/SHA-384, DER (RFC 7427) and `r ‖ s` (RFC 4754): sign and verify | [`ECDSA_P256_SHA256`], [`ECDSA_P384_SHA384`], [`ECDSA_P256_SHA256_FIXED`], [`ECDSA_P384_SHA384_FIXED`] |
//! | Ed25519 (RFC 8032, RFC 8420): sign and verify | [`ED25519`] |
//! | RSASSA-PKCS1-v1_5 and RSASSA-PSS with SHA-256/384/512 (RFC 8017): **verify only** | [`RSA_PKCS1_SHA256`], [`RSA_PKCS1_SHA384`], [`RSA_PKCS1_SHA512`], [`RSA_PSS_SHA256`], [`RSA_PSS_SHA384`], [`RSA_PSS_SHA512`] |
//! | RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017; IKEv2 AUTH method 1, RFC 7296 §3.8): **verify only**, in every backend | [`RSA_PKCS1_SHA1`] |
//!
//! [`PROVIDER`] lists all of them with the operating system's random source
//! ([`OS_RANDOM`]); ENCR_NULL comes from [`ipsec_crypto::NULL_CIPHER`] automatically.
//!
//! # Features and `no_std`
//!
//! The crate is `no_std` and needs `alloc`. The `std` feature (on by default) adds
//! [`OS_RANDOM`] and [`PROVIDER`]. Without it, build a provider with
//! [`provider_with_random`] and your own [`SecureRandom`].
//!
//! Each algorithm family is a feature, all on by default (`all`), so that an embedder
//! compiles only what it runs; the provider lists what the enabled features bring:
//!
//! | feature | algorithms | crates it brings |
//! |---|---|---|
//! | `aead` | AES-GCM, AES-GMAC, ChaCha20-Poly1305, AES-CCM | `aes-gcm`, `chacha20poly1305`, `aes`, `ccm` |
//! | `cbc` | AES-CBC | `aes`, `cbc` |
//! | `ctr` | AES-CTR | `aes`, `ctr` |
//! | `hmac` | HMAC-SHA1/SHA2 integrity and PRFs | `hmac`, `sha1`, `sha2` |
//! | `kx` | X25519, X448, ECP-256/384/521, MODP-2048/3072/4096 | `x25519-dalek`, `x448`, `p256`, `p384`, `p521`, `crypto-bigint` |
//! | `sig` | ECDSA, Ed25519, RSA verification | `p256`, `p384`, `ed25519-dalek`, `rsa` |
//! | `mlkem` | ML-KEM-512/768/1024 | `libcrux-ml-kem` (pure Rust, formally verified; why this crate and not RustCrypto's `ml-kem`: see the `mlkem` module source and docs/performance.md) |
//!
//! ESP with AES-GCM (or AES-CCM) takes `default-features = false, features = ["std",
//! "aead"]`: no elliptic-curve or bignum crate in the build (CI checks the dependency
//! tree); AES-CTR with HMAC takes `ctr` and `hmac`, likewise free of them.
//!
//! # Why these crates
//!
//! - AES-CTR and AES-CCM are RustCrypto's `ctr` 0.9 and `ccm` 0.5, the releases on the
//!   same `cipher` 0.4 / `aead` 0.5 line as `aes-gcm` 0.10 (one copy of `aes`).
//! - ECP-521 is `p521` 0.13, the release of the `elliptic-curve` 0.13 line that
//!   `p256`/`p384` are on, so one generic ECDH serves all three curves.
//! - X448 is RustCrypto's `x448` (over `ed448-goldilocks`), which is maintained with
//!   the other curves of the project. Its only release line is a pre-release
//!   (`0.14.0-pre`), pinned exactly; the older `x448` 0.6 of the crate-crypto
//!   organisation sits on `ed448-goldilocks` 0.7 and `rand_core` 0.5, unmaintained
//!   since the project moved to RustCrypto. The pre-release brings the next
//!   `elliptic-curve` (0.14) and `crypto-bigint` (0.7) lines with it, in the `kx`
//!   feature only.
//!
//! # Side channels
//!
//! - AES: the `aes` crate uses AES-NI or ARMv8 instructions where the CPU has them,
//!   and otherwise a bitsliced ("fixslice") software implementation without
//!   secret-dependent table lookups. GHASH and Poly1305 likewise avoid secret-indexed
//!   tables.
//! - ICVs and tags are compared in constant time (`subtle`).
//! - X25519 uses x25519-dalek's Montgomery ladder, X448 the constant-time Montgomery
//!   ladder of `ed448-goldilocks`; P-256, P-384 and P-521 use the constant-time
//!   field and scalar arithmetic of the `p256`, `p384` and `p521` crates.
//! - AES-CTR and AES-CCM run on the same `aes` crate as AES-GCM; CCM's CBC-MAC tag
//!   is compared in constant time by the `ccm` crate.
//! - MODP groups use **crypto-bigint**'s `DynResidue::pow_bounded_exp`. It is
//!   constant time because crypto-bigint works on fixed-size limb arrays with
//!   Montgomery multiplication that has no data-dependent branches or final
//!   conditional subtraction by branch, and its fixed-window exponentiation does the
//!   same squarings and one multiplication for every 4-bit window and reads the
//!   table with a constant-time select over all entries. Only the exponent's bit
//!   bound (public, 512 bits) shows in the timing.
//!
//! - ECDSA signs deterministically (RFC 6979) with the constant-time scalar
//!   arithmetic of `p256`/`p384`; Ed25519 uses `ed25519-dalek`.
//! - ML-KEM is libcrux's: constant-time patterns without secret-dependent branches or
//!   table lookups (best effort, checked by its authors on the generated assembly);
//!   its arithmetic and algorithms are formally verified with hax and F\*.
//! - There is no RSA signing: the `rsa` crate's private-key operation has a known
//!   timing side channel (RUSTSEC-2023-0071). RSA verification handles public values
//!   only. The `ipsec` facade signs with ring.
//!
//! # Key hygiene
//!
//! Key objects zeroize their keys on drop where the RustCrypto crate supports it:
//! AES (key schedules, also inside AES-CTR and AES-CCM), AES-GCM, ChaCha20-Poly1305,
//! X25519 and X448 secrets, P-256, P-384 and P-521 secret scalars (ECDH and ECDSA),
//! Ed25519 signing keys, and MODP exponents. hmac 0.12 cannot zeroize its keyed state.
//!
//! # Example
//!
//! ```
//! use ipsec_crypto::EncrId;
//! use ipsec_crypto_rustcrypto::PROVIDER;
//!
//! let aead = PROVIDER.aead(EncrId::ENCR_AES_GCM_16, 32).unwrap();
//! let key = aead.new_key(&[7u8; 32]).unwrap();
//! let mut data = *b"inner packet";
//! let mut tag = [0u8; 16];
//! key.seal_detached(&[1u8; 12], b"spi+seq", &mut data, &mut tag).unwrap();
//! key.open_detached(&[1u8; 12], b"spi+seq", &mut data, &tag).unwrap();
//! assert_eq!(&data, b"inner packet");
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[allow(unused_extern_crates)] // unused only when no algorithm feature is on
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "aead")]
mod aead;
#[cfg(feature = "cbc")]
mod cbc;
#[cfg(feature = "ctr")]
mod ctr;
#[cfg(feature = "kx")]
mod curve448;
#[cfg(feature = "kx")]
mod ecp;
#[cfg(feature = "hmac")]
mod hmac;
#[cfg(feature = "mlkem")]
mod mlkem;
#[cfg(feature = "kx")]
mod modp;
#[cfg(feature = "std")]
mod random;
#[cfg(feature = "sig")]
mod sig;
#[cfg(feature = "kx")]
mod x25519;

use ipsec_crypto::{
    AeadAlgorithm, CipherAlgorithm, Compliance, CryptoProvider, IntegAlgorithm, KxGroup,
    PrfAlgorithm, SecureRandom, SignatureVerifier, SigningAlgorithm,
};

#[cfg(feature = "aead")]
pub use crate::aead::{
    Aead, AES_128_CCM_12, AES_128_CCM_16, AES_128_CCM_8, AES_128_GCM, AES_128_GMAC, AES_192_CCM_12,
    AES_192_CCM_16, AES_192_CCM_8, AES_256_CCM_12, AES_256_CCM_16, AES_256_CCM_8, AES_256_GCM,
    AES_256_GMAC, CHACHA20_POLY1305,
};
#[cfg(feature = "cbc")]
pub use crate::cbc::{AesCbc, AES_128_CBC, AES_256_CBC};
#[cfg(feature = "ctr")]
pub use crate::ctr::{AesCtr, AES_128_CTR, AES_192_CTR, AES_256_CTR};
#[cfg(feature = "kx")]
pub use crate::curve448::{X448Group, X448};
#[cfg(feature = "kx")]
pub use crate::ecp::{EcpGroup, ECP256, ECP384, ECP521};
#[cfg(feature = "hmac")]
pub use crate::hmac::{
    HmacInteg, HmacPrf, HMAC_SHA1_96, HMAC_SHA256_128, HMAC_SHA384_192, HMAC_SHA512_256,
    PRF_HMAC_SHA1, PRF_HMAC_SHA256, PRF_HMAC_SHA384, PRF_HMAC_SHA512,
};
#[cfg(feature = "mlkem")]
pub use crate::mlkem::{MlKemGroup, ML_KEM_1024, ML_KEM_512, ML_KEM_768};
#[cfg(feature = "kx")]
pub use crate::modp::{ModpGroup, MODP2048, MODP3072, MODP4096};
#[cfg(feature = "std")]
pub use crate::random::{OsRandom, OS_RANDOM};
#[cfg(feature = "sig")]
pub use crate::sig::{
    Ecdsa, Ed25519, RsaVerifier, ECDSA_P256_SHA256, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384,
    ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_SHA1, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384,
    RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512,
};
#[cfg(feature = "kx")]
pub use crate::x25519::{X25519Group, X25519};

/// What every algorithm object here returns from `backend()`.
pub const BACKEND: &str = "rustcrypto";

// The lists hold what the enabled features bring (see the crate docs, "Features").

/// The AEADs, in order of preference.
static AEADS: &[&dyn AeadAlgorithm] = &[
    #[cfg(feature = "aead")]
    &AES_256_GCM,
    #[cfg(feature = "aead")]
    &AES_128_GCM,
    #[cfg(feature = "aead")]
    &CHACHA20_POLY1305,
    #[cfg(feature = "aead")]
    &AES_256_CCM_16,
    #[cfg(feature = "aead")]
    &AES_192_CCM_16,
    #[cfg(feature = "aead")]
    &AES_128_CCM_16,
    #[cfg(feature = "aead")]
    &AES_256_CCM_12,
    #[cfg(feature = "aead")]
    &AES_192_CCM_12,
    #[cfg(feature = "aead")]
    &AES_128_CCM_12,
    #[cfg(feature = "aead")]
    &AES_256_CCM_8,
    #[cfg(feature = "aead")]
    &AES_192_CCM_8,
    #[cfg(feature = "aead")]
    &AES_128_CCM_8,
];
/// The block ciphers.
static CIPHERS: &[&dyn CipherAlgorithm] = &[
    #[cfg(feature = "cbc")]
    &AES_256_CBC,
    #[cfg(feature = "cbc")]
    &AES_128_CBC,
    #[cfg(feature = "ctr")]
    &AES_256_CTR,
    #[cfg(feature = "ctr")]
    &AES_192_CTR,
    #[cfg(feature = "ctr")]
    &AES_128_CTR,
];
/// The integrity algorithms.
static INTEGS: &[&dyn IntegAlgorithm] = &[
    #[cfg(feature = "hmac")]
    &HMAC_SHA256_128,
    #[cfg(feature = "hmac")]
    &HMAC_SHA384_192,
    #[cfg(feature = "hmac")]
    &HMAC_SHA512_256,
    #[cfg(feature = "hmac")]
    &HMAC_SHA1_96,
];
/// The PRFs.
static PRFS: &[&dyn PrfAlgorithm] = &[
    #[cfg(feature = "hmac")]
    &PRF_HMAC_SHA256,
    #[cfg(feature = "hmac")]
    &PRF_HMAC_SHA384,
    #[cfg(feature = "hmac")]
    &PRF_HMAC_SHA512,
    #[cfg(feature = "hmac")]
    &PRF_HMAC_SHA1,
];
/// The key exchange methods.
static KX_GROUPS: &[&dyn KxGroup] = &[
    #[cfg(feature = "kx")]
    &X25519,
    #[cfg(feature = "kx")]
    &ECP256,
    #[cfg(feature = "kx")]
    &ECP384,
    #[cfg(feature = "kx")]
    &MODP3072,
    #[cfg(feature = "kx")]
    &MODP2048,
    #[cfg(feature = "kx")]
    &ECP521,
    #[cfg(feature = "kx")]
    &X448,
    #[cfg(feature = "kx")]
    &MODP4096,
    #[cfg(feature = "mlkem")]
    &ML_KEM_768,
    #[cfg(feature = "mlkem")]
    &ML_KEM_1024,
    #[cfg(feature = "mlkem")]
    &ML_KEM_512,
];

/// The signature verifiers.
#[cfg(feature = "sig")]
static SIGNATURE_VERIFIERS: &[&dyn SignatureVerifier] = &[
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
#[cfg(not(feature = "sig"))]
static SIGNATURE_VERIFIERS: &[&dyn SignatureVerifier] = &[];
/// The signing algorithms (no RSA: see the crate docs).
#[cfg(feature = "sig")]
static SIGNERS: &[&dyn SigningAlgorithm] = &[
    &ED25519,
    &ECDSA_P256_SHA256,
    &ECDSA_P384_SHA384,
    &ECDSA_P256_SHA256_FIXED,
    &ECDSA_P384_SHA384_FIXED,
];
#[cfg(not(feature = "sig"))]
static SIGNERS: &[&dyn SigningAlgorithm] = &[];

/// A provider with every algorithm of this backend and `rng` as its random source;
/// for `no_std` users, who bring their own.
pub const fn provider_with_random(rng: &'static dyn SecureRandom) -> CryptoProvider {
    CryptoProvider {
        name: BACKEND,
        aeads: AEADS,
        ciphers: CIPHERS,
        integs: INTEGS,
        prfs: PRFS,
        kx_groups: KX_GROUPS,
        signature_verifiers: SIGNATURE_VERIFIERS,
        signers: SIGNERS,
        secure_random: rng,
        compliance: Compliance::Unvalidated,
    }
}

/// Every algorithm of this backend, with [`OS_RANDOM`].
#[cfg(feature = "std")]
pub static PROVIDER: CryptoProvider = provider_with_random(&OS_RANDOM);

#[cfg(all(
    test,
    feature = "std",
    feature = "aead",
    feature = "cbc",
    feature = "ctr",
    feature = "hmac",
    feature = "kx",
    feature = "sig",
    feature = "mlkem"
))]
mod tests {
    use ipsec_crypto::suites;

    use super::*;

    #[test]
    fn provider_runs_every_suite() {
        for d in suites::ENCR {
            assert!(PROVIDER.supports_encr(d), "{}", d.name);
        }
        for d in suites::INTEG {
            assert_eq!(
                PROVIDER.integ(d.id).map(|a| (a.key_len(), a.icv_len())),
                Some((d.key_len, d.icv_len))
            );
        }
        for d in suites::PRF {
            assert_eq!(
                PROVIDER.prf(d.id).map(|a| a.output_len()),
                Some(d.output_len)
            );
        }
        for d in suites::KE {
            assert_eq!(
                PROVIDER
                    .kx(d.id)
                    .map(|g| (g.public_len(), g.response_len())),
                Some((d.public_len, d.response_len())),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn every_object_names_this_backend() {
        let p = &PROVIDER;
        let names = p
            .aeads
            .iter()
            .map(|a| a.backend())
            .chain(p.ciphers.iter().map(|a| a.backend()))
            .chain(p.integs.iter().map(|a| a.backend()))
            .chain(p.prfs.iter().map(|a| a.backend()))
            .chain(p.kx_groups.iter().map(|a| a.backend()))
            .chain(p.signature_verifiers.iter().map(|a| a.backend()))
            .chain(p.signers.iter().map(|a| a.backend()));
        for n in names {
            assert_eq!(n, "rustcrypto");
        }
        assert_eq!(p.name, "rustcrypto");
    }

    #[test]
    fn os_random_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OS_RANDOM.fill(&mut a).unwrap();
        OS_RANDOM.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn ecp_redraws_out_of_range_scalars() {
        #[derive(Debug)]
        struct Seq(std::sync::Mutex<std::vec::Vec<u8>>);
        impl SecureRandom for Seq {
            fn fill(&self, dest: &mut [u8]) -> Result<(), ipsec_crypto::CryptoError> {
                let mut v = self.0.lock().unwrap();
                let rest = v.split_off(dest.len());
                dest.copy_from_slice(&v);
                *v = rest;
                Ok(())
            }
        }
        // First draw: all ones (above the group order); second: zero; third: one.
        let mut bytes = std::vec![0xff; 32];
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&[0; 31]);
        bytes.push(1);
        let rng = Seq(std::sync::Mutex::new(bytes));
        let kx = ECP256.start(&rng).unwrap();
        // 1 * G is the generator (x of P-256's G).
        assert_eq!(kx.public()[..4], [0x6b, 0x17, 0xd1, 0xf2]);
        assert!(rng.0.lock().unwrap().is_empty());
    }

    #[test]
    fn broken_random_source_is_an_error() {
        #[derive(Debug)]
        struct Broken;
        impl SecureRandom for Broken {
            fn fill(&self, _: &mut [u8]) -> Result<(), ipsec_crypto::CryptoError> {
                Err(ipsec_crypto::CryptoError::Random)
            }
        }
        for g in PROVIDER.kx_groups {
            assert_eq!(
                g.start(&Broken).err(),
                Some(ipsec_crypto::CryptoError::Random)
            );
        }
    }
}

/// The ML-KEM internals for the conformance suite's decapsulation vectors
/// (`ipsec_crypto::testkit::check_mlkem_internals`), over the functions the
/// [`KxGroup`] objects run.
#[cfg(all(test, feature = "std", feature = "mlkem"))]
mod mlkem_kat {
    use std::vec::Vec;

    use ipsec_crypto::testkit::{check_mlkem_internals, MlKemInternals};
    use ipsec_crypto::{mlkem, CryptoError, KeId, SecretBytes, SharedSecret};

    struct Internals;

    impl MlKemInternals for Internals {
        fn backend(&self) -> &'static str {
            crate::BACKEND
        }

        fn keygen_internal(
            &self,
            id: KeId,
            d: &[u8; 32],
            z: &[u8; 32],
        ) -> Result<Option<(Vec<u8>, SecretBytes)>, CryptoError> {
            let p = mlkem::params(id).ok_or(CryptoError::Unsupported)?;
            let mut seed = [0u8; 64];
            seed[..32].copy_from_slice(d);
            seed[32..].copy_from_slice(z);
            crate::mlkem::keygen(p, &seed).map(Some)
        }

        fn decapsulate(&self, id: KeId, dk: &[u8], c: &[u8]) -> Result<SharedSecret, CryptoError> {
            let p = mlkem::params(id).ok_or(CryptoError::Unsupported)?;
            crate::mlkem::decapsulate(p, dk, c)
        }
    }

    #[test]
    fn acvp_vectors() {
        let n = check_mlkem_internals(&crate::PROVIDER, &Internals);
        // 6 keyGen; 6 encapsulation (decaps + respond) and 9 decapsulation vectors,
        // each with 5 wrong lengths.
        assert_eq!(n, 6 + 6 * 7 + 9 * 6);
    }
}
