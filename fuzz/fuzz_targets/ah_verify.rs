//! `open_transport` / `open_tunnel` against fixed SAs (and, after an ICV failure, the
//! ESN re-sync path, `OpenOptions::resync`): never panics, leaves the body
//! unchanged on every error, and never succeeds unless the packet is authentic.
//!
//! Authentic is checked two ways. (1) A second path computes the ICV from
//! `mutable::icv_input` and the provider directly and compares it with the packet's.
//! (2) In transport mode, sealing the opened packet again with the same SA, sequence
//! number and IV gives back the input, up to the IPv4 header checksum (which AH does
//! not cover and `open` recomputes) and bytes behind the IP length.
//! Half the runs seal a fuzzer-chosen packet first and flip one fuzzer-chosen bit, so
//! the authentic path is reached too.
#![no_main]

use ipsec_ah::mutable::icv_input;
use ipsec_ah::OpenOptions;
use ipsec_ah::wire::AhPacket;
use ipsec_ah::{integ, AhInbound, AhOutbound, OpenError, PacketBuf, Tunnel, TunnelConfig};
use ipsec_core::{KeyMaterial, Mode, Spi};
use ipsec_crypto::suites::{self, IntegDesc};
use ipsec_crypto::EncrId;
use libfuzzer_sys::fuzz_target;

const SPI: Spi = Spi(0x0000_1234);
const ROOM: usize = 64;

fn transforms() -> [&'static IntegDesc; 3] {
    [
        &suites::HMAC_SHA1_96,
        &suites::HMAC_SHA256_128,
        &integ::AES_128_GMAC,
    ]
}

fn keys(d: &IntegDesc) -> KeyMaterial {
    let k: Vec<u8> = (0..d.key_len).map(|i| 0x80 ^ i as u8).collect();
    KeyMaterial::new(&[], &k).unwrap()
}

/// The ICV by a second path: canonical form ‖ ESN high bits (0: the window is new),
/// MAC'd by the provider without the SA code.
fn independent_icv_ok(d: &'static IntegDesc, esn: bool, packet: &[u8]) -> bool {
    let p = &ipsec_crypto_rustcrypto::PROVIDER;
    let mut canon = packet.to_vec();
    let layout = ipsec_ah::wire::AhLayout {
        iv_len: if integ::is_gmac(d.id) { 8 } else { 0 },
        icv_len: d.icv_len,
    };
    let Ok(len) = icv_input(&mut canon, &layout) else {
        return false;
    };
    canon.truncate(len);
    let ah_off = ah_offset(packet);
    let Some(ah) = packet.get(ah_off..).and_then(|b| AhPacket::parse(b).ok()) else {
        return false;
    };
    let Ok(parts) = layout.split(&ah) else {
        return false;
    };
    let mut input = canon.clone();
    if esn {
        input.extend_from_slice(&0u32.to_be_bytes());
    }
    let k = keys(d);
    if integ::is_gmac(d.id) {
        let alg = p.aead(EncrId::ENCR_AES_GCM_16, 16).unwrap();
        let key = alg.new_key(&k.integ()[..16]).unwrap();
        let mut nonce = k.integ()[16..20].to_vec();
        nonce.extend_from_slice(parts.iv);
        key.open_detached(&nonce, &input, &mut [], parts.icv)
            .is_ok()
    } else {
        let key = p.integ(d.id).unwrap().new_key(k.integ()).unwrap();
        key.verify(&[&input], parts.icv).is_ok()
    }
}

/// The AH offset of a packet `open` accepted: behind the IPv4 header, or behind the
/// IPv6 extension headers.
fn ah_offset(p: &[u8]) -> usize {
    if p[0] >> 4 == 4 {
        return usize::from(p[0] & 0xf) * 4;
    }
    let (mut nh, mut off) = (p[6], 40);
    while nh != 51 {
        let len = if nh == 44 {
            8
        } else {
            (usize::from(p[off + 1]) + 1) * 8
        };
        nh = p[off];
        off += len;
    }
    off
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let d = transforms()[usize::from(sel & 3) % 3];
    let esn = sel & 4 != 0;
    let tunnel = sel & 8 != 0;
    let provider = &ipsec_crypto_rustcrypto::PROVIDER;
    let k = keys(d);
    let mut input = rest.to_vec();
    if sel & 0x80 != 0 && rest.len() >= 2 {
        // Seal the rest first, then flip one bit chosen by the first two bytes.
        let (pick, packet) = rest.split_at(2);
        let mut out = AhOutbound::new(provider, SPI, d, &k, esn).unwrap();
        let mut s = vec![0u8; ROOM + packet.len() + ROOM];
        s[ROOM..ROOM + packet.len()].copy_from_slice(packet);
        let mut b = PacketBuf::new(&mut s[..], ROOM, packet.len()).unwrap();
        let sealed = if tunnel {
            let mut t = Tunnel::new(TunnelConfig::new(
                "192.0.2.1".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
            ))
            .unwrap();
            out.seal_tunnel(&mut t, &mut b)
        } else {
            out.seal_transport(&mut b)
        };
        if sealed.is_err() {
            return;
        }
        input = b.body().to_vec();
        let bit = usize::from(u16::from_be_bytes([pick[0], pick[1]])) % (input.len() * 8 + 1);
        if bit < input.len() * 8 {
            input[bit / 8] ^= 0x80 >> (bit % 8);
        }
    }
    let mut inb = AhInbound::new(provider, SPI, d, &k, esn, 64).unwrap();
    let mut s = vec![0u8; ROOM + input.len() + ROOM];
    s[ROOM..ROOM + input.len()].copy_from_slice(&input);
    let mut b = PacketBuf::new(&mut s[..], ROOM, input.len()).unwrap();
    let r = if tunnel {
        inb.open_tunnel(&mut b, OpenOptions::new())
    } else {
        inb.open_transport(&mut b, OpenOptions::new())
    };
    let opened = match r {
        Err(e) => {
            assert_eq!(b.body(), &input[..], "body changed on error");
            if matches!(e, OpenError::Integrity) {
                // ESN re-synchronization (RFC 4302 App. B3) retries the ICV with later
                // high halves: it must refuse what `open` refused, body unchanged.
                let mode = if tunnel {
                    Mode::Tunnel
                } else {
                    Mode::Transport
                };
                let r = match mode { Mode::Transport => inb.open_transport(&mut b, OpenOptions::resync(8)), Mode::Tunnel => inb.open_tunnel(&mut b, OpenOptions::resync(8)) };
                assert!(r.is_err(), "re-sync authenticated a forged packet: {r:?}");
                assert_eq!(b.body(), &input[..], "re-sync changed the body on error");
            }
            return;
        }
        Ok(o) => o,
    };
    assert!(
        independent_icv_ok(d, esn, &input),
        "open accepted a packet the second path rejects"
    );
    if tunnel {
        return;
    }
    let rebuilt = b.body().to_vec();
    let mut out = AhOutbound::new(provider, SPI, d, &k, esn).unwrap();
    out.set_next_seq(opened.seq).unwrap();
    if integ::is_gmac(d.id) {
        let off = ah_offset(&input);
        out.set_next_iv(&input[off + 12..off + 20]).unwrap();
    }
    let mut s = vec![0u8; ROOM + rebuilt.len() + ROOM];
    s[ROOM..ROOM + rebuilt.len()].copy_from_slice(&rebuilt);
    let mut b = PacketBuf::new(&mut s[..], ROOM, rebuilt.len()).unwrap();
    out.seal_transport(&mut b).unwrap();
    let again = b.body();
    let mut want = input[..again.len().min(input.len())].to_vec();
    if want[0] >> 4 == 4 && want.len() >= 12 {
        want[10..12].copy_from_slice(&again[10..12]);
    }
    assert_eq!(
        again,
        &want[..],
        "open accepted a packet that is not what seal makes"
    );
});
