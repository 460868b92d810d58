//! The `tracing` events of ESP (the `tracing` feature): every packet the codec refuses
//! gives one `trace` event with its SPI and the reason [`OpenError::reason`] names, and
//! a packet that opens gives none.
//!
//! Runs with the feature only (`cargo test -p ipsec-esp --features tracing`; a
//! workspace build has it on through the gateway).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::provider;
use ipsec_core::{IpProto, KeyMaterial, Spi};
use ipsec_crypto::suites;
use ipsec_esp::tunnel::{self, Tunnel, TunnelConfig};
use ipsec_esp::{EspInbound, EspOutbound, OpenError, OpenOptions, PacketBuf};
use ipsec_test::capture::{Capture, Captured};
use tracing::Level;

const SPI: Spi = Spi(0x0a0b_0c0d);

fn pair() -> (EspOutbound, EspInbound) {
    let s = &suites::AES_GCM_16_128;
    let k = KeyMaterial::new(&[7u8; 20], &[]).unwrap();
    assert_eq!(s.keymat_len(), 20);
    let o = EspOutbound::new(provider(), SPI, s, None, &k, false).unwrap();
    let i = EspInbound::new(provider(), SPI, s, None, &k, false, 64).unwrap();
    (o, i)
}

/// A sealed ESP packet carrying `payload`, with its sequence number.
fn sealed(o: &mut EspOutbound, payload: &[u8]) -> Vec<u8> {
    let ov = o.overhead(payload.len());
    let mut v = vec![0u8; ov.head];
    v.extend_from_slice(payload);
    v.resize(ov.total() + payload.len(), 0);
    let mut b = PacketBuf::new(&mut v[..], ov.head, payload.len()).unwrap();
    o.seal(&mut b, IpProto::UDP).unwrap();
    b.body().to_vec()
}

fn open(i: &mut EspInbound, pdu: &[u8]) -> Result<(), OpenError> {
    let mut v = pdu.to_vec();
    let mut b = PacketBuf::new(&mut v[..], 0, pdu.len()).unwrap();
    i.open(&mut b, OpenOptions::new()).map(|_| ())
}

fn drops(cap: &Capture) -> Vec<Captured> {
    cap.from("ipsec_esp")
        .into_iter()
        .filter(|e| e.message == "ESP packet dropped")
        .collect()
}

#[test]
fn a_replayed_packet_is_one_trace_event_with_reason_replay() {
    let (mut o, mut i) = pair();
    let first = sealed(&mut o, b"one");
    let second = sealed(&mut o, b"two");
    let cap = Capture::new();
    cap.run(|| {
        open(&mut i, &first).unwrap();
        open(&mut i, &second).unwrap();
        assert!(matches!(open(&mut i, &first), Err(OpenError::Replay(_))));
    });
    let d = drops(&cap);
    assert_eq!(d.len(), 1, "only the replay: {:#?}", cap.events());
    assert_eq!(d[0].level, Level::TRACE);
    assert_eq!(d[0].field("reason"), Some("replay"));
    assert_eq!(d[0].field("spi"), Some("0x0a0b0c0d"));
    assert_eq!(d[0].field("seq"), Some("1"));
}

#[test]
fn a_forged_packet_is_an_integrity_drop() {
    let (mut o, mut i) = pair();
    let mut p = sealed(&mut o, b"payload");
    let last = p.len() - 1;
    p[last] ^= 0x80;
    let cap = Capture::new();
    cap.run(|| assert_eq!(open(&mut i, &p), Err(OpenError::Integrity)));
    let d = drops(&cap);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].field("reason"), Some("integrity"));
    // The forgery did not move the window: the real packet still opens, silently.
    p[last] ^= 0x80;
    cap.clear();
    cap.run(|| open(&mut i, &p).unwrap());
    assert!(drops(&cap).is_empty());
}

#[test]
fn tunnel_mode_names_the_step_that_refused() {
    let cfg = TunnelConfig::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let mut t = Tunnel::new(cfg).unwrap();
    let (mut o, mut i) = pair();
    // An inner IPv4 packet (20-byte header, no payload).
    let mut inner = [0u8; 20];
    inner[0] = 0x45;
    inner[3] = 20;
    inner[8] = 64;
    inner[9] = 17;
    inner[12..16].copy_from_slice(&[10, 0, 0, 1]);
    inner[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let c = ipsec_core::ip::ipv4_checksum(&inner);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    let ov = t.overhead(&o, inner.len());
    let mut v = vec![0u8; ov.head];
    v.extend_from_slice(&inner);
    v.resize(ov.total() + inner.len(), 0);
    let mut b = PacketBuf::new(&mut v[..], ov.head, inner.len()).unwrap();
    o.seal_tunnel(&mut t, &mut b).unwrap();
    let datagram = b.body().to_vec();

    let cap = Capture::new();
    // Received twice: the second is a replay, reported once, by the ESP open.
    for _ in 0..2 {
        let mut v = datagram.clone();
        let mut b = PacketBuf::new(&mut v[..], 0, datagram.len()).unwrap();
        let _ = cap.run(|| i.open_tunnel(&mut b, OpenOptions::new()));
    }
    let d = drops(&cap);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].field("reason"), Some("replay"));
    assert!(d[0].target.starts_with("ipsec_esp::sa"), "{}", d[0].target);

    // A damaged outer header (its checksum no longer matches): refused by `decap`,
    // before any SA is involved.
    cap.clear();
    let mut v = datagram.clone();
    v[8] ^= 1;
    let mut b = PacketBuf::new(&mut v[..], 0, datagram.len()).unwrap();
    cap.run(|| assert!(tunnel::decap(&mut b).is_err()));
    let d = drops(&cap);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].target.starts_with("ipsec_esp::tunnel"),
        "{}",
        d[0].target
    );
    assert_eq!(d[0].field("reason"), Some("malformed"));
    assert_eq!(d[0].field("spi"), None);
}

#[test]
fn a_seal_without_room_is_a_trace_event() {
    let (mut o, _) = pair();
    let mut v = [0u8; 8];
    let mut b = PacketBuf::new(&mut v[..], 0, 8).unwrap();
    let cap = Capture::new();
    cap.run(|| assert!(o.seal(&mut b, IpProto::UDP).is_err()));
    let e = cap.from("ipsec_esp");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].message, "ESP packet not sealed");
    assert_eq!(e[0].field("reason"), Some("insufficient_room"));
    assert_eq!(e[0].field("spi"), Some("0x0a0b0c0d"));
}
