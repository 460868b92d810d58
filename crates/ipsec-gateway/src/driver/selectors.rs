//! Traffic selectors as SPD rules, route prefixes and status text.

use std::net::IpAddr;

use ipsec::core::{Mode, TrafficSelector};
use ipsec::ike::Config;
use ipsec::sad::{AddrRange, SaTemplate};

/// An outbound rule's key: a (local, remote) selector pair.
pub(crate) type RuleKey = (TrafficSelector, TrafficSelector);

pub(crate) fn template_for(cfg: &Config, local: IpAddr, remote: IpAddr) -> SaTemplate {
    match cfg.mode {
        Mode::Tunnel => SaTemplate::esp_tunnel(local, remote),
        _ => SaTemplate::esp_transport(),
    }
}

pub(crate) fn pairs(l: &[TrafficSelector], r: &[TrafficSelector]) -> Vec<RuleKey> {
    l.iter()
        .flat_map(|a| {
            r.iter()
                .filter(move |b| a.start_addr.is_ipv4() == b.start_addr.is_ipv4())
                .map(move |b| (*a, *b))
        })
        .collect()
}

pub(crate) fn ts_range(t: &TrafficSelector) -> AddrRange {
    AddrRange::range(t.start_addr, t.end_addr).unwrap_or(AddrRange::Any)
}

pub(crate) fn ts_width(t: &TrafficSelector) -> u128 {
    match (t.start_addr, t.end_addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(u32::from(b).saturating_sub(u32::from(a))),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(b).saturating_sub(u128::from(a)),
        _ => u128::MAX,
    }
}

pub(crate) fn ts_string(t: &TrafficSelector) -> String {
    let p = ts_to_prefixes(t);
    if p.len() == 1 {
        format!("{}/{}", p[0].0, p[0].1)
    } else {
        format!("{}-{}", t.start_addr, t.end_addr)
    }
}

/// The address range of a selector as the fewest CIDR blocks (at most 64 for IPv4,
/// 256 for IPv6).
pub fn ts_to_prefixes(t: &TrafficSelector) -> Vec<(IpAddr, u8)> {
    match (t.start_addr, t.end_addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            range_to_cidrs(u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
                .into_iter()
                .map(|(s, l)| (IpAddr::V4((s as u32).into()), l))
                .collect()
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => range_to_cidrs(u128::from(a), u128::from(b), 128)
            .into_iter()
            .map(|(s, l)| (IpAddr::V6(s.into()), l))
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn range_to_cidrs(mut start: u128, end: u128, bits: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    while start <= end && out.len() < 256 {
        // The largest block aligned at `start` that stays within `end`.
        let mut size = if start == 0 {
            bits
        } else {
            start.trailing_zeros().min(bits)
        };
        loop {
            let last = if size >= 128 {
                u128::MAX
            } else {
                start | ((1u128 << size) - 1)
            };
            if last <= end {
                break;
            }
            size -= 1;
        }
        out.push((start, (bits - size) as u8));
        let block_last = if size >= 128 {
            u128::MAX
        } else {
            start | ((1u128 << size) - 1)
        };
        if block_last >= end {
            break;
        }
        start = block_last + 1;
    }
    out
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let ts = |a: &str, b: &str| TrafficSelector {
            start_addr: a.parse().unwrap(),
            end_addr: b.parse().unwrap(),
            ..TrafficSelector::any_v4()
        };
        assert_eq!(
            ts_to_prefixes(&ts("10.1.0.0", "10.1.255.255")),
            vec![("10.1.0.0".parse().unwrap(), 16)]
        );
        assert_eq!(
            ts_to_prefixes(&ts("0.0.0.0", "255.255.255.255")),
            vec![("0.0.0.0".parse().unwrap(), 0)]
        );
        assert_eq!(
            ts_to_prefixes(&ts("10.0.0.1", "10.0.0.2")),
            vec![
                ("10.0.0.1".parse().unwrap(), 32),
                ("10.0.0.2".parse().unwrap(), 32)
            ]
        );
        assert_eq!(
            ts_to_prefixes(&ts("10.0.0.5", "10.0.0.5")),
            vec![("10.0.0.5".parse().unwrap(), 32)]
        );
        let v6 = TrafficSelector::from_prefix("2001:db8::".parse().unwrap(), 32).unwrap();
        assert_eq!(
            ts_to_prefixes(&v6),
            vec![("2001:db8::".parse().unwrap(), 32)]
        );
        let all6 = TrafficSelector::from_prefix("::".parse().unwrap(), 0).unwrap();
        assert_eq!(ts_to_prefixes(&all6), vec![("::".parse().unwrap(), 0)]);
    }
}
