//! The adaptive state of a context's node: probability counters with a count-based
//! rate, paq's nonstationary bit-history states ([`BitHistory`]), the run state of a
//! context's last byte, the match model's state.

use super::*;

/// The update rate of a counter that has seen `n` bits: 65536 / (n + 1.5).
pub(super) fn rate_table() -> Vec<u32> {
    (0..=COUNT_MASK).map(|n| 131_072 / (2 * n + 3)).collect()
}

/// Number of bit-history states (one byte each).
pub(super) const BH_STATES: usize = 256;
/// Largest count of one bit in a bit history, by the count of the other bit (0..=5):
/// a history of mixed bits keeps fewer, as paq's state machine does.
pub(super) const BH_BOUND: [u8; 6] = [40, 23, 12, 7, 5, 4];

/// A paq-style bit-history state machine: a state stands for the counts (n0, n1) of
/// the bits seen in a context, bounded and nonstationary (a bit discounts the count of
/// the other bit above 2, so a context that changes its mind forgets quickly), and for
/// histories of both bits, the last bit. State 0 is "nothing seen". The states are
/// numbered in the order a breadth-first walk from state 0 reaches them; the table is
/// built at start-up with integers only.
pub(super) struct BitHistory {
    /// next[2·s + bit]: the state after `bit` in state `s`.
    pub(super) next: Vec<u8>,
    /// (n0, n1, last bit) of each state.
    pub(super) counts: Vec<(u8, u8, u8)>,
}

impl BitHistory {
    pub(super) fn allowed(n0: u8, n1: u8) -> bool {
        let (lo, hi) = (n0.min(n1), n0.max(n1));
        (lo as usize) < BH_BOUND.len() && hi <= BH_BOUND[lo as usize] && lo <= hi
    }

    /// The counts after `bit`, from (n0, n1).
    pub(super) fn step(n0: u8, n1: u8, bit: u32) -> (u8, u8) {
        let (mut own, mut other) = if bit == 1 { (n1, n0) } else { (n0, n1) };
        own += 1;
        if other > 2 {
            other = other / 2 + 1;
        }
        let pair = |own: u8, other: u8| if bit == 1 { (other, own) } else { (own, other) };
        while !{
            let (a, b) = pair(own, other);
            Self::allowed(a, b)
        } {
            if other > 1 {
                other -= 1;
            } else {
                own -= 1;
            }
        }
        pair(own, other)
    }

    pub(super) fn new() -> BitHistory {
        let mut counts = vec![(0u8, 0u8, 0u8)];
        let mut next = Vec::new();
        let mut i = 0;
        while i < counts.len() {
            let (n0, n1, _) = counts[i];
            for bit in 0..2u32 {
                let (a, b) = Self::step(n0, n1, bit);
                // The last bit matters only when both bits were seen.
                let key = (a, b, if a > 0 && b > 0 { bit as u8 } else { 0 });
                let at = match counts.iter().position(|&c| c == key) {
                    Some(at) => at,
                    None => {
                        counts.push(key);
                        counts.len() - 1
                    }
                };
                next.push(at as u8);
            }
            i += 1;
        }
        assert!(counts.len() <= BH_STATES, "{} bit-history states", counts.len());
        next.resize(2 * BH_STATES, 0);
        BitHistory { next, counts }
    }

    #[inline]
    pub(super) fn next(&self, s: u8, bit: u32) -> u8 {
        self.next[2 * s as usize + bit as usize]
    }

    /// A fresh adaptive-map entry for state `s`: (n1 + 1/2) / (n0 + n1 + 1), count 0.
    pub(super) fn initial_map(&self, s: usize) -> u32 {
        let (n0, n1, _) = self.counts.get(s).copied().unwrap_or((0, 0, 0));
        let p = ((2 * n1 as u64 + 1) << 22) / (2 * (n0 as u64 + n1 as u64) + 2);
        (p.min((1 << 22) - 1) as u32) << COUNT_BITS
    }
}

/// The run state of a context at node `k`, from its slot's meta word: 0 if the context
/// has no last byte or that byte does not pass through node `k`, else 1 + 4 × (the bit
/// the last byte takes at `k`) + (its run length, 1..=4, minus 1). Deterministic
/// contexts (one byte, seen again and again) are where a counter's probability
/// undersells the evidence; the adaptive maps learn by how much.
#[inline]
pub(super) fn run_state(meta: u64, k: usize) -> usize {
    let run = ((meta >> 24) & 0xff) as usize;
    if run == 0 {
        return 0;
    }
    let last = 256 + ((meta >> 16) & 0xff) as usize;
    let d = (usize::BITS - 1 - k.leading_zeros()) as usize;
    if last >> (8 - d) != k {
        return 0;
    }
    let bit = (last >> (7 - d)) & 1;
    1 + 4 * bit + run.min(4) - 1
}

/// Generation 5's run state of a context at node `k` ([`RUN_STATES2`]): [`run_state`],
/// and whether the byte before the context's last byte passes through node `k`, and
/// with which bit (paq8px's second candidate of its run map). Two bytes that took
/// turns after a context are a different case from a byte seen once.
#[inline]
pub(super) fn run_state2(meta: u64, k: usize) -> usize {
    let base = run_state(meta, k);
    if (meta >> 48) & 3 < 2 {
        return base;
    }
    let b2 = 256 + ((meta >> 32) & 0xff) as usize;
    let d = depth(k);
    if b2 >> (8 - d) != k {
        return base;
    }
    base + RUN_STATES * (1 + ((b2 >> (7 - d)) & 1))
}

/// A match's length class: 0 under 16 bytes, 1 under 32, 2 from 32 (the third APM's
/// and the fourth's contexts).
#[inline]
pub(super) fn len_class(len: usize) -> usize {
    (len >= 16) as usize + (len >= 32) as usize
}

impl ByteCtx {
    #[inline]
    pub(super) fn train(counter: &mut u32, bit: u32, rate: &[u32], limit: u32) {
        let n = *counter & COUNT_MASK;
        let p = (*counter >> COUNT_BITS) as i64;
        let target = if bit != 0 { (1i64 << 22) - 1 } else { 0 };
        let p = p + (((target - p) * rate[n as usize] as i64) >> 16);
        let n = if n < limit { n + 1 } else { n };
        *counter = ((p as u32) << COUNT_BITS) | n;
    }

    /// The mixer's weight set for node `k` of a stream whose match model expects `expected`.
    #[inline]
    pub(super) fn match_state(expected: Option<u8>, len: usize, k: usize) -> (usize, Option<u32>) {
        match expected {
            None => (0, None),
            Some(e) => {
                let d = (usize::BITS - 1 - k.leading_zeros()) as usize;
                if (256 + e as usize) >> (8 - d) == k {
                    let bit = ((e >> (7 - d)) & 1) as u32;
                    (if len < 16 { 1 } else { 2 }, Some(bit))
                } else {
                    (3, None)
                }
            }
        }
    }
}
