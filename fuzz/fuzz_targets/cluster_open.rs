//! `ipsec_cluster::ClusterKey::open` on arbitrary bytes under a fixed key: no panic and
//! never `Ok` for bytes the key did not seal. Then a record sealed from fuzzer-chosen
//! plaintext: it opens to that plaintext under its name, and fails after a
//! fuzzer-chosen change of one byte, a truncation, or under another name.
//! The first input byte splits the rest into name and sealed bytes.
#![no_main]

use ipsec_cluster::ClusterKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ClusterKey::from_bytes([0x42; 32]);
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (name, body) = rest.split_at((split as usize).min(rest.len()));
    let name = String::from_utf8_lossy(name);
    // Arbitrary bytes: forging a Poly1305 tag is out of the fuzzer's reach.
    assert!(key.open(&name, body).is_err());
    let sealed = key.seal(&name, body);
    assert_eq!(&key.open(&name, &sealed).expect("own record opens")[..], body);
    let mut other = name.to_string();
    other.push('x');
    assert!(key.open(&other, &sealed).is_err());
    let mut changed = sealed.clone();
    let at = split as usize % changed.len();
    changed[at] ^= 1 | (split >> 1);
    assert!(key.open(&name, &changed).is_err());
    assert!(key.open(&name, &sealed[..sealed.len() - 1]).is_err());
});
