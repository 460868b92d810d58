//! AH verification beside the raw MAC over the same bytes, in one run.
//!
//! Groups (one per transform; lines per backend):
//! - `ah-verify/<transform>`: `AhInbound::open_transport` of a sealed IPv4 packet
//!   (`ah-rustcrypto`, `ah-default`): parse, anti-replay (switched off so the same
//!   packet can be opened again), mutable fields zeroed in place and restored, the ICV
//!   checked in constant time, the AH removed and the header fixed.
//! - beside it the raw check of the same bytes with the same backend (`raw-rustcrypto`,
//!   `raw-default`): `IntegKey::verify` over the whole AH packet for HMAC,
//!   `AeadKey::open_detached` with the packet as AAD for AES-GMAC.
//!
//! Every iteration of both lines first copies the sealed packet into the working
//! buffer (open rewrites it), so the ratio is AH's own work over the MAC.
//! Packets are IPv4 datagrams of 64, 512, 1400 and 8192 bytes before AH.
//!
//! Run: `cargo bench -p ipsec-benches --bench ah` (about two minutes on 2 cores).
//! Results are summarised in docs/performance.md, "AH".

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::ipv4_packet;
use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_ah::OpenOptions;
use ipsec_ah::{integ, AhInbound, AhOutbound, PacketBuf};
use ipsec_core::{KeyMaterial, Spi};
use ipsec_crypto::suites::{self, IntegDesc};
use ipsec_crypto::CryptoProvider;

const SIZES: [usize; 4] = [64, 512, 1400, 8192];
const ROOM: usize = 64;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

fn verify(c: &mut Criterion) {
    let rc: &'static CryptoProvider = &ipsec_crypto_rustcrypto::PROVIDER;
    let def: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let all: [(&str, &'static IntegDesc); 2] = [
        ("hmac-sha2-256-128", &suites::HMAC_SHA256_128),
        ("aes-128-gmac", &integ::AES_128_GMAC),
    ];
    for (name, d) in all {
        let mut g = c.benchmark_group(format!("ah-verify/{name}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            for (label, provider) in [("rustcrypto", rc), ("default", def)] {
                let keys = KeyMaterial::new(&[], &vec![0x42; d.key_len]).unwrap();
                let spi = Spi(0x1000_0001);
                let mut out = AhOutbound::new(provider, spi, d, &keys, false).unwrap();
                let mut inb = AhInbound::new(provider, spi, d, &keys, false, 0).unwrap();
                let packet = ipv4_packet(size);
                let mut storage = vec![0u8; ROOM + size + ROOM];
                storage[ROOM..ROOM + size].copy_from_slice(&packet);
                let mut buf = PacketBuf::new(&mut storage[..], ROOM, size).unwrap();
                out.seal_transport(&mut buf).unwrap();
                let r = buf.body_range();
                let sealed = storage[r.clone()].to_vec();
                let mut work = vec![0u8; ROOM + sealed.len() + ROOM];
                g.bench_function(BenchmarkId::new(format!("ah-{label}"), size), |b| {
                    b.iter(|| {
                        work[ROOM..ROOM + sealed.len()].copy_from_slice(&sealed);
                        let mut buf = PacketBuf::new(&mut work[..], ROOM, sealed.len()).unwrap();
                        black_box(inb.open_transport(&mut buf, OpenOptions::new()).unwrap());
                    })
                });
                // The raw MAC over the same bytes (the sealed packet, ICV included for
                // HMAC: the same number of bytes the AH check hashes).
                if integ::is_gmac(d.id) {
                    let alg = provider.gmac(16).unwrap();
                    let key = alg.new_key(&keys.integ()[..16]).unwrap();
                    let nonce = [7u8; 12];
                    let mut tag = [0u8; 16];
                    key.seal_detached(&nonce, &sealed, &mut [], &mut tag)
                        .unwrap();
                    g.bench_function(BenchmarkId::new(format!("raw-{label}"), size), |b| {
                        b.iter(|| {
                            work[ROOM..ROOM + sealed.len()].copy_from_slice(&sealed);
                            let aad = &work[ROOM..ROOM + sealed.len()];
                            black_box(key.open_detached(&nonce, aad, &mut [], &tag)).unwrap();
                        })
                    });
                } else {
                    let key = provider.integ(d.id).unwrap().new_key(keys.integ()).unwrap();
                    let mut mac = vec![0u8; d.icv_len];
                    key.compute(&[&sealed], &mut mac).unwrap();
                    g.bench_function(BenchmarkId::new(format!("raw-{label}"), size), |b| {
                        b.iter(|| {
                            work[ROOM..ROOM + sealed.len()].copy_from_slice(&sealed);
                            let data = &work[ROOM..ROOM + sealed.len()];
                            black_box(key.verify(&[data], &mac)).unwrap();
                        })
                    });
                }
            }
        }
        g.finish();
    }
}

fn main() {
    let mut c = config().configure_from_args();
    verify(&mut c);
    c.final_summary();
}
