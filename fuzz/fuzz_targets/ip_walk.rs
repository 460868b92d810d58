//! The IPv4/IPv6 header walker ESP and AH share (`ipsec_core::ip::walk`) on arbitrary
//! bytes: nothing panics, an accepted packet's split points lie inside it, stricter
//! checks never accept more, and rewriting the fields it found with their own values
//! changes nothing.
#![no_main]

use ipsec_core::ip::ipv4_checksum;
use ipsec_core::ip::walk::{self, Checks, IpVersion, Stop};
use ipsec_core::IpProto;
use libfuzzer_sys::fuzz_target;

const STOPS: [Stop; 3] = [
    Stop::Protect,
    Stop::At(&[IpProto::ESP, IpProto::UDP]),
    Stop::At(&[IpProto::AH]),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, packet)) = data.split_first() else {
        return;
    };
    let checks = Checks::new()
        .with_v4_checksum(sel & 1 != 0)
        .with_v6_empty_payload(sel & 2 != 0)
        .with_single_routing_header(sel & 4 != 0);
    let stop = STOPS[usize::from(sel >> 3) % STOPS.len()];
    let _ = walk::ext_len(packet, usize::from(sel), sel);

    let Ok(l) = walk::locate(packet, stop, checks) else {
        return;
    };
    assert_eq!(walk::version(packet), Ok(l.version));
    assert!(l.total_len <= packet.len());
    assert!(l.header_len <= l.total_len);
    assert!(l.proto_offset < l.header_len);
    assert_eq!(packet[l.proto_offset], l.proto.0);
    if let Stop::At(targets) = stop {
        if l.version == IpVersion::V6 {
            assert!(targets.contains(&l.proto));
        }
    }

    // Looser checks accept the same packet with the same answer.
    let loose = Checks::new().with_v6_empty_payload(true);
    assert_eq!(walk::locate(packet, stop, loose), Ok(l));
    // Taking the length from the input (as a capture decoder does) finds the same
    // headers; only the length is the input's.
    let whole = walk::locate(packet, stop, checks.with_length_from_input(true)).unwrap();
    assert_eq!(
        (
            whole.header_len,
            whole.proto,
            whole.proto_offset,
            whole.total_len
        ),
        (l.header_len, l.proto, l.proto_offset, packet.len())
    );
    // Protecting puts the IPsec header no later than where a received one is found.
    if stop != Stop::Protect {
        if let Ok(p) = walk::locate(packet, Stop::Protect, checks) {
            assert!(p.header_len <= l.header_len);
        }
    }

    // Writing back the fields it found is the identity, but for the IPv4 checksum,
    // which is recomputed (a stored 0xffff also verifies where 0x0000 is computed).
    let mut copy = packet.to_vec();
    let hl = l.header_len;
    walk::fix(
        &mut copy[..hl],
        l.version,
        l.total_len,
        l.proto_offset,
        l.proto,
    )
    .unwrap();
    if l.version == IpVersion::V6 {
        assert_eq!(copy, packet);
    } else {
        assert_eq!(copy[..10], packet[..10]);
        assert_eq!(copy[12..], packet[12..]);
        assert_eq!(ipv4_checksum(&copy[..hl]), 0);
    }
});
