#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod kem;
pub mod kx;
mod rand;

use ipsec_crypto::{mlkem, Compliance, CryptoProvider, KeId, KxGroup};

pub use crate::kem::AwsLcMlKem;
pub use crate::kx::AwsLcKx;
pub use crate::rand::SystemRandom;

/// What `backend()` returns for every algorithm of this crate.
pub const BACKEND: &str = "aws-lc";

/// Curve25519 (`KeId::CURVE25519`, RFC 8031): 32-byte public values.
pub static X25519: AwsLcKx = AwsLcKx::x25519();

/// 256-bit random ECP group (`KeId::ECP_256`, RFC 5903): 64-byte `x ‖ y` values.
pub static ECP256: AwsLcKx = AwsLcKx::ecp(
    KeId::ECP_256,
    "NIST P-256",
    &aws_lc_rs::agreement::ECDH_P256,
    32,
);

/// 384-bit random ECP group (`KeId::ECP_384`, RFC 5903): 96-byte `x ‖ y` values.
pub static ECP384: AwsLcKx = AwsLcKx::ecp(
    KeId::ECP_384,
    "NIST P-384",
    &aws_lc_rs::agreement::ECDH_P384,
    48,
);

/// ML-KEM-512 (`KeId::ML_KEM_512`, FIPS 203): 800-byte encapsulation key, 768-byte
/// ciphertext. Its randomness is AWS-LC's own: see [`kem`].
pub static ML_KEM_512: AwsLcMlKem =
    AwsLcMlKem::new(&mlkem::ML_KEM_512, &aws_lc_rs::kem::ML_KEM_512);

/// ML-KEM-768 (`KeId::ML_KEM_768`, FIPS 203): 1184-byte encapsulation key, 1088-byte
/// ciphertext. Its randomness is AWS-LC's own: see [`kem`].
pub static ML_KEM_768: AwsLcMlKem =
    AwsLcMlKem::new(&mlkem::ML_KEM_768, &aws_lc_rs::kem::ML_KEM_768);

/// ML-KEM-1024 (`KeId::ML_KEM_1024`, FIPS 203): 1568-byte encapsulation key and
/// ciphertext. Its randomness is AWS-LC's own: see [`kem`].
pub static ML_KEM_1024: AwsLcMlKem =
    AwsLcMlKem::new(&mlkem::ML_KEM_1024, &aws_lc_rs::kem::ML_KEM_1024);

/// The operating system's random source, through AWS-LC.
pub static SYSTEM_RANDOM: SystemRandom = SystemRandom::new();

/// The key exchange methods, in order of preference.
pub static KX_GROUPS: [&dyn KxGroup; 6] = [
    &X25519,
    &ECP256,
    &ECP384,
    &ML_KEM_768,
    &ML_KEM_1024,
    &ML_KEM_512,
];

/// Every algorithm of this backend, with [`SYSTEM_RANDOM`]. It has key exchange only
/// (no AEAD, integrity, PRF or signature), so it runs an IKE SA only composed with
/// another backend: the `ipsec` facade's `DEFAULT_PROVIDER` does that with the `awslc`
/// feature.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: BACKEND,
    aeads: &[],
    ciphers: &[],
    integs: &[],
    prfs: &[],
    kx_groups: &KX_GROUPS,
    signature_verifiers: &[],
    signers: &[],
    secure_random: &SYSTEM_RANDOM,
    compliance: Compliance::Unvalidated,
};

/// The ML-KEM internals for the conformance suite's decapsulation vectors.
#[cfg(test)]
mod tests {
    extern crate std;

    use alloc::vec::Vec;

    use aws_lc_rs::kem::DecapsulationKey;
    use ipsec_crypto::suites;
    use ipsec_crypto::testkit::{check_mlkem_internals, FixedRandom, MlKemInternals};
    use ipsec_crypto::{CryptoError, SecretBytes, SecureRandom, SharedSecret};

    use super::*;

    struct Internals;

    impl MlKemInternals for Internals {
        fn backend(&self) -> &'static str {
            BACKEND
        }

        /// aws-lc-rs cannot generate keys from given seeds.
        fn keygen_internal(
            &self,
            _id: KeId,
            _d: &[u8; 32],
            _z: &[u8; 32],
        ) -> Result<Option<(Vec<u8>, SecretBytes)>, CryptoError> {
            Ok(None)
        }

        fn decapsulate(&self, id: KeId, dk: &[u8], c: &[u8]) -> Result<SharedSecret, CryptoError> {
            let (p, alg) = match id {
                KeId::ML_KEM_512 => (&mlkem::ML_KEM_512, &aws_lc_rs::kem::ML_KEM_512),
                KeId::ML_KEM_768 => (&mlkem::ML_KEM_768, &aws_lc_rs::kem::ML_KEM_768),
                KeId::ML_KEM_1024 => (&mlkem::ML_KEM_1024, &aws_lc_rs::kem::ML_KEM_1024),
                _ => return Err(CryptoError::Unsupported),
            };
            CryptoError::check_len("decapsulation key", p.dk_len, dk.len())?;
            let key = DecapsulationKey::new(alg, dk).map_err(|_| CryptoError::InvalidKey)?;
            crate::kem::decapsulate(p, &key, c)
        }
    }

    #[test]
    fn acvp_vectors() {
        let n = check_mlkem_internals(&PROVIDER, &Internals);
        // No keyGen; 6 encapsulation (decaps + respond) and 9 decapsulation vectors,
        // each with 5 wrong lengths.
        assert_eq!(n, 6 * 7 + 9 * 6);
    }

    #[test]
    fn provider_matches_the_suites() {
        for g in PROVIDER.kx_groups {
            let d = suites::ke(g.id()).unwrap();
            assert_eq!(
                (g.public_len(), g.response_len()),
                (d.public_len, d.response_len()),
                "{}",
                d.name
            );
            assert_eq!(g.backend(), "aws-lc");
        }
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        SYSTEM_RANDOM.fill(&mut a).unwrap();
        SYSTEM_RANDOM.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn ecp_redraws_out_of_range_scalars() {
        // First draw: all ones (above the group order); second: zero; third: one.
        let mut bytes = std::vec![0xff; 32];
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&[0; 31]);
        bytes.push(1);
        let rng = FixedRandom::new(&bytes);
        let kx = ECP256.start(&rng).unwrap();
        // 1 * G is the generator (x of P-256's G).
        assert_eq!(kx.public()[..4], [0x6b, 0x17, 0xd1, 0xf2]);
        assert_eq!(rng.remaining(), 0);
    }

    #[test]
    fn ml_kem_does_not_draw_from_rng() {
        // Documented: AWS-LC uses its own randomness for ML-KEM.
        let rng = FixedRandom::new(&[]);
        let kx = ML_KEM_768.start(&rng).unwrap();
        let (c, k) = ML_KEM_768.respond(&rng, kx.public()).unwrap();
        assert!(kx.complete(&c).unwrap() == k);
    }
}
