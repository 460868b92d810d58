//! IKE_AUTH with digital signatures (RFC 7427 method 14) under configured public
//! keys, and the SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4, RFC 8420);
//! the AUTH data of the older methods 1 (RSA_SIG, RFC 7296 §3.8), 9 and 10
//! (RFC 4754).

use std::sync::Arc;

use ipsec_crypto::{CryptoError, SecureRandom, SignatureScheme, Signer};
use ipsec_ike::{
    sigauth, AuthFailure, CloseReason, Config, Error, Event, LocalAuth, PeerIncompatible,
};
use ipsec_test::{config, handshake, hex, seeded_provider, Dir, Pair};
use proptest::prelude::*;

/// PKCS#8 and SPKI of the test keys in crates/ipsec-crypto/vectors/signatures.json.
const P256_PKCS8: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721a1440342000460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d0301070342000460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const P384_PKCS8: &str = "3081b6020100301006072a8648ce3d020106052b8104002204819e30819b02010104306b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5a16403620004ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720";
const P384_SPKI: &str = "3076301006072a8648ce3d020106052b8104002203620004ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720";
const ED1_PKCS8: &str = "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const ED1_SPKI: &str =
    "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const ED2_PKCS8: &str = "302e020100300506032b657004220420c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7";
const ED2_SPKI: &str =
    "302a300506032b6570032100fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025";

fn signer(scheme: SignatureScheme, pkcs8: &str) -> Arc<dyn Signer> {
    let provider = seeded_provider(99);
    let alg = provider.signing_algorithm(scheme).unwrap();
    Arc::from(alg.new_signer(&hex(pkcs8), provider.secure_random).unwrap())
}

/// A signs with `a_key` and B verifies it with `a_spki`; B signs with `b_key` and A
/// verifies it with `b_spki`.
fn signing_pair(
    a_key: (SignatureScheme, &str),
    a_spki: &str,
    b_key: (SignatureScheme, &str),
    b_spki: &str,
) -> (Config, Config) {
    let a = config("@a.test")
        .with_signer(signer(a_key.0, a_key.1))
        .with_peer_public_key(hex(b_spki));
    let b = config("@b.test")
        .with_signer(signer(b_key.0, b_key.1))
        .with_peer_public_key(hex(a_spki));
    (a, b)
}

fn assert_established(p: &Pair, h: ipsec_ike::SaHandle) {
    assert!(p.a.ep.is_established(h), "a: {:?}", p.a.events);
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        1,
        "b: {:?}",
        p.b.events
    );
    assert_eq!(p.a.installed().len(), 1);
    assert_eq!(p.b.installed().len(), 1);
}

/// The AUTH method octets are inside SK: check the announcement in IKE_SA_INIT.
fn init_announces_hashes(p: &Pair, dir: Dir) -> bool {
    let want = [0u8, 2, 0, 3, 0, 4, 0, 5];
    p.sent
        .iter()
        .filter(|(_, d, _)| *d == dir)
        .take(1)
        .any(|(_, _, t)| t.payload.windows(want.len()).any(|w| w == want))
}

#[test]
fn ecdsa_p256_both_sides() {
    let k = (SignatureScheme::EcdsaP256Sha256, P256_PKCS8);
    let (a, b) = signing_pair(k, P256_SPKI, k, P256_SPKI);
    let (p, h) = handshake(a, b, 3);
    assert_established(&p, h);
    assert!(init_announces_hashes(&p, Dir::AtoB));
    assert!(init_announces_hashes(&p, Dir::BtoA));
}

#[test]
fn ed25519_both_sides() {
    let (a, b) = signing_pair(
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED1_SPKI,
        (SignatureScheme::Ed25519, ED2_PKCS8),
        ED2_SPKI,
    );
    let (p, h) = handshake(a, b, 3);
    assert_established(&p, h);
}

#[test]
fn ecdsa_p384_initiator_ed25519_responder() {
    let (a, b) = signing_pair(
        (SignatureScheme::EcdsaP384Sha384, P384_PKCS8),
        P384_SPKI,
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED1_SPKI,
    );
    let (p, h) = handshake(a, b, 3);
    assert_established(&p, h);
}

#[test]
fn ecdsa_initiator_ed25519_responder() {
    let (a, b) = signing_pair(
        (SignatureScheme::EcdsaP256Sha256, P256_PKCS8),
        P256_SPKI,
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED1_SPKI,
    );
    let (p, h) = handshake(a, b, 3);
    assert_established(&p, h);
}

#[test]
fn signature_one_way_psk_the_other() {
    // A signs, B proves the PSK.
    let a = config("@a.test").with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8));
    let b = config("@b.test").with_peer_public_key(hex(ED1_SPKI));
    let (p, h) = handshake(a, b, 3);
    assert_established(&p, h);
}

#[test]
fn psk_unchanged_and_does_not_announce() {
    let (p, h) = handshake(config("@a.test"), config("@b.test"), 3);
    assert_established(&p, h);
    assert!(!init_announces_hashes(&p, Dir::AtoB));
    assert!(!init_announces_hashes(&p, Dir::BtoA));
}

#[test]
fn responder_refuses_wrong_initiator_key() {
    let (a, b) = signing_pair(
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED2_SPKI, // B trusts the wrong key for A
        (SignatureScheme::Ed25519, ED2_PKCS8),
        ED2_SPKI,
    );
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::RejectedByPeer
        ))
    );
    assert_eq!(p.b.installed().len(), 0);
}

#[test]
fn initiator_refuses_wrong_responder_key() {
    let (a, b) = signing_pair(
        (SignatureScheme::EcdsaP256Sha256, P256_PKCS8),
        P256_SPKI,
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED2_SPKI, // A trusts the wrong key for B
    );
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
    assert_eq!(p.a.installed().len(), 0);
}

#[test]
fn ecdsa_key_of_the_wrong_curve_is_refused() {
    // B signs with P-384 but A expects a P-256 key.
    let (a, b) = signing_pair(
        (SignatureScheme::Ed25519, ED1_PKCS8),
        ED1_SPKI,
        (SignatureScheme::EcdsaP384Sha384, P384_PKCS8),
        P256_SPKI,
    );
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
}

#[test]
fn psk_peer_cannot_switch_to_signatures() {
    // B expects A's PSK; A signs instead (and B announced nothing, so A must not
    // even try): refused either way.
    let a = config("@a.test").with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8));
    let mut b = config("@b.test").with_signer(signer(SignatureScheme::Ed25519, ED2_PKCS8));
    b.peer_auth = ipsec_ike::PeerAuth::Psk;
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::MethodNotAllowed(ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE)
        ))
    );
}

#[test]
fn signature_peer_cannot_switch_to_psk() {
    let a = config("@a.test");
    let b = config("@b.test").with_peer_public_key(hex(ED1_SPKI));
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::MethodNotAllowed(ipsec_ike_wire::AuthMethod::SHARED_KEY_MIC)
        ))
    );
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::RejectedByPeer
        ))
    );
}

#[test]
fn initiator_does_not_sign_without_the_peers_announcement() {
    // B is a plain PSK responder: no SIGNATURE_HASH_ALGORITHMS in its IKE_SA_INIT.
    let a = config("@a.test").with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8));
    let (p, h) = handshake(a, config("@b.test"), 3);
    assert!(!p.a.ep.is_established(h));
    assert!(!init_announces_hashes(&p, Dir::BtoA));
    let want = CloseReason::Error(Error::PeerIncompatible(
        PeerIncompatible::SignatureHashNotAnnounced,
    ));
    assert_eq!(p.a.closed_reason(), Some(want));
    assert!(format!("{want}").contains("SIGNATURE_HASH_ALGORITHMS"));
}

#[test]
fn responder_does_not_sign_without_the_peers_announcement() {
    // A is a plain PSK initiator; B proves itself with a signature A never asked for.
    let b = config("@b.test").with_signer(signer(SignatureScheme::EcdsaP256Sha256, P256_PKCS8));
    let (p, h) = handshake(config("@a.test"), b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::Error(Error::PeerIncompatible(
            PeerIncompatible::SignatureHashNotAnnounced
        )))
    );
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(
            AuthFailure::RejectedByPeer
        ))
    );
}

/// A signer that corrupts its signatures.
#[derive(Debug)]
struct Tampering(Arc<dyn Signer>);

impl Signer for Tampering {
    fn scheme(&self) -> SignatureScheme {
        self.0.scheme()
    }
    fn sign(&self, rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut s = self.0.sign(rng, message)?;
        let n = s.len() / 2;
        s[n] ^= 1;
        Ok(s)
    }
}

/// A signer that claims one scheme (so its AlgorithmIdentifier) and signs with another.
#[derive(Debug)]
struct Mislabelled(Arc<dyn Signer>, SignatureScheme);

impl Signer for Mislabelled {
    fn scheme(&self) -> SignatureScheme {
        self.1
    }
    fn sign(&self, rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.sign(rng, message)
    }
}

#[test]
fn tampered_signature_is_refused() {
    let a = config("@a.test")
        .with_signer(Arc::new(Tampering(signer(
            SignatureScheme::Ed25519,
            ED1_PKCS8,
        ))))
        .with_peer_public_key(hex(ED2_SPKI));
    let b = config("@b.test")
        .with_signer(signer(SignatureScheme::Ed25519, ED2_PKCS8))
        .with_peer_public_key(hex(ED1_SPKI));
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
}

#[test]
fn mislabelled_algorithm_is_refused() {
    // An Ed25519 signature under the ecdsa-with-SHA256 AlgorithmIdentifier.
    let a = config("@a.test")
        .with_signer(Arc::new(Mislabelled(
            signer(SignatureScheme::Ed25519, ED1_PKCS8),
            SignatureScheme::EcdsaP256Sha256,
        )))
        .with_peer_public_key(hex(ED2_SPKI));
    let b = config("@b.test")
        .with_signer(signer(SignatureScheme::Ed25519, ED2_PKCS8))
        .with_peer_public_key(hex(ED1_SPKI));
    let (p, h) = handshake(a, b, 3);
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::BadSignature))
    );
}

#[test]
fn config_validation_and_debug() {
    let c = config("@a.test").with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8));
    assert_eq!(c.validate(), Ok(()));
    let dbg = format!("{c:?}");
    assert!(dbg.contains("Ed25519"), "{dbg}");
    assert!(!dbg.to_lowercase().contains("9d61b19d"), "{dbg}");
    // Signatures both ways: no PSK needed.
    let mut c = Config::default()
        .with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8))
        .with_peer_public_key(hex(ED2_SPKI));
    assert_eq!(c.validate(), Ok(()));
    // Either direction on PSK needs one.
    c.peer_auth = ipsec_ike::PeerAuth::Psk;
    assert_eq!(c.validate().unwrap_err().field, "psk");
    // A scheme without an RFC 7427 AlgorithmIdentifier.
    let fixed = signer(SignatureScheme::EcdsaP256Sha256Fixed, P256_PKCS8);
    let c = config("@a.test").with_signer(fixed);
    assert_eq!(c.validate().unwrap_err().field, "auth");
    // A scheme that is not the signer's.
    let mut c = config("@a.test");
    c.auth = LocalAuth::Signature {
        signer: signer(SignatureScheme::Ed25519, ED1_PKCS8),
        scheme: SignatureScheme::EcdsaP256Sha256,
    };
    assert_eq!(c.validate().unwrap_err().field, "auth");
    let c = config("@a.test").with_peer_public_key(Vec::new());
    assert_eq!(c.validate().unwrap_err().field, "peer_auth");
    // The constructor from DER.
    let la = LocalAuth::signature_from_der(
        seeded_provider(5),
        SignatureScheme::EcdsaP256Sha256,
        &hex(P256_PKCS8),
    )
    .unwrap();
    assert!(matches!(
        la,
        LocalAuth::Signature {
            scheme: SignatureScheme::EcdsaP256Sha256,
            ..
        }
    ));
}

/// The DER AlgorithmIdentifiers of RFC 7427 Appendix A and RFC 8420 §2, as OpenSSL 3.0
/// encodes the same OIDs (`openssl asn1parse -genconf`; checked 2026-12-04). The
/// RSASSA-PSS ones are the AlgorithmIdentifiers of RSA-PSS keys OpenSSL 3.0 made with
/// `openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_pss_keygen_md:sha256
/// -pkeyopt rsa_pss_keygen_mgf1_md:sha256 -pkeyopt rsa_pss_keygen_saltlen:32` (and
/// 384/48, 512/64), read from their SubjectPublicKeyInfo (checked 2026-12-04).
#[test]
fn algorithm_identifiers_are_those_of_rfc_7427_appendix_a() {
    let kat = [
        (
            SignatureScheme::RsaPkcs1Sha256,
            "300d06092a864886f70d01010b0500",
        ),
        (
            SignatureScheme::RsaPkcs1Sha384,
            "300d06092a864886f70d01010c0500",
        ),
        (
            SignatureScheme::RsaPkcs1Sha512,
            "300d06092a864886f70d01010d0500",
        ),
        (SignatureScheme::EcdsaP256Sha256, "300a06082a8648ce3d040302"),
        (SignatureScheme::EcdsaP384Sha384, "300a06082a8648ce3d040303"),
        (SignatureScheme::Ed25519, "300506032b6570"),
        (
            SignatureScheme::RsaPssSha256,
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
        ),
        (
            SignatureScheme::RsaPssSha384,
            "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130",
        ),
        (
            SignatureScheme::RsaPssSha512,
            "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140",
        ),
    ];
    for (s, der) in kat {
        assert_eq!(
            sigauth::algorithm_identifier(s),
            Some(&hex(der)[..]),
            "{s:?}"
        );
        assert_eq!(sigauth::scheme_of(&hex(der)), Some(s));
    }
    assert_eq!(sigauth::hash_algorithm(SignatureScheme::Ed25519), Some(5));
    assert_eq!(
        sigauth::hash_algorithm(SignatureScheme::EcdsaP256Sha256),
        Some(2)
    );
    assert_eq!(
        sigauth::hash_algorithm(SignatureScheme::EcdsaP384Sha384),
        Some(3)
    );
    assert_eq!(
        sigauth::hash_algorithm(SignatureScheme::RsaPkcs1Sha512),
        Some(4)
    );
    assert_eq!(
        sigauth::hash_algorithm(SignatureScheme::RsaPssSha384),
        Some(3)
    );
    // RFC 4055 §2.1: the hash AlgorithmIdentifiers' NULL parameters may be absent.
    assert_eq!(
        sigauth::scheme_of(&hex("303d06092a864886f70d01010a3030a00d300b0609608648016503040201a11a301806092a864886f70d010108300b0609608648016503040201a203020120")),
        Some(SignatureScheme::RsaPssSha256)
    );
    // Another salt length is not a scheme we verify.
    assert_eq!(
        sigauth::scheme_of(&hex("304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020121")),
        None
    );
    assert_eq!(
        sigauth::algorithm_identifier(SignatureScheme::EcdsaP256Sha256Fixed),
        None
    );
}

/// Valid method-14 AUTH data verifies; every single-bit change to its length octet
/// or AlgorithmIdentifier, or to the signature, is refused.
#[test]
fn every_tampered_byte_is_refused() {
    let provider = seeded_provider(8);
    let spki = hex(P256_SPKI);
    let s = signer(SignatureScheme::EcdsaP256Sha256, P256_PKCS8);
    let msg = b"signed octets";
    let sig = s.sign(provider.secure_random, msg).unwrap();
    let data = sigauth::encode(SignatureScheme::EcdsaP256Sha256, &sig).unwrap();
    assert_eq!(
        sigauth::verify(
            provider,
            &spki,
            ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE,
            &data,
            msg
        ),
        Ok(SignatureScheme::EcdsaP256Sha256)
    );
    for i in 0..data.len() {
        for bit in 0..8 {
            let mut d = data.clone();
            d[i] ^= 1 << bit;
            assert!(
                matches!(
                    sigauth::verify(
                        provider,
                        &spki,
                        ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE,
                        &d,
                        msg
                    ),
                    Err(Error::AuthenticationFailed(
                        AuthFailure::BadSignature | AuthFailure::UnsupportedAlgorithm
                    ))
                ),
                "byte {i} bit {bit}"
            );
        }
    }
    assert_eq!(
        sigauth::verify(
            provider,
            &spki,
            ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE,
            &data[..data.len() - 1],
            msg
        ),
        Err(Error::AuthenticationFailed(AuthFailure::BadSignature))
    );
    assert_eq!(
        sigauth::verify(
            provider,
            &spki,
            ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE,
            &[],
            msg
        ),
        Err(Error::AuthenticationFailed(
            AuthFailure::UnsupportedAlgorithm
        ))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary method-14 AUTH data, alone or behind a valid AlgorithmIdentifier,
    /// with any of the test keys: an error, never a panic.
    #[test]
    fn arbitrary_auth_data_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        prefix in 0usize..7,
        key in 0usize..4,
    ) {
        let provider = seeded_provider(9);
        let spki = hex([P256_SPKI, P384_SPKI, ED1_SPKI, "30"][key]);
        let schemes = [
            SignatureScheme::EcdsaP256Sha256,
            SignatureScheme::EcdsaP384Sha384,
            SignatureScheme::Ed25519,
            SignatureScheme::RsaPkcs1Sha256,
            SignatureScheme::RsaPkcs1Sha384,
            SignatureScheme::RsaPkcs1Sha512,
        ];
        let d = match schemes.get(prefix) {
            Some(s) => sigauth::encode(*s, &data).unwrap(),
            None => data,
        };
        let r = sigauth::verify(provider, &spki, ipsec_ike_wire::AuthMethod::DIGITAL_SIGNATURE, &d, b"message");
        prop_assert!(matches!(r, Err(Error::AuthenticationFailed(_))), "{:?}", r);
    }
}

#[test]
fn resolver_chooses_signatures_per_peer() {
    // B's own configuration is PSK only; its resolver gives A's identity a
    // signature configuration (announced in IKE_SA_INIT because a resolver is set).
    let a = config("@a.test")
        .with_signer(signer(SignatureScheme::EcdsaP256Sha256, P256_PKCS8))
        .with_peer_public_key(hex(ED1_SPKI));
    let per_peer = Arc::new(
        config("@b.test")
            .with_signer(signer(SignatureScheme::Ed25519, ED1_PKCS8))
            .with_peer_public_key(hex(P256_SPKI)),
    );
    let mut p = Pair::new(a, config("@b.test"), 4);
    p.b.ep
        .set_resolver(Arc::new(move |h: &ipsec_ike::PeerHello<'_>| {
            (h.peer_id.to_string() == "@a.test").then(|| Arc::clone(&per_peer))
        }));
    let h = p.connect();
    p.drive();
    assert_established(&p, h);
}

/// The RSA-2048 public key of the RSA records of
/// crates/ipsec-crypto/vectors/signatures.json ("RSA-2048 PKCS#1 v1.5 SHA1, OpenSSL").
const RSA2048_SPKI: &str = "30820122300d06092a864886f70d01010105000382010f003082010a0282010100d5b87aee0ba9520b01ca64e2f456dbfd9d99ee124ce9eb4fedcf59e06e90db25f15934a9c59f392f7a6dc097db779484356d02302f281d03edf9af398bc4dbde6c27189d77e899fbc8dada6e4cee89f84d06aa25c3b958abe64cedb435818562bc0477a32ada9d75d3783e57a860a44323a1628ecb31b90762bbac986f28867c8e06be13306c643132e353c007800d0c0f43500a3ebac7e585f810d58a36d600b3f2feac2bdd08b021143eedc7e7634bf845fb11aede91e07c094d0e16057448ad54fdc1de5d41a675aadc86e0f480de65e9e1a7e9175de8487317da452d5583ff708864efdb01eaae932e26a493a92737354979d08f49d1b419d6249a188c1f0203010001";
/// Method-1 (RSA_SIG) AUTH data: RSASSA-PKCS1-v1_5 with SHA-1 over
/// [`METHOD1_OCTETS`] under that key, made with OpenSSL 3.0.19 (the private key
/// written out as RSA2048.pem from the record's PKCS#8, as signatures.py describes):
///
/// ```text
/// printf 'IKEv2 AUTH method 1 (RSA_SIG) signed octets, RFC 7296 section 2.15' > msg
/// openssl dgst -sha1 -sign RSA2048.pem -out sig msg
/// openssl dgst -sha1 -verify <(openssl pkey -in RSA2048.pem -pubout) -signature sig msg
/// ```
const METHOD1_SIG: &str = "b5224de6212c8bd02c00b67192a1d568b1cf0071350a474234cde8346bb9aa9093fcedd517b19cd963f006ff112318ab6eaa4af465b4471e409cf97c75cf12d6126a31c84f3c7cff0c70a59f8d984478e762cb6460509294c42611090407093f5e08a2803edc4cb399a41e7b8f581aaba41ef817778f92a7bd49de6e45e134658fa9418abed05e58b4feb4e4f51d2b05f40756635f1672c3afdf36c82fbc88ec031ba9caed5d2630b603b74de710b8e915a43ac7e62f7de06709b17e791420772b1aea48f3c26d93cd546533736baac190ed5488fefaf7fbe8994f2d772fe9f3881d8055c54dd955d3e4cc92d03e11731fdf650c9b28624c06f69d7c40eed150";
/// What [`METHOD1_SIG`] signs (stands in for the signed octets of RFC 7296 §2.15).
const METHOD1_OCTETS: &[u8] = b"IKEv2 AUTH method 1 (RSA_SIG) signed octets, RFC 7296 section 2.15";

/// Method 1 (RSA_SIG, RFC 7296 §3.8) verifies an OpenSSL-made RSASSA-PKCS1-v1_5 SHA-1
/// signature as `RsaPkcs1Sha1`, and refuses it changed, over other octets, under
/// another key, or labelled as another method.
#[test]
fn method_1_verifies_an_openssl_rsa_sha1_signature() {
    use ipsec_ike_wire::AuthMethod;
    let provider = seeded_provider(11);
    let spki = hex(RSA2048_SPKI);
    let sig = hex(METHOD1_SIG);
    assert_eq!(
        sigauth::verify(provider, &spki, AuthMethod::RSA_SIG, &sig, METHOD1_OCTETS),
        Ok(SignatureScheme::RsaPkcs1Sha1)
    );
    let bad = Err(Error::AuthenticationFailed(AuthFailure::BadSignature));
    for i in [0, 100, sig.len() - 1] {
        let mut s = sig.clone();
        s[i] ^= 0x80;
        assert_eq!(
            sigauth::verify(provider, &spki, AuthMethod::RSA_SIG, &s, METHOD1_OCTETS),
            bad,
            "byte {i}"
        );
    }
    assert_eq!(
        sigauth::verify(provider, &spki, AuthMethod::RSA_SIG, &sig, b"other octets"),
        bad
    );
    assert_eq!(
        sigauth::verify(
            provider,
            &spki,
            AuthMethod::RSA_SIG,
            &sig[1..],
            METHOD1_OCTETS
        ),
        bad
    );
    // An ECDSA key cannot check an RSA signature.
    assert_eq!(
        sigauth::verify(
            provider,
            &hex(P256_SPKI),
            AuthMethod::RSA_SIG,
            &sig,
            METHOD1_OCTETS
        ),
        bad
    );
    // The same bytes are not method-14 data, nor r ‖ s.
    assert!(sigauth::verify(
        provider,
        &spki,
        AuthMethod::DIGITAL_SIGNATURE,
        &sig,
        METHOD1_OCTETS
    )
    .is_err());
    assert_eq!(
        sigauth::verify(
            provider,
            &spki,
            AuthMethod::ECDSA_SHA256_P256,
            &sig,
            METHOD1_OCTETS
        ),
        bad
    );
    // Verification only: there is no signer for SHA-1, and no AlgorithmIdentifier.
    assert!(provider
        .signing_algorithm(SignatureScheme::RsaPkcs1Sha1)
        .is_none());
    assert_eq!(
        sigauth::algorithm_identifier(SignatureScheme::RsaPkcs1Sha1),
        None
    );
}

/// Methods 9 and 10 (RFC 4754) verify `r ‖ s` signatures made by the
/// `EcdsaP256Sha256Fixed` and `EcdsaP384Sha384Fixed` signers, and refuse DER
/// signatures, the other curve's key and the other method; method 11 (P-521) is not
/// supported.
#[test]
fn methods_9_and_10_verify_fixed_ecdsa_and_11_is_unsupported() {
    use ipsec_ike_wire::AuthMethod;
    let provider = seeded_provider(12);
    let msg = b"signed octets";
    let bad = Err(Error::AuthenticationFailed(AuthFailure::BadSignature));
    for (method, other, fixed, der, pkcs8, spki, other_spki, len) in [
        (
            AuthMethod::ECDSA_SHA256_P256,
            AuthMethod::ECDSA_SHA384_P384,
            SignatureScheme::EcdsaP256Sha256Fixed,
            SignatureScheme::EcdsaP256Sha256,
            P256_PKCS8,
            P256_SPKI,
            P384_SPKI,
            64,
        ),
        (
            AuthMethod::ECDSA_SHA384_P384,
            AuthMethod::ECDSA_SHA256_P256,
            SignatureScheme::EcdsaP384Sha384Fixed,
            SignatureScheme::EcdsaP384Sha384,
            P384_PKCS8,
            P384_SPKI,
            P256_SPKI,
            96,
        ),
    ] {
        let spki = hex(spki);
        let sig = signer(fixed, pkcs8)
            .sign(provider.secure_random, msg)
            .unwrap();
        assert_eq!(sig.len(), len, "{method:?}");
        assert_eq!(
            sigauth::verify(provider, &spki, method, &sig, msg),
            Ok(fixed),
            "{method:?}"
        );
        let mut changed = sig.clone();
        changed[len / 2] ^= 1;
        assert_eq!(
            sigauth::verify(provider, &spki, method, &changed, msg),
            bad,
            "{method:?}"
        );
        assert_eq!(
            sigauth::verify(provider, &spki, method, &sig, b"other"),
            bad,
            "{method:?}"
        );
        let der_sig = signer(der, pkcs8)
            .sign(provider.secure_random, msg)
            .unwrap();
        assert_eq!(
            sigauth::verify(provider, &spki, method, &der_sig, msg),
            bad,
            "{method:?}: a DER signature"
        );
        assert_eq!(
            sigauth::verify(provider, &hex(other_spki), method, &sig, msg),
            bad,
            "{method:?}: the other curve's key"
        );
        assert!(
            sigauth::verify(provider, &spki, other, &sig, msg).is_err(),
            "{method:?} signature taken as {other:?}"
        );
        assert_eq!(
            sigauth::verify(provider, &spki, AuthMethod::ECDSA_SHA512_P521, &sig, msg),
            Err(Error::AuthenticationFailed(
                AuthFailure::UnsupportedAlgorithm
            )),
            "{method:?} signature as method 11"
        );
    }
}
