//! SK payload opening with fixed keys: never panics, and never succeeds unless the
//! input is what our own `seal` produces for the opened contents and the same IV.
//! Half the runs seal fuzzer-chosen contents first and then maybe flip one bit, so the
//! authentic path is exercised too.
#![no_main]

use std::sync::OnceLock;

use ipsec_core::IkeSpi;
use ipsec_crypto::{CryptoError, SecureRandom};
use ipsec_crypto_rustcrypto as rc;
use ipsec_ike_wire::{
    seal, ExchangeType, Flags, IkeHeaderRepr, OpenError, PayloadType, SkCrypter, SkKeys,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct FixedIv(Vec<u8>);

impl SecureRandom for FixedIv {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for (i, d) in dest.iter_mut().enumerate() {
            *d = self.0.get(i).copied().unwrap_or(0);
        }
        Ok(())
    }
}

fn keys() -> &'static [SkKeys] {
    static K: OnceLock<Vec<SkKeys>> = OnceLock::new();
    K.get_or_init(|| {
        vec![
            SkKeys::aead(&rc::AES_128_GCM, &[0x11; 20], &[0x22; 20]).unwrap(),
            SkKeys::aead(&rc::CHACHA20_POLY1305, &[0x33; 36], &[0x44; 36]).unwrap(),
            SkKeys::cipher_integ(
                &rc::AES_128_CBC,
                &rc::HMAC_SHA256_128,
                &[0x55; 16],
                &[0x66; 32],
                &[0x77; 16],
                &[0x88; 32],
            )
            .unwrap(),
        ]
    })
}

/// Whether `input` is exactly what sealing the opened contents again gives.
fn authentic(c: &SkCrypter, input: &[u8], header: &IkeHeaderRepr, first: PayloadType, inner: &[u8]) -> bool {
    let iv = input.get(32..32 + c.iv_len()).unwrap_or(&[]).to_vec();
    let mut out = Vec::new();
    seal(c, header, first, inner, &FixedIv(iv), &mut out).is_ok() && out == input
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ks = &keys()[usize::from(sel % 3)];
    let input: Vec<u8> = if sel & 0x80 != 0 && rest.len() >= 4 {
        // Seal fuzzer-chosen contents, then flip one bit unless told not to.
        let (ctl, inner) = rest.split_at(4);
        let header = IkeHeaderRepr {
            spi_i: IkeSpi([1; 8]),
            spi_r: IkeSpi([2; 8]),
            minor_version: 0,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags(ctl[0]),
            message_id: u32::from(ctl[1]),
        };
        let mut out = Vec::new();
        if ks.seal(&header, PayloadType(ctl[2]), inner, &FixedIv(vec![ctl[3]; 16]), &mut out).is_err() {
            return;
        }
        let pos = usize::from(ctl[3]) * 7 % (out.len() * 8 + 1);
        if pos < out.len() * 8 {
            out[pos / 8] ^= 1 << (pos % 8);
            let mut b = out.clone();
            assert!(ks.open(&mut b).is_err(), "a flipped bit was accepted");
            return;
        }
        let mut b = out.clone();
        let o = ks.open(&mut b).expect("own sealed message must open");
        assert_eq!(o.inner, inner);
        return;
    } else {
        rest.to_vec()
    };
    let mut buf = input.clone();
    match ks.open(&mut buf) {
        Ok(o) => {
            let c = ks.for_header(&o.header);
            assert_eq!(o.plain_len, 0, "we never seal plain payloads before SK");
            assert!(authentic(c, &input, &o.header, o.first_inner, o.inner), "forged input accepted");
        }
        Err(OpenError::Malformed(_) | OpenError::Integrity | OpenError::Padding) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
});
