//! `ipsec demo` with IKEv2: two in-process endpoints negotiate an IKE SA and a Child SA
//! over loopback UDP (PSK), the ESP traffic of the manual demo runs on the negotiated
//! keys, then the Child SA is rekeyed, traffic continues on the new SA, and the IKE SA
//! is deleted. Every IKE message and event is printed as it happens.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec::core::time::StdClock;
use ipsec::core::{ChildSaParams, IkeSpi, TrafficSelector};
use ipsec::crypto::suites;
use ipsec::crypto::IntegId;
use ipsec::esp::{EspInbound, EspOutbound};
use ipsec::ike::{ChildSaId, Config, Event, IkeEndpoint, IkeSaKeys, SaHandle};

use crate::capture::PcapOut;
use crate::decode::exchange_name;
use crate::keyfile::{esp_sa_line, ikev2_line};
use crate::tunnel::{
    bind_pair, inject_faults, report, traffic, v4, verdict, write_ike_keys, write_keys, Bufs,
    DemoArgs, KeyFiles, Peer, Stats, Wire, TUNNEL_A, TUNNEL_B,
};
use crate::ModeArg;

/// One IKE endpoint of the demo and what its events told us.
struct IkeSide {
    name: &'static str,
    ep: IkeEndpoint,
    sock: UdpSocket,
    addr: SocketAddr,
    handle: Option<SaHandle>,
    children: BTreeMap<ChildSaId, ChildSaParams>,
    current: Option<ChildSaId>,
    rekeyed: bool,
    closed: bool,
    /// Inbound SPIs of Child SAs deleted since the data plane last looked.
    deleted: Vec<u32>,
    /// Child SAs installed since the data plane last looked.
    fresh: Vec<ChildSaId>,
}

/// The `ikev2_decryption_table` being written: like strongSwan's save-keys, one
/// record is appended as soon as an IKE SA's keys are derived, so the table is there
/// even when IKE_AUTH fails (when a decrypted IKE_AUTH helps most).
struct IkeKeyLog {
    path: PathBuf,
    /// SPIi and SPIr of the IKE SAs written (both ends export each one).
    written: BTreeSet<(IkeSpi, IkeSpi)>,
}

impl IkeKeyLog {
    /// Starts the table at `path` (replacing an old one).
    fn create(path: &Path) -> Result<Self, String> {
        write_ike_keys(path, &[])?;
        Ok(IkeKeyLog {
            path: path.to_path_buf(),
            written: BTreeSet::new(),
        })
    }

    /// Appends the record of `keys` unless that IKE SA is in the table already.
    fn add(&mut self, keys: &IkeSaKeys) -> Result<(), String> {
        if !self.written.insert((keys.spi_i, keys.spi_r)) {
            return Ok(());
        }
        let line = ikev2_line(keys)?;
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        writeln!(f, "{line}").map_err(err)
    }
}

fn bind_ike_pair() -> Result<(UdpSocket, UdpSocket), String> {
    if let (Ok(a), Ok(b)) = (
        UdpSocket::bind("127.0.0.1:500"),
        UdpSocket::bind("127.0.0.2:500"),
    ) {
        return Ok((a, b));
    }
    let a = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let b = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok((a, b))
}

/// Describes an IKE datagram for the log: exchange, request or response, message id.
fn describe(payload: &[u8]) -> String {
    let m = if payload.starts_with(&[0, 0, 0, 0]) {
        &payload[4..]
    } else {
        payload
    };
    match m.get(..28) {
        Some(h) => format!(
            "{} {} #{}",
            exchange_name(u64::from(h[18])),
            if h[19] & 0x20 != 0 {
                "response"
            } else {
                "request"
            },
            u32::from_be_bytes([h[20], h[21], h[22], h[23]])
        ),
        None => "IKE datagram".into(),
    }
}

/// Runs both endpoints until `done` holds, printing each message and event.
fn drive(
    a: &mut IkeSide,
    b: &mut IkeSide,
    clock: &StdClock,
    wire: &mut Wire,
    keylog: &mut Option<IkeKeyLog>,
    what: &str,
    done: impl Fn(&IkeSide, &IkeSide) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    while !done(a, b) {
        if Instant::now() > deadline {
            return Err(format!("IKE: {what} did not complete within 10 s"));
        }
        let now = clock.instant(Instant::now());
        for side in [&mut *a, &mut *b] {
            loop {
                match side.sock.recv_from(&mut buf) {
                    Ok((n, from)) => side.ep.handle_datagram(now, side.addr, from, &buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
            if side.ep.poll_timeout().is_some_and(|t| t <= now) {
                side.ep.handle_timeout(now);
            }
        }
        let names = [(a.addr, a.name), (b.addr, b.name)];
        let name_of = |x: SocketAddr| names.iter().find(|(s, _)| *s == x).map_or("?", |(_, n)| *n);
        for side in [&mut *a, &mut *b] {
            while let Some(t) = side.ep.poll_transmit() {
                outln!(
                    "  {} -> {}  {}, {} bytes",
                    side.name,
                    name_of(t.remote),
                    describe(&t.payload),
                    t.payload.len()
                );
                if let (SocketAddr::V4(l), SocketAddr::V4(r)) = (t.local, t.remote) {
                    wire.record(l, r, &t.payload)?;
                }
                side.sock
                    .send_to(&t.payload, t.remote)
                    .map_err(|e| format!("send: {e}"))?;
            }
            while let Some((h, ev)) = side.ep.poll_event() {
                side.handle = Some(h);
                on_event(side, ev, keylog)?;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn on_event(side: &mut IkeSide, ev: Event, keylog: &mut Option<IkeKeyLog>) -> Result<(), String> {
    let n = side.name;
    match ev {
        Event::IkeSaEstablished {
            local_spi,
            remote_spi,
            suite,
            ..
        } => {
            outln!("  {n}: IKE_SA established ({suite}), SPIs {local_spi} / {remote_spi}");
        }
        Event::IkeSaKeysDerived { keys } => {
            outln!(
                "  {n}: IKE_SA keys exported, SPIs {} / {}",
                keys.spi_i,
                keys.spi_r
            );
            if let Some(log) = keylog.as_mut() {
                log.add(&keys)?;
            }
        }
        Event::ChildSaInstalled { id, params, suite } => {
            outln!(
                "  {n}: CHILD_SA {} installed ({suite}{}), SPIs in {} out {}",
                id.0,
                if params.esn { ", ESN" } else { "" },
                params.inbound_spi,
                params.outbound_spi
            );
            side.children.insert(id, params);
            side.fresh.push(id);
            if side.current.is_none() {
                side.current = Some(id);
            }
        }
        Event::ChildSaRekeyed { old, new } => {
            outln!("  {n}: CHILD_SA {} rekeyed, now {}", old.0, new.0);
            side.current = Some(new);
            side.rekeyed = true;
        }
        Event::ChildSaDeleted {
            id,
            inbound_spi,
            outbound_spi,
        } => {
            outln!(
                "  {n}: CHILD_SA {} deleted (SPIs {inbound_spi} / {outbound_spi})",
                id.0
            );
            side.deleted.push(inbound_spi.0);
        }
        Event::ChildSaFailed { id, error } => {
            return Err(format!("{n}: CHILD_SA {} failed: {error}", id.0))
        }
        Event::IkeSaClosed { reason } => {
            outln!("  {n}: IKE_SA closed ({reason})");
            side.closed = true;
        }
        Event::IkeSaRekeyed {
            new_local_spi,
            new_remote_spi,
            ..
        } => {
            outln!("  {n}: IKE_SA rekeyed, SPIs {new_local_spi} / {new_remote_spi}");
        }
        _ => {}
    }
    Ok(())
}

/// Installs what `side` negotiated into its data plane `peer`: new inbound SAs, the
/// current outbound SA, and removes deleted inbound SAs. Returns `esp_sa` rows for
/// the new outbound SAs.
fn install(
    side: &mut IkeSide,
    peer: &mut Peer,
    provider: &'static ipsec::crypto::CryptoProvider,
) -> Result<Vec<String>, String> {
    let mut rows = Vec::new();
    for id in side.fresh.drain(..) {
        let Some(p) = side.children.get(&id) else {
            continue;
        };
        let i = EspInbound::from_params(provider, p).map_err(|e| format!("install: {e}"))?;
        peer.inbound.insert(p.inbound_spi.0, i);
        let encr = p
            .encr
            .and_then(|e| suites::encr(e, p.encr_key_bits))
            .ok_or("unknown transform")?;
        let integ = if p.integ == IntegId::NONE {
            None
        } else {
            suites::integ(p.integ)
        };
        rows.push(esp_sa_line(
            &p.local_addr.to_string(),
            &p.remote_addr.to_string(),
            p.outbound_spi.0,
            encr,
            p.outbound_keys.encr(),
            integ,
            p.outbound_keys.integ(),
        ));
    }
    for spi in side.deleted.drain(..) {
        peer.inbound.remove(&spi);
    }
    if let Some(p) = side.current.and_then(|c| side.children.get(&c)) {
        peer.out =
            Some(EspOutbound::from_params(provider, p).map_err(|e| format!("install: {e}"))?);
    }
    Ok(rows)
}

/// Runs the IKEv2 demo, writing the key tables `keys` names.
pub(crate) fn run(args: &DemoArgs, keys: &KeyFiles) -> Result<(), String> {
    let provider = args.backend.provider();
    let transport = args.mode == ModeArg::Transport;
    let (da, db) = bind_pair()?;
    for s in [&da, &db] {
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
    }
    let (addr_a, addr_b): (SocketAddrV4, SocketAddrV4) = (v4(&da)?, v4(&db)?);
    let (ia, ib) = bind_ike_pair()?;
    for s in [&ia, &ib] {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let (ike_a, ike_b) = (
        ia.local_addr().map_err(|e| e.to_string())?,
        ib.local_addr().map_err(|e| e.to_string())?,
    );

    let mut psk = [0u8; 24];
    provider
        .secure_random
        .fill(&mut psk)
        .map_err(|e| e.to_string())?;
    let esp = if args.esn && !args.suite.contains("esn") {
        format!("{}-esn", args.suite)
    } else {
        args.suite.clone()
    };
    let (ts_a, ts_b) = if transport {
        (
            TrafficSelector::host(IpAddr::V4(*addr_a.ip())),
            TrafficSelector::host(IpAddr::V4(*addr_b.ip())),
        )
    } else {
        let p = |a: Ipv4Addr| TrafficSelector::from_prefix(IpAddr::V4(a), 24).ok_or("selector");
        (p(TUNNEL_A)?, p(TUNNEL_B)?)
    };
    let config = |me: &str,
                  peer: &str,
                  local: TrafficSelector,
                  remote: TrafficSelector|
     -> Result<Arc<Config>, String> {
        let mut c = Config::new(me.parse().map_err(|_| "identity")?, psk.to_vec())
            .with_ike_proposals(&args.ike)
            .map_err(|e| format!("--ike: {e}"))?
            .with_esp_proposals(&esp)
            .map_err(|e| format!("--suite: {e}"))?;
        c.remote_id = Some(peer.parse().map_err(|_| "identity")?);
        c.local_ts = vec![local];
        c.remote_ts = vec![remote];
        c.mode = if transport {
            ipsec::core::Mode::Transport
        } else {
            ipsec::core::Mode::Tunnel
        };
        c.replay_window = args.replay_window;
        // Debugging aid, as strongSwan's save-keys: only when asked to write them.
        c.export_ike_keys = keys.ike.is_some();
        Ok(Arc::new(c))
    };
    let side = |name, ep, sock, addr| IkeSide {
        name,
        ep,
        sock,
        addr,
        handle: None,
        children: BTreeMap::new(),
        current: None,
        rekeyed: false,
        closed: false,
        deleted: Vec::new(),
        fresh: Vec::new(),
    };
    let mut a = side(
        "A",
        IkeEndpoint::with_config(config("a.demo.test", "b.demo.test", ts_a, ts_b)?, provider)
            .map_err(|e| e.to_string())?,
        ia,
        ike_a,
    );
    let mut b = side(
        "B",
        IkeEndpoint::with_config(config("b.demo.test", "a.demo.test", ts_b, ts_a)?, provider)
            .map_err(|e| e.to_string())?,
        ib,
        ike_b,
    );
    let mut wire = Wire {
        pcap: args.pcap.as_deref().map(PcapOut::create).transpose()?,
    };
    let mut keylog = keys.ike.as_deref().map(IkeKeyLog::create).transpose()?;
    let mk_peer = |name, sock, addr| Peer {
        name,
        sock,
        addr,
        out: None,
        inbound: BTreeMap::new(),
        stats: Stats::default(),
    };
    let mut pa = mk_peer("A", da, addr_a);
    let mut pb = mk_peer("B", db, addr_b);

    let mode = if transport { "transport" } else { "tunnel" };
    outln!("ipsec demo: IKEv2 (PSK) and ESP-in-UDP (RFC 3948), {mode} mode, over loopback");
    outln!(
        "  IKE {} <-> {}, proposal {}; ESP {} <-> {}, proposal {esp}",
        ike_a,
        ike_b,
        args.ike,
        addr_a,
        addr_b
    );
    if transport {
        outln!(
            "  traffic {} <-> {} (transport: the packets' own addresses), UDP and ICMP echo",
            addr_a.ip(),
            addr_b.ip()
        );
    } else {
        outln!("  traffic {TUNNEL_A} <-> {TUNNEL_B} inside the tunnel, UDP and ICMP echo");
    }
    let start = Instant::now();
    let clock = StdClock::new(start);

    outln!("\n1. IKE_SA_INIT and IKE_AUTH (A initiates)");
    let t0 = Instant::now();
    a.handle = Some(
        a.ep.connect(clock.instant(t0), ike_a, ike_b)
            .map_err(|e| format!("connect: {e}"))?,
    );
    drive(
        &mut a,
        &mut b,
        &clock,
        &mut wire,
        &mut keylog,
        "the handshake",
        |a, b| a.current.is_some() && b.current.is_some(),
    )?;
    outln!("  handshake in {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    let mut rows = install(&mut a, &mut pa, provider)?;
    rows.extend(install(&mut b, &mut pb, provider)?);

    let first = args.count / 2;
    outln!("\n2. ESP traffic on the first CHILD_SA: {first} packets each way");
    let mut bufs = Bufs::new();
    let t1 = Instant::now();
    traffic(&mut pa, &mut pb, 0, first, args, &mut bufs, &mut wire)?;
    let mut elapsed = t1.elapsed();

    outln!("\n3. CHILD_SA rekey (CREATE_CHILD_SA, A initiates), then the old SA is deleted");
    let h = a.handle.ok_or("no IKE SA")?;
    let c = a.current.ok_or("no CHILD_SA")?;
    a.ep.rekey_child_sa(clock.instant(Instant::now()), h, c)
        .map_err(|e| format!("rekey: {e}"))?;
    drive(
        &mut a,
        &mut b,
        &clock,
        &mut wire,
        &mut keylog,
        "the rekey",
        |a, b| {
            a.rekeyed
                && b.rekeyed
                && a.children.len() == 2
                && !a.deleted.is_empty()
                && !b.deleted.is_empty()
        },
    )?;
    rows.extend(install(&mut a, &mut pa, provider)?);
    rows.extend(install(&mut b, &mut pb, provider)?);

    outln!(
        "\n4. ESP traffic on the new CHILD_SA: {} packets each way",
        args.count - first
    );
    let t2 = Instant::now();
    let replayable = traffic(
        &mut pa,
        &mut pb,
        first,
        args.count - first,
        args,
        &mut bufs,
        &mut wire,
    )?;
    elapsed += t2.elapsed();
    if !args.no_faults {
        inject_faults(
            &mut pa,
            &mut pb,
            replayable.as_deref(),
            args.count,
            &mut bufs,
            &mut wire,
        )?;
    }

    outln!("\n5. Delete (INFORMATIONAL, A initiates)");
    a.ep.close(clock.instant(Instant::now()), h)
        .map_err(|e| format!("close: {e}"))?;
    drive(
        &mut a,
        &mut b,
        &clock,
        &mut wire,
        &mut keylog,
        "the delete",
        |a, b| a.closed && b.closed,
    )?;

    report(&pa, &pb, elapsed, args.count, !args.no_faults);
    if let Some(k) = &keys.esp {
        write_keys(k, &rows)?;
    }
    if let Some(log) = &keylog {
        outln!(
            "keys    {} (IKE SAs: {}; Wireshark: Protocols > ISAKMP > IKEv2 Decryption Table, or copy it into your profile as ikev2_decryption_table)",
            log.path.display(),
            log.written.len()
        );
    }
    if let Some(p) = &args.pcap {
        outln!(
            "capture {} (UDP 500 is IKE, UDP 4500 ESP-in-UDP)",
            p.display()
        );
    }
    verdict(&pa, &pb, args.count)
}
