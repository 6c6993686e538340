//! Applying a trained merge list to base symbols.
//!
//! BPE encoding applies the merges in rank order, each from left to right. The fast path
//! ([`Merger::merge`]) does this in one pass per chunk with a bucket per rank: merging a
//! pair only creates pairs with a younger symbol, hence a higher rank, so the buckets can
//! be emptied in rank order while new work lands in later buckets. [`merge_reference`]
//! is the slow, obvious version that it is tested against.

use super::bpe::{pair_key, PairMap};

/// Rank lookup and scratch space for the fast path.
pub struct Merger<'a> {
    base: usize,
    merges: &'a [(u16, u16)],
    rank: &'a PairMap<u32>,
    /// Dense ranks of pairs of base symbols (`u32::MAX`: none).
    base_rank: Vec<u32>,
    buckets: Vec<Vec<u32>>,
    next: Vec<u32>,
    prev: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl<'a> Merger<'a> {
    pub fn new(base: usize, merges: &'a [(u16, u16)], rank: &'a PairMap<u32>) -> Merger<'a> {
        let mut base_rank = vec![NONE; base * base];
        for (r, &(a, b)) in merges.iter().enumerate() {
            if (a as usize) < base && (b as usize) < base {
                base_rank[a as usize * base + b as usize] = r as u32;
            }
        }
        Merger {
            base,
            merges,
            rank,
            base_rank,
            buckets: vec![Vec::new(); merges.len()],
            next: Vec::new(),
            prev: Vec::new(),
        }
    }

    #[inline]
    fn rank_of(&self, a: u16, b: u16) -> u32 {
        if (a as usize) < self.base && (b as usize) < self.base {
            self.base_rank[a as usize * self.base + b as usize]
        } else {
            self.rank.get(&pair_key(a, b)).copied().unwrap_or(NONE)
        }
    }

    /// Merges `syms` (base symbols in, internal symbols out) in place; returns the new
    /// length.
    pub fn merge(&mut self, syms: &mut [u16]) -> usize {
        let n = syms.len();
        if n < 2 || self.merges.is_empty() {
            return n;
        }
        self.next.clear();
        self.next.extend(1..=n as u32);
        self.prev.clear();
        self.prev.push(NONE);
        self.prev.extend(0..n as u32 - 1);
        let mut lowest = self.merges.len();
        for p in 0..n - 1 {
            let r = self.rank_of(syms[p], syms[p + 1]);
            if r != NONE {
                self.buckets[r as usize].push(p as u32);
                lowest = lowest.min(r as usize);
            }
        }
        let n32 = n as u32;
        for r in lowest..self.merges.len() {
            if self.buckets[r].is_empty() {
                continue;
            }
            let mut list = std::mem::take(&mut self.buckets[r]);
            let (a, b) = self.merges[r];
            if a == b {
                list.sort_unstable();
            }
            let z = (self.base + r) as u16;
            for &p in &list {
                let pu = p as usize;
                let q = self.next[pu];
                // Stale entries: p was absorbed (next = NONE), or a neighbour changed.
                if q == NONE || q >= n32 || syms[pu] != a || syms[q as usize] != b {
                    continue;
                }
                syms[pu] = z;
                let nq = self.next[q as usize];
                self.next[pu] = nq;
                self.next[q as usize] = NONE;
                if nq < n32 {
                    self.prev[nq as usize] = p;
                    let r2 = self.rank_of(z, syms[nq as usize]);
                    if r2 != NONE {
                        self.buckets[r2 as usize].push(p);
                    }
                }
                let o = self.prev[pu];
                if o != NONE {
                    let r2 = self.rank_of(syms[o as usize], z);
                    if r2 != NONE {
                        self.buckets[r2 as usize].push(o);
                    }
                }
            }
            list.clear();
            self.buckets[r] = list;
        }
        // Compact the live tokens to the front.
        let mut w = 0;
        let mut p = 0u32;
        while p < n32 {
            syms[w] = syms[p as usize];
            w += 1;
            p = self.next[p as usize];
        }
        w
    }
}

/// Slow reference: for each merge in rank order, one left-to-right scan.
pub fn merge_reference(base: usize, merges: &[(u16, u16)], syms: &[u16]) -> Vec<u16> {
    let mut cur = syms.to_vec();
    for (r, &(a, b)) in merges.iter().enumerate() {
        let z = (base + r) as u16;
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            if i + 1 < cur.len() && cur[i] == a && cur[i + 1] == b {
                out.push(z);
                i += 2;
            } else {
                out.push(cur[i]);
                i += 1;
            }
        }
        cur = out;
    }
    cur
}
