//! `ipsec load`: an IKEv2 load generator. One process, one [`IkeEndpoint`], one UDP
//! socket on the IKE port and one on 4500; `--count` handshakes (IKE_SA_INIT and
//! IKE_AUTH with the first Child SA), at most `--concurrency` of them in flight, each
//! initiator with its own identity (`--id-format`, its configuration given to
//! [`IkeEndpoint::connect_with`]). A handshake succeeds when the IKE SA is established
//! and its Child SA installed; it fails when the IKE SA closes before that, the Child
//! SA fails, or `--timeout` passes. A successful IKE SA is deleted at once, or with
//! `--keep` held until every handshake is done and then deleted with the others; the
//! deletes are waited for (at most `--timeout`). The report gives the counts, failures
//! by reason, the rate and latency percentiles; the exit status is non-zero when a
//! handshake failed.
//!
//! Retransmissions are the endpoint's. The loop waits for a datagram or the next
//! timer at once (module `net`), so it adds no latency of its own.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use ipsec::core::time::StdClock;
use ipsec::core::Instant;
use ipsec::crypto::CryptoProvider;
use ipsec::ike::{Config, Event, Identity, IkeEndpoint, SaHandle};

use crate::args::{
    parse_id, parse_remote, parse_ts, read_psk, route_source, CertArgs, Credentials,
};
use crate::Backend;

mod net;
mod report;

use net::{Input, Net};
use report::Stats;

/// The options of `ipsec load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The responder (IP address, optionally :port; the port defaults to --port).
    #[arg(long)]
    pub remote: String,
    /// Handshakes in total.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Most handshakes in flight at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Our address to bind (default: the one the route to --remote uses).
    #[arg(long)]
    pub local: Option<IpAddr>,
    // The help cannot write the placeholder out: clap reads it as a line break.
    /// Each initiator's identity, a pattern like load-{n}.example (the default,
    /// without --cert; with --cert every initiator is the certificate's subject): its
    /// number (1 to --count) takes the place of the n in braces.
    #[arg(long = "id-format")]
    pub id_format: Option<String>,
    /// The identity the responder must prove (default: any that knows the PSK).
    #[arg(long = "remote-id")]
    pub remote_id: Option<String>,
    /// The pre-shared key on the command line, where other local users can read it:
    /// prefer --psk-file or the IPSEC_PSK environment variable.
    #[arg(long, value_name = "SECRET", conflicts_with = "psk_file")]
    pub psk: Option<String>,
    /// Read the pre-shared key from FILE (without one trailing "\n" or "\r\n").
    /// Without --psk and --psk-file, the key comes from IPSEC_PSK.
    #[arg(long = "psk-file", value_name = "FILE")]
    pub psk_file: Option<PathBuf>,
    /// IKE proposals (strongSwan syntax, comma-separated).
    #[arg(long, default_value = "aes128gcm16-prfsha256-x25519")]
    pub ike: String,
    /// ESP proposals (strongSwan syntax, comma-separated).
    #[arg(long, default_value = "aes128gcm16")]
    pub esp: String,
    /// Our traffic selector (CIDR; default: all IPv4).
    #[arg(long = "local-ts")]
    pub local_ts: Option<String>,
    /// The responder's traffic selector (CIDR; default: all IPv4).
    #[arg(long = "remote-ts")]
    pub remote_ts: Option<String>,
    /// A handshake not done after this many seconds fails; also the longest wait for
    /// the deletes at the end.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Hold every IKE SA until all handshakes are done, then delete them all.
    #[arg(long)]
    pub keep: bool,
    /// Crypto provider.
    #[arg(long, value_enum, default_value = "composed")]
    pub backend: Backend,
    /// IKE port, ours and the responder's default (4500 is always used as well).
    #[arg(long, default_value_t = 500)]
    pub port: u16,
    /// Certificates, as for `ipsec connect`: every initiator signs with --cert/--key,
    /// and the responder must prove a certificate under --ca.
    #[command(flatten)]
    pub certs: CertArgs,
}

/// The identity pattern when --id-format is not given and there is no --cert.
const DEFAULT_ID_FORMAT: &str = "load-{n}.example";

/// Where one handshake of ours is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the IKE SA and its Child SA.
    Handshake { established: bool, child: bool },
    /// Succeeded, held (`--keep`).
    Held,
    /// Succeeded, our delete is out.
    Deleting,
    /// Failed, closed by us (a Child SA failure, a timeout): its close is not counted.
    Abandoned,
}

/// One IKE SA of ours.
#[derive(Clone, Copy, Debug)]
struct Slot {
    started: Instant,
    phase: Phase,
}

/// Runs `ipsec load`: the handshakes, the deletes, the report.
///
/// # Errors
/// Bad options, sockets that cannot be bound, and failed handshakes
/// ("N of M handshakes failed", after the report).
pub fn run(args: &LoadArgs) -> Result<(), String> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let mut l = Load::setup(args)?;
    let r = l.drive();
    let Load { net, mut stats, .. } = l;
    net.shut_down();
    r?;
    stats.cpu_seconds = report::cpu_seconds();
    if args.json {
        outln!("{}", stats.json());
    } else {
        for line in stats.text() {
            outln!("{line}");
        }
    }
    match stats.failed() {
        0 => Ok(()),
        n => Err(format!("{n} of {} handshakes failed", stats.total)),
    }
}

/// The state of a run.
struct Load<'a> {
    args: &'a LoadArgs,
    ep: IkeEndpoint,
    /// Every initiator's configuration but its identity.
    base: Config,
    clock: StdClock,
    net: Net,
    remote: SocketAddr,
    timeout: Duration,
    slots: HashMap<SaHandle, Slot>,
    /// Handshake deadlines in start order (which is deadline order); entries of
    /// handshakes that ended are skipped when they come up.
    deadlines: VecDeque<(Instant, SaHandle)>,
    /// Numbers of the next initiator and of handshakes in flight.
    next: u32,
    in_flight: u32,
    first_start: Option<Instant>,
    stats: Stats,
}

impl<'a> Load<'a> {
    fn setup(args: &'a LoadArgs) -> Result<Self, String> {
        let remote = parse_remote(&args.remote, args.port)?;
        let local_ip = args
            .local
            .or_else(|| route_source(remote))
            .ok_or_else(|| format!("no route to {remote}: give --local"))?;
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err("--local and --remote are of different address families".into());
        }
        let provider = args.backend.provider();
        let base = config(args, local_ip, provider)?;
        // The identity of initiator 1, to find a bad --id-format now.
        if let Some(f) = id_format(args) {
            identity(f, 1)?;
        }
        let ep = IkeEndpoint::with_config(Arc::new(base.clone()), provider)
            .map_err(|e| format!("configuration: {e}"))?;
        let net = Net::bind(
            SocketAddr::new(local_ip, args.port),
            SocketAddr::new(local_ip, ipsec::ike::NAT_T_PORT),
        )?;
        let slots_cap = if args.keep {
            args.count
        } else {
            args.concurrency.saturating_mul(2).min(args.count)
        };
        let stats = Stats {
            total: args.count,
            concurrency: args.concurrency,
            kept: args.keep,
            latencies_ns: Vec::with_capacity(args.count as usize),
            ..Stats::default()
        };
        Ok(Load {
            args,
            ep,
            base,
            clock: StdClock::new(WallInstant::now()),
            net,
            remote,
            timeout: Duration::from_secs_f64(args.timeout),
            slots: HashMap::with_capacity(slots_cap as usize),
            deadlines: VecDeque::with_capacity(args.concurrency.min(args.count) as usize),
            next: 1,
            in_flight: 0,
            first_start: None,
            stats,
        })
    }

    fn now(&self) -> Instant {
        self.clock.instant(WallInstant::now())
    }

    fn done(&self) -> u32 {
        self.stats.succeeded + self.stats.failed()
    }

    /// The loop: handshakes until all are done, then the deletes until every IKE SA
    /// of ours is closed or the wait runs out.
    fn drive(&mut self) -> Result<(), String> {
        let mut close_by: Option<Instant> = None;
        loop {
            let now = self.now();
            self.start_handshakes(now)?;
            self.expire(now);
            self.flush(now);
            if close_by.is_none() && self.done() == self.stats.total {
                let end = self.now();
                self.stats.handshake_ns = end
                    .saturating_duration_since(self.first_start.unwrap_or(end))
                    .as_nanos()
                    .try_into()
                    .unwrap_or(u64::MAX);
                self.close_held(end);
                self.flush(end);
                close_by = Some(end + self.timeout);
            }
            if let Some(by) = close_by {
                if self.slots.is_empty() {
                    return Ok(());
                }
                if self.now() >= by {
                    for s in self.slots.drain() {
                        if matches!(s.1.phase, Phase::Deleting | Phase::Held) {
                            self.stats
                                .delete_failed("no answer before the end of the run".into());
                        }
                    }
                    return Ok(());
                }
            }
            let wait = self
                .next_wakeup(close_by)
                .saturating_duration_since(self.now());
            // Wait for the first input, then take everything that is there.
            let mut input = self.net.recv(wait);
            while let Some(i) = input {
                match i {
                    Input::Datagram {
                        reader,
                        local,
                        from,
                        data,
                    } => {
                        self.stats.received += 1;
                        let now = self.now();
                        self.ep.handle_datagram(now, local, from, &data);
                        self.net.recycle(reader, data);
                        self.flush(now);
                    }
                    Input::Failed(e) => return Err(e),
                }
                input = self.net.try_recv();
            }
            let now = self.now();
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
            }
        }
    }

    /// The earliest of the endpoint's timer, the oldest handshake's deadline and the
    /// end of the final wait; at most a second away.
    fn next_wakeup(&mut self, close_by: Option<Instant>) -> Instant {
        let mut t = self.now() + Duration::from_secs(1);
        if let Some(e) = self.ep.poll_timeout() {
            t = t.min(e);
        }
        while let Some(&(d, h)) = self.deadlines.front() {
            if self.handshaking(h) {
                t = t.min(d);
                break;
            }
            self.deadlines.pop_front();
        }
        if let Some(c) = close_by {
            t = t.min(c);
        }
        t
    }

    fn handshaking(&self, h: SaHandle) -> bool {
        self.slots
            .get(&h)
            .is_some_and(|s| matches!(s.phase, Phase::Handshake { .. }))
    }

    /// Starts handshakes until `--concurrency` are in flight or `--count` started.
    fn start_handshakes(&mut self, now: Instant) -> Result<(), String> {
        while self.in_flight < self.args.concurrency && self.next <= self.args.count {
            let mut cfg = self.base.clone();
            if let Some(f) = id_format(self.args) {
                cfg.local_id = identity(f, self.next)?;
            }
            let h = self
                .ep
                .connect_with(now, self.net.l500, self.remote, Arc::new(cfg))
                .map_err(|e| format!("connect: {e}"))?;
            self.first_start.get_or_insert(now);
            self.slots.insert(
                h,
                Slot {
                    started: now,
                    phase: Phase::Handshake {
                        established: false,
                        child: false,
                    },
                },
            );
            self.deadlines.push_back((now + self.timeout, h));
            self.next += 1;
            self.in_flight += 1;
            self.flush(now);
        }
        Ok(())
    }

    /// Fails the handshakes whose time is up (and abandons their IKE SAs).
    fn expire(&mut self, now: Instant) {
        while let Some(&(d, h)) = self.deadlines.front() {
            if d > now {
                break;
            }
            self.deadlines.pop_front();
            if self.handshaking(h) {
                self.fail(h, format!("timed out after {} s", self.args.timeout));
            }
        }
    }

    /// With --keep: deletes every held IKE SA.
    fn close_held(&mut self, now: Instant) {
        let Load { slots, ep, .. } = self;
        for (h, s) in slots.iter_mut() {
            if s.phase == Phase::Held {
                s.phase = Phase::Deleting;
                let _ = ep.close(now, *h);
            }
        }
    }

    /// Counts a failed handshake and closes its IKE SA.
    fn fail(&mut self, h: SaHandle, reason: String) {
        if let Some(s) = self.slots.get_mut(&h) {
            s.phase = Phase::Abandoned;
        }
        self.in_flight -= 1;
        self.stats.fail(reason);
        let now = self.now();
        let _ = self.ep.close(now, h);
    }

    /// Sends what the endpoint has to send, then handles its events, until both are
    /// drained (an event can make us close an IKE SA, which sends).
    fn flush(&mut self, now: Instant) {
        loop {
            let mut any = false;
            while let Some(t) = self.ep.poll_transmit() {
                any = true;
                match self.net.send(t.local, t.remote, &t.payload) {
                    Ok(_) => self.stats.sent += 1,
                    Err(_) => self.stats.send_errors += 1,
                }
            }
            while let Some((h, ev)) = self.ep.poll_event() {
                any = true;
                self.on_event(now, h, ev);
            }
            if !any {
                return;
            }
        }
    }

    fn on_event(&mut self, now: Instant, h: SaHandle, ev: Event) {
        // Events of IKE SAs that are not ours (someone who initiated to us) are
        // ignored: the endpoint answers them by itself.
        let Some(slot) = self.slots.get_mut(&h) else {
            return;
        };
        match (ev, slot.phase) {
            (Event::IkeSaEstablished { .. }, Phase::Handshake { child, .. }) => {
                slot.phase = Phase::Handshake {
                    established: true,
                    child,
                };
                self.complete(now, h);
            }
            (Event::ChildSaInstalled { .. }, Phase::Handshake { established, .. }) => {
                slot.phase = Phase::Handshake {
                    established,
                    child: true,
                };
                self.complete(now, h);
            }
            (Event::ChildSaFailed { error, .. }, Phase::Handshake { .. }) => {
                self.fail(h, format!("CHILD_SA failed: {error}"));
            }
            (Event::IkeSaClosed { reason }, phase) => {
                self.slots.remove(&h);
                match phase {
                    Phase::Handshake { .. } => {
                        self.in_flight -= 1;
                        self.stats.fail(reason.to_string());
                    }
                    Phase::Deleting
                        if matches!(
                            reason,
                            ipsec::ike::CloseReason::Deleted { by_peer: false }
                        ) =>
                    {
                        self.stats.deletes_answered += 1;
                    }
                    Phase::Deleting | Phase::Held => self.stats.delete_failed(reason.to_string()),
                    Phase::Abandoned => {}
                }
            }
            _ => {}
        }
    }

    /// A handshake whose IKE SA is up with its Child SA is done: its latency is
    /// counted, and its IKE SA deleted or held.
    fn complete(&mut self, now: Instant, h: SaHandle) {
        let Some(slot) = self.slots.get_mut(&h) else {
            return;
        };
        if slot.phase
            != (Phase::Handshake {
                established: true,
                child: true,
            })
        {
            return;
        }
        let ns = now.saturating_duration_since(slot.started).as_nanos();
        self.stats
            .latencies_ns
            .push(u64::try_from(ns).unwrap_or(u64::MAX));
        self.stats.succeeded += 1;
        self.in_flight -= 1;
        if self.args.keep {
            slot.phase = Phase::Held;
        } else {
            slot.phase = Phase::Deleting;
            let _ = self.ep.close(now, h);
        }
    }
}

/// The identity of initiator `n`: `format` with "{n}" replaced.
fn identity(format: &str, n: u32) -> Result<Identity, String> {
    let s = format.replace("{n}", &n.to_string());
    s.parse()
        .map_err(|_| format!("--id-format \"{format}\" makes the bad identity \"{s}\""))
}

/// The identity pattern in use: --id-format, else the default unless --cert gives
/// every initiator the certificate's subject.
fn id_format(args: &LoadArgs) -> Option<&str> {
    match (&args.id_format, &args.certs.cert) {
        (Some(f), _) => Some(f),
        (None, None) => Some(DEFAULT_ID_FORMAT),
        (None, Some(_)) => None,
    }
}

/// Every initiator's configuration but its identity: credentials (PSK, certificates),
/// proposals, the remote identity and the selectors.
fn config(
    args: &LoadArgs,
    local_ip: IpAddr,
    provider: &'static CryptoProvider,
) -> Result<Config, String> {
    let creds = Credentials::load(&args.certs, provider)?;
    let psk = if creds.needs_psk(false) {
        read_psk(args.psk.as_deref(), args.psk_file.as_deref())?
    } else {
        Vec::new()
    };
    let id = creds.local_id.clone().unwrap_or_else(|| local_ip.into());
    let mut cfg = creds.apply(
        Config::new(id, psk)
            .with_ike_proposals(&args.ike)
            .map_err(|e| format!("--ike: {e}"))?
            .with_esp_proposals(&args.esp)
            .map_err(|e| format!("--esp: {e}"))?,
    );
    cfg.name = "load".into();
    if let Some(r) = &args.remote_id {
        cfg.remote_id = Some(parse_id(r).map_err(|e| format!("bad --remote-id \"{r}\": {e}"))?);
    }
    if let Some(t) = &args.local_ts {
        cfg.local_ts = vec![parse_ts(t)?];
    }
    if let Some(t) = &args.remote_ts {
        cfg.remote_ts = vec![parse_ts(t)?];
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::{identity, parse_remote};
    use ipsec::ike::Identity;

    #[test]
    fn identities_are_numbered() {
        assert_eq!(
            identity("load-{n}.example", 17),
            Ok(Identity::Fqdn("load-17.example".into()))
        );
        assert_eq!(
            identity("u{n}@example.org", 3),
            Ok(Identity::Rfc822("u3@example.org".into()))
        );
        assert!(identity("", 1).is_err());
    }

    #[test]
    fn remote_port_defaults_to_the_ike_port() {
        assert_eq!(
            parse_remote("192.0.2.1", 500),
            Ok("192.0.2.1:500".parse().unwrap())
        );
        assert_eq!(
            parse_remote("192.0.2.1:5000", 500),
            Ok("192.0.2.1:5000".parse().unwrap())
        );
        assert!(parse_remote("gateway", 500).is_err());
    }
}
