//! Tunnel mode ([RFC 4303 §3.1.2], [RFC 4301 §5.1.2]): a new outer IPv4 or IPv6 header
//! in front of the ESP packet that carries the whole inner packet.
//!
//! ```text
//! +-----------+-------+-----+---------+--------------------+---------+-----+
//! | outer IP  | [UDP] | ESP | IV      | inner IP packet    | trailer | ICV |
//! | header    | 3948  | hdr |         | (IPv4 or IPv6)     |         |     |
//! +-----------+-------+-----+---------+--------------------+---------+-----+
//!                           |<------ encrypted ------------------->|
//! ```
//!
//! All four inner/outer combinations work. The outer header is built from the SA's
//! endpoints and a [`TunnelConfig`]:
//! - ECN follows [RFC 6040] normal mode: encapsulation copies the inner ECN field;
//!   decapsulation combines outer and inner (CE on the outer marks the inner packet, CE
//!   over a Not-ECT inner packet means drop);
//! - DSCP is copied from the inner header or set;
//! - DF of an IPv4 outer header is copied, set or cleared ([RFC 4301 §8.1]); an inner
//!   IPv6 packet counts as DF set, since IPv6 routers never fragment;
//! - TTL / hop limit is configured (64 by default);
//! - an optional UDP header ([RFC 3948]) goes between outer IP header and ESP.
//!
//! The steps have the same shape both ways, free functions of this module around the
//! SA's own seal and open (as [`udp::encap`] and [`udp::decap`] are for UDP):
//!
//! | send | receive |
//! | --- | --- |
//! | [`InnerMeta::parse`] the inner packet | [`decap`]: validate the outer header (version, lengths, IPv4 checksum, no fragments), strip it, return the outer addresses |
//! | [`EspOutbound::seal`] | [`EspInbound::open`] |
//! | [`encap`]: put the outer header of a [`Tunnel`] in front | [`finish`]: check the decrypted inner packet, apply the ECN decapsulation rules, trim TFC padding |
//!
//! [`EspOutbound::seal_tunnel`] and [`EspInbound::open_tunnel`] run the three steps in
//! one call.
//!
//! [RFC 4303 §3.1.2]: https://www.rfc-editor.org/rfc/rfc4303#section-3.1.2
//! [RFC 4301 §5.1.2]: https://www.rfc-editor.org/rfc/rfc4301#section-5.1.2
//! [RFC 4301 §8.1]: https://www.rfc-editor.org/rfc/rfc4301#section-8.1
//! [RFC 6040]: https://www.rfc-editor.org/rfc/rfc6040
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::ip::walk::IpVersion;
use ipsec_core::ip::{ipv4_checksum, Ipv4Header, Ipv6Header};
use ipsec_core::IpProto;
use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

use crate::ip::{self, LocateError, Walk};
use crate::sa::{
    EspInbound, EspOutbound, OpenError, OpenOptions, Opened, Overhead, ReplayGuard, SealError,
};
use crate::trace;
use crate::udp::{self, UdpPorts, UDP_HEADER_LEN};
use crate::wire::ParseError;
use ipsec_core::PacketBuf;

pub use ipsec_core::tunnel::{decap_ecn, ecn, DfPolicy, DscpPolicy};

/// The outer header settings of a tunnel-mode SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunnelConfig {
    /// Our endpoint: the outer source address.
    pub local: IpAddr,
    /// The peer's endpoint: the outer destination address.
    pub remote: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) of the outer header.
    pub ttl: u8,
    /// DSCP of the outer header.
    pub dscp: DscpPolicy,
    /// DF of an IPv4 outer header.
    pub df: DfPolicy,
    /// Flow label of an IPv6 outer header (20 bits).
    pub flow_label: u32,
    /// UDP encapsulation (RFC 3948), when NAT traversal is in use.
    pub udp: Option<UdpPorts>,
}

impl TunnelConfig {
    /// Defaults: TTL 64, DSCP and DF copied, flow label 0, no UDP.
    pub const fn new(local: IpAddr, remote: IpAddr) -> Self {
        Self {
            local,
            remote,
            ttl: 64,
            dscp: DscpPolicy::Copy,
            df: DfPolicy::Copy,
            flow_label: 0,
            udp: None,
        }
    }
}

/// Why a tunnel operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The outer or inner header is malformed.
    #[error("malformed header: {0}")]
    Malformed(ParseError),
    /// The outer packet is a fragment: reassemble first (RFC 4303 §3.4.1).
    #[error("outer packet is a fragment")]
    Fragment,
    /// The outer packet does not carry ESP (or its UDP payload is not ESP).
    #[error("outer packet does not carry ESP")]
    NotEsp,
    /// The decrypted payload is not an IPv4 or IPv6 packet matching its next header.
    #[error("inner packet does not match next header {0}")]
    InnerProtocol(IpProto),
    /// Local and remote endpoints are of different address families.
    #[error("tunnel endpoints of different address families")]
    AddressFamily,
    /// RFC 6040: the outer header says CE but the inner packet is not ECN-capable.
    #[error("CE on the outer header of a not-ECT packet")]
    EcnDrop,
    /// The outer packet would be longer than its length field can say.
    #[error("packet too large for its length field")]
    TooLarge,
    /// The buffer has too little room; the bytes needed.
    #[error("buffer needs {head} bytes of headroom and {tail} of tailroom")]
    InsufficientRoom {
        /// Headroom needed.
        head: usize,
        /// Tailroom needed.
        tail: usize,
    },
    /// Sealing failed.
    #[error("seal: {0}")]
    Seal(SealError),
    /// Opening failed.
    #[error("open: {0}")]
    Open(OpenError),
}

impl TunnelError {
    /// A short `snake_case` name for counters and JSON (the ESP reason for
    /// [`TunnelError::Seal`] and [`TunnelError::Open`]).
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Fragment => "fragment",
            Self::NotEsp => "not_esp",
            Self::InnerProtocol(_) => "inner_protocol",
            Self::AddressFamily => "address_family",
            Self::EcnDrop => "ecn_drop",
            Self::TooLarge => "too_large",
            Self::InsufficientRoom { .. } => "insufficient_room",
            Self::Seal(e) => e.reason(),
            Self::Open(e) => e.reason(),
        }
    }
}

impl From<SealError> for TunnelError {
    fn from(e: SealError) -> Self {
        Self::Seal(e)
    }
}

impl From<OpenError> for TunnelError {
    fn from(e: OpenError) -> Self {
        Self::Open(e)
    }
}

/// What the outer header needs to know about the inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerMeta {
    /// [`IpProto::IPV4`] or [`IpProto::IPV6`]: the ESP next header.
    pub next_header: IpProto,
    /// The inner DSCP and ECN byte (IPv4 TOS, IPv6 traffic class).
    pub tos: u8,
    /// The inner DF bit (always true for IPv6).
    pub df: bool,
}

impl InnerMeta {
    /// Reads the inner packet's header.
    ///
    /// # Errors
    /// [`TunnelError::Malformed`] when it is not a well-formed IPv4 or IPv6 header.
    pub fn parse(inner: &[u8]) -> Result<Self, TunnelError> {
        match ip::version(inner).map_err(TunnelError::Malformed)? {
            IpVersion::V4 => {
                ip::check_v4(inner, false).map_err(TunnelError::Malformed)?;
                let (h, _) = Ipv4Header::ref_from_prefix(inner).map_err(|_| {
                    TunnelError::Malformed(ParseError::truncated(0, Ipv4Header::LEN))
                })?;
                Ok(Self {
                    next_header: IpProto::IPV4,
                    tos: h.tos,
                    df: h.flags_frag.get() & Ipv4Header::DF != 0,
                })
            }
            IpVersion::V6 => {
                let (h, _) = Ipv6Header::ref_from_prefix(inner).map_err(|_| {
                    TunnelError::Malformed(ParseError::truncated(0, Ipv6Header::LEN))
                })?;
                Ok(Self {
                    next_header: IpProto::IPV6,
                    tos: h.traffic_class(),
                    df: true,
                })
            }
        }
    }
}

/// What the outer header of a received packet said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterInfo {
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// The outer DSCP and ECN byte.
    pub tos: u8,
    /// The UDP ports, when the ESP packet was UDP-encapsulated.
    pub udp: Option<UdpPorts>,
}

/// A tunnel-mode SA's outer header state: its configuration and the IPv4
/// Identification counter.
#[derive(Clone, Debug)]
pub struct Tunnel {
    cfg: TunnelConfig,
    next_ident: u16,
}

impl Tunnel {
    /// A tunnel between `cfg.local` and `cfg.remote`.
    ///
    /// # Errors
    /// [`TunnelError::AddressFamily`] when the two addresses are of different families.
    pub fn new(cfg: TunnelConfig) -> Result<Self, TunnelError> {
        if cfg.local.is_ipv4() != cfg.remote.is_ipv4() {
            return Err(TunnelError::AddressFamily);
        }
        Ok(Self { cfg, next_ident: 0 })
    }

    /// The configuration.
    pub fn config(&self) -> &TunnelConfig {
        &self.cfg
    }

    /// Sets the IPv4 Identification of the next outer header (it then counts up).
    pub fn set_next_ident(&mut self, ident: u16) {
        self.next_ident = ident;
    }

    /// Bytes of outer IP header and UDP header.
    pub fn header_len(&self) -> usize {
        let ip = if self.cfg.local.is_ipv4() {
            Ipv4Header::LEN
        } else {
            Ipv6Header::LEN
        };
        ip.saturating_add(if self.cfg.udp.is_some() {
            UDP_HEADER_LEN
        } else {
            0
        })
    }

    /// The exact room [`EspOutbound::seal_tunnel`] needs around an inner packet of `inner_len` bytes.
    pub fn overhead(&self, esp: &EspOutbound, inner_len: usize) -> Overhead {
        let o = esp.overhead(inner_len);
        Overhead {
            head: o.head.saturating_add(self.header_len()),
            tail: o.tail,
        }
    }

    /// The checks before a seal: the inner packet's header, room, length.
    fn check_seal<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        esp: &EspOutbound,
        buf: &PacketBuf<B>,
    ) -> Result<InnerMeta, TunnelError> {
        let o = self.overhead(esp, buf.body_len());
        InnerMeta::parse(buf.body())
            .and_then(|meta| {
                if buf.headroom() < o.head || buf.tailroom() < o.tail {
                    Err(TunnelError::InsufficientRoom {
                        head: o.head,
                        tail: o.tail,
                    })
                } else if o.total().saturating_add(buf.body_len()) > self.max_packet_len() {
                    Err(TunnelError::TooLarge)
                } else {
                    Ok(meta)
                }
            })
            .inspect_err(|e| {
                trace::trace!(spi = %esp.spi(), reason = e.reason(), error = %e, "ESP packet not sealed");
            })
    }

    /// The longest outer packet the length field can describe.
    fn max_packet_len(&self) -> usize {
        let max = usize::from(u16::MAX);
        if self.cfg.local.is_ipv4() {
            max
        } else {
            max + Ipv6Header::LEN
        }
    }

    /// Puts the outer IP header (and UDP header) in front of the sealed ESP packet in the
    /// body: the old name of [`encap`], which has the shape of [`decap`].
    ///
    /// # Errors
    /// As [`encap`].
    #[deprecated(
        note = "use the free function `tunnel::encap(buf, tunnel, inner)`, the \
                         counterpart of `tunnel::decap`"
    )]
    pub fn encap<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        inner: &InnerMeta,
    ) -> Result<(), TunnelError> {
        encap(buf, self, inner)
    }
}

/// Puts the outer IP header (and UDP header) of `tunnel` in front of the sealed ESP
/// packet in the body (the sending counterpart of [`decap`]), and counts the tunnel's
/// IPv4 Identification up.
///
/// # Errors
/// [`TunnelError::InsufficientRoom`] without enough headroom (nothing changes),
/// [`TunnelError::TooLarge`] when the length does not fit the length field.
pub fn encap<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    tunnel: &mut Tunnel,
    inner: &InnerMeta,
) -> Result<(), TunnelError> {
    tunnel.write_outer(buf, inner).inspect_err(|e| {
        trace::trace!(reason = e.reason(), error = %e, "ESP packet not sealed");
    })
}

impl Tunnel {
    /// The outer headers of [`encap`].
    fn write_outer<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        inner: &InnerMeta,
    ) -> Result<(), TunnelError> {
        let head = self.header_len();
        if buf.headroom() < head {
            return Err(TunnelError::InsufficientRoom { head, tail: 0 });
        }
        let total = buf.body_len().saturating_add(head);
        let ecn = inner.tos & 0b11; // RFC 6040 normal mode: copy, including CE.
        let dscp = match self.cfg.dscp {
            DscpPolicy::Copy => inner.tos & !0b11,
            DscpPolicy::Set(d) => d << 2,
        };
        let tos = dscp | ecn;
        let proto = if self.cfg.udp.is_some() {
            IpProto::UDP
        } else {
            IpProto::ESP
        };
        if let Some(ports) = self.cfg.udp {
            // Checked above: the headroom holds the UDP header too.
            udp::encap(buf, ports, Some((self.cfg.local, self.cfg.remote)))
                .map_err(|_| TunnelError::TooLarge)?;
        }
        match (self.cfg.local, self.cfg.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = u16::try_from(total).map_err(|_| TunnelError::TooLarge)?;
                let df = match self.cfg.df {
                    DfPolicy::Copy => inner.df,
                    DfPolicy::Set => true,
                    DfPolicy::Clear => false,
                };
                let mut h = Ipv4Header {
                    version_ihl: 0x45,
                    tos,
                    total_len: U16::new(total),
                    ident: U16::new(self.next_ident),
                    flags_frag: U16::new(if df { Ipv4Header::DF } else { 0 }),
                    ttl: self.cfg.ttl,
                    protocol: proto.0,
                    checksum: U16::ZERO,
                    src: src.octets(),
                    dst: dst.octets(),
                };
                h.checksum = U16::new(ipv4_checksum(h.as_bytes()));
                self.next_ident = self.next_ident.wrapping_add(1);
                let out = buf
                    .push_front(Ipv4Header::LEN)
                    .map_err(|_| TunnelError::InsufficientRoom { head, tail: 0 })?;
                out.copy_from_slice(h.as_bytes());
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let pl = u16::try_from(buf.body_len()).map_err(|_| TunnelError::TooLarge)?;
                let h = Ipv6Header {
                    ver_tc_flow: U32::new(
                        (6 << 28) | (u32::from(tos) << 20) | (self.cfg.flow_label & 0xf_ffff),
                    ),
                    payload_len: U16::new(pl),
                    next_header: proto.0,
                    hop_limit: self.cfg.ttl,
                    src: src.octets(),
                    dst: dst.octets(),
                };
                let out = buf
                    .push_front(Ipv6Header::LEN)
                    .map_err(|_| TunnelError::InsufficientRoom { head, tail: 0 })?;
                out.copy_from_slice(h.as_bytes());
            }
            _ => return Err(TunnelError::AddressFamily),
        }
        Ok(())
    }
}

impl EspOutbound {
    /// Seals the inner IP packet in the body in tunnel mode and puts the outer headers
    /// of `tunnel` in front. Returns the ESP sequence number.
    ///
    /// # Errors
    /// [`TunnelError::Malformed`] for a body that is not an IP packet,
    /// [`TunnelError::InsufficientRoom`] (checked before anything changes),
    /// [`TunnelError::Seal`], [`TunnelError::TooLarge`].
    pub fn seal_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        tunnel: &mut Tunnel,
        buf: &mut PacketBuf<B>,
    ) -> Result<u64, TunnelError> {
        let meta = tunnel.check_seal(self, buf)?;
        let seq = self.seal(buf, meta.next_header)?;
        encap(buf, tunnel, &meta)?;
        Ok(seq)
    }

    /// Seals like [`EspOutbound::seal_tunnel`] through shared references: `seq` is the
    /// ESP sequence number chosen by the caller ([`EspOutbound::seal_at`]: never use one
    /// twice) and `ident` the IPv4 Identification of the outer header (ignored for
    /// IPv6); the tunnel's own Identification counter is not touched.
    ///
    /// # Errors
    /// As [`EspOutbound::seal_tunnel`].
    pub fn seal_tunnel_at<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        tunnel: &Tunnel,
        buf: &mut PacketBuf<B>,
        seq: u64,
        ident: u16,
    ) -> Result<u64, TunnelError> {
        let meta = tunnel.check_seal(self, buf)?;
        let seq = self.seal_at(buf, meta.next_header, seq)?;
        let mut outer = Tunnel {
            cfg: tunnel.cfg,
            next_ident: ident,
        };
        encap(buf, &mut outer, &meta)?;
        Ok(seq)
    }
}

/// Validates and strips the outer IP header (and UDP header) of a received packet (the
/// receiving counterpart of [`encap`]). The body then holds the ESP packet, trimmed to
/// the outer length field.
///
/// # Errors
/// [`TunnelError::Malformed`] (bad version, lengths, IPv4 checksum, extension headers),
/// [`TunnelError::Fragment`], [`TunnelError::NotEsp`]. The body is unchanged on error.
pub fn decap<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
) -> Result<OuterInfo, TunnelError> {
    strip_outer(buf).inspect_err(|e| {
        trace::trace!(reason = e.reason(), error = %e, "ESP packet dropped");
    })
}

/// [`decap`] without its event.
fn strip_outer<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
) -> Result<OuterInfo, TunnelError> {
    let (split, mut info) = {
        let p = buf.body();
        let split = ip::locate(p, Walk::ToEsp, true).map_err(|e| match e {
            LocateError::Parse(e) => TunnelError::Malformed(e),
            LocateError::Fragment => TunnelError::Fragment,
            LocateError::NotEsp => TunnelError::NotEsp,
        })?;
        let info = outer_info(p, split.version).map_err(TunnelError::Malformed)?;
        (split, info)
    };
    if split.proto != IpProto::ESP && split.proto != IpProto::UDP {
        return Err(TunnelError::NotEsp);
    }
    if split.proto == IpProto::UDP {
        let ports = {
            let seg = buf
                .body()
                .get(split.header_len..split.total_len)
                .unwrap_or(&[]);
            let (ports, payload) = udp::parse(seg).map_err(TunnelError::Malformed)?;
            if !matches!(udp::classify(payload), udp::Classified::Esp(_)) {
                return Err(TunnelError::NotEsp);
            }
            ports
        };
        info.udp = Some(ports);
        buf.truncate(split.total_len);
        buf.pull_front(split.header_len)
            .map_err(|_| TunnelError::NotEsp)?;
        udp::decap(buf).map_err(TunnelError::Malformed)?;
    } else {
        buf.truncate(split.total_len);
        buf.pull_front(split.header_len)
            .map_err(|_| TunnelError::NotEsp)?;
    }
    Ok(info)
}

fn outer_info(p: &[u8], version: IpVersion) -> Result<OuterInfo, ParseError> {
    if version == IpVersion::V4 {
        let (h, _) = Ipv4Header::ref_from_prefix(p).map_err(|_| ParseError::truncated(0, 20))?;
        Ok(OuterInfo {
            src: IpAddr::V4(Ipv4Addr::from(h.src)),
            dst: IpAddr::V4(Ipv4Addr::from(h.dst)),
            tos: h.tos,
            udp: None,
        })
    } else {
        let (h, _) = Ipv6Header::ref_from_prefix(p).map_err(|_| ParseError::truncated(0, 40))?;
        Ok(OuterInfo {
            src: IpAddr::V6(Ipv6Addr::from(h.src)),
            dst: IpAddr::V6(Ipv6Addr::from(h.dst)),
            tos: h.traffic_class(),
            udp: None,
        })
    }
}

/// Finishes decapsulation after [`EspInbound::open`] (the last step of
/// [`EspInbound::open_tunnel`]): checks that the payload is an
/// IPv4 or IPv6 packet as the next header says, trims TFC padding behind it, and applies
/// the RFC 6040 ECN rules with the outer `tos` (fixing the IPv4 header checksum).
///
/// # Errors
/// [`TunnelError::InnerProtocol`], [`TunnelError::Malformed`], [`TunnelError::EcnDrop`].
pub fn finish<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    next_header: IpProto,
    outer_tos: u8,
) -> Result<(), TunnelError> {
    check_inner(buf, next_header, outer_tos).inspect_err(|e| {
        trace::trace!(reason = e.reason(), error = %e, "ESP packet dropped");
    })
}

/// [`finish`] without its event.
fn check_inner<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    next_header: IpProto,
    outer_tos: u8,
) -> Result<(), TunnelError> {
    let version = ip::version(buf.body()).map_err(|_| TunnelError::InnerProtocol(next_header))?;
    match (next_header, version) {
        (IpProto::IPV4, IpVersion::V4) => {
            let (hl, total) = ip::check_v4(buf.body(), false).map_err(TunnelError::Malformed)?;
            let inner_tos = buf.body().get(1).copied().unwrap_or(0);
            let e = decap_ecn(inner_tos, outer_tos).ok_or(TunnelError::EcnDrop)?;
            buf.truncate(total);
            if e != inner_tos & 0b11 {
                let hdr = buf.body_mut().get_mut(..hl).unwrap_or(&mut []);
                if let Ok((h, _)) = Ipv4Header::mut_from_prefix(&mut *hdr) {
                    h.tos = (h.tos & !0b11) | e;
                    h.checksum = U16::ZERO;
                }
                let c = ipv4_checksum(hdr);
                if let Ok((h, _)) = Ipv4Header::mut_from_prefix(hdr) {
                    h.checksum = U16::new(c);
                }
            }
            Ok(())
        }
        (IpProto::IPV6, IpVersion::V6) => {
            let total = ip::check_v6(buf.body()).map_err(TunnelError::Malformed)?;
            buf.truncate(total);
            if let Ok((h, _)) = Ipv6Header::mut_from_prefix(buf.body_mut()) {
                let tc = h.traffic_class();
                let e = decap_ecn(tc, outer_tos).ok_or(TunnelError::EcnDrop)?;
                let v = h.ver_tc_flow.get();
                h.ver_tc_flow = U32::new((v & !(0b11 << 20)) | (u32::from(e) << 20));
            }
            Ok(())
        }
        _ => Err(TunnelError::InnerProtocol(next_header)),
    }
}

impl EspInbound {
    /// Receives a tunnel-mode packet with this SA's own anti-replay window: [`decap`],
    /// [`EspInbound::open`], [`finish`] (the counterpart of
    /// [`EspOutbound::seal_tunnel`]). The body then holds the inner packet.
    ///
    /// With [`OpenOptions::resync`] the buffer holds the datagram as it arrived and the
    /// scratch at least as many bytes as its ESP packet.
    ///
    /// # Errors
    /// As the three steps; [`TunnelError::Open`] with [`OpenError::Integrity`] when the
    /// packet (or, re-synchronizing, every high half) does not authenticate.
    pub fn open_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        opts: OpenOptions<'_>,
    ) -> Result<(Opened, OuterInfo), TunnelError> {
        let outer = decap(buf)?;
        let opened = self.open(buf, opts)?;
        finish(buf, opened.next_header, outer.tos)?;
        Ok((opened, outer))
    }
}

impl<W> EspInbound<W> {
    /// Receives a tunnel-mode packet like [`EspInbound::open_tunnel`], through a shared
    /// SA whose anti-replay window the caller keeps in `replay`
    /// ([`EspInbound::open_with`]).
    ///
    /// # Errors
    /// As [`EspInbound::open_tunnel`].
    pub fn open_tunnel_with<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
        &self,
        buf: &mut PacketBuf<B>,
        replay: &mut R,
        opts: OpenOptions<'_>,
    ) -> Result<(Opened, OuterInfo), TunnelError> {
        let outer = decap(buf)?;
        let opened = self.open_with(buf, replay, opts)?;
        finish(buf, opened.next_header, outer.tos)?;
        Ok((opened, outer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_families_refused() {
        let c = TunnelConfig::new("10.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        assert_eq!(Tunnel::new(c).unwrap_err(), TunnelError::AddressFamily);
    }

    /// The deprecated method is the free function: same outer header, same
    /// Identification counting, and `decap` takes back what either put on.
    #[test]
    #[allow(deprecated)]
    fn deprecated_encap_method_is_the_free_function() {
        let c = TunnelConfig::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let meta = InnerMeta {
            next_header: IpProto::IPV4,
            tos: 0x2a,
            df: true,
        };
        let esp = [0x11u8; 24];
        let mut outs = std::vec::Vec::new();
        for by_method in [false, true] {
            let mut t = Tunnel::new(c).unwrap();
            t.set_next_ident(7);
            let mut packets = std::vec::Vec::new();
            for _ in 0..2 {
                let mut storage = [0u8; 64];
                storage[40..].copy_from_slice(&esp);
                let mut buf = PacketBuf::new(&mut storage[..], 40, esp.len()).unwrap();
                if by_method {
                    t.encap(&mut buf, &meta).unwrap();
                } else {
                    encap(&mut buf, &mut t, &meta).unwrap();
                }
                packets.push(buf.body().to_vec());
                let outer = decap(&mut buf).unwrap();
                assert_eq!(buf.body(), &esp[..]);
                assert_eq!(outer.tos, 0x2a);
            }
            assert_ne!(packets[0], packets[1], "the Identification counts up");
            outs.push(packets);
        }
        assert_eq!(outs[0], outs[1]);
    }
}
