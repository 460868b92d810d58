//! Certificates and private keys in swanctl's directory layout beside the
//! `swanctl.conf` (swanctl(8), "Files"): `x509/` our certificates (`certs = name` is
//! looked up there), `x509ca/` trust anchors and intermediates, `x509crl/` revocation
//! lists, and `private/`, `rsa/`, `ecdsa/`, `pkcs8/` private keys, of which the one
//! holding the public key of a connection's certificate is used. Absolute paths in
//! `certs` and `cacerts` are read as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipsec::crypto::CryptoProvider;
use ipsec::ike::{Config, Identity, LocalAuth, PeerAuth, VerifiesPeerCert};
use ipsec_pki::{CertVerifier, PrivateKey};

use super::model::{AuthMethod, Connection, GatewayConfig};

/// The key directories swanctl reads (swanctl(8)).
const KEY_DIRS: [&str; 4] = ["private", "rsa", "ecdsa", "pkcs8"];

/// What a connection signs with: its chain (end entity first) and the signer.
#[derive(Clone)]
struct Signing {
    chain: Vec<Vec<u8>>,
    auth: LocalAuth,
    subject: Identity,
}

/// The credentials of a [`GatewayConfig`], loaded from the directories beside its
/// file: per connection what it signs with and how it verifies its peer, and a
/// verifier over every trust anchor for the endpoint's own configuration (so that
/// its IKE_SA_INIT responses carry CERTREQ, RFC 7296 §3.7).
#[derive(Default)]
pub struct Credentials {
    signing: HashMap<String, Signing>,
    verifiers: HashMap<String, Arc<dyn VerifiesPeerCert>>,
    all: Option<Arc<dyn VerifiesPeerCert>>,
}

impl std::fmt::Debug for Credentials {
    /// Names the connections only: never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("signing", &self.signing.keys().collect::<Vec<_>>())
            .field("verifying", &self.verifiers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Every file of `dir` (none if it does not exist), sorted by name.
fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// `name` in `sub` of `dir`, or `name` itself when absolute.
fn resolve(dir: &Path, sub: &str, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(sub).join(p)
    }
}

impl Credentials {
    /// No credentials: every connection must use PSKs.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// Loads what the `pubkey` connections of `conf` need from `dir` (the directory of
    /// the `swanctl.conf`). Nothing is read when no connection uses `pubkey`.
    ///
    /// # Errors
    /// A message naming the connection and file: a certificate or key that does not
    /// load, no private key for a connection's certificate, a `pubkey` connection
    /// without `certs`, no trust anchor for a `pubkey` peer.
    pub fn load(
        dir: &Path,
        conf: &GatewayConfig,
        provider: &'static CryptoProvider,
    ) -> Result<Self, String> {
        let mut c = Credentials::default();
        let uses = |f: fn(&Connection) -> bool| conf.connections.iter().any(f);
        if !uses(|k| k.local.auth == AuthMethod::Pubkey || k.remote.auth == AuthMethod::Pubkey) {
            return Ok(c);
        }
        let mut anchors = Vec::new();
        for f in files(&dir.join("x509ca"))? {
            anchors.extend(ipsec_pki::load_certs(&f).map_err(|e| format!("{}: {e}", f.display()))?);
        }
        let mut crls = Vec::new();
        for f in files(&dir.join("x509crl"))? {
            crls.push(ipsec_pki::load_crl(&f).map_err(|e| format!("{}: {e}", f.display()))?);
        }
        let mut keys: Vec<PrivateKey> = Vec::new();
        for sub in KEY_DIRS {
            for f in files(&dir.join(sub))? {
                keys.push(
                    ipsec_pki::load_private_key(&f).map_err(|e| format!("{}: {e}", f.display()))?,
                );
            }
        }
        let verifier = |anchors: Vec<Vec<u8>>| -> Result<Arc<dyn VerifiesPeerCert>, String> {
            let v = CertVerifier::new(anchors)
                .map_err(|e| e.to_string())?
                .with_crls(crls.clone())
                .map_err(|e| format!("x509crl: {e}"))?;
            Ok(Arc::new(v))
        };
        for k in &conf.connections {
            let name = &k.name;
            if k.local.auth == AuthMethod::Pubkey {
                let Some(first) = k.local.certs.first() else {
                    return Err(format!(
                        "connection '{name}', local.certs: auth = pubkey needs our certificate"
                    ));
                };
                let path = resolve(dir, "x509", first);
                let mut chain = ipsec_pki::load_certs(&path).map_err(|e| {
                    format!("connection '{name}', local.certs {}: {e}", path.display())
                })?;
                let Some(ee) = chain.first().cloned() else {
                    return Err(format!(
                        "connection '{name}', local.certs: {} is empty",
                        path.display()
                    ));
                };
                append_intermediates(&mut chain, &anchors);
                let key = keys
                    .iter()
                    .find(|p| ipsec_pki::check_key_matches_cert(p, &ee).is_ok())
                    .ok_or_else(|| {
                        format!(
                            "connection '{name}': no private key in {} for {}",
                            KEY_DIRS.map(|d| format!("{d}/")).join(", "),
                            path.display()
                        )
                    })?;
                let auth = ipsec_pki::local_auth(provider, key, k.local.rsa_pss)
                    .map_err(|e| format!("connection '{name}', local: {e}"))?;
                let subject = ipsec_pki::cert_identity(&ee)
                    .map_err(|e| format!("connection '{name}', {}: {e}", path.display()))?;
                c.signing.insert(
                    name.clone(),
                    Signing {
                        chain,
                        auth,
                        subject,
                    },
                );
            }
            if k.remote.auth == AuthMethod::Pubkey {
                let mine = if k.remote.cacerts.is_empty() {
                    anchors.clone()
                } else {
                    let mut v = Vec::new();
                    for f in &k.remote.cacerts {
                        let p = resolve(dir, "x509ca", f);
                        v.extend(ipsec_pki::load_certs(&p).map_err(|e| {
                            format!("connection '{name}', remote.cacerts {}: {e}", p.display())
                        })?);
                    }
                    v
                };
                if mine.is_empty() {
                    return Err(format!(
                        "connection '{name}', remote: auth = pubkey needs a trust anchor (x509ca/ or cacerts)"
                    ));
                }
                let v = verifier(mine).map_err(|e| format!("connection '{name}', remote: {e}"))?;
                c.verifiers.insert(name.clone(), v);
            }
        }
        if !anchors.is_empty() && uses(|k| k.remote.auth == AuthMethod::Pubkey) {
            c.all = Some(verifier(anchors).map_err(|e| format!("x509ca: {e}"))?);
        }
        Ok(c)
    }

    /// Puts connection `conn`'s credentials into `cfg`: our chain, signer and (without
    /// `local.id`) the certificate's subject as our identity; the peer's verifier.
    pub fn apply(&self, conn: &Connection, cfg: &mut Config) {
        if let Some(s) = self.signing.get(&conn.name) {
            cfg.auth = s.auth.clone();
            cfg.local_certs = s.chain.clone();
            if conn.local.id.is_none() {
                cfg.local_id = s.subject.clone();
            }
        }
        if let Some(v) = self.verifiers.get(&conn.name) {
            cfg.peer_auth = PeerAuth::Certificate {
                verifier: Arc::clone(v),
            };
        }
    }

    /// A verifier over every trust anchor in `x509ca/`, when a connection
    /// authenticates its peer with certificates: the endpoint's own configuration
    /// takes it, so that IKE_SA_INIT responses ask for certificates.
    pub fn any_verifier(&self) -> Option<Arc<dyn VerifiesPeerCert>> {
        self.all.clone()
    }
}

/// Appends to `chain` the intermediates from `pool` that continue it (issuer of the
/// last = subject of the next, not self-signed), as strongSwan sends the
/// intermediates it finds in `x509ca/`.
fn append_intermediates(chain: &mut Vec<Vec<u8>>, pool: &[Vec<u8>]) {
    // A chain longer than this is not a chain we build.
    for _ in 0..8 {
        let Some(last) = chain.last() else { return };
        let Ok(want) = ipsec_pki::issuer(last) else {
            return;
        };
        let next = pool.iter().find(|c| {
            let (Ok(s), Ok(i)) = (ipsec_pki::subject(c), ipsec_pki::issuer(c)) else {
                return false;
            };
            s == want && s != i && !chain.contains(c)
        });
        match next {
            Some(c) => chain.push(c.clone()),
            None => return,
        }
    }
}
