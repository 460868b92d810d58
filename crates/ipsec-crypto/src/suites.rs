//! Static descriptions of every transform this workspace knows, independent of any
//! backend: IANA ids (RFC 7296 §3.3.2 registries), lengths and proposal tokens.
//!
//! A [`CryptoProvider`](crate::CryptoProvider) says which of them it can run.

use crate::{EncrId, IntegId, KeId, PrfId};

/// How an encryption transform protects data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncrKind {
    /// An AEAD (combined mode): no separate integrity transform.
    Aead,
    /// AES-GMAC (RFC 4543): authentication only, all data goes into the AAD.
    Gmac,
    /// A block cipher with an explicit IV, used with an integrity transform.
    Cbc,
    /// ENCR_NULL (RFC 2410), used with an integrity transform.
    Null,
    /// AES in counter mode (RFC 3686): a stream cipher with an explicit IV and a nonce
    /// taken from the key material (`salt_len`), used with an integrity transform. The
    /// protocol layer builds the counter block nonce ‖ IV ‖ 1 (RFC 3686 §4); the
    /// backend's [`CipherAlgorithm`](crate::CipherAlgorithm) takes it as its IV.
    Ctr,
}

/// An encryption transform.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EncrDesc {
    /// The transform id.
    pub id: EncrId,
    /// Key length in bits (without salt); 0 for NULL.
    pub key_bits: u16,
    /// Whether the Key Length attribute is sent (RFC 7296 §3.3.5: for variable-length
    /// ciphers such as AES, not for ChaCha20-Poly1305).
    pub key_len_attr: bool,
    /// Salt taken from the key material after the key (RFC 4106 §8.1, RFC 7634 §4).
    pub salt_len: usize,
    /// Explicit IV carried in each packet.
    pub iv_len: usize,
    /// ICV length for AEAD and GMAC; 0 where an integrity transform supplies it.
    pub icv_len: usize,
    /// The block size the ciphertext must be a multiple of (1 for stream-like modes).
    pub block_len: usize,
    /// How it protects data.
    pub kind: EncrKind,
    /// The strongSwan-style proposal token.
    pub token: &'static str,
    /// Other tokens accepted when parsing.
    pub aliases: &'static [&'static str],
    /// A human-readable name.
    pub name: &'static str,
    /// The RFC that defines its use in IPsec.
    pub rfc: &'static str,
}

impl EncrDesc {
    /// Key length in bytes, without salt.
    pub const fn key_len(&self) -> usize {
        self.key_bits as usize / 8
    }

    /// Key material per direction: key and salt (RFC 7296 §2.17 order).
    pub const fn keymat_len(&self) -> usize {
        self.key_len() + self.salt_len
    }

    /// True for AEAD and GMAC transforms, which need no integrity transform.
    pub const fn is_combined(&self) -> bool {
        matches!(self.kind, EncrKind::Aead | EncrKind::Gmac)
    }
}

/// An integrity transform.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntegDesc {
    /// The transform id.
    pub id: IntegId,
    /// Key length in bytes.
    pub key_len: usize,
    /// ICV length in bytes.
    pub icv_len: usize,
    /// The PRF with the same hash, which IKE proposals without a PRF token imply.
    pub prf: Option<&'static PrfDesc>,
    /// The proposal token.
    pub token: &'static str,
    /// Other tokens accepted when parsing.
    pub aliases: &'static [&'static str],
    /// A human-readable name.
    pub name: &'static str,
    /// The RFC that defines it.
    pub rfc: &'static str,
}

/// A pseudo-random function transform.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PrfDesc {
    /// The transform id.
    pub id: PrfId,
    /// Output (and preferred key) length in bytes.
    pub output_len: usize,
    /// The proposal token.
    pub token: &'static str,
    /// A human-readable name.
    pub name: &'static str,
    /// The RFC that defines it.
    pub rfc: &'static str,
}

/// A key exchange method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KeDesc {
    /// The method id.
    pub id: KeId,
    /// Length of the initiator's KE payload data in bytes. For a KEM the responder's
    /// differs: see [`KeDesc::response_len`].
    pub public_len: usize,
    /// The proposal token.
    pub token: &'static str,
    /// Other tokens accepted when parsing.
    pub aliases: &'static [&'static str],
    /// A human-readable name.
    pub name: &'static str,
    /// The RFC that defines it.
    pub rfc: &'static str,
}

impl KeDesc {
    /// Length of the responder's KE payload data in bytes: [`KeDesc::public_len`] for a
    /// Diffie-Hellman group, the ciphertext length for ML-KEM ([`crate::mlkem`]).
    pub const fn response_len(&self) -> usize {
        match crate::mlkem::params(self.id) {
            Some(p) => p.ciphertext_len,
            None => self.public_len,
        }
    }

    /// Whether the method is a KEM (ML-KEM), whose two KE payloads differ.
    pub const fn is_kem(&self) -> bool {
        crate::mlkem::params(self.id).is_some()
    }
}

macro_rules! encr {
    ($n:ident, $id:ident, $bits:expr, $attr:expr, $salt:expr, $iv:expr, $icv:expr, $block:expr, $kind:ident, $tok:expr, [$($al:expr),*], $name:expr, $rfc:expr) => {
        #[doc = concat!($name, " (", $rfc, "), token `", $tok, "`.")]
        pub static $n: EncrDesc = EncrDesc {
            id: EncrId::$id, key_bits: $bits, key_len_attr: $attr, salt_len: $salt, iv_len: $iv,
            icv_len: $icv, block_len: $block, kind: EncrKind::$kind, token: $tok,
            aliases: &[$($al),*], name: $name, rfc: $rfc,
        };
    };
}

encr!(
    AES_GCM_16_128,
    ENCR_AES_GCM_16,
    128,
    true,
    4,
    8,
    16,
    1,
    Aead,
    "aes128gcm16",
    ["aes128gcm"],
    "AES-128-GCM-16",
    "RFC 4106, RFC 5282"
);
encr!(
    AES_GCM_16_256,
    ENCR_AES_GCM_16,
    256,
    true,
    4,
    8,
    16,
    1,
    Aead,
    "aes256gcm16",
    ["aes256gcm"],
    "AES-256-GCM-16",
    "RFC 4106, RFC 5282"
);
encr!(
    CHACHA20_POLY1305,
    ENCR_CHACHA20_POLY1305,
    256,
    false,
    4,
    8,
    16,
    1,
    Aead,
    "chacha20poly1305",
    [],
    "ChaCha20-Poly1305",
    "RFC 7634"
);
encr!(
    AES_GMAC_128,
    ENCR_NULL_AUTH_AES_GMAC,
    128,
    true,
    4,
    8,
    16,
    1,
    Gmac,
    "aes128gmac",
    [],
    "AES-128-GMAC (NULL encryption)",
    "RFC 4543"
);
encr!(
    AES_GMAC_256,
    ENCR_NULL_AUTH_AES_GMAC,
    256,
    true,
    4,
    8,
    16,
    1,
    Gmac,
    "aes256gmac",
    [],
    "AES-256-GMAC (NULL encryption)",
    "RFC 4543"
);
encr!(
    AES_CBC_128,
    ENCR_AES_CBC,
    128,
    true,
    0,
    16,
    0,
    16,
    Cbc,
    "aes128",
    [],
    "AES-128-CBC",
    "RFC 3602"
);
encr!(
    AES_CBC_256,
    ENCR_AES_CBC,
    256,
    true,
    0,
    16,
    0,
    16,
    Cbc,
    "aes256",
    [],
    "AES-256-CBC",
    "RFC 3602"
);
encr!(
    NULL,
    ENCR_NULL,
    0,
    false,
    0,
    0,
    0,
    1,
    Null,
    "null",
    [],
    "NULL",
    "RFC 2410"
);

// AES-CTR (RFC 3686; RFC 5930 in IKEv2): 4-byte nonce from the key material, 8-byte IV.
encr!(
    AES_CTR_128,
    ENCR_AES_CTR,
    128,
    true,
    4,
    8,
    0,
    1,
    Ctr,
    "aes128ctr",
    [],
    "AES-128-CTR",
    "RFC 3686, RFC 5930"
);
encr!(
    AES_CTR_192,
    ENCR_AES_CTR,
    192,
    true,
    4,
    8,
    0,
    1,
    Ctr,
    "aes192ctr",
    [],
    "AES-192-CTR",
    "RFC 3686, RFC 5930"
);
encr!(
    AES_CTR_256,
    ENCR_AES_CTR,
    256,
    true,
    4,
    8,
    0,
    1,
    Ctr,
    "aes256ctr",
    [],
    "AES-256-CTR",
    "RFC 3686, RFC 5930"
);

// AES-CCM (RFC 4309; RFC 5282 in IKEv2): 3-byte salt, 8-byte IV, 11-byte nonce; the
// ICV length (8, 12, 16) is in the transform id. `aesXccm` means the 16-byte ICV, and
// strongSwan also spells the ICV length in bits (ccm64, ccm96, ccm128).
encr!(
    AES_CCM_8_128,
    ENCR_AES_CCM_8,
    128,
    true,
    3,
    8,
    8,
    1,
    Aead,
    "aes128ccm8",
    ["aes128ccm64"],
    "AES-128-CCM-8",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_8_192,
    ENCR_AES_CCM_8,
    192,
    true,
    3,
    8,
    8,
    1,
    Aead,
    "aes192ccm8",
    ["aes192ccm64"],
    "AES-192-CCM-8",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_8_256,
    ENCR_AES_CCM_8,
    256,
    true,
    3,
    8,
    8,
    1,
    Aead,
    "aes256ccm8",
    ["aes256ccm64"],
    "AES-256-CCM-8",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_12_128,
    ENCR_AES_CCM_12,
    128,
    true,
    3,
    8,
    12,
    1,
    Aead,
    "aes128ccm12",
    ["aes128ccm96"],
    "AES-128-CCM-12",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_12_192,
    ENCR_AES_CCM_12,
    192,
    true,
    3,
    8,
    12,
    1,
    Aead,
    "aes192ccm12",
    ["aes192ccm96"],
    "AES-192-CCM-12",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_12_256,
    ENCR_AES_CCM_12,
    256,
    true,
    3,
    8,
    12,
    1,
    Aead,
    "aes256ccm12",
    ["aes256ccm96"],
    "AES-256-CCM-12",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_16_128,
    ENCR_AES_CCM_16,
    128,
    true,
    3,
    8,
    16,
    1,
    Aead,
    "aes128ccm16",
    ["aes128ccm128", "aes128ccm"],
    "AES-128-CCM-16",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_16_192,
    ENCR_AES_CCM_16,
    192,
    true,
    3,
    8,
    16,
    1,
    Aead,
    "aes192ccm16",
    ["aes192ccm128", "aes192ccm"],
    "AES-192-CCM-16",
    "RFC 4309, RFC 5282"
);
encr!(
    AES_CCM_16_256,
    ENCR_AES_CCM_16,
    256,
    true,
    3,
    8,
    16,
    1,
    Aead,
    "aes256ccm16",
    ["aes256ccm128", "aes256ccm"],
    "AES-256-CCM-16",
    "RFC 4309, RFC 5282"
);

/// Every encryption transform, in the order `ipsec suites` lists them.
pub static ENCR: &[&EncrDesc] = &[
    &AES_GCM_16_128,
    &AES_GCM_16_256,
    &CHACHA20_POLY1305,
    &AES_CBC_128,
    &AES_CBC_256,
    &AES_GMAC_128,
    &AES_GMAC_256,
    &NULL,
    &AES_CTR_128,
    &AES_CTR_192,
    &AES_CTR_256,
    &AES_CCM_16_128,
    &AES_CCM_16_192,
    &AES_CCM_16_256,
    &AES_CCM_12_128,
    &AES_CCM_12_192,
    &AES_CCM_12_256,
    &AES_CCM_8_128,
    &AES_CCM_8_192,
    &AES_CCM_8_256,
];

/// PRF_HMAC_SHA1 (RFC 2104), token `prfsha1`.
pub static PRF_SHA1: PrfDesc = PrfDesc {
    id: PrfId::PRF_HMAC_SHA1,
    output_len: 20,
    token: "prfsha1",
    name: "PRF-HMAC-SHA1",
    rfc: "RFC 2104",
};
/// PRF_HMAC_SHA2_256 (RFC 4868), token `prfsha256`.
pub static PRF_SHA256: PrfDesc = PrfDesc {
    id: PrfId::PRF_HMAC_SHA2_256,
    output_len: 32,
    token: "prfsha256",
    name: "PRF-HMAC-SHA2-256",
    rfc: "RFC 4868",
};
/// PRF_HMAC_SHA2_384 (RFC 4868), token `prfsha384`.
pub static PRF_SHA384: PrfDesc = PrfDesc {
    id: PrfId::PRF_HMAC_SHA2_384,
    output_len: 48,
    token: "prfsha384",
    name: "PRF-HMAC-SHA2-384",
    rfc: "RFC 4868",
};
/// PRF_HMAC_SHA2_512 (RFC 4868), token `prfsha512`.
pub static PRF_SHA512: PrfDesc = PrfDesc {
    id: PrfId::PRF_HMAC_SHA2_512,
    output_len: 64,
    token: "prfsha512",
    name: "PRF-HMAC-SHA2-512",
    rfc: "RFC 4868",
};

/// Every PRF.
pub static PRF: &[&PrfDesc] = &[&PRF_SHA256, &PRF_SHA384, &PRF_SHA512, &PRF_SHA1];

/// AUTH_HMAC_SHA1_96 (RFC 2404), token `sha1`.
pub static HMAC_SHA1_96: IntegDesc = IntegDesc {
    id: IntegId::AUTH_HMAC_SHA1_96,
    key_len: 20,
    icv_len: 12,
    prf: Some(&PRF_SHA1),
    token: "sha1",
    aliases: &["sha"],
    name: "HMAC-SHA1-96",
    rfc: "RFC 2404",
};
/// AUTH_HMAC_SHA2_256_128 (RFC 4868), token `sha256`.
pub static HMAC_SHA256_128: IntegDesc = IntegDesc {
    id: IntegId::AUTH_HMAC_SHA2_256_128,
    key_len: 32,
    icv_len: 16,
    prf: Some(&PRF_SHA256),
    token: "sha256",
    aliases: &["sha2_256"],
    name: "HMAC-SHA2-256-128",
    rfc: "RFC 4868",
};
/// AUTH_HMAC_SHA2_384_192 (RFC 4868), token `sha384`.
pub static HMAC_SHA384_192: IntegDesc = IntegDesc {
    id: IntegId::AUTH_HMAC_SHA2_384_192,
    key_len: 48,
    icv_len: 24,
    prf: Some(&PRF_SHA384),
    token: "sha384",
    aliases: &["sha2_384"],
    name: "HMAC-SHA2-384-192",
    rfc: "RFC 4868",
};
/// AUTH_HMAC_SHA2_512_256 (RFC 4868), token `sha512`.
pub static HMAC_SHA512_256: IntegDesc = IntegDesc {
    id: IntegId::AUTH_HMAC_SHA2_512_256,
    key_len: 64,
    icv_len: 32,
    prf: Some(&PRF_SHA512),
    token: "sha512",
    aliases: &["sha2_512"],
    name: "HMAC-SHA2-512-256",
    rfc: "RFC 4868",
};

/// Every integrity transform.
pub static INTEG: &[&IntegDesc] = &[
    &HMAC_SHA256_128,
    &HMAC_SHA384_192,
    &HMAC_SHA512_256,
    &HMAC_SHA1_96,
];

/// Curve25519 (RFC 8031), token `x25519`.
pub static X25519: KeDesc = KeDesc {
    id: KeId::CURVE25519,
    public_len: 32,
    token: "x25519",
    aliases: &["curve25519"],
    name: "Curve25519",
    rfc: "RFC 8031",
};
/// 256-bit random ECP group (RFC 5903), token `ecp256`.
pub static ECP256: KeDesc = KeDesc {
    id: KeId::ECP_256,
    public_len: 64,
    token: "ecp256",
    aliases: &[],
    name: "NIST P-256",
    rfc: "RFC 5903",
};
/// 384-bit random ECP group (RFC 5903), token `ecp384`.
pub static ECP384: KeDesc = KeDesc {
    id: KeId::ECP_384,
    public_len: 96,
    token: "ecp384",
    aliases: &[],
    name: "NIST P-384",
    rfc: "RFC 5903",
};
/// 2048-bit MODP group (RFC 3526), token `modp2048`.
pub static MODP2048: KeDesc = KeDesc {
    id: KeId::MODP_2048,
    public_len: 256,
    token: "modp2048",
    aliases: &[],
    name: "MODP-2048",
    rfc: "RFC 3526",
};
/// 3072-bit MODP group (RFC 3526), token `modp3072`.
pub static MODP3072: KeDesc = KeDesc {
    id: KeId::MODP_3072,
    public_len: 384,
    token: "modp3072",
    aliases: &[],
    name: "MODP-3072",
    rfc: "RFC 3526",
};

/// 521-bit random ECP group (RFC 5903), token `ecp521`.
pub static ECP521: KeDesc = KeDesc {
    id: KeId::ECP_521,
    public_len: 132,
    token: "ecp521",
    aliases: &[],
    name: "NIST P-521",
    rfc: "RFC 5903",
};
/// Curve448 (RFC 8031), token `x448` (strongSwan also says `curve448`).
pub static X448: KeDesc = KeDesc {
    id: KeId::CURVE448,
    public_len: 56,
    token: "x448",
    aliases: &["curve448"],
    name: "Curve448",
    rfc: "RFC 8031",
};
/// 4096-bit MODP group (RFC 3526), token `modp4096`.
pub static MODP4096: KeDesc = KeDesc {
    id: KeId::MODP_4096,
    public_len: 512,
    token: "modp4096",
    aliases: &[],
    name: "MODP-4096",
    rfc: "RFC 3526",
};
/// ML-KEM-512 (FIPS 203; draft-ietf-ipsecme-ikev2-mlkem), token `mlkem512`. The
/// initiator sends the encapsulation key, the responder the ciphertext
/// ([`KeDesc::response_len`]).
pub static ML_KEM_512: KeDesc = KeDesc {
    id: KeId::ML_KEM_512,
    public_len: crate::mlkem::ML_KEM_512.ek_len,
    token: "mlkem512",
    aliases: &[],
    name: "ML-KEM-512",
    rfc: "FIPS 203, draft-ietf-ipsecme-ikev2-mlkem",
};
/// ML-KEM-768 (FIPS 203; draft-ietf-ipsecme-ikev2-mlkem), token `mlkem768`.
pub static ML_KEM_768: KeDesc = KeDesc {
    id: KeId::ML_KEM_768,
    public_len: crate::mlkem::ML_KEM_768.ek_len,
    token: "mlkem768",
    aliases: &[],
    name: "ML-KEM-768",
    rfc: "FIPS 203, draft-ietf-ipsecme-ikev2-mlkem",
};
/// ML-KEM-1024 (FIPS 203; draft-ietf-ipsecme-ikev2-mlkem), token `mlkem1024`.
pub static ML_KEM_1024: KeDesc = KeDesc {
    id: KeId::ML_KEM_1024,
    public_len: crate::mlkem::ML_KEM_1024.ek_len,
    token: "mlkem1024",
    aliases: &[],
    name: "ML-KEM-1024",
    rfc: "FIPS 203, draft-ietf-ipsecme-ikev2-mlkem",
};

/// Every key exchange method.
pub static KE: &[&KeDesc] = &[
    &X25519,
    &ECP256,
    &ECP384,
    &MODP2048,
    &MODP3072,
    &ECP521,
    &X448,
    &MODP4096,
    &ML_KEM_512,
    &ML_KEM_768,
    &ML_KEM_1024,
];

/// Finds an encryption transform by id and key length in bits.
pub fn encr(id: EncrId, key_bits: u16) -> Option<&'static EncrDesc> {
    ENCR.iter()
        .copied()
        .find(|d| d.id == id && (d.key_bits == key_bits || !d.key_len_attr))
}

/// Finds an integrity transform by id.
pub fn integ(id: IntegId) -> Option<&'static IntegDesc> {
    INTEG.iter().copied().find(|d| d.id == id)
}

/// Finds a PRF by id.
pub fn prf(id: PrfId) -> Option<&'static PrfDesc> {
    PRF.iter().copied().find(|d| d.id == id)
}

/// Finds a key exchange method by id.
pub fn ke(id: KeId) -> Option<&'static KeDesc> {
    KE.iter().copied().find(|d| d.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            encr(EncrId::ENCR_AES_GCM_16, 256).unwrap().token,
            "aes256gcm16"
        );
        assert_eq!(
            encr(EncrId::ENCR_CHACHA20_POLY1305, 0)
                .unwrap()
                .keymat_len(),
            36
        );
        assert!(encr(EncrId::ENCR_AES_GCM_16, 192).is_none());
        assert_eq!(integ(IntegId::AUTH_HMAC_SHA2_384_192).unwrap().icv_len, 24);
        assert_eq!(prf(PrfId::PRF_HMAC_SHA2_512).unwrap().output_len, 64);
        assert_eq!(ke(KeId::ECP_384).unwrap().public_len, 96);
        assert_eq!(ke(KeId::ECP_384).unwrap().response_len(), 96);
        assert!(!X25519.is_kem());
        // draft-ietf-ipsecme-ikev2-mlkem §2: the KE payloads carry ek and c.
        for (id, ek, c) in [
            (KeId::ML_KEM_512, 800, 768),
            (KeId::ML_KEM_768, 1184, 1088),
            (KeId::ML_KEM_1024, 1568, 1568),
        ] {
            let d = ke(id).unwrap();
            assert_eq!((d.public_len, d.response_len()), (ek, c), "{}", d.name);
            assert!(d.is_kem());
        }
        assert_eq!(AES_CBC_128.keymat_len(), 16);
        assert_eq!(AES_GCM_16_128.keymat_len(), 20);
    }

    #[test]
    fn ctr_ccm_and_new_groups() {
        // RFC 3686 §5.1 / RFC 5930 §4: key and a 4-byte nonce.
        let ctr = encr(EncrId::ENCR_AES_CTR, 192).unwrap();
        assert_eq!(
            (ctr.keymat_len(), ctr.iv_len, ctr.kind),
            (28, 8, EncrKind::Ctr)
        );
        assert!(!ctr.is_combined());
        // RFC 4309 §7.1: key and a 3-byte salt; the ICV length is in the id.
        for (id, icv) in [
            (EncrId::ENCR_AES_CCM_8, 8),
            (EncrId::ENCR_AES_CCM_12, 12),
            (EncrId::ENCR_AES_CCM_16, 16),
        ] {
            for bits in [128, 192, 256] {
                let d = encr(id, bits).unwrap();
                assert_eq!(d.icv_len, icv);
                assert_eq!(d.keymat_len(), usize::from(bits) / 8 + 3);
                assert!(d.is_combined());
            }
        }
        assert_eq!(ke(KeId::ECP_521).unwrap().public_len, 132);
        assert_eq!(ke(KeId::CURVE448).unwrap().public_len, 56);
        assert_eq!(ke(KeId::MODP_4096).unwrap().public_len, 512);
        // Every token and alias names one transform.
        let mut seen = alloc::vec::Vec::new();
        for d in ENCR {
            for t in core::iter::once(&d.token).chain(d.aliases) {
                assert!(!seen.contains(t), "{t}");
                seen.push(*t);
            }
        }
    }
}
