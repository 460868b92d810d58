//! Curve25519 key exchange for IKEv2 (RFC 8031, on RFC 7748's X25519).

use alloc::boxed::Box;

use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecureRandom, SharedSecret};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::BACKEND;

/// Length of private keys, public values and shared secrets.
const LEN: usize = 32;

/// The Curve25519 key exchange method; the instance is [`X25519`].
#[derive(Debug)]
pub struct X25519Group {
    _private: (),
}

/// Curve25519 (KeId::CURVE25519, RFC 8031): 32-byte public values.
pub static X25519: X25519Group = X25519Group { _private: () };

impl KxGroup for X25519Group {
    fn id(&self) -> KeId {
        KeId::CURVE25519
    }

    fn public_len(&self) -> usize {
        LEN
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// The private key is 32 bytes drawn from `rng`, clamped as RFC 7748 §5 says.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; LEN]);
        rng.fill(bytes.as_mut())?;
        // `StaticSecret` zeroizes itself on drop (x25519-dalek's `zeroize` feature).
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Box::new(Active { secret, public }))
    }
}

/// An X25519 exchange in progress.
struct Active {
    secret: StaticSecret,
    public: [u8; LEN],
}

impl ActiveKx for Active {
    fn group(&self) -> KeId {
        KeId::CURVE25519
    }

    fn public(&self) -> &[u8] {
        &self.public
    }

    /// RFC 8031 §2: "MUST check whether the computed Diffie-Hellman shared secret is
    /// the all-zero value and abort if so" — a low-order peer value.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let peer: [u8; LEN] = peer
            .try_into()
            .map_err(|_| CryptoError::length("public key", LEN, peer.len()))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(SharedSecret::from_slice(shared.as_bytes()))
    }
}
