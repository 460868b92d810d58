//! The parsers of the `ipsec` command that read untrusted files, as a library so that
//! the fuzz targets (`fuzz/fuzz_targets/cli_keyfile.rs`, `cli_capture.rs`) can reach
//! them:
//!
//! - [`keyfile`]: Wireshark's `esp_sa` and `ikev2_decryption_table` key tables;
//! - [`capture`]: pcap and pcapng captures and their link layers.
//!
//! The command itself (`src/main.rs`) uses these modules from here. This is not a
//! stable API: it follows the command's needs.
#![forbid(unsafe_code)]

pub mod capture;
pub mod keyfile;
