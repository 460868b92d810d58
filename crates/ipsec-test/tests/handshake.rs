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
                reason: CloseReason::AuthenticationFailed
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
                reason: CloseReason::AuthenticationFailed
            }
        ))
        .is_some(),
        "{:?}",
        p.b.events
    );
    assert!(p.a.installed().is_empty() && p.b.installed().is_empty());
}
