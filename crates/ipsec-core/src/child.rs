//! [`ChildSaParams`]: what an IKE implementation hands to a data plane.
//!
//! It is the contract between the control plane and the data plane: `ipsec-ike` emits
//! it when a Child SA is negotiated, and `ipsec-esp`, `ipsec-ah` and `ipsec-sad` (or a
//! kernel, a NIC, DPDK) build their per-SA state from it. It works without a heap.

use core::fmt;
use core::net::IpAddr;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::iana::{EncrId, IntegId, KeId};
use crate::lifetime::Lifetime;
use crate::proto::{Mode, SecurityProtocol};
use crate::selector::TsSet;
use crate::spi::Spi;

/// Room for the keys of one direction: an encryption key with its salt (at most
/// 32 + 4 bytes) followed by an integrity key (at most 64 bytes).
pub const MAX_KEY_MATERIAL: usize = 128;

/// The keys of one direction of an SA, zeroized on drop.
///
/// Laid out as RFC 7296 §2.17 takes them from KEYMAT: the encryption key (for AEAD and
/// GMAC transforms including the trailing salt, RFC 4106 §8.1, RFC 7634 §4) and then the
/// integrity key. It is deliberately not `Clone`, and `Debug` prints only lengths.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    bytes: [u8; MAX_KEY_MATERIAL],
    encr_len: u8,
    integ_len: u8,
}

/// The keys do not fit into [`KeyMaterial`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyMaterialTooLong;

impl fmt::Display for KeyMaterialTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key material longer than {MAX_KEY_MATERIAL} bytes")
    }
}

impl core::error::Error for KeyMaterialTooLong {}

impl KeyMaterial {
    /// Keys from an encryption part (key ‖ salt) and an integrity part (may be empty).
    pub fn new(encr: &[u8], integ: &[u8]) -> Result<Self, KeyMaterialTooLong> {
        let total = encr.len() + integ.len();
        if total > MAX_KEY_MATERIAL {
            return Err(KeyMaterialTooLong);
        }
        let mut bytes = [0u8; MAX_KEY_MATERIAL];
        let (e, rest) = bytes.split_at_mut(encr.len());
        e.copy_from_slice(encr);
        if let Some(i) = rest.get_mut(..integ.len()) {
            i.copy_from_slice(integ);
        }
        Ok(KeyMaterial {
            bytes,
            encr_len: encr.len() as u8,
            integ_len: integ.len() as u8,
        })
    }

    /// The encryption key with its salt.
    pub fn encr(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.encr_len)).unwrap_or(&[])
    }

    /// The integrity key.
    pub fn integ(&self) -> &[u8] {
        let s = usize::from(self.encr_len);
        self.bytes
            .get(s..s + usize::from(self.integ_len))
            .unwrap_or(&[])
    }

    /// A copy; explicit, since copies of keys should be rare and visible.
    pub fn duplicate(&self) -> Self {
        KeyMaterial {
            bytes: self.bytes,
            encr_len: self.encr_len,
            integ_len: self.integ_len,
        }
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyMaterial {{ encr: [redacted; {}], integ: [redacted; {}] }}",
            self.encr_len, self.integ_len
        )
    }
}

/// UDP encapsulation ports (RFC 3948), usually 4500 on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// Our UDP port.
    pub local_port: u16,
    /// The peer's UDP port (may differ from 4500 behind a NAT).
    pub remote_port: u16,
}

impl UdpEncap {
    /// Port 4500 on both sides.
    pub const DEFAULT: UdpEncap = UdpEncap {
        local_port: crate::nat_t::NAT_T_PORT,
        remote_port: crate::nat_t::NAT_T_PORT,
    };
}

/// Everything a data plane needs to install one Child SA pair (both directions).
#[derive(Debug)]
pub struct ChildSaParams {
    /// ESP or AH.
    pub protocol: SecurityProtocol,
    /// Tunnel or transport mode.
    pub mode: Mode,
    /// The SPI we chose: the peer sends to us with it.
    pub inbound_spi: Spi,
    /// The SPI the peer chose: we send with it.
    pub outbound_spi: Spi,
    /// The encryption transform (ESP only; `None` for AH).
    pub encr: Option<EncrId>,
    /// The encryption key length in bits (0 where the transform has a fixed length).
    pub encr_key_bits: u16,
    /// The integrity transform, [`IntegId::NONE`] with AEAD transforms.
    pub integ: IntegId,
    /// The key exchange used for this SA's keys (PFS), [`KeId::NONE`] if none.
    pub ke: KeId,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Keys for packets we receive.
    pub inbound_keys: KeyMaterial,
    /// Keys for packets we send.
    pub outbound_keys: KeyMaterial,
    /// Our end of the SA (outer source address in tunnel mode).
    pub local_addr: IpAddr,
    /// The peer's end of the SA (outer destination address in tunnel mode).
    pub remote_addr: IpAddr,
    /// Selectors on our side.
    pub local_ts: TsSet,
    /// Selectors on the peer's side.
    pub remote_ts: TsSet,
    /// UDP encapsulation, when NAT traversal is in use.
    pub udp_encap: Option<UdpEncap>,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
    /// Replay window size in packets; 0 switches anti-replay off.
    pub replay_window: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_split_and_redacted() {
        let k = KeyMaterial::new(&[1; 20], &[2; 32]).unwrap();
        assert_eq!(k.encr(), &[1; 20]);
        assert_eq!(k.integ(), &[2; 32]);
        let s = format!("{k:?}");
        assert!(!s.contains("1, 1"), "{s}");
        assert!(s.contains("redacted"));
        assert!(KeyMaterial::new(&[0; 100], &[0; 29]).is_err());
        assert_eq!(k.duplicate().integ(), k.integ());
    }
}
