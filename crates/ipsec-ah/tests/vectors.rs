//! Known answers from implementations we did not write, in both directions: our
//! output must equal theirs byte for byte, and opening theirs must give back the
//! original packet.
//!
//! - `vectors/ah.json`: OpenDataPlane and DPDK AH packets (copied from
//!   the shared vector collection's `ah.json`, whose README gives the schema): IPv4/IPv6 transport, all
//!   four tunnel combinations, HMAC-SHA2-256-128, AES-GMAC-128 with its IV in the AH,
//!   and two negative packets.
//! - `vectors/scapy_ah.json`: made by `tests/gen_scapy_vectors.py` with Scapy 2.8.0's
//!   `SecurityAssociation(AH, ...)`: IPv4 options (Router Alert, Timestamp, Record
//!   Route, Security, Loose Source Route), IPv6 hop-by-hop, destination options with
//!   mutable options and a type 0 routing header with segments left, ESN, every HMAC
//!   Scapy has, and tunnel mode in all four combinations. Each record also carries
//!   copies of the packet as routers may change it in flight ("arrived"); Scapy
//!   verified those, and so must we.
//!
//! Where Scapy and RFC 4302 disagree (found while making the vectors):
//!
//! 1. **IPv4 source routes.** RFC 4302 §3.3.3.1.1.1 lists the destination address
//!    under "mutable but predictable" when a loose or strict source route is present,
//!    and §3.3.3.1 says such a field takes, for the ICV, "the value ... at the
//!    (IPsec) receiver": the route's final destination. Scapy's
//!    `zero_mutable_fields()` zeroes the option but leaves the first hop in the
//!    destination field, so its ICV only verifies before the first router rewrites
//!    the header; after the route (the only place an IPsec receiver sees it) Scapy
//!    itself rejects its own packet. The RFC is right: the ICV must survive the route.
//!    The record's `ah_packet` is Scapy's output with the final destination put into
//!    its zeroed copy; Scapy's unmodified packet (`scapy_rfc.scapy_ah_packet`) must
//!    be refused here ([`scapy_source_route_disagreement`]).
//! 2. **Where AH goes in front of destination options without a routing header.**
//!    Scapy (following Linux) puts AH after them; we put it before, where RFC 8200
//!    §4.1 orders options for the final destination. RFC 4302 §3.1.1 allows both
//!    ("before or after or both"), so neither is wrong: we compare only the receive
//!    direction for that record (`seal_matches: false`) and open Scapy's layout.
//! 3. **IPv4 option classes.** Scapy classifies options by the 5-bit option number
//!    (so 0x14 or 0x02 would count as Router Alert or Security); RFC 4302 Appendix A.1
//!    names full type bytes (148, 130). The vectors use the real type bytes, where
//!    both agree; our table follows the RFC.
//! 4. **IPv4 Fragment Offset.** Scapy zeroes the flags but keeps the fragment offset;
//!    RFC 4302 zeroes both. AH only covers whole datagrams (offset 0), so this never
//!    changes an ICV.
//!
//! Scapy quirks that are not RFC questions: it dissects a UDP/4500 payload as ESP and
//! then signs AH packets like ESP (the vectors avoid port 4500), and its Timestamp
//! option dissector reads a single timestamp (the vectors use one slot).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{load, open, seal, Vector};
use ipsec_ah::OpenError;
use ipsec_ah::OpenOptions;

const ODP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ah.json");
const SCAPY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/scapy_ah.json");

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
fn odp_dpdk_vectors_both_directions() {
    let vs = load(ODP);
    assert_eq!(vs.len(), 11);
    let (mut accepted, mut rejected) = (0, 0);
    for v in &vs {
        let ours = seal(v);
        let opened = open(v, &v.ah_packet);
        if v.reject {
            assert_ne!(hexs(&ours), hexs(&v.ah_packet), "{}", v.name);
            assert_eq!(opened.unwrap_err(), OpenError::Integrity, "{}", v.name);
            rejected += 1;
        } else {
            assert_eq!(hexs(&ours), hexs(&v.ah_packet), "seal: {}", v.name);
            assert_eq!(
                hexs(&opened.unwrap()),
                hexs(&v.plaintext),
                "open: {}",
                v.name
            );
            // Our own output opens too.
            assert_eq!(
                hexs(&open(v, &ours).unwrap()),
                hexs(&v.plaintext),
                "{}",
                v.name
            );
            accepted += 1;
        }
    }
    assert_eq!((accepted, rejected), (9, 2));
}

#[test]
fn odp_vectors_refuse_replays_and_other_spis() {
    let vs = load(ODP);
    let v = &vs[0];
    let mut i = v.inbound();
    let mut s = common::buffer(&v.ah_packet);
    let mut b = ipsec_ah::PacketBuf::new(&mut s[..], common::ROOM, v.ah_packet.len()).unwrap();
    i.open_transport(&mut b, OpenOptions::new()).unwrap();
    let mut s = common::buffer(&v.ah_packet);
    let mut b = ipsec_ah::PacketBuf::new(&mut s[..], common::ROOM, v.ah_packet.len()).unwrap();
    assert!(matches!(
        i.open_transport(&mut b, OpenOptions::new()),
        Err(OpenError::Replay(_))
    ));
    let mut other = v.ah_packet.clone();
    other[27] ^= 1; // SPI
    assert!(matches!(open(v, &other), Err(OpenError::Malformed(_))));
}

#[test]
fn scapy_vectors_both_directions() {
    let vs = load(SCAPY);
    assert!(vs.len() >= 30, "{}", vs.len());
    let mut counts = (0, 0, 0);
    for v in &vs {
        if v.raw["seal_matches"].as_bool().unwrap() {
            assert_eq!(hexs(&seal(v)), hexs(&v.ah_packet), "seal: {}", v.name);
            counts.0 += 1;
        } else {
            // Disagreement 2 above: our packet has AH in front of the destination
            // options; it must still open to the same original packet.
            let ours = seal(v);
            assert_ne!(ours, v.ah_packet);
            assert_eq!(
                hexs(&open(v, &ours).unwrap()),
                hexs(&v.plaintext),
                "{}",
                v.name
            );
        }
        assert_eq!(
            hexs(&open(v, &v.ah_packet).unwrap()),
            hexs(&v.plaintext),
            "open: {}",
            v.name
        );
        counts.1 += 1;
        for a in v.raw["arrived_packets"].as_array().unwrap() {
            let p = hex::decode(a["packet"].as_str().unwrap()).unwrap();
            let what = a["what"].as_str().unwrap();
            let out = open(v, &p).unwrap_or_else(|e| panic!("{}: {what}: {e}", v.name));
            // The payload behind the IP header(s) is the original one.
            let tail = 20.min(v.plaintext.len());
            assert_eq!(
                out[out.len() - tail..],
                v.plaintext[v.plaintext.len() - tail..]
            );
            counts.2 += 1;
        }
    }
    assert_eq!(counts.1, vs.len());
    assert!(counts.0 >= vs.len() - 1);
    assert!(counts.2 >= vs.len());
}

/// Disagreement 1 above: Scapy's own source-routed packet is computed over the first
/// hop's address and must not verify; the RFC form (final destination) does, both as
/// sent and after the route.
#[test]
fn scapy_source_route_disagreement() {
    let vs = load(SCAPY);
    let with: Vec<&Vector> = vs
        .iter()
        .filter(|v| !v.raw["scapy_rfc"].is_null())
        .collect();
    assert_eq!(with.len(), 1);
    for v in with {
        let theirs = hex::decode(v.raw["scapy_rfc"]["scapy_ah_packet"].as_str().unwrap()).unwrap();
        assert_eq!(open(v, &theirs).unwrap_err(), OpenError::Integrity);
        assert!(open(v, &v.ah_packet).is_ok());
    }
}

#[test]
fn scapy_vectors_reject_any_flipped_payload_or_icv_bit() {
    for v in load(SCAPY).iter().step_by(3) {
        let n = v.ah_packet.len();
        for pos in [n - 1, n - 8] {
            let mut p = v.ah_packet.clone();
            p[pos] ^= 0x10;
            assert!(open(v, &p).is_err(), "{} byte {pos}", v.name);
        }
    }
}
