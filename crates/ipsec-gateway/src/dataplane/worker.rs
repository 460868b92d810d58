//! The worker loops: TUN to ESP-in-UDP (outbound) and ESP-in-UDP to TUN (inbound).
//!
//! Each worker has one outbound thread reading its TUN queue and one inbound thread
//! per NAT-T socket; every thread owns its buffers (allocated once) and the inbound
//! threads their own [`SadReader`](ipsec::sad::SadReader).
//!
//! Both work in batches, so that a system call carries many packets:
//! - outbound, one [`PacketDevice::recv_multiple`] returns up to [`BATCH`] packets (a
//!   TUN device with offload splits one 64 KB TCP segment into MTU-sized packets);
//!   all are sealed (one clock read), then sent with UDP GSO: consecutive ESP
//!   packets of one size to one peer go out in one `sendmsg` ([`udp::send_gso`]);
//! - inbound, one receive returns a GRO datagram (up to 64 KB of ESP packets of one
//!   flow, cut at the segment size the kernel reports), and more are taken without
//!   waiting while they are there; the opened packets go to the device in one
//!   [`PacketDevice::send_multiple`] (a TUN device with offload coalesces the TCP
//!   segments of a flow again, so the kernel's stack sees one large one).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use std::io::IoSlice;
use std::ops::Range;

use ipsec::core::{Instant, PacketBuf};
use ipsec::sad::{
    SaId, Sad, UdpInbound, UdpOutbound, MAX_HEADROOM, MAX_TAILROOM, UDP_INBOUND_HEADROOM,
};

use super::stats::{Counters, DataplaneDrop};
use super::udp::{self, NatTSocket, GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use super::vocab::{now, IkeDatagram, PacketDevice, ToControl, DEVICE_HEADROOM};

/// The largest packet read from the TUN device or a socket.
const MAX_PACKET: usize = 65_535;

/// Packets per batch: enough for one 64 KB TCP segment cut at an MTU down to 576
/// (tun-rs's `IDEAL_BATCH_SIZE`).
pub(crate) const BATCH: usize = 128;

/// The least time between two [`ToControl::SadEvent`] signals (all workers together).
pub(crate) const SAD_EVENT_INTERVAL: Duration = Duration::from_millis(50);

/// The least time between two log lines about the same kind of trouble, per thread.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What every thread of one data plane shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) sad: Arc<Sad>,
    pub(crate) stop: AtomicBool,
    pub(crate) to_control: Sender<ToControl>,
    /// When (ns on [`now`]'s clock, plus one; 0 = never) the last
    /// [`ToControl::SadEvent`] was sent.
    pub(crate) last_signal: AtomicU64,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Tells the control that the SAD has events, at most once per
    /// [`SAD_EVENT_INTERVAL`].
    fn signal_sad_event(&self, counters: &Counters) {
        let t = now().0.saturating_add(1);
        let last = self.last_signal.load(Ordering::Relaxed);
        let gap = u64::try_from(SAD_EVENT_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
        if (last == 0 || t.saturating_sub(last) >= gap)
            && self
                .last_signal
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Counters::one(&counters.sad_event_signals);
            // A closed channel: the control loop is gone and shutdown follows.
            let _ = self.to_control.send(ToControl::SadEvent);
        }
    }
}

/// A log line at most every [`LOG_INTERVAL`].
#[derive(Debug, Default)]
struct RateLimit {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// True when a line may be logged now; otherwise counts it as suppressed.
    fn allow(&mut self) -> Option<u64> {
        #[allow(clippy::disallowed_methods)] // the gateway owns the clock: it does I/O
        let t = std::time::Instant::now();
        match self.last {
            Some(l) if t.duration_since(l) < LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(t);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Which of a worker's sockets sends for an SA: the one bound to the SA's local
/// address, remembered per SA (looked up once, with [`Sad::sa_info`]).
struct SocketPick {
    sockets: Vec<NatTSocket>,
    by_sa: HashMap<SaId, usize>,
}

/// SAs remembered before the map is emptied (SA ids are never reused, so old entries
/// are only dead weight).
const PICK_CACHE: usize = 4096;

impl SocketPick {
    /// The index in `sockets` of the socket to send `sa`'s packets from.
    fn pick(&mut self, sad: &Sad, sa: SaId, to: SocketAddr) -> Option<usize> {
        if self.sockets.len() <= 1 {
            return (!self.sockets.is_empty()).then_some(0);
        }
        let i = match self.by_sa.get(&sa) {
            Some(i) => *i,
            None => {
                let local = sad.sa_info(sa).map(|i| i.local_addr.to_canonical());
                let i = self
                    .sockets
                    .iter()
                    .position(|s| Some(s.local.ip()) == local)
                    .or_else(|| {
                        self.sockets
                            .iter()
                            .position(|s| s.local.is_ipv4() == to.is_ipv4())
                    })
                    .unwrap_or(0);
                if self.by_sa.len() >= PICK_CACHE {
                    self.by_sa.clear();
                }
                self.by_sa.insert(sa, i);
                i
            }
        };
        Some(i)
    }
}

/// A sealed ESP packet waiting to be sent: where it is, from which socket, to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// The buffer (index into the batch).
    pub(crate) slot: usize,
    /// Its bytes in that buffer.
    pub(crate) range: Range<usize>,
    /// The socket (index into the worker's sockets).
    pub(crate) sock: usize,
    /// The peer.
    pub(crate) to: SocketAddr,
}

/// The end of the run of `sealed` that starts at `start` and can go out in one UDP
/// GSO send: same socket and peer, every packet as long as the first but the last,
/// which may be shorter, at most [`GSO_MAX_SEGMENTS`] and [`GSO_MAX_BYTES`].
pub(crate) fn gso_run(sealed: &[Sealed], start: usize) -> usize {
    let Some(first) = sealed.get(start) else {
        return start;
    };
    let size = first.range.len();
    let mut total = size;
    let mut end = start + 1;
    if size > usize::from(u16::MAX) {
        return end;
    }
    while let Some(s) = sealed.get(end) {
        let len = s.range.len();
        if end - start >= GSO_MAX_SEGMENTS
            || s.sock != first.sock
            || s.to != first.to
            || len > size
            || len == 0
            || total + len > GSO_MAX_BYTES
        {
            break;
        }
        total += len;
        end += 1;
        if len < size {
            break;
        }
    }
    end
}

/// The sending half of the outbound loop: its sockets and whether each takes UDP
/// GSO sends.
struct EspSender {
    pick: SocketPick,
    /// Per socket: GSO is known to the kernel and has not failed with `EIO` (a
    /// device that cannot checksum UDP).
    gso: Vec<bool>,
    log: RateLimit,
}

impl EspSender {
    /// Sends the sealed packets of a batch, runs of them with GSO.
    fn send(&mut self, sealed: &[Sealed], bufs: &[Vec<u8>], counters: &Counters) {
        let (mut packets, mut bytes) = (0, 0);
        let mut i = 0;
        while let Some(first) = sealed.get(i) {
            let gso = self.gso.get(first.sock).copied().unwrap_or(false);
            let end = if gso { gso_run(sealed, i) } else { i + 1 };
            let run = sealed.get(i..end).unwrap_or_default();
            let Some(sock) = self.pick.sockets.get(first.sock) else {
                counters.drop(DataplaneDrop::UdpSend);
                i = end;
                continue;
            };
            let sent = if run.len() > 1 {
                let mut iov: [IoSlice<'_>; GSO_MAX_SEGMENTS] =
                    std::array::from_fn(|_| IoSlice::new(&[]));
                let mut total = 0;
                for (v, s) in iov.iter_mut().zip(run) {
                    let b = bufs
                        .get(s.slot)
                        .and_then(|b| b.get(s.range.clone()))
                        .unwrap_or_default();
                    total += b.len();
                    *v = IoSlice::new(b);
                }
                let size = u16::try_from(first.range.len()).unwrap_or(u16::MAX);
                let iov = iov.get(..run.len()).unwrap_or_default();
                match udp::send_gso(&sock.socket, first.to, iov, size) {
                    Ok(_) => {
                        packets += run.len();
                        bytes += total;
                        true
                    }
                    // One datagram at a time instead: for this run (EINVAL for a
                    // segment past the path MTU, which plain sends fragment), or
                    // from now on (EIO: the route's device cannot checksum).
                    Err(e) => {
                        if udp::gso_unsupported(&e) {
                            if let Some(g) = self.gso.get_mut(first.sock) {
                                *g = false;
                            }
                            tracing::info!(error = %e, local = %sock.local, "UDP GSO fails: sending one datagram at a time");
                        }
                        false
                    }
                }
            } else {
                false
            };
            if !sent {
                for s in run {
                    let b = bufs
                        .get(s.slot)
                        .and_then(|b| b.get(s.range.clone()))
                        .unwrap_or_default();
                    match sock.socket.send_to(b, s.to) {
                        Ok(_) => {
                            packets += 1;
                            bytes += b.len();
                        }
                        Err(e) => {
                            counters.drop(DataplaneDrop::UdpSend);
                            if let Some(n) = self.log.allow() {
                                tracing::debug!(error = %e, to = %s.to, suppressed = n, "ESP send failed");
                            }
                        }
                    }
                }
            }
            i = end;
        }
        Counters::traffic_n(&counters.esp_out, packets, bytes);
    }
}

/// The outbound loop: IP packets from `dev` in batches, sealed for their SA, out of
/// the socket bound to the SA's local address.
pub(crate) fn outbound(
    shared: &Shared,
    dev: &dyn PacketDevice,
    sockets: Vec<NatTSocket>,
    counters: &Counters,
) {
    let mut tx = EspSender {
        gso: sockets.iter().map(|s| s.gso).collect(),
        pick: SocketPick {
            sockets,
            by_sa: HashMap::new(),
        },
        log: RateLimit::default(),
    };
    // Every buffer can take a whole packet: a device without offload reads into the
    // first only, and one with offload fills them with segments of its MTU (pages
    // of the others that are never written are never touched).
    let slot = MAX_HEADROOM + MAX_PACKET + MAX_TAILROOM;
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; slot]).collect();
    let mut sizes = vec![0usize; BATCH];
    let mut scratch = vec![0u8; DEVICE_HEADROOM + MAX_PACKET];
    let mut sealed: Vec<Sealed> = Vec::with_capacity(BATCH);
    let mut read_log = RateLimit::default();
    while !shared.stopping() {
        let n = match dev.recv_multiple(&mut scratch, &mut bufs, &mut sizes, MAX_HEADROOM) {
            Ok(0) => continue,
            Ok(n) => n.min(BATCH),
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                Counters::one(&counters.io_errors);
                if let Some(s) = read_log.allow() {
                    tracing::warn!(error = %e, suppressed = s, "TUN read failed");
                }
                // A device in trouble: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let t = now();
        sealed.clear();
        let mut bytes = 0;
        for (slot, (buf, len)) in bufs.iter_mut().zip(&sizes).take(n).enumerate() {
            bytes += len;
            if let Some(s) = seal(shared, &mut tx.pick, t, buf, *len, counters) {
                sealed.push(Sealed { slot, ..s });
            }
        }
        Counters::traffic_n(&counters.tun_in, n, bytes);
        tx.send(&sealed, &bufs, counters);
    }
}

/// Seals one packet (`len` bytes at [`MAX_HEADROOM`] in `buf`): where it is and where
/// it goes, or `None` (counted) when the SAD does not send it.
fn seal(
    shared: &Shared,
    pick: &mut SocketPick,
    t: Instant,
    buf: &mut [u8],
    len: usize,
    counters: &Counters,
) -> Option<Sealed> {
    let sad = &*shared.sad;
    let Ok(mut pb) = PacketBuf::new(buf, MAX_HEADROOM, len) else {
        counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Malformed));
        return None;
    };
    match sad.process_outbound_udp(t, &mut pb) {
        UdpOutbound::Send { sa, to, .. } => {
            let Some(sock) = pick.pick(sad, sa, to) else {
                counters.drop(DataplaneDrop::UdpSend);
                return None;
            };
            return Some(Sealed {
                slot: 0,
                range: pb.body_range(),
                sock,
                to,
            });
        }
        UdpOutbound::Acquire(a) => {
            counters.drop(DataplaneDrop::NoSa);
            tracing::trace!(policy = ?a.policy, "no SA: acquire");
            shared.signal_sad_event(counters);
        }
        UdpOutbound::Bypass(_) => counters.drop(DataplaneDrop::Bypass),
        UdpOutbound::NeedsRawIp { .. } => counters.drop(DataplaneDrop::NeedsRawIp),
        UdpOutbound::Discard(_) => {
            counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::PolicyDiscard))
        }
        UdpOutbound::Drop(r) => counters.drop(DataplaneDrop::Sad(r)),
        _ => counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Unsupported)),
    }
    None
}

/// The opened packets of the inbound loop waiting for the device, each at
/// [`DEVICE_HEADROOM`] in its buffer (capacity for a coalesced 64 KB one).
struct ToDevice {
    bufs: Vec<Vec<u8>>,
    len: usize,
    bytes: usize,
    log: RateLimit,
}

impl ToDevice {
    fn new() -> Self {
        ToDevice {
            bufs: (0..BATCH)
                .map(|_| Vec::with_capacity(2 * DEVICE_HEADROOM + MAX_PACKET))
                .collect(),
            len: 0,
            bytes: 0,
            log: RateLimit::default(),
        }
    }

    /// Queues `packet`; writes the batch when it is full.
    fn push(&mut self, packet: &[u8], dev: &dyn PacketDevice, counters: &Counters) {
        if let Some(b) = self.bufs.get_mut(self.len) {
            b.clear();
            b.resize(DEVICE_HEADROOM, 0);
            b.extend_from_slice(packet);
            self.len += 1;
            self.bytes += packet.len();
        }
        if self.len >= self.bufs.len() {
            self.flush(dev, counters);
        }
    }

    /// Writes what is queued.
    fn flush(&mut self, dev: &dyn PacketDevice, counters: &Counters) {
        if self.len == 0 {
            return;
        }
        let n = self.len;
        let bufs = self.bufs.get_mut(..n).unwrap_or_default();
        match dev.send_multiple(bufs, DEVICE_HEADROOM) {
            Ok(()) => Counters::traffic_n(&counters.tun_out, n, self.bytes),
            Err(e) => {
                counters.drop(DataplaneDrop::TunWrite);
                if let Some(s) = self.log.allow() {
                    tracing::debug!(error = %e, packets = n, suppressed = s, "TUN write failed");
                }
            }
        }
        self.len = 0;
        self.bytes = 0;
    }
}

/// The inbound loop on one socket: keepalives ignored, IKE to the control, ESP opened
/// and written to `dev` in batches.
pub(crate) fn inbound(
    shared: &Shared,
    dev: &dyn PacketDevice,
    sock: &NatTSocket,
    counters: &Counters,
) {
    let mut reader = shared.sad.reader();
    let local = sock.local;
    let h = UDP_INBOUND_HEADROOM;
    let mut buf = vec![0u8; h + MAX_PACKET];
    let mut control = udp::recv_control();
    let mut out = ToDevice::new();
    let mut recv_log = RateLimit::default();
    while !shared.stopping() {
        // Block for the first datagram; then take what else is there, up to a batch.
        let mut taken = 0;
        while taken < BATCH && !shared.stopping() {
            let first = taken == 0;
            let r = buf
                .get_mut(h..)
                .map(|b| udp::recv(&sock.socket, b, &mut control, !first));
            let (n, remote, stride) = match r {
                Some(Ok(r)) => r,
                Some(Err(e)) if is_timeout(&e) => {
                    if first {
                        // Idle: let go of the tables writers have replaced.
                        reader.refresh();
                    }
                    break;
                }
                Some(Err(e)) => {
                    Counters::one(&counters.io_errors);
                    if let Some(s) = recv_log.allow() {
                        tracing::warn!(error = %e, %local, suppressed = s, "UDP receive failed");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    break;
                }
                None => return,
            };
            let t = now();
            let mut start = h;
            let end = h + n;
            let mut segments = 0;
            while start < end {
                let len = stride.min(end - start);
                segments += 1;
                datagram(
                    shared,
                    &mut reader,
                    t,
                    local,
                    remote,
                    &mut buf,
                    start,
                    len,
                    &mut out,
                    dev,
                    counters,
                );
                start += len;
            }
            Counters::traffic_n(&counters.udp_in, segments, n);
            taken += segments;
        }
        out.flush(dev, counters);
    }
}

/// One datagram of `len` bytes at `start` in `buf` (the bytes before it are free to
/// use as headroom): a keepalive, IKE for the control, or ESP opened and queued for
/// the device.
#[allow(clippy::too_many_arguments)]
fn datagram(
    shared: &Shared,
    reader: &mut ipsec::sad::SadReader<'_>,
    t: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    buf: &mut [u8],
    start: usize,
    len: usize,
    out: &mut ToDevice,
    dev: &dyn PacketDevice,
    counters: &Counters,
) {
    let payload = buf.get(start..start + len).unwrap_or(&[]);
    // RFC 3948 §2.3: a NAT-keepalive is one 0xFF byte.
    if payload == [0xff] {
        Counters::one(&counters.keepalives_in);
        return;
    }
    // RFC 3948 §2.2: the Non-ESP Marker (four zero bytes) in front of IKE.
    if len > 4 && payload.starts_with(&[0, 0, 0, 0]) {
        let d = IkeDatagram {
            local,
            remote,
            payload: payload.to_vec(),
        };
        // Counted first, so that a control loop that got it sees it counted.
        Counters::one(&counters.ike_in);
        if shared.to_control.send(ToControl::Ike(d)).is_err() {
            counters.drop(DataplaneDrop::ControlClosed);
        }
        return;
    }
    let Some(b) = buf.get_mut(..start + len) else {
        return;
    };
    let Ok(mut pb) = PacketBuf::new(b, start, len) else {
        return;
    };
    match reader.process_inbound_udp(t, local, remote, &mut pb) {
        UdpInbound::Deliver { peer_moved, .. } => {
            if peer_moved {
                tracing::trace!(%remote, "ESP from a moved peer");
            }
            out.push(pb.body(), dev, counters);
        }
        UdpInbound::Drop(r) => counters.drop(DataplaneDrop::Sad(r)),
        UdpInbound::Keepalive => Counters::one(&counters.keepalives_in),
        // Sorted out above; the SAD agrees on what is IKE.
        UdpInbound::Ike => counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Malformed)),
        _ => counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Unsupported)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn s(slot: usize, len: usize, sock: usize, port: u16) -> Sealed {
        Sealed {
            slot,
            range: 100..100 + len,
            sock,
            to: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        }
    }

    /// The runs `gso_run` cuts `sealed` into, as (start, end).
    fn runs(sealed: &[Sealed]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < sealed.len() {
            let e = gso_run(sealed, i);
            assert!(e > i);
            v.push((i, e));
            i = e;
        }
        v
    }

    #[test]
    fn a_run_is_one_size_to_one_peer_with_a_shorter_last() {
        // 5 full, a short one, then 3 full again.
        let mut v: Vec<Sealed> = (0..5).map(|i| s(i, 1436, 0, 1)).collect();
        v.push(s(5, 300, 0, 1));
        v.extend((6..9).map(|i| s(i, 1436, 0, 1)));
        assert_eq!(runs(&v), [(0, 6), (6, 9)]);
        // A longer one starts a new run.
        let v = [s(0, 500, 0, 1), s(1, 500, 0, 1), s(2, 900, 0, 1)];
        assert_eq!(runs(&v), [(0, 2), (2, 3)]);
        // Another peer, another socket.
        let v = [
            s(0, 500, 0, 1),
            s(1, 500, 0, 2),
            s(2, 500, 1, 2),
            s(3, 500, 1, 2),
        ];
        assert_eq!(runs(&v), [(0, 1), (1, 2), (2, 4)]);
        assert_eq!(runs(&[]), []);
    }

    #[test]
    fn a_run_keeps_to_the_kernels_limits() {
        let v: Vec<Sealed> = (0..100).map(|i| s(i, 100, 0, 1)).collect();
        assert_eq!(runs(&v), [(0, 64), (64, 100)]);
        // 1436 * 45 = 64 620 fits in 65 507, a 46th does not.
        let v: Vec<Sealed> = (0..50).map(|i| s(i, 1436, 0, 1)).collect();
        assert_eq!(runs(&v), [(0, 45), (45, 50)]);
        for (a, b) in runs(&v) {
            assert!(v[a..b].iter().map(|x| x.range.len()).sum::<usize>() <= GSO_MAX_BYTES);
        }
    }
}
