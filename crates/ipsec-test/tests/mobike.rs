//! MOBIKE (RFC 4555) between two endpoints over the simulated network: the
//! negotiation in IKE_AUTH, the original initiator moving with UPDATE_SA_ADDRESSES
//! (with loss of the request and of its answer, with a NAT appearing, and moving
//! twice), a peer without MOBIKE, and a responder that may not move.

use std::net::{IpAddr, SocketAddr};

use ipsec_core::Duration;
use ipsec_ike::{ApiMisuse, Error, Event, NatState, SaHandle};
use ipsec_test::{config, Dir, Pair};

const EXCHANGE_INFORMATIONAL: u8 = 37;

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

fn b_handle(p: &Pair) -> SaHandle {
    p.b.events
        .iter()
        .find(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
        .map(|(h, _)| *h)
        .expect("b established")
}

/// The (exchange type, is response) of an IKE datagram, without the marker on 4500.
fn ike_kind(t: &ipsec_ike::Transmit) -> Option<(u8, bool)> {
    let b = if t.local.port() == 4500 || t.remote.port() == 4500 {
        t.payload.get(4..)?
    } else {
        &t.payload[..]
    };
    Some((*b.get(18)?, b.get(19)? & 0x20 != 0))
}

/// INFORMATIONAL requests sent in direction `dir` from `from` since index `since`.
fn info_requests(p: &Pair, since: usize, dir: Dir, from: IpAddr) -> usize {
    p.sent[since..]
        .iter()
        .filter(|(_, d, t)| {
            *d == dir
                && t.local.ip() == from
                && ike_kind(t) == Some((EXCHANGE_INFORMATIONAL, false))
        })
        .count()
}

fn path_updates(events: &[(SaHandle, Event)]) -> Vec<(SocketAddr, SocketAddr, NatState)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PathUpdated {
                local, remote, nat, ..
            } => Some((*local, *remote, *nat)),
            _ => None,
        })
        .collect()
}

fn moved(ip: &str) -> (IpAddr, SocketAddr) {
    let ip: IpAddr = ip.parse().unwrap();
    (ip, SocketAddr::new(ip, 4500))
}

#[test]
fn negotiated_by_default_and_off_when_either_side_says_no() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 1);
    let h = up(&mut p);
    let hb = b_handle(&p);
    assert!(p.a.ep.mobike(h) && p.b.ep.mobike(hb));

    for (a_on, b_on) in [(false, true), (true, false)] {
        let (mut a, mut b) = (config("@a.test"), config("@b.test"));
        a.mobike = a_on;
        b.mobike = b_on;
        let mut p = Pair::new(a, b, 2);
        let h = up(&mut p);
        let hb = b_handle(&p);
        assert!(!p.a.ep.mobike(h) && !p.b.ep.mobike(hb), "{a_on} {b_on}");
    }
}

#[test]
fn initiator_moves_and_responder_follows() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 3);
    let h = up(&mut p);
    let hb = b_handle(&p);
    let (ip, local) = moved("192.0.2.11");
    p.a.ip = ip;
    let since = p.sent.len();
    assert_eq!(p.a.ep.update_path(p.now, h, local), Ok(true));
    p.drive();
    assert_eq!(info_requests(&p, since, Dir::AtoB, ip), 1);
    let b_side = SocketAddr::new(p.b.ip, 4500);
    assert_eq!(
        path_updates(&p.b.events),
        vec![(b_side, local, NatState::default())]
    );
    assert_eq!(
        path_updates(&p.a.events),
        vec![(local, b_side, NatState::default())]
    );
    match p.b.find(|e| matches!(e, Event::PathUpdated { .. })) {
        Some(Event::PathUpdated { udp_encap, .. }) => assert_eq!(*udp_encap, None),
        _ => unreachable!(),
    }
    assert_eq!(p.b.ep.addresses(hb), Some((b_side, local)));
    assert_eq!(p.a.ep.addresses(h), Some((local, b_side)));
    // The Child SA survives; B reaches A at the new address.
    assert_eq!(p.a.installed().len(), 1);
    assert_eq!(p.b.installed().len(), 1);
    p.b.ep.check_liveness(p.now, hb).unwrap();
    p.drive();
    assert_eq!(p.b.count(|e| matches!(e, Event::LivenessOk)), 1);
    assert!(p.a.ep.is_established(h) && p.b.ep.is_established(hb));
}

#[test]
fn lost_update_and_lost_answer_are_retransmitted_on_the_new_path() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 4);
    let h = up(&mut p);
    let (ip, local) = moved("192.0.2.12");
    p.a.ip = ip;
    // Lose the first UPDATE_SA_ADDRESSES and the first answer to it.
    let mut lost_request = false;
    let mut lost_answer = false;
    p.alter = Some(Box::new(move |dir, t| {
        let kind = ike_kind(t);
        match dir {
            Dir::AtoB if kind == Some((EXCHANGE_INFORMATIONAL, false)) && !lost_request => {
                lost_request = true;
                false
            }
            Dir::BtoA if kind == Some((EXCHANGE_INFORMATIONAL, true)) && !lost_answer => {
                lost_answer = true;
                false
            }
            _ => true,
        }
    }));
    let since = p.sent.len();
    assert_eq!(p.a.ep.update_path(p.now, h, local), Ok(true));
    p.drive();
    // Sent three times from the new address: lost, answered (answer lost), answered
    // from B's cache.
    assert_eq!(info_requests(&p, since, Dir::AtoB, ip), 3);
    assert!(p.a.ep.stats().ike.retransmissions >= 2);
    // B moved once (the retransmission was answered from its cache), A once.
    assert_eq!(path_updates(&p.b.events).len(), 1);
    assert_eq!(path_updates(&p.a.events).len(), 1);
    assert_eq!(path_updates(&p.b.events)[0].1, local);
    assert!(p.a.ep.is_established(h));
}

#[test]
fn a_nat_on_the_new_path_turns_on_udp_encapsulation() {
    let mut a = config("@a.test");
    a.nat_keepalive = Duration::from_secs(20);
    let mut p = Pair::new(a, config("@b.test"), 5);
    p.idle_horizon = Duration::from_secs(5);
    let h = up(&mut p);
    let (ip, local) = moved("10.0.0.5");
    p.a.ip = ip;
    p.nat_a = Some("203.0.113.9".parse().unwrap());
    assert_eq!(p.a.ep.update_path(p.now, h, local), Ok(true));
    p.drive_for(Duration::from_secs(3));
    let b = path_updates(&p.b.events);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].1, "203.0.113.9:14500".parse().unwrap());
    assert!(b[0].2.remote_behind_nat && !b[0].2.local_behind_nat);
    let a_nat = path_updates(&p.a.events)[0].2;
    assert!(a_nat.local_behind_nat && !a_nat.remote_behind_nat);
    match p.b.find(|e| matches!(e, Event::PathUpdated { .. })) {
        Some(Event::PathUpdated { udp_encap, .. }) => assert_eq!(
            udp_encap.map(|u| (u.local_port, u.remote_port)),
            Some((4500, 14500))
        ),
        _ => unreachable!(),
    }
    // Behind the NAT now: keepalives are due.
    p.drive_for(Duration::from_secs(25));
    assert!(p.a.count(|e| matches!(e, Event::NatKeepaliveDue { .. })) >= 1);
}

#[test]
fn moving_again_while_an_update_is_in_flight_sends_another() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 6);
    let h = up(&mut p);
    let (ip1, l1) = moved("192.0.2.21");
    let (ip2, l2) = moved("192.0.2.22");
    p.a.ip = ip1;
    p.set_cut(true);
    assert_eq!(p.a.ep.update_path(p.now, h, l1), Ok(true));
    p.drive_for(Duration::from_millis(100));
    p.a.ip = ip2;
    assert_eq!(p.a.ep.update_path(p.now, h, l2), Ok(true));
    p.set_cut(false);
    p.drive();
    let b = path_updates(&p.b.events);
    // The first update's retransmission came from the second address (its NAT
    // hashes name the first), the second update confirms the second address.
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(
        b[1],
        (SocketAddr::new(p.b.ip, 4500), l2, NatState::default())
    );
    assert_eq!(path_updates(&p.a.events).last().unwrap().0, l2);
    assert!(p.a.ep.is_established(h));
}

#[test]
fn without_mobike_no_update_is_sent_and_nat_following_moves_the_peer() {
    let mut a = config("@a.test");
    a.nat_keepalive = Duration::from_secs(20);
    let mut b = config("@b.test");
    b.mobike = false;
    let mut p = Pair::new(a, b, 7);
    p.idle_horizon = Duration::from_secs(5);
    p.nat_a = Some("203.0.113.7".parse().unwrap());
    let h = up(&mut p);
    let hb = b_handle(&p);
    // The client moves behind another NAT address.
    let (ip, _) = moved("10.0.0.7");
    p.a.ip = ip;
    p.nat_a = Some("203.0.113.8".parse().unwrap());
    let since = p.sent.len();
    assert_eq!(
        p.a.ep.update_path(p.now, h, SocketAddr::new(ip, 4500)),
        Ok(false)
    );
    p.drive_for(Duration::from_secs(3));
    // A liveness check (an empty INFORMATIONAL), no UPDATE_SA_ADDRESSES: B has no
    // path event but follows by RFC 7296 §2.23.
    assert_eq!(info_requests(&p, since, Dir::AtoB, ip), 1);
    assert!(path_updates(&p.b.events).is_empty());
    assert_eq!(
        p.b.find(|e| matches!(e, Event::PeerAddressChanged { .. }))
            .map(|e| match e {
                Event::PeerAddressChanged { remote } => *remote,
                _ => unreachable!(),
            }),
        Some("203.0.113.8:14500".parse().unwrap())
    );
    assert_eq!(p.a.count(|e| matches!(e, Event::LivenessOk)), 1);
    assert!(p.b.ep.is_established(hb));
}

#[test]
fn the_responder_never_sends_update_sa_addresses() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 8);
    let h = up(&mut p);
    let hb = b_handle(&p);
    let since = p.sent.len();
    assert_eq!(
        p.b.ep
            .update_path(p.now, hb, "192.0.2.99:4500".parse().unwrap()),
        Err(Error::ApiMisuse(ApiMisuse::NotOriginalInitiator))
    );
    p.drive();
    assert_eq!(p.sent.len(), since);
    assert_eq!(
        p.b.ep.addresses(hb).unwrap().0,
        SocketAddr::new(p.b.ip, 500)
    );
    // After an IKE SA rekey by the responder, the roles of MOBIKE stay.
    p.b.ep.rekey_ike_sa(p.now, hb).unwrap();
    p.drive();
    assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed { .. })), 1);
    assert_eq!(
        p.b.ep
            .update_path(p.now, hb, "192.0.2.99:4500".parse().unwrap()),
        Err(Error::ApiMisuse(ApiMisuse::NotOriginalInitiator))
    );
    let (ip, local) = moved("192.0.2.31");
    p.a.ip = ip;
    assert_eq!(p.a.ep.update_path(p.now, h, local), Ok(true));
    p.drive();
    assert_eq!(path_updates(&p.b.events).len(), 1);
}

#[test]
fn update_path_needs_an_established_sa_and_a_known_family() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 9);
    let h = p.connect();
    assert_eq!(
        p.a.ep
            .update_path(p.now, h, "192.0.2.50:4500".parse().unwrap()),
        Err(Error::ApiMisuse(ApiMisuse::NotEstablished))
    );
    p.drive();
    assert_eq!(
        p.a.ep
            .update_path(p.now, h, "[2001:db8::5]:4500".parse().unwrap()),
        Err(Error::ApiMisuse(ApiMisuse::AddressFamily))
    );
    assert_eq!(
        p.a.ep
            .update_path(p.now, SaHandle(999), "192.0.2.50:4500".parse().unwrap()),
        Err(Error::ApiMisuse(ApiMisuse::UnknownSa))
    );
}

#[test]
fn behind_a_nat_the_update_moves_the_sa_without_nat_following() {
    let mut a = config("@a.test");
    a.nat_keepalive = Duration::from_secs(20);
    let mut p = Pair::new(a, config("@b.test"), 10);
    p.idle_horizon = Duration::from_secs(5);
    p.nat_a = Some("203.0.113.7".parse().unwrap());
    let h = up(&mut p);
    let (ip, local) = moved("10.0.0.8");
    p.a.ip = ip;
    p.nat_a = Some("203.0.113.8".parse().unwrap());
    assert_eq!(p.a.ep.update_path(p.now, h, local), Ok(true));
    p.drive_for(Duration::from_secs(3));
    // One event for the move: the path update, not also RFC 7296 §2.23's.
    let b = path_updates(&p.b.events);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].1, "203.0.113.8:14500".parse().unwrap());
    assert_eq!(
        p.b.count(|e| matches!(e, Event::PeerAddressChanged { .. })),
        0
    );
}
