//! The `swanctl.conf` subset: the settings tree of [`syntax`](super::syntax) checked
//! key by key into a [`GatewayConfig`]. Every key is either used, refused as unknown,
//! or refused as a strongSwan setting this gateway does not support; none is ignored.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use ipsec::crypto::{Proposal, ProposalKind};

use super::model::{
    parse_bool, parse_identity, parse_uint, AddrSpec, AuthMethod, AuthRound, Child, ChildMode,
    CloseAction, Connection, DpdAction, GatewayConfig, IkeSecret, Pool, Seconds, Secret,
    StartAction, TsSpec, ValueError,
};
use super::syntax::{self, Item, LineError, Section, Setting, MAX_INPUT_LEN};
use super::{ConfError, ConfErrorKind};

type R<T> = Result<T, LineError>;

/// Parses the text of a `swanctl.conf` (any bytes) into a [`GatewayConfig`]. `file`
/// names the file in errors.
///
/// # Errors
/// The first problem, as a [`ConfError`] with `file` and the line: the text is longer
/// than [`MAX_INPUT_LEN`] or not UTF-8, a syntax error, sections nested deeper than
/// [`MAX_DEPTH`](super::MAX_DEPTH), `include` or section references, an unknown or
/// unsupported key or section, a bad value, a duplicate key or section, or a
/// missing key.
pub fn parse_swanctl(file: &str, bytes: &[u8]) -> Result<GatewayConfig, ConfError> {
    let at = |(line, kind): LineError| ConfError {
        file: file.to_string(),
        line,
        kind,
    };
    if bytes.len() > MAX_INPUT_LEN {
        return Err(at((0, ConfErrorKind::TooLarge { max: MAX_INPUT_LEN })));
    }
    let text = core::str::from_utf8(bytes).map_err(|e| {
        let before = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        at((
            u32::try_from(line).unwrap_or(u32::MAX),
            ConfErrorKind::InvalidUtf8,
        ))
    })?;
    let items = syntax::parse(text).map_err(at)?;
    top(items).map_err(at)
}

/// Reads the `swanctl.conf` at `path` (at most [`MAX_INPUT_LEN`] bytes) and parses it
/// with [`parse_swanctl`], naming it by `path` in errors.
///
/// # Errors
/// [`ConfErrorKind::Io`] when it cannot be read, else as [`parse_swanctl`].
pub fn load_swanctl(path: impl AsRef<Path>) -> Result<GatewayConfig, ConfError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |e: std::io::Error| ConfError {
        file: name.clone(),
        line: 0,
        kind: ConfErrorKind::Io(e.to_string()),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse_swanctl(&name, &bytes)
}

/// Remembers the names met in one section, for duplicates.
#[derive(Default)]
struct Seen {
    keys: HashMap<String, u32>,
    sections: HashMap<String, u32>,
}

impl Seen {
    fn key(&mut self, path: &str, s: &Setting) -> R<()> {
        if let Some(&first_line) = self.keys.get(&s.key) {
            return Err((
                s.line,
                ConfErrorKind::DuplicateKey {
                    key: format!("{path}.{}", s.key),
                    first_line,
                },
            ));
        }
        self.keys.insert(s.key.clone(), s.line);
        Ok(())
    }

    fn section(&mut self, path: &str, s: &Section) -> R<()> {
        if let Some(&first_line) = self.sections.get(&s.name) {
            return Err((
                s.line,
                ConfErrorKind::DuplicateSection {
                    section: join(path, &s.name),
                    first_line,
                },
            ));
        }
        self.sections.insert(s.name.clone(), s.line);
        Ok(())
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn bad_value(path: &str, s: &Setting, e: ValueError) -> LineError {
    (
        s.line,
        ConfErrorKind::BadValue {
            key: join(path, &s.key),
            problem: e.0,
        },
    )
}

fn unknown_key(path: &str, s: &Setting) -> LineError {
    (s.line, ConfErrorKind::UnknownKey(join(path, &s.key)))
}

fn unsupported_key(path: &str, s: &Setting, reason: &'static str) -> LineError {
    (
        s.line,
        ConfErrorKind::UnsupportedKey {
            key: join(path, &s.key),
            reason,
        },
    )
}

fn unknown_section(path: &str, s: &Section) -> LineError {
    (s.line, ConfErrorKind::UnknownSection(join(path, &s.name)))
}

fn unsupported_section(path: &str, s: &Section, reason: &'static str) -> LineError {
    (
        s.line,
        ConfErrorKind::UnsupportedSection {
            section: join(path, &s.name),
            reason,
        },
    )
}

/// A comma-separated list, each entry parsed by `f`.
fn list<T>(v: &str, f: impl Fn(&str) -> Result<T, ValueError>) -> Result<Vec<T>, ValueError> {
    if v.trim().is_empty() {
        return Err(ValueError("empty list".into()));
    }
    v.split(',')
        .map(|e| {
            let e = e.trim();
            if e.is_empty() {
                Err(ValueError("empty entry in the list".into()))
            } else {
                f(e)
            }
        })
        .collect()
}

/// A proposal list: `default`, or proposals `Proposal::parse` accepts.
fn proposals(kind: ProposalKind, v: &str) -> Result<Vec<String>, ValueError> {
    list(v, |p| {
        if p == "default" {
            return Ok(p.to_string());
        }
        Proposal::parse(kind, p)
            .map(|_| p.to_string())
            .map_err(|e| ValueError(format!("proposal '{p}': {e}")))
    })
}

fn top(items: Vec<Item>) -> R<GatewayConfig> {
    let mut conf = GatewayConfig::default();
    let mut seen = Seen::default();
    for item in items {
        let sec = match item {
            Item::Setting(s) => return Err(unknown_key("", &s)),
            Item::Section(sec) => sec,
        };
        seen.section("", &sec)?;
        match sec.name.as_str() {
            "connections" => {
                let mut inner = Seen::default();
                for item in sec.items {
                    let c = subsection("connections", item, &mut inner)?;
                    conf.connections.push(connection(c)?);
                }
            }
            "secrets" => {
                let mut inner = Seen::default();
                for item in sec.items {
                    let s = subsection("secrets", item, &mut inner)?;
                    if s.name.starts_with("ppk") {
                        conf.ppks.push(secret(s)?);
                    } else if s.name.starts_with("eap") {
                        conf.eap_secrets.push(secret(s)?);
                    } else {
                        conf.secrets.push(secret(s)?);
                    }
                }
            }
            "pools" => {
                let mut inner = Seen::default();
                for item in sec.items {
                    let p = subsection("pools", item, &mut inner)?;
                    conf.pools.push(pool(p)?);
                }
            }
            "authorities" => {
                return Err(unsupported_section(
                    "",
                    &sec,
                    "certificate authorities: put CA certificates in x509ca/ beside the file, or name them in remote.cacerts",
                ))
            }
            _ => return Err(unknown_section("", &sec)),
        }
    }
    Ok(conf)
}

/// An item of a section that holds only named subsections.
fn subsection(path: &str, item: Item, seen: &mut Seen) -> R<Section> {
    match item {
        Item::Setting(s) => Err((s.line, ConfErrorKind::NotASection(join(path, &s.key)))),
        Item::Section(sec) => {
            seen.section(path, &sec)?;
            Ok(sec)
        }
    }
}

const NO_IKEV1: &str = "it applies to IKEv1 only, and this gateway speaks IKEv2 only";
const NO_LIFETIMES: &str =
    "hard lifetimes and the random part of rekey times are not configurable (rekey times are shortened by up to 10 %)";
const NO_CERTS: &str =
    "only PSK, certificate (certs, cacerts) and EAP-MSCHAPv2 authentication are supported";
const NO_KERNEL: &str =
    "it configures kernel IPsec policies and SAs, which this gateway does not use";

fn conn_unsupported(key: &str) -> Option<&'static str> {
    Some(match key {
        "aggressive" | "dpd_timeout" | "pull" => NO_IKEV1,
        "over_time" | "rand_time" => NO_LIFETIMES,
        "dscp" => "DSCP marking of IKE packets is not implemented",
        "keyingtries" => "initiation is tried once (one retransmission sequence)",
        "unique" => "uniqueness policies are not implemented",
        "if_id_in" | "if_id_out" => NO_KERNEL,
        "childless" => "childless IKE SAs (RFC 6023) are not implemented",
        "mediation" | "mediated_by" | "mediation_peer" => "mediation is not implemented",
        "ocsp" => NO_CERTS,
        _ => return None,
    })
}

/// The value of `redirect_to`: an IP address or an FQDN (RFC 5685 §8).
pub(crate) fn redirect_gateway(v: &str) -> Result<ipsec::ike::Gateway, ValueError> {
    let v = v.trim();
    let gw = match v.parse::<core::net::IpAddr>() {
        Ok(a) => ipsec::ike::Gateway::Ip(a),
        Err(_) => ipsec::ike::Gateway::Fqdn(v.to_string()),
    };
    if gw.is_valid() {
        Ok(gw)
    } else {
        Err(ValueError(format!(
            "'{v}' is neither an IP address nor a host name"
        )))
    }
}

fn connection(sec: Section) -> R<Connection> {
    let path = format!("connections.{}", sec.name);
    let mut c = Connection::new(sec.name.as_str());
    let mut seen = Seen::default();
    let (mut local, mut remote) = (None, None);
    for item in sec.items {
        match item {
            Item::Setting(s) => {
                seen.key(&path, &s)?;
                let v = s.value.as_str();
                let bv = |e| bad_value(&path, &s, e);
                match s.key.as_str() {
                    "version" => {
                        c.version = match v {
                            "0" => 0,
                            "2" => 2,
                            "1" => return Err(bv(ValueError("IKEv1 is not supported".into()))),
                            _ => return Err(bv(ValueError(format!("'{v}' is not 0, 1 or 2")))),
                        }
                    }
                    "local_addrs" => c.local_addrs = list(v, str::parse).map_err(bv)?,
                    "remote_addrs" => c.remote_addrs = list(v, str::parse).map_err(bv)?,
                    "local_port" => c.local_port = port(v).map_err(bv)?,
                    "remote_port" => c.remote_port = port(v).map_err(bv)?,
                    "proposals" => c.proposals = proposals(ProposalKind::Ike, v).map_err(bv)?,
                    "encap" => c.encap = parse_bool(v).map_err(bv)?,
                    "ppk_id" => c.ppk_id = Some(v.trim().to_string()),
                    "ppk_required" => c.ppk_required = parse_bool(v).map_err(bv)?,
                    // Ours (docs/gateway.md): RFC 5685 redirect in IKE_AUTH.
                    "redirect_to" => {
                        let gw = redirect_gateway(v).map_err(bv)?;
                        c.redirect_to = Some(gw.to_string());
                    }
                    "fragmentation" => {
                        c.fragmentation = match v {
                            "force" => {
                                return Err(bv(ValueError(
                                    "'force' applies to IKEv1 only; use yes or no".into(),
                                )))
                            }
                            _ => parse_bool(v).map_err(bv)?,
                        }
                    }
                    "mobike" => c.mobike = parse_bool(v).map_err(bv)?,
                    // CERTREQ goes out whenever the peer authenticates with
                    // certificates, and our chain whenever we sign (as `always`).
                    "send_certreq" => {
                        parse_bool(v).map_err(bv)?;
                    }
                    "send_cert" => {
                        if !matches!(v, "never" | "ifasked" | "always") {
                            return Err(bv(ValueError(format!(
                                "'{v}' is not always, never or ifasked"
                            ))));
                        }
                    }
                    "pools" => {
                        c.pools = list(v, |n| {
                            if n.contains(char::is_whitespace) {
                                Err(ValueError(format!("'{n}' is not a pool name")))
                            } else {
                                Ok(n.to_string())
                            }
                        })
                        .map_err(bv)?
                    }
                    "vips" => {
                        c.vips = list(v, |a| {
                            a.parse::<std::net::IpAddr>().map_err(|_| {
                                ValueError(format!(
                                    "'{a}' is not an IP address (0.0.0.0 or :: asks for any)"
                                ))
                            })
                        })
                        .map_err(bv)?;
                        for fam in [true, false] {
                            if c.vips.iter().filter(|a| a.is_ipv4() == fam).count() > 1 {
                                return Err(bv(ValueError(
                                    "one virtual IP per address family".into(),
                                )));
                            }
                        }
                    }
                    "dpd_delay" => c.dpd_delay = v.parse().map_err(bv)?,
                    "rekey_time" => c.rekey_time = v.parse().map_err(bv)?,
                    "reauth_time" => {
                        if v.parse::<Seconds>().map_err(bv)? != Seconds(0) {
                            return Err(bv(ValueError(
                                "reauthentication is not implemented: only 0 (off) is accepted"
                                    .into(),
                            )));
                        }
                    }
                    "local" | "remote" | "children" => {
                        return Err((s.line, ConfErrorKind::NotASection(join(&path, &s.key))))
                    }
                    k => match conn_unsupported(k) {
                        Some(reason) => return Err(unsupported_key(&path, &s, reason)),
                        None => return Err(unknown_key(&path, &s)),
                    },
                }
            }
            Item::Section(sub) => {
                seen.section(&path, &sub)?;
                match sub.name.as_str() {
                    "local" => local = Some(auth_round(&path, sub)?),
                    "remote" => remote = Some(auth_round(&path, sub)?),
                    "children" => {
                        let cpath = format!("{path}.children");
                        let mut inner = Seen::default();
                        for item in sub.items {
                            let ch = subsection(&cpath, item, &mut inner)?;
                            c.children.push(child(&cpath, ch)?);
                        }
                    }
                    n if n.starts_with("local") || n.starts_with("remote") => {
                        return Err(unsupported_section(
                            &path,
                            &sub,
                            "multiple authentication rounds (RFC 4739) are not supported: use one 'local' and one 'remote' section",
                        ))
                    }
                    n if conn_unsupported(n).is_some()
                        || matches!(
                            n,
                            "version"
                                | "local_addrs"
                                | "remote_addrs"
                                | "local_port"
                                | "remote_port"
                                | "proposals"
                                | "encap"
                                | "fragmentation"
                                | "mobike"
                                | "send_certreq"
                                | "send_cert"
                                | "dpd_delay"
                                | "rekey_time"
                                | "reauth_time"
                                | "pools"
                                | "vips"
                        ) =>
                    {
                        return Err((sub.line, ConfErrorKind::NotAKey(join(&path, n))))
                    }
                    _ => return Err(unknown_section(&path, &sub)),
                }
            }
        }
    }
    // strongSwan's default for a missing round is pubkey too.
    c.local = local.unwrap_or_else(|| AuthRound::pubkey(None));
    c.remote = remote.unwrap_or_else(|| AuthRound::pubkey(None));
    Ok(c)
}

fn port(v: &str) -> Result<u16, ValueError> {
    parse_uint(v)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| ValueError(format!("'{v}' is not a port number")))
}

/// `auth`: `psk`, or `pubkey` and the forms swanctl.conf(5) allows for it (`rsa`,
/// `rsa/pss`, `ecdsa`, `ed25519`, `ed448`, with `-sha256`-style hash suffixes), which
/// all mean certificates here; `pss` anywhere in them selects RSASSA-PSS.
fn auth_method(v: &str) -> Result<(AuthMethod, bool), ValueError> {
    if v == "psk" {
        return Ok((AuthMethod::Psk, false));
    }
    if v == "eap-mschapv2" {
        return Ok((AuthMethod::EapMschapv2, false));
    }
    if v == "eap" || v.starts_with("eap-") {
        return Err(ValueError(format!(
            "'{v}' is not supported: of the EAP methods only eap-mschapv2 is implemented (eap and eap-dynamic would let the peer choose another)"
        )));
    }
    if v.starts_with("xauth") {
        return Err(ValueError(format!(
            "'{v}': XAuth is IKEv1 only, and this gateway speaks IKEv2 only"
        )));
    }
    let head = v.split(['-', '/']).next().unwrap_or_default();
    if matches!(
        head,
        "pubkey" | "rsa" | "ecdsa" | "ed25519" | "ed448" | "bliss"
    ) {
        let pss = v.split(['-', '/']).any(|p| p == "pss");
        return Ok((AuthMethod::Pubkey, pss));
    }
    Err(ValueError(format!(
        "'{v}' is not supported: psk, pubkey (rsa/pss, ecdsa, ed25519, ...) and eap-mschapv2 are"
    )))
}

fn auth_round(conn: &str, sec: Section) -> R<AuthRound> {
    let path = join(conn, &sec.name);
    let remote = sec.name.starts_with("remote");
    let mut seen = Seen::default();
    // strongSwan's default is pubkey (swanctl.conf(5)).
    let mut round = AuthRound::pubkey(None);
    let mut eap_id_line = None;
    for item in sec.items {
        match item {
            Item::Setting(s) => {
                seen.key(&path, &s)?;
                let v = s.value.as_str();
                match s.key.as_str() {
                    "auth" => {
                        let (m, pss) =
                            auth_method(v.trim()).map_err(|e| bad_value(&path, &s, e))?;
                        round.auth = m;
                        round.rsa_pss = pss;
                    }
                    "id" => {
                        parse_identity(v).map_err(|e| bad_value(&path, &s, e))?;
                        round.id = Some(v.trim().to_string());
                    }
                    "eap_id" => {
                        let v = v.trim();
                        if v.is_empty() || (v == "%any" && !remote) {
                            return Err(bad_value(
                                &path,
                                &s,
                                ValueError(if v.is_empty() {
                                    "an empty EAP identity".into()
                                } else {
                                    "our own EAP identity cannot be %any".into()
                                }),
                            ));
                        }
                        round.eap_id = Some(v.to_string());
                        eap_id_line = Some(s.line);
                    }
                    "certs" if !remote => {
                        round.certs =
                            list(v, |f| Ok(f.to_string())).map_err(|e| bad_value(&path, &s, e))?;
                    }
                    "cacerts" if remote => {
                        round.cacerts =
                            list(v, |f| Ok(f.to_string())).map_err(|e| bad_value(&path, &s, e))?;
                    }
                    "round" => {
                        return Err(unsupported_key(
                            &path,
                            &s,
                            "multiple authentication rounds (RFC 4739) are not supported",
                        ))
                    }
                    "certs" | "cacerts" | "pubkeys" | "groups" | "cert_policy" | "revocation" => {
                        return Err(unsupported_key(&path, &s, NO_CERTS))
                    }
                    "aaa_id" => {
                        return Err(unsupported_key(
                            &path,
                            &s,
                            "no AAA (RADIUS) backend: EAP runs in the gateway",
                        ))
                    }
                    "xauth_id" => return Err(unsupported_key(&path, &s, NO_IKEV1)),
                    _ => return Err(unknown_key(&path, &s)),
                }
            }
            Item::Section(sub) => {
                return Err(
                    if sub.name.starts_with("cert") || sub.name.starts_with("cacert") {
                        unsupported_section(&path, &sub, NO_CERTS)
                    } else {
                        unknown_section(&path, &sub)
                    },
                )
            }
        }
    }
    if let Some(line) = eap_id_line {
        if round.auth != AuthMethod::EapMschapv2 {
            return Err((
                line,
                ConfErrorKind::BadValue {
                    key: format!("{path}.eap_id"),
                    problem: "an EAP identity needs auth = eap-mschapv2".into(),
                },
            ));
        }
    }
    Ok(round)
}

fn child_unsupported(key: &str) -> Option<&'static str> {
    Some(match key {
        "ah_proposals" => "AH Child SAs are not negotiated (ESP only)",
        "life_time" | "rand_time" | "rekey_bytes" | "life_bytes" | "rand_bytes"
        | "rekey_packets" | "life_packets" | "rand_packets" => NO_LIFETIMES,
        "updown" | "hostaccess" => "updown scripts are not run",
        "policies" | "policies_fwd_out" | "reqid" | "priority" | "interface" | "mark_in"
        | "mark_in_sa" | "mark_out" | "set_mark_in" | "set_mark_out" | "if_id_in" | "if_id_out"
        | "hw_offload" | "label" | "label_mode" | "per_cpu_sas" => NO_KERNEL,
        "ipcomp" => "IPComp is not implemented",
        "inactivity" => "inactivity timeouts are not implemented",
        "tfc_padding" => "TFC padding is not implemented",
        "copy_df" | "copy_ecn" | "copy_dscp" => "the outer header fields are set by the data plane",
        "sha256_96" => "HMAC-SHA-256 is always truncated to 128 bits (RFC 4868)",
        _ => return None,
    })
}

fn child(conn_children: &str, sec: Section) -> R<Child> {
    let path = join(conn_children, &sec.name);
    let mut c = Child::new(sec.name.as_str());
    let mut seen = Seen::default();
    for item in sec.items {
        let s = match item {
            Item::Setting(s) => s,
            Item::Section(sub) => {
                seen.section(&path, &sub)?;
                return Err(unknown_section(&path, &sub));
            }
        };
        seen.key(&path, &s)?;
        let v = s.value.as_str();
        let bv = |e| bad_value(&path, &s, e);
        let unsupported = |what: &str| bv(ValueError(format!("'{what}' is not supported")));
        match s.key.as_str() {
            "local_ts" => c.local_ts = list(v, str::parse::<TsSpec>).map_err(bv)?,
            "remote_ts" => c.remote_ts = list(v, str::parse::<TsSpec>).map_err(bv)?,
            "esp_proposals" => c.esp_proposals = proposals(ProposalKind::Esp, v).map_err(bv)?,
            "rekey_time" => c.rekey_time = v.parse().map_err(bv)?,
            "replay_window" => {
                c.replay_window = Some(
                    v.parse()
                        .map_err(|e| bv(ValueError(format!("not a number: {e}"))))?,
                );
            }
            "mode" => {
                c.mode = match v {
                    "tunnel" => ChildMode::Tunnel,
                    "transport" => ChildMode::Transport,
                    "transport_proxy" | "beet" | "pass" | "drop" => return Err(unsupported(v)),
                    _ => return Err(bv(ValueError(format!("unknown mode '{v}'")))),
                }
            }
            "start_action" => {
                c.start_action = match v {
                    "none" => StartAction::None,
                    "trap" => StartAction::Trap,
                    "start" => StartAction::Start,
                    "trap|start" | "start|trap" => StartAction::TrapStart,
                    _ => return Err(bv(ValueError(format!("unknown start_action '{v}'")))),
                }
            }
            "dpd_action" => {
                c.dpd_action = match v {
                    "clear" => DpdAction::Clear,
                    "trap" => DpdAction::Trap,
                    "restart" => DpdAction::Restart,
                    _ => return Err(bv(ValueError(format!("unknown dpd_action '{v}'")))),
                }
            }
            "close_action" => {
                c.close_action = match v {
                    "none" => CloseAction::None,
                    "trap" => CloseAction::Trap,
                    "start" => CloseAction::Start,
                    _ => return Err(bv(ValueError(format!("unknown close_action '{v}'")))),
                }
            }
            k => match child_unsupported(k) {
                Some(reason) => return Err(unsupported_key(&path, &s, reason)),
                None => return Err(unknown_key(&path, &s)),
            },
        }
    }
    Ok(c)
}

fn secret(sec: Section) -> R<IkeSecret> {
    const OTHER: [&str; 7] = [
        "ntlm", "private", "rsa", "ecdsa", "pkcs8", "pkcs12", "token",
    ];
    let ppk = sec.name.starts_with("ppk");
    let eap = sec.name.starts_with("eap");
    if sec.name.starts_with("xauth") {
        return Err(unsupported_section(
            "secrets",
            &sec,
            "XAuth secrets are IKEv1's: put EAP passwords in secrets.eap<suffix>",
        ));
    }
    if !sec.name.starts_with("ike") && !ppk && !eap {
        return Err(if OTHER.iter().any(|p| sec.name.starts_with(p)) {
            unsupported_section(
                "secrets",
                &sec,
                "only IKE pre-shared keys (secrets.ike<suffix>), EAP passwords (secrets.eap<suffix>) and PPKs (secrets.ppk<suffix>) are supported",
            )
        } else {
            unknown_section("secrets", &sec)
        });
    }
    let path = join("secrets", &sec.name);
    let mut seen = Seen::default();
    let (mut ids, mut key) = (Vec::new(), None);
    for item in sec.items {
        let s = match item {
            Item::Setting(s) => s,
            Item::Section(sub) => return Err(unknown_section(&path, &sub)),
        };
        seen.key(&path, &s)?;
        let bv = |e| bad_value(&path, &s, e);
        if s.key == "secret" {
            if s.value.is_empty() {
                return Err(bv(ValueError(
                    "an empty key could be proven by anyone".into(),
                )));
            }
            let k: Secret = s.value.parse().map_err(bv)?;
            if k.expose().is_empty() {
                return Err(bv(ValueError(
                    "an empty key could be proven by anyone".into(),
                )));
            }
            if eap && core::str::from_utf8(k.expose()).is_err() {
                return Err(bv(ValueError(
                    "an EAP-MSCHAPv2 password is text: it must be UTF-8".into(),
                )));
            }
            key = Some(k);
        } else if s.key.starts_with("id") {
            // A PPK's ids are PPK_IDs and an EAP secret's EAP identities, opaque
            // names; an IKE secret's are identities.
            if s.value.trim().is_empty() {
                return Err(bv(ValueError("an empty identity".into())));
            }
            if !ppk && !eap {
                parse_identity(&s.value).map_err(bv)?;
            }
            ids.push(s.value.trim().to_string());
        } else {
            return Err(unknown_key(&path, &s));
        }
    }
    let secret = key.ok_or((
        sec.line,
        ConfErrorKind::Missing {
            key: format!("{path}.secret"),
            why: "an IKE secret section needs its key",
        },
    ))?;
    Ok(IkeSecret {
        name: sec.name,
        ids,
        secret,
    })
}

fn pool(sec: Section) -> R<Pool> {
    let path = join("pools", &sec.name);
    let mut seen = Seen::default();
    let (mut addrs, mut dns) = (None, Vec::new());
    for item in sec.items {
        let s = match item {
            Item::Setting(s) => s,
            Item::Section(sub) => return Err(unknown_section(&path, &sub)),
        };
        seen.key(&path, &s)?;
        let bv = |e| bad_value(&path, &s, e);
        match s.key.as_str() {
            "addrs" => {
                let a: AddrSpec = s.value.parse().map_err(bv)?;
                if !matches!(a, AddrSpec::Prefix(..) | AddrSpec::Range(..)) {
                    return Err(bv(ValueError("a pool is a subnet or a range".into())));
                }
                addrs = Some(a);
            }
            "dns" => {
                dns = list(&s.value, |e| {
                    e.parse()
                        .map_err(|_| ValueError(format!("'{e}' is not an IP address")))
                })
                .map_err(bv)?
            }
            "nbns" | "dhcp" | "netmask" | "server" | "subnet" | "split_include"
            | "split_exclude" => {
                return Err(unsupported_key(
                    &path,
                    &s,
                    "only the dns attribute is handed out",
                ))
            }
            k if k.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(unsupported_key(
                    &path,
                    &s,
                    "only the dns attribute is handed out",
                ))
            }
            _ => return Err(unknown_key(&path, &s)),
        }
    }
    let addrs = addrs.ok_or((
        sec.line,
        ConfErrorKind::Missing {
            key: format!("{path}.addrs"),
            why: "a pool needs its addresses",
        },
    ))?;
    Ok(Pool {
        name: sec.name,
        addrs,
        dns,
    })
}
