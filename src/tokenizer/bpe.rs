//! Dictionary building: BPE-like merging of adjacent symbol pairs, scored by the
//! zeroth-order entropy each merge saves, in integer arithmetic.
//!
//! # Cost model
//!
//! A stream of `N` symbols with counts `c_i` costs `F(N) - Σ F(c_i)` bits at order 0, with
//! `F(x) = x log2 x`. Merging the pair `(a, b)` (count `c`) into a new symbol `z` changes
//! `N`, `c_a`, `c_b` and adds `c_z = c`; the saving is computed exactly from those four
//! counts (see [`saving`]). A merge is made only if the saving exceeds the cost of
//! its dictionary entry ([`entry_cost`]). `log2` is a fixed-point integer function
//! ([`Log2`]), so the same input gives the same dictionary everywhere.
//!
//! # Incremental structure
//!
//! The stream lives in one `u16` array; each token writes its symbol in its first and last
//! slot, so the next token starts at `p + len(sym[p])` and the previous one at
//! `p - len(sym[p - 1])`; a bit vector marks live token starts. Each live pair keeps its
//! exact count and a list of the positions where it was formed (entries may go stale and
//! are checked when used). Pair counts sit in a max-heap with lazy deletion.
//!
//! Two facts keep this cheap. A pair's occurrences are all formed in the round that
//! creates its younger symbol; afterwards its count only falls. So a pair that ends its
//! first round below `min_freq` can never be merged and is forgotten at once, and a heap
//! key is always an upper bound of the pair's current count. And the saving of a pair with
//! count `c` is at most `F(N) - F(N - c) - F(c)`, which grows with `c`: scanning the heap
//! from the top, the scan stops as soon as this bound cannot beat the best candidates
//! found. Each round ([`select`]) takes the `k` best candidates and keeps those that share
//! no symbol with a better one, so that they do not interact and can be applied one after
//! the other. Memory is about 10 bytes per base symbol; time is dominated by the random
//! reads of the position lists, about linear in the input.
//!
//! [`train_reference`] recounts every pair on every round; with no cap on the scan
//! ([`MAX_SCAN`]), both give the same merges (tested).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Fractional bits of the fixed-point `log2`.
pub const FRAC_BITS: u32 = 24;
/// Longest token, in base symbols. Bounds the decoder's tables for any dictionary.
pub const MAX_TOKEN_LEN: u32 = 256;
/// Most candidates examined in one round (late rounds may have many pairs whose bound
/// passes but whose score does not; this caps the work per round).
pub const MAX_SCAN: usize = 4096;

/// `floor(log2(x) * 2^FRAC_BITS)`, exact from a table for `x <= 65536`, interpolated
/// linearly between table entries above.
pub struct Log2 {
    table: Vec<u64>,
}

impl Default for Log2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Log2 {
    pub fn new() -> Log2 {
        let mut table = vec![0u64; 65537];
        for (x, t) in table.iter_mut().enumerate().skip(1) {
            *t = log2_exact(x as u64);
        }
        Log2 { table }
    }

    /// Fixed-point `log2(x)`; 0 for `x <= 1`.
    #[inline]
    pub fn log2(&self, x: u64) -> u64 {
        if x <= 65536 {
            return self.table[x as usize];
        }
        let k = 63 - x.leading_zeros();
        let shift = k - 15;
        let top = (x >> shift) as usize;
        let rem = x & ((1u64 << shift) - 1);
        let lo = self.table[top];
        let hi = self.table[top + 1];
        lo + ((shift as u64) << FRAC_BITS) + (((hi - lo) as u128 * rem as u128) >> shift) as u64
    }

    /// `x log2 x` in units of `2^-FRAC_BITS` bits; `x` must stay below `2^34`.
    #[inline]
    pub fn f(&self, x: u64) -> u64 {
        x * self.log2(x)
    }

    /// Order-0 cost of a stream with these symbol counts, in units of `2^-FRAC_BITS` bits.
    pub fn order0_cost(&self, counts: &[u64]) -> u64 {
        let n: u64 = counts.iter().sum();
        self.f(n) - counts.iter().map(|&c| self.f(c)).sum::<u64>()
    }
}

/// Bit-by-bit fixed-point log2 by repeated squaring of the mantissa (integer only).
fn log2_exact(x: u64) -> u64 {
    debug_assert!(x >= 1);
    let k = 63 - x.leading_zeros() as u64;
    // Mantissa in [1, 2) as Q62.
    let mut m: u128 = (x as u128) << (62 - k);
    let mut frac = 0u64;
    for _ in 0..FRAC_BITS {
        m = (m * m) >> 62;
        frac <<= 1;
        if m >= 2u128 << 62 {
            m >>= 1;
            frac |= 1;
        }
    }
    (k << FRAC_BITS) | frac
}

/// Order-0 bits (fixed point) saved by merging `(a, b)` with `c` occurrences in a stream of
/// `n` symbols where `a` and `b` occur `ca` and `cb` times.
pub fn saving(lg: &Log2, n: u64, a: u16, b: u16, ca: u64, cb: u64, c: u64) -> i64 {
    if a == b {
        // Overlapping occurrences (runs) count once per two symbols.
        let c = c.min(ca / 2);
        (lg.f(n) + lg.f(ca - 2 * c) + lg.f(c)) as i64 - (lg.f(n - c) + lg.f(ca)) as i64
    } else {
        (lg.f(n) + lg.f(ca - c) + lg.f(cb - c) + lg.f(c)) as i64 - (lg.f(n - c) + lg.f(ca) + lg.f(cb)) as i64
    }
}

/// The merges of one round: the `k` best candidates (score, then smaller key), of those
/// the ones with a positive score that share no symbol with a better one.
/// `cands` holds `(score, key)`.
pub fn select(cands: &mut [(i64, u32)], k: usize) -> Vec<(u16, u16)> {
    cands.sort_unstable_by_key(|&(s, key)| (Reverse(s), key));
    let mut used: Vec<u16> = Vec::new();
    let mut chosen = Vec::new();
    for &(score, key) in cands.iter().take(k) {
        let (a, b) = split_key(key);
        if score > 0 && !used.contains(&a) && !used.contains(&b) {
            used.push(a);
            used.push(b);
            chosen.push((a, b));
        }
    }
    chosen
}

/// Largest number of merges per round at the current vocabulary size: few while the
/// alphabet is small and every merge changes the statistics, more later.
pub fn merges_per_round(vocab: usize) -> usize {
    (vocab / 128).clamp(1, 32)
}

/// Cost of one dictionary entry, in units of `2^-FRAC_BITS` bits: its serialization (two
/// symbol ids of `log2 V` bits and an emitted flag) plus half of `log2 N` for the model to
/// learn one more probability.
pub fn entry_cost(lg: &Log2, vocab: u64, n: u64) -> i64 {
    (2 * lg.log2(vocab) + lg.log2(n.max(2)) / 2 + (1 << FRAC_BITS)) as i64
}

/// A hasher for pair keys (`a << 16 | b`). Deterministic; map iteration order never
/// reaches the output anyway (all orders come from vectors and heaps).
#[derive(Default, Clone, Copy)]
pub struct PairHasher(u64);

impl Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.0 = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

pub type PairMap<V> = HashMap<u32, V, BuildHasherDefault<PairHasher>>;

#[inline]
pub fn pair_key(a: u16, b: u16) -> u32 {
    (a as u32) << 16 | b as u32
}

#[inline]
fn split_key(key: u32) -> (u16, u16) {
    ((key >> 16) as u16, key as u16)
}

/// A plain bit vector.
pub struct BitVec(Vec<u64>);

impl BitVec {
    pub fn new(n: usize) -> BitVec {
        BitVec(vec![0; n.div_ceil(64)])
    }
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.0[i >> 6] >> (i & 63) & 1 != 0
    }
    #[inline]
    pub fn set(&mut self, i: usize) {
        self.0[i >> 6] |= 1 << (i & 63);
    }
    #[inline]
    pub fn clear(&mut self, i: usize) {
        self.0[i >> 6] &= !(1 << (i & 63));
    }
}

/// What training produced.
pub struct Trained {
    /// Merge `k` makes internal symbol `base + k` from the pair.
    pub merges: Vec<(u16, u16)>,
    /// Final count of each internal symbol in the training stream.
    pub counts: Vec<u64>,
}

struct PairRec {
    key: u32,
    count: u32,
    /// Positions where the pair was formed; entries may be stale.
    pos: Vec<u32>,
}

struct Trainer<'a> {
    lg: &'a Log2,
    sym: Vec<u16>,
    /// Live token starts.
    start: BitVec,
    /// Segment starts: no pair spans a segment boundary.
    seg: BitVec,
    tlen: Vec<u32>,
    counts: Vec<u64>,
    total: u64,
    pairs: Vec<PairRec>,
    free: Vec<u32>,
    map: PairMap<u32>,
    /// `count << 32 | key`; a key's count is an upper bound of the pair's count.
    heap: BinaryHeap<u64>,
    /// Pairs created in this round, in creation order.
    born: Vec<u32>,
    min_freq: u32,
    base_vocab: usize,
    /// Merged symbols whose count is at least `min_freq` (those that would be emitted).
    live: usize,
}

/// Trains merges on the base-symbol stream `base`, cut into segments at `seg_starts`.
/// `base_vocab` is the number of base symbols (256 or 259). Merging stops when no merge
/// pays, or when the merged symbols that occur at least `min_freq` times fill `max_vocab`
/// (at most `2 max_vocab - base_vocab` merges). `base.len()` must be below `2^32 - 1`;
/// `max_scan` caps the candidates examined per round ([`MAX_SCAN`]; unlimited, the result
/// equals [`train_reference`]).
pub fn train(
    lg: &Log2,
    base: Vec<u16>,
    seg_starts: &[usize],
    base_vocab: usize,
    max_vocab: usize,
    min_freq: u32,
    max_scan: usize,
) -> Trained {
    let n = base.len();
    assert!(n < u32::MAX as usize, "training stream too long");
    let mut t = Trainer {
        lg,
        start: BitVec::new(n),
        seg: BitVec::new(n),
        tlen: vec![1; base_vocab],
        counts: vec![0; base_vocab],
        total: n as u64,
        pairs: Vec::new(),
        free: Vec::new(),
        map: PairMap::default(),
        heap: BinaryHeap::new(),
        born: Vec::new(),
        min_freq: min_freq.max(2),
        base_vocab,
        live: 0,
        sym: base,
    };
    t.init(seg_starts, base_vocab);
    let mut merges = Vec::new();
    // Intermediate symbols that end up rare are pruned from the output alphabet, so more
    // merges than output symbols may be made: stop when the symbols in use fill
    // `max_vocab`, or at twice that many merges (each still costs dictionary bytes).
    let max_merges = (2 * max_vocab).min(65536).saturating_sub(base_vocab);
    while merges.len() < max_merges && base_vocab + t.live < max_vocab {
        let vocab = base_vocab + merges.len();
        let room = (max_merges - merges.len()).min(max_vocab - base_vocab - t.live);
        let k = merges_per_round(vocab).min(room);
        let chosen = t.choose(k, vocab as u64, max_scan);
        if chosen.is_empty() {
            break;
        }
        for (a, b) in chosen {
            let z = (base_vocab + merges.len()) as u16;
            t.apply(a, b, z);
            merges.push((a, b));
        }
        t.end_round();
    }
    Trained { merges, counts: t.counts }
}

impl Trainer<'_> {
    fn init(&mut self, seg_starts: &[usize], base_vocab: usize) {
        let n = self.sym.len();
        self.start.0.fill(u64::MAX); // every base symbol starts a token
        for &s in seg_starts {
            if s < n {
                self.seg.set(s);
            }
        }
        // Count base pairs densely, then keep those that can ever be merged.
        let mut dense = vec![0u32; base_vocab * base_vocab];
        for p in 0..n {
            self.counts[self.sym[p] as usize] += 1;
            if p + 1 < n && !self.seg.get(p + 1) {
                dense[self.sym[p] as usize * base_vocab + self.sym[p + 1] as usize] += 1;
            }
        }
        let mut slot = vec![u32::MAX; dense.len()];
        for (i, &c) in dense.iter().enumerate() {
            if c >= self.min_freq {
                let key = pair_key((i / base_vocab) as u16, (i % base_vocab) as u16);
                let id = self.pairs.len() as u32;
                self.pairs.push(PairRec { key, count: c, pos: Vec::with_capacity(c as usize) });
                self.map.insert(key, id);
                self.heap.push((c as u64) << 32 | key as u64);
                slot[i] = id;
            }
        }
        for p in 0..n.saturating_sub(1) {
            if !self.seg.get(p + 1) {
                let id = slot[self.sym[p] as usize * base_vocab + self.sym[p + 1] as usize];
                if id != u32::MAX {
                    self.pairs[id as usize].pos.push(p as u32);
                }
            }
        }
    }

    /// The most any pair with `c` occurrences can save, plus a margin that covers the
    /// truncation of the fixed-point `F` (each `F(x)` is at most `3x` units low).
    fn bound(&self, c: u64) -> i64 {
        let lg = self.lg;
        let n = self.total;
        lg.f(n) as i64 - (lg.f(n - c) + lg.f(c)) as i64 + 6 * n as i64 + 256
    }

    fn remove_pair(&mut self, key: u32, id: u32) {
        self.map.remove(&key);
        self.pairs[id as usize].pos = Vec::new();
        self.pairs[id as usize].count = 0;
        self.free.push(id);
    }

    /// Picks this round's merges ([`select`]) from the heap: candidates are popped in
    /// decreasing count until the bound shows that no other pair can enter the top `k`
    /// with a positive score (then the choice equals [`select`] over all pairs), or
    /// `max_scan` candidates were looked at.
    fn choose(&mut self, k: usize, vocab: u64, max_scan: usize) -> Vec<(u16, u16)> {
        let e_cost = entry_cost(self.lg, vocab, self.total);
        let mut cands: Vec<(i64, u32)> = Vec::new();
        // The k best scores so far (min-heap).
        let mut best: BinaryHeap<Reverse<i64>> = BinaryHeap::new();
        while let Some(&top) = self.heap.peek() {
            let c = top >> 32;
            let key = top as u32;
            if c < self.min_freq as u64 || cands.len() >= max_scan {
                break;
            }
            if 2 * c < self.total {
                let ub = self.bound(c) - e_cost;
                let kth = best.peek().map_or(i64::MIN, |r| r.0);
                if ub <= 0 || (best.len() >= k && ub < kth) {
                    break;
                }
            }
            self.heap.pop();
            let Some(&id) = self.map.get(&key) else {
                continue;
            };
            let count = self.pairs[id as usize].count as u64;
            if count < c {
                // Stale key: the count fell since it was pushed.
                if count >= self.min_freq as u64 {
                    self.heap.push(count << 32 | key as u64);
                } else {
                    self.remove_pair(key, id);
                }
                continue;
            }
            let (a, b) = split_key(key);
            if self.tlen[a as usize] + self.tlen[b as usize] > MAX_TOKEN_LEN {
                self.remove_pair(key, id);
                continue;
            }
            let (ca, cb) = (self.counts[a as usize], self.counts[b as usize]);
            let score = saving(self.lg, self.total, a, b, ca, cb, count) - e_cost;
            cands.push((score, key));
            if score > 0 {
                best.push(Reverse(score));
                if best.len() > k {
                    best.pop();
                }
            }
        }
        let chosen = select(&mut cands, k);
        for &(_, key) in &cands {
            if !chosen.contains(&split_key(key)) {
                if let Some(&id) = self.map.get(&key) {
                    self.heap.push((self.pairs[id as usize].count as u64) << 32 | key as u64);
                }
            }
        }
        chosen
    }

    #[inline]
    fn dec(&mut self, key: u32) {
        if let Some(&id) = self.map.get(&key) {
            let rec = &mut self.pairs[id as usize];
            debug_assert!(rec.count > 0);
            rec.count -= 1;
        }
    }

    #[inline]
    fn inc(&mut self, key: u32, pos: usize) {
        let id = match self.map.entry(key) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(v) => {
                let id = match self.free.pop() {
                    Some(id) => {
                        self.pairs[id as usize].key = key;
                        id
                    }
                    None => {
                        self.pairs.push(PairRec { key, count: 0, pos: Vec::new() });
                        (self.pairs.len() - 1) as u32
                    }
                };
                v.insert(id);
                self.born.push(id);
                id
            }
        };
        let rec = &mut self.pairs[id as usize];
        rec.count += 1;
        rec.pos.push(pos as u32);
    }

    /// Replaces every occurrence of `(a, b)` by `z`, left to right for `a == b`.
    fn apply(&mut self, a: u16, b: u16, z: u16) {
        let key = pair_key(a, b);
        let Some(&id) = self.map.get(&key) else {
            return;
        };
        let mut positions = std::mem::take(&mut self.pairs[id as usize].pos);
        self.remove_pair(key, id);
        let (la, lb) = (self.tlen[a as usize] as usize, self.tlen[b as usize] as usize);
        let n = self.sym.len();
        // Drop the stale entries first, in a loop without data-dependent branches so that
        // the cache misses of many entries overlap: these random reads are most of the
        // training time. (An entry stale now cannot become valid: no token becomes `a`.)
        let mut w = 0;
        for i in 0..positions.len() {
            let p = positions[i] as usize;
            let q = (p + la).min(n - 1);
            let ok = self.start.get(p) & (self.sym[p] == a) & (p + la < n) & !self.seg.get(q) & (self.sym[q] == b);
            positions[w] = p as u32;
            w += ok as usize;
        }
        positions.truncate(w);
        if a == b {
            positions.sort_unstable();
        }
        self.tlen.push((la + lb) as u32);
        self.counts.push(0);
        let mut merged = 0u64;
        for &p in &positions {
            let p = p as usize;
            if !self.start.get(p) || self.sym[p] != a {
                continue;
            }
            let q = p + la;
            if q >= n || self.seg.get(q) || self.sym[q] != b {
                continue;
            }
            let r = q + lb;
            if p > 0 && !self.seg.get(p) {
                let o = p - self.tlen[self.sym[p - 1] as usize] as usize;
                let x = self.sym[o];
                self.dec(pair_key(x, a));
                self.inc(pair_key(x, z), o);
            }
            if r < n && !self.seg.get(r) {
                let y = self.sym[r];
                self.dec(pair_key(b, y));
                self.inc(pair_key(z, y), p);
            }
            self.start.clear(q);
            self.sym[p] = z;
            self.sym[r - 1] = z;
            merged += 1;
        }
        for x in [a, b] {
            let before = self.counts[x as usize];
            self.counts[x as usize] -= merged;
            let t = self.min_freq as u64;
            if x as usize >= self.base_vocab && before >= t && self.counts[x as usize] < t {
                self.live -= 1;
            }
        }
        self.counts[z as usize] = merged;
        if merged >= self.min_freq as u64 {
            self.live += 1;
        }
        self.total -= merged;
    }

    /// Pairs born this round have all their occurrences: keep those that can be merged.
    fn end_round(&mut self) {
        let born = std::mem::take(&mut self.born);
        for &id in &born {
            let rec = &self.pairs[id as usize];
            let (key, count) = (rec.key, rec.count);
            if count >= self.min_freq {
                self.heap.push((count as u64) << 32 | key as u64);
            } else {
                self.remove_pair(key, id);
            }
        }
        self.born = born;
        self.born.clear();
    }
}

/// Slow reference of [`train`]: every round recounts all pairs, scores every pair and
/// applies the merges by scanning the whole stream, as NNCP's preprocessor does. With an
/// unlimited `max_scan`, [`train`] must produce the same merges and counts.
pub fn train_reference(
    lg: &Log2,
    base: Vec<u16>,
    seg_starts: &[usize],
    base_vocab: usize,
    max_vocab: usize,
    min_freq: u32,
) -> Trained {
    let min_freq = min_freq.max(2) as u64;
    // seg[i]: segment number of token i; pairs never span two segments.
    let mut seg = vec![0u32; base.len()];
    let mut s = 0;
    for (i, g) in seg.iter_mut().enumerate() {
        while s < seg_starts.len() && seg_starts[s] <= i {
            s += 1;
        }
        *g = s as u32;
    }
    let mut seq = base;
    let mut tlen = vec![1u32; base_vocab];
    let mut counts = vec![0u64; base_vocab];
    for &x in &seq {
        counts[x as usize] += 1;
    }
    let mut merges: Vec<(u16, u16)> = Vec::new();
    let max_merges = (2 * max_vocab).min(65536).saturating_sub(base_vocab);
    loop {
        let live = counts[base_vocab..].iter().filter(|&&c| c >= min_freq).count();
        if merges.len() >= max_merges || base_vocab + live >= max_vocab {
            break;
        }
        let vocab = base_vocab + merges.len();
        let room = (max_merges - merges.len()).min(max_vocab - base_vocab - live);
        let k = merges_per_round(vocab).min(room);
        let total = seq.len() as u64;
        let mut pair_counts: std::collections::BTreeMap<u32, u64> = Default::default();
        for i in 1..seq.len() {
            if seg[i] == seg[i - 1] {
                *pair_counts.entry(pair_key(seq[i - 1], seq[i])).or_default() += 1;
            }
        }
        let e_cost = entry_cost(lg, vocab as u64, total);
        let mut cands: Vec<(i64, u32)> = pair_counts
            .iter()
            .filter(|&(&key, &c)| {
                let (a, b) = split_key(key);
                c >= min_freq && tlen[a as usize] + tlen[b as usize] <= MAX_TOKEN_LEN
            })
            .map(|(&key, &c)| {
                let (a, b) = split_key(key);
                let (ca, cb) = (counts[a as usize], counts[b as usize]);
                (saving(lg, total, a, b, ca, cb, c) - e_cost, key)
            })
            .collect();
        let chosen = select(&mut cands, k);
        if chosen.is_empty() {
            break;
        }
        for (a, b) in chosen {
            let z = (base_vocab + merges.len()) as u16;
            merges.push((a, b));
            tlen.push(tlen[a as usize] + tlen[b as usize]);
            counts.push(0);
            let (mut out, mut out_seg) = (Vec::with_capacity(seq.len()), Vec::with_capacity(seq.len()));
            let mut i = 0;
            while i < seq.len() {
                if i + 1 < seq.len() && seq[i] == a && seq[i + 1] == b && seg[i] == seg[i + 1] {
                    out.push(z);
                    counts[a as usize] -= 1;
                    counts[b as usize] -= 1;
                    counts[z as usize] += 1;
                    i += 2;
                } else {
                    out.push(seq[i]);
                    i += 1;
                }
                out_seg.push(seg[i - 1]);
            }
            seq = out;
            seg = out_seg;
        }
    }
    Trained { merges, counts }
}

/// Marks merged symbols whose final count is below `threshold` as not emitted, moving
/// their occurrences to their two parts (youngest first, so that chains resolve).
/// Returns the emitted flag of each merge; `counts` is updated in place.
pub fn prune(merges: &[(u16, u16)], counts: &mut [u64], base: usize, threshold: u64) -> Vec<bool> {
    let mut emitted = vec![true; merges.len()];
    for k in (0..merges.len()).rev() {
        let z = base + k;
        if counts[z] < threshold {
            let c = counts[z];
            counts[z] = 0;
            let (a, b) = merges[k];
            counts[a as usize] += c;
            counts[b as usize] += c;
            emitted[k] = false;
        }
    }
    emitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_table_exact_points() {
        let lg = Log2::new();
        assert_eq!(lg.log2(1), 0);
        assert_eq!(lg.log2(2), 1 << FRAC_BITS);
        assert_eq!(lg.log2(1 << 20), 20 << FRAC_BITS);
        assert_eq!(lg.log2(1 << 40), 40 << FRAC_BITS);
        // log2(3) = 1.5849625007...
        let l3 = lg.log2(3) as f64 / (1u64 << FRAC_BITS) as f64;
        assert!((l3 - 1.584_962_5).abs() < 1e-6, "{l3}");
        // Interpolated region stays monotone and close.
        let mut prev = 0;
        for x in (65_000u64..400_000).step_by(997) {
            let l = lg.log2(x);
            assert!(l >= prev);
            prev = l;
        }
        let l = lg.log2(1_000_000) as f64 / (1u64 << FRAC_BITS) as f64;
        assert!((l - 19.931_568_57).abs() < 1e-5, "{l}");
    }

    #[test]
    fn merges_repeated_word_and_counts_match() {
        let lg = Log2::new();
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcxyz".repeat(8);
        let base: Vec<u16> = text.iter().map(|&b| b as u16).collect();
        let t = train(&lg, base, &[0], 256, 300, 4, MAX_SCAN);
        assert!(!t.merges.is_empty());
        let n: u64 = t.counts.iter().sum();
        assert!(n < text.len() as u64 / 2, "{n}");
    }

    #[test]
    fn no_merges_on_noise() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut data = vec![0u8; 200_000];
        rng.fill_bytes(&mut data);
        let base: Vec<u16> = data.iter().map(|&b| b as u16).collect();
        let lg = Log2::new();
        let t = train(&lg, base, &[0], 256, 16384, 2, MAX_SCAN);
        assert!(t.merges.is_empty(), "{} merges on random bytes", t.merges.len());
    }
}
