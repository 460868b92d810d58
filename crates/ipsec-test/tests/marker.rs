//! IKE on port 4500 with and without the Non-ESP Marker (RFC 3948 §2.2):
//! `handle_datagram` takes whole datagrams and says when one looks like an IKE
//! message whose marker was stripped; `handle_ike_message` takes stripped ones.

use std::net::SocketAddr;
use std::sync::Arc;

use ipsec_ike::{Handled, IkeEndpoint, Instant, NON_ESP_MARKER};
use ipsec_test::{config, seeded_provider};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An IKE_SA_INIT request as an initiator sends it to port 4500: with the marker.
fn init_request_on_4500() -> Vec<u8> {
    let mut a = IkeEndpoint::new(Arc::new(config("@a.test")), seeded_provider(1));
    a.connect(
        Instant::ZERO,
        addr("192.0.2.1:4500"),
        addr("192.0.2.2:4500"),
    )
    .unwrap();
    let t = a.poll_transmit().unwrap();
    assert_eq!(t.payload[..4], NON_ESP_MARKER);
    t.payload
}

fn responder() -> IkeEndpoint {
    IkeEndpoint::new(Arc::new(config("@b.test")), seeded_provider(2))
}

#[test]
fn a_whole_datagram_on_4500_is_ike() {
    let d = init_request_on_4500();
    let mut b = responder();
    let h = b.handle_datagram(
        Instant::ZERO,
        addr("192.0.2.2:4500"),
        addr("192.0.2.1:4500"),
        &d,
    );
    assert_eq!(h, Handled::Ike);
    let answer = b.poll_transmit().expect("an IKE_SA_INIT response");
    assert_eq!(
        answer.payload[..4],
        NON_ESP_MARKER,
        "answered with the marker"
    );
}

#[test]
fn a_stripped_message_is_reported_and_taken_by_handle_ike_message() {
    let d = init_request_on_4500();
    let stripped = &d[4..];
    let mut b = responder();
    let (local, remote) = (addr("192.0.2.2:4500"), addr("192.0.2.1:4500"));
    assert_eq!(
        b.handle_datagram(Instant::ZERO, local, remote, stripped),
        Handled::MarkerMissing
    );
    assert!(b.poll_transmit().is_none(), "not processed");
    assert_eq!(b.stats().marker_missing, 1);
    assert_eq!(
        b.handle_ike_message(Instant::ZERO, local, remote, stripped),
        Handled::Ike
    );
    let answer = b.poll_transmit().expect("an IKE_SA_INIT response");
    assert_eq!(answer.payload[..4], NON_ESP_MARKER);
}

#[test]
fn esp_and_keepalives_on_4500_are_not_ike() {
    let mut b = responder();
    let (local, remote) = (addr("192.0.2.2:4500"), addr("192.0.2.1:4500"));
    let mut esp = [0u8; 100];
    esp[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    esp[4..8].copy_from_slice(&1u32.to_be_bytes());
    for d in [&esp[..], &[0xff][..], &[][..]] {
        assert_eq!(
            b.handle_datagram(Instant::ZERO, local, remote, d),
            Handled::NotIke
        );
    }
    assert_eq!(b.stats().marker_missing, 0);
    assert!(b.poll_transmit().is_none());
}
