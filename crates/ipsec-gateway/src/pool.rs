//! Virtual IP address pools (swanctl.conf's `pools.<name>`): [`MemPool`] hands out
//! the addresses of one subnet or range to peers that ask for one in a CFG_REQUEST
//! (RFC 7296 §3.15.1), keeping each lease for its identity, and [`PoolSet`] is the
//! [`AddressPool`] a connection installs over its pools (one per family, or several).
//!
//! Leases behave as strongSwan's in-memory pools (`charon`'s `mem_pool`):
//!
//! - A lease belongs to an identity (the EAP identity when EAP authenticated the
//!   peer, else its IKE identity). It is *online* while an IKE SA holds it and
//!   *offline* once the last one ended: the address stays reserved for that
//!   identity, which gets it back when it connects again. The same identity asking
//!   while its old IKE SA still holds the address (a reconnect before the old SA
//!   timed out) gets that address too, held twice.
//! - A peer that asks for a specific address gets it when it is its own lease or
//!   nobody's.
//! - Otherwise the next address never handed out is leased; when there are none
//!   left, the offline lease that went offline first is taken from its identity. When
//!   every address is online the pool is exhausted: the family is left out of the
//!   lease (the endpoint answers INTERNAL_ADDRESS_FAILURE when nothing is left).
//! - A subnet's network address and broadcast address are not handed out (a /31 and
//!   a /32 serve their host addresses); a subnet given with host bits (`10.0.0.5/24`)
//!   starts at that address. A range serves every address in it. At most 2^31
//!   addresses of a pool are used, as strongSwan limits them.
//!
//! Memory grows with the leases, never with the pool's size: a /8 or a /64 costs
//! nothing until peers connect. A pool is shared by every IKE SA of the endpoint
//! behind a [`Mutex`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipsec::core::TrafficSelector;
use ipsec::ike::{AddressPool, CfgAttribute, Config, Identity, Lease};
use serde::Serialize;

use crate::conf::{AddrSpec, Connection, GatewayConfig, Pool as PoolConf, TsSpec};

/// At most this many addresses of a pool are used (2^31, strongSwan's limit).
pub const MAX_POOL_SIZE: u64 = 1 << 31;

/// Why a pool cannot be made from its configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pool '{name}': {problem}")]
#[non_exhaustive]
pub struct PoolError {
    /// The pool's name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// One lease: who holds it, how many IKE SAs hold it now, and when it went offline.
#[derive(Debug)]
struct LeaseState {
    owner: Identity,
    /// IKE SAs holding it; 0 = offline.
    online: u32,
    /// Key into [`Inner::offline`] while offline.
    offline_seq: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Offsets below this were handed out at least once (or skipped because a peer
    /// asked for them); the next new lease is the first one at or above it that no
    /// lease holds.
    unused: u64,
    /// Every lease, online or offline, by offset.
    leases: HashMap<u64, LeaseState>,
    /// The offsets each identity holds, oldest first.
    by_id: HashMap<Identity, Vec<u64>>,
    /// Offline leases in the order they went offline: sequence number -> offset.
    offline: BTreeMap<u64, u64>,
    seq: u64,
}

/// The leases of a pool as [`ipsec status`] shows them.
///
/// [`ipsec status`]: crate::driver::Status
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// The pool's name.
    pub name: String,
    /// The addresses it serves, as configured (`10.3.0.0/24`).
    pub addrs: String,
    /// How many addresses it hands out.
    pub size: u64,
    /// Leases an IKE SA holds.
    pub online: u64,
    /// Leases kept for an identity whose IKE SAs are gone.
    pub offline: u64,
    /// The leases: address, identity, online.
    pub leases: Vec<LeaseStatus>,
}

/// One lease in a [`PoolStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseStatus {
    /// The address.
    pub address: IpAddr,
    /// The identity it belongs to (a DN as strongSwan prints it).
    pub identity: String,
    /// Whether an IKE SA holds it.
    pub online: bool,
}

/// An in-memory pool of one subnet or range (see the module docs).
#[derive(Debug)]
pub struct MemPool {
    name: String,
    spec: String,
    /// The first address handed out, as a number.
    base: u128,
    size: u64,
    v4: bool,
    dns: Vec<IpAddr>,
    inner: Mutex<Inner>,
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl MemPool {
    /// The pool of `conf` (`addrs` a subnet or a range).
    ///
    /// # Errors
    /// [`PoolError`] for `addrs` that is not a subnet or range, or has no address to
    /// hand out, or `dns` servers of mixed use (none: any family may serve).
    pub fn new(conf: &PoolConf) -> Result<Self, PoolError> {
        let err = |p: &str| PoolError {
            name: conf.name.clone(),
            problem: p.into(),
        };
        let (base, size, v4) = match conf.addrs {
            AddrSpec::Prefix(a, len) => {
                let bits: u32 = if a.is_ipv4() { 32 } else { 128 };
                let host_bits = bits.saturating_sub(u32::from(len)).min(31);
                let full: u64 = 1 << host_bits;
                let host = to_u128(a) & ((1u128 << host_bits) - 1);
                // The offset of the given address inside its block (a subnet written
                // with host bits starts there).
                let host = host as u64;
                let (base, mut size) = if full > 2 {
                    if host == 0 {
                        (to_u128(a) + 1, full - 1)
                    } else {
                        (to_u128(a), full - host)
                    }
                } else if host != 0 {
                    // /31 written with its second address: only that one.
                    (to_u128(a), full - host)
                } else {
                    (to_u128(a), full)
                };
                if full > 2 {
                    // The broadcast address.
                    size -= 1;
                }
                (base, size, a.is_ipv4())
            }
            AddrSpec::Range(a, b) => {
                if a.is_ipv4() != b.is_ipv4() || a > b {
                    return Err(err("a range of one family, first address first"));
                }
                let n = (to_u128(b) - to_u128(a)).saturating_add(1);
                (
                    to_u128(a),
                    n.min(u128::from(MAX_POOL_SIZE)) as u64,
                    a.is_ipv4(),
                )
            }
            AddrSpec::Addr(a) => (to_u128(a), 1, a.is_ipv4()),
            _ => return Err(err("addrs must be a subnet or a range")),
        };
        if size == 0 {
            return Err(err("no address to hand out"));
        }
        Ok(MemPool {
            name: conf.name.clone(),
            spec: conf.addrs.to_string(),
            base,
            size: size.min(MAX_POOL_SIZE),
            v4,
            dns: conf.dns.clone(),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many addresses it hands out.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether it serves IPv4 (else IPv6).
    pub fn is_ipv4(&self) -> bool {
        self.v4
    }

    /// The DNS servers handed out with its addresses.
    pub fn dns(&self) -> &[IpAddr] {
        &self.dns
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state (each
        // operation updates the maps in an order that never loses a lease).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn address(&self, offset: u64) -> IpAddr {
        let n = self.base + u128::from(offset);
        if self.v4 {
            IpAddr::V4((n as u32).into())
        } else {
            IpAddr::V6(n.into())
        }
    }

    fn offset(&self, a: IpAddr) -> Option<u64> {
        if a.is_ipv4() != self.v4 {
            return None;
        }
        let off = to_u128(a).checked_sub(self.base)?;
        (off < u128::from(self.size)).then_some(off as u64)
    }

    /// Whether `a` is one of the addresses it hands out.
    pub fn contains(&self, a: IpAddr) -> bool {
        self.offset(a).is_some()
    }

    /// Leases one address to `peer`, which asked for `requested` (the family's
    /// unspecified address for any); `None` when the family is not this pool's or
    /// every address is online.
    pub fn acquire_one(&self, peer: &Identity, requested: IpAddr) -> Option<IpAddr> {
        if requested.is_ipv4() != self.v4 {
            return None;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        // A specific address: the peer's own lease, or nobody's.
        if let Some(off) = self
            .offset(requested)
            .filter(|_| !requested.is_unspecified())
        {
            match inner.leases.get(&off) {
                Some(l) if l.owner == *peer => {
                    inner.online(off);
                    return Some(self.address(off));
                }
                Some(_) => {}
                None => {
                    inner.take(off, peer);
                    return Some(self.address(off));
                }
            }
        }
        // The peer's own leases: an online one first (held once more), then an
        // offline one.
        if let Some(offs) = inner.by_id.get(peer) {
            let pick = offs
                .iter()
                .find(|o| inner.leases.get(o).is_some_and(|l| l.online > 0))
                .or_else(|| offs.first())
                .copied();
            if let Some(off) = pick {
                inner.online(off);
                return Some(self.address(off));
            }
        }
        // A new one.
        while inner.unused < self.size {
            let off = inner.unused;
            inner.unused += 1;
            if !inner.leases.contains_key(&off) {
                inner.take(off, peer);
                return Some(self.address(off));
            }
        }
        // The oldest offline lease of someone else.
        let (_, off) = inner.offline.pop_first()?;
        let old = inner.leases.remove(&off)?;
        inner.forget(&old.owner, off);
        inner.take(off, peer);
        Some(self.address(off))
    }

    /// `peer`'s IKE SA that held `address` ended: one hold less; the last makes the
    /// lease offline (kept for `peer`). Unknown addresses and other identities'
    /// leases are ignored.
    pub fn release_one(&self, peer: &Identity, address: IpAddr) {
        let Some(off) = self.offset(address) else {
            return;
        };
        let mut g = self.lock();
        let inner = &mut *g;
        let Some(l) = inner.leases.get_mut(&off) else {
            return;
        };
        if l.owner != *peer || l.online == 0 {
            return;
        }
        l.online -= 1;
        if l.online == 0 {
            let seq = inner.seq;
            inner.seq += 1;
            l.offline_seq = Some(seq);
            inner.offline.insert(seq, off);
        }
    }

    /// How many leases are online and offline.
    pub fn counts(&self) -> (u64, u64) {
        let g = self.lock();
        let offline = g.offline.len() as u64;
        (g.leases.len() as u64 - offline, offline)
    }

    /// The pool and its leases, by address.
    pub fn status(&self) -> PoolStatus {
        let g = self.lock();
        let mut leases: Vec<(u64, LeaseStatus)> = g
            .leases
            .iter()
            .map(|(off, l)| {
                (
                    *off,
                    LeaseStatus {
                        address: self.address(*off),
                        identity: ipsec_pki::identity_string(&l.owner),
                        online: l.online > 0,
                    },
                )
            })
            .collect();
        leases.sort_by_key(|(o, _)| *o);
        let offline = g.offline.len() as u64;
        PoolStatus {
            name: self.name.clone(),
            addrs: self.spec.clone(),
            size: self.size,
            online: g.leases.len() as u64 - offline,
            offline,
            leases: leases.into_iter().map(|(_, l)| l).collect(),
        }
    }
}

impl Inner {
    /// A new online lease of `off` for `peer` (no lease holds it).
    fn take(&mut self, off: u64, peer: &Identity) {
        self.leases.insert(
            off,
            LeaseState {
                owner: peer.clone(),
                online: 1,
                offline_seq: None,
            },
        );
        self.by_id.entry(peer.clone()).or_default().push(off);
    }

    /// One more hold on an existing lease (back online if it was offline).
    fn online(&mut self, off: u64) {
        if let Some(l) = self.leases.get_mut(&off) {
            l.online = l.online.saturating_add(1);
            if let Some(seq) = l.offline_seq.take() {
                self.offline.remove(&seq);
            }
        }
    }

    /// `owner` no longer holds `off`.
    fn forget(&mut self, owner: &Identity, off: u64) {
        if let Some(v) = self.by_id.get_mut(owner) {
            v.retain(|o| *o != off);
            if v.is_empty() {
                self.by_id.remove(owner);
            }
        }
    }
}

impl AddressPool for MemPool {
    fn acquire(&self, peer: &Identity, requested: &[IpAddr]) -> Lease {
        let addresses: Vec<IpAddr> = requested
            .iter()
            .filter_map(|r| self.acquire_one(peer, *r))
            .collect();
        let attributes = if addresses.is_empty() {
            Vec::new()
        } else {
            self.dns.iter().map(|d| CfgAttribute::dns(*d)).collect()
        };
        Lease {
            addresses,
            attributes,
        }
    }

    fn release(&self, peer: &Identity, address: IpAddr) {
        self.release_one(peer, address);
    }
}

/// The pools of one connection (swanctl.conf's `pools = a, b`) as one
/// [`AddressPool`]: each requested family is served by the first of its pools of that
/// family that has an address; when any address was leased, the DNS servers of all of
/// them come with it.
#[derive(Clone, Debug)]
pub struct PoolSet {
    pools: Vec<Arc<MemPool>>,
}

impl PoolSet {
    /// The set of `pools`, tried in this order.
    pub fn new(pools: Vec<Arc<MemPool>>) -> Self {
        PoolSet { pools }
    }

    /// The pools.
    pub fn pools(&self) -> &[Arc<MemPool>] {
        &self.pools
    }
}

impl AddressPool for PoolSet {
    fn acquire(&self, peer: &Identity, requested: &[IpAddr]) -> Lease {
        let mut addresses = Vec::new();
        for r in requested {
            if let Some(a) = self.pools.iter().find_map(|p| p.acquire_one(peer, *r)) {
                addresses.push(a);
            }
        }
        let mut attributes: Vec<CfgAttribute> = Vec::new();
        if !addresses.is_empty() {
            for d in self.pools.iter().flat_map(|p| p.dns.iter()) {
                let a = CfgAttribute::dns(*d);
                if !attributes.contains(&a) {
                    attributes.push(a);
                }
            }
        }
        Lease {
            addresses,
            attributes,
        }
    }

    fn release(&self, peer: &Identity, address: IpAddr) {
        if let Some(p) = self.pools.iter().find(|p| p.contains(address)) {
            p.release_one(peer, address);
        }
    }
}

/// The pools of every `pools.<name>` section, in file order.
///
/// # Errors
/// The first pool [`MemPool::new`] refuses.
pub fn build_pools(conf: &GatewayConfig) -> Result<Vec<Arc<MemPool>>, PoolError> {
    conf.pools
        .iter()
        .map(|p| MemPool::new(p).map(Arc::new))
        .collect()
}

/// Installs connection `conn`'s pools (its `pools = a, b`, found by name in `pools`)
/// on `cfg` as one [`PoolSet`], and keeps, of the any-address selectors a `dynamic`
/// `remote_ts` became ([`Connection::to_ike_config_unkeyed`]), those of the families
/// the pools serve. Nothing for a connection without pools.
///
/// # Errors
/// A pool name that no `pools.<name>` section has, naming it.
pub fn apply_pools(
    conn: &Connection,
    cfg: &mut Config,
    pools: &[Arc<MemPool>],
) -> Result<(), String> {
    if conn.pools.is_empty() {
        return Ok(());
    }
    let mut set = Vec::new();
    for name in &conn.pools {
        let p = pools
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| format!("connection '{}', pools: no pools.{name} section", conn.name))?;
        set.push(Arc::clone(p));
    }
    let dynamic = conn
        .children
        .first()
        .is_some_and(|c| c.remote_ts.contains(&TsSpec::Dynamic));
    if dynamic {
        let (v4, v6) = (
            set.iter().any(|p| p.is_ipv4()),
            set.iter().any(|p| !p.is_ipv4()),
        );
        cfg.remote_ts.retain(|t| {
            (*t != TrafficSelector::any_v4() || v4) && (*t != TrafficSelector::any_v6() || v6)
        });
    }
    cfg.pool = Some(Arc::new(PoolSet::new(set)));
    Ok(())
}

#[cfg(test)]
mod tests;
