//! What `ipsec connect`, `listen` and `load` read from their options the same way: the
//! pre-shared key, traffic selectors, the remote address, and the local address the
//! kernel would use towards it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;

use ipsec::core::TrafficSelector;

/// The environment variable that holds the pre-shared key when neither `--psk` nor
/// `--psk-file` is given.
pub const PSK_ENV: &str = "IPSEC_PSK";

/// The pre-shared key: `--psk`, else the contents of `--psk-file` (without one
/// trailing newline, with a warning when other users may read it), else `IPSEC_PSK`.
pub(crate) fn read_psk(psk: Option<&str>, file: Option<&Path>) -> Result<Vec<u8>, String> {
    let key = if let Some(s) = psk {
        s.as_bytes().to_vec()
    } else if let Some(path) = file {
        let mut b =
            std::fs::read(path).map_err(|e| format!("--psk-file {}: {e}", path.display()))?;
        warn_if_shared(path);
        strip_newline(&mut b);
        b
    } else if let Some(v) = std::env::var_os(PSK_ENV) {
        v.into_encoded_bytes()
    } else {
        return Err(format!(
            "no pre-shared key: give --psk-file FILE, set {PSK_ENV}, or give --psk SECRET"
        ));
    };
    if key.is_empty() {
        return Err("the pre-shared key is empty".into());
    }
    Ok(key)
}

/// Removes one trailing newline ("\n" or "\r\n"), as an editor or `echo` leaves it.
pub(crate) fn strip_newline(b: &mut Vec<u8>) {
    if b.ends_with(b"\r\n") {
        b.truncate(b.len() - 2);
    } else if b.ends_with(b"\n") {
        b.truncate(b.len() - 1);
    }
}

/// Warns (on stderr) when other users may read the key file.
pub(crate) fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "ipsec: warning: {} is accessible to other users (mode {mode:03o}); chmod 600 it",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A selector from a CIDR (a bare address is a host).
pub(crate) fn parse_ts(s: &str) -> Result<TrafficSelector, String> {
    let (a, l) = s
        .split_once('/')
        .unwrap_or((s, if s.contains(':') { "128" } else { "32" }));
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("bad address in selector \"{s}\""))?;
    let len: u8 = l
        .parse()
        .map_err(|_| format!("bad prefix length in selector \"{s}\""))?;
    TrafficSelector::from_prefix(addr, len).ok_or_else(|| format!("bad selector \"{s}\""))
}

/// `ADDR` or `ADDR:PORT` (`port` when none is given).
pub(crate) fn parse_remote(s: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("bad --remote \"{s}\""))?;
    Ok(SocketAddr::new(ip, port))
}

/// The address the kernel would send from towards `remote`.
pub(crate) fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let bind = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(remote).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::strip_newline;

    #[test]
    fn one_trailing_newline_is_removed() {
        for (file, key) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret", b"secret"),
            (b"secret\n\n", b"secret\n"),
            (b"sec ret \n", b"sec ret "),
            (b"\n", b""),
        ] {
            let mut b = file.to_vec();
            strip_newline(&mut b);
            assert_eq!(b, key);
        }
    }
}
