//! Unprotected error notifications (RFC 7296 §2.21): forged errors in answer to
//! IKE_SA_INIT do not end a handshake, and INVALID_IKE_SPI (§2.21.4) is sent rate
//! limited and taken only as a hint.

use std::net::SocketAddr;
use std::sync::Arc;

use ipsec_core::IkeSpi;
use ipsec_ike::{
    CloseReason, Config, Duration, Event, IkeEndpoint, NotifyType, SaHandle, NAT_T_PORT,
    NON_ESP_MARKER,
};
use ipsec_ike_wire::{ExchangeType, Flags, IkeHeaderRepr, Message, NotifyRepr, Payload};
use ipsec_test::{config, seeded_provider, Dir, Pair};

/// An unprotected message with a single notification.
fn plain_notify(header: IkeHeaderRepr, n: NotifyType, data: &[u8]) -> Vec<u8> {
    Message {
        header,
        payloads: vec![Payload::Notify(NotifyRepr::new(n, data))],
    }
    .to_vec()
}

/// A's SPI from its first IKE_SA_INIT request.
fn initiator_spi(p: &Pair) -> IkeSpi {
    let (_, _, t) = p
        .sent
        .iter()
        .find(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
        .expect("IKE_SA_INIT request");
    IkeSpi(t.payload[..8].try_into().unwrap())
}

/// What an attacker who sees A's IKE_SA_INIT request sends A: an IKE_SA_INIT
/// response with only `n` in it.
fn spoof_init_error(p: &mut Pair, n: NotifyType, data: &[u8]) {
    let header = IkeHeaderRepr {
        spi_i: initiator_spi(p),
        spi_r: IkeSpi::ZERO,
        minor_version: 0,
        exchange_type: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(false, true),
        message_id: 0,
    };
    let forged = plain_notify(header, n, data);
    let (a, b) = (p.a.addr(), p.b.addr());
    p.a.ep.handle_datagram(p.now, a, b, &forged);
    p.collect();
}

fn init_requests(p: &Pair) -> usize {
    p.sent
        .iter()
        .filter(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
        .count()
}

fn closed(p: &Pair) -> Vec<CloseReason> {
    p.a.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::IkeSaClosed { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn spoofed_init_error_before_the_genuine_response_is_ignored() {
    for n in [
        NotifyType::NO_PROPOSAL_CHOSEN,
        NotifyType::INVALID_SYNTAX,
        NotifyType::AUTHENTICATION_FAILED,
        NotifyType::INVALID_IKE_SPI,
    ] {
        let mut p = Pair::new(config("@a.test"), config("@b.test"), 40);
        let h = p.connect();
        // The forgery arrives at once, B's genuine response 20 ms later.
        spoof_init_error(&mut p, n, &[]);
        assert!(closed(&p).is_empty(), "{n:?}: {:?}", p.a.events);
        p.drive();
        assert!(p.a.ep.is_established(h), "{n:?}: {:?}", p.a.events);
        assert!(closed(&p).is_empty(), "{n:?}");
        assert_eq!(init_requests(&p), 1, "{n:?}: no extra request");
    }
}

#[test]
fn spoofed_unusable_invalid_ke_payload_is_ignored() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 41);
    let h = p.connect();
    // ECP-384 is not in A's proposals: no retry possible.
    spoof_init_error(&mut p, NotifyType::INVALID_KE_PAYLOAD, &20u16.to_be_bytes());
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(init_requests(&p), 1);
}

#[test]
fn spoofed_response_with_a_bad_proposal_is_ignored() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 42);
    // An attacker sees B's IKE_SA_INIT response (sent at 10 ms, due at A at 20 ms)
    // and races it with a copy whose proposal A never offered.
    let h = p.connect();
    p.drive_for(Duration::from_millis(15));
    let genuine = p
        .sent
        .iter()
        .find(|(_, d, _)| *d == Dir::BtoA)
        .map(|(_, _, t)| t.clone())
        .expect("B answered");
    let m = Message::parse(&genuine.payload).unwrap();
    let mut forged = m.clone();
    for pl in &mut forged.payloads {
        if let Payload::Sa(sa) = pl {
            for prop in &mut sa.proposals {
                for t in &mut prop.transforms {
                    if t.transform_type == ipsec_core::iana::TransformType::ENCR {
                        t.id = 12345;
                    }
                }
            }
        }
    }
    let bytes = forged.to_vec();
    assert_ne!(bytes, genuine.payload);
    let (a, b) = (p.a.addr(), p.b.addr());
    p.a.ep.handle_datagram(p.now, a, b, &bytes);
    p.collect();
    assert!(closed(&p).is_empty(), "{:?}", p.a.events);
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
}

#[test]
fn spoofed_error_then_silence_fails_with_that_error_after_the_timeout() {
    for (n, want) in [
        (
            NotifyType::NO_PROPOSAL_CHOSEN,
            CloseReason::NoProposalChosen,
        ),
        (
            NotifyType::INVALID_SYNTAX,
            CloseReason::NotifyReceived(NotifyType::INVALID_SYNTAX),
        ),
    ] {
        let mut p = Pair::new(config("@a.test"), config("@b.test"), 43);
        // B never answers.
        p.alter = Some(Box::new(|d, _| d == Dir::AtoB));
        let h = p.connect();
        spoof_init_error(&mut p, n, &[]);
        let retransmit = p.a.ep.config().retransmit;
        // Still trying until the retransmissions run out.
        p.drive_for(retransmit.total() - Duration::from_millis(1));
        assert!(closed(&p).is_empty(), "{n:?}");
        p.drive();
        assert_eq!(closed(&p), vec![want], "{n:?}");
        assert!(!p.a.ep.is_established(h));
        assert_eq!(init_requests(&p), retransmit.max_tries as usize);
    }
}

#[test]
fn silence_alone_still_fails_with_timeout() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 44);
    p.alter = Some(Box::new(|d, _| d == Dir::AtoB));
    p.connect();
    p.drive();
    assert_eq!(closed(&p), vec![CloseReason::Timeout]);
}

#[test]
fn genuine_no_proposal_chosen_fails_after_the_retransmissions() {
    let a = config("@a.test")
        .with_ike_proposals("aes128gcm16-prfsha256-x25519")
        .unwrap();
    let b = config("@b.test")
        .with_ike_proposals("aes256-sha256-ecp384")
        .unwrap();
    let mut p = Pair::new(a, b, 45);
    p.connect();
    p.drive();
    assert_eq!(closed(&p), vec![CloseReason::NoProposalChosen]);
    // Every retransmission was answered the same way, statelessly.
    let retransmit = p.a.ep.config().retransmit;
    assert_eq!(init_requests(&p), retransmit.max_tries as usize);
    assert!(p.b.ep.sa_handles().is_empty());
}

// ---- INVALID_IKE_SPI (RFC 7296 §2.21.4) ------------------------------------------

fn up(p: &mut Pair) -> SaHandle {
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    h
}

/// A's (SPIi, SPIr) of its established IKE SA.
fn established_spis(p: &Pair) -> (IkeSpi, IkeSpi) {
    match p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
        Some(Event::IkeSaEstablished {
            local_spi,
            remote_spi,
            ..
        }) => (*local_spi, *remote_spi),
        _ => panic!("not established"),
    }
}

/// B's answers that are unprotected INVALID_IKE_SPI notifications.
fn invalid_spi_answers(p: &Pair) -> Vec<Message<'_>> {
    p.sent
        .iter()
        .filter(|(_, d, _)| *d == Dir::BtoA)
        .filter_map(|(_, _, t)| Message::parse(&t.payload).ok())
        .filter(|m| {
            matches!(&m.payloads[..], [Payload::Notify(n)]
                if n.notify_type == NotifyType::INVALID_IKE_SPI && n.data.is_empty())
        })
        .collect()
}

/// B forgets everything (a restart): a fresh endpoint with the same configuration.
fn restart_b(p: &mut Pair, config: Config) {
    p.b.ep = IkeEndpoint::new(Arc::new(config), seeded_provider(4242));
}

#[test]
fn a_restarted_peer_answers_invalid_ike_spi_and_the_sa_times_out() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 50);
    let h = up(&mut p);
    let (spi_i, spi_r) = established_spis(&p);
    let children = p.a.ep.child_sas(h);
    restart_b(&mut p, config("@b.test"));
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.collect();
    p.drive_for(Duration::from_millis(100));
    let answers = invalid_spi_answers(&p);
    assert_eq!(answers.len(), 1, "one answer to the one request");
    let m = &answers[0];
    assert_eq!((m.header.spi_i, m.header.spi_r), (spi_i, spi_r));
    assert_eq!(m.header.exchange_type, ExchangeType::INFORMATIONAL);
    assert!(m.header.flags.is_response());
    assert!(!m.header.flags.is_initiator(), "B was the responder");
    let request_id = p
        .sent
        .iter()
        .rev()
        .find(|(_, d, _)| *d == Dir::AtoB)
        .map(|(_, _, t)| Message::parse(&t.payload).unwrap().header.message_id)
        .unwrap();
    assert_eq!(m.header.message_id, request_id, "Message ID copied");
    // Only a hint: A is still up and keeps retransmitting ...
    assert!(p.a.ep.is_established(h));
    assert_eq!(p.a.ep.child_sas(h), children);
    assert!(closed(&p).is_empty());
    // ... until the liveness check times out.
    p.drive();
    assert_eq!(closed(&p), vec![CloseReason::Timeout]);
    let retransmit = p.a.ep.config().retransmit;
    assert_eq!(invalid_spi_answers(&p).len(), retransmit.max_tries as usize);
    // B never created state for any of it.
    assert!(p.b.ep.sa_handles().is_empty());
}

/// A protected request of A's established IKE SA (its first liveness check).
fn protected_request(p: &mut Pair, h: SaHandle) -> Vec<u8> {
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.collect();
    let req = p.sent.last().unwrap().2.payload.clone();
    p.drive();
    let m = Message::parse(&req).unwrap();
    assert!(m.sk().is_some() && !m.header.flags.is_response());
    req
}

#[test]
fn invalid_ike_spi_answers_are_rate_limited() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 51);
    let h = up(&mut p);
    let req = protected_request(&mut p, h);
    let c = config("@c.test");
    let limit = c.invalid_ike_spi_per_second;
    assert!(limit > 0, "on by default");
    let mut ep = IkeEndpoint::new(Arc::new(c), seeded_provider(52));
    let (l, r) = (p.b.addr(), p.a.addr());
    let answers = |ep: &mut IkeEndpoint| std::iter::from_fn(|| ep.poll_transmit()).count();
    let mut now = p.now;
    for _ in 0..100 {
        ep.handle_datagram(now, l, r, &req);
    }
    assert_eq!(answers(&mut ep), limit as usize);
    now = now + Duration::from_millis(999);
    ep.handle_datagram(now, l, r, &req);
    assert_eq!(answers(&mut ep), 0, "same second");
    now = now + Duration::from_millis(1);
    for _ in 0..100 {
        ep.handle_datagram(now, l, r, &req);
    }
    assert_eq!(answers(&mut ep), limit as usize, "next second");
    assert!(ep.sa_handles().is_empty());
    assert!(ep.poll_event().is_none());
}

#[test]
fn invalid_ike_spi_only_for_protected_requests_and_only_when_enabled() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 53);
    let h = up(&mut p);
    let req = protected_request(&mut p, h);
    let (l, r) = (p.b.addr(), p.a.addr());
    let now = p.now + Duration::from_secs(10);
    let answers = |ep: &mut IkeEndpoint| std::iter::from_fn(|| ep.poll_transmit()).count();

    // Off.
    let mut off = config("@c.test");
    off.invalid_ike_spi_per_second = 0;
    let mut ep = IkeEndpoint::new(Arc::new(off), seeded_provider(54));
    ep.handle_datagram(now, l, r, &req);
    assert_eq!(answers(&mut ep), 0);

    let mut ep = IkeEndpoint::new(Arc::new(config("@c.test")), seeded_provider(55));
    // A response: never answered.
    let mut resp = req.clone();
    resp[19] |= 0x20;
    ep.handle_datagram(now, l, r, &resp);
    assert_eq!(answers(&mut ep), 0, "no answer to a response");
    // An unprotected request: not answered either.
    let (spi_i, spi_r) = established_spis(&p);
    let plain = plain_notify(
        IkeHeaderRepr {
            spi_i,
            spi_r,
            minor_version: 0,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags::new(true, false),
            message_id: 7,
        },
        NotifyType::INITIAL_CONTACT,
        &[],
    );
    ep.handle_datagram(now, l, r, &plain);
    assert_eq!(answers(&mut ep), 0, "no answer to an unprotected request");
    // The protected request itself: answered.
    ep.handle_datagram(now, l, r, &req);
    assert_eq!(answers(&mut ep), 1);
    // On port 4500 with the non-ESP marker, answered with the marker.
    let (l4, r4) = (
        SocketAddr::new(l.ip(), NAT_T_PORT),
        SocketAddr::new(r.ip(), NAT_T_PORT),
    );
    let mut framed = NON_ESP_MARKER.to_vec();
    framed.extend_from_slice(&req);
    ep.handle_datagram(now, l4, r4, &framed);
    let t = ep.poll_transmit().expect("answer on 4500");
    assert_eq!((t.local, t.remote), (l4, r4));
    assert_eq!(t.payload[..4], NON_ESP_MARKER);
    assert!(Message::parse(&t.payload[4..]).is_ok());
}

/// An unprotected INVALID_IKE_SPI response for A's IKE SA, as a forger would send it.
fn forged_invalid_spi(spi_i: IkeSpi, spi_r: IkeSpi, message_id: u32) -> Vec<u8> {
    plain_notify(
        IkeHeaderRepr {
            spi_i,
            spi_r,
            minor_version: 0,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags::new(false, true),
            message_id,
        },
        NotifyType::INVALID_IKE_SPI,
        &[],
    )
}

#[test]
fn unprotected_invalid_ike_spi_is_only_a_hint_for_a_liveness_check() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 56);
    let h = up(&mut p);
    let (spi_i, spi_r) = established_spis(&p);
    let children = p.a.ep.child_sas(h);
    let a_events = p.a.events.len();
    let requests = |p: &Pair| p.sent.iter().filter(|(_, d, _)| *d == Dir::AtoB).count();
    let before = requests(&p);
    let (a, b) = (p.a.addr(), p.b.addr());
    for id in [0, 1, 5, u32::MAX] {
        let forged = forged_invalid_spi(spi_i, spi_r, id);
        p.a.ep.handle_datagram(p.now, a, b, &forged);
    }
    p.collect();
    // One liveness check, however many hints.
    assert_eq!(requests(&p), before + 1);
    p.drive();
    assert!(p.a.ep.is_established(h));
    assert_eq!(p.a.ep.child_sas(h), children);
    let new: Vec<_> = p.a.events[a_events..].iter().map(|(_, e)| e).collect();
    assert!(
        matches!(&new[..], [Event::LivenessOk]),
        "only the liveness check's result: {new:?}"
    );
    // With a request in flight the hint adds nothing: that request is the check.
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.collect();
    let before = requests(&p);
    let forged = forged_invalid_spi(spi_i, spi_r, 2);
    p.a.ep.handle_datagram(p.now, a, b, &forged);
    p.collect();
    assert_eq!(requests(&p), before);
    p.drive();
    assert_eq!(p.a.count(|e| matches!(e, Event::LivenessOk)), 2);
    assert!(closed(&p).is_empty());
}

#[test]
fn invalid_ike_spi_during_the_handshake_changes_nothing() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 57);
    let h = p.connect();
    // A's IKE_AUTH is on its way (sent at 20 ms), B waits for it: both are half open.
    p.drive_for(Duration::from_millis(25));
    let init_resp = p
        .sent
        .iter()
        .find(|(_, d, _)| *d == Dir::BtoA)
        .map(|(_, _, t)| Message::parse(&t.payload).unwrap().header)
        .unwrap();
    let (spi_i, spi_r) = (init_resp.spi_i, init_resp.spi_r);
    let (a, b) = (p.a.addr(), p.b.addr());
    // To A (waiting for the IKE_AUTH response, Message ID 1).
    let forged = forged_invalid_spi(spi_i, spi_r, 1);
    p.a.ep.handle_datagram(p.now, a, b, &forged);
    // To B (waiting for IKE_AUTH), as if from A.
    let mut to_b = forged.clone();
    to_b[19] = Flags::new(true, true).0;
    p.b.ep.handle_datagram(p.now, b, a, &to_b);
    p.collect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert!(closed(&p).is_empty());
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        1
    );
}
