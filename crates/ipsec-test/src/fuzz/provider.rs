//! An **insecure** crypto provider for fuzzing only: every integrity and AEAD tag
//! check passes, "encryption" is the identity, the PRF ignores its data, and key
//! exchanges agree on a value anyone can compute.
//!
//! # Why
//!
//! With real crypto a fuzzer that mutates an SK payload (RFC 7296 §3.14) only ever
//! meets the integrity check: every mutated IKE_AUTH, CREATE_CHILD_SA or INFORMATIONAL
//! message dies there, so the code behind it (payload decoding after decryption,
//! authentication, traffic selector narrowing, rekey collisions, deletes) is reached
//! only with the exact bytes the peer produced. With this provider:
//!
//! - AEAD and integrity **verification always succeeds** (lengths are still checked,
//!   as the real algorithms do); tags are a cheap checksum when sealing;
//! - ciphers and AEADs leave the data **unchanged**, so the plaintext of an SK payload
//!   is on the wire where the fuzzer can mutate and compare it directly;
//! - the PRF's output depends **only on its key**, so PSK authentication data
//!   (`prf(prf(PSK, "Key Pad for IKEv2"), SignedOctets)`, §2.15) does not change when
//!   the signed message or the IDs are mutated, and all keys derived by `prf+` are
//!   repetitions of one block;
//! - key exchanges take their public value from the random source and derive the
//!   shared secret from both public values, independent of order, so both ends agree
//!   (the public value length is still checked); the ML-KEM ones are KEM-shaped like
//!   the real ones: the responder's value (a random "ciphertext" of the real length)
//!   differs from the initiator's, and the secret is a checksum of both;
//! - the unkeyed hash (NAT detection, [`CryptoProvider::sha1`]) is a cheap checksum of
//!   its input, so NAT detection still tells addresses apart.
//!
//! It claims the real transform ids (AES-GCM, AES-CCM, ChaCha20-Poly1305, AES-CBC,
//! AES-CTR, HMAC-SHA-1/2, the PRFs, Curve25519, Curve448, ECP-256/384/521,
//! MODP-2048/3072/4096, ML-KEM-512/768/1024) with their real key, nonce, IV, tag and
//! public value lengths, so endpoints negotiate and frame exactly as with a
//! real provider.
//!
//! **Never use it outside fuzzing and tests**: it protects nothing. Its name,
//! [`NAME`], and every algorithm's backend say so.

use ipsec_crypto::{
    ActiveKx, AeadAlgorithm, AeadKey, CipherAlgorithm, CipherKey, Compliance, CryptoError,
    CryptoProvider, EncrId, IntegAlgorithm, IntegId, IntegKey, KeId, KxGroup, PrfAlgorithm, PrfId,
    PrfKey, SecureRandom, SharedSecret,
};

/// The provider's name and every algorithm's backend name.
pub const NAME: &str = "fuzzing-insecure";

/// A cheap 64-bit checksum (FNV-1a) of the concatenation of `parts`, `seed` first.
fn digest(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fills `out` with a deterministic stream expanded from `h` (SplitMix64 steps).
fn expand(mut h: u64, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let bytes = z.to_be_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// An AEAD that encrypts nothing and accepts every tag.
#[derive(Debug)]
pub struct FuzzAead {
    id: EncrId,
    key_len: usize,
    nonce_len: usize,
    tag_len: usize,
}

struct FuzzAeadKey {
    nonce_len: usize,
    tag_len: usize,
}

const AEAD_NONCE: usize = 12;
const AEAD_TAG: usize = 16;
/// AES-CCM's nonce in IPsec (RFC 4309 §4).
const CCM_NONCE: usize = 11;

impl AeadAlgorithm for FuzzAead {
    fn id(&self) -> EncrId {
        self.id
    }
    fn key_len(&self) -> usize {
        self.key_len
    }
    fn nonce_len(&self) -> usize {
        self.nonce_len
    }
    fn tag_len(&self) -> usize {
        self.tag_len
    }
    fn backend(&self) -> &'static str {
        NAME
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        CryptoError::check_len("key", self.key_len, key.len())?;
        Ok(Box::new(FuzzAeadKey {
            nonce_len: self.nonce_len,
            tag_len: self.tag_len,
        }))
    }
}

impl AeadKey for FuzzAeadKey {
    fn seal_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        CryptoError::check_len("nonce", self.nonce_len, nonce.len())?;
        CryptoError::check_len("tag", self.tag_len, tag.len())?;
        expand(digest(0, &[nonce, aad, data]), tag);
        Ok(())
    }

    fn open_detached(
        &self,
        nonce: &[u8],
        _aad: &[u8],
        _data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        CryptoError::check_len("nonce", self.nonce_len, nonce.len())?;
        CryptoError::check_len("tag", self.tag_len, tag.len())
    }
}

/// A block cipher mode that leaves the data as it is (block and IV lengths checked).
#[derive(Debug)]
pub struct FuzzCipher {
    id: EncrId,
    key_len: usize,
    /// 16 for AES-CBC, 1 for AES-CTR.
    block_len: usize,
}

struct FuzzCipherKey {
    block_len: usize,
}

/// The AES block: CBC's IV and block, CTR's counter block.
const BLOCK: usize = 16;

impl CipherAlgorithm for FuzzCipher {
    fn id(&self) -> EncrId {
        self.id
    }
    fn key_len(&self) -> usize {
        self.key_len
    }
    fn block_len(&self) -> usize {
        self.block_len
    }
    fn iv_len(&self) -> usize {
        BLOCK
    }
    fn backend(&self) -> &'static str {
        NAME
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn CipherKey>, CryptoError> {
        CryptoError::check_len("key", self.key_len, key.len())?;
        Ok(Box::new(FuzzCipherKey {
            block_len: self.block_len,
        }))
    }
}

impl FuzzCipherKey {
    fn check(&self, iv: &[u8], data: &[u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("iv", BLOCK, iv.len())?;
        if data.len() % self.block_len != 0 {
            return Err(CryptoError::length(
                "data",
                data.len().next_multiple_of(self.block_len),
                data.len(),
            ));
        }
        Ok(())
    }
}

impl CipherKey for FuzzCipherKey {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check(iv, data)
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check(iv, data)
    }
}

/// An integrity algorithm whose verification always succeeds.
#[derive(Debug)]
pub struct FuzzInteg {
    id: IntegId,
    key_len: usize,
    icv_len: usize,
}

struct FuzzIntegKey {
    icv_len: usize,
}

impl IntegAlgorithm for FuzzInteg {
    fn id(&self) -> IntegId {
        self.id
    }
    fn key_len(&self) -> usize {
        self.key_len
    }
    fn icv_len(&self) -> usize {
        self.icv_len
    }
    fn backend(&self) -> &'static str {
        NAME
    }
    fn new_key(&self, _key: &[u8]) -> Result<Box<dyn IntegKey>, CryptoError> {
        // HMAC takes keys of any length.
        Ok(Box::new(FuzzIntegKey {
            icv_len: self.icv_len,
        }))
    }
}

impl IntegKey for FuzzIntegKey {
    fn icv_len(&self) -> usize {
        self.icv_len
    }
    fn compute(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("tag", self.icv_len, icv.len())?;
        expand(digest(1, parts), icv);
        Ok(())
    }
    fn verify(&self, _parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("tag", self.icv_len, icv.len())
    }
}

/// A PRF whose output depends only on its key (see the module docs).
#[derive(Debug)]
pub struct FuzzPrf {
    id: PrfId,
    output_len: usize,
}

struct FuzzPrfKey {
    h: u64,
    output_len: usize,
}

impl PrfAlgorithm for FuzzPrf {
    fn id(&self) -> PrfId {
        self.id
    }
    fn output_len(&self) -> usize {
        self.output_len
    }
    fn backend(&self) -> &'static str {
        NAME
    }
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn PrfKey>, CryptoError> {
        Ok(Box::new(FuzzPrfKey {
            h: digest(2, &[key]),
            output_len: self.output_len,
        }))
    }
    fn hash(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.output_len, out.len())?;
        expand(digest(3, parts), out);
        Ok(())
    }
}

impl PrfKey for FuzzPrfKey {
    fn compute(&self, _parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        CryptoError::check_len("output", self.output_len, out.len())?;
        expand(self.h, out);
        Ok(())
    }
}

/// A key exchange whose shared secret is a checksum of both public values.
#[derive(Debug)]
pub struct FuzzKx {
    id: KeId,
    public_len: usize,
    /// For a KEM: the length of the responder's value (the ciphertext).
    kem_response_len: Option<usize>,
}

struct FuzzActiveKx {
    id: KeId,
    public: Vec<u8>,
    kem_response_len: Option<usize>,
}

impl KxGroup for FuzzKx {
    fn id(&self) -> KeId {
        self.id
    }
    fn public_len(&self) -> usize {
        self.public_len
    }
    fn response_len(&self) -> usize {
        self.kem_response_len.unwrap_or(self.public_len)
    }
    fn backend(&self) -> &'static str {
        NAME
    }
    fn respond(
        &self,
        rng: &dyn SecureRandom,
        peer: &[u8],
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        if let Some(len) = self.kem_response_len {
            return self.kem_respond(rng, peer, len);
        }
        let kx = self.start(rng)?;
        let public = kx.public().to_vec();
        let secret = kx.complete(peer)?;
        Ok((public, secret))
    }
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let mut public = vec![0u8; self.public_len];
        rng.fill(&mut public)?;
        Ok(Box::new(FuzzActiveKx {
            id: self.id,
            kem_response_len: self.kem_response_len,
            public,
        }))
    }
}

impl FuzzKx {
    /// A KEM's respond: a random "ciphertext", the secret a checksum of both values.
    fn kem_respond(
        &self,
        rng: &dyn SecureRandom,
        peer: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        CryptoError::check_len("public key", self.public_len, peer.len())?;
        let mut c = vec![0u8; len];
        rng.fill(&mut c)?;
        let initiator = FuzzActiveKx {
            id: self.id,
            public: peer.to_vec(),
            kem_response_len: Some(len),
        };
        let secret = Box::new(initiator).complete(&c)?;
        Ok((c, secret))
    }
}

impl ActiveKx for FuzzActiveKx {
    fn group(&self) -> KeId {
        self.id
    }
    fn public(&self) -> &[u8] {
        &self.public
    }
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let want = self.kem_response_len.unwrap_or(self.public.len());
        CryptoError::check_len("public key", want, peer.len())?;
        let (lo, hi) = if self.public.as_slice() <= peer {
            (self.public.as_slice(), peer)
        } else {
            (peer, self.public.as_slice())
        };
        let mut s = vec![0u8; 32];
        expand(digest(4, &[lo, hi]), &mut s);
        Ok(SharedSecret::new(s))
    }
}

static AEADS: [&dyn AeadAlgorithm; 13] = [
    &FuzzAead {
        id: EncrId::ENCR_AES_GCM_16,
        key_len: 32,
        nonce_len: AEAD_NONCE,
        tag_len: AEAD_TAG,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_GCM_16,
        key_len: 24,
        nonce_len: AEAD_NONCE,
        tag_len: AEAD_TAG,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_GCM_16,
        key_len: 16,
        nonce_len: AEAD_NONCE,
        tag_len: AEAD_TAG,
    },
    &FuzzAead {
        id: EncrId::ENCR_CHACHA20_POLY1305,
        key_len: 32,
        nonce_len: AEAD_NONCE,
        tag_len: AEAD_TAG,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_8,
        key_len: 32,
        nonce_len: CCM_NONCE,
        tag_len: 8,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_8,
        key_len: 24,
        nonce_len: CCM_NONCE,
        tag_len: 8,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_8,
        key_len: 16,
        nonce_len: CCM_NONCE,
        tag_len: 8,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_12,
        key_len: 32,
        nonce_len: CCM_NONCE,
        tag_len: 12,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_12,
        key_len: 24,
        nonce_len: CCM_NONCE,
        tag_len: 12,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_12,
        key_len: 16,
        nonce_len: CCM_NONCE,
        tag_len: 12,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_16,
        key_len: 32,
        nonce_len: CCM_NONCE,
        tag_len: 16,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_16,
        key_len: 24,
        nonce_len: CCM_NONCE,
        tag_len: 16,
    },
    &FuzzAead {
        id: EncrId::ENCR_AES_CCM_16,
        key_len: 16,
        nonce_len: CCM_NONCE,
        tag_len: 16,
    },
];

static CIPHERS: [&dyn CipherAlgorithm; 6] = [
    &FuzzCipher {
        id: EncrId::ENCR_AES_CBC,
        key_len: 32,
        block_len: BLOCK,
    },
    &FuzzCipher {
        id: EncrId::ENCR_AES_CBC,
        key_len: 24,
        block_len: BLOCK,
    },
    &FuzzCipher {
        id: EncrId::ENCR_AES_CBC,
        key_len: 16,
        block_len: BLOCK,
    },
    &FuzzCipher {
        id: EncrId::ENCR_AES_CTR,
        key_len: 32,
        block_len: 1,
    },
    &FuzzCipher {
        id: EncrId::ENCR_AES_CTR,
        key_len: 24,
        block_len: 1,
    },
    &FuzzCipher {
        id: EncrId::ENCR_AES_CTR,
        key_len: 16,
        block_len: 1,
    },
];

static INTEGS: [&dyn IntegAlgorithm; 4] = [
    &FuzzInteg {
        id: IntegId::AUTH_HMAC_SHA2_256_128,
        key_len: 32,
        icv_len: 16,
    },
    &FuzzInteg {
        id: IntegId::AUTH_HMAC_SHA2_384_192,
        key_len: 48,
        icv_len: 24,
    },
    &FuzzInteg {
        id: IntegId::AUTH_HMAC_SHA2_512_256,
        key_len: 64,
        icv_len: 32,
    },
    &FuzzInteg {
        id: IntegId::AUTH_HMAC_SHA1_96,
        key_len: 20,
        icv_len: 12,
    },
];

static PRFS: [&dyn PrfAlgorithm; 4] = [
    &FuzzPrf {
        id: PrfId::PRF_HMAC_SHA2_256,
        output_len: 32,
    },
    &FuzzPrf {
        id: PrfId::PRF_HMAC_SHA2_384,
        output_len: 48,
    },
    &FuzzPrf {
        id: PrfId::PRF_HMAC_SHA2_512,
        output_len: 64,
    },
    &FuzzPrf {
        id: PrfId::PRF_HMAC_SHA1,
        output_len: 20,
    },
];

static KX_GROUPS: [&dyn KxGroup; 11] = [
    &FuzzKx {
        id: KeId::CURVE25519,
        public_len: 32,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::ECP_256,
        public_len: 64,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::ECP_384,
        public_len: 96,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::MODP_3072,
        public_len: 384,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::MODP_2048,
        public_len: 256,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::ML_KEM_768,
        public_len: 1184,
        kem_response_len: Some(1088),
    },
    &FuzzKx {
        id: KeId::ML_KEM_1024,
        public_len: 1568,
        kem_response_len: Some(1568),
    },
    &FuzzKx {
        id: KeId::ML_KEM_512,
        public_len: 800,
        kem_response_len: Some(768),
    },
    &FuzzKx {
        id: KeId::ECP_521,
        public_len: 132,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::CURVE448,
        public_len: 56,
        kem_response_len: None,
    },
    &FuzzKx {
        id: KeId::MODP_4096,
        public_len: 512,
        kem_response_len: None,
    },
];

/// The insecure fuzzing provider (see the module docs) with random source `rng`.
/// For fuzzing and tests only.
pub const fn provider_with_random(rng: &'static dyn SecureRandom) -> CryptoProvider {
    CryptoProvider {
        name: NAME,
        aeads: &AEADS,
        ciphers: &CIPHERS,
        integs: &INTEGS,
        prfs: &PRFS,
        kx_groups: &KX_GROUPS,
        signature_verifiers: &[],
        signers: &[],
        secure_random: rng,
        compliance: Compliance::Unvalidated,
    }
}

#[cfg(test)]
mod tests {
    use ipsec_crypto::suites;

    use super::*;
    use crate::SeededRandom;

    static RNG: SeededRandom = SeededRandom::new(7);
    static P: CryptoProvider = provider_with_random(&RNG);

    #[test]
    fn claims_the_real_lengths_of_every_ike_transform() {
        for d in suites::ENCR {
            if d.kind == suites::EncrKind::Gmac || d.kind == suites::EncrKind::Null {
                continue;
            }
            assert!(P.supports_encr(d), "{}", d.name);
            if let Some(a) = P.aead_for(d) {
                assert_eq!(d.iv_len + d.salt_len, a.nonce_len(), "{}", d.name);
                assert_eq!(d.icv_len, a.tag_len(), "{}", d.name);
            }
        }
        for d in suites::INTEG {
            let a = P.integ(d.id).unwrap();
            assert_eq!((a.key_len(), a.icv_len()), (d.key_len, d.icv_len));
        }
        for d in suites::PRF {
            assert_eq!(P.prf(d.id).map(|a| a.output_len()), Some(d.output_len));
        }
        for d in suites::KE {
            assert_eq!(
                P.kx(d.id).map(|g| (g.public_len(), g.response_len())),
                Some((d.public_len, d.response_len())),
                "{}",
                d.name
            );
        }
        // KEM-shaped exchanges agree.
        let g = P.kx(KeId::ML_KEM_768).unwrap();
        let i = g.start(&RNG).unwrap();
        let (c, k) = g.respond(&RNG, i.public()).unwrap();
        assert_eq!(c.len(), 1088);
        assert!(i.complete(&c).unwrap() == k);
    }

    #[test]
    fn accepts_any_tag_and_encrypts_nothing() {
        let k = P
            .aead(EncrId::ENCR_AES_GCM_16, 16)
            .unwrap()
            .new_key(&[0; 16])
            .unwrap();
        let mut data = *b"plaintext";
        let mut tag = [0u8; 16];
        k.seal_detached(&[1; 12], b"aad", &mut data, &mut tag)
            .unwrap();
        assert_eq!(&data, b"plaintext");
        k.open_detached(&[1; 12], b"other", &mut data, &[0xee; 16])
            .unwrap();
        assert!(k.open_detached(&[1; 12], b"", &mut data, &[0; 15]).is_err());
        let i = P
            .integ(IntegId::AUTH_HMAC_SHA1_96)
            .unwrap()
            .new_key(b"k")
            .unwrap();
        i.verify(&[b"anything"], &[0x55; 12]).unwrap();
        assert!(i.verify(&[b"anything"], &[0x55; 16]).is_err());
    }

    #[test]
    fn key_exchange_agrees_and_prf_ignores_data() {
        let g = P.kx(KeId::CURVE25519).unwrap();
        let (a, b) = (g.start(&RNG).unwrap(), g.start(&RNG).unwrap());
        let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
        assert_ne!(pa, pb);
        assert_eq!(
            a.complete(&pb).unwrap().expose(),
            b.complete(&pa).unwrap().expose()
        );
        let prf = P.prf(PrfId::PRF_HMAC_SHA2_256).unwrap();
        let k = prf.new_key(b"key").unwrap();
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        k.compute(&[b"one"], &mut x).unwrap();
        k.compute(&[b"two"], &mut y).unwrap();
        assert_eq!(x, y);
        prf.new_key(b"other")
            .unwrap()
            .compute(&[b"one"], &mut y)
            .unwrap();
        assert_ne!(x, y);
        assert_ne!(P.sha1(&[b"a"]).unwrap(), P.sha1(&[b"b"]).unwrap());
    }
}
