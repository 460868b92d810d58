//! The security policy database ([RFC 4301 §4.4.1]): ordered rules, first match wins.
//!
//! An [`Spd`] is an ordered list of [`PolicyRule`]s, each a [`Selector`] (local and
//! remote address ranges, next-layer protocol, local and remote port ranges, where ICMP
//! type ‖ code and MH type count as ports) and an [`Action`] (PROTECT with an
//! [`SaTemplate`], BYPASS or DISCARD). A packet gets the action of the **first** rule in
//! order whose selector matches it; a packet no rule matches is discarded.
//!
//! # The index
//!
//! A linear scan costs one selector comparison per rule: 10 000 rules are ~10 µs per
//! packet. [`Spd::new`] therefore compiles the rules into a decision tree per address
//! family, over five axes: local address, remote address, protocol, local port, remote
//! port (ports on a 17-bit axis whose last value is OPAQUE). Each rule is a box on these
//! axes; a packet is a point.
//!
//! - An inner node cuts its region in two on one axis (`value <= at` goes left). The axis
//!   and the cut are chosen among the rule boundaries inside the region so that the
//!   larger child holds as few rules as possible; a rule that straddles the cut goes to
//!   both children.
//! - A node's rule list is kept in rule order and **cut after the first rule whose box
//!   covers the node's whole region**: no packet there can get past it, so later rules
//!   can never be its first match. This is what keeps a trailing catch-all rule (or any
//!   wide rule) from being copied into every leaf.
//! - A leaf holds at most a handful of rules (or stops splitting when no cut helps, at
//!   depth 48, or when the replication budget of 8 entries per rule is spent) and is
//!   scanned in order with the full selector comparison.
//!
//! The first rule in a leaf that matches is the first rule overall that matches, because
//! every rule that matches any point of a region is in that region's list up to the cut.
//! Lookup is a walk of ~log2(n / 8) comparisons and a scan of a few rules; tests check it
//! against a naive first-match model on random rule sets (proptest), and the bench
//! compares it with [`Spd::lookup_linear`].
//!
//! [RFC 4301 §4.4.1]: https://www.rfc-editor.org/rfc/rfc4301#section-4.4.1

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::{IpProto, Mode, SecurityProtocol};

use crate::classify::{FlowKey, PortValue, OPAQUE_AXIS};

/// The identifier of a policy rule, chosen by the configuration (stable across SPD
/// replacements, so that SAs stay bound to their rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId(pub u32);

/// An address selector: ANY (either family) or an inclusive range of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrRange {
    /// Every IPv4 and IPv6 address.
    Any,
    /// IPv4 addresses `start..=end`.
    V4 {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
    },
    /// IPv6 addresses `start..=end`.
    V6 {
        /// First address.
        start: Ipv6Addr,
        /// Last address.
        end: Ipv6Addr,
    },
}

impl AddrRange {
    /// Every IPv4 address.
    pub const ANY_V4: AddrRange = AddrRange::V4 {
        start: Ipv4Addr::UNSPECIFIED,
        end: Ipv4Addr::BROADCAST,
    };
    /// Every IPv6 address.
    pub const ANY_V6: AddrRange = AddrRange::V6 {
        start: Ipv6Addr::UNSPECIFIED,
        end: Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        ),
    };

    /// One address.
    pub const fn host(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => AddrRange::V4 { start: a, end: a },
            IpAddr::V6(a) => AddrRange::V6 { start: a, end: a },
        }
    }

    /// The prefix `addr/len`; `None` when `len` is longer than the address.
    pub fn prefix(addr: IpAddr, len: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(a) => {
                let host_bits = 32u32.checked_sub(u32::from(len))?;
                let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
                let a = u32::from(a) & mask;
                Some(AddrRange::V4 {
                    start: a.into(),
                    end: (a | !mask).into(),
                })
            }
            IpAddr::V6(a) => {
                let host_bits = 128u32.checked_sub(u32::from(len))?;
                let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
                let a = u128::from(a) & mask;
                Some(AddrRange::V6 {
                    start: a.into(),
                    end: (a | !mask).into(),
                })
            }
        }
    }

    /// The range `start..=end`; `None` for mixed families or `start > end`.
    pub fn range(start: IpAddr, end: IpAddr) -> Option<Self> {
        let r = match (start, end) {
            (IpAddr::V4(start), IpAddr::V4(end)) => AddrRange::V4 { start, end },
            (IpAddr::V6(start), IpAddr::V6(end)) => AddrRange::V6 { start, end },
            _ => return None,
        };
        r.is_valid().then_some(r)
    }

    /// Whether `start <= end`.
    pub fn is_valid(&self) -> bool {
        match *self {
            AddrRange::Any => true,
            AddrRange::V4 { start, end } => start <= end,
            AddrRange::V6 { start, end } => start <= end,
        }
    }

    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (AddrRange::Any, _) => true,
            (AddrRange::V4 { start, end }, IpAddr::V4(a)) => start <= a && a <= end,
            (AddrRange::V6 { start, end }, IpAddr::V6(a)) => start <= a && a <= end,
            _ => false,
        }
    }

    /// The range on the address axis of the IPv4 (`v6 == false`) or IPv6 tree, or
    /// `None` when the range has the other family.
    fn axis(&self, v6: bool) -> Option<(u128, u128)> {
        match (*self, v6) {
            (AddrRange::Any, false) => Some((0, u128::from(u32::MAX))),
            (AddrRange::Any, true) => Some((0, u128::MAX)),
            (AddrRange::V4 { start, end }, false) => {
                Some((u32::from(start).into(), u32::from(end).into()))
            }
            (AddrRange::V6 { start, end }, true) => Some((start.into(), end.into())),
            _ => None,
        }
    }

    fn family(&self) -> Option<bool> {
        match self {
            AddrRange::Any => None,
            AddrRange::V4 { .. } => Some(false),
            AddrRange::V6 { .. } => Some(true),
        }
    }
}

/// A port selector (also ICMP type ‖ code and MH type, see [`crate::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSel {
    /// Anything, OPAQUE included.
    Any,
    /// The ports `start..=end`; never matches OPAQUE.
    Range {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// Only packets whose ports are not available (non-initial fragments, protocols
    /// without ports): RFC 4301 §4.4.1.1 OPAQUE.
    Opaque,
}

impl PortSel {
    /// One port.
    pub const fn port(p: u16) -> Self {
        PortSel::Range { start: p, end: p }
    }

    /// One ICMP or ICMPv6 message type and code.
    pub const fn icmp(icmp_type: u8, code: u8) -> Self {
        let v = ((icmp_type as u16) << 8) | code as u16;
        PortSel::Range { start: v, end: v }
    }

    /// One ICMP or ICMPv6 message type, any code.
    pub const fn icmp_type(icmp_type: u8) -> Self {
        let v = (icmp_type as u16) << 8;
        PortSel::Range {
            start: v,
            end: v | 0xff,
        }
    }

    /// Whether the packet's port value matches.
    pub fn contains(&self, v: PortValue) -> bool {
        match (*self, v) {
            (PortSel::Any, _) => true,
            (PortSel::Range { start, end }, PortValue::Port(p)) => start <= p && p <= end,
            (PortSel::Opaque, PortValue::Opaque) => true,
            _ => false,
        }
    }

    fn axis(&self) -> (u128, u128) {
        match *self {
            PortSel::Any => (0, OPAQUE_AXIS),
            PortSel::Range { start, end } => (start.into(), end.into()),
            PortSel::Opaque => (OPAQUE_AXIS, OPAQUE_AXIS),
        }
    }
}

/// The selectors of one rule (RFC 4301 §4.4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Our addresses.
    pub local: AddrRange,
    /// The peer's addresses.
    pub remote: AddrRange,
    /// The next-layer protocol; [`IpProto::ANY`] for any.
    pub protocol: IpProto,
    /// Our ports.
    pub local_port: PortSel,
    /// The peer's ports.
    pub remote_port: PortSel,
}

impl Selector {
    /// Matches every packet.
    pub const ANY: Selector = Selector {
        local: AddrRange::Any,
        remote: AddrRange::Any,
        protocol: IpProto::ANY,
        local_port: PortSel::Any,
        remote_port: PortSel::Any,
    };

    /// Every packet between `local` and `remote`, any protocol and port.
    pub const fn between(local: AddrRange, remote: AddrRange) -> Self {
        Selector {
            local,
            remote,
            ..Selector::ANY
        }
    }

    /// The same selector for one protocol and the given ports.
    pub const fn with_ports(mut self, protocol: IpProto, local: PortSel, remote: PortSel) -> Self {
        self.protocol = protocol;
        self.local_port = local;
        self.remote_port = remote;
        self
    }

    /// Whether the packet `k` matches: every field in its range. This is the plain
    /// comparison that [`Spd::lookup_linear`] applies rule by rule.
    pub fn matches(&self, k: &FlowKey) -> bool {
        k.local.is_ipv4() == k.remote.is_ipv4()
            && self.local.contains(k.local)
            && self.remote.contains(k.remote)
            && (self.protocol == IpProto::ANY || self.protocol == k.protocol)
            && self.local_port.contains(k.local_port)
            && self.remote_port.contains(k.remote_port)
    }

    fn is_valid(&self) -> bool {
        let ports_ok = |p: &PortSel| !matches!(p, PortSel::Range { start, end } if start > end);
        let fam_ok = match (self.local.family(), self.remote.family()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.local.is_valid()
            && self.remote.is_valid()
            && fam_ok
            && ports_ok(&self.local_port)
            && ports_ok(&self.remote_port)
    }

    fn to_box(self, v6: bool) -> Option<Box5> {
        Some([
            self.local.axis(v6)?,
            self.remote.axis(v6)?,
            if self.protocol == IpProto::ANY {
                (0, 255)
            } else {
                (self.protocol.0.into(), self.protocol.0.into())
            },
            self.local_port.axis(),
            self.remote_port.axis(),
        ])
    }
}

/// What a PROTECT rule asks for when it has no SA yet (the content of an ACQUIRE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SaTemplate {
    /// ESP or AH.
    pub protocol: SecurityProtocol,
    /// Tunnel or transport.
    pub mode: Mode,
    /// The tunnel endpoints (local, remote) for tunnel mode, when fixed.
    pub tunnel: Option<(IpAddr, IpAddr)>,
}

impl SaTemplate {
    /// ESP in tunnel mode between `local` and `remote`.
    pub const fn esp_tunnel(local: IpAddr, remote: IpAddr) -> Self {
        SaTemplate {
            protocol: SecurityProtocol::Esp,
            mode: Mode::Tunnel,
            tunnel: Some((local, remote)),
        }
    }

    /// ESP in transport mode.
    pub const fn esp_transport() -> Self {
        SaTemplate {
            protocol: SecurityProtocol::Esp,
            mode: Mode::Transport,
            tunnel: None,
        }
    }
}

/// What to do with a matching packet (RFC 4301 §4.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Pass it without IPsec.
    Bypass,
    /// Drop it.
    Discard,
    /// Outbound: protect it with the SA bound to this rule, or ask for one
    /// ([`crate::Outbound::Acquire`]). Inbound: it should have arrived protected, so a
    /// plaintext packet matching this rule is dropped.
    Protect(SaTemplate),
}

/// One SPD entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyRule {
    /// Its identifier (unique in the SPD).
    pub id: PolicyId,
    /// Which packets it applies to.
    pub selector: Selector,
    /// What happens to them.
    pub action: Action,
}

impl PolicyRule {
    /// A rule.
    pub const fn new(id: u32, selector: Selector, action: Action) -> Self {
        PolicyRule {
            id: PolicyId(id),
            selector,
            action,
        }
    }
}

/// Why an SPD was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpdError {
    /// Two rules share this id.
    #[error("duplicate policy id {}", .0.0)]
    DuplicateId(PolicyId),
    /// This rule has a reversed range or mixes address families.
    #[error("invalid selector in policy {}", .0.0)]
    InvalidSelector(PolicyId),
    /// More rules than the index can number (2^32 - 1).
    #[error("too many rules")]
    TooManyRules,
}

/// Size figures of the compiled index, for tests and benches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IndexStats {
    /// Tree nodes (both families).
    pub nodes: usize,
    /// Rule references in leaves (rules are copied into every leaf they reach).
    pub leaf_entries: usize,
    /// The deepest leaf.
    pub max_depth: usize,
    /// The longest leaf list.
    pub max_leaf: usize,
}

/// An ordered, indexed security policy database. Immutable once built: the SAD replaces
/// it as a whole ([`crate::Sad::set_outbound_spd`]).
#[derive(Clone, Debug)]
pub struct Spd {
    rules: Vec<PolicyRule>,
    v4: Tree,
    v6: Tree,
}

impl Default for Spd {
    fn default() -> Self {
        Spd::empty()
    }
}

impl Spd {
    /// An SPD without rules: every packet is discarded.
    pub fn empty() -> Self {
        Spd {
            rules: Vec::new(),
            v4: Tree::build(&[], false),
            v6: Tree::build(&[], true),
        }
    }

    /// Checks and indexes `rules` (in priority order: the first match wins).
    ///
    /// # Errors
    /// [`SpdError`] for duplicate ids, invalid selectors, or more than 2^32 - 1 rules.
    pub fn new(rules: Vec<PolicyRule>) -> Result<Self, SpdError> {
        if u32::try_from(rules.len()).is_err() {
            return Err(SpdError::TooManyRules);
        }
        let mut ids: Vec<PolicyId> = rules.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w.first() == w.get(1)) {
            return Err(SpdError::DuplicateId(
                w.first().copied().unwrap_or(PolicyId(0)),
            ));
        }
        if let Some(r) = rules.iter().find(|r| !r.selector.is_valid()) {
            return Err(SpdError::InvalidSelector(r.id));
        }
        let v4 = Tree::build(&rules, false);
        let v6 = Tree::build(&rules, true);
        Ok(Spd { rules, v4, v6 })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// The position of the rule with id `id`.
    pub fn position(&self, id: PolicyId) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// The position of the first rule that matches `key`, through the index.
    pub fn lookup(&self, key: &FlowKey) -> Option<usize> {
        let v6 = match (key.local, key.remote) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return None,
        };
        let addr = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let point = [
            addr(key.local),
            addr(key.remote),
            key.protocol.0.into(),
            key.local_port.axis(),
            key.remote_port.axis(),
        ];
        let tree = if v6 { &self.v6 } else { &self.v4 };
        tree.lookup(&point).and_then(|i| usize::try_from(i).ok())
    }

    /// The first rule that matches `key`, through the index.
    pub fn lookup_rule(&self, key: &FlowKey) -> Option<&PolicyRule> {
        self.lookup(key).and_then(|i| self.rules.get(i))
    }

    /// The position of the first rule that matches `key`, by comparing every rule in
    /// order: the reference the index must agree with, and the baseline of the bench.
    pub fn lookup_linear(&self, key: &FlowKey) -> Option<usize> {
        self.rules.iter().position(|r| r.selector.matches(key))
    }

    /// Size figures of the index.
    pub fn index_stats(&self) -> IndexStats {
        let a = self.v4.stats();
        let b = self.v6.stats();
        IndexStats {
            nodes: a.nodes + b.nodes,
            leaf_entries: a.leaf_entries + b.leaf_entries,
            max_depth: a.max_depth.max(b.max_depth),
            max_leaf: a.max_leaf.max(b.max_leaf),
        }
    }
}

/// A rule's extent on the five axes, inclusive.
type Box5 = [(u128, u128); 5];

const LEAF_SIZE: usize = 8;
const MAX_DEPTH: usize = 48;
const REPLICATION_PER_RULE: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Node {
    Leaf {
        start: u32,
        len: u32,
    },
    Split {
        dim: u8,
        at: u128,
        left: u32,
        right: u32,
    },
}

/// The decision tree of one address family.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
    /// Leaf lists: positions into `boxes`, ascending (= rule order).
    leaves: Vec<u32>,
    /// The boxes of the rules of this family, in rule order.
    boxes: Vec<Box5>,
    /// The rule index of each box.
    rule_of: Vec<u32>,
    max_depth: usize,
}

fn covers(b: &Box5, region: &Box5) -> bool {
    b.iter().zip(region).all(|(r, g)| r.0 <= g.0 && g.1 <= r.1)
}

fn contains(b: &Box5, p: &[u128; 5]) -> bool {
    b.iter().zip(p).all(|(r, v)| r.0 <= *v && *v <= r.1)
}

impl Tree {
    fn build(rules: &[PolicyRule], v6: bool) -> Self {
        let mut boxes = Vec::new();
        let mut rule_of = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if let (Some(b), Ok(i)) = (r.selector.to_box(v6), u32::try_from(i)) {
                boxes.push(b);
                rule_of.push(i);
            }
        }
        let addr_max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        let region: Box5 = [
            (0, addr_max),
            (0, addr_max),
            (0, 255),
            (0, OPAQUE_AXIS),
            (0, OPAQUE_AXIS),
        ];
        let mut t = Tree {
            nodes: Vec::new(),
            leaves: Vec::new(),
            boxes,
            rule_of,
            max_depth: 0,
        };
        let all: Vec<u32> = (0..t.boxes.len())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        let mut budget = t
            .boxes
            .len()
            .saturating_mul(REPLICATION_PER_RULE)
            .saturating_add(4096);
        t.build_node(all, region, 0, &mut budget);
        t
    }

    fn leaf(&mut self, rules: &[u32]) -> Node {
        let start = u32::try_from(self.leaves.len()).unwrap_or(u32::MAX);
        self.leaves.extend_from_slice(rules);
        Node::Leaf {
            start,
            len: u32::try_from(rules.len()).unwrap_or(0),
        }
    }

    fn bx(&self, r: u32) -> Box5 {
        self.boxes.get(r as usize).copied().unwrap_or([(1, 0); 5])
    }

    /// Builds the subtree for `rules` (all intersecting `region`, ascending) and
    /// returns its node index.
    fn build_node(
        &mut self,
        mut rules: Vec<u32>,
        region: Box5,
        depth: usize,
        budget: &mut usize,
    ) -> u32 {
        self.max_depth = self.max_depth.max(depth);
        let idx = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        // Later rules can never beat a rule that covers the whole region.
        if let Some(i) = rules.iter().position(|&r| covers(&self.bx(r), &region)) {
            rules.truncate(i + 1);
        }
        if rules.len() <= LEAF_SIZE || depth >= MAX_DEPTH || *budget == 0 {
            let n = self.leaf(&rules);
            self.nodes.push(n);
            return idx;
        }
        let Some((dim, at)) = self.choose_cut(&rules, &region) else {
            let n = self.leaf(&rules);
            self.nodes.push(n);
            return idx;
        };
        let d = usize::from(dim);
        let (left, right): (Vec<u32>, Vec<u32>) = (
            rules
                .iter()
                .copied()
                .filter(|&r| self.bx(r)[d].0 <= at)
                .collect(),
            rules
                .iter()
                .copied()
                .filter(|&r| self.bx(r)[d].1 > at)
                .collect(),
        );
        *budget = budget.saturating_sub((left.len() + right.len()).saturating_sub(rules.len()));
        drop(rules);
        let mut lreg = region;
        lreg[d].1 = at;
        let mut rreg = region;
        rreg[d].0 = at + 1;
        self.nodes.push(Node::Leaf { start: 0, len: 0 });
        let l = self.build_node(left, lreg, depth + 1, budget);
        let r = self.build_node(right, rreg, depth + 1, budget);
        if let Some(n) = self.nodes.get_mut(idx as usize) {
            *n = Node::Split {
                dim,
                at,
                left: l,
                right: r,
            };
        }
        idx
    }

    /// The cut (axis, value) that leaves the fewest rules in the larger child, among the
    /// quartiles of the rule boundaries inside `region` on each axis; `None` if no cut
    /// makes both children smaller than the node.
    fn choose_cut(&self, rules: &[u32], region: &Box5) -> Option<(u8, u128)> {
        let n = rules.len();
        let mut best: Option<((usize, usize), u8, u128)> = None;
        let mut pts: Vec<u128> = Vec::with_capacity(2 * n);
        for (d, g) in region.iter().enumerate() {
            pts.clear();
            for &r in rules {
                let (lo, hi) = self.bx(r)[d];
                if lo > g.0 {
                    pts.push(lo - 1);
                }
                if hi < g.1 {
                    pts.push(hi);
                }
            }
            if pts.is_empty() {
                continue;
            }
            pts.sort_unstable();
            pts.dedup();
            let m = pts.len();
            for q in [m / 2, m / 4, (3 * m) / 4, m / 8, (7 * m) / 8] {
                let Some(&at) = pts.get(q) else { continue };
                let mut l = 0;
                let mut r = 0;
                for &x in rules {
                    let (lo, hi) = self.bx(x)[d];
                    l += usize::from(lo <= at);
                    r += usize::from(hi > at);
                }
                let score = (l.max(r), l + r);
                if best.is_none_or(|(s, _, _)| score < s) {
                    best = Some((score, u8::try_from(d).unwrap_or(0), at));
                }
            }
        }
        match best {
            Some(((worst, _), dim, at)) if worst < n => Some((dim, at)),
            _ => None,
        }
    }

    fn lookup(&self, p: &[u128; 5]) -> Option<u32> {
        let mut i = 0usize;
        loop {
            match *self.nodes.get(i)? {
                Node::Split {
                    dim,
                    at,
                    left,
                    right,
                } => {
                    let v = *p.get(usize::from(dim))?;
                    i = if v <= at { left } else { right } as usize;
                }
                Node::Leaf { start, len } => {
                    let s = start as usize;
                    let list = self.leaves.get(s..s + len as usize)?;
                    for &pos in list {
                        if let Some(b) = self.boxes.get(pos as usize) {
                            if contains(b, p) {
                                return self.rule_of.get(pos as usize).copied();
                            }
                        }
                    }
                    return None;
                }
            }
        }
    }

    fn stats(&self) -> IndexStats {
        let max_leaf = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Leaf { len, .. } => *len as usize,
                Node::Split { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        IndexStats {
            nodes: self.nodes.len(),
            leaf_entries: self.leaves.len(),
            max_depth: self.max_depth,
            max_leaf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(l: &str, r: &str, proto: IpProto, lp: u16, rp: u16) -> FlowKey {
        FlowKey::new(a(l), a(r), proto, PortValue::Port(lp), PortValue::Port(rp))
    }

    #[test]
    fn first_match_wins_and_default_is_none() {
        let net = AddrRange::prefix(a("10.1.0.0"), 16).unwrap();
        let rules = vec![
            PolicyRule::new(
                1,
                Selector::ANY.with_ports(IpProto::UDP, PortSel::port(500), PortSel::Any),
                Action::Bypass,
            ),
            PolicyRule::new(
                2,
                Selector::between(AddrRange::Any, net),
                Action::Protect(SaTemplate::esp_transport()),
            ),
            PolicyRule::new(
                3,
                Selector::between(AddrRange::ANY_V6, AddrRange::ANY_V6),
                Action::Discard,
            ),
        ];
        let spd = Spd::new(rules).unwrap();
        assert_eq!(
            spd.lookup(&key("10.0.0.1", "10.1.2.3", IpProto::UDP, 500, 500)),
            Some(0)
        );
        assert_eq!(
            spd.lookup(&key("10.0.0.1", "10.1.2.3", IpProto::TCP, 500, 500)),
            Some(1)
        );
        assert_eq!(
            spd.lookup(&key("10.0.0.1", "10.2.2.3", IpProto::TCP, 500, 500)),
            None
        );
        assert_eq!(spd.lookup(&key("::1", "::2", IpProto::TCP, 1, 2)), Some(2));
        assert_eq!(
            spd.lookup(&key("::1", "10.0.0.1", IpProto::TCP, 1, 2)),
            None
        );
    }

    #[test]
    fn opaque_ports_match_only_any_or_opaque() {
        let rules = vec![
            PolicyRule::new(
                1,
                Selector::ANY.with_ports(IpProto::TCP, PortSel::Any, PortSel::port(80)),
                Action::Bypass,
            ),
            PolicyRule::new(
                2,
                Selector::ANY.with_ports(IpProto::TCP, PortSel::Any, PortSel::Opaque),
                Action::Discard,
            ),
            PolicyRule::new(3, Selector::ANY, Action::Bypass),
        ];
        let spd = Spd::new(rules).unwrap();
        let mut k = key("10.0.0.1", "10.0.0.2", IpProto::TCP, 1000, 80);
        assert_eq!(spd.lookup(&k), Some(0));
        k.remote_port = PortValue::Opaque;
        k.local_port = PortValue::Opaque;
        k.non_initial_fragment = true;
        assert_eq!(spd.lookup(&k), Some(1));
        k.protocol = IpProto::UDP;
        assert_eq!(spd.lookup(&k), Some(2));
    }

    #[test]
    fn rejects_bad_rules() {
        let bad = Selector::between(AddrRange::ANY_V4, AddrRange::ANY_V6);
        assert_eq!(
            Spd::new(vec![PolicyRule::new(7, bad, Action::Bypass)]).unwrap_err(),
            SpdError::InvalidSelector(PolicyId(7))
        );
        let r = PolicyRule::new(1, Selector::ANY, Action::Bypass);
        assert_eq!(
            Spd::new(vec![r, r]).unwrap_err(),
            SpdError::DuplicateId(PolicyId(1))
        );
        assert!(AddrRange::range(a("10.0.0.2"), a("10.0.0.1")).is_none());
        assert!(AddrRange::prefix(a("10.0.0.0"), 33).is_none());
        assert_eq!(AddrRange::prefix(a("::"), 0).unwrap(), AddrRange::ANY_V6);
    }

    #[test]
    fn many_disjoint_rules_build_a_shallow_tree() {
        let mut rules = Vec::new();
        for i in 0..4000u32 {
            let net =
                AddrRange::prefix(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap();
            rules.push(PolicyRule::new(
                i,
                Selector::between(AddrRange::ANY_V4, net),
                Action::Bypass,
            ));
        }
        rules.push(PolicyRule::new(99_999, Selector::ANY, Action::Discard));
        let spd = Spd::new(rules).unwrap();
        let s = spd.index_stats();
        assert!(s.max_leaf <= LEAF_SIZE + 1, "{s:?}");
        assert!(s.max_depth < 30, "{s:?}");
        assert!(s.leaf_entries < 3 * 4001, "{s:?}");
        for i in (0..4000u32).step_by(97) {
            let k = FlowKey::new(
                a("192.0.2.1"),
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8) + 7)),
                IpProto::TCP,
                PortValue::Port(1),
                PortValue::Port(2),
            );
            assert_eq!(spd.lookup(&k), Some(i as usize));
            assert_eq!(spd.lookup_linear(&k), Some(i as usize));
        }
    }
}
