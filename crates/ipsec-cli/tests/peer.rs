//! `ipsec connect` against `ipsec listen` over loopback, through a small UDP NAT in the
//! test (both peers need port 4500, and the tool carries ESP in UDP, which IKE chooses
//! only when it detects a NAT): the listener survives what a peer can send it (a wrong
//! PSK, echo requests larger than it used to buffer, a flood of bad ESP), the pre-shared
//! key comes from a file or the environment, and dropped packets are counted by reason
//! and printed through a rate limit.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)] // deadlines for the processes under test read the clock

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipsec");
const PSK: &str = "peer-test-psk-0123456789";

/// The loopback addresses and IKE port of one test, so that tests running in
/// parallel never share a socket: the initiator, the NAT's address and the responder.
struct Net {
    initiator: IpAddr,
    nat: IpAddr,
    responder: IpAddr,
    port: u16,
}

impl Net {
    fn new(n: u8) -> Net {
        let ip = |h: u8| IpAddr::from([127, 77, n, h]);
        Net {
            initiator: ip(1),
            nat: ip(2),
            responder: ip(3),
            port: 5000 + u16::from(n),
        }
    }

    fn port(&self) -> String {
        self.port.to_string()
    }

    /// `ipsec listen` on the responder's address, tunnel 10.2.0.0/24 <-> 10.1.0.0/24.
    fn listen(&self, extra: &[&str], envs: &[(&str, &str)]) -> Child {
        let mut c = Command::new(BIN);
        c.args(["listen", "--local", &self.responder.to_string(), "--port"])
            .arg(self.port())
            .args(["--local-ts", "10.2.0.0/24", "--remote-ts", "10.1.0.0/24"])
            .args(["--timeout", "40", "--json"])
            .args(extra)
            .env_remove("IPSEC_PSK")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().expect("run ipsec listen")
    }

    /// `ipsec connect` from the initiator's address to the NAT.
    fn connect(&self, extra: &[&str], envs: &[(&str, &str)]) -> Output {
        Command::new(BIN)
            .args(["connect", "--local", &self.initiator.to_string(), "--port"])
            .arg(self.port())
            .arg("--remote")
            .arg(SocketAddr::new(self.nat, self.port).to_string())
            .args(["--local-ts", "10.1.0.0/24", "--remote-ts", "10.2.0.0/24"])
            .args(["--timeout", "20", "--json"])
            .args(extra)
            .env_remove("IPSEC_PSK")
            .envs(envs.iter().copied())
            .output()
            .expect("run ipsec connect")
    }
}

/// A NAT: what the initiator sends to `nat:port` and `nat:4500` goes on to the
/// responder's same ports from other ports of the NAT's address, and the answers go
/// back. The responder sees the initiator at an address and port the initiator did not
/// announce, which is what makes IKE detect a NAT.
struct Nat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Nat {
    fn start(net: &Net) -> Nat {
        let mut pairs = Vec::new();
        for port in [net.port, 4500] {
            let outside = UdpSocket::bind(SocketAddr::new(net.nat, port)).unwrap();
            let inside = UdpSocket::bind(SocketAddr::new(net.nat, 0)).unwrap();
            outside.set_nonblocking(true).unwrap();
            inside.set_nonblocking(true).unwrap();
            pairs.push((
                outside,
                inside,
                SocketAddr::new(net.responder, port),
                None::<SocketAddr>,
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !halt.load(Ordering::Relaxed) {
                let mut idle = true;
                for (outside, inside, responder, initiator) in &mut pairs {
                    while let Ok((n, from)) = outside.recv_from(&mut buf) {
                        *initiator = Some(from);
                        let _ = inside.send_to(&buf[..n], *responder);
                        idle = false;
                    }
                    while let Ok((n, _)) = inside.recv_from(&mut buf) {
                        if let Some(i) = initiator {
                            let _ = outside.send_to(&buf[..n], *i);
                        }
                        idle = false;
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Nat {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a child's stdout lines as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the first `event` on `rx` and returns it; every line read goes to `seen`.
fn wait_for(rx: &mpsc::Receiver<String>, event: &str, seen: &mut Vec<String>) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Ok(l) = rx.recv_timeout(left) else { break };
        seen.push(l.clone());
        if let Ok(v) = serde_json::from_str::<Value>(&l) {
            if v["event"] == event {
                return v;
            }
        }
    }
    panic!("no {event} event in:\n{}", seen.join("\n"));
}

/// Waits for the listener to exit; returns its success, every stdout line and stderr.
fn finish(
    mut child: Child,
    rx: mpsc::Receiver<String>,
    mut seen: Vec<String>,
) -> (bool, Vec<Value>, String) {
    let until = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    seen.extend(rx.iter());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let events = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    (status.success(), events, err)
}

fn count(events: &[Value], event: &str) -> usize {
    events.iter().filter(|v| v["event"] == event).count()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn dump(events: &[Value], err: &str) -> String {
    let mut s: Vec<String> = events.iter().map(Value::to_string).collect();
    s.push(err.to_string());
    s.join("\n")
}

/// A wrong PSK, from anyone, used to end `ipsec listen`; now the failure is counted and
/// the next initiator, with the right key, is served.
#[test]
fn listener_survives_a_wrong_psk() {
    let net = Net::new(1);
    let _nat = Nat::start(&net);
    let mut l = net.listen(&["--psk", PSK], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);

    let bad = net.connect(&["--psk", "not-the-psk"], &[]);
    assert!(!bad.status.success(), "{}", text(&bad));
    let v = wait_for(&rx, "ike_failed", &mut seen);
    assert_eq!(v["reason"], "authentication failed: wrong pre-shared key");
    assert_eq!(v["label"], "authentication_failed_wrong_shared_key");

    let good = net.connect(&["--psk", PSK, "--ping", "10.2.0.1", "--count", "2"], &[]);
    assert!(good.status.success(), "{}", text(&good));

    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(ok, "{all}");
    assert_eq!(count(&events, "ike_established"), 1, "{all}");
    assert!(count(&events, "echo_request") >= 2, "{all}");
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done", "{all}");
    assert_eq!(
        done["ike_failed"]["authentication failed: wrong pre-shared key"], 1,
        "{all}"
    );
}

/// An echo request larger than the 4096-byte send buffer (6000 bytes) used to end the
/// listener with "packet too large". Now it is answered, and the listener goes on
/// (through a Child SA rekey and a second round of large pings).
#[test]
fn listener_answers_large_echo_requests_and_goes_on() {
    let net = Net::new(2);
    let _nat = Nat::start(&net);
    let mut l = net.listen(&["--psk", PSK], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(
        &[
            "--psk",
            PSK,
            "--ping",
            "10.2.0.1",
            "--count",
            "2",
            "--size",
            "6000",
            "--rekey-child-after",
            "0.1",
        ],
        &[],
    );
    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(c.status.success(), "{}\n{all}", text(&c));
    assert!(ok, "{all}");
    let done = events.last().unwrap();
    assert!(done["echo_replies_sent"].as_u64().unwrap() >= 4, "{all}");
    assert!(count(&events, "child_rekeyed") >= 1, "{all}");
    // The connector's replies were the full size.
    let pings = String::from_utf8_lossy(&c.stdout)
        .matches("\"event\":\"ping\"")
        .count();
    assert!(pings >= 4, "{}", text(&c));
}

/// 200 ESP packets that fail their ICV used to print 200 lines; now the first few are
/// printed, the rest are summarised, and all 200 are counted under their reason.
#[test]
fn esp_drop_lines_are_rate_limited_and_counted() {
    let net = Net::new(3);
    let _nat = Nat::start(&net);
    let mut l = net.listen(&["--psk", PSK], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let connector = std::thread::spawn({
        let net = Net::new(3);
        move || net.connect(&["--psk", PSK, "--hold", "2"], &[])
    });
    let child = wait_for(&rx, "child_installed", &mut seen);
    let spi = u32::from_str_radix(
        child["inbound_spi"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let garbage = UdpSocket::bind(SocketAddr::new(net.initiator, 0)).unwrap();
    for i in 0..200u32 {
        let mut p = Vec::with_capacity(80);
        p.extend_from_slice(&spi.to_be_bytes());
        p.extend_from_slice(&(1000 + i).to_be_bytes());
        p.extend((0..72u32).map(|j| (i.wrapping_mul(31) ^ j) as u8));
        garbage
            .send_to(&p, SocketAddr::new(net.responder, 4500))
            .unwrap();
        if i % 10 == 9 {
            // Paced, so that the listener's socket buffer never overflows.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let c = connector.join().unwrap();
    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(c.status.success(), "{}\n{all}", text(&c));
    assert!(ok, "{all}");
    let drop_lines = count(&events, "esp_drop");
    let summaries: Vec<&Value> = events
        .iter()
        .filter(|v| v["event"] == "suppressed" && v["what"] == "esp_drop")
        .collect();
    assert_eq!(drop_lines, 5, "{all}");
    assert!(
        (1..=3).contains(&summaries.len()),
        "one summary per second at most: {all}"
    );
    let hidden: u64 = summaries
        .iter()
        .map(|v| v["not_shown"].as_u64().unwrap())
        .sum();
    assert_eq!(hidden, 195, "{all}");
    assert!(events.len() < 30, "{all}");
    let done = events.last().unwrap();
    assert_eq!(done["esp_drops"]["integrity"], 200, "{all}");
}

/// The PSK from a file (one trailing newline removed) and from IPSEC_PSK; --psk and
/// --psk-file together are refused, and so is a run without any key.
#[test]
fn psk_from_file_and_environment() {
    let dir = std::env::temp_dir().join(format!("ipsec-psk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("psk");
    std::fs::write(&file, format!("{PSK}\n")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let file_s = file.to_str().unwrap();

    let net = Net::new(4);
    let _nat = Nat::start(&net);
    // The listener reads the file, the connector the environment.
    let mut l = net.listen(&["--psk-file", file_s], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(
        &["--ping", "10.2.0.1", "--count", "1"],
        &[("IPSEC_PSK", PSK)],
    );
    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(c.status.success(), "{}\n{all}", text(&c));
    assert!(ok, "{all}");
    assert!(!err.contains("warning"), "{err}");

    // And the other way round; --psk-file wins over IPSEC_PSK.
    let mut l = net.listen(&[], &[("IPSEC_PSK", PSK)]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(&["--psk-file", file_s], &[("IPSEC_PSK", "wrong")]);
    let (ok, events, err) = finish(l, rx, seen);
    assert!(c.status.success(), "{}\n{}", text(&c), dump(&events, &err));
    assert!(ok);

    // Refusals, before any packet is sent.
    let none = net.connect(&[], &[]);
    assert!(!none.status.success());
    assert!(text(&none).contains("no pre-shared key"), "{}", text(&none));
    let both = net.connect(&["--psk", PSK, "--psk-file", file_s], &[]);
    assert!(!both.status.success());
    assert!(
        text(&both).contains("cannot be used with"),
        "{}",
        text(&both)
    );
    std::fs::write(&file, "\n").unwrap();
    let empty = net.connect(&["--psk-file", file_s], &[]);
    assert!(!empty.status.success());
    assert!(text(&empty).contains("empty"), "{}", text(&empty));
    // A key file others can read is used, with a warning.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let shared = net.connect(&["--psk-file", file_s], &[]);
    assert!(
        text(&shared).contains("accessible to other users"),
        "{}",
        text(&shared)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Certificates (made with strongSwan's pki, in ipsec-gateway's test data): both sides
/// sign and verify (--cert, --key, --ca), identified by their certificates' subjects;
/// mixed, the listener signs and the initiator uses the PSK; and a certificate from
/// another CA is refused with its reason on both sides.
#[test]
fn certificates_and_mixed_authentication() {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ipsec-gateway/tests/data/pki"
    );
    let dir = std::env::temp_dir().join(format!("ipsec-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chain = |ee: &str| {
        let p = dir.join(format!("{ee}.chain.pem"));
        let mut b = std::fs::read(format!("{data}/{ee}.pem")).unwrap();
        b.extend(std::fs::read(format!("{data}/inter.pem")).unwrap());
        std::fs::write(&p, b).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (gw, peer, rogue) = (chain("gw"), chain("peer"), chain("rogue"));
    let key = |k: &str| format!("{data}/{k}.key");
    let ca = format!("{data}/ca.pem");
    let net = Net::new(5);
    let _nat = Nat::start(&net);

    // Both with certificates; the initiator requires the listener by its DN.
    let listener = ["--cert", &gw, "--key", &key("gw"), "--ca", &ca];
    let mut l = net.listen(&listener, &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(
        &[
            "--cert",
            &peer,
            "--key",
            &key("peer"),
            "--ca",
            &ca,
            "--remote-id",
            "C=CH, O=ipsec-rs test, CN=gw.test",
            "--ping",
            "10.2.0.1",
            "--count",
            "1",
        ],
        &[],
    );
    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(c.status.success(), "{}\n{all}", text(&c));
    assert!(ok, "{all}");
    let up = events
        .iter()
        .find(|v| v["event"] == "ike_established")
        .unwrap();
    assert_eq!(
        up["peer_id"], "C=CH, O=ipsec-rs test, CN=peer.test",
        "{all}"
    );

    // Mixed: the listener signs and takes the PSK from its peer; the initiator
    // checks the listener's certificate and proves the PSK.
    let mut l = net.listen(&["--cert", &gw, "--key", &key("gw"), "--psk", PSK], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(
        &[
            "--ca", &ca, "--psk", PSK, "--ping", "10.2.0.1", "--count", "1",
        ],
        &[],
    );
    let (ok, events, err) = finish(l, rx, seen);
    assert!(c.status.success(), "{}\n{}", text(&c), dump(&events, &err));
    assert!(ok, "{}", dump(&events, &err));

    // A certificate from another CA (with the same name as ours): refused by the
    // listener with its reason; the initiator hears AUTHENTICATION_FAILED.
    let mut l = net.listen(&listener, &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let bad = net.connect(
        &["--cert", &rogue, "--key", &key("rogue"), "--ca", &ca],
        &[],
    );
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("\"label\":\"authentication_failed_rejected_by_peer\""),
        "{}",
        text(&bad)
    );
    let v = wait_for(&rx, "ike_failed", &mut seen);
    let label = v["label"].as_str().unwrap();
    assert!(
        label == "authentication_failed_unknown_issuer"
            || label == "authentication_failed_bad_chain_signature",
        "{v}"
    );
    let _ = l.kill();
    let _ = l.wait();

    // A key that is not the certificate's is refused before anything is sent.
    let wrong = net.connect(&["--cert", &gw, "--key", &key("peer"), "--psk", PSK], &[]);
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("--key"), "{}", text(&wrong));
    std::fs::remove_dir_all(&dir).ok();
}

/// `listen --pool` leases a virtual address to `connect --vip 0.0.0.0` (RFC 7296
/// §3.15): both print it, the Child SA is narrowed to it, and the pings come from it.
#[test]
fn virtual_ip_from_the_listeners_pool() {
    let net = Net::new(6);
    let _nat = Nat::start(&net);
    let mut l = net.listen(&["--psk", PSK, "--pool", "10.1.0.0/24"], &[]);
    let rx = lines_of(&mut l);
    let mut seen = Vec::new();
    wait_for(&rx, "listening", &mut seen);
    let c = net.connect(
        &[
            "--psk", PSK, "--vip", "0.0.0.0", "--ping", "10.2.0.1", "--count", "2",
        ],
        &[],
    );
    let (ok, events, err) = finish(l, rx, seen);
    let all = dump(&events, &err);
    assert!(c.status.success(), "{}\n{all}", text(&c));
    assert!(ok, "{all}");
    let out = String::from_utf8_lossy(&c.stdout).to_string();
    let ours: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let up = ours
        .iter()
        .find(|v| v["event"] == "ike_established")
        .expect("established");
    // The first host address of the subnet (its network address is skipped).
    assert_eq!(up["virtual_ips"], serde_json::json!(["10.1.0.1"]), "{out}");
    let theirs = events
        .iter()
        .find(|v| v["event"] == "ike_established")
        .expect("established");
    assert_eq!(
        theirs["virtual_ips"],
        serde_json::json!(["10.1.0.1"]),
        "{all}"
    );
    // The echo requests came from the virtual address.
    let req = events
        .iter()
        .find(|v| v["event"] == "echo_request")
        .expect("an echo request");
    assert_eq!(req["from"], "10.1.0.1", "{all}");
    assert!(out.matches("\"event\":\"ping\"").count() >= 2, "{out}");
}
