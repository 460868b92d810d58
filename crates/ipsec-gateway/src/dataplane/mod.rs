//! The data plane: IP packets between a TUN device and ESP-in-UDP sockets (RFC 3948,
//! port 4500) on worker threads, through a shared [`Sad`].
//!
//! ```text
//!            worker w (one per core)
//! TUN queue w ──> outbound thread ── Sad::process_outbound_udp ──> NAT-T socket ──> peer
//! TUN queue w <── inbound thread  <── SadReader::process_inbound_udp <── NAT-T socket <── peer
//!                       │ IKE (Non-ESP Marker)            ▲
//!                       ▼                                 │ IkeSender
//!                 control channel (ToControl) ── control loop
//! ```
//!
//! Each worker has a queue of one multi-queue TUN device and, per local address, a UDP
//! socket bound with `SO_REUSEPORT` to the same address and port as the other workers'
//! sockets, so the kernel spreads peers (by 4-tuple) over the workers. A worker runs
//! one outbound thread (its TUN queue) and one inbound thread per socket; every thread
//! allocates its buffers once, and each inbound thread has its own
//! [`SadReader`](ipsec::sad::SadReader). Both move packets in batches: TUN offload
//! (one read carries up to 64 KB of a TCP flow, cut into MTU-sized packets; writes
//! coalesce them again), UDP GSO sends and UDP GRO receives (see `worker`'s docs).
//! The control loop installs SAs and policies
//! into the same `Arc<Sad>`, answers [`ToControl`] messages, and sends IKE through an
//! [`IkeSender`].
//!
//! Time: every thread reads [`now`], a monotonic clock shared by the whole process. The
//! control loop must give the SAD the same clock (`add_sa`, `handle_timeout`), since
//! lifetimes and the acquire rate limit compare the two.

#[cfg(target_os = "linux")]
mod gro;
mod stats;
mod tun;
mod udp;
mod vocab;
mod worker;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use ipsec::sad::Sad;

pub use stats::{DataplaneDrop, DataplaneStats, Traffic};
pub use tun::TunConfig;
pub use udp::IkeSender;
pub use vocab::{now, IkeDatagram, PacketDevice, ToControl, DEVICE_HEADROOM, NAT_T_PORT};

use stats::Counters;
use worker::Shared;

/// How to run the data plane ([`Dataplane::start`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataplaneConfig {
    /// The local addresses to receive ESP-in-UDP and IKE on. Each gets a UDP socket per
    /// worker, bound with `SO_REUSEPORT`. Use specific addresses: a wildcard address
    /// is reported as the local address of what arrives on it (the data plane does not
    /// read the packet's real destination), which only SAs looked up by SPI accept.
    pub local_addrs: Vec<IpAddr>,
    /// The UDP port, [`NAT_T_PORT`] by default. 0 binds a free port (the same one for
    /// every worker; see [`Dataplane::local_addrs`]), for tests.
    pub port: u16,
    /// The number of workers (at least 1). Default: the number of CPUs.
    pub workers: usize,
    /// The TUN device [`Dataplane::start`] creates (not used by
    /// [`Dataplane::start_with_device`]).
    pub tun: TunConfig,
}

impl DataplaneConfig {
    /// Port 4500 on `local_addrs`, one worker per CPU, the default [`TunConfig`].
    pub fn new(local_addrs: Vec<IpAddr>) -> Self {
        DataplaneConfig {
            local_addrs,
            port: NAT_T_PORT,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tun: TunConfig::default(),
        }
    }

    /// Sets the UDP port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the number of workers.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets the TUN device.
    pub fn tun(mut self, tun: TunConfig) -> Self {
        self.tun = tun;
        self
    }
}

/// The running data plane: worker threads moving packets between the packet devices
/// and the NAT-T sockets. Dropping it stops it as [`Dataplane::shutdown`] does.
pub struct Dataplane {
    shared: Arc<Shared>,
    devices: Vec<Arc<dyn PacketDevice>>,
    threads: Vec<JoinHandle<()>>,
    counters: Vec<Arc<Counters>>,
    ike: IkeSender,
    tun_name: Option<String>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("workers", &self.devices.len())
            .field("threads", &self.threads.len())
            .field("local_addrs", &self.ike.local_addrs())
            .field("tun_name", &self.tun_name)
            .finish_non_exhaustive()
    }
}

impl Dataplane {
    /// Creates the TUN device (`cfg.tun`, multi-queue with one queue per worker), binds
    /// the NAT-T sockets and starts `cfg.workers` workers. Creating the TUN device needs
    /// `CAP_NET_ADMIN`.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] for no workers or no local address; the TUN
    /// device's or a socket's error (an address not on this host, a port in use
    /// without `SO_REUSEPORT`); on other systems than Linux,
    /// [`io::ErrorKind::Unsupported`].
    pub fn start(
        sad: Arc<Sad>,
        cfg: DataplaneConfig,
        to_control: Sender<ToControl>,
    ) -> io::Result<Dataplane> {
        check(&cfg, cfg.workers)?;
        let (name, devices) = tun::create(&cfg.tun, cfg.workers)?;
        let mut dp = Self::start_with_device(sad, cfg, devices, to_control)?;
        dp.tun_name = Some(name);
        Ok(dp)
    }

    /// As [`Dataplane::start`], on packet devices the caller made: one per worker
    /// (`cfg.workers` is taken to be `device.len()`; pass the same device several
    /// times to share one). `cfg.tun` is not used.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] for no devices or no local address; a socket's
    /// error.
    pub fn start_with_device(
        sad: Arc<Sad>,
        cfg: DataplaneConfig,
        device: Vec<Arc<dyn PacketDevice>>,
        to_control: Sender<ToControl>,
    ) -> io::Result<Dataplane> {
        let workers = device.len();
        check(&cfg, workers)?;
        let sockets = udp::bind_all(&cfg.local_addrs, cfg.port, workers)?;
        let shared = Arc::new(Shared {
            sad,
            stop: AtomicBool::new(false),
            to_control,
            last_signal: AtomicU64::new(0),
        });
        let ike_counters = Arc::new(Counters::default());
        let ike = IkeSender::new(
            sockets.first().cloned().unwrap_or_default(),
            ike_counters.clone(),
        );
        let mut dp = Dataplane {
            shared,
            devices: device,
            threads: Vec::new(),
            counters: vec![ike_counters],
            ike,
            tun_name: None,
        };
        for (w, socks) in sockets.into_iter().enumerate() {
            let Some(dev) = dp.devices.get(w).cloned() else {
                break;
            };
            let c = Arc::new(Counters::default());
            dp.counters.push(c.clone());
            let (sh, d, s) = (dp.shared.clone(), dev.clone(), socks.clone());
            dp.spawn(format!("dp-out-{w}"), move || {
                worker::outbound(&sh, &*d, s, &c);
            })?;
            for (j, sock) in socks.into_iter().enumerate() {
                let c = Arc::new(Counters::default());
                dp.counters.push(c.clone());
                let (sh, d) = (dp.shared.clone(), dev.clone());
                dp.spawn(format!("dp-in-{w}-{j}"), move || {
                    worker::inbound(&sh, &*d, &sock, &c);
                })?;
            }
        }
        tracing::info!(
            workers,
            local = ?dp.ike.local_addrs(),
            "data plane started"
        );
        Ok(dp)
    }

    /// Spawns a worker thread; on failure the threads already running are stopped
    /// when `self` is dropped.
    fn spawn(&mut self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let h = std::thread::Builder::new().name(name).spawn(f)?;
        self.threads.push(h);
        Ok(())
    }

    /// A sender of IKE datagrams out of the NAT-T sockets (clone it freely).
    pub fn ike_sender(&self) -> IkeSender {
        self.ike.clone()
    }

    /// The name of the TUN device [`Dataplane::start`] created (`None` with
    /// [`Dataplane::start_with_device`]).
    pub fn tun_name(&self) -> Option<&str> {
        self.tun_name.as_deref()
    }

    /// The addresses the NAT-T sockets are bound to, with the port actually bound (one
    /// per configured local address).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.ike.local_addrs()
    }

    /// The SAD the workers process packets with.
    pub fn sad(&self) -> &Arc<Sad> {
        &self.shared.sad
    }

    /// The counters of all workers summed: packets and bytes at each point, drops by
    /// reason (the SAD's verdicts as the workers saw them, and the data plane's own).
    pub fn stats(&self) -> DataplaneStats {
        stats::sum(self.counters.iter().map(|c| &**c))
    }

    /// Stops every worker and waits for them: at most one receive timeout (100 ms on
    /// the sockets; TUN reads are interrupted at once).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for d in &self.devices {
            d.interrupt();
        }
        for h in self.threads.drain(..) {
            if h.join().is_err() {
                tracing::error!("a data-plane thread panicked");
            }
        }
        tracing::info!("data plane stopped");
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(cfg: &DataplaneConfig, workers: usize) -> io::Result<()> {
    if workers == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the data plane needs at least one worker",
        ));
    }
    if cfg.local_addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the data plane needs at least one local address",
        ));
    }
    Ok(())
}
