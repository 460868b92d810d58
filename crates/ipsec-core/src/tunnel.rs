//! What ESP and AH tunnel mode share about the outer header: how DSCP and DF are
//! chosen (RFC 4301 §8.1) and the ECN rules of RFC 6040.

/// The ECN codepoints (RFC 3168 §5).
pub mod ecn {
    /// Not ECN-capable transport.
    pub const NOT_ECT: u8 = 0b00;
    /// ECN-capable transport (1).
    pub const ECT1: u8 = 0b01;
    /// ECN-capable transport (0).
    pub const ECT0: u8 = 0b10;
    /// Congestion experienced.
    pub const CE: u8 = 0b11;
}

/// How the outer DSCP is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DscpPolicy {
    /// Copied from the inner header.
    #[default]
    Copy,
    /// Set to this value (6 bits).
    Set(u8),
}

/// How the DF bit of an IPv4 outer header is chosen (RFC 4301 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DfPolicy {
    /// Copied from the inner IPv4 header; set for inner IPv6.
    #[default]
    Copy,
    /// Always set.
    Set,
    /// Always clear.
    Clear,
}

/// The RFC 6040 decapsulation table (Figure 4): the ECN field of the forwarded inner
/// packet, or `None` for drop.
pub const fn decap_ecn(inner: u8, outer: u8) -> Option<u8> {
    let (inner, outer) = (inner & 0b11, outer & 0b11);
    match (inner, outer) {
        (ecn::NOT_ECT, ecn::CE) => None,
        (ecn::NOT_ECT, _) => Some(ecn::NOT_ECT),
        (_, ecn::CE) => Some(ecn::CE),
        (ecn::ECT0, ecn::ECT1) => Some(ecn::ECT1),
        (i, _) => Some(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_decapsulation_table() {
        use ecn::*;
        // Figure 4 of RFC 6040, every cell: rows inner, columns outer (None: drop).
        let outers = [NOT_ECT, ECT0, ECT1, CE];
        let rows = [
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT0, [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)]),
            (ECT1, [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, want) in rows {
            for (outer, want) in outers.into_iter().zip(want) {
                assert_eq!(decap_ecn(inner, outer), want, "inner {inner} outer {outer}");
                // Only the two ECN bits count: the DSCP bits of either TOS byte do not.
                assert_eq!(decap_ecn(0xfc | inner, 0xa8 | outer), want);
            }
        }
    }
}
