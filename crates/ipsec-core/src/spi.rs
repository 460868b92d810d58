//! Security parameter indexes.

use core::fmt;

/// An ESP or AH security parameter index (RFC 4303 §2.1, RFC 4302 §2.4).
///
/// SPI values 1 to 255 are reserved by IANA and 0 is reserved for local use
/// ([`Spi::is_reserved`]); a data plane never assigns them to an SA.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Spi(pub u32);

impl Spi {
    /// The SPI as it appears on the wire (network byte order).
    pub const fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads an SPI from its wire form.
    pub const fn from_be_bytes(b: [u8; 4]) -> Self {
        Spi(u32::from_be_bytes(b))
    }

    /// True for the values 0..=255, which RFC 4303 §2.1 reserves.
    pub const fn is_reserved(self) -> bool {
        self.0 < 256
    }
}

impl fmt::Debug for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spi(0x{:08x})", self.0)
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// An IKE SA SPI (RFC 7296 §3.1): 8 bytes chosen by each peer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IkeSpi(pub [u8; 8]);

impl IkeSpi {
    /// The all-zero SPI that stands for "not yet known" in an IKE_SA_INIT request.
    pub const ZERO: IkeSpi = IkeSpi([0; 8]);

    /// True when all eight bytes are zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Debug for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IkeSpi({self})")
    }
}

impl fmt::Display for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_reserved_range() {
        assert!(Spi(0).is_reserved());
        assert!(Spi(255).is_reserved());
        assert!(!Spi(256).is_reserved());
    }

    #[test]
    fn spi_wire_roundtrip() {
        let s = Spi(0xdead_beef);
        assert_eq!(s.to_be_bytes(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Spi::from_be_bytes(s.to_be_bytes()), s);
        assert_eq!(format!("{s}"), "0xdeadbeef");
    }
}
