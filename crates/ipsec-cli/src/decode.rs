//! `ipsec decode` (being written).
use std::path::{Path, PathBuf};

/// Decodes a capture.
pub fn run(_keys: &[PathBuf], _capture: &Path, _json: bool, _p: &ipsec::crypto::CryptoProvider) -> Result<(), String> {
    Err("decode is not built yet".into())
}
