//! Loading keys, certificates and CRLs as strongSwan's `pki` and OpenSSL write them
//! (fixtures made by tests/fixtures/gen.sh), names and identities, CA key hashes.

mod common;

use std::path::PathBuf;

use ipsec_crypto::SignatureScheme;
use ipsec_ike::{Identity, LocalAuth};
use ipsec_ike_wire::IdType;
use ipsec_pki::{
    ca_key_hash, cert_identity, check_key_matches_cert, dn_identity, identity_string, issuer,
    load_certs, load_crl, load_private_key, local_auth, parse_certs, parse_identity,
    parse_private_key, subject, subject_alt_names, KeyKind, PkiError,
};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn cert(name: &str) -> Vec<u8> {
    let mut certs = load_certs(&path(name)).unwrap();
    certs.remove(0)
}

#[test]
fn key_formats() {
    // `pki --gen --type ecdsa`: SEC1 "EC PRIVATE KEY".
    let k = load_private_key(&path("moon-p256.key.pem")).unwrap();
    assert_eq!(k.kind(), KeyKind::EcdsaP256);
    // `pki --gen --type rsa`: PKCS#1 "RSA PRIVATE KEY".
    let pkcs1 = load_private_key(&path("sun-rsa2048.pkcs1.pem")).unwrap();
    assert_eq!(pkcs1.kind(), KeyKind::Rsa { bits: 2048 });
    // The same key in PKCS#8 PEM, and in DER (`openssl pkey -outform DER` writes
    // PKCS#1 for RSA).
    let pk8 = load_private_key(&path("sun-rsa2048.pk8.pem")).unwrap();
    assert_eq!(pk8.kind(), KeyKind::Rsa { bits: 2048 });
    assert_ne!(pk8.der(), pkcs1.der());
    let der = load_private_key(&path("sun-rsa2048.der")).unwrap();
    assert_eq!(der.der(), pkcs1.der());
    // `pki --gen --type ed25519`: PKCS#8 "PRIVATE KEY".
    let ed = load_private_key(&path("carol-ed25519.key.pem")).unwrap();
    assert_eq!(ed.kind(), KeyKind::Ed25519);
    // `openssl ecparam -genkey`: an EC PARAMETERS block first.
    let p384 = load_private_key(&path("dave-p384.ecparam.pem")).unwrap();
    assert_eq!(p384.kind(), KeyKind::EcdsaP384);
}

#[test]
fn key_debug_shows_kind_only() {
    let k = load_private_key(&path("moon-p256.key.pem")).unwrap();
    let dbg = format!("{k:?}");
    assert_eq!(dbg, "PrivateKey { kind: EcdsaP256, .. }");
}

#[test]
fn key_errors() {
    assert!(matches!(
        load_private_key(&path("does-not-exist.pem")),
        Err(PkiError::Io { .. })
    ));
    assert!(matches!(
        load_private_key(&path("ca.cert.pem")),
        Err(PkiError::NoKey)
    ));
    assert!(matches!(parse_private_key(b"hello"), Err(PkiError::NoKey)));
    assert!(matches!(
        parse_private_key(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
        Err(PkiError::UnsupportedKey(_))
    ));
    assert!(matches!(
        parse_private_key(b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
        Err(PkiError::Pem(_))
    ));
    assert!(matches!(
        parse_private_key(&[0x30, 0x03, 0x02, 0x01, 0x00]),
        Err(PkiError::UnsupportedKey(_))
    ));
}

#[test]
fn local_auth_scheme_from_key() {
    let provider = &ipsec_crypto_ring::PROVIDER;
    let cases = [
        ("moon-p256.key.pem", false, SignatureScheme::EcdsaP256Sha256),
        (
            "dave-p384.ecparam.pem",
            false,
            SignatureScheme::EcdsaP384Sha384,
        ),
        ("carol-ed25519.key.pem", false, SignatureScheme::Ed25519),
        (
            "sun-rsa2048.pkcs1.pem",
            false,
            SignatureScheme::RsaPkcs1Sha256,
        ),
        ("sun-rsa2048.pkcs1.pem", true, SignatureScheme::RsaPssSha256),
        ("sun-rsa2048.pk8.pem", true, SignatureScheme::RsaPssSha256),
    ];
    for (file, pss, want) in cases {
        let key = load_private_key(&path(file)).unwrap();
        match local_auth(provider, &key, pss).unwrap() {
            LocalAuth::Signature { scheme, .. } => assert_eq!(scheme, want, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn key_matches_cert() {
    let moon_key = load_private_key(&path("moon-p256.key.pem")).unwrap();
    let sun_key = load_private_key(&path("sun-rsa2048.pkcs1.pem")).unwrap();
    let moon = cert("moon.cert.pem");
    let sun = cert("sun.cert.pem");
    check_key_matches_cert(&moon_key, &moon).unwrap();
    check_key_matches_cert(&sun_key, &sun).unwrap();
    assert!(matches!(
        check_key_matches_cert(&moon_key, &sun),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        check_key_matches_cert(&sun_key, &moon),
        Err(PkiError::KeyMismatch)
    ));
    let ca_key = load_private_key(&path("ca-p256.key.pem")).unwrap();
    assert!(matches!(
        check_key_matches_cert(&ca_key, &moon),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        check_key_matches_cert(&moon_key, b"junk"),
        Err(PkiError::BadCertificate(_))
    ));
    // SEC1 without its optional public key: derived from the scalar.
    let nopub = load_private_key(&path("moon-p256.nopub.pem")).unwrap();
    assert_eq!(nopub.kind(), KeyKind::EcdsaP256);
    check_key_matches_cert(&nopub, &moon).unwrap();
    assert!(matches!(
        check_key_matches_cert(&nopub, &sun),
        Err(PkiError::KeyMismatch)
    ));
    // `pki --gen --type ed25519` writes PKCS#8 v1 (seed only): derived from the seed.
    let carol_pem = std::fs::read_to_string(path("carol-ed25519.key.pem")).unwrap();
    let carol = rcgen::KeyPair::from_pem(&carol_pem).unwrap();
    let carol_cert = rcgen::CertificateParams::new(vec!["carol.example".into()])
        .unwrap()
        .self_signed(&carol)
        .unwrap();
    let carol_key = load_private_key(&path("carol-ed25519.key.pem")).unwrap();
    check_key_matches_cert(&carol_key, carol_cert.der()).unwrap();
    assert!(matches!(
        check_key_matches_cert(&carol_key, &moon),
        Err(PkiError::KeyMismatch)
    ));
    // rcgen's keys: Ed25519 (PKCS#8 v2) and P-384.
    for alg in [common::Alg::Ed25519, common::Alg::P384] {
        let root = common::root("CA", alg);
        check_key_matches_cert(&root.private_key(), &root.der).unwrap();
    }
}

#[test]
fn cert_chains() {
    let chain = load_certs(&path("moon-chain.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0], cert("moon.cert.pem"));
    assert_eq!(chain[1], cert("ca.cert.pem"));
    // DER in, DER out.
    assert_eq!(parse_certs(&chain[0]).unwrap(), vec![chain[0].clone()]);
    // A key file holds no certificate.
    assert!(matches!(
        load_certs(&path("moon-p256.key.pem")),
        Err(PkiError::NoCertificate)
    ));
    assert!(matches!(parse_certs(b""), Err(PkiError::NoCertificate)));
    assert!(matches!(
        parse_certs(&[0x30, 0x00]),
        Err(PkiError::BadCertificate(_))
    ));
    // Text around the blocks (as `openssl x509 -text` writes) is ignored.
    let mut text = b"Certificate:\n    Data: ...\n".to_vec();
    text.extend(std::fs::read(path("moon-chain.pem")).unwrap());
    assert_eq!(parse_certs(&text).unwrap(), chain);
}

#[test]
fn crl_loading() {
    let crl = load_crl(&path("ca.crl.pem")).unwrap();
    assert_eq!(crl[0], 0x30);
    assert!(matches!(
        load_crl(&path("ca.cert.pem")),
        Err(PkiError::BadCrl(_))
    ));
    assert!(matches!(
        ipsec_pki::parse_crl(b"junk"),
        Err(PkiError::BadCrl(_))
    ));
}

#[test]
fn subjects_and_sans() {
    let moon = cert("moon.cert.pem");
    let sun = cert("sun.cert.pem");
    // `openssl x509 -noout -subject -nameopt RFC2253` prints these in reverse.
    assert_eq!(
        subject(&moon).unwrap(),
        "C=CH, O=strongSwan, CN=moon.strongswan.org"
    );
    assert_eq!(
        subject(&sun).unwrap(),
        "C=CH, O=strongSwan, OU=Research, CN=sun.strongswan.org"
    );
    assert_eq!(
        issuer(&moon).unwrap(),
        "C=CH, O=strongSwan, CN=strongSwan Root CA"
    );
    assert_eq!(
        subject_alt_names(&moon).unwrap(),
        ["dns:moon.strongswan.org", "ip:192.168.0.1"]
    );
    assert_eq!(
        subject_alt_names(&sun).unwrap(),
        ["dns:sun.strongswan.org", "email:sun@strongswan.org"]
    );
    assert!(subject_alt_names(&cert("ca.cert.pem")).unwrap().is_empty());
    let c = common::Chain::new("gw.example", common::Alg::P256);
    let c6 = common::ee(
        common::Spec::ee("v6.example").with_ip("2001:db8::7"),
        common::Alg::P256,
        &c.inter,
    );
    assert_eq!(
        subject_alt_names(&c6.der).unwrap(),
        ["dns:v6.example", "ip:2001:db8::7"]
    );
    assert!(matches!(subject(b"junk"), Err(PkiError::BadCertificate(_))));
}

#[test]
fn dn_identity_round_trip() {
    for name in ["moon.cert.pem", "sun.cert.pem", "ca.cert.pem"] {
        let der = cert(name);
        let s = subject(&der).unwrap();
        // strongSwan writes PrintableStrings, as dn_identity does: the same DER.
        assert_eq!(
            dn_identity(&s).unwrap(),
            cert_identity(&der).unwrap(),
            "{s}"
        );
        assert_eq!(parse_identity(&s).unwrap(), cert_identity(&der).unwrap());
        assert_eq!(identity_string(&cert_identity(&der).unwrap()), s);
    }
    assert_eq!(identity_string(&Identity::Fqdn("moon".into())), "@moon");
    assert_eq!(
        identity_string(&Identity::Other {
            id_type: IdType::ID_DER_ASN1_DN,
            data: vec![1, 2]
        }),
        "#0102"
    );
    let id = dn_identity("C=CH,O=strongSwan,CN=moon.strongswan.org").unwrap();
    assert_eq!(id, cert_identity(&cert("moon.cert.pem")).unwrap());
    let Identity::Other { id_type, data } = &id else {
        panic!()
    };
    assert_eq!(*id_type, IdType::ID_DER_ASN1_DN);
    // C=CH comes first in the encoding (forward order).
    assert_eq!(
        &data[2..15],
        [0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'C', b'H']
    );
    // Escapes, quotes, aliases, dotted OIDs, UTF-8 and e-mail round trip through subject().
    let s = r#"C=CH, O="Acme, Inc.", OU=R\,D, CN=Zürich gw, E=admin@acme.example, DC=acme, 2.5.4.5=1234"#;
    let again = r"C=CH, O=Acme\, Inc., OU=R\,D, CN=Zürich gw, emailAddress=admin@acme.example, DC=acme, serialNumber=1234";
    assert_eq!(dn_identity(s).unwrap(), dn_identity(again).unwrap());
    let Identity::Other { data, .. } = dn_identity(s).unwrap() else {
        panic!()
    };
    // "Zürich gw" is no PrintableString: UTF8String (tag 12).
    assert!(data
        .windows(2)
        .any(|w| w == [0x0c, "Zürich gw".len() as u8]));
    // E is an IA5String (tag 22).
    assert!(data
        .windows(2)
        .any(|w| w == [0x16, "admin@acme.example".len() as u8]));
    for bad in [
        "",
        "CN",
        "CN=",
        "XX=foo",
        "CN=a, , O=b",
        "CN=\"open",
        "CN=a\\",
    ] {
        assert!(
            matches!(dn_identity(bad), Err(PkiError::BadIdentity(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn parse_identity_rules() {
    assert_eq!(
        parse_identity("moon.strongswan.org").unwrap(),
        Identity::Fqdn("moon.strongswan.org".into())
    );
    assert_eq!(
        parse_identity("@moon").unwrap(),
        Identity::Fqdn("moon".into())
    );
    assert_eq!(
        parse_identity("10.0.0.1").unwrap(),
        Identity::Ipv4("10.0.0.1".parse().unwrap())
    );
    assert_eq!(
        parse_identity("a@b.example").unwrap(),
        Identity::Rfc822("a@b.example".into())
    );
    assert_eq!(
        parse_identity("CN=moon").unwrap().id_type(),
        IdType::ID_DER_ASN1_DN
    );
    assert_eq!(
        parse_identity("dn:CN=moon").unwrap(),
        parse_identity("CN=moon").unwrap()
    );
    assert!(parse_identity("").is_err());
    assert!(parse_identity("FOO=bar").is_err());
}

#[test]
fn ca_key_hash_known_answer() {
    // openssl x509 -in ca.cert.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha1sum
    assert_eq!(
        hex(&ca_key_hash(&cert("ca.cert.pem")).unwrap()),
        "87091e3cb408e18b487ef6032600c04025735c65"
    );
    // openssl x509 -in moon.cert.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha1sum
    assert_eq!(
        hex(&ca_key_hash(&cert("moon.cert.pem")).unwrap()),
        "d70564b8672e7ea8e3a5453b37c01e2e6f180284"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sec1_key_without_public_key_signs() {
    let key = load_private_key(&path("moon-p256.nopub.pem")).unwrap();
    for provider in [
        &ipsec_crypto_ring::PROVIDER,
        &ipsec_crypto_rustcrypto::PROVIDER,
    ] {
        assert!(
            local_auth(provider, &key, false).is_ok(),
            "{}",
            provider.name
        );
    }
}
