//! The Security Association payload ([RFC 7296 §3.3]): proposals, transforms and
//! transform attributes.
//!
//! ```text
//! SA payload body: one or more Proposal substructures
//!
//! Proposal substructure (§3.3.1):
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |         Proposal Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        SPI (variable)                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        <Transforms>                           ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Transform substructure (§3.3.2):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |        Transform Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Transform Type |   RESERVED    |          Transform ID         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Transform Attributes                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Data attribute (§3.3.5):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |A|       Attribute Type        |    AF=0  Attribute Length     |
//! |F|                             |    AF=1  Attribute Value      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   AF=0  Attribute Value                       |
//! |                   AF=1  Not Transmitted                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Last Substruc is 2 before another proposal and 0 on the last one; 3 before another
//! transform and 0 on the last one. Parsing requires these, and every length and count,
//! to agree with the data.
//!
//! [RFC 7296 §3.3]: https://www.rfc-editor.org/rfc/rfc7296#section-3.3

use alloc::vec::Vec;

use ipsec_core::iana::{EncrId, EsnId, IntegId, KeId, PrfId, TransformType, ATTR_KEY_LENGTH};
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, len16, Reader, Writer};
use crate::registry::ProtocolId;

const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;
const LAST: u8 = 0;
/// The attribute-format bit: set for TV (type/value), clear for TLV.
const AF_TV: u16 = 0x8000;

/// Proposal substructure header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ProposalHeader {
    /// 0 for the last proposal, 2 otherwise.
    pub last_substruc: u8,
    /// Reserved.
    pub reserved: u8,
    /// Length of the proposal including SPI and transforms.
    pub length: U16,
    /// Proposal number.
    pub proposal_num: u8,
    /// Protocol ID.
    pub protocol_id: u8,
    /// SPI size in bytes.
    pub spi_size: u8,
    /// Number of transforms.
    pub num_transforms: u8,
}

/// Transform substructure header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TransformHeader {
    /// 0 for the last transform, 3 otherwise.
    pub last_substruc: u8,
    /// Reserved.
    pub reserved: u8,
    /// Length of the transform including its attributes.
    pub length: U16,
    /// Transform type.
    pub transform_type: u8,
    /// Reserved.
    pub reserved2: u8,
    /// Transform ID.
    pub transform_id: U16,
}

/// Transform attribute header (the whole attribute in TV format).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AttributeHeader {
    /// The AF bit and the 15-bit attribute type.
    pub af_type: U16,
    /// TV: the value; TLV: the length of the value that follows.
    pub length_or_value: U16,
}

/// A validated view of an SA payload body.
#[derive(Clone, Copy, Debug)]
pub struct SaPayload<'a> {
    body: &'a [u8],
}

/// A validated view of one proposal.
#[derive(Clone, Copy, Debug)]
pub struct ProposalPayload<'a> {
    header: &'a ProposalHeader,
    spi: &'a [u8],
    transforms: &'a [u8],
}

/// A validated view of one transform.
#[derive(Clone, Copy, Debug)]
pub struct TransformPayload<'a> {
    header: &'a TransformHeader,
    attributes: &'a [u8],
}

fn parse_attribute<'a>(r: &mut Reader<'a>) -> Result<TransformAttr<'a>, ParseError> {
    let h = r.header::<AttributeHeader>()?;
    let h: &'a AttributeHeader = Ref::into_ref(h);
    let t = h.af_type.get();
    let v = h.length_or_value.get();
    let attr_type = t & !AF_TV;
    if t & AF_TV != 0 {
        Ok(TransformAttr {
            attr_type,
            value: AttrValue::Tv(v),
        })
    } else {
        let data = r.take(usize::from(v))?;
        Ok(TransformAttr {
            attr_type,
            value: AttrValue::Tlv(data),
        })
    }
}

/// Splits off one transform: header, attributes. Checks lengths and attribute framing.
fn parse_transform<'a>(r: &mut Reader<'a>) -> Result<(TransformPayload<'a>, u8), ParseError> {
    let start = r.pos();
    let h: &'a TransformHeader = Ref::into_ref(r.header::<TransformHeader>()?);
    let len = usize::from(h.length.get());
    let Some(attr_len) = len.checked_sub(core::mem::size_of::<TransformHeader>()) else {
        return Err(Reader::error_at(ParseErrorKind::LengthField, start));
    };
    let attr_start = r.pos();
    let attributes = r.take(attr_len)?;
    let mut ar = Reader::new(attributes);
    while !ar.is_empty() {
        parse_attribute(&mut ar).map_err(|e| e.shifted(attr_start))?;
    }
    Ok((
        TransformPayload {
            header: h,
            attributes,
        },
        h.last_substruc,
    ))
}

fn parse_proposal<'a>(r: &mut Reader<'a>) -> Result<(ProposalPayload<'a>, u8), ParseError> {
    let start = r.pos();
    let h: &'a ProposalHeader = Ref::into_ref(r.header::<ProposalHeader>()?);
    let len = usize::from(h.length.get());
    let Some(rest_len) = len.checked_sub(core::mem::size_of::<ProposalHeader>()) else {
        return Err(Reader::error_at(ParseErrorKind::LengthField, start));
    };
    let rest_start = r.pos();
    let rest = r.take(rest_len)?;
    let mut pr = Reader::new(rest);
    let spi = pr
        .take(usize::from(h.spi_size))
        .map_err(|e| e.shifted(rest_start))?;
    let transforms = pr.remaining();
    let mut count: usize = 0;
    while !pr.is_empty() {
        let at = pr.pos();
        let (_, last) = parse_transform(&mut pr).map_err(|e| e.shifted(rest_start))?;
        count = count.saturating_add(1);
        let expected = if pr.is_empty() { LAST } else { MORE_TRANSFORMS };
        if last != expected {
            return Err(Reader::error_at(
                ParseErrorKind::BadValue("transform Last Substruc"),
                rest_start.saturating_add(at),
            ));
        }
    }
    if count != usize::from(h.num_transforms) {
        return Err(Reader::error_at(
            ParseErrorKind::BadValue("proposal transform count"),
            start,
        ));
    }
    Ok((
        ProposalPayload {
            header: h,
            spi,
            transforms,
        },
        h.last_substruc,
    ))
}

impl<'a> SaPayload<'a> {
    /// Validates an SA payload body: at least one proposal, and every proposal,
    /// transform and attribute well framed.
    ///
    /// # Errors
    /// `Truncated`/`LengthField` for framing defects, `BadValue` for Last Substruc
    /// values or transform counts that disagree with the data, or an empty payload.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        if r.is_empty() {
            return Err(r.error(ParseErrorKind::BadValue("SA payload without proposals")));
        }
        while !r.is_empty() {
            let at = r.pos();
            let (_, last) = parse_proposal(&mut r)?;
            let expected = if r.is_empty() { LAST } else { MORE_PROPOSALS };
            if last != expected {
                return Err(Reader::error_at(
                    ParseErrorKind::BadValue("proposal Last Substruc"),
                    at,
                ));
            }
        }
        Ok(SaPayload { body })
    }

    /// The proposals, in order.
    pub fn proposals(&self) -> impl Iterator<Item = ProposalPayload<'a>> + 'a {
        let mut r = Reader::new(self.body);
        core::iter::from_fn(move || parse_proposal(&mut r).ok().map(|(p, _)| p))
    }

    /// True when every reserved field is zero.
    pub fn reserved_clear(&self) -> bool {
        self.proposals().all(|p| {
            p.header.reserved == 0
                && p.transforms()
                    .all(|t| t.header.reserved == 0 && t.header.reserved2 == 0)
        })
    }
}

impl<'a> ProposalPayload<'a> {
    /// The raw header.
    pub fn header(&self) -> &'a ProposalHeader {
        self.header
    }

    /// Proposal number.
    pub fn number(&self) -> u8 {
        self.header.proposal_num
    }

    /// Protocol ID.
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId(self.header.protocol_id)
    }

    /// The SPI (empty in an IKE_SA_INIT proposal).
    pub fn spi(&self) -> &'a [u8] {
        self.spi
    }

    /// The transforms, in order.
    pub fn transforms(&self) -> impl Iterator<Item = TransformPayload<'a>> + 'a {
        let mut r = Reader::new(self.transforms);
        core::iter::from_fn(move || parse_transform(&mut r).ok().map(|(t, _)| t))
    }
}

impl<'a> TransformPayload<'a> {
    /// The raw header.
    pub fn header(&self) -> &'a TransformHeader {
        self.header
    }

    /// Transform type.
    pub fn transform_type(&self) -> TransformType {
        TransformType(self.header.transform_type)
    }

    /// Transform ID.
    pub fn id(&self) -> u16 {
        self.header.transform_id.get()
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = TransformAttr<'a>> + 'a {
        let mut r = Reader::new(self.attributes);
        core::iter::from_fn(move || parse_attribute(&mut r).ok())
    }
}

/// A transform attribute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrValue<'a> {
    /// Type/Value format (AF = 1): a 16-bit value.
    Tv(u16),
    /// Type/Length/Value format (AF = 0): a variable value of at most 65535 bytes.
    Tlv(&'a [u8]),
}

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransformAttr<'a> {
    /// The 15-bit attribute type (14 = Key Length).
    pub attr_type: u16,
    /// The value and its format.
    pub value: AttrValue<'a>,
}

impl TransformAttr<'_> {
    /// The Key Length attribute (TV, in bits).
    pub const fn key_length(bits: u16) -> TransformAttr<'static> {
        TransformAttr {
            attr_type: ATTR_KEY_LENGTH,
            value: AttrValue::Tv(bits),
        }
    }

    /// Bytes on the wire.
    pub const fn buffer_len(&self) -> usize {
        match self.value {
            AttrValue::Tv(_) => 4,
            AttrValue::Tlv(d) => d.len().saturating_add(4),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        let t = self.attr_type & !AF_TV;
        match self.value {
            AttrValue::Tv(v) => {
                w.u16(t | AF_TV);
                w.u16(v);
            }
            AttrValue::Tlv(d) => {
                w.u16(t);
                w.u16(len16(d.len()));
                w.put(d);
            }
        }
    }
}

/// A transform (RFC 7296 §3.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransformRepr<'a> {
    /// Transform type.
    pub transform_type: TransformType,
    /// Transform ID within its type's registry.
    pub id: u16,
    /// Attributes (in practice at most a Key Length).
    pub attributes: Vec<TransformAttr<'a>>,
}

impl<'a> TransformRepr<'a> {
    /// An encryption transform, with a Key Length attribute when `key_bits` is given.
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Self {
        TransformRepr {
            transform_type: TransformType::ENCR,
            id: id.0,
            attributes: key_bits
                .map(TransformAttr::key_length)
                .into_iter()
                .collect(),
        }
    }

    /// A PRF transform.
    pub fn prf(id: PrfId) -> Self {
        TransformRepr {
            transform_type: TransformType::PRF,
            id: id.0,
            attributes: Vec::new(),
        }
    }

    /// An integrity transform.
    pub fn integ(id: IntegId) -> Self {
        TransformRepr {
            transform_type: TransformType::INTEG,
            id: id.0,
            attributes: Vec::new(),
        }
    }

    /// A key exchange method transform.
    pub fn ke(id: KeId) -> Self {
        TransformRepr {
            transform_type: TransformType::KE,
            id: id.0,
            attributes: Vec::new(),
        }
    }

    /// An extended sequence numbers transform.
    pub fn esn(id: EsnId) -> Self {
        TransformRepr {
            transform_type: TransformType::ESN,
            id: id.0,
            attributes: Vec::new(),
        }
    }

    /// The Key Length attribute in bits, if present in TV format.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a.value {
            AttrValue::Tv(v) if a.attr_type == ATTR_KEY_LENGTH => Some(v),
            _ => None,
        })
    }

    /// Reads a validated transform.
    pub fn parse(t: &TransformPayload<'a>) -> Self {
        TransformRepr {
            transform_type: t.transform_type(),
            id: t.id(),
            attributes: t.attributes().collect(),
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        self.attributes
            .iter()
            .fold(8usize, |n, a| n.saturating_add(a.buffer_len()))
    }

    fn emit(&self, last: bool, w: &mut Writer<'_>) {
        w.u8(if last { LAST } else { MORE_TRANSFORMS });
        w.u8(0);
        w.u16(len16(self.buffer_len()));
        w.u8(self.transform_type.0);
        w.u8(0);
        w.u16(self.id);
        for a in &self.attributes {
            a.emit(w);
        }
    }
}

/// A proposal (RFC 7296 §3.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProposalRepr<'a> {
    /// Proposal number (1 for the first, counting up; the responder echoes the chosen one).
    pub number: u8,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// SPI: empty in IKE_SA_INIT, 8 bytes when rekeying an IKE SA, 4 for ESP and AH.
    pub spi: &'a [u8],
    /// Transforms (at most 255).
    pub transforms: Vec<TransformRepr<'a>>,
}

impl<'a> ProposalRepr<'a> {
    /// Reads a validated proposal.
    pub fn parse(p: &ProposalPayload<'a>) -> Self {
        ProposalRepr {
            number: p.number(),
            protocol: p.protocol(),
            spi: p.spi(),
            transforms: p.transforms().map(|t| TransformRepr::parse(&t)).collect(),
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        self.transforms
            .iter()
            .fold(8usize.saturating_add(self.spi.len()), |n, t| {
                n.saturating_add(t.buffer_len())
            })
    }

    fn emit(&self, last: bool, w: &mut Writer<'_>) {
        w.u8(if last { LAST } else { MORE_PROPOSALS });
        w.u8(0);
        w.u16(len16(self.buffer_len()));
        w.u8(self.number);
        w.u8(self.protocol.0);
        w.u8(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        w.u8(u8::try_from(self.transforms.len()).unwrap_or(u8::MAX));
        w.put(self.spi);
        let n = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(i.saturating_add(1) == n, w);
        }
    }
}

/// An SA payload (RFC 7296 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SaRepr<'a> {
    /// The proposals (at least one), in order of preference.
    pub proposals: Vec<ProposalRepr<'a>>,
}

impl<'a> SaRepr<'a> {
    /// Reads a validated SA payload.
    pub fn parse(sa: &SaPayload<'a>) -> Self {
        SaRepr {
            proposals: sa.proposals().map(|p| ProposalRepr::parse(&p)).collect(),
        }
    }

    /// Validates and reads an SA payload body.
    ///
    /// # Errors
    /// See [`SaPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&SaPayload::parse(body)?))
    }

    /// Length of the payload body [`SaRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.proposals
            .iter()
            .fold(0usize, |n, p| n.saturating_add(p.buffer_len()))
    }

    /// Writes the payload body. Counts and lengths must fit their fields (at most 255
    /// transforms and SPI bytes per proposal, 65535 bytes per substructure).
    ///
    /// # Panics
    /// When `buf` is shorter than [`SaRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(i.saturating_add(1) == n, &mut w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;
    use std::vec;

    // From rusticata ike-sa-init-req.bin: one IKE proposal, AES-CBC-128, PRF SHA1, ...
    const SA: &str = "00000034010100050300000c0100000c800e00800300000801000003030000080200000203000008030000020000000804000002";

    #[test]
    fn parse_sa_proposal() {
        let body = hex::decode(SA).unwrap();
        let sa = SaRepr::from_body(&body).unwrap();
        assert_eq!(sa.proposals.len(), 1);
        let p = &sa.proposals[0];
        assert_eq!(p.protocol, ProtocolId::IKE);
        assert_eq!(p.transforms.len(), 5);
        assert_eq!(
            p.transforms[0],
            TransformRepr::encr(EncrId::ENCR_AES_CBC, Some(128))
        );
        assert_eq!(p.transforms[0].key_length(), Some(128));
        let mut out = vec![0xaa; sa.buffer_len()];
        sa.emit(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn rejects_bad_counts_and_flags() {
        let body = hex::decode(SA).unwrap();
        let mut b = body.clone();
        b[7] = 4; // transform count
        assert!(matches!(
            SaRepr::from_body(&b).unwrap_err().kind,
            ParseErrorKind::BadValue(_)
        ));
        let mut b = body.clone();
        b[0] = 2; // claims more proposals
        assert!(matches!(
            SaRepr::from_body(&b).unwrap_err().kind,
            ParseErrorKind::BadValue(_)
        ));
        let mut b = body.clone();
        b[3] = 7; // proposal length below header
        assert_eq!(
            SaRepr::from_body(&b).unwrap_err().kind,
            ParseErrorKind::LengthField
        );
        assert!(SaRepr::from_body(&[]).is_err());
        for n in 0..body.len() {
            assert!(SaRepr::from_body(&body[..n]).is_err(), "{n}");
        }
    }
}
