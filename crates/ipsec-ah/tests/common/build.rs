//! Test packets with a map of which bits RFC 4302 §3.3.3.1 lets routers change.
//!
//! The map is written from the RFC's tables independently of the crate's own
//! classification, so the bit-flip tests check one against the other.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// IPv4 options (RFC 791, RFC 4302 Appendix A.1).
#[derive(Clone, Debug)]
pub enum Opt4 {
    /// 148: immutable.
    RouterAlert,
    /// 130 with `n` data bytes: immutable.
    Security(u8),
    /// 1: immutable.
    Nop,
    /// 68 with `n` 4-byte slots: mutable.
    Timestamp(u8),
    /// 7 with `n` address slots: mutable.
    RecordRoute(u8),
    /// An option type the table does not know (treated as mutable), `n` data bytes.
    Unknown(u8, u8),
    /// 131 with these addresses, pointer at the first: mutable, and the header's
    /// destination is the first hop (predictable: the last address).
    Lsrr(Vec<[u8; 4]>),
}

/// IPv6 options in hop-by-hop and destination options headers.
#[derive(Clone, Debug)]
pub struct Opt6 {
    pub typ: u8,
    pub data: Vec<u8>,
}

/// IPv6 extension headers.
#[derive(Clone, Debug)]
pub enum Ext6 {
    HopByHop(Vec<Opt6>),
    DstOpts(Vec<Opt6>),
    /// Type 0 (or another `rtype`) with these addresses and segments left.
    Routing {
        rtype: u8,
        addrs: Vec<[u8; 16]>,
        segleft: u8,
    },
    /// An atomic fragment header.
    Fragment,
}

/// A packet and, per byte, the bits whose change must keep the ICV valid (`mutable`)
/// and the bits whose change has no single expected outcome (`skip`: option types and
/// lengths, which change how the rest is read). Every other bit must break the ICV
/// (or make the packet unacceptable).
#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub mutable: Vec<u8>,
    pub skip: Vec<u8>,
    /// Where transport-mode AH goes.
    pub insert_at: usize,
}

impl Built {
    fn push(&mut self, b: &[u8], mutable: u8, skip: u8) {
        self.bytes.extend_from_slice(b);
        self.mutable.extend(std::iter::repeat_n(mutable, b.len()));
        self.skip.extend(std::iter::repeat_n(skip, b.len()));
    }

    /// The maps after `n` immutable bytes (an AH) are inserted at `at`.
    pub fn with_inserted(&self, at: usize, n: usize) -> (Vec<u8>, Vec<u8>) {
        let mut m = self.mutable.clone();
        let mut s = self.skip.clone();
        m.splice(at..at, std::iter::repeat_n(0, n));
        s.splice(at..at, std::iter::repeat_n(0, n));
        (m, s)
    }
}

pub fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in h.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 packet with `opts` (padded with EOL to a 4-byte multiple).
pub fn ipv4(opts: &[Opt4], tos: u8, df: bool, proto: u8, payload: &[u8]) -> Built {
    let mut o = Built {
        bytes: vec![],
        mutable: vec![],
        skip: vec![],
        insert_at: 0,
    };
    let mut lsrr_last = None;
    for opt in opts {
        match opt {
            Opt4::RouterAlert => o.push(&[148, 4, 0, 0], 0, 0),
            Opt4::Nop => o.push(&[1], 0, 0),
            Opt4::Security(n) => {
                o.push(&[130, n + 2], 0, 0xff);
                o.push(&(0..*n).map(|i| i ^ 0x5a).collect::<Vec<_>>(), 0, 0);
            }
            Opt4::Timestamp(n) => {
                o.push(&[68, 4 + 4 * n], 0xff, 0xff);
                o.push(&[5, 0], 0xff, 0);
                o.push(&vec![0; 4 * usize::from(*n)], 0xff, 0);
            }
            Opt4::RecordRoute(n) => {
                o.push(&[7, 3 + 4 * n], 0xff, 0xff);
                o.push(&[4], 0xff, 0);
                o.push(&vec![0; 4 * usize::from(*n)], 0xff, 0);
            }
            Opt4::Unknown(t, n) => {
                o.push(&[*t, n + 2], 0xff, 0xff);
                o.push(&vec![0x77; usize::from(*n)], 0xff, 0);
            }
            Opt4::Lsrr(addrs) => {
                let len = 3 + 4 * addrs.len() as u8;
                o.push(&[131, len], 0xff, 0xff);
                // The pointer decides whether the route is complete: no single outcome.
                o.push(&[4], 0, 0xff);
                for (i, a) in addrs.iter().enumerate() {
                    if i + 1 == addrs.len() {
                        // The final destination enters the ICV.
                        o.push(a, 0, 0);
                        lsrr_last = Some(*a);
                    } else {
                        o.push(a, 0xff, 0);
                    }
                }
            }
        }
    }
    while o.bytes.len() % 4 != 0 {
        o.push(&[0], 0, 0);
    }
    let opts_b = o;
    assert!(opts_b.bytes.len() <= 40);
    let hl = 20 + opts_b.bytes.len();
    let total = hl + payload.len();
    let dst = if lsrr_last.is_some() {
        [10, 9, 9, 1]
    } else {
        [192, 0, 2, 2]
    };
    let mut h = vec![
        0x40 | (hl / 4) as u8,
        tos,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        if df { 0x40 } else { 0 },
        0,
        64,
        proto,
        0,
        0,
        192,
        0,
        2,
        1,
    ];
    h.extend_from_slice(&dst);
    h.extend_from_slice(&opts_b.bytes);
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut b = Built {
        bytes: vec![],
        mutable: vec![],
        skip: vec![],
        insert_at: hl,
    };
    b.push(&h[0..1], 0, 0); // version, IHL
    b.push(&h[1..2], 0xff, 0); // TOS
    b.push(&h[2..6], 0, 0); // length, identification
    b.push(&h[6..7], 0xc0, 0); // reserved flag and DF; MF and offset make a fragment
    b.push(&h[7..8], 0, 0);
    b.push(&h[8..9], 0xff, 0); // TTL
    b.push(&h[9..10], 0, 0); // protocol
    b.push(&h[10..12], 0xff, 0); // checksum
    b.push(&h[12..16], 0, 0); // source
                              // With a source route still to travel the destination is predictable from it.
    b.push(&h[16..20], if lsrr_last.is_some() { 0xff } else { 0 }, 0);
    b.bytes.extend_from_slice(&opts_b.bytes);
    b.mutable.extend_from_slice(&opts_b.mutable);
    b.skip.extend_from_slice(&opts_b.skip);
    b.push(payload, 0, 0);
    b
}

fn opts6(o: &mut Built, opts: &[Opt6], nh: u8, before_ah: bool) {
    let mut body = Built {
        bytes: vec![],
        mutable: vec![],
        skip: vec![],
        insert_at: 0,
    };
    for opt in opts {
        if opt.typ == 0 {
            body.push(&[0], 0, 0xff);
            continue;
        }
        body.push(&[opt.typ, opt.data.len() as u8], 0, 0xff);
        let m = if before_ah && opt.typ & 0x20 != 0 {
            0xff
        } else {
            0
        };
        body.push(&opt.data, m, 0);
    }
    // Pad to a multiple of 8 with PadN (or Pad1 for a single byte).
    let rem = (2 + body.bytes.len()) % 8;
    if rem != 0 {
        let pad = 8 - rem;
        if pad == 1 {
            body.push(&[0], 0, 0xff);
        } else {
            body.push(&[1, (pad - 2) as u8], 0, 0xff);
            body.push(&vec![0; pad - 2], 0, 0);
        }
    }
    let len = (2 + body.bytes.len()) / 8 - 1;
    o.push(&[nh, len as u8], 0, 0);
    o.bytes.extend_from_slice(&body.bytes);
    o.mutable.extend_from_slice(&body.mutable);
    o.skip.extend_from_slice(&body.skip);
}

fn ext_code(e: &Ext6) -> u8 {
    match e {
        Ext6::HopByHop(_) => 0,
        Ext6::DstOpts(_) => 60,
        Ext6::Routing { .. } => 43,
        Ext6::Fragment => 44,
    }
}

/// An IPv6 packet with extension headers `chain`, then protocol `proto`.
pub fn ipv6(chain: &[Ext6], tc: u8, flow: u32, proto: u8, payload: &[u8]) -> Built {
    // Where AH goes: after hop-by-hop, destination options followed by a routing
    // header, routing and fragment headers (RFC 8200 §4.1 order).
    let mut keep = 0;
    for (i, e) in chain.iter().enumerate() {
        let next_is_rt = matches!(chain.get(i + 1), Some(Ext6::Routing { .. }));
        match e {
            Ext6::HopByHop(_) | Ext6::Routing { .. } | Ext6::Fragment => keep = i + 1,
            Ext6::DstOpts(_) if next_is_rt => keep = i + 1,
            Ext6::DstOpts(_) => break,
        }
    }
    let mut ext = Built {
        bytes: vec![],
        mutable: vec![],
        skip: vec![],
        insert_at: 0,
    };
    let mut insert_at = 40;
    for (i, e) in chain.iter().enumerate() {
        let nh = chain.get(i + 1).map_or(proto, ext_code);
        let before = i < keep;
        match e {
            Ext6::HopByHop(o) | Ext6::DstOpts(o) => opts6(&mut ext, o, nh, before),
            Ext6::Routing {
                rtype,
                addrs,
                segleft,
            } => {
                let len = 2 * addrs.len() as u8;
                ext.push(&[nh, len, *rtype, *segleft, 0, 0, 0, 0], 0, 0);
                for a in addrs {
                    ext.push(a, 0, 0);
                }
            }
            Ext6::Fragment => ext.push(&[nh, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe], 0, 0),
        }
        if before {
            insert_at = 40 + ext.bytes.len();
        }
    }
    let first = chain.first().map_or(proto, ext_code);
    let plen = ext.bytes.len() + payload.len();
    let v = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0xf_ffff);
    let mut b = Built {
        bytes: vec![],
        mutable: vec![],
        skip: vec![],
        insert_at,
    };
    let vb = v.to_be_bytes();
    b.push(&vb[0..1], 0x0f, 0); // version | traffic class high nibble
    b.push(&vb[1..4], 0xff, 0); // traffic class, flow label
    b.push(&[(plen >> 8) as u8, plen as u8, first], 0, 0);
    b.push(&[64], 0xff, 0); // hop limit
    b.push(
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        0,
        0,
    );
    b.push(
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        0,
        0,
    );
    b.bytes.extend_from_slice(&ext.bytes);
    b.mutable.extend_from_slice(&ext.mutable);
    b.skip.extend_from_slice(&ext.skip);
    b.push(payload, 0, 0);
    b
}

/// An address for routing headers.
pub fn addr6(tag: u8) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, tag, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[15] = tag;
    a
}

/// RFC 8200 §4.4 processing of a type 0 routing header, `hops` times: swap the
/// destination with the next address, decrement segments left and the hop limit.
pub fn route_hops(p: &mut [u8], hops: usize) {
    let mut nh = p[6];
    let mut off = 40;
    loop {
        let len = if nh == 44 {
            8
        } else {
            (usize::from(p[off + 1]) + 1) * 8
        };
        if nh == 43 && (p[off + 2] == 0 || p[off + 2] == 2) {
            let n = usize::from(p[off + 1]) / 2;
            for _ in 0..hops {
                let s = usize::from(p[off + 3]);
                if s == 0 {
                    break;
                }
                let a = off + 8 + 16 * (n - s);
                let mut dst = [0u8; 16];
                dst.copy_from_slice(&p[24..40]);
                let next: [u8; 16] = p[a..a + 16].try_into().unwrap();
                p[24..40].copy_from_slice(&next);
                p[a..a + 16].copy_from_slice(&dst);
                p[off + 3] -= 1;
                p[7] = p[7].saturating_sub(1);
            }
            return;
        }
        if !matches!(nh, 0 | 43 | 44 | 60) {
            return;
        }
        nh = p[off];
        off += len;
    }
}

/// RFC 791 loose source route processing at every hop until the route is complete.
pub fn lsrr_travel(p: &mut [u8]) {
    let hl = usize::from(p[0] & 0xf) * 4;
    let mut i = 20;
    while i < hl {
        match p[i] {
            0 => break,
            1 => i += 1,
            t => {
                let len = usize::from(p[i + 1]);
                if t == 131 || t == 137 {
                    while usize::from(p[i + 2]) <= len {
                        let ptr = usize::from(p[i + 2]);
                        let next: [u8; 4] = p[i + ptr - 1..i + ptr + 3].try_into().unwrap();
                        p[i + ptr - 1..i + ptr + 3].copy_from_slice(&[203, 0, 113, ptr as u8]);
                        p[16..20].copy_from_slice(&next);
                        // TTL is mutable (zeroed for the ICV); the generator may have set 0.
                        p[8] = p[8].saturating_sub(1);
                        p[i + 2] += 4;
                    }
                }
                i += len;
            }
        }
    }
    p[10] = 0;
    p[11] = 0;
    let c = checksum(&p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}
