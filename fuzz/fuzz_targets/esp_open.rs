//! `open` against fixed SAs on arbitrary bytes: it must never panic, and it may only
//! succeed on an authentic packet. Authentic means: sealing the opened payload again
//! with the same SA, sequence number and IV gives exactly the input.
//!
//! A packet that fails authentication is also given to the ESN re-synchronization path
//! (`open` with `OpenOptions::resync`), which must refuse it too and leave it unchanged.
//!
//! Input: a selector byte (suite, ESN, mode) and then either a packet to open, or
//! (mode bit 0x40) a payload that is sealed and then changed by XOR-ing one byte at a
//! chosen position before opening: only the unchanged packet may open.
#![no_main]

use std::sync::OnceLock;

use ipsec_core::{IpProto, KeyMaterial, Spi};
use ipsec_crypto::suites::{self, EncrDesc, IntegDesc};
use ipsec_esp::{EspInbound, EspOutbound, OpenError, PacketBuf};
use ipsec_esp::OpenOptions;
use libfuzzer_sys::fuzz_target;

const SPI: Spi = Spi(0x0000_1234);

type Suite = (&'static EncrDesc, Option<&'static IntegDesc>);

fn suites() -> &'static [Suite] {
    static S: OnceLock<Vec<Suite>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            (&suites::AES_GCM_16_128, None),
            (&suites::CHACHA20_POLY1305, None),
            (&suites::AES_GMAC_128, None),
            (&suites::AES_CBC_128, Some(&suites::HMAC_SHA256_128)),
            (&suites::NULL, Some(&suites::HMAC_SHA1_96)),
        ]
    })
}

fn keys(s: Suite) -> KeyMaterial {
    let e: Vec<u8> = (0..s.0.keymat_len()).map(|i| 0x40 ^ i as u8).collect();
    let i: Vec<u8> = (0..s.1.map_or(0, |d| d.key_len))
        .map(|i| 0x80 ^ i as u8)
        .collect();
    KeyMaterial::new(&e, &i).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, packet)) = data.split_first() else {
        return;
    };
    let s = suites()[usize::from(sel) % suites().len()];
    let esn = sel & 0x80 != 0;
    let provider = &ipsec_crypto_rustcrypto::PROVIDER;
    let k = keys(s);
    let mut inb = EspInbound::new(provider, SPI, s.0, s.1, &k, esn, 64).unwrap();
    if sel & 0x40 != 0 {
        let Some((m, payload)) = packet.split_first_chunk::<3>() else {
            return;
        };
        let mut out = EspOutbound::new(provider, SPI, s.0, s.1, &k, esn).unwrap();
        let o = out.overhead(payload.len());
        let mut w = vec![0u8; o.head];
        w.extend_from_slice(payload);
        w.resize(o.head + payload.len() + o.tail, 0);
        let len = w.len();
        let mut b = PacketBuf::new(&mut w[..], o.head, payload.len()).unwrap();
        out.seal(&mut b, IpProto::UDP).unwrap();
        let pos = usize::from(u16::from_be_bytes([m[0], m[1]])) % len;
        w[pos] ^= m[2];
        let mut b = PacketBuf::new(&mut w[..], 0, len).unwrap();
        match inb.open(&mut b, OpenOptions::new()) {
            Ok(_) => {
                assert_eq!(m[2], 0, "a changed packet opened");
                assert_eq!(b.body(), payload);
            }
            Err(e) => {
                assert_ne!(m[2], 0, "an authentic packet was refused: {e}");
                assert!(!matches!(e, OpenError::Dummy | OpenError::Padding), "{e}");
            }
        }
        return;
    }
    let mut v = packet.to_vec();
    let mut b = PacketBuf::new(&mut v[..], 0, packet.len()).unwrap();
    let r = inb.open(&mut b, OpenOptions::new());
    let opened = match r {
        Ok(o) => o,
        Err(OpenError::Dummy) | Err(OpenError::Padding) => {
            // Authenticated, so the fuzzer found a valid ICV: impossible without the key.
            panic!("authenticated a forged packet: {r:?}");
        }
        Err(OpenError::Integrity) => {
            // ESN re-synchronization (RFC 4303 App. A3) retries the ICV with later high
            // halves: it must not authenticate a forged packet either, and it must leave
            // a packet it refuses as it was.
            let mut v = packet.to_vec();
            let mut scratch = vec![0u8; packet.len()];
            let mut b = PacketBuf::new(&mut v[..], 0, packet.len()).unwrap();
            let r = inb.open(&mut b, OpenOptions::resync(&mut scratch, 8));
            assert!(r.is_err(), "re-sync authenticated a forged packet: {r:?}");
            if matches!(r, Err(OpenError::Integrity)) {
                assert_eq!(b.body(), packet, "a refused re-sync changed the packet");
            }
            return;
        }
        Err(_) => return,
    };
    let payload = b.body().to_vec();
    let iv_len = s.0.iv_len;
    let mut out = EspOutbound::new(provider, SPI, s.0, s.1, &k, esn).unwrap();
    out.set_next_seq(opened.seq).unwrap();
    out.set_next_iv(&packet[8..8 + iv_len]).unwrap();
    let o = out.overhead(payload.len());
    let mut w = vec![0u8; o.head];
    w.extend_from_slice(&payload);
    w.resize(o.head + payload.len() + o.tail, 0);
    let mut b = PacketBuf::new(&mut w[..], o.head, payload.len()).unwrap();
    out.seal(&mut b, opened.next_header).unwrap();
    assert_eq!(
        b.body(),
        packet,
        "open accepted a packet that is not authentic"
    );
});
