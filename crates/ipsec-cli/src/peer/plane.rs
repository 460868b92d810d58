//! The data plane of `ipsec connect` and `ipsec listen`: the SAD the gateway's driver
//! installs the Child SAs into, on the UDP socket of port 4500 (ESP in UDP, RFC 3948).
//! Outbound, an inner packet goes through the SPD to its Child SA
//! ([`Sad::process_outbound_udp`]); inbound, an ESP packet is opened by the SA its SPI
//! names and checked against its selectors ([`Sad::process_inbound_udp`]). What cannot
//! be sent or opened is a drop reason (the SAD's names, `unknown_spi`, `integrity`,
//! `replay`, ...) and a message; the caller counts it.

use std::net::{SocketAddr, UdpSocket};

use ipsec::core::{Instant, PacketBuf};
use ipsec::sad::{DropReason, Sad, UdpInbound, UdpOutbound};

/// Headroom in the send buffer, in front of the inner packet (at least the SAD's
/// `MAX_HEADROOM`).
pub(super) const SEND_HEAD: usize = crate::tunnel::HEADROOM;
/// Headroom in the receive buffer: the IP header the SAD puts back in front of the
/// UDP payload.
pub(super) const RECV_HEAD: usize = ipsec::sad::UDP_INBOUND_HEADROOM;

/// A packet not sent: the reason it is counted under, and the message.
pub(super) type NotSent = (&'static str, String);

/// Seals an inner IP packet through the SAD and sends it as ESP in UDP to the SA's
/// peer, or to `moved` when the peer's NAT mapping changed since (the SAD's SAs keep
/// the address they were negotiated with). Returns the outbound SPI used.
pub(super) fn send_esp(
    sad: &Sad,
    now: Instant,
    sock: &UdpSocket,
    pkt: &[u8],
    buf: &mut [u8],
    moved: Option<SocketAddr>,
) -> Result<u32, NotSent> {
    buf.get_mut(SEND_HEAD..SEND_HEAD + pkt.len())
        .ok_or(("too_large", "larger than the send buffer".to_string()))?
        .copy_from_slice(pkt);
    let mut pb = PacketBuf::new(&mut *buf, SEND_HEAD, pkt.len())
        .map_err(|e| ("too_large", e.to_string()))?;
    let (spi, to) = match sad.process_outbound_udp(now, &mut pb) {
        UdpOutbound::Send { spi, to, .. } => (spi.0, moved.unwrap_or(to)),
        UdpOutbound::Drop(r) => return Err((r.as_str(), format!("seal: {}", describe(r)))),
        UdpOutbound::NeedsRawIp { .. } => {
            return Err((
                "not_udp_encap",
                "the Child SA has no UDP encapsulation".to_string(),
            ))
        }
        UdpOutbound::Acquire(_) => {
            return Err(("no_sa", "no Child SA for this packet (yet)".to_string()))
        }
        _ => {
            return Err((
                "no_policy",
                "outside the Child SA's traffic selectors".to_string(),
            ))
        }
    };
    // What one UDP datagram holds over IPv4 (65535 - 20 - 8) and over IPv6.
    let max = if to.is_ipv4() { 65_507 } else { 65_527 };
    if pb.body().len() > max {
        return Err((
            "too_large",
            format!(
                "{} bytes of ESP do not fit in a UDP datagram",
                pb.body().len()
            ),
        ));
    }
    sock.send_to(pb.body(), to)
        .map_err(|e| ("send_failed", format!("send: {e}")))?;
    Ok(spi)
}

/// Opens the ESP packet of `n` bytes at [`RECV_HEAD`] in `buf`, which arrived at
/// `local` from `remote`: the inner packet, or why it was dropped.
pub(super) fn open_esp<'b>(
    sad: &Sad,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    buf: &'b mut [u8],
    n: usize,
) -> Result<&'b [u8], DropReason> {
    let mut pb = PacketBuf::new(&mut *buf, RECV_HEAD, n).map_err(|_| DropReason::Malformed)?;
    match sad.process_inbound_udp(now, local, remote, &mut pb) {
        UdpInbound::Deliver { .. } => {}
        UdpInbound::Drop(r) => return Err(r),
        // Sorted out before (classify): not ESP.
        _ => return Err(DropReason::Malformed),
    }
    let range = pb.body_range();
    buf.get(range).ok_or(DropReason::Malformed)
}

/// What a drop reason means, for the message.
pub(super) fn describe(r: DropReason) -> &'static str {
    match r {
        DropReason::UnknownSpi => "unknown SPI",
        DropReason::Integrity => "integrity check failed",
        DropReason::Replay => "replay check failed",
        DropReason::Malformed => "malformed packet",
        DropReason::Padding => "bad padding",
        DropReason::Dummy => "dummy packet",
        DropReason::PolicyMismatch => "outside the Child SA's traffic selectors",
        DropReason::Expired => "the Child SA is gone",
        DropReason::NotUdpEncap => "the Child SA has no UDP encapsulation",
        DropReason::TooLarge => "too large",
        other => other.as_str(),
    }
}
