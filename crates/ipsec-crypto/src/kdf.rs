//! The IKEv2 key schedule (RFC 7296 §2.13, §2.14, §2.17, §2.18), built once on the
//! [`PrfAlgorithm`] trait so that every backend shares it.
//!
//! ```text
//! SKEYSEED = prf(Ni | Nr, g^ir)
//! {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//! KEYMAT = prf+(SK_d, Ni | Nr)                    (Child SA without PFS, §2.17)
//! KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)       (Child SA with PFS, §2.17)
//! SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (rekeyed IKE SA, §2.18)
//! ```

use alloc::vec::Vec;

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use crate::traits::PrfAlgorithm;

/// `prf(key, parts...)`.
pub fn prf(
    alg: &dyn PrfAlgorithm,
    key: &[u8],
    parts: &[&[u8]],
) -> Result<SecretBytes, CryptoError> {
    let k = alg.new_key(key)?;
    let mut out = SecretBytes::zeroed(alg.output_len());
    k.compute(parts, out.expose_mut())?;
    Ok(out)
}

/// `prf+(key, seed)` truncated to `len` bytes (RFC 7296 §2.13):
/// `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`. At most 255 blocks can be
/// produced; asking for more is a length error.
pub fn prf_plus(
    alg: &dyn PrfAlgorithm,
    key: &[u8],
    seed: &[&[u8]],
    len: usize,
) -> Result<SecretBytes, CryptoError> {
    let n = alg.output_len();
    if n == 0 || len > 255 * n {
        return Err(CryptoError::length("output", 255 * n, len));
    }
    let k = alg.new_key(key)?;
    let mut out = SecretBytes::zeroed(len.div_ceil(n) * n);
    let mut prev = SecretBytes::zeroed(n);
    for (i, chunk) in out.expose_mut().chunks_mut(n).enumerate() {
        let counter = [(i + 1) as u8];
        let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
        if i > 0 {
            parts.push(prev.expose());
        }
        parts.extend_from_slice(seed);
        parts.push(&counter);
        k.compute(&parts, chunk)?;
        drop(parts);
        prev.expose_mut().copy_from_slice(chunk);
    }
    let mut v = SecretBytes::zeroed(len);
    v.expose_mut()
        .copy_from_slice(out.expose().get(..len).unwrap_or(&[]));
    Ok(v)
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 §2.14).
pub fn skeyseed(
    alg: &dyn PrfAlgorithm,
    ni: &[u8],
    nr: &[u8],
    g_ir: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let mut key = SecretBytes::zeroed(ni.len() + nr.len());
    let (a, b) = key.expose_mut().split_at_mut(ni.len());
    a.copy_from_slice(ni);
    b.copy_from_slice(nr);
    prf(alg, key.expose(), &[g_ir])
}

/// The SKEYSEED of a rekeyed IKE SA: `prf(SK_d (old), g^ir (new) | Ni | Nr)`
/// (RFC 7296 §2.18), with the nonces of the CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    alg: &dyn PrfAlgorithm,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Result<SecretBytes, CryptoError> {
    prf(alg, old_sk_d, &[g_ir_new, ni, nr])
}

/// Lengths of the IKE SA keys (RFC 7296 §2.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeKeyLengths {
    /// SK_d, SK_pi and SK_pr: the PRF's preferred key length.
    pub prf_key: usize,
    /// SK_ai and SK_ar: the integrity key length (0 with AEAD).
    pub integ_key: usize,
    /// SK_ei and SK_er: the encryption key length, including any salt.
    pub encr_key: usize,
}

impl IkeKeyLengths {
    /// The total length of the seven keys.
    pub const fn total(&self) -> usize {
        3 * self.prf_key + 2 * self.integ_key + 2 * self.encr_key
    }
}

/// The seven keys of an IKE SA.
#[derive(Debug)]
pub struct IkeKeys {
    /// For deriving Child SA keys.
    pub sk_d: SecretBytes,
    /// Integrity, initiator to responder.
    pub sk_ai: SecretBytes,
    /// Integrity, responder to initiator.
    pub sk_ar: SecretBytes,
    /// Encryption, initiator to responder.
    pub sk_ei: SecretBytes,
    /// Encryption, responder to initiator.
    pub sk_er: SecretBytes,
    /// The initiator's AUTH payload key.
    pub sk_pi: SecretBytes,
    /// The responder's AUTH payload key.
    pub sk_pr: SecretBytes,
}

/// Splits `len` consecutive pieces off `src`, in order.
fn split_keys<const N: usize>(
    src: &SecretBytes,
    lens: [usize; N],
) -> Result<[SecretBytes; N], CryptoError> {
    let mut at = 0;
    let mut err = None;
    let out = lens.map(|l| {
        let s = src.slice(at, l);
        at += l;
        s.unwrap_or_else(|| {
            err = Some(CryptoError::length("output", at, src.len()));
            SecretBytes::default()
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Derives the IKE SA keys from SKEYSEED (RFC 7296 §2.14). `spi_i` and `spi_r` are the
/// 8-byte IKE SPIs.
pub fn ike_keys(
    alg: &dyn PrfAlgorithm,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    lens: IkeKeyLengths,
) -> Result<IkeKeys, CryptoError> {
    let dkm = prf_plus(alg, skeyseed, &[ni, nr, spi_i, spi_r], lens.total())?;
    let [sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr] = split_keys(
        &dkm,
        [
            lens.prf_key,
            lens.integ_key,
            lens.integ_key,
            lens.encr_key,
            lens.encr_key,
            lens.prf_key,
            lens.prf_key,
        ],
    )?;
    Ok(IkeKeys {
        sk_d,
        sk_ai,
        sk_ar,
        sk_ei,
        sk_er,
        sk_pi,
        sk_pr,
    })
}

/// Child SA KEYMAT (RFC 7296 §2.17): `prf+(SK_d, [g^ir (new) |] Ni | Nr)`.
pub fn child_keymat(
    alg: &dyn PrfAlgorithm,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<SecretBytes, CryptoError> {
    match g_ir_new {
        Some(g) => prf_plus(alg, sk_d, &[g, ni, nr], len),
        None => prf_plus(alg, sk_d, &[ni, nr], len),
    }
}

/// The keys of one Child SA direction, cut from KEYMAT.
#[derive(Debug)]
pub struct ChildDirectionKeys {
    /// Encryption key and salt.
    pub encr: SecretBytes,
    /// Integrity key.
    pub integ: SecretBytes,
}

/// Splits Child SA KEYMAT (RFC 7296 §2.17): first the initiator-to-responder keys
/// (encryption, then integrity), then the responder-to-initiator keys.
/// Returns `(initiator_to_responder, responder_to_initiator)`.
pub fn split_child_keymat(
    keymat: &SecretBytes,
    encr_len: usize,
    integ_len: usize,
) -> Result<(ChildDirectionKeys, ChildDirectionKeys), CryptoError> {
    let [ei, ai, er, ar] = split_keys(keymat, [encr_len, integ_len, encr_len, integ_len])?;
    Ok((
        ChildDirectionKeys {
            encr: ei,
            integ: ai,
        },
        ChildDirectionKeys {
            encr: er,
            integ: ar,
        },
    ))
}
