//! What an IKEv2 handshake with ECDSA P-256 signatures and certificates costs beside
//! the cryptography it cannot avoid, in one run (issue #14: at most 1.5x).
//!
//! Criterion group `handshake_cert`, suite `aes128gcm16-prfsha256-x25519` (key
//! exchange Curve25519, PRF HMAC-SHA2-256), `ipsec::DEFAULT_PROVIDER`:
//! - `full`: IKE_SA_INIT + IKE_AUTH with the first Child SA between two fresh
//!   in-memory `IkeEndpoint`s, both signing with ECDSA P-256 (RFC 7427 method 14,
//!   `ecdsa-with-SHA256`) and authenticating the peer by its certificate (CA → end
//!   entity, checked by `ipsec_pki::CertVerifier` against the CA as trust anchor);
//! - `full-raw-keys`: the same handshake, the peer's public key configured instead of
//!   a certificate (no CERT or CERTREQ payloads, no path validation);
//! - `primitives`: the cryptographic work of `full` alone, through the
//!   `ipsec-crypto` provider traits: one X25519 exchange (both key pairs, both
//!   shared secrets); per side SKEYSEED, the seven IKE SA keys (prf+), the two
//!   `prf(SK_p, ID')` of the signed octets (its own, the peer's), one ECDSA P-256
//!   signature of its signed octets, one verification of the peer's, one
//!   verification of the peer's certificate signature (the chain is CA → end entity,
//!   and the trust anchor's own signature is not checked, so one per side), and the
//!   Child SA KEYMAT;
//! - `chain`: the two certificate signature verifications of `primitives` alone.
//!
//! The certificates are fixed ones in `certs/` (made by `certs/make.sh` with
//! OpenSSL), verified at a fixed time inside their validity.
//!
//! After criterion, an *alternating* run times the four lines back to back, 400
//! rounds (`HANDSHAKE_CERT_ROUNDS`), so that other processes slow them alike, and
//! prints minima, medians, `full / primitives` and `full-raw-keys / (primitives -
//! chain)`.
//!
//! Run: `cargo bench -p ipsec-benches --bench handshake_cert`. Results in
//! docs/performance.md, "IKEv2 handshake with certificates".

#![allow(clippy::disallowed_methods)] // a bench measures wall-clock time

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use ipsec::crypto::kdf::{self, IkeKeyLengths};
use ipsec::crypto::{CryptoProvider, KeId, PrfId, SignatureScheme, Signer};
use ipsec::ike::{Config, IkeEndpoint, Instant};
use ipsec_pki::{CertVerifier, FixedClock};

const SUITE: &str = "aes128gcm16-prfsha256-x25519";
const GROUP: KeId = KeId::CURVE25519;
const PRF: PrfId = PrfId::PRF_HMAC_SHA2_256;
const SCHEME: SignatureScheme = SignatureScheme::EcdsaP256Sha256;
/// 2027-01-01T00:00:00Z, inside the certificates' validity (2026-12-04 to 2036-12-01).
const VERIFY_AT: u64 = 1_798_761_600;

const CA_PEM: &str = include_str!("certs/ca.pem");
const A_PEM: &str = include_str!("certs/a.pem");
const A_KEY_PEM: &str = include_str!("certs/a.key.pem");
const B_PEM: &str = include_str!("certs/b.pem");
const B_KEY_PEM: &str = include_str!("certs/b.key.pem");

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// One side's key and certificate, and what checking its certificate takes.
struct Side {
    id: &'static str,
    /// PKCS#8 private key.
    key: Vec<u8>,
    /// The end-entity certificate.
    cert: Vec<u8>,
    /// Its SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// Its TBSCertificate, what the CA signed.
    tbs: Vec<u8>,
    /// The CA's signature over `tbs` (DER `Ecdsa-Sig-Value`).
    cert_sig: Vec<u8>,
}

impl Side {
    fn new(id: &'static str, cert_pem: &str, key_pem: &str) -> Self {
        let cert = one_cert(cert_pem);
        let (tbs, cert_sig, spki) = cert_parts(&cert);
        Side {
            id,
            key: ipsec_pki::parse_private_key(key_pem.as_bytes())
                .unwrap()
                .der()
                .to_vec(),
            spki,
            tbs,
            cert_sig,
            cert,
        }
    }

    fn signer(&self, p: &CryptoProvider) -> Arc<dyn Signer> {
        let alg = p.signing_algorithm(SCHEME).unwrap();
        Arc::from(alg.new_signer(&self.key, p.secure_random).unwrap())
    }
}

/// The DER of the one certificate in `pem`.
fn one_cert(pem: &str) -> Vec<u8> {
    let mut certs = ipsec_pki::parse_certs(pem.as_bytes()).unwrap();
    assert_eq!(certs.len(), 1);
    certs.remove(0)
}

/// A certificate's TBSCertificate (what its issuer signed), the signature over it
/// and its SubjectPublicKeyInfo (RFC 5280 §4.1).
fn cert_parts(cert: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use x509_cert::der::{Decode, Encode};
    let c = x509_cert::Certificate::from_der(cert).unwrap();
    let tbs = c.tbs_certificate.to_der().unwrap();
    assert!(
        cert.windows(tbs.len()).any(|w| w == tbs),
        "the TBSCertificate re-encodes to the signed bytes"
    );
    (
        tbs,
        c.signature.raw_bytes().to_vec(),
        c.tbs_certificate.subject_public_key_info.to_der().unwrap(),
    )
}

/// The fixed test PKI.
struct Pki {
    ca: Vec<u8>,
    ca_spki: Vec<u8>,
    a: Side,
    b: Side,
}

impl Pki {
    fn load() -> Self {
        let ca = one_cert(CA_PEM);
        Pki {
            ca_spki: cert_parts(&ca).2,
            ca,
            a: Side::new("@a.bench", A_PEM, A_KEY_PEM),
            b: Side::new("@b.bench", B_PEM, B_KEY_PEM),
        }
    }
}

fn base_config(id: &str) -> Config {
    Config::new(id.parse().unwrap(), "unused-psk-0123456789")
        .with_ike_proposals(SUITE)
        .unwrap()
        .with_esp_proposals("aes128gcm16")
        .unwrap()
}

/// Both sides sign; each trusts the other's public key as configured.
fn raw_key_configs(p: &CryptoProvider, pki: &Pki) -> (Arc<Config>, Arc<Config>) {
    let mk = |me: &Side, peer: &Side| {
        Arc::new(
            base_config(me.id)
                .with_signer(me.signer(p))
                .with_peer_public_key(peer.spki.clone()),
        )
    };
    (mk(&pki.a, &pki.b), mk(&pki.b, &pki.a))
}

/// Both sides sign, send their certificate and check the peer's against the CA.
fn cert_configs(p: &CryptoProvider, pki: &Pki) -> (Arc<Config>, Arc<Config>) {
    let mk = |me: &Side| {
        let verifier = CertVerifier::new(vec![pki.ca.clone()])
            .unwrap()
            .with_clock(Arc::new(FixedClock(VERIFY_AT)));
        Arc::new(
            base_config(me.id)
                .with_signer(me.signer(p))
                .with_local_certs(vec![me.cert.clone()])
                .with_peer_certificates(Arc::new(verifier)),
        )
    };
    (mk(&pki.a), mk(&pki.b))
}

/// One handshake; returns the number of datagrams exchanged.
fn handshake(p: &'static CryptoProvider, a_cfg: &Arc<Config>, b_cfg: &Arc<Config>) -> usize {
    let a_addr: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let b_addr: SocketAddr = "192.0.2.2:500".parse().unwrap();
    let mut a = IkeEndpoint::new(a_cfg.clone(), p);
    let mut b = IkeEndpoint::new(b_cfg.clone(), p);
    let now = Instant::from_secs(1);
    let h = a.connect(now, a_addr, b_addr).unwrap();
    let mut n = 0;
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
            n += 1;
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
            n += 1;
        }
        if !moved {
            break;
        }
    }
    assert!(a.is_established(h), "handshake failed");
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    n
}

/// SK_pi (side 0, the initiator) or SK_pr (side 1) of `k`.
fn sk_p(k: &kdf::IkeKeys, side: usize) -> &[u8] {
    if side == 0 {
        k.sk_pi.expose()
    } else {
        k.sk_pr.expose()
    }
}

/// What `primitives` works with, made once.
struct Work {
    signers: [Arc<dyn Signer>; 2],
    spkis: [Vec<u8>; 2],
    tbs: [Vec<u8>; 2],
    cert_sigs: [Vec<u8>; 2],
    ca_spki: Vec<u8>,
}

impl Work {
    fn new(p: &CryptoProvider, pki: &Pki) -> Self {
        Work {
            signers: [pki.a.signer(p), pki.b.signer(p)],
            spkis: [pki.a.spki.clone(), pki.b.spki.clone()],
            tbs: [pki.a.tbs.clone(), pki.b.tbs.clone()],
            cert_sigs: [pki.a.cert_sig.clone(), pki.b.cert_sig.clone()],
            ca_spki: pki.ca_spki.clone(),
        }
    }
}

/// The certificate signature verifications of one handshake: each side checks the
/// CA's signature on the other's end-entity certificate.
fn chain(p: &CryptoProvider, w: &Work) {
    let v = p.signature_verifier(SCHEME).unwrap();
    for side in 0..2 {
        v.verify(&w.ca_spki, &w.tbs[side], &w.cert_sigs[side])
            .unwrap();
    }
}

/// The cryptography of one handshake with signatures and certificates, nothing
/// else (see the module docs for the list).
fn primitives(p: &CryptoProvider, w: &Work) {
    let rng = p.secure_random;
    let kx = p.kx(GROUP).unwrap();
    let prf = p.prf(PRF).unwrap();
    let verifier = p.signature_verifier(SCHEME).unwrap();
    let ni = [1u8; 32];
    let nr = [2u8; 32];
    let (spi_i, spi_r) = ([3u8; 8], [4u8; 8]);
    // The IKE_SA_INIT messages each side signs, and the ID payload bodies.
    let msgs = [[5u8; 250], [6u8; 250]];
    let ids = [[7u8; 12], [8u8; 12]];
    let nonces = [nr, ni]; // the initiator signs the responder's nonce, and so on

    // Initiator key pair; responder key pair and secret; initiator secret.
    let i = kx.start(rng).unwrap();
    let (r_pub, r_secret) = kx.respond(rng, i.public()).unwrap();
    let i_secret = i.complete(&r_pub).unwrap();
    let lens = IkeKeyLengths {
        prf_key: prf.key_len(),
        integ_key: 0,
        encr_key: 20,
    };
    // Each side derives the IKE SA keys from its own copy of the shared secret.
    let keys = [&i_secret, &r_secret].map(|secret| {
        let skeyseed = kdf::skeyseed(prf, &ni, &nr, secret.expose()).unwrap();
        kdf::ike_keys(prf, skeyseed.expose(), &ni, &nr, &spi_i, &spi_r, lens).unwrap()
    });
    // RFC 7296 §2.15 signed octets: message | peer's nonce | prf(SK_p, ID').
    let octets = |side: usize, sk_p: &[u8]| {
        let maced = kdf::prf(prf, sk_p, &[&ids[side]]).unwrap();
        [&msgs[side][..], &nonces[side], maced.expose()].concat()
    };
    for side in 0..2 {
        // Sign our AUTH; the peer verifies it with its own copy of the keys.
        let sig = w.signers[side]
            .sign(rng, &octets(side, sk_p(&keys[side], side)))
            .unwrap();
        verifier
            .verify(
                &w.spkis[side],
                &octets(side, sk_p(&keys[1 - side], side)),
                &sig,
            )
            .unwrap();
        // The peer checks the CA's signature on our certificate.
        verifier
            .verify(&w.ca_spki, &w.tbs[side], &w.cert_sigs[side])
            .unwrap();
        black_box(kdf::child_keymat(prf, keys[side].sk_d.expose(), None, &ni, &nr, 40).unwrap());
    }
}

fn bench(c: &mut Criterion, pki: &Pki) {
    let p: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let (ra, rb) = raw_key_configs(p, pki);
    let (ca, cb) = cert_configs(p, pki);
    let w = Work::new(p, pki);
    let n_raw = handshake(p, &ra, &rb);
    let n_cert = handshake(p, &ca, &cb);
    chain(p, &w);
    primitives(p, &w);
    eprintln!("datagrams per handshake: raw keys {n_raw}, certificates {n_cert}");
    let mut g = c.benchmark_group("handshake_cert");
    g.bench_function("full", |b| b.iter(|| black_box(handshake(p, &ca, &cb))));
    g.bench_function("primitives", |b| b.iter(|| primitives(p, &w)));
    g.bench_function("full-raw-keys", |b| {
        b.iter(|| black_box(handshake(p, &ra, &rb)))
    });
    g.bench_function("chain", |b| b.iter(|| chain(p, &w)));
    g.finish();
}

/// Times the four lines back to back, alternately, so that contention from
/// other processes hits both alike, and prints minima, medians and their ratios.
#[allow(clippy::print_stdout)]
fn alternating(pki: &Pki) {
    let p: &'static CryptoProvider = &ipsec::DEFAULT_PROVIDER;
    let rounds: usize = std::env::var("HANDSHAKE_CERT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400)
        .max(1);
    let (ra, rb) = raw_key_configs(p, pki);
    let (ca, cb) = cert_configs(p, pki);
    let w = Work::new(p, pki);
    let mut t_full = Vec::with_capacity(rounds);
    let mut t_raw = Vec::with_capacity(rounds);
    let mut t_prim = Vec::with_capacity(rounds);
    let mut t_chain = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        black_box(handshake(p, &ca, &cb));
        t_full.push(t.elapsed());
        let t = std::time::Instant::now();
        primitives(p, &w);
        t_prim.push(t.elapsed());
        let t = std::time::Instant::now();
        black_box(handshake(p, &ra, &rb));
        t_raw.push(t.elapsed());
        let t = std::time::Instant::now();
        chain(p, &w);
        t_chain.push(t.elapsed());
    }
    let stats = |mut v: Vec<Duration>| {
        v.sort();
        (v[0].as_secs_f64() * 1e6, v[v.len() / 2].as_secs_f64() * 1e6)
    };
    let (full, raw, prim, chain) = (stats(t_full), stats(t_raw), stats(t_prim), stats(t_chain));
    println!("handshake_cert alternating runs ({rounds} each), {SUITE}, ECDSA P-256, µs as min / median:");
    println!(
        "  full {:.1} / {:.1}; primitives {:.1} / {:.1}; full-raw-keys {:.1} / {:.1}; chain {:.1} / {:.1}",
        full.0, full.1, prim.0, prim.1, raw.0, raw.1, chain.0, chain.1
    );
    println!(
        "  full / primitives: {:.2} (minima), {:.2} (medians)",
        full.0 / prim.0,
        full.1 / prim.1
    );
    println!(
        "  full-raw-keys / (primitives - chain): {:.2} (minima), {:.2} (medians)",
        raw.0 / (prim.0 - chain.0),
        raw.1 / (prim.1 - chain.1)
    );
}

fn main() {
    let pki = Pki::load();
    let mut c = config().configure_from_args();
    bench(&mut c, &pki);
    c.final_summary();
    alternating(&pki);
}
