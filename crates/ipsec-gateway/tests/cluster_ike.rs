//! The IKE side of a cluster node with a real driver and peer (docs/scale-out.md,
//! "IKE"):
//! - an IKE SA owner cut off from the cluster's store fences its IKE SAs before its
//!   lease can expire: it stops running them, so no other node that takes one over
//!   runs it beside it; when the store answers again and the IKE SA is still its own,
//!   it resumes it from its state and the peer goes on;
//! - write-ahead: an answer to the peer leaves only once the IKE SA's state as of that
//!   answer is in the store.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;

use common::*;
use ipsec_cluster::{
    CasOutcome, ClusterKey, Entry, Expect, LeaseId, MemStore, Store, StoreError, WatchEvent,
};
use ipsec_gateway::cluster::{Cluster, ClusterOptions, FENCE_AFTER, HOLD_MAX};
use ipsec_gateway::dataplane::{now, ToControl};
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

/// Node `n1` of a cluster in `store` (keys under `prefix`), serving `gw`'s SAD; the
/// receiver of what it tells the control loop.
fn cluster_of(gw: &Node, store: Arc<dyn Store>, prefix: &str) -> (Cluster, Receiver<ToControl>) {
    let (tx, rx) = mpsc::channel();
    let mut opts = ClusterOptions::new(
        store,
        "n1",
        Arc::new(ClusterKey::from_bytes([7; 32])),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    );
    opts.prefix = prefix.into();
    (Cluster::start(opts, Arc::clone(&gw.sad), tx).unwrap(), rx)
}

fn ikestate_written(store: &MemStore) -> bool {
    store
        .list("/fence/ikestate/")
        .is_ok_and(|(entries, _)| !entries.is_empty())
}

#[test]
fn a_cut_off_owner_fences_its_ike_sa_and_resumes_it_when_the_store_is_back() {
    let store = MemStore::new();
    let mut nodes = pair();
    let (c, _rx) = cluster_of(&nodes[0], Arc::new(store.clone()), "/fence/");
    // The peer starts; the IKE SA is ours and its state is in the store.
    nodes[1].driver.start(now());
    assert!(rounds_until(&mut nodes, &c, |n| {
        n[0].driver.established_ike_sas().len() == 1 && ikestate_written(&store)
    }));
    let ike = nodes[0].driver.established_ike_sas()[0];
    let ids = nodes[0].driver.ike_message_ids(ike).unwrap();
    assert_eq!(c.view().owners.len(), 1);

    // The store goes away. Before the lease can expire there (3 s after its last
    // renewal) the node stops running the IKE SA.
    store.set_available(false);
    let cut = now();
    assert!(rounds_until(&mut nodes, &c, |n| n[0]
        .driver
        .established_ike_sas()
        .is_empty()));
    let fenced_after = now().saturating_duration_since(cut);
    assert!(
        fenced_after >= ipsec::core::Duration::from_millis(1000)
            && fenced_after < ipsec::core::Duration::from_millis(3000),
        "fenced {fenced_after:?} after the store went (FENCE_AFTER {FENCE_AFTER:?})"
    );
    assert!(rounds_until(&mut nodes, &c, |_| c.view().fenced == 1));
    // Its Child SA stays installed (a replica now, sending on the blocks it leased):
    // only IKE stops.
    assert_eq!(nodes[0].sad.len(), 1);

    // The store is back before anyone took the IKE SA over: the node resumes it from
    // its own state, with the same Message IDs.
    store.set_available(true);
    assert!(rounds_until(&mut nodes, &c, |n| {
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
    assert!(rounds_until(&mut nodes, &c, |n| {
        let h = n[1].driver.established_ike_sas()[0];
        n[1].driver.ike_message_ids(h) != before && n[0].driver.ike_message_ids(back) != Some(ids)
    }));
    c.stop();
}

/// A `MemStore` whose writes of IKE SA state wait while the gate is closed, and that
/// the node cannot reach at all while `cut` (a partition between it and the store;
/// the test itself, as another node, still reaches `inner`).
#[derive(Clone)]
struct GatedStore {
    inner: MemStore,
    gate: Arc<(Mutex<bool>, Condvar)>,
    /// IKE SA state writes done.
    written: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
}

impl GatedStore {
    fn new() -> Self {
        GatedStore {
            inner: MemStore::new(),
            gate: Arc::new((Mutex::new(true), Condvar::new())),
            written: Arc::new(AtomicUsize::new(0)),
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    fn up(&self) -> Result<(), StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("cut off (test)".into()));
        }
        Ok(())
    }

    fn set_open(&self, open: bool) {
        *self.gate.0.lock().unwrap() = open;
        self.gate.1.notify_all();
    }
}

impl Store for GatedStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.up()?;
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<(Vec<(String, Entry)>, u64), StoreError> {
        self.up()?;
        self.inner.list(prefix)
    }
    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<u64, StoreError> {
        self.up()?;
        if key.contains("/ikestate/") {
            let (m, cv) = &*self.gate;
            let open = cv
                .wait_timeout_while(m.lock().unwrap(), StdDuration::from_secs(5), |open| !*open)
                .unwrap();
            assert!(*open.0, "the gate stayed closed");
            let r = self.inner.put(key, value, lease);
            self.written.fetch_add(1, Ordering::SeqCst);
            return r;
        }
        self.inner.put(key, value, lease)
    }
    fn cas(
        &self,
        key: &str,
        expect: Expect,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError> {
        self.up()?;
        self.inner.cas(key, expect, value, lease)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.up()?;
        self.inner.delete(key)
    }
    fn watch(&self, prefix: &str, after: u64) -> Result<Receiver<WatchEvent>, StoreError> {
        self.up()?;
        self.inner.watch(prefix, after)
    }
    fn grant(&self, ttl: std::time::Duration) -> Result<LeaseId, StoreError> {
        self.up()?;
        self.inner.grant(ttl)
    }
    fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.up()?;
        self.inner.keep_alive(lease)
    }
    fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.up()?;
        self.inner.revoke(lease)
    }
}

/// One round as the gateway's control loop runs it: `a`'s answers go through
/// `Cluster::hold` and `Cluster::release`, the peer's straight to `a`.
fn round(nodes: &mut [Node], c: &Cluster) {
    let t = now();
    for n in nodes.iter_mut() {
        n.driver.handle_timeout(t);
    }
    c.work(&mut nodes[0].driver, t);
    let mut to_b = Vec::new();
    while let Some(x) = nodes[0].driver.poll_transmit() {
        to_b.extend(c.hold(x, t));
    }
    to_b.extend(c.release(t));
    for x in to_b {
        nodes[1]
            .driver
            .handle_datagram(t, x.remote, x.local, &x.payload);
    }
    while let Some(x) = nodes[1].driver.poll_transmit() {
        nodes[0]
            .driver
            .handle_datagram(t, x.remote, x.local, &x.payload);
    }
}

/// Runs rounds until `f` holds (at most about 10 s of real time: the agent's leases
/// and the fence run on the real clock).
fn rounds_until(nodes: &mut [Node], c: &Cluster, mut f: impl FnMut(&[Node]) -> bool) -> bool {
    for _ in 0..2000 {
        round(nodes, c);
        if f(nodes) {
            return true;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
    false
}

#[test]
fn an_answer_leaves_only_once_the_ike_sa_state_is_in_the_store() {
    let store = GatedStore::new();
    let mut nodes = pair();
    let (c, _rx) = cluster_of(&nodes[0], Arc::new(store.clone()), "/wal/");
    nodes[1].driver.start(now());
    assert!(rounds_until(&mut nodes, &c, |n| {
        n[0].driver.established_ike_sas().len() == 1 && n[1].driver.established_ike_sas().len() == 1
    }));
    assert!(rounds_until(&mut nodes, &c, |_| store
        .written
        .load(Ordering::SeqCst)
        >= 1));
    let (a, b) = (
        nodes[0].driver.established_ike_sas()[0],
        nodes[1].driver.established_ike_sas()[0],
    );
    let child = std::iter::from_fn(|| nodes[1].driver.poll_notice())
        .find_map(|n| match n {
            Notice::ChildUp { child, .. } => Some(child),
            _ => None,
        })
        .unwrap();

    // The store's writes of IKE SA state stall. The peer deletes its Child SA: the
    // gateway processes the request, but its answer waits for the state write. (Not a
    // rekey: its state is written after the old Child SA's Delete, as
    // `IkeEndpoint::export_ike_sa` refuses while a Child SA awaits one.)
    store.set_open(false);
    let a_ids = nodes[0].driver.ike_message_ids(a).unwrap();
    let written = store.written.load(Ordering::SeqCst);
    nodes[1].driver.delete_child(now(), child).unwrap();
    assert!(rounds_until(&mut nodes, &c, |n| n[0]
        .driver
        .ike_message_ids(a)
        != Some(a_ids)));
    // Well within HOLD_MAX, after which an answer leaves unwritten.
    let held_from = now();
    while now().saturating_duration_since(held_from).as_nanos() < HOLD_MAX.as_nanos() / 4 {
        round(&mut nodes, &c);
        std::thread::sleep(StdDuration::from_millis(2));
    }
    // The peer's request is still outstanding (its IKE SA cannot be exported while
    // it waits for an answer).
    assert!(
        nodes[1].driver.export_ike(b).is_none(),
        "the answer left before the IKE SA's state was written"
    );
    // The write goes through: the answer follows, and the state it reflects was in
    // the store before it.
    store.set_open(true);
    assert!(rounds_until(&mut nodes, &c, |n| n[1]
        .driver
        .export_ike(b)
        .is_some()));
    assert!(store.written.load(Ordering::SeqCst) > written);
    let (held, unwritten, longest_us) = c.view().answers_held;
    assert!(
        held >= 2,
        "IKE_AUTH's answer and the Delete's were held: {held}"
    );
    assert_eq!(unwritten, 0);
    assert!(longest_us >= 100_000, "{longest_us} µs");
    c.stop();
}

/// Cut off for longer than its lease: `n1` fences its IKE SA, and when it reaches the
/// store again finds that "another node" (this test, writing to the store directly)
/// either ended the IKE SA after taking it over (its state is gone) or owns it now.
/// Either way `n1` must not run it again.
#[test]
fn a_fenced_ike_sa_that_another_node_ended_or_owns_is_not_resumed() {
    for ended in [true, false] {
        let store = GatedStore::new();
        let mut nodes = pair();
        let (c, _rx) = cluster_of(&nodes[0], Arc::new(store.clone()), "/part/");
        nodes[1].driver.start(now());
        let owners = |s: &GatedStore| s.inner.list("/part/ike/").unwrap().0;
        assert!(rounds_until(&mut nodes, &c, |n| {
            n[0].driver.established_ike_sas().len() == 1
                && store.written.load(Ordering::SeqCst) >= 1
        }));
        let (key, _) = owners(&store).pop().unwrap();
        let key = key.trim_start_matches("/part/ike/").to_string();

        store.cut.store(true, Ordering::SeqCst);
        assert!(rounds_until(&mut nodes, &c, |_| c.view().fenced == 1));
        // Its lease expires at the store (3 s after its last renewal).
        assert!(rounds_until(&mut nodes, &c, |_| owners(&store).is_empty()));
        if ended {
            store
                .inner
                .delete(&format!("/part/ikestate/{key}"))
                .unwrap();
        } else {
            let rec = ipsec_gateway::cluster::records::IkeRecord {
                owner: "n2".into(),
                cluster_addr: "127.0.0.1:9".parse().unwrap(),
            };
            store
                .inner
                .put(
                    &format!("/part/ike/{key}"),
                    &serde_json::to_vec(&rec).unwrap(),
                    None,
                )
                .unwrap();
        }
        store.cut.store(false, Ordering::SeqCst);
        assert!(rounds_until(&mut nodes, &c, |_| c.view().fenced == 0));
        // A while longer: nothing comes back.
        let back = now();
        while now().saturating_duration_since(back).as_nanos() < 1_500_000_000 {
            round(&mut nodes, &c);
            std::thread::sleep(StdDuration::from_millis(5));
        }
        assert_eq!(c.view().resumed, 0, "ended: {ended}");
        assert!(nodes[0].driver.established_ike_sas().is_empty());
        let now_owners: Vec<String> = owners(&store)
            .into_iter()
            .filter_map(|(_, e)| {
                serde_json::from_slice::<ipsec_gateway::cluster::records::IkeRecord>(&e.value)
                    .ok()
                    .map(|r| r.owner)
            })
            .collect();
        if ended {
            assert!(now_owners.is_empty(), "{now_owners:?}");
        } else {
            assert_eq!(now_owners, ["n2"]);
        }
        c.stop();
    }
}
