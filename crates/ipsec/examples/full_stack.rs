//! Getting started, shape 3: the full stack. IKEv2 negotiates, the SA database
//! ([`Sad`]) takes each Child SA, and the RFC 4301 processing model does the rest in
//! two calls: [`Sad::process_outbound_udp`] on send and [`Sad::process_inbound_udp`]
//! on receive.
//!
//! Two nodes run in one thread over real UDP sockets on localhost. Each has
//! - an [`IkeEndpoint`] on an IKE socket, with the traffic selectors of its site
//!   (a: 10.1.0.0/16, b: 10.2.0.0/16);
//! - a [`Sad`] with one outbound PROTECT rule for site-to-site traffic, installed at
//!   start-up; each [`Event::ChildSaInstalled`] becomes [`Sad::add_sa`] bound to that
//!   rule, with ESP in UDP on the node's data-plane socket (RFC 3948);
//! - a data-plane socket for ESP.
//!
//! Then an inner IPv4 packet from 10.1.0.1 to 10.2.0.1 goes through a's SAD, over
//! UDP, and out of b's SAD as it went in.
//!
//! Run it with `cargo run -p ipsec --example full_stack`.
// A program (not a library) prints and reads the clock.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::error::Error;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use ipsec::core::child::UdpEncap;
use ipsec::core::time::StdClock;
use ipsec::core::{Instant, PacketBuf, TrafficSelector};
use ipsec::ike::{Config, Event, IkeEndpoint};
use ipsec::sad::{
    Action, AddrRange, PolicyId, PolicyRule, SaOptions, SaTemplate, Sad, SadConfig, Selector, Spd,
    UdpInbound, UdpOutbound, MAX_HEADROOM, MAX_TAILROOM, UDP_INBOUND_HEADROOM,
};

type BoxError = Box<dyn Error + Send + Sync>;

struct Node {
    name: &'static str,
    ike: IkeEndpoint,
    ike_sock: UdpSocket,
    esp_sock: UdpSocket,
    sad: Sad,
    rule: PolicyId,
    installed: usize,
}

impl Node {
    fn new(name: &'static str, local: &str, remote: &str) -> Result<Node, BoxError> {
        let provider = &ipsec::DEFAULT_PROVIDER;
        let prefix = |s: &str| -> Result<TrafficSelector, BoxError> {
            let (a, l) = s.split_once('/').ok_or("prefix")?;
            TrafficSelector::from_prefix(a.parse()?, l.parse()?).ok_or_else(|| "prefix".into())
        };
        let mut conf = Config::new(
            format!("{name}.example").parse()?,
            "getting-started-psk-0123456789",
        );
        conf.local_ts = vec![prefix(local)?];
        conf.remote_ts = vec![prefix(remote)?];
        let ike_sock = UdpSocket::bind("127.0.0.1:0")?;
        let esp_sock = UdpSocket::bind("127.0.0.1:0")?;
        ike_sock.set_nonblocking(true)?;
        esp_sock.set_read_timeout(Some(StdDuration::from_secs(5)))?;

        // The policy: site-to-site traffic is protected by ESP in tunnel mode between
        // the nodes. The SA arrives later from IKE and binds to this rule.
        let range = |s: &str| -> Result<AddrRange, BoxError> {
            let (a, l) = s.split_once('/').ok_or("prefix")?;
            AddrRange::prefix(a.parse()?, l.parse()?).ok_or_else(|| "prefix".into())
        };
        let here: IpAddr = "127.0.0.1".parse()?;
        let rule = PolicyRule::new(
            1,
            Selector::between(range(local)?, range(remote)?),
            Action::Protect(SaTemplate::esp_tunnel(here, here)),
        );
        let sad = Sad::new(provider, SadConfig::default())?;
        sad.set_outbound_spd(Spd::new(vec![rule])?);
        Ok(Node {
            name,
            ike: IkeEndpoint::new(Arc::new(conf), provider),
            ike_sock,
            esp_sock,
            sad,
            rule: rule.id,
            installed: 0,
        })
    }

    /// One round of the IKE loop: send, receive what is there, run timers, and turn
    /// installed Child SAs into SAD entries towards `peer_esp_port`.
    fn turn(&mut self, now: Instant, peer_esp_port: u16) -> Result<(), BoxError> {
        while let Some(t) = self.ike.poll_transmit() {
            self.ike_sock.send_to(&t.payload, t.remote)?;
        }
        let mut buf = [0u8; 65536];
        let local = self.ike_sock.local_addr()?;
        while let Ok((n, from)) = self.ike_sock.recv_from(&mut buf) {
            self.ike.handle_datagram(now, local, from, &buf[..n]);
        }
        self.ike.handle_timeout(now);
        while let Some((_, event)) = self.ike.poll_event() {
            if let Event::ChildSaInstalled {
                mut params, suite, ..
            } = event
            {
                // Our data plane carries ESP in UDP between the data-plane sockets.
                params.udp_encap = Some(UdpEncap {
                    local_port: self.esp_sock.local_addr()?.port(),
                    remote_port: peer_esp_port,
                });
                self.sad
                    .add_sa(now, &params, SaOptions::new().policy(self.rule))?;
                self.installed += 1;
                println!(
                    "{}: Child SA {} in the SAD ({suite})",
                    self.name, params.inbound_spi
                );
            }
        }
        Ok(())
    }
}

/// A minimal IPv4/UDP packet from `src` to `dst` carrying `data` (checksum left 0:
/// the SAD does not check the inner header's checksum).
fn inner_packet(src: [u8; 4], dst: [u8; 4], data: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + data.len()).expect("small packet");
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    p
}

fn main() -> Result<(), BoxError> {
    let clock = StdClock::new(StdInstant::now());
    let now = || clock.instant(StdInstant::now());
    let mut a = Node::new("a", "10.1.0.0/16", "10.2.0.0/16")?;
    let mut b = Node::new("b", "10.2.0.0/16", "10.1.0.0/16")?;
    let (a_esp, b_esp) = (a.esp_sock.local_addr()?, b.esp_sock.local_addr()?);
    a.ike
        .connect(now(), a.ike_sock.local_addr()?, b.ike_sock.local_addr()?)?;
    let start = StdInstant::now();
    while a.installed == 0 || b.installed == 0 {
        if start.elapsed() > StdDuration::from_secs(10) {
            return Err("no Child SA after 10 s".into());
        }
        a.turn(now(), b_esp.port())?;
        b.turn(now(), a_esp.port())?;
        std::thread::sleep(StdDuration::from_millis(1));
    }

    // Send: the SAD finds the rule and its SA and seals; the buffer keeps the ESP
    // packet, to go to `to` from the data-plane socket.
    let inner = inner_packet([10, 1, 0, 1], [10, 2, 0, 1], b"through the full stack");
    let mut storage = vec![0u8; MAX_HEADROOM + inner.len() + MAX_TAILROOM];
    storage[MAX_HEADROOM..MAX_HEADROOM + inner.len()].copy_from_slice(&inner);
    let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, inner.len())?;
    match a.sad.process_outbound_udp(now(), &mut buf) {
        UdpOutbound::Send { to, seq, spi, .. } => {
            a.esp_sock.send_to(buf.body(), to)?;
            println!("a: sealed seq {seq} on SPI {spi}, sent to {to}");
        }
        other => return Err(format!("a: not sent: {other:?}").into()),
    }

    // Receive: the SAD finds the SA by SPI, checks replay, opens, decapsulates and
    // checks the inner packet against the SA's selectors. The buffer needs
    // `UDP_INBOUND_HEADROOM` bytes in front of the payload (for transport mode, which
    // rebuilds an IP header).
    let mut rstorage = vec![0u8; UDP_INBOUND_HEADROOM + 2048];
    let (n, from) = b
        .esp_sock
        .recv_from(&mut rstorage[UDP_INBOUND_HEADROOM..])?;
    let mut rbuf = PacketBuf::new(&mut rstorage[..], UDP_INBOUND_HEADROOM, n)?;
    match b.sad.process_inbound_udp(now(), b_esp, from, &mut rbuf) {
        UdpInbound::Deliver { seq, .. } => {
            assert_eq!(rbuf.body(), &inner[..]);
            println!("b: delivered seq {seq}: the inner packet, unchanged");
        }
        other => return Err(format!("b: not delivered: {other:?}").into()),
    }

    // A packet outside the policy (10.1.0.1 to 192.0.2.1) is not protected.
    let stray = inner_packet([10, 1, 0, 1], [192, 0, 2, 1], b"no policy");
    let mut storage = vec![0u8; MAX_HEADROOM + stray.len() + MAX_TAILROOM];
    storage[MAX_HEADROOM..MAX_HEADROOM + stray.len()].copy_from_slice(&stray);
    let mut buf = PacketBuf::new(&mut storage[..], MAX_HEADROOM, stray.len())?;
    let verdict = a.sad.process_outbound_udp(now(), &mut buf);
    println!("a: a packet no rule covers: {verdict:?}");
    assert!(matches!(verdict, UdpOutbound::Discard(None)));
    Ok(())
}
