//! A gateway as one node of an anycast cluster (docs/scale-out.md): every node
//! serves the same SAs behind one address, sharing them through a store
//! ([`ipsec_cluster::Store`], etcd in production).
//!
//! - **Child SAs.** The node whose IKE SA negotiates a Child SA exports it, seals the
//!   snapshot under the cluster key and writes it to the store; every other node
//!   imports it from its watch ([`Driver::install_replica`](crate::driver::Driver::install_replica))
//!   and removes it when the record goes.
//! - **Sequence numbers.** A node sends on an SA only with numbers from blocks it
//!   leased from the SA's counter in the store with a compare-and-swap before
//!   using them ([`ipsec_cluster::lease_existing`]); with AEAD transforms the IV is the
//!   sequence number, so no (key, nonce) pair is used twice across the cluster.
//!   Block sizes follow the SA's packet rate; a node that runs out and cannot renew
//!   stops sending on the SA.
//! - **IKE.** The node where an IKE SA was negotiated owns it (`ike/` records on its
//!   store lease); other nodes forward that SA's IKE messages to it
//!   ([`forward`]).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use ipsec::ike::{ChildSaId, IkeSaSnapshot, SaHandle};
use ipsec::sad::{SaId, SaSnapshot, Sad};
use ipsec_cluster::{ClusterKey, Store};
use tracing::{debug, warn};

use crate::dataplane::{IkeDatagram, ToControl};
use crate::driver::{AdoptedChild, Driver, Notice};

mod agent;
pub mod forward;
pub mod records;

use forward::{ike_spis, unix_ms, Forwarded, ReplayFilter, FORWARD_NAME};
pub use records::ClusterView;

/// Called with the snapshot of every SA this node installs or imports (keys
/// included): `ipsec gateway --keys` writes Wireshark key tables with it.
pub type SnapshotHook = Arc<dyn Fn(&SaSnapshot) + Send + Sync>;

/// How a gateway joins a cluster ([`ClusterOptions::new`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// The shared store.
    pub store: Arc<dyn Store>,
    /// This node's name (unique in the cluster).
    pub node: String,
    /// The key records with SA keys are sealed under, and forwarded IKE messages.
    pub key: Arc<ClusterKey>,
    /// Where this node takes IKE messages forwarded by the others (UDP).
    pub listen: SocketAddr,
    /// The prefix of every key the cluster writes (default `/ipsec/`).
    pub prefix: String,
    /// See [`SnapshotHook`].
    pub on_snapshot: Option<SnapshotHook>,
    /// This node's part of the inbound SPI space (unique in the cluster), so that no
    /// two nodes choose the same inbound SPI for Child SAs they negotiate at the same
    /// time; `None` chooses from the whole space (two nodes may then collide, and the
    /// later SA cannot be installed beside the other's replica).
    pub spi_space: Option<ipsec::ike::SpiSpace>,
}

impl ClusterOptions {
    /// Node `node` of the cluster in `store`, sealing with `key`, taking forwarded
    /// IKE messages at `listen`; keys under `/ipsec/`, no snapshot hook.
    pub fn new(
        store: Arc<dyn Store>,
        node: impl Into<String>,
        key: Arc<ClusterKey>,
        listen: SocketAddr,
    ) -> Self {
        ClusterOptions {
            store,
            node: node.into(),
            key,
            listen,
            prefix: "/ipsec/".into(),
            on_snapshot: None,
            spi_space: None,
        }
    }
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("node", &self.node)
            .field("listen", &self.listen)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the cluster asks the control loop to do with the driver.
#[derive(Debug)]
pub enum ClusterCmd {
    /// Import another node's Child SA ([`crate::driver::Driver::install_replica`]), then
    /// answer with [`Cluster::replica_installed`].
    InstallReplica {
        /// Its record's key.
        key: String,
        /// The snapshot.
        snap: Box<SaSnapshot>,
    },
    /// Remove a replica.
    RemoveReplica {
        /// Its SAD id.
        sa: SaId,
    },
    /// Rekey one of our Child SAs: its sequence space runs out (no ESN).
    RekeyChild {
        /// The Child SA.
        child: ChildSaId,
    },
    /// Give up IKE SA `sa`: another node owns it now
    /// ([`crate::driver::Driver::abandon_ike`]).
    AbandonIke {
        /// The IKE SA.
        sa: SaHandle,
    },
    /// Take over an IKE SA whose owner died ([`crate::driver::Driver::adopt_ike`]),
    /// then answer with [`Cluster::adopted`].
    AdoptIke {
        /// Its record's key.
        key: String,
        /// Its connection.
        conn: String,
        /// Its state after its last exchange.
        snap: Box<IkeSaSnapshot>,
    },
}

/// What the control loop tells the agent.
enum AgentMsg {
    Notice(NoticeInfo),
    Installed {
        key: String,
        sa: Result<SaId, String>,
    },
    Expired {
        sa: SaId,
    },
    IkeState {
        sa: u64,
        conn: String,
        snap: Box<IkeSaSnapshot>,
        /// Marked in `Shared::durable` once the write is done (or failed).
        token: u64,
    },
    Adopted {
        key: String,
        result: Result<(SaHandle, Vec<AdoptedChild>), String>,
    },
    /// The control loop fenced IKE SA `sa` ([`Cluster::fence`]), with its state when
    /// it could be exported.
    Fenced {
        sa: u64,
        state: Option<(String, Box<IkeSaSnapshot>)>,
    },
}

/// The parts of a driver notice the cluster acts on.
#[derive(Debug)]
enum NoticeInfo {
    IkeUp {
        sa: u64,
        spis: (u64, u64),
    },
    IkeRekeyed {
        sa: u64,
        spis: (u64, u64),
    },
    IkeClosed {
        sa: u64,
    },
    ChildUp {
        child: ChildSaId,
        sad: SaId,
        spis: (u32, u32),
        ike: u64,
    },
    ChildDeleted {
        spis: (u32, u32),
    },
    /// The peer's address or port changed (NAT rebinding, MOBIKE): the Child SAs of
    /// IKE SA `ike` are published again with their new path.
    PathChanged {
        ike: u64,
    },
}

/// Shared between the control loop, the agent and the forwarding thread.
struct Shared {
    /// IKE SAs that other nodes own: (spi_i, spi_r) -> their cluster address.
    owners: RwLock<HashMap<(u64, u64), SocketAddr>>,
    view: Mutex<ClusterView>,
    forwarded_out: AtomicU64,
    forwarded_in: AtomicU64,
    /// When the last store call that renewed this node's lease was sent
    /// (`dataplane::now()` nanoseconds; 0 before the first). The lease cannot have
    /// expired at the store before this plus the lease's time to live.
    lease_renewed: AtomicU64,
    /// Our IKE SAs whose state is in the store (so another node takes them over when
    /// our lease expires): the ones [`Cluster::fence`] fences.
    takeable: Mutex<HashSet<u64>>,
    /// State writes (`AgentMsg::IkeState` tokens) the agent finished, written or not.
    durable: Mutex<HashSet<u64>>,
}

impl Shared {
    /// Nanoseconds since the last renewal of our lease was sent, at `now`; `None`
    /// before the first. [`Cluster::fence`] fences past [`FENCE_AFTER`].
    fn lease_age(&self, now: ipsec::core::Instant) -> Option<u64> {
        let renewed = self.lease_renewed.load(Ordering::Relaxed);
        (renewed != 0).then(|| now.0.saturating_sub(renewed))
    }

    /// Whether [`Cluster::fence`] fences IKE SA `h` when we are cut off: yes once its
    /// state may be in the store (another node can take it over).
    fn set_takeable(&self, h: u64, takeable: bool) {
        let mut t = self.takeable.lock().unwrap_or_else(PoisonError::into_inner);
        if takeable {
            t.insert(h);
        } else {
            t.remove(&h);
        }
    }
}

/// [`FENCE_AFTER`] in nanoseconds.
fn fence_after_ns() -> u64 {
    u64::try_from(FENCE_AFTER.as_nanos()).unwrap_or(u64::MAX)
}

/// How long [`Cluster::hold`] keeps a response back waiting for its IKE SA's state to
/// be written: longer than a healthy store takes (a few milliseconds), far shorter
/// than a peer's first retransmission (charon: 4 s). Past it the response goes out
/// unwritten, as it would without write-ahead.
pub const HOLD_MAX: StdDuration = StdDuration::from_millis(500);

/// Responses held back until their IKE SA's state is in the store.
#[derive(Default)]
struct WriteAhead {
    next_token: u64,
    /// IKE SPIs -> the token of the last state write asked for that IKE SA.
    pending: HashMap<(u64, u64), u64>,
    /// Held responses: the datagram, its write's token, when it was held.
    held: Vec<(ipsec::ike::Transmit, u64, ipsec::core::Instant)>,
    /// Answers held, those released unwritten, the longest hold (ns).
    counts: (u64, u64, u64),
}

/// How long after the last renewal of its lease (sent) a node fences its IKE SAs: a
/// second before the lease can expire at the store (`agent::NODE_TTL`, 3 s), so the
/// node stops running an IKE SA before another node can claim it.
pub const FENCE_AFTER: StdDuration = StdDuration::from_secs(2);

/// A running cluster membership (see the module docs); [`crate::gateway::run`] owns
/// it.
pub struct Cluster {
    /// The Message IDs of each of our IKE SAs when its state was last written.
    written: Mutex<HashMap<SaHandle, (u32, u32)>>,
    write_ahead: Mutex<WriteAhead>,
    shared: Arc<Shared>,
    key: Arc<ClusterKey>,
    socket: UdpSocket,
    to_agent: Sender<AgentMsg>,
    cmds: Receiver<ClusterCmd>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Joins: registers the node, reads the store, installs the other nodes' Child SAs
    /// (through `to_control`), and starts the agent and the forwarding threads.
    ///
    /// # Errors
    /// The forwarding socket cannot be bound, or a thread cannot start.
    pub fn start(
        opts: ClusterOptions,
        sad: Arc<Sad>,
        to_control: Sender<ToControl>,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(opts.listen)?;
        socket.set_read_timeout(Some(StdDuration::from_millis(200)))?;
        let shared = Arc::new(Shared {
            owners: RwLock::new(HashMap::new()),
            view: Mutex::new(ClusterView {
                node: opts.node.clone(),
                ..ClusterView::default()
            }),
            forwarded_out: AtomicU64::new(0),
            forwarded_in: AtomicU64::new(0),
            lease_renewed: AtomicU64::new(0),
            takeable: Mutex::new(HashSet::new()),
            durable: Mutex::new(HashSet::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (to_agent, agent_rx) = mpsc::channel();
        let (cmd_tx, cmds) = mpsc::channel();
        let key = Arc::clone(&opts.key);
        let mut threads = Vec::new();
        {
            let reader = socket.try_clone()?;
            let (key, shared, stop, tx) = (
                Arc::clone(&key),
                Arc::clone(&shared),
                Arc::clone(&stop),
                to_control.clone(),
            );
            threads.push(
                thread::Builder::new()
                    .name("cluster-forward".into())
                    .spawn(move || forward_reader(&reader, &key, &shared, &stop, &tx))?,
            );
        }
        {
            let agent = agent::Agent::new(opts, sad, Arc::clone(&shared), cmd_tx, to_control);
            let stop = Arc::clone(&stop);
            threads.push(
                thread::Builder::new()
                    .name("cluster-agent".into())
                    .spawn(move || agent.run(&agent_rx, &stop))?,
            );
        }
        Ok(Cluster {
            written: Mutex::new(HashMap::new()),
            write_ahead: Mutex::new(WriteAhead::default()),
            shared,
            key,
            socket,
            to_agent,
            cmds,
            stop,
            threads,
        })
    }

    /// Forwards `d` to the node that owns its IKE SA, if another node does; `false`
    /// when this node handles it (it owns the SA, nobody does, or it starts one).
    pub fn route_ike(&self, d: &IkeDatagram) -> bool {
        let Some((i, r)) = ike_spis(d.local.port(), &d.payload) else {
            return false;
        };
        if r == 0 {
            return false;
        }
        let to = {
            let owners = self
                .shared
                .owners
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            owners.get(&(i, r)).copied()
        };
        let Some(to) = to else { return false };
        let frame = Forwarded {
            sent_ms: unix_ms(),
            local: d.local,
            remote: d.remote,
            payload: d.payload.clone(),
        };
        let sealed = self.key.seal(FORWARD_NAME, &frame.encode());
        match self.socket.send_to(&sealed, to) {
            Ok(_) => {
                self.shared.forwarded_out.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                debug!(%to, error = %e, "forwarding an IKE message");
                false
            }
        }
    }

    /// Tells the cluster what the driver did (every notice, in order).
    pub fn notice(&self, n: &Notice) {
        let spis = |initiator: bool, local: u64, remote: u64| {
            if initiator {
                (local, remote)
            } else {
                (remote, local)
            }
        };
        let info = match n {
            Notice::IkeUp {
                sa,
                initiator,
                local_spi,
                remote_spi,
                ..
            } => NoticeInfo::IkeUp {
                sa: sa.0,
                spis: spis(
                    *initiator,
                    u64::from_be_bytes(local_spi.0),
                    u64::from_be_bytes(remote_spi.0),
                ),
            },
            // After a rekey the new SA's initiator is whoever started the rekey, which
            // the notice does not say: ownership records are keyed by the two SPIs in
            // either order (`agent::ike_key`).
            Notice::IkeRekeyed {
                sa,
                local_spi,
                remote_spi,
            } => NoticeInfo::IkeRekeyed {
                sa: sa.0,
                spis: (
                    u64::from_be_bytes(local_spi.0),
                    u64::from_be_bytes(remote_spi.0),
                ),
            },
            Notice::IkeClosed { sa, .. } => NoticeInfo::IkeClosed { sa: sa.0 },
            Notice::ChildUp {
                sa,
                child,
                sad: Some(id),
                inbound_spi,
                outbound_spi,
                ..
            } => NoticeInfo::ChildUp {
                child: *child,
                sad: *id,
                spis: (inbound_spi.0, outbound_spi.0),
                ike: sa.0,
            },
            Notice::ChildDeleted {
                inbound_spi,
                outbound_spi,
                ..
            } => NoticeInfo::ChildDeleted {
                spis: (inbound_spi.0, outbound_spi.0),
            },
            Notice::PeerMoved { sa, .. } | Notice::PathUpdated { sa, .. } => {
                NoticeInfo::PathChanged { ike: sa.0 }
            }
            _ => return,
        };
        let _ = self.to_agent.send(AgentMsg::Notice(info));
    }

    /// The next thing the control loop must do for the cluster.
    pub fn poll_command(&self) -> Option<ClusterCmd> {
        self.cmds.try_recv().ok()
    }

    /// The answer to [`ClusterCmd::InstallReplica`].
    pub fn replica_installed(&self, key: String, sa: Result<SaId, String>) {
        let _ = self.to_agent.send(AgentMsg::Installed { key, sa });
    }

    /// A replica's hard lifetime ended ([`crate::driver::Driver::poll_expired_replica`]):
    /// its records are deleted from the store (its owner, which would have rekeyed
    /// it, is gone), and the replica is removed here (and, through the watch, on
    /// every node).
    pub fn replica_expired(&self, sa: SaId) {
        let _ = self.to_agent.send(AgentMsg::Expired { sa });
    }

    /// The answer to [`ClusterCmd::AdoptIke`].
    pub fn adopted(&self, key: String, result: Result<(SaHandle, Vec<AdoptedChild>), String>) {
        if let Ok((h, _)) = &result {
            // Its state is in the store already, as of these Message IDs.
            let mut w = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            w.insert(*h, (0, 0));
            // So it is fenced from now on, not from when the agent (maybe waiting
            // for the store) reads this answer.
            self.shared.set_takeable(h.0, true);
        }
        let _ = self.to_agent.send(AgentMsg::Adopted { key, result });
    }

    /// One round of the control loop's cluster work: hands `driver`'s notices to the
    /// agent, carries out its commands ([`ClusterCmd`]), fences our IKE SAs when the
    /// store has been away too long ([`Cluster::fence`]), writes the state of IKE SAs
    /// that finished an exchange, and reports expired replicas. `now` is
    /// [`crate::dataplane::now`].
    pub fn work(&self, driver: &mut Driver, now: ipsec::core::Instant) {
        while let Some(n) = driver.poll_notice() {
            self.notice(&n);
        }
        while let Some(cmd) = self.poll_command() {
            match cmd {
                ClusterCmd::InstallReplica { key, snap } => {
                    let r = driver.install_replica(now, &snap);
                    self.replica_installed(key, r);
                }
                ClusterCmd::RemoveReplica { sa } => driver.remove_replica(sa),
                ClusterCmd::RekeyChild { child } => {
                    if let Err(e) = driver.rekey_child(now, child) {
                        warn!(error = %e, "cluster: rekey");
                    }
                }
                ClusterCmd::AbandonIke { sa } => {
                    driver.abandon_ike(sa);
                }
                ClusterCmd::AdoptIke { key, conn, snap } => {
                    let r = driver.adopt_ike(now, &conn, &snap);
                    self.adopted(key, r);
                }
            }
        }
        self.fence(driver, now);
        self.write_ike_states(driver);
        while let Some(sa) = driver.poll_expired_replica() {
            self.replica_expired(sa);
        }
        // Notices of what the commands did.
        while let Some(n) = driver.poll_notice() {
            self.notice(&n);
        }
    }

    /// Write-ahead for IKE responses: `Some(t)` to send `t` now, `None` when it is
    /// held back because it answers a request of an IKE SA whose state, as of that
    /// answer, is still being written to the store (call [`Cluster::release`] for it
    /// later). So a node that dies right after answering leaves the state with that
    /// answer behind, and the node that takes the IKE SA over goes on from it: the
    /// peer's next request carries the Message ID it expects, and a retransmission of
    /// the answered one gets the same answer (docs/scale-out.md, "IKE"). Call
    /// [`Cluster::work`] first, which asks for the writes.
    pub fn hold(
        &self,
        t: ipsec::ike::Transmit,
        now: ipsec::core::Instant,
    ) -> Option<ipsec::ike::Transmit> {
        let Some((spis, true)) = forward::ike_header(t.local.port(), &t.payload) else {
            return Some(t);
        };
        let mut wa = self
            .write_ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(&token) = wa.pending.get(&spis) else {
            return Some(t);
        };
        if self
            .shared
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&token)
        {
            return Some(t);
        }
        wa.held.push((t, token, now));
        wa.counts.0 += 1;
        None
    }

    /// The held responses ([`Cluster::hold`]) whose state is written now, or that
    /// waited [`HOLD_MAX`].
    pub fn release(&self, now: ipsec::core::Instant) -> Vec<ipsec::ike::Transmit> {
        let mut wa = self
            .write_ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut durable = self
            .shared
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if wa.held.is_empty() && durable.is_empty() {
            return Vec::new();
        }
        let max = u64::try_from(HOLD_MAX.as_nanos()).unwrap_or(u64::MAX);
        let (out, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut wa.held)
                .into_iter()
                .partition(|(_, token, at)| {
                    durable.contains(token) || now.0.saturating_sub(at.0) >= max
                });
        wa.held = keep;
        for (_, token, at) in &out {
            if !durable.contains(token) {
                wa.counts.1 += 1;
            }
            wa.counts.2 = wa.counts.2.max(now.0.saturating_sub(at.0));
        }
        // Writes nothing waits for any more are forgotten.
        let waiting: HashSet<u64> = wa.held.iter().map(|(_, t, _)| *t).collect();
        wa.pending
            .retain(|_, t| !durable.contains(t) || waiting.contains(t));
        durable.retain(|t| waiting.contains(t));
        out.into_iter().map(|(t, _, _)| t).collect()
    }

    /// Fences our IKE SAs when this node's lease may be about to expire: no renewal
    /// of it was sent for [`FENCE_AFTER`]. Each IKE SA whose state is in the store
    /// (another node takes it over once our lease expires) is given up in `driver`
    /// ([`Driver::abandon_ike`]) after its state is exported; the agent keeps that
    /// state and resumes the IKE SA when the store answers again and it is still
    /// ours. So two nodes never run the same IKE SA at once (docs/scale-out.md,
    /// "IKE"). The control loop calls this on its own clock: the agent's thread may
    /// be waiting for the store.
    pub fn fence(&self, driver: &mut Driver, now: ipsec::core::Instant) {
        if self
            .shared
            .lease_age(now)
            .is_none_or(|age| age < fence_after_ns())
        {
            return;
        }
        let handles = std::mem::take(
            &mut *self
                .shared
                .takeable
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for h in handles {
            let sa = SaHandle(h);
            let state = driver.export_ike(sa);
            if !driver.abandon_ike(sa) {
                continue;
            }
            self.written
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&sa);
            warn!(%sa, "cut off from the cluster store: IKE SA fenced until the store is back");
            let _ = self.to_agent.send(AgentMsg::Fenced {
                sa: h,
                state: state.map(|(c, s)| (c, Box::new(s))),
            });
        }
    }

    /// Writes the state of every IKE SA of `driver` that finished an exchange since it
    /// was last written (so another node can take it over, docs/scale-out.md, "IKE").
    pub fn write_ike_states(&self, driver: &Driver) {
        let mut w = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let live = driver.established_ike_sas();
        w.retain(|h, _| live.contains(h));
        for h in live {
            let Some(ids) = driver.ike_message_ids(h) else {
                continue;
            };
            if w.get(&h) == Some(&ids) {
                continue;
            }
            // Between exchanges only; a busy SA is written after its exchange.
            let Some((conn, snap)) = driver.export_ike(h) else {
                continue;
            };
            w.insert(h, ids);
            let token = {
                let mut wa = self
                    .write_ahead
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                wa.next_token += 1;
                let t = wa.next_token;
                wa.pending.insert(
                    (
                        u64::from_be_bytes(snap.spi_i),
                        u64::from_be_bytes(snap.spi_r),
                    ),
                    t,
                );
                t
            };
            let _ = self.to_agent.send(AgentMsg::IkeState {
                sa: h.0,
                conn,
                snap: Box::new(snap),
                token,
            });
        }
    }

    /// The cluster as this node sees it.
    pub fn view(&self) -> ClusterView {
        let mut v = self
            .shared
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        v.forwarded = (
            self.shared.forwarded_out.load(Ordering::Relaxed),
            self.shared.forwarded_in.load(Ordering::Relaxed),
        );
        let (held, unwritten, longest) = self
            .write_ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts;
        v.answers_held = (held, unwritten, longest / 1000);
        v
    }

    /// Stops the threads (the node's records go with its store lease).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Takes forwarded IKE messages from the other nodes to the control loop.
fn forward_reader(
    socket: &UdpSocket,
    key: &ClusterKey,
    shared: &Shared,
    stop: &AtomicBool,
    to: &Sender<ToControl>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut replay = ReplayFilter::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                warn!(error = %e, "cluster socket");
                thread::sleep(StdDuration::from_millis(50));
                continue;
            }
        };
        let frame = match key.open(FORWARD_NAME, &buf[..n]) {
            Ok(plain) => Forwarded::decode(&plain),
            Err(e) => {
                debug!(%from, error = %e, "forwarded IKE message refused");
                continue;
            }
        };
        match frame {
            Ok(f) => {
                // The seal's nonce follows its version byte.
                let nonce = buf.get(1..1 + ipsec_cluster::NONCE_LEN).unwrap_or_default();
                if !replay.accept(nonce, f.sent_ms, unix_ms()) {
                    debug!(%from, "forwarded IKE message stale or replayed");
                    continue;
                }
                shared.forwarded_in.fetch_add(1, Ordering::Relaxed);
                let d = IkeDatagram {
                    local: f.local,
                    remote: f.remote,
                    payload: f.payload,
                };
                if to.send(ToControl::Forwarded(d)).is_err() {
                    return;
                }
            }
            Err(e) => debug!(%from, error = %e, "forwarded IKE message malformed"),
        }
    }
}
