//! Signatures against any bytes, the same for every backend (its test sets
//! `PROVIDER` and includes this module): verification and key loading return errors,
//! never panic (style guide §2), and random signatures under valid keys never verify.

use ipsec_crypto::testkit::{signature_vectors, FixedRandom};
use ipsec_crypto::{CryptoError, SignatureScheme};
use proptest::prelude::*;

use super::PROVIDER;

/// One valid public and private key per scheme, from the vectors.
fn keys() -> Vec<(SignatureScheme, Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(SignatureScheme, Vec<u8>, Vec<u8>)> = Vec::new();
    for v in signature_vectors() {
        if !out.iter().any(|(s, ..)| *s == v.scheme) {
            out.push((v.scheme, v.spki, v.private_key));
        }
    }
    assert_eq!(out.len(), SignatureScheme::ALL.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_key_and_signature_is_refused_without_panic(
        spki in proptest::collection::vec(any::<u8>(), 0..600),
        msg in proptest::collection::vec(any::<u8>(), 0..64),
        sig in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        for v in PROVIDER.signature_verifiers {
            prop_assert!(v.verify(&spki, &msg, &sig).is_err());
        }
        for a in PROVIDER.signers {
            prop_assert!(a.new_signer(&spki, PROVIDER.secure_random).is_err());
        }
    }

    #[test]
    fn random_signatures_do_not_verify(
        msg in proptest::collection::vec(any::<u8>(), 0..64),
        len in prop_oneof![Just(64usize), Just(96), Just(256), Just(384), 0usize..520],
        fill in any::<u8>(),
        der_prefix in any::<bool>(),
        seed in proptest::collection::vec(any::<u8>(), 520),
    ) {
        let mut sig: Vec<u8> = seed.iter().take(len).map(|b| b ^ fill).collect();
        if der_prefix && sig.len() >= 2 {
            sig[0] = 0x30;
            sig[1] = (len - 2).min(0x7f) as u8;
        }
        for (scheme, spki, _) in keys() {
            if let Some(v) = PROVIDER.signature_verifier(scheme) {
                prop_assert_eq!(
                    v.verify(&spki, &msg, &sig),
                    Err(CryptoError::Authentication),
                    "{:?}", scheme
                );
            }
        }
    }

    #[test]
    fn mangled_keys_never_panic(index in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<bool>()) {
        for (scheme, spki, private) in keys() {
            let mut spki = spki;
            let mut private = private;
            let i = index.index(spki.len());
            spki[i] ^= xor;
            let j = index.index(private.len());
            private[j] ^= xor;
            if cut {
                spki.truncate(i);
                private.truncate(j);
            }
            if let Some(v) = PROVIDER.signature_verifier(scheme) {
                let _ = v.verify(&spki, b"m", &[0u8; 64]);
            }
            if let Some(a) = PROVIDER.signing_algorithm(scheme) {
                if let Ok(s) = a.new_signer(&private, PROVIDER.secure_random) {
                    // A key that still loads signs (the change hit a part the backend
                    // does not use, such as an RSA CRT value ring checks, or an
                    // optional field).
                    let _ = s.sign(PROVIDER.secure_random, b"m");
                }
            }
        }
    }
}

#[test]
fn signing_fails_cleanly_when_the_random_source_does() {
    let empty = FixedRandom::new(&[]);
    for (scheme, _, private) in keys() {
        let Some(a) = PROVIDER.signing_algorithm(scheme) else {
            continue;
        };
        match a.new_signer(&private, &empty) {
            Err(e) => assert_eq!(e, CryptoError::Random, "{scheme:?}"),
            Ok(s) => {
                // Ed25519 and PKCS#1 v1.5 need no randomness; the others may (ring's
                // hedged ECDSA nonces, PSS salts) and then fail with `Random`.
                let r = s.sign(&empty, b"m");
                if scheme.is_randomized() {
                    assert!(
                        r.is_ok() || r == Err(CryptoError::Random),
                        "{scheme:?}: {r:?}"
                    );
                } else {
                    assert!(r.is_ok(), "{scheme:?}: {r:?}");
                }
            }
        }
    }
}
