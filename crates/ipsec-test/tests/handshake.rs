//! IKE_SA_INIT + IKE_AUTH between two endpoints.

use ipsec_ike::{CloseReason, Event};
use ipsec_test::{assert_mirrored, config, Pair};

fn establish(ike: &str, esp: &str) -> Pair {
    let a = config("@a.test")
        .with_ike_proposals(ike)
        .unwrap()
        .with_esp_proposals(esp)
        .unwrap();
    let b = config("@b.test")
        .with_ike_proposals(ike)
        .unwrap()
        .with_esp_proposals(esp)
        .unwrap();
    let mut p = Pair::new(a, b, 1);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "a: {:?}", p.a.events);
    let suite = p.a.find(|e| matches!(e, Event::IkeSaEstablished { .. }));
    match suite {
        Some(Event::IkeSaEstablished { suite, .. }) => {
            let want = ike_canonical(ike);
            assert_eq!(suite, &want);
        }
        _ => panic!("no IkeSaEstablished: {:?}", p.a.events),
    }
    assert_eq!(
        p.b.count(|e| matches!(e, Event::IkeSaEstablished { .. })),
        1
    );
    let a = p.a.installed();
    let b = p.b.installed();
    assert_eq!(a.len(), 1, "{:?}", p.a.events);
    assert_eq!(b.len(), 1, "{:?}", p.b.events);
    assert_mirrored(a[0].1, b[0].1);
    p
}

fn ike_canonical(s: &str) -> String {
    ipsec_ike::Proposal::parse(ipsec_ike::ProposalKind::Ike, s)
        .unwrap()
        .to_string()
}

#[test]
fn establish_aes128gcm_x25519() {
    establish("aes128gcm16-prfsha256-x25519", "aes128gcm16");
}

#[test]
fn establish_aes256gcm_ecp384() {
    establish("aes256gcm16-prfsha384-ecp384", "aes256gcm16");
}

#[test]
fn establish_cbc_hmac() {
    let p = establish("aes256-sha384-x25519", "aes256-sha384");
    let a = p.a.installed();
    assert_eq!(
        a[0].1.integ,
        ipsec_core::iana::IntegId::AUTH_HMAC_SHA2_384_192
    );
    assert_eq!(a[0].1.encr_key_bits, 256);
}

#[test]
fn establish_chacha() {
    let p = establish("chacha20poly1305-prfsha256-x25519", "chacha20poly1305");
    assert_eq!(p.a.installed()[0].1.inbound_keys.encr().len(), 36);
}

/// strongSwan's default proposals include AES-CTR, AES-CCM, ECP-521, Curve448 and
/// MODP-4096: each negotiates and keys an IKE SA (AES-CTR in the SK payload per
/// RFC 5930, AES-CCM per RFC 5282) and a Child SA with the right key material.
#[test]
fn establish_ctr_ccm_and_the_larger_groups() {
    use ipsec_core::iana::EncrId;
    let p = establish("aes256ctr-sha256-ecp521", "aes128ccm16");
    let a = p.a.installed();
    assert_eq!(a[0].1.encr, Some(EncrId::ENCR_AES_CCM_16));
    // RFC 4309 §7.1: key and a 3-byte salt.
    assert_eq!(a[0].1.inbound_keys.encr().len(), 16 + 3);

    let p = establish("aes128ccm12-prfsha256-x448", "aes192ctr-sha256");
    let a = p.a.installed();
    assert_eq!(a[0].1.encr, Some(EncrId::ENCR_AES_CTR));
    assert_eq!(a[0].1.encr_key_bits, 192);
    // RFC 3686 §5.1: key and a 4-byte nonce.
    assert_eq!(a[0].1.inbound_keys.encr().len(), 24 + 4);

    establish("aes128ccm8-prfsha512-modp4096", "aes256ccm8");
    // strongSwan's spellings: `curve448`, and the ICV in bits.
    establish("aes192ccm96-prfsha384-curve448", "aes128ctr-sha1");
}

#[test]
fn wrong_psk_fails_authentication() {
    let a = config("@a.test");
    let mut b = config("@b.test");
    b.psk = "another key".into();
    let mut p = Pair::new(a, b, 2);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert!(
        p.a.find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::AuthenticationFailed(ipsec_ike::AuthFailure::RejectedByPeer)
            }
        ))
        .is_some(),
        "{:?}",
        p.a.events
    );
    assert!(
        p.b.find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::AuthenticationFailed(ipsec_ike::AuthFailure::WrongSharedKey)
            }
        ))
        .is_some(),
        "{:?}",
        p.b.events
    );
    assert!(p.a.installed().is_empty() && p.b.installed().is_empty());
}

/// Each side reports the identity the peer authenticated with (what a gateway binds
/// per-peer policy to).
#[test]
fn established_carries_the_authenticated_peer_identity() {
    let mut p = Pair::new(config("@a.test"), config("alice@b.test"), 3);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));
    let peer = |events: &[(ipsec_ike::SaHandle, Event)]| {
        events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
            _ => None,
        })
    };
    assert_eq!(peer(&p.a.events), Some("alice@b.test".parse().unwrap()));
    assert_eq!(peer(&p.b.events), Some("@a.test".parse().unwrap()));
}

#[test]
fn identities_of_other_types_are_kept_as_they_were_on_the_wire() {
    use ipsec_ike::Identity;
    use ipsec_ike_wire::IdType;
    let dn = Identity::from_wire_or_other(IdType::ID_DER_ASN1_DN, &[0x30, 0x00]);
    assert_eq!(
        dn,
        Identity::Other {
            id_type: IdType::ID_DER_ASN1_DN,
            data: vec![0x30, 0x00]
        }
    );
    assert_eq!(dn.id_type(), IdType::ID_DER_ASN1_DN);
    assert_eq!(dn.data(), vec![0x30, 0x00]);
    // A malformed address keeps its bytes too.
    let bad = Identity::from_wire_or_other(IdType::ID_IPV4_ADDR, &[10, 0, 0]);
    assert!(matches!(bad, Identity::Other { .. }));
    assert_eq!(
        Identity::from_wire_or_other(IdType::ID_FQDN, b"gw.test"),
        "@gw.test".parse().unwrap()
    );
}
