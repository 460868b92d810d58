//! SK payload protection: the RFC 7634 Appendix B message, seal/open round trips for
//! AES-GCM, AES-CCM, AES-CBC + HMAC and AES-CTR + HMAC in both directions, and the
//! RFC 3686 §6 key stream inside an AES-CTR SK payload (RFC 5930).

use ipsec_crypto::{CryptoError, SecureRandom};
use ipsec_crypto_rustcrypto as rc;
use ipsec_ike_wire::{
    open, seal, seal_payloads, DeleteRepr, Message, NotifyRepr, NotifyType, OpenError, Payload,
    PayloadType, SkCrypter, SkKeys,
};
use serde_json::Value;

/// An IV source that hands out fixed bytes (the test vector's IV).
#[derive(Debug)]
struct FixedIv(Vec<u8>);

impl SecureRandom for FixedIv {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
        Ok(())
    }
}

fn vector() -> Value {
    let v: Value = serde_json::from_str(include_str!("vectors/ikev2_sk.json")).unwrap();
    v[0].clone()
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

#[test]
fn rfc7634_appendix_b_opens_and_reseals_identically() {
    let v = vector();
    let message = h(&v, "message");
    let mut keymat = h(&v, "encr_key");
    keymat.extend(h(&v, "salt"));
    let crypter = SkCrypter::aead(&rc::CHACHA20_POLY1305, &keymat).unwrap();

    let mut buf = message.clone();
    let opened = open(&crypter, &mut buf).unwrap();
    assert_eq!(opened.first_inner, PayloadType::NOTIFY);
    let plaintext = h(&v, "plaintext");
    // plaintext = inner payloads ‖ pad length (0)
    assert_eq!(opened.inner, &plaintext[..plaintext.len() - 1]);
    let payloads = opened.parse_payloads().unwrap();
    assert_eq!(
        payloads,
        vec![Payload::Notify(NotifyRepr::new(
            NotifyType::SET_WINDOW_SIZE,
            &[0, 0, 0, 10]
        ))]
    );
    let header = opened.header;
    let inner = opened.inner.to_vec();

    let mut out = Vec::new();
    seal(
        &crypter,
        &header,
        PayloadType::NOTIFY,
        &inner,
        &FixedIv(h(&v, "iv")),
        &mut out,
    )
    .unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&message));
    assert_eq!(&out[28..32], &h(&v, "sk_header")[..]);
    assert_eq!(&out[..32], &h(&v, "aad")[..]);

    // The same through the payload reprs and the message repr.
    let mut out2 = Vec::new();
    seal_payloads(
        &crypter,
        &header,
        &payloads,
        &FixedIv(h(&v, "iv")),
        &mut out2,
    )
    .unwrap();
    assert_eq!(out2, message);
    let m = Message::parse(&message).unwrap();
    assert_eq!(m.sk().unwrap().first_inner, PayloadType::NOTIFY);
}

#[test]
fn rfc7634_rejects_every_bit_flip_and_truncation() {
    let v = vector();
    let message = h(&v, "message");
    let mut keymat = h(&v, "encr_key");
    keymat.extend(h(&v, "salt"));
    let crypter = SkCrypter::aead(&rc::CHACHA20_POLY1305, &keymat).unwrap();
    for i in 0..message.len() {
        for bit in 0..8 {
            let mut m = message.clone();
            m[i] ^= 1 << bit;
            assert!(open(&crypter, &mut m).is_err(), "byte {i} bit {bit}");
        }
    }
    for n in 0..message.len() {
        let mut m = message[..n].to_vec();
        assert!(open(&crypter, &mut m).is_err());
    }
}

fn sample_inner() -> (Vec<u8>, PayloadType) {
    let spis = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let payloads = vec![
        Payload::Delete(DeleteRepr {
            protocol: ipsec_ike_wire::ProtocolId::ESP,
            spi_size: 4,
            spis: &spis,
        }),
        Payload::Notify(NotifyRepr::new(NotifyType(40000), b"hello")),
    ];
    let mut chain = vec![0; payloads.iter().map(|p| p.buffer_len()).sum()];
    ipsec_ike_wire::message::emit_payloads(&payloads, &mut chain);
    (chain, PayloadType::DELETE)
}

fn header(initiator: bool) -> ipsec_ike_wire::IkeHeaderRepr {
    ipsec_ike_wire::IkeHeaderRepr {
        spi_i: ipsec_core::IkeSpi([1; 8]),
        spi_r: ipsec_core::IkeSpi([2; 8]),
        minor_version: 0,
        exchange_type: ipsec_ike_wire::ExchangeType::INFORMATIONAL,
        flags: ipsec_ike_wire::Flags::new(initiator, false),
        message_id: 5,
    }
}

fn roundtrip(keys: &SkKeys) {
    let (chain, first) = sample_inner();
    for initiator in [true, false] {
        let hdr = header(initiator);
        for len in [0, 1, 15, 16, 17, chain.len()] {
            let inner = &chain[..len];
            let mut out = Vec::new();
            keys.seal(&hdr, first, inner, &rc::OS_RANDOM, &mut out)
                .unwrap();
            let parsed = Message::parse(&out).unwrap();
            assert_eq!(parsed.header, hdr);
            let mut buf = out.clone();
            let opened = keys.open(&mut buf).unwrap();
            assert_eq!(opened.inner, inner);
            assert_eq!(opened.first_inner, first);
            assert_eq!(opened.header, hdr);
            // The other direction's keys must not open it.
            let wrong = if initiator {
                &keys.responder
            } else {
                &keys.initiator
            };
            let mut buf = out.clone();
            assert_eq!(open(wrong, &mut buf).unwrap_err(), OpenError::Integrity);
            // Every single-bit flip is caught.
            for i in 0..out.len() {
                let mut m = out.clone();
                m[i] ^= 0x01;
                assert!(keys.open(&mut m).is_err(), "byte {i}");
            }
        }
        let mut buf = Vec::new();
        keys.seal(&hdr, first, &chain, &rc::OS_RANDOM, &mut buf)
            .unwrap();
        let mut b2 = buf.clone();
        let payloads = keys.open(&mut b2).unwrap().parse_payloads().unwrap();
        assert_eq!(payloads.len(), 2);
    }
}

#[test]
fn roundtrip_aes_gcm_both_directions() {
    for alg in [&rc::AES_128_GCM, &rc::AES_256_GCM] {
        use ipsec_crypto::AeadAlgorithm;
        let n = alg.key_len() + 4;
        let keys = SkKeys::aead(alg, &vec![0x11; n], &vec![0x22; n]).unwrap();
        roundtrip(&keys);
        assert!(SkKeys::aead(alg, &vec![0; n - 1], &vec![0; n]).is_err());
    }
}

#[test]
fn roundtrip_chacha20_poly1305_both_directions() {
    let keys = SkKeys::aead(&rc::CHACHA20_POLY1305, &[0x33; 36], &[0x44; 36]).unwrap();
    roundtrip(&keys);
}

#[test]
fn roundtrip_aes_ccm_both_directions() {
    // RFC 5282 §4: SK_e is the key and a 3-byte salt; the nonce is salt || 8-byte IV.
    use ipsec_crypto::AeadAlgorithm;
    for alg in [&rc::AES_128_CCM_8, &rc::AES_192_CCM_12, &rc::AES_256_CCM_16] {
        let n = alg.key_len() + 3;
        let keys = SkKeys::aead(alg, &vec![0x11; n], &vec![0x22; n]).unwrap();
        assert_eq!(keys.initiator.icv_len(), alg.tag_len());
        assert_eq!(keys.initiator.iv_len(), 8);
        roundtrip(&keys);
        assert!(SkKeys::aead(alg, &vec![0; n + 1], &vec![0; n]).is_err());
    }
}

#[test]
fn roundtrip_aes_ctr_hmac_both_directions() {
    use ipsec_crypto::IntegAlgorithm;
    for (cipher, klen) in [
        (&rc::AES_128_CTR, 16),
        (&rc::AES_192_CTR, 24),
        (&rc::AES_256_CTR, 32),
    ] {
        let integ = &rc::HMAC_SHA256_128;
        let ik = integ.key_len();
        // RFC 5930 §3: SK_e is the AES key followed by the 4-byte nonce.
        let keys = SkKeys::cipher_integ(
            cipher,
            integ,
            &vec![1; klen + 4],
            &vec![2; ik],
            &vec![3; klen + 4],
            &vec![4; ik],
        )
        .unwrap();
        assert_eq!(
            (keys.initiator.iv_len(), keys.initiator.block_len()),
            (8, 1)
        );
        roundtrip(&keys);
        // Without the nonce SK_e is refused.
        assert!(SkKeys::cipher_integ(
            cipher,
            integ,
            &vec![1; klen],
            &[2; 32],
            &vec![3; klen + 4],
            &[4; 32]
        )
        .is_err());
    }
}

/// RFC 3686 §6 test vector #2 as the inner data of an AES-CTR SK payload: with its
/// key and nonce as SK_e and its IV in the payload, the encrypted inner bytes are the
/// vector's ciphertext (no padding: the block size is 1, RFC 5930 §2).
#[test]
fn aes_ctr_sk_payload_carries_the_rfc3686_key_stream() {
    let key_nonce = hex::decode("7e24067817fae0d743d6ce1f32539163006cb6db").unwrap();
    let iv = hex::decode("c0543b59da48d90b").unwrap();
    let pt =
        hex::decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
    let ct =
        hex::decode("5104a106168a72d9790d41ee8edad388eb2e1efc46da57c8fce630df9141be28").unwrap();
    let keys = SkKeys::cipher_integ(
        &rc::AES_128_CTR,
        &rc::HMAC_SHA256_128,
        &key_nonce,
        &[2; 32],
        &key_nonce,
        &[4; 32],
    )
    .unwrap();
    let mut out = Vec::new();
    keys.seal(
        &header(true),
        PayloadType::NOTIFY,
        &pt,
        &FixedIv(iv.clone()),
        &mut out,
    )
    .unwrap();
    // IKE header (28), SK header (4), IV (8), inner (32), pad length (1), ICV (16).
    assert_eq!(out.len(), 28 + 4 + 8 + 32 + 1 + 16);
    assert_eq!(&out[32..40], &iv[..]);
    assert_eq!(hex::encode(&out[40..72]), hex::encode(&ct));
    let mut buf = out.clone();
    assert_eq!(keys.open(&mut buf).unwrap().inner, &pt[..]);
}

#[test]
fn roundtrip_aes_cbc_hmac_both_directions() {
    for (cipher, klen) in [(&rc::AES_128_CBC, 16), (&rc::AES_256_CBC, 32)] {
        for integ in [
            &rc::HMAC_SHA256_128,
            &rc::HMAC_SHA512_256,
            &rc::HMAC_SHA1_96,
        ] {
            use ipsec_crypto::IntegAlgorithm;
            let ik = integ.key_len();
            let keys = SkKeys::cipher_integ(
                cipher,
                integ,
                &vec![1; klen],
                &vec![2; ik],
                &vec![3; klen],
                &vec![4; ik],
            )
            .unwrap();
            roundtrip(&keys);
            // CBC output is a whole number of blocks after the 16-byte IV.
            let mut out = Vec::new();
            keys.seal(
                &header(true),
                PayloadType::NOTIFY,
                &[0; 5],
                &rc::OS_RANDOM,
                &mut out,
            )
            .unwrap();
            assert_eq!((out.len() - 32 - 16 - integ.icv_len()) % 16, 0);
        }
    }
}

#[test]
fn open_rejects_messages_without_sk() {
    let keys = SkKeys::aead(&rc::AES_128_GCM, &[0; 20], &[0; 20]).unwrap();
    let v: Value = serde_json::from_str(include_str!("vectors/ikev2_messages.json")).unwrap();
    let mut init = hex::decode(v[1]["message"].as_str().unwrap()).unwrap();
    assert!(matches!(keys.open(&mut init), Err(OpenError::Malformed(_))));
    // Real SK messages from captures whose keys we do not have: never Ok.
    for m in v.as_array().unwrap() {
        let mut b = hex::decode(m["message"].as_str().unwrap()).unwrap();
        assert!(keys.open(&mut b).is_err());
    }
}

#[test]
fn open_errors_map_to_responses() {
    use ipsec_ike_wire::ErrorResponse;
    let keys = SkKeys::aead(&rc::AES_128_GCM, &[1; 20], &[2; 20]).unwrap();
    let mut out = Vec::new();
    keys.seal(
        &header(true),
        PayloadType::NOTIFY,
        &[0; 8],
        &rc::OS_RANDOM,
        &mut out,
    )
    .unwrap();
    // Forged: silence.
    let mut forged = out.clone();
    *forged.last_mut().unwrap() ^= 1;
    let e = keys.open(&mut forged.clone()).unwrap_err();
    assert_eq!(e, OpenError::Integrity);
    assert_eq!(e.error_response(&forged), ErrorResponse::Silent);
    // Malformed outside the protected data: silence.
    let mut short = out[..40].to_vec();
    short[24..28].copy_from_slice(&40u32.to_be_bytes());
    let e = keys.open(&mut short.clone()).unwrap_err();
    assert!(matches!(e, OpenError::Malformed(_)));
    assert_eq!(e.error_response(&short), ErrorResponse::Silent);
    // Authentic but with an impossible pad length: INVALID_SYNTAX to a request.
    let e = OpenError::Padding;
    assert_eq!(e.error_response(&out), ErrorResponse::InvalidSyntax);
    let mut resp = out.clone();
    resp[19] |= 0x20;
    assert_eq!(e.error_response(&resp), ErrorResponse::Silent);
}

#[test]
fn authentic_bad_pad_length_is_padding_error() {
    // An authentic message whose pad length exceeds the decrypted data can only come
    // from a peer holding the keys; build one by encrypting a block of 0xff ourselves.
    let keys = SkKeys::cipher_integ(
        &rc::AES_128_CBC,
        &rc::HMAC_SHA256_128,
        &[1; 16],
        &[2; 32],
        &[3; 16],
        &[4; 32],
    )
    .unwrap();
    let mut out = Vec::new();
    keys.seal(
        &header(true),
        PayloadType::NOTIFY,
        &[0xff; 15],
        &rc::OS_RANDOM,
        &mut out,
    )
    .unwrap();
    let mut b = out.clone();
    assert_eq!(keys.open(&mut b).unwrap().inner, &[0xff; 15]);
    use ipsec_crypto::{CipherAlgorithm, IntegAlgorithm};
    let cipher = rc::AES_128_CBC.new_key(&[1; 16]).unwrap();
    let integ = rc::HMAC_SHA256_128.new_key(&[2; 32]).unwrap();
    let mut msg = out.clone();
    let iv: Vec<u8> = msg[32..48].to_vec();
    let mut block = [0xffu8; 16];
    cipher.encrypt(&iv, &mut block).unwrap();
    msg[48..64].copy_from_slice(&block);
    let icv_at = msg.len() - 16;
    let mut icv = [0u8; 16];
    integ.compute(&[&msg[..icv_at]], &mut icv).unwrap();
    msg[icv_at..].copy_from_slice(&icv);
    assert_eq!(keys.open(&mut msg).unwrap_err(), OpenError::Padding);
}
