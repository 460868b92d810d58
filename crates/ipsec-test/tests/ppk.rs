//! Post-quantum preshared keys (RFC 8784): USE_PPK, PPK_IDENTITY, NO_PPK_AUTH, and the
//! PPK mixed into SK_d, SK_pi and SK_pr; required or optional per side.

use ipsec_ike::{AuthFailure, CloseReason, Config, Event, PeerIncompatible, Ppk};
use ipsec_test::{assert_mirrored, config, Pair};

fn with_ppk(mut c: Config, id: &str, key: &str, required: bool) -> Config {
    c.ppk = Some(Ppk::new(
        id.as_bytes().to_vec(),
        key.as_bytes().to_vec(),
        required,
    ));
    c
}

fn run(a: Config, b: Config, seed: u64) -> (Pair, bool) {
    let mut p = Pair::new(a, b, seed);
    let h = p.connect();
    p.drive();
    let up = p.a.ep.is_established(h);
    (p, up)
}

/// The inbound ESP key of the first Child SA A installed.
fn a_child_key(p: &Pair) -> Vec<u8> {
    p.a.installed()[0].1.inbound_keys.encr().to_vec()
}

#[test]
fn both_with_the_ppk_mix_it_into_the_keys() {
    let a = with_ppk(
        config("@a.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        true,
    );
    let b = with_ppk(
        config("@b.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        true,
    );
    let (p, up) = run(a, b, 1);
    assert!(up, "{:?}\n{:?}", p.a.events, p.b.events);
    let (ia, ib) = (p.a.installed(), p.b.installed());
    assert_mirrored(ia[0].1, ib[0].1);
    // The same handshake (same seeds) without a PPK derives other Child SA keys: the
    // PPK went into SK_d.
    let (q, up) = run(config("@a.test"), config("@b.test"), 1);
    assert!(up);
    assert_ne!(a_child_key(&p), a_child_key(&q));
}

#[test]
fn different_ppks_under_one_id_fail_authentication() {
    let a = with_ppk(config("@a.test"), "ppk-1", "one key for the ppk 0123", true);
    let b = with_ppk(config("@b.test"), "ppk-1", "another key for the ppk", true);
    let (p, up) = run(a, b, 2);
    assert!(!up);
    assert!(matches!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::WrongSharedKey
        ))
    ));
}

#[test]
fn optional_ppk_falls_back_to_no_ppk_auth() {
    // The initiator has an optional PPK, the responder none: NO_PPK_AUTH carries it.
    let a = with_ppk(
        config("@a.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        false,
    );
    let (p, up) = run(a, config("@b.test"), 3);
    assert!(up, "{:?}\n{:?}", p.a.events, p.b.events);
    let (ia, ib) = (p.a.installed(), p.b.installed());
    assert_mirrored(ia[0].1, ib[0].1);
    // Likewise when the responder has an optional PPK of another id.
    let a = with_ppk(
        config("@a.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        false,
    );
    let b = with_ppk(
        config("@b.test"),
        "ppk-2",
        "another-quantum-ppk-987654",
        false,
    );
    let (p, up) = run(a, b, 4);
    assert!(up, "{:?}\n{:?}", p.a.events, p.b.events);
    assert_mirrored(p.a.installed()[0].1, p.b.installed()[0].1);
}

#[test]
fn a_required_ppk_fails_clearly_without_one() {
    // Initiator requires it, the responder has none: the responder never sends
    // USE_PPK, and the initiator refuses before IKE_AUTH.
    let a = with_ppk(
        config("@a.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        true,
    );
    let (p, up) = run(a, config("@b.test"), 5);
    assert!(!up);
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::from_error(ipsec_ike::Error::PeerIncompatible(
            PeerIncompatible::PpkRequired
        )))
    );
    // Responder requires it, the initiator has none: AUTHENTICATION_FAILED.
    let b = with_ppk(
        config("@b.test"),
        "ppk-1",
        "post-quantum-ppk-0123456789",
        true,
    );
    let (p, up) = run(config("@a.test"), b, 6);
    assert!(!up);
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::from_error(ipsec_ike::Error::PeerIncompatible(
            PeerIncompatible::PpkRequired
        )))
    );
    assert!(p
        .a
        .find(|e| matches!(e, Event::IkeSaClosed { .. }))
        .is_some());
}

#[test]
fn ppk_after_additional_key_exchanges_and_across_rekeys() {
    let hybrid = "aes256gcm16-prfsha384-x25519-ke1_ecp256";
    let mk = |id: &str| {
        with_ppk(
            config(id).with_ike_proposals(hybrid).unwrap(),
            "ppk-1",
            "post-quantum-ppk-0123456789",
            true,
        )
    };
    let (mut p, up) = run(mk("@a.test"), mk("@b.test"), 7);
    assert!(up, "{:?}\n{:?}", p.a.events, p.b.events);
    let h = p.a.ep.sa_handles()[0];
    // SK_d' keys every later SA: a rekeyed IKE SA and a new Child SA work.
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    let (ia, ib) = (p.a.installed(), p.b.installed());
    assert_eq!(ia.len(), 2);
    for (x, y) in ia.iter().zip(&ib) {
        assert_mirrored(x.1, y.1);
    }
}
