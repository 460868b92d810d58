//! The composed default provider runs the whole shared conformance suite: every check,
//! with ring's and RustCrypto's algorithms side by side in one provider.

ipsec_crypto::conformance_tests!(ipsec::DEFAULT_PROVIDER;
    check_aead, check_cipher, check_integ, check_prf, check_kx, check_kdf, check_lengths,
    check_signatures);
