//! The shared conformance suite (`ipsec_crypto::testkit`) against this backend.

ipsec_crypto::conformance_tests!(ipsec_crypto_rustcrypto::PROVIDER;
    check_aead, check_cipher, check_integ, check_prf, check_kx, check_kdf, check_lengths,
    check_signatures);
