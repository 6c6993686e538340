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
//! It serves as the predictor until the neural models are used, and as the cheap model
//! for tiny inputs. Batch size is 1.

use super::Predictor;
use std::collections::HashMap;

/// A context's total count is halved when it passes this.
const MAX_TOTAL: u32 = 1 << 16;

/// Counts of the symbols seen in one context, sparse (most contexts see few symbols).
#[derive(Default)]
struct Context {
    /// (symbol, count), in order of first appearance.
    counts: Vec<(u16, u32)>,
    total: u32,
}

impl Context {
    fn add(&mut self, symbol: u16) {
        match self.counts.iter_mut().find(|(s, _)| *s == symbol) {
            Some((_, c)) => *c += 1,
            None => self.counts.push((symbol, 1)),
        }
        self.total += 1;
        if self.total > MAX_TOTAL {
            self.total = 0;
            for (_, c) in self.counts.iter_mut() {
                *c = (*c + 1) / 2;
                self.total += *c;
            }
        }
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
    /// The last two symbols, most recent first (0 before the start).
    history: [u16; 2],
}

impl Order2 {
    pub fn new(vocab: usize) -> Order2 {
        assert!((1..=1 << 16).contains(&vocab), "vocabulary of 1..=65536 symbols");
        Order2 { vocab, order0: Context::default(), order1: HashMap::new(), order2: HashMap::new(), history: [0; 2] }
    }

    fn key2(&self) -> u32 {
        (self.history[1] as u32) << 16 | self.history[0] as u32
    }
}

impl Predictor for Order2 {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn batch(&self) -> usize {
        1
    }

    fn predict(&mut self, probs: &mut [f32]) {
        let probs = &mut probs[..self.vocab];
        probs.fill(1.0 / self.vocab as f32);
        self.order0.blend_into(probs);
        if let Some(c) = self.order1.get(&self.history[0]) {
            c.blend_into(probs);
        }
        if let Some(c) = self.order2.get(&self.key2()) {
            c.blend_into(probs);
        }
    }

    fn update(&mut self, symbols: &[u16]) {
        let s = symbols[0];
        self.order0.add(s);
        self.order1.entry(self.history[0]).or_default().add(s);
        let k2 = self.key2();
        self.order2.entry(k2).or_default().add(s);
        self.history = [s, self.history[0]];
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
