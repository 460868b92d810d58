//! Shared state of an anycast IPsec cluster.
//!
//! N gateway nodes serve the same SAs and share what they must agree on through a
//! distributed store (etcd). This crate is that storage layer, std only and blocking,
//! called from plain threads:
//!
//! - [`Store`]: a key-value store with revisions, compare-and-swap, leases and
//!   watches, every call bounded by a timeout. [`MemStore`] is the in-process
//!   implementation for tests (shared by clones, with a simulated outage);
//!   `EtcdStore` (feature `etcd`) talks to etcd's v3 API. [`StoreError::is_unavailable`]
//!   tells "store down" apart from a refused request.
//! - [`ClusterUrl`] parses `etcd://HOST:PORT,HOST:PORT` (one or more endpoints).
//! - [`ClusterKey`]: what the nodes write (SA keys) is sealed with XChaCha20-Poly1305
//!   under a cluster key the store never sees, bound to the key name it is stored under.
//! - [`lease_block`]: sequence-space leases. With AES-GCM and ChaCha20-Poly1305 ESP the
//!   IV is the sequence number (RFC 4106 §3, RFC 7634 §2), so each node sends only with
//!   numbers from blocks it leased exclusively, through a compare-and-swap on the SA's
//!   lease record; [`BlockSizer`] sizes the blocks to the traffic.
//!
//! ```
//! use ipsec_cluster::{lease_block, BlockSizer, MemStore, CEILING_32};
//! let store = MemStore::new();
//! let node_a = store.clone(); // two nodes sharing one store
//! let node_b = store.clone();
//! let sizer = BlockSizer::default();
//! let a = lease_block(&node_a, "sa/0x1234/seq", "a", sizer.next_size(0, Default::default()), CEILING_32)?;
//! let b = lease_block(&node_b, "sa/0x1234/seq", "b", 4096, CEILING_32)?;
//! assert_eq!((a.first, a.last), (1, 1024));
//! assert_eq!((b.first, b.last), (1025, 5120));
//! # Ok::<(), ipsec_cluster::LeaseError>(())
//! ```
#![forbid(unsafe_code)]

mod mem;
mod seal;
mod seq;
mod sizer;
mod store;
mod url;

#[cfg(feature = "etcd")]
mod etcd;

#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use mem::{MemStore, MEM_HISTORY};
pub use seal::{ClusterKey, KeyError, SealError, NONCE_LEN, SEAL_OVERHEAD, SEAL_VERSION, TAG_LEN};
pub use seq::{
    create, lease_block, lease_existing, read, LeaseError, LeaseRecord, SeqBlock, CEILING_32,
    CEILING_64, MAX_CAS_ATTEMPTS,
};
pub use sizer::BlockSizer;
pub use store::{CasOutcome, Entry, Expect, LeaseId, Store, StoreError, WatchEvent};
pub use url::{ClusterUrl, Endpoint, UrlError, MAX_ENDPOINTS};
