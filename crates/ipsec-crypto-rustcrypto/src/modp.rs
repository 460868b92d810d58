//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups 14 (2048-bit),
//! 15 (3072-bit) and 16 (4096-bit), generator 2.
//!
//! Public values and shared secrets are big-endian and left-padded with zeros to the
//! length of the prime (RFC 7296 §3.4; RFC 2631 §2.1.2 for the secret).
//!
//! The exponentiations use crypto-bigint's [`DynResidue::pow_bounded_exp`]: Montgomery
//! arithmetic on fixed-size limbs with a fixed 4-bit window, where every window costs
//! the same squarings and one multiplication, and the table entry is picked by a
//! constant-time select over all 16 entries. Its running time depends on the exponent
//! *bound*, which is public, not on the exponent's bits.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, Uint, Zero, U2048, U3072, U4096, U512};
use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecureRandom, SharedSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::BACKEND;

/// Length of private exponents in bits.
///
/// NIST SP 800-56A Rev. 3 §5.6.1.1.1 allows, and RFC 3526 §8 discusses, exponents of
/// at least twice the group's security strength (MODP-2048: 112 bits, MODP-3072:
/// 128 bits, MODP-4096: 152 bits by SP 800-56B's estimate, so at least 304). 512 bits
/// is more than that and keeps the exponentiation 4 to 8 times faster than a
/// full-length exponent.
const EXP_BITS: usize = 512;

/// How often a private exponent below 2 is drawn again before giving up.
const MAX_DRAWS: usize = 16;

/// The RFC 3526 §3 2048-bit prime, `2^2048 - 2^1984 - 1 + 2^64 * ([2^1918 pi] + 124476)`.
const P2048: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The RFC 3526 §4 3072-bit prime, `2^3072 - 2^3008 - 1 + 2^64 * ([2^2942 pi] + 1690314)`.
const P3072: U3072 = U3072::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
));

/// The RFC 3526 §5 4096-bit prime, `2^4096 - 2^4032 - 1 + 2^64 * ([2^3966 pi] + 240904)`.
const P4096: U4096 = U4096::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
));

/// Which prime a [`ModpGroup`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prime {
    P2048,
    P3072,
    P4096,
}

/// A MODP Diffie-Hellman group; the instances are [`MODP2048`], [`MODP3072`] and
/// [`MODP4096`].
#[derive(Debug)]
pub struct ModpGroup {
    prime: Prime,
}

/// 2048-bit MODP group (KeId::MODP_2048, group 14, RFC 3526 §3): 256-byte values.
pub static MODP2048: ModpGroup = ModpGroup {
    prime: Prime::P2048,
};
/// 3072-bit MODP group (KeId::MODP_3072, group 15, RFC 3526 §4): 384-byte values.
pub static MODP3072: ModpGroup = ModpGroup {
    prime: Prime::P3072,
};
/// 4096-bit MODP group (KeId::MODP_4096, group 16, RFC 3526 §5): 512-byte values.
pub static MODP4096: ModpGroup = ModpGroup {
    prime: Prime::P4096,
};

impl KxGroup for ModpGroup {
    fn id(&self) -> KeId {
        match self.prime {
            Prime::P2048 => KeId::MODP_2048,
            Prime::P3072 => KeId::MODP_3072,
            Prime::P4096 => KeId::MODP_4096,
        }
    }

    fn public_len(&self) -> usize {
        match self.prime {
            Prime::P2048 => 256,
            Prime::P3072 => 384,
            Prime::P4096 => 512,
        }
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// The private exponent is the big-endian number made of 64 bytes drawn from
    /// `rng` (drawn again if below 2).
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let id = self.id();
        let x = private_exponent(rng)?;
        Ok(match self.prime {
            Prime::P2048 => Box::new(Active::new(id, &P2048, x)),
            Prime::P3072 => Box::new(Active::new(id, &P3072, x)),
            Prime::P4096 => Box::new(Active::new(id, &P4096, x)),
        })
    }
}

/// Draws a private exponent in `[2, 2^EXP_BITS)`.
fn private_exponent(rng: &dyn SecureRandom) -> Result<Zeroizing<U512>, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; EXP_BITS / 8]);
    for _ in 0..MAX_DRAWS {
        rng.fill(bytes.as_mut())?;
        let x = Zeroizing::new(U512::from_be_slice(bytes.as_ref()));
        if *x > U512::ONE {
            return Ok(x);
        }
    }
    Err(CryptoError::Random)
}

/// A MODP exchange in progress over a prime of `LIMBS` limbs.
struct Active<const LIMBS: usize> {
    id: KeId,
    prime: &'static Uint<LIMBS>,
    exponent: Zeroizing<U512>,
    public: Vec<u8>,
}

impl<const LIMBS: usize> Active<LIMBS> {
    fn new(id: KeId, prime: &'static Uint<LIMBS>, exponent: Zeroizing<U512>) -> Self {
        let params = DynResidueParams::new(prime);
        let g = DynResidue::new(&Uint::from_u8(2), params);
        let public = to_be_bytes(&g.pow_bounded_exp(&*exponent, EXP_BITS).retrieve());
        Self {
            id,
            prime,
            exponent,
            public,
        }
    }
}

impl<const LIMBS: usize> ActiveKx for Active<LIMBS> {
    fn group(&self) -> KeId {
        self.id
    }

    fn public(&self) -> &[u8] {
        &self.public
    }

    /// The peer's value must satisfy `1 < y < p - 1` (RFC 7296 §5 refers to
    /// SP 800-56A; RFC 6989 §2.1). For these safe primes that also rules out every
    /// element of small order.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        CryptoError::check_len("public key", LIMBS * Limb::BYTES, peer.len())?;
        let y = Uint::<LIMBS>::from_be_slice(peer);
        let p_minus_1 = self.prime.wrapping_sub(&Uint::ONE);
        if y <= Uint::ONE || y >= p_minus_1 {
            return Err(CryptoError::InvalidPublicValue);
        }
        let params = DynResidueParams::new(self.prime);
        let mut z = DynResidue::new(&y, params).pow_bounded_exp(&*self.exponent, EXP_BITS);
        let mut s = z.retrieve();
        z.zeroize();
        let secret = SharedSecret::new(to_be_bytes(&s));
        // With 1 < y < p - 1 in a safe-prime group, y^x is never 0 or 1.
        let bad = bool::from(s.is_zero());
        s.zeroize();
        if bad {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(secret)
    }
}

/// The big-endian bytes of `n`, `LIMBS * Limb::BYTES` long (the prime's length).
fn to_be_bytes<const LIMBS: usize>(n: &Uint<LIMBS>) -> Vec<u8> {
    let mut out = Vec::with_capacity(LIMBS * Limb::BYTES);
    for w in n.as_words().iter().rev() {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_are_as_long_as_the_group() {
        assert_eq!(U2048::LIMBS * Limb::BYTES, 256);
        assert_eq!(U3072::LIMBS * Limb::BYTES, 384);
        assert_eq!(U4096::LIMBS * Limb::BYTES, 512);
        assert_eq!(P2048.bits(), 2048);
        assert_eq!(P3072.bits(), 3072);
        assert_eq!(P4096.bits(), 4096);
        // The primes end in 64 one bits.
        assert_eq!(P2048.as_words()[0], Limb::MAX.0);
        assert_eq!(P3072.as_words()[0], Limb::MAX.0);
        assert_eq!(P4096.as_words()[0], Limb::MAX.0);
    }
}
