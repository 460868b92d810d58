//! The one place that decides what a responder answers to a malformed message:
//! [`error_response`] maps any [`ParseError`], with what is known about the message it
//! came from, to the answer RFC 7296 §2.21 allows: `INVALID_SYNTAX`,
//! `UNSUPPORTED_CRITICAL_PAYLOAD`, `INVALID_MAJOR_VERSION`, or silence.

use crate::error::{ParseError, ParseErrorKind};
use crate::header::{Flags, HEADER_LEN};
use crate::registry::{ExchangeType, NotifyType, PayloadType};

/// How far a message has been authenticated when the error was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trust {
    /// Nothing has been verified: the error was found in the unprotected part of a
    /// message (an IKE_SA_INIT message, or the outside of an SK-protected one before
    /// its integrity check).
    Unauthenticated,
    /// The error was found in the decrypted contents of an SK payload whose ICV
    /// verified and whose Message ID is within the window: the peer sent it.
    Authenticated,
}

/// What a responder sends back for a malformed message (RFC 7296 §2.21).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorResponse {
    /// Send nothing: responses are never answered, and unauthenticated garbage is
    /// dropped so that forged messages cannot make us reflect traffic or leak state.
    Silent,
    /// `INVALID_SYNTAX`, inside the protected response.
    InvalidSyntax,
    /// `UNSUPPORTED_CRITICAL_PAYLOAD` with the 1-octet payload type as notification data.
    UnsupportedCriticalPayload(PayloadType),
    /// An unprotected `INVALID_MAJOR_VERSION` response whose header carries version 2.0,
    /// the highest we support (RFC 7296 §2.5).
    InvalidMajorVersion,
}

impl ErrorResponse {
    /// The notify type to send, if any.
    pub const fn notify_type(self) -> Option<NotifyType> {
        match self {
            ErrorResponse::Silent => None,
            ErrorResponse::InvalidSyntax => Some(NotifyType::INVALID_SYNTAX),
            ErrorResponse::UnsupportedCriticalPayload(_) => {
                Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD)
            }
            ErrorResponse::InvalidMajorVersion => Some(NotifyType::INVALID_MAJOR_VERSION),
        }
    }

    /// The notification data that goes with [`ErrorResponse::notify_type`]: the payload
    /// type for `UNSUPPORTED_CRITICAL_PAYLOAD`, nothing otherwise.
    pub fn notify_data(&self) -> &[u8] {
        match self {
            ErrorResponse::UnsupportedCriticalPayload(t) => core::slice::from_ref(&t.0),
            _ => &[],
        }
    }
}

/// Decides what a responder answers to `error`, found while parsing `message` (the
/// whole received IKE message, from the IKE header on) at the given [`Trust`].
///
/// This is the only place where parse defects become notifications:
/// - A message too short to hold an IKE header, and any message with the Response flag
///   set, gets no answer (RFC 7296 §2.21.4: responses are never answered).
/// - A major version above 2 gets `INVALID_MAJOR_VERSION` (§2.5); lower versions (IKEv1
///   on the shared port) get nothing, since such a peer would not understand it.
/// - `UNSUPPORTED_CRITICAL_PAYLOAD` is answered in authenticated messages and in
///   IKE_SA_INIT requests, which are never protected (§3.2).
/// - Every other defect is `INVALID_SYNTAX` once the message is authenticated and
///   silence before: "this status may only be returned for and in an encrypted packet if
///   the Message ID and cryptographic checksum were valid" (§3.10.1).
pub fn error_response(message: &[u8], error: &ParseError, trust: Trust) -> ErrorResponse {
    let Some(header) = message.get(..HEADER_LEN) else {
        return ErrorResponse::Silent;
    };
    let (Some(&exchange), Some(&flags)) = (header.get(18), header.get(19)) else {
        return ErrorResponse::Silent;
    };
    if Flags(flags).is_response() {
        return ErrorResponse::Silent;
    }
    let is_init = ExchangeType(exchange) == ExchangeType::IKE_SA_INIT;
    match (error.kind, trust) {
        (ParseErrorKind::UnsupportedMajorVersion { major }, _) => {
            if major > 2 {
                ErrorResponse::InvalidMajorVersion
            } else {
                ErrorResponse::Silent
            }
        }
        (ParseErrorKind::UnsupportedCriticalPayload { payload_type }, Trust::Authenticated) => {
            ErrorResponse::UnsupportedCriticalPayload(payload_type)
        }
        (ParseErrorKind::UnsupportedCriticalPayload { payload_type }, Trust::Unauthenticated)
            if is_init =>
        {
            ErrorResponse::UnsupportedCriticalPayload(payload_type)
        }
        (_, Trust::Authenticated) => ErrorResponse::InvalidSyntax,
        (_, Trust::Unauthenticated) => ErrorResponse::Silent,
    }
}
