//! ESP codec (work in progress).
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]
