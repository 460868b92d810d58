//! Scenario tests: two endpoints over the simulated network.

use ipsec_core::iana::KeId;
use ipsec_core::{Duration, Mode, TrafficSelector};
use ipsec_ike::{CloseReason, Config, Error, Event, NotifyType, SaHandle};
use ipsec_test::{assert_mirrored, config, Dir, Pair};

fn pair(seed: u64) -> Pair {
    Pair::new(config("@a.test"), config("@b.test"), seed)
}

fn up(p: &mut Pair) -> SaHandle {
    let h = p.connect();
    p.drive();
    assert!(
        p.a.ep.is_established(h),
        "not established: {:?}",
        p.a.events
    );
    h
}

/// The B-side handle of the (only) IKE SA.
fn b_handle(p: &Pair) -> SaHandle {
    p.b.events
        .iter()
        .find(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
        .map(|(h, _)| *h)
        .expect("b established")
}

/// Each side has exactly `n` installed Child SAs, pairwise mirrored.
fn check_children(p: &Pair, n: usize) {
    let a = p.a.installed();
    let b = p.b.installed();
    assert_eq!(a.len(), n, "a children: {:?}", p.a.events);
    assert_eq!(b.len(), n, "b children: {:?}", p.b.events);
    for (_, x) in &a {
        let y = b
            .iter()
            .find(|(_, y)| y.inbound_spi == x.outbound_spi)
            .expect("peer SA");
        assert_mirrored(x, y.1);
    }
}

fn is_ike_auth(t: &ipsec_ike::Transmit) -> bool {
    let off = if t.local.port() == 4500 || t.remote.port() == 4500 {
        4
    } else {
        0
    };
    t.payload.get(off + 18) == Some(&35)
}

fn is_response(t: &ipsec_ike::Transmit) -> bool {
    let off = if t.local.port() == 4500 || t.remote.port() == 4500 {
        4
    } else {
        0
    };
    t.payload.get(off + 19).is_some_and(|f| f & 0x20 != 0)
}

#[test]
fn handshake_is_deterministic() {
    let mut p1 = pair(7);
    up(&mut p1);
    let mut p2 = pair(7);
    up(&mut p2);
    let b1: Vec<_> = p1
        .sent
        .iter()
        .map(|(t, d, x)| (*t, *d, x.payload.clone()))
        .collect();
    let b2: Vec<_> = p2
        .sent
        .iter()
        .map(|(t, d, x)| (*t, *d, x.payload.clone()))
        .collect();
    assert_eq!(b1, b2);
    let mut p3 = pair(8);
    up(&mut p3);
    assert_ne!(p1.sent[0].2.payload, p3.sent[0].2.payload);
}

#[test]
fn lost_ike_auth_response_is_answered_from_cache() {
    let mut p = pair(3);
    let mut dropped = false;
    p.alter = Some(Box::new(move |d, t| {
        if d == Dir::BtoA && is_ike_auth(t) && !dropped {
            dropped = true;
            return false;
        }
        true
    }));
    up(&mut p);
    let auth_responses: Vec<_> = p
        .sent
        .iter()
        .filter(|(_, d, t)| *d == Dir::BtoA && is_ike_auth(t))
        .map(|(_, _, t)| t.payload.clone())
        .collect();
    assert_eq!(auth_responses.len(), 2, "retransmitted once");
    assert_eq!(auth_responses[0], auth_responses[1], "same bytes again");
    check_children(&p, 1);
}

#[test]
fn lost_requests_are_retransmitted() {
    let mut p = pair(4);
    let mut n = 0;
    p.alter = Some(Box::new(move |d, t| {
        if d == Dir::AtoB && !is_response(t) && n < 2 {
            n += 1;
            return false;
        }
        true
    }));
    up(&mut p);
    check_children(&p, 1);
}

#[test]
fn establishes_under_loss_duplication_and_reordering() {
    for seed in 0..12u64 {
        let mut p = pair(100 + seed);
        p.seed_network(seed * 7919 + 1);
        p.loss_percent = 20;
        p.duplicate_percent = 20;
        p.reorder_percent = 30;
        let h = p.connect();
        p.drive();
        assert!(p.a.ep.is_established(h), "seed {seed}: {:?}", p.a.events);
        check_children(&p, 1);
        // Exchanges keep working on the lossy network.
        let bh = b_handle(&p);
        p.a.ep.create_child_sa(p.now, h).unwrap();
        p.b.ep.rekey_ike_sa(p.now, bh).unwrap();
        p.drive();
        check_children(&p, 2);
        assert!(p.a.ep.is_established(h) && p.b.ep.is_established(bh));
    }
}

#[test]
fn duplicates_everywhere_install_once() {
    let mut p = pair(5);
    p.duplicate_percent = 100;
    let h = up(&mut p);
    check_children(&p, 1);
    p.a.ep
        .rekey_child_sa(p.now, h, p.a.ep.child_sas(h)[0])
        .unwrap();
    p.drive();
    check_children(&p, 1);
    assert_eq!(p.a.count(|e| matches!(e, Event::ChildSaRekeyed { .. })), 1);
    assert_eq!(p.b.count(|e| matches!(e, Event::ChildSaRekeyed { .. })), 1);
}

#[test]
fn create_and_delete_child_sa() {
    let mut p = pair(6);
    let h = up(&mut p);
    let id = p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    check_children(&p, 2);
    assert!(p
        .a
        .find(|e| matches!(e, Event::ChildSaInstalled { id: i, .. } if *i == id))
        .is_some());
    let first = p.a.ep.child_sas(h)[0];
    let (in_spi, out_spi) =
        p.a.installed()
            .iter()
            .find(|(i, _)| *i == first)
            .map(|(_, x)| (x.inbound_spi, x.outbound_spi))
            .unwrap();
    p.a.ep.delete_child_sa(p.now, h, first).unwrap();
    p.drive();
    check_children(&p, 1);
    assert!(p.a.find(|e| matches!(e, Event::ChildSaDeleted { id, inbound_spi, outbound_spi } if *id == first && *inbound_spi == in_spi && *outbound_spi == out_spi)).is_some());
    assert!(p.b.find(|e| matches!(e, Event::ChildSaDeleted { inbound_spi, outbound_spi, .. } if *inbound_spi == out_spi && *outbound_spi == in_spi)).is_some());
}

#[test]
fn responder_deletes_child_sa_and_ike_sa() {
    let mut p = pair(9);
    let h = up(&mut p);
    let bh = b_handle(&p);
    let c = p.b.ep.child_sas(bh)[0];
    p.b.ep.delete_child_sa(p.now, bh, c).unwrap();
    p.drive();
    check_children(&p, 0);
    p.b.ep.close(p.now, bh).unwrap();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: true }
            }
        ))
        .is_some());
    assert!(p
        .b
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: false }
            }
        ))
        .is_some());
}

#[test]
fn close_deletes_everything_on_both_sides() {
    let mut p = pair(10);
    let h = up(&mut p);
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    p.a.ep.close(p.now, h).unwrap();
    p.drive();
    check_children(&p, 0);
    assert_eq!(p.a.count(|e| matches!(e, Event::ChildSaDeleted { .. })), 2);
    assert_eq!(p.b.count(|e| matches!(e, Event::ChildSaDeleted { .. })), 2);
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: false }
            }
        ))
        .is_some());
    assert!(p
        .b
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: true }
            }
        ))
        .is_some());
    // Closed means gone after the linger time.
    p.drive_for(Duration::from_secs(200));
    assert!(p.a.ep.sa_handles().is_empty());
    assert!(p.b.ep.sa_handles().is_empty());
}

#[test]
fn child_rekey_from_either_side() {
    let mut p = pair(11);
    let h = up(&mut p);
    let old = p.a.ep.child_sas(h)[0];
    p.a.ep.rekey_child_sa(p.now, h, old).unwrap();
    p.drive();
    check_children(&p, 1);
    assert!(p
        .a
        .find(|e| matches!(e, Event::ChildSaRekeyed { old: o, .. } if *o == old))
        .is_some());
    let bh = b_handle(&p);
    let bold = p.b.ep.child_sas(bh)[0];
    p.b.ep.rekey_child_sa(p.now, bh, bold).unwrap();
    p.drive();
    check_children(&p, 1);
    assert_eq!(p.a.count(|e| matches!(e, Event::ChildSaRekeyed { .. })), 2);
    assert_eq!(p.b.count(|e| matches!(e, Event::ChildSaRekeyed { .. })), 2);
}

#[test]
fn simultaneous_child_rekeys_leave_one_pair() {
    for seed in 0..8 {
        let mut p = pair(200 + seed);
        let h = up(&mut p);
        let bh = b_handle(&p);
        let a_old = p.a.ep.child_sas(h)[0];
        let b_old = p.b.ep.child_sas(bh)[0];
        p.a.ep.rekey_child_sa(p.now, h, a_old).unwrap();
        p.b.ep.rekey_child_sa(p.now, bh, b_old).unwrap();
        p.drive();
        check_children(&p, 1);
        // Both sides name the same survivor.
        let a_new = p.a.events.iter().find_map(|(_, e)| match e {
            Event::ChildSaRekeyed { new, .. } => Some(*new),
            _ => None,
        });
        let b_new = p.b.events.iter().find_map(|(_, e)| match e {
            Event::ChildSaRekeyed { new, .. } => Some(*new),
            _ => None,
        });
        let a_sa = p.a.installed();
        let b_sa = p.b.installed();
        assert_eq!(Some(a_sa[0].0), a_new, "seed {seed}");
        assert_eq!(Some(b_sa[0].0), b_new, "seed {seed}");
        // Exactly four SAs were created in all (two each), two deleted as redundant.
        assert_eq!(
            p.a.count(|e| matches!(e, Event::ChildSaInstalled { .. })),
            3,
            "seed {seed}"
        );
    }
}

fn last_ike_spis(side: &ipsec_test::Side) -> Option<(ipsec_core::IkeSpi, ipsec_core::IkeSpi)> {
    side.events.iter().rev().find_map(|(_, e)| match e {
        Event::IkeSaRekeyed {
            new_local_spi,
            new_remote_spi,
            ..
        } => Some((*new_local_spi, *new_remote_spi)),
        _ => None,
    })
}

#[test]
fn ike_rekey_moves_children() {
    let mut p = pair(12);
    let h = up(&mut p);
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    let (al, ar) = last_ike_spis(&p.a).expect("a rekeyed");
    let (bl, br) = last_ike_spis(&p.b).expect("b rekeyed");
    assert_eq!((al, ar), (br, bl));
    check_children(&p, 1);
    // The new IKE SA works: children are created with its keys.
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    check_children(&p, 2);
    // The old IKE SA is gone on both sides after the delete.
    p.drive_for(Duration::from_secs(400));
    p.b.ep.check_liveness(p.now, b_handle(&p)).unwrap();
    p.drive();
    assert_eq!(p.b.count(|e| matches!(e, Event::LivenessOk)), 1);
}

#[test]
fn simultaneous_ike_rekeys_agree() {
    for seed in 0..8 {
        let mut p = pair(300 + seed);
        let h = up(&mut p);
        let bh = b_handle(&p);
        p.a.ep.rekey_ike_sa(p.now, h).unwrap();
        p.b.ep.rekey_ike_sa(p.now, bh).unwrap();
        p.drive();
        let (al, ar) = last_ike_spis(&p.a).expect("a rekeyed");
        let (bl, br) = last_ike_spis(&p.b).expect("b rekeyed");
        assert_eq!(
            (al, ar),
            (br, bl),
            "seed {seed}: {:?} / {:?}",
            p.a.events,
            p.b.events
        );
        assert!(p.a.ep.is_established(h) && p.b.ep.is_established(bh));
        check_children(&p, 1);
        p.a.ep.create_child_sa(p.now, h).unwrap();
        p.drive();
        check_children(&p, 2);
        p.drive_for(Duration::from_secs(400));
        p.a.ep.check_liveness(p.now, h).unwrap();
        p.b.ep.check_liveness(p.now, bh).unwrap();
        p.drive();
        assert!(p.a.count(|e| matches!(e, Event::LivenessOk)) >= 1);
        assert!(p.b.count(|e| matches!(e, Event::LivenessOk)) >= 1);
    }
}

#[test]
fn cookie_path() {
    let a = config("@a.test");
    let mut b = config("@b.test");
    b.half_open_cookie_threshold = 0;
    let mut p = Pair::new(a, b, 13);
    up(&mut p);
    // B's first answer was a COOKIE (a notify-only IKE_SA_INIT response).
    let first_b = &p.sent.iter().find(|(_, d, _)| *d == Dir::BtoA).unwrap().2;
    let m = ipsec_ike_wire::Message::parse(&first_b.payload).unwrap();
    assert!(
        matches!(&m.payloads[..], [ipsec_ike_wire::Payload::Notify(n)] if n.notify_type == NotifyType::COOKIE)
    );
    let a_requests = p
        .sent
        .iter()
        .filter(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
        .count();
    assert_eq!(a_requests, 2);
    check_children(&p, 1);
}

#[test]
fn cookie_secret_rotation_keeps_working() {
    let a = config("@a.test");
    let mut b = config("@b.test");
    b.half_open_cookie_threshold = 0;
    b.cookie_secret_lifetime = Duration::from_secs(1);
    let mut p = Pair::new(a, b, 14);
    for _ in 0..3 {
        let h = p.connect();
        p.drive();
        assert!(p.a.ep.is_established(h));
        p.now = p.now + Duration::from_secs(5);
    }
}

#[test]
fn forged_cookies_get_no_state() {
    let mut b = config("@b.test");
    b.half_open_cookie_threshold = 0;
    let mut p = Pair::new(config("@a.test"), b, 15);
    // Put a bogus cookie in front of every IKE_SA_INIT request.
    p.alter = Some(Box::new(|d, t| {
        if d == Dir::AtoB && t.payload.get(18) == Some(&34) {
            // Corrupt whatever cookie is there (the last byte of the first notify).
            if let Some(b) = t.payload.get_mut(28 + 8 + 4) {
                *b ^= 0xff;
            }
        }
        true
    }));
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert!(p.b.ep.sa_handles().is_empty());
}

#[test]
fn invalid_ke_payload_retry() {
    let a = config("@a.test")
        .with_ike_proposals("aes128gcm16-prfsha256-x25519-ecp256")
        .unwrap();
    let b = config("@b.test")
        .with_ike_proposals("aes128gcm16-prfsha256-ecp256")
        .unwrap();
    let mut p = Pair::new(a, b, 16);
    up(&mut p);
    match p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
        Some(Event::IkeSaEstablished { suite, .. }) => {
            assert_eq!(suite, "aes128gcm16-prfsha256-ecp256")
        }
        _ => unreachable!(),
    }
    assert_eq!(
        p.sent
            .iter()
            .filter(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
            .count(),
        2
    );
    assert!(
        p.b.ep.sa_handles().len() == 1,
        "no state for the first attempt"
    );
}

#[test]
fn responder_accepts_the_initiators_group_when_acceptable() {
    let a = config("@a.test")
        .with_ike_proposals("aes128gcm16-prfsha256-ecp256-x25519")
        .unwrap();
    let b = config("@b.test")
        .with_ike_proposals("aes128gcm16-prfsha256-x25519-ecp256")
        .unwrap();
    let mut p = Pair::new(a, b, 17);
    up(&mut p);
    assert_eq!(
        p.sent
            .iter()
            .filter(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
            .count(),
        1
    );
}

#[test]
fn no_common_ike_proposal() {
    let a = config("@a.test")
        .with_ike_proposals("aes128gcm16-prfsha256-x25519")
        .unwrap();
    let b = config("@b.test")
        .with_ike_proposals("aes256-sha256-ecp384")
        .unwrap();
    let mut p = Pair::new(a, b, 18);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert!(
        p.a.find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::NoProposalChosen
            }
        ))
        .is_some(),
        "{:?}",
        p.a.events
    );
    assert!(p.b.ep.sa_handles().is_empty());
}

#[test]
fn no_common_esp_proposal_keeps_the_ike_sa() {
    let a = config("@a.test").with_esp_proposals("aes128gcm16").unwrap();
    let b = config("@b.test")
        .with_esp_proposals("chacha20poly1305")
        .unwrap();
    let mut p = Pair::new(a, b, 19);
    let h = up(&mut p);
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::ChildSaFailed {
                error: Error::NotifyReceived(NotifyType::NO_PROPOSAL_CHOSEN),
                ..
            }
        ))
        .is_some());
    check_children(&p, 0);
    assert!(p.a.ep.is_established(h));
}

#[test]
fn traffic_selector_narrowing() {
    let mut a = config("@a.test");
    a.local_ts = vec![TrafficSelector::from_prefix("10.0.0.0".parse().unwrap(), 8).unwrap()];
    a.remote_ts = vec![TrafficSelector::any_v4()];
    let mut b = config("@b.test");
    b.remote_ts = vec![TrafficSelector::from_prefix("10.1.0.0".parse().unwrap(), 16).unwrap()];
    b.local_ts = vec![
        TrafficSelector::from_prefix("192.168.0.0".parse().unwrap(), 16)
            .unwrap()
            .with_ports(ipsec_core::IpProto::TCP, 443, 443),
    ];
    let mut p = Pair::new(a, b, 20);
    up(&mut p);
    check_children(&p, 1);
    let x = p.a.installed()[0].1.local_ts;
    assert_eq!(
        x.as_slice(),
        &[TrafficSelector::from_prefix("10.1.0.0".parse().unwrap(), 16).unwrap()]
    );
    let y = p.a.installed()[0].1.remote_ts;
    assert_eq!(y.as_slice()[0].end_port, 443);
}

#[test]
fn ts_unacceptable() {
    let mut a = config("@a.test");
    a.local_ts = vec![TrafficSelector::from_prefix("10.0.0.0".parse().unwrap(), 8).unwrap()];
    let mut b = config("@b.test");
    b.remote_ts = vec![TrafficSelector::from_prefix("172.16.0.0".parse().unwrap(), 12).unwrap()];
    let mut p = Pair::new(a, b, 21);
    up(&mut p);
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::ChildSaFailed {
                error: Error::NotifyReceived(NotifyType::TS_UNACCEPTABLE),
                ..
            }
        ))
        .is_some());
    check_children(&p, 0);
}

#[test]
fn liveness_failure_times_out() {
    let mut p = pair(22);
    let h = up(&mut p);
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.drive();
    assert_eq!(p.a.count(|e| matches!(e, Event::LivenessOk)), 1);
    p.set_cut(true);
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    let pos_closed =
        p.a.events
            .iter()
            .position(|(_, e)| {
                matches!(
                    e,
                    Event::IkeSaClosed {
                        reason: CloseReason::Timeout
                    }
                )
            })
            .expect("timeout");
    let pos_deleted =
        p.a.events
            .iter()
            .position(|(_, e)| matches!(e, Event::ChildSaDeleted { .. }))
            .expect("child deleted");
    assert!(pos_deleted < pos_closed);
}

#[test]
fn dpd_detects_a_dead_peer() {
    let mut a = config("@a.test");
    a.dpd = Some(Duration::from_secs(10));
    let mut p = Pair::new(a, config("@b.test"), 23);
    let h = p.connect();
    p.drive_for(Duration::from_secs(5));
    assert!(p.a.ep.is_established(h));
    p.drive_for(Duration::from_secs(60));
    assert!(p.a.ep.is_established(h), "alive peer answers");
    p.set_cut(true);
    p.drive_for(Duration::from_secs(200));
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Timeout
            }
        ))
        .is_some());
}

#[test]
fn fragmentation_with_small_mtu() {
    let mut a = config("@a.test");
    a.fragment_mtu = Some(280);
    a.local_ts = (0..8)
        .map(|i| TrafficSelector::from_prefix(format!("10.{i}.0.0").parse().unwrap(), 16).unwrap())
        .collect();
    let mut b = config("@b.test");
    b.fragment_mtu = Some(280);
    b.remote_ts = vec![TrafficSelector::from_prefix("10.0.0.0".parse().unwrap(), 8).unwrap()];
    let mut p = Pair::new(a, b, 24);
    p.reorder_percent = 50;
    let h = up(&mut p);
    let skf = |t: &ipsec_ike::Transmit| t.payload.get(16) == Some(&53);
    assert!(
        p.sent.iter().any(|(_, d, t)| *d == Dir::AtoB && skf(t)),
        "A fragmented IKE_AUTH"
    );
    assert!(p.sent.iter().all(|(_, _, t)| t.payload.len() <= 280 - 28));
    check_children(&p, 1);
    assert_eq!(p.a.installed()[0].1.local_ts.len(), 8);
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    check_children(&p, 1);
}

#[test]
fn no_fragments_without_support() {
    let mut a = config("@a.test");
    a.fragment_mtu = Some(280);
    let mut p = Pair::new(a, config("@b.test"), 25);
    up(&mut p);
    assert!(!p
        .sent
        .iter()
        .any(|(_, _, t)| t.payload.get(16) == Some(&53)));
}

#[test]
fn nat_traversal_floats_to_4500() {
    let mut a = config("@a.test");
    a.nat_keepalive = Duration::from_secs(20);
    let mut p = Pair::new(a, config("@b.test"), 26);
    // Keepalives are periodic: only look a few seconds ahead when driving to idle.
    p.idle_horizon = Duration::from_secs(5);
    p.nat_a = Some("203.0.113.7".parse().unwrap());
    let h = up(&mut p);
    match p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
        Some(Event::IkeSaEstablished { nat, .. }) => {
            assert!(nat.local_behind_nat && !nat.remote_behind_nat)
        }
        _ => unreachable!(),
    }
    match p.b.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
        Some(Event::IkeSaEstablished { nat, .. }) => {
            assert!(nat.remote_behind_nat && !nat.local_behind_nat)
        }
        _ => unreachable!(),
    }
    // From IKE_AUTH on everything is on 4500 with the non-ESP marker.
    let auth = p
        .sent
        .iter()
        .find(|(_, _, t)| t.local.port() == 4500)
        .unwrap();
    assert_eq!(&auth.2.payload[..4], &[0, 0, 0, 0]);
    check_children(&p, 1);
    let a_child = p.a.installed()[0].1;
    assert_eq!(
        a_child.udp_encap.map(|u| (u.local_port, u.remote_port)),
        Some((4500, 4500))
    );
    let b_child = p.b.installed()[0].1;
    assert_eq!(b_child.udp_encap.map(|u| u.remote_port), Some(14500));
    assert_eq!(
        b_child.remote_addr,
        "203.0.113.7".parse::<std::net::IpAddr>().unwrap()
    );
    p.drive_for(Duration::from_secs(45));
    assert_eq!(p.a.count(|e| matches!(e, Event::NatKeepaliveDue { .. })), 2);
    assert_eq!(p.b.count(|e| matches!(e, Event::NatKeepaliveDue { .. })), 0);
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    check_children(&p, 1);
}

#[test]
fn initiator_starting_on_4500() {
    let mut p = pair(27);
    let (l, r) = (
        std::net::SocketAddr::new(p.a.ip, 4500),
        std::net::SocketAddr::new(p.b.ip, 4500),
    );
    let h = p.a.ep.connect(p.now, l, r).unwrap();
    p.drive();
    assert!(p.a.ep.is_established(h));
    assert!(p
        .sent
        .iter()
        .all(|(_, _, t)| t.payload[..4] == [0, 0, 0, 0]));
    check_children(&p, 1);
    assert_eq!(
        p.a.installed()[0].1.udp_encap,
        None,
        "no NAT, no encapsulation"
    );
}

#[test]
fn esp_and_keepalives_on_4500_are_ignored() {
    let mut p = pair(28);
    up(&mut p);
    let before = p.b.events.len();
    let (l, r) = (
        std::net::SocketAddr::new(p.b.ip, 4500),
        std::net::SocketAddr::new(p.a.ip, 4500),
    );
    p.b.ep.handle_datagram(p.now, l, r, &[0xff]);
    p.b.ep
        .handle_datagram(p.now, l, r, &[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 9, 9, 9]);
    assert!(p.b.ep.poll_transmit().is_none());
    assert_eq!(p.b.events.len(), before);
}

#[test]
fn transport_mode() {
    let mut a = config("@a.test");
    a.mode = Mode::Transport;
    let mut b = config("@b.test");
    b.mode = Mode::Transport;
    let mut p = Pair::new(a, b, 29);
    up(&mut p);
    check_children(&p, 1);
    assert_eq!(p.a.installed()[0].1.mode, Mode::Transport);
}

#[test]
fn mode_mismatch_fails_the_child() {
    let mut a = config("@a.test");
    a.mode = Mode::Transport;
    let mut p = Pair::new(a, config("@b.test"), 30);
    up(&mut p);
    check_children(&p, 0);
}

#[test]
fn pfs_rekey_and_invalid_ke_for_child() {
    let a = config("@a.test")
        .with_esp_proposals("aes128gcm16-x25519-ecp256")
        .unwrap();
    let b = config("@b.test")
        .with_esp_proposals("aes128gcm16-ecp256")
        .unwrap();
    let mut p = Pair::new(a, b, 31);
    let h = up(&mut p);
    assert_eq!(p.a.installed()[0].1.ke, KeId::NONE, "no KE in IKE_AUTH");
    p.a.ep
        .rekey_child_sa(p.now, h, p.a.ep.child_sas(h)[0])
        .unwrap();
    p.drive();
    check_children(&p, 1);
    assert_eq!(p.a.installed()[0].1.ke, KeId::ECP_256);
    let id = p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    check_children(&p, 2);
    assert!(p.a.find(|e| matches!(e, Event::ChildSaInstalled { id: i, suite, .. } if *i == id && suite == "aes128gcm16-ecp256")).is_some());
}

#[test]
fn pfs_required_by_responder_but_not_offered() {
    let a = config("@a.test").with_esp_proposals("aes128gcm16").unwrap();
    let b = config("@b.test")
        .with_esp_proposals("aes128gcm16-x25519")
        .unwrap();
    let mut p = Pair::new(a, b, 32);
    let h = up(&mut p);
    check_children(&p, 1);
    let id = p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    assert!(p
        .a
        .find(|e| matches!(e, Event::ChildSaFailed { id: i, .. } if *i == id))
        .is_some());
    check_children(&p, 1);
}

#[test]
fn lifetimes_drive_rekeys() {
    let mut a = config("@a.test");
    a.child_rekey = Some(Duration::from_secs(60));
    a.ike_rekey = Some(Duration::from_secs(150));
    let mut b = config("@b.test");
    b.child_rekey = Some(Duration::from_secs(60));
    b.ike_rekey = Some(Duration::from_secs(150));
    let mut p = Pair::new(a, b, 33);
    let h = p.connect();
    p.drive_for(Duration::from_secs(700));
    assert!(p.a.ep.is_established(h));
    check_children(&p, 1);
    let child_rekeys = p.a.count(|e| matches!(e, Event::ChildSaRekeyed { .. }));
    let ike_rekeys = p.a.count(|e| matches!(e, Event::IkeSaRekeyed { .. }));
    assert!(child_rekeys >= 9, "{child_rekeys}");
    assert!(ike_rekeys >= 4, "{ike_rekeys}");
    let lt = p.a.installed()[0].1.lifetime;
    assert_eq!(lt.hard.time, Some(Duration::from_secs(66)));
}

#[test]
fn remote_id_mismatch() {
    let mut a = config("@a.test");
    a.remote_id = Some("@not-b.test".parse().unwrap());
    let mut p = Pair::new(a, config("@b.test"), 34);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::AuthenticationFailed(ipsec_ike::AuthFailure::IdentityMismatch)
            }
        ))
        .is_some());
}

#[test]
fn remote_id_match() {
    let mut a = config("@a.test");
    a.remote_id = Some("b.test".parse().unwrap());
    let mut b = config("@b.test");
    b.remote_id = Some("@a.test".parse().unwrap());
    let mut p = Pair::new(a, b, 35);
    up(&mut p);
}

#[test]
fn commands_before_establishment_are_refused() {
    let mut p = pair(36);
    let h = p.connect();
    assert!(matches!(
        p.a.ep.create_child_sa(p.now, h),
        Err(Error::ApiMisuse(_))
    ));
    assert!(matches!(
        p.a.ep.rekey_ike_sa(p.now, SaHandle(999)),
        Err(Error::ApiMisuse(_))
    ));
    p.a.ep.close(p.now, h).unwrap();
    p.drive();
    assert!(p
        .a
        .find(|e| matches!(e, Event::IkeSaClosed { .. }))
        .is_some());
}

#[test]
fn half_open_sa_expires() {
    let mut p = pair(37);
    p.alter = Some(Box::new(|d, t| !(d == Dir::AtoB && is_ike_auth(t))));
    let h = p.connect();
    p.drive_for(Duration::from_secs(50));
    assert_eq!(p.b.ep.sa_handles().len(), 1);
    p.drive_for(Duration::from_secs(200));
    assert!(p.b.ep.sa_handles().is_empty());
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Timeout
            }
        ))
        .is_some());
    let _ = h;
}

#[test]
fn many_initiators_one_responder() {
    let b = config("@b.test");
    let mut p = Pair::new(config("@a.test"), b, 38);
    let mut hs = Vec::new();
    for _ in 0..5 {
        hs.push(p.connect());
    }
    p.drive();
    for h in &hs {
        assert!(p.a.ep.is_established(*h));
    }
    assert_eq!(p.b.ep.sa_handles().len(), 5);
    let _: Config = config("@x");
}

#[test]
fn invalid_major_version_is_answered() {
    let mut p = pair(39);
    let _ = p.a.ep.connect(p.now, p.a.addr(), p.b.addr()).unwrap();
    let req = p.a.ep.poll_transmit().unwrap();
    let mut v3 = req.payload.clone();
    v3[17] = 0x30;
    p.b.ep.handle_datagram(p.now, req.remote, req.local, &v3);
    let t = p.b.ep.poll_transmit().expect("answered");
    let m = ipsec_ike_wire::Message::parse(&t.payload).unwrap();
    assert_eq!(t.payload[17], 0x20, "our version in the header");
    assert!(m.header.flags.is_response());
    assert!(
        matches!(&m.payloads[..], [ipsec_ike_wire::Payload::Notify(n)] if n.notify_type == NotifyType::INVALID_MAJOR_VERSION)
    );
    assert!(p.b.ep.sa_handles().is_empty());
    // A lower major version, or a response, gets nothing.
    let mut v1 = req.payload.clone();
    v1[17] = 0x10;
    p.b.ep.handle_datagram(p.now, req.remote, req.local, &v1);
    v3[19] |= 0x20;
    p.b.ep.handle_datagram(p.now, req.remote, req.local, &v3);
    assert!(p.b.ep.poll_transmit().is_none());
}

#[test]
fn child_sa_limit() {
    let mut b = config("@b.test");
    b.max_child_sas = 3;
    let mut p = Pair::new(config("@a.test"), b, 40);
    let h = up(&mut p);
    for _ in 0..4 {
        p.a.ep.create_child_sa(p.now, h).unwrap();
    }
    p.drive();
    check_children(&p, 3);
    assert_eq!(
        p.a.count(|e| matches!(
            e,
            Event::ChildSaFailed {
                error: Error::NotifyReceived(NotifyType::NO_ADDITIONAL_SAS),
                ..
            }
        )),
        2
    );
    // Rekeys still work at the limit.
    p.a.ep
        .rekey_child_sa(p.now, h, p.a.ep.child_sas(h)[0])
        .unwrap();
    p.drive();
    check_children(&p, 3);
}

#[test]
fn many_sas_keep_their_own_timers() {
    // 120 IKE SAs on one endpoint pair, started 100 ms apart so every timer differs;
    // the endpoint's timer index must hand each SA its own retransmissions, liveness
    // checks and expiry (debug builds also check the index against a full scan on
    // every `poll_timeout`).
    const N: usize = 120;
    let mut a = config("@a.test");
    a.dpd = Some(Duration::from_secs(30));
    let mut p = Pair::new(a, config("@b.test"), 60);
    let start = p.now;
    let mut handles = Vec::new();
    for _ in 0..N {
        handles.push(p.connect());
        p.drive_for(Duration::from_millis(100));
    }
    p.drive_for(Duration::from_secs(1));
    assert!(handles.iter().all(|h| p.a.ep.is_established(*h)));
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        N
    );
    // A call before anything is due does nothing.
    let due = p.a.ep.poll_timeout().expect("dpd timers");
    assert!(due > p.now);
    p.a.ep.handle_timeout(p.now);
    assert!(p.a.ep.poll_transmit().is_none());
    // Every liveness check is answered while the link is up.
    p.drive_for(Duration::from_secs(31));
    assert!(p.a.count(|e| matches!(e, Event::LivenessOk)) >= N);
    // Close every other SA; the rest lose the link and time out one by one.
    for h in handles.iter().step_by(2) {
        p.a.ep.close(p.now, *h).unwrap();
    }
    p.drive_for(Duration::from_secs(1));
    assert_eq!(
        p.a.count(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: false }
            }
        )),
        N / 2
    );
    p.set_cut(true);
    p.drive();
    assert_eq!(
        p.a.count(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Timeout
            }
        )),
        N / 2
    );
    assert!(p.a.ep.sa_handles().is_empty(), "all forgotten");
    assert!(p.a.ep.poll_timeout().is_none());
    assert!(p.now > start + Duration::from_secs(30 + 63));
}

/// `force_udp_encap` without any NAT on the path: the forcing side fakes its
/// NAT_DETECTION_SOURCE_IP hash, so the peer sees it behind a NAT; both move to port
/// 4500 and both Child SAs are UDP-encapsulated. Without it, the same pair uses raw ESP.
#[test]
fn forced_udp_encapsulation_without_a_nat() {
    for (force_a, force_b) in [(true, false), (false, true)] {
        let mut a = config("@a.test");
        a.force_udp_encap = force_a;
        let mut b = config("@b.test");
        b.force_udp_encap = force_b;
        let mut p = Pair::new(a, b, 61);
        p.idle_horizon = Duration::from_secs(5);
        up(&mut p);
        let nat =
            |s: &ipsec_test::Side| match s.find(|e| matches!(e, Event::IkeSaEstablished { .. })) {
                Some(Event::IkeSaEstablished { nat, .. }) => *nat,
                _ => unreachable!(),
            };
        let (na, nb) = (nat(&p.a), nat(&p.b));
        assert_eq!(
            (na.local_behind_nat, nb.remote_behind_nat),
            (force_a, force_a)
        );
        assert_eq!(
            (nb.local_behind_nat, na.remote_behind_nat),
            (force_b, force_b)
        );
        assert!(p.sent.iter().any(|(_, _, t)| t.local.port() == 4500));
        check_children(&p, 1);
        for side in [&p.a, &p.b] {
            let c = side.installed()[0].1;
            assert_eq!(
                c.udp_encap.map(|u| (u.local_port, u.remote_port)),
                Some((4500, 4500)),
                "force_a {force_a}, force_b {force_b}"
            );
        }
    }
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 62);
    up(&mut p);
    assert!(
        p.a.installed()[0].1.udp_encap.is_none(),
        "no NAT, not forced: raw ESP"
    );
}
