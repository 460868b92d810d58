//! MOBIKE for `ipsec connect` (RFC 4555 §3.5): the sockets are bound to one local
//! address, so once a second (or at once after a send failed with EADDRNOTAVAIL) the
//! run asks the kernel which source address the route to the peer uses now (a
//! connected UDP socket's local address, as `args::route_source`). When it changed
//! (with `--local`: only once that address is gone),
//! both sockets are bound to the new address and the driver moves the IKE SA
//! (`Driver::local_address_changed`: UPDATE_SA_ADDRESSES from the new address; its
//! answer moves the Child SAs in the SAD).

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Run;
use crate::args::route_source;

/// How often the route's source address is checked.
const EVERY: Duration = Duration::from_secs(1);

/// When the local address was last checked, and whether a send failed since.
#[derive(Debug, Default)]
pub(super) struct Roam {
    last: Option<Instant>,
    /// A send failed with EADDRNOTAVAIL: check at once.
    pub(super) due: bool,
}

/// Whether a send error says our source address is gone.
pub(super) fn address_gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::AddrNotAvailable
}

impl Run<'_> {
    /// As initiator with an established IKE SA: rebinds and moves the IKE SA when the
    /// route to the peer has another source address than the one we are bound to.
    pub(super) fn roam(&mut self, now: ipsec::core::Instant, wall: Instant) -> Result<(), String> {
        if !self.initiate || self.p.established_at.is_none() {
            return Ok(());
        }
        let due = self.roam.due
            || self
                .roam
                .last
                .is_none_or(|t| wall.duration_since(t) >= EVERY);
        if !due {
            return Ok(());
        }
        self.roam.last = Some(wall);
        self.roam.due = false;
        let Some(h) = self.sa else { return Ok(()) };
        let Some((_, remote)) = self.driver.endpoint().addresses(h) else {
            return Ok(());
        };
        let old = self.l4500.ip();
        if old.is_unspecified() {
            return Ok(());
        }
        // With --local the address is the user's: move only once it is gone.
        let gone = UdpSocket::bind(SocketAddr::new(old, 0)).is_err_and(|e| address_gone(&e));
        if self.args.local.is_some() && !gone {
            return Ok(());
        }
        let Some(new) = route_source(remote).filter(|n| *n != old) else {
            return Ok(());
        };
        let bind = |port: u16| -> Result<UdpSocket, String> {
            let s = UdpSocket::bind(SocketAddr::new(new, port))
                .map_err(|e| format!("bind {new}:{port}: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(s)
        };
        let (s500, s4500) = (bind(self.l500.port())?, bind(4500)?);
        self.l500 = s500.local_addr().map_err(|e| e.to_string())?;
        self.l4500 = s4500.local_addr().map_err(|e| e.to_string())?;
        self.s500 = s500;
        self.s4500 = s4500;
        let moved = self.driver.local_address_changed(now, old, self.l4500);
        self.out.event(
            json!({"event": "local_address_changed", "old": old.to_string(),
                   "new": new.to_string(), "ike_sas": moved}),
            || format!("local address changed {old} -> {new}: {moved} IKE_SA(s) moving (MOBIKE)"),
        );
        Ok(())
    }
}
