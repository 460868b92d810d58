//! Private keys: loading them as strongSwan's `pki --gen` and OpenSSL write them, and
//! turning them into the IKE layer's signer.

use std::fmt;
use std::path::Path;

use ipsec_crypto::keys::{self, EcCurve};
use ipsec_crypto::{CryptoError, CryptoProvider, SignatureScheme};
use zeroize::Zeroizing;

use crate::error::PkiError;
use crate::load::{looks_like_der, pem_blocks, read_file};

/// The type and size of a [`PrivateKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// The modulus length in bits.
        bits: usize,
    },
}

/// A private key in DER (PKCS#8, SEC1 `ECPrivateKey` or PKCS#1 `RSAPrivateKey`, the
/// encodings `ipsec_crypto::keys::parse_private_key` takes), checked to parse.
///
/// The DER is zeroized on drop; `Debug` prints the [`KeyKind`] only. Not `Clone`.
pub struct PrivateKey {
    der: Zeroizing<Vec<u8>>,
    kind: KeyKind,
}

impl PrivateKey {
    /// The DER encoding, for `ipsec_ike::LocalAuth::signature_from_der`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The signature scheme [`local_auth`] uses for this key: ECDSA with the curve's
    /// hash (RFC 7427 §3, DER signatures), Ed25519 (RFC 8420), and for RSA
    /// RSASSA-PSS with SHA-256 if `rsa_pss`, else PKCS#1 v1.5 with SHA-256.
    pub fn scheme(&self, rsa_pss: bool) -> SignatureScheme {
        match self.kind {
            KeyKind::EcdsaP256 => SignatureScheme::EcdsaP256Sha256,
            KeyKind::EcdsaP384 => SignatureScheme::EcdsaP384Sha384,
            KeyKind::Ed25519 => SignatureScheme::Ed25519,
            KeyKind::Rsa { .. } if rsa_pss => SignatureScheme::RsaPssSha256,
            KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1Sha256,
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn crypto_err(e: CryptoError) -> PkiError {
    PkiError::UnsupportedKey(e.to_string())
}

fn bit_len(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|&b| b != 0) {
        Some(i) => be.get(i..).unwrap_or_default(),
        None => &[],
    };
    match trimmed.first() {
        Some(&b) => trimmed.len() * 8 - b.leading_zeros() as usize,
        None => 0,
    }
}

fn kind_of(der: &[u8]) -> Result<KeyKind, PkiError> {
    Ok(match keys::parse_private_key(der).map_err(crypto_err)? {
        keys::PrivateKey::Ec {
            curve: EcCurve::P256,
            ..
        } => KeyKind::EcdsaP256,
        keys::PrivateKey::Ec {
            curve: EcCurve::P384,
            ..
        } => KeyKind::EcdsaP384,
        keys::PrivateKey::Rsa { modulus, .. } => KeyKind::Rsa {
            bits: bit_len(modulus),
        },
        keys::PrivateKey::Ed25519 { .. } => KeyKind::Ed25519,
        _ => return Err(PkiError::UnsupportedKey("key type".into())),
    })
}

/// PEM labels of private keys (RFC 7468 §10, §11; OpenSSL's traditional forms).
const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Reads a private key file as strongSwan's `pki --gen` and OpenSSL write them: PEM
/// `PRIVATE KEY` (PKCS#8, RFC 5958), `RSA PRIVATE KEY` (PKCS#1, RFC 8017 §A.1.2) or
/// `EC PRIVATE KEY` (SEC1, RFC 5915; an `EC PARAMETERS` block beside it is skipped),
/// or the same in DER. Keys of ECDSA P-256 and P-384, Ed25519 and RSA 2048 to 8192
/// bits are supported.
///
/// # Errors
/// [`PkiError::Io`] if the file cannot be read, otherwise as [`parse_private_key`].
pub fn load_private_key(path: &Path) -> Result<PrivateKey, PkiError> {
    let bytes = Zeroizing::new(read_file(path)?);
    parse_private_key(&bytes)
}

/// A private key from memory, as [`load_private_key`]: the first private-key PEM
/// block, or the input if it is DER.
///
/// # Errors
/// [`PkiError::Pem`] for a PEM block that does not decode, [`PkiError::NoKey`] if
/// there is no key (an `ENCRYPTED PRIVATE KEY` is [`PkiError::UnsupportedKey`]),
/// [`PkiError::UnsupportedKey`] for a malformed key or one of another type or size.
pub fn parse_private_key(bytes: &[u8]) -> Result<PrivateKey, PkiError> {
    let der = match pem_blocks(bytes) {
        Some(blocks) => {
            let mut found = None;
            for b in blocks? {
                if found.is_none() && KEY_LABELS.contains(&b.label.as_str()) {
                    found = Some(b.der);
                } else if found.is_none() && b.label == "ENCRYPTED PRIVATE KEY" {
                    return Err(PkiError::UnsupportedKey(
                        "encrypted keys are not supported".into(),
                    ));
                }
            }
            found.ok_or(PkiError::NoKey)?
        }
        None if looks_like_der(bytes) => Zeroizing::new(bytes.to_vec()),
        None => return Err(PkiError::NoKey),
    };
    let kind = kind_of(&der)?;
    Ok(PrivateKey { der, kind })
}

/// The IKE layer's signature authentication (RFC 7427 §3, AUTH method 14) with this
/// key and the scheme of [`PrivateKey::scheme`]; install it with
/// `ipsec_ike::Config::auth` or `Config::with_signer`.
///
/// # Errors
/// [`PkiError::UnsupportedKey`] if `provider` does not implement the scheme or does
/// not take the key.
pub fn local_auth(
    provider: &CryptoProvider,
    key: &PrivateKey,
    rsa_pss: bool,
) -> Result<ipsec_ike::LocalAuth, PkiError> {
    ipsec_ike::LocalAuth::signature_from_der(provider, key.scheme(rsa_pss), key.der())
        .map_err(crypto_err)
}

/// The public key that `key` belongs to, as the bytes `keys::parse_spki` returns for
/// its type: the uncompressed point, the RSA modulus or the Ed25519 key.
fn public_of(key: &PrivateKey) -> Result<Vec<u8>, PkiError> {
    match keys::parse_private_key(key.der()).map_err(crypto_err)? {
        keys::PrivateKey::Ec {
            public: Some(p), ..
        } => Ok(p.to_vec()),
        keys::PrivateKey::Ec {
            curve,
            scalar,
            public: None,
        } => ec_public_from_scalar(curve, scalar),
        keys::PrivateKey::Rsa { modulus, .. } => Ok(modulus.to_vec()),
        keys::PrivateKey::Ed25519 {
            public: Some(p), ..
        } => Ok(p.to_vec()),
        keys::PrivateKey::Ed25519 { seed, public: None } => {
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                .map_err(|_| PkiError::UnsupportedKey("Ed25519 seed".into()))?;
            Ok(ring::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec())
        }
        _ => Err(PkiError::UnsupportedKey("key type".into())),
    }
}

fn ec_public_from_scalar(curve: EcCurve, scalar: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::UnsupportedKey("EC private scalar".into());
    match curve {
        EcCurve::P256 => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let sk = p256::SecretKey::from_slice(scalar).map_err(|_| bad())?;
            Ok(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
        }
        EcCurve::P384 => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let sk = p384::SecretKey::from_slice(scalar).map_err(|_| bad())?;
            Ok(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
        }
        _ => Err(bad()),
    }
}

/// Checks that `cert_der`'s SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) is the public
/// key of `key`, so that a configuration pairing a certificate with the wrong key is
/// refused when loaded rather than by the peer's AUTHENTICATION_FAILED.
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate does not parse,
/// [`PkiError::UnsupportedKey`] if its key type is not supported,
/// [`PkiError::KeyMismatch`] if the keys differ.
pub fn check_key_matches_cert(key: &PrivateKey, cert_der: &[u8]) -> Result<(), PkiError> {
    let spki = crate::names::spki_der(cert_der)?;
    let cert_public = match keys::parse_spki(&spki).map_err(crypto_err)? {
        keys::PublicKey::Ec { point, .. } => point.to_vec(),
        keys::PublicKey::Rsa { modulus, .. } => modulus.to_vec(),
        keys::PublicKey::Ed25519(k) => k.to_vec(),
        _ => return Err(PkiError::UnsupportedKey("certificate key type".into())),
    };
    let same_kind = matches!(
        (keys::parse_spki(&spki).map_err(crypto_err)?, key.kind()),
        (
            keys::PublicKey::Ec {
                curve: EcCurve::P256,
                ..
            },
            KeyKind::EcdsaP256
        ) | (
            keys::PublicKey::Ec {
                curve: EcCurve::P384,
                ..
            },
            KeyKind::EcdsaP384
        ) | (keys::PublicKey::Rsa { .. }, KeyKind::Rsa { .. })
            | (keys::PublicKey::Ed25519(_), KeyKind::Ed25519)
    );
    if same_kind && public_of(key)? == cert_public {
        Ok(())
    } else {
        Err(PkiError::KeyMismatch)
    }
}
