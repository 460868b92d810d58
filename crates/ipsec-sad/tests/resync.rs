//! ESN re-synchronization in the SAD (RFC 4303 Appendix A3): after more than 2^32 lost
//! packets an ESP SA with ESN recovers on its own once `trigger` consecutive packets
//! failed authentication; forgeries never move its window.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipsec_core::{Instant, Mode, PacketBuf, ResyncPolicy};
use ipsec_sad::{
    DropReason, Event, ImportOptions, Inbound, Outbound, PolicyId, SaId, SaOptions, Sad,
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
        ImportOptions::new()
            .seq_margin(0)
            .sa(SaOptions::new().policy(PolicyId(1))),
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
