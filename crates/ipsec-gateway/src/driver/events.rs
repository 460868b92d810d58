//! What the driver does with each IKE event: Child SAs into the SAD with their
//! outbound rules, out again on delete, IKE SAs closed (counted, restarted), the SPD
//! rebuilt when a rule comes or goes.

use std::net::{IpAddr, SocketAddr};

use ipsec::core::{ChildSaParams, Instant, Mode, TrafficSelector, UdpEncap};
use ipsec::ike::{ChildSaId, CloseReason, Event, SaHandle, Transmit};
use ipsec::sad::{Action, PolicyId, PolicyRule, SaId, SaOptions, SaTemplate, Selector, Spd};
use tracing::{debug, info, warn};

use super::selectors::{hex, pairs, ts_range, ts_to_prefixes, ts_width, RuleKey};
use super::status::reason_label;
use super::{ChildInfo, ChildSummary, Driver, IkeInfo, Notice, RouteChange, Rule, RESTART_DELAY};

impl Driver {
    pub(super) fn on_event(&mut self, now: Instant, h: SaHandle, e: Event) {
        match e {
            Event::IkeSaEstablished {
                local_spi,
                remote_spi,
                suite,
                peer_id,
                nat,
                eap_identity,
                virtual_ips,
                attributes,
            } => {
                let conn_name = self.conn_of(h).map(|c| self.conns()[c].config.name.clone());
                let initiator = self.ikes.get(&h).is_some_and(|i| i.initiator);
                self.notify(|| Notice::IkeUp {
                    sa: h,
                    connection: conn_name.unwrap_or_default(),
                    initiator,
                    local_spi,
                    remote_spi,
                    suite: suite.clone(),
                    nat,
                    peer_id: peer_id.clone(),
                    eap_identity: eap_identity.clone(),
                    virtual_ips: virtual_ips.clone(),
                    attributes: attributes.clone(),
                });
                self.counters.handshakes += 1;
                let conn = self.conn_of(h);
                let info = self
                    .ikes
                    .entry(h)
                    .or_insert_with(|| IkeInfo::new(conn.unwrap_or(0), false, now));
                if let Some(c) = conn {
                    info.conn = c;
                }
                info.established = true;
                info.since = now;
                info!(sa = %h, peer = %peer_id, %suite, "IKE SA established");
                info.peer_id = Some(peer_id);
                info.suite = suite;
                info.spis = (hex(&local_spi.0), hex(&remote_spi.0));
                info.eap_id = eap_identity.map(|e| String::from_utf8_lossy(&e).into_owned());
                if !virtual_ips.is_empty() {
                    info!(sa = %h, vips = ?virtual_ips, initiator, "virtual IPs");
                }
                // Ours: on the TUN device before the Child SAs' routes take it as
                // their source (the first Child SA comes with this IKE_AUTH, after).
                if initiator && info.virtual_ips.is_empty() {
                    for a in &virtual_ips {
                        self.routes.push_back(RouteChange::AddAddress { addr: *a });
                    }
                }
                if let Some(info) = self.ikes.get_mut(&h) {
                    info.virtual_ips = virtual_ips;
                }
            }
            Event::IkeSaRekeyed {
                new_local_spi,
                new_remote_spi,
                ..
            } => {
                self.counters.ike_rekeys += 1;
                if let Some(i) = self.ikes.get_mut(&h) {
                    i.spis = (hex(&new_local_spi.0), hex(&new_remote_spi.0));
                    i.since = now;
                }
                info!(sa = %h, "IKE SA rekeyed");
                self.notify(|| Notice::IkeRekeyed {
                    sa: h,
                    local_spi: new_local_spi,
                    remote_spi: new_remote_spi,
                });
            }
            Event::IkeSaKeysDerived { keys } => self.notify(|| Notice::IkeKeys { sa: h, keys }),
            Event::ChildSaInstalled {
                id,
                mut params,
                suite,
            } => {
                self.counters.child_installed += 1;
                let negotiated = params.udp_encap;
                if negotiated.is_none() {
                    params.udp_encap = self.esp_in_udp;
                }
                let notice = self.notices.is_some().then(|| suite.clone());
                self.install_child(now, h, id, &params, suite);
                if let Some(suite) = notice {
                    let sad = self.child_sad_id(id);
                    self.notify(|| Notice::ChildUp {
                        sa: h,
                        child: id,
                        sad,
                        suite,
                        mode: params.mode,
                        esn: params.esn,
                        udp_encap: negotiated,
                        inbound_spi: params.inbound_spi,
                        outbound_spi: params.outbound_spi,
                        local_ts: params.local_ts.as_slice().to_vec(),
                        remote_ts: params.remote_ts.as_slice().to_vec(),
                    });
                }
            }
            Event::ChildSaRekeyed { old, new } => {
                self.counters.child_rekeys += 1;
                info!(sa = %h, %old, %new, "Child SA rekeyed");
                self.notify(|| Notice::ChildRekeyed { sa: h, old, new });
            }
            Event::ChildSaFailed { id, error } => {
                self.counters.child_failed += 1;
                warn!(sa = %h, child = %id, %error, "Child SA failed");
                self.notify(|| Notice::ChildFailed {
                    sa: h,
                    child: id,
                    error,
                });
            }
            Event::ChildSaDeleted {
                id,
                inbound_spi,
                outbound_spi,
            } => {
                self.remove_child(id);
                self.notify(|| Notice::ChildDeleted {
                    sa: h,
                    child: id,
                    inbound_spi,
                    outbound_spi,
                });
            }
            Event::NatKeepaliveDue { local, remote } => self.extra.push_back(Transmit {
                local,
                remote,
                payload: vec![0xff],
            }),
            Event::PeerAddressChanged { remote } => {
                info!(sa = %h, %remote, "peer moved");
                self.move_children(h, None, remote, None);
                self.notify(|| Notice::PeerMoved { sa: h, remote });
            }
            Event::Redirected { redirect } => self.follow_redirect(now, h, redirect),
            Event::PeerRedirected { to } => {
                self.counters.peers_redirected += 1;
                info!(sa = %h, %to, "peer redirected");
                self.notify(|| Notice::PeerRedirected { sa: h, to });
            }
            Event::PathUpdated {
                local,
                remote,
                udp_encap,
                ..
            } => {
                let encap = udp_encap.or(self.esp_in_udp);
                info!(sa = %h, %local, %remote, udp_encap = encap.is_some(), "IKE SA path updated (MOBIKE)");
                self.move_children(h, Some(local), remote, Some(encap));
                self.notify(|| Notice::PathUpdated {
                    sa: h,
                    local,
                    remote,
                    udp_encap: encap,
                });
            }
            Event::IkeSaClosed { reason } => {
                let established = self.ikes.get(&h).is_some_and(|i| i.established);
                self.closed(now, h, reason);
                self.notify(|| Notice::IkeClosed {
                    sa: h,
                    reason,
                    established,
                });
            }
            _ => {}
        }
    }

    /// Moves the SAD's SAs of the Child SAs of IKE SA `h` to the peer's `remote`
    /// (and our `local`, and UDP encapsulation `encap`, when given; without `encap`
    /// an encapsulated SA keeps its local port and takes `remote`'s port), keeping
    /// their sequence numbers and replay windows (`Sad::update_sa_path`).
    pub(super) fn move_children(
        &mut self,
        h: SaHandle,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        encap: Option<Option<UdpEncap>>,
    ) {
        let ids: Vec<SaId> = self
            .children
            .values()
            .filter(|c| c.ike == h)
            .filter_map(|c| c.sad)
            .collect();
        for id in ids {
            let Some(info) = self.sad.sa_info(id) else {
                continue;
            };
            let local_ip = local.map_or(info.local_addr, |l| l.ip());
            let encap = encap.unwrap_or_else(|| {
                info.udp_encap.map(|u| UdpEncap {
                    local_port: u.local_port,
                    remote_port: remote.port(),
                })
            });
            if let Err(e) = self.sad.update_sa_path(id, local_ip, remote.ip(), encap) {
                warn!(sa = %h, sad = id.0, error = %e, "SA not moved to the new path");
            }
        }
        for c in self.children.values_mut().filter(|c| c.ike == h) {
            if let Some(e) = encap {
                c.params_summary.udp_encap = e.is_some();
            }
        }
    }

    pub(super) fn conn_of(&self, h: SaHandle) -> Option<usize> {
        let name = &self.endpoint.sa_config(h)?.name;
        self.by_name.get(name).copied()
    }

    fn closed(&mut self, now: Instant, h: SaHandle, reason: CloseReason) {
        let info = self.ikes.remove(&h);
        let key = reason_label(&reason);
        match &info {
            Some(i) if i.established => *self.counters.ike_closed.entry(key).or_default() += 1,
            _ => *self.counters.handshake_failures.entry(key).or_default() += 1,
        }
        info!(sa = %h, %reason, "IKE SA closed");
        // Child SAs were reported deleted before; any left are dropped here.
        let orphans: Vec<ChildSaId> = self
            .children
            .iter()
            .filter(|(_, c)| c.ike == h)
            .map(|(id, _)| *id)
            .collect();
        for c in orphans {
            self.remove_child(c);
        }
        if let Some(i) = info.as_ref().filter(|i| i.initiator) {
            for a in &i.virtual_ips {
                self.routes
                    .push_back(RouteChange::RemoveAddress { addr: *a });
            }
        }
        let conn = info.as_ref().map(|i| i.conn).or_else(|| self.conn_of(h));
        if let Some(c) = conn {
            // A redirect we follow started the successor already.
            let by_us = matches!(
                reason,
                CloseReason::Deleted { by_peer: false } | CloseReason::Redirected
            ) || info.as_ref().is_some_and(|i| i.redirected);
            if self.conns()[c].start_action.start && !self.shutting_down && !by_us {
                self.restarts.insert(c, now + RESTART_DELAY);
            }
        }
    }

    fn install_child(
        &mut self,
        now: Instant,
        h: SaHandle,
        id: ChildSaId,
        params: &ChildSaParams,
        suite: String,
    ) {
        let local_ts: Vec<TrafficSelector> = params.local_ts.as_slice().to_vec();
        let remote_ts: Vec<TrafficSelector> = params.remote_ts.as_slice().to_vec();
        let (keys, policies) = self.bind_rules(
            &local_ts,
            &remote_ts,
            params.mode,
            params.local_addr,
            params.remote_addr,
        );
        let mut opts = SaOptions::new();
        if let Some(p) = policies.first() {
            opts = opts.policy(*p);
        }
        let sad = match self.sad.add_sa(now, params, opts) {
            Ok(sa) => {
                for p in policies.iter().skip(1) {
                    let _ = self.sad.bind(*p, sa);
                }
                self.by_sad.insert(sa, id);
                Some(sa)
            }
            Err(e) => {
                self.counters.install_errors += 1;
                warn!(sa = %h, child = %id, error = %e, "SAD refused the Child SA");
                None
            }
        };
        info!(sa = %h, child = %id, %suite, spi_in = %format_args!("{:08x}", params.inbound_spi.0),
            spi_out = %format_args!("{:08x}", params.outbound_spi.0), "Child SA installed");
        self.children.insert(
            id,
            ChildInfo {
                ike: h,
                sad,
                rules: keys,
                params_summary: ChildSummary {
                    suite,
                    mode: params.mode,
                    udp_encap: params.udp_encap.is_some(),
                    spi_in: params.inbound_spi.0,
                    spi_out: params.outbound_spi.0,
                    local_ts,
                    remote_ts,
                },
                since: now,
            },
        );
    }

    pub(super) fn remove_child(&mut self, id: ChildSaId) {
        let Some(c) = self.children.remove(&id) else {
            return;
        };
        if let Some(sa) = c.sad {
            self.by_sad.remove(&sa);
            let _ = self.sad.remove_sa(sa);
        }
        self.unbind_rules(c.rules);
        debug!(child = %id, "Child SA removed");
    }

    /// Binds a Child SA's selector pairs to outbound rules, adding the rules (and
    /// their routes) that do not exist yet; returns the pairs and their policies.
    pub(super) fn bind_rules(
        &mut self,
        local_ts: &[TrafficSelector],
        remote_ts: &[TrafficSelector],
        mode: Mode,
        local: IpAddr,
        remote: IpAddr,
    ) -> (Vec<RuleKey>, Vec<PolicyId>) {
        let keys = pairs(local_ts, remote_ts);
        let template = match mode {
            Mode::Tunnel => SaTemplate::esp_tunnel(local, remote),
            _ => SaTemplate::esp_transport(),
        };
        let mut spd_changed = false;
        let mut policies = Vec::new();
        for key in &keys {
            let rule = self.rules.entry(*key).or_insert_with(|| {
                spd_changed = true;
                let id = PolicyId(self.next_policy);
                self.next_policy += 1;
                self.routes.push_back(RouteChange::Add {
                    dst: ts_to_prefixes(&key.1),
                    local_ts: key.0,
                });
                Rule {
                    id,
                    template,
                    trap: None,
                    users: 0,
                }
            });
            rule.users += 1;
            policies.push(rule.id);
        }
        if spd_changed {
            if let Err(e) = self.publish_spd() {
                warn!(error = %e, "SPD update failed");
            }
        }
        (keys, policies)
    }

    /// Releases a Child SA's rules: the ones nothing else uses go, with their routes.
    pub(super) fn unbind_rules(&mut self, keys: Vec<RuleKey>) {
        let mut spd_changed = false;
        for key in keys {
            let gone = match self.rules.get_mut(&key) {
                Some(r) => {
                    r.users = r.users.saturating_sub(1);
                    r.users == 0 && r.trap.is_none()
                }
                None => false,
            };
            if gone {
                self.rules.remove(&key);
                spd_changed = true;
                self.routes.push_back(RouteChange::Remove {
                    dst: ts_to_prefixes(&key.1),
                });
            }
        }
        if spd_changed {
            if let Err(e) = self.publish_spd() {
                warn!(error = %e, "SPD update failed");
            }
        }
    }

    /// Writes the outbound SPD from the rules: the most specific first (RFC 4301
    /// orders the SPD; narrower selectors go before wider ones so a trap for a
    /// whole network does not shadow a negotiated subset).
    pub(super) fn publish_spd(&self) -> Result<(), String> {
        let mut rules: Vec<(u128, PolicyRule)> = self
            .rules
            .iter()
            .map(|((l, r), rule)| {
                let sel = Selector::between(ts_range(l), ts_range(r));
                (
                    ts_width(l).saturating_add(ts_width(r)),
                    PolicyRule {
                        id: rule.id,
                        selector: sel,
                        action: Action::Protect(rule.template),
                    },
                )
            })
            .collect();
        rules.sort_by_key(|(w, r)| (*w, r.id));
        let spd =
            Spd::new(rules.into_iter().map(|(_, r)| r).collect()).map_err(|e| e.to_string())?;
        self.sad.set_outbound_spd(spd);
        Ok(())
    }
}
