//! The gateway as a process: the [`Driver`] on the control thread, the
//! [`Dataplane`] workers, the IKE sockets on port 500, the routes through the TUN
//! device, the control socket and the metrics listener; [`run`] until a stop flag is
//! set (the CLI sets it on SIGINT or SIGTERM), then every IKE SA is deleted.
//!
//! ESP always travels in UDP on port 4500 (RFC 3948), as with strongSwan's
//! kernel-libipsec: every connection forces UDP encapsulation (`encap = yes` is
//! implied), because a TUN device and UDP sockets are all the data plane has.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use ipsec::core::{Duration, Instant, TrafficSelector};
use ipsec::crypto::CryptoProvider;
use ipsec::ike::{Config, Identity, PeerAuth, Psk, Retransmit};
use ipsec::sad::{AddrRange, Sad, SadConfig};
use tracing::{debug, info, warn};

use crate::cluster::{Cluster, ClusterOptions};
use crate::conf::{select_psk, AddrSpec, Credentials, GatewayConfig, StartAction as ConfStart};
use crate::control::{self, Command, Request};
use crate::dataplane::{self, Dataplane, DataplaneConfig, IkeDatagram, ToControl, TunConfig};
use crate::driver::{ConnSpec, Driver, RouteChange, SecretLookup, StartAction};
use crate::metrics;
use crate::pool::{self, MemPool};

/// The IKE port (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// How to run the gateway.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayOptions {
    /// The TUN device's name (`None`: the kernel chooses).
    pub tun: Option<String>,
    /// The TUN device's MTU.
    pub mtu: u16,
    /// Data-plane worker threads.
    pub workers: usize,
    /// The control socket's path.
    pub control: Option<PathBuf>,
    /// The metrics listener's address.
    pub metrics: Option<SocketAddr>,
    /// Add and remove routes through the TUN device for the Child SAs (`ip route`).
    pub routes: bool,
    /// How long shutdown waits for the peers to answer the Deletes.
    pub shutdown_wait: StdDuration,
    /// Retransmission of IKE requests for every connection (strongSwan sets it in
    /// strongswan.conf, `charon.retransmit_*`); `None` keeps `Retransmit::default()`
    /// (give up after 63 s). DPD declares a peer dead when it runs out.
    pub retransmit: Option<Retransmit>,
    /// The directory with swanctl's credential subdirectories (`x509/`, `x509ca/`,
    /// `x509crl/`, `private/`, ...), normally the one holding the `swanctl.conf`;
    /// `None`: no certificates (every connection uses PSKs).
    pub conf_dir: Option<PathBuf>,
    /// Join an anycast cluster ([`crate::cluster`], docs/scale-out.md): share Child
    /// SAs and sequence-number blocks with the other nodes through the store. A
    /// clustered gateway does not delete its IKE SAs when it stops: the other nodes
    /// go on serving their Child SAs.
    pub cluster: Option<ClusterOptions>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            tun: None,
            mtu: 1400,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            control: None,
            metrics: None,
            routes: true,
            shutdown_wait: StdDuration::from_secs(3),
            retransmit: None,
            conf_dir: None,
            cluster: None,
        }
    }
}

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The configuration cannot be run.
    #[error("configuration: {0}")]
    Config(String),
    /// The SAD could not be built.
    #[error("SAD: {0}")]
    Sad(String),
    /// A socket, the TUN device or a thread.
    #[error("{what}: {err}")]
    Io {
        /// What was being set up.
        what: String,
        /// The error.
        err: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> GatewayError {
    move |err| GatewayError::Io {
        what: what.into(),
        err,
    }
}

/// What the driver needs from a [`GatewayConfig`]: the endpoint's own configuration,
/// the connections, the secret lookup, and the local addresses to bind.
pub struct DriverInputs {
    /// The endpoint's configuration (every connection's IKE proposals, for
    /// responders, which choose one before the peer names itself).
    pub base: Arc<Config>,
    /// The connections.
    pub conns: Vec<ConnSpec>,
    /// Finds a key for (our identity, the peer's) in the secrets.
    pub secrets: SecretLookup,
    /// The addresses to bind ports 500 and 4500 on.
    pub local_addrs: Vec<IpAddr>,
    /// The virtual address pools (`pools.<name>`), installed on the connections
    /// that name them, for [`Driver::set_pools`].
    pub pools: Vec<Arc<MemPool>>,
}

impl std::fmt::Debug for DriverInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverInputs")
            .field("conns", &self.conns.len())
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

fn addr_range(a: &AddrSpec) -> Option<AddrRange> {
    match *a {
        AddrSpec::Any | AddrSpec::Any4 | AddrSpec::Any6 => None,
        AddrSpec::Addr(x) => AddrRange::prefix(x, if x.is_ipv4() { 32 } else { 128 }),
        AddrSpec::Prefix(x, l) => AddrRange::prefix(x, l),
        AddrSpec::Range(x, y) => AddrRange::range(x, y),
    }
}

/// Turns a parsed `swanctl.conf` into [`DriverInputs`]. Every connection must name
/// one local address in `local_addrs` (the sockets are bound to it: NAT detection
/// needs the real address a datagram arrived at); `remote_addrs` with one address
/// lets it initiate, anything else only restricts who may connect.
///
/// # Errors
/// [`GatewayError::Config`] naming the connection and key.
pub fn driver_inputs(
    conf: &GatewayConfig,
    creds: &Credentials,
    retransmit: Option<Retransmit>,
) -> Result<DriverInputs, GatewayError> {
    let mut conns = Vec::new();
    let mut locals: Vec<IpAddr> = Vec::new();
    let pools = pool::build_pools(conf).map_err(|e| GatewayError::Config(e.to_string()))?;
    let mut ike_proposals = Vec::new();
    for c in &conf.connections {
        let bad = |key: &str, problem: &str| {
            GatewayError::Config(format!("connection '{}', {key}: {problem}", c.name))
        };
        if c.children.len() > 1 {
            return Err(bad(
                "children",
                "more than one child per connection is not supported yet",
            ));
        }
        let mut cfg = c
            .to_ike_config_unkeyed()
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        creds.apply(c, &mut cfg);
        c.apply_ppk(&mut cfg, &conf.ppks)
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        c.apply_eap(&mut cfg, &conf.eap_secrets)
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        pool::apply_pools(c, &mut cfg, &pools).map_err(GatewayError::Config)?;
        if cfg.remote_id.is_some() {
            if let Some(s) = select_psk(&conf.secrets, &cfg.local_id, cfg.remote_id.as_ref()) {
                cfg.psk = s.secret.0.clone();
            }
        }
        cfg.force_udp_encap = true;
        if let Some(r) = retransmit {
            cfg.retransmit = r;
        }
        let local = match c.local_addrs.as_slice() {
            [AddrSpec::Addr(a)] => *a,
            _ => {
                return Err(bad(
                    "local_addrs",
                    "the gateway binds its sockets to one address: name it",
                ))
            }
        };
        if !locals.contains(&local) {
            locals.push(local);
        }
        let remote = match c.remote_addrs.as_slice() {
            [AddrSpec::Addr(a)] => Some(SocketAddr::new(*a, c.remote_port)),
            _ => None,
        };
        let remote_addrs = c.remote_addrs.iter().filter_map(addr_range).collect();
        let start_action = match c.children.first().map(|ch| ch.start_action) {
            Some(ConfStart::Trap) => StartAction {
                trap: true,
                start: false,
            },
            Some(ConfStart::Start) => StartAction {
                trap: false,
                start: true,
            },
            Some(ConfStart::TrapStart) => StartAction {
                trap: true,
                start: true,
            },
            _ => StartAction::default(),
        };
        for p in &cfg.ike_proposals {
            if !ike_proposals.contains(p) {
                ike_proposals.push(p.clone());
            }
        }
        conns.push(ConnSpec {
            config: Arc::new(cfg),
            local,
            remote,
            remote_addrs,
            start_action,
        });
    }
    let Some(first) = conns.first() else {
        return Err(GatewayError::Config("no connection".into()));
    };
    let mut base = Config::clone(&first.config);
    base.name = String::new();
    base.ike_proposals = ike_proposals;
    base.psk = Psk::from("the endpoint's own key is never used: the resolver chooses");
    // IKE_SA_INIT is answered with the endpoint's configuration: with a verifier
    // there, the response carries CERTREQ (RFC 7296 §3.7) and the signature hash
    // algorithms (RFC 7427 §4), without which charon sends no certificate.
    if let Some(v) = creds.any_verifier() {
        base.peer_auth = PeerAuth::Certificate { verifier: v };
    }
    let secrets = conf.secrets.clone();
    let lookup: SecretLookup = Arc::new(move |local: &Identity, peer: &Identity| {
        select_psk(&secrets, local, Some(peer)).map(|s| s.secret.0.clone())
    });
    Ok(DriverInputs {
        base: Arc::new(base),
        conns,
        secrets: lookup,
        local_addrs: locals,
        pools,
    })
}

/// The host's addresses (from `ip -o addr show`), to pick a route's source address.
fn host_addresses() -> Vec<IpAddr> {
    let Ok(out) = Process::new("ip").args(["-o", "addr", "show"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|t| *t == "inet" || *t == "inet6")?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// Applies route changes with `ip route` (iproute2): the gateway has no netlink
/// library, and a route per Child SA is a control-plane rate, so a process per change
/// is fine.
struct Routes {
    dev: String,
    enabled: bool,
    installed: Vec<Vec<(IpAddr, u8)>>,
    /// Virtual addresses added to the TUN device (`vips`).
    addresses: Vec<IpAddr>,
}

impl Routes {
    fn apply(&mut self, change: RouteChange) {
        if !self.enabled {
            return;
        }
        match change {
            RouteChange::Add { dst, local_ts } => {
                // A virtual address of ours inside the selector first (the selector
                // is narrowed to it), else a host address.
                let src = self
                    .addresses
                    .iter()
                    .find(|a| local_ts.contains_addr(**a))
                    .copied()
                    .or_else(|| source_in(&local_ts));
                for (a, l) in &dst {
                    let prefix = format!("{a}/{l}");
                    let mut args = vec!["route", "replace", &prefix, "dev", &self.dev];
                    let s;
                    if let Some(x) = src.filter(|x| x.is_ipv4() == a.is_ipv4()) {
                        s = x.to_string();
                        args.extend(["src", &s]);
                    }
                    run_ip(&args);
                }
                self.installed.push(dst);
            }
            RouteChange::Remove { dst } => {
                for (a, l) in &dst {
                    let prefix = format!("{a}/{l}");
                    run_ip(&["route", "del", &prefix, "dev", &self.dev]);
                }
                self.installed.retain(|d| *d != dst);
            }
            RouteChange::AddAddress { addr } => {
                let a = host_prefix(addr);
                run_ip(&["addr", "replace", &a, "dev", &self.dev]);
                if !self.addresses.contains(&addr) {
                    self.addresses.push(addr);
                }
            }
            RouteChange::RemoveAddress { addr } => {
                run_ip(&["addr", "del", &host_prefix(addr), "dev", &self.dev]);
                self.addresses.retain(|a| *a != addr);
            }
        }
    }

    fn remove_all(&mut self) {
        for dst in std::mem::take(&mut self.installed) {
            for (a, l) in &dst {
                let prefix = format!("{a}/{l}");
                run_ip(&["route", "del", &prefix, "dev", &self.dev]);
            }
        }
        for a in std::mem::take(&mut self.addresses) {
            run_ip(&["addr", "del", &host_prefix(a), "dev", &self.dev]);
        }
    }
}

/// `a` as a host prefix (`/32`, `/128`) for `ip addr`.
fn host_prefix(a: IpAddr) -> String {
    format!("{a}/{}", if a.is_ipv4() { 32 } else { 128 })
}

fn source_in(ts: &TrafficSelector) -> Option<IpAddr> {
    let addrs = host_addresses();
    let inside = |a: &&IpAddr| ts.contains_addr(**a);
    addrs
        .iter()
        .filter(inside)
        .find(|a| !a.is_loopback())
        .or_else(|| addrs.iter().find(inside))
        .copied()
}

fn run_ip(args: &[&str]) {
    match Process::new("ip").args(args).output() {
        Ok(o) if o.status.success() => debug!(cmd = %args.join(" "), "ip"),
        Ok(o) => {
            warn!(cmd = %args.join(" "), err = %String::from_utf8_lossy(&o.stderr).trim(), "ip failed")
        }
        Err(e) => warn!(cmd = %args.join(" "), error = %e, "ip not run"),
    }
}

/// A UDP socket on port 500 and its reader thread.
struct IkeSocket {
    socket: UdpSocket,
    thread: Option<JoinHandle<()>>,
}

fn ike_socket(
    addr: SocketAddr,
    to: Sender<ToControl>,
    stop: Arc<AtomicBool>,
) -> Result<IkeSocket, GatewayError> {
    let socket = UdpSocket::bind(addr).map_err(io_err(format!("bind {addr}")))?;
    socket
        .set_read_timeout(Some(StdDuration::from_millis(200)))
        .map_err(io_err("socket option"))?;
    let reader = socket.try_clone().map_err(io_err("socket clone"))?;
    let local = socket.local_addr().map_err(io_err("socket address"))?;
    let thread = thread::Builder::new()
        .name(format!("ike-{local}"))
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                match reader.recv_from(&mut buf) {
                    Ok((n, remote)) => {
                        let d = IkeDatagram {
                            local,
                            remote,
                            payload: buf[..n].to_vec(),
                        };
                        if to.send(ToControl::Ike(d)).is_err() {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => {
                        warn!(error = %e, "IKE socket");
                        thread::sleep(StdDuration::from_millis(50));
                    }
                }
            }
        })
        .map_err(io_err("thread"))?;
    Ok(IkeSocket {
        socket,
        thread: Some(thread),
    })
}

/// Runs the gateway for `conf` until `stop` is set, then deletes every IKE SA (waiting
/// up to [`GatewayOptions::shutdown_wait`] for the answers), removes its routes and
/// stops its threads. `ready` is called once everything is up, with the TUN device's
/// name and the metrics address.
///
/// # Errors
/// [`GatewayError`] when something cannot be set up.
pub fn run(
    conf: &GatewayConfig,
    opts: &GatewayOptions,
    provider: &'static CryptoProvider,
    stop: &AtomicBool,
    ready: impl FnOnce(&str, Option<SocketAddr>),
) -> Result<(), GatewayError> {
    let creds = match &opts.conf_dir {
        Some(dir) => Credentials::load(dir, conf, provider).map_err(GatewayError::Config)?,
        None => Credentials::none(),
    };
    let inputs = driver_inputs(conf, &creds, opts.retransmit)?;
    let sad = Arc::new(
        Sad::new(provider, SadConfig::new()).map_err(|e| GatewayError::Sad(e.to_string()))?,
    );
    let (tx, rx) = mpsc::channel::<ToControl>();
    let mut tun = TunConfig::new().mtu(opts.mtu);
    if let Some(name) = &opts.tun {
        tun = tun.name(name.clone());
    }
    let dp_cfg = DataplaneConfig::new(inputs.local_addrs.clone())
        .workers(opts.workers.max(1))
        .tun(tun);
    let dp = Dataplane::start(Arc::clone(&sad), dp_cfg, tx.clone())
        .map_err(io_err("data plane (TUN device, port 4500)"))?;
    let dev = dp.tun_name().unwrap_or_default().to_string();
    let threads_stop = Arc::new(AtomicBool::new(false));
    let mut ike_sockets = HashMap::new();
    for a in &inputs.local_addrs {
        let s = ike_socket(
            SocketAddr::new(*a, IKE_PORT),
            tx.clone(),
            Arc::clone(&threads_stop),
        )?;
        ike_sockets.insert(*a, s);
    }
    let cluster_tx = tx.clone();
    drop(tx);
    let mut driver = Driver::new(
        inputs.base,
        inputs.conns,
        inputs.secrets,
        Arc::clone(&sad),
        provider,
    )
    .map_err(|e| GatewayError::Config(e.to_string()))?;
    driver.set_pools(inputs.pools);
    let cluster = match &opts.cluster {
        Some(c) => {
            driver.keep_notices(true);
            match c.spi_space {
                Some(s) => driver.set_child_spi_space(s),
                None => warn!(
                    "cluster node without an SPI index: two nodes may choose the same inbound SPI"
                ),
            }
            Some(
                Cluster::start(c.clone(), Arc::clone(&sad), cluster_tx)
                    .map_err(io_err(format!("cluster socket {}", c.listen)))?,
            )
        }
        None => {
            drop(cluster_tx);
            None
        }
    };
    let (req_tx, req_rx) = mpsc::channel::<Request>();
    let control = match &opts.control {
        Some(p) => Some(
            control::serve_control(p, req_tx.clone())
                .map_err(io_err(format!("control socket {}", p.display())))?,
        ),
        None => None,
    };
    let (metrics, metrics_addr) = match opts.metrics {
        Some(a) => {
            let (l, bound) = control::serve_metrics(a, req_tx.clone())
                .map_err(io_err(format!("metrics {a}")))?;
            (Some(l), Some(bound))
        }
        None => (None, None),
    };
    drop(req_tx);
    let mut routes = Routes {
        dev: dev.clone(),
        enabled: opts.routes,
        installed: Vec::new(),
        addresses: Vec::new(),
    };
    info!(tun = %dev, addrs = ?inputs.local_addrs, "gateway up");
    ready(&dev, metrics_addr);
    driver.start(dataplane::now());
    let result = control_loop(
        &mut driver,
        &dp,
        &ike_sockets,
        &mut routes,
        &rx,
        &req_rx,
        stop,
        opts.shutdown_wait,
        cluster.as_ref(),
    );
    if let Some(c) = cluster {
        c.stop();
    }
    routes.remove_all();
    threads_stop.store(true, Ordering::Relaxed);
    for (_, mut s) in ike_sockets {
        if let Some(t) = s.thread.take() {
            let _ = t.join();
        }
    }
    if let Some(c) = control {
        c.stop();
    }
    if let Some(m) = metrics {
        m.stop();
    }
    dp.shutdown();
    info!("gateway stopped");
    result
}

/// `ipsec status`: the driver's view, and the cluster's when there is one.
fn status_json(driver: &Driver, cluster: Option<&Cluster>, now: Instant) -> String {
    let mut v = match serde_json::to_value(driver.status(now)) {
        Ok(v) => v,
        Err(e) => return format!("error: {e}"),
    };
    if let (Some(c), Some(obj)) = (cluster, v.as_object_mut()) {
        obj.insert(
            "cluster".into(),
            serde_json::to_value(c.view()).unwrap_or_default(),
        );
    }
    v.to_string()
}

#[allow(clippy::too_many_arguments)]
fn control_loop(
    driver: &mut Driver,
    dp: &Dataplane,
    ike_sockets: &HashMap<IpAddr, IkeSocket>,
    routes: &mut Routes,
    rx: &Receiver<ToControl>,
    requests: &Receiver<Request>,
    stop: &AtomicBool,
    shutdown_wait: StdDuration,
    cluster: Option<&Cluster>,
) -> Result<(), GatewayError> {
    let sender = dp.ike_sender();
    let mut stopping: Option<Instant> = None;
    let send = |t: &ipsec::ike::Transmit| {
        let r = if t.local.port() == IKE_PORT {
            match ike_sockets.get(&t.local.ip()) {
                Some(s) => s.socket.send_to(&t.payload, t.remote).map(|_| ()),
                None => Err(io::Error::other("no socket for this address")),
            }
        } else {
            sender.send(t.local, t.remote, &t.payload)
        };
        if let Err(e) = r {
            debug!(local = %t.local, remote = %t.remote, error = %e, "send");
        }
    };
    loop {
        let now = dataplane::now();
        // The cluster first: it asks for the state writes that answers wait for.
        if let Some(c) = cluster {
            c.work(driver, now);
        }
        // Outputs: datagrams (answers held back until their IKE SA's state is in
        // the cluster's store), then routes.
        while let Some(t) = driver.poll_transmit() {
            match cluster {
                Some(c) => {
                    if let Some(t) = c.hold(t, now) {
                        send(&t);
                    }
                }
                None => send(&t),
            }
        }
        if let Some(c) = cluster {
            for t in c.release(now) {
                send(&t);
            }
        }
        while let Some(r) = driver.poll_route() {
            routes.apply(r);
        }
        if stop.load(Ordering::Relaxed) && cluster.is_some() {
            // The other nodes serve on: leave without deleting anything.
            info!("stopping: leaving the cluster");
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) && stopping.is_none() {
            info!("stopping: deleting every IKE SA");
            driver.shutdown(now);
            stopping = Some(now + Duration::from_nanos(shutdown_wait.as_nanos() as u64));
            continue;
        }
        if let Some(until) = stopping {
            if driver.is_idle() || now >= until {
                return Ok(());
            }
        }
        let wait = driver
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(now)
            })
            .min(Duration::from_millis(50));
        match rx.recv_timeout(StdDuration::from_nanos(wait.as_nanos() as u64)) {
            Ok(ToControl::Ike(d)) => {
                if !cluster.is_some_and(|c| c.route_ike(&d)) {
                    driver.handle_datagram(dataplane::now(), d.local, d.remote, &d.payload);
                }
            }
            Ok(ToControl::Forwarded(d)) => {
                driver.handle_datagram(dataplane::now(), d.local, d.remote, &d.payload);
            }
            Ok(ToControl::Wake) => {}
            Ok(ToControl::SadEvent) => driver.handle_sad_events(dataplane::now()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(GatewayError::Io {
                    what: "data plane".into(),
                    err: io::Error::other("stopped"),
                })
            }
        }
        while let Ok(req) = requests.try_recv() {
            let now = dataplane::now();
            let answer = match &req.command {
                Command::Status => status_json(driver, cluster, now),
                Command::Initiate(name) => match driver.initiate_by_name(now, name) {
                    Ok(()) => "initiating".into(),
                    Err(e) => format!("error: {e}"),
                },
                Command::Redirect { target, to } => match driver.redirect_by(now, target, to) {
                    Ok(n) => format!("redirecting {n} IKE SA(s) to {to}"),
                    Err(e) => format!("error: {e}"),
                },
                Command::Metrics => {
                    let st = dp.stats();
                    let drops: Vec<(String, u64)> = st
                        .drops()
                        .filter(|(_, n)| *n > 0)
                        .map(|(r, n)| (format!("{r:?}"), n))
                        .collect();
                    metrics::render(&driver.status(now), &driver.endpoint().stats(), &drops)
                }
            };
            let _ = req.reply.send(answer);
        }
        let now = dataplane::now();
        if driver.poll_timeout().is_some_and(|t| t <= now) {
            driver.handle_timeout(now);
        }
    }
}
