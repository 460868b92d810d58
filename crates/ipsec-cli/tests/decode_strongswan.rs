//! `ipsec decode` on traffic between two strongSwan 5.9 charons (userspace ESP from
//! kernel-libipsec, ESP-in-UDP on 4500), captured by testdata/strongswan/make_captures.sh
//! with the keys charon logged: every ESP frame must decrypt, including ChaCha20-Poly1305,
//! which Wireshark 4.0 cannot.

use std::process::Command;

use serde_json::Value;

fn decode(suite: &str) -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/strongswan");
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args([
            "decode",
            "--json",
            "--keys",
            &format!("{dir}/{suite}.keys"),
            &format!("{dir}/{suite}.pcapng"),
        ])
        .output()
        .expect("run ipsec decode");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn check(suite: &str) {
    let frames = decode(suite);
    let esp: Vec<&Value> = frames.iter().filter(|f| f["proto"] == "esp").collect();
    assert_eq!(esp.len(), 8, "{suite}");
    for f in &esp {
        assert_eq!(f["status"], "ok", "{suite}: {f}");
        assert_eq!(f["mode"], "tunnel");
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.contains("ICMP echo"), "{summary}");
        assert!(summary.starts_with("198.19."), "{summary}");
    }
    assert_eq!(
        frames.iter().filter(|f| f["proto"] == "ike").count(),
        20,
        "{suite}"
    );
}

#[test]
fn strongswan_aes_gcm() {
    check("gcm");
}

#[test]
fn strongswan_aes_cbc_hmac_sha384() {
    check("cbc");
}

#[test]
fn strongswan_chacha20_poly1305() {
    check("chacha");
}
