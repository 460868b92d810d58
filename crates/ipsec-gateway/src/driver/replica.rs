//! Replicas: Child SAs another node of an anycast cluster negotiated, imported here
//! from their snapshot (docs/scale-out.md). They get the same outbound rules and
//! routes as the driver's own Child SAs, but no IKE SA: the owner node rekeys and
//! deletes them, and the cluster layer removes them when the owner says so.

use ipsec::core::{Instant, TrafficSelector};
use ipsec::sad::{ImportOptions, SaId, SaOptions, SaSnapshot, SeqRange};
use tracing::info;

use super::Driver;

impl Driver {
    /// Imports the Child SA of `snap` (another node's) with its outbound rules and
    /// routes. It receives at once and sends nothing until the cluster layer grants
    /// it a block of sequence numbers ([`Sad::grant_outbound_seq`]
    /// (ipsec::sad::Sad::grant_outbound_seq)).
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
