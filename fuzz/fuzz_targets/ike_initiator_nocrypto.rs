//! As `ike_initiator`, with the insecure fuzzing provider
//! (`ipsec_test::fuzz::provider`): every ICV verifies and SK payloads are not
//! encrypted, so mutated IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL messages reach the
//! decoding, authentication and state logic behind the integrity check.
//! Property: no panic.
#![no_main]

use ipsec_test::fuzz::{run_with, Crypto, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run_with(Target::Initiator, Crypto::Fuzzing, data);
});
