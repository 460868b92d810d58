//! IKE_AUTH with X.509 certificates end to end (RFC 7296 §3.6, §3.7; RFC 4945):
//! both endpoints send their chain in CERT payloads and check the peer's through
//! `ipsec_pki::CertVerifier`; each refusal ends with the verifier's reason on the
//! verifying side and AUTHENTICATION_FAILED on the other.

#[path = "../../ipsec-pki/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Alg, Issued, Spec, NOW};
use ipsec_ike::{
    AuthFailure, CertRejection, CloseReason, Config, Event, Identity, PeerHello, SaHandle,
};
use ipsec_pki::{local_auth, CertVerifier, FixedClock};
use ipsec_test::{config, handshake, seeded_provider, Pair, Side};

/// One CA hierarchy: root → intermediate, and end entities issued under it.
struct Pki {
    root: Issued,
    inter: Issued,
}

impl Pki {
    fn new() -> Pki {
        Pki::named("ipsec-rs")
    }

    /// A hierarchy with CAs named "`org` Root CA" and "`org` Intermediate CA".
    fn named(org: &str) -> Pki {
        let root = common::root(&format!("{org} Root CA"), Alg::P256);
        let inter = common::intermediate(&format!("{org} Intermediate CA"), Alg::P384, &root);
        Pki { root, inter }
    }

    fn issue(&self, spec: Spec, alg: Alg) -> Issued {
        common::ee(spec, alg, &self.inter)
    }

    fn verifier(&self) -> CertVerifier {
        CertVerifier::new(vec![self.root.der.clone()])
            .unwrap()
            .with_clock(Arc::new(FixedClock(NOW)))
    }
}

/// A configuration that authenticates as `id` with `me`'s key and chain (RSA keys
/// sign with RSASSA-PSS) and checks the peer with `verifier`.
fn cert_config(id: &str, me: &Issued, pki: &Pki, verifier: CertVerifier) -> Config {
    let key = me.private_key();
    let rsa = matches!(key.kind(), ipsec_pki::KeyKind::Rsa { .. });
    // The RustCrypto backend of the harness does not sign with RSA: ring does.
    let provider = if rsa {
        &ipsec_crypto_ring::PROVIDER
    } else {
        seeded_provider(31)
    };
    let mut c = config(id)
        .with_local_certs(vec![me.der.clone(), pki.inter.der.clone()])
        .with_peer_certificates(Arc::new(verifier));
    c.auth = local_auth(provider, &key, true).unwrap();
    c
}

fn established_peer(side: &Side) -> Option<Identity> {
    side.events.iter().find_map(|(_, e)| match e {
        Event::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
        _ => None,
    })
}

fn assert_established(p: &Pair, h: SaHandle) {
    assert!(
        p.a.ep.is_established(h),
        "a: {:?} b: {:?}",
        p.a.closed_reason(),
        p.b.closed_reason()
    );
    assert!(
        established_peer(&p.b).is_some(),
        "b: {:?}",
        p.b.closed_reason()
    );
    assert_eq!(p.a.installed().len(), 1);
    assert_eq!(p.b.installed().len(), 1);
}

/// The responder refused the initiator's certificate for `reason`.
fn assert_responder_refused(p: &Pair, h: SaHandle, reason: AuthFailure) {
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(reason))
    );
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::RejectedByPeer
        ))
    );
    assert_eq!(p.b.installed().len(), 0);
    assert_eq!(established_peer(&p.b), None);
}

fn cert(reason: CertRejection) -> AuthFailure {
    AuthFailure::Certificate(reason)
}

/// Moon (initiator) and sun (responder) under one PKI, with key types `a` and `b`.
fn pair_with(pki: &Pki, moon: &Issued, sun: &Issued, moon_id: &str) -> (Config, Config) {
    let a = cert_config(moon_id, moon, pki, pki.verifier());
    let b = cert_config("sun.example", sun, pki, pki.verifier());
    (a, b)
}

#[test]
fn ecdsa_p256_both_sides() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    let (a, b) = pair_with(&pki, &moon, &sun, "moon.example");
    let (p, h) = handshake(a, b, 5);
    assert_established(&p, h);
    assert_eq!(
        established_peer(&p.b),
        Some(Identity::Fqdn("moon.example".into()))
    );
}

#[test]
fn rsa_pss_initiator_ed25519_responder() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::Rsa);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::Ed25519);
    let (a, b) = pair_with(&pki, &moon, &sun, "moon.example");
    let (p, h) = handshake(a, b, 5);
    assert_established(&p, h);
}

#[test]
fn dn_identity_from_the_certificate() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P384);
    // Both sides write moon's DN as strongSwan would (PrintableStrings), while the
    // certificate's subject has UTF8Strings: the verifier binds them all the same.
    let dn = ipsec_pki::parse_identity("C=CH, O=ipsec-rs, CN=moon.example").unwrap();
    assert_ne!(dn, ipsec_pki::cert_identity(&moon.der).unwrap());
    let mut a = cert_config("moon.example", &moon, &pki, pki.verifier());
    a.local_id = dn.clone();
    let mut b = cert_config("sun.example", &sun, &pki, pki.verifier());
    b.remote_id = Some(dn.clone());
    let (p, h) = handshake(a, b, 5);
    assert_established(&p, h);
    assert_eq!(established_peer(&p.b), Some(dn));
}

#[test]
fn expired_certificate_is_refused() {
    let pki = Pki::new();
    let moon = pki.issue(
        Spec::ee("moon.example").valid((2020, 1, 1), (2025, 1, 1)),
        Alg::P256,
    );
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    let (a, b) = pair_with(&pki, &moon, &sun, "moon.example");
    let (p, h) = handshake(a, b, 5);
    assert_responder_refused(&p, h, cert(CertRejection::Expired));
}

#[test]
fn certificate_of_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::named("Elsewhere");
    let moon = other.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    let a = cert_config("moon.example", &moon, &other, pki.verifier());
    let b = cert_config("sun.example", &sun, &pki, pki.verifier());
    let (p, h) = handshake(a, b, 5);
    assert_responder_refused(&p, h, cert(CertRejection::UnknownIssuer));
}

#[test]
fn identity_not_in_the_certificate_is_refused() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    for id in [
        "venus.example",
        "192.0.2.77",
        "admin@moon.example",
        "C=CH, O=ipsec-rs, CN=venus.example",
    ] {
        let (mut a, b) = pair_with(&pki, &moon, &sun, "moon.example");
        a.local_id = ipsec_pki::parse_identity(id).unwrap();
        let (p, h) = handshake(a, b, 5);
        assert_responder_refused(&p, h, cert(CertRejection::IdMismatch));
    }
}

#[test]
fn revoked_certificate_is_refused() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example").with_serial(777), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    let a = cert_config("moon.example", &moon, &pki, pki.verifier());
    let crl = common::crl(&pki.inter, &[777]);
    let b = cert_config(
        "sun.example",
        &sun,
        &pki,
        pki.verifier().with_crls(vec![crl]).unwrap(),
    );
    let (p, h) = handshake(a, b, 5);
    assert_responder_refused(&p, h, cert(CertRejection::Revoked));
}

#[test]
fn certificate_of_another_key_is_refused() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let impostor = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(Spec::ee("sun.example"), Alg::P256);
    // Moon's valid chain, but AUTH signed with another key.
    let mut a = cert_config("moon.example", &moon, &pki, pki.verifier());
    a.auth = local_auth(seeded_provider(3), &impostor.private_key(), false).unwrap();
    let b = cert_config("sun.example", &sun, &pki, pki.verifier());
    let (p, h) = handshake(a, b, 5);
    assert_responder_refused(&p, h, AuthFailure::BadSignature);
}

#[test]
fn initiator_refuses_the_responders_certificate() {
    let pki = Pki::new();
    let moon = pki.issue(Spec::ee("moon.example"), Alg::P256);
    let sun = pki.issue(
        Spec::ee("sun.example").valid((2027, 1, 1), (2030, 1, 1)),
        Alg::P256,
    );
    let (a, b) = pair_with(&pki, &moon, &sun, "moon.example");
    let (p, h) = handshake(a, b, 5);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(cert(
            CertRejection::NotYetValid
        )))
    );
    assert_eq!(p.a.installed().len(), 0);
}

/// One responder with a resolver: alice authenticates with a PSK, bob with a
/// certificate; the gateway answers each with the method of its configuration.
#[test]
fn one_responder_psk_and_certificate_peers() {
    let pki = Pki::new();
    let gw_cert = pki.issue(Spec::ee("gw.example"), Alg::P256);
    let bob_cert = pki.issue(Spec::ee("bob.example"), Alg::Ed25519);

    let mut gw_alice = Config::new("gw.example".parse().unwrap(), "psk-of-alice-0123456789");
    gw_alice.remote_id = Some("alice.example".parse().unwrap());
    let mut gw_bob = cert_config("gw.example", &gw_cert, &pki, pki.verifier());
    gw_bob.remote_id = Some("bob.example".parse().unwrap());
    let peers: HashMap<Identity, Arc<Config>> = [gw_alice, gw_bob]
        .into_iter()
        .map(|c| (c.remote_id.clone().unwrap(), Arc::new(c)))
        .collect();

    let mut p = Pair::new(config("init.example"), config("gw.example"), 9);
    p.b.ep.set_resolver(Arc::new(move |h: &PeerHello<'_>| {
        peers.get(h.peer_id).cloned()
    }));

    let connect = |p: &mut Pair, c: Config| {
        let (l, r) = (p.a.addr(), p.b.addr());
        let h = p.a.ep.connect_with(p.now, l, r, Arc::new(c)).unwrap();
        p.collect();
        p.drive();
        h
    };
    let alice = Config::new("alice.example".parse().unwrap(), "psk-of-alice-0123456789");
    let h_alice = connect(&mut p, alice);
    assert!(
        p.a.ep.is_established(h_alice),
        "alice: {:?}",
        p.a.closed_reason()
    );
    let bob = cert_config("bob.example", &bob_cert, &pki, pki.verifier());
    let h_bob = connect(&mut p, bob);
    assert!(
        p.a.ep.is_established(h_bob),
        "bob: {:?}",
        p.a.closed_reason()
    );

    // Bob's certificate under alice's name: alice's configuration takes PSKs only.
    let mut mallory = cert_config("bob.example", &bob_cert, &pki, pki.verifier());
    mallory.local_id = "alice.example".parse().unwrap();
    let h = connect(&mut p, mallory);
    assert!(!p.a.ep.is_established(h));
    // A certificate from another CA under bob's name.
    let other = Pki::named("Elsewhere");
    let fake_bob = other.issue(Spec::ee("bob.example"), Alg::P256);
    let h = connect(
        &mut p,
        cert_config("bob.example", &fake_bob, &other, pki.verifier()),
    );
    assert!(!p.a.ep.is_established(h));
    let gw_closed: Vec<CloseReason> =
        p.b.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::IkeSaClosed { reason } => Some(*reason),
                _ => None,
            })
            .collect();
    assert!(
        gw_closed.contains(&CloseReason::AuthenticationFailed(cert(
            CertRejection::UnknownIssuer
        ))),
        "{gw_closed:?}"
    );
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        2,
        "only alice and bob"
    );
}
