//! One [`Connection`] and the secrets as the [`Config`] of an IKEv2 endpoint.

use core::net::IpAddr;
use std::sync::Arc;

use ipsec::core::{Mode, TrafficSelector};
use ipsec::crypto::{Proposal, ProposalKind};
use ipsec::ike::{Config, Identity, LocalAuth, PeerAuth};

use super::model::{
    parse_identity, AddrSpec, AuthMethod, ChildMode, Connection, GatewayConfig, IkeSecret, TsSpec,
};
use crate::eap;

/// The IP MTU IKE fragmentation is sized for: strongSwan's `charon.fragment_size`
/// default (strongswan.conf(5)), 1280 bytes, the IPv6 minimum MTU.
pub const FRAGMENT_MTU: usize = 1280;

/// Why a [`Connection`] cannot become a [`Config`]: the connection, the field (its
/// `swanctl.conf` key, `children.<child>.local_ts`) and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("connection '{connection}', {field}: {problem}")]
#[non_exhaustive]
pub struct ConvertError {
    /// The connection's name.
    pub connection: String,
    /// The key at fault.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl GatewayConfig {
    /// The [`Config`] of the connection named `name`, with its key from
    /// [`secrets`](Self::secrets) ([`Connection::to_ike_config`]).
    ///
    /// # Errors
    /// No connection has that name, or [`Connection::to_ike_config`] fails.
    pub fn ike_config(&self, name: &str) -> Result<Config, ConvertError> {
        self.connections
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ConvertError {
                connection: name.to_string(),
                field: "name".into(),
                problem: "no connection has this name".into(),
            })?
            .to_ike_config(&self.secrets)
            .and_then(|mut c| {
                if let Some(x) = self.connections.iter().find(|x| x.name == name) {
                    x.apply_ppk(&mut c, &self.ppks)?;
                    x.apply_eap(&mut c, &self.eap_secrets)?;
                }
                Ok(c)
            })
    }
}

/// The any-address selector of `a`'s family.
fn any_of(a: IpAddr) -> TrafficSelector {
    if a.is_ipv4() {
        TrafficSelector::any_v4()
    } else {
        TrafficSelector::any_v6()
    }
}

/// The EAP password secret for EAP identity `identity`, chosen as [`select_psk`]
/// chooses: a secret naming the identity (its `id<suffix>`s compared as written,
/// without a leading `@`) before one without ids or with `%any`; the first in the
/// file on a tie. `None` when no secret matches.
pub fn select_eap_secret<'a>(secrets: &'a [IkeSecret], identity: &[u8]) -> Option<&'a IkeSecret> {
    let mut best: Option<(u8, &IkeSecret)> = None;
    for s in secrets {
        let score = if s.ids.is_empty() {
            1
        } else {
            s.ids
                .iter()
                .map(|i| {
                    let i = i.trim();
                    if i == "%any" {
                        1
                    } else if i.strip_prefix('@').unwrap_or(i).as_bytes() == identity {
                        20
                    } else {
                        0
                    }
                })
                .max()
                .unwrap_or(0)
        };
        if score > 0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, s));
        }
    }
    best.map(|(_, s)| s)
}

/// The single address of a list that has exactly one and nothing else (`dynamic`
/// selectors and a default local identity need it).
fn single_addr(addrs: &[AddrSpec]) -> Option<IpAddr> {
    match addrs {
        [AddrSpec::Addr(a)] => Some(*a),
        _ => None,
    }
}

impl Connection {
    /// Sets `c.ppk` from `ppk_id` and `ppk_required` with the key of `ppks` whose ids
    /// name that PPK_ID (RFC 8784). A PPK_ID without a key is an error when the PPK is
    /// required and ignored otherwise, as strongSwan does.
    ///
    /// # Errors
    /// `ppk_required` without `ppk_id`, or a required PPK without a key.
    pub fn apply_ppk(&self, c: &mut Config, ppks: &[IkeSecret]) -> Result<(), ConvertError> {
        let Some(id) = &self.ppk_id else {
            if self.ppk_required {
                return Err(self.err(
                    "ppk_required",
                    "needs ppk_id (a responder here does not look up the PPK the initiator names)",
                ));
            }
            return Ok(());
        };
        match ppks.iter().find(|s| s.ids.iter().any(|i| i == id)) {
            Some(s) => {
                c.ppk = Some(ipsec::ike::Ppk::new(
                    id.as_bytes().to_vec(),
                    s.secret.0.clone(),
                    self.ppk_required,
                ));
                Ok(())
            }
            None if self.ppk_required => Err(self.err(
                "ppk_id",
                format!("no secrets.ppk<suffix> section has id = {id}"),
            )),
            None => Ok(()),
        }
    }

    /// Sets the EAP credentials of `c` (RFC 7296 §2.16) from `local` / `remote`
    /// `auth = eap-mschapv2` and the passwords of `eap_secrets`
    /// (`secrets.eap<suffix>`):
    ///
    /// - `local`: `c.auth` is [`LocalAuth::Eap`] with our EAP identity (`local.eap_id`,
    ///   else `local.id` without a leading `@`) and its password, the secret that
    ///   [`select_eap_secret`] finds for it.
    /// - `remote`: `c.peer_auth` is [`PeerAuth::Eap`], whose authenticator looks each
    ///   peer's password up by its EAP identity when the peer names itself.
    ///   `remote.eap_id = %any` asks for the identity with EAP-Identity and takes any;
    ///   a name asks and takes only that one; without `eap_id` the peer's IKE
    ///   identity is its EAP identity.
    ///
    /// # Errors
    /// Our EAP identity is unknown (no `eap_id` and no `local.id`), or no secret
    /// matches it.
    pub fn apply_eap(&self, c: &mut Config, eap_secrets: &[IkeSecret]) -> Result<(), ConvertError> {
        if self.local.auth == AuthMethod::EapMschapv2 {
            let id = match (&self.local.eap_id, &self.local.id) {
                (Some(e), _) => e.clone(),
                (None, Some(i)) => i.trim().trim_start_matches('@').to_string(),
                (None, None) => {
                    return Err(self.err(
                        "local.eap_id",
                        "not set, and no local.id to take our EAP identity from",
                    ))
                }
            };
            let secret = select_eap_secret(eap_secrets, id.as_bytes()).ok_or_else(|| {
                self.err(
                    "local.eap_id",
                    format!("no secrets.eap<suffix> section has id = {id}"),
                )
            })?;
            let password = core::str::from_utf8(secret.secret.expose()).map_err(|_| {
                self.err("secrets", format!("the EAP password of {id} is not UTF-8"))
            })?;
            c.auth = LocalAuth::Eap {
                peer: eap::password_peer(id.into_bytes(), password),
            };
        }
        if self.remote.auth == AuthMethod::EapMschapv2 {
            let only: Option<Vec<u8>> = self
                .remote
                .eap_id
                .as_deref()
                .filter(|e| *e != "%any")
                .map(|e| e.as_bytes().to_vec());
            let secrets: Vec<IkeSecret> = eap_secrets.to_vec();
            let lookup: eap::PasswordLookup = Arc::new(move |identity: &[u8]| {
                if only.as_ref().is_some_and(|o| o.as_slice() != identity) {
                    return None;
                }
                select_eap_secret(&secrets, identity)
                    .and_then(|s| core::str::from_utf8(s.secret.expose()).ok())
                    .map(str::to_string)
            });
            c.peer_auth = PeerAuth::Eap {
                authenticator: eap::password_authenticator(lookup),
                ask_identity: self.remote.eap_id.is_some(),
            };
        }
        Ok(())
    }

    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> ConvertError {
        ConvertError {
            connection: self.name.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// This connection as the [`Config`] of an IKEv2 endpoint, the pre-shared key
    /// chosen from `secrets` by [`select_psk`]. The other fields keep
    /// [`Config::new`]'s defaults.
    ///
    /// | field | from |
    /// | --- | --- |
    /// | `local_id` | `local.id`, else the single address of `local_addrs` |
    /// | `remote_id` | `remote.id`; absent or `%any` is `None` (any identity) |
    /// | `psk` | the best-matching secret ([`select_psk`]) |
    /// | `ike_proposals` | `proposals` (`default`: `Config::new`'s list) |
    /// | `esp_proposals`, `local_ts`, `remote_ts`, `mode`, `child_rekey` | the first child's `esp_proposals`, `local_ts`, `remote_ts`, `mode`, `rekey_time` |
    /// | `ike_rekey` | `rekey_time` (0: `None`) |
    /// | `dpd` | `dpd_delay` (0: `None`) |
    /// | `force_udp_encap` | `encap` |
    /// | `fragment_mtu` | `fragmentation`: [`FRAGMENT_MTU`] or `None` |
    /// | `redirect` | `redirect_to` (ours): [`RedirectAll`](ipsec::ike::RedirectAll) |
    /// | `mobike` | `mobike` |
    ///
    /// A `dynamic` selector is the connection's own address: `local_addrs` (for
    /// `local_ts`) or `remote_addrs` (for `remote_ts`) must then be one address.
    ///
    /// # Errors
    /// A [`ConvertError`] naming the field: an identity that does not parse, no local
    /// identity, no matching secret, a bad proposal, no child, a `dynamic` selector
    /// without a single address, or a result [`Config::validate`] refuses.
    pub fn to_ike_config(&self, secrets: &[IkeSecret]) -> Result<Config, ConvertError> {
        let mut c = self.to_ike_config_unkeyed()?;
        if self.local.auth != AuthMethod::Psk && self.remote.auth != AuthMethod::Psk {
            return Ok(c);
        }
        let secret = select_psk(secrets, &c.local_id, c.remote_id.as_ref()).ok_or_else(|| {
            self.err(
                "secrets",
                format!(
                    "no IKE secret matches {} or {}",
                    c.local_id,
                    c.remote_id
                        .as_ref()
                        .map_or_else(|| "%any".to_string(), |r| r.to_string())
                ),
            )
        })?;
        c.psk = secret.secret.0.clone();
        c.validate()
            .map_err(|e| self.err(e.field, format!("{} (ipsec_ike::Config)", e.problem)))?;
        Ok(c)
    }

    /// As [`to_ike_config`](Self::to_ike_config) without a key (`psk` is empty): for
    /// a responder that accepts any identity and finds each peer's key when the peer
    /// names itself (the gateway's resolver does, with [`select_psk`]).
    ///
    /// # Errors
    /// As [`to_ike_config`](Self::to_ike_config), but for the secret.
    pub fn to_ike_config_unkeyed(&self) -> Result<Config, ConvertError> {
        let local_id = match &self.local.id {
            Some(id) => parse_identity(id)
                .map_err(|e| self.err("local.id", e.0))?
                .ok_or_else(|| self.err("local.id", "our own identity cannot be %any"))?,
            None => single_addr(&self.local_addrs)
                .map(Identity::from)
                .ok_or_else(|| {
                    self.err(
                        "local.id",
                        "not set, and local_addrs is not a single address to take it from",
                    )
                })?,
        };
        let remote_id = match &self.remote.id {
            Some(id) => parse_identity(id).map_err(|e| self.err("remote.id", e.0))?,
            None => None,
        };
        let child = self
            .children
            .first()
            .ok_or_else(|| self.err("children", "no child: an IKEv2 SA needs one"))?;
        let mut c = Config::new(local_id, ipsec::ike::Psk::default());
        c.name = self.name.clone();
        c.remote_id = remote_id;
        if let Some(l) = self.proposal_list(ProposalKind::Ike, "proposals", &self.proposals)? {
            c.ike_proposals = l;
        }
        let cf = |f: &str| format!("children.{}.{f}", child.name);
        let esp = &child.esp_proposals;
        if let Some(l) = self.proposal_list(ProposalKind::Esp, &cf("esp_proposals"), esp)? {
            c.esp_proposals = l;
        }
        if self.local.auth == AuthMethod::EapMschapv2 && self.remote.auth == AuthMethod::EapMschapv2
        {
            return Err(self.err(
                "remote.auth",
                "EAP on both sides: the responder must prove itself otherwise (psk or pubkey)",
            ));
        }
        // `dynamic` with virtual IPs: the any selector of each family, which the
        // endpoint narrows to the address assigned (ours as initiator with `vips`, the
        // peer's as responder with `pools`).
        let vip_any: Vec<TrafficSelector> = self.vips.iter().map(|a| any_of(*a)).collect();
        let pool_any = [TrafficSelector::any_v4(), TrafficSelector::any_v6()];
        c.local_ts = if vip_any.is_empty() {
            self.selectors(&cf("local_ts"), &child.local_ts, &self.local_addrs)?
        } else {
            self.selectors_dynamic(&cf("local_ts"), &child.local_ts, &vip_any)?
        };
        c.remote_ts = if self.pools.is_empty() {
            self.selectors(&cf("remote_ts"), &child.remote_ts, &self.remote_addrs)?
        } else {
            self.selectors_dynamic(&cf("remote_ts"), &child.remote_ts, &pool_any)?
        };
        c.virtual_ips = self.vips.clone();
        c.mode = match child.mode {
            ChildMode::Tunnel => Mode::Tunnel,
            ChildMode::Transport => Mode::Transport,
        };
        c.child_rekey = child.rekey_time.to_duration();
        if let Some(w) = child.replay_window {
            c.replay_window = w;
        }
        c.ike_rekey = self.rekey_time.to_duration();
        c.dpd = self.dpd_delay.to_duration();
        c.force_udp_encap = self.encap;
        c.mobike = self.mobike;
        c.fragment_mtu = self.fragmentation.then_some(FRAGMENT_MTU);
        if let Some(to) = &self.redirect_to {
            let gw =
                super::swanctl::redirect_gateway(to).map_err(|e| self.err("redirect_to", e.0))?;
            c.redirect = Some(std::sync::Arc::new(ipsec::ike::RedirectAll(gw)));
        }
        let mut probe = c.clone();
        probe.psk = ipsec::ike::Psk::from("stand-in for the check");
        probe
            .validate()
            .map_err(|e| self.err(e.field, format!("{} (ipsec_ike::Config)", e.problem)))?;
        Ok(c)
    }

    /// The proposals of a list; `None` stands for a list that is only `default`.
    fn proposal_list(
        &self,
        kind: ProposalKind,
        field: &str,
        list: &[String],
    ) -> Result<Option<Vec<Proposal>>, ConvertError> {
        if list.iter().all(|p| p == "default") {
            return Ok(if list.is_empty() {
                Some(Vec::new())
            } else {
                None
            });
        }
        let defaults = Config::default();
        let mut out = Vec::new();
        for p in list {
            if p == "default" {
                let d = match kind {
                    ProposalKind::Ike => &defaults.ike_proposals,
                    _ => &defaults.esp_proposals,
                };
                out.extend(d.iter().cloned());
            } else {
                out.push(
                    Proposal::parse(kind, p)
                        .map_err(|e| self.err(field, format!("proposal '{p}': {e}")))?,
                );
            }
        }
        Ok(Some(out))
    }

    /// The selectors of `ts` with `dynamic` standing for `dynamic` (each of them).
    fn selectors_dynamic(
        &self,
        field: &str,
        ts: &[TsSpec],
        dynamic: &[TrafficSelector],
    ) -> Result<Vec<TrafficSelector>, ConvertError> {
        let mut out = Vec::new();
        for t in ts {
            if *t == TsSpec::Dynamic {
                out.extend(dynamic.iter().copied());
            } else {
                out.extend(self.selectors(field, core::slice::from_ref(t), &[])?);
            }
        }
        Ok(out)
    }

    fn selectors(
        &self,
        field: &str,
        ts: &[TsSpec],
        addrs: &[AddrSpec],
    ) -> Result<Vec<TrafficSelector>, ConvertError> {
        ts.iter()
            .map(|t| match *t {
                TsSpec::Dynamic => single_addr(addrs).map(TrafficSelector::host).ok_or_else(|| {
                    self.err(
                        field,
                        "'dynamic' needs a single address in the connection's addresses (local_addrs or remote_addrs)",
                    )
                }),
                TsSpec::Prefix(a, l) => TrafficSelector::from_prefix(a, l)
                    .ok_or_else(|| self.err(field, format!("bad prefix {a}/{l}"))),
                TsSpec::Range(a, b) if a.is_ipv4() == b.is_ipv4() && a <= b => {
                    Ok(TrafficSelector {
                        start_addr: a,
                        end_addr: b,
                        ..TrafficSelector::host(a)
                    })
                }
                TsSpec::Range(a, b) => Err(self.err(field, format!("bad range {a}-{b}"))),
            })
            .collect()
    }
}

/// How well one secret's identities match one identity, on strongSwan's scale
/// (`id_match_t`): 20 for an equal identity, 1 for a secret without identities or
/// with `%any`, 0 for no match. One exact match outranks any wildcard matches.
fn owner_match(ids: &[Option<Identity>], id: &Identity) -> u8 {
    if ids.is_empty() {
        return 1;
    }
    ids.iter()
        .map(|o| match o {
            Some(o) if o == id => 20,
            Some(_) => 0,
            None => 1,
        })
        .max()
        .unwrap_or(0)
}

/// The secret for a connection between `local` and `remote` (`None`: any peer),
/// chosen as strongSwan chooses shared keys: each secret scores how well its `id`s
/// match the local identity plus how well they match the remote one (an equal
/// identity counts more than `%any`, which counts as much as a secret without
/// identities, which matches anyone); a secret that matches neither identity is
/// skipped, the highest score wins, and the first in the file wins a tie. Secrets
/// whose ids do not parse never match.
pub fn select_psk<'a>(
    secrets: &'a [IkeSecret],
    local: &Identity,
    remote: Option<&Identity>,
) -> Option<&'a IkeSecret> {
    let mut best: Option<(u8, &IkeSecret)> = None;
    for s in secrets {
        let Ok(ids) = s
            .ids
            .iter()
            .map(|i| parse_identity(i))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let me = owner_match(&ids, local);
        let other = remote.map_or(0, |r| owner_match(&ids, r));
        if me == 0 && other == 0 {
            continue;
        }
        let score = me + other;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, s));
        }
    }
    best.map(|(_, s)| s)
}
