//! The SA database: lock-free lookups, serialized writers.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{BuildHasher, Hasher};
use core::net::IpAddr;
use core::sync::atomic::AtomicU64;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use arc_swap::cache::Cache;
use arc_swap::{ArcSwap, ArcSwapOption};
use ipsec_core::{ChildSaParams, Instant, SecurityProtocol, Spi};
use ipsec_crypto::CryptoProvider;

use crate::event::{Event, Events, ExpiryCause};
use crate::sa::{InboundLookup, Resume, Sa, SaId, SaInfo, SaOptions, SadError};
use crate::spd::{PolicyId, Spd};
use crate::stats::{DropCounters, DropCounts, SaStats};
use crate::trace;

/// Settings of a [`Sad`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SadConfig {
    /// How many shards the SPI index has (rounded up to a power of two). A writer
    /// copies one shard per change, so more shards make changes cheaper for large
    /// SADs; each costs about 100 bytes. Default 1024.
    pub shards: usize,
    /// The UDP port on which ESP-in-UDP arrives (RFC 3948). Default 4500.
    pub nat_t_port: u16,
    /// [`Event::SeqNearExhaustion`] fires when this many sequence numbers are left.
    /// Default 2^20.
    pub seq_warn_margin: u64,
    /// The least time between two [`Event::Acquire`]s for the same rule. Default 1 s.
    pub acquire_retry: Duration,
}

impl Default for SadConfig {
    fn default() -> Self {
        SadConfig {
            shards: 1024,
            nat_t_port: 4500,
            seq_warn_margin: 1 << 20,
            acquire_retry: Duration::from_secs(1),
        }
    }
}

impl SadConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the shard count.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// Sets the NAT-T port.
    pub fn nat_t_port(mut self, p: u16) -> Self {
        self.nat_t_port = p;
        self
    }

    /// Sets the sequence-number warning margin.
    pub fn seq_warn_margin(mut self, m: u64) -> Self {
        self.seq_warn_margin = m;
        self
    }

    /// Sets the acquire retry interval.
    pub fn acquire_retry(mut self, d: Duration) -> Self {
        self.acquire_retry = d;
        self
    }
}

/// A keyed 64-bit mixer for the SPI index. SPIs arrive from the network, so the
/// mixing is keyed with secret randomness: an attacker cannot aim lookups at one
/// bucket chain (and cannot insert at all: we choose our inbound SPIs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpiHasher {
    k0: u64,
    k1: u64,
}

impl SpiHasher {
    pub(crate) fn hash(&self, x: u64) -> u64 {
        let mut z = x ^ self.k0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27) ^ self.k1).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl BuildHasher for SpiHasher {
    type Hasher = SpiHashState;
    fn build_hasher(&self) -> SpiHashState {
        SpiHashState { keys: *self, h: 0 }
    }
}

/// The hasher state of [`SpiHasher`]; only `u64` keys are hashed through it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpiHashState {
    keys: SpiHasher,
    h: u64,
}

impl Hasher for SpiHashState {
    fn finish(&self) -> u64 {
        self.h
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.h = self.keys.hash(self.h.rotate_left(8) ^ u64::from(*b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.h = self.keys.hash(self.h ^ x);
    }
}

/// All SAs that receive on one (SPI, protocol). Almost always one.
#[derive(Clone, Debug)]
pub(crate) enum SpiEntry {
    One(Arc<Sa>),
    // A thin pointer keeps the entry at 16 bytes and a table slot at 32.
    Many(Arc<Vec<Arc<Sa>>>),
}

impl SpiEntry {
    /// The longest match for (dst, src) per RFC 4301 §4.1.
    fn pick(&self, dst: IpAddr, src: IpAddr) -> Option<&Arc<Sa>> {
        match self {
            SpiEntry::One(sa) => (sa.lookup_matches(dst, src) > 0).then_some(sa),
            SpiEntry::Many(list) => list
                .iter()
                .map(|sa| (sa.lookup_matches(dst, src), sa))
                .filter(|(m, _)| *m > 0)
                .max_by_key(|(m, _)| *m)
                .map(|(_, sa)| sa),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Sa>> {
        let (one, many): (Option<&Arc<Sa>>, &[Arc<Sa>]) = match self {
            SpiEntry::One(sa) => (Some(sa), &[]),
            SpiEntry::Many(l) => (None, l),
        };
        one.into_iter().chain(many.iter())
    }
}

/// The writers' editable form of one shard.
pub(crate) type SpiMap = HashMap<u64, SpiEntry, SpiHasher>;

/// One slot of a [`SpiTable`]: key, a shortcut to the SA id, and the entry, in 32
/// aligned bytes (two slots per cache line).
#[derive(Clone, Debug, Default)]
#[repr(align(32))]
struct TableSlot {
    /// `spi_key`, never 0; 0 marks an empty slot.
    key: u64,
    /// The SA id + 1 when the entry is one SA looked up by SPI alone (then a lookup
    /// that only wants the id need not touch the SA); 0 otherwise.
    fast: u64,
    entry: Option<SpiEntry>,
}

/// The published, immutable form of one shard: open addressing with linear probing at
/// a load factor of at most 1/2, so that a lookup usually reads one cache line (a
/// general-purpose map keeps control bytes and entries in separate lines). Writers
/// never change a table: they edit a [`SpiMap`] and build a new one.
#[derive(Debug)]
pub(crate) struct SpiTable {
    slots: Box<[TableSlot]>,
    mask: usize,
    hasher: SpiHasher,
}

impl SpiTable {
    fn build(map: &SpiMap, hasher: SpiHasher) -> Self {
        let cap = map.len().saturating_mul(2).next_power_of_two().max(2);
        let mut slots = alloc::vec![TableSlot::default(); cap].into_boxed_slice();
        let mask = cap - 1;
        for (k, e) in map {
            let fast = match e {
                SpiEntry::One(sa) if sa.lookup == InboundLookup::Spi => sa.id.0.saturating_add(1),
                _ => 0,
            };
            let mut i = (hasher.hash(*k) as usize) & mask;
            // Terminates: at most half the slots are used.
            while slots.get(i).is_some_and(|s| s.key != 0) {
                i = (i + 1) & mask;
            }
            if let Some(s) = slots.get_mut(i) {
                *s = TableSlot {
                    key: *k,
                    fast,
                    entry: Some(e.clone()),
                };
            }
        }
        SpiTable {
            slots,
            mask,
            hasher,
        }
    }

    fn get(&self, key: u64) -> Option<&TableSlot> {
        let mut i = (self.hasher.hash(key) as usize) & self.mask;
        loop {
            let s = self.slots.get(i)?;
            if s.key == key {
                return Some(s);
            }
            if s.key == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn to_map(&self) -> SpiMap {
        let mut m = SpiMap::with_capacity_and_hasher(self.slots.len() / 2, self.hasher);
        for s in self.slots.iter() {
            if let (k, Some(e)) = (s.key, &s.entry) {
                m.insert(k, e.clone());
            }
        }
        m
    }
}

pub(crate) fn spi_key(spi: Spi, proto: SecurityProtocol) -> u64 {
    (u64::from(proto.ike_protocol_id()) << 32) | u64::from(spi.0)
}

/// One outbound rule's binding: its current SA and the time of its last ACQUIRE.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) sa: ArcSwapOption<Sa>,
    pub(crate) last_acquire: AtomicU64,
}

/// The outbound SPD with one slot per rule.
#[derive(Debug)]
pub(crate) struct OutboundPolicy {
    pub(crate) spd: Spd,
    pub(crate) slots: Box<[Slot]>,
}

/// State only writers touch, behind one lock.
#[derive(Debug, Default)]
struct Writer {
    next_id: u64,
    by_id: HashMap<SaId, Arc<Sa>>,
    /// (deadline in ns, SA id): soft and hard time limits.
    timers: BTreeSet<(u64, u64)>,
    /// Which SA each outbound rule is bound to.
    bindings: HashMap<PolicyId, SaId>,
}

/// The SA database and both SPDs ([RFC 4301 §4.4]), shared by every thread.
///
/// Every method takes `&self`; put the `Sad` in an `Arc`. Packet processing
/// ([`Sad::process_outbound`], [`Sad::process_inbound`]) and lookups never wait for a
/// writer: they read immutable snapshots published through [`arc_swap`]. Writers (add,
/// rekey, remove, SPD changes, timeouts, event polling) are serialized by an internal
/// lock and copy only the shard they change. See `docs/architecture.md`, "SAD
/// concurrency", for the design and its trade-offs.
///
/// Driving contract (sans-I/O): after processing packets or calling
/// [`Sad::handle_timeout`], drain [`Sad::poll_event`]; call `handle_timeout` at
/// [`Sad::poll_timeout`]. `now` never goes backwards.
///
/// [RFC 4301 §4.4]: https://www.rfc-editor.org/rfc/rfc4301#section-4.4
pub struct Sad {
    pub(crate) provider: CryptoProvider,
    pub(crate) config: SadConfig,
    hasher: SpiHasher,
    shard_mask: u64,
    shards: Box<[ArcSwap<SpiTable>]>,
    pub(crate) outbound: ArcSwap<OutboundPolicy>,
    pub(crate) inbound_spd: ArcSwap<Spd>,
    pub(crate) events: Events,
    pub(crate) drops: DropCounters,
    writer: Mutex<Writer>,
}

impl core::fmt::Debug for Sad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sad")
            .field("provider", &self.provider.name)
            .field("config", &self.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

fn policy_with_slots(spd: Spd) -> OutboundPolicy {
    let slots = spd.rules().iter().map(|_| Slot::default()).collect();
    OutboundPolicy { spd, slots }
}

impl Sad {
    /// An empty SAD (both SPDs empty: everything is discarded until
    /// [`Sad::set_outbound_spd`] and [`Sad::set_inbound_spd`]).
    ///
    /// # Errors
    /// [`SadError::Random`] when the provider's random source fails (it keys the SPI
    /// index).
    pub fn new(provider: &CryptoProvider, config: SadConfig) -> Result<Self, SadError> {
        let mut k = [0u8; 16];
        provider
            .secure_random
            .fill(&mut k)
            .map_err(|_| SadError::Random)?;
        let (a, b) = k.split_at(8);
        let k0 = u64::from_le_bytes(a.try_into().map_err(|_| SadError::Random)?);
        let k1 = u64::from_le_bytes(b.try_into().map_err(|_| SadError::Random)?);
        let hasher = SpiHasher { k0, k1 };
        let n = config.shards.clamp(1, 1 << 20).next_power_of_two();
        let shards = (0..n)
            .map(|_| ArcSwap::from_pointee(SpiTable::build(&SpiMap::with_hasher(hasher), hasher)))
            .collect();
        Ok(Sad {
            provider: *provider,
            config,
            hasher,
            shard_mask: (n as u64) - 1,
            shards,
            outbound: ArcSwap::from_pointee(policy_with_slots(Spd::empty())),
            inbound_spd: ArcSwap::from_pointee(Spd::empty()),
            events: Events::default(),
            drops: DropCounters::default(),
            writer: Mutex::new(Writer::default()),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shard(&self, key: u64) -> Option<&ArcSwap<SpiTable>> {
        self.shards.get(self.shard_of(key)?)
    }

    /// The index shard that holds `key`.
    pub(crate) fn shard_of(&self, key: u64) -> Option<usize> {
        // The index uses bits 32.. of the hash; the map inside the shard uses the low
        // bits and the top 7, so the two never share bits.
        usize::try_from((self.hasher.hash(key) >> 32) & self.shard_mask).ok()
    }

    /// The SA that receives `protocol` packets with `spi` from `src` to `dst`
    /// (RFC 4301 §4.1 longest match), if any.
    ///
    /// Each call loads the current index shard through [`arc_swap`], which costs a
    /// full memory barrier; a thread that looks up many packets should use a
    /// [`SadReader`] ([`Sad::reader`]), which does not.
    pub fn lookup_inbound(
        &self,
        spi: Spi,
        protocol: SecurityProtocol,
        dst: IpAddr,
        src: IpAddr,
    ) -> Option<SaId> {
        lookup_in(&mut &*self, spi, protocol, dst, src)
    }

    /// Whether any SA receives `protocol` packets with `spi`, whatever its addresses:
    /// what an IKE endpoint asks before it chooses an inbound SPI
    /// (`ipsec_ike::IkeEndpoint::set_child_spi_in_use`), since this SAD may hold SAs
    /// the endpoint did not negotiate.
    pub fn inbound_spi_in_use(&self, spi: Spi, protocol: SecurityProtocol) -> bool {
        let key = spi_key(spi, protocol);
        self.shard(key).is_some_and(|s| s.load().get(key).is_some())
    }

    /// A reader for one data-plane thread: the same lookups and inbound processing as
    /// the `Sad`'s own methods, without the memory barrier each of those pays to load
    /// the current index. See [`SadReader`].
    pub fn reader(&self) -> SadReader<'_> {
        SadReader {
            sad: self,
            shards: self.shards.iter().map(Cache::new).collect(),
            inbound_spd: Cache::new(&self.inbound_spd),
        }
    }

    /// Number of installed SA pairs.
    pub fn len(&self) -> usize {
        self.writer().by_id.len()
    }

    /// True when no SA is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Installs an SA pair built from `params` at time `now` (the start of its time
    /// lifetimes) and returns its id. With `opts.policy`, outbound packets matching that
    /// rule are protected with it from now on (replacing any SA bound before).
    ///
    /// # Errors
    /// [`SadError`]: unsupported protocol or transforms, reserved or duplicate SPI,
    /// unknown policy, mixed address families.
    pub fn add_sa(
        &self,
        now: Instant,
        params: &ChildSaParams,
        opts: SaOptions,
    ) -> Result<SaId, SadError> {
        self.add_with(now, params, opts, Resume::default())
    }

    pub(crate) fn add_with(
        &self,
        now: Instant,
        params: &ChildSaParams,
        opts: SaOptions,
        resume: Resume,
    ) -> Result<SaId, SadError> {
        // The expensive part (key schedules) runs before the writer lock; the id is
        // fixed under it.
        let probe = Sa::new(
            &self.provider,
            SaId(0),
            params,
            &opts,
            now,
            self.config.seq_warn_margin,
            resume,
        )?;
        let mut w = self.writer();
        let id = SaId(w.next_id);
        let sa = Arc::new(probe.with_id(id));
        self.install_locked(&mut w, sa.clone())?;
        w.next_id += 1;
        drop(w);
        trace_installed(&sa);
        Ok(id)
    }

    /// Installs many SA pairs at once, copying each touched index shard only once
    /// (for restoring a large SAD at start-up). Returns one result per input, in order.
    pub fn add_sas<'a>(
        &self,
        now: Instant,
        items: impl IntoIterator<Item = (&'a ChildSaParams, SaOptions)>,
    ) -> Vec<Result<SaId, SadError>> {
        let built: Vec<Result<(Sa, SaOptions), SadError>> = items
            .into_iter()
            .map(|(p, o)| {
                Sa::new(
                    &self.provider,
                    SaId(0),
                    p,
                    &o,
                    now,
                    self.config.seq_warn_margin,
                    Resume::default(),
                )
                .map(|sa| (sa, o))
            })
            .collect();
        let mut w = self.writer();
        let mut pending: HashMap<usize, SpiMap> = HashMap::new();
        let mut out = Vec::with_capacity(built.len());
        for b in built {
            let (probe, _) = match b {
                Ok(x) => x,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let id = SaId(w.next_id);
            let sa = Arc::new(probe.with_id(id));
            let key = spi_key(sa.inbound_spi, sa.protocol);
            let Some(idx) = self.shard_of(key) else {
                out.push(Err(SadError::SpiInUse(sa.inbound_spi)));
                continue;
            };
            let map = pending.entry(idx).or_insert_with(|| {
                self.shards
                    .get(idx)
                    .map_or_else(|| SpiMap::with_hasher(self.hasher), |s| s.load().to_map())
            });
            match insert_entry(map, key, sa.clone()) {
                Ok(()) => {
                    if let Some(p) = sa.policy {
                        if self.bind_locked(&mut w, p, &sa).is_err() {
                            remove_entry(map, key, id);
                            out.push(Err(SadError::UnknownPolicy(p)));
                            continue;
                        }
                    }
                    add_timers(&mut w, &sa);
                    w.by_id.insert(id, sa);
                    w.next_id += 1;
                    out.push(Ok(id));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        for (idx, map) in pending {
            if let Some(s) = self.shards.get(idx) {
                s.store(Arc::new(SpiTable::build(&map, self.hasher)));
            }
        }
        drop(w);
        trace::info!(
            installed = out.iter().filter(|r| r.is_ok()).count(),
            refused = out.iter().filter(|r| r.is_err()).count(),
            "SAs installed in bulk"
        );
        out
    }

    fn install_locked(&self, w: &mut Writer, sa: Arc<Sa>) -> Result<(), SadError> {
        let key = spi_key(sa.inbound_spi, sa.protocol);
        let shard = self.shard(key).ok_or(SadError::SpiInUse(sa.inbound_spi))?;
        let mut map = shard.load().to_map();
        insert_entry(&mut map, key, sa.clone())?;
        if let Some(p) = sa.policy {
            self.bind_locked(w, p, &sa)?;
        }
        shard.store(Arc::new(SpiTable::build(&map, self.hasher)));
        add_timers(w, &sa);
        w.by_id.insert(sa.id, sa);
        Ok(())
    }

    fn bind_locked(&self, w: &mut Writer, policy: PolicyId, sa: &Arc<Sa>) -> Result<(), SadError> {
        let out = self.outbound.load();
        let pos = out
            .spd
            .position(policy)
            .ok_or(SadError::UnknownPolicy(policy))?;
        if let Some(slot) = out.slots.get(pos) {
            slot.sa.store(Some(sa.clone()));
        }
        w.bindings.insert(policy, sa.id);
        Ok(())
    }

    /// Makes `sa` the SA of outbound rule `policy` (replacing the one bound before).
    ///
    /// # Errors
    /// [`SadError::UnknownSa`], [`SadError::UnknownPolicy`].
    pub fn bind(&self, policy: PolicyId, sa: SaId) -> Result<(), SadError> {
        let mut w = self.writer();
        let arc = w.by_id.get(&sa).cloned().ok_or(SadError::UnknownSa(sa))?;
        self.bind_locked(&mut w, policy, &arc)
    }

    /// Rekeys `old`: installs the new pair from `params`, and moves `old`'s outbound
    /// rule to it, so that outbound packets use the new SA from now on. The old pair
    /// stays installed for inbound packets still in flight (RFC 7296 §2.8) until
    /// [`Sad::remove_sa`].
    ///
    /// # Errors
    /// As [`Sad::add_sa`], and [`SadError::UnknownSa`].
    pub fn rekey_sa(
        &self,
        now: Instant,
        old: SaId,
        params: &ChildSaParams,
        mut opts: SaOptions,
    ) -> Result<SaId, SadError> {
        let old_policy = self
            .writer()
            .by_id
            .get(&old)
            .ok_or(SadError::UnknownSa(old))?
            .policy;
        if opts.policy.is_none() {
            opts.policy = old_policy;
        }
        self.add_sa(now, params, opts)
    }

    /// [`Sad::rekey_sa`] followed by [`Sad::remove_sa`] of the old pair.
    ///
    /// # Errors
    /// As [`Sad::rekey_sa`].
    pub fn replace_sa(
        &self,
        now: Instant,
        old: SaId,
        params: &ChildSaParams,
        opts: SaOptions,
    ) -> Result<SaId, SadError> {
        let new = self.rekey_sa(now, old, params, opts)?;
        self.remove_sa(old)?;
        Ok(new)
    }

    /// Moves SA pair `id` to new outer addresses: our `local`, the peer's `remote`, and
    /// UDP encapsulation `udp_encap` (RFC 3948; `None`: plain ESP). For MOBIKE
    /// (RFC 4555 §3.5) and NAT following (RFC 7296 §2.23): the SA stays installed with
    /// its keys, sequence counter, replay window, counters, lifetimes and outbound
    /// rule; packets sealed after the call (by every [`SadReader`] too) carry the new
    /// outer header or go to the new UDP destination, and inbound UDP-encapsulated
    /// packets from `remote` no longer count as a moved peer. An SA looked up by
    /// address ([`InboundLookup::SpiDst`](crate::InboundLookup::SpiDst)) is found
    /// by the new addresses from then on.
    ///
    /// # Errors
    /// [`SadError::UnknownSa`]; [`SadError::AddressFamily`] for mixed families or a
    /// transport-mode SA asked to change family.
    pub fn update_sa_path(
        &self,
        id: SaId,
        local: IpAddr,
        remote: IpAddr,
        udp_encap: Option<ipsec_core::UdpEncap>,
    ) -> Result<(), SadError> {
        let w = self.writer();
        let sa = w.by_id.get(&id).ok_or(SadError::UnknownSa(id))?;
        sa.set_path(local, remote, udp_encap)?;
        trace::info!(
            sa = id.0,
            local = %local,
            remote = %remote,
            udp_encap = udp_encap.is_some(),
            "SA path updated"
        );
        Ok(())
    }

    /// Removes an SA pair: its SPI stops resolving and its outbound rule (if still
    /// bound to it) has no SA until another is bound. Packets already being processed
    /// on it finish normally.
    ///
    /// # Errors
    /// [`SadError::UnknownSa`].
    pub fn remove_sa(&self, id: SaId) -> Result<(), SadError> {
        let mut w = self.writer();
        self.remove_locked(&mut w, id)
    }

    fn remove_locked(&self, w: &mut Writer, id: SaId) -> Result<(), SadError> {
        let sa = w.by_id.remove(&id).ok_or(SadError::UnknownSa(id))?;
        trace::info!(
            sa = id.0,
            inbound_spi = %sa.inbound_spi,
            outbound_spi = %sa.outbound_spi,
            "SA removed"
        );
        sa.kill();
        let key = spi_key(sa.inbound_spi, sa.protocol);
        if let Some(shard) = self.shard(key) {
            let mut map = shard.load().to_map();
            remove_entry(&mut map, key, id);
            shard.store(Arc::new(SpiTable::build(&map, self.hasher)));
        }
        if let Some(p) = sa.policy {
            if w.bindings.get(&p) == Some(&id) {
                w.bindings.remove(&p);
                let out = self.outbound.load();
                if let Some(slot) = out.spd.position(p).and_then(|i| out.slots.get(i)) {
                    let cur = slot.sa.load();
                    if cur.as_ref().is_some_and(|s| s.id == id) {
                        slot.sa.store(None);
                    }
                }
            }
        }
        w.timers.remove(&(sa.limits.soft_at, id.0));
        w.timers.remove(&(sa.limits.hard_at, id.0));
        Ok(())
    }

    /// Replaces the outbound SPD. SAs stay bound to their rules by [`PolicyId`]; a
    /// binding whose rule is gone is dropped.
    pub fn set_outbound_spd(&self, spd: Spd) {
        let mut w = self.writer();
        let pol = policy_with_slots(spd);
        let mut keep = HashMap::new();
        for (p, id) in &w.bindings {
            if let (Some(i), Some(sa)) = (pol.spd.position(*p), w.by_id.get(id)) {
                if let Some(slot) = pol.slots.get(i) {
                    slot.sa.store(Some(sa.clone()));
                    keep.insert(*p, *id);
                }
            }
        }
        w.bindings = keep;
        trace::debug!(
            rules = pol.spd.rules().len(),
            bound = w.bindings.len(),
            "outbound SPD replaced"
        );
        self.outbound.store(Arc::new(pol));
    }

    /// Replaces the inbound SPD (for packets that arrive without IPsec).
    pub fn set_inbound_spd(&self, spd: Spd) {
        let _w = self.writer();
        trace::debug!(rules = spd.rules().len(), "inbound SPD replaced");
        self.inbound_spd.store(Arc::new(spd));
    }

    /// The outbound SPD in force.
    pub fn outbound_spd(&self) -> Spd {
        self.outbound.load().spd.clone()
    }

    /// What SA `id` is.
    pub fn sa_info(&self, id: SaId) -> Option<SaInfo> {
        self.writer().by_id.get(&id).map(|s| s.info())
    }

    /// The counters of SA `id`.
    pub fn sa_stats(&self, id: SaId) -> Option<SaStats> {
        self.writer().by_id.get(&id).map(|s| s.stats())
    }

    /// The ids of all installed SAs.
    pub fn sa_ids(&self) -> Vec<SaId> {
        let mut v: Vec<SaId> = self.writer().by_id.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Drops counted before an SA was found (unknown SPI, malformed, policy).
    pub fn drop_counts(&self) -> DropCounts {
        self.drops.snapshot()
    }

    pub(crate) fn sa_arc(&self, id: SaId) -> Option<Arc<Sa>> {
        self.writer().by_id.get(&id).cloned()
    }

    /// The next event, if any. A [`Event::HardExpired`] SA has been removed by the
    /// time it is returned.
    pub fn poll_event(&self) -> Option<Event> {
        let e = self.events.pop()?;
        self.reap(&e);
        Some(e)
    }

    /// All pending events, oldest first.
    pub fn drain_events(&self) -> Vec<Event> {
        let all = self.events.take_all();
        for e in &all {
            self.reap(e);
        }
        all.into()
    }

    fn reap(&self, e: &Event) {
        if let Event::HardExpired { sa, .. } = e {
            let mut w = self.writer();
            let _ = self.remove_locked(&mut w, *sa);
        }
    }

    /// When [`Sad::handle_timeout`] should be called next (the earliest soft or hard
    /// time limit).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.writer().timers.first().map(|(t, _)| Instant(*t))
    }

    /// Fires the time limits due at `now`: [`Event::SoftExpired`], or
    /// [`Event::HardExpired`] (the SA is removed). Spurious calls are harmless.
    pub fn handle_timeout(&self, now: Instant) {
        let mut w = self.writer();
        while let Some(&(t, id)) = w.timers.first() {
            if t > now.0 {
                break;
            }
            w.timers.pop_first();
            let Some(sa) = w.by_id.get(&SaId(id)).cloned() else {
                continue;
            };
            if !sa.check_time(now, &self.events) {
                let _ = self.remove_locked(&mut w, sa.id);
            }
        }
    }

    /// Ends SA `id` now as if its hard lifetime had been reached (for tests and
    /// administrative deletes that should be reported as events).
    ///
    /// # Errors
    /// [`SadError::UnknownSa`].
    pub fn expire_sa(&self, id: SaId) -> Result<(), SadError> {
        let sa = self.sa_arc(id).ok_or(SadError::UnknownSa(id))?;
        sa.hard(&self.events, ExpiryCause::Time);
        Ok(())
    }
}

/// The event of an SA pair installed (never its keys).
fn trace_installed(sa: &Sa) {
    trace::info!(
        sa = sa.id.0,
        protocol = ?sa.protocol,
        mode = ?sa.mode,
        inbound_spi = %sa.inbound_spi,
        outbound_spi = %sa.outbound_spi,
        remote = %sa.path().remote_addr,
        policy = ?sa.policy,
        "SA installed"
    );
}

fn add_timers(w: &mut Writer, sa: &Sa) {
    for t in [sa.limits.soft_at, sa.limits.hard_at] {
        if t != u64::MAX {
            w.timers.insert((t, sa.id.0));
        }
    }
}

fn insert_entry(map: &mut SpiMap, key: u64, sa: Arc<Sa>) -> Result<(), SadError> {
    match map.get(&key) {
        None => {
            map.insert(key, SpiEntry::One(sa));
            Ok(())
        }
        Some(e) => {
            // Two SAs may share an SPI only when lookup by address tells them apart.
            let clash = e.iter().any(|o| {
                o.lookup == sa.lookup
                    && match sa.lookup {
                        InboundLookup::Spi => true,
                        InboundLookup::SpiDst => o.path().local_addr == sa.path().local_addr,
                        InboundLookup::SpiDstSrc => {
                            let (o, sa) = (o.path(), sa.path());
                            o.local_addr == sa.local_addr && o.remote_addr == sa.remote_addr
                        }
                    }
            });
            if clash {
                return Err(SadError::SpiInUse(sa.inbound_spi));
            }
            let mut list: Vec<Arc<Sa>> = e.iter().cloned().collect();
            list.push(sa);
            map.insert(key, SpiEntry::Many(Arc::new(list)));
            Ok(())
        }
    }
}

fn remove_entry(map: &mut SpiMap, key: u64, id: SaId) {
    let Some(e) = map.get(&key) else { return };
    let rest: Vec<Arc<Sa>> = e.iter().filter(|s| s.id != id).cloned().collect();
    match rest.len() {
        0 => {
            map.remove(&key);
        }
        1 => {
            if let Some(sa) = rest.into_iter().next() {
                map.insert(key, SpiEntry::One(sa));
            }
        }
        _ => {
            map.insert(key, SpiEntry::Many(Arc::new(rest)));
        }
    }
}

/// Where packet processing finds the current index shards and the inbound SPD: the
/// [`Sad`] itself (a fresh load per call) or a [`SadReader`] (cached, revalidated).
pub(crate) trait Tables<'s> {
    /// The SAD.
    fn sad(&self) -> &'s Sad;
    /// Runs `f` on the current table of the shard that holds `key`.
    fn with_table<R>(&mut self, key: u64, f: impl FnOnce(&SpiTable) -> R) -> Option<R>;
    /// Runs `f` on the current inbound SPD.
    fn with_inbound_spd<R>(&mut self, f: impl FnOnce(&Spd) -> R) -> R;
}

impl<'s> Tables<'s> for &'s Sad {
    fn sad(&self) -> &'s Sad {
        self
    }

    fn with_table<R>(&mut self, key: u64, f: impl FnOnce(&SpiTable) -> R) -> Option<R> {
        Some(f(&self.shard(key)?.load()))
    }

    fn with_inbound_spd<R>(&mut self, f: impl FnOnce(&Spd) -> R) -> R {
        f(&self.inbound_spd.load())
    }
}

/// Runs `f` on the SA that receives (`spi`, `protocol`) packets from `src` to `dst`,
/// without taking any lock.
pub(crate) fn with_inbound<'s, T: Tables<'s>, R>(
    tables: &mut T,
    spi: Spi,
    protocol: SecurityProtocol,
    dst: IpAddr,
    src: IpAddr,
    f: impl FnOnce(&Sa) -> R,
) -> Option<R> {
    let key = spi_key(spi, protocol);
    tables
        .with_table(key, |t| {
            let sa = t.get(key)?.entry.as_ref()?.pick(dst, src)?;
            Some(f(sa))
        })
        .flatten()
}

fn lookup_in<'s, T: Tables<'s>>(
    tables: &mut T,
    spi: Spi,
    protocol: SecurityProtocol,
    dst: IpAddr,
    src: IpAddr,
) -> Option<SaId> {
    let key = spi_key(spi, protocol);
    tables
        .with_table(key, |t| {
            let slot = t.get(key)?;
            if slot.fast != 0 {
                return Some(SaId(slot.fast - 1));
            }
            slot.entry.as_ref()?.pick(dst, src).map(|sa| sa.id)
        })
        .flatten()
}

/// One data-plane thread's view of a [`Sad`], from [`Sad::reader`].
///
/// [`Sad::lookup_inbound`] and [`Sad::process_inbound`] load the current index shard
/// through [`arc_swap`] on every call, and that load is a full memory barrier: it
/// keeps the CPU from overlapping the cache misses of consecutive lookups, which is
/// what bounds lookups in a large SAD. A reader instead keeps, per shard, the table it
/// saw last and only checks (a plain load and a compare) that it is still the current
/// one, reloading it when a writer has replaced it. Lookups through a reader see every
/// change as soon as the `Sad`'s own methods do; packet counters, sequence numbers and
/// replay windows are the same shared ones.
///
/// Keep one reader per thread (its methods take `&mut self`) and reuse it for many
/// packets. It costs 16 bytes per shard. What it gives up: a table that a writer has
/// replaced stays in memory until the reader next touches that shard, so a removed
/// SA's memory (its keys zeroized on drop) may be freed late; [`SadReader::refresh`]
/// lets go of every replaced table at once (call it when the thread idles).
pub struct SadReader<'a> {
    sad: &'a Sad,
    shards: Box<[Cache<&'a ArcSwap<SpiTable>, Arc<SpiTable>>]>,
    inbound_spd: Cache<&'a ArcSwap<Spd>, Arc<Spd>>,
}

impl core::fmt::Debug for SadReader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SadReader")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<'a> SadReader<'a> {
    /// The SAD this reader reads.
    pub fn sad(&self) -> &'a Sad {
        self.sad
    }

    /// As [`Sad::lookup_inbound`].
    pub fn lookup_inbound(
        &mut self,
        spi: Spi,
        protocol: SecurityProtocol,
        dst: IpAddr,
        src: IpAddr,
    ) -> Option<SaId> {
        lookup_in(self, spi, protocol, dst, src)
    }

    /// Lets go of every table that a writer has replaced since this reader last
    /// looked at its shard.
    pub fn refresh(&mut self) {
        for c in self.shards.iter_mut() {
            c.load();
        }
        self.inbound_spd.load();
    }
}

impl<'s> Tables<'s> for SadReader<'s> {
    fn sad(&self) -> &'s Sad {
        self.sad
    }

    fn with_table<R>(&mut self, key: u64, f: impl FnOnce(&SpiTable) -> R) -> Option<R> {
        let i = self.sad.shard_of(key)?;
        Some(f(self.shards.get_mut(i)?.load()))
    }

    fn with_inbound_spd<R>(&mut self, f: impl FnOnce(&Spd) -> R) -> R {
        f(self.inbound_spd.load())
    }
}
