//! Simultaneous rekeys (RFC 7296 §2.8.1, §2.8.2, §2.25): which of two SAs created at
//! once survives, decided by the nonces.

/// Whether `a` is lower than `b` octet by octet, a prefix being lower (RFC 7296 §2.8.1).
pub(crate) fn nonce_lower(a: &[u8], b: &[u8]) -> bool {
    a < b
}

/// The lower of two nonces.
pub(crate) fn min_nonce<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if nonce_lower(a, b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_order_is_octet_by_octet() {
        assert!(nonce_lower(&[1, 2, 3], &[1, 2, 4]));
        assert!(nonce_lower(&[1, 2], &[1, 2, 0]));
        assert!(!nonce_lower(&[2], &[1, 255, 255]));
    }
}
