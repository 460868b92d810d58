//! The `tracing` events of `ipsec-ike` (its `tracing` feature, on through this crate's
//! dev-dependency): why a datagram was dropped, the transitions of IKE and Child SAs,
//! failures; and that no event carries a key.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use ipsec_ike::{Event, IkeEndpoint, Transmit};
use ipsec_test::capture::{Capture, Captured};
use ipsec_test::{config, handshake, seeded_provider, Dir, Pair};
use tracing::Level;

fn with_message<'a>(events: &'a [Captured], message: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.message == message).collect()
}

fn with_reason<'a>(events: &'a [Captured], reason: &str) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.field("reason") == Some(reason))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_handshake_traces_both_sides_established_and_their_child_sas() {
    let cap = Capture::new();
    let (p, h) = cap.run(|| handshake(config("@a.test"), config("@b.test"), 61));
    assert!(p.a.ep.is_established(h));
    let events = cap.from("ipsec_ike");
    let up = with_message(&events, "IKE SA established");
    assert_eq!(up.len(), 2, "one per side: {events:#?}");
    assert!(up.iter().all(|e| e.level == Level::INFO));
    // The fields are the SAs' own: each side's local SPI is the other's remote SPI,
    // as in the events the endpoints hand out.
    for (side, peer) in [(&p.a, "@b.test"), (&p.b, "@a.test")] {
        let Some(Event::IkeSaEstablished {
            local_spi,
            remote_spi,
            ..
        }) = side.find(|e| matches!(e, Event::IkeSaEstablished { .. }))
        else {
            panic!("no IkeSaEstablished event");
        };
        let e = up
            .iter()
            .find(|e| e.field("local_spi") == Some(&local_spi.to_string()))
            .unwrap_or_else(|| panic!("no event with local_spi {local_spi}: {up:#?}"));
        assert_eq!(e.field("remote_spi"), Some(remote_spi.to_string().as_str()));
        assert_eq!(e.field("peer"), Some(peer));
        assert!(e.field("suite").is_some_and(|s| !s.is_empty()));
    }
    let children = with_message(&events, "Child SA installed");
    assert_eq!(children.len(), 2, "{events:#?}");
    for (_, params) in p.a.installed() {
        let spi = params.inbound_spi.to_string();
        assert!(
            children
                .iter()
                .any(|e| e.field("inbound_spi") == Some(&spi)),
            "{children:#?}"
        );
    }
    // Nothing failed, nothing was dropped.
    assert!(
        events
            .iter()
            .all(|e| e.level != Level::WARN && e.level != Level::ERROR),
        "{events:#?}"
    );
    assert!(with_message(&events, "IKE message dropped").is_empty());
}

#[test]
fn no_event_carries_a_key() {
    let mut a = config("@a.test");
    a.export_ike_keys = true;
    let cap = Capture::new();
    let (p, _) = cap.run(|| handshake(a, config("@b.test"), 62));
    let text = format!("{:?}", cap.events());
    let keys =
        p.a.events
            .iter()
            .find_map(|(_, e)| match e {
                Event::IkeSaKeysDerived { keys } => Some(keys),
                _ => None,
            })
            .expect("exported IKE SA keys");
    // The keys event is traced, by its SPIs only.
    assert!(text.contains(&keys.spi_i.to_string()), "{text}");
    let (_, params) = p.a.installed()[0];
    let secrets = [
        keys.sk_ei.expose(),
        keys.sk_er.expose(),
        params.inbound_keys.encr(),
        params.outbound_keys.encr(),
    ];
    for s in secrets {
        assert!(s.len() >= 16);
        // Neither as hex nor as Debug's list of numbers.
        assert!(!text.contains(&hex(&s[..8])), "a key in an event");
        let dbg = format!("{:?}", &s[..8]);
        assert!(!text.contains(&dbg[1..dbg.len() - 1]), "a key in an event");
    }
}

/// A protected request from an IKE SA the receiver does not know: dropped with
/// `reason = unknown_spi`, and answered with INVALID_IKE_SPI (RFC 7296 §2.21.4).
#[test]
fn a_datagram_for_an_unknown_ike_spi_says_so() {
    let (mut p, h) = handshake(config("@a.test"), config("@b.test"), 63);
    p.a.ep.check_liveness(p.now, h).unwrap();
    let request = p.a.ep.poll_transmit().expect("an INFORMATIONAL request");
    let Some(Event::IkeSaEstablished { local_spi, .. }) =
        p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. }))
    else {
        panic!("not established");
    };
    // A responder that never saw this IKE SA (a restarted peer).
    let mut c = IkeEndpoint::new(Arc::new(config("@b.test")), seeded_provider(64));
    let cap = Capture::new();
    cap.run(|| c.handle_datagram(p.now, request.remote, request.local, &request.payload));
    let events = cap.from("ipsec_ike");
    let dropped = with_reason(&events, "unknown_spi");
    assert_eq!(dropped.len(), 1, "{events:#?}");
    let e = dropped[0];
    assert_eq!(e.level, Level::DEBUG);
    assert_eq!(e.field("spi_i"), Some(local_spi.to_string().as_str()));
    assert_eq!(e.field("exchange"), Some("INFORMATIONAL"));
    assert_eq!(e.field("answer"), Some("INVALID_IKE_SPI"));
    assert_eq!(e.field("remote"), Some(request.local.to_string().as_str()));
    assert!(c.poll_transmit().is_some(), "INVALID_IKE_SPI sent");
}

/// A request the peer already had answered twice over, replayed: outside the
/// Message ID window (RFC 7296 §2.3).
#[test]
fn a_replayed_old_request_is_outside_the_message_id_window() {
    let seen: Rc<RefCell<Vec<Transmit>>> = Rc::default();
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 65);
    let log = Rc::clone(&seen);
    p.alter = Some(Box::new(move |dir, t| {
        if dir == Dir::AtoB {
            log.borrow_mut().push(t.clone());
        }
        true
    }));
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.collect();
    p.drive();
    // The IKE_AUTH request: Message ID 1, while B now expects 3.
    let auth = seen.borrow()[1].clone();
    let cap = Capture::new();
    cap.run(|| {
        p.b.ep
            .handle_datagram(p.now, auth.remote, auth.local, &auth.payload)
    });
    let events = cap.from("ipsec_ike");
    let dropped = with_reason(&events, "message_id_window");
    assert_eq!(dropped.len(), 1, "{events:#?}");
    assert_eq!(dropped[0].field("message_id"), Some("1"));
    assert_eq!(dropped[0].field("exchange"), Some("IKE_AUTH"));
    assert!(p.b.ep.poll_transmit().is_none(), "not answered");
}

/// A corrupted IKE_AUTH request fails the integrity check; the initiator retransmits
/// and the handshake completes.
#[test]
fn a_corrupted_message_fails_integrity_and_is_retransmitted() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 66);
    let mut n = 0;
    p.alter = Some(Box::new(move |dir, t| {
        if dir == Dir::AtoB {
            n += 1;
            if n == 2 {
                // Inside the SK payload's ciphertext or ICV.
                let last = t.payload.len() - 1;
                t.payload[last] ^= 0x01;
            }
        }
        true
    }));
    let cap = Capture::new();
    let h = cap.run(|| {
        let h = p.connect();
        p.drive();
        h
    });
    assert!(p.a.ep.is_established(h));
    let events = cap.from("ipsec_ike");
    let dropped = with_reason(&events, "integrity");
    assert_eq!(dropped.len(), 1, "{events:#?}");
    assert_eq!(dropped[0].field("exchange"), Some("IKE_AUTH"));
    let again = with_message(&events, "IKE request retransmitted");
    assert_eq!(again.len(), 1, "{events:#?}");
    assert_eq!(again[0].level, Level::INFO);
    assert_eq!(again[0].field("exchange"), Some("IKE_AUTH"));
    assert_eq!(p.a.ep.stats().ike.retransmissions, 1);
}

#[test]
fn a_failed_handshake_is_a_warning_with_its_reason() {
    let mut b = config("@b.test");
    b.psk = "another key".into();
    let cap = Capture::new();
    let (p, h) = cap.run(|| handshake(config("@a.test"), b, 67));
    assert!(!p.a.ep.is_established(h));
    let events = cap.from("ipsec_ike");
    let failed = with_message(&events, "IKE SA handshake failed");
    assert_eq!(failed.len(), 2, "both sides: {events:#?}");
    assert!(failed.iter().all(|e| e.level == Level::WARN));
    assert!(
        failed
            .iter()
            .any(|e| e.field("reason") == Some("authentication failed: wrong pre-shared key")),
        "{failed:#?}"
    );
    assert!(with_message(&events, "IKE SA established").is_empty());
}

#[test]
fn an_orderly_close_is_info_on_both_sides() {
    let (mut p, h) = handshake(config("@a.test"), config("@b.test"), 68);
    let cap = Capture::new();
    cap.run(|| {
        p.a.ep.close(p.now, h).unwrap();
        p.collect();
        p.drive();
    });
    let events = cap.from("ipsec_ike");
    let closed = with_message(&events, "IKE SA closed");
    assert_eq!(closed.len(), 2, "{events:#?}");
    assert!(closed.iter().all(|e| e.level == Level::INFO));
    let reasons: Vec<_> = closed.iter().filter_map(|e| e.field("reason")).collect();
    assert!(reasons.contains(&"deleted by us") && reasons.contains(&"deleted by peer"));
    assert_eq!(with_message(&events, "Child SA deleted").len(), 2);
}
