//! The anti-replay window under arbitrary operations, checked against a naive model: a
//! set of received sequence numbers and the highest one.
#![no_main]

use std::collections::BTreeSet;

use ipsec_core::{ReplayError, ReplayWindow};
use libfuzzer_sys::fuzz_target;

fn model(seen: &BTreeSet<u64>, top: u64, size: u32, seq: u64) -> Result<(), ReplayError> {
    if seq == 0 {
        Err(ReplayError::Zero)
    } else if seq > top {
        Ok(())
    } else if top - seq >= u64::from(size) {
        Err(ReplayError::TooOld)
    } else if seen.contains(&seq) {
        Err(ReplayError::Duplicate)
    } else {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, ops)) = data.split_first_chunk::<3>() else {
        return;
    };
    let size = 32 + u32::from(u16::from_be_bytes([head[0], head[1]])) % (4096 - 32 + 1);
    let mut w = ReplayWindow::new(size).unwrap();
    let mut seen = BTreeSet::new();
    let mut top = 0u64;
    // Start near the 2^32 boundary or at 0.
    let base: u64 = if head[2] & 1 == 1 {
        (1 << 32) - 3000
    } else {
        0
    };
    for op in ops.chunks_exact(5) {
        let v = u32::from_be_bytes([op[1], op[2], op[3], op[4]]);
        // Sequence numbers around the current top, so that all cases are reached.
        let seq = match op[0] % 4 {
            0 => top.saturating_add(u64::from(v % 8192)),
            1 => top.saturating_sub(u64::from(v % 8192)),
            2 => base + u64::from(v),
            _ => u64::from(v),
        };
        match op[0] / 4 % 3 {
            0 => assert_eq!(w.check(seq), model(&seen, top, size, seq)),
            1 => {
                let want = model(&seen, top, size, seq);
                assert_eq!(w.mark(seq), want);
                if want.is_ok() {
                    seen.insert(seq);
                    top = top.max(seq);
                }
            }
            _ => {
                // ESN inference: the low bits are kept and, for numbers within 2^31
                // ahead of the top or inside the window, the high bits are exact.
                let lo = seq as u32;
                if let Ok(s) = w.infer(lo, true) {
                    assert_eq!(s as u32, lo);
                    assert_ne!(s, 0);
                }
                if seq > 0
                    && (seq > top && seq - top < 1 << 31
                        || top - seq.min(top) < u64::from(size) && seq <= top)
                {
                    assert_eq!(w.infer(lo, true), Ok(seq), "top {top} size {size}");
                }
            }
        }
        assert_eq!(w.top(), top);
    }
});
