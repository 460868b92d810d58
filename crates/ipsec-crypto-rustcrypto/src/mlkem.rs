//! ML-KEM-512/768/1024 (FIPS 203) as IKEv2 key exchange methods 35, 36, 37
//! (draft-ietf-ipsecme-ikev2-mlkem), on `libcrux-ml-kem`.
//!
//! # Why libcrux-ml-kem
//!
//! The two pure-Rust, `no_std` ML-KEM crates were measured side by side on the
//! project's machine (docs/performance.md, "ML-KEM and the aws-lc backend";
//! `benches/benches/primitives.rs`, lines `libcrux-raw` and `ml-kem-raw`):
//! `libcrux-ml-kem` 0.0.11 (Cryspen) runs ML-KEM-768 key generation, encapsulation and
//! decapsulation in about 28, 22 and 22 µs; RustCrypto's `ml-kem` 0.3.4 (encapsulation
//! with its key check) in about 91, 105 and 146 µs, three to seven times slower. libcrux selects AVX2 (x86-64) or NEON
//! (aarch64) code at run time and falls back to portable Rust. Its portable and AVX2
//! code (field and NTT arithmetic, serialization, the high-level algorithms) is formally
//! verified with hax and F\* (the crate's README); `ml-kem` has no such proofs and,
//! by its README, no independent audit. libcrux's
//! API is deterministic by design (key generation takes the 64 seed bytes, encapsulation
//! the 32 bytes of `m`), which is exactly the shape our [`SecureRandom`] contract needs.
//! Against it: libcrux is at 0.0.x and pins its own crates exactly, and its intrinsics
//! crate uses `unsafe` (this crate has none). `ml-kem` 0.3 also needs Rust 1.87, above
//! the workspace's 1.85.
//!
//! # Randomness
//!
//! [`KxGroup::start`] draws the seeds `d ‖ z` (64 bytes) from its `rng` and runs
//! ML-KEM.KeyGen_internal (FIPS 203 Algorithm 16); [`KxGroup::respond`] draws `m`
//! (32 bytes) and runs ML-KEM.Encaps_internal (Algorithm 17). So a seeded provider makes
//! exchanges reproducible, and the NIST ACVP vectors run through the public trait
//! (`ipsec_crypto::testkit`).
//!
//! # Checks and secrets
//!
//! `respond` runs the FIPS 203 §7.2 check on the peer's encapsulation key
//! ([`ipsec_crypto::mlkem::check_encapsulation_key`]) before encapsulating; `complete`
//! checks the ciphertext length (§7.3) and never fails otherwise (implicit rejection).
//! Our copies of the seeds, `m`, the decapsulation key ([`SecretBytes`]) and the shared
//! secret are zeroized after use, and so are the libcrux key and secret values we hold;
//! libcrux takes seeds and `m` by value, and those copies on its stack are not.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_crypto::mlkem::{self, MlKemParams};
use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecretBytes, SecureRandom, SharedSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::BACKEND;

/// An ML-KEM parameter set as a key exchange method; the instances are
/// [`ML_KEM_512`], [`ML_KEM_768`] and [`ML_KEM_1024`].
#[derive(Debug)]
pub struct MlKemGroup {
    params: &'static MlKemParams,
}

/// ML-KEM-512 (KeId 35): 800-byte encapsulation key, 768-byte ciphertext.
pub static ML_KEM_512: MlKemGroup = MlKemGroup {
    params: &mlkem::ML_KEM_512,
};
/// ML-KEM-768 (KeId 36): 1184-byte encapsulation key, 1088-byte ciphertext.
pub static ML_KEM_768: MlKemGroup = MlKemGroup {
    params: &mlkem::ML_KEM_768,
};
/// ML-KEM-1024 (KeId 37): 1568-byte encapsulation key and ciphertext.
pub static ML_KEM_1024: MlKemGroup = MlKemGroup {
    params: &mlkem::ML_KEM_1024,
};

/// Runs `$body` with `$m` bound to the libcrux module of parameter set `$p`, and `Pk`,
/// `Sk`, `Ct` to its encapsulation key, decapsulation key and ciphertext types.
macro_rules! with_module {
    ($p:expr, $m:ident => $body:expr) => {
        match $p.k {
            2 => {
                use libcrux_ml_kem::mlkem512 as $m;
                #[allow(dead_code)]
                type Pk = $m::MlKem512PublicKey;
                #[allow(dead_code)]
                type Sk = $m::MlKem512PrivateKey;
                #[allow(dead_code)]
                type Ct = $m::MlKem512Ciphertext;
                $body
            }
            3 => {
                use libcrux_ml_kem::mlkem768 as $m;
                #[allow(dead_code)]
                type Pk = $m::MlKem768PublicKey;
                #[allow(dead_code)]
                type Sk = $m::MlKem768PrivateKey;
                #[allow(dead_code)]
                type Ct = $m::MlKem768Ciphertext;
                $body
            }
            4 => {
                use libcrux_ml_kem::mlkem1024 as $m;
                #[allow(dead_code)]
                type Pk = $m::MlKem1024PublicKey;
                #[allow(dead_code)]
                type Sk = $m::MlKem1024PrivateKey;
                #[allow(dead_code)]
                type Ct = $m::MlKem1024Ciphertext;
                $body
            }
            _ => Err(CryptoError::Unsupported),
        }
    };
}

/// ML-KEM.KeyGen_internal(d, z) (FIPS 203 Algorithm 16) for `seed = d ‖ z`:
/// `(ek, dk)`.
pub(crate) fn keygen(
    p: &MlKemParams,
    seed: &[u8; 64],
) -> Result<(Vec<u8>, SecretBytes), CryptoError> {
    with_module!(p, m => {
        let (mut sk, pk) = m::generate_key_pair(*seed).into_parts();
        let dk = SecretBytes::from_slice(sk.as_ref());
        sk[0..].zeroize();
        Ok((pk.as_ref().to_vec(), dk))
    })
}

/// ML-KEM.Encaps_internal(ek, m) (FIPS 203 Algorithm 17) for an `ek` that passed the
/// §7.2 check: `(c, K)`.
pub(crate) fn encapsulate(
    p: &MlKemParams,
    ek: &[u8],
    m: &[u8; 32],
) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
    mlkem::check_encapsulation_key(p, ek)?;
    with_module!(p, md => {
        let pk = Pk::try_from(ek)
            .map_err(|_| CryptoError::length("encapsulation key", p.ek_len, ek.len()))?;
        let (c, mut k) = md::encapsulate(&pk, *m);
        let secret = SharedSecret::from_slice(&k);
        k.zeroize();
        Ok((c.as_ref().to_vec(), secret))
    })
}

/// ML-KEM.Decaps(dk, c) (FIPS 203 Algorithm 21): `K`, or the implicit-rejection key
/// for a modified `c`.
pub(crate) fn decapsulate(
    p: &MlKemParams,
    dk: &[u8],
    c: &[u8],
) -> Result<SharedSecret, CryptoError> {
    CryptoError::check_len("decapsulation key", p.dk_len, dk.len())?;
    mlkem::check_ciphertext(p, c)?;
    with_module!(p, md => {
        let mut sk = Sk::try_from(dk)
            .map_err(|_| CryptoError::length("decapsulation key", p.dk_len, dk.len()))?;
        let ct = Ct::try_from(c)
            .map_err(|_| CryptoError::length("ciphertext", p.ciphertext_len, c.len()))?;
        let mut k = md::decapsulate(&sk, &ct);
        sk[0..].zeroize();
        let secret = SharedSecret::from_slice(&k);
        k.zeroize();
        Ok(secret)
    })
}

impl KxGroup for MlKemGroup {
    fn id(&self) -> KeId {
        self.params.id
    }

    fn public_len(&self) -> usize {
        self.params.ek_len
    }

    fn response_len(&self) -> usize {
        self.params.ciphertext_len
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// ML-KEM.KeyGen with the 64 seed bytes `d ‖ z` drawn from `rng`.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill(seed.as_mut())?;
        let (ek, dk) = keygen(self.params, &seed)?;
        Ok(Box::new(Active {
            params: self.params,
            ek,
            dk,
        }))
    }

    /// The §7.2 check of `peer` (the initiator's encapsulation key), then
    /// ML-KEM.Encaps with the 32 bytes of `m` drawn from `rng`: returns the ciphertext
    /// and the shared secret.
    fn respond(
        &self,
        rng: &dyn SecureRandom,
        peer: &[u8],
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        let mut m = Zeroizing::new([0u8; 32]);
        rng.fill(m.as_mut())?;
        encapsulate(self.params, peer, &m)
    }
}

/// An initiator's ML-KEM exchange in progress: our key pair.
struct Active {
    params: &'static MlKemParams,
    ek: Vec<u8>,
    dk: SecretBytes,
}

impl ActiveKx for Active {
    fn group(&self) -> KeId {
        self.params.id
    }

    fn public(&self) -> &[u8] {
        &self.ek
    }

    /// ML-KEM.Decaps of the responder's ciphertext.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        decapsulate(self.params, self.dk.expose(), peer)
    }
}
