use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn pool(addrs: &str) -> MemPool {
    MemPool::new(&PoolConf::new("p", addrs.parse().unwrap())).unwrap()
}

fn id(n: u32) -> Identity {
    Identity::Fqdn(format!("user{n}.example"))
}

const ANY4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const ANY6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn subnets_skip_network_and_broadcast() {
    // mem_pool.c (strongSwan): a /24 given as its network serves .1 to .254.
    let p = pool("10.3.0.0/24");
    assert_eq!(p.size(), 254);
    assert_eq!(p.acquire_one(&id(1), ANY4), Some(ip("10.3.0.1")));
    assert!(!p.contains(ip("10.3.0.0")) && !p.contains(ip("10.3.0.255")));
    assert!(p.contains(ip("10.3.0.254")));
    // Given with host bits, it starts at that address (and still ends before the
    // broadcast address).
    let p = pool("10.3.0.100/24");
    assert_eq!(p.size(), 155);
    assert_eq!(p.acquire_one(&id(1), ANY4), Some(ip("10.3.0.100")));
    assert!(!p.contains(ip("10.3.0.99")) && !p.contains(ip("10.3.0.255")));
    // A /32 serves its address, a /31 both, a /30 the two hosts.
    assert_eq!(pool("10.3.0.7/32").size(), 1);
    assert_eq!(pool("10.3.0.6/31").size(), 2);
    assert_eq!(pool("10.3.0.7/31").size(), 1);
    assert_eq!(pool("10.3.0.4/30").size(), 2);
    // A range serves every address in it.
    let p = pool("10.3.0.0-10.3.0.3");
    assert_eq!(p.size(), 4);
    assert_eq!(p.acquire_one(&id(1), ANY4), Some(ip("10.3.0.0")));
    // IPv6.
    let p = pool("fd00::/120");
    assert_eq!(p.size(), 254);
    assert_eq!(p.acquire_one(&id(1), ANY6), Some(ip("fd00::1")));
}

#[test]
fn huge_pools_cost_nothing_up_front() {
    let p = pool("10.0.0.0/8");
    assert_eq!(p.size(), (1 << 24) - 2);
    let p6 = pool("fd00::/64");
    assert_eq!(p6.size(), MAX_POOL_SIZE - 2);
    for n in 0..1000 {
        assert!(p.acquire_one(&id(n), ANY4).is_some());
        assert!(p6.acquire_one(&id(n), ANY6).is_some());
    }
    assert_eq!(p.counts(), (1000, 0));
    // What is kept is the leases: the maps hold 1000 entries, not the pool's size.
    assert_eq!(p.lock().leases.len(), 1000);
}

#[test]
fn same_identity_gets_its_address_back() {
    let p = pool("10.3.0.0/24");
    let a = p.acquire_one(&id(1), ANY4).unwrap();
    let b = p.acquire_one(&id(2), ANY4).unwrap();
    assert_ne!(a, b);
    // While its first IKE SA still holds it (a reconnect before the old SA is gone).
    assert_eq!(p.acquire_one(&id(1), ANY4), Some(a));
    assert_eq!(p.counts(), (2, 0));
    p.release_one(&id(1), a);
    assert_eq!(p.counts(), (2, 0), "still held by the second IKE SA");
    p.release_one(&id(1), a);
    assert_eq!(p.counts(), (1, 1), "offline, kept for user1");
    // Another identity does not get it while new addresses are left.
    let c = p.acquire_one(&id(3), ANY4).unwrap();
    assert!(c != a && c != b);
    // The owner does, when it reconnects.
    assert_eq!(p.acquire_one(&id(1), ANY4), Some(a));
    assert_eq!(p.counts(), (3, 0));
}

#[test]
fn release_by_another_identity_or_twice_is_ignored() {
    let p = pool("10.3.0.0/24");
    let a = p.acquire_one(&id(1), ANY4).unwrap();
    p.release_one(&id(2), a);
    assert_eq!(p.counts(), (1, 0));
    p.release_one(&id(1), a);
    p.release_one(&id(1), a);
    p.release_one(&id(1), ip("192.0.2.1"));
    p.release_one(&id(1), ip("10.3.0.77"));
    assert_eq!(p.counts(), (0, 1));
}

#[test]
fn a_requested_address_is_honoured_when_free() {
    let p = pool("10.3.0.0/24");
    assert_eq!(
        p.acquire_one(&id(1), ip("10.3.0.50")),
        Some(ip("10.3.0.50"))
    );
    // Taken: another identity asking for it gets another address.
    let other = p.acquire_one(&id(2), ip("10.3.0.50")).unwrap();
    assert_ne!(other, ip("10.3.0.50"));
    // Outside the pool: any address.
    let out = p.acquire_one(&id(3), ip("192.0.2.9")).unwrap();
    assert!(p.contains(out));
    // The new-address counter skips what was taken out of order.
    let mut seen: HashSet<IpAddr> = [ip("10.3.0.50"), other, out].into();
    for n in 10..60 {
        assert!(seen.insert(p.acquire_one(&id(n), ANY4).unwrap()));
    }
    // The owner asking for its own offline lease gets it back.
    p.release_one(&id(1), ip("10.3.0.50"));
    assert_eq!(
        p.acquire_one(&id(1), ip("10.3.0.50")),
        Some(ip("10.3.0.50"))
    );
}

#[test]
fn exhaustion_then_reuse_of_the_oldest_offline_lease() {
    let p = pool("10.3.0.0/30");
    let a = p.acquire_one(&id(1), ANY4).unwrap();
    let b = p.acquire_one(&id(2), ANY4).unwrap();
    assert_eq!(p.acquire_one(&id(3), ANY4), None, "both online: exhausted");
    // Empty lease through the AddressPool interface.
    let lease = AddressPool::acquire(&p, &id(3), &[ANY4]);
    assert!(lease.addresses.is_empty() && lease.attributes.is_empty());
    p.release_one(&id(2), b);
    p.release_one(&id(1), a);
    // b went offline first: it is reassigned first.
    assert_eq!(p.acquire_one(&id(3), ANY4), Some(b));
    assert_eq!(p.acquire_one(&id(4), ANY4), Some(a));
    // user2 lost its lease: it gets nothing while both are online.
    assert_eq!(p.acquire_one(&id(2), ANY4), None);
    let st = p.status();
    assert_eq!((st.online, st.offline, st.size), (2, 0, 2));
    assert_eq!(st.leases[0].identity, ipsec_pki::identity_string(&id(4)));
}

#[test]
fn families_and_sets() {
    let v4 = Arc::new(
        MemPool::new(&PoolConf {
            dns: vec![ip("10.3.0.53")],
            ..PoolConf::new("v4", "10.3.0.0/24".parse().unwrap())
        })
        .unwrap(),
    );
    let v6 = Arc::new(pool("fd00::/120"));
    assert_eq!(v4.acquire_one(&id(1), ANY6), None);
    let set = PoolSet::new(vec![Arc::clone(&v4), Arc::clone(&v6)]);
    let lease = set.acquire(&id(9), &[ANY4, ANY6]);
    assert_eq!(lease.addresses, vec![ip("10.3.0.1"), ip("fd00::1")]);
    assert_eq!(lease.attributes, vec![CfgAttribute::dns(ip("10.3.0.53"))]);
    set.release(&id(9), ip("fd00::1"));
    assert_eq!(v6.counts(), (0, 1));
    assert_eq!(v4.counts(), (1, 0));
    // Only IPv6 asked of a set whose v6 pool is full: nothing, and no DNS.
    let small = PoolSet::new(vec![Arc::new(pool("fd01::1/128"))]);
    assert_eq!(
        small.acquire(&id(1), &[ANY6]).addresses,
        vec![ip("fd01::1")]
    );
    assert_eq!(small.acquire(&id(2), &[ANY6]), Lease::default());
    // Two pools of one family: the second serves when the first is full.
    let two = PoolSet::new(vec![
        Arc::new(pool("10.9.0.1/32")),
        Arc::new(pool("10.9.1.1/32")),
    ]);
    assert_eq!(two.acquire(&id(1), &[ANY4]).addresses, vec![ip("10.9.0.1")]);
    assert_eq!(two.acquire(&id(2), &[ANY4]).addresses, vec![ip("10.9.1.1")]);
}

#[test]
fn bad_pools_are_refused() {
    for a in ["%any", "%any4"] {
        assert!(MemPool::new(&PoolConf::new("p", a.parse().unwrap())).is_err());
    }
}

/// An operation on a pool: acquire (identity, a specific offset or any) or release
/// (identity, a lease index).
#[derive(Clone, Debug)]
enum Op {
    Acquire(u32, Option<u8>),
    Release(u32, usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0u32..12, prop::option::of(0u8..16)).prop_map(|(i, o)| Op::Acquire(i, o)),
            (0u32..12, 0usize..8).prop_map(|(i, n)| Op::Release(i, n)),
        ],
        0..200,
    )
}

proptest! {
    /// Against a model: online addresses are never shared between identities, an
    /// identity with an online lease gets that address again, every address comes
    /// from the pool, exhaustion only when every address is online, and the counts
    /// agree.
    #[test]
    fn leases_are_distinct_and_stable(ops in ops()) {
        let p = pool("10.3.0.0/28"); // 14 addresses
        // Model: (identity, address) holds.
        let mut held: Vec<(u32, IpAddr)> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire(i, off) => {
                    let req = off.map_or(ANY4, |o| IpAddr::V4(Ipv4Addr::new(10, 3, 0, o)));
                    let mine: Vec<IpAddr> = held.iter().filter(|(h, _)| *h == i).map(|(_, a)| *a).collect();
                    let got = p.acquire_one(&id(i), req);
                    match got {
                        Some(a) => {
                            prop_assert!(p.contains(a));
                            prop_assert!(!held.iter().any(|(h, x)| *x == a && *h != i),
                                "{a} online for another identity");
                            if !mine.is_empty() && (req.is_unspecified() || !p.contains(req)) {
                                prop_assert!(mine.contains(&a), "{a} not the identity's online address");
                            }
                            if p.contains(req) && !req.is_unspecified()
                                && !held.iter().any(|(_, x)| *x == req) && a != req {
                                // Free and not reserved offline by someone else? Then it
                                // must have been given.
                                let me = ipsec_pki::identity_string(&id(i));
                                let st = p.status();
                                prop_assert!(st.leases.iter().any(|l| l.address == req && l.identity != me));
                            }
                            held.push((i, a));
                        }
                        None => {
                            let online: HashSet<IpAddr> = held.iter().map(|(_, a)| *a).collect();
                            prop_assert_eq!(online.len() as u64, p.size(), "refused with free addresses");
                        }
                    }
                }
                Op::Release(i, n) => {
                    let mine: Vec<usize> = held.iter().enumerate().filter(|(_, (h, _))| *h == i).map(|(k, _)| k).collect();
                    if let Some(&k) = mine.get(n % mine.len().max(1)) {
                        let (_, a) = held.remove(k);
                        p.release_one(&id(i), a);
                    }
                }
            }
            let online: HashSet<IpAddr> = held.iter().map(|(_, a)| *a).collect();
            let (on, off) = p.counts();
            prop_assert_eq!(on, online.len() as u64);
            prop_assert!(on + off <= p.size());
        }
    }
}
