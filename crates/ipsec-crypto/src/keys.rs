//! Key encodings for the signature traits, parsed once here for every backend.
//!
//! - Public keys come as a **SubjectPublicKeyInfo** (RFC 5280 §4.1.2.7), the form a
//!   certificate carries and a raw public key payload uses (RFC 7670):
//!   - `id-ecPublicKey` with a `namedCurve` of P-256 or P-384 and an uncompressed
//!     point (RFC 5480 §2); compressed points are [`CryptoError::Unsupported`];
//!   - `rsaEncryption` with NULL (or absent) parameters and an `RSAPublicKey`
//!     (RFC 3279 §2.3.1, RFC 8017 §A.1.1) of 2048 to 8192 bits with an odd public
//!     exponent from 3 to 2^33 - 1 (the bounds ring enforces; applied here so that
//!     every backend accepts the same keys);
//!   - `id-Ed25519` without parameters and a 32-byte key (RFC 8410 §4).
//! - Private keys come as DER in one of:
//!   - **PKCS#8** `PrivateKeyInfo` / `OneAsymmetricKey`, versions 1 and 2
//!     (RFC 5208 §5, RFC 5958 §2), for all three key types;
//!   - **SEC1** `ECPrivateKey` (RFC 5915 §3) with the curve in its parameters;
//!   - **PKCS#1** `RSAPrivateKey` (RFC 8017 §A.1.2), two-prime.
//!
//! The format is told apart by the element after the leading version INTEGER: an
//! AlgorithmIdentifier SEQUENCE (PKCS#8), the private key OCTET STRING (SEC1) or the
//! modulus INTEGER (PKCS#1). PEM is the caller's business.
//!
//! The parser takes any bytes and returns [`CryptoError::InvalidKey`] for malformed
//! or non-DER input (indefinite or non-minimal lengths, trailing bytes), never panics,
//! and borrows from its input without copying.

use core::fmt;

use crate::error::CryptoError;

/// `id-ecPublicKey`, 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `secp256r1` / `prime256v1`, 1.2.840.10045.3.1.7 (RFC 5480 §2.1.1.1).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1`, 1.3.132.0.34 (RFC 5480 §2.1.1.1).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// `rsaEncryption`, 1.2.840.113549.1.1.1 (RFC 8017 §A.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-Ed25519`, 1.3.101.112 (RFC 8410 §3).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` constructed (ECPrivateKey parameters, PKCS#8 attributes).
const TAG_CONTEXT_0: u8 = 0xa0;
/// `[1]` constructed (ECPrivateKey publicKey).
const TAG_CONTEXT_1: u8 = 0xa1;
/// `[1] IMPLICIT BIT STRING` (OneAsymmetricKey publicKey, RFC 5958 §2).
const TAG_CONTEXT_1_PRIMITIVE: u8 = 0x81;

/// The smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 8192;

/// A NIST curve of the ECDSA schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl EcCurve {
    /// The length of a field element and of a scalar in bytes.
    pub const fn field_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
        }
    }

    fn from_oid(oid: &[u8]) -> Result<Self, CryptoError> {
        match oid {
            OID_P256 => Ok(EcCurve::P256),
            OID_P384 => Ok(EcCurve::P384),
            _ => Err(CryptoError::Unsupported),
        }
    }
}

/// A public key taken out of a SubjectPublicKeyInfo by [`parse_spki`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey<'a> {
    /// An ECDSA key: the uncompressed SEC1 point `0x04 ‖ x ‖ y`, checked for length
    /// only (whether it lies on the curve is the backend's check).
    Ec {
        /// The curve.
        curve: EcCurve,
        /// `0x04 ‖ x ‖ y`.
        point: &'a [u8],
    },
    /// An RSA key.
    Rsa {
        /// The DER `RSAPublicKey` (PKCS#1), as ring takes it.
        pkcs1: &'a [u8],
        /// The modulus, big-endian without leading zeros.
        modulus: &'a [u8],
        /// The public exponent, big-endian without leading zeros.
        exponent: &'a [u8],
    },
    /// An Ed25519 key: 32 bytes (RFC 8032 §5.1.5).
    Ed25519(&'a [u8]),
}

/// A private key taken out of its DER encoding by [`parse_private_key`].
///
/// It borrows the caller's buffer; the caller zeroizes that. `Debug` prints the key
/// type only.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivateKey<'a> {
    /// An ECDSA key.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The private scalar, big-endian, exactly [`EcCurve::field_len`] bytes
        /// (RFC 5915 §3).
        scalar: &'a [u8],
        /// The public point `0x04 ‖ x ‖ y`, when the encoding carries it.
        public: Option<&'a [u8]>,
    },
    /// An RSA key.
    Rsa {
        /// The DER `RSAPrivateKey` (PKCS#1), checked for shape: version 0 and the
        /// eight INTEGERs.
        pkcs1: &'a [u8],
        /// The modulus, big-endian without leading zeros.
        modulus: &'a [u8],
    },
    /// An Ed25519 key.
    Ed25519 {
        /// The 32-byte seed (RFC 8032 §5.1.5's private key).
        seed: &'a [u8],
        /// The 32-byte public key, when a PKCS#8 v2 encoding carries it.
        public: Option<&'a [u8]>,
    },
}

impl fmt::Debug for PrivateKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateKey::Ec { curve, .. } => write!(f, "PrivateKey::Ec({curve:?}, [redacted])"),
            PrivateKey::Rsa { modulus, .. } => {
                write!(f, "PrivateKey::Rsa({} bits, [redacted])", bits(modulus))
            }
            PrivateKey::Ed25519 { .. } => f.write_str("PrivateKey::Ed25519([redacted])"),
        }
    }
}

// ---------------------------------------------------------------------------------
// DER reader

/// A cursor over DER TLVs.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Self {
        Der { rest: input }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one TLV with tag `tag` and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], CryptoError> {
        let bad = CryptoError::InvalidKey;
        let (&t, rest) = self.rest.split_first().ok_or(bad)?;
        if t != tag {
            return Err(bad);
        }
        let (&first, mut rest) = rest.split_first().ok_or(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form: 1 to 3 length bytes (16 MiB is plenty for keys), minimal.
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 {
                return Err(bad);
            }
            let (len_bytes, r) = rest.split_at_checked(n).ok_or(bad)?;
            rest = r;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 || len_bytes.first() == Some(&0) {
                return Err(bad);
            }
            len
        };
        let (value, rest) = rest.split_at_checked(len).ok_or(bad)?;
        self.rest = rest;
        Ok(value)
    }

    /// Reads a TLV with `tag` if the next one has it.
    fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, CryptoError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a non-negative INTEGER and returns its magnitude without leading zeros
    /// (empty for zero).
    fn read_unsigned(&mut self) -> Result<&'a [u8], CryptoError> {
        let v = self.read(TAG_INTEGER)?;
        match v {
            [] => Err(CryptoError::InvalidKey),
            [b, ..] if *b >= 0x80 => Err(CryptoError::InvalidKey),
            [0, next, ..] if *next < 0x80 => Err(CryptoError::InvalidKey),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(v),
        }
    }

    /// Reads a small non-negative INTEGER (a version).
    fn read_small(&mut self) -> Result<u8, CryptoError> {
        match self.read_unsigned()? {
            [] => Ok(0),
            [v] => Ok(*v),
            _ => Err(CryptoError::InvalidKey),
        }
    }

    /// Reads a BIT STRING with no unused bits and returns its bytes.
    fn read_bit_string(&mut self, tag: u8) -> Result<&'a [u8], CryptoError> {
        match self.read(tag)? {
            [0, rest @ ..] => Ok(rest),
            _ => Err(CryptoError::InvalidKey),
        }
    }

    fn finish(self) -> Result<(), CryptoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CryptoError::InvalidKey)
        }
    }
}

/// The contents of the single TLV `input` must be, with tag `tag`.
fn whole(input: &[u8], tag: u8) -> Result<&[u8], CryptoError> {
    let mut d = Der::new(input);
    let v = d.read(tag)?;
    d.finish()?;
    Ok(v)
}

/// Bit length of a big-endian magnitude without leading zeros.
fn bits(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 0,
        Some(&b) => (magnitude.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

/// An AlgorithmIdentifier: the OID and the raw parameters TLV contents, if any, with
/// their tag.
struct AlgId<'a> {
    oid: &'a [u8],
    params: Option<(u8, &'a [u8])>,
}

fn read_alg_id<'a>(d: &mut Der<'a>) -> Result<AlgId<'a>, CryptoError> {
    let mut a = Der::new(d.read(TAG_SEQUENCE)?);
    let oid = a.read(TAG_OID)?;
    let params = match a.peek_tag() {
        None => None,
        Some(tag) => Some((tag, a.read(tag)?)),
    };
    a.finish()?;
    Ok(AlgId { oid, params })
}

/// The curve named by EC AlgorithmIdentifier parameters (RFC 5480 §2.1.1: only
/// `namedCurve` is allowed in certificates).
fn named_curve(params: Option<(u8, &[u8])>) -> Result<EcCurve, CryptoError> {
    match params {
        Some((TAG_OID, oid)) => EcCurve::from_oid(oid),
        Some(_) => Err(CryptoError::Unsupported),
        None => Err(CryptoError::InvalidKey),
    }
}

/// Checks the length and form of an uncompressed point.
fn check_point(curve: EcCurve, point: &[u8]) -> Result<(), CryptoError> {
    match point.first() {
        Some(0x04) if point.len() == 1 + 2 * curve.field_len() => Ok(()),
        Some(0x02 | 0x03) if point.len() == 1 + curve.field_len() => Err(CryptoError::Unsupported),
        _ => Err(CryptoError::InvalidKey),
    }
}

/// Checks an RSA modulus and public exponent against the bounds in the module docs.
fn check_rsa_public(modulus: &[u8], exponent: &[u8]) -> Result<(), CryptoError> {
    let n_bits = bits(modulus);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n_bits) {
        return Err(CryptoError::Unsupported);
    }
    let e_bits = bits(exponent);
    let odd = exponent.last().is_some_and(|b| b & 1 == 1);
    if !odd || !(2..=33).contains(&e_bits) {
        return Err(CryptoError::InvalidKey);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Public keys

/// Parses a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of one of the key types in
/// the [module docs](self).
///
/// # Errors
/// [`CryptoError::InvalidKey`] for malformed DER or a malformed key;
/// [`CryptoError::Unsupported`] for other algorithms or curves, compressed points and
/// RSA moduli outside 2048 to 8192 bits.
pub fn parse_spki(der: &[u8]) -> Result<PublicKey<'_>, CryptoError> {
    let mut d = Der::new(whole(der, TAG_SEQUENCE)?);
    let alg = read_alg_id(&mut d)?;
    let key = d.read_bit_string(TAG_BIT_STRING)?;
    d.finish()?;
    match alg.oid {
        OID_EC_PUBLIC_KEY => {
            let curve = named_curve(alg.params)?;
            check_point(curve, key)?;
            Ok(PublicKey::Ec { curve, point: key })
        }
        OID_RSA_ENCRYPTION => {
            // RFC 3279 §2.3.1: the parameters MUST be NULL; absent ones are tolerated.
            if !matches!(alg.params, None | Some((TAG_NULL, []))) {
                return Err(CryptoError::InvalidKey);
            }
            let mut r = Der::new(whole(key, TAG_SEQUENCE)?);
            let modulus = r.read_unsigned()?;
            let exponent = r.read_unsigned()?;
            r.finish()?;
            check_rsa_public(modulus, exponent)?;
            Ok(PublicKey::Rsa {
                pkcs1: key,
                modulus,
                exponent,
            })
        }
        OID_ED25519 => {
            // RFC 8410 §3: the parameters MUST be absent.
            if alg.params.is_some() || key.len() != 32 {
                return Err(CryptoError::InvalidKey);
            }
            Ok(PublicKey::Ed25519(key))
        }
        _ => Err(CryptoError::Unsupported),
    }
}

// ---------------------------------------------------------------------------------
// Private keys

/// Parses a DER private key in PKCS#8, SEC1 or PKCS#1 form (see the
/// [module docs](self)).
///
/// # Errors
/// [`CryptoError::InvalidKey`] for malformed DER or a malformed key;
/// [`CryptoError::Unsupported`] for other algorithms or curves, multi-prime RSA keys
/// and RSA moduli outside 2048 to 8192 bits.
pub fn parse_private_key(der: &[u8]) -> Result<PrivateKey<'_>, CryptoError> {
    let body = whole(der, TAG_SEQUENCE)?;
    let mut d = Der::new(body);
    let _version = d.read_small()?;
    match d.peek_tag() {
        Some(TAG_SEQUENCE) => parse_pkcs8(body),
        Some(TAG_OCTET_STRING) => parse_sec1(der, None),
        Some(TAG_INTEGER) => parse_pkcs1(der),
        _ => Err(CryptoError::InvalidKey),
    }
}

/// PKCS#8 `OneAsymmetricKey` contents (RFC 5958 §2).
fn parse_pkcs8(body: &[u8]) -> Result<PrivateKey<'_>, CryptoError> {
    let mut d = Der::new(body);
    let version = d.read_small()?;
    if version > 1 {
        return Err(CryptoError::InvalidKey);
    }
    let alg = read_alg_id(&mut d)?;
    let inner = d.read(TAG_OCTET_STRING)?;
    let _attributes = d.read_optional(TAG_CONTEXT_0)?;
    let public = match version {
        1 => d
            .read_optional(TAG_CONTEXT_1_PRIMITIVE)?
            .map(|b| match b {
                [0, rest @ ..] => Ok(rest),
                _ => Err(CryptoError::InvalidKey),
            })
            .transpose()?,
        _ => None,
    };
    d.finish()?;
    match alg.oid {
        OID_EC_PUBLIC_KEY => {
            let curve = named_curve(alg.params)?;
            if public.is_some() {
                // An EC key carries its public key inside ECPrivateKey.
                return Err(CryptoError::InvalidKey);
            }
            parse_sec1(inner, Some(curve))
        }
        OID_RSA_ENCRYPTION => {
            if !matches!(alg.params, None | Some((TAG_NULL, []))) || public.is_some() {
                return Err(CryptoError::InvalidKey);
            }
            parse_pkcs1(inner)
        }
        OID_ED25519 => {
            if alg.params.is_some() {
                return Err(CryptoError::InvalidKey);
            }
            // RFC 8410 §7: CurvePrivateKey ::= OCTET STRING.
            let seed = whole(inner, TAG_OCTET_STRING)?;
            if seed.len() != 32 || public.is_some_and(|p| p.len() != 32) {
                return Err(CryptoError::InvalidKey);
            }
            Ok(PrivateKey::Ed25519 { seed, public })
        }
        _ => Err(CryptoError::Unsupported),
    }
}

/// SEC1 `ECPrivateKey` (RFC 5915 §3). `outer` is the curve of an enclosing PKCS#8
/// AlgorithmIdentifier; without one the parameters must name it.
fn parse_sec1(der: &[u8], outer: Option<EcCurve>) -> Result<PrivateKey<'_>, CryptoError> {
    let mut d = Der::new(whole(der, TAG_SEQUENCE)?);
    if d.read_small()? != 1 {
        return Err(CryptoError::InvalidKey);
    }
    let scalar = d.read(TAG_OCTET_STRING)?;
    let inner = d
        .read_optional(TAG_CONTEXT_0)?
        .map(|p| named_curve(Some((TAG_OID, whole(p, TAG_OID)?))))
        .transpose()?;
    let public = d
        .read_optional(TAG_CONTEXT_1)?
        .map(|p| {
            let mut b = Der::new(p);
            let bits = b.read_bit_string(TAG_BIT_STRING)?;
            b.finish()?;
            Ok::<_, CryptoError>(bits)
        })
        .transpose()?;
    d.finish()?;
    let curve = match (outer, inner) {
        (Some(a), Some(b)) if a != b => return Err(CryptoError::InvalidKey),
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(CryptoError::InvalidKey),
    };
    if scalar.len() != curve.field_len() {
        return Err(CryptoError::InvalidKey);
    }
    if let Some(p) = public {
        check_point(curve, p)?;
    }
    Ok(PrivateKey::Ec {
        curve,
        scalar,
        public,
    })
}

/// PKCS#1 `RSAPrivateKey` (RFC 8017 §A.1.2), two-prime.
fn parse_pkcs1(der: &[u8]) -> Result<PrivateKey<'_>, CryptoError> {
    let mut d = Der::new(whole(der, TAG_SEQUENCE)?);
    match d.read_small()? {
        0 => {}
        1 => return Err(CryptoError::Unsupported),
        _ => return Err(CryptoError::InvalidKey),
    }
    let modulus = d.read_unsigned()?;
    let exponent = d.read_unsigned()?;
    // d, p, q, dP, dQ, qInv.
    for _ in 0..6 {
        d.read_unsigned()?;
    }
    d.finish()?;
    check_rsa_public(modulus, exponent)?;
    Ok(PrivateKey::Rsa {
        pkcs1: der,
        modulus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8410 §10.1 (public key) and §10.3 (private key, v1) examples.
    #[test]
    fn rfc8410_examples() {
        let spki = h("302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
        assert_eq!(parse_spki(&spki).unwrap(), PublicKey::Ed25519(&spki[12..]));
        let pkcs8 = h("302e020100300506032b657004220420d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842");
        let k = parse_private_key(&pkcs8).unwrap();
        assert_eq!(
            k,
            PrivateKey::Ed25519 {
                seed: &pkcs8[16..],
                public: None
            }
        );
        assert_eq!(format!("{k:?}"), "PrivateKey::Ed25519([redacted])");
    }

    #[test]
    fn der_lengths_are_strict() {
        // Long form for a short length, and a leading zero length byte.
        assert!(Der::new(&[0x04, 0x81, 0x01, 0xaa]).read(0x04).is_err());
        assert!(Der::new(&[0x04, 0x82, 0x00, 0x81]).read(0x04).is_err());
        // Indefinite length.
        assert!(Der::new(&[0x30, 0x80, 0x00, 0x00]).read(0x30).is_err());
        // Truncated.
        assert!(Der::new(&[0x04, 0x05, 0x01]).read(0x04).is_err());
        assert_eq!(Der::new(&[0x04, 0x01, 0xaa]).read(0x04).unwrap(), &[0xaa]);
    }

    #[test]
    fn integers_are_minimal_and_unsigned() {
        for bad in [
            &[0x02, 0x00][..],
            &[0x02, 0x01, 0x80],
            &[0x02, 0x02, 0x00, 0x01],
        ] {
            assert!(Der::new(bad).read_unsigned().is_err(), "{bad:?}");
        }
        assert_eq!(
            Der::new(&[0x02, 0x02, 0x00, 0x80]).read_unsigned().unwrap(),
            &[0x80]
        );
        assert_eq!(
            Der::new(&[0x02, 0x01, 0x00]).read_unsigned().unwrap(),
            &[] as &[u8]
        );
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bits(&[]), 0);
        assert_eq!(bits(&[1]), 1);
        assert_eq!(bits(&[0x80, 0]), 16);
    }

    #[test]
    fn garbage_is_refused() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x00],
        ] {
            assert!(parse_spki(input).is_err());
            assert!(parse_private_key(input).is_err());
        }
    }
}
