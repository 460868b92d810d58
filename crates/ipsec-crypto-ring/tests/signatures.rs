//! Signatures against any bytes for this backend: the shared properties
//! (`crates/ipsec-crypto/tests/shared/signature_props.rs`).

use ipsec_crypto::CryptoProvider;

const PROVIDER: &CryptoProvider = &ipsec_crypto_ring::PROVIDER;

#[path = "../../ipsec-crypto/tests/shared/signature_props.rs"]
mod signature_props;
