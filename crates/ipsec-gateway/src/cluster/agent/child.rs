//! The agent's Child SAs: publishing ours (sequence record, then the sealed
//! snapshot), following the others' records (paths, deletes).

use ipsec::core::Instant;
use ipsec::sad::SaSnapshot;
use ipsec_cluster::{create as create_seq, LeaseError, CEILING_32};
use tracing::{info, warn};

use super::{Agent, RETRY};
use crate::cluster::records::ChildRecord;
use crate::cluster::ClusterCmd;
use crate::dataplane::ToControl;

impl Agent {
    pub(super) fn retry_unpublished(&mut self, now: Instant) {
        if self.unpublished.is_empty() || !self.store_ok || now < self.retry_publish_at {
            return;
        }
        self.retry_publish_at = now.saturating_add(RETRY);
        let keys: Vec<String> = self.unpublished.keys().cloned().collect();
        for k in keys {
            self.publish_child(&k);
        }
    }

    /// Writes one of our Child SAs to the store: its sequence record first (once,
    /// with the numbers we may have used as our first block), then the sealed
    /// snapshot.
    pub(super) fn publish_child(&mut self, key: &str) {
        let Some(u) = self.unpublished.get(key) else {
            return;
        };
        let (sad, ike, first_last, seq_created) = (u.sad, u.ike, u.first_last, u.seq_created);
        if !seq_created {
            let ceiling = self.sas.get(key).map_or(CEILING_32, |t| t.ceiling);
            let seq_key = self.k(&format!("seq/{key}"));
            match create_seq(&*self.store, &seq_key, &self.node, first_last, ceiling) {
                // AlreadyExists: our own creation whose answer was lost.
                Ok(_) | Err(LeaseError::AlreadyExists) => {
                    if let Some(u) = self.unpublished.get_mut(key) {
                        u.seq_created = true;
                    }
                }
                Err(e) => {
                    self.store_ok = !e.is_unavailable();
                    warn!(%key, error = %e, "cluster: sequence record");
                    return;
                }
            }
        }
        let snap = match self.sad.export_sa(crate::dataplane::now(), sad) {
            Ok(s) => s,
            Err(e) => {
                warn!(%key, error = %e, "cluster: export");
                self.unpublished.remove(key);
                return;
            }
        };
        let Some(sealed) = self.seal_json(&format!("child/{key}"), &snap) else {
            self.unpublished.remove(key);
            return;
        };
        let ike = self.our_ikes.get(&ike).cloned().unwrap_or_default();
        let rec = ChildRecord {
            owner: self.node.clone(),
            ike,
            sealed,
        };
        let v = serde_json::to_vec(&rec).unwrap_or_default();
        let r = self.store.put(&self.k(&format!("child/{key}")), &v, None);
        if self.store_result(r, "publish Child SA").is_some() {
            self.snapshot_hook(&snap);
            self.unpublished.remove(key);
            self.children.insert(key.to_string(), rec);
            info!(%key, "Child SA published");
        }
    }

    /// Writes one of our published Child SAs again (its path changed): the other
    /// nodes move their replicas.
    pub(super) fn republish(&mut self, key: &str) {
        let (Some(t), Some(rec)) = (self.sas.get(key), self.children.get(key).cloned()) else {
            return;
        };
        let Ok(snap) = self.sad.export_sa(crate::dataplane::now(), t.sa) else {
            return;
        };
        let Some(sealed) = self.seal_json(&format!("child/{key}"), &snap) else {
            return;
        };
        let rec = ChildRecord { sealed, ..rec };
        let v = serde_json::to_vec(&rec).unwrap_or_default();
        let r = self.store.put(&self.k(&format!("child/{key}")), &v, None);
        if self.store_result(r, "republish Child SA").is_some() {
            info!(%key, "Child SA published again: its path changed");
            self.children.insert(key.to_string(), rec);
        }
    }

    /// A replica's record was written again: follow its path if it moved.
    pub(super) fn follow_path(&self, key: &str, rec: &ChildRecord) {
        let Some(t) = self.sas.get(key).filter(|t| t.child.is_none()) else {
            return;
        };
        let (Some(snap), Some(now)) = (
            self.open_json::<SaSnapshot>(&format!("child/{key}"), &rec.sealed),
            self.sad.sa_info(t.sa),
        ) else {
            return;
        };
        let encap = snap.udp_encap.map(|(l, r)| ipsec::core::UdpEncap {
            local_port: l,
            remote_port: r,
        });
        if (now.local_addr, now.remote_addr, now.udp_encap)
            == (snap.local_addr, snap.remote_addr, encap)
        {
            return;
        }
        match self
            .sad
            .update_sa_path(t.sa, snap.local_addr, snap.remote_addr, encap)
        {
            Ok(()) => info!(%key, remote = %snap.remote_addr, "replica moved to its new path"),
            Err(e) => warn!(%key, error = %e, "replica could not follow its path"),
        }
    }

    pub(super) fn snapshot_hook(&self, snap: &SaSnapshot) {
        if let Some(h) = &self.on_snapshot {
            h(snap);
        }
    }

    /// `value` as JSON, sealed under the cluster key with the record name `name`, in
    /// hex; the clear JSON (it holds keys) is zeroized.
    pub(super) fn seal_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Option<String> {
        let mut json = serde_json::to_vec(value).ok()?;
        let sealed = self.key.seal(name, &json);
        zeroize::Zeroize::zeroize(&mut json);
        Some(hex::encode(sealed))
    }

    /// What [`Agent::seal_json`] sealed under `name`; `None` (logged) for anything
    /// that does not open under the cluster key or is not such JSON.
    pub(super) fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        sealed_hex: &str,
    ) -> Option<T> {
        let opened = hex::decode(sealed_hex)
            .ok()
            .and_then(|b| self.key.open(name, &b).ok());
        let value = opened.and_then(|plain| serde_json::from_slice(&plain).ok());
        if value.is_none() {
            warn!(%name, "record does not open under the cluster key");
        }
        value
    }

    pub(super) fn child_gone(&mut self, key: &str) {
        self.children.remove(key);
        if let Some(t) = self.sas.get(key) {
            if t.child.is_none() {
                let sa = t.sa;
                self.sas.remove(key);
                let _ = self.cmds.send(ClusterCmd::RemoveReplica { sa });
                let _ = self.wake.send(ToControl::Wake);
                let r = self
                    .store
                    .delete(&self.k(&format!("lease/{}/{key}", self.node)));
                let _ = self.store_result(r, "delete block record");
            }
        }
    }
}
