//! RFC 3948 demultiplexing on port 4500 on arbitrary bytes: the classification must
//! follow the rules exactly, and the UDP helpers must not panic.
#![no_main]

use ipsec_esp::udp::{self, Classified, KEEPALIVE, NON_ESP_MARKER};
use ipsec_esp::PacketBuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match udp::classify(data) {
        Classified::Keepalive => assert_eq!(data, KEEPALIVE),
        Classified::Ike(ike) => {
            assert_eq!(&data[..4], NON_ESP_MARKER);
            assert!(!ike.is_empty());
            assert_eq!(ike, &data[4..]);
        }
        Classified::Esp(esp) => {
            assert_eq!(esp, data);
            assert!(data.len() >= 8);
            assert_ne!(&data[..4], NON_ESP_MARKER);
        }
        Classified::Malformed => {
            let ike = data.len() > 4 && data[..4] == NON_ESP_MARKER;
            let esp = data.len() >= 8 && data[..4] != NON_ESP_MARKER;
            assert!(data != KEEPALIVE && !ike && !esp);
        }
    }
    // The same bytes as a whole UDP datagram (header first).
    if let Ok((ports, payload)) = udp::parse(data) {
        assert_eq!(ports.src, u16::from_be_bytes([data[0], data[1]]));
        assert!(payload.len() + 8 <= data.len());
    }
    let mut v = data.to_vec();
    let len = v.len();
    let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
    if udp::decap(&mut b).is_ok() {
        assert!(matches!(udp::classify(b.body()), Classified::Esp(_)));
    } else {
        assert_eq!(b.body(), data);
    }
});
