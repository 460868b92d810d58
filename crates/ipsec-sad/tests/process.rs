//! The two-call processing model end to end: two SADs (node A and node B) exchange
//! real ESP packets.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipsec_core::{
    Instant, IpProto, Lifetime, LifetimeLimits, Mode, PacketBuf, SecurityProtocol, Spi,
};
use ipsec_sad::{
    Action, AddrRange, DropReason, Event, ExpiryCause, ImportOptions, Inbound, InboundLookup,
    Outbound, PolicyId, PolicyRule, PortSel, SaOptions, Sad, SadConfig, SadError, Selector,
    SeqRange, Spd,
};

const T: Instant = Instant(1_000_000_000);

fn nodes(pair: Pair) -> (Sad, Sad, ipsec_sad::SaId, ipsec_sad::SaId) {
    let a = sad();
    let b = sad();
    a.set_outbound_spd(spd(true, pair.mode));
    b.set_outbound_spd(spd(false, pair.mode));
    let ia = a
        .add_sa(
            Instant::ZERO,
            &pair.params(true),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    let ib = b
        .add_sa(
            Instant::ZERO,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    (a, b, ia, ib)
}

/// Sends `packet` from `tx` to `rx`: the outbound result, the inbound result and what
/// the receiver's buffer holds.
fn send(tx: &Sad, rx: &Sad, now: Instant, packet: &[u8]) -> (Outbound, Option<Inbound>, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound(now, &mut b);
    if !matches!(o, Outbound::Protect { .. }) {
        return (o, None, b.body().to_vec());
    }
    let wire = b.body().to_vec();
    let (mut s2, len) = storage(&wire);
    let mut b2 = PacketBuf::new(&mut s2[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound(now, &mut b2);
    (o, Some(i), b2.body().to_vec())
}

fn deliver(rx: &Sad, now: Instant, wire: &[u8]) -> (Inbound, Vec<u8>) {
    let (mut s, len) = storage(wire);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound(now, &mut b);
    (i, b.body().to_vec())
}

fn seal(tx: &Sad, now: Instant, packet: &[u8]) -> (Outbound, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound(now, &mut b);
    (o, b.body().to_vec())
}

#[test]
fn tunnel_round_trip_both_ways_with_stats() {
    let (a, b, ia, ib) = nodes(Pair::new(0x1000, 0x2000, 1));
    for n in 1..=5u64 {
        let p = udp4("10.0.1.5", "10.0.2.9", 1234, 80, 100, n as u8);
        let (o, i, got) = send(&a, &b, T, &p);
        assert!(
            matches!(o, Outbound::Protect { seq, spi: Spi(0x1000), policy: PolicyId(1), .. } if seq == n),
            "{o:?}"
        );
        assert!(
            matches!(i, Some(Inbound::Deliver { seq, next_header: IpProto::IPV4, udp: None, .. }) if seq == n),
            "{i:?}"
        );
        assert_eq!(got, p);
        let back = udp4("10.0.2.9", "10.0.1.5", 80, 1234, 10, 7);
        let (_, i, got) = send(&b, &a, T, &back);
        assert!(matches!(i, Some(Inbound::Deliver { .. })));
        assert_eq!(got, back);
    }
    let sa = a.sa_stats(ia).unwrap();
    assert_eq!(
        (sa.out_packets, sa.out_bytes, sa.in_packets),
        (5, 5 * 128, 5)
    );
    let sb = b.sa_stats(ib).unwrap();
    assert_eq!(
        (sb.in_packets, sb.in_bytes, sb.out_packets),
        (5, 5 * 128, 5)
    );
    assert_eq!(sb.drops.total(), 0);
    assert_eq!(a.sa_info(ia).unwrap().last_seq, 5);
}

#[test]
fn udp_encapsulated_and_transport_mode() {
    let mut p = Pair::new(0x1001, 0x2001, 2);
    p.udp = true;
    let (a, b, _, _) = nodes(p);
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 50, 1);
    let (_, wire) = seal(&a, T, &pkt);
    assert_eq!(wire[9], 17, "outer protocol is UDP");
    assert_eq!(&wire[22..24], &4500u16.to_be_bytes());
    let (i, got) = deliver(&b, T, &wire);
    assert!(
        matches!(i, Inbound::Deliver { udp: Some(u), .. } if u.src == 4500),
        "{i:?}"
    );
    assert_eq!(got, pkt);

    // Transport mode between the hosts themselves.
    let mut p = Pair::new(0x1002, 0x2002, 3);
    p.mode = Mode::Transport;
    p.ts = None;
    let (a, b, _, _) = nodes(p);
    let pkt = udp4(A, B, 5000, 6000, 64, 9);
    let (o, i, got) = send(&a, &b, T, &pkt);
    assert!(matches!(o, Outbound::Protect { .. }), "{o:?}");
    assert!(
        matches!(
            i,
            Some(Inbound::Deliver {
                next_header: IpProto::UDP,
                ..
            })
        ),
        "{i:?}"
    );
    assert_eq!(got, pkt);
}

#[test]
fn bypass_discard_and_acquire() {
    let a = sad();
    a.set_outbound_spd(spd(true, Mode::Tunnel));
    // IKE is bypassed, unmatched traffic discarded.
    let (o, _) = seal(&a, T, &udp4(A, B, 500, 500, 20, 0));
    assert_eq!(o, Outbound::Bypass(PolicyId(2)));
    let (o, _) = seal(&a, T, &udp4("10.9.9.9", B, 1, 1, 20, 0));
    assert_eq!(o, Outbound::Discard(Some(PolicyId(3))));
    // The PROTECT rule has no SA yet: ACQUIRE, reported once per retry interval.
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1234, 80, 20, 0);
    for _ in 0..3 {
        let (o, _) = seal(&a, T, &pkt);
        assert!(
            matches!(o, Outbound::Acquire(q) if q.policy == PolicyId(1)),
            "{o:?}"
        );
    }
    let ev = a.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(matches!(ev[0], Event::Acquire(q) if q.flow.remote == ip("10.0.2.9")));
    let (o, _) = seal(&a, Instant(T.0 + 2_000_000_000), &pkt);
    assert!(matches!(o, Outbound::Acquire(_)));
    assert_eq!(a.drain_events().len(), 1);
    // Once an SA is bound, the same packet is protected.
    a.add_sa(
        T,
        &Pair::new(0x1003, 0x2003, 4).params(true),
        SaOptions::new().policy(PolicyId(1)),
    )
    .unwrap();
    assert!(matches!(seal(&a, T, &pkt).0, Outbound::Protect { .. }));
    // An empty SPD discards everything.
    a.set_outbound_spd(Spd::empty());
    assert_eq!(seal(&a, T, &pkt).0, Outbound::Discard(None));
}

#[test]
fn decapsulated_packet_outside_the_sa_selectors_is_dropped() {
    // A's SA allows any selectors, B's only 10.0.1.0/24 -> 10.0.2.0/24.
    let pair = Pair::new(0x1004, 0x2004, 5);
    let a = sad();
    let b = sad();
    let mut wide = pair;
    wide.ts = None;
    a.set_outbound_spd(
        Spd::new(vec![PolicyRule::new(
            1,
            Selector::ANY,
            Action::Protect(ipsec_sad::SaTemplate::esp_tunnel(ip(A), ip(B))),
        )])
        .unwrap(),
    );
    a.add_sa(T, &wide.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    let ib = b.add_sa(T, &pair.params(false), SaOptions::new()).unwrap();
    let ok = udp4("10.0.1.5", "10.0.2.9", 1, 2, 10, 0);
    assert!(matches!(
        send(&a, &b, T, &ok).1,
        Some(Inbound::Deliver { .. })
    ));
    // Spoofed inner source, and an inner destination outside B's side.
    for bad in [
        udp4("10.0.7.5", "10.0.2.9", 1, 2, 10, 0),
        udp4("10.0.1.5", "10.0.3.9", 1, 2, 10, 0),
    ] {
        let (o, i, _) = send(&a, &b, T, &bad);
        assert!(matches!(o, Outbound::Protect { .. }));
        assert_eq!(i, Some(Inbound::Drop(DropReason::PolicyMismatch)));
    }
    let s = b.sa_stats(ib).unwrap();
    assert_eq!(s.drops.get(DropReason::PolicyMismatch), 2);
    // Outbound, a packet outside the bound SA's selectors asks for another SA.
    let narrow = sad();
    narrow.set_outbound_spd(
        Spd::new(vec![PolicyRule::new(
            1,
            Selector::ANY,
            Action::Protect(ipsec_sad::SaTemplate::esp_tunnel(ip(A), ip(B))),
        )])
        .unwrap(),
    );
    narrow
        .add_sa(T, &pair.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    assert!(matches!(
        seal(&narrow, T, &udp4("10.0.7.5", "10.0.2.9", 1, 2, 10, 0)).0,
        Outbound::Acquire(_)
    ));
}

#[test]
fn replay_tamper_unknown_spi_and_plaintext_policy() {
    let (a, b, _, ib) = nodes(Pair::new(0x1005, 0x2005, 6));
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 40, 3);
    let (_, wire) = seal(&a, T, &pkt);
    assert!(matches!(deliver(&b, T, &wire).0, Inbound::Deliver { .. }));
    assert_eq!(deliver(&b, T, &wire).0, Inbound::Drop(DropReason::Replay));
    let (_, mut wire2) = seal(&a, T, &pkt);
    let last = wire2.len() - 1;
    wire2[last] ^= 1;
    assert_eq!(
        deliver(&b, T, &wire2).0,
        Inbound::Drop(DropReason::Integrity)
    );
    // The forged packet did not move the window: the genuine one still arrives.
    wire2[last] ^= 1;
    assert!(matches!(
        deliver(&b, T, &wire2).0,
        Inbound::Deliver { seq: 2, .. }
    ));
    let s = b.sa_stats(ib).unwrap();
    assert_eq!(
        (
            s.drops.get(DropReason::Replay),
            s.drops.get(DropReason::Integrity)
        ),
        (1, 1)
    );
    // Unknown SPI.
    let mut wire3 = wire.clone();
    wire3[20..24].copy_from_slice(&0x9999u32.to_be_bytes());
    assert_eq!(
        deliver(&b, T, &wire3).0,
        Inbound::Drop(DropReason::UnknownSpi)
    );
    assert_eq!(b.drop_counts().get(DropReason::UnknownSpi), 1);
    // Plaintext: inbound SPD decides.
    b.set_inbound_spd(spd(false, Mode::Tunnel));
    assert_eq!(
        deliver(&b, T, &udp4(A, B, 500, 500, 8, 0)).0,
        Inbound::Bypass(PolicyId(2))
    );
    assert_eq!(
        deliver(&b, T, &udp4("10.0.1.5", "10.0.2.9", 1, 2, 8, 0)).0,
        Inbound::Drop(DropReason::Unprotected)
    );
    assert_eq!(
        deliver(&b, T, &udp4("10.7.0.1", B, 1, 2, 8, 0)).0,
        Inbound::Drop(DropReason::PolicyDiscard)
    );
    // A NAT-keepalive on 4500.
    let mut ka = udp4(A, B, 4500, 4500, 1, 0xff);
    ka[28] = 0xff;
    assert_eq!(
        deliver(&b, T, &ka).0,
        Inbound::Drop(DropReason::NatKeepalive)
    );
    assert_eq!(
        deliver(&b, T, &[0x45, 0, 0]).0,
        Inbound::Drop(DropReason::Malformed)
    );
}

#[test]
fn non_initial_fragments_match_only_any_port_rules() {
    let a = sad();
    a.set_outbound_spd(
        Spd::new(vec![
            PolicyRule::new(
                1,
                Selector::ANY.with_ports(IpProto::UDP, PortSel::Any, PortSel::port(53)),
                Action::Bypass,
            ),
            PolicyRule::new(
                2,
                Selector::ANY.with_ports(IpProto::UDP, PortSel::Any, PortSel::Any),
                Action::Discard,
            ),
        ])
        .unwrap(),
    );
    let mut frag = udp4("10.0.1.5", "10.0.2.9", 1, 53, 16, 0);
    assert_eq!(seal(&a, T, &frag).0, Outbound::Bypass(PolicyId(1)));
    // Offset 3 (24 bytes): the "ports" are payload bytes and must not be read.
    frag[6..8].copy_from_slice(&3u16.to_be_bytes());
    let c = ipsec_core::ip::ipv4_checksum(&{
        let mut h = frag[..20].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(seal(&a, T, &frag).0, Outbound::Discard(Some(PolicyId(2))));
}

#[test]
fn packet_and_byte_lifetimes_raise_events_and_end_the_sa() {
    let mut p = Pair::new(0x1006, 0x2006, 7);
    p.lifetime = Lifetime {
        soft: LifetimeLimits {
            packets: Some(3),
            ..LifetimeLimits::UNLIMITED
        },
        hard: LifetimeLimits {
            packets: Some(5),
            ..LifetimeLimits::UNLIMITED
        },
    };
    let (a, b, ia, _) = nodes(p);
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 10, 0);
    for n in 1..=5 {
        assert!(
            matches!(send(&a, &b, T, &pkt).1, Some(Inbound::Deliver { .. })),
            "packet {n}"
        );
        if n == 3 {
            let e = a.poll_event();
            assert!(
                matches!(e, Some(Event::SoftExpired { sa, cause: ExpiryCause::Packets(_), .. }) if sa == ia),
                "{e:?}"
            );
            assert_eq!(a.poll_event(), None);
        }
    }
    // The fifth packet was the last: the SA is dead and reported.
    let e = a.drain_events();
    assert!(
        matches!(e.as_slice(), [Event::HardExpired { sa, .. }] if *sa == ia),
        "{e:?}"
    );
    assert!(a.sa_info(ia).is_none(), "removed when the event was polled");
    assert!(matches!(seal(&a, T, &pkt).0, Outbound::Acquire(_)));

    // Bytes, inbound: B's SA ends after 300 bytes delivered.
    let p = Pair::new(0x1007, 0x2007, 8);
    let (a, b) = (sad(), sad());
    a.set_outbound_spd(spd(true, Mode::Tunnel));
    a.add_sa(T, &p.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    let mut limited = p.params(false);
    limited.lifetime.hard.bytes = Some(300);
    let ib = b.add_sa(T, &limited, SaOptions::new()).unwrap();
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 100 - 28, 0);
    for _ in 0..3 {
        assert!(matches!(
            send(&a, &b, T, &pkt).1,
            Some(Inbound::Deliver { .. })
        ));
    }
    let e = b.drain_events();
    assert!(
        matches!(e.as_slice(), [Event::HardExpired { sa, cause: ExpiryCause::Bytes(ipsec_sad::Direction::Inbound), .. }] if *sa == ib),
        "{e:?}"
    );
    assert_eq!(
        send(&a, &b, T, &pkt).1,
        Some(Inbound::Drop(DropReason::UnknownSpi))
    );
}

#[test]
fn time_lifetimes_through_poll_timeout_and_the_data_path() {
    let mut p = Pair::new(0x1008, 0x2008, 9);
    p.lifetime = Lifetime::time(
        core::time::Duration::from_secs(10),
        core::time::Duration::from_secs(20),
    );
    let (a, _b, ia, _) = nodes(p);
    assert_eq!(a.poll_timeout(), Some(Instant::from_secs(10)));
    a.handle_timeout(Instant::from_secs(5));
    assert_eq!(a.poll_event(), None);
    a.handle_timeout(Instant::from_secs(10));
    assert!(matches!(
        a.poll_event(),
        Some(Event::SoftExpired {
            cause: ExpiryCause::Time,
            ..
        })
    ));
    assert_eq!(a.poll_timeout(), Some(Instant::from_secs(20)));
    // The data path notices the hard limit by itself, before any timer runs.
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 10, 0);
    assert!(matches!(
        seal(&a, Instant::from_secs(19), &pkt).0,
        Outbound::Protect { .. }
    ));
    assert!(matches!(
        seal(&a, Instant::from_secs(21), &pkt).0,
        Outbound::Acquire(_)
    ));
    assert!(
        matches!(a.poll_event(), Some(Event::HardExpired { sa, cause: ExpiryCause::Time, .. }) if sa == ia)
    );
    assert!(a.sa_info(ia).is_none());
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn sequence_numbers_warn_and_stop_without_wrapping() {
    let mut p = Pair::new(0x1009, 0x2009, 10);
    p.esn = false;
    let (a, b, ia, _) = nodes(p);
    // Move A's SA to just below the 32-bit limit by export and import.
    let mut snap = a.export_sa(T, ia).unwrap();
    a.remove_sa(ia).unwrap();
    snap.last_seq = u64::from(u32::MAX) - 3;
    let a2 = Sad::new(provider(), SadConfig::default().seq_warn_margin(2)).unwrap();
    a2.set_outbound_spd(spd(true, Mode::Tunnel));
    a2.import_sa(
        T,
        &snap,
        ImportOptions::new(SeqRange::after(&snap, 0)).sa(SaOptions::new().policy(PolicyId(1))),
    )
    .unwrap();
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 10, 0);
    for want in [
        u64::from(u32::MAX) - 2,
        u64::from(u32::MAX) - 1,
        u64::from(u32::MAX),
    ] {
        let (o, i, _) = send(&a2, &b, T, &pkt);
        assert!(
            matches!(o, Outbound::Protect { seq, .. } if seq == want),
            "{o:?}"
        );
        assert!(matches!(i, Some(Inbound::Deliver { .. })), "{i:?}");
    }
    assert!(matches!(
        a2.poll_event(),
        Some(Event::SeqNearExhaustion { remaining: 2, .. })
    ));
    assert_eq!(
        seal(&a2, T, &pkt).0,
        Outbound::Drop(DropReason::SeqExhausted)
    );
    assert_eq!(
        seal(&a2, T, &pkt).0,
        Outbound::Drop(DropReason::SeqExhausted)
    );
}

#[test]
fn rekey_moves_outbound_and_keeps_old_inbound_until_removed() {
    let p1 = Pair::new(0x100a, 0x200a, 11);
    let (a, b, a1, b1) = nodes(p1);
    let pkt = udp4("10.0.1.5", "10.0.2.9", 1, 2, 10, 0);
    let (_, in_flight) = seal(&a, T, &pkt);
    let p2 = Pair::new(0x100b, 0x200b, 12);
    // Responder side first: B can receive on the new SA before A sends on it.
    let b2 = b
        .rekey_sa(T, b1, &p2.params(false), SaOptions::new())
        .unwrap();
    let a2 = a
        .rekey_sa(T, a1, &p2.params(true), SaOptions::new())
        .unwrap();
    let (o, i, _) = send(&a, &b, T, &pkt);
    assert!(
        matches!(o, Outbound::Protect { sa, spi: Spi(0x100b), seq: 1, .. } if sa == a2),
        "{o:?}"
    );
    assert!(matches!(i, Some(Inbound::Deliver { sa, .. }) if sa == b2));
    // The packet sealed before the rekey still opens on the old SA.
    assert!(matches!(deliver(&b, T, &in_flight).0, Inbound::Deliver { sa, .. } if sa == b1));
    b.remove_sa(b1).unwrap();
    a.remove_sa(a1).unwrap();
    assert_eq!(b.remove_sa(b1), Err(SadError::UnknownSa(b1)));
    assert_eq!(
        deliver(&b, T, &in_flight).0,
        Inbound::Drop(DropReason::UnknownSpi)
    );
    assert!(
        matches!(send(&a, &b, T, &pkt).1, Some(Inbound::Deliver { .. })),
        "still bound to the new SA"
    );
    // Replace = rekey + remove.
    let p3 = Pair::new(0x100c, 0x200c, 13);
    let b3 = b
        .replace_sa(T, b2, &p3.params(false), SaOptions::new())
        .unwrap();
    a.replace_sa(T, a2, &p3.params(true), SaOptions::new())
        .unwrap();
    assert!(matches!(send(&a, &b, T, &pkt).1, Some(Inbound::Deliver { sa, .. }) if sa == b3));
    assert_eq!(b.len(), 1);
}

#[test]
fn spi_conflicts_and_multicast_lookup() {
    let b = sad();
    let p = Pair::new(0x100d, 0x200d, 14);
    b.add_sa(T, &p.params(false), SaOptions::new()).unwrap();
    assert_eq!(
        b.add_sa(T, &p.params(false), SaOptions::new()),
        Err(SadError::SpiInUse(Spi(0x100d)))
    );
    assert!(matches!(
        b.add_sa(
            T,
            &Pair::new(0x10, 0x2000, 1).params(false),
            SaOptions::new()
        ),
        Err(SadError::ReservedSpi(_))
    ));
    assert!(matches!(
        b.add_sa(T, &p.params(false), SaOptions::new().policy(PolicyId(77))),
        Err(SadError::SpiInUse(_)) | Err(SadError::UnknownPolicy(_))
    ));
    // Two multicast groups whose senders chose the same SPI, told apart by destination.
    let mut g1 = Pair::new(0x3000, 0x3001, 15);
    g1.b = "239.1.1.1";
    let mut g2 = Pair::new(0x3000, 0x3002, 16);
    g2.b = "239.1.1.2";
    let s1 = b.add_sa(T, &g1.params(false), SaOptions::new()).unwrap();
    let s2 = b.add_sa(T, &g2.params(false), SaOptions::new()).unwrap();
    assert_eq!(b.sa_info(s1).unwrap().inbound_lookup, InboundLookup::SpiDst);
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("239.1.1.2"), ip(A)),
        Some(s2)
    );
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("239.1.1.1"), ip(A)),
        Some(s1)
    );
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("239.1.1.3"), ip(A)),
        None
    );
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Ah, ip("239.1.1.1"), ip(A)),
        None
    );
    // A unicast SA on the same SPI is the fallback (longest match first).
    let mut u = Pair::new(0x3000, 0x3003, 17);
    u.b = "192.0.2.9";
    let s3 = b.add_sa(T, &u.params(false), SaOptions::new()).unwrap();
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("239.1.1.1"), ip(A)),
        Some(s1)
    );
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("192.0.2.9"), ip(A)),
        Some(s3)
    );
    b.remove_sa(s1).unwrap();
    assert_eq!(
        b.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, ip("239.1.1.1"), ip(A)),
        Some(s3)
    );
}

fn ah_pair(p: &Pair, at_a: bool) -> ipsec_core::ChildSaParams {
    let mut q = p.params(at_a);
    q.protocol = SecurityProtocol::Ah;
    q.encr = None;
    q.encr_key_bits = 0;
    q.integ = ipsec_core::iana::IntegId::AUTH_HMAC_SHA2_256_128;
    let key = |seed: u8| ipsec_core::KeyMaterial::new(&[], &[seed; 32]).unwrap();
    let (kin, kout) = if at_a { (2, 1) } else { (1, 2) };
    q.inbound_keys = key(kin);
    q.outbound_keys = key(kout);
    q
}

#[test]
fn ah_tunnel_and_transport_round_trips() {
    for mode in [Mode::Tunnel, Mode::Transport] {
        let mut p = Pair::new(0x4000, 0x4001, 18);
        p.mode = mode;
        if mode == Mode::Transport {
            p.ts = None;
        }
        let (a, b) = (sad(), sad());
        let mut rules = spd(true, mode).rules().to_vec();
        if let Action::Protect(t) = &mut rules[1].action {
            t.protocol = SecurityProtocol::Ah;
        }
        a.set_outbound_spd(Spd::new(rules).unwrap());
        let ia = a
            .add_sa(T, &ah_pair(&p, true), SaOptions::new().policy(PolicyId(1)))
            .unwrap();
        let ib = b.add_sa(T, &ah_pair(&p, false), SaOptions::new()).unwrap();
        let pkt = match mode {
            Mode::Tunnel => udp4("10.0.1.5", "10.0.2.9", 1, 2, 40, 4),
            Mode::Transport => udp4(A, B, 1, 2, 40, 4),
        };
        for n in 1..=3u64 {
            let (o, i, got) = send(&a, &b, T, &pkt);
            assert!(
                matches!(o, Outbound::Protect { seq, spi: Spi(0x4000), .. } if seq == n),
                "{mode:?} {o:?}"
            );
            assert!(
                matches!(i, Some(Inbound::Deliver { sa, seq, .. }) if sa == ib && seq == n),
                "{mode:?} {i:?}"
            );
            assert_eq!(got, pkt);
        }
        // Replays and forgeries are refused by the transform's own window and ICV check.
        let (_, wire) = seal(&a, T, &pkt);
        assert!(matches!(deliver(&b, T, &wire).0, Inbound::Deliver { .. }));
        assert_eq!(deliver(&b, T, &wire).0, Inbound::Drop(DropReason::Replay));
        let (_, mut forged) = seal(&a, T, &pkt);
        let last = forged.len() - 1;
        forged[last] ^= 0x80;
        assert_eq!(
            deliver(&b, T, &forged).0,
            Inbound::Drop(DropReason::Integrity)
        );
        // Export and import carry the AH state too.
        let snap = a.export_sa(T, ia).unwrap();
        assert_eq!((snap.protocol.as_str(), snap.last_seq), ("ah", 5));
        let c = sad();
        c.set_outbound_spd(a.outbound_spd());
        c.import_sa(
            T,
            &snap,
            ImportOptions::new(SeqRange::after(&snap, 10)).sa(SaOptions::new().policy(PolicyId(1))),
        )
        .unwrap();
        let (o, i, _) = send(&c, &b, T, &pkt);
        assert!(matches!(o, Outbound::Protect { seq: 16, .. }), "{o:?}");
        assert!(matches!(i, Some(Inbound::Deliver { seq: 16, .. })), "{i:?}");
    }
}

#[test]
fn batch_install_and_ipv6_tunnel() {
    let b = sad();
    let pairs: Vec<Pair> = (0..300u32)
        .map(|i| Pair::new(0x5000 + i, 0x6000 + i, i as u8))
        .collect();
    let params: Vec<_> = pairs.iter().map(|p| p.params(false)).collect();
    let ids = b.add_sas(T, params.iter().map(|p| (p, SaOptions::new())));
    assert!(ids.iter().all(Result::is_ok));
    assert_eq!(b.len(), 300);
    let again = b.add_sas(T, params.iter().take(2).map(|p| (p, SaOptions::new())));
    assert!(again
        .iter()
        .all(|r| matches!(r, Err(SadError::SpiInUse(_)))));
    for (i, id) in ids.iter().enumerate().step_by(37) {
        let got = b.lookup_inbound(Spi(0x5000 + i as u32), SecurityProtocol::Esp, ip(B), ip(A));
        assert_eq!(got, Some(*id.as_ref().unwrap()));
    }

    // IPv6 outer and inner.
    let mut p = Pair::new(0x7000, 0x7001, 19);
    p.a = "2001:db8::1";
    p.b = "2001:db8::2";
    p.ts = None;
    let a6 = sad();
    let b6 = sad();
    let any6 = Spd::new(vec![PolicyRule::new(
        1,
        Selector::between(AddrRange::ANY_V6, AddrRange::ANY_V6),
        Action::Protect(ipsec_sad::SaTemplate::esp_tunnel(ip(p.a), ip(p.b))),
    )])
    .unwrap();
    a6.set_outbound_spd(any6);
    a6.add_sa(T, &p.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    b6.add_sa(T, &p.params(false), SaOptions::new()).unwrap();
    let mut pkt = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
    pkt.extend_from_slice(
        &ip("2001:db8:1::5")
            .to_string()
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    pkt.extend_from_slice(
        &"2001:db8:2::9"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    pkt.extend_from_slice(&[0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4]);
    let (o, i, got) = send(&a6, &b6, T, &pkt);
    assert!(matches!(o, Outbound::Protect { .. }), "{o:?}");
    assert!(
        matches!(
            i,
            Some(Inbound::Deliver {
                next_header: IpProto::IPV6,
                ..
            })
        ),
        "{i:?}"
    );
    assert_eq!(got, pkt);
}

#[test]
fn padding_alignment_option_pads_outbound_esp_and_still_delivers() {
    let pair = Pair::new(0x1000, 0x2000, 1);
    let a = sad();
    let b = sad();
    a.set_outbound_spd(spd(true, pair.mode));
    b.set_outbound_spd(spd(false, pair.mode));
    // A bad alignment is refused when the SA is added.
    assert!(matches!(
        a.add_sa(
            Instant::ZERO,
            &pair.params(true),
            SaOptions::new().policy(PolicyId(1)).padding_alignment(24),
        ),
        Err(SadError::Esp(ipsec_esp::SaError::PaddingAlignment(24)))
    ));
    // So is one that would need more than MAX_TAILROOM.
    assert!(matches!(
        a.add_sa(
            Instant::ZERO,
            &pair.params(true),
            SaOptions::new().policy(PolicyId(1)).padding_alignment(32),
        ),
        Err(SadError::Esp(ipsec_esp::SaError::PaddingAlignment(32)))
    ));
    a.add_sa(
        Instant::ZERO,
        &pair.params(true),
        SaOptions::new().policy(PolicyId(1)).padding_alignment(16),
    )
    .unwrap();
    b.add_sa(
        Instant::ZERO,
        &pair.params(false),
        SaOptions::new().policy(PolicyId(1)),
    )
    .unwrap();
    for payload_len in [0usize, 1, 30, 100, 700] {
        let p = udp4("10.0.1.5", "10.0.2.9", 1234, 80, payload_len, 3);
        let (o, wire) = seal(&a, T, &p);
        assert!(matches!(o, Outbound::Protect { .. }), "{o:?}");
        // Tunnel mode, IPv4 outer header (20 bytes), ESP header 8, IV 8, ICV 16: the
        // ciphertext (inner packet, padding, trailer) is a multiple of 16.
        let ct = wire.len() - 20 - 8 - 8 - 16;
        assert_eq!(ct % 16, 0, "payload {payload_len}: ciphertext {ct}");
        assert!(ct < p.len() + 2 + 16);
        let (i, got) = deliver(&b, T, &wire);
        assert!(matches!(i, Inbound::Deliver { .. }), "{i:?}");
        assert_eq!(got, p);
    }
}

#[test]
fn a_reader_follows_adds_rekeys_and_removals() {
    let (a, b, _, ib) = nodes(Pair::new(0x1000, 0x2000, 1));
    // Readers made before any of the changes below.
    let mut ra = a.reader();
    let mut rb = b.reader();
    let (dst, src) = (ip(B), ip(A));
    assert_eq!(
        rb.lookup_inbound(Spi(0x1000), SecurityProtocol::Esp, dst, src),
        Some(ib)
    );
    let p = udp4("10.0.1.5", "10.0.2.9", 1234, 80, 100, 1);
    let (o, wire) = seal(&a, T, &p);
    assert!(matches!(o, Outbound::Protect { .. }));
    let (mut s, len) = storage(&wire);
    let mut buf = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    assert!(matches!(
        rb.process_inbound(T, &mut buf),
        Inbound::Deliver { .. }
    ));
    assert_eq!(buf.body(), &p[..]);
    // The same packet again: the reader shares the SA's replay window with the SAD.
    let (i, _) = deliver(&b, T, &wire);
    assert_eq!(i, Inbound::Drop(DropReason::Replay));

    // Rekey B's SA to new SPIs: the reader must see the new SPI and, once the old SA
    // is removed, no longer find the old one.
    let fresh = Pair::new(0x3000, 0x4000, 2);
    let nb = b
        .rekey_sa(
            T,
            ib,
            &fresh.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    assert_eq!(
        rb.lookup_inbound(Spi(0x3000), SecurityProtocol::Esp, dst, src),
        Some(nb)
    );
    b.remove_sa(ib).unwrap();
    assert_eq!(
        rb.lookup_inbound(Spi(0x1000), SecurityProtocol::Esp, dst, src),
        None
    );
    assert_eq!(
        b.lookup_inbound(Spi(0x1000), SecurityProtocol::Esp, dst, src),
        None
    );
    // An unknown SPI through the reader is counted like through the SAD.
    let before = b.drop_counts().get(DropReason::UnknownSpi);
    let mut s2 = storage(&wire).0;
    let mut buf = PacketBuf::new(&mut s2[..], ipsec_sad::MAX_HEADROOM, wire.len()).unwrap();
    assert_eq!(
        rb.process_inbound(T, &mut buf),
        Inbound::Drop(DropReason::UnknownSpi)
    );
    assert_eq!(b.drop_counts().get(DropReason::UnknownSpi), before + 1);
    // The inbound SPD through a reader: plaintext that should have been protected.
    let (i, _) = {
        let mut s3 = storage(&p).0;
        let mut buf = PacketBuf::new(&mut s3[..], ipsec_sad::MAX_HEADROOM, p.len()).unwrap();
        (ra.process_inbound(T, &mut buf), ())
    };
    let (j, _) = deliver(&a, T, &p);
    assert_eq!(i, j);
    ra.refresh();
    rb.refresh();
}

/// `Sad::inbound_spi_in_use`: what an IKE endpoint asks before choosing an inbound SPI.
#[test]
fn inbound_spi_in_use_follows_installs_and_removals() {
    let s = sad();
    let p = Pair::new(0x3001, 0x4001, 60);
    let id = s.add_sa(T, &p.params(false), SaOptions::new()).unwrap();
    let spi = s.sa_info(id).unwrap().inbound_spi;
    assert!(s.inbound_spi_in_use(spi, SecurityProtocol::Esp));
    assert!(!s.inbound_spi_in_use(spi, SecurityProtocol::Ah));
    assert!(!s.inbound_spi_in_use(Spi(spi.0 ^ 1), SecurityProtocol::Esp));
    s.remove_sa(id).unwrap();
    assert!(!s.inbound_spi_in_use(spi, SecurityProtocol::Esp));
}
