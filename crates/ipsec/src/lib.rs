//! Facade (work in progress).
#![forbid(unsafe_code)]
pub use ipsec_core as core;
pub use ipsec_crypto as crypto;
pub use ipsec_esp as esp;
