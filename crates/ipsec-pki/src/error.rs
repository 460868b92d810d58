//! The error of this crate.

use std::path::PathBuf;

/// Why a certificate, key, CRL or identity could not be loaded or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A PEM block (RFC 7468) does not decode.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// The input holds no certificate.
    #[error("no certificate found")]
    NoCertificate,
    /// The input holds no private key.
    #[error("no private key found")]
    NoKey,
    /// The private key is malformed, encrypted or of a type or size not supported.
    #[error("unsupported or malformed private key: {0}")]
    UnsupportedKey(String),
    /// A certificate does not parse as X.509 (RFC 5280 §4.1).
    #[error("malformed certificate: {0}")]
    BadCertificate(String),
    /// A CRL does not parse (RFC 5280 §5.1).
    #[error("malformed CRL: {0}")]
    BadCrl(String),
    /// An identity or distinguished name string does not parse.
    #[error("bad identity {0:?}")]
    BadIdentity(String),
    /// The private key is not the key of the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
}

impl PkiError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
