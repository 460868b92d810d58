//! Any bytes, as certificates, CRLs, keys or identity strings, give an answer and
//! never a panic (docs/style.md §2).

mod common;

use std::sync::{Arc, OnceLock};

use common::{Alg, Chain, NOW};
use ipsec_ike::{Identity, Instant, VerifiesPeerCert};
use ipsec_ike_wire::IdType;
use ipsec_pki::{
    ca_key_hash, cert_identity, dn_identity, issuer, parse_certs, parse_crl, parse_identity,
    parse_private_key, subject, subject_alt_names, CertVerifier, FixedClock,
};
use proptest::prelude::*;

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| Chain::new("moon.example", Alg::P256))
}

fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        ".{0,40}".prop_map(Identity::Fqdn),
        ".{0,40}".prop_map(Identity::Rfc822),
        any::<[u8; 4]>().prop_map(|a| Identity::Ipv4(a.into())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|data| Identity::Other {
            id_type: IdType::ID_DER_ASN1_DN,
            data
        }),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Identity::KeyId),
    ]
}

/// Bytes that are mostly a real certificate with a few bytes changed, or anything.
fn cert_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            0usize..3
        )
            .prop_map(|(edits, which)| {
                let c = chain();
                let mut der = [&c.ee.der, &c.inter.der, &c.root.der][which].clone();
                for (at, b) in edits {
                    let i = at % der.len();
                    der[i] = b;
                }
                der
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_never_panics(
        certs in proptest::collection::vec(cert_bytes(), 0..5),
        keep_real_ee in any::<bool>(),
        id in identity(),
        crl in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let c = chain();
        let mut certs = certs;
        if keep_real_ee {
            certs.insert(0, c.ee.der.clone());
        }
        let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        let v = c.verifier().with_intermediates(certs.clone());
        let _ = v.verify(&refs, &id, Instant::ZERO);
        let _ = CertVerifier::new(certs.clone());
        let _ = c.verifier().with_crls(vec![crl.clone()]);
        let _ = parse_crl(&crl);
        for cert in &certs {
            let _ = subject(cert);
            let _ = issuer(cert);
            let _ = subject_alt_names(cert);
            let _ = cert_identity(cert);
            let _ = ca_key_hash(cert);
            let _ = parse_certs(cert);
            let _ = parse_private_key(cert);
        }
    }

    #[test]
    fn strings_never_panic(s in ".{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = dn_identity(&s);
        let _ = parse_identity(&s);
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(&bytes);
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        let _ = parse_certs(&pem);
        let _ = parse_private_key(&pem);
        let _ = parse_certs(&bytes);
        let _ = parse_private_key(&bytes);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A certificate's subject printed by `subject` (forward order, escaped) parses
    /// back with `dn_identity` to the same name: the verifier binds it.
    #[test]
    fn subject_string_round_trips(values in proptest::collection::vec("[a-zA-Z0-9 ,.\\\"=+-]{1,12}", 1..5)) {
        use rcgen::DnType;
        let types = [DnType::CountryName, DnType::OrganizationName, DnType::OrganizationalUnitName, DnType::CommonName, DnType::LocalityName];
        let mut spec = common::Spec::ee("moon.example");
        spec.dn = values.iter().cloned().zip(types).map(|(v, t)| (t, v)).collect();
        let c = chain();
        let ee = common::ee(spec, Alg::P256, &c.inter);
        let s = subject(&ee.der).unwrap();
        let id = dn_identity(&s).unwrap();
        let refs: Vec<&[u8]> = vec![&ee.der, &c.inter.der];
        prop_assert!(c.verifier().verify(&refs, &id, Instant::ZERO).is_ok(), "{}", s);
    }
}

#[test]
fn fixed_clock_is_used() {
    let c = chain();
    let v = c
        .verifier()
        .with_clock(Arc::new(FixedClock(NOW + 10 * 365 * 86_400)));
    let refs: Vec<&[u8]> = vec![&c.ee.der, &c.inter.der];
    assert_eq!(
        v.verify(&refs, &Identity::Fqdn("moon.example".into()), Instant::ZERO),
        Err(ipsec_ike::CertRejection::Expired)
    );
}
