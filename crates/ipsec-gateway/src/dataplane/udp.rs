//! The NAT-T sockets (RFC 3948): one per local address per worker, all bound to the
//! same address and port with `SO_REUSEPORT`, so the kernel spreads the peers over
//! the workers; and the [`IkeSender`] that sends IKE messages out of them.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::stats::Counters;

/// How long a blocked `recv_from` waits before the worker looks at its stop flag.
pub(crate) const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// One bound NAT-T socket and the address it is bound to (with the real port).
#[derive(Debug, Clone)]
pub(crate) struct NatTSocket {
    pub(crate) local: SocketAddr,
    pub(crate) socket: Arc<UdpSocket>,
    /// The kernel takes UDP GSO sends on it ([`send_gso`]).
    pub(crate) gso: bool,
}

/// Binds `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), with the receive timeout
/// set. IPv6 sockets are IPv6-only, so an IPv4 and an IPv6 address can share a port.
fn bind_one(addr: SocketAddr) -> io::Result<NatTSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    s.set_reuse_port(true)?;
    s.bind(&SockAddr::from(addr))?;
    s.set_read_timeout(Some(RECV_TIMEOUT))?;
    let gso = tune(&s);
    let socket: UdpSocket = s.into();
    let local = socket.local_addr()?;
    Ok(NatTSocket {
        local,
        socket: Arc::new(socket),
        gso,
    })
}

/// The sockets of every worker: `result[w]` holds worker `w`'s socket for each local
/// address, in the order of `addrs`. Port 0 picks a free port for the first worker's
/// socket and binds the other workers to that same port.
pub(crate) fn bind_all(
    addrs: &[IpAddr],
    port: u16,
    workers: usize,
) -> io::Result<Vec<Vec<NatTSocket>>> {
    let mut per_worker: Vec<Vec<NatTSocket>> = (0..workers).map(|_| Vec::new()).collect();
    for ip in addrs {
        let first = bind_one(SocketAddr::new(*ip, port))?;
        let bound = first.local;
        let mut it = per_worker.iter_mut();
        if let Some(w) = it.next() {
            w.push(first);
        }
        for w in it {
            w.push(bind_one(bound)?);
        }
    }
    Ok(per_worker)
}

/// Sends IKE messages out of the data plane's NAT-T sockets (RFC 3948 §2.2: from port
/// 4500, with the Non-ESP Marker the caller puts in front). Cheap to clone; every
/// clone sends through the same sockets.
#[derive(Debug, Clone)]
pub struct IkeSender {
    sockets: Arc<[NatTSocket]>,
    counters: Arc<Counters>,
}

impl IkeSender {
    pub(crate) fn new(sockets: Vec<NatTSocket>, counters: Arc<Counters>) -> Self {
        IkeSender {
            sockets: sockets.into(),
            counters,
        }
    }

    /// Sends `payload` as one UDP datagram from the socket bound to `local` (the
    /// address an [`IkeDatagram`](super::IkeDatagram) arrived on, or a configured local
    /// address and port) to `remote`. The payload is sent as it is: an IKE message on
    /// port 4500 starts with the four zero bytes of the Non-ESP Marker (RFC 3948 §2.2).
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] when no socket is bound to `local`
    /// (IPv4-mapped IPv6 addresses count as IPv4); otherwise the socket's send error.
    pub fn send(&self, local: SocketAddr, remote: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let want = SocketAddr::new(local.ip().to_canonical(), local.port());
        let s = self
            .sockets
            .iter()
            .find(|s| s.local == want)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no NAT-T socket is bound to {local}"),
                )
            })?;
        s.socket.send_to(payload, remote)?;
        Counters::one(&self.counters.ike_out);
        Ok(())
    }

    /// The addresses the sockets are bound to (each with the port actually bound).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|s| s.local).collect()
    }
}

/// The socket buffers asked for (`SO_RCVBUF`/`SO_SNDBUF`): a burst of sealed
/// segments (64 KB per GSO send, several per TCP window) must not overflow them. With
/// `CAP_NET_ADMIN` the `*FORCE` options go past `net.core.rmem_max`/`wmem_max`;
/// without it the kernel caps the plain ones there.
pub(crate) const SOCKET_BUFFER: usize = 4 << 20;

/// The most segments in one UDP GSO send (the kernel's `UDP_MAX_SEGMENTS`, 64 before
/// Linux 6.9).
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;

/// The most payload bytes in one UDP GSO send (an IPv4 datagram's 65 535 bytes less
/// its IP and UDP headers).
pub(crate) const GSO_MAX_BYTES: usize = 65_507;

/// Sizes the socket's buffers and asks for UDP GRO (Linux: datagrams of one flow
/// arrive coalesced, [`recv`] splits them again). Failures are not errors: the
/// socket works without. Returns whether the kernel knows UDP GSO (`UDP_SEGMENT`,
/// Linux 4.18): an older one would ignore the control message and send one huge
/// datagram.
#[cfg(target_os = "linux")]
fn tune(s: &Socket) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(s, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    }
    if setsockopt(s, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    }
    if let Err(e) = setsockopt(s, sockopt::UdpGroSegment, &true) {
        tracing::debug!(error = %e, "no UDP GRO on the NAT-T socket");
    }
    let gso = nix::sys::socket::getsockopt(s, sockopt::UdpGsoSegment).is_ok();
    if !gso {
        tracing::debug!("no UDP GSO on the NAT-T socket");
    }
    gso
}

#[cfg(not(target_os = "linux"))]
fn tune(s: &Socket) -> bool {
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    false
}

/// The control-message buffer [`recv`] needs (room for the GRO segment size).
pub(crate) fn recv_control() -> Vec<u8> {
    #[cfg(target_os = "linux")]
    {
        nix::cmsg_space!(i32)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// Receives a datagram into `buf`: its length, sender, and the length of the
/// datagrams it is made of (with UDP GRO, several of one flow arrive as one: all of
/// that length but the last, which may be shorter). `control` is [`recv_control`]'s.
///
/// # Errors
/// The socket's (a timeout as [`io::ErrorKind::WouldBlock`]).
#[cfg(target_os = "linux")]
pub(crate) fn recv(
    sock: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
    dont_wait: bool,
) -> io::Result<(usize, SocketAddr, usize)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let flags = if dont_wait {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(sock.as_raw_fd(), &mut iov, Some(control), flags)
        .map_err(io::Error::from)?;
    let n = msg.bytes;
    let mut stride = n;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::UdpGroSegments(s) = c {
                stride = usize::try_from(s).unwrap_or(n);
            }
        }
    }
    let from = msg.address.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::V4((*v4).into()))
            .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
    });
    let from = from.ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "a datagram without its sender")
    })?;
    Ok((n, from, stride.clamp(1, n.max(1))))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv(
    sock: &UdpSocket,
    buf: &mut [u8],
    _control: &mut [u8],
    dont_wait: bool,
) -> io::Result<(usize, SocketAddr, usize)> {
    if dont_wait {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let (n, from) = sock.recv_from(buf)?;
    Ok((n, from, n.max(1)))
}

/// The `cmsghdr` of a `UDP_SEGMENT` control message with `size`, as the kernel reads
/// it: `cmsg_len` (a `size_t`; with musl a 32-bit length beside 32 bits of padding,
/// the same bytes for the small values here), `cmsg_level`, `cmsg_type`, then the
/// `u16`, padded to `CMSG_SPACE(2)`. Returns the buffer and its used length.
#[cfg(target_os = "linux")]
fn udp_segment_control(size: u16) -> ([u8; 32], usize) {
    const W: usize = std::mem::size_of::<usize>();
    const fn align(n: usize) -> usize {
        (n + W - 1) & !(W - 1)
    }
    let hdr = align(std::mem::size_of::<libc::cmsghdr>());
    let len = hdr + 2;
    let space = hdr + align(2);
    let mut c = [0u8; 32];
    c[..W].copy_from_slice(&len.to_ne_bytes());
    c[W..W + 4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
    c[W + 4..W + 8].copy_from_slice(&libc::UDP_SEGMENT.to_ne_bytes());
    c[hdr..hdr + 2].copy_from_slice(&size.to_ne_bytes());
    (c, space)
}

/// Sends `segments` to `to` as one UDP GSO send (Linux `UDP_SEGMENT`): the kernel
/// cuts the concatenation into datagrams of `size` bytes (the last may be shorter),
/// so each segment but the last must be exactly `size` long. At most
/// [`GSO_MAX_SEGMENTS`] segments and [`GSO_MAX_BYTES`] bytes.
///
/// # Errors
/// The socket's: `EIO` when the route's device cannot checksum, `EINVAL` for a
/// segment larger than the path's MTU; on other systems than Linux,
/// [`io::ErrorKind::Unsupported`].
#[cfg(target_os = "linux")]
pub(crate) fn send_gso(
    sock: &UdpSocket,
    to: SocketAddr,
    segments: &[std::io::IoSlice<'_>],
    size: u16,
) -> io::Result<usize> {
    let (control, len) = udp_segment_control(size);
    let addr = SockAddr::from(to);
    let msg = socket2::MsgHdr::new()
        .with_addr(&addr)
        .with_buffers(segments)
        .with_control(control.get(..len).unwrap_or_default());
    socket2::SockRef::from(sock).sendmsg(&msg, 0)
}

/// True when a [`send_gso`] error says GSO cannot work on that route at all (`EIO`:
/// the device cannot checksum UDP), not just for that send.
pub(crate) fn gso_unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.raw_os_error() == Some(libc::EIO)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        true
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send_gso(
    _sock: &UdpSocket,
    _to: SocketAddr,
    _segments: &[std::io::IoSlice<'_>],
    _size: u16,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::IoSlice;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// Segments 0..n, each `size` long but the last (`last` long), filled with its number.
    fn segments(n: usize, size: usize, last: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![i as u8; if i + 1 == n { last } else { size }])
            .collect()
    }

    #[test]
    fn a_gso_send_arrives_as_separate_datagrams() {
        let tx = bind_one(SocketAddr::new(LO, 0)).unwrap();
        let rx = UdpSocket::bind((LO, 0)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let segs = segments(5, 1200, 333);
        let iov: Vec<IoSlice<'_>> = segs.iter().map(|s| IoSlice::new(s)).collect();
        let n = send_gso(&tx.socket, rx.local_addr().unwrap(), &iov, 1200).unwrap();
        assert_eq!(n, 4 * 1200 + 333);
        let mut buf = [0u8; 4096];
        for s in &segs {
            let (k, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..k], from), (&s[..], tx.local));
        }
    }

    #[test]
    fn a_gro_receive_reports_the_segment_size() {
        let tx = bind_one(SocketAddr::new(LO, 0)).unwrap();
        let rx = bind_one(SocketAddr::new(LO, 0)).unwrap();
        let segs = segments(7, 1000, 10);
        let iov: Vec<IoSlice<'_>> = segs.iter().map(|s| IoSlice::new(s)).collect();
        send_gso(&tx.socket, rx.local, &iov, 1000).unwrap();
        // Whether they arrive coalesced or one by one, cutting at the reported size
        // gives the datagrams back.
        let mut control = recv_control();
        let mut buf = vec![0u8; 65_535];
        let mut got = Vec::new();
        while got.len() < segs.len() {
            let (n, from, stride) = recv(&rx.socket, &mut buf, &mut control, false).unwrap();
            assert_eq!(from, tx.local);
            got.extend(buf[..n].chunks(stride).map(<[u8]>::to_vec));
        }
        assert_eq!(got, segs);
        // Nothing more: a non-blocking receive says so at once.
        let e = recv(&rx.socket, &mut buf, &mut control, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn the_segment_control_message_is_what_libc_builds() {
        let (c, len) = udp_segment_control(1436);
        // libc's CMSG_SPACE(2) and CMSG_LEN(2) (= CMSG_SPACE(0) + 2), through nix.
        use nix::sys::socket::cmsg_space;
        assert_eq!(len, cmsg_space::<u16>());
        let w = std::mem::size_of::<usize>();
        let cmsg_len = usize::from_ne_bytes(c[..w].try_into().unwrap());
        assert_eq!(cmsg_len, cmsg_space::<()>() + 2);
        let int = |at: usize| i32::from_ne_bytes(c[at..at + 4].try_into().unwrap());
        assert_eq!((int(w), int(w + 4)), (libc::SOL_UDP, libc::UDP_SEGMENT));
        let hdr = cmsg_space::<()>();
        assert_eq!(u16::from_ne_bytes([c[hdr], c[hdr + 1]]), 1436);
    }
}
