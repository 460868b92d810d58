//! EAP in IKE_AUTH (RFC 7296 §2.16) and configuration payloads (§3.15) between two
//! endpoints: the EAP rounds, the MSK-keyed AUTH, EAP-Identity, Nak, failures on
//! both sides, virtual addresses leased from a pool, selectors narrowed to them,
//! and leases released and given back; also under loss and duplication.
//!
//! The method here is a test method (experimental type 255, RFC 3748 §5.8): a
//! challenge answered with a keyed digest of it, both sides deriving an MSK. The
//! real methods are tested in ipsec-ike's `eap` module; this file tests the IKE side.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use ipsec_crypto::{SecretBytes, SecureRandom};
use ipsec_ike::eap::{
    EapAuthenticator, EapError, EapPeer, EapPeerMethod, EapServerMethod, EapType, EapVerdict,
};
use ipsec_ike::{
    AddressPool, AuthFailure, CfgAttribute, CloseReason, Config, Event, Identity, Lease, LocalAuth,
    PeerAuth, TrafficSelector,
};
use ipsec_test::{assert_mirrored, config, Pair};

const TEST_TYPE: EapType = EapType(255);

/// A 32-byte digest of `parts` keyed with `key` (SHA-256 through the provider's PRF).
fn digest(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let prf = ipsec_crypto_rustcrypto::PROVIDER
        .prf(ipsec_crypto::PrfId::PRF_HMAC_SHA2_256)
        .unwrap();
    let mut data = Vec::new();
    for p in parts {
        data.extend_from_slice(p);
    }
    ipsec_crypto::kdf::prf(prf, key, &[&data])
        .unwrap()
        .expose()
        .to_vec()
}

struct Server {
    password: Vec<u8>,
    challenge: [u8; 16],
    msk: bool,
    done: Option<Vec<u8>>,
    /// Sends a proof made with another password (a rogue authenticator).
    forge: bool,
    /// Answers the peer's response with EAP-Success at once, without its proof.
    early_success: bool,
}

impl EapServerMethod for Server {
    fn method(&self) -> EapType {
        TEST_TYPE
    }
    fn initiate(&mut self, rng: &dyn SecureRandom) -> Result<Vec<u8>, EapError> {
        rng.fill(&mut self.challenge)
            .map_err(|_| EapError::Random)?;
        Ok(self.challenge.to_vec())
    }
    fn process(&mut self, _rng: &dyn SecureRandom, data: &[u8]) -> EapVerdict {
        if self.done.is_some() {
            // The peer's acknowledgement of our proof.
            return if data == b"ack" {
                EapVerdict::Success
            } else {
                EapVerdict::Failure
            };
        }
        if data == digest(&self.password, &[b"peer", &self.challenge]) && self.early_success {
            return EapVerdict::Success;
        }
        if data == digest(&self.password, &[b"peer", &self.challenge]) {
            let key: &[u8] = if self.forge {
                b"not the password"
            } else {
                &self.password
            };
            let proof = digest(key, &[b"server", &self.challenge]);
            self.done = Some(proof.clone());
            EapVerdict::Request(proof)
        } else {
            EapVerdict::Failure
        }
    }
    fn msk(&self) -> Option<SecretBytes> {
        (self.msk && self.done.is_some())
            .then(|| SecretBytes::from_slice(&digest(&self.password, &[b"msk", &self.challenge])))
    }
}

struct Client {
    password: Vec<u8>,
    challenge: Option<Vec<u8>>,
    msk: bool,
    /// The authenticator's proof checked.
    proved: bool,
}

impl EapPeerMethod for Client {
    fn method(&self) -> EapType {
        TEST_TYPE
    }
    fn process(&mut self, _rng: &dyn SecureRandom, data: &[u8]) -> Result<Vec<u8>, EapError> {
        match &self.challenge {
            None => {
                self.challenge = Some(data.to_vec());
                Ok(digest(&self.password, &[b"peer", data]))
            }
            Some(c) => {
                if data == digest(&self.password, &[b"server", c]) {
                    self.proved = true;
                    Ok(b"ack".to_vec())
                } else {
                    Err(EapError::AuthenticationFailed)
                }
            }
        }
    }
    fn succeeded(&self) -> bool {
        self.proved
    }
    fn msk(&self) -> Option<SecretBytes> {
        let c = self.challenge.as_ref().filter(|_| self.msk)?;
        Some(SecretBytes::from_slice(&digest(
            &self.password,
            &[b"msk", c],
        )))
    }
}

struct Users {
    users: BTreeMap<Vec<u8>, Vec<u8>>,
    msk: bool,
    forge: bool,
    early_success: bool,
    started: Mutex<Vec<Vec<u8>>>,
}

impl EapAuthenticator for Users {
    fn start(&self, identity: &[u8]) -> Option<Box<dyn EapServerMethod>> {
        self.started.lock().unwrap().push(identity.to_vec());
        let password = self.users.get(identity)?.clone();
        Some(Box::new(Server {
            password,
            challenge: [0; 16],
            msk: self.msk,
            done: None,
            forge: self.forge,
            early_success: self.early_success,
        }))
    }
}

struct User {
    name: &'static str,
    password: &'static str,
    methods: Vec<EapType>,
    msk: bool,
}

impl EapPeer for User {
    fn identity(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
    fn start(&self, ty: EapType) -> Option<Box<dyn EapPeerMethod>> {
        (ty == TEST_TYPE && self.methods.contains(&ty)).then(|| {
            Box::new(Client {
                password: self.password.as_bytes().to_vec(),
                challenge: None,
                msk: self.msk,
                proved: false,
            }) as Box<dyn EapPeerMethod>
        })
    }
    fn methods(&self) -> Vec<EapType> {
        self.methods.clone()
    }
}

/// A pool of 10.3.0.1..=10.3.0.N, leases per identity, with a log of releases.
#[derive(Default)]
struct TestPool {
    size: u8,
    /// `acquire` calls.
    acquired: Mutex<u32>,
    leases: Mutex<BTreeMap<u8, (Identity, bool)>>,
    released: Mutex<Vec<(Identity, IpAddr)>>,
}

impl AddressPool for TestPool {
    fn acquire(&self, peer: &Identity, requested: &[IpAddr]) -> Lease {
        *self.acquired.lock().unwrap() += 1;
        if !requested.iter().any(IpAddr::is_ipv4) {
            return Lease::default();
        }
        let mut l = self.leases.lock().unwrap();
        let n = match l.iter().find(|(_, (id, _))| id == peer) {
            Some((n, _)) => *n,
            None => match (1..=self.size).find(|n| !l.contains_key(n)) {
                Some(n) => n,
                None => return Lease::default(),
            },
        };
        l.insert(n, (peer.clone(), true));
        Lease {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 3, 0, n))],
            attributes: vec![CfgAttribute::dns(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 53)))],
        }
    }
    fn release(&self, peer: &Identity, address: IpAddr) {
        self.released.lock().unwrap().push((peer.clone(), address));
        if let IpAddr::V4(a) = address {
            if let Some(e) = self.leases.lock().unwrap().get_mut(&a.octets()[3]) {
                e.1 = false;
            }
        }
    }
}

fn user(name: &'static str, password: &'static str) -> Arc<User> {
    Arc::new(User {
        name,
        password,
        methods: vec![TEST_TYPE],
        msk: true,
    })
}

fn users(msk: bool) -> Arc<Users> {
    Arc::new(Users {
        users: [
            (b"carol".to_vec(), b"carol-password".to_vec()),
            (b"dave@example.org".to_vec(), b"dave-password".to_vec()),
        ]
        .into_iter()
        .collect(),
        msk,
        forge: false,
        early_success: false,
        started: Mutex::new(Vec::new()),
    })
}

/// The initiator: EAP as `peer`, asking for an IPv4 address, selectors for all.
fn client(peer: Arc<dyn EapPeer>) -> Config {
    let mut c = config("@client.test");
    c.auth = LocalAuth::Eap { peer };
    c.virtual_ips = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    c
}

/// The responder: PSK for itself, EAP for the initiator, addresses from `pool`.
fn gateway(
    auth: Arc<dyn EapAuthenticator>,
    ask_identity: bool,
    pool: Option<Arc<TestPool>>,
) -> Config {
    let mut c = config("@gw.test");
    c.peer_auth = PeerAuth::Eap {
        authenticator: auth,
        ask_identity,
    };
    c.pool = pool.map(|p| p as Arc<dyn AddressPool>);
    c
}

fn pool(size: u8) -> Arc<TestPool> {
    Arc::new(TestPool {
        size,
        ..TestPool::default()
    })
}

/// Runs the handshake of `p`: it fails, and the responder closes with EapFailed.
fn refused_with_eap_failure(p: &mut Pair) {
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::EapFailed)),
        "{:?}",
        p.b.events
    );
}

fn established(p: &ipsec_test::Side) -> Option<&Event> {
    p.find(|e| matches!(e, Event::IkeSaEstablished { .. }))
}

fn vips_of(e: Option<&Event>) -> Vec<IpAddr> {
    match e {
        Some(Event::IkeSaEstablished { virtual_ips, .. }) => virtual_ips.clone(),
        _ => Vec::new(),
    }
}

fn host(a: [u8; 4]) -> TrafficSelector {
    TrafficSelector::host(IpAddr::V4(Ipv4Addr::from(a)))
}

#[test]
fn eap_identity_method_msk_auth_and_a_virtual_address() {
    let pool = pool(8);
    let auth = users(true);
    let mut p = Pair::new(
        client(user("carol", "carol-password")),
        gateway(auth.clone(), true, Some(pool.clone())),
        1,
    );
    let h = p.connect();
    p.drive();
    assert!(
        p.a.ep.is_established(h),
        "{:?}\n{:?}",
        p.a.events,
        p.b.events
    );
    // The authenticator was asked for the EAP identity, not the IDi.
    assert_eq!(*auth.started.lock().unwrap(), vec![b"carol".to_vec()]);
    let vip = IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1));
    match established(&p.a) {
        Some(Event::IkeSaEstablished {
            peer_id,
            virtual_ips,
            attributes,
            eap_identity,
            ..
        }) => {
            assert_eq!(*peer_id, Identity::Fqdn("gw.test".into()));
            assert_eq!(*virtual_ips, vec![vip]);
            assert_eq!(
                *attributes,
                vec![CfgAttribute::dns(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 53)))]
            );
            assert_eq!(eap_identity.as_deref(), Some(&b"carol"[..]));
        }
        e => panic!("{e:?}"),
    }
    match established(&p.b) {
        Some(Event::IkeSaEstablished {
            peer_id,
            virtual_ips,
            eap_identity,
            ..
        }) => {
            assert_eq!(*peer_id, Identity::Fqdn("client.test".into()));
            assert_eq!(*virtual_ips, vec![vip]);
            assert_eq!(eap_identity.as_deref(), Some(&b"carol"[..]));
        }
        e => panic!("{e:?}"),
    }
    // The Child SA covers the virtual address only, on both sides.
    let (ia, ib) = (p.a.installed(), p.b.installed());
    assert_eq!(ia.len(), 1);
    assert_mirrored(ia[0].1, ib[0].1);
    assert_eq!(ia[0].1.local_ts.as_slice(), &[host([10, 3, 0, 1])]);
    assert_eq!(ib[0].1.remote_ts.as_slice(), &[host([10, 3, 0, 1])]);
    // A second Child SA asked for later keeps to it.
    p.a.ep.create_child_sa(p.now, h).unwrap();
    p.drive();
    let ia = p.a.installed();
    assert_eq!(ia.len(), 2, "{:?}", p.a.events);
    assert_eq!(ia[1].1.local_ts.as_slice(), &[host([10, 3, 0, 1])]);
    // Deleting the IKE SA releases the lease, once.
    p.a.ep.close(p.now, h).unwrap();
    p.drive();
    assert_eq!(
        *pool.released.lock().unwrap(),
        vec![(Identity::Fqdn("carol".into()), vip)]
    );
}

#[test]
fn the_same_identity_gets_its_address_back_and_others_get_their_own() {
    let pool = pool(8);
    let auth = users(true);
    let gw = gateway(auth, true, Some(pool.clone()));
    let mut addrs = Vec::new();
    for (seed, (name, pw)) in [
        ("carol", "carol-password"),
        ("dave@example.org", "dave-password"),
        ("carol", "carol-password"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = Pair::new(client(user(name, pw)), gw.clone(), 10 + seed as u64);
        let h = p.connect();
        p.drive();
        assert!(p.a.ep.is_established(h));
        addrs.push(vips_of(established(&p.a)));
        p.a.ep.close(p.now, h).unwrap();
        p.drive();
    }
    assert_eq!(addrs[0], addrs[2]);
    assert_ne!(addrs[0], addrs[1]);
    assert_eq!(addrs.iter().filter(|a| a.len() == 1).count(), 3);
}

#[test]
fn a_wrong_password_fails_on_both_sides() {
    let mut p = Pair::new(
        client(user("carol", "not-carols-password")),
        gateway(users(true), true, Some(pool(8))),
        2,
    );
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    let eap_failed = Some(CloseReason::AuthenticationFailed(AuthFailure::EapFailed));
    assert_eq!(p.a.closed_reason(), eap_failed, "{:?}", p.a.events);
    assert_eq!(p.b.closed_reason(), eap_failed, "{:?}", p.b.events);
    assert!(established(&p.b).is_none());
}

#[test]
fn an_unknown_user_is_refused() {
    let mut p = Pair::new(
        client(user("mallory", "whatever")),
        gateway(users(true), true, None),
        3,
    );
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    let eap_failed = Some(CloseReason::AuthenticationFailed(AuthFailure::EapFailed));
    assert_eq!(p.a.closed_reason(), eap_failed);
    assert_eq!(p.b.closed_reason(), eap_failed);
}

#[test]
fn without_eap_identity_the_idi_is_the_eap_identity() {
    let auth = users(true);
    // Our EAP peer would answer EAP-Identity with another name: only the IDi can
    // have named carol.
    let mut c = client(user("someone-else", "carol-password"));
    c.local_id = Identity::Fqdn("carol".into());
    c.virtual_ips.clear();
    let mut p = Pair::new(c, gateway(auth.clone(), false, None), 4);
    let h = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h), "{:?}", p.b.events);
    assert_eq!(*auth.started.lock().unwrap(), vec![b"carol".to_vec()]);
    // No CFG_REQUEST: no virtual address, the configured selectors.
    assert!(vips_of(established(&p.a)).is_empty());
    assert_eq!(
        p.a.installed()[0].1.local_ts.as_slice(),
        &[TrafficSelector::any_v4()]
    );
}

#[test]
fn a_method_without_an_msk_keys_auth_with_sk_pi_and_sk_pr() {
    let mut u = User {
        name: "carol",
        password: "carol-password",
        methods: vec![TEST_TYPE],
        msk: false,
    };
    let mut p = Pair::new(client(Arc::new(u)), gateway(users(false), true, None), 5);
    let h = p.connect();
    p.drive();
    assert!(
        p.a.ep.is_established(h),
        "{:?}\n{:?}",
        p.a.events,
        p.b.events
    );
    // One side with an MSK and the other without cannot agree on the AUTH.
    u = User {
        name: "carol",
        password: "carol-password",
        methods: vec![TEST_TYPE],
        msk: true,
    };
    let mut p = Pair::new(client(Arc::new(u)), gateway(users(false), true, None), 6);
    refused_with_eap_failure(&mut p);
}

#[test]
fn a_peer_without_the_method_naks_and_fails() {
    let u = User {
        name: "carol",
        password: "carol-password",
        methods: vec![EapType::MSCHAPV2],
        msk: true,
    };
    let mut p = Pair::new(client(Arc::new(u)), gateway(users(true), true, None), 7);
    refused_with_eap_failure(&mut p);
}

#[test]
fn an_exhausted_pool_answers_internal_address_failure_without_a_child_sa() {
    let pool = pool(1);
    let auth = users(true);
    let gw = gateway(auth, true, Some(pool.clone()));
    let mut first = Pair::new(client(user("carol", "carol-password")), gw.clone(), 8);
    let h = first.connect();
    first.drive();
    assert!(first.a.ep.is_established(h));
    let mut p = Pair::new(client(user("dave@example.org", "dave-password")), gw, 9);
    let h = p.connect();
    p.drive();
    // The IKE SA stands; the Child SA was refused for want of an address.
    assert!(p.a.ep.is_established(h));
    assert!(vips_of(established(&p.a)).is_empty());
    assert!(p.a.installed().is_empty());
    assert!(p.b.installed().is_empty());
    assert!(
        p.a.find(|e| matches!(
            e,
            Event::ChildSaFailed {
                error: ipsec_ike::Error::NotifyReceived(
                    ipsec_ike::NotifyType::INTERNAL_ADDRESS_FAILURE
                ),
                ..
            }
        ))
        .is_some(),
        "{:?}",
        p.a.events
    );
}

#[test]
fn eap_survives_loss_duplication_and_reordering() {
    let mut up = 0;
    for seed in 0..12u64 {
        let pool = pool(8);
        let auth = users(true);
        let mut p = Pair::new(
            client(user("carol", "carol-password")),
            gateway(auth.clone(), true, Some(pool.clone())),
            100 + seed,
        );
        p.loss_percent = 20;
        p.duplicate_percent = 20;
        p.reorder_percent = 20;
        let h = p.connect();
        p.drive();
        if !p.a.ep.is_established(h) {
            // Lost past the retransmission budget: the initiator gave up with a reason
            // (the responder may have finished its side before the last loss).
            assert!(
                p.a.closed_reason().is_some(),
                "seed {seed}: {:?}",
                p.a.events
            );
            continue;
        }
        up += 1;
        let (ia, ib) = (p.a.installed(), p.b.installed());
        assert_eq!(ia.len(), 1, "seed {seed}");
        assert_mirrored(ia[0].1, ib[0].1);
        assert_eq!(ia[0].1.local_ts.as_slice(), &[host([10, 3, 0, 1])]);
        // Retransmitted rounds were answered from the cache, not run twice: one
        // method run and one lease.
        assert_eq!(*auth.started.lock().unwrap(), vec![b"carol".to_vec()]);
        assert_eq!(*pool.acquired.lock().unwrap(), 1, "seed {seed}");
    }
    assert!(up >= 8, "only {up} of 12 handshakes completed");
}

#[test]
fn an_initiator_that_refuses_the_authenticators_proof_ends_both_sides() {
    // The authenticator's proof inside the method does not check: our initiator
    // fails with EapFailed and says AUTHENTICATION_FAILED in an INFORMATIONAL, which
    // ends the responder's EAP conversation at once (not by its half-open timeout).
    let rogue = Arc::new(Users {
        forge: true,
        ..Arc::try_unwrap(users(true)).ok().unwrap()
    });
    let mut p = Pair::new(
        client(user("carol", "carol-password")),
        gateway(rogue, true, Some(pool(8))),
        20,
    );
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    let eap_failed = Some(CloseReason::AuthenticationFailed(AuthFailure::EapFailed));
    assert_eq!(p.a.closed_reason(), eap_failed, "{:?}", p.a.events);
    assert_eq!(p.b.closed_reason(), eap_failed, "{:?}", p.b.events);
}

#[test]
fn eap_mschapv2_over_ike_with_its_64_byte_msk() {
    use ipsec_ike::eap::mschapv2::{PasswordAuthenticator, PasswordPeer};
    let auth = Arc::new(PasswordAuthenticator::from_passwords([(
        "carol",
        "carol-password",
    )]));
    let mut p = Pair::new(
        client(Arc::new(PasswordPeer::new("carol", "carol-password"))),
        gateway(auth.clone(), true, Some(pool(8))),
        21,
    );
    let h = p.connect();
    p.drive();
    assert!(
        p.a.ep.is_established(h),
        "{:?}\n{:?}",
        p.a.events,
        p.b.events
    );
    assert_mirrored(p.a.installed()[0].1, p.b.installed()[0].1);
    let mut p = Pair::new(
        client(Arc::new(PasswordPeer::new("carol", "wrong"))),
        gateway(auth, true, None),
        22,
    );
    refused_with_eap_failure(&mut p);
}

#[test]
fn eap_success_before_the_method_ends_is_refused() {
    // A rogue authenticator skips its half of the mutual proof and sends EAP-Success
    // right after our response (no MSK on either side, so the AUTHs would agree).
    let rogue = Arc::new(Users {
        early_success: true,
        ..Arc::try_unwrap(users(false)).ok().unwrap()
    });
    let u = User {
        name: "carol",
        password: "carol-password",
        methods: vec![TEST_TYPE],
        msk: false,
    };
    let mut p = Pair::new(client(Arc::new(u)), gateway(rogue, true, None), 23);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.a.closed_reason(),
        Some(CloseReason::AuthenticationFailed(AuthFailure::EapFailed)),
        "{:?}",
        p.a.events
    );
}

#[test]
fn a_required_ppk_cannot_be_skipped_with_eap() {
    let mut gw = gateway(users(true), true, None);
    gw.ppk = Some(ipsec_ike::Ppk::new(
        b"ppk-1".to_vec(),
        b"post-quantum-ppk-0123456789".to_vec(),
        true,
    ));
    let mut p = Pair::new(client(user("carol", "carol-password")), gw, 24);
    let h = p.connect();
    p.drive();
    assert!(!p.a.ep.is_established(h));
    assert_eq!(
        p.b.closed_reason(),
        Some(CloseReason::from_error(ipsec_ike::Error::PeerIncompatible(
            ipsec_ike::PeerIncompatible::PpkRequired
        ))),
        "{:?}",
        p.b.events
    );
}

#[test]
fn dns_attributes_read_back_and_other_types_are_not_dns() {
    for ip in [
        IpAddr::V4(Ipv4Addr::new(10, 3, 0, 53)),
        "2001:db8::53".parse().unwrap(),
    ] {
        assert_eq!(CfgAttribute::dns(ip).dns_server(), Some(ip));
    }
    // A netmask has a DNS server's length but is none.
    let netmask = CfgAttribute {
        ty: ipsec_ike_wire::CfgAttrType::INTERNAL_IP4_NETMASK,
        value: vec![255, 255, 255, 0],
    };
    assert_eq!(netmask.dns_server(), None);
}
