//! Diffie-Hellman on `aws_lc_rs::agreement`: Curve25519 (RFC 8031) and the NIST ECP
//! groups 19 and 20 (RFC 5903).
//!
//! # Encodings
//! IKEv2 carries an ECP public value as `x ‖ y` without the SEC1 `0x04` prefix
//! (RFC 5903 §7), and the shared secret is the x coordinate (RFC 5903 §9). aws-lc-rs
//! speaks SEC1 uncompressed points and returns the x coordinate, so this module strips
//! the prefix from our value and adds it to the peer's. AWS-LC checks that the peer's
//! point is on the curve and, for X25519, refuses the all-zero result of a small-order
//! point (RFC 7748 §6.1, RFC 8031 §2.2); both come out as
//! [`CryptoError::InvalidPublicValue`].
//!
//! # Randomness
//! The private key is built from bytes drawn from the caller's [`SecureRandom`]
//! (`agreement::PrivateKey::from_private_key`): 32 for X25519, the big-endian scalar
//! for ECP (32 bytes for P-256, 48 for P-384), so seeded providers are reproducible and
//! the conformance suite's RFC 7748 / RFC 5903 vectors run here too. An ECP candidate
//! of zero or not below the group order is refused by AWS-LC; we then draw again, up to
//! [`MAX_CANDIDATES`] times (a rejection has probability below 2^-32).
//!
//! Our copy of the drawn bytes is zeroized as soon as AWS-LC has the key; AWS-LC
//! clears the key's memory when it frees it.

use alloc::boxed::Box;
use core::fmt;

use aws_lc_rs::agreement::{self, PrivateKey, PublicKey, UnparsedPublicKey};
use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecretBytes, SecureRandom, SharedSecret};
use zeroize::Zeroizing;

/// SEC1 tag of an uncompressed point.
const SEC1_UNCOMPRESSED: u8 = 0x04;
/// The largest SEC1 uncompressed point we handle (P-384: 1 + 2 × 48).
const MAX_SEC1_LEN: usize = 1 + 96;
/// The longest private key we draw (P-384's 48-byte scalar).
const MAX_PRIVATE_LEN: usize = 48;
/// How many candidate ECP private keys [`KxGroup::start`] draws before it gives up
/// with [`CryptoError::Random`].
pub const MAX_CANDIDATES: usize = 100;

/// A Diffie-Hellman group implemented by aws-lc-rs: the statics
/// [`X25519`](crate::X25519), [`ECP256`](crate::ECP256) and [`ECP384`](crate::ECP384).
pub struct AwsLcKx {
    id: KeId,
    name: &'static str,
    alg: &'static agreement::Algorithm,
    public_len: usize,
    private_len: usize,
    /// Bytes of aws-lc-rs's public key encoding the KE payload leaves out (the SEC1
    /// prefix of an ECP point).
    offset: usize,
}

impl AwsLcKx {
    pub(crate) const fn x25519() -> Self {
        Self {
            id: KeId::CURVE25519,
            name: "Curve25519",
            alg: &agreement::X25519,
            public_len: 32,
            private_len: 32,
            offset: 0,
        }
    }

    pub(crate) const fn ecp(
        id: KeId,
        name: &'static str,
        alg: &'static agreement::Algorithm,
        coord_len: usize,
    ) -> Self {
        Self {
            id,
            name,
            alg,
            public_len: 2 * coord_len,
            private_len: coord_len,
            offset: 1,
        }
    }

    /// A private key from bytes of `rng` (see the [module docs](self#randomness)).
    fn private_key(&self, rng: &dyn SecureRandom) -> Result<PrivateKey, CryptoError> {
        let mut seed = Zeroizing::new([0u8; MAX_PRIVATE_LEN]);
        let candidate = seed.get_mut(..self.private_len).ok_or(CryptoError::length(
            "private key",
            MAX_PRIVATE_LEN,
            self.private_len,
        ))?;
        for _ in 0..MAX_CANDIDATES {
            rng.fill(candidate)?;
            if let Ok(key) = PrivateKey::from_private_key(self.alg, candidate) {
                return Ok(key);
            }
        }
        Err(CryptoError::Random)
    }
}

impl fmt::Debug for AwsLcKx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (aws-lc)", self.name)
    }
}

impl KxGroup for AwsLcKx {
    fn id(&self) -> KeId {
        self.id
    }
    fn public_len(&self) -> usize {
        self.public_len
    }
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }
    /// Generates a key pair from bytes drawn from `rng`; see the
    /// [module docs](self#randomness).
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let private = self.private_key(rng)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::Random)?;
        // Check the encoding once here so that `public()` cannot fail later.
        let bytes = public.as_ref();
        let ok = bytes.len() == self.offset + self.public_len
            && (self.offset == 0 || bytes.first() == Some(&SEC1_UNCOMPRESSED));
        if !ok {
            return Err(CryptoError::length(
                "public key",
                self.public_len,
                bytes.len(),
            ));
        }
        Ok(Box::new(Active {
            id: self.id,
            alg: self.alg,
            public_len: self.public_len,
            offset: self.offset,
            private,
            public,
        }))
    }
}

/// An exchange in progress: the private key and our public value.
struct Active {
    id: KeId,
    alg: &'static agreement::Algorithm,
    public_len: usize,
    offset: usize,
    private: PrivateKey,
    public: PublicKey,
}

impl ActiveKx for Active {
    fn group(&self) -> KeId {
        self.id
    }

    fn public(&self) -> &[u8] {
        self.public.as_ref().get(self.offset..).unwrap_or_default()
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        CryptoError::check_len("public key", self.public_len, peer.len())?;
        let mut sec1 = [0u8; MAX_SEC1_LEN];
        let encoded: &[u8] = if self.offset == 0 {
            peer
        } else {
            let buf = sec1.get_mut(..peer.len() + 1).ok_or(CryptoError::length(
                "public key",
                MAX_SEC1_LEN - 1,
                peer.len(),
            ))?;
            let (tag, xy) = buf.split_at_mut(1);
            tag.fill(SEC1_UNCOMPRESSED);
            xy.copy_from_slice(peer);
            buf
        };
        agreement::agree(
            &self.private,
            UnparsedPublicKey::new(self.alg, encoded),
            CryptoError::InvalidPublicValue,
            |secret| Ok(SecretBytes::from_slice(secret)),
        )
    }
}
