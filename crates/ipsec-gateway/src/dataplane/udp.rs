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
    let socket: UdpSocket = s.into();
    let local = socket.local_addr()?;
    Ok(NatTSocket {
        local,
        socket: Arc::new(socket),
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
