//! Wireshark's key tables: `esp_sa` (ESP SAs, also written by strongSwan's save-keys
//! plugin) and `ikev2_decryption_table` (IKE SA keys).
//!
//! Both are UAT files: one record per line, comma-separated fields, strings in double
//! quotes, `#` comments. An `esp_sa` row is
//! `"IPv4","src","dst","0xSPI","encryption","0xKEY","authentication","0xKEY"`, where
//! AEAD keys include their salt (4 bytes, 3 for AES-CCM) and AES-CTR keys their
//! 4-byte nonce (RFC 3686 §5.1), as Wireshark and the Linux kernel spell them.
//!
//! Wireshark (as of 4.0) has no ESP AES-CCM: its rows are named
//! `AES-CCM with N octet ICV [RFC4309]`, in the pattern of Wireshark's AES-GCM names,
//! and read by `ipsec decode` only.

use std::fs;
use std::path::Path;

use ipsec::crypto::suites::{self, EncrDesc, EncrKind, IntegDesc};
use ipsec::ike::IkeSaKeys;

/// One ESP SA from an `esp_sa` table.
pub struct EspSaRow {
    /// Destination address ("*" for any).
    pub dst: String,
    /// The SPI.
    pub spi: u32,
    /// The encryption transform.
    pub encr: &'static EncrDesc,
    /// Encryption key with salt.
    pub encr_key: Vec<u8>,
    /// The integrity transform, if any.
    pub integ: Option<&'static IntegDesc>,
    /// Integrity key.
    pub integ_key: Vec<u8>,
}

/// One IKE SA from an `ikev2_decryption_table`.
pub struct IkeSaRow {
    /// Initiator SPI.
    pub spi_i: [u8; 8],
    /// Responder SPI.
    pub spi_r: [u8; 8],
    /// SK_ei.
    pub sk_ei: Vec<u8>,
    /// SK_er.
    pub sk_er: Vec<u8>,
    /// Wireshark's name of the encryption algorithm.
    pub encr: String,
    /// SK_ai.
    pub sk_ai: Vec<u8>,
    /// SK_ar.
    pub sk_ar: Vec<u8>,
    /// Wireshark's name of the integrity algorithm.
    pub integ: String,
}

/// An `esp_sa` row that names an algorithm this build does not have. Wireshark skips
/// such rows; we keep their SPI so that the frames they would decrypt are reported as
/// "no usable key (ALGORITHM)" while the rest of the capture decodes.
pub struct UnusableRow {
    /// The SPI.
    pub spi: u32,
    /// The algorithm named in the row (encryption or authentication).
    pub algorithm: String,
}

/// All keys read from one or more key files.
#[derive(Default)]
pub struct KeyTables {
    /// ESP SAs.
    pub esp: Vec<EspSaRow>,
    /// `esp_sa` rows with an algorithm we lack.
    pub unusable: Vec<UnusableRow>,
    /// IKE SAs.
    pub ike: Vec<IkeSaRow>,
}

/// Wireshark's name of an ESP encryption transform.
pub fn wireshark_encr_name(d: &EncrDesc) -> &'static str {
    use ipsec::crypto::EncrId;
    match d.kind {
        EncrKind::Null => "NULL",
        EncrKind::Cbc => "AES-CBC [RFC3602]",
        EncrKind::Ctr => "AES-CTR [RFC3686]",
        EncrKind::Gmac => "NULL_AUTH_AES_GMAC [RFC4543]",
        EncrKind::Aead if d.id == EncrId::ENCR_CHACHA20_POLY1305 => {
            "ChaCha20 with Poly1305 [RFC7634]"
        }
        EncrKind::Aead if d.id == EncrId::ENCR_AES_CCM_8 => "AES-CCM with 8 octet ICV [RFC4309]",
        EncrKind::Aead if d.id == EncrId::ENCR_AES_CCM_12 => "AES-CCM with 12 octet ICV [RFC4309]",
        EncrKind::Aead if d.id == EncrId::ENCR_AES_CCM_16 => "AES-CCM with 16 octet ICV [RFC4309]",
        EncrKind::Aead => "AES-GCM with 16 octet ICV [RFC4106]",
    }
}

/// Wireshark's name of an ESP integrity transform.
pub fn wireshark_integ_name(d: Option<&IntegDesc>) -> &'static str {
    match d.map(|d| d.icv_len) {
        None => "NULL",
        Some(12) => "HMAC-SHA-1-96 [RFC2404]",
        Some(16) => "HMAC-SHA-256-128 [RFC4868]",
        Some(24) => "HMAC-SHA-384-192 [RFC4868]",
        Some(_) => "HMAC-SHA-512-256 [RFC4868]",
    }
}

/// How the errors for an algorithm name we do not know begin.
const UNSUPPORTED: &str = "unsupported";

fn encr_from_name(name: &str, keymat_len: usize) -> Result<&'static EncrDesc, String> {
    let n = name.to_ascii_lowercase();
    let candidates: &[&'static EncrDesc] = if n == "null" {
        &[&suites::NULL]
    } else if n.contains("gmac") {
        &[&suites::AES_GMAC_128, &suites::AES_GMAC_256]
    } else if n.contains("chacha20") {
        &[&suites::CHACHA20_POLY1305]
    } else if n.starts_with("aes-gcm") && n.contains("16 octet") {
        &[&suites::AES_GCM_16_128, &suites::AES_GCM_16_256]
    } else if n.starts_with("aes-cbc") {
        &[&suites::AES_CBC_128, &suites::AES_CBC_256]
    } else if n.starts_with("aes-ctr") {
        &[
            &suites::AES_CTR_128,
            &suites::AES_CTR_192,
            &suites::AES_CTR_256,
        ]
    } else if n.starts_with("aes-ccm") && n.contains(" 8 octet") {
        &[
            &suites::AES_CCM_8_128,
            &suites::AES_CCM_8_192,
            &suites::AES_CCM_8_256,
        ]
    } else if n.starts_with("aes-ccm") && n.contains(" 12 octet") {
        &[
            &suites::AES_CCM_12_128,
            &suites::AES_CCM_12_192,
            &suites::AES_CCM_12_256,
        ]
    } else if n.starts_with("aes-ccm") && n.contains(" 16 octet") {
        &[
            &suites::AES_CCM_16_128,
            &suites::AES_CCM_16_192,
            &suites::AES_CCM_16_256,
        ]
    } else {
        return Err(format!("{UNSUPPORTED} encryption algorithm \"{name}\""));
    };
    candidates
        .iter()
        .copied()
        .find(|d| d.keymat_len() == keymat_len)
        .ok_or_else(|| format!("\"{name}\" with a {keymat_len}-byte key is not supported"))
}

fn integ_from_name(name: &str) -> Result<Option<&'static IntegDesc>, String> {
    let n = name.to_ascii_uppercase();
    Ok(Some(match n.as_str() {
        "NULL" => return Ok(None),
        _ if n.starts_with("HMAC-SHA-1-96") => &suites::HMAC_SHA1_96,
        _ if n.starts_with("HMAC-SHA-256-128") => &suites::HMAC_SHA256_128,
        _ if n.starts_with("HMAC-SHA-384-192") => &suites::HMAC_SHA384_192,
        _ if n.starts_with("HMAC-SHA-512-256") => &suites::HMAC_SHA512_256,
        _ => return Err(format!("{UNSUPPORTED} authentication algorithm \"{name}\"")),
    }))
}

/// Splits one UAT line into its fields.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out.into_iter().map(|s| s.trim().to_string()).collect())
}

fn hex_field(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).map_err(|e| format!("bad hex \"{s}\": {e}"))
}

fn spi8(s: &str) -> Result<[u8; 8], String> {
    let v = hex_field(s)?;
    v.try_into()
        .map_err(|_| format!("IKE SPI \"{s}\" is not 8 bytes"))
}

impl KeyTables {
    /// Reads `path`: a key table file (recognised by its content) or a directory
    /// holding `esp_sa` and/or `ikev2_decryption_table`.
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        if path.is_dir() {
            let mut found = false;
            for name in ["esp_sa", "ikev2_decryption_table"] {
                let p = path.join(name);
                if p.is_file() {
                    self.load_file(&p)?;
                    found = true;
                }
            }
            if !found {
                return Err(format!(
                    "{}: no esp_sa or ikev2_decryption_table in it",
                    path.display()
                ));
            }
            return Ok(());
        }
        self.load_file(path)
    }

    fn load_file(&mut self, path: &Path) -> Result<(), String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.parse(&text)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a key table of either kind.
    pub fn parse(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f = fields(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let first = f.first().map(String::as_str).unwrap_or("");
            let r = if matches!(first, "IPv4" | "IPv6" | "Any") {
                self.esp_row(&f)
            } else if first.len() == 16 && first.chars().all(|c| c.is_ascii_hexdigit()) {
                self.ike_row(&f)
            } else {
                Err("neither an esp_sa nor an ikev2_decryption_table record".into())
            };
            r.map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(())
    }

    fn esp_row(&mut self, f: &[String]) -> Result<(), String> {
        if f.len() < 8 {
            return Err(format!(
                "esp_sa record has {} fields, expected 8 or more",
                f.len()
            ));
        }
        let spi_s = f[3].trim();
        let spi = u32::from_str_radix(spi_s.trim_start_matches("0x").trim_start_matches("0X"), 16)
            .map_err(|_| format!("bad SPI \"{spi_s}\""))?;
        let encr_key = hex_field(&f[5])?;
        let integ_key = hex_field(&f[7])?;
        let (encr, integ) = match (
            encr_from_name(&f[4], encr_key.len()),
            integ_from_name(&f[6]),
        ) {
            (Ok(e), Ok(i)) => (e, i),
            (Err(e), _) | (_, Err(e)) if e.starts_with(UNSUPPORTED) => {
                let algorithm = if e.contains("encryption") {
                    &f[4]
                } else {
                    &f[6]
                };
                self.unusable.push(UnusableRow {
                    spi,
                    algorithm: algorithm.clone(),
                });
                return Ok(());
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        if let Some(i) = integ {
            if integ_key.len() != i.key_len {
                return Err(format!(
                    "{} needs a {}-byte key, got {}",
                    i.name,
                    i.key_len,
                    integ_key.len()
                ));
            }
        }
        self.esp.push(EspSaRow {
            dst: f[2].clone(),
            spi,
            encr,
            encr_key,
            integ,
            integ_key,
        });
        Ok(())
    }

    fn ike_row(&mut self, f: &[String]) -> Result<(), String> {
        if f.len() < 8 {
            return Err(format!(
                "ikev2_decryption_table record has {} fields, expected 8",
                f.len()
            ));
        }
        self.ike.push(IkeSaRow {
            spi_i: spi8(&f[0])?,
            spi_r: spi8(&f[1])?,
            sk_ei: hex_field(&f[2])?,
            sk_er: hex_field(&f[3])?,
            encr: f[4].clone(),
            sk_ai: hex_field(&f[5])?,
            sk_ar: hex_field(&f[6])?,
            integ: f[7].clone(),
        });
        Ok(())
    }
}

/// Formats one `esp_sa` record.
pub fn esp_sa_line(
    src: &str,
    dst: &str,
    spi: u32,
    encr: &EncrDesc,
    encr_key: &[u8],
    integ: Option<&IntegDesc>,
    integ_key: &[u8],
) -> String {
    let fam = if src.contains(':') { "IPv6" } else { "IPv4" };
    let ik = if integ.is_some() {
        format!("0x{}", hex::encode(integ_key))
    } else {
        String::new()
    };
    format!(
        "\"{fam}\",\"{src}\",\"{dst}\",\"0x{spi:08x}\",\"{}\",\"0x{}\",\"{}\",\"{ik}\"",
        wireshark_encr_name(encr),
        hex::encode(encr_key),
        wireshark_integ_name(integ),
    )
}

/// Wireshark's (and strongSwan save-keys') name of an IKEv2 encryption transform in
/// `ikev2_decryption_table`, if Wireshark has one.
pub fn wireshark_ike_encr_name(d: &EncrDesc) -> Option<&'static str> {
    use ipsec::crypto::EncrId;
    Some(match (d.id, d.key_bits) {
        (EncrId::ENCR_AES_CBC, 128) => "AES-CBC-128 [RFC3602]",
        (EncrId::ENCR_AES_CBC, 192) => "AES-CBC-192 [RFC3602]",
        (EncrId::ENCR_AES_CBC, 256) => "AES-CBC-256 [RFC3602]",
        (EncrId::ENCR_AES_GCM_16, 128) => "AES-GCM-128 with 16 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_GCM_16, 192) => "AES-GCM-192 with 16 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_GCM_16, 256) => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CTR, 128) => "AES-CTR-128 [RFC5930]",
        (EncrId::ENCR_AES_CTR, 192) => "AES-CTR-192 [RFC5930]",
        (EncrId::ENCR_AES_CTR, 256) => "AES-CTR-256 [RFC5930]",
        (EncrId::ENCR_AES_CCM_8, 128) => "AES-CCM-128 with 8 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_8, 192) => "AES-CCM-192 with 8 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_8, 256) => "AES-CCM-256 with 8 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_12, 128) => "AES-CCM-128 with 12 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_12, 192) => "AES-CCM-192 with 12 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_12, 256) => "AES-CCM-256 with 12 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_16, 128) => "AES-CCM-128 with 16 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_16, 192) => "AES-CCM-192 with 16 octet ICV [RFC5282]",
        (EncrId::ENCR_AES_CCM_16, 256) => "AES-CCM-256 with 16 octet ICV [RFC5282]",
        // Not in Wireshark 4.0's list; newer releases and our decoder read this name.
        (EncrId::ENCR_CHACHA20_POLY1305, _) => "ChaCha20-Poly1305 [RFC7634]",
        _ => return None,
    })
}

/// Wireshark's name of an IKEv2 integrity transform (`None` = AEAD, "NONE").
pub fn wireshark_ike_integ_name(d: Option<&IntegDesc>) -> Option<&'static str> {
    use ipsec::crypto::IntegId;
    let Some(d) = d else {
        return Some("NONE [RFC4306]");
    };
    Some(match d.id {
        IntegId::AUTH_HMAC_SHA1_96 => "HMAC_SHA1_96 [RFC2404]",
        IntegId::AUTH_HMAC_SHA2_256_128 => "HMAC_SHA2_256_128 [RFC4868]",
        IntegId::AUTH_HMAC_SHA2_384_192 => "HMAC_SHA2_384_192 [RFC4868]",
        IntegId::AUTH_HMAC_SHA2_512_256 => "HMAC_SHA2_512_256 [RFC4868]",
        _ => return None,
    })
}

/// Formats one `ikev2_decryption_table` record exactly as strongSwan's save-keys
/// plugin does (`%.16x,%.16x,%+B,%+B,"%s",%+B,%+B,"%s"`): SPIi, SPIr, SK_ei, SK_er,
/// encryption, SK_ai, SK_ar, integrity; hex without `0x`, AEAD keys with their salt,
/// empty integrity keys for AEAD. Errors name a transform Wireshark has no name for.
pub fn ikev2_line(k: &IkeSaKeys) -> Result<String, String> {
    let encr = wireshark_ike_encr_name(k.encr)
        .ok_or_else(|| format!("no Wireshark name for IKE encryption {}", k.encr.token))?;
    let integ = wireshark_ike_integ_name(k.integ).ok_or_else(|| {
        format!(
            "no Wireshark name for IKE integrity {}",
            k.integ.map_or("?", |i| i.token)
        )
    })?;
    Ok(format!(
        "{},{},{},{},\"{encr}\",{},{},\"{integ}\"",
        hex::encode(k.spi_i.0),
        hex::encode(k.spi_r.0),
        hex::encode(k.sk_ei.expose()),
        hex::encode(k.sk_er.expose()),
        hex::encode(k.sk_ai.expose()),
        hex::encode(k.sk_ar.expose()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strongswan_rows() {
        let text = "# This file is automatically generated, DO NOT MODIFY.\n\
            \"IPv4\",\"198.18.0.2\",\"198.18.0.1\",\"0xc1a2b3c4\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x000102030405060708090a0b0c0d0e0f10111213\",\"NULL\",\"\"\n\
            \"IPv4\",\"198.18.0.1\",\"198.18.0.2\",\"0x00001234\",\"AES-CBC [RFC3602]\",\"0x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\",\"HMAC-SHA-384-192 [RFC4868]\",\"0x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\"\n\
            0123456789abcdef,fedcba9876543210,00,11,\"AES-GCM-128 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"\n";
        let mut k = KeyTables::default();
        k.parse(text).unwrap();
        assert_eq!(k.esp.len(), 2);
        assert_eq!(k.esp[0].spi, 0xc1a2b3c4);
        assert_eq!(k.esp[0].encr, &suites::AES_GCM_16_128);
        assert!(k.esp[0].integ.is_none());
        assert_eq!(k.esp[1].encr, &suites::AES_CBC_256);
        assert_eq!(k.esp[1].integ, Some(&suites::HMAC_SHA384_192));
        assert_eq!(k.ike.len(), 1);
        assert_eq!(
            k.ike[0].spi_r,
            [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]
        );
    }

    /// Every ESP and IKE encryption transform with a name reads back as itself, with
    /// its key material (AES-CTR's nonce and AES-CCM's 3-byte salt included).
    #[test]
    fn every_named_transform_reads_back() {
        for d in suites::ENCR {
            let integ = (!d.is_combined()).then_some(&suites::HMAC_SHA256_128);
            let ik = vec![9; integ.map_or(0, |i| i.key_len)];
            let line = esp_sa_line(
                "192.0.2.1",
                "192.0.2.2",
                7,
                d,
                &vec![5; d.keymat_len()],
                integ,
                &ik,
            );
            let mut k = KeyTables::default();
            k.parse(&line).unwrap();
            assert_eq!(k.esp.len(), 1, "{}: {line}", d.name);
            assert_eq!(k.esp[0].encr, *d, "{}", d.name);
            if let Some(n) = wireshark_ike_encr_name(d) {
                assert!(
                    n.contains(&d.key_bits.to_string()) || !d.key_len_attr,
                    "{n}"
                );
            }
        }
        for n in [
            "AES-CTR-192 [RFC5930]",
            "AES-CCM-256 with 12 octet ICV [RFC5282]",
        ] {
            assert!(suites::ENCR
                .iter()
                .any(|d| wireshark_ike_encr_name(d) == Some(n)));
        }
    }

    #[test]
    fn roundtrips_our_lines() {
        let line = esp_sa_line(
            "127.0.0.1",
            "127.0.0.2",
            0x1000,
            &suites::AES_GCM_16_256,
            &[7; 36],
            None,
            &[],
        );
        let mut k = KeyTables::default();
        k.parse(&line).unwrap();
        assert_eq!(k.esp[0].encr, &suites::AES_GCM_16_256);
        assert_eq!(k.esp[0].encr_key, vec![7; 36]);
    }

    #[test]
    fn ike_names_are_the_ones_strongswan_writes() {
        let encr = [
            &suites::AES_GCM_16_128,
            &suites::AES_CBC_256,
            &suites::CHACHA20_POLY1305,
        ];
        let integ = [None, Some(&suites::HMAC_SHA384_192)];
        for (set, (e, i)) in ["gcm", "cbc", "chacha"]
            .into_iter()
            .zip([(0, 0), (1, 1), (2, 0)])
        {
            let path = format!(
                "{}/../../testdata/strongswan/{set}.keys/ikev2_decryption_table",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut k = KeyTables::default();
            k.parse(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert!(!k.ike.is_empty());
            for row in &k.ike {
                assert_eq!(Some(row.encr.as_str()), wireshark_ike_encr_name(encr[e]));
                assert_eq!(Some(row.integ.as_str()), wireshark_ike_integ_name(integ[i]));
            }
        }
        assert_eq!(
            wireshark_ike_integ_name(Some(&suites::HMAC_SHA1_96)),
            Some("HMAC_SHA1_96 [RFC2404]")
        );
        assert_eq!(wireshark_ike_encr_name(&suites::AES_GMAC_128), None);
    }

    #[test]
    fn rows_with_algorithms_we_lack_are_kept_aside() {
        let mut k = KeyTables::default();
        k.parse("\"IPv4\",\"a\",\"b\",\"0x1\",\"TripleDES-CBC [RFC2451]\",\"0x00\",\"NULL\",\"\"")
            .unwrap();
        k.parse("\"IPv4\",\"a\",\"b\",\"0x2\",\"NULL\",\"\",\"MAC-X\",\"0x00\"")
            .unwrap();
        assert!(k.esp.is_empty());
        assert_eq!(k.unusable.len(), 2);
        assert_eq!(k.unusable[0].spi, 1);
        assert_eq!(k.unusable[0].algorithm, "TripleDES-CBC [RFC2451]");
        assert_eq!(k.unusable[1].algorithm, "MAC-X");
    }

    #[test]
    fn errors_name_the_problem() {
        let mut k = KeyTables::default();
        // A known algorithm with a key of the wrong length is an error, not skipped.
        let e = k
            .parse("\"IPv4\",\"a\",\"b\",\"0x1\",\"AES-CBC [RFC3602]\",\"0x00\",\"NULL\",\"\"")
            .unwrap_err();
        assert!(e.contains("-byte key is not supported"), "{e}");
        let e = k.parse("garbage").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
