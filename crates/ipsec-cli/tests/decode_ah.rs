//! `ipsec decode` on AH packets that we did not make: the ODP/DPDK test vectors and the
//! Scapy-made vectors of the AH crate. Each packet goes into a capture of its own (they
//! share SPIs and sequence numbers), keyed by an `esp_sa` row with NULL encryption, as
//! Wireshark users keep AH keys. Skipped: AES-GMAC (the `esp_sa` table has no AH GMAC
//! entry) and ESN vectors whose high bits are not 0 (a decoder that sees one packet has
//! no window to infer them from).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use serde_json::Value;

fn ws_integ(name: &str) -> Option<&'static str> {
    Some(match name {
        "HMAC-SHA1-96" => "HMAC-SHA-1-96 [RFC2404]",
        "HMAC-SHA2-256-128" => "HMAC-SHA-256-128 [RFC4868]",
        "HMAC-SHA2-384-192" => "HMAC-SHA-384-192 [RFC4868]",
        "HMAC-SHA2-512-256" => "HMAC-SHA-512-256 [RFC4868]",
        _ => return None,
    })
}

fn decode_one(dir: &Path, v: &Value) -> Option<Value> {
    let integ = ws_integ(v["integ"].as_str()?)?;
    if v["esn_high"].as_u64().is_some_and(|h| h != 0) {
        return None;
    }
    let pkt = hex::decode(v["ah_packet"].as_str()?).unwrap();
    let pcap = dir.join("ah.pcap");
    let f = std::fs::File::create(&pcap).unwrap();
    let mut w = PcapWriter::with_header(
        f,
        PcapHeader {
            datalink: DataLink::RAW,
            ..Default::default()
        },
    )
    .unwrap();
    w.write_packet(&PcapPacket::new(Duration::ZERO, pkt.len() as u32, &pkt))
        .unwrap();
    drop(w);
    let keys = dir.join("esp_sa");
    let row = format!(
        "\"Any\",\"*\",\"*\",\"0x{:08x}\",\"NULL\",\"\",\"{integ}\",\"0x{}\"\n",
        v["spi"].as_u64()?,
        v["integ_key"].as_str()?
    );
    std::fs::write(&keys, row).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args(["decode", "--json", "--keys", keys.to_str()?, pcap.to_str()?])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next()?).ok()
}

#[test]
fn decodes_ah_vectors_from_odp_dpdk_and_scapy() {
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../ipsec-ah/tests/vectors");
    let dir = std::env::temp_dir().join(format!("ipsec-decode-ah-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut ok, mut rejected) = (0, 0);
    for file in ["ah.json", "scapy_ah.json"] {
        let all: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(format!("{vectors}/{file}")).unwrap())
                .unwrap();
        for v in &all {
            let Some(got) = decode_one(&dir, v) else {
                continue;
            };
            let name = v["name"].as_str().unwrap_or("?");
            assert_eq!(got["proto"], "ah", "{name}");
            if v["expect"] == "reject" {
                assert_eq!(got["status"], "integrity", "{name}: {got}");
                rejected += 1;
                continue;
            }
            assert_eq!(got["status"], "ok", "{name}: {got}");
            assert_eq!(got["mode"], v["mode"], "{name}");
            assert_eq!(got["inner"], v["plaintext_ip_packet"], "{name}: {got}");
            ok += 1;
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(ok >= 30, "only {ok} vectors decoded");
    assert_eq!(rejected, 2);
}
