//! The Traffic Selector payloads TSi and TSr ([RFC 7296 §3.13]).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Number of TSs |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       <Traffic Selectors>                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Traffic Selector (§3.13.1):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   TS Type     |IP Protocol ID*|       Selector Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Start Port*         |           End Port*           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Starting Address*                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Ending Address*                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! * for TS_IPV4_ADDR_RANGE (length 16) and TS_IPV6_ADDR_RANGE (length 40)
//! ```
//!
//! IPv4 and IPv6 ranges become [`ipsec_core::TrafficSelector`]s; selectors of other
//! types (Fibre Channel, security labels) keep their bytes after the first four.
//!
//! [RFC 7296 §3.13]: https://www.rfc-editor.org/rfc/rfc7296#section-3.13

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::{IpProto, TrafficSelector};
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Ref, Unaligned};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, len16, Reader, Writer};
use crate::registry::TsType;

/// Selector Length of a TS_IPV4_ADDR_RANGE.
pub const TS_IPV4_LEN: usize = 16;
/// Selector Length of a TS_IPV6_ADDR_RANGE.
pub const TS_IPV6_LEN: usize = 40;

/// The fixed part of a TS payload body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TsHeader {
    /// Number of traffic selectors.
    pub num_ts: u8,
    /// Reserved.
    pub reserved: [u8; 3],
}

/// The first four bytes of every traffic selector.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SelectorHeader {
    /// TS type.
    pub ts_type: u8,
    /// IP protocol for address ranges; type-specific otherwise.
    pub ip_proto: u8,
    /// Length of the selector including this header.
    pub length: U16,
}

/// A view of a TS payload body.
#[derive(Clone, Copy, Debug)]
pub struct TsPayload<'a> {
    header: &'a TsHeader,
    selectors: &'a [u8],
}

fn parse_selector<'a>(r: &mut Reader<'a>) -> Result<TsEntry<'a>, ParseError> {
    let start = r.pos();
    let h: &'a SelectorHeader = Ref::into_ref(r.header::<SelectorHeader>()?);
    let len = usize::from(h.length.get());
    let Some(rest_len) = len.checked_sub(4) else {
        return Err(Reader::error_at(ParseErrorKind::LengthField, start));
    };
    let ts_type = TsType(h.ts_type);
    let expected = match ts_type {
        TsType::TS_IPV4_ADDR_RANGE => Some(TS_IPV4_LEN),
        TsType::TS_IPV6_ADDR_RANGE => Some(TS_IPV6_LEN),
        _ => None,
    };
    if expected.is_some_and(|e| e != len) {
        return Err(Reader::error_at(ParseErrorKind::LengthField, start));
    }
    let rest = r.take(rest_len)?;
    let mut sr = Reader::new(rest);
    let ip = |sr: &mut Reader<'a>, n: usize| -> Option<(u16, u16, &'a [u8], &'a [u8])> {
        let sp = sr.take(2).ok()?;
        let ep = sr.take(2).ok()?;
        let a = sr.take(n).ok()?;
        let b = sr.take(n).ok()?;
        Some((
            u16::from_be_bytes(sp.try_into().ok()?),
            u16::from_be_bytes(ep.try_into().ok()?),
            a,
            b,
        ))
    };
    let addr_len = match ts_type {
        TsType::TS_IPV4_ADDR_RANGE => 4,
        TsType::TS_IPV6_ADDR_RANGE => 16,
        _ => {
            return Ok(TsEntry::Other {
                ts_type,
                second_byte: h.ip_proto,
                data: rest,
            });
        }
    };
    let (start_port, end_port, a, b) =
        ip(&mut sr, addr_len).ok_or(Reader::error_at(ParseErrorKind::LengthField, start))?;
    let to_addr = |x: &[u8]| -> Option<IpAddr> {
        match x.len() {
            4 => <[u8; 4]>::try_from(x)
                .ok()
                .map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            _ => <[u8; 16]>::try_from(x)
                .ok()
                .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        }
    };
    match (to_addr(a), to_addr(b)) {
        (Some(start_addr), Some(end_addr)) => Ok(TsEntry::Ip(TrafficSelector {
            start_addr,
            end_addr,
            protocol: IpProto(h.ip_proto),
            start_port,
            end_port,
        })),
        _ => Err(Reader::error_at(ParseErrorKind::LengthField, start)),
    }
}

impl<'a> TsPayload<'a> {
    /// Parses a TS payload body: the count must equal the selectors present, and each
    /// address range must have its exact length.
    ///
    /// # Errors
    /// `Truncated`/`LengthField` for framing defects, `BadValue` for a count that
    /// disagrees with the data.
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let header: &'a TsHeader = Ref::into_ref(r.header::<TsHeader>()?);
        let selectors = r.remaining();
        let mut count: usize = 0;
        while !r.is_empty() {
            parse_selector(&mut r)?;
            count = count.saturating_add(1);
        }
        if count != usize::from(header.num_ts) {
            return Err(Reader::error_at(
                ParseErrorKind::BadValue("number of TSs"),
                0,
            ));
        }
        Ok(TsPayload { header, selectors })
    }

    /// The selectors, in order.
    pub fn selectors(&self) -> impl Iterator<Item = TsEntry<'a>> + 'a {
        let mut r = Reader::new(self.selectors);
        core::iter::from_fn(move || parse_selector(&mut r).ok())
    }

    /// True when the reserved bytes are zero.
    pub fn reserved_clear(&self) -> bool {
        self.header.reserved == [0; 3]
    }
}

/// One traffic selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsEntry<'a> {
    /// TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE, by the family of the start address
    /// (both addresses must have the same family).
    Ip(TrafficSelector),
    /// Any other TS type, kept as bytes.
    Other {
        /// The TS type.
        ts_type: TsType,
        /// The byte after the type (the IP protocol in address ranges).
        second_byte: u8,
        /// The selector after its first four bytes.
        data: &'a [u8],
    },
}

impl TsEntry<'_> {
    /// Bytes on the wire.
    pub const fn buffer_len(&self) -> usize {
        match self {
            TsEntry::Ip(ts) => match ts.start_addr {
                IpAddr::V4(_) => TS_IPV4_LEN,
                IpAddr::V6(_) => TS_IPV6_LEN,
            },
            TsEntry::Other { data, .. } => data.len().saturating_add(4),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            TsEntry::Ip(ts) => {
                let v4 = ts.is_ipv4();
                w.u8(if v4 {
                    TsType::TS_IPV4_ADDR_RANGE.0
                } else {
                    TsType::TS_IPV6_ADDR_RANGE.0
                });
                w.u8(ts.protocol.0);
                w.u16(len16(self.buffer_len()));
                w.u16(ts.start_port);
                w.u16(ts.end_port);
                for a in [ts.start_addr, ts.end_addr] {
                    match (a, v4) {
                        (IpAddr::V4(x), true) => w.put(&x.octets()),
                        (IpAddr::V6(x), false) => w.put(&x.octets()),
                        // A family mismatch is a caller bug; write an all-zero address.
                        (_, true) => w.zeros(4),
                        (_, false) => w.zeros(16),
                    }
                }
            }
            TsEntry::Other {
                ts_type,
                second_byte,
                data,
            } => {
                w.u8(ts_type.0);
                w.u8(*second_byte);
                w.u16(len16(self.buffer_len()));
                w.put(data);
            }
        }
    }
}

/// A TSi or TSr payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TsRepr<'a> {
    /// The selectors (at most 255).
    pub selectors: Vec<TsEntry<'a>>,
}

impl<'a> TsRepr<'a> {
    /// A payload of IP selectors.
    pub fn from_selectors(ts: &[TrafficSelector]) -> Self {
        TsRepr {
            selectors: ts.iter().copied().map(TsEntry::Ip).collect(),
        }
    }

    /// The IP selectors, skipping other types.
    pub fn ip_selectors(&self) -> impl Iterator<Item = TrafficSelector> + '_ {
        self.selectors.iter().filter_map(|s| match s {
            TsEntry::Ip(t) => Some(*t),
            TsEntry::Other { .. } => None,
        })
    }

    /// Reads a parsed TS payload.
    pub fn parse(p: &TsPayload<'a>) -> Self {
        TsRepr {
            selectors: p.selectors().collect(),
        }
    }

    /// Parses and reads a TS payload body.
    ///
    /// # Errors
    /// See [`TsPayload::parse`].
    pub fn from_body(body: &'a [u8]) -> Result<Self, ParseError> {
        Ok(Self::parse(&TsPayload::parse(body)?))
    }

    /// Length of the body [`TsRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.selectors
            .iter()
            .fold(4usize, |n, s| n.saturating_add(s.buffer_len()))
    }

    /// Writes the payload body.
    ///
    /// # Panics
    /// When `buf` is shorter than [`TsRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let mut w = Writer::new(buf);
        w.u8(u8::try_from(self.selectors.len()).unwrap_or(u8::MAX));
        w.zeros(3);
        for s in &self.selectors {
            s.emit(&mut w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;
    use std::vec;

    #[test]
    fn roundtrip_v4_v6_and_other() {
        let a = TrafficSelector::from_prefix("10.0.0.0".parse().unwrap(), 8)
            .unwrap()
            .with_ports(IpProto::TCP, 80, 443);
        let b = TrafficSelector::any_v6();
        let label = [1u8, 2, 3];
        let mut repr = TsRepr::from_selectors(&[a, b]);
        repr.selectors.push(TsEntry::Other {
            ts_type: TsType::TS_SECLABEL,
            second_byte: 0,
            data: &label,
        });
        let mut out = vec![0xee; repr.buffer_len()];
        repr.emit(&mut out);
        assert_eq!(out.len(), 4 + 16 + 40 + 7);
        let back = TsRepr::from_body(&out).unwrap();
        assert_eq!(back, repr);
        assert_eq!(back.ip_selectors().count(), 2);
        for n in 0..out.len() {
            assert!(TsRepr::from_body(&out[..n]).is_err());
        }
        let mut bad = out.clone();
        bad[0] = 2;
        assert!(matches!(
            TsRepr::from_body(&bad).unwrap_err().kind,
            ParseErrorKind::BadValue(_)
        ));
        let mut bad = out;
        bad[7] = 17; // IPv4 selector length 17
        assert_eq!(
            TsRepr::from_body(&bad).unwrap_err().kind,
            ParseErrorKind::LengthField
        );
    }
}
