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
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key material longer than {MAX_KEY_MATERIAL} bytes")]
pub struct KeyMaterialTooLong;

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
///
/// Made by an IKE implementation, or for manual keying with [`ChildSaParams::esp`] /
/// [`ChildSaParams::ah`] and the `with_*` methods (the struct is `#[non_exhaustive]`:
/// its fields are read and changed directly, but new ones may come):
///
/// ```
/// use ipsec_core::{ChildSaParams, KeyMaterial, Mode, Spi};
/// use ipsec_core::iana::EncrId;
///
/// let key = |b| KeyMaterial::new(&[b; 36], &[]).unwrap(); // AES-256-GCM key ‖ salt
/// let p = ChildSaParams::esp(
///     "192.0.2.1".parse().unwrap(),
///     "192.0.2.2".parse().unwrap(),
///     EncrId::ENCR_AES_GCM_16,
///     256,
///     (Spi(0x1001), key(1)), // inbound: the SPI and keys the peer sends us with
///     (Spi(0x2002), key(2)), // outbound
/// )
/// .with_mode(Mode::Transport)
/// .with_replay_window(128);
/// assert!(p.esn);
/// assert_eq!(p.outbound_spi, Spi(0x2002));
/// ```
#[derive(Debug)]
#[non_exhaustive]
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

impl ChildSaParams {
    /// An ESP SA pair between `local_addr` and `remote_addr` with the encryption
    /// transform `encr` (`encr_key_bits` 0 for transforms of fixed key length) and,
    /// for each direction, its SPI and keys: `inbound` is what the peer sends to us
    /// with. The rest: tunnel mode, no integrity transform (right for AEADs; see
    /// [`ChildSaParams::with_integ`]), no PFS group, extended sequence numbers, any
    /// selectors, no UDP encapsulation, no lifetime limits, a 64-packet replay window
    /// (the default RFC 4303 §3.4.3 recommends).
    pub fn esp(
        local_addr: IpAddr,
        remote_addr: IpAddr,
        encr: EncrId,
        encr_key_bits: u16,
        inbound: (Spi, KeyMaterial),
        outbound: (Spi, KeyMaterial),
    ) -> Self {
        ChildSaParams {
            protocol: SecurityProtocol::Esp,
            mode: Mode::Tunnel,
            inbound_spi: inbound.0,
            outbound_spi: outbound.0,
            encr: Some(encr),
            encr_key_bits,
            integ: IntegId::NONE,
            ke: KeId::NONE,
            esn: true,
            inbound_keys: inbound.1,
            outbound_keys: outbound.1,
            local_addr,
            remote_addr,
            local_ts: TsSet::new(),
            remote_ts: TsSet::new(),
            udp_encap: None,
            lifetime: Lifetime::UNLIMITED,
            replay_window: 64,
        }
    }

    /// An AH SA pair with the integrity transform `integ`; otherwise as
    /// [`ChildSaParams::esp`] (the keys hold the integrity key only).
    pub fn ah(
        local_addr: IpAddr,
        remote_addr: IpAddr,
        integ: IntegId,
        inbound: (Spi, KeyMaterial),
        outbound: (Spi, KeyMaterial),
    ) -> Self {
        let mut p = Self::esp(local_addr, remote_addr, EncrId(0), 0, inbound, outbound);
        p.protocol = SecurityProtocol::Ah;
        p.encr = None;
        p.integ = integ;
        p
    }

    /// Tunnel or transport mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The integrity transform (for ESP with a cipher that is not an AEAD).
    pub fn with_integ(mut self, integ: IntegId) -> Self {
        self.integ = integ;
        self
    }

    /// The key exchange group the keys came from (informational).
    pub fn with_ke(mut self, ke: KeId) -> Self {
        self.ke = ke;
        self
    }

    /// Extended (64-bit) sequence numbers on or off.
    pub fn with_esn(mut self, esn: bool) -> Self {
        self.esn = esn;
        self
    }

    /// The selectors on our side and on the peer's (empty sets: any).
    pub fn with_selectors(mut self, local: TsSet, remote: TsSet) -> Self {
        self.local_ts = local;
        self.remote_ts = remote;
        self
    }

    /// UDP encapsulation (RFC 3948), or none.
    pub fn with_udp_encap(mut self, udp_encap: Option<UdpEncap>) -> Self {
        self.udp_encap = udp_encap;
        self
    }

    /// Soft and hard lifetimes.
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The replay window in packets; 0 switches anti-replay off.
    pub fn with_replay_window(mut self, replay_window: u32) -> Self {
        self.replay_window = replay_window;
        self
    }
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
