//! Client puzzles for IKE_SA_INIT (RFC 8019 §7.1).
//!
//! A responder under load answers an IKE_SA_INIT request with COOKIE and PUZZLE
//! (PRF transform id, difficulty). The initiator searches four different keys `Ki` of
//! equal length such that each `PRF(Ki, cookie)` ends in at least `difficulty` zero
//! bits (RFC 8019 §7.1.3), and sends them back in a Puzzle Solution payload with the
//! cookie. Checking costs the responder four PRF calls; finding them costs the
//! initiator about `4 * 2^difficulty`.
//!
//! The PRF is the first PRF of the initiator's SA payload that the provider has, so
//! the responder can pick it again from the retried request without keeping state.
//! Only the IKE_SA_INIT puzzle is implemented, not the IKE_AUTH one (§7.2).

use alloc::vec::Vec;

use ipsec_core::iana::TransformType;
use ipsec_crypto::{kdf, CryptoProvider, PrfAlgorithm, PrfId};
use ipsec_ike_wire::NotifyType;

use crate::msg::{InMsg, Out};

/// How many keys a solution carries (RFC 8019 §7.1.3).
pub(crate) const KEYS: usize = 4;

/// Length of each key we search: a 4-byte big-endian counter (RFC 8019 §8.2 expects
/// keys of four octets or less for PRFs with variable-length keys).
const KEY_LEN: usize = 4;

/// Difficulty an initiator assumes when the responder leaves it free (difficulty 0,
/// RFC 8019 §7.1.1.1).
const FREE_DIFFICULTY: u8 = 10;

/// The number of zero bits at the end of `out`, read as a big-endian bit string
/// (RFC 8019 §4.4: "the length of the zero-bit run at the end of the output").
pub(crate) fn trailing_zero_bits(out: &[u8]) -> u32 {
    let mut n = 0;
    for b in out.iter().rev() {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.trailing_zeros();
        }
    }
    n
}

/// The PRF a puzzle for this request uses: the first PRF transform of the
/// initiator's proposals that the provider runs.
pub(crate) fn choose_prf(
    provider: &CryptoProvider,
    m: &InMsg,
) -> Option<(PrfId, &'static dyn PrfAlgorithm)> {
    m.sa.iter()
        .flatten()
        .flat_map(|p| p.transforms.iter())
        .filter(|t| t.ty == TransformType::PRF)
        .find_map(|t| provider.prf(PrfId(t.id)).map(|a| (PrfId(t.id), a)))
}

/// The payloads of the responder's stateless answer: `N(COOKIE), N(PUZZLE)` (RFC 8019
/// §7.1.1), or the COOKIE alone when no PRF of the request can be used.
pub(crate) fn challenge(
    m: &InMsg,
    cookie: &[u8],
    provider: &CryptoProvider,
    difficulty: u8,
) -> Vec<Out> {
    let mut out = alloc::vec![Out::notify(NotifyType::COOKIE, cookie)];
    if let Some((id, _)) = choose_prf(provider, m) {
        let [a, b] = id.0.to_be_bytes();
        out.push(Out::notify(NotifyType::PUZZLE, &[a, b, difficulty]));
    }
    out
}

/// The smallest number of trailing zero bits among the four results of a Puzzle
/// Solution payload body for `cookie`, or `None` when the body is malformed (empty,
/// not four equal keys, keys not all different) or no usable PRF is offered.
pub(crate) fn solved_bits(provider: &CryptoProvider, m: &InMsg, cookie: &[u8]) -> Option<u32> {
    let (_, prf) = choose_prf(provider, m)?;
    let ps = m.ps.as_deref()?;
    if ps.is_empty() || ps.len() % KEYS != 0 {
        return None;
    }
    let n = ps.len() / KEYS;
    let keys: Vec<&[u8]> = ps.chunks_exact(n).collect();
    for (i, k) in keys.iter().enumerate() {
        if keys.iter().skip(i + 1).any(|o| o == k) {
            return None;
        }
    }
    let mut least = u32::MAX;
    for k in keys {
        let out = kdf::prf(prf, k, &[cookie]).ok()?;
        least = least.min(trailing_zero_bits(out.expose()));
    }
    Some(least)
}

/// The PUZZLE notification's PRF id and difficulty.
pub(crate) fn parse(data: &[u8]) -> Option<(PrfId, u8)> {
    match *data {
        [a, b, d] => Some((PrfId(u16::from_be_bytes([a, b])), d)),
        _ => None,
    }
}

/// Solves a puzzle as the initiator: four 4-byte keys counting up from zero whose
/// results have `difficulty` trailing zero bits (0: [`FREE_DIFFICULTY`]). `None` when
/// the PRF is not available or the difficulty is above `max` (RFC 8019 §9: an
/// initiator caps what it will try).
pub(crate) fn solve(
    provider: &CryptoProvider,
    prf: PrfId,
    difficulty: u8,
    max: u8,
    cookie: &[u8],
) -> Option<Vec<u8>> {
    let want = if difficulty == 0 {
        FREE_DIFFICULTY.min(max)
    } else {
        difficulty
    };
    if want > max {
        return None;
    }
    let prf = provider.prf(prf)?;
    let mut body = Vec::with_capacity(KEYS * KEY_LEN);
    let mut found = 0;
    // Each key is found after 2^want tries on average; bound the search at 64 times
    // that for all four, so a broken PRF cannot make us loop for ever.
    let limit = (1u64 << want.min(40)).saturating_mul(64 * KEYS as u64);
    let mut counter: u64 = 0;
    while found < KEYS && counter < limit {
        let key = u32::try_from(counter).ok()?.to_be_bytes();
        counter += 1;
        let out = kdf::prf(prf, &key, &[cookie]).ok()?;
        if trailing_zero_bits(out.expose()) >= u32::from(want) {
            body.extend_from_slice(&key);
            found += 1;
        }
    }
    (found == KEYS).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zero_bits_reads_big_endian() {
        assert_eq!(trailing_zero_bits(&[0xff, 0x81, 0x6c, 0x00, 0x00]), 18);
        assert_eq!(trailing_zero_bits(&[0x75, 0x80, 0x00, 0x00]), 23);
        assert_eq!(trailing_zero_bits(&[0x40, 0x70, 0x00, 0x00]), 20);
        assert_eq!(trailing_zero_bits(&[0x01]), 0);
        assert_eq!(trailing_zero_bits(&[0, 0]), 16);
        assert_eq!(trailing_zero_bits(&[]), 0);
    }

    #[test]
    fn parse_needs_three_bytes() {
        assert_eq!(parse(&[0, 5, 12]), Some((PrfId(5), 12)));
        assert_eq!(parse(&[0, 5]), None);
        assert_eq!(parse(&[0, 5, 12, 0]), None);
    }
}
