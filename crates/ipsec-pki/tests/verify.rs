//! `CertVerifier` (RFC 7296 §3.6, RFC 4945 §5) on chains made by rcgen at test time
//! and on the strongSwan-made fixtures of tests/fixtures.

mod common;

use std::sync::Arc;

use common::{Alg, Chain, Spec, NOW};
use ipsec_ike::{CertRejection, Identity, Instant, VerifiesPeerCert};
use ipsec_pki::{
    ca_key_hash, cert_identity, dn_identity, parse_certs, parse_crl, CertVerifier, FixedClock,
};
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

fn verify(v: &CertVerifier, certs: &[Vec<u8>], id: &Identity) -> Result<Vec<u8>, CertRejection> {
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    v.verify(&refs, id, Instant::ZERO)
}

fn fqdn(s: &str) -> Identity {
    Identity::Fqdn(s.into())
}

fn spki_of(cert: &[u8]) -> Vec<u8> {
    use x509_cert::der::{Decode, Encode};
    x509_cert::Certificate::from_der(cert)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

#[test]
fn valid_chain_via_intermediate_each_key_type() {
    for alg in [Alg::P256, Alg::P384, Alg::Ed25519, Alg::Rsa] {
        let c = Chain::new("moon.example", alg);
        let spki = verify(&c.verifier(), &c.sent(), &fqdn("moon.example"))
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(spki, spki_of(&c.ee.der), "{alg:?}");
    }
}

#[test]
fn intermediate_known_locally() {
    let c = Chain::new("moon.example", Alg::P256);
    let id = fqdn("moon.example");
    // Without the intermediate there is no path.
    assert_eq!(
        verify(&c.verifier(), std::slice::from_ref(&c.ee.der), &id),
        Err(CertRejection::UnknownIssuer)
    );
    let v = c.verifier().with_intermediates(vec![c.inter.der.clone()]);
    assert!(verify(&v, std::slice::from_ref(&c.ee.der), &id).is_ok());
}

#[test]
fn validity_period() {
    let id = fqdn("moon.example");
    let c = Chain::with(
        Spec::ee("moon.example").valid((2020, 1, 1), (2025, 1, 1)),
        Alg::P256,
    );
    assert_eq!(
        verify(&c.verifier(), &c.sent(), &id),
        Err(CertRejection::Expired)
    );
    let c = Chain::with(
        Spec::ee("moon.example").valid((2027, 1, 1), (2030, 1, 1)),
        Alg::P256,
    );
    assert_eq!(
        verify(&c.verifier(), &c.sent(), &id),
        Err(CertRejection::NotYetValid)
    );
    // The same certificate is valid later: the clock decides.
    let v = c
        .verifier()
        .with_clock(Arc::new(FixedClock(NOW + 2 * 365 * 86_400)));
    assert!(verify(&v, &c.sent(), &id).is_ok());
}

#[test]
fn expired_intermediate() {
    let root = common::root("Root", Alg::P256);
    let mut spec = Spec::ee("Old Intermediate").valid((2020, 1, 1), (2025, 6, 1));
    spec.sans.clear();
    spec.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let inter = common::intermediate_with(spec, Alg::P256, &root);
    let ee = common::ee(Spec::ee("moon.example"), Alg::P256, &inter);
    let v = CertVerifier::new(vec![root.der.clone()])
        .unwrap()
        .with_clock(Arc::new(FixedClock(NOW)));
    assert_eq!(
        verify(
            &v,
            &[ee.der.clone(), inter.der.clone()],
            &fqdn("moon.example")
        ),
        Err(CertRejection::Expired)
    );
}

#[test]
fn wrong_ca_is_unknown_issuer() {
    let c = Chain::new("moon.example", Alg::P256);
    let other = common::root("ipsec-rs Root CA", Alg::P256); // same name, other key
    let v = CertVerifier::new(vec![other.der.clone()])
        .unwrap()
        .with_clock(Arc::new(FixedClock(NOW)));
    let r = verify(&v, &c.sent(), &fqdn("moon.example"));
    assert!(
        matches!(
            r,
            Err(CertRejection::UnknownIssuer | CertRejection::BadChainSignature)
        ),
        "{r:?}"
    );
    let unrelated = common::root("Another CA", Alg::P256);
    let v = CertVerifier::new(vec![unrelated.der.clone()]).unwrap();
    assert_eq!(
        verify(&v, &c.sent(), &fqdn("moon.example")),
        Err(CertRejection::UnknownIssuer)
    );
}

#[test]
fn bad_signature_in_chain() {
    let c = Chain::new("moon.example", Alg::P256);
    let mut ee = c.ee.der.clone();
    // The signature BIT STRING ends the certificate; change its last byte.
    let last = ee.len() - 1;
    ee[last] ^= 0x01;
    assert_eq!(
        verify(
            &c.verifier(),
            &[ee, c.inter.der.clone()],
            &fqdn("moon.example")
        ),
        Err(CertRejection::BadChainSignature)
    );
}

#[test]
fn revoked_by_crl() {
    let id = fqdn("moon.example");
    let c = Chain::with(Spec::ee("moon.example").with_serial(4242), Alg::P256);
    // A CRL of the intermediate revoking the end entity.
    let v = c
        .verifier()
        .with_crls(vec![common::crl(&c.inter, &[4242])])
        .unwrap();
    assert_eq!(verify(&v, &c.sent(), &id), Err(CertRejection::Revoked));
    // A CRL revoking other serials: accepted; and the root has no CRL loaded, which
    // is not an error (UnknownStatusPolicy::Allow).
    let v = c
        .verifier()
        .with_crls(vec![common::crl(&c.inter, &[1, 2, 3])])
        .unwrap();
    assert!(verify(&v, &c.sent(), &id).is_ok());
    // The root's CRL revoking the intermediate (serial 2): the whole chain is checked.
    let v = c
        .verifier()
        .with_crls(vec![common::crl(&c.root, &[2])])
        .unwrap();
    assert_eq!(verify(&v, &c.sent(), &id), Err(CertRejection::Revoked));
}

#[test]
fn identity_binding() {
    let c = Chain::new("moon.example", Alg::P256);
    let v = c.verifier();
    let ok = |id: Identity| assert!(verify(&v, &c.sent(), &id).is_ok(), "{id}");
    let mismatch = |id: Identity| {
        assert_eq!(
            verify(&v, &c.sent(), &id),
            Err(CertRejection::IdMismatch),
            "{id}"
        )
    };
    ok(fqdn("moon.example"));
    ok(fqdn("MOON.Example"));
    ok(Identity::Ipv4("192.0.2.1".parse().unwrap()));
    ok(Identity::Rfc822("admin@moon.example".into()));
    ok(cert_identity(&c.ee.der).unwrap());
    // rcgen writes UTF8String values, dn_identity PrintableString: same DN.
    ok(dn_identity("C=CH, O=ipsec-rs, CN=moon.example").unwrap());
    ok(dn_identity("c=ch,o=IPSEC-RS,cn=moon.example").unwrap());

    mismatch(fqdn("sun.example"));
    mismatch(fqdn("example"));
    mismatch(Identity::Ipv4("192.0.2.2".parse().unwrap()));
    mismatch(Identity::Ipv6("2001:db8::1".parse().unwrap()));
    mismatch(Identity::Rfc822("root@moon.example".into()));
    // Forward order matters: the reversed DN is another name.
    mismatch(dn_identity("CN=moon.example, O=ipsec-rs, C=CH").unwrap());
    mismatch(dn_identity("C=CH, O=ipsec-rs, CN=sun.example").unwrap());
    mismatch(Identity::KeyId(b"moon".to_vec()));
    // A DN identity whose data is no DER Name.
    mismatch(Identity::Other {
        id_type: ipsec_ike_wire::IdType::ID_DER_ASN1_DN,
        data: b"garbage".to_vec(),
    });
}

fn eku_chain(eku: Vec<ExtendedKeyUsagePurpose>) -> Result<Vec<u8>, CertRejection> {
    let mut spec = Spec::ee("moon.example");
    spec.eku = eku;
    let c = Chain::with(spec, Alg::P256);
    verify(&c.verifier(), &c.sent(), &fqdn("moon.example"))
}

#[test]
fn extended_key_usage_profile() {
    use ExtendedKeyUsagePurpose as P;
    let ipsec_ike = P::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]);
    assert!(eku_chain(vec![]).is_ok());
    assert!(eku_chain(vec![ipsec_ike.clone()]).is_ok());
    assert!(eku_chain(vec![P::Any]).is_ok());
    assert!(eku_chain(vec![P::ServerAuth]).is_ok());
    assert!(eku_chain(vec![P::ClientAuth]).is_ok());
    assert!(eku_chain(vec![P::ServerAuth, P::ClientAuth]).is_ok());
    assert!(eku_chain(vec![P::CodeSigning, ipsec_ike]).is_ok());
    assert_eq!(
        eku_chain(vec![P::CodeSigning]),
        Err(CertRejection::KeyUsage)
    );
    assert_eq!(
        eku_chain(vec![P::EmailProtection, P::TimeStamping]),
        Err(CertRejection::KeyUsage)
    );
}

#[test]
fn key_usage_profile() {
    let with_ku = |ku: Vec<KeyUsagePurpose>| {
        let mut spec = Spec::ee("moon.example");
        spec.key_usages = ku;
        let c = Chain::with(spec, Alg::P256);
        verify(&c.verifier(), &c.sent(), &fqdn("moon.example"))
    };
    assert!(with_ku(vec![]).is_ok());
    assert!(with_ku(vec![KeyUsagePurpose::ContentCommitment]).is_ok());
    assert!(with_ku(vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature
    ])
    .is_ok());
    assert_eq!(
        with_ku(vec![KeyUsagePurpose::KeyEncipherment]),
        Err(CertRejection::KeyUsage)
    );
}

#[test]
fn ca_as_end_entity_refused() {
    let c = Chain::new("moon.example", Alg::P256);
    // The intermediate presented as the end entity (it has no SAN; use its DN).
    let id = cert_identity(&c.inter.der).unwrap();
    assert_eq!(
        verify(&c.verifier(), std::slice::from_ref(&c.inter.der), &id),
        Err(CertRejection::KeyUsage)
    );
}

#[test]
fn garbage_is_malformed() {
    let c = Chain::new("moon.example", Alg::P256);
    let v = c.verifier();
    let id = fqdn("moon.example");
    assert_eq!(verify(&v, &[], &id), Err(CertRejection::Malformed));
    assert_eq!(verify(&v, &[vec![]], &id), Err(CertRejection::Malformed));
    assert_eq!(
        verify(&v, &[b"not a certificate".to_vec()], &id),
        Err(CertRejection::Malformed)
    );
    let truncated = c.ee.der[..c.ee.der.len() / 2].to_vec();
    assert_eq!(verify(&v, &[truncated], &id), Err(CertRejection::Malformed));
    // Garbage intermediates do not matter when a path exists without them.
    let mut sent = c.sent();
    sent.push(b"junk".to_vec());
    assert!(verify(&v, &sent, &id).is_ok());
}

#[test]
fn ca_key_hashes_are_the_anchors() {
    let a = common::root("A", Alg::P256);
    let b = common::root("B", Alg::Ed25519);
    let v = CertVerifier::new(vec![a.der.clone(), b.der.clone()]).unwrap();
    assert_eq!(
        v.ca_key_hashes(),
        vec![ca_key_hash(&a.der).unwrap(), ca_key_hash(&b.der).unwrap()]
    );
    assert!(CertVerifier::new(vec![b"junk".to_vec()]).is_err());
    assert!(format!("{v:?}").contains("trust_anchors: 2"));
}

// ---- strongSwan-made fixtures (tests/fixtures/gen.sh): valid 2025 to 2035

const FIXTURE_NOW: u64 = 1_780_000_000; // 2026-05-28

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn strongswan_verifier() -> CertVerifier {
    let ca = parse_certs(&fixture("ca.cert.pem")).unwrap();
    CertVerifier::new(ca)
        .unwrap()
        .with_clock(Arc::new(FixedClock(FIXTURE_NOW)))
}

#[test]
fn strongswan_pki_certificates() {
    let v = strongswan_verifier();
    // moon: `pki --issue --flag serverAuth`, SANs moon.strongswan.org and 192.168.0.1.
    let moon = parse_certs(&fixture("moon-chain.pem")).unwrap();
    for id in [
        fqdn("moon.strongswan.org"),
        Identity::Ipv4("192.168.0.1".parse().unwrap()),
        dn_identity("C=CH, O=strongSwan, CN=moon.strongswan.org").unwrap(),
    ] {
        assert!(verify(&v, &moon, &id).is_ok(), "{id}");
    }
    // sun: an RSA key under the ECDSA CA.
    let sun = parse_certs(&fixture("sun.cert.pem")).unwrap();
    assert!(verify(&v, &sun, &Identity::Rfc822("sun@strongswan.org".into())).is_ok());
    // The CA's CRL (`pki --signcrl`) revokes sun but not moon.
    let crl = parse_crl(&fixture("ca.crl.pem")).unwrap();
    let v = strongswan_verifier().with_crls(vec![crl]).unwrap();
    assert_eq!(
        verify(&v, &sun, &fqdn("sun.strongswan.org")),
        Err(CertRejection::Revoked)
    );
    assert!(verify(&v, &moon, &fqdn("moon.strongswan.org")).is_ok());
}

#[test]
fn trust_and_validity_are_reported_before_the_ike_profile() {
    let id = fqdn("moon.example");
    // Expired and for code signing only: expired first (webpki's order).
    let mut spec = Spec::ee("moon.example").valid((2020, 1, 1), (2025, 1, 1));
    spec.eku = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let c = Chain::with(spec, Alg::P256);
    assert_eq!(
        verify(&c.verifier(), &c.sent(), &id),
        Err(CertRejection::Expired)
    );
    // Untrusted, with a keyUsage that does not allow signatures and another name:
    // the issuer is what is wrong first.
    let mut spec = Spec::ee("moon.example");
    spec.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let c = Chain::with(spec, Alg::P256);
    let v = CertVerifier::new(vec![common::root("Another CA", Alg::P256).der]).unwrap();
    assert_eq!(
        verify(&v, &c.sent(), &fqdn("venus.example")),
        Err(CertRejection::UnknownIssuer)
    );
    // Trusted, keyUsage wrong and another name: the key usage.
    assert_eq!(
        verify(&c.verifier(), &c.sent(), &fqdn("venus.example")),
        Err(CertRejection::KeyUsage)
    );
}

#[test]
fn trust_anchor_validity_is_checked() {
    // A root that expired before NOW (webpki itself ignores an anchor's validity).
    let mut spec = Spec::ee("Old Root");
    spec.sans.clear();
    spec.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let old_root = common::root_with(spec.clone().valid((2015, 1, 1), (2025, 1, 1)), Alg::P256);
    let ee = common::ee(Spec::ee("moon.example"), Alg::P256, &old_root);
    let v = |root: &common::Issued| {
        CertVerifier::new(vec![root.der.clone()])
            .unwrap()
            .with_clock(Arc::new(FixedClock(NOW)))
    };
    assert_eq!(
        verify(
            &v(&old_root),
            std::slice::from_ref(&ee.der),
            &fqdn("moon.example")
        ),
        Err(CertRejection::Expired)
    );
    let future_root = common::root_with(spec.valid((2027, 1, 1), (2035, 1, 1)), Alg::P256);
    let ee = common::ee(Spec::ee("moon.example"), Alg::P256, &future_root);
    assert_eq!(
        verify(
            &v(&future_root),
            std::slice::from_ref(&ee.der),
            &fqdn("moon.example")
        ),
        Err(CertRejection::NotYetValid)
    );
}
