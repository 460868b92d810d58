//! Two cluster nodes in one process sharing a `MemStore` (docs/scale-out.md): the owner
//! publishes its Child SA, the other node imports it, both send on it, and no sequence
//! number (so no AES-GCM nonce) is used by both. Then the store goes away: the nodes
//! send on what they leased and stop, never reusing a number.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use ipsec::core::iana::{EncrId, IntegId, KeId};
use ipsec::core::ip::ipv4_checksum;
use ipsec::core::{
    ChildSaParams, KeyMaterial, Lifetime, Mode, PacketBuf, Spi, TrafficSelector, TsSet,
};
use ipsec::ike::{ChildSaId, SaHandle};
use ipsec::sad::{
    Action, AddrRange, ImportOptions, Outbound, PolicyId, PolicyRule, SaId, SaOptions, SaTemplate,
    Sad, SadConfig, Selector, SeqRange, Spd,
};
use ipsec_cluster::{ClusterKey, MemStore, Store};
use ipsec_gateway::cluster::{Cluster, ClusterCmd, ClusterOptions};
use ipsec_gateway::dataplane::{now, ToControl};
use ipsec_gateway::driver::Notice;

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

fn params() -> ChildSaParams {
    let k = |s: u8| KeyMaterial::new(&[s; 20], &[]).unwrap();
    let ts = |n: &str| TsSet::one(TrafficSelector::from_prefix(n.parse().unwrap(), 24).unwrap());
    ChildSaParams::esp(
        ANY,
        PEER,
        EncrId::ENCR_AES_GCM_16,
        128,
        (Spi(0x1111), k(1)),
        (Spi(0x2222), k(2)),
    )
    .with_mode(Mode::Tunnel)
    .with_integ(IntegId::NONE)
    .with_ke(KeId::NONE)
    .with_esn(true)
    .with_selectors(ts("10.1.0.0"), ts("10.2.0.0"))
    .with_lifetime(Lifetime::UNLIMITED)
    .with_replay_window(1024)
}

fn sad() -> Arc<Sad> {
    let s = Sad::new(&ipsec::DEFAULT_PROVIDER, SadConfig::new()).unwrap();
    let p = |n: &str| AddrRange::prefix(n.parse().unwrap(), 24).unwrap();
    s.set_outbound_spd(
        Spd::new(vec![PolicyRule::new(
            1,
            Selector::between(p("10.1.0.0"), p("10.2.0.0")),
            Action::Protect(SaTemplate::esp_tunnel(ANY, PEER)),
        )])
        .unwrap(),
    );
    Arc::new(s)
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 28 + 64];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&92u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 1, 0, 5]);
    p[16..20].copy_from_slice(&[10, 2, 0, 9]);
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[24..26].copy_from_slice(&72u16.to_be_bytes());
    p
}

/// Seals one packet; its sequence number, if it went out.
fn send(s: &Sad) -> Option<u64> {
    let p = packet();
    let mut store = vec![0u8; ipsec::sad::MAX_HEADROOM + p.len() + 64];
    store[ipsec::sad::MAX_HEADROOM..ipsec::sad::MAX_HEADROOM + p.len()].copy_from_slice(&p);
    let mut b = PacketBuf::new(&mut store[..], ipsec::sad::MAX_HEADROOM, p.len()).unwrap();
    match s.process_outbound(now(), &mut b) {
        Outbound::Protect { seq, .. } => Some(seq),
        _ => None,
    }
}

fn node(
    store: &MemStore,
    name: &str,
    key: &Arc<ClusterKey>,
    sad: &Arc<Sad>,
) -> (Cluster, Receiver<ToControl>) {
    let (tx, rx) = mpsc::channel();
    let mut opts = ClusterOptions::new(
        Arc::new(store.clone()) as Arc<dyn Store>,
        name,
        Arc::clone(key),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    );
    opts.prefix = "/test/".into();
    (Cluster::start(opts, Arc::clone(sad), tx).unwrap(), rx)
}

/// Waits up to 5 s for `f` to hold, polling every millisecond.
fn wait(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..5000 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Sends from `s` until `n` packets went out or it could send nothing for `idle`;
/// their numbers.
fn sent_within(s: &Sad, n: usize, idle: Duration) -> Vec<u64> {
    let mut got = Vec::new();
    let mut since = now();
    while got.len() < n && now().saturating_duration_since(since) < idle {
        match send(s) {
            Some(q) => {
                got.push(q);
                since = now();
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    got
}

fn sent(s: &Sad, n: usize) -> Vec<u64> {
    sent_within(s, n, Duration::from_secs(5))
}

/// Tells `a` that Child SA `child` of `p`, SAD id `sad`, came up (the driver does this).
fn child_up(a: &Cluster, p: &ChildSaParams, child: u64, sad: SaId) {
    a.notice(&Notice::ChildUp {
        sa: SaHandle(1),
        child: ChildSaId(child),
        sad: Some(sad),
        suite: "aes128gcm16".into(),
        mode: Mode::Tunnel,
        esn: p.esn,
        udp_encap: p.udp_encap,
        inbound_spi: p.inbound_spi,
        outbound_spi: p.outbound_spi,
        local_ts: p.local_ts.as_slice().to_vec(),
        remote_ts: p.remote_ts.as_slice().to_vec(),
    });
}

/// Waits for `b`'s order to import a replica and carries it out (the control loop
/// does this with the driver); the replica's SAD id.
fn install(b: &Cluster, sad_b: &Sad) -> SaId {
    let mut got = None;
    assert!(wait(|| {
        if let Some(ClusterCmd::InstallReplica { key, snap }) = b.poll_command() {
            got = Some((key, snap));
        }
        got.is_some()
    }));
    let (key, snap) = got.unwrap();
    let id = sad_b
        .import_sa(
            now(),
            &snap,
            ImportOptions::new(SeqRange::NONE).sa(SaOptions::new().policy(PolicyId(1))),
        )
        .unwrap();
    b.replica_installed(key, Ok(id));
    id
}

#[test]
fn two_nodes_share_one_sa_without_sharing_a_sequence_number() {
    let store = MemStore::new();
    let key = Arc::new(ClusterKey::from_bytes([7; 32]));
    let (sad_a, sad_b) = (sad(), sad());
    let (a, _rx_a) = node(&store, "a", &key, &sad_a);
    let (b, _rx_b) = node(&store, "b", &key, &sad_b);

    // Node a negotiated the Child SA and installed it (the driver does this).
    let p = params();
    let id_a = sad_a
        .add_sa(
            now(),
            &p,
            SaOptions::new().policy(PolicyId(1)).exportable(true),
        )
        .unwrap();
    let mut seqs_a = sent(&sad_a, 10);
    child_up(&a, &p, 1, id_a);

    // Node b is told to import it (the control loop does this with the driver).
    let mut got: Option<(String, Box<ipsec::sad::SaSnapshot>)> = None;
    assert!(wait(|| {
        if let Some(ClusterCmd::InstallReplica { key, snap }) = b.poll_command() {
            got = Some((key, snap));
        }
        got.is_some()
    }));
    let (rkey, snap) = got.unwrap();
    assert_eq!(rkey, "00001111-00002222");
    assert_eq!(
        snap.outbound_keys.encr,
        vec![2; 20],
        "the keys arrive intact"
    );
    let id_b: SaId = sad_b
        .import_sa(
            now(),
            &snap,
            ImportOptions::new(SeqRange::NONE).sa(SaOptions::new().policy(PolicyId(1))),
        )
        .unwrap();
    b.replica_installed(rkey, Ok(id_b));
    // The records are sealed: the store never sees the keys.
    let (records, _) = store.list("/test/child/").unwrap();
    assert_eq!(records.len(), 1);
    let raw = String::from_utf8_lossy(&records[0].1.value).to_string();
    assert!(!raw.contains("0202020202"), "{raw}");

    // Both send at once (a keeps its block: it is busy); b has no numbers until it
    // leases a block, and it leases none before it has traffic of its own (the
    // imported counts are the owner's), however many ticks pass.
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        send(&sad_b),
        None,
        "a replica sends nothing before its first lease"
    );
    let busy_a = {
        let sad_a = Arc::clone(&sad_a);
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 3000 {
                got.extend(sent(&sad_a, 1));
                std::thread::sleep(Duration::from_micros(300));
            }
            got
        })
    };
    let seqs_b = sent(&sad_b, 3000);
    assert_eq!(seqs_b.len(), 3000, "node b never got a block");
    seqs_a.extend(busy_a.join().unwrap());
    assert_eq!(seqs_a.len(), 3010, "node a never renewed its block");
    let set_a: HashSet<u64> = seqs_a.iter().copied().collect();
    let set_b: HashSet<u64> = seqs_b.iter().copied().collect();
    assert_eq!(
        (set_a.len(), set_b.len()),
        (3010, 3000),
        "a number repeated on one node"
    );
    assert!(
        set_a.is_disjoint(&set_b),
        "a sequence number (an AES-GCM nonce) used by both nodes"
    );
    // b's first block lies above a's implicit first one.
    assert!(seqs_b.iter().min().unwrap() > &1024);

    // The store goes away: each node sends only what it still holds, then stops.
    store.set_available(false);
    let more_a = sent_within(&sad_a, 100_000, Duration::from_millis(300));
    let more_b = sent_within(&sad_b, 100_000, Duration::from_millis(300));
    assert!(
        more_a.len() < 100_000 && more_b.len() < 100_000,
        "sent without a lease"
    );
    let all_a: HashSet<u64> = set_a.iter().chain(&more_a).copied().collect();
    let all_b: HashSet<u64> = set_b.iter().chain(&more_b).copied().collect();
    assert!(
        all_a.is_disjoint(&all_b),
        "a number reused while the store was down"
    );
    // Back: they lease again and go on.
    store.set_available(true);
    assert_eq!(sent(&sad_b, 10).len(), 10, "node b did not recover");

    // The owner deletes the Child SA: b is told to remove its replica.
    a.notice(&Notice::ChildDeleted {
        sa: SaHandle(1),
        child: ChildSaId(1),
        inbound_spi: Spi(0x1111),
        outbound_spi: Spi(0x2222),
    });
    let mut removed = None;
    assert!(wait(|| {
        if let Some(ClusterCmd::RemoveReplica { sa }) = b.poll_command() {
            removed = Some(sa);
        }
        removed.is_some()
    }));
    assert_eq!(removed, Some(id_b));
    a.stop();
    b.stop();
}

/// A replica whose hard lifetime ended (its owner died and nobody rekeyed it): the
/// node deletes its record and removes it.
#[test]
fn an_expired_replica_takes_its_records_with_it() {
    let store = MemStore::new();
    let key = Arc::new(ClusterKey::from_bytes([5; 32]));
    let (sad_a, sad_b) = (sad(), sad());
    let (a, _rx_a) = node(&store, "a", &key, &sad_a);
    let (b, _rx_b) = node(&store, "b", &key, &sad_b);
    let p = params();
    let id_a = sad_a
        .add_sa(now(), &p, SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    child_up(&a, &p, 1, id_a);
    let id_b = install(&b, &sad_b);
    // The owner is gone without a word.
    a.stop();
    std::thread::sleep(Duration::from_millis(50));
    b.replica_expired(id_b);
    let mut removed = None;
    assert!(wait(|| {
        if let Some(ClusterCmd::RemoveReplica { sa }) = b.poll_command() {
            removed = Some(sa);
        }
        removed.is_some()
    }));
    assert_eq!(removed, Some(id_b));
    assert!(store
        .get("/test/child/00001111-00002222")
        .unwrap()
        .is_none());
    // The sequence record stays: nothing may ever start that space again from 1.
    assert!(store.get("/test/seq/00001111-00002222").unwrap().is_some());
    b.stop();
}

/// Without ESN the sequence space is 2^32 - 1: when the cluster has leased three
/// quarters of it, the owner asks for a rekey.
#[test]
fn the_owner_rekeys_before_a_32_bit_space_runs_out() {
    let store = MemStore::new();
    let key = Arc::new(ClusterKey::from_bytes([9; 32]));
    let sad_a = sad();
    let (a, _rx) = node(&store, "a", &key, &sad_a);
    let p = params().with_esn(false);
    let id = sad_a
        .add_sa(
            now(),
            &p,
            SaOptions::new().policy(PolicyId(1)).exportable(true),
        )
        .unwrap();
    child_up(&a, &p, 7, id);
    let seq_key = "/test/seq/00001111-00002222";
    assert!(wait(|| store.get(seq_key).unwrap().is_some()));
    // Other nodes lease half the space: no rekey yet.
    ipsec_cluster::lease_existing(&store, seq_key, "b", 1 << 31, ipsec_cluster::CEILING_32)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        a.poll_command().is_none(),
        "rekeyed with half the space left"
    );
    // Three quarters and a bit: the owner rekeys its Child SA, once.
    ipsec_cluster::lease_existing(&store, seq_key, "c", 1 << 30, ipsec_cluster::CEILING_32)
        .unwrap();
    let mut asked = None;
    assert!(wait(|| {
        if let Some(ClusterCmd::RekeyChild { child }) = a.poll_command() {
            asked = Some(child);
        }
        asked.is_some()
    }));
    assert_eq!(asked, Some(ChildSaId(7)));
    ipsec_cluster::lease_existing(&store, seq_key, "c", 1 << 20, ipsec_cluster::CEILING_32)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(a.poll_command().is_none(), "asked twice");
    a.stop();
}

/// The peer moved (NAT rebinding, MOBIKE): the owner publishes its Child SA again and
/// the other nodes move their replicas to the new path.
#[test]
fn replicas_follow_the_peer_when_it_moves() {
    let store = MemStore::new();
    let key = Arc::new(ClusterKey::from_bytes([3; 32]));
    let (sad_a, sad_b) = (sad(), sad());
    let (a, _rx_a) = node(&store, "a", &key, &sad_a);
    let (b, _rx_b) = node(&store, "b", &key, &sad_b);
    let p = params().with_udp_encap(Some(ipsec::core::UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    }));
    let id_a = sad_a
        .add_sa(now(), &p, SaOptions::new().policy(PolicyId(1)))
        .unwrap();
    // The owner's IKE SA, then its Child SA.
    a.notice(&Notice::IkeUp {
        sa: SaHandle(1),
        connection: "c".into(),
        initiator: false,
        local_spi: ipsec::core::IkeSpi([2; 8]),
        remote_spi: ipsec::core::IkeSpi([1; 8]),
        suite: String::new(),
        nat: ipsec::ike::NatState::default(),
        peer_id: ipsec::ike::Identity::Fqdn("p".into()),
        eap_identity: None,
        virtual_ips: Vec::new(),
        attributes: Vec::new(),
    });
    child_up(&a, &p, 1, id_a);
    let id_b = install(&b, &sad_b);
    std::thread::sleep(Duration::from_millis(50));
    // The peer's NAT mapping changed: the driver moved the owner's SA and says so.
    let moved: IpAddr = "203.0.113.9".parse().unwrap();
    let encap = Some(ipsec::core::UdpEncap {
        local_port: 4500,
        remote_port: 61001,
    });
    sad_a.update_sa_path(id_a, ANY, moved, encap).unwrap();
    a.notice(&Notice::PeerMoved {
        sa: SaHandle(1),
        remote: SocketAddr::new(moved, 61001),
    });
    assert!(
        wait(|| sad_b
            .sa_info(id_b)
            .is_some_and(|i| i.remote_addr == moved && i.udp_encap == encap)),
        "the replica stayed on the old path"
    );
    a.stop();
    b.stop();
}
