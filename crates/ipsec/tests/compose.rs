//! The composed default provider covers every transform, takes each from the backend
//! the docs promise, and its backends interoperate byte for byte.

use ipsec::crypto::suites::{ENCR, INTEG, KE, PRF};
use ipsec::crypto::{CryptoProvider, EncrKind, KeId};
use ipsec::{crypto_ring as ring_be, crypto_rustcrypto as rc_be, DEFAULT_PROVIDER};

#[test]
fn default_provider_covers_every_transform() {
    let p = &DEFAULT_PROVIDER;
    for d in ENCR {
        assert!(p.supports_encr(d), "{}", d.name);
        let want = match d.kind {
            // ring has no AES-CCM.
            EncrKind::Aead if d.name.contains("CCM") => "rustcrypto",
            EncrKind::Aead => "ring",
            // GMAC is all AAD, where RustCrypto's GHASH is faster (docs/performance.md).
            EncrKind::Gmac => "rustcrypto",
            EncrKind::Cbc | EncrKind::Ctr => "rustcrypto",
            EncrKind::Null => "ipsec-crypto",
        };
        assert_eq!(p.encr_backend(d), Some(want), "{}", d.name);
    }
    // HMAC-SHA2-256 is RustCrypto's (faster on short inputs, docs/performance.md).
    for d in INTEG {
        let want = if d.icv_len == 16 {
            "rustcrypto"
        } else {
            "ring"
        };
        assert_eq!(p.integ(d.id).map(|a| a.backend()), Some(want), "{}", d.name);
    }
    for d in PRF {
        let want = if d.output_len == 32 {
            "rustcrypto"
        } else {
            "ring"
        };
        assert_eq!(p.prf(d.id).map(|a| a.backend()), Some(want), "{}", d.name);
    }
    for d in KE {
        let kx = p.kx(d.id).unwrap_or_else(|| panic!("{} missing", d.name));
        assert_eq!(
            (kx.public_len(), kx.response_len()),
            (d.public_len, d.response_len()),
            "{}",
            d.name
        );
        // aws-lc where it is the fastest (docs/performance.md), when built with it;
        // RustCrypto for what ring lacks: MODP, P-521, X448, ML-KEM.
        let aws = cfg!(feature = "awslc")
            && (d.is_kem() || d.id == KeId::CURVE25519 || d.id == KeId::ECP_384);
        let want = if aws {
            "aws-lc"
        } else if d.token.starts_with("modp")
            || d.token == "ecp521"
            || d.token == "x448"
            || d.is_kem()
        {
            "rustcrypto"
        } else {
            "ring"
        };
        assert_eq!(kx.backend(), want, "{}", d.name);
    }
    let mut r = [0u8; 16];
    p.secure_random.fill(&mut r).unwrap();
}

#[test]
fn rustcrypto_provider_is_pure_rust() {
    let p: &CryptoProvider = ipsec::rustcrypto_provider();
    assert!(p.aeads.iter().all(|a| a.backend() == "rustcrypto"));
    assert!(p.kx_groups.iter().all(|a| a.backend() == "rustcrypto"));
    // ML-KEM included (libcrux-ml-kem, pure Rust).
    assert!(KE.iter().all(|d| p.kx(d.id).is_some()));
    assert!(ENCR.iter().all(|d| p.supports_encr(d)));
    assert_eq!(ipsec::ring_provider().name, "ring");
}

#[test]
fn aeads_interoperate_across_backends() {
    let pairs: [(
        &dyn ipsec::crypto::AeadAlgorithm,
        &dyn ipsec::crypto::AeadAlgorithm,
    ); 5] = [
        (&ring_be::AES_128_GCM, &rc_be::AES_128_GCM),
        (&ring_be::AES_256_GCM, &rc_be::AES_256_GCM),
        (&ring_be::CHACHA20_POLY1305, &rc_be::CHACHA20_POLY1305),
        // The GMAC registrations are the same AES-GCM.
        (&ring_be::AES_128_GCM, &rc_be::AES_128_GMAC),
        (&ring_be::AES_256_GCM, &rc_be::AES_256_GMAC),
    ];
    for (a, b) in pairs {
        let k: Vec<u8> = (0..a.key_len() as u8).collect();
        let (ka, kb) = (a.new_key(&k).unwrap(), b.new_key(&k).unwrap());
        for len in [0usize, 1, 15, 16, 17, 64, 1400] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let nonce = [9u8; 12];
            let (mut da, mut db) = (pt.clone(), pt.clone());
            let (mut ta, mut tb) = ([0u8; 16], [0u8; 16]);
            ka.seal_detached(&nonce, b"aad", &mut da, &mut ta).unwrap();
            kb.seal_detached(&nonce, b"aad", &mut db, &mut tb).unwrap();
            assert_eq!((&da, ta), (&db, tb), "{a:?} vs {b:?} at {len}");
            kb.open_detached(&nonce, b"aad", &mut da, &ta).unwrap();
            ka.open_detached(&nonce, b"aad", &mut db, &tb).unwrap();
            assert_eq!(da, pt);
            assert_eq!(db, pt);
        }
    }
}

#[test]
fn hmacs_agree_across_backends() {
    for (a, b) in ring_be::PROVIDER.integs.iter().zip(rc_be::PROVIDER.integs) {
        assert_eq!(a.id(), b.id());
        let k = vec![0x5a; a.key_len()];
        let (ka, kb) = (a.new_key(&k).unwrap(), b.new_key(&k).unwrap());
        let mut icv = vec![0u8; a.icv_len()];
        ka.compute(&[b"esp header", b"payload", &[0, 0, 0, 1]], &mut icv)
            .unwrap();
        kb.verify(&[b"esp headerpayload\0\0\0\x01"], &icv).unwrap();
    }
    for (a, b) in ring_be::PROVIDER.prfs.iter().zip(rc_be::PROVIDER.prfs) {
        assert_eq!(a.id(), b.id());
        let (ka, kb) = (a.new_key(&[1; 200]).unwrap(), b.new_key(&[1; 200]).unwrap());
        let (mut oa, mut ob) = (vec![0u8; a.output_len()], vec![0u8; b.output_len()]);
        ka.compute(&[b"Ni", b"Nr"], &mut oa).unwrap();
        kb.compute(&[b"NiNr"], &mut ob).unwrap();
        assert_eq!(oa, ob);
    }
}

#[test]
fn key_exchange_interoperates_across_backends() {
    let rng = &ring_be::SYSTEM_RANDOM;
    let pairs: [(&dyn ipsec::crypto::KxGroup, &dyn ipsec::crypto::KxGroup); 3] = [
        (&ring_be::X25519, &rc_be::X25519),
        (&ring_be::ECP256, &rc_be::ECP256),
        (&ring_be::ECP384, &rc_be::ECP384),
    ];
    for (a, b) in pairs {
        // ring initiates, RustCrypto responds, and the other way round: the KE payload
        // encodings (RFC 5903 §7 x ‖ y) and shared secrets (x only) must match.
        let ia = a.start(rng).unwrap();
        let (rb, sb) = b.respond(&rc_be::OS_RANDOM, ia.public()).unwrap();
        assert!(ia.complete(&rb).unwrap() == sb, "{a:?} -> {b:?}");
        let ib = b.start(&rc_be::OS_RANDOM).unwrap();
        let (ra, sa) = a.respond(rng, ib.public()).unwrap();
        assert!(ib.complete(&ra).unwrap() == sa, "{b:?} -> {a:?}");
    }
}

#[cfg(feature = "awslc")]
#[test]
fn aws_lc_key_exchange_interoperates() {
    use ipsec::crypto_awslc as aws_be;
    let pairs: [(&dyn ipsec::crypto::KxGroup, &dyn ipsec::crypto::KxGroup); 9] = [
        (&aws_be::X25519, &ring_be::X25519),
        (&aws_be::ECP256, &ring_be::ECP256),
        (&aws_be::ECP384, &ring_be::ECP384),
        (&aws_be::X25519, &rc_be::X25519),
        (&aws_be::ECP256, &rc_be::ECP256),
        (&aws_be::ECP384, &rc_be::ECP384),
        // ML-KEM: aws-lc and libcrux, each as initiator and as responder.
        (&aws_be::ML_KEM_512, &rc_be::ML_KEM_512),
        (&aws_be::ML_KEM_768, &rc_be::ML_KEM_768),
        (&aws_be::ML_KEM_1024, &rc_be::ML_KEM_1024),
    ];
    let rng = &aws_be::SYSTEM_RANDOM;
    for (a, b) in pairs {
        for _ in 0..4 {
            let ia = a.start(rng).unwrap();
            let (rb, sb) = b.respond(&rc_be::OS_RANDOM, ia.public()).unwrap();
            assert_eq!(rb.len(), a.response_len(), "{a:?} -> {b:?}");
            assert!(ia.complete(&rb).unwrap() == sb, "{a:?} -> {b:?}");
            let ib = b.start(&rc_be::OS_RANDOM).unwrap();
            let (ra, sa) = a.respond(rng, ib.public()).unwrap();
            assert!(ib.complete(&ra).unwrap() == sa, "{b:?} -> {a:?}");
        }
    }
}

#[test]
fn default_provider_signs_with_ring() {
    use ipsec::crypto::SignatureScheme;
    for s in SignatureScheme::ALL {
        let v = DEFAULT_PROVIDER.signature_verifier(s).unwrap();
        assert_eq!(v.backend(), "ring", "{s:?}");
        // The pure-Rust provider verifies every scheme, and signs all but RSA.
        let rc = ipsec::rustcrypto_provider();
        assert!(rc.signature_verifier(s).is_some(), "{s:?}");
        assert_eq!(rc.signing_algorithm(s).is_some(), !s.is_rsa(), "{s:?}");
        if s.is_verify_only() {
            // RSA PKCS#1 v1.5 with SHA-1 (AUTH method 1): no provider signs with it.
            assert!(DEFAULT_PROVIDER.signing_algorithm(s).is_none(), "{s:?}");
            assert!(
                ipsec::ring_provider().signing_algorithm(s).is_none(),
                "{s:?}"
            );
            continue;
        }
        let a = DEFAULT_PROVIDER.signing_algorithm(s).unwrap();
        assert_eq!(a.backend(), "ring", "{s:?}");
    }
}

#[test]
fn signatures_interoperate_across_backends() {
    // ECDSA (both encodings) and Ed25519 both ways; RSA signed by ring, verified by
    // RustCrypto.
    let n = ipsec::crypto::testkit::check_signature_interop(&ring_be::PROVIDER, &rc_be::PROVIDER);
    assert!(n >= 22 + 14, "{n}");
}
