//! Getting started: driving an [`IkeEndpoint`] under tokio.
//!
//! The same sans-I/O endpoint as in `ike_threads.rs`, in one tokio task per
//! endpoint. The task `select!`s over three things: a datagram on its socket, the
//! endpoint's next timer ([`IkeEndpoint::poll_timeout`] as a `sleep_until`), and a
//! command from an `mpsc` channel. After each, it sends what
//! [`IkeEndpoint::poll_transmit`] hands out and forwards [`IkeEndpoint::poll_event`]s.
//!
//! Here the initiator connects, both report their Child SA, the main task asks the
//! initiator to rekey the Child SA and then to close the IKE SA.
//!
//! Run it with `cargo run -p ipsec --example ike_tokio`.
// A program (not a library) prints and reads the clock.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use ipsec::core::time::StdClock;
use ipsec::ike::{Config, Event, IkeEndpoint};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant as TokioInstant};

type BoxError = Box<dyn Error + Send + Sync>;

/// Commands the application sends to an endpoint task.
#[derive(Debug)]
enum Command {
    RekeyChildren,
    Close,
}

/// One endpoint's task: it owns the endpoint and the socket.
async fn endpoint_task(
    mut ep: IkeEndpoint,
    socket: UdpSocket,
    initiate: Option<SocketAddr>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) -> Result<(), BoxError> {
    let clock = StdClock::new(std::time::Instant::now());
    let now = || clock.instant(std::time::Instant::now());
    // The endpoint's clock back to tokio's, for `sleep_until`.
    let deadline = |t: ipsec::core::Instant| TokioInstant::from_std(clock.to_std(t));
    let local = socket.local_addr()?;
    if let Some(peer) = initiate {
        ep.connect(now(), local, peer)?;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(t) = ep.poll_transmit() {
            socket.send_to(&t.payload, t.remote).await?;
        }
        while let Some((_, event)) = ep.poll_event() {
            let closed = matches!(event, Event::IkeSaClosed { .. });
            events.send(event).await?;
            if closed {
                while let Some(t) = ep.poll_transmit() {
                    socket.send_to(&t.payload, t.remote).await?;
                }
                return Ok(());
            }
        }
        let next_timer = ep
            .poll_timeout()
            .map(deadline)
            .unwrap_or_else(|| TokioInstant::now() + StdDuration::from_secs(3600));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                ep.handle_datagram(now(), local, from, &buf[..n]);
            }
            () = sleep_until(next_timer) => ep.handle_timeout(now()),
            Some(cmd) = commands.recv() => {
                for sa in ep.sa_handles() {
                    match cmd {
                        Command::RekeyChildren => {
                            for child in ep.child_sas(sa) {
                                ep.rekey_child_sa(now(), sa, child)?;
                            }
                        }
                        Command::Close => ep.close(now(), sa)?,
                    }
                }
            }
        }
    }
}

/// The next event of `rx` that `want` accepts, within 10 s.
async fn next_matching(
    rx: &mut mpsc::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, BoxError> {
    timeout(StdDuration::from_secs(10), async {
        while let Some(e) = rx.recv().await {
            if want(&e) {
                return Ok(e);
            }
        }
        Err("the endpoint task ended".into())
    })
    .await?
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let psk = "getting-started-psk-0123456789";
    let a_sock = UdpSocket::bind("127.0.0.1:0").await?;
    let b_sock = UdpSocket::bind("127.0.0.1:0").await?;
    let b_addr = b_sock.local_addr()?;
    let a = IkeEndpoint::new(Arc::new(Config::new("a.example".parse()?, psk)), provider);
    let b = IkeEndpoint::new(Arc::new(Config::new("b.example".parse()?, psk)), provider);

    let (a_cmd, a_cmd_rx) = mpsc::channel(8);
    let (_b_cmd, b_cmd_rx) = mpsc::channel(8);
    let (a_ev_tx, mut a_ev) = mpsc::channel(64);
    let (b_ev_tx, mut b_ev) = mpsc::channel(64);
    let ta = tokio::spawn(endpoint_task(a, a_sock, Some(b_addr), a_cmd_rx, a_ev_tx));
    let tb = tokio::spawn(endpoint_task(b, b_sock, None, b_cmd_rx, b_ev_tx));

    let installed = |e: &Event| matches!(e, Event::ChildSaInstalled { .. });
    for (name, rx) in [("a", &mut a_ev), ("b", &mut b_ev)] {
        if let Event::ChildSaInstalled { params, suite, .. } = next_matching(rx, installed).await? {
            println!(
                "{name}: Child SA {} installed ({suite})",
                params.inbound_spi
            );
        }
    }

    a_cmd.send(Command::RekeyChildren).await?;
    let rekeyed = |e: &Event| matches!(e, Event::ChildSaRekeyed { .. });
    for (name, rx) in [("a", &mut a_ev), ("b", &mut b_ev)] {
        next_matching(rx, rekeyed).await?;
        println!("{name}: Child SA rekeyed");
    }

    a_cmd.send(Command::Close).await?;
    let closed = |e: &Event| matches!(e, Event::IkeSaClosed { .. });
    for (name, rx) in [("a", &mut a_ev), ("b", &mut b_ev)] {
        if let Event::IkeSaClosed { reason } = next_matching(rx, closed).await? {
            println!("{name}: IKE SA closed ({reason})");
        }
    }
    ta.await??;
    tb.await??;
    Ok(())
}
