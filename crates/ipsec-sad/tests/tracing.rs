//! The `tracing` events of the SAD (the `tracing` feature): one `trace` event per
//! dropped packet with the reason the drop counters count, SAs installed and removed
//! and their lifetime events at `info`.
//!
//! Runs with the feature only (`cargo test -p ipsec-sad --features tracing`; a
//! workspace build has it on through the gateway).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipsec_core::{Instant, PacketBuf};
use ipsec_sad::{DropReason, Inbound, Outbound, PolicyId, SaOptions, Sad, MAX_HEADROOM};
use ipsec_test::capture::{Capture, Captured};
use tracing::Level;

const T: Instant = Instant(1_000_000_000);

fn drops(cap: &Capture) -> Vec<Captured> {
    cap.from("ipsec_sad")
        .into_iter()
        .filter(|e| e.message == "packet dropped")
        .collect()
}

fn seal(tx: &Sad, packet: &[u8]) -> Vec<u8> {
    let (mut s, len) = storage(packet);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    assert!(matches!(
        tx.process_outbound(T, &mut b),
        Outbound::Protect { .. }
    ));
    b.body().to_vec()
}

fn deliver(rx: &Sad, wire: &[u8]) -> Inbound {
    let (mut s, len) = storage(wire);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, len).unwrap();
    rx.process_inbound(T, &mut b)
}

/// Node A with an SA to B, and node B; `b_has_sa`: whether B has its half.
fn nodes(b_has_sa: bool) -> (Sad, Sad, Pair) {
    let pair = Pair::new(0x1000, 0x2000, 1);
    let (a, b) = (sad(), sad());
    a.set_outbound_spd(spd(true, pair.mode));
    b.set_outbound_spd(spd(false, pair.mode));
    let opts = || SaOptions::new().policy(PolicyId(1));
    a.add_sa(Instant::ZERO, &pair.params(true), opts()).unwrap();
    if b_has_sa {
        b.add_sa(Instant::ZERO, &pair.params(false), opts())
            .unwrap();
    }
    (a, b, pair)
}

#[test]
fn a_packet_with_no_sa_is_an_unknown_spi_drop() {
    let (a, b, _) = nodes(false);
    let wire = seal(&a, &udp4("10.0.1.5", "10.0.2.9", 1234, 80, 64, 1));
    let cap = Capture::new();
    let r = cap.run(|| deliver(&b, &wire));
    assert_eq!(r, Inbound::Drop(DropReason::UnknownSpi));
    let d = drops(&cap);
    assert_eq!(d.len(), 1, "{:#?}", cap.events());
    assert_eq!(d[0].level, Level::TRACE);
    assert_eq!(d[0].field("reason"), Some("unknown_spi"));
    assert_eq!(d[0].field("spi"), Some("0x00001000"));
    assert_eq!(d[0].field("direction"), Some("Inbound"));
    assert_eq!(b.drop_counts().get(DropReason::UnknownSpi), 1);
}

#[test]
fn drop_events_match_the_drop_counters() {
    let (a, b, _) = nodes(true);
    let good = seal(&a, &udp4("10.0.1.5", "10.0.2.9", 1234, 80, 64, 1));
    let mut forged = seal(&a, &udp4("10.0.1.5", "10.0.2.9", 1234, 80, 64, 2));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let cap = Capture::new();
    let results = cap.run(|| {
        [
            deliver(&b, &good),
            deliver(&b, &good),      // replay
            deliver(&b, &forged),    // integrity
            deliver(&b, &good[..7]), // malformed
        ]
    });
    assert!(matches!(results[0], Inbound::Deliver { .. }));
    let reasons: Vec<_> = results[1..]
        .iter()
        .map(|r| match r {
            Inbound::Drop(d) => d.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    let d = drops(&cap);
    let traced: Vec<_> = d.iter().map(|e| e.field("reason").unwrap()).collect();
    assert_eq!(traced, reasons, "{d:#?}");
    // Where the SA was found, its id is in the event; it counted there.
    let id = b.sa_ids()[0];
    let per_sa = b.sa_stats(id).unwrap().drops.total();
    let with_sa = d.iter().filter(|e| e.field("sa").is_some()).count();
    assert_eq!(with_sa as u64, per_sa);
    assert_eq!(
        (d.len() - with_sa) as u64,
        b.drop_counts().total(),
        "the rest in the SAD's own counters"
    );
    assert!(d
        .iter()
        .filter(|e| e.field("sa").is_some())
        .all(|e| e.field("sa") == Some(&id.0.to_string())));
    // The ESP codec under the SAD reports the same replay in its own target.
    let esp: Vec<_> = cap
        .from("ipsec_esp")
        .into_iter()
        .filter_map(|e| e.field("reason").map(str::to_owned))
        .collect();
    assert!(esp.contains(&"replay".to_owned()), "{esp:?}");
}

#[test]
fn sas_installed_expired_and_removed_are_info() {
    let pair = Pair::new(0x3000, 0x4000, 3);
    let s = sad();
    s.set_outbound_spd(spd(true, pair.mode));
    let cap = Capture::new();
    let id = cap.run(|| {
        let id = s
            .add_sa(
                Instant::ZERO,
                &pair.params(true),
                SaOptions::new().policy(PolicyId(1)),
            )
            .unwrap();
        s.expire_sa(id).unwrap();
        // Polling the hard expiry removes the SA.
        while s.poll_event().is_some() {}
        id
    });
    let e = cap.from("ipsec_sad");
    let messages: Vec<_> = e.iter().map(|e| (e.level, e.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (Level::INFO, "SA installed"),
            (
                Level::INFO,
                "SA hard lifetime reached: it processes no more packets"
            ),
            (Level::INFO, "SA removed"),
        ],
        "{e:#?}"
    );
    assert!(e.iter().all(|e| e.field("sa") == Some(&id.0.to_string())));
    assert_eq!(e[0].field("inbound_spi"), Some("0x00004000"));
    assert_eq!(e[0].field("outbound_spi"), Some("0x00003000"));
    assert_eq!(e[1].field("cause"), Some("Time"));
}
