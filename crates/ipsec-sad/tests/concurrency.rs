//! Several threads seal and open real ESP packets while another thread rekeys,
//! removes and adds SAs: no packet that should pass is lost, and no sequence number
//! is used twice. Half the receiving workers use a `SadReader`, whose cached index
//! tables must follow every change.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use ipsec_core::{Instant, PacketBuf, TrafficSelector};
use ipsec_sad::{
    Action, AddrRange, Inbound, Outbound, PolicyId, PolicyRule, SaOptions, SaTemplate, Selector,
    Spd, MAX_HEADROOM,
};

const WORKERS: usize = 4;
const PACKETS: usize = 2500;
const TUNNELS: u32 = 3;

fn net(t: u32, side: u32) -> String {
    format!("10.{t}.{side}.0")
}

fn pair(t: u32, generation: u32) -> Pair {
    let mut p = Pair::new(
        0x10_0000 + generation * 16 + t,
        0x20_0000 + generation * 16 + t,
        (generation * 7 + t) as u8,
    );
    p.ts = Some((
        TrafficSelector::from_prefix(ip(&net(t, 1)), 24).unwrap(),
        TrafficSelector::from_prefix(ip(&net(t, 2)), 24).unwrap(),
    ));
    p
}

#[test]
fn packets_flow_while_sas_are_rekeyed_added_and_removed() {
    let a = Arc::new(sad());
    let b = Arc::new(sad());
    let rules: Vec<PolicyRule> = (0..TUNNELS)
        .map(|t| {
            PolicyRule::new(
                t,
                Selector::between(
                    AddrRange::prefix(ip(&net(t, 1)), 24).unwrap(),
                    AddrRange::prefix(ip(&net(t, 2)), 24).unwrap(),
                ),
                Action::Protect(SaTemplate::esp_tunnel(ip(A), ip(B))),
            )
        })
        .collect();
    a.set_outbound_spd(Spd::new(rules).unwrap());
    let mut current: Vec<(ipsec_sad::SaId, ipsec_sad::SaId)> = (0..TUNNELS)
        .map(|t| {
            let p = pair(t, 0);
            let ia = a
                .add_sa(
                    Instant::ZERO,
                    &p.params(true),
                    SaOptions::new().policy(PolicyId(t)),
                )
                .unwrap();
            let ib = b
                .add_sa(Instant::ZERO, &p.params(false), SaOptions::new())
                .unwrap();
            (ia, ib)
        })
        .collect();

    let epochs: Arc<Vec<AtomicU64>> = Arc::new((0..WORKERS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (a, b, epochs, finished) = (a.clone(), b.clone(), epochs.clone(), finished.clone());
            thread::spawn(move || {
                let mut used: Vec<(u32, u64)> = Vec::with_capacity(PACKETS);
                let mut lost = Vec::new();
                let mut storage = vec![0u8; 2048];
                // Half the workers open through a `SadReader` (cached index tables),
                // half through the `Sad` itself.
                let mut reader = b.reader();
                for n in 0..PACKETS {
                    let t = ((w + n) as u32) % TUNNELS;
                    let src = format!("10.{t}.1.{}", 1 + w);
                    let dst = format!("10.{t}.2.{}", 1 + n % 200);
                    let pkt = udp4(&src, &dst, 1000 + w as u16, 80, 16 + n % 300, n as u8);
                    storage[MAX_HEADROOM..MAX_HEADROOM + pkt.len()].copy_from_slice(&pkt);
                    let mut buf =
                        PacketBuf::new(&mut storage[..], MAX_HEADROOM, pkt.len()).unwrap();
                    let now = Instant(1 + n as u64);
                    match a.process_outbound(now, &mut buf) {
                        Outbound::Protect { spi, seq, .. } => {
                            used.push((spi.0, seq));
                            let r = buf.body_range();
                            let mut inb =
                                PacketBuf::new(&mut storage[..], r.start, r.len()).unwrap();
                            let got = if w % 2 == 0 {
                                reader.process_inbound(now, &mut inb)
                            } else {
                                b.process_inbound(now, &mut inb)
                            };
                            match got {
                                Inbound::Deliver { seq: s, .. }
                                    if s == seq && inb.body() == &pkt[..] => {}
                                other => lost.push(format!("in {spi:?}/{seq}: {other:?}")),
                            }
                        }
                        other => lost.push(format!("out: {other:?}")),
                    }
                    // A quiescent point: nothing of the previous packet is in flight.
                    epochs[w].fetch_add(1, SeqCst);
                }
                finished.fetch_add(1, SeqCst);
                (used, lost)
            })
        })
        .collect();

    // The control thread: rekey every tunnel over and over; an old pair is removed
    // only once every worker has passed a quiescent point after the switch (as a real
    // deployment deletes the old SA only after a grace period). Meanwhile unrelated SAs
    // come and go on B, so that writers keep copying index shards.
    let control = {
        let (a, b, epochs, done, finished) = (
            a.clone(),
            b.clone(),
            epochs.clone(),
            done.clone(),
            finished.clone(),
        );
        thread::spawn(move || {
            let mut generation = 1;
            let mut churn = Vec::new();
            let mut rekeys = 0;
            while finished.load(SeqCst) < WORKERS as u64 {
                for t in 0..TUNNELS {
                    let p = pair(t, generation);
                    let (old_a, old_b) = current[t as usize];
                    let nb = b
                        .rekey_sa(Instant(1), old_b, &p.params(false), SaOptions::new())
                        .unwrap();
                    let na = a
                        .rekey_sa(Instant(1), old_a, &p.params(true), SaOptions::new())
                        .unwrap();
                    current[t as usize] = (na, nb);
                    let seen: Vec<u64> = epochs.iter().map(|e| e.load(SeqCst)).collect();
                    while finished.load(SeqCst) < WORKERS as u64
                        && epochs.iter().zip(&seen).any(|(e, s)| e.load(SeqCst) == *s)
                    {
                        thread::yield_now();
                    }
                    a.remove_sa(old_a).unwrap();
                    b.remove_sa(old_b).unwrap();
                    rekeys += 1;
                }
                let extra = pair(15, 1000 + generation);
                churn.push(
                    b.add_sa(Instant(1), &extra.params(false), SaOptions::new())
                        .unwrap(),
                );
                if churn.len() > 8 {
                    b.remove_sa(churn.remove(0)).unwrap();
                }
                generation += 1;
                thread::sleep(Duration::from_micros(200));
            }
            done.store(true, SeqCst);
            rekeys
        })
    };

    let mut all: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut lost = Vec::new();
    for w in workers {
        let (used, l) = w.join().unwrap();
        lost.extend(l);
        for (spi, seq) in used {
            all.entry(spi).or_default().push(seq);
        }
    }
    let rekeys = control.join().unwrap();
    assert!(
        lost.is_empty(),
        "{} lost, first: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let total: usize = all.values().map(Vec::len).sum();
    assert_eq!(total, WORKERS * PACKETS);
    for (spi, seqs) in &mut all {
        let unique: HashSet<u64> = seqs.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seqs.len(),
            "spi {spi:#x}: a sequence number was used twice"
        );
        // Every seal succeeded, so the numbers of each SA are exactly 1..=n.
        seqs.sort_unstable();
        assert_eq!(
            seqs.last().copied(),
            Some(seqs.len() as u64),
            "spi {spi:#x}"
        );
    }
    assert!(rekeys >= TUNNELS as usize, "only {rekeys} rekeys ran");
    assert!(
        all.len() > TUNNELS as usize,
        "packets used {} SAs: the rekeys did not interleave",
        all.len()
    );
}
