//! `ipsec demo`: a manually keyed ESP-in-UDP SA pair between two loopback sockets.
//!
//! Like `ip xfrm state add` with fixed keys: both sides get the same two SAs (A→B and
//! B→A). A sends IP packets of mixed sizes through the tunnel, B opens each one, checks
//! it, and answers through the reverse SA. Then, unless `--no-faults`, A injects a few
//! bad datagrams (a replay, a forged ICV, an unknown SPI, a truncated packet) and a NAT
//! keepalive, so the drop counters show each reason. Everything that crosses the wire
//! can be written to a pcap, and the SAs to a Wireshark `esp_sa` key table.
//!
//! Without `--manual`, [`run`] hands over to the IKEv2 demo (`ikedemo`, driven by the
//! gateway's IKE driver with the SAD as its data plane); what both share is in
//! `tunnel`. The manual demo has no IKE and keeps its SAs by hand.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipsec::core::{KeyMaterial, Spi};
use ipsec::crypto::proposal::{Proposal, ProposalKind};
use ipsec::crypto::suites::{EncrDesc, IntegDesc};
use ipsec::crypto::CryptoProvider;
use ipsec::esp::{EspInbound, EspOutbound};

use crate::capture::PcapOut;
use crate::keyfile::esp_sa_line;
pub use crate::tunnel::DemoArgs;
use crate::tunnel::{
    bind_pair, inject_faults, report, traffic, v4, verdict, write_keys, Bufs, KeyFiles, Peer,
    Plane, Stats, Wire, TUNNEL_A, TUNNEL_B,
};
use crate::ModeArg;

struct Sa {
    encr: &'static EncrDesc,
    integ: Option<&'static IntegDesc>,
    spi: Spi,
    encr_key: Vec<u8>,
    integ_key: Vec<u8>,
}

impl Sa {
    fn new(
        p: &CryptoProvider,
        encr: &'static EncrDesc,
        integ: Option<&'static IntegDesc>,
    ) -> Result<Sa, String> {
        let mut spi = [0u8; 4];
        let mut ek = vec![0u8; encr.keymat_len()];
        let mut ik = vec![0u8; integ.map_or(0, |i| i.key_len)];
        loop {
            p.secure_random.fill(&mut spi).map_err(|e| e.to_string())?;
            if !Spi::from_be_bytes(spi).is_reserved() {
                break;
            }
        }
        p.secure_random.fill(&mut ek).map_err(|e| e.to_string())?;
        p.secure_random.fill(&mut ik).map_err(|e| e.to_string())?;
        Ok(Sa {
            encr,
            integ,
            spi: Spi::from_be_bytes(spi),
            encr_key: ek,
            integ_key: ik,
        })
    }

    fn keys(&self) -> KeyMaterial {
        // Lengths come from the suite tables and always fit.
        KeyMaterial::new(&self.encr_key, &self.integ_key).unwrap_or_else(|_| unreachable!())
    }
}

/// Runs the demo: with IKEv2 (the default) or manually keyed.
pub fn run(args: &DemoArgs) -> Result<(), String> {
    let keys = KeyFiles::new(args)?;
    if args.manual {
        manual(args, &keys)
    } else {
        crate::ikedemo::run(args, &keys)
    }
}

/// The manually keyed demo.
fn manual(args: &DemoArgs, keys: &KeyFiles) -> Result<(), String> {
    let provider = args.backend.provider();
    let prop =
        Proposal::parse(ProposalKind::Esp, &args.suite).map_err(|e| format!("--suite: {e}"))?;
    let encr = *prop
        .encr
        .first()
        .ok_or("--suite: no encryption algorithm")?;
    let integ = prop.integ.first().copied();
    if !provider.supports_encr(encr) {
        return Err(format!(
            "{} is not supported by the {} provider",
            encr.token, provider.name
        ));
    }
    let transport = args.mode == ModeArg::Transport;
    let (sa, sb) = bind_pair()?;
    for s in [&sa, &sb] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
    }
    let (addr_a, addr_b) = (v4(&sa)?, v4(&sb)?);
    let ab = Sa::new(provider, encr, integ)?;
    let ba = Sa::new(provider, encr, integ)?;
    let esp_err = |e: ipsec::esp::SaError| format!("SA setup: {e}");
    let mk_in = |s: &Sa| {
        EspInbound::new(
            provider,
            s.spi,
            encr,
            integ,
            &s.keys(),
            args.esn,
            args.replay_window,
        )
        .map_err(esp_err)
    };
    let mk_out = |s: &Sa| {
        EspOutbound::new(provider, s.spi, encr, integ, &s.keys(), args.esn).map_err(esp_err)
    };
    let mut a = Peer {
        name: "A",
        sock: sa,
        addr: addr_a,
        plane: Plane::Manual {
            out: Some(mk_out(&ab)?),
            inbound: BTreeMap::from([(ba.spi.0, mk_in(&ba)?)]),
        },
        stats: Stats::default(),
    };
    let mut b = Peer {
        name: "B",
        sock: sb,
        addr: addr_b,
        plane: Plane::Manual {
            out: Some(mk_out(&ba)?),
            inbound: BTreeMap::from([(ab.spi.0, mk_in(&ab)?)]),
        },
        stats: Stats::default(),
    };
    let mut wire = Wire {
        pcap: args.pcap.as_deref().map(PcapOut::create).transpose()?,
    };

    let backend = provider.encr_backend(encr).unwrap_or("?");
    let mode = if transport { "transport" } else { "tunnel" };
    outln!("ipsec demo: manually keyed ESP-in-UDP (RFC 3948), {mode} mode, over loopback");
    outln!(
        "  suite   {}{} [{backend}]   ESN {}   replay window {}",
        encr.token,
        integ.map(|i| format!("-{}", i.token)).unwrap_or_default(),
        if args.esn { "on" } else { "off" },
        if args.replay_window == 0 {
            "off".to_string()
        } else {
            args.replay_window.to_string()
        },
    );
    outln!("  SA A->B spi {}  {addr_a} -> {addr_b}", ab.spi);
    outln!("  SA B->A spi {}  {addr_b} -> {addr_a}", ba.spi);
    if transport {
        outln!(
            "  traffic {} <-> {} (transport: the packets' own addresses), UDP and ICMP echo",
            addr_a.ip(),
            addr_b.ip()
        );
    } else {
        outln!("  traffic {TUNNEL_A} <-> {TUNNEL_B} inside the tunnel, UDP and ICMP echo");
    }

    let mut bufs = Bufs::new();
    let started = Instant::now();
    let replayable = traffic(&mut a, &mut b, 0, args.count, args, &mut bufs, &mut wire)?;
    let elapsed = started.elapsed();
    if !args.no_faults {
        inject_faults(
            &mut a,
            &mut b,
            replayable.as_deref(),
            args.count,
            &mut bufs,
            &mut wire,
        )?;
    }
    report(&a, &b, elapsed, args.count, !args.no_faults);
    if let Some(k) = &keys.esp {
        let rows: Vec<String> = [(&ab, addr_a, addr_b), (&ba, addr_b, addr_a)]
            .iter()
            .map(|(s, from, to)| {
                esp_sa_line(
                    &from.ip().to_string(),
                    &to.ip().to_string(),
                    s.spi.0,
                    s.encr,
                    &s.encr_key,
                    s.integ,
                    &s.integ_key,
                )
            })
            .collect();
        write_keys(k, &rows)?;
    }
    if let Some(p) = &args.pcap {
        outln!(
            "capture {} (UDP 4500 is decoded as ESP-in-UDP)",
            p.display()
        );
    }
    verdict(&a, &b, args.count)
}
