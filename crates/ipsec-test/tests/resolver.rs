//! One responder, many peers: a [`ResolvesPeer`] chooses each peer's PSK, identity
//! check and selectors when its IKE_AUTH arrives, and initiators pick their
//! configuration per IKE SA with `connect_with`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ipsec_core::TrafficSelector;
use ipsec_ike::{CloseReason, Config, Event, Identity, PeerHello, SaHandle};
use ipsec_test::{config, Pair};

/// Peer `name`'s configuration on the gateway: its own PSK, its identity required,
/// and its own remote selector 10.<n>.0.0/16.
fn gw_side(name: &str, n: u8) -> Config {
    let mut c = Config::new(
        "gw.example".parse().unwrap(),
        format!("psk-of-{name}-0123456789"),
    );
    c.remote_id = Some(format!("{name}.example").parse().unwrap());
    c.remote_ts = vec![TrafficSelector::from_prefix([10, n, 0, 0].into(), 16).unwrap()];
    c
}

/// The peer's own configuration: the mirror of [`gw_side`] with the given PSK.
fn peer_side(name: &str, n: u8, psk: &str) -> Config {
    let mut c = Config::new(format!("{name}.example").parse().unwrap(), psk);
    c.local_ts = vec![TrafficSelector::from_prefix([10, n, 0, 0].into(), 16).unwrap()];
    c
}

struct Gateway {
    peers: HashMap<Identity, Arc<Config>>,
    asked: Mutex<Vec<(Identity, Option<Identity>)>>,
}

impl Gateway {
    fn resolve(&self, h: &PeerHello<'_>) -> Option<Arc<Config>> {
        self.asked
            .lock()
            .unwrap()
            .push((h.peer_id.clone(), h.requested_id.cloned()));
        self.peers.get(h.peer_id).cloned()
    }
}

fn connect(p: &mut Pair, c: Config) -> SaHandle {
    let (l, r) = (p.a.addr(), p.b.addr());
    let h = p.a.ep.connect_with(p.now, l, r, Arc::new(c)).unwrap();
    p.collect();
    p.drive();
    h
}

fn closed_reason(p: &Pair, h: SaHandle) -> Option<CloseReason> {
    p.a.events.iter().find_map(|(s, e)| match e {
        Event::IkeSaClosed { reason } if *s == h => Some(*reason),
        _ => None,
    })
}

#[test]
fn one_responder_serves_each_peer_with_its_own_key_and_policy() {
    let names = ["alice", "bob", "carol"];
    let gw = Arc::new(Gateway {
        peers: names
            .iter()
            .zip(1u8..)
            .map(|(n, i)| {
                let c = gw_side(n, i);
                (c.remote_id.clone().unwrap(), Arc::new(c))
            })
            .collect(),
        asked: Mutex::new(Vec::new()),
    });
    // The endpoint's own configuration has a PSK nobody knows: only the resolver's
    // configurations can authenticate anyone.
    let mut p = Pair::new(config("init.example"), config("gw.example"), 7);
    let r = Arc::clone(&gw);
    p.b.ep
        .set_resolver(Arc::new(move |h: &PeerHello<'_>| r.resolve(h)));

    let mut handles = Vec::new();
    for (n, i) in names.iter().zip(1u8..) {
        let h = connect(&mut p, peer_side(n, i, &format!("psk-of-{n}-0123456789")));
        assert!(p.a.ep.is_established(h), "{n} established");
        handles.push(h);
    }
    // Each peer's Child SA carries the selectors of its own configuration, and the
    // gateway reports the authenticated identity.
    let established: Vec<Identity> =
        p.b.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
                _ => None,
            })
            .collect();
    assert_eq!(
        established,
        names
            .iter()
            .map(|n| format!("{n}.example").parse().unwrap())
            .collect::<Vec<Identity>>()
    );
    let installed = p.b.installed();
    assert_eq!(installed.len(), 3);
    for ((_, params), i) in installed.iter().zip(1u8..) {
        assert_eq!(
            params.remote_ts.as_slice(),
            [TrafficSelector::from_prefix([10, i, 0, 0].into(), 16).unwrap()]
        );
    }
    // The gateway's SAs run with the resolved configurations.
    for sa in p.b.ep.sa_handles() {
        let c = p.b.ep.sa_config(sa).unwrap();
        assert!(
            gw.peers.values().any(|g| Arc::ptr_eq(g, c)),
            "SA runs with a resolved configuration"
        );
    }
    assert!(gw
        .asked
        .lock()
        .unwrap()
        .iter()
        .all(|(_, requested)| requested.is_none()));

    // A Child SA created later in an IKE SA also takes that SA's configuration.
    let before = p.b.installed().len();
    p.a.ep.create_child_sa(p.now, handles[1]).unwrap();
    p.collect();
    p.drive();
    let after = p.b.installed();
    assert_eq!(after.len(), before + 1);
    assert_eq!(
        after.last().unwrap().1.remote_ts.as_slice(),
        [TrafficSelector::from_prefix([10, 2, 0, 0].into(), 16).unwrap()]
    );
}

#[test]
fn another_peers_key_or_an_unknown_identity_is_refused() {
    let gw = Arc::new(Gateway {
        peers: [("alice", 1u8), ("bob", 2)]
            .iter()
            .map(|(n, i)| {
                let c = gw_side(n, *i);
                (c.remote_id.clone().unwrap(), Arc::new(c))
            })
            .collect(),
        asked: Mutex::new(Vec::new()),
    });
    let mut p = Pair::new(config("x.example"), config("gw.example"), 9);
    let r = Arc::clone(&gw);
    p.b.ep
        .set_resolver(Arc::new(move |h: &PeerHello<'_>| r.resolve(h)));

    // Alice with Bob's key: AUTHENTICATION_FAILED.
    let h = connect(&mut p, peer_side("alice", 1, "psk-of-bob-0123456789"));
    assert!(!p.a.ep.is_established(h));
    assert!(
        matches!(
            closed_reason(&p, h),
            Some(CloseReason::AuthenticationFailed(
                ipsec_ike::AuthFailure::RejectedByPeer
            ))
        ),
        "{:?}",
        closed_reason(&p, h)
    );
    // An identity the resolver does not know, with a key some peer has.
    let h = connect(&mut p, peer_side("mallory", 3, "psk-of-bob-0123456789"));
    assert!(!p.a.ep.is_established(h));
    // Mallory claiming to be Bob with her own key.
    let h = connect(&mut p, peer_side("bob", 2, "psk-of-mallory-0123456789"));
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        0,
        "nothing established on the gateway"
    );
    assert_eq!(gw.asked.lock().unwrap().len(), 3, "asked once per attempt");
    // Bob with his own key still gets in.
    let h = connect(&mut p, peer_side("bob", 2, "psk-of-bob-0123456789"));
    assert!(p.a.ep.is_established(h));
}

#[test]
fn without_a_resolver_the_endpoint_config_serves() {
    let mut p = Pair::new(config("a.example"), config("b.example"), 11);
    let mut c = config("a.example");
    c.local_ts = vec![TrafficSelector::from_prefix([10, 9, 0, 0].into(), 16).unwrap()];
    let h = connect(&mut p, c);
    assert!(p.a.ep.is_established(h));
    // The initiator's SA runs with the configuration it was given.
    let cfg = p.a.ep.sa_config(h).unwrap();
    assert_eq!(
        cfg.local_ts,
        vec![TrafficSelector::from_prefix([10, 9, 0, 0].into(), 16).unwrap()]
    );
    assert!(!Arc::ptr_eq(cfg, p.a.ep.config()));
}
