//! Quick known-answer and behaviour tests of the ring backend against RFC values.
//! The full conformance suite is in `conformance.rs`.

use ipsec_crypto::{
    AeadAlgorithm, CryptoError, IntegAlgorithm, KxGroup, PrfAlgorithm, SecureRandom,
};
use ipsec_crypto_ring as ring_backend;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

/// Seal, compare with the expected ciphertext and tag, open again, reject a bad tag.
fn aead_kat(
    alg: &dyn AeadAlgorithm,
    key: &str,
    nonce: &str,
    aad: &str,
    pt: &str,
    ct: &str,
    tag: &str,
) {
    let key = alg.new_key(&h(key)).unwrap();
    let (nonce, aad, pt) = (h(nonce), h(aad), h(pt));
    let mut data = pt.clone();
    let mut t = [0u8; 16];
    key.seal_detached(&nonce, &aad, &mut data, &mut t).unwrap();
    if !ct.is_empty() {
        assert_eq!(hex::encode(&data), ct.replace(' ', ""));
    }
    assert_eq!(hex::encode(t), tag);
    let sealed = data.clone();
    key.open_detached(&nonce, &aad, &mut data, &t).unwrap();
    assert_eq!(data, pt);
    let mut data = sealed;
    t[15] ^= 0x80;
    assert_eq!(
        key.open_detached(&nonce, &aad, &mut data, &t),
        Err(CryptoError::Authentication)
    );
}

#[test]
fn aes_gcm_known_answers() {
    // The GCM specification (McGrew & Viega), test cases 1, 2, 13 and 14.
    let z = "00000000000000000000000000000000";
    aead_kat(
        &ring_backend::AES_128_GCM,
        z,
        "000000000000000000000000",
        "",
        "",
        "",
        "58e2fccefa7e3061367f1d57a4e7455a",
    );
    aead_kat(
        &ring_backend::AES_128_GCM,
        z,
        "000000000000000000000000",
        "",
        z,
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    );
    let z256 = "0000000000000000000000000000000000000000000000000000000000000000";
    aead_kat(
        &ring_backend::AES_256_GCM,
        z256,
        "000000000000000000000000",
        "",
        "",
        "",
        "530f8afbc74536b9a963b4f1c4cb738b",
    );
    aead_kat(
        &ring_backend::AES_256_GCM,
        z256,
        "000000000000000000000000",
        "",
        z,
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    );
}

#[test]
fn chacha20_poly1305_known_answer() {
    // RFC 8439 §2.8.2.
    let pt = hex::encode(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    aead_kat(
        &ring_backend::CHACHA20_POLY1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        &pt,
        "",
        "1ae10b594f09e26a7e902ecbd0600691",
    );
}

#[test]
fn aead_wrong_lengths_are_errors() {
    for alg in [
        &ring_backend::AES_128_GCM,
        &ring_backend::AES_256_GCM,
        &ring_backend::CHACHA20_POLY1305,
    ] {
        assert_eq!(alg.backend(), "ring");
        assert!(matches!(
            alg.new_key(&[0; 17]),
            Err(CryptoError::Length { what: "key", .. })
        ));
        let key = alg.new_key(&vec![1; alg.key_len()]).unwrap();
        let mut data = [0u8; 32];
        let mut tag = [0u8; 16];
        assert!(matches!(
            key.seal_detached(&[0; 8], b"", &mut data, &mut tag),
            Err(CryptoError::Length {
                what: "nonce",
                expected: 12,
                got: 8
            })
        ));
        assert!(matches!(
            key.seal_detached(&[0; 12], b"", &mut data, &mut tag[..8]),
            Err(CryptoError::Length { what: "tag", .. })
        ));
        assert!(matches!(
            key.open_detached(&[0; 12], b"", &mut data, &tag[..15]),
            Err(CryptoError::Length { what: "tag", .. })
        ));
        assert!(matches!(
            key.open_detached(&[0; 13], b"", &mut data, &tag),
            Err(CryptoError::Length { what: "nonce", .. })
        ));
    }
}

#[test]
fn hmac_known_answers() {
    // RFC 2202 §3 and RFC 4231 §4.3 test case 2 ("Jefe"), which RFC 4868 §2.7.1 reuses for the PRFs.
    let data = b"what do ya want for nothing?";
    let cases: [(&dyn PrfAlgorithm, &str); 4] = [
        (&ring_backend::PRF_HMAC_SHA1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (&ring_backend::PRF_HMAC_SHA256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (&ring_backend::PRF_HMAC_SHA384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (&ring_backend::PRF_HMAC_SHA512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    ];
    for (prf, want) in cases {
        let key = prf.new_key(b"Jefe").unwrap();
        let mut out = vec![0u8; prf.output_len()];
        // Split input: the parts are concatenated.
        key.compute(&[&data[..5], b"", &data[5..]], &mut out)
            .unwrap();
        assert_eq!(hex::encode(&out), want);
        assert!(matches!(
            key.compute(&[data], &mut out[1..]),
            Err(CryptoError::Length { .. })
        ));
    }
}

#[test]
fn integ_truncates_and_verifies() {
    // RFC 4231 test case 1 (key 0x0b × 20), data "Hi There", with the RFC 4868 key sizes:
    // RFC 4868 §2.7.2.1 gives the truncated ICVs for 32/48/64-byte 0x0b keys.
    let cases: [(&dyn IntegAlgorithm, &str); 3] = [
        (
            &ring_backend::HMAC_SHA256_128,
            "198a607eb44bfbc69903a0f1cf2bbdc5",
        ),
        (
            &ring_backend::HMAC_SHA384_192,
            "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
        ),
        (
            &ring_backend::HMAC_SHA512_256,
            "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
        ),
    ];
    for (integ, want) in cases {
        let key = integ.new_key(&vec![0x0b; integ.key_len()]).unwrap();
        let mut icv = vec![0u8; integ.icv_len()];
        key.compute(&[b"Hi ", b"There"], &mut icv).unwrap();
        assert_eq!(hex::encode(&icv), want, "{integ:?}");
        key.verify(&[b"Hi There"], &icv).unwrap();
        icv[0] ^= 1;
        assert_eq!(
            key.verify(&[b"Hi There"], &icv),
            Err(CryptoError::Authentication)
        );
        assert!(matches!(
            key.verify(&[b"Hi There"], &icv[1..]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            integ.new_key(&[0; 3]),
            Err(CryptoError::Length { what: "key", .. })
        ));
    }
    // HMAC-SHA1-96 (RFC 2404): RFC 2202 test case 2 truncated to 96 bits.
    let key = ring_backend::HMAC_SHA1_96
        .new_key(b"Jefe\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")
        .unwrap();
    let mut icv = [0u8; 12];
    key.compute(&[b"x"], &mut icv).unwrap();
    key.verify(&[b"x"], &icv).unwrap();
}

#[test]
fn kx_roundtrip_and_encoding() {
    let rng = &ring_backend::SYSTEM_RANDOM;
    for g in [
        &ring_backend::X25519,
        &ring_backend::ECP256,
        &ring_backend::ECP384,
    ] {
        let a = g.start(rng).unwrap();
        assert_eq!(a.public().len(), g.public_len());
        assert_eq!(a.group(), g.id());
        let (b_pub, b_secret) = g.respond(rng, a.public()).unwrap();
        assert_eq!(b_pub.len(), g.public_len());
        let a_secret = a.complete(&b_pub).unwrap();
        assert!(a_secret == b_secret);
        // X25519: 32 bytes; ECP: the x coordinate only (RFC 5903 §9).
        let expected = if g.public_len() == 32 {
            32
        } else {
            g.public_len() / 2
        };
        assert_eq!(a_secret.len(), expected);
    }
}

#[test]
fn kx_rejects_bad_public_values() {
    let rng = &ring_backend::SYSTEM_RANDOM;
    for g in [
        &ring_backend::X25519,
        &ring_backend::ECP256,
        &ring_backend::ECP384,
    ] {
        let n = g.public_len();
        assert!(matches!(
            g.start(rng).unwrap().complete(&vec![1; n - 1]),
            Err(CryptoError::Length {
                what: "public key",
                ..
            })
        ));
        assert!(matches!(
            g.start(rng).unwrap().complete(&vec![1; n + 1]),
            Err(CryptoError::Length {
                what: "public key",
                ..
            })
        ));
        // All zero: a small-order point for X25519, not on the curve for ECP.
        assert_eq!(
            g.start(rng).unwrap().complete(&vec![0; n]).err(),
            Some(CryptoError::InvalidPublicValue)
        );
    }
    // RFC 5903 §8.1: the responder's P-256 point with y negated is still on the curve;
    // with one bit of x flipped it is not.
    let mut gr = h(
        "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
                    56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
    );
    let a = ring_backend::ECP256.start(rng).unwrap();
    let b = ring_backend::ECP256.start(rng).unwrap();
    assert!(a.complete(&gr).is_ok());
    gr[0] ^= 1;
    assert_eq!(b.complete(&gr).err(), Some(CryptoError::InvalidPublicValue));
}

/// Hands out a fixed sequence of bytes, then fails; counts what it gave.
#[derive(Debug)]
struct Script {
    bytes: Vec<u8>,
    pos: std::sync::Mutex<usize>,
}

impl Script {
    fn new(bytes: Vec<u8>) -> Self {
        Script {
            bytes,
            pos: std::sync::Mutex::new(0),
        }
    }
    fn used(&self) -> usize {
        *self.pos.lock().unwrap()
    }
}

impl SecureRandom for Script {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut pos = self.pos.lock().unwrap();
        let src = self
            .bytes
            .get(*pos..*pos + dest.len())
            .ok_or(CryptoError::Random)?;
        dest.copy_from_slice(src);
        *pos += dest.len();
        Ok(())
    }
}

#[test]
fn kx_private_key_comes_from_rng() {
    for (g, len) in [
        (&ring_backend::X25519, 32),
        (&ring_backend::ECP256, 32),
        (&ring_backend::ECP384, 48),
    ] {
        // The same bytes give the same key pair; exactly the key's bytes are drawn.
        let r1 = Script::new(vec![0x11; len]);
        let r2 = Script::new(vec![0x11; len]);
        let (a, b) = (g.start(&r1).unwrap(), g.start(&r2).unwrap());
        assert_eq!(a.public(), b.public());
        assert_eq!((r1.used(), r2.used()), (len, len));
        // A failing source is a random error, not a key from elsewhere.
        assert_eq!(
            g.start(&Script::new(vec![0x11; len - 1])).err(),
            Some(CryptoError::Random)
        );
        assert_eq!(
            g.respond(&Script::new(vec![]), a.public()).err(),
            Some(CryptoError::Random)
        );
    }
}

#[test]
fn ecp_redraws_invalid_scalars() {
    for (g, len) in [(&ring_backend::ECP256, 32), (&ring_backend::ECP384, 48)] {
        // 0xff.. is above the group order and zero is not a valid scalar: both are
        // skipped, and the third candidate is used.
        let mut bytes = vec![0xff; len];
        bytes.extend(vec![0; len]);
        bytes.extend(vec![0x11; len]);
        let r = Script::new(bytes);
        let a = g.start(&r).unwrap();
        assert_eq!(r.used(), 3 * len);
        assert_eq!(
            a.public(),
            g.start(&Script::new(vec![0x11; len])).unwrap().public()
        );
        // Only invalid candidates: give up after MAX_CANDIDATES draws.
        let r = Script::new(vec![0xff; len * (ring_backend::kx::MAX_CANDIDATES + 5)]);
        assert_eq!(g.start(&r).err(), Some(CryptoError::Random));
        assert_eq!(r.used(), len * ring_backend::kx::MAX_CANDIDATES);
    }
}

#[test]
fn system_random_fills() {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    ring_backend::SYSTEM_RANDOM.fill(&mut a).unwrap();
    ring_backend::SYSTEM_RANDOM.fill(&mut b).unwrap();
    assert_ne!(a, b);
    ring_backend::SYSTEM_RANDOM.fill(&mut []).unwrap();
}

#[test]
fn provider_lists_ring_algorithms() {
    let p = &ring_backend::PROVIDER;
    assert_eq!(p.name, "ring");
    assert!(p.aeads.iter().all(|a| a.backend() == "ring"));
    assert!(p.integs.iter().all(|a| a.backend() == "ring"));
    assert!(p.prfs.iter().all(|a| a.backend() == "ring"));
    assert!(p.kx_groups.iter().all(|a| a.backend() == "ring"));
    assert!(p.aead_for(&ipsec_crypto::suites::AES_GCM_16_256).is_some());
    assert!(p.aead_for(&ipsec_crypto::suites::AES_GMAC_128).is_some());
    assert!(!p.supports_encr(&ipsec_crypto::suites::AES_CBC_128));
}

#[test]
fn prf_hash_is_the_plain_digest() {
    // FIPS 180-2 "abc" examples; the provider's SHA-1 is what NAT detection uses.
    assert_eq!(
        ring_backend::PROVIDER.sha1(&[b"a", b"bc"]).unwrap(),
        *h("a9993e364706816aba3e25717850c26c9cd0d89d").as_slice()
    );
    let mut out = [0u8; 32];
    ring_backend::PRF_HMAC_SHA256
        .hash(&[b"abc"], &mut out)
        .unwrap();
    assert_eq!(
        hex::encode(out),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(matches!(
        ring_backend::PRF_HMAC_SHA256.hash(&[b"abc"], &mut out[1..]),
        Err(CryptoError::Length { .. })
    ));
}
