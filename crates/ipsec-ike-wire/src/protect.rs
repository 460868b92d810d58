//! Protecting and opening SK payloads ([RFC 7296 §3.14], [RFC 5282]) through the
//! `ipsec-crypto` traits.
//!
//! ```text
//! +-------------+----------+----+------------------------------------+-----+-----+
//! | IKE header  | (plain   | SK | IV | inner payloads | pad | pad len |  ICV      |
//! | (28 bytes)  | payloads)| hdr|    |<--------- encrypted --------->|           |
//! +-------------+----------+----+------------------------------------+-----+-----+
//! |<----------------- AEAD associated data ------->|
//! |<------------------------ cipher + integ: ICV input ------------------->|
//! ```
//!
//! - **AEAD** (RFC 5282 §3, §5.1; RFC 7634 §3): the key material is the key followed by
//!   a salt (4 bytes for GCM and ChaCha20-Poly1305, 3 for CCM); the nonce is
//!   salt ‖ 8-byte explicit IV; the associated data is everything from the first byte of
//!   the IKE header to the last byte of the SK generic payload header. No padding is
//!   needed (the block size is 1).
//! - **Cipher + integrity** (RFC 7296 §3.14): a random IV of the cipher's block size,
//!   padding to the block size, then an ICV computed with SK_a over the whole message
//!   from the IKE header to the end of the ciphertext. The ICV is checked before
//!   anything is decrypted.
//! - **AES-CTR + integrity** (RFC 5930): as cipher + integrity, but SK_e is the AES
//!   key followed by a 4-byte nonce, the IV is 8 random bytes, the cipher runs from the
//!   counter block nonce ‖ IV ‖ 0x00000001 (RFC 3686 §4), and no padding is needed
//!   (the block size is 1).
//!
//! The AEAD and AES-CTR IVs must not repeat under one key; they are drawn at random,
//! so a repeat among n messages of one IKE SA has probability about n² / 2^65.
//!
//! Padding bytes are written as zero; their value is not checked on receipt ("MAY
//! contain any value chosen by the sender"). The pad length is checked after the
//! integrity check only.
//!
//! [RFC 7296 §3.14]: https://www.rfc-editor.org/rfc/rfc7296#section-3.14
//! [RFC 5282]: https://www.rfc-editor.org/rfc/rfc5282

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use ipsec_crypto::{
    AeadAlgorithm, AeadKey, CipherAlgorithm, CipherKey, CryptoError, EncrId, IntegAlgorithm,
    IntegKey, SecureRandom,
};

use crate::error::{ParseError, ParseErrorKind};
use crate::field::Writer;
use crate::header::{IkeHeaderRepr, IkePacket, HEADER_LEN};
use crate::message::{emit_payloads, first_type, payloads_len, Payload};
use crate::payload::{
    emit_generic_header, PayloadIter, RawPayload, GENERIC_HEADER_LEN, MAX_BODY_LEN,
};
use crate::registry::PayloadType;

/// The explicit IV of the IKEv2 AEAD transforms (RFC 5282 §3, RFC 7634 §3).
pub const AEAD_IV_LEN: usize = 8;
/// Longest salt an AEAD transform uses here.
const MAX_SALT_LEN: usize = 8;
/// Longest nonce an AEAD transform uses here.
const MAX_NONCE_LEN: usize = 16;
/// AES-CTR in IKEv2 (RFC 5930 §2, §3): the nonce at the end of SK_e, the explicit IV,
/// and the counter block the cipher takes.
const CTR_NONCE_LEN: usize = 4;
const CTR_IV_LEN: usize = 8;
const CTR_BLOCK_LEN: usize = 16;

/// Why a message could not be opened. Deliberately coarse: a wrong key, a forged
/// message and a corrupted one all give [`OpenError::Integrity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The message is malformed outside the protected data (or the protected data is
    /// too short to hold IV, pad length and ICV). Nothing was authenticated, so per
    /// [`crate::error_response`] it is not answered.
    #[error("malformed protected message: {0}")]
    Malformed(ParseError),
    /// The ICV or AEAD tag did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// The message is authentic but its pad length exceeds the decrypted data.
    #[error("invalid padding")]
    Padding,
}

impl OpenError {
    /// What a responder answers when opening `message` failed with this error, decided
    /// by [`crate::error_response`]: a malformed or forged message is unauthenticated
    /// (silence, RFC 7296 §2.21), an authentic message with a bad pad length is an
    /// authenticated syntax error (`INVALID_SYNTAX` if it was a request).
    pub fn error_response(&self, message: &[u8]) -> crate::ErrorResponse {
        match self {
            OpenError::Malformed(e) => {
                crate::error_response(message, e, crate::Trust::Unauthenticated)
            }
            OpenError::Integrity => crate::ErrorResponse::Silent,
            OpenError::Padding => crate::error_response(
                message,
                &ParseError::new(ParseErrorKind::BadValue("pad length"), message.len()),
                crate::Trust::Authenticated,
            ),
        }
    }
}

impl From<ParseError> for OpenError {
    fn from(e: ParseError) -> Self {
        OpenError::Malformed(e)
    }
}

/// Why a message could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The protected data does not fit the 16-bit Payload Length of the SK payload
    /// (fragment it instead, [`crate::frag`]).
    #[error("message too long for one SK payload")]
    TooLong,
    /// The IV source or the cipher failed.
    #[error("crypto failure: {0}")]
    Crypto(CryptoError),
}

impl From<CryptoError> for SealError {
    fn from(e: CryptoError) -> Self {
        SealError::Crypto(e)
    }
}

enum Transform {
    Aead {
        key: Box<dyn AeadKey>,
        salt: [u8; MAX_SALT_LEN],
        salt_len: usize,
        tag_len: usize,
    },
    CipherInteg {
        cipher: Box<dyn CipherKey>,
        block_len: usize,
        /// The IV in the payload (for AES-CTR the 8-byte explicit IV, not the counter
        /// block the cipher takes).
        iv_len: usize,
        integ: Box<dyn IntegKey>,
        icv_len: usize,
        /// For AES-CTR, the nonce from the end of SK_e (RFC 5930 §3).
        ctr_nonce: Option<[u8; CTR_NONCE_LEN]>,
    },
}

/// The keys that protect one direction of an IKE SA (SK_ei [+ SK_ai] or
/// SK_er [+ SK_ar]).
pub struct SkCrypter {
    transform: Transform,
}

impl fmt::Debug for SkCrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.transform {
            Transform::Aead { .. } => "aead",
            Transform::CipherInteg { .. } => "cipher+integ",
        };
        f.debug_struct("SkCrypter")
            .field("kind", &kind)
            .field("iv_len", &self.iv_len())
            .field("icv_len", &self.icv_len())
            .finish_non_exhaustive()
    }
}

impl SkCrypter {
    /// An AEAD transform. `key_and_salt` is SK_e as cut from the key schedule: the key
    /// followed by the salt (`alg.nonce_len() - 8` bytes).
    ///
    /// # Errors
    /// [`CryptoError::Length`] when `key_and_salt` has the wrong length, or the
    /// backend's key error.
    pub fn aead(alg: &dyn AeadAlgorithm, key_and_salt: &[u8]) -> Result<Self, CryptoError> {
        let nonce_len = alg.nonce_len();
        let salt_len = nonce_len
            .checked_sub(AEAD_IV_LEN)
            .filter(|s| *s <= MAX_SALT_LEN)
            .ok_or(CryptoError::length("nonce", AEAD_IV_LEN, nonce_len))?;
        let key_len = alg.key_len();
        let (key, salt_bytes) = key_and_salt
            .split_at_checked(key_len)
            .filter(|(_, s)| s.len() == salt_len)
            .ok_or(CryptoError::length(
                "key",
                key_len.saturating_add(salt_len),
                key_and_salt.len(),
            ))?;
        let mut salt = [0u8; MAX_SALT_LEN];
        salt.get_mut(..salt_len)
            .ok_or(CryptoError::Unsupported)?
            .copy_from_slice(salt_bytes);
        Ok(SkCrypter {
            transform: Transform::Aead {
                key: alg.new_key(key)?,
                salt,
                salt_len,
                tag_len: alg.tag_len(),
            },
        })
    }

    /// A cipher with a separate integrity transform: `encr_key` is SK_e, `integ_key` SK_a.
    /// For AES-CTR (`ENCR_AES_CTR`, RFC 5930 §3) SK_e is the AES key followed by the
    /// 4-byte nonce, and the cipher must take the 16-byte counter block as its IV
    /// ([`CipherAlgorithm`]).
    ///
    /// # Errors
    /// The backends' key errors, a length error for an AES-CTR SK_e without its nonce,
    /// or [`CryptoError::Unsupported`] for an ICV longer than 64 bytes or a block
    /// length of 0.
    pub fn cipher_integ(
        cipher: &dyn CipherAlgorithm,
        encr_key: &[u8],
        integ: &dyn IntegAlgorithm,
        integ_key: &[u8],
    ) -> Result<Self, CryptoError> {
        let block_len = cipher.block_len();
        let icv_len = integ.icv_len();
        if block_len == 0 || block_len > 255 || icv_len > 64 {
            return Err(CryptoError::Unsupported);
        }
        let (key, ctr_nonce, iv_len) = if cipher.id() == EncrId::ENCR_AES_CTR {
            if cipher.iv_len() != CTR_BLOCK_LEN {
                return Err(CryptoError::Unsupported);
            }
            let want = cipher.key_len().saturating_add(CTR_NONCE_LEN);
            let (key, nonce) = encr_key
                .split_at_checked(cipher.key_len())
                .and_then(|(k, n)| Some((k, <[u8; CTR_NONCE_LEN]>::try_from(n).ok()?)))
                .ok_or(CryptoError::length("key", want, encr_key.len()))?;
            (key, Some(nonce), CTR_IV_LEN)
        } else {
            (encr_key, None, cipher.iv_len())
        };
        Ok(SkCrypter {
            transform: Transform::CipherInteg {
                cipher: cipher.new_key(key)?,
                block_len,
                iv_len,
                integ: integ.new_key(integ_key)?,
                icv_len,
                ctr_nonce,
            },
        })
    }

    /// Length of the IV in each protected payload.
    pub fn iv_len(&self) -> usize {
        match &self.transform {
            Transform::Aead { .. } => AEAD_IV_LEN,
            Transform::CipherInteg { iv_len, .. } => *iv_len,
        }
    }

    /// Length of the ICV (or AEAD tag).
    pub fn icv_len(&self) -> usize {
        match &self.transform {
            Transform::Aead { tag_len, .. } => *tag_len,
            Transform::CipherInteg { icv_len, .. } => *icv_len,
        }
    }

    /// The block size the encrypted data is padded to (1 for AEAD).
    pub fn block_len(&self) -> usize {
        match &self.transform {
            Transform::Aead { .. } => 1,
            Transform::CipherInteg { block_len, .. } => *block_len,
        }
    }

    /// Padding bytes needed after `inner_len` bytes of payloads.
    fn pad_len(&self, inner_len: usize) -> usize {
        let b = self.block_len().max(1);
        let rem = inner_len.saturating_add(1).checked_rem(b).unwrap_or(0);
        if rem == 0 {
            0
        } else {
            b.saturating_sub(rem)
        }
    }

    /// Length of the protected data (IV, encrypted data with padding and pad length,
    /// ICV) for `inner_len` bytes of inner payloads.
    pub fn protected_len(&self, inner_len: usize) -> usize {
        self.iv_len()
            .saturating_add(inner_len)
            .saturating_add(self.pad_len(inner_len))
            .saturating_add(1)
            .saturating_add(self.icv_len())
    }

    /// The largest inner length whose protected data fits in `room` bytes.
    pub fn max_inner_len(&self, room: usize) -> Option<usize> {
        let b = self.block_len().max(1);
        let ct_room = room
            .checked_sub(self.iv_len())?
            .checked_sub(self.icv_len())?;
        let ct = ct_room.checked_div(b)?.checked_mul(b)?;
        ct.checked_sub(1)
    }

    /// Encrypts and authenticates in place. `message[aad_end..]` must hold
    /// IV (to be filled) ‖ inner ‖ room for padding and pad length ‖ room for the ICV,
    /// with `inner_len` inner bytes already in place after the IV.
    pub(crate) fn seal_tail(
        &self,
        message: &mut [u8],
        aad_end: usize,
        inner_len: usize,
        rng: &dyn SecureRandom,
    ) -> Result<(), SealError> {
        let pad = self.pad_len(inner_len);
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let bad = SealError::Crypto(CryptoError::length("output", 0, message.len()));
        let (aad, tail) = message.split_at_mut_checked(aad_end).ok_or(bad)?;
        let (iv, rest) = tail.split_at_mut_checked(iv_len).ok_or(bad)?;
        let ct_len = inner_len.saturating_add(pad).saturating_add(1);
        let (ct, icv) = rest.split_at_mut_checked(ct_len).ok_or(bad)?;
        if icv.len() != icv_len {
            return Err(bad);
        }
        {
            let (_, padding) = ct.split_at_mut_checked(inner_len).ok_or(bad)?;
            let mut w = Writer::new(padding);
            w.zeros(pad);
            w.u8(u8::try_from(pad).map_err(|_| bad)?);
        }
        rng.fill(iv)?;
        match &self.transform {
            Transform::Aead {
                key,
                salt,
                salt_len,
                ..
            } => {
                let nonce = make_nonce(salt, *salt_len, iv).ok_or(bad)?;
                let nonce = nonce.get(..salt_len.saturating_add(iv_len)).ok_or(bad)?;
                key.seal_detached(nonce, aad, ct, icv)?;
            }
            Transform::CipherInteg {
                cipher,
                integ,
                ctr_nonce,
                ..
            } => {
                let mut block = [0u8; CTR_BLOCK_LEN];
                cipher.encrypt(cipher_iv(*ctr_nonce, iv, &mut block).ok_or(bad)?, ct)?;
                integ.compute(&[aad, iv, ct], icv)?;
            }
        }
        Ok(())
    }

    /// Verifies and decrypts `message[aad_end..]` (IV ‖ ciphertext ‖ ICV) in place and
    /// returns the range of the inner payloads in `message`.
    pub(crate) fn open_tail(
        &self,
        message: &mut [u8],
        aad_end: usize,
    ) -> Result<Range<usize>, OpenError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let total = message.len();
        let short = |needed: usize| {
            OpenError::Malformed(ParseError::new(ParseErrorKind::Truncated { needed }, total))
        };
        let min = iv_len.saturating_add(1).saturating_add(icv_len);
        let avail = total.saturating_sub(aad_end);
        if avail < min {
            return Err(short(min.saturating_sub(avail)));
        }
        let (aad, tail) = message.split_at_mut_checked(aad_end).ok_or(short(1))?;
        let (iv, rest) = tail.split_at_mut_checked(iv_len).ok_or(short(1))?;
        let ct_len = rest.len().saturating_sub(icv_len);
        let (ct, icv) = rest.split_at_mut_checked(ct_len).ok_or(short(1))?;
        match &self.transform {
            Transform::Aead {
                key,
                salt,
                salt_len,
                ..
            } => {
                let nonce = make_nonce(salt, *salt_len, iv).ok_or(OpenError::Integrity)?;
                let nonce = nonce
                    .get(..salt_len.saturating_add(iv_len))
                    .ok_or(OpenError::Integrity)?;
                key.open_detached(nonce, aad, ct, icv)
                    .map_err(|_| OpenError::Integrity)?;
            }
            Transform::CipherInteg {
                cipher,
                integ,
                block_len,
                ctr_nonce,
                ..
            } => {
                // Integrity first, over header ‖ ... ‖ IV ‖ ciphertext; decrypt only after.
                integ
                    .verify(&[aad, iv, ct], icv)
                    .map_err(|_| OpenError::Integrity)?;
                if ct.len().checked_rem(*block_len) != Some(0) {
                    // Authentic but not a whole number of blocks: the peer is broken.
                    return Err(OpenError::Padding);
                }
                let mut block = [0u8; CTR_BLOCK_LEN];
                let iv = cipher_iv(*ctr_nonce, iv, &mut block).ok_or(OpenError::Integrity)?;
                cipher.decrypt(iv, ct).map_err(|_| OpenError::Integrity)?;
            }
        }
        let pad = usize::from(ct.last().copied().ok_or(OpenError::Padding)?);
        let inner_len = ct_len
            .checked_sub(pad)
            .and_then(|n| n.checked_sub(1))
            .ok_or(OpenError::Padding)?;
        let start = aad_end.saturating_add(iv_len);
        Ok(start..start.saturating_add(inner_len))
    }
}

/// The IV the cipher takes: the payload's IV, or for AES-CTR the counter block
/// nonce ‖ IV ‖ 0x00000001 (RFC 5930 §2, RFC 3686 §4) built in `block`.
fn cipher_iv<'a>(
    ctr_nonce: Option<[u8; CTR_NONCE_LEN]>,
    iv: &'a [u8],
    block: &'a mut [u8; CTR_BLOCK_LEN],
) -> Option<&'a [u8]> {
    let Some(nonce) = ctr_nonce else {
        return Some(iv);
    };
    let (n, rest) = block.split_at_mut(CTR_NONCE_LEN);
    n.copy_from_slice(&nonce);
    let (i, counter) = rest.split_at_mut(CTR_IV_LEN);
    i.copy_from_slice(iv.get(..CTR_IV_LEN)?);
    counter.copy_from_slice(&1u32.to_be_bytes());
    Some(&block[..])
}

fn make_nonce(
    salt: &[u8; MAX_SALT_LEN],
    salt_len: usize,
    iv: &[u8],
) -> Option<[u8; MAX_NONCE_LEN]> {
    let mut n = [0u8; MAX_NONCE_LEN];
    let (s, rest) = n.split_at_mut_checked(salt_len)?;
    s.copy_from_slice(salt.get(..salt_len)?);
    rest.get_mut(..iv.len())?.copy_from_slice(iv);
    Some(n)
}

/// The keys of both directions of an IKE SA. Which one applies follows from the
/// Initiator flag of the message: messages sent by the original initiator use SK_ei/SK_ai,
/// those sent by the original responder SK_er/SK_ar (RFC 7296 §2.14).
#[derive(Debug)]
pub struct SkKeys {
    /// Protects messages sent by the original initiator (I flag set).
    pub initiator: SkCrypter,
    /// Protects messages sent by the original responder (I flag clear).
    pub responder: SkCrypter,
}

impl SkKeys {
    /// Keys for an AEAD transform: SK_ei and SK_er, each key ‖ salt.
    ///
    /// # Errors
    /// See [`SkCrypter::aead`].
    pub fn aead(alg: &dyn AeadAlgorithm, sk_ei: &[u8], sk_er: &[u8]) -> Result<Self, CryptoError> {
        Ok(SkKeys {
            initiator: SkCrypter::aead(alg, sk_ei)?,
            responder: SkCrypter::aead(alg, sk_er)?,
        })
    }

    /// Keys for a cipher + integrity transform.
    ///
    /// # Errors
    /// See [`SkCrypter::cipher_integ`].
    pub fn cipher_integ(
        cipher: &dyn CipherAlgorithm,
        integ: &dyn IntegAlgorithm,
        sk_ei: &[u8],
        sk_ai: &[u8],
        sk_er: &[u8],
        sk_ar: &[u8],
    ) -> Result<Self, CryptoError> {
        Ok(SkKeys {
            initiator: SkCrypter::cipher_integ(cipher, sk_ei, integ, sk_ai)?,
            responder: SkCrypter::cipher_integ(cipher, sk_er, integ, sk_ar)?,
        })
    }

    /// The keys for a message with these header flags.
    pub fn for_header(&self, header: &IkeHeaderRepr) -> &SkCrypter {
        if header.flags.is_initiator() {
            &self.initiator
        } else {
            &self.responder
        }
    }

    /// Seals with the keys of the direction `header`'s I flag names. See [`seal`].
    ///
    /// # Errors
    /// See [`seal`].
    pub fn seal(
        &self,
        header: &IkeHeaderRepr,
        first_inner: PayloadType,
        inner: &[u8],
        rng: &dyn SecureRandom,
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        seal(
            self.for_header(header),
            header,
            first_inner,
            inner,
            rng,
            out,
        )
    }

    /// Opens with the keys of the direction the message's I flag names. See [`open`].
    ///
    /// # Errors
    /// See [`open`].
    pub fn open<'m>(&self, message: &'m mut [u8]) -> Result<Opened<'m>, OpenError> {
        let header = IkeHeaderRepr::parse(&IkePacket::parse(&*message)?);
        open(self.for_header(&header), message)
    }
}

/// Builds a whole protected message: the IKE header (Next Payload SK, Length set), one
/// SK payload whose Next Payload is `first_inner`, and `inner` (an emitted payload
/// chain) encrypted in it, with a fresh IV from `rng`. `out` is cleared first.
///
/// # Errors
/// [`SealError::TooLong`] when the SK payload would exceed 65535 bytes,
/// [`SealError::Crypto`] when the IV source or the backend fails.
pub fn seal(
    crypter: &SkCrypter,
    header: &IkeHeaderRepr,
    first_inner: PayloadType,
    inner: &[u8],
    rng: &dyn SecureRandom,
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    let body_len = crypter.protected_len(inner.len());
    if body_len > MAX_BODY_LEN {
        return Err(SealError::TooLong);
    }
    let aad_end = HEADER_LEN.saturating_add(GENERIC_HEADER_LEN);
    let total = aad_end.saturating_add(body_len);
    out.clear();
    out.resize(total, 0);
    let (h, rest) = out.split_at_mut(HEADER_LEN);
    header.emit(
        PayloadType::SK,
        u32::try_from(total).map_err(|_| SealError::TooLong)?,
        h,
    );
    let mut w = Writer::new(rest);
    emit_generic_header(&mut w, first_inner, false, body_len);
    w.zeros(crypter.iv_len());
    w.put(inner);
    crypter.seal_tail(out, aad_end, inner.len(), rng)
}

/// Like [`seal`], emitting the inner payload reprs first.
///
/// # Errors
/// See [`seal`].
pub fn seal_payloads(
    crypter: &SkCrypter,
    header: &IkeHeaderRepr,
    inner: &[Payload<'_>],
    rng: &dyn SecureRandom,
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    let mut chain = alloc::vec![0; payloads_len(inner)];
    emit_payloads(inner, &mut chain);
    seal(crypter, header, first_type(inner), &chain, rng, out)
}

/// An opened message: its header and the decrypted inner payload chain (in the
/// message buffer).
#[derive(Debug)]
pub struct Opened<'m> {
    /// The IKE header.
    pub header: IkeHeaderRepr,
    /// Payloads before the SK payload (rare; not integrity protected by themselves, but
    /// covered by the ICV / AAD).
    pub plain_len: usize,
    /// Type of the first inner payload.
    pub first_inner: PayloadType,
    /// The inner payload chain.
    pub inner: &'m [u8],
}

impl<'m> Opened<'m> {
    /// Iterates over the inner payloads.
    pub fn payloads(&self) -> PayloadIter<'m> {
        PayloadIter::new(self.first_inner, self.inner)
    }

    /// Parses the inner payloads. Errors found here are authenticated: answer them per
    /// [`crate::error_response`] with [`crate::Trust::Authenticated`].
    ///
    /// # Errors
    /// The first chain or payload defect, offsets relative to the inner chain.
    pub fn parse_payloads(&self) -> Result<Vec<Payload<'m>>, ParseError> {
        crate::message::parse_payloads(self.first_inner, self.inner)
    }
}

/// Finds the last payload of a message, which must be of type `want`.
pub(crate) fn last_payload<'a>(
    message: &'a [u8],
    want: PayloadType,
) -> Result<(IkeHeaderRepr, RawPayload<'a>), ParseError> {
    let packet = IkePacket::parse(message)?;
    let header = IkeHeaderRepr::parse(&packet);
    let chain = message.get(HEADER_LEN..).unwrap_or(&[]);
    let mut last = None;
    for p in PayloadIter::with_offset(packet.next_payload(), chain, HEADER_LEN) {
        last = Some(p?);
    }
    match last {
        Some(raw) if raw.payload_type == want => Ok((header, raw)),
        _ => Err(ParseError::new(
            ParseErrorKind::BadValue("no encrypted payload"),
            HEADER_LEN,
        )),
    }
}

/// Verifies and decrypts a message whose last payload is SK, in place, and returns the
/// inner payload chain. Use the keys of the sender's direction.
///
/// # Errors
/// [`OpenError::Malformed`] for defects outside the protected data,
/// [`OpenError::Integrity`] when the ICV or tag does not verify, [`OpenError::Padding`]
/// for an authentic message with an impossible pad length.
pub fn open<'m>(crypter: &SkCrypter, message: &'m mut [u8]) -> Result<Opened<'m>, OpenError> {
    let (header, raw) = last_payload(message, PayloadType::SK)?;
    let first_inner = raw.next_payload;
    let aad_end = raw.body_offset;
    let plain_len = aad_end
        .saturating_sub(HEADER_LEN)
        .saturating_sub(GENERIC_HEADER_LEN);
    let range = crypter.open_tail(message, aad_end)?;
    let inner: &'m [u8] = message.get(range).unwrap_or(&[]);
    Ok(Opened {
        header,
        plain_len,
        first_inner,
        inner,
    })
}
