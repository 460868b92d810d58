//! An IKE SA owner cut off from the cluster's store fences its IKE SAs before its
//! lease can expire (docs/scale-out.md, "IKE"): it stops running them, so no other
//! node that takes one over runs it beside it; when the store answers again and the
//! IKE SA is still its own, it resumes it from its state and the peer goes on.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::*;
use ipsec_cluster::{ClusterKey, MemStore, Store};
use ipsec_gateway::cluster::{Cluster, ClusterOptions, FENCE_AFTER};
use ipsec_gateway::dataplane::now;
use ipsec_gateway::driver::{Notice, StartAction};

const START: StartAction = StartAction {
    trap: false,
    start: true,
};

/// Gateway `a` (the cluster node, responder) and its peer `b` (initiator).
fn pair() -> Vec<Node> {
    let a = conn(
        "net",
        "a.example",
        Some("b.example"),
        "",
        "10.1.0.0/16",
        "10.2.0.0/16",
    );
    let b = conn(
        "net",
        "b.example",
        Some("a.example"),
        "fence-key-0123456789",
        "10.2.0.0/16",
        "10.1.0.0/16",
    );
    let mut nodes = vec![
        node(
            "192.0.2.1",
            vec![spec(a, "192.0.2.1", None, StartAction::default())],
            secrets(&[("b.example", "fence-key-0123456789")]),
        ),
        node(
            "192.0.2.2",
            vec![spec(b, "192.0.2.2", Some("192.0.2.1"), START)],
            secrets(&[]),
        ),
    ];
    for n in &mut nodes {
        n.driver.keep_notices(true);
    }
    nodes
}

/// Runs the nodes and `a`'s cluster work until `f` holds (at most 10 s of real time:
/// the agent's leases and the fence run on the real clock).
fn run_until(
    nodes: &mut [Node],
    c: &Cluster,
    mut f: impl FnMut(&[Node], &Cluster) -> bool,
) -> bool {
    for _ in 0..2000 {
        let t = now();
        for n in nodes.iter_mut() {
            n.driver.handle_timeout(t);
        }
        pump(nodes, t);
        c.work(&mut nodes[0].driver, t);
        pump(nodes, t);
        if f(nodes, c) {
            return true;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
    false
}

fn ikestate_written(store: &MemStore) -> bool {
    store
        .list("/fence/ikestate/")
        .is_ok_and(|(entries, _)| !entries.is_empty())
}

#[test]
fn a_cut_off_owner_fences_its_ike_sa_and_resumes_it_when_the_store_is_back() {
    let store = MemStore::new();
    let (tx, _rx) = mpsc::channel();
    let mut nodes = pair();
    let mut opts = ClusterOptions::new(
        Arc::new(store.clone()) as Arc<dyn Store>,
        "n1",
        Arc::new(ClusterKey::from_bytes([7; 32])),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    );
    opts.prefix = "/fence/".into();
    let c = Cluster::start(opts, Arc::clone(&nodes[0].sad), tx).unwrap();
    // The peer starts; the IKE SA is ours and its state is in the store.
    nodes[1].driver.start(now());
    assert!(run_until(&mut nodes, &c, |n, _| {
        n[0].driver.established_ike_sas().len() == 1 && ikestate_written(&store)
    }));
    let ike = nodes[0].driver.established_ike_sas()[0];
    let ids = nodes[0].driver.ike_message_ids(ike).unwrap();
    assert_eq!(c.view().owners.len(), 1);

    // The store goes away. Before the lease can expire there (3 s after its last
    // renewal) the node stops running the IKE SA.
    store.set_available(false);
    let cut = now();
    assert!(run_until(&mut nodes, &c, |n, _| n[0]
        .driver
        .established_ike_sas()
        .is_empty()));
    let fenced_after = now().saturating_duration_since(cut);
    assert!(
        fenced_after >= ipsec::core::Duration::from_millis(1000)
            && fenced_after < ipsec::core::Duration::from_millis(3000),
        "fenced {fenced_after:?} after the store went (FENCE_AFTER {FENCE_AFTER:?})"
    );
    assert!(run_until(&mut nodes, &c, |_, c| c.view().fenced == 1));
    // Its Child SA still carries ESP (on the blocks it leased): only IKE stops.
    assert_eq!(nodes[0].sad.len(), 1);

    // The store is back before anyone took the IKE SA over: the node resumes it from
    // its own state, with the same Message IDs.
    store.set_available(true);
    assert!(run_until(&mut nodes, &c, |n, c| {
        c.view().resumed == 1 && n[0].driver.established_ike_sas().len() == 1
    }));
    assert_eq!(c.view().fenced, 0);
    assert_eq!(c.view().taken_over, 0);
    let back = nodes[0].driver.established_ike_sas()[0];
    assert_eq!(nodes[0].driver.ike_message_ids(back), Some(ids));

    // And the peer goes on with it: a rekey of the Child SA by the peer is answered.
    let before = nodes[1]
        .driver
        .ike_message_ids(nodes[1].driver.established_ike_sas()[0]);
    let child = std::iter::from_fn(|| nodes[1].driver.poll_notice())
        .find_map(|n| match n {
            Notice::ChildUp { child, .. } => Some(child),
            _ => None,
        })
        .unwrap();
    nodes[1].driver.rekey_child(now(), child).unwrap();
    assert!(run_until(&mut nodes, &c, |n, _| {
        let h = n[1].driver.established_ike_sas()[0];
        n[1].driver.ike_message_ids(h) != before && n[0].driver.ike_message_ids(back) != Some(ids)
    }));
    c.stop();
}
