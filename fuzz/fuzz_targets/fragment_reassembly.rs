//! Fragmentation and reassembly: fuzzer-chosen content and fragment size, then
//! fragments fed in a fuzzer-chosen order with duplicates, corrupted copies, time steps
//! and foreign fragments. Never panics, and whatever comes out is exactly the content.
#![no_main]

use ipsec_core::{Duration, IkeSpi, Instant};
use ipsec_crypto::{CryptoError, SecureRandom};
use ipsec_crypto_rustcrypto as rc;
use ipsec_ike_wire::{
    fragment, open_fragment, ExchangeType, Flags, IkeHeaderRepr, PayloadType, Reassembler,
    ReassemblyLimits, SkCrypter,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Counter;

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for (i, d) in dest.iter_mut().enumerate() {
            *d = i as u8;
        }
        Ok(())
    }
}

fn header(id: u32) -> IkeHeaderRepr {
    IkeHeaderRepr {
        spi_i: IkeSpi([3; 8]),
        spi_r: IkeSpi([4; 8]),
        minor_version: 0,
        exchange_type: ExchangeType::IKE_AUTH,
        flags: Flags::new(true, false),
        message_id: id,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, ops) = data.split_at(4);
    let crypter = if ctl[0] & 1 == 0 {
        SkCrypter::aead(&rc::AES_128_GCM, &[9; 20]).unwrap()
    } else {
        SkCrypter::cipher_integ(&rc::AES_128_CBC, &[1; 16], &rc::HMAC_SHA256_128, &[2; 32]).unwrap()
    };
    let mtu = 100 + usize::from(ctl[1]) * 4;
    let len = usize::from(u16::from_be_bytes([ctl[2], ctl[3]])) % 8192;
    let inner: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
    let Ok(frags) = fragment(&crypter, &header(1), PayloadType::IDI, &inner, mtu, &Counter) else {
        return;
    };
    let other =
        fragment(&crypter, &header(2), PayloadType::NOTIFY, &[7; 300], 120, &Counter).unwrap();
    let mut r = Reassembler::new(ReassemblyLimits::new(64, 4096, Duration::from_secs(5)));
    let mut now = Instant::from_secs(1);
    for &op in ops {
        let idx = usize::from(op & 0x3f);
        match op >> 6 {
            0 | 1 => {
                let Some(f) = frags.get(idx % frags.len()) else { continue };
                let mut b = f.clone();
                let opened = open_fragment(&crypter, &mut b).expect("own fragment must open");
                if let Ok(Some(whole)) = r.insert(now, &opened) {
                    assert_eq!(whole.inner, inner);
                    assert_eq!(whole.first_inner, PayloadType::IDI);
                }
            }
            2 => {
                // A corrupted copy never opens.
                let Some(f) = frags.get(idx % frags.len()) else { continue };
                let mut b = f.clone();
                let at = (idx * 13) % b.len();
                b[at] ^= 0x40;
                assert!(open_fragment(&crypter, &mut b).is_err());
            }
            _ => {
                if idx < 8 {
                    now = now + Duration::from_secs(idx as u64);
                    r.expire(now);
                } else {
                    // A fragment of another message.
                    let mut b = other[idx % other.len()].clone();
                    let opened = open_fragment(&crypter, &mut b).unwrap();
                    if let Ok(Some(whole)) = r.insert(now, &opened) {
                        assert_eq!(whole.inner, vec![7; 300]);
                    }
                }
            }
        }
    }
});
