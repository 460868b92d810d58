//! Seal and open allocate nothing once the SAs exist: a counting global allocator
//! (its own test binary without libtest's harness, whose threads allocate while a
//! test runs: the counters are process-wide).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::alloc::System;

use common::build::{self, addr6, Ext6, Opt4, Opt6};
use ipsec_ah::OpenOptions;
use ipsec_ah::{integ, AhInbound, AhOutbound, PacketBuf, Tunnel, TunnelConfig};
use ipsec_core::{KeyMaterial, Spi};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let checks = seal_and_open_do_not_allocate();
    println!("no_alloc: {checks} passed, 0 failed");
}

fn seal_and_open_do_not_allocate() -> usize {
    let provider = &ipsec_crypto_rustcrypto::PROVIDER;
    let v4 = build::ipv4(
        &[Opt4::RouterAlert, Opt4::Timestamp(2)],
        0,
        true,
        17,
        &[7; 1400],
    )
    .bytes;
    let v6 = build::ipv6(
        &[
            Ext6::HopByHop(vec![Opt6 {
                typ: 0x3e,
                data: vec![1; 6],
            }]),
            Ext6::Routing {
                rtype: 0,
                addrs: vec![addr6(1), addr6(2)],
                segleft: 2,
            },
        ],
        0,
        0,
        6,
        &[9; 1300],
    )
    .bytes;
    let mut storage = vec![0u8; 4096];
    let mut checks = 0;
    for d in integ::ALL
        .iter()
        .copied()
        .filter(|d| d.name != "AES-192-GMAC")
    {
        for esn in [false, true] {
            let k = KeyMaterial::new(&[], &vec![3; d.key_len]).unwrap();
            let mut o = AhOutbound::new(provider, Spi(0x4242), d, &k, esn).unwrap();
            let mut i = AhInbound::new(provider, Spi(0x4242), d, &k, esn, 1024).unwrap();
            let mut t = Tunnel::new(TunnelConfig::new(
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ))
            .unwrap();
            let mut w = ipsec_core::ReplayWindow::new(1024).unwrap();
            let mut shared_seq = 1_000_000u64;
            let region = Region::new(GLOBAL);
            for n in 0..100usize {
                for p in [&v4, &v6] {
                    // Transport mode.
                    storage[256..256 + p.len()].copy_from_slice(p);
                    let mut b = PacketBuf::new(&mut storage[..], 256, p.len()).unwrap();
                    o.seal_transport(&mut b).unwrap();
                    let r = b.body_range();
                    let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                    i.open_transport(&mut b, OpenOptions::new()).unwrap();
                    // The shared-reference paths.
                    storage[256..256 + p.len()].copy_from_slice(p);
                    let mut b = PacketBuf::new(&mut storage[..], 256, p.len()).unwrap();
                    shared_seq += 1;
                    let seq = shared_seq;
                    o.seal_transport_at(&mut b, seq).unwrap();
                    let r = b.body_range();
                    let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                    i.open_transport_with(&mut b, &mut w, OpenOptions::new())
                        .unwrap();
                    // Tunnel mode.
                    storage[256..256 + p.len()].copy_from_slice(p);
                    let mut b = PacketBuf::new(&mut storage[..], 256, p.len() - n).unwrap();
                    if o.seal_tunnel(&mut t, &mut b).is_ok() {
                        let r = b.body_range();
                        let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                        let _ = i.open_tunnel(&mut b, OpenOptions::new());
                    }
                }
            }
            if esn {
                // ESN re-synchronization (RFC 4302 App. B3): two high halves ahead, the
                // normal open fails and the same buffer is retried.
                for (k, p) in [&v4, &v6].into_iter().enumerate() {
                    storage[256..256 + p.len()].copy_from_slice(p);
                    let mut b = PacketBuf::new(&mut storage[..], 256, p.len()).unwrap();
                    shared_seq += 1;
                    let seq = ((2 + 2 * k as u64) << 32) | shared_seq;
                    o.seal_transport_at(&mut b, seq).unwrap();
                    let r = b.body_range();
                    let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                    assert!(i
                        .open_transport_with(&mut b, &mut w, OpenOptions::new())
                        .is_err());
                    assert_eq!(
                        i.open_transport_with(&mut b, &mut w, OpenOptions::resync(2))
                            .unwrap()
                            .seq,
                        seq
                    );
                }
            }
            let change = region.change();
            let used = change.allocations + change.reallocations;
            assert_eq!(
                used, 0,
                "{} esn={esn}: {used} allocations in 600 seal/open pairs",
                d.name
            );
            checks += 1;
        }
    }
    checks
}
