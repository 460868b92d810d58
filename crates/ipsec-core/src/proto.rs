//! Protocol numbers and modes.

use core::fmt;

/// An IP protocol / IPv6 next-header number (IANA "Assigned Internet Protocol Numbers").
///
/// An open newtype: every value is representable, the common ones have names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IpProto(pub u8);

impl IpProto {
    /// IPv6 hop-by-hop options (also "any" in traffic selectors, RFC 7296 §3.13.1).
    pub const HOPOPT: IpProto = IpProto(0);
    /// The selector value meaning "any protocol".
    pub const ANY: IpProto = IpProto(0);
    /// ICMP.
    pub const ICMP: IpProto = IpProto(1);
    /// IPv4 encapsulation (tunnel mode inner IPv4).
    pub const IPV4: IpProto = IpProto(4);
    /// TCP.
    pub const TCP: IpProto = IpProto(6);
    /// UDP.
    pub const UDP: IpProto = IpProto(17);
    /// IPv6 encapsulation (tunnel mode inner IPv6).
    pub const IPV6: IpProto = IpProto(41);
    /// IPv6 routing header.
    pub const IPV6_ROUTE: IpProto = IpProto(43);
    /// IPv6 fragment header.
    pub const IPV6_FRAG: IpProto = IpProto(44);
    /// ESP (RFC 4303).
    pub const ESP: IpProto = IpProto(50);
    /// AH (RFC 4302).
    pub const AH: IpProto = IpProto(51);
    /// ICMPv6.
    pub const ICMPV6: IpProto = IpProto(58);
    /// "No next header": an ESP dummy packet (RFC 4303 §2.6).
    pub const NO_NEXT_HEADER: IpProto = IpProto(59);
    /// IPv6 destination options.
    pub const IPV6_OPTS: IpProto = IpProto(60);
    /// Mobility header.
    pub const MOBILITY: IpProto = IpProto(135);
    /// SCTP.
    pub const SCTP: IpProto = IpProto(132);

    /// The registry name, if this number has one here.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "HOPOPT",
            1 => "ICMP",
            4 => "IPv4",
            6 => "TCP",
            17 => "UDP",
            41 => "IPv6",
            43 => "IPv6-Route",
            44 => "IPv6-Frag",
            50 => "ESP",
            51 => "AH",
            58 => "IPv6-ICMP",
            59 => "IPv6-NoNxt",
            60 => "IPv6-Opts",
            132 => "SCTP",
            135 => "Mobility",
            _ => return None,
        })
    }

    /// True for the IPv6 extension headers that transport-mode ESP and AH step over
    /// (hop-by-hop, routing, fragment, destination options; RFC 4303 §3.1.1).
    pub const fn is_ipv6_extension(self) -> bool {
        matches!(self.0, 0 | 43 | 44 | 60)
    }
}

impl fmt::Debug for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "IpProto({})", self.0),
        }
    }
}

impl fmt::Display for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The IPsec security protocol of an SA (RFC 7296 §3.3.1 Protocol ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Encapsulating Security Payload (RFC 4303).
    Esp,
    /// Authentication Header (RFC 4302).
    Ah,
}

impl SecurityProtocol {
    /// The IP protocol number (50 or 51).
    pub const fn ip_proto(self) -> IpProto {
        match self {
            SecurityProtocol::Esp => IpProto::ESP,
            SecurityProtocol::Ah => IpProto::AH,
        }
    }

    /// The IKEv2 Protocol ID (RFC 7296 §3.3.1): 2 for AH, 3 for ESP.
    pub const fn ike_protocol_id(self) -> u8 {
        match self {
            SecurityProtocol::Esp => 3,
            SecurityProtocol::Ah => 2,
        }
    }
}

/// Tunnel or transport mode (RFC 4301 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The whole inner IP packet is protected and a new outer header added.
    #[default]
    Tunnel,
    /// The payload of the original IP packet is protected, its header kept.
    Transport,
}
