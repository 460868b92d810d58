//! Key exchange on `ring::agreement`: Curve25519 (RFC 8031) and the NIST ECP groups
//! 19 and 20 (RFC 5903).
//!
//! # Encodings
//! IKEv2 carries an ECP public value as `x ‖ y`, each coordinate a fixed-length
//! big-endian field element, without the SEC1 `0x04` prefix (RFC 5903 §7), and the
//! shared secret is the x coordinate alone (RFC 5903 §9). ring speaks SEC1
//! uncompressed points (`0x04 ‖ x ‖ y`) and returns the x coordinate, so this module
//! strips the prefix from our public value and adds it to the peer's. ring validates
//! the peer's point (on the curve, not the point at infinity) and, for X25519, rejects
//! an all-zero result from a small-order point (RFC 7748 §6.1, RFC 8031 §2.2); both
//! come out as [`CryptoError::InvalidPublicValue`].
//!
//! # Randomness
//! ring's `rand::SecureRandom` trait is sealed: outside ring only
//! `ring::rand::SystemRandom` implements it (plus deprecated, test-only fixed sources).
//! So ring cannot draw an ephemeral private key from the caller's
//! [`SecureRandom`], and these groups **ignore the `rng`
//! argument** of [`KxGroup::start`] and [`KxGroup::respond`]: the private key always
//! comes from the operating system's CSPRNG through ring. Two consequences:
//! - A seeded random source does not make exchanges with these groups reproducible.
//!   Tests that need byte-for-byte reproducible handshakes use the RustCrypto groups
//!   (`ipsec-crypto-rustcrypto`), which take the key from `rng`; a provider can use
//!   them for key exchange and ring for everything else.
//! - This is the one place where a library crate of the workspace reaches the OS
//!   random source without going through `CryptoProvider::secure_random`. It is
//!   confined to this backend; an embedder who must control every random byte picks
//!   other groups.

use alloc::boxed::Box;
use core::fmt;

use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecretBytes, SecureRandom, SharedSecret};
use ring::agreement::{self, EphemeralPrivateKey, PublicKey, UnparsedPublicKey};
use ring::rand::SystemRandom;

/// SEC1 tag of an uncompressed point.
const SEC1_UNCOMPRESSED: u8 = 0x04;
/// The largest SEC1 uncompressed point we handle (P-384: 1 + 2 × 48).
const MAX_SEC1_LEN: usize = 1 + 96;

/// How a group encodes its public value in the KE payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// The public value is ring's encoding as it is (X25519, RFC 8031 §2).
    Raw,
    /// ring's SEC1 uncompressed point without the `0x04` prefix (RFC 5903 §7).
    EcpXy,
}

/// A key exchange method implemented by ring.
///
/// The values of this type are the statics [`X25519`](crate::X25519),
/// [`ECP256`](crate::ECP256) and [`ECP384`](crate::ECP384); use them through
/// [`KxGroup`]. See the [module docs](self) for how they use randomness.
pub struct RingKx {
    id: KeId,
    name: &'static str,
    alg: &'static agreement::Algorithm,
    public_len: usize,
    encoding: Encoding,
}

impl RingKx {
    pub(crate) const fn x25519() -> Self {
        RingKx {
            id: KeId::CURVE25519,
            name: "Curve25519",
            alg: &agreement::X25519,
            public_len: 32,
            encoding: Encoding::Raw,
        }
    }

    pub(crate) const fn ecp(
        id: KeId,
        name: &'static str,
        alg: &'static agreement::Algorithm,
        coord_len: usize,
    ) -> Self {
        RingKx {
            id,
            name,
            alg,
            public_len: 2 * coord_len,
            encoding: Encoding::EcpXy,
        }
    }
}

impl fmt::Debug for RingKx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl KxGroup for RingKx {
    fn id(&self) -> KeId {
        self.id
    }
    fn public_len(&self) -> usize {
        self.public_len
    }
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }
    /// Generates a key pair. `rng` is not used: see the [module docs](self).
    fn start(&self, _rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let private = EphemeralPrivateKey::generate(self.alg, &SystemRandom::new())
            .map_err(|_| CryptoError::Random)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::Random)?;
        let offset = match self.encoding {
            Encoding::Raw => 0,
            Encoding::EcpXy => 1,
        };
        // Guard the encoding assumption once here so `public()` cannot fail later.
        let ok = match self.encoding {
            Encoding::Raw => public.as_ref().len() == self.public_len,
            Encoding::EcpXy => {
                public.as_ref().len() == 1 + self.public_len
                    && public.as_ref().first() == Some(&SEC1_UNCOMPRESSED)
            }
        };
        if !ok {
            return Err(CryptoError::length(
                "public key",
                self.public_len,
                public.as_ref().len(),
            ));
        }
        Ok(Box::new(RingActiveKx {
            id: self.id,
            alg: self.alg,
            public_len: self.public_len,
            encoding: self.encoding,
            private,
            public,
            offset,
        }))
    }
}

/// An exchange in progress: the ephemeral private key and our public value.
struct RingActiveKx {
    id: KeId,
    alg: &'static agreement::Algorithm,
    public_len: usize,
    encoding: Encoding,
    private: EphemeralPrivateKey,
    public: PublicKey,
    /// Bytes of ring's public key encoding that the KE payload leaves out.
    offset: usize,
}

impl ActiveKx for RingActiveKx {
    fn group(&self) -> KeId {
        self.id
    }

    fn public(&self) -> &[u8] {
        self.public.as_ref().get(self.offset..).unwrap_or_default()
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        CryptoError::check_len("public key", self.public_len, peer.len())?;
        let mut sec1 = [0u8; MAX_SEC1_LEN];
        let encoded: &[u8] = match self.encoding {
            Encoding::Raw => peer,
            Encoding::EcpXy => {
                let n = peer.len() + 1;
                let buf = sec1.get_mut(..n).ok_or(CryptoError::length(
                    "public key",
                    MAX_SEC1_LEN - 1,
                    peer.len(),
                ))?;
                let (tag, xy) = buf.split_at_mut(1);
                tag.fill(SEC1_UNCOMPRESSED);
                xy.copy_from_slice(peer);
                buf
            }
        };
        agreement::agree_ephemeral(
            self.private,
            &UnparsedPublicKey::new(self.alg, encoded),
            SecretBytes::from_slice,
        )
        .map_err(|_| CryptoError::InvalidPublicValue)
    }
}
