//! `etcd://HOST:PORT[,HOST:PORT...]`: where the cluster's store is.

use core::fmt;

/// Endpoints a URL may name (more is a configuration error, not a cluster).
pub const MAX_ENDPOINTS: usize = 16;
/// Longest host name (RFC 1035 §2.3.4).
const MAX_HOST_LEN: usize = 253;

/// One `HOST:PORT` of a [`ClusterUrl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name, an IPv4 address, or an IPv6 address (without its brackets).
    pub host: String,
    /// The client port (etcd's default is 2379).
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The store's address, parsed from `etcd://HOST:PORT[,HOST:PORT...]` (IPv6 hosts in
/// brackets: `etcd://[::1]:2379`). Printing it gives the canonical URL back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUrl {
    /// The endpoints in the order given (at least one).
    pub endpoints: Vec<Endpoint>,
}

/// Why a cluster URL did not parse; `at` is the byte offset in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `etcd://`.
    #[error("cluster URL must start with etcd://")]
    Scheme,
    /// An empty endpoint (nothing after `etcd://`, or `,,`).
    #[error("empty endpoint at offset {at}")]
    EmptyEndpoint {
        /// Byte offset of the endpoint.
        at: usize,
    },
    /// An endpoint without `:PORT`.
    #[error("endpoint at offset {at} has no :PORT")]
    MissingPort {
        /// Byte offset of the endpoint.
        at: usize,
    },
    /// A port that is not a number from 1 to 65535.
    #[error("bad port at offset {at}")]
    BadPort {
        /// Byte offset of the port.
        at: usize,
    },
    /// A host that is not a DNS name, IPv4 address or bracketed IPv6 address.
    #[error("bad host at offset {at}")]
    BadHost {
        /// Byte offset of the host.
        at: usize,
    },
    /// More than [`MAX_ENDPOINTS`] endpoints.
    #[error("more than {MAX_ENDPOINTS} endpoints")]
    TooManyEndpoints,
}

const SCHEME: &str = "etcd://";

impl ClusterUrl {
    /// Parses `etcd://HOST:PORT[,HOST:PORT...]`. Takes any string without panicking.
    ///
    /// # Errors
    /// A [`UrlError`] naming what is wrong and where.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let rest = s.strip_prefix(SCHEME).ok_or(UrlError::Scheme)?;
        let mut endpoints = Vec::new();
        let mut at = SCHEME.len();
        for part in rest.split(',') {
            if endpoints.len() == MAX_ENDPOINTS {
                return Err(UrlError::TooManyEndpoints);
            }
            endpoints.push(parse_endpoint(part, at)?);
            at += part.len() + 1;
        }
        Ok(Self { endpoints })
    }

    /// The endpoints as the etcd client takes them: `http://HOST:PORT`.
    pub fn http_endpoints(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect()
    }
}

impl core::str::FromStr for ClusterUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::parse(s)
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        for (i, e) in self.endpoints.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn parse_endpoint(part: &str, at: usize) -> Result<Endpoint, UrlError> {
    if part.is_empty() {
        return Err(UrlError::EmptyEndpoint { at });
    }
    let (host, port_str, port_at) = if let Some(inner) = part.strip_prefix('[') {
        let close = inner.find(']').ok_or(UrlError::BadHost { at })?;
        let (h, after) = inner.split_at(close);
        // after = "]" ":PORT"
        let port = after[1..]
            .strip_prefix(':')
            .ok_or(UrlError::MissingPort { at })?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost { at: at + 1 });
        }
        (h, port, at + close + 3)
    } else {
        let colon = part.rfind(':').ok_or(UrlError::MissingPort { at })?;
        let (h, port) = part.split_at(colon);
        if !valid_host(h) {
            return Err(UrlError::BadHost { at });
        }
        (h, &port[1..], at + colon + 1)
    };
    let bad_port = UrlError::BadPort { at: port_at };
    if port_str.is_empty() || port_str.len() > 5 || !port_str.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_port);
    }
    let port: u16 = port_str.parse().map_err(|_| bad_port.clone())?;
    if port == 0 {
        return Err(bad_port);
    }
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

/// A DNS name (letters, digits, `-`, `_`, dots between non-empty labels of at most 63)
/// or an IPv4 address; IPv6 must come in brackets.
fn valid_host(h: &str) -> bool {
    if h.is_empty() || h.len() > MAX_HOST_LEN {
        return false;
    }
    h.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_single_and_lists() {
        let u = ClusterUrl::parse("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(
            u.endpoints,
            [Endpoint {
                host: "127.0.0.1".into(),
                port: 2379
            }]
        );
        assert_eq!(u.http_endpoints(), ["http://127.0.0.1:2379"]);
        let u: ClusterUrl = "etcd://etcd-1.example:2379,[::1]:32379,10.0.0.3:1"
            .parse()
            .unwrap();
        assert_eq!(u.endpoints.len(), 3);
        assert_eq!(u.endpoints[1].host, "::1");
        assert_eq!(u.endpoints[2].port, 1);
        assert_eq!(u.http_endpoints()[1], "http://[::1]:32379");
        assert_eq!(
            u.to_string(),
            "etcd://etcd-1.example:2379,[::1]:32379,10.0.0.3:1"
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        use UrlError::*;
        assert_eq!(ClusterUrl::parse("http://a:1"), Err(Scheme));
        assert_eq!(ClusterUrl::parse("etcd://"), Err(EmptyEndpoint { at: 7 }));
        assert_eq!(
            ClusterUrl::parse("etcd://a:1,,b:2"),
            Err(EmptyEndpoint { at: 11 })
        );
        assert_eq!(ClusterUrl::parse("etcd://a"), Err(MissingPort { at: 7 }));
        assert_eq!(ClusterUrl::parse("etcd://a:"), Err(BadPort { at: 9 }));
        assert_eq!(ClusterUrl::parse("etcd://a:0"), Err(BadPort { at: 9 }));
        assert_eq!(ClusterUrl::parse("etcd://a:65536"), Err(BadPort { at: 9 }));
        assert_eq!(ClusterUrl::parse("etcd://a:+1"), Err(BadPort { at: 9 }));
        assert_eq!(ClusterUrl::parse("etcd://a:1,b:x"), Err(BadPort { at: 13 }));
        assert_eq!(ClusterUrl::parse("etcd://::1:2379"), Err(BadHost { at: 7 }));
        assert_eq!(
            ClusterUrl::parse("etcd://[::1]"),
            Err(MissingPort { at: 7 })
        );
        assert_eq!(ClusterUrl::parse("etcd://[::g]:1"), Err(BadHost { at: 8 }));
        assert_eq!(ClusterUrl::parse("etcd://[::1:1"), Err(BadHost { at: 7 }));
        assert_eq!(ClusterUrl::parse("etcd://a..b:1"), Err(BadHost { at: 7 }));
        assert_eq!(ClusterUrl::parse("etcd://a/b:1"), Err(BadHost { at: 7 }));
        assert_eq!(
            ClusterUrl::parse("etcd://[::1]:5,[::2]:6")
                .unwrap()
                .endpoints[1]
                .port,
            6
        );
        assert_eq!(ClusterUrl::parse("etcd://[::1]:x"), Err(BadPort { at: 13 }));
        let many = format!("etcd://{}", vec!["a:1"; MAX_ENDPOINTS + 1].join(","));
        assert_eq!(ClusterUrl::parse(&many), Err(TooManyEndpoints));
    }

    proptest! {
        #[test]
        fn any_string_never_panics(s in ".*") {
            let _ = ClusterUrl::parse(&s);
        }

        #[test]
        fn any_tail_never_panics(s in "[a-z0-9\\[\\]:,.\\-]{0,40}") {
            let _ = ClusterUrl::parse(&format!("etcd://{s}"));
        }

        #[test]
        fn display_round_trips(hosts in proptest::collection::vec(("[a-z][a-z0-9-]{0,10}(\\.[a-z0-9]{1,5}){0,2}", 1u16..), 1..5)) {
            let s = format!("etcd://{}", hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>().join(","));
            let u = ClusterUrl::parse(&s).unwrap();
            prop_assert_eq!(u.to_string(), s);
            prop_assert_eq!(ClusterUrl::parse(&u.to_string()).unwrap(), u);
        }
    }
}
