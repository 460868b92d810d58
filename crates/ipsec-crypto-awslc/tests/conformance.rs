//! The shared conformance suite (`ipsec_crypto::testkit`) against this backend.
//!
//! Only the key exchange checks apply: the backend has nothing else. The X25519 and
//! ECP vectors run in full (private keys come from the caller's random source, see
//! `ipsec_crypto_awslc::kx`). The ML-KEM groups take their randomness from AWS-LC, so
//! the ACVP key generation and encapsulation vectors cannot reach them through the
//! trait; the decapsulation vectors run in the crate's unit tests
//! (`check_mlkem_internals`), and the checks here cover the §7.2 key check, lengths,
//! agreement and implicit rejection.

ipsec_crypto::conformance_tests!(ipsec_crypto_awslc::PROVIDER; check_kx, check_lengths);
