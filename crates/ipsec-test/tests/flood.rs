//! A responder under a flood of IKE_SA_INIT requests from initiators that answer
//! cookies but never send IKE_AUTH (findings 1 of the hardening issue): its state
//! stays within the configured caps, oversized requests are refused, one greedy
//! source is held to its quota, and a legitimate initiator still gets through at
//! once. Also RFC 8019 client puzzles end to end.
//!
//! The flood is driven in simulated time (20 s at 500 requests per second), so the
//! test is deterministic; wall-clock figures are printed, not asserted.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)] // the figures printed are the measurement

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant as WallClock;

use ipsec_ike::{Config, Duration, Event, IkeEndpoint, Instant, NotifyType, Transmit};
use ipsec_ike_wire::{Message, NotifyRepr, Payload, PayloadType, VendorIdRepr};
use ipsec_test::{config, seeded_provider};

const RESPONDER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

fn source(n: u32) -> SocketAddr {
    let [_, b, c, d] = n.to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b, c, d)), 500)
}

/// The resident set size of this process in KiB (Linux), if it can be read.
fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A genuine IKE_SA_INIT request to build attack requests from (an attacker reuses
/// one key share: only the responder pays for the Diffie-Hellman).
fn template() -> Vec<u8> {
    let mut ep = IkeEndpoint::new(Arc::new(config("@attacker.test")), seeded_provider(99));
    ep.connect(Instant::ZERO, source(0), RESPONDER).unwrap();
    ep.poll_transmit().unwrap().payload
}

/// `template` with initiator SPI `spi`, then a COOKIE and a Puzzle Solution if
/// given, and a Vendor ID of `vid` bytes if not zero.
fn request(
    template: &[u8],
    spi: u64,
    cookie: Option<&[u8]>,
    ps: Option<&[u8]>,
    vid: usize,
) -> Vec<u8> {
    let m = Message::parse(template).unwrap();
    let mut header = m.header;
    header.spi_i = ipsec_core::IkeSpi(spi.to_be_bytes());
    let mut payloads = Vec::new();
    if let Some(c) = cookie {
        payloads.push(Payload::Notify(NotifyRepr::new(NotifyType::COOKIE, c)));
    }
    if let Some(ps) = ps {
        payloads.push(Payload::Unknown(ipsec_ike_wire::UnknownPayload {
            payload_type: PayloadType::PS,
            critical: false,
            body: ps,
        }));
    }
    payloads.extend(m.payloads.iter().cloned());
    let big = vec![0x5a; vid];
    if vid > 0 {
        payloads.push(Payload::VendorId(VendorIdRepr { data: &big }));
    }
    Message { header, payloads }.to_vec()
}

/// What the responder answered: the cookie of a bare COOKIE(+PUZZLE) answer, or
/// `None` for a real IKE_SA_INIT response (or nothing).
fn cookie_of(t: &Transmit) -> Option<Vec<u8>> {
    let m = Message::parse(&t.payload).ok()?;
    m.payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == NotifyType::COOKIE => Some(n.data.to_vec()),
        _ => None,
    })
}

/// One attack request: IKE_SA_INIT, answer the cookie if asked, never IKE_AUTH.
/// Returns whether the responder answered with a real IKE_SA_INIT response.
fn attack(r: &mut IkeEndpoint, now: Instant, template: &[u8], from: SocketAddr, spi: u64) -> bool {
    r.handle_datagram(now, RESPONDER, from, &request(template, spi, None, None, 0));
    let Some(t) = r.poll_transmit() else {
        return false;
    };
    let Some(cookie) = cookie_of(&t) else {
        return true;
    };
    r.handle_datagram(
        now,
        RESPONDER,
        from,
        &request(template, spi, Some(&cookie), None, 0),
    );
    matches!(r.poll_transmit(), Some(t) if cookie_of(&t).is_none())
}

/// Runs a legitimate initiator against `r` over a loss-free path, starting at `now`
/// and stepping time by `step` while it waits. Returns the simulated time it took
/// to establish, or `None` if it did not within `limit`.
fn legitimate(r: &mut IkeEndpoint, now: Instant, cfg: Config, limit: Duration) -> Option<Duration> {
    let me = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 500);
    let mut ep = IkeEndpoint::new(Arc::new(cfg), seeded_provider(4242));
    let h = ep.connect(now, me, RESPONDER).unwrap();
    let mut t = now;
    while t < now + limit {
        let mut moved = false;
        while let Some(x) = ep.poll_transmit() {
            r.handle_datagram(t, x.remote, x.local, &x.payload);
            moved = true;
        }
        while let Some(x) = r.poll_transmit() {
            if x.remote == me {
                ep.handle_datagram(t, x.local, x.remote, &x.payload);
                moved = true;
            }
        }
        while let Some((sa, e)) = ep.poll_event() {
            if sa == h && matches!(e, Event::IkeSaEstablished { .. }) {
                return Some(Duration::from_nanos(t.0 - now.0));
            }
        }
        while r.poll_event().is_some() {}
        if !moved {
            t = ep.poll_timeout().unwrap_or(t + Duration::from_millis(100));
            ep.handle_timeout(t);
            r.handle_timeout(t);
        }
    }
    None
}

#[test]
fn a_cookie_answering_flood_stays_within_the_caps() {
    let cfg = config("@gw.test");
    let (max, threshold) = (cfg.max_half_open, cfg.half_open_cookie_threshold);
    let mut r = IkeEndpoint::new(Arc::new(cfg), seeded_provider(1));
    let template = template();
    let rss_before = rss_kib();
    let wall = WallClock::now();

    let (seconds, per_second, sources) = (20u64, 500u64, 1000u32);
    let mut admitted = 0u64;
    let mut spi = 1u64;
    let mut max_held = 0;
    for s in 0..seconds {
        for i in 0..per_second {
            let now = Instant(s * 1_000_000_000 + i * (1_000_000_000 / per_second));
            spi += 1;
            let from = source(1 + u32::try_from(spi).unwrap() % sources);
            if attack(&mut r, now, &template, from, spi) {
                admitted += 1;
            }
            // Every 50th request carries a 60 KB Vendor ID, which would cost 60 KB
            // each if kept.
            if i % 50 == 0 {
                spi += 1;
                let big = request(&template, spi, None, None, 60_000);
                r.handle_datagram(now, RESPONDER, from, &big);
            }
            // One greedy source.
            if i % 10 == 0 {
                spi += 1;
                attack(&mut r, now, &template, source(0xff_ffff), spi);
            }
            while r.poll_transmit().is_some() {}
            max_held = max_held.max(r.stats().ike_sas);
        }
        r.handle_timeout(Instant((s + 1) * 1_000_000_000));
    }
    let flood_wall = wall.elapsed();
    let st = r.stats();
    let rss_after = rss_kib();
    println!(
        "flood: {} requests in {flood_wall:?} wall ({admitted} admitted), stats {st:?}, \
         RSS {rss_before:?} -> {rss_after:?} KiB",
        seconds * per_second
    );

    // The caps hold at every point.
    assert!(max_held <= max, "held {max_held} SAs, cap {max}");
    assert_eq!(st.half_open, max, "the flood fills the cap");
    assert!(
        st.half_open_evicted > 0,
        "and newer requests displaced older ones"
    );
    assert_eq!(
        st.init_too_large,
        seconds * per_second / 50,
        "60 KB requests refused"
    );
    assert!(
        st.refused_per_source > 0,
        "the greedy source was held to its quota"
    );
    assert!(st.cookies_sent > 0);
    assert!(st.half_open_sources <= sources as usize + 1);
    // Everything past the cookie threshold needed one; beyond the cap, displacement.
    assert!(admitted > max as u64 + threshold as u64);
    // Memory: what the caps allow, with room for the allocator. The half-open SAs of
    // this flood cost about 3.5 KiB each (state, keys, the kept request).
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        let bound_kib = 48 * 1024;
        assert!(
            b.saturating_sub(a) < bound_kib,
            "RSS grew by {} KiB, bound {bound_kib} KiB",
            b - a
        );
    }

    // A legitimate initiator in the middle of the flood gets through without a single
    // retransmission (the first would come after 1 s).
    let now = Instant(seconds * 1_000_000_000);
    let wall = WallClock::now();
    let took = legitimate(&mut r, now, config("@client.test"), Duration::from_secs(30));
    println!(
        "legitimate initiator: {took:?} simulated, {:?} wall",
        wall.elapsed()
    );
    let took = took.expect("the legitimate initiator established");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn puzzles_rank_solvers_above_cookie_only_requests() {
    let mut cfg = config("@gw.test");
    cfg.half_open_cookie_threshold = 0;
    cfg.puzzle_threshold = Some(0);
    cfg.puzzle_difficulty = 10;
    cfg.max_half_open = 8;
    let mut r = IkeEndpoint::new(Arc::new(cfg), seeded_provider(2));
    let template = template();

    // Eight cookie-only initiators (no puzzle support) fill the cap at the lowest rank.
    for n in 1..=8u32 {
        assert!(attack(
            &mut r,
            Instant::ZERO,
            &template,
            source(n),
            u64::from(n)
        ));
    }
    let st = r.stats();
    assert_eq!((st.half_open, st.puzzles_sent), (8, 8));

    // A wrong solution counts as a failure and ranks as a bare cookie.
    let from = source(100);
    r.handle_datagram(
        Instant::ZERO,
        RESPONDER,
        from,
        &request(&template, 100, None, None, 0),
    );
    let cookie = cookie_of(&r.poll_transmit().unwrap()).unwrap();
    let bad = request(&template, 100, Some(&cookie), Some(&[1, 2, 3, 4]), 0);
    r.handle_datagram(Instant::ZERO, RESPONDER, from, &bad);
    assert_eq!(r.stats().puzzles_failed, 1);

    // A real initiator that solves the puzzle gets through although the cap is full,
    // displacing the oldest cookie-only SA.
    let mut client = config("@client.test");
    client.max_puzzle_difficulty = 12;
    let took = legitimate(&mut r, Instant::ZERO, client, Duration::from_secs(5));
    assert!(took.is_some(), "the puzzle solver established");
    let st = r.stats();
    assert!(st.half_open_evicted >= 1, "{st:?}");
    assert!(st.half_open <= 8);

    // An initiator that refuses puzzles this hard retries with the cookie alone and
    // still establishes while there is room.
    let mut cfg = config("@gw.test");
    cfg.half_open_cookie_threshold = 0;
    cfg.puzzle_threshold = Some(0);
    cfg.puzzle_difficulty = 20;
    let mut r = IkeEndpoint::new(Arc::new(cfg), seeded_provider(3));
    let mut client = config("@client.test");
    client.max_puzzle_difficulty = 12;
    let took = legitimate(&mut r, Instant::ZERO, client, Duration::from_secs(5));
    assert!(
        took.is_some(),
        "a cookie-only retry is admitted while there is room"
    );
    assert_eq!(r.stats().puzzles_sent, 1);
}

#[test]
fn at_the_cap_a_cookie_only_request_does_not_displace_puzzle_solvers() {
    let mut cfg = config("@gw.test");
    cfg.half_open_cookie_threshold = 0;
    cfg.puzzle_threshold = Some(0);
    cfg.puzzle_difficulty = 9;
    cfg.max_half_open = 2;
    let mut r = IkeEndpoint::new(Arc::new(cfg), seeded_provider(5));
    // Two solvers that never send IKE_AUTH: drive real initiators only through
    // IKE_SA_INIT.
    for n in 0..2u32 {
        let mut c = config("@solver.test");
        c.max_puzzle_difficulty = 12;
        let mut ep = IkeEndpoint::new(Arc::new(c), seeded_provider(10 + u64::from(n)));
        ep.connect(Instant::ZERO, source(200 + n), RESPONDER)
            .unwrap();
        for _ in 0..2 {
            let x = ep.poll_transmit().unwrap();
            r.handle_datagram(Instant::ZERO, x.remote, x.local, &x.payload);
            let y = r.poll_transmit().unwrap();
            ep.handle_datagram(Instant::ZERO, y.local, y.remote, &y.payload);
        }
    }
    assert_eq!(r.stats().half_open, 2);
    let template = template();
    assert!(!attack(&mut r, Instant::ZERO, &template, source(300), 300));
    let st = r.stats();
    assert_eq!(
        (st.half_open, st.refused_full, st.half_open_evicted),
        (2, 1, 0)
    );
}

#[test]
fn at_the_cap_a_refused_request_displaces_nobody() {
    let mut cfg = config("@gw.test");
    cfg.half_open_cookie_threshold = 0;
    cfg.max_half_open = 2;
    let mut r = IkeEndpoint::new(Arc::new(cfg), seeded_provider(6));
    let template = template();
    for n in 1..=2u32 {
        assert!(attack(
            &mut r,
            Instant::ZERO,
            &template,
            source(n),
            u64::from(n)
        ));
    }
    // A request with a valid cookie whose proposal the responder cannot take.
    let other = {
        let c = config("@x.test")
            .with_ike_proposals("aes128-sha256-modp2048")
            .unwrap();
        let mut ep = IkeEndpoint::new(Arc::new(c), seeded_provider(98));
        ep.connect(Instant::ZERO, source(0), RESPONDER).unwrap();
        ep.poll_transmit().unwrap().payload
    };
    attack(&mut r, Instant::ZERO, &other, source(3), 3);
    let st = r.stats();
    assert_eq!((st.half_open, st.half_open_evicted), (2, 0), "{st:?}");
    // A usable one still displaces the oldest.
    assert!(attack(&mut r, Instant::ZERO, &template, source(4), 4));
    let st = r.stats();
    assert_eq!((st.half_open, st.half_open_evicted), (2, 1), "{st:?}");
}
