//! The conformance suite every backend runs.
//!
//! Each `check_*` function takes a [`CryptoProvider`], runs the known-answer vectors of
//! `vectors/*.json` (every record names its source; see the vectors' README) and a few
//! negative cases against every algorithm of the provider that they apply to, and
//! returns how many vectors and cases it checked. Algorithms the provider lacks are
//! skipped. A failure panics with a message that names the vector.
//!
//! A backend instantiates the whole suite with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! ipsec_crypto::conformance_tests!(my_backend::PROVIDER;
//!     check_aead, check_cipher, check_integ, check_prf, check_kx, check_kdf, check_lengths,
//!     check_signatures);
//! ```
//!
//! Key exchange vectors need a fixed private key. The suite passes a [`FixedRandom`]
//! that hands out the vector's private key bytes to [`KxGroup::start`], so a backend
//! must build its private key from exactly the bytes it draws: 32 bytes for X25519 and
//! 56 for X448 (clamped per RFC 7748), the field-length big-endian scalar for the ECP
//! groups (for P-521 with the 7 bits above the order's length cleared; the RFC 5903
//! scalar has them clear), and the big-endian number of 64 bytes for the MODP groups.
//! ML-KEM draws the 64 seed bytes `d ‖ z` in `start` and the 32 bytes of `m` in
//! `respond` (FIPS 203 Algorithms 16 and 17); a backend whose ML-KEM cannot take them
//! from the caller runs the other ML-KEM checks and [`check_mlkem_internals`] (see the
//! `mlkem` module).

use std::boxed::Box;
use std::format;
use std::string::String;
use std::sync::Mutex;
use std::vec::Vec;

use serde_json::Value;

mod breadth;
mod mlkem;
pub use mlkem::{check_mlkem_internals, MlKemInternals};
mod signatures;
pub use signatures::{
    check_signature_interop, check_signatures, signature_vectors, SignatureVector,
};

use crate::kdf::{self, IkeKeyLengths};
use crate::provider::CryptoProvider;
use crate::traits::{ActiveKx, KxGroup, SecureRandom};
use crate::{CryptoError, EncrId, IntegId, KeId, PrfId};

const ESP_JSON: &str = include_str!("../vectors/esp.json");
const IKEV2_SK_JSON: &str = include_str!("../vectors/ikev2_sk.json");
const HMAC_SHA2_JSON: &str = include_str!("../vectors/hmac_sha2.json");
const IKEV2_KDF_JSON: &str = include_str!("../vectors/ikev2_kdf.json");
const X25519_JSON: &str = include_str!("../vectors/x25519.json");
const ECDH_ECP_JSON: &str = include_str!("../vectors/ecdh_ecp.json");

/// The RFC 3526 §3 MODP-2048 prime (group 14).
const MODP2048_PRIME: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// The RFC 3526 §4 MODP-3072 prime (group 15).
const MODP3072_PRIME: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

// ---------------------------------------------------------------------------------
// FixedRandom

/// A [`SecureRandom`] that hands out fixed bytes, in order, and fails with
/// [`CryptoError::Random`] once they are used up. For known-answer tests of key
/// exchanges only.
#[derive(Debug)]
pub struct FixedRandom {
    bytes: Vec<u8>,
    pos: Mutex<usize>,
}

impl FixedRandom {
    /// A source that returns `bytes` and then fails.
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            pos: Mutex::new(0),
        }
    }

    /// How many bytes have not been handed out yet.
    pub fn remaining(&self) -> usize {
        let pos = *self.pos.lock().unwrap_or_else(|e| e.into_inner());
        self.bytes.len().saturating_sub(pos)
    }
}

impl SecureRandom for FixedRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let end = pos.checked_add(dest.len()).ok_or(CryptoError::Random)?;
        let src = self.bytes.get(*pos..end).ok_or(CryptoError::Random)?;
        dest.copy_from_slice(src);
        *pos = end;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// JSON helpers

/// A vector record: the JSON object and its name, for messages.
struct Rec<'a> {
    v: &'a Value,
    name: &'a str,
}

fn load(file: &str, text: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(_) => panic!("{file}: not a JSON array"),
        Err(e) => panic!("{file}: {e}"),
    }
}

fn records<'a>(file: &str, all: &'a [Value]) -> impl Iterator<Item = Rec<'a>> {
    let file = String::from(file);
    all.iter().map(move |v| {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{file}: a record has no name"));
        Rec { v, name }
    })
}

impl<'a> Rec<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> &'a str {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: field `{key}` missing or not a string", self.name))
    }

    fn opt_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    fn hex(&self, key: &str) -> Vec<u8> {
        hex::decode(self.str(key))
            .unwrap_or_else(|e| panic!("{}: field `{key}` is not hex: {e}", self.name))
    }

    fn opt_hex(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).map(|_| self.hex(key))
    }

    fn int(&self, key: &str) -> u64 {
        self.get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{}: field `{key}` missing or not an integer", self.name))
    }

    fn opt_int(&self, key: &str) -> Option<u64> {
        self.get(key).map(|_| self.int(key))
    }

    fn verified(&self) -> bool {
        self.get("verified").and_then(Value::as_bool) == Some(true)
    }

    fn u32(&self, key: &str) -> u32 {
        u32::try_from(self.int(key))
            .unwrap_or_else(|_| panic!("{}: field `{key}` does not fit 32 bits", self.name))
    }

    fn u8(&self, key: &str) -> u8 {
        u8::try_from(self.int(key))
            .unwrap_or_else(|_| panic!("{}: field `{key}` does not fit 8 bits", self.name))
    }
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn flip(v: &mut [u8], i: usize) {
    if let Some(b) = v.get_mut(i) {
        *b ^= 0x01;
    }
}

// ---------------------------------------------------------------------------------
// ESP vectors

/// An ESP vector (esp.json), with the pieces the algorithm checks need.
struct Esp<'a> {
    name: &'a str,
    encr: &'a str,
    encr_key: Vec<u8>,
    salt: Vec<u8>,
    iv: Vec<u8>,
    integ: Option<&'a str>,
    integ_key: Vec<u8>,
    icv_len: usize,
    spi: u32,
    seq: u32,
    esn_high: Option<u32>,
    /// payload ‖ padding ‖ pad length ‖ next header.
    plaintext: Vec<u8>,
    pdu: Vec<u8>,
    accept: bool,
}

impl<'a> Esp<'a> {
    fn parse(r: &Rec<'a>) -> Self {
        let plaintext = concat(&[
            &r.hex("payload_data"),
            &r.hex("padding"),
            &[r.u8("pad_len"), r.u8("next_header")],
        ]);
        let esn_high = r
            .opt_int("esn_high")
            .map(|h| u32::try_from(h).unwrap_or_else(|_| panic!("{}: esn_high too large", r.name)));
        Esp {
            name: r.name,
            encr: r.str("encr"),
            encr_key: r.opt_hex("encr_key").unwrap_or_default(),
            salt: r.opt_hex("salt").unwrap_or_default(),
            iv: r.hex("iv"),
            integ: r.opt_str("integ"),
            integ_key: r.opt_hex("integ_key").unwrap_or_default(),
            icv_len: usize::try_from(r.int("icv_len")).unwrap_or(usize::MAX),
            spi: r.u32("spi"),
            seq: r.u32("seq"),
            esn_high,
            plaintext,
            pdu: r.hex("esp_pdu"),
            accept: r.str("expect") == "accept",
        }
    }

    /// All verified records of esp.json.
    fn all(values: &'a [Value]) -> Vec<Self> {
        records("esp.json", values)
            .filter(|r| r.verified())
            .map(|r| Esp::parse(&r))
            .collect()
    }

    /// SPI ‖ [ESN high] ‖ sequence number low: the AEAD AAD (RFC 4106 §5).
    fn aad(&self) -> Vec<u8> {
        let mut aad = self.spi.to_be_bytes().to_vec();
        if let Some(h) = self.esn_high {
            aad.extend_from_slice(&h.to_be_bytes());
        }
        aad.extend_from_slice(&self.seq.to_be_bytes());
        aad
    }

    /// salt ‖ IV.
    fn nonce(&self) -> Vec<u8> {
        concat(&[&self.salt, &self.iv])
    }

    /// The bytes between the explicit IV and the ICV.
    fn body(&self) -> &[u8] {
        let start = 8 + self.iv.len();
        let end = self.pdu.len().checked_sub(self.icv_len);
        end.and_then(|end| self.pdu.get(start..end))
            .unwrap_or_else(|| panic!("{}: esp_pdu too short", self.name))
    }

    /// The packet without the ICV: what HMAC integrity covers.
    fn authenticated(&self) -> &[u8] {
        let end = self.pdu.len().saturating_sub(self.icv_len);
        self.pdu.get(..end).unwrap_or_default()
    }

    fn icv(&self) -> &[u8] {
        let start = self.pdu.len().saturating_sub(self.icv_len);
        self.pdu.get(start..).unwrap_or_default()
    }

    fn check_layout(&self) {
        assert_eq!(
            self.pdu.get(..4),
            Some(&self.spi.to_be_bytes()[..]),
            "{}: esp_pdu does not start with the SPI",
            self.name
        );
        assert_eq!(
            self.pdu.get(8..8 + self.iv.len()),
            Some(&self.iv[..]),
            "{}: esp_pdu does not carry the IV",
            self.name
        );
    }
}

/// One AEAD known answer.
struct AeadCase<'a> {
    name: &'a str,
    key: &'a [u8],
    nonce: &'a [u8],
    aad: &'a [u8],
    plaintext: &'a [u8],
    ciphertext: &'a [u8],
    tag: &'a [u8],
}

/// Seals `plaintext` and compares with `ciphertext` and `tag`; opens it back; checks
/// that a flipped bit in the tag, the ciphertext and the AAD each fails to open.
fn aead_kat(alg: &dyn crate::AeadAlgorithm, case: &AeadCase<'_>) {
    let AeadCase {
        name,
        key,
        nonce,
        aad,
        plaintext,
        ciphertext,
        tag,
    } = *case;
    let backend = alg.backend();
    let k = alg
        .new_key(key)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: new_key failed: {e}"));
    assert_eq!(tag.len(), alg.tag_len(), "{name}: tag length");

    let mut data = plaintext.to_vec();
    let mut t = std::vec![0u8; alg.tag_len()];
    k.seal_detached(nonce, aad, &mut data, &mut t)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: seal failed: {e}"));
    assert_eq!(
        hex::encode(&data),
        hex::encode(ciphertext),
        "{name} [{backend}]: ciphertext"
    );
    assert_eq!(hex::encode(&t), hex::encode(tag), "{name} [{backend}]: tag");

    let mut data = ciphertext.to_vec();
    k.open_detached(nonce, aad, &mut data, tag)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: open failed: {e}"));
    assert_eq!(
        hex::encode(&data),
        hex::encode(plaintext),
        "{name} [{backend}]: plaintext"
    );

    let mut bad_tag = tag.to_vec();
    flip(&mut bad_tag, tag.len() - 1);
    let mut data = ciphertext.to_vec();
    assert_eq!(
        k.open_detached(nonce, aad, &mut data, &bad_tag),
        Err(CryptoError::Authentication),
        "{name} [{backend}]: a flipped tag bit must fail"
    );
    if !ciphertext.is_empty() {
        let mut data = ciphertext.to_vec();
        flip(&mut data, 0);
        assert_eq!(
            k.open_detached(nonce, aad, &mut data, tag),
            Err(CryptoError::Authentication),
            "{name} [{backend}]: a flipped ciphertext bit must fail"
        );
    }
    if !aad.is_empty() {
        let mut bad_aad = aad.to_vec();
        flip(&mut bad_aad, aad.len() - 1);
        let mut data = ciphertext.to_vec();
        assert_eq!(
            k.open_detached(nonce, &bad_aad, &mut data, tag),
            Err(CryptoError::Authentication),
            "{name} [{backend}]: a flipped AAD bit must fail"
        );
    }
}

/// AEAD known-answer tests: AES-GCM-16 (128/192/256), AES-CCM and ChaCha20-Poly1305
/// ESP packets and AES-GMAC (AES-GCM with everything in the AAD) from esp.json, the
/// RFC 7634 Appendix B IKEv2 SK payload from ikev2_sk.json, and AES-CCM with the
/// 11-byte nonce of RFC 4309 from aes_ccm.json (Wycheproof, and OpenSSL for the 8-
/// and 12-byte ICVs). Each vector is sealed
/// (byte-exact), opened, and opened again with a flipped tag, ciphertext and AAD bit,
/// which must give [`CryptoError::Authentication`].
///
/// # Panics
///
/// When a vector fails; the message names it.
pub fn check_aead(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("esp.json", ESP_JSON);
    for v in Esp::all(&values) {
        if !v.accept {
            continue;
        }
        let (id, gmac) = match v.encr {
            "AES-GCM" => (EncrId::ENCR_AES_GCM_16, false),
            "CHACHA20-POLY1305" => (EncrId::ENCR_CHACHA20_POLY1305, false),
            "NULL-AES-GMAC" => (EncrId::ENCR_AES_GCM_16, true),
            "AES-CCM" => match breadth::ccm_id(v.icv_len) {
                Some(id) => (id, false),
                None => continue,
            },
            _ => continue,
        };
        let Some(alg) = p.aead(id, v.encr_key.len()) else {
            continue;
        };
        if v.icv_len != alg.tag_len() {
            continue;
        }
        v.check_layout();
        if gmac {
            // RFC 4543 §3.3: AAD = SPI ‖ [ESN high] ‖ seq ‖ IV ‖ payload ‖ trailer,
            // nothing encrypted, the tag is the ICV.
            let body = v.body();
            assert_eq!(
                body,
                &v.plaintext[..],
                "{}: GMAC payload is not in the clear",
                v.name
            );
            let aad = concat(&[&v.aad(), &v.iv, body]);
            aead_kat(
                alg,
                &AeadCase {
                    name: v.name,
                    key: &v.encr_key,
                    nonce: &v.nonce(),
                    aad: &aad,
                    plaintext: &[],
                    ciphertext: &[],
                    tag: v.icv(),
                },
            );
        } else {
            aead_kat(
                alg,
                &AeadCase {
                    name: v.name,
                    key: &v.encr_key,
                    nonce: &v.nonce(),
                    aad: &v.aad(),
                    plaintext: &v.plaintext,
                    ciphertext: v.body(),
                    tag: v.icv(),
                },
            );
        }
        n += 1;
    }

    let values = load("ikev2_sk.json", IKEV2_SK_JSON);
    for r in records("ikev2_sk.json", &values).filter(Rec::verified) {
        if r.str("encr") != "CHACHA20-POLY1305" {
            continue;
        }
        let Some(alg) = p.aead(EncrId::ENCR_CHACHA20_POLY1305, 32) else {
            continue;
        };
        let ct_icv = r.hex("ciphertext_and_icv");
        let icv_len = usize::try_from(r.int("icv_len")).unwrap_or(usize::MAX);
        let split = ct_icv
            .len()
            .checked_sub(icv_len)
            .unwrap_or_else(|| panic!("{}: ciphertext_and_icv too short", r.name));
        let (ct, icv) = ct_icv.split_at(split);
        let nonce = concat(&[&r.hex("salt"), &r.hex("iv")]);
        aead_kat(
            alg,
            &AeadCase {
                name: r.name,
                key: &r.hex("encr_key"),
                nonce: &nonce,
                aad: &r.hex("aad"),
                plaintext: &r.hex("plaintext"),
                ciphertext: ct,
                tag: icv,
            },
        );
        n += 1;
    }
    n + breadth::ccm(p)
}

/// Block cipher known-answer tests: the AES-CBC and AES-CTR ESP packets of esp.json
/// (RFC 3602, Linux, DPDK, ODP), decrypted and re-encrypted byte for byte with the
/// explicit IV (for CTR the counter block nonce ‖ IV ‖ 1 of RFC 3686 §4), ENCR_NULL
/// packets through [`CryptoProvider::cipher`], and the RFC 3686 §6 vectors of
/// aes_ctr.json.
///
/// # Panics
///
/// When a vector fails; the message names it.
pub fn check_cipher(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("esp.json", ESP_JSON);
    for v in Esp::all(&values) {
        if !v.accept {
            continue;
        }
        let id = match v.encr {
            "AES-CBC" => EncrId::ENCR_AES_CBC,
            "AES-CTR" => EncrId::ENCR_AES_CTR,
            "NULL" => EncrId::ENCR_NULL,
            _ => continue,
        };
        let Some(alg) = p.cipher(id, v.encr_key.len()) else {
            continue;
        };
        v.check_layout();
        let backend = alg.backend();
        let name = v.name;
        let iv = if id == EncrId::ENCR_AES_CTR {
            breadth::ctr_block(&v.salt, &v.iv)
        } else {
            v.iv.clone()
        };
        assert_eq!(iv.len(), alg.iv_len(), "{name}: IV length");
        let k = alg
            .new_key(&v.encr_key)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: new_key failed: {e}"));

        let mut data = v.body().to_vec();
        k.decrypt(&iv, &mut data)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: decrypt failed: {e}"));
        assert_eq!(
            hex::encode(&data),
            hex::encode(&v.plaintext),
            "{name} [{backend}]: plaintext"
        );

        let mut data = v.plaintext.clone();
        k.encrypt(&iv, &mut data)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: encrypt failed: {e}"));
        assert_eq!(
            hex::encode(&data),
            hex::encode(v.body()),
            "{name} [{backend}]: ciphertext"
        );
        n += 1;
    }
    n + breadth::ctr(p)
}

fn integ_id(name: &str) -> Option<IntegId> {
    Some(match name {
        "HMAC-SHA1-96" => IntegId::AUTH_HMAC_SHA1_96,
        "HMAC-SHA2-256-128" => IntegId::AUTH_HMAC_SHA2_256_128,
        "HMAC-SHA2-384-192" => IntegId::AUTH_HMAC_SHA2_384_192,
        "HMAC-SHA2-512-256" => IntegId::AUTH_HMAC_SHA2_512_256,
        _ => return None,
    })
}

fn prf_id(name: &str) -> Option<PrfId> {
    Some(match name {
        "HMAC-SHA1" => PrfId::PRF_HMAC_SHA1,
        "HMAC-SHA2-256" => PrfId::PRF_HMAC_SHA2_256,
        "HMAC-SHA2-384" => PrfId::PRF_HMAC_SHA2_384,
        "HMAC-SHA2-512" => PrfId::PRF_HMAC_SHA2_512,
        _ => return None,
    })
}

/// Computes the ICV of `data` (given whole and split into three parts), compares it
/// with `icv` when `accept`, and checks that `verify` accepts exactly the right ICV.
fn integ_kat(
    name: &str,
    alg: &dyn crate::IntegAlgorithm,
    key: &[u8],
    data: &[&[u8]],
    icv: &[u8],
    accept: bool,
) {
    let backend = alg.backend();
    let k = alg
        .new_key(key)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: new_key failed: {e}"));
    assert_eq!(k.icv_len(), alg.icv_len(), "{name} [{backend}]: icv_len");
    assert_eq!(icv.len(), alg.icv_len(), "{name}: ICV length");

    let mut mine = std::vec![0u8; alg.icv_len()];
    k.compute(data, &mut mine)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: compute failed: {e}"));
    // The same input in other pieces must give the same ICV.
    let whole = data.concat();
    let (a, rest) = whole.split_at(whole.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut split = std::vec![0u8; alg.icv_len()];
    k.compute(&[a, &[], b, c], &mut split)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: compute failed: {e}"));
    assert_eq!(
        mine, split,
        "{name} [{backend}]: ICV depends on how the input is split"
    );

    if accept {
        assert_eq!(
            hex::encode(&mine),
            hex::encode(icv),
            "{name} [{backend}]: ICV"
        );
        k.verify(data, icv)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: verify failed: {e}"));
        let mut bad = icv.to_vec();
        flip(&mut bad, icv.len() - 1);
        assert_eq!(
            k.verify(data, &bad),
            Err(CryptoError::Authentication),
            "{name} [{backend}]: a wrong ICV must fail"
        );
    } else {
        assert_ne!(
            mine, icv,
            "{name} [{backend}]: negative vector has a matching ICV"
        );
        assert_eq!(
            k.verify(data, icv),
            Err(CryptoError::Authentication),
            "{name} [{backend}]: negative vector must fail"
        );
    }
    assert_eq!(
        k.verify(data, &mine),
        Ok(()),
        "{name} [{backend}]: verify rejects the ICV compute produced"
    );
}

/// Integrity known-answer tests: the "auth" records of hmac_sha2.json (RFC 4868
/// §2.7.2) and the ICVs of the esp.json packets with HMAC-SHA1-96 or HMAC-SHA2
/// integrity (over the packet without ICV, plus the ESN high bits when set, RFC 4303
/// §3.3.2.1), including the negative vector. A wrong ICV must fail.
///
/// # Panics
///
/// When a vector fails; the message names it.
pub fn check_integ(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("hmac_sha2.json", HMAC_SHA2_JSON);
    for r in records("hmac_sha2.json", &values).filter(Rec::verified) {
        if r.str("use") != "auth" {
            continue;
        }
        let out = r.hex("output");
        let id = match (r.str("hash"), out.len()) {
            ("HMAC-SHA2-256", 16) => IntegId::AUTH_HMAC_SHA2_256_128,
            ("HMAC-SHA2-384", 24) => IntegId::AUTH_HMAC_SHA2_384_192,
            ("HMAC-SHA2-512", 32) => IntegId::AUTH_HMAC_SHA2_512_256,
            _ => continue,
        };
        let Some(alg) = p.integ(id) else { continue };
        integ_kat(r.name, alg, &r.hex("key"), &[&r.hex("data")], &out, true);
        n += 1;
    }

    let values = load("esp.json", ESP_JSON);
    for v in Esp::all(&values) {
        let Some(id) = v.integ.and_then(integ_id) else {
            continue;
        };
        let Some(alg) = p.integ(id) else { continue };
        if v.icv_len != alg.icv_len() {
            continue;
        }
        v.check_layout();
        let esn = v.esn_high.map(u32::to_be_bytes);
        let esn: &[u8] = esn.as_ref().map_or(&[], |e| &e[..]);
        integ_kat(
            v.name,
            alg,
            &v.integ_key,
            &[v.authenticated(), esn],
            v.icv(),
            v.accept,
        );
        n += 1;
    }
    n
}

/// PRF known-answer tests: the "prf" records of hmac_sha2.json (RFC 4868 §2.7.1),
/// full output, through [`kdf::prf`] and with the input in pieces.
///
/// # Panics
///
/// When a vector fails; the message names it.
pub fn check_prf(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("hmac_sha2.json", HMAC_SHA2_JSON);
    for r in records("hmac_sha2.json", &values).filter(Rec::verified) {
        if r.str("use") != "prf" {
            continue;
        }
        let Some(alg) = prf_id(r.str("hash")).and_then(|id| p.prf(id)) else {
            continue;
        };
        let (name, backend) = (r.name, alg.backend());
        let (key, data, out) = (r.hex("key"), r.hex("data"), r.hex("output"));
        assert_eq!(out.len(), alg.output_len(), "{name}: output length");
        let got = kdf::prf(alg, &key, &[&data])
            .unwrap_or_else(|e| panic!("{name} [{backend}]: prf failed: {e}"));
        assert_eq!(
            hex::encode(got.expose()),
            hex::encode(&out),
            "{name} [{backend}]: output"
        );

        let k = alg
            .new_key(&key)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: new_key failed: {e}"));
        let (a, b) = data.split_at(data.len() / 2);
        let mut got = std::vec![0u8; alg.output_len()];
        k.compute(&[a, b], &mut got)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: compute failed: {e}"));
        assert_eq!(
            hex::encode(&got),
            hex::encode(&out),
            "{name} [{backend}]: split input"
        );
        n += 1;
    }
    n
}

/// IKEv2 key schedule known-answer tests (ikev2_kdf.json, NIST CAVP SP 800-135 and
/// strongSwan) through [`crate::kdf`]: `prf`, `prf+`, and the full `ikev2_sa` record:
/// SKEYSEED, DKM, Child SA KEYMAT with and without a new DH value, and the rekeyed
/// SKEYSEED, with SK_d the first PRF-output-length bytes of DKM.
///
/// # Panics
///
/// When a vector fails; the message names it.
pub fn check_kdf(p: &CryptoProvider) -> usize {
    let mut n = 0;
    let values = load("ikev2_kdf.json", IKEV2_KDF_JSON);
    for r in records("ikev2_kdf.json", &values).filter(Rec::verified) {
        let Some(alg) = prf_id(r.str("prf")).and_then(|id| p.prf(id)) else {
            continue;
        };
        let (name, backend) = (r.name, alg.backend());
        let fail =
            |what: &str, e: CryptoError| -> ! { panic!("{name} [{backend}]: {what} failed: {e}") };
        match r.str("kind") {
            "prf" => {
                let got = kdf::prf(alg, &r.hex("key"), &[&r.hex("data")])
                    .unwrap_or_else(|e| fail("prf", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("output"),
                    "{name} [{backend}]: prf output"
                );
            }
            "prf_plus" => {
                let out = r.hex("output");
                let got = kdf::prf_plus(alg, &r.hex("key"), &[&r.hex("seed")], out.len())
                    .unwrap_or_else(|e| fail("prf+", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("output"),
                    "{name} [{backend}]: prf+ output"
                );
            }
            "ikev2_sa" => {
                let (ni, nr) = (r.hex("ni"), r.hex("nr"));
                let spi = |k: &str| -> [u8; 8] {
                    r.hex(k)
                        .try_into()
                        .unwrap_or_else(|_| panic!("{name}: {k} is not 8 bytes"))
                };
                let (spi_i, spi_r) = (spi("spi_i"), spi("spi_r"));
                let (g_ir, g_ir_new) = (r.hex("g_ir"), r.hex("g_ir_new"));

                let skeyseed =
                    kdf::skeyseed(alg, &ni, &nr, &g_ir).unwrap_or_else(|e| fail("skeyseed", e));
                assert_eq!(
                    hex::encode(skeyseed.expose()),
                    r.str("skeyseed"),
                    "{name} [{backend}]: SKEYSEED"
                );

                let dkm = r.hex("dkm");
                let got = kdf::prf_plus(
                    alg,
                    skeyseed.expose(),
                    &[&ni, &nr, &spi_i, &spi_r],
                    dkm.len(),
                )
                .unwrap_or_else(|e| fail("prf+", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("dkm"),
                    "{name} [{backend}]: DKM"
                );

                // The same DKM cut into the seven IKE SA keys by `ike_keys`.
                let prf_key = alg.output_len();
                let rest = dkm.len().saturating_sub(3 * prf_key);
                let lens = IkeKeyLengths {
                    prf_key,
                    integ_key: rest / 4,
                    encr_key: rest / 4,
                };
                let keys = kdf::ike_keys(alg, skeyseed.expose(), &ni, &nr, &spi_i, &spi_r, lens)
                    .unwrap_or_else(|e| fail("ike_keys", e));
                let sk_d = dkm
                    .get(..prf_key)
                    .unwrap_or_else(|| panic!("{name}: DKM too short"));
                assert_eq!(keys.sk_d.expose(), sk_d, "{name} [{backend}]: SK_d");
                let tail = dkm
                    .get(lens.total() - prf_key..lens.total())
                    .unwrap_or_default();
                assert_eq!(keys.sk_pr.expose(), tail, "{name} [{backend}]: SK_pr");

                let child = r.hex("dkm_child");
                let got = kdf::child_keymat(alg, sk_d, None, &ni, &nr, child.len())
                    .unwrap_or_else(|e| fail("child_keymat", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("dkm_child"),
                    "{name} [{backend}]: Child SA KEYMAT"
                );

                let child_dh = r.hex("dkm_child_dh");
                let got = kdf::child_keymat(alg, sk_d, Some(&g_ir_new), &ni, &nr, child_dh.len())
                    .unwrap_or_else(|e| fail("child_keymat", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("dkm_child_dh"),
                    "{name} [{backend}]: Child SA KEYMAT with PFS"
                );

                let got = kdf::rekey_skeyseed(alg, sk_d, &g_ir_new, &ni, &nr)
                    .unwrap_or_else(|e| fail("rekey_skeyseed", e));
                assert_eq!(
                    hex::encode(got.expose()),
                    r.str("skeyseed_rekey"),
                    "{name} [{backend}]: rekeyed SKEYSEED"
                );
            }
            other => panic!("{name}: unknown kind {other:?}"),
        }
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------
// Key exchange

/// Starts `group` with `private` as the random bytes and checks that they were all
/// used and that the public value is `public`.
fn kx_start(name: &str, group: &dyn KxGroup, private: &[u8], public: &[u8]) -> Box<dyn ActiveKx> {
    let backend = group.backend();
    let rng = FixedRandom::new(private);
    let kx = group
        .start(&rng)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
    assert_eq!(
        rng.remaining(),
        0,
        "{name} [{backend}]: did not use the whole private key"
    );
    assert_eq!(kx.group(), group.id(), "{name} [{backend}]: group id");
    assert_eq!(
        hex::encode(kx.public()),
        hex::encode(public),
        "{name} [{backend}]: public value"
    );
    kx
}

/// Completes `kx` with `peer` and compares the secret with `shared`.
fn kx_complete(name: &str, backend: &str, kx: Box<dyn ActiveKx>, peer: &[u8], shared: &[u8]) {
    let s = kx
        .complete(peer)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: complete failed: {e}"));
    assert_eq!(
        hex::encode(s.expose()),
        hex::encode(shared),
        "{name} [{backend}]: shared secret"
    );
}

/// Expects `peer` to be refused.
fn kx_reject(name: &str, p: &CryptoProvider, group: &dyn KxGroup, peer: &[u8]) {
    let backend = group.backend();
    let kx = group
        .start(p.secure_random)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
    match kx.complete(peer) {
        Err(CryptoError::InvalidPublicValue | CryptoError::Length { .. }) => {}
        Err(e) => panic!("{name} [{backend}]: peer value refused with the wrong error: {e}"),
        Ok(_) => panic!("{name} [{backend}]: an invalid peer value was accepted"),
    }
}

/// Both sides with the provider's random source agree, through `start`/`complete`
/// and through `respond`.
fn kx_agree(p: &CryptoProvider, group: &dyn KxGroup) {
    let (id, backend) = (group.id(), group.backend());
    let start = || {
        group
            .start(p.secure_random)
            .unwrap_or_else(|e| panic!("{id:?} [{backend}]: start failed: {e}"))
    };
    let (a, b) = (start(), start());
    assert_eq!(
        a.public().len(),
        group.public_len(),
        "{id:?} [{backend}]: public value length"
    );
    assert_ne!(
        a.public(),
        b.public(),
        "{id:?} [{backend}]: two starts gave the same key"
    );
    // Two initiators completing with each other's values is Diffie-Hellman only: a
    // KEM's initiator completes with a ciphertext, never with a public key.
    if crate::mlkem::params(id).is_none() {
        let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
        let sa = a
            .complete(&pb)
            .unwrap_or_else(|e| panic!("{id:?} [{backend}]: complete: {e}"));
        let sb = b
            .complete(&pa)
            .unwrap_or_else(|e| panic!("{id:?} [{backend}]: complete: {e}"));
        assert!(sa == sb, "{id:?} [{backend}]: the two sides disagree");
        assert!(!sa.is_empty(), "{id:?} [{backend}]: empty shared secret");
    }

    let c = start();
    let (pr, sr) = group
        .respond(p.secure_random, c.public())
        .unwrap_or_else(|e| panic!("{id:?} [{backend}]: respond failed: {e}"));
    assert_eq!(
        pr.len(),
        group.response_len(),
        "{id:?} [{backend}]: respond public length"
    );
    let sc = c
        .complete(&pr)
        .unwrap_or_else(|e| panic!("{id:?} [{backend}]: complete: {e}"));
    assert!(
        sc == sr,
        "{id:?} [{backend}]: respond and complete disagree"
    );
}

/// X25519 with a fixed scalar: the u-coordinate `k * u`.
fn x25519_mult(name: &str, group: &dyn KxGroup, k: &[u8], u: &[u8]) -> Vec<u8> {
    let backend = group.backend();
    let rng = FixedRandom::new(k);
    let kx = group
        .start(&rng)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
    kx.complete(u)
        .unwrap_or_else(|e| panic!("{name} [{backend}]: complete failed: {e}"))
        .expose()
        .to_vec()
}

/// Key exchange checks.
///
/// - x25519.json (RFC 7748 §5.2 and §6.1, RFC 8031): scalar multiplications,
///   iterated multiplication (except the 1,000,000-step case), and Diffie-Hellman,
///   with the private keys handed in through [`FixedRandom`]; low-order peer values
///   (all-zero shared secret) are refused.
/// - ecdh_ecp.json (RFC 5903 §8): for each group the provider has, both sides'
///   public values (`x ‖ y`) and the shared secret (`x`), with the big-endian private
///   scalars handed in through [`FixedRandom`]; points off the curve are refused.
/// - x448.json (RFC 7748 §5.2 and §6.2, RFC 8031): as for X25519, with 56-byte keys
///   and iterations up to 1,000.
/// - MODP-2048, MODP-3072 and MODP-4096 (RFC 3526): public value length and range,
///   peer values 0, 1, p - 1 and p refused, p - 2 accepted, and the generator as
///   peer value gives our own public value; for MODP-4096 also the Diffie-Hellman
///   known answer of modp4096.json (made with Python's `pow` and checked with
///   OpenSSL).
/// - ML-KEM-512/768/1024 (FIPS 203; vectors/mlkem.json, NIST ACVP): key generation
///   and encapsulation known answers through [`FixedRandom`] for groups that draw
///   their seeds from the `rng` they are given, the §7.2 modulus check on `ek`, and
///   implicit rejection of modified ciphertexts (see the `mlkem` module; the
///   decapsulation vectors run in [`check_mlkem_internals`]).
/// - Every group of the provider: both sides agree, through `start` and `respond`.
///
/// # Panics
///
/// When a vector or case fails; the message names it.
pub fn check_kx(p: &CryptoProvider) -> usize {
    let mut n = 0;

    if let Some(g) = p.kx(KeId::CURVE25519) {
        let backend = g.backend();
        let values = load("x25519.json", X25519_JSON);
        for r in records("x25519.json", &values).filter(Rec::verified) {
            let name = r.name;
            match r.str("kind") {
                "scalar_mult" => {
                    let out = x25519_mult(name, g, &r.hex("scalar"), &r.hex("u"));
                    assert_eq!(
                        hex::encode(out),
                        r.str("output"),
                        "{name} [{backend}]: output"
                    );
                }
                "iterated" => {
                    let iterations = r.int("iterations");
                    if iterations > 1000 {
                        continue;
                    }
                    let mut k = r.hex("start");
                    let mut u = k.clone();
                    for _ in 0..iterations {
                        let next = x25519_mult(name, g, &k, &u);
                        u = core::mem::replace(&mut k, next);
                    }
                    assert_eq!(
                        hex::encode(k),
                        r.str("output"),
                        "{name} [{backend}]: output"
                    );
                }
                "dh" => {
                    let (pub_a, pub_b) = (r.hex("pub_a"), r.hex("pub_b"));
                    let shared = r.hex("shared");
                    let a = kx_start(name, g, &r.hex("priv_a"), &pub_a);
                    let b = kx_start(name, g, &r.hex("priv_b"), &pub_b);
                    kx_complete(name, backend, a, &pub_b, &shared);
                    kx_complete(name, backend, b, &pub_a, &shared);
                    let rng = FixedRandom::new(&r.hex("priv_b"));
                    let (pr, sr) = g
                        .respond(&rng, &pub_a)
                        .unwrap_or_else(|e| panic!("{name} [{backend}]: respond failed: {e}"));
                    assert_eq!(pr, pub_b, "{name} [{backend}]: respond public value");
                    assert_eq!(
                        sr.expose(),
                        &shared[..],
                        "{name} [{backend}]: respond secret"
                    );
                }
                other => panic!("{name}: unknown kind {other:?}"),
            }
            n += 1;
        }
        // Points of small order give the all-zero secret (RFC 8031 §2: MUST abort).
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let one = {
            let mut o = [0u8; 32];
            o[0] = 1;
            o
        };
        for (what, u) in [
            ("u = 0", [0u8; 32]),
            ("u = 1", one),
            ("u = p - 1", p_minus_1),
        ] {
            let name = format!("X25519 low-order peer value {what}");
            let kx = g
                .start(p.secure_random)
                .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"));
            assert_eq!(
                kx.complete(&u).err(),
                Some(CryptoError::InvalidPublicValue),
                "{name} [{backend}]: must be refused"
            );
            n += 1;
        }
    }

    let values = load("ecdh_ecp.json", ECDH_ECP_JSON);
    for r in records("ecdh_ecp.json", &values).filter(Rec::verified) {
        let group_id = u16::try_from(r.int("group")).unwrap_or(0);
        let Some(g) = p.kx(KeId(group_id)) else {
            continue;
        };
        let (name, backend) = (r.name, g.backend());
        let pub_i = concat(&[&r.hex("gix"), &r.hex("giy")]);
        let pub_r = concat(&[&r.hex("grx"), &r.hex("gry")]);
        let shared = r.hex("girx");
        assert_eq!(
            pub_i.len(),
            g.public_len(),
            "{name} [{backend}]: public_len"
        );
        let i = kx_start(name, g, &r.hex("i"), &pub_i);
        let rr = kx_start(name, g, &r.hex("r"), &pub_r);
        kx_complete(name, backend, i, &pub_r, &shared);
        kx_complete(name, backend, rr, &pub_i, &shared);
        n += 1;

        // Off the curve: y + 1 (the curve equation has at most two y per x, y and -y).
        let mut off = pub_r.clone();
        if let Some(last) = off.last_mut() {
            *last ^= 0x01;
        }
        kx_reject(&format!("{name}, y changed"), p, g, &off);
        kx_reject(
            &format!("{name}, all-zero point"),
            p,
            g,
            &std::vec![0u8; pub_r.len()],
        );
        // x = 2^k - 1 is beyond the field prime of P-256, P-384 and P-521.
        let mut big_x = pub_r.clone();
        big_x
            .iter_mut()
            .take(pub_r.len() / 2)
            .for_each(|b| *b = 0xff);
        kx_reject(&format!("{name}, x out of range"), p, g, &big_x);
        n += 3;
    }

    for (id, prime) in [
        (KeId::MODP_2048, MODP2048_PRIME),
        (KeId::MODP_3072, MODP3072_PRIME),
    ] {
        let Some(g) = p.kx(id) else { continue };
        n += check_modp(p, g, prime);
    }
    n += breadth::x448(p) + breadth::modp4096(p);

    n += mlkem::check_mlkem_kx(p);

    for g in p.kx_groups {
        kx_agree(p, *g);
        n += 1;
    }
    n
}

/// Big-endian `a - small` for `a > small` (same length).
fn sub_small(a: &[u8], small: u8) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = small;
    for b in out.iter_mut().rev() {
        let (v, o) = b.overflowing_sub(borrow);
        *b = v;
        borrow = u8::from(o);
        if borrow == 0 {
            break;
        }
    }
    out
}

fn check_modp(p: &CryptoProvider, g: &dyn KxGroup, prime_hex: &str) -> usize {
    let id = g.id();
    let backend = g.backend();
    let name = format!("{id:?} (RFC 3526)");
    let prime = hex::decode(prime_hex).unwrap_or_default();
    let len = prime.len();
    assert_eq!(g.public_len(), len, "{name} [{backend}]: public_len");
    let mut n = 0;

    let start = || {
        g.start(p.secure_random)
            .unwrap_or_else(|e| panic!("{name} [{backend}]: start failed: {e}"))
    };
    // The public value is in range and, with the generator as the peer's value, the
    // secret is 2^x = our own public value.
    let kx = start();
    let public = kx.public().to_vec();
    assert_eq!(public.len(), len, "{name} [{backend}]: public value length");
    assert!(
        public.as_slice() > [0u8; 1].as_slice(),
        "{name} [{backend}]: public value 0"
    );
    assert!(
        public < sub_small(&prime, 1),
        "{name} [{backend}]: public value >= p - 1"
    );
    let mut two = std::vec![0u8; len];
    if let Some(b) = two.last_mut() {
        *b = 2;
    }
    kx_complete(&format!("{name}, peer value g"), backend, kx, &two, &public);
    n += 1;

    // p - 2 is a valid peer value; the secret is padded to the prime's length.
    let kx = start();
    let s = kx
        .complete(&sub_small(&prime, 2))
        .unwrap_or_else(|e| panic!("{name} [{backend}]: peer value p - 2 refused: {e}"));
    assert_eq!(s.len(), len, "{name} [{backend}]: shared secret length");
    n += 1;

    let mut one = std::vec![0u8; len];
    if let Some(b) = one.last_mut() {
        *b = 1;
    }
    let bad: [(&str, Vec<u8>); 5] = [
        ("0", std::vec![0u8; len]),
        ("1", one),
        ("p - 1", sub_small(&prime, 1)),
        ("p", prime.clone()),
        ("2^n - 1", std::vec![0xffu8; len]),
    ];
    for (what, v) in bad {
        let kx = start();
        assert_eq!(
            kx.complete(&v).err(),
            Some(CryptoError::InvalidPublicValue),
            "{name} [{backend}]: peer value {what} must be refused"
        );
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------
// Lengths

fn expect_length<T>(what: &str, r: Result<T, CryptoError>) {
    match r {
        Err(CryptoError::Length { .. }) => {}
        Err(e) => panic!("{what}: expected a length error, got {e}"),
        Ok(_) => panic!("{what}: expected a length error, got Ok"),
    }
}

/// Lengths around `good`: one shorter, one longer, empty and much longer.
fn wrong_lengths(good: usize) -> Vec<usize> {
    let mut v = std::vec![good + 1, good + 16, 0];
    if good > 0 {
        v.push(good - 1);
    }
    v.retain(|&l| l != good);
    v
}

/// Wrong-length inputs to every algorithm of the provider (keys, nonces, tags, IVs,
/// ICVs, PRF outputs, CBC data that is not a whole number of blocks, peer public
/// values) must give [`CryptoError::Length`] (or [`CryptoError::InvalidPublicValue`]
/// for public values), never a panic.
///
/// # Panics
///
/// When an algorithm accepts a wrong length, fails otherwise, or panics.
pub fn check_lengths(p: &CryptoProvider) -> usize {
    let mut n = 0;
    for alg in p.aeads {
        let who = format!(
            "{:?} {}-byte key [{}]",
            alg.id(),
            alg.key_len(),
            alg.backend()
        );
        for l in wrong_lengths(alg.key_len()) {
            expect_length(
                &format!("{who}: key of {l} bytes"),
                alg.new_key(&std::vec![7; l]),
            );
            n += 1;
        }
        let k = alg
            .new_key(&std::vec![7; alg.key_len()])
            .unwrap_or_else(|e| panic!("{who}: new_key failed: {e}"));
        let (nl, tl) = (alg.nonce_len(), alg.tag_len());
        let mut data = [0u8; 33];
        let mut tag = std::vec![0u8; tl];
        for l in wrong_lengths(nl) {
            let nonce = std::vec![1; l];
            expect_length(
                &format!("{who}: seal with a {l}-byte nonce"),
                k.seal_detached(&nonce, b"aad", &mut data, &mut tag),
            );
            expect_length(
                &format!("{who}: open with a {l}-byte nonce"),
                k.open_detached(&nonce, b"aad", &mut data, &tag),
            );
            n += 2;
        }
        let nonce = std::vec![1; nl];
        for l in wrong_lengths(tl) {
            let mut t = std::vec![0u8; l];
            expect_length(
                &format!("{who}: seal with a {l}-byte tag"),
                k.seal_detached(&nonce, b"aad", &mut data, &mut t),
            );
            expect_length(
                &format!("{who}: open with a {l}-byte tag"),
                k.open_detached(&nonce, b"aad", &mut data, &t),
            );
            n += 2;
        }
        // Sanity: the right lengths work, including empty data and AAD.
        k.seal_detached(&nonce, &[], &mut [], &mut tag)
            .unwrap_or_else(|e| panic!("{who}: seal of nothing failed: {e}"));
        k.open_detached(&nonce, &[], &mut [], &tag)
            .unwrap_or_else(|e| panic!("{who}: open of nothing failed: {e}"));
        n += 1;
    }

    for alg in p.ciphers {
        let who = format!(
            "{:?} {}-byte key [{}]",
            alg.id(),
            alg.key_len(),
            alg.backend()
        );
        for l in wrong_lengths(alg.key_len()) {
            expect_length(
                &format!("{who}: key of {l} bytes"),
                alg.new_key(&std::vec![7; l]),
            );
            n += 1;
        }
        let k = alg
            .new_key(&std::vec![7; alg.key_len()])
            .unwrap_or_else(|e| panic!("{who}: new_key failed: {e}"));
        let (bl, il) = (alg.block_len(), alg.iv_len());
        let mut data = std::vec![0u8; 2 * bl];
        for l in wrong_lengths(il) {
            let iv = std::vec![1; l];
            expect_length(
                &format!("{who}: encrypt, {l}-byte IV"),
                k.encrypt(&iv, &mut data),
            );
            expect_length(
                &format!("{who}: decrypt, {l}-byte IV"),
                k.decrypt(&iv, &mut data),
            );
            n += 2;
        }
        let iv = std::vec![1; il];
        if bl > 1 {
            for l in [1, bl - 1, bl + 1, 2 * bl + 3] {
                let mut d = std::vec![0u8; l];
                expect_length(&format!("{who}: encrypt {l} bytes"), k.encrypt(&iv, &mut d));
                expect_length(&format!("{who}: decrypt {l} bytes"), k.decrypt(&iv, &mut d));
                n += 2;
            }
        }
        // Whole blocks, including none, work and round-trip.
        for l in [0, bl, 3 * bl] {
            let mut d: Vec<u8> = (0u8..=255).cycle().take(l).collect();
            k.encrypt(&iv, &mut d)
                .unwrap_or_else(|e| panic!("{who}: encrypt {l}: {e}"));
            k.decrypt(&iv, &mut d)
                .unwrap_or_else(|e| panic!("{who}: decrypt {l}: {e}"));
            assert!(
                d.iter().copied().eq((0u8..=255).cycle().take(l)),
                "{who}: round trip"
            );
        }
        n += 1;
    }

    for alg in p.integs {
        let who = format!("{:?} [{}]", alg.id(), alg.backend());
        for l in wrong_lengths(alg.key_len()) {
            expect_length(
                &format!("{who}: key of {l} bytes"),
                alg.new_key(&std::vec![7; l]),
            );
            n += 1;
        }
        let k = alg
            .new_key(&std::vec![7; alg.key_len()])
            .unwrap_or_else(|e| panic!("{who}: new_key failed: {e}"));
        for l in wrong_lengths(alg.icv_len()) {
            let mut icv = std::vec![0u8; l];
            expect_length(
                &format!("{who}: compute, {l}-byte ICV"),
                k.compute(&[b"x"], &mut icv),
            );
            expect_length(
                &format!("{who}: verify, {l}-byte ICV"),
                k.verify(&[b"x"], &icv),
            );
            n += 2;
        }
    }

    for alg in p.prfs {
        let who = format!("{:?} [{}]", alg.id(), alg.backend());
        // HMAC takes any key length (RFC 2104 §2); IKEv2 uses that (RFC 7296 §2.13).
        for l in [0, 1, alg.key_len(), 200] {
            alg.new_key(&std::vec![7; l])
                .unwrap_or_else(|e| panic!("{who}: a {l}-byte key was refused: {e}"));
        }
        let k = alg
            .new_key(&std::vec![7; alg.key_len()])
            .unwrap_or_else(|e| panic!("{who}: new_key failed: {e}"));
        for l in wrong_lengths(alg.output_len()) {
            let mut out = std::vec![0u8; l];
            expect_length(
                &format!("{who}: {l}-byte output"),
                k.compute(&[b"x"], &mut out),
            );
            n += 1;
        }
    }

    for g in p.kx_groups {
        let who = format!("{:?} [{}]", g.id(), g.backend());
        // The initiator completes with the responder's value (a KEM's ciphertext)...
        for l in wrong_lengths(g.response_len()) {
            kx_reject(
                &format!("{who}: {l}-byte peer value"),
                p,
                *g,
                &std::vec![0x42; l],
            );
            n += 1;
        }
        // ... and the responder answers the initiator's (a KEM's encapsulation key).
        for l in wrong_lengths(g.public_len()) {
            match g.respond(p.secure_random, &std::vec![0x42; l]) {
                Err(CryptoError::InvalidPublicValue | CryptoError::Length { .. }) => {}
                Err(e) => panic!("{who}: respond to {l} bytes: wrong error {e}"),
                Ok(_) => panic!("{who}: respond accepted a {l}-byte peer value"),
            }
            n += 1;
        }
        let mut pk = std::vec![0u8; g.public_len() - 1];
        let kx = g
            .start(p.secure_random)
            .unwrap_or_else(|e| panic!("{who}: start: {e}"));
        pk.extend_from_slice(kx.public());
        kx_reject(
            &format!("{who}: peer value with a leading zero byte"),
            p,
            *g,
            &pk,
        );
        drop(kx);
        n += 1;
    }
    n
}

/// Instantiates the conformance suite for a provider: one `#[test]` per listed check,
/// which calls `$crate::testkit::$check(&$provider)` and asserts that it checked
/// something.
///
/// ```ignore
/// ipsec_crypto::conformance_tests!(ipsec_crypto_rustcrypto::PROVIDER;
///     check_aead, check_cipher, check_integ, check_prf, check_kx, check_kdf, check_lengths);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($provider:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let n = $crate::testkit::$check(&$provider);
                assert!(n > 0, concat!(stringify!($check), ": the provider ran no vector"));
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_random_hands_out_bytes_in_order() {
        let r = FixedRandom::new(&[1, 2, 3]);
        let mut a = [0u8; 2];
        r.fill(&mut a).unwrap();
        assert_eq!(a, [1, 2]);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.fill(&mut a), Err(CryptoError::Random));
        let mut b = [0u8; 1];
        r.fill(&mut b).unwrap();
        assert_eq!(b, [3]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn vectors_parse() {
        for (file, text) in [
            ("esp.json", ESP_JSON),
            ("ikev2_sk.json", IKEV2_SK_JSON),
            ("hmac_sha2.json", HMAC_SHA2_JSON),
            ("ikev2_kdf.json", IKEV2_KDF_JSON),
            ("x25519.json", X25519_JSON),
            ("ecdh_ecp.json", ECDH_ECP_JSON),
        ]
        .into_iter()
        .chain(signatures::FILES)
        .chain(breadth::FILES)
        .chain(mlkem::FILES)
        {
            assert!(!load(file, text).is_empty(), "{file}");
        }
        let values = load("esp.json", ESP_JSON);
        let esp = Esp::all(&values);
        assert!(esp.len() >= 75);
        for v in &esp {
            v.check_layout();
            let _ = v.body();
        }
    }

    #[test]
    fn sub_small_borrows() {
        assert_eq!(sub_small(&[1, 0, 0], 1), [0, 0xff, 0xff]);
        assert_eq!(sub_small(&[0xff, 0xff], 2), [0xff, 0xfd]);
        let p = hex::decode(MODP2048_PRIME).unwrap();
        assert_eq!(p.len(), 256);
        assert_eq!(hex::decode(MODP3072_PRIME).unwrap().len(), 384);
    }

    #[test]
    fn null_cipher_passes_the_cipher_checks() {
        static P: CryptoProvider = CryptoProvider {
            name: "null",
            aeads: &[],
            ciphers: &[],
            integs: &[],
            prfs: &[],
            kx_groups: &[],
            signature_verifiers: &[],
            signers: &[],
            secure_random: &NO_RANDOM,
            compliance: crate::Compliance::Unvalidated,
        };
        static NO_RANDOM: FixedRandomless = FixedRandomless;
        #[derive(Debug)]
        struct FixedRandomless;
        impl SecureRandom for FixedRandomless {
            fn fill(&self, _: &mut [u8]) -> Result<(), CryptoError> {
                Err(CryptoError::Random)
            }
        }
        // Only NULL-encryption packets can run; there are some in esp.json.
        assert!(check_cipher(&P) > 0);
        assert_eq!(check_aead(&P), 0);
        assert_eq!(check_kx(&P), 0);
        assert_eq!(check_signatures(&P), 0);
    }
}
