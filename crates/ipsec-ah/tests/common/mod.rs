//! Shared helpers for the integration tests: vector records and SA construction.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod build;

use std::net::IpAddr;

use ipsec_ah::tunnel::{DfPolicy, DscpPolicy};
use ipsec_ah::OpenOptions;
use ipsec_ah::{integ, AhInbound, AhOutbound, PacketBuf, Tunnel, TunnelConfig};
use ipsec_core::{KeyMaterial, ReplayWindow, Spi};
use ipsec_crypto::suites::{self, IntegDesc};
use ipsec_crypto::CryptoProvider;
use serde_json::Value;

/// The rustcrypto provider every test uses.
pub fn provider() -> &'static CryptoProvider {
    &ipsec_crypto_rustcrypto::PROVIDER
}

/// Headroom and tailroom every test buffer gets.
pub const ROOM: usize = 128;

/// The integrity transform named in the vector files.
pub fn integ_by_name(name: &str, key_len: usize) -> &'static IntegDesc {
    match (name, key_len) {
        ("HMAC-SHA1-96", _) => &suites::HMAC_SHA1_96,
        ("HMAC-SHA2-256-128", _) => &suites::HMAC_SHA256_128,
        ("HMAC-SHA2-384-192", _) => &suites::HMAC_SHA384_192,
        ("HMAC-SHA2-512-256", _) => &suites::HMAC_SHA512_256,
        ("AES-GMAC", 16) => &integ::AES_128_GMAC,
        ("AES-GMAC", 32) => &integ::AES_256_GMAC,
        _ => panic!("unknown integrity transform {name} ({key_len} bytes)"),
    }
}

/// One record of ah.json or scapy_ah.json.
#[derive(Debug)]
pub struct Vector {
    pub name: String,
    pub mode: String,
    pub spi: u32,
    pub seq: u32,
    pub esn_high: Option<u32>,
    pub integ: &'static IntegDesc,
    /// The integrity key material as our SA takes it (for GMAC: key ‖ salt).
    pub key: Vec<u8>,
    pub iv: Option<Vec<u8>>,
    pub plaintext: Vec<u8>,
    pub ah_packet: Vec<u8>,
    pub reject: bool,
    pub raw: Value,
}

fn hex_of(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| hex::decode(s).expect("hex"))
}

impl Vector {
    pub fn from_json(r: &Value) -> Self {
        let key = hex_of(&r["integ_key"]).unwrap();
        let name = r["integ"].as_str().unwrap();
        let integ = integ_by_name(name, key.len());
        let mut k = key.clone();
        if let Some(salt) = hex_of(&r["salt"]) {
            k.extend_from_slice(&salt);
        }
        Vector {
            name: r["name"].as_str().unwrap().to_owned(),
            mode: r["mode"].as_str().unwrap().to_owned(),
            spi: u32::try_from(r["spi"].as_u64().unwrap()).unwrap(),
            seq: u32::try_from(r["seq"].as_u64().unwrap()).unwrap(),
            esn_high: r["esn_high"].as_u64().map(|v| u32::try_from(v).unwrap()),
            integ,
            key: k,
            iv: hex_of(&r["iv"]),
            plaintext: hex_of(&r["plaintext_ip_packet"]).unwrap(),
            ah_packet: hex_of(&r["ah_packet"]).unwrap(),
            reject: r["expect"].as_str() == Some("reject"),
            raw: r.clone(),
        }
    }

    /// The 64-bit sequence number.
    pub fn full_seq(&self) -> u64 {
        (u64::from(self.esn_high.unwrap_or(0)) << 32) | u64::from(self.seq)
    }

    pub fn esn(&self) -> bool {
        self.esn_high.is_some()
    }

    pub fn keys(&self) -> KeyMaterial {
        KeyMaterial::new(&[], &self.key).unwrap()
    }

    pub fn outbound(&self) -> AhOutbound {
        let mut o = AhOutbound::new(
            provider(),
            Spi(self.spi),
            self.integ,
            &self.keys(),
            self.esn(),
        )
        .unwrap();
        o.set_next_seq(self.full_seq()).unwrap();
        if let Some(iv) = &self.iv {
            o.set_next_iv(iv).unwrap();
        }
        o
    }

    /// An inbound SA whose window expects this vector's sequence number (with ESN the
    /// window sits just below it, so the high bits are inferred).
    pub fn inbound(&self) -> AhInbound {
        let mut i = AhInbound::new(
            provider(),
            Spi(self.spi),
            self.integ,
            &self.keys(),
            self.esn(),
            64,
        )
        .unwrap();
        if self.esn() {
            i.set_replay_window(ReplayWindow::restore(64, true, self.full_seq() - 1).unwrap());
        }
        i
    }
}

pub fn load(path: &str) -> Vec<Vector> {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(Vector::from_json)
        .collect()
}

/// A buffer with `ROOM` bytes on each side of `packet`.
pub fn buffer(packet: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; ROOM];
    v.extend_from_slice(packet);
    v.resize(ROOM * 2 + packet.len(), 0);
    v
}

/// The tunnel configuration that reproduces the outer header of `ah_packet`:
/// endpoints, TTL, Identification, DF and DSCP are sender choices, not crypto.
pub fn tunnel_like(ah_packet: &[u8]) -> Tunnel {
    let (local, remote, ttl, ident, df, tos, flow) = if ah_packet[0] >> 4 == 4 {
        let a: [u8; 4] = ah_packet[12..16].try_into().unwrap();
        let b: [u8; 4] = ah_packet[16..20].try_into().unwrap();
        (
            IpAddr::from(a),
            IpAddr::from(b),
            ah_packet[8],
            u16::from_be_bytes([ah_packet[4], ah_packet[5]]),
            ah_packet[6] & 0x40 != 0,
            ah_packet[1],
            0,
        )
    } else {
        let a: [u8; 16] = ah_packet[8..24].try_into().unwrap();
        let b: [u8; 16] = ah_packet[24..40].try_into().unwrap();
        let first = u32::from_be_bytes(ah_packet[0..4].try_into().unwrap());
        (
            IpAddr::from(a),
            IpAddr::from(b),
            ah_packet[7],
            0,
            false,
            (first >> 20) as u8,
            first & 0xf_ffff,
        )
    };
    let mut c = TunnelConfig::new(local, remote);
    c.ttl = ttl;
    c.df = if df { DfPolicy::Set } else { DfPolicy::Clear };
    c.dscp = DscpPolicy::Set(tos >> 2);
    c.flow_label = flow;
    let mut t = Tunnel::new(c).unwrap();
    t.set_next_ident(ident);
    t
}

/// Seals `v.plaintext` with the vector's SA and mode; returns the body.
pub fn seal(v: &Vector) -> Vec<u8> {
    let mut o = v.outbound();
    let mut storage = buffer(&v.plaintext);
    let mut b = PacketBuf::new(&mut storage[..], ROOM, v.plaintext.len()).unwrap();
    if v.mode == "tunnel" {
        let mut t = tunnel_like(&v.ah_packet);
        o.seal_tunnel(&mut t, &mut b).unwrap();
    } else {
        o.seal_transport(&mut b).unwrap();
    }
    b.body().to_vec()
}

/// Opens `packet` with the vector's inbound SA and mode.
pub fn open(v: &Vector, packet: &[u8]) -> Result<Vec<u8>, ipsec_ah::OpenError> {
    let mut i = v.inbound();
    let mut storage = buffer(packet);
    let mut b = PacketBuf::new(&mut storage[..], ROOM, packet.len()).unwrap();
    let before = b.body().to_vec();
    let r = if v.mode == "tunnel" {
        i.open_tunnel(&mut b, OpenOptions::new())
    } else {
        i.open_transport(&mut b, OpenOptions::new())
    };
    match r {
        Ok(o) => {
            assert_eq!(o.seq, v.full_seq(), "{}", v.name);
            Ok(b.body().to_vec())
        }
        Err(e) => {
            assert_eq!(b.body(), &before[..], "{}: body changed on error", v.name);
            Err(e)
        }
    }
}
