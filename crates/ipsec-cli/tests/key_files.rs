//! The key tables `ipsec demo --keys` writes hold session keys: on Unix they are
//! readable by their owner only (mode 0600), whatever the umask, and a file that was
//! there before with a wider mode is narrowed.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs `ipsec demo ARGS` under `umask 022` (files would be 0644 by default).
fn demo(args: &[&str]) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 022; exec "$0" demo --count 5 --no-faults "$@""#)
        .arg(env!("CARGO_BIN_EXE_ipsec"))
        .args(args)
        .output()
        .expect("run ipsec");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn key_tables_are_private() {
    let dir = std::env::temp_dir().join(format!("ipsec-key-mode-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();

    // A new directory of tables (IKE and ESP).
    let keys = dir.join("keys");
    demo(&["--keys", &format!("{}/", keys.display())]);
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&keys.join("esp_sa")), 0o600);
    assert_eq!(mode(&keys.join("ikev2_decryption_table")), 0o600);

    // Files named one by one, one of them already there and world-readable.
    let esp = dir.join("esp.keys");
    let ike = dir.join("ike.keys");
    std::fs::write(&esp, "old").unwrap();
    std::fs::set_permissions(&esp, std::fs::Permissions::from_mode(0o644)).unwrap();
    demo(&[
        "--keys",
        esp.to_str().unwrap(),
        "--ike-keys",
        ike.to_str().unwrap(),
    ]);
    assert_eq!(mode(&esp), 0o600);
    assert_eq!(mode(&ike), 0o600);
    assert!(std::fs::read_to_string(&esp)
        .unwrap()
        .starts_with("# Wireshark esp_sa"));

    // Manually keyed too.
    let manual = dir.join("manual.keys");
    demo(&["--manual", "--keys", manual.to_str().unwrap()]);
    assert_eq!(mode(&manual), 0o600);
    std::fs::remove_dir_all(&dir).ok();
}
