//! What both demos share: `demo` (manually keyed) and `ikedemo` (IKEv2) run the same
//! options, the same loopback ESP-in-UDP traffic between two peers, each with a
//! socket and a data plane ([`Plane`]: hand-keyed SAs, or the SAD the IKE driver
//! installs into), the same injected faults, the same report and the same key tables.
//! Both import this module and neither imports the other's internals, so the imports
//! point one way: `demo` -> `ikedemo` -> `tunnel`.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipsec::core::time::StdClock;
use ipsec::core::IpProto;
use ipsec::esp::udp::{classify, Classified};
use ipsec::esp::{EspInbound, EspOutbound, PacketBuf};
use ipsec::sad::{Sad, UdpInbound, UdpOutbound, UDP_INBOUND_HEADROOM};

use crate::capture::PcapOut;
use crate::packets::{ipv4_header, ipv4_packet, reply_to, PROTO_UDP};
use crate::{Backend, ModeArg};

/// Options of `ipsec demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// The ESP suite as a proposal string (first algorithms are used), e.g.
    /// aes128gcm16, aes256gcm16, chacha20poly1305, aes128-sha256, aes256-sha512, aes128gmac.
    #[arg(long, default_value = "aes128gcm16")]
    pub suite: String,
    /// Tunnel or transport mode.
    #[arg(long, value_enum, default_value = "tunnel")]
    pub mode: ModeArg,
    /// Packets A sends to B (each is answered).
    #[arg(long, default_value_t = 300)]
    pub count: usize,
    /// Fixed inner packet size in bytes (default: a mix from 64 to 1400).
    #[arg(long)]
    pub size: Option<usize>,
    /// Use 64-bit extended sequence numbers.
    #[arg(long)]
    pub esn: bool,
    /// Anti-replay window in packets (32..4096; 0 switches it off).
    #[arg(long, default_value_t = 64)]
    pub replay_window: u32,
    /// Write what crossed the wire to this pcap file.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Write the keys for Wireshark. A directory (an existing one, or a path ending in
    /// '/') gets `esp_sa` and `ikev2_decryption_table`, the files strongSwan's
    /// save-keys plugin writes; any other path gets the ESP SAs in `esp_sa` format
    /// (the IKE SAs then go to --ike-keys).
    #[arg(long, value_name = "PATH")]
    pub keys: Option<PathBuf>,
    /// Write the IKE SAs to this file in Wireshark's `ikev2_decryption_table`
    /// format (not with --manual, which has no IKE).
    #[arg(long, value_name = "FILE")]
    pub ike_keys: Option<PathBuf>,
    /// Crypto provider.
    #[arg(long, value_enum, default_value = "composed")]
    pub backend: Backend,
    /// Do not inject the bad datagrams after the traffic.
    #[arg(long)]
    pub no_faults: bool,
    /// Key the SAs by hand (as `ip xfrm state add` would) instead of negotiating them
    /// with IKEv2.
    #[arg(long)]
    pub manual: bool,
    /// The IKE proposal for the IKEv2 handshake (strongSwan syntax).
    #[arg(long, default_value = "aes128gcm16-prfsha256-x25519")]
    pub ike: String,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            suite: "aes128gcm16".into(),
            mode: ModeArg::Tunnel,
            count: 300,
            size: None,
            esn: false,
            replay_window: 64,
            pcap: None,
            keys: None,
            ike_keys: None,
            backend: Backend::Composed,
            no_faults: false,
            manual: false,
            ike: "aes128gcm16-prfsha256-x25519".into(),
        }
    }
}

/// Inner sizes of the default mix (IMIX-like, bounded by a 1500-byte path).
pub(crate) const MIX: [usize; 8] = [64, 64, 64, 64, 576, 576, 1400, 1400];
pub(crate) const HEADROOM: usize = 128;
pub(crate) const BUF_LEN: usize = 16 * 1024;
pub(crate) const TUNNEL_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub(crate) const TUNNEL_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);

#[derive(Default)]
pub(crate) struct Stats {
    sent: u64,
    sent_inner_bytes: u64,
    sent_wire_bytes: u64,
    opened: u64,
    opened_inner_bytes: u64,
    keepalives: u64,
    mismatched: u64,
    drops: BTreeMap<&'static str, u64>,
}

/// Where a peer's SAs live.
pub(crate) enum Plane {
    /// Hand-keyed SAs (`demo --manual`): the outbound SA and the inbound SAs by SPI.
    Manual {
        out: Option<EspOutbound>,
        inbound: BTreeMap<u32, EspInbound>,
    },
    /// The SAD the IKE driver installs the Child SAs into, with their outbound
    /// policies (the IKEv2 demo); `clock` gives it the time.
    Sad { sad: Arc<Sad>, clock: StdClock },
}

pub(crate) struct Peer {
    pub(crate) name: &'static str,
    pub(crate) sock: UdpSocket,
    pub(crate) addr: SocketAddrV4,
    pub(crate) plane: Plane,
    pub(crate) stats: Stats,
}

pub(crate) struct Wire {
    pub(crate) pcap: Option<PcapOut>,
}

impl Wire {
    /// Records one UDP datagram as an IPv4 + UDP frame, as it crossed the loopback.
    pub(crate) fn record(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), String> {
        let Some(p) = self.pcap.as_mut() else {
            return Ok(());
        };
        let total = 20 + 8 + payload.len();
        let mut f = Vec::with_capacity(total);
        f.extend_from_slice(&ipv4_header(*src.ip(), *dst.ip(), PROTO_UDP, total, 0));
        f.extend_from_slice(&src.port().to_be_bytes());
        f.extend_from_slice(&dst.port().to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]); // RFC 3948 §2.1: checksum 0 over IPv4
        f.extend_from_slice(payload);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        p.write(now, &f)
    }
}

pub(crate) fn bind_pair() -> Result<(UdpSocket, UdpSocket), String> {
    // Port 4500 on two loopback addresses, as two NAT-T peers would use; any free
    // port on 127.0.0.1 if 4500 is taken.
    if let (Ok(a), Ok(b)) = (
        UdpSocket::bind("127.0.0.1:4500"),
        UdpSocket::bind("127.0.0.2:4500"),
    ) {
        return Ok((a, b));
    }
    let a = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let b = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok((a, b))
}

pub(crate) fn v4(s: &UdpSocket) -> Result<SocketAddrV4, String> {
    match s.local_addr().map_err(|e| e.to_string())? {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err("expected an IPv4 socket".into()),
    }
}

/// Where `--keys` and `--ike-keys` write the key tables.
#[derive(Debug, Default)]
pub(crate) struct KeyFiles {
    /// The `esp_sa` table.
    pub esp: Option<PathBuf>,
    /// The `ikev2_decryption_table`.
    pub ike: Option<PathBuf>,
}

impl KeyFiles {
    /// Resolves the options; creates the `--keys` directory when it names one.
    pub(crate) fn new(args: &DemoArgs) -> Result<Self, String> {
        if args.manual && args.ike_keys.is_some() {
            return Err("--ike-keys: --manual negotiates no IKE SA".into());
        }
        let mut k = KeyFiles {
            esp: None,
            ike: args.ike_keys.clone(),
        };
        if let Some(p) = &args.keys {
            let s = p.as_os_str().to_string_lossy();
            if p.is_dir() || s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR) {
                private_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
                k.esp = Some(p.join("esp_sa"));
                if !args.manual && k.ike.is_none() {
                    k.ike = Some(p.join("ikev2_decryption_table"));
                }
            } else {
                k.esp = Some(p.clone());
            }
        }
        Ok(k)
    }
}

/// Every packet must have arrived intact in both directions.
pub(crate) fn verdict(a: &Peer, b: &Peer, count: usize) -> Result<(), String> {
    let bad = a.stats.mismatched + b.stats.mismatched;
    let expected = count as u64;
    if bad > 0 || a.stats.opened != expected || b.stats.opened != expected {
        return Err(format!(
            "{bad} packets came out different from what went in, or were lost"
        ));
    }
    Ok(())
}

/// Reused packet buffers.
pub(crate) struct Bufs {
    buf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl Bufs {
    pub(crate) fn new() -> Self {
        Bufs {
            buf: vec![0u8; BUF_LEN],
            rbuf: vec![0u8; BUF_LEN],
        }
    }
}

/// Sends `n` packets A -> B (numbered from `first`; size and mode as `args` say), each
/// answered B -> A, checking that every packet comes out as it went in. Returns one sealed datagram to replay.
pub(crate) fn traffic(
    a: &mut Peer,
    b: &mut Peer,
    first: usize,
    n: usize,
    args: &DemoArgs,
    bufs: &mut Bufs,
    wire: &mut Wire,
) -> Result<Option<Vec<u8>>, String> {
    let transport = args.mode == ModeArg::Transport;
    let mut replayable = None;
    for i in first..first + n {
        let size = args.size.unwrap_or(MIX[i % MIX.len()]);
        let (src, dst) = if transport {
            (*a.addr.ip(), *b.addr.ip())
        } else {
            (TUNNEL_A, TUNNEL_B)
        };
        let pkt = ipv4_packet(src, dst, size, i as u16, i % 2 == 0);
        let pdu = send(a, &b.addr, &pkt, transport, &mut bufs.buf, wire)?;
        if i == first + n / 2 {
            replayable = Some(pdu);
        }
        if let Some(got) = receive(b, &mut bufs.rbuf)? {
            check(&mut b.stats, &pkt, &got, transport);
            let reply = reply_to(&pkt).ok_or("could not build a reply")?;
            send(b, &a.addr, &reply, transport, &mut bufs.buf, wire)?;
            if let Some(got) = receive(a, &mut bufs.rbuf)? {
                check(&mut a.stats, &reply, &got, transport);
            }
        }
    }
    Ok(replayable)
}

/// A sends B a replay, a forged ICV, an unknown SPI, a truncated packet and a NAT
/// keepalive; B must drop each for its own reason.
pub(crate) fn inject_faults(
    a: &mut Peer,
    b: &mut Peer,
    replayable: Option<&[u8]>,
    count: usize,
    bufs: &mut Bufs,
    wire: &mut Wire,
) -> Result<(), String> {
    let mut inject = |what: &[u8]| -> Result<(), String> {
        wire.record(a.addr, b.addr, what)?;
        a.sock
            .send_to(what, b.addr)
            .map_err(|e| format!("send: {e}"))?;
        receive(b, &mut bufs.rbuf).map(|_| ())
    };
    if let Some(r) = replayable {
        inject(r)?; // replay
        let mut forged = r.to_vec();
        if let Some(x) = forged.last_mut() {
            *x ^= 0x01;
        }
        // A sequence number ahead of the window, so that the replay check passes
        // (also with ESN) and the ICV check is what fails.
        let ahead = (count as u32).wrapping_add(1000);
        forged[4..8].copy_from_slice(&ahead.to_be_bytes());
        inject(&forged)?; // integrity
        let mut unknown = r.to_vec();
        unknown[..4].copy_from_slice(&0x0bad_0bad_u32.to_be_bytes());
        inject(&unknown)?; // unknown SPI
        inject(&r[..12])?; // truncated
    }
    inject(&[0xff]) // NAT keepalive
}

/// Writes `esp_sa` rows.
pub(crate) fn write_keys(path: &std::path::Path, rows: &[String]) -> Result<(), String> {
    write_table(path, "esp_sa", rows)?;
    outln!(
        "keys    {} (Wireshark: Protocols > ESP > ESP SAs, or copy it into your profile as esp_sa)",
        path.display()
    );
    Ok(())
}

/// Writes `ikev2_decryption_table` rows.
pub(crate) fn write_ike_keys(path: &std::path::Path, rows: &[String]) -> Result<(), String> {
    write_table(path, "ikev2_decryption_table", rows)
}

/// Writes a UAT file: a comment naming the table, then one record per line.
///
/// The tables hold session keys, so on Unix the file is readable by its owner only
/// (mode 0600), also when it existed before with a wider mode.
fn write_table(path: &std::path::Path, table: &str, rows: &[String]) -> Result<(), String> {
    use std::io::Write;
    let mut text = format!("# Wireshark {table}, written by `ipsec demo`\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = private_file(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// Opens `path` for writing, truncated; on Unix created with mode 0600, and an
/// existing file is narrowed to 0600 before anything is written to it.
fn private_file(path: &std::path::Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let f = o.open(path)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    o.open(path)
}

/// Creates the `--keys` directory (and its parents); on Unix a new directory is
/// accessible to its owner only (mode 0700).
fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Seals `pkt` (tunnel: the whole packet; transport: its payload after the 20-byte
/// IPv4 header) and sends the ESP packet as a UDP datagram: to `to` with a hand-keyed
/// SA, to the peer of the SA the SAD's policy chose otherwise.
pub(crate) fn send(
    from: &mut Peer,
    to: &SocketAddrV4,
    pkt: &[u8],
    transport: bool,
    buf: &mut [u8],
    wire: &mut Wire,
) -> Result<Vec<u8>, String> {
    let (body, next) = match (&from.plane, transport) {
        // The SAD selects the policy by the packet's IP header and drops it itself.
        (Plane::Sad { .. }, _) => (pkt, IpProto::IPV4),
        (Plane::Manual { .. }, true) => (pkt.get(20..).ok_or("short packet")?, IpProto(pkt[9])),
        (Plane::Manual { .. }, false) => (pkt, IpProto::IPV4),
    };
    let end = HEADROOM + body.len();
    buf.get_mut(HEADROOM..end)
        .ok_or("packet too large")?
        .copy_from_slice(body);
    let mut pb = PacketBuf::new(&mut *buf, HEADROOM, body.len()).map_err(|e| e.to_string())?;
    let to = match &mut from.plane {
        Plane::Manual { out, .. } => {
            out.as_mut()
                .ok_or("no outbound SA installed")?
                .seal(&mut pb, next)
                .map_err(|e| format!("seal: {e}"))?;
            *to
        }
        Plane::Sad { sad, clock } => {
            let now = clock.instant(std::time::Instant::now());
            match sad.process_outbound_udp(now, &mut pb) {
                UdpOutbound::Send {
                    to: SocketAddr::V4(to),
                    ..
                } => to,
                other => return Err(format!("seal: {other:?}")),
            }
        }
    };
    let pdu = pb.body().to_vec();
    wire.record(from.addr, to, &pdu)?;
    from.sock
        .send_to(&pdu, to)
        .map_err(|e| format!("send: {e}"))?;
    from.stats.sent += 1;
    from.stats.sent_inner_bytes += pkt.len() as u64;
    from.stats.sent_wire_bytes += (pdu.len() + 28) as u64;
    Ok(pdu)
}

/// Receives one datagram and opens it. Returns the inner packet (tunnel) or payload
/// (transport), or `None` when it was dropped or was a keepalive.
pub(crate) fn receive(to: &mut Peer, rbuf: &mut [u8]) -> Result<Option<Vec<u8>>, String> {
    if let Plane::Sad { .. } = to.plane {
        return receive_sad(to, rbuf);
    }
    let n = match to.sock.recv_from(rbuf) {
        Ok((n, _)) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(format!("{}: nothing received within 5 s", to.name))
        }
        Err(e) => return Err(format!("recv: {e}")),
    };
    let dgram = rbuf.get(..n).unwrap_or(&[]);
    let spi = match classify(dgram) {
        Classified::Keepalive => {
            to.stats.keepalives += 1;
            return Ok(None);
        }
        Classified::Esp(esp) => u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]),
        Classified::Ike(_) | Classified::Malformed => {
            *to.stats.drops.entry("malformed").or_default() += 1;
            return Ok(None);
        }
    };
    let Plane::Manual { inbound, .. } = &mut to.plane else {
        return Err("not a hand-keyed peer".into());
    };
    let Some(sa) = inbound.get_mut(&spi) else {
        *to.stats.drops.entry("unknown_spi").or_default() += 1;
        return Ok(None);
    };
    let mut pb = PacketBuf::new(&mut *rbuf, 0, n).map_err(|e| e.to_string())?;
    match sa.open(&mut pb, ipsec::esp::OpenOptions::new()) {
        Ok(_) => {
            to.stats.opened += 1;
            to.stats.opened_inner_bytes += pb.body().len() as u64;
            Ok(Some(pb.body().to_vec()))
        }
        Err(e) => {
            *to.stats.drops.entry(e.reason()).or_default() += 1;
            Ok(None)
        }
    }
}

/// [`receive`] through the SAD: it sorts the datagram (keepalive, IKE, ESP), opens
/// it and checks it against the SA's selectors. Transport mode's inner packet comes
/// behind a rebuilt IP header, which is taken off: the payload is what was sealed.
fn receive_sad(to: &mut Peer, rbuf: &mut [u8]) -> Result<Option<Vec<u8>>, String> {
    const H: usize = UDP_INBOUND_HEADROOM;
    let (n, from) = match to.sock.recv_from(rbuf.get_mut(H..).unwrap_or_default()) {
        Ok(x) => x,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(format!("{}: nothing received within 5 s", to.name))
        }
        Err(e) => return Err(format!("recv: {e}")),
    };
    let Plane::Sad { sad, clock } = &to.plane else {
        return Err("not an IKE peer".into());
    };
    let now = clock.instant(std::time::Instant::now());
    let mut pb = PacketBuf::new(&mut *rbuf, H, n).map_err(|e| e.to_string())?;
    match sad.process_inbound_udp(now, SocketAddr::V4(to.addr), from, &mut pb) {
        UdpInbound::Deliver { next_header, .. } => {
            let body = pb.body();
            let got = if next_header == IpProto::IPV4 || next_header == IpProto::IPV6 {
                body
            } else {
                let hl = usize::from(body.first().map_or(0, |b| b & 0x0f)) * 4;
                body.get(hl..).ok_or("short packet")?
            };
            to.stats.opened += 1;
            to.stats.opened_inner_bytes += got.len() as u64;
            Ok(Some(got.to_vec()))
        }
        UdpInbound::Keepalive => {
            to.stats.keepalives += 1;
            Ok(None)
        }
        UdpInbound::Drop(r) => {
            *to.stats.drops.entry(r.as_str()).or_default() += 1;
            Ok(None)
        }
        _ => {
            *to.stats.drops.entry("malformed").or_default() += 1;
            Ok(None)
        }
    }
}

pub(crate) fn check(stats: &mut Stats, sent: &[u8], got: &[u8], transport: bool) {
    let want = if transport {
        sent.get(20..).unwrap_or(&[])
    } else {
        sent
    };
    if want != got {
        stats.mismatched += 1;
    }
}

pub(crate) fn report(a: &Peer, b: &Peer, elapsed: Duration, count: usize, faults: bool) {
    outln!();
    outln!(
        "{:<8} {:>8} {:>12} {:>12} {:>8} {:>12}",
        "",
        "sent",
        "inner bytes",
        "wire bytes",
        "opened",
        "inner bytes"
    );
    for (dir, s, r) in [
        ("A -> B", &a.stats, &b.stats),
        ("B -> A", &b.stats, &a.stats),
    ] {
        outln!(
            "{dir:<8} {:>8} {:>12} {:>12} {:>8} {:>12}",
            s.sent,
            s.sent_inner_bytes,
            s.sent_wire_bytes,
            r.opened,
            r.opened_inner_bytes
        );
    }
    for p in [a, b] {
        let drops: Vec<String> = p
            .stats
            .drops
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        outln!(
            "drops at {}: {}{}{}",
            p.name,
            if drops.is_empty() {
                "none".to_string()
            } else {
                drops.join(", ")
            },
            if p.stats.keepalives > 0 {
                format!("; NAT keepalives {}", p.stats.keepalives)
            } else {
                String::new()
            },
            if p.stats.mismatched > 0 {
                format!("; {} CORRUPTED", p.stats.mismatched)
            } else {
                String::new()
            },
        );
    }
    if faults {
        outln!("(injected by A after the traffic: 1 replay, 1 forged ICV, 1 unknown SPI, 1 truncated packet, 1 NAT keepalive)");
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let pkts = (2 * count) as f64;
    outln!(
        "{} packets in {:.1} ms: {:.0} packets/s (seal + sendto + recvfrom + open, one thread, round trips)",
        2 * count,
        secs * 1e3,
        pkts / secs
    );
}
