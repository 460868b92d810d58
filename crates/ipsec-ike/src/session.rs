//! One keyed IKE SA on the wire: its SPIs and keys, the Message ID windows of both
//! directions (RFC 7296 §2.1–§2.3, window size 1), retransmission of our request, the
//! cached response for retransmitted requests, and fragmentation (RFC 7383).
//!
//! An [`IkeSa`](crate::sa::IkeSa) owns one current session and, around rekeys,
//! retiring ones.

use alloc::vec::Vec;

use ipsec_core::{IkeSpi, Instant};
use ipsec_crypto::kdf;
use ipsec_ike_wire::frag::{self, IpVersion, Reassembler, ReassemblyLimits};
use ipsec_ike_wire::{
    error_response, ExchangeType, IkeHeaderRepr, NotifyType, PayloadType, SkKeys, Trust, HEADER_LEN,
};

use crate::error::Error;
use crate::event::SaHandle;
use crate::inflight::Inflight;
use crate::keys::IkeCrypto;
use crate::msg::{self, InMsg, Out};
use crate::shared::{Path, Shared};
use crate::trace;

/// A request of ours waiting for its response.
pub(crate) struct Request {
    pub id: u32,
    pub exchange: ExchangeType,
    pub datagrams: Vec<Vec<u8>>,
    pub sent: u32,
    pub deadline: Instant,
    pub kind: Inflight,
}

/// The last response we sent, for retransmitted requests.
pub(crate) struct Cached {
    pub id: u32,
    pub datagrams: Vec<Vec<u8>>,
}

/// The IntAuth chains of the IKE_INTERMEDIATE exchanges (RFC 9242 §3.3.2):
/// `IntAuth_iN = prf(SK_pi, IntAuth_iN-1 | IntAuth_iN_A | IntAuth_iN_P)` over the
/// initiator's requests and likewise `IntAuth_rN` with SK_pr over the responder's
/// answers, each with the keys that protected that message.
#[derive(Default)]
pub(crate) struct IntAuth {
    pub i: Vec<u8>,
    pub r: Vec<u8>,
}

impl IntAuth {
    /// The octets AUTH covers after the ID (RFC 9242 §3.3.2):
    /// `IntAuth_iN | IntAuth_rN | IKE_AUTH_MID`.
    pub(crate) fn octets(&self, ike_auth_mid: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.i.len() + self.r.len() + 4);
        v.extend_from_slice(&self.i);
        v.extend_from_slice(&self.r);
        v.extend_from_slice(&ike_auth_mid.to_be_bytes());
        v
    }
}

/// The IntAuth_A | IntAuth_P octets of an IKE_INTERMEDIATE message (RFC 9242
/// §3.3.2): its header and an Encrypted payload header as if the message were sent
/// unfragmented and unencrypted (no IV, padding or ICV), then the inner payloads.
pub(crate) fn int_auth_plain(h: &IkeHeaderRepr, first_inner: PayloadType, inner: &[u8]) -> Vec<u8> {
    let sk_len = 4 + inner.len();
    let total = HEADER_LEN + sk_len;
    let mut v = alloc::vec![0u8; total];
    if let Some(hdr) = v.get_mut(..HEADER_LEN) {
        h.emit(
            PayloadType::SK,
            u32::try_from(total).unwrap_or(u32::MAX),
            hdr,
        );
    }
    if let Some(sk) = v.get_mut(HEADER_LEN..) {
        sk[0] = first_inner.0;
        sk[2..4].copy_from_slice(&u16::try_from(sk_len).unwrap_or(u16::MAX).to_be_bytes());
        sk[4..].copy_from_slice(inner);
    }
    v
}

/// One keyed IKE SA.
pub(crate) struct Session {
    pub spi_i: IkeSpi,
    pub spi_r: IkeSpi,
    /// We are the original initiator of this IKE SA (sets the I flag, picks the keys).
    pub initiator: bool,
    pub crypto: IkeCrypto,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED and we have an MTU.
    pub fragment_mtu: Option<usize>,
    pub next_id: u32,
    pub out: Option<Request>,
    pub expect_id: u32,
    pub cached: Option<Cached>,
    pub req_reasm: Reassembler,
    pub resp_reasm: Reassembler,
    /// The IntAuth chains, from the first IKE_INTERMEDIATE message on.
    pub int_auth: Option<IntAuth>,
    /// The keys before the last additional key exchange (RFC 9370): a responder
    /// authenticates a retransmitted IKE_INTERMEDIATE request with them before it
    /// resends its cached answer, which they protected. Dropped at IKE_AUTH.
    pub retired_sk: Option<SkKeys>,
}

/// What a received datagram turned out to be.
pub(crate) enum Received {
    /// A new request, authenticated and parsed.
    Request(IkeHeaderRepr, InMsg),
    /// The response to our outstanding request.
    Response(InMsg),
    /// Nothing to act on (a retransmission answered from the cache, a fragment, a
    /// forgery, an old message).
    Nothing,
    /// An unprotected response with INVALID_IKE_SPI (RFC 7296 §2.21.4): perhaps the
    /// peer lost this IKE SA, perhaps a forgery. A hint only: it "MUST NOT change the
    /// state of any existing SAs".
    InvalidSpiHint,
}

fn reassembler() -> Reassembler {
    Reassembler::new(ReassemblyLimits::default())
}

impl Session {
    /// A new session with message IDs starting at `next_id` / `expect_id`.
    pub(crate) fn new(
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        initiator: bool,
        crypto: IkeCrypto,
        fragment_mtu: Option<usize>,
    ) -> Self {
        Session {
            spi_i,
            spi_r,
            initiator,
            crypto,
            fragment_mtu,
            next_id: 0,
            out: None,
            expect_id: 0,
            cached: None,
            req_reasm: reassembler(),
            resp_reasm: reassembler(),
            int_auth: None,
            retired_sk: None,
        }
    }

    /// Our SPI.
    pub(crate) fn local_spi(&self) -> IkeSpi {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    /// The peer's SPI.
    pub(crate) fn remote_spi(&self) -> IkeSpi {
        if self.initiator {
            self.spi_r
        } else {
            self.spi_i
        }
    }

    /// Whether a request of ours is in flight.
    pub(crate) fn busy(&self) -> bool {
        self.out.is_some()
    }

    /// The earliest timer: retransmission or reassembly expiry.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.out.as_ref().map(|r| r.deadline),
            self.req_reasm.poll_timeout(),
            self.resp_reasm.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Mixes the shared secret of an additional key exchange into every key
    /// (RFC 9370 §2.2.2): `SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)`, then the
    /// keys from `prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)`.
    pub(crate) fn add_key_exchange(
        &mut self,
        cx: &mut Shared,
        handle: SaHandle,
        secret: &[u8],
        ni: &[u8],
        nr: &[u8],
    ) -> Result<(), Error> {
        let skeyseed =
            kdf::rekey_skeyseed(self.crypto.prf, self.crypto.sk_d.expose(), secret, ni, nr)?;
        let mut next = IkeCrypto::derive(
            cx,
            self.crypto.chosen,
            &skeyseed,
            ni,
            nr,
            self.spi_i,
            self.spi_r,
        )?;
        next.export_keys(cx, handle);
        let old = core::mem::replace(&mut self.crypto, next);
        self.retired_sk = Some(old.sk);
        Ok(())
    }

    /// Folds an IKE_INTERMEDIATE message into its IntAuth chain, with the SK_p of
    /// its sender from the keys in effect now (the ones that protect it).
    fn chain_int_auth(&mut self, h: &IkeHeaderRepr, first: PayloadType, inner: &[u8]) {
        if h.exchange_type != ExchangeType::IKE_INTERMEDIATE {
            return;
        }
        let from_initiator = !h.flags.is_response();
        let plain = int_auth_plain(h, first, inner);
        let sk_p = if from_initiator {
            &self.crypto.sk_pi
        } else {
            &self.crypto.sk_pr
        };
        let ia = self.int_auth.get_or_insert_with(IntAuth::default);
        let prev = if from_initiator { &mut ia.i } else { &mut ia.r };
        let mut out = alloc::vec![0u8; self.crypto.prf.output_len()];
        let ok = self
            .crypto
            .prf
            .new_key(sk_p.expose())
            .and_then(|k| k.compute(&[prev.as_slice(), &plain], &mut out));
        if ok.is_ok() {
            *prev = out;
        } else {
            // Cannot happen with a PRF that took this key before; an empty value
            // makes AUTH fail rather than pass.
            prev.clear();
        }
    }

    /// Protects a message, fragmenting it when needed.
    fn seal(
        &mut self,
        cx: &Shared,
        header: &IkeHeaderRepr,
        out: &[Out],
        path: Path,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let (first, chain) = msg::chain(out);
        self.chain_int_auth(header, first, &chain);
        let crypter = self.crypto.sk.for_header(header);
        if let Some(mtu) = self.fragment_mtu {
            let ip = if path.remote.is_ipv4() {
                IpVersion::V4
            } else {
                IpVersion::V6
            };
            let max = frag::message_len_for(mtu, ip, path.encap());
            let whole = HEADER_LEN + 4 + crypter.protected_len(chain.len());
            if whole > max {
                return frag::fragment(
                    crypter,
                    header,
                    first,
                    &chain,
                    max,
                    cx.provider.secure_random,
                )
                .map_err(|_| Error::Crypto(ipsec_crypto::CryptoError::Unsupported));
            }
        }
        let mut v = Vec::new();
        ipsec_ike_wire::seal(
            crypter,
            header,
            first,
            &chain,
            cx.provider.secure_random,
            &mut v,
        )
        .map_err(|e| match e {
            ipsec_ike_wire::SealError::Crypto(c) => Error::Crypto(c),
            _ => Error::Crypto(ipsec_crypto::CryptoError::Unsupported),
        })?;
        Ok(alloc::vec![v])
    }

    /// Sends a request and keeps it for retransmission.
    pub(crate) fn request(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        exchange: ExchangeType,
        out: &[Out],
        kind: Inflight,
    ) -> Result<(), Error> {
        let id = self.next_id;
        if exchange != ExchangeType::IKE_INTERMEDIATE {
            self.retired_sk = None;
        }
        let h = msg::header(self.spi_i, self.spi_r, exchange, self.initiator, false, id);
        let datagrams = self.seal(cx, &h, out, path)?;
        for d in &datagrams {
            cx.send(path, d);
        }
        self.out = Some(Request {
            id,
            exchange,
            datagrams,
            sent: 1,
            deadline: now + cx.config.retransmit.wait(0),
            kind,
        });
        self.next_id = self.next_id.wrapping_add(1);
        Ok(())
    }

    /// Sends the response to `req` and caches it.
    pub(crate) fn respond(
        &mut self,
        cx: &mut Shared,
        path: Path,
        req: &IkeHeaderRepr,
        out: &[Out],
    ) {
        let h = msg::header(
            self.spi_i,
            self.spi_r,
            req.exchange_type,
            self.initiator,
            true,
            req.message_id,
        );
        // A failure here (the random source) leaves the request unanswered; the peer
        // retransmits.
        let Ok(datagrams) = self.seal(cx, &h, out, path) else {
            return;
        };
        for d in &datagrams {
            cx.send(path, d);
        }
        self.cached = Some(Cached {
            id: req.message_id,
            datagrams,
        });
        self.expect_id = req.message_id.wrapping_add(1);
    }

    /// Retransmits our request if its timer expired.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the retransmissions are exhausted.
    pub(crate) fn on_timeout(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
    ) -> Result<(), Error> {
        self.req_reasm.expire(now);
        self.resp_reasm.expire(now);
        let spi = self.local_spi();
        let Some(r) = self.out.as_mut() else {
            return Ok(());
        };
        if now < r.deadline {
            return Ok(());
        }
        let rt = cx.config.retransmit;
        if r.sent >= rt.max_tries.max(1) {
            trace::debug!(
                spi = %spi,
                remote = %path.remote,
                exchange = %r.exchange,
                message_id = r.id,
                tries = r.sent,
                "IKE request unanswered: retransmissions exhausted"
            );
            return Err(Error::Timeout);
        }
        for d in &r.datagrams {
            cx.send(path, d);
        }
        cx.counters.retransmissions += 1;
        trace::info!(
            spi = %spi,
            remote = %path.remote,
            exchange = %r.exchange,
            message_id = r.id,
            attempt = r.sent,
            "IKE request retransmitted"
        );
        r.deadline = now + rt.wait(r.sent);
        r.sent = r.sent.saturating_add(1);
        Ok(())
    }

    /// Authenticates, reassembles and parses a datagram sent to this session.
    /// Retransmitted requests are answered from the cache here.
    pub(crate) fn receive(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: &IkeHeaderRepr,
    ) -> Received {
        let spi = self.local_spi();
        let dropped = |reason: &'static str| {
            trace::debug!(
                spi = %spi,
                remote = %path.remote,
                reason = reason,
                exchange = %h.exchange_type,
                message_id = h.message_id,
                response = h.flags.is_response(),
                "IKE message dropped"
            );
            Received::Nothing
        };
        // The I flag names the original initiator: it must be the peer.
        if h.flags.is_initiator() == self.initiator {
            return dropped("initiator_flag");
        }
        let response = h.flags.is_response();
        if response && Self::is_invalid_spi_notify(bytes) {
            trace::debug!(
                spi = %self.local_spi(),
                remote = %path.remote,
                "unprotected INVALID_IKE_SPI received: a hint only (RFC 7296 §2.21.4)"
            );
            return Received::InvalidSpiHint;
        }
        let retransmitted;
        if response {
            match &self.out {
                Some(r) if r.id == h.message_id && r.exchange == h.exchange_type => {}
                // Not the answer to our outstanding request (RFC 7296 §2.3).
                _ => return dropped("unexpected_response"),
            }
            retransmitted = false;
        } else if h.message_id == self.expect_id {
            retransmitted = false;
        } else if h.message_id.wrapping_add(1) == self.expect_id
            && self.cached.as_ref().is_some_and(|c| c.id == h.message_id)
        {
            retransmitted = true;
        } else {
            // Outside the window of size 1 (RFC 7296 §2.3).
            return dropped("message_id_window");
        }
        if !response && !retransmitted && h.exchange_type != ExchangeType::IKE_INTERMEDIATE {
            self.retired_sk = None;
        }
        let mut buf = bytes.to_vec();
        let keys = match &self.retired_sk {
            Some(old) if retransmitted => old,
            _ => &self.crypto.sk,
        };
        let crypter = keys.for_header(h);
        let is_fragment = bytes.get(16).copied() == Some(PayloadType::SKF.0);
        let (first, inner): (PayloadType, Vec<u8>) = if is_fragment {
            let Ok(f) = frag::open_fragment(crypter, &mut buf) else {
                // The integrity check failed, or the SKF payload is malformed.
                return dropped("integrity");
            };
            if retransmitted {
                // RFC 7383 §2.6.1: answer a retransmitted fragmented request once,
                // on its first fragment.
                if f.fragment_number == 1 {
                    self.retransmission_answered(cx, path, h);
                }
                return Received::Nothing;
            }
            if self.fragment_mtu.is_none() && cx.config.fragment_mtu.is_none() {
                // We never announced support (RFC 7383 §2.3).
                return dropped("fragmentation_not_negotiated");
            }
            let reasm = if response {
                &mut self.resp_reasm
            } else {
                &mut self.req_reasm
            };
            match reasm.insert(now, &f) {
                Ok(Some(r)) => (r.first_inner, r.inner),
                Ok(None) => return Received::Nothing,
                Err(_) => return dropped("fragment"),
            }
        } else {
            let Ok(o) = ipsec_ike_wire::open(crypter, &mut buf) else {
                // The integrity check failed, or the SK payload is malformed.
                return dropped("integrity");
            };
            if retransmitted {
                self.retransmission_answered(cx, path, h);
                return Received::Nothing;
            }
            (o.first_inner, o.inner.to_vec())
        };
        let parsed = InMsg::parse(first, &inner);
        if parsed.is_ok() {
            self.chain_int_auth(h, first, &inner);
        }
        match parsed {
            Ok(m) if response => {
                // Reassembly of this response is complete; drop leftovers.
                self.resp_reasm.reset();
                Received::Response(m)
            }
            Ok(m) => {
                self.req_reasm.reset();
                Received::Request(*h, m)
            }
            Err(e) => {
                trace::debug!(
                    spi = %self.local_spi(),
                    remote = %path.remote,
                    reason = "malformed",
                    error = %e,
                    exchange = %h.exchange_type,
                    message_id = h.message_id,
                    "IKE message dropped"
                );
                if !response {
                    // Authenticated garbage: RFC 7296 §2.21.2 answers it.
                    let answer = error_response(bytes, &e, Trust::Authenticated);
                    if let Some(n) = answer.notify_type() {
                        let out = [Out::notify(n, answer.notify_data())];
                        self.respond(cx, path, h, &out);
                    }
                }
                Received::Nothing
            }
        }
    }

    /// Whether `bytes` is an unprotected message carrying INVALID_IKE_SPI.
    fn is_invalid_spi_notify(bytes: &[u8]) -> bool {
        let first = PayloadType(bytes.get(16).copied().unwrap_or(0));
        if first == PayloadType::SK || first == PayloadType::SKF {
            return false;
        }
        InMsg::parse(first, bytes.get(HEADER_LEN..).unwrap_or(&[]))
            .is_ok_and(|m| m.has(NotifyType::INVALID_IKE_SPI))
    }

    /// A retransmitted request that authenticated: our cached response goes out again
    /// (RFC 7296 §2.1).
    fn retransmission_answered(&self, cx: &mut Shared, path: Path, h: &IkeHeaderRepr) {
        trace::debug!(
            spi = %self.local_spi(),
            remote = %path.remote,
            exchange = %h.exchange_type,
            message_id = h.message_id,
            "retransmitted IKE request: cached response sent again"
        );
        if let Some(c) = &self.cached {
            for d in &c.datagrams {
                cx.send(path, d);
            }
        }
    }

    /// Answers a request with a single error notification.
    pub(crate) fn respond_error(
        &mut self,
        cx: &mut Shared,
        path: Path,
        req: &IkeHeaderRepr,
        n: NotifyType,
    ) {
        self.respond(cx, path, req, &[Out::notify(n, &[])]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_ike_wire::{ExchangeType, Flags};

    #[test]
    fn int_auth_plain_layout() {
        // RFC 9242 §3.3.2: the IKE header with Next Payload = SK and the length of the
        // unencrypted message, then the Encrypted payload header (Next Payload = first
        // inner payload, Length = 4 + inner), then the inner payloads.
        let h = IkeHeaderRepr {
            spi_i: IkeSpi([1; 8]),
            spi_r: IkeSpi([2; 8]),
            minor_version: 0,
            exchange_type: ExchangeType::IKE_INTERMEDIATE,
            flags: Flags::new(true, false),
            message_id: 1,
        };
        let inner = [0u8, 0, 0, 8, 0, 31, 0, 0];
        let v = int_auth_plain(&h, PayloadType::KE, &inner);
        assert_eq!(v.len(), 28 + 4 + 8);
        assert_eq!(&v[..8], &[1; 8]);
        assert_eq!(&v[8..16], &[2; 8]);
        assert_eq!(v[16], PayloadType::SK.0);
        assert_eq!(v[17], 0x20);
        assert_eq!(v[18], 43);
        assert_eq!(v[19], 0x08);
        assert_eq!(&v[20..24], &1u32.to_be_bytes());
        assert_eq!(&v[24..28], &40u32.to_be_bytes());
        assert_eq!(&v[28..32], &[PayloadType::KE.0, 0, 0, 12]);
        assert_eq!(&v[32..], &inner);
    }
}
