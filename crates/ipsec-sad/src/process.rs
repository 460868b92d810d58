//! The RFC 4301 §5 processing model in two calls.

use core::sync::atomic::Ordering::Relaxed;

use ipsec_core::{Instant, IpProto, PacketBuf, SecurityProtocol, Spi};
use ipsec_esp::udp::{self, Classified, UdpPorts};

use crate::classify::{parse_ip, Direction, FlowKey, PortValue};
use crate::event::{Acquire, Event};
use crate::sa::{Sa, SaId, Shape};
use crate::sad::{with_inbound, Sad, SadReader, Tables};
use crate::spd::{Action, PolicyId};
use crate::stats::DropReason;
use crate::trace;

/// Bytes of headroom that [`Sad::process_outbound`] needs at most in front of the
/// packet: an outer IPv6 header (40), UDP (8), ESP header (8) and IV (16).
pub const MAX_HEADROOM: usize = 72;
/// Bytes of tailroom that [`Sad::process_outbound`] needs at most behind the packet:
/// padding (15), pad length and next header (2), ICV (32).
pub const MAX_TAILROOM: usize = 49;

/// What [`Sad::process_outbound`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outbound {
    /// Protected: the buffer holds the packet to send (outer IP header in tunnel
    /// mode; UDP-encapsulated when the SA says so).
    Protect {
        /// The SA that sealed it.
        sa: SaId,
        /// Its outbound SPI.
        spi: Spi,
        /// The sequence number used.
        seq: u64,
        /// The rule that matched.
        policy: PolicyId,
    },
    /// Send it as it is.
    Bypass(PolicyId),
    /// Drop it: a DISCARD rule matched (`Some`), or no rule did (`None`).
    Discard(Option<PolicyId>),
    /// A PROTECT rule matched but has no usable SA: drop (or queue) the packet and
    /// negotiate one. An [`Event::Acquire`] is queued too (rate-limited).
    Acquire(Acquire),
    /// Not sent, for this reason.
    Drop(DropReason),
}

/// Why [`Sad::outbound_with`] did not hand the packet to an SA: the non-PROTECT
/// verdicts of [`Outbound`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum NotSealed {
    Bypass(PolicyId),
    Discard(Option<PolicyId>),
    Acquire(Acquire),
    Drop(DropReason),
}

/// What [`Sad::process_inbound`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// Authentic and within the SA's selectors: the buffer holds the inner packet.
    Deliver {
        /// The SA it arrived on.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
        /// Its (ESN-inferred) sequence number.
        seq: u64,
        /// What the inner packet is (IPv4/IPv6 in tunnel mode, the transport protocol
        /// in transport mode).
        next_header: IpProto,
        /// The UDP ports when it came ESP-in-UDP (a change tells of a NAT rebinding).
        udp: Option<UdpPorts>,
    },
    /// A plaintext packet that a BYPASS rule lets through; the buffer is unchanged.
    Bypass(PolicyId),
    /// Dropped for this reason.
    Drop(DropReason),
}

impl Sad {
    /// Outbound processing (RFC 4301 §5.1) of the IP packet in `buf`: SPD lookup, then
    /// BYPASS, DISCARD, or PROTECT with the rule's SA (ESP seal, tunnel or transport
    /// framing, UDP encapsulation). Allocates nothing.
    ///
    /// The buffer needs [`MAX_HEADROOM`] bytes of headroom and [`MAX_TAILROOM`] bytes of
    /// tailroom (less for most suites); with too little the packet is dropped with
    /// [`DropReason::NoRoom`] and its sequence number is not reused.
    pub fn process_outbound<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
    ) -> Outbound {
        let sealed = self.outbound_with(now, buf, |sa, policy, buf| {
            let seq = sa.seal(now, buf, &self.events, Shape::Datagram, &sa.path())?;
            Ok(Outbound::Protect {
                sa: sa.id,
                spi: sa.outbound_spi,
                seq,
                policy,
            })
        });
        match sealed {
            Ok(o) => o,
            Err(NotSealed::Bypass(p)) => Outbound::Bypass(p),
            Err(NotSealed::Discard(p)) => Outbound::Discard(p),
            Err(NotSealed::Acquire(a)) => Outbound::Acquire(a),
            Err(NotSealed::Drop(r)) => Outbound::Drop(r),
        }
    }

    /// The outbound pipeline up to the SA: SPD lookup, BYPASS, DISCARD, the rule's SA
    /// (live, in time, covering the packet), then `protect` with that SA and the rule;
    /// an SA that `protect` finds expired triggers an ACQUIRE like a missing one.
    pub(crate) fn outbound_with<B: AsRef<[u8]> + AsMut<[u8]>, R>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        protect: impl FnOnce(&Sa, PolicyId, &mut PacketBuf<B>) -> Result<R, DropReason>,
    ) -> Result<R, NotSealed> {
        let key = match FlowKey::parse(buf.body(), Direction::Outbound) {
            Ok(k) => k,
            Err(_) => return Err(self.drop_out(DropReason::Malformed)),
        };
        let pol = self.outbound.load();
        let Some(pos) = pol.spd.lookup(&key) else {
            self.count_drop(Direction::Outbound, DropReason::PolicyDiscard, None);
            return Err(NotSealed::Discard(None));
        };
        let (Some(rule), Some(slot)) = (pol.spd.rules().get(pos), pol.slots.get(pos)) else {
            return Err(self.drop_out(DropReason::PolicyDiscard));
        };
        let template = match rule.action {
            Action::Bypass => return Err(NotSealed::Bypass(rule.id)),
            Action::Discard => {
                self.count_drop(Direction::Outbound, DropReason::PolicyDiscard, None);
                return Err(NotSealed::Discard(Some(rule.id)));
            }
            Action::Protect(t) => t,
        };
        let sa = slot.sa.load();
        match sa.as_deref() {
            Some(sa)
                if sa.is_live() && sa.check_time(now, &self.events) && sa.covers_outbound(&key) =>
            {
                match protect(sa, rule.id, buf) {
                    Ok(r) => Ok(r),
                    Err(DropReason::Expired) => {
                        Err(self.acquire(now, slot, rule.id, template, key))
                    }
                    Err(e) => Err(NotSealed::Drop(e)),
                }
            }
            _ => Err(self.acquire(now, slot, rule.id, template, key)),
        }
    }

    fn drop_out(&self, r: DropReason) -> NotSealed {
        self.count_drop(Direction::Outbound, r, None);
        NotSealed::Drop(r)
    }

    /// Counts a packet dropped before an SA was found, in the SAD's own counters (and
    /// traces it); `spi`: the SPI it named, if it got that far.
    pub(crate) fn count_drop(&self, dir: Direction, r: DropReason, spi: Option<Spi>) {
        self.drops.add(r);
        match spi {
            Some(spi) => trace::trace!(
                spi = %spi,
                direction = ?dir,
                reason = r.as_str(),
                "packet dropped"
            ),
            None => trace::trace!(direction = ?dir, reason = r.as_str(), "packet dropped"),
        }
    }

    fn acquire(
        &self,
        now: Instant,
        slot: &crate::sad::Slot,
        policy: PolicyId,
        template: crate::spd::SaTemplate,
        flow: FlowKey,
    ) -> NotSealed {
        let a = Acquire {
            policy,
            template,
            flow,
        };
        let retry = u64::try_from(self.config.acquire_retry.as_nanos()).unwrap_or(u64::MAX);
        // 0 means "never": the first acquire always fires.
        let last = slot.last_acquire.load(Relaxed);
        let due = last == 0 || now.0.saturating_sub(last) >= retry;
        if due
            && slot
                .last_acquire
                .compare_exchange(last, now.0.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            self.events.push(Event::Acquire(a));
        }
        NotSealed::Acquire(a)
    }

    /// Inbound processing (RFC 4301 §5.2) of the IP datagram in `buf`: ESP (directly or
    /// in UDP on [`SadConfig::nat_t_port`](crate::SadConfig::nat_t_port)) is looked up
    /// by SPI, replay-checked, verified, decrypted, unframed and checked against the
    /// SA's selectors (AH likewise); anything else goes through the inbound SPD.
    /// Allocates nothing. A thread that processes many packets does better with a
    /// [`SadReader`](crate::SadReader) ([`Sad::reader`]).
    pub fn process_inbound<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        now: Instant,
        buf: &mut PacketBuf<B>,
    ) -> Inbound {
        inbound(&mut &*self, now, buf)
    }

    pub(crate) fn drop_in(&self, r: DropReason) -> Inbound {
        self.count_drop(Direction::Inbound, r, None);
        Inbound::Drop(r)
    }
}

impl SadReader<'_> {
    /// As [`Sad::process_inbound`], without a memory barrier per packet.
    pub fn process_inbound<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
    ) -> Inbound {
        inbound(self, now, buf)
    }
}

fn inbound<'s, T: Tables<'s>, B: AsRef<[u8]> + AsMut<[u8]>>(
    tables: &mut T,
    now: Instant,
    buf: &mut PacketBuf<B>,
) -> Inbound {
    let sad = tables.sad();
    let ip = match parse_ip(buf.body()) {
        Ok(ip) => ip,
        Err(_) => return sad.drop_in(DropReason::Malformed),
    };
    let body = buf.body();
    // (protocol, offset of the SPI)
    let found = match ip.proto {
        IpProto::ESP => Some((SecurityProtocol::Esp, ip.l4)),
        IpProto::UDP if ip.dst_port == PortValue::Port(sad.config.nat_t_port) => {
            let payload = body.get(ip.l4.saturating_add(8)..ip.end).unwrap_or(&[]);
            match udp::classify(payload) {
                Classified::Esp(_) => Some((SecurityProtocol::Esp, ip.l4.saturating_add(8))),
                Classified::Keepalive => return sad.drop_in(DropReason::NatKeepalive),
                Classified::Ike(_) => None,
                Classified::Malformed => return sad.drop_in(DropReason::Malformed),
            }
        }
        // AH: next header, length, reserved, then the SPI.
        IpProto::AH => Some((SecurityProtocol::Ah, ip.l4.saturating_add(4))),
        _ => None,
    };
    let Some((protocol, at)) = found else {
        return plaintext_in(tables, buf);
    };
    if ip.fragment {
        return sad.drop_in(DropReason::Fragment);
    }
    let spi = match body.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => Spi::from_be_bytes([a, b, c, d]),
        _ => return sad.drop_in(DropReason::Malformed),
    };
    let events = &sad.events;
    let r = with_inbound(tables, spi, protocol, ip.dst, ip.src, |sa| {
        if !sa.is_live() {
            sa.count_drop(Direction::Inbound, DropReason::Expired);
            return Inbound::Drop(DropReason::Expired);
        }
        match sa.open(now, buf, events) {
            Ok(o) => Inbound::Deliver {
                sa: sa.id,
                spi,
                seq: o.seq,
                next_header: o.next_header,
                udp: o.udp,
            },
            Err(e) => Inbound::Drop(e),
        }
    });
    r.unwrap_or_else(|| {
        let r = DropReason::UnknownSpi;
        tables.sad().count_drop(Direction::Inbound, r, Some(spi));
        Inbound::Drop(r)
    })
}

fn plaintext_in<'s, T: Tables<'s>, B: AsRef<[u8]> + AsMut<[u8]>>(
    tables: &mut T,
    buf: &PacketBuf<B>,
) -> Inbound {
    let Ok(key) = FlowKey::parse(buf.body(), Direction::Inbound) else {
        return tables.sad().drop_in(DropReason::Malformed);
    };
    let verdict = tables.with_inbound_spd(|spd| spd.lookup_rule(&key).map(|r| (r.id, r.action)));
    let sad = tables.sad();
    match verdict {
        Some((id, Action::Bypass)) => Inbound::Bypass(id),
        // RFC 4301 §5.2 step 3a: traffic that should have been protected.
        Some((_, Action::Protect(_))) => sad.drop_in(DropReason::Unprotected),
        Some((_, Action::Discard)) | None => sad.drop_in(DropReason::PolicyDiscard),
    }
}
