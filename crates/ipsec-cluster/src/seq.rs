//! Sequence-space leases: no (key, nonce) pair is used twice across the cluster.
//!
//! With AES-GCM and ChaCha20-Poly1305 ESP the IV is the sequence number (RFC 4106 §3,
//! RFC 7634 §2), so two nodes sending on one SA with the same sequence number reuse a
//! nonce under the same key. Every node therefore sends only with numbers from a block
//! it leased exclusively, before it uses them: the record at the SA's lease key holds
//! the first number nobody has leased yet, and a compare-and-swap moves it past the
//! block a node takes. A block is never handed out twice, even to the same node; a node
//! that restarts leases a new one and the numbers of the old one stay unused.

use serde::{Deserialize, Serialize};

use crate::store::{Expect, Store, StoreError};

/// How many compare-and-swap rounds [`lease_block`] tries before giving up with
/// [`LeaseError::Contended`].
pub const MAX_CAS_ATTEMPTS: u32 = 200;

/// The highest 32-bit sequence number: the ceiling of an SA without ESN
/// (RFC 4303 §3.3.3, the counter must not cycle).
pub const CEILING_32: u64 = u32::MAX as u64;
/// The ceiling of an SA with ESN: the highest 64-bit sequence number but one. A ceiling
/// above it is taken as this one, so that the record's `next` (one past the last number
/// leased) always fits in 64 bits and an exhausted space stays exhausted; the one number
/// given up is never reached in practice.
pub const CEILING_64: u64 = u64::MAX - 1;

/// The record stored (as JSON) at a lease key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeaseRecord {
    /// The first sequence number nobody has leased (1 for a new SA).
    pub next: u64,
    /// The node that leased last.
    pub node: String,
    /// When it did, in milliseconds since the Unix epoch (information for operators;
    /// nothing depends on it).
    pub leased_at_ms: u64,
    /// The size of the last block leased.
    pub last_size: u64,
}

impl LeaseRecord {
    /// Sequence numbers not yet leased up to and including `ceiling`.
    /// A ceiling above [`CEILING_64`] counts as [`CEILING_64`].
    pub fn remaining(&self, ceiling: u64) -> u64 {
        let ceiling = ceiling.min(CEILING_64);
        if self.next > ceiling {
            0
        } else {
            ceiling - self.next + 1
        }
    }

    /// Parses a stored record.
    ///
    /// # Errors
    /// [`LeaseError::Corrupt`] when the bytes are not a lease record.
    pub fn decode(bytes: &[u8]) -> Result<Self, LeaseError> {
        let r: Self =
            serde_json::from_slice(bytes).map_err(|e| LeaseError::Corrupt(e.to_string()))?;
        if r.next == 0 {
            return Err(LeaseError::Corrupt("next is 0".into()));
        }
        Ok(r)
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing a struct of integers and a string cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A block of sequence numbers leased exclusively: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqBlock {
    /// The first number of the block.
    pub first: u64,
    /// The last number of the block (inclusive).
    pub last: u64,
    /// What is left to lease after this block, up to the ceiling it was leased with.
    pub remaining: u64,
}

impl SeqBlock {
    /// How many numbers the block holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a block holds at least one number.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `seq` is in the block.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// Why no block was leased. In every case nothing was leased and no number may be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The store failed; [`LeaseError::is_unavailable`] tells whether it is down.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every number up to the ceiling is leased: the SA must be rekeyed.
    #[error("sequence space exhausted: next {next} is past the ceiling {ceiling}")]
    Exhausted {
        /// The first unleased number.
        next: u64,
        /// The ceiling asked for.
        ceiling: u64,
    },
    /// Other nodes won every compare-and-swap round.
    #[error("lost {0} compare-and-swap rounds in a row")]
    Contended(u32),
    /// The record at the key is not a lease record.
    #[error("lease record is corrupt: {0}")]
    Corrupt(String),
    /// A block size of 0 was asked for.
    #[error("block size must be at least 1")]
    InvalidSize,
    /// [`lease_existing`] found no record (the SA is gone, or not published yet).
    #[error("no lease record")]
    NoRecord,
    /// [`create`] found a record already there.
    #[error("a lease record already exists")]
    AlreadyExists,
}

impl LeaseError {
    /// True when the store is down or unreachable ([`StoreError::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, LeaseError::Store(e) if e.is_unavailable())
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the record's timestamp is wall time for operators; nothing computes with it"
)]
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Takes the block starting at `next` (clamped at `ceiling`) and the record after it.
fn take(
    next: u64,
    node: &str,
    size: u64,
    ceiling: u64,
) -> Result<(SeqBlock, LeaseRecord), LeaseError> {
    let ceiling = ceiling.min(CEILING_64);
    if next > ceiling {
        return Err(LeaseError::Exhausted { next, ceiling });
    }
    let last = next.saturating_add(size - 1).min(ceiling);
    let record = LeaseRecord {
        // last <= u64::MAX - 1: no overflow
        next: last + 1,
        node: node.to_owned(),
        leased_at_ms: unix_ms(),
        last_size: size,
    };
    let remaining = if last == u64::MAX {
        0
    } else {
        record.remaining(ceiling)
    };
    Ok((
        SeqBlock {
            first: next,
            last,
            remaining,
        },
        record,
    ))
}

/// After losing round `attempt`: nothing the first time, then a random pause of up to
/// 50 µs × 2^attempt (at most ~13 ms), so that contending nodes spread out instead of
/// colliding again in lock step.
fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let mut r = [0u8; 4];
    if getrandom::getrandom(&mut r).is_err() {
        std::thread::yield_now();
        return;
    }
    let cap_us = 50u64 << attempt.min(8);
    let us = u64::from(u32::from_le_bytes(r)) % cap_us;
    std::thread::sleep(std::time::Duration::from_micros(us));
}

/// Leases the next block of up to `size` sequence numbers at `key` for `node`, never
/// past `ceiling`. An absent record is created (the first block starts at 1).
///
/// # Errors
/// [`LeaseError::Store`] (nothing leased; the caller keeps to what it had),
/// [`LeaseError::Exhausted`], [`LeaseError::Contended`] after [`MAX_CAS_ATTEMPTS`]
/// lost rounds, [`LeaseError::Corrupt`], [`LeaseError::InvalidSize`].
pub fn lease_block(
    store: &dyn Store,
    key: &str,
    node: &str,
    size: u64,
    ceiling: u64,
) -> Result<SeqBlock, LeaseError> {
    lease(store, key, node, size, ceiling, true)
}

/// Leases the next block as [`lease_block`] does, but only from a record that exists:
/// [`LeaseError::NoRecord`] when it does not. A node that did not install the SA
/// leases with this, so that a record deleted with its SA is never created again from
/// 1 (which would hand out numbers the installing node already used).
///
/// # Errors
/// [`LeaseError::NoRecord`]; else as [`lease_block`].
pub fn lease_existing(
    store: &dyn Store,
    key: &str,
    node: &str,
    size: u64,
    ceiling: u64,
) -> Result<SeqBlock, LeaseError> {
    lease(store, key, node, size, ceiling, false)
}

fn lease(
    store: &dyn Store,
    key: &str,
    node: &str,
    size: u64,
    ceiling: u64,
    create: bool,
) -> Result<SeqBlock, LeaseError> {
    if size == 0 {
        return Err(LeaseError::InvalidSize);
    }
    let mut current = store.get(key)?;
    for attempt in 0..MAX_CAS_ATTEMPTS {
        let (expect, next) = match &current {
            None if !create => return Err(LeaseError::NoRecord),
            None => (Expect::Absent, 1),
            Some(e) => (
                Expect::Revision(e.mod_revision),
                LeaseRecord::decode(&e.value)?.next,
            ),
        };
        let (block, record) = take(next, node, size, ceiling)?;
        match store.cas(key, expect, &record.encode(), None)? {
            Ok(_) => return Ok(block),
            Err(now) => current = now,
        }
        backoff(attempt);
    }
    Err(LeaseError::Contended(MAX_CAS_ATTEMPTS))
}

/// Creates the record of a new SA at `key` and leases its first block for `node` (the
/// node that installs the SA).
///
/// # Errors
/// [`LeaseError::AlreadyExists`] when a record is there; else as [`lease_block`].
pub fn create(
    store: &dyn Store,
    key: &str,
    node: &str,
    first_block_size: u64,
    ceiling: u64,
) -> Result<SeqBlock, LeaseError> {
    if first_block_size == 0 {
        return Err(LeaseError::InvalidSize);
    }
    let (block, record) = take(1, node, first_block_size, ceiling)?;
    match store.cas(key, Expect::Absent, &record.encode(), None)? {
        Ok(_) => Ok(block),
        Err(_) => Err(LeaseError::AlreadyExists),
    }
}

/// The lease record at `key`, if there is one.
///
/// # Errors
/// [`LeaseError::Store`], [`LeaseError::Corrupt`].
pub fn read(store: &dyn Store, key: &str) -> Result<Option<LeaseRecord>, LeaseError> {
    store
        .get(key)?
        .map(|e| LeaseRecord::decode(&e.value))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStore;
    use std::sync::Arc;

    #[test]
    fn lease_existing_never_creates() {
        let s = MemStore::new();
        assert!(matches!(
            lease_existing(&s, "seq/9", "b", 10, CEILING_32),
            Err(LeaseError::NoRecord)
        ));
        assert!(read(&s, "seq/9").unwrap().is_none());
        let a = create(&s, "seq/9", "a", 100, CEILING_32).unwrap();
        assert_eq!((a.first, a.last), (1, 100));
        let b = lease_existing(&s, "seq/9", "b", 10, CEILING_32).unwrap();
        assert_eq!((b.first, b.last), (101, 110));
        s.delete("seq/9").unwrap();
        assert!(matches!(
            lease_existing(&s, "seq/9", "b", 10, CEILING_32),
            Err(LeaseError::NoRecord)
        ));
    }

    #[test]
    fn first_block_starts_at_one_and_blocks_follow() {
        let s = MemStore::new();
        let a = lease_block(&s, "seq/1", "a", 10, CEILING_32).unwrap();
        assert_eq!((a.first, a.last, a.len()), (1, 10, 10));
        assert_eq!(a.remaining, CEILING_32 - 10);
        let b = lease_block(&s, "seq/1", "b", 5, CEILING_32).unwrap();
        assert_eq!((b.first, b.last), (11, 15));
        let r = read(&s, "seq/1").unwrap().unwrap();
        assert_eq!((r.next, r.node.as_str(), r.last_size), (16, "b", 5));
        assert_eq!(r.remaining(CEILING_32), CEILING_32 - 15);
        assert!(matches!(
            lease_block(&s, "seq/1", "b", 0, CEILING_32),
            Err(LeaseError::InvalidSize)
        ));
    }

    #[test]
    fn create_then_lease() {
        let s = MemStore::new();
        let first = create(&s, "seq/2", "a", 100, CEILING_32).unwrap();
        assert_eq!((first.first, first.last), (1, 100));
        assert!(matches!(
            create(&s, "seq/2", "b", 100, CEILING_32),
            Err(LeaseError::AlreadyExists)
        ));
        assert_eq!(
            lease_block(&s, "seq/2", "b", 1, CEILING_32).unwrap().first,
            101
        );
    }

    #[test]
    fn exhaustion_at_the_ceiling() {
        let s = MemStore::new();
        let a = lease_block(&s, "k", "a", 60, 100).unwrap();
        let b = lease_block(&s, "k", "a", 60, 100).unwrap();
        assert_eq!(
            (b.first, b.last, b.remaining),
            (61, 100, 0),
            "clamped: {a:?} {b:?}"
        );
        match lease_block(&s, "k", "a", 1, 100) {
            Err(LeaseError::Exhausted {
                next: 101,
                ceiling: 100,
            }) => {}
            other => panic!("{other:?}"),
        }
        // the full 64-bit space ends without overflow
        let s = MemStore::new();
        s.put(
            "k",
            &LeaseRecord {
                next: u64::MAX - 1,
                node: "x".into(),
                leased_at_ms: 0,
                last_size: 1,
            }
            .encode(),
            None,
        )
        .unwrap();
        let b = lease_block(&s, "k", "a", 1000, u64::MAX).unwrap();
        assert_eq!(
            (b.first, b.last, b.remaining),
            (u64::MAX - 1, u64::MAX - 1, 0)
        );
        assert!(matches!(
            lease_block(&s, "k", "a", 1, u64::MAX),
            Err(LeaseError::Exhausted { .. })
        ));
        assert!(matches!(
            lease_block(&s, "k", "a", 1, CEILING_64),
            Err(LeaseError::Exhausted { .. })
        ));
    }

    #[test]
    fn corrupt_record_is_typed() {
        let s = MemStore::new();
        s.put("k", b"not json", None).unwrap();
        assert!(matches!(
            lease_block(&s, "k", "a", 1, 10),
            Err(LeaseError::Corrupt(_))
        ));
        s.put(
            "k",
            br#"{"next":0,"node":"a","leased_at_ms":0,"last_size":1}"#,
            None,
        )
        .unwrap();
        assert!(matches!(
            lease_block(&s, "k", "a", 1, 10),
            Err(LeaseError::Corrupt(_))
        ));
    }

    #[test]
    fn outage_gives_a_typed_error_and_no_block() {
        let s = MemStore::new();
        lease_block(&s, "k", "a", 10, CEILING_32).unwrap();
        s.set_available(false);
        let e = lease_block(&s, "k", "a", 10, CEILING_32).unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        s.set_available(true);
        // nothing was consumed by the failed attempt
        assert_eq!(lease_block(&s, "k", "a", 10, CEILING_32).unwrap().first, 11);
    }

    /// 8 threads x 500 leases against one key: every block is disjoint from every
    /// other and together they cover 1..=N without a gap.
    #[test]
    fn concurrent_leases_are_disjoint_and_contiguous() {
        let s = Arc::new(MemStore::new());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    (0..500u64)
                        .map(|i| {
                            let size = 1 + (t * 7 + i * 13) % 64;
                            let b =
                                lease_block(&*s, "seq/hot", &format!("node{t}"), size, CEILING_64)
                                    .unwrap();
                            assert_eq!(b.len(), size);
                            b
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut blocks: Vec<SeqBlock> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(blocks.len(), 4000);
        blocks.sort_by_key(|b| b.first);
        let mut expect = 1;
        for b in &blocks {
            assert_eq!(b.first, expect, "gap or overlap at {b:?}");
            expect = b.last + 1;
        }
        assert_eq!(read(&*s, "seq/hot").unwrap().unwrap().next, expect);
    }
}
