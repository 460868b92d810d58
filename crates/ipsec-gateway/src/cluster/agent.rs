//! The cluster agent: one thread that talks to the store for this node. It
//! registers the node, publishes the Child SAs and IKE SAs the driver negotiates,
//! follows the other nodes' through a watch, and leases blocks of sequence numbers
//! for every SA this node sends on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ipsec::core::Instant;

use ipsec::ike::ChildSaId;
use ipsec::sad::{SaId, SaSnapshot, Sad};
use ipsec_cluster::{
    BlockSizer, ClusterKey, LeaseId, Store, StoreError, WatchEvent, CEILING_32, CEILING_64,
};
use tracing::{debug, error, info, warn};

use super::records::{BlockRecord, ChildRecord, IkeRecord, IkeStateRecord, NodeRecord};
use super::{AgentMsg, ClusterCmd, ClusterOptions, NoticeInfo, Shared, SnapshotHook};
use crate::dataplane::ToControl;

mod child;
mod ike;
mod seq;

/// The TTL of a node's store lease; it is kept alive every [`KEEPALIVE`].
const NODE_TTL: Duration = Duration::from_secs(3);
const KEEPALIVE: Duration = Duration::from_secs(1);
/// How often the agent looks at every SA's sequence numbers.
const TICK: Duration = Duration::from_millis(5);
/// A node that sent nothing on an SA for this long gives its block up when another
/// node leases a newer one (so its numbers stay above what the peer has seen).
const IDLE: Duration = Duration::from_millis(200);
/// How long the agent waits before it tries a failed store call of the background
/// work again (joining, publishing).
const RETRY: Duration = Duration::from_millis(500);
/// The first wait before leasing again for an SA after a failed lease (it doubles, to
/// at most 1 s), so a store that is down costs no call per SA per tick.
const LEASE_RETRY: Duration = Duration::from_millis(20);
/// Without ESN, the owner rekeys when less than this part of the space is left.
const REKEY_LEFT: u64 = CEILING_32 / 4;

/// One of our Child SAs on its way into the store.
struct Unpublished {
    sad: SaId,
    ike: u64,
    /// The last number of our implicit first block: `seq/<key>` starts above it.
    first_last: u64,
    /// `seq/<key>` exists (made once, never again: a second creation after someone
    /// deleted it would start below numbers already used).
    seq_created: bool,
}

/// An SA this node sends on.
struct Tracked {
    sa: SaId,
    /// Our own Child SA (we own its IKE SA) or a replica.
    child: Option<ChildSaId>,
    ceiling: u64,
    block: Option<(u64, u64)>,
    /// The next block, leased ahead and granted when `block` is nearly used up.
    pending: Option<(u64, u64)>,
    /// After a failed lease, no new attempt before this, and the wait that doubles.
    retry: Option<(Instant, Duration)>,
    out_packets: u64,
    exhausted: u64,
    sampled: Instant,
    rate: f64,
    active: Option<Instant>,
    rekey_asked: bool,
}

impl Tracked {
    fn new(sa: SaId, child: Option<ChildSaId>, esn: bool, now: Instant) -> Self {
        Tracked {
            sa,
            child,
            ceiling: if esn { CEILING_64 } else { CEILING_32 },
            block: None,
            pending: None,
            retry: None,
            out_packets: 0,
            exhausted: 0,
            sampled: now,
            rate: 0.0,
            active: None,
            rekey_asked: false,
        }
    }
}

pub(super) struct Agent {
    store: Arc<dyn Store>,
    node: String,
    key: Arc<ClusterKey>,
    listen: std::net::SocketAddr,
    prefix: String,
    /// Our part of the inbound SPI space.
    spi_index: Option<u32>,
    on_snapshot: Option<SnapshotHook>,
    sad: Arc<Sad>,
    shared: Arc<Shared>,
    cmds: Sender<ClusterCmd>,
    wake: Sender<ToControl>,
    sizer: BlockSizer,
    lease: Option<LeaseId>,
    /// SAs we send on, by record key (`<spi_in>-<spi_out>`).
    sas: HashMap<String, Tracked>,
    /// Replicas asked of the control loop and not answered yet.
    installing: HashSet<String>,
    /// Child records in the store (ours and the others').
    children: HashMap<String, ChildRecord>,
    /// Our IKE SAs: driver handle -> record key.
    our_ikes: HashMap<u64, String>,
    /// Our Child SAs not yet published (the store was down): key -> what to publish.
    unpublished: HashMap<String, Unpublished>,
    /// The ownership records (ours too): key -> record.
    owners: HashMap<String, IkeRecord>,
    /// IKE SA states in the store: key -> record.
    ikestates: HashMap<String, IkeStateRecord>,
    taken_over: u64,
    /// Our IKE SAs fenced while cut off from the store (`Cluster::fence`): key -> the
    /// connection and state to resume them from.
    fenced: HashMap<String, Option<(String, Box<ipsec::ike::IkeSaSnapshot>)>>,
    /// Fenced IKE SAs being resumed (`AdoptIke` sent, not answered yet).
    resuming: HashSet<String>,
    /// The last state of each of our IKE SAs the control loop exported, to fence it
    /// with when it cannot be exported then (an exchange in flight).
    last_states: HashMap<u64, (String, Box<ipsec::ike::IkeSaSnapshot>)>,
    /// Our IKE SAs whose state we know reached the store (written, or taken over from
    /// it): if it is gone when we are back from a fence, another node ended them.
    state_stored: HashSet<String>,
    resumed: u64,
    nodes: HashMap<String, NodeRecord>,
    blocks: HashMap<String, BlockRecord>,
    blocks_leased: u64,
    store_ok: bool,
    /// No retry of `unpublished` and no new `join` before these.
    retry_publish_at: Instant,
    retry_join_at: Instant,
}

fn ike_key(spis: (u64, u64)) -> String {
    let (a, b) = (spis.0.min(spis.1), spis.0.max(spis.1));
    format!("{a:016x}-{b:016x}")
}

fn parse_ike_key(k: &str) -> Option<(u64, u64)> {
    let (a, b) = k.split_once('-')?;
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

fn child_key(spis: (u32, u32)) -> String {
    format!("{:08x}-{:08x}", spis.0, spis.1)
}

impl Agent {
    pub(super) fn new(
        opts: ClusterOptions,
        sad: Arc<Sad>,
        shared: Arc<Shared>,
        cmds: Sender<ClusterCmd>,
        wake: Sender<ToControl>,
    ) -> Self {
        let mut prefix = opts.prefix;
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Agent {
            store: opts.store,
            node: opts.node,
            key: opts.key,
            listen: opts.listen,
            spi_index: opts.spi_space.map(|s| s.index()),
            prefix,
            on_snapshot: opts.on_snapshot,
            sad,
            shared,
            cmds,
            wake,
            sizer: BlockSizer::default(),
            lease: None,
            sas: HashMap::new(),
            installing: HashSet::new(),
            children: HashMap::new(),
            our_ikes: HashMap::new(),
            unpublished: HashMap::new(),
            owners: HashMap::new(),
            ikestates: HashMap::new(),
            taken_over: 0,
            fenced: HashMap::new(),
            resuming: HashSet::new(),
            state_stored: HashSet::new(),
            last_states: HashMap::new(),
            resumed: 0,
            nodes: HashMap::new(),
            blocks: HashMap::new(),
            blocks_leased: 0,
            store_ok: false,
            retry_publish_at: Instant::ZERO,
            retry_join_at: Instant::ZERO,
        }
    }

    fn k(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn store_result<T>(&mut self, r: Result<T, StoreError>, what: &str) -> Option<T> {
        match r {
            Ok(v) => {
                self.store_ok = true;
                Some(v)
            }
            Err(e) => {
                if e.is_unavailable() {
                    self.store_ok = false;
                }
                warn!(error = %e, "cluster store: {what}");
                None
            }
        }
    }

    pub(super) fn run(mut self, inbox: &Receiver<AgentMsg>, stop: &AtomicBool) {
        let mut watch: Option<Receiver<WatchEvent>> = None;
        let mut keepalive_at = crate::dataplane::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = crate::dataplane::now();
            if watch.is_none() && now >= self.retry_join_at {
                watch = self.join();
                if watch.is_none() {
                    self.retry_join_at = now.saturating_add(RETRY);
                }
            }
            if now >= keepalive_at {
                self.keepalive();
                keepalive_at = now.saturating_add(KEEPALIVE);
            }
            match inbox.recv_timeout(TICK) {
                Ok(m) => self.message(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(m) = inbox.try_recv() {
                self.message(m);
                // A long queue (a burst of handshakes, each with store calls) must not
                // hold the lease's renewal back until the control loop fences.
                let now = crate::dataplane::now();
                if now >= keepalive_at {
                    self.keepalive();
                    keepalive_at = now.saturating_add(KEEPALIVE);
                }
            }
            if let Some(w) = &watch {
                let mut events = Vec::new();
                while let Ok(e) = w.try_recv() {
                    events.push(e);
                }
                for e in events {
                    if matches!(e, WatchEvent::Resync) {
                        // History lost: read everything again.
                        watch = None;
                        break;
                    }
                    self.watched(e);
                }
            }
            self.retry_unpublished(crate::dataplane::now());
            self.tick(crate::dataplane::now());
            self.publish_view();
        }
        if let Some(l) = self.lease {
            let _ = self.store.revoke(l);
        }
    }

    /// Registers the node and reads the cluster; returns the watch that follows it.
    fn join(&mut self) -> Option<Receiver<WatchEvent>> {
        if self.lease.is_none() {
            let sent = crate::dataplane::now();
            let r = self.store.grant(NODE_TTL);
            self.lease = Some(self.store_result(r, "lease")?);
            self.renewed(sent);
            self.register();
        }
        let r = self.store.list(&self.prefix);
        let (entries, rev) = self.store_result(r, "list")?;
        let r = self.store.watch(&self.prefix, rev);
        let w = self.store_result(r, "watch")?;
        let present: HashSet<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        // Whatever the list no longer shows is gone.
        let gone: Vec<String> = self
            .children
            .keys()
            .filter(|k| !present.contains(&self.k(&format!("child/{k}"))))
            .cloned()
            .collect();
        for k in gone {
            self.child_gone(&k);
        }
        self.owners.clear();
        self.ikestates.clear();
        self.nodes.clear();
        self.blocks.clear();
        for (key, entry) in entries {
            self.watched(WatchEvent::Put { key, entry });
        }
        self.publish_owners();
        if self.lease_fresh() {
            self.unfence();
        }
        info!(node = %self.node, nodes = self.nodes.len(), child_sas = self.children.len(),
            "joined the cluster");
        Some(w)
    }

    fn register(&mut self) {
        let rec = NodeRecord {
            cluster_addr: self.listen,
            spi_index: self.spi_index,
        };
        let v = serde_json::to_vec(&rec).unwrap_or_default();
        let r = self
            .store
            .put(&self.k(&format!("nodes/{}", self.node)), &v, self.lease);
        let _ = self.store_result(r, "register");
        // Our IKE SAs, on the new lease; one that another node claimed meanwhile (we
        // were cut off for longer than the lease) is theirs now.
        let ours: Vec<(u64, String)> = self.our_ikes.iter().map(|(h, k)| (*h, k.clone())).collect();
        for (h, key) in ours {
            if let Some(Err(Some(e))) = self.claim_ike(&key) {
                let theirs = serde_json::from_slice::<IkeRecord>(&e.value)
                    .map(|r| r.owner != self.node)
                    .unwrap_or(true);
                if theirs {
                    self.lost_ike(h, &key);
                } else {
                    // Ours, on an older lease: write it on this one.
                    self.put_owner(&key);
                }
            }
        }
    }

    /// Whether our lease was renewed recently enough that the control loop does not
    /// fence (`Cluster::fence`).
    pub(super) fn lease_fresh(&self) -> bool {
        self.shared
            .lease_age(crate::dataplane::now())
            .is_some_and(|age| age < super::fence_after_ns())
    }

    /// A call that renewed (or granted) our lease was sent at `sent`.
    fn renewed(&self, sent: Instant) {
        self.shared
            .lease_renewed
            .store(sent.0.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn keepalive(&mut self) {
        let sent = crate::dataplane::now();
        let Some(l) = self.lease else {
            // Lost and not granted again yet: a node without a lease is invisible.
            let r = self.store.grant(NODE_TTL);
            self.lease = self.store_result(r, "lease");
            if self.lease.is_some() {
                self.renewed(sent);
                self.register();
                self.unfence();
            }
            return;
        };
        match self.store.keep_alive(l) {
            Ok(()) => {
                self.store_ok = true;
                self.renewed(sent);
                if !self.fenced.is_empty() {
                    self.unfence();
                }
            }
            Err(StoreError::LeaseExpired) => {
                warn!("cluster lease expired: registering again");
                let r = self.store.grant(NODE_TTL);
                self.lease = self.store_result(r, "lease");
                if self.lease.is_some() {
                    self.renewed(sent);
                    self.register();
                    self.unfence();
                }
            }
            Err(e) => {
                self.store_ok = !e.is_unavailable();
                debug!(error = %e, "cluster keepalive");
            }
        }
    }

    fn message(&mut self, m: AgentMsg) {
        match m {
            AgentMsg::Notice(n) => self.notice(n),
            AgentMsg::Installed { key, sa } => {
                self.installing.remove(&key);
                match sa {
                    Ok(sa) if !self.children.contains_key(&key) => {
                        // Deleted while it was being installed.
                        let _ = self.cmds.send(ClusterCmd::RemoveReplica { sa });
                        let _ = self.wake.send(ToControl::Wake);
                    }
                    Ok(sa) => {
                        let esn = self.sad.sa_info(sa).is_some_and(|i| i.esn);
                        let t = self.baseline(Tracked::new(sa, None, esn, crate::dataplane::now()));
                        self.sas.insert(key, t);
                    }
                    Err(e) => warn!(%key, error = %e, "replica refused"),
                }
            }
            AgentMsg::Expired { sa } => {
                let Some(key) = self
                    .sas
                    .iter()
                    .find(|(_, t)| t.sa == sa && t.child.is_none())
                    .map(|(k, _)| k.clone())
                else {
                    return;
                };
                // Lifetimes count per node: a replica that carried most of the
                // traffic can expire before its owner rekeys. Only an SA whose owner is
                // gone (no ownership record for its IKE SA) is deleted everywhere; `seq/`
                // stays (nothing may ever create it again from 1).
                let owner_alive = self
                    .children
                    .get(&key)
                    .is_some_and(|r| self.owners.contains_key(&r.ike));
                if owner_alive {
                    warn!(%key, "replica expired here before its owner rekeyed it");
                } else {
                    info!(%key, "replica expired and its owner is gone: deleting its record");
                    let r = self.store.delete(&self.k(&format!("child/{key}")));
                    let _ = self.store_result(r, "delete expired Child SA");
                }
                self.child_gone(&key);
            }
            AgentMsg::IkeState {
                sa,
                conn,
                snap,
                token,
            } => {
                self.write_ike_state(sa, conn.clone(), &snap);
                self.last_states.insert(sa, (conn, snap));
                // Written or not, the control loop need not hold its answer back
                // any longer (`Cluster::hold`).
                self.shared
                    .durable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(token);
                let _ = self.wake.send(ToControl::Wake);
            }
            AgentMsg::Adopted { key, result } => self.adopted(key, result),
            AgentMsg::Fenced { sa, state } => self.fenced(sa, state),
        }
    }

    fn notice(&mut self, n: NoticeInfo) {
        match n {
            NoticeInfo::IkeUp { sa, spis } | NoticeInfo::IkeRekeyed { sa, spis } => {
                self.untakeable(sa);
                if let Some(old) = self.our_ikes.remove(&sa) {
                    self.drop_ike(&old);
                }
                let key = ike_key(spis);
                self.put_owner(&key);
                self.our_ikes.insert(sa, key);
            }
            NoticeInfo::IkeClosed { sa } => {
                self.untakeable(sa);
                if let Some(old) = self.our_ikes.remove(&sa) {
                    self.drop_ike(&old);
                }
            }
            NoticeInfo::ChildUp {
                child,
                sad,
                spis,
                ike,
            } => {
                let key = child_key(spis);
                info!(%key, "Child SA up here: publishing it");
                // Our first block: what we may already have sent and a little more,
                // granted (not only limited) so the SAD treats it as a block.
                let Some(first_last) = self.first_block(sad) else {
                    warn!(%key, "Child SA gone before it could be published");
                    return;
                };
                let esn = self.sad.sa_info(sad).is_some_and(|i| i.esn);
                let mut t =
                    self.baseline(Tracked::new(sad, Some(child), esn, crate::dataplane::now()));
                t.block = Some((1, first_last));
                self.sas.insert(key.clone(), t);
                self.unpublished.insert(
                    key.clone(),
                    Unpublished {
                        sad,
                        ike,
                        first_last,
                        seq_created: false,
                    },
                );
                self.publish_child(&key);
            }
            NoticeInfo::PathChanged { ike } => {
                let Some(ike_key) = self.our_ikes.get(&ike).cloned() else {
                    return;
                };
                let keys: Vec<String> = self
                    .children
                    .iter()
                    .filter(|(k, r)| {
                        r.ike == ike_key && self.sas.get(*k).is_some_and(|t| t.child.is_some())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.republish(&key);
                }
            }
            NoticeInfo::ChildDeleted { spis } => {
                let key = child_key(spis);
                self.unpublished.remove(&key);
                if self.sas.remove(&key).is_some() {
                    for k in [format!("child/{key}"), format!("seq/{key}")] {
                        let r = self.store.delete(&self.k(&k));
                        let _ = self.store_result(r, "delete Child SA");
                    }
                    let r = self
                        .store
                        .delete(&self.k(&format!("lease/{}/{key}", self.node)));
                    let _ = self.store_result(r, "delete block");
                }
            }
        }
    }

    /// A change in the store.
    fn watched(&mut self, e: WatchEvent) {
        let (key, entry) = match e {
            WatchEvent::Put { key, entry } => (key, Some(entry)),
            WatchEvent::Delete { key, .. } => (key, None),
            WatchEvent::Resync => return,
        };
        let Some(rest) = key.strip_prefix(&self.prefix).map(str::to_string) else {
            return;
        };
        let (kind, name) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
        match (kind, entry) {
            ("nodes", Some(e)) => {
                if let Ok(r) = serde_json::from_slice::<NodeRecord>(&e.value) {
                    if name != self.node && r.spi_index.is_some() && r.spi_index == self.spi_index {
                        error!(node = %name, index = ?r.spi_index,
                            "another node has our SPI index: both may choose the same inbound SPI");
                    }
                    self.nodes.insert(name.to_string(), r);
                }
            }
            ("nodes", None) => {
                self.nodes.remove(name);
            }
            ("ike", Some(e)) => {
                if let Ok(r) = serde_json::from_slice::<IkeRecord>(&e.value) {
                    if r.owner != self.node {
                        let mine = self
                            .our_ikes
                            .iter()
                            .find(|(_, k)| k.as_str() == name)
                            .map(|(h, _)| *h);
                        if let Some(h) = mine {
                            self.lost_ike(h, name);
                        }
                    }
                    self.owners.insert(name.to_string(), r);
                    self.publish_owners();
                }
            }
            ("ike", None) => {
                self.owners.remove(name);
                self.publish_owners();
                self.try_takeover(name);
            }
            ("ikestate", Some(e)) => {
                if let Ok(r) = serde_json::from_slice::<IkeStateRecord>(&e.value) {
                    self.ikestates.insert(name.to_string(), r);
                }
            }
            ("ikestate", None) => {
                self.ikestates.remove(name);
            }
            ("child", Some(e)) => {
                let Ok(rec) = serde_json::from_slice::<ChildRecord>(&e.value) else {
                    warn!(%name, "malformed Child SA record");
                    return;
                };
                // Ours when we track it as our own Child SA (a node restarted under the
                // same name imports what it owned before).
                let ours = self.sas.get(name).is_some_and(|t| t.child.is_some());
                self.children.insert(name.to_string(), rec.clone());
                if ours || self.installing.contains(name) {
                    return;
                }
                if self.sas.contains_key(name) {
                    self.follow_path(name, &rec);
                    return;
                }
                let Some(snap) =
                    self.open_json::<SaSnapshot>(&format!("child/{name}"), &rec.sealed)
                else {
                    return;
                };
                self.snapshot_hook(&snap);
                self.installing.insert(name.to_string());
                let _ = self.cmds.send(ClusterCmd::InstallReplica {
                    key: name.to_string(),
                    snap: Box::new(snap),
                });
                let _ = self.wake.send(ToControl::Wake);
            }
            ("child", None) => self.child_gone(name),
            ("seq", Some(e)) => self.seq_moved(name, &e.value),
            ("lease", Some(e)) => {
                if let Ok(r) = serde_json::from_slice::<BlockRecord>(&e.value) {
                    self.blocks.insert(name.to_string(), r);
                }
            }
            ("lease", None) => {
                self.blocks.remove(name);
            }
            _ => {}
        }
    }

    fn publish_view(&self) {
        let mut v = self
            .shared
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        v.store_ok = self.store_ok;
        v.nodes = self
            .nodes
            .iter()
            .map(|(n, r)| (n.clone(), r.cluster_addr))
            .collect();
        v.nodes.sort();
        v.owners = self
            .owners
            .iter()
            .map(|(k, r)| (k.clone(), r.owner.clone()))
            .collect();
        v.owners.sort();
        v.leases = self
            .blocks
            .iter()
            .filter_map(|(k, r)| {
                let (node, sa) = k.split_once('/')?;
                Some((node.to_string(), sa.to_string(), r.first, r.last))
            })
            .collect();
        v.leases.sort();
        v.child_sas = self.children.len();
        v.replicas = self.sas.values().filter(|t| t.child.is_none()).count();
        v.blocks_leased = self.blocks_leased;
        v.taken_over = self.taken_over;
        v.fenced = self.fenced.len();
        v.resumed = self.resumed;
    }
}
