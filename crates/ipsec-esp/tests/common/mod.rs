//! Shared helpers for the integration tests: vector parsing and SA construction.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ipsec_core::{KeyMaterial, Spi};
use ipsec_crypto::suites::{self, EncrDesc, IntegDesc};
use ipsec_crypto::CryptoProvider;
use ipsec_esp::{EspInbound, EspOutbound};
use serde_json::Value;

/// The rustcrypto provider every test uses.
pub fn provider() -> &'static CryptoProvider {
    &ipsec_crypto_rustcrypto::PROVIDER
}

/// One esp.json record, decoded.
#[derive(Debug)]
pub struct Vector {
    pub name: String,
    pub mode: Option<String>,
    pub family: Option<String>,
    pub udp_encap: bool,
    pub spi: u32,
    pub seq: u32,
    pub esn_high: Option<u32>,
    pub encr: String,
    pub encr_key: Vec<u8>,
    pub salt: Vec<u8>,
    pub iv: Vec<u8>,
    pub integ: Option<String>,
    pub integ_key: Vec<u8>,
    pub icv_len: usize,
    pub plaintext_ip_packet: Option<Vec<u8>>,
    pub payload_data: Vec<u8>,
    pub pad_len: u8,
    pub next_header: u8,
    pub esp_pdu: Vec<u8>,
    pub esp_packet: Option<Vec<u8>>,
    pub reject: bool,
    pub verified: bool,
}

fn hex_opt(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| hex::decode(s).expect("hex"))
}

fn hex_or_empty(v: &Value) -> Vec<u8> {
    hex_opt(v).unwrap_or_default()
}

impl Vector {
    fn from_json(r: &Value) -> Self {
        Vector {
            name: r["name"].as_str().unwrap().to_owned(),
            mode: r["mode"].as_str().map(str::to_owned),
            family: r["family"].as_str().map(str::to_owned),
            udp_encap: r["udp_encap"].as_bool().unwrap_or(false),
            spi: u32::try_from(r["spi"].as_u64().unwrap()).unwrap(),
            seq: u32::try_from(r["seq"].as_u64().unwrap()).unwrap(),
            esn_high: r["esn_high"].as_u64().map(|v| u32::try_from(v).unwrap()),
            encr: r["encr"].as_str().unwrap().to_owned(),
            encr_key: hex_or_empty(&r["encr_key"]),
            salt: hex_or_empty(&r["salt"]),
            iv: hex_or_empty(&r["iv"]),
            integ: r["integ"].as_str().map(str::to_owned),
            integ_key: hex_or_empty(&r["integ_key"]),
            icv_len: usize::try_from(r["icv_len"].as_u64().unwrap()).unwrap(),
            plaintext_ip_packet: hex_opt(&r["plaintext_ip_packet"]),
            payload_data: hex_or_empty(&r["payload_data"]),
            pad_len: u8::try_from(r["pad_len"].as_u64().unwrap()).unwrap(),
            next_header: u8::try_from(r["next_header"].as_u64().unwrap()).unwrap(),
            esp_pdu: hex_or_empty(&r["esp_pdu"]),
            esp_packet: hex_opt(&r["esp_packet"]),
            reject: r["expect"].as_str() == Some("reject"),
            verified: r["verified"].as_bool().unwrap_or(false),
        }
    }

    /// The 64-bit sequence number.
    pub fn seq64(&self) -> u64 {
        (u64::from(self.esn_high.unwrap_or(0)) << 32) | u64::from(self.seq)
    }

    pub fn esn(&self) -> bool {
        self.esn_high.is_some()
    }

    /// The transforms, or why this record is skipped.
    pub fn transforms(&self) -> Result<(&'static EncrDesc, Option<&'static IntegDesc>), String> {
        let klen = self.encr_key.len();
        let encr: &'static EncrDesc = match (self.encr.as_str(), klen) {
            ("AES-GCM", 16) => &suites::AES_GCM_16_128,
            ("AES-GCM", 32) => &suites::AES_GCM_16_256,
            ("CHACHA20-POLY1305", 32) => &suites::CHACHA20_POLY1305,
            ("NULL-AES-GMAC", 16) => &suites::AES_GMAC_128,
            ("NULL-AES-GMAC", 32) => &suites::AES_GMAC_256,
            ("AES-CBC", 16) => &suites::AES_CBC_128,
            ("AES-CBC", 32) => &suites::AES_CBC_256,
            ("NULL", 0) => &suites::NULL,
            ("AES-CTR", 16) => &suites::AES_CTR_128,
            ("AES-CTR", 24) => &suites::AES_CTR_192,
            ("AES-CTR", 32) => &suites::AES_CTR_256,
            ("AES-CCM", k) => suites::ENCR
                .iter()
                .copied()
                .find(|d| d.name.contains("CCM") && d.key_len() == k && d.icv_len == self.icv_len)
                .ok_or_else(|| format!("encr AES-CCM with a {k}-byte key"))?,
            (e, k) => return Err(format!("encr {e} with a {k}-byte key")),
        };
        let integ: Option<&'static IntegDesc> = match self.integ.as_deref() {
            None => None,
            Some("HMAC-SHA1-96") => Some(&suites::HMAC_SHA1_96),
            Some("HMAC-SHA2-256-128") => Some(&suites::HMAC_SHA256_128),
            Some("HMAC-SHA2-384-192") => Some(&suites::HMAC_SHA384_192),
            Some("HMAC-SHA2-512-256") => Some(&suites::HMAC_SHA512_256),
            Some(i) => return Err(format!("integ {i}")),
        };
        Ok((encr, integ))
    }

    pub fn keys(&self) -> KeyMaterial {
        let mut e = self.encr_key.clone();
        e.extend_from_slice(&self.salt);
        KeyMaterial::new(&e, &self.integ_key).unwrap()
    }

    pub fn outbound(&self) -> EspOutbound {
        let (encr, integ) = self.transforms().unwrap();
        let mut o = EspOutbound::new(
            provider(),
            Spi(self.spi),
            encr,
            integ,
            &self.keys(),
            self.esn(),
        )
        .unwrap();
        o.set_next_seq(self.seq64()).unwrap();
        o.set_next_iv(&self.iv).unwrap();
        o
    }

    pub fn inbound(&self) -> EspInbound {
        let (encr, integ) = self.transforms().unwrap();
        let window = if integ.is_some() || encr.is_combined() {
            64
        } else {
            0
        };
        let mut i = EspInbound::new(
            provider(),
            Spi(self.spi),
            encr,
            integ,
            &self.keys(),
            self.esn(),
            window,
        )
        .unwrap();
        // Put the window just below this packet, so that ESN inference yields its
        // high bits and the replay check passes.
        let top = self.seq64() - 1;
        i.set_replay_window(ipsec_core::ReplayWindow::restore(64, window != 0, top).unwrap());
        i
    }
}

/// Every record of tests/vectors/esp.json.
pub fn vectors() -> Vec<Vector> {
    let text = include_str!("../vectors/esp.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(Vector::from_json)
        .collect()
}

/// A buffer with `head` bytes of headroom, then `body`, then `tail` bytes of tailroom.
pub fn framed(body: &[u8], head: usize, tail: usize) -> Vec<u8> {
    let mut v = vec![0xa5; head];
    v.extend_from_slice(body);
    v.resize(head + body.len() + tail, 0x5a);
    v
}
