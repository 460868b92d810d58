//! Soak: thousands of IKE SAs between one initiator endpoint (A) and one responder
//! endpoint (B) over a lossy, duplicating, reordering network, `CONCURRENCY` at a
//! time. Each IKE SA is set up, then gets random Child SA creations, rekeys (some
//! simultaneous from both ends) and deletes, IKE SA rekeys (some simultaneous) and
//! liveness checks from either end, and is closed by either end.
//!
//! Checked all along: no handshake or close is stuck (each ends within a bound
//! derived from the retransmission schedule), the events agree with the endpoints'
//! state (Child SAs installed minus deleted = the Child SAs the endpoint holds), and
//! what the endpoints hold (`IkeEndpoint::stats`) stays within what the driven
//! concurrency explains. At the end, with every SA closed and the lingering ones
//! expired, both endpoints hold nothing and have no timer armed.
//!
//! `SOAK_SEED=n` picks the seed (printed; rerun with it to reproduce a failure),
//! `SOAK_HANDSHAKES=n` the number of IKE SAs (default [`DEFAULT_HANDSHAKES`]).
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ipsec_core::{Duration, IkeSpi, Instant};
use ipsec_ike::{ChildSaId, CloseReason, Config, EndpointStats, Event, Retransmit, SaHandle};
use ipsec_test::{config, Pair};

/// IKE SAs set up by a plain `cargo test`: about 25 s of CPU in a debug build. The full
/// soak of 10 000 (`SOAK_HANDSHAKES=10000`) takes about a minute of CPU in debug, a few
/// seconds with `--release`.
const DEFAULT_HANDSHAKES: usize = 4_000;
/// IKE SAs A keeps open (or opening) at once.
const CONCURRENCY: usize = 32;
/// Child SAs an IKE SA gets at most through `create_child_sa` (rekeys add
/// short-lived overlaps).
const MAX_CHILDREN: usize = 3;
/// The test's command interval: commands are given, then the network and timers run
/// for this long.
const TICK: Duration = Duration::from_millis(500);
/// An IKE SA is closed between `MIN_LIFE` and `MAX_LIFE` after `connect`.
const MIN_LIFE: Duration = Duration::from_secs(4);
const MAX_LIFE: Duration = Duration::from_secs(16);
/// Liveness checks after this much silence: an IKE SA whose peer forgot it (its
/// Delete or a request timed out on the other end) is found dead this way.
const DPD: Duration = Duration::from_secs(10);

const LOSS_PERCENT: u32 = 10;
const DUPLICATE_PERCENT: u32 = 5;
const REORDER_PERCENT: u32 = 20;

/// 0.5 s doubling, 5 transmissions: gives up after 15.5 s. With 10 % loss each way an
/// exchange fails in about one case of 4000, so a run sees a few timeouts in
/// handshakes, rekeys and deletes.
fn retransmit() -> Retransmit {
    Retransmit {
        initial: Duration::from_millis(500),
        multiplier: 2,
        max_wait: Duration::from_secs(8),
        max_tries: 5,
    }
}

fn soak_config(id: &str) -> Config {
    let mut c = config(id);
    c.retransmit = retransmit();
    c.dpd = Some(DPD);
    c
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        v.get(self.below(v.len() as u64) as usize).copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Up,
    Closing,
}

/// One of A's IKE SAs, as the test drives it.
#[derive(Debug)]
struct Slot {
    /// B's handle of the same IKE SA, once both ends are established.
    b: Option<SaHandle>,
    phase: Phase,
    /// When the phase began.
    since: Instant,
    close_at: Instant,
}

/// What one side's events say.
#[derive(Default)]
struct Ledger {
    /// Child SAs installed and not deleted: IKE SA, inbound and outbound SPI.
    live: BTreeMap<ChildSaId, (SaHandle, u32, u32)>,
    installed: u64,
    deleted: u64,
    child_rekeys: u64,
    ike_rekeys: u64,
    child_failed: u64,
    liveness_ok: u64,
    established: u64,
    /// IKE SAs established (B) or connecting / established (A) and not closed.
    open: BTreeSet<SaHandle>,
    closed: BTreeSet<SaHandle>,
    /// When the latest IkeSaClosed events came.
    recent_closes: VecDeque<Instant>,
    reasons: BTreeMap<String, u64>,
}

impl Ledger {
    /// Applies one event of IKE SA `h`.
    fn apply(&mut self, side: &str, now: Instant, h: SaHandle, e: &Event) {
        match e {
            Event::IkeSaEstablished { .. } => {
                self.established += 1;
                self.open.insert(h);
            }
            Event::ChildSaInstalled { id, params, .. } => {
                assert!(
                    !params.inbound_spi.is_reserved() && !params.outbound_spi.is_reserved(),
                    "{side}: reserved SPI installed: {:?}/{:?}",
                    params.inbound_spi,
                    params.outbound_spi
                );
                let dup = self
                    .live
                    .insert(*id, (h, params.inbound_spi.0, params.outbound_spi.0));
                assert!(dup.is_none(), "{side}: {id} installed twice");
                self.installed += 1;
            }
            Event::ChildSaDeleted {
                id, inbound_spi, ..
            } => {
                let (owner, spi, _) = self
                    .live
                    .remove(id)
                    .unwrap_or_else(|| panic!("{side}: {id} deleted but not installed"));
                assert_eq!(owner, h, "{side}: {id} deleted by another IKE SA");
                assert_eq!(spi, inbound_spi.0, "{side}: {id} deleted with another SPI");
                self.deleted += 1;
            }
            Event::ChildSaRekeyed { .. } => self.child_rekeys += 1,
            Event::IkeSaRekeyed { .. } => self.ike_rekeys += 1,
            Event::ChildSaFailed { .. } => self.child_failed += 1,
            Event::LivenessOk => self.liveness_ok += 1,
            Event::IkeSaClosed { reason } => {
                assert!(self.closed.insert(h), "{side}: {h} closed twice");
                self.open.remove(&h);
                assert!(
                    !self.live.values().any(|l| l.0 == h),
                    "{side}: {h} closed with Child SAs not reported deleted"
                );
                self.recent_closes.push_back(now);
                let kind = match reason {
                    CloseReason::Deleted { by_peer } => format!("deleted(by_peer={by_peer})"),
                    CloseReason::Timeout => "timeout".to_string(),
                    other => format!("{other:?}"),
                };
                *self.reasons.entry(kind).or_default() += 1;
            }
            _ => {}
        }
    }

    /// IkeSaClosed events within `window` before `now` (older ones are dropped).
    fn closed_within(&mut self, now: Instant, window: Duration) -> usize {
        while self
            .recent_closes
            .front()
            .is_some_and(|t| now - *t > window)
        {
            self.recent_closes.pop_front();
        }
        self.recent_closes.len()
    }
}

/// Events agree with the endpoint's state: the Child SAs installed and not deleted
/// are exactly those it holds, each reserving its inbound SPI.
fn check_children(
    seed: u64,
    side: &str,
    ep: &ipsec_ike::IkeEndpoint,
    l: &Ledger,
    stats: &EndpointStats,
) {
    let mut held = BTreeMap::new();
    for h in ep.sa_handles() {
        for c in ep.child_sas(h) {
            held.insert(c, h);
        }
    }
    let from_events: BTreeMap<ChildSaId, SaHandle> =
        l.live.iter().map(|(c, l)| (*c, l.0)).collect();
    assert_eq!(
        held, from_events,
        "seed {seed}: {side}: Child SAs held vs installed - deleted"
    );
    assert_eq!(l.installed - l.deleted, l.live.len() as u64);
    let spis: BTreeSet<u32> = l.live.values().map(|l| l.1).collect();
    assert_eq!(
        spis.len(),
        l.live.len(),
        "seed {seed}: {side}: inbound SPI reused"
    );
    // Every live Child SA reserves its inbound SPI; beyond those, only Child SAs being
    // negotiated do: one exchange in flight per IKE SA, two with a rekey collision.
    assert!(
        stats.child_spis >= l.live.len() && stats.child_spis <= l.live.len() + 2 * stats.ike_sas,
        "seed {seed}: {side}: {} inbound SPIs reserved, {} Child SAs live, {} IKE SAs",
        stats.child_spis,
        l.live.len(),
        stats.ike_sas
    );
}

#[derive(Default, Debug)]
struct Max {
    ike_sas: usize,
    ike_spis: usize,
    child_spis: usize,
    half_open: usize,
}

impl Max {
    fn update(&mut self, s: &EndpointStats) {
        self.ike_sas = self.ike_sas.max(s.ike_sas);
        self.ike_spis = self.ike_spis.max(s.ike_spis);
        self.child_spis = self.child_spis.max(s.child_spis);
        self.half_open = self.half_open.max(s.half_open);
    }
}

/// Gives a random command to IKE SA `h` of `ep` (errors ignored: the SA may be
/// closing meanwhile). Returns what it tried.
fn command(
    r: &mut Rng,
    ep: &mut ipsec_ike::IkeEndpoint,
    now: Instant,
    h: SaHandle,
) -> Option<&'static str> {
    let kids = ep.child_sas(h);
    match r.below(10) {
        0..=2 => {
            let c = r.pick(&kids)?;
            ep.rekey_child_sa(now, h, c).ok().map(|_| "rekey_child")
        }
        3 | 4 => ep.rekey_ike_sa(now, h).ok().map(|_| "rekey_ike"),
        5 | 6 if kids.len() < MAX_CHILDREN => {
            ep.create_child_sa(now, h).ok().map(|_| "create_child")
        }
        5..=7 if kids.len() > 1 => {
            let c = r.pick(&kids)?;
            ep.delete_child_sa(now, h, c).ok().map(|_| "delete_child")
        }
        _ => ep.check_liveness(now, h).ok().map(|_| "liveness"),
    }
}

struct Totals {
    commands: BTreeMap<&'static str, u64>,
    failed_handshakes: u64,
}

fn run(seed: u64, handshakes: usize) {
    println!("soak: seed {seed} (SOAK_SEED={seed} reproduces), {handshakes} IKE SAs");
    let total = retransmit().total();
    // A handshake is two exchanges; a close waits for the exchange in flight, then
    // its Delete; an IKE SA whose peer forgot it is found dead after DPD plus one
    // exchange.
    let connect_limit = total * 2 + TICK * 2;
    let close_limit = total * 2 + DPD + total + TICK * 2;
    // A closed IKE SA lingers at most one retransmission period to answer
    // retransmitted requests.
    let linger = total + TICK;

    let mut p = Pair::new(soak_config("@a.test"), soak_config("@b.test"), seed);
    p.seed_network(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    p.loss_percent = LOSS_PERCENT;
    p.duplicate_percent = DUPLICATE_PERCENT;
    p.reorder_percent = REORDER_PERCENT;
    let mut r = Rng(seed.wrapping_mul(6_364_136_223_846_793_005) | 1);

    let mut slots: BTreeMap<SaHandle, Slot> = BTreeMap::new();
    // B's handle by B's view of the peer SPI (the initiator's SPI).
    let mut b_by_spi: BTreeMap<IkeSpi, SaHandle> = BTreeMap::new();
    let (mut la, mut lb) = (Ledger::default(), Ledger::default());
    let (mut ma, mut mb) = (Max::default(), Max::default());
    let mut t = Totals {
        commands: BTreeMap::new(),
        failed_handshakes: 0,
    };
    let mut started = 0;
    let mut ticks = 0u64;

    // Each A slot holds one IKE SA for at least MIN_LIFE and its successor starts only
    // after it closed; a closed one lingers at most `linger`. So at most
    // 1 + linger / MIN_LIFE IKE SAs per slot exist at once on A. B holds the same plus
    // SAs its peer forgot (timeouts, until DPD finds them) and half-open ones.
    let gens = 1 + (linger.as_millis() / MIN_LIFE.as_millis()) as usize + 1;
    let bound_a = CONCURRENCY * gens;
    let bound_b = 2 * bound_a;
    // Per IKE SA: MAX_CHILDREN, a rekey's successor, one being negotiated.
    let children_per_ike = MAX_CHILDREN + 2;

    loop {
        // Fill the free slots.
        while slots.len() < CONCURRENCY && started < handshakes {
            let h = p.connect();
            let life =
                MIN_LIFE.as_millis() as u64 + r.below((MAX_LIFE - MIN_LIFE).as_millis() as u64);
            slots.insert(
                h,
                Slot {
                    b: None,
                    phase: Phase::Connecting,
                    since: p.now,
                    close_at: p.now + Duration::from_millis(life),
                },
            );
            la.open.insert(h);
            started += 1;
        }
        if slots.is_empty() {
            break;
        }
        // Commands.
        let now = p.now;
        for (&h, s) in slots.iter_mut() {
            if s.phase != Phase::Up {
                continue;
            }
            if now >= s.close_at {
                let by_b = s.b.filter(|_| r.chance(30));
                let _ = match by_b {
                    Some(bh) => p.b.ep.close(now, bh),
                    None => p.a.ep.close(now, h),
                };
                s.phase = Phase::Closing;
                s.since = now;
                continue;
            }
            if !r.chance(25) {
                continue;
            }
            let done = match (r.below(12), s.b) {
                // Both ends rekey the same Child SA at once.
                (0, Some(bh)) => {
                    // B's end of A's first Child SA: its outbound SPI is A's inbound.
                    let x = p.a.ep.child_sas(h).first().copied();
                    let xi = x.and_then(|x| la.live.get(&x)).map(|l| l.1);
                    let y = lb
                        .live
                        .iter()
                        .find(|(_, l)| l.0 == bh && Some(l.2) == xi)
                        .map(|(y, _)| *y);
                    match (x, y) {
                        (Some(x), Some(y)) => {
                            let ok = p.a.ep.rekey_child_sa(now, h, x).is_ok();
                            (p.b.ep.rekey_child_sa(now, bh, y).is_ok() && ok)
                                .then_some("simultaneous_rekey_child")
                        }
                        _ => None,
                    }
                }
                // Both ends rekey the IKE SA at once.
                (1, Some(bh)) => {
                    let x = p.a.ep.rekey_ike_sa(now, h).is_ok();
                    let y = p.b.ep.rekey_ike_sa(now, bh).is_ok();
                    (x && y).then_some("simultaneous_rekey_ike")
                }
                (n, Some(bh)) if n % 3 == 0 => command(&mut r, &mut p.b.ep, now, bh),
                _ => command(&mut r, &mut p.a.ep, now, h),
            };
            if let Some(c) = done {
                *t.commands.entry(c).or_default() += 1;
            }
        }
        p.collect();
        p.drive_for(TICK);
        p.sent.clear();
        ticks += 1;

        // Events: B first (B establishes before A).
        let now = p.now;
        for (h, e) in std::mem::take(&mut p.b.events) {
            if let Event::IkeSaEstablished { remote_spi, .. } = &e {
                b_by_spi.insert(*remote_spi, h);
            }
            lb.apply("B", now, h, &e);
        }
        for (h, e) in std::mem::take(&mut p.a.events) {
            la.apply("A", now, h, &e);
            let slot = slots.get_mut(&h);
            match e {
                Event::IkeSaEstablished { local_spi, .. } => {
                    let s = slot.expect("established SA of no slot");
                    assert_eq!(s.phase, Phase::Connecting);
                    s.phase = Phase::Up;
                    s.since = now;
                    s.b = b_by_spi.remove(&local_spi);
                    assert!(s.b.is_some(), "seed {seed}: A established before B");
                }
                Event::IkeSaClosed { reason } => {
                    let s = slots.remove(&h).expect("closed SA of no slot");
                    if s.phase == Phase::Connecting {
                        t.failed_handshakes += 1;
                        assert_eq!(
                            reason,
                            CloseReason::Timeout,
                            "seed {seed}: handshake {h} failed otherwise"
                        );
                    }
                }
                _ => {}
            }
        }
        // Stuck?
        for (h, s) in &slots {
            let limit = match s.phase {
                Phase::Connecting => connect_limit,
                Phase::Up => MAX_LIFE,
                Phase::Closing => close_limit,
            };
            assert!(
                now - s.since <= limit,
                "seed {seed}: {h} stuck in {:?} since {:?} (now {now:?})",
                s.phase,
                s.since
            );
        }
        // State vs events, and what the endpoints hold vs what we drive.
        let (sa, sb) = (p.a.ep.stats(), p.b.ep.stats());
        ma.update(&sa);
        mb.update(&sb);
        check_children(seed, "A", &p.a.ep, &la, &sa);
        check_children(seed, "B", &p.b.ep, &lb, &sb);
        let a_recent = la.closed_within(now, linger);
        let b_recent = lb.closed_within(now, linger);
        assert!(
            sa.ike_sas <= la.open.len() + a_recent,
            "seed {seed}: A holds {} IKE SAs, {} open, {a_recent} closed lately",
            sa.ike_sas,
            la.open.len()
        );
        assert!(
            sb.ike_sas <= lb.open.len() + sb.half_open + b_recent,
            "seed {seed}: B holds {} IKE SAs, {} open, {} half open, {b_recent} closed lately",
            sb.ike_sas,
            lb.open.len(),
            sb.half_open
        );
        assert_eq!(sa.half_open, 0, "A never responds");
        assert_eq!(sa.queued_transmits + sb.queued_transmits, 0);
        assert_eq!(sa.queued_events + sb.queued_events, 0);
    }

    // Everything is closed (or closing on B's side): let the lingering SAs, B's
    // half-open ones and the IKE SAs whose peer forgot them run out. With every IKE SA
    // closed, nothing renews a timer, so this converges.
    let drain = Duration::from_secs(64) + DPD + total * 4;
    p.drive_for(drain);
    p.collect();
    let now = p.now;
    for (h, e) in std::mem::take(&mut p.b.events) {
        lb.apply("B", now, h, &e);
    }
    for (h, e) in std::mem::take(&mut p.a.events) {
        la.apply("A", now, h, &e);
    }
    let (sa, sb) = (p.a.ep.stats(), p.b.ep.stats());
    println!(
        "soak: {ticks} ticks, {:?} simulated",
        now - Instant::from_secs(1000)
    );
    println!(
        "soak: A: {} established, {} failed handshakes, {} Child SAs installed / {} deleted, \
         {} Child SA rekeys, {} IKE SA rekeys, {} Child SAs failed, {} liveness ok, closes {:?}",
        la.established,
        t.failed_handshakes,
        la.installed,
        la.deleted,
        la.child_rekeys,
        la.ike_rekeys,
        la.child_failed,
        la.liveness_ok,
        la.reasons
    );
    println!(
        "soak: B: {} established, {} Child SAs installed / {} deleted, {} Child SA rekeys, \
         {} IKE SA rekeys, closes {:?}",
        lb.established, lb.installed, lb.deleted, lb.child_rekeys, lb.ike_rekeys, lb.reasons
    );
    println!("soak: commands {:?}", t.commands);
    println!("soak: max A {ma:?} (bound {bound_a}), max B {mb:?} (bound {bound_b})");
    println!("soak: admission B {sb:?}");

    // Every handshake ended: established (then closed) or timed out.
    assert_eq!(started, handshakes);
    assert_eq!(
        la.closed.len(),
        handshakes,
        "seed {seed}: every IKE SA of A is closed"
    );
    assert!(
        la.open.is_empty() && lb.open.is_empty(),
        "seed {seed}: open SAs left: A {:?} B {:?}",
        la.open,
        lb.open
    );
    assert_eq!(la.established + t.failed_handshakes, handshakes as u64);
    // Installed minus deleted is what is live: nothing.
    for (side, l, ep) in [("A", &la, &p.a.ep), ("B", &lb, &p.b.ep)] {
        assert!(
            l.live.is_empty(),
            "seed {seed}: {side}: Child SAs left {:?}",
            l.live
        );
        assert_eq!(l.installed, l.deleted, "seed {seed}: {side}");
        assert!(
            ep.sa_handles().is_empty(),
            "seed {seed}: {side}: {:?}",
            ep.sa_handles()
        );
        assert_eq!(
            ep.poll_timeout(),
            None,
            "seed {seed}: {side}: a timer is left"
        );
    }
    for (side, s) in [("A", &sa), ("B", &sb)] {
        assert_eq!(
            (s.ike_sas, s.half_open, s.ike_spis, s.child_spis, s.timers),
            (0, 0, 0, 0, 0),
            "seed {seed}: {side} still holds something: {s:?}"
        );
        assert_eq!((s.queued_transmits, s.queued_events), (0, 0));
    }
    assert_eq!(p.in_flight(), 0);
    // Memory stayed within what the concurrency explains.
    assert!(
        ma.ike_sas <= bound_a,
        "seed {seed}: A held {} IKE SAs",
        ma.ike_sas
    );
    assert!(
        mb.ike_sas <= bound_b,
        "seed {seed}: B held {} IKE SAs",
        mb.ike_sas
    );
    assert!(
        ma.child_spis <= bound_a * children_per_ike,
        "seed {seed}: A {ma:?}"
    );
    assert!(
        mb.child_spis <= bound_b * children_per_ike,
        "seed {seed}: B {mb:?}"
    );
    // The run did what it is for.
    let n = handshakes as u64;
    assert!(
        la.established >= n * 99 / 100,
        "seed {seed}: too few established"
    );
    assert!(
        la.child_rekeys + lb.child_rekeys >= n / 4,
        "seed {seed}: too few Child SA rekeys"
    );
    assert!(la.ike_rekeys >= n / 4, "seed {seed}: too few IKE SA rekeys");
    assert!(la.deleted >= n, "seed {seed}: too few Child SA deletes");
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn soak_many_ike_sas_over_a_lossy_network() {
    let seed = env("SOAK_SEED").unwrap_or(0x50a4);
    let n = env("SOAK_HANDSHAKES").map_or(DEFAULT_HANDSHAKES, |n| n as usize);
    run(seed, n);
}

/// Found by the soak: an IKE SA that closed while a CREATE_CHILD_SA request of ours
/// was unanswered kept the inbound SPI reserved for that Child SA for ever.
#[test]
fn unanswered_create_child_sa_releases_its_spi_when_the_ike_sa_closes() {
    // The request times out.
    let mut p = Pair::new(soak_config("@a.test"), soak_config("@b.test"), 61);
    let h = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.ep.is_established(h));
    assert_eq!(p.a.ep.stats().child_spis, 1);
    p.set_cut(true);
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.collect();
    assert_eq!(p.a.ep.stats().child_spis, 2);
    p.drive_for(retransmit().total() + TICK);
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Timeout
            }
        ))
        .is_some());
    assert_eq!(p.a.ep.stats().child_spis, 0, "{:?}", p.a.ep.stats());

    // The peer deletes the IKE SA meanwhile.
    let mut p = Pair::new(soak_config("@a.test"), soak_config("@b.test"), 62);
    let h = p.connect();
    p.drive_for(Duration::from_secs(1));
    let bh = p.b.ep.sa_handles()[0];
    p.alter = Some(Box::new(|d, t| {
        // A's CREATE_CHILD_SA requests are lost.
        !(d == ipsec_test::Dir::AtoB && t.payload.get(18) == Some(&36))
    }));
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.collect();
    p.b.ep.close(p.now, bh).unwrap();
    p.drive_for(retransmit().total() * 2);
    assert!(p
        .a
        .find(|e| matches!(
            e,
            Event::IkeSaClosed {
                reason: CloseReason::Deleted { by_peer: true }
            }
        ))
        .is_some());
    assert_eq!((p.a.ep.stats().ike_sas, p.b.ep.stats().ike_sas), (0, 0));
    assert_eq!(p.b.ep.stats().child_spis, 0, "{:?}", p.b.ep.stats());
    assert_eq!(p.a.ep.stats().child_spis, 0, "{:?}", p.a.ep.stats());
}
