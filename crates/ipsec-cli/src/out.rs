//! Printing to stdout without panicking when it is closed.
//!
//! `println!` panics when a write fails, and Rust ignores SIGPIPE, so
//! `ipsec decode ... | head -1` used to end in a panic ("failed printing to stdout:
//! Broken pipe"). Every line goes through [`outln!`] instead: the first failed write
//! marks stdout closed and later lines are dropped. Commands that only print stop
//! early ([`closed`]); the demo and the peers finish their work (files, deletes)
//! quietly. At the end [`finish`] turns a closed pipe (EPIPE) into success, as
//! `head`'s readers expect, and any other write error into a failure.

use std::fmt;
use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set after the first failed write to stdout.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error other than a closed pipe.
static ERROR: OnceLock<String> = OnceLock::new();

/// Prints a line to stdout, like `println!`, but never panics.
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// Writes `args` and a newline to stdout unless it is closed; a failed write closes it.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        failed(&e);
    }
}

fn failed(e: &io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != ErrorKind::BrokenPipe {
        let _ = ERROR.set(e.to_string());
    }
}

/// Whether a write to stdout failed (the reader went away): nothing more is printed.
pub(crate) fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Flushes stdout. A closed pipe is success (there is nobody left to tell);
/// any other write error (a full disk) is the command's failure.
pub(crate) fn finish() -> Result<(), String> {
    if !closed() {
        if let Err(e) = io::stdout().lock().flush() {
            failed(&e);
        }
    }
    match ERROR.get() {
        Some(e) => Err(format!("stdout: {e}")),
        None => Ok(()),
    }
}
