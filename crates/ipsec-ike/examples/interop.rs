//! Drives one IKE SA against a real peer over UDP 500/4500, for interop checks with
//! strongSwan (see docs/interop.md):
//!
//! ```text
//! ip netns exec ns-a cargo run -p ipsec-ike --example interop -- \
//!     --local 198.18.0.1 --remote 198.18.0.2 --psk interop-rig-psk-0123456789abcdef \
//!     --id a.ipsec.test --remote-id b.ipsec.test \
//!     --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 \
//!     --script rekey-child,rekey-ike,liveness,create-child,delete-child,close
//! ```
//!
//! Without `--remote` it listens as a responder. It prints every event and exits after
//! the script (or when the IKE SA closes).
#![allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use ipsec_ike::{Config, Event, IkeEndpoint, Instant, SaHandle, TrafficSelector};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn prefix(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

struct Io {
    s500: UdpSocket,
    s4500: UdpSocket,
    ip: IpAddr,
    start: StdInstant,
}

impl Io {
    fn now(&self) -> Instant {
        Instant(self.start.elapsed().as_nanos() as u64)
    }

    fn flush(&self, ep: &mut IkeEndpoint) -> Vec<(SaHandle, Event)> {
        while let Some(t) = ep.poll_transmit() {
            let s = if t.local.port() == 4500 {
                &self.s4500
            } else {
                &self.s500
            };
            println!("-> {} bytes {} -> {}", t.payload.len(), t.local, t.remote);
            if let Err(e) = s.send_to(&t.payload, t.remote) {
                println!("send error: {e}");
            }
        }
        let mut v = Vec::new();
        while let Some(e) = ep.poll_event() {
            match &e.1 {
                Event::ChildSaInstalled { id, params, suite } => println!(
                    "EVENT {} ChildSaInstalled {id} {suite} in={} out={} local_ts={:?} remote_ts={:?} encap={:?}",
                    e.0, params.inbound_spi, params.outbound_spi, params.local_ts.as_slice(), params.remote_ts.as_slice(), params.udp_encap
                ),
                other => println!("EVENT {} {other:?}", e.0),
            }
            v.push(e);
        }
        v
    }

    /// Runs the endpoint for `d`, returning the events.
    fn run(&self, ep: &mut IkeEndpoint, d: StdDuration) -> Vec<(SaHandle, Event)> {
        let end = StdInstant::now() + d;
        let mut events = self.flush(ep);
        let mut buf = vec![0u8; 65536];
        while StdInstant::now() < end {
            let mut got = false;
            for (s, port) in [(&self.s500, 500), (&self.s4500, 4500)] {
                while let Ok((n, from)) = s.recv_from(&mut buf) {
                    got = true;
                    println!("<- {n} bytes {from} -> :{port}");
                    ep.handle_datagram(self.now(), SocketAddr::new(self.ip, port), from, &buf[..n]);
                    events.extend(self.flush(ep));
                }
            }
            if ep.poll_timeout().is_some_and(|t| t <= self.now()) {
                ep.handle_timeout(self.now());
                events.extend(self.flush(ep));
            }
            if !got {
                std::thread::sleep(StdDuration::from_millis(5));
            }
        }
        events
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let local: IpAddr = arg(&args, "--local").expect("--local").parse().unwrap();
    let remote: Option<IpAddr> = arg(&args, "--remote").map(|r| r.parse().unwrap());
    let psk = arg(&args, "--psk").unwrap_or_else(|| "interop-rig-psk-0123456789abcdef".into());
    let id = arg(&args, "--id").unwrap_or_else(|| "a.ipsec.test".into());
    let mut cfg = Config::new(id.parse().unwrap(), psk.as_str());
    if let Some(r) = arg(&args, "--remote-id") {
        cfg.remote_id = Some(r.parse().unwrap());
    }
    if let Some(p) = arg(&args, "--ike") {
        cfg = cfg.with_ike_proposals(&p).unwrap();
    }
    if let Some(p) = arg(&args, "--esp") {
        cfg = cfg.with_esp_proposals(&p).unwrap();
    }
    if let Some(t) = arg(&args, "--local-ts") {
        cfg.local_ts = vec![prefix(&t)];
    }
    if let Some(t) = arg(&args, "--remote-ts") {
        cfg.remote_ts = vec![prefix(&t)];
    }
    if let Some(m) = arg(&args, "--mtu") {
        cfg.fragment_mtu = Some(m.parse().unwrap());
    }
    if args.iter().any(|a| a == "--transport") {
        cfg.mode = ipsec_ike::Mode::Transport;
    }
    let wait = StdDuration::from_secs(arg(&args, "--wait").map_or(2, |w| w.parse().unwrap()));
    let script = arg(&args, "--script").unwrap_or_default();
    let io = Io {
        s500: UdpSocket::bind((local, 500)).expect("bind 500"),
        s4500: UdpSocket::bind((local, 4500)).expect("bind 4500"),
        ip: local,
        start: StdInstant::now(),
    };
    io.s500.set_nonblocking(true).unwrap();
    io.s4500.set_nonblocking(true).unwrap();
    let mut ep = IkeEndpoint::new(Arc::new(cfg), &ipsec_crypto_rustcrypto::PROVIDER);
    let h = match remote {
        Some(r) => ep
            .connect(
                io.now(),
                SocketAddr::new(local, 500),
                SocketAddr::new(r, 500),
            )
            .unwrap(),
        None => {
            println!("listening on {local}");
            loop {
                let ev = io.run(&mut ep, StdDuration::from_millis(200));
                if let Some((h, _)) = ev
                    .iter()
                    .find(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
                {
                    break *h;
                }
            }
        }
    };
    let ev = io.run(&mut ep, wait);
    if !ep.is_established(h) {
        println!("RESULT not established: {ev:?}");
        std::process::exit(1);
    }
    println!("RESULT established");
    for step in script.split(',').filter(|s| !s.is_empty()) {
        let now = io.now();
        let child = ep.child_sas(h).first().copied();
        println!("STEP {step}");
        let r = match step {
            "rekey-child" => ep.rekey_child_sa(now, h, child.expect("child")),
            "rekey-ike" => ep.rekey_ike_sa(now, h),
            "liveness" => ep.check_liveness(now, h),
            "create-child" => ep.create_child_sa(now, h).map(|_| ()),
            "delete-child" => ep.delete_child_sa(now, h, child.expect("child")),
            "close" => ep.close(now, h),
            "wait" => Ok(()),
            other => panic!("unknown step {other}"),
        };
        if let Err(e) = r {
            println!("RESULT step {step} failed: {e}");
            std::process::exit(1);
        }
        let ev = io.run(&mut ep, wait);
        let failed = ev
            .iter()
            .any(|(_, e)| matches!(e, Event::ChildSaFailed { .. } | Event::IkeSaClosed { .. }));
        println!(
            "RESULT step {step}: {}",
            if failed {
                "events with failure/close"
            } else {
                "ok"
            }
        );
        if !ep.is_established(h) && step != "close" {
            std::process::exit(1);
        }
    }
}
