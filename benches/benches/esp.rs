//! The ESP data path beside its baselines, in one run on the same bytes.
//!
//! Groups (one per suite; lines per backend and baseline):
//! - `esp-roundtrip/<suite>`: one `EspOutbound::seal` and one `EspInbound::open` of the
//!   same buffer, in place (ESN on, anti-replay window 1024), for the rustcrypto backend
//!   (`esp-rustcrypto`) and for `ipsec::DEFAULT_PROVIDER` (`esp-default`, ring first);
//!   beside them the raw AEAD `seal_detached` + `open_detached` of the same bytes with
//!   the same backend (`raw-rustcrypto`, `raw-default`), and boringtun's
//!   `Tunn::encapsulate` + `Tunn::decapsulate` between two in-process peers
//!   (`boringtun`, WireGuard's ChaCha20-Poly1305 on ring).
//!   `esp-default-pad16` is `esp-default` with the ciphertext padded to whole 16-byte
//!   blocks (`EspOutbound::set_padding_alignment(Some(16))`).
//! - `esp-seal/<suite>`: `seal` alone with the default provider.
//! - `esp-breadth/<suite>`: the transforms only the RustCrypto backend has (AES-CCM,
//!   AES-CTR + HMAC-SHA-256-128), beside AES-CBC + HMAC-SHA-256-128 and AES-GCM on the
//!   same backend, each `esp-rustcrypto` (seal + open, ESN on, window 1024) beside
//!   `raw-rustcrypto`: the bare cipher (and HMAC) over the bytes ESP encrypts, in both
//!   directions. Run alone with `cargo bench -p ipsec-benches --bench esp -- esp-breadth`
//!   (about a minute).
//!
//! Payloads are IPv4 packets of 64, 512, 1400 and 8192 bytes (boringtun checks that
//! what it decrypts is an IP packet). ESP here is the bare ESP packet, as boringtun's
//! output is the bare WireGuard message: neither adds an outer IP or UDP header.
//!
//! Run: `cargo bench -p ipsec-benches --bench esp` (about four minutes on 2 cores).
//! Results are summarised in docs/performance.md, "ESP data path".

use std::hint::black_box;
use std::time::Duration;

mod common;

use boringtun::noise::TunnResult;
use common::{ipv4_packet, wireguard_pair};
use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_core::{IpProto, KeyMaterial, Spi};
use ipsec_crypto::suites::{self, EncrDesc};
use ipsec_crypto::CryptoProvider;
use ipsec_esp::OpenOptions;
use ipsec_esp::{EspInbound, EspOutbound, PacketBuf};

/// Payload sizes: a small packet, a medium one, a full-MTU payload and a jumbo one.
const SIZES: [usize; 4] = [64, 512, 1400, 8192];
/// Room around the body: more than any suite's overhead.
const ROOM: usize = 64;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

fn sa(provider: &CryptoProvider, encr: &'static EncrDesc) -> (EspOutbound, EspInbound) {
    sa_with(provider, encr, None)
}

fn sa_with(
    provider: &CryptoProvider,
    encr: &'static EncrDesc,
    integ: Option<&'static ipsec_crypto::IntegDesc>,
) -> (EspOutbound, EspInbound) {
    let ik = vec![0x24; integ.map_or(0, |i| i.key_len)];
    let keys = KeyMaterial::new(&vec![0x42; encr.keymat_len()], &ik).unwrap();
    let spi = Spi(0x1000_0001);
    let out = EspOutbound::new(provider, spi, encr, integ, &keys, true).unwrap();
    let inb = EspInbound::new(provider, spi, encr, integ, &keys, true, 1024).unwrap();
    (out, inb)
}

/// One `esp-*` line: seal and open `packet` in place with `out` and `inb`.
fn esp_line(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    packet: &[u8],
    mut out: EspOutbound,
    mut inb: EspInbound,
) {
    let size = packet.len();
    let mut storage = vec![0u8; ROOM + size + ROOM];
    storage[ROOM..ROOM + size].copy_from_slice(packet);
    g.bench_function(BenchmarkId::new(name, size), |b| {
        b.iter(|| {
            let mut buf = PacketBuf::new(&mut storage[..], ROOM, size).unwrap();
            out.seal(&mut buf, IpProto::IPV4).unwrap();
            let opened = inb.open(&mut buf, OpenOptions::new()).unwrap();
            black_box(opened);
        })
    });
    assert_eq!(&storage[ROOM..ROOM + size], packet);
}

fn roundtrip(c: &mut Criterion) {
    let rc: &'static CryptoProvider = &ipsec_crypto_rustcrypto::PROVIDER;
    let def: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let all: [(&str, &'static EncrDesc); 3] = [
        ("aes-128-gcm", &suites::AES_GCM_16_128),
        ("aes-256-gcm", &suites::AES_GCM_16_256),
        ("chacha20-poly1305", &suites::CHACHA20_POLY1305),
    ];
    let (mut wg_a, mut wg_b) = wireguard_pair();
    for (name, encr) in all {
        let mut g = c.benchmark_group(format!("esp-roundtrip/{name}"));
        for size in SIZES {
            let packet = ipv4_packet(size);
            g.throughput(Throughput::Bytes(size as u64));
            for (label, provider) in [("rustcrypto", rc), ("default", def)] {
                // ESP seal + open in place.
                let (out, inb) = sa(provider, encr);
                let esp_len = size + out.overhead(size).tail - encr.icv_len;
                esp_line(&mut g, &format!("esp-{label}"), &packet, out, inb);
                if label == "default" {
                    // The same with the ciphertext padded to whole 16-byte blocks
                    // (`EspOutbound::set_padding_alignment`), which spares the backend
                    // a partial last block.
                    let (mut out, inb) = sa(provider, encr);
                    out.set_padding_alignment(Some(16)).unwrap();
                    esp_line(&mut g, "esp-default-pad16", &packet, out, inb);
                }
                // The raw AEAD on the same bytes, same backend.
                let alg = provider.aead_for(encr).unwrap();
                let key = alg.new_key(&vec![0x42; encr.key_len()]).unwrap();
                let nonce = [7u8; 12];
                let aad = [1u8; 12];
                let mut data = packet.clone();
                let mut tag = [0u8; 16];
                g.bench_function(BenchmarkId::new(format!("raw-{label}"), size), |b| {
                    b.iter(|| {
                        key.seal_detached(&nonce, &aad, &mut data, &mut tag)
                            .unwrap();
                        key.open_detached(&nonce, &aad, &mut data, &tag).unwrap();
                        black_box(&data);
                    })
                });
                // The raw AEAD on the bytes ESP actually encrypts: the payload plus
                // padding, pad length and next header (RFC 4303 §2.4), so the ratio
                // against this line is the cost of the protocol code alone.
                let mut esp_data = vec![0u8; esp_len];
                g.bench_function(BenchmarkId::new(format!("raw-esplen-{label}"), size), |b| {
                    b.iter(|| {
                        key.seal_detached(&nonce, &aad, &mut esp_data, &mut tag)
                            .unwrap();
                        key.open_detached(&nonce, &aad, &mut esp_data, &tag)
                            .unwrap();
                        black_box(&esp_data);
                    })
                });
            }
            // boringtun: encapsulate at one peer, decapsulate at the other.
            let mut wire = vec![0u8; size + 64];
            let mut plain = vec![0u8; size + 64];
            g.bench_function(BenchmarkId::new("boringtun", size), |b| {
                b.iter(|| {
                    let msg = match wg_a.encapsulate(&packet, &mut wire) {
                        TunnResult::WriteToNetwork(m) => &*m,
                        _ => panic!("encapsulate"),
                    };
                    match wg_b.decapsulate(None, msg, &mut plain) {
                        TunnResult::WriteToTunnelV4(p, _) => {
                            black_box(p);
                        }
                        other => panic!("decapsulate: {:?}", matches!(other, TunnResult::Err(_))),
                    }
                })
            });
        }
        g.finish();
    }
}

fn seal_only(c: &mut Criterion) {
    let def: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let all: [(&str, &'static EncrDesc); 3] = [
        ("aes-128-gcm", &suites::AES_GCM_16_128),
        ("aes-256-gcm", &suites::AES_GCM_16_256),
        ("chacha20-poly1305", &suites::CHACHA20_POLY1305),
    ];
    for (name, encr) in all {
        let mut g = c.benchmark_group(format!("esp-seal/{name}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let (mut out, _) = sa(def, encr);
            let mut storage = vec![0u8; ROOM + size + ROOM];
            storage[ROOM..ROOM + size].copy_from_slice(&ipv4_packet(size));
            g.bench_function(BenchmarkId::new("esp-default", size), |b| {
                b.iter(|| {
                    let mut buf = PacketBuf::new(&mut storage[..], ROOM, size).unwrap();
                    black_box(out.seal(&mut buf, IpProto::IPV4).unwrap());
                })
            });
        }
        g.finish();
    }
}

/// AES-CCM and AES-CTR (RustCrypto only) beside AES-CBC and AES-GCM, each beside its
/// raw cipher over the bytes ESP encrypts.
fn breadth(c: &mut Criterion) {
    use ipsec_crypto::suites::EncrKind;
    let rc: &'static CryptoProvider = &ipsec_crypto_rustcrypto::PROVIDER;
    let sha256 = Some(&suites::HMAC_SHA256_128);
    let all: [(
        &str,
        &'static EncrDesc,
        Option<&'static ipsec_crypto::IntegDesc>,
    ); 5] = [
        ("aes-128-gcm", &suites::AES_GCM_16_128, None),
        ("aes-128-ccm16", &suites::AES_CCM_16_128, None),
        ("aes-128-ccm8", &suites::AES_CCM_8_128, None),
        ("aes-128-ctr-sha256", &suites::AES_CTR_128, sha256),
        ("aes-128-cbc-sha256", &suites::AES_CBC_128, sha256),
    ];
    for (name, encr, integ) in all {
        let mut g = c.benchmark_group(format!("esp-breadth/{name}"));
        for size in [64usize, 1400] {
            let packet = ipv4_packet(size);
            g.throughput(Throughput::Bytes(size as u64));
            let (out, inb) = sa_with(rc, encr, integ);
            let icv = integ.map_or(encr.icv_len, |i| i.icv_len);
            let esp_len = size + out.overhead(size).tail - icv;
            esp_line(&mut g, "esp-rustcrypto", &packet, out, inb);
            let mut data = vec![0u8; esp_len];
            let id = BenchmarkId::new("raw-rustcrypto", size);
            match (encr.kind, integ) {
                (EncrKind::Aead, _) => {
                    let alg = rc.aead_for(encr).unwrap();
                    let key = alg.new_key(&vec![0x42; encr.key_len()]).unwrap();
                    let nonce = vec![7u8; alg.nonce_len()];
                    let aad = [1u8; 12];
                    let mut tag = vec![0u8; alg.tag_len()];
                    g.bench_function(id, |b| {
                        b.iter(|| {
                            key.seal_detached(&nonce, &aad, &mut data, &mut tag)
                                .unwrap();
                            key.open_detached(&nonce, &aad, &mut data, &tag).unwrap();
                            black_box(&data);
                        })
                    });
                }
                (_, Some(i)) => {
                    let cipher = rc.cipher(encr.id, encr.key_len()).unwrap();
                    let key = cipher.new_key(&vec![0x42; encr.key_len()]).unwrap();
                    let mac = rc
                        .integ(i.id)
                        .unwrap()
                        .new_key(&vec![0x24; i.key_len])
                        .unwrap();
                    let iv = vec![7u8; cipher.iv_len()];
                    let mut icv = vec![0u8; i.icv_len];
                    g.bench_function(id, |b| {
                        b.iter(|| {
                            key.encrypt(&iv, &mut data).unwrap();
                            mac.compute(&[&data], &mut icv).unwrap();
                            mac.verify(&[&data], &icv).unwrap();
                            key.decrypt(&iv, &mut data).unwrap();
                            black_box(&data);
                        })
                    });
                }
                _ => unreachable!("every non-AEAD suite here has integrity"),
            }
        }
        g.finish();
    }
}

fn main() {
    // Written out instead of `criterion_group!`/`criterion_main!`, whose generated
    // function cannot carry docs.
    let mut c = config().configure_from_args();
    roundtrip(&mut c);
    seal_only(&mut c);
    breadth(&mut c);
    c.final_summary();
}
