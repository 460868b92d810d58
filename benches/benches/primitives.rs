//! Crypto primitives, ring beside RustCrypto, through the `ipsec-crypto` traits (so
//! the numbers include the trait-object call, as the ESP and IKE layers see them).
//!
//! Groups, each with one line per backend so criterion's report puts them side by side:
//! - `aead/<alg>`: seal then open (detached tag) of one buffer, at 64, 512, 1400 and
//!   8192 bytes;
//! - `cbc-hmac/aes-128-cbc+hmac-sha256-128`: encrypt + ICV, then verify + decrypt.
//!   CBC is RustCrypto's in both lines (ring has none); the line is named after the
//!   HMAC backend. Sizes are rounded up to the AES block (1400 → 1408), as ESP padding
//!   does;
//! - `hmac/hmac-sha256-128`: ICV computation alone;
//! - `kx/<group>`: one full exchange, i.e. both key pairs and both shared secrets
//!   (`start`, `respond`, `complete`). ring has no MODP, P-521 or X448, so
//!   `kx/modp2048`, `kx/modp3072`, `kx/modp4096`, `kx/ecp521` and `kx/x448` have only
//!   the RustCrypto line.
//!   The aws-lc backend has lines for Curve25519, ECP-256/384 and ML-KEM; for ML-KEM a
//!   full exchange is key generation, encapsulation and decapsulation;
//! - `mlkem/<param>/<op>`: ML-KEM key generation (`start`), encapsulation (`respond`,
//!   with the FIPS 203 §7.2 key check) and decapsulation (`complete`) one by one, per
//!   backend, beside the raw libraries (`libcrux-raw`, `aws-lc-raw`) without our
//!   traits, checks or copies, and RustCrypto's `ml-kem` (`ml-kem-raw`, with its own
//!   key check in encapsulation), the pure-Rust alternative the RustCrypto backend
//!   did not choose (see `ipsec-crypto-rustcrypto/src/mlkem.rs`);
//! - `raw/...`: ring and aws-lc-rs called directly for what the aws-lc backend does not
//!   implement (AEADs, HMAC), to show why it does not.
//!
//! Run: `cargo bench -p ipsec-benches --bench primitives` (a few minutes on 2 cores).
//! Results are summarised in docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_crypto::{AeadAlgorithm, CipherAlgorithm, IntegAlgorithm, KxGroup, SecureRandom};
use ipsec_crypto_awslc as aws_be;
use ipsec_crypto_ring as ring_be;
use ipsec_crypto_rustcrypto as rc_be;

/// Payload sizes: a small packet, a medium one, a full-MTU ESP payload and a jumbo one.
const SIZES: [usize; 4] = [64, 512, 1400, 8192];

/// One backend's line in a group: its name and the algorithm.
type Line<A> = (&'static str, A);
/// A key exchange line: backend name, group and the random source it is given.
type KxLine = (
    &'static str,
    &'static dyn KxGroup,
    &'static dyn SecureRandom,
);

/// A short configuration so the whole file runs in a few minutes on 2 cores.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

fn aead(c: &mut Criterion) {
    let algs: [(&str, [Line<&dyn AeadAlgorithm>; 2]); 3] = [
        (
            "aes-128-gcm",
            [
                ("ring", &ring_be::AES_128_GCM),
                ("rustcrypto", &rc_be::AES_128_GCM),
            ],
        ),
        (
            "aes-256-gcm",
            [
                ("ring", &ring_be::AES_256_GCM),
                ("rustcrypto", &rc_be::AES_256_GCM),
            ],
        ),
        (
            "chacha20-poly1305",
            [
                ("ring", &ring_be::CHACHA20_POLY1305),
                ("rustcrypto", &rc_be::CHACHA20_POLY1305),
            ],
        ),
    ];
    for (name, backends) in algs {
        let mut g = c.benchmark_group(format!("aead/{name}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            for (backend, alg) in backends {
                let key = alg.new_key(&vec![0x42; alg.key_len()]).expect("key");
                let nonce = [0x24u8; 12];
                // ESP's AAD: SPI ‖ sequence number.
                let aad = [0u8, 0, 0x10, 0x01, 0, 0, 0, 7];
                let mut data = vec![0xa5u8; size];
                let mut tag = [0u8; 16];
                g.bench_with_input(BenchmarkId::new(backend, size), &size, |b, _| {
                    b.iter(|| {
                        key.seal_detached(&nonce, &aad, &mut data, &mut tag)
                            .expect("seal");
                        key.open_detached(&nonce, &aad, black_box(&mut data), &tag)
                            .expect("open");
                    });
                });
            }
        }
        g.finish();
    }
}

fn cbc_hmac(c: &mut Criterion) {
    let cipher: &dyn CipherAlgorithm = &rc_be::AES_128_CBC;
    let integs: [Line<&dyn IntegAlgorithm>; 2] = [
        ("ring", &ring_be::HMAC_SHA256_128),
        ("rustcrypto", &rc_be::HMAC_SHA256_128),
    ];
    let mut g = c.benchmark_group("cbc-hmac/aes-128-cbc+hmac-sha256-128");
    for size in SIZES {
        let size = size.next_multiple_of(cipher.block_len());
        g.throughput(Throughput::Bytes(size as u64));
        for (backend, integ) in integs {
            let ckey = cipher.new_key(&[0x42; 16]).expect("key");
            let ikey = integ.new_key(&[0x17; 32]).expect("key");
            let iv = [0x24u8; 16];
            let hdr = [0u8, 0, 0x10, 0x01, 0, 0, 0, 7];
            let mut data = vec![0xa5u8; size];
            let mut icv = [0u8; 16];
            g.bench_with_input(BenchmarkId::new(backend, size), &size, |b, _| {
                b.iter(|| {
                    // Encrypt-then-MAC over SPI ‖ seq ‖ IV ‖ ciphertext (RFC 4303 §3.3.2).
                    ckey.encrypt(&iv, &mut data).expect("encrypt");
                    ikey.compute(&[&hdr, &iv, &data], &mut icv).expect("icv");
                    ikey.verify(&[&hdr, &iv, black_box(&data)], &icv)
                        .expect("verify");
                    ckey.decrypt(&iv, &mut data).expect("decrypt");
                });
            });
        }
    }
    g.finish();
}

fn hmac(c: &mut Criterion) {
    let integs: [Line<&dyn IntegAlgorithm>; 2] = [
        ("ring", &ring_be::HMAC_SHA256_128),
        ("rustcrypto", &rc_be::HMAC_SHA256_128),
    ];
    let mut g = c.benchmark_group("hmac/hmac-sha256-128");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        for (backend, integ) in integs {
            let key = integ.new_key(&[0x17; 32]).expect("key");
            let data = vec![0xa5u8; size];
            let mut icv = [0u8; 16];
            g.bench_with_input(BenchmarkId::new(backend, size), &size, |b, _| {
                b.iter(|| key.compute(&[black_box(&data)], &mut icv).expect("icv"));
            });
        }
    }
    g.finish();
}

fn kx(c: &mut Criterion) {
    let groups: [(&str, &[KxLine]); 11] = [
        (
            "x25519",
            &[
                ("ring", &ring_be::X25519, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::X25519, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::X25519, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "ecp256",
            &[
                ("ring", &ring_be::ECP256, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::ECP256, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ECP256, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "ecp384",
            &[
                ("ring", &ring_be::ECP384, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::ECP384, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ECP384, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "modp2048",
            &[("rustcrypto", &rc_be::MODP2048, &rc_be::OS_RANDOM)],
        ),
        ("x448", &[("rustcrypto", &rc_be::X448, &rc_be::OS_RANDOM)]),
        (
            "ecp521",
            &[("rustcrypto", &rc_be::ECP521, &rc_be::OS_RANDOM)],
        ),
        (
            "modp3072",
            &[("rustcrypto", &rc_be::MODP3072, &rc_be::OS_RANDOM)],
        ),
        (
            "modp4096",
            &[("rustcrypto", &rc_be::MODP4096, &rc_be::OS_RANDOM)],
        ),
        (
            "mlkem512",
            &[
                ("rustcrypto", &rc_be::ML_KEM_512, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_512, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "mlkem768",
            &[
                ("rustcrypto", &rc_be::ML_KEM_768, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_768, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "mlkem1024",
            &[
                ("rustcrypto", &rc_be::ML_KEM_1024, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_1024, &aws_be::SYSTEM_RANDOM),
            ],
        ),
    ];
    for (name, backends) in groups {
        let mut g = c.benchmark_group(format!("kx/{name}"));
        g.throughput(Throughput::Elements(1));
        for &(backend, group, rng) in backends {
            g.bench_function(backend, |b| {
                b.iter(|| {
                    let initiator = group.start(rng).expect("start");
                    let (resp_pub, resp_secret) =
                        group.respond(rng, initiator.public()).expect("respond");
                    let init_secret = initiator.complete(&resp_pub).expect("complete");
                    black_box((init_secret, resp_secret));
                });
            });
        }
        g.finish();
    }
}

/// ML-KEM operations one by one: through the traits per backend, and the raw libraries.
fn mlkem(c: &mut Criterion) {
    use criterion::BatchSize;
    let params: [(&str, [KxLine; 2]); 3] = [
        (
            "mlkem512",
            [
                ("rustcrypto", &rc_be::ML_KEM_512, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_512, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "mlkem768",
            [
                ("rustcrypto", &rc_be::ML_KEM_768, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_768, &aws_be::SYSTEM_RANDOM),
            ],
        ),
        (
            "mlkem1024",
            [
                ("rustcrypto", &rc_be::ML_KEM_1024, &rc_be::OS_RANDOM),
                ("aws-lc", &aws_be::ML_KEM_1024, &aws_be::SYSTEM_RANDOM),
            ],
        ),
    ];
    for (name, backends) in params {
        for op in ["keygen", "encaps", "decaps"] {
            let mut g = c.benchmark_group(format!("mlkem/{name}/{op}"));
            for (backend, group, rng) in backends {
                let start = || group.start(rng).expect("start");
                let peer = start();
                let ek = peer.public().to_vec();
                g.bench_function(backend, |b| match op {
                    "keygen" => b.iter(|| black_box(start())),
                    "encaps" => b.iter(|| group.respond(rng, black_box(&ek)).expect("encaps")),
                    _ => b.iter_batched(
                        || {
                            let kx = start();
                            let (ct, _) = group.respond(rng, kx.public()).expect("encaps");
                            (kx, ct)
                        },
                        |(kx, ct)| kx.complete(&ct).expect("decaps"),
                        BatchSize::SmallInput,
                    ),
                });
            }
            raw_mlkem(&mut g, name, op);
            g.finish();
        }
    }
}

/// The raw libraries' ML-KEM, for [`mlkem`]: libcrux with fixed seeds, aws-lc-rs.
fn raw_mlkem(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    op: &str,
) {
    use aws_lc_rs::kem::{Ciphertext, DecapsulationKey};
    macro_rules! libcrux {
        ($m:ident) => {{
            use libcrux_ml_kem::$m as m;
            let kp = m::generate_key_pair([7; 64]);
            let (ct, _) = m::encapsulate(kp.public_key(), [9; 32]);
            g.bench_function("libcrux-raw", |b| match op {
                "keygen" => b.iter(|| m::generate_key_pair(black_box([7; 64]))),
                "encaps" => b.iter(|| m::encapsulate(kp.public_key(), black_box([9; 32]))),
                _ => b.iter(|| m::decapsulate(kp.private_key(), black_box(&ct))),
            });
        }};
    }
    macro_rules! rustcrypto {
        ($p:ty) => {{
            use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, B32};
            let seed = ml_kem::Seed::from([7; 64]);
            let dk = DecapsulationKey::<$p>::from_seed(seed.clone());
            let ek = dk.encapsulation_key().to_bytes();
            let m = B32::from([9; 32]);
            let key = EncapsulationKey::<$p>::new(&ek).expect("ek");
            let (ct, _) = key.encapsulate_deterministic(&m);
            g.bench_function("ml-kem-raw", |b| match op {
                "keygen" => b.iter(|| {
                    let dk = DecapsulationKey::<$p>::from_seed(black_box(seed.clone()));
                    dk.encapsulation_key().to_bytes()
                }),
                "encaps" => b.iter(|| {
                    let key = EncapsulationKey::<$p>::new(black_box(&ek)).expect("ek");
                    key.encapsulate_deterministic(black_box(&m))
                }),
                _ => b.iter(|| dk.decapsulate(black_box(&ct))),
            });
        }};
    }
    let alg = match name {
        "mlkem512" => {
            libcrux!(mlkem512);
            rustcrypto!(ml_kem::MlKem512);
            &aws_lc_rs::kem::ML_KEM_512
        }
        "mlkem768" => {
            libcrux!(mlkem768);
            rustcrypto!(ml_kem::MlKem768);
            &aws_lc_rs::kem::ML_KEM_768
        }
        _ => {
            libcrux!(mlkem1024);
            rustcrypto!(ml_kem::MlKem1024);
            &aws_lc_rs::kem::ML_KEM_1024
        }
    };
    let dk = DecapsulationKey::generate(alg).expect("keygen");
    let ek = dk.encapsulation_key().expect("ek");
    let (ct, _) = ek.encapsulate().expect("encaps");
    g.bench_function("aws-lc-raw", |b| match op {
        "keygen" => b.iter(|| DecapsulationKey::generate(alg).expect("keygen")),
        "encaps" => b.iter(|| ek.encapsulate().expect("encaps")),
        _ => b.iter(|| {
            dk.decapsulate(Ciphertext::from(black_box(ct.as_ref())))
                .expect("decaps")
        }),
    });
}

/// ring and aws-lc-rs called directly for what the aws-lc backend leaves to ring and
/// RustCrypto: AES-GCM and ChaCha20-Poly1305 seal + open, HMAC-SHA2-256/384.
fn raw(c: &mut Criterion) {
    macro_rules! aead {
        ($g:expr, $lib:ident, $alg:expr, $klen:expr, $size:expr) => {{
            use $lib::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
            let key = LessSafeKey::new(UnboundKey::new($alg, &[0x42; $klen]).expect("key"));
            let mut data = vec![0xa5u8; $size];
            $g.bench_with_input(BenchmarkId::new(stringify!($lib), $size), &$size, |b, _| {
                b.iter(|| {
                    let nonce = || Nonce::assume_unique_for_key([0x24; 12]);
                    let aad = [0u8, 0, 0x10, 0x01, 0, 0, 0, 7];
                    let tag = key
                        .seal_in_place_separate_tag(nonce(), Aad::from(aad), &mut data)
                        .expect("seal");
                    let mut ct = core::mem::take(&mut data);
                    ct.extend_from_slice(tag.as_ref());
                    let pt_len = key
                        .open_in_place(nonce(), Aad::from(aad), &mut ct)
                        .expect("open")
                        .len();
                    ct.truncate(pt_len);
                    data = ct;
                });
            });
        }};
    }
    macro_rules! hmac {
        ($g:expr, $lib:ident, $alg:expr, $size:expr) => {{
            let key = $lib::hmac::Key::new($alg, &[0x17; 48]);
            let data = vec![0xa5u8; $size];
            $g.bench_with_input(BenchmarkId::new(stringify!($lib), $size), &$size, |b, _| {
                b.iter(|| $lib::hmac::sign(&key, black_box(&data)))
            });
        }};
    }
    for size in [64usize, 1400] {
        let mut g = c.benchmark_group("raw/aes-128-gcm");
        g.throughput(Throughput::Bytes(size as u64));
        aead!(g, ring, &ring::aead::AES_128_GCM, 16, size);
        aead!(g, aws_lc_rs, &aws_lc_rs::aead::AES_128_GCM, 16, size);
        g.finish();
        let mut g = c.benchmark_group("raw/aes-256-gcm");
        g.throughput(Throughput::Bytes(size as u64));
        aead!(g, ring, &ring::aead::AES_256_GCM, 32, size);
        aead!(g, aws_lc_rs, &aws_lc_rs::aead::AES_256_GCM, 32, size);
        g.finish();
        let mut g = c.benchmark_group("raw/chacha20-poly1305");
        g.throughput(Throughput::Bytes(size as u64));
        aead!(g, ring, &ring::aead::CHACHA20_POLY1305, 32, size);
        aead!(g, aws_lc_rs, &aws_lc_rs::aead::CHACHA20_POLY1305, 32, size);
        g.finish();
        let mut g = c.benchmark_group("raw/hmac-sha256");
        g.throughput(Throughput::Bytes(size as u64));
        hmac!(g, ring, ring::hmac::HMAC_SHA256, size);
        hmac!(g, aws_lc_rs, aws_lc_rs::hmac::HMAC_SHA256, size);
        g.finish();
        let mut g = c.benchmark_group("raw/hmac-sha384");
        g.throughput(Throughput::Bytes(size as u64));
        hmac!(g, ring, ring::hmac::HMAC_SHA384, size);
        hmac!(g, aws_lc_rs, aws_lc_rs::hmac::HMAC_SHA384, size);
        g.finish();
    }
}

fn main() {
    // Written out instead of `criterion_group!`/`criterion_main!`, whose generated
    // function cannot carry docs.
    let mut c = config().configure_from_args();
    aead(&mut c);
    cbc_hmac(&mut c);
    hmac(&mut c);
    kx(&mut c);
    mlkem(&mut c);
    raw(&mut c);
    c.final_summary();
}
