//! Every message of `tests/vectors/ikev2_messages.json` (copied from the shared vector
//! set) parses with the recorded payload chain, re-emits byte for byte, and every
//! truncation of it is an error.

use ipsec_ike_wire::{
    error_response, is_canonical, ErrorResponse, Message, Payload, PayloadType, Trust,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("vectors/ikev2_messages.json");
    serde_json::from_str::<Value>(text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn type_name(t: PayloadType) -> String {
    match t {
        PayloadType::SA => "SA".into(),
        PayloadType::KE => "KE".into(),
        PayloadType::IDI => "IDi".into(),
        PayloadType::IDR => "IDr".into(),
        PayloadType::CERT => "CERT".into(),
        PayloadType::CERTREQ => "CERTREQ".into(),
        PayloadType::AUTH => "AUTH".into(),
        PayloadType::NONCE => "Nonce".into(),
        PayloadType::NOTIFY => "N".into(),
        PayloadType::DELETE => "D".into(),
        PayloadType::VENDOR_ID => "V".into(),
        PayloadType::TSI => "TSi".into(),
        PayloadType::TSR => "TSr".into(),
        PayloadType::CP => "CP".into(),
        PayloadType::EAP => "EAP".into(),
        PayloadType::NONE => "NONE".into(),
        other => format!("{}", other.0),
    }
}

fn chain_of(m: &Message<'_>) -> Vec<String> {
    m.payloads
        .iter()
        .map(|p| match p {
            Payload::Notify(n) => format!("N({})", n.notify_type.0),
            Payload::Sk(sk) => format!("SK[inner first={}]", type_name(sk.first_inner)),
            Payload::Skf(f) => format!("SKF[inner first={}]", type_name(f.first_inner)),
            other => type_name(other.payload_type()),
        })
        .collect()
}

#[test]
fn parse_every_vector_with_its_chain() {
    let vs = vectors();
    assert_eq!(vs.len(), 44);
    for v in &vs {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["message"].as_str().unwrap()).unwrap();
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<String> = v["payload_chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(chain_of(&m), want, "{name}");
        assert_eq!(
            m.header.message_id,
            v["message_id"].as_u64().unwrap() as u32,
            "{name}"
        );
        assert_eq!(
            hex::encode(m.header.spi_i.0),
            v["spi_i"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(m.header.spi_r.0),
            v["spi_r"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            bytes.len(),
            v["length"].as_u64().unwrap() as usize,
            "{name}"
        );
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(
            m.header.flags.is_initiator(),
            flags.contains(&"Initiator"),
            "{name}"
        );
        assert_eq!(
            m.header.flags.is_response(),
            flags.contains(&"Response"),
            "{name}"
        );
        assert_eq!(
            format!("{:?}", m.header.exchange_type),
            v["exchange"].as_str().unwrap(),
            "{name}"
        );
        // The UDP payload, when recorded, is the message (after a non-ESP marker on 4500).
        if let Some(udp) = v["udp_payload"].as_str() {
            let udp = hex::decode(udp).unwrap();
            assert!(
                udp == bytes || (udp[..4] == [0; 4] && udp[4..] == bytes[..]),
                "{name}"
            );
        }
    }
}

#[test]
fn reemit_every_vector_byte_identical() {
    for v in &vectors() {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["message"].as_str().unwrap()).unwrap();
        assert!(is_canonical(&bytes), "{name}");
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.buffer_len(), bytes.len(), "{name}");
        assert_eq!(m.to_vec(), bytes, "{name}");
        // emit must not rely on a zeroed buffer
        let mut dirty = vec![0xa5; bytes.len()];
        m.emit(&mut dirty);
        assert_eq!(dirty, bytes, "{name}");
    }
}

#[test]
fn rejects_truncated_every_vector_at_every_offset() {
    for v in &vectors() {
        let bytes = hex::decode(v["message"].as_str().unwrap()).unwrap();
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            let e = Message::parse(cut).unwrap_err();
            // Unprotected garbage is never answered.
            assert_eq!(
                error_response(cut, &e, Trust::Unauthenticated),
                ErrorResponse::Silent
            );
            // A truncated buffer whose Length field was fixed up is still an error.
            if n >= 28 {
                let mut fixed = cut.to_vec();
                fixed[24..28].copy_from_slice(&(n as u32).to_be_bytes());
                assert!(Message::parse(&fixed).is_err() || n == bytes.len());
            }
        }
    }
}

#[test]
fn vectors_payload_details() {
    let vs = vectors();
    // rusticata ike-sa-init-req.bin: AES-CBC-128 + Key Length attribute
    let bytes = hex::decode(vs[1]["message"].as_str().unwrap()).unwrap();
    let m = Message::parse(&bytes).unwrap();
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!()
    };
    assert_eq!(sa.proposals[0].transforms[0].key_length(), Some(128));
    let Payload::Ke(ke) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(ke.data.len(), 128);
    let Payload::Nonce(n) = &m.payloads[2] else {
        panic!()
    };
    assert!(n.data.len() >= 16);
}

#[test]
fn reserved_bits_are_ignored_and_cleared_on_reemit() {
    let vs = vectors();
    let bytes = hex::decode(vs[2]["message"].as_str().unwrap()).unwrap();
    // Generic header reserved bits of the first payload (SA), and the critical bit on a
    // known payload: both ignored on receipt (RFC 7296 §3.2), cleared when re-emitted.
    for (at, bit) in [(29usize, 0x01u8), (29, 0x80)] {
        let mut b = bytes.clone();
        b[at] |= bit;
        assert!(!is_canonical(&b));
        let m = Message::parse(&b).unwrap();
        assert_eq!(m, Message::parse(&bytes).unwrap());
        assert_eq!(m.to_vec(), bytes);
    }
    // A message that frames correctly but has an invalid payload is not canonical.
    let mut b = bytes.clone();
    b[17] = 0x20;
    assert!(is_canonical(&b));
    let nonce_at = {
        let m = Message::parse(&bytes).unwrap();
        28 + m.payloads[0].buffer_len() + m.payloads[1].buffer_len()
    };
    let mut b = bytes.clone();
    b[nonce_at + 3] = 8; // nonce payload length 8: 4 bytes of nonce
    assert!(!is_canonical(&b));
}
