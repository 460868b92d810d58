//! Test support for the ipsec workspace (not published).
//!
//! - [`SeededRandom`] / [`seeded_provider`]: a deterministic random source, so whole
//!   IKE handshakes are byte-for-byte reproducible.
//! - [`Pair`]: two [`IkeEndpoint`]s over a simulated network with a virtual clock,
//!   latency, loss, duplication, reordering, an optional NAT in front of side A, and
//!   an `alter` hook that rewrites datagrams in flight.
//! - [`fuzz`]: the drivers of the `ike_responder` / `ike_initiator` fuzz targets.
//! - [`capture`]: a `tracing` subscriber that records events, for the tests of the
//!   layers' `tracing` feature.
#![forbid(unsafe_code)]

pub mod capture;
pub mod fuzz;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use ipsec_crypto::{CryptoError, CryptoProvider, PrfAlgorithm, SecureRandom};
use ipsec_ike::{
    ChildSaId, ChildSaParams, Config, Duration, Event, IkeEndpoint, Instant, SaHandle, Transmit,
};

/// A deterministic random source: HMAC-SHA-256(seed, counter) blocks. Not secure;
/// for tests only.
#[derive(Debug)]
pub struct SeededRandom {
    key: [u8; 32],
    counter: Mutex<u64>,
}

impl SeededRandom {
    /// A source whose output depends only on `seed`.
    pub const fn new(seed: u64) -> Self {
        let mut key = [0u8; 32];
        let s = seed.to_be_bytes();
        let tag = *b"ipsectst";
        let mut i = 0;
        while i < 8 {
            key[i] = s[i];
            key[8 + i] = tag[i];
            i += 1;
        }
        SeededRandom {
            key,
            counter: Mutex::new(0),
        }
    }

    /// Starts the output over (for `static` sources reused across runs).
    pub fn reset(&self) {
        if let Ok(mut c) = self.counter.lock() {
            *c = 0;
        }
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut c = self.counter.lock().map_err(|_| CryptoError::Random)?;
        let k = ipsec_crypto_rustcrypto::PRF_HMAC_SHA256.new_key(&self.key)?;
        for chunk in dest.chunks_mut(32) {
            let mut out = [0u8; 32];
            k.compute(&[&c.to_be_bytes()], &mut out)?;
            chunk.copy_from_slice(&out[..chunk.len()]);
            *c += 1;
        }
        Ok(())
    }
}

/// The pure-Rust provider with a [`SeededRandom`] (leaked, so it is `'static`).
pub fn seeded_provider(seed: u64) -> &'static CryptoProvider {
    let rng: &'static SeededRandom = Box::leak(Box::new(SeededRandom::new(seed)));
    Box::leak(Box::new(ipsec_crypto_rustcrypto::provider_with_random(rng)))
}

/// A random source that always fails.
#[derive(Debug)]
pub struct FailingRandom;

impl SecureRandom for FailingRandom {
    fn fill(&self, _dest: &mut [u8]) -> Result<(), CryptoError> {
        Err(CryptoError::Random)
    }
}

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From side A to side B.
    AtoB,
    /// From side B to side A.
    BtoA,
}

/// One endpoint of a [`Pair`].
#[derive(Debug)]
pub struct Side {
    /// The endpoint.
    pub ep: IkeEndpoint,
    /// Its host address (ports 500 and 4500).
    pub ip: IpAddr,
    /// Every event it produced, in order.
    pub events: Vec<(SaHandle, Event)>,
}

impl Side {
    /// The address with port 500.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 500)
    }

    /// The Child SAs installed (not deleted afterwards), by id.
    pub fn installed(&self) -> Vec<(ChildSaId, &ChildSaParams)> {
        let mut v: Vec<(ChildSaId, &ChildSaParams)> = Vec::new();
        for (_, e) in &self.events {
            match e {
                Event::ChildSaInstalled { id, params, .. } => v.push((*id, params)),
                Event::ChildSaDeleted { id, .. } => v.retain(|(i, _)| i != id),
                _ => {}
            }
        }
        v
    }

    /// How many events match `f`.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// The first event matching `f`.
    pub fn find(&self, f: impl Fn(&Event) -> bool) -> Option<&Event> {
        self.events.iter().map(|(_, e)| e).find(|e| f(e))
    }

    /// Why the first IKE SA that closed on this side closed.
    pub fn closed_reason(&self) -> Option<ipsec_ike::CloseReason> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaClosed { reason } => Some(*reason),
            _ => None,
        })
    }
}

/// Validates both configurations, starts an IKE SA from A to B and drives the pair
/// until nothing is left to do: the common first step of a handshake test.
pub fn handshake(a: Config, b: Config, seed: u64) -> (Pair, SaHandle) {
    a.validate().expect("A's configuration");
    b.validate().expect("B's configuration");
    let mut p = Pair::new(a, b, seed);
    let h = p.connect();
    p.drive();
    (p, h)
}

/// The bytes of a hex string (test data; panics on bad input).
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Flight {
    at: Instant,
    seq: u64,
    dir: Dir,
    t: Transmit,
}

/// A rewriting hook: may change the datagram or drop it (return `false`).
pub type Alter = Box<dyn FnMut(Dir, &mut Transmit) -> bool>;

/// Two endpoints over a simulated network.
pub struct Pair {
    /// Side A (usually the initiator).
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// The virtual clock.
    pub now: Instant,
    /// One-way delay.
    pub latency: Duration,
    /// Percentage of datagrams lost.
    pub loss_percent: u32,
    /// Percentage of datagrams delivered twice.
    pub duplicate_percent: u32,
    /// Percentage of datagrams delayed by up to 3× the latency more (reordering).
    pub reorder_percent: u32,
    /// A public address of a NAT in front of side A (ports are mapped +10000).
    pub nat_a: Option<IpAddr>,
    /// A hook run on every datagram before the network effects.
    pub alter: Option<Alter>,
    /// Timers further away than this from `now` do not keep [`Pair::drive`] going.
    pub idle_horizon: Duration,
    /// The step bound of [`Pair::drive`].
    pub max_steps: usize,
    /// Every datagram sent (before loss), with its time and direction.
    pub sent: Vec<(Instant, Dir, Transmit)>,
    in_flight: Vec<Flight>,
    seq: u64,
    rng: u64,
    cut: bool,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("now", &self.now)
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Pair {
    /// Two endpoints at 192.0.2.1 (A) and 192.0.2.2 (B) with seeded providers.
    pub fn new(a: Config, b: Config, seed: u64) -> Self {
        Self::with_providers(a, b, seeded_provider(seed), seeded_provider(seed ^ 0x5eed))
    }

    /// Two endpoints with the given providers.
    pub fn with_providers(
        a: Config,
        b: Config,
        pa: &'static CryptoProvider,
        pb: &'static CryptoProvider,
    ) -> Self {
        Pair {
            a: Side {
                ep: IkeEndpoint::new(Arc::new(a), pa),
                ip: "192.0.2.1".parse().unwrap(),
                events: Vec::new(),
            },
            b: Side {
                ep: IkeEndpoint::new(Arc::new(b), pb),
                ip: "192.0.2.2".parse().unwrap(),
                events: Vec::new(),
            },
            now: Instant::from_secs(1000),
            latency: Duration::from_millis(10),
            loss_percent: 0,
            duplicate_percent: 0,
            reorder_percent: 0,
            nat_a: None,
            alter: None,
            idle_horizon: Duration::from_secs(300),
            max_steps: 100_000,
            sent: Vec::new(),
            in_flight: Vec::new(),
            seq: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            cut: false,
        }
    }

    /// Seeds the network's own randomness (loss, duplication, reordering).
    pub fn seed_network(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// Cuts (or restores) the link: everything sent meanwhile is lost.
    pub fn set_cut(&mut self, cut: bool) {
        self.cut = cut;
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn percent(&mut self, p: u32) -> bool {
        p > 0 && (self.rand() % 100) < u64::from(p)
    }

    /// A connects to B (port 500).
    pub fn connect(&mut self) -> SaHandle {
        let (l, r) = (self.a.addr(), self.b.addr());
        let h = self.a.ep.connect(self.now, l, r).expect("connect");
        self.collect();
        h
    }

    /// Moves transmits and events out of both endpoints into the network and logs.
    pub fn collect(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.a.ep.poll_transmit() {
                self.schedule(Dir::AtoB, t);
                any = true;
            }
            while let Some(t) = self.b.ep.poll_transmit() {
                self.schedule(Dir::BtoA, t);
                any = true;
            }
            while let Some(e) = self.a.ep.poll_event() {
                self.a.events.push(e);
            }
            while let Some(e) = self.b.ep.poll_event() {
                self.b.events.push(e);
            }
            if !any {
                break;
            }
        }
    }

    fn schedule(&mut self, dir: Dir, mut t: Transmit) {
        self.sent.push((self.now, dir, t.clone()));
        if let Some(f) = self.alter.as_mut() {
            if !f(dir, &mut t) {
                return;
            }
        }
        if self.cut || self.percent(self.loss_percent) {
            return;
        }
        let copies = if self.percent(self.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.latency;
            if self.percent(self.reorder_percent) {
                let extra = self.rand() % (3 * self.latency.as_nanos() as u64 + 1);
                delay += Duration::from_nanos(extra);
            }
            self.seq += 1;
            self.in_flight.push(Flight {
                at: self.now + delay,
                seq: self.seq,
                dir,
                t: t.clone(),
            });
        }
    }

    fn deliver(&mut self, f: Flight) {
        let nat_port = |p: u16| p.wrapping_add(10000);
        match f.dir {
            Dir::AtoB => {
                let from = match self.nat_a {
                    Some(ip) => SocketAddr::new(ip, nat_port(f.t.local.port())),
                    None => f.t.local,
                };
                if f.t.remote.ip() != self.b.ip {
                    return;
                }
                self.b
                    .ep
                    .handle_datagram(self.now, f.t.remote, from, &f.t.payload);
            }
            Dir::BtoA => {
                let to = match self.nat_a {
                    Some(ip) if f.t.remote.ip() == ip => {
                        SocketAddr::new(self.a.ip, f.t.remote.port().wrapping_sub(10000))
                    }
                    Some(_) => return,
                    None => f.t.remote,
                };
                if to.ip() != self.a.ip {
                    return;
                }
                self.a
                    .ep
                    .handle_datagram(self.now, to, f.t.local, &f.t.payload);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        [self.a.ep.poll_timeout(), self.b.ep.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// One step: advance the clock to the next delivery or timer, process it.
    /// Returns false when nothing is due within `limit`.
    fn step(&mut self, limit: Instant) -> bool {
        self.collect();
        let next_flight = self.in_flight.iter().map(|f| f.at).min();
        let next = [next_flight, self.next_timer()].into_iter().flatten().min();
        let Some(t) = next.filter(|t| *t <= limit) else {
            return false;
        };
        if t > self.now {
            self.now = t;
        }
        let mut due: Vec<Flight> = Vec::new();
        let mut rest = Vec::new();
        for f in self.in_flight.drain(..) {
            if f.at <= self.now {
                due.push(f);
            } else {
                rest.push(f);
            }
        }
        self.in_flight = rest;
        due.sort_by_key(|f| (f.at, f.seq));
        for f in due {
            self.deliver(f);
            self.collect();
        }
        if self.a.ep.poll_timeout().is_some_and(|t| t <= self.now) {
            self.a.ep.handle_timeout(self.now);
        }
        if self.b.ep.poll_timeout().is_some_and(|t| t <= self.now) {
            self.b.ep.handle_timeout(self.now);
        }
        self.collect();
        true
    }

    /// Runs until nothing is in flight and no timer is due within
    /// [`Pair::idle_horizon`].
    ///
    /// # Panics
    /// After [`Pair::max_steps`] steps.
    pub fn drive(&mut self) {
        for _ in 0..self.max_steps {
            let limit = if self.in_flight.is_empty() {
                self.now + self.idle_horizon
            } else {
                Instant(u64::MAX)
            };
            if !self.step(limit) {
                return;
            }
        }
        panic!("Pair::drive: no quiescence after {} steps", self.max_steps);
    }

    /// Runs everything due up to `now + d`, then sets the clock there.
    ///
    /// # Panics
    /// After [`Pair::max_steps`] steps.
    pub fn drive_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..self.max_steps {
            if !self.step(end) {
                if self.now < end {
                    self.now = end;
                }
                return;
            }
        }
        panic!("Pair::drive_for: step bound reached");
    }

    /// Number of datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// `rounds` Child SA operations on IKE SA `h` (A's handle; B's is its only one),
    /// A and B taking turns: creates (up to eight Child SAs), rekeys and deletes, each
    /// driven to its end. For tests of what every Child SA negotiated has in common.
    ///
    /// # Panics
    /// When an operation is refused.
    pub fn churn_children(&mut self, h: SaHandle, rounds: usize) {
        let bh = self.b.ep.sa_handles()[0];
        for i in 0..rounds {
            let (ep, sa) = if i % 2 == 0 {
                (&mut self.a.ep, h)
            } else {
                (&mut self.b.ep, bh)
            };
            let kids = ep.child_sas(sa);
            let now = self.now;
            match (i % 3, kids.last()) {
                (1, Some(_)) if kids.len() > 1 => ep.delete_child_sa(now, sa, kids[0]).unwrap(),
                (2, Some(c)) => ep.rekey_child_sa(now, sa, *c).unwrap(),
                _ if kids.len() < 8 => ep.create_child_sa(now, sa).map(|_| ()).unwrap(),
                _ => ep.delete_child_sa(now, sa, kids[0]).unwrap(),
            }
            self.collect();
            self.drive();
        }
    }
}

/// Checks that two Child SAs are the two ends of one SA pair: SPIs crossed, our
/// inbound keys = their outbound keys, selectors mirrored.
///
/// # Panics
/// When they are not.
pub fn assert_mirrored(x: &ChildSaParams, y: &ChildSaParams) {
    assert_eq!(x.inbound_spi, y.outbound_spi, "SPIs crossed");
    assert_eq!(x.outbound_spi, y.inbound_spi, "SPIs crossed");
    assert_eq!(
        x.inbound_keys.encr(),
        y.outbound_keys.encr(),
        "keys mirrored"
    );
    assert_eq!(
        x.inbound_keys.integ(),
        y.outbound_keys.integ(),
        "keys mirrored"
    );
    assert_eq!(
        x.outbound_keys.encr(),
        y.inbound_keys.encr(),
        "keys mirrored"
    );
    assert_eq!(
        x.outbound_keys.integ(),
        y.inbound_keys.integ(),
        "keys mirrored"
    );
    assert_ne!(
        x.inbound_keys.encr(),
        x.outbound_keys.encr(),
        "directions differ"
    );
    assert_eq!(x.local_ts, y.remote_ts, "selectors mirrored");
    assert_eq!(x.remote_ts, y.local_ts, "selectors mirrored");
    assert_eq!(x.encr, y.encr);
    assert_eq!(x.integ, y.integ);
    assert_eq!(x.esn, y.esn);
    assert_eq!(x.mode, y.mode);
}

/// A PSK configuration for tests: identity `id`, key "test-psk-0123456789".
pub fn config(id: &str) -> Config {
    Config::new(id.parse().expect("identity"), "test-psk-0123456789")
}
