//! The Configuration payload ([RFC 7296 §3.15]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C| RESERVED    |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   CFG Type    |                    RESERVED                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                   Configuration Attributes                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Configuration Attribute (§3.15.1):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|         Attribute Type      |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                             Value                             ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Attribute values are kept as bytes; an empty value asks for one in a CFG_REQUEST.
//!
//! [RFC 7296 §3.15]: https://www.rfc-editor.org/rfc/rfc7296#section-3.15

use alloc::vec::Vec;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::ParseError;
use crate::field::{check_emit_len, len16, Reader, Writer};
use crate::registry::{CfgAttrType, CfgType};

const R_BIT: u16 = 0x8000;

/// The fixed part of a CP payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CpHeader {
    /// Configuration type.
    pub cfg_type: u8,
    /// Reserved.
    pub reserved: [u8; 3],
}

/// The header of a configuration attribute.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CpAttrHeader {
    /// Reserved bit and 15-bit attribute type.
    pub attr_type: U16,
    /// Length of the value.
    pub length: U16,
}

/// A view of a CP payload body.
#[derive(Clone, Copy, Debug)]
pub struct CpPayload<'a> {
    header: &'a CpHeader,
    attributes: &'a [u8],
}

fn parse_attr<'a>(r: &mut Reader<'a>) -> Result<(CpAttr<'a>, bool), ParseError> {
    let h: &'a CpAttrHeader = Ref::into_ref(r.header::<CpAttrHeader>()?);
    let value = r.take(usize::from(h.length.get()))?;
    let t = h.attr_type.get();
    Ok((
        CpAttr {
            attr_type: CfgAttrType(t & !R_BIT),
            value,
        },
        t & R_BIT == 0,
    ))
}

impl<'a> CpPayload<'a> {
    /// Parses a CP payload body.
    ///
    /// # Errors
    /// `Truncated` when the fixed part or an attribute is cut short.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header: &'a CpHeader = Ref::into_ref(r.header::<CpHeader>()?);
        let attributes = r.remaining();
        while !r.is_empty() {
            parse_attr(&mut r)?;
        }
        Ok(CpPayload { header, attributes })
    }

    /// Configuration type.
    pub fn cfg_type(&self) -> CfgType {
        CfgType(self.header.cfg_type)
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = CpAttr<'a>> + 'a {
        let mut r = Reader::new(self.attributes);
        core::iter::from_fn(move || parse_attr(&mut r).ok().map(|(a, _)| a))
    }

    /// True when the reserved bytes and every attribute's R bit are zero.
    pub fn reserved_clear(&self) -> bool {
        let mut r = Reader::new(self.attributes);
        let mut ok = self.header.reserved == [0; 3];
        while let Ok((_, clear)) = parse_attr(&mut r) {
            ok &= clear;
        }
        ok
    }
}

/// A configuration attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpAttr<'a> {
    /// The 15-bit attribute type.
    pub attr_type: CfgAttrType,
    /// The value (empty in a request for any value).
    pub value: &'a [u8],
}

/// A CP payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CpRepr<'a> {
    /// Configuration type.
    pub cfg_type: CfgType,
    /// Attributes, in order.
    pub attributes: Vec<CpAttr<'a>>,
}

impl<'a> CpRepr<'a> {
    /// Reads a parsed CP payload.
    pub fn parse(p: &CpPayload<'a>) -> Self {
        CpRepr {
            cfg_type: p.cfg_type(),
            attributes: p.attributes().collect(),
        }
    }

    /// Parses and reads a CP payload body.
    ///
    /// # Errors
    /// See [`CpPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&CpPayload::parse(body)?))
    }

    /// Length of the body [`CpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.attributes.iter().fold(4usize, |n, a| {
            n.saturating_add(4).saturating_add(a.value.len())
        })
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`CpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(self.cfg_type.0);
        w.zeros(3);
        for a in &self.attributes {
            w.u16(a.attr_type.0 & !R_BIT);
            w.u16(len16(a.value.len()));
            w.put(a.value);
        }
    }
}
