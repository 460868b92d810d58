//! Handles shared by every module (a leaf: it imports nothing of the crate).

/// The SAD's handle of an installed SA pair, unique for the life of the SAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SaId(pub u64);
