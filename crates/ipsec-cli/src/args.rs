//! What `ipsec connect`, `listen` and `load` read from their options the same way: the
//! pre-shared key, certificates and keys (`--cert`, `--key`, `--ca`, `--crl`,
//! `--rsa-pss`), identities, traffic selectors, the remote address, and the local
//! address the kernel would use towards it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipsec::core::TrafficSelector;
use ipsec::crypto::CryptoProvider;
use ipsec::ike::{Config, Identity, LocalAuth, PeerAuth};

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

/// Certificate options shared by `ipsec connect`, `listen` and `load`. Files are PEM
/// as strongSwan's `pki --outform pem` writes them, or DER.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CertArgs {
    /// Our certificate, sent in CERT payloads: one file, end entity first, followed by
    /// the intermediates to send. We then sign AUTH with --key (RFC 7427) and, without
    /// --id, use its subject as our identity.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Our private key (PKCS#8, PKCS#1 or SEC1): RSA, ECDSA P-256/P-384 or Ed25519. It
    /// must hold the public key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Sign with RSASSA-PSS rather than PKCS#1 v1.5 (an RSA --key only).
    #[arg(long = "rsa-pss", requires = "key")]
    pub rsa_pss: bool,
    /// A trust anchor for the peer's certificate (repeatable; a file may hold several
    /// certificates). The peer must then authenticate with a certificate that chains
    /// to one of them, not with the PSK.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// A certificate revocation list of one of the CAs (repeatable).
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub crl: Vec<PathBuf>,
}

/// The credentials the certificate options name, loaded and checked.
pub(crate) struct Credentials {
    /// Our chain and how we sign, from --cert and --key.
    local: Option<(Vec<Vec<u8>>, LocalAuth)>,
    /// The identity our certificate proves: its subject DN.
    pub(crate) local_id: Option<Identity>,
    /// How the peer authenticates, from --ca and --crl.
    peer: Option<PeerAuth>,
}

impl Credentials {
    /// Reads the files of `args`; checks that the key belongs to the certificate.
    pub(crate) fn load(args: &CertArgs, provider: &'static CryptoProvider) -> Result<Self, String> {
        let mut c = Credentials {
            local: None,
            local_id: None,
            peer: None,
        };
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            let chain = ipsec_pki::load_certs(cert)
                .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
            let Some(ee) = chain.first() else {
                return Err(format!("--cert {}: no certificate in it", cert.display()));
            };
            warn_if_shared(key);
            let private = ipsec_pki::load_private_key(key)
                .map_err(|e| format!("--key {}: {e}", key.display()))?;
            ipsec_pki::check_key_matches_cert(&private, ee).map_err(|e| {
                format!("--key {} and --cert {}: {e}", key.display(), cert.display())
            })?;
            let auth = ipsec_pki::local_auth(provider, &private, args.rsa_pss)
                .map_err(|e| format!("--key {}: {e}", key.display()))?;
            c.local_id = Some(
                ipsec_pki::cert_identity(ee)
                    .map_err(|e| format!("--cert {}: {e}", cert.display()))?,
            );
            c.local = Some((chain, auth));
        }
        if !args.ca.is_empty() {
            let mut anchors = Vec::new();
            for f in &args.ca {
                let certs =
                    ipsec_pki::load_certs(f).map_err(|e| format!("--ca {}: {e}", f.display()))?;
                anchors.extend(certs);
            }
            let mut crls = Vec::new();
            for f in &args.crl {
                crls.push(
                    ipsec_pki::load_crl(f).map_err(|e| format!("--crl {}: {e}", f.display()))?,
                );
            }
            let verifier = ipsec_pki::CertVerifier::new(anchors)
                .map_err(|e| format!("--ca: {e}"))?
                .with_crls(crls)
                .map_err(|e| format!("--crl: {e}"))?;
            c.peer = Some(PeerAuth::Certificate {
                verifier: Arc::new(verifier),
            });
        }
        Ok(c)
    }

    /// Whether either direction still authenticates with the pre-shared key (`eap`:
    /// we authenticate with EAP, not with --cert or the PSK).
    pub(crate) fn needs_psk(&self, eap: bool) -> bool {
        (self.local.is_none() && !eap) || self.peer.is_none()
    }

    /// `cfg` with these credentials in place of the PSK where they apply.
    pub(crate) fn apply(&self, mut cfg: Config) -> Config {
        if let Some((chain, auth)) = &self.local {
            cfg.auth = auth.clone();
            cfg.local_certs = chain.clone();
        }
        if let Some(peer) = &self.peer {
            cfg.peer_auth = peer.clone();
        }
        cfg
    }
}

/// An identity in strongSwan's syntax: an IP address, `@fqdn`, `user@fqdn`, `@#hex`,
/// a bare FQDN, or a distinguished name (`C=CH, O=Example, CN=gw.example`).
pub(crate) fn parse_id(s: &str) -> Result<Identity, String> {
    ipsec_pki::parse_identity(s).map_err(|e| e.to_string())
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
