//! Transport mode ([RFC 4302 §3.1.1]): AH goes between the IP header (with the
//! extension headers that precede it) and the upper-layer protocol of the original
//! packet, and the receiver removes it again.
//!
//! ```text
//! IPv4   |orig IP hdr  |     |      |       |orig IP hdr |    |     |      |
//!        |(any options)| TCP | Data |  ->   |(any opts)  | AH | TCP | Data |
//!
//! IPv6   | orig |ext hdrs|     |      |     | orig |hop-by-hop, dest*, |    |dest|     |      |
//!        |IP hdr|if any  | TCP | Data | ->  |IP hdr|routing, fragment. | AH |opt*| TCP | Data |
//! ```
//!
//! [`AhOutbound::seal_transport`] and [`AhInbound::open_transport`] (with their
//! shared-reference twins) live here, as ESP's `EspOutbound::seal_transport` and
//! `EspInbound::open_transport` live in `ipsec_esp::transport`.
//!
//! [RFC 4302 §3.1.1]: https://www.rfc-editor.org/rfc/rfc4302#section-3.1.1

use ipsec_core::{IpProto, PacketBuf, Spi};

use crate::ip::{self, Located, Walk};
use crate::mutable::{self, Plan};
use crate::sa::{
    addresses, verify, AhInbound, AhOutbound, Op, OpenError, OpenOptions, Opened, Overhead, Parsed,
    ReplayGuard, SealError,
};
use crate::wire::ParseError;
use crate::GMAC_IV_LEN;

impl AhOutbound {
    /// Protects the IPv4 or IPv6 packet in the body in transport mode and returns its
    /// sequence number.
    ///
    /// AH goes after the IPv4 header (with options) or after the IPv6 header and the
    /// extension headers that precede it (hop-by-hop, destination options followed by
    /// a routing header, routing, an atomic fragment header; RFC 4302 §3.1.1 with the
    /// RFC 8200 §4.1 order). The IP header moves into the headroom; length, protocol /
    /// next header and IPv4 checksum are fixed. Bytes behind the IP length field are
    /// dropped from the body.
    ///
    /// # Errors
    /// [`SealError::Malformed`] (not a whole, well-formed packet),
    /// [`SealError::InsufficientRoom`], [`SealError::TooLarge`],
    /// [`SealError::SequenceExhausted`], [`SealError::Crypto`]. The body is unchanged
    /// and no sequence number is used in every case but the last.
    pub fn seal_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
    ) -> Result<u64, SealError> {
        let t = self.plan_transport(buf)?;
        let seq = self.seq.next().map_err(|_| SealError::SequenceExhausted)?;
        let iv = self.take_iv(seq);
        self.finish_transport(buf, &t, seq, iv)?;
        Ok(seq)
    }

    /// Protects like [`AhOutbound::seal_transport`], with the sequence number `seq`
    /// chosen by the caller instead of taken from this SA's counter, through a shared
    /// reference. Returns `seq` (as ESP's `seal_*_at` do).
    ///
    /// This is for data planes that protect packets of one SA on several threads at
    /// once: they hand out sequence numbers themselves (an atomic counter) and call
    /// this without a lock. **The caller guarantees that `seq` is never used twice**
    /// with this SA's key: it is the receiver's replay protection, and with AES-GMAC
    /// it is the IV, whose repetition reveals the authentication key. The SA's own
    /// counter is not touched.
    ///
    /// # Errors
    /// As [`AhOutbound::seal_transport`]; [`SealError::SequenceExhausted`] when `seq`
    /// is 0 or beyond the limit (2^32 - 1 without ESN). The body is unchanged on every
    /// error but [`SealError::Crypto`].
    pub fn seal_transport_at<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        seq: u64,
    ) -> Result<u64, SealError> {
        self.check_seq(seq)?;
        let t = self.plan_transport(buf)?;
        self.finish_transport(buf, &t, seq, seq.to_be_bytes())?;
        Ok(seq)
    }

    /// Everything a transport-mode seal checks before it changes a byte.
    fn plan_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
    ) -> Result<TransportPlan, SealError> {
        let loc = ip::locate(buf.body(), Walk::Protect).map_err(SealError::Malformed)?;
        let o = self.overhead(loc.family);
        let start = buf.body_range().start;
        let end = start.saturating_add(loc.total_len);
        self.room(buf.buffer().len(), start, end, o)?;
        if loc.total_len.saturating_add(o.head) > ip::max_total(loc.family) {
            return Err(SealError::TooLarge);
        }
        let (b, _, _) = buf.raw_mut();
        let pkt = b
            .get_mut(start..end)
            .ok_or(SealError::Malformed(ParseError::truncated(0, 1)))?;
        let plan = mutable::check(pkt, &loc).map_err(SealError::Malformed)?;
        Ok(TransportPlan {
            loc,
            plan,
            o,
            start,
            end,
        })
    }

    fn finish_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        buf: &mut PacketBuf<B>,
        t: &TransportPlan,
        seq: u64,
        iv: [u8; GMAC_IV_LEN],
    ) -> Result<(), SealError> {
        let TransportPlan {
            loc,
            plan,
            o,
            start,
            end,
        } = *t;
        let ah_len = o.head;
        let new_total = loc.total_len.saturating_add(ah_len);
        let hl = loc.hdr_len;
        let new_start = start.saturating_sub(ah_len);
        let ah_start = new_start.saturating_add(hl);
        let err = SealError::InsufficientRoom {
            head: o.head,
            tail: o.tail,
        };
        let (b, _, _) = buf.raw_mut();
        b.copy_within(start..start.saturating_add(hl), new_start);
        let built = (|| {
            let ah = b
                .get_mut(ah_start..ah_start.saturating_add(ah_len))
                .ok_or(err)?;
            self.emit_ah(ah, loc.proto, seq, ah_len, iv)?;
            let hdr = b.get_mut(new_start..ah_start).ok_or(err)?;
            ip::fix(hdr, loc.family, new_total, loc.proto_offset, IpProto::AH)
                .map_err(SealError::Malformed)?;
            let new_loc = Located {
                total_len: new_total,
                proto: IpProto::AH,
                ..loc
            };
            self.xf
                .mac(b, new_start..end, &new_loc, &plan, seq, Op::Sign)
                .map_err(SealError::Crypto)
        })();
        if let Err(e) = built {
            // Put the packet back as it was (its checksum recomputed).
            b.copy_within(new_start..ah_start, start);
            if let Some(hdr) = b.get_mut(start..start.saturating_add(hl)) {
                let _ = ip::fix(hdr, loc.family, loc.total_len, loc.proto_offset, loc.proto);
            }
            return Err(e);
        }
        buf.set_cursors(new_start, end);
        Ok(())
    }
}

/// What [`AhOutbound`] checked before a transport-mode seal.
#[derive(Clone, Copy)]
struct TransportPlan {
    loc: Located,
    plan: Plan,
    o: Overhead,
    start: usize,
    end: usize,
}

impl AhInbound {
    /// Verifies a transport-mode packet with this SA's own anti-replay window and
    /// rebuilds the original: the IP header (with the extension headers in front of AH)
    /// followed by the payload, with length, protocol / next header and IPv4 checksum
    /// restored.
    ///
    /// In order: parse (IP header, extension headers, AH, SPI, AH length for the
    /// transform, options) → anti-replay pre-check with ESN inference → ICV check in
    /// constant time → **only then** mark the window → remove the AH. The sequence
    /// between parse and removal is the shared inbound core, [`ipsec_core::inbound`],
    /// which documents the ordering; with [`OpenOptions::resync`] the packet is a
    /// re-synchronization attempt (see there). The IPv4 header checksum is not checked:
    /// it is mutable for AH and the network layer checks it.
    ///
    /// # Errors
    /// [`OpenError::Malformed`], [`OpenError::Replay`], [`OpenError::Integrity`],
    /// [`OpenError::InsufficientRoom`]. The body is unchanged on every error.
    pub fn open_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        buf: &mut PacketBuf<B>,
        opts: OpenOptions,
    ) -> Result<Opened, OpenError> {
        let Self { spi, xf, window } = self;
        let (p, start) = verify(xf, *spi, window, buf, opts.attempt())?;
        unframe_transport(*spi, buf, &p, start)
    }

    /// Opens like [`AhInbound::open_transport`], through a shared reference, with the
    /// anti-replay window kept by the caller in `replay` (this SA's own window is
    /// neither read nor changed). `replay` is asked before verification and marked only
    /// after it, exactly as in [`AhInbound::open_transport`]; between the two nothing of
    /// `replay` is borrowed, so the caller may release a lock around it meanwhile.
    ///
    /// # Errors
    /// As [`AhInbound::open_transport`].
    pub fn open_transport_with<B: AsRef<[u8]> + AsMut<[u8]>, R: ReplayGuard + ?Sized>(
        &self,
        buf: &mut PacketBuf<B>,
        replay: &mut R,
        opts: OpenOptions,
    ) -> Result<Opened, OpenError> {
        let (p, start) = verify(&self.xf, self.spi, replay, buf, opts.attempt())?;
        unframe_transport(self.spi, buf, &p, start)
    }
}

/// Removes the AH of a verified transport-mode packet and fixes the IP header.
fn unframe_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
    spi: Spi,
    buf: &mut PacketBuf<B>,
    p: &Parsed,
    start: usize,
) -> Result<Opened, OpenError> {
    let (b, _, _) = buf.raw_mut();
    let hl = p.loc.hdr_len;
    let end = start.saturating_add(p.loc.total_len);
    let payload = start.saturating_add(hl).saturating_add(p.ah_len);
    let new_start = payload.saturating_sub(hl);
    let (src, dst) = addresses(b.get(start..end).unwrap_or(&[]), p.loc.family);
    b.copy_within(start..start.saturating_add(hl), new_start);
    let hdr = b.get_mut(new_start..payload).unwrap_or(&mut []);
    let new_total = p.loc.total_len.saturating_sub(p.ah_len);
    ip::fix(
        hdr,
        p.loc.family,
        new_total,
        p.loc.proto_offset,
        p.next_header,
    )
    .map_err(OpenError::Malformed)?;
    buf.set_cursors(new_start, end);
    Ok(Opened {
        spi,
        seq: p.seq,
        next_header: p.next_header,
        src,
        dst,
        ah_len: p.ah_len,
    })
}
