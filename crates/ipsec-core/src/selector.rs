//! Traffic selectors (RFC 4301 §4.4.1.1, RFC 7296 §3.13.1).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::proto::IpProto;

/// One traffic selector: an address range, a protocol and a port range.
///
/// For ICMP and ICMPv6, RFC 4301 §4.4.1.1 and RFC 7296 §3.13.1 carry the message type in
/// the high byte and the code in the low byte of the "port" (see [`Self::icmp`]).
/// The opaque "port" of fragments that carry no header (RFC 4301 §4.4.1.1) is
/// represented by a selector whose range is `start_port = 0xffff, end_port = 0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// First address of the range (inclusive).
    pub start_addr: IpAddr,
    /// Last address of the range (inclusive); same family as `start_addr`.
    pub end_addr: IpAddr,
    /// The next-layer protocol, [`IpProto::ANY`] for any.
    pub protocol: IpProto,
    /// First port (inclusive).
    pub start_port: u16,
    /// Last port (inclusive).
    pub end_port: u16,
}

impl TrafficSelector {
    /// Every IPv4 address, protocol and port.
    pub const fn any_v4() -> Self {
        TrafficSelector {
            start_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            end_addr: IpAddr::V4(Ipv4Addr::BROADCAST),
            protocol: IpProto::ANY,
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    /// Every IPv6 address, protocol and port.
    pub const fn any_v6() -> Self {
        TrafficSelector {
            start_addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            end_addr: IpAddr::V6(Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
            )),
            protocol: IpProto::ANY,
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    /// A single host, any protocol and port.
    pub const fn host(addr: IpAddr) -> Self {
        TrafficSelector {
            start_addr: addr,
            end_addr: addr,
            protocol: IpProto::ANY,
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    /// The prefix `addr/len` (host bits are ignored), any protocol and port.
    /// Returns `None` when `len` is longer than the address.
    pub fn from_prefix(addr: IpAddr, len: u8) -> Option<Self> {
        let (start, end) = match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return None;
                }
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                let a = u32::from(a);
                (
                    IpAddr::V4(Ipv4Addr::from(a & mask)),
                    IpAddr::V4(Ipv4Addr::from((a & mask) | !mask)),
                )
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return None;
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                let a = u128::from(a);
                (
                    IpAddr::V6(Ipv6Addr::from(a & mask)),
                    IpAddr::V6(Ipv6Addr::from((a & mask) | !mask)),
                )
            }
        };
        Some(TrafficSelector {
            start_addr: start,
            end_addr: end,
            protocol: IpProto::ANY,
            start_port: 0,
            end_port: u16::MAX,
        })
    }

    /// The same selector restricted to `protocol` and the ports `start..=end`.
    pub const fn with_ports(mut self, protocol: IpProto, start: u16, end: u16) -> Self {
        self.protocol = protocol;
        self.start_port = start;
        self.end_port = end;
        self
    }

    /// The same selector restricted to one ICMP(v6) type and code range.
    pub const fn icmp(
        self,
        protocol: IpProto,
        icmp_type: u8,
        code_start: u8,
        code_end: u8,
    ) -> Self {
        let t = (icmp_type as u16) << 8;
        self.with_ports(protocol, t | code_start as u16, t | code_end as u16)
    }

    /// True for an IPv4 selector.
    pub const fn is_ipv4(&self) -> bool {
        matches!(self.start_addr, IpAddr::V4(_))
    }

    /// True when the address range is well formed (same family, start ≤ end).
    pub fn is_valid(&self) -> bool {
        match (self.start_addr, self.end_addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
            (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
            _ => false,
        }
    }

    /// Whether `addr` lies in the address range.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        match (self.start_addr, self.end_addr, addr) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
            _ => false,
        }
    }

    /// Whether a packet to or from `addr` with `protocol` and `port` matches. `port` is
    /// `None` where the packet carries none (protocols without ports, non-initial
    /// fragments): such packets match only a selector with the full port range.
    pub fn matches(&self, addr: IpAddr, protocol: IpProto, port: Option<u16>) -> bool {
        if !self.contains_addr(addr) {
            return false;
        }
        if self.protocol != IpProto::ANY && self.protocol != protocol {
            return false;
        }
        match port {
            Some(p) => self.start_port <= p && p <= self.end_port,
            None => self.start_port == 0 && self.end_port == u16::MAX,
        }
    }

    /// The intersection of two selectors, if it is not empty (RFC 7296 §2.9 narrowing).
    pub fn intersect(&self, other: &TrafficSelector) -> Option<TrafficSelector> {
        let (start_addr, end_addr) = match (
            self.start_addr,
            self.end_addr,
            other.start_addr,
            other.end_addr,
        ) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(c), IpAddr::V4(d)) => {
                let s = a.max(c);
                let e = b.min(d);
                if s > e {
                    return None;
                }
                (IpAddr::V4(s), IpAddr::V4(e))
            }
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(c), IpAddr::V6(d)) => {
                let s = a.max(c);
                let e = b.min(d);
                if s > e {
                    return None;
                }
                (IpAddr::V6(s), IpAddr::V6(e))
            }
            _ => return None,
        };
        let protocol = match (self.protocol, other.protocol) {
            (IpProto::ANY, p) | (p, IpProto::ANY) => p,
            (p, q) if p == q => p,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        if start_port > end_port {
            return None;
        }
        Some(TrafficSelector {
            start_addr,
            end_addr,
            protocol,
            start_port,
            end_port,
        })
    }
}

impl core::fmt::Debug for TrafficSelector {
    /// `10.1.0.0-10.1.255.255 proto any ports any`, `192.0.2.1 proto UDP port 53`:
    /// protocol 0 is "any" here (in a selector it is not HOPOPT), as is the full port
    /// range.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.start_addr == self.end_addr {
            write!(f, "{}", self.start_addr)?;
        } else {
            write!(f, "{}-{}", self.start_addr, self.end_addr)?;
        }
        if self.protocol == IpProto::ANY {
            f.write_str(" proto any")?;
        } else {
            write!(f, " proto {:?}", self.protocol)?;
        }
        match (self.start_port, self.end_port) {
            (0, u16::MAX) => f.write_str(" ports any"),
            (a, b) if a == b => write!(f, " port {a}"),
            (a, b) => write!(f, " ports {a}-{b}"),
        }
    }
}

impl core::fmt::Debug for TsSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// How many selectors a [`TsSet`] holds.
pub const MAX_SELECTORS: usize = 8;

/// A small fixed-capacity set of traffic selectors (no heap), as carried in a TSi or
/// TSr payload. Its `Debug` lists the selectors it holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TsSet {
    items: [TrafficSelector; MAX_SELECTORS],
    len: u8,
}

impl Default for TsSet {
    fn default() -> Self {
        TsSet {
            items: [TrafficSelector::any_v4(); MAX_SELECTORS],
            len: 0,
        }
    }
}

impl TsSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of one selector.
    pub fn one(ts: TrafficSelector) -> Self {
        let mut s = Self::new();
        let _ = s.push(ts);
        s
    }

    /// Adds a selector; returns it back when the set is full.
    pub fn push(&mut self, ts: TrafficSelector) -> Result<(), TrafficSelector> {
        match self.items.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = ts;
                self.len += 1;
                Ok(())
            }
            None => Err(ts),
        }
    }

    /// The selectors.
    pub fn as_slice(&self) -> &[TrafficSelector] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of selectors.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any selector of the set matches.
    pub fn matches(&self, addr: IpAddr, protocol: IpProto, port: Option<u16>) -> bool {
        self.as_slice()
            .iter()
            .any(|t| t.matches(addr, protocol, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_well() {
        use std::format;
        let any = TrafficSelector::any_v4();
        assert_eq!(
            format!("{any:?}"),
            "0.0.0.0-255.255.255.255 proto any ports any"
        );
        let dns = TrafficSelector {
            protocol: IpProto::UDP,
            start_port: 53,
            end_port: 53,
            ..TrafficSelector::from_prefix("192.0.2.1".parse().unwrap(), 32).unwrap()
        };
        assert_eq!(format!("{dns:?}"), "192.0.2.1 proto UDP port 53");
        let set = TsSet::one(dns);
        assert_eq!(format!("{set:?}"), "[192.0.2.1 proto UDP port 53]");
        assert_eq!(format!("{:?}", TsSet::new()), "[]");
    }

    #[test]
    fn prefix_and_match() {
        let ts = TrafficSelector::from_prefix("10.1.2.3".parse().unwrap(), 24).unwrap();
        assert_eq!(ts.start_addr, "10.1.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(ts.end_addr, "10.1.2.255".parse::<IpAddr>().unwrap());
        assert!(ts.matches("10.1.2.77".parse().unwrap(), IpProto::TCP, Some(80)));
        assert!(!ts.matches("10.1.3.1".parse().unwrap(), IpProto::TCP, Some(80)));
        assert!(!ts.matches("::1".parse().unwrap(), IpProto::TCP, Some(80)));
        let web = ts.with_ports(IpProto::TCP, 80, 80);
        assert!(!web.matches("10.1.2.1".parse().unwrap(), IpProto::UDP, Some(80)));
        assert!(!web.matches("10.1.2.1".parse().unwrap(), IpProto::TCP, None));
        assert!(TrafficSelector::from_prefix("::".parse().unwrap(), 129).is_none());
        let all6 = TrafficSelector::from_prefix("::".parse().unwrap(), 0).unwrap();
        assert_eq!(all6, TrafficSelector::any_v6());
    }

    #[test]
    fn narrowing() {
        let a = TrafficSelector::from_prefix("10.0.0.0".parse().unwrap(), 8).unwrap();
        let b = TrafficSelector::from_prefix("10.9.0.0".parse().unwrap(), 16)
            .unwrap()
            .with_ports(IpProto::UDP, 500, 4500);
        let n = a.intersect(&b).unwrap();
        assert_eq!(n, b);
        let c = TrafficSelector::from_prefix("192.168.0.0".parse().unwrap(), 16).unwrap();
        assert!(a.intersect(&c).is_none());
        assert!(a.intersect(&TrafficSelector::any_v6()).is_none());
    }

    #[test]
    fn icmp_type_code_in_ports() {
        let echo = TrafficSelector::any_v4().icmp(IpProto::ICMP, 8, 0, 0);
        assert!(echo.matches("1.2.3.4".parse().unwrap(), IpProto::ICMP, Some(0x0800)));
        assert!(!echo.matches("1.2.3.4".parse().unwrap(), IpProto::ICMP, Some(0x0000)));
    }

    #[test]
    fn set_capacity() {
        let mut s = TsSet::new();
        for _ in 0..MAX_SELECTORS {
            s.push(TrafficSelector::any_v4()).unwrap();
        }
        assert!(s.push(TrafficSelector::any_v6()).is_err());
        assert_eq!(s.len(), MAX_SELECTORS);
    }
}
