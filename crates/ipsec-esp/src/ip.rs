//! Crate-internal glue to [`ipsec_core::ip::walk`], the IPv4/IPv6 header walker ESP
//! shares with AH: the checks and stopping points ESP uses, and the mapping of the
//! walker's errors into ESP's (in one place: [`parse_error`], `From<WalkError> for
//! LocateError`).
//!
//! What ESP asks of the walker (RFC 4303 §3.1.1, RFC 8200 §4.1): when protecting, the
//! hop-by-hop, routing and fragment headers and the destination options for the hops of
//! a routing header stay in front of ESP, and the last destination options header (for
//! the final destination) is protected; a received packet is walked to its ESP or
//! UDP-encapsulated ESP header. IPv4 fragments and non-atomic IPv6 fragments are
//! refused (RFC 4303 §3.3.4, §3.4.1). Unlike AH, ESP refuses every IPv6 payload
//! length of 0 and accepts several routing headers; the IPv4 header checksum is
//! verified on received outer headers only.

use ipsec_core::ip::walk::{self, Checks, IpVersion, Stop, WalkError, WalkErrorKind};
use ipsec_core::IpProto;

use crate::wire::ParseError;

/// Where the IP header (with the extension headers in front of ESP) ends.
pub(crate) use ipsec_core::ip::walk::Located;

#[cfg(test)]
const HOPOPT: u8 = IpProto::HOPOPT.0;
#[cfg(test)]
const ROUTING: u8 = IpProto::IPV6_ROUTE.0;
#[cfg(test)]
const FRAGMENT: u8 = IpProto::IPV6_FRAG.0;
#[cfg(test)]
const DSTOPTS: u8 = IpProto::IPV6_OPTS.0;

/// What a received packet is walked to: ESP, or UDP carrying ESP (RFC 3948).
const ESP_OR_UDP: Stop = Stop::At(&[IpProto::ESP, IpProto::UDP]);

/// ESP's checks: the IPv4 checksum only when asked (received outer headers).
const fn checks(verify_checksum: bool) -> Checks {
    Checks::new().with_v4_checksum(verify_checksum)
}

/// Why [`locate`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocateError {
    /// Malformed header.
    Parse(ParseError),
    /// A fragment (not a whole datagram).
    Fragment,
    /// [`Walk::ToEsp`] met an upper-layer protocol other than ESP or UDP.
    NotEsp,
}

impl From<WalkError> for LocateError {
    fn from(e: WalkError) -> Self {
        match e.kind {
            WalkErrorKind::Fragment(_) => Self::Fragment,
            WalkErrorKind::NotFound => Self::NotEsp,
            _ => Self::Parse(parse_error(e)),
        }
    }
}

/// The walker's error as ESP's [`ParseError`], same kind and offset.
fn parse_error(e: WalkError) -> ParseError {
    match e.kind {
        WalkErrorKind::Truncated { needed } => ParseError::truncated(e.offset, needed),
        WalkErrorKind::LengthField => ParseError::length_field(e.offset),
        WalkErrorKind::BadValue(what) => ParseError::bad_value(e.offset, what),
        WalkErrorKind::Fragment(_) => ParseError::bad_value(e.offset, "fragment"),
        WalkErrorKind::NotFound => ParseError::bad_value(e.offset, "next header is not esp"),
        _ => ParseError::bad_value(e.offset, "ip header"),
    }
}

/// How far to walk the IPv6 extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// To where ESP goes when protecting (upper layer or final destination options).
    Protect,
    /// To the ESP (or UDP-encapsulated ESP) header of a received packet.
    ToEsp,
}

/// The IP version from the first nibble (4 or 6, else an error).
pub(crate) fn version(packet: &[u8]) -> Result<IpVersion, ParseError> {
    walk::version(packet).map_err(parse_error)
}

/// Checks an IPv4 header: version, IHL, lengths, and (with `verify_checksum`) the
/// header checksum. Returns header and total length.
pub(crate) fn check_v4(packet: &[u8], verify_checksum: bool) -> Result<(usize, usize), ParseError> {
    walk::check_v4(packet, checks(verify_checksum)).map_err(parse_error)
}

/// Checks the fixed IPv6 header and returns the total length (40 + payload length).
pub(crate) fn check_v6(packet: &[u8]) -> Result<usize, ParseError> {
    walk::check_v6(packet, checks(false)).map_err(parse_error)
}

/// Finds where ESP goes (or is) in an IPv4 or IPv6 packet.
///
/// IPv4 fragments and non-atomic IPv6 fragments are refused: ESP works on whole
/// datagrams (RFC 4303 §3.3.4, §3.4.1). For IPv4, [`Walk::ToEsp`] does not look at the
/// protocol field: the caller does.
pub(crate) fn locate(
    packet: &[u8],
    walk: Walk,
    verify_checksum: bool,
) -> Result<Located, LocateError> {
    let stop = match walk {
        Walk::Protect => Stop::Protect,
        Walk::ToEsp => ESP_OR_UDP,
    };
    Ok(walk::locate(packet, stop, checks(verify_checksum))?)
}

/// Sets the length field and the protocol / next header byte of `split`'s header
/// (`header`, moved or not) to `total_len` and `proto`, and for IPv4 the checksum.
pub(crate) fn fix(
    header: &mut [u8],
    split: &Located,
    total_len: usize,
    proto: IpProto,
) -> Result<(), ParseError> {
    walk::fix(header, split.version, total_len, split.proto_offset, proto).map_err(parse_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn v6(nh: u8, ext: &[u8], payload: usize) -> Vec<u8> {
        let mut p = alloc::vec![0u8; 40];
        p[0] = 0x60;
        let pl = u16::try_from(ext.len() + payload).unwrap();
        p[4..6].copy_from_slice(&pl.to_be_bytes());
        p[6] = nh;
        p.extend_from_slice(ext);
        p.resize(40 + ext.len() + payload, 0xab);
        p
    }

    #[test]
    fn walk_keeps_hop_by_hop_routing_and_leading_dstopts() {
        // HbH -> DstOpts -> Routing -> DstOpts -> TCP
        let mut ext = Vec::new();
        ext.extend_from_slice(&[DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[DSTOPTS, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        let p = v6(HOPOPT, &ext, 20);
        let s = locate(&p, Walk::Protect, false).unwrap();
        assert_eq!(
            (s.header_len, s.proto, s.proto_offset),
            (64, IpProto(DSTOPTS), 56)
        );
        let p = v6(HOPOPT, &ext[..24], 0);
        assert!(matches!(
            locate(&p, Walk::ToEsp, false),
            Err(LocateError::Parse(_))
        ));
        let mut to_tcp = ext[..24].to_vec();
        to_tcp[16] = 6;
        let p = v6(HOPOPT, &to_tcp, 8);
        assert_eq!(
            locate(&p, Walk::ToEsp, false).unwrap_err(),
            LocateError::NotEsp
        );
        to_tcp[16] = 50;
        let p = v6(HOPOPT, &to_tcp, 8);
        assert_eq!(locate(&p, Walk::ToEsp, false).unwrap().header_len, 64);
    }

    /// Which packets the walker refuses is tested next to it (`ipsec_core::ip::walk`);
    /// here, how ESP names its errors.
    #[test]
    fn maps_walk_errors() {
        let p = v6(FRAGMENT, &[6, 0, 0, 9, 0, 0, 0, 1], 8);
        assert_eq!(
            locate(&p, Walk::Protect, false).unwrap_err(),
            LocateError::Fragment
        );
        let p = v6(ROUTING, &[6, 9], 0);
        assert!(matches!(
            locate(&p, Walk::Protect, false),
            Err(LocateError::Parse(_))
        ));
    }
}
