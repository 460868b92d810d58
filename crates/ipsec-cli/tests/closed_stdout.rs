//! Every command exits quietly, with status 0, when its stdout is closed early
//! (`ipsec decode ... | head -1`): no "failed printing to stdout" panic.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ipsec");

fn assert_quiet(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
}

/// Runs `ipsec ARGS` with a stdout pipe whose reading end is already closed (the
/// reader, `:`, exits at once; `ipsec` starts 200 ms later), so its first write
/// fails with EPIPE. Returns ipsec's exit status and stderr.
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"{ sleep 0.2; "$0" "$@"; echo "status=$?" >&2; } | :"#)
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("run sh");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let status = err
        .lines()
        .find_map(|l| l.strip_prefix("status="))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    (status, err)
}

#[test]
fn commands_exit_quietly_on_a_closed_stdout() {
    let dir = std::env::temp_dir().join(format!("ipsec-closed-stdout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    let keys = dir.join("esp_sa");
    let (status, err) = with_closed_stdout(&[
        "demo",
        "--manual",
        "--count",
        "20",
        "--pcap",
        pcap.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert_quiet("demo", &err);
    assert_eq!(status, 0, "demo: {err}");
    // The demo still did its work: the capture and the key table are there.
    assert!(pcap.is_file() && keys.is_file());
    let runs: [&[&str]; 5] = [
        &["suites"],
        &["proposal", "aes128gcm16-prfsha256-x25519"],
        &[
            "decode",
            "--keys",
            keys.to_str().unwrap(),
            pcap.to_str().unwrap(),
        ],
        &[
            "decode",
            "--json",
            "--keys",
            keys.to_str().unwrap(),
            pcap.to_str().unwrap(),
        ],
        &["help"],
    ];
    for args in runs {
        let (status, err) = with_closed_stdout(args);
        assert_quiet(&args.join(" "), &err);
        assert_eq!(status, 0, "{args:?}: {err}");
    }
    // A command that fails still says why (on stderr) and exits 1.
    let (status, err) = with_closed_stdout(&["proposal", "aes128gcm17"]);
    assert_quiet("proposal", &err);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("aes128gcm17"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The `| head -1` case: the reader takes one line and goes away while `ipsec decode`
/// still has far more than a pipe buffer (64 KiB) to write.
#[test]
fn decode_stops_quietly_when_the_reader_goes_away() {
    let dir = std::env::temp_dir().join(format!("ipsec-head-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    let keys = dir.join("esp_sa");
    let st = Command::new(BIN)
        .args(["demo", "--manual", "--count", "600", "--no-faults"])
        .args([
            "--pcap",
            pcap.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(BIN)
        .args([
            "decode",
            "--json",
            "--keys",
            keys.to_str().unwrap(),
            pcap.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is dropped here: the pipe's reading end is closed.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_quiet("decode | head -1", &err);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    std::fs::remove_dir_all(&dir).ok();
}
