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

/// IKE_AUTH with certificates (testdata/strongswan/make_captures.sh, `cert`: charon a
/// signs with ECDSA P-256, charon b with Ed25519, both certificates made by strongSwan's
/// pki under root -> intermediate): decode names the AUTH method and RFC 7427 scheme,
/// and each CERT's subject, issuer and subjectAltNames.
#[test]
fn strongswan_certificates() {
    let frames = decode("cert");
    let auth: Vec<&Value> = frames
        .iter()
        .filter(|f| f["proto"] == "ike" && f["exchange"] == 35)
        .collect();
    assert_eq!(auth.len(), 2, "one IKE_AUTH exchange");
    let inter = "C=CH, O=ipsec-rs interop, CN=Interop Intermediate CA";
    for (f, side, scheme) in [
        (auth[0], "a", "ecdsa-p256-sha256"),
        (auth[1], "b", "ed25519"),
    ] {
        assert_eq!(f["status"], "ok", "{f}");
        assert_eq!(f["auth"]["method"], 14, "{f}");
        assert_eq!(f["auth"]["method_name"], "DIGITAL_SIGNATURE");
        assert_eq!(f["auth"]["scheme"], scheme);
        let cert = &f["certs"][0];
        assert_eq!(
            cert["subject"],
            format!("C=CH, O=ipsec-rs interop, CN={side}.ipsec.test")
        );
        assert_eq!(cert["issuer"], inter);
        assert_eq!(
            cert["san"],
            serde_json::json!([format!("dns:{side}.ipsec.test")])
        );
    }
    assert_eq!(auth[0]["id_i"], "@a.ipsec.test");
    assert_eq!(auth[1]["id_r"], "@b.ipsec.test");
    // The text form shows the same.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/strongswan");
    let out = Command::new(env!("CARGO_BIN_EXE_ipsec"))
        .args([
            "decode",
            "--keys",
            &format!("{dir}/cert.keys"),
            &format!("{dir}/cert.pcapng"),
        ])
        .output()
        .expect("run ipsec decode");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("AUTH DIGITAL_SIGNATURE (ed25519)"), "{text}");
    assert!(
        text.contains(&format!(
            "CERT subject \"C=CH, O=ipsec-rs interop, CN=a.ipsec.test\" issuer \"{inter}\" san dns:a.ipsec.test"
        )),
        "{text}"
    );
    // Every ESP frame still decrypts.
    let esp: Vec<&Value> = frames.iter().filter(|f| f["proto"] == "esp").collect();
    assert!(!esp.is_empty());
    assert!(esp.iter().all(|f| f["status"] == "ok"));
}
