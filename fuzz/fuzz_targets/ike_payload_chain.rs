//! A bare payload chain (as found inside an SK payload): the first input byte is the
//! type of the first payload, the rest is the chain. The iterator must never panic and
//! must fuse after an error; an accepted canonical chain re-emits identically.
#![no_main]

use ipsec_ike_wire::message::{emit_payloads, payloads_len, raw_payload_canonical};
use ipsec_ike_wire::{Payload, PayloadIter, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, chain)) = data.split_first() else {
        return;
    };
    let first = PayloadType(first);
    let mut canonical = true;
    let mut payloads = Vec::new();
    let mut chain_failed = false;
    let mut repr_failed = false;
    for r in PayloadIter::new(first, chain) {
        assert!(!chain_failed, "iterator must fuse after an error");
        let Ok(raw) = r else {
            chain_failed = true;
            continue;
        };
        canonical &= raw.reserved_clear()
            && !(raw.payload_type.is_known() && raw.is_critical())
            && raw_payload_canonical(&raw);
        match Payload::parse(&raw) {
            Ok(p) => payloads.push(p),
            Err(_) => repr_failed = true,
        }
    }
    if chain_failed || repr_failed {
        return;
    }
    let mut out = vec![0u8; payloads_len(&payloads)];
    emit_payloads(&payloads, &mut out);
    let back: Vec<Payload<'_>> = PayloadIter::new(first, &out)
        .map(|r| r.and_then(|raw| Payload::parse(&raw)))
        .collect::<Result<_, _>>()
        .expect("re-emitted chain must parse");
    assert_eq!(back, payloads);
    if canonical {
        assert_eq!(out, chain, "canonical chain must re-emit identically");
    }
});
