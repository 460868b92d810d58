//! Per-SA statistics: packets, bytes and drops by reason, all atomics.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a packet was dropped. Counted per SA when the SA is known, otherwise in the
/// SAD's global counters ([`Sad::drop_counts`](crate::Sad::drop_counts)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// An IP, UDP or ESP header (or the decrypted inner packet) is malformed.
    Malformed,
    /// An outer fragment: reassemble before IPsec processing (RFC 4303 §3.4.1).
    Fragment,
    /// No SA has this SPI.
    UnknownSpi,
    /// Refused by the anti-replay window.
    Replay,
    /// The ICV did not verify.
    Integrity,
    /// Authentic, but the ESP padding or trailer is invalid.
    Padding,
    /// An authentic dummy packet (RFC 4303 §2.6).
    Dummy,
    /// The decapsulated packet is outside the selectors of the SA it arrived on
    /// (RFC 4301 §5.2 step 4).
    PolicyMismatch,
    /// A DISCARD rule matched, or no rule did.
    PolicyDiscard,
    /// A plaintext packet that policy says must arrive protected.
    Unprotected,
    /// The SA reached a hard lifetime or was removed.
    Expired,
    /// The outbound sequence numbers are used up.
    SeqExhausted,
    /// The buffer lacks headroom or tailroom for the encapsulation.
    NoRoom,
    /// The result would not fit an IP length field.
    TooLarge,
    /// RFC 6040: CE on the outer header of a not-ECT inner packet.
    Ecn,
    /// A NAT-keepalive (RFC 3948 §2.3): nothing to deliver.
    NatKeepalive,
    /// The packet needs something this build does not do.
    Unsupported,
    /// The crypto backend failed.
    Crypto,
    /// An ESP-in-UDP payload ([`Sad::process_inbound_udp`](crate::Sad::process_inbound_udp))
    /// for an SA negotiated without UDP encapsulation (RFC 3948 §2: only SAs that
    /// agreed on it are UDP-encapsulated).
    NotUdpEncap,
    /// An ESP-in-UDP payload from another address or port than the SA's peer, on an SA
    /// whose inbound lookup takes the source address ([`InboundLookup::SpiDstSrc`](crate::InboundLookup::SpiDstSrc)).
    PeerMismatch,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::Malformed,
        DropReason::Fragment,
        DropReason::UnknownSpi,
        DropReason::Replay,
        DropReason::Integrity,
        DropReason::Padding,
        DropReason::Dummy,
        DropReason::PolicyMismatch,
        DropReason::PolicyDiscard,
        DropReason::Unprotected,
        DropReason::Expired,
        DropReason::SeqExhausted,
        DropReason::NoRoom,
        DropReason::TooLarge,
        DropReason::Ecn,
        DropReason::NatKeepalive,
        DropReason::Unsupported,
        DropReason::Crypto,
        DropReason::NotUdpEncap,
        DropReason::PeerMismatch,
    ];

    /// A short `snake_case` name for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Fragment => "fragment",
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::Replay => "replay",
            DropReason::Integrity => "integrity",
            DropReason::Padding => "padding",
            DropReason::Dummy => "dummy",
            DropReason::PolicyMismatch => "policy_mismatch",
            DropReason::PolicyDiscard => "policy_discard",
            DropReason::Unprotected => "unprotected",
            DropReason::Expired => "expired",
            DropReason::SeqExhausted => "seq_exhausted",
            DropReason::NoRoom => "no_room",
            DropReason::TooLarge => "too_large",
            DropReason::Ecn => "ecn",
            DropReason::NatKeepalive => "nat_keepalive",
            DropReason::Unsupported => "unsupported",
            DropReason::Crypto => "crypto",
            DropReason::NotUdpEncap => "not_udp_encap",
            DropReason::PeerMismatch => "peer_mismatch",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many [`DropReason`]s there are.
pub const DROP_REASONS: usize = 20;

/// Drop counters, one per [`DropReason`]; `Debug` as [`DropCounts`].
#[derive(Default)]
pub(crate) struct DropCounters([AtomicU64; DROP_REASONS]);

impl fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

impl DropCounters {
    pub(crate) fn add(&self, r: DropReason) {
        if let Some(c) = self.0.get(r.index()) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> DropCounts {
        let mut out = [0u64; DROP_REASONS];
        for (o, c) in out.iter_mut().zip(&self.0) {
            *o = c.load(Relaxed);
        }
        DropCounts(out)
    }
}

/// A copy of drop counters. Its `Debug` lists the non-zero counters by name
/// (`{unknown_spi: 3, replay: 1}`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts([u64; DROP_REASONS]);

impl fmt::Debug for DropCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (DebugName(r.as_str()), n)))
            .finish()
    }
}

/// A name printed without quotes.
struct DebugName(&'static str);

impl fmt::Debug for DebugName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl DropCounts {
    /// The count for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0.get(r.index()).copied().unwrap_or(0)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counters.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(&self.0)
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (*r, *n))
    }
}

/// Packet and byte counters of one direction, on a cache line of their own so that
/// senders and receivers of one SA do not share a line.
///
/// `packets` and `bytes` are the exact counters that byte and packet lifetimes are
/// checked against. An SA without such limits (the usual IKE SA: time lifetimes only)
/// counts in [`STRIPES`] per-thread stripes instead ([`DirCounters::add_striped`]), so
/// that threads sealing on one SA do not bounce one cache line for every packet; the
/// totals are the sums ([`DirCounters::packets`], [`DirCounters::bytes`]).
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct DirCounters {
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
    stripes: [Stripe; STRIPES],
}

/// How many stripes an SA's unlimited counters are spread over.
pub(crate) const STRIPES: usize = 4;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// This thread's stripe: threads are numbered as they first count a packet.
fn stripe_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    INDEX.with(|i| *i)
}

impl DirCounters {
    /// Counts a packet of `len` bytes in this thread's stripe (SAs without byte and
    /// packet limits only).
    pub(crate) fn add_striped(&self, len: u64) {
        if let Some(s) = self.stripes.get(stripe_index()) {
            s.packets.fetch_add(1, Relaxed);
            s.bytes.fetch_add(len, Relaxed);
        }
    }

    /// Takes back a packet [`add_striped`](Self::add_striped) counted on this thread.
    pub(crate) fn sub_striped(&self, len: u64) {
        if let Some(s) = self.stripes.get(stripe_index()) {
            s.packets.fetch_sub(1, Relaxed);
            s.bytes.fetch_sub(len, Relaxed);
        }
    }

    /// Packets counted.
    pub(crate) fn packets(&self) -> u64 {
        self.stripes
            .iter()
            .fold(self.packets.load(Relaxed), |t, s| {
                t.wrapping_add(s.packets.load(Relaxed))
            })
    }

    /// Bytes counted.
    pub(crate) fn bytes(&self) -> u64 {
        self.stripes.iter().fold(self.bytes.load(Relaxed), |t, s| {
            t.wrapping_add(s.bytes.load(Relaxed))
        })
    }
}

/// A copy of an SA's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SaStats {
    /// Packets sealed.
    pub out_packets: u64,
    /// Payload bytes sealed (the packets before encapsulation).
    pub out_bytes: u64,
    /// Packets opened and delivered.
    pub in_packets: u64,
    /// Payload bytes delivered (the packets after decapsulation).
    pub in_bytes: u64,
    /// Drops on this SA, by reason.
    pub drops: DropCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counts_debug_names_the_non_zero_counters() {
        let c = DropCounters::default();
        assert_eq!(std::format!("{c:?}"), "{}");
        c.add(DropReason::Replay);
        c.add(DropReason::Replay);
        c.add(DropReason::UnknownSpi);
        let s = std::format!("{:?}", c.snapshot());
        assert!(s.starts_with('{') && s.ends_with('}'), "{s}");
        assert!(s.contains("replay: 2"), "{s}");
        assert!(s.contains("unknown_spi: 1"), "{s}");
        assert!(!s.contains(": 0"), "{s}");
    }
    use std::sync::Arc;

    #[test]
    fn striped_counts_from_many_threads_sum_up() {
        let c = Arc::new(DirCounters::default());
        c.packets.store(5, Relaxed);
        c.bytes.store(500, Relaxed);
        let threads: std::vec::Vec<_> = (0..(2 * STRIPES as u64 + 1))
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add_striped(t + 1);
                    }
                    c.sub_striped(t + 1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = 2 * STRIPES as u64 + 1;
        assert_eq!(c.packets(), 5 + n * 999);
        assert_eq!(c.bytes(), 500 + 999 * (1..=n).sum::<u64>());
    }
}
