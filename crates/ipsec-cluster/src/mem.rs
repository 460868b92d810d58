//! An in-process [`Store`]: the semantics of the etcd store without a server, for the
//! tests of this crate and of its callers.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::store::{CasOutcome, Entry, Expect, LeaseId, Store, StoreError, WatchEvent};

/// How often the reaper thread looks for expired leases.
const REAP_INTERVAL: Duration = Duration::from_millis(20);

/// Events kept for watches that start in the past; older ones are compacted away
/// (a watch that needs them gets [`WatchEvent::Resync`]).
pub const MEM_HISTORY: usize = 100_000;

/// An in-memory store shared by clones: several "nodes" of one test hold clones of the
/// same `MemStore` as they would hold connections to the same etcd cluster.
///
/// It keeps etcd's semantics where callers depend on them: one revision counter for the
/// whole store (bumped once per write, once per lease expiry however many keys it
/// deletes, not at all by deleting an absent key), compare-and-swap on a key's
/// `mod_revision`, leases that expire by wall-clock TTL (a reaper thread checks every
/// 20 ms while a clone is alive), and watches that replay history after a revision.
///
/// [`MemStore::set_available`]`(false)` simulates losing the store: every call fails
/// with [`StoreError::Unavailable`], no lease expires and watches see nothing until it
/// is available again, when (as etcd does after a restart) every lease gets its full
/// TTL again. [`MemStore::compact`] drops history, so that watches that need it get
/// [`WatchEvent::Resync`].
#[derive(Clone)]
pub struct MemStore {
    inner: Arc<Mutex<State>>,
}

impl core::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemStore")
            .field("revision", &s.revision)
            .field("keys", &s.kv.len())
            .field("leases", &s.leases.len())
            .field("available", &s.available)
            .finish()
    }
}

struct Lease {
    ttl: Duration,
    deadline: Instant,
}

struct Watcher {
    prefix: String,
    tx: Sender<WatchEvent>,
}

struct State {
    available: bool,
    revision: u64,
    /// Watches must start at or after this revision (etcd's compact revision).
    compact_revision: u64,
    kv: BTreeMap<String, (Entry, Option<i64>)>,
    leases: HashMap<i64, Lease>,
    next_lease: i64,
    history: std::collections::VecDeque<(String, WatchEvent)>,
    watchers: Vec<Watcher>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the in-memory store's leases expire by wall-clock TTL, as etcd's do"
)]
fn now() -> Instant {
    Instant::now()
}

impl MemStore {
    /// An empty store at revision 1 (as a fresh etcd), available.
    pub fn new() -> Self {
        let inner = Arc::new(Mutex::new(State {
            available: true,
            revision: 1,
            compact_revision: 0,
            kv: BTreeMap::new(),
            leases: HashMap::new(),
            next_lease: 1,
            history: Default::default(),
            watchers: Vec::new(),
        }));
        let weak = Arc::downgrade(&inner);
        // The reaper ends with the last clone.
        let spawned = std::thread::Builder::new()
            .name("memstore-reaper".into())
            .spawn(move || reaper(weak));
        // Without a reaper, leases still expire at the next call (`expire` runs first).
        drop(spawned);
        Self { inner }
    }

    /// Makes the store reachable or not. While unavailable every call fails with
    /// [`StoreError::Unavailable`] and no lease expires; on becoming available again
    /// every lease gets its full TTL from now (etcd renews leases when a leader takes
    /// over after a restart).
    pub fn set_available(&self, available: bool) {
        let mut s = self.lock();
        if available && !s.available {
            let t = now();
            for l in s.leases.values_mut() {
                l.deadline = t + l.ttl;
            }
        }
        s.available = available;
    }

    /// Drops the history before `revision`: a watch that starts earlier gets
    /// [`WatchEvent::Resync`] (what etcd does after `compact`).
    pub fn compact(&self, revision: u64) {
        let mut s = self.lock();
        let revision = revision.min(s.revision);
        s.compact_revision = s.compact_revision.max(revision);
        while s
            .history
            .front()
            .is_some_and(|(_, e)| e.revision().unwrap_or(0) < revision)
        {
            s.history.pop_front();
        }
    }

    /// The current store revision.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written in a way
        // that matters for tests; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks, fails when unavailable, and expires due leases first.
    fn op(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut s = self.lock();
        if !s.available {
            return Err(StoreError::Unavailable("simulated outage".into()));
        }
        s.expire(now());
        Ok(s)
    }
}

fn reaper(weak: Weak<Mutex<State>>) {
    loop {
        std::thread::sleep(REAP_INTERVAL);
        let Some(inner) = weak.upgrade() else { return };
        let mut s = inner.lock().unwrap_or_else(|e| e.into_inner());
        if s.available {
            s.expire(now());
        }
    }
}

impl State {
    fn expire(&mut self, t: Instant) {
        let due: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= t)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.end_lease(id);
        }
    }

    /// Removes a lease and deletes its keys in one revision.
    fn end_lease(&mut self, id: i64) {
        self.leases.remove(&id);
        let keys: Vec<String> = self
            .kv
            .iter()
            .filter(|(_, (_, l))| *l == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        self.revision += 1;
        let revision = self.revision;
        for key in keys {
            self.kv.remove(&key);
            self.publish(WatchEvent::Delete { key, revision });
        }
    }

    fn check_lease(&self, lease: Option<LeaseId>) -> Result<(), StoreError> {
        match lease {
            Some(LeaseId(id)) if !self.leases.contains_key(&id) => Err(StoreError::LeaseExpired),
            _ => Ok(()),
        }
    }

    fn write(&mut self, key: &str, value: &[u8], lease: Option<LeaseId>) -> u64 {
        self.revision += 1;
        let entry = Entry {
            value: value.to_vec(),
            mod_revision: self.revision,
        };
        self.kv
            .insert(key.to_owned(), (entry.clone(), lease.map(|l| l.0)));
        self.publish(WatchEvent::Put {
            key: key.to_owned(),
            entry,
        });
        self.revision
    }

    fn publish(&mut self, event: WatchEvent) {
        let key = match &event {
            WatchEvent::Put { key, .. } | WatchEvent::Delete { key, .. } => key.clone(),
            WatchEvent::Resync => return,
        };
        self.watchers
            .retain(|w| !key.starts_with(&w.prefix) || w.tx.send(event.clone()).is_ok());
        self.history.push_back((key, event));
        while self.history.len() > MEM_HISTORY {
            if let Some((_, e)) = self.history.pop_front() {
                // Watches must now start after the dropped event.
                self.compact_revision = self
                    .compact_revision
                    .max(e.revision().unwrap_or(0).saturating_add(1));
            }
        }
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.op()?.kv.get(key).map(|(e, _)| e.clone()))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<(String, Entry)>, u64), StoreError> {
        let s = self.op()?;
        let items =
            s.kv.range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (e, _))| (k.clone(), e.clone()))
                .collect();
        Ok((items, s.revision))
    }

    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<u64, StoreError> {
        let mut s = self.op()?;
        s.check_lease(lease)?;
        Ok(s.write(key, value, lease))
    }

    fn cas(
        &self,
        key: &str,
        expect: Expect,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError> {
        let mut s = self.op()?;
        s.check_lease(lease)?;
        let current = s.kv.get(key).map(|(e, _)| e.clone());
        let matches = match (&current, expect) {
            (None, Expect::Absent) => true,
            (Some(e), Expect::Revision(r)) => e.mod_revision == r,
            _ => false,
        };
        if matches {
            Ok(Ok(s.write(key, value, lease)))
        } else {
            Ok(Err(current))
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut s = self.op()?;
        if s.kv.remove(key).is_some() {
            s.revision += 1;
            let revision = s.revision;
            s.publish(WatchEvent::Delete {
                key: key.to_owned(),
                revision,
            });
        }
        Ok(())
    }

    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Receiver<WatchEvent>, StoreError> {
        let mut s = self.op()?;
        let (tx, rx) = mpsc::channel();
        let mut from = after_revision.saturating_add(1);
        if from < s.compact_revision {
            // Nothing can fail to send: we hold the receiver.
            let _ = tx.send(WatchEvent::Resync);
            from = s.compact_revision;
        }
        for (key, e) in &s.history {
            if key.starts_with(prefix) && e.revision().unwrap_or(0) >= from {
                let _ = tx.send(e.clone());
            }
        }
        s.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(rx)
    }

    fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let mut s = self.op()?;
        let id = s.next_lease;
        s.next_lease += 1;
        s.leases.insert(
            id,
            Lease {
                ttl,
                deadline: now() + ttl,
            },
        );
        Ok(LeaseId(id))
    }

    fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut s = self.op()?;
        let l = s.leases.get_mut(&lease.0).ok_or(StoreError::LeaseExpired)?;
        l.deadline = now() + l.ttl;
        Ok(())
    }

    fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut s = self.op()?;
        if s.leases.contains_key(&lease.0) {
            s.end_lease(lease.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &Receiver<WatchEvent>) -> Vec<WatchEvent> {
        rx.try_iter().collect()
    }

    #[test]
    fn revisions_cas_and_delete() {
        let s = MemStore::new();
        assert_eq!(s.get("a").unwrap(), None);
        let r1 = s.put("a", b"1", None).unwrap();
        assert_eq!(r1, 2);
        assert_eq!(
            s.cas("a", Expect::Absent, b"x", None)
                .unwrap()
                .unwrap_err()
                .unwrap()
                .value,
            b"1"
        );
        assert!(s
            .cas("a", Expect::Revision(r1 + 5), b"x", None)
            .unwrap()
            .is_err());
        let r2 = s
            .cas("a", Expect::Revision(r1), b"2", None)
            .unwrap()
            .unwrap();
        assert_eq!(r2, r1 + 1);
        assert_eq!(s.get("a").unwrap().unwrap().mod_revision, r2);
        assert_eq!(
            s.cas("b", Expect::Revision(r2), b"x", None).unwrap(),
            Err(None)
        );
        s.delete("a").unwrap();
        let rev = s.revision();
        s.delete("a").unwrap();
        assert_eq!(s.revision(), rev, "deleting an absent key is not a write");
        assert_eq!(s.get("a").unwrap(), None);
    }

    #[test]
    fn list_is_by_prefix_and_sorted() {
        let s = MemStore::new();
        for k in ["p/b", "p/a", "q/a", "p", "p0"] {
            s.put(k, k.as_bytes(), None).unwrap();
        }
        let (items, rev) = s.list("p/").unwrap();
        let keys: Vec<_> = items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p/a", "p/b"]);
        assert_eq!(rev, s.revision());
    }

    #[test]
    fn watch_replays_history_then_follows() {
        let s = MemStore::new();
        let r = s.put("w/a", b"1", None).unwrap();
        s.put("x/a", b"1", None).unwrap();
        let rx = s.watch("w/", 0).unwrap();
        let rx_late = s.watch("w/", r).unwrap();
        s.delete("w/a").unwrap();
        let ev = drain(&rx);
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], WatchEvent::Put { key, .. } if key == "w/a"));
        assert!(matches!(&ev[1], WatchEvent::Delete { key, .. } if key == "w/a"));
        assert_eq!(drain(&rx_late).len(), 1);
    }

    #[test]
    fn compaction_gives_resync() {
        let s = MemStore::new();
        let r = s.put("w/a", b"1", None).unwrap();
        s.put("w/a", b"2", None).unwrap();
        s.compact(r + 1);
        let ev = drain(&s.watch("w/", 0).unwrap());
        assert_eq!(ev[0], WatchEvent::Resync);
        assert_eq!(ev.len(), 2, "resumes at the compact revision: {ev:?}");
        assert!(!drain(&s.watch("w/", r).unwrap()).contains(&WatchEvent::Resync));
    }

    #[test]
    fn outage_fails_every_call_and_pauses_watches() {
        let s = MemStore::new();
        let rx = s.watch("k", 0).unwrap();
        let lease = s.grant(Duration::from_millis(50)).unwrap();
        s.put("k1", b"v", Some(lease)).unwrap();
        s.set_available(false);
        assert!(s.get("k1").unwrap_err().is_unavailable());
        assert!(s.put("k2", b"v", None).unwrap_err().is_unavailable());
        assert!(s.watch("k", 0).unwrap_err().is_unavailable());
        assert!(s.keep_alive(lease).unwrap_err().is_unavailable());
        std::thread::sleep(Duration::from_millis(120));
        s.set_available(true);
        // the lease got its full TTL again on recovery
        assert!(s.get("k1").unwrap().is_some());
        s.put("k2", b"v", None).unwrap();
        let ev = drain(&rx);
        assert_eq!(ev.len(), 2, "{ev:?}");
    }

    #[test]
    fn leases_expire_and_delete_their_keys() {
        let s = MemStore::new();
        let lease = s.grant(Duration::from_millis(40)).unwrap();
        let rx = s.watch("l/", 0).unwrap();
        s.put("l/a", b"v", Some(lease)).unwrap();
        s.put("l/b", b"v", Some(lease)).unwrap();
        s.keep_alive(lease).unwrap();
        let deadline = now() + Duration::from_secs(5);
        // the reaper deletes the keys without any call being made
        let mut deletes = Vec::new();
        while deletes.len() < 2 && now() < deadline {
            if let Ok(WatchEvent::Delete { revision, .. }) =
                rx.recv_timeout(Duration::from_millis(100))
            {
                deletes.push(revision);
            }
        }
        assert_eq!(deletes.len(), 2);
        assert_eq!(deletes[0], deletes[1], "one revision for the lease's keys");
        assert!(matches!(s.keep_alive(lease), Err(StoreError::LeaseExpired)));
        assert!(matches!(
            s.put("l/c", b"v", Some(lease)),
            Err(StoreError::LeaseExpired)
        ));
        let lease2 = s.grant(Duration::from_secs(60)).unwrap();
        s.put("l/d", b"v", Some(lease2)).unwrap();
        s.revoke(lease2).unwrap();
        assert_eq!(s.get("l/d").unwrap(), None);
    }
}
