//! What every ML-KEM backend shares: the FIPS 203 parameter sets with their byte
//! lengths, and the input checks on the values a peer sends.
//!
//! ML-KEM is a key encapsulation mechanism, so the two KE payloads of an exchange differ
//! (draft-ietf-ipsecme-ikev2-mlkem §2): the initiator sends an encapsulation key `ek`
//! ([`MlKemParams::ek_len`] bytes, the [`KxGroup::public_len`](crate::KxGroup::public_len)),
//! the responder answers with a ciphertext ([`MlKemParams::ciphertext_len`] bytes, the
//! [`KxGroup::response_len`](crate::KxGroup::response_len)), and both end with a 32-byte
//! shared secret.
//!
//! A backend implements an ML-KEM [`KxGroup`](crate::KxGroup) as
//! - `start`: ML-KEM.KeyGen (FIPS 203 Algorithm 19), `public()` is `ek`;
//! - `respond(ek)`: [`check_encapsulation_key`] (the §7.2 input check), then
//!   ML-KEM.Encaps (Algorithm 20), returning the ciphertext and the shared secret;
//! - `complete(c)`: [`check_ciphertext`] (the §7.3 length check), then ML-KEM.Decaps
//!   (Algorithm 21). A ciphertext of the right length never fails: a modified one gives
//!   the implicit-rejection secret, which the peer does not share, so the IKE SA's AUTH
//!   fails instead.

use crate::error::CryptoError;
use crate::KeId;

/// The prime modulus q of ML-KEM (FIPS 203 §2.4).
pub const Q: u16 = 3329;

/// Length of the shared secret of every parameter set (FIPS 203 §8).
pub const SHARED_SECRET_LEN: usize = 32;

/// One ML-KEM parameter set (FIPS 203 §8, Table 2 and Table 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MlKemParams {
    /// The IKEv2 key exchange method id (draft-ietf-ipsecme-ikev2-mlkem §5).
    pub id: KeId,
    /// The name, "ML-KEM-768".
    pub name: &'static str,
    /// The module rank k.
    pub k: usize,
    /// Length of the encapsulation key: 384·k + 32.
    pub ek_len: usize,
    /// Length of the (expanded) decapsulation key: 768·k + 96.
    pub dk_len: usize,
    /// Length of the ciphertext: 32·(du·k + dv).
    pub ciphertext_len: usize,
}

/// ML-KEM-512 (k = 2, du = 10, dv = 4).
pub static ML_KEM_512: MlKemParams = MlKemParams {
    id: KeId::ML_KEM_512,
    name: "ML-KEM-512",
    k: 2,
    ek_len: 800,
    dk_len: 1632,
    ciphertext_len: 768,
};

/// ML-KEM-768 (k = 3, du = 10, dv = 4).
pub static ML_KEM_768: MlKemParams = MlKemParams {
    id: KeId::ML_KEM_768,
    name: "ML-KEM-768",
    k: 3,
    ek_len: 1184,
    dk_len: 2400,
    ciphertext_len: 1088,
};

/// ML-KEM-1024 (k = 4, du = 11, dv = 5).
pub static ML_KEM_1024: MlKemParams = MlKemParams {
    id: KeId::ML_KEM_1024,
    name: "ML-KEM-1024",
    k: 4,
    ek_len: 1568,
    dk_len: 3168,
    ciphertext_len: 1568,
};

/// The three parameter sets.
pub static ALL: [&MlKemParams; 3] = [&ML_KEM_512, &ML_KEM_768, &ML_KEM_1024];

/// The parameter set of key exchange method `id`, if it is ML-KEM.
pub const fn params(id: KeId) -> Option<&'static MlKemParams> {
    match id.0 {
        35 => Some(&ML_KEM_512),
        36 => Some(&ML_KEM_768),
        37 => Some(&ML_KEM_1024),
        _ => None,
    }
}

/// The encapsulation key input check of FIPS 203 §7.2, which ML-KEM.Encaps requires
/// before it uses a key it received:
/// 1. the length is 384·k + 32 bytes ([`CryptoError::Length`] otherwise);
/// 2. the modulus check: every 12-bit coefficient of the 384·k encoded bytes (the
///    trailing 32 bytes are the seed ρ) is below q, i.e. `ByteEncode12(ByteDecode12(x))
///    == x` ([`CryptoError::InvalidPublicValue`] otherwise).
///
/// The key is public, so the check need not be constant time.
///
/// # Errors
/// As above.
pub fn check_encapsulation_key(p: &MlKemParams, ek: &[u8]) -> Result<(), CryptoError> {
    CryptoError::check_len("encapsulation key", p.ek_len, ek.len())?;
    let encoded =
        ek.get(..384 * p.k)
            .ok_or(CryptoError::length("encapsulation key", p.ek_len, ek.len()))?;
    // ByteDecode12 (FIPS 203 Algorithm 6): three bytes hold two coefficients,
    // little-endian.
    for chunk in encoded.chunks_exact(3) {
        let &[b0, b1, b2] = chunk else {
            return Err(CryptoError::InvalidPublicValue);
        };
        let (b0, b1, b2) = (u16::from(b0), u16::from(b1), u16::from(b2));
        let lo = b0 | ((b1 & 0x0f) << 8);
        let hi = (b1 >> 4) | (b2 << 4);
        if lo >= Q || hi >= Q {
            return Err(CryptoError::InvalidPublicValue);
        }
    }
    Ok(())
}

/// The ciphertext input check of FIPS 203 §7.3: its length is 32·(du·k + dv) bytes.
///
/// # Errors
/// [`CryptoError::Length`] otherwise.
pub fn check_ciphertext(p: &MlKemParams, c: &[u8]) -> Result<(), CryptoError> {
    CryptoError::check_len("ciphertext", p.ciphertext_len, c.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_formulas() {
        for (p, du, dv) in [
            (&ML_KEM_512, 10, 4),
            (&ML_KEM_768, 10, 4),
            (&ML_KEM_1024, 11, 5),
        ] {
            assert_eq!(p.ek_len, 384 * p.k + 32, "{}", p.name);
            assert_eq!(p.dk_len, 768 * p.k + 96, "{}", p.name);
            assert_eq!(p.ciphertext_len, 32 * (du * p.k + dv), "{}", p.name);
            assert_eq!(params(p.id), Some(p));
        }
        assert_eq!(params(KeId::CURVE25519), None);
    }

    #[test]
    fn modulus_check() {
        let p = &ML_KEM_512;
        // All coefficients q - 1 = 0xd00: bytes 00 0d d0 repeated.
        let mut ek: Vec<u8> = [0x00, 0x0d, 0xd0].repeat(128 * p.k);
        ek.extend_from_slice(&[0xff; 32]);
        assert_eq!(check_encapsulation_key(p, &ek), Ok(()));
        // The low coefficient of the last triple becomes q.
        let mut bad = ek.clone();
        bad[384 * p.k - 3] = 0x01;
        assert_eq!(
            check_encapsulation_key(p, &bad),
            Err(CryptoError::InvalidPublicValue)
        );
        // The high coefficient of the first triple becomes 0xfff.
        let mut bad = ek.clone();
        bad[1] |= 0xf0;
        bad[2] = 0xff;
        assert_eq!(
            check_encapsulation_key(p, &bad),
            Err(CryptoError::InvalidPublicValue)
        );
        // The seed ρ is not checked.
        let mut seed = ek.clone();
        seed[p.ek_len - 1] = 0;
        assert_eq!(check_encapsulation_key(p, &seed), Ok(()));
        assert!(matches!(
            check_encapsulation_key(p, &ek[1..]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            check_encapsulation_key(&ML_KEM_768, &ek),
            Err(CryptoError::Length { .. })
        ));
    }

    #[test]
    fn ciphertext_length() {
        assert_eq!(check_ciphertext(&ML_KEM_1024, &[0; 1568]), Ok(()));
        assert!(check_ciphertext(&ML_KEM_768, &[0; 1568]).is_err());
    }
}
