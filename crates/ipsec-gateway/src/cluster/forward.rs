//! IKE messages forwarded between the nodes of a cluster: a node that receives an
//! IKE message for an IKE SA another node owns sends it to that node over the
//! cluster network, sealed under the cluster key (so nobody on that network can
//! inject IKE messages with a forged source), with the addresses it arrived with.
//!
//! A frame (inside the seal): version 2, the sender's clock (milliseconds since the
//! Unix epoch, 8 bytes), then the local and the remote socket address (1 byte family
//! 4 or 6, the address, 2 bytes port, each), then the UDP payload as received.
//!
//! A receiver takes each sealed frame once ([`ReplayFilter`]): within
//! [`REPLAY_WINDOW_MS`] of its clock, and never twice (by the seal's random nonce), so
//! a frame captured on the cluster network cannot be replayed to make the owner
//! answer again. The nodes' clocks must agree within that window (NTP); the clock
//! has no part in the nonce invariant of ESP.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The seal's name for forwarded frames (its associated data).
pub const FORWARD_NAME: &str = "ike-forward";

/// Why a forwarded frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than its header says.
    #[error("frame truncated")]
    Truncated,
    /// A version this code does not read.
    #[error("frame version {0}")]
    Version(u8),
    /// An address family other than 4 and 6.
    #[error("address family {0}")]
    Family(u8),
}

/// How far a forwarded frame's clock may be from the receiver's.
pub const REPLAY_WINDOW_MS: u64 = 30_000;
/// The most frames a [`ReplayFilter`] remembers (beyond, the oldest are forgotten).
pub const REPLAY_MEMORY: usize = 65_536;

/// An IKE datagram as a node received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// When the forwarding node sent it, in milliseconds since the Unix epoch.
    pub sent_ms: u64,
    /// The address and port it arrived on.
    pub local: SocketAddr,
    /// Where it came from.
    pub remote: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if b.len() < n {
        return Err(FrameError::Truncated);
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

fn get_addr(b: &mut &[u8]) -> Result<SocketAddr, FrameError> {
    let fam = take(b, 1)?[0];
    let ip = match fam {
        4 => {
            let o: [u8; 4] = take(b, 4)?.try_into().map_err(|_| FrameError::Truncated)?;
            IpAddr::V4(Ipv4Addr::from(o))
        }
        6 => {
            let o: [u8; 16] = take(b, 16)?.try_into().map_err(|_| FrameError::Truncated)?;
            IpAddr::V6(Ipv6Addr::from(o))
        }
        f => return Err(FrameError::Family(f)),
    };
    let p = take(b, 2)?;
    Ok(SocketAddr::new(ip, u16::from_be_bytes([p[0], p[1]])))
}

impl Forwarded {
    /// The frame's bytes (before sealing).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 48);
        out.push(2);
        out.extend_from_slice(&self.sent_ms.to_be_bytes());
        put_addr(&mut out, self.local);
        put_addr(&mut out, self.remote);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Reads a frame (after opening the seal).
    ///
    /// # Errors
    /// [`FrameError`]; never panics, whatever the bytes.
    pub fn decode(mut b: &[u8]) -> Result<Self, FrameError> {
        match take(&mut b, 1)?[0] {
            2 => {}
            v => return Err(FrameError::Version(v)),
        }
        let t: [u8; 8] = take(&mut b, 8)?
            .try_into()
            .map_err(|_| FrameError::Truncated)?;
        let local = get_addr(&mut b)?;
        let remote = get_addr(&mut b)?;
        Ok(Forwarded {
            sent_ms: u64::from_be_bytes(t),
            local,
            remote,
            payload: b.to_vec(),
        })
    }
}

/// Takes each forwarded frame once: refuses frames whose clock is more than
/// [`REPLAY_WINDOW_MS`] from ours, and frames whose seal nonce it has seen.
#[derive(Debug, Default)]
pub struct ReplayFilter {
    seen: HashSet<Vec<u8>>,
    order: VecDeque<(u64, Vec<u8>)>,
}

impl ReplayFilter {
    /// Whether to take the frame sealed with `nonce`, sent at `sent_ms`, received at
    /// `now_ms`; a taken frame is remembered.
    pub fn accept(&mut self, nonce: &[u8], sent_ms: u64, now_ms: u64) -> bool {
        while let Some((t, _)) = self.order.front() {
            if t.saturating_add(REPLAY_WINDOW_MS) < now_ms || self.order.len() >= REPLAY_MEMORY {
                if let Some((_, n)) = self.order.pop_front() {
                    self.seen.remove(&n);
                }
            } else {
                break;
            }
        }
        if sent_ms.saturating_add(REPLAY_WINDOW_MS) < now_ms
            || sent_ms > now_ms.saturating_add(REPLAY_WINDOW_MS)
            || !self.seen.insert(nonce.to_vec())
        {
            return false;
        }
        self.order.push_back((sent_ms.max(now_ms), nonce.to_vec()));
        true
    }
}

/// Milliseconds since the Unix epoch, for forwarded frames' freshness.
#[allow(
    clippy::disallowed_methods,
    reason = "wall time across nodes: freshness of forwarded frames, not protocol timing"
)]
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The IKE SPIs (initiator's, responder's) of an IKE datagram as received on port
/// `local_port` (after the Non-ESP Marker on any port but 500), if it is long enough
/// to have them.
pub fn ike_spis(local_port: u16, payload: &[u8]) -> Option<(u64, u64)> {
    ike_header(local_port, payload).map(|(spis, _)| spis)
}

/// The IKE SPIs of an IKE datagram sent or received on `local_port`, and whether it
/// is a response (the R flag, RFC 7296 §3.1).
pub fn ike_header(local_port: u16, payload: &[u8]) -> Option<((u64, u64), bool)> {
    let msg = if local_port != 500 && payload.starts_with(&[0, 0, 0, 0]) {
        payload.get(4..)?
    } else {
        payload
    };
    let i = u64::from_be_bytes(msg.get(0..8)?.try_into().ok()?);
    let r = u64::from_be_bytes(msg.get(8..16)?.try_into().ok()?);
    let flags = *msg.get(19)?;
    Some(((i, r), flags & 0x20 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let f = Forwarded {
            sent_ms: 1_700_000_000_000,
            local: "198.18.200.1:4500".parse().unwrap(),
            remote: "[2001:db8::7]:61000".parse().unwrap(),
            payload: vec![0, 0, 0, 0, 1, 2, 3],
        };
        assert_eq!(Forwarded::decode(&f.encode()), Ok(f.clone()));
        let e = f.encode();
        for n in 0..(1 + 8 + 7 + 1 + 18) {
            assert_eq!(
                Forwarded::decode(&e[..n]),
                Err(FrameError::Truncated),
                "{n}"
            );
        }
        let mut bad = e.clone();
        bad[0] = 1;
        assert_eq!(Forwarded::decode(&bad), Err(FrameError::Version(1)));
        let mut bad = e;
        bad[9] = 5;
        assert_eq!(Forwarded::decode(&bad), Err(FrameError::Family(5)));
    }

    #[test]
    fn a_frame_is_taken_once_and_only_when_fresh() {
        let mut f = ReplayFilter::default();
        let now = 1_000_000;
        assert!(f.accept(b"nonce-1", now, now));
        assert!(!f.accept(b"nonce-1", now, now + 5), "replayed");
        assert!(f.accept(b"nonce-2", now - 1_000, now));
        assert!(
            !f.accept(b"nonce-3", now - REPLAY_WINDOW_MS - 1, now),
            "stale"
        );
        assert!(
            !f.accept(b"nonce-4", now + REPLAY_WINDOW_MS + 1, now),
            "from the future"
        );
        // Forgotten after the window: by then its clock refuses it anyway.
        let later = now + 2 * REPLAY_WINDOW_MS;
        assert!(!f.accept(b"nonce-1", now, later));
        assert!(f.seen.len() <= 1);
    }

    #[test]
    fn spis_after_the_non_esp_marker() {
        let mut m = vec![0, 0, 0, 0];
        m.extend_from_slice(&7u64.to_be_bytes());
        m.extend_from_slice(&9u64.to_be_bytes());
        // Next payload, version, exchange type, flags (a response), Message ID, length.
        m.extend_from_slice(&[46, 0x20, 37, 0x20, 0, 0, 0, 1, 0, 0, 0, 28]);
        assert_eq!(ike_spis(4500, &m), Some((7, 9)));
        assert_eq!(ike_spis(500, &m[4..]), Some((7, 9)));
        assert_eq!(ike_header(500, &m[4..]), Some(((7, 9), true)));
        m[23] = 0x08; // the initiator flag alone: a request
        assert_eq!(ike_header(4500, &m), Some(((7, 9), false)));
        assert_eq!(ike_spis(4500, &m[..19]), None);
        assert_eq!(ike_spis(4500, &m[..23]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Forwarded::decode(&b);
            let _ = ike_spis(4500, &b);
        }
    }
}
