//! Proposal strings in the syntax strongSwan users know, such as
//! `aes128gcm16-prfsha256-x25519` (IKE), `aes256-sha384-ecp384` (IKE, CBC + HMAC) or
//! `chacha20poly1305` (ESP).
//!
//! A string is a `-`-separated list of algorithm tokens; several proposals are separated
//! by commas. Tokens of the same kind are alternatives, in order of preference. The rules
//! follow strongSwan's:
//! - IKE proposals need an encryption algorithm, a PRF and a key exchange method; a
//!   non-AEAD proposal needs an integrity algorithm, and where it has no PRF token the
//!   PRFs of its integrity algorithms are implied.
//! - AEAD and non-AEAD algorithms cannot share a proposal, and AEADs take no integrity
//!   algorithm.
//! - ESP proposals need an encryption algorithm (and integrity unless it is an AEAD);
//!   a key exchange method there means PFS. `esn` and `noesn` choose sequence numbers.
//! - AH proposals have integrity algorithms only (plus optional PFS and ESN).
//! - `keN_<method>` (N = 1 to 7) offers an additional key exchange (RFC 9370), as in
//!   `aes256gcm16-prfsha384-x25519-ke1_mlkem768`; `keN_none` makes it optional.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::suites::{self, EncrDesc, IntegDesc, KeDesc, PrfDesc};

/// What a proposal is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProposalKind {
    /// An IKE SA.
    Ike,
    /// An ESP Child SA.
    Esp,
    /// An AH Child SA.
    Ah,
}

impl fmt::Display for ProposalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProposalKind::Ike => "IKE",
            ProposalKind::Esp => "ESP",
            ProposalKind::Ah => "AH",
        })
    }
}

/// One proposal: the algorithms of each transform type, in order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// What it is for.
    pub kind: ProposalKind,
    /// Encryption transforms.
    pub encr: Vec<&'static EncrDesc>,
    /// Integrity transforms (empty with AEAD).
    pub integ: Vec<&'static IntegDesc>,
    /// PRFs (IKE only).
    pub prf: Vec<&'static PrfDesc>,
    /// Key exchange methods (for Child SAs: PFS groups, may be empty).
    pub ke: Vec<&'static KeDesc>,
    /// Sequence number choices (Child SAs): `false` = 32-bit, `true` = ESN.
    pub esn: Vec<bool>,
    /// Additional key exchanges (RFC 9370 §2.2.1): `addke[n - 1]` lists the methods
    /// of ADDKEn in order of preference, `None` standing for `keN_none` (the
    /// exchange may be left out). Empty: ADDKEn is not offered.
    pub addke: [Vec<Option<&'static KeDesc>>; 7],
}

/// Why a proposal string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// The string (or one comma-separated part) is empty.
    #[error("empty proposal")]
    Empty,
    /// A token names no algorithm we know.
    #[error("unknown algorithm token '{0}'")]
    UnknownToken(String),
    /// A token is known but not allowed in this kind of proposal.
    #[error("'{token}' is not allowed in an {kind} proposal")]
    NotAllowed {
        /// The token.
        token: String,
        /// The kind of proposal.
        kind: ProposalKind,
    },
    /// No encryption algorithm.
    #[error("no encryption algorithm")]
    MissingEncryption,
    /// A non-AEAD proposal without an integrity algorithm.
    #[error("no integrity algorithm (needed unless the cipher is an AEAD)")]
    MissingIntegrity,
    /// An IKE proposal without a PRF (and none implied).
    #[error("no PRF: an IKE proposal with an AEAD needs one, e.g. prfsha256")]
    MissingPrf,
    /// An IKE proposal without a key exchange method.
    #[error("no key exchange method, e.g. x25519 or ecp256")]
    MissingKeyExchange,
    /// AEAD and non-AEAD algorithms, or an AEAD and integrity, in one proposal.
    #[error("AEAD and non-AEAD algorithms (or an AEAD and integrity) in one proposal")]
    MixedAead,
}

fn lookup<T: 'static>(
    table: &'static [&'static T],
    token: &str,
    name: impl Fn(&T) -> (&'static str, &'static [&'static str]),
) -> Option<&'static T> {
    table.iter().copied().find(|d| {
        let (t, aliases) = name(d);
        t == token || aliases.contains(&token)
    })
}

/// `keN_<rest>` with N from 1 to 7: (N, rest).
fn parse_addke(token: &str) -> Option<(usize, &str)> {
    let rest = token.strip_prefix("ke")?;
    let (n, method) = rest.split_once('_')?;
    let n: usize = n.parse().ok()?;
    (1..=7).contains(&n).then_some((n, method))
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Proposal {
    /// Parses one proposal (no commas).
    pub fn parse(kind: ProposalKind, s: &str) -> Result<Proposal, ProposalError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ProposalError::Empty);
        }
        let mut p = Proposal {
            kind,
            encr: Vec::new(),
            integ: Vec::new(),
            prf: Vec::new(),
            ke: Vec::new(),
            esn: Vec::new(),
            addke: Default::default(),
        };
        for raw in s.split('-') {
            let token = raw.trim().to_ascii_lowercase();
            let not_allowed = || ProposalError::NotAllowed {
                token: token.clone(),
                kind,
            };
            if token.is_empty() {
                return Err(ProposalError::UnknownToken(raw.to_string()));
            }
            if let Some(d) = lookup(suites::ENCR, &token, |d| (d.token, d.aliases)) {
                if kind == ProposalKind::Ah
                    || (kind == ProposalKind::Ike && d.kind == suites::EncrKind::Gmac)
                {
                    return Err(not_allowed());
                }
                push_unique(&mut p.encr, d);
            } else if let Some(d) = lookup(suites::INTEG, &token, |d| (d.token, d.aliases)) {
                push_unique(&mut p.integ, d);
            } else if let Some(d) = lookup(suites::PRF, &token, |d| (d.token, &[])) {
                if kind != ProposalKind::Ike {
                    return Err(not_allowed());
                }
                push_unique(&mut p.prf, d);
            } else if let Some(d) = lookup(suites::KE, &token, |d| (d.token, d.aliases)) {
                push_unique(&mut p.ke, d);
            } else if let Some((n, method)) = parse_addke(&token) {
                let method = match method {
                    "none" => None,
                    m => Some(
                        lookup(suites::KE, m, |d| (d.token, d.aliases))
                            .ok_or_else(|| ProposalError::UnknownToken(raw.trim().to_string()))?,
                    ),
                };
                push_unique(&mut p.addke[n - 1], method);
            } else if token == "esn" || token == "noesn" {
                if kind == ProposalKind::Ike {
                    return Err(not_allowed());
                }
                push_unique(&mut p.esn, token == "esn");
            } else {
                return Err(ProposalError::UnknownToken(raw.trim().to_string()));
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Parses a comma-separated list of proposals.
    pub fn parse_list(kind: ProposalKind, s: &str) -> Result<Vec<Proposal>, ProposalError> {
        s.split(',')
            .map(|part| Proposal::parse(kind, part))
            .collect()
    }

    fn validate(&mut self) -> Result<(), ProposalError> {
        if self.kind == ProposalKind::Ah {
            if self.integ.is_empty() {
                return Err(ProposalError::MissingIntegrity);
            }
        } else {
            if self.encr.is_empty() {
                return Err(ProposalError::MissingEncryption);
            }
            let combined = self.encr.iter().filter(|e| e.is_combined()).count();
            if combined > 0 && (combined != self.encr.len() || !self.integ.is_empty()) {
                return Err(ProposalError::MixedAead);
            }
            if combined == 0 && self.integ.is_empty() {
                return Err(ProposalError::MissingIntegrity);
            }
        }
        if self.kind == ProposalKind::Ike {
            if self.prf.is_empty() {
                for i in &self.integ {
                    if let Some(prf) = i.prf {
                        push_unique(&mut self.prf, prf);
                    }
                }
            }
            if self.prf.is_empty() {
                return Err(ProposalError::MissingPrf);
            }
            if self.ke.is_empty() {
                return Err(ProposalError::MissingKeyExchange);
            }
        } else if self.esn.is_empty() {
            self.esn.push(false);
        }
        Ok(())
    }

    /// Whether any additional key exchange (RFC 9370) is offered.
    pub fn has_addke(&self) -> bool {
        self.addke.iter().any(|a| !a.is_empty())
    }

    /// True when the encryption algorithms are AEADs.
    pub fn is_aead(&self) -> bool {
        self.encr.first().is_some_and(|e| e.is_combined())
    }
}

impl fmt::Display for Proposal {
    /// Prints the canonical string: encryption, integrity, PRF, key exchange, ESN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut put = |f: &mut fmt::Formatter<'_>, t: &str| -> fmt::Result {
            if !first {
                f.write_str("-")?;
            }
            first = false;
            f.write_str(t)
        };
        for e in &self.encr {
            put(f, e.token)?;
        }
        for i in &self.integ {
            put(f, i.token)?;
        }
        for p in &self.prf {
            put(f, p.token)?;
        }
        for k in &self.ke {
            put(f, k.token)?;
        }
        for (n, methods) in self.addke.iter().enumerate() {
            for m in methods {
                let token = alloc::format!("ke{}_{}", n + 1, m.map_or("none", |k| k.token));
                put(f, &token)?;
            }
        }
        if self.esn.as_slice() != [false] {
            for e in &self.esn {
                put(f, if *e { "esn" } else { "noesn" })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn parses_ike_aead() {
        let p = Proposal::parse(ProposalKind::Ike, "aes128gcm16-prfsha256-x25519").unwrap();
        assert_eq!(p.encr, [&suites::AES_GCM_16_128]);
        assert!(p.integ.is_empty());
        assert_eq!(p.prf, [&suites::PRF_SHA256]);
        assert_eq!(p.ke, [&suites::X25519]);
        assert_eq!(format!("{p}"), "aes128gcm16-prfsha256-x25519");
    }

    #[test]
    fn ike_cbc_implies_prf() {
        let p = Proposal::parse(ProposalKind::Ike, "aes256-sha384-ecp384").unwrap();
        assert_eq!(p.prf, [&suites::PRF_SHA384]);
        assert_eq!(format!("{p}"), "aes256-sha384-prfsha384-ecp384");
    }

    #[test]
    fn esp_defaults() {
        let p = Proposal::parse(ProposalKind::Esp, "chacha20poly1305").unwrap();
        assert_eq!(p.esn, [false]);
        assert!(p.ke.is_empty());
        assert_eq!(format!("{p}"), "chacha20poly1305");
        let p = Proposal::parse(ProposalKind::Esp, "aes128-sha256-modp2048-esn-noesn").unwrap();
        assert_eq!(p.esn, [true, false]);
        assert_eq!(format!("{p}"), "aes128-sha256-modp2048-esn-noesn");
    }

    #[test]
    fn errors_name_the_token() {
        let e = Proposal::parse(ProposalKind::Ike, "aes128gcm16-prfsha256-x25518").unwrap_err();
        assert_eq!(e, ProposalError::UnknownToken("x25518".into()));
        assert_eq!(format!("{e}"), "unknown algorithm token 'x25518'");
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes128gcm16-x25519").unwrap_err(),
            ProposalError::MissingPrf
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes128-sha256").unwrap_err(),
            ProposalError::MissingKeyExchange
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Esp, "aes128gcm16-sha256").unwrap_err(),
            ProposalError::MixedAead
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Esp, "aes128").unwrap_err(),
            ProposalError::MissingIntegrity
        );
        assert!(matches!(
            Proposal::parse(ProposalKind::Esp, "aes128gcm16-prfsha256").unwrap_err(),
            ProposalError::NotAllowed { .. }
        ));
        assert_eq!(
            Proposal::parse(ProposalKind::Esp, " ").unwrap_err(),
            ProposalError::Empty
        );
        assert!(Proposal::parse(ProposalKind::Esp, "aes128--sha1").is_err());
    }

    #[test]
    fn additional_key_exchanges() {
        let p = Proposal::parse(
            ProposalKind::Ike,
            "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke1_none-ke3_ecp384",
        )
        .unwrap();
        assert_eq!(p.addke[0], [Some(&suites::ECP256), None]);
        assert!(p.addke[1].is_empty());
        assert_eq!(p.addke[2], [Some(&suites::ECP384)]);
        assert!(p.has_addke());
        assert_eq!(
            format!("{p}"),
            "aes256gcm16-prfsha384-x25519-ke1_ecp256-ke1_none-ke3_ecp384"
        );
        let esp = Proposal::parse(ProposalKind::Esp, "aes256gcm16-x25519-ke1_ecp384").unwrap();
        assert_eq!(esp.addke[0], [Some(&suites::ECP384)]);
        for bad in ["ke8_ecp256", "ke0_ecp256", "ke1_ecp257", "ke1_"] {
            assert!(
                matches!(
                    Proposal::parse(
                        ProposalKind::Ike,
                        &format!("aes128gcm16-prfsha256-x25519-{bad}")
                    ),
                    Err(ProposalError::UnknownToken(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn lists() {
        let l = Proposal::parse_list(ProposalKind::Esp, "aes256gcm16,aes128-sha1").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].integ, [&suites::HMAC_SHA1_96]);
    }
}
