//! Replicas: Child SAs another node of an anycast cluster negotiated, imported here
//! from their snapshot (docs/scale-out.md). They get the same outbound rules and
//! routes as the driver's own Child SAs, but no IKE SA: the owner node rekeys and
//! deletes them, and the cluster layer removes them when the owner says so. When the
//! owner dies, a node takes its IKE SA over (`adopt_ike`), and the replicas become
//! that node's own Child SAs.

use std::sync::Arc;

use ipsec::core::{Instant, TrafficSelector};
use ipsec::ike::{ChildSaId, IkeSaSnapshot, SaHandle};
use ipsec::sad::{ImportOptions, SaId, SaOptions, SaSnapshot, SeqRange};
use tracing::{info, warn};

use super::selectors::hex;
use super::{ChildInfo, ChildSummary, Driver, IkeInfo};

impl Driver {
    /// Imports the Child SA of `snap` (another node's) with its outbound rules and
    /// routes. It receives at once and sends nothing until the cluster layer grants
    /// it a block of sequence numbers
    /// ([`Sad::grant_outbound_seq`](ipsec::sad::Sad::grant_outbound_seq)).
    ///
    /// # Errors
    /// What the SAD refused, as text.
    pub fn install_replica(&mut self, now: Instant, snap: &SaSnapshot) -> Result<SaId, String> {
        let params = snap.to_params().map_err(|e| e.to_string())?;
        let local_ts: Vec<TrafficSelector> = params.local_ts.as_slice().to_vec();
        let remote_ts: Vec<TrafficSelector> = params.remote_ts.as_slice().to_vec();
        let (keys, policies) = self.bind_rules(
            &local_ts,
            &remote_ts,
            params.mode,
            params.local_addr,
            params.remote_addr,
        );
        let mut opts = SaOptions::new().exportable(true);
        if let Some(p) = policies.first() {
            opts = opts.policy(*p);
        }
        match self
            .sad
            .import_sa(now, snap, ImportOptions::new(SeqRange::NONE).sa(opts))
        {
            Ok(sa) => {
                for p in policies.iter().skip(1) {
                    let _ = self.sad.bind(*p, sa);
                }
                info!(spi_in = %format_args!("{:08x}", snap.inbound_spi),
                    spi_out = %format_args!("{:08x}", snap.outbound_spi), "replica installed");
                self.replicas.insert(sa, keys);
                Ok(sa)
            }
            Err(e) => {
                self.unbind_rules(keys);
                Err(e.to_string())
            }
        }
    }

    /// Removes replica `sa` and the rules only it used.
    pub fn remove_replica(&mut self, sa: SaId) {
        if let Some(keys) = self.replicas.remove(&sa) {
            let _ = self.sad.remove_sa(sa);
            self.unbind_rules(keys);
            info!(sa = sa.0, "replica removed");
        }
    }

    /// The next replica whose hard lifetime ended (the SAD refuses its packets now):
    /// nobody rekeyed it, so its owner is gone; the cluster layer removes it and its
    /// records.
    pub fn poll_expired_replica(&mut self) -> Option<SaId> {
        self.expired_replicas.pop_front()
    }

    /// How many replicas are installed.
    pub fn replica_count(&self) -> usize {
        self.replicas.len()
    }
}

/// One Child SA an adopted IKE SA brought: the endpoint's id, our inbound and
/// outbound SPI.
pub type AdoptedChild = (ChildSaId, u32, u32);

impl Driver {
    /// The snapshot of our IKE SA `sa` and its connection's name, when it is
    /// established and between exchanges (`IkeEndpoint::export_ike_sa`).
    pub fn export_ike(&self, sa: SaHandle) -> Option<(String, IkeSaSnapshot)> {
        let conn = self.conn_of(sa)?;
        let snap = self.endpoint.export_ike_sa(sa).ok()?;
        Some((self.conns()[conn].config.name.clone(), snap))
    }

    /// The Message IDs of IKE SA `sa` (ours next, the peer's next): they change with
    /// every exchange, so a caller exports only then.
    pub fn ike_message_ids(&self, sa: SaHandle) -> Option<(u32, u32)> {
        self.endpoint.ike_sa_message_ids(sa)
    }

    /// Our IKE SAs that are established.
    pub fn established_ike_sas(&self) -> Vec<SaHandle> {
        self.ikes
            .iter()
            .filter(|(_, i)| i.established)
            .map(|(h, _)| *h)
            .collect()
    }

    /// Gives IKE SA `sa` up without a word to the peer: another node took it over
    /// (this node was cut off from the cluster's store long enough to lose its
    /// ownership), or this node is fenced ([`crate::cluster::Cluster::fence`]). Its
    /// Child SAs stay installed, as replicas, until the owner rekeys or deletes them.
    /// Returns whether there was such an IKE SA.
    pub fn abandon_ike(&mut self, sa: SaHandle) -> bool {
        if !self.endpoint.abandon_ike_sa(sa) {
            return false;
        }
        self.ikes.remove(&sa);
        let ids: Vec<ChildSaId> = self
            .children
            .iter()
            .filter(|(_, c)| c.ike == sa)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(c) = self.children.remove(&id) {
                match c.sad {
                    Some(s) => {
                        self.by_sad.remove(&s);
                        self.replicas.insert(s, c.rules);
                    }
                    None => self.unbind_rules(c.rules),
                }
            }
        }
        warn!(sa = %sa, "IKE SA given up to the cluster (another node owns it, or this one is fenced)");
        true
    }

    /// Takes over another node's IKE SA (its owner died): imports `snap` under
    /// connection `conn` and turns the replicas of its Child SAs into Child SAs of
    /// ours, which this driver now rekeys and deletes. Returns the IKE SA and the
    /// Child SAs it brought.
    ///
    /// # Errors
    /// An unknown connection, or what the endpoint refused, as text.
    pub fn adopt_ike(
        &mut self,
        now: Instant,
        conn: &str,
        snap: &IkeSaSnapshot,
    ) -> Result<(SaHandle, Vec<AdoptedChild>), String> {
        let &i = self
            .by_name
            .get(conn)
            .ok_or_else(|| format!("no connection {conn:?}"))?;
        let config = Arc::clone(&self.conns()[i].config);
        let (h, ids) = self
            .endpoint
            .import_ike_sa(now, snap, config)
            .map_err(|e| e.to_string())?;
        let mut info = IkeInfo::new(i, snap.initiator, now);
        info.established = true;
        let (ours, theirs) = if snap.initiator {
            (snap.spi_i, snap.spi_r)
        } else {
            (snap.spi_r, snap.spi_i)
        };
        info.spis = (hex(&ours), hex(&theirs));
        info.suite = "(taken over)".into();
        self.ikes.insert(h, info);
        let mut adopted = Vec::new();
        for (id, c) in ids.iter().zip(&snap.children) {
            adopted.push((*id, c.inbound_spi, c.outbound_spi));
            let replica = self.replicas.keys().copied().find(|sa| {
                self.sad
                    .sa_info(*sa)
                    .is_some_and(|x| x.inbound_spi.0 == c.inbound_spi)
            });
            let Some(sa) = replica else {
                warn!(child = %id, spi_in = %format_args!("{:08x}", c.inbound_spi),
                    "taken over without its replica: it carries no traffic here");
                continue;
            };
            let Some(x) = self.sad.sa_info(sa) else {
                continue;
            };
            let rules = self.replicas.remove(&sa).unwrap_or_default();
            self.by_sad.insert(sa, *id);
            self.children.insert(
                *id,
                ChildInfo {
                    ike: h,
                    sad: Some(sa),
                    rules,
                    params_summary: ChildSummary {
                        suite: "(taken over)".into(),
                        mode: x.mode,
                        udp_encap: x.udp_encap.is_some(),
                        spi_in: x.inbound_spi.0,
                        spi_out: x.outbound_spi.0,
                        local_ts: x.local_ts.as_slice().to_vec(),
                        remote_ts: x.remote_ts.as_slice().to_vec(),
                    },
                    since: now,
                },
            );
        }
        info!(sa = %h, children = adopted.len(), "IKE SA taken over");
        self.drain(now);
        Ok((h, adopted))
    }
}
