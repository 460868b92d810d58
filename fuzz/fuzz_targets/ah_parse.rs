//! AH wire parsing and the ICV input on arbitrary bytes: nothing panics, accepted
//! headers re-emit byte for byte, and the canonical ICV form is idempotent (a
//! canonical packet is its own canonical form: every mutable field is already zero
//! and every predictable one already has its final value).
#![no_main]

use ipsec_ah::mutable::icv_input;
use ipsec_ah::wire::{AhLayout, AhPacket, AhRepr, Family, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

const LAYOUTS: [AhLayout; 4] = [
    AhLayout {
        iv_len: 0,
        icv_len: 12,
    },
    AhLayout {
        iv_len: 0,
        icv_len: 16,
    },
    AhLayout {
        iv_len: 0,
        icv_len: 32,
    },
    AhLayout {
        iv_len: 8,
        icv_len: 16,
    },
];

fuzz_target!(|data: &[u8]| {
    // The header view.
    if let Ok(p) = AhPacket::parse(data) {
        let n = p.ah_len();
        assert!(n >= HEADER_LEN && n <= data.len());
        assert_eq!(p.icv_field().len() + HEADER_LEN, n);
        assert_eq!(p.payload(), &data[n..]);
        let mut out = vec![0xa5u8; n];
        let r = AhRepr::parse(&p);
        r.emit(&mut out).unwrap();
        assert_eq!(out[..2], data[..2]);
        assert_eq!(out[4..HEADER_LEN], data[4..HEADER_LEN]);
        assert!(out[HEADER_LEN..].iter().all(|&b| b == 0));
        for l in LAYOUTS {
            if let Ok(parts) = l.split(&p) {
                assert_eq!(
                    parts.iv.len() + parts.icv.len() + parts.padding.len(),
                    n - HEADER_LEN
                );
            }
            for f in [Family::Ipv4, Family::Ipv6] {
                if l.check(n, f).is_ok() {
                    assert!(l.split(&p).is_ok());
                    assert_eq!(n % 4, 0);
                }
            }
        }
    }
    // The ICV input over whole IP packets.
    let Some((&sel, packet)) = data.split_first() else {
        return;
    };
    let layout = LAYOUTS[usize::from(sel) % LAYOUTS.len()];
    let mut once = packet.to_vec();
    match icv_input(&mut once, &layout) {
        Ok(len) => {
            assert!(len <= packet.len());
            assert_eq!(
                once[len..],
                packet[len..],
                "bytes behind the IP length touched"
            );
            let mut twice = once.clone();
            assert_eq!(icv_input(&mut twice, &layout), Ok(len));
            assert_eq!(once, twice, "canonical form not idempotent");
        }
        Err(_) => assert_eq!(once, packet, "a refused packet was changed"),
    }
});
