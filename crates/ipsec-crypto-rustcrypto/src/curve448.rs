//! Curve448 key exchange for IKEv2 (RFC 8031, on RFC 7748's X448).
//!
//! The curve arithmetic is RustCrypto's `x448` crate (on `ed448-goldilocks`), the
//! X448 of the same project as the rest of this backend; it is still a pre-release,
//! so the workspace pins its version exactly (docs/architecture.md, "RustCrypto line").

use alloc::boxed::Box;

use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecureRandom, SharedSecret};
use subtle::ConstantTimeEq;
use x448::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::BACKEND;

/// Length of private keys, public values and shared secrets.
const LEN: usize = 56;

/// The Curve448 key exchange method; the instance is [`X448`].
#[derive(Debug)]
pub struct X448Group {
    _private: (),
}

/// Curve448 (KeId::CURVE448, RFC 8031): 56-byte public values.
pub static X448: X448Group = X448Group { _private: () };

impl KxGroup for X448Group {
    fn id(&self) -> KeId {
        KeId::CURVE448
    }

    fn public_len(&self) -> usize {
        LEN
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// The private key is 56 bytes drawn from `rng`, clamped as RFC 7748 §5 says.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; LEN]);
        rng.fill(bytes.as_mut())?;
        // `StaticSecret` clamps, and zeroizes itself on drop.
        let secret = StaticSecret::from(*bytes);
        let public = *PublicKey::from(&secret).as_bytes();
        Ok(Box::new(Active { secret, public }))
    }
}

/// An X448 exchange in progress.
struct Active {
    secret: StaticSecret,
    public: [u8; LEN],
}

impl ActiveKx for Active {
    fn group(&self) -> KeId {
        KeId::CURVE448
    }

    fn public(&self) -> &[u8] {
        &self.public
    }

    /// Any 56 bytes are a u-coordinate (RFC 7748 §5: non-canonical values are taken
    /// modulo p). RFC 8031 §2: "MUST check whether the computed Diffie-Hellman shared
    /// secret is the all-zero value and abort if so" — a peer value of small order.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let peer = PublicKey::from_bytes_unchecked(peer).ok_or(CryptoError::length(
            "public key",
            LEN,
            peer.len(),
        ))?;
        // `SharedSecret` zeroizes itself on drop.
        let shared = self.secret.diffie_hellman(&peer);
        if bool::from(shared.as_bytes().ct_eq(&[0u8; LEN])) {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(SharedSecret::from_slice(shared.as_bytes()))
    }
}
