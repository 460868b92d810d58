//! Certificates in IKE_AUTH (RFC 7296 §3.6, §3.7; RFC 4945): why a certificate
//! verifier refused a peer, and the CERTREQ data. The verifier seam itself,
//! [`VerifiesPeerCert`](crate::VerifiesPeerCert), lives with the other per-peer
//! seams in `config` (this module imports nothing of the crate's, so `config` can use
//! it).
//!
//! This crate carries certificates but never parses them: it hands the CERT payloads
//! of the peer's IKE_AUTH message to a [`VerifiesPeerCert`], which builds the chain to
//! its trust anchors, checks validity, revocation, the key usage profile and the
//! binding of the peer's identity, and returns the end-entity's public key. The AUTH
//! signature is then verified under that key as for a configured raw key.

use alloc::vec::Vec;
use core::fmt;

/// Why a peer's certificates were not accepted: the local reason behind an
/// AUTHENTICATION_FAILED, carried in [`AuthFailure::Certificate`](crate::AuthFailure::Certificate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertRejection {
    /// The certificate (or one in its chain) expired before the verification time.
    Expired,
    /// The certificate (or one in its chain) is not valid yet.
    NotYetValid,
    /// No chain leads from the certificate to a configured trust anchor.
    UnknownIssuer,
    /// A certificate of the chain is revoked by a loaded CRL.
    Revoked,
    /// A signature in the chain does not verify.
    BadChainSignature,
    /// A signature or key algorithm in the chain that the verifier does not support.
    UnsupportedAlgorithm,
    /// The key usage or extended key usage does not allow IKE (RFC 4945 §5.1.3.2,
    /// §5.1.3.12), or an intermediate is not a CA.
    KeyUsage,
    /// The identity the peer claims is not bound to the certificate (RFC 4945
    /// §3.1): not in its subjectAltName, nor its subject for a DN identity.
    IdMismatch,
    /// A certificate does not parse.
    Malformed,
    /// A revocation list needed for the check is missing or unusable.
    RevocationUnknown,
    /// Anything else the verifier refused.
    Other,
}

impl CertRejection {
    /// A short snake_case label, for metrics and logs.
    pub const fn label(self) -> &'static str {
        match self {
            CertRejection::Expired => "expired",
            CertRejection::NotYetValid => "not_yet_valid",
            CertRejection::UnknownIssuer => "unknown_issuer",
            CertRejection::Revoked => "revoked",
            CertRejection::BadChainSignature => "bad_chain_signature",
            CertRejection::UnsupportedAlgorithm => "unsupported_algorithm",
            CertRejection::KeyUsage => "key_usage",
            CertRejection::IdMismatch => "id_mismatch",
            CertRejection::Malformed => "malformed",
            CertRejection::RevocationUnknown => "revocation_unknown",
            CertRejection::Other => "other",
        }
    }
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertRejection::Expired => "certificate expired",
            CertRejection::NotYetValid => "certificate not yet valid",
            CertRejection::UnknownIssuer => "certificate not issued by a trusted CA",
            CertRejection::Revoked => "certificate revoked",
            CertRejection::BadChainSignature => "bad signature in the certificate chain",
            CertRejection::UnsupportedAlgorithm => "unsupported algorithm in the certificate chain",
            CertRejection::KeyUsage => "key usage does not allow IKE",
            CertRejection::IdMismatch => "peer identity not in its certificate",
            CertRejection::Malformed => "malformed certificate",
            CertRejection::RevocationUnknown => "revocation status unknown",
            CertRejection::Other => "certificate refused",
        })
    }
}

/// The data of a CERTREQ payload: the concatenated 20-byte hashes (RFC 7296 §3.7).
pub(crate) fn certreq_data(hashes: &[[u8; 20]]) -> Vec<u8> {
    hashes.iter().flatten().copied().collect()
}
