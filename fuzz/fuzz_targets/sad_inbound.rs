//! `ipsec-sad` inbound processing and SPD lookup on arbitrary packets, against a SAD
//! with three SA pairs (ESP tunnel AES-GCM with ESN, ESP-in-UDP transport AES-CBC +
//! HMAC-SHA-256, AH transport HMAC-SHA1-96) and fuzzer-chosen policy rules.
//!
//! Properties:
//! - nothing panics;
//! - the SPD index (`Spd::lookup`) and `lookup_linear` agree with a first-match model
//!   written here, for the packet's selectors in both directions; a refused rule set
//!   names a rule that really is a duplicate or mixes address families;
//! - the inbound and outbound verdicts for plaintext follow that model (BYPASS only by a
//!   BYPASS rule that is the first match, `Unprotected` only for a PROTECT one,
//!   `PolicyDiscard` only for DISCARD or no match, `Acquire` only for PROTECT);
//! - a delivered packet is authentic and within its SA's selectors: in raw mode the ESP
//!   part must also open with a fresh `EspInbound` (or the packet with a fresh
//!   `AhInbound`) under the SA's keys; in sealed mode (a packet sealed by the peer SAD,
//!   then maybe one byte changed) the delivered packet carries the sent payload, and an
//!   unchanged packet is always delivered.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use ipsec_ah::{AhInbound, PacketBuf as AhBuf};
use ipsec_core::iana::{EncrId, IntegId, KeId};
use ipsec_core::ip::ipv4_checksum;
use ipsec_core::{
    ChildSaParams, Instant, IpProto, KeyMaterial, Lifetime, Mode, PacketBuf, SecurityProtocol, Spi,
    TrafficSelector, TsSet, UdpEncap,
};
use ipsec_crypto::suites;
use ipsec_esp::EspInbound;
use ipsec_sad::{
    Action, AddrRange, Direction, DropReason, FlowKey, Inbound, Outbound, PolicyRule, PortSel,
    PortValue, SaId, SaOptions, SaTemplate, Sad, SadConfig, Selector, Spd, SpdError, MAX_HEADROOM,
    MAX_TAILROOM,
};
use libfuzzer_sys::fuzz_target;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const NET_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 0);
const NET_B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 0);
const T: Instant = Instant(1_000_000_000);

/// One SA pair, as seen from B (the node under test).
struct SaSpec {
    protocol: SecurityProtocol,
    mode: Mode,
    spi_to_b: u32,
    spi_to_a: u32,
    encr: Option<(EncrId, u16)>,
    integ: IntegId,
    encr_len: usize,
    integ_len: usize,
    udp: bool,
    esn: bool,
}

const SAS: [SaSpec; 3] = [
    SaSpec {
        protocol: SecurityProtocol::Esp,
        mode: Mode::Tunnel,
        spi_to_b: 0x1000,
        spi_to_a: 0x1001,
        encr: Some((EncrId::ENCR_AES_GCM_16, 128)),
        integ: IntegId::NONE,
        encr_len: 20,
        integ_len: 0,
        udp: false,
        esn: true,
    },
    SaSpec {
        protocol: SecurityProtocol::Esp,
        mode: Mode::Transport,
        spi_to_b: 0x2000,
        spi_to_a: 0x2001,
        encr: Some((EncrId::ENCR_AES_CBC, 128)),
        integ: IntegId::AUTH_HMAC_SHA2_256_128,
        encr_len: 16,
        integ_len: 32,
        udp: true,
        esn: false,
    },
    SaSpec {
        protocol: SecurityProtocol::Ah,
        mode: Mode::Transport,
        spi_to_b: 0x3000,
        spi_to_a: 0x3001,
        encr: None,
        integ: IntegId::AUTH_HMAC_SHA1_96,
        encr_len: 0,
        integ_len: 20,
        udp: false,
        esn: true,
    },
];

fn keys(s: &SaSpec, towards_b: bool) -> KeyMaterial {
    let seed = if towards_b { 0x40u8 } else { 0x80 } ^ (s.spi_to_b >> 12) as u8;
    let e: Vec<u8> = (0..s.encr_len).map(|i| seed ^ i as u8).collect();
    let i: Vec<u8> = (0..s.integ_len)
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    KeyMaterial::new(&e, &i).unwrap()
}

/// The (local, remote) selectors of SA `s` at B (`at_b`) or A.
fn selectors(s: &SaSpec, at_b: bool) -> (TrafficSelector, TrafficSelector) {
    let (na, nb) = match s.mode {
        Mode::Tunnel => (
            TrafficSelector::from_prefix(NET_A.into(), 24).unwrap(),
            TrafficSelector::from_prefix(NET_B.into(), 24).unwrap(),
        ),
        Mode::Transport => (
            TrafficSelector::host(A.into()),
            TrafficSelector::host(B.into()),
        ),
    };
    if at_b {
        (nb, na)
    } else {
        (na, nb)
    }
}

fn params(s: &SaSpec, at_b: bool) -> ChildSaParams {
    let (l, r) = selectors(s, at_b);
    let (local, remote) = if at_b { (B, A) } else { (A, B) };
    let (in_spi, out_spi) = if at_b {
        (s.spi_to_b, s.spi_to_a)
    } else {
        (s.spi_to_a, s.spi_to_b)
    };
    {
        let mut p = ChildSaParams::esp(
            local.into(),
            remote.into(),
            ipsec_core::iana::EncrId(0),
            s.encr.map_or(0, |e| e.1),
            (Spi(in_spi), keys(s, at_b)),
            (Spi(out_spi), keys(s, !at_b)),
        )
        .with_mode(s.mode)
        .with_integ(s.integ)
        .with_ke(KeId::NONE)
        .with_esn(s.esn)
        .with_selectors(TsSet::one(l), TsSet::one(r))
        .with_udp_encap(s.udp.then_some(UdpEncap::DEFAULT))
        .with_lifetime(Lifetime::UNLIMITED)
        .with_replay_window(64);
        p.protocol = s.protocol;
        p.encr = s.encr.map(|e| e.0);
        p
    }
}

fn sad() -> Sad {
    Sad::new(
        &ipsec_crypto_rustcrypto::PROVIDER,
        SadConfig::default().shards(4),
    )
    .unwrap()
}

// ---- the first-match model ----

fn addr_in(r: &AddrRange, a: IpAddr) -> bool {
    match (r, a) {
        (AddrRange::Any, _) => true,
        (AddrRange::V4 { start, end }, IpAddr::V4(a)) => {
            u32::from(*start) <= u32::from(a) && u32::from(a) <= u32::from(*end)
        }
        (AddrRange::V6 { start, end }, IpAddr::V6(a)) => {
            u128::from(*start) <= u128::from(a) && u128::from(a) <= u128::from(*end)
        }
        _ => false,
    }
}

fn port_in(p: &PortSel, v: PortValue) -> bool {
    match (p, v) {
        (PortSel::Any, _) => true,
        (PortSel::Range { start, end }, PortValue::Port(x)) => *start <= x && x <= *end,
        (PortSel::Opaque, PortValue::Opaque) => true,
        _ => false,
    }
}

fn model(rules: &[PolicyRule], k: &FlowKey) -> Option<usize> {
    rules.iter().position(|r| {
        let s = &r.selector;
        k.local.is_ipv4() == k.remote.is_ipv4()
            && addr_in(&s.local, k.local)
            && addr_in(&s.remote, k.remote)
            && (s.protocol == IpProto::ANY || s.protocol == k.protocol)
            && port_in(&s.local_port, k.local_port)
            && port_in(&s.remote_port, k.remote_port)
    })
}

fn addr(b: u8) -> AddrRange {
    let len = 16 + (b >> 3) % 17;
    match b % 6 {
        0 => AddrRange::Any,
        1 => AddrRange::prefix(NET_A.into(), len).unwrap(),
        2 => AddrRange::prefix(NET_B.into(), len).unwrap(),
        3 => AddrRange::host(if b & 8 != 0 { A } else { B }.into()),
        4 => AddrRange::ANY_V4,
        _ => AddrRange::ANY_V6,
    }
}

fn port(b: u8) -> PortSel {
    let v = u16::from(b >> 2);
    match b % 4 {
        0 => PortSel::Any,
        1 => PortSel::Opaque,
        2 => PortSel::port([500, 4500, 53, v][usize::from(v % 4)]),
        _ => PortSel::Range {
            start: v * 16,
            end: v * 16 + v,
        },
    }
}

fn rule(i: usize, r: &[u8; 6]) -> PolicyRule {
    let protocol = [
        IpProto::ANY,
        IpProto::UDP,
        IpProto::TCP,
        IpProto::ICMP,
        IpProto::ESP,
        IpProto::AH,
    ][usize::from(r[2] % 6)];
    let action = match r[5] % 3 {
        0 => Action::Bypass,
        1 => Action::Discard,
        _ => Action::Protect(SaTemplate::esp_transport()),
    };
    let id = if r[5] & 0x80 != 0 { 1 } else { i as u32 + 1 };
    PolicyRule::new(
        id,
        Selector {
            local: addr(r[0]),
            remote: addr(r[1]),
            protocol,
            local_port: port(r[3]),
            remote_port: port(r[4]),
        },
        action,
    )
}

/// Checks the SPD against the model for the selectors of `packet`, both directions.
fn check_spd(spd: &Spd, rules: &[PolicyRule], packet: &[u8]) {
    for dir in [Direction::Inbound, Direction::Outbound] {
        let Ok(k) = FlowKey::parse(packet, dir) else {
            continue;
        };
        let want = model(rules, &k);
        assert_eq!(
            spd.lookup(&k),
            want,
            "index disagrees with the model: {k:?}"
        );
        assert_eq!(spd.lookup_linear(&k), want, "linear disagrees: {k:?}");
    }
}

fn first(rules: &[PolicyRule], packet: &[u8], dir: Direction) -> Option<PolicyRule> {
    let k = FlowKey::parse(packet, dir).ok()?;
    model(rules, &k).map(|i| rules[i])
}

/// Runs `packet` through `sad` inbound; returns the verdict and the resulting body.
fn inbound(sad: &Sad, packet: &[u8]) -> (Inbound, Vec<u8>) {
    let mut s = vec![0u8; MAX_HEADROOM + packet.len() + MAX_TAILROOM];
    s[MAX_HEADROOM..MAX_HEADROOM + packet.len()].copy_from_slice(packet);
    let mut b = PacketBuf::new(&mut s[..], MAX_HEADROOM, packet.len()).unwrap();
    let v = sad.process_inbound(T, &mut b);
    (v, b.body().to_vec())
}

/// Whether some ESP part of `packet` (at an offset holding the SPI, to the end of the
/// packet or of its IP length) opens with a fresh receiver of SA `s` at B.
fn esp_opens(s: &SaSpec, packet: &[u8]) -> bool {
    let (encr, bits) = s.encr.unwrap();
    let e = suites::encr(encr, bits).unwrap();
    let i = suites::integ(s.integ);
    let spi = s.spi_to_b.to_be_bytes();
    let mut ends = vec![packet.len()];
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 4 => {
            ends.push(usize::from(u16::from_be_bytes([packet[2], packet[3]])))
        }
        Some(6) if packet.len() >= 6 => {
            ends.push(40 + usize::from(u16::from_be_bytes([packet[4], packet[5]])))
        }
        _ => {}
    }
    for end in ends.into_iter().filter(|&e| e <= packet.len()) {
        for off in 0..end.saturating_sub(3) {
            if packet[off..off + 4] != spi {
                continue;
            }
            let mut inb = EspInbound::new(
                &ipsec_crypto_rustcrypto::PROVIDER,
                Spi(s.spi_to_b),
                e,
                i,
                &keys(s, true),
                s.esn,
                64,
            )
            .unwrap();
            let mut v = packet[off..end].to_vec();
            let len = v.len();
            let mut b = PacketBuf::new(&mut v[..], 0, len).unwrap();
            if inb.open(&mut b, ipsec_esp::OpenOptions::new()).is_ok() {
                return true;
            }
        }
    }
    false
}

fn ah_opens(s: &SaSpec, packet: &[u8]) -> bool {
    let d = ipsec_ah::integ::by_id(s.integ).unwrap();
    let mut inb = AhInbound::new(
        &ipsec_crypto_rustcrypto::PROVIDER,
        Spi(s.spi_to_b),
        d,
        &keys(s, true),
        s.esn,
        64,
    )
    .unwrap();
    let mut v = vec![0u8; 64 + packet.len()];
    v[64..].copy_from_slice(packet);
    let mut b = AhBuf::new(&mut v[..], 64, packet.len()).unwrap();
    match s.mode {
        Mode::Transport => inb
            .open_transport(&mut b, ipsec_ah::OpenOptions::new())
            .is_ok(),
        Mode::Tunnel => inb
            .open_tunnel(&mut b, ipsec_ah::OpenOptions::new())
            .is_ok(),
    }
}

/// An IPv4 packet from `src` to `dst` (UDP or TCP) with ports and payload.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, tcp: bool, payload: &[u8]) -> Vec<u8> {
    let l4 = if tcp { 20 } else { 8 };
    let total = 20 + l4 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = if tcp { 6 } else { 17 };
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&5678u16.to_be_bytes());
    if tcp {
        p[32] = 0x50;
    } else {
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    p[20 + l4..].copy_from_slice(payload);
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&n, mut rest)) = rest.split_first() else {
        return;
    };
    let mut rules = Vec::new();
    for i in 0..usize::from(n % 8) {
        let Some((r, tail)) = rest.split_first_chunk::<6>() else {
            return;
        };
        rules.push(rule(i, r));
        rest = tail;
    }
    // The SAD under test (node B): SAs installed inbound-only, the fuzzer's SPD both ways.
    let b = sad();
    let mut ids: Vec<SaId> = Vec::new();
    for s in &SAS {
        ids.push(
            b.add_sa(Instant::ZERO, &params(s, true), SaOptions::new())
                .unwrap(),
        );
    }
    let spd = match Spd::new(rules.clone()) {
        Ok(spd) => spd,
        Err(SpdError::DuplicateId(id)) => {
            assert!(rules.iter().filter(|r| r.id == id).count() >= 2);
            rules.clear();
            Spd::empty()
        }
        Err(SpdError::InvalidSelector(id)) => {
            let r = rules.iter().find(|r| r.id == id).unwrap();
            let fam = |a: &AddrRange| match a {
                AddrRange::Any => None,
                AddrRange::V4 { .. } => Some(4),
                AddrRange::V6 { .. } => Some(6),
            };
            let (l, m) = (fam(&r.selector.local), fam(&r.selector.remote));
            assert!(l.is_some() && m.is_some() && l != m, "{r:?}");
            rules.clear();
            Spd::empty()
        }
        Err(e) => panic!("{e:?}"),
    };
    b.set_inbound_spd(spd.clone());
    b.set_outbound_spd(spd.clone());

    let sealed = sel & 0x80 != 0;
    let (packet, sent) = if sealed {
        // The peer (A) seals a packet on one of the SAs; one byte may change on the way.
        let Some((ctl, payload)) = rest.split_first_chunk::<4>() else {
            return;
        };
        let which = usize::from(ctl[0]) % SAS.len();
        let s = &SAS[which];
        let a = sad();
        let t = match (s.protocol, s.mode) {
            (_, Mode::Tunnel) => SaTemplate::esp_tunnel(A.into(), B.into()),
            (SecurityProtocol::Esp, _) => SaTemplate::esp_transport(),
            (SecurityProtocol::Ah, _) => SaTemplate {
                protocol: SecurityProtocol::Ah,
                mode: Mode::Transport,
                tunnel: None,
            },
        };
        let (l, r) = selectors(s, false);
        let range = |t: TrafficSelector| AddrRange::range(t.start_addr, t.end_addr).unwrap();
        a.set_outbound_spd(
            Spd::new(vec![PolicyRule::new(
                1,
                Selector::between(range(l), range(r)),
                Action::Protect(t),
            )])
            .unwrap(),
        );
        a.add_sa(
            Instant::ZERO,
            &params(s, false),
            SaOptions::new().policy(ipsec_sad::PolicyId(1)),
        )
        .unwrap();
        let inner = match s.mode {
            Mode::Tunnel => ipv4(
                Ipv4Addr::new(10, 0, 1, ctl[1]),
                Ipv4Addr::new(10, 0, 2, ctl[2]),
                false,
                payload,
            ),
            Mode::Transport => ipv4(A, B, s.protocol == SecurityProtocol::Ah, payload),
        };
        let mut st = vec![0u8; MAX_HEADROOM + inner.len() + MAX_TAILROOM];
        st[MAX_HEADROOM..MAX_HEADROOM + inner.len()].copy_from_slice(&inner);
        let mut buf = PacketBuf::new(&mut st[..], MAX_HEADROOM, inner.len()).unwrap();
        let o = a.process_outbound(T, &mut buf);
        if !matches!(o, Outbound::Protect { .. }) {
            // Too large for one IPv4 packet, say.
            assert!(matches!(o, Outbound::Drop(DropReason::TooLarge)), "{o:?}");
            return;
        }
        let mut wire = buf.body().to_vec();
        let pos = usize::from(ctl[1]) * 256 + usize::from(ctl[2]);
        let pos = pos % wire.len();
        wire[pos] ^= ctl[3];
        (wire, Some((which, inner, ctl[3] == 0)))
    } else {
        (rest.to_vec(), None)
    };

    check_spd(&spd, &rules, &packet);
    let (verdict, body) = inbound(&b, &packet);
    match verdict {
        Inbound::Bypass(id) => {
            let r = first(&rules, &packet, Direction::Inbound).expect("bypass without a rule");
            assert_eq!((r.id, r.action), (id, Action::Bypass));
            assert_eq!(body, packet);
        }
        Inbound::Drop(DropReason::Unprotected) => {
            let r = first(&rules, &packet, Direction::Inbound).expect("no rule");
            assert!(matches!(r.action, Action::Protect(_)));
        }
        Inbound::Drop(DropReason::PolicyDiscard) => {
            let r = first(&rules, &packet, Direction::Inbound);
            assert!(r.is_none_or(|r| r.action == Action::Discard), "{r:?}");
        }
        Inbound::Deliver { sa, .. } => {
            let which = ids.iter().position(|&i| i == sa).unwrap();
            let s = &SAS[which];
            if let Some((w, inner, _)) = &sent {
                // Only the SA it was sealed on, and the payload that was sent.
                assert_eq!(which, *w);
                assert_eq!(body.len(), inner.len());
                assert_eq!(body[20..], inner[20..], "a changed payload was delivered");
            } else {
                let ok = match s.protocol {
                    SecurityProtocol::Esp => esp_opens(s, &packet),
                    SecurityProtocol::Ah => ah_opens(s, &packet),
                };
                assert!(
                    ok,
                    "delivered a packet a fresh receiver does not authenticate"
                );
            }
            // Within the SA's selectors (RFC 4301 §5.2 step 4).
            let k = FlowKey::parse(&body, Direction::Inbound).unwrap();
            let (l, r) = selectors(s, true);
            assert!(
                l.contains_addr(k.local) && r.contains_addr(k.remote),
                "{k:?}"
            );
        }
        Inbound::Drop(_) => {}
        _ => {}
    }
    if let Some((_, _, true)) = sent {
        assert!(
            matches!(verdict, Inbound::Deliver { .. }),
            "an authentic packet was refused: {verdict:?}"
        );
    }
    if sealed {
        return;
    }
    // The same packet outbound (B sends it): the SPD decides, no SA is bound.
    let mut st = vec![0u8; MAX_HEADROOM + packet.len() + MAX_TAILROOM];
    st[MAX_HEADROOM..MAX_HEADROOM + packet.len()].copy_from_slice(&packet);
    let mut buf = PacketBuf::new(&mut st[..], MAX_HEADROOM, packet.len()).unwrap();
    let o = b.process_outbound(T, &mut buf);
    let r = first(&rules, &packet, Direction::Outbound);
    match o {
        Outbound::Bypass(id) => assert_eq!(r.map(|r| (r.id, r.action)), Some((id, Action::Bypass))),
        Outbound::Discard(None) => assert!(r.is_none()),
        Outbound::Discard(Some(id)) => {
            assert_eq!(r.map(|r| (r.id, r.action)), Some((id, Action::Discard)))
        }
        Outbound::Acquire(a) => {
            assert_eq!(r.map(|r| r.id), Some(a.policy));
            assert!(matches!(r.map(|r| r.action), Some(Action::Protect(_))));
        }
        Outbound::Protect { .. } => panic!("protected without a bound SA"),
        _ => {}
    }
});
