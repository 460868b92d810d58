//! [`CryptoProvider`]: the set of algorithms a stack may use.

use crate::suites::{EncrDesc, EncrKind};
use crate::traits::{
    AeadAlgorithm, CipherAlgorithm, IntegAlgorithm, KxGroup, PrfAlgorithm, SecureRandom,
    SignatureScheme, SignatureVerifier, SigningAlgorithm,
};
use crate::{EncrId, IntegId, KeId, PrfId};

/// Whether a provider claims a certification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compliance {
    /// No validation claimed.
    Unvalidated,
    /// Runs only FIPS 140-validated modules in approved modes.
    Fips,
}

/// The algorithms a stack may use, as `'static` trait objects.
///
/// A plain struct that can be built in a `const` and changed with struct-update syntax,
/// so an embedder composes providers transform by transform:
///
/// ```ignore
/// static MINE: CryptoProvider = CryptoProvider {
///     aeads: &[&ring::AES_128_GCM, &rustcrypto::AES_256_GCM],
///     ..rustcrypto::PROVIDER
/// };
/// ```
///
/// Lookups return the first algorithm in each list that implements a transform, so the
/// order of a list is the order of preference between backends.
#[derive(Debug, Clone, Copy)]
pub struct CryptoProvider {
    /// A name for logs and `ipsec suites`.
    pub name: &'static str,
    /// AEAD algorithms (also used for GMAC).
    pub aeads: &'static [&'static dyn AeadAlgorithm],
    /// Block ciphers for the non-combined transforms.
    pub ciphers: &'static [&'static dyn CipherAlgorithm],
    /// Integrity algorithms.
    pub integs: &'static [&'static dyn IntegAlgorithm],
    /// Pseudo-random functions.
    pub prfs: &'static [&'static dyn PrfAlgorithm],
    /// Key exchange methods.
    pub kx_groups: &'static [&'static dyn KxGroup],
    /// Signature verifiers (IKEv2 AUTH, RFC 7427).
    pub signature_verifiers: &'static [&'static dyn SignatureVerifier],
    /// Signing algorithms, which make [`crate::Signer`]s from private keys.
    pub signers: &'static [&'static dyn SigningAlgorithm],
    /// The random source for nonces, SPIs, IVs and private keys.
    pub secure_random: &'static dyn SecureRandom,
    /// What the provider claims.
    pub compliance: Compliance,
}

impl CryptoProvider {
    /// The AEAD for transform `id` with a key of `key_len` bytes.
    pub fn aead(&self, id: EncrId, key_len: usize) -> Option<&'static dyn AeadAlgorithm> {
        self.aeads
            .iter()
            .copied()
            .find(|a| a.id() == id && a.key_len() == key_len)
    }

    /// The block cipher for transform `id` with a key of `key_len` bytes (for AES-CTR:
    /// the AES key, without the nonce that follows it in the key material).
    pub fn cipher(&self, id: EncrId, key_len: usize) -> Option<&'static dyn CipherAlgorithm> {
        if id == EncrId::ENCR_NULL && key_len == 0 {
            return Some(&crate::null::NULL_CIPHER);
        }
        self.ciphers
            .iter()
            .copied()
            .find(|a| a.id() == id && a.key_len() == key_len)
    }

    /// The integrity algorithm for transform `id`.
    pub fn integ(&self, id: IntegId) -> Option<&'static dyn IntegAlgorithm> {
        self.integs.iter().copied().find(|a| a.id() == id)
    }

    /// The PRF for transform `id`.
    pub fn prf(&self, id: PrfId) -> Option<&'static dyn PrfAlgorithm> {
        self.prfs.iter().copied().find(|a| a.id() == id)
    }

    /// SHA-1 of the concatenation of `parts`, computed by the hash under this
    /// provider's PRF_HMAC_SHA1 ([`PrfAlgorithm::hash`]). IKEv2 uses it only for the
    /// NAT_DETECTION_*_IP notifications (RFC 7296 §2.23), where it hides addresses
    /// rather than protecting anything.
    ///
    /// # Errors
    /// [`crate::CryptoError::Unsupported`] when the provider has no PRF_HMAC_SHA1 or
    /// its backend does not expose the hash.
    pub fn sha1(&self, parts: &[&[u8]]) -> Result<[u8; 20], crate::CryptoError> {
        let prf = self
            .prf(PrfId::PRF_HMAC_SHA1)
            .ok_or(crate::CryptoError::Unsupported)?;
        let mut out = [0u8; 20];
        prf.hash(parts, &mut out)?;
        Ok(out)
    }

    /// The verifier for `scheme`.
    pub fn signature_verifier(
        &self,
        scheme: SignatureScheme,
    ) -> Option<&'static dyn SignatureVerifier> {
        self.signature_verifiers
            .iter()
            .copied()
            .find(|v| v.scheme() == scheme)
    }

    /// The signing algorithm for `scheme`; always `None` for a verification-only
    /// scheme ([`SignatureScheme::is_verify_only`]), even if a provider lists one.
    pub fn signing_algorithm(
        &self,
        scheme: SignatureScheme,
    ) -> Option<&'static dyn SigningAlgorithm> {
        if scheme.is_verify_only() {
            return None;
        }
        self.signers.iter().copied().find(|s| s.scheme() == scheme)
    }

    /// The key exchange method `id`.
    pub fn kx(&self, id: KeId) -> Option<&'static dyn KxGroup> {
        self.kx_groups.iter().copied().find(|a| a.id() == id)
    }

    /// The AES-GCM algorithm that runs AES-GMAC (RFC 4543; ESP's
    /// ENCR_NULL_AUTH_AES_GMAC and AH's AUTH_AES_*_GMAC) with a key of `key_len` bytes:
    /// one registered under ENCR_NULL_AUTH_AES_GMAC if the provider has it, else its
    /// ENCR_AES_GCM_16 one. GMAC puts all input in the AAD, where backends' speeds
    /// differ from their combined encrypt-and-hash AES-GCM, hence the separate slot.
    pub fn gmac(&self, key_len: usize) -> Option<&'static dyn AeadAlgorithm> {
        self.aead(EncrId::ENCR_NULL_AUTH_AES_GMAC, key_len)
            .or_else(|| self.aead(EncrId::ENCR_AES_GCM_16, key_len))
    }

    /// The AEAD that runs an AEAD or GMAC transform: GMAC (RFC 4543) is AES-GCM with
    /// all input in the AAD, so it uses an AES-GCM algorithm of the same key size: one
    /// registered under ENCR_NULL_AUTH_AES_GMAC if the provider has it, else its
    /// ENCR_AES_GCM_16 one.
    pub fn aead_for(&self, d: &EncrDesc) -> Option<&'static dyn AeadAlgorithm> {
        match d.kind {
            EncrKind::Aead => self.aead(d.id, d.key_len()),
            // GMAC is AES-GCM with all input as AAD. An AEAD registered under the GMAC
            // id comes first, so that a provider can run GMAC on another backend than
            // GCM (their speeds differ: docs/performance.md, AH); else AES-GCM.
            EncrKind::Gmac => self.gmac(d.key_len()),
            EncrKind::Cbc | EncrKind::Null | EncrKind::Ctr => None,
        }
    }

    /// Whether this provider can run the encryption transform `d`.
    pub fn supports_encr(&self, d: &EncrDesc) -> bool {
        match d.kind {
            EncrKind::Aead | EncrKind::Gmac => self.aead_for(d).is_some(),
            EncrKind::Cbc | EncrKind::Null | EncrKind::Ctr => {
                self.cipher(d.id, d.key_len()).is_some()
            }
        }
    }

    /// The backend that runs the encryption transform `d`, if any.
    pub fn encr_backend(&self, d: &EncrDesc) -> Option<&'static str> {
        match d.kind {
            EncrKind::Aead | EncrKind::Gmac => self.aead_for(d).map(|a| a.backend()),
            EncrKind::Cbc | EncrKind::Null | EncrKind::Ctr => {
                self.cipher(d.id, d.key_len()).map(|a| a.backend())
            }
        }
    }
}
