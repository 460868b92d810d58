//! `ipsec decode`: decrypt and print the IPsec frames of a pcap or pcapng capture,
//! with keys from Wireshark key tables.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipsec::ah::AhInbound;
use ipsec::core::ip::walk::{self, Checks, IpVersion, Stop, WalkError, WalkErrorKind};
use ipsec::core::ip::Ipv4Header;
use ipsec::core::{IpProto, KeyMaterial, PacketBuf, Spi};
use ipsec::crypto::CryptoProvider;
use ipsec::esp::transport::TransportError;
use ipsec::esp::udp::{classify, Classified};
use ipsec::esp::{tunnel, EspInbound};
use serde_json::{json, Value};

use crate::capture::read_frames;
use crate::keyfile::{
    wireshark_ike_encr_name, wireshark_ike_integ_name, EspSaRow, IkeSaRow, KeyTables,
};
use ipsec::crypto::suites::{self, EncrDesc};
use ipsec::ike_wire::message::{emit_payloads, payloads_len};
use ipsec::ike_wire::{ExchangeType, Message, OpenError, PayloadType, SkKeys};

mod creds;

/// Replay window used when decoding: the largest, since captures may reorder.
const DECODE_WINDOW: u32 = 4096;

/// What the outer headers of a frame say.
struct Outer {
    src: IpAddr,
    dst: IpAddr,
    /// Bytes of IP header (with IPv6 extension headers) before the next protocol.
    header_len: usize,
    proto: IpProto,
}

/// Every protocol number but the IPv6 extension headers the walker steps over
/// (hop-by-hop, routing, fragment, destination options): as the targets of
/// [`Stop::At`], the walk ends at the first upper-layer header, whatever it is.
const UPPER_LAYER: [IpProto; 252] = upper_layer();

const fn upper_layer() -> [IpProto; 252] {
    let mut all = [IpProto(0); 252];
    let (mut n, mut i) = (0u8, 0usize);
    loop {
        if !IpProto(n).is_ipv6_extension() && i < all.len() {
            all[i] = IpProto(n);
            i += 1;
        }
        if n == u8::MAX {
            return all;
        }
        n += 1;
    }
}

/// Parses the outer IPv4/IPv6 header with the walker ESP and AH use, stepping over
/// IPv6 extension headers. The length fields are not checked: a capture's snap length
/// may have cut the frame, and what is there is still worth showing.
fn outer(ip: &[u8]) -> Result<Outer, Cow<'static, str>> {
    let checks = Checks::new().with_length_from_input(true);
    let version = walk::version(ip).map_err(|_| "not an IP packet")?;
    let l =
        walk::locate(ip, Stop::At(&UPPER_LAYER), checks).map_err(|e| outer_error(version, e))?;
    let addr = |at: usize, len: usize| ip.get(at..at + len).unwrap_or_default();
    let (src, dst) = match l.version {
        IpVersion::V4 => (
            <[u8; 4]>::try_from(addr(12, 4)).map(IpAddr::from),
            <[u8; 4]>::try_from(addr(16, 4)).map(IpAddr::from),
        ),
        IpVersion::V6 => (
            <[u8; 16]>::try_from(addr(8, 16)).map(IpAddr::from),
            <[u8; 16]>::try_from(addr(24, 16)).map(IpAddr::from),
        ),
    };
    match (src, dst) {
        (Ok(src), Ok(dst)) => Ok(Outer {
            src,
            dst,
            header_len: l.header_len,
            proto: l.proto,
        }),
        _ => Err("not an IP packet".into()),
    }
}

/// The walker's error in the words `ipsec decode` has always used for it; the
/// walker's own description for what it checks beyond them (the order of IPv6
/// extension headers).
fn outer_error(version: IpVersion, e: WalkError) -> Cow<'static, str> {
    let msg = match (version, e.kind, e.offset) {
        (_, WalkErrorKind::Fragment(IpVersion::V4), _) => "IPv4 fragment",
        (_, WalkErrorKind::Fragment(IpVersion::V6), _) => "IPv6 fragment",
        (IpVersion::V4, WalkErrorKind::Truncated { needed }, 0) if needed == Ipv4Header::LEN => {
            "truncated IPv4 header"
        }
        // IHL below 5, or a header longer than the packet.
        (IpVersion::V4, WalkErrorKind::BadValue("ihl") | WalkErrorKind::Truncated { .. }, 0) => {
            "bad IPv4 header length"
        }
        (IpVersion::V6, WalkErrorKind::Truncated { .. }, 0) => "truncated IPv6 header",
        (IpVersion::V6, WalkErrorKind::Truncated { .. }, _) => "truncated IPv6 extension header",
        _ => return e.to_string().into(),
    };
    msg.into()
}

/// One SA from the key tables. Wireshark's `esp_sa` rows do not say whether the SA
/// uses extended sequence numbers, so both variants are kept until a packet
/// authenticates under one of them.
struct DecodeSa {
    plain: EspInbound,
    esn: EspInbound,
    /// `Some(true)` once a packet authenticated with ESN, `Some(false)` without.
    uses_esn: Option<bool>,
}

/// An AH SA from the key tables (an `esp_sa` row with NULL encryption), with and
/// without ESN as for ESP.
struct DecodeAhSa {
    plain: AhInbound,
    esn: AhInbound,
    uses_esn: Option<bool>,
}

/// The inbound SAs built from the key tables, by SPI and destination (created on
/// first use).
struct Sas<'a> {
    keys: &'a KeyTables,
    provider: &'static CryptoProvider,
    esp: HashMap<(u32, IpAddr), Option<DecodeSa>>,
    ah: HashMap<(u32, IpAddr), Option<DecodeAhSa>>,
    /// The replay window decryption runs with (0: every frame is opened, duplicates
    /// too).
    window: u32,
}

impl Sas<'_> {
    /// The key table row for an SPI: one whose destination matches if there is one
    /// (SPIs are chosen by the receiver, so only SPI and destination identify an SA).
    fn row(&self, spi: u32, dst: IpAddr) -> Option<&EspSaRow> {
        let dst_s = dst.to_string();
        let rows = || self.keys.esp.iter().filter(|r| r.spi == spi);
        rows()
            .find(|r| r.dst == dst_s)
            .or_else(|| rows().find(|r| r.dst == "*"))
            .or_else(|| rows().next())
    }

    fn esp(&mut self, spi: u32, dst: IpAddr) -> Result<&mut DecodeSa, String> {
        if !self.esp.contains_key(&(spi, dst)) {
            let sa = match self.row(spi, dst) {
                None => None,
                Some(r) => {
                    let keys =
                        KeyMaterial::new(&r.encr_key, &r.integ_key).map_err(|e| e.to_string())?;
                    let window = if r.integ.is_some() || r.encr.is_combined() {
                        self.window
                    } else {
                        0
                    };
                    let mk = |esn| {
                        EspInbound::new(
                            self.provider,
                            Spi(spi),
                            r.encr,
                            r.integ,
                            &keys,
                            esn,
                            window,
                        )
                        .map_err(|e| format!("SA 0x{spi:08x}: {e}"))
                    };
                    Some(DecodeSa {
                        plain: mk(false)?,
                        esn: mk(true)?,
                        uses_esn: None,
                    })
                }
            };
            self.esp.insert((spi, dst), sa);
        }
        match self.esp.get_mut(&(spi, dst)) {
            Some(Some(sa)) => Ok(sa),
            _ => Err("unknown_spi".into()),
        }
    }

    /// The AH SA for an SPI: AH SAs are `esp_sa` rows with NULL encryption (Wireshark
    /// has no AH key table), so one key file serves both.
    fn ah(&mut self, spi: u32, dst: IpAddr) -> Result<&mut DecodeAhSa, String> {
        if !self.ah.contains_key(&(spi, dst)) {
            let dst_s = dst.to_string();
            let rows = || {
                self.keys.esp.iter().filter(|r| {
                    r.spi == spi
                        && r.encr.kind == ipsec::crypto::EncrKind::Null
                        && r.integ.is_some()
                })
            };
            let row = rows().find(|r| r.dst == dst_s).or_else(|| rows().next());
            let sa = match row {
                None => None,
                Some(r) => {
                    let integ = r.integ.ok_or("unknown_spi")?;
                    let keys = KeyMaterial::new(&[], &r.integ_key).map_err(|e| e.to_string())?;
                    let mk = |esn| {
                        AhInbound::new(self.provider, Spi(spi), integ, &keys, esn, self.window)
                            .map_err(|e| format!("SA 0x{spi:08x}: {e}"))
                    };
                    Some(DecodeAhSa {
                        plain: mk(false)?,
                        esn: mk(true)?,
                        uses_esn: None,
                    })
                }
            };
            self.ah.insert((spi, dst), sa);
        }
        match self.ah.get_mut(&(spi, dst)) {
            Some(Some(sa)) => Ok(sa),
            _ => Err("unknown_spi".into()),
        }
    }
}

/// How [`run`] decodes and prints.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// One JSON object per frame.
    pub json: bool,
    /// Leave the inner packet out of the JSON.
    pub brief: bool,
    /// Open every ESP frame, also duplicates and ones far behind (no replay window).
    pub no_replay_check: bool,
}

/// Decodes a capture.
pub fn run(
    keys: &[PathBuf],
    capture: &Path,
    opts: DecodeOptions,
    provider: &'static CryptoProvider,
) -> Result<(), String> {
    let json = opts.json;
    let mut tables = KeyTables::default();
    for k in keys {
        tables.load(k)?;
    }
    let frames = read_frames(capture)?;
    let mut sas = Sas {
        keys: &tables,
        provider,
        esp: HashMap::new(),
        ah: HashMap::new(),
        window: if opts.no_replay_check {
            0
        } else {
            DECODE_WINDOW
        },
    };
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        if crate::out::closed() {
            // Nobody reads the rest (`| head`).
            return Ok(());
        }
        let n = i + 1;
        let mut v = match &f.ip {
            Err(why) => json!({"frame": n, "proto": "other", "status": "not_ip", "detail": why}),
            Ok(ip) => frame(n, ip, &mut sas),
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("time".into(), json!(f.time.as_secs_f64()));
            if opts.brief {
                m.remove("inner");
                m.remove("summary");
            }
        }
        let key = format!(
            "{} {}",
            v["proto"].as_str().unwrap_or("?"),
            v["status"].as_str().unwrap_or("?")
        );
        *counts.entry(key).or_default() += 1;
        if json {
            outln!("{v}");
        } else {
            outln!("{}", text_line(&v));
        }
    }
    if !json {
        let mut c: Vec<_> = counts.into_iter().collect();
        c.sort();
        let summary: Vec<String> = c.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        outln!("{} frames; {}", frames.len(), summary.join(", "));
    }
    Ok(())
}

fn frame(n: usize, ip: &[u8], sas: &mut Sas<'_>) -> Value {
    let o = match outer(ip) {
        Ok(o) => o,
        Err(why) => {
            return json!({"frame": n, "proto": "other", "status": "malformed", "detail": why})
        }
    };
    let esp_at = match o.proto {
        IpProto::ESP => o.header_len,
        IpProto::UDP => {
            let Some(udp) = ip.get(o.header_len..o.header_len + 8) else {
                return json!({"frame": n, "proto": "other", "status": "malformed", "detail": "truncated UDP header"});
            };
            let sport = u16::from_be_bytes([udp[0], udp[1]]);
            let dport = u16::from_be_bytes([udp[2], udp[3]]);
            let payload = ip.get(o.header_len + 8..).unwrap_or(&[]);
            if sport == 500 || dport == 500 {
                return ike(n, payload, sas);
            }
            if sport != 4500 && dport != 4500 {
                // ESP-in-UDP on another port (a NAT's mapping, a test rig): recognised
                // when the datagram starts with the SPI of an SA we have keys for.
                let spi = payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if payload.len() >= 8
                    && spi.is_some_and(|spi| sas.keys.esp.iter().any(|r| r.spi == spi))
                {
                    return esp(n, ip, &o, o.header_len + 8, sas);
                }
                // IKE on another port: version 2.0 and a Length field equal to the
                // datagram (after an optional non-ESP marker).
                let m = payload.strip_prefix(&[0u8, 0, 0, 0][..]).unwrap_or(payload);
                if looks_like_ike(m) {
                    return ike(n, m, sas);
                }
                return json!({"frame": n, "proto": "other", "status": "ok", "detail": format!("UDP {sport} -> {dport}")});
            }
            match classify(payload) {
                Classified::Keepalive => {
                    return json!({"frame": n, "proto": "other", "status": "ok", "detail": "NAT keepalive"})
                }
                Classified::Ike(m) => return ike(n, m, sas),
                Classified::Malformed => {
                    return json!({"frame": n, "proto": "esp", "status": "malformed"})
                }
                Classified::Esp(_) => o.header_len + 8,
            }
        }
        IpProto::AH => return ah(n, ip, &o, sas),
        p => {
            return json!({"frame": n, "proto": "other", "status": "ok", "detail": format!("{} -> {} {p}", o.src, o.dst)})
        }
    };
    esp(n, ip, &o, esp_at, sas)
}

/// Verifies an AH packet and shows what it protects (RFC 4302): the inner packet in
/// tunnel mode, the original packet without the AH in transport mode.
fn ah(n: usize, ip: &[u8], o: &Outer, sas: &mut Sas<'_>) -> Value {
    let at = o.header_len;
    let Some(h) = ip.get(at..at + 12) else {
        return json!({"frame": n, "proto": "ah", "status": "malformed", "detail": "truncated AH"});
    };
    let next = IpProto(h[0]);
    let spi = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let seq = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let mut v = json!({"frame": n, "proto": "ah", "spi": format!("0x{spi:08x}"), "seq": seq,
                       "src": o.src.to_string(), "dst": o.dst.to_string()});
    let mut put = |k: &str, x: Value| {
        if let Some(m) = v.as_object_mut() {
            m.insert(k.into(), x);
        }
    };
    let sa = match sas.ah(spi, o.dst) {
        Ok(sa) => sa,
        Err(e) if e == "unknown_spi" => {
            match sas.keys.unusable.iter().find(|u| u.spi == spi) {
                Some(u) => {
                    put("status", json!("no_usable_key"));
                    put("detail", json!(u.algorithm));
                }
                None => put("status", json!("unknown_spi")),
            }
            return v;
        }
        Err(e) => {
            put("status", json!("bad_key"));
            put("detail", json!(e));
            return v;
        }
    };
    // The next header is in the clear: it says which mode to verify in.
    let tunnel = next == IpProto::IPV4 || next == IpProto::IPV6;
    let order: &[bool] = match sa.uses_esn {
        Some(true) => &[true],
        Some(false) => &[false],
        None => &[false, true],
    };
    let mut result = Err(ipsec::ah::OpenError::Integrity);
    let mut copy = Vec::new();
    let mut range = 0..0;
    for &esn in order {
        copy = ip.to_vec();
        let len = copy.len();
        let Ok(mut buf) = PacketBuf::new(&mut copy[..], 0, len) else {
            break;
        };
        let inbound = if esn { &mut sa.esn } else { &mut sa.plain };
        result = if tunnel {
            inbound.open_tunnel(&mut buf, ipsec::ah::OpenOptions::new())
        } else {
            inbound.open_transport(&mut buf, ipsec::ah::OpenOptions::new())
        };
        range = buf.body_range();
        match result {
            Ok(_) => {
                sa.uses_esn = Some(esn);
                break;
            }
            Err(ipsec::ah::OpenError::Integrity) => continue,
            Err(_) => break,
        }
    }
    let esn = sa.uses_esn == Some(true);
    match result {
        Ok(opened) => {
            let inner = copy.get(range).unwrap_or(&[]);
            put("status", json!("ok"));
            put("seq", json!(opened.seq));
            put("next_header", json!(opened.next_header.0));
            put("mode", json!(if tunnel { "tunnel" } else { "transport" }));
            put("esn", json!(esn));
            put("inner", json!(hex::encode(inner)));
            put("summary", json!(summary(inner)));
        }
        Err(e) => put("status", json!(e.reason())),
    }
    v
}

fn esp(n: usize, ip: &[u8], o: &Outer, at: usize, sas: &mut Sas<'_>) -> Value {
    let Some(hdr) = ip.get(at..at + 8) else {
        return json!({"frame": n, "proto": "esp", "status": "malformed", "detail": "truncated ESP header"});
    };
    let spi = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let seq = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    // The 8 bytes after the header: the whole explicit IV of the AEAD transforms (RFC
    // 4106 §3.1, RFC 7634 §2), the start of a CBC IV.
    let iv = ip.get(at + 8..at + 16).map(hex::encode).unwrap_or_default();
    let base = json!({"frame": n, "proto": "esp", "spi": format!("0x{spi:08x}"), "seq": seq,
                      "iv": iv, "src": o.src.to_string(), "dst": o.dst.to_string()});
    let with = |mut v: Value, extra: Value| {
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        v
    };
    let sa = match sas.esp(spi, o.dst) {
        Ok(sa) => sa,
        Err(e) if e == "unknown_spi" => {
            return match sas.keys.unusable.iter().find(|u| u.spi == spi) {
                Some(u) => with(
                    base,
                    json!({"status": "no_usable_key", "detail": u.algorithm}),
                ),
                None => with(base, json!({"status": "unknown_spi"})),
            };
        }
        Err(e) => return with(base, json!({"status": "bad_key", "detail": e})),
    };
    // Try without ESN, then with ESN, each on a fresh copy of the frame (a failed
    // open may leave the buffer scrambled); remember which one authenticated.
    let order: &[bool] = match sa.uses_esn {
        Some(true) => &[true],
        Some(false) => &[false],
        None => &[false, true],
    };
    let mut last = Err(TransportError::Open(ipsec::esp::OpenError::Integrity));
    let mut copy = Vec::new();
    for &esn in order {
        copy = ip.to_vec();
        let len = copy.len();
        let Ok(mut buf) = PacketBuf::new(&mut copy[..], 0, len) else {
            return with(base, json!({"status": "malformed"}));
        };
        let inbound = if esn { &mut sa.esn } else { &mut sa.plain };
        last = inbound
            .open_transport(&mut buf, ipsec::esp::OpenOptions::new())
            .map(|u| (u, buf.body_range()));
        match &last {
            Ok(_) => {
                sa.uses_esn = Some(esn);
                break;
            }
            Err(TransportError::Open(ipsec::esp::OpenError::Integrity)) => continue,
            Err(_) => break,
        }
    }
    match last {
        Ok((u, range)) => {
            let len = copy.len();
            let Ok(mut buf) = PacketBuf::new(&mut copy[..], 0, len) else {
                return with(base, json!({"status": "malformed"}));
            };
            if buf.set_body_range(range).is_err() {
                return with(base, json!({"status": "malformed"}));
            }
            let nh = u.opened.next_header;
            let mut mode = "transport";
            if nh == IpProto::IPV4 || nh == IpProto::IPV6 {
                mode = "tunnel";
                let tos = ip.get(1).copied().unwrap_or(0);
                if buf.pull_front(o.header_len).is_err()
                    || tunnel::finish(&mut buf, nh, tos).is_err()
                {
                    return with(
                        base,
                        json!({"status": "malformed", "next_header": nh.0, "detail": "inner packet"}),
                    );
                }
            }
            let inner = buf.body();
            with(
                base,
                json!({"status": "ok", "seq": u.opened.seq, "next_header": nh.0, "mode": mode,
                              "esn": sa.uses_esn == Some(true),
                              "inner": hex::encode(inner), "summary": summary(inner)}),
            )
        }
        Err(TransportError::Open(e)) => with(base, json!({"status": e.reason()})),
        Err(e) => with(
            base,
            json!({"status": "malformed", "detail": e.to_string()}),
        ),
    }
}

/// The SK keys of one IKE SA from an `ikev2_decryption_table` row: the transforms
/// whose Wireshark names the row carries (see [`wireshark_ike_encr_name`]).
fn ike_keys(row: &IkeSaRow, p: &CryptoProvider) -> Result<SkKeys, String> {
    let bad = |what: &str| format!("{what} \"{}\" / \"{}\" not supported", row.encr, row.integ);
    let named = |n: Option<&str>| n.is_some_and(|n| n.eq_ignore_ascii_case(row.encr.trim()));
    let d: &EncrDesc = suites::ENCR
        .iter()
        .copied()
        .find(|d| named(wireshark_ike_encr_name(d)))
        .ok_or_else(|| bad("encryption"))?;
    if d.is_combined() {
        let alg = p.aead_for(d).ok_or_else(|| bad("encryption"))?;
        return SkKeys::aead(alg, &row.sk_ei, &row.sk_er).map_err(|e| e.to_string());
    }
    let cipher = p
        .cipher(d.id, d.key_len())
        .ok_or_else(|| bad("encryption"))?;
    let i = row.integ.trim();
    let integ = suites::INTEG
        .iter()
        .copied()
        .find(|x| wireshark_ike_integ_name(Some(x)).is_some_and(|n| n.eq_ignore_ascii_case(i)))
        .and_then(|x| p.integ(x.id))
        .ok_or_else(|| bad("integrity"))?;
    SkKeys::cipher_integ(
        cipher, integ, &row.sk_ei, &row.sk_ai, &row.sk_er, &row.sk_ar,
    )
    .map_err(|e| e.to_string())
}

/// Decodes one IKE message: header, outer payload chain, and with keys the payloads
/// inside SK. `reemit` says whether our codec writes the message back byte for byte.
fn ike(n: usize, msg: &[u8], sas: &Sas<'_>) -> Value {
    let mut v = json!({"frame": n, "proto": "ike"});
    let put = |v: &mut Value, k: &str, x: Value| {
        if let Some(m) = v.as_object_mut() {
            m.insert(k.into(), x);
        }
    };
    let m = match Message::parse(msg) {
        Ok(m) => m,
        Err(e) => {
            put(&mut v, "status", json!("malformed"));
            put(&mut v, "detail", json!(e.to_string()));
            return v;
        }
    };
    let h = &m.header;
    put(&mut v, "exchange", json!(h.exchange_type.0));
    put(&mut v, "message_id", json!(h.message_id));
    put(&mut v, "response", json!(h.flags.is_response()));
    put(&mut v, "initiator", json!(h.flags.is_initiator()));
    put(&mut v, "spi_i", json!(h.spi_i.to_string()));
    put(&mut v, "spi_r", json!(h.spi_r.to_string()));
    put(
        &mut v,
        "payloads",
        json!(m
            .payloads
            .iter()
            .map(|p| p.payload_type().0)
            .collect::<Vec<_>>()),
    );
    put(&mut v, "reemit", json!(m.to_vec() == msg));
    if m.sk().is_none() {
        let frag = m
            .payloads
            .iter()
            .any(|p| p.payload_type() == PayloadType::SKF);
        put(
            &mut v,
            "status",
            json!(if frag { "fragment" } else { "ok" }),
        );
        return v;
    }
    // An IKE SA with additional key exchanges (RFC 9370) has a row per stage of its
    // keys, IKE_SA_INIT's first: try each, in order, until one opens the message.
    let rows: Vec<&IkeSaRow> = sas
        .keys
        .ike
        .iter()
        .filter(|r| r.spi_i == h.spi_i.0 && r.spi_r == h.spi_r.0)
        .collect();
    if rows.is_empty() {
        put(&mut v, "status", json!("no_keys"));
        return v;
    }
    let mut failure: Option<(&str, String)> = None;
    for (stage, row) in rows.iter().enumerate() {
        let keys = match ike_keys(row, sas.provider) {
            Ok(k) => k,
            Err(e) => {
                failure.get_or_insert(("bad_key", e));
                continue;
            }
        };
        let mut copy = msg.to_vec();
        match keys.open(&mut copy) {
            Ok(opened) => {
                if rows.len() > 1 {
                    put(&mut v, "key_stage", json!(stage));
                }
                let inner: Result<Vec<_>, _> = opened
                    .payloads()
                    .map(|r| r.map(|p| p.payload_type.0))
                    .collect();
                match (inner, opened.parse_payloads()) {
                    (Ok(types), Ok(parsed)) => {
                        let mut re = vec![0u8; payloads_len(&parsed)];
                        emit_payloads(&parsed, &mut re);
                        put(&mut v, "inner", json!(types));
                        put(&mut v, "inner_reemit", json!(re == opened.inner));
                        creds::credentials(&mut v, &parsed);
                        put(&mut v, "status", json!("ok"));
                    }
                    (_, Err(e)) | (Err(e), _) => {
                        put(&mut v, "status", json!("malformed"));
                        put(&mut v, "detail", json!(format!("inside SK: {e}")));
                    }
                }
                return v;
            }
            Err(OpenError::Integrity) => {
                failure = Some(("integrity", String::new()));
            }
            Err(e) => {
                failure = Some(("malformed", e.to_string()));
            }
        }
    }
    let (status, detail) = failure.unwrap_or(("integrity", String::new()));
    put(&mut v, "status", json!(status));
    if !detail.is_empty() {
        put(&mut v, "detail", json!(detail));
    }
    v
}

/// A one-line description of an IP packet.
fn summary(p: &[u8]) -> String {
    let Ok(o) = outer(p) else {
        return format!("{} bytes (not IP)", p.len());
    };
    let l4 = p.get(o.header_len..).unwrap_or(&[]);
    let mut s = format!("{} -> {} {}", o.src, o.dst, o.proto);
    match o.proto {
        IpProto::UDP | IpProto::TCP if l4.len() >= 4 => {
            let _ = write!(
                s,
                " {} -> {}",
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]])
            );
        }
        IpProto::ICMP | IpProto::ICMPV6 if !l4.is_empty() => {
            let what = match (o.proto, l4[0]) {
                (IpProto::ICMP, 8) | (IpProto::ICMPV6, 128) => "echo request".to_string(),
                (IpProto::ICMP, 0) | (IpProto::ICMPV6, 129) => "echo reply".to_string(),
                (_, t) => format!("type {t}"),
            };
            let _ = write!(s, " {what}");
        }
        _ => {}
    }
    let _ = write!(s, ", {} bytes", p.len());
    s
}

fn text_line(v: &Value) -> String {
    let n = v["frame"].as_u64().unwrap_or(0);
    let proto = v["proto"].as_str().unwrap_or("?");
    let status = v["status"].as_str().unwrap_or("?");
    match proto {
        "esp" => {
            let spi = v["spi"].as_str().unwrap_or("-");
            let seq = v["seq"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            if status == "ok" {
                format!(
                    "{n:>6} ESP spi {spi} seq {seq:>6} ok {}: {}",
                    v["mode"].as_str().unwrap_or(""),
                    v["summary"].as_str().unwrap_or("")
                )
            } else {
                let d = v["detail"]
                    .as_str()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                if status == "no_usable_key" {
                    format!("{n:>6} ESP spi {spi} seq {seq:>6} no usable key{d}")
                } else {
                    format!("{n:>6} ESP spi {spi} seq {seq:>6} DROP {status}{d}")
                }
            }
        }
        "ah" => {
            let spi = v["spi"].as_str().unwrap_or("-");
            let seq = v["seq"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            if status == "ok" {
                format!(
                    "{n:>6} AH  spi {spi} seq {seq:>6} ok {}: {}",
                    v["mode"].as_str().unwrap_or(""),
                    v["summary"].as_str().unwrap_or("")
                )
            } else {
                match v["detail"].as_str() {
                    Some(d) if status == "no_usable_key" => {
                        format!("{n:>6} AH  spi {spi} seq {seq:>6} no usable key ({d})")
                    }
                    _ => format!("{n:>6} AH  spi {spi} seq {seq:>6} DROP {status}"),
                }
            }
        }
        "ike" => {
            let names = |k: &str| -> String {
                v[k].as_array()
                    .map(|a| {
                        a.iter()
                            .map(|t| payload_name(t.as_u64().unwrap_or(0)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            };
            let inner = if v["inner"].is_array() {
                format!(" {{ {} }}", names("inner"))
            } else {
                String::new()
            };
            let status = if status == "ok" {
                String::new()
            } else {
                format!(" [{status}]")
            };
            let creds = creds::text(v);
            format!(
                "{n:>6} IKE {} {} #{} {}{inner}{status}{creds}",
                exchange_name(v["exchange"].as_u64().unwrap_or(0)),
                if v["response"].as_bool() == Some(true) {
                    "response"
                } else {
                    "request"
                },
                v["message_id"],
                names("payloads"),
            )
        }
        _ => format!(
            "{n:>6} {} {status} {}",
            proto.to_uppercase(),
            v["detail"].as_str().unwrap_or("")
        ),
    }
}

/// An exchange type by its registry name ([`ExchangeType::name`]), or its number.
pub(crate) fn exchange_name(t: u64) -> String {
    u8::try_from(t)
        .ok()
        .and_then(|t| ExchangeType(t).name())
        .map_or_else(|| format!("exchange {t}"), str::to_string)
}

/// A payload type in RFC 7296's notation where that differs from its registry name
/// ([`PayloadType::name`]: `IDI`, `NONCE`, `NOTIFY`, ...), the registry name otherwise,
/// or its number.
fn payload_name(t: u64) -> String {
    let name = u8::try_from(t).ok().map(PayloadType).and_then(|p| {
        Some(match p {
            PayloadType::IDI => "IDi",
            PayloadType::IDR => "IDr",
            PayloadType::NONCE => "Ni/Nr",
            PayloadType::NOTIFY => "N",
            PayloadType::DELETE => "D",
            PayloadType::VENDOR_ID => "V",
            PayloadType::TSI => "TSi",
            PayloadType::TSR => "TSr",
            _ => p.name()?,
        })
    });
    name.map_or_else(|| format!("#{t}"), str::to_string)
}

/// An IKEv2 header: major version 2 and a Length field equal to the message length.
fn looks_like_ike(m: &[u8]) -> bool {
    match m.get(..28) {
        Some(h) => {
            h[17] >> 4 == 2 && u32::from_be_bytes([h[24], h[25], h[26], h[27]]) as usize == m.len()
        }
        None => false,
    }
}
