//! What [`Driver::status`](super::Driver::status)(super::Driver::status) reports, and the counters behind
//! the metrics.

use std::collections::BTreeMap;

use ipsec::ike::CloseReason;
use serde::Serialize;

use crate::pool::PoolStatus;

/// Counters for the metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DriverCounters {
    /// IKE SAs that reached ESTABLISHED.
    pub handshakes: u64,
    /// IKE SAs that closed before they were established, by reason.
    pub handshake_failures: BTreeMap<String, u64>,
    /// IKE SAs closed after they were established, by reason.
    pub ike_closed: BTreeMap<String, u64>,
    /// Child SAs installed (rekeys included).
    pub child_installed: u64,
    /// Child SAs that could not be created.
    pub child_failed: u64,
    /// Child SA rekeys.
    pub child_rekeys: u64,
    /// IKE SA rekeys.
    pub ike_rekeys: u64,
    /// SAD acquires that started a negotiation.
    pub acquires: u64,
    /// Child SAs the SAD could not install (the IKE SA keeps them; they carry no
    /// traffic).
    pub install_errors: u64,
    /// Redirects (RFC 5685) we followed as initiator.
    pub redirects_followed: u64,
    /// Peers we redirected to another gateway (RFC 5685).
    pub peers_redirected: u64,
}

/// One IKE SA as [`Driver::status`](super::Driver::status) reports it.
#[derive(Clone, Debug, Serialize)]
pub struct IkeSaStatus {
    /// The endpoint's handle.
    pub handle: u64,
    /// The connection's name.
    pub connection: String,
    /// `CONNECTING` or `ESTABLISHED`.
    pub state: &'static str,
    /// Whether we initiated it.
    pub initiator: bool,
    /// Our address and port.
    pub local: String,
    /// The peer's address and port.
    pub remote: String,
    /// Our identity.
    pub local_id: String,
    /// The peer's authenticated identity (empty before it is established).
    pub remote_id: String,
    /// The IKE proposal chosen.
    pub suite: String,
    /// Our IKE SPI (hex).
    pub local_spi: String,
    /// The peer's IKE SPI (hex).
    pub remote_spi: String,
    /// Seconds since it was established (or created).
    pub age_secs: u64,
    /// Seconds until we rekey it at the latest (the configured rekey time; the
    /// jitter may make it sooner). `None`: no rekey configured.
    pub rekey_in_secs: Option<u64>,
    /// The peer's EAP identity, when EAP authenticated it (RFC 7296 §2.16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eap_id: Option<String>,
    /// Virtual addresses (RFC 7296 §3.15): assigned to us when we initiated, leased
    /// to the peer when it did.
    pub virtual_ips: Vec<String>,
    /// Its Child SAs.
    pub children: Vec<ChildSaStatus>,
}

/// One Child SA as [`Driver::status`](super::Driver::status) reports it.
#[derive(Clone, Debug, Serialize)]
pub struct ChildSaStatus {
    /// The endpoint's id.
    pub id: u64,
    /// The SAD's id.
    pub sad_id: Option<u64>,
    /// The ESP proposal chosen.
    pub suite: String,
    /// `TUNNEL` or `TRANSPORT`.
    pub mode: &'static str,
    /// Whether ESP is in UDP.
    pub udp_encap: bool,
    /// Our inbound SPI (hex).
    pub spi_in: String,
    /// The peer's SPI, our outbound (hex).
    pub spi_out: String,
    /// Our selectors.
    pub local_ts: Vec<String>,
    /// The peer's selectors.
    pub remote_ts: Vec<String>,
    /// Packets received and opened.
    pub packets_in: u64,
    /// Bytes received (inner).
    pub bytes_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Bytes sent (inner).
    pub bytes_out: u64,
    /// Packets dropped on this SA, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// Seconds until we rekey it at the latest (see [`IkeSaStatus::rekey_in_secs`]).
    pub rekey_in_secs: Option<u64>,
}

/// What [`Driver::status`](super::Driver::status) returns: every IKE SA with its Child SAs.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The IKE SAs.
    pub ike_sas: Vec<IkeSaStatus>,
    /// The virtual address pools and their leases.
    pub pools: Vec<PoolStatus>,
    /// The counters so far.
    pub counters: DriverCounters,
}

/// A close reason as a metrics label and counter key: `deleted_by_peer`,
/// `deleted_by_us`, `timeout`, `authentication_failed_<why>` (the
/// [`AuthFailure`](ipsec::ike::AuthFailure) label: `wrong_shared_key`, `expired`,
/// `unknown_issuer`...), `no_proposal_chosen`,
/// `notify_<NAME>` (the notification's IANA name, or its number), `error`.
pub fn reason_label(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Deleted { by_peer: true } => "deleted_by_peer".into(),
        CloseReason::Deleted { by_peer: false } => "deleted_by_us".into(),
        CloseReason::Timeout => "timeout".into(),
        CloseReason::AuthenticationFailed(why) => format!("authentication_failed_{}", why.label()),
        CloseReason::NoProposalChosen => "no_proposal_chosen".into(),
        CloseReason::NotifyReceived(n) => match n.name() {
            Some(name) => format!("notify_{name}"),
            None => format!("notify_{}", n.0),
        },
        CloseReason::Redirected => "redirected".into(),
        CloseReason::TooManyRedirects => "too_many_redirects".into(),
        _ => "error".into(),
    }
}
