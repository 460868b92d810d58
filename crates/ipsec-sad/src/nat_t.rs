//! ESP-in-UDP through a UDP socket ([RFC 3948]): the processing model on the UDP
//! payload and the peer's socket address instead of whole IP datagrams.
//!
//! ```text
//! whole datagram (process_inbound / process_outbound):   | IP | UDP | ESP ... |
//! UDP payload (process_inbound_udp / process_outbound_udp):          | ESP ... |
//!                                                  + local and remote SocketAddr
//! ```
//!
//! A gateway that receives on a UDP socket bound to port 4500 gets only the payload
//! and the 4-tuple from the operating system, and sends only a payload. Both entry
//! points run the same pipeline as the whole-datagram ones: inbound, the IP header the
//! socket took away (source the remote address, destination the local one, protocol
//! ESP) is put back in front of the ESP packet and the SA opens it as it opens any
//! datagram, selector checks included; outbound, the SA seals without UDP and the IP
//! header in front of ESP is dropped again.
//!
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948

use core::net::{IpAddr, SocketAddr};

use ipsec_core::ip::{ipv4_checksum, Ipv4Header, Ipv6Header};
use ipsec_core::{Instant, IpProto, PacketBuf, SecurityProtocol, Spi};
use ipsec_esp::udp::{self, Classified};
use zerocopy::network_endian::{U16, U32};
use zerocopy::IntoBytes;

use crate::classify::Direction;
use crate::event::Acquire;
use crate::process::NotSealed;
use crate::sa::{InboundLookup, SaId, Shape};
use crate::sad::{with_inbound, Sad, SadReader, Tables};
use crate::spd::PolicyId;
use crate::stats::DropReason;

/// Bytes of headroom that [`Sad::process_inbound_udp`] needs in front of the UDP
/// payload: the IPv6 header it puts back (40; 20 for IPv4).
pub const UDP_INBOUND_HEADROOM: usize = 40;

/// What [`Sad::process_outbound_udp`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpOutbound {
    /// Protected: the buffer holds the ESP packet (from the SPI on, no IP or UDP
    /// header), to be sent as the payload of a UDP datagram to `to` (RFC 3948 §2.1).
    Send {
        /// The SA that sealed it.
        sa: SaId,
        /// Its outbound SPI.
        spi: Spi,
        /// The sequence number used.
        seq: u64,
        /// The rule that matched.
        policy: PolicyId,
        /// The SA's remote address and UDP encapsulation port.
        to: SocketAddr,
    },
    /// The rule's SA does not use UDP encapsulation (or is AH): it must be sent as
    /// raw IP with [`Sad::process_outbound`]. The buffer is unchanged and no sequence
    /// number was used.
    NeedsRawIp {
        /// The rule's SA.
        sa: SaId,
        /// The rule that matched.
        policy: PolicyId,
    },
    /// A BYPASS rule matched: send the packet as it is (not through the UDP socket).
    Bypass(PolicyId),
    /// Drop it: a DISCARD rule matched (`Some`), or no rule did (`None`).
    Discard(Option<PolicyId>),
    /// A PROTECT rule matched but has no usable SA, as [`Outbound::Acquire`](crate::Outbound::Acquire).
    Acquire(Acquire),
    /// Not sent, for this reason.
    Drop(DropReason),
}

/// What [`Sad::process_inbound_udp`] did with a UDP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpInbound {
    /// Authentic and within the SA's selectors: the buffer holds the inner packet (in
    /// transport mode behind an IP header from the remote to the local address).
    Deliver {
        /// The SA it arrived on.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
        /// Its (ESN-inferred) sequence number.
        seq: u64,
        /// What the inner packet is (IPv4/IPv6 in tunnel mode, the transport protocol
        /// in transport mode).
        next_header: IpProto,
        /// The address and port it came from.
        remote: SocketAddr,
        /// `remote` is not the SA's remote address and encapsulation port: the peer's
        /// NAT mapping changed (RFC 7296 §2.23). The packet authenticated, so the
        /// control plane may move the SA's peer to `remote`; the SAD does not.
        peer_moved: bool,
    },
    /// An IKE message (RFC 3948 §2.2): the buffer holds it, the Non-ESP Marker removed.
    /// Hand it to the IKE endpoint.
    Ike,
    /// A NAT-keepalive (RFC 3948 §2.3): nothing to do. Counted as
    /// [`DropReason::NatKeepalive`], as on the whole-datagram path.
    Keepalive,
    /// Dropped for this reason.
    Drop(DropReason),
}

impl Sad {
    /// Outbound processing (RFC 4301 §5.1) of the IP packet in `buf` for a UDP socket:
    /// the same SPD lookup, verdicts and sealing as [`Sad::process_outbound`], but an
    /// SA with UDP encapsulation leaves only the ESP packet in the buffer, to be sent
    /// as a UDP payload to [`UdpOutbound::Send`]'s `to` from the NAT-T port (RFC 3948
    /// §2.1). An SA without UDP encapsulation gives [`UdpOutbound::NeedsRawIp`] and
    /// leaves the packet as it was. Allocates nothing.
    ///
    /// Headroom and tailroom as for [`Sad::process_outbound`] ([`MAX_HEADROOM`],
    /// [`MAX_TAILROOM`]): the IP header is written, then dropped. In transport mode the
    /// packet's IP header is not sent; IPv6 extension headers in front of ESP are lost
    /// with it.
    ///
    /// [`MAX_HEADROOM`]: crate::MAX_HEADROOM
    /// [`MAX_TAILROOM`]: crate::MAX_TAILROOM
    pub fn process_outbound_udp<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
    ) -> UdpOutbound {
        let sealed = self.outbound_with(now, buf, |sa, policy, buf| {
            let path = sa.path();
            let encap = match path.udp_encap {
                Some(e) if sa.protocol == SecurityProtocol::Esp => e,
                _ => return Ok(UdpOutbound::NeedsRawIp { sa: sa.id, policy }),
            };
            let seq = sa.seal(now, buf, &self.events, Shape::UdpPayload, &path)?;
            Ok(UdpOutbound::Send {
                sa: sa.id,
                spi: sa.outbound_spi,
                seq,
                policy,
                to: SocketAddr::new(path.remote_addr, encap.remote_port),
            })
        });
        match sealed {
            Ok(o) => o,
            Err(NotSealed::Bypass(p)) => UdpOutbound::Bypass(p),
            Err(NotSealed::Discard(p)) => UdpOutbound::Discard(p),
            Err(NotSealed::Acquire(a)) => UdpOutbound::Acquire(a),
            Err(NotSealed::Drop(r)) => UdpOutbound::Drop(r),
        }
    }

    /// Inbound processing (RFC 4301 §5.2) of a UDP payload that a socket on the NAT-T
    /// port received from `remote` on `local` (IPv4-mapped IPv6 addresses count as
    /// IPv4). The payload is sorted as RFC 3948 §2.2–2.3 says: a keepalive
    /// ([`UdpInbound::Keepalive`]), an IKE message behind the Non-ESP Marker
    /// ([`UdpInbound::Ike`]), or ESP, which is looked up by SPI (and, for SAs looked up
    /// by address, with `local` and `remote` as outer destination and source), then
    /// opened and checked exactly as [`Sad::process_inbound`] does: replay window,
    /// ICV, tunnel or transport unframing, the inner packet against the SA's
    /// selectors. Allocates nothing.
    ///
    /// The peer: an SA negotiated without UDP encapsulation refuses the payload
    /// ([`DropReason::NotUdpEncap`]). When `remote` is not the SA's remote address and
    /// encapsulation port, an SA looked up by SPI (or SPI and destination) opens the
    /// packet and reports the new address in [`UdpInbound::Deliver`] (`peer_moved`),
    /// so the control plane can follow a NAT rebinding after authentication (RFC 7296
    /// §2.23); an SA looked up by source address too ([`InboundLookup::SpiDstSrc`])
    /// is bound to its peer and refuses it before decrypting
    /// ([`DropReason::PeerMismatch`]; another address does not find it at all,
    /// [`DropReason::UnknownSpi`]). The local port is the socket's business and is not
    /// checked.
    ///
    /// The buffer needs [`UDP_INBOUND_HEADROOM`] bytes of headroom. The outer ECN bits
    /// are not seen (the socket keeps them), so tunnel mode leaves the inner ones as
    /// they are; transport mode rebuilds the packet with a fresh IPv4 or IPv6 header
    /// (TTL 64, no options) and, behind a NAT, upper-layer checksums may refer to the
    /// peer's original addresses (RFC 3948 §3.1.2), as on the whole-datagram path.
    pub fn process_inbound_udp<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &mut PacketBuf<B>,
    ) -> UdpInbound {
        inbound_udp(&mut &*self, now, local, remote, buf)
    }
}

impl SadReader<'_> {
    /// As [`Sad::process_inbound_udp`], without a memory barrier per packet.
    pub fn process_inbound_udp<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &mut PacketBuf<B>,
    ) -> UdpInbound {
        inbound_udp(self, now, local, remote, buf)
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn drop_udp(sad: &Sad, r: DropReason) -> UdpInbound {
    sad.count_drop(Direction::Inbound, r, None);
    UdpInbound::Drop(r)
}

fn inbound_udp<'s, T: Tables<'s>, B: AsRef<[u8]> + AsMut<[u8]>>(
    tables: &mut T,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    buf: &mut PacketBuf<B>,
) -> UdpInbound {
    let sad = tables.sad();
    let (local, remote) = (canonical(local), canonical(remote));
    let spi = match udp::classify(buf.body()) {
        Classified::Esp(&[a, b, c, d, ..]) => Spi::from_be_bytes([a, b, c, d]),
        Classified::Keepalive => {
            sad.count_drop(Direction::Inbound, DropReason::NatKeepalive, None);
            return UdpInbound::Keepalive;
        }
        Classified::Ike(_) => {
            return match buf.pull_front(udp::NON_ESP_MARKER.len()) {
                Ok(()) => UdpInbound::Ike,
                Err(_) => drop_udp(sad, DropReason::Malformed),
            };
        }
        Classified::Esp(_) | Classified::Malformed => {
            return drop_udp(sad, DropReason::Malformed);
        }
    };
    if local.is_ipv4() != remote.is_ipv4() {
        return drop_udp(sad, DropReason::Malformed);
    }
    let events = &sad.events;
    let r = with_inbound(
        tables,
        spi,
        SecurityProtocol::Esp,
        local.ip(),
        remote.ip(),
        |sa| {
            let path = sa.path();
            let Some(encap) = path.udp_encap else {
                sa.count_drop(Direction::Inbound, DropReason::NotUdpEncap);
                return UdpInbound::Drop(DropReason::NotUdpEncap);
            };
            let peer_moved = remote.ip() != path.remote_addr || remote.port() != encap.remote_port;
            if peer_moved && sa.lookup == InboundLookup::SpiDstSrc {
                sa.count_drop(Direction::Inbound, DropReason::PeerMismatch);
                return UdpInbound::Drop(DropReason::PeerMismatch);
            }
            if let Err(e) = push_ip_header(buf, remote.ip(), local.ip()) {
                sa.count_drop(Direction::Inbound, e);
                return UdpInbound::Drop(e);
            }
            // Lifetimes, replay, ICV, unframing and selectors: the datagram path.
            match sa.open(now, buf, events) {
                Ok(o) => UdpInbound::Deliver {
                    sa: sa.id,
                    spi,
                    seq: o.seq,
                    next_header: o.next_header,
                    remote,
                    peer_moved,
                },
                Err(e) => UdpInbound::Drop(e),
            }
        },
    );
    r.unwrap_or_else(|| {
        let r = DropReason::UnknownSpi;
        tables.sad().count_drop(Direction::Inbound, r, Some(spi));
        UdpInbound::Drop(r)
    })
}

/// Puts back the IP header that carried the ESP packet in the body, without the UDP
/// header: `src` to `dst`, protocol ESP, TTL 64, no options, no fragmentation.
fn push_ip_header<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    src: IpAddr,
    dst: IpAddr,
) -> Result<(), DropReason> {
    let len = buf.body_len();
    let v4;
    let v6;
    let hdr: &[u8] = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = len
                .checked_add(Ipv4Header::LEN)
                .and_then(|t| u16::try_from(t).ok())
                .ok_or(DropReason::TooLarge)?;
            let mut h = Ipv4Header {
                version_ihl: 0x45,
                tos: 0,
                total_len: U16::new(total),
                ident: U16::ZERO,
                flags_frag: U16::ZERO,
                ttl: 64,
                protocol: IpProto::ESP.0,
                checksum: U16::ZERO,
                src: s.octets(),
                dst: d.octets(),
            };
            h.checksum = U16::new(ipv4_checksum(h.as_bytes()));
            v4 = h;
            v4.as_bytes()
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            v6 = Ipv6Header {
                ver_tc_flow: U32::new(6 << 28),
                payload_len: U16::new(u16::try_from(len).map_err(|_| DropReason::TooLarge)?),
                next_header: IpProto::ESP.0,
                hop_limit: 64,
                src: s.octets(),
                dst: d.octets(),
            };
            v6.as_bytes()
        }
        _ => return Err(DropReason::Malformed),
    };
    buf.push_front(hdr.len())
        .map_err(|_| DropReason::NoRoom)?
        .copy_from_slice(hdr);
    Ok(())
}
