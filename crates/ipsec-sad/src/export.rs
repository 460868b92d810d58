//! SA export and import: moving or replicating an SA to another node (anycast IPsec).
//!
//! [`Sad::export_sa`] takes an [`SaSnapshot`]; [`Sad::import_sa`] installs it. With the
//! `serde` feature the snapshot is `Serialize + Deserialize` (keys as lowercase hex).
//!
//! # Format, version 1 ([`SNAPSHOT_VERSION`])
//!
//! | field | meaning |
//! |---|---|
//! | `version` | 1; import refuses other versions |
//! | `protocol`, `mode` | `"esp"`/`"ah"`, `"tunnel"`/`"transport"` |
//! | `inbound_spi`, `outbound_spi` | the SPIs |
//! | `encr`, `encr_key_bits`, `integ`, `ke`, `esn` | IANA transform ids (RFC 7296 §3.3.2) |
//! | `inbound_keys`, `outbound_keys` | `{ encr, integ }` key bytes (hex in serde) |
//! | `local_addr`, `remote_addr`, `local_ts`, `remote_ts`, `udp_encap` | endpoints and selectors |
//! | `lifetime` | soft and hard limits (bytes, packets, time in ns) |
//! | `replay_window` | window size (0: off) |
//! | `last_seq` | the last outbound sequence number handed out |
//! | `replay_top` | the highest sequence number received; the window bitmap is summarised by this top alone: on import everything at or below it counts as received, which never accepts a replay and may drop a few late reordered packets |
//! | `used` | bytes and packets per direction and the SA's age in ns, so lifetimes carry over |
//!
//! # Sequence numbers after import: the nonce hazard
//!
//! **A snapshot holds the SA's keys. Two nodes that send on the same SA with the
//! same sequence numbers send the same (SPI, sequence number, IV) under one key.**
//! With AES-GCM, AES-GMAC and ChaCha20-Poly1305 the IV is the sequence number, so
//! that is a nonce reused: it reveals the XOR of the two plaintexts and, for GCM,
//! the authentication key, with which anyone can forge packets. Importing one
//! snapshot on two live nodes, or importing while the exporter keeps sending, does
//! exactly that unless their sequence numbers are disjoint.
//!
//! So an import must state the range of outbound sequence numbers the importing node
//! owns exclusively ([`SeqRange`], the argument of [`ImportOptions::new`]): the SA
//! sends from `first` and stops at `last` (outbound packets are then dropped with
//! `DropReason::SeqExhausted` and `Event::SeqNearExhaustion` warns before, so IKE can
//! rekey). A range at or below the snapshot's `last_seq` is refused
//! ([`SadError::SeqRangeUsed`]). Giving every node its own range, and the exporter a
//! range that ends before them, is the caller's part ([`Sad::limit_outbound_seq`]
//! bounds a live SA, such as the exporter's own); [`SeqRange::after`] is the
//! range for *moving* an SA: everything from `last_seq + margin + 1` on, safe when
//! the exporter stops sending on the SA before it has sent `margin` more packets.
//!
//! Keys are never printed: [`SnapshotKeys`] redacts them in `Debug` and zeroizes them on
//! drop.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::{
    ChildSaParams, Instant, IpProto, KeyMaterial, Lifetime, LifetimeLimits, Mode, SecurityProtocol,
    Spi, TrafficSelector, TsSet, UdpEncap,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::sa::{seq_ceiling, Resume, SaId, SaOptions, SadError};
use crate::sad::Sad;

/// The snapshot format version this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Key bytes of one direction; `Debug` prints only lengths, dropped values are zeroized.
#[derive(Clone, PartialEq, Eq, Default, Zeroize, ZeroizeOnDrop)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotKeys {
    /// Encryption key ‖ salt.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub encr: Vec<u8>,
    /// Integrity key.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub integ: Vec<u8>,
}

impl fmt::Debug for SnapshotKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SnapshotKeys {{ encr: [redacted; {}], integ: [redacted; {}] }}",
            self.encr.len(),
            self.integ.len()
        )
    }
}

impl SnapshotKeys {
    fn from_keys(k: &KeyMaterial) -> Self {
        SnapshotKeys {
            encr: k.encr().to_vec(),
            integ: k.integ().to_vec(),
        }
    }

    fn to_keys(&self) -> Result<KeyMaterial, SadError> {
        KeyMaterial::new(&self.encr, &self.integ).map_err(|_| SadError::InvalidSnapshot("keys"))
    }
}

/// One traffic selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotTs {
    /// First address.
    pub start_addr: IpAddr,
    /// Last address.
    pub end_addr: IpAddr,
    /// Protocol (0 = any).
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
}

/// One set of lifetime limits (`None` = unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotLimits {
    /// Bytes.
    pub bytes: Option<u64>,
    /// Packets.
    pub packets: Option<u64>,
    /// Time in nanoseconds.
    pub time_ns: Option<u64>,
}

/// How much of its lifetime an SA has used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotUsage {
    /// Payload bytes sealed.
    pub out_bytes: u64,
    /// Packets sealed.
    pub out_packets: u64,
    /// Payload bytes delivered.
    pub in_bytes: u64,
    /// Packets delivered.
    pub in_packets: u64,
    /// Nanoseconds since installation.
    pub age_ns: u64,
}

/// A versioned, self-contained copy of one SA pair (see the module docs for the
/// format).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SaSnapshot {
    /// [`SNAPSHOT_VERSION`] of the writer.
    pub version: u32,
    /// `"esp"` or `"ah"`.
    pub protocol: String,
    /// `"tunnel"` or `"transport"`.
    pub mode: String,
    /// The SPI the peer sends to us with.
    pub inbound_spi: u32,
    /// The SPI we send with.
    pub outbound_spi: u32,
    /// IANA encryption transform id.
    pub encr: Option<u16>,
    /// Encryption key length in bits (0 for fixed-length transforms).
    pub encr_key_bits: u16,
    /// IANA integrity transform id (0 = none).
    pub integ: u16,
    /// IANA key exchange id (0 = none).
    pub ke: u16,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Keys for received packets.
    pub inbound_keys: SnapshotKeys,
    /// Keys for sent packets.
    pub outbound_keys: SnapshotKeys,
    /// Our outer address.
    pub local_addr: IpAddr,
    /// The peer's outer address.
    pub remote_addr: IpAddr,
    /// Our selectors.
    pub local_ts: Vec<SnapshotTs>,
    /// The peer's selectors.
    pub remote_ts: Vec<SnapshotTs>,
    /// UDP encapsulation ports (local, remote).
    pub udp_encap: Option<(u16, u16)>,
    /// Soft limits.
    pub soft: SnapshotLimits,
    /// Hard limits.
    pub hard: SnapshotLimits,
    /// Replay window size (0: off).
    pub replay_window: u32,
    /// The last outbound sequence number handed out.
    pub last_seq: u64,
    /// The highest sequence number received.
    pub replay_top: u64,
    /// Lifetime used so far.
    pub used: SnapshotUsage,
}

/// Outbound sequence numbers `first..=last` that one node owns exclusively for an SA
/// (see the module docs: two nodes sending the same numbers reuse AEAD nonces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    /// The first sequence number this node sends (at least 1).
    pub first: u64,
    /// The last sequence number this node may send.
    pub last: u64,
}

impl SeqRange {
    /// No numbers: an import with this range receives but sends nothing until
    /// [`Sad::grant_outbound_seq`] gives it a block.
    pub const NONE: SeqRange = SeqRange { first: 0, last: 0 };

    /// `first..=last`.
    pub const fn new(first: u64, last: u64) -> Self {
        SeqRange { first, last }
    }

    /// The range for moving an SA to this node: from `snap.last_seq + margin + 1` to
    /// the end of the sequence space. Safe only when the exporting node stops sending
    /// on the SA (deletes it) before it has sent `margin` packets after the snapshot:
    /// choose the margin from its packet rate times the hand-over delay, with ample
    /// headroom. Two nodes must never both import with this.
    pub fn after(snap: &SaSnapshot, margin: u64) -> Self {
        SeqRange {
            first: snap.last_seq.saturating_add(margin).saturating_add(1),
            last: u64::MAX,
        }
    }
}

/// An SA's outbound sequence numbers ([`Sad::outbound_seq`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundSeq {
    /// The last number handed out.
    pub last: u64,
    /// The last number the SA may send.
    pub limit: u64,
}

impl OutboundSeq {
    /// Numbers left before the SA stops sending.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.last)
    }
}

/// Options for [`Sad::import_sa`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The outbound sequence numbers the importing node owns exclusively.
    pub owned: SeqRange,
    /// How the imported SA is installed (policy binding, lookup, exportability).
    pub sa: SaOptions,
}

impl ImportOptions {
    /// Options for an import that sends only with the sequence numbers of `owned`.
    /// There is no default: which numbers a node owns is the one thing an import
    /// cannot guess.
    pub fn new(owned: SeqRange) -> Self {
        ImportOptions {
            owned,
            sa: SaOptions::default(),
        }
    }

    /// Sets the SA options.
    pub fn sa(mut self, o: SaOptions) -> Self {
        self.sa = o;
        self
    }
}

fn limits_out(l: &LifetimeLimits) -> SnapshotLimits {
    SnapshotLimits {
        bytes: l.bytes,
        packets: l.packets,
        time_ns: l
            .time
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    }
}

fn limits_in(l: &SnapshotLimits) -> LifetimeLimits {
    LifetimeLimits {
        bytes: l.bytes,
        packets: l.packets,
        time: l.time_ns.map(Duration::from_nanos),
    }
}

fn ts_out(s: &[TrafficSelector]) -> Vec<SnapshotTs> {
    s.iter()
        .map(|t| SnapshotTs {
            start_addr: t.start_addr,
            end_addr: t.end_addr,
            protocol: t.protocol.0,
            start_port: t.start_port,
            end_port: t.end_port,
        })
        .collect()
}

fn ts_in(s: &[SnapshotTs]) -> Result<TsSet, SadError> {
    let mut set = TsSet::new();
    for t in s {
        let ts = TrafficSelector {
            start_addr: t.start_addr,
            end_addr: t.end_addr,
            protocol: IpProto(t.protocol),
            start_port: t.start_port,
            end_port: t.end_port,
        };
        if !ts.is_valid() {
            return Err(SadError::InvalidSnapshot("ts"));
        }
        set.push(ts).map_err(|_| SadError::InvalidSnapshot("ts"))?;
    }
    Ok(set)
}

impl SaSnapshot {
    /// The [`ChildSaParams`] the snapshot describes (keys included).
    ///
    /// # Errors
    /// [`SadError::SnapshotVersion`], [`SadError::InvalidSnapshot`].
    pub fn to_params(&self) -> Result<ChildSaParams, SadError> {
        if self.version != SNAPSHOT_VERSION {
            return Err(SadError::SnapshotVersion(self.version));
        }
        let protocol = match self.protocol.as_str() {
            "esp" => SecurityProtocol::Esp,
            "ah" => SecurityProtocol::Ah,
            _ => return Err(SadError::InvalidSnapshot("protocol")),
        };
        let mode = match self.mode.as_str() {
            "tunnel" => Mode::Tunnel,
            "transport" => Mode::Transport,
            _ => return Err(SadError::InvalidSnapshot("mode")),
        };
        let mut p = ChildSaParams::esp(
            self.local_addr,
            self.remote_addr,
            EncrId(0),
            self.encr_key_bits,
            (Spi(self.inbound_spi), self.inbound_keys.to_keys()?),
            (Spi(self.outbound_spi), self.outbound_keys.to_keys()?),
        )
        .with_mode(mode)
        .with_integ(IntegId(self.integ))
        .with_ke(KeId(self.ke))
        .with_esn(self.esn)
        .with_selectors(ts_in(&self.local_ts)?, ts_in(&self.remote_ts)?)
        .with_udp_encap(self.udp_encap.map(|(l, r)| UdpEncap {
            local_port: l,
            remote_port: r,
        }))
        .with_lifetime(Lifetime {
            soft: limits_in(&self.soft),
            hard: limits_in(&self.hard),
        })
        .with_replay_window(self.replay_window);
        // Exactly what was exported: AH, or ESP without a cipher, too.
        p.protocol = protocol;
        p.encr = self.encr.map(EncrId);
        Ok(p)
    }
}

impl Sad {
    /// A snapshot of SA `id` at `now`: parameters, keys, the outbound counter, the top
    /// of the replay window and the lifetime used.
    ///
    /// # Errors
    /// [`SadError::UnknownSa`], [`SadError::NotExportable`].
    pub fn export_sa(&self, now: Instant, id: SaId) -> Result<SaSnapshot, SadError> {
        let sa = self.sa_arc(id).ok_or(SadError::UnknownSa(id))?;
        let keys = sa.keys.as_ref().ok_or(SadError::NotExportable)?;
        Ok(SaSnapshot {
            version: SNAPSHOT_VERSION,
            protocol: String::from(match sa.protocol {
                SecurityProtocol::Esp => "esp",
                SecurityProtocol::Ah => "ah",
            }),
            mode: String::from(match sa.mode {
                Mode::Tunnel => "tunnel",
                Mode::Transport => "transport",
            }),
            inbound_spi: sa.inbound_spi.0,
            outbound_spi: sa.outbound_spi.0,
            encr: sa.encr.map(|e| e.0),
            encr_key_bits: sa.encr_key_bits,
            integ: sa.integ.0,
            ke: sa.ke.0,
            esn: sa.esn,
            inbound_keys: SnapshotKeys::from_keys(&keys.inbound),
            outbound_keys: SnapshotKeys::from_keys(&keys.outbound),
            local_addr: sa.path().local_addr,
            remote_addr: sa.path().remote_addr,
            local_ts: ts_out(&sa.local_ts),
            remote_ts: ts_out(&sa.remote_ts),
            udp_encap: sa.path().udp_encap.map(|u| (u.local_port, u.remote_port)),
            soft: limits_out(&sa.lifetime.soft),
            hard: limits_out(&sa.lifetime.hard),
            replay_window: sa.replay_size,
            last_seq: sa.last_seq(),
            replay_top: sa.replay_top(),
            used: SnapshotUsage {
                out_bytes: sa.out.bytes(),
                out_packets: sa.out.packets(),
                in_bytes: sa.inb.bytes(),
                in_packets: sa.inb.packets(),
                age_ns: now.0.saturating_sub(sa.installed),
            },
        })
    }

    /// Lowers the last outbound sequence number SA `id` may send to `last` (it never
    /// raises it) and returns the first number the SA will never send: hand numbers
    /// from there on to other nodes ([`SeqRange`] of their imports). That is
    /// `max(last, numbers already handed out) + 1`: a number a sender took before the
    /// call may still go out, so the boundary accounts for it. Once the SA reaches its
    /// limit, outbound packets are dropped with `DropReason::SeqExhausted`.
    ///
    /// This is how a node that exported an SA keeps sending on it without sharing a
    /// nonce with the importer: limit here first, then export and give the importer
    /// a range starting at the returned number.
    ///
    /// # Errors
    /// [`SadError::UnknownSa`].
    pub fn limit_outbound_seq(&self, id: SaId, last: u64) -> Result<u64, SadError> {
        let sa = self.sa_arc(id).ok_or(SadError::UnknownSa(id))?;
        Ok(sa.limit_seq(last))
    }

    /// Gives SA `id` the outbound sequence numbers `range` (a block a cluster store
    /// leased to this node alone): the SA sends from `range.first` and stops after
    /// `range.last`. Numbers of the block before that a sender already took may still
    /// go out; numbers between the two blocks never do. This is how a node of an
    /// anycast cluster keeps sending on a shared SA: it leases the next block before
    /// the current one runs out ([`Sad::outbound_seq`] tells how much is left).
    ///
    /// # Errors
    /// [`SadError::SeqRangeUsed`] when `range.first` is not above every number the SA
    /// has handed out, [`SadError::SeqRangeInvalid`], [`SadError::UnknownSa`].
    pub fn grant_outbound_seq(&self, id: SaId, range: SeqRange) -> Result<(), SadError> {
        let sa = self.sa_arc(id).ok_or(SadError::UnknownSa(id))?;
        sa.grant_seq(range.first, range.last)
    }

    /// SA `id`'s outbound sequence numbers: the last one handed out and the last one it
    /// may send (numbers left: `limit - last`, when positive).
    ///
    /// # Errors
    /// [`SadError::UnknownSa`].
    pub fn outbound_seq(&self, id: SaId) -> Result<OutboundSeq, SadError> {
        let sa = self.sa_arc(id).ok_or(SadError::UnknownSa(id))?;
        let (last, limit) = sa.seq_state();
        Ok(OutboundSeq { last, limit })
    }

    /// Installs the SA of a snapshot at `now`. It sends with the sequence numbers of
    /// `opts.owned` only (see the module docs for why that range must be this node's
    /// alone); its replay window starts at `replay_top` with everything at or below
    /// counted as received; its lifetimes continue from `used`.
    ///
    /// # Errors
    /// [`SadError::SeqRangeUsed`] when the range does not start above the snapshot's
    /// `last_seq`, [`SadError::SeqRangeInvalid`], [`SadError::SnapshotVersion`],
    /// [`SadError::InvalidSnapshot`], and as [`Sad::add_sa`].
    pub fn import_sa(
        &self,
        now: Instant,
        snap: &SaSnapshot,
        opts: ImportOptions,
    ) -> Result<SaId, SadError> {
        let params = snap.to_params()?;
        // Counters past the sequence space: no SA sends or receives beyond it, and the
        // SA would be installed with other counters than the snapshot's.
        if snap.last_seq > seq_ceiling(snap.esn) {
            return Err(SadError::InvalidSnapshot("last_seq"));
        }
        if !snap.esn && snap.replay_top > u64::from(u32::MAX) {
            return Err(SadError::InvalidSnapshot("replay_top"));
        }
        let SeqRange { first, last } = opts.owned;
        if opts.owned == SeqRange::NONE {
            // Receive only, until `grant_outbound_seq`.
            let resume = Resume {
                last_seq: snap.last_seq,
                seq_ceiling: Some(snap.last_seq),
                replay_top: snap.replay_top,
                out_packets: snap.used.out_packets,
                out_bytes: snap.used.out_bytes,
                in_packets: snap.used.in_packets,
                in_bytes: snap.used.in_bytes,
                age: snap.used.age_ns,
            };
            return self.add_with(now, &params, opts.sa, resume);
        }
        if first == 0 || first > last || first > seq_ceiling(snap.esn) {
            return Err(SadError::SeqRangeInvalid { first, last });
        }
        if first <= snap.last_seq {
            return Err(SadError::SeqRangeUsed {
                first,
                last_seq: snap.last_seq,
            });
        }
        let resume = Resume {
            last_seq: first - 1,
            seq_ceiling: Some(last),
            replay_top: snap.replay_top,
            out_packets: snap.used.out_packets,
            out_bytes: snap.used.out_bytes,
            in_packets: snap.used.in_packets,
            in_bytes: snap.used.in_bytes,
            age: snap.used.age_ns,
        };
        self.add_with(now, &params, opts.sa, resume)
    }
}

#[cfg(feature = "serde")]
mod hex_bytes {
    use alloc::string::String;
    use alloc::vec::Vec;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            out.push(char::from(HEX[usize::from(x >> 4)]));
            out.push(char::from(HEX[usize::from(x & 15)]));
        }
        let r = s.serialize_str(&out);
        zeroize::Zeroize::zeroize(&mut out);
        r
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let mut s = String::deserialize(d)?;
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let r = if s.len() % 2 != 0 {
            None
        } else {
            s.as_bytes()
                .chunks(2)
                .map(|p| Some(nib(*p.first()?)? << 4 | nib(*p.get(1)?)?))
                .collect()
        };
        zeroize::Zeroize::zeroize(&mut s);
        r.ok_or_else(|| serde::de::Error::custom("keys must be hex"))
    }
}
