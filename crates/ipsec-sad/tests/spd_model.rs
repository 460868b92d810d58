//! The indexed SPD lookup agrees with a naive first-match scan.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::IpProto;
use ipsec_sad::{Action, AddrRange, FlowKey, PolicyRule, PortSel, PortValue, Selector, Spd};
use proptest::prelude::*;

/// The model: compare every field of every rule, in order, written without the index's
/// box encoding.
fn model(rules: &[PolicyRule], k: &FlowKey) -> Option<usize> {
    fn addr_in(r: &AddrRange, a: IpAddr) -> bool {
        match (r, a) {
            (AddrRange::Any, _) => true,
            (AddrRange::V4 { start, end }, IpAddr::V4(x)) => *start <= x && x <= *end,
            (AddrRange::V6 { start, end }, IpAddr::V6(x)) => *start <= x && x <= *end,
            _ => false,
        }
    }
    fn port_in(s: &PortSel, v: PortValue) -> bool {
        match (s, v) {
            (PortSel::Any, _) => true,
            (PortSel::Range { start, end }, PortValue::Port(p)) => *start <= p && p <= *end,
            (PortSel::Opaque, PortValue::Opaque) => true,
            _ => false,
        }
    }
    if k.local.is_ipv4() != k.remote.is_ipv4() {
        return None;
    }
    rules.iter().position(|r| {
        let s = &r.selector;
        addr_in(&s.local, k.local)
            && addr_in(&s.remote, k.remote)
            && (s.protocol.0 == 0 || s.protocol == k.protocol)
            && port_in(&s.local_port, k.local_port)
            && port_in(&s.remote_port, k.remote_port)
    })
}

const BASE: u32 = 0x0a00_0000;

fn v4() -> impl Strategy<Value = u32> {
    prop_oneof![8 => (0u32..96).prop_map(|o| BASE + o), 1 => Just(0u32), 1 => Just(u32::MAX)]
}

fn v6() -> impl Strategy<Value = u128> {
    prop_oneof![8 => (0u128..96).prop_map(|o| (0x2001_0db8u128 << 96) + o), 1 => Just(0u128), 1 => Just(u128::MAX)]
}

fn addr_range() -> impl Strategy<Value = AddrRange> {
    prop_oneof![
        1 => Just(AddrRange::Any),
        1 => Just(AddrRange::ANY_V4),
        6 => (v4(), v4()).prop_map(|(a, b)| AddrRange::V4 { start: Ipv4Addr::from(a.min(b)), end: Ipv4Addr::from(a.max(b)) }),
        2 => (v6(), v6()).prop_map(|(a, b)| AddrRange::V6 { start: Ipv6Addr::from(a.min(b)), end: Ipv6Addr::from(a.max(b)) }),
    ]
}

fn port_sel() -> impl Strategy<Value = PortSel> {
    prop_oneof![
        3 => Just(PortSel::Any),
        4 => (0u16..24, 0u16..24).prop_map(|(a, b)| PortSel::Range { start: a.min(b), end: a.max(b) }),
        1 => Just(PortSel::Range { start: 0, end: u16::MAX }),
        1 => Just(PortSel::Opaque),
    ]
}

fn proto() -> impl Strategy<Value = IpProto> {
    prop_oneof![
        Just(IpProto::ANY),
        Just(IpProto::TCP),
        Just(IpProto::UDP),
        Just(IpProto::ICMP)
    ]
}

fn rules(max: usize) -> impl Strategy<Value = Vec<PolicyRule>> {
    proptest::collection::vec(
        (addr_range(), addr_range(), proto(), port_sel(), port_sel()),
        0..max,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .filter_map(|(i, (l, r, p, lp, rp))| {
                // Mixed families are refused by Spd::new; keep the rest.
                let mixed = matches!(
                    (l, r),
                    (AddrRange::V4 { .. }, AddrRange::V6 { .. })
                        | (AddrRange::V6 { .. }, AddrRange::V4 { .. })
                );
                (!mixed).then(|| {
                    PolicyRule::new(
                        i as u32,
                        Selector {
                            local: l,
                            remote: r,
                            protocol: p,
                            local_port: lp,
                            remote_port: rp,
                        },
                        Action::Bypass,
                    )
                })
            })
            .collect()
    })
}

fn port_value() -> impl Strategy<Value = PortValue> {
    prop_oneof![6 => (0u16..26).prop_map(PortValue::Port), 1 => Just(PortValue::Port(u16::MAX)), 1 => Just(PortValue::Opaque)]
}

fn key() -> impl Strategy<Value = FlowKey> {
    let addrs = prop_oneof![
        4 => (v4(), v4()).prop_map(|(a, b)| (IpAddr::V4(a.into()), IpAddr::V4(b.into()))),
        1 => (v6(), v6()).prop_map(|(a, b)| (IpAddr::V6(a.into()), IpAddr::V6(b.into()))),
    ];
    let proto = prop_oneof![
        Just(IpProto::TCP),
        Just(IpProto::UDP),
        Just(IpProto::ICMP),
        Just(IpProto(47))
    ];
    (addrs, proto, port_value(), port_value())
        .prop_map(|((l, r), p, lp, rp)| FlowKey::new(l, r, p, lp, rp))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn index_agrees_with_naive_first_match(rules in rules(80), keys in proptest::collection::vec(key(), 64)) {
        let spd = Spd::new(rules.clone()).unwrap();
        for k in &keys {
            prop_assert_eq!(spd.lookup(k), model(&rules, k), "key {:?}", k);
            prop_assert_eq!(spd.lookup_linear(k), model(&rules, k));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn index_agrees_on_large_rule_sets(rules in rules(1500), keys in proptest::collection::vec(key(), 400)) {
        let spd = Spd::new(rules.clone()).unwrap();
        for k in &keys {
            prop_assert_eq!(spd.lookup(k), model(&rules, k), "key {:?}", k);
        }
    }
}
