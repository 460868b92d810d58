//! Random ECP groups for IKEv2: NIST P-256, P-384 and P-521 (RFC 5903).
//!
//! RFC 5903 §7: the KE payload data is `x ‖ y` (without the SEC 1 `0x04` prefix), each
//! coordinate as long as the field; the shared secret is the x coordinate only.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipsec_crypto::{ActiveKx, CryptoError, KeId, KxGroup, SecureRandom, SharedSecret};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{
    ecdh, AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey,
};
use zeroize::Zeroizing;

use crate::BACKEND;

/// How often [`KxGroup::start`] draws a new private key when the bytes are not a
/// valid scalar (zero or at least the group order). For P-256 one draw fails with
/// probability below 2^-32, for P-384 below 2^-190, for P-521 (whose draw is cut to
/// 521 bits first) below 2^-259, so reaching the limit means the random source is
/// broken.
const MAX_DRAWS: usize = 16;

/// Which curve an [`EcpGroup`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

/// A random ECP group; the instances are [`ECP256`], [`ECP384`] and [`ECP521`].
#[derive(Debug)]
pub struct EcpGroup {
    curve: Curve,
}

/// 256-bit random ECP group (KeId::ECP_256, RFC 5903): 64-byte public values.
pub static ECP256: EcpGroup = EcpGroup { curve: Curve::P256 };
/// 384-bit random ECP group (KeId::ECP_384, RFC 5903): 96-byte public values.
pub static ECP384: EcpGroup = EcpGroup { curve: Curve::P384 };
/// 521-bit random ECP group (KeId::ECP_521, RFC 5903): 132-byte public values.
pub static ECP521: EcpGroup = EcpGroup { curve: Curve::P521 };

impl Curve {
    const fn id(self) -> KeId {
        match self {
            Self::P256 => KeId::ECP_256,
            Self::P384 => KeId::ECP_384,
            Self::P521 => KeId::ECP_521,
        }
    }

    const fn field_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// The bits of the first (most significant) private-key byte that can be set: the
    /// P-521 order has 521 bits, 7 fewer than its 66 bytes, so those are cleared
    /// before the range check (else 127 of 128 draws would be out of range).
    const fn top_byte_mask(self) -> u8 {
        match self {
            Self::P256 | Self::P384 => 0xff,
            Self::P521 => 0x01,
        }
    }
}

impl KxGroup for EcpGroup {
    fn id(&self) -> KeId {
        self.curve.id()
    }

    fn public_len(&self) -> usize {
        2 * self.curve.field_len()
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// The private key is the big-endian scalar made of exactly the field-length bytes
    /// drawn from `rng` (for P-521 with the 7 bits above the order's 521 cleared);
    /// values outside `[1, n - 1]` are discarded and drawn again.
    fn start(&self, rng: &dyn SecureRandom) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let (id, mask) = (self.curve.id(), self.curve.top_byte_mask());
        match self.curve {
            Curve::P256 => Active::<p256::NistP256>::start(rng, id, mask),
            Curve::P384 => Active::<p384::NistP384>::start(rng, id, mask),
            Curve::P521 => Active::<p521::NistP521>::start(rng, id, mask),
        }
    }
}

/// An ECDH exchange in progress on curve `C`.
struct Active<C: CurveArithmetic> {
    id: KeId,
    /// Zeroized on drop by elliptic-curve.
    secret: SecretKey<C>,
    /// `x ‖ y`.
    public: Vec<u8>,
}

impl<C> Active<C>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    fn start(
        rng: &dyn SecureRandom,
        id: KeId,
        top_byte_mask: u8,
    ) -> Result<Box<dyn ActiveKx>, CryptoError> {
        let mut bytes = Zeroizing::new(FieldBytes::<C>::default());
        for _ in 0..MAX_DRAWS {
            rng.fill(bytes.as_mut_slice())?;
            if let Some(top) = bytes.first_mut() {
                *top &= top_byte_mask;
            }
            if let Ok(secret) = SecretKey::<C>::from_bytes(&bytes) {
                let point = secret.public_key().to_encoded_point(false);
                // Uncompressed SEC 1 encoding: 0x04 ‖ x ‖ y.
                let public = point.as_bytes().get(1..).unwrap_or_default().to_vec();
                return Ok(Box::new(Self { id, secret, public }));
            }
        }
        Err(CryptoError::Random)
    }
}

impl<C> ActiveKx for Active<C>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    fn group(&self) -> KeId {
        self.id
    }

    fn public(&self) -> &[u8] {
        &self.public
    }

    /// The peer's value must be a point on the curve other than the identity
    /// (RFC 5903 §7, SP 800-56A full public-key validation; the curves have
    /// cofactor 1). Coordinates are the field length, left-padded with zeros (for
    /// P-521, 66 bytes each: RFC 5903 §7 and SEC 1 §2.3.5).
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        CryptoError::check_len("public key", self.public.len(), peer.len())?;
        let mut sec1 = Vec::with_capacity(peer.len() + 1);
        sec1.push(0x04);
        sec1.extend_from_slice(peer);
        let peer =
            PublicKey::<C>::from_sec1_bytes(&sec1).map_err(|_| CryptoError::InvalidPublicValue)?;
        let shared = ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(SharedSecret::from_slice(shared.raw_secret_bytes()))
    }
}
