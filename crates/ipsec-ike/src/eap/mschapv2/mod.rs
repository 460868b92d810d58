//! EAP-MSCHAPv2 (EAP type 26, draft-kamath-pppext-eap-mschapv2-02) on both sides,
//! with the MS-CHAPv2 computations of RFC 2759 and the keys of RFC 3079. Built with
//! the `eap-mschapv2` feature.
//!
//! [`MsChapV2Server`] and [`MsChapV2Peer`] are the method, one run each;
//! [`PasswordAuthenticator`] (a responder's user database) and [`PasswordPeer`] (an
//! initiator's user name and password) make them for the IKE state machines.
//!
//! # The conversation
//!
//! ```text
//! Authenticator                                        Peer
//! Request:  Challenge (1) id, 16-byte challenge, name  -->
//!      <--  Response: Response (2) id, peer challenge, NT-Response, user name
//! Request:  Success (3) id "S=<40 hex> M=<text>"       -->   checks S= (RFC 2759 §5)
//!      <--  Response: Success (3), one byte
//! EAP-Success; both sides hold the MSK
//! ```
//!
//! A wrong NT-Response (a wrong password, or a user the authenticator does not
//! know) is answered with a Failure request `E=691 R=0 C=<32 hex> V=3 M=<text>`
//! (RFC 2759 §6), the peer acknowledges it with a one-byte Failure response and the
//! authenticator ends with EAP-Failure. Retries (`R=1`) and Change-Password (OpCode
//! 7) are not offered, and a peer refuses them. An unknown user gets the same
//! messages and the same computation as a wrong password (it runs against a random
//! password hash), so the exchange does not tell which identities exist.
//!
//! The user name in the challenge hash is the Response's Name without a Windows
//! domain (`DOMAIN\user` counts as `user`, RFC 2759 §8.2); the peer sends its whole
//! identity as the Name. The authenticator takes the password of the EAP identity
//! its [`EapAuthenticator`](crate::eap::EapAuthenticator) was started with, whatever
//! the Name says.
//!
//! # The computations (RFC 2759 §8, RFC 3079 §3)
//!
//! - `NtPasswordHash` = MD4(password as UTF-16LE) ([`NtHash`]); `HashNtPasswordHash`
//!   = MD4 of that.
//! - `ChallengeHash` = SHA-1(PeerChallenge ‖ AuthenticatorChallenge ‖ UserName),
//!   first 8 bytes.
//! - `ChallengeResponse`: the hash padded with zeros to 21 bytes, cut into three
//!   7-byte DES keys, each DES-encrypting the challenge hash: the 24-byte
//!   NT-Response (`GenerateNTResponse`).
//! - `GenerateAuthenticatorResponse`: SHA-1(SHA-1(HashHash ‖ NT-Response ‖ Magic1) ‖
//!   ChallengeHash ‖ Magic2), sent as `S=` and 40 upper-case hex digits; compared in
//!   constant time (either case of hex digit accepted).
//! - `GetMasterKey` (RFC 3079 §3.4) = SHA-1(HashHash ‖ NT-Response ‖ "This is the
//!   MPPE Master Key"), first 16 bytes.
//! - `GetAsymmetricStartKey` (RFC 3079 §3.4), 16-byte keys: SHA-1(MasterKey ‖ 40
//!   zero bytes ‖ Magic ‖ 40 bytes 0xf2), first 16 bytes; Magic2 ("On the client
//!   side, this is the send key; ...") for the client's send key and the server's
//!   receive key, Magic3 for the client's receive key and the server's send key.
//!
//! # The MSK
//!
//! IKEv2 keys the AUTH payloads after EAP with the MSK (RFC 7296 §2.16), so both
//! sides must build it byte for byte as the other end does. The layout is the one
//! strongSwan's eap-mschapv2 plugin uses (read from its source for interoperation
//! with charon), 64 bytes, the same on both sides:
//!
//! | bytes | content |
//! |---|---|
//! | 0..16 | the server's receive start key = the client's send start key (Magic2) |
//! | 16..32 | the server's send start key = the client's receive start key (Magic3) |
//! | 32..64 | zero |
//!
//! The zeros fill it to the 64 bytes RFC 3748 §7.10 asks of an MSK. The MSK exists
//! only after the method succeeded: on the peer after it checked the authenticator
//! response, on the authenticator after the peer's Success response.
//!
//! Passwords are taken as UTF-8 and hashed at once; only the [`NtHash`] is kept,
//! and it, the hash's hash, the master and start keys are wiped after use (the MSK
//! is a [`SecretBytes`]). strongSwan drops Unicode noncharacters (U+FDD0..U+FDEF,
//! U+xFFFE, U+xFFFF) from a password before hashing; here every scalar value is
//! hashed, so a password with one of those hashes differently there.

mod crypto;
mod password;
mod wire;

#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use ipsec_crypto::{SecretBytes, SecureRandom};
use subtle::ConstantTimeEq;

use crate::eap::{EapError, EapPeerMethod, EapServerMethod, EapType, EapVerdict};
pub use crypto::NtHash;
pub use password::{PasswordAuthenticator, PasswordPeer};
pub use wire::MsChapV2Failure;
use wire::{Reply, Request};

/// The Name in our Challenge unless [`MsChapV2Server::with_name`] sets another.
const DEFAULT_SERVER_NAME: &[u8] = b"ipsec-rs";
/// The text of our Success request's `M=`.
const SUCCESS_TEXT: &str = "Welcome";
/// The text of our Failure request's `M=`.
const FAILURE_TEXT: &str = "Authentication failed";
/// `E=691`: authentication failure (RFC 2759 §6).
const ERROR_AUTHENTICATION_FAILURE: u32 = 691;

/// Where the authenticator is.
enum ServerState {
    /// [`EapServerMethod::initiate`] not yet called.
    Idle,
    /// Challenge sent.
    ExpectResponse { id: u8, challenge: [u8; 16] },
    /// Success request sent; the MSK waits for the peer's acknowledgement.
    ExpectSuccessAck(SecretBytes),
    /// Failure request sent.
    ExpectFailureAck,
    /// Succeeded or failed; nothing more is accepted.
    Done,
}

/// The authenticator side of EAP-MSCHAPv2 for one peer (the module docs describe
/// the exchange).
pub struct MsChapV2Server {
    identity: Vec<u8>,
    /// `None` for an identity without a password: a random hash is drawn in
    /// `initiate`, so the run fails like a wrong password.
    hash: Option<NtHash>,
    name: Vec<u8>,
    state: ServerState,
    msk: Option<SecretBytes>,
}

impl MsChapV2Server {
    /// A run for the peer `identity` (its EAP identity) whose password is
    /// `password` (UTF-8; RFC 2759 hashes its UTF-16LE form).
    pub fn new(identity: &[u8], password: &str) -> Self {
        Self::with_nt_hash(identity, NtHash::from_password(password))
    }

    /// A run for the peer `identity` whose password hash is `hash`.
    pub fn with_nt_hash(identity: &[u8], hash: NtHash) -> Self {
        Self::make(identity, Some(hash))
    }

    /// A run for an identity that has no password: it goes through the same
    /// messages and computations as a wrong password and always fails, so a peer
    /// cannot tell unknown identities from known ones.
    pub fn unknown_user(identity: &[u8]) -> Self {
        Self::make(identity, None)
    }

    fn make(identity: &[u8], hash: Option<NtHash>) -> Self {
        MsChapV2Server {
            identity: identity.to_vec(),
            hash,
            name: DEFAULT_SERVER_NAME.to_vec(),
            state: ServerState::Idle,
            msk: None,
        }
    }

    /// Sets the Name our Challenge carries (`ipsec-rs` by default).
    #[must_use]
    pub fn with_name(mut self, name: &[u8]) -> Self {
        self.name = name.to_vec();
        self
    }

    /// The EAP identity this run authenticates.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// Checks a Response: the Success request if the NT-Response is right, else
    /// the Failure request.
    fn check(
        &mut self,
        rng: &dyn SecureRandom,
        id: u8,
        challenge: &[u8; 16],
        peer_challenge: &[u8; 16],
        nt_response: &[u8; 24],
        name: &[u8],
    ) -> EapVerdict {
        let Some(hash) = self.hash.as_ref() else {
            return EapVerdict::Failure;
        };
        let user = crypto::strip_domain(name);
        let expected = crypto::nt_response(challenge, peer_challenge, user, hash);
        if bool::from(expected.ct_eq(nt_response)) {
            let auth =
                crypto::authenticator_response(hash, nt_response, peer_challenge, challenge, user);
            self.state = ServerState::ExpectSuccessAck(crypto::msk(hash, nt_response));
            return EapVerdict::Request(wire::success_request(id, &auth, SUCCESS_TEXT));
        }
        let mut fresh = [0u8; 16];
        if rng.fill(&mut fresh).is_err() {
            return EapVerdict::Failure;
        }
        self.state = ServerState::ExpectFailureAck;
        EapVerdict::Request(wire::failure_request(
            id,
            ERROR_AUTHENTICATION_FAILURE,
            &fresh,
            FAILURE_TEXT,
        ))
    }
}

impl fmt::Debug for MsChapV2Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsChapV2Server")
            .field(
                "identity",
                &alloc::string::String::from_utf8_lossy(&self.identity),
            )
            .field("succeeded", &self.msk.is_some())
            .finish_non_exhaustive()
    }
}

impl EapServerMethod for MsChapV2Server {
    fn method(&self) -> EapType {
        EapType::MSCHAPV2
    }

    fn initiate(&mut self, rng: &dyn SecureRandom) -> Result<Vec<u8>, EapError> {
        self.msk = None;
        self.state = ServerState::Done;
        if self.hash.is_none() {
            let mut h = [0u8; 16];
            rng.fill(&mut h).map_err(|_| EapError::Random)?;
            self.hash = Some(NtHash::from_bytes(h));
            zeroize::Zeroize::zeroize(&mut h);
        }
        let mut v = [0u8; 17];
        rng.fill(&mut v).map_err(|_| EapError::Random)?;
        let [id, challenge @ ..] = v;
        let out = wire::challenge(id, &challenge, &self.name)?;
        self.state = ServerState::ExpectResponse { id, challenge };
        Ok(out)
    }

    fn process(&mut self, rng: &dyn SecureRandom, data: &[u8]) -> EapVerdict {
        let state = core::mem::replace(&mut self.state, ServerState::Done);
        match (state, wire::parse_response(data)) {
            (
                ServerState::ExpectResponse { id, challenge },
                Ok(Reply::Response {
                    id: rid,
                    peer_challenge,
                    nt_response,
                    name,
                }),
            ) if rid == id => self.check(rng, id, &challenge, &peer_challenge, &nt_response, name),
            (ServerState::ExpectSuccessAck(msk), Ok(Reply::SuccessAck)) => {
                self.msk = Some(msk);
                EapVerdict::Success
            }
            // Idle, Done, a Failure acknowledgement or anything out of order.
            _ => EapVerdict::Failure,
        }
    }

    fn msk(&self) -> Option<SecretBytes> {
        self.msk.as_ref().map(SecretBytes::duplicate)
    }
}

/// Where the peer is.
enum PeerState {
    ExpectChallenge,
    /// Response sent; what the authenticator must prove and the MSK it unlocks.
    ExpectResult {
        auth: [u8; 20],
        msk: SecretBytes,
    },
    /// The authenticator proved itself; the MSK is out.
    Done,
    /// Refused, or a message out of order.
    Failed,
}

/// The peer side of EAP-MSCHAPv2 (the module docs describe the exchange).
pub struct MsChapV2Peer {
    identity: Vec<u8>,
    hash: NtHash,
    state: PeerState,
    msk: Option<SecretBytes>,
    failure: Option<MsChapV2Failure>,
}

impl MsChapV2Peer {
    /// A run as `identity` (sent whole as the Name; its part after a `\` is the
    /// user name of the challenge hash) with `password` (UTF-8).
    pub fn new(identity: &[u8], password: &str) -> Self {
        Self::with_nt_hash(identity, NtHash::from_password(password))
    }

    /// A run as `identity` with the password hash `hash`.
    pub fn with_nt_hash(identity: &[u8], hash: NtHash) -> Self {
        MsChapV2Peer {
            identity: identity.to_vec(),
            hash,
            state: PeerState::ExpectChallenge,
            msk: None,
            failure: None,
        }
    }

    /// What the authenticator's Failure request said, once one came.
    pub fn failure(&self) -> Option<&MsChapV2Failure> {
        self.failure.as_ref()
    }

    fn respond(
        &mut self,
        rng: &dyn SecureRandom,
        id: u8,
        challenge: &[u8; 16],
    ) -> Result<Vec<u8>, EapError> {
        let mut peer_challenge = [0u8; 16];
        rng.fill(&mut peer_challenge)
            .map_err(|_| EapError::Random)?;
        let user = crypto::strip_domain(&self.identity);
        let nt = crypto::nt_response(challenge, &peer_challenge, user, &self.hash);
        let out = wire::response(id, &peer_challenge, &nt, &self.identity)?;
        self.state = PeerState::ExpectResult {
            auth: crypto::authenticator_response(&self.hash, &nt, &peer_challenge, challenge, user),
            msk: crypto::msk(&self.hash, &nt),
        };
        Ok(out)
    }
}

impl fmt::Debug for MsChapV2Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsChapV2Peer")
            .field(
                "identity",
                &alloc::string::String::from_utf8_lossy(&self.identity),
            )
            .field("succeeded", &self.msk.is_some())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl EapPeerMethod for MsChapV2Peer {
    fn method(&self) -> EapType {
        EapType::MSCHAPV2
    }

    fn process(&mut self, rng: &dyn SecureRandom, data: &[u8]) -> Result<Vec<u8>, EapError> {
        let state = core::mem::replace(&mut self.state, PeerState::Failed);
        let req = wire::parse_request(data)?;
        match (state, req) {
            (PeerState::ExpectChallenge, Request::Challenge { id, challenge, .. }) => {
                self.respond(rng, id, &challenge)
            }
            (PeerState::ExpectResult { auth, msk }, Request::Success { message, .. }) => {
                let (received, _text) = wire::parse_success(message)?;
                if !crypto::check_authenticator_response(&auth, &received) {
                    return Err(EapError::AuthenticationFailed);
                }
                self.msk = Some(msk);
                self.state = PeerState::Done;
                Ok(vec![wire::OP_SUCCESS])
            }
            (PeerState::ExpectResult { .. }, Request::Failure { message, .. }) => {
                // Refused: acknowledge (draft-kamath-pppext-eap-mschapv2-02 §2.5);
                // EAP-Failure follows. A text we cannot read still means failure.
                self.failure = Some(wire::parse_failure(message).unwrap_or(MsChapV2Failure {
                    error: ERROR_AUTHENTICATION_FAILURE,
                    retry: false,
                    version: None,
                    message: alloc::string::String::new(),
                }));
                Ok(vec![wire::OP_FAILURE])
            }
            (PeerState::Failed, _) if self.failure.is_some() => Err(EapError::AuthenticationFailed),
            _ => Err(EapError::Malformed),
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.state, PeerState::Done)
    }

    fn msk(&self) -> Option<SecretBytes> {
        self.msk.as_ref().map(SecretBytes::duplicate)
    }
}
