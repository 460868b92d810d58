//! Prometheus text metrics (exposition format 0.0.4): IKE SAs by state, handshakes
//! and failures by reason, Child SAs, and packets, bytes and drops by reason per SA.
//!
//! Rendered from a [`Status`] and the endpoint's [`EndpointStats`]; the gateway
//! serves it over HTTP (`--metrics ADDR`).

use std::fmt::Write as _;

use ipsec::ike::EndpointStats;

use crate::driver::Status;

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics text for `status`, the endpoint's counters and the data plane's
/// drops by reason (`(reason, count)`).
pub fn render(status: &Status, ike: &EndpointStats, dataplane_drops: &[(String, u64)]) -> String {
    let mut out = String::new();
    let established = status
        .ike_sas
        .iter()
        .filter(|s| s.state == "ESTABLISHED")
        .count();
    header(
        &mut out,
        "ipsec_ike_sas",
        "gauge",
        "IKE SAs by state (half_open: responder SAs waiting for IKE_AUTH).",
    );
    let _ = writeln!(out, "ipsec_ike_sas{{state=\"established\"}} {established}");
    let connecting = status.ike_sas.len() - established;
    let _ = writeln!(out, "ipsec_ike_sas{{state=\"connecting\"}} {connecting}");
    let _ = writeln!(
        out,
        "ipsec_ike_sas{{state=\"half_open\"}} {}",
        ike.half_open
    );

    let c = &status.counters;
    header(
        &mut out,
        "ipsec_ike_handshakes_total",
        "counter",
        "IKE SAs established.",
    );
    let _ = writeln!(out, "ipsec_ike_handshakes_total {}", c.handshakes);
    header(
        &mut out,
        "ipsec_ike_handshake_failures_total",
        "counter",
        "IKE SAs that ended before they were established, by reason.",
    );
    for (reason, n) in &c.handshake_failures {
        let _ = writeln!(
            out,
            "ipsec_ike_handshake_failures_total{{reason=\"{}\"}} {n}",
            label(reason)
        );
    }
    header(
        &mut out,
        "ipsec_ike_refused_total",
        "counter",
        "IKE_SA_INIT requests refused by admission control, by reason.",
    );
    for (reason, n) in [
        ("cookie_sent", ike.cookies_sent),
        ("too_large", ike.init_too_large),
        ("per_source", ike.refused_per_source),
        ("full", ike.refused_full),
        ("evicted", ike.half_open_evicted),
    ] {
        let _ = writeln!(out, "ipsec_ike_refused_total{{reason=\"{reason}\"}} {n}");
    }
    header(
        &mut out,
        "ipsec_ike_closed_total",
        "counter",
        "Established IKE SAs closed, by reason.",
    );
    for (reason, n) in &c.ike_closed {
        let _ = writeln!(
            out,
            "ipsec_ike_closed_total{{reason=\"{}\"}} {n}",
            label(reason)
        );
    }
    header(
        &mut out,
        "ipsec_ike_rekeys_total",
        "counter",
        "IKE SA rekeys.",
    );
    let _ = writeln!(out, "ipsec_ike_rekeys_total {}", c.ike_rekeys);
    header(&mut out, "ipsec_child_sas", "gauge", "Child SAs installed.");
    let children: usize = status.ike_sas.iter().map(|s| s.children.len()).sum();
    let _ = writeln!(out, "ipsec_child_sas {children}");
    header(
        &mut out,
        "ipsec_child_sa_events_total",
        "counter",
        "Child SA installs, rekeys and failures.",
    );
    for (ev, n) in [
        ("installed", c.child_installed),
        ("rekeyed", c.child_rekeys),
        ("failed", c.child_failed),
        ("install_error", c.install_errors),
        ("acquire", c.acquires),
    ] {
        let _ = writeln!(out, "ipsec_child_sa_events_total{{event=\"{ev}\"}} {n}");
    }

    header(
        &mut out,
        "ipsec_sa_packets_total",
        "counter",
        "Packets per Child SA and direction.",
    );
    let mut bytes = String::new();
    let mut drops = String::new();
    for s in &status.ike_sas {
        for ch in &s.children {
            let labels = format!(
                "connection=\"{}\",peer=\"{}\",spi_in=\"{}\",spi_out=\"{}\"",
                label(&s.connection),
                label(&s.remote_id),
                ch.spi_in,
                ch.spi_out
            );
            let _ = writeln!(
                out,
                "ipsec_sa_packets_total{{{labels},dir=\"in\"}} {}",
                ch.packets_in
            );
            let _ = writeln!(
                out,
                "ipsec_sa_packets_total{{{labels},dir=\"out\"}} {}",
                ch.packets_out
            );
            let _ = writeln!(
                bytes,
                "ipsec_sa_bytes_total{{{labels},dir=\"in\"}} {}",
                ch.bytes_in
            );
            let _ = writeln!(
                bytes,
                "ipsec_sa_bytes_total{{{labels},dir=\"out\"}} {}",
                ch.bytes_out
            );
            for (reason, n) in &ch.drops {
                let _ = writeln!(
                    drops,
                    "ipsec_sa_drops_total{{{labels},reason=\"{}\"}} {n}",
                    label(reason)
                );
            }
        }
    }
    header(
        &mut out,
        "ipsec_sa_bytes_total",
        "counter",
        "Inner bytes per Child SA and direction.",
    );
    out.push_str(&bytes);
    header(
        &mut out,
        "ipsec_sa_drops_total",
        "counter",
        "Packets dropped on a Child SA, by reason.",
    );
    out.push_str(&drops);
    header(
        &mut out,
        "ipsec_dataplane_drops_total",
        "counter",
        "Packets the data plane dropped before or outside any SA, by reason.",
    );
    for (reason, n) in dataplane_drops {
        let _ = writeln!(
            out,
            "ipsec_dataplane_drops_total{{reason=\"{}\"}} {n}",
            label(reason)
        );
    }
    header(
        &mut out,
        "ipsec_pool_leases",
        "gauge",
        "Virtual IP leases by pool and state (online: held by an IKE SA; offline: kept for its identity).",
    );
    for p in &status.pools {
        for (state, n) in [("online", p.online), ("offline", p.offline)] {
            let _ = writeln!(
                out,
                "ipsec_pool_leases{{pool=\"{}\",state=\"{state}\"}} {n}",
                label(&p.name)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverCounters;

    #[test]
    fn every_sample_has_a_type_and_labels_are_escaped() {
        let mut counters = DriverCounters::default();
        counters
            .handshake_failures
            .insert("Auth\"x\"".to_string(), 2);
        let pool = crate::pool::MemPool::new(&crate::conf::Pool::new(
            "rw\"4",
            "10.3.0.0/24".parse().unwrap(),
        ))
        .unwrap();
        let peer = ipsec::ike::Identity::Fqdn("carol".into());
        let a = pool.acquire_one(&peer, "0.0.0.0".parse().unwrap()).unwrap();
        pool.acquire_one(&ipsec::ike::Identity::Fqdn("dave".into()), a);
        pool.release_one(&peer, a);
        let status = Status {
            ike_sas: Vec::new(),
            pools: vec![pool.status()],
            counters,
        };
        let text = render(
            &status,
            &EndpointStats::default(),
            &[("NoSa".to_string(), 3)],
        );
        assert!(text.contains("ipsec_ike_handshake_failures_total{reason=\"Auth\\\"x\\\"\"} 2"));
        assert!(text.contains("ipsec_dataplane_drops_total{reason=\"NoSa\"} 3"));
        assert!(text.contains("ipsec_pool_leases{pool=\"rw\\\"4\",state=\"online\"} 1"));
        assert!(text.contains("ipsec_pool_leases{pool=\"rw\\\"4\",state=\"offline\"} 1"));
        let typed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(typed.contains(&name), "{name} has no TYPE line");
        }
    }
}
