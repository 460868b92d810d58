//! ESP wire parsers on arbitrary bytes: they must not panic, and whatever they accept
//! must re-emit byte for byte.
#![no_main]

use ipsec_esp::wire::{EspHeader, EspLayout, EspPacket, Trailer};
use ipsec_esp::{udp, PacketBuf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header view: accepted headers re-emit identically.
    if let Ok(p) = EspPacket::parse(data) {
        let mut out = [0u8; 8];
        EspHeader::new(p.spi(), u64::from(p.seq()))
            .emit(&mut out)
            .unwrap();
        assert_eq!(&out[..], &data[..8]);
        assert_eq!(p.payload(), &data[8..]);
        for (iv, icv, block) in [(8, 16, 1), (16, 12, 16), (0, 32, 4), (16, 0, 16)] {
            if let Ok(parts) = p.split(&EspLayout {
                iv_len: iv,
                icv_len: icv,
                block_len: block,
            }) {
                assert_eq!(parts.iv.len(), iv);
                assert_eq!(parts.icv.len(), icv);
                assert_eq!(8 + iv + parts.ciphertext.len() + icv, data.len());
                assert!(parts.ciphertext.len() >= 2);
                assert_eq!(parts.ciphertext.len() % block.max(1), 0);
            }
        }
    }
    // Trailer: a canonical (default-padded) trailer re-emits identically.
    if let Ok((t, payload_len)) = Trailer::parse(data) {
        assert_eq!(payload_len + t.buffer_len(), data.len());
        if t.padding_is_default(data) {
            let mut out = vec![0u8; t.buffer_len()];
            t.emit(&mut out).unwrap();
            assert_eq!(&out[..], &data[payload_len..]);
        }
    }
    // UDP header parser and the UDP/outer-header strip on a PacketBuf.
    let _ = udp::parse(data);
    let mut v = data.to_vec();
    let len = v.len();
    let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
    let _ = ipsec_esp::tunnel::decap(&mut b);
    assert!(b.body_range().end <= len);
});
