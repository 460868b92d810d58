//! The agent's sequence blocks: leasing ahead, granting when the current block is
//! used up, giving a stale block up, and the rekey before a 32-bit space runs out.

use std::time::Duration;

use ipsec::core::Instant;
use ipsec::sad::{DropReason, SaId, SeqRange};
use ipsec_cluster::{lease_existing, BlockSizer, LeaseRecord, CEILING_32};
use tracing::{debug, info, warn};

use super::{Agent, Tracked, IDLE, LEASE_RETRY, REKEY_LEFT};
use crate::cluster::records::BlockRecord;
use crate::cluster::ClusterCmd;
use crate::dataplane::ToControl;

impl Agent {
    /// Starts `t`'s counters at the SA's own: what it sent before (an imported SA
    /// carries the owner's counts) is not traffic here.
    pub(super) fn baseline(&self, mut t: Tracked) -> Tracked {
        if let Some(st) = self.sad.sa_stats(t.sa) {
            t.out_packets = st.out_packets;
            t.exhausted = st.drops.get(DropReason::SeqExhausted);
        }
        t
    }

    /// Turns what SA `sa` sent so far, and the rest of a minimal block, into a
    /// granted block; returns its last number.
    pub(super) fn first_block(&self, sa: SaId) -> Option<u64> {
        for _ in 0..100 {
            let taken = self.sad.outbound_seq(sa).ok()?.last;
            let last = self.sizer.min.max(taken + 1);
            match self
                .sad
                .grant_outbound_seq(sa, SeqRange::new(taken + 1, last))
            {
                Ok(()) => return Some(last),
                // A sender took a number meanwhile: read again.
                Err(ipsec::sad::SadError::SeqRangeUsed { .. }) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Another node (or we) leased from an SA's sequence space.
    pub(super) fn seq_moved(&mut self, key: &str, value: &[u8]) {
        let Ok(rec) = LeaseRecord::decode(value) else {
            return;
        };
        let now = crate::dataplane::now();
        let node = self.node.clone();
        let Some(t) = self.sas.get_mut(key) else {
            return;
        };
        // Without ESN, the owner rekeys before the space runs out.
        if t.child.is_some() && t.ceiling == CEILING_32 && rec.remaining(CEILING_32) < REKEY_LEFT {
            if let (Some(child), false) = (t.child, t.rekey_asked) {
                t.rekey_asked = true;
                info!(%key, next = rec.next, "sequence space running out: rekeying");
                let _ = self.cmds.send(ClusterCmd::RekeyChild { child });
                let _ = self.wake.send(ToControl::Wake);
            }
        }
        if rec.node == node {
            return;
        }
        // A newer block elsewhere: if we are idle on this SA, our rest is stale.
        let idle = t
            .active
            .is_none_or(|a| now.saturating_duration_since(a) > IDLE);
        if idle && (t.block.is_some() || t.pending.is_some()) {
            let _ = self.sad.limit_outbound_seq(t.sa, 0);
            t.block = None;
            t.pending = None;
            debug!(%key, "block given up: another node leased a newer one");
        }
    }

    /// Leases blocks for the SAs that need them: the next one ahead of time, granted
    /// when the current one is nearly used up (so no block is cut short), or at once
    /// when packets are being dropped for want of one.
    pub(super) fn tick(&mut self, now: Instant) {
        let keys: Vec<String> = self.sas.keys().cloned().collect();
        for key in keys {
            let Some(t) = self.sas.get_mut(&key) else {
                continue;
            };
            let Some(stats) = self.sad.sa_stats(t.sa) else {
                continue;
            };
            let exhausted = stats.drops.get(DropReason::SeqExhausted);
            let starved = exhausted > t.exhausted;
            t.exhausted = exhausted;
            if stats.out_packets > t.out_packets || starved {
                t.active = Some(now);
            }
            let dt = now.saturating_duration_since(t.sampled);
            if dt >= Duration::from_millis(100) {
                let r = BlockSizer::rate(stats.out_packets.saturating_sub(t.out_packets), dt);
                t.rate = if t.rate == 0.0 {
                    r
                } else {
                    0.5 * t.rate + 0.5 * r
                };
                t.out_packets = stats.out_packets;
                t.sampled = now;
            }
            let Ok(seq) = self.sad.outbound_seq(t.sa) else {
                continue;
            };
            let remaining = seq.remaining();
            // 20 ms of traffic (the agent wakes every 5 ms), at least 64 numbers.
            let margin = ((t.rate * 0.02) as u64).max(64);
            if let Some(p) = t.pending {
                if starved || remaining <= margin {
                    let (sa, key2) = (t.sa, key.clone());
                    self.grant(&key2, sa, p);
                }
                continue;
            }
            let recently = t
                .active
                .is_some_and(|a| now.saturating_duration_since(a) < IDLE);
            let wanted =
                starved || (recently && self.sizer.should_renew(remaining, t.rate.max(1.0)));
            if !wanted || t.retry.is_some_and(|(at, _)| now < at) {
                continue;
            }
            let size = self.sizer.size_for_rate(t.rate);
            let (sa, ceiling) = (t.sa, t.ceiling);
            let seq_key = self.k(&format!("seq/{key}"));
            match lease_existing(&*self.store, &seq_key, &self.node, size, ceiling) {
                Ok(b) => {
                    self.store_ok = true;
                    if let Some(t) = self.sas.get_mut(&key) {
                        t.retry = None;
                        t.pending = Some((b.first, b.last));
                    }
                    if starved || remaining <= margin {
                        self.grant(&key, sa, (b.first, b.last));
                    }
                }
                Err(e) => {
                    if e.is_unavailable() {
                        self.store_ok = false;
                    }
                    if let Some(t) = self.sas.get_mut(&key) {
                        let wait = t
                            .retry
                            .map_or(LEASE_RETRY, |(_, w)| (w * 2).min(Duration::from_secs(1)));
                        t.retry = Some((now.saturating_add(wait), wait));
                    }
                    debug!(%key, error = %e, "no block leased");
                }
            }
        }
    }

    /// Makes leased block `b` the one SA `sa` sends from.
    pub(super) fn grant(&mut self, key: &str, sa: SaId, b: (u64, u64)) {
        if let Some(t) = self.sas.get_mut(key) {
            t.pending = None;
        }
        match self.sad.grant_outbound_seq(sa, SeqRange::new(b.0, b.1)) {
            Ok(()) => {
                self.blocks_leased += 1;
                if let Some(t) = self.sas.get_mut(key) {
                    t.block = Some(b);
                }
                if !self.store_ok {
                    // For the status only: not worth a timeout while the store is away.
                    return;
                }
                let rec = BlockRecord {
                    first: b.0,
                    last: b.1,
                };
                let v = serde_json::to_vec(&rec).unwrap_or_default();
                let r = self.store.put(
                    &self.k(&format!("lease/{}/{key}", self.node)),
                    &v,
                    self.lease,
                );
                let _ = self.store_result(r, "block record");
                debug!(%key, first = b.0, last = b.1, "block granted");
            }
            Err(e) => warn!(%key, error = %e, "granted block refused"),
        }
    }
}
