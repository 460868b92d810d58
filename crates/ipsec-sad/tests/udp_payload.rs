//! ESP-in-UDP through a UDP socket: `process_outbound_udp` / `process_inbound_udp` on
//! UDP payloads and socket addresses, against each other and against the
//! whole-datagram calls.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use ipsec_core::{Instant, IpProto, Mode, PacketBuf};
use ipsec_sad::{
    Action, AddrRange, DropReason, Inbound, InboundLookup, Outbound, PolicyId, PolicyRule,
    SaOptions, Sad, Selector, Spd, UdpInbound, UdpOutbound, MAX_HEADROOM,
};

const T: Instant = Instant(1_000_000_000);

fn sock(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(addr), port)
}

/// Node A and node B with one SA pair; B's SA is found with `lookup`.
fn nodes(pair: Pair, lookup: Option<InboundLookup>) -> (Sad, Sad) {
    let a = sad();
    let b = sad();
    a.set_outbound_spd(spd(true, pair.mode));
    b.set_outbound_spd(spd(false, pair.mode));
    a.add_sa(
        Instant::ZERO,
        &pair.params(true),
        SaOptions::new().policy(PolicyId(1)),
    )
    .unwrap();
    let mut ob = SaOptions::new().policy(PolicyId(1));
    if let Some(l) = lookup {
        ob = ob.inbound_lookup(l);
    }
    b.add_sa(Instant::ZERO, &pair.params(false), ob).unwrap();
    (a, b)
}

fn udp_pair(spi: u32, key: u8, mode: Mode) -> Pair {
    let mut p = Pair::new(spi, spi + 0x1000, key);
    p.udp = true;
    p.mode = mode;
    if mode == Mode::Transport {
        p.ts = None;
    }
    p
}

/// `tx` seals `packet` for its UDP socket: the result and the payload to send.
fn seal_udp(tx: &Sad, packet: &[u8]) -> (UdpOutbound, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound_udp(T, &mut b);
    (o, b.body().to_vec())
}

/// `rx`'s socket on `local` receives `payload` from `remote`.
fn open_udp(
    rx: &Sad,
    local: SocketAddr,
    remote: SocketAddr,
    payload: &[u8],
) -> (UdpInbound, Vec<u8>) {
    let (mut s, len) = storage(payload);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound_udp(T, local, remote, &mut b);
    (i, b.body().to_vec())
}

/// The whole-datagram calls, as in tests/process.rs.
fn seal_ip(tx: &Sad, packet: &[u8]) -> (Outbound, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound(T, &mut b);
    (o, b.body().to_vec())
}

fn open_ip(rx: &Sad, wire: &[u8]) -> (Inbound, Vec<u8>) {
    let (mut s, len) = storage(wire);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound(T, &mut b);
    (i, b.body().to_vec())
}

/// An IPv4 + UDP datagram around `payload`, as the network would carry it.
fn wrap4(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = udp4(src, dst, sport, dport, payload.len(), 0);
    p[28..].copy_from_slice(payload);
    p
}

/// The packet B should get from A, and the one A should get from B.
fn packets(mode: Mode, n: u8) -> (Vec<u8>, Vec<u8>) {
    match mode {
        Mode::Tunnel => (
            udp4("10.0.1.5", "10.0.2.9", 1234, 80, 100, n),
            udp4("10.0.2.9", "10.0.1.5", 80, 1234, 30, n),
        ),
        Mode::Transport => (udp4(A, B, 5000, 6000, 64, n), udp4(B, A, 6000, 5000, 20, n)),
    }
}

#[test]
fn round_trips_both_ways_in_tunnel_and_transport_mode() {
    for (k, mode) in [Mode::Tunnel, Mode::Transport].into_iter().enumerate() {
        let (a, b) = nodes(udp_pair(0x3000 + k as u32, 1 + k as u8, mode), None);
        let (sa_a, sa_b) = (sock(A, 4500), sock(B, 4500));
        for n in 1..=3u8 {
            let (ab, ba) = packets(mode, n);
            let (o, payload) = seal_udp(&a, &ab);
            assert!(
                matches!(o, UdpOutbound::Send { seq, to, policy: PolicyId(1), .. }
                    if seq == u64::from(n) && to == sa_b),
                "{mode:?} {o:?}"
            );
            // The ESP packet alone: it starts with the SPI.
            assert_eq!(&payload[..4], &(0x3000 + k as u32).to_be_bytes());
            let (i, got) = open_udp(&b, sa_b, sa_a, &payload);
            let nh = if mode == Mode::Tunnel {
                IpProto::IPV4
            } else {
                IpProto::UDP
            };
            assert!(
                matches!(i, UdpInbound::Deliver { seq, next_header, remote, peer_moved: false, .. }
                    if seq == u64::from(n) && next_header == nh && remote == sa_a),
                "{mode:?} {i:?}"
            );
            assert_eq!(got, ab, "{mode:?}");

            let (o, payload) = seal_udp(&b, &ba);
            assert!(
                matches!(o, UdpOutbound::Send { to, .. } if to == sa_a),
                "{o:?}"
            );
            let (i, got) = open_udp(&a, sa_a, sa_b, &payload);
            assert!(matches!(i, UdpInbound::Deliver { .. }), "{i:?}");
            assert_eq!(got, ba);
        }
    }
}

#[test]
fn keepalives_ike_and_garbage_are_classified() {
    let (_, b) = nodes(udp_pair(0x3100, 3, Mode::Tunnel), None);
    let (l, r) = (sock(B, 4500), sock(A, 4500));
    assert_eq!(open_udp(&b, l, r, &[0xff]).0, UdpInbound::Keepalive);
    assert_eq!(b.drop_counts().get(DropReason::NatKeepalive), 1);
    let ike = [0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2];
    let (i, body) = open_udp(&b, l, r, &ike);
    assert_eq!(i, UdpInbound::Ike);
    assert_eq!(body, &ike[4..], "the Non-ESP Marker is removed");
    for bad in [&[0xfe][..], &[], &[0, 0, 0, 0], &[1, 2, 3, 4, 5]] {
        assert_eq!(
            open_udp(&b, l, r, bad).0,
            UdpInbound::Drop(DropReason::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn unknown_spi_replay_and_tampering_are_refused() {
    let (a, b) = nodes(udp_pair(0x3200, 4, Mode::Tunnel), None);
    let (l, r) = (sock(B, 4500), sock(A, 4500));
    let (pkt, _) = packets(Mode::Tunnel, 1);
    let (_, payload) = seal_udp(&a, &pkt);
    assert!(matches!(
        open_udp(&b, l, r, &payload).0,
        UdpInbound::Deliver { .. }
    ));
    assert_eq!(
        open_udp(&b, l, r, &payload).0,
        UdpInbound::Drop(DropReason::Replay)
    );
    let mut other = payload.clone();
    other[..4].copy_from_slice(&0x9999u32.to_be_bytes());
    assert_eq!(
        open_udp(&b, l, r, &other).0,
        UdpInbound::Drop(DropReason::UnknownSpi)
    );
    assert_eq!(b.drop_counts().get(DropReason::UnknownSpi), 1);
    let (_, mut forged) = seal_udp(&a, &pkt);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        open_udp(&b, l, r, &forged).0,
        UdpInbound::Drop(DropReason::Integrity)
    );
    // Too little headroom for the IP header that is put back.
    let (_, fresh) = seal_udp(&a, &pkt);
    let mut s = fresh.clone();
    s.extend_from_slice(&[0; 64]);
    let mut buf = PacketBuf::new(&mut s[..], 0, fresh.len()).unwrap();
    assert_eq!(
        b.process_inbound_udp(T, l, r, &mut buf),
        UdpInbound::Drop(DropReason::NoRoom)
    );
}

#[test]
fn a_moved_peer_is_reported_or_refused_by_lookup_mode() {
    let (pkt, _) = packets(Mode::Tunnel, 1);
    let l = sock(B, 4500);
    // Looked up by SPI: delivered, with the new address reported.
    let (a, b) = nodes(udp_pair(0x3300, 5, Mode::Tunnel), None);
    for moved in [sock(A, 61000), sock("198.51.100.7", 4500)] {
        let (_, payload) = seal_udp(&a, &pkt);
        let (i, got) = open_udp(&b, l, moved, &payload);
        assert!(
            matches!(i, UdpInbound::Deliver { remote, peer_moved: true, .. } if remote == moved),
            "{i:?}"
        );
        assert_eq!(got, pkt);
    }
    // Looked up by SPI, destination and source: bound to the peer.
    let (a, b) = nodes(
        udp_pair(0x3301, 6, Mode::Tunnel),
        Some(InboundLookup::SpiDstSrc),
    );
    let (_, payload) = seal_udp(&a, &pkt);
    assert_eq!(
        open_udp(&b, l, sock(A, 61000), &payload).0,
        UdpInbound::Drop(DropReason::PeerMismatch)
    );
    assert_eq!(
        open_udp(&b, l, sock("198.51.100.7", 4500), &payload).0,
        UdpInbound::Drop(DropReason::UnknownSpi)
    );
    // Refused before decrypting: the window did not move, the packet still arrives.
    assert!(matches!(
        open_udp(&b, l, sock(A, 4500), &payload).0,
        UdpInbound::Deliver {
            peer_moved: false,
            ..
        }
    ));
}

#[test]
fn sas_without_udp_encapsulation_need_raw_ip() {
    let mut p = Pair::new(0x3400, 0x4400, 7);
    p.udp = false;
    let (a, b) = nodes(p, None);
    let (pkt, _) = packets(Mode::Tunnel, 1);
    let (o, body) = seal_udp(&a, &pkt);
    assert!(
        matches!(
            o,
            UdpOutbound::NeedsRawIp {
                policy: PolicyId(1),
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(body, pkt, "the packet is left as it was");
    // No sequence number was used.
    let (o, wire) = seal_ip(&a, &pkt);
    assert!(matches!(o, Outbound::Protect { seq: 1, .. }), "{o:?}");
    // Its ESP packet arriving in UDP anyway is refused.
    assert_eq!(wire[9], 50);
    assert_eq!(
        open_udp(&b, sock(B, 4500), sock(A, 4500), &wire[20..]).0,
        UdpInbound::Drop(DropReason::NotUdpEncap)
    );
    // Bypass and discard verdicts are those of the datagram path.
    assert_eq!(
        seal_udp(&a, &udp4(A, B, 500, 500, 8, 0)).0,
        UdpOutbound::Bypass(PolicyId(2))
    );
    assert_eq!(
        seal_udp(&a, &udp4("10.9.9.9", B, 1, 1, 8, 0)).0,
        UdpOutbound::Discard(Some(PolicyId(3)))
    );
}

#[test]
fn payload_and_datagram_paths_are_interchangeable() {
    for (k, mode) in [Mode::Tunnel, Mode::Transport].into_iter().enumerate() {
        let (a, b) = nodes(udp_pair(0x3500 + k as u32, 8 + k as u8, mode), None);
        let (l, r) = (sock(B, 4500), sock(A, 4500));
        let (pkt, _) = packets(mode, 9);
        // Sealed whole, opened as a payload: strip IP (20) and UDP (8).
        let (o, wire) = seal_ip(&a, &pkt);
        assert!(matches!(o, Outbound::Protect { seq: 1, .. }), "{o:?}");
        assert_eq!((wire[9], &wire[22..24]), (17, &4500u16.to_be_bytes()[..]));
        let (i, got) = open_udp(&b, l, r, &wire[28..]);
        assert!(
            matches!(i, UdpInbound::Deliver { seq: 1, .. }),
            "{mode:?} {i:?}"
        );
        assert_eq!(got, pkt, "{mode:?}");
        // Sealed as a payload, opened whole: the network adds IP and UDP.
        let (o, payload) = seal_udp(&a, &pkt);
        assert!(matches!(o, UdpOutbound::Send { seq: 2, .. }), "{o:?}");
        let (i, got) = open_ip(&b, &wrap4(A, B, 4500, 4500, &payload));
        assert!(
            matches!(
                i,
                Inbound::Deliver {
                    seq: 2,
                    udp: Some(_),
                    ..
                }
            ),
            "{mode:?} {i:?}"
        );
        assert_eq!(got, pkt, "{mode:?}");
        // The payload is the datagram path's output less its IP and UDP headers.
        let (_, wire3) = seal_ip(&a, &pkt);
        assert_eq!(wire3.len(), payload.len() + 28);
        assert_eq!(&wire3[28..32], &payload[..4]);
        let (i, _) = open_udp(&b, l, r, &wire3[28..]);
        assert!(matches!(i, UdpInbound::Deliver { seq: 3, .. }), "{i:?}");
    }
}

#[test]
fn ipv6_and_ipv4_mapped_socket_addresses() {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    let (a, b) = nodes(udp_pair(0x3600, 10, Mode::Tunnel), None);
    let (pkt, _) = packets(Mode::Tunnel, 1);
    let (_, payload) = seal_udp(&a, &pkt);
    let mapped = |s: &str| match ip(s) {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), 4500),
        v6 => SocketAddr::new(v6, 4500),
    };
    let (i, got) = open_udp(&b, mapped(B), mapped(A), &payload);
    assert!(
        matches!(i, UdpInbound::Deliver { remote, peer_moved: false, .. } if remote == sock(A, 4500)),
        "{i:?}"
    );
    assert_eq!(got, pkt);

    // IPv6 outer addresses, IPv4 inner packets.
    let mut p = udp_pair(0x3601, 11, Mode::Tunnel);
    p.a = "2001:db8::1";
    p.b = "2001:db8::2";
    p.ts = None;
    let a6 = sad();
    let b6 = sad();
    let any4 = Spd::new(vec![PolicyRule::new(
        1,
        Selector::between(AddrRange::ANY_V4, AddrRange::ANY_V4),
        Action::Protect(ipsec_sad::SaTemplate::esp_tunnel(ip(p.a), ip(p.b))),
    )])
    .unwrap();
    a6.set_outbound_spd(any4);
    a6.add_sa(T, &p.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    b6.add_sa(T, &p.params(false), SaOptions::new()).unwrap();
    let (o, payload) = seal_udp(&a6, &pkt);
    assert!(
        matches!(o, UdpOutbound::Send { to, .. } if to == sock(p.b, 4500)),
        "{o:?}"
    );
    let (i, got) = open_udp(&b6, sock(p.b, 4500), sock(p.a, 4500), &payload);
    assert!(matches!(i, UdpInbound::Deliver { .. }), "{i:?}");
    assert_eq!(got, pkt);
    // Mixed families on one socket pair are malformed.
    assert_eq!(
        open_udp(&b6, sock(p.b, 4500), sock(A, 4500), &payload).0,
        UdpInbound::Drop(DropReason::Malformed)
    );
}

#[test]
fn a_rule_without_an_sa_acquires_and_a_reader_opens_the_same() {
    let a = sad();
    a.set_outbound_spd(spd(true, Mode::Tunnel));
    let (pkt, _) = packets(Mode::Tunnel, 1);
    let (o, body) = seal_udp(&a, &pkt);
    assert!(
        matches!(o, UdpOutbound::Acquire(acq) if acq.policy == PolicyId(1)),
        "{o:?}"
    );
    assert_eq!(body, pkt);

    let (a, b) = nodes(udp_pair(0x3700, 12, Mode::Tunnel), None);
    let mut rb = b.reader();
    let (_, payload) = seal_udp(&a, &pkt);
    let (mut s, len) = storage(&payload);
    let mut buf = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let i = rb.process_inbound_udp(T, sock(B, 4500), sock(A, 4500), &mut buf);
    assert!(matches!(i, UdpInbound::Deliver { seq: 1, .. }), "{i:?}");
    assert_eq!(buf.body(), &pkt[..]);
}

/// MOBIKE (RFC 4555 §3.5): `Sad::update_sa_path` moves an SA pair to new outer
/// addresses in place. Sequence numbers go on where they were, the replay window
/// still refuses a packet received before the move, a reader made before the move
/// sees the new path, and switching UDP encapsulation off gives plain ESP with the
/// new outer header.
#[test]
fn update_sa_path_keeps_sequence_numbers_and_replay_window() {
    let (a, b) = nodes(udp_pair(0x3300, 9, Mode::Tunnel), None);
    let (sa_a, sa_b) = (sock(A, 4500), sock(B, 4500));
    let mut first = Vec::new();
    for n in 1..=3u8 {
        let (ab, _) = packets(Mode::Tunnel, n);
        let (o, payload) = seal_udp(&a, &ab);
        assert!(matches!(o, UdpOutbound::Send { seq, .. } if seq == u64::from(n)));
        let (i, _) = open_udp(&b, sa_b, sa_a, &payload);
        assert!(matches!(i, UdpInbound::Deliver { .. }), "{i:?}");
        if n == 1 {
            first = payload;
        }
    }
    let id_a = a.sa_ids()[0];
    let id_b = b.sa_ids()[0];
    let mut reader = b.reader();
    // A moved to 198.51.100.7, behind a NAT that maps its port 4500 to 31000.
    let moved = sock("198.51.100.7", 31000);
    let encap_a = ipsec_core::UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    };
    let encap_b = ipsec_core::UdpEncap {
        local_port: 4500,
        remote_port: 31000,
    };
    a.update_sa_path(id_a, ip("10.9.9.9"), ip(B), Some(encap_a))
        .unwrap();
    b.update_sa_path(id_b, ip(B), moved.ip(), Some(encap_b))
        .unwrap();
    let info = b.sa_info(id_b).unwrap();
    assert_eq!((info.local_addr, info.remote_addr), (ip(B), moved.ip()));
    assert_eq!(info.udp_encap, Some(encap_b));
    assert_eq!(a.sa_info(id_a).unwrap().local_addr, ip("10.9.9.9"));
    // A continues at 4; B takes it from the new address as not moved.
    let (ab, ba) = packets(Mode::Tunnel, 4);
    let (o, payload) = seal_udp(&a, &ab);
    assert!(
        matches!(o, UdpOutbound::Send { seq: 4, to, .. } if to == sa_b),
        "{o:?}"
    );
    let (mut s, len) = storage(&payload);
    let mut buf = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    let i = reader.process_inbound_udp(T, sa_b, moved, &mut buf);
    assert!(
        matches!(
            i,
            UdpInbound::Deliver {
                seq: 4,
                peer_moved: false,
                ..
            }
        ),
        "{i:?}"
    );
    assert_eq!(buf.body(), &ab[..]);
    // The window remembers packet 1 across the move.
    let (i, _) = open_udp(&b, sa_b, moved, &first);
    assert!(matches!(i, UdpInbound::Drop(DropReason::Replay)), "{i:?}");
    // B's answers go to the new address and port.
    let (o, _) = seal_udp(&b, &ba);
    assert!(
        matches!(o, UdpOutbound::Send { seq: 1, to, .. } if to == moved),
        "{o:?}"
    );
    // Without a NAT on the new path: plain ESP, outer header from the new address.
    a.update_sa_path(id_a, ip("10.9.9.9"), ip(B), None).unwrap();
    let (ab, _) = packets(Mode::Tunnel, 5);
    let (o, wire) = seal_ip(&a, &ab);
    assert!(matches!(o, Outbound::Protect { seq: 5, .. }), "{o:?}");
    assert_eq!(wire[9], 50, "ESP, not UDP");
    assert_eq!(&wire[12..16], &[10, 9, 9, 9]);
    assert_eq!(&wire[16..20], &ip_octets(B));
    assert_eq!(u32::from_be_bytes(wire[24..28].try_into().unwrap()), 5);
    // Mixed families are refused and change nothing.
    assert!(a
        .update_sa_path(id_a, ip("2001:db8::1"), ip(B), None)
        .is_err());
    assert_eq!(a.sa_info(id_a).unwrap().local_addr, ip("10.9.9.9"));
    assert!(b
        .update_sa_path(ipsec_sad::SaId(999), ip(B), ip(A), None)
        .is_err());
}

fn ip_octets(s: &str) -> [u8; 4] {
    match ip(s) {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(_) => unreachable!(),
    }
}
