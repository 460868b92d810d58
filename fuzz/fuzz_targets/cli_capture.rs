//! The CLI's capture reader (`ipsec_cli::capture`) on arbitrary bytes: nothing panics
//! (pcap, pcapng, and every link layer we strip); a stripped link layer leaves a suffix
//! of the frame; and a pcap written from fuzzer-chosen packets (link type RAW) reads
//! back to exactly those packets.
#![no_main]

use std::time::Duration;

use ipsec_cli::capture::{ip_from_link, read_frames_from};
use libfuzzer_sys::fuzz_target;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

const LINKS: [DataLink; 9] = [
    DataLink::RAW,
    DataLink::IPV4,
    DataLink::IPV6,
    DataLink::ETHERNET,
    DataLink::LINUX_SLL,
    DataLink::LINUX_SLL2,
    DataLink::NULL,
    DataLink::LOOP,
    DataLink::PPP,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // The link layers.
    let link = LINKS[usize::from(sel) % LINKS.len()];
    if let Ok(ip) = ip_from_link(link, rest) {
        assert!(rest.ends_with(ip));
    }
    if sel & 0x80 == 0 {
        // A whole capture file.
        if let Ok(frames) = read_frames_from(rest) {
            for f in frames {
                if let Ok(ip) = f.ip {
                    assert!(ip.len() <= rest.len());
                }
            }
        }
        return;
    }
    // Our packets through a pcap file and back: length-prefixed (one byte) chunks.
    let mut packets = Vec::new();
    let mut r = rest;
    while let Some((&n, tail)) = r.split_first() {
        let n = usize::from(n).min(tail.len());
        packets.push(&tail[..n]);
        r = &tail[n..];
    }
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        let t = Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(t, p.len() as u32, p))
            .unwrap();
    }
    let file = w.into_writer();
    let frames = read_frames_from(&file[..]).unwrap();
    assert_eq!(frames.len(), packets.len());
    for (i, (f, p)) in frames.iter().zip(&packets).enumerate() {
        assert_eq!(f.ip.as_deref(), Ok(*p));
        assert_eq!(f.time, Duration::from_micros(i as u64));
    }
});
