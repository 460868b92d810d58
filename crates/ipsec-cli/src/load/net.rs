//! The sockets of `ipsec load`: one UDP socket on the IKE port and one on 4500, each
//! read by a thread of its own that hands datagrams to the event loop through a
//! channel, so the loop can wait for either socket and its next timer at once
//! (`recv_timeout`) without polling. Buffers go back to their reader after use, so a
//! steady run allocates nothing per datagram.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a reader blocked in `recv_from` looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// What a reader hands to the loop.
pub(super) enum Input {
    /// A datagram that arrived at `local` (the bound address, ports included) from
    /// `from`; `reader` names the reader its buffer goes back to.
    Datagram {
        reader: usize,
        local: SocketAddr,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// A socket error that is not the echo of an ICMP error: the run cannot go on.
    Failed(String),
}

/// The two bound sockets (used here for sending), their readers and the channel.
pub(super) struct Net {
    s500: UdpSocket,
    s4500: UdpSocket,
    /// The bound address of the IKE port.
    pub(super) l500: SocketAddr,
    /// The bound address of port 4500.
    pub(super) l4500: SocketAddr,
    rx: Receiver<Input>,
    free: [Sender<Vec<u8>>; 2],
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<()>>,
}

impl Net {
    /// Binds `ike` and `natt` and starts their readers.
    pub(super) fn bind(ike: SocketAddr, natt: SocketAddr) -> Result<Net, String> {
        let s500 = UdpSocket::bind(ike).map_err(|e| format!("bind {ike}: {e}"))?;
        let s4500 = UdpSocket::bind(natt).map_err(|e| format!("bind {natt}: {e}"))?;
        let l500 = s500.local_addr().map_err(|e| e.to_string())?;
        let l4500 = s4500.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::with_capacity(2);
        let mut free = Vec::with_capacity(2);
        for (reader, (sock, local)) in [(&s500, l500), (&s4500, l4500)].into_iter().enumerate() {
            let sock = sock.try_clone().map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(STOP_CHECK))
                .map_err(|e| e.to_string())?;
            let (free_tx, free_rx) = mpsc::channel();
            free.push(free_tx);
            let (tx, stop) = (tx.clone(), Arc::clone(&stop));
            let t = std::thread::Builder::new()
                .name(format!("load-recv-{}", local.port()))
                .spawn(move || read_loop(reader, &sock, local, &tx, &free_rx, &stop))
                .map_err(|e| format!("reader thread: {e}"))?;
            readers.push(t);
        }
        let free: [Sender<Vec<u8>>; 2] = free
            .try_into()
            .map_err(|_| "two readers expected".to_string())?;
        Ok(Net {
            s500,
            s4500,
            l500,
            l4500,
            rx,
            free,
            stop,
            readers,
        })
    }

    /// Waits at most `wait` for the next input.
    pub(super) fn recv(&self, wait: Duration) -> Option<Input> {
        self.rx.recv_timeout(wait).ok()
    }

    /// The next input if one is waiting.
    pub(super) fn try_recv(&self) -> Option<Input> {
        self.rx.try_recv().ok()
    }

    /// Gives a datagram's buffer back to its reader.
    pub(super) fn recycle(&self, reader: usize, data: Vec<u8>) {
        if let Some(f) = self.free.get(reader) {
            let _ = f.send(data);
        }
    }

    /// Sends `payload` from the socket bound to `local`'s port (4500 or the IKE
    /// port).
    pub(super) fn send(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) -> std::io::Result<usize> {
        let sock = if local.port() == self.l4500.port() {
            &self.s4500
        } else {
            &self.s500
        };
        sock.send_to(payload, remote)
    }

    /// Stops the readers and waits for them (at most about `STOP_CHECK`).
    pub(super) fn shut_down(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx);
        for t in self.readers {
            let _ = t.join();
        }
    }
}

/// One reader: receives into its own buffer and forwards a copy in a recycled one.
fn read_loop(
    reader: usize,
    sock: &UdpSocket,
    local: SocketAddr,
    tx: &Sender<Input>,
    free: &Receiver<Vec<u8>>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let mut data = free.try_recv().unwrap_or_default();
                data.clear();
                data.extend_from_slice(&buf[..n]);
                let input = Input::Datagram {
                    reader,
                    local,
                    from,
                    data,
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
            // A timeout to look at the stop flag, or an ICMP error for something we
            // sent earlier (the peer's port is closed): nothing to read.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock
                        | ErrorKind::TimedOut
                        | ErrorKind::Interrupted
                        | ErrorKind::ConnectionRefused
                        | ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(format!("recv on {local}: {e}")));
                return;
            }
        }
    }
}
