//! strongSwan-style proposal strings (`ipsec_crypto::proposal`) on arbitrary text:
//! nothing panics; a parsed proposal satisfies the rules of its kind (no duplicates,
//! AEAD without integrity, IKE with PRF and key exchange, Child SAs with an ESN choice);
//! it prints as a canonical string that parses back to the same value and prints the
//! same again; tokens are case-insensitive; a list parses exactly when each of its
//! parts does.
#![no_main]

use ipsec_crypto::{Proposal, ProposalKind};
use libfuzzer_sys::fuzz_target;

fn no_duplicates<T: PartialEq>(v: &[T]) -> bool {
    v.iter().enumerate().all(|(i, x)| !v[..i].contains(x))
}

fn check(kind: ProposalKind, p: &Proposal) {
    assert_eq!(p.kind, kind);
    assert!(no_duplicates(&p.encr) && no_duplicates(&p.integ) && no_duplicates(&p.prf));
    assert!(no_duplicates(&p.ke) && no_duplicates(&p.esn));
    match kind {
        ProposalKind::Ike => {
            assert!(!p.encr.is_empty() && !p.prf.is_empty() && !p.ke.is_empty());
            assert!(p.esn.is_empty());
        }
        ProposalKind::Esp => {
            assert!(!p.encr.is_empty() && p.prf.is_empty() && !p.esn.is_empty());
        }
        ProposalKind::Ah => {
            assert!(p.encr.is_empty() && p.prf.is_empty() && !p.esn.is_empty());
            assert!(!p.integ.is_empty());
        }
    }
    if kind != ProposalKind::Ah {
        let aead = p.encr.iter().filter(|e| e.is_combined()).count();
        assert!(aead == 0 || aead == p.encr.len(), "AEAD mixed with non-AEAD");
        assert_eq!(p.is_aead(), aead > 0);
        assert!(aead == 0 || p.integ.is_empty(), "AEAD with integrity");
        assert!(aead > 0 || !p.integ.is_empty(), "no integrity");
    }
    // Canonical printing: parses back to the same value, prints the same again.
    let s = p.to_string();
    assert!(!s.is_empty() && !s.contains(',') && !s.contains(' '), "{s:?}");
    let again = Proposal::parse(kind, &s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(&again, p, "{s:?}");
    assert_eq!(again.to_string(), s);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let kind = [ProposalKind::Ike, ProposalKind::Esp, ProposalKind::Ah][usize::from(sel % 3)];
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let one = Proposal::parse(kind, s);
    if let Ok(p) = &one {
        check(kind, p);
    }
    // Tokens are case-insensitive.
    assert_eq!(
        Proposal::parse(kind, &s.to_ascii_uppercase()).ok(),
        one.as_ref().ok().cloned()
    );
    // A list parses exactly when every part does, to the parts' values.
    let parts: Vec<_> = s.split(',').map(|x| Proposal::parse(kind, x)).collect();
    match Proposal::parse_list(kind, s) {
        Ok(list) => {
            assert_eq!(list.len(), parts.len());
            for (p, q) in list.iter().zip(&parts) {
                assert_eq!(Some(p), q.as_ref().ok());
                check(kind, p);
            }
            let printed: Vec<String> = list.iter().map(|p| p.to_string()).collect();
            assert_eq!(
                Proposal::parse_list(kind, &printed.join(",")).as_ref(),
                Ok(&list)
            );
        }
        Err(e) => assert!(parts.iter().any(|q| q.as_ref().err() == Some(&e))),
    }
});
