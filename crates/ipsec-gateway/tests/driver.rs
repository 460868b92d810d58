//! The gateway's control plane without I/O: two or more [`Driver`]s exchange their
//! datagrams in memory, and their SADs carry packets, so the whole composition (IKE
//! events into SAD installs, policies, routes, acquires, restarts, shutdown) is
//! checked without sockets, TUN devices or root.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipsec::core::{Duration, Instant, PacketBuf, UdpEncap};
use ipsec::ike::{Identity, Psk};
use ipsec::sad::{UdpInbound, UdpOutbound};
use ipsec_gateway::driver::{Notice, RouteChange, SecretLookup, StartAction};

mod common;
use common::*;

fn packet(src: &str, dst: &str) -> Vec<u8> {
    let src: std::net::Ipv4Addr = src.parse().unwrap();
    let dst: std::net::Ipv4Addr = dst.parse().unwrap();
    let payload = b"through the gateway";
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = ipsec::core::ip::ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&5678u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

/// Seals `inner` on `from`'s SAD and opens it on `to`'s: the delivered packet.
fn carry(from: &Node, to: &Node, now: Instant, inner: &[u8]) -> Result<Vec<u8>, String> {
    let head = 128;
    let mut storage = vec![0u8; head + inner.len() + 128];
    storage[head..head + inner.len()].copy_from_slice(inner);
    let mut buf = PacketBuf::new(&mut storage[..], head, inner.len()).unwrap();
    let to_addr = match from.sad.process_outbound_udp(now, &mut buf) {
        UdpOutbound::Send { to, .. } => to,
        other => return Err(format!("outbound: {other:?}")),
    };
    let wire = buf.body().to_vec();
    let mut storage = vec![0u8; head + wire.len()];
    storage[head..].copy_from_slice(&wire);
    let mut buf = PacketBuf::new(&mut storage[..], head, wire.len()).unwrap();
    let local = SocketAddr::new(to.ip, to_addr.port());
    let remote = SocketAddr::new(from.ip, 4500);
    match to.sad.process_inbound_udp(now, local, remote, &mut buf) {
        UdpInbound::Deliver { .. } => Ok(buf.body().to_vec()),
        other => Err(format!("inbound: {other:?}")),
    }
}

const START: StartAction = StartAction {
    trap: false,
    start: true,
};
const TRAP: StartAction = StartAction {
    trap: true,
    start: false,
};

#[test]
fn one_gateway_serves_three_peers_each_with_its_key() {
    let now = Instant::from_secs(100);
    // The gateway: one connection for any peer, keys per identity, a selector per
    // peer from its own proposal (the peers narrow nothing: each proposes its own).
    let gw_cfg = conn("rw", "gw.example", None, "", "10.0.0.0/16", "10.0.0.0/8");
    let gw = node(
        "192.0.2.1",
        vec![spec(gw_cfg, "192.0.2.1", None, StartAction::default())],
        secrets(&[
            ("p1.example", "key-of-p1-0123456789"),
            ("p2.example", "key-of-p2-0123456789"),
            ("p3.example", "key-of-p3-0123456789"),
        ]),
    );
    let mut nodes = vec![gw];
    for n in 1..=3u8 {
        let id = format!("p{n}.example");
        let key = format!("key-of-p{n}-0123456789");
        let cfg = conn(
            "gw",
            &id,
            Some("gw.example"),
            &key,
            &format!("10.{n}.0.0/16"),
            "10.0.0.0/16",
        );
        let ip = format!("192.0.2.{}", 10 + n);
        nodes.push(node(
            &ip,
            vec![spec(cfg, &ip, Some("192.0.2.1"), START)],
            secrets(&[]),
        ));
    }
    // A fourth peer presents p1's identity with p2's key.
    let evil = conn(
        "gw",
        "p1.example",
        Some("gw.example"),
        "key-of-p2-0123456789",
        "10.9.0.0/16",
        "10.0.0.0/16",
    );
    nodes.push(node(
        "192.0.2.99",
        vec![spec(evil, "192.0.2.99", Some("192.0.2.1"), START)],
        secrets(&[]),
    ));
    for n in nodes.iter_mut().skip(1) {
        n.driver.start(now);
    }
    pump(&mut nodes, now);

    let status = nodes[0].driver.status(now);
    let mut peers: Vec<String> = status
        .ike_sas
        .iter()
        .filter(|s| s.state == "ESTABLISHED")
        .map(|s| s.remote_id.clone())
        .collect();
    peers.sort();
    assert_eq!(peers, ["@p1.example", "@p2.example", "@p3.example"]);
    assert!(
        status.ike_sas.iter().all(|s| s.children.len() == 1),
        "{status:#?}"
    );
    assert_eq!(
        nodes[0]
            .driver
            .counters()
            .handshake_failures
            .values()
            .sum::<u64>(),
        1,
        "the impostor was refused"
    );
    assert!(nodes[4]
        .driver
        .status(now)
        .ike_sas
        .iter()
        .all(|s| s.state != "ESTABLISHED"));
    // One route per peer on the gateway, to the peer's selector.
    let mut dsts: Vec<String> = nodes[0]
        .routes
        .iter()
        .filter_map(|r| match r {
            RouteChange::Add { dst, .. } => Some(format!("{}/{}", dst[0].0, dst[0].1)),
            _ => None,
        })
        .collect();
    dsts.sort();
    assert_eq!(dsts, ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
    // Packets both ways, each peer through its own SA.
    for n in 1..=3usize {
        let p = packet(&format!("10.{n}.0.5"), "10.0.0.7");
        assert_eq!(carry(&nodes[n], &nodes[0], now, &p).unwrap(), p);
        let back = packet("10.0.0.7", &format!("10.{n}.0.5"));
        let delivered = carry(&nodes[0], &nodes[n], now, &back).unwrap();
        assert_eq!(delivered, back);
    }
    // The status counts the packets per Child SA.
    let status = nodes[0].driver.status(now);
    for s in status.ike_sas.iter().filter(|s| s.state == "ESTABLISHED") {
        let c = &s.children[0];
        assert_eq!((c.packets_in, c.packets_out), (1, 1), "{c:?}");
    }
    // A packet to peer 2's network cannot be opened by peer 3.
    let p = packet("10.0.0.7", "10.2.0.5");
    assert!(carry(&nodes[0], &nodes[3], now, &p).is_err());
}

/// Two sites: A (192.0.2.1, 10.1.0.0/16) reaches B (192.0.2.2, 10.2.0.0/16) with
/// `action`; B accepts A's identity with `key` from its secrets.
fn site_pair(key: &str, action: StartAction) -> Vec<Node> {
    let a_cfg = conn(
        "net",
        "a.example",
        Some("b.example"),
        key,
        "10.1.0.0/16",
        "10.2.0.0/16",
    );
    let b_cfg = conn(
        "net",
        "b.example",
        Some("a.example"),
        "",
        "10.2.0.0/16",
        "10.1.0.0/16",
    );
    let a = node(
        "192.0.2.1",
        vec![spec(a_cfg, "192.0.2.1", Some("192.0.2.2"), action)],
        secrets(&[]),
    );
    let b = node(
        "192.0.2.2",
        vec![spec(b_cfg, "192.0.2.2", None, StartAction::default())],
        secrets(&[("a.example", key)]),
    );
    vec![a, b]
}

#[test]
fn a_trap_policy_negotiates_on_the_first_packet_and_survives_the_peer() {
    let mut now = Instant::from_secs(100);
    let mut nodes = site_pair("shared-key-0123456789", TRAP);
    pump(&mut nodes, now);
    // The trap installed its route before any SA.
    assert!(matches!(&nodes[0].routes[..], [RouteChange::Add { .. }]));
    assert!(nodes[0].driver.status(now).ike_sas.is_empty());
    // The first packet: an acquire, which starts IKE.
    let p = packet("10.1.0.5", "10.2.0.9");
    let err = carry(&nodes[0], &nodes[1], now, &p).unwrap_err();
    assert!(err.contains("Acquire"), "{err}");
    nodes[0].driver.handle_sad_events(now);
    pump(&mut nodes, now);
    assert_eq!(nodes[0].driver.counters().acquires, 1);
    assert_eq!(carry(&nodes[0], &nodes[1], now, &p).unwrap(), p);

    // The peer deletes everything: the trap stays (its route too), the next packet
    // negotiates again.
    nodes[1].driver.shutdown(now);
    pump(&mut nodes, now);
    assert!(nodes[1].driver.is_idle());
    assert!(nodes[0].driver.is_idle());
    assert!(
        !nodes[0]
            .routes
            .iter()
            .any(|r| matches!(r, RouteChange::Remove { .. })),
        "a trap's route stays"
    );
    now = now + Duration::from_secs(5);
    assert!(carry(&nodes[0], &nodes[1], now, &p)
        .unwrap_err()
        .contains("Acquire"));
    nodes[0].driver.handle_sad_events(now);
    pump(&mut nodes, now);
    // B shut down, but a shut-down driver still answers a new initiator.
    assert_eq!(carry(&nodes[0], &nodes[1], now, &p).unwrap(), p);
}

#[test]
fn a_lost_peer_is_removed_by_dpd_and_a_start_connection_comes_back() {
    let mut now = Instant::from_secs(100);
    let mut nodes = site_pair("k-0123456789abcdef", START);
    nodes[0].driver.start(now);
    pump(&mut nodes, now);
    assert_eq!(nodes[1].routes.len(), 1);
    // A dies (kill -9): nothing of it answers any more. B's DPD finds out.
    let dead = nodes.remove(0);
    drop(dead);
    let mut steps = 0;
    while !nodes[0].driver.is_idle() && steps < 1000 {
        now = nodes[0]
            .driver
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1))
            .max(now);
        nodes[0].driver.handle_timeout(now);
        while nodes[0].driver.poll_transmit().is_some() {}
        steps += 1;
    }
    assert!(
        nodes[0].driver.is_idle(),
        "DPD removed the dead peer's IKE SA"
    );
    while let Some(r) = nodes[0].driver.poll_route() {
        nodes[0].routes.push(r);
    }
    assert!(
        matches!(nodes[0].routes.last(), Some(RouteChange::Remove { .. })),
        "its route is gone: {:?}",
        nodes[0].routes
    );
    assert!(nodes[0].sad.sa_ids().is_empty(), "its SAs are gone");
    assert!(
        nodes[0]
            .driver
            .counters()
            .ike_closed
            .contains_key("timeout"),
        "{:?}",
        nodes[0].driver.counters()
    );

    // A restarts and connects again.
    let a = site_pair("k-0123456789abcdef", START).swap_remove(0);
    nodes.insert(0, a);
    nodes[0].driver.start(now);
    pump(&mut nodes, now);
    let p = packet("10.2.0.1", "10.1.0.1");
    assert_eq!(carry(&nodes[1], &nodes[0], now, &p).unwrap(), p);

    // When B deletes the IKE SA, A (start) initiates again after the restart delay.
    nodes[1].driver.shutdown(now);
    pump(&mut nodes, now);
    assert!(nodes[0].driver.is_idle());
    now = now + Duration::from_secs(3);
    nodes[0].driver.handle_timeout(now);
    pump(&mut nodes, now);
    assert_eq!(
        nodes[0]
            .driver
            .status(now)
            .ike_sas
            .iter()
            .filter(|s| s.state == "ESTABLISHED")
            .count(),
        1
    );
}

/// Two nodes, A initiating to B, both keeping notices; `udp` forces UDP
/// encapsulation in IKE (as the gateway does) or leaves it to NAT detection.
fn pair(udp: bool, b_key: &str) -> Vec<Node> {
    let mut a_cfg = conn(
        "net",
        "a.example",
        Some("b.example"),
        "pair-key-0123456789",
        "10.1.0.0/16",
        "10.2.0.0/16",
    );
    let mut b_cfg = conn(
        "net",
        "b.example",
        Some("a.example"),
        "",
        "10.2.0.0/16",
        "10.1.0.0/16",
    );
    a_cfg.force_udp_encap = udp;
    b_cfg.force_udp_encap = udp;
    let mut nodes = vec![
        node_with(
            "192.0.2.1",
            vec![spec(
                a_cfg,
                "192.0.2.1",
                Some("192.0.2.2"),
                StartAction::default(),
            )],
            secrets(&[]),
            udp,
        ),
        node_with(
            "192.0.2.2",
            vec![spec(b_cfg, "192.0.2.2", None, StartAction::default())],
            secrets(&[("a.example", b_key)]),
            udp,
        ),
    ];
    for n in &mut nodes {
        n.driver.keep_notices(true);
    }
    nodes
}

fn notices(n: &mut Node) -> Vec<Notice> {
    std::iter::from_fn(|| n.driver.poll_notice()).collect()
}

#[test]
fn notices_report_each_step_and_commands_rekey_and_close() {
    let mut now = Instant::from_secs(100);
    let mut nodes = pair(true, "pair-key-0123456789");
    let h = nodes[0].driver.initiate_sa(now, "net").unwrap();
    pump(&mut nodes, now);
    let a = notices(&mut nodes[0]);
    let b = notices(&mut nodes[1]);
    let Some(Notice::IkeUp {
        sa,
        initiator: true,
        peer_id,
        connection,
        ..
    }) = a.first()
    else {
        panic!("{a:#?}")
    };
    assert_eq!(
        (*sa, peer_id.to_string(), connection.as_str()),
        (h, "@b.example".into(), "net")
    );
    let Some(Notice::ChildUp {
        child,
        sad: Some(sad),
        outbound_spi,
        local_ts,
        udp_encap: Some(_),
        ..
    }) = a.get(1)
    else {
        panic!("{a:#?}")
    };
    let (first, first_sad) = (*child, *sad);
    assert_eq!(nodes[0].driver.child_sad_id(first), Some(first_sad));
    assert_eq!(local_ts, &[ts("10.1.0.0/16")]);
    assert!(
        matches!(&b[..], [Notice::IkeUp { initiator: false, .. }, Notice::ChildUp { inbound_spi, .. }] if inbound_spi == outbound_spi),
        "{b:#?}"
    );
    let p = packet("10.1.0.5", "10.2.0.9");
    assert_eq!(carry(&nodes[0], &nodes[1], now, &p).unwrap(), p);

    // A Child SA rekey on command: the new one is installed, the old one removed.
    nodes[0].driver.rekey_child(now, first).unwrap();
    pump(&mut nodes, now);
    let a = notices(&mut nodes[0]);
    let new = match &a[..] {
        [Notice::ChildUp {
            child: new,
            sad: Some(_),
            ..
        }, Notice::ChildRekeyed { old, new: n2, .. }, Notice::ChildDeleted { child: gone, .. }]
            if old == &first && n2 == new && gone == &first =>
        {
            *new
        }
        _ => panic!("{a:#?}"),
    };
    let b = notices(&mut nodes[1]);
    assert!(
        matches!(
            &b[..],
            [
                Notice::ChildUp { .. },
                Notice::ChildRekeyed { .. },
                Notice::ChildDeleted { .. }
            ]
        ),
        "{b:#?}"
    );
    assert_eq!(nodes[0].driver.child_sad_id(first), None);
    assert!(nodes[0].driver.child_sad_id(new).is_some());
    assert_eq!(carry(&nodes[0], &nodes[1], now, &p).unwrap(), p);
    assert!(nodes[0].driver.rekey_child(now, first).is_err(), "gone");

    // An IKE SA rekey on command, seen on both sides.
    nodes[0].driver.rekey_ike(now, h).unwrap();
    pump(&mut nodes, now);
    for n in nodes.iter_mut() {
        let got = notices(n);
        assert!(matches!(&got[..], [Notice::IkeRekeyed { .. }]), "{got:#?}");
    }

    // Deleting the Child SA, then closing the IKE SA.
    nodes[0].driver.delete_child(now, new).unwrap();
    pump(&mut nodes, now);
    for n in nodes.iter_mut() {
        let got = notices(n);
        assert!(
            matches!(&got[..], [Notice::ChildDeleted { .. }]),
            "{got:#?}"
        );
    }
    assert!(carry(&nodes[0], &nodes[1], now, &p).is_err());
    now = now + Duration::from_secs(1);
    nodes[0].driver.close(now, h).unwrap();
    pump(&mut nodes, now);
    for n in nodes.iter_mut() {
        let got = notices(n);
        assert!(
            matches!(
                &got[..],
                [Notice::IkeClosed {
                    established: true,
                    ..
                }]
            ),
            "{got:#?}"
        );
        assert!(n.driver.is_idle());
    }
}

#[test]
fn a_failed_handshake_is_noticed_as_never_established() {
    let now = Instant::from_secs(100);
    let mut nodes = pair(true, "not-the-key-0123456789");
    nodes[0].driver.initiate_sa(now, "net").unwrap();
    pump(&mut nodes, now);
    for n in nodes.iter_mut() {
        let got = notices(n);
        assert!(
            matches!(
                &got[..],
                [Notice::IkeClosed {
                    established: false,
                    ..
                }]
            ),
            "{got:#?}"
        );
    }
    // Without keep_notices nothing is queued.
    let mut quiet = pair(true, "pair-key-0123456789");
    quiet[0].driver.keep_notices(false);
    quiet[0].driver.initiate_sa(now, "net").unwrap();
    pump(&mut quiet, now);
    assert!(quiet[0].driver.poll_notice().is_none());
    assert!(!notices(&mut quiet[1]).is_empty());
}

#[test]
fn esp_in_udp_lets_sas_negotiated_without_nat_use_udp_sockets() {
    let now = Instant::from_secs(100);
    // Without NAT (and without forcing it) IKE negotiates plain ESP: the UDP path
    // refuses it.
    let mut nodes = pair(false, "pair-key-0123456789");
    nodes[0].driver.set_ike_port(5000);
    nodes[0].driver.initiate_sa(now, "net").unwrap();
    let first = nodes[0].driver.poll_transmit().unwrap();
    assert_eq!(first.local.port(), 5000, "sent from the IKE port set");
    nodes[1]
        .driver
        .handle_datagram(now, first.remote, first.local, &first.payload);
    pump(&mut nodes, now);
    let a = notices(&mut nodes[0]);
    assert!(
        a.iter().any(|n| matches!(
            n,
            Notice::ChildUp {
                udp_encap: None,
                ..
            }
        )),
        "{a:#?}"
    );
    let p = packet("10.1.0.5", "10.2.0.9");
    assert!(carry(&nodes[0], &nodes[1], now, &p)
        .unwrap_err()
        .contains("NeedsRawIp"));

    // With set_esp_in_udp on both sides, the same negotiation is installed for UDP.
    let mut nodes = pair(false, "pair-key-0123456789");
    for (n, (l, r)) in nodes.iter_mut().zip([(4600, 4700), (4700, 4600)]) {
        n.driver.set_esp_in_udp(Some(UdpEncap {
            local_port: l,
            remote_port: r,
        }));
    }
    nodes[0].driver.initiate_sa(now, "net").unwrap();
    pump(&mut nodes, now);
    let a = notices(&mut nodes[0]);
    assert!(
        a.iter().any(|n| matches!(
            n,
            Notice::ChildUp {
                udp_encap: None,
                ..
            }
        )),
        "negotiated without: {a:#?}"
    );
    assert_eq!(carry(&nodes[0], &nodes[1], now, &p).unwrap(), p);
    let back = packet("10.2.0.9", "10.1.0.5");
    assert_eq!(carry(&nodes[1], &nodes[0], now, &back).unwrap(), back);
    let status = nodes[0].driver.status(now);
    assert!(status.ike_sas[0].children[0].udp_encap);
}

/// A connection that matches the peer's identity but has no key for it is skipped for
/// the next one (the key is looked up per connection, with that connection's own
/// identity).
#[test]
fn a_connection_without_a_key_for_the_peer_gives_way_to_the_next() {
    let now = Instant::from_secs(100);
    let first = conn(
        "first",
        "gw-a.example",
        Some("p.example"),
        "",
        "10.0.0.0/16",
        "10.0.0.0/8",
    );
    let second = conn(
        "second",
        "gw-b.example",
        Some("p.example"),
        "",
        "10.0.0.0/16",
        "10.0.0.0/8",
    );
    // Keys only for (gw-b, p).
    let lookup: SecretLookup = Arc::new(|local: &Identity, peer: &Identity| {
        (local == &"gw-b.example".parse::<Identity>().unwrap()
            && peer == &"p.example".parse::<Identity>().unwrap())
            .then(|| Psk::from("key-of-p-at-gw-b-0123"))
    });
    let gw = node(
        "192.0.2.1",
        vec![
            spec(first, "192.0.2.1", None, StartAction::default()),
            spec(second, "192.0.2.1", None, StartAction::default()),
        ],
        lookup,
    );
    let peer_cfg = conn(
        "gw",
        "p.example",
        None,
        "key-of-p-at-gw-b-0123",
        "10.1.0.0/16",
        "10.0.0.0/16",
    );
    let peer = node(
        "192.0.2.10",
        vec![spec(peer_cfg, "192.0.2.10", Some("192.0.2.1"), START)],
        secrets(&[]),
    );
    let mut nodes = vec![gw, peer];
    nodes[1].driver.start(now);
    pump(&mut nodes, now);
    let st = nodes[0].driver.status(now);
    assert_eq!(st.ike_sas.len(), 1, "{st:#?}");
    assert_eq!(st.ike_sas[0].state, "ESTABLISHED");
    assert_eq!(st.ike_sas[0].connection, "second");
}

/// Two gateways and a client: gw1 sends every client to gw2 in IKE_AUTH (the
/// `redirect_to` key), the client's driver follows (REDIRECTED_FROM), ends up with an
/// IKE SA and a Child SA on gw2, and packets pass; then gw2 redirects the established
/// SA to gw1 by command (`redirect <peer> <gateway>`), and gw1 sends it back to gw2.
#[test]
fn client_follows_a_redirect_to_the_second_gateway() {
    let now = Instant::from_secs(100);
    let gw = |ip: &str, redirect: Option<&str>| {
        let mut c = conn("rw", "gw.example", None, "", "10.0.0.0/16", "10.0.0.0/8");
        c.redirect = redirect.map(|to| {
            Arc::new(ipsec::ike::RedirectAll(ipsec::ike::Gateway::Ip(
                to.parse().unwrap(),
            ))) as Arc<dyn ipsec::ike::Redirects>
        });
        node(
            ip,
            vec![spec(c, ip, None, StartAction::default())],
            secrets(&[("p1.example", "key-of-p1-0123456789")]),
        )
    };
    let gw1 = gw("192.0.2.1", Some("192.0.2.2"));
    let gw2 = gw("192.0.2.2", None);
    let cfg = conn(
        "gw",
        "p1.example",
        Some("gw.example"),
        "key-of-p1-0123456789",
        "10.1.0.0/16",
        "10.0.0.0/16",
    );
    let mut client = node(
        "192.0.2.11",
        vec![spec(cfg, "192.0.2.11", Some("192.0.2.1"), START)],
        secrets(&[]),
    );
    client.driver.keep_notices(true);
    let mut nodes = vec![gw1, gw2, client];
    nodes[2].driver.start(now);
    pump(&mut nodes, now);

    let up = |n: &Node| {
        n.driver
            .status(now)
            .ike_sas
            .into_iter()
            .filter(|s| s.state == "ESTABLISHED")
            .collect::<Vec<_>>()
    };
    let c = up(&nodes[2]);
    assert_eq!(c.len(), 1, "{:#?}", nodes[2].driver.status(now));
    assert_eq!(c[0].remote, "192.0.2.2:4500");
    assert_eq!(c[0].children.len(), 1);
    assert_eq!(up(&nodes[1]).len(), 1);
    assert!(up(&nodes[0]).is_empty(), "gw1 holds nothing");
    assert_eq!(nodes[0].driver.counters().peers_redirected, 1);
    assert_eq!(nodes[2].driver.counters().redirects_followed, 1);
    let notices: Vec<Notice> = std::iter::from_fn(|| nodes[2].driver.poll_notice()).collect();
    assert!(notices.iter().any(|n| matches!(n,
        Notice::Redirected { to: ipsec::ike::Gateway::Ip(ip), new: Some(_), .. }
            if *ip == "192.0.2.2".parse::<IpAddr>().unwrap())));
    // Traffic through gw2.
    let p = packet("10.1.0.5", "10.0.0.7");
    assert_eq!(carry(&nodes[2], &nodes[1], now, &p).unwrap(), p);

    // gw2 sends the established SA on (by peer address, as the control command).
    let n = nodes[1]
        .driver
        .redirect_by(now, "192.0.2.11", "192.0.2.1")
        .unwrap();
    assert_eq!(n, 1);
    assert!(nodes[1]
        .driver
        .redirect_by(now, "192.0.2.99", "192.0.2.1")
        .is_err());
    pump(&mut nodes, now);
    // Client: gw2 -> gw1 (redirected in IKE_AUTH to gw2 again) -> gw2: established.
    assert_eq!(nodes[2].driver.counters().redirects_followed, 3);
    let c = up(&nodes[2]);
    assert_eq!(c.len(), 1, "{:#?}", nodes[2].driver.status(now));
    assert_eq!(c[0].remote, "192.0.2.2:4500");
    assert_eq!(nodes[0].driver.counters().peers_redirected, 2);
    assert_eq!(nodes[1].driver.counters().peers_redirected, 1);
    assert_eq!(carry(&nodes[2], &nodes[1], now, &p).unwrap(), p);
}

/// MOBIKE (RFC 4555) through the drivers: the road warrior's address changes, its
/// driver moves the IKE SA (`local_address_changed`), the gateway follows the
/// UPDATE_SA_ADDRESSES and moves the Child SA in its SAD, and ESP keeps flowing both
/// ways on the same SAs, with their sequence numbers going on.
#[test]
fn a_road_warrior_moves_and_esp_continues() {
    let now = Instant::from_secs(100);
    let gw_cfg = conn("rw", "gw.example", None, "", "10.0.0.0/16", "10.0.0.0/8");
    let gw = node(
        "192.0.2.1",
        vec![spec(gw_cfg, "192.0.2.1", None, StartAction::default())],
        secrets(&[("p1.example", "key-of-p1-0123456789")]),
    );
    let cfg = conn(
        "gw",
        "p1.example",
        Some("gw.example"),
        "key-of-p1-0123456789",
        "10.1.0.0/16",
        "10.0.0.0/16",
    );
    let rw = node(
        "192.0.2.11",
        vec![spec(cfg, "192.0.2.11", Some("192.0.2.1"), START)],
        secrets(&[]),
    );
    let mut nodes = vec![gw, rw];
    nodes[0].driver.keep_notices(true);
    nodes[1].driver.start(now);
    pump(&mut nodes, now);
    let out = packet("10.1.0.5", "10.0.0.7");
    let back = packet("10.0.0.7", "10.1.0.5");
    assert_eq!(carry(&nodes[1], &nodes[0], now, &out).unwrap(), out);
    assert_eq!(carry(&nodes[0], &nodes[1], now, &back).unwrap(), back);
    let gw_sa = nodes[0].sad.sa_ids()[0];
    let rw_sa = nodes[1].sad.sa_ids()[0];
    let seq_before = nodes[0].sad.sa_info(gw_sa).unwrap().last_seq;

    // The road warrior's address changes.
    let old: IpAddr = "192.0.2.11".parse().unwrap();
    let new: IpAddr = "192.0.2.51".parse().unwrap();
    nodes[1].ip = new;
    let moved = nodes[1]
        .driver
        .local_address_changed(now, old, SocketAddr::new(new, 4500));
    assert_eq!(moved, 1);
    // The gateway, a MOBIKE responder, cannot move its own address.
    let gw_ip = nodes[0].ip;
    assert_eq!(
        nodes[0]
            .driver
            .local_address_changed(now, gw_ip, SocketAddr::new(gw_ip, 4500)),
        0
    );
    pump(&mut nodes, now);

    // Same SAs on both sides, now on the new path.
    assert_eq!(nodes[0].sad.sa_ids(), vec![gw_sa]);
    assert_eq!(nodes[1].sad.sa_ids(), vec![rw_sa]);
    let info = nodes[0].sad.sa_info(gw_sa).unwrap();
    assert_eq!(info.remote_addr, new);
    assert!(info.udp_encap.is_some());
    assert_eq!(nodes[1].sad.sa_info(rw_sa).unwrap().local_addr, new);
    let mut notices = Vec::new();
    while let Some(n) = nodes[0].driver.poll_notice() {
        notices.push(n);
    }
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, Notice::PathUpdated { remote, .. } if remote.ip() == new)),
        "{notices:?}"
    );
    // The gateway's ESP goes to the new address, and on from the same sequence.
    let head = 128;
    let mut storage = vec![0u8; head + back.len() + 128];
    storage[head..head + back.len()].copy_from_slice(&back);
    let mut buf = PacketBuf::new(&mut storage[..], head, back.len()).unwrap();
    match nodes[0].sad.process_outbound_udp(now, &mut buf) {
        UdpOutbound::Send { to, seq, .. } => {
            assert_eq!(to.ip(), new);
            assert_eq!(seq, seq_before + 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(carry(&nodes[1], &nodes[0], now, &out).unwrap(), out);
    assert_eq!(carry(&nodes[0], &nodes[1], now, &back).unwrap(), back);
    let status = nodes[0].driver.status(now);
    assert_eq!(status.ike_sas.len(), 1);
    assert_eq!(status.ike_sas[0].state, "ESTABLISHED");
}

/// A redirect to a name the driver cannot resolve is not followed: a `start`
/// connection then restarts towards its own gateway after `RESTART_DELAY`, as after
/// any loss, instead of staying down.
#[test]
fn a_redirect_that_is_not_followed_restarts_the_connection() {
    let now = Instant::from_secs(100);
    let mut c = conn("rw", "gw.example", None, "", "10.0.0.0/16", "10.0.0.0/8");
    c.redirect = Some(Arc::new(ipsec::ike::RedirectAll(ipsec::ike::Gateway::Fqdn(
        "gw2.example".into(),
    ))) as Arc<dyn ipsec::ike::Redirects>);
    let gw = node(
        "192.0.2.1",
        vec![spec(c, "192.0.2.1", None, StartAction::default())],
        secrets(&[("p1.example", "key-of-p1-0123456789")]),
    );
    let cfg = conn(
        "gw",
        "p1.example",
        Some("gw.example"),
        "key-of-p1-0123456789",
        "10.1.0.0/16",
        "10.0.0.0/16",
    );
    let mut client = node(
        "192.0.2.11",
        vec![spec(cfg, "192.0.2.11", Some("192.0.2.1"), START)],
        secrets(&[]),
    );
    client.driver.keep_notices(true);
    let mut nodes = vec![gw, client];
    nodes[1].driver.start(now);
    pump(&mut nodes, now);
    assert_eq!(nodes[0].driver.counters().peers_redirected, 1);
    assert_eq!(nodes[1].driver.counters().redirects_followed, 0);
    let notices: Vec<Notice> = std::iter::from_fn(|| nodes[1].driver.poll_notice()).collect();
    assert!(notices
        .iter()
        .any(|n| matches!(n, Notice::Redirected { new: None, .. })));
    // Nothing goes out before the restart delay; the restart then asks gw1 again.
    nodes[1]
        .driver
        .handle_timeout(now + Duration::from_millis(500));
    assert!(nodes[1].driver.poll_transmit().is_none());
    nodes[1]
        .driver
        .handle_timeout(now + ipsec_gateway::driver::RESTART_DELAY);
    let t = nodes[1]
        .driver
        .poll_transmit()
        .expect("the connection restarted");
    assert_eq!(t.remote.ip(), "192.0.2.1".parse::<IpAddr>().unwrap());
}
