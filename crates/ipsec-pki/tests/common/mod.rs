//! A test PKI made with rcgen at test time: CAs, intermediates and end entities with
//! any of the supported key types, and CRLs. Shared with ipsec-test's
//! tests/certificates.rs (included there by path).
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};

/// 2026-01-01T00:00:00Z: the verification time of the tests, inside the default
/// validity (2025-01-01 to 2030-01-01).
pub const NOW: u64 = 1_767_225_600;

/// A fixed RSA 2048 key (PKCS#8), made by tests/fixtures/gen.sh: rcgen cannot make
/// RSA keys.
pub const RSA_PKCS8_PEM: &str = include_str!("../fixtures/sun-rsa2048.pk8.pem");

/// Key types of the test PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    Ed25519,
    Rsa,
}

pub fn key(alg: Alg) -> KeyPair {
    match alg {
        Alg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Alg::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Alg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        Alg::Rsa => {
            KeyPair::from_pkcs8_pem_and_sign_algo(RSA_PKCS8_PEM, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}

/// A certificate with its key.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub der: Vec<u8>,
}

impl Issued {
    /// The private key in PKCS#8 DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The private key as an `ipsec_pki::PrivateKey`.
    pub fn private_key(&self) -> ipsec_pki::PrivateKey {
        ipsec_pki::parse_private_key(&self.key_der()).unwrap()
    }
}

/// What an end entity (or CA) certificate carries.
#[derive(Clone, Debug)]
pub struct Spec {
    pub dn: Vec<(DnType, String)>,
    pub sans: Vec<SanType>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub key_usages: Vec<KeyUsagePurpose>,
    /// (year, month, day)
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    pub serial: u64,
}

impl Spec {
    /// `C=CH, O=ipsec-rs, CN=<cn>` with a dNSName SAN `<cn>`, no EKU, keyUsage
    /// digitalSignature, valid 2025 to 2030.
    pub fn ee(cn: &str) -> Spec {
        Spec {
            dn: vec![
                (DnType::CountryName, "CH".into()),
                (DnType::OrganizationName, "ipsec-rs".into()),
                (DnType::CommonName, cn.into()),
            ],
            sans: vec![SanType::DnsName(cn.try_into().unwrap())],
            eku: Vec::new(),
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            not_before: (2025, 1, 1),
            not_after: (2030, 1, 1),
            serial: 1000,
        }
    }

    pub fn with_ip(mut self, ip: &str) -> Spec {
        self.sans
            .push(SanType::IpAddress(ip.parse::<IpAddr>().unwrap()));
        self
    }

    pub fn with_email(mut self, email: &str) -> Spec {
        self.sans
            .push(SanType::Rfc822Name(email.try_into().unwrap()));
        self
    }

    pub fn with_serial(mut self, serial: u64) -> Spec {
        self.serial = serial;
        self
    }

    pub fn valid(mut self, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Spec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    fn params(&self, ca: bool) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (t, v) in &self.dn {
            dn.push(t.clone(), v.as_str());
        }
        p.distinguished_name = dn;
        p.subject_alt_names = self.sans.clone();
        p.extended_key_usages = self.eku.clone();
        p.key_usages = self.key_usages.clone();
        p.not_before = date_time_ymd(self.not_before.0, self.not_before.1, self.not_before.2);
        p.not_after = date_time_ymd(self.not_after.0, self.not_after.1, self.not_after.2);
        p.serial_number = Some(SerialNumber::from(self.serial));
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.use_authority_key_identifier_extension = true;
        p
    }
}

fn ca_spec(cn: &str, serial: u64) -> Spec {
    Spec {
        dn: vec![
            (DnType::CountryName, "CH".into()),
            (DnType::OrganizationName, "ipsec-rs".into()),
            (DnType::CommonName, cn.into()),
        ],
        sans: Vec::new(),
        eku: Vec::new(),
        key_usages: vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ],
        not_before: (2024, 1, 1),
        not_after: (2034, 1, 1),
        serial,
    }
}

/// A self-signed root CA.
pub fn root(cn: &str, alg: Alg) -> Issued {
    root_with(ca_spec(cn, 1), alg)
}

/// A self-signed CA made from `spec`.
pub fn root_with(spec: Spec, alg: Alg) -> Issued {
    let key = key(alg);
    let cert = spec.params(true).self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    Issued { cert, key, der }
}

/// An intermediate CA issued by `issuer`.
pub fn intermediate(cn: &str, alg: Alg, issuer: &Issued) -> Issued {
    intermediate_with(ca_spec(cn, 2), alg, issuer)
}

/// An intermediate CA made from `spec`, issued by `issuer`.
pub fn intermediate_with(spec: Spec, alg: Alg, issuer: &Issued) -> Issued {
    let key = key(alg);
    let cert = spec
        .params(true)
        .signed_by(&key, &issuer.cert, &issuer.key)
        .unwrap();
    let der = cert.der().to_vec();
    Issued { cert, key, der }
}

/// An end entity made from `spec`, issued by `issuer`.
pub fn ee(spec: Spec, alg: Alg, issuer: &Issued) -> Issued {
    let key = key(alg);
    let cert = spec
        .params(false)
        .signed_by(&key, &issuer.cert, &issuer.key)
        .unwrap();
    let der = cert.der().to_vec();
    Issued { cert, key, der }
}

/// A CRL of `issuer` revoking the serial numbers `revoked`, issued 2025-06-01 with a
/// nextUpdate of 2025-07-01 (expired at [`NOW`]: expiry is not enforced).
pub fn crl(issuer: &Issued, revoked: &[u64]) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 6, 1),
        next_update: date_time_ymd(2025, 7, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&s| RevokedCertParams {
                serial_number: SerialNumber::from(s),
                revocation_time: date_time_ymd(2025, 5, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer.cert, &issuer.key)
        .unwrap()
        .der()
        .to_vec()
}

/// A three-level PKI: root (P-256) → intermediate (P-384) → end entity `cn` with key
/// type `alg`, SANs dns:`cn`, ip:192.0.2.1, email:admin@`cn`.
pub struct Chain {
    pub root: Issued,
    pub inter: Issued,
    pub ee: Issued,
}

impl Chain {
    pub fn new(cn: &str, alg: Alg) -> Chain {
        Chain::with(
            Spec::ee(cn)
                .with_ip("192.0.2.1")
                .with_email(&format!("admin@{cn}")),
            alg,
        )
    }

    pub fn with(spec: Spec, alg: Alg) -> Chain {
        let root = root("ipsec-rs Root CA", Alg::P256);
        let inter = intermediate("ipsec-rs Intermediate CA", Alg::P384, &root);
        let ee = ee(spec, alg, &inter);
        Chain { root, inter, ee }
    }

    /// The chain an endpoint sends: end entity, then intermediate.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        vec![self.ee.der.clone(), self.inter.der.clone()]
    }

    /// A verifier trusting only the root, at [`NOW`].
    pub fn verifier(&self) -> ipsec_pki::CertVerifier {
        ipsec_pki::CertVerifier::new(vec![self.root.der.clone()])
            .unwrap()
            .with_clock(std::sync::Arc::new(ipsec_pki::FixedClock(NOW)))
    }
}
