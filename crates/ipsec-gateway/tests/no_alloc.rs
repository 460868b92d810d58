//! The data plane's per-packet path allocates nothing (docs/style.md §7): after a
//! warm-up, a thousand packets each way between two gateways on 127.0.0.1 make no heap
//! allocation in the whole process. The packet devices are UDP sockets (which do not
//! allocate either), so that the test's own side allocates nothing in the window. A
//! plain `main` (no libtest threads), since the counters are process-wide.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // tests print their figures

use std::alloc::System;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ipsec::core::iana::{EncrId, IntegId, KeId};
use ipsec::core::ip::ipv4_checksum;
use ipsec::core::{
    ChildSaParams, KeyMaterial, Lifetime, Mode, Spi, TrafficSelector, TsSet, UdpEncap,
};
use ipsec::sad::{
    Action, AddrRange, PolicyId, PolicyRule, SaOptions, SaTemplate, Sad, SadConfig, Selector, Spd,
};
use ipsec_gateway::dataplane::{now, Dataplane, DataplaneConfig, PacketDevice};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A packet device that is a connected UDP socket: the test's socket at the other end
/// plays the host's network stack.
struct UdpDevice(UdpSocket);

impl PacketDevice for UdpDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
    fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.0.send(packet)
    }
}

/// A device and the test's socket connected to it.
fn device() -> (Arc<dyn PacketDevice>, UdpSocket) {
    let dev = UdpSocket::bind((LO, 0)).unwrap();
    let host = UdpSocket::bind((LO, 0)).unwrap();
    dev.connect(host.local_addr().unwrap()).unwrap();
    host.connect(dev.local_addr().unwrap()).unwrap();
    dev.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (Arc::new(UdpDevice(dev)), host)
}

fn params(me: SocketAddr, peer: SocketAddr, at_a: bool) -> ChildSaParams {
    let (spi_in, spi_out) = if at_a { (0x200, 0x100) } else { (0x100, 0x200) };
    let key = |s: u8| KeyMaterial::new(&[s; 20], &[]).unwrap();
    let ts = |n: [u8; 4]| TsSet::one(TrafficSelector::from_prefix(IpAddr::from(n), 24).unwrap());
    let (l, r) = if at_a {
        ([10, 1, 0, 0], [10, 2, 0, 0])
    } else {
        ([10, 2, 0, 0], [10, 1, 0, 0])
    };
    ChildSaParams::esp(
        me.ip(),
        peer.ip(),
        EncrId::ENCR_AES_GCM_16,
        128,
        (Spi(spi_in), key(if at_a { 2 } else { 1 })),
        (Spi(spi_out), key(if at_a { 1 } else { 2 })),
    )
    .with_mode(Mode::Tunnel)
    .with_integ(IntegId::NONE)
    .with_ke(KeId::NONE)
    .with_esn(true)
    .with_selectors(ts(l), ts(r))
    .with_udp_encap(Some(UdpEncap {
        local_port: me.port(),
        remote_port: peer.port(),
    }))
    .with_lifetime(Lifetime::UNLIMITED)
    .with_replay_window(1024)
}

fn policy(l: [u8; 4], r: [u8; 4]) -> Spd {
    let p = |n: [u8; 4]| AddrRange::prefix(IpAddr::from(n), 24).unwrap();
    Spd::new(vec![PolicyRule::new(
        1,
        Selector::between(p(l), p(r)),
        Action::Protect(SaTemplate::esp_tunnel(LO, LO)),
    )])
    .unwrap()
}

fn packet(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut p = vec![0u8; 28 + len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((28 + len) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    p
}

/// Sends `p` into one gateway's device and receives it from the other's, `n` times.
fn lockstep(into: &UdpSocket, out_of: &UdpSocket, p: &[u8], n: usize, buf: &mut [u8]) {
    for _ in 0..n {
        into.send(p).unwrap();
        let k = out_of.recv(buf).unwrap();
        assert!(buf[..k] == *p);
    }
}

fn main() {
    the_per_packet_path_allocates_nothing();
    println!("no_alloc: 1 passed, 0 failed");
}

fn the_per_packet_path_allocates_nothing() {
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let sad = Arc::new(Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::default()).unwrap());
        let (dev, host) = device();
        let (tx, rx) = mpsc::channel();
        let cfg = DataplaneConfig::new(vec![LO]).port(0).workers(1);
        let dp = Dataplane::start_with_device(sad.clone(), cfg, vec![dev], tx).unwrap();
        nodes.push((sad, dp, host, rx));
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    let (aa, ba) = (a.1.local_addrs()[0], b.1.local_addrs()[0]);
    a.0.set_outbound_spd(policy([10, 1, 0, 0], [10, 2, 0, 0]));
    b.0.set_outbound_spd(policy([10, 2, 0, 0], [10, 1, 0, 0]));
    let opts = || SaOptions::new().policy(PolicyId(1));
    a.0.add_sa(now(), &params(aa, ba, true), opts()).unwrap();
    b.0.add_sa(now(), &params(ba, aa, false), opts()).unwrap();

    let ab = packet([10, 1, 0, 5], [10, 2, 0, 9], 1000);
    let back = packet([10, 2, 0, 9], [10, 1, 0, 5], 100);
    let mut buf = vec![0u8; 2048];
    // Warm-up: per-thread state (arc-swap's debt slots) is made on first use.
    lockstep(&a.2, &b.2, &ab, 100, &mut buf);
    lockstep(&b.2, &a.2, &back, 100, &mut buf);

    let region = Region::new(GLOBAL);
    lockstep(&a.2, &b.2, &ab, 1000, &mut buf);
    lockstep(&b.2, &a.2, &back, 1000, &mut buf);
    let c = region.change();
    let allocs = c.allocations + c.reallocations;
    println!("allocations for 2000 packets through two gateways: {allocs}");
    assert_eq!(allocs, 0);
    // A worker counts a packet after passing it on: let the last count land.
    for _ in 0..500 {
        let s = a.1.stats();
        if (s.esp_out.packets, s.tun_out.packets) == (1100, 1100) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("counters: {:?}", a.1.stats());
}
