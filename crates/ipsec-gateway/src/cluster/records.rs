//! What a cluster keeps in its store, under the cluster's prefix (docs/scale-out.md,
//! "Store layout"), and the view `ipsec status` shows of it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `nodes/<node>`: a node is up while its store lease lives.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeRecord {
    /// Where it takes forwarded IKE messages.
    pub cluster_addr: SocketAddr,
    /// Its part of the inbound SPI space (`ClusterOptions::spi_space`), if any.
    #[serde(default)]
    pub spi_index: Option<u32>,
}

/// `ike/<spi_i>-<spi_r>`: the node that owns an IKE SA (attached to its lease).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IkeRecord {
    /// The owner's name.
    pub owner: String,
    /// Where to forward its IKE messages.
    pub cluster_addr: SocketAddr,
}

/// `child/<spi_in>-<spi_out>`: a Child SA for every node to install.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChildRecord {
    /// The node whose IKE SA negotiated it.
    pub owner: String,
    /// That IKE SA (`<spi_i>-<spi_r>`).
    pub ike: String,
    /// The SA's snapshot (`ipsec_sad::SaSnapshot` as JSON, keys included), sealed
    /// under the cluster key with the record's key as its name, in hex.
    pub sealed: String,
}

/// `ikestate/<spi_i>-<spi_r>`: an IKE SA's state after its last exchange, for the node
/// that takes it over when its owner dies (not on the owner's lease: it must outlive
/// it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IkeStateRecord {
    /// The node that wrote it.
    pub owner: String,
    /// The connection the IKE SA belongs to (the same configuration on every node).
    pub conn: String,
    /// The IKE SA's snapshot (`ipsec_ike::IkeSaSnapshot` as JSON, keys included),
    /// sealed under the cluster key with the record's key as its name, in hex.
    pub sealed: String,
}

/// `lease/<node>/<sa>`: the block of sequence numbers a node holds now (for the
/// status; the truth is `seq/<sa>`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockRecord {
    /// First number.
    pub first: u64,
    /// Last number.
    pub last: u64,
}

/// The cluster as this node sees it (`ipsec status`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterView {
    /// This node's name.
    pub node: String,
    /// Whether the last store call succeeded.
    pub store_ok: bool,
    /// Nodes that are up: name and cluster address.
    pub nodes: Vec<(String, SocketAddr)>,
    /// IKE SAs and their owners.
    pub owners: Vec<(String, String)>,
    /// Blocks of sequence numbers: node, SA, first, last.
    pub leases: Vec<(String, String, u64, u64)>,
    /// Child SAs in the store.
    pub child_sas: usize,
    /// Of them, imported here from other nodes.
    pub replicas: usize,
    /// Blocks this node leased since it started.
    pub blocks_leased: u64,
    /// IKE messages forwarded to their owner, and received from other nodes.
    pub forwarded: (u64, u64),
    /// IKE SAs this node took over from a node that died.
    pub taken_over: u64,
    /// IKE SAs of ours fenced now: this node was cut off from the store for longer
    /// than `FENCE_AFTER`, so another node may be taking them over; they are resumed
    /// when the store is back if they are still ours (docs/scale-out.md, "IKE").
    pub fenced: usize,
    /// Fenced IKE SAs resumed since the node started.
    pub resumed: u64,
    /// Answers to peers held back until their IKE SA's state was written
    /// (write-ahead), those of them that left after `HOLD_MAX` without the write
    /// returning, and the longest hold in microseconds. (An answer whose write
    /// returned with an error leaves at once and is counted as held only.)
    pub answers_held: (u64, u64, u64),
}
