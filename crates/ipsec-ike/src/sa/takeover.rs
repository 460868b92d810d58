//! IKE SA export and import (takeover by another node of a cluster): an established,
//! quiescent IKE SA to an [`IkeSaSnapshot`] and back. The snapshot types are
//! [`crate::snapshot`]'s; the endpoint registers the result
//! ([`IkeEndpoint::import_ike_sa`](crate::IkeEndpoint::import_ike_sa)).
//!
//! An imported SA is what `Established::new` builds after IKE_AUTH, with the
//! snapshot's session (SPIs, keys, Message IDs, cached response) and its Child SAs
//! installed with fresh rekey and expiry timers, as if just negotiated.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use ipsec_core::iana::{EncrId, IntegId, KeId, PrfId};
use ipsec_core::{IkeSpi, Instant, IpProto, Spi, TrafficSelector, MAX_SELECTORS};
use ipsec_crypto::suites::{self, EncrKind};
use ipsec_crypto::SecretBytes;

use crate::event::{ChildSaId, NatState, SaHandle};
use crate::keys::{self, IkeCrypto, RawSk};
use crate::proposal::Chosen;
use crate::sa::child_sa::{child_lifetime, ChildSa, ChildState};
use crate::sa::established::Established;
use crate::sa::mobike::Mobike;
use crate::sa::redirect::RedirectState;
use crate::sa::{IkeSa, State};
use crate::session::{Cached, Session};
use crate::shared::{Path, Shared};
use crate::snapshot::{
    CachedResponse, ChildSnapshot, ExportError, IkeSaSnapshot, IkeSnapshotKeys, ImportError,
    TsSnapshot, IKE_SNAPSHOT_VERSION,
};
use crate::timers::{Timer, Timers};

/// The most Child SAs a snapshot may hold (a bound on what an import allocates).
const MAX_CHILDREN: usize = 4096;

fn ts_out(t: &TrafficSelector) -> TsSnapshot {
    TsSnapshot {
        start_addr: t.start_addr,
        end_addr: t.end_addr,
        protocol: t.protocol.0,
        start_port: t.start_port,
        end_port: t.end_port,
    }
}

fn ts_in(v: &[TsSnapshot]) -> Result<Vec<TrafficSelector>, ImportError> {
    if v.len() > MAX_SELECTORS {
        return Err(ImportError::Invalid("traffic selectors"));
    }
    v.iter()
        .map(|t| {
            let ts = TrafficSelector {
                start_addr: t.start_addr,
                end_addr: t.end_addr,
                protocol: IpProto(t.protocol),
                start_port: t.start_port,
                end_port: t.end_port,
            };
            if t.start_addr.is_ipv4() != t.end_addr.is_ipv4() {
                Err(ImportError::AddressFamily)
            } else if !ts.is_valid() || t.start_port > t.end_port {
                Err(ImportError::Invalid("traffic selectors"))
            } else {
                Ok(ts)
            }
        })
        .collect()
}

impl IkeSa {
    /// Whether nothing is under way: no request of ours in flight or queued, no
    /// fragments being reassembled, no IKE or Child SA rekey, collision or
    /// deferred exchange unresolved, no old IKE SA or Child SA still on its way out.
    ///
    /// An old IKE SA whose deletion completed (`dead`: the peer deleted it, or
    /// answered our Delete) does not count: it only lingers to answer a
    /// retransmission of the peer's Delete, which the snapshot leaves out (the peer
    /// then gives up on an SA it is deleting anyway). Without this an export would
    /// be refused for the whole linger time (`Retransmit::total`) after each IKE SA
    /// rekey.
    fn quiescent(&self, e: &Established) -> bool {
        e.current.poll_timeout().is_none()
            && e.queue.is_empty()
            && !e.rekeying_ike
            && e.ike_collision.is_none()
            && e.deferred.is_none()
            && e.retiring.iter().all(|r| r.dead && !r.session.busy())
            && !e.mobike.again
            && !self.redirect.sent
            && e.current.retired_sk.is_none()
            && e.children
                .iter()
                .all(|c| c.state == ChildState::Installed && c.peer_rekey.is_none())
    }

    /// The snapshot of this IKE SA (see [`IkeEndpoint::export_ike_sa`](crate::IkeEndpoint::export_ike_sa)).
    pub(crate) fn export(&self) -> Result<IkeSaSnapshot, ExportError> {
        let State::Established(e) = &self.state else {
            return Err(ExportError::NotEstablished);
        };
        if e.deleting {
            return Err(ExportError::NotEstablished);
        }
        if !self.quiescent(e) {
            return Err(ExportError::Busy);
        }
        let s = &e.current;
        let c = &s.crypto;
        let ch = &c.chosen;
        Ok(IkeSaSnapshot {
            version: IKE_SNAPSHOT_VERSION,
            initiator: s.initiator,
            spi_i: s.spi_i.0,
            spi_r: s.spi_r.0,
            encr: ch.encr.id.0,
            encr_key_bits: ch.encr.key_bits,
            integ: ch.integ.map_or(0, |i| i.id.0),
            prf: ch.prf.map_or(0, |p| p.id.0),
            ke: ch.ke.map_or(0, |k| k.id.0),
            keys: IkeSnapshotKeys {
                sk_d: c.sk_d.expose().to_vec(),
                sk_pi: c.sk_pi.expose().to_vec(),
                sk_pr: c.sk_pr.expose().to_vec(),
                sk_ei: c.raw.sk_ei.expose().to_vec(),
                sk_er: c.raw.sk_er.expose().to_vec(),
                sk_ai: c.raw.sk_ai.expose().to_vec(),
                sk_ar: c.raw.sk_ar.expose().to_vec(),
            },
            fragment_mtu: s.fragment_mtu.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
            next_id: s.next_id,
            expect_id: s.expect_id,
            cached: s.cached.as_ref().map(|c| CachedResponse {
                id: c.id,
                datagrams: c.datagrams.clone(),
            }),
            local: self.path.local,
            remote: self.path.remote,
            local_behind_nat: self.nat.local_behind_nat,
            remote_behind_nat: self.nat.remote_behind_nat,
            mobike: e.mobike.negotiated,
            mobike_initiator: e.mobike.initiator,
            virtual_ips: self.vips.clone(),
            children: e
                .children
                .iter()
                .map(|c| ChildSnapshot {
                    inbound_spi: c.inbound_spi.0,
                    outbound_spi: c.outbound_spi.0,
                    local_ts: c.local_ts.iter().map(ts_out).collect(),
                    remote_ts: c.remote_ts.iter().map(ts_out).collect(),
                    transport: c.transport,
                })
                .collect(),
        })
    }

    /// The established IKE SA of `snap` as SA `handle`, under `cx.config`, with its
    /// SPIs registered in `cx` (nothing is registered when it fails). Returns it and
    /// the new ids of its Child SAs, in the snapshot's order.
    pub(crate) fn import(
        cx: &mut Shared,
        handle: SaHandle,
        now: Instant,
        snap: &IkeSaSnapshot,
    ) -> Result<(IkeSa, Vec<ChildSaId>), ImportError> {
        if snap.version != IKE_SNAPSHOT_VERSION {
            return Err(ImportError::Version(snap.version));
        }
        check_path(snap.local, snap.remote)?;
        let (spi_i, spi_r) = (IkeSpi(snap.spi_i), IkeSpi(snap.spi_r));
        if spi_i.is_zero() || spi_r.is_zero() {
            return Err(ImportError::InvalidSpi);
        }
        let crypto = crypto(cx, snap)?;
        if let Some(c) = &snap.cached {
            if c.id.wrapping_add(1) != snap.expect_id || c.datagrams.is_empty() {
                return Err(ImportError::Invalid("cached"));
            }
        }
        let fragment_mtu = match snap.fragment_mtu {
            Some(m) => Some(usize::try_from(m).map_err(|_| ImportError::Invalid("fragment_mtu"))?),
            None => None,
        };
        if snap.children.len() > MAX_CHILDREN {
            return Err(ImportError::Invalid("children"));
        }
        let mut children = Vec::with_capacity(snap.children.len());
        for c in &snap.children {
            if c.inbound_spi < 256 || c.outbound_spi < 256 {
                return Err(ImportError::InvalidSpi);
            }
            children.push((c, ts_in(&c.local_ts)?, ts_in(&c.remote_ts)?));
        }
        // Every SPI is free (and none twice in the snapshot) before any is taken.
        let local_spi = if snap.initiator { spi_i } else { spi_r };
        if cx.spis.contains_key(&local_spi) {
            return Err(ImportError::SpiInUse);
        }
        let mut inbound: Vec<u32> = snap.children.iter().map(|c| c.inbound_spi).collect();
        inbound.sort_unstable();
        if inbound.windows(2).any(|w| w[0] == w[1])
            || inbound.iter().any(|s| cx.child_spis.contains(s))
        {
            return Err(ImportError::SpiInUse);
        }

        let mut session = Session::new(spi_i, spi_r, snap.initiator, crypto, fragment_mtu);
        session.next_id = snap.next_id;
        session.expect_id = snap.expect_id;
        session.cached = snap.cached.as_ref().map(|c| Cached {
            id: c.id,
            datagrams: c.datagrams.clone(),
        });
        let nat = NatState {
            local_behind_nat: snap.local_behind_nat,
            remote_behind_nat: snap.remote_behind_nat,
        };
        let mut e = Established::new(cx, now, session, nat);
        e.mobike = Mobike {
            negotiated: snap.mobike,
            initiator: snap.mobike_initiator,
            ..Mobike::default()
        };
        let mut ids = Vec::with_capacity(children.len());
        for (c, local_ts, remote_ts) in children {
            let (rekey_at, expire_at, _) = child_lifetime(cx, now);
            let id = cx.child_id();
            ids.push(id);
            e.children.push(ChildSa {
                id,
                inbound_spi: Spi(c.inbound_spi),
                outbound_spi: Spi(c.outbound_spi),
                local_ts,
                remote_ts,
                transport: c.transport,
                state: ChildState::Installed,
                timers: Timers::new()
                    .with(Timer::Rekey, rekey_at)
                    .with(Timer::Expire, expire_at),
                peer_rekey: None,
            });
            cx.child_spis.insert(c.inbound_spi);
        }
        cx.spis.insert(local_spi, handle);
        let redirect = if snap.initiator {
            RedirectState::initiator(cx.config.follow_redirects, None)
        } else {
            RedirectState::default()
        };
        let sa = IkeSa {
            handle,
            config: Arc::clone(&cx.config),
            path: Path {
                local: snap.local,
                remote: snap.remote,
            },
            nat,
            state: State::Established(Box::new(e)),
            my_spis: alloc::vec![local_spi],
            vips: snap.virtual_ips.clone(),
            lease: None,
            redirect,
        };
        Ok((sa, ids))
    }
}

fn check_path(local: SocketAddr, remote: SocketAddr) -> Result<(), ImportError> {
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(ImportError::AddressFamily);
    }
    if remote.port() == 0 || remote.ip().is_unspecified() {
        return Err(ImportError::Invalid("remote"));
    }
    Ok(())
}

/// The IKE SA's keys from the snapshot: known transforms the provider runs, keys of
/// the lengths they take, the SK protection built as after a key exchange
/// ([`keys::sk_keys`]).
fn crypto(cx: &Shared, snap: &IkeSaSnapshot) -> Result<IkeCrypto, ImportError> {
    let provider = cx.provider;
    let encr = suites::encr(EncrId(snap.encr), snap.encr_key_bits)
        .filter(|e| e.kind != EncrKind::Gmac && provider.supports_encr(e))
        .ok_or(ImportError::Transform)?;
    let integ = match (snap.integ, encr.is_combined()) {
        (0, true) => None,
        (0, false) | (_, true) => return Err(ImportError::Transform),
        (id, false) => Some(
            suites::integ(IntegId(id))
                .filter(|i| provider.integ(i.id).is_some())
                .ok_or(ImportError::Transform)?,
        ),
    };
    let prf_desc = suites::prf(PrfId(snap.prf)).ok_or(ImportError::Transform)?;
    let prf = provider.prf(prf_desc.id).ok_or(ImportError::Transform)?;
    let ke = match snap.ke {
        0 => None,
        id => Some(suites::ke(KeId(id)).ok_or(ImportError::Transform)?),
    };
    let chosen = Chosen {
        encr,
        integ,
        prf: Some(prf_desc),
        ke,
        esn: false,
        addke: [None; 7],
    };
    let k = &snap.keys;
    let integ_len = integ.map_or(0, |i| i.key_len);
    let lens_ok = [&k.sk_d, &k.sk_pi, &k.sk_pr]
        .iter()
        .all(|x| x.len() == prf.key_len())
        && [&k.sk_ei, &k.sk_er]
            .iter()
            .all(|x| x.len() == encr.keymat_len())
        && [&k.sk_ai, &k.sk_ar].iter().all(|x| x.len() == integ_len);
    if !lens_ok {
        return Err(ImportError::KeyLength);
    }
    let raw = RawSk {
        sk_ei: SecretBytes::from_slice(&k.sk_ei),
        sk_er: SecretBytes::from_slice(&k.sk_er),
        sk_ai: SecretBytes::from_slice(&k.sk_ai),
        sk_ar: SecretBytes::from_slice(&k.sk_ar),
    };
    let sk = keys::sk_keys(provider, &chosen, &raw).map_err(|_| ImportError::Transform)?;
    Ok(IkeCrypto {
        chosen,
        prf,
        sk_d: SecretBytes::from_slice(&k.sk_d),
        sk_pi: SecretBytes::from_slice(&k.sk_pi),
        sk_pr: SecretBytes::from_slice(&k.sk_pr),
        raw,
        sk,
        exported: None,
    })
}
