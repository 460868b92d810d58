//! ML-KEM checks of the conformance suite (vectors/mlkem.json: NIST ACVP keyGen and
//! encapDecap test cases for FIPS 203, see vectors/mlkem.py).
//!
//! Two entry points:
//! - [`check_kx`](super::check_kx) runs the part that needs nothing but the public
//!   [`KxGroup`] trait, on every ML-KEM group of a provider (through `check_mlkem_kx`).
//!   A group that draws its randomness from the `rng` it is given (ML-KEM.KeyGen's
//!   seeds `d ‖ z`, 64 bytes, in [`KxGroup::start`]; ML-KEM.Encaps's `m`, 32 bytes, in
//!   [`KxGroup::respond`]) is held to the ACVP key generation and encapsulation
//!   vectors through [`FixedRandom`]; every group is held to the FIPS 203 §7.2 and §7.3
//!   input checks, to agreement, and to implicit rejection of a modified ciphertext.
//! - [`check_mlkem_internals`] runs the vectors that need a backend's internals: the
//!   decapsulation vectors (an expanded decapsulation key `dk` from the vector, which
//!   the [`KxGroup`] API never takes from outside) and, where the backend can, the
//!   `dk` of key generation. A backend implements [`MlKemInternals`] in its own unit
//!   tests (`#[cfg(test)]`) over the crate-private functions its [`KxGroup`] runs, so
//!   its public API gains nothing. A backend whose library cannot take randomness
//!   from the caller (aws-lc-rs) has its encapsulation checked there instead: the
//!   shared secret of its `respond` to a vector's `ek` must be what the vector's `dk`
//!   decapsulates.

use std::boxed::Box;
use std::format;
use std::vec::Vec;

use super::{load, records, FixedRandom, Rec};
use crate::mlkem::{self, MlKemParams};
use crate::provider::CryptoProvider;
use crate::traits::{ActiveKx, KxGroup};
use crate::{CryptoError, KeId, SecretBytes, SharedSecret};

const MLKEM_JSON: &str = include_str!("../../vectors/mlkem.json");

/// Every vector file of this module, for the parse test.
#[cfg(test)]
pub(super) const FILES: [(&str, &str); 1] = [("mlkem.json", MLKEM_JSON)];

/// What the ML-KEM known-answer tests need from a backend beyond [`KxGroup`]: the
/// FIPS 203 internal algorithms on explicit inputs. Implement it in the backend's
/// `#[cfg(test)]` code over the same functions its [`KxGroup`] uses; see the
/// [module docs](self).
pub trait MlKemInternals {
    /// The backend, for messages.
    fn backend(&self) -> &'static str;

    /// ML-KEM.KeyGen_internal(d, z) (FIPS 203 Algorithm 16): `(ek, dk)`, or `None` if
    /// the backend cannot generate keys from given seeds.
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] for a method that is not ML-KEM.
    fn keygen_internal(
        &self,
        id: KeId,
        d: &[u8; 32],
        z: &[u8; 32],
    ) -> Result<Option<(Vec<u8>, SecretBytes)>, CryptoError>;

    /// ML-KEM.Decaps(dk, c) (FIPS 203 Algorithm 21) with an expanded decapsulation key.
    ///
    /// # Errors
    /// [`CryptoError::Length`] for a `dk` or `c` of the wrong length.
    fn decapsulate(&self, id: KeId, dk: &[u8], c: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// One record of mlkem.json.
struct Vector<'a> {
    name: &'a str,
    kind: &'a str,
    params: &'static MlKemParams,
    r: Rec<'a>,
}

fn vectors(values: &[serde_json::Value]) -> Vec<Vector<'_>> {
    records("mlkem.json", values)
        .filter(Rec::verified)
        .map(|r| {
            let params = match r.int("param") {
                512 => &mlkem::ML_KEM_512,
                768 => &mlkem::ML_KEM_768,
                1024 => &mlkem::ML_KEM_1024,
                other => panic!("{}: unknown parameter set {other}", r.name),
            };
            Vector {
                name: r.name,
                kind: r.str("kind"),
                params,
                r,
            }
        })
        .collect()
}

fn seed32(v: &Vector<'_>, key: &str) -> [u8; 32] {
    v.r.hex(key)
        .try_into()
        .unwrap_or_else(|_| panic!("{}: {key} is not 32 bytes", v.name))
}

/// Whether `g` builds its key pair from the 64 bytes `start` draws: it must draw exactly
/// those or nothing at all.
fn draws_seeds(g: &dyn KxGroup) -> bool {
    let rng = FixedRandom::new(&[0x5a; 64]);
    let backend = g.backend();
    let kx = g
        .start(&rng)
        .unwrap_or_else(|e| panic!("{:?} [{backend}]: start with a fixed source: {e}", g.id()));
    drop(kx);
    match rng.remaining() {
        0 => true,
        64 => false,
        n => panic!(
            "{:?} [{backend}]: start drew {} bytes, not the 64 of d ‖ z",
            g.id(),
            64 - n
        ),
    }
}

/// `c` with bit 0 of byte `i` flipped.
fn flipped(c: &[u8], i: usize) -> Vec<u8> {
    let mut c = c.to_vec();
    super::flip(&mut c, i);
    c
}

/// The ML-KEM part of [`check_kx`](super::check_kx), for every ML-KEM group of `p`.
pub(super) fn check_mlkem_kx(p: &CryptoProvider) -> usize {
    let values = load("mlkem.json", MLKEM_JSON);
    let all = vectors(&values);
    let mut n = 0;
    for params in mlkem::ALL {
        let Some(g) = p.kx(params.id) else { continue };
        let backend = g.backend();
        let who = format!("{} [{backend}]", params.name);
        assert_eq!(g.public_len(), params.ek_len, "{who}: public_len");
        assert_eq!(
            g.response_len(),
            params.ciphertext_len,
            "{who}: response_len"
        );
        let seeded = draws_seeds(g);
        for v in all.iter().filter(|v| v.params == params) {
            let name = v.name;
            match v.kind {
                // ML-KEM.KeyGen: start draws d ‖ z (FIPS 203 Algorithm 19).
                "keygen" if seeded => {
                    let rng = FixedRandom::new(&[v.r.hex("d"), v.r.hex("z")].concat());
                    let kx = g
                        .start(&rng)
                        .unwrap_or_else(|e| panic!("{name} [{backend}]: start: {e}"));
                    assert_eq!(
                        hex::encode(kx.public()),
                        v.r.str("ek"),
                        "{name} [{backend}]: ek"
                    );
                    // The key pair decapsulates what the group encapsulates to it.
                    let m = FixedRandom::new(&[0x42; 32]);
                    let (c, k) = g
                        .respond(&m, kx.public())
                        .unwrap_or_else(|e| panic!("{name} [{backend}]: respond: {e}"));
                    let k2 = kx
                        .complete(&c)
                        .unwrap_or_else(|e| panic!("{name} [{backend}]: complete: {e}"));
                    assert!(k == k2, "{name} [{backend}]: decapsulation disagrees");
                    n += 1;
                }
                // ML-KEM.Encaps: respond draws m (FIPS 203 Algorithm 20).
                "encaps" if seeded => {
                    let rng = FixedRandom::new(&v.r.hex("m"));
                    let (c, k) = g
                        .respond(&rng, &v.r.hex("ek"))
                        .unwrap_or_else(|e| panic!("{name} [{backend}]: respond: {e}"));
                    assert_eq!(rng.remaining(), 0, "{name} [{backend}]: m not drawn");
                    assert_eq!(hex::encode(c), v.r.str("c"), "{name} [{backend}]: c");
                    assert_eq!(
                        hex::encode(k.expose()),
                        v.r.str("k"),
                        "{name} [{backend}]: K"
                    );
                    n += 1;
                }
                _ => {}
            }
            if v.kind == "encaps" {
                n += check_bad_keys(p, g, &v.r.hex("ek"), name);
            }
        }
        n += check_rejection(p, g, &who);
    }
    n
}

/// The FIPS 203 §7.2 modulus check: `ek` with one coefficient set to q or above is
/// refused by `respond` with [`CryptoError::InvalidPublicValue`].
fn check_bad_keys(p: &CryptoProvider, g: &dyn KxGroup, ek: &[u8], name: &str) -> usize {
    let backend = g.backend();
    let k = (ek.len() - 32) / 384;
    let last = 384 * k - 3;
    // (what, byte offset of a coefficient pair, low or high coefficient, value)
    let cases: [(&str, usize, bool, u16); 4] = [
        ("first coefficient = q", 0, false, mlkem::Q),
        ("second coefficient = 4095", 0, true, 0x0fff),
        ("last coefficient = q", last, true, mlkem::Q),
        (
            "a middle coefficient = q + 1",
            384 * (k / 2) + 12,
            false,
            mlkem::Q + 1,
        ),
    ];
    for (what, at, high, value) in cases {
        let mut bad = ek.to_vec();
        let (b0, b1, b2) = (bad[at], bad[at + 1], bad[at + 2]);
        let (b0, b1, b2) = (u16::from(b0), u16::from(b1), u16::from(b2));
        let (mut lo, mut hi) = (b0 | ((b1 & 0x0f) << 8), (b1 >> 4) | (b2 << 4));
        if high {
            hi = value;
        } else {
            lo = value;
        }
        bad[at] = (lo & 0xff) as u8;
        bad[at + 1] = ((lo >> 8) | ((hi & 0x0f) << 4)) as u8;
        bad[at + 2] = (hi >> 4) as u8;
        match g.respond(p.secure_random, &bad) {
            Err(CryptoError::InvalidPublicValue) => {}
            Err(e) => panic!("{name}, {what} [{backend}]: refused with the wrong error: {e}"),
            Ok(_) => panic!("{name}, {what} [{backend}]: an invalid ek was accepted"),
        }
    }
    cases.len()
}

/// Agreement through `start`/`respond`/`complete`, and implicit rejection: a modified
/// ciphertext of the right length decapsulates (FIPS 203 Algorithm 18 never fails on
/// it) to a different secret.
fn check_rejection(p: &CryptoProvider, g: &dyn KxGroup, who: &str) -> usize {
    let rng = p.secure_random;
    let start =
        || -> Box<dyn ActiveKx> { g.start(rng).unwrap_or_else(|e| panic!("{who}: start: {e}")) };
    let mut n = 0;
    for i in [0, 1, g.response_len() - 1] {
        let kx = start();
        let (c, k) = g
            .respond(rng, kx.public())
            .unwrap_or_else(|e| panic!("{who}: respond: {e}"));
        assert_eq!(k.len(), mlkem::SHARED_SECRET_LEN, "{who}: secret length");
        let k2 = kx
            .complete(&flipped(&c, i))
            .unwrap_or_else(|e| panic!("{who}: a modified ciphertext failed: {e}"));
        assert_eq!(k2.len(), mlkem::SHARED_SECRET_LEN, "{who}: secret length");
        assert!(k != k2, "{who}: byte {i} of c modified, same secret");
        n += 1;
    }
    n
}

/// The ML-KEM vectors that need a backend's internals ([`MlKemInternals`]), and, for
/// every ML-KEM group of `p` (the same backend's provider), its encapsulation checked
/// against the vectors' decapsulation keys.
///
/// - keyGen vectors: `(ek, dk)` from `(d, z)`, where the backend can;
/// - encapsulation vectors: `dk` decapsulates `c` to `K`; the group's `respond` to `ek`
///   gives a secret that `dk` decapsulates to;
/// - decapsulation vectors, unmodified and modified ciphertexts (implicit rejection);
/// - `dk` and `c` of wrong lengths are length errors.
///
/// # Panics
///
/// When a vector or case fails; the message names it.
pub fn check_mlkem_internals(p: &CryptoProvider, k: &dyn MlKemInternals) -> usize {
    let values = load("mlkem.json", MLKEM_JSON);
    let backend = k.backend();
    let mut n = 0;
    for v in vectors(&values) {
        let (name, id) = (v.name, v.params.id);
        let decaps = |dk: &[u8], c: &[u8]| {
            k.decapsulate(id, dk, c)
                .unwrap_or_else(|e| panic!("{name} [{backend}]: decapsulate: {e}"))
        };
        match v.kind {
            "keygen" => {
                let got = k
                    .keygen_internal(id, &seed32(&v, "d"), &seed32(&v, "z"))
                    .unwrap_or_else(|e| panic!("{name} [{backend}]: keygen: {e}"));
                if let Some((ek, dk)) = got {
                    assert_eq!(hex::encode(ek), v.r.str("ek"), "{name} [{backend}]: ek");
                    assert_eq!(
                        hex::encode(dk.expose()),
                        v.r.str("dk"),
                        "{name} [{backend}]: dk"
                    );
                    n += 1;
                }
            }
            "encaps" | "decaps" => {
                let (dk, c) = (v.r.hex("dk"), v.r.hex("c"));
                let got = decaps(&dk, &c);
                assert_eq!(
                    hex::encode(got.expose()),
                    v.r.str("k"),
                    "{name} [{backend}]: K"
                );
                n += 1;
                if v.kind == "encaps" {
                    if let Some(g) = p.kx(id) {
                        let (c2, k2) = g
                            .respond(p.secure_random, &v.r.hex("ek"))
                            .unwrap_or_else(|e| panic!("{name} [{backend}]: respond: {e}"));
                        assert!(
                            decaps(&dk, &c2) == k2,
                            "{name} [{backend}]: respond's secret is not what dk decapsulates"
                        );
                        n += 1;
                    }
                }
                for (what, dk_len, c_len) in [
                    ("dk", dk.len() - 1, c.len()),
                    ("dk", dk.len() + 1, c.len()),
                    ("c", dk.len(), c.len() - 1),
                    ("c", dk.len(), c.len() + 1),
                    ("c", dk.len(), 0),
                ] {
                    let (mut dk2, mut c2) = (dk.clone(), c.clone());
                    dk2.resize(dk_len, 0);
                    c2.resize(c_len, 0);
                    match k.decapsulate(id, &dk2, &c2) {
                        Err(CryptoError::Length { .. }) => {}
                        Err(e) => panic!("{name} [{backend}]: {what} of a wrong length: {e}"),
                        Ok(_) => panic!("{name} [{backend}]: {what} of a wrong length accepted"),
                    }
                    n += 1;
                }
            }
            other => panic!("{name}: unknown kind {other:?}"),
        }
    }
    n
}
