//! The constants of UDP encapsulation for NAT traversal (RFC 3948), defined once for
//! the ESP data plane and IKE, which share port 4500.

/// The IKE and ESP-in-UDP port of NAT traversal (RFC 3948 §2, RFC 7296 §2.23).
pub const NAT_T_PORT: u16 = 4500;

/// The Non-ESP Marker: four zero bytes in front of an IKE message on port 4500, where
/// an ESP packet would have its (never zero) SPI (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// The NAT-keepalive payload: one 0xFF byte (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];
