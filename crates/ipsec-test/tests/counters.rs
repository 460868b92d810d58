//! The endpoint's handshake and retransmission counters (`EndpointStats::ike`).

use ipsec_ike::Event;
use ipsec_test::{config, Dir, Pair};

#[test]
fn a_handshake_counts_once_per_side_and_a_close_is_not_a_failure() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 41);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    let (a, b) = (p.a.ep.stats().ike, p.b.ep.stats().ike);
    assert_eq!((a.handshakes, b.handshakes), (1, 1));
    assert_eq!(a.retransmissions, 0);
    p.a.ep.close(p.now, h).unwrap();
    p.drive();
    assert!(p
        .a
        .find(|e| matches!(e, Event::IkeSaClosed { .. }))
        .is_some());
    let (a, b) = (p.a.ep.stats().ike, p.b.ep.stats().ike);
    assert_eq!(
        a.failed_authentication + a.failed_other + a.failed_timeout,
        0
    );
    assert_eq!(
        b.failed_authentication + b.failed_other + b.failed_timeout,
        0
    );
}

#[test]
fn failures_are_counted_by_reason() {
    let mut b = config("@b.test");
    b.psk = "another key".into();
    let mut p = Pair::new(config("@a.test"), b, 42);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    let (a, b) = (p.a.ep.stats().ike, p.b.ep.stats().ike);
    assert_eq!((a.handshakes, b.handshakes), (0, 0));
    assert_eq!((a.failed_authentication, b.failed_authentication), (1, 1));
}

#[test]
fn lost_requests_count_as_retransmissions() {
    // The first two IKE_SA_INIT requests are lost: two retransmissions.
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 43);
    let mut dropped = 0;
    p.alter = Some(Box::new(move |dir, _| {
        if dir == Dir::AtoB && dropped < 2 {
            dropped += 1;
            return false;
        }
        true
    }));
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    assert_eq!(p.a.ep.stats().ike.retransmissions, 2);
    assert_eq!(p.a.ep.stats().ike.handshakes, 1);
}
