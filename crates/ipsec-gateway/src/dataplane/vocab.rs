//! The data plane's shared vocabulary: what the control loop and the workers exchange,
//! the packet device, and the clock.

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;

use ipsec::core::time::StdClock;
use ipsec::core::Instant;
#[cfg(doc)]
use ipsec::sad::Sad;

pub use ipsec::core::NAT_T_PORT;

/// The process's monotonic clock as the SAD wants it: nanoseconds since the first call
/// in this process. The data plane stamps every packet with it; the control loop must
/// use it too for everything it gives the same [`Sad`].
pub fn now() -> Instant {
    static CLOCK: OnceLock<StdClock> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the gateway is where the clock is read
    let (clock, t) = (
        CLOCK.get_or_init(|| StdClock::new(std::time::Instant::now())),
        std::time::Instant::now(),
    );
    clock.instant(t)
}

/// A datagram that arrived on a NAT-T socket with the Non-ESP Marker in front: an IKE
/// message (RFC 3948 §2.2) for the control loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeDatagram {
    /// The address and port of the socket it arrived on (reply from there with
    /// [`IkeSender::send`](super::IkeSender::send)).
    pub local: SocketAddr,
    /// Where it came from.
    pub remote: SocketAddr,
    /// The UDP payload as received, the four-byte Non-ESP Marker included.
    pub payload: Vec<u8>,
}

/// What the data plane tells the control loop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToControl {
    /// An IKE message arrived.
    Ike(IkeDatagram),
    /// The SAD has events pending (an outbound packet met a PROTECT rule without an
    /// SA, so an ACQUIRE may be queued): drain [`Sad::poll_event`]. Sent at most every
    /// 50 ms, however many packets need an SA; the SAD itself reports an ACQUIRE once
    /// per rule per [`SadConfig::acquire_retry`](ipsec::sad::SadConfig::acquire_retry).
    /// Other events (soft expiry, sequence numbers running out) are not signalled: the
    /// control loop polls after [`Sad::handle_timeout`] anyway.
    SadEvent,
    /// An IKE message another node of the cluster forwarded (it owns no IKE SA
    /// here but ours): handle it, never forward it again.
    Forwarded(IkeDatagram),
    /// Another part of the gateway queued work for the control loop (the cluster's
    /// commands): drain it.
    Wake,
}

/// Where the data plane reads and writes IP packets: a TUN queue, or anything else that
/// moves whole IP packets (tests use channels).
///
/// `recv` blocks for a packet but must come back within a short time (half a second or
/// so) with an error of kind [`io::ErrorKind::WouldBlock`], [`io::ErrorKind::TimedOut`]
/// or [`io::ErrorKind::Interrupted`] when none arrives, or as soon as
/// [`PacketDevice::interrupt`] is called, so that [`Dataplane::shutdown`](super::Dataplane::shutdown) is prompt.
pub trait PacketDevice: Send + Sync {
    /// Reads one IP packet into `buf` and returns its length.
    ///
    /// # Errors
    /// A timeout (see the trait's docs), or the device's error.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes one IP packet.
    ///
    /// # Errors
    /// The device's error.
    fn send(&self, packet: &[u8]) -> io::Result<usize>;

    /// Wakes a `recv` blocked in another thread, and every later one, for shutdown.
    /// The default does nothing (then `recv`'s timeout ends the wait).
    fn interrupt(&self) {}

    /// Reads one or more IP packets: packet `i` into `bufs[i][offset..]`, its length
    /// into `sizes[i]`; returns how many. A device with segmentation offload (a TUN
    /// device with `IFF_VNET_HDR`) reads one large TCP or UDP segment into `scratch`
    /// and splits it into MTU-sized packets with their checksums. `bufs[0]` must hold
    /// any packet; the others at least an MTU. `sizes` is as long as `bufs`.
    ///
    /// The default reads one packet with [`PacketDevice::recv`] into `bufs[0]`.
    ///
    /// # Errors
    /// As [`PacketDevice::recv`]; a segment that does not fit.
    fn recv_multiple(
        &self,
        scratch: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        let _ = scratch;
        let (Some(b), Some(s)) = (bufs.first_mut(), sizes.first_mut()) else {
            return Ok(0);
        };
        let n = self.recv(b.get_mut(offset..).unwrap_or_default())?;
        *s = n;
        Ok(1)
    }

    /// Writes the packets `bufs[i][offset..]` (each `Vec`'s length ends its packet).
    /// `offset` is at least [`DEVICE_HEADROOM`]: a device with offload puts its
    /// header there, and may coalesce consecutive TCP or UDP segments of a flow into
    /// one large packet (GRO), growing a buffer up to its capacity and reordering
    /// `bufs`. Every packet is tried; the buffers' contents are unspecified afterwards.
    ///
    /// The default writes each with [`PacketDevice::send`].
    ///
    /// # Errors
    /// The last write error (the other packets were still written).
    fn send_multiple(&self, bufs: &mut [Vec<u8>], offset: usize) -> io::Result<()> {
        let mut r = Ok(());
        for b in bufs.iter() {
            if let Err(e) = self.send(b.get(offset..).unwrap_or_default()) {
                r = Err(e);
            }
        }
        r
    }
}

/// The bytes [`PacketDevice::send_multiple`] may use in front of each packet (a
/// virtio-net header, 10 bytes, rounded up).
pub const DEVICE_HEADROOM: usize = 16;
