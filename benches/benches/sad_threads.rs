//! The SAD's outbound path on one thread and on two, on the same `Sad`, as the gateway's
//! workers use it: `Sad::process_outbound_udp` (ESP in UDP, tunnel mode, AES-GCM-128,
//! ESN, default provider) of 1400-byte IPv4 packets.
//!
//! Group `sad-threads/1400`, throughput in bytes of plaintext per second, one
//! iteration being one packet whichever the number of threads (the iterations are
//! split between the threads and the wall time from a common start to the last
//! thread's end is measured), so the ratio of two lines is the speed-up:
//! - `one-sa/1`: one thread, one SA;
//! - `one-sa/2`: two threads sealing on the same SA (the shared sequence-number
//!   counter and packet counters are the only state they share);
//! - `two-sas/2`, the baseline: two threads on the same `Sad`, each with its own SA
//!   (its own rule), so that nothing per-SA is shared: what two cores give at best.
//!
//! - `shared-atomics/1` and `/2`, the cost of sharing alone: per iteration, the three
//!   atomic read-modify-writes that sealing does on a shared SA (sequence number, a
//!   compare-and-swap from below its limit; packet count, byte count; the counts on a
//!   line of their own, as in the SA), with
//!   no crypto, on one thread and on two sharing the same atomics.
//!
//! Each thread also holds a `SadReader`, as a gateway worker does (the outbound path
//! does not use it: `process_outbound_udp` is a `Sad` method).
//!
//! Run: `cargo bench -p ipsec-benches --bench sad_threads` (about 20 seconds; add
//! `-- --warm-up-time 1 --measurement-time 3` for shorter lines). On a machine with
//! fewer than two idle cores the two-thread lines measure the scheduler, not the SAD.
//! Results: docs/performance.md, "SAD on several threads".
#![allow(clippy::disallowed_methods)] // Instant::now: this is a benchmark.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::{ChildSaParams, KeyMaterial, Lifetime, Mode, PacketBuf, Spi, TsSet, UdpEncap};
use ipsec_sad::{
    Action, AddrRange, PolicyId, PolicyRule, SaOptions, SaTemplate, Sad, SadConfig, Selector, Spd,
    UdpOutbound, MAX_HEADROOM, MAX_TAILROOM,
};

mod common;

const SIZE: usize = 1400;
const NOW: ipsec_core::Instant = ipsec_core::Instant(1_000_000_000);
const LOCAL: &str = "192.0.2.1";
const REMOTE: &str = "192.0.2.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn params(spi: u32) -> ChildSaParams {
    ChildSaParams::esp(
        ip(LOCAL),
        ip(REMOTE),
        EncrId::ENCR_AES_GCM_16,
        128,
        (Spi(spi), KeyMaterial::new(&[0x11; 20], &[]).unwrap()),
        (
            Spi(spi + 0x1000),
            KeyMaterial::new(&[0x22; 20], &[]).unwrap(),
        ),
    )
    .with_mode(Mode::Tunnel)
    .with_integ(IntegId::NONE)
    .with_ke(KeId::NONE)
    .with_esn(true)
    .with_selectors(TsSet::new(), TsSet::new())
    .with_udp_encap(Some(UdpEncap::DEFAULT))
    .with_lifetime(Lifetime::UNLIMITED)
    .with_replay_window(1024)
}

/// The packet of flow `k` (10.0.k.1 to 10.0.k.2): flow 0 matches rule 1, flow 1 rule 2.
fn packet(k: u8) -> Vec<u8> {
    let mut p = common::ipv4_packet(SIZE);
    p[14] = k;
    p[18] = k;
    p[10..12].fill(0);
    let c = ipsec_core::ip::ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// A `Sad` with two rules (flow 0, flow 1), each with its own SA.
fn sad() -> Sad {
    let sad = Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::default()).unwrap();
    let host = |k: u8, h: u8| AddrRange::prefix(IpAddr::from([10, 0, k, h]), 32).unwrap();
    let rule = |id: u32, k: u8| {
        PolicyRule::new(
            id,
            Selector::between(host(k, 1), host(k, 2)),
            Action::Protect(SaTemplate::esp_tunnel(ip(LOCAL), ip(REMOTE))),
        )
    };
    sad.set_outbound_spd(Spd::new(vec![rule(1, 0), rule(2, 1)]).unwrap());
    for (id, spi) in [(1, 0x2000), (2, 0x3000)] {
        sad.add_sa(NOW, &params(spi), SaOptions::new().policy(PolicyId(id)))
            .unwrap();
    }
    sad
}

/// Seals `iters` packets on `threads` threads (thread `t` sends `packets[t]`) and
/// returns the wall time from the common start to the last thread's end.
fn run(sad: &Sad, packets: &[Vec<u8>], threads: usize, iters: u64) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pkt = &packets[t];
                let n = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                let start = &start;
                s.spawn(move || {
                    let _reader = sad.reader();
                    let mut storage = vec![0u8; MAX_HEADROOM + SIZE + MAX_TAILROOM];
                    start.wait();
                    for _ in 0..n {
                        storage[MAX_HEADROOM..MAX_HEADROOM + SIZE].copy_from_slice(pkt);
                        let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, SIZE).unwrap();
                        let o = sad.process_outbound_udp(NOW, &mut buf);
                        debug_assert!(matches!(o, UdpOutbound::Send { .. }));
                        black_box(o);
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        t0.elapsed()
    })
}

/// The SA's shared outbound state, laid out as in the SA: the sequence number and its
/// limit, and the packet and byte counts on a cache line of their own.
struct Shared {
    seq: AtomicU64,
    seq_limit: AtomicU64,
    counts: Counts,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            seq: AtomicU64::new(0),
            seq_limit: AtomicU64::new(u64::MAX),
            counts: Counts::default(),
        }
    }
}

/// Takes a sequence number as the SA does: a compare-and-swap from below the limit.
fn take_seq(shared: &Shared) -> Option<u64> {
    let mut taken = shared.seq.load(SeqCst);
    loop {
        if taken >= shared.seq_limit.load(SeqCst) {
            return None;
        }
        match shared
            .seq
            .compare_exchange_weak(taken, taken + 1, SeqCst, SeqCst)
        {
            Ok(_) => return Some(taken + 1),
            Err(now) => taken = now,
        }
    }
}

#[derive(Default)]
#[repr(align(64))]
struct Counts {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// `iters` rounds of the three read-modify-writes of a seal, split over `threads`.
fn run_atomics(shared: &Shared, threads: usize, iters: u64) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for _ in 0..n {
                        black_box(shared.counts.packets.fetch_add(1, Relaxed));
                        black_box(shared.counts.bytes.fetch_add(SIZE as u64, Relaxed));
                        black_box(take_seq(shared));
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        t0.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let sad = sad();
    // Both flows are sealed, by their own SA.
    for k in [0, 1] {
        let mut s = packet(k);
        s.resize(MAX_HEADROOM + SIZE + MAX_TAILROOM, 0);
        s.copy_within(0..SIZE, MAX_HEADROOM);
        let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, SIZE).unwrap();
        let o = sad.process_outbound_udp(NOW, &mut b);
        assert!(
            matches!(o, UdpOutbound::Send { policy, .. } if policy == PolicyId(u32::from(k) + 1)),
            "{o:?}"
        );
    }
    let same = [packet(0), packet(0)];
    let own = [packet(0), packet(1)];
    let mut g = c.benchmark_group("sad-threads");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (name, threads, pkts) in [
        ("one-sa", 1, &same),
        ("one-sa", 2, &same),
        ("two-sas", 2, &own),
    ] {
        g.bench_function(BenchmarkId::new(format!("{name}/{SIZE}"), threads), |b| {
            b.iter_custom(|iters| run(&sad, pkts, threads, iters))
        });
    }
    let shared = Shared::default();
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::new("shared-atomics", threads), |b| {
            b.iter_custom(|iters| run_atomics(&shared, threads, iters))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
