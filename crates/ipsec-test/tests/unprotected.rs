//! Unprotected error notifications (RFC 7296 §2.21): forged errors in answer to
//! IKE_SA_INIT do not end a handshake, and INVALID_IKE_SPI (§2.21.4) is sent rate
//! limited and taken only as a hint.

use ipsec_core::IkeSpi;
use ipsec_ike::{CloseReason, Event, NotifyType};
use ipsec_ike_wire::{ExchangeType, Flags, IkeHeaderRepr, Message, NotifyRepr, Payload};
use ipsec_test::{config, Dir, Pair};

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
    p.drive_for(ipsec_ike::Duration::from_millis(15));
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
        p.drive_for(retransmit.total() - ipsec_ike::Duration::from_millis(1));
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
