//! Hostile input: garbage, truncations, bit flips, wrong SPIs and replays never panic
//! and never change an established SA.

use ipsec_ike::Event;
use ipsec_test::fuzz::{self, Target};
use ipsec_test::{config, Dir, Pair};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_to_a_fresh_endpoint() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 1);
    let mut r = Rng(0x1234_5678);
    let (l, rem) = (p.b.addr(), p.a.addr());
    for i in 0..3000 {
        let n = (r.next() % 700) as usize;
        let mut g = r.bytes(n);
        if i % 3 == 0 && g.len() >= 28 {
            // Make it look like IKE: version 2.0, a plausible exchange and length.
            g[17] = 0x20;
            g[18] = 34 + (r.next() % 4) as u8;
            let len = (g.len() as u32).to_be_bytes();
            g[24..28].copy_from_slice(&len);
        }
        let port = if i % 2 == 0 { 500 } else { 4500 };
        let (l, rem) = (
            std::net::SocketAddr::new(l.ip(), port),
            std::net::SocketAddr::new(rem.ip(), port),
        );
        p.b.ep.handle_datagram(p.now, l, rem, &g);
    }
    p.collect();
    assert!(p.b.ep.sa_handles().is_empty(), "garbage created no SA");
    assert!(p.b.events.is_empty());
}

#[test]
fn mutated_and_replayed_messages_leave_established_sas_alone() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 2);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    // A few more exchanges so there is traffic of every kind to replay.
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.a.ep
        .rekey_child_sa(p.now, h, p.a.ep.child_sas(h)[0])
        .unwrap();
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.drive();
    let recorded = p.sent.clone();
    let a_events = p.a.events.len();
    let b_events = p.b.events.len();
    let a_children = p.a.ep.child_sas(h);
    let mut r = Rng(99);
    for (_, dir, t) in &recorded {
        let ep = if *dir == Dir::AtoB {
            &mut p.b.ep
        } else {
            &mut p.a.ep
        };
        // Exact replay: answered from the cache at most.
        ep.handle_datagram(p.now, t.remote, t.local, &t.payload);
        for _ in 0..40 {
            let mut m = t.payload.clone();
            match r.next() % 4 {
                0 => {
                    let i = (r.next() as usize) % m.len();
                    m[i] ^= 1 << (r.next() % 8);
                }
                1 => m.truncate((r.next() as usize) % m.len()),
                2 => {
                    // Another SPI.
                    let off = if t.local.port() == 4500 { 4 } else { 0 };
                    let i = off + (r.next() as usize) % 16;
                    m[i] ^= 0x5a;
                }
                _ => {
                    let i = (r.next() as usize) % m.len();
                    let garbage = r.bytes(m.len() - i);
                    m[i..].copy_from_slice(&garbage);
                }
            }
            ep.handle_datagram(p.now, t.remote, t.local, &m);
        }
        // Discard whatever stateless or cached answers came out.
        while ep.poll_transmit().is_some() {}
    }
    p.collect();
    let new_a: Vec<_> = p.a.events[a_events..]
        .iter()
        .map(|(_, e)| format!("{e:?}"))
        .collect();
    let new_b: Vec<_> = p.b.events[b_events..]
        .iter()
        .map(|(_, e)| format!("{e:?}"))
        .collect();
    assert!(new_a.is_empty(), "{new_a:?}");
    assert!(new_b.is_empty(), "{new_b:?}");
    assert_eq!(p.a.ep.child_sas(h), a_children);
    // Still working.
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.drive();
    assert_eq!(p.a.count(|e| matches!(e, Event::LivenessOk)), 2);
    assert!(p.a.ep.is_established(h));
}

#[test]
fn forged_ike_sa_init_responses_do_not_establish() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 3);
    // Every response B sends is replaced with random bytes behind a copied header.
    let mut r = Rng(7);
    p.alter = Some(Box::new(move |d, t| {
        if d == Dir::BtoA && t.payload.len() > 28 {
            let n = t.payload.len();
            let g = r.bytes(n - 28);
            t.payload[28..].copy_from_slice(&g);
        }
        true
    }));
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
}

#[test]
fn fuzz_drivers_on_random_inputs() {
    let mut r = Rng(0xfeed);
    for i in 0..300 {
        let n = 16 + (r.next() % 400) as usize;
        let data = r.bytes(n);
        let _ = fuzz::run(
            if i % 2 == 0 {
                Target::Responder
            } else {
                Target::Initiator
            },
            &data,
        );
    }
}

#[test]
fn fuzz_drivers_reach_established_state() {
    // Mostly "deliver" operations: the handshake completes, then commands and
    // mutations run against the established SAs.
    let mut r = Rng(0xbeef);
    let mut reached = 0;
    for i in 0..60 {
        let mut data = vec![(i % 2) as u8];
        for _ in 0..200 {
            match r.next() % 10 {
                0..=5 => data.push((r.next() % 2) as u8),
                6 => data.extend_from_slice(&[
                    3,
                    r.next() as u8,
                    r.next() as u8,
                    r.next() as u8,
                    r.next() as u8,
                ]),
                7 => data.extend_from_slice(&[5, 0, (r.next() % 64) as u8]),
                8 => data.extend_from_slice(&[7 | ((r.next() as u8) & 0x80), r.next() as u8]),
                _ => data.extend_from_slice(&[4, 0, 60]),
            }
        }
        data.extend(r.bytes(60));
        if fuzz::run(
            if i % 2 == 0 {
                Target::Responder
            } else {
                Target::Initiator
            },
            &data,
        ) {
            reached += 1;
        }
    }
    assert!(reached > 30, "{reached}");
}

/// The EAP driver of the `ike_eap_nocrypto` target reaches an established IKE SA
/// when nothing is mutated (the EAP-MSCHAPv2 rounds, the MSK-keyed AUTH and the CP
/// payloads all ran), with both providers, and survives arbitrary operations.
#[test]
fn the_eap_fuzz_driver_establishes_and_survives_noise() {
    let clean: Vec<u8> = [0u8, 1].repeat(16);
    for crypto in [fuzz::Crypto::Real, fuzz::Crypto::Fuzzing] {
        assert!(fuzz::run_eap(Target::Responder, crypto, &clean));
        // Deliveries enough for a PSK handshake are not enough with the EAP rounds.
        assert!(!fuzz::run_eap(
            Target::Responder,
            crypto,
            &[0u8, 1].repeat(3)
        ));
    }
    let mut r = Rng(0x5eed_ea90);
    for i in 0..200u32 {
        let data = r.bytes(80 + (i as usize % 120));
        let _ = fuzz::run_eap(
            if i % 2 == 0 {
                Target::Responder
            } else {
                Target::Initiator
            },
            fuzz::Crypto::Fuzzing,
            &data,
        );
    }
}
