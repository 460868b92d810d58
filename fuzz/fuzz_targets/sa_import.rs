//! SA snapshot import (`ipsec_sad::export`) on fuzzer-changed snapshots and on arbitrary
//! JSON: nothing panics; an accepted snapshot, exported again from the importer, is the
//! same snapshot but for the fields import moves on purpose (the outbound counter starts
//! just below the owned range; the age is at most the clock);
//! an import is refused unless its owned range (`SeqRange`) starts above the snapshot's
//! `last_seq`, but for `SeqRange::NONE` (receive only), which sends nothing; the
//! importer's sealed sequence numbers stay inside its range; and a snapshot
//! round-trips through serde JSON.
#![no_main]

use std::net::IpAddr;

use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::{
    ChildSaParams, Instant, KeyMaterial, Lifetime, Mode, PacketBuf, SecurityProtocol, Spi,
    TrafficSelector, TsSet,
};
use ipsec_sad::export::SnapshotTs;
use ipsec_sad::{
    Action, ImportOptions, Outbound, PolicyId, PolicyRule, SaOptions, SaSnapshot, SaTemplate, Sad,
    SadConfig, Selector, SeqRange, Spd, MAX_HEADROOM, MAX_TAILROOM,
};
use libfuzzer_sys::fuzz_target;

const T: Instant = Instant(1_000_000_000_000);

fn sad() -> Sad {
    let s = Sad::new(&ipsec_crypto_rustcrypto::PROVIDER, SadConfig::default()).unwrap();
    s.set_outbound_spd(
        Spd::new(vec![PolicyRule::new(
            1,
            Selector::ANY,
            Action::Protect(SaTemplate::esp_transport()),
        )])
        .unwrap(),
    );
    s
}

fn params(sel: u8) -> ChildSaParams {
    let ah = sel & 1 != 0;
    let k = |n: usize, s: u8| (0..n).map(|i| s ^ i as u8).collect::<Vec<u8>>();
    let (encr, bits, integ, ek, ik) = if ah {
        (None, 0, IntegId::AUTH_HMAC_SHA2_256_128, 0, 32)
    } else if sel & 2 != 0 {
        (
            Some(EncrId::ENCR_AES_CBC),
            256,
            IntegId::AUTH_HMAC_SHA1_96,
            32,
            20,
        )
    } else {
        (Some(EncrId::ENCR_AES_GCM_16), 128, IntegId::NONE, 20, 0)
    };
    {
        let mut p = ChildSaParams::esp(
            "192.0.2.2".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
            ipsec_core::iana::EncrId(0),
            bits,
            (Spi(0x1000), KeyMaterial::new(&k(ek, 1), &k(ik, 2)).unwrap()),
            (Spi(0x2000), KeyMaterial::new(&k(ek, 3), &k(ik, 4)).unwrap()),
        )
        .with_mode(if sel & 4 != 0 {
            Mode::Tunnel
        } else {
            Mode::Transport
        })
        .with_integ(integ)
        .with_ke(KeId::NONE)
        .with_esn(sel & 8 != 0)
        .with_selectors(
            TsSet::one(TrafficSelector::any_v4()),
            TsSet::one(TrafficSelector::any_v4()),
        )
        .with_udp_encap(None)
        .with_lifetime(Lifetime::UNLIMITED)
        .with_replay_window(64);
        p.protocol = if ah {
            SecurityProtocol::Ah
        } else {
            SecurityProtocol::Esp
        };
        p.encr = encr;
        p
    }
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, r) = self.0.split_first()?;
        self.0 = r;
        Some(*b)
    }
    fn u64(&mut self) -> Option<u64> {
        let (b, r) = self.0.split_first_chunk::<8>()?;
        self.0 = r;
        Some(u64::from_be_bytes(*b))
    }
}

const ADDRS: [&str; 4] = ["192.0.2.2", "192.0.2.1", "2001:db8::1", "224.0.0.5"];

fn addr(b: u8) -> IpAddr {
    ADDRS[usize::from(b) % ADDRS.len()].parse().unwrap()
}

/// Changes one field of `s` as the input says; `None` at the end of the input.
fn mutate(s: &mut SaSnapshot, b: &mut Bytes<'_>) -> Option<()> {
    let f = b.u8()?;
    let v = b.u64()?;
    let small = v as u8;
    match f % 24 {
        0 => s.version = v as u32,
        1 => s.protocol = ["esp", "ah", "", "ESP", "tunnel"][usize::from(small % 5)].into(),
        2 => s.mode = ["tunnel", "transport", "", "esp"][usize::from(small % 4)].into(),
        3 => s.inbound_spi = v as u32,
        4 => s.outbound_spi = v as u32,
        5 => s.encr = (small & 1 != 0).then_some((v >> 8) as u16 % 32),
        6 => s.encr_key_bits = (v as u16) % 300,
        7 => s.integ = (v as u16) % 16,
        8 => s.ke = v as u16,
        9 => s.esn = small & 1 != 0,
        10 => s.inbound_keys.encr.resize(usize::from(small % 80), 0x5a),
        11 => s.outbound_keys.integ.resize(usize::from(small % 80), 0xa5),
        12 => s.local_addr = addr(small),
        13 => s.remote_addr = addr(small),
        14 => s.local_ts.push(SnapshotTs {
            start_addr: addr(small),
            end_addr: addr((v >> 8) as u8),
            protocol: (v >> 16) as u8,
            start_port: (v >> 24) as u16,
            end_port: (v >> 40) as u16,
        }),
        15 => s.remote_ts.clear(),
        16 => s.udp_encap = (small & 1 != 0).then_some(((v >> 8) as u16, (v >> 24) as u16)),
        17 => s.soft.bytes = Some(v),
        18 => s.hard.packets = Some(v >> (small % 64)),
        19 => s.hard.time_ns = Some(v),
        20 => s.replay_window = (v as u32) % 5000,
        21 => s.last_seq = v >> (small % 64),
        22 => s.replay_top = v >> (small % 64),
        _ => s.used.age_ns = v,
    }
    Some(())
}

/// Seals one packet on `to`; its sequence number if it went out.
fn seal_one(to: &Sad) -> Option<u64> {
    let packet = {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[3] = 28;
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[192, 0, 2, 2]);
        p[16..20].copy_from_slice(&[192, 0, 2, 1]);
        p[25] = 8;
        p
    };
    let mut st = vec![0u8; MAX_HEADROOM + packet.len() + MAX_TAILROOM];
    st[MAX_HEADROOM..MAX_HEADROOM + packet.len()].copy_from_slice(&packet);
    let mut b = PacketBuf::new(&mut st[..], MAX_HEADROOM, packet.len()).unwrap();
    match to.process_outbound(T, &mut b) {
        Outbound::Protect { seq, .. } => Some(seq),
        _ => None,
    }
}

fn check_import(snap: &SaSnapshot, first: u64, last: u64) {
    let to = sad();
    let opts =
        ImportOptions::new(SeqRange::new(first, last)).sa(SaOptions::new().policy(PolicyId(1)));
    let Ok(id) = to.import_sa(T, snap, opts) else {
        return;
    };
    assert!(snap.to_params().is_ok());
    if SeqRange::new(first, last) == SeqRange::NONE {
        // Receive only (`SeqRange::NONE`): nothing goes out until a block is granted.
        assert_eq!(seal_one(&to), None, "a receive-only import sent a packet");
        assert_eq!(to.export_sa(T, id).unwrap().last_seq, snap.last_seq);
        return;
    }
    assert!(
        first > snap.last_seq,
        "a range the exporter may have used was accepted"
    );
    assert!(first >= 1 && first <= last, "an empty range was accepted");
    let again = to.export_sa(T, id).unwrap();
    if !snap.esn {
        assert!(
            first <= u64::from(u32::MAX),
            "a range beyond the 32-bit space was accepted"
        );
    }
    // The counter starts just below the range: nothing of it is used yet.
    let want_seq = first - 1;
    assert_eq!(again.last_seq, want_seq, "outbound counter");
    assert_eq!(again.used.age_ns, snap.used.age_ns.min(T.0), "age");
    let mut a = again.clone();
    a.last_seq = snap.last_seq;
    a.used.age_ns = snap.used.age_ns;
    assert_eq!(&a, snap, "the importer exports another SA");
    // The next packet it seals is past everything the exporter may have used.
    if let Some(seq) = seal_one(&to) {
        assert!(
            (first..=last).contains(&seq),
            "sequence number {seq} outside the owned range {first}..={last}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 0x80 != 0 {
        // Arbitrary JSON.
        let Ok(snap) = serde_json::from_slice::<SaSnapshot>(rest) else {
            return;
        };
        let json = serde_json::to_string(&snap).unwrap();
        let back: SaSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        let first = snap.last_seq.saturating_add(1 << 20);
        check_import(&snap, first, first.saturating_add(1 << 20));
        return;
    }
    // A real snapshot, then fuzzer-chosen changes.
    let from = sad();
    let id = from
        .add_sa(Instant::ZERO, &params(sel), SaOptions::new())
        .unwrap();
    let mut snap = from.export_sa(T, id).unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    assert_eq!(serde_json::from_str::<SaSnapshot>(&json).unwrap(), snap);
    let mut b = Bytes(rest);
    // The owned range: anywhere, so ranges at or below `last_seq` are tried too.
    let first = b.u64().unwrap_or(1 << 24) >> (sel >> 4);
    let span = b.u64().unwrap_or(1 << 20) >> (sel & 0x3f);
    while mutate(&mut snap, &mut b).is_some() {}
    check_import(&snap, first, first.saturating_add(span));
});
