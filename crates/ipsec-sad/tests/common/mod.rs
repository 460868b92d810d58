//! Shared helpers: SA parameters for a pair of nodes, packets, buffers.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;

use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::ip::ipv4_checksum;
use ipsec_core::{
    ChildSaParams, KeyMaterial, Lifetime, Mode, Spi, TrafficSelector, TsSet, UdpEncap,
};
use ipsec_sad::{
    Action, AddrRange, PolicyRule, SaTemplate, Sad, SadConfig, Selector, Spd, MAX_HEADROOM,
    MAX_TAILROOM,
};

pub const A: &str = "192.0.2.1";
pub const B: &str = "192.0.2.2";
pub const NET_A: &str = "10.0.1.0";
pub const NET_B: &str = "10.0.2.0";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn provider() -> &'static ipsec_crypto::CryptoProvider {
    &ipsec_crypto_rustcrypto::PROVIDER
}

pub fn sad() -> Sad {
    Sad::new(provider(), SadConfig::default().shards(16)).unwrap()
}

/// How one SA pair between A and B is set up.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub mode: Mode,
    /// SPI of packets A sends to B.
    pub spi_ab: u32,
    /// SPI of packets B sends to A.
    pub spi_ba: u32,
    /// Seed of the keys.
    pub key: u8,
    pub esn: bool,
    pub udp: bool,
    pub lifetime: Lifetime,
    pub window: u32,
    /// Selectors on (A's side, B's side); `None` for "any".
    pub ts: Option<(TrafficSelector, TrafficSelector)>,
    pub a: &'static str,
    pub b: &'static str,
}

impl Pair {
    pub fn new(spi_ab: u32, spi_ba: u32, key: u8) -> Self {
        Pair {
            mode: Mode::Tunnel,
            spi_ab,
            spi_ba,
            key,
            esn: true,
            udp: false,
            lifetime: Lifetime::UNLIMITED,
            window: 1024,
            ts: Some((
                TrafficSelector::from_prefix(ip(NET_A), 24).unwrap(),
                TrafficSelector::from_prefix(ip(NET_B), 24).unwrap(),
            )),
            a: A,
            b: B,
        }
    }

    fn keys(seed: u8) -> KeyMaterial {
        let k: Vec<u8> = (0..20u8)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i))
            .collect();
        KeyMaterial::new(&k, &[]).unwrap()
    }

    /// The parameters for node A (`at_a`) or node B.
    pub fn params(&self, at_a: bool) -> ChildSaParams {
        let (ts_a, ts_b) = match self.ts {
            Some((a, b)) => (TsSet::one(a), TsSet::one(b)),
            None => (TsSet::new(), TsSet::new()),
        };
        let (local, remote) = if at_a {
            (self.a, self.b)
        } else {
            (self.b, self.a)
        };
        let (in_spi, out_spi) = if at_a {
            (self.spi_ba, self.spi_ab)
        } else {
            (self.spi_ab, self.spi_ba)
        };
        let (kab, kba) = (self.key, self.key.wrapping_add(101));
        let (kin, kout) = if at_a { (kba, kab) } else { (kab, kba) };
        ChildSaParams::esp(
            ip(local),
            ip(remote),
            EncrId::ENCR_AES_GCM_16,
            128,
            (Spi(in_spi), Self::keys(kin)),
            (Spi(out_spi), Self::keys(kout)),
        )
        .with_mode(self.mode)
        .with_integ(IntegId::NONE)
        .with_ke(KeId::NONE)
        .with_esn(self.esn)
        .with_selectors(
            if at_a { ts_a } else { ts_b },
            if at_a { ts_b } else { ts_a },
        )
        .with_udp_encap(self.udp.then_some(UdpEncap::DEFAULT))
        .with_lifetime(self.lifetime)
        .with_replay_window(self.window)
    }
}

/// An outbound SPD for node A (`at_a`) or B: PROTECT between the two nets (rule 1),
/// BYPASS for IKE (rule 2), DISCARD for the rest.
pub fn spd(at_a: bool, mode: Mode) -> Spd {
    let (l, r) = if at_a { (NET_A, NET_B) } else { (NET_B, NET_A) };
    let t = match mode {
        Mode::Tunnel => {
            if at_a {
                SaTemplate::esp_tunnel(ip(A), ip(B))
            } else {
                SaTemplate::esp_tunnel(ip(B), ip(A))
            }
        }
        Mode::Transport => SaTemplate::esp_transport(),
    };
    let (l, r) = match mode {
        Mode::Tunnel => (
            AddrRange::prefix(ip(l), 24).unwrap(),
            AddrRange::prefix(ip(r), 24).unwrap(),
        ),
        Mode::Transport => (AddrRange::ANY_V4, AddrRange::ANY_V4),
    };
    Spd::new(vec![
        PolicyRule::new(
            2,
            Selector::ANY.with_ports(
                ipsec_core::IpProto::UDP,
                ipsec_sad::PortSel::port(500),
                ipsec_sad::PortSel::Any,
            ),
            Action::Bypass,
        ),
        PolicyRule::new(1, Selector::between(l, r), Action::Protect(t)),
        PolicyRule::new(3, Selector::ANY, Action::Discard),
    ])
    .unwrap()
}

/// An IPv4 UDP packet from `src:sport` to `dst:dport` with `payload_len` bytes of
/// payload (filled with `fill`).
pub fn udp4(src: &str, dst: &str, sport: u16, dport: u16, payload_len: usize, fill: u8) -> Vec<u8> {
    let total = 28 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    let (s, d) = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets(), d.octets()),
        _ => panic!("v4 only"),
    };
    p[12..16].copy_from_slice(&s);
    p[16..20].copy_from_slice(&d);
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    p[28..].fill(fill);
    p
}

/// A buffer with the packet in the middle and the room the SAD needs around it.
pub fn storage(packet: &[u8]) -> (Vec<u8>, usize) {
    let mut s = vec![0u8; MAX_HEADROOM + packet.len() + MAX_TAILROOM];
    s[MAX_HEADROOM..MAX_HEADROOM + packet.len()].copy_from_slice(packet);
    (s, packet.len())
}
