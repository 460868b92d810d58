//! EAP in IKE_AUTH (RFC 7296 §2.16): the EAP packet (RFC 3748 §4), the traits an
//! EAP method implements on each side, and EAP-Identity (RFC 3748 §5.1), which the
//! IKE state machines run themselves.
//!
//! An initiator that authenticates with EAP ([`LocalAuth::Eap`](crate::LocalAuth::Eap))
//! leaves AUTH out of its first IKE_AUTH request; the responder proves itself with
//! its AUTH (a certificate signature, normally) and starts the EAP conversation
//! ([`PeerAuth::Eap`](crate::PeerAuth::Eap)). One IKE_AUTH exchange carries each
//! EAP round trip; after EAP-Success both sides send an AUTH computed with the
//! method's MSK as the shared secret (or SK_pi / SK_pr for a method without one).
//!
//! Methods plug in through [`EapServerMethod`] (made per peer by an
//! [`EapAuthenticator`]) and [`EapPeerMethod`] (made per request by an [`EapPeer`]),
//! so EAP-TLS or forwarding to a RADIUS server can follow without touching the IKE
//! code.

#[cfg(feature = "eap-mschapv2")]
pub mod mschapv2;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ipsec_crypto::{SecretBytes, SecureRandom};

/// An EAP Code (RFC 3748 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EapCode(pub u8);

impl EapCode {
    /// Request (the authenticator asks).
    pub const REQUEST: EapCode = EapCode(1);
    /// Response (the peer answers).
    pub const RESPONSE: EapCode = EapCode(2);
    /// Success.
    pub const SUCCESS: EapCode = EapCode(3);
    /// Failure.
    pub const FAILURE: EapCode = EapCode(4);
}

/// An EAP method type (RFC 3748 §5; the IANA "Method Types" registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EapType(pub u8);

impl EapType {
    /// Identity (RFC 3748 §5.1).
    pub const IDENTITY: EapType = EapType(1);
    /// Notification (RFC 3748 §5.2).
    pub const NOTIFICATION: EapType = EapType(2);
    /// Legacy Nak (RFC 3748 §5.3.1): the method asked for is not available.
    pub const NAK: EapType = EapType(3);
    /// MD5-Challenge (RFC 3748 §5.4).
    pub const MD5: EapType = EapType(4);
    /// EAP-TLS (RFC 5216).
    pub const TLS: EapType = EapType(13);
    /// EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2).
    pub const MSCHAPV2: EapType = EapType(26);
    /// Expanded types (RFC 3748 §5.7).
    pub const EXPANDED: EapType = EapType(254);
}

/// Why an EAP packet or a method's message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EapError {
    /// Shorter than its header, or than its Length field says.
    #[error("EAP packet truncated")]
    Truncated,
    /// A Length field that disagrees with the bytes that carry it.
    #[error("EAP length field disagrees with the packet")]
    BadLength,
    /// A code this side does not expect here.
    #[error("unexpected EAP code {0}")]
    UnexpectedCode(u8),
    /// A method message that does not parse or does not belong in this state.
    #[error("malformed or unexpected EAP method message")]
    Malformed,
    /// The method asked for is one we do not run.
    #[error("EAP method {0} not supported")]
    UnsupportedMethod(u8),
    /// The other side's proof did not check (a wrong password, a forged
    /// authenticator response).
    #[error("EAP authentication failed")]
    AuthenticationFailed,
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// An EAP packet (RFC 3748 §4): Request and Response carry a type and its data,
/// Success and Failure neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EapPacket<'a> {
    /// Request, Response, Success or Failure.
    pub code: EapCode,
    /// Matches a Response to its Request.
    pub identifier: u8,
    /// The method type (Request and Response only).
    pub ty: Option<EapType>,
    /// The type data (Request and Response only; empty otherwise).
    pub data: &'a [u8],
}

impl<'a> EapPacket<'a> {
    /// Parses an EAP packet. Bytes after the Length field's end are ignored (RFC 3748
    /// §4.1 calls them padding).
    ///
    /// # Errors
    /// [`EapError::Truncated`], [`EapError::BadLength`], or
    /// [`EapError::UnexpectedCode`] for a code outside 1..=4.
    pub fn parse(b: &'a [u8]) -> Result<Self, EapError> {
        let [code, identifier, l0, l1, ..] = *b else {
            return Err(EapError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len < 4 {
            return Err(EapError::BadLength);
        }
        let b = b.get(..len).ok_or(EapError::Truncated)?;
        let code = EapCode(code);
        match code {
            EapCode::REQUEST | EapCode::RESPONSE => {
                let (&ty, data) = b[4..].split_first().ok_or(EapError::BadLength)?;
                Ok(EapPacket {
                    code,
                    identifier,
                    ty: Some(EapType(ty)),
                    data,
                })
            }
            EapCode::SUCCESS | EapCode::FAILURE => {
                if len != 4 {
                    return Err(EapError::BadLength);
                }
                Ok(EapPacket {
                    code,
                    identifier,
                    ty: None,
                    data: &[],
                })
            }
            EapCode(c) => Err(EapError::UnexpectedCode(c)),
        }
    }

    /// The packet's bytes.
    ///
    /// # Errors
    /// [`EapError::BadLength`] when it would exceed 65535 bytes.
    pub fn to_vec(&self) -> Result<Vec<u8>, EapError> {
        let mut v = Vec::with_capacity(5 + self.data.len());
        v.extend_from_slice(&[self.code.0, self.identifier, 0, 0]);
        if let Some(t) = self.ty {
            v.push(t.0);
            v.extend_from_slice(self.data);
        }
        let len = u16::try_from(v.len()).map_err(|_| EapError::BadLength)?;
        v[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(v)
    }
}

/// What the authenticator does after a peer's Response.
#[derive(Debug)]
#[non_exhaustive]
pub enum EapVerdict {
    /// Send another Request with this type data.
    Request(Vec<u8>),
    /// The peer is authenticated: send EAP-Success.
    Success,
    /// The peer is refused: send EAP-Failure.
    Failure,
}

/// The authenticator (server) side of one run of one EAP method, for one peer.
pub trait EapServerMethod: Send {
    /// The method's type.
    fn method(&self) -> EapType;

    /// The type data of the first Request.
    ///
    /// # Errors
    /// [`EapError::Random`] when the method needs randomness and the source fails.
    fn initiate(&mut self, rng: &dyn SecureRandom) -> Result<Vec<u8>, EapError>;

    /// Takes the type data of the peer's Response to the last Request.
    fn process(&mut self, rng: &dyn SecureRandom, data: &[u8]) -> EapVerdict;

    /// The Master Session Key (RFC 3748 §7.10) after [`EapVerdict::Success`], for a
    /// method that makes one.
    fn msk(&self) -> Option<SecretBytes>;
}

/// Starts EAP conversations on a responder: installed with
/// [`PeerAuth::Eap`](crate::PeerAuth::Eap), it picks the method and credentials for
/// the identity the peer gave (its EAP-Identity Response, or its IDi when
/// EAP-Identity is not asked for).
pub trait EapAuthenticator: Send + Sync {
    /// The method to run with the peer named `identity`. `None` refuses it at once
    /// with EAP-Failure; an authenticator that does not want to reveal which
    /// identities exist runs the method with a credential that cannot match instead.
    fn start(&self, identity: &[u8]) -> Option<Box<dyn EapServerMethod>>;
}

/// The peer (client) side of one run of one EAP method.
pub trait EapPeerMethod: Send {
    /// The method's type.
    fn method(&self) -> EapType;

    /// Takes the type data of a Request and returns the type data of the Response.
    ///
    /// # Errors
    /// [`EapError::AuthenticationFailed`] when the authenticator's proof does not
    /// check (the IKE SA then closes); [`EapError::Malformed`] for a message that
    /// does not belong.
    fn process(&mut self, rng: &dyn SecureRandom, data: &[u8]) -> Result<Vec<u8>, EapError>;

    /// Whether the method ran to a successful end on our side (for a method with
    /// mutual authentication, the authenticator's proof checked). EAP-Success is
    /// accepted only then: a Success before that (RFC 3748 §4.2 lets a peer refuse a
    /// Success it does not expect) would skip the authenticator's proof.
    fn succeeded(&self) -> bool;

    /// The Master Session Key once the method succeeded, for a method that makes one.
    fn msk(&self) -> Option<SecretBytes>;
}

/// An initiator's EAP credentials: installed with
/// [`LocalAuth::Eap`](crate::LocalAuth::Eap), it answers EAP-Identity and makes the
/// method the authenticator asks for.
pub trait EapPeer: Send + Sync {
    /// Our EAP identity (the EAP-Identity Response).
    fn identity(&self) -> Vec<u8>;

    /// A fresh run of method `ty`, or `None` when we do not do it (answered with a
    /// Nak that lists [`EapPeer::methods`]).
    fn start(&self, ty: EapType) -> Option<Box<dyn EapPeerMethod>>;

    /// The methods we do, for a Nak.
    fn methods(&self) -> Vec<EapType>;
}

impl fmt::Debug for dyn EapAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EapAuthenticator")
    }
}

impl fmt::Debug for dyn EapPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EapPeer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_refuse_bad_lengths() {
        // RFC 3748 §5.1: an Identity Request with no prompt.
        let req = [1, 7, 0, 5, 1];
        let p = EapPacket::parse(&req).unwrap();
        assert_eq!(p.code, EapCode::REQUEST);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.ty, Some(EapType::IDENTITY));
        assert!(p.data.is_empty());
        assert_eq!(p.to_vec().unwrap(), req);
        let ok = [3, 9, 0, 4];
        assert_eq!(EapPacket::parse(&ok).unwrap().to_vec().unwrap(), ok);
        // Padding after Length is ignored.
        assert_eq!(
            EapPacket::parse(&[3, 9, 0, 4, 0xff]).unwrap().code,
            EapCode::SUCCESS
        );
        assert_eq!(EapPacket::parse(&[1, 7, 0]), Err(EapError::Truncated));
        assert_eq!(EapPacket::parse(&[1, 7, 0, 9, 1]), Err(EapError::Truncated));
        assert_eq!(EapPacket::parse(&[1, 7, 0, 3, 1]), Err(EapError::BadLength));
        assert_eq!(EapPacket::parse(&[1, 7, 0, 4]), Err(EapError::BadLength));
        assert_eq!(EapPacket::parse(&[3, 7, 0, 5, 1]), Err(EapError::BadLength));
        assert_eq!(
            EapPacket::parse(&[5, 7, 0, 4]),
            Err(EapError::UnexpectedCode(5))
        );
    }
}
