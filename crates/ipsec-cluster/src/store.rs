//! The blocking key-value store the cluster shares state through.

use std::sync::mpsc::Receiver;
use std::time::Duration;

/// A value with the store revision of its last change.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes (opaque to the store; sealed records come from
    /// [`ClusterKey::seal`](crate::ClusterKey::seal)).
    pub value: Vec<u8>,
    /// The store revision at which the key was last written (etcd's `mod_revision`).
    pub mod_revision: u64,
}

impl core::fmt::Debug for Entry {
    // The value may be a key record: print its length only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Entry")
            .field("value_len", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// What a compare-and-swap expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key does not exist.
    Absent,
    /// The key exists and was last written at this revision.
    Revision(u64),
}

/// A store lease: keys written with it are deleted when it expires or is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

/// A change under a watched prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// `key` was written.
    Put {
        /// The full key.
        key: String,
        /// The new value and its revision.
        entry: Entry,
    },
    /// `key` was deleted (explicitly or by its lease expiring) at `revision`.
    Delete {
        /// The full key.
        key: String,
        /// The revision of the deletion.
        revision: u64,
    },
    /// The history the watch needed is gone (compacted): events were missed. The caller
    /// re-reads the prefix with [`Store::list`]. The watch goes on from the oldest
    /// revision the store still has, so events at or below the revision `list`
    /// returned repeat what the list shows and are to be skipped.
    Resync,
}

impl WatchEvent {
    /// The revision of a put or delete, `None` for [`WatchEvent::Resync`].
    pub fn revision(&self) -> Option<u64> {
        match self {
            WatchEvent::Put { entry, .. } => Some(entry.mod_revision),
            WatchEvent::Delete { revision, .. } => Some(*revision),
            WatchEvent::Resync => None,
        }
    }
}

/// Why a store call failed.
///
/// [`StoreError::is_unavailable`] tells "the store is down or unreachable" (retry
/// later, keep serving from what is leased) apart from errors that retrying does not
/// fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (connection refused, no leader, simulated outage).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The call did not complete within the store's timeout.
    #[error("store call timed out after {0:?}")]
    Timeout(Duration),
    /// The lease named in the call no longer exists (expired or revoked).
    #[error("lease expired or revoked")]
    LeaseExpired,
    /// The store refused the request (invalid argument, key too large, permission).
    #[error("store refused the request: {0}")]
    Rejected(String),
    /// The store answered something this crate cannot use (a key that is not UTF-8, a
    /// negative revision).
    #[error("unexpected answer from the store: {0}")]
    Protocol(String),
}

impl StoreError {
    /// True for [`StoreError::Unavailable`] and [`StoreError::Timeout`]: the store is
    /// down or unreachable, as opposed to having refused this request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

/// The answer of [`Store::cas`]: `Ok(new_revision)` when the expectation held and the
/// value was written, `Err(current)` (the entry found, `None` if absent) when not.
pub type CasOutcome = Result<u64, Option<Entry>>;

/// A blocking, linearizable key-value store with revisions, compare-and-swap, leases
/// and watches (the subset of etcd's v3 API the cluster needs).
///
/// Every call is bounded by the timeout the store was built with and then fails with
/// [`StoreError::Timeout`]. Calls are made from plain threads; an implementation may
/// run its own runtime inside.
pub trait Store: Send + Sync {
    /// The entry at `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] / [`StoreError::Timeout`] when the store is down.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Every key under `prefix` (sorted by key), and the store revision they were read
    /// at (pass it to [`Store::watch`] to follow changes from there).
    ///
    /// # Errors
    /// As [`Store::get`].
    fn list(&self, prefix: &str) -> Result<(Vec<(String, Entry)>, u64), StoreError>;

    /// Writes `value` at `key`, attached to `lease` if given; returns the new revision.
    ///
    /// # Errors
    /// As [`Store::get`]; [`StoreError::LeaseExpired`] when `lease` is gone.
    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<u64, StoreError>;

    /// Compare-and-swap: writes `value` only if `key` is as `expect` says.
    /// `Ok(Ok(new_revision))` when it matched, `Ok(Err(current))` when not.
    ///
    /// # Errors
    /// As [`Store::put`].
    fn cas(
        &self,
        key: &str,
        expect: Expect,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError>;

    /// Deletes `key` (no error if it does not exist).
    ///
    /// # Errors
    /// As [`Store::get`].
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Events under `prefix` with revisions after `after_revision`, in revision order.
    ///
    /// The watch reconnects by itself when the store goes away and comes back, resuming
    /// after the last revision it delivered; if that history is gone (compaction) it
    /// sends [`WatchEvent::Resync`]. The watch ends (the receiver disconnects) only when
    /// the store handle is dropped; dropping the receiver ends it too.
    ///
    /// # Errors
    /// As [`Store::get`], for setting the watch up.
    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Receiver<WatchEvent>, StoreError>;

    /// A new lease that expires `ttl` after the last keep-alive (etcd rounds up to whole
    /// seconds, at least one).
    ///
    /// # Errors
    /// As [`Store::get`].
    fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Renews `lease` for its full TTL.
    ///
    /// # Errors
    /// [`StoreError::LeaseExpired`] when the lease is gone; else as [`Store::get`].
    fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Ends `lease` now, deleting its keys (no error if it is already gone).
    ///
    /// # Errors
    /// As [`Store::get`].
    fn revoke(&self, lease: LeaseId) -> Result<(), StoreError>;
}
