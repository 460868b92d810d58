//! Certificate fields as strings and identities: subject and issuer in strongSwan's
//! DN syntax, subjectAltNames, DN identities (RFC 7296 §3.5 ID_DER_ASN1_DN) and the
//! CA key hashes of CERTREQ (RFC 7296 §3.7).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipsec_ike::Identity;
use ipsec_ike_wire::IdType;
use sha1::{Digest, Sha1};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::{ObjectIdentifier, SetOfVec};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Any, Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::{Name, RelativeDistinguishedName};
use x509_cert::Certificate;

use crate::error::PkiError;

/// Parses a DER certificate with x509-cert (RFC 5280 §4.1).
pub(crate) fn parse_cert(cert_der: &[u8]) -> Result<Certificate, PkiError> {
    Certificate::from_der(cert_der).map_err(|e| PkiError::BadCertificate(e.to_string()))
}

/// The DER SubjectPublicKeyInfo element of a certificate.
pub(crate) fn spki_der(cert_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    parse_cert(cert_der)?
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| PkiError::BadCertificate(e.to_string()))
}

/// DN attribute names, strongSwan's first (used when printing), then aliases.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("CN", "2.5.4.3"),
    ("E", "1.2.840.113549.1.9.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("serialNumber", "2.5.4.5"),
    ("SN", "2.5.4.4"),
    ("G", "2.5.4.42"),
    ("I", "2.5.4.43"),
    ("T", "2.5.4.12"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("street", "2.5.4.9"),
    ("postalCode", "2.5.4.17"),
    ("dnQualifier", "2.5.4.46"),
    ("pseudonym", "2.5.4.65"),
    ("N", "2.5.4.41"),
    ("D", "2.5.4.13"),
    // aliases, accepted when parsing
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("Email", "1.2.840.113549.1.9.1"),
    ("S", "2.5.4.8"),
    ("GN", "2.5.4.42"),
    ("surname", "2.5.4.4"),
    ("title", "2.5.4.12"),
    ("commonName", "2.5.4.3"),
    ("countryName", "2.5.4.6"),
    ("organizationName", "2.5.4.10"),
    ("organizationalUnitName", "2.5.4.11"),
    ("localityName", "2.5.4.7"),
    ("stateOrProvinceName", "2.5.4.8"),
];

const OID_EMAIL: &str = "1.2.840.113549.1.9.1";
const OID_DC: &str = "0.9.2342.19200300.100.1.25";

fn attribute_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    let dotted = oid.to_string();
    ATTRIBUTES
        .iter()
        .find(|(_, o)| *o == dotted)
        .map(|(n, _)| *n)
}

fn attribute_oid(name: &str) -> Option<ObjectIdentifier> {
    if let Some((_, o)) = ATTRIBUTES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return ObjectIdentifier::new(o).ok();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return ObjectIdentifier::new(name).ok();
    }
    None
}

/// The text of a string-typed attribute value, `None` for other types.
fn value_text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        // T.61 is taken as Latin-1, as most encoders that still use it mean.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge_space = c.is_whitespace() && (i == 0 || i == last);
        if matches!(c, ',' | '\\' | '"') || edge_space {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A DER Name in strongSwan's syntax: the RDNs in the order of the encoding
/// ("forward", `C=CH, O=strongSwan, CN=moon.strongswan.org`), attribute names as
/// strongSwan prints them (unknown types as the dotted OID), values that are not
/// strings as `#` and hex. A multi-valued RDN prints as its attributes in sequence.
/// `,`, `\`, `"` and edge spaces in values are escaped with `\`.
pub(crate) fn name_to_string(name: &Name) -> String {
    let mut out = String::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if !out.is_empty() {
                out.push_str(", ");
            }
            match attribute_name(&atv.oid) {
                Some(n) => out.push_str(n),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            match value_text(&atv.value) {
                Some(t) => out.push_str(&escape(&t)),
                None => {
                    out.push('#');
                    out.push_str(&hex(atv.value.value()));
                }
            }
        }
    }
    out
}

/// The subject of a certificate (RFC 5280 §4.1.2.6) in strongSwan's DN syntax,
/// forward RDN order: `C=CH, O=strongSwan, CN=moon.strongswan.org`.
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate does not parse.
pub fn subject(cert_der: &[u8]) -> Result<String, PkiError> {
    Ok(name_to_string(
        &parse_cert(cert_der)?.tbs_certificate.subject,
    ))
}

/// The issuer of a certificate (RFC 5280 §4.1.2.4), as [`subject`].
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate does not parse.
pub fn issuer(cert_der: &[u8]) -> Result<String, PkiError> {
    Ok(name_to_string(
        &parse_cert(cert_der)?.tbs_certificate.issuer,
    ))
}

/// The subjectAltName entries of a certificate (RFC 5280 §4.2.1.6) that can name an
/// IKE peer, in order: `dns:NAME`, `ip:ADDRESS`, `email:ADDRESS`, `uri:URI` and
/// `dn:DN`. Other name forms are left out. Empty if the extension is absent.
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate or the extension does not parse.
pub fn subject_alt_names(cert_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let cert = parse_cert(cert_der)?;
    Ok(sans(&cert)?
        .iter()
        .filter_map(|gn| match gn {
            GeneralName::DnsName(s) => Some(format!("dns:{}", s.as_str())),
            GeneralName::Rfc822Name(s) => Some(format!("email:{}", s.as_str())),
            GeneralName::UniformResourceIdentifier(s) => Some(format!("uri:{}", s.as_str())),
            GeneralName::IpAddress(o) => Some(match o.as_bytes() {
                b if b.len() == 4 => {
                    let a: [u8; 4] = b.try_into().unwrap_or_default();
                    format!("ip:{}", Ipv4Addr::from(a))
                }
                b if b.len() == 16 => {
                    let a: [u8; 16] = b.try_into().unwrap_or_default();
                    format!("ip:{}", Ipv6Addr::from(a))
                }
                b => format!("ip:#{}", hex(b)),
            }),
            GeneralName::DirectoryName(n) => Some(format!("dn:{}", name_to_string(n))),
            _ => None,
        })
        .collect())
}

/// The subjectAltName GeneralNames of a parsed certificate.
pub(crate) fn sans(cert: &Certificate) -> Result<Vec<GeneralName>, PkiError> {
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for ext in exts.iter().filter(|e| e.extn_id == SubjectAltName::OID) {
        let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
            .map_err(|e| PkiError::BadCertificate(format!("subjectAltName: {e}")))?;
        out.extend(san.0);
    }
    Ok(out)
}

/// A character of a DN string and whether it was escaped or quoted (and so is
/// literal: no separator, no trimmed space).
type Lit = (char, bool);

/// Splits a DN string at unescaped, unquoted commas, unescaping each part.
fn split_dn(s: &str) -> Result<Vec<Vec<Lit>>, PkiError> {
    let bad = || PkiError::BadIdentity(s.to_owned());
    let mut parts = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push((chars.next().ok_or_else(bad)?, true)),
            '"' => quoted = !quoted,
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push((c, quoted)),
        }
    }
    if quoted {
        return Err(bad());
    }
    parts.push(cur);
    Ok(parts)
}

/// The text of `lits` without the unprotected white space at either end.
fn trimmed(lits: &[Lit]) -> String {
    let start = lits
        .iter()
        .position(|&(c, lit)| lit || !c.is_whitespace())
        .unwrap_or(lits.len());
    let end = lits
        .iter()
        .rposition(|&(c, lit)| lit || !c.is_whitespace())
        .map_or(start, |i| i + 1);
    lits.get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|&(c, _)| c)
        .collect()
}

fn is_printable(s: &str) -> bool {
    // X.680 PrintableString.
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

/// A strongSwan DN string as an identity: [`Identity::Other`] with
/// `IdType::ID_DER_ASN1_DN` and the DER Name (RFC 7296 §3.5, RFC 5280 §4.1.2.4).
///
/// The string lists the RDNs in forward order, the order of the encoding, as
/// strongSwan writes them (`C=CH, O=strongSwan, CN=moon.strongswan.org`), separated
/// by `,` with optional spaces; RFC 4514 strings list them in reverse and are not
/// this syntax. Attribute names are strongSwan's (`C`, `ST`, `L`, `O`, `OU`, `CN`,
/// `E` or `emailAddress`, `DC`, `serialNumber`, `SN`, `G`, `T`, `UID`, ...) or a
/// dotted OID; each RDN has one attribute. A value may be double-quoted or escape a
/// character with `\`. Values are encoded as strongSwan does: `E` and `DC` as
/// IA5String, the others as PrintableString when they fit, else UTF8String.
///
/// # Errors
/// [`PkiError::BadIdentity`] for an empty string, a part without `=`, an unknown
/// attribute name, an empty value or a value that does not fit its type.
pub fn dn_identity(s: &str) -> Result<Identity, PkiError> {
    let bad = || PkiError::BadIdentity(s.to_owned());
    let mut rdns = Vec::new();
    for part in split_dn(s)? {
        let eq = part
            .iter()
            .position(|&(c, lit)| c == '=' && !lit)
            .ok_or_else(bad)?;
        let (key, value) = part.split_at(eq);
        let oid = attribute_oid(&trimmed(key)).ok_or_else(bad)?;
        let value = trimmed(value.get(1..).unwrap_or_default());
        let value = value.as_str();
        if value.is_empty() {
            return Err(bad());
        }
        let dotted = oid.to_string();
        let tag = if dotted == OID_EMAIL || dotted == OID_DC {
            if !value.is_ascii() {
                return Err(bad());
            }
            Tag::Ia5String
        } else if is_printable(value) {
            Tag::PrintableString
        } else {
            Tag::Utf8String
        };
        let value = Any::new(tag, value.as_bytes()).map_err(|_| bad())?;
        let atv = AttributeTypeAndValue { oid, value };
        let set = SetOfVec::try_from(vec![atv]).map_err(|_| bad())?;
        rdns.push(RelativeDistinguishedName(set));
    }
    let name = Name::from(x509_cert::name::RdnSequence(rdns));
    let data = name.to_der().map_err(|_| bad())?;
    Ok(Identity::Other {
        id_type: IdType::ID_DER_ASN1_DN,
        data,
    })
}

/// The subject of a certificate as a DN identity (its DER Name unchanged), the
/// identity strongSwan uses when a connection names a certificate but no id.
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate does not parse.
pub fn cert_identity(cert_der: &[u8]) -> Result<Identity, PkiError> {
    let cert = parse_cert(cert_der)?;
    let data = cert
        .tbs_certificate
        .subject
        .to_der()
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    Ok(Identity::Other {
        id_type: IdType::ID_DER_ASN1_DN,
        data,
    })
}

/// An identity in strongSwan's syntax: a DN ([`dn_identity`]) if the string has a
/// `=` (strongSwan's rule) or the prefix `dn:` or `asn1dn:`, otherwise
/// `ipsec_ike::Identity`'s own `FromStr` (IP address, `@fqdn`, `@#keyid`,
/// `user@host`, FQDN).
///
/// # Errors
/// [`PkiError::BadIdentity`] if the string does not parse.
pub fn parse_identity(s: &str) -> Result<Identity, PkiError> {
    if let Some(dn) = s.strip_prefix("dn:").or_else(|| s.strip_prefix("asn1dn:")) {
        return dn_identity(dn);
    }
    if s.contains('=') && !s.starts_with('@') {
        return dn_identity(s);
    }
    s.parse::<Identity>()
        .map_err(|_| PkiError::BadIdentity(s.to_owned()))
}

/// An identity in strongSwan's syntax, for logs and status output: a DN identity
/// (ID_DER_ASN1_DN) as [`subject`] prints names (`C=CH, O=strongSwan, CN=moon`), or
/// the DER in hex after `#` if it does not parse; any other identity as its
/// `Display` (`@fqdn`, an address, `user@host`, ...).
pub fn identity_string(id: &Identity) -> String {
    match id {
        Identity::Other { id_type, data } if *id_type == IdType::ID_DER_ASN1_DN => {
            match Name::from_der(data) {
                Ok(name) => name_to_string(&name),
                Err(_) => format!("#{}", hex(data)),
            }
        }
        other => other.to_string(),
    }
}

/// The SHA-1 hash of a certificate's DER SubjectPublicKeyInfo element, as a CERTREQ
/// payload lists its trust anchors (RFC 7296 §3.7).
///
/// # Errors
/// [`PkiError::BadCertificate`] if the certificate does not parse.
pub fn ca_key_hash(cert_der: &[u8]) -> Result<[u8; 20], PkiError> {
    Ok(Sha1::digest(spki_der(cert_der)?).into())
}

/// One attribute of a Name reduced for comparison: the OID, and the value's text
/// lowercased for string types or its tag and bytes otherwise.
#[derive(PartialEq, Eq)]
enum NormValue {
    Text(String),
    Raw(u8, Vec<u8>),
}

fn normalized(name: &Name) -> Vec<Vec<(ObjectIdentifier, NormValue)>> {
    name.0
        .iter()
        .map(|rdn| {
            rdn.0
                .iter()
                .map(|atv| {
                    let v = match value_text(&atv.value) {
                        Some(t) => NormValue::Text(t.trim().to_lowercase()),
                        None => {
                            NormValue::Raw(u8::from(atv.value.tag()), atv.value.value().to_vec())
                        }
                    };
                    (atv.oid, v)
                })
                .collect()
        })
        .collect()
}

/// Whether the DER Names `a` and `b` name the same entity: equal bytes, or equal
/// after decoding the string values of both, ignoring their string types and ASCII
/// case (RFC 5280 §7.1 compares with caseIgnoreMatch, as strongSwan does).
pub(crate) fn same_dn(a_der: &[u8], b: &Name) -> bool {
    if b.to_der().is_ok_and(|d| d == a_der) {
        return true;
    }
    match Name::from_der(a_der) {
        Ok(a) => normalized(&a) == normalized(b),
        Err(_) => false,
    }
}
