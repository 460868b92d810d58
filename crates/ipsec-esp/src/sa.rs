//! Per-SA ESP state and in-place seal/open ([RFC 4303 §3.3] and [§3.4]).
//!
//! [`EspOutbound`] holds one direction's keys and the sequence counter;
//! [`EspInbound`] holds the keys and the anti-replay window. Both are built once per
//! SA (the only allocation: the backend's key schedule) and then seal or open packets in
//! the caller's [`PacketBuf`] without allocating.
//!
//! Nonce and AAD construction lives here, not in the backends:
//!
//! | transform | nonce | AAD | integrity input |
//! |---|---|---|---|
//! | AES-GCM ([RFC 4106]), ChaCha20-Poly1305 ([RFC 7634]) | salt ‖ IV (4 + 8 bytes) | SPI ‖ seq, or SPI ‖ seq_hi ‖ seq_lo with ESN | – |
//! | AES-CCM ([RFC 4309]) | salt ‖ IV (3 + 8 bytes) | as AES-GCM ([RFC 4309 §5]) | – |
//! | AES-GMAC ([RFC 4543]) | salt ‖ IV | SPI ‖ \[seq_hi ‖\] seq_lo ‖ IV ‖ payload ‖ padding ‖ trailer | – |
//! | AES-CBC / NULL + HMAC | – | – | SPI ‖ seq_lo ‖ IV ‖ ciphertext \[‖ seq_hi\] ([RFC 4303 §2.2.1]) |
//! | AES-CTR ([RFC 3686]) + HMAC | counter block nonce ‖ IV ‖ 0x00000001 ([RFC 3686 §4]) | – | as AES-CBC |
//!
//! The AEAD and AES-CTR IV is the 64-bit sequence number in network byte order, which
//! is unique per key as [RFC 4106 §3.1], [RFC 4309 §3.1] and [RFC 3686 §3] require.
//! The CBC IV comes from the provider's [`SecureRandom`] ([RFC 3602 §2.1]:
//! unpredictable).
//!
//! [RFC 4303 §3.3]: https://www.rfc-editor.org/rfc/rfc4303#section-3.3
//! [§3.4]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4
//! [RFC 4303 §2.2.1]: https://www.rfc-editor.org/rfc/rfc4303#section-2.2.1
//! [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
//! [RFC 4106 §3.1]: https://www.rfc-editor.org/rfc/rfc4106#section-3.1
//! [RFC 4543]: https://www.rfc-editor.org/rfc/rfc4543
//! [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634
//! [RFC 3602 §2.1]: https://www.rfc-editor.org/rfc/rfc3602#section-2.1
//! [RFC 4309]: https://www.rfc-editor.org/rfc/rfc4309
//! [RFC 4309 §3.1]: https://www.rfc-editor.org/rfc/rfc4309#section-3.1
//! [RFC 4309 §5]: https://www.rfc-editor.org/rfc/rfc4309#section-5
//! [RFC 3686]: https://www.rfc-editor.org/rfc/rfc3686
//! [RFC 3686 §3]: https://www.rfc-editor.org/rfc/rfc3686#section-3
//! [RFC 3686 §4]: https://www.rfc-editor.org/rfc/rfc3686#section-4

use alloc::boxed::Box;
use core::fmt;

use ipsec_core::inbound::{self, Attempt, SeqFacts, Verifier};
use ipsec_core::seq::split;
use ipsec_core::{
    ChildSaParams, Esn, IpProto, KeyMaterial, Replay, ReplayError, ReplayWindow, SecurityProtocol,
    SeqCounter, Spi,
};
use ipsec_crypto::suites::{self, EncrDesc, EncrKind, IntegDesc};
use ipsec_crypto::{
    AeadKey, CipherKey, CryptoError, CryptoProvider, IntegId, IntegKey, SecureRandom,
};

use crate::trace;
use crate::wire::{EspHeader, EspLayout, EspPacket, ParseError, Trailer, HEADER_LEN, TRAILER_LEN};
use ipsec_core::PacketBuf;

/// The longest explicit IV of any supported transform.
pub const MAX_IV_LEN: usize = 16;
/// The longest ICV of any supported transform (HMAC-SHA2-512-256).
pub const MAX_ICV_LEN: usize = 32;
/// The longest salt of any supported transform.
pub const MAX_SALT_LEN: usize = 4;
/// Explicit IV length of the combined-mode transforms and of AES-CTR.
const AEAD_IV_LEN: usize = 8;
/// The longest AEAD nonce: a 4-byte salt and the IV (AES-CCM's is 3 + 8).
const AEAD_NONCE_LEN: usize = MAX_SALT_LEN + AEAD_IV_LEN;
/// The AES-CTR counter block (RFC 3686 §4): nonce, IV and block counter.
const CTR_BLOCK_LEN: usize = 16;

/// Bytes a seal adds in front of and behind the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Overhead {
    /// ESP header and IV.
    pub head: usize,
    /// TFC padding, padding, pad length, next header and ICV.
    pub tail: usize,
}

impl Overhead {
    /// `head + tail`.
    pub const fn total(&self) -> usize {
        self.head.saturating_add(self.tail)
    }
}

/// Why an SA could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaError {
    /// The provider has no implementation of this transform.
    #[error("transform {0} not supported by the provider")]
    Unsupported(&'static str),
    /// The transform ids in [`ChildSaParams`] name no known transform.
    #[error("unknown transform")]
    UnknownTransform,
    /// The [`ChildSaParams`] are for AH, not ESP.
    #[error("not an ESP SA")]
    NotEsp,
    /// An AEAD or GMAC transform was combined with an integrity transform
    /// ([RFC 4303 §3.2](https://www.rfc-editor.org/rfc/rfc4303#section-3.2)).
    #[error("combined-mode transform used with an integrity transform")]
    IntegrityWithAead,
    /// NULL encryption without integrity protects nothing (RFC 4303 §3.2, RFC 7296 §3.3).
    #[error("NULL encryption without integrity")]
    NoProtection,
    /// A key has the wrong length.
    #[error("{what} key has {got} bytes, expected {expected}")]
    KeyLength {
        /// "encr" or "integ".
        what: &'static str,
        /// The length the transform needs (for "encr": key and salt).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The replay window size is not 0 and not in 32..=4096.
    #[error("replay window: {0}")]
    ReplayWindow(ReplayError),
    /// Anti-replay was asked for on an SA without integrity protection, which cannot
    /// have it (RFC 4303 §3.4.3).
    #[error("anti-replay needs integrity")]
    ReplayWithoutIntegrity,
    /// The backend refused the key.
    #[error("key setup failed: {0}")]
    Crypto(CryptoError),
    /// A padding alignment that is not a power of two between the transform's own
    /// alignment and 256 ([`EspOutbound::set_padding_alignment`]).
    #[error("padding alignment {0}: not a power of two from the cipher's alignment to 256")]
    PaddingAlignment(usize),
}

/// Why [`EspOutbound::seal`] failed. The body is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sequence number would have to cycle: rekey the SA (RFC 4303 §3.3.3).
    #[error("sequence number space exhausted")]
    SequenceExhausted,
    /// The buffer has too little room; `head` and `tail` are the bytes needed.
    #[error("buffer needs {head} bytes of headroom and {tail} of tailroom")]
    InsufficientRoom {
        /// Headroom needed.
        head: usize,
        /// Tailroom needed.
        tail: usize,
    },
    /// The backend failed (for example the random source), or an explicit IV had the
    /// wrong length.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

impl SealError {
    /// A short `snake_case` name for counters and JSON.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::SequenceExhausted => "sequence_exhausted",
            Self::InsufficientRoom { .. } => "insufficient_room",
            Self::Crypto(_) => "crypto",
        }
    }
}

/// Why [`EspInbound::open`] refused a packet. These are for counters and logs; the
/// peer never learns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Too short for the transform, ciphertext not whole blocks, or a different SPI.
    #[error("malformed packet: {0}")]
    Malformed(ParseError),
    /// Refused by the anti-replay window (before or after verification).
    #[error("replay check: {0}")]
    Replay(ReplayError),
    /// The ICV or AEAD tag did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// Authentic, but the trailer is inconsistent or the padding is not 1, 2, 3, ...
    #[error("bad padding")]
    Padding,
    /// Authentic dummy packet (next header 59, RFC 4303 §2.6): drop it silently.
    #[error("dummy packet")]
    Dummy,
}

impl OpenError {
    /// A short `snake_case` name for counters and JSON: `malformed`, `replay`,
    /// `integrity`, `padding` or `dummy`.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Replay(_) => "replay",
            Self::Integrity => "integrity",
            Self::Padding => "padding",
            Self::Dummy => "dummy",
        }
    }
}

/// What [`EspInbound::open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The SPI.
    pub spi: Spi,
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// What the payload is (IPv4 or IPv6 in tunnel mode, the transport protocol in
    /// transport mode).
    pub next_header: IpProto,
    /// The padding length.
    pub pad_len: u8,
}

pub use ipsec_core::{ReplayGuard, ResyncCounter, ResyncPolicy};

enum Engine {
    /// AEAD (`gmac == false`) or GMAC (`gmac == true`).
    Aead {
        key: Box<dyn AeadKey>,
        /// The salt, big-endian in the low `salt_bits` bits: 4 bytes for AES-GCM,
        /// GMAC and ChaCha20-Poly1305 (RFC 4106 §4, RFC 4543 §4, RFC 7634 §2), 3 for
        /// AES-CCM (RFC 4309 §4).
        salt: u32,
        /// 32 or 24.
        salt_bits: u32,
        gmac: bool,
    },
    /// CBC, CTR or NULL encryption, with or without integrity.
    Block {
        key: Box<dyn CipherKey>,
        integ: Option<Box<dyn IntegKey>>,
        /// For AES-CTR, the nonce from the key material (RFC 3686 §5.1), big-endian;
        /// the cipher's IV is then the counter block (see [`Transform::cipher_iv`]).
        ctr_nonce: Option<u32>,
    },
}

/// The keyed transform of one direction.
struct Transform {
    engine: Engine,
    encr: &'static EncrDesc,
    integ: Option<&'static IntegDesc>,
    esn: bool,
    iv_len: usize,
    icv_len: usize,
    block_len: usize,
    /// The ciphertext length is a multiple of `align_mask + 1`: the least common
    /// multiple of the cipher block and 4 bytes, a power of two (checked in
    /// [`Transform::new`]), so padding is computed with a mask, not a division.
    align_mask: usize,
    /// ESP header and IV: the headroom every seal needs.
    head: usize,
}

/// Where the parts of one packet go: computed once per seal.
#[derive(Clone, Copy)]
struct Geometry {
    /// Zero bytes of TFC padding after the body.
    tfc: usize,
    /// Default padding bytes (1, 2, 3, ...) after the TFC padding.
    pad: usize,
    /// The room needed in front of and behind the body.
    overhead: Overhead,
}

/// The padding that takes `payload_len` bytes and the trailer up to the next multiple
/// of `mask + 1`, a power of two. Wrapping arithmetic is exact here, since the
/// alignment divides 2^64; no division on the per-packet path.
fn pad_len(payload_len: usize, mask: usize) -> usize {
    mask.wrapping_add(1)
        .wrapping_sub(payload_len.wrapping_add(TRAILER_LEN) & mask)
        & mask
}

fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a.max(1), b.max(1));
    while let Some(r) = x.checked_rem(y) {
        (x, y) = (y, r);
        if y == 0 {
            break;
        }
    }
    // x, the gcd, is at least 1 and divides a.max(1).
    a.max(1)
        .checked_div(x)
        .unwrap_or(1)
        .saturating_mul(b.max(1))
}

impl Transform {
    fn new(
        provider: &CryptoProvider,
        encr: &'static EncrDesc,
        integ: Option<&'static IntegDesc>,
        keys: &KeyMaterial,
        esn: bool,
    ) -> Result<Self, SaError> {
        let ek = keys.encr();
        let engine = match encr.kind {
            EncrKind::Aead | EncrKind::Gmac => {
                if integ.is_some() {
                    return Err(SaError::IntegrityWithAead);
                }
                if !keys.integ().is_empty() {
                    return Err(SaError::KeyLength {
                        what: "integ",
                        expected: 0,
                        got: keys.integ().len(),
                    });
                }
                let alg = provider
                    .aead_for(encr)
                    .ok_or(SaError::Unsupported(encr.name))?;
                if ek.len() != encr.keymat_len() {
                    return Err(SaError::KeyLength {
                        what: "encr",
                        expected: encr.keymat_len(),
                        got: ek.len(),
                    });
                }
                let (key, salt_bytes) = ek.split_at(encr.key_len());
                // Every combined-mode ESP transform has an 8-byte explicit IV and a
                // 4-byte salt (RFC 4106, 4543, 7634: a 12-byte nonce) or, for AES-CCM,
                // a 3-byte one (RFC 4309: an 11-byte nonce).
                let salt = match *salt_bytes {
                    [a, b, c] => u32::from_be_bytes([0, a, b, c]),
                    [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
                    _ => return Err(SaError::Unsupported(encr.name)),
                };
                let salt_len = salt_bytes.len();
                if encr.iv_len != AEAD_IV_LEN
                    || alg.nonce_len() != salt_len.saturating_add(AEAD_IV_LEN)
                    || alg.tag_len() != encr.icv_len
                    // GMAC with ESN borrows 4 bytes of the ICV slot (see `gmac_esn`).
                    || (encr.kind == EncrKind::Gmac && encr.icv_len < 4)
                    || encr.icv_len > MAX_ICV_LEN
                {
                    return Err(SaError::Unsupported(encr.name));
                }
                let key = alg.new_key(key).map_err(SaError::Crypto)?;
                Engine::Aead {
                    key,
                    salt,
                    // 3 or 4 bytes (matched above).
                    salt_bits: if salt_len == 3 { 24 } else { 32 },
                    gmac: encr.kind == EncrKind::Gmac,
                }
            }
            EncrKind::Cbc | EncrKind::Null | EncrKind::Ctr => {
                let alg = provider
                    .cipher(encr.id, encr.key_len())
                    .ok_or(SaError::Unsupported(encr.name))?;
                if ek.len() != encr.keymat_len() {
                    return Err(SaError::KeyLength {
                        what: "encr",
                        expected: encr.keymat_len(),
                        got: ek.len(),
                    });
                }
                let (cipher_key, ctr_nonce) = if encr.kind == EncrKind::Ctr {
                    // RFC 3686 §5.1: the key material is the AES key and a 4-byte
                    // nonce; the cipher takes the 16-byte counter block as its IV.
                    let (key, nonce) = ek
                        .split_at_checked(encr.key_len())
                        .ok_or(SaError::Unsupported(encr.name))?;
                    let nonce = <[u8; 4]>::try_from(nonce)
                        .map(u32::from_be_bytes)
                        .map_err(|_| SaError::Unsupported(encr.name))?;
                    if alg.iv_len() != CTR_BLOCK_LEN
                        || alg.block_len() != 1
                        || encr.iv_len != AEAD_IV_LEN
                    {
                        return Err(SaError::Unsupported(encr.name));
                    }
                    (key, Some(nonce))
                } else {
                    if alg.iv_len() != encr.iv_len
                        || alg.iv_len() > MAX_IV_LEN
                        || alg.block_len() == 0
                    {
                        return Err(SaError::Unsupported(encr.name));
                    }
                    (ek, None)
                };
                let key = alg.new_key(cipher_key).map_err(SaError::Crypto)?;
                let integ = match integ {
                    None if encr.kind == EncrKind::Null => return Err(SaError::NoProtection),
                    None => {
                        if !keys.integ().is_empty() {
                            return Err(SaError::KeyLength {
                                what: "integ",
                                expected: 0,
                                got: keys.integ().len(),
                            });
                        }
                        None
                    }
                    Some(d) => {
                        let ia = provider.integ(d.id).ok_or(SaError::Unsupported(d.name))?;
                        if keys.integ().len() != d.key_len {
                            return Err(SaError::KeyLength {
                                what: "integ",
                                expected: d.key_len,
                                got: keys.integ().len(),
                            });
                        }
                        if ia.icv_len() != d.icv_len || d.icv_len > MAX_ICV_LEN {
                            return Err(SaError::Unsupported(d.name));
                        }
                        Some(ia.new_key(keys.integ()).map_err(SaError::Crypto)?)
                    }
                };
                Engine::Block {
                    key,
                    integ,
                    ctr_nonce,
                }
            }
        };
        let (icv_len, block_len) = match &engine {
            Engine::Aead { .. } => (encr.icv_len, 1),
            Engine::Block { integ, .. } => (
                integ.as_ref().map_or(0, |i| i.icv_len()),
                encr.block_len.max(1),
            ),
        };
        let align = lcm(block_len, 4);
        if !align.is_power_of_two() || align > 256 {
            // Every cipher of the registry has a power-of-two block; the pad length
            // byte could not express more than 255 bytes of padding anyway.
            return Err(SaError::Unsupported(encr.name));
        }
        Ok(Self {
            engine,
            encr,
            integ,
            esn,
            iv_len: encr.iv_len,
            icv_len,
            block_len,
            align_mask: align.wrapping_sub(1),
            head: HEADER_LEN.saturating_add(encr.iv_len),
        })
    }

    fn has_integrity(&self) -> bool {
        match &self.engine {
            Engine::Aead { .. } => true,
            Engine::Block { integ, .. } => integ.is_some(),
        }
    }

    fn layout(&self) -> EspLayout {
        EspLayout {
            iv_len: self.iv_len,
            icv_len: self.icv_len,
            block_len: self.block_len,
        }
    }

    /// The layout of a sealed packet around a body of `body_len` bytes with TFC
    /// padding up to `tfc_target`, the ciphertext a multiple of `pad_mask + 1` (a power
    /// of two, at least the transform's own alignment).
    fn geometry(&self, body_len: usize, tfc_target: usize, pad_mask: usize) -> Geometry {
        let tfc = tfc_target.saturating_sub(body_len);
        let pad = pad_len(body_len.saturating_add(tfc), pad_mask);
        Geometry {
            tfc,
            pad,
            overhead: Overhead {
                head: self.head,
                tail: tfc
                    .saturating_add(pad)
                    .saturating_add(TRAILER_LEN)
                    .saturating_add(self.icv_len),
            },
        }
    }

    /// AAD for AEAD transforms: SPI ‖ seq_lo, or SPI ‖ seq_hi ‖ seq_lo with ESN
    /// (RFC 4106 §5), and its length. Built with wide stores (see [`Transform::nonce`]).
    fn aad(&self, spi: Spi, seq: u64) -> ([u8; 12], usize) {
        let (hi, lo) = split(seq);
        if self.esn {
            (wide_12((u64::from(spi.0) << 32) | u64::from(hi), lo), 12)
        } else {
            (wide_12((u64::from(spi.0) << 32) | u64::from(lo), 0), 8)
        }
    }

    /// salt ‖ IV, the 8-byte IV read from `b` at `iv_start`, with a salt of
    /// `salt_bits` (32 or 24) bits: the first 12 (or 11) bytes of the result.
    ///
    /// Written as one 8-byte and one 4-byte store, the way a backend reads a 12-byte
    /// nonce: a wide load of bytes written by several narrower stores just before
    /// defeats the CPU's store-to-load forwarding and stalls it for a dozen cycles,
    /// which at 64-byte packets is a measurable share of the whole seal.
    fn nonce(
        salt: u32,
        salt_bits: u32,
        b: &[u8],
        iv_start: usize,
    ) -> Result<[u8; AEAD_NONCE_LEN], CryptoError> {
        let iv = read_iv(b, iv_start)?;
        // salt ‖ IV ‖ zero padding, as 64 + 32 bits.
        let hi = u64::from(salt).wrapping_shl(64u32.wrapping_sub(salt_bits))
            | iv.wrapping_shr(salt_bits);
        let lo = iv.wrapping_shl(32u32.wrapping_sub(salt_bits));
        // The low 32 bits of `lo` are the IV's last bytes and the padding.
        Ok(wide_12(hi, split(lo).1))
    }

    /// The IV the cipher of a [`Engine::Block`] takes: for AES-CTR the counter block
    /// nonce ‖ IV ‖ 0x00000001 (RFC 3686 §4), else the explicit IV, read from `b` at
    /// `iv_start` into `out`.
    fn cipher_iv<'o>(
        &self,
        ctr_nonce: Option<u32>,
        b: &[u8],
        iv_start: usize,
        out: &'o mut [u8; MAX_IV_LEN],
    ) -> Result<&'o [u8], CryptoError> {
        match ctr_nonce {
            Some(nonce) => {
                let iv = read_iv(b, iv_start)?;
                let (iv_hi, iv_lo) = split(iv);
                let (x, y) = out.split_at_mut(8);
                x.copy_from_slice(&((u64::from(nonce) << 32) | u64::from(iv_hi)).to_be_bytes());
                y.copy_from_slice(&((u64::from(iv_lo) << 32) | 1).to_be_bytes());
                Ok(&out[..])
            }
            None => copy_out(b, iv_start, self.iv_len, out),
        }
    }

    /// Protects `b[hdr..icv_end]` in place. On entry the header (with `spi`), IV and
    /// plaintext (payload, padding, trailer) are in place from `hdr` to `ct_end`.
    fn protect(
        &self,
        b: &mut [u8],
        spi: Spi,
        hdr: usize,
        ct_end: usize,
        seq: u64,
    ) -> Result<(), CryptoError> {
        let iv_start = hdr.saturating_add(HEADER_LEN);
        let ct_start = iv_start.saturating_add(self.iv_len);
        match &self.engine {
            Engine::Aead {
                key,
                salt,
                salt_bits,
                gmac: false,
            } => {
                let nonce = Self::nonce(*salt, *salt_bits, b, iv_start)?;
                let nonce = nonce_prefix(&nonce, *salt_bits);
                let (aad, a) = self.aad(spi, seq);
                let (left, right) = b.split_at_mut(ct_end);
                let data = left.get_mut(ct_start..).ok_or(range_err())?;
                let tag = right.get_mut(..self.icv_len).ok_or(range_err())?;
                key.seal_detached(nonce, aad.get(..a).unwrap_or(&[]), data, tag)
            }
            Engine::Aead {
                key,
                salt,
                salt_bits,
                gmac: true,
            } => {
                let nonce = Self::nonce(*salt, *salt_bits, b, iv_start)?;
                let nonce = nonce_prefix(&nonce, *salt_bits);
                if self.esn {
                    let mut tag = [0u8; MAX_ICV_LEN];
                    let tag = tag.get_mut(..self.icv_len).ok_or(range_err())?;
                    gmac_esn(b, hdr, ct_end, split(seq).0, |aad| {
                        key.seal_detached(nonce, aad, &mut [], tag)
                    })?;
                    b.get_mut(ct_end..ct_end.saturating_add(self.icv_len))
                        .ok_or(range_err())?
                        .copy_from_slice(tag);
                    Ok(())
                } else {
                    // RFC 4543 §3.3: without ESN, the AAD is the packet from the SPI to
                    // the Next Header field, contiguous in the buffer.
                    let (left, right) = b.split_at_mut(ct_end);
                    let aad = left.get(hdr..).ok_or(range_err())?;
                    let tag = right.get_mut(..self.icv_len).ok_or(range_err())?;
                    key.seal_detached(nonce, aad, &mut [], tag)
                }
            }
            Engine::Block {
                key,
                integ,
                ctr_nonce,
            } => {
                let mut iv = [0u8; MAX_IV_LEN];
                let iv = self.cipher_iv(*ctr_nonce, b, iv_start, &mut iv)?;
                key.encrypt(iv, b.get_mut(ct_start..ct_end).ok_or(range_err())?)?;
                if let Some(integ) = integ {
                    let hi_bytes = split(seq).0.to_be_bytes();
                    let (left, right) = b.split_at_mut(ct_end);
                    let covered = left.get(hdr..).ok_or(range_err())?;
                    let icv = right.get_mut(..self.icv_len).ok_or(range_err())?;
                    // RFC 4303 §2.2.1: with ESN the high bits follow the packet in the
                    // ICV computation but are not sent.
                    if self.esn {
                        integ.compute(&[covered, &hi_bytes], icv)?;
                    } else {
                        integ.compute(&[covered], icv)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Verifies and decrypts `b[hdr..ct_end + icv_len]` (a packet of `spi`) in place.
    fn unprotect(
        &self,
        b: &mut [u8],
        spi: Spi,
        hdr: usize,
        ct_end: usize,
        seq: u64,
    ) -> Result<(), CryptoError> {
        let iv_start = hdr.saturating_add(HEADER_LEN);
        let ct_start = iv_start.saturating_add(self.iv_len);
        match &self.engine {
            Engine::Aead {
                key,
                salt,
                salt_bits,
                gmac: false,
            } => {
                let nonce = Self::nonce(*salt, *salt_bits, b, iv_start)?;
                let nonce = nonce_prefix(&nonce, *salt_bits);
                let (aad, a) = self.aad(spi, seq);
                let (left, right) = b.split_at_mut(ct_end);
                let data = left.get_mut(ct_start..).ok_or(range_err())?;
                let tag = right.get(..self.icv_len).ok_or(range_err())?;
                key.open_detached(nonce, aad.get(..a).unwrap_or(&[]), data, tag)
            }
            Engine::Aead {
                key,
                salt,
                salt_bits,
                gmac: true,
            } => {
                let nonce = Self::nonce(*salt, *salt_bits, b, iv_start)?;
                let nonce = nonce_prefix(&nonce, *salt_bits);
                let mut tag = [0u8; MAX_ICV_LEN];
                let tag = copy_out(b, ct_end, self.icv_len, &mut tag)?;
                if self.esn {
                    let r = gmac_esn(b, hdr, ct_end, split(seq).0, |aad| {
                        key.open_detached(nonce, aad, &mut [], tag)
                    });
                    // Put the ICV back where the shift overwrote it.
                    if let Some(slot) = b.get_mut(ct_end..ct_end.saturating_add(tag.len())) {
                        slot.copy_from_slice(tag);
                    }
                    r
                } else {
                    let aad = b.get(hdr..ct_end).ok_or(range_err())?;
                    key.open_detached(nonce, aad, &mut [], tag)
                }
            }
            Engine::Block {
                key,
                integ,
                ctr_nonce,
            } => {
                if let Some(integ) = integ {
                    let hi_bytes = split(seq).0.to_be_bytes();
                    let (left, right) = b.split_at(ct_end);
                    let covered = left.get(hdr..).ok_or(range_err())?;
                    let icv = right.get(..self.icv_len).ok_or(range_err())?;
                    if self.esn {
                        integ.verify(&[covered, &hi_bytes], icv)?;
                    } else {
                        integ.verify(&[covered], icv)?;
                    }
                }
                let mut iv = [0u8; MAX_IV_LEN];
                let iv = self.cipher_iv(*ctr_nonce, b, iv_start, &mut iv)?;
                key.decrypt(iv, b.get_mut(ct_start..ct_end).ok_or(range_err())?)
            }
        }
    }
}

fn range_err() -> CryptoError {
    CryptoError::length("data", 0, 0)
}

/// The 8-byte explicit IV at `b[at..]`, big-endian.
fn read_iv(b: &[u8], at: usize) -> Result<u64, CryptoError> {
    b.get(at..at.saturating_add(AEAD_IV_LEN))
        .and_then(|s| <[u8; AEAD_IV_LEN]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or(range_err())
}

/// The nonce of a salt of `salt_bits` bits: the first 12 bytes of `n`, or 11 for
/// AES-CCM's 3-byte salt.
fn nonce_prefix(n: &[u8; AEAD_NONCE_LEN], salt_bits: u32) -> &[u8] {
    if salt_bits == 24 {
        n.get(..AEAD_NONCE_LEN.saturating_sub(1)).unwrap_or(n)
    } else {
        n
    }
}

/// `a` then `b`, big-endian, as 12 bytes written with an 8-byte and a 4-byte store.
fn wide_12(a: u64, b: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    let (x, y) = out.split_at_mut(8);
    x.copy_from_slice(&a.to_be_bytes());
    y.copy_from_slice(&b.to_be_bytes());
    out
}

fn copy_out<'a>(
    b: &[u8],
    at: usize,
    len: usize,
    out: &'a mut [u8],
) -> Result<&'a [u8], CryptoError> {
    let src = b.get(at..at.saturating_add(len)).ok_or(range_err())?;
    let dst = out.get_mut(..len).ok_or(range_err())?;
    dst.copy_from_slice(src);
    Ok(dst)
}

/// GMAC with ESN: the AAD is SPI ‖ seq_hi ‖ seq_lo ‖ IV ‖ plaintext (RFC 4543 §3.3), but
/// seq_hi is not on the wire. Instead of copying the packet, shift everything after the
/// SPI four bytes to the right into the ICV slot, write seq_hi into the gap, run `f` over
/// the now contiguous AAD and shift back. The first four ICV bytes are clobbered; the
/// caller restores or rewrites them.
fn gmac_esn(
    b: &mut [u8],
    hdr: usize,
    ct_end: usize,
    seq_hi: u32,
    f: impl FnOnce(&[u8]) -> Result<(), CryptoError>,
) -> Result<(), CryptoError> {
    let spi_end = hdr.saturating_add(4);
    let shifted_end = ct_end.saturating_add(4);
    if spi_end > ct_end || shifted_end > b.len() {
        return Err(range_err());
    }
    b.copy_within(spi_end..ct_end, spi_end.saturating_add(4));
    b.get_mut(spi_end..spi_end.saturating_add(4))
        .ok_or(range_err())?
        .copy_from_slice(&seq_hi.to_be_bytes());
    let r = f(b.get(hdr..shifted_end).ok_or(range_err())?);
    b.copy_within(spi_end.saturating_add(4)..shifted_end, spi_end);
    r
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform")
            .field("encr", &self.encr.name)
            .field("integ", &self.integ.map(|i| i.name))
            .field("esn", &self.esn)
            .finish_non_exhaustive()
    }
}

fn descs_from_params(
    p: &ChildSaParams,
) -> Result<(&'static EncrDesc, Option<&'static IntegDesc>), SaError> {
    if p.protocol != SecurityProtocol::Esp {
        return Err(SaError::NotEsp);
    }
    let id = p.encr.ok_or(SaError::UnknownTransform)?;
    let encr = suites::encr(id, p.encr_key_bits).ok_or(SaError::UnknownTransform)?;
    let integ = if p.integ == IntegId::NONE {
        None
    } else {
        Some(suites::integ(p.integ).ok_or(SaError::UnknownTransform)?)
    };
    Ok((encr, integ))
}

/// The sending half of an ESP SA: keys, sequence counter and TFC setting.
pub struct EspOutbound {
    spi: Spi,
    xf: Transform,
    seq: SeqCounter,
    rng: &'static dyn SecureRandom,
    tfc_target: usize,
    /// The ciphertext is padded to a multiple of `pad_mask + 1` (see
    /// [`EspOutbound::set_padding_alignment`]).
    pad_mask: usize,
    /// A one-shot explicit IV for known-answer tests ([`EspOutbound::set_next_iv`]).
    next_iv: Option<[u8; MAX_IV_LEN]>,
}

impl fmt::Debug for EspOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspOutbound")
            .field("spi", &self.spi)
            .field("transform", &self.xf)
            .field("seq", &self.seq)
            .field("tfc_target", &self.tfc_target)
            .finish_non_exhaustive()
    }
}

impl EspOutbound {
    /// Sets up the sending side of an SA, with 64-bit extended sequence numbers when
    /// `esn` is [`Esn::On`] (a `bool` converts).
    ///
    /// `keys.encr()` is the encryption key followed by the salt for AEAD and GMAC
    /// transforms (4 bytes, 3 for AES-CCM) and by the 4-byte nonce for AES-CTR
    /// (RFC 3686 §5.1); `keys.integ()` the integrity key (empty for AEAD). `integ` must be
    /// `None` for AEAD and GMAC, and `Some` for NULL encryption. AES-CBC or AES-CTR
    /// without integrity (confidentiality only) is accepted, as RFC 4303 §3.2 allows,
    /// but RFC 8221 advises against it.
    ///
    /// # Errors
    /// [`SaError`] when the provider lacks a transform, the combination is invalid or a
    /// key has the wrong length.
    pub fn new(
        provider: &CryptoProvider,
        spi: Spi,
        encr: &'static EncrDesc,
        integ: Option<&'static IntegDesc>,
        keys: &KeyMaterial,
        esn: impl Into<Esn>,
    ) -> Result<Self, SaError> {
        let esn = esn.into().is_on();
        let xf = Transform::new(provider, encr, integ, keys, esn)?;
        Ok(Self {
            spi,
            pad_mask: xf.align_mask,
            xf,
            seq: SeqCounter::new(esn),
            rng: provider.secure_random,
            tfc_target: 0,
            next_iv: None,
        })
    }

    /// Sets up the sending side from what IKE negotiated: `outbound_spi`,
    /// `outbound_keys`, the transforms and ESN.
    ///
    /// # Errors
    /// As [`EspOutbound::new`], plus [`SaError::NotEsp`] and
    /// [`SaError::UnknownTransform`].
    pub fn from_params(provider: &CryptoProvider, params: &ChildSaParams) -> Result<Self, SaError> {
        let (encr, integ) = descs_from_params(params)?;
        Self::new(
            provider,
            params.outbound_spi,
            encr,
            integ,
            &params.outbound_keys,
            params.esn,
        )
    }

    /// The SPI written into every packet.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.xf.esn
    }

    /// The encryption transform.
    pub fn encr(&self) -> &'static EncrDesc {
        self.xf.encr
    }

    /// The integrity transform, if any.
    pub fn integ(&self) -> Option<&'static IntegDesc> {
        self.xf.integ
    }

    /// IV, ICV and block lengths of this SA.
    pub fn layout(&self) -> EspLayout {
        self.xf.layout()
    }

    /// The sequence counter (for SA export and lifetime checks).
    pub fn seq_counter(&self) -> SeqCounter {
        self.seq
    }

    /// Makes the next packet carry sequence number `next` (for SA import and
    /// known-answer tests). Reusing a number with the same key breaks AES-GCM and
    /// ChaCha20-Poly1305 completely: never move a live SA backwards.
    ///
    /// # Errors
    /// [`SealError::SequenceExhausted`] when `next` is 0 or beyond the counter's limit.
    pub fn set_next_seq(&mut self, next: u64) -> Result<(), SealError> {
        let limit = SeqCounter::new(self.xf.esn).limit();
        if next == 0 || next > limit {
            return Err(SealError::SequenceExhausted);
        }
        self.seq = SeqCounter::starting_after(next.saturating_sub(1), self.xf.esn);
        Ok(())
    }

    /// Pads every payload shorter than `target` bytes with zeros up to `target` before
    /// the ESP padding (traffic flow confidentiality, RFC 4303 §2.7); `None` switches it
    /// off. Enable it only where the receiver can find the payload's end by itself:
    /// tunnel mode, where the inner IP header carries the length.
    pub fn set_tfc_padding(&mut self, target: Option<usize>) {
        self.tfc_target = target.unwrap_or(0);
    }

    /// The TFC padding target, if set.
    pub fn tfc_padding(&self) -> Option<usize> {
        (self.tfc_target > 0).then_some(self.tfc_target)
    }

    /// Pads every packet's ciphertext (payload, padding and trailer) to a multiple of
    /// `align` bytes instead of the least the transform needs (4 bytes for the AEADs,
    /// the cipher block for CBC); `None` goes back to the least.
    ///
    /// RFC 4303 §2.4 lets a sender add up to 255 bytes of padding beyond what the
    /// cipher needs, and every receiver accepts it (the padding is still 1, 2, 3, ...).
    /// The reason to: some AEAD backends are much slower on a partial last block than
    /// on whole ones. With ring's AES-GCM, 16 makes a 64-byte packet's seal + open
    /// about 45 ns (about 17 %) cheaper, for at most 12 more bytes on the wire
    /// (docs/performance.md, "ESP data path"). It also hides the payload length to
    /// `align` bytes. [`EspOutbound::overhead`] includes it.
    ///
    /// # Errors
    /// [`SaError::PaddingAlignment`] unless `align` is a power of two from the
    /// transform's own alignment up to 256 (the Pad Length field holds at most 255).
    pub fn set_padding_alignment(&mut self, align: Option<usize>) -> Result<(), SaError> {
        let min = self.xf.align_mask.wrapping_add(1);
        let align = align.unwrap_or(min);
        if !align.is_power_of_two() || align < min || align > 256 {
            return Err(SaError::PaddingAlignment(align));
        }
        self.pad_mask = align.wrapping_sub(1);
        Ok(())
    }

    /// The alignment the ciphertext is padded to (see
    /// [`EspOutbound::set_padding_alignment`]).
    pub fn padding_alignment(&self) -> usize {
        self.pad_mask.wrapping_add(1)
    }

    /// The exact room [`EspOutbound::seal`] needs around a body of `body_len` bytes.
    pub fn overhead(&self, body_len: usize) -> Overhead {
        self.xf
            .geometry(body_len, self.tfc_target, self.pad_mask)
            .overhead
    }

    /// Seals the body in place into an ESP packet and returns its sequence number.
    ///
    /// In order: TFC padding, padding (1, 2, 3, ... to the cipher block and a 4-byte
    /// boundary) and trailer go into the tailroom; the body and trailer are encrypted in
    /// place, the ICV written behind them; SPI, sequence number and IV go into the
    /// headroom; the body then covers the whole ESP packet.
    ///
    /// # Errors
    /// [`SealError::InsufficientRoom`] (nothing changed, no sequence number used),
    /// [`SealError::SequenceExhausted`], [`SealError::Crypto`].
    pub fn seal<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        next_header: IpProto,
    ) -> Result<u64, SealError> {
        self.seal_impl(buf, next_header)
    }

    /// Seals a dummy packet (next header 59, RFC 4303 §2.6) whose payload is
    /// `payload_len` zero bytes starting at the body's start. The receiver
    /// authenticates and discards it. Combine with TFC padding to hide its size.
    ///
    /// # Errors
    /// As [`EspOutbound::seal`]; the room needed includes `payload_len`.
    pub fn seal_dummy<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        payload_len: usize,
    ) -> Result<u64, SealError> {
        let o = self.overhead(payload_len);
        let r = buf.body_range();
        let room_after_start = buf.buffer().len().saturating_sub(r.start);
        if r.start < o.head || room_after_start < payload_len.saturating_add(o.tail) {
            return Err(SealError::InsufficientRoom {
                head: o.head,
                tail: o.tail.saturating_add(payload_len),
            });
        }
        buf.set_cursors(r.start, r.start.saturating_add(payload_len));
        buf.body_mut().fill(0);
        self.seal_impl(buf, IpProto::NO_NEXT_HEADER)
    }

    /// Makes the next seal (through any path: [`EspOutbound::seal`], tunnel or
    /// transport mode) use the explicit IV `iv` instead of choosing one.
    ///
    /// **For known-answer tests only.** The IV must never repeat under one key (for
    /// AES-GCM and ChaCha20-Poly1305 a repeat reveals the authentication key) and must be
    /// unpredictable for AES-CBC; the normal path takes care of both.
    ///
    /// # Errors
    /// [`SealError::Crypto`] when `iv` does not have the transform's IV length.
    #[doc(hidden)]
    pub fn set_next_iv(&mut self, iv: &[u8]) -> Result<(), SealError> {
        let mut v = [0u8; MAX_IV_LEN];
        match v.get_mut(..iv.len()) {
            Some(d) if iv.len() == self.xf.iv_len => d.copy_from_slice(iv),
            _ => {
                return Err(SealError::Crypto(CryptoError::length(
                    "iv",
                    self.xf.iv_len,
                    iv.len(),
                )))
            }
        }
        self.next_iv = Some(v);
        Ok(())
    }

    /// Seals like [`EspOutbound::seal`] but with the explicit IV `iv`
    /// (see [`EspOutbound::set_next_iv`]). **For known-answer tests only.**
    ///
    /// # Errors
    /// As [`EspOutbound::seal`]; [`SealError::Crypto`] when `iv` has the wrong length.
    #[doc(hidden)]
    pub fn seal_with_iv<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        next_header: IpProto,
        iv: &[u8],
    ) -> Result<u64, SealError> {
        self.set_next_iv(iv)?;
        let r = self.seal_impl(buf, next_header);
        self.next_iv = None;
        r
    }

    /// Seals like [`EspOutbound::seal`], with the sequence number `seq` chosen by the
    /// caller instead of taken from this SA's counter, through a shared reference.
    ///
    /// This is for data planes that seal packets of one SA on several threads at once:
    /// they hand out sequence numbers themselves (an atomic counter) and call this
    /// without a lock. **The caller guarantees that `seq` is never used twice** with
    /// this SA's key: with AES-GCM, AES-CCM, AES-CTR and ChaCha20-Poly1305 the IV is the
    /// sequence number, and a repeat reveals the key stream (and for GCM the
    /// authentication key). The SA's own counter is not touched.
    ///
    /// # Errors
    /// [`SealError::SequenceExhausted`] when `seq` is 0 or beyond the limit (2^32 - 1
    /// without ESN), [`SealError::InsufficientRoom`] (nothing changed),
    /// [`SealError::Crypto`].
    pub fn seal_at<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        next_header: IpProto,
        seq: u64,
    ) -> Result<u64, SealError> {
        let r = if seq == 0 || seq > SeqCounter::new(self.xf.esn).limit() {
            Err(SealError::SequenceExhausted)
        } else {
            self.room_for(buf)
                .and_then(|g| self.seal_core(buf, next_header, seq, None, g))
        };
        self.sealed(r)
    }

    /// `r`, with an event when the seal failed.
    #[inline]
    fn sealed(&self, r: Result<u64, SealError>) -> Result<u64, SealError> {
        if let Err(e) = &r {
            trace::trace!(
                spi = %self.spi,
                reason = e.reason(),
                error = %e,
                "ESP packet not sealed"
            );
        }
        r
    }

    /// The geometry of sealing `buf`'s body, or the room it lacks.
    fn room_for<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &PacketBuf<B>,
    ) -> Result<Geometry, SealError> {
        let g = self
            .xf
            .geometry(buf.body_len(), self.tfc_target, self.pad_mask);
        let o = g.overhead;
        if buf.headroom() < o.head || buf.tailroom() < o.tail {
            return Err(SealError::InsufficientRoom {
                head: o.head,
                tail: o.tail,
            });
        }
        Ok(g)
    }

    fn seal_impl<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        next_header: IpProto,
    ) -> Result<u64, SealError> {
        // The room is checked before a sequence number is taken: a packet that does
        // not fit uses none.
        let r = self.room_for(buf).and_then(|g| {
            let seq = self.seq.next().map_err(|_| SealError::SequenceExhausted)?;
            let iv = self.next_iv.take();
            self.seal_core(buf, next_header, seq, iv, g)
        });
        self.sealed(r)
    }

    /// Seals with the room already checked by [`EspOutbound::room_for`] (`g`).
    fn seal_core<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        next_header: IpProto,
        seq: u64,
        explicit_iv: Option<[u8; MAX_IV_LEN]>,
        g: Geometry,
    ) -> Result<u64, SealError> {
        let xf = &self.xf;
        let err = SealError::InsufficientRoom {
            head: g.overhead.head,
            tail: g.overhead.tail,
        };
        let (b, start, end) = buf.raw_mut();
        let eff_end = end.saturating_add(g.tfc);
        let ct_end = eff_end.saturating_add(g.pad).saturating_add(TRAILER_LEN);
        let icv_end = ct_end.saturating_add(xf.icv_len);
        let hdr = start.saturating_sub(xf.head);
        let iv_start = hdr.saturating_add(HEADER_LEN);

        if g.tfc > 0 {
            b.get_mut(end..eff_end).ok_or(err)?.fill(0);
        }
        // `pad` < alignment <= 256 (checked in `Transform::new`): it fits the byte.
        let trailer = Trailer {
            pad_len: u8::try_from(g.pad).map_err(|_| err)?,
            next_header,
        };
        trailer
            .emit(b.get_mut(eff_end..ct_end).ok_or(err)?)
            .map_err(|_| err)?;
        EspHeader::write(self.spi, seq, b.get_mut(hdr..iv_start).ok_or(err)?).map_err(|_| err)?;
        let iv_slot = b.get_mut(iv_start..start).ok_or(err)?;
        match explicit_iv {
            Some(iv) => iv_slot.copy_from_slice(iv.get(..iv_slot.len()).unwrap_or(&[])),
            None => match xf.engine {
                // RFC 4106 §3.1, RFC 4309 §3.1, RFC 3686 §3: the IV must be unique per
                // key; the 64-bit sequence number is, and costs nothing.
                Engine::Aead { .. }
                | Engine::Block {
                    ctr_nonce: Some(_), ..
                } => {
                    if let Some(s) = iv_slot.get_mut(..8) {
                        s.copy_from_slice(&seq.to_be_bytes());
                    }
                }
                Engine::Block { .. } => {
                    if !iv_slot.is_empty() {
                        self.rng.fill(iv_slot).map_err(SealError::Crypto)?;
                    }
                }
            },
        }
        xf.protect(b, self.spi, hdr, ct_end, seq)
            .map_err(SealError::Crypto)?;
        buf.set_cursors(hdr, icv_end);
        Ok(seq)
    }
}

/// The receiving half of an ESP SA: keys and the anti-replay window.
///
/// `W` is where the window lives: [`ReplayWindow`] (the default) inside the SA, or
/// [`ExternalReplay`] when the caller keeps it (a SAD that opens one SA on several
/// threads, through [`EspInbound::open_with`]); the latter saves the window's 530
/// bytes per SA.
pub struct EspInbound<W = ReplayWindow> {
    spi: Spi,
    xf: Transform,
    window: W,
}

/// The window type of an [`EspInbound`] that keeps no anti-replay window of its own:
/// the caller passes one to every [`EspInbound::open_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExternalReplay;

impl<W: fmt::Debug> fmt::Debug for EspInbound<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspInbound")
            .field("spi", &self.spi)
            .field("transform", &self.xf)
            .field("window", &self.window)
            .finish()
    }
}

impl EspInbound<ExternalReplay> {
    /// Sets up the receiving side of an SA whose anti-replay window the caller keeps
    /// (see [`ExternalReplay`]); it opens only through [`EspInbound::open_with`]. Keys
    /// and transforms as in [`EspOutbound::new`].
    ///
    /// # Errors
    /// As [`EspOutbound::new`].
    pub fn with_external_replay(
        provider: &CryptoProvider,
        spi: Spi,
        encr: &'static EncrDesc,
        integ: Option<&'static IntegDesc>,
        keys: &KeyMaterial,
        esn: impl Into<Esn>,
    ) -> Result<Self, SaError> {
        let esn = esn.into().is_on();
        let xf = Transform::new(provider, encr, integ, keys, esn)?;
        Ok(Self {
            spi,
            xf,
            window: ExternalReplay,
        })
    }
}

impl EspInbound {
    /// Sets up the receiving side of an SA. `replay` is [`Replay::Window`] with a size
    /// in packets (32 to 4096), or [`Replay::Off`] (a `u32` converts: 0 is off). `esn`
    /// is [`Esn::On`] or [`Esn::Off`] (or a `bool`). Keys and transforms as in
    /// [`EspOutbound::new`].
    ///
    /// # Errors
    /// As [`EspOutbound::new`], plus [`SaError::ReplayWindow`] for a bad window size and
    /// [`SaError::ReplayWithoutIntegrity`] for anti-replay on a confidentiality-only SA.
    pub fn new(
        provider: &CryptoProvider,
        spi: Spi,
        encr: &'static EncrDesc,
        integ: Option<&'static IntegDesc>,
        keys: &KeyMaterial,
        esn: impl Into<Esn>,
        replay: impl Into<Replay>,
    ) -> Result<Self, SaError> {
        let (esn, replay_window) = (esn.into().is_on(), replay.into().window());
        let xf = Transform::new(provider, encr, integ, keys, esn)?;
        let window = if replay_window == 0 {
            ReplayWindow::disabled()
        } else {
            if !xf.has_integrity() {
                return Err(SaError::ReplayWithoutIntegrity);
            }
            ReplayWindow::new(replay_window).map_err(SaError::ReplayWindow)?
        };
        Ok(Self { spi, xf, window })
    }

    /// Sets up the receiving side from what IKE negotiated: `inbound_spi`,
    /// `inbound_keys`, the transforms, ESN and `replay_window`.
    ///
    /// # Errors
    /// As [`EspInbound::new`], plus [`SaError::NotEsp`] and [`SaError::UnknownTransform`].
    pub fn from_params(provider: &CryptoProvider, params: &ChildSaParams) -> Result<Self, SaError> {
        let (encr, integ) = descs_from_params(params)?;
        Self::new(
            provider,
            params.inbound_spi,
            encr,
            integ,
            &params.inbound_keys,
            params.esn,
            params.replay_window,
        )
    }

    /// The anti-replay window (for SA export).
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Replaces the anti-replay window (for SA import, e.g. from
    /// [`ReplayWindow::restore`]).
    pub fn set_replay_window(&mut self, window: ReplayWindow) {
        self.window = window;
    }

    /// Verifies and decrypts the ESP packet in the body in place with this SA's own
    /// anti-replay window, and shrinks the body to the inner payload (bare ESP: no IP
    /// header; see [`EspInbound::open_tunnel`] and [`EspInbound::open_transport`] for
    /// the framed packets).
    ///
    /// In order: parse → SPI check → anti-replay pre-check (with ESN high bits
    /// inferred, RFC 4303 Appendix A) → verify and decrypt → **only then** mark the
    /// window, so that forgeries never move it → padding check → shrink. The sequence
    /// between parse and padding check is the shared inbound core,
    /// [`ipsec_core::inbound`], which documents the ordering; with
    /// [`OpenOptions::resync`] the packet is a re-synchronization attempt (see there).
    ///
    /// # Errors
    /// [`OpenError`]. On [`OpenError::Malformed`] and [`OpenError::Replay`] before
    /// verification the buffer is untouched; after a failed verification the body's
    /// bytes are unspecified (after a failed re-synchronization: the packet as it was).
    /// The body range only changes on success.
    pub fn open<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        opts: OpenOptions<'_>,
    ) -> Result<Opened, OpenError> {
        let Self { spi, xf, window } = self;
        open_opts(*spi, xf, window, buf, opts)
    }
}

/// How an ESP packet is opened: normally ([`OpenOptions::new`], the default), or as an
/// ESN re-synchronization attempt ([`OpenOptions::resync`]). Every `open` entry point
/// of [`EspInbound`] takes one; the anti-replay window is chosen by the entry point
/// (`open*` use the SA's own, `open*_with` the caller's [`ReplayGuard`]).
#[derive(Default)]
pub struct OpenOptions<'s> {
    resync: Option<(&'s mut [u8], u32)>,
}

impl fmt::Debug for OpenOptions<'_> {
    // The scratch's length, not its bytes (a copy of a packet).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpenOptions");
        if let Some((scratch, max_tries)) = &self.resync {
            d.field("resync_scratch_len", &scratch.len())
                .field("resync_max_tries", max_tries);
        }
        d.finish()
    }
}

impl<'s> OpenOptions<'s> {
    /// A normal open.
    pub const fn new() -> Self {
        Self { resync: None }
    }

    /// Re-synchronize the ESN high half with this packet ([RFC 4303 Appendix A3.2]).
    ///
    /// Use it when the SA's [`ResyncCounter`] says so, with a packet that failed a
    /// normal open with [`OpenError::Integrity`]: the buffer must hold that packet as
    /// it arrived (a copy taken before opening, since a failed verification leaves the
    /// bytes unspecified). The packet is authenticated again with the high halves
    /// Seqh + 1, Seqh + 2, ..., Seqh + `max_tries` (at most
    /// [`ResyncPolicy::MAX_TRIES`]), where Seqh is the one the window infers; the
    /// inferred one itself is not tried again. `scratch` (at least as long as the ESP
    /// packet) holds a copy to restore the packet from between tries.
    ///
    /// Only a packet that authenticates changes the window: it is marked exactly as an
    /// accepted packet, which moves the window's top to its full sequence number.
    /// Without ESN nothing is tried ([`OpenError::Integrity`]). When no high half
    /// authenticates the packet the open fails with [`OpenError::Integrity`] and the
    /// body is the packet as it was; a `scratch` shorter than the packet is
    /// [`OpenError::Malformed`].
    ///
    /// [RFC 4303 Appendix A3.2]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.3.2
    pub fn resync(scratch: &'s mut [u8], max_tries: u32) -> Self {
        Self {
            resync: Some((scratch, max_tries)),
        }
    }

    /// Whether this is a re-synchronization attempt.
    pub const fn is_resync(&self) -> bool {
        self.resync.is_some()
    }
}

impl<W> EspInbound<W> {
    /// The SPI this SA receives on.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.xf.esn
    }

    /// The encryption transform.
    pub fn encr(&self) -> &'static EncrDesc {
        self.xf.encr
    }

    /// The integrity transform, if any.
    pub fn integ(&self) -> Option<&'static IntegDesc> {
        self.xf.integ
    }

    /// IV, ICV and block lengths of this SA.
    pub fn layout(&self) -> EspLayout {
        self.xf.layout()
    }

    /// Opens like [`EspInbound::open`], through a shared reference, with the
    /// anti-replay window kept by the caller in `replay` (this SA's own window is
    /// neither read nor changed). `replay` is asked before verification and marked only
    /// after it, exactly as in [`EspInbound::open`]; between the two nothing of `replay`
    /// is borrowed, so the caller may release a lock around it during the decryption.
    ///
    /// # Errors
    /// As [`EspInbound::open`].
    pub fn open_with<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
        &self,
        buf: &mut PacketBuf<B>,
        replay: &mut R,
        opts: OpenOptions<'_>,
    ) -> Result<Opened, OpenError> {
        open_opts(self.spi, &self.xf, replay, buf, opts)
    }
}

/// The normal path inline, the re-synchronization attempt out of line: a normal open
/// compiles to what it was before options existed.
#[inline]
fn open_opts<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
    my_spi: Spi,
    xf: &Transform,
    replay: &mut R,
    buf: &mut PacketBuf<B>,
    opts: OpenOptions<'_>,
) -> Result<Opened, OpenError> {
    let r = match opts.resync {
        None => open_impl(my_spi, xf, replay, buf, Attempt::Normal, None),
        Some((scratch, max_tries)) => open_resync(my_spi, xf, replay, buf, scratch, max_tries),
    };
    if let Err(e) = &r {
        // The header is not encrypted, so its sequence number is still there.
        trace::trace!(
            spi = %my_spi,
            seq = header_seq(buf.body()),
            reason = e.reason(),
            error = %e,
            "ESP packet dropped"
        );
    }
    r
}

/// The 32-bit sequence number field of the ESP header at the start of `esp`, for
/// events.
fn header_seq(esp: &[u8]) -> Option<u32> {
    let b = esp.get(4..8)?;
    <[u8; 4]>::try_from(b).ok().map(u32::from_be_bytes)
}

#[cold]
#[inline(never)]
fn open_resync<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
    my_spi: Spi,
    xf: &Transform,
    replay: &mut R,
    buf: &mut PacketBuf<B>,
    scratch: &mut [u8],
    max_tries: u32,
) -> Result<Opened, OpenError> {
    let r = open_impl(
        my_spi,
        xf,
        replay,
        buf,
        Attempt::Resync { max_tries },
        Some(scratch),
    );
    if let Ok(o) = &r {
        trace::debug!(spi = %my_spi, seq = o.seq, "ESP: ESN re-synchronized (RFC 4303 App. A3)");
    }
    r
}

#[inline]
/// Parses the ESP packet in the body and checks its SPI: its low sequence number and
/// ciphertext length.
fn parse_for_open<B: AsRef<[u8]> + AsMut<[u8]>>(
    my_spi: Spi,
    xf: &Transform,
    buf: &PacketBuf<B>,
) -> Result<(u32, usize), OpenError> {
    let (spi, seq_lo) = {
        let p = EspPacket::parse(buf.body()).map_err(OpenError::Malformed)?;
        (p.spi(), p.seq())
    };
    if spi != my_spi {
        return Err(OpenError::Malformed(ParseError::bad_value(0, "spi")));
    }
    let ct_len = xf
        .layout()
        .ciphertext_len(buf.body_len())
        .map_err(OpenError::Malformed)?;
    Ok((seq_lo, ct_len))
}

/// ESP's part of the shared inbound core ([`ipsec_core::inbound`]): the AEAD open or
/// ICV check and decryption of the packet at `b[start..end]`, and for a
/// re-synchronization the copy in `scratch` it is restored from between tries.
struct EspVerifier<'a> {
    xf: &'a Transform,
    spi: Spi,
    b: &'a mut [u8],
    start: usize,
    end: usize,
    ct_end: usize,
    scratch: Option<&'a mut [u8]>,
}

impl Verifier for EspVerifier<'_> {
    type Error = OpenError;

    #[inline]
    fn prepare(&mut self, attempt: Attempt) -> Result<(), OpenError> {
        if let Attempt::Resync { .. } = attempt {
            let len = self.end.saturating_sub(self.start);
            let backup = self.scratch.as_deref_mut().and_then(|s| s.get_mut(..len));
            let (Some(backup), Some(body)) = (backup, self.b.get(self.start..self.end)) else {
                return Err(OpenError::Malformed(ParseError::bad_value(0, "scratch")));
            };
            backup.copy_from_slice(body);
        }
        Ok(())
    }

    #[inline]
    fn verify(&mut self, seq: u64) -> bool {
        self.xf
            .unprotect(self.b, self.spi, self.start, self.ct_end, seq)
            .is_ok()
    }

    fn restore(&mut self) {
        let len = self.end.saturating_sub(self.start);
        let backup = self.scratch.as_deref().and_then(|s| s.get(..len));
        if let (Some(backup), Some(body)) = (backup, self.b.get_mut(self.start..self.end)) {
            body.copy_from_slice(backup);
        }
    }
}

/// Parse → SPI check → the shared inbound core (pre-check, verify and decrypt, mark;
/// or the re-synchronization loop with `scratch`) → trailer checks.
#[inline]
fn open_impl<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
    my_spi: Spi,
    xf: &Transform,
    replay: &mut R,
    buf: &mut PacketBuf<B>,
    attempt: Attempt,
    scratch: Option<&mut [u8]>,
) -> Result<Opened, OpenError> {
    let (low, ct_len) = parse_for_open(my_spi, xf, buf)?;
    let (b, start, end) = buf.raw_mut();
    let ct_start = start.saturating_add(HEADER_LEN).saturating_add(xf.iv_len);
    let ct_end = ct_start.saturating_add(ct_len);
    let mut v = EspVerifier {
        xf,
        spi: my_spi,
        b,
        start,
        end,
        ct_end,
        scratch,
    };
    let facts = SeqFacts { low, esn: xf.esn };
    let seq = inbound::open(replay, facts, attempt, &mut v)
        .map_err(|e| e.into_error(OpenError::Replay, OpenError::Integrity))?;
    finish_open(my_spi, buf, ct_start, ct_end, seq)
}

#[inline]
/// The checks after authentication: trailer, padding, dummy; then the body shrinks to
/// the payload.
fn finish_open<B: AsRef<[u8]> + AsMut<[u8]>>(
    spi: Spi,
    buf: &mut PacketBuf<B>,
    ct_start: usize,
    ct_end: usize,
    seq: u64,
) -> Result<Opened, OpenError> {
    let plaintext = buf
        .buffer()
        .get(ct_start..ct_end)
        .ok_or(OpenError::Padding)?;
    let (trailer, payload_len) = Trailer::parse(plaintext).map_err(|_| OpenError::Padding)?;
    if !trailer.padding_is_default(plaintext) {
        return Err(OpenError::Padding);
    }
    if trailer.next_header == IpProto::NO_NEXT_HEADER {
        return Err(OpenError::Dummy);
    }
    buf.set_cursors(ct_start, ct_start.saturating_add(payload_len));
    Ok(Opened {
        spi,
        seq,
        next_header: trailer.next_header,
        pad_len: trailer.pad_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcm_and_padding() {
        assert_eq!(lcm(1, 4), 4);
        assert_eq!(lcm(16, 4), 16);
        assert_eq!(lcm(8, 4), 8);
        assert_eq!(lcm(6, 4), 12);
    }

    #[test]
    fn reasons() {
        assert_eq!(OpenError::Integrity.reason(), "integrity");
        assert_eq!(OpenError::Replay(ReplayError::Duplicate).reason(), "replay");
        assert_eq!(
            OpenError::Malformed(ParseError::truncated(0, 8)).reason(),
            "malformed"
        );
        assert_eq!(OpenError::Padding.reason(), "padding");
        assert_eq!(OpenError::Dummy.reason(), "dummy");
        assert_eq!(SealError::SequenceExhausted.reason(), "sequence_exhausted");
    }
}
