//! `ipsec demo` end to end: the traffic crosses real loopback sockets, and the capture
//! and key table it writes are read back by `ipsec decode`.

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// One `ipsec` process at a time: the demos bind the fixed loopback ports 500 and
/// 4500 when they are free, and parallel demos racing for them (with a cold debug
/// binary on a loaded CI machine) once made a peer miss its datagrams.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn ipsec(args: &[&str]) -> (bool, String, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args(args)
        .output()
        .expect("run ipsec");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs the demo with its capture and key table, then decodes the capture.
fn roundtrip(suite: &str, mode: &str, extra: &[&str]) {
    let dir = std::env::temp_dir().join(format!(
        "ipsec-demo-test-{}-{suite}-{mode}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    let keys = dir.join("esp_sa");
    let mut args = vec![
        "demo",
        "--suite",
        suite,
        "--mode",
        mode,
        "--count",
        "40",
        "--pcap",
        pcap.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = ipsec(&args);
    assert!(ok, "demo failed: {out}\n{err}");
    assert!(out.contains("A -> B"), "{out}");
    // Faults are injected by default: each shows up under its own reason at B.
    assert!(
        out.contains(
            "drops at B: integrity 1, malformed 1, replay 1, unknown_spi 1; NAT keepalives 1"
        ),
        "{out}"
    );
    let (ok, out, err) = ipsec(&[
        "decode",
        "--json",
        "--keys",
        keys.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let all: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // With IKEv2 (the default) the capture also holds the IKE exchanges: IKE_SA_INIT,
    // IKE_AUTH, CREATE_CHILD_SA, the Delete of the old Child SA, the final Delete.
    let ike = all.iter().filter(|f| f["proto"] == "ike").count();
    let manual = extra.contains(&"--manual");
    assert_eq!(ike, if manual { 0 } else { 10 }, "{out}");
    let frames: Vec<Value> = all.into_iter().filter(|f| f["proto"] != "ike").collect();
    assert_eq!(frames.len(), 80 + 5);
    let good = frames
        .iter()
        .filter(|f| f["status"] == "ok" && f["proto"] == "esp")
        .count();
    assert_eq!(good, 80, "{out}");
    let want_mode = if mode == "tunnel" {
        "tunnel"
    } else {
        "transport"
    };
    assert!(frames
        .iter()
        .filter(|f| f["status"] == "ok" && f["proto"] == "esp")
        .all(|f| f["mode"] == want_mode));
    let statuses: Vec<&str> = frames[80..]
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    // The unknown-SPI datagram is only recognisable as ESP on port 4500; when the demo
    // had to fall back to ephemeral ports (tests run in parallel), it is plain UDP.
    let unknown = if frames[82]["proto"] == "esp" {
        "unknown_spi"
    } else {
        "ok"
    };
    assert_eq!(
        statuses,
        ["replay", "integrity", unknown, "malformed", "ok"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_gcm_tunnel() {
    roundtrip("aes128gcm16", "tunnel", &[]);
}

#[test]
fn demo_cbc_transport_esn() {
    roundtrip("aes256-sha384", "transport", &["--esn"]);
}

#[test]
fn demo_manual_keys() {
    roundtrip("aes128-sha256", "tunnel", &["--manual"]);
}

#[test]
fn demo_chacha_rustcrypto() {
    roundtrip("chacha20poly1305", "tunnel", &["--backend", "rustcrypto"]);
}

#[test]
fn demo_rejects_unknown_suite() {
    let (ok, _, err) = ipsec(&["demo", "--suite", "aes128gcm17"]);
    assert!(!ok);
    assert!(
        err.contains("unknown algorithm token 'aes128gcm17'"),
        "{err}"
    );
}

#[test]
fn suites_and_proposal() {
    let (ok, out, _) = ipsec(&["suites"]);
    assert!(ok);
    assert!(
        out.contains("aes128gcm16") && out.contains("ENCR_AES_GCM_16") && out.contains("   20 "),
        "{out}"
    );
    let (ok, out, _) = ipsec(&["proposal", "aes256-sha384-ecp384"]);
    assert!(ok);
    assert!(
        out.contains("(IKE): aes256-sha384-prfsha384-ecp384"),
        "{out}"
    );
    assert!(out.contains("AUTH_HMAC_SHA2_384_192"), "{out}");
    // ML-KEM (FIPS 203, transform 4 ids 35-37): two KE payload lengths.
    assert!(out_has_mlkem(), "ipsec suites lists no ML-KEM");
    let (ok, out, _) = ipsec(&["proposal", "aes256gcm16-prfsha384-mlkem768"]);
    assert!(ok);
    assert!(
        out.contains("id  36 ML_KEM_768")
            && out.contains("KE data 1184 bytes (encapsulation key), 1088 in the response"),
        "{out}"
    );
    let (ok, _, err) = ipsec(&["proposal", "aes128gcm16-prfsha256-x25518"]);
    assert!(!ok);
    assert!(err.contains("x25518"), "{err}");
}

/// Whether `ipsec suites` lists the three ML-KEM methods with both lengths.
fn out_has_mlkem() -> bool {
    let (ok, out, _) = ipsec(&["suites"]);
    ok && [
        ("mlkem512", "ek 800 / ct 768"),
        ("mlkem768", "ek 1184 / ct 1088"),
        ("mlkem1024", "ek 1568 / ct 1568"),
    ]
    .iter()
    .all(|(tok, lens)| out.lines().any(|l| l.contains(tok) && l.contains(lens)))
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ipsec-demo-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Decodes `pcap` with `keys` and checks that the IKE SA's messages decrypt: the two
/// IKE_SA_INIT messages are plain, and every later one (IKE_AUTH, CREATE_CHILD_SA,
/// the Deletes) opens and parses inside SK.
fn assert_ike_decrypted(pcap: &std::path::Path, keys: &[&std::path::Path]) {
    let mut args = vec!["decode", "--json"];
    for k in keys {
        args.extend(["--keys", k.to_str().unwrap()]);
    }
    args.push(pcap.to_str().unwrap());
    let (ok, out, err) = ipsec(&args);
    assert!(ok, "{err}");
    let all: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ike: Vec<&Value> = all.iter().filter(|f| f["proto"] == "ike").collect();
    assert_eq!(ike.len(), 10, "{out}");
    let (init, protected): (Vec<&Value>, Vec<&Value>) =
        ike.iter().partition(|f| f["exchange"] == 34);
    assert_eq!(init.len(), 2);
    assert!(init.iter().all(|f| f["status"] == "ok"), "{out}");
    assert_eq!(protected.len(), 8);
    for f in &protected {
        assert_eq!(f["status"], "ok", "not decrypted: {f}");
        assert!(f["inner"].is_array(), "no inner payloads: {f}");
        assert_eq!(f["inner_reemit"], true, "{f}");
    }
    // IKE_AUTH carries IDi/IDr (35/36) and AUTH (39) inside SK.
    let auth: Vec<&&Value> = protected.iter().filter(|f| f["exchange"] == 35).collect();
    assert_eq!(auth.len(), 2);
    for f in auth {
        let inner = f["inner"].as_array().unwrap();
        assert!(inner.contains(&Value::from(39)), "{f}");
    }
    // And the ESP traffic still decrypts with the same key set.
    let esp_ok = all
        .iter()
        .filter(|f| f["proto"] == "esp" && f["status"] == "ok")
        .count();
    assert_eq!(esp_ok, 40, "{out}");
}

/// The record layout of strongSwan's save-keys: `SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ"`.
fn assert_save_keys_layout(table: &str, encr: &str, integ: &str, with_integ_keys: bool) {
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 1, "{table}");
    let f: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(f.len(), 8, "{table}");
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    assert!(
        f[0].len() == 16 && hex(f[0]) && f[1].len() == 16 && hex(f[1]),
        "{table}"
    );
    assert!(hex(f[2]) && hex(f[3]), "{table}");
    assert_eq!(f[4], format!("\"{encr}\""));
    assert_eq!(hex(f[5]) && hex(f[6]), with_integ_keys, "{table}");
    if !with_integ_keys {
        assert_eq!((f[5], f[6]), ("", ""));
    }
    assert_eq!(f[7], format!("\"{integ}\""));
}

#[test]
fn demo_key_directory_decrypts_ike() {
    let dir = scratch("keydir");
    let pcap = dir.join("demo.pcap");
    // Not there yet: the trailing '/' says it is a directory.
    let keys = dir.join("keys");
    let keys_arg = format!("{}/", keys.display());
    let (ok, out, err) = ipsec(&[
        "demo",
        "--count",
        "20",
        "--pcap",
        pcap.to_str().unwrap(),
        "--keys",
        &keys_arg,
    ]);
    assert!(ok, "demo failed: {out}\n{err}");
    assert!(out.contains("IKE_SA keys exported"), "{out}");
    let table = std::fs::read_to_string(keys.join("ikev2_decryption_table")).unwrap();
    assert_save_keys_layout(
        &table,
        "AES-GCM-128 with 16 octet ICV [RFC5282]",
        "NONE [RFC4306]",
        false,
    );
    assert!(keys.join("esp_sa").is_file());
    // `ipsec decode --keys DIR` reads both tables, as from strongSwan's save-keys.
    assert_ike_decrypted(&pcap, &[&keys]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_ike_keys_file_cbc() {
    let dir = scratch("ikekeys");
    let pcap = dir.join("demo.pcap");
    let esp = dir.join("esp.keys");
    let ike = dir.join("ike.keys");
    let (ok, out, err) = ipsec(&[
        "demo",
        "--count",
        "20",
        "--ike",
        "aes256-sha384-ecp384",
        "--suite",
        "aes128-sha256",
        "--pcap",
        pcap.to_str().unwrap(),
        "--keys",
        esp.to_str().unwrap(),
        "--ike-keys",
        ike.to_str().unwrap(),
    ]);
    assert!(ok, "demo failed: {out}\n{err}");
    let table = std::fs::read_to_string(&ike).unwrap();
    assert_save_keys_layout(
        &table,
        "AES-CBC-256 [RFC3602]",
        "HMAC_SHA2_384_192 [RFC4868]",
        true,
    );
    // The ESP file holds only ESP SAs; without the IKE table IKE stays encrypted.
    let (ok, out, _) = ipsec(&[
        "decode",
        "--json",
        "--keys",
        esp.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert!(ok);
    assert_eq!(out.matches("\"no_keys\"").count(), 8, "{out}");
    assert_ike_decrypted(&pcap, &[&esp, &ike]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_manual_key_directory_and_ike_keys() {
    let dir = scratch("manualkeys");
    // An existing directory, named without a trailing '/'.
    let (ok, out, err) = ipsec(&[
        "demo",
        "--manual",
        "--count",
        "10",
        "--keys",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(dir.join("esp_sa").is_file());
    // No IKE SA, so no IKE table.
    assert!(!dir.join("ikev2_decryption_table").exists());
    let (ok, _, err) = ipsec(&[
        "demo",
        "--manual",
        "--ike-keys",
        dir.join("ike").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("--ike-keys"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_hybrid_ike_decodes_every_stage() {
    // Two additional key exchanges (RFC 9370): the key table has a record per stage
    // of the IKE SA's keys under the same SPIs, and `ipsec decode` opens each message
    // with the stage that protected it.
    let dir = scratch("hybrid");
    let pcap = dir.join("demo.pcap");
    let esp = dir.join("esp.keys");
    let ike = dir.join("ike.keys");
    let (ok, out, err) = ipsec(&[
        "demo",
        "--count",
        "4",
        "--ike",
        "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke2_ecp384",
        "--pcap",
        pcap.to_str().unwrap(),
        "--keys",
        esp.to_str().unwrap(),
        "--ike-keys",
        ike.to_str().unwrap(),
    ]);
    assert!(ok, "demo failed: {out}\n{err}");
    let table = std::fs::read_to_string(&ike).unwrap();
    let records: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(records.len(), 3, "{table}");
    let (ok, out, err) = ipsec(&[
        "decode",
        "--json",
        "--keys",
        esp.to_str().unwrap(),
        "--keys",
        ike.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let frames: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // IKE_INTERMEDIATE (43): two requests and two responses, with the keys of the
    // stage before each (0 then 1); IKE_AUTH (35) with the last ones (2).
    let stages = |ex: u64| -> Vec<u64> {
        frames
            .iter()
            .filter(|f| f["proto"] == "ike" && f["exchange"] == ex)
            .map(|f| {
                assert_eq!(f["status"], "ok", "{f}");
                f["key_stage"].as_u64().unwrap()
            })
            .collect()
    };
    assert_eq!(stages(43), [0, 0, 1, 1]);
    assert_eq!(stages(35), [2, 2]);
    std::fs::remove_dir_all(&dir).ok();
}
