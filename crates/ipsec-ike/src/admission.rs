//! Admission of new responder SAs: stateless cookies (RFC 7296 §2.6), the half-open
//! accounting behind the caps of [`Config`](crate::Config), and the endpoint's
//! counters ([`EndpointStats`]).
//!
//! Every operation here is O(log n) in the number of half-open SAs: the endpoint
//! calls [`Admission::settle`] for each SA it touched that is no longer half-open, so
//! the counts never need a scan.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::IpAddr;

use ipsec_core::{IkeSpi, Instant};
use ipsec_crypto::{CryptoError, CryptoProvider, PrfId, SecretBytes};
use zeroize::Zeroize;

use crate::event::SaHandle;
use crate::keys;

/// What an [`IkeEndpoint`](crate::IkeEndpoint) holds and what it refused, for
/// monitoring and leak checks ([`IkeEndpoint::stats`](crate::IkeEndpoint::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// IKE SAs held, in every state (including closed ones still answering
    /// retransmissions).
    pub ike_sas: usize,
    /// Responder SAs waiting for IKE_AUTH.
    pub half_open: usize,
    /// Source addresses with at least one half-open SA.
    pub half_open_sources: usize,
    /// IKE SPIs registered.
    pub ike_spis: usize,
    /// Inbound Child SA SPIs reserved.
    pub child_spis: usize,
    /// SA timers armed.
    pub timers: usize,
    /// Datagrams queued for [`poll_transmit`](crate::IkeEndpoint::poll_transmit).
    pub queued_transmits: usize,
    /// Events queued for [`poll_event`](crate::IkeEndpoint::poll_event).
    pub queued_events: usize,
    /// IKE_SA_INIT requests answered with a COOKIE (since the endpoint was made).
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests answered with a PUZZLE (RFC 8019).
    pub puzzles_sent: u64,
    /// IKE_SA_INIT requests dropped for a missing or wrong puzzle solution.
    pub puzzles_failed: u64,
    /// IKE_SA_INIT requests dropped for exceeding `Config::max_init_request_len`.
    pub init_too_large: u64,
    /// IKE_SA_INIT requests dropped because their source held
    /// `Config::max_half_open_per_source` half-open SAs.
    pub refused_per_source: u64,
    /// Half-open SAs displaced by newer ones at `Config::max_half_open`.
    pub half_open_evicted: u64,
    /// IKE_SA_INIT requests dropped at `Config::max_half_open` because every
    /// half-open SA outranked them.
    pub refused_full: u64,
    /// Datagrams on port 4500 without the Non-ESP Marker that were shaped like IKE
    /// messages ([`Handled::MarkerMissing`](crate::Handled::MarkerMissing)).
    pub marker_missing: u64,
    /// Handshakes by outcome, and retransmissions.
    pub ike: crate::shared::IkeCounters,
}

/// The secrets behind cookies, replaced every `Config::cookie_secret_lifetime`.
struct CookieSecrets {
    version: u32,
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
    created: Instant,
}

impl Drop for CookieSecrets {
    fn drop(&mut self) {
        self.current.zeroize();
        if let Some(p) = self.previous.as_mut() {
            p.zeroize();
        }
    }
}

/// One half-open responder SA as admission sees it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The source address, when a valid cookie proved it.
    verified: Option<IpAddr>,
    rank: u32,
}

/// Half-open accounting, cookie secrets and counters.
///
/// Each half-open SA has a rank: 0 admitted without a cookie, 1 with a valid
/// cookie, 1 + the zero bits of its puzzle solution when a puzzle was asked for and
/// solved (RFC 8019 §7.1.4: more work, more priority). At `Config::max_half_open` a
/// new SA displaces the oldest SA of the lowest rank, if that rank is not above its
/// own.
#[derive(Default)]
pub(crate) struct Admission {
    cookies: Option<CookieSecrets>,
    half_open: BTreeMap<SaHandle, Entry>,
    /// The same SAs ordered by (rank, age): handles grow with time.
    by_rank: BTreeSet<(u32, SaHandle)>,
    /// Half-open SAs admitted with a valid cookie, per source address (entries with a
    /// count of zero are removed).
    per_source: BTreeMap<IpAddr, usize>,
    pub stats: EndpointStats,
}

impl Admission {
    /// How many responder SAs are half open.
    pub(crate) fn half_open(&self) -> usize {
        self.half_open.len()
    }

    /// How many cookie-verified half-open SAs `ip` holds.
    pub(crate) fn held_by(&self, ip: IpAddr) -> usize {
        self.per_source.get(&ip).copied().unwrap_or(0)
    }

    /// The SA a newcomer of `rank` may displace: the oldest of the lowest rank, if
    /// that rank is not above `rank`.
    pub(crate) fn victim(&self, rank: u32) -> Option<SaHandle> {
        self.by_rank
            .first()
            .filter(|(r, _)| *r <= rank)
            .map(|(_, h)| *h)
    }

    /// Records a new half-open SA of `rank`; `verified` is its source address when the
    /// request carried a valid cookie, so the address is real and counts against that
    /// source's cap. (Requests without a cookie are admitted only below the cookie
    /// threshold, which bounds them; counting their possibly spoofed sources would let
    /// a spoofer use up a victim's quota.)
    pub(crate) fn admit(&mut self, h: SaHandle, verified: Option<IpAddr>, rank: u32) {
        if self.half_open.insert(h, Entry { verified, rank }).is_none() {
            self.by_rank.insert((rank, h));
            if let Some(ip) = verified {
                *self.per_source.entry(ip).or_insert(0) += 1;
            }
        }
        self.refresh();
    }

    /// Records that `h` is no longer half open (established, closed or gone).
    pub(crate) fn settle(&mut self, h: SaHandle) {
        if let Some(e) = self.half_open.remove(&h) {
            self.by_rank.remove(&(e.rank, h));
            if let Some(ip) = e.verified {
                if let Some(n) = self.per_source.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_source.remove(&ip);
                    }
                }
            }
        }
        self.refresh();
    }

    fn refresh(&mut self) {
        self.stats.half_open = self.half_open.len();
        self.stats.half_open_sources = self.per_source.len();
    }

    /// Replaces the cookie secret when it is older than `life` (making one first).
    pub(crate) fn rotate_cookies(
        &mut self,
        provider: &CryptoProvider,
        now: Instant,
        life: ipsec_core::Duration,
    ) -> Result<(), CryptoError> {
        match &mut self.cookies {
            None => {
                self.cookies = Some(CookieSecrets {
                    version: 0,
                    current: keys::random(provider, 32)?,
                    previous: None,
                    created: now,
                });
            }
            Some(c) if now >= c.created + life => {
                let next = keys::random(provider, 32)?;
                let old = core::mem::replace(&mut c.current, next);
                if let Some(mut p) = c.previous.replace(old) {
                    p.zeroize();
                }
                c.version = c.version.wrapping_add(1);
                c.created = now;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// A cookie for this request under the current secret.
    pub(crate) fn make_cookie(
        &self,
        provider: &CryptoProvider,
        ni: &[u8],
        ip: IpAddr,
        spi_i: IkeSpi,
    ) -> Option<Vec<u8>> {
        let c = self.cookies.as_ref()?;
        cookie(provider, c.version, &c.current, ni, ip, spi_i)
    }

    /// Whether `got` is a cookie we made for this request, under the current or the
    /// previous secret; compared in constant time.
    pub(crate) fn cookie_ok(
        &self,
        provider: &CryptoProvider,
        got: &[u8],
        ni: &[u8],
        ip: IpAddr,
        spi_i: IkeSpi,
    ) -> bool {
        let Some(c) = &self.cookies else { return false };
        let Some(v) = got
            .get(..4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_be_bytes)
        else {
            return false;
        };
        let secret = if v == c.version {
            Some(&c.current)
        } else if v == c.version.wrapping_sub(1) {
            c.previous.as_ref()
        } else {
            None
        };
        let Some(secret) = secret else { return false };
        let Some(want) = cookie(provider, v, secret, ni, ip, spi_i) else {
            return false;
        };
        SecretBytes::from_slice(&want) == SecretBytes::from_slice(got)
    }
}

/// `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)` (RFC 7296 §2.6),
/// with an HMAC keyed by the secret as the hash, cut to 16 bytes.
fn cookie(
    provider: &CryptoProvider,
    version: u32,
    secret: &[u8],
    ni: &[u8],
    ip: IpAddr,
    spi_i: IkeSpi,
) -> Option<Vec<u8>> {
    let prf = provider
        .prf(PrfId::PRF_HMAC_SHA2_256)
        .or_else(|| provider.prfs.first().copied())?;
    let ipb: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mac = ipsec_crypto::kdf::prf(prf, secret, &[ni, &ipb, &spi_i.0]).ok()?;
    let mut c = version.to_be_bytes().to_vec();
    c.extend_from_slice(mac.expose().get(..16).unwrap_or(mac.expose()));
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    #[test]
    fn half_open_counts_follow_updates() {
        let mut a = Admission::default();
        a.admit(SaHandle(1), Some(ip(1)), 1);
        a.admit(SaHandle(2), Some(ip(1)), 1);
        a.admit(SaHandle(3), Some(ip(2)), 5);
        a.admit(SaHandle(4), None, 0);
        // A repeated admission of the same SA counts once.
        a.admit(SaHandle(3), Some(ip(2)), 5);
        assert_eq!(a.half_open(), 4);
        assert_eq!(a.held_by(ip(1)), 2);
        // The lowest rank goes first, whatever its age.
        assert_eq!(a.victim(0), Some(SaHandle(4)));
        a.settle(SaHandle(4));
        assert_eq!(
            a.victim(0),
            None,
            "a rank-0 newcomer displaces no rank-1 SA"
        );
        assert_eq!(a.victim(1), Some(SaHandle(1)));
        a.settle(SaHandle(1));
        a.settle(SaHandle(1));
        assert_eq!(a.held_by(ip(1)), 1);
        assert_eq!(a.victim(7), Some(SaHandle(2)));
        a.settle(SaHandle(2));
        assert_eq!(a.victim(4), None);
        assert_eq!(a.victim(5), Some(SaHandle(3)));
        a.settle(SaHandle(3));
        assert_eq!(a.half_open(), 0);
        assert_eq!(a.stats.half_open_sources, 0);
        assert!(a.per_source.is_empty());
        assert!(a.by_rank.is_empty());
    }
}
