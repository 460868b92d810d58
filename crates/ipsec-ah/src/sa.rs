//! Per-SA AH state and in-place seal/open ([RFC 4302 §3.3] and [§3.4]).
//!
//! [`AhOutbound`] holds one direction's key and the sequence counter; [`AhInbound`]
//! holds the key and the anti-replay window. Both are built once per SA (the only
//! allocation: the backend's key schedule) and then protect or verify packets in the
//! caller's [`PacketBuf`] without allocating.
//!
//! The ICV input is the whole IP packet in its canonical form (see [`crate::mutable`]):
//!
//! | transform | ICV |
//! |---|---|
//! | HMAC-SHA1-96, HMAC-SHA2-256-128/384-192/512-256 ([RFC 2404], [RFC 4868]) | HMAC(packet \[‖ seq_hi\]), truncated |
//! | AES-GMAC ([RFC 4543 §5]) | GCM tag, nonce salt ‖ IV, AAD packet \[‖ seq_hi\], empty plaintext |
//!
//! With ESN the high 32 bits of the sequence number follow the packet in the ICV input
//! without being sent ([RFC 4302 §3.3.3.2.1]). The AES-GMAC IV is the 64-bit sequence
//! number in network byte order: unique per key, as RFC 4543 §3.1 requires.
//!
//! [RFC 4302 §3.3]: https://www.rfc-editor.org/rfc/rfc4302#section-3.3
//! [§3.4]: https://www.rfc-editor.org/rfc/rfc4302#section-3.4
//! [RFC 4302 §3.3.3.2.1]: https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.2.1
//! [RFC 2404]: https://www.rfc-editor.org/rfc/rfc2404
//! [RFC 4868]: https://www.rfc-editor.org/rfc/rfc4868
//! [RFC 4543 §5]: https://www.rfc-editor.org/rfc/rfc4543#section-5

use alloc::boxed::Box;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;

use ipsec_core::inbound::{self, Attempt, SeqFacts, Verifier};
use ipsec_core::ip::{Ipv4Header, Ipv6Header};
use ipsec_core::seq::split;
use ipsec_core::{
    ChildSaParams, Esn, IpProto, KeyMaterial, PacketBuf, Replay, ReplayError, ReplayWindow,
    SecurityProtocol, SeqCounter, Spi,
};
use ipsec_crypto::suites::IntegDesc;
use ipsec_crypto::{AeadKey, CryptoError, CryptoProvider, IntegId, IntegKey};
use zerocopy::FromBytes;

use crate::integ;
use crate::ip::{self, Located, Walk};
use crate::mutable::{self, Plan};
use crate::wire::{AhLayout, AhPacket, AhRepr, EmitError, Family, ParseError, HEADER_LEN};

/// The longest ICV of any supported transform (HMAC-SHA2-512-256).
pub const MAX_ICV_LEN: usize = 32;
/// The AES-GMAC IV carried at the start of the ICV field (RFC 4543 §5).
pub const GMAC_IV_LEN: usize = 8;
/// The AES-GMAC salt that follows the key in the key material (RFC 4543 §7).
pub const GMAC_SALT_LEN: usize = 4;
/// Scratch bytes AES-GMAC with ESN borrows next to the packet while it runs: the AAD
/// must be contiguous and the ESN high bits follow the packet.
pub const GMAC_ESN_SCRATCH: usize = 4;

/// Bytes a seal needs in front of and behind the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Overhead {
    /// AH (and, in tunnel mode, the outer IP header): the packet grows by this much.
    pub head: usize,
    /// Scratch behind the packet ([`GMAC_ESN_SCRATCH`] for AES-GMAC with ESN, else 0);
    /// the packet does not grow into it, and `head + tail` in front works as well.
    pub tail: usize,
}

impl Overhead {
    /// `head + tail`.
    pub const fn total(&self) -> usize {
        self.head.saturating_add(self.tail)
    }
}

/// Why an SA could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaError {
    /// The provider has no implementation of this transform.
    #[error("transform {0} not supported by the provider")]
    Unsupported(&'static str),
    /// The integrity id names no transform AH supports.
    #[error("unknown integrity transform")]
    UnknownTransform,
    /// The [`ChildSaParams`] are not for AH (ESP, or an encryption transform is set).
    #[error("not an AH SA")]
    NotAh,
    /// A key has the wrong length.
    #[error("{what} key has {got} bytes, expected {expected}")]
    KeyLength {
        /// "encr" (must be empty for AH) or "integ".
        what: &'static str,
        /// The length the transform needs (for GMAC: key and salt).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The replay window size is not 0 and not in 32..=4096.
    #[error("replay window: {0}")]
    ReplayWindow(ReplayError),
    /// The backend refused the key.
    #[error("key setup failed: {0}")]
    Crypto(CryptoError),
}

/// Why a seal failed. The body is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sequence number would have to cycle: rekey the SA (RFC 4302 §3.3.2).
    #[error("sequence number space exhausted")]
    SequenceExhausted,
    /// The buffer has too little room; `head` and `tail` are the bytes needed.
    #[error("buffer needs {head} bytes of headroom and {tail} of tailroom")]
    InsufficientRoom {
        /// Headroom needed.
        head: usize,
        /// Tailroom needed.
        tail: usize,
    },
    /// The body is not a well-formed whole IP packet (bad header, an IPv4 or IPv6
    /// fragment, malformed options or extension headers).
    #[error("malformed packet: {0}")]
    Malformed(ParseError),
    /// The protected packet would not fit its length field.
    #[error("packet too large for its length field")]
    TooLarge,
    /// The backend failed.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

impl SealError {
    /// A short `snake_case` name for counters and JSON.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::SequenceExhausted => "sequence_exhausted",
            Self::InsufficientRoom { .. } => "insufficient_room",
            Self::Malformed(_) => "malformed",
            Self::TooLarge => "too_large",
            Self::Crypto(_) => "crypto",
        }
    }
}

/// Why a received packet was refused. These are for counters and logs; the peer never
/// learns them. The body is unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a well-formed IP packet carrying AH for this SA: bad header, fragment, no
    /// AH, another SPI, an AH length that does not fit the transform, malformed
    /// options; or, in tunnel mode after verification, an inner packet that does not
    /// match its next header.
    #[error("malformed packet: {0}")]
    Malformed(ParseError),
    /// Refused by the anti-replay window (before or after verification).
    #[error("replay check: {0}")]
    Replay(ReplayError),
    /// The ICV did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// AES-GMAC with ESN needs [`GMAC_ESN_SCRATCH`] bytes of head- or tailroom.
    #[error("needs {head} bytes of headroom or {tail} of tailroom")]
    InsufficientRoom {
        /// Headroom needed (if there is no tailroom).
        head: usize,
        /// Tailroom needed (if there is no headroom).
        tail: usize,
    },
    /// Tunnel mode, authentic: RFC 6040 says drop (outer CE over a not-ECT inner packet).
    #[error("CE on the outer header of a not-ECT packet")]
    EcnDrop,
}

impl OpenError {
    /// A short `snake_case` name for counters and JSON: `malformed`, `replay`,
    /// `integrity`, `insufficient_room` or `ecn_drop`.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Replay(_) => "replay",
            Self::Integrity => "integrity",
            Self::InsufficientRoom { .. } => "insufficient_room",
            Self::EcnDrop => "ecn_drop",
        }
    }
}

/// What [`AhInbound::open_transport`] and [`AhInbound::open_tunnel`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The SPI.
    pub spi: Spi,
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// What AH protected: the upper-layer protocol in transport mode (the body's IP
    /// header says it again), [`IpProto::IPV4`] or [`IpProto::IPV6`] in tunnel mode.
    pub next_header: IpProto,
    /// Source address of the IP header that carried the AH (the outer one in tunnel
    /// mode).
    pub src: IpAddr,
    /// Destination address of the IP header that carried the AH.
    pub dst: IpAddr,
    /// The AH length that was removed.
    pub ah_len: usize,
}

enum Engine {
    Hmac(Box<dyn IntegKey>),
    Gmac {
        key: Box<dyn AeadKey>,
        salt: [u8; GMAC_SALT_LEN],
    },
}

/// The keyed transform of one direction, with scratch space for the ICV input.
pub(crate) struct Transform {
    engine: Engine,
    pub(crate) integ: &'static IntegDesc,
    pub(crate) esn: bool,
    pub(crate) layout: AhLayout,
}

/// Where the ICV computation reads and writes in a packet buffer.
struct IcvAt {
    /// The canonical packet the ICV covers.
    packet: Range<usize>,
    /// Offset of the (GMAC) IV.
    iv_off: usize,
    /// The ICV field.
    icv: Range<usize>,
    /// The high half of the ESN (appended to the ICV input when ESN is on).
    hi: [u8; 4],
}

pub(crate) enum Op<'a> {
    Sign,
    Verify(&'a [u8]),
}

fn range_err() -> CryptoError {
    CryptoError::length("data", 0, 0)
}

impl Transform {
    fn new(
        provider: &CryptoProvider,
        integ: &'static IntegDesc,
        keys: &KeyMaterial,
        esn: bool,
    ) -> Result<Self, SaError> {
        if !keys.encr().is_empty() {
            return Err(SaError::KeyLength {
                what: "encr",
                expected: 0,
                got: keys.encr().len(),
            });
        }
        let k = keys.integ();
        if k.len() != integ.key_len {
            return Err(SaError::KeyLength {
                what: "integ",
                expected: integ.key_len,
                got: k.len(),
            });
        }
        if integ.icv_len > MAX_ICV_LEN || integ.icv_len == 0 {
            return Err(SaError::Unsupported(integ.name));
        }
        let (engine, iv_len) = if integ::is_gmac(integ.id) {
            let key_len = integ.key_len.saturating_sub(GMAC_SALT_LEN);
            let alg = provider
                .gmac(key_len)
                .ok_or(SaError::Unsupported(integ.name))?;
            if alg.nonce_len() != GMAC_SALT_LEN + GMAC_IV_LEN || alg.tag_len() != integ.icv_len {
                return Err(SaError::Unsupported(integ.name));
            }
            let (key, salt_bytes) = k
                .split_at_checked(key_len)
                .ok_or(SaError::Unsupported(integ.name))?;
            let mut salt = [0u8; GMAC_SALT_LEN];
            if salt_bytes.len() != GMAC_SALT_LEN {
                return Err(SaError::Unsupported(integ.name));
            }
            salt.copy_from_slice(salt_bytes);
            let key = alg.new_key(key).map_err(SaError::Crypto)?;
            (Engine::Gmac { key, salt }, GMAC_IV_LEN)
        } else {
            let alg = provider
                .integ(integ.id)
                .ok_or(SaError::Unsupported(integ.name))?;
            if alg.icv_len() != integ.icv_len || alg.key_len() != integ.key_len {
                return Err(SaError::Unsupported(integ.name));
            }
            (Engine::Hmac(alg.new_key(k).map_err(SaError::Crypto)?), 0)
        };
        Ok(Self {
            engine,
            integ,
            esn,
            layout: AhLayout {
                iv_len,
                icv_len: integ.icv_len,
            },
        })
    }

    fn scratch(&self) -> usize {
        match self.engine {
            Engine::Gmac { .. } if self.esn => GMAC_ESN_SCRATCH,
            _ => 0,
        }
    }

    /// True when the GMAC+ESN scratch fits around `b[start..end]`.
    fn scratch_fits(&self, b_len: usize, start: usize, end: usize) -> bool {
        let s = self.scratch();
        s == 0 || b_len.saturating_sub(end) >= s || start >= s
    }

    /// Computes (`Op::Sign`, written into the ICV slot) or verifies the ICV of the
    /// packet `b[packet]`, whose AH starts at `start + loc.hdr_len`. The packet is
    /// put into its canonical form in place and restored before returning, success or
    /// not.
    pub(crate) fn mac(
        &self,
        b: &mut [u8],
        packet: Range<usize>,
        loc: &Located,
        plan: &Plan,
        seq: u64,
        op: Op<'_>,
    ) -> Result<(), CryptoError> {
        let Range { start, end } = packet;
        let iv_off = start.saturating_add(loc.hdr_len).saturating_add(HEADER_LEN);
        let icv_off = iv_off.saturating_add(self.layout.iv_len);
        let icv_end = icv_off.saturating_add(self.layout.icv_len);
        if icv_end > end || end > b.len() {
            return Err(range_err());
        }
        let (hi, _) = split(seq);
        let hi = hi.to_be_bytes();
        let mut out = [0u8; MAX_ICV_LEN];
        let out = out.get_mut(..self.layout.icv_len).ok_or(range_err())?;
        if b.get(start..end).is_none() {
            return Err(range_err());
        }
        // Scratch for undoing the canonical form: the header copy always, room for
        // option data only when the packet has mutable IPv6 options.
        let mut big;
        let opts: &mut [u8] = if plan.opt_bytes() == 0 {
            &mut []
        } else {
            big = [0u8; mutable::MAX_MUTABLE_OPTION_BYTES];
            big.get_mut(..plan.opt_bytes()).unwrap_or(&mut [])
        };
        let mut undo = mutable::Undo::new(opts);
        if let Some(pkt) = b.get_mut(start..end) {
            mutable::apply(pkt, loc, plan, &mut undo);
        }
        let at = IcvAt {
            packet: start..end,
            iv_off,
            icv: icv_off..icv_end,
            hi,
        };
        let r = self.run(b, &at, out, &op);
        if let Some(pkt) = b.get_mut(start..end) {
            mutable::restore(pkt, loc, plan, &undo);
        }
        if let Some(slot) = b.get_mut(icv_off..icv_end) {
            match op {
                Op::Sign => slot.copy_from_slice(out),
                Op::Verify(icv) => slot.copy_from_slice(icv),
            }
        }
        r
    }

    /// The MAC itself, over the canonical packet `b[at.packet]` (ICV slot zeroed here).
    #[inline]
    fn run(
        &self,
        b: &mut [u8],
        at: &IcvAt,
        out: &mut [u8],
        op: &Op<'_>,
    ) -> Result<(), CryptoError> {
        let IcvAt {
            packet: Range { start, end },
            iv_off,
            icv: Range {
                start: icv_off,
                end: icv_end,
            },
            hi,
        } = *at;
        b.get_mut(icv_off..icv_end).ok_or(range_err())?.fill(0);
        match &self.engine {
            Engine::Hmac(key) => {
                let pkt = b.get(start..end).ok_or(range_err())?;
                let parts: &[&[u8]] = if self.esn { &[pkt, &hi] } else { &[pkt] };
                match op {
                    Op::Sign => key.compute(parts, out),
                    Op::Verify(icv) => key.verify(parts, icv),
                }
            }
            Engine::Gmac { key, salt } => {
                let mut nonce = [0u8; GMAC_SALT_LEN + GMAC_IV_LEN];
                let (s, iv) = nonce.split_at_mut(GMAC_SALT_LEN);
                s.copy_from_slice(salt);
                iv.copy_from_slice(b.get(iv_off..icv_off).ok_or(range_err())?);
                let mut run = |aad: &[u8]| match op {
                    Op::Sign => key.seal_detached(&nonce, aad, &mut [], out),
                    Op::Verify(icv) => key.open_detached(&nonce, aad, &mut [], icv),
                };
                if self.esn {
                    with_trailer(b, start, end, hi, run)
                } else {
                    run(b.get(start..end).ok_or(range_err())?)
                }
            }
        }
    }
}

/// Runs `f` over `b[start..end] ‖ extra` as one slice, borrowing four bytes behind the
/// packet (or, without tailroom, moving the packet four bytes to the front) and
/// putting everything back afterwards.
fn with_trailer(
    b: &mut [u8],
    start: usize,
    end: usize,
    extra: [u8; 4],
    f: impl FnOnce(&[u8]) -> Result<(), CryptoError>,
) -> Result<(), CryptoError> {
    let after = end.saturating_add(4);
    if after <= b.len() {
        let mut saved = [0u8; 4];
        let tail = b.get_mut(end..after).ok_or(range_err())?;
        saved.copy_from_slice(tail);
        tail.copy_from_slice(&extra);
        let r = f(b.get(start..after).ok_or(range_err())?);
        b.get_mut(end..after)
            .ok_or(range_err())?
            .copy_from_slice(&saved);
        r
    } else {
        let front = start.checked_sub(4).ok_or(range_err())?;
        let last = end.checked_sub(4).ok_or(range_err())?;
        let mut saved = [0u8; 4];
        saved.copy_from_slice(b.get(front..start).ok_or(range_err())?);
        b.copy_within(start..end, front);
        b.get_mut(last..end)
            .ok_or(range_err())?
            .copy_from_slice(&extra);
        let r = f(b.get(front..end).ok_or(range_err())?);
        b.copy_within(front..last, start);
        b.get_mut(front..start)
            .ok_or(range_err())?
            .copy_from_slice(&saved);
        r
    }
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform")
            .field("integ", &self.integ.name)
            .field("esn", &self.esn)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

fn integ_from_params(p: &ChildSaParams) -> Result<&'static IntegDesc, SaError> {
    if p.protocol != SecurityProtocol::Ah || p.encr.is_some() {
        return Err(SaError::NotAh);
    }
    if p.integ == IntegId::NONE {
        return Err(SaError::UnknownTransform);
    }
    integ::by_id(p.integ).ok_or(SaError::UnknownTransform)
}

pub(crate) fn addresses(pkt: &[u8], family: Family) -> (IpAddr, IpAddr) {
    match family {
        Family::Ipv4 => match Ipv4Header::ref_from_prefix(pkt) {
            Ok((h, _)) => (Ipv4Addr::from(h.src).into(), Ipv4Addr::from(h.dst).into()),
            Err(_) => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::UNSPECIFIED.into()),
        },
        Family::Ipv6 => match Ipv6Header::ref_from_prefix(pkt) {
            Ok((h, _)) => (Ipv6Addr::from(h.src).into(), Ipv6Addr::from(h.dst).into()),
            Err(_) => (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()),
        },
    }
}

pub(crate) fn outer_tos(pkt: &[u8], family: Family) -> u8 {
    match family {
        Family::Ipv4 => pkt.get(1).copied().unwrap_or(0),
        Family::Ipv6 => Ipv6Header::ref_from_prefix(pkt).map_or(0, |(h, _)| h.traffic_class()),
    }
}

/// The sending half of an AH SA: key and sequence counter.
pub struct AhOutbound {
    pub(crate) spi: Spi,
    pub(crate) xf: Transform,
    pub(crate) seq: SeqCounter,
    /// A one-shot AES-GMAC IV for known-answer tests ([`AhOutbound::set_next_iv`]).
    pub(crate) next_iv: Option<[u8; GMAC_IV_LEN]>,
}

impl fmt::Debug for AhOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AhOutbound")
            .field("spi", &self.spi)
            .field("transform", &self.xf)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl AhOutbound {
    /// Sets up the sending side of an SA, with 64-bit extended sequence numbers when
    /// `esn` is [`Esn::On`] (a `bool` converts).
    ///
    /// `integ` is one of [`integ::ALL`]; `keys.integ()` is its key (for AES-GMAC the
    /// key followed by the 4-byte salt) and `keys.encr()` must be empty.
    ///
    /// # Errors
    /// [`SaError`] when the provider lacks the transform or a key has the wrong length.
    pub fn new(
        provider: &CryptoProvider,
        spi: Spi,
        integ: &'static IntegDesc,
        keys: &KeyMaterial,
        esn: impl Into<Esn>,
    ) -> Result<Self, SaError> {
        let esn = esn.into().is_on();
        let xf = Transform::new(provider, integ, keys, esn)?;
        Ok(Self {
            spi,
            xf,
            seq: SeqCounter::new(esn),
            next_iv: None,
        })
    }

    /// Sets up the sending side from what IKE negotiated: `outbound_spi`,
    /// `outbound_keys`, the integrity transform and ESN. The mode is the caller's
    /// choice of [`AhOutbound::seal_transport`] or [`AhOutbound::seal_tunnel`].
    ///
    /// # Errors
    /// As [`AhOutbound::new`], plus [`SaError::NotAh`] and [`SaError::UnknownTransform`].
    pub fn from_params(provider: &CryptoProvider, params: &ChildSaParams) -> Result<Self, SaError> {
        let integ = integ_from_params(params)?;
        Self::new(
            provider,
            params.outbound_spi,
            integ,
            &params.outbound_keys,
            params.esn,
        )
    }

    /// The SPI written into every packet.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.xf.esn
    }

    /// The integrity transform.
    pub fn integ(&self) -> &'static IntegDesc {
        self.xf.integ
    }

    /// IV and ICV lengths of this SA.
    pub fn layout(&self) -> AhLayout {
        self.xf.layout
    }

    /// The AH length for packets of `family` (RFC 4302 §2.6 padding included).
    pub fn ah_len(&self, family: Family) -> usize {
        self.xf.layout.ah_len(family)
    }

    /// The exact room [`AhOutbound::seal_transport`] needs for a packet of `family`.
    pub fn overhead(&self, family: Family) -> Overhead {
        Overhead {
            head: self.ah_len(family),
            tail: self.xf.scratch(),
        }
    }

    /// The sequence counter (for SA export and lifetime checks).
    pub fn seq_counter(&self) -> SeqCounter {
        self.seq
    }

    /// Makes the next packet carry sequence number `next` (for SA import and
    /// known-answer tests). Never move a live SA backwards: with AES-GMAC the IV is the
    /// sequence number and must not repeat under one key.
    ///
    /// # Errors
    /// [`SealError::SequenceExhausted`] when `next` is 0 or beyond the counter's limit.
    pub fn set_next_seq(&mut self, next: u64) -> Result<(), SealError> {
        let limit = SeqCounter::new(self.xf.esn).limit();
        if next == 0 || next > limit {
            return Err(SealError::SequenceExhausted);
        }
        self.seq = SeqCounter::starting_after(next.saturating_sub(1), self.xf.esn);
        Ok(())
    }

    /// Makes the next seal use the AES-GMAC IV `iv` instead of the sequence number.
    ///
    /// **For known-answer tests only.** A repeated IV under one key reveals the GMAC
    /// authentication key; the normal path cannot repeat one.
    ///
    /// # Errors
    /// [`SealError::Crypto`] when the transform has no IV or `iv` has the wrong length.
    #[doc(hidden)]
    pub fn set_next_iv(&mut self, iv: &[u8]) -> Result<(), SealError> {
        let v: [u8; GMAC_IV_LEN] = iv
            .try_into()
            .ok()
            .filter(|_| self.xf.layout.iv_len == GMAC_IV_LEN)
            .ok_or(SealError::Crypto(CryptoError::length(
                "iv",
                self.xf.layout.iv_len,
                iv.len(),
            )))?;
        self.next_iv = Some(v);
        Ok(())
    }

    pub(crate) fn room(
        &self,
        b_len: usize,
        start: usize,
        end: usize,
        o: Overhead,
    ) -> Result<(), SealError> {
        let err = SealError::InsufficientRoom {
            head: o.head,
            tail: o.tail,
        };
        let new_start = start.checked_sub(o.head).ok_or(err)?;
        if self.xf.scratch_fits(b_len, new_start, end) {
            Ok(())
        } else {
            Err(err)
        }
    }

    pub(crate) fn take_iv(&mut self, seq: u64) -> [u8; GMAC_IV_LEN] {
        // RFC 4543 §3.1: unique per key; the 64-bit sequence number is, and costs nothing.
        self.next_iv.take().unwrap_or(seq.to_be_bytes())
    }

    /// A caller-chosen sequence number must be one the counter could hand out.
    pub(crate) fn check_seq(&self, seq: u64) -> Result<(), SealError> {
        if seq == 0 || seq > SeqCounter::new(self.xf.esn).limit() {
            Err(SealError::SequenceExhausted)
        } else {
            Ok(())
        }
    }

    /// Writes the AH header (ICV field zeroed, the IV in front for AES-GMAC).
    pub(crate) fn emit_ah(
        &self,
        ah: &mut [u8],
        next_header: IpProto,
        seq: u64,
        ah_len: usize,
        iv: [u8; GMAC_IV_LEN],
    ) -> Result<(), SealError> {
        AhRepr {
            next_header,
            spi: self.spi,
            seq,
            ah_len,
        }
        .emit(ah)
        // `ah` was cut to `ah_len`, a length of this transform: neither can happen.
        .map_err(|e| match e {
            EmitError::BufferTooSmall { need, .. } => SealError::InsufficientRoom {
                head: need,
                tail: 0,
            },
            _ => SealError::TooLarge,
        })?;
        let iv_len = self.xf.layout.iv_len;
        if let Some(slot) = ah.get_mut(HEADER_LEN..HEADER_LEN.saturating_add(iv_len)) {
            slot.copy_from_slice(iv.get(..slot.len()).unwrap_or(&[]));
        }
        Ok(())
    }
}

/// The receiving half of an AH SA: key and the anti-replay window.
pub struct AhInbound {
    pub(crate) spi: Spi,
    pub(crate) xf: Transform,
    pub(crate) window: ReplayWindow,
}

impl fmt::Debug for AhInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AhInbound")
            .field("spi", &self.spi)
            .field("transform", &self.xf)
            .field("window", &self.window)
            .finish()
    }
}

/// What the checks before verification found.
pub(crate) struct Parsed {
    pub(crate) loc: Located,
    pub(crate) plan: Plan,
    pub(crate) seq: u64,
    pub(crate) next_header: IpProto,
    pub(crate) ah_len: usize,
    pub(crate) icv: [u8; MAX_ICV_LEN],
}

impl AhInbound {
    /// Sets up the receiving side of an SA. `replay` is [`Replay::Window`] with a size
    /// in packets (32 to 4096), or [`Replay::Off`] (a `u32` converts: 0 is off). `esn`
    /// is [`Esn::On`] or [`Esn::Off`] (or a `bool`). Keys and transforms as in
    /// [`AhOutbound::new`].
    ///
    /// # Errors
    /// As [`AhOutbound::new`], plus [`SaError::ReplayWindow`] for a bad window size.
    pub fn new(
        provider: &CryptoProvider,
        spi: Spi,
        integ: &'static IntegDesc,
        keys: &KeyMaterial,
        esn: impl Into<Esn>,
        replay: impl Into<Replay>,
    ) -> Result<Self, SaError> {
        let (esn, replay_window) = (esn.into().is_on(), replay.into().window());
        let xf = Transform::new(provider, integ, keys, esn)?;
        let window = if replay_window == 0 {
            ReplayWindow::disabled()
        } else {
            ReplayWindow::new(replay_window).map_err(SaError::ReplayWindow)?
        };
        Ok(Self { spi, xf, window })
    }

    /// Sets up the receiving side from what IKE negotiated: `inbound_spi`,
    /// `inbound_keys`, the integrity transform, ESN and `replay_window`. The mode is
    /// `params.mode`: open with [`AhInbound::open_transport`] or [`AhInbound::open_tunnel`]
    /// accordingly.
    ///
    /// # Errors
    /// As [`AhInbound::new`], plus [`SaError::NotAh`] and [`SaError::UnknownTransform`].
    pub fn from_params(provider: &CryptoProvider, params: &ChildSaParams) -> Result<Self, SaError> {
        let integ = integ_from_params(params)?;
        Self::new(
            provider,
            params.inbound_spi,
            integ,
            &params.inbound_keys,
            params.esn,
            params.replay_window,
        )
    }

    /// The SPI this SA receives on.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.xf.esn
    }

    /// The integrity transform.
    pub fn integ(&self) -> &'static IntegDesc {
        self.xf.integ
    }

    /// IV and ICV lengths of this SA.
    pub fn layout(&self) -> AhLayout {
        self.xf.layout
    }

    /// The anti-replay window (for SA export).
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Replaces the anti-replay window (for SA import).
    pub fn set_replay_window(&mut self, window: ReplayWindow) {
        self.window = window;
    }
}

/// How an AH packet is opened: normally ([`OpenOptions::new`], the default), or as an
/// ESN re-synchronization attempt ([`OpenOptions::resync`]). Every `open` entry point
/// of [`AhInbound`] takes one; the anti-replay window is chosen by the entry point
/// (`open_*` use the SA's own, `open_*_with` the caller's [`ReplayGuard`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    resync: Option<u32>,
}

impl OpenOptions {
    /// A normal open.
    pub const fn new() -> Self {
        Self { resync: None }
    }

    /// Re-synchronize the ESN high half with this packet ([RFC 4302 Appendix B3]).
    ///
    /// Use it when the SA's [`ResyncCounter`] says so, with the packet that just
    /// failed a normal open with [`OpenError::Integrity`]. A failed AH verification
    /// leaves the body as it was (the mutable fields zeroed for the ICV input are put
    /// back, success or not), so unlike ESP no copy of the packet is needed: pass the
    /// same buffer again. The ICV is checked again with the high halves Seqh + 1,
    /// Seqh + 2, ..., Seqh + `max_tries` (at most [`ResyncPolicy::MAX_TRIES`]), where
    /// Seqh is the one the window infers; the inferred one itself is not tried again.
    ///
    /// Only a packet that verifies changes the window: it is marked exactly as an
    /// accepted packet, which moves the window's top to its full sequence number, and
    /// the AH is removed as there. Without ESN nothing is tried. When no high half
    /// verifies the packet (or the SA has no ESN) the open fails with
    /// [`OpenError::Integrity`].
    ///
    /// [RFC 4302 Appendix B3]: https://www.rfc-editor.org/rfc/rfc4302#appendix-B.3
    pub const fn resync(max_tries: u32) -> Self {
        Self {
            resync: Some(max_tries),
        }
    }

    /// Whether this is a re-synchronization attempt.
    pub const fn is_resync(&self) -> bool {
        self.resync.is_some()
    }

    pub(crate) const fn attempt(self) -> Attempt {
        match self.resync {
            None => Attempt::Normal,
            Some(max_tries) => Attempt::Resync { max_tries },
        }
    }
}

pub use ipsec_core::{ReplayGuard, ResyncCounter, ResyncPolicy};

/// AH's part of the shared inbound core ([`ipsec_core::inbound`]): the constant-time
/// ICV check of the packet at `b[packet]`. The check puts the packet back whatever the
/// outcome (the mutable fields and the AES-GMAC ESN scratch), so there is nothing to
/// restore between re-synchronization tries.
struct AhVerifier<'a> {
    xf: &'a Transform,
    b: &'a mut [u8],
    packet: Range<usize>,
    p: &'a Parsed,
}

impl Verifier for AhVerifier<'_> {
    type Error = OpenError;

    #[inline]
    fn prepare(&mut self, _: Attempt) -> Result<(), OpenError> {
        let Range { start, end } = self.packet;
        if !self.xf.scratch_fits(self.b.len(), start, end) {
            let s = self.xf.scratch();
            return Err(OpenError::InsufficientRoom { head: s, tail: s });
        }
        Ok(())
    }

    #[inline]
    fn verify(&mut self, seq: u64) -> bool {
        let icv = self.p.icv.get(..self.xf.layout.icv_len).unwrap_or(&[]);
        self.xf
            .mac(
                self.b,
                self.packet.clone(),
                &self.p.loc,
                &self.p.plan,
                seq,
                Op::Verify(icv),
            )
            .is_ok()
    }
}

/// Parse → the shared inbound core (pre-check, ICV check, mark; or the
/// re-synchronization loop). Returns what was found and the body start.
pub(crate) fn verify<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
    xf: &Transform,
    spi: Spi,
    replay: &mut R,
    buf: &mut PacketBuf<B>,
    attempt: Attempt,
) -> Result<(Parsed, usize), OpenError> {
    let r = buf.body_range();
    let (mut p, low) = parse(xf, spi, buf)?;
    let end = r.start.saturating_add(p.loc.total_len);
    let (b, _, _) = buf.raw_mut();
    let mut v = AhVerifier {
        xf,
        b,
        packet: r.start..end,
        p: &p,
    };
    let facts = SeqFacts { low, esn: xf.esn };
    p.seq = inbound::open(replay, facts, attempt, &mut v)
        .map_err(|e| e.into_error(OpenError::Replay, OpenError::Integrity))?;
    Ok((p, r.start))
}

/// The checks before any crypto; returns what was found and the low sequence bits.
fn parse<B: AsRef<[u8]> + AsMut<[u8]>>(
    xf: &Transform,
    spi: Spi,
    buf: &mut PacketBuf<B>,
) -> Result<(Parsed, u32), OpenError> {
    let body = buf.body_mut();
    let loc = ip::locate(body, Walk::ToAh).map_err(OpenError::Malformed)?;
    let pkt = body.get_mut(..loc.total_len).unwrap_or(&mut []);
    let at = |e: ParseError| OpenError::Malformed(e.at(loc.hdr_len));
    let (got_spi, seq_lo, next_header, ah_len, icv) = {
        let ah = AhPacket::parse(pkt.get(loc.hdr_len..).unwrap_or(&[])).map_err(at)?;
        xf.layout.check(ah.ah_len(), loc.family).map_err(at)?;
        let parts = xf.layout.split(&ah).map_err(at)?;
        let mut icv = [0u8; MAX_ICV_LEN];
        if let Some(d) = icv.get_mut(..parts.icv.len()) {
            d.copy_from_slice(parts.icv);
        }
        (ah.spi(), ah.seq(), ah.next_header(), ah.ah_len(), icv)
    };
    if got_spi != spi {
        return Err(at(ParseError::bad_value(4, "spi")));
    }
    let plan = mutable::check(pkt, &loc).map_err(OpenError::Malformed)?;
    Ok((
        Parsed {
            loc,
            plan,
            seq: 0,
            next_header,
            ah_len,
            icv,
        },
        seq_lo,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(OpenError::Integrity.reason(), "integrity");
        assert_eq!(OpenError::Replay(ReplayError::Duplicate).reason(), "replay");
        assert_eq!(
            OpenError::Malformed(ParseError::truncated(0, 8)).reason(),
            "malformed"
        );
        assert_eq!(OpenError::EcnDrop.reason(), "ecn_drop");
        assert_eq!(
            OpenError::InsufficientRoom { head: 4, tail: 4 }.reason(),
            "insufficient_room"
        );
        assert_eq!(SealError::SequenceExhausted.reason(), "sequence_exhausted");
        assert_eq!(SealError::TooLarge.reason(), "too_large");
    }

    #[test]
    fn with_trailer_uses_tail_or_head_and_restores() {
        let mut b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        // Tailroom.
        with_trailer(&mut b, 2, 5, [0xa, 0xb, 0xc, 0xd], |s| {
            assert_eq!(s, &[3, 4, 5, 0xa, 0xb, 0xc, 0xd]);
            Ok(())
        })
        .unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        // No tailroom: moved to the front.
        with_trailer(&mut b, 4, 10, [0xa, 0xb, 0xc, 0xd], |s| {
            assert_eq!(s, &[5, 6, 7, 8, 9, 10, 0xa, 0xb, 0xc, 0xd]);
            Err(CryptoError::Authentication)
        })
        .unwrap_err();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        // Neither.
        assert!(with_trailer(&mut b, 3, 10, [0; 4], |_| Ok(())).is_err());
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
}
