//! Errors, sorted by who is at fault (style guide §6), and why an IKE SA closed.

use core::fmt;

use ipsec_crypto::CryptoError;
use ipsec_ike_wire::{AuthMethod, NotifyType, ParseError};

use crate::cert::CertRejection;

/// Why IKE authentication failed: the local reason behind an AUTHENTICATION_FAILED
/// notification, whether we sent it or received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The peer sent AUTHENTICATION_FAILED: it refused our authentication (or, as
    /// initiator, its reason is its own).
    #[error("the peer refused our authentication")]
    RejectedByPeer,
    /// No configuration accepts the identity the peer claims (the
    /// [`ResolvesPeer`](crate::ResolvesPeer) returned `None`).
    #[error("no configuration for the peer's identity")]
    UnknownPeer,
    /// The peer's identity is not the configured `remote_id`.
    #[error("the peer's identity is not the configured one")]
    IdentityMismatch,
    /// The peer used an AUTH method its configuration does not allow (a PSK peer
    /// signing, or a certificate peer sending a PSK MIC).
    #[error("AUTH method {0} not allowed for this peer")]
    MethodNotAllowed(AuthMethod),
    /// The PSK MIC is wrong: the peer does not know the key.
    #[error("wrong pre-shared key")]
    WrongSharedKey,
    /// The AUTH signature does not verify under the peer's key.
    #[error("AUTH signature does not verify")]
    BadSignature,
    /// The AUTH method or signature algorithm is one we cannot verify (for example
    /// ECDSA P-521, method 11), or the key does not fit it.
    #[error("unsupported signature algorithm")]
    UnsupportedAlgorithm,
    /// Certificate authentication is configured but the peer sent no X.509 CERT.
    #[error("the peer sent no certificate")]
    MissingCertificate,
    /// The peer's certificates were refused.
    #[error("{0}")]
    Certificate(CertRejection),
    /// EAP failed (RFC 7296 §2.16): as responder, the EAP method refused the peer (a
    /// wrong password, an unknown user); as initiator, the authenticator sent
    /// EAP-Failure, or its proof in the method did not check.
    #[error("EAP authentication failed")]
    EapFailed,
    /// The EAP conversation broke: a message that does not parse or does not
    /// belong, a method neither side can run, or too many rounds.
    #[error("EAP conversation failed: {0}")]
    Eap(crate::eap::EapError),
}

impl AuthFailure {
    /// A short snake_case label, for metrics and logs.
    pub const fn label(self) -> &'static str {
        match self {
            AuthFailure::RejectedByPeer => "rejected_by_peer",
            AuthFailure::UnknownPeer => "unknown_peer",
            AuthFailure::IdentityMismatch => "identity_mismatch",
            AuthFailure::MethodNotAllowed(_) => "method_not_allowed",
            AuthFailure::WrongSharedKey => "wrong_shared_key",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthFailure::MissingCertificate => "missing_certificate",
            AuthFailure::Certificate(c) => c.label(),
            AuthFailure::EapFailed => "eap_failed",
            AuthFailure::Eap(_) => "eap_error",
        }
    }
}

impl From<CertRejection> for AuthFailure {
    fn from(c: CertRejection) -> Self {
        AuthFailure::Certificate(c)
    }
}

/// Something the peer did that the protocol forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A payload the exchange needs is missing.
    #[error("missing {0} payload")]
    MissingPayload(&'static str),
    /// The responder's proposal is not one we offered, or has several transforms of a type.
    #[error("chosen proposal was not offered")]
    BadProposal,
    /// The KE payload's group is not the negotiated one, or its data is unusable.
    #[error("unusable key exchange payload")]
    BadKeyExchange,
    /// Traffic selectors outside those we proposed.
    #[error("traffic selectors outside those proposed")]
    BadTrafficSelectors,
    /// The peer's identity is not the configured one.
    #[error("peer identity does not match")]
    WrongIdentity,
    /// A message that makes no sense in the current state.
    #[error("unexpected message")]
    UnexpectedMessage,
    /// The responder chose a zero SPI, or an SPI in use.
    #[error("invalid SPI")]
    BadSpi,
}

/// The peer and we cannot agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// No proposal in common.
    #[error("no proposal chosen")]
    NoProposalChosen,
    /// No traffic selectors in common.
    #[error("traffic selectors unacceptable")]
    TsUnacceptable,
    /// The peer wants a key exchange group we do not have.
    #[error("unsupported key exchange group")]
    UnsupportedGroup,
    /// We are configured to authenticate with a signature (RFC 7427), but the peer
    /// did not announce its hash algorithm in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
    #[error(
        "peer did not announce our signature's hash in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)"
    )]
    SignatureHashNotAnnounced,
    /// Our configuration requires a post-quantum preshared key (RFC 8784) that the
    /// peer does not use (no USE_PPK, no PPK_IDENTITY, or another PPK_ID).
    #[error("a PPK is required but the peer does not use it (RFC 8784)")]
    PpkRequired,
}

/// A command the caller should not have given now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// No IKE SA with this handle.
    #[error("unknown IKE SA")]
    UnknownSa,
    /// No Child SA with this id on that IKE SA.
    #[error("unknown Child SA")]
    UnknownChildSa,
    /// The IKE SA is not established (yet, or any more).
    #[error("IKE SA not established")]
    NotEstablished,
    /// The configuration has no usable proposal for this provider.
    #[error("no proposal usable with this crypto provider")]
    NoUsableProposal,
    /// A local address of another family than the remote one.
    #[error("local and remote addresses of different families")]
    AddressFamily,
    /// EAP configured for the wrong role: [`LocalAuth::Eap`](crate::LocalAuth::Eap)
    /// on a responder or [`PeerAuth::Eap`](crate::PeerAuth::Eap) on an initiator
    /// (RFC 7296 §2.16: only the initiator authenticates with EAP).
    #[error("EAP configured for the wrong role")]
    EapRole,
    /// [`IkeEndpoint::redirect`](crate::IkeEndpoint::redirect) on an IKE SA whose
    /// initiator did not announce redirect support (RFC 5685 §3), that we initiated,
    /// or that was redirected already; or a gateway name that cannot be sent.
    #[error("the peer cannot be redirected")]
    CannotRedirect,
    /// Only the original initiator of an IKE SA with MOBIKE may move it to another
    /// address (RFC 4555 §3.5: the responder never sends UPDATE_SA_ADDRESSES).
    #[error("only the original initiator may move a MOBIKE IKE SA")]
    NotOriginalInitiator,
}

/// Everything that can go wrong in IKE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message that does not parse.
    #[error("invalid message: {0}")]
    InvalidMessage(ParseError),
    /// The peer broke the protocol.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(PeerMisbehaved),
    /// The peer and we cannot agree.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(PeerIncompatible),
    /// The peer's AUTH payload is wrong (and why), or the peer said ours was
    /// ([`AuthFailure::RejectedByPeer`]).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(AuthFailure),
    /// The peer answered with an error notification.
    #[error("peer sent {0}")]
    NotifyReceived(NotifyType),
    /// Retransmissions were exhausted.
    #[error("peer did not answer")]
    Timeout,
    /// A crypto operation failed.
    #[error("crypto failure: {0}")]
    Crypto(CryptoError),
    /// The caller gave a command that cannot be carried out.
    #[error("api misuse: {0}")]
    ApiMisuse(ApiMisuse),
}

impl Error {
    /// The error notification to send the peer for this error, if any: the one place
    /// that maps our errors to RFC 7296 §3.10.1 types.
    pub fn notify(&self) -> Option<NotifyType> {
        match self {
            Error::InvalidMessage(_) => Some(NotifyType::INVALID_SYNTAX),
            Error::PeerMisbehaved(PeerMisbehaved::WrongIdentity) => {
                Some(NotifyType::AUTHENTICATION_FAILED)
            }
            Error::PeerMisbehaved(PeerMisbehaved::BadKeyExchange) => {
                Some(NotifyType::INVALID_SYNTAX)
            }
            Error::PeerMisbehaved(PeerMisbehaved::BadTrafficSelectors) => {
                Some(NotifyType::TS_UNACCEPTABLE)
            }
            Error::PeerMisbehaved(_) => Some(NotifyType::INVALID_SYNTAX),
            Error::PeerIncompatible(PeerIncompatible::NoProposalChosen)
            | Error::PeerIncompatible(PeerIncompatible::UnsupportedGroup) => {
                Some(NotifyType::NO_PROPOSAL_CHOSEN)
            }
            Error::PeerIncompatible(PeerIncompatible::TsUnacceptable) => {
                Some(NotifyType::TS_UNACCEPTABLE)
            }
            Error::AuthenticationFailed(_)
            | Error::PeerIncompatible(PeerIncompatible::SignatureHashNotAnnounced)
            | Error::PeerIncompatible(PeerIncompatible::PpkRequired) => {
                Some(NotifyType::AUTHENTICATION_FAILED)
            }
            Error::NotifyReceived(_) | Error::Timeout | Error::ApiMisuse(_) => None,
            Error::Crypto(_) => Some(NotifyType::NO_PROPOSAL_CHOSEN),
        }
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::InvalidMessage(e)
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::Crypto(e)
    }
}

impl From<AuthFailure> for Error {
    fn from(e: AuthFailure) -> Self {
        Error::AuthenticationFailed(e)
    }
}

impl From<CertRejection> for Error {
    fn from(e: CertRejection) -> Self {
        Error::AuthenticationFailed(AuthFailure::Certificate(e))
    }
}

impl From<PeerMisbehaved> for Error {
    fn from(e: PeerMisbehaved) -> Self {
        Error::PeerMisbehaved(e)
    }
}

impl From<PeerIncompatible> for Error {
    fn from(e: PeerIncompatible) -> Self {
        Error::PeerIncompatible(e)
    }
}

impl From<ApiMisuse> for Error {
    fn from(e: ApiMisuse) -> Self {
        Error::ApiMisuse(e)
    }
}

/// Why an IKE SA ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Deleted with an INFORMATIONAL Delete: by the peer (`by_peer`) or by us
    /// ([`IkeEndpoint::close`](crate::IkeEndpoint::close)).
    Deleted {
        /// True when the peer sent the Delete.
        by_peer: bool,
    },
    /// The peer stopped answering: retransmissions exhausted, or a half-open SA
    /// timed out.
    Timeout,
    /// The peer's AUTH was wrong (and why), or it rejected ours
    /// ([`AuthFailure::RejectedByPeer`]).
    AuthenticationFailed(AuthFailure),
    /// No IKE proposal in common.
    ///
    /// In answer to our IKE_SA_INIT this (like [`CloseReason::NotifyReceived`]) comes
    /// only when the retransmissions run out: the notification is unauthenticated and
    /// may be forged, so the handshake keeps waiting for a valid response until then
    /// (RFC 7296 §2.21.2).
    NoProposalChosen,
    /// The peer answered with another error notification.
    NotifyReceived(NotifyType),
    /// A protocol error ended the SA.
    Error(Error),
    /// The gateway redirected us (RFC 5685) and we follow
    /// ([`Event::Redirected`](crate::Event::Redirected) came before).
    Redirected,
    /// The gateway redirected us once more than
    /// [`Config::max_redirects`](crate::Config::max_redirects) allows within
    /// [`Config::redirect_window`](crate::Config::redirect_window) (RFC 5685 §9): not
    /// followed.
    TooManyRedirects,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Deleted { by_peer: true } => f.write_str("deleted by peer"),
            CloseReason::Deleted { by_peer: false } => f.write_str("deleted by us"),
            CloseReason::Timeout => f.write_str("peer timed out"),
            CloseReason::AuthenticationFailed(r) => write!(f, "authentication failed: {r}"),
            CloseReason::NoProposalChosen => f.write_str("no proposal chosen"),
            CloseReason::NotifyReceived(n) => write!(f, "peer sent {n}"),
            CloseReason::Error(e) => write!(f, "{e}"),
            CloseReason::Redirected => f.write_str("redirected to another gateway"),
            CloseReason::TooManyRedirects => f.write_str("too many redirects"),
        }
    }
}

impl CloseReason {
    /// The reason for closing because of `e`.
    pub fn from_error(e: Error) -> Self {
        match e {
            Error::AuthenticationFailed(r) => CloseReason::AuthenticationFailed(r),
            Error::PeerMisbehaved(PeerMisbehaved::WrongIdentity) => {
                CloseReason::AuthenticationFailed(AuthFailure::IdentityMismatch)
            }
            Error::NotifyReceived(NotifyType::AUTHENTICATION_FAILED) => {
                CloseReason::AuthenticationFailed(AuthFailure::RejectedByPeer)
            }
            Error::NotifyReceived(NotifyType::NO_PROPOSAL_CHOSEN)
            | Error::PeerIncompatible(PeerIncompatible::NoProposalChosen) => {
                CloseReason::NoProposalChosen
            }
            Error::NotifyReceived(n) => CloseReason::NotifyReceived(n),
            Error::Timeout => CloseReason::Timeout,
            e => CloseReason::Error(e),
        }
    }
}
