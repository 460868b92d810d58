//! The agent's IKE side: ownership records, the IKE SA state written after every
//! exchange, and taking an IKE SA over when its owner dies (docs/scale-out.md, "IKE").

use std::sync::PoisonError;

use tracing::{debug, info, warn};

use super::{child_key, parse_ike_key, Agent};
use crate::cluster::records::{IkeRecord, IkeStateRecord};
use crate::cluster::ClusterCmd;
use crate::dataplane::ToControl;

impl Agent {
    /// Claims IKE SA `key` for this node, on its lease, if nobody owns it: the store's
    /// answer (`Ok(Ok(_))`: claimed; `Ok(Err(current))`: someone has it), or `None`
    /// when the store failed.
    pub(super) fn claim_ike(&mut self, key: &str) -> Option<ipsec_cluster::CasOutcome> {
        let claim = IkeRecord {
            owner: self.node.clone(),
            cluster_addr: self.listen,
        };
        let v = serde_json::to_vec(&claim).unwrap_or_default();
        let r = self.store.cas(
            &self.k(&format!("ike/{key}")),
            ipsec_cluster::Expect::Absent,
            &v,
            self.lease,
        );
        self.store_result(r, "claim IKE SA")
    }

    /// Another node owns IKE SA `key` now: give it up (without a word to the peer),
    /// and with it our part in its Child SAs, which stay here as replicas.
    pub(super) fn lost_ike(&mut self, h: u64, key: &str) {
        warn!(%key, "another node owns our IKE SA now: giving it up");
        self.our_ikes.remove(&h);
        self.untakeable(h);
        self.state_stored.remove(key);
        self.release_children(key);
        let _ = self.cmds.send(ClusterCmd::AbandonIke {
            sa: ipsec::ike::SaHandle(h),
        });
        let _ = self.wake.send(ToControl::Wake);
    }

    /// The Child SAs of IKE SA `key` are replicas here now (we gave the IKE SA up).
    fn release_children(&mut self, key: &str) {
        let children: Vec<String> = self
            .children
            .iter()
            .filter(|(_, r)| r.ike == key)
            .map(|(k, _)| k.clone())
            .collect();
        for ck in children {
            if let Some(t) = self.sas.get_mut(&ck) {
                t.child = None;
            }
        }
    }

    /// IKE SA `h` is no longer one `Cluster::fence` fences.
    pub(super) fn untakeable(&mut self, h: u64) {
        self.last_states.remove(&h);
        self.shared.set_takeable(h, false);
    }

    /// The control loop fenced our IKE SA `h` (`Cluster::fence`): keep its state
    /// until the store answers again.
    pub(super) fn fenced(
        &mut self,
        h: u64,
        state: Option<(String, Box<ipsec::ike::IkeSaSnapshot>)>,
    ) {
        let last = self.last_states.remove(&h);
        let Some(key) = self.our_ikes.remove(&h) else {
            return;
        };
        warn!(%key, "IKE SA fenced: cut off from the store for as long as our lease may live");
        self.release_children(&key);
        // Busy when fenced: the state after its last exchange, as the store has it.
        self.fenced.insert(key, state.or(last));
        if self.lease_fresh() {
            // The store answered again before this reached us.
            self.unfence();
        }
    }

    /// The store answers again: each fenced IKE SA that is still ours (nobody claimed
    /// it while our lease was gone, or our lease never expired) is resumed from the
    /// newest state, ours or the one another node wrote after taking it over; one
    /// that another node owns now stays given up.
    pub(super) fn unfence(&mut self) {
        let keys: Vec<String> = self.fenced.keys().cloned().collect();
        for key in keys {
            let mine = match self.claim_ike(&key) {
                None => return,
                Some(Ok(_)) => true,
                Some(Err(current)) => {
                    let ours = current
                        .and_then(|e| serde_json::from_slice::<IkeRecord>(&e.value).ok())
                        .is_some_and(|r| r.owner == self.node);
                    if ours {
                        // Ours, maybe on an older lease: write it on the current one.
                        self.put_owner(&key);
                    }
                    ours
                }
            };
            if !mine {
                self.fenced.remove(&key);
                info!(%key, "our fenced IKE SA is another node's now");
                continue;
            }
            // The state in the store now, not as the watch last told (it may lag
            // right after the store came back).
            let r = self.store.get(&self.k(&format!("ikestate/{key}")));
            let Some(entry) = self.store_result(r, "IKE SA state") else {
                return; // still fenced; the next renewal tries again
            };
            let held = self.fenced.remove(&key).flatten();
            let stored =
                entry.and_then(|e| serde_json::from_slice::<IkeStateRecord>(&e.value).ok());
            if stored.is_none() && self.state_stored.contains(&key) {
                // Its state was in the store and is gone: the node that took it over
                // closed or rekeyed it. Never bring it back.
                info!(%key, "our fenced IKE SA was taken over and has ended: giving it up");
                self.state_stored.remove(&key);
                let r = self.store.delete(&self.k(&format!("ike/{key}")));
                let _ = self.store_result(r, "IKE owner");
                continue;
            }
            let newer_elsewhere = stored.as_ref().is_some_and(|r| r.owner != self.node);
            let from_store = |a: &mut Self| {
                let rec = stored.clone()?;
                let snap = a.open_json::<ipsec::ike::IkeSaSnapshot>(
                    &format!("ikestate/{key}"),
                    &rec.sealed,
                )?;
                Some((rec.conn, Box::new(snap)))
            };
            let state = if newer_elsewhere {
                from_store(self)
            } else {
                held.or_else(|| from_store(self))
            };
            let Some((conn, snap)) = state else {
                warn!(%key, "no state to resume our fenced IKE SA from: giving it up");
                let r = self.store.delete(&self.k(&format!("ike/{key}")));
                let _ = self.store_result(r, "IKE owner");
                continue;
            };
            info!(%key, "store back: resuming our fenced IKE SA");
            self.resuming.insert(key.clone());
            let _ = self.cmds.send(ClusterCmd::AdoptIke { key, conn, snap });
            let _ = self.wake.send(ToControl::Wake);
        }
    }

    pub(super) fn put_owner(&mut self, key: &str) {
        let rec = IkeRecord {
            owner: self.node.clone(),
            cluster_addr: self.listen,
        };
        let v = serde_json::to_vec(&rec).unwrap_or_default();
        let r = self
            .store
            .put(&self.k(&format!("ike/{key}")), &v, self.lease);
        let _ = self.store_result(r, "IKE owner");
    }

    /// An IKE SA of ours is gone (closed, or replaced by its rekey): its state first,
    /// so that no node takes it over when the ownership record goes.
    pub(super) fn drop_ike(&mut self, key: &str) {
        self.state_stored.remove(key);
        for k in [format!("ikestate/{key}"), format!("ike/{key}")] {
            let r = self.store.delete(&self.k(&k));
            let _ = self.store_result(r, "IKE SA records");
        }
    }

    /// Writes the state of one of our IKE SAs after an exchange.
    pub(super) fn write_ike_state(
        &mut self,
        sa: u64,
        conn: String,
        snap: &ipsec::ike::IkeSaSnapshot,
    ) {
        let Some(key) = self.our_ikes.get(&sa).cloned() else {
            return;
        };
        let name = format!("ikestate/{key}");
        let Some(sealed) = self.seal_json(&name, snap) else {
            return;
        };
        let rec = IkeStateRecord {
            owner: self.node.clone(),
            conn,
            sealed,
        };
        let v = serde_json::to_vec(&rec).unwrap_or_default();
        // Fenced when we are cut off from now on, before the write: a write that
        // timed out may still have reached the store, and then another node can take
        // the IKE SA over.
        self.shared.set_takeable(sa, true);
        let r = self.store.put(&self.k(&name), &v, None);
        if self.store_result(r, "IKE SA state").is_some() {
            self.state_stored.insert(key);
        }
    }

    /// The owner of IKE SA `key` is gone (its record went with its lease): claim it
    /// with a create-if-absent swap, and on success ask the driver to take it over.
    pub(super) fn try_takeover(&mut self, key: &str) {
        let Some(rec) = self.ikestates.get(key).cloned() else {
            return;
        };
        if rec.owner == self.node
            || self.fenced.contains_key(key)
            || self.our_ikes.values().any(|k| k == key)
        {
            return;
        }
        if self.lease.is_none() {
            return;
        }
        match self.claim_ike(key) {
            Some(Ok(_)) => {}
            Some(Err(_)) => {
                debug!(%key, "another node claimed the IKE SA first");
                return;
            }
            None => return,
        }
        let name = format!("ikestate/{key}");
        let Some(snap) = self.open_json::<ipsec::ike::IkeSaSnapshot>(&name, &rec.sealed) else {
            let r = self.store.delete(&self.k(&format!("ike/{key}")));
            let _ = self.store_result(r, "IKE owner");
            return;
        };
        info!(%key, from = %rec.owner, "taking the IKE SA over");
        let _ = self.cmds.send(ClusterCmd::AdoptIke {
            key: key.to_string(),
            conn: rec.conn,
            snap: Box::new(snap),
        });
        let _ = self.wake.send(ToControl::Wake);
    }

    /// The driver took IKE SA `key` over: it and its Child SAs are ours now.
    pub(super) fn adopted(
        &mut self,
        key: String,
        result: Result<(ipsec::ike::SaHandle, Vec<crate::driver::AdoptedChild>), String>,
    ) {
        let resumed = self.resuming.remove(&key);
        let (h, children) = match result {
            Ok(x) => x,
            Err(e) => {
                warn!(%key, error = %e, "taking the IKE SA over failed");
                let r = self.store.delete(&self.k(&format!("ike/{key}")));
                let _ = self.store_result(r, "IKE owner");
                return;
            }
        };
        if resumed {
            self.resumed += 1;
        } else {
            self.taken_over += 1;
        }
        // It came from the store's state, or ours resumed over the store's.
        self.state_stored.insert(key.clone());
        self.our_ikes.insert(h.0, key.clone());
        for (child, spi_in, spi_out) in children {
            let ck = child_key((spi_in, spi_out));
            if let Some(t) = self.sas.get_mut(&ck) {
                t.child = Some(child);
            }
            if let Some(mut rec) = self.children.get(&ck).cloned() {
                rec.owner = self.node.clone();
                rec.ike = key.clone();
                let v = serde_json::to_vec(&rec).unwrap_or_default();
                let r = self.store.put(&self.k(&format!("child/{ck}")), &v, None);
                if self.store_result(r, "Child SA owner").is_some() {
                    self.children.insert(ck, rec);
                }
            }
        }
        // Its state under our name, so that the next node can take it over from us.
        if let Some(mut rec) = self.ikestates.get(&key).cloned() {
            rec.owner = self.node.clone();
            let v = serde_json::to_vec(&rec).unwrap_or_default();
            let r = self
                .store
                .put(&self.k(&format!("ikestate/{key}")), &v, None);
            let _ = self.store_result(r, "IKE SA state");
        }
    }

    pub(super) fn publish_owners(&self) {
        let me = &self.node;
        let map = self
            .owners
            .iter()
            .filter(|(_, r)| &r.owner != me)
            .filter_map(|(k, r)| Some((parse_ike_key(k)?, r.cluster_addr)))
            .flat_map(|((a, b), addr)| [((a, b), addr), ((b, a), addr)])
            .collect();
        *self
            .shared
            .owners
            .write()
            .unwrap_or_else(PoisonError::into_inner) = map;
    }
}
