//! Getting started, shape 2: IKEv2 with your own data plane, under std threads.
//!
//! Two [`IkeEndpoint`]s, each on its own thread with its own UDP socket on localhost,
//! negotiate an IKE SA and a Child SA with a pre-shared key. The endpoint is sans-I/O:
//! the thread owns the socket and the clock and runs the loop every embedder writes:
//!
//! 1. send what [`IkeEndpoint::poll_transmit`] hands out;
//! 2. act on [`IkeEndpoint::poll_event`] (here: pass the Child SA's keys to the main
//!    thread, which is the "data plane");
//! 3. wait for a datagram until [`IkeEndpoint::poll_timeout`], then call
//!    [`IkeEndpoint::handle_datagram`] or [`IkeEndpoint::handle_timeout`];
//! 4. take commands (here: close) from a channel between waits.
//!
//! The main thread builds ESP SAs from the negotiated [`ChildSaParams`]
//! ([`EspOutbound::from_params`], [`EspInbound::from_params`]), sends one packet
//! through them, then tells the initiator to close, which deletes the IKE SA at both
//! ends (an INFORMATIONAL exchange).
//!
//! Run it with `cargo run -p ipsec --example ike_threads`.
// A program (not a library) prints and reads the clock.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::error::Error;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use ipsec::core::time::StdClock;
use ipsec::core::{ChildSaParams, IpProto, PacketBuf};
use ipsec::esp::{EspInbound, EspOutbound, OpenOptions};
use ipsec::ike::{Config, Event, IkeEndpoint};

/// What the endpoint threads tell the main thread.
enum Report {
    Installed(Box<ChildSaParams>),
    Closed(String),
}

/// What the main thread tells an endpoint thread.
enum Command {
    Close,
}

/// The I/O loop around one endpoint. `initiate` names the peer to connect to.
fn run(
    mut ep: IkeEndpoint,
    socket: UdpSocket,
    initiate: Option<SocketAddr>,
    commands: mpsc::Receiver<Command>,
    reports: mpsc::Sender<Report>,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let clock = StdClock::new(StdInstant::now());
    let now = || clock.instant(StdInstant::now());
    let local = socket.local_addr()?;
    if let Some(peer) = initiate {
        ep.connect(now(), local, peer)?;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(t) = ep.poll_transmit() {
            socket.send_to(&t.payload, t.remote)?;
        }
        while let Some((_, event)) = ep.poll_event() {
            match event {
                Event::ChildSaInstalled { params, suite, .. } => {
                    println!("{local}: Child SA installed ({suite})");
                    reports.send(Report::Installed(Box::new(params)))?;
                }
                Event::IkeSaClosed { reason } => {
                    reports.send(Report::Closed(reason.to_string()))?;
                    // Flush the last answer (the Delete's response) before leaving.
                    while let Some(t) = ep.poll_transmit() {
                        socket.send_to(&t.payload, t.remote)?;
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
        if let Ok(Command::Close) = commands.try_recv() {
            for sa in ep.sa_handles() {
                ep.close(now(), sa)?;
            }
            continue;
        }
        // Wait for a datagram until the endpoint's next timer, but at most 50 ms so
        // that commands are seen promptly.
        let wait = ep
            .poll_timeout()
            .map(|t| StdDuration::from_nanos(t.0.saturating_sub(now().0)))
            .unwrap_or(StdDuration::from_millis(50))
            .clamp(StdDuration::from_millis(1), StdDuration::from_millis(50));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                ep.handle_datagram(now(), local, from, &buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                ep.handle_timeout(now());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let psk = "getting-started-psk-0123456789";
    let a_conf = Config::new("a.example".parse()?, psk);
    let mut b_conf = Config::new("b.example".parse()?, psk);
    b_conf.remote_id = Some("a.example".parse()?);
    let a_sock = UdpSocket::bind("127.0.0.1:0")?;
    let b_sock = UdpSocket::bind("127.0.0.1:0")?;
    let b_addr = b_sock.local_addr()?;
    // The data plane's own sockets. A real deployment receives ESP and IKE on the
    // same port 4500 and tells them apart with `ipsec::esp::udp::classify`.
    let (a_esp, b_esp) = (
        UdpSocket::bind("127.0.0.1:0")?,
        UdpSocket::bind("127.0.0.1:0")?,
    );

    let (a_cmd, a_cmd_rx) = mpsc::channel();
    let (_b_cmd, b_cmd_rx) = mpsc::channel();
    let (a_rep_tx, a_rep) = mpsc::channel();
    let (b_rep_tx, b_rep) = mpsc::channel();
    let a = IkeEndpoint::new(Arc::new(a_conf), provider);
    let b = IkeEndpoint::new(Arc::new(b_conf), provider);
    let ta = thread::spawn(move || run(a, a_sock, Some(b_addr), a_cmd_rx, a_rep_tx));
    let tb = thread::spawn(move || run(b, b_sock, None, b_cmd_rx, b_rep_tx));

    let timeout = StdDuration::from_secs(10);
    let (Report::Installed(a_sa), Report::Installed(b_sa)) =
        (a_rep.recv_timeout(timeout)?, b_rep.recv_timeout(timeout)?)
    else {
        return Err("the handshake did not install a Child SA".into());
    };
    println!(
        "negotiated SPIs: a sends on {}, b sends on {}",
        a_sa.outbound_spi, b_sa.outbound_spi
    );

    // The data plane: one packet from a to b through the negotiated SA. The keys
    // are in the params (zeroized when they drop) and never printed.
    let mut tx = EspOutbound::from_params(provider, &a_sa)?;
    let mut rx = EspInbound::from_params(provider, &b_sa)?;
    let payload = b"a packet through the negotiated SA";
    let o = tx.overhead(payload.len());
    let mut storage = vec![0u8; o.head + payload.len() + o.tail];
    storage[o.head..o.head + payload.len()].copy_from_slice(payload);
    let mut pkt = PacketBuf::new(&mut storage[..], o.head, payload.len())?;
    tx.seal(&mut pkt, IpProto::UDP)?;
    a_esp.send_to(pkt.body(), b_esp.local_addr()?)?;
    b_esp.set_read_timeout(Some(timeout))?;
    let mut rbuf = vec![0u8; 2048];
    let (n, _) = b_esp.recv_from(&mut rbuf)?;
    let mut rpkt = PacketBuf::new(&mut rbuf[..], 0, n)?;
    let opened = rx.open(&mut rpkt, OpenOptions::new())?;
    assert_eq!(rpkt.body(), payload);
    println!(
        "b opened ESP seq {}: {:?}",
        opened.seq,
        String::from_utf8_lossy(rpkt.body())
    );

    // Close from a: both ends report the IKE SA closed.
    a_cmd.send(Command::Close)?;
    for (name, rep) in [("a", &a_rep), ("b", &b_rep)] {
        match rep.recv_timeout(timeout)? {
            Report::Closed(why) => println!("{name}: IKE SA closed ({why})"),
            Report::Installed(_) => return Err("unexpected Child SA".into()),
        }
    }
    ta.join().map_err(|_| "thread a panicked")??;
    tb.join().map_err(|_| "thread b panicked")??;
    Ok(())
}
