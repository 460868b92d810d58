//! The configuration types: what a `swanctl.conf` says, as serde types an embedder
//! can also build in code. Defaults are strongSwan's (swanctl.conf(5)); docs/gateway.md
//! lists them with their source.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use ipsec::ike::{Identity, Psk};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that cannot be parsed: what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

/// Everything a gateway is configured with: the `connections`, `secrets` and `pools`
/// sections of a `swanctl.conf`, in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// IKE connections (`connections.<conn>`).
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// IKE pre-shared keys (`secrets.ike<suffix>`).
    #[serde(default)]
    pub secrets: Vec<IkeSecret>,
    /// Post-quantum preshared keys (`secrets.ppk<suffix>`, RFC 8784): `ids` are the
    /// PPK_IDs each key is known by, which a connection's `ppk_id` names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ppks: Vec<IkeSecret>,
    /// Virtual IP address pools (`pools.<name>`).
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// EAP passwords (`secrets.eap<suffix>`): `ids` are the EAP identities each
    /// belongs to, looked up when a peer names itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eap_secrets: Vec<IkeSecret>,
}

/// A span of time in whole seconds, written as strongSwan writes times: a number of
/// seconds with an optional unit suffix `s`, `m`, `h` or `d` (`90`, `60s`, `30m`, `4h`,
/// `1d`). Serialized as the number of seconds; deserialized from a number or such a
/// string. `0` switches the timer it configures off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub u64);

impl Seconds {
    /// The span as a [`Duration`](ipsec::core::Duration), `None` for zero (off).
    pub fn to_duration(self) -> Option<ipsec::core::Duration> {
        (self.0 != 0).then(|| ipsec::core::Duration::from_secs(self.0))
    }
}

impl FromStr for Seconds {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let hex = s.starts_with("0x") || s.starts_with("0X");
        let (num, mult) = match s.as_bytes().last() {
            Some(b's') if !hex => (&s[..s.len() - 1], 1),
            Some(b'm') if !hex => (&s[..s.len() - 1], 60),
            Some(b'h') if !hex => (&s[..s.len() - 1], 3600),
            Some(b'd') if !hex => (&s[..s.len() - 1], 86400),
            Some(c) if !hex && c.is_ascii_alphabetic() => {
                return bad(format!("'{s}': the unit must be s, m, h or d"))
            }
            _ => (s, 1),
        };
        let n = parse_uint(num).ok_or_else(|| ValueError(format!("'{s}' is not a time")))?;
        n.checked_mul(mult)
            .map(Seconds)
            .ok_or_else(|| ValueError(format!("'{s}' is too long")))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(u64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(n) => Ok(Seconds(n)),
            Repr::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A decimal or `0x` hexadecimal unsigned number, as strongSwan reads integers.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A boolean as strongSwan reads it: `yes`, `true`, `enabled`, `1` or `no`, `false`,
/// `disabled`, `0`, in any case.
pub(crate) fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "enabled" | "1" => Ok(true),
        "no" | "false" | "disabled" | "0" => Ok(false),
        _ => bad(format!("'{s}' is not yes or no")),
    }
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8), ValueError> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a
        .parse()
        .map_err(|_| ValueError(format!("'{a}' is not an IP address")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if l.is_empty() {
        if s.contains('/') {
            return bad(format!("'{s}': no prefix length after '/'"));
        }
        return Ok((addr, max));
    }
    match l.parse::<u8>() {
        Ok(len) if len <= max && l.bytes().all(|b| b.is_ascii_digit()) => Ok((addr, len)),
        _ => bad(format!("'{s}': the prefix length must be 0..={max}")),
    }
}

fn parse_range(a: &str, b: &str) -> Result<(IpAddr, IpAddr), ValueError> {
    let parse = |x: &str| {
        x.trim()
            .parse::<IpAddr>()
            .map_err(|_| ValueError(format!("'{x}' is not an IP address")))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a.is_ipv4() != b.is_ipv4() {
        return bad(format!("range {a}-{b} mixes IPv4 and IPv6"));
    }
    if a > b {
        return bad(format!("range {a}-{b} ends before it starts"));
    }
    Ok((a, b))
}

/// One entry of `local_addrs` / `remote_addrs`, or a pool's `addrs`: serialized as
/// strongSwan writes it (`%any`, `192.0.2.1`, `192.0.2.0/24`, `192.0.2.1-192.0.2.9`).
/// DNS names are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AddrSpec {
    /// `%any`: any address.
    Any,
    /// `%any4`: any IPv4 address.
    Any4,
    /// `%any6`: any IPv6 address.
    Any6,
    /// One address.
    Addr(IpAddr),
    /// A CIDR subnet.
    Prefix(IpAddr, u8),
    /// An inclusive range of addresses of one family.
    Range(IpAddr, IpAddr),
}

impl FromStr for AddrSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        Ok(match s {
            "%any" => AddrSpec::Any,
            "%any4" => AddrSpec::Any4,
            "%any6" => AddrSpec::Any6,
            _ if s.contains('/') => {
                let (a, l) = parse_prefix(s)?;
                AddrSpec::Prefix(a, l)
            }
            _ => match s.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = parse_range(a, b)?;
                    AddrSpec::Range(a, b)
                }
                None => AddrSpec::Addr(s.parse().map_err(|_| {
                    ValueError(format!(
                        "'{s}' is not an IP address, subnet, range or %any (DNS names are not supported)"
                    ))
                })?),
            },
        })
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrSpec::Any => f.write_str("%any"),
            AddrSpec::Any4 => f.write_str("%any4"),
            AddrSpec::Any6 => f.write_str("%any6"),
            AddrSpec::Addr(a) => write!(f, "{a}"),
            AddrSpec::Prefix(a, l) => write!(f, "{a}/{l}"),
            AddrSpec::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl TryFrom<String> for AddrSpec {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<AddrSpec> for String {
    fn from(a: AddrSpec) -> String {
        a.to_string()
    }
}

/// One traffic selector of `local_ts` / `remote_ts`, serialized as strongSwan writes
/// it: `dynamic`, a subnet (`10.0.0.0/24`, a bare address is a host) or a range
/// (`10.0.0.1-10.0.0.9`). Protocol/port restrictions (`[tcp/80]`) are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TsSpec {
    /// The tunnel's outer address (the connection's single local or remote address).
    Dynamic,
    /// A CIDR subnet (host bits are ignored).
    Prefix(IpAddr, u8),
    /// An inclusive range of addresses of one family.
    Range(IpAddr, IpAddr),
}

impl FromStr for TsSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.contains('[') {
            return bad(format!(
                "'{s}': protocol/port selectors ('[proto/port]') are not supported"
            ));
        }
        if s == "dynamic" {
            return Ok(TsSpec::Dynamic);
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = parse_range(a, b)?;
            return Ok(TsSpec::Range(a, b));
        }
        let (a, l) = parse_prefix(s)?;
        Ok(TsSpec::Prefix(a, l))
    }
}

impl fmt::Display for TsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsSpec::Dynamic => f.write_str("dynamic"),
            TsSpec::Prefix(a, l) => write!(f, "{a}/{l}"),
            TsSpec::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl TryFrom<String> for TsSpec {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<TsSpec> for String {
    fn from(t: TsSpec) -> String {
        t.to_string()
    }
}

/// An IKE identity in strongSwan's syntax (see [`Identity`]'s `FromStr`, and
/// distinguished names as `ipsec_pki::parse_identity` reads them), `None` for `%any`.
/// Type prefixes (`fqdn:`) and wildcards are refused.
pub(crate) fn parse_identity(s: &str) -> Result<Option<Identity>, ValueError> {
    const PREFIXES: [&str; 10] = [
        "ipv4:",
        "ipv6:",
        "rfc822:",
        "email:",
        "userfqdn:",
        "fqdn:",
        "dns:",
        "asn1dn:",
        "asn1gn:",
        "keyid:",
    ];
    let s = s.trim();
    if s == "%any" {
        return Ok(None);
    }
    if s.starts_with('{') || PREFIXES.iter().any(|p| s.starts_with(p)) {
        return bad(format!("'{s}': identity type prefixes are not supported"));
    }
    if s.contains('*') || s.starts_with('%') {
        return bad(format!("'{s}': wildcard identities are not supported"));
    }
    // A distinguished name ("C=CH, O=Example, CN=gw") as strongSwan encodes it,
    // anything else as Identity's FromStr.
    ipsec_pki::parse_identity(s)
        .map(Some)
        .map_err(|e| ValueError(format!("'{s}': {e}")))
}

/// An IKE connection (`connections.<conn>`), IKEv2 with PSK authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Connection {
    /// The section name.
    pub name: String,
    /// `version`: 0 (strongSwan's default: IKEv1 or IKEv2 as responder, IKEv2 as
    /// initiator; here IKEv2 only) or 2.
    pub version: u8,
    /// `local_addrs` (`%any`).
    pub local_addrs: Vec<AddrSpec>,
    /// `remote_addrs` (`%any`).
    pub remote_addrs: Vec<AddrSpec>,
    /// `local_port` (500).
    pub local_port: u16,
    /// `remote_port` (500).
    pub remote_port: u16,
    /// `proposals`: IKE proposal strings, `default` for the built-in list.
    pub proposals: Vec<String>,
    /// `encap` (no): force UDP encapsulation of ESP.
    pub encap: bool,
    /// `fragmentation` (yes): IKE fragmentation (RFC 7383).
    pub fragmentation: bool,
    /// `mobike` (yes): MOBIKE (RFC 4555). Absent from serialized forms written
    /// before it existed: yes.
    #[serde(default = "yes")]
    pub mobike: bool,
    /// `dpd_delay` (0s: off).
    pub dpd_delay: Seconds,
    /// `rekey_time` (4h; 0 = never rekey the IKE SA on our own).
    pub rekey_time: Seconds,
    /// `ppk_id`: the PPK_ID of a post-quantum preshared key (RFC 8784) from
    /// [`GatewayConfig::ppks`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppk_id: Option<String>,
    /// `ppk_required` (no): fail unless the peer uses the PPK.
    #[serde(default)]
    pub ppk_required: bool,
    /// `redirect_to` (our extension, not in strongSwan): send every client of this
    /// connection that supports it to this gateway (an address or an FQDN) in
    /// IKE_AUTH (RFC 5685 §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
    /// `pools` (responder): the names of the [`GatewayConfig::pools`] virtual
    /// addresses are leased from to initiators that ask for one, tried in order per
    /// family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// `vips` (initiator): the virtual addresses to ask for, `0.0.0.0` / `::` for any
    /// of the family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vips: Vec<IpAddr>,
    /// The `local` authentication round.
    pub local: AuthRound,
    /// The `remote` authentication round.
    pub remote: AuthRound,
    /// The `children` sections, in file order.
    pub children: Vec<Child>,
}

impl Connection {
    /// A connection named `name` with strongSwan's defaults, PSK authentication on both
    /// sides, no identities and no children.
    pub fn new(name: impl Into<String>) -> Self {
        Connection {
            name: name.into(),
            version: 0,
            local_addrs: vec![AddrSpec::Any],
            remote_addrs: vec![AddrSpec::Any],
            local_port: 500,
            remote_port: 500,
            proposals: vec!["default".into()],
            encap: false,
            fragmentation: true,
            mobike: true,
            dpd_delay: Seconds(0),
            rekey_time: Seconds(4 * 3600),
            ppk_id: None,
            ppk_required: false,
            redirect_to: None,
            pools: Vec::new(),
            vips: Vec::new(),
            local: AuthRound::default(),
            remote: AuthRound::default(),
            children: Vec::new(),
        }
    }
}

/// An authentication round (`local` or `remote`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthRound {
    /// `auth`.
    pub auth: AuthMethod,
    /// `id` in strongSwan's syntax; `None` when not given (local: the subject of the
    /// certificate with `pubkey`, else the local address; remote: `%any`).
    pub id: Option<String>,
    /// `certs` (local, `pubkey`): our certificate files, in the `x509/` directory
    /// beside the `swanctl.conf` unless absolute. The first one is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<String>,
    /// `cacerts` (remote, `pubkey`): the trust anchors for the peer's certificate, in
    /// `x509ca/` unless absolute; empty: every certificate in `x509ca/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cacerts: Vec<String>,
    /// Sign with RSASSA-PSS (`auth = rsa/pss`, or another `auth` naming `pss`).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub rsa_pss: bool,
    /// `eap_id` (with `auth = eap-mschapv2`). Local: our EAP identity (default: our
    /// IKE identity). Remote: `%any` asks the peer for its EAP identity
    /// (EAP-Identity) and takes any; a name asks and takes only that one; not set,
    /// the peer's IKE identity is its EAP identity (strongSwan's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eap_id: Option<String>,
}

impl AuthRound {
    /// A PSK round with identity `id`.
    pub fn psk(id: Option<String>) -> Self {
        AuthRound {
            auth: AuthMethod::Psk,
            id,
            ..AuthRound::default()
        }
    }

    /// A public-key round (`auth = pubkey`) with identity `id`.
    pub fn pubkey(id: Option<String>) -> Self {
        AuthRound {
            auth: AuthMethod::Pubkey,
            id,
            ..AuthRound::default()
        }
    }
}

/// An authentication method (`auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// `psk`: pre-shared key (RFC 7296 §2.15).
    #[default]
    Psk,
    /// `pubkey` (strongSwan's default) and the forms that name a key type or scheme
    /// (`rsa/pss`, `ecdsa`, `ed25519`, `pubkey-sha256`...): X.509 certificates and
    /// signatures (RFC 7427, RFC 4945).
    Pubkey,
    /// `eap-mschapv2`: EAP (RFC 7296 §2.16) with MSCHAPv2, passwords from
    /// [`GatewayConfig::eap_secrets`]. Locally (initiator) we authenticate with it;
    /// remotely (responder) the peer does, and we prove ourselves with `local.auth`.
    EapMschapv2,
}

/// A Child SA configuration (`connections.<conn>.children.<child>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Child {
    /// The section name.
    pub name: String,
    /// `local_ts` (dynamic).
    pub local_ts: Vec<TsSpec>,
    /// `remote_ts` (dynamic).
    pub remote_ts: Vec<TsSpec>,
    /// `esp_proposals`: ESP proposal strings, `default` for the built-in list.
    pub esp_proposals: Vec<String>,
    /// `rekey_time` (1h; 0 = never rekey on our own).
    pub rekey_time: Seconds,
    /// `mode` (tunnel).
    pub mode: ChildMode,
    /// `start_action` (none).
    pub start_action: StartAction,
    /// `dpd_action` (clear).
    pub dpd_action: DpdAction,
    /// `close_action` (none).
    pub close_action: CloseAction,
    /// `replay_window`: the inbound anti-replay window in packets, 32..=4096, or 0
    /// for none (default: the IKE configuration's, 1024).
    pub replay_window: Option<u32>,
}

impl Child {
    /// A child named `name` with strongSwan's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Child {
            name: name.into(),
            local_ts: vec![TsSpec::Dynamic],
            remote_ts: vec![TsSpec::Dynamic],
            esp_proposals: vec!["default".into()],
            rekey_time: Seconds(3600),
            replay_window: None,
            mode: ChildMode::Tunnel,
            start_action: StartAction::None,
            dpd_action: DpdAction::Clear,
            close_action: CloseAction::None,
        }
    }
}

/// `mode`: the IPsec mode (RFC 4301 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildMode {
    /// `tunnel`.
    #[default]
    Tunnel,
    /// `transport`.
    Transport,
}

/// `start_action`: what the gateway does with the child once loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAction {
    /// `none`: wait (responder, or manual initiation).
    #[default]
    None,
    /// `trap`: initiate when matching traffic appears.
    Trap,
    /// `start`: initiate at once.
    Start,
    /// `trap|start`: both.
    #[serde(rename = "trap|start")]
    TrapStart,
}

/// `dpd_action`: what happens to the child when the peer is found dead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpdAction {
    /// `clear`: close it.
    #[default]
    Clear,
    /// `trap`: close it and initiate again on matching traffic.
    Trap,
    /// `restart`: initiate it again at once.
    Restart,
}

/// `close_action`: what happens when the peer closes the child.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseAction {
    /// `none`.
    #[default]
    None,
    /// `trap`: initiate again on matching traffic.
    Trap,
    /// `start`: initiate again at once.
    Start,
}

/// An IKE pre-shared key (`secrets.ike<suffix>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IkeSecret {
    /// The section name (`ike-rig`).
    pub name: String,
    /// `id<suffix>` keys: the identities the key belongs to, in strongSwan's syntax
    /// (`%any` allowed); none = any identity.
    pub ids: Vec<String>,
    /// `secret`.
    pub secret: Secret,
}

impl IkeSecret {
    /// A secret named `name` for the identities `ids`.
    pub fn new(name: impl Into<String>, ids: Vec<String>, secret: Secret) -> Self {
        IkeSecret {
            name: name.into(),
            ids,
            secret,
        }
    }
}

/// A secret value: a [`Psk`], so zeroized on drop, redacted in `Debug` and compared
/// in constant time.
///
/// It is read as strongSwan reads secrets: `0x` and hex digits, `0s` and Base64, or
/// the text itself. Serde writes the key in clear (the text itself if it is UTF-8 and
/// does not begin with `0x` or `0s`, else `0x` and hex): a serialized
/// [`GatewayConfig`] holds the keys and must be protected as the `swanctl.conf` is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Psk);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.0)
    }
}

impl Secret {
    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl FromStr for Secret {
    type Err = ValueError;

    /// # Errors
    /// Bad hex or Base64 after `0x` / `0s`.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bytes = if let Some(hex) = s.strip_prefix("0x") {
            decode_hex(hex).ok_or_else(|| ValueError("bad hex after 0x".into()))?
        } else if let Some(b64) = s.strip_prefix("0s") {
            decode_base64(b64).ok_or_else(|| ValueError("bad Base64 after 0s".into()))?
        } else {
            s.as_bytes().to_vec()
        };
        Ok(Secret(Psk::new(bytes)))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let k = self.expose();
        match core::str::from_utf8(k) {
            Ok(t) if !t.starts_with("0x") && !t.starts_with("0s") => ser.serialize_str(t),
            _ => {
                let mut t = String::with_capacity(2 + 2 * k.len());
                t.push_str("0x");
                for b in k {
                    t.push_str(&format!("{b:02x}"));
                }
                ser.serialize_str(&t)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A virtual IP address pool (`pools.<name>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Pool {
    /// The section name.
    pub name: String,
    /// `addrs`: the subnet or range addresses are allocated from.
    pub addrs: AddrSpec,
    /// `dns`: DNS servers handed out with the addresses.
    pub dns: Vec<IpAddr>,
}

impl Pool {
    /// A pool named `name` allocating from `addrs`, without DNS servers.
    pub fn new(name: impl Into<String>, addrs: AddrSpec) -> Self {
        Pool {
            name: name.into(),
            addrs,
            dns: Vec::new(),
        }
    }
}

/// The default of `mobike` when deserializing.
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = |s: &str| s.parse::<Seconds>().map(|x| x.0);
        assert_eq!(t("60s"), Ok(60));
        assert_eq!(t("90"), Ok(90));
        assert_eq!(t("30m"), Ok(1800));
        assert_eq!(t("4h"), Ok(14400));
        assert_eq!(t("1d"), Ok(86400));
        assert_eq!(t("0x10"), Ok(16));
        assert!(t("").is_err() && t("h").is_err() && t("1w").is_err() && t("-1").is_err());
        assert!(t("99999999999999999999d").is_err());
    }

    #[test]
    fn secrets_decode() {
        let k = |s: &str| s.parse::<Secret>().map(|x| x.expose().to_vec());
        assert_eq!(k("0x0aff"), Ok(vec![10, 255]));
        assert_eq!(k("0sAQID"), Ok(vec![1, 2, 3]));
        assert_eq!(k("0sAQI="), Ok(vec![1, 2]));
        assert_eq!(k("0sAQ=="), Ok(vec![1]));
        assert_eq!(k("plain"), Ok(b"plain".to_vec()));
        assert!(k("0x0").is_err() && k("0s!!!!").is_err() && k("0sA").is_err());
        assert!(
            !format!("{:?}", Secret("hunter2".parse::<Secret>().unwrap().0)).contains("hunter2")
        );
    }

    #[test]
    fn specs_round_trip() {
        for s in [
            "%any",
            "%any6",
            "192.0.2.1",
            "10.0.0.0/8",
            "::1-::9",
            "2001:db8::/32",
        ] {
            assert_eq!(s.parse::<AddrSpec>().unwrap().to_string(), s);
        }
        for s in [
            "dynamic",
            "10.0.0.0/24",
            "0.0.0.0/0",
            "10.0.0.1-10.0.0.9",
            "::/0",
        ] {
            assert_eq!(s.parse::<TsSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "10.0.0.1".parse::<TsSpec>().unwrap().to_string(),
            "10.0.0.1/32"
        );
        for s in [
            "vpn.example",
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "1/",
        ] {
            assert!(s.parse::<AddrSpec>().is_err(), "{s}");
        }
        assert!("10.0.0.0/24[tcp/80]".parse::<TsSpec>().is_err());
    }
}
