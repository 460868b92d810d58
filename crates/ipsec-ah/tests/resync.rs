//! ESN re-synchronization (RFC 4302 Appendix B3): after more than 2^32 lost packets the
//! receiver infers the wrong high half; after `trigger` consecutive failures one packet
//! is verified with the next high halves, and only an authentic one moves the window.
//!
//! A failed AH verification leaves the packet as it was, so the receiver retries the
//! very buffer that failed, without a copy: every test checks that.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::build;
use common::{buffer, provider, ROOM};
use ipsec_ah::OpenOptions;
use ipsec_ah::{
    integ, AhInbound, AhOutbound, OpenError, Opened, PacketBuf, ResyncCounter, ResyncPolicy,
    Tunnel, TunnelConfig,
};
use ipsec_core::{KeyMaterial, Mode, ReplayError, ReplayWindow, Spi};
use ipsec_crypto::suites::{self, IntegDesc};

const SPI: Spi = Spi(0x0a0b_0c0d);

fn transforms() -> [&'static IntegDesc; 2] {
    [&suites::HMAC_SHA256_128, &integ::AES_128_GMAC]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

/// Every combination the tests run: transform, family, mode.
fn cases() -> Vec<(&'static IntegDesc, Fam, Mode)> {
    let mut v = vec![];
    for d in transforms() {
        for f in [Fam::V4, Fam::V6] {
            for m in [Mode::Transport, Mode::Tunnel] {
                v.push((d, f, m));
            }
        }
    }
    v
}

fn keys(d: &IntegDesc, seed: u8) -> KeyMaterial {
    let k: Vec<u8> = (0..d.key_len)
        .map(|i| seed.wrapping_mul(3).wrapping_add(i as u8))
        .collect();
    KeyMaterial::new(&[], &k).unwrap()
}

fn pair(d: &'static IntegDesc, esn: bool, seed: u8) -> (AhOutbound, AhInbound) {
    let k = keys(d, seed);
    (
        AhOutbound::new(provider(), SPI, d, &k, esn).unwrap(),
        AhInbound::new(provider(), SPI, d, &k, esn, 64).unwrap(),
    )
}

/// A sender for one family and mode.
struct Sender {
    out: AhOutbound,
    fam: Fam,
    tunnel: Option<Tunnel>,
}

impl Sender {
    fn new(out: AhOutbound, fam: Fam, mode: Mode) -> Self {
        let tunnel = (mode == Mode::Tunnel).then(|| {
            let (l, r) = match fam {
                Fam::V4 => ("192.0.2.1", "192.0.2.2"),
                Fam::V6 => ("2001:db8::1", "2001:db8::2"),
            };
            Tunnel::new(TunnelConfig::new(l.parse().unwrap(), r.parse().unwrap())).unwrap()
        });
        Self { out, fam, tunnel }
    }

    /// The plain packet carrying `payload` (what the receiver gets back).
    fn plain(&self, payload: &[u8]) -> Vec<u8> {
        match self.fam {
            Fam::V4 => build::ipv4(&[], 0, true, 17, payload).bytes,
            Fam::V6 => build::ipv6(&[], 0, 0, 17, payload).bytes,
        }
    }

    /// Seals `payload`; returns the AH packet and its sequence number.
    fn seal(&mut self, payload: &[u8]) -> (Vec<u8>, u64) {
        let p = self.plain(payload);
        let mut s = buffer(&p);
        let mut b = PacketBuf::new(&mut s[..], ROOM, p.len()).unwrap();
        let seq = match &mut self.tunnel {
            Some(t) => self.out.seal_tunnel(t, &mut b).unwrap(),
            None => self.out.seal_transport(&mut b).unwrap(),
        };
        (b.body().to_vec(), seq)
    }
}

/// [`AhInbound::open_transport`] or [`AhInbound::open_tunnel`], by `mode`.
fn open_in<B: AsRef<[u8]> + AsMut<[u8]>>(
    i: &mut AhInbound,
    b: &mut PacketBuf<B>,
    mode: Mode,
    opts: OpenOptions,
) -> Result<Opened, OpenError> {
    match mode {
        Mode::Transport => i.open_transport(b, opts),
        Mode::Tunnel => i.open_tunnel(b, opts),
    }
}

fn open(i: &mut AhInbound, pkt: &[u8], mode: Mode) -> Result<(Vec<u8>, Opened), OpenError> {
    let mut s = buffer(pkt);
    let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.len()).unwrap();
    let o = open_in(i, &mut b, mode, OpenOptions::new())?;
    Ok((b.body().to_vec(), o))
}

/// Re-synchronizes with `pkt`; on failure also checks that the packet is unchanged.
fn resync(
    i: &mut AhInbound,
    pkt: &[u8],
    mode: Mode,
    tries: u32,
) -> Result<(Vec<u8>, Opened), OpenError> {
    let mut s = buffer(pkt);
    let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.len()).unwrap();
    match open_in(i, &mut b, mode, OpenOptions::resync(tries)) {
        Ok(o) => Ok((b.body().to_vec(), o)),
        Err(e) => {
            assert_eq!(b.body(), pkt, "a failed resync leaves the packet as it was");
            Err(e)
        }
    }
}

/// What a receiver does per packet: open, count, and on the trigger retry the same
/// buffer (a failed AH verification leaves it intact: no copy is kept).
fn receive(
    i: &mut AhInbound,
    c: &mut ResyncCounter,
    p: &ResyncPolicy,
    pkt: &[u8],
    mode: Mode,
) -> (Result<(Vec<u8>, Opened), OpenError>, bool) {
    let mut s = buffer(pkt);
    let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.len()).unwrap();
    match open_in(i, &mut b, mode, OpenOptions::new()) {
        Ok(o) => {
            c.reset();
            (Ok((b.body().to_vec(), o)), false)
        }
        Err(OpenError::Integrity) => {
            assert_eq!(b.body(), pkt, "a failed open leaves the packet as it was");
            if !c.failed(p) {
                return (Err(OpenError::Integrity), false);
            }
            let r = open_in(i, &mut b, mode, OpenOptions::resync(p.max_tries()))
                .map(|o| (b.body().to_vec(), o));
            (r, true)
        }
        Err(e) => (Err(e), false),
    }
}

#[test]
fn resyncs_after_more_than_2_32_lost_packets() {
    let policy = ResyncPolicy::new(8, 4);
    for (d, fam, mode) in cases() {
        let ctx = format!("{} {fam:?} {mode:?}", d.name);
        let (o, mut i) = pair(d, true, 7);
        let mut tx = Sender::new(o, fam, mode);
        let mut c = ResyncCounter::new();
        for n in 1..=5u64 {
            let (pkt, seq) = tx.seal(&n.to_be_bytes());
            let (r, _) = receive(&mut i, &mut c, &policy, &pkt, mode);
            assert_eq!(r.unwrap().1.seq, seq, "{ctx}");
        }
        // 2^32 + 100 packets are lost: the high half is now 1, the receiver infers 0.
        let jump = 6 + (1u64 << 32) + 100;
        tx.out.set_next_seq(jump).unwrap();
        for n in 0..7u64 {
            let (pkt, _) = tx.seal(&n.to_be_bytes());
            let (r, tried) = receive(&mut i, &mut c, &policy, &pkt, mode);
            assert_eq!(r.unwrap_err(), OpenError::Integrity, "{ctx}");
            assert!(!tried);
            assert_eq!(i.replay_window().top(), 5, "{ctx}");
        }
        assert_eq!(c.failures(), 7);
        // The 8th consecutive failure triggers the resync, with that very packet.
        let (pkt, seq) = tx.seal(b"trigger");
        assert_eq!(seq, jump + 7);
        let (r, tried) = receive(&mut i, &mut c, &policy, &pkt, mode);
        assert!(tried, "{ctx}");
        let (inner, opened) = r.unwrap();
        assert_eq!(opened.seq, seq, "{ctx}");
        assert_eq!(inner, tx.plain(b"trigger"), "{ctx}");
        assert_eq!(i.replay_window().top(), seq, "{ctx}");
        assert_eq!(c.failures(), 0);
        // Marked like any accepted packet: a replay is refused, by open and by resync.
        assert_eq!(
            open(&mut i, &pkt, mode).unwrap_err(),
            OpenError::Replay(ReplayError::Duplicate),
            "{ctx}"
        );
        assert_eq!(
            resync(&mut i, &pkt, mode, 8).unwrap_err(),
            OpenError::Replay(ReplayError::Duplicate),
            "{ctx}"
        );
        // Later packets open normally.
        for n in 0..5u64 {
            let (pkt, seq) = tx.seal(&n.to_be_bytes());
            let (r, tried) = receive(&mut i, &mut c, &policy, &pkt, mode);
            assert!(!tried);
            assert_eq!(r.unwrap().1.seq, seq, "{ctx}");
        }
        assert_eq!(i.replay_window().top(), jump + 12, "{ctx}");
    }
}

#[test]
fn a_valid_packet_resets_the_count() {
    let policy = ResyncPolicy::new(4, 2);
    let d = &suites::HMAC_SHA256_128;
    let (o, mut i) = pair(d, true, 8);
    let mut tx = Sender::new(o, Fam::V4, Mode::Transport);
    let (wrong, _) = pair(d, true, 98);
    let mut bad = Sender::new(wrong, Fam::V4, Mode::Transport);
    let mut c = ResyncCounter::new();
    for round in 0..5 {
        for _ in 0..3 {
            let (pkt, _) = bad.seal(b"bad");
            let (r, tried) = receive(&mut i, &mut c, &policy, &pkt, Mode::Transport);
            assert_eq!(r.unwrap_err(), OpenError::Integrity);
            assert!(!tried, "round {round}");
        }
        let (pkt, _) = tx.seal(b"good");
        assert!(receive(&mut i, &mut c, &policy, &pkt, Mode::Transport)
            .0
            .is_ok());
        assert_eq!(c.failures(), 0);
    }
}

#[test]
fn forgeries_never_resync_or_move_the_window() {
    for (d, fam, mode) in cases() {
        let ctx = format!("{} {fam:?} {mode:?}", d.name);
        let (o, mut i) = pair(d, true, 9);
        let mut tx = Sender::new(o, fam, mode);
        let (pkt, _) = tx.seal(b"first");
        open(&mut i, &pkt, mode).unwrap();
        // The same kind of packet sealed with another key, 2^32 ahead.
        let (wrong, _) = pair(d, true, 10);
        let mut bad = Sender::new(wrong, fam, mode);
        bad.out.set_next_seq((1 << 32) + 2).unwrap();
        let (forged, _) = bad.seal(b"forged");
        assert_eq!(
            resync(&mut i, &forged, mode, ResyncPolicy::MAX_TRIES).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        // A genuine packet 2^32 ahead with one bit of the payload flipped.
        tx.out.set_next_seq((1 << 32) + 3).unwrap();
        let (mut flipped, _) = tx.seal(b"genuine");
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            resync(&mut i, &flipped, mode, ResyncPolicy::MAX_TRIES).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        // Random ICV bytes behind a valid packet.
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..4 {
            let mut junk = flipped.clone();
            junk[last] ^= 1;
            // The ICV ends where what AH protects starts.
            let hdr = match fam {
                Fam::V4 => 20,
                Fam::V6 => 40,
            };
            let after_ah = match mode {
                Mode::Transport => tx.plain(b"genuine").len() - hdr,
                Mode::Tunnel => tx.plain(b"genuine").len(),
            };
            let icv_at = junk.len() - after_ah;
            for b in &mut junk[icv_at - 8..icv_at] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert!(matches!(
                resync(&mut i, &junk, mode, ResyncPolicy::MAX_TRIES),
                Err(OpenError::Integrity | OpenError::Malformed(_))
            ));
        }
        assert_eq!(i.replay_window().top(), 1, "{ctx}");
        // A genuine packet still opens with the inferred high half.
        tx.out.set_next_seq(2).unwrap();
        let (pkt, seq) = tx.seal(b"second");
        assert_eq!(open(&mut i, &pkt, mode).unwrap().1.seq, seq, "{ctx}");
    }
}

#[test]
fn resync_is_bounded_by_max_tries() {
    for (d, fam, mode) in cases() {
        let ctx = format!("{} {fam:?} {mode:?}", d.name);
        let (o, mut i) = pair(d, true, 11);
        let mut tx = Sender::new(o, fam, mode);
        let (pkt, _) = tx.seal(b"first");
        open(&mut i, &pkt, mode).unwrap();
        // Five high halves ahead.
        tx.out.set_next_seq((5 << 32) | 50).unwrap();
        let (pkt, seq) = tx.seal(b"far");
        assert_eq!(
            resync(&mut i, &pkt, mode, 4).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        assert_eq!(
            resync(&mut i, &pkt, mode, 0).unwrap_err(),
            OpenError::Integrity
        );
        assert_eq!(i.replay_window().top(), 1);
        assert_eq!(resync(&mut i, &pkt, mode, 5).unwrap().1.seq, seq, "{ctx}");
        assert_eq!(i.replay_window().top(), seq);
        // More than MAX_TRIES high halves ahead: never found, however many are asked for.
        tx.out
            .set_next_seq((u64::from(ResyncPolicy::MAX_TRIES) + 6) << 32 | 7)
            .unwrap();
        let (pkt, _) = tx.seal(b"farther");
        assert_eq!(
            resync(&mut i, &pkt, mode, u32::MAX).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        assert_eq!(i.replay_window().top(), seq, "{ctx}");
    }
}

#[test]
fn without_esn_nothing_is_tried() {
    for (d, fam, mode) in cases() {
        let ctx = format!("{} {fam:?} {mode:?}", d.name);
        let (o, mut i) = pair(d, false, 13);
        let mut tx = Sender::new(o, fam, mode);
        let (pkt, _) = tx.seal(b"a");
        open(&mut i, &pkt, mode).unwrap();
        let (wrong, _) = pair(d, false, 14);
        let mut bad = Sender::new(wrong, fam, mode);
        bad.out.set_next_seq(5).unwrap();
        let (forged, _) = bad.seal(b"b");
        assert_eq!(
            resync(&mut i, &forged, mode, 8).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        // Even a genuine packet: there is no high half to re-synchronize.
        let (pkt, _) = tx.seal(b"c");
        assert_eq!(
            resync(&mut i, &pkt, mode, 8).unwrap_err(),
            OpenError::Integrity,
            "{ctx}"
        );
        assert_eq!(i.replay_window().top(), 1, "{ctx}");
        // And the counter never fires with the policy off.
        let mut c = ResyncCounter::new();
        for _ in 0..100 {
            let (r, tried) = receive(&mut i, &mut c, &ResyncPolicy::DISABLED, &forged, mode);
            assert_eq!(r.unwrap_err(), OpenError::Integrity);
            assert!(!tried);
        }
        assert_eq!(i.replay_window().top(), 1, "{ctx}");
    }
}

#[test]
fn gmac_resync_with_headroom_only() {
    // AES-GMAC with ESN borrows four bytes next to the packet for the high half; with no
    // tailroom it moves the packet to the front and back, on every try.
    for fam in [Fam::V4, Fam::V6] {
        let d = &integ::AES_256_GMAC;
        let (o, mut i) = pair(d, true, 15);
        let mut tx = Sender::new(o, fam, Mode::Transport);
        let (pkt, _) = tx.seal(b"x");
        open(&mut i, &pkt, Mode::Transport).unwrap();
        tx.out.set_next_seq((3 << 32) | 2).unwrap();
        let (pkt, seq) = tx.seal(b"y");
        let mut s = vec![0u8; 8];
        s.extend_from_slice(&pkt);
        let mut b = PacketBuf::new(&mut s[..], 8, pkt.len()).unwrap();
        assert_eq!(
            i.open_transport(&mut b, OpenOptions::new()).unwrap_err(),
            OpenError::Integrity
        );
        assert_eq!(b.body(), &pkt[..]);
        assert_eq!(
            i.open_transport(&mut b, OpenOptions::resync(2))
                .unwrap_err(),
            OpenError::Integrity
        );
        assert_eq!(b.body(), &pkt[..]);
        assert_eq!(&s[..8], &[0; 8], "headroom put back");
        let mut b = PacketBuf::new(&mut s[..], 8, pkt.len()).unwrap();
        assert_eq!(
            i.open_transport(&mut b, OpenOptions::resync(3))
                .unwrap()
                .seq,
            seq
        );
        assert_eq!(b.body(), &tx.plain(b"y")[..]);
        // Neither head- nor tailroom: refused before any try.
        tx.out.set_next_seq((4 << 32) | 100).unwrap();
        let (pkt, _) = tx.seal(b"z");
        let mut s = pkt.clone();
        let mut b = PacketBuf::new(&mut s[..], 0, pkt.len()).unwrap();
        assert!(matches!(
            i.open_transport(&mut b, OpenOptions::resync(3)),
            Err(OpenError::InsufficientRoom { .. })
        ));
        assert_eq!(b.body(), &pkt[..]);
        assert_eq!(i.replay_window().top(), seq);
    }
}

#[test]
fn shared_reference_entry_points_with_an_external_window() {
    for (d, fam, mode) in cases() {
        let ctx = format!("{} {fam:?} {mode:?}", d.name);
        let (o, i) = pair(d, true, 21);
        let mut tx = Sender::new(o, fam, mode);
        let mut window = ReplayWindow::new(128).unwrap();
        let (pkt, _) = tx.seal(b"one");
        let mut s = buffer(&pkt);
        let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.len()).unwrap();
        with(&i, &mut b, &mut window, mode).unwrap();
        tx.out.set_next_seq((2 << 32) | 3).unwrap();
        let (pkt, seq) = tx.seal(b"two");
        let mut s = buffer(&pkt);
        let mut b = PacketBuf::new(&mut s[..], ROOM, pkt.len()).unwrap();
        assert_eq!(
            with(&i, &mut b, &mut window, mode).unwrap_err(),
            OpenError::Integrity
        );
        // The same buffer, untouched by the failure, re-synchronizes.
        let opened = match mode {
            Mode::Transport => i.open_transport_with(&mut b, &mut window, OpenOptions::resync(2)),
            Mode::Tunnel => i.open_tunnel_with(&mut b, &mut window, OpenOptions::resync(2)),
        }
        .unwrap();
        assert_eq!(opened.seq, seq, "{ctx}");
        assert_eq!(b.body(), &tx.plain(b"two")[..], "{ctx}");
        assert_eq!(window.top(), seq);
        // The SA's own window was neither read nor changed.
        assert_eq!(i.replay_window().top(), 0);
    }
}

fn with(
    i: &AhInbound,
    b: &mut PacketBuf<&mut [u8]>,
    w: &mut ReplayWindow,
    mode: Mode,
) -> Result<Opened, OpenError> {
    match mode {
        Mode::Transport => i.open_transport_with(b, w, OpenOptions::new()),
        Mode::Tunnel => i.open_tunnel_with(b, w, OpenOptions::new()),
    }
}
