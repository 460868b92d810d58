//! Property tests: round trips, and which changes in flight the ICV survives.
//!
//! - seal → open gives back the original packet, for IPv4 with any mix of options and
//!   IPv6 with any extension header chain, for every transform, with and without ESN;
//! - every change RFC 4302 §3.3.3.1 allows routers to make (TOS / traffic class,
//!   flags, TTL / hop limit, checksum, flow label, mutable IPv4 options, IPv6 option
//!   data marked "may change", travelling a source route or a routing header) still
//!   verifies;
//! - flipping any other bit (an immutable header field, an immutable option, the AH,
//!   the ICV, the payload) fails.
//!
//! Which bits are which comes from `common/build.rs`, written from the RFC's tables
//! rather than from the crate's code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::build::{self, addr6, Built, Ext6, Opt4, Opt6};
use common::{buffer, provider, ROOM};
use ipsec_ah::OpenOptions;
use ipsec_ah::{integ, AhInbound, AhOutbound, PacketBuf, Tunnel, TunnelConfig};
use ipsec_core::{KeyMaterial, ReplayWindow, Spi};
use ipsec_crypto::suites::{self, IntegDesc};
use proptest::prelude::*;

const SPI: Spi = Spi(0x0a0b_0c0d);

fn transforms() -> [&'static IntegDesc; 6] {
    [
        &suites::HMAC_SHA1_96,
        &suites::HMAC_SHA256_128,
        &suites::HMAC_SHA384_192,
        &suites::HMAC_SHA512_256,
        &integ::AES_128_GMAC,
        &integ::AES_256_GMAC,
    ]
}

fn keys(d: &IntegDesc) -> KeyMaterial {
    let k: Vec<u8> = (0..d.key_len)
        .map(|i| (i as u8).wrapping_mul(29) ^ 0x3c)
        .collect();
    KeyMaterial::new(&[], &k).unwrap()
}

fn pair(d: &'static IntegDesc, esn: bool, window: u32) -> (AhOutbound, AhInbound) {
    let k = keys(d);
    (
        AhOutbound::new(provider(), SPI, d, &k, esn).unwrap(),
        AhInbound::new(provider(), SPI, d, &k, esn, window).unwrap(),
    )
}

fn seal_transport(out: &mut AhOutbound, p: &[u8]) -> Vec<u8> {
    let mut s = buffer(p);
    let mut b = PacketBuf::new(&mut s[..], ROOM, p.len()).unwrap();
    out.seal_transport(&mut b).unwrap();
    b.body().to_vec()
}

fn open_transport(inb: &mut AhInbound, p: &[u8]) -> Result<Vec<u8>, ipsec_ah::OpenError> {
    let mut s = buffer(p);
    let mut b = PacketBuf::new(&mut s[..], ROOM, p.len()).unwrap();
    inb.open_transport(&mut b, OpenOptions::new())
        .map(|_| b.body().to_vec())
}

fn opt4() -> impl Strategy<Value = Opt4> {
    prop_oneof![
        Just(Opt4::RouterAlert),
        Just(Opt4::Nop),
        (0u8..6).prop_map(Opt4::Security),
        (1u8..3).prop_map(Opt4::Timestamp),
        (1u8..3).prop_map(Opt4::RecordRoute),
        (
            prop::sample::select(vec![0x19u8, 0x8e, 0x99, 0xcd, 0x52]),
            0u8..4
        )
            .prop_map(|(t, n)| Opt4::Unknown(t, n)),
    ]
}

fn v4_packet() -> impl Strategy<Value = Built> {
    (
        prop::collection::vec(opt4(), 0..4),
        prop::option::of(prop::collection::vec(any::<[u8; 4]>(), 1..3)),
        any::<u8>(),
        any::<bool>(),
        prop::sample::select(vec![1u8, 6, 17, 50, 132]),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_filter_map(
            "options fit 40 bytes",
            |(mut opts, lsrr, tos, df, proto, payload)| {
                if let Some(a) = lsrr {
                    opts.push(Opt4::Lsrr(a));
                }
                let b = build::ipv4(&[], 0, false, 0, &[]);
                let _ = b;
                let len: usize = opts
                    .iter()
                    .map(|o| match o {
                        Opt4::RouterAlert => 4,
                        Opt4::Nop => 1,
                        Opt4::Security(n) => 2 + usize::from(*n),
                        Opt4::Timestamp(n) => 4 + 4 * usize::from(*n),
                        Opt4::RecordRoute(n) => 3 + 4 * usize::from(*n),
                        Opt4::Unknown(_, n) => 2 + usize::from(*n),
                        Opt4::Lsrr(a) => 3 + 4 * a.len(),
                    })
                    .sum();
                (len <= 40).then(|| build::ipv4(&opts, tos, df, proto, &payload))
            },
        )
}

fn opt6() -> impl Strategy<Value = Opt6> {
    (
        // Router Alert (immutable), experimental 0x1e (immutable) and 0x3e (may change),
        // Quick-Start 0x26 (may change), Pad1.
        prop::sample::select(vec![0x05u8, 0x1e, 0x3e, 0x26, 0x00]),
        prop::collection::vec(any::<u8>(), 0..12),
    )
        .prop_map(|(typ, data)| Opt6 {
            typ,
            data: if typ == 0 { vec![] } else { data },
        })
}

fn routing() -> impl Strategy<Value = Ext6> {
    prop_oneof![
        (1usize..4, any::<u8>()).prop_map(|(n, s)| Ext6::Routing {
            rtype: 0,
            addrs: (0..n).map(|i| addr6(0x10 + i as u8)).collect(),
            segleft: s % (n as u8 + 1),
        }),
        (0u8..2).prop_map(|s| Ext6::Routing {
            rtype: 2,
            addrs: vec![addr6(0x77)],
            segleft: s
        }),
        (1usize..3).prop_map(|n| Ext6::Routing {
            rtype: 4,
            addrs: (0..n).map(|i| addr6(0x40 + i as u8)).collect(),
            segleft: 1,
        }),
    ]
}

fn v6_packet() -> impl Strategy<Value = Built> {
    (
        prop::option::of(prop::collection::vec(opt6(), 0..4)),
        prop::option::of((
            prop::option::of(prop::collection::vec(opt6(), 0..3)),
            routing(),
        )),
        any::<bool>(),
        prop::option::of(prop::collection::vec(opt6(), 0..3)),
        any::<u8>(),
        0u32..0x10_0000,
        prop::sample::select(vec![6u8, 17, 58, 59, 4, 41]),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(hbh, rt, frag, final_dst, tc, flow, proto, payload)| {
            let mut chain = vec![];
            if let Some(o) = hbh {
                chain.push(Ext6::HopByHop(o));
            }
            if let Some((dst, r)) = rt {
                if let Some(o) = dst {
                    chain.push(Ext6::DstOpts(o));
                }
                chain.push(r);
            }
            if frag {
                chain.push(Ext6::Fragment);
            }
            if let Some(o) = final_dst {
                chain.push(Ext6::DstOpts(o));
            }
            build::ipv6(&chain, tc, flow, proto, &payload)
        })
}

fn any_packet() -> impl Strategy<Value = Built> {
    prop_oneof![v4_packet(), v6_packet()]
}

/// Applies `noise` to the bits routers may change, then travels any routing header
/// or source route: what a receiver may legitimately see.
fn in_flight(sealed: &[u8], mutable: &[u8], skip: &[u8], noise: &[u8], hops: usize) -> Vec<u8> {
    let mut p = sealed.to_vec();
    for (i, b) in p.iter_mut().enumerate() {
        *b ^= mutable[i] & !skip[i] & noise[i % noise.len()];
    }
    if p[0] >> 4 == 6 {
        build::route_hops(&mut p, hops);
    } else if hops % 2 == 1 {
        build::lsrr_travel(&mut p);
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn roundtrip_transport(pkt in any_packet(), t in 0usize..6, esn: bool, start in 1u64..1 << 40) {
        let d = transforms()[t];
        let (mut out, mut inb) = pair(d, esn, 0);
        let start = if esn { start } else { start & 0xffff_ffff | 1 };
        out.set_next_seq(start).unwrap();
        if esn {
            inb.set_replay_window(ReplayWindow::restore(4096, false, start - 1).unwrap());
        }
        let sealed = seal_transport(&mut out, &pkt.bytes);
        prop_assert_eq!(sealed.len(), pkt.bytes.len() + out.ah_len(if pkt.bytes[0] >> 4 == 4 {
            ipsec_ah::Family::Ipv4 } else { ipsec_ah::Family::Ipv6 }));
        let opened = open_transport(&mut inb, &sealed).unwrap();
        prop_assert_eq!(hex::encode(&opened), hex::encode(&pkt.bytes));
    }

    #[test]
    fn mutable_changes_still_verify(
        pkt in any_packet(),
        t in 0usize..6,
        noise in prop::collection::vec(any::<u8>(), 1..64),
        hops in 0usize..4,
    ) {
        let d = transforms()[t];
        let (mut out, mut inb) = pair(d, false, 0);
        let sealed = seal_transport(&mut out, &pkt.bytes);
        let ah_len = sealed.len() - pkt.bytes.len();
        let (mutable, skip) = pkt.with_inserted(pkt.insert_at, ah_len);
        let moved = in_flight(&sealed, &mutable, &skip, &noise, hops);
        let opened = open_transport(&mut inb, &moved);
        prop_assert!(opened.is_ok(), "{:?}\nsent    {}\narrived {}", opened, hex::encode(&sealed), hex::encode(&moved));
        let opened = opened.unwrap();
        // The payload is untouched.
        let tail = pkt.bytes.len() - pkt.insert_at;
        prop_assert_eq!(&opened[opened.len() - tail..], &pkt.bytes[pkt.insert_at..]);
    }

    #[test]
    fn immutable_bit_flips_fail(pkt in any_packet(), t in 0usize..6, picks in prop::collection::vec(any::<prop::sample::Index>(), 8)) {
        let d = transforms()[t];
        let (mut out, mut inb) = pair(d, false, 0);
        let sealed = seal_transport(&mut out, &pkt.bytes);
        let ah_len = sealed.len() - pkt.bytes.len();
        let (mutable, skip) = pkt.with_inserted(pkt.insert_at, ah_len);
        let fixed: Vec<usize> = (0..sealed.len() * 8)
            .filter(|&bit| (mutable[bit / 8] | skip[bit / 8]) & (0x80 >> (bit % 8)) == 0)
            .collect();
        for i in picks {
            let bit = fixed[i.index(fixed.len())];
            let mut p = sealed.clone();
            p[bit / 8] ^= 0x80 >> (bit % 8);
            prop_assert!(open_transport(&mut inb, &p).is_err(), "bit {} of {}", bit, hex::encode(&sealed));
        }
        prop_assert!(open_transport(&mut inb, &sealed).is_ok());
    }

    #[test]
    fn roundtrip_tunnel(
        inner in any_packet(),
        outer6: bool,
        t in 0usize..6,
        esn: bool,
        ttl: u8,
        tos in 0u8..=0xff,
        hops in 0u8..64,
    ) {
        let d = transforms()[t];
        let (mut out, mut inb) = pair(d, esn, 64);
        let (l, r) = if outer6 {
            ("2001:db8:a::1".parse().unwrap(), "2001:db8:b::1".parse().unwrap())
        } else {
            ("198.51.100.7".parse().unwrap(), "203.0.113.9".parse().unwrap())
        };
        let mut c = TunnelConfig::new(l, r);
        c.ttl = ttl;
        let mut tun = Tunnel::new(c).unwrap();
        let o = out.tunnel_overhead(&tun);
        let mut s = buffer(&inner.bytes);
        let mut b = PacketBuf::new(&mut s[..], ROOM, inner.bytes.len()).unwrap();
        out.seal_tunnel(&mut tun, &mut b).unwrap();
        prop_assert_eq!(b.body_len(), inner.bytes.len() + o.head);
        let mut sealed = b.body().to_vec();
        // Routers change the outer TTL / hop limit and DSCP (not ECN: see the ECN test).
        if outer6 {
            sealed[7] = sealed[7].wrapping_sub(hops);
            sealed[0] ^= tos >> 4;
            sealed[1] ^= (tos << 4) & 0xc0;
        } else {
            sealed[8] = sealed[8].wrapping_sub(hops);
            sealed[1] ^= tos & 0xfc;
        }
        let mut s = buffer(&sealed);
        let mut b = PacketBuf::new(&mut s[..], ROOM, sealed.len()).unwrap();
        let opened = inb.open_tunnel(&mut b, OpenOptions::new()).unwrap();
        prop_assert_eq!(opened.seq, 1);
        prop_assert_eq!(hex::encode(b.body()), hex::encode(&inner.bytes));
    }

    /// The shared-reference paths (caller's sequence number, caller's window) give the
    /// same bytes and the same verdicts as the `&mut self` paths.
    #[test]
    fn shared_paths_match(
        pkt in any_packet(),
        t in 0usize..6,
        esn: bool,
        seq in 1u64..1 << 40,
        tunnel: bool,
        flip in any::<prop::sample::Index>(),
    ) {
        let d = transforms()[t];
        let seq = if esn { seq } else { seq & 0xffff_ffff | 1 };
        let (mut out, mut inb) = pair(d, esn, 64);
        let window = ReplayWindow::restore(64, true, seq - 1).unwrap();
        inb.set_replay_window(window.clone());
        let mut guard = window;
        out.set_next_seq(seq).unwrap();
        let mut c = TunnelConfig::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        c.ttl = 9;
        let mut tun = Tunnel::new(c).unwrap();
        tun.set_next_ident((seq & 0xffff) as u16);
        let mut s1 = buffer(&pkt.bytes);
        let mut b1 = PacketBuf::new(&mut s1[..], ROOM, pkt.bytes.len()).unwrap();
        let mut s2 = buffer(&pkt.bytes);
        let mut b2 = PacketBuf::new(&mut s2[..], ROOM, pkt.bytes.len()).unwrap();
        if tunnel {
            prop_assert_eq!(out.seal_tunnel(&mut tun, &mut b1).unwrap(), seq);
            out.seal_tunnel_at(&tun, &mut b2, seq).unwrap();
        } else {
            prop_assert_eq!(out.seal_transport(&mut b1).unwrap(), seq);
            out.seal_transport_at(&mut b2, seq).unwrap();
        }
        prop_assert_eq!(b1.body(), b2.body());
        let mut sealed = b1.body().to_vec();
        if flip.index(4) == 0 {
            let i = flip.index(sealed.len());
            sealed[i] ^= 0x40;
        }
        let mut s1 = buffer(&sealed);
        let mut b1 = PacketBuf::new(&mut s1[..], ROOM, sealed.len()).unwrap();
        let mut s2 = buffer(&sealed);
        let mut b2 = PacketBuf::new(&mut s2[..], ROOM, sealed.len()).unwrap();
        let (r1, r2) = if tunnel {
            (inb.open_tunnel(&mut b1, OpenOptions::new()), inb.open_tunnel_with(&mut b2, &mut guard, OpenOptions::new()))
        } else {
            (inb.open_transport(&mut b1, OpenOptions::new()), inb.open_transport_with(&mut b2, &mut guard, OpenOptions::new()))
        };
        prop_assert_eq!(r1, r2);
        prop_assert_eq!(b1.body(), b2.body());
        prop_assert_eq!(inb.replay_window().top(), guard.top());
    }

    #[test]
    fn open_never_panics_and_never_accepts_garbage(bytes in prop::collection::vec(any::<u8>(), 0..200), t in 0usize..6, head in 0usize..8) {
        let d = transforms()[t];
        let (_, mut inb) = pair(d, t % 2 == 0, 64);
        let mut s = vec![0u8; head];
        s.extend_from_slice(&bytes);
        let len = bytes.len();
        let mut b = PacketBuf::new(&mut s[..], head, len).unwrap();
        prop_assert!(inb.open_transport(&mut b, OpenOptions::new()).is_err());
        prop_assert_eq!(b.body(), &bytes[..]);
        let mut b = PacketBuf::new(&mut s[..], head, len).unwrap();
        prop_assert!(inb.open_tunnel(&mut b, OpenOptions::new()).is_err());
        prop_assert_eq!(b.body(), &bytes[..]);
    }
}
