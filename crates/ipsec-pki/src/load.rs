//! Reading certificates and CRLs from PEM (RFC 7468) or DER files.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::PkiError;

/// Upper bound on a file this crate reads: certificates, keys and CRLs are far smaller.
pub(crate) const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Reads a whole file of at most [`MAX_FILE_LEN`] bytes.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, PkiError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| PkiError::io(path, e))?;
    // Sized up front, so that a key is not left behind in a reallocated buffer.
    let len = file
        .metadata()
        .map(|m| m.len())
        .unwrap_or(0)
        .min(MAX_FILE_LEN);
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| PkiError::io(path, e))?;
    if buf.len() as u64 > MAX_FILE_LEN {
        return Err(PkiError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "file too large"),
        ));
    }
    Ok(buf)
}

/// One decoded PEM block: its label and its contents (zeroized on drop: it may be a
/// private key).
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The PEM blocks of `bytes` (RFC 7468 §2), text between them ignored; `None` when
/// there is no `-----BEGIN ` line at all (the input is then taken as DER).
pub(crate) fn pem_blocks(bytes: &[u8]) -> Option<Result<Vec<PemBlock>, PkiError>> {
    find(bytes, BEGIN, 0)?;
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(start) = find(bytes, BEGIN, pos) {
        let Some(end) = find(bytes, END, start + BEGIN.len()) else {
            return Some(Err(PkiError::Pem("a BEGIN line without END".into())));
        };
        let Some(close) = find(bytes, DASHES, end + END.len()) else {
            return Some(Err(PkiError::Pem("an unterminated END line".into())));
        };
        let stop = close + DASHES.len();
        let Some(block) = bytes.get(start..stop) else {
            return Some(Err(PkiError::Pem("truncated block".into())));
        };
        match pem_rfc7468::decode_vec(block) {
            Ok((label, der)) => blocks.push(PemBlock {
                label: label.to_owned(),
                der: Zeroizing::new(der),
            }),
            Err(e) => return Some(Err(PkiError::Pem(e.to_string()))),
        }
        pos = stop;
    }
    Some(Ok(blocks))
}

/// Whether `bytes` starts like a DER SEQUENCE (tag 0x30), as every certificate, key
/// and CRL does.
pub(crate) fn looks_like_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30)
}

/// Reads certificates from a file: PEM with one or more `CERTIFICATE` blocks (a
/// chain, end entity first, as swanctl's `x509/` files and strongSwan's `pki`
/// write them), or a single DER certificate (RFC 5280 §4.1).
///
/// # Errors
/// [`PkiError::Io`] if the file cannot be read, otherwise as [`parse_certs`].
pub fn load_certs(path: &Path) -> Result<Vec<Vec<u8>>, PkiError> {
    parse_certs(&read_file(path)?)
}

/// Certificates from memory, as [`load_certs`]: the DER of each `CERTIFICATE` (or
/// `X509 CERTIFICATE`) PEM block in order, or the input itself if it is DER. Other
/// PEM blocks are skipped. Each certificate is checked to parse as X.509.
///
/// # Errors
/// [`PkiError::Pem`] for a PEM block that does not decode,
/// [`PkiError::NoCertificate`] if there is no certificate,
/// [`PkiError::BadCertificate`] if one does not parse.
pub fn parse_certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let certs: Vec<Vec<u8>> = match pem_blocks(bytes) {
        Some(blocks) => blocks?
            .into_iter()
            .filter(|b| b.label == "CERTIFICATE" || b.label == "X509 CERTIFICATE")
            .map(|b| b.der.to_vec())
            .collect(),
        None if looks_like_der(bytes) => vec![bytes.to_vec()],
        None => Vec::new(),
    };
    if certs.is_empty() {
        return Err(PkiError::NoCertificate);
    }
    for c in &certs {
        crate::names::parse_cert(c)?;
    }
    Ok(certs)
}

/// Reads a certificate revocation list (RFC 5280 §5): PEM `X509 CRL` or DER, as
/// swanctl's `x509crl/` holds them.
///
/// # Errors
/// [`PkiError::Io`] if the file cannot be read, otherwise as [`parse_crl`].
pub fn load_crl(path: &Path) -> Result<Vec<u8>, PkiError> {
    parse_crl(&read_file(path)?)
}

/// A CRL from memory, as [`load_crl`]: the first `X509 CRL` PEM block, or the input
/// if it is DER. The CRL is checked to parse (rustls-webpki's CRL profile).
///
/// # Errors
/// [`PkiError::Pem`] for a PEM block that does not decode, [`PkiError::BadCrl`] if
/// there is no CRL or it does not parse.
pub fn parse_crl(bytes: &[u8]) -> Result<Vec<u8>, PkiError> {
    let der = match pem_blocks(bytes) {
        Some(blocks) => blocks?
            .into_iter()
            .find(|b| b.label == "X509 CRL")
            .map(|b| b.der.to_vec())
            .ok_or_else(|| PkiError::BadCrl("no X509 CRL block".into()))?,
        None => bytes.to_vec(),
    };
    webpki::OwnedCertRevocationList::from_der(&der).map_err(|e| PkiError::BadCrl(e.to_string()))?;
    Ok(der)
}
