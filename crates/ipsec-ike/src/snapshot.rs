//! IKE SA export and import: the plain data an established, quiescent IKE SA is
//! carried in from one [`IkeEndpoint`](crate::IkeEndpoint) to another (an anycast
//! gateway cluster whose owner node of an IKE SA died; docs/architecture.md, "IKE SA
//! export and import").
//!
//! [`IkeEndpoint::export_ike_sa`](crate::IkeEndpoint::export_ike_sa) takes an
//! [`IkeSaSnapshot`]; [`IkeEndpoint::import_ike_sa`](crate::IkeEndpoint::import_ike_sa)
//! continues it under the same SPIs, keys and Message IDs, so the peer notices
//! nothing (this is not RFC 6311: the peer needs no extension, because the Message
//! IDs continue where the old node stopped). With the `serde` feature every type here
//! is `Serialize + Deserialize`, keys as lowercase hex.
//!
//! # Format, version 1 ([`IKE_SNAPSHOT_VERSION`])
//!
//! | field | meaning |
//! |---|---|
//! | `version` | 1; import refuses other versions |
//! | `initiator` | we are the initiator of this IKE SA (of its last rekey, if any) |
//! | `spi_i`, `spi_r` | the IKE SPIs |
//! | `encr`, `encr_key_bits`, `integ`, `prf`, `ke` | IANA ids of the chosen IKE proposal (0 = none) |
//! | `keys` | SK_d, SK_pi, SK_pr, SK_ei, SK_er, SK_ai, SK_ar (hex in serde) |
//! | `fragment_mtu` | the MTU of IKE fragmentation (RFC 7383), if both sides support it |
//! | `next_id`, `expect_id` | our next request's and the peer's next request's Message IDs |
//! | `cached` | our last response, to answer a retransmission of the peer's last request |
//! | `local`, `remote`, `local_behind_nat`, `remote_behind_nat` | the path and NAT state |
//! | `mobike`, `mobike_initiator` | MOBIKE negotiated; we were the original initiator (RFC 4555 §3.5) |
//! | `virtual_ips` | virtual addresses assigned to us or leased to the peer |
//! | `children` | the Child SAs: SPIs, selectors, mode |
//!
//! A snapshot holds every key of the IKE SA: [`IkeSnapshotKeys`] redacts them in
//! `Debug` and zeroizes them on drop. Importing one snapshot on two live nodes makes
//! both send requests with the same Message IDs under the same keys: the peer takes
//! the first and answers the second from its cache; the caller keeps one owner.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The snapshot format version this code writes and reads.
pub const IKE_SNAPSHOT_VERSION: u32 = 1;

/// The seven keys of an IKE SA (RFC 7296 §2.14); `Debug` prints only lengths,
/// dropped values are zeroized.
#[derive(Clone, PartialEq, Eq, Default, Zeroize, ZeroizeOnDrop)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IkeSnapshotKeys {
    /// SK_d: Child SA keys and IKE SA rekeys derive from it.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_d: Vec<u8>,
    /// SK_pi: the initiator's AUTH payload.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_pi: Vec<u8>,
    /// SK_pr: the responder's AUTH payload.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_pr: Vec<u8>,
    /// SK_ei: encryption (with salt), initiator to responder.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_ei: Vec<u8>,
    /// SK_er: encryption (with salt), responder to initiator.
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_er: Vec<u8>,
    /// SK_ai: integrity, initiator to responder (empty with an AEAD).
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_ai: Vec<u8>,
    /// SK_ar: integrity, responder to initiator (empty with an AEAD).
    #[cfg_attr(feature = "serde", serde(with = "hex_bytes"))]
    pub sk_ar: Vec<u8>,
}

impl fmt::Debug for IkeSnapshotKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IkeSnapshotKeys {{ sk_d: [redacted; {}], sk_pi: [redacted; {}], \
             sk_pr: [redacted; {}], sk_ei: [redacted; {}], sk_er: [redacted; {}], \
             sk_ai: [redacted; {}], sk_ar: [redacted; {}] }}",
            self.sk_d.len(),
            self.sk_pi.len(),
            self.sk_pr.len(),
            self.sk_ei.len(),
            self.sk_er.len(),
            self.sk_ai.len(),
            self.sk_ar.len()
        )
    }
}

/// Our last response on the IKE SA: the datagrams sent again when the peer
/// retransmits the request with Message ID `id` (RFC 7296 §2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CachedResponse {
    /// The Message ID of the request it answers.
    pub id: u32,
    /// The protected datagrams as sent (one, or the fragments of RFC 7383), without
    /// the non-ESP marker.
    pub datagrams: Vec<Vec<u8>>,
}

/// One traffic selector (RFC 7296 §3.13.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TsSnapshot {
    /// First address.
    pub start_addr: IpAddr,
    /// Last address (same family).
    pub end_addr: IpAddr,
    /// IP protocol (0 = any).
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
}

/// One Child SA of the IKE SA, as the IKE side tracks it. Its keys and counters are
/// the data plane's (`ipsec_sad::SaSnapshot`), carried separately.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChildSnapshot {
    /// The ESP SPI the peer sends to us with.
    pub inbound_spi: u32,
    /// The ESP SPI we send with.
    pub outbound_spi: u32,
    /// Our selectors.
    pub local_ts: Vec<TsSnapshot>,
    /// The peer's selectors.
    pub remote_ts: Vec<TsSnapshot>,
    /// Transport mode (else tunnel).
    pub transport: bool,
}

/// A versioned, self-contained copy of one established, quiescent IKE SA (see the
/// module docs for the format).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IkeSaSnapshot {
    /// [`IKE_SNAPSHOT_VERSION`] of the writer.
    pub version: u32,
    /// We are the initiator of this IKE SA (the one that sent its IKE_SA_INIT, or the
    /// CREATE_CHILD_SA that rekeyed it): sets the I flag and picks the keys.
    pub initiator: bool,
    /// The initiator's IKE SPI.
    pub spi_i: [u8; 8],
    /// The responder's IKE SPI.
    pub spi_r: [u8; 8],
    /// IANA encryption transform id.
    pub encr: u16,
    /// Encryption key length in bits.
    pub encr_key_bits: u16,
    /// IANA integrity transform id (0 = none, with an AEAD).
    pub integ: u16,
    /// IANA PRF id.
    pub prf: u16,
    /// IANA key exchange method id of the last IKE key exchange (0 = none).
    pub ke: u16,
    /// The keys.
    pub keys: IkeSnapshotKeys,
    /// IKE fragmentation (RFC 7383) with this MTU; `None`: off.
    pub fragment_mtu: Option<u32>,
    /// The Message ID of our next request.
    pub next_id: u32,
    /// The Message ID of the peer's next request.
    pub expect_id: u32,
    /// Our last response, for a retransmission of the peer's last request.
    pub cached: Option<CachedResponse>,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// We are behind a NAT (we send NAT keepalives).
    pub local_behind_nat: bool,
    /// The peer is behind a NAT.
    pub remote_behind_nat: bool,
    /// MOBIKE (RFC 4555) was negotiated.
    pub mobike: bool,
    /// We were the initiator of the first IKE SA, the side that may move (RFC 4555
    /// §3.5); unlike `initiator`, an IKE SA rekey does not change it.
    pub mobike_initiator: bool,
    /// Virtual addresses (RFC 7296 §3.15): assigned to us, or leased to the peer.
    /// The importing node's address pool knows nothing of a lease: they are not
    /// released to it when the IKE SA ends.
    pub virtual_ips: Vec<IpAddr>,
    /// The installed Child SAs.
    pub children: Vec<ChildSnapshot>,
}

/// Why [`IkeEndpoint::export_ike_sa`](crate::IkeEndpoint::export_ike_sa) gave no
/// snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No IKE SA with this handle.
    #[error("unknown IKE SA")]
    UnknownSa,
    /// The IKE SA is not established (being set up, closing or closed).
    #[error("the IKE SA is not established")]
    NotEstablished,
    /// An exchange is in flight or queued, a rekey or collision is unresolved, or an
    /// old IKE SA or Child SA is still on its way out: try again after it.
    #[error("the IKE SA is busy with an exchange")]
    Busy,
}

/// Why [`IkeEndpoint::import_ike_sa`](crate::IkeEndpoint::import_ike_sa) refused a
/// snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A snapshot format version this code does not read.
    #[error("snapshot version {0} not supported")]
    Version(u32),
    /// A transform id (or combination) that is unknown, not for IKE, or not run by
    /// this endpoint's provider.
    #[error("unknown or unsupported IKE transform")]
    Transform,
    /// A key whose length does not fit the transforms.
    #[error("key of the wrong length")]
    KeyLength,
    /// An IKE SPI or a Child SA inbound SPI is in use here already (or twice in the
    /// snapshot).
    #[error("SPI already in use")]
    SpiInUse,
    /// A zero IKE SPI or a reserved ESP SPI (1 to 255, RFC 4303 §2.1).
    #[error("invalid SPI")]
    InvalidSpi,
    /// The addresses of the path, or of a traffic selector, mix families.
    #[error("addresses of different families")]
    AddressFamily,
    /// Another field that cannot be: named here.
    #[error("invalid snapshot field {0}")]
    Invalid(&'static str),
}

#[cfg(feature = "serde")]
mod hex_bytes {
    use alloc::string::String;
    use alloc::vec::Vec;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            out.push(char::from(HEX[usize::from(x >> 4)]));
            out.push(char::from(HEX[usize::from(x & 15)]));
        }
        let r = s.serialize_str(&out);
        zeroize::Zeroize::zeroize(&mut out);
        r
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let mut s = String::deserialize(d)?;
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let r = if s.len() % 2 != 0 {
            None
        } else {
            s.as_bytes()
                .chunks(2)
                .map(|p| Some(nib(*p.first()?)? << 4 | nib(*p.get(1)?)?))
                .collect()
        };
        zeroize::Zeroize::zeroize(&mut s);
        r.ok_or_else(|| serde::de::Error::custom("keys must be hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_in_debug() {
        let mut k = IkeSnapshotKeys::default();
        k.sk_d = alloc::vec![0xab; 32];
        k.sk_ei = alloc::vec![0xcd; 36];
        let s = alloc::format!("{k:?}");
        assert!(s.contains("sk_d: [redacted; 32]") && s.contains("sk_ei: [redacted; 36]"));
        assert!(!s.contains("ab") && !s.contains("171") && !s.contains("cd"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn keys_are_hex_in_serde_and_round_trip() {
        let mut k = IkeSnapshotKeys::default();
        k.sk_d = alloc::vec![0x01, 0xfe];
        k.sk_ar = alloc::vec![0xa0];
        let j = serde_json::to_string(&k).unwrap();
        assert!(
            j.contains("\"sk_d\":\"01fe\"") && j.contains("\"sk_ar\":\"a0\""),
            "{j}"
        );
        let back: IkeSnapshotKeys = serde_json::from_str(&j).unwrap();
        assert_eq!(back, k);
        let bad = j.replace("01fe", "01f");
        assert!(serde_json::from_str::<IkeSnapshotKeys>(&bad).is_err());
        let bad = j.replace("01fe", "01zz");
        assert!(serde_json::from_str::<IkeSnapshotKeys>(&bad).is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn snapshot_round_trips_through_json() {
        let ts = TsSnapshot {
            start_addr: "10.0.0.0".parse().unwrap(),
            end_addr: "10.0.0.255".parse().unwrap(),
            protocol: 6,
            start_port: 0,
            end_port: 65535,
        };
        let s = IkeSaSnapshot {
            version: IKE_SNAPSHOT_VERSION,
            initiator: false,
            spi_i: [1; 8],
            spi_r: [2; 8],
            encr: 20,
            encr_key_bits: 256,
            integ: 0,
            prf: 5,
            ke: 31,
            keys: IkeSnapshotKeys {
                sk_d: alloc::vec![3; 32],
                sk_pi: alloc::vec![7; 32],
                sk_pr: alloc::vec![8; 32],
                sk_ei: alloc::vec![4; 36],
                sk_er: alloc::vec![9; 36],
                sk_ai: alloc::vec![],
                sk_ar: alloc::vec![],
            },
            fragment_mtu: Some(1280),
            next_id: 7,
            expect_id: 9,
            cached: Some(CachedResponse {
                id: 8,
                datagrams: alloc::vec![alloc::vec![5, 6]],
            }),
            local: "192.0.2.2:4500".parse().unwrap(),
            remote: "[2001:db8::1]:4500".parse().unwrap(),
            local_behind_nat: false,
            remote_behind_nat: true,
            mobike: true,
            mobike_initiator: false,
            virtual_ips: alloc::vec!["10.1.0.1".parse().unwrap()],
            children: alloc::vec![ChildSnapshot {
                inbound_spi: 0xc000_0001,
                outbound_spi: 0xc000_0002,
                local_ts: alloc::vec![ts],
                remote_ts: alloc::vec![ts, ts],
                transport: false,
            }],
        };
        let j = serde_json::to_string(&s).unwrap();
        assert!(
            j.contains(&alloc::format!("\"sk_d\":\"{}\"", "03".repeat(32))),
            "{j}"
        );
        let back: IkeSaSnapshot = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }
}
