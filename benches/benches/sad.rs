//! The SAD and SPD beside their baselines, in one run.
//!
//! Groups:
//! - `sad-lookup`: inbound SPI lookup (`Sad::lookup_inbound`) among 1 000 000 installed
//!   ESP SAs: cycling through 65 536 random installed SPIs (`random`: the active SAs of
//!   a busy gateway, about 2 MB of table lines), through all million in hash-unrelated
//!   order (`uniform`: a 64 MB working set, every lookup a cache miss), and one SPI
//!   over and over (`hot`); each also through a `SadReader` (`reader-*`), and
//!   `reader-uniform-chained`, in which every lookup waits for the one before (latency).
//! - `spd-lookup`: 10 000 rules (site-to-site /24 prefixes, one in ten port-specific,
//!   a trailing catch-all); the decision-tree index (`indexed`) beside a first-match
//!   scan of the same rules (`linear`), on the same 4 096 random packets.
//! - `two-call/<size>`: `process_outbound` on node A and `process_inbound` on node B
//!   (`sad`; `sad-reader` opens through a `SadReader`)
//!   (tunnel mode, AES-GCM-128, ESN, default provider) beside the bare ESP path
//!   (`EspOutbound::seal_tunnel` + `EspInbound::open_tunnel`) on the same bytes.
//!
//! Before the groups it prints the heap bytes per installed SA, measured with a counting
//! allocator over 100 000 SAs.
//!
//! Run: `cargo bench -p ipsec-benches --bench sad` (about two minutes on 2 cores; it
//! needs about 4 GB of memory for the million SAs). Results are summarised in
//! docs/performance.md, "SAD and SPD".

use std::alloc::System;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::{
    ChildSaParams, Instant, IpProto, KeyMaterial, Lifetime, Mode, PacketBuf, SecurityProtocol, Spi,
    TsSet,
};
use ipsec_esp::tunnel::{Tunnel, TunnelConfig};
use ipsec_esp::OpenOptions;
use ipsec_esp::{EspInbound, EspOutbound};
use ipsec_sad::{
    Action, AddrRange, FlowKey, PolicyId, PolicyRule, PortSel, PortValue, SaOptions, SaTemplate,
    Sad, SadConfig, Selector, Spd, MAX_HEADROOM,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A small deterministic generator (xorshift), so every run uses the same numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn params(in_spi: u32, out_spi: u32, local: &str, remote: &str) -> ChildSaParams {
    ChildSaParams::esp(
        ip(local),
        ip(remote),
        EncrId::ENCR_AES_GCM_16,
        128,
        (Spi(in_spi), KeyMaterial::new(&[0x11; 20], &[]).unwrap()),
        (Spi(out_spi), KeyMaterial::new(&[0x22; 20], &[]).unwrap()),
    )
    .with_mode(Mode::Tunnel)
    .with_integ(IntegId::NONE)
    .with_ke(KeId::NONE)
    .with_esn(true)
    .with_selectors(TsSet::new(), TsSet::new())
    .with_udp_encap(None)
    .with_lifetime(Lifetime::UNLIMITED)
    .with_replay_window(1024)
}

/// `n` distinct SPIs above the reserved range.
fn spis(n: usize, rng: &mut Rng) -> Vec<u32> {
    let mut set = std::collections::HashSet::with_capacity(n);
    while set.len() < n {
        let s = (rng.next() as u32) | 0x100;
        set.insert(s);
    }
    set.into_iter().collect()
}

fn fill(sad: &Sad, spis: &[u32]) {
    for chunk in spis.chunks(50_000) {
        let ps: Vec<ChildSaParams> = chunk
            .iter()
            .map(|&s| params(s, s ^ 1, "192.0.2.2", "192.0.2.1"))
            .collect();
        let r = sad.add_sas(Instant::ZERO, ps.iter().map(|p| (p, SaOptions::new())));
        assert!(r.iter().all(Result::is_ok));
    }
}

fn memory_per_sa() {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let mut rng = Rng(0x5eed);
    let s = spis(100_000, &mut rng);
    let sad = Sad::new(provider, SadConfig::default()).unwrap();
    let region = Region::new(GLOBAL);
    fill(&sad, &s);
    let c = region.change();
    let live = c.bytes_allocated as i64 + c.bytes_reallocated as i64 - c.bytes_deallocated as i64;
    eprintln!(
        "memory: {} bytes per SA pair ({} SAs, {:.1} MB live, default provider, exportable)",
        live / 100_000,
        sad.len(),
        live as f64 / 1e6
    );
}

fn bench_lookup(c: &mut Criterion) {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let all = spis(1_000_000, &mut rng);
    let sad = Sad::new(provider, SadConfig::default()).unwrap();
    fill(&sad, &all);
    let probe: Vec<Spi> = (0..65_536)
        .map(|_| Spi(all[(rng.next() % all.len() as u64) as usize]))
        .collect();
    let (dst, src) = (ip("192.0.2.2"), ip("192.0.2.1"));
    let mut g = c.benchmark_group("sad-lookup");
    let mut i = 0usize;
    g.bench_function("random", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            black_box(sad.lookup_inbound(probe[i], SecurityProtocol::Esp, dst, src))
        })
    });
    // Every installed SPI once per million lookups: a 64 MB working set, no cache help.
    let every: Vec<Spi> = all.iter().map(|&s| Spi(s)).collect();
    let mut j = 0usize;
    g.bench_function("uniform", |b| {
        b.iter(|| {
            j += 1;
            if j == every.len() {
                j = 0;
            }
            black_box(sad.lookup_inbound(every[j], SecurityProtocol::Esp, dst, src))
        })
    });
    let one = probe[7];
    g.bench_function("hot", |b| {
        b.iter(|| black_box(sad.lookup_inbound(black_box(one), SecurityProtocol::Esp, dst, src)))
    });
    // The same three patterns through a `SadReader`: no memory barrier per lookup, so
    // the cache misses of consecutive lookups overlap.
    let mut reader = sad.reader();
    let mut i = 0usize;
    g.bench_function("reader-random", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            black_box(reader.lookup_inbound(probe[i], SecurityProtocol::Esp, dst, src))
        })
    });
    let mut j = 0usize;
    g.bench_function("reader-uniform", |b| {
        b.iter(|| {
            j += 1;
            if j == every.len() {
                j = 0;
            }
            black_box(reader.lookup_inbound(every[j], SecurityProtocol::Esp, dst, src))
        })
    });
    g.bench_function("reader-hot", |b| {
        b.iter(|| black_box(reader.lookup_inbound(black_box(one), SecurityProtocol::Esp, dst, src)))
    });
    // Latency: each lookup's SPI depends on the previous lookup's result (through a
    // zero the compiler cannot see), so no two lookups overlap. A cache-missing lookup
    // then costs a full DRAM access plus the page walk.
    let zero = black_box(0u64);
    let mut j = 0usize;
    let mut last = 0u64;
    g.bench_function("reader-uniform-chained", |b| {
        b.iter(|| {
            j += 1 + (last & zero) as usize;
            if j >= every.len() {
                j = 0;
            }
            let r = reader.lookup_inbound(every[j], SecurityProtocol::Esp, dst, src);
            last = r.map_or(0, |id| id.0);
            r
        })
    });
    g.finish();
}

fn bench_spd(c: &mut Criterion) {
    let mut rules = Vec::with_capacity(10_000);
    let local = AddrRange::prefix(ip("172.16.0.0"), 12).unwrap();
    for i in 0..9_999u32 {
        let net = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
        let mut sel = Selector::between(local, AddrRange::prefix(net, 24).unwrap());
        if i % 10 == 0 {
            sel = sel.with_ports(IpProto::TCP, PortSel::Any, PortSel::port(443));
        }
        let action = Action::Protect(SaTemplate::esp_tunnel(ip("192.0.2.1"), ip("192.0.2.2")));
        rules.push(PolicyRule::new(i, sel, action));
    }
    rules.push(PolicyRule::new(99_999, Selector::ANY, Action::Discard));
    let spd = Spd::new(rules).unwrap();
    eprintln!("spd index: {:?}", spd.index_stats());
    let mut rng = Rng(42);
    let keys: Vec<FlowKey> = (0..4096)
        .map(|_| {
            let r = rng.next();
            let net = (r % 10_500) as u32; // ~5 % miss every rule but the catch-all
            let remote = IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 + (net << 8) + (r >> 32) as u32 % 256,
            ));
            let local = IpAddr::V4(Ipv4Addr::from(0xac10_0000 + (r >> 40) as u32 % 4096));
            let proto = if r & 1 == 0 {
                IpProto::TCP
            } else {
                IpProto::UDP
            };
            FlowKey::new(
                local,
                remote,
                proto,
                PortValue::Port(40_000),
                PortValue::Port(443),
            )
        })
        .collect();
    for k in &keys {
        assert_eq!(spd.lookup(k), spd.lookup_linear(k));
    }
    let mut g = c.benchmark_group("spd-lookup");
    let mut i = 0usize;
    g.bench_function("indexed", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(spd.lookup(&keys[i]))
        })
    });
    g.bench_function("linear", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(spd.lookup_linear(&keys[i]))
        })
    });
    g.finish();
}

fn udp4(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 1, 5]);
    p[16..20].copy_from_slice(&[10, 0, 2, 9]);
    let c = ipsec_core::ip::ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&80u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

fn bench_two_call(c: &mut Criterion) {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let (a_ip, b_ip) = ("192.0.2.1", "192.0.2.2");
    let a = Sad::new(provider, SadConfig::default()).unwrap();
    let b = Sad::new(provider, SadConfig::default()).unwrap();
    let rule = PolicyRule::new(
        1,
        Selector::between(AddrRange::ANY_V4, AddrRange::ANY_V4),
        Action::Protect(SaTemplate::esp_tunnel(ip(a_ip), ip(b_ip))),
    );
    a.set_outbound_spd(Spd::new(vec![rule]).unwrap());
    let mut pa = params(0x2000, 0x1000, a_ip, b_ip);
    pa.outbound_keys = KeyMaterial::new(&[0x11; 20], &[]).unwrap();
    a.add_sa(Instant::ZERO, &pa, SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    b.add_sa(
        Instant::ZERO,
        &params(0x1000, 0x2000, b_ip, a_ip),
        SaOptions::new(),
    )
    .unwrap();
    // Bare ESP with the same keys.
    let keys = KeyMaterial::new(&[0x33; 20], &[]).unwrap();
    let suite = &ipsec_crypto::suites::AES_GCM_16_128;
    let mut out = EspOutbound::new(provider, Spi(0x3000), suite, None, &keys, true).unwrap();
    let mut inb = EspInbound::new(provider, Spi(0x3000), suite, None, &keys, true, 1024).unwrap();
    let mut tun = Tunnel::new(TunnelConfig::new(ip(a_ip), ip(b_ip))).unwrap();

    let mut g = c.benchmark_group("two-call");
    for size in [64usize, 1400] {
        let pkt = udp4(size);
        let mut storage = vec![0u8; 2048];
        g.throughput(Throughput::Bytes(size as u64));
        let mut rb = b.reader();
        // `now` only grows, across both lines.
        let mut n = 0u64;
        for reader in [false, true] {
            let name = if reader { "sad-reader" } else { "sad" };
            g.bench_with_input(BenchmarkId::new(name, size), &pkt, |bch, pkt| {
                bch.iter(|| {
                    n += 1;
                    storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(pkt);
                    let mut buf =
                        PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
                    let o = a.process_outbound(Instant(n), &mut buf);
                    let r = buf.body_range();
                    let mut buf = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                    let i = if reader {
                        rb.process_inbound(Instant(n), &mut buf)
                    } else {
                        b.process_inbound(Instant(n), &mut buf)
                    };
                    black_box((o, i))
                })
            });
        }
        g.bench_with_input(BenchmarkId::new("bare-esp", size), &pkt, |bch, pkt| {
            bch.iter(|| {
                storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(pkt);
                let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
                let s = out.seal_tunnel(&mut tun, &mut buf).unwrap();
                let r = buf.body_range();
                let mut buf = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                let o = inb.open_tunnel(&mut buf, OpenOptions::new()).unwrap();
                black_box((s, o))
            })
        });
    }
    g.finish();
}

fn main() {
    memory_per_sa();
    let mut c = config().configure_from_args();
    bench_spd(&mut c);
    bench_two_call(&mut c);
    bench_lookup(&mut c);
    c.final_summary();
}
