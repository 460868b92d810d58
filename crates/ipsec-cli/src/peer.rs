//! `ipsec connect` and `ipsec listen`: a command-line IKEv2 peer for testing a VPN
//! gateway. IKE is driven by the gateway's [`Driver`] (the one IKE-driving loop of the
//! workspace), fed from two UDP sockets on ports 500 and 4500; the driver installs the
//! Child SAs it negotiates in a `Sad`, and ICMP echo requests and replies cross the
//! tunnel through that SAD as ESP in UDP (RFC 3948, module `plane`). What the driver
//! reports ([`Notice`]s) is printed; manual rekeys and the final delete are the
//! driver's commands.
//!
//! Nothing a peer sends ends the process by itself: `listen` serves the first
//! initiator that authenticates, and handshakes that fail before that (a wrong PSK, an
//! identity not accepted, no common proposal, a half-open SA that times out) are
//! printed, counted and survived. Dropped packets (ESP that fails to open, an echo
//! reply that cannot be sent) are counted by reason and printed through a rate limit
//! (module `drops`).

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec::core::time::StdClock;
use ipsec::core::TrafficSelector;
use ipsec::crypto::CryptoProvider;
use ipsec::esp::udp::{classify, Classified};
use ipsec::ike::{ChildSaId, CloseReason, Config, Identity, LocalAuth, Ppk, SaHandle};
use ipsec::sad::{Sad, SadConfig};
use ipsec_gateway::driver::{reason_label, ConnSpec, Driver, Notice, SecretLookup, StartAction};
use ipsec_gateway::pool::{MemPool, PoolSet};
use serde_json::{json, Value};

use crate::args::{
    parse_id, parse_remote, parse_ts, read_psk, route_source, CertArgs, Credentials,
};
use crate::packets::{ipv4_packet, reply_to, PROTO_ICMP};
use crate::Backend;

mod drops;
mod plane;
mod roam;

use drops::RateLog;

/// Options shared by `ipsec connect` and `ipsec listen`.
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// The peer (IP address, optionally :port; IKE starts on port 500).
    #[arg(long)]
    pub remote: Option<String>,
    /// Our address to bind (default: the one the route to --remote uses, else 0.0.0.0).
    #[arg(long)]
    pub local: Option<IpAddr>,
    /// The pre-shared key on the command line, where other local users can read it
    /// (ps, /proc/PID/cmdline): prefer --psk-file or the IPSEC_PSK environment variable.
    #[arg(long, value_name = "SECRET", conflicts_with = "psk_file")]
    pub psk: Option<String>,
    /// Read the pre-shared key from FILE (its bytes, without one trailing "\n" or
    /// "\r\n"). Without --psk and --psk-file, the key comes from IPSEC_PSK.
    #[arg(long = "psk-file", value_name = "FILE")]
    pub psk_file: Option<PathBuf>,
    /// Our identity (IP address, FQDN, user@fqdn, or a distinguished name such as
    /// "C=CH, O=Example, CN=gw.example"); default: the subject of --cert, else our
    /// address.
    #[arg(long)]
    pub id: Option<String>,
    /// The identity the peer must prove, in the syntax of --id (default: any that
    /// knows the PSK or that its certificate proves).
    #[arg(long = "remote-id")]
    pub remote_id: Option<String>,
    /// IKE proposals (strongSwan syntax, comma-separated).
    #[arg(long, default_value = "aes128gcm16-prfsha256-x25519")]
    pub ike: String,
    /// ESP proposals (strongSwan syntax, comma-separated).
    #[arg(long, default_value = "aes128gcm16")]
    pub esp: String,
    /// Our traffic selector (CIDR); pings are sent from its first address.
    #[arg(long = "local-ts")]
    pub local_ts: Option<String>,
    /// The peer's traffic selector (CIDR).
    #[arg(long = "remote-ts")]
    pub remote_ts: Option<String>,
    /// Send ICMP echo requests to this address through the tunnel.
    #[arg(long)]
    pub ping: Option<Ipv4Addr>,
    /// Echo requests per round (one round after the Child SA is up, one after each rekey).
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    /// Size of each echo request in bytes (the inner IPv4 packet, 28 to 65000).
    #[arg(long, default_value_t = 84, value_parser = clap::value_parser!(u16).range(28..=65000))]
    pub size: u16,
    /// Rekey the Child SA this many seconds after it is up.
    #[arg(long = "rekey-child-after", value_name = "SECS")]
    pub rekey_child_after: Option<f64>,
    /// Rekey the IKE SA this many seconds after it is up.
    #[arg(long = "rekey-ike-after", value_name = "SECS")]
    pub rekey_ike_after: Option<f64>,
    /// Stay up at least this many seconds after the IKE SA is up (following the peer's
    /// rekeys), then delete and exit.
    #[arg(long, value_name = "SECS")]
    pub hold: Option<f64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub timeout: f64,
    /// One JSON event per line.
    #[arg(long)]
    pub json: bool,
    /// Crypto provider.
    #[arg(long, value_enum, default_value = "composed")]
    pub backend: Backend,
    /// IKE port (4500 is always used as well).
    #[arg(long, default_value_t = 500)]
    pub port: u16,
    /// IKE fragmentation (RFC 7383): the IP MTU that protected IKE messages are split
    /// for when the peer supports it (strongSwan's `fragment_size` default); 0 turns
    /// it off. Hybrid post-quantum key exchanges need it: an ML-KEM-1024 key alone is
    /// 1568 bytes.
    #[arg(long = "fragment-mtu", default_value_t = 1280, value_name = "BYTES")]
    pub fragment_mtu: usize,
    /// A post-quantum preshared key (RFC 8784): its PPK_ID, which names it for the
    /// peer (strongSwan's `ppk_id`). Needs --ppk-file.
    #[arg(long = "ppk-id", value_name = "ID", requires = "ppk_file")]
    pub ppk_id: Option<String>,
    /// Read the PPK from FILE (its bytes, without one trailing newline), as
    /// strongSwan's `secrets { ppk-... { secret = ... } }` holds it.
    #[arg(long = "ppk-file", value_name = "FILE", requires = "ppk_id")]
    pub ppk_file: Option<PathBuf>,
    /// Fail unless the peer uses the PPK (strongSwan's `ppk_required`); otherwise
    /// NO_PPK_AUTH lets a peer without it authenticate us without it.
    #[arg(long = "ppk-required", requires = "ppk_id")]
    pub ppk_required: bool,
    /// Ask the responder for a virtual address (RFC 7296 §3.15, strongSwan's
    /// `vips`), repeatable (one per family): 0.0.0.0 or :: for any, an address to ask
    /// for that one. Pings are then sent from the address assigned, and the Child
    /// SA's local selector is narrowed to it (default --local-ts: all of the family).
    #[arg(long, value_name = "ADDR")]
    pub vip: Vec<IpAddr>,
    /// Authenticate with EAP-MSCHAPv2 (RFC 7296 §2.16) as this EAP identity (connect
    /// only); the responder proves itself with its certificate (--ca) or the PSK.
    #[arg(
        long = "eap-identity",
        value_name = "NAME",
        requires = "eap_password_file"
    )]
    pub eap_identity: Option<String>,
    /// Read the EAP password from FILE (UTF-8, without one trailing newline).
    #[arg(
        long = "eap-password-file",
        value_name = "FILE",
        requires = "eap_identity"
    )]
    pub eap_password_file: Option<PathBuf>,
    /// Lease virtual addresses from this subnet or range (listen only): an initiator
    /// that asks for one (--vip) gets an address of it, as from a swanctl.conf pool.
    #[arg(long, value_name = "CIDR")]
    pub pool: Option<String>,
    /// Certificates: ours (--cert, --key, --rsa-pss) and the peer's trust anchors
    /// (--ca, --crl).
    #[command(flatten)]
    pub certs: CertArgs,
}

struct Out {
    json: bool,
}

impl Out {
    fn event(&self, v: Value, text: impl FnOnce() -> String) {
        if self.json {
            outln!("{v}");
        } else {
            outln!("{}", text());
        }
    }

    /// Counts a dropped packet; prints it unless the rate limit says otherwise.
    fn esp_drop(
        &self,
        p: &mut Progress,
        spi: Option<u32>,
        reason: &str,
        text: impl FnOnce() -> String,
    ) {
        if p.esp_drops.count(reason, Instant::now()) {
            self.event(
                json!({"event": "esp_drop", "spi": spi.map(|s| format!("0x{s:08x}")), "reason": reason}),
                text,
            );
        }
    }

    /// Prints the summaries of the lines the rate limits held back that are due
    /// (all of them with `all`).
    fn summaries(&self, p: &mut Progress, all: bool) {
        let now = Instant::now();
        for (what, label, log) in [
            ("esp_drop", "dropped packets", &mut p.esp_drops),
            ("ike_failed", "failed IKE_SAs", &mut p.ike_failures),
        ] {
            for s in log.summaries(now, all) {
                self.event(
                    json!({"event": "suppressed", "what": what, "reason": s.reason,
                           "not_shown": s.hidden, "total": s.total}),
                    || {
                        format!(
                            "{label} ({}): {} more not shown, {} in total",
                            s.reason, s.hidden, s.total
                        )
                    },
                );
            }
        }
    }
}

/// What the run was asked to do, and what happened.
#[derive(Default)]
struct Progress {
    established_at: Option<Instant>,
    child: Option<ChildSaId>,
    rounds_wanted: u32,
    rounds_done: u32,
    round_sent: u32,
    round_replies: u32,
    round_started: Option<Instant>,
    last_sent: Option<Instant>,
    sent_at: HashMap<u16, Instant>,
    next_seq: u16,
    child_rekey_asked: bool,
    child_rekeyed: bool,
    ike_rekey_asked: bool,
    ike_rekeyed: bool,
    closing: bool,
    closed: Option<CloseReason>,
    failures: Vec<String>,
    echo_answered: u64,
    /// Dropped packets by reason.
    esp_drops: RateLog,
    /// IKE SAs that failed before they were established, by reason.
    ike_failures: RateLog,
}

/// Runs `ipsec connect` (`initiate = true`) or `ipsec listen`: sets up, then turns the
/// loop until the served IKE SA is closed or the time is up, and sums up.
pub fn run(args: &PeerArgs, initiate: bool) -> Result<(), String> {
    let mut r = Run::setup(args, initiate)?;
    let deadline = r.start + Duration::from_secs_f64(args.timeout);
    loop {
        let wall = Instant::now();
        let now = r.clock.instant(wall);
        if wall >= deadline {
            r.p.failures
                .push(format!("timed out after {} s", args.timeout));
            break;
        }
        // 1. Input.
        r.receive(now)?;
        // 2. Output and events, as the driving contract says.
        r.ike_output(now, wall)?;
        r.out.summaries(&mut r.p, false);
        if r.p.closed.is_some() {
            break;
        }
        // 3. What we were asked to do.
        r.tasks(now, wall)?;
        // 4. Our address may have changed (MOBIKE).
        r.roam(now, wall)?;
        std::thread::sleep(Duration::from_millis(1));
    }
    r.finish()
}

/// The state the steps of a run share: the gateway's driver (IKE, and the Child SAs
/// it installs in the SAD), the SAD as the data plane, the sockets and the progress.
struct Run<'a> {
    args: &'a PeerArgs,
    initiate: bool,
    out: Out,
    driver: Driver,
    sad: Arc<Sad>,
    start: Instant,
    clock: StdClock,
    s500: UdpSocket,
    s4500: UdpSocket,
    l500: SocketAddr,
    l4500: SocketAddr,
    /// Our traffic selectors: echo requests to them are answered.
    local_sel: Vec<TrafficSelector>,
    /// Where our echo requests come from.
    ping_src: Ipv4Addr,
    /// The IKE SA this run serves: ours when connecting; when listening, the first one
    /// that is established (its peer authenticated).
    sa: Option<SaHandle>,
    /// Where the served peer moved (a NAT rebinding IKE followed): ESP goes there too.
    moved: Option<SocketAddr>,
    /// Watching our own address (MOBIKE, `peer/roam.rs`).
    roam: roam::Roam,
    /// Installed Child SAs (their outbound SPIs, for the drop lines).
    children: BTreeMap<ChildSaId, u32>,
    current: Option<ChildSaId>,
    /// Both hold the largest UDP datagram (with the headroom the SAD needs), so that
    /// any echo request that arrived can be answered (a reply that still does not fit
    /// is dropped and counted).
    buf: Vec<u8>,
    sbuf: Vec<u8>,
    p: Progress,
}

/// The name of the one connection a run's driver has.
const CONN: &str = "peer";

impl<'a> Run<'a> {
    /// Reads the options, binds the sockets, and starts the IKE SA when connecting.
    fn setup(args: &'a PeerArgs, initiate: bool) -> Result<Self, String> {
        let provider = args.backend.provider();
        let out = Out { json: args.json };
        let remote = match &args.remote {
            Some(r) => Some(parse_remote(r, args.port)?),
            None if initiate => return Err("connect needs --remote".into()),
            None => None,
        };
        let local_ip = args
            .local
            .or_else(|| remote.and_then(route_source))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut cfg = config(args, local_ip, provider)?;
        cfg.name = CONN.into();
        let ping_src = ping_source(&cfg, local_ip);
        let local_sel: Vec<TrafficSelector> = cfg.local_ts.clone();
        let psk = cfg.psk.clone();
        let cfg = Arc::new(cfg);
        let sad = Arc::new(Sad::new(provider, SadConfig::new()).map_err(|e| e.to_string())?);
        let conn = ConnSpec {
            config: Arc::clone(&cfg),
            local: local_ip,
            remote: remote.filter(|_| initiate),
            remote_addrs: Vec::new(),
            start_action: StartAction::default(),
        };
        // One key for every peer: without --remote-id, any identity that proves it.
        let secrets: SecretLookup = Arc::new(move |_: &Identity, _: &Identity| Some(psk.clone()));
        let mut driver = Driver::new(cfg, vec![conn], secrets, Arc::clone(&sad), provider)
            .map_err(|e| e.to_string())?;
        driver.keep_notices(true);
        driver.set_ike_port(args.port);

        let s500 = UdpSocket::bind(SocketAddr::new(local_ip, args.port))
            .map_err(|e| format!("bind {local_ip}:{}: {e}", args.port))?;
        let s4500 = UdpSocket::bind(SocketAddr::new(local_ip, 4500))
            .map_err(|e| format!("bind {local_ip}:4500: {e}"))?;
        for s in [&s500, &s4500] {
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
        }
        let l500 = s500.local_addr().map_err(|e| e.to_string())?;
        let l4500 = s4500.local_addr().map_err(|e| e.to_string())?;

        let start = Instant::now();
        let clock = StdClock::new(start);
        let p = Progress {
            rounds_wanted: if args.ping.is_some() {
                1 + u32::from(args.rekey_child_after.is_some())
                    + u32::from(args.rekey_ike_after.is_some())
            } else {
                0
            },
            ..Default::default()
        };
        let mut sa: Option<SaHandle> = None;
        if let Some(r) = remote {
            if initiate {
                sa = Some(
                    driver
                        .initiate_sa(clock.instant(start), CONN)
                        .map_err(|e| format!("connect: {e}"))?,
                );
                out.event(
                    json!({"event": "initiating", "remote": r.to_string(), "local": l500.to_string()}),
                    || format!("initiating IKE_SA to {r} from {l500}"),
                );
            }
        }
        if !initiate {
            out.event(
                json!({"event": "listening", "local": [l500.to_string(), l4500.to_string()]}),
                || format!("listening on {l500} and {l4500}"),
            );
        }
        Ok(Run {
            args,
            initiate,
            out,
            driver,
            sad,
            start,
            clock,
            s500,
            s4500,
            l500,
            l4500,
            local_sel,
            ping_src,
            sa,
            moved: None,
            roam: roam::Roam::default(),
            children: BTreeMap::new(),
            current: None,
            buf: vec![0u8; plane::RECV_HEAD + 65536],
            sbuf: vec![0u8; 65536 + 512],
            p,
        })
    }

    /// Reads both sockets until they are empty: IKE goes to the driver, ESP to the
    /// SAD.
    fn receive(&mut self, now: ipsec::core::Instant) -> Result<(), String> {
        const H: usize = plane::RECV_HEAD;
        for ike_port in [true, false] {
            loop {
                let (sock, local) = if ike_port {
                    (&self.s500, self.l500)
                } else {
                    (&self.s4500, self.l4500)
                };
                let (n, from) = match sock.recv_from(&mut self.buf[H..]) {
                    Ok(x) => x,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // An ICMP error for something we sent earlier: nothing to read.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionRefused
                                | ErrorKind::ConnectionReset
                                | ErrorKind::Interrupted
                        ) =>
                    {
                        continue
                    }
                    Err(e) => return Err(format!("recv: {e}")),
                };
                if local.port() == 4500 {
                    self.on_4500(now, local, from, n);
                } else {
                    self.driver
                        .handle_datagram(now, local, from, &self.buf[H..H + n]);
                }
            }
        }
        Ok(())
    }

    /// The data plane: a datagram of `n` bytes in `buf` that arrived on port 4500 is
    /// IKE, ESP (opened, and an echo request to us answered), a keepalive, or a drop.
    fn on_4500(
        &mut self,
        now: ipsec::core::Instant,
        local: SocketAddr,
        from: SocketAddr,
        n: usize,
    ) {
        const H: usize = plane::RECV_HEAD;
        let data = &self.buf[H..H + n];
        match classify(data) {
            Classified::Ike(_) => self.driver.handle_datagram(now, local, from, data),
            Classified::Esp(_) => {
                let spi = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let reply = match plane::open_esp(&self.sad, now, local, from, &mut self.buf, n) {
                    Ok(inner) => esp_in(inner, &self.local_sel, &mut self.p, &self.out),
                    Err(r) => {
                        self.out.esp_drop(&mut self.p, Some(spi), r.as_str(), || {
                            format!("ESP from SPI 0x{spi:08x} dropped: {}", plane::describe(r))
                        });
                        None
                    }
                };
                if let Some(reply) = reply {
                    match plane::send_esp(
                        &self.sad,
                        now,
                        &self.s4500,
                        &reply,
                        &mut self.sbuf,
                        self.moved,
                    ) {
                        Ok(_) => self.p.echo_answered += 1,
                        Err((reason, e)) => {
                            let spi = self.current_spi();
                            self.out.esp_drop(&mut self.p, spi, reason, || {
                                format!("echo reply ({} bytes) not sent: {e}", reply.len())
                            });
                        }
                    }
                }
            }
            Classified::Malformed => {
                self.out.esp_drop(&mut self.p, None, "malformed", || {
                    format!(
                        "{n}-byte datagram from {from} on port 4500 dropped: neither IKE nor ESP"
                    )
                });
            }
            Classified::Keepalive => {}
        }
    }

    /// The outbound SPI of the Child SA in use.
    fn current_spi(&self) -> Option<u32> {
        self.current.and_then(|c| self.children.get(&c)).copied()
    }

    /// The driver's timers, then what it has to send and what happened.
    fn ike_output(&mut self, now: ipsec::core::Instant, wall: Instant) -> Result<(), String> {
        if self.driver.poll_timeout().is_some_and(|t| t <= now) {
            self.driver.handle_timeout(now);
        }
        while let Some(t) = self.driver.poll_transmit() {
            let sock = if t.local.port() == 4500 {
                &self.s4500
            } else {
                &self.s500
            };
            if let Err(e) = sock.send_to(&t.payload, t.remote) {
                if roam::address_gone(&e) && self.initiate {
                    // Our address went away: the IKE SA moves (MOBIKE), and IKE
                    // retransmits from the new one.
                    self.roam.due = true;
                } else {
                    self.p.failures.push(format!("send to {}: {e}", t.remote));
                }
            }
        }
        // No TUN device here: the routes of the Child SAs are not needed.
        while self.driver.poll_route().is_some() {}
        while let Some(n) = self.driver.poll_notice() {
            self.on_notice(n, wall)?;
        }
        Ok(())
    }

    /// One notice of the driver: the handshake's outcome, Child SAs installed in and
    /// removed from the SAD, rekeys, closes.
    fn on_notice(&mut self, n: Notice, wall: Instant) -> Result<(), String> {
        let (out, p) = (&self.out, &mut self.p);
        match n {
            Notice::IkeUp {
                sa: h,
                local_spi,
                remote_spi,
                suite,
                nat,
                peer_id,
                eap_identity,
                virtual_ips,
                attributes,
                ..
            } => {
                if self.sa.is_none() {
                    self.sa = Some(h);
                }
                if self.sa == Some(h) && p.established_at.is_none() {
                    p.established_at = Some(wall);
                }
                let served = self.sa == Some(h);
                // Ours when we initiated: pings come from it, and echo requests to it
                // are answered.
                if served && self.initiate {
                    for a in &virtual_ips {
                        if let IpAddr::V4(v4) = a {
                            self.ping_src = *v4;
                        }
                        self.local_sel.push(TrafficSelector::host(*a));
                    }
                }
                let dns: Vec<String> = attributes
                    .iter()
                    .filter_map(|a| a.dns_server().map(|s| s.to_string()))
                    .collect();
                let vips: Vec<String> = virtual_ips.iter().map(|a| a.to_string()).collect();
                let eap = eap_identity.map(|e| String::from_utf8_lossy(&e).into_owned());
                out.event(
                    json!({"event": "ike_established", "suite": suite, "local_spi": local_spi.to_string(),
                           "remote_spi": remote_spi.to_string(), "local_behind_nat": nat.local_behind_nat,
                           "remote_behind_nat": nat.remote_behind_nat, "peer_id": ipsec_pki::identity_string(&peer_id),
                           "virtual_ips": vips, "dns": dns, "eap_id": eap}),
                    || {
                        let mut line = format!("IKE_SA established with {}: {suite}, SPIs {local_spi}/{remote_spi}, NAT {nat:?}", ipsec_pki::identity_string(&peer_id));
                        if let Some(e) = &eap {
                            line.push_str(&format!(", EAP identity '{e}'"));
                        }
                        if !vips.is_empty() {
                            let whose = if self.initiate { "assigned to us" } else { "leased to the peer" };
                            line.push_str(&format!("\nvirtual IP {} {whose}", vips.join(" ")));
                        }
                        if !dns.is_empty() {
                            line.push_str(&format!(", DNS {}", dns.join(" ")));
                        }
                        line
                    },
                );
            }
            Notice::ChildUp {
                child: id,
                sad,
                suite,
                udp_encap,
                inbound_spi,
                outbound_spi,
                local_ts,
                remote_ts,
                ..
            } => {
                if udp_encap.is_none() {
                    p.failures.push("the Child SA has no UDP encapsulation; raw ESP needs a raw socket, which this tool does not use".into());
                    return Ok(());
                }
                if sad.is_none() {
                    return Err("install: the SAD refused the Child SA".into());
                }
                out.event(
                    json!({"event": "child_installed", "id": id.0, "suite": suite,
                           "inbound_spi": inbound_spi.to_string(), "outbound_spi": outbound_spi.to_string(),
                           "local_ts": format!("{:?}", local_ts.as_slice()), "remote_ts": format!("{:?}", remote_ts.as_slice())}),
                    || format!("CHILD_SA {} installed: {suite}, SPIs in {inbound_spi} out {outbound_spi}", id.0),
                );
                self.children.insert(id, outbound_spi.0);
                if self.current.is_none() {
                    self.current = Some(id);
                    p.child = Some(id);
                }
            }
            Notice::ChildRekeyed { old, new, .. } => {
                self.current = Some(new);
                p.child = Some(new);
                if p.child_rekey_asked && !p.child_rekeyed {
                    p.child_rekeyed = true;
                    p.round_started = None;
                }
                out.event(
                    json!({"event": "child_rekeyed", "old": old.0, "new": new.0}),
                    || format!("CHILD_SA {} rekeyed, now {}", old.0, new.0),
                );
            }
            Notice::ChildDeleted {
                child: id,
                inbound_spi,
                outbound_spi,
                ..
            } => {
                self.children.remove(&id);
                if self.current == Some(id) {
                    self.current = self.children.keys().next_back().copied();
                }
                out.event(
                    json!({"event": "child_deleted", "id": id.0, "inbound_spi": inbound_spi.to_string(), "outbound_spi": outbound_spi.to_string()}),
                    || format!("CHILD_SA {} deleted (SPIs {inbound_spi}/{outbound_spi})", id.0),
                );
            }
            Notice::ChildFailed {
                child: id, error, ..
            } => {
                p.failures.push(format!("CHILD_SA {}: {error}", id.0));
                out.event(
                    json!({"event": "error", "what": "child_sa", "message": error.to_string(),
                           "notify": error.notify().map(|n| format!("{n:?}"))}),
                    || format!("CHILD_SA {} failed: {error}", id.0),
                );
            }
            Notice::IkeRekeyed {
                local_spi,
                remote_spi,
                ..
            } => {
                if p.ike_rekey_asked && !p.ike_rekeyed {
                    p.ike_rekeyed = true;
                    p.round_started = None;
                }
                out.event(
                    json!({"event": "ike_rekeyed", "local_spi": local_spi.to_string(), "remote_spi": remote_spi.to_string()}),
                    || format!("IKE_SA rekeyed, SPIs now {local_spi}/{remote_spi}"),
                );
            }
            // RFC 5685: the gateway sent us elsewhere and the driver follows; the run
            // serves the new IKE SA from now on.
            Notice::Redirected { sa: h, to, new } if self.sa == Some(h) => {
                out.event(
                    json!({"event": "redirected", "to": to.to_string(), "followed": new.is_some()}),
                    || {
                        format!(
                            "redirected to {to}{}",
                            if new.is_some() {
                                ", reconnecting"
                            } else {
                                ", not followed"
                            }
                        )
                    },
                );
                match new {
                    Some(n) => {
                        self.sa = Some(n);
                        self.moved = None;
                        p.established_at = None;
                    }
                    None => p.closed = Some(CloseReason::Redirected),
                }
            }
            Notice::PeerMoved { sa: h, remote } if self.sa == Some(h) => {
                self.moved = Some(remote);
            }
            Notice::PathUpdated {
                sa: h,
                local,
                remote,
                udp_encap,
            } if self.sa == Some(h) => {
                self.moved = Some(remote);
                out.event(
                    json!({"event": "path_updated", "local": local.to_string(),
                           "remote": remote.to_string(), "udp_encap": udp_encap.is_some()}),
                    || {
                        format!(
                            "IKE_SA moved (MOBIKE): {local} - {remote}, ESP in UDP {}",
                            udp_encap.is_some()
                        )
                    },
                );
            }
            Notice::IkeClosed { sa: h, reason, .. } if self.sa == Some(h) => {
                out.event(
                    json!({"event": "ike_closed", "reason": reason.to_string(),
                           "label": reason_label(&reason)}),
                    || format!("IKE_SA closed: {reason}"),
                );
                // Redirected in IKE_SA_INIT or IKE_AUTH: the driver's Redirected notice
                // comes next and names the IKE SA that takes over (or ends the run).
                if reason != CloseReason::Redirected {
                    p.closed = Some(reason);
                }
            }
            // Another initiator's IKE SA, established after the one we serve.
            Notice::IkeClosed {
                reason,
                established: true,
                ..
            } => {
                out.event(
                    json!({"event": "ike_closed", "reason": reason.to_string(), "served": false}),
                    || format!("another IKE_SA closed: {reason}"),
                );
            }
            // A handshake that failed before its peer was authenticated: anyone can
            // cause that, so it is counted and the responder keeps listening.
            Notice::IkeClosed { reason, .. } => {
                let label = reason_label(&reason);
                let reason = reason.to_string();
                if p.ike_failures.count(&reason, wall) {
                    out.event(
                        json!({"event": "ike_failed", "reason": reason, "label": label}),
                        || {
                            format!(
                            "an IKE_SA failed before it was established: {reason}; still listening"
                        )
                        },
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What we were asked to do once the served IKE SA is up: rekeys, ping rounds, and
    /// the delete when everything is done.
    fn tasks(&mut self, now: ipsec::core::Instant, wall: Instant) -> Result<(), String> {
        let Some(up) = self.p.established_at else {
            return Ok(());
        };
        let h = self.sa.ok_or("no IKE SA")?;
        let age = wall.duration_since(up).as_secs_f64();
        self.rekey(now, h, age)?;
        self.ping(now, wall);
        self.close_when_done(now, h, age)
    }

    /// Starts the Child SA and IKE SA rekeys when they are due (`age`: seconds since
    /// the IKE SA is up), through the driver's commands.
    fn rekey(&mut self, now: ipsec::core::Instant, h: SaHandle, age: f64) -> Result<(), String> {
        let (args, p) = (self.args, &mut self.p);
        if let Some(after) = args.rekey_child_after {
            if !p.child_rekey_asked && age >= after && p.rounds_done >= 1.min(p.rounds_wanted) {
                if let Some(c) = self.current {
                    p.child_rekey_asked = true;
                    self.driver
                        .rekey_child(now, c)
                        .map_err(|e| format!("rekey child: {e}"))?;
                    self.out
                        .event(json!({"event": "rekey_child_started", "id": c.0}), || {
                            format!("rekeying CHILD_SA {}", c.0)
                        });
                }
            }
        }
        if let Some(after) = args.rekey_ike_after {
            let child_done = args.rekey_child_after.is_none() || p.child_rekeyed;
            if !p.ike_rekey_asked
                && age >= after
                && child_done
                && p.rounds_done >= (1 + u32::from(p.child_rekeyed)).min(p.rounds_wanted)
            {
                p.ike_rekey_asked = true;
                self.driver
                    .rekey_ike(now, h)
                    .map_err(|e| format!("rekey IKE: {e}"))?;
                self.out.event(json!({"event": "rekey_ike_started"}), || {
                    "rekeying IKE_SA".to_string()
                });
            }
        }
        Ok(())
    }

    /// Ping rounds: one after the Child SA is up, one after each rekey we asked for.
    fn ping(&mut self, now: ipsec::core::Instant, wall: Instant) {
        let (args, p) = (self.args, &mut self.p);
        let round_due = p.rounds_done < p.rounds_wanted
            && (p.rounds_done == 0
                || (p.rounds_done == 1
                    && (p.child_rekeyed || (args.rekey_child_after.is_none() && p.ike_rekeyed)))
                || (p.rounds_done == 2 && p.ike_rekeyed));
        let (Some(dst), Some(spi)) = (
            args.ping,
            self.current.and_then(|c| self.children.get(&c)).copied(),
        ) else {
            return;
        };
        if !round_due {
            return;
        }
        // A responder's first packets can beat the peer's installation of the SA (it
        // installs when our IKE_AUTH response arrives): start 300 ms in, and keep
        // sending (up to 3x the count) until `count` replies came.
        let started = *p.round_started.get_or_insert(wall);
        let settle = if p.rounds_done == 0 && !self.initiate {
            Duration::from_millis(300)
        } else {
            Duration::ZERO
        };
        if p.round_sent < args.count.saturating_mul(3)
            && p.round_replies < args.count
            && wall.duration_since(started) >= settle
            && p.last_sent
                .is_none_or(|t| wall.duration_since(t) >= Duration::from_millis(200))
        {
            let seq = p.next_seq;
            p.next_seq = p.next_seq.wrapping_add(1);
            let pkt = ipv4_packet(self.ping_src, dst, args.size.into(), seq, true);
            if let Err((reason, e)) = plane::send_esp(
                &self.sad,
                now,
                &self.s4500,
                &pkt,
                &mut self.sbuf,
                self.moved,
            ) {
                self.out.esp_drop(p, Some(spi), reason, || {
                    format!("echo request ({} bytes) not sent: {e}", pkt.len())
                });
            }
            p.sent_at.insert(seq, wall);
            p.round_sent += 1;
            p.last_sent = Some(wall);
        }
        if p.round_replies >= args.count {
            p.rounds_done += 1;
            p.round_sent = 0;
            p.round_replies = 0;
            p.round_started = None;
        } else if wall.duration_since(started) > Duration::from_secs(5) {
            p.failures.push(format!(
                "ping round {}: {} of {} replies",
                p.rounds_done + 1,
                p.round_replies,
                args.count
            ));
            p.rounds_done += 1;
            p.round_sent = 0;
            p.round_replies = 0;
            p.round_started = None;
        }
    }

    /// Done? Then deletes the Child SA and the IKE SA (the loop then waits for the
    /// IKE SA to close).
    fn close_when_done(
        &mut self,
        now: ipsec::core::Instant,
        h: SaHandle,
        age: f64,
    ) -> Result<(), String> {
        let (args, p) = (self.args, &mut self.p);
        let pings_done = p.rounds_done >= p.rounds_wanted;
        let rekeys_done = (args.rekey_child_after.is_none() || p.child_rekeyed)
            && (args.rekey_ike_after.is_none() || p.ike_rekeyed);
        let held = args.hold.is_none_or(|hold| age >= hold);
        let wants_close = self.initiate || args.hold.is_some();
        if wants_close && pings_done && rekeys_done && held && !p.closing {
            p.closing = true;
            if let Some(c) = self.current {
                let _ = self.driver.delete_child(now, c);
            }
            self.driver
                .close(now, h)
                .map_err(|e| format!("close: {e}"))?;
            self.out.event(json!({"event": "closing"}), || {
                "deleting the CHILD_SA and the IKE_SA".to_string()
            });
        }
        Ok(())
    }

    /// The verdict: the held-back drop lines, then the `done` line with the failures
    /// and totals. `Ok` only if everything asked for worked.
    fn finish(self) -> Result<(), String> {
        let Run {
            args, out, mut p, ..
        } = self;
        if p.established_at.is_none() {
            p.failures.push("no IKE SA was established".into());
        }
        if p.child.is_none() {
            p.failures.push("no CHILD_SA was installed".into());
        }
        if p.rounds_done < p.rounds_wanted {
            p.failures.push(format!(
                "{} of {} ping rounds done",
                p.rounds_done, p.rounds_wanted
            ));
        }
        if args.rekey_child_after.is_some() && !p.child_rekeyed {
            p.failures
                .push("the CHILD_SA rekey did not complete".into());
        }
        if args.rekey_ike_after.is_some() && !p.ike_rekeyed {
            p.failures.push("the IKE_SA rekey did not complete".into());
        }
        if let Some(r) = p.closed {
            if !matches!(r, CloseReason::Deleted { .. }) {
                p.failures.push(format!("IKE_SA closed: {r}"));
            }
        }
        let ok = p.failures.is_empty();
        out.summaries(&mut p, true);
        let esp_drops = p.esp_drops.totals();
        let ike_failed = p.ike_failures.totals();
        out.event(json!({"event": "done", "ok": ok, "failures": p.failures, "echo_replies_sent": p.echo_answered,
                         "esp_drops": esp_drops, "ike_failed": ike_failed}), || {
            let mut s = String::new();
            for (what, m) in [("dropped packets", &esp_drops), ("failed IKE_SAs", &ike_failed)] {
                if !m.is_empty() {
                    let by: Vec<String> = m.iter().map(|(r, n)| format!("{r} {n}")).collect();
                    s.push_str(&format!("{what}: {}\n", by.join(", ")));
                }
            }
            if ok {
                s.push_str("done: everything asked for worked");
            } else {
                s.push_str(&format!("FAILED: {}", p.failures.join("; ")));
            }
            s
        });
        if ok {
            Ok(())
        } else {
            Err("not everything asked for worked".into())
        }
    }
}

/// The IKE configuration from the options: identity (default: the subject of
/// `--cert`, else our address), credentials (PSK, `--cert`/`--key`, `--ca`),
/// proposals, remote identity and traffic selectors.
fn config(
    args: &PeerArgs,
    local_ip: IpAddr,
    provider: &'static CryptoProvider,
) -> Result<Config, String> {
    let creds = Credentials::load(&args.certs, provider)?;
    let id: Identity = match (&args.id, &creds.local_id) {
        (Some(s), _) => parse_id(s).map_err(|e| format!("bad --id \"{s}\": {e}"))?,
        (None, Some(id)) => id.clone(),
        (None, None) => match local_ip {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        },
    };
    let eap = args.eap_identity.is_some();
    let psk = if creds.needs_psk(eap) {
        read_psk(args.psk.as_deref(), args.psk_file.as_deref())?
    } else {
        Vec::new()
    };
    let mut cfg = creds.apply(
        Config::new(id, psk)
            .with_ike_proposals(&args.ike)
            .map_err(|e| format!("--ike: {e}"))?
            .with_esp_proposals(&args.esp)
            .map_err(|e| format!("--esp: {e}"))?,
    );
    if let Some(r) = &args.remote_id {
        cfg.remote_id = Some(parse_id(r).map_err(|e| format!("bad --remote-id \"{r}\": {e}"))?);
    }
    if let (Some(id), Some(file)) = (&args.ppk_id, &args.ppk_file) {
        let key = crate::args::read_psk(None, Some(file))
            .map_err(|e| e.replace("--psk-file", "--ppk-file"))?;
        cfg.ppk = Some(Ppk::new(id.as_bytes().to_vec(), key, args.ppk_required));
    }
    cfg.fragment_mtu = match args.fragment_mtu {
        0 => None,
        n if n < 576 => return Err(format!("--fragment-mtu {n}: below 576 (RFC 791)")),
        n => Some(n),
    };
    if let Some(t) = &args.local_ts {
        cfg.local_ts = vec![parse_ts(t)?];
    }
    if let Some(t) = &args.remote_ts {
        cfg.remote_ts = vec![parse_ts(t)?];
    }
    if let (Some(id), Some(file)) = (&args.eap_identity, &args.eap_password_file) {
        let mut pw = std::fs::read(file)
            .map_err(|e| format!("--eap-password-file {}: {e}", file.display()))?;
        crate::args::warn_if_shared(file);
        crate::args::strip_newline(&mut pw);
        let text = String::from_utf8(pw)
            .map_err(|_| "--eap-password-file: the password is not UTF-8".to_string())?;
        if text.is_empty() {
            return Err("--eap-password-file: the password is empty".into());
        }
        cfg.auth = LocalAuth::Eap {
            peer: ipsec_gateway::eap::password_peer(id.as_bytes().to_vec(), &text),
        };
    }
    if !args.vip.is_empty() {
        cfg.virtual_ips = args.vip.clone();
        if args.local_ts.is_none() {
            // Narrowed by the endpoint to the address assigned.
            cfg.local_ts = args
                .vip
                .iter()
                .map(|a| {
                    if a.is_ipv4() {
                        TrafficSelector::any_v4()
                    } else {
                        TrafficSelector::any_v6()
                    }
                })
                .collect();
        }
    }
    if let Some(p) = &args.pool {
        let spec: ipsec_gateway::conf::AddrSpec =
            p.parse().map_err(|e| format!("--pool {p}: {e}"))?;
        let pool = MemPool::new(&ipsec_gateway::conf::Pool::new("cli", spec))
            .map_err(|e| format!("--pool {p}: {}", e.problem))?;
        if args.remote_ts.is_none() {
            cfg.remote_ts = vec![if pool.is_ipv4() {
                TrafficSelector::any_v4()
            } else {
                TrafficSelector::any_v6()
            }];
        }
        cfg.pool = Some(Arc::new(PoolSet::new(vec![Arc::new(pool)])));
    }
    Ok(cfg)
}

/// Pings come from the first host address of our selector (or our address).
fn ping_source(cfg: &Config, local_ip: IpAddr) -> Ipv4Addr {
    match cfg.local_ts.first().map(|t| (t.start_addr, t.end_addr)) {
        Some((IpAddr::V4(a), IpAddr::V4(b))) if a != Ipv4Addr::UNSPECIFIED => {
            if a < b {
                Ipv4Addr::from(u32::from(a).saturating_add(1))
            } else {
                a
            }
        }
        _ => match local_ip {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        },
    }
}

/// An inner packet the SAD delivered: returns the reply to send when it was an echo
/// request for one of our addresses. Echo replies complete our pings.
fn esp_in(inner: &[u8], ours: &[TrafficSelector], p: &mut Progress, out: &Out) -> Option<Vec<u8>> {
    if inner.len() < 28 || inner[0] >> 4 != 4 || inner[9] != PROTO_ICMP {
        return None;
    }
    let hl = usize::from(inner[0] & 0x0f) * 4;
    let icmp = inner.get(hl..)?;
    let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
    let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
    match icmp.first() {
        Some(0) => {
            let seq = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
            if let Some(t) = p.sent_at.remove(&seq) {
                p.round_replies += 1;
                let rtt = t.elapsed().as_secs_f64() * 1e3;
                out.event(
                    json!({"event": "ping", "seq": seq, "from": src.to_string(), "rtt_ms": rtt}),
                    || format!("echo reply from {src} seq {seq}: {rtt:.2} ms"),
                );
            }
            None
        }
        Some(8) if ours.iter().any(|t| t.contains_addr(IpAddr::V4(dst))) => {
            out.event(
                json!({"event": "echo_request", "from": src.to_string(), "to": dst.to_string()}),
                || format!("echo request {src} -> {dst}, answering"),
            );
            if hl != 20 {
                return None;
            }
            reply_to(inner)
        }
        _ => None,
    }
}
