//! The provider traits.
//!
//! All of them are object safe, `Send + Sync + Debug`, and speak only in byte slices and
//! types of this crate, so a backend can change its crypto library without changing
//! this API. Keys are set once ([`AeadAlgorithm::new_key`] and its siblings) and then
//! used for many operations.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::error::CryptoError;
use crate::secret::SharedSecret;
use crate::{EncrId, IntegId, KeId, PrfId};

/// An AEAD algorithm (AES-GCM, ChaCha20-Poly1305).
///
/// The nonce is passed whole: building it from salt and explicit IV (RFC 4106 §4,
/// RFC 7634 §2) is the protocol layer's job.
pub trait AeadAlgorithm: Send + Sync + fmt::Debug {
    /// The transform id this algorithm implements.
    fn id(&self) -> EncrId;
    /// Key length in bytes, without any salt.
    fn key_len(&self) -> usize;
    /// Nonce length in bytes.
    fn nonce_len(&self) -> usize;
    /// Tag length in bytes.
    fn tag_len(&self) -> usize;
    /// The backend that implements it ("rustcrypto", "ring", ...).
    fn backend(&self) -> &'static str;
    /// Prepares a key.
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;
}

/// A keyed AEAD.
pub trait AeadKey: Send + Sync {
    /// Encrypts `data` in place and writes the tag to `tag`.
    fn seal_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Verifies `tag` and decrypts `data` in place. On failure `data` is unspecified
    /// and the error is [`CryptoError::Authentication`] (or a length error).
    fn open_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError>;
}

/// A block cipher mode for the non-combined ESP and IKE transforms (AES-CBC).
pub trait CipherAlgorithm: Send + Sync + fmt::Debug {
    /// The transform id.
    fn id(&self) -> EncrId;
    /// Key length in bytes.
    fn key_len(&self) -> usize;
    /// Block length: the data must be a multiple of it.
    fn block_len(&self) -> usize;
    /// IV length in bytes.
    fn iv_len(&self) -> usize;
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Prepares a key.
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn CipherKey>, CryptoError>;
}

/// A keyed cipher.
pub trait CipherKey: Send + Sync {
    /// Encrypts `data` (a multiple of the block length) in place.
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError>;
    /// Decrypts `data` (a multiple of the block length) in place.
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError>;
}

/// An integrity algorithm (truncated HMAC).
pub trait IntegAlgorithm: Send + Sync + fmt::Debug {
    /// The transform id.
    fn id(&self) -> IntegId;
    /// Key length in bytes.
    fn key_len(&self) -> usize;
    /// ICV length in bytes (after truncation).
    fn icv_len(&self) -> usize;
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Prepares a key.
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn IntegKey>, CryptoError>;
}

/// A keyed integrity algorithm. The input is given in parts so that, for example, the
/// ESN high bits can follow the packet without a copy.
pub trait IntegKey: Send + Sync {
    /// The ICV length this key produces.
    fn icv_len(&self) -> usize;

    /// Computes the ICV of the concatenation of `parts` into `icv`
    /// (exactly [`IntegKey::icv_len`] bytes).
    fn compute(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError>;

    /// Verifies an ICV in constant time.
    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        use subtle::ConstantTimeEq;
        let mut buf = [0u8; 64];
        let n = self.icv_len();
        CryptoError::check_len("tag", n, icv.len())?;
        let mine = buf.get_mut(..n).ok_or(CryptoError::length("tag", 64, n))?;
        self.compute(parts, mine)?;
        if bool::from(mine.ct_eq(icv)) {
            Ok(())
        } else {
            Err(CryptoError::Authentication)
        }
    }
}

/// A pseudo-random function (RFC 7296 §2.13), such as HMAC-SHA-256.
pub trait PrfAlgorithm: Send + Sync + fmt::Debug {
    /// The transform id.
    fn id(&self) -> PrfId;
    /// Output length in bytes.
    fn output_len(&self) -> usize;
    /// The preferred key length (RFC 7296 §2.14: SK_d, SK_pi and SK_pr have it).
    fn key_len(&self) -> usize {
        self.output_len()
    }
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Prepares a key. HMAC takes keys of any length.
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn PrfKey>, CryptoError>;

    /// The plain (unkeyed) hash an HMAC-based PRF is built on, over the concatenation
    /// of `parts`, into `out` (exactly [`PrfAlgorithm::output_len`] bytes). IKEv2 needs
    /// it in one place: the SHA-1 of the NAT_DETECTION_*_IP notifications
    /// (RFC 7296 §2.23), found through [`crate::CryptoProvider::sha1`].
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] (the default) for PRFs not built on a hash, or
    /// backends that do not offer it; a length error for a wrong `out`.
    fn hash(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        let _ = (parts, out);
        Err(CryptoError::Unsupported)
    }
}

/// A keyed PRF.
pub trait PrfKey: Send + Sync {
    /// Computes the PRF of the concatenation of `parts` into `out`
    /// (exactly the output length).
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError>;
}

/// A key exchange method: a Diffie-Hellman group or a KEM (RFC 9370 names both "key
/// exchange methods").
///
/// The initiator calls [`KxGroup::start`], sends [`ActiveKx::public`] and completes with
/// the responder's value. The responder calls [`KxGroup::respond`] with the initiator's
/// value and gets its own value to send back together with the shared secret; for a
/// Diffie-Hellman group that is a fresh key pair, for a KEM the encapsulation.
pub trait KxGroup: Send + Sync + fmt::Debug {
    /// The IANA key exchange method id.
    fn id(&self) -> KeId;
    /// Length of the initiator's public value in bytes.
    fn public_len(&self) -> usize;
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Starts an exchange as the initiator.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError>;
    /// Answers an exchange as the responder: returns our public value and the secret.
    fn respond(
        &self,
        rng: &dyn SecureRandom,
        peer: &[u8],
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        let kx = self.start(rng)?;
        let public = kx.public().to_vec();
        let secret = kx.complete(peer)?;
        Ok((public, secret))
    }
}

/// A key exchange in progress; completing it consumes the private key.
pub trait ActiveKx: Send {
    /// The group.
    fn group(&self) -> KeId;
    /// Our public value, as carried in the KE payload.
    fn public(&self) -> &[u8];
    /// Computes the shared secret from the peer's public value.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// A cryptographically secure random source.
pub trait SecureRandom: Send + Sync + fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// A signature scheme, by its RFC 7427 / TLS SignatureScheme style name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
    /// Ed25519 (RFC 8420).
    Ed25519,
    /// RSASSA-PSS with SHA-256.
    RsaPssSha256,
}

/// Verifies signatures of one scheme (for IKEv2 AUTH, RFC 7427).
pub trait SignatureVerifier: Send + Sync + fmt::Debug {
    /// The scheme.
    fn scheme(&self) -> SignatureScheme;
    /// Verifies `signature` over `message` with a public key in its usual encoding
    /// (SubjectPublicKeyInfo DER).
    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
}

/// A private signing key.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The scheme.
    fn scheme(&self) -> SignatureScheme;
    /// Signs `message`.
    fn sign(&self, rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}
