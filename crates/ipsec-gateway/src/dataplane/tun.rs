//! The TUN device through tun-rs: one multi-queue device, one queue per worker.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::Duration;

use super::vocab::PacketDevice;

/// The TUN device to create ([`Dataplane::start`](super::Dataplane::start)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunConfig {
    /// The interface name; `None` lets the kernel choose (`tun0`, ...).
    pub name: Option<String>,
    /// The MTU. Default 1400: a 1500-byte path less the ESP-in-UDP overhead (outer IPv6
    /// 40, UDP 8, ESP 8, IV 8, trailer and ICV up to 33) with room to spare.
    pub mtu: u16,
    /// Addresses to put on the interface, with their prefix lengths. Routes to the
    /// remote subnets are the operator's (or the control plane's) business.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Segmentation offload (Linux `IFF_VNET_HDR`, TSO/USO): the kernel hands the data
    /// plane TCP (and UDP) segments of up to 64 KB, which it splits into MTU-sized
    /// packets before sealing them, and takes back coalesced ones (GRO), so that one
    /// system call and one pass through the kernel's stack carry tens of packets.
    /// Default: on.
    pub offload: bool,
}

impl Default for TunConfig {
    fn default() -> Self {
        TunConfig {
            name: None,
            mtu: 1400,
            addresses: Vec::new(),
            offload: true,
        }
    }
}

impl TunConfig {
    /// The defaults: a kernel-chosen name, MTU 1400, no addresses, offload on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the interface name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the MTU.
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }

    /// Turns segmentation offload on or off.
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    /// Adds an address with its prefix length.
    pub fn address(mut self, addr: IpAddr, prefix: u8) -> Self {
        self.addresses.push((addr, prefix));
        self
    }
}

/// How long a blocked TUN read waits before the worker looks at its stop flag (the
/// interrupt event normally wakes it first).
#[cfg(target_os = "linux")]
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// One queue of a tun-rs device, readable until its interrupt event fires.
#[cfg(target_os = "linux")]
struct TunQueue {
    dev: tun_rs::SyncDevice,
    event: Arc<tun_rs::InterruptEvent>,
    /// The GRO state of `send_multiple` (one writer per socket shares a queue, so
    /// the lock is all but uncontended; taken once per batch).
    gro: std::sync::Mutex<tun_rs::GROTable>,
}

#[cfg(target_os = "linux")]
impl PacketDevice for TunQueue {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.dev.tcp_gso() {
            return Err(offloading("read with recv_multiple"));
        }
        // Under load a packet is there: read first, wait only when there is none.
        match self.dev.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self
                .dev
                .recv_intr_timeout(buf, &self.event, Some(READ_TIMEOUT)),
            r => r,
        }
    }

    fn send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.dev.tcp_gso() {
            return Err(offloading("written with send_multiple"));
        }
        self.dev.send(packet)
    }

    fn interrupt(&self) {
        if let Err(e) = self.event.trigger() {
            tracing::warn!(error = %e, "could not interrupt a TUN read");
        }
    }

    fn recv_multiple(
        &self,
        scratch: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        // Under load a packet is there: read first, wait only when there is none (the
        // interrupt event ends the wait at shutdown).
        match self.dev.recv_multiple(scratch, bufs, sizes, offset) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.dev
                    .wait_readable_intr_timeout(&self.event, Some(READ_TIMEOUT))?;
                self.dev.recv_multiple(scratch, bufs, sizes, offset)
            }
            r => r,
        }
    }

    fn send_multiple(&self, bufs: &mut [Vec<u8>], offset: usize) -> io::Result<()> {
        let mut gro = self.gro.lock().unwrap_or_else(|p| p.into_inner());
        self.dev.send_multiple(&mut gro, bufs, offset).map(|_| ())
    }
}

/// The error of a single-packet call on a queue with a virtio-net header.
#[cfg(target_os = "linux")]
fn offloading(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("a TUN queue with offload is {what}"),
    )
}

/// Creates the TUN device with `queues` queues (multi-queue when more than one) and
/// returns its name and the queues.
#[cfg(target_os = "linux")]
pub(crate) fn create(
    cfg: &TunConfig,
    queues: usize,
) -> io::Result<(String, Vec<Arc<dyn PacketDevice>>)> {
    let mut b = tun_rs::DeviceBuilder::new()
        .mtu(cfg.mtu)
        .multi_queue(queues > 1)
        .offload(cfg.offload);
    if let Some(n) = &cfg.name {
        b = b.name(n.clone());
    }
    let mut v4_done = false;
    let mut later_v4 = Vec::new();
    for (addr, prefix) in &cfg.addresses {
        match addr {
            IpAddr::V4(a) if !v4_done => {
                b = b.ipv4(*a, *prefix, None);
                v4_done = true;
            }
            IpAddr::V4(a) => later_v4.push((*a, *prefix)),
            IpAddr::V6(a) => b = b.ipv6(*a, *prefix),
        }
    }
    let first = b.build_sync()?;
    for (a, p) in later_v4 {
        first.add_address_v4(a, p)?;
    }
    let name = first.name()?;
    let event = Arc::new(tun_rs::InterruptEvent::new()?);
    let mut devs: Vec<tun_rs::SyncDevice> = Vec::with_capacity(queues);
    for _ in 1..queues {
        devs.push(first.try_clone()?);
    }
    devs.insert(0, first);
    let mut out: Vec<Arc<dyn PacketDevice>> = Vec::with_capacity(queues);
    for dev in devs {
        // tun-rs: interruptible reads want a non-blocking descriptor.
        dev.set_nonblocking(true)?;
        out.push(Arc::new(TunQueue {
            dev,
            event: event.clone(),
            gro: std::sync::Mutex::new(tun_rs::GROTable::new()),
        }));
    }
    Ok((name, out))
}

/// TUN devices are created on Linux only.
#[cfg(not(target_os = "linux"))]
pub(crate) fn create(
    _cfg: &TunConfig,
    _queues: usize,
) -> io::Result<(String, Vec<Arc<dyn PacketDevice>>)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the gateway creates TUN devices on Linux only; use Dataplane::start_with_device",
    ))
}
