//! `ipsec load` against a responder written here (an `IkeEndpoint` in a thread on
//! loopback, with a resolver that accepts the identities `load-*`; `ipsec listen`
//! serves one initiator only): every handshake succeeds with distinct identities and
//! its IKE SA is deleted, `--keep` holds all IKE SAs at once, and a wrong PSK or an
//! identity the responder refuses make every handshake fail by reason and the exit
//! status non-zero. Rates and latencies are printed, not asserted.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)] // the responder's clock

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipsec::core::time::StdClock;
use ipsec::ike::{CloseReason, Config, Event, Identity, IkeEndpoint, PeerHello};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipsec");
const PSK: &str = "load-test-psk-0123456789";

/// What the responder saw.
#[derive(Debug, Default)]
struct Seen {
    /// Identities of the established IKE SAs.
    peers: BTreeSet<String>,
    established: u32,
    /// Most IKE SAs established at once.
    peak: usize,
    deleted_by_peer: u32,
}

/// A responder on `addr` (and `addr`'s address, port 4500) until dropped.
struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Seen>>,
}

impl Responder {
    fn start(ip: IpAddr, port: u16) -> Responder {
        let addr = SocketAddr::new(ip, port);
        let s500 = UdpSocket::bind(addr).expect("bind the responder's IKE port");
        let s4500 = UdpSocket::bind(SocketAddr::new(ip, 4500)).expect("bind 4500");
        s500.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        s4500.set_nonblocking(true).unwrap();
        let mut cfg = Config::new(Identity::Fqdn("responder.example".into()), PSK);
        // All initiators come from one address, many at once.
        cfg.max_half_open_per_source = 1024;
        cfg.half_open_cookie_threshold = 1024;
        let cfg = Arc::new(cfg);
        let mut ep = IkeEndpoint::with_config(Arc::clone(&cfg), &ipsec::DEFAULT_PROVIDER).unwrap();
        ep.set_resolver(Arc::new(move |hello: &PeerHello<'_>| match hello.peer_id {
            Identity::Fqdn(name) if name.starts_with("load-") => Some(Arc::clone(&cfg)),
            _ => None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let clock = StdClock::new(Instant::now());
            let mut seen = Seen::default();
            let mut up = BTreeSet::new();
            let mut buf = vec![0u8; 65536];
            while !halt.load(Ordering::Relaxed) {
                // One datagram per socket (waiting up to 2 ms on the IKE port), then
                // its answers.
                for (sock, local) in [(&s500, addr), (&s4500, SocketAddr::new(ip, 4500))] {
                    loop {
                        match sock.recv_from(&mut buf) {
                            Ok((n, from)) => {
                                let now = clock.instant(Instant::now());
                                ep.handle_datagram(now, local, from, &buf[..n]);
                                // Answer before reading on.
                                break;
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                                ) =>
                            {
                                break
                            }
                            Err(_) => {}
                        }
                    }
                }
                let now = clock.instant(Instant::now());
                if ep.poll_timeout().is_some_and(|t| t <= now) {
                    ep.handle_timeout(now);
                }
                while let Some(t) = ep.poll_transmit() {
                    let sock = if t.local.port() == 4500 {
                        &s4500
                    } else {
                        &s500
                    };
                    let _ = sock.send_to(&t.payload, t.remote);
                }
                while let Some((h, ev)) = ep.poll_event() {
                    match ev {
                        Event::IkeSaEstablished { peer_id, .. } => {
                            seen.established += 1;
                            seen.peers.insert(peer_id.to_string());
                            up.insert(h);
                            seen.peak = seen.peak.max(up.len());
                        }
                        Event::IkeSaClosed { reason } => {
                            up.remove(&h);
                            if reason == (CloseReason::Deleted { by_peer: true }) {
                                seen.deleted_by_peer += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
            seen
        });
        Responder {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loopback addresses of one test, so that tests running in parallel share no socket.
fn ips(n: u8) -> (IpAddr, IpAddr) {
    (IpAddr::from([127, 78, n, 1]), IpAddr::from([127, 78, n, 3]))
}

/// `ipsec load` from `local` to the responder, the key from IPSEC_PSK.
fn load(local: IpAddr, r: &Responder, psk: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["load", "--local", &local.to_string(), "--port"])
        .arg(r.addr.port().to_string())
        .arg("--remote")
        .arg(r.addr.to_string())
        .args(["--timeout", "20"])
        .args(extra)
        .env("IPSEC_PSK", psk)
        .output()
        .expect("run ipsec load")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Checks what every successful run's report says, and prints the figures.
fn check_success(o: &Output, n: u64) -> Value {
    assert!(o.status.success(), "{}", text(o));
    let v = report(o);
    assert_eq!(v["total"], n, "{v}");
    assert_eq!(v["handshakes"], n, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["failures"], serde_json::json!({}), "{v}");
    assert_eq!(v["deletes"]["answered"], n, "{v}");
    assert_eq!(v["deletes"]["failed"], serde_json::json!({}), "{v}");
    let lat = &v["latency_ms"];
    let p: Vec<f64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|k| {
            lat[k]
                .as_f64()
                .unwrap_or_else(|| panic!("latency {k}: {v}"))
        })
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{v}");
    assert!(v["rate"].as_f64().is_some_and(|r| r > 0.0), "{v}");
    eprintln!(
        "{n} handshakes: {:.1}/s, latency ms p50 {:.2} p99 {:.2} ({})",
        v["rate"].as_f64().unwrap(),
        p[0],
        p[2],
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    v
}

#[test]
fn twenty_handshakes_five_at_a_time() {
    let (me, them) = ips(1);
    let r = Responder::start(them, 5301);
    let o = load(
        me,
        &r,
        PSK,
        &["--count", "20", "--concurrency", "5", "--json"],
    );
    let v = check_success(&o, 20);
    assert_eq!(v["concurrency"], 5);
    assert_eq!(v["kept"], false);
    let seen = r.finish();
    assert_eq!(seen.established, 20, "{seen:?}");
    assert_eq!(seen.deleted_by_peer, 20, "{seen:?}");
    // Each initiator had its own identity.
    let want: BTreeSet<String> = (1..=20).map(|n| format!("@load-{n}.example")).collect();
    assert_eq!(seen.peers, want);
}

#[test]
fn keep_holds_every_ike_sa_until_the_end() {
    let (me, them) = ips(2);
    let r = Responder::start(them, 5302);
    let o = load(
        me,
        &r,
        PSK,
        &["--count", "20", "--concurrency", "5", "--keep", "--json"],
    );
    let v = check_success(&o, 20);
    assert_eq!(v["kept"], true);
    let seen = r.finish();
    assert_eq!(seen.established, 20, "{seen:?}");
    assert_eq!(seen.peak, 20, "all IKE SAs were up at once: {seen:?}");
    assert_eq!(seen.deleted_by_peer, 20, "{seen:?}");
}

#[test]
fn a_wrong_psk_fails_every_handshake_and_the_run() {
    let (me, them) = ips(3);
    let r = Responder::start(them, 5303);
    let o = load(
        me,
        &r,
        "not-the-psk",
        &["--count", "20", "--concurrency", "5", "--json"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let v = report(&o);
    assert_eq!(v["handshakes"], 0, "{v}");
    assert_eq!(v["failed"], 20, "{v}");
    assert_eq!(v["latency_ms"], Value::Null, "{v}");
    let failures = v["failures"].as_object().expect("failures by reason");
    assert_eq!(failures.len(), 1, "one reason: {v}");
    let (reason, n) = failures.iter().next().unwrap();
    assert_eq!(n, 20, "{v}");
    assert!(
        reason
            .to_ascii_lowercase()
            .contains("authentication_failed")
            || reason.contains("authentication failed"),
        "{reason}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("20 of 20 handshakes failed"),
        "{}",
        text(&o)
    );
    assert_eq!(r.finish().established, 0);
}

#[test]
fn a_refused_identity_fails_in_the_text_report() {
    let (me, them) = ips(4);
    let r = Responder::start(them, 5304);
    let o = load(
        me,
        &r,
        PSK,
        &[
            "--count",
            "4",
            "--concurrency",
            "2",
            "--id-format",
            "other-{n}.example",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("0 of 4 handshakes"), "{}", text(&o));
    assert!(out.contains("failed: 4"), "{}", text(&o));
    assert_eq!(r.finish().established, 0);
}

#[test]
fn bad_options_are_refused_before_any_handshake() {
    let (me, them) = ips(5);
    let r = Responder::start(them, 5305);
    for (extra, want) in [
        (&["--count", "1", "--id-format", ""][..], "--id-format"),
        (&["--count", "1", "--ike", "nonsense"][..], "--ike"),
        (&["--count", "0"][..], "count"),
        (&["--count", "1", "--timeout", "0"][..], "--timeout"),
    ] {
        let o = load(me, &r, PSK, extra);
        assert!(!o.status.success(), "{extra:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{extra:?}: {}",
            text(&o)
        );
    }
    assert_eq!(r.finish().established, 0);
}

/// The figures for docs/performance.md, not a check:
/// `cargo test --release -p ipsec-cli --test load -- --ignored --nocapture`
/// (`IPSEC_LOAD_COUNT`, `IPSEC_LOAD_CONCURRENCY` change the run, `IPSEC_LOAD_KEEP`
/// adds `--keep`). The responder is
/// this file's single-threaded one, on the same machine.
#[test]
#[ignore = "a measurement; run it with --release"]
fn measure_loopback_rate() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.into());
    let count = env("IPSEC_LOAD_COUNT", "2000");
    let conc = env("IPSEC_LOAD_CONCURRENCY", "16");
    let (me, them) = ips(6);
    let r = Responder::start(them, 5306);
    let mut args = vec!["--count", &count, "--concurrency", &conc, "--json"];
    if std::env::var_os("IPSEC_LOAD_KEEP").is_some() {
        args.push("--keep");
    }
    let o = load(me, &r, PSK, &args);
    let v = check_success(&o, count.parse().unwrap());
    eprintln!("{v:#}");
    eprintln!("responder: {:?}", r.finish().peak);
}
