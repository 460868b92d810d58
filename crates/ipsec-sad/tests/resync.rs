//! ESN re-synchronization in the SAD (RFC 4303 Appendix A3, RFC 4302 Appendix B3): after
//! more than 2^32 lost packets an ESP or AH SA with ESN recovers on its own once
//! `trigger` consecutive packets failed authentication; forgeries never move its window.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipsec_core::{Instant, Mode, PacketBuf, ResyncPolicy};
use ipsec_sad::{
    DropReason, Event, ImportOptions, Inbound, Outbound, PolicyId, SaId, SaOptions, Sad, SeqRange,
};

const T: Instant = Instant(1_000_000_000);

/// Node A (sender) and node B (receiver, with `policy`).
fn nodes(pair: Pair, policy: ResyncPolicy) -> (Sad, Sad, SaId, SaId) {
    let a = sad();
    let b = sad();
    a.set_outbound_spd(spd(true, pair.mode));
    b.set_outbound_spd(spd(false, pair.mode));
    let ia = a
        .add_sa(T, &pair.params(true), SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    let ib = b
        .add_sa(
            T,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)).esn_resync(policy),
        )
        .unwrap();
    (a, b, ia, ib)
}

/// A copy of A whose SA continues after `last_seq`: everything in between is "lost".
fn jumped(a: &Sad, ia: SaId, mode: Mode, last_seq: u64) -> Sad {
    let mut snap = a.export_sa(T, ia).unwrap();
    snap.last_seq = last_seq;
    let a2 = sad();
    a2.set_outbound_spd(spd(true, mode));
    a2.import_sa(
        T,
        &snap,
        ImportOptions::new(SeqRange::after(&snap, 0)).sa(SaOptions::new().policy(PolicyId(1))),
    )
    .unwrap();
    a2
}

fn seal(tx: &Sad, packet: &[u8]) -> (u64, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    match tx.process_outbound(T, &mut b) {
        Outbound::Protect { seq, .. } => (seq, b.body().to_vec()),
        o => panic!("{o:?}"),
    }
}

fn deliver(rx: &Sad, wire: &[u8]) -> (Inbound, Vec<u8>) {
    let (mut s, len) = storage(wire);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound(T, &mut b);
    (i, b.body().to_vec())
}

fn packet(mode: Mode, n: u8) -> Vec<u8> {
    match mode {
        Mode::Tunnel => udp4("10.0.1.5", "10.0.2.9", 1000, 2000, 40, n),
        Mode::Transport => udp4(A, B, 1000, 2000, 40, n),
    }
}

fn pair(mode: Mode, spi: u32, key: u8) -> Pair {
    let mut p = Pair::new(spi, spi + 0x1000, key);
    p.mode = mode;
    if mode == Mode::Transport {
        p.ts = None;
    }
    p
}

#[test]
fn recovers_after_more_than_2_32_lost_packets() {
    for (k, mode) in [Mode::Tunnel, Mode::Transport].into_iter().enumerate() {
        let policy = ResyncPolicy::new(16, 4);
        let (a, b, ia, ib) = nodes(pair(mode, 0x3000 + k as u32, 40), policy);
        for n in 1..=3u8 {
            let (seq, wire) = seal(&a, &packet(mode, n));
            assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
        }
        // 2^32 + 50 packets lost: A's high half is 1, B still infers 0.
        let jump = 3 + (1u64 << 32) + 50;
        let a2 = jumped(&a, ia, mode, jump);
        for n in 0..15u8 {
            let (_, wire) = seal(&a2, &packet(mode, n));
            assert_eq!(
                deliver(&b, &wire).0,
                Inbound::Drop(DropReason::Integrity),
                "{mode:?} {n}"
            );
        }
        assert_eq!(b.poll_event(), None);
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 3);
        // The 16th consecutive failure triggers the re-synchronization with that packet.
        let p = packet(mode, 99);
        let (seq, wire) = seal(&a2, &p);
        assert_eq!(seq, jump + 16);
        let (i, got) = deliver(&b, &wire);
        assert!(
            matches!(i, Inbound::Deliver { seq: s, sa, .. } if s == seq && sa == ib),
            "{mode:?} {i:?}"
        );
        assert_eq!(got, p);
        assert_eq!(
            b.poll_event(),
            Some(Event::EsnResynced {
                sa: ib,
                inbound_spi: ipsec_core::Spi(0x3000 + k as u32),
                seq
            })
        );
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, seq);
        // Marked like any packet: a replay is refused before any crypto.
        assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Replay));
        // And the SA works normally from here on.
        for n in 0..5u8 {
            let (seq, wire) = seal(&a2, &packet(mode, n));
            assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
        }
        let stats = b.sa_stats(ib).unwrap();
        assert_eq!(stats.drops.get(DropReason::Integrity), 15);
        assert_eq!(stats.in_packets, 3 + 1 + 5);
        assert_eq!(b.poll_event(), None);
    }
}

#[test]
fn forgeries_never_resync_or_move_the_window() {
    let mode = Mode::Tunnel;
    let policy = ResyncPolicy::new(4, 4);
    let (a, b, _, ib) = nodes(pair(mode, 0x3100, 41), policy);
    let (_, wire) = seal(&a, &packet(mode, 1));
    assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
    // Same SPI, another key, 2^32 ahead: an attacker who guessed the high half.
    let (f, _, fa, _) = nodes(pair(mode, 0x3100, 42), policy);
    let f2 = jumped(&f, fa, mode, (1 << 32) + 10);
    for n in 0..40u8 {
        let (_, wire) = seal(&f2, &packet(mode, n));
        assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
        // Random bytes behind a genuine header.
        let mut junk = wire.clone();
        for (i, x) in junk.iter_mut().enumerate().skip(28) {
            *x = (i as u8).wrapping_mul(n).wrapping_add(7);
        }
        assert_eq!(deliver(&b, &junk).0, Inbound::Drop(DropReason::Integrity));
    }
    assert_eq!(b.poll_event(), None);
    assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1);
    // The genuine peer, which never lost anything, still gets through.
    let (seq, wire) = seal(&a, &packet(mode, 2));
    assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
}

#[test]
fn a_jump_beyond_max_tries_stays_dropped_and_valid_packets_reset_the_count() {
    let mode = Mode::Tunnel;
    let policy = ResyncPolicy::new(8, 2);
    let (a, b, ia, ib) = nodes(pair(mode, 0x3200, 43), policy);
    let (_, wire) = seal(&a, &packet(mode, 1));
    assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
    // Three high halves ahead: two tries are not enough, ever.
    let far = jumped(&a, ia, mode, (3 << 32) | 5);
    for n in 0..50u8 {
        let (_, wire) = seal(&far, &packet(mode, n));
        assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
    }
    assert_eq!(b.poll_event(), None);
    assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1);
    // Valid packets interleaved with failures keep the count below the trigger.
    let near = jumped(&a, ia, mode, (1 << 32) | 5);
    for n in 0..20u8 {
        let (_, wire) = seal(&a, &packet(mode, n));
        assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
        for _ in 0..7 {
            let (_, wire) = seal(&near, &packet(mode, n));
            assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
        }
    }
    assert_eq!(b.poll_event(), None);
    // The eighth in a row: recovered.
    let (seq, wire) = seal(&near, &packet(mode, 0));
    assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
    assert!(matches!(b.poll_event(), Some(Event::EsnResynced { .. })));
}

#[test]
fn disabled_or_without_esn_nothing_changes() {
    let mode = Mode::Tunnel;
    for (esn, policy) in [
        (true, ResyncPolicy::DISABLED),
        (false, ResyncPolicy::DEFAULT),
    ] {
        let mut p = pair(mode, if esn { 0x3300 } else { 0x3400 }, 44);
        p.esn = esn;
        let (a, b, ia, ib) = nodes(p, policy);
        let (_, wire) = seal(&a, &packet(mode, 1));
        assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
        // With ESN: 2^32 ahead. Without: an unrelated key's packets.
        let other = if esn {
            jumped(&a, ia, mode, (1 << 32) | 5)
        } else {
            let (f, _, fa, _) = nodes(p_with_key(p, 45), policy);
            jumped(&f, fa, mode, 10)
        };
        for n in 0..200u8 {
            let (_, wire) = seal(&other, &packet(mode, n));
            assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
        }
        assert_eq!(b.poll_event(), None);
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1);
    }
}

fn p_with_key(mut p: Pair, key: u8) -> Pair {
    p.key = key;
    p
}

// ---- AH (RFC 4302 Appendix B3) ----
//
// The receiver is a SAD; the sender is an `ipsec_ah::AhOutbound` built from A's
// parameters, so it can jump past 2^32 with `set_next_seq`. HMAC-SHA-256-128 and
// AES-128-GMAC, IPv4 and IPv6, transport and tunnel.

mod ah {
    use super::*;
    use ipsec_ah::{AhOutbound, Tunnel, TunnelConfig};
    use ipsec_core::iana::IntegId;
    use ipsec_core::{ChildSaParams, KeyMaterial, SecurityProtocol, Spi};

    const ROOM: usize = 128;

    #[derive(Clone, Copy, Debug)]
    pub(super) struct Case {
        pub(super) integ: IntegId,
        pub(super) v6: bool,
        pub(super) mode: Mode,
    }

    pub(super) fn cases() -> Vec<Case> {
        let mut v = vec![];
        for integ in [IntegId::AUTH_HMAC_SHA2_256_128, IntegId::AUTH_AES_128_GMAC] {
            for v6 in [false, true] {
                for mode in [Mode::Transport, Mode::Tunnel] {
                    v.push(Case { integ, v6, mode });
                }
            }
        }
        v
    }

    impl Case {
        fn addrs(&self) -> (&'static str, &'static str) {
            if self.v6 {
                ("2001:db8::1", "2001:db8::2")
            } else {
                (A, B)
            }
        }

        /// AH parameters for node A (`at_a`) or B; `key` seeds the keys.
        pub(super) fn params(&self, at_a: bool, spi: u32, key: u8, esn: bool) -> ChildSaParams {
            let mut p = Pair::new(spi, spi + 0x1000, key);
            p.mode = self.mode;
            p.ts = None;
            p.esn = esn;
            (p.a, p.b) = self.addrs();
            let mut q = p.params(at_a);
            q.protocol = SecurityProtocol::Ah;
            q.encr = None;
            q.encr_key_bits = 0;
            q.integ = self.integ;
            let len = if self.integ == IntegId::AUTH_AES_128_GMAC {
                20
            } else {
                32
            };
            let k = |seed: u8| {
                let k: Vec<u8> = (0..len).map(|i| seed.wrapping_mul(7) ^ i).collect();
                KeyMaterial::new(&[], &k).unwrap()
            };
            let (kab, kba) = (key, key.wrapping_add(101));
            let (kin, kout) = if at_a { (kba, kab) } else { (kab, kba) };
            q.inbound_keys = k(kin);
            q.outbound_keys = k(kout);
            q
        }

        /// The plain packet A sends: in transport mode from A to B, in tunnel mode
        /// between the two nets (same family as the outer header).
        pub(super) fn packet(&self, n: u8) -> Vec<u8> {
            match (self.v6, self.mode) {
                (false, Mode::Tunnel) => udp4("10.0.1.5", "10.0.2.9", 1000, 2000, 40, n),
                (false, Mode::Transport) => udp4(A, B, 1000, 2000, 40, n),
                (true, Mode::Tunnel) => udp6("2001:db8:1::5", "2001:db8:2::9", n),
                (true, Mode::Transport) => udp6("2001:db8::1", "2001:db8::2", n),
            }
        }
    }

    fn udp6(src: &str, dst: &str, fill: u8) -> Vec<u8> {
        let payload = 40usize;
        let mut p = vec![0u8; 48 + payload];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        let (s, d) = match (ip(src), ip(dst)) {
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => (s.octets(), d.octets()),
            _ => panic!("v6 only"),
        };
        p[8..24].copy_from_slice(&s);
        p[24..40].copy_from_slice(&d);
        p[40..42].copy_from_slice(&1000u16.to_be_bytes());
        p[42..44].copy_from_slice(&2000u16.to_be_bytes());
        p[44..46].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        p[48..].fill(fill);
        p
    }

    /// Node A's sending half.
    pub(super) struct Sender {
        pub(super) out: AhOutbound,
        tunnel: Option<Tunnel>,
    }

    impl Sender {
        pub(super) fn new(c: &Case, spi: u32, key: u8, esn: bool) -> Self {
            let p = c.params(true, spi, key, esn);
            let out = AhOutbound::from_params(provider(), &p).unwrap();
            let tunnel = (c.mode == Mode::Tunnel)
                .then(|| Tunnel::new(TunnelConfig::new(p.local_addr, p.remote_addr)).unwrap());
            Self { out, tunnel }
        }

        pub(super) fn seal(&mut self, packet: &[u8]) -> (u64, Vec<u8>) {
            let mut s = vec![0u8; ROOM];
            s.extend_from_slice(packet);
            s.resize(2 * ROOM + packet.len(), 0);
            let mut b = PacketBuf::new(&mut s[..], ROOM, packet.len()).unwrap();
            let seq = match &mut self.tunnel {
                Some(t) => self.out.seal_tunnel(t, &mut b).unwrap(),
                None => self.out.seal_transport(&mut b).unwrap(),
            };
            (seq, b.body().to_vec())
        }
    }

    /// Node B with the AH SA (ESN per `esn`) and re-synchronization `policy`.
    pub(super) fn receiver(
        c: &Case,
        spi: u32,
        key: u8,
        esn: bool,
        policy: ResyncPolicy,
    ) -> (Sad, SaId) {
        let b = sad();
        let id = b
            .add_sa(
                T,
                &c.params(false, spi, key, esn),
                SaOptions::new().esn_resync(policy),
            )
            .unwrap();
        (b, id)
    }

    pub(super) fn spi(s: u32) -> Spi {
        Spi(s)
    }
}

#[test]
fn ah_recovers_after_more_than_2_32_lost_packets() {
    for (k, c) in ah::cases().into_iter().enumerate() {
        let spi = 0x5000 + k as u32;
        let policy = ResyncPolicy::new(16, 4);
        let (b, ib) = ah::receiver(&c, spi, 50, true, policy);
        let mut a = ah::Sender::new(&c, spi, 50, true);
        for n in 1..=3u8 {
            let (seq, wire) = a.seal(&c.packet(n));
            let (i, got) = deliver(&b, &wire);
            assert!(
                matches!(i, Inbound::Deliver { seq: s, .. } if s == seq),
                "{c:?} {i:?}"
            );
            assert_eq!(got, c.packet(n), "{c:?}");
        }
        // 2^32 + 50 packets lost: A's high half is 1, B still infers 0.
        let jump = 4 + (1u64 << 32) + 50;
        a.out.set_next_seq(jump).unwrap();
        for n in 0..15u8 {
            let (_, wire) = a.seal(&c.packet(n));
            assert_eq!(
                deliver(&b, &wire).0,
                Inbound::Drop(DropReason::Integrity),
                "{c:?} {n}"
            );
        }
        assert_eq!(b.poll_event(), None);
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 3);
        // The 16th consecutive failure triggers the re-synchronization with that packet.
        let p = c.packet(99);
        let (seq, wire) = a.seal(&p);
        assert_eq!(seq, jump + 15);
        let (i, got) = deliver(&b, &wire);
        assert!(
            matches!(i, Inbound::Deliver { seq: s, sa, .. } if s == seq && sa == ib),
            "{c:?} {i:?}"
        );
        assert_eq!(got, p, "{c:?}");
        assert_eq!(
            b.poll_event(),
            Some(Event::EsnResynced {
                sa: ib,
                inbound_spi: ah::spi(spi),
                seq
            })
        );
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, seq);
        // Marked like any packet: a replay is refused.
        assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Replay));
        // And the SA works normally from here on.
        for n in 0..5u8 {
            let (seq, wire) = a.seal(&c.packet(n));
            assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
        }
        let stats = b.sa_stats(ib).unwrap();
        assert_eq!(stats.drops.get(DropReason::Integrity), 15);
        assert_eq!(stats.in_packets, 3 + 1 + 5);
        assert_eq!(b.poll_event(), None);
    }
}

#[test]
fn ah_forgeries_never_resync_or_move_the_window() {
    for (k, c) in ah::cases().into_iter().enumerate() {
        let spi = 0x5100 + k as u32;
        let policy = ResyncPolicy::new(4, 4);
        let (b, ib) = ah::receiver(&c, spi, 51, true, policy);
        let mut a = ah::Sender::new(&c, spi, 51, true);
        let (_, wire) = a.seal(&c.packet(1));
        assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
        // Same SPI, another key, 2^32 ahead: an attacker who guessed the high half.
        let mut f = ah::Sender::new(&c, spi, 52, true);
        f.out.set_next_seq((1 << 32) + 10).unwrap();
        for n in 0..40u8 {
            let (_, wire) = f.seal(&c.packet(n));
            assert_eq!(
                deliver(&b, &wire).0,
                Inbound::Drop(DropReason::Integrity),
                "{c:?}"
            );
            // Genuine packets 2^32 ahead with a flipped payload bit.
            let (_, mut bad) = {
                let mut g = ah::Sender::new(&c, spi, 51, true);
                g.out.set_next_seq((1 << 32) + 20 + u64::from(n)).unwrap();
                g.seal(&c.packet(n))
            };
            let last = bad.len() - 1;
            bad[last] ^= 0x01;
            assert_eq!(
                deliver(&b, &bad).0,
                Inbound::Drop(DropReason::Integrity),
                "{c:?}"
            );
        }
        assert_eq!(b.poll_event(), None, "{c:?}");
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1, "{c:?}");
        // The genuine peer, which never lost anything, still gets through.
        let (seq, wire) = a.seal(&c.packet(2));
        assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq));
    }
}

#[test]
fn ah_a_jump_beyond_max_tries_stays_dropped_and_valid_packets_reset_the_count() {
    for (k, c) in ah::cases().into_iter().enumerate() {
        let spi = 0x5200 + k as u32;
        let policy = ResyncPolicy::new(8, 2);
        let (b, ib) = ah::receiver(&c, spi, 53, true, policy);
        let mut a = ah::Sender::new(&c, spi, 53, true);
        let (_, wire) = a.seal(&c.packet(1));
        assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
        // Three high halves ahead: two tries are not enough, ever.
        let mut far = ah::Sender::new(&c, spi, 53, true);
        far.out.set_next_seq((3 << 32) | 5).unwrap();
        for n in 0..30u8 {
            let (_, wire) = far.seal(&c.packet(n));
            assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
        }
        assert_eq!(b.poll_event(), None);
        assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1);
        // Valid packets interleaved with failures keep the count below the trigger.
        let mut near = ah::Sender::new(&c, spi, 53, true);
        near.out.set_next_seq((1 << 32) | 5).unwrap();
        for n in 0..10u8 {
            let (_, wire) = a.seal(&c.packet(n));
            assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
            for _ in 0..7 {
                let (_, wire) = near.seal(&c.packet(n));
                assert_eq!(deliver(&b, &wire).0, Inbound::Drop(DropReason::Integrity));
            }
        }
        assert_eq!(b.poll_event(), None, "{c:?}");
        // The eighth in a row: recovered.
        let (seq, wire) = near.seal(&c.packet(0));
        assert!(
            matches!(deliver(&b, &wire).0, Inbound::Deliver { seq: s, .. } if s == seq),
            "{c:?}"
        );
        assert!(matches!(b.poll_event(), Some(Event::EsnResynced { .. })));
    }
}

#[test]
fn ah_disabled_or_without_esn_nothing_changes() {
    for (k, c) in ah::cases().into_iter().enumerate() {
        for (esn, policy) in [
            (true, ResyncPolicy::DISABLED),
            (false, ResyncPolicy::DEFAULT),
        ] {
            let spi = 0x5300 + 2 * k as u32 + u32::from(esn);
            let (b, ib) = ah::receiver(&c, spi, 54, esn, policy);
            let mut a = ah::Sender::new(&c, spi, 54, esn);
            let (_, wire) = a.seal(&c.packet(1));
            assert!(matches!(deliver(&b, &wire).0, Inbound::Deliver { .. }));
            // With ESN: 2^32 ahead. Without: an unrelated key's packets.
            let mut other = if esn {
                let mut o = ah::Sender::new(&c, spi, 54, esn);
                o.out.set_next_seq((1 << 32) | 5).unwrap();
                o
            } else {
                let mut o = ah::Sender::new(&c, spi, 55, esn);
                o.out.set_next_seq(10).unwrap();
                o
            };
            for n in 0..150u8 {
                let (_, wire) = other.seal(&c.packet(n));
                assert_eq!(
                    deliver(&b, &wire).0,
                    Inbound::Drop(DropReason::Integrity),
                    "{c:?} {esn}"
                );
            }
            assert_eq!(b.poll_event(), None);
            assert_eq!(b.export_sa(T, ib).unwrap().replay_top, 1);
        }
    }
}
