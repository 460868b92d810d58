//! A `tracing` subscriber that keeps every event, for the tests of the `tracing`
//! feature of `ipsec-esp`, `ipsec-sad` and `ipsec-ike`.
//!
//! [`Capture::run`] installs it for the current thread only, so tests running in
//! parallel do not see each other's events. Field values are kept as text: a `&str`
//! field as it is (`reason = "replay"` gives `replay`), any other through its `Debug`
//! (or `Display` for `%value` fields).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event as it was emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Its level.
    pub level: Level,
    /// Its target (the module path that emitted it, `ipsec_ike::session`).
    pub target: String,
    /// Its message.
    pub message: String,
    /// Its other fields by name, as text.
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    /// The field `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A subscriber that records every event (all levels, all targets); clones share the
/// record.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with this subscriber as the current thread's default.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::subscriber::with_default(self.clone(), f)
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Captured> {
        self.lock().clone()
    }

    /// The events whose target starts with `target` (a crate: `ipsec_esp`).
    pub fn from(&self, target: &str) -> Vec<Captured> {
        self.lock()
            .iter()
            .filter(|e| e.target.starts_with(target))
            .cloned()
            .collect()
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Captured>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Fields<'a>(&'a mut Captured);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // The layers emit events only; a span would get this constant id.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut c = Captured {
            level: *meta.level(),
            target: meta.target().to_owned(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut c));
        self.lock().push(c);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_level_target_message_and_fields() {
        let c = Capture::new();
        c.run(|| {
            tracing::debug!(reason = "replay", seq = 7u32, spi = %"0x00000100", "dropped");
        });
        // Not installed any more: this one is not recorded.
        tracing::debug!(reason = "other", "not seen");
        let e = c.events();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].level, Level::DEBUG);
        assert!(e[0].target.starts_with("ipsec_test"), "{}", e[0].target);
        assert_eq!(e[0].message, "dropped");
        assert_eq!(e[0].field("reason"), Some("replay"));
        assert_eq!(e[0].field("seq"), Some("7"));
        assert_eq!(e[0].field("spi"), Some("0x00000100"));
        assert_eq!(c.from("ipsec_esp"), vec![]);
    }
}
