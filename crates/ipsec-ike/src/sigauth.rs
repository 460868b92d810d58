//! Signature authentication in IKEv2 (RFC 7427): the AUTH data of method 14
//! (`DIGITAL_SIGNATURE`), its ASN.1 AlgorithmIdentifiers, and the hash algorithm
//! identifiers of the SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4, RFC 8420
//! for Ed25519).
//!
//! AUTH data of method 14 (RFC 7427 §3):
//!
//! ```text
//! +---------------+----------------------------------+-----------------+
//! | ASN.1 Length  | AlgorithmIdentifier (DER)        | Signature Value |
//! | (1 octet)     | (ASN.1 Length octets)            | (the rest)      |
//! +---------------+----------------------------------+-----------------+
//! ```
//!
//! Only the exact DER byte strings of RFC 7427 Appendix A (and RFC 8420 §2 for
//! Ed25519) are accepted: anything else is not a scheme we verify. RSASSA-PSS
//! AlgorithmIdentifiers carry parameters (RFC 4055 §3.1); we accept the three
//! parameter sets with MGF1 over the same hash and a salt as long as the hash
//! (RFC 7427 Appendix A.4.3 shows the SHA-256 one), with the hash
//! AlgorithmIdentifiers' NULL parameters present (as we send them) or absent (RFC 4055
//! §2.1 allows both).
//!
//! The older signature methods of RFC 7296 §3.8 are verified too, with the peer's
//! key (configured or from its certificate) and without an AlgorithmIdentifier:
//! RSA_SIG (1: RSASSA-PKCS1-v1_5 with SHA-1,
//! [`SignatureScheme::RsaPkcs1Sha1`], which only a peer without RFC 7427 sends; a
//! verification-only scheme, so it has no AlgorithmIdentifier here and no hash in
//! SIGNATURE_HASH_ALGORITHMS) and the ECDSA methods of RFC 4754, whose signature is
//! `r ‖ s` (9: P-256 with SHA-256, 10: P-384 with SHA-384; 11, P-521, is not
//! supported: [`AuthFailure::UnsupportedAlgorithm`]). We always sign with method 14.

use alloc::vec::Vec;

use ipsec_crypto::{CryptoProvider, SignatureScheme};
use ipsec_ike_wire::AuthMethod;

use crate::error::{AuthFailure, Error};

/// Hash algorithm SHA2-256 (RFC 7427 §4, IANA "IKEv2 Hash Algorithms").
pub const HASH_SHA2_256: u16 = 2;
/// Hash algorithm SHA2-384.
pub const HASH_SHA2_384: u16 = 3;
/// Hash algorithm SHA2-512.
pub const HASH_SHA2_512: u16 = 4;
/// Hash algorithm "Identity" (RFC 8420 §2): the signature algorithm hashes itself,
/// as Ed25519 does.
pub const HASH_IDENTITY: u16 = 5;

/// The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS: those of every
/// scheme [`verify`] accepts.
pub const ANNOUNCED_HASHES: [u16; 4] = [HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512, HASH_IDENTITY];

// The DER of each AlgorithmIdentifier (RFC 7427 §3 and Appendix A; RFC 8420 §2 for
// Ed25519), checked byte for byte against OpenSSL 3.0's encoding of the same OIDs
// (`openssl asn1parse -genconf` with `OID:<name>`, plus `NULL` parameters for RSA).

/// `ecdsa-with-SHA256`.
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// `ecdsa-with-SHA384`.
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
/// `sha256WithRSAEncryption`.
const RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
/// `sha384WithRSAEncryption`.
const RSA_SHA384: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
/// `sha512WithRSAEncryption`.
const RSA_SHA512: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
/// `id-Ed25519` without parameters (RFC 8420 §2, RFC 8410 §3).
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// `id-RSASSA-PSS` with RSASSA-PSS-params (RFC 4055 §3.1): hash `$h` (the last octet
/// of the NIST hash OID 2.16.840.1.101.3.4.2.`$h`), MGF1 over the same hash, salt
/// length `$salt`, default trailer; the hash AlgorithmIdentifiers with NULL parameters.
macro_rules! pss_with_null {
    ($h:literal, $salt:literal) => {
        &[
            0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, $h, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
            0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
            0x04, 0x02, $h, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, $salt,
        ]
    };
}

/// As `pss_with_null`, with the hash AlgorithmIdentifiers' parameters absent.
macro_rules! pss_without_null {
    ($h:literal, $salt:literal) => {
        &[
            0x30, 0x3d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x30, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, $h, 0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
            0x01, 0x08, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, $h,
            0xa2, 0x03, 0x02, 0x01, $salt,
        ]
    };
}

// The first entry of a scheme is the encoding we send; later ones are accepted too.
const TABLE: [(SignatureScheme, &[u8], u16); 12] = [
    (
        SignatureScheme::EcdsaP256Sha256,
        ECDSA_SHA256,
        HASH_SHA2_256,
    ),
    (
        SignatureScheme::EcdsaP384Sha384,
        ECDSA_SHA384,
        HASH_SHA2_384,
    ),
    (SignatureScheme::Ed25519, ED25519, HASH_IDENTITY),
    (SignatureScheme::RsaPkcs1Sha256, RSA_SHA256, HASH_SHA2_256),
    (SignatureScheme::RsaPkcs1Sha384, RSA_SHA384, HASH_SHA2_384),
    (SignatureScheme::RsaPkcs1Sha512, RSA_SHA512, HASH_SHA2_512),
    (
        SignatureScheme::RsaPssSha256,
        pss_with_null!(0x01, 0x20),
        HASH_SHA2_256,
    ),
    (
        SignatureScheme::RsaPssSha384,
        pss_with_null!(0x02, 0x30),
        HASH_SHA2_384,
    ),
    (
        SignatureScheme::RsaPssSha512,
        pss_with_null!(0x03, 0x40),
        HASH_SHA2_512,
    ),
    (
        SignatureScheme::RsaPssSha256,
        pss_without_null!(0x01, 0x20),
        HASH_SHA2_256,
    ),
    (
        SignatureScheme::RsaPssSha384,
        pss_without_null!(0x02, 0x30),
        HASH_SHA2_384,
    ),
    (
        SignatureScheme::RsaPssSha512,
        pss_without_null!(0x03, 0x40),
        HASH_SHA2_512,
    ),
];

/// The DER AlgorithmIdentifier that names `scheme` in method-14 AUTH data, or `None`
/// for schemes that cannot be used with it (the fixed-length ECDSA encodings, which
/// belong to methods 9 and 10, and RSASSA-PKCS1-v1_5 with SHA-1, which belongs to
/// method 1).
pub fn algorithm_identifier(scheme: SignatureScheme) -> Option<&'static [u8]> {
    TABLE.iter().find(|t| t.0 == scheme).map(|t| t.1)
}

/// The scheme an AlgorithmIdentifier names: exact byte comparison with the
/// encodings of [`algorithm_identifier`]. `ecdsa-with-SHA256` means P-256 and
/// `ecdsa-with-SHA384` P-384 (a key on another curve fails verification).
pub fn scheme_of(algorithm_identifier: &[u8]) -> Option<SignatureScheme> {
    TABLE
        .iter()
        .find(|t| t.1 == algorithm_identifier)
        .map(|t| t.0)
}

/// The RFC 7427 §4 hash algorithm of `scheme`, if it can be used with method 14.
pub fn hash_algorithm(scheme: SignatureScheme) -> Option<u16> {
    TABLE.iter().find(|t| t.0 == scheme).map(|t| t.2)
}

/// The SIGNATURE_HASH_ALGORITHMS notification data: 2-octet ids in network order.
pub fn encode_hash_algorithms(hashes: &[u16]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.to_be_bytes()).collect()
}

/// The hash algorithm ids of a SIGNATURE_HASH_ALGORITHMS notification; a trailing
/// odd octet is ignored.
pub fn decode_hash_algorithms(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// Method-14 AUTH data: the AlgorithmIdentifier of `scheme` with its length octet,
/// then `signature`. `None` for schemes without an AlgorithmIdentifier.
pub fn encode(scheme: SignatureScheme, signature: &[u8]) -> Option<Vec<u8>> {
    let ai = algorithm_identifier(scheme)?;
    let mut v = Vec::with_capacity(1 + ai.len() + signature.len());
    v.push(u8::try_from(ai.len()).ok()?);
    v.extend_from_slice(ai);
    v.extend_from_slice(signature);
    Some(v)
}

/// Splits method-14 AUTH data into the scheme its AlgorithmIdentifier names and the
/// signature value. `None` when the data is too short or the AlgorithmIdentifier is
/// not one of ours.
pub fn decode(data: &[u8]) -> Option<(SignatureScheme, &[u8])> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len);
    let ai = rest.get(..len)?;
    let signature = rest.get(len..)?;
    Some((scheme_of(ai)?, signature))
}

/// Checks the AUTH data of signature `method` over `signed_octets` with the peer's
/// public key (DER SubjectPublicKeyInfo): method 14 (RFC 7427), or 1, 9, 10 (RFC 7296
/// §3.8, RFC 4754). Returns the scheme the peer used.
///
/// # Errors
/// [`Error::AuthenticationFailed`] with [`AuthFailure::UnsupportedAlgorithm`] for a
/// method, AlgorithmIdentifier or key the provider cannot use, and
/// [`AuthFailure::BadSignature`] for a signature that does not verify under the key
/// (including a key of another type than the signature's): never a panic, whatever
/// the bytes.
pub fn verify(
    provider: &CryptoProvider,
    spki_der: &[u8],
    method: AuthMethod,
    data: &[u8],
    signed_octets: &[u8],
) -> Result<SignatureScheme, Error> {
    let unsupported = Error::AuthenticationFailed(AuthFailure::UnsupportedAlgorithm);
    let (scheme, signature) = match method {
        AuthMethod::DIGITAL_SIGNATURE => decode(data).ok_or(unsupported)?,
        AuthMethod::RSA_SIG => (SignatureScheme::RsaPkcs1Sha1, data),
        AuthMethod::ECDSA_SHA256_P256 => (SignatureScheme::EcdsaP256Sha256Fixed, data),
        AuthMethod::ECDSA_SHA384_P384 => (SignatureScheme::EcdsaP384Sha384Fixed, data),
        _ => return Err(unsupported),
    };
    let verifier = provider.signature_verifier(scheme).ok_or(unsupported)?;
    verifier
        .verify(spki_der, signed_octets, signature)
        .map_err(|e| match e {
            // A key the backend cannot use at all (another curve's, an RSA modulus
            // outside its bounds); a key of the wrong type is a bad signature.
            ipsec_crypto::CryptoError::Unsupported => unsupported,
            _ => Error::AuthenticationFailed(AuthFailure::BadSignature),
        })?;
    Ok(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for s in SignatureScheme::ALL {
            if let Some(ai) = algorithm_identifier(s) {
                assert_eq!(scheme_of(ai), Some(s));
                assert_eq!(usize::from(ai[1]) + 2, ai.len(), "DER length of {s:?}");
                let d = encode(s, b"sig").unwrap();
                assert_eq!(decode(&d), Some((s, &b"sig"[..])));
                assert!(ANNOUNCED_HASHES.contains(&hash_algorithm(s).unwrap()));
            }
        }
        // The schemes of methods 1, 9 and 10 have no AlgorithmIdentifier, so method-14
        // AUTH data can never name them.
        for s in [
            SignatureScheme::EcdsaP256Sha256Fixed,
            SignatureScheme::EcdsaP384Sha384Fixed,
            SignatureScheme::RsaPkcs1Sha1,
        ] {
            assert_eq!(algorithm_identifier(s), None, "{s:?}");
            assert_eq!(hash_algorithm(s), None, "{s:?}");
            assert_eq!(encode(s, b"sig"), None, "{s:?}");
            assert!(TABLE.iter().all(|t| t.0 != s), "{s:?}");
        }
        // Every scheme but those has one, and a hash we announce.
        for s in SignatureScheme::ALL {
            let fixed_or_legacy = matches!(
                s,
                SignatureScheme::EcdsaP256Sha256Fixed
                    | SignatureScheme::EcdsaP384Sha384Fixed
                    | SignatureScheme::RsaPkcs1Sha1
            );
            assert_eq!(algorithm_identifier(s).is_some(), !fixed_or_legacy, "{s:?}");
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[12, 0x30]), None);
        assert_eq!(decode_hash_algorithms(&[0, 2, 0, 5, 9]), [2, 5]);
        assert_eq!(encode_hash_algorithms(&[2, 5]), [0, 2, 0, 5]);
    }
}
