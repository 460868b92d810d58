//! `ipsec suites` and `ipsec proposal`.

use ipsec::crypto::proposal::{Proposal, ProposalKind};
use ipsec::crypto::suites::{self, EncrKind};
use ipsec::crypto::{CryptoProvider, TransformType};

/// Prints every transform with its IANA id, token, lengths and backend.
pub fn suites(p: &CryptoProvider) {
    outln!("provider: {}", p.name);
    outln!();
    outln!("type   token              IANA transform                  id lengths (bytes)                  backend     RFC");
    for d in suites::ENCR {
        let kind = match d.kind {
            EncrKind::Aead => "AEAD",
            EncrKind::Gmac => "auth-only",
            EncrKind::Cbc => "cipher",
            EncrKind::Ctr => "stream",
            EncrKind::Null => "none",
        };
        let lens = format!(
            "key {} salt {} iv {} icv {} ({kind})",
            d.key_len(),
            d.salt_len,
            d.iv_len,
            d.icv_len
        );
        row(
            TransformType::ENCR,
            d.token,
            &format!("{:?}", d.id),
            d.id.0,
            &lens,
            p.encr_backend(d),
            d.rfc,
        );
    }
    for d in suites::INTEG {
        let lens = format!("key {} icv {}", d.key_len, d.icv_len);
        row(
            TransformType::INTEG,
            d.token,
            &format!("{:?}", d.id),
            d.id.0,
            &lens,
            p.integ(d.id).map(|a| a.backend()),
            d.rfc,
        );
    }
    for d in suites::PRF {
        let lens = format!("out {}", d.output_len);
        row(
            TransformType::PRF,
            d.token,
            &format!("{:?}", d.id),
            d.id.0,
            &lens,
            p.prf(d.id).map(|a| a.backend()),
            d.rfc,
        );
    }
    for d in suites::KE {
        // A KEM's two KE payloads differ: encapsulation key, then ciphertext.
        let lens = if d.is_kem() {
            format!("ek {} / ct {}", d.public_len, d.response_len())
        } else {
            format!("public {}", d.public_len)
        };
        row(
            TransformType::KE,
            d.token,
            &format!("{:?}", d.id),
            d.id.0,
            &lens,
            p.kx(d.id).map(|a| a.backend()),
            d.rfc,
        );
    }
    outln!();
    outln!("ESN: tokens esn / noesn (transform type 5, ids 1 / 0).");
}

fn row(
    t: TransformType,
    token: &str,
    name: &str,
    id: u16,
    lens: &str,
    backend: Option<&str>,
    rfc: &str,
) {
    let t = match t {
        TransformType::ENCR => "ENCR",
        TransformType::INTEG => "INTEG",
        TransformType::PRF => "PRF",
        _ => "KE",
    };
    outln!(
        "{t:<6} {token:<18} {name:<28} {id:>5} {lens:<32} {:<11} {rfc}",
        backend.unwrap_or("-")
    );
}

/// Parses and explains a proposal string.
pub fn proposal(s: &str, kind: Option<ProposalKind>, p: &CryptoProvider) -> Result<(), String> {
    let list = match kind {
        Some(k) => Proposal::parse_list(k, s).map_err(|e| format!("{k} proposal: {e}"))?,
        None => match Proposal::parse_list(ProposalKind::Ike, s) {
            Ok(l) => l,
            Err(ike_err) => Proposal::parse_list(ProposalKind::Esp, s).map_err(|esp_err| {
                format!("not an IKE proposal ({ike_err}) nor an ESP proposal ({esp_err})")
            })?,
        },
    };
    for (i, prop) in list.iter().enumerate() {
        outln!("proposal #{} ({}): {prop}", i + 1, prop.kind);
        for d in &prop.encr {
            let key = if d.key_len_attr {
                format!(", Key Length attribute {}", d.key_bits)
            } else {
                String::new()
            };
            outln!(
                "  ENCR  {:<18} transform 1 id {:>3} {:?}{key}; {}; keymat {} bytes{}",
                d.token,
                d.id.0,
                d.id,
                d.name,
                d.keymat_len(),
                support(p.encr_backend(d))
            );
        }
        for d in &prop.integ {
            outln!(
                "  INTEG {:<18} transform 3 id {:>3} {:?}; key {} bytes, ICV {} bytes{}",
                d.token,
                d.id.0,
                d.id,
                d.key_len,
                d.icv_len,
                support(p.integ(d.id).map(|a| a.backend()))
            );
        }
        for d in &prop.prf {
            outln!(
                "  PRF   {:<18} transform 2 id {:>3} {:?}; output {} bytes{}",
                d.token,
                d.id.0,
                d.id,
                d.output_len,
                support(p.prf(d.id).map(|a| a.backend()))
            );
        }
        for d in &prop.ke {
            let what = if prop.kind == ProposalKind::Ike {
                "key exchange"
            } else {
                "PFS"
            };
            let data = if d.is_kem() {
                format!(
                    "KE data {} bytes (encapsulation key), {} in the response (ciphertext)",
                    d.public_len,
                    d.response_len()
                )
            } else {
                format!("KE data {} bytes", d.public_len)
            };
            outln!(
                "  KE    {:<18} transform 4 id {:>3} {:?}; {what}, {data}{}",
                d.token,
                d.id.0,
                d.id,
                support(p.kx(d.id).map(|a| a.backend()))
            );
        }
        for e in &prop.esn {
            outln!(
                "  ESN   {:<18} transform 5 id {:>3}",
                if *e { "esn" } else { "noesn" },
                u8::from(*e)
            );
        }
    }
    Ok(())
}

fn support(b: Option<&str>) -> String {
    match b {
        Some(b) => format!(" [{b}]"),
        None => " [NOT SUPPORTED by this provider]".into(),
    }
}
