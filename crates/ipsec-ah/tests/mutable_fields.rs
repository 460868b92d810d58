//! Every bit of the headers of representative packets, flipped one at a time, for
//! every transform: a bit RFC 4302 §3.3.3.1 calls mutable still verifies (and the
//! rebuilt packet carries the change), any other bit fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::build::{self, addr6, Built, Ext6, Opt4, Opt6};
use common::{buffer, provider, ROOM};
use ipsec_ah::tunnel::ecn;
use ipsec_ah::OpenOptions;
use ipsec_ah::{integ, AhInbound, AhOutbound, OpenError, PacketBuf, Tunnel, TunnelConfig};
use ipsec_core::{KeyMaterial, Spi};
use ipsec_crypto::suites::{self, IntegDesc};

const SPI: Spi = Spi(0x0000_5a5a);

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

fn pair(d: &'static IntegDesc, esn: bool) -> (AhOutbound, AhInbound) {
    let k: Vec<u8> = (0..d.key_len).map(|i| i as u8 ^ 0xa7).collect();
    let k = KeyMaterial::new(&[], &k).unwrap();
    (
        AhOutbound::new(provider(), SPI, d, &k, esn).unwrap(),
        // Anti-replay off: the same sequence number is opened many times.
        AhInbound::new(provider(), SPI, d, &k, esn, 0).unwrap(),
    )
}

fn open(inb: &mut AhInbound, p: &[u8], tunnel: bool) -> Result<Vec<u8>, OpenError> {
    let mut s = buffer(p);
    let mut b = PacketBuf::new(&mut s[..], ROOM, p.len()).unwrap();
    let r = if tunnel {
        inb.open_tunnel(&mut b, OpenOptions::new())
    } else {
        inb.open_transport(&mut b, OpenOptions::new())
    };
    r.map(|_| b.body().to_vec())
}

fn v4_with_options() -> Built {
    build::ipv4(
        &[
            Opt4::RouterAlert,
            Opt4::Timestamp(1),
            Opt4::RecordRoute(2),
            Opt4::Security(3),
            Opt4::Nop,
            Opt4::Unknown(0x52, 2),
        ],
        0x28,
        true,
        17,
        &[0xab; 40],
    )
}

fn v4_source_routed() -> Built {
    build::ipv4(
        &[Opt4::Lsrr(vec![
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            [192, 0, 2, 200],
        ])],
        0,
        false,
        6,
        &[0xcd; 24],
    )
}

fn v6_with_chain() -> Built {
    build::ipv6(
        &[
            Ext6::HopByHop(vec![
                Opt6 {
                    typ: 0x05,
                    data: vec![0, 0],
                },
                Opt6 {
                    typ: 0x3e,
                    data: vec![1, 2, 3, 4, 5],
                },
            ]),
            Ext6::DstOpts(vec![Opt6 {
                typ: 0x26,
                data: vec![9; 6],
            }]),
            Ext6::Routing {
                rtype: 0,
                addrs: vec![addr6(1), addr6(2), addr6(3)],
                segleft: 3,
            },
            Ext6::Fragment,
            Ext6::DstOpts(vec![Opt6 {
                typ: 0x3e,
                data: vec![7; 4],
            }]),
        ],
        0xb8,
        0x12345,
        17,
        &[0xef; 32],
    )
}

/// Flips every bit of the first `header` bytes (and a few payload bits) of the sealed
/// form of `pkt` and checks the outcome against the RFC map.
fn exhaust(pkt: &Built, d: &'static IntegDesc, esn: bool) -> (usize, usize) {
    let (mut out, mut inb) = pair(d, esn);
    if esn {
        out.set_next_seq((7 << 32) | 3).unwrap();
        inb.set_replay_window(ipsec_core::ReplayWindow::restore(64, false, (7 << 32) | 2).unwrap());
    }
    let mut s = buffer(&pkt.bytes);
    let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.bytes.len()).unwrap();
    out.seal_transport(&mut b).unwrap();
    let sealed = b.body().to_vec();
    let ah_len = sealed.len() - pkt.bytes.len();
    let (mutable, skip) = pkt.with_inserted(pkt.insert_at, ah_len);
    let header = pkt.insert_at + ah_len;
    let (mut ok, mut bad) = (0, 0);
    let bits = (0..header * 8).chain((header * 8..sealed.len() * 8).step_by(61));
    for bit in bits {
        let m = 0x80u8 >> (bit % 8);
        if skip[bit / 8] & m != 0 {
            continue;
        }
        let mut p = sealed.clone();
        p[bit / 8] ^= m;
        let r = open(&mut inb, &p, false);
        if mutable[bit / 8] & m != 0 {
            let rebuilt = r.unwrap_or_else(|e| panic!("{} mutable bit {bit}: {e}", d.name));
            // The change is delivered, not undone: the rebuilt packet is the original
            // with that bit flipped (IPv4: and its checksum recomputed).
            let i = bit / 8;
            let j = if i >= header { i - ah_len } else { i };
            if !(10..12).contains(&j) || p[0] >> 4 == 6 {
                assert_eq!(rebuilt[j], pkt.bytes[j] ^ m, "{} byte {j}", d.name);
            }
            ok += 1;
        } else {
            assert!(
                r.is_err(),
                "{}: immutable bit {bit} flipped and still verified",
                d.name
            );
            bad += 1;
        }
    }
    assert!(open(&mut inb, &sealed, false).is_ok());
    (ok, bad)
}

#[test]
fn ipv4_options_every_header_bit() {
    for d in transforms() {
        for esn in [false, true] {
            let (ok, bad) = exhaust(&v4_with_options(), d, esn);
            assert!(ok > 100 && bad > 300, "{ok} {bad}");
        }
    }
}

#[test]
fn ipv4_source_route_every_header_bit() {
    for d in transforms() {
        let (ok, bad) = exhaust(&v4_source_routed(), d, false);
        assert!(ok > 60 && bad > 200, "{ok} {bad}");
    }
}

#[test]
fn ipv6_extension_headers_every_header_bit() {
    for d in transforms() {
        for esn in [false, true] {
            let (ok, bad) = exhaust(&v6_with_chain(), d, esn);
            assert!(ok > 100 && bad > 1000, "{ok} {bad}");
        }
    }
}

/// The packet as the final destination receives it, after every hop of the
/// routing header (or source route) and with every mutable field changed, verifies.
#[test]
fn travelled_routes_verify() {
    for d in transforms() {
        for (pkt, v6) in [(v6_with_chain(), true), (v4_source_routed(), false)] {
            let (mut out, mut inb) = pair(d, false);
            let mut s = buffer(&pkt.bytes);
            let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.bytes.len()).unwrap();
            out.seal_transport(&mut b).unwrap();
            let sealed = b.body().to_vec();
            for hops in 0..=3 {
                let mut p = sealed.clone();
                if v6 {
                    build::route_hops(&mut p, hops);
                    p[1] ^= 0xff;
                } else if hops == 3 {
                    build::lsrr_travel(&mut p);
                }
                assert!(open(&mut inb, &p, false).is_ok(), "{} hops {hops}", d.name);
            }
        }
    }
}

/// Tunnel mode: outer TOS / traffic class, flow label, TTL / hop limit, flags and
/// checksum are mutable; the rest of the outer header, the AH and the inner packet
/// (whose TTL and TOS routers do not see) are not.
#[test]
fn tunnel_outer_header_every_bit() {
    let inner = build::ipv4(&[], 0x02, true, 17, &[0x11; 20]).bytes;
    for d in transforms() {
        for outer6 in [false, true] {
            let (mut out, mut inb) = pair(d, false);
            let (l, r) = if outer6 {
                (
                    "2001:db8::1".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                )
            } else {
                ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            };
            let mut t = Tunnel::new(TunnelConfig::new(l, r)).unwrap();
            let mut s = buffer(&inner);
            let mut b = PacketBuf::new(&mut s[..], ROOM, inner.len()).unwrap();
            out.seal_tunnel(&mut t, &mut b).unwrap();
            let sealed = b.body().to_vec();
            let outer_len = if outer6 { 40 } else { 20 };
            let mask: Vec<u8> = if outer6 {
                let mut m = vec![0u8; 40];
                m[0] = 0x0f;
                m[1] = 0xcf; // not the ECN bits: their outcome is RFC 6040's
                m[2] = 0xff;
                m[3] = 0xff;
                m[7] = 0xff;
                m
            } else {
                let mut m = vec![0u8; 20];
                m[1] = 0xfc;
                m[6] = 0xc0;
                m[8] = 0xff;
                m[10] = 0xff;
                m[11] = 0xff;
                m
            };
            for bit in 0..(outer_len + 40) * 8 {
                let m = 0x80u8 >> (bit % 8);
                let mut p = sealed.clone();
                p[bit / 8] ^= m;
                let r = open(&mut inb, &p, true);
                if mask.get(bit / 8).is_some_and(|x| x & m != 0) {
                    assert_eq!(r.unwrap(), inner, "{} bit {bit}", d.name);
                } else if bit / 8 != 1 {
                    // (Byte 1 holds the ECN bits, whose effect RFC 6040 decides:
                    // checked below.)
                    assert!(r.is_err(), "{} outer6={outer6} bit {bit}", d.name);
                }
            }
            // RFC 6040: CE on the outer header marks an ECT inner packet CE.
            let mut p = sealed.clone();
            if outer6 {
                p[1] |= ecn::CE << 4;
            } else {
                p[1] |= ecn::CE;
            }
            let got = open(&mut inb, &p, true).unwrap();
            assert_eq!(got[1] & 3, ecn::CE);
            assert_eq!(build::checksum(&got[..20]), 0, "inner checksum fixed");
        }
    }
}

#[test]
fn tunnel_ce_over_not_ect_is_dropped() {
    let inner = build::ipv4(&[], 0x00, true, 17, &[0x11; 20]).bytes;
    let (mut out, mut inb) = pair(&suites::HMAC_SHA256_128, false);
    let mut t = Tunnel::new(TunnelConfig::new(
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
    ))
    .unwrap();
    let mut s = buffer(&inner);
    let mut b = PacketBuf::new(&mut s[..], ROOM, inner.len()).unwrap();
    out.seal_tunnel(&mut t, &mut b).unwrap();
    let mut p = b.body().to_vec();
    p[1] |= ecn::CE;
    assert_eq!(open(&mut inb, &p, true).unwrap_err(), OpenError::EcnDrop);
}
