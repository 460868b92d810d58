//! Walking an IPv4 or IPv6 header to where an IPsec header goes (or is), and fixing
//! the length and protocol fields around it: one implementation for ESP and AH.
//!
//! ```text
//! IPv6 extension headers in front of ESP or AH (RFC 4303 §3.1.1, RFC 4302 §3.1.1,
//! RFC 8200 §4.1):
//! +-------------+-----------+---------+-----------+----------+--------+-----------+
//! | IPv6 header | hop-by-hop| dest    | routing   | fragment | ESP/AH | dest opt* |
//! |             |           | options*|           | (atomic) |        | upper ... |
//! +-------------+-----------+---------+-----------+----------+--------+-----------+
//!     * destination options for the hops of a routing header stay in front of the
//!       IPsec header; those for the final destination follow it. A received packet
//!       may carry destination options on either side, so [`Stop::At`] walks over
//!       any of them.
//!
//! Extension header (hop-by-hop, routing, destination options):
//! +---------------+---------------+-------------------------------+
//! |  Next Header  |  Hdr Ext Len  |  (Hdr Ext Len + 1) * 8 bytes  |
//! +---------------+---------------+-------------------------------+
//! Fragment header: 8 bytes; bytes 2..4 hold the offset (13 bits) and the M flag.
//! ```
//!
//! IPsec protects and receives whole datagrams: IPv4 fragments and non-atomic IPv6
//! fragments are refused with [`WalkErrorKind::Fragment`] ([RFC 4303 §3.3.4],
//! [RFC 4302 §3.3.4]). The codecs differ in a few checks; [`Checks`] selects them, so
//! each keeps its own behaviour on top of this one walker, and maps [`WalkError`] into
//! its own error type.
//!
//! Every function here takes arbitrary bytes: it never panics, the walk ends after at
//! most one step per 8 bytes of input, and malformed input is a [`WalkError`].
//!
//! [RFC 4303 §3.3.4]: https://www.rfc-editor.org/rfc/rfc4303#section-3.3.4
//! [RFC 4302 §3.3.4]: https://www.rfc-editor.org/rfc/rfc4302#section-3.3.4

use core::fmt;

use zerocopy::FromBytes;

use super::{ipv4_checksum, Ipv4Header, Ipv6Header};
use crate::IpProto;

const HOPOPT: u8 = IpProto::HOPOPT.0;
const ROUTING: u8 = IpProto::IPV6_ROUTE.0;
const FRAGMENT: u8 = IpProto::IPV6_FRAG.0;
const DSTOPTS: u8 = IpProto::IPV6_OPTS.0;

/// The offset of the protocol field in the IPv4 header.
const V4_PROTO_OFFSET: usize = 9;
/// The offset of the flags and fragment offset field in the IPv4 header.
const V4_FRAG_OFFSET: usize = 6;
/// The offset of the payload length field in the IPv6 header.
const V6_LEN_OFFSET: usize = 4;
/// The offset of the next header field in the IPv6 header.
const V6_NH_OFFSET: usize = 6;

/// The IP version of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// The version number: 4 or 6.
    pub const fn number(self) -> u8 {
        match self {
            Self::V4 => 4,
            Self::V6 => 6,
        }
    }

    /// The longest packet the length field of this version can describe: 65535 for
    /// IPv4 (total length), 65535 + 40 for IPv6 (payload length, jumbograms aside).
    pub const fn max_total_len(self) -> usize {
        match self {
            Self::V4 => u16::MAX as usize,
            Self::V6 => (u16::MAX as usize).saturating_add(Ipv6Header::LEN),
        }
    }
}

/// What was wrong with the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkErrorKind {
    /// The input ends before a header does.
    Truncated {
        /// Bytes the header needs from `offset`.
        needed: usize,
    },
    /// A length field disagrees with the bytes present.
    LengthField,
    /// A field holds a value the walker cannot accept.
    BadValue(&'static str),
    /// The packet is a fragment, not a whole datagram: `offset` is that of the IPv4
    /// flags field or of the IPv6 fragment header.
    Fragment(IpVersion),
    /// [`Stop::At`] met an upper-layer protocol that is none of its targets: `offset`
    /// is that of the next header byte that names it.
    NotFound,
}

/// An IP header error: what, and at which byte offset of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalkError {
    /// What was wrong.
    pub kind: WalkErrorKind,
    /// The byte offset in the packet where the problem is.
    pub offset: usize,
}

impl WalkError {
    /// An error of `kind` at `offset`.
    pub const fn new(kind: WalkErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    const fn truncated(offset: usize, needed: usize) -> Self {
        Self::new(WalkErrorKind::Truncated { needed }, offset)
    }

    const fn bad_value(offset: usize, what: &'static str) -> Self {
        Self::new(WalkErrorKind::BadValue(what), offset)
    }

    const fn length_field(offset: usize) -> Self {
        Self::new(WalkErrorKind::LengthField, offset)
    }
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WalkErrorKind::Truncated { needed } => write!(
                f,
                "truncated: {needed} bytes needed at offset {}",
                self.offset
            ),
            WalkErrorKind::LengthField => write!(
                f,
                "length field at offset {} disagrees with the data",
                self.offset
            ),
            WalkErrorKind::BadValue(what) => write!(f, "bad {what} at offset {}", self.offset),
            WalkErrorKind::Fragment(v) => {
                write!(f, "ipv{} fragment at offset {}", v.number(), self.offset)
            }
            WalkErrorKind::NotFound => write!(
                f,
                "next header at offset {} is not the one looked for",
                self.offset
            ),
        }
    }
}

impl core::error::Error for WalkError {}

/// The checks on which ESP and AH differ. [`Checks::new`] has all of them off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checks {
    /// Verify the IPv4 header checksum (of a received header whose checksum is not
    /// a mutable field).
    pub v4_checksum: bool,
    /// Accept an IPv6 payload length of 0 unless the next header is hop-by-hop (which
    /// may be an RFC 2675 jumbogram, not supported). Off: every payload length of 0 is
    /// refused.
    pub v6_empty_payload: bool,
    /// Refuse a second routing header in the IPv6 chain.
    pub single_routing_header: bool,
    /// Take the packet length from the input, not from the IPv4 total length or IPv6
    /// payload length field, which are then not checked: for decoders of captures,
    /// whose packets may be cut short by a snap length or carry a length of 0 from
    /// segmentation offload. Off: a length field that disagrees with the input is
    /// [`WalkErrorKind::LengthField`].
    pub length_from_input: bool,
}

impl Checks {
    /// All checks off.
    pub const fn new() -> Self {
        Self {
            v4_checksum: false,
            v6_empty_payload: false,
            single_routing_header: false,
            length_from_input: false,
        }
    }

    /// Sets [`Checks::v4_checksum`].
    #[must_use]
    pub const fn with_v4_checksum(mut self, on: bool) -> Self {
        self.v4_checksum = on;
        self
    }

    /// Sets [`Checks::v6_empty_payload`].
    #[must_use]
    pub const fn with_v6_empty_payload(mut self, on: bool) -> Self {
        self.v6_empty_payload = on;
        self
    }

    /// Sets [`Checks::single_routing_header`].
    #[must_use]
    pub const fn with_single_routing_header(mut self, on: bool) -> Self {
        self.single_routing_header = on;
        self
    }

    /// Sets [`Checks::length_from_input`].
    #[must_use]
    pub const fn with_length_from_input(mut self, on: bool) -> Self {
        self.length_from_input = on;
        self
    }
}

/// Where the IPv6 walk stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Where an IPsec header goes when protecting a packet: in front of the upper-layer
    /// header, or of the destination options for the final destination (those not
    /// followed by a routing header).
    Protect,
    /// At the first upper-layer header that is one of these protocols (the IPsec
    /// header of a received packet), walking over destination options on either side;
    /// any other upper-layer protocol is [`WalkErrorKind::NotFound`].
    ///
    /// An IPv4 header has no chain to walk: its protocol field is returned as it is,
    /// and the caller decides what to do with it.
    At(&'static [IpProto]),
}

/// Where the IP header ends (with the IPv6 extension headers in front of the IPsec
/// header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Located {
    /// The IP version.
    pub version: IpVersion,
    /// Bytes of IP header: IPv4 with options, or IPv6 with the extension headers in
    /// front of the stopping point.
    pub header_len: usize,
    /// The packet length from the header's length field (at most the input length),
    /// or the input length with [`Checks::length_from_input`].
    pub total_len: usize,
    /// The protocol at the stopping point.
    pub proto: IpProto,
    /// The offset of the byte that holds `proto`: the IPv4 protocol field, or the next
    /// header field of the IPv6 header or of the last extension header kept in front.
    pub proto_offset: usize,
}

/// The IP version from the first nibble.
///
/// # Errors
/// [`WalkErrorKind::Truncated`] for an empty packet, [`WalkErrorKind::BadValue`] for a
/// version other than 4 or 6.
pub fn version(packet: &[u8]) -> Result<IpVersion, WalkError> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => Ok(IpVersion::V4),
        Some(6) => Ok(IpVersion::V6),
        Some(_) => Err(WalkError::bad_value(0, "ip version")),
        None => Err(WalkError::truncated(0, 1)),
    }
}

/// Checks an IPv4 header: version, IHL, lengths, and with [`Checks::v4_checksum`] the
/// header checksum. Returns header length and total length (the input length with
/// [`Checks::length_from_input`]).
///
/// # Errors
/// [`WalkErrorKind::Truncated`], [`WalkErrorKind::LengthField`] (total length shorter
/// than the header or longer than `packet`), [`WalkErrorKind::BadValue`] (version,
/// IHL, checksum).
pub fn check_v4(packet: &[u8], checks: Checks) -> Result<(usize, usize), WalkError> {
    let (h, _) = Ipv4Header::ref_from_prefix(packet)
        .map_err(|_| WalkError::truncated(0, Ipv4Header::LEN))?;
    if h.version_ihl >> 4 != 4 {
        return Err(WalkError::bad_value(0, "ip version"));
    }
    let hl = h.header_len();
    if hl < Ipv4Header::LEN {
        return Err(WalkError::bad_value(0, "ihl"));
    }
    if hl > packet.len() {
        return Err(WalkError::truncated(0, hl));
    }
    let total = if checks.length_from_input {
        packet.len()
    } else {
        usize::from(h.total_len.get())
    };
    if total < hl || total > packet.len() {
        return Err(WalkError::length_field(2));
    }
    if checks.v4_checksum && ipv4_checksum(packet.get(..hl).unwrap_or(&[])) != 0 {
        return Err(WalkError::bad_value(10, "ipv4 header checksum"));
    }
    Ok((hl, total))
}

/// Checks the fixed IPv6 header and returns the packet length (40 + payload length, or
/// the input length with [`Checks::length_from_input`]).
///
/// # Errors
/// [`WalkErrorKind::Truncated`], [`WalkErrorKind::BadValue`] (version, a payload
/// length of 0 as [`Checks::v6_empty_payload`] says), [`WalkErrorKind::LengthField`]
/// (payload length longer than `packet`).
pub fn check_v6(packet: &[u8], checks: Checks) -> Result<usize, WalkError> {
    let (h, _) = Ipv6Header::ref_from_prefix(packet)
        .map_err(|_| WalkError::truncated(0, Ipv6Header::LEN))?;
    if h.ver_tc_flow.get() >> 28 != 6 {
        return Err(WalkError::bad_value(0, "ip version"));
    }
    if checks.length_from_input {
        return Ok(packet.len());
    }
    let pl = usize::from(h.payload_len.get());
    if pl == 0 {
        if !checks.v6_empty_payload {
            // A jumbogram (RFC 2675) or an empty packet: neither carries IPsec here.
            return Err(WalkError::bad_value(V6_LEN_OFFSET, "ipv6 payload length 0"));
        }
        if h.next_header == HOPOPT {
            // Possibly a jumbogram (payload length 0 and a Jumbo Payload option), which
            // is not supported. An empty packet with another next header (No Next
            // Header, say) is a valid inner packet.
            return Err(WalkError::bad_value(V6_LEN_OFFSET, "ipv6 jumbogram"));
        }
    }
    let total = pl.saturating_add(Ipv6Header::LEN);
    if total > packet.len() {
        return Err(WalkError::length_field(V6_LEN_OFFSET));
    }
    Ok(total)
}

/// Finds where the IPsec header goes ([`Stop::Protect`]) or is ([`Stop::At`]) in an
/// IPv4 or IPv6 packet. Bytes behind the IP length field are ignored.
///
/// # Errors
/// As [`check_v4`] and [`check_v6`]; [`WalkErrorKind::Fragment`] for a fragment;
/// [`WalkErrorKind::NotFound`] as [`Stop::At`] says; [`WalkErrorKind::Truncated`] and
/// [`WalkErrorKind::BadValue`] for a broken IPv6 extension header chain (a hop-by-hop
/// header not first, a second routing header with
/// [`Checks::single_routing_header`]).
pub fn locate(packet: &[u8], stop: Stop, checks: Checks) -> Result<Located, WalkError> {
    match version(packet)? {
        IpVersion::V4 => {
            let (hl, total) = check_v4(packet, checks)?;
            let (h, _) = Ipv4Header::ref_from_prefix(packet)
                .map_err(|_| WalkError::truncated(0, Ipv4Header::LEN))?;
            if h.flags_frag.get() & (Ipv4Header::MF | 0x1fff) != 0 {
                return Err(WalkError::new(
                    WalkErrorKind::Fragment(IpVersion::V4),
                    V4_FRAG_OFFSET,
                ));
            }
            Ok(Located {
                version: IpVersion::V4,
                header_len: hl,
                total_len: total,
                proto: IpProto(h.protocol),
                proto_offset: V4_PROTO_OFFSET,
            })
        }
        IpVersion::V6 => {
            let total = check_v6(packet, checks)?;
            let packet = packet.get(..total).unwrap_or(&[]);
            let (header_len, proto, proto_offset) = walk_v6(packet, stop, checks)?;
            Ok(Located {
                version: IpVersion::V6,
                header_len,
                total_len: total,
                proto,
                proto_offset,
            })
        }
    }
}

/// Walks the IPv6 extension headers of `packet` (cut to its length field).
fn walk_v6(
    packet: &[u8],
    stop: Stop,
    checks: Checks,
) -> Result<(usize, IpProto, usize), WalkError> {
    let mut off = Ipv6Header::LEN;
    let mut nh_off = V6_NH_OFFSET;
    let mut nh = packet
        .get(V6_NH_OFFSET)
        .copied()
        .ok_or(WalkError::truncated(V6_NH_OFFSET, 1))?;
    let mut first = true;
    let mut seen_routing = false;
    loop {
        match nh {
            HOPOPT if !first => {
                return Err(WalkError::bad_value(nh_off, "hop-by-hop header not first"));
            }
            HOPOPT => {}
            ROUTING if seen_routing && checks.single_routing_header => {
                return Err(WalkError::bad_value(nh_off, "second routing header"));
            }
            ROUTING => seen_routing = true,
            DSTOPTS => {
                let next = packet
                    .get(off)
                    .copied()
                    .ok_or(WalkError::truncated(off, 2))?;
                // Destination options for the final destination belong behind the
                // IPsec header; those for the hops of a routing header stay in front.
                if stop == Stop::Protect && next != ROUTING {
                    return Ok((off, IpProto(nh), nh_off));
                }
            }
            FRAGMENT => {
                let fo = packet
                    .get(off.saturating_add(2)..off.saturating_add(4))
                    .ok_or(WalkError::truncated(off, 8))?;
                // Offset and M flag both zero: an atomic fragment, a whole datagram.
                if let [a, b] = fo {
                    if u16::from_be_bytes([*a, *b]) & 0xfff9 != 0 {
                        return Err(WalkError::new(WalkErrorKind::Fragment(IpVersion::V6), off));
                    }
                }
            }
            _ => {
                return match stop {
                    Stop::Protect => Ok((off, IpProto(nh), nh_off)),
                    Stop::At(targets) if targets.contains(&IpProto(nh)) => {
                        Ok((off, IpProto(nh), nh_off))
                    }
                    Stop::At(_) => Err(WalkError::new(WalkErrorKind::NotFound, nh_off)),
                };
            }
        }
        let len = ext_len(packet, off, nh)?;
        let end = off.saturating_add(len);
        if end > packet.len() {
            return Err(WalkError::truncated(off, len));
        }
        nh = packet
            .get(off)
            .copied()
            .ok_or(WalkError::truncated(off, 1))?;
        nh_off = off;
        off = end;
        first = false;
    }
}

/// The length of the IPv6 extension header at `off` whose type (the preceding next
/// header value) is `nh`: 8 for a fragment header, `(Hdr Ext Len + 1) * 8` (at most
/// 2048) for the others. The header itself may still run past `packet`.
///
/// # Errors
/// [`WalkErrorKind::Truncated`] when `packet` ends before the Hdr Ext Len byte.
pub fn ext_len(packet: &[u8], off: usize, nh: u8) -> Result<usize, WalkError> {
    if nh == FRAGMENT {
        return Ok(8);
    }
    let l = packet
        .get(off.saturating_add(1))
        .copied()
        .ok_or(WalkError::truncated(off, 2))?;
    Ok(usize::from(l).saturating_add(1).saturating_mul(8))
}

/// Sets the IPv4 total length and protocol and recomputes the header checksum.
///
/// # Errors
/// [`WalkErrorKind::LengthField`] when `total_len` does not fit 16 bits (nothing is
/// written then); [`WalkErrorKind::Truncated`] when `header` is shorter than the
/// header its IHL describes.
pub fn fix_v4(header: &mut [u8], total_len: usize, proto: IpProto) -> Result<(), WalkError> {
    let total = u16::try_from(total_len).map_err(|_| WalkError::length_field(2))?;
    {
        let (h, _) = Ipv4Header::mut_from_prefix(&mut *header)
            .map_err(|_| WalkError::truncated(0, Ipv4Header::LEN))?;
        h.total_len.set(total);
        h.protocol = proto.0;
    }
    set_v4_checksum(header)
}

/// Recomputes the IPv4 header checksum over the header its IHL describes.
///
/// # Errors
/// [`WalkErrorKind::Truncated`] when `header` is shorter than that header.
pub fn set_v4_checksum(header: &mut [u8]) -> Result<(), WalkError> {
    let hl = {
        let (h, _) = Ipv4Header::mut_from_prefix(&mut *header)
            .map_err(|_| WalkError::truncated(0, Ipv4Header::LEN))?;
        h.checksum.set(0);
        h.header_len()
    };
    let c = ipv4_checksum(header.get(..hl).ok_or(WalkError::truncated(0, hl))?);
    let (h, _) = Ipv4Header::mut_from_prefix(header)
        .map_err(|_| WalkError::truncated(0, Ipv4Header::LEN))?;
    h.checksum.set(c);
    Ok(())
}

/// Sets the IPv6 payload length (`total_len` - 40) and the next header byte at
/// `proto_offset`.
///
/// # Errors
/// [`WalkErrorKind::LengthField`] when `total_len` is below 40 or the payload length
/// does not fit 16 bits; [`WalkErrorKind::Truncated`] when `header` does not reach
/// `proto_offset`.
pub fn fix_v6(
    header: &mut [u8],
    total_len: usize,
    proto_offset: usize,
    proto: IpProto,
) -> Result<(), WalkError> {
    let pl = total_len
        .checked_sub(Ipv6Header::LEN)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(WalkError::length_field(V6_LEN_OFFSET))?;
    let (h, _) = Ipv6Header::mut_from_prefix(&mut *header)
        .map_err(|_| WalkError::truncated(0, Ipv6Header::LEN))?;
    h.payload_len.set(pl);
    *header
        .get_mut(proto_offset)
        .ok_or(WalkError::truncated(proto_offset, 1))? = proto.0;
    Ok(())
}

/// Sets length and protocol fields for `version`: [`fix_v4`] (which ignores
/// `proto_offset`) or [`fix_v6`].
///
/// # Errors
/// As [`fix_v4`] and [`fix_v6`].
pub fn fix(
    header: &mut [u8],
    version: IpVersion,
    total_len: usize,
    proto_offset: usize,
    proto: IpProto,
) -> Result<(), WalkError> {
    match version {
        IpVersion::V4 => fix_v4(header, total_len, proto),
        IpVersion::V6 => fix_v6(header, total_len, proto_offset, proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;
    use zerocopy::network_endian::{U16, U32};
    use zerocopy::IntoBytes;

    const ESP_TARGETS: Stop = Stop::At(&[IpProto::ESP, IpProto::UDP]);
    const AH_TARGET: Stop = Stop::At(&[IpProto::AH]);

    /// An IPv6 packet: the fixed header (next header `nh`), `ext`, and `payload` bytes.
    fn v6(nh: u8, ext: &[u8], payload: usize) -> Vec<u8> {
        let header = Ipv6Header {
            ver_tc_flow: U32::new(6 << 28),
            payload_len: U16::new(u16::try_from(ext.len() + payload).unwrap()),
            next_header: nh,
            hop_limit: 64,
            src: [0x20; 16],
            dst: [0x30; 16],
        };
        let mut p = header.as_bytes().to_vec();
        p.extend_from_slice(ext);
        p.extend(core::iter::repeat_n(0xab, payload));
        p
    }

    fn v4(proto: u8, options: usize, payload: usize) -> Vec<u8> {
        let hl = 20 + options;
        let total = u16::try_from(hl + payload).unwrap();
        let mut p = std::vec![0u8; hl + payload];
        p[0] = 0x40 | u8::try_from(hl / 4).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..20].copy_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2]);
        set_v4_checksum(&mut p).unwrap();
        p
    }

    /// Hop-by-hop, destination options (for the routing hops), routing, atomic
    /// fragment, destination options (final), then `last`.
    fn long_chain(last: u8) -> Vec<u8> {
        let mut ext = Vec::new();
        ext.extend_from_slice(&[DSTOPTS, 0, 1, 4, 0, 0, 0, 0]); // HbH, 8 bytes
        ext.extend_from_slice(&[ROUTING, 1, 1, 12, 0, 0, 0, 0]); // DstOpts, 16 bytes
        ext.extend_from_slice(&[0; 8]);
        ext.extend_from_slice(&[FRAGMENT, 0, 4, 0, 0, 0, 0, 0]); // Routing, 8 bytes
        ext.extend_from_slice(&[DSTOPTS, 0, 0, 0, 0, 0, 0, 7]); // atomic fragment
        ext.extend_from_slice(&[last, 0, 1, 4, 0, 0, 0, 0]); // DstOpts, 8 bytes
        v6(HOPOPT, &ext, 24)
    }

    fn kind(r: Result<Located, WalkError>) -> WalkErrorKind {
        r.unwrap_err().kind
    }

    #[test]
    fn protect_stops_before_final_destination_options() {
        let p = long_chain(6);
        let l = locate(&p, Stop::Protect, Checks::new()).unwrap();
        assert_eq!(l.version, IpVersion::V6);
        assert_eq!(l.total_len, p.len());
        // 40 + 8 (HbH) + 16 (DstOpts) + 8 (Routing) + 8 (Fragment).
        assert_eq!(
            (l.header_len, l.proto, l.proto_offset),
            (80, IpProto::IPV6_OPTS, 72)
        );
    }

    #[test]
    fn at_walks_over_every_extension_header() {
        let p = long_chain(IpProto::ESP.0);
        let l = locate(&p, ESP_TARGETS, Checks::new()).unwrap();
        assert_eq!(
            (l.header_len, l.proto, l.proto_offset),
            (88, IpProto::ESP, 80)
        );
        let p = long_chain(IpProto::UDP.0);
        assert_eq!(
            locate(&p, ESP_TARGETS, Checks::new()).unwrap().proto,
            IpProto::UDP
        );
        let p = long_chain(IpProto::AH.0);
        assert_eq!(
            locate(&p, AH_TARGET, Checks::new()).unwrap().proto,
            IpProto::AH
        );
        let e = locate(&p, ESP_TARGETS, Checks::new()).unwrap_err();
        assert_eq!((e.kind, e.offset), (WalkErrorKind::NotFound, 80));
    }

    #[test]
    fn refuses_non_atomic_fragments() {
        for frag in [[0, 9], [0, 1], [0x12, 0x30]] {
            let p = v6(FRAGMENT, &[6, 0, frag[0], frag[1], 0, 0, 0, 1], 8);
            let e = locate(&p, Stop::Protect, Checks::new()).unwrap_err();
            assert_eq!(
                (e.kind, e.offset),
                (WalkErrorKind::Fragment(IpVersion::V6), 40)
            );
        }
        // Reserved bits set but offset and M flag clear: atomic.
        let p = v6(FRAGMENT, &[6, 0, 0, 6, 0, 0, 0, 1], 8);
        assert_eq!(
            locate(&p, Stop::Protect, Checks::new()).unwrap().header_len,
            48
        );
        for ff in [0x2000u16, 0x0001, 0x3fff] {
            let mut p = v4(6, 0, 8);
            p[6..8].copy_from_slice(&ff.to_be_bytes());
            let e = locate(&p, Stop::Protect, Checks::new()).unwrap_err();
            assert_eq!(
                (e.kind, e.offset),
                (WalkErrorKind::Fragment(IpVersion::V4), 6)
            );
        }
        let mut p = v4(6, 0, 8);
        p[6] = 0x40; // DF alone
        assert!(locate(&p, Stop::Protect, Checks::new()).is_ok());
    }

    #[test]
    fn ipv4_options_checksum_and_protocol() {
        let mut p = v4(IpProto::TCP.0, 8, 12);
        let l = locate(&p, ESP_TARGETS, Checks::new().with_v4_checksum(true)).unwrap();
        assert_eq!(
            (
                l.version,
                l.header_len,
                l.total_len,
                l.proto,
                l.proto_offset
            ),
            (IpVersion::V4, 28, 40, IpProto::TCP, 9)
        );
        p[8] = 1;
        assert!(locate(&p, ESP_TARGETS, Checks::new()).is_ok());
        let e = locate(&p, ESP_TARGETS, Checks::new().with_v4_checksum(true)).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (WalkErrorKind::BadValue("ipv4 header checksum"), 10)
        );
    }

    #[test]
    fn rejects_bad_ipv4_lengths() {
        let p = v4(6, 0, 8);
        // Bytes behind the total length are ignored.
        let mut longer = p.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(check_v4(&longer, Checks::new()), Ok((20, 28)));
        let cases: [(usize, u8, u16, WalkErrorKind, usize); 4] = [
            (28, 0x44, 28, WalkErrorKind::BadValue("ihl"), 0),
            (28, 0x4f, 28, WalkErrorKind::Truncated { needed: 60 }, 0),
            (28, 0x45, 19, WalkErrorKind::LengthField, 2),
            (28, 0x45, 29, WalkErrorKind::LengthField, 2),
        ];
        for (len, vi, total, k, off) in cases {
            let mut q = p[..len].to_vec();
            q[0] = vi;
            q[2..4].copy_from_slice(&total.to_be_bytes());
            let e = check_v4(&q, Checks::new()).unwrap_err();
            assert_eq!((e.kind, e.offset), (k, off), "{vi:#x} {total}");
        }
        assert_eq!(
            check_v4(&p[..19], Checks::new()).unwrap_err().kind,
            WalkErrorKind::Truncated { needed: 20 }
        );
        assert_eq!(
            check_v4(&[0x65; 20], Checks::new()).unwrap_err().kind,
            WalkErrorKind::BadValue("ip version")
        );
    }

    #[test]
    fn empty_ipv6_payload_as_checks_say() {
        let p = v6(IpProto::NO_NEXT_HEADER.0, &[], 0);
        let e = check_v6(&p, Checks::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (WalkErrorKind::BadValue("ipv6 payload length 0"), 4)
        );
        let lenient = Checks::new().with_v6_empty_payload(true);
        assert_eq!(check_v6(&p, lenient), Ok(40));
        let p = v6(HOPOPT, &[], 0);
        assert_eq!(
            check_v6(&p, lenient).unwrap_err().kind,
            WalkErrorKind::BadValue("ipv6 jumbogram")
        );
        let mut p = v6(6, &[], 8);
        p[5] = 9;
        assert_eq!(
            check_v6(&p, lenient).unwrap_err().kind,
            WalkErrorKind::LengthField
        );
    }

    #[test]
    fn length_from_input_ignores_length_fields() {
        let from_input = Checks::new().with_length_from_input(true);
        // IPv4: cut short (total length 48, 30 bytes there), and a total length of 0.
        let p = v4(IpProto::ESP.0, 0, 28);
        assert_eq!(
            kind(locate(&p[..30], ESP_TARGETS, Checks::new())),
            WalkErrorKind::LengthField
        );
        let l = locate(&p[..30], ESP_TARGETS, from_input).unwrap();
        assert_eq!((l.header_len, l.total_len, l.proto), (20, 30, IpProto::ESP));
        let mut q = p.clone();
        q[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(check_v4(&q, from_input), Ok((20, 48)));
        // The header itself must still be there.
        assert_eq!(
            check_v4(&p[..19], from_input).unwrap_err().kind,
            WalkErrorKind::Truncated { needed: 20 }
        );
        // IPv6: payload lengths of 0 (also with hop-by-hop) and past the input.
        let p = v6(DSTOPTS, &[IpProto::ESP.0, 0, 1, 4, 0, 0, 0, 0], 16);
        for pl in [0u16, 1, 500] {
            let mut q = p.clone();
            q[4..6].copy_from_slice(&pl.to_be_bytes());
            assert!(locate(&q, ESP_TARGETS, Checks::new()).is_err(), "{pl}");
            let l = locate(&q, ESP_TARGETS, from_input).unwrap();
            assert_eq!((l.header_len, l.total_len), (48, 64), "{pl}");
        }
        assert_eq!(check_v6(&v6(HOPOPT, &[], 0), from_input), Ok(40));
        // A chain cut short is still an error.
        assert_eq!(
            kind(locate(&p[..44], ESP_TARGETS, from_input)),
            WalkErrorKind::Truncated { needed: 8 }
        );
    }

    #[test]
    fn rejects_bad_chains() {
        // Hop-by-hop after routing.
        let p = v6(
            ROUTING,
            &[HOPOPT, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        let e = locate(&p, Stop::Protect, Checks::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (WalkErrorKind::BadValue("hop-by-hop header not first"), 40)
        );
        // Two routing headers: refused only when asked.
        let p = v6(
            ROUTING,
            &[ROUTING, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert_eq!(
            locate(&p, Stop::Protect, Checks::new()).unwrap().header_len,
            56
        );
        let single = Checks::new().with_single_routing_header(true);
        assert_eq!(
            kind(locate(&p, Stop::Protect, single)),
            WalkErrorKind::BadValue("second routing header")
        );
        // Header length running past the payload length.
        let p = v6(ROUTING, &[6, 9], 0);
        let e = locate(&p, Stop::Protect, Checks::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (WalkErrorKind::Truncated { needed: 80 }, 40)
        );
        // A chain cut right after a next header byte.
        let p = v6(DSTOPTS, &[6], 0);
        assert_eq!(
            kind(locate(&p, ESP_TARGETS, Checks::new())),
            WalkErrorKind::Truncated { needed: 2 }
        );
        // A fragment header cut short.
        let p = v6(FRAGMENT, &[6, 0, 0], 0);
        assert_eq!(
            kind(locate(&p, Stop::Protect, Checks::new())),
            WalkErrorKind::Truncated { needed: 8 }
        );
        let p = v6(FRAGMENT, &[6, 0, 0, 0, 0], 0);
        assert_eq!(
            kind(locate(&p, Stop::Protect, Checks::new())),
            WalkErrorKind::Truncated { needed: 8 }
        );
    }

    #[test]
    fn rejects_truncated_and_unknown_versions() {
        assert_eq!(
            kind(locate(&[], Stop::Protect, Checks::new())),
            WalkErrorKind::Truncated { needed: 1 }
        );
        assert_eq!(
            kind(locate(&[0x55; 40], Stop::Protect, Checks::new())),
            WalkErrorKind::BadValue("ip version")
        );
        let p = long_chain(IpProto::ESP.0);
        for n in 0..p.len() {
            assert!(locate(&p[..n], ESP_TARGETS, Checks::new()).is_err(), "{n}");
        }
    }

    #[test]
    fn fix_rewrites_lengths_protocol_and_checksum() {
        let mut p = v4(IpProto::ESP.0, 4, 40);
        fix(&mut p, IpVersion::V4, 30, 9, IpProto::TCP).unwrap();
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 30);
        assert_eq!(p[9], 6);
        assert_eq!(ipv4_checksum(&p[..24]), 0);
        assert_eq!(
            fix_v4(&mut p, 70_000, IpProto::TCP).unwrap_err().kind,
            WalkErrorKind::LengthField
        );
        assert!(fix_v4(&mut p[..22], 30, IpProto::TCP).is_err());

        let mut p = long_chain(6);
        fix(&mut p, IpVersion::V6, 100, 72, IpProto::ESP).unwrap();
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 60);
        assert_eq!(p[72], 50);
        assert!(fix_v6(&mut p, 39, 6, IpProto::ESP).is_err());
        assert!(fix_v6(&mut p, 40 + 65_536, 6, IpProto::ESP).is_err());
        let n = p.len();
        assert!(fix_v6(&mut p, 100, n, IpProto::ESP).is_err());
        assert!(fix_v6(&mut p[..39], 100, 6, IpProto::ESP).is_err());
    }

    #[test]
    fn max_total_len_per_version() {
        assert_eq!(IpVersion::V4.max_total_len(), 65_535);
        assert_eq!(IpVersion::V6.max_total_len(), 65_575);
        assert_eq!((IpVersion::V4.number(), IpVersion::V6.number()), (4, 6));
    }

    fn stops() -> impl Strategy<Value = Stop> {
        prop_oneof![Just(Stop::Protect), Just(ESP_TARGETS), Just(AH_TARGET)]
    }

    fn checks() -> impl Strategy<Value = Checks> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d)| {
            Checks::new()
                .with_v4_checksum(a)
                .with_v6_empty_payload(b)
                .with_single_routing_header(c)
                .with_length_from_input(d)
        })
    }

    /// An IPv6 packet with a chain of extension headers from `kinds` (0 hop-by-hop,
    /// 1 routing, 2 destination options, 3 fragment), ending in `last`.
    fn chain(kinds: &[(u8, u8)], last: u8, payload: usize) -> Vec<u8> {
        let types = [HOPOPT, ROUTING, DSTOPTS, FRAGMENT];
        let mut ext = Vec::new();
        let mut nhs = Vec::new();
        for &(k, l) in kinds {
            let t = types[usize::from(k % 4)];
            nhs.push(t);
            let len = if t == FRAGMENT {
                8
            } else {
                (usize::from(l % 4) + 1) * 8
            };
            let mut h = std::vec![0u8; len];
            if t != FRAGMENT {
                h[1] = l % 4;
            }
            ext.push(h);
        }
        let first = nhs.first().copied().unwrap_or(last);
        let mut bytes = Vec::new();
        for (i, mut h) in ext.into_iter().enumerate() {
            h[0] = nhs.get(i + 1).copied().unwrap_or(last);
            bytes.extend_from_slice(&h);
        }
        v6(first, &bytes, payload)
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            stop in stops(),
            checks in checks(),
        ) {
            if let Ok(l) = locate(&data, stop, checks) {
                prop_assert!(l.total_len <= data.len());
                prop_assert!(l.header_len <= l.total_len);
                prop_assert!(l.proto_offset < l.header_len);
                prop_assert_eq!(data.get(l.proto_offset).copied(), Some(l.proto.0));
                prop_assert_eq!(version(&data), Ok(l.version));
                // Taking the length from the input finds the same headers.
                let whole = locate(&data, stop, checks.with_length_from_input(true));
                prop_assert_eq!(
                    whole.map(|w| (w.header_len, w.proto, w.proto_offset, w.total_len)),
                    Ok((l.header_len, l.proto, l.proto_offset, data.len()))
                );
            }
            let mut m = data.clone();
            let _ = fix_v4(&mut m, data.len(), IpProto::ESP);
            let mut m = data.clone();
            let _ = fix_v6(&mut m, data.len(), data.len() / 2, IpProto::ESP);
            let _ = ext_len(&data, data.len() / 3, data.first().copied().unwrap_or(0));
        }

        #[test]
        fn walks_generated_chains(
            kinds in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..8),
            last in prop_oneof![Just(IpProto::ESP.0), Just(IpProto::AH.0), Just(6u8)],
            payload in 1usize..32,
            cut in any::<usize>(),
        ) {
            let p = chain(&kinds, last, payload);
            let types: Vec<u8> = kinds
                .iter()
                .map(|&(k, _)| [HOPOPT, ROUTING, DSTOPTS, FRAGMENT][usize::from(k % 4)])
                .collect();
            let hbh_ok = types.iter().skip(1).all(|&t| t != HOPOPT);
            let ext_total = p.len() - 40 - payload;
            match locate(&p, Stop::At(&[IpProto::ESP, IpProto::AH]), Checks::new()) {
                Ok(l) => {
                    prop_assert!(hbh_ok);
                    prop_assert!(last != 6);
                    prop_assert_eq!(l.header_len, 40 + ext_total);
                    prop_assert_eq!(l.proto, IpProto(last));
                }
                Err(e) => prop_assert!(!hbh_ok || last == 6, "{e}"),
            }
            if let Ok(l) = locate(&p, Stop::Protect, Checks::new()) {
                prop_assert!(l.header_len <= 40 + ext_total);
                prop_assert_eq!(p[l.proto_offset], l.proto.0);
            }
            // Any cut of the buffer (the length field then disagrees) is an error.
            let n = cut % p.len();
            prop_assert!(locate(&p[..n], Stop::Protect, Checks::new()).is_err());
        }
    }
}
