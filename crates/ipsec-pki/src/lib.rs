#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod error;
mod key;
mod load;
mod names;
mod verify;

pub use error::PkiError;
pub use key::{
    check_key_matches_cert, load_private_key, local_auth, parse_private_key, KeyKind, PrivateKey,
};
pub use load::{load_certs, load_crl, parse_certs, parse_crl};
pub use names::{
    ca_key_hash, cert_identity, dn_identity, identity_string, issuer, parse_identity, subject,
    subject_alt_names,
};
pub use verify::{CertVerifier, FixedClock, SystemClock, WallClock, MAX_PEER_CERTS};
