//! Helpers shared by the bench programs (`mod common;` in each): test packets and a
//! boringtun peer pair. Not every bench uses every helper.
#![allow(dead_code)]

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

/// An IPv4 packet of `len` bytes (header with a correct length, then filler).
pub fn ipv4_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let c = ipsec_core::ip::ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// Two boringtun peers with an established session, `a` sending to `b`.
pub fn wireguard_pair() -> (Tunn, Tunn) {
    let a_sk = StaticSecret::from([1u8; 32]);
    let b_sk = StaticSecret::from([2u8; 32]);
    let a_pk = PublicKey::from(&a_sk);
    let b_pk = PublicKey::from(&b_sk);
    let mut a = Tunn::new(a_sk, b_pk, None, None, 1, None);
    let mut b = Tunn::new(b_sk, a_pk, None, None, 2, None);
    let mut buf_a = vec![0u8; 2048];
    let mut buf_b = vec![0u8; 2048];
    let init = match a.format_handshake_initiation(&mut buf_a, false) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no handshake initiation"),
    };
    let resp = match b.decapsulate(None, &init, &mut buf_b) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no handshake response"),
    };
    // The initiator completes the handshake and sends a keepalive, which confirms
    // the session to the responder.
    if let TunnResult::WriteToNetwork(k) = a.decapsulate(None, &resp, &mut buf_a) {
        let k = k.to_vec();
        let _ = b.decapsulate(None, &k, &mut buf_b);
    }
    (a, b)
}
