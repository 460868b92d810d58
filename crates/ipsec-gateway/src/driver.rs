//! [`Driver`]: the gateway's control plane without I/O. It drives one
//! [`IkeEndpoint`] for every connection and peer, installs each Child SA with its
//! outbound policy in the [`Sad`], replaces and removes them on rekey, delete and
//! expiry, turns SAD acquires into negotiations, and says which routes the I/O layer
//! must add and remove.
//!
//! The I/O layer ([`crate::gateway`]) feeds it datagrams, SAD wake-ups and the time,
//! and drains [`Driver::poll_transmit`] and [`Driver::poll_route`]; a test or an
//! embedder with its own sockets does the same. An embedder that reports what
//! happens (the `ipsec connect`, `listen` and `demo` commands) also drains
//! [`Driver::poll_notice`], and steers the SAs with commands ([`Driver::rekey_child`],
//! [`Driver::rekey_ike`], [`Driver::delete_child`], [`Driver::close`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipsec::core::{Duration, Instant, Mode, SecurityProtocol, TrafficSelector, UdpEncap};
use ipsec::ike::{
    ApiMisuse, ChildSaId, Config, Error as IkeError, Gateway, Identity, IkeEndpoint, Psk, Redirect,
    ResolvesPeer, SaHandle, Transmit, NAT_T_PORT,
};
use ipsec::sad::{Event as SadEvent, PolicyId, SaId, SaTemplate, Sad};
use tracing::{debug, info, warn};

use crate::pool::MemPool;

mod conn;
mod events;
mod notice;
mod replica;
mod selectors;
mod status;

use conn::Resolver;
pub use conn::{ConnSpec, SecretLookup, StartAction};
pub use notice::Notice;
pub use replica::AdoptedChild;
pub use selectors::ts_to_prefixes;
use selectors::{pairs, template_for, ts_string, RuleKey};
pub use status::{reason_label, ChildSaStatus, DriverCounters, IkeSaStatus, Status};

/// A route the I/O layer must add or remove: the peer's selector through the TUN
/// device, with a source address inside our selector when the host has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// Route `dst` through the tunnel.
    Add {
        /// The destination prefixes (the remote selector as CIDR blocks).
        dst: Vec<(IpAddr, u8)>,
        /// Our selector: the source address is a host address inside it.
        local_ts: TrafficSelector,
    },
    /// Remove the routes to `dst`.
    Remove {
        /// The destination prefixes.
        dst: Vec<(IpAddr, u8)>,
    },
    /// A virtual address the responder assigned us (RFC 7296 §3.15, `vips`): add it
    /// to the TUN device (a host address, /32 or /128), before the routes of the IKE
    /// SA's Child SAs, which take it as their source.
    AddAddress {
        /// The address.
        addr: IpAddr,
    },
    /// The IKE SA that held virtual address `addr` is gone: remove it from the TUN
    /// device (after the routes that used it).
    RemoveAddress {
        /// The address.
        addr: IpAddr,
    },
}

struct IkeInfo {
    conn: usize,
    /// The gateway redirected it and the driver followed (RFC 5685).
    redirected: bool,
    initiator: bool,
    since: Instant,
    established: bool,
    peer_id: Option<Identity>,
    suite: String,
    spis: (String, String),
    /// The peer's EAP identity, when EAP authenticated it.
    eap_id: Option<String>,
    /// Virtual addresses: assigned to us (initiator) or leased to the peer
    /// (responder).
    virtual_ips: Vec<IpAddr>,
}

impl IkeInfo {
    fn new(conn: usize, initiator: bool, since: Instant) -> Self {
        IkeInfo {
            redirected: false,
            conn,
            initiator,
            since,
            established: false,
            peer_id: None,
            suite: String::new(),
            spis: (String::new(), String::new()),
            eap_id: None,
            virtual_ips: Vec::new(),
        }
    }
}

struct ChildInfo {
    ike: SaHandle,
    sad: Option<SaId>,
    rules: Vec<RuleKey>,
    params_summary: ChildSummary,
    since: Instant,
}

struct ChildSummary {
    suite: String,
    mode: Mode,
    udp_encap: bool,
    spi_in: u32,
    spi_out: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
}

struct Rule {
    id: PolicyId,
    template: SaTemplate,
    /// The connection whose trap installed it.
    trap: Option<usize>,
    /// Child SAs that use it.
    users: usize,
}

/// The gateway's control plane (see the module docs).
pub struct Driver {
    endpoint: IkeEndpoint,
    sad: Arc<Sad>,
    resolver: Arc<Resolver>,
    by_name: HashMap<String, usize>,
    ikes: HashMap<SaHandle, IkeInfo>,
    children: HashMap<ChildSaId, ChildInfo>,
    by_sad: HashMap<SaId, ChildSaId>,
    rules: HashMap<RuleKey, Rule>,
    next_policy: u32,
    routes: VecDeque<RouteChange>,
    extra: VecDeque<Transmit>,
    /// Connections to initiate (again) at these times.
    restarts: BTreeMap<usize, Instant>,
    counters: DriverCounters,
    shutting_down: bool,
    /// What happened, when the embedder asked for it ([`Driver::keep_notices`]).
    notices: Option<VecDeque<Notice>>,
    /// Our IKE port when initiating to a peer's port other than 4500.
    ike_port: u16,
    /// UDP encapsulation for Child SAs that IKE negotiated without it.
    esp_in_udp: Option<UdpEncap>,
    /// The address pools the connections lease from, for the status.
    pools: Vec<Arc<MemPool>>,
    /// Other nodes' Child SAs imported here, with their rules.
    replicas: HashMap<SaId, Vec<RuleKey>>,
    /// Replicas whose hard lifetime ended, for the cluster layer.
    expired_replicas: VecDeque<SaId>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("ike_sas", &self.ikes.len())
            .field("child_sas", &self.children.len())
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

/// Why a [`Driver`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Two connections with one name, or one without a name.
    #[error("connection name {0:?} is empty or not unique")]
    Name(String),
    /// A connection's IKE configuration cannot work.
    #[error("connection {0}: {1}")]
    Config(String, ipsec::ike::ConfigError),
    /// A connection that must initiate has no remote address.
    #[error("connection {0}: start_action start or trap needs one remote address")]
    NoRemote(String),
    /// The trap policies could not be installed.
    #[error("trap policies: {0}")]
    Spd(String),
}

/// How long a `start` connection waits before initiating again after its IKE SA was
/// lost or failed.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);

impl Driver {
    /// A driver for `conns` over `sad`. The endpoint's own configuration (the IKE
    /// proposals offered to every responder, the endpoint-wide limits) is `base`.
    ///
    /// # Errors
    /// [`DriverError`].
    pub fn new(
        base: Arc<Config>,
        conns: Vec<ConnSpec>,
        secrets: SecretLookup,
        sad: Arc<Sad>,
        provider: &'static ipsec::crypto::CryptoProvider,
    ) -> Result<Self, DriverError> {
        let mut by_name = HashMap::new();
        for (i, c) in conns.iter().enumerate() {
            let name = c.config.name.clone();
            if name.is_empty() || by_name.insert(name.clone(), i).is_some() {
                return Err(DriverError::Name(name));
            }
            // The key is looked up per peer; validate with a stand-in if absent.
            let mut probe = Config::clone(&c.config);
            if probe.psk.expose().is_empty() {
                probe.psk = Psk::from("stand-in");
            }
            probe
                .validate()
                .map_err(|e| DriverError::Config(name.clone(), e))?;
            if (c.start_action.start || c.start_action.trap) && c.remote.is_none() {
                return Err(DriverError::NoRemote(name));
            }
        }
        let mut endpoint = IkeEndpoint::new(base, provider);
        // The SAD may hold SAs the endpoint did not negotiate (replicas of a cluster's
        // other nodes, SAs installed by hand): never choose their inbound SPIs.
        let in_use = Arc::clone(&sad);
        endpoint.set_child_spi_in_use(Arc::new(move |spi| {
            in_use.inbound_spi_in_use(spi, SecurityProtocol::Esp)
                || in_use.inbound_spi_in_use(spi, SecurityProtocol::Ah)
        }));
        let resolver = Arc::new(Resolver { conns, secrets });
        endpoint.set_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesPeer>);
        let mut d = Driver {
            endpoint,
            sad,
            resolver,
            by_name,
            ikes: HashMap::new(),
            children: HashMap::new(),
            by_sad: HashMap::new(),
            rules: HashMap::new(),
            next_policy: 1,
            routes: VecDeque::new(),
            extra: VecDeque::new(),
            restarts: BTreeMap::new(),
            counters: DriverCounters::default(),
            shutting_down: false,
            notices: None,
            ike_port: 500,
            esp_in_udp: None,
            pools: Vec::new(),
            replicas: HashMap::new(),
            expired_replicas: VecDeque::new(),
        };
        d.install_traps()?;
        Ok(d)
    }

    /// The IKE endpoint (read-only: statistics, configurations).
    pub fn endpoint(&self) -> &IkeEndpoint {
        &self.endpoint
    }

    fn conns(&self) -> &[ConnSpec] {
        &self.resolver.conns
    }

    fn install_traps(&mut self) -> Result<(), DriverError> {
        for i in 0..self.conns().len() {
            let c = &self.conns()[i];
            if !c.start_action.trap {
                continue;
            }
            let Some(remote) = c.remote else { continue };
            let template = template_for(&c.config, c.local, remote.ip());
            let pairs: Vec<RuleKey> = pairs(&c.config.local_ts, &c.config.remote_ts);
            for key in pairs {
                let id = PolicyId(self.next_policy);
                self.next_policy += 1;
                self.rules.insert(
                    key,
                    Rule {
                        id,
                        template,
                        trap: Some(i),
                        users: 0,
                    },
                );
                self.routes.push_back(RouteChange::Add {
                    dst: ts_to_prefixes(&key.1),
                    local_ts: key.0,
                });
            }
        }
        self.publish_spd().map_err(DriverError::Spd)
    }

    /// Initiates every connection with `start_action = start`.
    pub fn start(&mut self, now: Instant) {
        for i in 0..self.conns().len() {
            if self.conns()[i].start_action.start {
                let _ = self.initiate(now, i);
            }
        }
    }

    /// Initiates connection `name` (as `swanctl --initiate`).
    ///
    /// # Errors
    /// The connection is unknown or has no remote address, or the endpoint refused.
    pub fn initiate_by_name(&mut self, now: Instant, name: &str) -> Result<(), String> {
        let i = *self
            .by_name
            .get(name)
            .ok_or_else(|| format!("no connection {name}"))?;
        match self.initiate(now, i) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("connection {name} could not be initiated")),
        }
    }

    /// Initiates connection `name`, as [`initiate_by_name`](Self::initiate_by_name),
    /// and returns the new IKE SA's handle (RFC 7296 §1.2).
    ///
    /// # Errors
    /// The connection is unknown or has no remote address or key, or the endpoint
    /// refused (its error).
    pub fn initiate_sa(&mut self, now: Instant, name: &str) -> Result<SaHandle, String> {
        let i = *self
            .by_name
            .get(name)
            .ok_or_else(|| format!("no connection {name}"))?;
        self.initiate(now, i)
    }

    fn initiate(&mut self, now: Instant, i: usize) -> Result<SaHandle, String> {
        self.initiate_to(now, i, None)
    }

    /// Initiates connection `i` to its remote address, or with `redirect` to the
    /// gateway that redirect names (on the connection's remote port).
    fn initiate_to(
        &mut self,
        now: Instant,
        i: usize,
        redirect: Option<&Redirect>,
    ) -> Result<SaHandle, String> {
        let c = &self.resolver.conns[i];
        let remote = match (redirect.map(|r| &r.to), c.remote) {
            (Some(Gateway::Ip(ip)), Some(r)) => Some(SocketAddr::new(*ip, r.port())),
            (Some(Gateway::Ip(ip)), None) => Some(SocketAddr::new(*ip, 500)),
            (Some(_), _) => None,
            (None, r) => r,
        };
        let Some(remote) = remote else {
            return Err(format!(
                "connection {} has no remote address",
                c.config.name
            ));
        };
        let mut cfg = Arc::clone(&c.config);
        if cfg.psk.expose().is_empty() && conn::uses_psk(&cfg) {
            let Some(remote_id) = &cfg.remote_id else {
                warn!(conn = %cfg.name, "no remote id to look the key up with");
                return Err(format!("connection {}: no remote id", cfg.name));
            };
            let Some(key) = (self.resolver.secrets)(&cfg.local_id, remote_id) else {
                warn!(conn = %cfg.name, "no secret for this connection");
                return Err(format!("connection {}: no secret", cfg.name));
            };
            let mut d = Config::clone(&cfg);
            d.psk = key;
            cfg = Arc::new(d);
        }
        let local = SocketAddr::new(
            c.local,
            if remote.port() == NAT_T_PORT {
                NAT_T_PORT
            } else {
                self.ike_port
            },
        );
        let started = match redirect {
            Some(r) => self.endpoint.connect_redirected(now, local, remote, cfg, r),
            None => self.endpoint.connect_with(now, local, remote, cfg),
        };
        match started {
            Ok(h) => {
                info!(conn = %c.config.name, %remote, sa = %h, "initiating");
                self.ikes.insert(h, IkeInfo::new(i, true, now));
                self.restarts.remove(&i);
                self.drain(now);
                Ok(h)
            }
            Err(e) => {
                warn!(conn = %c.config.name, error = %e, "initiate failed");
                Err(e.to_string())
            }
        }
    }

    /// A UDP datagram received at `local` from `remote` (ports 500 and 4500).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) {
        self.endpoint.handle_datagram(now, local, remote, payload);
        self.drain(now);
    }

    /// Reads and acts on the SAD's events (acquires, soft and hard expiries).
    pub fn handle_sad_events(&mut self, now: Instant) {
        while let Some(e) = self.sad.poll_event() {
            match e {
                SadEvent::Acquire(a) => self.acquire(now, a.policy),
                SadEvent::SoftExpired { sa, .. } | SadEvent::SeqNearExhaustion { sa, .. } => {
                    if let Some(&c) = self.by_sad.get(&sa) {
                        let ike = self.children[&c].ike;
                        if let Err(err) = self.endpoint.rekey_child_sa(now, ike, c) {
                            debug!(child = %c, error = %err, "rekey on soft expiry");
                        }
                    }
                }
                SadEvent::HardExpired { sa, .. } if self.replicas.contains_key(&sa) => {
                    self.expired_replicas.push_back(sa);
                }
                SadEvent::HardExpired { sa, .. } => {
                    if let Some(&c) = self.by_sad.get(&sa) {
                        let ike = self.children[&c].ike;
                        if let Err(err) = self.endpoint.delete_child_sa(now, ike, c) {
                            debug!(child = %c, error = %err, "delete on hard expiry");
                        }
                    }
                }
                _ => {}
            }
        }
        self.drain(now);
    }

    fn acquire(&mut self, now: Instant, policy: PolicyId) {
        let Some(conn) = self
            .rules
            .values()
            .find(|r| r.id == policy)
            .and_then(|r| r.trap)
        else {
            return;
        };
        // An IKE SA of this connection on its way or up: a Child SA comes with it,
        // or is asked for.
        let ours: Vec<(SaHandle, bool)> = self
            .ikes
            .iter()
            .filter(|(_, i)| i.conn == conn)
            .map(|(h, i)| (*h, i.established))
            .collect();
        if ours.iter().any(|(_, up)| !up) {
            return;
        }
        self.counters.acquires += 1;
        if let Some((h, _)) = ours.first() {
            let has_child = self.children.values().any(|c| c.ike == *h);
            if !has_child {
                let _ = self.endpoint.create_child_sa(now, *h);
            }
            self.drain(now);
            return;
        }
        let _ = self.initiate(now, conn);
    }

    /// Fires due timers: the endpoint's, the SAD's lifetimes, restarts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.sad.handle_timeout(now);
        let due: Vec<usize> = self
            .restarts
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            self.restarts.remove(&c);
            if !self.shutting_down && !self.ikes.values().any(|i| i.conn == c) {
                let _ = self.initiate(now, c);
            }
        }
        self.drain(now);
        self.handle_sad_events(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.endpoint.poll_timeout(),
            self.sad.poll_timeout(),
            self.restarts.values().min().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send (IKE, or a NAT keepalive).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.extra
            .pop_front()
            .or_else(|| self.endpoint.poll_transmit())
    }

    /// The next route change to apply.
    pub fn poll_route(&mut self) -> Option<RouteChange> {
        self.routes.pop_front()
    }

    /// Deletes every IKE SA (the Deletes go out through
    /// [`poll_transmit`](Self::poll_transmit)); no `start` connection is initiated
    /// again. [`is_idle`](Self::is_idle) says when they are gone.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.restarts.clear();
        for h in self.endpoint.sa_handles() {
            let _ = self.endpoint.close(now, h);
        }
        self.drain(now);
    }

    /// Whether no IKE SA is left.
    pub fn is_idle(&self) -> bool {
        self.ikes.is_empty()
    }

    /// Queues a [`Notice`] for every IKE SA and Child SA event from now on (`true`),
    /// or stops and drops the queue (`false`, the default). An embedder that keeps
    /// them must drain them with [`poll_notice`](Self::poll_notice).
    pub fn keep_notices(&mut self, keep: bool) {
        if keep {
            self.notices.get_or_insert_with(VecDeque::new);
        } else {
            self.notices = None;
        }
    }

    /// The next notice, oldest first (see [`keep_notices`](Self::keep_notices)).
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.as_mut()?.pop_front()
    }

    fn notify(&mut self, n: impl FnOnce() -> Notice) {
        if let Some(q) = self.notices.as_mut() {
            q.push_back(n());
        }
    }

    /// Our IKE port when initiating (default 500; a peer on port 4500 is always
    /// reached from 4500, RFC 7296 §2.23). The I/O layer sends a [`Transmit`] from its
    /// socket on this port.
    pub fn set_ike_port(&mut self, port: u16) {
        self.ike_port = port;
    }

    /// Installs Child SAs that IKE negotiated without UDP encapsulation with `encap`
    /// instead (`None`, the default: as negotiated). For an embedder that carries all
    /// ESP in UDP on sockets of its own, NAT or not (`ipsec demo`); the peer must do the
    /// same, since RFC 3948 encapsulation is otherwise only used behind a NAT.
    pub fn set_esp_in_udp(&mut self, encap: Option<UdpEncap>) {
        self.esp_in_udp = encap;
    }

    /// Chooses every new inbound Child SA SPI from `space`: a cluster node's own part
    /// of the space ([`crate::cluster::ClusterOptions::spi_space`]).
    pub fn set_child_spi_space(&mut self, space: ipsec::ike::SpiSpace) {
        self.endpoint.set_child_spi_space(space);
    }

    /// The address pools the connections' configurations lease from
    /// ([`Config::pool`]), so that [`status`](Self::status) shows their leases.
    pub fn set_pools(&mut self, pools: Vec<Arc<MemPool>>) {
        self.pools = pools;
    }

    /// Our address `old` went away or changed to `new` (the embedder noticed: an
    /// interface down, a new lease, a failed send with EADDRNOTAVAIL): every
    /// established IKE SA whose local address is `old` moves to `new` with MOBIKE
    /// (RFC 4555 §3.5, [`IkeEndpoint::update_path`](ipsec::ike::IkeEndpoint::update_path)):
    /// an UPDATE_SA_ADDRESSES goes out from `new`, and its answer moves the Child SAs
    /// in the SAD ([`Notice::PathUpdated`]). Without MOBIKE the IKE SA moves at once
    /// and checks liveness (a peer that sees us behind a NAT follows us). IKE SAs we
    /// are the MOBIKE responder of cannot move and are left alone. `new`'s port is
    /// the one we receive IKE on (4500). Returns how many IKE SAs were moved.
    pub fn local_address_changed(
        &mut self,
        now: Instant,
        old: std::net::IpAddr,
        new: std::net::SocketAddr,
    ) -> usize {
        let mut moved = 0;
        for h in self.endpoint.sa_handles() {
            let Some((local, _)) = self.endpoint.addresses(h) else {
                continue;
            };
            if local.ip() != old || !self.endpoint.is_established(h) {
                continue;
            }
            match self.endpoint.update_path(now, h, new) {
                Ok(mobike) => {
                    moved += 1;
                    tracing::info!(sa = %h, %old, %new, mobike, "local address changed: IKE SA moves");
                }
                Err(e) => tracing::debug!(sa = %h, error = %e, "IKE SA not moved"),
            }
        }
        self.drain(now);
        moved
    }

    /// The SAD's id of Child SA `child`, while it is installed.
    pub fn child_sad_id(&self, child: ChildSaId) -> Option<SaId> {
        self.children.get(&child).and_then(|c| c.sad)
    }

    /// The IKE SA a Child SA belongs to.
    fn ike_of(&self, child: ChildSaId) -> Result<SaHandle, IkeError> {
        self.children
            .get(&child)
            .map(|c| c.ike)
            .ok_or(IkeError::ApiMisuse(ApiMisuse::UnknownChildSa))
    }

    /// Rekeys Child SA `child` now (CREATE_CHILD_SA with REKEY_SA, RFC 7296 §1.3.3),
    /// as a soft expiry would; [`Notice::ChildRekeyed`] says when it is done.
    ///
    /// # Errors
    /// The endpoint's: [`ApiMisuse::UnknownChildSa`], [`ApiMisuse::NotEstablished`].
    pub fn rekey_child(&mut self, now: Instant, child: ChildSaId) -> Result<(), IkeError> {
        let ike = self.ike_of(child)?;
        let r = self.endpoint.rekey_child_sa(now, ike, child);
        self.drain(now);
        r
    }

    /// Rekeys IKE SA `sa` now (RFC 7296 §2.18); [`Notice::IkeRekeyed`] says when it is
    /// done.
    ///
    /// # Errors
    /// The endpoint's: [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`].
    pub fn rekey_ike(&mut self, now: Instant, sa: SaHandle) -> Result<(), IkeError> {
        let r = self.endpoint.rekey_ike_sa(now, sa);
        self.drain(now);
        r
    }

    /// Deletes Child SA `child` (INFORMATIONAL with Delete, RFC 7296 §1.4.1); it
    /// leaves the SAD when the peer confirms ([`Notice::ChildDeleted`]).
    ///
    /// # Errors
    /// The endpoint's: [`ApiMisuse::UnknownChildSa`], [`ApiMisuse::NotEstablished`].
    pub fn delete_child(&mut self, now: Instant, child: ChildSaId) -> Result<(), IkeError> {
        let ike = self.ike_of(child)?;
        let r = self.endpoint.delete_child_sa(now, ike, child);
        self.drain(now);
        r
    }

    /// Deletes IKE SA `sa` with its Child SAs (RFC 7296 §1.4.1); once the delete
    /// completes, a `start` connection is not initiated again for it. [`Notice::IkeClosed`] says when it is gone;
    /// [`shutdown`](Self::shutdown) closes them all.
    ///
    /// # Errors
    /// The endpoint's: [`ApiMisuse::UnknownSa`].
    pub fn close(&mut self, now: Instant, sa: SaHandle) -> Result<(), IkeError> {
        let r = self.endpoint.close(now, sa);
        self.drain(now);
        r
    }

    /// Sends the peer of established IKE SA `sa` to gateway `to` (RFC 5685 §5, an
    /// INFORMATIONAL request with REDIRECT); the peer deletes the IKE SA, or we do
    /// after the half-open timeout. [`Notice::PeerRedirected`] says it went out.
    ///
    /// # Errors
    /// The endpoint's: [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`],
    /// [`ApiMisuse::CannotRedirect`].
    pub fn redirect(&mut self, now: Instant, sa: SaHandle, to: Gateway) -> Result<(), IkeError> {
        let r = self.endpoint.redirect(now, sa, to);
        self.drain(now);
        r
    }

    /// [`redirect`](Self::redirect) for a control command: `target` is an IKE SA's
    /// handle (as `status` prints it) or the peer's address or identity; every
    /// matching established IKE SA is redirected. Returns how many were.
    ///
    /// # Errors
    /// Nothing matches, `to` is not a gateway, or no match could be redirected.
    pub fn redirect_by(&mut self, now: Instant, target: &str, to: &str) -> Result<usize, String> {
        let to = crate::conf::redirect_gateway(to).map_err(|e| e.0)?;
        let handle = target.parse::<u64>().ok().map(SaHandle);
        let mut hits: Vec<SaHandle> = self
            .ikes
            .iter()
            .filter(|(h, i)| {
                i.established
                    && (Some(**h) == handle
                        || self
                            .endpoint
                            .addresses(**h)
                            .is_some_and(|(_, r)| r.ip().to_string() == target)
                        || i.peer_id.as_ref().is_some_and(|id| {
                            id.to_string() == target || ipsec_pki::identity_string(id) == target
                        }))
            })
            .map(|(h, _)| *h)
            .collect();
        hits.sort();
        if hits.is_empty() {
            return Err(format!("no established IKE SA matches {target}"));
        }
        let mut done = 0;
        let mut last = String::new();
        for h in hits {
            match self.endpoint.redirect(now, h, to.clone()) {
                Ok(()) => done += 1,
                Err(e) => last = e.to_string(),
            }
        }
        self.drain(now);
        if done == 0 {
            return Err(last);
        }
        Ok(done)
    }

    /// Follows a redirect of IKE SA `h` (RFC 5685): its connection is initiated
    /// toward the new gateway with REDIRECTED_FROM. A name (FQDN) is not resolved by
    /// the driver, which does no I/O: the connection then restarts as usual.
    fn follow_redirect(&mut self, now: Instant, h: SaHandle, r: Redirect) {
        let conn = self
            .ikes
            .get(&h)
            .map(|i| i.conn)
            .or_else(|| self.conn_of(h));
        let mut new = None;
        if let (Some(c), false) = (conn, self.shutting_down) {
            if matches!(r.to, Gateway::Ip(_)) {
                if let Some(i) = self.ikes.get_mut(&h) {
                    i.redirected = true;
                }
                match self.initiate_to(now, c, Some(&r)) {
                    Ok(n) => {
                        self.counters.redirects_followed += 1;
                        new = Some(n);
                    }
                    Err(e) => warn!(sa = %h, error = %e, "redirect not followed"),
                }
            } else {
                warn!(sa = %h, to = %r.to, "redirect to a name: not resolved by the driver");
            }
            // Not followed: a `start` connection restarts as after any loss (its
            // close, `Redirected`, does not schedule that itself).
            if new.is_none() && self.conns()[c].start_action.start {
                self.restarts.insert(c, now + RESTART_DELAY);
            }
        }
        info!(sa = %h, to = %r.to, new = ?new, "redirected");
        let to = r.to;
        self.notify(|| Notice::Redirected { sa: h, to, new });
    }

    /// Every IKE SA and Child SA with their counters.
    pub fn status(&self, now: Instant) -> Status {
        let mut ike_sas: Vec<IkeSaStatus> = self
            .ikes
            .iter()
            .map(|(h, i)| {
                let cfg = self.endpoint.sa_config(*h);
                let (local, remote) = self
                    .endpoint
                    .addresses(*h)
                    .map(|(l, r)| (l.to_string(), r.to_string()))
                    .unwrap_or_default();
                let age = now.saturating_duration_since(i.since);
                let mut children: Vec<ChildSaStatus> = self
                    .children
                    .iter()
                    .filter(|(_, c)| c.ike == *h)
                    .map(|(id, c)| self.child_status(now, *id, c, cfg.and_then(|c| c.child_rekey)))
                    .collect();
                children.sort_by_key(|c| c.id);
                IkeSaStatus {
                    handle: h.0,
                    connection: self.conns()[i.conn].config.name.clone(),
                    state: if i.established {
                        "ESTABLISHED"
                    } else {
                        "CONNECTING"
                    },
                    initiator: i.initiator,
                    local,
                    remote,
                    // A DN as strongSwan prints it ("C=CH, O=Example, CN=gw").
                    local_id: cfg
                        .map(|c| ipsec_pki::identity_string(&c.local_id))
                        .unwrap_or_default(),
                    remote_id: i
                        .peer_id
                        .as_ref()
                        .map(ipsec_pki::identity_string)
                        .unwrap_or_default(),
                    suite: i.suite.clone(),
                    local_spi: i.spis.0.clone(),
                    remote_spi: i.spis.1.clone(),
                    age_secs: age.as_secs(),
                    rekey_in_secs: cfg
                        .and_then(|c| c.ike_rekey)
                        .filter(|_| i.established)
                        .map(|r| r.saturating_sub(age).as_secs()),
                    eap_id: i.eap_id.clone(),
                    virtual_ips: i.virtual_ips.iter().map(|a| a.to_string()).collect(),
                    children,
                }
            })
            .collect();
        ike_sas.sort_by_key(|s| s.handle);
        Status {
            ike_sas,
            pools: self.pools.iter().map(|p| p.status()).collect(),
            counters: self.counters.clone(),
        }
    }

    fn child_status(
        &self,
        now: Instant,
        id: ChildSaId,
        c: &ChildInfo,
        rekey: Option<Duration>,
    ) -> ChildSaStatus {
        let stats = c.sad.and_then(|s| self.sad.sa_stats(s));
        let s = &c.params_summary;
        let age = now.saturating_duration_since(c.since);
        ChildSaStatus {
            id: id.0,
            sad_id: c.sad.map(|s| s.0),
            suite: s.suite.clone(),
            mode: match s.mode {
                Mode::Tunnel => "TUNNEL",
                _ => "TRANSPORT",
            },
            udp_encap: s.udp_encap,
            spi_in: format!("{:08x}", s.spi_in),
            spi_out: format!("{:08x}", s.spi_out),
            local_ts: s.local_ts.iter().map(ts_string).collect(),
            remote_ts: s.remote_ts.iter().map(ts_string).collect(),
            packets_in: stats.as_ref().map_or(0, |s| s.in_packets),
            bytes_in: stats.as_ref().map_or(0, |s| s.in_bytes),
            packets_out: stats.as_ref().map_or(0, |s| s.out_packets),
            bytes_out: stats.as_ref().map_or(0, |s| s.out_bytes),
            drops: stats
                .as_ref()
                .map(|s| {
                    s.drops
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(r, n)| (format!("{r:?}"), n))
                        .collect()
                })
                .unwrap_or_default(),
            age_secs: age.as_secs(),
            rekey_in_secs: rekey.map(|r| r.saturating_sub(age).as_secs()),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> &DriverCounters {
        &self.counters
    }

    /// Drains the endpoint's events and applies them.
    fn drain(&mut self, now: Instant) {
        while let Some((h, e)) = self.endpoint.poll_event() {
            self.on_event(now, h, e);
        }
    }
}
