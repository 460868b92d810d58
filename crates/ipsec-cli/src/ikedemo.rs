//! `ipsec demo` with IKEv2: two in-process peers, each the gateway's IKE driver
//! (`ipsec_gateway::driver::Driver`) over its own SAD, negotiate an IKE SA and a Child
//! SA over loopback UDP (PSK); the ESP traffic of the manual demo runs through the
//! SADs the drivers installed the Child SAs into, then the Child SA is rekeyed (a
//! driver command), traffic continues on the new SA, and the IKE SA is deleted. Every
//! IKE message and every notice of the drivers is printed as it happens.

use std::collections::{BTreeSet, VecDeque};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec::core::time::StdClock;
use ipsec::core::{IkeSpi, TrafficSelector, UdpEncap};
use ipsec::crypto::suites;
use ipsec::crypto::IntegId;
use ipsec::ike::{ChildSaId, Config, IkeSaKeys, SaHandle};
use ipsec::sad::{SaId, Sad, SadConfig};
use ipsec_gateway::driver::{ConnSpec, Driver, Notice, SecretLookup, StartAction};

use crate::capture::PcapOut;
use crate::decode::exchange_name;
use crate::keyfile::{esp_sa_line, ikev2_line};
use crate::tunnel::{
    bind_pair, inject_faults, report, traffic, v4, verdict, write_ike_keys, write_keys, Bufs,
    DemoArgs, KeyFiles, Peer, Plane, Stats, Wire, TUNNEL_A, TUNNEL_B,
};
use crate::ModeArg;

/// The name of the one connection each driver has.
const CONN: &str = "demo";

/// One IKE peer of the demo: its driver and SAD, and what the driver's notices told
/// us.
struct IkeSide {
    name: &'static str,
    driver: Driver,
    sad: Arc<Sad>,
    sock: UdpSocket,
    addr: SocketAddr,
    handle: Option<SaHandle>,
    /// Child SAs installed so far.
    installed: usize,
    current: Option<ChildSaId>,
    rekeyed: bool,
    closed: bool,
    /// Child SAs deleted so far.
    deleted: usize,
    /// Notices taken from the driver, not printed yet.
    pending: VecDeque<Notice>,
    /// `esp_sa` rows of the outbound SAs installed, not collected yet.
    rows: Vec<String>,
}

impl IkeSide {
    /// Takes the driver's notices (to be printed after its datagrams), and reads the
    /// keys of each Child SA from the SAD while it is installed.
    fn collect(&mut self, now: ipsec::core::Instant) -> Result<(), String> {
        while self.driver.poll_route().is_some() {}
        while let Some(n) = self.driver.poll_notice() {
            if let Notice::ChildUp { sad: Some(id), .. } = &n {
                self.rows.push(esp_row(&self.sad, now, *id)?);
            }
            self.pending.push_back(n);
        }
        Ok(())
    }
}

/// The `esp_sa` row of the outbound direction of SAD entry `id`.
fn esp_row(sad: &Sad, now: ipsec::core::Instant, id: SaId) -> Result<String, String> {
    let p = sad
        .export_sa(now, id)
        .and_then(|s| s.to_params())
        .map_err(|e| format!("keys: {e}"))?;
    let encr = p
        .encr
        .and_then(|e| suites::encr(e, p.encr_key_bits))
        .ok_or("unknown transform")?;
    let integ = if p.integ == IntegId::NONE {
        None
    } else {
        suites::integ(p.integ)
    };
    Ok(esp_sa_line(
        &p.local_addr.to_string(),
        &p.remote_addr.to_string(),
        p.outbound_spi.0,
        encr,
        p.outbound_keys.encr(),
        integ,
        p.outbound_keys.integ(),
    ))
}

/// The `ikev2_decryption_table` being written: like strongSwan's save-keys, one
/// record is appended as soon as an IKE SA's keys are derived, so the table is there
/// even when IKE_AUTH fails (when a decrypted IKE_AUTH helps most).
struct IkeKeyLog {
    path: PathBuf,
    /// SPIi and SPIr of the IKE SAs written (both ends export each one).
    written: BTreeSet<(IkeSpi, IkeSpi)>,
    /// The records written: an IKE SA with additional key exchanges (RFC 9370) has
    /// one per stage of its keys, under the same SPIs, which `ipsec decode` tries in
    /// order.
    lines: BTreeSet<String>,
}

impl IkeKeyLog {
    /// Starts the table at `path` (replacing an old one).
    fn create(path: &Path) -> Result<Self, String> {
        write_ike_keys(path, &[])?;
        Ok(IkeKeyLog {
            path: path.to_path_buf(),
            written: BTreeSet::new(),
            lines: BTreeSet::new(),
        })
    }

    /// Appends the record of `keys` unless it is in the table already.
    fn add(&mut self, keys: &IkeSaKeys) -> Result<(), String> {
        let line = ikev2_line(keys)?;
        if !self.lines.insert(line.clone()) {
            return Ok(());
        }
        self.written.insert((keys.spi_i, keys.spi_r));
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

/// Runs both drivers until `done` holds, printing each message and notice.
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
            side.collect(now)?;
            loop {
                match side.sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        side.driver.handle_datagram(now, side.addr, from, &buf[..n]);
                        side.collect(now)?;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
            if side.driver.poll_timeout().is_some_and(|t| t <= now) {
                side.driver.handle_timeout(now);
                side.collect(now)?;
            }
        }
        let names = [(a.addr, a.name), (b.addr, b.name)];
        let name_of = |x: SocketAddr| names.iter().find(|(s, _)| *s == x).map_or("?", |(_, n)| *n);
        for side in [&mut *a, &mut *b] {
            while let Some(t) = side.driver.poll_transmit() {
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
            while let Some(n) = side.pending.pop_front() {
                side.handle = Some(n.sa());
                on_notice(side, n, keylog)?;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn on_notice(side: &mut IkeSide, n: Notice, keylog: &mut Option<IkeKeyLog>) -> Result<(), String> {
    let name = side.name;
    match n {
        Notice::IkeUp {
            local_spi,
            remote_spi,
            suite,
            ..
        } => {
            outln!("  {name}: IKE_SA established ({suite}), SPIs {local_spi} / {remote_spi}");
        }
        Notice::IkeKeys { keys, .. } => {
            outln!(
                "  {name}: IKE_SA keys exported, SPIs {} / {}",
                keys.spi_i,
                keys.spi_r
            );
            if let Some(log) = keylog.as_mut() {
                log.add(&keys)?;
            }
        }
        Notice::ChildUp {
            child,
            sad,
            suite,
            esn,
            inbound_spi,
            outbound_spi,
            ..
        } => {
            outln!(
                "  {name}: CHILD_SA {} installed ({suite}{}), SPIs in {inbound_spi} out {outbound_spi}",
                child.0,
                if esn { ", ESN" } else { "" },
            );
            if sad.is_none() {
                return Err(format!("install: the SAD refused CHILD_SA {}", child.0));
            }
            side.installed += 1;
            if side.current.is_none() {
                side.current = Some(child);
            }
        }
        Notice::ChildRekeyed { old, new, .. } => {
            outln!("  {name}: CHILD_SA {} rekeyed, now {}", old.0, new.0);
            side.current = Some(new);
            side.rekeyed = true;
        }
        Notice::ChildDeleted {
            child,
            inbound_spi,
            outbound_spi,
            ..
        } => {
            outln!(
                "  {name}: CHILD_SA {} deleted (SPIs {inbound_spi} / {outbound_spi})",
                child.0
            );
            side.deleted += 1;
        }
        Notice::ChildFailed { child, error, .. } => {
            return Err(format!("{name}: CHILD_SA {} failed: {error}", child.0))
        }
        Notice::IkeClosed { reason, .. } => {
            outln!("  {name}: IKE_SA closed ({reason})");
            side.closed = true;
        }
        Notice::IkeRekeyed {
            local_spi,
            remote_spi,
            ..
        } => {
            outln!("  {name}: IKE_SA rekeyed, SPIs {local_spi} / {remote_spi}");
        }
        _ => {}
    }
    Ok(())
}

/// Runs the IKEv2 demo, writing the key tables `keys` names.
pub(crate) fn run(args: &DemoArgs, keys: &KeyFiles) -> Result<(), String> {
    let provider = args.backend.provider();
    let transport = args.mode == ModeArg::Transport;
    let (da, db) = bind_pair()?;
    for s in [&da, &db] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
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
        c.name = CONN.into();
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
    let start = Instant::now();
    let clock = StdClock::new(start);
    // A driver over its own SAD for each side; ESP goes in UDP between the demo's
    // data sockets (no NAT makes IKE choose that itself).
    let side = |name,
                cfg: Arc<Config>,
                sock,
                addr: SocketAddr,
                remote: Option<SocketAddr>,
                esp: (u16, u16)|
     -> Result<IkeSide, String> {
        let sad = Arc::new(Sad::new(provider, SadConfig::new()).map_err(|e| e.to_string())?);
        let key = cfg.psk.clone();
        let secrets: SecretLookup = Arc::new(move |_, _| Some(key.clone()));
        let conn = ConnSpec {
            config: Arc::clone(&cfg),
            local: addr.ip(),
            remote,
            remote_addrs: Vec::new(),
            start_action: StartAction::default(),
        };
        let mut driver = Driver::new(cfg, vec![conn], secrets, Arc::clone(&sad), provider)
            .map_err(|e| e.to_string())?;
        driver.keep_notices(true);
        driver.set_ike_port(addr.port());
        driver.set_esp_in_udp(Some(UdpEncap {
            local_port: esp.0,
            remote_port: esp.1,
        }));
        Ok(IkeSide {
            name,
            driver,
            sad,
            sock,
            addr,
            handle: None,
            installed: 0,
            current: None,
            rekeyed: false,
            closed: false,
            deleted: 0,
            pending: VecDeque::new(),
            rows: Vec::new(),
        })
    };
    let mut a = side(
        "A",
        config("a.demo.test", "b.demo.test", ts_a, ts_b)?,
        ia,
        ike_a,
        Some(ike_b),
        (addr_a.port(), addr_b.port()),
    )?;
    let mut b = side(
        "B",
        config("b.demo.test", "a.demo.test", ts_b, ts_a)?,
        ib,
        ike_b,
        None,
        (addr_b.port(), addr_a.port()),
    )?;
    let mut wire = Wire {
        pcap: args.pcap.as_deref().map(PcapOut::create).transpose()?,
    };
    let mut keylog = keys.ike.as_deref().map(IkeKeyLog::create).transpose()?;
    let mk_peer = |name, sock, addr, sad: &Arc<Sad>| Peer {
        name,
        sock,
        addr,
        plane: Plane::Sad {
            sad: Arc::clone(sad),
            clock: StdClock::new(start),
        },
        stats: Stats::default(),
    };
    let mut pa = mk_peer("A", da, addr_a, &a.sad);
    let mut pb = mk_peer("B", db, addr_b, &b.sad);

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

    outln!("\n1. IKE_SA_INIT and IKE_AUTH (A initiates)");
    let t0 = Instant::now();
    a.handle = Some(
        a.driver
            .initiate_sa(clock.instant(t0), CONN)
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
    let mut rows: Vec<String> = a.rows.drain(..).chain(b.rows.drain(..)).collect();

    let first = args.count / 2;
    outln!("\n2. ESP traffic on the first CHILD_SA: {first} packets each way");
    let mut bufs = Bufs::new();
    let t1 = Instant::now();
    traffic(&mut pa, &mut pb, 0, first, args, &mut bufs, &mut wire)?;
    let mut elapsed = t1.elapsed();

    outln!("\n3. CHILD_SA rekey (CREATE_CHILD_SA, A initiates), then the old SA is deleted");
    let h = a.handle.ok_or("no IKE SA")?;
    let c = a.current.ok_or("no CHILD_SA")?;
    a.driver
        .rekey_child(clock.instant(Instant::now()), c)
        .map_err(|e| format!("rekey: {e}"))?;
    drive(
        &mut a,
        &mut b,
        &clock,
        &mut wire,
        &mut keylog,
        "the rekey",
        |a, b| a.rekeyed && b.rekeyed && a.installed == 2 && a.deleted > 0 && b.deleted > 0,
    )?;
    rows.extend(a.rows.drain(..).chain(b.rows.drain(..)));

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
    a.driver
        .close(clock.instant(Instant::now()), h)
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
