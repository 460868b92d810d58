//! The IKE pair with two additional key exchanges (RFC 9370) on both sides, so that
//! IKE_INTERMEDIATE exchanges (RFC 9242) and the key updates between them come before
//! IKE_AUTH, under the insecure fuzzing provider (`ipsec_test::fuzz::provider`):
//! mutated IKE_INTERMEDIATE contents (KE payloads of the wrong group or length,
//! missing KE, extra payloads) reach the exchange logic. Mutations go to the
//! responder, or to the initiator when the first byte's bit 2 is set.
//! Property: no panic.
#![no_main]

use ipsec_test::fuzz::{run_hybrid, Crypto, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = if data.first().is_some_and(|b| b & 4 != 0) {
        Target::Initiator
    } else {
        Target::Responder
    };
    let _ = run_hybrid(target, Crypto::Fuzzing, data);
});
