//! [`Store`] on etcd's v3 API (feature `etcd`).

use std::future::Future;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tokio::runtime::Handle;

use crate::store::{CasOutcome, Entry, Expect, LeaseId, Store, StoreError, WatchEvent};
use crate::url::ClusterUrl;

/// The first pause before a watch is re-created after an error, doubled up to
/// [`WATCH_BACKOFF_MAX`].
const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest pause between attempts to re-create a watch.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A [`Store`] on an etcd cluster (v3 API, etcd 3.4 or later), through the
/// `etcd-client` crate.
///
/// It owns a single-threaded tokio runtime on a thread of its own; each call runs
/// there and the calling thread waits at most the timeout given to
/// [`EtcdStore::connect`], then gets [`StoreError::Timeout`]. Calls may come from any
/// number of plain threads (also from inside another runtime, since the caller only
/// waits on a channel). The gRPC channel reconnects by itself after etcd restarts;
/// while etcd is unreachable calls fail with [`StoreError::Unavailable`] (connection
/// refused) or [`StoreError::Timeout`]. Watches run as tasks on that runtime and are
/// re-created after any error from the revision after the last one delivered.
///
/// Dropping the store stops the runtime: its watches end (their receivers disconnect).
pub struct EtcdStore {
    // dropped before the runtime it runs on
    client: Client,
    rt: RuntimeThread,
    timeout: Duration,
}

/// A current-thread tokio runtime driven by a thread of its own until dropped.
struct RuntimeThread {
    handle: Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RuntimeThread {
    fn start() -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ipsec-cluster-etcd".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stop.await;
                });
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start thread: {e}")))?;
        Ok(Self {
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the runtime and waits at most `timeout` for it.
    fn run<T, F>(&self, timeout: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let task = self.handle.spawn(async move {
            let r = tokio::time::timeout(timeout, f).await;
            let _ = tx.send(r);
        });
        // the task's own timeout answers first; this one covers a stalled runtime
        match rx.recv_timeout(timeout + Duration::from_millis(200)) {
            Ok(Ok(r)) => r.map_err(map_err),
            Ok(Err(_elapsed)) => Err(StoreError::Timeout(timeout)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                task.abort();
                Err(StoreError::Timeout(timeout))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Unavailable(
                "the store's runtime has stopped".into(),
            )),
        }
    }
}

impl core::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// gRPC status codes (the numbers are fixed by gRPC's status code list), so that this
/// crate needs no direct dependency on tonic for its `Code` type.
mod grpc {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ABORTED: i32 = 10;
    pub const UNAVAILABLE: i32 = 14;
}

fn map_err(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => match s.code() as i32 {
            grpc::NOT_FOUND if s.message().contains("lease") => StoreError::LeaseExpired,
            grpc::UNAVAILABLE
            | grpc::DEADLINE_EXCEEDED
            | grpc::CANCELLED
            | grpc::ABORTED
            | grpc::UNKNOWN => StoreError::Unavailable(s.message().to_owned()),
            _ => StoreError::Rejected(format!("{:?}: {}", s.code(), s.message())),
        },
        E::TransportError(e) => StoreError::Unavailable(e.to_string()),
        E::IoError(e) => StoreError::Unavailable(e.to_string()),
        E::LeaseKeepAliveError(e) if e.contains("not found") => StoreError::LeaseExpired,
        E::WatchError(e) | E::LeaseKeepAliveError(e) => StoreError::Unavailable(e),
        E::InvalidArgs(e) | E::EndpointError(e) => StoreError::Rejected(e),
        E::InvalidUri(e) => StoreError::Rejected(e.to_string()),
        other => StoreError::Protocol(other.to_string()),
    }
}

fn revision(r: i64) -> Result<u64, StoreError> {
    u64::try_from(r).map_err(|_| StoreError::Protocol(format!("negative revision {r}")))
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<u64, StoreError> {
    revision(
        h.ok_or_else(|| StoreError::Protocol("response without header".into()))?
            .revision(),
    )
}

fn entry(kv: &etcd_client::KeyValue) -> Result<Entry, StoreError> {
    Ok(Entry {
        value: kv.value().to_vec(),
        mod_revision: revision(kv.mod_revision())?,
    })
}

fn key_string(kv: &etcd_client::KeyValue) -> String {
    String::from_utf8_lossy(kv.key()).into_owned()
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://HOST:PORT` or `HOST:PORT`);
    /// every later call is bounded by `timeout`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the runtime cannot start or no endpoint answers
    /// within `timeout`; [`StoreError::Rejected`] for malformed endpoints.
    pub fn connect(endpoints: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let rt = RuntimeThread::start()?;
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout)
            .with_keep_alive(Duration::from_secs(2), timeout)
            .with_keep_alive_while_idle(true);
        let eps = endpoints.to_vec();
        let connect = async move { Client::connect(eps, Some(options)).await };
        let client = rt.run(timeout, connect)?;
        Ok(Self {
            client,
            rt,
            timeout,
        })
    }

    /// Connects to the endpoints of an `etcd://` URL (see [`EtcdStore::connect`]).
    ///
    /// # Errors
    /// As [`EtcdStore::connect`].
    pub fn connect_url(url: &ClusterUrl, timeout: Duration) -> Result<Self, StoreError> {
        Self::connect(&url.http_endpoints(), timeout)
    }

    /// The timeout every call is bounded by.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.rt.run(self.timeout, f)
    }

    fn client(&self) -> Client {
        self.client.clone()
    }
}

/// Converts one watch response's events; returns false when the receiver is gone.
fn deliver(resp: &etcd_client::WatchResponse, tx: &Sender<WatchEvent>, next: &mut i64) -> bool {
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        let Ok(rev) = u64::try_from(kv.mod_revision()) else {
            continue;
        };
        let event = match ev.event_type() {
            EventType::Put => WatchEvent::Put {
                key: key_string(kv),
                entry: Entry {
                    value: kv.value().to_vec(),
                    mod_revision: rev,
                },
            },
            EventType::Delete => WatchEvent::Delete {
                key: key_string(kv),
                revision: rev,
            },
        };
        *next = (*next).max(kv.mod_revision().saturating_add(1));
        if tx.send(event).is_err() {
            return false;
        }
    }
    true
}

/// Follows `stream` (already created from revision `next`), re-creating the watch
/// after errors from the revision after the last delivered; ends when the receiver is
/// gone (found at the next event) or the runtime stops.
async fn watch_task(
    mut client: Client,
    prefix: String,
    mut next: i64,
    mut stream: Option<etcd_client::WatchStream>,
    tx: Sender<WatchEvent>,
) {
    let mut backoff = WATCH_BACKOFF_MIN;
    loop {
        // pause before re-creating, except right after a compaction
        let mut pause = true;
        if let Some(mut s) = stream.take() {
            // a stream error or end falls through to re-creating the watch
            while let Ok(Some(resp)) = s.message().await {
                if resp.compact_revision() > 0 {
                    // history before compact_revision is gone
                    if tx.send(WatchEvent::Resync).is_err() {
                        return;
                    }
                    next = next.max(resp.compact_revision());
                    pause = false;
                    break;
                }
                if !deliver(&resp, &tx, &mut next) {
                    return;
                }
                if resp.canceled() {
                    break;
                }
                backoff = WATCH_BACKOFF_MIN;
            }
        }
        if pause {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(WATCH_BACKOFF_MAX);
        }
        let opts = WatchOptions::new().with_prefix().with_start_revision(next);
        stream = client.watch(prefix.clone(), Some(opts)).await.ok();
    }
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let mut c = self.client();
        let key = key.to_owned();
        let resp = self.run(async move { c.get(key, None).await })?;
        resp.kvs().first().map(entry).transpose()
    }

    fn list(&self, prefix: &str) -> Result<(Vec<(String, Entry)>, u64), StoreError> {
        let mut c = self.client();
        let prefix = prefix.to_owned();
        let resp =
            self.run(async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await })?;
        let rev = header_revision(resp.header())?;
        let items = resp
            .kvs()
            .iter()
            .map(|kv| Ok((key_string(kv), entry(kv)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((items, rev))
    }

    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<u64, StoreError> {
        let mut c = self.client();
        let (key, value) = (key.to_owned(), value.to_vec());
        let opts = lease.map(|l| PutOptions::new().with_lease(l.0));
        let resp = self.run(async move { c.put(key, value, opts).await })?;
        header_revision(resp.header())
    }

    fn cas(
        &self,
        key: &str,
        expect: Expect,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError> {
        let compare = match expect {
            // a key that does not exist has version 0
            Expect::Absent => Compare::version(key, CompareOp::Equal, 0),
            Expect::Revision(r) => Compare::mod_revision(
                key,
                CompareOp::Equal,
                i64::try_from(r).map_err(|_| StoreError::Rejected("revision past i64".into()))?,
            ),
        };
        let opts = lease.map(|l| PutOptions::new().with_lease(l.0));
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::put(key, value, opts)])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client();
        let resp = self.run(async move { c.txn(txn).await })?;
        if resp.succeeded() {
            return Ok(Ok(header_revision(resp.header())?));
        }
        match resp.op_responses().first() {
            Some(TxnOpResponse::Get(g)) => Ok(Err(g.kvs().first().map(entry).transpose()?)),
            _ => Err(StoreError::Protocol("transaction without its get".into())),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.client();
        let key = key.to_owned();
        self.run(async move { c.delete(key, None).await })?;
        Ok(())
    }

    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Receiver<WatchEvent>, StoreError> {
        let start = i64::try_from(after_revision.saturating_add(1))
            .map_err(|_| StoreError::Rejected("revision past i64".into()))?;
        let mut c = self.client();
        let p = prefix.to_owned();
        let opts = WatchOptions::new().with_prefix().with_start_revision(start);
        let stream = self.run(async move { c.watch(p, Some(opts)).await })?;
        let (tx, rx) = mpsc::channel();
        self.rt.handle.spawn(watch_task(
            self.client(),
            prefix.to_owned(),
            start,
            Some(stream),
            tx,
        ));
        Ok(rx)
    }

    fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        // etcd leases are in whole seconds: round up, at least one
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX);
        let mut c = self.client();
        let resp = self.run(async move { c.lease_grant(secs, None).await })?;
        Ok(LeaseId(resp.id()))
    }

    fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut c = self.client();
        // `lease_keep_alive` sends one keep-alive and reads its answer: it fails with
        // "lease not found" when the answer's TTL is 0 (the lease is gone)
        self.run(async move { c.lease_keep_alive(lease.0).await.map(|_| ()) })
    }

    fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut c = self.client();
        match self.run(async move { c.lease_revoke(lease.0).await }) {
            Ok(_) | Err(StoreError::LeaseExpired) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
