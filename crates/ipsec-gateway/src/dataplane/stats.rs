//! The data plane's counters: one cache line set per thread, summed on demand.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ipsec::sad::{DropReason, DROP_REASONS};

/// Why the data plane did not pass a packet on, beside the SAD's own reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataplaneDrop {
    /// The SAD dropped it (inbound or outbound verdict `Drop`, or an outbound
    /// `Discard`, counted as [`DropReason::PolicyDiscard`]). Counts every such verdict
    /// the data plane saw, including the drops the SAD counts per SA.
    Sad(DropReason),
    /// An outbound packet matched a PROTECT rule without an SA (the SAD queued an
    /// ACQUIRE; the packet is not kept).
    NoSa,
    /// An outbound packet matched a BYPASS rule: a gateway's TUN device carries only
    /// tunnel traffic, so there is nowhere to send it.
    Bypass,
    /// The rule's SA is not UDP-encapsulated (or is AH): this data plane sends only
    /// ESP in UDP (RFC 3948).
    NeedsRawIp,
    /// Writing an inner packet to the TUN device failed.
    TunWrite,
    /// Sending an ESP-in-UDP datagram failed.
    UdpSend,
    /// An IKE datagram arrived but the control channel is closed.
    ControlClosed,
}

/// Our own reasons, in counter order after the SAD's.
const LOCAL: [DataplaneDrop; 6] = [
    DataplaneDrop::NoSa,
    DataplaneDrop::Bypass,
    DataplaneDrop::NeedsRawIp,
    DataplaneDrop::TunWrite,
    DataplaneDrop::UdpSend,
    DataplaneDrop::ControlClosed,
];

const DROP_SLOTS: usize = DROP_REASONS + LOCAL.len();

impl DataplaneDrop {
    /// Every reason, in counter order: the SAD's ([`DropReason::ALL`]) then ours.
    pub fn all() -> impl Iterator<Item = DataplaneDrop> {
        DropReason::ALL
            .into_iter()
            .map(DataplaneDrop::Sad)
            .chain(LOCAL)
    }

    /// A short `snake_case` name for counters and logs (the SAD's reasons keep their
    /// own names).
    pub const fn as_str(self) -> &'static str {
        match self {
            DataplaneDrop::Sad(r) => r.as_str(),
            DataplaneDrop::NoSa => "no_sa",
            DataplaneDrop::Bypass => "bypass",
            DataplaneDrop::NeedsRawIp => "needs_raw_ip",
            DataplaneDrop::TunWrite => "tun_write",
            DataplaneDrop::UdpSend => "udp_send",
            DataplaneDrop::ControlClosed => "control_closed",
        }
    }

    fn index(self) -> usize {
        match self {
            DataplaneDrop::Sad(r) => DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0),
            other => DROP_REASONS + LOCAL.iter().position(|x| *x == other).unwrap_or(0),
        }
    }
}

impl std::fmt::Display for DataplaneDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Packets and bytes through one point of the data plane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes (of the packet at that point: IP packets on the TUN side, UDP payloads
    /// on the socket side).
    pub bytes: u64,
}

/// A copy of the data plane's counters ([`Dataplane::stats`](super::Dataplane::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataplaneStats {
    /// IP packets read from the TUN device.
    pub tun_in: Traffic,
    /// ESP-in-UDP payloads sent (after sealing).
    pub esp_out: Traffic,
    /// UDP datagrams received on the NAT-T sockets (ESP, IKE and keepalives).
    pub udp_in: Traffic,
    /// Inner packets written to the TUN device (after opening).
    pub tun_out: Traffic,
    /// IKE datagrams (Non-ESP Marker) received, each handed to the control channel
    /// (unless it is closed: [`DataplaneDrop::ControlClosed`]).
    pub ike_in: u64,
    /// IKE datagrams sent through an [`IkeSender`](super::IkeSender).
    pub ike_out: u64,
    /// NAT-keepalives received (RFC 3948 §2.3) and ignored.
    pub keepalives_in: u64,
    /// [`ToControl::SadEvent`](super::ToControl::SadEvent) messages sent.
    pub sad_event_signals: u64,
    /// Read or receive errors on the TUN device or the sockets (other than timeouts).
    pub io_errors: u64,
    drops: Vec<(DataplaneDrop, u64)>,
}

impl DataplaneStats {
    /// The count for `reason`.
    pub fn drop_count(&self, reason: DataplaneDrop) -> u64 {
        self.drops
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// The non-zero drop counters.
    pub fn drops(&self) -> impl Iterator<Item = (DataplaneDrop, u64)> + '_ {
        self.drops.iter().copied()
    }

    /// The sum of all drop counters.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// One thread's counters, on cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Counters {
    pub(crate) tun_in: [AtomicU64; 2],
    pub(crate) esp_out: [AtomicU64; 2],
    pub(crate) udp_in: [AtomicU64; 2],
    pub(crate) tun_out: [AtomicU64; 2],
    pub(crate) ike_in: AtomicU64,
    pub(crate) ike_out: AtomicU64,
    pub(crate) keepalives_in: AtomicU64,
    pub(crate) sad_event_signals: AtomicU64,
    pub(crate) io_errors: AtomicU64,
    drops: [AtomicU64; DROP_SLOTS],
}

impl Counters {
    /// Adds a batch: `packets` packets of `bytes` bytes in all (nothing for none).
    pub(crate) fn traffic_n(c: &[AtomicU64; 2], packets: usize, bytes: usize) {
        if packets == 0 {
            return;
        }
        let [p, b] = c;
        p.fetch_add(packets as u64, Relaxed);
        b.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn one(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub(crate) fn drop(&self, r: DataplaneDrop) {
        if let Some(c) = self.drops.get(r.index()) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn drop_count(&self, r: DataplaneDrop) -> u64 {
        self.drops.get(r.index()).map_or(0, |c| c.load(Relaxed))
    }
}

fn add(t: &mut Traffic, c: &[AtomicU64; 2]) {
    let [p, b] = c;
    t.packets += p.load(Relaxed);
    t.bytes += b.load(Relaxed);
}

/// Sums the counters of every thread.
pub(crate) fn sum<'a>(all: impl IntoIterator<Item = &'a Counters> + Clone) -> DataplaneStats {
    let mut s = DataplaneStats::default();
    for c in all.clone() {
        add(&mut s.tun_in, &c.tun_in);
        add(&mut s.esp_out, &c.esp_out);
        add(&mut s.udp_in, &c.udp_in);
        add(&mut s.tun_out, &c.tun_out);
        s.ike_in += c.ike_in.load(Relaxed);
        s.ike_out += c.ike_out.load(Relaxed);
        s.keepalives_in += c.keepalives_in.load(Relaxed);
        s.sad_event_signals += c.sad_event_signals.load(Relaxed);
        s.io_errors += c.io_errors.load(Relaxed);
    }
    s.drops = DataplaneDrop::all()
        .map(|r| (r, all.clone().into_iter().map(|c| c.drop_count(r)).sum()))
        .filter(|(_, n)| *n > 0)
        .collect();
    s
}
