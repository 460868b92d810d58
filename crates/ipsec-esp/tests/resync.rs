//! ESN re-synchronization (RFC 4303 Appendix A3): after more than 2^32 lost packets the
//! receiver infers the wrong high half; after `trigger` consecutive failures one packet
//! is authenticated with the next high halves, and only an authentic one moves the window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::provider;
use ipsec_core::{IpProto, KeyMaterial, ReplayError, ReplayWindow, Spi};
use ipsec_crypto::suites::{self, EncrDesc, IntegDesc};
use ipsec_esp::tunnel::{Tunnel, TunnelConfig};
use ipsec_esp::OpenOptions;
use ipsec_esp::{
    EspInbound, EspOutbound, OpenError, Opened, PacketBuf, ResyncCounter, ResyncPolicy,
};

const SPI: Spi = Spi(0x0a0b_0c0d);

type Suite = (&'static EncrDesc, Option<&'static IntegDesc>);

fn suites() -> Vec<Suite> {
    vec![
        (&suites::AES_GCM_16_128, None),
        (&suites::CHACHA20_POLY1305, None),
        (&suites::AES_GMAC_128, None),
        (&suites::AES_CBC_128, Some(&suites::HMAC_SHA256_128)),
        (&suites::NULL, Some(&suites::HMAC_SHA256_128)),
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

fn pair(s: Suite, esn: bool, seed: u8) -> (EspOutbound, EspInbound) {
    let k = keys(s, seed);
    let o = EspOutbound::new(provider(), SPI, s.0, s.1, &k, esn).unwrap();
    let i = EspInbound::new(provider(), SPI, s.0, s.1, &k, esn, 64).unwrap();
    (o, i)
}

fn seal(o: &mut EspOutbound, payload: &[u8]) -> (Vec<u8>, u64) {
    let ov = o.overhead(payload.len());
    let mut v = vec![0u8; ov.head];
    v.extend_from_slice(payload);
    v.resize(ov.total() + payload.len(), 0);
    let mut b = PacketBuf::new(&mut v[..], ov.head, payload.len()).unwrap();
    let seq = o.seal(&mut b, IpProto::UDP).unwrap();
    (v, seq)
}

fn open(i: &mut EspInbound, pdu: &[u8]) -> Result<(Vec<u8>, Opened), OpenError> {
    let mut v = pdu.to_vec();
    let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
    let o = i.open(&mut b, OpenOptions::new())?;
    Ok((b.body().to_vec(), o))
}

/// Re-synchronizes with `pdu`; on failure also checks that the packet is unchanged.
fn resync(i: &mut EspInbound, pdu: &[u8], tries: u32) -> Result<(Vec<u8>, Opened), OpenError> {
    let mut v = pdu.to_vec();
    let mut scratch = vec![0u8; pdu.len()];
    let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
    match i.open(&mut b, OpenOptions::resync(&mut scratch, tries)) {
        Ok(o) => Ok((b.body().to_vec(), o)),
        Err(e) => {
            assert_eq!(b.body(), pdu, "a failed resync leaves the packet as it was");
            Err(e)
        }
    }
}

/// What a receiver does per packet: copy when armed, open, count, resync on trigger.
fn receive(
    i: &mut EspInbound,
    c: &mut ResyncCounter,
    p: &ResyncPolicy,
    pdu: &[u8],
) -> (Result<(Vec<u8>, Opened), OpenError>, bool) {
    let copy = c.armed(p).then(|| pdu.to_vec());
    match open(i, pdu) {
        Ok(r) => {
            c.reset();
            (Ok(r), false)
        }
        Err(OpenError::Integrity) if c.failed(p) => {
            let copy = copy.expect("armed before the trigger failure");
            (resync(i, &copy, p.max_tries()), true)
        }
        Err(e) => (Err(e), false),
    }
}

#[test]
fn resyncs_after_more_than_2_32_lost_packets() {
    let policy = ResyncPolicy::new(8, 4);
    for s in suites() {
        let (mut o, mut i) = pair(s, true, 7);
        let mut c = ResyncCounter::new();
        for n in 1..=5u64 {
            let (pdu, seq) = seal(&mut o, &n.to_be_bytes());
            assert_eq!(receive(&mut i, &mut c, &policy, &pdu).0.unwrap().1.seq, seq);
        }
        // 2^32 + 100 packets are lost: the high half is now 1, the receiver infers 0.
        let jump = 6 + (1u64 << 32) + 100;
        o.set_next_seq(jump).unwrap();
        for n in 0..7u64 {
            let (pdu, _) = seal(&mut o, &n.to_be_bytes());
            let (r, tried) = receive(&mut i, &mut c, &policy, &pdu);
            assert_eq!(r.unwrap_err(), OpenError::Integrity, "{}", s.0.name);
            assert!(!tried);
            assert_eq!(i.replay_window().top(), 5);
        }
        // The 8th consecutive failure triggers the resync, with that very packet.
        let (pdu, seq) = seal(&mut o, b"trigger");
        assert_eq!(seq, jump + 7);
        let (r, tried) = receive(&mut i, &mut c, &policy, &pdu);
        assert!(tried);
        let (inner, opened) = r.unwrap();
        assert_eq!((inner.as_slice(), opened.seq), (&b"trigger"[..], seq));
        assert_eq!(i.replay_window().top(), seq, "{}", s.0.name);
        assert_eq!(c.failures(), 0);
        // Marked like any accepted packet: a replay is refused.
        assert_eq!(
            open(&mut i, &pdu).unwrap_err(),
            OpenError::Replay(ReplayError::Duplicate)
        );
        // Later packets open normally.
        for n in 0..5u64 {
            let (pdu, seq) = seal(&mut o, &n.to_be_bytes());
            let (r, tried) = receive(&mut i, &mut c, &policy, &pdu);
            assert!(!tried);
            assert_eq!(r.unwrap().1.seq, seq);
        }
        assert_eq!(i.replay_window().top(), jump + 12);
    }
}

#[test]
fn forgeries_never_resync_or_move_the_window() {
    for s in suites() {
        let (mut o, mut i) = pair(s, true, 9);
        let (pdu, _) = seal(&mut o, b"first");
        open(&mut i, &pdu).unwrap();
        // The same packet sealed with another key, 2^32 ahead.
        let (mut wrong, _) = pair(s, true, 10);
        wrong.set_next_seq((1 << 32) + 2).unwrap();
        let (forged, _) = seal(&mut wrong, b"forged");
        assert_eq!(
            resync(&mut i, &forged, ResyncPolicy::MAX_TRIES).unwrap_err(),
            OpenError::Integrity
        );
        // Random bytes behind a valid header.
        let mut state = 0x1234_5678_9abc_def0u64;
        for len in [pdu.len(), pdu.len() + 16, 200] {
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            junk[..4].copy_from_slice(&SPI.0.to_be_bytes());
            junk[4..8].copy_from_slice(&3u32.to_be_bytes());
            assert!(matches!(
                resync(&mut i, &junk, ResyncPolicy::MAX_TRIES),
                Err(OpenError::Integrity | OpenError::Malformed(_))
            ));
        }
        assert_eq!(i.replay_window().top(), 1, "{}", s.0.name);
        // A genuine packet still opens with the inferred high half.
        let (pdu, seq) = seal(&mut o, b"second");
        assert_eq!(open(&mut i, &pdu).unwrap().1.seq, seq);
    }
}

#[test]
fn resync_is_bounded_by_max_tries() {
    for s in suites() {
        let (mut o, mut i) = pair(s, true, 11);
        let (pdu, _) = seal(&mut o, b"first");
        open(&mut i, &pdu).unwrap();
        // Five high halves ahead.
        o.set_next_seq((5 << 32) | 50).unwrap();
        let (pdu, seq) = seal(&mut o, b"far");
        assert_eq!(resync(&mut i, &pdu, 4).unwrap_err(), OpenError::Integrity);
        assert_eq!(i.replay_window().top(), 1);
        assert_eq!(resync(&mut i, &pdu, 5).unwrap().1.seq, seq);
        assert_eq!(i.replay_window().top(), seq);
        // More than MAX_TRIES high halves ahead: never found, however many are asked for.
        o.set_next_seq((u64::from(ResyncPolicy::MAX_TRIES) + 6) << 32 | 7)
            .unwrap();
        let (pdu, _) = seal(&mut o, b"farther");
        assert_eq!(
            resync(&mut i, &pdu, u32::MAX).unwrap_err(),
            OpenError::Integrity
        );
        assert_eq!(i.replay_window().top(), seq);
    }
}

#[test]
fn scratch_must_hold_the_packet() {
    let s = suites()[0];
    let (mut o, mut i) = pair(s, true, 12);
    o.set_next_seq((1 << 32) | 9).unwrap();
    let (mut pdu, _) = seal(&mut o, b"x");
    let len = pdu.len();
    let mut scratch = vec![0u8; len - 1];
    let mut b = PacketBuf::new(&mut pdu[..], 0, len).unwrap();
    assert!(matches!(
        i.open(&mut b, OpenOptions::resync(&mut scratch, 2)),
        Err(OpenError::Malformed(_))
    ));
    assert_eq!(i.replay_window().top(), 0);
}

#[test]
fn without_esn_nothing_is_tried() {
    for s in suites() {
        let (mut o, mut i) = pair(s, false, 13);
        let (pdu, _) = seal(&mut o, b"a");
        open(&mut i, &pdu).unwrap();
        let (mut wrong, _) = pair(s, false, 14);
        wrong.set_next_seq(5).unwrap();
        let (forged, _) = seal(&mut wrong, b"b");
        assert_eq!(
            resync(&mut i, &forged, 8).unwrap_err(),
            OpenError::Integrity
        );
        // Even a genuine packet: there is no high half to re-synchronize.
        let (pdu, _) = seal(&mut o, b"c");
        assert_eq!(resync(&mut i, &pdu, 8).unwrap_err(), OpenError::Integrity);
        assert_eq!(i.replay_window().top(), 1);
    }
}

#[test]
fn tunnel_resync_with_an_external_window() {
    let s = (&suites::AES_GCM_16_256, None);
    let k = keys(s, 21);
    let mut o = EspOutbound::new(provider(), SPI, s.0, s.1, &k, true).unwrap();
    let i = EspInbound::with_external_replay(provider(), SPI, s.0, s.1, &k, true).unwrap();
    let mut window = ReplayWindow::new(128).unwrap();
    let local = "192.0.2.1".parse().unwrap();
    let remote = "192.0.2.2".parse().unwrap();
    let mut t = Tunnel::new(TunnelConfig::new(local, remote)).unwrap();
    let inner = {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = ipsec_core::ip::ipv4_checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0, 8, 0, 0]);
        p
    };
    let mut send = |o: &mut EspOutbound| {
        let mut v = vec![0u8; 64];
        v.extend_from_slice(&inner);
        v.resize(v.len() + 64, 0);
        let mut b = PacketBuf::new(&mut v[..], 64, inner.len()).unwrap();
        o.seal_tunnel(&mut t, &mut b).unwrap();
        b.body().to_vec()
    };
    let pkt = send(&mut o);
    let mut v = pkt.clone();
    let mut b = PacketBuf::new(&mut v[..], 0, pkt.len()).unwrap();
    i.open_tunnel_with(&mut b, &mut window, OpenOptions::new())
        .unwrap();
    o.set_next_seq((2 << 32) | 3).unwrap();
    let pkt = send(&mut o);
    let mut v = pkt.clone();
    let mut b = PacketBuf::new(&mut v[..], 0, pkt.len()).unwrap();
    assert!(i
        .open_tunnel_with(&mut b, &mut window, OpenOptions::new())
        .is_err());
    let mut v = pkt.clone();
    let mut scratch = vec![0u8; pkt.len()];
    let mut b = PacketBuf::new(&mut v[..], 0, pkt.len()).unwrap();
    let (opened, _) = i
        .open_tunnel_with(&mut b, &mut window, OpenOptions::resync(&mut scratch, 2))
        .unwrap();
    assert_eq!(opened.seq, (2 << 32) | 3);
    assert_eq!(b.body(), &inner[..]);
    assert_eq!(window.top(), (2 << 32) | 3);
}
