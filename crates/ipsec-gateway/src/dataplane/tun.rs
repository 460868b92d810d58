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
    /// The runs of `send_multiple`'s GRO (one writer per socket shares a queue, so
    /// the lock is all but uncontended; taken once per batch).
    gro: std::sync::Mutex<Vec<super::gro::Run>>,
}

#[cfg(target_os = "linux")]
impl PacketDevice for TunQueue {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.dev.tcp_gso() {
            return Err(offloading("read with recv_multiple"));
        }
        // Under load a packet is there: read first, wait only when there is none.
        match self.dev.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.dev
                    .recv_intr_timeout(buf, &self.event, Some(READ_TIMEOUT))
            }
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
        let mut r = Ok(());
        if !self.dev.tcp_gso() {
            for b in bufs.iter() {
                if let Err(e) = self.dev.send(b.get(offset..).unwrap_or_default()) {
                    r = Err(e);
                }
            }
            return r;
        }
        let mut runs = self.gro.lock().unwrap_or_else(|p| p.into_inner());
        super::gro::plan(bufs, offset, &mut runs);
        let mut iov: [std::io::IoSlice<'_>; super::worker::BATCH] =
            std::array::from_fn(|_| std::io::IoSlice::new(&[]));
        for run in runs.iter() {
            let n = super::gro::iovecs(bufs, offset, run, &mut iov);
            if let Err(e) = self.dev.send_vectored(iov.get(..n).unwrap_or_default()) {
                r = Err(e);
            }
        }
        r
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
            gro: std::sync::Mutex::new(Vec::with_capacity(super::worker::BATCH)),
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

/// The offload path the TUN queue relies on, on the buffers the outbound loop gives
/// it: a 64 KB TCP segment read from the device is split into MTU-sized packets with
/// correct headers and checksums (the way back is `gro`'s).
#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use tun_rs::{gso_split, VirtioNetHdr, VIRTIO_NET_HDR_GSO_TCPV4};

    const MSS: usize = 1360;
    const PAYLOAD: usize = 40_000;
    const SEQ: u32 = 0xfff0_0000;

    /// The Internet checksum of `data` after `init` (folded, not inverted).
    fn sum(init: u32, data: &[u8]) -> u16 {
        let mut s = init;
        for c in data.chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// True when the IPv4 header and TCP checksums of `p` are correct.
    fn checksums_ok(p: &[u8]) -> bool {
        let tcp = &p[20..];
        let mut pseudo = 0u32;
        for c in p[12..20].chunks(2) {
            pseudo += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        pseudo += 6 + tcp.len() as u32;
        sum(0, &p[..20]) == 0xffff && sum(pseudo, tcp) == 0xffff
    }

    /// An IPv4 TCP segment 10.1.0.1:40000 -> 10.2.0.1:5001 with `payload`, PSH set.
    fn segment(payload: &[u8]) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 1, 0, 1]);
        p[16..20].copy_from_slice(&[10, 2, 0, 1]);
        let c = !sum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&5001u16.to_be_bytes());
        p[24..28].copy_from_slice(&SEQ.to_be_bytes());
        p[28..32].copy_from_slice(&7u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = 0x18; // PSH, ACK
        p[34..36].copy_from_slice(&512u16.to_be_bytes());
        p[40..].copy_from_slice(payload);
        p
    }

    fn payload() -> Vec<u8> {
        (0..PAYLOAD).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_large_tcp_segment_splits_into_checksummed_packets() {
        let data = payload();
        let mut input = segment(&data);
        // As the kernel hands a TSO segment over: partial checksum to fill in.
        let hdr = VirtioNetHdr {
            flags: 1, // VIRTIO_NET_HDR_F_NEEDS_CSUM
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
            hdr_len: 40,
            gso_size: MSS as u16,
            csum_start: 20,
            csum_offset: 16,
        };
        // The outbound loop's buffers: headroom for ESP in front of each.
        let off = ipsec::sad::MAX_HEADROOM;
        let mut bufs: Vec<Vec<u8>> = (0..super::super::worker::BATCH)
            .map(|_| vec![0u8; off + 2048])
            .collect();
        let mut sizes = vec![0usize; bufs.len()];
        let n = gso_split(&mut input, hdr, &mut bufs, &mut sizes, off, false).unwrap();
        assert_eq!(n, PAYLOAD.div_ceil(MSS));
        let mut joined = Vec::new();
        for (i, (b, len)) in bufs.iter().zip(&sizes).take(n).enumerate() {
            let p = &b[off..off + len];
            let data_len = if i + 1 == n { PAYLOAD - MSS * i } else { MSS };
            assert_eq!(*len, 40 + data_len, "packet {i}");
            assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, *len);
            assert!(checksums_ok(p), "packet {i}: checksums");
            let seq = u32::from_be_bytes(p[24..28].try_into().unwrap());
            assert_eq!(seq, SEQ.wrapping_add((MSS * i) as u32), "packet {i}: seq");
            // PSH only on the last.
            assert_eq!(p[33] & 0x08 != 0, i + 1 == n, "packet {i}: PSH");
            joined.extend_from_slice(&p[40..]);
        }
        assert_eq!(joined, data);
    }
}
