//! The data plane (filled in by the data-plane work).
