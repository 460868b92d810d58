//! Certificate authentication through the gateway's configuration: `swanctl.conf`
//! connections with `auth = pubkey` and swanctl's credential directories beside the
//! file (`x509/`, `x509ca/`, `ecdsa/`, `pkcs8/`), turned into drivers by
//! `Credentials::load` and `driver_inputs`, which then negotiate with each other in
//! memory. The certificates in tests/data/pki were made with strongSwan's `pki`: a CA
//! and an intermediate, `gw.pem` (ECDSA P-256, "CN=gw.test"), `peer.pem` (Ed25519,
//! "CN=peer.test"), and `rogue.pem`, issued by another CA with the same name.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ipsec::core::Instant;
use ipsec::ike::{CloseReason, PeerAuth};
use ipsec::sad::{Sad, SadConfig};
use ipsec_gateway::conf::{parse_swanctl, Credentials};
use ipsec_gateway::driver::{reason_label, Driver, Notice};
use ipsec_gateway::gateway::driver_inputs;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pki");

/// A directory in swanctl's layout: `files` are (subdirectory, file in tests/data/pki).
fn layout(name: &str, files: &[(&str, &str)]) -> PathBuf {
    // Tests run in parallel: each layout gets its own directory.
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("ipsec-gw-certs-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, f) in files {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(Path::new(DATA).join(f), dir.join(sub).join(f)).unwrap();
    }
    dir
}

struct Node {
    ip: IpAddr,
    driver: Driver,
}

fn node(dir: &Path, conf: &str) -> (Node, Arc<ipsec::ike::Config>) {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let conf = parse_swanctl("swanctl.conf", conf.as_bytes()).unwrap();
    let creds = Credentials::load(dir, &conf, provider).unwrap();
    let inputs = driver_inputs(&conf, &creds, None).unwrap();
    let ip = inputs.local_addrs[0];
    let base = Arc::clone(&inputs.base);
    let sad = Arc::new(Sad::new(provider, SadConfig::new()).unwrap());
    let mut driver = Driver::new(inputs.base, inputs.conns, inputs.secrets, sad, provider).unwrap();
    driver.keep_notices(true);
    (Node { ip, driver }, base)
}

fn pump(nodes: &mut [Node], now: Instant) {
    let mut drivers: Vec<(IpAddr, &mut Driver)> =
        nodes.iter_mut().map(|n| (n.ip, &mut n.driver)).collect();
    common::exchange(&mut drivers, now);
}

fn notices(n: &mut Node) -> Vec<Notice> {
    std::iter::from_fn(|| n.driver.poll_notice()).collect()
}

/// The gateway: its certificate from `x509/`, its key found among `ecdsa/`, any
/// peer whose certificate chains to `x509ca/` (no `remote.id`).
const GW: &str = r#"
connections {
  rw {
    local_addrs = 192.0.2.1
    local { auth = pubkey
            certs = gw.pem }
    remote { auth = pubkey }
    children { net { local_ts = 10.1.0.0/16
                     remote_ts = 10.2.0.0/16 } }
  }
}
"#;

/// The peer: signs with `cert`, requires the gateway by its DN.
fn peer_conf(cert: &str) -> String {
    format!(
        r#"
connections {{
  gw {{
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    local {{ auth = pubkey
            certs = {cert} }}
    remote {{ auth = pubkey
             id = "C=CH, O=ipsec-rs test, CN=gw.test" }}
    children {{ net {{ local_ts = 10.2.0.0/16
                     remote_ts = 10.1.0.0/16
                     start_action = start }} }}
  }}
}}
"#
    )
}

fn gateway() -> (Node, Arc<ipsec::ike::Config>) {
    let dir = layout(
        "gw",
        &[
            ("x509", "gw.pem"),
            ("ecdsa", "gw.key"),
            ("x509ca", "ca.pem"),
            ("x509ca", "inter.pem"),
        ],
    );
    node(&dir, GW)
}

#[test]
fn pubkey_connections_authenticate_with_certificates_from_the_directories() {
    let now = Instant::from_secs(10);
    let (gw, base) = gateway();
    // IKE_SA_INIT is answered with the endpoint's configuration: it must ask for
    // certificates (CERTREQ), or charon as initiator sends none.
    assert!(matches!(base.peer_auth, PeerAuth::Certificate { .. }));
    let dir = layout(
        "peer",
        &[
            ("x509", "peer.pem"),
            ("pkcs8", "peer.key"),
            ("x509ca", "ca.pem"),
            ("x509ca", "inter.pem"),
        ],
    );
    let (peer, _) = node(&dir, &peer_conf("peer.pem"));
    let mut nodes = vec![gw, peer];
    nodes[1].driver.start(now);
    pump(&mut nodes, now);
    let up = |n: &mut Node| {
        notices(n).into_iter().find_map(|x| match x {
            Notice::IkeUp { peer_id, .. } => Some(peer_id),
            _ => None,
        })
    };
    // Each side is identified by its certificate's subject (no local.id), which the
    // gateway accepts without a remote.id and the peer matches against its DN.
    let gw_saw = up(&mut nodes[0]).expect("the gateway's IKE SA is up");
    let peer_saw = up(&mut nodes[1]).expect("the peer's IKE SA is up");
    assert_eq!(
        gw_saw,
        ipsec_pki::parse_identity("C=CH, O=ipsec-rs test, CN=peer.test").unwrap()
    );
    assert_eq!(
        peer_saw,
        ipsec_pki::parse_identity("C=CH, O=ipsec-rs test, CN=gw.test").unwrap()
    );
    assert_eq!(nodes[0].driver.status(now).ike_sas.len(), 1);
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_its_reason() {
    let now = Instant::from_secs(10);
    let (gw, _) = gateway();
    let dir = layout(
        "rogue",
        &[
            ("x509", "rogue.pem"),
            ("pkcs8", "rogue.key"),
            ("x509ca", "ca.pem"),
            ("x509ca", "inter.pem"),
        ],
    );
    let (peer, _) = node(&dir, &peer_conf("rogue.pem"));
    let mut nodes = vec![gw, peer];
    nodes[1].driver.start(now);
    pump(&mut nodes, now);
    let closed: Vec<CloseReason> = notices(&mut nodes[0])
        .into_iter()
        .filter_map(|x| match x {
            Notice::IkeClosed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    let label = reason_label(&closed[0]);
    assert!(
        label == "authentication_failed_unknown_issuer"
            || label == "authentication_failed_bad_chain_signature",
        "{label}"
    );
    assert!(notices(&mut nodes[1]).iter().any(|x| matches!(
        x,
        Notice::IkeClosed { reason, .. } if reason_label(reason) == "authentication_failed_rejected_by_peer"
    )));
}

#[test]
fn a_pubkey_connection_without_its_key_does_not_load() {
    let provider = &ipsec::DEFAULT_PROVIDER;
    let dir = layout(
        "nokey",
        &[
            ("x509", "gw.pem"),
            ("pkcs8", "peer.key"),
            ("x509ca", "ca.pem"),
        ],
    );
    let conf = parse_swanctl("swanctl.conf", GW.as_bytes()).unwrap();
    let e = Credentials::load(&dir, &conf, provider).unwrap_err();
    assert!(e.contains("no private key"), "{e}");
}
