//! `ipsec gateway` and `ipsec status`: the VPN gateway of `ipsec-gateway` from the
//! command line, and its status through the control socket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ipsec_gateway::cluster::{ClusterOptions, SnapshotHook};
use ipsec_gateway::conf::load_swanctl;
use ipsec_gateway::gateway::{self, GatewayOptions};
use serde_json::Value;

use crate::Backend;

/// The control socket when `--control` is not given.
pub const DEFAULT_CONTROL: &str = "/run/ipsec-gateway.sock";

/// Options of `ipsec gateway`.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewayArgs {
    /// The configuration: strongSwan's swanctl.conf (the subset in docs/gateway.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The TUN device's name (default: the kernel chooses, tunN).
    #[arg(long, value_name = "NAME")]
    pub tun: Option<String>,
    /// The TUN device's MTU.
    #[arg(long, default_value_t = 1400)]
    pub mtu: u16,
    /// The control socket `ipsec status` asks.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTROL)]
    pub control: PathBuf,
    /// Serve Prometheus metrics over HTTP at this address (e.g. 127.0.0.1:9400).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Data-plane worker threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Do not add routes through the TUN device for the Child SAs.
    #[arg(long)]
    pub no_routes: bool,
    /// IKE retransmissions before a peer is given up (strongSwan's
    /// charon.retransmit_tries); with --retransmit-timeout.
    #[arg(long, default_value_t = 6)]
    pub retransmit_tries: u32,
    /// Seconds before the first IKE retransmission; each further wait doubles, up to
    /// 32 s (strongSwan's charon.retransmit_timeout). DPD declares a peer dead when
    /// the retransmissions of its liveness check run out.
    #[arg(long, default_value_t = 1.0)]
    pub retransmit_timeout: f64,
    /// Crypto provider.
    #[arg(long, value_enum, default_value = "composed")]
    pub backend: Backend,
    /// Join an anycast cluster through this store (`etcd://HOST:PORT[,HOST:PORT]`;
    /// needs a build with the `etcd` feature); docs/scale-out.md.
    #[arg(long, value_name = "URL", requires_all = ["node", "node_index", "cluster_key", "cluster_listen"])]
    pub cluster: Option<String>,
    /// This node's name in the cluster.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,
    /// This node's index in the cluster, 0 to 255, unique among its nodes: the top
    /// byte of every inbound SPI it chooses, so two nodes never choose the same one.
    #[arg(long, value_name = "K", requires = "cluster", value_parser = clap::value_parser!(u32).range(0..=255))]
    pub node_index: Option<u32>,
    /// The cluster key: 64 hex characters (32 bytes) that seal SA keys in the store.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_key: Option<PathBuf>,
    /// Where this node takes IKE messages the other nodes forward (UDP, on the
    /// cluster network).
    #[arg(long, value_name = "ADDR", requires = "cluster")]
    pub cluster_listen: Option<SocketAddr>,
    /// With --cluster: append every SA this node installs or imports to DIR/esp_sa
    /// (Wireshark's key table, for `ipsec decode`; mode 0600). A debugging and test
    /// aid: it writes SA keys to disk.
    #[arg(long, value_name = "DIR", requires = "cluster")]
    pub keys: Option<PathBuf>,
}

/// Runs the gateway until SIGINT or SIGTERM.
///
/// # Errors
/// The configuration, or what the gateway could not set up.
pub fn run(args: &GatewayArgs) -> Result<(), String> {
    init_logging();
    let conf = load_swanctl(&args.config).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let mut opts = GatewayOptions::default();
    opts.tun = args.tun.clone();
    opts.mtu = args.mtu;
    opts.control = Some(args.control.clone());
    opts.metrics = args.metrics;
    opts.routes = !args.no_routes;
    // swanctl's credential directories (x509/, x509ca/, private/, ...) beside the file.
    opts.conf_dir = Some(
        args.config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            ),
    );
    if !(args.retransmit_timeout > 0.0 && args.retransmit_timeout < 3600.0)
        || args.retransmit_tries == 0
    {
        return Err(
            "--retransmit-timeout must be in (0, 3600) s and --retransmit-tries at least 1".into(),
        );
    }
    let initial = ipsec::core::Duration::from_millis((args.retransmit_timeout * 1000.0) as u64);
    let defaults = ipsec::ike::Retransmit::default();
    let r = ipsec::ike::Retransmit {
        initial,
        max_tries: args.retransmit_tries,
        max_wait: defaults.max_wait.max(initial),
        ..defaults
    };
    opts.retransmit = Some(r);
    if let Some(w) = args.workers {
        opts.workers = w;
    }
    if let Some(url) = &args.cluster {
        opts.cluster = Some(cluster_options(args, url)?);
    }
    gateway::run(
        &conf,
        &opts,
        args.backend.provider(),
        &stop,
        |tun, metrics| {
            let m =
                metrics.map_or_else(String::new, |m| format!(", metrics on http://{m}/metrics"));
            eprintln!("ipsec gateway: up on {tun}{m}");
        },
    )
    .map_err(|e| e.to_string())
}

/// The cluster options of `--cluster` and its companions.
fn cluster_options(args: &GatewayArgs, url: &str) -> Result<ClusterOptions, String> {
    let url = ipsec_cluster::ClusterUrl::parse(url).map_err(|e| format!("--cluster: {e}"))?;
    let (Some(node), Some(index), Some(key), Some(listen)) = (
        &args.node,
        args.node_index,
        &args.cluster_key,
        args.cluster_listen,
    ) else {
        return Err(
            "--cluster needs --node, --node-index, --cluster-key and --cluster-listen".into(),
        );
    };
    let spi_space =
        ipsec::ike::SpiSpace::new(index, 8).map_err(|e| format!("--node-index: {e}"))?;
    let key = ipsec_cluster::ClusterKey::load(key)
        .map_err(|e| format!("--cluster-key {}: {e}", key.display()))?;
    let store = connect(&url)?;
    let on_snapshot = match &args.keys {
        Some(dir) => Some(key_table_writer(dir)?),
        None => None,
    };
    let mut opts = ClusterOptions::new(store, node.clone(), Arc::new(key), listen);
    opts.on_snapshot = on_snapshot;
    opts.spi_space = Some(spi_space);
    Ok(opts)
}

#[cfg(feature = "etcd")]
fn connect(url: &ipsec_cluster::ClusterUrl) -> Result<Arc<dyn ipsec_cluster::Store>, String> {
    let s = ipsec_cluster::EtcdStore::connect_url(url, std::time::Duration::from_secs(1))
        .map_err(|e| format!("--cluster: {e}"))?;
    Ok(Arc::new(s))
}

#[cfg(not(feature = "etcd"))]
fn connect(_: &ipsec_cluster::ClusterUrl) -> Result<Arc<dyn ipsec_cluster::Store>, String> {
    Err(
        "--cluster: this ipsec was built without the `etcd` feature \
         (cargo build --release -p ipsec-cli --features etcd)"
            .into(),
    )
}

/// Appends both directions of every snapshot to `dir/esp_sa`.
fn key_table_writer(dir: &Path) -> Result<SnapshotHook, String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    // Keys: readable by us alone.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("--keys {}: {e}", dir.display()))?;
    let path = dir.join("esp_sa");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("--keys {}: {e}", path.display()))?;
    let file = std::sync::Mutex::new(file);
    Ok(Arc::new(move |snap: &ipsec_sad::SaSnapshot| {
        use ipsec::core::iana::{EncrId, IntegId};
        let Some(encr) = snap
            .encr
            .and_then(|e| ipsec::crypto::suites::encr(EncrId(e), snap.encr_key_bits))
        else {
            return;
        };
        let integ = (snap.integ != 0)
            .then(|| ipsec::crypto::suites::integ(IntegId(snap.integ)))
            .flatten();
        let rows = [
            (
                snap.remote_addr,
                snap.local_addr,
                snap.inbound_spi,
                &snap.inbound_keys,
            ),
            (
                snap.local_addr,
                snap.remote_addr,
                snap.outbound_spi,
                &snap.outbound_keys,
            ),
        ];
        let mut text = String::new();
        for (src, dst, spi, k) in rows {
            text.push_str(&crate::keyfile::esp_sa_line(
                &src.to_string(),
                &dst.to_string(),
                spi,
                encr,
                &k.encr,
                integ,
                &k.integ,
            ));
            text.push('\n');
        }
        let mut f = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = std::io::Write::write_all(&mut *f, text.as_bytes());
    }))
}

/// The log filter without `RUST_LOG`: the gateway's own lines at `info`; of the library
/// layers (their `tracing` feature) only warnings, since the gateway already reports
/// their transitions. `RUST_LOG=info,ipsec_ike=debug` adds the IKE drops and transitions.
const DEFAULT_LOG_FILTER: &str = "info,ipsec_ike=warn,ipsec_sad=warn,ipsec_esp=warn";

/// Logs to stderr, filtered by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `ipsec status`: the gateway's IKE SAs and Child SAs.
///
/// # Errors
/// The control socket cannot be reached, or the answer is not the status.
pub fn status(control: &Path, json: bool) -> Result<(), String> {
    let answer = ipsec_gateway::control::request(control, "status")?;
    if json {
        outln!("{}", answer.trim());
        return Ok(());
    }
    let v: Value = serde_json::from_str(&answer).map_err(|e| format!("bad answer: {e}"))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let sas = v
        .get("ike_sas")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sa in &sas {
        outln!(
            "{}: #{}, {}, IKEv2, {}_i {}_r",
            s(sa, "connection"),
            n(sa, "handle"),
            s(sa, "state"),
            s(sa, "local_spi"),
            s(sa, "remote_spi")
        );
        outln!("  local  '{}' @ {}", s(sa, "local_id"), s(sa, "local"));
        outln!("  remote '{}' @ {}", s(sa, "remote_id"), s(sa, "remote"));
        if let Some(e) = sa.get("eap_id").and_then(Value::as_str) {
            outln!("  remote EAP identity '{e}'");
        }
        let vips: Vec<&str> = sa
            .get("virtual_ips")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !vips.is_empty() {
            let whose = if sa.get("initiator").and_then(Value::as_bool) == Some(true) {
                "local"
            } else {
                "remote"
            };
            outln!("  {whose} virtual IP {}", vips.join(" "));
        }
        let rekey = sa
            .get("rekey_in_secs")
            .and_then(Value::as_u64)
            .map_or_else(String::new, |r| format!(", rekeying in {r}s"));
        outln!("  {}", s(sa, "suite"));
        outln!("  established {}s ago{rekey}", n(sa, "age_secs"));
        for c in sa
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rekey = c
                .get("rekey_in_secs")
                .and_then(Value::as_u64)
                .map_or_else(String::new, |r| format!(", rekeying in {r}s"));
            outln!(
                "  child #{}: INSTALLED, {}{}, ESP SPIs: {}_i {}_o",
                n(c, "id"),
                s(c, "mode"),
                if c.get("udp_encap").and_then(Value::as_bool) == Some(true) {
                    "-in-UDP"
                } else {
                    ""
                },
                s(c, "spi_in"),
                s(c, "spi_out")
            );
            outln!("    {}", s(c, "suite"));
            outln!(
                "    in  {} bytes, {} packets; out {} bytes, {} packets",
                n(c, "bytes_in"),
                n(c, "packets_in"),
                n(c, "bytes_out"),
                n(c, "packets_out")
            );
            outln!("    installed {}s ago{rekey}", n(c, "age_secs"));
            let ts = |k: &str| {
                c.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            };
            outln!("    local  {}", ts("local_ts"));
            outln!("    remote {}", ts("remote_ts"));
        }
    }
    if sas.is_empty() {
        outln!("no IKE SAs");
    }
    for p in v
        .get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        outln!(
            "pool {} ({}): {} addresses, {} online, {} offline",
            s(p, "name"),
            s(p, "addrs"),
            n(p, "size"),
            n(p, "online"),
            n(p, "offline")
        );
        for l in p
            .get("leases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            outln!(
                "  {} '{}' {}",
                s(l, "address"),
                s(l, "identity"),
                if l.get("online").and_then(Value::as_bool) == Some(true) {
                    "online"
                } else {
                    "offline"
                }
            );
        }
    }
    if let Some(c) = v.get("cluster") {
        print_cluster(c);
    }
    Ok(())
}

/// The cluster part of `ipsec status`: nodes, IKE SA owners, blocks of sequence
/// numbers.
fn print_cluster(c: &Value) {
    let arr = |k: &str| {
        c.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let node = c.get("node").and_then(Value::as_str).unwrap_or("");
    let ok = c.get("store_ok").and_then(Value::as_bool) == Some(true);
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    outln!(
        "cluster: node {node}, store {}, {} Child SAs ({} imported here), {} blocks leased",
        if ok { "reachable" } else { "UNREACHABLE" },
        n("child_sas"),
        n("replicas"),
        n("blocks_leased")
    );
    let fw = arr("forwarded");
    outln!(
        "  IKE messages forwarded to owners: {}, from other nodes: {}",
        fw.first().and_then(Value::as_u64).unwrap_or(0),
        fw.get(1).and_then(Value::as_u64).unwrap_or(0)
    );
    for nd in arr("nodes") {
        let name = nd.get(0).and_then(Value::as_str).unwrap_or("");
        let addr = nd.get(1).and_then(Value::as_str).unwrap_or("");
        let me = if name == node { " (this node)" } else { "" };
        outln!("  node {name} @ {addr}{me}");
    }
    for o in arr("owners") {
        outln!(
            "  IKE SA {} owned by {}",
            o.get(0).and_then(Value::as_str).unwrap_or(""),
            o.get(1).and_then(Value::as_str).unwrap_or("")
        );
    }
    for l in arr("leases") {
        outln!(
            "  block {}..={} of SA {} held by {}",
            l.get(2).and_then(Value::as_u64).unwrap_or(0),
            l.get(3).and_then(Value::as_u64).unwrap_or(0),
            l.get(1).and_then(Value::as_str).unwrap_or(""),
            l.get(0).and_then(Value::as_str).unwrap_or("")
        );
    }
}
