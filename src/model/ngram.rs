//! An order-3 interpolated Kneser–Ney model: the context half of the LSTM mixture.
//!
//! At each order `k` (0..=3, the last `k` symbols of the stream), a context that has
//! seen `n` symbols, `u` of them distinct, gives
//!
//! ```text
//! P_k(s) = (max(c_k(s) − D_k, 0) + D_k · u · P_{k−1}(s)) / n,     P_{−1}(s) = 1 / V
//! ```
//!
//! (absolute discounting, interpolated), and a context never seen defers entirely to
//! `P_{k−1}`. As in Kneser–Ney, the lower orders count *continuations*: a symbol is
//! added to the order-`k` context only when it was new in every higher-order context
//! ("update exclusion" in PPM's terms), so a lower order learns how likely a symbol is
//! to appear after a context that has not seen it, not how frequent it is.
//!
//! Measured against the Witten–Bell order-2 model ([`super::order2`]) on tokenized text
//! (ideal code length, payload only): alice29.txt 2.2287 → 2.1363 bits per byte, book1
//! 2.4384 → 2.3479; mixed with the `fast` LSTM (dictionary included), alice29
//! 2.1735 → 2.1456, book1 2.2950 → 2.2726 (the mixer contexts of [`Ngram::level`] give
//! part of that). The discounts were tuned on book1 (`examples/mix_dump.rs`).
//!
//! All arithmetic is plain IEEE f32 in a fixed order and the hash maps are only looked up,
//! never iterated, so the decoder replays it bit for bit. Statistics are shared by the
//! `B` streams (updated in stream order); each stream has its own history.
//!
//! Memory is bounded: once `max_pairs` (context, symbol) counts exist, no new context or
//! symbol is added (existing counts still grow), so the model stops learning new n-grams
//! on very large inputs instead of growing without bound.
//!
//! ```
//! use nnz::model::ngram::Ngram;
//! use nnz::model::Predictor;
//! let mut m = Ngram::new(16, 1);
//! let mut probs = vec![0.0; 16];
//! for _ in 0..20 {
//!     m.update(&[3]);
//! }
//! m.predict(&mut probs);
//! assert!(probs[3] > 0.9);
//! assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//! ```

use super::Predictor;
use std::collections::HashMap;

/// Highest order: contexts of the last `ORDER` symbols.
pub const ORDER: usize = 3;
/// Discount of each order 0..=3: higher orders see more one-off symbols and discount more.
const DISCOUNT: [f32; ORDER + 1] = [0.4, 0.6, 0.8, 0.9];
/// A context's total count is halved when it passes this (keeps it adaptive).
const MAX_TOTAL: u32 = 1 << 16;
/// Default bound on stored (context, symbol) counts: 4M pairs. Measured, a pair costs
/// about 40 bytes with its share of the contexts and the maps' overhead (book1: 228k
/// tokens, 0.50M pairs in 0.28M contexts, +20 MB peak), so the model stays under about
/// 170 MB; the bound is reached after about 2M tokens (7–9 MB of English text).
pub const MAX_PAIRS: usize = 1 << 22;
/// Levels of [`Ngram::escape_bucket`].
const ESCAPE_BUCKETS: usize = 8;
/// Number of distinct values [`Ngram::level`] returns.
pub const LEVELS: usize = (ORDER + 2) * ESCAPE_BUCKETS;

/// Sparse counts of one context, in order of first appearance.
#[derive(Default)]
struct Context {
    counts: Vec<(u16, u32)>,
    total: u32,
}

impl Context {
    /// Counts `symbol`. Returns whether it was new in this context, and whether a new
    /// entry was stored (a new symbol is not stored when `room` is false).
    fn add(&mut self, symbol: u16, room: bool) -> (bool, bool) {
        let new = match self.counts.iter_mut().find(|(s, _)| *s == symbol) {
            Some((_, c)) => {
                *c += 1;
                false
            }
            None if room => {
                self.counts.push((symbol, 1));
                true
            }
            None => return (true, false),
        };
        self.total += 1;
        if self.total > MAX_TOTAL {
            self.total = 0;
            for (_, c) in self.counts.iter_mut() {
                *c = c.div_ceil(2);
                self.total += *c;
            }
        }
        (new, new)
    }
}

/// Interpolated Kneser–Ney model of orders 0..=3 over a `V`-symbol alphabet, `B` streams.
pub struct Ngram {
    vocab: usize,
    /// One map per order; the key packs the last `k` symbols, 16 bits each.
    tables: Vec<HashMap<u64, Context>>,
    /// Per stream, the last `ORDER` symbols, most recent in the low 16 bits (0 before the start).
    history: Vec<u64>,
    pairs: usize,
    max_pairs: usize,
}

impl Ngram {
    /// A model of `batch` streams sharing their statistics, bounded by [`MAX_PAIRS`].
    pub fn new(vocab: usize, batch: usize) -> Ngram {
        Ngram::with_max_pairs(vocab, batch, MAX_PAIRS)
    }

    /// As [`Ngram::new`], storing at most `max_pairs` (context, symbol) counts.
    pub fn with_max_pairs(vocab: usize, batch: usize, max_pairs: usize) -> Ngram {
        assert!((1..=1 << 16).contains(&vocab), "vocabulary of 1..=65536 symbols");
        assert!(batch >= 1);
        Ngram {
            vocab,
            tables: (0..=ORDER).map(|_| HashMap::new()).collect(),
            history: vec![0; batch],
            pairs: 0,
            max_pairs,
        }
    }

    fn key(history: u64, k: usize) -> u64 {
        if k == 0 {
            0
        } else {
            history & ((1u64 << (16 * k)) - 1)
        }
    }

    fn context(&self, stream: usize, k: usize) -> Option<&Context> {
        self.tables[k].get(&Self::key(self.history[stream], k)).filter(|c| c.total > 0)
    }

    /// How `stream`'s next prediction is made, in `0..LEVELS`: the highest order whose
    /// context has been seen (0 = none, else order + 1), and how often that context met a
    /// new symbol (`8 · u / n`, in 8 buckets). The mixer learns a weight per level.
    pub fn level(&self, stream: usize) -> usize {
        for k in (0..=ORDER).rev() {
            if let Some(c) = self.context(stream, k) {
                let bucket = (ESCAPE_BUCKETS * c.counts.len() / c.total as usize).min(ESCAPE_BUCKETS - 1);
                return (k + 1) * ESCAPE_BUCKETS + bucket;
            }
        }
        0
    }

    /// Number of (context, symbol) counts stored.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// The probability of `symbol` for `stream` by the recursive formula of the module
    /// docs, in f64: the slow reference [`Predictor::predict`] is tested against.
    pub fn reference_prob(&self, stream: usize, symbol: u16) -> f64 {
        let mut p = 1.0 / self.vocab as f64;
        for k in 0..=ORDER {
            if let Some(c) = self.context(stream, k) {
                let d = DISCOUNT[k] as f64;
                let count = c.counts.iter().find(|(s, _)| *s == symbol).map_or(0, |&(_, n)| n) as f64;
                p = ((count - d).max(0.0) + d * c.counts.len() as f64 * p) / c.total as f64;
            }
        }
        p
    }
}

impl Predictor for Ngram {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn batch(&self) -> usize {
        self.history.len()
    }

    /// From the highest order down: each context adds its discounted counts, scaled by
    /// the mass `m` the higher orders left to it, and passes on `m · D · u / n`; the mass
    /// left after order 0 is spread uniformly. One sparse pass per order, one dense pass.
    fn predict(&mut self, probs: &mut [f32]) {
        let uniform = 1.0 / self.vocab as f32;
        for (stream, row) in probs.chunks_exact_mut(self.vocab).enumerate() {
            row.fill(0.0);
            let mut mass = 1.0f32;
            for k in (0..=ORDER).rev() {
                if let Some(c) = self.context(stream, k) {
                    let d = DISCOUNT[k];
                    let scale = mass / c.total as f32;
                    for &(s, n) in &c.counts {
                        // Counts are ≥ 1 > D, so max(c − D, 0) = c − D.
                        row[s as usize] += (n as f32 - d) * scale;
                    }
                    mass = mass * d * c.counts.len() as f32 / c.total as f32;
                }
            }
            let rest = mass * uniform;
            for p in row.iter_mut() {
                *p += rest;
            }
        }
    }

    fn update(&mut self, symbols: &[u16]) {
        for (history, &s) in self.history.iter_mut().zip(symbols) {
            for k in (0..=ORDER).rev() {
                let key = Self::key(*history, k);
                let room = self.pairs < self.max_pairs;
                let table = &mut self.tables[k];
                let context = match table.get_mut(&key) {
                    Some(c) => c,
                    None if room => table.entry(key).or_default(),
                    None => break,
                };
                let (new, stored) = context.add(s, room);
                self.pairs += stored as usize;
                if !new {
                    break; // Kneser–Ney: lower orders count only novel continuations
                }
            }
            *history = (*history << 16 | s as u64) & ((1u64 << (16 * ORDER)) - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u16> {
        // A Zipf-like, repetitive sequence over 200 symbols.
        let words = [3u16, 17, 3, 99, 150, 17, 3, 42, 7, 199, 3, 17, 0, 8];
        (0..n as u32)
            .map(|i| if i % 7 == 6 { (i.wrapping_mul(2654435761) >> 24) as u16 % 200 } else { words[i as usize % 14] })
            .collect()
    }

    #[test]
    fn matches_the_reference_and_sums_to_one() {
        let data = text(3000);
        let mut m = Ngram::new(200, 2);
        let mut probs = vec![0.0; 400];
        for (t, pair) in data.chunks(2).enumerate() {
            m.predict(&mut probs);
            for stream in 0..2 {
                let row = &probs[stream * 200..(stream + 1) * 200];
                let sum: f64 = row.iter().map(|&p| p as f64).sum();
                assert!((sum - 1.0).abs() < 1e-4, "step {t}: sum {sum}");
                for s in [0u16, 3, 17, 99, 150, 199] {
                    let r = m.reference_prob(stream, s);
                    let p = row[s as usize] as f64;
                    assert!((p - r).abs() <= 1e-5 * r.max(1e-3), "step {t} symbol {s}: {p} vs {r}");
                }
            }
            assert!(m.level(0) < LEVELS && m.level(1) < LEVELS);
            m.update(pair);
        }
    }

    #[test]
    fn beats_a_uniform_code_on_structured_data() {
        let data = text(6000);
        let mut m = Ngram::new(200, 1);
        let mut probs = vec![0.0; 200];
        let mut bits = 0.0;
        for &s in &data {
            m.predict(&mut probs);
            bits -= (probs[s as usize] as f64).log2();
            m.update(&[s]);
        }
        // 6 of 7 symbols follow a fixed cycle: far below log2(200) = 7.6 bits.
        assert!(bits / (data.len() as f64) < 2.0, "{} bits/symbol", bits / data.len() as f64);
    }

    #[test]
    fn lower_orders_count_only_novel_continuations() {
        let mut m = Ngram::new(16, 1);
        for _ in 0..10 {
            for s in [5, 6, 7] {
                m.update(&[s]);
            }
        }
        // First pass: 5, 6, 7 are new everywhere, order 0 counts each once. Second pass:
        // 5 is new after (5, 6, 7), (6, 7) and (7), so order 0 counts it again; 6 and 7
        // are already known after (5) and (5, 6). From then on, order 3 knows every
        // continuation and the lower orders are left alone.
        let order0 = m.tables[0].get(&0).unwrap();
        assert_eq!(order0.counts, vec![(5, 2), (6, 1), (7, 1)]);
        assert_eq!(m.tables[3].get(&(5 << 32 | 6 << 16 | 7)).unwrap().counts, vec![(5, 9)]);
    }

    #[test]
    fn memory_bound_is_respected_and_prediction_stays_valid() {
        let data: Vec<u16> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 20) as u16 % 1000).collect();
        let mut m = Ngram::with_max_pairs(1000, 1, 300);
        let mut probs = vec![0.0; 1000];
        for &s in &data {
            m.predict(&mut probs);
            assert!(probs[s as usize] > 0.0);
            m.update(&[s]);
        }
        assert!(m.pairs() <= 300, "{} pairs", m.pairs());
        let sum: f32 = probs.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }

    #[test]
    fn replay_is_bit_identical() {
        let data = text(2000);
        let (mut a, mut b) = (Ngram::new(200, 4), Ngram::new(200, 4));
        let (mut pa, mut pb) = (vec![0.0; 800], vec![0.0; 800]);
        for step in data.chunks(4) {
            a.predict(&mut pa);
            b.predict(&mut pb);
            assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
            a.update(step);
            b.update(step);
        }
    }
}
