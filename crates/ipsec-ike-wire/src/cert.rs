//! The Certificate and Certificate Request payloads ([RFC 7296 §3.6], [§3.7]).
//!
//! ```text
//! CERT:
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Cert Encoding |                                               |
//! +-+-+-+-+-+-+-+-+                                               |
//! ~                       Certificate Data                        ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! CERTREQ:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Cert Encoding |                                               |
//! +-+-+-+-+-+-+-+-+                                               |
//! ~                    Certification Authority                    ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 7296 §3.6]: https://www.rfc-editor.org/rfc/rfc7296#section-3.6
//! [§3.7]: https://www.rfc-editor.org/rfc/rfc7296#section-3.7

use crate::error::ParseError;
use crate::field::{check_emit_len, Reader, Writer};
use crate::registry::CertEncoding;

/// Length of a SHA-1 hash in a CERTREQ for X.509 certificates (RFC 7296 §3.7).
pub const CA_HASH_LEN: usize = 20;

/// A view of a CERT or CERTREQ payload body.
#[derive(Clone, Copy, Debug)]
pub struct CertPayload<'a> {
    encoding: u8,
    data: &'a [u8],
}

impl<'a> CertPayload<'a> {
    /// Parses a CERT or CERTREQ payload body.
    ///
    /// # Errors
    /// `Truncated` when the body is empty.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let enc = r.take(1)?;
        Ok(CertPayload {
            encoding: enc.first().copied().unwrap_or(0),
            data: r.take_rest(),
        })
    }

    /// The certificate encoding.
    pub fn encoding(&self) -> CertEncoding {
        CertEncoding(self.encoding)
    }

    /// The certificate data (CERT) or certification authority data (CERTREQ).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// A CERT payload, or a CERTREQ payload (same layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertRepr<'a> {
    /// The encoding.
    pub encoding: CertEncoding,
    /// CERT: the certificate; CERTREQ: the certification authority data (for X.509,
    /// concatenated SHA-1 hashes of trusted CAs' public keys).
    pub data: &'a [u8],
}

impl<'a> CertRepr<'a> {
    /// Reads a parsed CERT or CERTREQ payload.
    pub fn parse(p: &CertPayload<'a>) -> Self {
        CertRepr {
            encoding: p.encoding(),
            data: p.data(),
        }
    }

    /// Parses and reads a CERT or CERTREQ payload body.
    ///
    /// # Errors
    /// See [`CertPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&CertPayload::parse(body)?))
    }

    /// In a CERTREQ for X.509 certificates: the 20-byte CA key hashes (an incomplete
    /// trailing piece is skipped).
    pub fn ca_hashes(&self) -> impl Iterator<Item = &'a [u8; CA_HASH_LEN]> + 'a {
        self.data
            .chunks_exact(CA_HASH_LEN)
            .filter_map(|c| c.try_into().ok())
    }

    /// Length of the body [`CertRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(1)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`CertRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.encoding.0);
        w.put(self.data);
    }
}
