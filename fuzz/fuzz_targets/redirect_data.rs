//! RFC 5685 §8 REDIRECT / REDIRECTED_FROM notification data: any bytes parse or fail
//! without a panic; an accepted one has a known identity type, an FQDN of printable
//! ASCII, and re-emits to exactly the input.
#![no_main]

use ipsec_ike_wire::redirect::fqdn_ok;
use ipsec_ike_wire::{GatewayIdRepr, RedirectRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = RedirectRepr::parse(data) else {
        return;
    };
    assert!(matches!(data[0], 1..=3));
    if let GatewayIdRepr::Fqdn(n) = r.gateway {
        assert!(fqdn_ok(n));
    }
    assert_eq!(r.buffer_len(), data.len());
    assert_eq!(r.to_vec(), data);
});
