//! The worker loops: TUN to ESP-in-UDP (outbound) and ESP-in-UDP to TUN (inbound).
//!
//! Each worker has one outbound thread reading its TUN queue and one inbound thread
//! per NAT-T socket; every thread owns its buffer (allocated once) and the inbound
//! threads their own [`SadReader`](ipsec::sad::SadReader).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use ipsec::core::PacketBuf;
use ipsec::sad::{
    SaId, Sad, UdpInbound, UdpOutbound, MAX_HEADROOM, MAX_TAILROOM, UDP_INBOUND_HEADROOM,
};

use super::stats::{Counters, DataplaneDrop};
use super::udp::NatTSocket;
use super::vocab::{now, IkeDatagram, PacketDevice, ToControl};

/// The largest packet read from the TUN device or a socket.
const MAX_PACKET: usize = 65_535;

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
    fn pick(&mut self, sad: &Sad, sa: SaId, to: SocketAddr) -> Option<&NatTSocket> {
        if self.sockets.len() <= 1 {
            return self.sockets.first();
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
        self.sockets.get(i)
    }
}

/// The outbound loop: IP packets from `dev`, sealed for their SA, out of the socket
/// bound to the SA's local address.
pub(crate) fn outbound(
    shared: &Shared,
    dev: &dyn PacketDevice,
    sockets: Vec<NatTSocket>,
    counters: &Counters,
) {
    let sad = &*shared.sad;
    let mut pick = SocketPick {
        sockets,
        by_sa: HashMap::new(),
    };
    let mut buf = vec![0u8; MAX_HEADROOM + MAX_PACKET + MAX_TAILROOM];
    let mut read_log = RateLimit::default();
    let mut send_log = RateLimit::default();
    while !shared.stopping() {
        let n = match buf
            .get_mut(MAX_HEADROOM..MAX_HEADROOM + MAX_PACKET)
            .map(|b| dev.recv(b))
        {
            Some(Ok(0)) => continue,
            Some(Ok(n)) => n,
            Some(Err(e)) if is_timeout(&e) => continue,
            Some(Err(e)) => {
                Counters::one(&counters.io_errors);
                if let Some(s) = read_log.allow() {
                    tracing::warn!(error = %e, suppressed = s, "TUN read failed");
                }
                // A device in trouble: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            None => return,
        };
        Counters::traffic(&counters.tun_in, n);
        let Ok(mut pb) = PacketBuf::new(&mut buf[..], MAX_HEADROOM, n) else {
            continue;
        };
        match sad.process_outbound_udp(now(), &mut pb) {
            UdpOutbound::Send { sa, to, .. } => {
                let Some(s) = pick.pick(sad, sa, to) else {
                    counters.drop(DataplaneDrop::UdpSend);
                    continue;
                };
                match s.socket.send_to(pb.body(), to) {
                    Ok(_) => Counters::traffic(&counters.esp_out, pb.body_len()),
                    Err(e) => {
                        counters.drop(DataplaneDrop::UdpSend);
                        if let Some(s) = send_log.allow() {
                            tracing::debug!(error = %e, %to, suppressed = s, "ESP send failed");
                        }
                    }
                }
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
    }
}

/// The inbound loop on one socket: keepalives ignored, IKE to the control, ESP opened
/// and written to `dev`.
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
    let mut recv_log = RateLimit::default();
    let mut tun_log = RateLimit::default();
    while !shared.stopping() {
        let (n, remote) = match buf.get_mut(h..).map(|b| sock.socket.recv_from(b)) {
            Some(Ok(r)) => r,
            Some(Err(e)) if is_timeout(&e) => {
                // Idle: let go of the tables writers have replaced.
                reader.refresh();
                continue;
            }
            Some(Err(e)) => {
                Counters::one(&counters.io_errors);
                if let Some(s) = recv_log.allow() {
                    tracing::warn!(error = %e, %local, suppressed = s, "UDP receive failed");
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            None => return,
        };
        Counters::traffic(&counters.udp_in, n);
        let payload = buf.get(h..h + n).unwrap_or(&[]);
        // RFC 3948 §2.3: a NAT-keepalive is one 0xFF byte.
        if payload == [0xff] {
            Counters::one(&counters.keepalives_in);
            continue;
        }
        // RFC 3948 §2.2: the Non-ESP Marker (four zero bytes) in front of IKE.
        if n > 4 && payload.starts_with(&[0, 0, 0, 0]) {
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
            continue;
        }
        let Ok(mut pb) = PacketBuf::new(&mut buf[..], h, n) else {
            continue;
        };
        match reader.process_inbound_udp(now(), local, remote, &mut pb) {
            UdpInbound::Deliver { peer_moved, .. } => {
                if peer_moved {
                    tracing::trace!(%remote, "ESP from a moved peer");
                }
                match dev.send(pb.body()) {
                    Ok(_) => Counters::traffic(&counters.tun_out, pb.body_len()),
                    Err(e) => {
                        counters.drop(DataplaneDrop::TunWrite);
                        if let Some(s) = tun_log.allow() {
                            tracing::debug!(error = %e, suppressed = s, "TUN write failed");
                        }
                    }
                }
            }
            UdpInbound::Drop(r) => counters.drop(DataplaneDrop::Sad(r)),
            UdpInbound::Keepalive => Counters::one(&counters.keepalives_in),
            // Sorted out above; the SAD agrees on what is IKE.
            UdpInbound::Ike => counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Malformed)),
            _ => counters.drop(DataplaneDrop::Sad(ipsec::sad::DropReason::Unsupported)),
        }
    }
}
