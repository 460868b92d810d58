//! EAP-MSCHAPv2 (`ipsec_ike::eap::mschapv2`) on arbitrary bytes: the first input
//! byte picks where a real server–peer run stops (fresh, challenge sent, Success or
//! Failure request sent, finished) and whether the peer knows the password; the rest
//! is parsed as an EAP packet (re-emitted identically when it parses) and its type
//! data, or the bytes themselves, go into both sides' `process`. Properties: no
//! panic; the server only succeeds on the one-byte Success acknowledgement after a
//! Success request; the peer never holds an MSK for a run that it did not already
//! finish with the real server before the fuzz input.
#![no_main]

use std::sync::Mutex;

use ipsec_crypto::{CryptoError, SecureRandom};
use ipsec_ike::eap::mschapv2::{MsChapV2Peer, MsChapV2Server};
use ipsec_ike::eap::{EapPacket, EapPeerMethod, EapServerMethod, EapType, EapVerdict};
use libfuzzer_sys::fuzz_target;

/// A seeded stream (an LCG): challenges need no quality here, only repeatability.
#[derive(Debug)]
struct Lcg(Mutex<u64>);

impl SecureRandom for Lcg {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for d in dest {
            *s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *d = (*s >> 56) as u8;
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let stage = sel & 3;
    let right = sel & 4 != 0;
    let rng = Lcg(Mutex::new(u64::from(sel)));

    let body = match EapPacket::parse(rest) {
        Ok(p) => {
            let again = p.to_vec().expect("a parsed packet fits its length");
            assert_eq!(EapPacket::parse(&again), Ok(p));
            if p.ty == Some(EapType::MSCHAPV2) {
                p.data
            } else {
                rest
            }
        }
        Err(_) => rest,
    };

    // A real run up to `stage`.
    let mut server = MsChapV2Server::new(b"DOMAIN\\user", "password");
    let mut peer = MsChapV2Peer::new(b"DOMAIN\\user", if right { "password" } else { "guess" });
    let mut sent_success = false;
    if stage >= 1 {
        let req = server.initiate(&rng).expect("the stream never fails");
        if stage >= 2 {
            let resp = peer.process(&rng, &req).expect("a real challenge");
            let EapVerdict::Request(next) = server.process(&rng, &resp) else {
                panic!("a real response gets a Success or Failure request");
            };
            sent_success = next.first() == Some(&3);
            assert_eq!(sent_success, right);
            if stage == 3 {
                let ack = peer.process(&rng, &next).expect("a real result");
                let v = server.process(&rng, &ack);
                assert_eq!(matches!(v, EapVerdict::Success), right);
            }
        }
    }
    let had_msk = peer.msk().is_some();

    let v = server.process(&rng, body);
    if matches!(v, EapVerdict::Success) {
        assert!(stage == 2 && sent_success && body.first() == Some(&3));
        assert!(server.msk().is_some());
    }
    let _ = peer.process(&rng, body);
    assert!(peer.msk().is_none() || had_msk);
});
