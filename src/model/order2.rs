//! The order-2 context model: a fast, adaptive stand-in predictor.
//!
//! It blends order-0, order-1 and order-2 symbol statistics by Witten–Bell
//! interpolation: at each order `k`, with `n` symbols seen in the current context of
//! which `u` were distinct,
//!
//! ```text
//! P_k(s) = (count_k(s) + u · P_{k-1}(s)) / (n + u),     P_{-1}(s) = 1 / V
//! ```
//!
//! so a context that has seen few distinct symbols trusts its own counts, and one that
//! sees something new each time defers to the shorter context. Counts are halved when a
//! context's total passes [`MAX_TOTAL`], which keeps the model adaptive. All arithmetic
//! is plain IEEE f32 (add, mul, div) in a fixed order, so it is deterministic.
//!
//! It is the fast predictor (`--model order2`), and the fast-adapting half of the LSTM
//! mixture ([`super::mix`]). It codes `B` streams: the statistics are shared by all of
//! them (updated in stream order at every step), each stream has its own history.
//!
//! Memory is bounded: the model counts its contexts and (context, symbol) slots, and when
//! they pass [`MAX_ENTRIES`] it forgets its order-1 and order-2 statistics and starts
//! afresh, as PPMd does when its memory is exhausted. The restart happens at the same
//! symbol in the encoder and the decoder, so it is as deterministic as the rest.

use super::Predictor;
use std::collections::HashMap;

/// A context's total count is halved when it passes this.
const MAX_TOTAL: u32 = 1 << 16;

/// Contexts plus (context, symbol) slots kept before the model restarts. Measured: 25
/// bytes an entry on text (dickens' 1.9 M tokens: 3.6 M entries, 91 MB; book1's 0.23 M:
/// 0.37 M), 41 on random 16k-symbol input, the worst case (a new context and slot at
/// every symbol): at most about 350 MB, and inputs below about 20 MB of text never
/// restart.
pub const MAX_ENTRIES: usize = 1 << 23;

/// Counts of the symbols seen in one context, sparse (most contexts see few symbols).
#[derive(Default)]
struct Context {
    /// (symbol, count), in order of first appearance.
    counts: Vec<(u16, u32)>,
    total: u32,
}

impl Context {
    /// Counts `symbol`; returns whether it took a new slot.
    fn add(&mut self, symbol: u16) -> bool {
        let new_slot = match self.counts.iter_mut().find(|(s, _)| *s == symbol) {
            Some((_, c)) => {
                *c += 1;
                false
            }
            None => {
                self.counts.push((symbol, 1));
                true
            }
        };
        self.total += 1;
        if self.total > MAX_TOTAL {
            self.total = 0;
            for (_, c) in self.counts.iter_mut() {
                *c = c.div_ceil(2);
                self.total += *c;
            }
        }
        new_slot
    }

    /// `probs = (count + u · probs) / (n + u)`, applied in place.
    fn blend_into(&self, probs: &mut [f32]) {
        if self.total == 0 {
            return;
        }
        let u = self.counts.len() as f32;
        let inv = 1.0 / (self.total as f32 + u);
        let keep = u * inv;
        for p in probs.iter_mut() {
            *p *= keep;
        }
        for &(s, c) in &self.counts {
            probs[s as usize] += c as f32 * inv;
        }
    }
}

/// Order-0/1/2 interpolated context model over a `V`-symbol alphabet.
pub struct Order2 {
    vocab: usize,
    order0: Context,
    order1: HashMap<u16, Context>,
    order2: HashMap<u32, Context>,
    /// Per stream, the last two symbols, most recent first (0 before the start).
    history: Vec<[u16; 2]>,
    /// Order-1 and order-2 contexts plus their slots, and the bound on them.
    entries: usize,
    max_entries: usize,
}

/// Number of distinct values [`Order2::confidence`] returns.
pub const CONFIDENCE_LEVELS: usize = 8;

impl Order2 {
    /// A model of one stream.
    pub fn new(vocab: usize) -> Order2 {
        Order2::with_batch(vocab, 1)
    }

    /// A model of `batch` streams sharing their statistics.
    pub fn with_batch(vocab: usize, batch: usize) -> Order2 {
        assert!((1..=1 << 16).contains(&vocab), "vocabulary of 1..=65536 symbols");
        assert!(batch >= 1);
        Order2 {
            vocab,
            order0: Context::default(),
            order1: HashMap::new(),
            order2: HashMap::new(),
            history: vec![[0; 2]; batch],
            entries: 0,
            max_entries: MAX_ENTRIES,
        }
    }

    /// A model that restarts after `max_entries` contexts and slots instead of
    /// [`MAX_ENTRIES`] (for tests of the bound).
    pub fn with_limit(vocab: usize, batch: usize, max_entries: usize) -> Order2 {
        Order2 { max_entries, ..Order2::with_batch(vocab, batch) }
    }

    /// Contexts plus slots held now (at most the limit).
    pub fn entries(&self) -> usize {
        self.entries
    }

    fn key2(history: [u16; 2]) -> u32 {
        (history[1] as u32) << 16 | history[0] as u32
    }

    /// How much the order-2 context of `stream` has seen, in `0..CONFIDENCE_LEVELS`:
    /// 0 for a new context, then one level per doubling of its count. A mixer uses it
    /// to choose how far to trust this model.
    pub fn confidence(&self, stream: usize) -> usize {
        let total = self.order2.get(&Self::key2(self.history[stream])).map_or(0, |c| c.total);
        ((u32::BITS - total.leading_zeros()) as usize).min(CONFIDENCE_LEVELS - 1)
    }
}

impl Order2 {
    /// Counts `symbol` in `map[key]`; returns whether the context and the slot are new.
    fn count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Context>, key: K, symbol: u16) -> (bool, bool) {
        let mut new_context = false;
        let context = map.entry(key).or_insert_with(|| {
            new_context = true;
            Context::default()
        });
        (new_context, context.add(symbol))
    }
}

impl Predictor for Order2 {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn batch(&self) -> usize {
        self.history.len()
    }

    fn predict(&mut self, probs: &mut [f32]) {
        for (row, history) in probs.chunks_exact_mut(self.vocab).zip(&self.history) {
            row.fill(1.0 / self.vocab as f32);
            self.order0.blend_into(row);
            if let Some(c) = self.order1.get(&history[0]) {
                c.blend_into(row);
            }
            if let Some(c) = self.order2.get(&Self::key2(*history)) {
                c.blend_into(row);
            }
        }
    }

    fn update(&mut self, symbols: &[u16]) {
        for (history, &s) in self.history.iter_mut().zip(symbols) {
            self.order0.add(s);
            for (context, new_slot) in
                [Self::count(&mut self.order1, history[0], s), Self::count(&mut self.order2, Self::key2(*history), s)]
            {
                self.entries += usize::from(context) + usize::from(new_slot);
            }
            *history = [s, history[0]];
        }
        if self.entries > self.max_entries {
            // Checked once per step, so the bound is exceeded by at most 2 B entries.
            self.order1 = HashMap::new();
            self.order2 = HashMap::new();
            self.entries = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_bits(model: &mut Order2, data: &[u16]) -> f64 {
        let mut probs = vec![0.0; model.vocab_size()];
        let mut bits = 0.0;
        for &s in data {
            model.predict(&mut probs);
            bits -= (probs[s as usize] as f64).log2();
            model.update(&[s]);
        }
        bits
    }

    #[test]
    fn probabilities_sum_to_one() {
        let mut m = Order2::new(300);
        let mut probs = vec![0.0; 300];
        for i in 0..1000u32 {
            m.predict(&mut probs);
            let s: f64 = probs.iter().map(|&p| p as f64).sum();
            assert!((s - 1.0).abs() < 1e-4, "sum {s}");
            m.update(&[(i * i % 299) as u16]);
        }
    }

    #[test]
    fn learns_a_repeating_pattern() {
        let data: Vec<u16> = (0..3000).map(|i| [5u16, 9, 200, 9][i % 4]).collect();
        let bits = cost_bits(&mut Order2::new(256), &data);
        // A pattern fully determined by the last two symbols costs almost nothing.
        assert!(bits / (data.len() as f64) < 0.05, "{} bits/symbol", bits / data.len() as f64);
    }

    #[test]
    fn streams_share_statistics_but_not_history() {
        let mut m = Order2::with_batch(16, 2);
        let mut probs = vec![0.0; 32];
        for _ in 0..50 {
            m.update(&[3, 7]);
        }
        m.predict(&mut probs);
        assert!(probs[3] > 0.9 && probs[16 + 7] > 0.9, "each stream follows its own history");
        assert_eq!(m.confidence(0), m.confidence(1));
        assert!(m.confidence(0) >= 5);
        assert_eq!(Order2::new(16).confidence(0), 0);
    }

    /// Random symbols create contexts without end: the model must restart rather than
    /// grow, and keep predicting properly after the restart.
    #[test]
    fn memory_is_bounded() {
        let limit = 5000;
        let mut m = Order2::with_limit(1000, 3, limit);
        let mut probs = vec![0.0; 3000];
        let mut x = 1u32;
        let mut peak = 0;
        for _ in 0..20_000 {
            let step: Vec<u16> = (0..3)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 16) as u16 % 1000
                })
                .collect();
            m.update(&step);
            peak = peak.max(m.entries());
            assert!(m.order1.len() + m.order2.len() <= m.entries());
        }
        assert!(peak <= limit && peak > limit - 10, "peak {peak}");
        m.predict(&mut probs);
        let s: f64 = probs[..1000].iter().map(|&p| p as f64).sum();
        assert!((s - 1.0).abs() < 1e-4, "sum {s}");
        // Under the default bound, a short input never restarts: nothing changes for it.
        let mut m = Order2::new(256);
        for i in 0..10_000u32 {
            m.update(&[(i % 251) as u16]);
        }
        assert!(m.entries() > 0 && m.entries() < MAX_ENTRIES);
    }

    #[test]
    fn replay_is_bit_identical() {
        let data: Vec<u16> = (0..2000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u16).collect();
        let (mut a, mut b) = (Order2::new(256), Order2::new(256));
        let (mut pa, mut pb) = (vec![0.0; 256], vec![0.0; 256]);
        for &s in &data {
            a.predict(&mut pa);
            b.predict(&mut pb);
            assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
            a.update(&[s]);
            b.update(&[s]);
        }
    }
}
