//! The certificate seam of `ipsec-ike` (`VerifiesPeerCert`, `PeerAuth::Certificate`,
//! `Config::local_certs`) without X.509: a verifier that records what it is given
//! and answers with a fixed key or a fixed refusal. The X.509 verifier itself is
//! tested in `certificates.rs` and in the `ipsec-pki` crate.

use std::sync::{Arc, Mutex};

use ipsec_crypto::{SignatureScheme, Signer};
use ipsec_ike::{
    AuthFailure, CertRejection, CloseReason, Event, Identity, Instant, VerifiesPeerCert,
};
use ipsec_test::{config, handshake, hex, seeded_provider, Dir, Pair};

/// The P-256 test key of crates/ipsec-crypto/vectors/signatures.json.
const P256_PKCS8: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721a1440342000460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d0301070342000460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

fn signer() -> Arc<dyn Signer> {
    let provider = seeded_provider(99);
    let alg = provider
        .signing_algorithm(SignatureScheme::EcdsaP256Sha256)
        .unwrap();
    Arc::from(
        alg.new_signer(&hex(P256_PKCS8), provider.secure_random)
            .unwrap(),
    )
}

/// What a [`Recorder`] was asked.
type Calls = Vec<(Vec<Vec<u8>>, Identity, Instant)>;

/// Records each call and answers with `answer`.
struct Recorder {
    calls: Mutex<Calls>,
    answer: Result<Vec<u8>, CertRejection>,
    hashes: Vec<[u8; 20]>,
}

impl VerifiesPeerCert for Recorder {
    fn verify(
        &self,
        certs: &[&[u8]],
        peer_id: &Identity,
        now: Instant,
    ) -> Result<Vec<u8>, CertRejection> {
        self.calls.lock().unwrap().push((
            certs.iter().map(|c| c.to_vec()).collect(),
            peer_id.clone(),
            now,
        ));
        self.answer.clone()
    }

    fn ca_key_hashes(&self) -> Vec<[u8; 20]> {
        self.hashes.clone()
    }
}

fn recorder(answer: Result<Vec<u8>, CertRejection>) -> Arc<Recorder> {
    Arc::new(Recorder {
        calls: Mutex::new(Vec::new()),
        answer,
        hashes: vec![[0xca; 20], [0xfe; 20]],
    })
}

const CHAIN: [&[u8]; 2] = [b"end-entity certificate", b"intermediate certificate"];

/// A signs with the P-256 key and sends `CHAIN`; B checks it through `v`.
fn pair(v: Arc<Recorder>, a_certs: &[&[u8]]) -> (Pair, ipsec_ike::SaHandle) {
    let a = config("@a.test")
        .with_signer(signer())
        .with_local_certs(a_certs.iter().map(|c| c.to_vec()).collect());
    let b = config("@b.test").with_peer_certificates(v);
    handshake(a, b, 5)
}

#[test]
fn verifier_gets_the_chain_and_identity_and_its_key_checks_auth() {
    let v = recorder(Ok(hex(P256_SPKI)));
    let (p, h) = pair(Arc::clone(&v), &CHAIN);
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    assert_eq!(p.b.installed().len(), 1);
    let calls = v.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let (certs, id, _) = &calls[0];
    assert_eq!(certs, &CHAIN.map(<[u8]>::to_vec).to_vec(), "order kept");
    assert_eq!(id, &"@a.test".parse::<Identity>().unwrap());
    // The responder's IKE_SA_INIT answer asks for certificates under the verifier's
    // CA hashes (RFC 7296 §3.7): encoding 4, then the hashes.
    let mut certreq = vec![4u8];
    certreq.extend([0xca; 20]);
    certreq.extend([0xfe; 20]);
    let init_resp = &p
        .sent
        .iter()
        .find(|(_, d, _)| *d == Dir::BtoA)
        .unwrap()
        .2
        .payload;
    assert!(init_resp
        .windows(certreq.len())
        .any(|w| w == certreq.as_slice()));
}

#[test]
fn the_verifiers_refusal_is_the_local_reason() {
    for why in [
        CertRejection::Expired,
        CertRejection::UnknownIssuer,
        CertRejection::IdMismatch,
        CertRejection::Revoked,
    ] {
        let (p, h) = pair(recorder(Err(why)), &CHAIN);
        assert!(!p.a.ep.is_established(h));
        assert_eq!(
            p.b.closed_reason(),
            Some(CloseReason::AuthenticationFailed(AuthFailure::Certificate(
                why
            )))
        );
        assert_eq!(
            p.a.closed_reason(),
            Some(CloseReason::AuthenticationFailed(
                AuthFailure::RejectedByPeer
            ))
        );
        assert_eq!(p.b.installed().len(), 0);
    }
}

#[test]
fn a_key_that_did_not_sign_is_a_bad_signature() {
    // The verifier accepts the certificate but its key is another one.
    let other =
        "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let (p, h) = pair(recorder(Ok(hex(other))), &CHAIN);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
}

#[test]
fn no_certificate_is_refused_before_the_verifier() {
    let v = recorder(Ok(hex(P256_SPKI)));
    let (p, h) = pair(Arc::clone(&v), &[]);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::MissingCertificate
        ))
    );
    assert!(v.calls.lock().unwrap().is_empty());
}

#[test]
fn a_psk_from_a_certificate_peer_is_not_allowed() {
    let v = recorder(Ok(hex(P256_SPKI)));
    let a = config("@a.test");
    let b = config("@b.test").with_peer_certificates(Arc::clone(&v) as Arc<dyn VerifiesPeerCert>);
    let mut p = Pair::new(a, b, 6);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::MethodNotAllowed(ipsec_ike_wire::AuthMethod::SHARED_KEY_MIC)
        ))
    );
    assert!(v.calls.lock().unwrap().is_empty());
}

#[test]
fn initiator_asks_for_and_checks_the_responders_certificate() {
    // Roles reversed: B signs and sends its chain, A verifies.
    let v = recorder(Ok(hex(P256_SPKI)));
    let a = config("@a.test").with_peer_certificates(Arc::clone(&v) as Arc<dyn VerifiesPeerCert>);
    let b = config("@b.test")
        .with_signer(signer())
        .with_local_certs(CHAIN.iter().map(|c| c.to_vec()).collect());
    let mut p = Pair::new(a, b, 7);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.a.events);
    let calls = v.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, CHAIN.map(<[u8]>::to_vec).to_vec());
    assert_eq!(calls[0].1, "@b.test".parse::<Identity>().unwrap());
}

#[test]
fn an_initiator_that_refuses_the_responder_tells_it() {
    // A refuses B's certificate: A closes with the reason and sends
    // AUTHENTICATION_FAILED in an INFORMATIONAL (RFC 7296 §2.21.2), which closes the
    // IKE SA that B had already established.
    let v = recorder(Err(CertRejection::Revoked));
    let a = config("@a.test").with_peer_certificates(Arc::clone(&v) as Arc<dyn VerifiesPeerCert>);
    let b = config("@b.test")
        .with_signer(signer())
        .with_local_certs(CHAIN.iter().map(|c| c.to_vec()).collect());
    let mut p = Pair::new(a, b, 8);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::Certificate(
            CertRejection::Revoked
        )))
    );
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        1,
        "B had accepted A"
    );
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::RejectedByPeer
        ))
    );
    assert!(p
        .b
        .ep
        .sa_handles()
        .iter()
        .all(|s| !p.b.ep.is_established(*s)));
}
