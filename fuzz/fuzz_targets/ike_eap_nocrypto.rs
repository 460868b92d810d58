//! The IKE pair with EAP-MSCHAPv2 (RFC 7296 §2.16) and a virtual address (§3.15):
//! the initiator authenticates with EAP and sends a CFG_REQUEST, the responder asks
//! for the EAP identity, runs MSCHAPv2 and leases an address, all under the insecure
//! fuzzing provider (`ipsec_test::fuzz::provider`), so mutated EAP payloads (codes,
//! identifiers, types, MSCHAPv2 messages), AUTH payloads keyed with the MSK and CP
//! payloads reach the exchange logic. Mutations go to the responder, or to the
//! initiator when the first byte's bit 2 is set. Property: no panic.
#![no_main]

use ipsec_test::fuzz::{run_eap, Crypto, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = if data.first().is_some_and(|b| b & 4 != 0) {
        Target::Initiator
    } else {
        Target::Responder
    };
    let _ = run_eap(target, Crypto::Fuzzing, data);
});
