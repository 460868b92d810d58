//! `ipsec decode` on a capture that Scapy wrote (tests/data/gen_scapy_capture.py):
//! every frame must get the status Scapy's own decryption predicts, and every good
//! frame's inner packet must equal what Scapy decrypts (tunnel: the inner packet;
//! transport: the original packet rebuilt).

use std::process::Command;

use serde_json::Value;

#[test]
fn decodes_scapy_capture_like_scapy() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args([
            "decode",
            "--json",
            "--keys",
            &format!("{data}/scapy_esp_sa"),
            &format!("{data}/scapy_esp.pcap"),
        ])
        .output()
        .expect("run ipsec decode");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{data}/scapy_expected.json")).unwrap(),
    )
    .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len());
    let mut ok = 0;
    for (got, want) in lines.iter().zip(&expected) {
        let case = want["case"].as_str().unwrap();
        assert_eq!(got["proto"], "esp", "{case}");
        assert_eq!(got["status"], want["status"], "{case}: {got}");
        assert!(got["spi"].as_str().unwrap().starts_with("0x"), "{case}");
        if want["status"] == "ok" {
            assert_eq!(got["inner"], want["inner"], "{case}");
            ok += 1;
        }
    }
    assert_eq!(ok, 16);
}

#[test]
fn decode_reports_missing_keys_as_unknown_spi() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args(["decode", "--json", &format!("{data}/scapy_esp.pcap")])
        .output()
        .expect("run ipsec decode");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .all(|l| l.contains("\"status\":\"unknown_spi\"")),
        "{text}"
    );
}
