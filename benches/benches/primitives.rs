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
//!
//! Run: `cargo bench -p ipsec-benches --bench primitives` (a few minutes on 2 cores).
//! Results are summarised in docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_crypto::{AeadAlgorithm, CipherAlgorithm, IntegAlgorithm, KxGroup, SecureRandom};
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
    let groups: [(&str, &[KxLine]); 8] = [
        (
            "x25519",
            &[
                ("ring", &ring_be::X25519, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::X25519, &rc_be::OS_RANDOM),
            ],
        ),
        (
            "ecp256",
            &[
                ("ring", &ring_be::ECP256, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::ECP256, &rc_be::OS_RANDOM),
            ],
        ),
        (
            "ecp384",
            &[
                ("ring", &ring_be::ECP384, &ring_be::SYSTEM_RANDOM),
                ("rustcrypto", &rc_be::ECP384, &rc_be::OS_RANDOM),
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

fn main() {
    // Written out instead of `criterion_group!`/`criterion_main!`, whose generated
    // function cannot carry docs.
    let mut c = config().configure_from_args();
    aead(&mut c);
    cbc_hmac(&mut c);
    hmac(&mut c);
    kx(&mut c);
    c.final_summary();
}
