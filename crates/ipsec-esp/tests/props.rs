//! Property tests: round trips for every suite and mode, single bit flips, replay and
//! reordering against a model, and ESN across the 2^32 boundary.
//!
//! Expected outcome of flipping one bit of a sealed packet, with the receiver in the
//! state it had before the packet:
//! - a bit of the SPI (bytes 0..4): `Malformed` (the SPI does not belong to this SA);
//! - a bit of the sequence number (bytes 4..8): `Replay` when the changed number is
//!   refused by the window pre-check (zero, too old, already seen), else `Integrity`;
//! - any other bit (IV, ciphertext, trailer, ICV): `Integrity`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::provider;
use ipsec_core::{IpProto, KeyMaterial, ReplayWindow, Spi};
use ipsec_crypto::suites::{self, EncrDesc, IntegDesc};
use ipsec_esp::transport;
use ipsec_esp::tunnel::{self, Tunnel, TunnelConfig};
use ipsec_esp::udp::UdpPorts;
use ipsec_esp::OpenOptions;
use ipsec_esp::{EspInbound, EspOutbound, OpenError, PacketBuf};
use proptest::prelude::*;

const SPI: Spi = Spi(0x0102_0304);

type Suite = (&'static EncrDesc, Option<&'static IntegDesc>);

fn suites() -> Vec<Suite> {
    vec![
        (&suites::AES_GCM_16_128, None),
        (&suites::AES_GCM_16_256, None),
        (&suites::CHACHA20_POLY1305, None),
        (&suites::AES_GMAC_128, None),
        (&suites::AES_GMAC_256, None),
        (&suites::AES_CBC_128, Some(&suites::HMAC_SHA1_96)),
        (&suites::AES_CBC_128, Some(&suites::HMAC_SHA256_128)),
        (&suites::AES_CBC_256, Some(&suites::HMAC_SHA384_192)),
        (&suites::AES_CBC_256, Some(&suites::HMAC_SHA512_256)),
        (&suites::NULL, Some(&suites::HMAC_SHA256_128)),
        (&suites::AES_CTR_128, Some(&suites::HMAC_SHA256_128)),
        (&suites::AES_CTR_192, Some(&suites::HMAC_SHA1_96)),
        (&suites::AES_CTR_256, Some(&suites::HMAC_SHA512_256)),
        (&suites::AES_CCM_16_128, None),
        (&suites::AES_CCM_12_192, None),
        (&suites::AES_CCM_8_256, None),
    ]
}

fn keys(s: Suite, seed: u8) -> KeyMaterial {
    let e: Vec<u8> = (0..s.0.keymat_len())
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    let i: Vec<u8> = (0..s.1.map_or(0, |d| d.key_len))
        .map(|i| seed.wrapping_mul(3).wrapping_add(i as u8))
        .collect();
    KeyMaterial::new(&e, &i).unwrap()
}

fn pair(s: Suite, esn: bool, window: u32, seed: u8) -> (EspOutbound, EspInbound) {
    let k = keys(s, seed);
    let o = EspOutbound::new(provider(), SPI, s.0, s.1, &k, esn).unwrap();
    let i = EspInbound::new(provider(), SPI, s.0, s.1, &k, esn, window).unwrap();
    (o, i)
}

/// Seals `payload` into a fresh buffer with exactly the room `overhead` asks for.
fn seal(o: &mut EspOutbound, payload: &[u8], nh: IpProto) -> (Vec<u8>, u64) {
    let ov = o.overhead(payload.len());
    let mut v = vec![0u8; ov.head];
    v.extend_from_slice(payload);
    v.resize(ov.total() + payload.len(), 0);
    let mut b = PacketBuf::new(&mut v[..], ov.head, payload.len()).unwrap();
    let seq = o.seal(&mut b, nh).unwrap();
    assert_eq!(b.body_range(), 0..v.len(), "overhead must be exact");
    (v, seq)
}

fn open(i: &mut EspInbound, pdu: &[u8]) -> Result<(Vec<u8>, ipsec_esp::Opened), OpenError> {
    let mut v = pdu.to_vec();
    let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
    let o = i.open(&mut b, OpenOptions::new())?;
    Ok((b.body().to_vec(), o))
}

fn ipv4_packet(payload: &[u8], proto: u8, tos: u8) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap();
    let mut p = vec![0x45, tos];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[
        0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let c = ipsec_core::ip::ipv4_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv6_packet(payload: &[u8], nh: u8, tc: u8, with_hbh: bool) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut first = nh;
    if with_hbh {
        ext.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]);
        first = 0;
    }
    let pl = u16::try_from(ext.len() + payload.len()).unwrap();
    let vtf: u32 = (6 << 28) | (u32::from(tc) << 20) | 0x12345;
    let mut p = vtf.to_be_bytes().to_vec();
    p.extend_from_slice(&pl.to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(&ext);
    p.extend_from_slice(payload);
    p
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn open_seal_roundtrip(
        suite in 0usize..10,
        esn in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..9000),
        nh in 1u8..=255,
        start in prop_oneof![Just(1u64), 1u64..1 << 20, ((1u64 << 32) - 5)..((1u64 << 32) + 5)],
        tfc in prop_oneof![Just(None), (0usize..2000).prop_map(Some)],
    ) {
        prop_assume!(nh != 59);
        let s = suites()[suite];
        let (mut o, mut i) = pair(s, esn, 128, 7);
        let start = if esn { start } else { start.min(u64::from(u32::MAX)) };
        o.set_next_seq(start).unwrap();
        o.set_tfc_padding(tfc);
        i.set_replay_window(ReplayWindow::restore(128, true, start - 1).unwrap());
        let (pdu, seq) = seal(&mut o, &payload, IpProto(nh));
        prop_assert_eq!(seq, start);
        let (inner, opened) = open(&mut i, &pdu).unwrap();
        let mut want = payload.clone();
        if let Some(t) = tfc {
            want.resize(want.len().max(t), 0);
        }
        prop_assert_eq!(inner, want);
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(opened.next_header, IpProto(nh));
        prop_assert_eq!(opened.spi, SPI);
        // A second copy is a replay.
        prop_assert!(matches!(open(&mut i, &pdu), Err(OpenError::Replay(_))));
    }

    #[test]
    fn tunnel_roundtrip(
        suite in 0usize..10,
        esn in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..9000),
        inner_v6 in any::<bool>(),
        outer_v6 in any::<bool>(),
        udp in any::<bool>(),
        tos in any::<u8>(),
        tfc in prop_oneof![Just(None), (0usize..1500).prop_map(Some)],
    ) {
        let s = suites()[suite];
        let (mut o, mut i) = pair(s, esn, 64, 9);
        o.set_tfc_padding(tfc);
        let inner = if inner_v6 { ipv6_packet(&payload, 17, tos, false) } else { ipv4_packet(&payload, 17, tos) };
        let (l, r) = if outer_v6 {
            ("2001:db8::a".parse().unwrap(), "2001:db8::b".parse().unwrap())
        } else {
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        };
        let mut cfg = TunnelConfig::new(l, r);
        if udp {
            cfg.udp = Some(UdpPorts::NAT_T);
        }
        let mut t = Tunnel::new(cfg).unwrap();
        let ov = t.overhead(&o, inner.len());
        let mut v = vec![0u8; ov.head];
        v.extend_from_slice(&inner);
        v.resize(ov.total() + inner.len(), 0);
        let mut b = PacketBuf::new(&mut v[..], ov.head, inner.len()).unwrap();
        let res = o.seal_tunnel(&mut t, &mut b);
        if !outer_v6 && ov.total() + inner.len() > 65535 {
            prop_assert_eq!(res, Err(tunnel::TunnelError::TooLarge));
            return Ok(());
        }
        res.unwrap();
        prop_assert_eq!(b.body_range(), 0..v.len());
        let mut b = PacketBuf::new(&mut v[..], 0, ov.total() + inner.len()).unwrap();
        let (opened, outer) = i.open_tunnel(&mut b, OpenOptions::new()).unwrap();
        prop_assert_eq!(outer.src, l);
        prop_assert_eq!(outer.udp.is_some(), udp);
        prop_assert_eq!(opened.next_header, if inner_v6 { IpProto::IPV6 } else { IpProto::IPV4 });
        // ECN copied on encap and unchanged on decap (normal mode), TFC trimmed.
        prop_assert_eq!(b.body(), &inner[..]);
    }

    #[test]
    fn transport_roundtrip(
        suite in 0usize..10,
        esn in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..9000),
        v6 in any::<bool>(),
        hbh in any::<bool>(),
        udp in any::<bool>(),
    ) {
        let s = suites()[suite];
        let (mut o, mut i) = pair(s, esn, 64, 11);
        let pkt = if v6 { ipv6_packet(&payload, 6, 0, hbh) } else { ipv4_packet(&payload, 6, 0) };
        let ov = transport::overhead(&o, &pkt, udp).unwrap();
        let mut v = vec![0u8; ov.head];
        v.extend_from_slice(&pkt);
        v.resize(ov.total() + pkt.len(), 0);
        let mut b = PacketBuf::new(&mut v[..], ov.head, pkt.len()).unwrap();
        let res = o.seal_transport(&mut b, udp.then_some(UdpPorts::NAT_T));
        if !v6 && ov.total() + pkt.len() > 65535 {
            prop_assert_eq!(res, Err(transport::TransportError::TooLarge));
            prop_assert_eq!(b.body(), &pkt[..]);
            return Ok(());
        }
        res.unwrap();
        prop_assert_eq!(b.body_range(), 0..v.len());
        let mut b = PacketBuf::new(&mut v[..], 0, ov.total() + pkt.len()).unwrap();
        let u = i.open_transport(&mut b, OpenOptions::new()).unwrap();
        prop_assert_eq!(u.opened.next_header, IpProto::TCP);
        prop_assert_eq!(u.udp.is_some(), udp);
        prop_assert_eq!(b.body(), &pkt[..]);
    }

    #[test]
    fn any_flipped_bit_is_refused(
        suite in 0usize..10,
        esn in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        bit in any::<prop::sample::Index>(),
        start in prop_oneof![1u64..200, ((1u64 << 32) - 3)..((1u64 << 32) + 3)],
    ) {
        let s = suites()[suite];
        let (mut o, mut i) = pair(s, esn, 64, 13);
        let start = if esn { start } else { start.min(u64::from(u32::MAX)) };
        o.set_next_seq(start).unwrap();
        let window = ReplayWindow::restore(64, true, start - 1).unwrap();
        i.set_replay_window(window.clone());
        let (pdu, _) = seal(&mut o, &payload, IpProto::UDP);
        let bit = bit.index(pdu.len() * 8);
        let mut bad = pdu.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let r = open(&mut i, &bad).map(|_| ());
        let expect = if bit < 32 {
            "malformed"
        } else if bit < 64 {
            let lo = u32::from_be_bytes(bad[4..8].try_into().unwrap());
            match window.infer(lo, esn).and_then(|s| window.check(s)) {
                Err(_) => "replay",
                Ok(()) => "integrity",
            }
        } else {
            "integrity"
        };
        prop_assert_eq!(r.map_err(|e| e.reason()), Err(expect));
        // The forgery did not move the window: the authentic packet still opens.
        prop_assert_eq!(i.replay_window().top(), start - 1);
        prop_assert!(open(&mut i, &pdu).is_ok());
    }

    #[test]
    fn replay_duplicates_and_reordering_match_a_model(
        suite in 0usize..10,
        esn in any::<bool>(),
        size in prop_oneof![Just(32u32), Just(64), 32u32..300],
        order in proptest::collection::vec(0usize..400, 1..300),
        start in prop_oneof![Just(1u64), ((1u64 << 32) - 200)..((1u64 << 32) + 10)],
    ) {
        let s = suites()[suite];
        let (mut o, mut i) = pair(s, esn, size, 17);
        let start = if esn { start } else { 1 };
        o.set_next_seq(start).unwrap();
        i.set_replay_window(ReplayWindow::restore(size, true, start - 1).unwrap());
        let sealed: Vec<(Vec<u8>, u64)> = (0..400).map(|_| seal(&mut o, b"x", IpProto::UDP)).collect();
        let mut seen = BTreeSet::new();
        let mut top = start - 1;
        for idx in order {
            let (pdu, seq) = &sealed[idx];
            let model_ok = !seen.contains(seq) && (*seq > top || top - seq < u64::from(size));
            // With ESN, a packet far behind the window may be inferred into the wrong
            // 2^32 subspace and then fail its ICV instead; either way it is refused.
            let r = open(&mut i, pdu);
            match (&r, model_ok) {
                (Ok((_, opened)), true) => {
                    prop_assert_eq!(opened.seq, *seq);
                    seen.insert(*seq);
                    top = top.max(*seq);
                }
                (Err(OpenError::Replay(_)), false) => {}
                (Err(OpenError::Integrity), false) if esn => {}
                _ => prop_assert!(false, "seq {} model_ok {} got {:?}", seq, model_ok, r.map(|x| x.1)),
            }
        }
    }
}

#[test]
fn esn_crosses_the_32_bit_boundary_in_order() {
    for s in suites() {
        let (mut o, mut i) = pair(s, true, 64, 21);
        let start = (1u64 << 32) - 40;
        o.set_next_seq(start).unwrap();
        i.set_replay_window(ReplayWindow::restore(64, true, start - 1).unwrap());
        let mut late = Vec::new();
        for n in 0..80u64 {
            let (pdu, seq) = seal(&mut o, &n.to_be_bytes(), IpProto::UDP);
            assert_eq!(seq, start + n);
            if n % 7 == 3 {
                late.push((pdu, seq)); // delivered after the wrap
                continue;
            }
            let (inner, opened) = open(&mut i, &pdu).unwrap();
            assert_eq!(opened.seq, seq);
            assert_eq!(inner, n.to_be_bytes());
        }
        assert_eq!(i.replay_window().top(), start + 79);
        // Late packets from both sides of the boundary, still within the window.
        for (pdu, seq) in late.iter().filter(|(_, s)| start + 79 - s < 64) {
            assert_eq!(open(&mut i, pdu).unwrap().1.seq, *seq);
        }
        // Too old ones are refused without crypto.
        for (pdu, _) in late.iter().filter(|(_, s)| start + 79 - s >= 64) {
            assert!(matches!(
                open(&mut i, pdu),
                Err(OpenError::Replay(_)) | Err(OpenError::Integrity)
            ));
        }
    }
}

#[test]
fn sequence_exhaustion_is_an_error() {
    for s in suites() {
        let (mut o, _) = pair(s, false, 64, 1);
        o.set_next_seq(u64::from(u32::MAX)).unwrap();
        seal(&mut o, b"last", IpProto::UDP);
        let mut v = [0u8; 200];
        let mut b = PacketBuf::new(&mut v[..], 64, 4).unwrap();
        assert_eq!(
            o.seal(&mut b, IpProto::UDP),
            Err(ipsec_esp::SealError::SequenceExhausted)
        );
        assert_eq!(b.body_range(), 64..68);
        let (mut o, _) = pair(s, true, 64, 1);
        o.set_next_seq(u64::MAX).unwrap();
        seal(&mut o, b"last", IpProto::UDP);
        assert_eq!(
            o.seal(&mut b, IpProto::UDP),
            Err(ipsec_esp::SealError::SequenceExhausted)
        );
    }
}

#[test]
fn insufficient_room_is_reported_exactly() {
    for s in suites() {
        let (mut o, _) = pair(s, false, 64, 1);
        let ov = o.overhead(10);
        for (head, tail) in [(ov.head - 1, ov.tail), (ov.head, ov.tail - 1)] {
            let mut v = vec![7u8; head + 10 + tail];
            let mut b = PacketBuf::new(&mut v[..], head, 10).unwrap();
            assert_eq!(
                o.seal(&mut b, IpProto::UDP),
                Err(ipsec_esp::SealError::InsufficientRoom {
                    head: ov.head,
                    tail: ov.tail
                })
            );
            assert_eq!(b.body_range(), head..head + 10);
            assert!(v.iter().all(|&x| x == 7), "a refused seal must not write");
        }
        // No sequence number was used.
        assert_eq!(o.seq_counter().last(), 0);
    }
}

#[test]
fn dummy_packets_are_authenticated_then_reported() {
    for s in suites() {
        let (mut o, mut i) = pair(s, false, 64, 3);
        let mut v = vec![0u8; 400];
        let mut b = PacketBuf::new(&mut v[..], 64, 0).unwrap();
        o.seal_dummy(&mut b, 40).unwrap();
        let pdu = b.body().to_vec();
        assert_eq!(open(&mut i, &pdu).unwrap_err(), OpenError::Dummy);
        // It counted for anti-replay.
        assert!(matches!(open(&mut i, &pdu), Err(OpenError::Replay(_))));
        // A forged dummy is an integrity failure, not a dummy.
        let mut bad = pdu.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let (_, mut i2) = pair(s, false, 64, 3);
        assert_eq!(open(&mut i2, &bad).unwrap_err(), OpenError::Integrity);
    }
}

#[test]
fn padding_is_monotonic_and_aligned() {
    for s in suites() {
        for len in 0..40usize {
            let (mut o, mut i) = pair(s, false, 0, 5);
            let (pdu, _) = seal(&mut o, &vec![0xee; len], IpProto::UDP);
            let icv = s.1.map_or(s.0.icv_len, |d| d.icv_len);
            let ct = pdu.len() - 8 - s.0.iv_len - icv;
            assert_eq!(ct % 4, 0);
            assert_eq!(ct % s.0.block_len, 0);
            let (_, opened) = open(&mut i, &pdu).unwrap();
            assert!(usize::from(opened.pad_len) < s.0.block_len.max(4));
        }
    }
}

/// The explicit IV of AES-CTR (RFC 3686 §3) and the AEADs (RFC 4106 §3.1, RFC 4309
/// §3.1) is the 64-bit sequence number: unique per key without a random source. CBC's
/// is random (RFC 3602 §2.1), so it does not follow the counter.
#[test]
fn ctr_and_aead_ivs_are_the_sequence_number() {
    for s in suites() {
        let (mut o, mut i) = pair(s, true, 64, 11);
        o.set_next_seq((7 << 32) | 5).unwrap();
        i.set_replay_window(ReplayWindow::restore(64, true, (7 << 32) | 4).unwrap());
        for _ in 0..3 {
            let (pdu, seq) = seal(&mut o, b"payload", IpProto::UDP);
            let iv = &pdu[8..8 + s.0.iv_len];
            let by_seq = iv == seq.to_be_bytes();
            let want = s.0.kind != suites::EncrKind::Cbc && s.0.iv_len == 8;
            assert_eq!(by_seq, want, "{}", s.0.name);
            assert_eq!(open(&mut i, &pdu).unwrap().0, b"payload");
        }
    }
}

#[test]
fn wider_padding_alignment_round_trips_and_is_exact() {
    use ipsec_esp::SaError;
    for s in suites() {
        let min = s.0.block_len.max(4);
        for align in [16usize, 32, 64, 256] {
            for len in [0usize, 1, 13, 14, 15, 62, 64, 65, 300] {
                let (mut o, mut i) = pair(s, true, 64, 9);
                assert_eq!(o.padding_alignment(), min);
                o.set_padding_alignment(Some(align)).unwrap();
                assert_eq!(o.padding_alignment(), align);
                // `seal` asserts that `overhead` was exact.
                let (pdu, _) = seal(&mut o, &vec![0x5a; len], IpProto::UDP);
                let icv = s.1.map_or(s.0.icv_len, |d| d.icv_len);
                let ct = pdu.len() - 8 - s.0.iv_len - icv;
                assert_eq!(ct % align, 0, "{} align {align} len {len}", s.0.name);
                assert!(ct < len + 2 + align, "no more padding than needed");
                let (inner, opened) = open(&mut i, &pdu).unwrap();
                assert_eq!(inner, vec![0x5a; len]);
                assert_eq!(usize::from(opened.pad_len), ct - len - 2);
            }
        }
        let (mut o, _) = pair(s, false, 0, 9);
        for bad in [0usize, 3, 12, 512] {
            assert_eq!(
                o.set_padding_alignment(Some(bad)),
                Err(SaError::PaddingAlignment(bad))
            );
        }
        if min > 4 {
            assert_eq!(
                o.set_padding_alignment(Some(4)),
                Err(SaError::PaddingAlignment(4))
            );
        }
        o.set_padding_alignment(Some(16)).unwrap();
        o.set_padding_alignment(None).unwrap();
        assert_eq!(o.padding_alignment(), min);
    }
}

#[test]
fn confidentiality_only_cbc_and_setup_errors() {
    use ipsec_esp::SaError;
    let k = KeyMaterial::new(&[1; 16], &[]).unwrap();
    // AES-CBC without integrity works, but anti-replay cannot be on.
    assert!(EspOutbound::new(provider(), SPI, &suites::AES_CBC_128, None, &k, false).is_ok());
    assert_eq!(
        EspInbound::new(provider(), SPI, &suites::AES_CBC_128, None, &k, false, 64).unwrap_err(),
        SaError::ReplayWithoutIntegrity
    );
    let none = KeyMaterial::new(&[], &[]).unwrap();
    assert_eq!(
        EspOutbound::new(provider(), SPI, &suites::NULL, None, &none, false).unwrap_err(),
        SaError::NoProtection
    );
    let gcm = KeyMaterial::new(&[1; 20], &[2; 32]).unwrap();
    assert_eq!(
        EspOutbound::new(
            provider(),
            SPI,
            &suites::AES_GCM_16_128,
            Some(&suites::HMAC_SHA256_128),
            &gcm,
            false
        )
        .unwrap_err(),
        SaError::IntegrityWithAead
    );
    let short = KeyMaterial::new(&[1; 16], &[]).unwrap();
    assert_eq!(
        EspOutbound::new(
            provider(),
            SPI,
            &suites::AES_GCM_16_128,
            None,
            &short,
            false
        )
        .unwrap_err(),
        SaError::KeyLength {
            what: "encr",
            expected: 20,
            got: 16
        }
    );
    let k = KeyMaterial::new(&[1; 20], &[]).unwrap();
    assert_eq!(
        EspInbound::new(
            provider(),
            SPI,
            &suites::AES_GCM_16_128,
            None,
            &k,
            false,
            16
        )
        .unwrap_err(),
        SaError::ReplayWindow(ipsec_core::ReplayError::InvalidSize)
    );
}

#[test]
fn from_params_builds_both_directions() {
    use ipsec_core::{ChildSaParams, Lifetime, Mode, TsSet};
    let params = ChildSaParams::esp(
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        ipsec_crypto::EncrId::ENCR_AES_GCM_16,
        256,
        (Spi(0x1000), KeyMaterial::new(&[3; 36], &[]).unwrap()),
        (Spi(0x2000), KeyMaterial::new(&[3; 36], &[]).unwrap()),
    )
    .with_mode(Mode::Tunnel)
    .with_integ(ipsec_crypto::IntegId::NONE)
    .with_ke(ipsec_crypto::KeId::NONE)
    .with_esn(true)
    .with_selectors(TsSet::default(), TsSet::default())
    .with_udp_encap(None)
    .with_lifetime(Lifetime::default())
    .with_replay_window(128);
    let o = EspOutbound::from_params(provider(), &params).unwrap();
    let i = EspInbound::from_params(provider(), &params).unwrap();
    assert_eq!((o.spi(), i.spi()), (Spi(0x2000), Spi(0x1000)));
    assert!(o.esn() && i.esn());
    assert_eq!(i.replay_window().size(), 128);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The shared-reference paths (`seal_at`, `open_with` and their tunnel and transport
    /// forms) give the same packets as the `&mut` paths and keep the caller's window.
    #[test]
    fn shared_reference_paths_match(
        suite in 0usize..5, // the AEAD and GMAC suites: their IV is the sequence number
        esn in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
        seq in 1u64..1 << 31,
    ) {
        let s = suites()[suite];
        let (mut o, i) = pair(s, esn, 64, 23);
        let ov = o.overhead(payload.len());
        let mut shared = vec![0u8; ov.head];
        shared.extend_from_slice(&payload);
        shared.resize(ov.total() + payload.len(), 0);
        let mut b = PacketBuf::new(&mut shared[..], ov.head, payload.len()).unwrap();
        prop_assert_eq!(o.seal_at(&mut b, IpProto::TCP, seq).unwrap(), seq);
        prop_assert_eq!(o.seq_counter().last(), 0, "seal_at must not touch the counter");
        o.set_next_seq(seq).unwrap();
        let (owned, _) = seal(&mut o, &payload, IpProto::TCP);
        prop_assert_eq!(&shared, &owned);

        let mut window = ReplayWindow::restore(64, true, seq - 1).unwrap();
        let mut b = PacketBuf::new(&mut shared[..], 0, owned.len()).unwrap();
        let opened = i.open_with(&mut b, &mut window, OpenOptions::new()).unwrap();
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(b.body(), &payload[..]);
        prop_assert_eq!(window.top(), seq);
        prop_assert_eq!(i.replay_window().top(), 0, "open_with must not touch the SA's window");
        let mut again = owned.clone();
        let mut b = PacketBuf::new(&mut again[..], 0, owned.len()).unwrap();
        prop_assert!(matches!(i.open_with(&mut b, &mut window, OpenOptions::new()), Err(OpenError::Replay(_))));
        let mut b = PacketBuf::new(&mut shared[..], 0, 0).unwrap();
        prop_assert_eq!(o.seal_at(&mut b, IpProto::TCP, 0), Err(ipsec_esp::SealError::SequenceExhausted));

        // Tunnel and transport forms.
        let inner = ipv4_packet(&payload, 6, 0);
        let t = Tunnel::new(TunnelConfig::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())).unwrap();
        let tov = t.overhead(&o, inner.len());
        let mut v = vec![0u8; tov.head];
        v.extend_from_slice(&inner);
        v.resize(tov.total() + inner.len(), 0);
        let mut b = PacketBuf::new(&mut v[..], tov.head, inner.len()).unwrap();
        o.seal_tunnel_at(&t, &mut b, seq + 1, 0x7777).unwrap();
        prop_assert_eq!(&b.body()[4..6], &[0x77, 0x77]);
        let (opened, _) = i.open_tunnel_with(&mut b, &mut window, OpenOptions::new()).unwrap();
        prop_assert_eq!(opened.seq, seq + 1);
        prop_assert_eq!(b.body(), &inner[..]);

        let tpo = transport::overhead(&o, &inner, true).unwrap();
        let mut v = vec![0u8; tpo.head];
        v.extend_from_slice(&inner);
        v.resize(tpo.total() + inner.len(), 0);
        let mut b = PacketBuf::new(&mut v[..], tpo.head, inner.len()).unwrap();
        o.seal_transport_at(&mut b, Some(UdpPorts::NAT_T), seq + 2).unwrap();
        let u = i.open_transport_with(&mut b, &mut window, OpenOptions::new()).unwrap();
        prop_assert_eq!(u.opened.seq, seq + 2);
        prop_assert_eq!(b.body(), &inner[..]);
    }
}

#[test]
fn an_inbound_sa_without_its_own_window_opens_with_the_callers() {
    use ipsec_esp::ExternalReplay;
    // The point of the type: no window inside (the window is an 8-byte-aligned array
    // of 65 words plus its state).
    assert!(
        core::mem::size_of::<EspInbound<ExternalReplay>>() + 520
            <= core::mem::size_of::<EspInbound>()
    );
    for s in suites() {
        let k = keys(s, 31);
        let mut o = EspOutbound::new(provider(), SPI, s.0, s.1, &k, true).unwrap();
        let i = EspInbound::with_external_replay(provider(), SPI, s.0, s.1, &k, true).unwrap();
        assert_eq!((i.spi(), i.esn(), i.encr().name), (SPI, true, s.0.name));
        assert!(!format!("{i:?}").is_empty());
        let mut window = ReplayWindow::new(64).unwrap();
        for n in 1..=3u64 {
            let payload = vec![n as u8; 40 + n as usize];
            let (pdu, seq) = seal(&mut o, &payload, IpProto::UDP);
            let mut v = pdu.clone();
            let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
            let opened = i
                .open_with(&mut b, &mut window, OpenOptions::new())
                .unwrap();
            assert_eq!((opened.seq, b.body()), (seq, &payload[..]));
            let mut v = pdu.clone();
            let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
            assert!(matches!(
                i.open_with(&mut b, &mut window, OpenOptions::new()),
                Err(OpenError::Replay(_))
            ));
        }
        assert_eq!(window.top(), 3);
    }
}
