//! Blocks of outbound sequence numbers (`Sad::grant_outbound_seq`): what an anycast
//! cluster node sends with. Every number sent lies in a block granted to the SA, and
//! no number is sent twice, also while senders race with block switches.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use ipsec_core::{Instant, Mode, PacketBuf};
use ipsec_sad::{
    DropReason, ImportOptions, Inbound, Outbound, OutboundSeq, PolicyId, SaOptions, Sad, SadError,
    SeqRange,
};

const T: Instant = Instant(5_000_000_000);

fn send(tx: &Sad, packet: &[u8]) -> Outbound {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    tx.process_outbound(T, &mut b)
}

fn send_wire(tx: &Sad, packet: &[u8]) -> (Outbound, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound(T, &mut b);
    (o, b.body().to_vec())
}

fn seq_of(o: &Outbound) -> Option<u64> {
    match o {
        Outbound::Protect { seq, .. } => Some(*seq),
        _ => None,
    }
}

fn node() -> (Sad, ipsec_sad::SaId, Vec<u8>) {
    let pair = Pair::new(0xa200, 0xb200, 45);
    let b = sad();
    b.set_outbound_spd(spd(false, Mode::Tunnel));
    let id = b
        .add_sa(
            Instant::ZERO,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    (b, id, udp4("10.0.2.9", "10.0.1.5", 2, 1, 30, 2))
}

#[test]
fn a_granted_block_is_where_the_sa_sends_from() {
    let (b, id, pkt) = node();
    // The SA's own first block: 1..=3.
    assert_eq!(b.limit_outbound_seq(id, 3).unwrap(), 4);
    let seqs: Vec<_> = (0..5).map(|_| seq_of(&send(&b, &pkt))).collect();
    assert_eq!(seqs, [Some(1), Some(2), Some(3), None, None]);
    assert_eq!(
        b.outbound_seq(id).unwrap(),
        OutboundSeq { last: 3, limit: 3 }
    );
    // Limiting the SA warns that it runs out (so IKE rekeys it)...
    assert!(b
        .drain_events()
        .iter()
        .any(|e| matches!(e, ipsec_sad::Event::SeqNearExhaustion { .. })));
    // Another node holds 4..=99; this one is granted 100..=102.
    b.grant_outbound_seq(id, SeqRange::new(100, 102)).unwrap();
    assert_eq!(b.outbound_seq(id).unwrap().remaining(), 3);
    let seqs: Vec<_> = (0..4).map(|_| seq_of(&send(&b, &pkt))).collect();
    assert_eq!(seqs, [Some(100), Some(101), Some(102), None]);
    let drops = b.sa_stats(id).unwrap().drops;
    assert!(drops.get(DropReason::SeqExhausted) >= 3, "{drops:?}");
    // ... but the end of a granted block is not the SA's end: whoever grants blocks
    // watches the space they come from, and a warning per block would have IKE rekey
    // the SA at every block.
    assert!(!b
        .drain_events()
        .iter()
        .any(|e| matches!(e, ipsec_sad::Event::SeqNearExhaustion { .. })));
    // A block that starts at or below what was handed out is refused: those numbers
    // (nonces) may already be on the wire.
    assert_eq!(
        b.grant_outbound_seq(id, SeqRange::new(102, 200)),
        Err(SadError::SeqRangeUsed {
            first: 102,
            last_seq: 102
        })
    );
    assert_eq!(
        b.grant_outbound_seq(id, SeqRange::new(300, 299)),
        Err(SadError::SeqRangeInvalid {
            first: 300,
            last: 299
        })
    );
    // A block granted before the current one ran out replaces it.
    b.grant_outbound_seq(id, SeqRange::new(500, 600)).unwrap();
    b.grant_outbound_seq(id, SeqRange::new(700, 701)).unwrap();
    assert_eq!(seq_of(&send(&b, &pkt)), Some(700));
}

#[test]
fn a_receive_only_import_sends_nothing_until_granted() {
    let pair = Pair::new(0xa300, 0xb300, 46);
    let a = sad();
    a.set_outbound_spd(spd(true, Mode::Tunnel));
    a.add_sa(
        Instant::ZERO,
        &pair.params(true),
        SaOptions::new().policy(PolicyId(1)),
    )
    .unwrap();
    let (b, id, pkt) = {
        let b = sad();
        b.set_outbound_spd(spd(false, Mode::Tunnel));
        let id = b
            .add_sa(
                Instant::ZERO,
                &pair.params(false),
                SaOptions::new().policy(PolicyId(1)),
            )
            .unwrap();
        (b, id, udp4("10.0.2.9", "10.0.1.5", 2, 1, 30, 2))
    };
    for _ in 0..2 {
        assert!(seq_of(&send(&b, &pkt)).is_some());
    }
    let snap = b.export_sa(T, id).unwrap();
    let c = sad();
    c.set_outbound_spd(spd(false, Mode::Tunnel));
    let ic = c
        .import_sa(
            T,
            &snap,
            ImportOptions::new(SeqRange::NONE).sa(SaOptions::new().policy(PolicyId(1))),
        )
        .unwrap();
    // It receives what the peer sends...
    let (mut s, len) = storage(&udp4("10.0.1.5", "10.0.2.9", 1, 2, 30, 1));
    let mut buf = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    assert!(matches!(
        a.process_outbound(T, &mut buf),
        Outbound::Protect { .. }
    ));
    let wire = buf.body().to_vec();
    let (mut s, len) = storage(&wire);
    let mut buf = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    assert!(matches!(
        c.process_inbound(T, &mut buf),
        Inbound::Deliver { .. }
    ));
    // ... but sends nothing of its own until a block is granted.
    assert!(seq_of(&send(&c, &pkt)).is_none());
    assert_eq!(
        c.grant_outbound_seq(ic, SeqRange::new(2, 10)),
        Err(SadError::SeqRangeUsed {
            first: 2,
            last_seq: 2
        })
    );
    c.grant_outbound_seq(ic, SeqRange::new(1000, 1999)).unwrap();
    let (o, w) = send_wire(&c, &pkt);
    assert_eq!(seq_of(&o), Some(1000));
    // And the peer accepts it.
    let (mut s, len) = storage(&w);
    let mut buf = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    assert!(matches!(
        a.process_inbound(T, &mut buf),
        Inbound::Deliver { .. }
    ));
}

/// A snapshot whose counters lie past the sequence space (a 32-bit SA that sent or
/// received beyond 2^32 - 1) cannot be of a real SA; importing it, also receive-only,
/// would install an SA with other counters than the snapshot's (found by the
/// `sa_import` fuzz target).
#[test]
fn a_snapshot_with_counters_past_the_space_is_refused() {
    let (b, id, _) = node();
    let mut snap = b.export_sa(T, id).unwrap();
    snap.esn = false;
    let opts = || ImportOptions::new(SeqRange::NONE).sa(SaOptions::new().policy(PolicyId(1)));
    let import = |s: &ipsec_sad::SaSnapshot| {
        let c = sad();
        c.set_outbound_spd(spd(false, Mode::Tunnel));
        c.import_sa(T, s, opts()).map(|_| ())
    };
    let mut s = snap.clone();
    s.last_seq = u64::from(u32::MAX);
    s.replay_top = u64::from(u32::MAX);
    import(&s).unwrap();
    s.last_seq = 1 << 40;
    assert_eq!(import(&s), Err(SadError::InvalidSnapshot("last_seq")));
    let mut s = snap.clone();
    s.replay_top = 1 << 32;
    assert_eq!(import(&s), Err(SadError::InvalidSnapshot("replay_top")));
    // With ESN both may be 64-bit, up to the space's end.
    let mut s = snap;
    s.esn = true;
    s.last_seq = 1 << 40;
    s.replay_top = 1 << 40;
    import(&s).unwrap();
    s.last_seq = u64::MAX;
    assert_eq!(import(&s), Err(SadError::InvalidSnapshot("last_seq")));
}

/// Four senders seal as fast as they can while a fifth thread switches the SA between
/// small blocks with gaps between them (the numbers of other nodes). Every number sent
/// must lie in a granted block, and none twice.
#[test]
fn senders_racing_block_switches_stay_inside_granted_blocks() {
    let (b, id, pkt) = node();
    let b = Arc::new(b);
    b.limit_outbound_seq(id, 0).unwrap();
    let granted = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (b, pkt, stop) = (Arc::clone(&b), pkt.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(s) = seq_of(&send(&b, &pkt)) {
                        seen.push(s);
                    }
                }
                seen
            })
        })
        .collect();
    let mut next = 1u64;
    for i in 0..400u64 {
        // Blocks of 1..=64 numbers, then a gap another node owns.
        let size = 1 + (i * 37) % 64;
        let block = (next, next + size - 1);
        next = block.1 + 1 + (i % 5) * 10;
        granted.lock().unwrap().push(block);
        b.grant_outbound_seq(id, SeqRange::new(block.0, block.1))
            .unwrap();
        // Let the senders into the block (most of the time they use it up; now and
        // then the next grant comes while they are in it).
        for _ in 0..(i % 3) * 2000 {
            if b.outbound_seq(id).unwrap().remaining() == 0 {
                break;
            }
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for s in senders {
        all.extend(s.join().unwrap());
    }
    let granted = granted.lock().unwrap();
    let mut unique = HashSet::new();
    for s in &all {
        assert!(unique.insert(*s), "sequence number {s} sent twice");
        assert!(
            granted.iter().any(|(f, l)| s >= f && s <= l),
            "sequence number {s} outside every granted block"
        );
    }
    assert!(all.len() > 100, "only {} packets sent", all.len());
}
