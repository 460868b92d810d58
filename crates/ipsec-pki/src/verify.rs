//! The certificate verifier behind `ipsec_ike::VerifiesPeerCert`: path building and
//! signatures with rustls-webpki, the RFC 4945 profile and identity binding with
//! x509-cert.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ipsec_core::Instant;
use ipsec_ike::{CertRejection, Identity, VerifiesPeerCert};
use ipsec_ike_wire::IdType;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage as X509KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::error::PkiError;
use crate::names::{ca_key_hash, same_dn, sans};

/// The most certificates of a peer looked at: the end entity and seven
/// intermediates. Further CERT payloads are ignored.
pub const MAX_PEER_CERTS: usize = 8;

/// Maps the IKE endpoint's monotonic clock to wall-clock time for certificate
/// validity (RFC 5280 §4.1.2.5).
pub trait WallClock: Send + Sync {
    /// Seconds since the Unix epoch at the endpoint time `now`.
    fn unix_time(&self, now: Instant) -> u64;
}

/// The system's wall clock: the one place this crate reads the time
/// (`std::time::SystemTime`); `now` is ignored. The default of [`CertVerifier`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn unix_time(&self, _now: Instant) -> u64 {
        // Certificate validity is defined in wall-clock time, which the IKE
        // endpoint's monotonic `Instant` does not carry.
        #[allow(clippy::disallowed_methods)]
        let t = std::time::SystemTime::now();
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A fixed wall-clock time in seconds since the Unix epoch, whatever `now` is: for
/// tests and for replaying a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl WallClock for FixedClock {
    fn unix_time(&self, _now: Instant) -> u64 {
        self.0
    }
}

/// id-kp-ipsecIKE (RFC 4945 §5.1.3.12), 1.3.6.1.5.5.7.3.17.
const EKU_IPSEC_IKE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11];
/// anyExtendedKeyUsage (RFC 5280 §4.2.1.12), 2.5.29.37.0.
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
/// id-kp-serverAuth (RFC 5280 §4.2.1.12), 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth (RFC 5280 §4.2.1.12), 1.3.6.1.5.5.7.3.2.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// The purposes accepted in an end entity's EKU, most specific first.
const ACCEPTED_EKUS: [&[u8]; 4] = [EKU_IPSEC_IKE, EKU_ANY, EKU_SERVER_AUTH, EKU_CLIENT_AUTH];

/// Verifies a peer's certificates against configured trust anchors (RFC 7296 §3.6,
/// RFC 4945 §5), the implementation of `ipsec_ike::VerifiesPeerCert`; see the
/// [crate docs](crate) for the rules.
pub struct CertVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    anchor_hashes: Vec<[u8; 20]>,
    /// Each anchor's validity (notBefore, notAfter) in Unix seconds.
    anchor_validity: Vec<(u64, u64)>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    clock: Arc<dyn WallClock>,
}

impl fmt::Debug for CertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertVerifier")
            .field("trust_anchors", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crls.len())
            .finish_non_exhaustive()
    }
}

impl CertVerifier {
    /// A verifier trusting the CA certificates `trust_anchors` (DER), as swanctl's
    /// `x509ca/` holds them, with the [`SystemClock`], no CRLs and no local
    /// intermediates.
    ///
    /// # Errors
    /// [`PkiError::BadCertificate`] if a trust anchor does not parse.
    pub fn new(trust_anchors: Vec<Vec<u8>>) -> Result<Self, PkiError> {
        let mut anchors = Vec::with_capacity(trust_anchors.len());
        let mut anchor_hashes = Vec::with_capacity(trust_anchors.len());
        let mut anchor_validity = Vec::with_capacity(trust_anchors.len());
        for der in &trust_anchors {
            anchor_hashes.push(ca_key_hash(der)?);
            let validity = crate::names::parse_cert(der)?.tbs_certificate.validity;
            anchor_validity.push((
                validity.not_before.to_unix_duration().as_secs(),
                validity.not_after.to_unix_duration().as_secs(),
            ));
            let cert = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
            anchors.push(anchor.to_owned());
        }
        Ok(CertVerifier {
            anchors,
            anchor_hashes,
            anchor_validity,
            intermediates: Vec::new(),
            crls: Vec::new(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Adds certificate revocation lists (DER, RFC 5280 §5). With any loaded, the
    /// whole chain is checked; a certificate whose issuer has no CRL here is accepted
    /// (strongSwan's default), and a CRL past its nextUpdate is still used.
    ///
    /// # Errors
    /// [`PkiError::BadCrl`] if a CRL does not parse.
    pub fn with_crls(mut self, crls: Vec<Vec<u8>>) -> Result<Self, PkiError> {
        for der in &crls {
            let crl = OwnedCertRevocationList::from_der(der)
                .map_err(|e| PkiError::BadCrl(e.to_string()))?;
            self.crls.push(CertRevocationList::from(crl));
        }
        Ok(self)
    }

    /// Replaces the clock that gives the verification time (default [`SystemClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds intermediate CA certificates (DER) known locally, used to build paths
    /// beside those the peer sends (swanctl's `x509ca/` may hold intermediates).
    pub fn with_intermediates(mut self, certs: Vec<Vec<u8>>) -> Self {
        self.intermediates
            .extend(certs.into_iter().map(CertificateDer::from));
        self
    }

    fn check(
        &self,
        certs: &[&[u8]],
        peer_id: &Identity,
        now: Instant,
    ) -> Result<Vec<u8>, CertRejection> {
        let ee_der = *certs.first().ok_or(CertRejection::Malformed)?;
        let parsed = Certificate::from_der(ee_der).map_err(|_| CertRejection::Malformed)?;
        let eku = required_eku(&parsed)?;

        let ee_cert = CertificateDer::from(ee_der);
        let ee = EndEntityCert::try_from(&ee_cert).map_err(map_webpki)?;
        let mut intermediates: Vec<CertificateDer<'_>> = certs
            .iter()
            .skip(1)
            .take(MAX_PEER_CERTS - 1)
            .map(|c| CertificateDer::from(*c))
            .collect();
        intermediates.extend(
            self.intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );

        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build()
        });
        let unix = self.clock.unix_time(now);
        let time = UnixTime::since_unix_epoch(Duration::from_secs(unix));
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                time,
                eku,
                revocation,
                None,
            )
            .map_err(map_webpki)?;
        // webpki does not look at the trust anchor's own validity; strongSwan does.
        let anchor = self
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, path.anchor()));
        if let Some((not_before, not_after)) = anchor.and_then(|i| self.anchor_validity.get(i)) {
            if unix < *not_before {
                return Err(CertRejection::NotYetValid);
            }
            if unix > *not_after {
                return Err(CertRejection::Expired);
            }
        }
        check_key_usage(&parsed)?;
        check_identity(&parsed, peer_id)?;
        Ok(path
            .end_entity()
            .subject_public_key_info()
            .as_ref()
            .to_vec())
    }
}

impl VerifiesPeerCert for CertVerifier {
    fn verify(
        &self,
        certs: &[&[u8]],
        peer_id: &Identity,
        now: Instant,
    ) -> Result<Vec<u8>, CertRejection> {
        self.check(certs, peer_id, now)
    }

    fn ca_key_hashes(&self) -> Vec<[u8; 20]> {
        self.anchor_hashes.clone()
    }
}

/// The EKU webpki is to require of each certificate in the path that has an EKU,
/// chosen from the end entity's EKU extension (RFC 4945 §5.1.3.12 widened as the
/// crate docs say).
///
/// # Errors
/// [`CertRejection::Malformed`] if the extension does not parse.
fn required_eku(cert: &Certificate) -> Result<KeyUsage, CertRejection> {
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return Ok(KeyUsage::required_if_present(EKU_IPSEC_IKE));
    };
    let mut present = Vec::new();
    for ext in exts.iter().filter(|e| e.extn_id == ExtendedKeyUsage::OID) {
        let eku = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
            .map_err(|_| CertRejection::Malformed)?;
        present.extend(eku.0);
    }
    if present.is_empty() {
        return Ok(KeyUsage::required_if_present(EKU_IPSEC_IKE));
    }
    // None accepted: require id-kp-ipsecIKE, which webpki then finds missing
    // (CertRejection::KeyUsage) after its own checks of the certificate (validity).
    Ok(ACCEPTED_EKUS
        .iter()
        .find(|want| present.iter().any(|oid| oid.as_bytes() == **want))
        .map_or(KeyUsage::required_if_present(EKU_IPSEC_IKE), |want| {
            KeyUsage::required_if_present(want)
        }))
}

/// RFC 4945 §5.1.3.2: a keyUsage on the end entity must allow digitalSignature or
/// nonRepudiation.
fn check_key_usage(cert: &Certificate) -> Result<(), CertRejection> {
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return Ok(());
    };
    for ext in exts.iter().filter(|e| e.extn_id == X509KeyUsage::OID) {
        let ku = X509KeyUsage::from_der(ext.extn_value.as_bytes())
            .map_err(|_| CertRejection::Malformed)?;
        if !(ku.0.contains(KeyUsages::DigitalSignature) || ku.0.contains(KeyUsages::NonRepudiation))
        {
            return Err(CertRejection::KeyUsage);
        }
    }
    Ok(())
}

/// RFC 4945 §3.1, §3.2: the peer's identity must be a subjectAltName of the end
/// entity, or its subject for a DN identity.
fn check_identity(cert: &Certificate, peer_id: &Identity) -> Result<(), CertRejection> {
    let bound = match peer_id {
        Identity::Fqdn(name) => {
            let name = name.trim_end_matches('.');
            sans(cert).map_err(|_| CertRejection::Malformed)?.iter().any(|gn| {
                matches!(gn, GeneralName::DnsName(d)
                    if d.as_str().trim_end_matches('.').eq_ignore_ascii_case(name))
            })
        }
        Identity::Rfc822(addr) => sans(cert).map_err(|_| CertRejection::Malformed)?.iter().any(|gn| {
            matches!(gn, GeneralName::Rfc822Name(d) if d.as_str().eq_ignore_ascii_case(addr))
        }),
        Identity::Ipv4(_) | Identity::Ipv6(_) => {
            let want = peer_id.data();
            sans(cert).map_err(|_| CertRejection::Malformed)?.iter().any(|gn| {
                matches!(gn, GeneralName::IpAddress(o) if o.as_bytes() == want.as_slice())
            })
        }
        Identity::Other { id_type, data } if *id_type == IdType::ID_DER_ASN1_DN => {
            same_dn(data, &cert.tbs_certificate.subject)
        }
        _ => false,
    };
    if bound {
        Ok(())
    } else {
        Err(CertRejection::IdMismatch)
    }
}

/// rustls-webpki's error as the IKE layer's reason. The deprecated unit variants are
/// still produced by some paths of the 0.103 series.
#[allow(deprecated)]
fn map_webpki(e: webpki::Error) -> CertRejection {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => CertRejection::Expired,
        E::CertNotValidYet { .. } => CertRejection::NotYetValid,
        E::UnknownIssuer => CertRejection::UnknownIssuer,
        E::CertRevoked => CertRejection::Revoked,
        E::InvalidSignatureForPublicKey | E::SignatureAlgorithmMismatch => {
            CertRejection::BadChainSignature
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertRejection::UnsupportedAlgorithm
        }
        E::RequiredEkuNotFound
        | E::RequiredEkuNotFoundContext(_)
        | E::EmptyEkuExtension
        | E::CaUsedAsEndEntity
        | E::EndEntityUsedAsCa => CertRejection::KeyUsage,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::UnsupportedCertVersion => CertRejection::Malformed,
        E::UnknownRevocationStatus => CertRejection::RevocationUnknown,
        _ => CertRejection::Other,
    }
}
