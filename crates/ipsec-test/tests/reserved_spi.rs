//! Reserved Child SA SPIs (0..=255, RFC 4303 §2.1, RFC 4302 §2.4) end to end.
//!
//! A peer that really proposes one: the IKE_AUTH or CREATE_CHILD_SA message is
//! opened with the keys `Config::export_ike_keys` hands out, the SPI field of the SA
//! payload is rewritten, and the message is sealed again and delivered. A responder
//! refuses such a Child SA with INVALID_SYNTAX, an initiator with
//! `PeerMisbehaved::BadSpi`; no Child SA with that SPI is installed. Each case also
//! runs with an ordinary SPI written the same way, which must be installed, so the
//! rewriting itself is shown to work.
//!
//! And the other way round: SPIs we allocate are never reserved ones, even from a
//! random source that offers reserved values half the time.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

use ipsec_core::Spi;
use ipsec_crypto::{CryptoError, SecureRandom};
use ipsec_ike::{Config, Error, Event, IkeSaKeys, NotifyType, PeerMisbehaved, Transmit};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, IkePacket, PayloadType, SkKeys};
use ipsec_test::{config, Dir, Pair, SeededRandom, Side};

fn exporting(id: &str) -> Config {
    let mut c = config(id);
    c.export_ike_keys = true;
    c
}

/// The SK protection built from exported keys.
fn sk(k: &IkeSaKeys) -> SkKeys {
    let p = &ipsec_crypto_rustcrypto::PROVIDER;
    match k.integ {
        None => SkKeys::aead(
            p.aead_for(k.encr).unwrap(),
            k.sk_ei.expose(),
            k.sk_er.expose(),
        )
        .unwrap(),
        Some(i) => SkKeys::cipher_integ(
            p.cipher(k.encr.id, k.encr.key_len()).unwrap(),
            p.integ(i.id).unwrap(),
            k.sk_ei.expose(),
            k.sk_ai.expose(),
            k.sk_er.expose(),
            k.sk_ar.expose(),
        )
        .unwrap(),
    }
}

fn header(t: &Transmit) -> IkeHeaderRepr {
    IkeHeaderRepr::parse(&IkePacket::parse(t.payload.as_slice()).unwrap())
}

/// `t` (a protected message, port 500) with the SPI of every proposal of its SA
/// payload set to `spi`, sealed again with `keys`.
fn with_spi(keys: &IkeSaKeys, t: &Transmit, spi: u32) -> Vec<u8> {
    let keys = sk(keys);
    let mut copy = t.payload.clone();
    let opened = keys.open(&mut copy).expect("opens with the exported keys");
    let (hdr, first) = (opened.header, opened.first_inner);
    let mut inner = opened.inner.to_vec();
    let sa = opened
        .payloads()
        .map(Result::unwrap)
        .find(|p| p.payload_type == PayloadType::SA)
        .expect("an SA payload");
    // Proposal substructures (RFC 7296 §3.3.1): last/more, reserved, length (2),
    // number, protocol, SPI size, transform count, SPI.
    let (mut at, end) = (sa.body_offset, sa.body_offset + sa.body.len());
    let mut rewritten = 0;
    while at < end {
        let len = usize::from(u16::from_be_bytes([inner[at + 2], inner[at + 3]]));
        assert_eq!(inner[at + 6], 4, "a 4-byte ESP SPI");
        inner[at + 8..at + 12].copy_from_slice(&spi.to_be_bytes());
        rewritten += 1;
        at += len;
    }
    assert!(rewritten > 0);
    let mut out = Vec::new();
    keys.seal(&hdr, first, &inner, &SeededRandom::new(9), &mut out)
        .unwrap();
    out
}

/// The keys side A exported for its (first) IKE SA.
fn a_keys(p: &Pair) -> &IkeSaKeys {
    p.a.events
        .iter()
        .find_map(|(_, e)| match e {
            Event::IkeSaKeysDerived { keys } => Some(keys),
            _ => None,
        })
        .expect("keys exported")
}

fn installed_outbound(side: &Side) -> Vec<Spi> {
    side.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChildSaInstalled { params, .. } => Some(params.outbound_spi),
            _ => None,
        })
        .collect()
}

fn child_failed(side: &Side) -> Option<Error> {
    side.events.iter().find_map(|(_, e)| match e {
        Event::ChildSaFailed { error, .. } => Some(*error),
        _ => None,
    })
}

/// Holds back the messages `pick` selects (they are lost) and keeps a copy.
fn hold_back(p: &mut Pair, pick: fn(Dir, &IkeHeaderRepr) -> bool) -> Rc<RefCell<Vec<Transmit>>> {
    let held = Rc::new(RefCell::new(Vec::new()));
    let h2 = Rc::clone(&held);
    p.alter = Some(Box::new(move |d, t| {
        if pick(d, &header(t)) {
            h2.borrow_mut().push(t.clone());
            return false;
        }
        true
    }));
    held
}

/// Delivers `bytes` as if `t` had carried them.
fn deliver(p: &mut Pair, dir: Dir, t: &Transmit, bytes: &[u8]) {
    let ep = match dir {
        Dir::AtoB => &mut p.b.ep,
        Dir::BtoA => &mut p.a.ep,
    };
    ep.handle_datagram(p.now, t.remote, t.local, bytes);
    p.collect();
    p.drive();
}

fn auth_request(d: Dir, h: &IkeHeaderRepr) -> bool {
    d == Dir::AtoB && h.exchange_type == ExchangeType::IKE_AUTH && !h.flags.is_response()
}

fn auth_response(d: Dir, h: &IkeHeaderRepr) -> bool {
    d == Dir::BtoA && h.exchange_type == ExchangeType::IKE_AUTH && h.flags.is_response()
}

fn create_child_request(d: Dir, h: &IkeHeaderRepr) -> bool {
    d == Dir::AtoB && h.exchange_type == ExchangeType::CREATE_CHILD_SA && !h.flags.is_response()
}

/// The initiator proposes `spi` for the first Child SA in IKE_AUTH.
fn initiator_proposes_in_ike_auth(spi: u32) -> Pair {
    let mut p = Pair::new(exporting("@a.test"), exporting("@b.test"), 81);
    let held = hold_back(&mut p, auth_request);
    let h = p.connect();
    p.drive_for(ipsec_core::Duration::from_millis(100));
    let t = held
        .borrow()
        .first()
        .cloned()
        .expect("IKE_AUTH request held back");
    let bytes = with_spi(a_keys(&p), &t, spi);
    deliver(&mut p, Dir::AtoB, &t, &bytes);
    // The IKE SA itself is fine either way.
    assert!(p.a.ep.is_established(h));
    assert!(p
        .b
        .find(|e| matches!(e, Event::IkeSaEstablished { .. }))
        .is_some());
    p
}

#[test]
fn responder_refuses_a_reserved_spi_in_ike_auth() {
    for spi in [0, 255] {
        let p = initiator_proposes_in_ike_auth(spi);
        // B answered INVALID_SYNTAX for the Child SA and installed nothing.
        assert!(installed_outbound(&p.b).is_empty(), "spi {spi}");
        assert!(installed_outbound(&p.a).is_empty(), "spi {spi}");
        assert_eq!(
            child_failed(&p.a),
            Some(Error::NotifyReceived(NotifyType::INVALID_SYNTAX)),
            "spi {spi}"
        );
        assert_eq!(
            p.b.ep.stats().child_spis,
            0,
            "spi {spi}: B reserved nothing"
        );
        assert_eq!(
            p.a.ep.stats().child_spis,
            0,
            "spi {spi}: A released its SPI"
        );
    }
    // The same rewrite with an ordinary SPI: installed, with that SPI.
    let p = initiator_proposes_in_ike_auth(0x1234_5678);
    assert_eq!(installed_outbound(&p.b), [Spi(0x1234_5678)]);
}

/// The responder answers with `spi` for the first Child SA in IKE_AUTH.
fn responder_answers_in_ike_auth(spi: u32) -> Pair {
    let mut p = Pair::new(exporting("@a.test"), exporting("@b.test"), 82);
    let held = hold_back(&mut p, auth_response);
    let h = p.connect();
    p.drive_for(ipsec_core::Duration::from_millis(100));
    let t = held
        .borrow()
        .first()
        .cloned()
        .expect("IKE_AUTH response held back");
    let bytes = with_spi(a_keys(&p), &t, spi);
    deliver(&mut p, Dir::BtoA, &t, &bytes);
    assert!(p.a.ep.is_established(h));
    p
}

#[test]
fn initiator_refuses_a_reserved_spi_in_ike_auth() {
    for spi in [0, 255] {
        let p = responder_answers_in_ike_auth(spi);
        assert!(installed_outbound(&p.a).is_empty(), "spi {spi}");
        assert_eq!(
            child_failed(&p.a),
            Some(Error::PeerMisbehaved(PeerMisbehaved::BadSpi)),
            "spi {spi}"
        );
        assert_eq!(
            p.a.ep.stats().child_spis,
            0,
            "spi {spi}: A released its SPI"
        );
    }
    let p = responder_answers_in_ike_auth(0x1234_5678);
    assert_eq!(installed_outbound(&p.a), [Spi(0x1234_5678)]);
}

/// The responder had installed its half of the Child SA the initiator then refused:
/// the initiator deletes it (RFC 7296 §2.9), so nothing is left on either side.
#[test]
fn initiator_deletes_the_half_it_refused() {
    let mut p = responder_answers_in_ike_auth(0);
    p.drive();
    let installed_b = p.b.count(|e| matches!(e, Event::ChildSaInstalled { .. }));
    assert_eq!(installed_b, 1, "B had set up its half");
    assert!(p.b.installed().is_empty());
    let deleted_b = p.b.count(|e| matches!(e, Event::ChildSaDeleted { .. }));
    assert_eq!(deleted_b, 1, "B's half is deleted: {:?}", p.b.events);
    assert_eq!(p.b.ep.stats().child_spis, 0);
    let hb = p.b.ep.sa_handles()[0];
    assert!(p.b.ep.child_sas(hb).is_empty());
    assert!(
        p.a.ep.is_established(p.a.ep.sa_handles()[0]),
        "the IKE SA stays"
    );
}

/// The initiator proposes `spi` for a new Child SA in CREATE_CHILD_SA.
fn initiator_proposes_in_create_child_sa(spi: u32) -> Pair {
    let mut p = Pair::new(exporting("@a.test"), exporting("@b.test"), 83);
    let h = p.connect();
    p.drive();
    assert_eq!(installed_outbound(&p.b).len(), 1);
    let held = hold_back(&mut p, create_child_request);
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.collect();
    let t = held.borrow().first().cloned().expect("request held back");
    let bytes = with_spi(a_keys(&p), &t, spi);
    deliver(&mut p, Dir::AtoB, &t, &bytes);
    p
}

#[test]
fn responder_refuses_a_reserved_spi_in_create_child_sa() {
    for spi in [0, 255] {
        let p = initiator_proposes_in_create_child_sa(spi);
        // Only the first Child SA.
        assert_eq!(installed_outbound(&p.b).len(), 1, "spi {spi}");
        assert!(!installed_outbound(&p.b).contains(&Spi(spi)), "spi {spi}");
        assert_eq!(installed_outbound(&p.a).len(), 1, "spi {spi}");
        assert_eq!(
            child_failed(&p.a),
            Some(Error::NotifyReceived(NotifyType::INVALID_SYNTAX)),
            "spi {spi}"
        );
        assert_eq!(p.a.ep.stats().child_spis, 1, "spi {spi}");
        assert_eq!(p.b.ep.stats().child_spis, 1, "spi {spi}");
    }
    let p = initiator_proposes_in_create_child_sa(0x1234_5678);
    assert_eq!(installed_outbound(&p.b).len(), 2);
    assert!(installed_outbound(&p.b).contains(&Spi(0x1234_5678)));
}

/// A random source that answers every other 4-byte request (an SPI being drawn) with
/// a reserved value 0..=255.
#[derive(Debug)]
struct ReservedHalfTheTime {
    inner: SeededRandom,
    state: Mutex<(bool, u64)>,
}

impl SecureRandom for ReservedHalfTheTime {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        self.inner.fill(dest)?;
        if dest.len() == 4 {
            let mut s = self.state.lock().map_err(|_| CryptoError::Random)?;
            s.0 = !s.0;
            if s.0 {
                dest[..3].fill(0);
                s.1 += 1;
            }
        }
        Ok(())
    }
}

fn reserved_half_the_time(seed: u64) -> &'static ReservedHalfTheTime {
    Box::leak(Box::new(ReservedHalfTheTime {
        inner: SeededRandom::new(seed),
        state: Mutex::new((false, 0)),
    }))
}

#[test]
fn allocated_spis_are_never_reserved() {
    let (ra, rb) = (reserved_half_the_time(84), reserved_half_the_time(85));
    let pa = Box::leak(Box::new(ipsec_crypto_rustcrypto::provider_with_random(ra)));
    let pb = Box::leak(Box::new(ipsec_crypto_rustcrypto::provider_with_random(rb)));
    let mut p = Pair::with_providers(config("@a.test"), config("@b.test"), pa, pb);
    let h = p.connect();
    p.drive();
    p.churn_children(h, 150);
    let mut spis = 0;
    for side in [&p.a, &p.b] {
        assert!(child_failed(side).is_none(), "{:?}", child_failed(side));
        for (_, e) in &side.events {
            if let Event::ChildSaInstalled { params, .. } = e {
                assert!(
                    !params.inbound_spi.is_reserved(),
                    "{:?}",
                    params.inbound_spi
                );
                assert!(
                    !params.outbound_spi.is_reserved(),
                    "{:?}",
                    params.outbound_spi
                );
                spis += 1;
            }
        }
    }
    assert!(spis > 200, "{spis}");
    // The source did offer reserved values, and often.
    let offered = |r: &ReservedHalfTheTime| r.state.lock().unwrap().1;
    assert!(offered(ra) > 50 && offered(rb) > 50);
}
