//! The integrity transforms AH can use, as [`IntegDesc`]s.
//!
//! The HMAC transforms are [`ipsec_crypto::suites`]' own. AES-GMAC for AH
//! ([RFC 4543 §5]: AUTH_AES_128_GMAC = 9, AUTH_AES_192_GMAC = 10,
//! AUTH_AES_256_GMAC = 11) is described here rather than in `suites::INTEG`: it is run
//! by an AEAD (AES-GCM with all input as AAD), not by an `IntegAlgorithm`, so a
//! provider's `integ()` lookup cannot find it, and its proposal token would clash with
//! ESP's ENCR_NULL_AUTH_AES_GMAC token `aes128gmac`.
//!
//! For GMAC the key material is the AES key followed by a 4-byte salt, as IKEv2
//! derives it ([RFC 4543 §7]: 20, 28 or 36 bytes); `key_len` counts both.
//!
//! [RFC 4543 §5]: https://www.rfc-editor.org/rfc/rfc4543#section-5
//! [RFC 4543 §7]: https://www.rfc-editor.org/rfc/rfc4543#section-7

use ipsec_crypto::suites::{self, IntegDesc};
use ipsec_crypto::IntegId;

/// AUTH_AES_128_GMAC (RFC 4543) for AH: 16-byte key + 4-byte salt, 8-byte IV, 16-byte
/// ICV.
pub static AES_128_GMAC: IntegDesc = IntegDesc {
    id: IntegId::AUTH_AES_128_GMAC,
    key_len: 20,
    icv_len: 16,
    prf: None,
    token: "aes128gmac",
    aliases: &[],
    name: "AES-128-GMAC",
    rfc: "RFC 4543",
};

/// AUTH_AES_192_GMAC (RFC 4543) for AH: 24-byte key + 4-byte salt. Runs only with a
/// provider that has AES-192-GCM.
pub static AES_192_GMAC: IntegDesc = IntegDesc {
    id: IntegId::AUTH_AES_192_GMAC,
    key_len: 28,
    icv_len: 16,
    prf: None,
    token: "aes192gmac",
    aliases: &[],
    name: "AES-192-GMAC",
    rfc: "RFC 4543",
};

/// AUTH_AES_256_GMAC (RFC 4543) for AH: 32-byte key + 4-byte salt.
pub static AES_256_GMAC: IntegDesc = IntegDesc {
    id: IntegId::AUTH_AES_256_GMAC,
    key_len: 36,
    icv_len: 16,
    prf: None,
    token: "aes256gmac",
    aliases: &[],
    name: "AES-256-GMAC",
    rfc: "RFC 4543",
};

/// Every integrity transform AH supports, HMAC first.
pub static ALL: &[&IntegDesc] = &[
    &suites::HMAC_SHA256_128,
    &suites::HMAC_SHA384_192,
    &suites::HMAC_SHA512_256,
    &suites::HMAC_SHA1_96,
    &AES_128_GMAC,
    &AES_192_GMAC,
    &AES_256_GMAC,
];

/// The AH integrity transform with IANA id `id`.
pub fn by_id(id: IntegId) -> Option<&'static IntegDesc> {
    ALL.iter().copied().find(|d| d.id == id)
}

/// True for the AES-GMAC transforms.
pub const fn is_gmac(id: IntegId) -> bool {
    matches!(id.0, 9..=11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(by_id(IntegId::AUTH_AES_256_GMAC).unwrap().key_len, 36);
        assert_eq!(by_id(IntegId::AUTH_HMAC_SHA1_96).unwrap().icv_len, 12);
        assert!(by_id(IntegId::AUTH_AES_XCBC_96).is_none());
        assert!(is_gmac(IntegId::AUTH_AES_128_GMAC));
        assert!(!is_gmac(IntegId::AUTH_HMAC_SHA2_256_128));
    }
}
