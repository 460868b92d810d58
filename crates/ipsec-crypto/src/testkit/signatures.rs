//! Signature checks of the conformance suite (vectors/signatures.json).

use std::format;
use std::string::String;
use std::vec::Vec;

use super::{load, records, Rec};
use crate::provider::CryptoProvider;
use crate::traits::{SignatureScheme, SignatureVerifier};
use crate::CryptoError;

const SIGNATURES_JSON: &str = include_str!("../../vectors/signatures.json");

/// Every vector file of this module, for the parse test.
#[cfg(test)]
pub(super) const FILES: [(&str, &str); 1] = [("signatures.json", SIGNATURES_JSON)];

fn scheme_of(r: &Rec<'_>) -> SignatureScheme {
    let s = r.str("scheme");
    SignatureScheme::from_name(s).unwrap_or_else(|| panic!("{}: unknown scheme {s:?}", r.name))
}

/// `verify` must fail; with `Authentication` when `auth` is set, else with any error.
fn expect_refused(
    what: &str,
    v: &dyn SignatureVerifier,
    spki: &[u8],
    msg: &[u8],
    sig: &[u8],
    auth: bool,
) {
    let backend = v.backend();
    match v.verify(spki, msg, sig) {
        Ok(()) => panic!("{what} [{backend}]: a bad signature verified"),
        Err(CryptoError::Authentication) => {}
        Err(e) if !auth => {
            let _ = e;
        }
        Err(e) => panic!("{what} [{backend}]: refused with {e:?}, expected Authentication"),
    }
}

/// The signature changed in ways that must all be refused.
fn mangled(sig: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in [0, sig.len() / 2, sig.len().saturating_sub(1)] {
        let mut s = sig.to_vec();
        if let Some(b) = s.get_mut(i) {
            *b ^= 0x01;
            out.push((format!("bit 0 of byte {i} flipped"), s));
        }
    }
    out.push(("empty".into(), Vec::new()));
    out.push((
        "last byte cut".into(),
        sig.get(..sig.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec(),
    ));
    let mut longer = sig.to_vec();
    longer.push(0);
    out.push(("a zero byte appended".into(), longer));
    let mut zeroed = std::vec![0u8; sig.len()];
    if let Some(z) = zeroed.first_mut() {
        *z = sig.first().copied().unwrap_or(0);
    }
    out.push(("all but the first byte zero".into(), zeroed));
    // DER: the outer length in long form (BER, not DER) must be refused too.
    if let [0x30, len, rest @ ..] = sig {
        if *len < 0x80 {
            let mut ber = std::vec![0x30, 0x81, *len];
            ber.extend_from_slice(rest);
            out.push(("outer length in BER long form".into(), ber));
        }
    }
    out
}

/// Signature checks.
///
/// signatures.json (RFC 6979 A.2.5/A.2.6 ECDSA, RFC 8032 §7.1 Ed25519, RSA PKCS#1
/// v1.5 (SHA-1 and SHA-2) and PSS made by OpenSSL; the file's script names the sources) against every
/// verifier and signing algorithm of the provider:
/// - the vector's signature verifies with its SubjectPublicKeyInfo;
/// - changed signatures (bits flipped, cut, extended, zeroed, BER lengths) and a
///   changed message give [`CryptoError::Authentication`];
/// - the provider's verifiers of other schemes refuse the signature;
/// - a verification-only scheme (RSA PKCS#1 v1.5 with SHA-1) has no signer;
/// - the private key (PKCS#8 v1/v2, SEC1 with and without the public key, PKCS#1)
///   makes a signer whose signature verifies, and for deterministic schemes (Ed25519,
///   PKCS#1 v1.5) equals the vector's;
/// - signing algorithms of other key types refuse the private key, and truncated
///   keys are refused.
///
/// # Panics
///
/// When a vector or case fails; the message names it.
pub fn check_signatures(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("signatures.json", SIGNATURES_JSON);
    for r in records("signatures.json", &values).filter(Rec::verified) {
        let scheme = scheme_of(&r);
        let name = r.name;
        let (spki, msg, sig) = (r.hex("spki"), r.hex("message"), r.hex("signature"));
        let key = r.hex("private_key");

        if let Some(v) = p.signature_verifier(scheme) {
            let backend = v.backend();
            v.verify(&spki, &msg, &sig)
                .unwrap_or_else(|e| panic!("{name} [{backend}]: does not verify: {e}"));
            for (what, bad) in mangled(&sig) {
                expect_refused(&format!("{name}, {what}"), v, &spki, &msg, &bad, true);
            }
            let mut other_msg = msg.clone();
            other_msg.push(b'!');
            expect_refused(
                &format!("{name}, message changed"),
                v,
                &spki,
                &other_msg,
                &sig,
                true,
            );
            // The private key is not a public key.
            assert!(
                v.verify(&key, &msg, &sig).is_err(),
                "{name} [{backend}]: verified with the private key's DER as SPKI"
            );
            n += 1;
        }
        for v in p
            .signature_verifiers
            .iter()
            .filter(|v| v.scheme() != scheme)
        {
            expect_refused(
                &format!("{name}, verified as {:?}", v.scheme()),
                *v,
                &spki,
                &msg,
                &sig,
                false,
            );
            n += 1;
        }

        if scheme.is_verify_only() {
            assert!(
                p.signers.iter().all(|a| a.scheme() != scheme),
                "{name}: the provider lists a signer of the verification-only {scheme:?}"
            );
        }
        if let Some(alg) = p.signing_algorithm(scheme) {
            let backend = alg.backend();
            let signer = alg
                .new_signer(&key, p.secure_random)
                .unwrap_or_else(|e| panic!("{name} [{backend}]: new_signer: {e}"));
            assert_eq!(signer.scheme(), scheme, "{name} [{backend}]: signer scheme");
            let debug = format!("{signer:?}");
            assert!(
                debug.len() < 100,
                "{name} [{backend}]: Debug of a signer is suspiciously long: {debug}"
            );
            let mine = signer
                .sign(p.secure_random, &msg)
                .unwrap_or_else(|e| panic!("{name} [{backend}]: sign: {e}"));
            if r.get("deterministic").and_then(serde_json::Value::as_bool) == Some(true) {
                assert_eq!(
                    hex::encode(&mine),
                    hex::encode(&sig),
                    "{name} [{backend}]: deterministic signature differs"
                );
            }
            if let Some(v) = p.signature_verifier(scheme) {
                v.verify(&spki, &msg, &mine).unwrap_or_else(|e| {
                    panic!(
                        "{name} [{backend}]: our signature does not verify [{}]: {e}",
                        v.backend()
                    )
                });
            }
            for l in [0, 1, key.len() / 2, key.len() - 1] {
                let cut = key.get(..l).unwrap_or_default();
                assert!(
                    alg.new_signer(cut, p.secure_random).is_err(),
                    "{name} [{backend}]: took a private key cut to {l} bytes"
                );
            }
            n += 1;
        }
        for alg in p
            .signers
            .iter()
            .filter(|a| !same_key_type(a.scheme(), scheme))
        {
            match alg.new_signer(&key, p.secure_random) {
                Err(CryptoError::InvalidKey | CryptoError::Unsupported) => {}
                Err(e) => panic!(
                    "{name} [{}]: key refused by {:?} with {e:?}",
                    alg.backend(),
                    alg.scheme()
                ),
                Ok(_) => panic!(
                    "{name} [{}]: {:?} took a key of another type",
                    alg.backend(),
                    alg.scheme()
                ),
            }
            n += 1;
        }
    }
    n
}

/// Whether the two schemes take the same private keys.
fn same_key_type(a: SignatureScheme, b: SignatureScheme) -> bool {
    (a.is_rsa() && b.is_rsa())
        || (a.ec_curve().is_some() && a.ec_curve() == b.ec_curve())
        || (a == SignatureScheme::Ed25519 && b == SignatureScheme::Ed25519)
}

/// Signatures made by one provider verify with the other's verifiers, in both
/// directions, for every vector key and every scheme both have; returns how many
/// pairs it checked. For checking that two backends interoperate byte for byte.
///
/// # Panics
///
/// When a signature of one does not verify with the other; the message names it.
pub fn check_signature_interop(a: &CryptoProvider, b: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("signatures.json", SIGNATURES_JSON);
    for r in records("signatures.json", &values).filter(Rec::verified) {
        let scheme = scheme_of(&r);
        let (spki, key, msg) = (r.hex("spki"), r.hex("private_key"), r.hex("message"));
        for (signer, verifier) in [(a, b), (b, a)] {
            let (Some(alg), Some(v)) = (
                signer.signing_algorithm(scheme),
                verifier.signature_verifier(scheme),
            ) else {
                continue;
            };
            let sig = alg
                .new_signer(&key, signer.secure_random)
                .and_then(|s| s.sign(signer.secure_random, &msg))
                .unwrap_or_else(|e| panic!("{} [{}]: sign: {e}", r.name, alg.backend()));
            v.verify(&spki, &msg, &sig).unwrap_or_else(|e| {
                panic!(
                    "{}: signed by {}, refused by {}: {e}",
                    r.name,
                    alg.backend(),
                    v.backend()
                )
            });
            n += 1;
        }
    }
    n
}

/// A record of signatures.json, for backend-specific tests (property tests that need
/// valid keys, RFC 6979 determinism).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignatureVector {
    /// The record's name.
    pub name: String,
    /// The scheme.
    pub scheme: SignatureScheme,
    /// The public key, SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// The private key DER (PKCS#8, SEC1 or PKCS#1).
    pub private_key: Vec<u8>,
    /// The message.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// Whether the signature is RFC 6979's deterministic ECDSA signature.
    pub rfc6979: bool,
}

/// The verified records of signatures.json.
pub fn signature_vectors() -> Vec<SignatureVector> {
    let values = load("signatures.json", SIGNATURES_JSON);
    records("signatures.json", &values)
        .filter(Rec::verified)
        .map(|r| SignatureVector {
            name: r.name.into(),
            scheme: scheme_of(&r),
            spki: r.hex("spki"),
            private_key: r.hex("private_key"),
            message: r.hex("message"),
            signature: r.hex("signature"),
            rfc6979: r.get("rfc6979").and_then(serde_json::Value::as_bool) == Some(true),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{self, PrivateKey, PublicKey};

    /// Every vector's keys parse, and are of the scheme's key type.
    #[test]
    fn vector_keys_parse() {
        let values = load("signatures.json", SIGNATURES_JSON);
        for r in records("signatures.json", &values) {
            let scheme = scheme_of(&r);
            let (spki, key) = (r.hex("spki"), r.hex("private_key"));
            let public = keys::parse_spki(&spki).unwrap_or_else(|e| panic!("{}: {e}", r.name));
            let private =
                keys::parse_private_key(&key).unwrap_or_else(|e| panic!("{}: {e}", r.name));
            match (public, private) {
                (
                    PublicKey::Ec { curve, point },
                    PrivateKey::Ec {
                        curve: c, public, ..
                    },
                ) => {
                    assert_eq!(Some(curve), scheme.ec_curve(), "{}", r.name);
                    assert_eq!(curve, c, "{}", r.name);
                    if let Some(p) = public {
                        assert_eq!(p, point, "{}", r.name);
                    }
                }
                (PublicKey::Rsa { modulus, .. }, PrivateKey::Rsa { modulus: m, .. }) => {
                    assert!(scheme.is_rsa(), "{}", r.name);
                    assert_eq!(modulus, m, "{}", r.name);
                }
                (PublicKey::Ed25519(k), PrivateKey::Ed25519 { public, .. }) => {
                    assert_eq!(scheme, SignatureScheme::Ed25519, "{}", r.name);
                    if let Some(p) = public {
                        assert_eq!(p, k, "{}", r.name);
                    }
                }
                _ => panic!("{}: public and private key types differ", r.name),
            }
        }
    }
}
