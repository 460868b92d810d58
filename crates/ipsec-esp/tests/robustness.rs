//! Hostile input never panics: arbitrary bytes into `open`, tunnel and transport
//! receive paths, and every parser. Any outcome but a panic is fine here; what the
//! outcome must be is tested in props.rs.
#![allow(clippy::unwrap_used)]

mod common;

use common::provider;
use ipsec_core::{KeyMaterial, ReplayWindow, Spi};
use ipsec_crypto::suites;
use ipsec_esp::tunnel::{self, InnerMeta};
use ipsec_esp::wire::{EspLayout, EspPacket, Trailer};
use ipsec_esp::OpenOptions;
use ipsec_esp::{udp, EspInbound, PacketBuf};
use proptest::prelude::*;

fn inbounds(spi: Spi, esn: bool) -> Vec<EspInbound> {
    let suites: [(&'static _, Option<&'static _>); 6] = [
        (&suites::AES_GCM_16_128, None),
        (&suites::CHACHA20_POLY1305, None),
        (&suites::AES_GMAC_256, None),
        (&suites::AES_CBC_128, Some(&suites::HMAC_SHA256_128)),
        (&suites::NULL, Some(&suites::HMAC_SHA1_96)),
        (&suites::AES_CBC_256, None),
    ];
    suites
        .into_iter()
        .map(
            |(e, i): (
                &'static ipsec_crypto::EncrDesc,
                Option<&'static ipsec_crypto::IntegDesc>,
            )| {
                let k = KeyMaterial::new(
                    &vec![1; e.keymat_len()],
                    &vec![2; i.map_or(0, |d| d.key_len)],
                )
                .unwrap();
                let w = if e.is_combined() || i.is_some() {
                    64
                } else {
                    0
                };
                let mut inb = EspInbound::new(provider(), spi, e, i, &k, esn, w).unwrap();
                inb.set_replay_window(ReplayWindow::restore(64, w != 0, 1000).unwrap());
                inb
            },
        )
        .collect()
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..600),
        // Plausible starts: an ESP header with our SPI, an IPv4 or IPv6 header.
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|mut v| {
            v.splice(0..0, [0, 0, 0x12, 0x34]);
            v
        }),
        proptest::collection::vec(any::<u8>(), 20..300).prop_map(|mut v| {
            v[0] = 0x45;
            v
        }),
        proptest::collection::vec(any::<u8>(), 40..300).prop_map(|mut v| {
            v[0] = 0x60;
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn open_never_panics(data in bytes(), esn in any::<bool>(), head in 0usize..40, tail in 0usize..40) {
        for mut inb in inbounds(Spi(0x1234), esn) {
            let mut v = vec![0u8; head];
            v.extend_from_slice(&data);
            v.resize(head + data.len() + tail, 0);
            let mut b = PacketBuf::new(&mut v[..], head, data.len()).unwrap();
            let r = inb.open(&mut b, OpenOptions::new());
            prop_assert!(b.body_range().end <= head + data.len());
            let _ = r.map_err(|e| e.reason());
            let mut b = PacketBuf::new(&mut v[..], head, data.len()).unwrap();
            let _ = inb.open_tunnel(&mut b, OpenOptions::new());
            let mut b = PacketBuf::new(&mut v[..], head, data.len()).unwrap();
            let _ = inb.open_transport(&mut b, OpenOptions::new());
        }
    }

    #[test]
    fn parsers_never_panic(data in bytes(), iv in 0usize..20, icv in 0usize..40, block in 0usize..20) {
        if let Ok(p) = EspPacket::parse(&data[..]) {
            let _ = (p.spi(), p.seq(), p.payload());
            let _ = p.split(&EspLayout { iv_len: iv, icv_len: icv, block_len: block });
        }
        if let Ok((t, len)) = Trailer::parse(&data) {
            prop_assert!(len + usize::from(t.pad_len) + 2 == data.len());
            let _ = t.padding_is_default(&data);
        }
        let _ = udp::classify(&data);
        let _ = udp::parse(&data);
        let _ = InnerMeta::parse(&data);
        let mut v = data.clone();
        let len = v.len();
        let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
        let _ = tunnel::decap(&mut b);
        let mut v = data.clone();
        let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
        let _ = udp::decap(&mut b);
        let mut v = data.clone();
        let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
        let _ = tunnel::finish(&mut b, ipsec_core::IpProto::IPV4, 3);
        let mut v = data.clone();
        let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
        let _ = tunnel::finish(&mut b, ipsec_core::IpProto::IPV6, 3);
        // Outbound paths with garbage "IP packets" in the body.
        let k = KeyMaterial::new(&[1; 20], &[]).unwrap();
        let mut o = ipsec_esp::EspOutbound::new(provider(), Spi(0x1234), &suites::AES_GCM_16_128, None, &k, false).unwrap();
        let mut v = vec![0u8; 64];
        v.extend_from_slice(&data);
        v.resize(v.len() + 64, 0);
        let mut b = PacketBuf::new(&mut v[..], 64, len).unwrap();
        if o.seal_transport(&mut b, None).is_err() {
            prop_assert_eq!(b.body(), &data[..]);
        }
        let mut v = vec![0u8; 128];
        v.extend_from_slice(&data);
        v.resize(v.len() + 64, 0);
        let mut b = PacketBuf::new(&mut v[..], 128, len).unwrap();
        let mut t = tunnel::Tunnel::new(tunnel::TunnelConfig::new("::1".parse().unwrap(), "::2".parse().unwrap())).unwrap();
        let _ = o.seal_tunnel(&mut t, &mut b);
    }
}
