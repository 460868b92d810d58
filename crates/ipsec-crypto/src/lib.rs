//! Crypto provider traits for the IPsec workspace.
//!
//! The ESP, AH and IKE layers never see a concrete crypto library: they talk to the
//! object-safe traits of [`traits`], found through a [`CryptoProvider`]. Backends
//! (`ipsec-crypto-rustcrypto`, `ipsec-crypto-ring`) implement them, and a provider can
//! mix backends transform by transform.
//!
//! Besides the traits this crate holds what is the same for every backend:
//! - [`suites`]: static descriptions of each transform with its IANA id, key, salt, IV
//!   and ICV lengths and its strongSwan-style proposal token;
//! - [`proposal`]: parsing and printing of proposal strings such as
//!   `aes128gcm16-prfsha256-x25519`;
//! - [`kdf`]: the IKEv2 key schedule (RFC 7296 §2.13, §2.14, §2.17, §2.18), built once
//!   on the [`PrfAlgorithm`] trait;
//! - [`keys`]: the DER key encodings the signature traits take (SubjectPublicKeyInfo,
//!   PKCS#8, SEC1, PKCS#1), parsed once for every backend;
//! - [`mlkem`]: the ML-KEM (FIPS 203) parameter sets and the input checks every
//!   backend runs on a peer's encapsulation key and ciphertext;
//! - [`SecretBytes`]: key material that is zeroized on drop and never printed;
//! - [`NULL_CIPHER`]: ENCR_NULL (RFC 2410), which needs no backend.
//!
//! With the `testkit` feature, the `testkit` module is the known-answer conformance suite
//! that every backend runs through the `conformance_tests!` macro.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod error;
pub mod kdf;
pub mod keys;
pub mod mlkem;
pub mod null;
pub mod proposal;
pub mod provider;
pub mod secret;
pub mod suites;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod traits;

pub use error::CryptoError;
pub use ipsec_core::iana::{EncrId, EsnId, IntegId, KeId, PrfId, TransformType};
pub use null::NULL_CIPHER;
pub use proposal::{Proposal, ProposalError, ProposalKind};
pub use provider::{Compliance, CryptoProvider};
pub use secret::{SecretBytes, SharedSecret};
pub use suites::{EncrDesc, EncrKind, IntegDesc, KeDesc, PrfDesc};
pub use traits::{
    ActiveKx, AeadAlgorithm, AeadKey, CipherAlgorithm, CipherKey, IntegAlgorithm, IntegKey,
    KxGroup, PrfAlgorithm, PrfKey, SecureRandom, SignatureScheme, SignatureVerifier, Signer,
    SigningAlgorithm,
};
