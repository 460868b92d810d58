//! Seal and open allocate nothing once the SAs exist: a counting global allocator
//! (its own test binary without libtest's harness, whose threads allocate while a
//! test runs: the counters are process-wide).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::alloc::System;

use ipsec_core::{IpProto, KeyMaterial, Spi};
use ipsec_crypto::suites;
use ipsec_esp::tunnel::{Tunnel, TunnelConfig};
use ipsec_esp::udp::UdpPorts;
use ipsec_esp::OpenOptions;
use ipsec_esp::{EspInbound, EspOutbound, PacketBuf};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let checks = seal_and_open_do_not_allocate();
    println!("no_alloc: {checks} passed, 0 failed");
}

fn seal_and_open_do_not_allocate() -> usize {
    let mut checks = 0;
    let provider = &ipsec_crypto_rustcrypto::PROVIDER;
    let all = [
        (&suites::AES_GCM_16_128, None),
        (&suites::AES_GCM_16_256, None),
        (&suites::CHACHA20_POLY1305, None),
        (&suites::AES_GMAC_128, None),
        (&suites::AES_CBC_128, Some(&suites::HMAC_SHA1_96)),
        (&suites::AES_CBC_256, Some(&suites::HMAC_SHA512_256)),
        (&suites::NULL, Some(&suites::HMAC_SHA256_128)),
    ];
    let mut storage = vec![0u8; 4096];
    let mut copy = vec![0u8; 4096];
    for (encr, integ) in all {
        for esn in [false, true] {
            let ilen = integ.map_or(0, |d| d.key_len);
            let k = KeyMaterial::new(&vec![9; encr.keymat_len()], &vec![8; ilen]).unwrap();
            let mut o = EspOutbound::new(provider, Spi(0x4242), encr, integ, &k, esn).unwrap();
            let mut i = EspInbound::new(provider, Spi(0x4242), encr, integ, &k, esn, 1024).unwrap();
            let mut t = Tunnel::new(TunnelConfig::new(
                "192.0.2.1".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
            ))
            .unwrap();
            let inner = {
                let mut p = vec![
                    0x45, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                ];
                p.resize(1500, 0x33);
                p
            };

            let region = Region::new(GLOBAL);
            for n in 0..200usize {
                // Plain ESP.
                let len = n * 7 % 1400;
                let mut b = PacketBuf::new(&mut storage[..], 128, len).unwrap();
                o.seal(&mut b, IpProto::UDP).unwrap();
                let r = b.body_range();
                copy[..r.len()].copy_from_slice(&storage[r.clone()]);
                let mut b = PacketBuf::new(&mut copy[..], 0, r.len()).unwrap();
                i.open(&mut b, OpenOptions::new()).unwrap();
                // Tunnel mode.
                storage[128..128 + inner.len()].copy_from_slice(&inner);
                let mut b = PacketBuf::new(&mut storage[..], 128, inner.len()).unwrap();
                o.seal_tunnel(&mut t, &mut b).unwrap();
                let r = b.body_range();
                let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                i.open_tunnel(&mut b, OpenOptions::new()).unwrap();
                // Transport mode over UDP.
                storage[128..128 + inner.len()].copy_from_slice(&inner);
                let mut b = PacketBuf::new(&mut storage[..], 128, inner.len()).unwrap();
                o.seal_transport(&mut b, Some(UdpPorts::NAT_T)).unwrap();
                let r = b.body_range();
                let mut b = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                i.open_transport(&mut b, OpenOptions::new()).unwrap();
            }
            let change = region.change();
            let used = change.allocations + change.reallocations;
            assert_eq!(
                used, 0,
                "{} esn={esn}: {used} allocations in 600 seal/open pairs",
                encr.name
            );
            checks += 1;
        }
    }
    checks
}
