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
//! The private key comes from the caller's [`SecureRandom`], as the trait promises:
//! [`KxGroup::start`] draws exactly the key's bytes from `rng` (32 for X25519, the
//! scalar length for ECP: 32 for P-256, 48 for P-384), so a seeded source makes
//! handshakes reproducible and the known-answer vectors of the conformance suite
//! (RFC 7748, RFC 5903 §8) run against ring too.
//!
//! ring itself cannot take a key from us: its `rand::SecureRandom` trait is sealed, and
//! `agreement::EphemeralPrivateKey::generate` is the only way to make an agreement key.
//! The only implementors outside ring's own tests are `SystemRandom` and the fixed
//! sources of ring's `test::rand` module, which ring keeps public but **deprecated**
//! ("internal API that will be removed"). We hand the bytes drawn from `rng` to ring
//! through `test::rand::FixedSliceRandom`, which does nothing but copy them. This is
//! the one place the backend uses a deprecated ring API, on purpose:
//! - the alternative, generating keys with `ring::rand::SystemRandom` and ignoring
//!   `rng`, would break the provider contract ("the random source for nonces, SPIs,
//!   IVs and private keys") silently, make IKE tests irreproducible with the default
//!   provider, and put an OS randomness read into a library crate (style guide §0);
//! - the use is confined to `generate_private_key` below. `Cargo.lock` pins ring, and
//!   a ring release without the module fails to compile rather than misbehaving. The
//!   fallback then is `SystemRandom` with the trade-off above, documented here.
//!
//! For ECP, ring rejects a candidate scalar that is zero or not below the group order
//! (NSA Suite B guide, "key pair generation by testing candidates"). We then draw a
//! fresh candidate from `rng`, as ring would from its own source, up to
//! [`MAX_CANDIDATES`] times. For P-256 and P-384 a rejection has probability below
//! 2^-32, so with a real random source this never loops.
//!
//! ring keeps the private key in its own type, which it does not zeroize; our copy of
//! the drawn bytes is zeroized as soon as ring has it.

use alloc::boxed::Box;
use core::fmt;

use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecretBytes, SecureRandom, SharedSecret};
use ring::agreement::{self, EphemeralPrivateKey, PublicKey, UnparsedPublicKey};
use zeroize::Zeroizing;

/// SEC1 tag of an uncompressed point.
const SEC1_UNCOMPRESSED: u8 = 0x04;
/// The largest SEC1 uncompressed point we handle (P-384: 1 + 2 × 48).
const MAX_SEC1_LEN: usize = 1 + 96;
/// The longest private key we draw (P-384's 48-byte scalar).
const MAX_PRIVATE_LEN: usize = 48;
/// How many candidate private keys [`KxGroup::start`] draws before it gives up with
/// [`CryptoError::Random`] (ring's own limit).
pub const MAX_CANDIDATES: usize = 100;

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
    private_len: usize,
    encoding: Encoding,
}

impl RingKx {
    pub(crate) const fn x25519() -> Self {
        Self {
            id: KeId::CURVE25519,
            name: "Curve25519",
            alg: &agreement::X25519,
            public_len: 32,
            private_len: 32,
            encoding: Encoding::Raw,
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
            encoding: Encoding::EcpXy,
        }
    }
}

impl fmt::Debug for RingKx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ring)", self.name)
    }
}

impl RingKx {
    /// An ephemeral private key made from bytes of `rng`: see the
    /// [module docs](self#randomness) for why this goes through ring's deprecated
    /// fixed random source.
    #[allow(deprecated)]
    fn generate_private_key(
        &self,
        rng: &dyn SecureRandom,
    ) -> Result<EphemeralPrivateKey, CryptoError> {
        let mut seed = Zeroizing::new([0u8; MAX_PRIVATE_LEN]);
        let candidate = seed.get_mut(..self.private_len).ok_or(CryptoError::length(
            "private key",
            MAX_PRIVATE_LEN,
            self.private_len,
        ))?;
        for _ in 0..MAX_CANDIDATES {
            rng.fill(candidate)?;
            // `FixedSliceRandom` copies `bytes` into every buffer ring asks it to fill;
            // ring asks for exactly `private_len` bytes per candidate (and tries the
            // same candidate again on rejection, which fails again, so a rejected
            // candidate costs a few scalar comparisons).
            let fixed = ring::test::rand::FixedSliceRandom { bytes: candidate };
            if let Ok(key) = EphemeralPrivateKey::generate(self.alg, &fixed) {
                return Ok(key);
            }
        }
        Err(CryptoError::Random)
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
    /// Generates a key pair from bytes drawn from `rng`; see the
    /// [module docs](self#randomness).
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let private = self.generate_private_key(rng)?;
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
