//! The CLI's Wireshark key-table parser (`ipsec_cli::keyfile`) on arbitrary text:
//! nothing panics; errors name the line; accepted ESP rows are consistent (key lengths
//! fit their transforms) and, when written again with `esp_sa_line`, parse back to the
//! same row; parsing is line by line (the text parses exactly when every line does,
//! into the same rows).
#![no_main]

use ipsec_cli::keyfile::{esp_sa_line, EspSaRow, KeyTables};
use libfuzzer_sys::fuzz_target;

fn same(a: &EspSaRow, b: &EspSaRow) -> bool {
    a.dst == b.dst
        && a.spi == b.spi
        && a.encr == b.encr
        && a.encr_key == b.encr_key
        && a.integ == b.integ
        && (a.integ.is_none() || a.integ_key == b.integ_key)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut k = KeyTables::default();
    let whole = k.parse(text);
    if let Err(e) = &whole {
        assert!(e.starts_with("line "), "{e}");
    }
    // Line by line gives the same verdict and the same rows.
    let mut by_line = KeyTables::default();
    let mut all_ok = true;
    for line in text.lines() {
        if by_line.parse(line).is_err() {
            all_ok = false;
            break;
        }
    }
    assert_eq!(whole.is_ok(), all_ok);
    if whole.is_err() {
        return;
    }
    assert_eq!(by_line.esp.len(), k.esp.len());
    assert_eq!(by_line.ike.len(), k.ike.len());
    for (a, b) in k.esp.iter().zip(&by_line.esp) {
        assert!(same(a, b));
    }
    for r in &k.esp {
        assert_eq!(r.encr_key.len(), r.encr.keymat_len());
        if let Some(i) = r.integ {
            assert_eq!(r.integ_key.len(), i.key_len);
        }
        // esp_sa_line writes addresses as they are (no quoting): only plain ones.
        if r.dst.is_empty()
            || !r
                .dst
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '*'))
        {
            continue;
        }
        let line = esp_sa_line(
            "192.0.2.1",
            &r.dst,
            r.spi,
            r.encr,
            &r.encr_key,
            r.integ,
            &r.integ_key,
        );
        let mut again = KeyTables::default();
        again
            .parse(&line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(again.esp.len(), 1);
        assert!(same(r, &again.esp[0]), "{line:?}");
    }
    for r in &k.ike {
        assert_ne!(r.spi_i.len(), 0);
    }
});
