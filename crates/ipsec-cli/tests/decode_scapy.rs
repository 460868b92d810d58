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

#[test]
fn rows_with_an_algorithm_we_lack_leave_the_rest_decodable() {
    // The first SA's row names an algorithm we do not have (as a key table from a
    // peer with other transforms would): its frames are reported, the rest decode.
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let table = std::fs::read_to_string(format!("{data}/scapy_esp_sa")).unwrap();
    let changed = table.replacen(
        "\"0x00001001\",\"AES-GCM with 16 octet ICV [RFC4106]\"",
        "\"0x00001001\",\"TripleDES-CBC [RFC2451]\"",
        1,
    );
    assert_ne!(changed, table);
    let keys = std::env::temp_dir().join(format!("ipsec-unusable-{}", std::process::id()));
    std::fs::write(&keys, changed).unwrap();
    let run = |json: bool| {
        let mut args = vec!["decode".to_string()];
        if json {
            args.push("--json".into());
        }
        args.extend([
            "--keys".into(),
            keys.display().to_string(),
            format!("{data}/scapy_esp.pcap"),
        ]);
        let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
            .args(&args)
            .output()
            .expect("run ipsec decode");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<Value> = run(true)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_1001: Vec<&Value> = lines.iter().filter(|l| l["spi"] == "0x00001001").collect();
    assert!(!of_1001.is_empty());
    for l in &of_1001 {
        assert_eq!(l["status"], "no_usable_key", "{l}");
        assert_eq!(l["detail"], "TripleDES-CBC [RFC2451]");
    }
    assert!(
        lines
            .iter()
            .filter(|l| l["spi"] != "0x00001001" && l["status"] == "ok")
            .count()
            > 0
    );
    let text = run(false);
    assert!(
        text.contains("no usable key (TripleDES-CBC [RFC2451])"),
        "{text}"
    );
    let _ = std::fs::remove_file(&keys);
}
