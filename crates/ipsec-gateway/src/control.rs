//! The control socket (`--control PATH`, a Unix stream socket) and the metrics
//! listener (`--metrics ADDR`, HTTP): both hand a [`Request`] to the control loop and
//! write its answer back, so the driver is only ever touched by its own thread.
//!
//! The control protocol is one request line per connection and one answer: `status`
//! (the [`Status`](crate::driver::Status) as JSON), `initiate NAME`, `redirect
//! IKE-SA|PEER GATEWAY` (RFC 5685, ours: docs/gateway.md); an answer
//! starting with `error:` is a failure. The metrics listener answers every HTTP
//! request with the Prometheus text; it is a few lines over `TcpListener` rather than
//! an HTTP server crate because it serves one fixed document to a scraper and parses
//! nothing but the request line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing::{debug, warn};

/// Most bytes of a request line read.
const MAX_REQUEST: u64 = 4096;
/// How long a request waits for the control loop.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asks the control loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The status as JSON.
    Status,
    /// Initiate this connection.
    Initiate(String),
    /// The Prometheus metrics text.
    Metrics,
    /// `redirect <ike-sa|peer> <gateway>`: send the client of an established IKE SA
    /// (its handle, or the peer's address or identity) to another gateway (RFC 5685
    /// §5).
    Redirect {
        /// The IKE SA handle, peer address or peer identity.
        target: String,
        /// The gateway: an IP address or a host name.
        to: String,
    },
}

impl Command {
    /// Parses a request line.
    ///
    /// # Errors
    /// A message naming the unknown command.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim();
        match line.split_once(' ') {
            None if line == "status" => Ok(Command::Status),
            None if line == "metrics" => Ok(Command::Metrics),
            Some(("initiate", name)) if !name.trim().is_empty() => {
                Ok(Command::Initiate(name.trim().to_string()))
            }
            Some(("redirect", rest)) => match rest.split_whitespace().collect::<Vec<_>>()[..] {
                [target, to] => Ok(Command::Redirect {
                    target: target.to_string(),
                    to: to.to_string(),
                }),
                _ => Err("usage: redirect <ike-sa|peer> <gateway>".into()),
            },
            _ => Err(format!("unknown command {line:?}")),
        }
    }
}

/// A command with the channel its answer goes to.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// Where the answer goes.
    pub reply: Sender<String>,
}

/// A listener thread; dropping it does not stop it, [`Listener::stop`] does.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: Option<PathBuf>,
}

impl Listener {
    /// Stops the thread (and removes the socket file).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn ask(to: &Sender<Request>, command: Command) -> String {
    let (tx, rx) = mpsc::channel();
    if to.send(Request { command, reply: tx }).is_err() {
        return "error: gateway is stopping".into();
    }
    rx.recv_timeout(ANSWER_TIMEOUT)
        .unwrap_or_else(|_| "error: no answer".into())
}

/// Serves the control socket at `path` (replacing a stale socket file).
///
/// # Errors
/// Binding the socket.
pub fn serve_control(path: &Path, to: Sender<Request>) -> std::io::Result<Listener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(e) = control_client(stream, &to) {
                            debug!(error = %e, "control client");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        warn!(error = %e, "control socket");
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })?;
    Ok(Listener {
        stop,
        thread: Some(thread),
        path: Some(path.to_path_buf()),
    })
}

fn control_client(stream: UnixStream, to: &Sender<Request>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let answer = match Command::parse(&line) {
        Ok(c) => ask(to, c),
        Err(e) => format!("error: {e}"),
    };
    (&stream).write_all(answer.as_bytes())?;
    (&stream).write_all(b"\n")
}

/// Sends `command` to the control socket at `path` and returns the answer.
///
/// # Errors
/// Connecting, or an answer that starts with `error:`.
pub fn request(path: &Path, command: &str) -> Result<String, String> {
    let mut s =
        UnixStream::connect(path).map_err(|e| format!("control socket {}: {e}", path.display()))?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT + Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{command}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    match answer.strip_prefix("error: ") {
        Some(e) => Err(e.trim().to_string()),
        None => Ok(answer),
    }
}

/// Serves the metrics over HTTP at `addr`; returns the listener and the bound
/// address (for port 0).
///
/// # Errors
/// Binding the address.
pub fn serve_metrics(
    addr: SocketAddr,
    to: Sender<Request>,
) -> std::io::Result<(Listener, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut first = String::new();
                        let _ = BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut first);
                        let (status, body) = if first.starts_with("GET ") {
                            ("200 OK", ask(&to, Command::Metrics))
                        } else {
                            ("405 Method Not Allowed", String::new())
                        };
                        let head = format!(
                            "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = (&stream).write_all(head.as_bytes());
                        let _ = (&stream).write_all(body.as_bytes());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        warn!(error = %e, "metrics listener");
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })?;
    Ok((
        Listener {
            stop,
            thread: Some(thread),
            path: None,
        },
        bound,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(Command::parse("status\n"), Ok(Command::Status));
        assert_eq!(
            Command::parse("initiate net"),
            Ok(Command::Initiate("net".into()))
        );
        assert!(Command::parse("initiate ").is_err());
        assert!(Command::parse("reboot").is_err());
        assert_eq!(
            Command::parse("redirect 7 192.0.2.9\n"),
            Ok(Command::Redirect {
                target: "7".into(),
                to: "192.0.2.9".into()
            })
        );
        assert!(Command::parse("redirect 7").is_err());
        assert!(Command::parse("redirect 7 a b").is_err());
    }

    #[test]
    fn a_request_reaches_the_loop_and_its_answer_the_client() {
        let dir = std::env::temp_dir().join(format!("ipsec-gw-ctl-{}", std::process::id()));
        let (tx, rx) = mpsc::channel::<Request>();
        let l = serve_control(&dir, tx).unwrap();
        let server = thread::spawn(move || {
            let r = rx.recv().unwrap();
            assert_eq!(r.command, Command::Status);
            r.reply.send("{\"ok\":1}".into()).unwrap();
            let r = rx.recv().unwrap();
            r.reply.send("error: no connection x".into()).unwrap();
        });
        assert_eq!(request(&dir, "status").unwrap().trim(), "{\"ok\":1}");
        assert_eq!(request(&dir, "initiate x").unwrap_err(), "no connection x");
        assert!(request(&dir, "bogus")
            .unwrap_err()
            .contains("unknown command"));
        server.join().unwrap();
        l.stop();
        assert!(!dir.exists());
    }
}
