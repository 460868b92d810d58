//! SA export and import: the importer takes over the exporter's SA.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipsec_core::{Instant, Mode, PacketBuf};
use ipsec_sad::{
    DropReason, ImportOptions, Inbound, Outbound, PolicyId, SaOptions, Sad, SadError, SeqRange,
    SNAPSHOT_VERSION,
};

const T: Instant = Instant(5_000_000_000);

fn run(tx: &Sad, now: Instant, packet: &[u8]) -> (Outbound, Vec<u8>) {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let o = tx.process_outbound(now, &mut b);
    (o, b.body().to_vec())
}

fn recv(rx: &Sad, now: Instant, wire: &[u8]) -> (Inbound, Vec<u8>) {
    let (mut s, len) = storage(wire);
    let mut b = PacketBuf::new(&mut s[..], ipsec_sad::MAX_HEADROOM, len).unwrap();
    let i = rx.process_inbound(now, &mut b);
    (i, b.body().to_vec())
}

#[test]
fn importer_continues_the_sa_without_reusing_sequence_numbers() {
    let pair = Pair::new(0xa000, 0xb000, 42);
    // A is the peer; B exports its SA; C imports it.
    let a = sad();
    let b = sad();
    a.set_outbound_spd(spd(true, Mode::Tunnel));
    b.set_outbound_spd(spd(false, Mode::Tunnel));
    a.add_sa(
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
    let to_b = udp4("10.0.1.5", "10.0.2.9", 1, 2, 30, 1);
    let to_a = udp4("10.0.2.9", "10.0.1.5", 2, 1, 30, 2);
    let mut old_wire = Vec::new();
    for _ in 0..5 {
        let (_, w) = run(&a, T, &to_b);
        assert!(matches!(recv(&b, T, &w).0, Inbound::Deliver { .. }));
        old_wire = w;
    }
    let mut exporter_last = 0;
    for _ in 0..7 {
        let (o, w) = run(&b, T, &to_a);
        if let Outbound::Protect { seq, .. } = o {
            exporter_last = seq;
        }
        assert!(matches!(recv(&a, T, &w).0, Inbound::Deliver { .. }));
    }

    let snap = b.export_sa(T, ib).unwrap();
    assert_eq!(snap.version, SNAPSHOT_VERSION);
    assert_eq!(
        (snap.last_seq, snap.replay_top, snap.used.in_packets),
        (7, 5, 5)
    );
    // Keys are never printed.
    let dbg = format!("{snap:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    assert!(
        !dbg.contains(&format!("{:?}", snap.inbound_keys.encr)),
        "{dbg}"
    );

    let margin = 1000;
    let c = sad();
    c.set_outbound_spd(spd(false, Mode::Tunnel));
    let later = Instant(T.0 + 1_000_000_000);
    let ic = c
        .import_sa(
            later,
            &snap,
            ImportOptions::new(SeqRange::after(&snap, margin))
                .sa(SaOptions::new().policy(PolicyId(1))),
        )
        .unwrap();
    // The importer decrypts what the exporter's peer sends next ...
    for want in 6..=8 {
        let (_, w) = run(&a, later, &to_b);
        let (i, got) = recv(&c, later, &w);
        assert!(
            matches!(i, Inbound::Deliver { seq, .. } if seq == want),
            "{i:?}"
        );
        assert_eq!(got, to_b);
    }
    // ... refuses what the exporter had already received ...
    assert_eq!(
        recv(&c, later, &old_wire).0,
        Inbound::Drop(DropReason::Replay)
    );
    // ... and sends on past the exporter's last number plus the margin.
    let (o, w) = run(&c, later, &to_a);
    let Outbound::Protect { seq: first, .. } = o else {
        panic!("{o:?}")
    };
    assert!(first > exporter_last + margin, "{first}");
    assert!(matches!(recv(&a, later, &w).0, Inbound::Deliver { seq, .. } if seq == first));
    // Lifetime use carried over.
    let s = c.sa_stats(ic).unwrap();
    assert_eq!((s.in_packets, s.out_packets), (5 + 3, 7 + 1));
    assert_eq!(c.sa_info(ic).unwrap().installed, Instant(later.0 - T.0));
}

#[test]
fn export_refusals() {
    let b = sad();
    let p = Pair::new(0xa001, 0xb001, 43);
    let id = b
        .add_sa(T, &p.params(false), SaOptions::new().exportable(false))
        .unwrap();
    assert_eq!(b.export_sa(T, id), Err(SadError::NotExportable));
    let id2 = b
        .add_sa(
            T,
            &Pair::new(0xa002, 0xb002, 44).params(false),
            SaOptions::new(),
        )
        .unwrap();
    let mut snap = b.export_sa(T, id2).unwrap();
    let c = sad();
    snap.version = 99;
    assert_eq!(
        c.import_sa(T, &snap, ImportOptions::new(SeqRange::after(&snap, 0))),
        Err(SadError::SnapshotVersion(99))
    );
    snap.version = SNAPSHOT_VERSION;
    snap.mode = "sideways".into();
    assert_eq!(
        c.import_sa(T, &snap, ImportOptions::new(SeqRange::after(&snap, 0))),
        Err(SadError::InvalidSnapshot("mode"))
    );
}

#[cfg(feature = "serde")]
#[test]
fn snapshot_json_round_trip() {
    let b = sad();
    let id = b
        .add_sa(
            T,
            &Pair::new(0xa003, 0xb003, 45).params(false),
            SaOptions::new(),
        )
        .unwrap();
    let snap = b.export_sa(T, id).unwrap();
    let json = serde_json::to_string_pretty(&snap).unwrap();
    assert!(json.contains("\"encr\": \""), "keys as hex strings: {json}");
    let back: ipsec_sad::SaSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let c = sad();
    c.import_sa(
        T,
        &back,
        ImportOptions::new(SeqRange::after(&back, 1 << 24)),
    )
    .unwrap();
}

/// The double-import hazard: one snapshot on two live nodes. Each import has to name
/// the sequence numbers it owns; with disjoint ranges the two nodes never send the
/// same (SPI, sequence number) — and so never the same AEAD nonce — under the key,
/// each stops at the end of its range, and a range the exporter may already have
/// used is refused.
#[test]
fn two_imports_of_one_snapshot_never_share_a_nonce() {
    let pair = Pair::new(0xa100, 0xb100, 44);
    let b = sad();
    b.set_outbound_spd(spd(false, Mode::Tunnel));
    let ib = b
        .add_sa(
            Instant::ZERO,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    let to_a = udp4("10.0.2.9", "10.0.1.5", 2, 1, 30, 2);
    for _ in 0..3 {
        assert!(matches!(run(&b, T, &to_a).0, Outbound::Protect { .. }));
    }
    let snap = b.export_sa(T, ib).unwrap();
    assert_eq!(snap.last_seq, 3);

    // Numbers the exporter may have sent are refused, and so are empty ranges.
    let opts = |first, last| {
        ImportOptions::new(SeqRange::new(first, last)).sa(SaOptions::new().policy(PolicyId(1)))
    };
    assert_eq!(
        sad().import_sa(T, &snap, opts(3, 100)),
        Err(SadError::SeqRangeUsed {
            first: 3,
            last_seq: 3
        })
    );
    assert_eq!(
        sad().import_sa(T, &snap, opts(50, 40)),
        Err(SadError::SeqRangeInvalid {
            first: 50,
            last: 40
        })
    );
    // With ESN the space ends 2^32 below 2^64 (headroom for racing counters): a range
    // starting above that could never send.
    assert!(snap.esn);
    let top = u64::MAX - (1 << 32);
    assert_eq!(
        sad().import_sa(T, &snap, opts(top + 1, u64::MAX)),
        Err(SadError::SeqRangeInvalid {
            first: top + 1,
            last: u64::MAX
        })
    );
    let mut no_esn = snap.clone();
    no_esn.esn = false;
    // A range that only ends beyond the space is cut to it: the SA sends up to 2^32 - 1.
    let near = sad();
    near.set_outbound_spd(spd(false, Mode::Tunnel));
    near.import_sa(T, &no_esn, opts(u64::from(u32::MAX) - 1, 1 << 40))
        .unwrap();
    let sent: Vec<_> = (0..4)
        .map(|_| match run(&near, T, &to_a).0 {
            Outbound::Protect { seq, .. } => Some(seq),
            Outbound::Drop(DropReason::SeqExhausted) => None,
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(
        sent,
        [
            Some(u64::from(u32::MAX) - 1),
            Some(u64::from(u32::MAX)),
            None,
            None
        ]
    );
    assert_eq!(
        sad().import_sa(T, &no_esn, opts(1 << 33, 1 << 34)),
        Err(SadError::SeqRangeInvalid {
            first: 1 << 33,
            last: 1 << 34
        }),
        "beyond the 32-bit space of an SA without ESN"
    );

    // Two nodes, disjoint blocks of 10.
    let nodes: Vec<Sad> = [(100, 109), (110, 119)]
        .into_iter()
        .map(|(first, last)| {
            let n = sad();
            n.set_outbound_spd(spd(false, Mode::Tunnel));
            n.import_sa(T, &snap, opts(first, last)).unwrap();
            n
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut sent = 0;
        for _ in 0..15 {
            match run(n, T, &to_a).0 {
                Outbound::Protect { seq, .. } => {
                    assert!(seen.insert(seq), "sequence number {seq} sent twice");
                    sent += 1;
                }
                Outbound::Drop(DropReason::SeqExhausted) => {}
                o => panic!("{o:?}"),
            }
        }
        assert_eq!(sent, 10, "node {i} sends exactly its block");
    }
    assert_eq!(seen, (100..120).collect());
}

/// The exporter keeps sending after the export: it first limits its own SA, and the
/// importer takes the numbers from the returned boundary on. The two never send the
/// same sequence number, and the boundary accounts for numbers already handed out.
#[test]
fn exporter_limits_itself_and_keeps_sending_beside_the_importer() {
    let pair = Pair::new(0xa200, 0xb200, 45);
    let b = sad();
    b.set_outbound_spd(spd(false, Mode::Tunnel));
    let ib = b
        .add_sa(
            Instant::ZERO,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    let to_a = udp4("10.0.2.9", "10.0.1.5", 2, 1, 30, 2);
    let seq_of = |n: &Sad| match run(n, T, &to_a).0 {
        Outbound::Protect { seq, .. } => Some(seq),
        Outbound::Drop(DropReason::SeqExhausted) => None,
        o => panic!("{o:?}"),
    };
    for want in 1..=4 {
        assert_eq!(seq_of(&b), Some(want));
    }
    // Below what was handed out: the boundary is past the counter, not the limit.
    assert_eq!(b.limit_outbound_seq(ib, 2), Ok(5));
    assert_eq!(seq_of(&b), None, "the SA is at its limit");
    // Limits only go down.
    assert_eq!(b.limit_outbound_seq(ib, 100), Ok(5));
    assert_eq!(seq_of(&b), None);
    assert_eq!(
        b.limit_outbound_seq(ipsec_sad::SaId(999), 1),
        Err(SadError::UnknownSa(ipsec_sad::SaId(999)))
    );

    // A second SA: limit ahead of the counter, export, import from the boundary.
    let pair = Pair::new(0xa300, 0xb300, 46);
    let b = sad();
    b.set_outbound_spd(spd(false, Mode::Tunnel));
    let ib = b
        .add_sa(
            Instant::ZERO,
            &pair.params(false),
            SaOptions::new().policy(PolicyId(1)),
        )
        .unwrap();
    assert_eq!(seq_of(&b), Some(1));
    let free = b.limit_outbound_seq(ib, 10).unwrap();
    assert_eq!(free, 11);
    let snap = b.export_sa(T, ib).unwrap();
    let c = sad();
    c.set_outbound_spd(spd(false, Mode::Tunnel));
    c.import_sa(
        T,
        &snap,
        ImportOptions::new(SeqRange::new(free, free + 9)).sa(SaOptions::new().policy(PolicyId(1))),
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::from([1]);
    for node in [&b, &c] {
        while let Some(seq) = seq_of(node) {
            assert!(seen.insert(seq), "sequence number {seq} sent twice");
        }
    }
    assert_eq!(seen, (1..=20).collect());
}
