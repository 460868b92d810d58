//! RFC 7383 fragmentation: split, open, reassemble with shuffled and duplicated
//! fragments; limits and inconsistent totals.

use ipsec_core::{Duration, IkeSpi, Instant};
use ipsec_crypto_rustcrypto as rc;
use ipsec_ike_wire::frag::{message_len_for, FragmentError, ReassemblyError};
use ipsec_ike_wire::{
    fragment, max_message_len, open_fragment, ExchangeType, Flags, IkeHeaderRepr, IpVersion,
    Message, Payload, PayloadType, Reassembler, ReassemblyLimits, SkCrypter, SkKeys,
};
use proptest::prelude::*;

fn header() -> IkeHeaderRepr {
    IkeHeaderRepr {
        spi_i: IkeSpi([9; 8]),
        spi_r: IkeSpi([8; 8]),
        minor_version: 0,
        exchange_type: ExchangeType::IKE_AUTH,
        flags: Flags::new(true, false),
        message_id: 1,
    }
}

fn gcm() -> SkCrypter {
    SkCrypter::aead(&rc::AES_256_GCM, &[7; 36]).unwrap()
}

fn cbc() -> SkCrypter {
    SkCrypter::cipher_integ(&rc::AES_128_CBC, &[5; 16], &rc::HMAC_SHA256_128, &[6; 32]).unwrap()
}

#[test]
fn default_sizes_follow_rfc7383() {
    assert_eq!(max_message_len(IpVersion::V4, false), 548);
    assert_eq!(max_message_len(IpVersion::V4, true), 544);
    assert_eq!(max_message_len(IpVersion::V6, false), 1232);
    assert_eq!(max_message_len(IpVersion::V6, true), 1228);
    assert_eq!(message_len_for(1500, IpVersion::V4, true), 1468);
}

fn split_and_join(crypter: &SkCrypter, inner: &[u8], mtu: usize, order: &[usize]) -> Vec<u8> {
    let frags = fragment(
        crypter,
        &header(),
        PayloadType::IDI,
        inner,
        mtu,
        &rc::OS_RANDOM,
    )
    .unwrap();
    for f in &frags {
        assert!(f.len() <= mtu, "{} > {mtu}", f.len());
        let m = Message::parse(f).unwrap();
        assert!(matches!(m.payloads.last(), Some(Payload::Skf(_))));
    }
    let mut r = Reassembler::new(ReassemblyLimits::new(
        u16::MAX,
        1 << 20,
        Duration::from_secs(30),
    ));
    let mut done = None;
    for &i in order {
        let mut buf = frags[i % frags.len()].clone();
        let opened = open_fragment(crypter, &mut buf).unwrap();
        assert_eq!(opened.total_fragments as usize, frags.len());
        if let Some(whole) = r.insert(Instant::from_secs(1), &opened).unwrap() {
            assert!(done.is_none(), "completed twice");
            assert_eq!(whole.first_inner, PayloadType::IDI);
            assert_eq!(whole.header, header());
            done = Some(whole.inner);
        }
    }
    done.expect("never completed")
}

#[test]
fn roundtrip_in_order_gcm_and_cbc() {
    let inner: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    for crypter in [gcm(), cbc()] {
        for mtu in [
            max_message_len(IpVersion::V4, true),
            max_message_len(IpVersion::V6, false),
            100,
        ] {
            let n = fragment(
                &crypter,
                &header(),
                PayloadType::IDI,
                &inner,
                mtu,
                &rc::OS_RANDOM,
            )
            .unwrap()
            .len();
            let order: Vec<usize> = (0..n).collect();
            assert_eq!(split_and_join(&crypter, &inner, mtu, &order), inner);
        }
    }
}

#[test]
fn empty_and_tiny_messages() {
    let crypter = gcm();
    let frags = fragment(
        &crypter,
        &header(),
        PayloadType::NONE,
        &[],
        548,
        &rc::OS_RANDOM,
    )
    .unwrap();
    assert_eq!(frags.len(), 1);
    assert_eq!(split_and_join(&crypter, &[], 548, &[0]).len(), 0);
    // Too small to carry one byte.
    assert!(fragment(
        &crypter,
        &header(),
        PayloadType::IDI,
        &[1],
        36 + 8 + 16,
        &rc::OS_RANDOM
    )
    .is_err());
    assert!(fragment(
        &crypter,
        &header(),
        PayloadType::IDI,
        &[1],
        10,
        &rc::OS_RANDOM
    )
    .is_err());
}

#[test]
fn keys_select_direction_and_forgeries_fail() {
    let keys = SkKeys::aead(&rc::AES_128_GCM, &[1; 20], &[2; 20]).unwrap();
    let frags = fragment(
        &keys.initiator,
        &header(),
        PayloadType::IDI,
        &[3; 700],
        548,
        &rc::OS_RANDOM,
    )
    .unwrap();
    for f in &frags {
        let mut b = f.clone();
        assert!(open_fragment(&keys.responder, &mut b).is_err());
        for i in 0..f.len() {
            let mut b = f.clone();
            b[i] ^= 0x80;
            assert!(open_fragment(&keys.initiator, &mut b).is_err(), "byte {i}");
        }
        for n in 0..f.len() {
            let mut b = f[..n].to_vec();
            assert!(open_fragment(&keys.initiator, &mut b).is_err());
        }
    }
}

#[test]
fn inconsistent_totals_and_limits() {
    let crypter = gcm();
    let inner = vec![0x5a; 2000];
    let big = fragment(
        &crypter,
        &header(),
        PayloadType::IDI,
        &inner,
        300,
        &rc::OS_RANDOM,
    )
    .unwrap();
    let small = fragment(
        &crypter,
        &header(),
        PayloadType::IDI,
        &inner,
        600,
        &rc::OS_RANDOM,
    )
    .unwrap();
    assert!(big.len() > small.len());
    let t = Instant::from_secs(5);

    // A smaller total than the fragments held is refused ...
    let mut r = Reassembler::default();
    let mut b = big[0].clone();
    assert_eq!(
        r.insert(t, &open_fragment(&crypter, &mut b).unwrap()),
        Ok(None)
    );
    let mut s = small[1].clone();
    assert_eq!(
        r.insert(t, &open_fragment(&crypter, &mut s).unwrap()),
        Err(ReassemblyError::InconsistentTotal)
    );
    // ... a larger one restarts reassembly (the sender shrank its fragments).
    let mut r = Reassembler::default();
    for f in &small[..1] {
        let mut b = f.clone();
        r.insert(t, &open_fragment(&crypter, &mut b).unwrap())
            .unwrap();
    }
    let mut out = None;
    for f in big.iter().rev() {
        let mut b = f.clone();
        if let Some(w) = r
            .insert(t, &open_fragment(&crypter, &mut b).unwrap())
            .unwrap()
        {
            out = Some(w.inner);
        }
    }
    assert_eq!(out.unwrap(), inner);

    // Too many fragments.
    let mut r = Reassembler::new(ReassemblyLimits::new(4, 65536, Duration::from_secs(30)));
    let mut b = big[0].clone();
    assert_eq!(
        r.insert(t, &open_fragment(&crypter, &mut b).unwrap()),
        Err(ReassemblyError::TooManyFragments)
    );
    // Too long in total.
    let mut r = Reassembler::new(ReassemblyLimits::new(128, 500, Duration::from_secs(30)));
    let mut err = None;
    for f in &big {
        let mut b = f.clone();
        if let Err(e) = r.insert(t, &open_fragment(&crypter, &mut b).unwrap()) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(ReassemblyError::TooLong));
    assert_eq!(r.in_progress(), None);
}

#[test]
fn partial_messages_expire() {
    let crypter = gcm();
    let frags = fragment(
        &crypter,
        &header(),
        PayloadType::IDI,
        &[1; 1000],
        300,
        &rc::OS_RANDOM,
    )
    .unwrap();
    let mut r = Reassembler::new(ReassemblyLimits::new(16, 65536, Duration::from_secs(10)));
    let mut b = frags[0].clone();
    r.insert(
        Instant::from_secs(100),
        &open_fragment(&crypter, &mut b).unwrap(),
    )
    .unwrap();
    assert_eq!(r.poll_timeout(), Some(Instant::from_secs(110)));
    assert!(!r.expire(Instant::from_secs(109)));
    // After the timeout the early fragment is gone: the rest alone do not complete.
    for f in &frags[1..] {
        let mut b = f.clone();
        let got = r.insert(
            Instant::from_secs(111),
            &open_fragment(&crypter, &mut b).unwrap(),
        );
        assert_eq!(got, Ok(None));
    }
    assert_eq!(r.in_progress(), Some(1));
    assert!(r.expire(Instant::from_secs(200)));
    assert_eq!(r.in_progress(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn roundtrip_shuffled_and_duplicated(
        len in 0usize..2500,
        mtu in 80usize..700,
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<usize>(), 0..8),
        use_cbc in any::<bool>(),
    ) {
        let crypter = if use_cbc { cbc() } else { gcm() };
        let inner: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
        // The smallest message that carries a byte of content: IKE header (28), SKF
        // header (8), then for AES-CBC an IV and one block (16 + 16) and the
        // HMAC-SHA-256-128 ICV (16); for AES-GCM the IV (8), the byte and the pad
        // length byte (2), and the ICV (16). Below it, and only there, MtuTooSmall.
        let least = if use_cbc { 28 + 8 + 16 + 16 + 16 } else { 28 + 8 + 8 + 2 + 16 };
        let frags = match fragment(&crypter, &header(), PayloadType::IDI, &inner, mtu, &rc::OS_RANDOM) {
            Err(FragmentError::MtuTooSmall) => {
                prop_assert!(mtu < least, "MtuTooSmall at {mtu}");
                return Ok(());
            }
            r => {
                prop_assert!(mtu >= least, "fragmented at {mtu}");
                r.unwrap()
            }
        };
        let n = frags.len();
        // Fisher-Yates with a small LCG, then sprinkle duplicates before the end.
        let mut order: Vec<usize> = (0..n).collect();
        let mut s = seed | 1;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        // Duplicates of fragments other than the one that completes the message.
        let last = order.pop().unwrap();
        if !order.is_empty() {
            let extra: Vec<usize> = dups.iter().map(|d| order[d % order.len()]).collect();
            order.extend(extra);
        }
        order.push(last);
        prop_assert_eq!(split_and_join(&crypter, &inner, mtu, &order), inner);
    }
}
