//! Tunnel-mode framing ([RFC 4302 §3.1.2], [RFC 4301 §5.1.2]): a new outer IPv4 or
//! IPv6 header in front of AH and the whole inner packet.
//!
//! ```text
//! +-----------+----+--------------------+
//! | outer IP  | AH | inner IP packet    |
//! | header    |    | (IPv4 or IPv6)     |
//! +-----------+----+--------------------+
//! |<---- authenticated, except the ---->|
//!       mutable outer header fields
//! ```
//!
//! All four inner/outer combinations work. The outer header comes from a
//! [`TunnelConfig`]:
//! - ECN follows [RFC 6040] normal mode: encapsulation copies the inner ECN field;
//!   decapsulation ([`decap_ecn`]) marks the inner packet CE when the outer header
//!   says CE, and drops a CE-marked packet whose inner header is not ECN-capable.
//!   The outer TOS / traffic class is mutable for AH (RFC 4302 §3.3.3.1), so routers
//!   may mark it without breaking the ICV;
//! - DSCP is copied from the inner header or set;
//! - DF of an IPv4 outer header is copied, set or cleared ([RFC 4301 §8.1]); an inner
//!   IPv6 packet counts as DF set, since IPv6 routers never fragment;
//! - TTL / hop limit and the IPv6 flow label are configured;
//! - the IPv4 Identification counts up from a settable start.
//!
//! [`AhOutbound::seal_tunnel`](crate::AhOutbound::seal_tunnel) uses it;
//! [`AhInbound::open_tunnel`](crate::AhInbound::open_tunnel) strips the outer header.
//!
//! [RFC 4302 §3.1.2]: https://www.rfc-editor.org/rfc/rfc4302#section-3.1.2
//! [RFC 4301 §5.1.2]: https://www.rfc-editor.org/rfc/rfc4301#section-5.1.2
//! [RFC 4301 §8.1]: https://www.rfc-editor.org/rfc/rfc4301#section-8.1
//! [RFC 6040]: https://www.rfc-editor.org/rfc/rfc6040

use core::net::IpAddr;

use ipsec_core::ip::{ipv4_checksum, Ipv4Header, Ipv6Header};
use ipsec_core::IpProto;
use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

use ipsec_core::{PacketBuf, Spi};

use crate::ip::{self, Located};
use crate::mutable::Plan;
use crate::sa::{
    addresses, outer_tos, verify, AhInbound, AhOutbound, Op, OpenError, OpenOptions, Opened,
    Overhead, Parsed, ReplayGuard, SealError,
};
use crate::wire::{Family, ParseError};
use crate::GMAC_IV_LEN;

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
}

impl TunnelConfig {
    /// Defaults: TTL 64, DSCP and DF copied, flow label 0.
    pub const fn new(local: IpAddr, remote: IpAddr) -> Self {
        Self {
            local,
            remote,
            ttl: 64,
            dscp: DscpPolicy::Copy,
            df: DfPolicy::Copy,
            flow_label: 0,
        }
    }
}

/// Local and remote endpoints are of different address families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tunnel endpoints of different address families")]
pub struct AddressFamilyMismatch;

/// A tunnel-mode SA's outer header state: its configuration and the IPv4
/// Identification counter.
#[derive(Clone, Debug)]
pub struct Tunnel {
    cfg: TunnelConfig,
    next_ident: u16,
}

/// What the outer header needs to know about the inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InnerMeta {
    /// [`IpProto::IPV4`] or [`IpProto::IPV6`]: the AH next header.
    pub(crate) next_header: IpProto,
    /// The inner DSCP and ECN byte (IPv4 TOS, IPv6 traffic class).
    pub(crate) tos: u8,
    /// The inner DF bit (always true for IPv6).
    pub(crate) df: bool,
}

impl InnerMeta {
    /// Reads the inner packet's header (version and lengths checked).
    pub(crate) fn parse(inner: &[u8]) -> Result<Self, ParseError> {
        match ip::family(inner)? {
            Family::Ipv4 => {
                ip::check_v4(inner)?;
                let (h, _) = Ipv4Header::ref_from_prefix(inner)
                    .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))?;
                Ok(Self {
                    next_header: IpProto::IPV4,
                    tos: h.tos,
                    df: h.flags_frag.get() & Ipv4Header::DF != 0,
                })
            }
            Family::Ipv6 => {
                ip::check_v6(inner)?;
                let (h, _) = Ipv6Header::ref_from_prefix(inner)
                    .map_err(|_| ParseError::truncated(0, Ipv6Header::LEN))?;
                Ok(Self {
                    next_header: IpProto::IPV6,
                    tos: h.traffic_class(),
                    df: true,
                })
            }
        }
    }
}

impl Tunnel {
    /// A tunnel between `cfg.local` and `cfg.remote`.
    ///
    /// # Errors
    /// [`AddressFamilyMismatch`] when the two addresses are of different families.
    pub fn new(cfg: TunnelConfig) -> Result<Self, AddressFamilyMismatch> {
        if cfg.local.is_ipv4() != cfg.remote.is_ipv4() {
            return Err(AddressFamilyMismatch);
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

    /// The outer header's family.
    pub fn family(&self) -> Family {
        if self.cfg.local.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    /// Bytes of outer IP header.
    pub fn header_len(&self) -> usize {
        match self.family() {
            Family::Ipv4 => Ipv4Header::LEN,
            Family::Ipv6 => Ipv6Header::LEN,
        }
    }

    /// The IPv4 Identification for the next packet; the counter moves on.
    pub(crate) fn take_ident(&mut self) -> u16 {
        let i = self.next_ident;
        self.next_ident = i.wrapping_add(1);
        i
    }

    /// Writes the outer header for a packet of `total_len` bytes (outer header
    /// included) with protocol AH into the first [`Tunnel::header_len`] bytes of `out`;
    /// `ident` is the IPv4 Identification.
    pub(crate) fn write_outer(
        &self,
        out: &mut [u8],
        total_len: usize,
        inner: &InnerMeta,
        ident: u16,
    ) -> Result<(), ParseError> {
        let ecn = inner.tos & 0b11; // RFC 6040 normal mode: copy, including CE.
        let dscp = match self.cfg.dscp {
            DscpPolicy::Copy => inner.tos & !0b11,
            DscpPolicy::Set(d) => d << 2,
        };
        let tos = dscp | ecn;
        match (self.cfg.local, self.cfg.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = u16::try_from(total_len).map_err(|_| ParseError::length_field(2))?;
                let df = match self.cfg.df {
                    DfPolicy::Copy => inner.df,
                    DfPolicy::Set => true,
                    DfPolicy::Clear => false,
                };
                let mut h = Ipv4Header {
                    version_ihl: 0x45,
                    tos,
                    total_len: U16::new(total),
                    ident: U16::new(ident),
                    flags_frag: U16::new(if df { Ipv4Header::DF } else { 0 }),
                    ttl: self.cfg.ttl,
                    protocol: IpProto::AH.0,
                    checksum: U16::ZERO,
                    src: src.octets(),
                    dst: dst.octets(),
                };
                h.checksum = U16::new(ipv4_checksum(h.as_bytes()));
                h.write_to_prefix(out)
                    .map_err(|_| ParseError::truncated(0, Ipv4Header::LEN))
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let pl = total_len
                    .checked_sub(Ipv6Header::LEN)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(ParseError::length_field(4))?;
                let h = Ipv6Header {
                    ver_tc_flow: U32::new(
                        (6 << 28) | (u32::from(tos) << 20) | (self.cfg.flow_label & 0xf_ffff),
                    ),
                    payload_len: U16::new(pl),
                    next_header: IpProto::AH.0,
                    hop_limit: self.cfg.ttl,
                    src: src.octets(),
                    dst: dst.octets(),
                };
                h.write_to_prefix(out)
                    .map_err(|_| ParseError::truncated(0, Ipv6Header::LEN))
            }
            _ => Err(ParseError::bad_value(0, "tunnel address family")),
        }
    }
}

/// What identifies one sealed tunnel-mode packet: its sequence number, the GMAC IV,
/// and the outer IPv4 header's Identification.
#[derive(Clone, Copy)]
struct Stamp {
    seq: u64,
    iv: [u8; GMAC_IV_LEN],
    ident: u16,
}

impl AhOutbound {
    /// The exact room [`AhOutbound::seal_tunnel`] needs with `tunnel`.
    pub fn tunnel_overhead(&self, tunnel: &Tunnel) -> Overhead {
        let o = self.overhead(tunnel.family());
        Overhead {
            head: o.head.saturating_add(tunnel.header_len()),
            tail: o.tail,
        }
    }

    /// Protects the IPv4 or IPv6 packet in the body in tunnel mode: AH and a new outer
    /// header from `tunnel` go in front of it. Returns the sequence number.
    ///
    /// # Errors
    /// [`SealError::Malformed`] for a body that is not an IP packet,
    /// [`SealError::InsufficientRoom`], [`SealError::TooLarge`],
    /// [`SealError::SequenceExhausted`], [`SealError::Crypto`]; the body is unchanged.
    pub fn seal_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        tunnel: &mut Tunnel,
        buf: &mut PacketBuf<B>,
    ) -> Result<u64, SealError> {
        let (meta, o) = self.plan_tunnel(tunnel, buf)?;
        let seq = self.seq.next().map_err(|_| SealError::SequenceExhausted)?;
        let iv = self.take_iv(seq);
        let ident = tunnel.take_ident();
        self.finish_tunnel(tunnel, buf, &meta, o, Stamp { seq, iv, ident })?;
        Ok(seq)
    }

    /// Protects like [`AhOutbound::seal_tunnel`], with the caller's sequence number
    /// `seq`, through shared references (see [`AhOutbound::seal_transport_at`] for what
    /// the caller guarantees). An IPv4 outer header's Identification is the low 16
    /// bits of `seq`, unique among the last 65536 packets of the SA (RFC 6864).
    /// Returns `seq` (as ESP's `seal_*_at` do).
    ///
    /// # Errors
    /// As [`AhOutbound::seal_tunnel`]; [`SealError::SequenceExhausted`] for a `seq`
    /// the SA could not send.
    pub fn seal_tunnel_at<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        tunnel: &Tunnel,
        buf: &mut PacketBuf<B>,
        seq: u64,
    ) -> Result<u64, SealError> {
        self.check_seq(seq)?;
        let (meta, o) = self.plan_tunnel(tunnel, buf)?;
        let ident = u16::try_from(seq & 0xffff).unwrap_or(0);
        let stamp = Stamp {
            seq,
            iv: seq.to_be_bytes(),
            ident,
        };
        self.finish_tunnel(tunnel, buf, &meta, o, stamp)?;
        Ok(seq)
    }

    fn plan_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        tunnel: &Tunnel,
        buf: &PacketBuf<B>,
    ) -> Result<(InnerMeta, Overhead), SealError> {
        let meta = InnerMeta::parse(buf.body()).map_err(SealError::Malformed)?;
        let o = self.tunnel_overhead(tunnel);
        let r = buf.body_range();
        self.room(buf.buffer().len(), r.start, r.end, o)?;
        if buf.body_len().saturating_add(o.head) > ip::max_total(tunnel.family()) {
            return Err(SealError::TooLarge);
        }
        Ok((meta, o))
    }

    fn finish_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        tunnel: &Tunnel,
        buf: &mut PacketBuf<B>,
        meta: &InnerMeta,
        o: Overhead,
        stamp: Stamp,
    ) -> Result<(), SealError> {
        let Stamp { seq, iv, ident } = stamp;
        let family = tunnel.family();
        let outer_len = tunnel.header_len();
        let ah_len = o.head.saturating_sub(outer_len);
        let total = buf.body_len().saturating_add(o.head);
        let (b, start, end) = buf.raw_mut();
        let new_start = start.saturating_sub(o.head);
        let ah_start = new_start.saturating_add(outer_len);
        let err = SealError::InsufficientRoom {
            head: o.head,
            tail: o.tail,
        };
        let ah = b.get_mut(ah_start..start).ok_or(err)?;
        self.emit_ah(ah, meta.next_header, seq, ah_len, iv)?;
        let outer = b.get_mut(new_start..ah_start).ok_or(err)?;
        tunnel
            .write_outer(outer, total, meta, ident)
            .map_err(SealError::Malformed)?;
        let loc = Located {
            family,
            total_len: total,
            hdr_len: outer_len,
            proto: IpProto::AH,
            proto_offset: if family == Family::Ipv4 { 9 } else { 6 },
        };
        // A fresh outer header has no options or extension headers: nothing to plan.
        let plan = Plan::default();
        self.xf
            .mac(b, new_start..end, &loc, &plan, seq, Op::Sign)
            .map_err(SealError::Crypto)?;
        buf.set_cursors(new_start, end);
        Ok(())
    }
}

impl AhInbound {
    /// Verifies a tunnel-mode packet with this SA's own anti-replay window and leaves
    /// the inner packet in the body.
    ///
    /// As [`AhInbound::open_transport`] up to the window update; then the next header
    /// must be IPv4 or IPv6 and match a well-formed inner packet, which is trimmed to
    /// its length field, and the outer ECN field is combined into it (RFC 6040).
    ///
    /// # Errors
    /// [`OpenError::Malformed`], [`OpenError::Replay`], [`OpenError::Integrity`],
    /// [`OpenError::InsufficientRoom`], [`OpenError::EcnDrop`]. The body is unchanged
    /// on every error.
    pub fn open_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        opts: OpenOptions,
    ) -> Result<Opened, OpenError> {
        let Self { spi, xf, window } = self;
        let (p, start) = verify(xf, *spi, window, buf, opts.attempt())?;
        unframe_tunnel(*spi, buf, &p, start)
    }

    /// Opens like [`AhInbound::open_tunnel`], through a shared reference, with the
    /// anti-replay window kept by the caller (see [`AhInbound::open_transport_with`]).
    ///
    /// # Errors
    /// As [`AhInbound::open_tunnel`].
    pub fn open_tunnel_with<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
        &self,
        buf: &mut PacketBuf<B>,
        replay: &mut R,
        opts: OpenOptions,
    ) -> Result<Opened, OpenError> {
        let (p, start) = verify(&self.xf, self.spi, replay, buf, opts.attempt())?;
        unframe_tunnel(self.spi, buf, &p, start)
    }
}

/// Strips the outer header and AH of a verified tunnel-mode packet.
fn unframe_tunnel<B: AsRef<[u8]> + AsMut<[u8]>>(
    spi: Spi,
    buf: &mut PacketBuf<B>,
    p: &Parsed,
    start: usize,
) -> Result<Opened, OpenError> {
    let (b, _, _) = buf.raw_mut();
    let end = start.saturating_add(p.loc.total_len);
    let inner_off = p.loc.hdr_len.saturating_add(p.ah_len);
    let inner_start = start.saturating_add(inner_off);
    let outer = b.get(start..end).unwrap_or(&[]);
    let (src, dst) = addresses(outer, p.loc.family);
    let tos = outer_tos(outer, p.loc.family);
    let inner = b.get_mut(inner_start..end).unwrap_or(&mut []);
    let bad = |e: ParseError| OpenError::Malformed(e.at(inner_off));
    let (family, inner_len) = match (p.next_header, ip::family(inner).map_err(bad)?) {
        (IpProto::IPV4, Family::Ipv4) => (Family::Ipv4, ip::check_v4(inner).map_err(bad)?.1),
        (IpProto::IPV6, Family::Ipv6) => (Family::Ipv6, ip::check_v6(inner).map_err(bad)?),
        _ => {
            return Err(OpenError::Malformed(ParseError::bad_value(
                p.loc.hdr_len,
                "inner protocol",
            )))
        }
    };
    apply_ecn(inner, family, tos).ok_or(OpenError::EcnDrop)?;
    buf.set_cursors(inner_start, inner_start.saturating_add(inner_len));
    Ok(Opened {
        spi,
        seq: p.seq,
        next_header: p.next_header,
        src,
        dst,
        ah_len: p.ah_len,
    })
}

/// Applies [`decap_ecn`] to the inner packet at the start of `inner` (already checked),
/// fixing the IPv4 header checksum when the ECN field changes. `None` means drop.
pub(crate) fn apply_ecn(inner: &mut [u8], family: Family, outer_tos: u8) -> Option<()> {
    match family {
        Family::Ipv4 => {
            let (h, _) = Ipv4Header::mut_from_prefix(&mut *inner).ok()?;
            let e = decap_ecn(h.tos, outer_tos)?;
            if e != h.tos & 0b11 {
                h.tos = (h.tos & !0b11) | e;
                let _ = ip::set_v4_checksum(inner);
            }
            Some(())
        }
        Family::Ipv6 => {
            let (h, _) = Ipv6Header::mut_from_prefix(inner).ok()?;
            let e = decap_ecn(h.traffic_class(), outer_tos)?;
            let v = h.ver_tc_flow.get();
            h.ver_tc_flow
                .set((v & !(0b11 << 20)) | (u32::from(e) << 20));
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_families_refused() {
        let c = TunnelConfig::new("10.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        assert_eq!(Tunnel::new(c).unwrap_err(), AddressFamilyMismatch);
    }

    #[test]
    fn outer_ipv4_header() {
        let mut c = TunnelConfig::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        c.df = DfPolicy::Copy;
        let mut t = Tunnel::new(c).unwrap();
        t.set_next_ident(7);
        let mut out = [0u8; 20];
        let meta = InnerMeta {
            next_header: IpProto::IPV4,
            tos: 0xb9,
            df: true,
        };
        let i = t.take_ident();
        t.write_outer(&mut out, 100, &meta, i).unwrap();
        assert_eq!(
            &out[..12],
            &[0x45, 0xb9, 0, 100, 0, 7, 0x40, 0, 64, 51, out[10], out[11]]
        );
        assert_eq!(ipv4_checksum(&out), 0);
        let i = t.take_ident();
        t.write_outer(&mut out, 100, &meta, i).unwrap();
        assert_eq!(out[5], 8);
        assert!(t.write_outer(&mut out, 70_000, &meta, 0).is_err());
        assert!(t.write_outer(&mut out[..19], 100, &meta, 0).is_err());
    }
}
