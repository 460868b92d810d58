//! The optional [`tracing`](https://docs.rs/tracing) events of this crate (the `tracing`
//! feature): why a packet was dropped, at `trace` level, since every packet can be one.
//!
//! The macros take `tracing`'s own syntax, restricted to what the crate uses: fields
//! `key = value`, `key = %value` (Display), `key = ?value` (Debug) or a bare `name`
//! (the variable of that name), then a literal message. With the feature they are `tracing`'s macros. Without it they expand to an
//! `if false` block that only borrows the field values, so the crate has no `tracing`
//! dependency, nothing runs, and a binding used only in an event is still used.
//!
//! Events never carry keys or payload bytes: only SPIs, sequence numbers and reasons.

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

/// A `debug`-level event.
#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($t:tt)*) => { ::tracing::debug!($($t)*) };
}
/// A `debug`-level event: nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
macro_rules! debug {
    ($($t:tt)*) => {{ $crate::trace::off!($($t)*); }};
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off;
pub(crate) use {debug, trace};
