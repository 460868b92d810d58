//! Whole IKE messages: parsing must never panic, an accepted message re-emits to
//! something that parses to the same repr, and a canonical message re-emits byte for
//! byte. Every parse error has an answer from `error_response`.
#![no_main]

use ipsec_ike_wire::{error_response, is_canonical, Message, Trust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(m) => {
            let out = m.to_vec();
            assert_eq!(out.len(), m.buffer_len());
            let again = Message::parse(&out).expect("re-emitted message must parse");
            assert_eq!(again, m);
            if is_canonical(data) {
                assert_eq!(out, data, "canonical message must re-emit identically");
            }
        }
        Err(e) => {
            assert!(!is_canonical(data));
            let _ = error_response(data, &e, Trust::Unauthenticated);
            let _ = error_response(data, &e, Trust::Authenticated);
        }
    }
});
