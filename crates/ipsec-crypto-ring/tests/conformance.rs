//! The shared conformance suite (`ipsec_crypto::testkit`) against this backend.
//!
//! `check_cipher` is absent: ring has no AES-CBC, so only ENCR_NULL (which lives in
//! `ipsec-crypto`, not here) would run. Every other check runs in full, the key
//! exchange vectors included (see `ipsec_crypto_ring::kx` for how the vector's private
//! key reaches ring).

ipsec_crypto::conformance_tests!(ipsec_crypto_ring::PROVIDER;
    check_aead, check_integ, check_prf, check_kx, check_kdf, check_lengths, check_signatures);
