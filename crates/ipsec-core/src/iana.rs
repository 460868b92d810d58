//! The IKEv2 transform registries (RFC 7296 §3.3.2, IANA "Internet Key Exchange
//! Version 2 (IKEv2) Parameters") as open newtypes.
//!
//! Each registry has private-use ranges and grows over time, so these are newtypes with
//! associated constants rather than enums: every value on the wire is representable and
//! `Debug` prints the name where one is known, the number otherwise.

/// Defines an open IANA registry as a newtype with associated constants (RFC-named
/// values), a `name()` lookup, a `Debug`/`Display` that prints the name or
/// `Type(number)`, `Default` (0) and `From` the integer. Registries with
/// private-use ranges grow over time, so every wire value must stay representable:
/// newtypes, not enums (docs/style.md §2). Used here and in `ipsec-ike-wire`.
///
/// ```
/// ipsec_core::registry! {
///     /// A registry.
///     Color(u8) {
///         /// Red.
///         RED = 1,
///     }
/// }
/// assert_eq!(format!("{:?} {:?}", Color::RED, Color(9)), "RED Color(9)");
/// assert_eq!(Color::from(1).name(), Some("RED"));
/// ```
#[macro_export]
macro_rules! registry {
    ($(#[$m:meta])* $name:ident($int:ty) { $($(#[$cm:meta])* $c:ident = $v:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $int);

        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*

            /// The registry name of this value, if known.
            pub const fn name(self) -> ::core::option::Option<&'static str> {
                match self.0 {
                    $($v => ::core::option::Option::Some(stringify!($c)),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    ::core::option::Option::Some(n) => f.write_str(n),
                    ::core::option::Option::None => {
                        ::core::write!(f, "{}({})", stringify!($name), self.0)
                    }
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(self, f)
            }
        }

        impl ::core::convert::From<$int> for $name {
            fn from(v: $int) -> Self {
                $name(v)
            }
        }
    };
}

registry! {
    /// Transform Type (RFC 7296 §3.3.2).
    TransformType(u8) {
        /// Encryption algorithm.
        ENCR = 1,
        /// Pseudo-random function.
        PRF = 2,
        /// Integrity algorithm.
        INTEG = 3,
        /// Key exchange method (formerly Diffie-Hellman group).
        KE = 4,
        /// Extended sequence numbers.
        ESN = 5,
        /// Additional key exchange 1 (RFC 9370 §2.2.1).
        ADDKE1 = 6,
        /// Additional key exchange 2 (RFC 9370).
        ADDKE2 = 7,
        /// Additional key exchange 3 (RFC 9370).
        ADDKE3 = 8,
        /// Additional key exchange 4 (RFC 9370).
        ADDKE4 = 9,
        /// Additional key exchange 5 (RFC 9370).
        ADDKE5 = 10,
        /// Additional key exchange 6 (RFC 9370).
        ADDKE6 = 11,
        /// Additional key exchange 7 (RFC 9370).
        ADDKE7 = 12,
    }
}

impl TransformType {
    /// The transform type of additional key exchange `n` (1 to 7, RFC 9370 §2.2.1).
    pub const fn addke(n: usize) -> Option<TransformType> {
        if n >= 1 && n <= 7 {
            Some(TransformType(5 + n as u8))
        } else {
            None
        }
    }

    /// For ADDKE1 to ADDKE7, the number of the additional key exchange (1 to 7).
    pub const fn addke_number(self) -> Option<usize> {
        if self.0 >= 6 && self.0 <= 12 {
            Some(self.0 as usize - 5)
        } else {
            None
        }
    }
}

registry! {
    /// Transform Type 1: encryption algorithm transform IDs.
    EncrId(u16) {
        /// Triple DES (RFC 2451); never offered here.
        ENCR_3DES = 3,
        /// NULL encryption (RFC 2410).
        ENCR_NULL = 11,
        /// AES-CBC (RFC 3602).
        ENCR_AES_CBC = 12,
        /// AES-CTR (RFC 3686).
        ENCR_AES_CTR = 13,
        /// AES-CCM with an 8-octet ICV (RFC 4309).
        ENCR_AES_CCM_8 = 14,
        /// AES-CCM with a 12-octet ICV (RFC 4309).
        ENCR_AES_CCM_12 = 15,
        /// AES-CCM with a 16-octet ICV (RFC 4309).
        ENCR_AES_CCM_16 = 16,
        /// AES-GCM with an 8-octet ICV (RFC 4106).
        ENCR_AES_GCM_8 = 18,
        /// AES-GCM with a 12-octet ICV (RFC 4106).
        ENCR_AES_GCM_12 = 19,
        /// AES-GCM with a 16-octet ICV (RFC 4106).
        ENCR_AES_GCM_16 = 20,
        /// AES-GMAC, authentication only (RFC 4543).
        ENCR_NULL_AUTH_AES_GMAC = 21,
        /// ChaCha20-Poly1305 (RFC 7634).
        ENCR_CHACHA20_POLY1305 = 28,
    }
}

registry! {
    /// Transform Type 2: pseudo-random function transform IDs.
    PrfId(u16) {
        /// HMAC-MD5 (RFC 2104); never offered here.
        PRF_HMAC_MD5 = 1,
        /// HMAC-SHA1 (RFC 2104).
        PRF_HMAC_SHA1 = 2,
        /// AES-XCBC-PRF-128 (RFC 4434).
        PRF_AES128_XCBC = 4,
        /// HMAC-SHA-256 (RFC 4868).
        PRF_HMAC_SHA2_256 = 5,
        /// HMAC-SHA-384 (RFC 4868).
        PRF_HMAC_SHA2_384 = 6,
        /// HMAC-SHA-512 (RFC 4868).
        PRF_HMAC_SHA2_512 = 7,
        /// AES-CMAC-PRF-128 (RFC 4615).
        PRF_AES128_CMAC = 8,
    }
}

registry! {
    /// Transform Type 3: integrity algorithm transform IDs.
    IntegId(u16) {
        /// No integrity (with AEAD ciphers).
        NONE = 0,
        /// HMAC-MD5-96 (RFC 2403); never offered here.
        AUTH_HMAC_MD5_96 = 1,
        /// HMAC-SHA1-96 (RFC 2404).
        AUTH_HMAC_SHA1_96 = 2,
        /// AES-XCBC-MAC-96 (RFC 3566).
        AUTH_AES_XCBC_96 = 5,
        /// AES-128-GMAC (RFC 4543), for AH.
        AUTH_AES_128_GMAC = 9,
        /// AES-192-GMAC (RFC 4543), for AH.
        AUTH_AES_192_GMAC = 10,
        /// AES-256-GMAC (RFC 4543), for AH.
        AUTH_AES_256_GMAC = 11,
        /// HMAC-SHA-256-128 (RFC 4868).
        AUTH_HMAC_SHA2_256_128 = 12,
        /// HMAC-SHA-384-192 (RFC 4868).
        AUTH_HMAC_SHA2_384_192 = 13,
        /// HMAC-SHA-512-256 (RFC 4868).
        AUTH_HMAC_SHA2_512_256 = 14,
    }
}

registry! {
    /// Transform Type 4: key exchange method IDs (Diffie-Hellman groups and KEMs).
    KeId(u16) {
        /// No key exchange (a Child SA without PFS).
        NONE = 0,
        /// 1024-bit MODP group (RFC 2409); never offered here.
        MODP_1024 = 2,
        /// 2048-bit MODP group (RFC 3526).
        MODP_2048 = 14,
        /// 3072-bit MODP group (RFC 3526).
        MODP_3072 = 15,
        /// 4096-bit MODP group (RFC 3526).
        MODP_4096 = 16,
        /// 256-bit random ECP group (RFC 5903).
        ECP_256 = 19,
        /// 384-bit random ECP group (RFC 5903).
        ECP_384 = 20,
        /// 521-bit random ECP group (RFC 5903).
        ECP_521 = 21,
        /// Curve25519 (RFC 8031).
        CURVE25519 = 31,
        /// Curve448 (RFC 8031).
        CURVE448 = 32,
        /// ML-KEM-512 (draft-ietf-ipsecme-ikev2-mlkem).
        ML_KEM_512 = 35,
        /// ML-KEM-768.
        ML_KEM_768 = 36,
        /// ML-KEM-1024.
        ML_KEM_1024 = 37,
    }
}

registry! {
    /// Transform Type 5: extended sequence numbers.
    EsnId(u16) {
        /// 32-bit sequence numbers.
        NO_ESN = 0,
        /// 64-bit extended sequence numbers.
        ESN = 1,
    }
}

/// The Key Length transform attribute type (RFC 7296 §3.3.5), in TV format.
pub const ATTR_KEY_LENGTH: u16 = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_name_or_number() {
        assert_eq!(format!("{:?}", EncrId::ENCR_AES_GCM_16), "ENCR_AES_GCM_16");
        assert_eq!(format!("{:?}", EncrId(1024)), "EncrId(1024)");
        assert_eq!(KeId::CURVE25519.0, 31);
        assert_eq!(IntegId::AUTH_HMAC_SHA2_256_128.0, 12);
        assert_eq!(PrfId::PRF_HMAC_SHA2_256.0, 5);
    }
}
