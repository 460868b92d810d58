//! The IKE initiator under attack: as `ike_responder`, with raw and mutated datagrams
//! sent to the initiator instead (forged IKE_SA_INIT and IKE_AUTH responses, COOKIE
//! and INVALID_KE_PAYLOAD answers, garbage on port 4500). Property: no panic.
#![no_main]

use ipsec_test::fuzz::{run, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run(Target::Initiator, data);
});
