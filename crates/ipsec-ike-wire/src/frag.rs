//! IKEv2 message fragmentation ([RFC 7383]): splitting a protected message into SKF
//! fragments, opening each, and reassembling them with bounds.
//!
//! ```text
//! original:   IKE hdr | SK  { P1 P2 ... Pn }
//! fragments:  IKE hdr | SKF(1/T, next = P1 type) { first chunk  }
//!             IKE hdr | SKF(2/T, next = 0)       { second chunk }
//!             ...
//!             IKE hdr | SKF(T/T, next = 0)       { last chunk   }
//! ```
//!
//! Every fragment has the original header (same SPIs, exchange type, flags and Message
//! ID) with Next Payload SKF and its own Length, and is protected on its own: the
//! associated data / ICV input runs from the IKE header through the Total Fragments
//! field, each chunk gets its own IV and padding (RFC 7383 §2.5).
//!
//! The fragment size follows RFC 7383 §2.5.1: by default IP datagrams of at most 576
//! bytes over IPv4 and 1280 over IPv6, less the IP header (20 / 40), the UDP header (8)
//! and, on port 4500, the 4-byte non-ESP marker ([`max_message_len`]).
//!
//! [RFC 7383]: https://www.rfc-editor.org/rfc/rfc7383

use alloc::vec::Vec;

use ipsec_core::{Duration, Instant};
use ipsec_crypto::SecureRandom;

use crate::encrypted::{SkfRepr, SKF_HEADER_LEN};
use crate::error::ParseError;
use crate::field::Writer;
use crate::header::{IkeHeaderRepr, HEADER_LEN};
use crate::payload::{emit_generic_header, GENERIC_HEADER_LEN, MAX_BODY_LEN};
use crate::protect::{last_payload, OpenError, SealError, SkCrypter};
use crate::registry::PayloadType;

/// The IP version a fragment travels over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (20-byte header, 576-byte default datagram limit).
    V4,
    /// IPv6 (40-byte header, 1280-byte default datagram limit).
    V6,
}

/// The default IP datagram limit for IPv4 (RFC 7383 §2.5.1).
pub const DEFAULT_IPV4_DATAGRAM: usize = 576;
/// The default IP datagram limit for IPv6 (RFC 7383 §2.5.1).
pub const DEFAULT_IPV6_DATAGRAM: usize = 1280;
const UDP_HEADER_LEN: usize = 8;
const NON_ESP_MARKER_LEN: usize = 4;
/// IKE header, SKF generic header, fragment number and total.
const FRAGMENT_OVERHEAD: usize = HEADER_LEN + GENERIC_HEADER_LEN + SKF_HEADER_LEN;

/// The largest IKE message (from the IKE header on) that fits an IP datagram of
/// `datagram` bytes, after the IP and UDP headers and the non-ESP marker when sent on
/// port 4500.
pub const fn message_len_for(datagram: usize, ip: IpVersion, non_esp_marker: bool) -> usize {
    let ip_hdr = match ip {
        IpVersion::V4 => 20,
        IpVersion::V6 => 40,
    };
    let marker = if non_esp_marker {
        NON_ESP_MARKER_LEN
    } else {
        0
    };
    datagram
        .saturating_sub(ip_hdr)
        .saturating_sub(UDP_HEADER_LEN)
        .saturating_sub(marker)
}

/// The RFC 7383 default: 548 / 544 bytes over IPv4, 1232 / 1228 over IPv6 (without /
/// with the non-ESP marker).
pub const fn max_message_len(ip: IpVersion, non_esp_marker: bool) -> usize {
    let datagram = match ip {
        IpVersion::V4 => DEFAULT_IPV4_DATAGRAM,
        IpVersion::V6 => DEFAULT_IPV6_DATAGRAM,
    };
    message_len_for(datagram, ip, non_esp_marker)
}

/// Why a message could not be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentError {
    /// `max_message_len` leaves no room for even one byte of content.
    #[error("fragment size too small")]
    MtuTooSmall,
    /// More than 65535 fragments would be needed.
    #[error("too many fragments")]
    TooManyFragments,
    /// Sealing a fragment failed.
    #[error("sealing a fragment failed: {0}")]
    Seal(SealError),
}

impl From<SealError> for FragmentError {
    fn from(e: SealError) -> Self {
        FragmentError::Seal(e)
    }
}

/// Splits the inner payload chain `inner` (whose first payload has type `first_inner`)
/// into SKF-protected fragments of at most `max_message_len` bytes each
/// (see [`max_message_len`]), with fresh IVs from `rng`.
///
/// # Errors
/// [`FragmentError::MtuTooSmall`] when `max_message_len` cannot carry content,
/// [`FragmentError::TooManyFragments`] beyond 65535 fragments, and sealing errors.
pub fn fragment(
    crypter: &SkCrypter,
    header: &IkeHeaderRepr,
    first_inner: PayloadType,
    inner: &[u8],
    max_message_len: usize,
    rng: &dyn SecureRandom,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let room = max_message_len
        .checked_sub(FRAGMENT_OVERHEAD)
        .ok_or(FragmentError::MtuTooSmall)?
        .min(MAX_BODY_LEN.saturating_sub(SKF_HEADER_LEN));
    let chunk = crypter
        .max_inner_len(room)
        .filter(|c| *c > 0)
        .ok_or(FragmentError::MtuTooSmall)?;
    let count = inner.len().div_ceil(chunk).max(1);
    let total = u16::try_from(count).map_err(|_| FragmentError::TooManyFragments)?;
    let mut out = Vec::with_capacity(count);
    let mut chunks = inner.chunks(chunk);
    for number in 1..=total {
        let data = chunks.next().unwrap_or(&[]);
        let body_len = crypter
            .protected_len(data.len())
            .saturating_add(SKF_HEADER_LEN);
        let len = HEADER_LEN
            .saturating_add(GENERIC_HEADER_LEN)
            .saturating_add(body_len);
        let mut buf = alloc::vec![0u8; len];
        let (h, rest) = buf.split_at_mut(HEADER_LEN);
        header.emit(
            PayloadType::SKF,
            u32::try_from(len).map_err(|_| SealError::TooLong)?,
            h,
        );
        let mut w = Writer::new(rest);
        let next = if number == 1 {
            first_inner
        } else {
            PayloadType::NONE
        };
        emit_generic_header(&mut w, next, false, body_len);
        w.u16(number);
        w.u16(total);
        w.zeros(crypter.iv_len());
        w.put(data);
        crypter.seal_tail(&mut buf, FRAGMENT_OVERHEAD, data.len(), rng)?;
        out.push(buf);
    }
    Ok(out)
}

/// One verified and decrypted fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedFragment<'m> {
    /// The fragment's IKE header.
    pub header: IkeHeaderRepr,
    /// Its number, 1..=`total_fragments`.
    pub fragment_number: u16,
    /// The total number of fragments.
    pub total_fragments: u16,
    /// The SKF Next Payload field: the first inner payload type in fragment 1.
    pub first_inner: PayloadType,
    /// The decrypted content.
    pub data: &'m [u8],
}

/// Verifies and decrypts one fragment (a message whose last payload is SKF) in place.
///
/// # Errors
/// As [`crate::protect::open`]; a fragment number of 0 or above the total is
/// `Malformed`.
pub fn open_fragment<'m>(
    crypter: &SkCrypter,
    message: &'m mut [u8],
) -> Result<OpenedFragment<'m>, OpenError> {
    let (header, raw) = last_payload(message, PayloadType::SKF)?;
    let skf = SkfRepr::from_body(raw.next_payload, raw.body)
        .map_err(|e: ParseError| e.shifted(raw.body_offset))?;
    let (fragment_number, total_fragments, first_inner) =
        (skf.fragment_number, skf.total_fragments, skf.first_inner);
    let aad_end = raw.body_offset.saturating_add(SKF_HEADER_LEN);
    let range = crypter.open_tail(message, aad_end)?;
    let data: &'m [u8] = message.get(range).unwrap_or(&[]);
    Ok(OpenedFragment {
        header,
        fragment_number,
        total_fragments,
        first_inner,
        data,
    })
}

/// Bounds on reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReassemblyLimits {
    /// Largest Total Fragments accepted.
    pub max_fragments: u16,
    /// Largest reassembled content in bytes.
    pub max_len: usize,
    /// How long a partial message is kept after its first fragment.
    pub timeout: Duration,
}

impl ReassemblyLimits {
    /// Limits with the given values.
    pub const fn new(max_fragments: u16, max_len: usize, timeout: Duration) -> Self {
        ReassemblyLimits {
            max_fragments,
            max_len,
            timeout,
        }
    }
}

impl Default for ReassemblyLimits {
    /// 128 fragments, 64 KiB of content, 30 seconds.
    fn default() -> Self {
        ReassemblyLimits {
            max_fragments: 128,
            max_len: 65536,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a fragment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// Total Fragments is above the limit.
    #[error("too many fragments")]
    TooManyFragments,
    /// The content would exceed the size limit; the partial message was dropped.
    #[error("reassembled message too long")]
    TooLong,
    /// Total Fragments is lower than that of fragments already held for the same
    /// message (RFC 7383 §2.6: a larger total restarts reassembly, a smaller one is
    /// discarded).
    #[error("inconsistent total fragments")]
    InconsistentTotal,
    /// Fragment number 0 or above the total.
    #[error("fragment number out of range")]
    BadFragmentNumber,
}

/// A reassembled message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// The header the fragments shared.
    pub header: IkeHeaderRepr,
    /// Type of the first inner payload.
    pub first_inner: PayloadType,
    /// The inner payload chain.
    pub inner: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    header: IkeHeaderRepr,
    total: u16,
    first_inner: PayloadType,
    fragments: Vec<Option<Vec<u8>>>,
    received: usize,
    len: usize,
    started: Instant,
}

/// Reassembles the fragments of one message at a time (one per IKE SA and direction),
/// accepting them in any order and ignoring duplicates. Feed it fragments that
/// [`open_fragment`] verified and whose Message ID the caller accepts.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partial: Option<Partial>,
}

fn same_message(a: &IkeHeaderRepr, b: &IkeHeaderRepr) -> bool {
    a.message_id == b.message_id
        && a.exchange_type == b.exchange_type
        && a.spi_i == b.spi_i
        && a.spi_r == b.spi_r
        && a.flags.is_response() == b.flags.is_response()
        && a.flags.is_initiator() == b.flags.is_initiator()
}

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            partial: None,
        }
    }

    /// The Message ID being reassembled, if any.
    pub fn in_progress(&self) -> Option<u32> {
        self.partial.as_ref().map(|p| p.header.message_id)
    }

    /// When the partial message expires, if there is one.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.partial
            .as_ref()
            .map(|p| p.started.saturating_add(self.limits.timeout))
    }

    /// Drops a partial message older than the timeout; returns whether one was dropped.
    pub fn expire(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(t) if now >= t => {
                self.partial = None;
                true
            }
            _ => false,
        }
    }

    /// Drops any partial message.
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Adds a fragment. Returns the whole message once the last missing fragment
    /// arrives. Duplicates are ignored; a fragment of another message replaces the
    /// partial one.
    ///
    /// # Errors
    /// See [`ReassemblyError`]. A refused fragment leaves the partial message as it was,
    /// except for [`ReassemblyError::TooLong`], which drops it.
    pub fn insert(
        &mut self,
        now: Instant,
        frag: &OpenedFragment<'_>,
    ) -> Result<Option<Reassembled>, ReassemblyError> {
        self.expire(now);
        let (n, total) = (frag.fragment_number, frag.total_fragments);
        if n == 0 || n > total {
            return Err(ReassemblyError::BadFragmentNumber);
        }
        if total > self.limits.max_fragments {
            return Err(ReassemblyError::TooManyFragments);
        }
        if frag.data.len() > self.limits.max_len {
            return Err(ReassemblyError::TooLong);
        }
        let restart = match &self.partial {
            None => true,
            Some(p) if !same_message(&p.header, &frag.header) => true,
            Some(p) if total > p.total => true,
            Some(p) if total < p.total => return Err(ReassemblyError::InconsistentTotal),
            Some(_) => false,
        };
        if restart {
            self.partial = Some(Partial {
                header: frag.header,
                total,
                first_inner: PayloadType::NONE,
                fragments: alloc::vec![None; usize::from(total)],
                received: 0,
                len: 0,
                started: now,
            });
        }
        let Some(p) = self.partial.as_mut() else {
            return Ok(None);
        };
        let Some(slot) = p.fragments.get_mut(usize::from(n).saturating_sub(1)) else {
            return Err(ReassemblyError::BadFragmentNumber);
        };
        if slot.is_some() {
            return Ok(None);
        }
        let len = p.len.saturating_add(frag.data.len());
        if len > self.limits.max_len {
            self.partial = None;
            return Err(ReassemblyError::TooLong);
        }
        *slot = Some(frag.data.to_vec());
        p.len = len;
        p.received = p.received.saturating_add(1);
        if n == 1 {
            p.first_inner = frag.first_inner;
        }
        if p.received < usize::from(p.total) {
            return Ok(None);
        }
        let Some(p) = self.partial.take() else {
            return Ok(None);
        };
        let mut inner = Vec::with_capacity(p.len);
        for f in p.fragments.into_iter().flatten() {
            inner.extend_from_slice(&f);
        }
        Ok(Some(Reassembled {
            header: p.header,
            first_inner: p.first_inner,
            inner,
        }))
    }
}
