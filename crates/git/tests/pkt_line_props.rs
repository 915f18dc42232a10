//! Property tests of the pkt-line check in front of `git upload-pack` (a stand-in for fuzzing:
//! see `crates/core/tests/props.rs`): it never panics, accepts every well-formed request and
//! refuses every request that is not one, as git itself reads pkt-lines.

use proptest::prelude::*;
use skill_pool_git::upload_pack::check_request;

/// One pkt-line: data (its 4 hex digits count themselves), or flush/delimiter/response-end.
fn pkt() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|data| {
            let mut line = format!("{:04x}", data.len() + 4).into_bytes();
            line.extend(data);
            line
        }),
        1 => prop::sample::select(vec![b"0000".to_vec(), b"0001".to_vec(), b"0002".to_vec()]),
    ]
}

/// What git accepts: a sequence of whole pkt-lines whose length fields are four hex digits.
fn well_formed(body: &[u8]) -> bool {
    let mut at = 0;
    let mut lines = 0;
    while at < body.len() {
        let Some(head) = body.get(at..at + 4) else { return false };
        if !head.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        let len = usize::from_str_radix(std::str::from_utf8(head).unwrap(), 16).unwrap();
        match len {
            0..=2 => at += 4,
            3 => return false,
            n if at + n <= body.len() => at += n,
            _ => return false,
        }
        lines += 1;
    }
    lines > 0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes, and bytes from the alphabet length fields are made of (where the subtle
    /// cases are: signs, spaces, upper case).
    #[test]
    fn never_panics_and_agrees_with_git(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(prop::sample::select(b"00000123456789abcdefABCDEF+- \n".to_vec()), 0..24),
    ]) {
        prop_assert_eq!(check_request(&body).is_ok(), well_formed(&body), "{:?}", String::from_utf8_lossy(&body));
    }

    /// Well-formed requests with one byte of a length field changed.
    #[test]
    fn mutated_lengths_agree_with_git(
        lines in prop::collection::vec(pkt(), 1..6),
        which in any::<prop::sample::Index>(),
        digit in 0usize..4,
        byte in prop::sample::select(b"0123456789abcdefABCDEF+- gx".to_vec()),
    ) {
        let mut lines = lines;
        let i = which.index(lines.len());
        lines[i][digit] = byte;
        let body = lines.concat();
        prop_assert_eq!(check_request(&body).is_ok(), well_formed(&body), "{:?}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn well_formed_requests_pass(lines in prop::collection::vec(pkt(), 1..8)) {
        let body = lines.concat();
        prop_assert!(check_request(&body).is_ok(), "{:?}", String::from_utf8_lossy(&body));
    }

    /// Cut anywhere inside a line, or followed by bytes that are not a whole line: refused.
    #[test]
    fn cut_or_padded_requests_fail(lines in prop::collection::vec(pkt(), 1..8), cut in any::<prop::sample::Index>(), tail in prop::collection::vec(any::<u8>(), 1..4)) {
        let body = lines.concat();
        let mut bounds = vec![0];
        for l in &lines {
            bounds.push(bounds.last().unwrap() + l.len());
        }
        let at = cut.index(body.len());
        if !bounds.contains(&at) {
            prop_assert!(check_request(&body[..at]).is_err(), "cut at {at}: {:?}", String::from_utf8_lossy(&body[..at]));
        }
        let mut padded = body.clone();
        padded.extend(&tail);
        prop_assert_eq!(check_request(&padded).is_ok(), well_formed(&padded));
    }
}

/// Found by `mutated_lengths_agree_with_git`: `from_str_radix` takes a leading `+`, so `+004` passed as a
/// length although git refuses it.
#[test]
fn a_signed_length_is_refused() {
    for bad in [&b"+004"[..], b"+0000000", b"-004", b"0 04"] {
        assert!(check_request(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}
