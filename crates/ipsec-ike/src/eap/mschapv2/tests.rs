//! Known answers (RFC 2759 §9.2, RFC 3079 §3.5.3), then whole conversations, then
//! arbitrary bytes into every parser and both sides in every state.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::vec::Vec;

use ipsec_crypto::{CryptoError, SecureRandom};
use proptest::prelude::*;

use super::crypto::{self, NtHash};
use super::wire::{self, Reply, Request};
use super::*;
use crate::eap::{EapAuthenticator, EapPeer};

fn h(s: &str) -> Vec<u8> {
    let s: std::string::String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn a<const N: usize>(s: &str) -> [u8; N] {
    h(s).try_into().unwrap()
}

/// Hands out the given bytes in order, then fails.
#[derive(Debug)]
struct Fixed(Mutex<VecDeque<u8>>);

impl Fixed {
    fn new(b: &[u8]) -> Self {
        Fixed(Mutex::new(b.iter().copied().collect()))
    }
}

impl SecureRandom for Fixed {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut q = self.0.lock().unwrap();
        if q.len() < dest.len() {
            return Err(CryptoError::Random);
        }
        for d in dest {
            *d = q.pop_front().unwrap();
        }
        Ok(())
    }
}

/// A seeded stream that never runs out (an LCG: enough for test challenges).
#[derive(Debug)]
struct Stream(Mutex<u64>);

impl SecureRandom for Stream {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut s = self.0.lock().unwrap();
        for d in dest {
            *s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *d = (*s >> 56) as u8;
        }
        Ok(())
    }
}

// RFC 2759 §9.2, "Hash Example": user name "User", password "clientPass".
const AUTH_CHALLENGE: &str = "5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28";
const PEER_CHALLENGE: &str = "21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E";
const NT_RESPONSE: &str = "82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF";

#[test]
fn rfc2759_hash_example() {
    let auth: [u8; 16] = a(AUTH_CHALLENGE);
    let peer: [u8; 16] = a(PEER_CHALLENGE);
    assert_eq!(
        crypto::challenge_hash(&peer, &auth, b"User").to_vec(),
        h("D0 2E 43 86 BC E9 12 26")
    );
    let hash = NtHash::from_password("clientPass");
    assert_eq!(
        hash.expose_for_test().to_vec(),
        h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
    );
    assert_eq!(
        hash.hash_hash_for_test().to_vec(),
        h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
    );
    let nt = crypto::nt_response(&auth, &peer, b"User", &hash);
    assert_eq!(nt.to_vec(), h(NT_RESPONSE));
    let resp = crypto::authenticator_response(&hash, &nt, &peer, &auth, b"User");
    let msg = wire::success_request(0, &resp, "");
    // OpCode, ID, MS-Length, then the text.
    assert_eq!(&msg[4..46], b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
    // The domain is not part of the user name (RFC 2759 §8.2).
    assert_eq!(
        crypto::nt_response(&auth, &peer, crypto::strip_domain(b"ACME\\User"), &hash),
        nt
    );
}

#[test]
fn rfc3079_128_bit_keys() {
    // RFC 3079 §3.5.3: the §9.2 values of RFC 2759 carried on to the keys.
    let hash = NtHash::from_password("clientPass");
    let nt: [u8; 24] = a(NT_RESPONSE);
    let master = crypto::master_key(&hash, &nt);
    assert_eq!(
        master.to_vec(),
        h("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
    );
    // The RFC's SendStartKey128 is the send key of the server side (Magic3), which
    // is the client's receive key.
    let send = h("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB");
    assert_eq!(
        crypto::asymmetric_start_key(&master, true, true).to_vec(),
        send
    );
    assert_eq!(
        crypto::asymmetric_start_key(&master, false, false).to_vec(),
        send
    );
    let other = crypto::asymmetric_start_key(&master, true, false);
    assert_ne!(other.to_vec(), send);
    assert_eq!(*other, *crypto::asymmetric_start_key(&master, false, true));
    // The MSK: server receive key, server send key, 32 zero bytes.
    let msk = crypto::msk(&hash, &nt);
    assert_eq!(msk.len(), 64);
    assert_eq!(&msk.expose()[..16], &other[..]);
    assert_eq!(&msk.expose()[16..32], &send[..]);
    assert_eq!(&msk.expose()[32..], &[0u8; 32]);
}

#[test]
fn nt_hash_of_non_ascii_passwords_uses_utf16_surrogates() {
    // "é" is U+00E9, "😀" U+1F600 the surrogate pair D83D DE00 (RFC 2781 §2.1);
    // RFC 2759 §8.3 hashes those code units little-endian.
    use md4::{Digest, Md4};
    let units: Vec<u8> = [0x00e9u16, 0xd83d, 0xde00]
        .iter()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let want: [u8; 16] = Md4::digest(&units).into();
    assert_eq!(NtHash::from_password("é😀").expose_for_test(), &want);
}

/// One conversation between a server and a peer; returns the peer's last error
/// (if any) and the server's verdict.
fn converse(
    server: &mut dyn EapServerMethod,
    peer: &mut dyn EapPeerMethod,
    rng: &dyn SecureRandom,
) -> (Option<EapError>, &'static str) {
    let mut req = server.initiate(rng).unwrap();
    for _ in 0..4 {
        let resp = match peer.process(rng, &req) {
            Ok(r) => r,
            Err(e) => return (Some(e), "peer stopped"),
        };
        match server.process(rng, &resp) {
            EapVerdict::Request(r) => req = r,
            EapVerdict::Success => return (None, "success"),
            EapVerdict::Failure => return (None, "failure"),
        }
    }
    panic!("conversation did not end");
}

#[test]
fn full_conversation_agrees_on_a_64_byte_msk() {
    // Server: 1 byte ID + 16 bytes challenge; peer: 16 bytes peer challenge.
    let rng = Fixed::new(&[0x42; 33]);
    let mut server = MsChapV2Server::new(b"ACME\\alice", "correct horse");
    let mut peer = MsChapV2Peer::new(b"ACME\\alice", "correct horse");
    assert!(server.msk().is_none() && peer.msk().is_none());
    assert_eq!(converse(&mut server, &mut peer, &rng), (None, "success"));
    let (s, p) = (server.msk().unwrap(), peer.msk().unwrap());
    assert_eq!(s.len(), 64);
    assert!(s == p);
    assert_eq!(&s.expose()[32..], &[0u8; 32]);
    // It is the RFC 3079 layout over this run's NT-Response.
    let challenge = [0x42; 16];
    let nt = crypto::nt_response(
        &challenge,
        &[0x42; 16],
        b"alice",
        &NtHash::from_password("correct horse"),
    );
    assert!(s == crypto::msk(&NtHash::from_password("correct horse"), &nt));
    // Done: anything more is refused.
    assert!(matches!(server.process(&rng, &[3]), EapVerdict::Failure));
    assert_eq!(peer.process(&rng, &[3, 0, 0, 4]), Err(EapError::Malformed));
}

#[test]
fn messages_have_the_draft_layout() {
    let rng = Fixed::new(&[7; 33]);
    let mut server = MsChapV2Server::new(b"bob", "pw").with_name(b"gw");
    let req = server.initiate(&rng).unwrap();
    // OpCode 1, ID, MS-Length 23, Value-Size 16, challenge, name.
    assert_eq!(&req[..5], &[1, 7, 0, 23, 16]);
    assert_eq!(&req[5..21], &[7; 16]);
    assert_eq!(&req[21..], b"gw");
    let mut peer = MsChapV2Peer::new(b"bob", "pw");
    let resp = peer.process(&rng, &req).unwrap();
    // OpCode 2, same ID, MS-Length 57, Value-Size 49, ..., name.
    assert_eq!(&resp[..5], &[2, 7, 0, 57, 49]);
    assert_eq!(&resp[21..29], &[0; 8]);
    assert_eq!(resp[53], 0);
    assert_eq!(&resp[54..], b"bob");
    let EapVerdict::Request(ok) = server.process(&rng, &resp) else {
        panic!("no Success request");
    };
    assert_eq!(&ok[..4], &[3, 7, 0, ok.len() as u8]);
    assert!(ok[4..].starts_with(b"S="));
    assert!(ok[4..].ends_with(b" M=Welcome"));
    assert_eq!(peer.process(&rng, &ok).unwrap(), vec![3]);
}

#[test]
fn wrong_password_gets_failure_request_then_failure() {
    let rng = Stream(Mutex::new(1));
    let mut server = MsChapV2Server::new(b"alice", "right");
    let mut peer = MsChapV2Peer::new(b"alice", "wrong");
    let req = server.initiate(&rng).unwrap();
    let resp = peer.process(&rng, &req).unwrap();
    let EapVerdict::Request(fail) = server.process(&rng, &resp) else {
        panic!("no Failure request");
    };
    assert_eq!(fail[0], 4);
    let text = core::str::from_utf8(&fail[4..]).unwrap();
    assert!(text.starts_with("E=691 R=0 C="), "{text}");
    assert!(text.ends_with(" V=3 M=Authentication failed"), "{text}");
    assert_eq!(peer.process(&rng, &fail).unwrap(), vec![4]);
    let f = peer.failure().unwrap();
    assert_eq!((f.error, f.retry), (691, false));
    assert_eq!(f.message, "Authentication failed");
    assert!(peer.msk().is_none());
    assert!(matches!(server.process(&rng, &[4]), EapVerdict::Failure));
    assert!(server.msk().is_none());
    // The peer stays refused, and says why.
    assert_eq!(
        peer.process(&rng, &req),
        Err(EapError::AuthenticationFailed)
    );
}

#[test]
fn forged_authenticator_response_is_refused() {
    let rng = Stream(Mutex::new(2));
    let mut server = MsChapV2Server::new(b"alice", "pw");
    let mut peer = MsChapV2Peer::new(b"alice", "pw");
    let req = server.initiate(&rng).unwrap();
    let resp = peer.process(&rng, &req).unwrap();
    let EapVerdict::Request(mut ok) = server.process(&rng, &resp) else {
        panic!("no Success request");
    };
    // Flip one hex digit of S=.
    ok[10] = if ok[10] == b'0' { b'1' } else { b'0' };
    assert_eq!(peer.process(&rng, &ok), Err(EapError::AuthenticationFailed));
    assert!(peer.msk().is_none());
}

#[test]
fn a_server_impersonator_without_the_password_is_refused() {
    // A server that does not know the password answers Success with its own guess.
    let rng = Stream(Mutex::new(3));
    let mut real = MsChapV2Server::new(b"alice", "pw");
    let mut fake = MsChapV2Server::new(b"alice", "guess");
    let mut peer = MsChapV2Peer::new(b"alice", "pw");
    let req = fake.initiate(&rng).unwrap();
    let resp = peer.process(&rng, &req).unwrap();
    // The fake cannot verify the response, so it has no Success to send; replaying
    // a Success request made for another challenge does not work either.
    assert!(matches!(fake.process(&rng, &resp), EapVerdict::Request(r) if r[0] == 4));
    let req2 = real.initiate(&rng).unwrap();
    let mut other = MsChapV2Peer::new(b"alice", "pw");
    let resp2 = other.process(&rng, &req2).unwrap();
    let EapVerdict::Request(ok2) = real.process(&rng, &resp2) else {
        panic!()
    };
    assert_eq!(
        peer.process(&rng, &ok2),
        Err(EapError::AuthenticationFailed)
    );
}

#[test]
fn out_of_order_messages_fail() {
    let rng = Stream(Mutex::new(4));
    // Before initiate.
    let mut server = MsChapV2Server::new(b"alice", "pw");
    assert!(matches!(server.process(&rng, &[3]), EapVerdict::Failure));
    // A Success acknowledgement instead of the Response.
    let mut server = MsChapV2Server::new(b"alice", "pw");
    server.initiate(&rng).unwrap();
    assert!(matches!(server.process(&rng, &[3]), EapVerdict::Failure));
    assert!(server.msk().is_none());
    // A Response with the wrong MS-CHAPv2-ID.
    let mut server = MsChapV2Server::new(b"alice", "pw");
    let mut req = server.initiate(&rng).unwrap();
    req[1] ^= 1;
    let resp = MsChapV2Peer::new(b"alice", "pw")
        .process(&rng, &req)
        .unwrap();
    assert!(matches!(server.process(&rng, &resp), EapVerdict::Failure));
    // The peer: a Success request before any Challenge.
    let mut peer = MsChapV2Peer::new(b"alice", "pw");
    let ok = wire::success_request(1, &[0; 20], "x");
    assert_eq!(peer.process(&rng, &ok), Err(EapError::Malformed));
    // The peer: a second Challenge.
    let mut peer = MsChapV2Peer::new(b"alice", "pw");
    let ch = wire::challenge(1, &[1; 16], b"s").unwrap();
    peer.process(&rng, &ch).unwrap();
    assert_eq!(peer.process(&rng, &ch), Err(EapError::Malformed));
    // A failing random source.
    let mut server = MsChapV2Server::new(b"alice", "pw");
    assert_eq!(server.initiate(&Fixed::new(&[])), Err(EapError::Random));
    let mut peer = MsChapV2Peer::new(b"alice", "pw");
    assert_eq!(peer.process(&Fixed::new(&[]), &ch), Err(EapError::Random));
}

#[test]
fn unknown_user_fails_like_a_wrong_password() {
    let auth = PasswordAuthenticator::from_passwords([("alice", "pw")]);
    let run = |id: &[u8], pw: &str, seed: u64| {
        let rng = Stream(Mutex::new(seed));
        let mut server = auth.start(id).unwrap();
        let mut peer = PasswordPeer::new(id, pw).start(EapType::MSCHAPV2).unwrap();
        let req = server.initiate(&rng).unwrap();
        let resp = peer.process(&rng, &req).unwrap();
        let v = server.process(&rng, &resp);
        let EapVerdict::Request(r) = v else {
            return (Vec::new(), None);
        };
        (r, server.msk())
    };
    let (known, _) = run(b"alice", "nope", 5);
    let (unknown, _) = run(b"mallory", "nope", 5);
    assert_eq!(known[0], 4);
    // Identical apart from the fresh challenge (C=): the unknown user's run drew
    // 16 more random bytes first, so it differs there only.
    assert_eq!(known.len(), unknown.len());
    let c = |m: &[u8]| {
        let t = core::str::from_utf8(&m[4..]).unwrap();
        t.split(' ')
            .filter(|f| !f.starts_with("C="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(c(&known[..]), c(&unknown[..]));
    let (good, _) = run(b"alice", "pw", 5);
    assert_eq!(good[0], 3);
}

#[test]
fn password_authenticator_and_peer_succeed_together() {
    let auth = PasswordAuthenticator::new(|id| {
        (id == b"carol@example.org").then(|| NtHash::from_password("s3cret"))
    })
    .with_server_name(b"vpn");
    let creds = PasswordPeer::new("carol@example.org", "s3cret");
    assert_eq!(creds.identity(), b"carol@example.org");
    assert_eq!(creds.methods(), vec![EapType::MSCHAPV2]);
    assert!(creds.start(EapType::TLS).is_none());
    let rng = Stream(Mutex::new(6));
    let mut server = auth.start(b"carol@example.org").unwrap();
    let mut peer = creds.start(EapType::MSCHAPV2).unwrap();
    assert_eq!(server.method(), EapType::MSCHAPV2);
    assert_eq!(peer.method(), EapType::MSCHAPV2);
    assert_eq!(converse(&mut *server, &mut *peer, &rng), (None, "success"));
    assert!(server.msk().unwrap() == peer.msk().unwrap());
    // Nothing secret in Debug.
    let d = std::format!("{auth:?} {creds:?} {:?}", NtHash::from_password("s3cret"));
    assert!(!d.contains("s3cret"));
}

#[test]
fn eap_packets_carry_the_messages() {
    // The whole EAP packet around a Challenge (RFC 3748 §4, type 26).
    let rng = Fixed::new(&[9; 17]);
    let data = MsChapV2Server::new(b"a", "b").initiate(&rng).unwrap();
    let pkt = crate::eap::EapPacket {
        code: crate::eap::EapCode::REQUEST,
        identifier: 1,
        ty: Some(EapType::MSCHAPV2),
        data: &data,
    }
    .to_vec()
    .unwrap();
    // MS-Length is the EAP Length less 5.
    assert_eq!(
        u16::from_be_bytes([pkt[2], pkt[3]]) - 5,
        u16::from_be_bytes([pkt[7], pkt[8]])
    );
    let p = crate::eap::EapPacket::parse(&pkt).unwrap();
    assert!(matches!(
        wire::parse_request(p.data),
        Ok(Request::Challenge { id: 9, .. })
    ));
}

#[test]
fn success_and_failure_texts_parse() {
    let auth = a::<20>("407A5589115FD0D6209F510FE9C04566932CDA56");
    assert_eq!(
        wire::parse_success(b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=hi there"),
        Ok((auth, "hi there".into()))
    );
    // Lower-case hex, no message, a trailing NUL (strongSwan sends one).
    assert_eq!(
        wire::parse_success(b"S=407a5589115fd0d6209f510fe9c04566932cda56\0"),
        Ok((auth, std::string::String::new()))
    );
    for bad in [
        &b"S=407A5589115FD0D6209F510FE9C04566932CDA5"[..],
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56X",
        b"S=407A5589115FD0D6209F510FE9C04566932CDAZZ",
        b"M=x S=407A5589115FD0D6209F510FE9C04566932CDA56",
        b"",
    ] {
        assert_eq!(wire::parse_success(bad), Err(EapError::Malformed));
    }
    let f = wire::parse_failure(
        b"E=648 R=1 C=00112233445566778899AABBCCDDEEFF V=3 M=Password expired\0",
    )
    .unwrap();
    assert_eq!((f.error, f.retry, f.version), (648, true, Some(3)));
    assert_eq!(f.message, "Password expired");
    assert_eq!(wire::parse_failure(b"E=691").unwrap().error, 691);
    for bad in [&b"R=0"[..], b"E=x", b"E=691 C=00", b"E=99999999999", b""] {
        assert_eq!(wire::parse_failure(bad), Err(EapError::Malformed));
    }
}

#[test]
fn parsers_refuse_short_and_wrong_sizes() {
    assert_eq!(wire::parse_request(&[]), Err(EapError::Truncated));
    assert_eq!(wire::parse_request(&[1, 0, 0]), Err(EapError::Truncated));
    assert_eq!(wire::parse_request(&[1, 0, 0, 5]), Err(EapError::Truncated));
    assert_eq!(
        wire::parse_request(&[1, 0, 0, 5, 15]),
        Err(EapError::Malformed)
    );
    assert_eq!(wire::parse_request(&[7, 0, 0, 4]), Err(EapError::Malformed));
    assert_eq!(wire::parse_response(&[]), Err(EapError::Truncated));
    assert_eq!(wire::parse_response(&[3]), Ok(Reply::SuccessAck));
    assert_eq!(wire::parse_response(&[4]), Ok(Reply::FailureAck));
    assert_eq!(wire::parse_response(&[2, 0, 0]), Err(EapError::Truncated));
    let mut r = std::vec![2, 0, 0, 54, 48];
    r.extend_from_slice(&[0; 49]);
    assert_eq!(wire::parse_response(&r), Err(EapError::Malformed));
    r[4] = 49;
    assert_eq!(wire::parse_response(&r[..50]), Err(EapError::Truncated));
    assert!(matches!(
        wire::parse_response(&r),
        Ok(Reply::Response { name: &[], .. })
    ));
    assert_eq!(wire::parse_response(&[1]), Err(EapError::Malformed));
}

/// Brings a server and a peer to a state: 0 fresh, 1 after the challenge, 2 after
/// the Success request (server) / the Response (peer), 3 done.
fn at_state(n: u8, right_password: bool) -> (MsChapV2Server, MsChapV2Peer, Stream) {
    let rng = Stream(Mutex::new(u64::from(n) + 10));
    let mut server = MsChapV2Server::new(b"u", "pw");
    let mut peer = MsChapV2Peer::new(b"u", if right_password { "pw" } else { "x" });
    if n == 0 {
        return (server, peer, rng);
    }
    let req = server.initiate(&rng).unwrap();
    if n == 1 {
        return (server, peer, rng);
    }
    let resp = peer.process(&rng, &req).unwrap();
    let EapVerdict::Request(next) = server.process(&rng, &resp) else {
        panic!()
    };
    if n == 2 {
        return (server, peer, rng);
    }
    let ack = peer.process(&rng, &next).unwrap();
    let _ = server.process(&rng, &ack);
    (server, peer, rng)
}

proptest! {
    #[test]
    fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = wire::parse_request(&b);
        let _ = wire::parse_response(&b);
        let _ = wire::parse_success(&b);
        let _ = wire::parse_failure(&b);
        let _ = crate::eap::EapPacket::parse(&b);
    }

    #[test]
    fn both_sides_never_panic_in_any_state(
        n in 0u8..4,
        right in any::<bool>(),
        op in 0u8..9,
        b in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        // Half the time the fuzz bytes start with a real OpCode.
        let mut data = b;
        if op < 8 && !data.is_empty() {
            data[0] = op;
        }
        let (mut server, mut peer, rng) = at_state(n, right);
        let v = server.process(&rng, &data);
        // Only the one-byte Success acknowledgement after a Success request
        // completes the server.
        if matches!(v, EapVerdict::Success) {
            prop_assert!(n == 2 && right && data[0] == 3);
            prop_assert!(server.msk().is_some());
        }
        let r = peer.process(&rng, &data);
        if n == 3 {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn texts_round_trip(auth in any::<[u8; 20]>(), msg in "[ -~]{0,40}") {
        let m = wire::success_request(1, &auth, &msg);
        let Ok(Request::Success { message, .. }) = wire::parse_request(&m) else {
            return Err(TestCaseError::fail("not a Success request"));
        };
        prop_assert_eq!(wire::parse_success(message), Ok((auth, msg.clone())));
        let f = wire::failure_request(2, 691, &[0xab; 16], &msg);
        let Ok(Request::Failure { message, .. }) = wire::parse_request(&f) else {
            return Err(TestCaseError::fail("not a Failure request"));
        };
        let parsed = wire::parse_failure(message).unwrap();
        prop_assert_eq!(parsed.message, msg);
        prop_assert_eq!(parsed.error, 691);
    }
}
