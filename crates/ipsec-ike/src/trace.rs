//! The optional [`tracing`](https://docs.rs/tracing) events of this crate (the `tracing`
//! feature): why a datagram was dropped (`debug`), the transitions of IKE SAs and Child
//! SAs (`info`: established, rekeyed, deleted, retransmissions, liveness checks) and
//! failures (`warn`: a handshake that failed, an IKE SA closed for another reason than a
//! Delete, a Child SA that could not be created). Events are emitted where the
//! endpoint's counters ([`EndpointStats`](crate::EndpointStats)) count.
//!
//! The macros take `tracing`'s own syntax, restricted to what the crate uses: fields
//! `key = value`, `key = %value` (Display), `key = ?value` (Debug) or a bare `name`
//! (the variable of that name), then a literal message. With the feature they are `tracing`'s macros (`warning!` is `warn!`,
//! whose name clashes with the lint attribute). Without it they expand to an
//! `if false` block that only borrows the field values, so the crate has no `tracing`
//! dependency, nothing runs, and a binding used only in an event is still used.
//!
//! Events never carry keys, nonces or message bytes: SPIs, handles, addresses, Message
//! IDs, notification types and reasons.

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

/// A `trace`-level event (NAT keepalives due).
#[cfg(feature = "tracing")]
macro_rules! trace {
    ($($t:tt)*) => { ::tracing::trace!($($t)*) };
}
/// A `trace`-level event (NAT keepalives due): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! trace {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// A `debug`-level event (dropped datagrams).
#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($t:tt)*) => { ::tracing::debug!($($t)*) };
}
/// A `debug`-level event (dropped datagrams): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! debug {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// An `info`-level event (state transitions).
#[cfg(feature = "tracing")]
macro_rules! info {
    ($($t:tt)*) => { ::tracing::info!($($t)*) };
}
/// An `info`-level event (state transitions): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! info {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

/// A `warn`-level event (failures).
#[cfg(feature = "tracing")]
macro_rules! warning {
    ($($t:tt)*) => { ::tracing::warn!($($t)*) };
}
/// A `warn`-level event (failures): nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! warning {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off;
pub(crate) use {debug, info, trace, warning};
