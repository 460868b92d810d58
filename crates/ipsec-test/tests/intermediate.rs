//! Additional key exchanges (RFC 9370) in IKE_INTERMEDIATE exchanges (RFC 9242):
//! the handshake, the IntAuth binding, fallback and refusal, and the exchanges under
//! loss, duplication and reordering.

use ipsec_ike::{CloseReason, Event};
use ipsec_ike_wire::ExchangeType;
use ipsec_test::{assert_mirrored, config, Dir, Pair};

const HYBRID: &str = "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke2_ecp384";

fn pair(ike_a: &str, ike_b: &str, seed: u64) -> Pair {
    let mut a = config("@a.test").with_ike_proposals(ike_a).unwrap();
    let mut b = config("@b.test").with_ike_proposals(ike_b).unwrap();
    a.export_ike_keys = true;
    b.export_ike_keys = true;
    Pair::new(a, b, seed)
}

/// The exchange type of an IKE datagram (after a non-ESP marker on port 4500).
fn exchange_of(t: &ipsec_ike::Transmit) -> Option<ExchangeType> {
    let b = t.payload.as_slice();
    let b = if b.len() >= 4 && b[..4] == [0; 4] {
        &b[4..]
    } else {
        b
    };
    b.get(18).map(|x| ExchangeType(*x))
}

fn count_exchanges(p: &Pair, ty: ExchangeType) -> usize {
    p.sent
        .iter()
        .filter(|(_, _, t)| exchange_of(t) == Some(ty))
        .count()
}

fn established_suite(p: &Pair) -> String {
    match p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
        Some(Event::IkeSaEstablished { suite, .. }) => suite.clone(),
        _ => panic!("not established: {:?} / {:?}", p.a.events, p.b.events),
    }
}

#[test]
fn two_additional_key_exchanges_then_auth() {
    let mut p = pair(HYBRID, HYBRID, 1);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(established_suite(&p), HYBRID);
    // One request and one response per additional key exchange.
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_INTERMEDIATE), 4);
    let (a, b) = (p.a.installed(), p.b.installed());
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_mirrored(a[0].1, b[0].1);
    // Each side exported the keys of every stage: IKE_SA_INIT and two more.
    for side in [&p.a, &p.b] {
        assert_eq!(
            side.count(|e| matches!(e, Event::IkeSaKeysDerived { .. })),
            3
        );
    }
}

#[test]
fn responder_without_addke_takes_the_fallback_proposal() {
    let offer = "aes256gcm16-prfsha384-x25519-ke1_ecp256,aes256gcm16-prfsha384-x25519";
    let mut p = pair(offer, "aes256gcm16-prfsha384-x25519", 2);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(established_suite(&p), "aes256gcm16-prfsha384-x25519");
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_INTERMEDIATE), 0);
}

#[test]
fn optional_addke_none() {
    // ke1_none: the responder that wants no additional exchange may leave it out.
    let offer = "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke1_none";
    let mut p = pair(offer, "aes256gcm16-prfsha384-x25519-ke1_none", 3);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_INTERMEDIATE), 0);
    // And the one that wants it gets it.
    let mut p = pair(offer, offer, 4);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_INTERMEDIATE), 2);
}

#[test]
fn required_addke_is_refused_clearly() {
    // The responder insists on ke1_ecp256; an initiator without it gets
    // NO_PROPOSAL_CHOSEN, and so does the reverse.
    let mut p = pair("aes256gcm16-prfsha384-x25519", HYBRID, 5);
    p.connect();
    p.drive();
    assert_eq!(p.a.closed_reason(), Some(CloseReason::NoProposalChosen));
    let mut p = pair(HYBRID, "aes256gcm16-prfsha384-x25519", 6);
    p.connect();
    p.drive();
    assert_eq!(p.a.closed_reason(), Some(CloseReason::NoProposalChosen));
}

#[test]
fn a_damaged_intermediate_response_is_dropped_and_retransmitted() {
    // Flip a bit in the encrypted body of the first IKE_INTERMEDIATE response: the
    // initiator drops it, retransmits, and the responder answers again from its
    // cache, whose request it must authenticate with the keys before the update.
    let mut p = pair(HYBRID, HYBRID, 7);
    let mut flipped = false;
    p.alter = Some(Box::new(move |dir, t| {
        if dir == Dir::BtoA && !flipped && exchange_of(t) == Some(ExchangeType::IKE_INTERMEDIATE) {
            let n = t.payload.len();
            t.payload[n - 20] ^= 1;
            flipped = true;
        }
        true
    }));
    let h = p.connect();
    p.drive();
    // Retransmission recovers from the one damaged datagram.
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
}

#[test]
fn intermediate_under_loss_duplication_and_reordering() {
    let mut ok = 0;
    for seed in 0..12u64 {
        let mut p = pair(HYBRID, HYBRID, 100 + seed);
        p.seed_network(seed * 7 + 1);
        p.loss_percent = 20;
        p.duplicate_percent = 20;
        p.reorder_percent = 30;
        let h = p.connect();
        p.drive();
        if p.a.ep.is_established(h) {
            ok += 1;
            let (a, b) = (p.a.installed(), p.b.installed());
            assert_eq!(b.len(), 1, "seed {seed}: {:?}", p.b.events);
            assert_mirrored(a[0].1, b[0].1);
        } else {
            // Only a timeout may end it: never a key mismatch or an auth failure.
            assert_eq!(
                p.a.closed_reason(),
                Some(CloseReason::Timeout),
                "seed {seed}"
            );
        }
    }
    assert!(ok >= 9, "only {ok} of 12 established");
}

// --- IKE_FOLLOWUP_KE (RFC 9370 §2.2.4) ----------------------------------------------

const ESP_HYBRID: &str = "aes256gcm16-x25519-ke1_ecp256-ke2_ecp384";

fn hybrid_pair(seed: u64) -> (Pair, ipsec_ike::SaHandle, ipsec_ike::SaHandle) {
    let mk = |id: &str| {
        let mut c = config(id)
            .with_ike_proposals(HYBRID)
            .unwrap()
            .with_esp_proposals(ESP_HYBRID)
            .unwrap();
        c.export_ike_keys = true;
        c
    };
    let mut p = Pair::new(mk("@a.test"), mk("@b.test"), seed);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    let bh = p.b.ep.sa_handles()[0];
    (p, h, bh)
}

fn children_mirrored(p: &Pair, n: usize) {
    let (a, b) = (p.a.installed(), p.b.installed());
    assert_eq!(
        (a.len(), b.len()),
        (n, n),
        "{:?}\n{:?}",
        p.a.events,
        p.b.events
    );
    for (x, y) in a.iter().zip(&b) {
        assert_mirrored(x.1, y.1);
    }
}

#[test]
fn child_sa_with_additional_key_exchanges_from_either_side() {
    let (mut p, h, bh) = hybrid_pair(20);
    let before = count_exchanges(&p, ExchangeType::IKE_FOLLOWUP_KE);
    assert_eq!(before, 0, "IKE_AUTH's Child SA has no key exchange");
    // A new Child SA: CREATE_CHILD_SA, then two IKE_FOLLOWUP_KE exchanges.
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    children_mirrored(&p, 2);
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_FOLLOWUP_KE), 4);
    // The new SA's suite names the additional key exchanges.
    let suites: Vec<String> =
        p.a.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ChildSaInstalled { suite, .. } => Some(suite.clone()),
                _ => None,
            })
            .collect();
    assert_eq!(suites.last().map(String::as_str), Some(ESP_HYBRID));
    // Rekeys from both sides.
    let old = p.a.ep.child_sas(h)[0];
    p.a.ep.rekey_child_sa(p.now, h, old).unwrap();
    p.drive();
    children_mirrored(&p, 2);
    let bold = p.b.ep.child_sas(bh)[0];
    p.b.ep.rekey_child_sa(p.now, bh, bold).unwrap();
    p.drive();
    children_mirrored(&p, 2);
    assert_eq!(p.a.count(|e| matches!(e, Event::ChildSaRekeyed { .. })), 2);
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_FOLLOWUP_KE), 12);
}

#[test]
fn ike_sa_rekey_with_additional_key_exchanges_from_either_side() {
    let (mut p, h, bh) = hybrid_pair(21);
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed { .. })), 1);
    assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed { .. })), 1);
    assert_eq!(count_exchanges(&p, ExchangeType::IKE_FOLLOWUP_KE), 4);
    p.b.ep.rekey_ike_sa(p.now, bh).unwrap();
    p.drive();
    assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed { .. })), 2);
    // The rekeyed IKE SA works: a Child SA over it.
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    children_mirrored(&p, 2);
    // Both sides derived the same keys for every IKE SA (the exported sets match).
    let keys = |s: &ipsec_test::Side| -> Vec<Vec<u8>> {
        s.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::IkeSaKeysDerived { keys } => Some(keys.sk_ei.expose().to_vec()),
                _ => None,
            })
            .collect()
    };
    let (ka, kb) = (keys(&p.a), keys(&p.b));
    assert_eq!(ka.len(), 5, "IKE_SA_INIT, two IKE_INTERMEDIATE, two rekeys");
    assert_eq!(ka, kb);
}

#[test]
fn followup_under_loss_duplication_and_reordering() {
    let mut ok = 0;
    for seed in 0..10u64 {
        let (mut p, h, _) = hybrid_pair(300 + seed);
        p.seed_network(seed * 13 + 5);
        p.loss_percent = 20;
        p.duplicate_percent = 20;
        p.reorder_percent = 30;
        let old = p.a.ep.child_sas(h)[0];
        p.a.ep.rekey_child_sa(p.now, h, old).unwrap();
        p.a.ep.rekey_ike_sa(p.now, h).unwrap();
        p.drive();
        if !p.a.ep.is_established(h) {
            continue;
        }
        ok += 1;
        children_mirrored(&p, 1);
    }
    assert!(ok >= 7, "only {ok} of 10 survived");
}
