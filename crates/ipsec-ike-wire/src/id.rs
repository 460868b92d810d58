//! The Identification payloads IDi and IDr ([RFC 7296 §3.5]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   ID Type     |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                   Identification Data                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The same body layout serves the AUTH-less identity forms of every ID type; the data is
//! kept as bytes, with typed accessors for the address and string types.
//!
//! [RFC 7296 §3.5]: https://www.rfc-editor.org/rfc/rfc7296#section-3.5

use core::net::{Ipv4Addr, Ipv6Addr};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Reader, Writer};
use crate::registry::IdType;

/// The fixed part of an ID payload body (also the layout of the AUTH payload's).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IdHeader {
    /// ID type.
    pub id_type: u8,
    /// Reserved.
    pub reserved: [u8; 3],
}

/// A view of an ID payload body.
#[derive(Clone, Copy, Debug)]
pub struct IdPayload<'a> {
    header: &'a IdHeader,
    data: &'a [u8],
}

impl<'a> IdPayload<'a> {
    /// Parses an ID payload body.
    ///
    /// # Errors
    /// `Truncated` when shorter than the 4-byte fixed part.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header = Ref::into_ref(r.header::<IdHeader>()?);
        Ok(IdPayload {
            header,
            data: r.take_rest(),
        })
    }

    /// The ID type.
    pub fn id_type(&self) -> IdType {
        IdType(self.header.id_type)
    }

    /// The identification data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// True when the reserved bytes are zero.
    pub fn reserved_clear(&self) -> bool {
        self.header.reserved == [0; 3]
    }
}

/// An identity (IDi or IDr payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdRepr<'a> {
    /// The ID type.
    pub id_type: IdType,
    /// The identification data (4 bytes for IPv4, 16 for IPv6).
    pub data: &'a [u8],
}

impl<'a> IdRepr<'a> {
    /// An identity of type `id_type` with `data`.
    pub const fn new(id_type: IdType, data: &'a [u8]) -> Self {
        IdRepr { id_type, data }
    }

    /// An ID_FQDN identity.
    pub const fn fqdn(name: &'a str) -> Self {
        IdRepr {
            id_type: IdType::ID_FQDN,
            data: name.as_bytes(),
        }
    }

    /// An ID_RFC822_ADDR identity.
    pub const fn rfc822(addr: &'a str) -> Self {
        IdRepr {
            id_type: IdType::ID_RFC822_ADDR,
            data: addr.as_bytes(),
        }
    }

    /// An ID_IPV4_ADDR identity over the four octets in `octets`.
    pub const fn ipv4(octets: &'a [u8; 4]) -> Self {
        IdRepr {
            id_type: IdType::ID_IPV4_ADDR,
            data: octets,
        }
    }

    /// An ID_IPV6_ADDR identity over the sixteen octets in `octets`.
    pub const fn ipv6(octets: &'a [u8; 16]) -> Self {
        IdRepr {
            id_type: IdType::ID_IPV6_ADDR,
            data: octets,
        }
    }

    /// Reads a parsed ID payload, checking the length of address identities.
    ///
    /// # Errors
    /// `BadValue` when an ID_IPV4_ADDR is not 4 bytes or an ID_IPV6_ADDR not 16.
    pub fn parse(p: &IdPayload<'a>) -> Result<Self, ParseError> {
        let r = IdRepr {
            id_type: p.id_type(),
            data: p.data(),
        };
        match r.id_type {
            IdType::ID_IPV4_ADDR if r.data.len() != 4 => Err(ParseError::new(
                ParseErrorKind::BadValue("ID_IPV4_ADDR length"),
                4,
            )),
            IdType::ID_IPV6_ADDR if r.data.len() != 16 => Err(ParseError::new(
                ParseErrorKind::BadValue("ID_IPV6_ADDR length"),
                4,
            )),
            _ => Ok(r),
        }
    }

    /// Parses and reads an ID payload body.
    ///
    /// # Errors
    /// See [`IdPayload::parse`] and [`IdRepr::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse(&IdPayload::parse(body)?)
    }

    /// The address of an ID_IPV4_ADDR identity.
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        match self.id_type {
            IdType::ID_IPV4_ADDR => <[u8; 4]>::try_from(self.data).ok().map(Ipv4Addr::from),
            _ => None,
        }
    }

    /// The address of an ID_IPV6_ADDR identity.
    pub fn as_ipv6(&self) -> Option<Ipv6Addr> {
        match self.id_type {
            IdType::ID_IPV6_ADDR => <[u8; 16]>::try_from(self.data).ok().map(Ipv6Addr::from),
            _ => None,
        }
    }

    /// The name of an ID_FQDN identity, when it is valid UTF-8.
    pub fn as_fqdn(&self) -> Option<&'a str> {
        match self.id_type {
            IdType::ID_FQDN => core::str::from_utf8(self.data).ok(),
            _ => None,
        }
    }

    /// The address of an ID_RFC822_ADDR identity, when it is valid UTF-8.
    pub fn as_rfc822(&self) -> Option<&'a str> {
        match self.id_type {
            IdType::ID_RFC822_ADDR => core::str::from_utf8(self.data).ok(),
            _ => None,
        }
    }

    /// Length of the body [`IdRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(4)
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`IdRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.id_type.0);
        w.zeros(3);
        w.put(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;
    use std::vec;

    #[test]
    fn typed_accessors() {
        let a = [192, 0, 2, 1];
        let id = IdRepr::ipv4(&a);
        assert_eq!(id.as_ipv4(), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(id.as_fqdn(), None);
        let f = IdRepr::fqdn("vpn.example.org");
        assert_eq!(f.as_fqdn(), Some("vpn.example.org"));
        let mut out = vec![0; f.buffer_len()];
        f.emit(&mut out);
        assert_eq!(IdRepr::from_body(&out).unwrap(), f);
        let six = [0u8; 16];
        assert_eq!(IdRepr::ipv6(&six).as_ipv6(), Some(Ipv6Addr::UNSPECIFIED));
        assert_eq!(IdRepr::rfc822("a@b").as_rfc822(), Some("a@b"));
    }

    #[test]
    fn rejects_bad_address_lengths() {
        assert!(IdRepr::from_body(&[1, 0, 0, 0, 1, 2, 3]).is_err());
        assert!(IdRepr::from_body(&[5, 0, 0, 0, 1, 2, 3, 4]).is_err());
        assert!(IdRepr::from_body(&[1, 0, 0]).is_err());
    }
}
