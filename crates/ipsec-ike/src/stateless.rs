//! Answers without an IKE SA (RFC 7296): INVALID_MAJOR_VERSION (§2.5), INVALID_IKE_SPI
//! for protected requests to unknown SPIs, rate limited (§2.21.4), and the IKE_SA_INIT
//! refusals (COOKIE §2.6, with an RFC 8019 PUZZLE; INVALID_KE_PAYLOAD §1.3;
//! NO_PROPOSAL_CHOSEN, INVALID_SYNTAX). Whether to send them is the endpoint's
//! decision ([`admission`](crate::admission) for cookies and puzzles).

use ipsec_core::{Duration, IkeSpi, Instant};
use ipsec_crypto::CryptoProvider;
use ipsec_ike_wire::{
    error_response, ExchangeType, Flags, IkeHeaderRepr, NotifyType, ParseError, PayloadType, Trust,
    HEADER_LEN,
};

use crate::msg::{self, InMsg, Out};
use crate::puzzle;
use crate::shared::{Path, Shared};
use crate::trace;

/// The state of the stateless answers: the INVALID_IKE_SPI rate limit.
pub(crate) struct Stateless {
    /// INVALID_IKE_SPI answers: the start of the current one-second window and how
    /// many were sent in it.
    invalid_spi_window: (Instant, u32),
}

impl Stateless {
    /// Nothing sent yet.
    pub(crate) fn new() -> Self {
        Stateless {
            invalid_spi_window: (Instant(0), 0),
        }
    }

    /// A message for an IKE SA we do not know (RFC 7296 §2.21.4): a protected
    /// request gets an unprotected INVALID_IKE_SPI with its SPIs, exchange type and
    /// Message ID, within `Config::invalid_ike_spi_per_second`; a response, or
    /// anything unprotected, gets nothing ("MUST NOT respond" to responses).
    pub(crate) fn unknown_spi(
        &mut self,
        cx: &mut Shared,
        now: Instant,
        path: Path,
        h: &IkeHeaderRepr,
        first: PayloadType,
    ) {
        let limit = cx.config.invalid_ike_spi_per_second;
        let unknown = |answer: &'static str| {
            trace::debug!(
                remote = %path.remote,
                reason = "unknown_spi",
                spi_i = %h.spi_i,
                spi_r = %h.spi_r,
                exchange = %h.exchange_type,
                message_id = h.message_id,
                answer = answer,
                "IKE datagram dropped: no IKE SA with this SPI"
            );
        };
        if limit == 0
            || h.flags.is_response()
            || (first != PayloadType::SK && first != PayloadType::SKF)
            || h.spi_i.is_zero()
            || h.spi_r.is_zero()
        {
            unknown("none");
            return;
        }
        let (start, sent) = &mut self.invalid_spi_window;
        if now >= *start + Duration::from_secs(1) {
            *start = now;
            *sent = 0;
        }
        if *sent >= limit {
            // Config::invalid_ike_spi_per_second.
            unknown("rate_limited");
            return;
        }
        unknown("INVALID_IKE_SPI");
        *sent = sent.saturating_add(1);
        let header = msg::header(
            h.spi_i,
            h.spi_r,
            h.exchange_type,
            !h.flags.is_initiator(),
            true,
            h.message_id,
        );
        let reply = msg::plain(header, &[Out::notify(NotifyType::INVALID_IKE_SPI, &[])]);
        cx.send(path, &reply);
    }
}

/// INVALID_MAJOR_VERSION (RFC 7296 §2.5) for requests of a higher major version.
pub(crate) fn major_version(cx: &mut Shared, path: Path, bytes: &[u8], e: &ParseError) {
    if error_response(bytes, e, Trust::Unauthenticated).notify_type()
        != Some(NotifyType::INVALID_MAJOR_VERSION)
    {
        return;
    }
    let Some(hdr) = bytes.get(..HEADER_LEN) else {
        return;
    };
    let spi = |r: core::ops::Range<usize>| -> IkeSpi {
        IkeSpi(
            hdr.get(r)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .unwrap_or([0; 8]),
        )
    };
    let exchange = ExchangeType(hdr.get(18).copied().unwrap_or(0));
    let flags = Flags(hdr.get(19).copied().unwrap_or(0));
    let id = hdr
        .get(20..24)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes);
    let header = msg::header(
        spi(0..8),
        spi(8..16),
        exchange,
        !flags.is_initiator(),
        true,
        id,
    );
    let out = [Out::notify(NotifyType::INVALID_MAJOR_VERSION, &[])];
    let reply = msg::plain(header, &out);
    cx.send(path, &reply);
}

/// An unprotected IKE_SA_INIT response with `out` only (no SA is kept for it).
fn init_reply(cx: &mut Shared, path: Path, h: &IkeHeaderRepr, out: &[Out]) {
    let header = msg::header(
        h.spi_i,
        IkeSpi::ZERO,
        ExchangeType::IKE_SA_INIT,
        false,
        true,
        0,
    );
    let reply = msg::plain(header, out);
    cx.send(path, &reply);
}

/// An IKE_SA_INIT response carrying only the notification `n` (COOKIE,
/// INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, INVALID_SYNTAX, ...).
pub(crate) fn init_notify(
    cx: &mut Shared,
    path: Path,
    h: &IkeHeaderRepr,
    n: NotifyType,
    data: &[u8],
) {
    init_reply(cx, path, h, &[Out::notify(n, data)]);
}

/// A COOKIE answer to an IKE_SA_INIT request (RFC 7296 §2.6).
pub(crate) fn cookie(cx: &mut Shared, path: Path, h: &IkeHeaderRepr, cookie: &[u8]) {
    init_notify(cx, path, h, NotifyType::COOKIE, cookie);
}

/// A COOKIE answer with a PUZZLE of `difficulty` bits (RFC 8019 §7.1.1).
pub(crate) fn puzzle(
    cx: &mut Shared,
    path: Path,
    h: &IkeHeaderRepr,
    m: &InMsg,
    cookie: &[u8],
    difficulty: u8,
) {
    let provider: &CryptoProvider = cx.provider;
    let out = puzzle::challenge(m, cookie, provider, difficulty);
    init_reply(cx, path, h, &out);
}
