//! ML-KEM properties (after the ACVP known answers of the conformance suite): any seeds
//! agree, any encapsulation key built from coefficients below q is taken and one
//! coefficient at q or above is refused (FIPS 203 §7.2), and peer values of any length
//! and content give a typed result, never a panic.

use ipsec_crypto::mlkem::{self, MlKemParams};
use ipsec_crypto::testkit::FixedRandom;
use ipsec_crypto::{CryptoError, KxGroup};
use ipsec_crypto_rustcrypto::{ML_KEM_1024, ML_KEM_512, ML_KEM_768, OS_RANDOM};
use proptest::collection::vec;
use proptest::prelude::*;

fn group(which: usize) -> (&'static dyn KxGroup, &'static MlKemParams) {
    match which % 3 {
        0 => (&ML_KEM_512, &mlkem::ML_KEM_512),
        1 => (&ML_KEM_768, &mlkem::ML_KEM_768),
        _ => (&ML_KEM_1024, &mlkem::ML_KEM_1024),
    }
}

/// ByteEncode12 (FIPS 203 Algorithm 5) of `coeffs` (each below 4096), then ρ.
fn encode(coeffs: &[u16], rho: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(coeffs.len() * 3 / 2 + 32);
    for pair in coeffs.chunks(2) {
        let (a, b) = (pair[0], pair[1]);
        out.push((a & 0xff) as u8);
        out.push(((a >> 8) | ((b & 0x0f) << 4)) as u8);
        out.push((b >> 4) as u8);
    }
    out.extend_from_slice(rho);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_seeds_agree(
        which in 0usize..3,
        d in any::<[u8; 32]>(),
        z in any::<[u8; 32]>(),
        m in any::<[u8; 32]>(),
    ) {
        let (g, p) = group(which);
        let kx = g.start(&FixedRandom::new(&[d, z].concat())).unwrap();
        prop_assert_eq!(kx.public().len(), p.ek_len);
        let (c, k) = g.respond(&FixedRandom::new(&m), kx.public()).unwrap();
        prop_assert_eq!(c.len(), p.ciphertext_len);
        prop_assert!(kx.complete(&c).unwrap() == k);
    }

    #[test]
    fn modulus_check_takes_exactly_the_keys_below_q(
        which in 0usize..3,
        coeffs in vec(0u16..mlkem::Q, 1024),
        rho in any::<[u8; 32]>(),
        bad in proptest::option::of((0usize..1024, mlkem::Q..4096u16)),
    ) {
        let (g, p) = group(which);
        let mut coeffs = coeffs[..256 * p.k].to_vec();
        if let Some((at, value)) = bad {
            coeffs[at % (256 * p.k)] = value;
        }
        let ek = encode(&coeffs, &rho);
        prop_assert_eq!(ek.len(), p.ek_len);
        match (bad, g.respond(&OS_RANDOM, &ek)) {
            (None, Ok((c, _))) => prop_assert_eq!(c.len(), p.ciphertext_len),
            (Some(_), Err(CryptoError::InvalidPublicValue)) => {}
            (b, r) => prop_assert!(false, "bad coefficient {:?}: {:?}", b, r.map(|_| ())),
        }
    }

    #[test]
    fn any_peer_value_is_a_typed_result(
        which in 0usize..3,
        length in 0usize..4,
        bytes in vec(any::<u8>(), 0..1700),
    ) {
        let (g, p) = group(which);
        // A quarter each of the two lengths that are not refused outright.
        let mut bytes = bytes;
        match length {
            0 => bytes.resize(p.ek_len, 0x5a),
            1 => bytes.resize(p.ciphertext_len, 0xa5),
            _ => {}
        }
        match g.respond(&OS_RANDOM, &bytes) {
            Ok((c, _)) => prop_assert_eq!(c.len(), p.ciphertext_len),
            Err(CryptoError::Length { .. }) => prop_assert_ne!(bytes.len(), p.ek_len),
            Err(CryptoError::InvalidPublicValue) => prop_assert_eq!(bytes.len(), p.ek_len),
            Err(e) => prop_assert!(false, "{e}"),
        }
        // Decapsulation of any ciphertext of the right length succeeds (implicit
        // rejection); any other length is a length error.
        let kx = g.start(&OS_RANDOM).unwrap();
        match kx.complete(&bytes) {
            Ok(k) => {
                prop_assert_eq!(bytes.len(), p.ciphertext_len);
                prop_assert_eq!(k.len(), 32);
            }
            Err(CryptoError::Length { .. }) => prop_assert_ne!(bytes.len(), p.ciphertext_len),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
