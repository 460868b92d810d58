//! Remote access (docs/gateway.md, "Remote access"): the `swanctl.conf` keys for
//! virtual IPs and EAP (`pools`, `vips`, `eap_id`, `auth = eap-mschapv2`,
//! `secrets.eap<suffix>`), their conversion, and a gateway leasing addresses from a
//! pool to three road warriors through its driver (in memory, as tests/driver.rs).

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipsec::core::{Instant, TrafficSelector};
use ipsec::ike::{Config, Identity, LocalAuth, PeerAuth, Psk};
use ipsec::sad::{Sad, SadConfig};
use ipsec_gateway::conf::{
    parse_swanctl, select_eap_secret, AuthMethod, ConfErrorKind, GatewayConfig,
};
use ipsec_gateway::driver::{ConnSpec, Driver, Notice, RouteChange, SecretLookup, StartAction};
use ipsec_gateway::pool::{apply_pools, build_pools, MemPool, PoolSet};

fn parse(text: &str) -> Result<GatewayConfig, ipsec_gateway::conf::ConfError> {
    parse_swanctl("swanctl.conf", text.as_bytes())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ts(cidr: &str) -> TrafficSelector {
    let (a, l) = cidr.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

/// The road-warrior gateway of scripts/gateway-netns/roadwarrior.sh, with an IPv6
/// pool beside the IPv4 one.
const GATEWAY: &str = r#"
connections {
  rw {
    local_addrs = 198.18.0.1
    pools = rw4, rw6
    local {
      auth = pubkey
      id = gw.example
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.10.0.0/24
        remote_ts = dynamic
      }
    }
  }
}
pools {
  rw4 {
    addrs = 10.3.0.0/24
    dns = 10.10.0.53
  }
  rw6 {
    addrs = fd00:3::/120
  }
}
secrets {
  eap-carol {
    id = carol
    secret = carol-password-1
  }
  eap-dave {
    id = dave@example.org
    secret = "dave password 2"
  }
}
"#;

/// A charon-style road warrior: EAP for itself, a certificate for the gateway.
const CLIENT: &str = r#"
connections {
  rw {
    local_addrs = 198.18.0.11
    remote_addrs = 198.18.0.1
    vips = 0.0.0.0, ::
    local {
      auth = eap-mschapv2
      id = 198.18.0.11
      eap_id = carol
    }
    remote {
      auth = pubkey
      id = gw.example
    }
    children {
      net {
        remote_ts = 10.10.0.0/24
      }
    }
  }
}
secrets {
  eap-me {
    id = carol
    secret = carol-password-1
  }
}
"#;

#[test]
fn the_gateway_parses_and_converts() {
    let conf = parse(GATEWAY).unwrap();
    let c = &conf.connections[0];
    assert_eq!(c.pools, ["rw4", "rw6"]);
    assert_eq!(c.remote.auth, AuthMethod::EapMschapv2);
    assert_eq!(c.remote.eap_id.as_deref(), Some("%any"));
    assert_eq!(conf.eap_secrets.len(), 2);
    assert_eq!(conf.eap_secrets[1].ids, ["dave@example.org"]);
    assert!(conf.secrets.is_empty());
    // Unkeyed (the gateway's way): remote_ts = dynamic is the any selector of both
    // families until the pools are known...
    let mut cfg = c.to_ike_config_unkeyed().unwrap();
    assert_eq!(
        cfg.remote_ts,
        [TrafficSelector::any_v4(), TrafficSelector::any_v6()]
    );
    assert_eq!(cfg.local_ts, [ts("10.10.0.0/24")]);
    c.apply_eap(&mut cfg, &conf.eap_secrets).unwrap();
    assert!(matches!(
        cfg.peer_auth,
        PeerAuth::Eap {
            ask_identity: true,
            ..
        }
    ));
    // ... and with them, the pools' families, and the pools installed.
    let pools = build_pools(&conf).unwrap();
    assert_eq!(pools.len(), 2);
    apply_pools(c, &mut cfg, &pools).unwrap();
    let pool = cfg.pool.as_ref().expect("the pools are installed");
    let lease = pool.acquire(&Identity::Fqdn("carol".into()), &[ip("0.0.0.0"), ip("::")]);
    assert_eq!(lease.addresses, [ip("10.3.0.1"), ip("fd00:3::1")]);
    assert_eq!(lease.attributes.len(), 1);
    // Only an IPv4 pool: only the IPv4 any selector stays.
    let v4only = parse(&GATEWAY.replace("pools = rw4, rw6", "pools = rw4")).unwrap();
    let mut cfg = v4only.connections[0].to_ike_config_unkeyed().unwrap();
    apply_pools(&v4only.connections[0], &mut cfg, &pools).unwrap();
    assert_eq!(cfg.remote_ts, [TrafficSelector::any_v4()]);
    // A pool that does not exist.
    let missing = parse(&GATEWAY.replace("pools = rw4, rw6", "pools = rw4, nope")).unwrap();
    let mut cfg = missing.connections[0].to_ike_config_unkeyed().unwrap();
    let e = apply_pools(&missing.connections[0], &mut cfg, &pools).unwrap_err();
    assert!(e.contains("nope"), "{e}");
    // The gateway's own conversion: no PSK needed (pubkey + EAP).
    let cfg = conf.ike_config("rw").unwrap();
    assert!(matches!(cfg.peer_auth, PeerAuth::Eap { .. }));
    // Without eap_id the peer's IKE identity is its EAP identity: no EAP-Identity.
    let no_id = parse(&GATEWAY.replace("      eap_id = %any\n", "")).unwrap();
    let cfg = no_id.ike_config("rw").unwrap();
    assert!(matches!(
        cfg.peer_auth,
        PeerAuth::Eap {
            ask_identity: false,
            ..
        }
    ));
    // Serde round trip keeps the new keys.
    let json = serde_json::to_string(&conf).unwrap();
    let back: GatewayConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, conf);
}

#[test]
fn the_client_parses_and_converts() {
    let conf = parse(CLIENT).unwrap();
    let c = &conf.connections[0];
    assert_eq!(c.vips, [ip("0.0.0.0"), ip("::")]);
    assert_eq!(c.local.eap_id.as_deref(), Some("carol"));
    let cfg = conf.ike_config("rw").unwrap();
    assert_eq!(cfg.virtual_ips, [ip("0.0.0.0"), ip("::")]);
    // local_ts = dynamic (the default) with vips: the any selectors, which the
    // endpoint narrows to the assigned addresses.
    assert_eq!(
        cfg.local_ts,
        [TrafficSelector::any_v4(), TrafficSelector::any_v6()]
    );
    assert_eq!(cfg.remote_ts, [ts("10.10.0.0/24")]);
    match &cfg.auth {
        LocalAuth::Eap { peer } => assert_eq!(peer.identity(), b"carol"),
        other => panic!("{other:?}"),
    }
    // eap_id defaults to the IKE identity (without a leading @).
    let by_id = parse(
        &CLIENT
            .replace("      eap_id = carol\n", "")
            .replace("id = 198.18.0.11", "id = @carol"),
    )
    .unwrap();
    match &by_id.ike_config("rw").unwrap().auth {
        LocalAuth::Eap { peer } => assert_eq!(peer.identity(), b"carol"),
        other => panic!("{other:?}"),
    }
    // No password for our EAP identity.
    let nokey = parse(&CLIENT.replace("eap_id = carol", "eap_id = mallory")).unwrap();
    let e = nokey.ike_config("rw").unwrap_err();
    assert_eq!(e.field, "local.eap_id");
    assert!(e.problem.contains("mallory"), "{e}");
    // A vip with dynamic and an explicit selector: both.
    let both = parse(&CLIENT.replace(
        "        remote_ts = 10.10.0.0/24\n",
        "        remote_ts = 10.10.0.0/24\n        local_ts = dynamic, 10.9.0.0/16\n",
    ))
    .unwrap();
    assert_eq!(
        both.ike_config("rw").unwrap().local_ts,
        [
            TrafficSelector::any_v4(),
            TrafficSelector::any_v6(),
            ts("10.9.0.0/16")
        ]
    );
}

#[test]
fn eap_secrets_are_chosen_by_eap_identity() {
    let conf = parse(
        "secrets {\n eap-any { secret = for-anyone }\n eap-c { id = carol\n secret = for-carol }\n eap-d { id = @dave\n id2 = \"DOMAIN\\\\dave\"\n secret = for-dave }\n}",
    )
    .unwrap();
    let pick =
        |id: &[u8]| select_eap_secret(&conf.eap_secrets, id).map(|s| s.secret.expose().to_vec());
    assert_eq!(pick(b"carol"), Some(b"for-carol".to_vec()));
    assert_eq!(pick(b"dave"), Some(b"for-dave".to_vec()));
    assert_eq!(pick(b"DOMAIN\\dave"), Some(b"for-dave".to_vec()));
    assert_eq!(pick(b"erin"), Some(b"for-anyone".to_vec()));
    let only = parse("secrets {\n eap-c { id = carol\n secret = x }\n}").unwrap();
    assert!(select_eap_secret(&only.eap_secrets, b"erin").is_none());
}

#[test]
fn bad_and_unsupported_values_are_refused_with_their_line() {
    let conn = |body: &str| {
        format!("connections {{\n c {{\n local {{ auth = pubkey }}\n{body}\n }}\n}}\n")
    };
    type Check = fn(&ConfErrorKind) -> bool;
    let bad: Check = |k| matches!(k, ConfErrorKind::BadValue { .. });
    let cases: Vec<(String, u32, Check)> = vec![
        (conn("vips = 10.0.0.300"), 4, bad),
        (conn("vips = 0.0.0.0, 10.0.0.1"), 4, bad),
        (conn("vips = "), 4, bad),
        (conn("pools = "), 4, bad),
        (conn("pools = a,,b"), 4, bad),
        (conn("pools {\n }"), 4, |k| {
            matches!(k, ConfErrorKind::NotAKey(_))
        }),
        (conn("pull = yes"), 4, |k| {
            matches!(k, ConfErrorKind::UnsupportedKey { .. })
        }),
        (conn("remote {\n auth = eap-md5\n }"), 5, bad),
        (conn("remote {\n auth = eap-dynamic\n }"), 5, bad),
        (conn("remote {\n auth = eap\n }"), 5, bad),
        (conn("remote {\n auth = xauth-pam\n }"), 5, bad),
        (conn("remote {\n auth = pubkey\n eap_id = %any\n }"), 6, bad),
        (
            conn("remote {\n auth = eap-mschapv2\n eap_id = \n }"),
            6,
            bad,
        ),
        (
            "connections {\n c {\n local {\n auth = eap-mschapv2\n eap_id = %any\n }\n }\n}".into(),
            5,
            bad,
        ),
        (
            conn("remote {\n auth = eap-mschapv2\n aaa_id = radius\n }"),
            6,
            |k| matches!(k, ConfErrorKind::UnsupportedKey { reason, .. } if reason.contains("RADIUS")),
        ),
        (
            conn("remote {\n auth = eap-mschapv2\n xauth_id = x\n }"),
            6,
            |k| matches!(k, ConfErrorKind::UnsupportedKey { .. }),
        ),
        (
            "secrets {\n xauth-a {\n secret = x\n }\n}".into(),
            2,
            |k| matches!(k, ConfErrorKind::UnsupportedSection { reason, .. } if reason.contains("eap")),
        ),
        (
            "secrets {\n eap-a {\n secret = 0xff00\n }\n}".into(),
            3,
            bad,
        ),
        (
            "secrets {\n eap-a {\n id = \"\"\n secret = x\n }\n}".into(),
            3,
            bad,
        ),
        ("secrets {\n eap-a {\n id = carol\n }\n}".into(), 2, |k| {
            matches!(k, ConfErrorKind::Missing { .. })
        }),
    ];
    for (text, line, check) in cases {
        let e = parse(&text).expect_err(&text);
        assert_eq!(e.line, line, "{text}\n{e}");
        assert!(check(&e.kind), "{text}\n{e}");
    }
    // EAP on both sides converts to an error: the responder must prove itself
    // otherwise.
    let both = parse(&CLIENT.replace("auth = pubkey", "auth = eap-mschapv2")).unwrap();
    let e = both.ike_config("rw").unwrap_err();
    assert_eq!(e.field, "remote.auth");
}

// ---------------------------------------------------------------------------------
// The driver: a gateway with a pool and three road warriors asking for an address.
// ---------------------------------------------------------------------------------

struct Node {
    ip: IpAddr,
    driver: Driver,
    routes: Vec<RouteChange>,
    notices: Vec<Notice>,
}

fn node(ip: &str, cfg: Config, remote: Option<&str>, lookup: SecretLookup) -> Node {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let sad = Arc::new(Sad::new(provider, SadConfig::new()).unwrap());
    let mut base = Config::new("base.invalid".parse().unwrap(), "unused-base-key");
    base.force_udp_encap = true;
    let spec = ConnSpec {
        config: Arc::new(cfg),
        local: ip.parse().unwrap(),
        remote: remote.map(|r| SocketAddr::new(r.parse().unwrap(), 500)),
        remote_addrs: Vec::new(),
        start_action: StartAction::default(),
    };
    let mut driver = Driver::new(Arc::new(base), vec![spec], lookup, sad, provider).unwrap();
    driver.keep_notices(true);
    Node {
        ip: ip.parse().unwrap(),
        driver,
        routes: Vec::new(),
        notices: Vec::new(),
    }
}

fn pump(nodes: &mut [Node], now: Instant) {
    let mut drivers: Vec<(IpAddr, &mut Driver)> =
        nodes.iter_mut().map(|n| (n.ip, &mut n.driver)).collect();
    common::exchange(&mut drivers, now);
    for n in nodes.iter_mut() {
        while let Some(r) = n.driver.poll_route() {
            n.routes.push(r);
        }
        while let Some(x) = n.driver.poll_notice() {
            n.notices.push(x);
        }
    }
}

fn client(n: u8) -> Node {
    let id = format!("rw{n}.example");
    let mut cfg = Config::new(id.parse().unwrap(), "road-warrior-key-0123456789");
    cfg.name = "rw".into();
    cfg.remote_id = Some("gw.example".parse().unwrap());
    cfg.local_ts = vec![TrafficSelector::any_v4()];
    cfg.remote_ts = vec![ts("10.10.0.0/24")];
    cfg.virtual_ips = vec![ip("0.0.0.0")];
    cfg.force_udp_encap = true;
    node(
        &format!("198.18.0.{}", 10 + n),
        cfg,
        Some("198.18.0.1"),
        Arc::new(|_: &Identity, _: &Identity| None),
    )
}

#[test]
fn a_gateway_leases_addresses_to_road_warriors() {
    let mut now = Instant::from_secs(100);
    let conf = parse(
        "pools {\n rw4 {\n addrs = 10.3.0.0/30\n dns = 10.10.0.53\n }\n}\nconnections {\n rw {\n pools = rw4\n children {\n net {\n remote_ts = dynamic\n }\n }\n }\n}",
    )
    .unwrap();
    let pools = build_pools(&conf).unwrap();
    let mut cfg = Config::new("gw.example".parse().unwrap(), "");
    cfg.name = "rw".into();
    cfg.local_ts = vec![ts("10.10.0.0/24")];
    cfg.remote_ts = vec![TrafficSelector::any_v4(), TrafficSelector::any_v6()];
    cfg.force_udp_encap = true;
    apply_pools(&conf.connections[0], &mut cfg, &pools).unwrap();
    assert_eq!(cfg.remote_ts, [TrafficSelector::any_v4()]);
    let keys: HashMap<Identity, &str> = (1..=3u8)
        .map(|n| {
            (
                format!("rw{n}.example").parse().unwrap(),
                "road-warrior-key-0123456789",
            )
        })
        .collect();
    let lookup: SecretLookup =
        Arc::new(move |_: &Identity, p: &Identity| keys.get(p).map(|k| Psk::from(*k)));
    let mut gw = node("198.18.0.1", cfg, None, lookup);
    gw.driver.set_pools(pools.clone());
    let mut nodes = vec![gw, client(1), client(2), client(3)];
    for c in &mut nodes[1..] {
        c.driver.initiate_by_name(now, "rw").unwrap();
    }
    pump(&mut nodes, now);

    // The /30 has two host addresses: two clients got one each, the third none
    // (INTERNAL_ADDRESS_FAILURE: its IKE SA comes up without a Child SA, or fails).
    let mut vips = Vec::new();
    #[allow(clippy::needless_range_loop)] // `n` names the client in `vips`
    for n in 1..=3 {
        let st = nodes[n].driver.status(now);
        let v: Vec<String> = st
            .ike_sas
            .iter()
            .filter(|s| s.state == "ESTABLISHED")
            .flat_map(|s| s.virtual_ips.clone())
            .collect();
        if let Some(a) = v.first() {
            let a: IpAddr = a.parse().unwrap();
            // The client adds the address to its TUN device, then routes the
            // remote selector with it as the source.
            let add = nodes[n]
                .routes
                .iter()
                .position(|r| *r == RouteChange::AddAddress { addr: a })
                .expect("the address is added");
            let route = nodes[n]
                .routes
                .iter()
                .position(
                    |r| matches!(r, RouteChange::Add { local_ts, .. } if local_ts.contains_addr(a)),
                )
                .expect("a route from the address");
            assert!(add < route, "{:?}", nodes[n].routes);
            // Its Child SA's local selector is narrowed to it.
            let child = &st.ike_sas[0].children[0];
            assert_eq!(child.local_ts, [format!("{a}/32")]);
            // The notice carries it, with the DNS server.
            assert!(nodes[n].notices.iter().any(|x| matches!(x,
                Notice::IkeUp { virtual_ips, attributes, .. }
                    if *virtual_ips == [a] && attributes.len() == 1)));
            vips.push((n, a));
        }
    }
    assert_eq!(vips.len(), 2, "two addresses for three clients");
    assert_ne!(vips[0].1, vips[1].1);
    for (_, a) in &vips {
        assert!(pools[0].contains(*a));
    }
    // The gateway: one IKE SA per client with its lease, a rule and a /32 route per
    // client, the pool's two leases online.
    let st = nodes[0].driver.status(now);
    let leased: Vec<&str> = st
        .ike_sas
        .iter()
        .flat_map(|s| s.virtual_ips.iter().map(String::as_str))
        .collect();
    assert_eq!(leased.len(), 2);
    for (_, a) in &vips {
        assert!(nodes[0].routes.iter().any(|r| matches!(r,
            RouteChange::Add { dst, .. } if *dst == vec![(*a, 32)])));
    }
    assert_eq!((st.pools[0].online, st.pools[0].offline), (2, 0));

    // The first client leaves: the gateway removes its route, its lease goes offline,
    // the client removes the address after its routes.
    let (first, a) = vips[0];
    let h = nodes[first].driver.status(now).ike_sas[0].handle;
    nodes[first]
        .driver
        .close(now, ipsec::ike::SaHandle(h))
        .unwrap();
    pump(&mut nodes, now);
    let st = nodes[0].driver.status(now);
    assert_eq!((st.pools[0].online, st.pools[0].offline), (1, 1));
    assert!(nodes[0].routes.iter().any(|r| matches!(r,
        RouteChange::Remove { dst } if *dst == vec![(a, 32)])));
    let rm = nodes[first]
        .routes
        .iter()
        .position(|r| *r == RouteChange::RemoveAddress { addr: a })
        .expect("the address is removed");
    assert!(nodes[first].routes[..rm]
        .iter()
        .any(|r| matches!(r, RouteChange::Remove { .. })));
    // It comes back and gets the same address (kept offline for its identity).
    now = now + ipsec::core::Duration::from_secs(1);
    nodes[first].routes.clear();
    nodes[first].driver.initiate_by_name(now, "rw").unwrap();
    pump(&mut nodes, now);
    assert!(nodes[first]
        .routes
        .contains(&RouteChange::AddAddress { addr: a }));
    let st = nodes[0].driver.status(now);
    assert_eq!((st.pools[0].online, st.pools[0].offline), (2, 0));
}

#[test]
fn pool_sets_and_mem_pools_are_address_pools() {
    // Installed as the Config's pool, both kinds work through the trait object.
    let p = Arc::new(
        MemPool::new(&ipsec_gateway::conf::Pool::new(
            "p",
            "10.0.0.0/24".parse().unwrap(),
        ))
        .unwrap(),
    );
    let dynp: Arc<dyn ipsec::ike::AddressPool> = Arc::new(PoolSet::new(vec![Arc::clone(&p)]));
    let carol = Identity::Fqdn("carol".into());
    assert_eq!(
        dynp.acquire(&carol, &[ip("0.0.0.0")]).addresses,
        [ip("10.0.0.1")]
    );
    dynp.release(&carol, ip("10.0.0.1"));
    assert_eq!(p.counts(), (0, 1));
    let single: Arc<dyn ipsec::ike::AddressPool> = p.clone();
    assert!(single.acquire(&carol, &[ip("::")]).addresses.is_empty());
}
