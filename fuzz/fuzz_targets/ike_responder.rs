//! The IKE responder under attack: the fuzz input is a list of operations on a real
//! initiator–responder pair (deliver, drop, duplicate or mutate datagrams, raw bytes
//! into the responder on port 500 or 4500, time steps, commands on either side); see
//! `ipsec_test::fuzz`. Property: no panic, in any state the pair reaches.
#![no_main]

use ipsec_test::fuzz::{run, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run(Target::Responder, data);
});
