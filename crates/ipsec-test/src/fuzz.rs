//! Fuzz drivers for the IKE state machines, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/ike_responder.rs`, `ike_initiator.rs` and their `_nocrypto`
//! variants) and the unit tests.
//!
//! The input is decoded as a list of operations on a real initiator–responder pair
//! with seeded providers: deliver, drop, duplicate or mutate the datagrams the two
//! endpoints produce, inject raw bytes into the endpoint under test, advance time, and
//! give commands. So the fuzzer reaches every state (half-open, established, rekeying,
//! deleting) and attacks each with hostile datagrams. The property is that nothing
//! panics; the endpoints' own bounds keep memory in check.
//!
//! [`Crypto::Real`] runs the pure-Rust provider: a mutated SK payload fails its
//! integrity check. [`Crypto::Fuzzing`] runs the insecure [`provider`], which accepts
//! every ICV and does not encrypt, so mutated IKE_AUTH, CREATE_CHILD_SA and
//! INFORMATIONAL contents reach the decoding, authentication and state logic behind the
//! check (see [`provider`] for what else it changes).

pub mod provider;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use ipsec_ike::{Config, Duration, IkeEndpoint, Instant, Transmit};

use ipsec_crypto::CryptoProvider;

use crate::SeededRandom;

// Static, so that nothing is leaked per run (the fuzzers' leak checker would object);
// `run` resets them, so each input replays deterministically.
static RNG_A: SeededRandom = SeededRandom::new(1);
static RNG_B: SeededRandom = SeededRandom::new(2);
static PROVIDER_A: CryptoProvider = ipsec_crypto_rustcrypto::provider_with_random(&RNG_A);
static PROVIDER_B: CryptoProvider = ipsec_crypto_rustcrypto::provider_with_random(&RNG_B);
static FUZZING_A: CryptoProvider = provider::provider_with_random(&RNG_A);
static FUZZING_B: CryptoProvider = provider::provider_with_random(&RNG_B);

/// Which crypto the two endpoints run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crypto {
    /// The pure-Rust provider with seeded random sources.
    Real,
    /// The insecure [`provider`]: every ICV verifies, nothing is encrypted, so mutated
    /// SK payloads reach the code behind the integrity check.
    Fuzzing,
}

/// Which endpoint the raw and mutated datagrams go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The responder (B).
    Responder,
    /// The initiator (A).
    Initiator,
}

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
}

/// The IKE proposal of the hybrid runs (flag bit 1, and [`run_hybrid`]): two
/// additional key exchanges (RFC 9370), so two IKE_INTERMEDIATE exchanges (RFC 9242)
/// come before IKE_AUTH, and IKE SA rekeys run IKE_FOLLOWUP_KE.
pub const HYBRID_PROPOSAL: &str = "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke2_x25519";

/// The ESP proposal of the hybrid runs: PFS with an additional key exchange, so new
/// and rekeyed Child SAs run IKE_FOLLOWUP_KE (RFC 9370 §2.2.4).
pub const HYBRID_ESP_PROPOSAL: &str = "aes256gcm16-x25519-ke1_ecp256";

/// The one-address pool of the EAP runs (flag bit 3).
struct OnePool;

impl ipsec_ike::AddressPool for OnePool {
    fn acquire(
        &self,
        _: &ipsec_ike::Identity,
        requested: &[core::net::IpAddr],
    ) -> ipsec_ike::Lease {
        ipsec_ike::Lease {
            addresses: requested
                .iter()
                .filter(|a| a.is_ipv4())
                .map(|_| core::net::IpAddr::from([10, 9, 0, 1]))
                .take(1)
                .collect(),
            attributes: vec![ipsec_ike::CfgAttribute::dns([10, 9, 0, 53].into())],
        }
    }
    fn release(&self, _: &ipsec_ike::Identity, _: core::net::IpAddr) {}
}

/// EAP-MSCHAPv2 and a virtual address (flag bit 3): the initiator authenticates
/// with EAP and asks for an IPv4 address, the responder asks for the EAP identity
/// and leases one, so the fuzzer's mutations reach the EAP rounds and the CP payloads.
fn with_eap(mut c: Config, initiator: bool) -> Config {
    use ipsec_ike::eap::mschapv2::{PasswordAuthenticator, PasswordPeer};
    if initiator {
        c.auth = ipsec_ike::LocalAuth::Eap {
            peer: Arc::new(PasswordPeer::new("fuzz-user", "fuzz-password")),
        };
        c.virtual_ips = vec![core::net::IpAddr::from([0, 0, 0, 0])];
    } else {
        c.peer_auth = ipsec_ike::PeerAuth::Eap {
            authenticator: Arc::new(PasswordAuthenticator::from_passwords([(
                "fuzz-user",
                "fuzz-password",
            )])),
            ask_identity: true,
        };
        c.pool = Some(Arc::new(OnePool));
    }
    c
}

fn endpoint_with(
    id: &str,
    provider: &'static CryptoProvider,
    small: bool,
    hybrid: bool,
    eap_initiator: Option<bool>,
) -> IkeEndpoint {
    let mut c = Config::new(id.parse().expect("id"), "fuzz-psk");
    if let Some(initiator) = eap_initiator {
        c = with_eap(c, initiator);
    }
    if hybrid {
        c = c
            .with_ike_proposals(HYBRID_PROPOSAL)
            .and_then(|c| c.with_esp_proposals(HYBRID_ESP_PROPOSAL))
            .expect("the hybrid proposals parse");
    }
    c.dpd = Some(Duration::from_secs(30));
    c.child_rekey = Some(Duration::from_secs(120));
    c.ike_rekey = Some(Duration::from_secs(300));
    c.half_open_cookie_threshold = if small { 0 } else { 4 };
    if small {
        c.fragment_mtu = Some(300);
    }
    IkeEndpoint::new(Arc::new(c), provider)
}

/// Runs one fuzz input with real crypto ([`Crypto::Real`]). Never panics unless the
/// endpoints do. Returns whether the initiator's IKE SA was established at some point
/// (for coverage checks).
pub fn run(target: Target, data: &[u8]) -> bool {
    run_with(target, Crypto::Real, data)
}

/// As [`run_with`], always with [`HYBRID_PROPOSAL`] on both sides, so that the
/// fuzzer's operations hit the IKE_INTERMEDIATE exchanges and the key updates between
/// them.
pub fn run_hybrid(target: Target, crypto: Crypto, data: &[u8]) -> bool {
    run_flagged(target, crypto, 2, data)
}

/// As [`run_with`], always with EAP-MSCHAPv2 and a virtual address (flag bit 3), so
/// that the fuzzer's operations hit the EAP rounds of IKE_AUTH (RFC 7296 §2.16) and
/// the CP payloads (§3.15).
pub fn run_eap(target: Target, crypto: Crypto, data: &[u8]) -> bool {
    run_flagged(target, crypto, 8, data)
}

fn run_flagged(target: Target, crypto: Crypto, flag: u8, data: &[u8]) -> bool {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(data.first().copied().unwrap_or(0) | flag);
    v.extend_from_slice(data.get(1..).unwrap_or(&[]));
    run_with(target, crypto, &v)
}

/// As [`run`], with the given crypto.
pub fn run_with(target: Target, crypto: Crypto, data: &[u8]) -> bool {
    let mut input = Input { data };
    let flags = input.u8().unwrap_or(0);
    RNG_A.reset();
    RNG_B.reset();
    let (pa, pb) = match crypto {
        Crypto::Real => (&PROVIDER_A, &PROVIDER_B),
        Crypto::Fuzzing => (&FUZZING_A, &FUZZING_B),
    };
    let hybrid = flags & 2 != 0;
    let eap = flags & 8 != 0;
    let mut a = endpoint_with("@a.fuzz", pa, flags & 1 != 0, hybrid, eap.then_some(true));
    let mut b = endpoint_with("@b.fuzz", pb, flags & 1 != 0, hybrid, eap.then_some(false));
    let a_addr: SocketAddr = "192.0.2.1:500".parse().expect("addr");
    let b_addr: SocketAddr = "192.0.2.2:500".parse().expect("addr");
    let mut now = Instant::from_secs(1);
    let h = a.connect(now, a_addr, b_addr).ok();
    // Datagrams in flight towards A and towards B.
    let mut to_a: VecDeque<Transmit> = VecDeque::new();
    let mut to_b: VecDeque<Transmit> = VecDeque::new();
    let collect = |a: &mut IkeEndpoint,
                   b: &mut IkeEndpoint,
                   to_a: &mut VecDeque<Transmit>,
                   to_b: &mut VecDeque<Transmit>| {
        while let Some(t) = a.poll_transmit() {
            if to_b.len() < 64 {
                to_b.push_back(t);
            }
        }
        while let Some(t) = b.poll_transmit() {
            if to_a.len() < 64 {
                to_a.push_back(t);
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    };
    collect(&mut a, &mut b, &mut to_a, &mut to_b);
    let mut steps = 0;
    let mut established = false;
    while let Some(op) = input.u8() {
        steps += 1;
        if steps > 256 {
            break;
        }
        let to_target = target == Target::Initiator;
        match op % 9 {
            // Deliver the next datagram in one direction.
            0 | 1 => {
                let towards_a = op % 9 == 0;
                let q = if towards_a { &mut to_a } else { &mut to_b };
                if let Some(t) = q.pop_front() {
                    let ep = if towards_a { &mut a } else { &mut b };
                    ep.handle_datagram(now, t.remote, t.local, &t.payload);
                }
            }
            // Drop one.
            2 => {
                let _ = if op & 0x80 != 0 {
                    to_a.pop_front()
                } else {
                    to_b.pop_front()
                };
            }
            // Deliver a mutated copy to the target.
            3 => {
                let q = if to_target { &to_a } else { &to_b };
                let (Some(i), Some(x), Some(kind)) = (input.u16(), input.u8(), input.u8()) else {
                    break;
                };
                if let Some(t) = q.front() {
                    let mut p = t.payload.clone();
                    match kind % 3 {
                        0 if !p.is_empty() => {
                            let i = usize::from(i) % p.len();
                            p[i] ^= x.max(1);
                        }
                        1 => p.truncate(usize::from(i) % (p.len() + 1)),
                        _ => p.extend_from_slice(&[x; 8]),
                    }
                    let ep = if to_target { &mut a } else { &mut b };
                    ep.handle_datagram(now, t.remote, t.local, &p);
                }
            }
            // Raw bytes to the target, on port 500 or 4500.
            4 => {
                let Some(n) = input.u16() else { break };
                let raw = input.bytes(usize::from(n) % 1500).to_vec();
                let port = if op & 0x80 != 0 { 4500 } else { 500 };
                let (ep, me, peer) = if to_target {
                    (&mut a, a_addr, b_addr)
                } else {
                    (&mut b, b_addr, a_addr)
                };
                ep.handle_datagram(
                    now,
                    SocketAddr::new(me.ip(), port),
                    SocketAddr::new(peer.ip(), port),
                    &raw,
                );
            }
            // Time passes.
            5 => {
                let Some(ms) = input.u16() else { break };
                now = now + Duration::from_millis(u64::from(ms) * 16);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            // Duplicate a datagram.
            6 => {
                let q = if op & 0x80 != 0 { &mut to_a } else { &mut to_b };
                if let Some(t) = q.front().cloned() {
                    q.push_back(t);
                }
            }
            // A command on either side.
            _ => {
                let Some(c) = input.u8() else { break };
                let on_a = op & 0x80 != 0;
                let (ep, handle) = if on_a {
                    (&mut a, h)
                } else {
                    let hb = b.sa_handles().first().copied();
                    (&mut b, hb)
                };
                let Some(handle) = handle else { continue };
                let child = ep.child_sas(handle).first().copied();
                let _ = match c % 7 {
                    0 => ep.create_child_sa(now, handle).map(|_| ()),
                    1 => child.map_or(Ok(()), |x| ep.rekey_child_sa(now, handle, x)),
                    2 => child.map_or(Ok(()), |x| ep.delete_child_sa(now, handle, x)),
                    3 => ep.rekey_ike_sa(now, handle),
                    4 => ep.check_liveness(now, handle),
                    5 => ep.close(now, handle),
                    _ => Ok(()),
                };
            }
        }
        collect(&mut a, &mut b, &mut to_a, &mut to_b);
        let _ = (a.poll_timeout(), b.poll_timeout());
        established |= h.is_some_and(|h| a.is_established(h));
    }
    established
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input: IKE_SA_INIT request to B, response to A; then A's IKE_AUTH request
    /// with the byte at `at` (modulo its length) XOR-ed with 1 delivered to B, the
    /// original dropped, and B's answer delivered to A.
    fn mutated_ike_auth(at: u16) -> Vec<u8> {
        let [hi, lo] = at.to_be_bytes();
        vec![0, 1, 0, 3, hi, lo, 1, 0, 2, 0]
    }

    #[test]
    fn unmutated_handshake_establishes_with_both_providers() {
        // The same schedule without the mutation (kind 2 appends 8 bytes to a copy,
        // which B refuses; the original is then delivered).
        let input = [0, 1, 0, 1, 0];
        assert!(run_with(Target::Responder, Crypto::Real, &input));
        assert!(run_with(Target::Responder, Crypto::Fuzzing, &input));
    }

    #[test]
    fn only_the_fuzzing_provider_gets_a_mutated_sk_payload_past_authentication() {
        let n = 400;
        let real = (0..n)
            .filter(|&i| run_with(Target::Responder, Crypto::Real, &mutated_ike_auth(i)))
            .count();
        let fuzzing = (0..n)
            .filter(|&i| run_with(Target::Responder, Crypto::Fuzzing, &mutated_ike_auth(i)))
            .count();
        // Real crypto: every flipped bit of the IKE_AUTH request fails its ICV (or the
        // header checks), so the IKE SA never comes up. The fuzzing provider: flips in
        // the tag, the IV, and plaintext the responder does not insist on (e.g. reserved
        // bits, padding) are accepted, B authenticates A and A establishes.
        eprintln!(
            "mutated IKE_AUTH accepted: real crypto {real}, fuzzing provider {fuzzing} of {n}"
        );
        assert_eq!(real, 0);
        assert!(
            fuzzing > 24,
            "only {fuzzing} of {n} mutations were accepted"
        );
    }

    #[test]
    fn hybrid_runs_reach_ike_intermediate_and_establish() {
        // Deliver in turn: IKE_SA_INIT, two IKE_INTERMEDIATE exchanges, IKE_AUTH.
        let input = [0, 1, 0, 1, 0, 1, 0, 1, 0];
        assert!(run_hybrid(Target::Responder, Crypto::Real, &input));
        assert!(run_hybrid(Target::Responder, Crypto::Fuzzing, &input));
        // One exchange short of IKE_AUTH: not established.
        assert!(!run_hybrid(Target::Responder, Crypto::Real, &input[..7]));
    }
}
