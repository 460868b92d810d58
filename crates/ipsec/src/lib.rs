//! IPsec for Rust: the facade over the `ipsec-*` crates.
//!
//! It re-exports each layer under a short name and picks the crypto backends, which
//! no library crate below it does (docs/architecture.md, "Where the composed provider
//! lives"):
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`ah`] | `ipsec-ah` | the AH codec (RFC 4302) |
//! | [`core`] | `ipsec-core` | SPIs, sequence numbers and ESN, replay window, selectors, `ChildSaParams` |
//! | [`crypto`] | `ipsec-crypto` | provider traits, suites, proposal strings, IKEv2 key schedule |
//! | [`crypto_awslc`] | `ipsec-crypto-awslc` | the aws-lc backend (ML-KEM, Curve25519, ECP) |
//! | [`crypto_ring`] | `ipsec-crypto-ring` | the ring backend |
//! | [`crypto_rustcrypto`] | `ipsec-crypto-rustcrypto` | the pure-Rust backend |
//! | [`esp`] | `ipsec-esp` | the ESP codec |
//! | [`ike`] | `ipsec-ike` | the sans-I/O IKEv2 endpoint (RFC 7296) |
//! | [`ike_wire`] | `ipsec-ike-wire` | the IKEv2 message codec, SK protection, fragmentation |
//! | [`pki`] | `ipsec-pki` | X.509 certificates for IKE: loading, a verifier (RFC 4945), DN identities |
//! | [`sad`] | `ipsec-sad` | SA and policy databases, the RFC 4301 processing model |
//!
//! # Features
//!
//! Each layer and each backend is a feature, all on by default, so an embedder
//! compiles only what it takes (`default-features = false, features = ["esp",
//! "rustcrypto"]` for ESP alone on the pure-Rust backend). `core` and `crypto` are
//! always there.
//!
//! | feature | brings | needs |
//! | --- | --- | --- |
//! | `esp` | [`esp`] | |
//! | `ah` | [`ah`] | |
//! | `sad` | [`sad`] | `esp`, `ah` (turned on with it) |
//! | `ike` | [`ike`], [`ike_wire`] | |
//! | `pki` | [`pki`] | `ike` (turned on with it) |
//! | `ring` | [`crypto_ring`], [`ring_provider`] | |
//! | `rustcrypto` | [`crypto_rustcrypto`], [`rustcrypto_provider`] | |
//! | `awslc` | [`crypto_awslc`], [`awslc_provider`]; with `ring` + `rustcrypto`, the aws-lc rows of [`DEFAULT_PROVIDER`] | a C compiler (as for ring) |
//! | `ring` + `rustcrypto` | [`DEFAULT_PROVIDER`] | |
//! | `eap-mschapv2` (off by default) | `ike::eap::mschapv2`: EAP-MSCHAPv2 methods and password credentials | `ike` (turned on with it) |
//! | `tracing` (off by default) | `tracing` events of the layers that are on: [`esp`], [`sad`], [`ike`] ([Observability](#observability)) | |
//!
//! `awslc` is on by default: on Linux x86-64 and aarch64 aws-lc-sys builds AWS-LC with
//! the `cc` crate and pregenerated bindings, so it needs the same C compiler as ring and
//! nothing else (no CMake, Clang or NASM; other targets may need CMake, see the
//! `ipsec-crypto-awslc` README). Without it, [`DEFAULT_PROVIDER`] takes those rows from
//! ring and RustCrypto.
//!
//! # Crypto providers
//!
//! [`DEFAULT_PROVIDER`] takes every transform from the fastest backend that has it:
//!
//! | transform | backend | why |
//! | --- | --- | --- |
//! | AES-GCM-16 (128, 256), ChaCha20-Poly1305 | ring | assembly with AES-NI/CLMUL and AVX2; several times the RustCrypto speed (docs/performance.md) |
//! | AES-GMAC (128, 256; ESP and AH) | RustCrypto | GMAC is all AAD, and there RustCrypto's GHASH is about 1.5x faster than ring's from 512 bytes up (docs/performance.md, AH) |
//! | HMAC-SHA2-256-128, PRF-HMAC-SHA2-256 | RustCrypto | on par with ring on long inputs, faster on short ones (0.6x the time at 64 bytes; docs/performance.md) |
//! | HMAC-SHA1-96, HMAC-SHA2-384-192/512-256, PRF-HMAC-SHA1/384/512 | ring | assembly |
//! | Curve25519, ECP-384 | aws-lc (feature `awslc`; else ring) | 1.9x and 3.1x ring's speed for a full exchange (docs/performance.md, "ML-KEM and the aws-lc backend") |
//! | ECP-256 | ring | x86-64 assembly; aws-lc is on par |
//! | ML-KEM-512/768/1024 | aws-lc (feature `awslc`; else RustCrypto's, on libcrux-ml-kem) | 1.3x to 2.2x libcrux's speed per operation, 1.5x for an ML-KEM-768 exchange (docs/performance.md) |
//! | AES-CBC (128, 256) | RustCrypto | ring has no CBC |
//! | AES-CTR (128, 192, 256), AES-CCM (8-, 12-, 16-byte ICV; 128, 192, 256) | RustCrypto | ring has neither |
//! | MODP-2048, MODP-3072, MODP-4096 | RustCrypto | ring has no finite-field Diffie-Hellman |
//! | ECP-521, Curve448 | RustCrypto | ring's ECDH has P-256, P-384 and X25519 only |
//! | ECDSA P-256/P-384 (DER and `r ‖ s`), Ed25519, RSA PKCS#1 v1.5 and PSS: verify and sign | ring | assembly; the RustCrypto backend cannot sign with RSA (RUSTSEC-2023-0071) |
//! | random source | ring (`SYSTEM_RANDOM`, the OS CSPRNG) | |
//! | ENCR_NULL | `ipsec-crypto` (`NULL_CIPHER`) | needs no backend |
//!
//! It is an ordinary `static` built with nothing but the public statics of the
//! backend crates. That is the point: a [`CryptoProvider`]
//! is a plain struct of `&'static dyn` algorithm lists, so an embedder mixes backends
//! the same way, for instance to put a hardware AEAD in front, or to keep the
//! pure-Rust backend and take only the AEADs from ring:
//!
//! ```
//! use ipsec::crypto::{CryptoProvider, EncrId, KeId};
//! use ipsec::{crypto_ring as ring, crypto_rustcrypto as rc};
//!
//! static MINE: CryptoProvider = CryptoProvider {
//!     name: "rustcrypto with ring AEADs",
//!     aeads: &[&ring::AES_256_GCM, &ring::AES_128_GCM, &ring::CHACHA20_POLY1305],
//!     ..rc::PROVIDER
//! };
//! assert_eq!(MINE.aead(EncrId::ENCR_AES_GCM_16, 16).unwrap().backend(), "ring");
//! assert_eq!(MINE.kx(KeId::CURVE25519).unwrap().backend(), "rustcrypto");
//! ```
//!
//! Every key exchange group of the backends takes its private key from the `rng` it is
//! given (for ring, see `ipsec::crypto_ring::kx`), so a provider with a seeded
//! `secure_random` gives reproducible handshakes whichever backends it mixes, **with
//! one exception**: aws-lc's ML-KEM draws its seeds and encapsulation randomness from
//! AWS-LC's own DRBG (aws-lc-rs cannot take them from us; see
//! `ipsec::crypto_awslc::kem`). A seeded provider that needs reproducible ML-KEM
//! exchanges takes ML-KEM from RustCrypto, as [`rustcrypto_provider`] and
//! `ipsec_test::seeded_provider` do.
//!
//! Lookups take the first algorithm in a list that implements the transform, so the
//! order within a list is the preference between backends. Algorithms of different
//! backends interoperate byte for byte (the tests of this crate seal with one and open
//! with the other), so the two ends of an SA may use different backends.
//!
//! [`rustcrypto_provider`] is the pure-Rust provider, for builds that must not
//! contain ring's C and assembly, or as a reference.
//!
//! # Getting started
//!
//! An embedder takes one of three shapes, each a program under `examples/` that CI
//! runs (`cargo run -p ipsec --example NAME`) and shown here in full:
//!
//! | shape | what you write | layers | example |
//! | --- | --- | --- | --- |
//! | ESP only, manual keys | keys from your own store; sockets, TUN | [`esp`], [`crypto`] | [`esp_udp`](#shape-1-esp-only-with-manual-keys) |
//! | IKE with your own data plane | the I/O loop around a sans-I/O [`ike::IkeEndpoint`]; what to do with each `ChildSaParams` | [`ike`], and [`esp`] or your own ESP | [`ike_threads`](#shape-2-ike-with-your-own-data-plane), [`ike_tokio`](#under-tokio) |
//! | the full stack | the I/O loop; policy rules | [`ike`], [`sad`] (which runs [`esp`]) | [`full_stack`](#shape-3-the-full-stack) |
//!
//! Every layer takes its crypto from a [`CryptoProvider`]: [`DEFAULT_PROVIDER`] below,
//! or one of your own (see [Crypto providers](#crypto-providers)). Nothing reads a
//! clock: the caller passes an [`core::Instant`] (`core::time::StdClock` maps
//! `std::time::Instant` to it), so the same code runs in simulation and tests.
//!
//! ## Shape 1: ESP only, with manual keys
//!
//! Seal on send; classify, open and finish on receive.
//!
//! ```no_run
#![doc = include_str!("../examples/esp_udp.rs")]
//! ```
//!
//! ## Shape 2: IKE with your own data plane
//!
//! The endpoint hands out datagrams to send, events (a Child SA's keys in
//! `ChildSaInstalled`, rekeys, deletes) and its next timer; the loop around it is
//! yours. Here, under std threads, with commands through a channel:
//!
//! ```no_run
#![doc = include_str!("../examples/ike_threads.rs")]
//! ```
//!
//! ### Under tokio
//!
//! The same loop as a task: `select!` over the socket, `poll_timeout` as a
//! `sleep_until`, and commands from an `mpsc` channel.
//!
//! ```no_run
#![doc = include_str!("../examples/ike_tokio.rs")]
//! ```
//!
//! ## Shape 3: the full stack
//!
//! IKE feeds the SA database, whose two calls do policy lookup, sealing, opening,
//! replay and selector checks.
//!
//! ```no_run
#![doc = include_str!("../examples/full_stack.rs")]
//! ```
//!
//! # Observability
//!
//! The layers count: [`ike::IkeEndpoint::stats`] (handshakes, failures by reason,
//! retransmissions, cookies, what admission refused), [`sad::Sad::drop_counts`] and
//! [`sad::Sad::sa_stats`] (drops by [`sad::DropReason`]). With the `tracing` feature
//! they also say why, as [`tracing`](https://docs.rs/tracing) events at the places
//! that count, with structured fields (`reason = "unknown_spi"`, `spi = 0x…`,
//! `sa = ike#3`). Targets are the crates (`ipsec_ike`, `ipsec_sad`, `ipsec_esp`), so
//! a subscriber's filter picks them like any other (`RUST_LOG=info,ipsec_ike=debug`
//! with `tracing-subscriber`'s `EnvFilter`):
//!
//! | level | `ipsec_ike` | `ipsec_sad` | `ipsec_esp` |
//! | --- | --- | --- | --- |
//! | `warn` | a handshake that failed, an IKE SA closed other than by a Delete, a Child SA not created, an IKE SA rekey refused | sequence numbers running out | |
//! | `info` | IKE SA established, rekeyed, closed; Child SA installed, rekeyed, deleted; a request retransmitted; a liveness check (DPD); the peer's address changed | SA installed, removed; soft and hard lifetime; ESN re-synchronized | |
//! | `debug` | a datagram dropped and why: unknown SPI, Message ID window, integrity, malformed, unexpected exchange, the Non-ESP Marker missing, COOKIE or puzzle required, half-open caps, oversized IKE_SA_INIT; requests refused; retransmissions answered from the cache | acquires, SPD changes | an ESP re-synchronization |
//! | `trace` | NAT keepalives due | every packet dropped, with its `DropReason` | every packet refused, with its SPI, sequence number and `OpenError` reason |
//!
//! No event carries a key, a nonce or packet bytes. Without the feature the crates do
//! not depend on `tracing` and the event sites compile to nothing; with it and no
//! subscriber, a drop costs tracing's check of one global level. ESP events work in
//! `no_std` builds. `ipsec-gateway` turns the feature on.
#![forbid(unsafe_code)]

#[cfg(feature = "ah")]
pub use ipsec_ah as ah;
pub use ipsec_core as core;
pub use ipsec_crypto as crypto;
#[cfg(feature = "awslc")]
pub use ipsec_crypto_awslc as crypto_awslc;
#[cfg(feature = "ring")]
pub use ipsec_crypto_ring as crypto_ring;
#[cfg(feature = "rustcrypto")]
pub use ipsec_crypto_rustcrypto as crypto_rustcrypto;
#[cfg(feature = "esp")]
pub use ipsec_esp as esp;
#[cfg(feature = "ike")]
pub use ipsec_ike as ike;
#[cfg(feature = "ike")]
pub use ipsec_ike_wire as ike_wire;
#[cfg(feature = "pki")]
pub use ipsec_pki as pki;
#[cfg(feature = "sad")]
pub use ipsec_sad as sad;

#[cfg(all(feature = "ring", feature = "rustcrypto"))]
use ipsec_crypto::Compliance;
#[cfg(any(feature = "ring", feature = "rustcrypto", feature = "awslc"))]
use ipsec_crypto::CryptoProvider;
#[cfg(feature = "awslc")]
use ipsec_crypto_awslc as aws_be;
#[cfg(feature = "ring")]
use ipsec_crypto_ring as ring_be;
#[cfg(feature = "rustcrypto")]
use ipsec_crypto_rustcrypto as rc_be;

/// The default provider: ring for every transform where it is the faster backend,
/// RustCrypto for HMAC-SHA2-256, AES-GMAC and for what ring lacks (AES-CBC, AES-CTR,
/// AES-CCM, ECP-521, Curve448, the MODP groups), aws-lc (feature `awslc`) for
/// Curve25519, ECP-384 and ML-KEM, ring for signatures, and the OS random source
/// through ring. See the [crate docs](crate#crypto-providers) for the table and for how
/// to compose your own.
#[cfg(all(feature = "ring", feature = "rustcrypto"))]
pub static DEFAULT_PROVIDER: CryptoProvider = CryptoProvider {
    name: DEFAULT_PROVIDER_NAME,
    aeads: &[
        &ring_be::AES_256_GCM,
        &ring_be::AES_128_GCM,
        &ring_be::CHACHA20_POLY1305,
        // GMAC (all input is AAD) from RustCrypto: ring's GHASH over long AAD is about
        // 1.5x slower than RustCrypto's, although its combined encrypt-and-hash
        // AES-GCM is several times faster (docs/performance.md, AH).
        &rc_be::AES_256_GMAC,
        &rc_be::AES_128_GMAC,
        // AES-CCM: ring has none.
        &rc_be::AES_256_CCM_16,
        &rc_be::AES_192_CCM_16,
        &rc_be::AES_128_CCM_16,
        &rc_be::AES_256_CCM_12,
        &rc_be::AES_192_CCM_12,
        &rc_be::AES_128_CCM_12,
        &rc_be::AES_256_CCM_8,
        &rc_be::AES_192_CCM_8,
        &rc_be::AES_128_CCM_8,
    ],
    // AES-CBC and AES-CTR: ring has neither.
    ciphers: &[
        &rc_be::AES_256_CBC,
        &rc_be::AES_128_CBC,
        &rc_be::AES_256_CTR,
        &rc_be::AES_192_CTR,
        &rc_be::AES_128_CTR,
    ],
    // HMAC-SHA2-256 from RustCrypto: measured faster than ring's on short inputs and
    // equal on long ones (docs/performance.md); the other HMACs from ring.
    integs: &[
        &rc_be::HMAC_SHA256_128,
        &ring_be::HMAC_SHA384_192,
        &ring_be::HMAC_SHA512_256,
        &ring_be::HMAC_SHA1_96,
    ],
    prfs: &[
        &rc_be::PRF_HMAC_SHA256,
        &ring_be::PRF_HMAC_SHA384,
        &ring_be::PRF_HMAC_SHA512,
        &ring_be::PRF_HMAC_SHA1,
    ],
    // Lookups take the first group with the id: with `awslc`, its groups come first
    // and the ring and RustCrypto ones behind them are never chosen.
    kx_groups: &[
        #[cfg(feature = "awslc")]
        &aws_be::X25519,
        #[cfg(feature = "awslc")]
        &aws_be::ECP384,
        #[cfg(feature = "awslc")]
        &aws_be::ML_KEM_768,
        #[cfg(feature = "awslc")]
        &aws_be::ML_KEM_1024,
        #[cfg(feature = "awslc")]
        &aws_be::ML_KEM_512,
        &ring_be::X25519,
        &ring_be::ECP256,
        &ring_be::ECP384,
        &rc_be::MODP3072,
        &rc_be::MODP2048,
        // ring's ECDH has no P-521 and no X448.
        &rc_be::ECP521,
        &rc_be::X448,
        &rc_be::MODP4096,
        &rc_be::ML_KEM_768,
        &rc_be::ML_KEM_1024,
        &rc_be::ML_KEM_512,
    ],
    // Signatures from ring: assembly for P-256 and RSA, and ring can sign with RSA
    // (the RustCrypto backend verifies RSA only).
    signature_verifiers: &ring_be::SIGNATURE_VERIFIERS,
    signers: &ring_be::SIGNERS,
    secure_random: &ring_be::SYSTEM_RANDOM,
    compliance: Compliance::Unvalidated,
};

/// [`DEFAULT_PROVIDER`]'s name: the backends it takes transforms from.
#[cfg(all(feature = "ring", feature = "rustcrypto", feature = "awslc"))]
const DEFAULT_PROVIDER_NAME: &str = "aws-lc+ring+rustcrypto";
#[cfg(all(feature = "ring", feature = "rustcrypto", not(feature = "awslc")))]
const DEFAULT_PROVIDER_NAME: &str = "ring+rustcrypto";

/// The pure-Rust provider: every transform from `ipsec-crypto-rustcrypto`, with the
/// OS random source through `getrandom`.
#[cfg(feature = "rustcrypto")]
pub fn rustcrypto_provider() -> &'static CryptoProvider {
    &rc_be::PROVIDER
}

/// The ring-only provider (no AES-CBC, AES-CTR or AES-CCM; no ECP-521, Curve448 or
/// MODP groups).
#[cfg(feature = "ring")]
pub fn ring_provider() -> &'static CryptoProvider {
    &ring_be::PROVIDER
}

/// The aws-lc provider: key exchange only (Curve25519, ECP-256/384, ML-KEM), for
/// composing; see `ipsec_crypto_awslc::PROVIDER`.
#[cfg(feature = "awslc")]
pub fn awslc_provider() -> &'static CryptoProvider {
    &aws_be::PROVIDER
}
