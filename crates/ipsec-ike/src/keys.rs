//! Key material: the IKE SA keys (RFC 7296 §2.14, §2.18), PSK authentication (§2.15),
//! Child SA keys (§2.17) and NAT detection hashes (§2.23).

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ipsec_core::{IkeSpi, KeyMaterial};
use ipsec_crypto::kdf::{self, IkeKeyLengths};
use ipsec_crypto::{CryptoError, CryptoProvider, PrfAlgorithm, SecretBytes};
use ipsec_ike_wire::SkKeys;

use crate::error::Error;
use crate::event::{Event, IkeSaKeys, SaHandle};
use crate::proposal::Chosen;
use crate::shared::Shared;

/// The keys of one IKE SA.
pub(crate) struct IkeCrypto {
    pub chosen: Chosen,
    pub prf: &'static dyn PrfAlgorithm,
    pub sk_d: SecretBytes,
    pub sk_pi: SecretBytes,
    pub sk_pr: SecretBytes,
    /// The raw SK_ei, SK_er, SK_ai, SK_ar that `sk` was keyed with, kept for
    /// [`IkeEndpoint::export_ike_sa`](crate::IkeEndpoint::export_ike_sa) (zeroized on
    /// drop).
    pub raw: RawSk,
    pub sk: SkKeys,
    /// The SK_e/SK_a keys for [`Event::IkeSaKeysDerived`]
    /// until [`IkeCrypto::export_keys`] takes them; `None` unless
    /// `Config::export_ike_keys` is set.
    pub exported: Option<IkeSaKeys>,
}

impl core::fmt::Debug for IkeCrypto {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeCrypto")
            .field("chosen", &self.chosen)
            .finish_non_exhaustive()
    }
}

/// The raw SK_e and SK_a keys of both directions (RFC 7296 §2.14).
pub(crate) struct RawSk {
    pub sk_ei: SecretBytes,
    pub sk_er: SecretBytes,
    pub sk_ai: SecretBytes,
    pub sk_ar: SecretBytes,
}

/// Builds the SK protection of `chosen` from raw keys: one AEAD, or a cipher and an
/// integrity transform, per direction. The same code for derived keys and for keys
/// taken from a snapshot ([`IkeEndpoint::import_ike_sa`](crate::IkeEndpoint::import_ike_sa)).
pub(crate) fn sk_keys(
    provider: &CryptoProvider,
    chosen: &Chosen,
    raw: &RawSk,
) -> Result<SkKeys, Error> {
    Ok(if chosen.encr.is_combined() {
        let aead = provider
            .aead_for(chosen.encr)
            .ok_or(CryptoError::Unsupported)?;
        SkKeys::aead(aead, raw.sk_ei.expose(), raw.sk_er.expose())?
    } else {
        let cipher = provider
            .cipher(chosen.encr.id, chosen.encr.key_len())
            .ok_or(CryptoError::Unsupported)?;
        let integ = chosen
            .integ
            .and_then(|i| provider.integ(i.id))
            .ok_or(CryptoError::Unsupported)?;
        SkKeys::cipher_integ(
            cipher,
            integ,
            raw.sk_ei.expose(),
            raw.sk_ai.expose(),
            raw.sk_er.expose(),
            raw.sk_ar.expose(),
        )?
    })
}

impl IkeCrypto {
    /// Queues [`Event::IkeSaKeysDerived`] for `h` if these keys are kept for export
    /// (`Config::export_ike_keys`).
    pub(crate) fn export_keys(&mut self, cx: &mut Shared, h: SaHandle) {
        if let Some(keys) = self.exported.take() {
            cx.event(h, Event::IkeSaKeysDerived { keys });
        }
    }

    /// Derives the seven keys from SKEYSEED and builds the SK protection; keeps
    /// SK_e and SK_a for export when the configuration asks for it.
    pub(crate) fn derive(
        cx: &Shared,
        chosen: Chosen,
        skeyseed: &SecretBytes,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<IkeCrypto, Error> {
        let provider: &CryptoProvider = cx.provider;
        let prf_desc = chosen.prf.ok_or(CryptoError::Unsupported)?;
        let prf = provider.prf(prf_desc.id).ok_or(CryptoError::Unsupported)?;
        let lens = IkeKeyLengths {
            prf_key: prf.key_len(),
            integ_key: chosen.integ.map_or(0, |i| i.key_len),
            encr_key: chosen.encr.keymat_len(),
        };
        let k = kdf::ike_keys(prf, skeyseed.expose(), ni, nr, &spi_i.0, &spi_r.0, lens)?;
        let raw = RawSk {
            sk_ei: k.sk_ei,
            sk_er: k.sk_er,
            sk_ai: k.sk_ai,
            sk_ar: k.sk_ar,
        };
        let sk = sk_keys(provider, &chosen, &raw)?;
        let exported = cx.config.export_ike_keys.then(|| IkeSaKeys {
            spi_i,
            spi_r,
            encr: chosen.encr,
            integ: chosen.integ,
            prf: prf_desc,
            sk_ei: raw.sk_ei.duplicate(),
            sk_er: raw.sk_er.duplicate(),
            sk_ai: raw.sk_ai.duplicate(),
            sk_ar: raw.sk_ar.duplicate(),
        });
        Ok(IkeCrypto {
            chosen,
            prf,
            sk_d: k.sk_d,
            sk_pi: k.sk_pi,
            sk_pr: k.sk_pr,
            raw,
            sk,
            exported,
        })
    }
}

/// `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)` with
/// `SignedOctets = RealMessage | NonceData | prf(SK_p, RestOfIDPayload) [| IntAuth]`
/// (§2.15; `int_auth` after IKE_INTERMEDIATE exchanges, RFC 9242 §3.3.2, else empty).
pub(crate) fn psk_auth(
    prf: &dyn PrfAlgorithm,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    int_auth: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let maced_id = kdf::prf(prf, sk_p, &[id_body])?;
    let key = kdf::prf(prf, psk, &[b"Key Pad for IKEv2"])?;
    kdf::prf(
        prf,
        key.expose(),
        &[real_message, peer_nonce, maced_id.expose(), int_auth],
    )
}

/// `SignedOctets = RealMessage | NonceData | prf(SK_p, RestOfIDPayload) [| IntAuth]`
/// (§2.15, RFC 9242 §3.3.2), what a method-14 signature signs (RFC 7427 §3).
pub(crate) fn signed_octets(
    prf: &dyn PrfAlgorithm,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    int_auth: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let maced_id = kdf::prf(prf, sk_p, &[id_body])?;
    let mut v =
        Vec::with_capacity(real_message.len() + peer_nonce.len() + maced_id.len() + int_auth.len());
    v.extend_from_slice(real_message);
    v.extend_from_slice(peer_nonce);
    v.extend_from_slice(maced_id.expose());
    v.extend_from_slice(int_auth);
    Ok(v)
}

/// Completes our key exchange `kx` with the KE payload of the peer's answer `m`
/// (IKE_INTERMEDIATE, IKE_FOLLOWUP_KE): it must be for the same method; an answer
/// without one is the error notification it carries, or a missing payload.
pub(crate) fn complete_with_answer(
    kx: alloc::boxed::Box<dyn ipsec_crypto::ActiveKx>,
    m: &crate::msg::InMsg,
) -> Result<ipsec_crypto::SharedSecret, Error> {
    use crate::error::PeerMisbehaved;
    let Some((group, ke)) = &m.ke else {
        return Err(match m.error_notify() {
            Some(n) => Error::NotifyReceived(n),
            None => PeerMisbehaved::MissingPayload("KE").into(),
        });
    };
    if *group != kx.group() {
        return Err(PeerMisbehaved::BadKeyExchange.into());
    }
    kx.complete(ke)
        .map_err(|_| PeerMisbehaved::BadKeyExchange.into())
}

/// `prf+(PPK, key)` cut to the key's length (RFC 8784 §3): SK_d', SK_pi', SK_pr'.
pub(crate) fn ppk_key(
    prf: &dyn PrfAlgorithm,
    ppk: &[u8],
    key: &[u8],
) -> Result<SecretBytes, CryptoError> {
    kdf::prf_plus(prf, ppk, &[key], key.len())
}

impl IkeCrypto {
    /// Replaces SK_d, SK_pi and SK_pr by their PPK-mixed versions (RFC 8784 §3).
    pub(crate) fn apply_ppk(&mut self, ppk: &[u8]) -> Result<(), CryptoError> {
        self.sk_d = ppk_key(self.prf, ppk, self.sk_d.expose())?;
        self.sk_pi = ppk_key(self.prf, ppk, self.sk_pi.expose())?;
        self.sk_pr = ppk_key(self.prf, ppk, self.sk_pr.expose())?;
        Ok(())
    }
}

/// The keys of one Child SA, per direction, cut from KEYMAT (§2.17).
pub(crate) struct ChildKeys {
    /// Initiator to responder.
    pub i_to_r: KeyMaterial,
    /// Responder to initiator.
    pub r_to_i: KeyMaterial,
}

/// `KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`, split into both directions.
pub(crate) fn child_keys(
    prf: &dyn PrfAlgorithm,
    sk_d: &[u8],
    chosen: &Chosen,
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    extra: &[u8],
) -> Result<ChildKeys, Error> {
    let encr_len = chosen.encr.keymat_len();
    let integ_len = chosen.integ.map_or(0, |i| i.key_len);
    let total = encr_len
        .checked_add(integ_len)
        .and_then(|n| n.checked_mul(2))
        .ok_or(CryptoError::Unsupported)?;
    let keymat = if extra.is_empty() {
        kdf::child_keymat(prf, sk_d, g_ir, ni, nr, total)?
    } else {
        // RFC 9370 §2.2.4: `prf+(SK_d, g^ir (new) | Ni | Nr | SK(1) | ... | SK(n))`.
        kdf::prf_plus(prf, sk_d, &[g_ir.unwrap_or(&[]), ni, nr, extra], total)?
    };
    let (a, b) = kdf::split_child_keymat(&keymat, encr_len, integ_len)?;
    let mk = |k: &kdf::ChildDirectionKeys| {
        KeyMaterial::new(k.encr.expose(), k.integ.expose())
            .map_err(|_| Error::Crypto(CryptoError::Unsupported))
    };
    Ok(ChildKeys {
        i_to_r: mk(&a)?,
        r_to_i: mk(&b)?,
    })
}

/// `SHA-1(SPIi | SPIr | IP | Port)` (§2.23), or `None` if the provider has no SHA-1.
pub(crate) fn nat_hash(
    provider: &CryptoProvider,
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    addr: SocketAddr,
) -> Option<[u8; 20]> {
    let port = addr.port().to_be_bytes();
    let r = match addr.ip() {
        IpAddr::V4(a) => provider.sha1(&[&spi_i.0, &spi_r.0, &a.octets(), &port]),
        IpAddr::V6(a) => provider.sha1(&[&spi_i.0, &spi_r.0, &a.octets(), &port]),
    };
    r.ok()
}

/// Random bytes.
pub(crate) fn random(provider: &CryptoProvider, n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut v = alloc::vec![0u8; n];
    provider.secure_random.fill(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answer_and_nat_hash() {
        let p = &ipsec_crypto_rustcrypto::PROVIDER;
        let h = p.sha1(&[b"a", b"bc"]).unwrap();
        assert_eq!(h[..4], [0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(h[16..], [0x9c, 0xd0, 0xd8, 0x9d]);
        let a = nat_hash(
            p,
            IkeSpi([1; 8]),
            IkeSpi::ZERO,
            "192.0.2.1:500".parse().unwrap(),
        )
        .unwrap();
        let b = nat_hash(
            p,
            IkeSpi([1; 8]),
            IkeSpi::ZERO,
            "192.0.2.1:4500".parse().unwrap(),
        )
        .unwrap();
        assert_ne!(a, b);
    }
}
