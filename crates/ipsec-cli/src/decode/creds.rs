//! What `ipsec decode` shows of authentication in IKE_AUTH: the identities, the AUTH
//! method (with the RFC 7427 signature scheme for method 14), and each X.509 CERT
//! payload's subject, issuer and subjectAltNames, as `ipsec_pki` reads them.

use std::fmt::Write as _;

use ipsec::ike::{sigauth, Identity};
use ipsec::ike_wire::{AuthMethod, CertEncoding, IdType, Payload};
use serde_json::{json, Value};

/// What an IKE_AUTH message says about authentication: the AUTH method (with the
/// RFC 7427 signature scheme for method 14), the identities, and each X.509 CERT
/// payload's subject, issuer and subjectAltNames (as `ipsec_pki` reads them).
pub(super) fn credentials(v: &mut Value, payloads: &[Payload<'_>]) {
    let Some(m) = v.as_object_mut() else { return };
    let mut certs = Vec::new();
    for p in payloads {
        match p {
            Payload::Auth(a) => {
                let mut auth =
                    json!({"method": a.method.0, "method_name": auth_method_name(a.method)});
                if a.method == AuthMethod::DIGITAL_SIGNATURE {
                    let scheme = sigauth::decode(a.data).map(|(s, _)| s.name());
                    auth["scheme"] = json!(scheme.unwrap_or("unknown"));
                }
                m.insert("auth".into(), auth);
            }
            Payload::IdI(id) | Payload::IdR(id) => {
                let key = if matches!(p, Payload::IdI(_)) {
                    "id_i"
                } else {
                    "id_r"
                };
                m.insert(key.into(), json!(id_text(id.id_type, id.data)));
            }
            Payload::Cert(c) if c.encoding == CertEncoding::X509_CERT_SIG => {
                certs.push(match ipsec_pki::subject(c.data) {
                    Ok(subject) => json!({
                        "subject": subject,
                        "issuer": ipsec_pki::issuer(c.data).unwrap_or_default(),
                        "san": ipsec_pki::subject_alt_names(c.data).unwrap_or_default(),
                    }),
                    Err(e) => json!({"error": e.to_string(), "len": c.data.len()}),
                });
            }
            Payload::Cert(c) => certs.push(json!({"encoding": c.encoding.0, "len": c.data.len()})),
            _ => {}
        }
    }
    if !certs.is_empty() {
        m.insert("certs".into(), json!(certs));
    }
}

/// An AUTH method's registry name, or its number.
fn auth_method_name(m: AuthMethod) -> String {
    m.name()
        .map_or_else(|| format!("method {}", m.0), str::to_string)
}

/// An identity as strongSwan prints it (a DN as `C=CH, O=Example, CN=gw`).
fn id_text(t: IdType, data: &[u8]) -> String {
    ipsec_pki::identity_string(&Identity::from_wire_or_other(t, data))
}

/// The text lines under an IKE message for what [`credentials`] put into `v`.
pub(super) fn text(v: &Value) -> String {
    let mut creds = String::new();
    for k in ["id_i", "id_r"] {
        if let Some(id) = v[k].as_str() {
            let _ = write!(
                creds,
                "\n         {}: {id}",
                if k == "id_i" { "IDi" } else { "IDr" }
            );
        }
    }
    if let Some(a) = v["auth"].as_object() {
        let _ = write!(
            creds,
            "\n         AUTH {}",
            a["method_name"].as_str().unwrap_or("?")
        );
        if let Some(sc) = a.get("scheme").and_then(Value::as_str) {
            let _ = write!(creds, " ({sc})");
        }
    }
    for c in v["certs"].as_array().into_iter().flatten() {
        if let Some(sub) = c["subject"].as_str() {
            let san: Vec<&str> = c["san"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = write!(
                creds,
                "\n         CERT subject \"{sub}\" issuer \"{}\"{}",
                c["issuer"].as_str().unwrap_or(""),
                if san.is_empty() {
                    String::new()
                } else {
                    format!(" san {}", san.join(", "))
                }
            );
        } else {
            let _ = write!(creds, "\n         CERT {c}");
        }
    }
    creds
}
