//! The x86 call/jump filter (E8/E9), as in zpaq's and 7-Zip's BCJ filters.
//!
//! x86 code calls a function with `E8 d32` and jumps with `E9 d32`, where `d32` is the
//! little-endian distance from the end of the instruction to the target. Every call to
//! one function has a different distance but the same target, so writing the target
//! (`d32 + position`) instead turns the operands into repeated, predictable bytes.
//!
//! The filter scans the bytes from the start. At an `E8` or `E9` byte at position `i`
//! with 4 bytes after it, it rewrites the operand if its high byte (`i + 4`) is `00` or
//! `FF` (a near target, forward or backward: what real code holds; such a position is a
//! *site*): the low 24 bits become `(low24 + i + 5) mod 2^24`, the high byte is kept.
//! Either way the scan then skips the operand (`i += 5`); at any other byte it moves one
//! byte on.
//!
//! Why the inverse is exact for any input: the scan stops at the same positions in both
//! directions and sees the same bytes there. It reads byte `i`, and byte `i + 4` only
//! after an `E8`/`E9`; the filter changes only bytes `i + 1..i + 4` of a site, which the
//! scan has already passed or skips, and never a byte `i + 4`. So the inverse scan,
//! subtracting instead of adding, meets the same sites and restores every operand
//! (addition mod 2^24 is a bijection). A site needs its whole operand: a trailing `E8`
//! with fewer than 4 bytes after it is not a site, in either direction. (Deciding on
//! byte `i + 4` but moving one byte on after an `E8` that is no site would not be
//! exact: that byte can lie in a later site's operand.)
//!
//! [`detect`] decides whether the filter pays on a frame: it counts how often an
//! operand repeats an earlier site's operand, as relative distances and as absolute
//! targets; x86 code repeats its targets far more often than its distances.
//!
//! ```
//! use nnz::filter::x86;
//! // Two calls to the same function (at 0x100) from positions 0 and 16.
//! let mut code = vec![0x90u8; 32];
//! code[0..5].copy_from_slice(&[0xe8, 0xfb, 0x00, 0x00, 0x00]); // 0x100 - 5
//! code[16..21].copy_from_slice(&[0xe8, 0xeb, 0x00, 0x00, 0x00]); // 0x100 - 21
//! let original = code.clone();
//! x86::forward(&mut code);
//! assert_eq!(code[1..5], code[17..21]); // the same target, twice
//! x86::inverse(&mut code);
//! assert_eq!(code, original);
//! ```

/// Whether the high byte of an operand makes a near target.
#[inline]
fn near(high: u8) -> bool {
    high == 0x00 || high == 0xff
}

/// The scan shared by both directions: adds (`forward`) or subtracts the position after
/// each site to the low 24 bits of its operand.
fn transform(data: &mut [u8], forward: bool) {
    let n = data.len();
    let mut i = 0usize;
    while i + 5 <= n {
        if data[i] & 0xfe != 0xe8 {
            i += 1;
            continue;
        }
        if near(data[i + 4]) {
            let low = u32::from_le_bytes([data[i + 1], data[i + 2], data[i + 3], 0]);
            // Positions wrap at 2^24 like the operand, so any frame length works.
            let pos = (i as u64 + 5) as u32;
            let low = if forward { low.wrapping_add(pos) } else { low.wrapping_sub(pos) } & 0x00ff_ffff;
            data[i + 1..i + 4].copy_from_slice(&low.to_le_bytes()[..3]);
        }
        i += 5;
    }
}

/// The filter, in place: relative E8/E9 targets made absolute.
pub fn forward(data: &mut [u8]) {
    transform(data, true);
}

/// Undoes [`forward`] exactly, in place.
pub fn inverse(data: &mut [u8]) {
    transform(data, false);
}

/// The positions of the sites of `data` (the same before and after [`forward`]).
pub fn sites(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 5 <= data.len() {
        if data[i] == 0xe8 || data[i] == 0xe9 {
            if data[i + 4] == 0x00 || data[i + 4] == 0xff {
                out.push(i);
            }
            i += 5;
        } else {
            i += 1;
        }
    }
    out
}

/// Slow reference of [`forward`] (`forward = true`) and [`inverse`]: the sites first
/// (written without [`transform`]'s shortcuts),
/// then each operand as a signed 32-bit distance turned into a target with 64-bit
/// arithmetic, reduced mod 2^24.
pub fn reference(data: &[u8], forward: bool) -> Vec<u8> {
    let mut out = data.to_vec();
    for i in sites(data) {
        let d = i32::from_le_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]) as i64;
        let pos = i as i64 + 5;
        let v = (if forward { d + pos } else { d - pos }).rem_euclid(1 << 24);
        out[i + 1] = v as u8;
        out[i + 2] = (v >> 8) as u8;
        out[i + 3] = (v >> 16) as u8;
    }
    out
}

/// What [`detect`] counts: sites, and how many of their operands repeat an earlier
/// site's, as relative distances and as absolute targets (low 24 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sites: usize,
    pub relative_repeats: usize,
    pub absolute_repeats: usize,
}

/// Counts [`Stats`] for `data`.
pub fn stats(data: &[u8]) -> Stats {
    let at = sites(data);
    let mut rel: Vec<u32> =
        at.iter().map(|&i| u32::from_le_bytes([data[i + 1], data[i + 2], data[i + 3], 0])).collect();
    let mut abs: Vec<u32> =
        at.iter().zip(&rel).map(|(&i, &r)| r.wrapping_add((i as u64 + 5) as u32) & 0x00ff_ffff).collect();
    let repeats = |v: &mut Vec<u32>| {
        let n = v.len();
        v.sort_unstable();
        v.dedup();
        n - v.len()
    };
    Stats { sites: at.len(), relative_repeats: repeats(&mut rel), absolute_repeats: repeats(&mut abs) }
}

/// Sites per million bytes below which a frame is not taken for x86 code (random bytes
/// have about 2·2/65536 ≈ 61 per million; code has thousands).
const MIN_SITES_PER_MILLION: usize = 1000;

/// Whether the filter pays on `data`: enough sites, and absolute targets that repeat
/// clearly more often than relative distances.
pub fn detect(data: &[u8]) -> bool {
    let s = stats(data);
    s.sites >= 16
        && s.sites * 1_000_000 >= MIN_SITES_PER_MILLION * data.len()
        && s.absolute_repeats >= 2 * s.relative_repeats + s.sites / 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Inputs rich in sites: bytes drawn mostly from E8, E9, 00, FF.
    fn site_rich() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(0xe8u8), Just(0xe9), Just(0x00), Just(0xff), any::<u8>()], 0..200)
    }

    proptest! {
        #[test]
        fn inverse_undoes_forward(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut x = data.clone();
            forward(&mut x);
            prop_assert_eq!(&x, &reference(&data, true));
            inverse(&mut x);
            prop_assert_eq!(x, data);
        }

        #[test]
        fn inverse_undoes_forward_on_site_rich_bytes(data in site_rich()) {
            let mut x = data.clone();
            forward(&mut x);
            prop_assert_eq!(&x, &reference(&data, true));
            prop_assert_eq!(sites(&x), sites(&data));
            prop_assert_eq!(reference(&x, false), data.clone());
            inverse(&mut x);
            prop_assert_eq!(x, data);
        }
    }

    #[test]
    fn partial_operands_and_edges() {
        // A trailing E8 with 0..=3 bytes after it is not a site; with 4 it is.
        for len in 0..=6 {
            let mut data = [0xe8u8, 1, 2, 3, 0, 7][..len].to_vec();
            let original = data.clone();
            forward(&mut data);
            if len < 5 {
                assert_eq!(data, original, "len {len}");
            } else {
                assert_ne!(data, original, "len {len}");
            }
            inverse(&mut data);
            assert_eq!(data, original);
        }
        // A far operand (high byte neither 00 nor FF) is left alone.
        let mut data = vec![0xe8, 1, 2, 3, 0x40];
        forward(&mut data);
        assert_eq!(data, [0xe8, 1, 2, 3, 0x40]);
    }

    #[test]
    fn a_backward_call_wraps_into_24_bits() {
        // E8 at 0 with distance −5 targets position 0.
        let mut data = vec![0xe8, 0xfb, 0xff, 0xff, 0xff];
        forward(&mut data);
        assert_eq!(data, [0xe8, 0, 0, 0, 0xff]);
    }

    #[test]
    fn detect_takes_code_and_leaves_other_bytes() {
        // Calls from many places to a few functions.
        let mut code = Vec::new();
        for i in 0..4000u32 {
            let here = code.len() as u32 + 5;
            let target = 0x1000 * (i % 7);
            code.push(0xe8);
            code.extend_from_slice(&target.wrapping_sub(here).to_le_bytes());
            code.extend_from_slice(&[0x8b, 0x45, (i % 13) as u8, 0x90]);
        }
        assert!(detect(&code), "{:?}", stats(&code));
        let text = b"plain text has no call instructions at all. ".repeat(1000);
        assert!(!detect(&text));
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(!detect(&noise), "{:?}", stats(&noise));
    }
}
