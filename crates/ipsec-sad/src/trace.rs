//! The optional [`tracing`](https://docs.rs/tracing) events of this crate (the `tracing`
//! feature): why a packet was dropped (`trace`, since every packet can be one), with the
//! same reason the drop counters count ([`DropReason`](crate::DropReason)); SAs
//! installed and removed and the lifetime events (`info`), and the warnings of
//! [`Event`](crate::Event) (`warn`: sequence numbers running out).
//!
//! The macros take `tracing`'s own syntax, restricted to what the crate uses: fields
//! `key = value`, `key = %value` (Display), `key = ?value` (Debug) or a bare `name`
//! (the variable of that name), then a literal message. With the feature they are `tracing`'s macros (`warning!` is `warn!`,
//! whose name clashes with the lint attribute). Without it they expand to an
//! `if false` block that only borrows the field values, so the crate has no `tracing`
//! dependency, nothing runs, and a binding used only in an event is still used.
//!
//! Events never carry keys or payload bytes: SA ids, SPIs, addresses and reasons.

/// Without the feature: borrows each field value in a block that never runs.
#[cfg(not(feature = "tracing"))]
macro_rules! off {
    () => {};
    ($msg:literal $(,)?) => {};
    ($msg:literal, $($arg:expr),+ $(,)?) => {
        if false {
            $(let _ = &$arg;)+
        }
    };
    ($k:ident = % $v:expr $(, $($rest:tt)*)?) => {
        if false {
            let _ = &$v;
        }
        $($crate::trace::off!($($rest)*);)?
    };
    ($k:ident = ? $v:expr $(, $($rest:tt)*)?) => {
        if false {
            let _ = &$v;
        }
        $($crate::trace::off!($($rest)*);)?
    };
    ($k:ident = $v:expr $(, $($rest:tt)*)?) => {
        if false {
            let _ = &$v;
        }
        $($crate::trace::off!($($rest)*);)?
    };
    ($k:ident $(, $($rest:tt)*)?) => {
        if false {
            let _ = &$k;
        }
        $($crate::trace::off!($($rest)*);)?
    };
}

/// A `trace`-level event (per-packet drops).
#[cfg(feature = "tracing")]
macro_rules! trace {
    ($($t:tt)*) => { ::tracing::trace!($($t)*) };
}
/// A `trace`-level event (per-packet drops): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! trace {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// A `debug`-level event (acquires, SPD changes).
#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($t:tt)*) => { ::tracing::debug!($($t)*) };
}
/// A `debug`-level event (acquires, SPD changes): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! debug {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// An `info`-level event (SA transitions).
#[cfg(feature = "tracing")]
macro_rules! info {
    ($($t:tt)*) => { ::tracing::info!($($t)*) };
}
/// An `info`-level event (SA transitions): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! info {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// A `warn`-level event (sequence numbers running out).
#[cfg(feature = "tracing")]
macro_rules! warning {
    ($($t:tt)*) => { ::tracing::warn!($($t)*) };
}
/// A `warn`-level event (sequence numbers running out): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! warning {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off;
pub(crate) use {debug, info, trace, warning};
