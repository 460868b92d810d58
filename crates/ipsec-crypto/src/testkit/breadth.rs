//! Known answers of the transforms strongSwan's default proposals add to the first
//! ones: AES-CTR (RFC 3686), AES-CCM (RFC 4309), Curve448 (RFC 7748, RFC 8031) and
//! MODP-4096 (RFC 3526 §5). ECP-521 (RFC 5903 §8.3) is a record of ecdh_ecp.json and
//! runs with the other ECP groups. The vector files and how each was checked are
//! written by `vectors/breadth.py`; every record names its source.
//!
//! The entry points are called from [`super::check_aead`], [`super::check_cipher`]
//! and [`super::check_kx`], so a backend runs whichever of them it has.

use std::format;
use std::vec::Vec;

use super::{check_modp, concat, kx_complete, kx_start, load, records, AeadCase, FixedRandom, Rec};
use crate::provider::CryptoProvider;
use crate::{CryptoError, EncrId, KeId};

const AES_CTR_JSON: &str = include_str!("../../vectors/aes_ctr.json");
const AES_CCM_JSON: &str = include_str!("../../vectors/aes_ccm.json");
const X448_JSON: &str = include_str!("../../vectors/x448.json");
const MODP4096_JSON: &str = include_str!("../../vectors/modp4096.json");

/// Every vector file of this module, for the parse test.
#[cfg(test)]
pub(super) const FILES: [(&str, &str); 4] = [
    ("aes_ctr.json", AES_CTR_JSON),
    ("aes_ccm.json", AES_CCM_JSON),
    ("x448.json", X448_JSON),
    ("modp4096.json", MODP4096_JSON),
];

/// The AES-CCM transform id for an ICV of `tag_len` bytes (RFC 4309 §7.1).
pub(super) fn ccm_id(tag_len: usize) -> Option<EncrId> {
    Some(match tag_len {
        8 => EncrId::ENCR_AES_CCM_8,
        12 => EncrId::ENCR_AES_CCM_12,
        16 => EncrId::ENCR_AES_CCM_16,
        _ => return None,
    })
}

/// The RFC 3686 §4 initial counter block: nonce ‖ IV ‖ 0x00000001.
pub(super) fn ctr_block(nonce: &[u8], iv: &[u8]) -> Vec<u8> {
    concat(&[nonce, iv, &[0, 0, 0, 1]])
}

/// aes_ccm.json: AES-CCM with the 11-byte nonce of RFC 4309 (Wycheproof's cases for
/// 16-byte tags, OpenSSL's for 8 and 12), sealed and opened through
/// [`super::aead_kat`] with its flipped-bit negatives.
pub(super) fn ccm(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("aes_ccm.json", AES_CCM_JSON);
    for r in records("aes_ccm.json", &values).filter(Rec::verified) {
        let (key, tag) = (r.hex("key"), r.hex("tag"));
        let Some(alg) = ccm_id(tag.len()).and_then(|id| p.aead(id, key.len())) else {
            continue;
        };
        let nonce = r.hex("nonce");
        assert_eq!(nonce.len(), alg.nonce_len(), "{}: nonce length", r.name);
        super::aead_kat(
            alg,
            &AeadCase {
                name: r.name,
                key: &key,
                nonce: &nonce,
                aad: &r.hex("aad"),
                plaintext: &r.hex("plaintext"),
                ciphertext: &r.hex("ciphertext"),
                tag: &tag,
            },
        );
        n += 1;
    }
    n
}

/// aes_ctr.json: the nine RFC 3686 §6 vectors, encrypted and decrypted byte for byte
/// from the counter block nonce ‖ IV ‖ 1, whole and in a partial last block.
pub(super) fn ctr(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("aes_ctr.json", AES_CTR_JSON);
    for r in records("aes_ctr.json", &values).filter(Rec::verified) {
        let key = r.hex("key");
        let Some(alg) = p.cipher(EncrId::ENCR_AES_CTR, key.len()) else {
            continue;
        };
        let (name, backend) = (r.name, alg.backend());
        let block = ctr_block(&r.hex("nonce"), &r.hex("iv"));
        assert_eq!(block, r.hex("counter_block"), "{name}: counter block");
        assert_eq!(alg.iv_len(), block.len(), "{name} [{backend}]: IV length");
        assert_eq!(alg.block_len(), 1, "{name} [{backend}]: block length");
        let k = alg
            .new_key(&key)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: new_key failed: {e}"));
        let (pt, ct) = (r.hex("plaintext"), r.hex("ciphertext"));
        let mut data = pt.clone();
        k.encrypt(&block, &mut data)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: encrypt failed: {e}"));
        assert_eq!(hex::encode(&data), hex::encode(&ct), "{name} [{backend}]");
        k.decrypt(&block, &mut data)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: decrypt failed: {e}"));
        assert_eq!(data, pt, "{name} [{backend}]: decrypt");
        n += 1;
    }
    n
}

/// x448.json (RFC 7748 §5.2 and §6.2): scalar multiplications, iterated
/// multiplication (1 and 1,000 steps) and Diffie-Hellman, with the private keys
/// handed in through [`FixedRandom`] (56 bytes, clamped by the backend per RFC 7748
/// §5); low-order peer values (an all-zero secret) are refused (RFC 8031 §2).
pub(super) fn x448(p: &CryptoProvider) -> usize {
    let Some(g) = p.kx(KeId::CURVE448) else {
        return 0;
    };
    let mut n = 0;
    let backend = g.backend();
    let mult = |name: &str, k: &[u8], u: &[u8]| -> Vec<u8> {
        let rng = FixedRandom::new(k);
        let kx = g
            .start(&rng)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
        kx.complete(u)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: complete failed: {e}"))
            .expose()
            .to_vec()
    };
    let values = load("x448.json", X448_JSON);
    for r in records("x448.json", &values).filter(Rec::verified) {
        let name = r.name;
        match r.str("kind") {
            "scalar_mult" => {
                let out = mult(name, &r.hex("scalar"), &r.hex("u"));
                assert_eq!(hex::encode(out), r.str("output"), "{name} [{backend}]");
            }
            "iterated" => {
                let mut k = r.hex("start");
                let mut u = k.clone();
                for _ in 0..r.int("iterations") {
                    let next = mult(name, &k, &u);
                    u = core::mem::replace(&mut k, next);
                }
                assert_eq!(hex::encode(k), r.str("output"), "{name} [{backend}]");
            }
            "dh" => {
                let (pub_a, pub_b, shared) = (r.hex("pub_a"), r.hex("pub_b"), r.hex("shared"));
                let a = kx_start(name, g, &r.hex("priv_a"), &pub_a);
                let b = kx_start(name, g, &r.hex("priv_b"), &pub_b);
                kx_complete(name, backend, a, &pub_b, &shared);
                kx_complete(name, backend, b, &pub_a, &shared);
            }
            other => panic!("{name}: unknown kind {other:?}"),
        }
        n += 1;
    }
    // u = 0, 1 and p - 1 (p = 2^448 - 2^224 - 1, little-endian) have small order:
    // every clamped scalar (a multiple of 4) maps them to 0.
    let mut p_minus_1 = [0xffu8; 56];
    p_minus_1[0] = 0xfe;
    p_minus_1[28] = 0xfe;
    let mut one = [0u8; 56];
    one[0] = 1;
    for (what, u) in [
        ("u = 0", [0u8; 56]),
        ("u = 1", one),
        ("u = p - 1", p_minus_1),
    ] {
        let name = format!("X448 low-order peer value {what}");
        let kx = g
            .start(p.secure_random)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
        assert_eq!(
            kx.complete(&u).err(),
            Some(CryptoError::InvalidPublicValue),
            "{name} [{backend}]: must be refused"
        );
        n += 1;
    }
    n
}

/// modp4096.json: the range checks of [`check_modp`] with the RFC 3526 §5 prime, and a
/// Diffie-Hellman known answer with 512-bit exponents handed in through
/// [`FixedRandom`] (the backend's exponent is the big-endian number of the 64 bytes
/// it draws).
pub(super) fn modp4096(p: &CryptoProvider) -> usize {
    let Some(g) = p.kx(KeId::MODP_4096) else {
        return 0;
    };
    let mut n = 0;
    let values = load("modp4096.json", MODP4096_JSON);
    for r in records("modp4096.json", &values).filter(Rec::verified) {
        let (name, backend) = (r.name, g.backend());
        assert_eq!(r.int("group"), u64::from(g.id().0), "{name}: group");
        n += check_modp(p, g, r.str("prime"));
        let (gi, gr, shared) = (r.hex("gi"), r.hex("gr"), r.hex("shared"));
        let i = kx_start(name, g, &r.hex("i"), &gi);
        let rr = kx_start(name, g, &r.hex("r"), &gr);
        kx_complete(name, backend, i, &gr, &shared);
        kx_complete(name, backend, rr, &gi, &shared);
        n += 1;
    }
    n
}
