//! The MS-CHAPv2 computations of RFC 2759 §8 and the key derivation of RFC 3079 §3,
//! on MD4, single DES and SHA-1 from RustCrypto.
//!
//! Every secret here (the password's UTF-16 form, its hash, the hash's hash, the
//! master key and the start keys) is wiped when it goes out of scope; the
//! challenges, the NT-Response and the authenticator response travel in the clear.

use core::fmt;

use des::cipher::{BlockEncrypt, KeyInit};
use ipsec_crypto::SecretBytes;
use md4::{Digest, Md4};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A password as MS-CHAPv2 keeps it: `NtPasswordHash` (RFC 2759 §8.3), the MD4
/// of the password in UTF-16LE. It is all the authenticator needs, so a user
/// database may store this instead of the password (as the NT hash of a Windows
/// account). Wiped on drop; `Debug` prints no byte of it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NtHash([u8; 16]);

impl NtHash {
    /// Hashes `password` (RFC 2759 §8.3): each Unicode scalar value is encoded as
    /// UTF-16LE (surrogate pairs above U+FFFF), without a terminator, and the MD4
    /// of those bytes is the hash. The UTF-16 copy is wiped afterwards.
    pub fn from_password(password: &str) -> Self {
        let mut md4 = Md4::new();
        for unit in password.encode_utf16() {
            let mut b = unit.to_le_bytes();
            md4.update(b);
            b.zeroize();
        }
        NtHash(md4.finalize().into())
    }

    /// A hash computed elsewhere (the 16 bytes of `NtPasswordHash`).
    pub fn from_bytes(hash: [u8; 16]) -> Self {
        NtHash(hash)
    }

    /// A copy, for a new run of the method with the same credentials.
    pub(crate) fn duplicate(&self) -> Self {
        NtHash(self.0)
    }

    #[cfg(test)]
    pub(crate) fn expose_for_test(&self) -> &[u8; 16] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn hash_hash_for_test(&self) -> Zeroizing<[u8; 16]> {
        self.hash_hash()
    }

    /// `HashNtPasswordHash` (RFC 2759 §8.4): MD4 of the hash.
    fn hash_hash(&self) -> Zeroizing<[u8; 16]> {
        Zeroizing::new(Md4::digest(self.0).into())
    }
}

impl fmt::Debug for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtHash(..)")
    }
}

/// The user name as the challenge hash takes it (RFC 2759 §8.2): without a
/// Windows domain prefix, i.e. everything after the first `\` if there is one.
pub(crate) fn strip_domain(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'\\') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// `ChallengeHash` (RFC 2759 §8.2): the first 8 bytes of
/// SHA-1(PeerChallenge ‖ AuthenticatorChallenge ‖ UserName). `user` is the name
/// already without its domain.
pub(crate) fn challenge_hash(peer: &[u8; 16], auth: &[u8; 16], user: &[u8]) -> [u8; 8] {
    let d = Sha1::new()
        .chain_update(peer)
        .chain_update(auth)
        .chain_update(user)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// A 7-byte DES key part spread over 8 bytes, 7 key bits in the top of each
/// (RFC 2759 §8.6 `DesEncrypt`; the low bit is the parity bit, which DES ignores).
fn des_key(k: &[u8]) -> Zeroizing<[u8; 8]> {
    let mut bits = [0u8; 8];
    bits[1..].copy_from_slice(&k[..7]);
    let mut v = u64::from_be_bytes(bits);
    bits.zeroize();
    let mut out = Zeroizing::new([0u8; 8]);
    for i in (0..8).rev() {
        out[i] = ((v & 0x7f) as u8) << 1;
        v >>= 7;
    }
    v.zeroize();
    out
}

/// `ChallengeResponse` (RFC 2759 §8.5): the hash padded with zeros to 21 bytes,
/// cut into three 7-byte DES keys, each encrypting the 8-byte challenge.
fn challenge_response(challenge: &[u8; 8], hash: &NtHash) -> [u8; 24] {
    let mut z = Zeroizing::new([0u8; 21]);
    z[..16].copy_from_slice(&hash.0);
    let mut out = [0u8; 24];
    for (key, block) in z.chunks_exact(7).zip(out.chunks_exact_mut(8)) {
        let k = des_key(key);
        let des = des::Des::new(&(*k).into());
        let mut b = (*challenge).into();
        des.encrypt_block(&mut b);
        block.copy_from_slice(&b);
    }
    out
}

/// `GenerateNTResponse` (RFC 2759 §8.1). `user` is the name without its domain.
pub(crate) fn nt_response(
    auth: &[u8; 16],
    peer: &[u8; 16],
    user: &[u8],
    hash: &NtHash,
) -> [u8; 24] {
    challenge_response(&challenge_hash(peer, auth, user), hash)
}

/// The 39-byte Magic1 of `GenerateAuthenticatorResponse` (RFC 2759 §8.7).
const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// The 41-byte Magic2 of `GenerateAuthenticatorResponse` (RFC 2759 §8.7).
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// `GenerateAuthenticatorResponse` (RFC 2759 §8.7) as its 20 binary bytes; on the
/// wire they are `S=` and 40 upper-case hex digits.
pub(crate) fn authenticator_response(
    hash: &NtHash,
    nt_response: &[u8; 24],
    peer: &[u8; 16],
    auth: &[u8; 16],
    user: &[u8],
) -> [u8; 20] {
    let hh = hash.hash_hash();
    let digest: Zeroizing<[u8; 20]> = Zeroizing::new(
        Sha1::new()
            .chain_update(hh.as_slice())
            .chain_update(nt_response)
            .chain_update(AUTH_MAGIC1)
            .finalize()
            .into(),
    );
    Sha1::new()
        .chain_update(digest.as_slice())
        .chain_update(challenge_hash(peer, auth, user))
        .chain_update(AUTH_MAGIC2)
        .finalize()
        .into()
}

/// `CheckAuthenticatorResponse` (RFC 2759 §8.8), in constant time.
pub(crate) fn check_authenticator_response(expected: &[u8; 20], received: &[u8; 20]) -> bool {
    bool::from(expected.ct_eq(received))
}

/// The 27-byte Magic1 of `GetMasterKey` (RFC 3079 §3.4).
const KEY_MAGIC1: &[u8; 27] = b"This is the MPPE Master Key";
/// Magic2 of `GetAsymmetricStartKey` (RFC 3079 §3.4): the client's send key, the
/// server's receive key.
const KEY_MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// Magic3 of `GetAsymmetricStartKey` (RFC 3079 §3.4): the client's receive key,
/// the server's send key.
const KEY_MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";

/// `GetMasterKey` (RFC 3079 §3.4): the first 16 bytes of
/// SHA-1(PasswordHashHash ‖ NT-Response ‖ Magic1).
pub(crate) fn master_key(hash: &NtHash, nt_response: &[u8; 24]) -> Zeroizing<[u8; 16]> {
    let hh = hash.hash_hash();
    let d: Zeroizing<[u8; 20]> = Zeroizing::new(
        Sha1::new()
            .chain_update(hh.as_slice())
            .chain_update(nt_response)
            .chain_update(KEY_MAGIC1)
            .finalize()
            .into(),
    );
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&d[..16]);
    out
}

/// `GetAsymmetricStartKey` (RFC 3079 §3.4) for a 16-byte (128-bit) key: the first
/// 16 bytes of SHA-1(MasterKey ‖ SHSpad1 ‖ Magic ‖ SHSpad2), SHSpad1 being 40 zero
/// bytes and SHSpad2 40 bytes of 0xf2; Magic2 for the client's send key and the
/// server's receive key, Magic3 for the other two.
pub(crate) fn asymmetric_start_key(
    master: &[u8; 16],
    is_send: bool,
    is_server: bool,
) -> Zeroizing<[u8; 16]> {
    let magic = if is_send != is_server {
        KEY_MAGIC2
    } else {
        KEY_MAGIC3
    };
    let d: Zeroizing<[u8; 20]> = Zeroizing::new(
        Sha1::new()
            .chain_update(master)
            .chain_update([0u8; 40])
            .chain_update(magic)
            .chain_update([0xf2u8; 40])
            .finalize()
            .into(),
    );
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&d[..16]);
    out
}

/// Length of the MSK (RFC 3748 §7.10 asks for at least 64 bytes).
pub(crate) const MSK_LEN: usize = 64;

/// The MSK as strongSwan's eap-mschapv2 plugin makes it (the module docs give the
/// layout): the server's receive key (= the client's send key, Magic2), the
/// server's send key (= the client's receive key, Magic3), 32 zero bytes. Both
/// sides compute the same bytes.
pub(crate) fn msk(hash: &NtHash, nt_response: &[u8; 24]) -> SecretBytes {
    let master = master_key(hash, nt_response);
    let mut msk = SecretBytes::zeroed(MSK_LEN);
    let m = msk.expose_mut();
    m[..16].copy_from_slice(&*asymmetric_start_key(&master, false, true));
    m[16..32].copy_from_slice(&*asymmetric_start_key(&master, true, true));
    msk
}
