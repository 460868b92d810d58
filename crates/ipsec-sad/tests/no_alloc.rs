//! The two calls allocate nothing per packet: a counting global allocator (its own test
//! binary without the libtest harness, since the counters are process-wide and the
//! harness's own thread allocates now and then).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::alloc::System;

use common::*;
use ipsec_core::{Instant, Mode, PacketBuf};
use ipsec_sad::{Inbound, Outbound, PolicyId, SaOptions, UdpInbound, UdpOutbound, MAX_HEADROOM};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    process_outbound_and_inbound_do_not_allocate();
    udp_payload_paths_do_not_allocate();
    println!("no_alloc: 2 passed, 0 failed");
}

fn process_outbound_and_inbound_do_not_allocate() {
    let mut setups = Vec::new();
    for (mode, udp) in [
        (Mode::Tunnel, false),
        (Mode::Tunnel, true),
        (Mode::Transport, true),
    ] {
        let mut p = Pair::new(
            0x7100 + setups.len() as u32,
            0x7200 + setups.len() as u32,
            1,
        );
        p.mode = mode;
        p.udp = udp;
        if mode == Mode::Transport {
            p.ts = None;
        }
        let a = sad();
        let b = sad();
        a.set_outbound_spd(spd(true, mode));
        b.set_inbound_spd(spd(false, mode));
        a.add_sa(
            Instant::ZERO,
            &p.params(true),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
        b.add_sa(Instant::ZERO, &p.params(false), SaOptions::new())
            .unwrap();
        let pkt = match mode {
            Mode::Tunnel => udp4("10.0.1.5", "10.0.2.9", 1, 2, 1200, 3),
            Mode::Transport => udp4(A, B, 5000, 6000, 1200, 3),
        };
        setups.push((a, b, pkt));
    }
    {
        // AH in tunnel mode.
        let p = Pair::new(0x7300, 0x7301, 2);
        let ah = |at_a: bool| {
            let mut q = p.params(at_a);
            q.protocol = ipsec_core::SecurityProtocol::Ah;
            q.encr = None;
            q.encr_key_bits = 0;
            q.integ = ipsec_core::iana::IntegId::AUTH_HMAC_SHA2_256_128;
            q.inbound_keys = ipsec_core::KeyMaterial::new(&[], &[5; 32]).unwrap();
            q.outbound_keys = ipsec_core::KeyMaterial::new(&[], &[5; 32]).unwrap();
            q
        };
        let a = sad();
        let b = sad();
        a.set_outbound_spd(spd(true, Mode::Tunnel));
        b.set_inbound_spd(spd(false, Mode::Tunnel));
        a.add_sa(
            Instant::ZERO,
            &ah(true),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
        b.add_sa(Instant::ZERO, &ah(false), SaOptions::new())
            .unwrap();
        setups.push((a, b, udp4("10.0.1.5", "10.0.2.9", 1, 2, 1200, 3)));
    }
    let mut storage = vec![0u8; 4096];
    let ike = udp4(A, B, 500, 500, 40, 0);
    let mut round = |a: &ipsec_sad::Sad, b: &ipsec_sad::Sad, pkt: &[u8], n: u64| {
        storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(pkt);
        let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
        assert!(matches!(
            a.process_outbound(Instant(n), &mut buf),
            Outbound::Protect { .. }
        ));
        let r = buf.body_range();
        let mut buf = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
        assert!(matches!(
            b.process_inbound(Instant(n), &mut buf),
            Inbound::Deliver { .. }
        ));
        // Plaintext through the inbound SPD (BYPASS for IKE).
        storage[..ike.len()].copy_from_slice(&ike);
        let mut buf = PacketBuf::new(&mut storage[..], 0, ike.len()).unwrap();
        assert!(matches!(
            b.process_inbound(Instant(n), &mut buf),
            Inbound::Bypass(_)
        ));
    };
    // Warm-up: arc-swap sets up its per-thread state on first use.
    for (a, b, pkt) in &setups {
        round(a, b, pkt, 1);
    }
    let region = Region::new(GLOBAL);
    for n in 0..300u64 {
        for (a, b, pkt) in &setups {
            round(a, b, pkt, 2 + n);
        }
    }
    let change = region.change();
    assert_eq!(change.allocations + change.reallocations, 0, "{change:?}");

    // The same through `SadReader`s (made, as in a data plane, before the loop).
    let mut readers: Vec<_> = setups.iter().map(|(_, b, _)| b.reader()).collect();
    let mut storage = vec![0u8; 4096];
    let region = Region::new(GLOBAL);
    for n in 0..300u64 {
        for ((a, _, pkt), rb) in setups.iter().zip(readers.iter_mut()) {
            storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(pkt);
            let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
            let now = Instant(1_000 + n);
            assert!(matches!(
                a.process_outbound(now, &mut buf),
                Outbound::Protect { .. }
            ));
            let r = buf.body_range();
            let mut buf = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
            assert!(matches!(
                rb.process_inbound(now, &mut buf),
                Inbound::Deliver { .. }
            ));
            storage[..ike.len()].copy_from_slice(&ike);
            let mut buf = PacketBuf::new(&mut storage[..], 0, ike.len()).unwrap();
            assert!(matches!(
                rb.process_inbound(now, &mut buf),
                Inbound::Bypass(_)
            ));
        }
    }
    let change = region.change();
    assert_eq!(change.allocations + change.reallocations, 0, "{change:?}");
}

/// `process_outbound_udp` and `process_inbound_udp` (ESP-in-UDP payloads, keepalives,
/// IKE, an SA that needs raw IP), through the `Sad` and through a `SadReader`.
fn udp_payload_paths_do_not_allocate() {
    let mut setups = Vec::new();
    for (mode, udp) in [
        (Mode::Tunnel, true),
        (Mode::Transport, true),
        (Mode::Tunnel, false),
    ] {
        let mut p = Pair::new(
            0x7400 + setups.len() as u32,
            0x7500 + setups.len() as u32,
            3,
        );
        p.mode = mode;
        p.udp = udp;
        if mode == Mode::Transport {
            p.ts = None;
        }
        let a = sad();
        let b = sad();
        a.set_outbound_spd(spd(true, mode));
        a.add_sa(
            Instant::ZERO,
            &p.params(true),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
        b.add_sa(Instant::ZERO, &p.params(false), SaOptions::new())
            .unwrap();
        let pkt = match mode {
            Mode::Tunnel => udp4("10.0.1.5", "10.0.2.9", 1, 2, 1200, 3),
            Mode::Transport => udp4(A, B, 5000, 6000, 1200, 3),
        };
        setups.push((a, b, pkt, udp));
    }
    let local = SocketAddr::new(ip(B), 4500);
    let remote = SocketAddr::new(ip(A), 4500);
    let mut storage = vec![0u8; 4096];
    let mut round = |a: &ipsec_sad::Sad,
                     b: &mut dyn FnMut(&mut PacketBuf<&mut [u8]>) -> UdpInbound,
                     pkt: &[u8],
                     udp: bool,
                     now: Instant| {
        storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(pkt);
        let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
        let o = a.process_outbound_udp(now, &mut buf);
        if !udp {
            assert!(matches!(o, UdpOutbound::NeedsRawIp { .. }), "{o:?}");
            return;
        }
        assert!(matches!(o, UdpOutbound::Send { .. }), "{o:?}");
        let r = buf.body_range();
        let mut buf = PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
        assert!(matches!(b(&mut buf), UdpInbound::Deliver { .. }));
        storage[MAX_HEADROOM] = 0xff;
        let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, 1).unwrap();
        assert_eq!(b(&mut buf), UdpInbound::Keepalive);
        storage[MAX_HEADROOM..MAX_HEADROOM + 8].copy_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
        let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, 8).unwrap();
        assert_eq!(b(&mut buf), UdpInbound::Ike);
    };
    let mut n = 1u64;
    // Warm-up: arc-swap sets up its per-thread state on first use.
    for (a, b, pkt, udp) in &setups {
        let now = Instant(n);
        round(
            a,
            &mut |buf| b.process_inbound_udp(now, local, remote, buf),
            pkt,
            *udp,
            now,
        );
    }
    let region = Region::new(GLOBAL);
    for _ in 0..300 {
        n += 1;
        for (a, b, pkt, udp) in &setups {
            let now = Instant(n);
            round(
                a,
                &mut |buf| b.process_inbound_udp(now, local, remote, buf),
                pkt,
                *udp,
                now,
            );
        }
    }
    let change = region.change();
    assert_eq!(change.allocations + change.reallocations, 0, "{change:?}");

    let mut readers: Vec<_> = setups.iter().map(|(_, b, _, _)| b.reader()).collect();
    let region = Region::new(GLOBAL);
    for _ in 0..300 {
        n += 1;
        for ((a, _, pkt, udp), rb) in setups.iter().zip(readers.iter_mut()) {
            let now = Instant(n);
            round(
                a,
                &mut |buf| rb.process_inbound_udp(now, local, remote, buf),
                pkt,
                *udp,
                now,
            );
        }
    }
    let change = region.change();
    assert_eq!(change.allocations + change.reallocations, 0, "{change:?}");
}
