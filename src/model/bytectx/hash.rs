//! Context hashing and the shared hash table: 64-byte slots of one nibble's 15 counters
//! and a tag, found in buckets of two, inserted on update by a deterministic rule.

use super::*;

/// A 64-byte slot: `[tag, 15 counters]` for the nodes of one nibble.
pub(super) type Slot = [u32; 16];

/// Mixes a 64-bit value well (a bijection; SplitMix64's finalizer).
#[inline]
pub(super) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
pub(super) fn hash2(a: u64, b: u64) -> u64 {
    mix64(a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b)
}

/// Nodes of the byte tree reached from the second-nibble slot of first nibble `hi`,
/// for local node `j` in 1..16 (the local tree's own numbering).
#[inline]
pub(super) fn second_nibble_node(hi: usize, j: usize) -> usize {
    let d = (usize::BITS - 1 - j.leading_zeros()) as usize;
    ((16 + hi) << d) | (j - (1 << d))
}

impl ByteCtx {
    /// The slot holding context hash `h`, if present.
    #[inline]
    pub(super) fn find(&self, h: u64) -> Option<usize> {
        let tag = (h as u32) | 1;
        let i = ((h >> 32) as usize) & self.slot_mask & !1;
        if self.table[i][0] == tag {
            Some(i)
        } else if self.table[i + 1][0] == tag {
            Some(i + 1)
        } else {
            None
        }
    }

    /// Asks the CPU to fetch the bucket of context hash `h` ahead of [`ByteCtx::find`]
    /// (a hint: it changes no result).
    #[inline]
    pub(super) fn prefetch_slot(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let i = ((h >> 32) as usize) & self.slot_mask & !1;
            // SAFETY: prefetching has no effect on memory; the address is in bounds.
            unsafe {
                _mm_prefetch(self.table[i..].as_ptr() as *const i8, _MM_HINT_T0);
                _mm_prefetch(self.states[i..].as_ptr() as *const i8, _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// The slot holding `h`, inserting it (fresh counters) over the bucket's less used
    /// slot if absent.
    pub(super) fn find_or_insert(&mut self, h: u64) -> usize {
        if let Some(i) = self.find(h) {
            return i;
        }
        let tag = (h as u32) | 1;
        let i = ((h >> 32) as usize) & self.slot_mask & !1;
        let used = |s: &Slot| if s[0] == 0 { 0 } else { 1 + (s[1] & COUNT_MASK) };
        let victim = if used(&self.table[i + 1]) < used(&self.table[i]) { i + 1 } else { i };
        let mut slot = EMPTY_SLOT;
        slot[0] = tag;
        self.table[victim] = slot;
        self.meta[victim] = 0;
        self.states[victim] = [0; 16];
        victim
    }

    /// The second-nibble slots of contexts `ctx` after first nibble `hi`: only the first
    /// nibbles a context has seen (its meta word says which) have one.
    pub(super) fn second_slots(&self, ctx: &[u64; N_CTX], metas: &[u64; N_CTX], hi: usize) -> [Option<usize>; N_CTX] {
        let hashes: [u64; N_CTX] = std::array::from_fn(|i| hash2(ctx[i], hi as u64 + 1));
        for i in 0..N_CTX {
            if metas[i] >> hi & 1 != 0 {
                self.prefetch_slot(hashes[i]);
            }
        }
        let mut second = [None; N_CTX];
        for i in 0..N_CTX {
            if metas[i] >> hi & 1 != 0 {
                second[i] = self.find(hashes[i]);
            }
        }
        second
    }
}
