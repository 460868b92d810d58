//! What `ipsec load` counts, and its report as text or as one JSON object.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The counts of one run.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Handshakes asked for.
    pub(super) total: u32,
    /// Most handshakes in flight at once (as asked).
    pub(super) concurrency: u32,
    /// Whether the IKE SAs were held until the end (`--keep`).
    pub(super) kept: bool,
    /// Handshakes that ended with the IKE SA established and the first Child SA
    /// installed.
    pub(super) succeeded: u32,
    /// Failed handshakes by reason.
    pub(super) failures: BTreeMap<String, u32>,
    /// Latency of each successful handshake, nanoseconds (from `connect` to the IKE
    /// SA established with its Child SA installed).
    pub(super) latencies_ns: Vec<u64>,
    /// Nanoseconds from the first `connect` to the end of the last handshake.
    pub(super) handshake_ns: u64,
    /// Deletes of established IKE SAs that the peer answered.
    pub(super) deletes_answered: u32,
    /// Established IKE SAs that did not end with our answered delete, by reason
    /// (a delete that timed out, the peer deleting a held SA, the final wait
    /// running out).
    pub(super) deletes_failed: BTreeMap<String, u32>,
    /// Datagrams sent.
    pub(super) sent: u64,
    /// Datagrams received (on either socket).
    pub(super) received: u64,
    /// Datagrams the kernel refused to send (the handshake retransmits).
    pub(super) send_errors: u64,
    /// CPU time of this process (user and system, all threads), where known.
    pub(super) cpu_seconds: Option<f64>,
}

/// The CPU time (user and system, all threads) of this process so far: Linux's
/// `/proc/self/stat` fields 14 and 15 (proc(5)), in ticks of 1/100 s (`USER_HZ`, 100
/// on every Linux architecture's ABI). `None` elsewhere.
pub(super) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Percentiles {
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

/// Nearest-rank percentiles of `ns` (sorted in place); `None` when it is empty.
pub(super) fn percentiles(ns: &mut [u64]) -> Option<Percentiles> {
    ns.sort_unstable();
    let last = ns.len().checked_sub(1)?;
    let at = |p: usize| {
        // The smallest value with at least p% of the values at or below it.
        let rank = (p * ns.len()).div_ceil(100).max(1);
        ns[(rank - 1).min(last)] as f64 / 1e6
    };
    Some(Percentiles {
        p50: at(50),
        p90: at(90),
        p99: at(99),
        max: ns[last] as f64 / 1e6,
    })
}

impl Stats {
    /// Handshakes that failed.
    pub(super) fn failed(&self) -> u32 {
        self.failures.values().sum()
    }

    /// Counts a failed handshake.
    pub(super) fn fail(&mut self, reason: String) {
        *self.failures.entry(reason).or_default() += 1;
    }

    /// Counts an established IKE SA that did not end with an answered delete.
    pub(super) fn delete_failed(&mut self, reason: String) {
        *self.deletes_failed.entry(reason).or_default() += 1;
    }

    /// Seconds of the handshake phase and successful handshakes per second.
    fn rate(&self) -> (f64, f64) {
        let secs = self.handshake_ns as f64 / 1e9;
        let rate = if secs > 0.0 {
            f64::from(self.succeeded) / secs
        } else {
            0.0
        };
        (secs, rate)
    }

    /// The report as one JSON object.
    pub(super) fn json(&mut self) -> Value {
        let (secs, rate) = self.rate();
        let lat = percentiles(&mut self.latencies_ns)
            .map(|p| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max}));
        json!({
            "total": self.total,
            "concurrency": self.concurrency,
            "kept": self.kept,
            "handshakes": self.succeeded,
            "failed": self.failed(),
            "failures": self.failures,
            "seconds": secs,
            "rate": rate,
            "latency_ms": lat,
            "deletes": {"answered": self.deletes_answered, "failed": self.deletes_failed},
            "datagrams": {"sent": self.sent, "received": self.received, "send_errors": self.send_errors},
            "cpu_seconds": self.cpu_seconds,
        })
    }

    /// The report as lines of text.
    pub(super) fn text(&mut self) -> Vec<String> {
        let (secs, rate) = self.rate();
        let mut v = vec![format!(
            "{} of {} handshakes in {secs:.3} s: {rate:.1}/s (concurrency {}{})",
            self.succeeded,
            self.total,
            self.concurrency,
            if self.kept { ", kept" } else { "" }
        )];
        if let Some(p) = percentiles(&mut self.latencies_ns) {
            v.push(format!(
                "latency ms: p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3}",
                p.p50, p.p90, p.p99, p.max
            ));
        }
        v.push(format!("failed: {}", self.failed()));
        for (reason, n) in &self.failures {
            v.push(format!("  {n} {reason}"));
        }
        let not: u32 = self.deletes_failed.values().sum();
        v.push(format!(
            "deletes: {} answered, {not} not",
            self.deletes_answered
        ));
        for (reason, n) in &self.deletes_failed {
            v.push(format!("  {n} {reason}"));
        }
        v.push(format!(
            "datagrams: {} sent, {} received, {} send errors",
            self.sent, self.received, self.send_errors
        ));
        if let Some(cpu) = self.cpu_seconds {
            let per = if self.total > 0 {
                cpu * 1e3 / f64::from(self.total)
            } else {
                0.0
            };
            v.push(format!(
                "CPU time of this process: {cpu:.2} s, {per:.3} ms per handshake"
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::{cpu_seconds, percentiles, Percentiles};

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_is_read_on_linux() {
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentiles(&mut []), None);
        let ms = |v: &[u64]| v.iter().map(|m| m * 1_000_000).collect::<Vec<u64>>();
        assert_eq!(
            percentiles(&mut ms(&[7])),
            Some(Percentiles {
                p50: 7.0,
                p90: 7.0,
                p99: 7.0,
                max: 7.0
            })
        );
        // 1..=100 in reverse: the p-th percentile is p.
        let mut v = ms(&(1..=100).rev().collect::<Vec<u64>>());
        assert_eq!(
            percentiles(&mut v),
            Some(Percentiles {
                p50: 50.0,
                p90: 90.0,
                p99: 99.0,
                max: 100.0
            })
        );
        // Ten values: p50 is the 5th, p90 the 9th, p99 the 10th.
        let mut v = ms(&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        let p = percentiles(&mut v).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (5.0, 9.0, 10.0, 10.0));
    }
}
