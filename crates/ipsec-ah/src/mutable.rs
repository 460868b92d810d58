//! The ICV input: the packet with its mutable fields zeroed and its "mutable but
//! predictable" fields set to the values they will have at the receiver
//! ([RFC 4302 §3.3.3.1]).
//!
//! ```text
//! IPv4 (§3.3.3.1.1)                         IPv6 (§3.3.3.1.2)
//! +-------+-------+-------+--------+        +-------+--------+------------+
//! |Version|  IHL  |  TOS  | Length |        |Version| Traffic| Flow Label |
//! |     Ident     | Flags |FragOff |        |       | Class  |            |
//! |  TTL  | Proto |   Checksum     |        | Payload Length | NH | HopLim|
//! |         Source Address         |        |        Source Address       |
//! |  Destination Address (final)   |        |  Destination Address (final)|
//! |  Options (Appendix A.1)        |        |  HbH / DstOpts: data of     |
//! +--------------------------------+        |  options with bit 0x20 set  |
//!                                           |  Routing type 0/2: as at the|
//!                                           |  final destination          |
//!                                           +-----------------------------+
//!   zeroed: TOS, flags, fragment offset, TTL, checksum, the whole of every
//!   option not in the immutable list; source-routed packets use the final
//!   destination. IPv6 zeroes traffic class, flow label, hop limit.
//! ```
//!
//! The SAs do the transformation **in place** and undo it afterwards, because
//! AES-GMAC takes its input as one contiguous AAD. Everything is validated before the
//! first byte changes, so neither step can fail half way. [`icv_input`] does the same
//! without the undo, for inspection and tests.
//!
//! [RFC 4302 §3.3.3.1]: https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.1

use ipsec_core::ip::{Ipv4Header, Ipv6Header};
use zerocopy::FromBytes;

use crate::ip::{self, ext_len, Located, Walk, DSTOPTS, FRAGMENT, HOPOPT, ROUTING};
use crate::wire::{AhLayout, AhPacket, Family, ParseError, HEADER_LEN};

/// The most option data of IPv6 options marked "may change en route" that one packet
/// may carry in front of its AH. The data is saved while it is zeroed for the ICV;
/// packets with more are refused as malformed (RFC 8504 §5.3 lets nodes limit
/// extension-header options; no standard option comes near this).
pub const MAX_MUTABLE_OPTION_BYTES: usize = 1024;

/// The IPv6 option type bit that says the option data may change en route
/// (RFC 8200 §4.2).
pub const IPV6_OPTION_MUTABLE: u8 = 0x20;

/// How an IPv4 option enters the ICV computation (RFC 4302 Appendix A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ipv4OptionClass {
    /// Included as is: End of Options List, No Operation, Security, Extended Security,
    /// Commercial Security, Router Alert, Sender Directed Multi-Destination Delivery.
    Immutable,
    /// Zeroed as a whole, type and length included: Record Route, Timestamp,
    /// Experimental Flow Control, every experimental or superseded option, and every
    /// option this table does not know.
    Mutable,
    /// Loose or Strict Source Route: zeroed as a whole, and the destination address
    /// is the final one of the route (§3.3.3.1.1.1, "mutable but predictable").
    SourceRoute,
}

/// The class of an IPv4 option by its full type byte (copy flag, class and number).
///
/// RFC 4302 Appendix A.1 lists the immutable options by their full type values
/// (0, 1, 130, 133, 134, 148, 149); everything else is zeroed. Unknown options are
/// treated as mutable, the only choice that never makes a packet fail in transit.
pub const fn ipv4_option_class(option_type: u8) -> Ipv4OptionClass {
    match option_type {
        0 | 1 | 130 | 133 | 134 | 148 | 149 => Ipv4OptionClass::Immutable,
        131 | 137 => Ipv4OptionClass::SourceRoute,
        _ => Ipv4OptionClass::Mutable,
    }
}

/// True when an IPv6 hop-by-hop or destination option's data is zeroed for the ICV
/// (RFC 4302 §3.3.3.1.2.2, RFC 8200 §4.2: the third-highest bit of the type).
pub const fn ipv6_option_is_mutable(option_type: u8) -> bool {
    option_type & IPV6_OPTION_MUTABLE != 0
}

const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const PAD1: u8 = 0;
const ADDR6: usize = 16;

/// A routing header to present as it will be at the final destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Route {
    /// Offset of the routing header in the packet.
    off: usize,
    /// Number of addresses.
    n: usize,
    /// Segments left.
    s: usize,
}

/// What [`check`] found: the predictable fields to rewrite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// IPv4: the final destination of a source route not yet completed.
    final_dst_v4: Option<[u8; 4]>,
    /// IPv6: a type 0 or type 2 routing header with segments left.
    route: Option<Route>,
    /// IPv6: bytes of option data marked "may change" in front of AH.
    opt_bytes: usize,
}

/// Scratch space for undoing [`apply`]: the IP header as it was and the zeroed
/// IPv6 option data.
pub(crate) struct Undo<'a> {
    header: [u8; 60],
    opts: &'a mut [u8],
}

impl<'a> Undo<'a> {
    /// Scratch with `opts` as room for the option data ([`Plan::opt_bytes`] bytes).
    pub(crate) fn new(opts: &'a mut [u8]) -> Self {
        Undo {
            header: [0; 60],
            opts,
        }
    }
}

impl Plan {
    /// Bytes of mutable IPv6 option data [`apply`] will save.
    pub(crate) const fn opt_bytes(&self) -> usize {
        self.opt_bytes
    }
}

/// Runs `f` with scratch space for [`apply`] and [`restore`] on the stack.
fn with_undo<R>(plan: &Plan, f: impl FnOnce(&mut Undo<'_>) -> R) -> R {
    let mut opts = [0u8; MAX_MUTABLE_OPTION_BYTES];
    let opts = opts.get_mut(..plan.opt_bytes).unwrap_or(&mut []);
    f(&mut Undo::new(opts))
}

/// Walks IPv4 options (`area` = the bytes after the fixed header) and calls `f` with
/// each option's type and bytes. Stops at End of Options List: what follows it is
/// padding and is included as is.
fn v4_options(
    area: &mut [u8],
    base: usize,
    mut f: impl FnMut(u8, &mut [u8], usize) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut off = 0usize;
    while let Some(&t) = area.get(off) {
        match t {
            OPT_EOL => return Ok(()),
            OPT_NOP => {
                off = off.saturating_add(1);
                continue;
            }
            _ => {}
        }
        let at = base.saturating_add(off);
        let len = area
            .get(off.saturating_add(1))
            .copied()
            .ok_or(ParseError::truncated(at, 2))?;
        let len = usize::from(len);
        if len < 2 {
            return Err(ParseError::length_field(at.saturating_add(1)));
        }
        let end = off.saturating_add(len);
        let opt = area
            .get_mut(off..end)
            .ok_or(ParseError::length_field(at.saturating_add(1)))?;
        f(t, opt, at)?;
        off = end;
    }
    Ok(())
}

/// Walks the options of an IPv6 hop-by-hop or destination options header (`hdr` =
/// the whole header) and calls `f` with each option's type and data.
fn v6_options(
    hdr: &mut [u8],
    base: usize,
    mut f: impl FnMut(u8, &mut [u8]),
) -> Result<(), ParseError> {
    let area = hdr.get_mut(2..).ok_or(ParseError::truncated(base, 2))?;
    let mut off = 0usize;
    while let Some(&t) = area.get(off) {
        if t == PAD1 {
            off = off.saturating_add(1);
            continue;
        }
        let at = base.saturating_add(2).saturating_add(off);
        let len = area
            .get(off.saturating_add(1))
            .copied()
            .ok_or(ParseError::truncated(at, 2))?;
        let start = off.saturating_add(2);
        let end = start.saturating_add(usize::from(len));
        let data = area
            .get_mut(start..end)
            .ok_or(ParseError::length_field(at.saturating_add(1)))?;
        f(t, data);
        off = end;
    }
    Ok(())
}

/// Calls `f(offset, header)` for every hop-by-hop and destination options header in
/// front of `hdr_len` (a chain [`crate::ip::locate`] accepted).
fn v6_option_headers(
    pkt: &mut [u8],
    hdr_len: usize,
    mut f: impl FnMut(usize, &mut [u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut nh = pkt.get(6).copied().ok_or(ParseError::truncated(6, 1))?;
    let mut off = Ipv6Header::LEN;
    while off < hdr_len {
        let len = ext_len(pkt, off, nh)?;
        let end = off.saturating_add(len);
        let hdr = pkt
            .get_mut(off..end)
            .ok_or(ParseError::truncated(off, len))?;
        let next = hdr.first().copied().ok_or(ParseError::truncated(off, 1))?;
        match nh {
            HOPOPT | DSTOPTS => f(off, hdr)?,
            ROUTING | FRAGMENT => {}
            _ => return Err(ParseError::bad_value(off, "extension header")),
        }
        nh = next;
        off = end;
    }
    Ok(())
}

/// Rewrites `packet`, a whole IPv4 or IPv6 packet carrying AH whose transform has
/// `layout`, into the bytes its ICV is computed over: mutable fields and the ICV
/// zeroed, predictable fields as at the receiver. The ESN high bits, which follow
/// these bytes in the computation, are not included. Returns the packet length (the
/// IP length field; bytes behind it are not touched).
///
/// # Errors
/// [`ParseError`] when the packet is not well formed, is a fragment, carries no AH,
/// or its AH is too short for `layout`. The packet is unchanged then.
pub fn icv_input(packet: &mut [u8], layout: &AhLayout) -> Result<usize, ParseError> {
    let loc = ip::locate(packet, Walk::ToAh)?;
    let total = loc.total_len;
    let pkt = packet
        .get_mut(..total)
        .ok_or(ParseError::truncated(0, total))?;
    {
        let ah = AhPacket::parse(pkt.get(loc.hdr_len..).unwrap_or(&[]))
            .map_err(|e| e.at(loc.hdr_len))?;
        layout.split(&ah).map_err(|e| e.at(loc.hdr_len))?;
    }
    let plan = check(pkt, &loc)?;
    with_undo(&plan, |undo| apply(pkt, &loc, &plan, undo));
    let icv = loc
        .hdr_len
        .saturating_add(HEADER_LEN)
        .saturating_add(layout.iv_len);
    if let Some(s) = pkt.get_mut(icv..icv.saturating_add(layout.icv_len)) {
        s.fill(0);
    }
    Ok(total)
}

/// Validates everything [`apply`] will touch in `pkt` (the packet from its IP header;
/// `loc.hdr_len` is where AH is or goes) and plans the rewrites.
pub(crate) fn check(pkt: &mut [u8], loc: &Located) -> Result<Plan, ParseError> {
    let mut plan = Plan::default();
    match loc.family {
        Family::Ipv4 => {
            let hl = loc.hdr_len;
            if hl > 60 {
                return Err(ParseError::bad_value(0, "ihl"));
            }
            let dst_final = &mut plan.final_dst_v4;
            let mut seen_route = false;
            let area = pkt
                .get_mut(Ipv4Header::LEN..hl)
                .ok_or(ParseError::truncated(0, hl))?;
            v4_options(area, Ipv4Header::LEN, |t, opt, at| {
                if ipv4_option_class(t) != Ipv4OptionClass::SourceRoute {
                    return Ok(());
                }
                if seen_route {
                    return Err(ParseError::bad_value(at, "second source route option"));
                }
                seen_route = true;
                // type, length, pointer, then 4-byte addresses (RFC 791).
                let len = opt.len();
                if len < 3 || len.saturating_sub(3) % 4 != 0 {
                    return Err(ParseError::length_field(at.saturating_add(1)));
                }
                let ptr = usize::from(opt.get(2).copied().unwrap_or(0));
                if ptr < 4 {
                    return Err(ParseError::bad_value(
                        at.saturating_add(2),
                        "source route pointer",
                    ));
                }
                // Pointer past the end: the route is complete and the header's
                // destination is already the final one. Otherwise the last address of
                // the route is where the packet will arrive.
                if ptr <= len && len >= 7 {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(opt.get(len.saturating_sub(4)..).unwrap_or(&[0; 4]));
                    *dst_final = Some(a);
                }
                Ok(())
            })?;
        }
        Family::Ipv6 => {
            let mut opt_bytes = 0usize;
            v6_option_headers(pkt, loc.hdr_len, |off, hdr| {
                v6_options(hdr, off, |t, data| {
                    if ipv6_option_is_mutable(t) {
                        opt_bytes = opt_bytes.saturating_add(data.len());
                    }
                })
            })?;
            plan.opt_bytes = opt_bytes;
            if opt_bytes > MAX_MUTABLE_OPTION_BYTES {
                return Err(ParseError::bad_value(
                    Ipv6Header::LEN,
                    "mutable option data too long",
                ));
            }
            plan.route = find_route(pkt, loc.hdr_len)?;
        }
    }
    Ok(plan)
}

/// Finds a type 0 or type 2 routing header in front of `hdr_len` with segments left.
fn find_route(pkt: &[u8], hdr_len: usize) -> Result<Option<Route>, ParseError> {
    let mut nh = pkt.get(6).copied().ok_or(ParseError::truncated(6, 1))?;
    let mut off = Ipv6Header::LEN;
    while off < hdr_len {
        let len = ext_len(pkt, off, nh)?;
        if nh == ROUTING {
            let hdr = pkt
                .get(off..off.saturating_add(len))
                .ok_or(ParseError::truncated(off, len))?;
            let (ext_len_field, rtype, s) = match hdr {
                [_, l, t, s, ..] => (usize::from(*l), *t, usize::from(*s)),
                _ => return Err(ParseError::truncated(off, 8)),
            };
            // Type 0 (RFC 2460, deprecated by RFC 5095) and type 2 (RFC 6275) carry
            // plain addresses that the hops swap with the destination; other types
            // (RPL, segment routing) are included as they are.
            if rtype == 0 || rtype == 2 {
                if ext_len_field % 2 != 0 {
                    return Err(ParseError::length_field(off.saturating_add(1)));
                }
                let n = ext_len_field / 2;
                if s > n || (rtype == 2 && n != 1) {
                    return Err(ParseError::bad_value(
                        off.saturating_add(3),
                        "segments left",
                    ));
                }
                if s > 0 {
                    return Ok(Some(Route { off, n, s }));
                }
            }
            return Ok(None);
        }
        nh = pkt.get(off).copied().ok_or(ParseError::truncated(off, 1))?;
        off = off.saturating_add(len);
    }
    Ok(None)
}

/// Puts the IP header into its ICV form in place, saving what it changes into `undo`.
/// `plan` comes from [`check`] on the same bytes.
pub(crate) fn apply(pkt: &mut [u8], loc: &Located, plan: &Plan, undo: &mut Undo<'_>) {
    match loc.family {
        Family::Ipv4 => {
            let hl = loc.hdr_len.min(60);
            if let (Some(save), Some(src)) = (undo.header.get_mut(..hl), pkt.get(..hl)) {
                save.copy_from_slice(src);
            }
            if let Ok((h, _)) = Ipv4Header::mut_from_prefix(&mut *pkt) {
                h.tos = 0;
                h.flags_frag.set(0);
                h.ttl = 0;
                h.checksum.set(0);
                if let Some(d) = plan.final_dst_v4 {
                    h.dst = d;
                }
            }
            if let Some(area) = pkt.get_mut(Ipv4Header::LEN..hl) {
                let _ = v4_options(area, Ipv4Header::LEN, |t, opt, _| {
                    if ipv4_option_class(t) != Ipv4OptionClass::Immutable {
                        opt.fill(0);
                    }
                    Ok(())
                });
            }
        }
        Family::Ipv6 => {
            if let (Some(save), Some(src)) = (
                undo.header.get_mut(..Ipv6Header::LEN),
                pkt.get(..Ipv6Header::LEN),
            ) {
                save.copy_from_slice(src);
            }
            if let Ok((h, _)) = Ipv6Header::mut_from_prefix(&mut *pkt) {
                // Keep the version; zero traffic class and flow label.
                let v = h.ver_tc_flow.get() & 0xf000_0000;
                h.ver_tc_flow.set(v);
                h.hop_limit = 0;
            }
            let mut used = 0usize;
            let opts = &mut *undo.opts;
            let _ = v6_option_headers(pkt, loc.hdr_len, |off, hdr| {
                v6_options(hdr, off, |t, data| {
                    if ipv6_option_is_mutable(t) {
                        let end = used.saturating_add(data.len());
                        if let Some(s) = opts.get_mut(used..end) {
                            s.copy_from_slice(data);
                        }
                        used = end;
                        data.fill(0);
                    }
                })
            });
            if let Some(r) = plan.route {
                rotate(pkt, r, true);
            }
        }
    }
}

/// Undoes [`apply`].
pub(crate) fn restore(pkt: &mut [u8], loc: &Located, plan: &Plan, undo: &Undo<'_>) {
    match loc.family {
        Family::Ipv4 => {
            let hl = loc.hdr_len.min(60);
            if let (Some(dst), Some(save)) = (pkt.get_mut(..hl), undo.header.get(..hl)) {
                dst.copy_from_slice(save);
            }
        }
        Family::Ipv6 => {
            if let Some(r) = plan.route {
                rotate(pkt, r, false);
            }
            let mut used = 0usize;
            let opts = &*undo.opts;
            let _ = v6_option_headers(pkt, loc.hdr_len, |off, hdr| {
                v6_options(hdr, off, |t, data| {
                    if ipv6_option_is_mutable(t) {
                        let end = used.saturating_add(data.len());
                        if let Some(s) = opts.get(used..end) {
                            data.copy_from_slice(s);
                        }
                        used = end;
                    }
                })
            });
            if let (Some(dst), Some(save)) = (
                pkt.get_mut(..Ipv6Header::LEN),
                undo.header.get(..Ipv6Header::LEN),
            ) {
                dst.copy_from_slice(save);
            }
        }
    }
}

/// Presents a type 0/2 routing header as the final destination will see it
/// (`forward`), or undoes that.
///
/// Each hop i (RFC 8200 §4.4 with RFC 2460's type 0 processing) swaps the destination
/// address with address[n - segments_left] and decrements segments left. After the last
/// hop the destination is the last address, the visited part of the list holds the
/// earlier destinations in order, and segments left is 0. That is a rotation by one of
/// (destination, address[n-s], ..., address[n-1]), done here in place; the fixed
/// header (destination included) is restored from the saved copy afterwards, so the
/// backward direction only needs the addresses.
fn rotate(pkt: &mut [u8], r: Route, forward: bool) {
    let (fixed, rest) = pkt.split_at_mut(Ipv6Header::LEN.min(pkt.len()));
    let Some(rt) = rest.get_mut(r.off.saturating_sub(Ipv6Header::LEN)..) else {
        return;
    };
    let addrs_start = 8usize;
    let first = r.n.saturating_sub(r.s);
    let a = |i: usize| addrs_start.saturating_add(i.saturating_mul(ADDR6));
    let (lo, last, end) = (a(first), a(r.n.saturating_sub(1)), a(r.n));
    if end > rt.len() || r.s == 0 || fixed.len() < Ipv6Header::LEN {
        return;
    }
    let Some(dst) = fixed.get_mut(24..40) else {
        return;
    };
    let mut tmp = [0u8; ADDR6];
    if forward {
        tmp.copy_from_slice(rt.get(last..end).unwrap_or(&[0; ADDR6]));
        rt.copy_within(lo..last, lo.saturating_add(ADDR6));
        if let Some(slot) = rt.get_mut(lo..lo.saturating_add(ADDR6)) {
            slot.copy_from_slice(dst);
        }
        dst.copy_from_slice(&tmp);
        if let Some(sl) = rt.get_mut(3) {
            *sl = 0;
        }
    } else {
        // `dst` still holds the rotated destination, the original last address.
        tmp.copy_from_slice(dst);
        rt.copy_within(lo.saturating_add(ADDR6)..end, lo);
        if let Some(slot) = rt.get_mut(last..end) {
            slot.copy_from_slice(&tmp);
        }
        if let Some(sl) = rt.get_mut(3) {
            // Segments left fits a byte: it came from one.
            *sl = u8::try_from(r.s).unwrap_or(u8::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::{locate, Walk};
    use alloc::vec::Vec;
    use ipsec_core::IpProto;

    fn run(pkt: &mut [u8]) -> Vec<u8> {
        let loc = locate(pkt, Walk::ToAh).unwrap();
        let before = pkt.to_vec();
        let plan = check(pkt, &loc).unwrap();
        assert_eq!(pkt, &before[..], "check must not write");
        let canon = with_undo(&plan, |undo| {
            apply(pkt, &loc, &plan, undo);
            let canon = pkt.to_vec();
            restore(pkt, &loc, &plan, undo);
            canon
        });
        assert_eq!(pkt, &before[..], "restore must undo apply");
        canon
    }

    #[test]
    fn classes() {
        for t in [0, 1, 130, 133, 134, 148, 149] {
            assert_eq!(ipv4_option_class(t), Ipv4OptionClass::Immutable, "{t}");
        }
        for t in [
            7, 68, 142, 10, 11, 12, 15, 17, 82, 136, 145, 147, 150, 151, 205, 20, 2,
        ] {
            assert_eq!(ipv4_option_class(t), Ipv4OptionClass::Mutable, "{t}");
        }
        assert_eq!(ipv4_option_class(131), Ipv4OptionClass::SourceRoute);
        assert_eq!(ipv4_option_class(137), Ipv4OptionClass::SourceRoute);
        assert!(ipv6_option_is_mutable(0x26));
        assert!(!ipv6_option_is_mutable(0x05));
        assert!(!ipv6_option_is_mutable(0xc2));
    }

    #[test]
    fn ipv4_fields_and_options() {
        // IHL 8: Router Alert (kept), Record Route with one slot (zeroed), NOP, EOL, pad.
        let mut p = alloc::vec![
            0x48, 0xb8, 0, 44, 0x12, 0x34, 0x40, 0, 64, 51, 0xab, 0xcd, 10, 0, 0, 1, 10, 0, 0, 2,
            148, 4, 0, 0, 7, 7, 4, 9, 9, 9, 9, 1, 0, 0, 0, 0
        ];
        p.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0]);
        let c = run(&mut p);
        assert_eq!(&c[..12], &[0x48, 0, 0, 44, 0x12, 0x34, 0, 0, 0, 51, 0, 0]);
        assert_eq!(&c[12..20], &p[12..20]);
        assert_eq!(&c[20..24], &[148, 4, 0, 0]);
        assert_eq!(&c[24..31], &[0; 7]);
        assert_eq!(&c[31..36], &[1, 0, 0, 0, 0]);
    }

    #[test]
    fn ipv4_source_route_final_destination() {
        // LSRR with two addresses, pointer 4 (nothing visited yet): the final
        // destination is the last address.
        let mut p = alloc::vec![
            0x48, 0, 0, 40, 0, 0, 0, 0, 64, 51, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 131, 11, 4, 10, 9,
            9, 9, 10, 8, 8, 8, 0
        ];
        p.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0]);
        let c = run(&mut p);
        assert_eq!(&c[16..20], &[10, 8, 8, 8]);
        assert_eq!(&c[20..31], &[0; 11]);
        // Route complete (pointer past the end): the header already holds it.
        p[22] = 12;
        let c = run(&mut p);
        assert_eq!(&c[16..20], &[10, 0, 0, 2]);
        // Malformed: bad length, bad pointer, two source routes.
        p[21] = 10;
        let loc = locate(&p, Walk::ToAh).unwrap();
        assert!(check(&mut p, &loc).is_err());
        p[21] = 11;
        p[22] = 3;
        assert!(check(&mut p, &loc).is_err());
    }

    #[test]
    fn ipv4_rejects_bad_option_lengths() {
        for opts in [[68u8, 1, 0, 0], [68, 9, 0, 0], [68, 0, 0, 0]] {
            let mut p =
                alloc::vec![0x46, 0, 0, 32, 0, 0, 0, 0, 64, 51, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
            p.extend_from_slice(&opts);
            p.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0]);
            let loc = locate(&p, Walk::ToAh).unwrap();
            assert!(check(&mut p, &loc).is_err(), "{opts:?}");
        }
    }

    fn v6(ext: &[u8], first_nh: u8) -> Vec<u8> {
        let mut p = alloc::vec![0u8; 40];
        p[0] = 0x6a;
        p[1] = 0xbc;
        p[2] = 0xde;
        p[3] = 0xf0;
        p[6] = first_nh;
        p[7] = 64;
        p[8..24].copy_from_slice(&[0x11; 16]);
        p[24..40].copy_from_slice(&[0xd0; 16]);
        p.extend_from_slice(ext);
        // AH (12 bytes) + 4 bytes payload.
        p.extend_from_slice(&[59, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0xee, 0xee, 0xee, 0xee]);
        let pl = u16::try_from(p.len() - 40).unwrap();
        p[4..6].copy_from_slice(&pl.to_be_bytes());
        p
    }

    #[test]
    fn ipv6_fixed_header_and_options() {
        // HbH: Router Alert (0x05, kept), PadN; then DstOpts with a mutable option 0x3e.
        let ext = [
            DSTOPTS, 0, 0x05, 0x02, 0, 0, 1, 0, //
            51, 0, 0x3e, 0x04, 1, 2, 3, 4,
        ];
        let mut p = v6(&ext, HOPOPT);
        let c = run(&mut p);
        assert_eq!(&c[..4], &[0x60, 0, 0, 0]);
        assert_eq!(c[7], 0);
        assert_eq!(&c[40..48], &ext[..8]);
        assert_eq!(&c[48..52], &[51, 0, 0x3e, 0x04]);
        assert_eq!(&c[52..56], &[0; 4]);
        // Truncated option data.
        let mut bad = ext;
        bad[11] = 9;
        let mut p = v6(&bad, HOPOPT);
        let loc = locate(&p, Walk::ToAh).unwrap();
        assert!(check(&mut p, &loc).is_err());
    }

    #[test]
    fn ipv6_routing_header_as_at_the_final_destination() {
        // Type 0 with 3 addresses, 3 segments left: dst=D0, [A1, A2, A3].
        let mut ext = alloc::vec![51, 6, 0, 3, 0, 0, 0, 0];
        for b in [0xa1u8, 0xa2, 0xa3] {
            ext.extend_from_slice(&[b; 16]);
        }
        let mut p = v6(&ext, ROUTING);
        let c = run(&mut p);
        // At the end: dst=A3, [D0, A1, A2], segments left 0.
        assert_eq!(&c[24..40], &[0xa3; 16]);
        assert_eq!(c[43], 0);
        assert_eq!(&c[48..64], &[0xd0; 16]);
        assert_eq!(&c[64..80], &[0xa1; 16]);
        assert_eq!(&c[80..96], &[0xa2; 16]);
        // Half way (1 segment left): dst=A2', list [X, Y, A3] -> dst=A3, [X, Y, A2'].
        ext[3] = 1;
        let mut p = v6(&ext, ROUTING);
        let c = run(&mut p);
        assert_eq!(&c[24..40], &[0xa3; 16]);
        assert_eq!(&c[48..64], &[0xa1; 16]);
        assert_eq!(&c[64..80], &[0xa2; 16]);
        assert_eq!(&c[80..96], &[0xd0; 16]);
        // Segments left larger than the list.
        ext[3] = 4;
        let mut p = v6(&ext, ROUTING);
        let loc = locate(&p, Walk::ToAh).unwrap();
        assert!(check(&mut p, &loc).is_err());
        // Another type (segment routing, 4) is kept as is.
        ext[2] = 4;
        let mut p = v6(&ext, ROUTING);
        let c = run(&mut p);
        assert_eq!(&c[24..40], &[0xd0; 16]);
        assert_eq!(c[43], 4);
        let _ = IpProto::AH;
    }

    #[test]
    fn ipv6_too_much_mutable_option_data() {
        // Five HbH-size headers of 255-byte mutable options would exceed the limit;
        // one header can hold at most 2046 bytes of options, so use one large option.
        let mut ext = alloc::vec![51, 255];
        for _ in 0..7 {
            ext.extend_from_slice(&[0x3e, 255]);
            ext.extend_from_slice(&[0u8; 255]);
        }
        while ext.len() % 8 != 0 || ext.len() < 2048 {
            ext.push(0);
        }
        ext.truncate(2048);
        let mut p = v6(&ext, HOPOPT);
        let loc = locate(&p, Walk::ToAh).unwrap();
        assert!(check(&mut p, &loc).is_err());
    }
}
