//! ML-KEM-512/768/1024 (FIPS 203) as IKEv2 key exchange methods 35, 36, 37
//! (draft-ietf-ipsecme-ikev2-mlkem), on `aws_lc_rs::kem`.
//!
//! - [`KxGroup::start`]: ML-KEM.KeyGen; [`ActiveKx::public`] is the encapsulation key.
//! - [`KxGroup::respond`]: the FIPS 203 §7.2 check of the initiator's encapsulation key
//!   ([`ipsec_crypto::mlkem::check_encapsulation_key`], the same check in every
//!   backend), then ML-KEM.Encaps: the ciphertext and the shared secret.
//! - [`ActiveKx::complete`]: the §7.3 length check of the ciphertext, then
//!   ML-KEM.Decaps (a modified ciphertext gives the implicit-rejection secret).
//!
//! # Randomness: the one exception
//!
//! aws-lc-rs has no way to generate an ML-KEM key pair from given seeds or to
//! encapsulate with a given `m`: AWS-LC draws them from its own DRBG (seeded from the
//! operating system). So, unlike every other key exchange in the workspace, these
//! groups **do not use the `rng`** that `start` and `respond` are given: exchanges are
//! not reproducible with a seeded provider, and the ACVP key generation and
//! encapsulation vectors cannot run through this backend's [`KxGroup`]. What is checked
//! instead (`ipsec_crypto::testkit`): the ACVP decapsulation vectors, and
//! encapsulations to the vectors' keys that the vectors' decapsulation keys must open;
//! interoperation with the RustCrypto backend's ML-KEM both ways (the `ipsec` facade's
//! tests). A provider that needs reproducible exchanges takes ML-KEM from
//! `ipsec-crypto-rustcrypto`.
//!
//! The decapsulation key lives inside AWS-LC, which clears memory when it frees it;
//! aws-lc-rs zeroizes its shared-secret buffers, and our copy is a [`SecretBytes`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use aws_lc_rs::kem::{self, Ciphertext, DecapsulationKey, EncapsulationKey};
use ipsec_crypto::mlkem::{self, MlKemParams};
use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecretBytes, SecureRandom, SharedSecret};

/// An ML-KEM parameter set on aws-lc-rs; the instances are
/// [`ML_KEM_512`](crate::ML_KEM_512), [`ML_KEM_768`](crate::ML_KEM_768) and
/// [`ML_KEM_1024`](crate::ML_KEM_1024).
#[derive(Debug)]
pub struct AwsLcMlKem {
    params: &'static MlKemParams,
    alg: &'static kem::Algorithm<kem::AlgorithmId>,
}

impl AwsLcMlKem {
    pub(crate) const fn new(
        params: &'static MlKemParams,
        alg: &'static kem::Algorithm<kem::AlgorithmId>,
    ) -> Self {
        Self { params, alg }
    }
}

/// ML-KEM.Decaps of `c` (after the §7.3 length check) with `key`.
pub(crate) fn decapsulate(
    p: &MlKemParams,
    key: &DecapsulationKey,
    c: &[u8],
) -> Result<SharedSecret, CryptoError> {
    mlkem::check_ciphertext(p, c)?;
    let secret = key
        .decapsulate(Ciphertext::from(c))
        .map_err(|_| CryptoError::InvalidPublicValue)?;
    Ok(SecretBytes::from_slice(secret.as_ref()))
}

impl KxGroup for AwsLcMlKem {
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
        crate::BACKEND
    }

    /// ML-KEM.KeyGen with AWS-LC's own randomness: `rng` is not used (see the
    /// [module docs](self#randomness-the-one-exception)).
    fn start(&self, _rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let key = DecapsulationKey::generate(self.alg).map_err(|_| CryptoError::Random)?;
        let ek = key
            .encapsulation_key()
            .and_then(|ek| ek.key_bytes())
            .map_err(|_| CryptoError::Random)?;
        let ek = ek.as_ref().to_vec();
        CryptoError::check_len("encapsulation key", self.params.ek_len, ek.len())?;
        Ok(Box::new(Active {
            params: self.params,
            key,
            ek,
        }))
    }

    /// The §7.2 check of `peer`, then ML-KEM.Encaps with AWS-LC's own randomness (`rng`
    /// is not used).
    fn respond(
        &self,
        _rng: &dyn SecureRandom,
        peer: &[u8],
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        mlkem::check_encapsulation_key(self.params, peer)?;
        let ek =
            EncapsulationKey::new(self.alg, peer).map_err(|_| CryptoError::InvalidPublicValue)?;
        let (c, secret) = ek.encapsulate().map_err(|_| CryptoError::Random)?;
        let c = c.as_ref().to_vec();
        CryptoError::check_len("ciphertext", self.params.ciphertext_len, c.len())?;
        Ok((c, SecretBytes::from_slice(secret.as_ref())))
    }
}

/// An initiator's exchange in progress: the decapsulation key and our encapsulation key.
struct Active {
    params: &'static MlKemParams,
    key: DecapsulationKey,
    ek: Vec<u8>,
}

impl ActiveKx for Active {
    fn group(&self) -> KeId {
        self.params.id
    }

    fn public(&self) -> &[u8] {
        &self.ek
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        decapsulate(self.params, &self.key, peer)
    }
}
