//! IKE messages forwarded between the nodes of a cluster: a node that receives an
//! IKE message for an IKE SA another node owns sends it to that node over the
//! cluster network, sealed under the cluster key (so nobody on that network can
//! inject IKE messages with a forged source), with the addresses it arrived with.
//!
//! A frame (inside the seal): version 1, then the local and the remote socket
//! address (1 byte family 4 or 6, the address, 2 bytes port, each), then the UDP
//! payload as received.

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

/// An IKE datagram as a node received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
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
        let mut out = Vec::with_capacity(self.payload.len() + 40);
        out.push(1);
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
            1 => {}
            v => return Err(FrameError::Version(v)),
        }
        let local = get_addr(&mut b)?;
        let remote = get_addr(&mut b)?;
        Ok(Forwarded {
            local,
            remote,
            payload: b.to_vec(),
        })
    }
}

/// The IKE SPIs (initiator's, responder's) of an IKE datagram as received on port
/// `local_port` (after the Non-ESP Marker on any port but 500), if it is long enough
/// to have them.
pub fn ike_spis(local_port: u16, payload: &[u8]) -> Option<(u64, u64)> {
    let msg = if local_port != 500 && payload.starts_with(&[0, 0, 0, 0]) {
        payload.get(4..)?
    } else {
        payload
    };
    let i = u64::from_be_bytes(msg.get(0..8)?.try_into().ok()?);
    let r = u64::from_be_bytes(msg.get(8..16)?.try_into().ok()?);
    Some((i, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let f = Forwarded {
            local: "198.18.200.1:4500".parse().unwrap(),
            remote: "[2001:db8::7]:61000".parse().unwrap(),
            payload: vec![0, 0, 0, 0, 1, 2, 3],
        };
        assert_eq!(Forwarded::decode(&f.encode()), Ok(f.clone()));
        let e = f.encode();
        for n in 0..(1 + 7 + 1 + 18) {
            assert_eq!(
                Forwarded::decode(&e[..n]),
                Err(FrameError::Truncated),
                "{n}"
            );
        }
        let mut bad = e.clone();
        bad[0] = 2;
        assert_eq!(Forwarded::decode(&bad), Err(FrameError::Version(2)));
        let mut bad = e;
        bad[1] = 5;
        assert_eq!(Forwarded::decode(&bad), Err(FrameError::Family(5)));
    }

    #[test]
    fn spis_after_the_non_esp_marker() {
        let mut m = vec![0, 0, 0, 0];
        m.extend_from_slice(&7u64.to_be_bytes());
        m.extend_from_slice(&9u64.to_be_bytes());
        assert_eq!(ike_spis(4500, &m), Some((7, 9)));
        assert_eq!(ike_spis(500, &m[4..]), Some((7, 9)));
        assert_eq!(ike_spis(4500, &m[..19]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Forwarded::decode(&b);
            let _ = ike_spis(4500, &b);
        }
    }
}
