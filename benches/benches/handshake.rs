//! A full IKEv2 handshake (IKE_SA_INIT + IKE_AUTH with PSK and the first Child SA),
//! both endpoints in one process exchanging datagrams in memory, with
//! `ipsec::DEFAULT_PROVIDER`, beside the cost of the same handshake's key exchange
//! and PRF calls alone.
//!
//! Lines per suite:
//! - `handshake`: two fresh `IkeEndpoint`s, `connect`, shuttle every datagram until
//!   both are quiet, check that the initiator is established;
//! - `ke+prf`: what that handshake computes in `KxGroup` and `PrfAlgorithm` calls,
//!   without any of the protocol: one key exchange (initiator key pair, responder key
//!   pair and secret, initiator secret), and on each side SKEYSEED, the seven IKE SA
//!   keys, two AUTH values (its own, the peer's) and the Child SA KEYMAT; with
//!   additional key exchanges (RFC 9370), each one's key pairs and secrets, the
//!   IntAuth PRF of its two IKE_INTERMEDIATE messages and the keys derived again.
//!
//! handshake ÷ ke+prf is the overhead of everything else: message building and
//! parsing, SK encryption, NAT detection hashes, random numbers, proposal choice,
//! bookkeeping. Target: at most 1.5.
//!
//! Run: `cargo bench -p ipsec-benches --bench handshake`. Results in
//! docs/performance.md, "IKEv2 handshake".

#![allow(clippy::disallowed_methods)] // a bench measures wall-clock time

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use ipsec::crypto::kdf::{self, IkeKeyLengths};
use ipsec::crypto::{CryptoProvider, KeId, PrfId, Proposal, ProposalKind};
use ipsec::ike::{Config, IkeEndpoint, Instant};

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn configs(ike: &str) -> (Arc<Config>, Arc<Config>) {
    let mk = |id: &str| {
        Arc::new(
            Config::new(id.parse().unwrap(), "bench-psk-0123456789")
                .with_ike_proposals(ike)
                .unwrap()
                .with_esp_proposals("aes128gcm16")
                .unwrap(),
        )
    };
    (mk("@a.bench"), mk("@b.bench"))
}

/// One handshake; returns the number of datagrams exchanged.
fn handshake(p: &'static CryptoProvider, a_cfg: &Arc<Config>, b_cfg: &Arc<Config>) -> usize {
    let a_addr: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let b_addr: SocketAddr = "192.0.2.2:500".parse().unwrap();
    let mut a = IkeEndpoint::new(a_cfg.clone(), p);
    let mut b = IkeEndpoint::new(b_cfg.clone(), p);
    let now = Instant::from_secs(1);
    let h = a.connect(now, a_addr, b_addr).unwrap();
    let mut n = 0;
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
            n += 1;
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
            n += 1;
        }
        if !moved {
            break;
        }
    }
    assert!(a.is_established(h));
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    n
}

/// The key exchange and PRF work of one handshake, nothing else. `groups[0]` is the
/// key exchange of IKE_SA_INIT; each further one an additional key exchange
/// (RFC 9370) in its own IKE_INTERMEDIATE exchange.
fn ke_prf(p: &'static CryptoProvider, groups: &[KeId], prf_id: PrfId) {
    let rng = p.secure_random;
    let prf = p.prf(prf_id).unwrap();
    let ni = [1u8; 32];
    let nr = [2u8; 32];
    let (spi_i, spi_r) = ([3u8; 8], [4u8; 8]);
    let psk = b"bench-psk-0123456789";
    let msg = [5u8; 250];
    let id = [6u8; 12];
    let lens = IkeKeyLengths {
        prf_key: prf.key_len(),
        integ_key: 0,
        encr_key: 36,
    };
    // Per side: its view of each key exchange's secret.
    let mut sides: [Option<kdf::IkeKeys>; 2] = [None, None];
    for group in groups {
        let kx = p.kx(*group).unwrap();
        // Initiator key pair; responder answer and secret; initiator secret.
        let i = kx.start(rng).unwrap();
        let (r_pub, r_secret) = kx.respond(rng, i.public()).unwrap();
        let i_secret = i.complete(&r_pub).unwrap();
        for (side, secret) in sides.iter_mut().zip([&i_secret, &r_secret]) {
            let skeyseed = match side.as_ref() {
                None => kdf::skeyseed(prf, &ni, &nr, secret.expose()).unwrap(),
                Some(k) => {
                    // IntAuth of the exchange that carried it: one PRF per message.
                    for sk_p in [&k.sk_pi, &k.sk_pr] {
                        black_box(kdf::prf(prf, sk_p.expose(), &[&msg]).unwrap());
                    }
                    kdf::rekey_skeyseed(prf, k.sk_d.expose(), secret.expose(), &ni, &nr).unwrap()
                }
            };
            *side = Some(
                kdf::ike_keys(prf, skeyseed.expose(), &ni, &nr, &spi_i, &spi_r, lens).unwrap(),
            );
        }
    }
    for k in sides.iter().flatten() {
        // Two AUTH values per side: prf(prf(psk, pad), msg | nonce | prf(SK_p, ID)).
        for sk_p in [&k.sk_pi, &k.sk_pr] {
            let maced = kdf::prf(prf, sk_p.expose(), &[&id]).unwrap();
            let key = kdf::prf(prf, psk, &[b"Key Pad for IKEv2"]).unwrap();
            black_box(kdf::prf(prf, key.expose(), &[&msg, &nr, maced.expose()]).unwrap());
        }
        black_box(kdf::child_keymat(prf, k.sk_d.expose(), None, &ni, &nr, 40).unwrap());
    }
}

/// The suites measured: proposal, its key exchanges (IKE_SA_INIT's first), its PRF.
const SUITES: &[(&str, &[KeId], PrfId)] = &[
    (
        "aes128gcm16-prfsha256-x25519",
        &[KeId::CURVE25519],
        PrfId::PRF_HMAC_SHA2_256,
    ),
    (
        "aes256gcm16-prfsha384-ecp384",
        &[KeId::ECP_384],
        PrfId::PRF_HMAC_SHA2_384,
    ),
    (
        "aes128gcm16-prfsha256-ecp256",
        &[KeId::ECP_256],
        PrfId::PRF_HMAC_SHA2_256,
    ),
    (
        "aes256gcm16-prfsha384-x25519-ke1_ecp256",
        &[KeId::CURVE25519, KeId::ECP_256],
        PrfId::PRF_HMAC_SHA2_384,
    ),
    (
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
        &[KeId::CURVE25519, KeId::ML_KEM_768],
        PrfId::PRF_HMAC_SHA2_384,
    ),
    (
        "aes256gcm16-prfsha384-mlkem768",
        &[KeId::ML_KEM_768],
        PrfId::PRF_HMAC_SHA2_384,
    ),
];

fn bench(c: &mut Criterion) {
    let p: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let mut g = c.benchmark_group("ike");
    for &(suite, groups, prf) in SUITES {
        assert!(Proposal::parse(ProposalKind::Ike, suite).is_ok());
        let (a, b) = configs(suite);
        assert_eq!(
            handshake(p, &a, &b),
            2 * (groups.len() + 1),
            "IKE_SA_INIT, one IKE_INTERMEDIATE per additional key exchange and IKE_AUTH, no retries"
        );
        g.bench_with_input(BenchmarkId::new("handshake", suite), &(), |bch, _| {
            bch.iter(|| black_box(handshake(p, &a, &b)));
        });
        g.bench_with_input(BenchmarkId::new("ke+prf", suite), &(), |bch, _| {
            bch.iter(|| ke_prf(p, groups, prf));
        });
    }
    g.finish();
}

/// Times `handshake` and `ke+prf` back to back, alternately, so that contention from
/// other processes hits both alike, and prints per line the minimum and the median of
/// single runs, handshakes per second from the minimum, and the ratio of the minima.
#[allow(clippy::print_stdout)]
fn alternating() {
    let p: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let rounds: usize = std::env::var("HANDSHAKE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    println!("alternating runs ({rounds} each), single-threaded:");
    for &(suite, groups, prf) in SUITES {
        let (a, b) = configs(suite);
        let mut hs = Vec::with_capacity(rounds);
        let mut kp = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            black_box(handshake(p, &a, &b));
            hs.push(t.elapsed());
            let t = std::time::Instant::now();
            ke_prf(p, groups, prf);
            kp.push(t.elapsed());
        }
        hs.sort();
        kp.sort();
        let (hmin, hmed, kmin, kmed) = (hs[0], hs[rounds / 2], kp[0], kp[rounds / 2]);
        println!(
            "  {suite}: handshake min {hmin:.1?} median {hmed:.1?} ({:.0}/s); ke+prf min {kmin:.1?} median {kmed:.1?}; ratio of minima {:.2}, of medians {:.2}",
            1.0 / hmin.as_secs_f64(),
            hmin.as_secs_f64() / kmin.as_secs_f64(),
            hmed.as_secs_f64() / kmed.as_secs_f64(),
        );
    }
}

fn main() {
    let mut c = config().configure_from_args();
    bench(&mut c);
    c.final_summary();
    alternating();
}
