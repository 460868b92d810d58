//! The gateway's configuration: serde types ([`GatewayConfig`] and what it holds), a
//! parser for the subset of strongSwan's `swanctl.conf` that maps onto them
//! ([`parse_swanctl`]), and the conversion of one connection to an
//! [`ipsec::ike::Config`] ([`Connection::to_ike_config`]).
//!
//! The supported keys, their meaning and their defaults (strongSwan's, with the
//! source) are listed in docs/gateway.md, "Configuration".
//!
//! ```
//! use ipsec_gateway::conf::parse_swanctl;
//!
//! let text = r#"
//! connections {
//!   gw {
//!     local_addrs = 192.0.2.1
//!     remote_addrs = 192.0.2.2
//!     local { auth = psk
//!             id = gw.example }
//!     remote { auth = psk
//!              id = peer.example }
//!     children {
//!       net { local_ts = 10.1.0.0/16
//!             remote_ts = 10.2.0.0/16 }
//!     }
//!   }
//! }
//! secrets {
//!   ike-peer { id = peer.example
//!              secret = "a long pre-shared key" }
//! }
//! "#;
//! let conf = parse_swanctl("swanctl.conf", text.as_bytes())?;
//! let ike = conf.ike_config("gw")?;
//! assert_eq!(ike.psk.expose(), b"a long pre-shared key");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors carry the file name and line: [`ConfError`] for the file, [`ConvertError`]
//! (naming the connection and field) for the conversion.

mod convert;
mod creds;
mod model;
mod swanctl;
mod syntax;

pub use convert::{select_eap_secret, select_psk, ConvertError, FRAGMENT_MTU};
pub use creds::Credentials;
pub use model::{
    AddrSpec, AuthMethod, AuthRound, Child, ChildMode, CloseAction, Connection, DpdAction,
    GatewayConfig, IkeSecret, Pool, Seconds, Secret, StartAction, TsSpec, ValueError,
};
pub(crate) use swanctl::redirect_gateway;
pub use swanctl::{load_swanctl, parse_swanctl};
pub use syntax::{MAX_DEPTH, MAX_INPUT_LEN};

/// An error in a `swanctl.conf` file: where ([`file`](Self::file), 1-based
/// [`line`](Self::line)) and what ([`kind`](Self::kind)). It prints as
/// `file:line: what`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
#[non_exhaustive]
pub struct ConfError {
    /// The file name the caller gave.
    pub file: String,
    /// The line, counted from 1 (0 for an error about the whole file, such as its size
    /// or an I/O error).
    pub line: u32,
    /// What is wrong.
    pub kind: ConfErrorKind,
}

/// What is wrong in a `swanctl.conf` file. Keys and sections are named by their
/// dotted path (`connections.gw.children.net.mode`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// The file is longer than [`MAX_INPUT_LEN`].
    #[error("the file is longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The file is not UTF-8 (the line is the one with the first bad byte).
    #[error("the text is not UTF-8")]
    InvalidUtf8,
    /// Sections are nested deeper than [`MAX_DEPTH`].
    #[error("sections nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The text does not follow the settings syntax.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// A syntax strongSwan has and we do not (`include`, section references).
    #[error("{0} is not supported")]
    UnsupportedSyntax(&'static str),
    /// A key strongSwan does not know here (a typo, or a key of another section).
    #[error("unknown key '{0}'")]
    UnknownKey(String),
    /// A key strongSwan knows that this gateway does not implement.
    #[error("'{key}' is a strongSwan setting this gateway does not support: {reason}")]
    UnsupportedKey {
        /// The key's path.
        key: String,
        /// Why, or what to use instead.
        reason: &'static str,
    },
    /// A section strongSwan does not know here.
    #[error("unknown section '{0}'")]
    UnknownSection(String),
    /// A section strongSwan knows that this gateway does not implement.
    #[error("section '{section}' is a strongSwan section this gateway does not support: {reason}")]
    UnsupportedSection {
        /// The section's path.
        section: String,
        /// Why, or what to use instead.
        reason: &'static str,
    },
    /// A name that is a section here was given a value, or the other way round.
    #[error("'{0}' must be a section ('name {{ ... }}'), not a key")]
    NotASection(String),
    /// A name that is a key here was written as a section.
    #[error("'{0}' must be a key ('name = value'), not a section")]
    NotAKey(String),
    /// A value that cannot be parsed or is not allowed.
    #[error("bad value for '{key}': {problem}")]
    BadValue {
        /// The key's path.
        key: String,
        /// What is wrong with the value.
        problem: String,
    },
    /// A section appears twice at the same level.
    #[error("duplicate section '{section}' (first at line {first_line})")]
    DuplicateSection {
        /// The section's path.
        section: String,
        /// Where it was first.
        first_line: u32,
    },
    /// A key appears twice in one section.
    #[error("duplicate key '{key}' (first at line {first_line})")]
    DuplicateKey {
        /// The key's path.
        key: String,
        /// Where it was first.
        first_line: u32,
    },
    /// A key that must be given is missing (the line is the section's).
    #[error("missing '{key}': {why}")]
    Missing {
        /// The key's path.
        key: String,
        /// Why it is needed.
        why: &'static str,
    },
}
