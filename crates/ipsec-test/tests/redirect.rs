//! The IKEv2 redirect mechanism (RFC 5685) between two endpoints: a gateway (B)
//! redirects its client (A) in IKE_SA_INIT (§4), in IKE_AUTH (§6) and on an
//! established IKE SA (§5); the client follows with REDIRECTED_FROM (§7) and stops
//! following after `max_redirects` (§9). The new gateway is B itself, at the same
//! address, with a policy that redirects only the first time (or always, for the loop
//! cap), so the whole round trip runs on one `Pair`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ipsec_core::IkeSpi;
use ipsec_ike::{
    ApiMisuse, CloseReason, Config, Error, Event, Gateway, Identity, NotifyType, Redirect,
    RedirectPhase, Redirects,
};
use ipsec_ike_wire::{
    ExchangeType, Flags, GatewayIdRepr, IkeHeaderRepr, Message, NotifyRepr, Payload, RedirectRepr,
};
use ipsec_test::{config, Dir, Pair};

const GW2: &str = "192.0.2.2";

/// Redirects the first `times` clients it is asked about, at the phase it serves.
struct Policy {
    init: bool,
    times: usize,
    asked: AtomicUsize,
}

impl Policy {
    fn new(init: bool, times: usize) -> Arc<Self> {
        Arc::new(Policy {
            init,
            times,
            asked: AtomicUsize::new(0),
        })
    }

    fn next(&self) -> Option<Gateway> {
        (self.asked.fetch_add(1, Ordering::SeqCst) < self.times)
            .then(|| Gateway::Ip(GW2.parse().unwrap()))
    }
}

impl Redirects for Policy {
    fn redirect_init(&self, _: SocketAddr, _: SocketAddr) -> Option<Gateway> {
        if self.init {
            self.next()
        } else {
            None
        }
    }

    fn redirect_auth(&self, _: &Identity, _: SocketAddr, _: SocketAddr) -> Option<Gateway> {
        if self.init {
            None
        } else {
            self.next()
        }
    }
}

fn gateway(policy: Arc<Policy>) -> Config {
    let mut c = config("@b.test");
    c.redirect = Some(policy);
    c
}

fn redirects(p: &Pair) -> Vec<Redirect> {
    p.a.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Redirected { redirect } => Some(redirect.clone()),
            _ => None,
        })
        .collect()
}

fn closed(side: &ipsec_test::Side) -> Vec<CloseReason> {
    side.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::IkeSaClosed { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn established(side: &ipsec_test::Side) -> usize {
    side.count(|e| matches!(e, Event::IkeSaEstablished { .. }))
}

/// The IKE_SA_INIT requests A sent, parsed.
fn init_requests(p: &Pair) -> Vec<Message<'_>> {
    p.sent
        .iter()
        .filter(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
        .map(|(_, _, t)| Message::parse(&t.payload).expect("request parses"))
        .collect()
}

fn notify_data<'m>(m: &'m Message<'_>, ty: NotifyType) -> Option<&'m [u8]> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == ty => Some(n.data),
        _ => None,
    })
}

/// Follows the redirects A reported since `done`, as an embedder does: connect to
/// the new gateway (port 500) with the token. Returns how many it followed.
fn follow(p: &mut Pair, done: usize) -> usize {
    let todo: Vec<Redirect> = redirects(p).into_iter().skip(done).collect();
    for r in &todo {
        let Gateway::Ip(ip) = r.to else {
            panic!("address expected")
        };
        let (l, rem) = (p.a.addr(), SocketAddr::new(ip, 500));
        let cfg = Arc::clone(p.a.ep.config());
        p.a.ep
            .connect_redirected(p.now, l, rem, cfg, r)
            .expect("connect_redirected");
        p.collect();
    }
    todo.len()
}

#[test]
fn init_redirect_is_followed_with_redirected_from() {
    let policy = Policy::new(true, 1);
    let mut p = Pair::new(config("@a.test"), gateway(Arc::clone(&policy)), 70);
    p.connect();
    p.drive();
    let r = redirects(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, Gateway::Ip(GW2.parse().unwrap()));
    assert_eq!(r[0].from, p.b.addr());
    assert_eq!(r[0].phase, RedirectPhase::Init);
    assert_eq!(r[0].count(), 1);
    assert_eq!(closed(&p.a), [CloseReason::Redirected]);
    // The gateway kept nothing: the REDIRECT was a stateless answer.
    assert!(p.b.events.is_empty());
    assert_eq!(p.b.ep.sa_handles().len(), 0);
    assert_eq!(established(&p.a), 0);

    assert_eq!(follow(&mut p, 0), 1);
    p.drive();
    assert_eq!(established(&p.a), 1);
    assert_eq!(established(&p.b), 1);
    assert_eq!(p.a.installed().len(), 1);
    let reqs = init_requests(&p);
    assert_eq!(reqs.len(), 2);
    // RFC 5685 §3, §7: support announced first, then the original gateway named.
    assert_eq!(
        notify_data(&reqs[0], NotifyType::REDIRECT_SUPPORTED),
        Some(&[][..])
    );
    assert!(notify_data(&reqs[0], NotifyType::REDIRECTED_FROM).is_none());
    let from = notify_data(&reqs[1], NotifyType::REDIRECTED_FROM).expect("REDIRECTED_FROM");
    assert_eq!(
        RedirectRepr::parse(from).unwrap(),
        RedirectRepr {
            gateway: GatewayIdRepr::Ip(p.b.ip),
            nonce: &[]
        }
    );
    assert!(notify_data(&reqs[1], NotifyType::REDIRECT_SUPPORTED).is_none());
    // The REDIRECT carried A's nonce (RFC 5685 §4).
    let ni = reqs[0]
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(n.data.to_vec()),
            _ => None,
        })
        .unwrap();
    let answer = p
        .sent
        .iter()
        .find(|(_, d, _)| *d == Dir::BtoA)
        .map(|(_, _, t)| Message::parse(&t.payload).unwrap())
        .unwrap();
    assert_eq!(answer.payloads.len(), 1, "the REDIRECT alone");
    let data = notify_data(&answer, NotifyType::REDIRECT).unwrap();
    assert_eq!(RedirectRepr::parse(data).unwrap().nonce, ni.as_slice());
}

/// An IKE_SA_INIT response with only a REDIRECT to `to` and `nonce`, as an attacker
/// who sees A's request could send.
fn spoof_redirect(p: &mut Pair, to: IpAddr, nonce: &[u8]) {
    let req = &p
        .sent
        .iter()
        .find(|(_, d, t)| *d == Dir::AtoB && t.payload.get(18) == Some(&34))
        .unwrap()
        .2;
    let spi_i = IkeSpi(req.payload[..8].try_into().unwrap());
    let header = IkeHeaderRepr {
        spi_i,
        spi_r: IkeSpi::ZERO,
        minor_version: 0,
        exchange_type: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(false, true),
        message_id: 0,
    };
    let data = RedirectRepr {
        gateway: GatewayIdRepr::Ip(to),
        nonce,
    }
    .to_vec();
    let forged = Message {
        header,
        payloads: vec![Payload::Notify(NotifyRepr::new(
            NotifyType::REDIRECT,
            &data,
        ))],
    }
    .to_vec();
    let (a, b) = (p.a.addr(), p.b.addr());
    p.a.ep.handle_datagram(p.now, a, b, &forged);
    p.collect();
}

fn first_nonce(p: &Pair) -> Vec<u8> {
    init_requests(p)[0]
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(n.data.to_vec()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn redirect_with_a_wrong_nonce_is_ignored() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 71);
    p.connect();
    let mut wrong = first_nonce(&p);
    wrong[0] ^= 1;
    spoof_redirect(&mut p, "198.51.100.9".parse().unwrap(), &wrong);
    spoof_redirect(&mut p, "198.51.100.9".parse().unwrap(), &[]);
    p.drive();
    assert!(redirects(&p).is_empty());
    assert_eq!(established(&p.a), 1);
    assert_eq!(p.a.installed().len(), 1);
}

#[test]
fn redirect_with_our_nonce_is_followed() {
    // The control of the test above: the same forgery with the right nonce wins.
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 72);
    p.connect();
    let ni = first_nonce(&p);
    spoof_redirect(&mut p, "198.51.100.9".parse().unwrap(), &ni);
    p.drive();
    let r = redirects(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, Gateway::Ip("198.51.100.9".parse().unwrap()));
    assert_eq!(established(&p.a), 0);
    assert_eq!(closed(&p.a), [CloseReason::Redirected]);
}

#[test]
fn auth_redirect_after_the_gateway_authenticated() {
    let policy = Policy::new(false, 1);
    let mut p = Pair::new(config("@a.test"), gateway(Arc::clone(&policy)), 73);
    p.connect();
    p.drive();
    let r = redirects(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].phase, RedirectPhase::Auth);
    // The client never counted the IKE SA as up, and no Child SA was made.
    assert_eq!(established(&p.a), 0);
    assert!(p.a.installed().is_empty());
    assert!(p.b.installed().is_empty());
    assert_eq!(closed(&p.a), [CloseReason::Redirected]);
    // The gateway authenticated the client, redirected it, and got its Delete.
    assert_eq!(established(&p.b), 1);
    assert_eq!(
        p.b.count(|e| matches!(e, Event::PeerRedirected { to } if *to == Gateway::Ip(GW2.parse().unwrap()))),
        1
    );
    assert_eq!(closed(&p.b), [CloseReason::Deleted { by_peer: true }]);

    follow(&mut p, 0);
    p.drive();
    assert_eq!(established(&p.a), 1);
    assert_eq!(p.a.installed().len(), 1);
}

#[test]
fn auth_redirect_of_a_wrong_identity_is_not_followed() {
    // The REDIRECT comes with an AUTH that does not verify: authentication fails
    // first, nothing is followed (RFC 5685 §6: only after the gateway's AUTH).
    let policy = Policy::new(false, 1);
    let mut a = config("@a.test");
    a.remote_id = Some("@other.test".parse().unwrap());
    let mut p = Pair::new(a, gateway(policy), 74);
    p.connect();
    p.drive();
    assert!(redirects(&p).is_empty());
    assert!(matches!(
        closed(&p.a)[..],
        [CloseReason::AuthenticationFailed(_)]
    ));
}

#[test]
fn established_sa_is_redirected_by_the_gateway() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 75);
    p.connect();
    p.drive();
    assert_eq!(established(&p.a), 1);
    let hb = p.b.ep.sa_handles()[0];
    p.b.ep
        .redirect(p.now, hb, Gateway::Fqdn("gw2.example".into()))
        .unwrap();
    // Once only.
    assert_eq!(
        p.b.ep
            .redirect(p.now, hb, Gateway::Ip(GW2.parse().unwrap())),
        Err(Error::ApiMisuse(ApiMisuse::CannotRedirect))
    );
    p.collect();
    p.drive();
    let r = redirects(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].phase, RedirectPhase::Established);
    assert_eq!(r[0].to, Gateway::Fqdn("gw2.example".into()));
    assert_eq!(closed(&p.a), [CloseReason::Deleted { by_peer: false }]);
    assert_eq!(closed(&p.b), [CloseReason::Deleted { by_peer: true }]);
    assert!(p.a.installed().is_empty());
    assert_eq!(p.b.count(|e| matches!(e, Event::PeerRedirected { .. })), 1);
}

#[test]
fn gateway_deletes_a_redirected_sa_the_client_keeps() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 76);
    p.connect();
    p.drive();
    let hb = p.b.ep.sa_handles()[0];
    // A answers the REDIRECT, but its Delete never arrives.
    let mut answered = false;
    p.alter = Some(Box::new(move |d, t| {
        if d == Dir::AtoB && t.payload.get(18) == Some(&37) {
            let keep = !answered;
            answered = true;
            return keep;
        }
        true
    }));
    p.b.ep
        .redirect(p.now, hb, Gateway::Ip(GW2.parse().unwrap()))
        .unwrap();
    p.collect();
    p.drive();
    assert_eq!(redirects(&p).len(), 1);
    // B deleted it itself after half_open_timeout (A had closed already, so the
    // Delete times out or is answered from nowhere: it ends either way).
    assert_eq!(closed(&p.b), [CloseReason::Deleted { by_peer: false }]);
    assert!(p.b.installed().is_empty());
    // Not before half_open_timeout: B's own Delete went out that much later.
    let redirect_at = p
        .sent
        .iter()
        .find(|(_, d, t)| *d == Dir::BtoA && t.payload.get(18) == Some(&37))
        .unwrap()
        .0;
    let delete_at = p
        .sent
        .iter()
        .filter(|(_, d, t)| *d == Dir::BtoA && t.payload.get(18) == Some(&37))
        .nth(1)
        .unwrap()
        .0;
    assert!(delete_at.saturating_duration_since(redirect_at) >= p.b.ep.config().half_open_timeout);
}

#[test]
fn client_without_redirect_support_is_not_redirected() {
    let mut a = config("@a.test");
    a.follow_redirects = false;
    let init = Policy::new(true, usize::MAX);
    let mut p = Pair::new(a.clone(), gateway(Arc::clone(&init)), 77);
    p.connect();
    p.drive();
    assert_eq!(established(&p.a), 1);
    assert_eq!(p.a.installed().len(), 1);
    assert_eq!(
        init.asked.load(Ordering::SeqCst),
        0,
        "policy not even asked"
    );
    assert!(notify_data(&init_requests(&p)[0], NotifyType::REDIRECT_SUPPORTED).is_none());
    let hb = p.b.ep.sa_handles()[0];
    assert_eq!(
        p.b.ep
            .redirect(p.now, hb, Gateway::Ip(GW2.parse().unwrap())),
        Err(Error::ApiMisuse(ApiMisuse::CannotRedirect))
    );
    // Nor in IKE_AUTH.
    let auth = Policy::new(false, usize::MAX);
    let mut p = Pair::new(a, gateway(Arc::clone(&auth)), 78);
    p.connect();
    p.drive();
    assert_eq!(established(&p.a), 1);
    assert_eq!(p.b.count(|e| matches!(e, Event::PeerRedirected { .. })), 0);
}

#[test]
fn redirect_loop_is_cut_after_max_redirects() {
    let policy = Policy::new(true, usize::MAX);
    let mut p = Pair::new(config("@a.test"), gateway(policy), 79);
    p.connect();
    p.drive();
    let mut done = 0;
    while done < 10 {
        let n = follow(&mut p, done);
        if n == 0 {
            break;
        }
        done += n;
        p.drive();
    }
    // strongSwan's numbers, our defaults: 5 within 300 s.
    assert_eq!(done, 5);
    assert_eq!(redirects(&p).last().unwrap().count(), 5);
    let c = closed(&p.a);
    assert_eq!(c.len(), 6);
    assert_eq!(c[5], CloseReason::TooManyRedirects);
    assert_eq!(established(&p.a), 0);
}
