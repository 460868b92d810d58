//! `ipsec_pki::CertVerifier::verify` on arbitrary certificate lists and identities,
//! against the strongSwan-made CA of crates/ipsec-pki/tests/fixtures (with its CRL),
//! and the name functions on the same bytes.
//!
//! Input: one byte `n` (certificates, mod 5), then `n` times a big-endian u16
//! length and that many bytes, then one byte choosing the identity type and the
//! identity's bytes. Properties: nothing panics; an accepted end entity parses for
//! `subject`, `subject_alt_names` and `cert_identity`, and its returned key is a
//! DER SEQUENCE; a string identity parses or not without panicking.
#![no_main]

use std::sync::{Arc, OnceLock};

use ipsec_ike::{Identity, Instant, VerifiesPeerCert};
use ipsec_ike_wire::IdType;
use ipsec_pki::{
    cert_identity, dn_identity, parse_certs, parse_crl, parse_identity, subject, subject_alt_names,
    CertVerifier, FixedClock,
};
use libfuzzer_sys::fuzz_target;

const CA: &[u8] = include_bytes!("../../crates/ipsec-pki/tests/fixtures/ca.cert.pem");
const CRL: &[u8] = include_bytes!("../../crates/ipsec-pki/tests/fixtures/ca.crl.pem");

fn verifier() -> &'static CertVerifier {
    static V: OnceLock<CertVerifier> = OnceLock::new();
    V.get_or_init(|| {
        CertVerifier::new(parse_certs(CA).expect("fixture CA"))
            .expect("trust anchor")
            .with_crls(vec![parse_crl(CRL).expect("fixture CRL")])
            .expect("CRL")
            // 2026-05-28, inside the fixtures' validity.
            .with_clock(Arc::new(FixedClock(1_780_000_000)))
    })
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = data.split_at_checked(n)?;
    *data = rest;
    Some(head)
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some(&[n]) = take(&mut data, 1) else {
        return;
    };
    let mut certs = Vec::new();
    for _ in 0..n % 5 {
        let Some(len) = take(&mut data, 2) else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]])).min(data.len());
        let Some(cert) = take(&mut data, len) else {
            return;
        };
        certs.push(cert);
    }
    let Some(&[kind]) = take(&mut data, 1) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let id = match kind % 6 {
        0 => Identity::Fqdn(text.into_owned()),
        1 => Identity::Rfc822(text.into_owned()),
        2 => Identity::from_wire_or_other(IdType::ID_IPV4_ADDR, data),
        3 => Identity::from_wire_or_other(IdType::ID_IPV6_ADDR, data),
        4 => Identity::Other {
            id_type: IdType::ID_DER_ASN1_DN,
            data: data.to_vec(),
        },
        _ => match dn_identity(&text) {
            Ok(id) => id,
            Err(_) => {
                let _ = parse_identity(&text);
                return;
            }
        },
    };
    if let Ok(spki) = verifier().verify(&certs, &id, Instant::ZERO) {
        assert_eq!(spki.first(), Some(&0x30));
        let ee = certs[0];
        assert!(subject(ee).is_ok());
        assert!(subject_alt_names(ee).is_ok());
        assert!(cert_identity(ee).is_ok());
    }
    for cert in &certs {
        let _ = subject(cert);
        let _ = subject_alt_names(cert);
        if let Ok(s) = subject(cert) {
            let _ = dn_identity(&s);
        }
    }
});
