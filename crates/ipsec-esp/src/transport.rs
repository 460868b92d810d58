//! Transport mode ([RFC 4303 §3.1.1]): ESP goes between the IP header and the upper-layer
//! protocol of the original packet.
//!
//! ```text
//!             BEFORE APPLYING ESP                    AFTER APPLYING ESP
//! IPv4   |orig IP hdr  |     |      |       |orig IP hdr |[UDP]| ESP |     |   ESP   | ESP|
//!        |(any options)| TCP | Data |  ->   |(any opts)  |3948 | Hdr | TCP | Trailer | ICV|
//!
//! IPv6   | orig |ext hdrs|     |      |     | orig |hop-by-hop,dest*,|[UDP]|ESP|dest|TCP|Data|ESP    |ESP|
//!        |IP hdr|if any  | TCP | Data | ->  |IP hdr|routing,fragment.|3948 |Hdr|opt*|   |    |Trailer|ICV|
//!
//!     * destination options may come before ESP (when a routing header follows) or
//!       after it (for the final destination): see RFC 4303 §3.1.1.
//! ```
//!
//! [`EspOutbound::seal_transport`] takes a whole IP packet in the body and moves its IP header (with the
//! extension headers that stay in front of ESP) into the headroom, so that ESP can seal
//! the rest in place; then it fixes the total/payload length, the protocol or next
//! header, and the IPv4 header checksum. [`EspInbound::open_transport`] reverses this
//! and rebuilds the
//! original packet. Only whole datagrams are protected (RFC 4303 §3.3.4).
//!
//! With UDP encapsulation through a NAT, the upper-layer checksum of the rebuilt packet
//! may refer to the peer's original addresses (RFC 3948 §3.1.2); fixing it with the
//! NAT-OA addresses is the caller's job.
//!
//! [RFC 4303 §3.1.1]: https://www.rfc-editor.org/rfc/rfc4303#section-3.1.1

use core::net::{IpAddr, Ipv6Addr};

use ipsec_core::ip::walk::IpVersion;
use ipsec_core::ip::Ipv6Header;
use ipsec_core::IpProto;
use zerocopy::FromBytes;

use crate::ip::{self, LocateError, Located, Walk};
use crate::sa::{
    EspInbound, EspOutbound, OpenError, OpenOptions, Opened, Overhead, ReplayGuard, SealError,
};
use crate::trace;
use crate::udp::{self, UdpPorts, UDP_HEADER_LEN};
use crate::wire::{EmitError, ParseError};
use ipsec_core::PacketBuf;

/// Why a transport-mode operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The IP (or UDP) header is malformed.
    #[error("malformed header: {0}")]
    Malformed(ParseError),
    /// The packet is a fragment; transport mode needs whole datagrams.
    #[error("fragment; transport mode needs whole datagrams")]
    Fragment,
    /// A received packet carries no ESP.
    #[error("packet does not carry ESP")]
    NotEsp,
    /// The protected packet would not fit its length field.
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
    /// Sealing failed (the packet is unchanged).
    #[error("seal: {0}")]
    Seal(SealError),
    /// Opening failed.
    #[error("open: {0}")]
    Open(OpenError),
}

impl TransportError {
    /// A short `snake_case` name for counters and JSON (the ESP reason for
    /// [`TransportError::Seal`] and [`TransportError::Open`]).
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Fragment => "fragment",
            Self::NotEsp => "not_esp",
            Self::TooLarge => "too_large",
            Self::InsufficientRoom { .. } => "insufficient_room",
            Self::Seal(e) => e.reason(),
            Self::Open(e) => e.reason(),
        }
    }
}

impl From<LocateError> for TransportError {
    fn from(e: LocateError) -> Self {
        match e {
            LocateError::Parse(e) => Self::Malformed(e),
            LocateError::Fragment => Self::Fragment,
            LocateError::NotEsp => Self::NotEsp,
        }
    }
}

/// What [`EspInbound::open_transport`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unprotected {
    /// The ESP result; `next_header` is now the packet's protocol again.
    pub opened: Opened,
    /// The UDP ports, when ESP was UDP-encapsulated.
    pub udp: Option<UdpPorts>,
}

/// The exact room [`EspOutbound::seal_transport`] needs for `packet`.
///
/// # Errors
/// As [`EspOutbound::seal_transport`] for a malformed packet or a fragment.
pub fn overhead(esp: &EspOutbound, packet: &[u8], udp: bool) -> Result<Overhead, TransportError> {
    let s = ip::locate(packet, Walk::Protect, false)?;
    Ok(overhead_for(esp, &s, udp))
}

fn overhead_for(esp: &EspOutbound, s: &Located, udp: bool) -> Overhead {
    let o = esp.overhead(s.total_len.saturating_sub(s.header_len));
    Overhead {
        head: o.head.saturating_add(if udp { UDP_HEADER_LEN } else { 0 }),
        tail: o.tail,
    }
}

impl EspOutbound {
    /// Protects the IPv4 or IPv6 packet in the body in transport mode, optionally
    /// UDP-encapsulated, and returns the ESP sequence number. The body then holds the
    /// protected packet, starting with its (moved) IP header.
    ///
    /// # Errors
    /// [`TransportError::Malformed`], [`TransportError::Fragment`],
    /// [`TransportError::TooLarge`], [`TransportError::InsufficientRoom`] and
    /// [`TransportError::Seal`]; the body is unchanged in every case.
    pub fn seal_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        udp: Option<UdpPorts>,
    ) -> Result<u64, TransportError> {
        let s = locate_for_seal(buf)?;
        let o = overhead_for(self, &s, udp.is_some());
        if self.seq_counter().remaining() == 0 {
            let e = SealError::SequenceExhausted;
            trace::trace!(spi = %self.spi(), reason = e.reason(), "ESP packet not sealed");
            return Err(TransportError::Seal(e));
        }
        protect_with(buf, udp, &s, o, |b, p| self.seal(b, p))
    }

    /// Protects like [`EspOutbound::seal_transport`], with the sequence number `seq`
    /// chosen by the caller and the SA shared ([`EspOutbound::seal_at`]: the caller never
    /// uses a number twice).
    ///
    /// # Errors
    /// As [`EspOutbound::seal_transport`]; [`SealError::SequenceExhausted`] when `seq` is
    /// 0 or past the limit.
    pub fn seal_transport_at<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        udp: Option<UdpPorts>,
        seq: u64,
    ) -> Result<u64, TransportError> {
        let s = locate_for_seal(buf)?;
        let o = overhead_for(self, &s, udp.is_some());
        protect_with(buf, udp, &s, o, |b, p| self.seal_at(b, p, seq))
    }
}

/// The IP header of a packet to seal, with an event when there is none to use.
fn locate_for_seal<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &PacketBuf<B>,
) -> Result<Located, TransportError> {
    ip::locate(buf.body(), Walk::Protect, false)
        .map_err(TransportError::from)
        .inspect_err(|e| {
            trace::trace!(reason = e.reason(), error = %e, "ESP packet not sealed");
        })
}

/// [`frame`], with an event for a packet refused for its framing (the ESP seal has its
/// own).
fn protect_with<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    udp: Option<UdpPorts>,
    s: &Located,
    o: Overhead,
    seal: impl FnOnce(&mut PacketBuf<B>, IpProto) -> Result<u64, SealError>,
) -> Result<u64, TransportError> {
    frame(buf, udp, s, o, seal).inspect_err(|e| {
        if !matches!(e, TransportError::Seal(_)) {
            trace::trace!(reason = e.reason(), error = %e, "ESP packet not sealed");
        }
    })
}

/// Moves the IP header into the headroom, seals the rest with `seal`, and puts the
/// header (and a UDP header) back in front.
fn frame<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    udp: Option<UdpPorts>,
    s: &Located,
    o: Overhead,
    seal: impl FnOnce(&mut PacketBuf<B>, IpProto) -> Result<u64, SealError>,
) -> Result<u64, TransportError> {
    let orig = buf.body_range();
    let start = orig.start;
    let end = start.saturating_add(s.total_len);
    let tailroom = buf.buffer().len().saturating_sub(end);
    if start < o.head || tailroom < o.tail {
        return Err(TransportError::InsufficientRoom {
            head: o.head,
            tail: o.tail,
        });
    }
    let new_total = s.total_len.saturating_add(o.total());
    if new_total > s.version.max_total_len() {
        return Err(TransportError::TooLarge);
    }
    let hl = s.header_len;
    let new_start = start.saturating_sub(o.head);
    {
        let (b, _, _) = buf.raw_mut();
        b.copy_within(start..start.saturating_add(hl), new_start);
    }
    buf.set_cursors(start.saturating_add(hl), end);
    let seq = match seal(buf, s.proto) {
        Ok(seq) => seq,
        Err(e) => {
            // Put the header back: the caller gets the packet as it was.
            let (b, _, _) = buf.raw_mut();
            b.copy_within(new_start..new_start.saturating_add(hl), start);
            buf.set_cursors(orig.start, orig.end);
            return Err(TransportError::Seal(e));
        }
    };
    let esp_end = buf.body_range().end;
    let proto = if let Some(ports) = udp {
        let addrs = addresses(buf.buffer().get(new_start..).unwrap_or(&[]), s.version);
        // The room and the length were checked above, so this cannot fail.
        udp::encap(buf, ports, addrs).map_err(|e| match e {
            EmitError::BufferTooSmall { .. } => TransportError::InsufficientRoom {
                head: o.head,
                tail: o.tail,
            },
            _ => TransportError::TooLarge,
        })?;
        IpProto::UDP
    } else {
        IpProto::ESP
    };
    buf.set_cursors(new_start, esp_end);
    let total = buf.body_len();
    let hdr = buf.body_mut().get_mut(..hl).unwrap_or(&mut []);
    ip::fix(hdr, s, total, proto).map_err(TransportError::Malformed)?;
    Ok(seq)
}

fn addresses(packet: &[u8], version: IpVersion) -> Option<(IpAddr, IpAddr)> {
    if version != IpVersion::V6 {
        return None;
    }
    let (h, _) = Ipv6Header::ref_from_prefix(packet).ok()?;
    Some((
        IpAddr::V6(Ipv6Addr::from(h.src)),
        IpAddr::V6(Ipv6Addr::from(h.dst)),
    ))
}

impl EspInbound {
    /// Verifies and decrypts a transport-mode packet in the body with this SA's own
    /// anti-replay window ([`EspInbound::open`]) and rebuilds the original packet: IP
    /// header (with the extension headers in front of ESP) followed by the decrypted
    /// payload, with length, protocol / next header and IPv4 checksum restored.
    ///
    /// With [`OpenOptions::resync`] the buffer holds the packet as it arrived and the
    /// scratch at least as many bytes as its ESP packet.
    ///
    /// # Errors
    /// [`TransportError::Malformed`] (including a bad IPv4 header checksum),
    /// [`TransportError::Fragment`], [`TransportError::NotEsp`] and
    /// [`TransportError::Open`] (with [`OpenError::Integrity`] when the packet, or,
    /// re-synchronizing, every high half, does not authenticate). The body range is
    /// unchanged on error.
    pub fn open_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        opts: OpenOptions<'_>,
    ) -> Result<Unprotected, TransportError> {
        unprotect_impl(buf, |b| self.open(b, opts))
    }
}

impl<W> EspInbound<W> {
    /// Opens like [`EspInbound::open_transport`] through a shared SA, with the
    /// anti-replay window kept by the caller ([`EspInbound::open_with`]).
    ///
    /// # Errors
    /// As [`EspInbound::open_transport`].
    pub fn open_transport_with<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
        &self,
        buf: &mut PacketBuf<B>,
        replay: &mut R,
        opts: OpenOptions<'_>,
    ) -> Result<Unprotected, TransportError> {
        unprotect_impl(buf, |b| self.open_with(b, replay, opts))
    }
}

/// [`unframe`], with an event for a packet dropped for its framing (the ESP open has
/// its own).
fn unprotect_impl<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    open: impl FnOnce(&mut PacketBuf<B>) -> Result<Opened, OpenError>,
) -> Result<Unprotected, TransportError> {
    unframe(buf, open).inspect_err(|e| {
        if !matches!(e, TransportError::Open(_)) {
            trace::trace!(reason = e.reason(), error = %e, "ESP packet dropped");
        }
    })
}

/// Locates ESP behind the IP (and UDP) header, opens it with `open`, and rebuilds the
/// original packet around the payload.
fn unframe<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    open: impl FnOnce(&mut PacketBuf<B>) -> Result<Opened, OpenError>,
) -> Result<Unprotected, TransportError> {
    let s = ip::locate(buf.body(), Walk::ToEsp, true)?;
    let hl = s.header_len;
    let orig = buf.body_range();
    let start = orig.start;
    let end = start.saturating_add(s.total_len);
    let ip_payload = start.saturating_add(hl);
    let (esp_start, esp_end, udp_ports) = if s.proto == IpProto::UDP {
        let seg = buf.buffer().get(ip_payload..end).unwrap_or(&[]);
        let (ports, payload) = udp::parse(seg).map_err(TransportError::Malformed)?;
        if !matches!(udp::classify(payload), udp::Classified::Esp(_)) {
            return Err(TransportError::NotEsp);
        }
        let esp_start = ip_payload.saturating_add(UDP_HEADER_LEN);
        (
            esp_start,
            esp_start.saturating_add(payload.len()),
            Some(ports),
        )
    } else {
        (ip_payload, end, None)
    };
    buf.set_cursors(esp_start, esp_end);
    let opened = match open(buf) {
        Ok(o) => o,
        Err(e) => {
            buf.set_cursors(orig.start, orig.end);
            return Err(TransportError::Open(e));
        }
    };
    let payload = buf.body_range();
    let new_start = payload.start.saturating_sub(hl);
    {
        let (b, _, _) = buf.raw_mut();
        b.copy_within(start..start.saturating_add(hl), new_start);
    }
    buf.set_cursors(new_start, payload.end);
    let total = buf.body_len();
    let hdr = buf.body_mut().get_mut(..hl).unwrap_or(&mut []);
    ip::fix(hdr, &s, total, opened.next_header).map_err(TransportError::Malformed)?;
    Ok(Unprotected {
        opened,
        udp: udp_ports,
    })
}
