//! The notification data of the IKEv2 redirect mechanism ([RFC 5685 §8]): REDIRECT
//! (16407) and REDIRECTED_FROM (16408). REDIRECT_SUPPORTED (16406) carries no data.
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | GW Ident Type |  GW Ident Len |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               ~
//! ~                  New Responder GW Identity                    ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! ~                         Nonce Data                            ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The Nonce Data (the initiator's Ni) follows only in a REDIRECT answering an
//! IKE_SA_INIT request (RFC 5685 §4); a REDIRECT in IKE_AUTH or INFORMATIONAL and a
//! REDIRECTED_FROM carry none. The identity is an IPv4 address (type 1, 4 bytes), an
//! IPv6 address (type 2, 16 bytes) or an FQDN (type 3, 1..=255 bytes); the parser
//! takes only printable ASCII for an FQDN, since an embedder prints and resolves it.
//!
//! [RFC 5685 §8]: https://www.rfc-editor.org/rfc/rfc5685#section-8

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::registry;

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{check_emit_len, Reader, Writer};

registry! {
    /// IKEv2 Gateway Identity Types (RFC 5685 §10); 241..=255 are private use.
    GatewayIdType(u8) {
        /// An IPv4 address of the new VPN gateway.
        IPV4 = 1,
        /// An IPv6 address of the new VPN gateway.
        IPV6 = 2,
        /// The fully qualified domain name of the new VPN gateway.
        FQDN = 3,
    }
}

/// A gateway identity as RFC 5685 §8 encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatewayIdRepr<'a> {
    /// An IP address (type 1 or 2 by its family).
    Ip(IpAddr),
    /// A domain name (type 3): printable ASCII, 1..=255 bytes.
    Fqdn(&'a [u8]),
}

impl GatewayIdRepr<'_> {
    /// The GW Ident Type of this identity.
    pub const fn id_type(&self) -> GatewayIdType {
        match self {
            GatewayIdRepr::Ip(IpAddr::V4(_)) => GatewayIdType::IPV4,
            GatewayIdRepr::Ip(IpAddr::V6(_)) => GatewayIdType::IPV6,
            GatewayIdRepr::Fqdn(_) => GatewayIdType::FQDN,
        }
    }

    /// Length of the identity bytes (the GW Ident Len field).
    pub fn len(&self) -> usize {
        match self {
            GatewayIdRepr::Ip(IpAddr::V4(_)) => 4,
            GatewayIdRepr::Ip(IpAddr::V6(_)) => 16,
            GatewayIdRepr::Fqdn(n) => n.len(),
        }
    }

    /// Whether the identity has no bytes (an empty FQDN, which the parser refuses).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `name` is acceptable as a type-3 identity: 1..=255 bytes of printable
/// ASCII (no spaces or control characters).
pub fn fqdn_ok(name: &[u8]) -> bool {
    (1..=255).contains(&name.len()) && name.iter().all(|b| b.is_ascii_graphic())
}

/// The data of a REDIRECT or REDIRECTED_FROM notification (RFC 5685 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RedirectRepr<'a> {
    /// The new (REDIRECT) or original (REDIRECTED_FROM) gateway.
    pub gateway: GatewayIdRepr<'a>,
    /// The Nonce Data: the initiator's Ni in a REDIRECT answering IKE_SA_INIT, empty
    /// otherwise.
    pub nonce: &'a [u8],
}

impl<'a> RedirectRepr<'a> {
    /// Parses notification data.
    ///
    /// # Errors
    /// `Truncated` when the two-byte header or the identity is cut short;
    /// `BadValue("gateway identity type")` for a type other than 1, 2 or 3;
    /// `LengthField` when an address has the wrong length or an FQDN is empty;
    /// `BadValue("gateway FQDN")` for an FQDN that is not printable ASCII.
    pub fn parse(data: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(data);
        let head = r.take(2)?;
        let (ty, len) = match head {
            [t, l] => (GatewayIdType(*t), usize::from(*l)),
            _ => return Err(Reader::error_at(ParseErrorKind::LengthField, 0)),
        };
        let at = r.pos();
        let id = r.take(len)?;
        let gateway = match ty {
            GatewayIdType::IPV4 => <[u8; 4]>::try_from(id)
                .map(|b| GatewayIdRepr::Ip(IpAddr::V4(Ipv4Addr::from(b))))
                .map_err(|_| Reader::error_at(ParseErrorKind::LengthField, 1))?,
            GatewayIdType::IPV6 => <[u8; 16]>::try_from(id)
                .map(|b| GatewayIdRepr::Ip(IpAddr::V6(Ipv6Addr::from(b))))
                .map_err(|_| Reader::error_at(ParseErrorKind::LengthField, 1))?,
            GatewayIdType::FQDN => {
                if id.is_empty() {
                    return Err(Reader::error_at(ParseErrorKind::LengthField, 1));
                }
                if !fqdn_ok(id) {
                    return Err(Reader::error_at(
                        ParseErrorKind::BadValue("gateway FQDN"),
                        at,
                    ));
                }
                GatewayIdRepr::Fqdn(id)
            }
            _ => {
                return Err(Reader::error_at(
                    ParseErrorKind::BadValue("gateway identity type"),
                    0,
                ))
            }
        };
        Ok(RedirectRepr {
            gateway,
            nonce: r.take_rest(),
        })
    }

    /// Length of the data [`RedirectRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        2usize
            .saturating_add(self.gateway.len())
            .saturating_add(self.nonce.len())
    }

    /// Writes the notification data.
    ///
    /// # Panics
    /// When `buf` is shorter than [`RedirectRepr::buffer_len`], or an FQDN is longer
    /// than 255 bytes (the length field is one byte).
    pub fn emit(&self, buf: &mut [u8]) {
        check_emit_len(buf.len(), self.buffer_len());
        let len = u8::try_from(self.gateway.len()).expect("gateway identity of 255 bytes at most");
        let mut w = Writer::new(buf);
        w.u8(self.gateway.id_type().0);
        w.u8(len);
        match self.gateway {
            GatewayIdRepr::Ip(IpAddr::V4(a)) => w.put(&a.octets()),
            GatewayIdRepr::Ip(IpAddr::V6(a)) => w.put(&a.octets()),
            GatewayIdRepr::Fqdn(n) => w.put(n),
        }
        w.put(self.nonce);
    }

    /// The notification data as a new vector.
    ///
    /// # Panics
    /// As [`RedirectRepr::emit`].
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = alloc::vec![0u8; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_layouts() {
        // RFC 5685 §8: type, length, identity, nonce.
        let r = RedirectRepr::parse(&[1, 4, 192, 0, 2, 1, 0xaa, 0xbb]).unwrap();
        assert_eq!(
            r.gateway,
            GatewayIdRepr::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(r.nonce, &[0xaa, 0xbb]);
        let r = RedirectRepr::parse(b"\x03\x0bvpn.example").unwrap();
        assert_eq!(r.gateway, GatewayIdRepr::Fqdn(b"vpn.example"));
        assert!(r.nonce.is_empty());
        let mut v6 = alloc::vec![2, 16];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            RedirectRepr::parse(&v6).unwrap().gateway,
            GatewayIdRepr::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn refusals() {
        let kind = |d: &[u8]| RedirectRepr::parse(d).unwrap_err().kind;
        assert!(matches!(kind(&[]), ParseErrorKind::Truncated { needed: 2 }));
        assert!(matches!(kind(&[1]), ParseErrorKind::Truncated { .. }));
        assert!(matches!(
            kind(&[1, 4, 1, 2]),
            ParseErrorKind::Truncated { .. }
        ));
        assert_eq!(kind(&[1, 3, 1, 2, 3]), ParseErrorKind::LengthField);
        assert_eq!(kind(&[2, 4, 1, 2, 3, 4]), ParseErrorKind::LengthField);
        assert_eq!(kind(&[3, 0]), ParseErrorKind::LengthField);
        assert_eq!(
            kind(b"\x03\x02a "),
            ParseErrorKind::BadValue("gateway FQDN")
        );
        assert_eq!(
            kind(&[4, 0]),
            ParseErrorKind::BadValue("gateway identity type")
        );
    }
}
