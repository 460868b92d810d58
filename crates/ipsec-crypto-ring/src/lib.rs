//! ring backend (work in progress).
#![forbid(unsafe_code)]
