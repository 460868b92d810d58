//! RFC 5685 §8 notification data: `parse(emit(repr)) == repr`, every strict prefix of
//! the identity part is refused, and arbitrary bytes parse or fail without a panic
//! (an accepted one re-emits identically).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_ike_wire::redirect::fqdn_ok;
use ipsec_ike_wire::{GatewayIdRepr, RedirectRepr};
use proptest::collection::vec;
use proptest::prelude::*;

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn gateway() -> impl Strategy<Value = GatewayIdRepr<'static>> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| GatewayIdRepr::Ip(IpAddr::V4(Ipv4Addr::from(b)))),
        any::<[u8; 16]>().prop_map(|b| GatewayIdRepr::Ip(IpAddr::V6(Ipv6Addr::from(b)))),
        vec(0x21u8..0x7f, 1..=255).prop_map(|v| GatewayIdRepr::Fqdn(leak(v))),
    ]
}

proptest! {
    #[test]
    fn roundtrip(gw in gateway(), nonce in vec(any::<u8>(), 0..64)) {
        let r = RedirectRepr { gateway: gw, nonce: leak(nonce) };
        let bytes = r.to_vec();
        prop_assert_eq!(bytes.len(), r.buffer_len());
        prop_assert_eq!(bytes[0], gw.id_type().0);
        prop_assert_eq!(usize::from(bytes[1]), gw.len());
        prop_assert_eq!(RedirectRepr::parse(&bytes).unwrap(), r);
        // Cut inside the header or the identity: refused.
        for n in 0..2 + gw.len() {
            prop_assert!(RedirectRepr::parse(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn any_bytes(data in vec(any::<u8>(), 0..300)) {
        match RedirectRepr::parse(&data) {
            Ok(r) => {
                prop_assert!(matches!(data[0], 1..=3));
                if let GatewayIdRepr::Fqdn(n) = r.gateway {
                    prop_assert!(fqdn_ok(n));
                }
                prop_assert_eq!(r.to_vec(), data);
            }
            Err(e) => prop_assert!(e.offset <= data.len()),
        }
    }
}
