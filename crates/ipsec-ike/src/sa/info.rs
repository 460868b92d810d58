//! INFORMATIONAL (RFC 7296 §1.4), as responder: Delete of Child SAs answered with the
//! paired SPIs (§1.4.1), Delete of the IKE SA, a Delete of an IKE SA being rekeyed
//! (§2.25.2), and AUTHENTICATION_FAILED from an initiator that refused our IKE_AUTH
//! response (§2.21.2). Our own requests (liveness, deletes) are queued in
//! [`established`](super::established).

use alloc::vec::Vec;

use ipsec_ike_wire::{NotifyType, ProtocolId};

use crate::error::{AuthFailure, CloseReason};
use crate::msg::Out;
use crate::sa::child_sa::{spi4, ChildState};
use crate::sa::established::{Established, Incoming, Retiring, Which};
use crate::sa::{Flow, IkeSa};
use crate::shared::Shared;
use crate::timers::Timer;

impl IkeSa {
    pub(crate) fn informational(
        &mut self,
        e: &mut Established,
        cx: &mut Shared,
        r: &Incoming<'_>,
    ) -> Flow {
        let Incoming { now, w, m, .. } = *r;
        // MOBIKE (RFC 4555): a path update, COOKIE2, additional addresses.
        let mut out = self.mobike_request(e, cx, r);
        let mut delete_ike = false;
        for d in &m.deletes {
            if d.protocol == ProtocolId::IKE {
                delete_ike = true;
                continue;
            }
            if d.protocol != ProtocolId::ESP && d.protocol != ProtocolId::AH {
                continue;
            }
            let mut ours = Vec::new();
            for spi in d.spis.iter().filter_map(|s| spi4(s)) {
                let Some(idx) = e.children.iter().position(|c| c.outbound_spi == spi) else {
                    continue;
                };
                let Some(c) = e.children.get(idx) else {
                    continue;
                };
                // RFC 7296 §1.4.1: SAs we are deleting ourselves are not answered.
                if c.state != ChildState::Deleting {
                    ours.extend_from_slice(&c.inbound_spi.to_be_bytes());
                }
                self.remove_child(e, cx, idx);
            }
            if !ours.is_empty() {
                out.push(Out::Delete {
                    protocol: d.protocol,
                    spi_size: 4,
                    spis: ours,
                });
            }
        }
        e.answer(cx, r, &out);
        if matches!(w, Which::Current) {
            // RFC 5685 §5: answered; a REDIRECT we follow deletes this IKE SA.
            self.informational_redirected(e, cx, r);
        }
        // An initiator that refuses our IKE_AUTH response may say so in an
        // INFORMATIONAL of its own (RFC 7296 §2.21.2): the IKE SA is void.
        if matches!(w, Which::Current) && m.has(NotifyType::AUTHENTICATION_FAILED) {
            return Flow::Close(CloseReason::AuthenticationFailed(
                AuthFailure::RejectedByPeer,
            ));
        }
        if !delete_ike {
            return Flow::Continue;
        }
        match w {
            Which::Current => {
                if let Some((new, _)) = e.ike_collision.take() {
                    // §2.25.2: the peer closes the SA we were rekeying; its own rekey
                    // already gave us the successor.
                    e.rekeying_ike = false;
                    let until = now + cx.config.retransmit.total();
                    e.adopt_ike(cx, self.handle, now, new, until, true);
                    Flow::Continue
                } else {
                    Flow::Close(CloseReason::Deleted { by_peer: true })
                }
            }
            Which::Retiring(i) => {
                if let Some(r) = e.retiring.get_mut(i) {
                    r.dead = true;
                    let linger = now + cx.config.retransmit.total().saturating_mul(2);
                    r.timers.sooner(Timer::Linger, linger);
                    // A request of ours on it may or may not have been processed:
                    // it keeps its retransmissions, which the peer answers from its
                    // cache if it was; if it times out it is redone on the new IKE SA.
                    if let Some(req) = r.session.out.as_ref() {
                        for d in &req.datagrams {
                            cx.send(self.path, d);
                        }
                    }
                }
                Flow::Continue
            }
            Which::Collision => {
                if let Some((s, _)) = e.ike_collision.take() {
                    e.retiring
                        .push(Retiring::new(s, now + cx.config.retransmit.total(), true));
                }
                Flow::Continue
            }
        }
    }
}
