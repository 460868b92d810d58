//! The configuration (filled in by the swanctl work).
