//! TCP GRO for the TUN write: consecutive TCP segments of one flow in a batch become
//! one large segment with a virtio-net header (`VIRTIO_NET_HDR_GSO_TCPV4`/`V6`), which
//! the kernel's stack handles at once; written with one `writev` whose iovecs point
//! into the batch's buffers, so nothing is copied or allocated.
//!
//! tun-rs's own `send_multiple` does the same, but copies every packet into a new
//! `Vec` first; this is the same rules (after wireguard-go's `tcpGRO`) restricted to
//! neighbours in the batch, which is how the inbound loop queues a flow's packets.
//! A segment joins the one before it when both are TCP with valid checksums, the
//! same addresses, ports, ACK number, IP TOS/TTL/DF (or IPv6 traffic class, flow
//! label, hop limit), TCP header and options, flags ACK (PSH allowed on the last),
//! its sequence number follows, and it is no longer than the first (a shorter one,
//! or PSH, ends the run); at most 65 535 bytes of IP packet.

use std::io::IoSlice;
use std::ops::Range;

use tun_rs::{
    VirtioNetHdr, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_LEN,
};

const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const NEEDS_CSUM: u8 = 1;

/// Packets of the batch that go to the device as one write: `bufs[range]`, the
/// first one's headers rewritten for the whole run when there is more than one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) range: Range<usize>,
    /// IP plus TCP header length (0: not a TCP segment that can take others).
    hdr_len: usize,
}

/// What a packet is for GRO: its header fields, or nothing.
#[derive(Clone, Copy, Debug)]
struct Seg {
    v6: bool,
    ip_len: usize,
    hdr_len: usize,
    payload: usize,
    seq: u32,
    flags: u8,
}

fn be16(p: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([
        p.get(at).copied().unwrap_or(0),
        p.get(at + 1).copied().unwrap_or(0),
    ]))
}

fn be32(p: &[u8], at: usize) -> u32 {
    let b = |i: usize| p.get(at + i).copied().unwrap_or(0);
    u32::from_be_bytes([b(0), b(1), b(2), b(3)])
}

/// The ones'-complement sum of the TCP pseudo-header (not folded).
fn pseudo(p: &[u8], s: &Seg, tcp_len: usize) -> u64 {
    let (src, dst) = if s.v6 {
        (p.get(8..24), p.get(24..40))
    } else {
        (p.get(12..16), p.get(16..20))
    };
    let len = u16::try_from(tcp_len).unwrap_or(u16::MAX);
    tun_rs::checksum_no_fold(src.unwrap_or_default(), 0)
        .wrapping_add(tun_rs::checksum_no_fold(dst.unwrap_or_default(), 0))
        .wrapping_add(6)
        .wrapping_add(u64::from(len))
}

/// `p` as a GRO candidate: IPv4 without options or fragmentation, or IPv6 with TCP
/// right after the fixed header; lengths that agree; flags ACK or ACK|PSH; some
/// payload; correct IP header and TCP checksums.
fn parse(p: &[u8]) -> Option<Seg> {
    let v = p.first()? >> 4;
    let (v6, ip_len) = match v {
        4 if p.first()? & 0x0f == 5 => (false, 20),
        6 => (true, 40),
        _ => return None,
    };
    if p.len() < ip_len + 20 || p.len() > usize::from(u16::MAX) {
        return None;
    }
    if v6 {
        if *p.get(6)? != 6 || be16(p, 4) != p.len() - 40 {
            return None;
        }
    } else {
        let frag = be16(p, 6);
        if *p.get(9)? != 6 || be16(p, 2) != p.len() || frag & 0x3fff != 0 {
            return None;
        }
        if tun_rs::checksum(p.get(..20)?, 0) != 0xffff {
            return None;
        }
    }
    let tcp = p.get(ip_len..)?;
    let tcp_hdr = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    if !(20..=60).contains(&tcp_hdr) || tcp.len() <= tcp_hdr {
        return None;
    }
    if flags != TCP_ACK && flags != TCP_ACK | TCP_PSH {
        return None;
    }
    let s = Seg {
        v6,
        ip_len,
        hdr_len: ip_len + tcp_hdr,
        payload: tcp.len() - tcp_hdr,
        seq: be32(tcp, 4),
        flags,
    };
    let sum = tun_rs::checksum(tcp, pseudo(p, &s, tcp.len()));
    (sum == 0xffff).then_some(s)
}

/// True when `b` (parsed as `s`) can follow `a` (the run's first, parsed as `f`) in
/// one segment: everything but lengths, sequence number, IP id and checksums equal.
fn same_flow(a: &[u8], f: &Seg, b: &[u8], s: &Seg) -> bool {
    if f.v6 != s.v6 || f.hdr_len != s.hdr_len {
        return false;
    }
    let ip_same = if f.v6 {
        // Version, traffic class, flow label; next header, hop limit; addresses.
        a.get(..4) == b.get(..4) && a.get(6..40) == b.get(6..40)
    } else {
        // TOS; DF; TTL and protocol; addresses.
        a.get(1) == b.get(1)
            && a.get(6) == b.get(6)
            && a.get(8..10) == b.get(8..10)
            && a.get(12..20) == b.get(12..20)
    };
    // Ports; ACK number; data offset and flags but PSH; window; options.
    let t = f.ip_len;
    ip_same
        && a.get(t..t + 4) == b.get(t..t + 4)
        && a.get(t + 8..t + 13) == b.get(t + 8..t + 13)
        && a.get(t + 14..t + 16) == b.get(t + 14..t + 16)
        && a.get(t + 20..f.hdr_len) == b.get(t + 20..s.hdr_len)
}

/// Groups `bufs` (packets at `offset`, a `VIRTIO_NET_HDR_LEN`-byte gap in front)
/// into runs, rewrites the first packet's headers of each run of more than one, and
/// puts each run's virtio-net header in front of its first packet.
pub(crate) fn plan(bufs: &mut [Vec<u8>], offset: usize, runs: &mut Vec<Run>) {
    runs.clear();
    // The open run: its first packet, parsed, the next sequence number, payload so far.
    let mut open: Option<(Seg, u32, usize)> = None;
    for i in 0..bufs.len() {
        let seg = bufs.get(i).and_then(|b| b.get(offset..)).and_then(parse);
        let joined = match (&mut open, seg, runs.last_mut()) {
            (Some((f, next, total)), Some(s), Some(run)) => {
                let first = bufs.get(run.range.start).and_then(|b| b.get(offset..));
                let this = bufs.get(i).and_then(|b| b.get(offset..));
                let ok = s.seq == *next
                    && s.payload <= f.payload
                    && f.hdr_len + *total + s.payload <= usize::from(u16::MAX)
                    && matches!((first, this), (Some(a), Some(b)) if same_flow(a, f, b, &s));
                if ok {
                    run.range.end = i + 1;
                    *next = next.wrapping_add(s.payload as u32);
                    *total += s.payload;
                    if s.flags & TCP_PSH != 0 || s.payload < f.payload {
                        open = None;
                    }
                }
                ok
            }
            _ => false,
        };
        if joined {
            continue;
        }
        runs.push(Run {
            range: i..i + 1,
            hdr_len: seg.map_or(0, |s| s.hdr_len),
        });
        open = seg
            .filter(|s| s.flags & TCP_PSH == 0)
            .map(|s| (s, s.seq.wrapping_add(s.payload as u32), s.payload));
    }
    for run in runs.iter() {
        finish(bufs, offset, run);
    }
}

/// Writes the virtio-net header of `run` and, for a run of several, the first
/// packet's lengths and checksums for the whole.
fn finish(bufs: &mut [Vec<u8>], offset: usize, run: &Run) {
    let total: usize = run
        .range
        .clone()
        .skip(1)
        .map(|j| {
            bufs.get(j)
                .map_or(0, |b| b.len().saturating_sub(offset + run.hdr_len))
        })
        .sum();
    let Some(b) = bufs.get_mut(run.range.start) else {
        return;
    };
    let mut hdr = VirtioNetHdr::default();
    if run.range.len() > 1 {
        if let Some(p) = b.get_mut(offset..) {
            if let Some(s) = parse_unchecked(p) {
                let len = p.len() + total;
                let gso_size = s.payload;
                if s.v6 {
                    put16(p, 4, len - 40);
                } else {
                    put16(p, 2, len);
                    put16(p, 10, 0);
                    let c = !tun_rs::checksum(p.get(..20).unwrap_or_default(), 0);
                    put16(p, 10, usize::from(c));
                }
                // CHECKSUM_PARTIAL: the pseudo-header sum, the kernel adds the rest.
                let c = tun_rs::checksum(&[], pseudo(p, &s, len - s.ip_len));
                put16(p, s.ip_len + 16, usize::from(c));
                hdr = VirtioNetHdr {
                    flags: NEEDS_CSUM,
                    gso_type: if s.v6 {
                        VIRTIO_NET_HDR_GSO_TCPV6
                    } else {
                        VIRTIO_NET_HDR_GSO_TCPV4
                    },
                    hdr_len: s.hdr_len as u16,
                    gso_size: gso_size as u16,
                    csum_start: s.ip_len as u16,
                    csum_offset: 16,
                };
            }
        }
    }
    if let Some(h) = offset
        .checked_sub(VIRTIO_NET_HDR_LEN)
        .and_then(|s| b.get_mut(s..offset))
    {
        let _ = hdr.encode(h);
    }
}

/// The header fields of a packet `parse` accepted before (no checksum check).
fn parse_unchecked(p: &[u8]) -> Option<Seg> {
    let v6 = p.first()? >> 4 == 6;
    let ip_len = if v6 { 40 } else { 20 };
    let tcp = p.get(ip_len..)?;
    let tcp_hdr = usize::from(tcp.get(12)? >> 4) * 4;
    Some(Seg {
        v6,
        ip_len,
        hdr_len: ip_len + tcp_hdr,
        payload: tcp.len().checked_sub(tcp_hdr)?,
        seq: be32(tcp, 4),
        flags: *tcp.get(13)?,
    })
}

fn put16(p: &mut [u8], at: usize, v: usize) {
    if let Some(d) = p.get_mut(at..at + 2) {
        d.copy_from_slice(&u16::try_from(v).unwrap_or(u16::MAX).to_be_bytes());
    }
}

/// The iovecs of `run`: the virtio-net header and first packet, then the payload of
/// each other packet. `iov` must have room for the run.
pub(crate) fn iovecs<'a>(
    bufs: &'a [Vec<u8>],
    offset: usize,
    run: &Run,
    iov: &mut [IoSlice<'a>],
) -> usize {
    let mut n = 0;
    for (k, j) in run.range.clone().enumerate() {
        let from = if k == 0 {
            offset - VIRTIO_NET_HDR_LEN
        } else {
            offset + run.hdr_len
        };
        let Some((b, v)) = bufs.get(j).and_then(|b| b.get(from..)).zip(iov.get_mut(n)) else {
            break;
        };
        *v = IoSlice::new(b);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::dataplane::vocab::DEVICE_HEADROOM;

    const MSS: usize = 1360;
    const SEQ: u32 = 0xffff_0000; // wraps inside the run

    proptest::proptest! {
        /// The packets `plan` reads are decrypted ESP payloads, i.e. whatever an
        /// authenticated peer sent: any bytes, valid TCP or not, never panic, and
        /// every packet ends up in exactly one run, in order.
        #[test]
        fn any_packets_are_planned_without_panic(
            packets in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                0..12,
            ),
            seed_tcp in proptest::prelude::any::<bool>(),
        ) {
            let offset = DEVICE_HEADROOM;
            let mut bufs: Vec<Vec<u8>> = packets
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let mut b = vec![0u8; offset];
                    if seed_tcp && k % 2 == 0 {
                        // Mix in valid segments so that runs do form.
                        b.extend_from_slice(&segment(1234, SEQ, TCP_ACK, &p[..p.len().min(60)]));
                    } else {
                        b.extend_from_slice(p);
                    }
                    b
                })
                .collect();
            let mut runs = Vec::new();
            plan(&mut bufs, offset, &mut runs);
            let covered: Vec<usize> = runs.iter().flat_map(|r| r.range.clone()).collect();
            proptest::prop_assert_eq!(covered, (0..bufs.len()).collect::<Vec<_>>());
            let mut iov: [IoSlice<'_>; 128] = std::array::from_fn(|_| IoSlice::new(&[]));
            for r in &runs {
                proptest::prop_assert_eq!(iovecs(&bufs, offset, r, &mut iov), r.range.len());
            }
        }
    }

    /// The Internet checksum of `data` after `init` (folded, not inverted).
    fn sum(init: u32, data: &[u8]) -> u16 {
        let mut s = init;
        for c in data.chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    fn pseudo_sum(p: &[u8]) -> u32 {
        let mut s = 6 + (p.len() - 20) as u32;
        for c in p[12..20].chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        s
    }

    /// An IPv4 TCP segment from port `sport` with `payload` at `seq`, checksummed.
    fn segment(sport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = 52 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&seq.to_be_bytes()[2..]); // some IP id
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 2, 0, 1]);
        p[16..20].copy_from_slice(&[10, 1, 0, 1]);
        let c = !sum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&40000u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&99u32.to_be_bytes());
        p[32] = 8 << 4; // 32-byte header: timestamps
        p[33] = flags;
        p[34..36].copy_from_slice(&500u16.to_be_bytes());
        p[40..52].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        p[52..].copy_from_slice(payload);
        let c = !sum(pseudo_sum(&p), &p[20..]);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    const _: () = assert!(DEVICE_HEADROOM >= VIRTIO_NET_HDR_LEN);

    /// Packets queued as the inbound loop queues them.
    fn queued(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        packets
            .iter()
            .map(|p| {
                let mut b = Vec::with_capacity(2 * DEVICE_HEADROOM + 65_535);
                b.resize(DEVICE_HEADROOM, 0xee);
                b.extend_from_slice(p);
                b
            })
            .collect()
    }

    /// What one write of `run` puts on the device.
    fn written(bufs: &[Vec<u8>], run: &Run) -> Vec<u8> {
        let mut iov: [IoSlice<'_>; 128] = std::array::from_fn(|_| IoSlice::new(&[]));
        let n = iovecs(bufs, DEVICE_HEADROOM, run, &mut iov);
        iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 % 251) as u8).collect()
    }

    #[test]
    fn a_flows_segments_become_one_with_a_gso_header() {
        let d = data(30 * MSS + 500);
        let chunks: Vec<&[u8]> = d.chunks(MSS).collect();
        let packets: Vec<Vec<u8>> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let last = i + 1 == chunks.len();
                let flags = if last { TCP_ACK | TCP_PSH } else { TCP_ACK };
                segment(5001, SEQ.wrapping_add((i * MSS) as u32), flags, c)
            })
            .collect();
        let mut bufs = queued(&packets);
        let mut runs = Vec::new();
        plan(&mut bufs, DEVICE_HEADROOM, &mut runs);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].range, 0..31);
        let w = written(&bufs, &runs[0]);
        let hdr = VirtioNetHdr::decode(&w).unwrap();
        assert_eq!(
            (
                hdr.flags,
                hdr.gso_type,
                hdr.hdr_len,
                hdr.gso_size,
                hdr.csum_start,
                hdr.csum_offset
            ),
            (NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 52, MSS as u16, 20, 16)
        );
        let p = &w[VIRTIO_NET_HDR_LEN..];
        assert_eq!(p.len(), 52 + d.len());
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(sum(0, &p[..20]), 0xffff, "IPv4 header checksum");
        assert_eq!(&p[24..28], &SEQ.to_be_bytes());
        assert_eq!(&p[52..], &d[..]);
        // The partial checksum: completing it over the segment gives a valid one.
        let mut full = p.to_vec();
        let partial = u16::from_be_bytes([full[36], full[37]]);
        assert_eq!(partial, sum(pseudo_sum(&full), &[]));
        full[36..38].copy_from_slice(&[0, 0]);
        let c = !sum(u32::from(partial), &full[20..]);
        full[36..38].copy_from_slice(&c.to_be_bytes());
        assert_eq!(sum(pseudo_sum(&full), &full[20..]), 0xffff);
    }

    #[test]
    fn only_neighbours_of_one_flow_in_sequence_join() {
        let d = data(MSS);
        let seq = |i: usize| SEQ.wrapping_add((i * MSS) as u32);
        let mut bad = segment(5001, seq(5), TCP_ACK, &d);
        bad[60] ^= 1; // a payload byte: the TCP checksum no longer holds
        let mut udp = segment(5001, seq(2), TCP_ACK, &d);
        udp[9] = 17;
        let packets = vec![
            segment(5001, seq(0), TCP_ACK, &d),           // 0 ┐ a run
            segment(5001, seq(1), TCP_ACK, &d),           // 1 ┘
            udp,                                          // 2 not TCP
            segment(5001, seq(3), TCP_ACK, &d),           // 3 alone: not after 1
            segment(5002, seq(4), TCP_ACK, &d),           // 4 another flow
            bad,                                          // 5 bad checksum
            segment(5001, seq(6), TCP_ACK, &d[..100]),    // 6 ┐ short: ends it
            segment(5001, seq(6) + 100, TCP_ACK, &d),     // 7 ┘? no: longer than the first
            segment(5001, seq(9), TCP_ACK | TCP_PSH, &d), // 8 PSH alone
            segment(5001, seq(10), TCP_ACK, &d),          // 9 not after a PSH
            segment(5001, seq(12), TCP_ACK, &d),          // 10 a gap
        ];
        let mut bufs = queued(&packets);
        let mut runs = Vec::new();
        plan(&mut bufs, DEVICE_HEADROOM, &mut runs);
        let ranges: Vec<Range<usize>> = runs.iter().map(|r| r.range.clone()).collect();
        assert_eq!(
            ranges,
            [
                0..2,
                2..3,
                3..4,
                4..5,
                5..6,
                6..7,
                7..8,
                8..9,
                9..10,
                10..11
            ]
        );
        // A run of one goes out as it came, behind an empty virtio-net header.
        for run in runs.iter().skip(1) {
            let p = &packets[run.range.start];
            let w = written(&bufs, run);
            assert_eq!(&w[..VIRTIO_NET_HDR_LEN], &[0; VIRTIO_NET_HDR_LEN][..]);
            assert_eq!(&w[VIRTIO_NET_HDR_LEN..], &p[..]);
        }
    }

    #[test]
    fn a_run_stays_within_one_ip_packet() {
        let d = data(MSS);
        let packets: Vec<Vec<u8>> = (0..60)
            .map(|i| segment(5001, SEQ.wrapping_add((i * MSS) as u32), TCP_ACK, &d))
            .collect();
        let mut bufs = queued(&packets);
        let mut runs = Vec::new();
        plan(&mut bufs, DEVICE_HEADROOM, &mut runs);
        // (65 535 - 52) / 1360 = 48 segments in the first.
        let ranges: Vec<Range<usize>> = runs.iter().map(|r| r.range.clone()).collect();
        assert_eq!(ranges, [0..48, 48..60]);
        for r in &runs {
            assert!(written(&bufs, r).len() - VIRTIO_NET_HDR_LEN <= 65_535);
        }
    }

    /// An IPv6 TCP segment with `payload` at `seq` (20-byte TCP header), checksummed.
    fn segment6(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 60 + payload.len()];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[8..24].copy_from_slice(&[0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p[24..40].copy_from_slice(&[0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p[40..42].copy_from_slice(&5001u16.to_be_bytes());
        p[42..44].copy_from_slice(&40000u16.to_be_bytes());
        p[44..48].copy_from_slice(&seq.to_be_bytes());
        p[52] = 5 << 4;
        p[53] = TCP_ACK;
        p[54..56].copy_from_slice(&500u16.to_be_bytes());
        p[60..].copy_from_slice(payload);
        let c = !sum(pseudo_sum6(&p), &p[40..]);
        p[56..58].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn pseudo_sum6(p: &[u8]) -> u32 {
        let mut s = 6 + (p.len() - 40) as u32;
        for c in p[8..40].chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        s
    }

    #[test]
    fn ipv6_segments_coalesce_too() {
        let d = data(5 * MSS);
        let packets: Vec<Vec<u8>> = d
            .chunks(MSS)
            .enumerate()
            .map(|(i, c)| segment6(SEQ.wrapping_add((i * MSS) as u32), c))
            .collect();
        let mut bufs = queued(&packets);
        let mut runs = Vec::new();
        plan(&mut bufs, DEVICE_HEADROOM, &mut runs);
        assert_eq!(runs.len(), 1);
        let w = written(&bufs, &runs[0]);
        let hdr = VirtioNetHdr::decode(&w).unwrap();
        assert_eq!(
            (hdr.gso_type, hdr.hdr_len, hdr.gso_size, hdr.csum_start),
            (VIRTIO_NET_HDR_GSO_TCPV6, 60, MSS as u16, 40)
        );
        let p = &w[VIRTIO_NET_HDR_LEN..];
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), 20 + d.len());
        assert_eq!(&p[60..], &d[..]);
        let partial = u16::from_be_bytes([p[56], p[57]]);
        assert_eq!(partial, sum(pseudo_sum6(p), &[]));
    }
}
