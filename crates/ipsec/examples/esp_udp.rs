//! Getting started, shape 1: ESP alone, with manual keys, over a UDP socket.
//!
//! No IKE and no SA database: both ends are configured with the same SPI and key (as
//! with `ip xfrm state add ... enc rfc4106(gcm(aes))` on Linux), and ESP travels in
//! UDP datagrams as RFC 3948 frames it. Each inner packet is an IPv4 packet, as a VPN
//! would read it from a TUN device.
//!
//! - **send**: [`EspOutbound::overhead`] sizes the buffer once, [`EspOutbound::seal`]
//!   encrypts in place (the body becomes the ESP packet), the socket sends the body;
//! - **receive**: [`udp::classify`] tells ESP from IKE and keepalives,
//!   [`EspInbound::open`] checks replay, authenticates and decrypts in place, and
//!   [`tunnel::finish`] checks that the payload is the IP packet the next header says
//!   (and applies the RFC 6040 ECN rules).
//!
//! Run it with `cargo run -p ipsec --example esp_udp`.
// A program (not a library) prints and reads the clock.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::error::Error;
use std::net::UdpSocket;
use std::time::Duration;

use ipsec::core::{IpProto, KeyMaterial, Spi};
use ipsec::crypto::suites::AES_GCM_16_256;
use ipsec::esp::udp::{classify, Classified};
use ipsec::esp::{tunnel, EspInbound, EspOutbound, OpenOptions, PacketBuf};

/// A minimal IPv4/UDP packet from 10.0.0.1 to 10.0.0.2 carrying `data`.
fn inner_packet(data: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + data.len()).expect("small packet");
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]); // ports 12345 -> 53
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // no UDP checksum
    p.extend_from_slice(data);
    p
}

fn main() -> Result<(), Box<dyn Error>> {
    let provider = &ipsec::DEFAULT_PROVIDER;
    // Manual keying: AES-256-GCM takes 32 key bytes and a 4-byte salt. Real keys come
    // from a secret store (or from IKE, see the other examples), never a constant.
    let keys = KeyMaterial::new(&[0x42; 36], &[])?;
    let spi = Spi(0x0000_1001);
    let esn = true;
    let mut tx = EspOutbound::new(provider, spi, &AES_GCM_16_256, None, &keys, esn)?;
    let mut rx = EspInbound::new(provider, spi, &AES_GCM_16_256, None, &keys, esn, 128)?;

    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;

    let mut sent = Vec::new();
    for i in 0..3u8 {
        // Send: seal in place in a buffer with room for the ESP header and trailer.
        let inner = inner_packet(format!("hello #{i}").as_bytes());
        let o = tx.overhead(inner.len());
        let mut storage = vec![0u8; o.head + inner.len() + o.tail];
        storage[o.head..o.head + inner.len()].copy_from_slice(&inner);
        let mut buf = PacketBuf::new(&mut storage[..], o.head, inner.len())?;
        let seq = tx.seal(&mut buf, IpProto::IPV4)?;
        a.send_to(buf.body(), b.local_addr()?)?;
        sent.push(buf.body().to_vec());
        println!(
            "sent ESP seq {seq}: {} bytes for a {}-byte packet",
            buf.body().len(),
            inner.len()
        );

        // Receive: classify, open, finish.
        let mut rbuf = vec![0u8; 2048];
        let (n, from) = b.recv_from(&mut rbuf)?;
        if !matches!(classify(&rbuf[..n]), Classified::Esp(_)) {
            return Err("not an ESP datagram".into());
        }
        let mut buf = PacketBuf::new(&mut rbuf[..], 0, n)?;
        let opened = rx.open(&mut buf, OpenOptions::new())?;
        tunnel::finish(&mut buf, opened.next_header, 0)?;
        assert_eq!(buf.body(), &inner[..], "the inner packet comes back");
        println!(
            "received seq {} from {from}: {} bytes of IPv4",
            opened.seq,
            buf.body().len()
        );
    }

    // A replayed datagram is refused before any decryption.
    let mut replay = sent[0].clone();
    let len = replay.len();
    let mut buf = PacketBuf::new(&mut replay[..], 0, len)?;
    let err = rx.open(&mut buf, OpenOptions::new()).unwrap_err();
    println!("replayed seq 1: {err}");
    assert!(err.to_string().contains("replay"), "{err}");
    Ok(())
}
