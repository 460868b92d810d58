//! EAP-MSCHAPv2 messages (draft-kamath-pppext-eap-mschapv2-02 §2): the EAP type
//! data after the Type byte.
//!
//! ```text
//! Challenge, Response, Success request, Failure request:
//!   OpCode (1) | MS-CHAPv2-ID (1) | MS-Length (2) | Value-Size, Value, Name / Message
//! Success response, Failure response:
//!   OpCode (1)
//! ```
//!
//! MS-Length is the length of the type data (the EAP Length less 5). It is written
//! correctly and not checked on input: the data runs to the end of the EAP packet.

use alloc::string::String;
use alloc::vec::Vec;

use crate::eap::EapError;

/// OpCode of the authenticator's challenge (RFC 2759 §4).
pub(crate) const OP_CHALLENGE: u8 = 1;
/// OpCode of the peer's response (RFC 2759 §4).
pub(crate) const OP_RESPONSE: u8 = 2;
/// OpCode of a Success request and its one-byte acknowledgement.
pub(crate) const OP_SUCCESS: u8 = 3;
/// OpCode of a Failure request and its one-byte acknowledgement.
pub(crate) const OP_FAILURE: u8 = 4;

/// Value-Size of a Challenge: the 16-byte authenticator challenge.
const CHALLENGE_SIZE: u8 = 16;
/// Value-Size of a Response: peer challenge (16), reserved (8), NT-Response (24),
/// flags (1) (RFC 2759 §4).
const RESPONSE_SIZE: u8 = 49;
/// OpCode, MS-CHAPv2-ID and MS-Length.
const HEADER: usize = 4;

/// A message from the authenticator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    /// The authenticator challenge and the authenticator's name.
    Challenge {
        id: u8,
        challenge: [u8; 16],
        name: &'a [u8],
    },
    /// The text `S=<auth_string> M=<message>`.
    Success { id: u8, message: &'a [u8] },
    /// The text `E=.. R=.. C=.. V=.. M=..`.
    Failure { id: u8, message: &'a [u8] },
}

/// A message from the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// The peer's answer to the challenge.
    Response {
        id: u8,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        name: &'a [u8],
    },
    /// The peer accepted our Success request.
    SuccessAck,
    /// The peer acknowledged our Failure request, or gave up.
    FailureAck,
}

/// The header of a long message: (opcode, MS-CHAPv2-ID, the rest).
fn header(b: &[u8]) -> Result<(u8, u8, &[u8]), EapError> {
    let (h, rest) = b.split_at_checked(HEADER).ok_or(EapError::Truncated)?;
    Ok((h[0], h[1], rest))
}

/// Parses the type data of a Request.
///
/// # Errors
/// [`EapError::Truncated`] for fewer bytes than the message needs,
/// [`EapError::Malformed`] for a wrong Value-Size or an OpCode that does not come
/// from an authenticator (Change-Password and unknown ones included).
pub(crate) fn parse_request(b: &[u8]) -> Result<Request<'_>, EapError> {
    let (op, id, rest) = header(b)?;
    match op {
        OP_CHALLENGE => {
            let (&size, rest) = rest.split_first().ok_or(EapError::Truncated)?;
            if size != CHALLENGE_SIZE {
                return Err(EapError::Malformed);
            }
            let (c, name) = rest.split_at_checked(16).ok_or(EapError::Truncated)?;
            let mut challenge = [0u8; 16];
            challenge.copy_from_slice(c);
            Ok(Request::Challenge {
                id,
                challenge,
                name,
            })
        }
        OP_SUCCESS => Ok(Request::Success { id, message: rest }),
        OP_FAILURE => Ok(Request::Failure { id, message: rest }),
        _ => Err(EapError::Malformed),
    }
}

/// Parses the type data of a Response.
///
/// # Errors
/// [`EapError::Truncated`] for fewer bytes than the message needs,
/// [`EapError::Malformed`] for a wrong Value-Size or an OpCode that does not come
/// from a peer.
pub(crate) fn parse_response(b: &[u8]) -> Result<Reply<'_>, EapError> {
    match b.first() {
        None => Err(EapError::Truncated),
        Some(&OP_SUCCESS) => Ok(Reply::SuccessAck),
        Some(&OP_FAILURE) => Ok(Reply::FailureAck),
        Some(&OP_RESPONSE) => {
            let (_, id, rest) = header(b)?;
            let (&size, rest) = rest.split_first().ok_or(EapError::Truncated)?;
            if size != RESPONSE_SIZE {
                return Err(EapError::Malformed);
            }
            let (v, name) = rest
                .split_at_checked(usize::from(RESPONSE_SIZE))
                .ok_or(EapError::Truncated)?;
            // Reserved (8 bytes) and Flags are zero from a conforming peer and
            // ignored here (RFC 2759 §4).
            let mut peer_challenge = [0u8; 16];
            peer_challenge.copy_from_slice(&v[..16]);
            let mut nt_response = [0u8; 24];
            nt_response.copy_from_slice(&v[24..48]);
            Ok(Reply::Response {
                id,
                peer_challenge,
                nt_response,
                name,
            })
        }
        Some(_) => Err(EapError::Malformed),
    }
}

/// A long message: header with MS-Length, then `body`.
fn long(op: u8, id: u8, body: &[&[u8]]) -> Result<Vec<u8>, EapError> {
    let len = HEADER + body.iter().map(|p| p.len()).sum::<usize>();
    let ms_len = u16::try_from(len).map_err(|_| EapError::BadLength)?;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&[op, id]);
    v.extend_from_slice(&ms_len.to_be_bytes());
    for p in body {
        v.extend_from_slice(p);
    }
    Ok(v)
}

/// A Challenge.
///
/// # Errors
/// [`EapError::BadLength`] for a name too long for MS-Length.
pub(crate) fn challenge(id: u8, challenge: &[u8; 16], name: &[u8]) -> Result<Vec<u8>, EapError> {
    long(OP_CHALLENGE, id, &[&[CHALLENGE_SIZE], challenge, name])
}

/// A Response (reserved bytes and flags zero).
///
/// # Errors
/// [`EapError::BadLength`] for a name too long for MS-Length.
pub(crate) fn response(
    id: u8,
    peer_challenge: &[u8; 16],
    nt_response: &[u8; 24],
    name: &[u8],
) -> Result<Vec<u8>, EapError> {
    long(
        OP_RESPONSE,
        id,
        &[
            &[RESPONSE_SIZE],
            peer_challenge,
            &[0; 8],
            nt_response,
            &[0],
            name,
        ],
    )
}

/// A Success request: `S=<40 upper-case hex digits> M=<message>` (RFC 2759 §5).
pub(crate) fn success_request(id: u8, auth: &[u8; 20], message: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(45 + message.len());
    text.extend_from_slice(b"S=");
    hex_upper(auth, &mut text);
    text.extend_from_slice(b" M=");
    text.extend_from_slice(message.as_bytes());
    // Bounded by the caller's message, which is ours (a few dozen bytes).
    long(OP_SUCCESS, id, &[&text]).unwrap_or_default()
}

/// A Failure request: `E=<error> R=<0|1> C=<32 hex digits> V=3 M=<message>`
/// (RFC 2759 §6).
pub(crate) fn failure_request(id: u8, error: u32, challenge: &[u8; 16], message: &str) -> Vec<u8> {
    use core::fmt::Write;
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write!(s, "E={error} R=0 C=");
    let mut text = s.into_bytes();
    hex_upper(challenge, &mut text);
    text.extend_from_slice(b" V=3 M=");
    text.extend_from_slice(message.as_bytes());
    long(OP_FAILURE, id, &[&text]).unwrap_or_default()
}

/// Appends `b` as upper-case hex digits.
fn hex_upper(b: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &x in b {
        out.push(DIGITS[usize::from(x >> 4)]);
        out.push(DIGITS[usize::from(x & 15)]);
    }
}

/// One hex digit, either case.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Exactly `2 * N` hex digits as `N` bytes.
fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// The message text without the NUL terminator some authenticators send with it
/// (strongSwan's Success request ends in one).
fn trim_nul(mut t: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = t {
        t = rest;
    }
    t
}

/// The text of an `M=` field: everything after it to the end (RFC 2759 §5, §6 put
/// it last, and it may contain spaces), as UTF-8 with invalid bytes replaced.
fn message_field(t: &[u8]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// The authenticator response and the message of a Success request's text
/// (`S=<40 hex digits>`, then optionally ` M=<message>`; RFC 2759 §5).
///
/// # Errors
/// [`EapError::Malformed`] when the text does not start with `S=` and exactly 40
/// hex digits (either case).
pub(crate) fn parse_success(text: &[u8]) -> Result<([u8; 20], String), EapError> {
    let t = trim_nul(text);
    let rest = t.strip_prefix(b"S=").ok_or(EapError::Malformed)?;
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let (hex, tail) = rest.split_at(end);
    let auth = unhex::<20>(hex).ok_or(EapError::Malformed)?;
    let message = tail
        .strip_prefix(b" M=")
        .map(message_field)
        .unwrap_or_default();
    Ok((auth, message))
}

/// What an authenticator's Failure request says (RFC 2759 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsChapV2Failure {
    /// `E=`: 691 for a wrong password or an unknown user; 646 restricted logon
    /// hours, 647 account disabled, 648 password expired, 649 no dial-in
    /// permission, 709 error changing the password.
    pub error: u32,
    /// `R=1`: the authenticator would take another try.
    pub retry: bool,
    /// `V=`: the password-change protocol version the authenticator speaks.
    pub version: Option<u32>,
    /// `M=`: the text meant for the user.
    pub message: String,
}

/// A decimal number of at most 10 digits.
fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    s.iter().try_fold(0u32, |n, &c| {
        let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u32::from(d))
    })
}

/// Parses a Failure request's text: space-separated `E=`, `R=`, `C=`, `V=` fields,
/// then `M=` to the end. Fields it does not know are skipped; `C=` is read for its
/// form only (this implementation does not retry).
///
/// # Errors
/// [`EapError::Malformed`] without a decimal `E=`, or with a `C=` that is not 32
/// hex digits.
pub(crate) fn parse_failure(text: &[u8]) -> Result<MsChapV2Failure, EapError> {
    let mut t = trim_nul(text);
    let mut f = MsChapV2Failure {
        error: 0,
        retry: false,
        version: None,
        message: String::new(),
    };
    let mut have_error = false;
    while !t.is_empty() {
        if let Some(m) = t.strip_prefix(b"M=") {
            f.message = message_field(m);
            break;
        }
        let end = t.iter().position(|&c| c == b' ').unwrap_or(t.len());
        let (field, rest) = t.split_at(end);
        t = rest.strip_prefix(b" ").unwrap_or(rest);
        if let Some(e) = field.strip_prefix(b"E=") {
            f.error = decimal(e).ok_or(EapError::Malformed)?;
            have_error = true;
        } else if let Some(r) = field.strip_prefix(b"R=") {
            f.retry = r == b"1";
        } else if let Some(c) = field.strip_prefix(b"C=") {
            unhex::<16>(c).ok_or(EapError::Malformed)?;
        } else if let Some(v) = field.strip_prefix(b"V=") {
            f.version = decimal(v);
        }
    }
    if !have_error {
        return Err(EapError::Malformed);
    }
    Ok(f)
}
