//! The data plane end to end on 127.0.0.1 without root: two gateways A and B, each a
//! `Sad` and a `Dataplane` on in-memory packet devices (channels instead of TUN), with
//! a matching ESP-in-UDP SA pair (AES-GCM-128, tunnel mode, 10.1.0.0/24 <->
//! 10.2.0.0/24) between their NAT-T sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their figures

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipsec::core::iana::{EncrId, IntegId, KeId};
use ipsec::core::ip::ipv4_checksum;
use ipsec::core::{
    ChildSaParams, KeyMaterial, Lifetime, Mode, Spi, TrafficSelector, TsSet, UdpEncap,
};
use ipsec::sad::{
    Action, AddrRange, DropReason, Event, PolicyId, PolicyRule, SaOptions, SaTemplate, Sad,
    SadConfig, Selector, Spd,
};
use ipsec_gateway::dataplane::{
    now, Dataplane, DataplaneConfig, DataplaneDrop, PacketDevice, ToControl,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const NET_A: &str = "10.1.0.0";
const NET_B: &str = "10.2.0.0";
/// How long a test waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(5);

/// A packet device made of two channels: what the test injects comes out of `recv`,
/// what the data plane writes goes to the test.
struct ChanDevice {
    from_test: Mutex<Receiver<Vec<u8>>>,
    to_test: Mutex<Sender<Vec<u8>>>,
}

impl PacketDevice for ChanDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let rx = self.from_test.lock().unwrap();
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(p) => {
                buf[..p.len()].copy_from_slice(&p);
                Ok(p.len())
            }
            Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
            Err(RecvTimeoutError::Disconnected) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.to_test
            .lock()
            .unwrap()
            .send(packet.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(packet.len())
    }
}

/// A device that hands the data plane a whole batch per `recv_multiple` (as a TUN
/// device with offload does after splitting a large TCP segment) and passes on the
/// batches `send_multiple` gets.
struct BatchDevice {
    from_test: Mutex<Receiver<Vec<Vec<u8>>>>,
    to_test: Mutex<Sender<Vec<Vec<u8>>>>,
}

impl PacketDevice for BatchDevice {
    fn recv(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn send(&self, _packet: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn recv_multiple(
        &self,
        _scratch: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        let rx = self.from_test.lock().unwrap();
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(batch) => {
                assert!(batch.len() <= bufs.len());
                for ((p, b), s) in batch.iter().zip(bufs.iter_mut()).zip(sizes.iter_mut()) {
                    b[offset..offset + p.len()].copy_from_slice(p);
                    *s = p.len();
                }
                Ok(batch.len())
            }
            Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
            Err(RecvTimeoutError::Disconnected) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn send_multiple(&self, bufs: &mut [Vec<u8>], offset: usize) -> io::Result<()> {
        let batch = bufs.iter().map(|b| b[offset..].to_vec()).collect();
        self.to_test
            .lock()
            .unwrap()
            .send(batch)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// One gateway: its SAD, data plane, and the test's ends of its device and control
/// channel.
struct Node {
    sad: Arc<Sad>,
    dp: Dataplane,
    inject: Sender<Vec<u8>>,
    delivered: Receiver<Vec<u8>>,
    control: Receiver<ToControl>,
}

impl Node {
    fn start(workers: usize) -> Node {
        let sad =
            Arc::new(Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::default().shards(16)).unwrap());
        let (inject, from_test) = mpsc::channel();
        let (to_test, delivered) = mpsc::channel();
        let dev: Arc<dyn PacketDevice> = Arc::new(ChanDevice {
            from_test: Mutex::new(from_test),
            to_test: Mutex::new(to_test),
        });
        let (tx, control) = mpsc::channel();
        let cfg = DataplaneConfig::new(vec![LO]).port(0).workers(workers);
        let dp = Dataplane::start_with_device(sad.clone(), cfg, vec![dev; workers], tx).unwrap();
        Node {
            sad,
            dp,
            inject,
            delivered,
            control,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.dp.local_addrs()[0]
    }
}

fn keys(seed: u8) -> KeyMaterial {
    let k: Vec<u8> = (0..20u8)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect();
    KeyMaterial::new(&k, &[]).unwrap()
}

fn ts(net: &str) -> TsSet {
    TsSet::one(TrafficSelector::from_prefix(net.parse().unwrap(), 24).unwrap())
}

/// The SA of `local_net` behind `me` towards `remote_net` behind `peer`.
fn params(me: SocketAddr, peer: SocketAddr, at_a: bool) -> ChildSaParams {
    let (spi_in, spi_out) = if at_a { (0x200, 0x100) } else { (0x100, 0x200) };
    let (k_in, k_out) = if at_a { (2, 1) } else { (1, 2) };
    let (l, r) = if at_a { (NET_A, NET_B) } else { (NET_B, NET_A) };
    ChildSaParams::esp(
        me.ip(),
        peer.ip(),
        EncrId::ENCR_AES_GCM_16,
        128,
        (Spi(spi_in), keys(k_in)),
        (Spi(spi_out), keys(k_out)),
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

/// PROTECT between the nets (rule 1), DISCARD the rest (rule 2).
fn policy(at_a: bool) -> Spd {
    let (l, r) = if at_a { (NET_A, NET_B) } else { (NET_B, NET_A) };
    let p = |n: &str| AddrRange::prefix(n.parse().unwrap(), 24).unwrap();
    Spd::new(vec![
        PolicyRule::new(
            1,
            Selector::between(p(l), p(r)),
            Action::Protect(SaTemplate::esp_tunnel(LO, LO)),
        ),
        PolicyRule::new(2, Selector::ANY, Action::Discard),
    ])
    .unwrap()
}

/// Gateways A and B with the SA pair installed.
fn pair(workers: usize) -> (Node, Node) {
    let a = Node::start(workers);
    let b = Node::start(workers);
    a.sad.set_outbound_spd(policy(true));
    b.sad.set_outbound_spd(policy(false));
    let opts = || SaOptions::new().policy(PolicyId(1));
    a.sad
        .add_sa(now(), &params(a.addr(), b.addr(), true), opts())
        .unwrap();
    b.sad
        .add_sa(now(), &params(b.addr(), a.addr(), false), opts())
        .unwrap();
    (a, b)
}

/// An IPv4 UDP packet from `src` to `dst` with `len` payload bytes, numbered `n`.
fn packet(src: &str, dst: &str, len: usize, n: u16) -> Vec<u8> {
    let total = 28 + len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&n.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&6000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = (i as u8) ^ (n as u8);
    }
    p
}

/// Receives `n` packets from `rx`, sorted (workers may reorder them).
fn take(rx: &Receiver<Vec<u8>>, n: usize) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = (0..n).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    got.sort();
    got
}

#[test]
fn packets_cross_both_ways_unchanged() {
    let (a, b) = pair(2);
    let mut ab: Vec<Vec<u8>> = (0..50)
        .map(|n| packet("10.1.0.5", "10.2.0.9", 20 + 27 * n as usize, n))
        .collect();
    for p in &ab {
        a.inject.send(p.clone()).unwrap();
    }
    ab.sort();
    assert_eq!(take(&b.delivered, ab.len()), ab);

    let mut ba: Vec<Vec<u8>> = (0..20)
        .map(|n| packet("10.2.0.9", "10.1.0.5", 1372, n))
        .collect();
    for p in &ba {
        b.inject.send(p.clone()).unwrap();
    }
    ba.sort();
    assert_eq!(take(&a.delivered, ba.len()), ba);

    // A worker counts a batch after it is handled (sent, or taken by the device), so
    // the peer may see packets before the sender has counted them: wait for all.
    wait_until(|| {
        let (sa, sb) = (a.dp.stats(), b.dp.stats());
        sa.tun_out.packets == 20
            && sb.tun_out.packets == 50
            && sa.tun_in.packets == 50
            && sa.esp_out.packets == 50
            && sb.udp_in.packets == 50
    });
    let (sa, sb) = (a.dp.stats(), b.dp.stats());
    println!("A: {sa:?}\nB: {sb:?}");
    assert_eq!(sa.tun_in.packets, 50);
    assert_eq!(sa.esp_out.packets, 50);
    assert_eq!(sb.udp_in.packets, 50);
    assert_eq!(sb.tun_out.packets, 50);
    assert_eq!(
        sb.tun_out.bytes,
        ab.iter().map(|p| p.len() as u64).sum::<u64>()
    );
    assert_eq!(sa.tun_out.packets, 20);
    assert_eq!(sa.drops_total() + sb.drops_total(), 0, "{sa:?} {sb:?}");
    // The SAD saw the same.
    let id = a.sad.sa_ids()[0];
    let st = a.sad.sa_stats(id).unwrap();
    assert_eq!((st.out_packets, st.in_packets), (50, 20));
    assert!(a.control.try_recv().is_err() && b.control.try_recv().is_err());
    a.dp.shutdown();
    b.dp.shutdown();
}

#[test]
fn outside_the_policy_is_discarded_and_counted() {
    let (a, b) = pair(1);
    // No rule protects 10.9.0.0/24: the DISCARD rule.
    a.inject
        .send(packet("10.1.0.5", "10.9.0.1", 10, 1))
        .unwrap();
    // Then one that passes, to know the first has been handled.
    let ok = packet("10.1.0.5", "10.2.0.1", 10, 2);
    a.inject.send(ok.clone()).unwrap();
    assert_eq!(b.delivered.recv_timeout(WAIT).unwrap(), ok);
    let s = a.dp.stats();
    assert_eq!(
        s.drop_count(DataplaneDrop::Sad(DropReason::PolicyDiscard)),
        1
    );
    assert_eq!(s.tun_in.packets, 2);
    // A forged ESP packet on B's socket (unknown SPI) is counted by B.
    let peer = UdpSocket::bind((LO, 0)).unwrap();
    peer.send_to(&[0, 0, 0x99, 0x99, 0, 0, 0, 1, 1, 2, 3, 4], b.addr())
        .unwrap();
    wait_until(|| {
        b.dp.stats()
            .drop_count(DataplaneDrop::Sad(DropReason::UnknownSpi))
            == 1
    });
    assert!(b.delivered.try_recv().is_err());
}

/// Polls `cond` until it holds (or fails after [`WAIT`]).
fn wait_until(cond: impl Fn() -> bool) {
    let step = Duration::from_millis(5);
    for _ in 0..(WAIT.as_millis() / step.as_millis()) {
        if cond() {
            return;
        }
        std::thread::sleep(step);
    }
    panic!("condition not met in {WAIT:?}");
}

#[test]
fn ike_goes_to_the_control_and_keepalives_are_ignored() {
    let a = Node::start(2);
    let peer = UdpSocket::bind((LO, 0)).unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    // A NAT-keepalive first (RFC 3948 §2.3), then an IKE message behind the marker.
    peer.send_to(&[0xff], a.addr()).unwrap();
    let mut ike = vec![0, 0, 0, 0];
    ike.extend_from_slice(&[0x11; 28]);
    peer.send_to(&ike, a.addr()).unwrap();
    match a.control.recv_timeout(WAIT).unwrap() {
        ToControl::Ike(d) => {
            assert_eq!(d.payload, ike, "as received, marker included");
            assert_eq!(d.local, a.addr());
            assert_eq!(d.remote, peer.local_addr().unwrap());
        }
        other => panic!("{other:?}"),
    }
    // The counters are added per batch, after the batch is handled: wait for both
    // datagrams to be counted, not only for the keepalive.
    wait_until(|| {
        let s = a.dp.stats();
        s.keepalives_in == 1 && s.udp_in.packets == 2
    });
    // Nothing else reached the control or the device.
    assert!(a.control.try_recv().is_err());
    assert!(a.delivered.try_recv().is_err());
    let s = a.dp.stats();
    assert_eq!((s.ike_in, s.udp_in.packets, s.drops_total()), (1, 2, 0));

    // The reply leaves from the socket it arrived on.
    let sender = a.dp.ike_sender();
    sender
        .send(a.addr(), peer.local_addr().unwrap(), b"\0\0\0\0reply")
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\0\0\0\0reply"[..], a.addr()));
    assert_eq!(a.dp.stats().ike_out, 1);
    // An address we have no socket on.
    let other = SocketAddr::new(LO, a.addr().port().wrapping_add(1));
    assert_eq!(
        sender
            .send(other, peer.local_addr().unwrap(), b"x")
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn a_packet_without_an_sa_signals_the_control_and_queues_an_acquire() {
    let a = Node::start(2);
    a.sad.set_outbound_spd(policy(true));
    for n in 0..100 {
        a.inject
            .send(packet("10.1.0.5", "10.2.0.9", 40, n))
            .unwrap();
    }
    assert_eq!(a.control.recv_timeout(WAIT).unwrap(), ToControl::SadEvent);
    match a.sad.poll_event() {
        Some(Event::Acquire(acq)) => assert_eq!(acq.policy, PolicyId(1)),
        other => panic!("{other:?}"),
    }
    wait_until(|| a.dp.stats().drop_count(DataplaneDrop::NoSa) == 100);
    // Rate-limited: not one message per packet.
    let signals = std::iter::from_fn(|| a.control.try_recv().ok()).count() + 1;
    println!(
        "{signals} SadEvent messages for 100 packets: {:?}",
        a.dp.stats()
    );
    assert!(signals < 100);
    // The SAD rate-limits its own ACQUIRE per rule too.
    assert!(a.sad.poll_event().is_none());
}

#[test]
fn shutdown_is_prompt_and_stops_every_thread() {
    let (a, b) = pair(3);
    let addr = b.addr();
    let (done_tx, done_rx) = mpsc::channel();
    #[allow(clippy::disallowed_methods)] // measures the test itself
    let t0 = std::time::Instant::now();
    std::thread::spawn(move || {
        a.dp.shutdown();
        b.dp.shutdown();
        done_tx.send(()).unwrap();
    });
    done_rx.recv_timeout(WAIT).expect("shutdown did not return");
    println!(
        "shutdown of two data planes (3 workers each): {:?}",
        t0.elapsed()
    );
    // The sockets are closed: the port can be bound again without SO_REUSEPORT.
    UdpSocket::bind(addr).unwrap();
}

/// A real TUN device on gateway A (needs `CAP_NET_ADMIN`, so ignored by default; run
/// with `cargo test -p ipsec-gateway --test dataplane -- --ignored` as root). The
/// device gets 10.1.0.1/14, so the kernel routes 10.2.0.0/24 through it: a UDP socket
/// on 10.1.0.1 sends to 10.2.0.9, A seals what it reads from the TUN queue, and B
/// (in-memory device) delivers it; B's reply comes out of A's TUN device to the socket.
#[test]
#[ignore = "needs CAP_NET_ADMIN and /dev/net/tun"]
fn a_real_tun_device_carries_both_ways() {
    use ipsec_gateway::dataplane::TunConfig;
    let sad = Arc::new(Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::default()).unwrap());
    let (tx, _control) = mpsc::channel();
    let inner: IpAddr = "10.1.0.1".parse().unwrap();
    let cfg = DataplaneConfig::new(vec![LO])
        .port(0)
        .workers(2)
        .tun(TunConfig::new().mtu(1400).address(inner, 14));
    let dp = Dataplane::start(sad.clone(), cfg, tx).unwrap();
    let name = dp.tun_name().unwrap().to_owned();
    let b = Node::start(1);
    let a_addr = dp.local_addrs()[0];
    sad.set_outbound_spd(policy(true));
    b.sad.set_outbound_spd(policy(false));
    let opts = || SaOptions::new().policy(PolicyId(1));
    sad.add_sa(now(), &params(a_addr, b.addr(), true), opts())
        .unwrap();
    b.sad
        .add_sa(now(), &params(b.addr(), a_addr, false), opts())
        .unwrap();

    let app = UdpSocket::bind((inner, 0)).unwrap();
    app.set_read_timeout(Some(WAIT)).unwrap();
    app.send_to(b"through the tunnel", ("10.2.0.9", 7777))
        .unwrap();
    // The kernel may also send its own packets (IPv6 router solicitations are not
    // routed here: the device has no IPv6 address); take the first UDP one.
    let got = loop {
        let p = b.delivered.recv_timeout(WAIT).unwrap();
        if p[9] == 17 {
            break p;
        }
    };
    assert_eq!(&got[12..20], &[10, 1, 0, 1, 10, 2, 0, 9]);
    assert_eq!(&got[28..], b"through the tunnel");

    // The reply: B's side sends 10.2.0.9:7777 -> the app's port (UDP checksum 0).
    let port = app.local_addr().unwrap().port();
    let mut reply = packet("10.2.0.9", "10.1.0.1", 5, 1);
    reply[20..22].copy_from_slice(&7777u16.to_be_bytes());
    reply[22..24].copy_from_slice(&port.to_be_bytes());
    reply[28..].copy_from_slice(b"hello");
    b.inject.send(reply).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = app.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"hello"[..], "10.2.0.9:7777".parse().unwrap())
    );
    println!("TUN {name}: {:?}", dp.stats());
    dp.shutdown();
}

/// A batch of equal-sized packets (and a shorter last one) crosses in order: A seals
/// them and sends runs with UDP GSO, B receives them (coalesced by UDP GRO where
/// the kernel does it), opens each, and hands them to its device in batches.
#[test]
fn a_batch_crosses_in_order_through_gso_and_gro() {
    let start = |workers: usize| {
        let sad =
            Arc::new(Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::default().shards(16)).unwrap());
        let (inject, from_test) = mpsc::channel();
        let (to_test, delivered) = mpsc::channel();
        let dev: Arc<dyn PacketDevice> = Arc::new(BatchDevice {
            from_test: Mutex::new(from_test),
            to_test: Mutex::new(to_test),
        });
        let (tx, _control) = mpsc::channel();
        let cfg = DataplaneConfig::new(vec![LO]).port(0).workers(workers);
        let dp = Dataplane::start_with_device(sad.clone(), cfg, vec![dev; workers], tx).unwrap();
        (sad, dp, inject, delivered)
    };
    let (a, b) = (start(1), start(1));
    let (aa, ba) = (a.1.local_addrs()[0], b.1.local_addrs()[0]);
    a.0.set_outbound_spd(policy(true));
    b.0.set_outbound_spd(policy(false));
    let opts = || SaOptions::new().policy(PolicyId(1));
    a.0.add_sa(now(), &params(aa, ba, true), opts()).unwrap();
    b.0.add_sa(now(), &params(ba, aa, false), opts()).unwrap();

    // Two TSO-sized bursts: 47 packets of 1400 bytes and a last of 300, twice.
    let mut sent = Vec::new();
    for burst in 0..2u16 {
        let batch: Vec<Vec<u8>> = (0..48u16)
            .map(|n| {
                let len = if n == 47 { 272 } else { 1372 };
                packet("10.1.0.5", "10.2.0.9", len, burst * 100 + n)
            })
            .collect();
        sent.extend(batch.iter().cloned());
        a.2.send(batch).unwrap();
    }
    let mut got = Vec::new();
    let mut batches = 0;
    while got.len() < sent.len() {
        got.extend(b.3.recv_timeout(WAIT).unwrap());
        batches += 1;
    }
    assert_eq!(got, sent, "in order and unchanged");
    // Counted per batch after it is handled: wait for every counter asserted below.
    wait_until(|| {
        let (sa, sb) = (a.1.stats(), b.1.stats());
        (
            sa.tun_in.packets,
            sa.esp_out.packets,
            sb.udp_in.packets,
            sb.tun_out.packets,
        ) == (96, 96, 96, 96)
    });
    let (sa, sb) = (a.1.stats(), b.1.stats());
    println!("{batches} batches to B's device\nA: {sa:?}\nB: {sb:?}");
    assert_eq!((sa.tun_in.packets, sa.esp_out.packets), (96, 96));
    assert_eq!((sb.udp_in.packets, sb.tun_out.packets), (96, 96));
    assert_eq!(sa.drops_total() + sb.drops_total(), 0, "{sa:?} {sb:?}");
    let id = b.0.sa_ids()[0];
    assert_eq!(b.0.sa_stats(id).unwrap().in_packets, 96);
    a.1.shutdown();
    b.1.shutdown();
}
