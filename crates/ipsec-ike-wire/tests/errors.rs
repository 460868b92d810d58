//! Every parse error kind, found in a real message, and the answer `error_response`
//! picks for it in each context.

use ipsec_ike_wire::{
    error_response, ErrorResponse, Message, NotifyType, ParseErrorKind, PayloadType, Trust,
};

/// IKE_SA_INIT request header (I flag) + one Nonce payload of 16 bytes.
fn init_request() -> Vec<u8> {
    let mut m = vec![
        1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 40, 0x20, 34, 0x08, 0, 0, 0, 0,
    ];
    m.extend_from_slice(&(28u32 + 20).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 20]);
    m.extend_from_slice(&[0x11; 16]);
    m
}

fn set_len(m: &mut [u8]) {
    let n = m.len() as u32;
    m[24..28].copy_from_slice(&n.to_be_bytes());
}

fn as_response(m: &[u8]) -> Vec<u8> {
    let mut r = m.to_vec();
    r[19] = 0x20;
    r
}

fn as_informational(m: &[u8]) -> Vec<u8> {
    let mut r = m.to_vec();
    r[18] = 37;
    r[23] = 1;
    r
}

#[test]
fn well_formed_request_parses() {
    Message::parse(&init_request()).unwrap();
}

#[test]
fn truncated_maps_to_invalid_syntax_only_when_authenticated() {
    let mut m = init_request();
    m.truncate(40);
    set_len(&mut m);
    let e = Message::parse(&m).unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::Truncated { .. }), "{e}");
    assert_eq!(
        error_response(&m, &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
    assert_eq!(
        error_response(&m, &e, Trust::Authenticated),
        ErrorResponse::InvalidSyntax
    );
    assert_eq!(
        ErrorResponse::InvalidSyntax.notify_type(),
        Some(NotifyType::INVALID_SYNTAX)
    );
    assert_eq!(
        error_response(&as_response(&m), &e, Trust::Authenticated),
        ErrorResponse::Silent
    );
    // Not even a header: nothing to answer.
    let e = Message::parse(&m[..10]).unwrap_err();
    assert_eq!(
        error_response(&m[..10], &e, Trust::Authenticated),
        ErrorResponse::Silent
    );
}

#[test]
fn length_field_maps_to_invalid_syntax_only_when_authenticated() {
    let mut m = init_request();
    m[31] = 3; // payload length below the generic header
    let e = Message::parse(&m).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LengthField);
    assert_eq!(e.offset, 28);
    assert_eq!(
        error_response(&m, &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
    assert_eq!(
        error_response(&m, &e, Trust::Authenticated),
        ErrorResponse::InvalidSyntax
    );
    assert_eq!(
        error_response(&as_response(&m), &e, Trust::Authenticated),
        ErrorResponse::Silent
    );
}

#[test]
fn bad_value_maps_to_invalid_syntax_only_when_authenticated() {
    let mut m = init_request();
    m.truncate(28 + 4 + 8); // a nonce of 8 bytes
    m[31] = 12;
    set_len(&mut m);
    let e = Message::parse(&m).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::BadValue("nonce length"));
    assert_eq!(e.offset, 32);
    assert_eq!(
        error_response(&m, &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
    assert_eq!(
        error_response(&m, &e, Trust::Authenticated),
        ErrorResponse::InvalidSyntax
    );
    assert_eq!(
        error_response(&as_response(&m), &e, Trust::Authenticated),
        ErrorResponse::Silent
    );
}

#[test]
fn unsupported_major_version_maps_to_invalid_major_version() {
    let mut m = init_request();
    m[17] = 0x30;
    let e = Message::parse(&m).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::UnsupportedMajorVersion { major: 3 });
    let r = error_response(&m, &e, Trust::Unauthenticated);
    assert_eq!(r, ErrorResponse::InvalidMajorVersion);
    assert_eq!(r.notify_type(), Some(NotifyType::INVALID_MAJOR_VERSION));
    assert_eq!(
        error_response(&as_response(&m), &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
    // IKEv1 on the same port is not answered.
    m[17] = 0x10;
    let e = Message::parse(&m).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::UnsupportedMajorVersion { major: 1 });
    assert_eq!(
        error_response(&m, &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
}

#[test]
fn unsupported_critical_payload_maps_to_its_notify() {
    let mut m = init_request();
    m[16] = 200; // first payload: unknown type 200
    m[29] = 0x80; // critical
    let e = Message::parse(&m).unwrap_err();
    let t = PayloadType(200);
    assert_eq!(
        e.kind,
        ParseErrorKind::UnsupportedCriticalPayload { payload_type: t }
    );
    assert_eq!(e.offset, 28);
    let r = error_response(&m, &e, Trust::Unauthenticated);
    assert_eq!(r, ErrorResponse::UnsupportedCriticalPayload(t));
    assert_eq!(
        r.notify_type(),
        Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD)
    );
    assert_eq!(r.notify_data(), &[200]);
    assert_eq!(error_response(&m, &e, Trust::Authenticated), r);
    // Outside IKE_SA_INIT, unauthenticated bytes are never answered.
    let info = as_informational(&m);
    assert_eq!(
        error_response(&info, &e, Trust::Unauthenticated),
        ErrorResponse::Silent
    );
    assert_eq!(error_response(&info, &e, Trust::Authenticated), r);
    assert_eq!(
        error_response(&as_response(&m), &e, Trust::Authenticated),
        ErrorResponse::Silent
    );
    // Without the critical bit the payload is kept raw.
    m[29] = 0;
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.payloads[0].payload_type(), t);
    assert_eq!(msg.to_vec(), m);
}

#[test]
fn silent_has_no_notify() {
    assert_eq!(ErrorResponse::Silent.notify_type(), None);
    assert!(ErrorResponse::Silent.notify_data().is_empty());
}
