//! What the driver tests share: in-memory [`Driver`] nodes and the pump that moves
//! their datagrams (tests/driver.rs, tests/cluster_ike.rs, tests/certs.rs,
//! tests/remote_access.rs).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipsec::core::{Duration, Instant, TrafficSelector};
use ipsec::ike::{Config, Identity, Psk};
use ipsec::sad::{Sad, SadConfig};
use ipsec_gateway::driver::{ConnSpec, Driver, RouteChange, SecretLookup, StartAction};

pub fn ts(cidr: &str) -> TrafficSelector {
    let (a, l) = cidr.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

pub fn secrets(pairs: &[(&str, &str)]) -> SecretLookup {
    let map: HashMap<Identity, String> = pairs
        .iter()
        .map(|(id, k)| (id.parse().unwrap(), (*k).to_string()))
        .collect();
    Arc::new(move |_local: &Identity, peer: &Identity| map.get(peer).map(|k| Psk::from(k.as_str())))
}

pub struct Node {
    pub ip: IpAddr,
    pub driver: Driver,
    pub sad: Arc<Sad>,
    pub routes: Vec<RouteChange>,
}

pub fn conn(
    name: &str,
    local_id: &str,
    remote_id: Option<&str>,
    psk: &str,
    local_ts: &str,
    remote_ts: &str,
) -> Config {
    let mut c = Config::new(local_id.parse().unwrap(), psk);
    c.name = name.into();
    c.remote_id = remote_id.map(|r| r.parse().unwrap());
    c.local_ts = vec![ts(local_ts)];
    c.remote_ts = vec![ts(remote_ts)];
    c.force_udp_encap = true;
    c.dpd = Some(Duration::from_secs(10));
    c.retransmit.max_tries = 3;
    c
}

pub fn node(ip: &str, specs: Vec<ConnSpec>, lookup: SecretLookup) -> Node {
    node_with(ip, specs, lookup, true)
}

pub fn node_with(ip: &str, specs: Vec<ConnSpec>, lookup: SecretLookup, udp: bool) -> Node {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let sad = Arc::new(Sad::new(provider, SadConfig::new()).unwrap());
    let mut base = Config::new("base.invalid".parse().unwrap(), "unused-base-key");
    base.force_udp_encap = udp;
    let driver = Driver::new(Arc::new(base), specs, lookup, Arc::clone(&sad), provider).unwrap();
    Node {
        ip: ip.parse().unwrap(),
        driver,
        sad,
        routes: Vec::new(),
    }
}

/// Moves every datagram between the drivers (by destination address) until none is
/// left; NAT keepalives (one 0xff byte) are dropped.
pub fn exchange(drivers: &mut [(IpAddr, &mut Driver)], now: Instant) {
    for _ in 0..1000 {
        let mut moved = false;
        for i in 0..drivers.len() {
            while let Some(t) = drivers[i].1.poll_transmit() {
                moved = true;
                if t.payload == [0xff] {
                    continue;
                }
                if let Some(j) = drivers.iter().position(|(ip, _)| *ip == t.remote.ip()) {
                    drivers[j]
                        .1
                        .handle_datagram(now, t.remote, t.local, &t.payload);
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// [`exchange`] between the nodes, then collects the route changes.
pub fn pump(nodes: &mut [Node], now: Instant) {
    let mut drivers: Vec<(IpAddr, &mut Driver)> =
        nodes.iter_mut().map(|n| (n.ip, &mut n.driver)).collect();
    exchange(&mut drivers, now);
    for n in nodes.iter_mut() {
        while let Some(r) = n.driver.poll_route() {
            n.routes.push(r);
        }
    }
}

pub fn spec(cfg: Config, local: &str, remote: Option<&str>, start: StartAction) -> ConnSpec {
    ConnSpec {
        config: Arc::new(cfg),
        local: local.parse().unwrap(),
        remote: remote.map(|r| SocketAddr::new(r.parse().unwrap(), 500)),
        remote_addrs: Vec::new(),
        start_action: start,
    }
}
