//! `EtcdStore` against a real etcd (feature `etcd`): each test starts its own
//! single-member etcd from PATH (temporary data directory, free 127.0.0.1 ports) and
//! kills it at the end. Without etcd installed the tests fail: CI installs
//! `etcd-server`; they never skip.
//!
//! Timings are printed (`--nocapture`), not asserted, except that a call during an
//! outage must come back at all (within three times the store's timeout).
#![allow(
    clippy::disallowed_methods,
    reason = "the tests measure wall time and wait for a real server"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipsec_cluster::{
    lease_block, read, EtcdStore, Expect, SeqBlock, Store, StoreError, WatchEvent, CEILING_64,
};

const TIMEOUT: Duration = Duration::from_secs(2);

/// One test at a time: each runs its own etcd, and the timings mean more alone.
static SERIAL: Mutex<()> = Mutex::new(());

struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Etcd {
    fn start(name: &str) -> Self {
        match Command::new("etcd").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            other => panic!(
                "etcd is not installed or does not run ({other:?}): these tests need the \
                 `etcd` binary on PATH (Debian: apt-get install etcd-server); they never skip"
            ),
        }
        let dir =
            std::env::temp_dir().join(format!("ipsec-cluster-etcd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut e = Self {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
        };
        e.spawn();
        e
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("log file");
        let child = Command::new("etcd")
            .arg("--name=n1")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=n1={peer}"))
            .arg("--initial-cluster-state=new")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "etcd exited with {status}; log:\n{}",
                        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
                    );
                }
            }
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd not healthy after 30 s");
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn etcdctl(&self, args: &[&str]) {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .output()
            .expect("run etcdctl");
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    }

    fn store(&self) -> EtcdStore {
        EtcdStore::connect(&[self.endpoint()], TIMEOUT).expect("connect to etcd")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn next_event(rx: &std::sync::mpsc::Receiver<WatchEvent>, within: Duration) -> WatchEvent {
    rx.recv_timeout(within).expect("watch event")
}

#[test]
fn basic_operations_match_the_store_contract() {
    let _g = serial();
    let etcd = Etcd::start("basic");
    let s = etcd.store();
    assert_eq!(s.get("b/x").unwrap(), None);
    let r1 = s.put("b/x", b"1", None).unwrap();
    assert_eq!(
        s.get("b/x").unwrap().unwrap(),
        ipsec_cluster::Entry {
            value: b"1".to_vec(),
            mod_revision: r1
        }
    );
    let cur = s
        .cas("b/x", Expect::Absent, b"2", None)
        .unwrap()
        .unwrap_err();
    assert_eq!(cur.unwrap().mod_revision, r1);
    assert!(s
        .cas("b/x", Expect::Revision(r1 + 100), b"2", None)
        .unwrap()
        .is_err());
    let r2 = s
        .cas("b/x", Expect::Revision(r1), b"2", None)
        .unwrap()
        .unwrap();
    assert!(r2 > r1);
    assert_eq!(
        s.cas("b/y", Expect::Revision(r2), b"2", None).unwrap(),
        Err(None)
    );
    assert!(s.cas("b/y", Expect::Absent, b"3", None).unwrap().is_ok());
    s.put("c/z", b"other prefix", None).unwrap();
    let (items, rev) = s.list("b/").unwrap();
    let keys: Vec<_> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["b/x", "b/y"]);
    assert!(rev >= r2 + 2);
    s.delete("b/x").unwrap();
    s.delete("b/x").unwrap();
    assert_eq!(s.get("b/x").unwrap(), None);
    // a put with a lease that does not exist
    assert!(matches!(
        s.put("b/l", b"v", Some(ipsec_cluster::LeaseId(0x7777))),
        Err(StoreError::LeaseExpired)
    ));
}

/// 3 separate clients x 4 threads x 40 leases against one key: blocks are pairwise
/// disjoint and together contiguous from 1.
#[test]
fn cas_contention_across_clients_gives_disjoint_blocks() {
    let _g = serial();
    let etcd = Etcd::start("cas");
    let stores: Vec<Arc<EtcdStore>> = (0..3).map(|_| Arc::new(etcd.store())).collect();
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for (c, s) in stores.iter().enumerate() {
        for t in 0..4 {
            let s = Arc::clone(s);
            handles.push(std::thread::spawn(move || {
                (0..40u64)
                    .map(|i| {
                        let size = 1 + (i * 31 + t * 7) % 100;
                        lease_block(&*s, "seq/sa1", &format!("c{c}t{t}"), size, CEILING_64)
                            .expect("lease")
                    })
                    .collect::<Vec<SeqBlock>>()
            }));
        }
    }
    let mut blocks: Vec<SeqBlock> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let took = t0.elapsed();
    assert_eq!(blocks.len(), 480);
    blocks.sort_by_key(|b| b.first);
    let mut expect = 1;
    for b in &blocks {
        assert_eq!(b.first, expect, "gap or overlap at {b:?}");
        expect = b.last + 1;
    }
    assert_eq!(read(&*stores[0], "seq/sa1").unwrap().unwrap().next, expect);
    eprintln!(
        "etcd CAS contention: 480 leases from 12 threads on 3 clients in {took:?} ({:.0} leases/s)",
        480.0 / took.as_secs_f64()
    );
}

#[test]
fn watch_delivers_puts_and_deletes_in_order_and_resyncs_after_compaction() {
    let _g = serial();
    let etcd = Etcd::start("watch");
    let a = etcd.store();
    let b = etcd.store();
    let (_, rev) = b.list("w/").unwrap();
    let rx = b.watch("w/", rev).unwrap();
    let r1 = a.put("w/a", b"1", None).unwrap();
    let r2 = a.put("w/b", b"2", None).unwrap();
    a.put("x/ignored", b"-", None).unwrap();
    a.delete("w/a").unwrap();
    let r4 = a.put("w/a", b"3", None).unwrap();
    let want = [
        ("w/a", Some(b"1".as_slice()), r1),
        ("w/b", Some(b"2".as_slice()), r2),
        ("w/a", None, r2 + 2),
        ("w/a", Some(b"3".as_slice()), r4),
    ];
    for (key, value, revision) in want {
        let ev = next_event(&rx, Duration::from_secs(5));
        match (&ev, value) {
            (WatchEvent::Put { key: k, entry }, Some(v)) => {
                assert_eq!(
                    (k.as_str(), entry.value.as_slice(), entry.mod_revision),
                    (key, v, revision)
                )
            }
            (
                WatchEvent::Delete {
                    key: k,
                    revision: r,
                },
                None,
            ) => {
                assert_eq!((k.as_str(), *r), (key, revision))
            }
            _ => panic!("expected {key} {value:?} at {revision}, got {ev:?}"),
        }
    }
    // a watch from a revision that was compacted away starts with Resync
    etcd.etcdctl(&["compact", &r4.to_string()]);
    let rx = b.watch("w/", r1).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(5)), WatchEvent::Resync);
    // and goes on from the compact revision: the put at r4 comes again
    match next_event(&rx, Duration::from_secs(5)) {
        WatchEvent::Put { entry, .. } => assert_eq!(entry.mod_revision, r4),
        other => panic!("{other:?}"),
    }
    let r5 = a.put("w/c", b"4", None).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(5)).revision(), Some(r5));
}

#[test]
fn restart_watch_resumes_and_outage_calls_are_bounded() {
    let _g = serial();
    let mut etcd = Etcd::start("restart");
    let a = etcd.store();
    let b = etcd.store();
    let r0 = a.put("r/before", b"0", None).unwrap();
    let rx = b.watch("r/", r0).unwrap();
    let r1 = a.put("r/one", b"1", None).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(5)).revision(), Some(r1));

    etcd.kill();
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let t = Instant::now();
        let e = if i % 2 == 0 {
            a.get("r/one").unwrap_err()
        } else {
            a.put("r/x", b"x", None).unwrap_err()
        };
        let took = t.elapsed();
        worst = worst.max(took);
        eprintln!("call {i} during the outage: {e} after {took:?}");
        // Unavailable, not Timeout: the store says so at once (the times are
        // printed, not asserted).
        assert!(e.is_unavailable(), "{e:?}");
    }
    let t = Instant::now();
    let e = lease_block(&a, "r/seq", "a", 10, CEILING_64).unwrap_err();
    eprintln!("lease_block during the outage: {e} after {:?}", t.elapsed());
    assert!(e.is_unavailable());
    eprintln!("worst call during the outage: {worst:?} (timeout {TIMEOUT:?})");

    let t = Instant::now();
    etcd.spawn();
    eprintln!("etcd restarted on the same data dir in {:?}", t.elapsed());
    let t = Instant::now();
    let r2 = loop {
        match a.put("r/after", b"2", None) {
            Ok(r) => break r,
            Err(e) if e.is_unavailable() && t.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("no reconnect: {e}"),
        }
    };
    eprintln!("client A wrote again {:?} after the restart", t.elapsed());
    assert!(r2 > r1);
    let t = Instant::now();
    match next_event(&rx, Duration::from_secs(30)) {
        WatchEvent::Put { key, entry } => {
            assert_eq!((key.as_str(), entry.mod_revision), ("r/after", r2))
        }
        other => panic!("{other:?}"),
    }
    eprintln!(
        "the watch opened before the restart delivered the put after {:?}",
        t.elapsed()
    );
}

#[test]
fn lease_expiry_removes_the_key() {
    let _g = serial();
    let etcd = Etcd::start("lease");
    let s = etcd.store();
    let lease = s.grant(Duration::from_secs(1)).unwrap();
    let (_, rev) = s.list("l/").unwrap();
    let rx = s.watch("l/", rev).unwrap();
    s.put("l/node-a", b"alive", Some(lease)).unwrap();
    s.keep_alive(lease).unwrap();
    assert!(matches!(
        next_event(&rx, Duration::from_secs(5)),
        WatchEvent::Put { .. }
    ));
    let t = Instant::now();
    match next_event(&rx, Duration::from_secs(15)) {
        WatchEvent::Delete { key, .. } => assert_eq!(key, "l/node-a"),
        other => panic!("{other:?}"),
    }
    eprintln!("1 s lease expired, key deleted after {:?}", t.elapsed());
    assert_eq!(s.get("l/node-a").unwrap(), None);
    assert!(matches!(s.keep_alive(lease), Err(StoreError::LeaseExpired)));
    assert!(matches!(
        s.put("l/node-a", b"v", Some(lease)),
        Err(StoreError::LeaseExpired)
    ));
    let l2 = s.grant(Duration::from_secs(60)).unwrap();
    s.put("l/node-b", b"v", Some(l2)).unwrap();
    s.revoke(l2).unwrap();
    assert_eq!(s.get("l/node-b").unwrap(), None);
    s.revoke(l2).unwrap();
}

/// Put on client A -> event on a watch of client B, 200 samples.
#[test]
fn propagation_delay() {
    let _g = serial();
    let etcd = Etcd::start("prop");
    let a = etcd.store();
    let b = etcd.store();
    let (_, rev) = b.list("p/").unwrap();
    let rx = b.watch("p/", rev).unwrap();
    let mut samples = Vec::with_capacity(200);
    for i in 0..200 {
        let key = format!("p/{i}");
        let t = Instant::now();
        let r = a.put(&key, b"v", None).unwrap();
        match next_event(&rx, Duration::from_secs(5)) {
            WatchEvent::Put { key: k, entry } => {
                assert_eq!((k, entry.mod_revision), (key, r));
            }
            other => panic!("{other:?}"),
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "propagation put(A) -> watch(B), 200 samples: p50 {:?}, p99 {:?}, min {:?}, max {:?}",
        p(0.50),
        p(0.99),
        samples[0],
        samples[199]
    );
}
