//! Counting dropped packets (and failed handshakes) by reason, and printing them
//! without letting a peer flood the output.
//!
//! Every event is counted under its reason. The first [`BURST`] events of a reason are
//! printed one line each; after that they are only counted, and at most one summary
//! line per [`INTERVAL`] and reason says how many were not shown. A reason that has
//! been quiet for [`REFILL_AFTER`] gets its individual lines back. The totals go into
//! the final report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Lines printed per reason before the summaries take over.
pub(crate) const BURST: u32 = 5;
/// At most one summary line per reason in this time.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// A reason without events for this long prints individual lines again.
pub(crate) const REFILL_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Reason {
    total: u64,
    shown: u32,
    hidden: u64,
    /// When the first hidden event since the last summary came.
    hidden_since: Option<Instant>,
    last: Option<Instant>,
}

/// Events not printed one by one: a summary line is due for them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The reason.
    pub reason: String,
    /// Events of this reason not printed since the last line about it.
    pub hidden: u64,
    /// All events of this reason so far.
    pub total: u64,
}

/// Counts events by reason and decides which ones are printed.
#[derive(Default)]
pub(crate) struct RateLog {
    reasons: BTreeMap<String, Reason>,
}

impl RateLog {
    /// Counts one event; returns whether its own line should be printed.
    pub(crate) fn count(&mut self, reason: &str, now: Instant) -> bool {
        let r = match self.reasons.get_mut(reason) {
            Some(r) => r,
            None => self.reasons.entry(reason.to_owned()).or_default(),
        };
        if r.hidden == 0
            && r.last
                .is_some_and(|t| now.saturating_duration_since(t) >= REFILL_AFTER)
        {
            r.shown = 0;
        }
        r.total += 1;
        r.last = Some(now);
        if r.shown < BURST {
            r.shown += 1;
            true
        } else {
            r.hidden += 1;
            r.hidden_since.get_or_insert(now);
            false
        }
    }

    /// The summaries due at `now`: for each reason whose first hidden event is at
    /// least [`INTERVAL`] old. With `all`, every reason with hidden events (at exit).
    pub(crate) fn summaries(&mut self, now: Instant, all: bool) -> Vec<Summary> {
        let mut due = Vec::new();
        for (reason, r) in &mut self.reasons {
            let ripe = r
                .hidden_since
                .is_some_and(|t| all || now.saturating_duration_since(t) >= INTERVAL);
            if r.hidden > 0 && ripe {
                due.push(Summary {
                    reason: reason.clone(),
                    hidden: r.hidden,
                    total: r.total,
                });
                r.hidden = 0;
                r.hidden_since = None;
            }
        }
        due
    }

    /// Events so far by reason.
    pub(crate) fn totals(&self) -> BTreeMap<String, u64> {
        self.reasons
            .iter()
            .map(|(k, r)| (k.clone(), r.total))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut log = RateLog::default();
        let shown = (0..200)
            .filter(|i| log.count("integrity", t0 + Duration::from_millis(*i)))
            .count();
        assert_eq!(shown, BURST as usize);
        // The first hidden event came at 5 ms: nothing is due before 1.005 s.
        assert!(log
            .summaries(t0 + Duration::from_millis(900), false)
            .is_empty());
        let s = log.summaries(t0 + Duration::from_millis(1005), false);
        assert_eq!(
            s,
            [Summary {
                reason: "integrity".into(),
                hidden: 195,
                total: 200
            }]
        );
        assert!(log.summaries(t0 + Duration::from_secs(5), true).is_empty());
        // Other reasons have their own burst.
        assert!(log.count("replay", t0 + Duration::from_secs(2)));
        assert!(!log.count("integrity", t0 + Duration::from_secs(2)));
        let s = log.summaries(t0 + Duration::from_millis(2100), true);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].hidden, s[0].total), (1, 201));
        assert_eq!(log.totals().values().sum::<u64>(), 202);
        assert_eq!(log.totals()["integrity"], 201);
        // Quiet for a minute: lines again.
        assert!(log.count("integrity", t0 + Duration::from_secs(70)));
    }
}
