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

/// An AEAD algorithm (AES-GCM, ChaCha20-Poly1305, AES-CCM).
///
/// The nonce is passed whole: building it from salt and explicit IV (RFC 4106 §4,
/// RFC 7634 §2, RFC 4309 §4: an 11-byte nonce for CCM) is the protocol layer's job.
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

/// A block cipher mode for the non-combined ESP and IKE transforms (AES-CBC, AES-CTR).
///
/// For AES-CTR (RFC 3686) the key is the AES key alone and the IV is the whole 16-byte
/// initial counter block, whose last 32 bits count the blocks (big-endian, wrapping):
/// building it from the nonce in the key material and the explicit IV,
/// nonce ‖ IV ‖ 0x00000001 (RFC 3686 §4), is the protocol layer's job, as the AEAD
/// nonce is. Its block length is 1: any data length is accepted.
pub trait CipherAlgorithm: Send + Sync + fmt::Debug {
    /// The transform id.
    fn id(&self) -> EncrId;
    /// Key length in bytes.
    fn key_len(&self) -> usize;
    /// Block length: the data must be a multiple of it.
    fn block_len(&self) -> usize;
    /// IV length in bytes (for AES-CTR the counter block, 16).
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
///
/// For a KEM the two values differ in length (ML-KEM: the initiator's encapsulation key,
/// the responder's ciphertext; see [`crate::mlkem`]): [`KxGroup::public_len`] is the
/// initiator's, [`KxGroup::response_len`] the responder's.
pub trait KxGroup: Send + Sync + fmt::Debug {
    /// The IANA key exchange method id.
    fn id(&self) -> KeId;
    /// Length of the initiator's public value in bytes (the KE payload data of the
    /// request; a KEM's encapsulation key).
    fn public_len(&self) -> usize;
    /// Length of the responder's value in bytes (the KE payload data of the response):
    /// the same as [`KxGroup::public_len`] for a Diffie-Hellman group (the default), the
    /// ciphertext length for a KEM.
    fn response_len(&self) -> usize {
        self.public_len()
    }
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Starts an exchange as the initiator.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError>;
    /// Answers an exchange as the responder: returns our value
    /// ([`KxGroup::response_len`] bytes) and the secret. The default runs
    /// [`KxGroup::start`] and [`ActiveKx::complete`], as a Diffie-Hellman group does; a
    /// KEM overrides it with the encapsulation.
    ///
    /// # Errors
    /// [`CryptoError::Length`] or [`CryptoError::InvalidPublicValue`] for a peer value
    /// the group refuses (for ML-KEM, the FIPS 203 §7.2 checks), [`CryptoError::Random`].
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
    /// Computes the shared secret from the responder's value: its public value for a
    /// Diffie-Hellman group, the ciphertext for a KEM
    /// ([`KxGroup::response_len`] bytes).
    ///
    /// # Errors
    /// [`CryptoError::Length`] for a value of the wrong length,
    /// [`CryptoError::InvalidPublicValue`] for a value the group refuses.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// A cryptographically secure random source.
pub trait SecureRandom: Send + Sync + fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// A signature scheme: key type, hash and signature encoding, named like TLS
/// SignatureSchemes (RFC 8446 §4.2.3).
///
/// IKEv2 reaches them through AUTH methods (RFC 7296 §3.8, RFC 7427 §3):
///
/// | scheme | signature bytes | IKEv2 AUTH method |
/// |---|---|---|
/// | [`EcdsaP256Sha256`](Self::EcdsaP256Sha256), [`EcdsaP384Sha384`](Self::EcdsaP384Sha384) | DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3) | 14, `ecdsa-with-SHA256/384` (RFC 7427 §3) |
/// | [`EcdsaP256Sha256Fixed`](Self::EcdsaP256Sha256Fixed), [`EcdsaP384Sha384Fixed`](Self::EcdsaP384Sha384Fixed) | `r ‖ s`, each the field length (RFC 4754 §7) | 9, 10 (RFC 4754) |
/// | [`Ed25519`](Self::Ed25519) | 64 bytes (RFC 8032 §5.1.6) | 14, `id-Ed25519` (RFC 8420) |
/// | `RsaPkcs1Sha*` | RSASSA-PKCS1-v1_5, modulus length (RFC 8017 §8.2) | 14, `sha*WithRSAEncryption` (RFC 7427) |
/// | `RsaPssSha*` | RSASSA-PSS with MGF1 of the same hash and a salt of the hash length, modulus length (RFC 8017 §8.1) | 14, `id-RSASSA-PSS` (RFC 7427 §3, RFC 4055) |
/// | [`RsaPkcs1Sha1`](Self::RsaPkcs1Sha1) | RSASSA-PKCS1-v1_5 with SHA-1, modulus length (RFC 8017 §8.2) | 1, `RSA_SIG` (RFC 7296 §3.8); verification only |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// ECDSA on P-256 with SHA-256, DER-encoded signature.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384, DER-encoded signature.
    EcdsaP384Sha384,
    /// ECDSA on P-256 with SHA-256, `r ‖ s` signature (64 bytes).
    EcdsaP256Sha256Fixed,
    /// ECDSA on P-384 with SHA-384, `r ‖ s` signature (96 bytes).
    EcdsaP384Sha384Fixed,
    /// Ed25519 (RFC 8032, RFC 8420).
    Ed25519,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt.
    RsaPssSha512,
    /// RSASSA-PKCS1-v1_5 with SHA-1: the AUTH data of IKEv2 method 1 (`RSA_SIG`,
    /// RFC 7296 §3.8).
    ///
    /// **Verification only**: no backend offers a signer for it
    /// ([`is_verify_only`](Self::is_verify_only)). SHA-1 signatures are legacy (SHA-1
    /// is not collision resistant); we accept them only from peers that do not
    /// implement RFC 7427, and always sign with method 14 and a SHA-2 (or Ed25519)
    /// scheme ourselves.
    RsaPkcs1Sha1,
}

impl SignatureScheme {
    /// Every scheme, for tables and tests.
    pub const ALL: [SignatureScheme; 12] = [
        SignatureScheme::EcdsaP256Sha256,
        SignatureScheme::EcdsaP384Sha384,
        SignatureScheme::EcdsaP256Sha256Fixed,
        SignatureScheme::EcdsaP384Sha384Fixed,
        SignatureScheme::Ed25519,
        SignatureScheme::RsaPkcs1Sha256,
        SignatureScheme::RsaPkcs1Sha384,
        SignatureScheme::RsaPkcs1Sha512,
        SignatureScheme::RsaPssSha256,
        SignatureScheme::RsaPssSha384,
        SignatureScheme::RsaPssSha512,
        SignatureScheme::RsaPkcs1Sha1,
    ];

    /// A short name, as in the test vectors: `ecdsa-p256-sha256`, `rsa-pss-sha384`...
    pub const fn name(self) -> &'static str {
        match self {
            SignatureScheme::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureScheme::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureScheme::EcdsaP256Sha256Fixed => "ecdsa-p256-sha256-fixed",
            SignatureScheme::EcdsaP384Sha384Fixed => "ecdsa-p384-sha384-fixed",
            SignatureScheme::Ed25519 => "ed25519",
            SignatureScheme::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureScheme::RsaPkcs1Sha384 => "rsa-pkcs1-sha384",
            SignatureScheme::RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            SignatureScheme::RsaPssSha256 => "rsa-pss-sha256",
            SignatureScheme::RsaPssSha384 => "rsa-pss-sha384",
            SignatureScheme::RsaPssSha512 => "rsa-pss-sha512",
            SignatureScheme::RsaPkcs1Sha1 => "rsa-pkcs1-sha1",
        }
    }

    /// The scheme called `name` (see [`SignatureScheme::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The curve of an ECDSA scheme.
    pub const fn ec_curve(self) -> Option<crate::keys::EcCurve> {
        use crate::keys::EcCurve;
        match self {
            SignatureScheme::EcdsaP256Sha256 | SignatureScheme::EcdsaP256Sha256Fixed => {
                Some(EcCurve::P256)
            }
            SignatureScheme::EcdsaP384Sha384 | SignatureScheme::EcdsaP384Sha384Fixed => {
                Some(EcCurve::P384)
            }
            _ => None,
        }
    }

    /// Whether this is an RSA scheme (PKCS#1 v1.5 or PSS).
    pub const fn is_rsa(self) -> bool {
        matches!(
            self,
            SignatureScheme::RsaPkcs1Sha256
                | SignatureScheme::RsaPkcs1Sha384
                | SignatureScheme::RsaPkcs1Sha512
                | SignatureScheme::RsaPssSha256
                | SignatureScheme::RsaPssSha384
                | SignatureScheme::RsaPssSha512
                | SignatureScheme::RsaPkcs1Sha1
        )
    }

    /// Whether signing is randomized (ECDSA nonces, PSS salts), so that a known-answer
    /// test can only verify, not compare, what a backend signs. RustCrypto's ECDSA is
    /// deterministic (RFC 6979), ring's is not, so ECDSA counts as randomized.
    pub const fn is_randomized(self) -> bool {
        !matches!(
            self,
            SignatureScheme::Ed25519
                | SignatureScheme::RsaPkcs1Sha256
                | SignatureScheme::RsaPkcs1Sha384
                | SignatureScheme::RsaPkcs1Sha512
                | SignatureScheme::RsaPkcs1Sha1
        )
    }

    /// Whether the scheme is for verification only, so that no backend offers a
    /// [`SigningAlgorithm`] for it: [`RsaPkcs1Sha1`](Self::RsaPkcs1Sha1), the legacy
    /// AUTH method 1, accepted from peers without RFC 7427 but never used to sign.
    pub const fn is_verify_only(self) -> bool {
        matches!(self, SignatureScheme::RsaPkcs1Sha1)
    }
}

/// Verifies signatures of one scheme (for IKEv2 AUTH, RFC 7427).
///
/// Verification takes any bytes for key and signature: anything that is not a valid
/// signature of `message` under the key is an error, never a panic.
pub trait SignatureVerifier: Send + Sync + fmt::Debug {
    /// The scheme.
    fn scheme(&self) -> SignatureScheme;
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Verifies `signature` over `message` with a public key given as a DER
    /// SubjectPublicKeyInfo (the encodings of [`crate::keys::parse_spki`]).
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] when the signature does not verify or is
    /// malformed; [`CryptoError::InvalidKey`] when the key is malformed or not of this
    /// scheme's type (or curve); [`CryptoError::Unsupported`] for keys the parser
    /// does not take (other curves, RSA moduli outside 2048 to 8192 bits).
    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
}

/// Makes [`Signer`]s of one scheme from private keys.
pub trait SigningAlgorithm: Send + Sync + fmt::Debug {
    /// The scheme.
    fn scheme(&self) -> SignatureScheme;
    /// The backend that implements it.
    fn backend(&self) -> &'static str;
    /// Prepares a private key given as DER: PKCS#8, SEC1 `ECPrivateKey` or PKCS#1
    /// `RSAPrivateKey` (the encodings of [`crate::keys::parse_private_key`]). The
    /// signer keeps its own copy; the caller zeroizes `private_key`.
    ///
    /// `rng` is for backends that draw randomness when they set up a key (ring mixes
    /// a random value into the key it derives its ECDSA nonces from).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when the key is malformed, inconsistent (a public
    /// key that does not match) or not of this scheme's type;
    /// [`CryptoError::Unsupported`] when the backend cannot use it (ring signs with
    /// RSA keys of 2048 to 4096 bits only); [`CryptoError::Random`].
    fn new_signer(
        &self,
        private_key: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, CryptoError>;
}

/// A private signing key. `Debug` names the scheme and backend only; the key is
/// zeroized on drop where the backend allows (see each backend's docs).
pub trait Signer: Send + Sync + fmt::Debug {
    /// The scheme.
    fn scheme(&self) -> SignatureScheme;
    /// Signs `message`; `rng` gives the ECDSA nonce's randomness or the PSS salt.
    ///
    /// # Errors
    /// [`CryptoError::Random`] when `rng` fails.
    fn sign(&self, rng: &dyn SecureRandom, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}
