//! Signatures against any bytes for this backend: the shared properties
//! (`crates/ipsec-crypto/tests/shared/signature_props.rs`), and RFC 6979 determinism.

use ipsec_crypto::testkit::{signature_vectors, FixedRandom};
use ipsec_crypto::CryptoProvider;

const PROVIDER: &CryptoProvider = &ipsec_crypto_rustcrypto::PROVIDER;

#[path = "../../ipsec-crypto/tests/shared/signature_props.rs"]
mod signature_props;

/// RFC 6979 A.2.5 and A.2.6: this backend's ECDSA is deterministic and gives the
/// RFC's signatures exactly, in both encodings.
#[test]
fn ecdsa_is_rfc6979() {
    let mut n = 0;
    for v in signature_vectors().into_iter().filter(|v| v.rfc6979) {
        let a = PROVIDER.signing_algorithm(v.scheme).unwrap();
        let s = a
            .new_signer(&v.private_key, PROVIDER.secure_random)
            .unwrap();
        let sig = s.sign(&FixedRandom::new(&[]), &v.message).unwrap();
        assert_eq!(sig, v.signature, "{}", v.name);
        n += 1;
    }
    assert!(n >= 10, "{n}");
}
