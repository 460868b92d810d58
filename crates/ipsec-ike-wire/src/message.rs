//! Typed payloads and whole messages.
//!
//! [`Payload`] is the repr of any payload; [`Message`] is an IKE header with its
//! payload chain. `Message::parse` followed by `Message::emit` reproduces the input byte
//! for byte when the input is canonical ([`is_canonical`]): reserved fields zero and
//! no critical bit on payload types this crate knows. Anything else about the input
//! (minor version, flags, proposal numbers, attribute formats, payload order) is kept.

use alloc::vec::Vec;

use crate::auth::{AuthPayload, AuthRepr};
use crate::cert::CertRepr;
use crate::cp::{CpPayload, CpRepr};
use crate::delete::DeleteRepr;
use crate::eap::EapRepr;
use crate::encrypted::{SkRepr, SkfRepr};
use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Writer};
use crate::header::{IkeHeaderRepr, IkePacket, HEADER_LEN};
use crate::id::{IdPayload, IdRepr};
use crate::ke::{KePayload, KeRepr};
use crate::nonce::{NonceRepr, VendorIdRepr};
use crate::notify::NotifyRepr;
use crate::payload::{emit_generic_header, PayloadIter, RawPayload, GENERIC_HEADER_LEN};
use crate::registry::PayloadType;
use crate::sa::{SaPayload, SaRepr};
use crate::ts::{TsPayload, TsRepr};

/// A payload of a type this crate does not interpret, kept as bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownPayload<'a> {
    /// Its type.
    pub payload_type: PayloadType,
    /// The critical bit (always clear in parsed messages: a critical unknown payload
    /// is an error).
    pub critical: bool,
    /// The body after the generic header.
    pub body: &'a [u8],
}

/// Any payload, as a semantic value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// Security Association.
    Sa(SaRepr<'a>),
    /// Key Exchange.
    Ke(KeRepr<'a>),
    /// Identification - Initiator.
    IdI(IdRepr<'a>),
    /// Identification - Responder.
    IdR(IdRepr<'a>),
    /// Certificate.
    Cert(CertRepr<'a>),
    /// Certificate Request.
    CertReq(CertRepr<'a>),
    /// Authentication.
    Auth(AuthRepr<'a>),
    /// Nonce.
    Nonce(NonceRepr<'a>),
    /// Notify.
    Notify(NotifyRepr<'a>),
    /// Delete.
    Delete(DeleteRepr<'a>),
    /// Vendor ID.
    VendorId(VendorIdRepr<'a>),
    /// Traffic Selector - Initiator.
    TsI(TsRepr<'a>),
    /// Traffic Selector - Responder.
    TsR(TsRepr<'a>),
    /// Encrypted and Authenticated (must be last).
    Sk(SkRepr<'a>),
    /// Configuration.
    Cp(CpRepr<'a>),
    /// Extensible Authentication.
    Eap(EapRepr<'a>),
    /// Encrypted and Authenticated Fragment (must be last).
    Skf(SkfRepr<'a>),
    /// A non-critical payload of a type not interpreted here.
    Unknown(UnknownPayload<'a>),
}

impl<'a> Payload<'a> {
    /// Interprets a raw payload.
    ///
    /// # Errors
    /// The body's own parse errors (offsets relative to the chain), and
    /// `UnsupportedCriticalPayload` for an unknown type with the critical bit set.
    pub fn parse(raw: &RawPayload<'a>) -> Result<Self, ParseError> {
        let b = raw.body;
        let p = match raw.payload_type {
            PayloadType::SA => SaRepr::from_body(b).map(Payload::Sa),
            PayloadType::KE => KeRepr::from_body(b).map(Payload::Ke),
            PayloadType::IDI => IdRepr::from_body(b).map(Payload::IdI),
            PayloadType::IDR => IdRepr::from_body(b).map(Payload::IdR),
            PayloadType::CERT => CertRepr::from_body(b).map(Payload::Cert),
            PayloadType::CERTREQ => CertRepr::from_body(b).map(Payload::CertReq),
            PayloadType::AUTH => AuthRepr::from_body(b).map(Payload::Auth),
            PayloadType::NONCE => NonceRepr::from_body(b).map(Payload::Nonce),
            PayloadType::NOTIFY => NotifyRepr::from_body(b).map(Payload::Notify),
            PayloadType::DELETE => DeleteRepr::from_body(b).map(Payload::Delete),
            PayloadType::VENDOR_ID => Ok(Payload::VendorId(VendorIdRepr::from_body(b))),
            PayloadType::TSI => TsRepr::from_body(b).map(Payload::TsI),
            PayloadType::TSR => TsRepr::from_body(b).map(Payload::TsR),
            PayloadType::SK => Ok(Payload::Sk(SkRepr {
                first_inner: raw.next_payload,
                data: b,
            })),
            PayloadType::CP => CpRepr::from_body(b).map(Payload::Cp),
            PayloadType::EAP => Ok(Payload::Eap(EapRepr::from_body(b))),
            PayloadType::SKF => SkfRepr::from_body(raw.next_payload, b).map(Payload::Skf),
            t if raw.is_critical() => {
                return Err(ParseError::new(
                    ParseErrorKind::UnsupportedCriticalPayload { payload_type: t },
                    raw.body_offset.saturating_sub(GENERIC_HEADER_LEN),
                ));
            }
            t => Ok(Payload::Unknown(UnknownPayload {
                payload_type: t,
                critical: false,
                body: b,
            })),
        };
        p.map_err(|e| e.shifted(raw.body_offset))
    }

    /// The payload type.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::IdI(_) => PayloadType::IDI,
            Payload::IdR(_) => PayloadType::IDR,
            Payload::Cert(_) => PayloadType::CERT,
            Payload::CertReq(_) => PayloadType::CERTREQ,
            Payload::Auth(_) => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::TsI(_) => PayloadType::TSI,
            Payload::TsR(_) => PayloadType::TSR,
            Payload::Sk(_) => PayloadType::SK,
            Payload::Cp(_) => PayloadType::CP,
            Payload::Eap(_) => PayloadType::EAP,
            Payload::Skf(_) => PayloadType::SKF,
            Payload::Unknown(u) => u.payload_type,
        }
    }

    /// Length of the body (without the generic header).
    pub fn body_len(&self) -> usize {
        match self {
            Payload::Sa(p) => p.buffer_len(),
            Payload::Ke(p) => p.buffer_len(),
            Payload::IdI(p) | Payload::IdR(p) => p.buffer_len(),
            Payload::Cert(p) | Payload::CertReq(p) => p.buffer_len(),
            Payload::Auth(p) => p.buffer_len(),
            Payload::Nonce(p) => p.buffer_len(),
            Payload::Notify(p) => p.buffer_len(),
            Payload::Delete(p) => p.buffer_len(),
            Payload::VendorId(p) => p.buffer_len(),
            Payload::TsI(p) | Payload::TsR(p) => p.buffer_len(),
            Payload::Sk(p) => p.buffer_len(),
            Payload::Cp(p) => p.buffer_len(),
            Payload::Eap(p) => p.buffer_len(),
            Payload::Skf(p) => p.buffer_len(),
            Payload::Unknown(u) => u.body.len(),
        }
    }

    /// Length with the generic header.
    pub fn buffer_len(&self) -> usize {
        self.body_len().saturating_add(GENERIC_HEADER_LEN)
    }

    /// Writes the generic header (with `next` as Next Payload, except for SK and SKF,
    /// which carry their first inner payload type) and the body. The body must fit the
    /// 16-bit Payload Length (at most [`crate::payload::MAX_BODY_LEN`] bytes).
    ///
    /// # Panics
    /// When `buf` is shorter than [`Payload::buffer_len`].
    pub fn emit(&self, next: PayloadType, buf: &mut [u8]) {
        let body_len = self.body_len();
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        let (next, critical) = match self {
            Payload::Sk(p) => (p.first_inner, false),
            Payload::Skf(p) => (p.first_inner, false),
            Payload::Unknown(u) => (next, u.critical),
            _ => (next, false),
        };
        emit_generic_header(&mut w, next, critical, body_len);
        let body = w.slot(body_len);
        match self {
            Payload::Sa(p) => p.emit(body),
            Payload::Ke(p) => p.emit(body),
            Payload::IdI(p) | Payload::IdR(p) => p.emit(body),
            Payload::Cert(p) | Payload::CertReq(p) => p.emit(body),
            Payload::Auth(p) => p.emit(body),
            Payload::Nonce(p) => p.emit(body),
            Payload::Notify(p) => p.emit(body),
            Payload::Delete(p) => p.emit(body),
            Payload::VendorId(p) => p.emit(body),
            Payload::TsI(p) | Payload::TsR(p) => p.emit(body),
            Payload::Sk(p) => p.emit(body),
            Payload::Cp(p) => p.emit(body),
            Payload::Eap(p) => p.emit(body),
            Payload::Skf(p) => p.emit(body),
            Payload::Unknown(u) => Writer::new(body).put(u.body),
        }
    }
}

/// Parses a whole payload chain whose first payload has type `first`.
///
/// # Errors
/// The first error of [`PayloadIter`] or of [`Payload::parse`].
pub fn parse_payloads(first: PayloadType, chain: &[u8]) -> Result<Vec<Payload<'_>>, ParseError> {
    PayloadIter::new(first, chain)
        .map(|r| r.and_then(|raw| Payload::parse(&raw)))
        .collect()
}

/// Bytes [`emit_payloads`] writes for `payloads`.
pub fn payloads_len(payloads: &[Payload<'_>]) -> usize {
    payloads
        .iter()
        .fold(0usize, |n, p| n.saturating_add(p.buffer_len()))
}

/// Type of the first payload of a chain ([`PayloadType::NONE`] when empty).
pub fn first_type(payloads: &[Payload<'_>]) -> PayloadType {
    payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type)
}

/// Writes a payload chain, linking the Next Payload fields. An SK or SKF payload
/// belongs last.
///
/// # Panics
/// When `buf` is shorter than [`payloads_len`].
pub fn emit_payloads(payloads: &[Payload<'_>], buf: &mut [u8]) {
    check_emit_len(buf.len(), payloads_len(payloads));
    let mut w = Writer::new(buf);
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i.saturating_add(1))
            .map_or(PayloadType::NONE, Payload::payload_type);
        p.emit(next, w.slot(p.buffer_len()));
    }
}

/// An IKE message: header and payloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message<'a> {
    /// The header (Next Payload and Length follow from `payloads`).
    pub header: IkeHeaderRepr,
    /// The payloads in order. An SK or SKF payload, if any, is last.
    pub payloads: Vec<Payload<'a>>,
}

impl<'a> Message<'a> {
    /// Parses a whole IKE message (one UDP payload without the non-ESP marker).
    ///
    /// # Errors
    /// Any header, chain or payload defect, with the offset in `bytes`. Pass the error
    /// to [`crate::error_response`] to decide what to answer.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let packet = IkePacket::parse(bytes)?;
        let header = IkeHeaderRepr::parse(&packet);
        let first = packet.next_payload();
        let chain = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        let payloads = PayloadIter::with_offset(first, chain, HEADER_LEN)
            .map(|r| r.and_then(|raw| Payload::parse(&raw)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Message { header, payloads })
    }

    /// The SK payload, if the message has one.
    pub fn sk(&self) -> Option<&SkRepr<'a>> {
        match self.payloads.last() {
            Some(Payload::Sk(sk)) => Some(sk),
            _ => None,
        }
    }

    /// Bytes [`Message::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(payloads_len(&self.payloads))
    }

    /// Writes the message.
    ///
    /// # Panics
    /// When `buf` is shorter than [`Message::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        check_emit_len(buf.len(), len);
        let (h, rest) = buf.split_at_mut(HEADER_LEN);
        self.header.emit(
            first_type(&self.payloads),
            u32::try_from(len).unwrap_or(u32::MAX),
            h,
        );
        emit_payloads(&self.payloads, rest);
    }

    /// The message as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = alloc::vec![0; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

/// Whether `message` parses and is in the canonical form [`Message::emit`] produces:
/// no reserved bit set in any generic payload header or payload body, and no critical
/// bit on a payload type this crate interprets. (RFC 7296 has receivers ignore both,
/// so [`Message::parse`] accepts them; re-emitting clears them.)
pub fn is_canonical(message: &[u8]) -> bool {
    let Ok(packet) = IkePacket::parse(message) else {
        return false;
    };
    let chain = message.get(HEADER_LEN..).unwrap_or(&[]);
    PayloadIter::new(packet.next_payload(), chain).all(|r| {
        let Ok(raw) = r else { return false };
        if !raw.reserved_clear() || (raw.payload_type.is_known() && raw.is_critical()) {
            return false;
        }
        raw_payload_canonical(&raw) && Payload::parse(&raw).is_ok()
    })
}

/// Whether a payload body's reserved fields are zero (true for types without any).
pub fn raw_payload_canonical(raw: &RawPayload<'_>) -> bool {
    let b = raw.body;
    match raw.payload_type {
        PayloadType::SA => SaPayload::parse(b).is_ok_and(|p| p.reserved_clear()),
        PayloadType::KE => KePayload::parse(b).is_ok_and(|p| p.reserved_clear()),
        PayloadType::IDI | PayloadType::IDR => {
            IdPayload::parse(b).is_ok_and(|p| p.reserved_clear())
        }
        PayloadType::AUTH => AuthPayload::parse(b).is_ok_and(|p| p.reserved_clear()),
        PayloadType::TSI | PayloadType::TSR => {
            TsPayload::parse(b).is_ok_and(|p| p.reserved_clear())
        }
        PayloadType::CP => CpPayload::parse(b).is_ok_and(|p| p.reserved_clear()),
        _ => true,
    }
}
