//! One SA pair as the SAD holds it: transforms, counters, lifetimes.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::sync::atomic::Ordering::{Relaxed, SeqCst};
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use ipsec_ah::{AhInbound, AhOutbound, Tunnel as AhTunnel, TunnelConfig as AhTunnelConfig};
use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::Instant;
use ipsec_core::{
    ChildSaParams, IpProto, KeyMaterial, Lifetime, Mode, PacketBuf, ReplayError, ReplayWindow,
    ResyncPolicy, SecurityProtocol, SeqCounter, Spi, TrafficSelector, TsSet, UdpEncap,
};
use ipsec_crypto::suites::{self, EncrKind};
use ipsec_crypto::CryptoProvider;
use ipsec_esp::transport::TransportError;
use ipsec_esp::tunnel::{Tunnel, TunnelConfig, TunnelError};
use ipsec_esp::udp::UdpPorts;
use ipsec_esp::{
    EspInbound, EspOutbound, ExternalReplay, OpenError, ReplayGuard, SaError, SealError,
};

use crate::classify::{Direction, FlowKey, PortValue};
use crate::event::{Event, Events, ExpiryCause};
pub use crate::id::SaId;
use crate::spd::PolicyId;
use crate::stats::{DirCounters, DropCounters, DropReason, SaStats};
use crate::trace;

/// How inbound packets find this SA (RFC 4301 §4.1): by SPI alone (unicast), or by SPI
/// and destination (and source) address, which multicast SAs need since several
/// senders may pick the same SPI. Lookup takes the longest match: SPI + destination +
/// source, then SPI + destination, then SPI alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundLookup {
    /// SPI (and protocol) only.
    Spi,
    /// SPI and the outer destination address (our `local_addr`).
    SpiDst,
    /// SPI, outer destination and outer source address (`remote_addr`).
    SpiDstSrc,
}

/// Options for installing an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaOptions {
    /// The outbound SPD rule whose packets this SA protects; `None` for an inbound-only
    /// use (the outbound half then seals only through an explicit binding).
    pub policy: Option<PolicyId>,
    /// How inbound packets find the SA; `None` picks [`InboundLookup::SpiDst`] for a
    /// multicast `local_addr` and [`InboundLookup::Spi`] otherwise.
    pub inbound_lookup: Option<InboundLookup>,
    /// Keep a copy of the keys so that [`Sad::export_sa`](crate::Sad::export_sa) works
    /// (256 bytes per SA; `false` makes the SA non-exportable).
    pub exportable: bool,
    /// ESP only: pad outbound ciphertext to a multiple of this many bytes (4, 8 or 16,
    /// and at least the cipher's block) instead of the least the cipher needs (see
    /// `EspOutbound::set_padding_alignment`: with ring's AES-GCM, 16 saves about 17 %
    /// at 64-byte packets for up to 12 bytes more on the wire). At most 16, so that
    /// [`MAX_TAILROOM`](crate::MAX_TAILROOM) still holds. `None`: the least.
    pub padding_alignment: Option<usize>,
    /// SAs with ESN only (ESP and AH): when and how hard to re-synchronize the high half
    /// of the sequence number after more than 2^32 lost packets (RFC 4303 Appendix A3,
    /// RFC 4302 Appendix B3).
    /// Default [`ResyncPolicy::DEFAULT`] (after 64 consecutive authentication failures,
    /// up to 8 high halves); [`ResyncPolicy::DISABLED`] switches it off. A successful
    /// re-synchronization delivers the packet and queues [`Event::EsnResynced`].
    pub esn_resync: ResyncPolicy,
}

impl Default for SaOptions {
    fn default() -> Self {
        SaOptions {
            policy: None,
            inbound_lookup: None,
            exportable: true,
            padding_alignment: None,
            esn_resync: ResyncPolicy::DEFAULT,
        }
    }
}

impl SaOptions {
    /// Defaults: no policy, lookup by SPI (or SPI + destination for multicast),
    /// exportable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds the SA to the outbound rule `policy`.
    pub fn policy(mut self, policy: PolicyId) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets how inbound packets find the SA.
    pub fn inbound_lookup(mut self, l: InboundLookup) -> Self {
        self.inbound_lookup = Some(l);
        self
    }

    /// Sets the ESN re-synchronization policy (see
    /// [`SaOptions::esn_resync`](field@SaOptions::esn_resync)).
    pub fn esn_resync(mut self, policy: ResyncPolicy) -> Self {
        self.esn_resync = policy;
        self
    }

    /// Whether the SA can be exported.
    pub fn exportable(mut self, e: bool) -> Self {
        self.exportable = e;
        self
    }

    /// Pads outbound ESP ciphertext to a multiple of `align` bytes (4, 8 or 16, at
    /// least the cipher's alignment); see
    /// [`SaOptions::padding_alignment`](field@SaOptions::padding_alignment).
    pub fn padding_alignment(mut self, align: usize) -> Self {
        self.padding_alignment = Some(align);
        self
    }
}

/// What an installed SA is (no keys).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaInfo {
    /// The SAD's handle.
    pub id: SaId,
    /// ESP or AH.
    pub protocol: SecurityProtocol,
    /// Tunnel or transport.
    pub mode: Mode,
    /// The SPI the peer sends to us with.
    pub inbound_spi: Spi,
    /// The SPI we send with.
    pub outbound_spi: Spi,
    /// The encryption transform.
    pub encr: Option<EncrId>,
    /// Its key length in bits (0 for fixed-length transforms).
    pub encr_key_bits: u16,
    /// The integrity transform.
    pub integ: IntegId,
    /// The key exchange of the SA's keys.
    pub ke: KeId,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our outer address.
    pub local_addr: IpAddr,
    /// The peer's outer address.
    pub remote_addr: IpAddr,
    /// Selectors on our side.
    pub local_ts: TsSet,
    /// Selectors on the peer's side.
    pub remote_ts: TsSet,
    /// UDP encapsulation.
    pub udp_encap: Option<UdpEncap>,
    /// The lifetimes.
    pub lifetime: Lifetime,
    /// The replay window size (0: off).
    pub replay_window: u32,
    /// The outbound rule it is bound to.
    pub policy: Option<PolicyId>,
    /// How inbound packets find it.
    pub inbound_lookup: InboundLookup,
    /// When it was installed (moved back by the age of an imported SA).
    pub installed: Instant,
    /// The last outbound sequence number handed out.
    pub last_seq: u64,
}

/// Why the SAD refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SadError {
    /// The ESP transforms could not be set up from the parameters.
    #[error("esp: {0}")]
    Esp(SaError),
    /// The AH transforms could not be set up from the parameters.
    #[error("ah: {0}")]
    Ah(ipsec_ah::SaError),
    /// The SA needs something this build does not support.
    #[error("{0:?} SAs are not supported in this build")]
    Unsupported(SecurityProtocol),
    /// An SPI is 0..=255 (reserved, RFC 4303 §2.1).
    #[error("reserved spi {0}")]
    ReservedSpi(Spi),
    /// Another SA already receives on this SPI (with the same lookup addresses).
    #[error("spi {0} already in use")]
    SpiInUse(Spi),
    /// No SA with this id.
    #[error("no sa {}", .0.0)]
    UnknownSa(SaId),
    /// No outbound rule with this id.
    #[error("no outbound policy {}", .0.0)]
    UnknownPolicy(PolicyId),
    /// Local and remote address are of different families.
    #[error("local and remote address of different families")]
    AddressFamily,
    /// The SA was installed with `exportable = false`.
    #[error("sa installed as not exportable")]
    NotExportable,
    /// The snapshot has a version this code does not read.
    #[error("unknown snapshot version {0}")]
    SnapshotVersion(u32),
    /// The snapshot is inconsistent (named field).
    #[error("invalid snapshot field {0}")]
    InvalidSnapshot(&'static str),
    /// An import's sequence range is empty, starts at 0 or starts beyond the SA's
    /// sequence space (2^32 - 1 without ESN, 2^64 - 1 - 2^32 with it). A range that
    /// only ends beyond it is cut to it.
    #[error("invalid sequence range {first}..={last}")]
    SeqRangeInvalid {
        /// The range's first number.
        first: u64,
        /// The range's last number.
        last: u64,
    },
    /// An import's sequence range starts at or below the snapshot's `last_seq`: those
    /// numbers (and so their AEAD nonces) may already have been sent under this key.
    #[error("sequence range starting at {first} overlaps numbers already used (up to {last_seq})")]
    SeqRangeUsed {
        /// The range's first number.
        first: u64,
        /// The last number the exporter had handed out.
        last_seq: u64,
    },
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// Limits as plain numbers (`u64::MAX` = none), precomputed for the data path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) soft_bytes: u64,
    pub(crate) soft_packets: u64,
    pub(crate) hard_bytes: u64,
    pub(crate) hard_packets: u64,
    pub(crate) soft_at: u64,
    pub(crate) hard_at: u64,
}

fn ns(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Limits {
    fn new(l: &Lifetime, installed: u64) -> Self {
        let at = |t: Option<core::time::Duration>| {
            t.map_or(u64::MAX, |d| installed.saturating_add(ns(d)))
        };
        Limits {
            soft_bytes: l.soft.bytes.unwrap_or(u64::MAX),
            soft_packets: l.soft.packets.unwrap_or(u64::MAX),
            hard_bytes: l.hard.bytes.unwrap_or(u64::MAX),
            hard_packets: l.hard.packets.unwrap_or(u64::MAX),
            soft_at: at(l.soft.time),
            hard_at: at(l.hard.time),
        }
    }

    /// No byte or packet limit: the counters need not be exact per packet, so they
    /// are striped per thread (`DirCounters::add_striped`).
    pub(crate) fn unlimited_volume(&self) -> bool {
        self.soft_bytes == u64::MAX
            && self.soft_packets == u64::MAX
            && self.hard_bytes == u64::MAX
            && self.hard_packets == u64::MAX
    }
}

/// Any valid size; a disabled window ignores it.
const MIN_WINDOW: u32 = 32;
const LIVE: u8 = 0;
const DEAD: u8 = 1;
const FIRED_SOFT: u8 = 1;
const FIRED_HARD: u8 = 2;
const FIRED_SEQ: u8 = 4;

/// The secret copy kept for export.
pub(crate) struct ExportKeys {
    pub(crate) inbound: KeyMaterial,
    pub(crate) outbound: KeyMaterial,
}

/// The transforms of a pair.
// ESP, the common and hot case, stays inline (boxing it would add a pointer chase per
// packet); AH, rare and three times larger, is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Xform {
    /// ESP: sealed and opened through shared references, no lock around the crypto.
    Esp {
        out: EspOutbound,
        inb: EspInbound<ExternalReplay>,
    },
    /// AH, through `ipsec-ah`'s shared-reference entry points (`seal_*_at`,
    /// `open_*_with`) like ESP: no lock around the ICV computation. Boxed: the AH
    /// transforms are larger than ESP's and rare.
    Ah(Box<AhState>),
}

/// The AH transforms of a pair.
pub(crate) struct AhState {
    out: AhOutbound,
    inb: AhInbound,
}

/// The addresses of an SA pair and what is built from them (the outer headers of
/// tunnel mode, UDP encapsulation): replaced whole when the SA moves
/// ([`Sad::update_sa_path`](crate::Sad::update_sa_path), MOBIKE), while the
/// transforms, sequence numbers and replay window stay.
pub(crate) struct SaPath {
    pub(crate) local_addr: IpAddr,
    pub(crate) remote_addr: IpAddr,
    pub(crate) udp_encap: Option<UdpEncap>,
    /// ESP tunnel mode: the outer header (with UDP when encapsulated).
    tunnel: Option<Tunnel>,
    /// For a UDP-encapsulated ESP tunnel-mode SA, the same tunnel without the UDP
    /// header, for `Sad::process_outbound_udp`: it seals the ESP packet and drops
    /// the outer IP header the socket will add. Built once here, not per packet.
    bare: Option<Tunnel>,
    /// AH tunnel mode: the outer header.
    ah_tunnel: Option<AhTunnel>,
}

impl SaPath {
    fn new(
        protocol: SecurityProtocol,
        mode: Mode,
        local_addr: IpAddr,
        remote_addr: IpAddr,
        udp_encap: Option<UdpEncap>,
    ) -> Result<Self, SadError> {
        if local_addr.is_ipv4() != remote_addr.is_ipv4() {
            return Err(SadError::AddressFamily);
        }
        let mut path = SaPath {
            local_addr,
            remote_addr,
            udp_encap,
            tunnel: None,
            bare: None,
            ah_tunnel: None,
        };
        if mode != Mode::Tunnel {
            return Ok(path);
        }
        match protocol {
            SecurityProtocol::Esp => {
                let cfg = TunnelConfig::new(local_addr, remote_addr);
                if udp_encap.is_some() {
                    path.bare = Some(Tunnel::new(cfg).map_err(|_| SadError::AddressFamily)?);
                }
                let mut cfg = cfg;
                cfg.udp = udp_encap.map(|u| UdpPorts {
                    src: u.local_port,
                    dst: u.remote_port,
                });
                path.tunnel = Some(Tunnel::new(cfg).map_err(|_| SadError::AddressFamily)?);
            }
            SecurityProtocol::Ah => {
                path.ah_tunnel = Some(
                    AhTunnel::new(AhTunnelConfig::new(local_addr, remote_addr))
                        .map_err(|_| SadError::AddressFamily)?,
                );
            }
        }
        Ok(path)
    }
}

/// One installed SA pair.
pub(crate) struct Sa {
    pub(crate) id: SaId,
    pub(crate) protocol: SecurityProtocol,
    pub(crate) mode: Mode,
    pub(crate) inbound_spi: Spi,
    pub(crate) outbound_spi: Spi,
    pub(crate) encr: Option<EncrId>,
    pub(crate) encr_key_bits: u16,
    pub(crate) integ: IntegId,
    pub(crate) ke: KeId,
    pub(crate) esn: bool,
    /// Addresses, outer headers and UDP encapsulation: one atomic load per packet,
    /// swapped by [`Sa::set_path`].
    path: ArcSwap<SaPath>,
    pub(crate) local_ts: Box<[TrafficSelector]>,
    pub(crate) remote_ts: Box<[TrafficSelector]>,
    pub(crate) lifetime: Lifetime,
    pub(crate) replay_size: u32,
    pub(crate) policy: Option<PolicyId>,
    pub(crate) lookup: InboundLookup,
    pub(crate) installed: u64,
    pub(crate) limits: Limits,
    xform: Xform,
    /// The last sequence number handed out; a compare-and-swap makes every number
    /// unique ([`Sa::next_seq`]).
    seq: AtomicU64,
    /// The last sequence number this SA may send: lowered by [`Sa::limit_seq`], moved
    /// to a new block's end by [`Sa::grant_seq`].
    seq_limit: AtomicU64,
    /// The first number of the block [`Sa::grant_seq`] granted last (0: no block was
    /// granted, every number up to the limit is the SA's own).
    seq_floor: AtomicU64,
    /// Serializes grants and remembers the block before the current one, whose
    /// numbers senders may have taken just before a switch.
    seq_blocks: Mutex<SeqBlocks>,
    /// How far below the limit `Event::SeqNearExhaustion` fires.
    seq_warn_margin: u64,
    ident: AtomicU16,
    /// Held only to check and to mark, never across the crypto.
    replay: Mutex<ReplayWindow>,
    /// Consecutive packets that failed authentication (RFC 4303 Appendix A3.1,
    /// RFC 4302 Appendix B3.1), next to the window whose lock every packet takes anyway.
    auth_failures: AtomicU32,
    /// ESN re-synchronization; `DISABLED` unless the SA has ESN.
    resync: ResyncPolicy,
    /// The copy of the packet an ESP re-synchronization works on. Empty (no
    /// allocation) except while an attempt is armed, and always empty for AH, whose
    /// failed verification leaves the packet intact; only `try_lock`ed, so one attempt
    /// per SA (ESP or AH) runs at a time and no packet ever waits for it.
    resync_scratch: Mutex<Vec<u8>>,
    pub(crate) out: DirCounters,
    pub(crate) inb: DirCounters,
    pub(crate) drops: DropCounters,
    state: AtomicU8,
    fired: AtomicU8,
    pub(crate) keys: Option<Box<ExportKeys>>,
}

impl fmt::Debug for Sa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sa")
            .field("id", &self.id)
            .field("inbound_spi", &self.inbound_spi)
            .field("outbound_spi", &self.outbound_spi)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The last outbound sequence number an SA may ever send: 2^32 - 1 without ESN, and
/// with ESN 2^64 - 1 less 2^32 of headroom (kept from when senders could race past
/// the limit; the counter now never passes it by more than `limit_seq` lowers it, so
/// it cannot wrap to 0 either way).
pub(crate) fn seq_ceiling(esn: bool) -> u64 {
    if esn {
        u64::MAX - (1 << 32)
    } else {
        SeqCounter::new(false).limit()
    }
}

/// The block before the current one ([`Sa::grant_seq`]).
#[derive(Debug, Default)]
struct SeqBlocks {
    previous: Option<(u64, u64)>,
}

/// Where the SA's import state starts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Resume {
    pub(crate) last_seq: u64,
    /// The last outbound sequence number this node may use (an imported range's end).
    pub(crate) seq_ceiling: Option<u64>,
    pub(crate) replay_top: u64,
    pub(crate) out_packets: u64,
    pub(crate) out_bytes: u64,
    pub(crate) in_packets: u64,
    pub(crate) in_bytes: u64,
    pub(crate) age: u64,
}

/// The IANA multicast ranges.
fn is_multicast(a: IpAddr) -> bool {
    a.is_multicast()
}

fn ts_port_ok(ts: &TrafficSelector, v: PortValue) -> bool {
    if ts.start_port == 0 && ts.end_port == u16::MAX {
        return true;
    }
    match v {
        // The OPAQUE encoding of RFC 7296 §3.13.1.
        PortValue::Opaque => ts.start_port == u16::MAX && ts.end_port == 0,
        PortValue::Port(p) => ts.start_port <= p && p <= ts.end_port,
    }
}

/// Whether `addr`/`proto`/`port` is inside one of `set` (an empty set is "any").
pub(crate) fn ts_match(
    set: &[TrafficSelector],
    addr: IpAddr,
    proto: IpProto,
    port: PortValue,
) -> bool {
    set.is_empty()
        || set.iter().any(|t| {
            t.contains_addr(addr)
                && (t.protocol == IpProto::ANY || t.protocol == proto)
                && ts_port_ok(t, port)
        })
}

/// A [`ReplayGuard`] that locks the SA's window for each call and not in between.
struct LockedWindow<'a>(&'a Mutex<ReplayWindow>);

impl ReplayGuard for LockedWindow<'_> {
    fn check_seq(&mut self, seq_lo: u32, esn: bool) -> Result<u64, ReplayError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_seq(seq_lo, esn)
    }

    fn mark_seq(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mark_seq(seq)
    }
}

fn open_reason(e: OpenError) -> DropReason {
    match e {
        OpenError::Malformed(_) => DropReason::Malformed,
        OpenError::Replay(_) => DropReason::Replay,
        OpenError::Integrity => DropReason::Integrity,
        OpenError::Padding => DropReason::Padding,
        OpenError::Dummy => DropReason::Dummy,
        _ => DropReason::Malformed,
    }
}

fn seal_reason(e: SealError) -> DropReason {
    match e {
        SealError::SequenceExhausted => DropReason::SeqExhausted,
        SealError::InsufficientRoom { .. } => DropReason::NoRoom,
        _ => DropReason::Crypto,
    }
}

fn tunnel_reason(e: TunnelError) -> DropReason {
    match e {
        TunnelError::Fragment => DropReason::Fragment,
        TunnelError::EcnDrop => DropReason::Ecn,
        TunnelError::TooLarge => DropReason::TooLarge,
        TunnelError::InsufficientRoom { .. } => DropReason::NoRoom,
        TunnelError::Seal(e) => seal_reason(e),
        TunnelError::Open(e) => open_reason(e),
        _ => DropReason::Malformed,
    }
}

fn transport_reason(e: TransportError) -> DropReason {
    match e {
        TransportError::Fragment => DropReason::Fragment,
        TransportError::TooLarge => DropReason::TooLarge,
        TransportError::InsufficientRoom { .. } => DropReason::NoRoom,
        TransportError::Seal(e) => seal_reason(e),
        TransportError::Open(e) => open_reason(e),
        _ => DropReason::Malformed,
    }
}

/// What a seal leaves in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The datagram to send: outer IP header (the packet's own in transport mode), UDP
    /// header when the SA encapsulates, ESP or AH.
    Datagram,
    /// The ESP packet alone, from the SPI on: the payload of an ESP-in-UDP datagram
    /// (RFC 3948 §2.1) for a UDP socket to send. ESP SAs only.
    UdpPayload,
}

/// Drops `n` bytes from the front of the body (a header just written).
fn strip_front<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    n: usize,
) -> Result<(), DropReason> {
    buf.pull_front(n).map_err(|_| DropReason::Malformed)
}

/// What a successful open found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenedInfo {
    pub(crate) seq: u64,
    pub(crate) next_header: IpProto,
    pub(crate) udp: Option<UdpPorts>,
}

impl Sa {
    /// Builds the pair from `p`. The expensive part (key schedules) happens here,
    /// before the SAD's writer lock is taken.
    pub(crate) fn new(
        provider: &CryptoProvider,
        id: SaId,
        p: &ChildSaParams,
        opts: &SaOptions,
        now: Instant,
        seq_warn_margin: u64,
        resume: Resume,
    ) -> Result<Self, SadError> {
        for spi in [p.inbound_spi, p.outbound_spi] {
            if spi.is_reserved() {
                return Err(SadError::ReservedSpi(spi));
            }
        }
        let path = SaPath::new(p.protocol, p.mode, p.local_addr, p.remote_addr, p.udp_encap)?;
        let (xform, window) = match p.protocol {
            SecurityProtocol::Esp => Self::esp(provider, p, resume, opts.padding_alignment)?,
            SecurityProtocol::Ah => Self::ah(provider, p, resume)?,
        };
        let seq_limit = seq_ceiling(p.esn);
        let seq_limit = resume.seq_ceiling.map_or(seq_limit, |c| c.min(seq_limit));
        let installed = now.0.saturating_sub(resume.age);
        let lookup = opts
            .inbound_lookup
            .unwrap_or(if is_multicast(p.local_addr) {
                InboundLookup::SpiDst
            } else {
                InboundLookup::Spi
            });
        let sa = Sa {
            id,
            protocol: p.protocol,
            mode: p.mode,
            inbound_spi: p.inbound_spi,
            outbound_spi: p.outbound_spi,
            encr: p.encr,
            encr_key_bits: p.encr_key_bits,
            integ: p.integ,
            ke: p.ke,
            esn: p.esn,
            path: ArcSwap::from_pointee(path),
            local_ts: p.local_ts.as_slice().into(),
            remote_ts: p.remote_ts.as_slice().into(),
            lifetime: p.lifetime,
            replay_size: p.replay_window,
            policy: opts.policy,
            lookup,
            installed,
            limits: Limits::new(&p.lifetime, installed),
            xform,
            seq: AtomicU64::new(resume.last_seq.min(seq_limit)),
            seq_limit: AtomicU64::new(seq_limit),
            seq_floor: AtomicU64::new(0),
            seq_blocks: Mutex::new(SeqBlocks::default()),
            seq_warn_margin,
            ident: AtomicU16::new(0),
            replay: Mutex::new(window),
            auth_failures: AtomicU32::new(0),
            resync: if p.esn {
                opts.esn_resync
            } else {
                ResyncPolicy::DISABLED
            },
            resync_scratch: Mutex::new(Vec::new()),
            out: DirCounters::default(),
            inb: DirCounters::default(),
            drops: DropCounters::default(),
            state: AtomicU8::new(LIVE),
            fired: AtomicU8::new(0),
            keys: opts.exportable.then(|| {
                Box::new(ExportKeys {
                    inbound: p.inbound_keys.duplicate(),
                    outbound: p.outbound_keys.duplicate(),
                })
            }),
        };
        sa.out.packets.store(resume.out_packets, Relaxed);
        sa.out.bytes.store(resume.out_bytes, Relaxed);
        sa.inb.packets.store(resume.in_packets, Relaxed);
        sa.inb.bytes.store(resume.in_bytes, Relaxed);
        Ok(sa)
    }

    fn esp(
        provider: &CryptoProvider,
        p: &ChildSaParams,
        resume: Resume,
        padding_alignment: Option<usize>,
    ) -> Result<(Xform, ReplayWindow), SadError> {
        let unknown = SadError::Esp(SaError::UnknownTransform);
        let encr = p
            .encr
            .and_then(|id| suites::encr(id, p.encr_key_bits))
            .ok_or(unknown)?;
        let integ = if p.integ == IntegId::NONE {
            None
        } else {
            Some(suites::integ(p.integ).ok_or(unknown)?)
        };
        let mut out = EspOutbound::new(
            provider,
            p.outbound_spi,
            encr,
            integ,
            &p.outbound_keys,
            p.esn,
        )
        .map_err(SadError::Esp)?;
        // More than 16 would break the MAX_TAILROOM promise.
        if padding_alignment.is_some_and(|a| a > 16) {
            return Err(SadError::Esp(SaError::PaddingAlignment(
                padding_alignment.unwrap_or(0),
            )));
        }
        out.set_padding_alignment(padding_alignment)
            .map_err(SadError::Esp)?;
        // The SAD keeps the window (below), so the transform has none of its own.
        let inb = EspInbound::with_external_replay(
            provider,
            p.inbound_spi,
            encr,
            integ,
            &p.inbound_keys,
            p.esn,
        )
        .map_err(SadError::Esp)?;
        let window = if p.replay_window == 0 {
            // Off, but the top is still tracked for ESN inference.
            ReplayWindow::restore(MIN_WINDOW, false, resume.replay_top)
                .map_err(|e| SadError::Esp(SaError::ReplayWindow(e)))?
        } else {
            let combined = matches!(encr.kind, EncrKind::Aead | EncrKind::Gmac);
            if integ.is_none() && !combined {
                return Err(SadError::Esp(SaError::ReplayWithoutIntegrity));
            }
            ReplayWindow::restore(p.replay_window, true, resume.replay_top)
                .map_err(|e| SadError::Esp(SaError::ReplayWindow(e)))?
        };
        Ok((Xform::Esp { out, inb }, window))
    }

    fn ah(
        provider: &CryptoProvider,
        p: &ChildSaParams,
        resume: Resume,
    ) -> Result<(Xform, ReplayWindow), SadError> {
        if p.encr.is_some() {
            return Err(SadError::Ah(ipsec_ah::SaError::NotAh));
        }
        let integ = ipsec_ah::integ::by_id(p.integ)
            .ok_or(SadError::Ah(ipsec_ah::SaError::UnknownTransform))?;
        let out = AhOutbound::new(provider, p.outbound_spi, integ, &p.outbound_keys, p.esn)
            .map_err(SadError::Ah)?;
        // The SAD keeps the window (below), so the transform's own is switched off.
        let inb = AhInbound::new(provider, p.inbound_spi, integ, &p.inbound_keys, p.esn, 0)
            .map_err(SadError::Ah)?;
        let enabled = p.replay_window != 0;
        let size = if enabled { p.replay_window } else { MIN_WINDOW };
        let window = ReplayWindow::restore(size, enabled, resume.replay_top)
            .map_err(|e| SadError::Ah(ipsec_ah::SaError::ReplayWindow(e)))?;
        Ok((Xform::Ah(Box::new(AhState { out, inb })), window))
    }

    pub(crate) fn with_id(mut self, id: SaId) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Relaxed) == LIVE
    }

    /// Marks the SA dead; true for the caller that did it.
    pub(crate) fn kill(&self) -> bool {
        self.state.swap(DEAD, Relaxed) == LIVE
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.seq.load(Relaxed).min(self.seq_limit.load(Relaxed))
    }

    /// Makes `first..=last` the SA's block of outbound sequence numbers (numbers a
    /// cluster store leased to this node alone). `first` must lie above every number
    /// already handed out, so no number is ever used twice; numbers between the old
    /// block and `first` are never sent.
    pub(crate) fn grant_seq(&self, first: u64, last: u64) -> Result<(), SadError> {
        if first == 0 || first > last || first > seq_ceiling(self.esn) {
            return Err(SadError::SeqRangeInvalid { first, last });
        }
        let last = last.min(seq_ceiling(self.esn));
        let mut blocks = self
            .seq_blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let taken = self.seq.load(SeqCst);
        if first <= taken {
            return Err(SadError::SeqRangeUsed {
                first,
                last_seq: taken,
            });
        }
        let old = (
            self.seq_floor.load(SeqCst).max(1),
            self.seq_limit.load(SeqCst),
        );
        blocks.previous = (old.0 <= old.1).then_some(old);
        // Floor, counter, limit, in this order (see `next_seq`).
        self.seq_floor.store(first, SeqCst);
        self.seq.fetch_max(first - 1, SeqCst);
        self.seq_limit.store(last, SeqCst);
        Ok(())
    }

    /// The last sequence number handed out and the last one the SA may send.
    pub(crate) fn seq_state(&self) -> (u64, u64) {
        (self.seq.load(SeqCst), self.seq_limit.load(SeqCst))
    }

    /// Lowers the last sequence number this SA may send to `last` (never raises it)
    /// and returns the first number it will never send: `max(limit, counter) + 1`. A
    /// sender that took its number before the limit moved may still send it; one that
    /// takes a number after the counter is read here sees the new limit (both sides
    /// are sequentially consistent), so every number from the returned one on is free.
    pub(crate) fn limit_seq(&self, last: u64) -> u64 {
        let limit = self.seq_limit.fetch_min(last, SeqCst).min(last);
        let counter = self.seq.load(SeqCst);
        limit.max(counter).saturating_add(1)
    }

    pub(crate) fn replay_top(&self) -> u64 {
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .top()
    }

    pub(crate) fn stats(&self) -> SaStats {
        SaStats {
            out_packets: self.out.packets(),
            out_bytes: self.out.bytes(),
            in_packets: self.inb.packets(),
            in_bytes: self.inb.bytes(),
            drops: self.drops.snapshot(),
        }
    }

    /// The SA's addresses, outer headers and UDP encapsulation as they are now.
    pub(crate) fn path(&self) -> arc_swap::Guard<Arc<SaPath>> {
        self.path.load()
    }

    /// Moves the SA to `local` / `remote` with `udp_encap` (MOBIKE, RFC 4555 §3.5):
    /// packets sealed after this go out with the new outer header; the transforms,
    /// sequence counter, replay window, counters and lifetimes stay.
    ///
    /// # Errors
    /// [`SadError::AddressFamily`] for mixed families, or a transport-mode SA asked
    /// to change family (its inner packets are of the outer family).
    pub(crate) fn set_path(
        &self,
        local: IpAddr,
        remote: IpAddr,
        udp_encap: Option<UdpEncap>,
    ) -> Result<(), SadError> {
        if self.mode == Mode::Transport && local.is_ipv4() != self.path().local_addr.is_ipv4() {
            return Err(SadError::AddressFamily);
        }
        let path = SaPath::new(self.protocol, self.mode, local, remote, udp_encap)?;
        self.path.store(Arc::new(path));
        Ok(())
    }

    pub(crate) fn info(&self) -> SaInfo {
        let path = self.path();
        let set = |s: &[TrafficSelector]| {
            let mut t = TsSet::new();
            for x in s {
                let _ = t.push(*x);
            }
            t
        };
        SaInfo {
            id: self.id,
            protocol: self.protocol,
            mode: self.mode,
            inbound_spi: self.inbound_spi,
            outbound_spi: self.outbound_spi,
            encr: self.encr,
            encr_key_bits: self.encr_key_bits,
            integ: self.integ,
            ke: self.ke,
            esn: self.esn,
            local_addr: path.local_addr,
            remote_addr: path.remote_addr,
            local_ts: set(&self.local_ts),
            remote_ts: set(&self.remote_ts),
            udp_encap: path.udp_encap,
            lifetime: self.lifetime,
            replay_window: self.replay_size,
            policy: self.policy,
            inbound_lookup: self.lookup,
            installed: Instant(self.installed),
            last_seq: self.last_seq(),
        }
    }

    /// Whether the SA is the one for inbound packets from `src` to `dst` at this
    /// lookup precision.
    pub(crate) fn lookup_matches(&self, dst: IpAddr, src: IpAddr) -> u8 {
        match self.lookup {
            InboundLookup::Spi => 1,
            InboundLookup::SpiDst => u8::from(self.path().local_addr == dst) * 2,
            InboundLookup::SpiDstSrc => {
                let path = self.path();
                u8::from(path.local_addr == dst && path.remote_addr == src) * 3
            }
        }
    }

    /// Whether an outbound packet lies inside the SA's selectors.
    pub(crate) fn covers_outbound(&self, k: &FlowKey) -> bool {
        ts_match(&self.local_ts, k.local, k.protocol, k.local_port)
            && ts_match(&self.remote_ts, k.remote, k.protocol, k.remote_port)
    }

    fn soft(&self, events: &Events, cause: ExpiryCause) {
        if self.fired.fetch_or(FIRED_SOFT, Relaxed) & FIRED_SOFT == 0 {
            events.push(Event::SoftExpired {
                sa: self.id,
                inbound_spi: self.inbound_spi,
                outbound_spi: self.outbound_spi,
                cause,
            });
        }
    }

    /// Ends the SA (data path or timer) and reports it once.
    pub(crate) fn hard(&self, events: &Events, cause: ExpiryCause) {
        self.kill();
        if self.fired.fetch_or(FIRED_HARD, Relaxed) & FIRED_HARD == 0 {
            events.push(Event::HardExpired {
                sa: self.id,
                inbound_spi: self.inbound_spi,
                outbound_spi: self.outbound_spi,
                cause,
            });
        }
    }

    /// Checks the time limits at `now`; false when the SA is (now) dead.
    pub(crate) fn check_time(&self, now: Instant, events: &Events) -> bool {
        if now.0 >= self.limits.hard_at {
            self.hard(events, ExpiryCause::Time);
            return false;
        }
        if now.0 >= self.limits.soft_at {
            self.soft(events, ExpiryCause::Time);
        }
        self.is_live()
    }

    /// Counts a packet of `len` bytes in direction `dir` against the byte and packet
    /// limits. `Err` when the hard limit was already reached before this packet (it
    /// must not be processed); the packet that reaches the limit is the last one.
    fn account(&self, dir: Direction, len: u64, events: &Events) -> Result<(), DropReason> {
        let c = match dir {
            Direction::Outbound => &self.out,
            Direction::Inbound => &self.inb,
        };
        let l = &self.limits;
        if l.unlimited_volume() {
            c.add_striped(len);
            return Ok(());
        }
        let p = c.packets.fetch_add(1, Relaxed).saturating_add(1);
        let before = c.bytes.fetch_add(len, Relaxed);
        let b = before.saturating_add(len);
        if p > l.hard_packets || before >= l.hard_bytes {
            c.packets.fetch_sub(1, Relaxed);
            c.bytes.fetch_sub(len, Relaxed);
            let cause = if p > l.hard_packets {
                ExpiryCause::Packets(dir)
            } else {
                ExpiryCause::Bytes(dir)
            };
            self.hard(events, cause);
            return Err(DropReason::Expired);
        }
        if p >= l.hard_packets {
            self.hard(events, ExpiryCause::Packets(dir));
        } else if b >= l.hard_bytes {
            self.hard(events, ExpiryCause::Bytes(dir));
        } else if p >= l.soft_packets {
            self.soft(events, ExpiryCause::Packets(dir));
        } else if b >= l.soft_bytes {
            self.soft(events, ExpiryCause::Bytes(dir));
        }
        Ok(())
    }

    fn unaccount(&self, len: u64) {
        if self.limits.unlimited_volume() {
            self.out.sub_striped(len);
            return;
        }
        self.out.packets.fetch_sub(1, Relaxed);
        self.out.bytes.fetch_sub(len, Relaxed);
    }

    /// Takes the next outbound sequence number: unique under any contention, never
    /// reused, only from the SA's own blocks, an error once exhausted.
    fn next_seq(&self, events: &Events) -> Result<u64, DropReason> {
        // The counter moves only from below the limit it was read against, so it never
        // passes the limit by senders that are refused: `grant_seq` may then grant the
        // numbers right after the limit. (The counter passes the limit only when
        // `limit_seq` lowers it; numbers taken before that may really go out.) What
        // `limit_seq` relies on is the sequentially consistent exchange and the limit
        // read after it.
        let mut taken = self.seq.load(SeqCst);
        let seq = loop {
            if taken >= self.seq_limit.load(SeqCst) {
                return Err(DropReason::SeqExhausted);
            }
            match self
                .seq
                .compare_exchange_weak(taken, taken + 1, SeqCst, SeqCst)
            {
                Ok(_) => break taken + 1,
                Err(now) => taken = now,
            }
        };
        // The limit before the floor: `grant_seq` stores the floor before the limit,
        // so a sender that sees a new limit sees its floor too, and a number taken
        // before a switch (below the new floor) cannot pass as one of the new block.
        let limit = self.seq_limit.load(SeqCst);
        let floor = self.seq_floor.load(SeqCst);
        if seq > limit || seq < floor {
            // Rare: a switch of blocks raced with this sender. Decide under the lock
            // `grant_seq` holds while it switches.
            let blocks = self
                .seq_blocks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let limit = self.seq_limit.load(SeqCst);
            let floor = self.seq_floor.load(SeqCst);
            let in_current = seq >= floor && seq <= limit;
            let in_previous = blocks.previous.is_some_and(|(f, l)| seq >= f && seq <= l);
            if !(in_current || in_previous) {
                return Err(DropReason::SeqExhausted);
            }
        }
        // Near the SA's end, not a granted block's: whoever grants blocks watches the
        // space they come from (an anycast cluster's store, docs/scale-out.md).
        if seq >= limit.saturating_sub(self.seq_warn_margin)
            && floor == 0
            && self.fired.fetch_or(FIRED_SEQ, Relaxed) & FIRED_SEQ == 0
        {
            events.push(Event::SeqNearExhaustion {
                sa: self.id,
                outbound_spi: self.outbound_spi,
                remaining: limit.saturating_sub(seq),
            });
        }
        Ok(seq)
    }

    /// Seals the packet in `buf` (an IP packet) for sending on the SA's current path
    /// (`path`, from [`Sa::path`]: the caller that chose the destination from it
    /// passes the same one, so a concurrent [`Sad::update_sa_path`](crate::Sad::update_sa_path)
    /// cannot give it the new header and the old destination); the buffer then holds
    /// the outer packet in the given `shape`. Returns the sequence number.
    pub(crate) fn seal<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        events: &Events,
        shape: Shape,
        path: &SaPath,
    ) -> Result<u64, DropReason> {
        let r = self.seal_inner(now, buf, events, shape, path);
        if let Err(e) = r {
            self.count_drop(Direction::Outbound, e);
        }
        r
    }

    /// Counts a packet of this SA dropped for `reason` (and traces it).
    pub(crate) fn count_drop(&self, dir: Direction, reason: DropReason) {
        self.drops.add(reason);
        trace::trace!(
            sa = self.id.0,
            spi = %match dir {
                Direction::Inbound => self.inbound_spi,
                Direction::Outbound => self.outbound_spi,
            },
            direction = ?dir,
            reason = reason.as_str(),
            "packet dropped"
        );
    }

    fn seal_inner<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        events: &Events,
        shape: Shape,
        path: &SaPath,
    ) -> Result<u64, DropReason> {
        if !self.check_time(now, events) {
            return Err(DropReason::Expired);
        }
        let len = buf.body_len() as u64;
        self.account(Direction::Outbound, len, events)?;
        let seq = match self.next_seq(events) {
            Ok(s) => s,
            Err(e) => {
                self.unaccount(len);
                return Err(e);
            }
        };
        // A failure below burns `seq`: a gap is harmless, a reuse would not be.
        let r = match (&self.xform, &path.tunnel, &path.bare, shape) {
            (Xform::Esp { out, .. }, Some(t), _, Shape::Datagram) => {
                let ident = self.ident.fetch_add(1, Relaxed);
                out.seal_tunnel_at(t, buf, seq, ident)
                    .map_err(tunnel_reason)
            }
            // The ESP packet alone (RFC 3948 §2.1 without the IP and UDP headers): seal
            // as a tunnel without UDP, then drop the outer IP header again.
            (Xform::Esp { out, .. }, Some(_), Some(raw), Shape::UdpPayload) => out
                .seal_tunnel_at(raw, buf, seq, 0)
                .map_err(tunnel_reason)
                .and_then(|s| strip_front(buf, raw.header_len()).map(|()| s)),
            // Transport mode: the packet's own IP header goes in front of ESP and is
            // dropped again; the payload then starts at the SPI.
            (Xform::Esp { out, .. }, None, _, Shape::UdpPayload) => out
                .seal_transport_at(buf, None, seq)
                .map_err(transport_reason)
                .and_then(|s| {
                    let l4 = crate::classify::parse_ip(buf.body())
                        .map_err(|_| DropReason::Malformed)?
                        .l4;
                    strip_front(buf, l4).map(|()| s)
                }),
            // `Sad::process_outbound_udp` sends AH SAs, and tunnel-mode SAs without
            // UDP encapsulation, to raw IP before sealing.
            (Xform::Ah(_), _, _, Shape::UdpPayload)
            | (Xform::Esp { .. }, Some(_), None, Shape::UdpPayload) => Err(DropReason::Unsupported),
            (Xform::Esp { out, .. }, None, _, Shape::Datagram) => {
                let udp = path.udp_encap.map(|u| UdpPorts {
                    src: u.local_port,
                    dst: u.remote_port,
                });
                out.seal_transport_at(buf, udp, seq)
                    .map_err(transport_reason)
            }
            (Xform::Ah(ah), _, _, Shape::Datagram) => match &path.ah_tunnel {
                // AH derives the outer IPv4 Identification from `seq` itself.
                Some(t) => ah.out.seal_tunnel_at(t, buf, seq),
                None => ah.out.seal_transport_at(buf, seq),
            }
            .map_err(ah_seal_reason),
        };
        if r.is_err() {
            self.unaccount(len);
        }
        r
    }

    /// Opens the datagram in `buf` (outer IP header first); the buffer then holds the
    /// inner packet. Replay window: checked and marked under its lock, the crypto in
    /// between runs without it.
    pub(crate) fn open<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        events: &Events,
    ) -> Result<OpenedInfo, DropReason> {
        let r = self.open_inner(now, buf, events);
        if let Err(e) = r {
            self.count_drop(Direction::Inbound, e);
        }
        r
    }

    fn open_inner<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        events: &Events,
    ) -> Result<OpenedInfo, DropReason> {
        if !self.check_time(now, events) {
            return Err(DropReason::Expired);
        }
        let info = if self.resync.enabled() {
            self.decap_counted(buf, events)?
        } else {
            self.decap(buf)?
        };
        self.account(Direction::Inbound, buf.body_len() as u64, events)?;
        // RFC 4301 §5.2 step 4: the inner packet must match the SA's selectors.
        let k =
            FlowKey::parse(buf.body(), Direction::Inbound).map_err(|_| DropReason::Malformed)?;
        if !(ts_match(&self.local_ts, k.local, k.protocol, k.local_port)
            && ts_match(&self.remote_ts, k.remote, k.protocol, k.remote_port))
        {
            return Err(DropReason::PolicyMismatch);
        }
        Ok(info)
    }

    /// Verifies, decrypts and unframes (no lifetime or policy checks).
    fn decap<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
    ) -> Result<OpenedInfo, DropReason> {
        self.decap_with(buf, None)
    }

    /// [`Sa::decap`], or with `resync` (ESP's scratch copy and the high halves to try)
    /// an ESN re-synchronization attempt: one entry point per mode, the attempt an
    /// option (`ipsec_esp::OpenOptions`, `ipsec_ah::OpenOptions`).
    fn decap_with<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        resync: Option<(&mut [u8], u32)>,
    ) -> Result<OpenedInfo, DropReason> {
        let mut guard = LockedWindow(&self.replay);
        Ok(match (&self.xform, self.mode) {
            (Xform::Esp { inb, .. }, Mode::Tunnel) => {
                let (o, outer) = inb
                    .open_tunnel_with(buf, &mut guard, esp_options(resync))
                    .map_err(tunnel_reason)?;
                OpenedInfo {
                    seq: o.seq,
                    next_header: o.next_header,
                    udp: outer.udp,
                }
            }
            (Xform::Esp { inb, .. }, Mode::Transport) => {
                let u = inb
                    .open_transport_with(buf, &mut guard, esp_options(resync))
                    .map_err(transport_reason)?;
                OpenedInfo {
                    seq: u.opened.seq,
                    next_header: u.opened.next_header,
                    udp: u.udp,
                }
            }
            (Xform::Ah(ah), _) => {
                let opts = match resync {
                    None => ipsec_ah::OpenOptions::new(),
                    Some((_, tries)) => ipsec_ah::OpenOptions::resync(tries),
                };
                let o = match self.mode {
                    Mode::Tunnel => ah.inb.open_tunnel_with(buf, &mut guard, opts),
                    Mode::Transport => ah.inb.open_transport_with(buf, &mut guard, opts),
                }
                .map_err(ah_open_reason)?;
                OpenedInfo {
                    seq: o.seq,
                    next_header: o.next_header,
                    udp: None,
                }
            }
        })
    }

    /// [`Sa::decap`] for an ESN SA with re-synchronization (RFC 4303 Appendix A3,
    /// RFC 4302 Appendix B3): counts consecutive authentication failures, for ESP keeps
    /// a copy of each packet once the next failure would reach the trigger (AH needs
    /// none: a failed verification leaves the packet as it was), and then retries that
    /// packet with the next high halves. The normal path adds one relaxed load (and a
    /// store only when the count was not zero).
    fn decap_counted<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        events: &Events,
    ) -> Result<OpenedInfo, DropReason> {
        let failures = self.auth_failures.load(Relaxed);
        if failures.saturating_add(1) < self.resync.trigger() {
            let r = self.decap(buf);
            self.count(&r, failures);
            return r;
        }
        // Armed: if this packet fails too, it is the one to retry, and after a failed
        // ESP verification its bytes are gone. Another thread holding the scratch means
        // an attempt is already under way: open normally.
        let Ok(mut scratch) = self.resync_scratch.try_lock() else {
            let r = self.decap(buf);
            self.count(&r, failures);
            return r;
        };
        let range = buf.body_range();
        let copy = matches!(self.xform, Xform::Esp { .. });
        if copy {
            scratch.clear();
            scratch.extend_from_slice(buf.body());
        }
        let r = match self.decap(buf) {
            Err(DropReason::Integrity) => {
                let n = self.auth_failures.fetch_add(1, Relaxed).saturating_add(1);
                if n >= self.resync.trigger() {
                    let r = self.resync_with(buf, range, &mut scratch);
                    // Attempts are at least `trigger` failures apart, whatever happened.
                    self.auth_failures.store(0, Relaxed);
                    if let Ok(o) = &r {
                        events.push(Event::EsnResynced {
                            sa: self.id,
                            inbound_spi: self.inbound_spi,
                            seq: o.seq,
                        });
                    }
                    r
                } else {
                    Err(DropReason::Integrity)
                }
            }
            r => {
                self.count(&r, failures);
                r
            }
        };
        // The copy is an exceptional thing: give its memory back.
        if copy {
            *scratch = Vec::new();
        }
        r
    }

    /// Keeps the failure count: authentic packets reset it, failed verifications add
    /// one, anything refused before verification leaves it.
    fn count(&self, r: &Result<OpenedInfo, DropReason>, seen: u32) {
        match r {
            Ok(_) | Err(DropReason::Padding | DropReason::Dummy) => {
                if seen != 0 {
                    self.auth_failures.store(0, Relaxed);
                }
            }
            Err(DropReason::Integrity) => {
                self.auth_failures.fetch_add(1, Relaxed);
            }
            Err(_) => {}
        }
    }

    /// Puts the packet back as it arrived (from `scratch` for ESP; AH left it intact)
    /// and retries it with the high halves after the inferred one (RFC 4303
    /// Appendix A3.2, RFC 4302 Appendix B3.2).
    fn resync_with<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        range: core::ops::Range<usize>,
        scratch: &mut [u8],
    ) -> Result<OpenedInfo, DropReason> {
        buf.set_cursors(range.start, range.end);
        if matches!(self.xform, Xform::Esp { .. }) {
            let body = buf.body_mut();
            if body.len() != scratch.len() {
                return Err(DropReason::Integrity);
            }
            body.copy_from_slice(scratch);
        }
        // A failed AH verification put every byte back: AH retries the packet in place
        // and never looks at `scratch`.
        self.decap_with(buf, Some((scratch, self.resync.max_tries())))
    }
}

/// The ESP options for [`Sa::decap_with`]'s `resync`.
fn esp_options(resync: Option<(&mut [u8], u32)>) -> ipsec_esp::OpenOptions<'_> {
    match resync {
        None => ipsec_esp::OpenOptions::new(),
        Some((scratch, tries)) => ipsec_esp::OpenOptions::resync(scratch, tries),
    }
}

fn ah_seal_reason(e: ipsec_ah::SealError) -> DropReason {
    match e {
        ipsec_ah::SealError::SequenceExhausted => DropReason::SeqExhausted,
        ipsec_ah::SealError::InsufficientRoom { .. } => DropReason::NoRoom,
        ipsec_ah::SealError::Malformed(_) => DropReason::Malformed,
        ipsec_ah::SealError::TooLarge => DropReason::TooLarge,
        _ => DropReason::Crypto,
    }
}

fn ah_open_reason(e: ipsec_ah::OpenError) -> DropReason {
    match e {
        ipsec_ah::OpenError::Replay(_) => DropReason::Replay,
        ipsec_ah::OpenError::Integrity => DropReason::Integrity,
        ipsec_ah::OpenError::InsufficientRoom { .. } => DropReason::NoRoom,
        ipsec_ah::OpenError::EcnDrop => DropReason::Ecn,
        _ => DropReason::Malformed,
    }
}
