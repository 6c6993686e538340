//! Mixing a slow-learning neural model with a fast-adapting context model.
//!
//! A network that starts from random weights needs hundreds of kilobytes before it
//! predicts well, while a counting model is useful after a few hundred symbols. The
//! mixture gives each stream's next symbol the probability
//!
//! ```text
//! p(s) = w · p_nn(s) + (1 − w) · p_ctx(s),     w = sigmoid(θ[level])
//! ```
//!
//! where `level` says which order of the n-gram model predicts and how often its context
//! met new symbols ([`Ngram::level`]), so the mixture learns separately how far to trust
//! the counts in new, in varied and in familiar contexts. After each symbol, θ[level]
//! takes a gradient step on the code length `−ln p(s)`. Everything is plain IEEE f32
//! arithmetic and our own sigmoid: the decoder replays it bit for bit.
//!
//! # Measured
//!
//! Ideal code length with the dictionary, bits per byte, alice29.txt / book1, with the
//! `fast` LSTM of the time (embedding 32, β2 0.99), replayed offline from
//! `examples/mix_dump.rs` dumps: the Witten–Bell order-2 model mixed by its count alone
//! 2.1735 / 2.2950; the Kneser–Ney order-3 model with these levels 2.1456 / 2.2726.
//! Tried on top and not kept (gains on book1 in bits per byte, same presets): a token
//! match model (paq's MatchModel, predicted symbol mixed in as a point mass with a weight
//! per match length: −0.005 on alice29, −0.0006 on book1), an APM on the probability of
//! the mixture's top symbol (−0.0007), weights as a sum of several context-selected
//! logits (−0.003), a softmax mix of the LSTM with each n-gram order (worse), the
//! Witten–Bell model as a third component (−0.0002), modified Kneser–Ney discounts
//! (better alone, worse mixed).

use super::ngram::{Ngram, LEVELS};
use super::Predictor;
use crate::kernels::scalar::sigmoid1;
use std::time::Instant;

/// θ stays within ±THETA_MAX (w within about [0.0003, 0.9997]).
const THETA_MAX: f32 = 8.0;

/// A neural predictor mixed with an n-gram context model over the same streams.
pub struct Mix {
    nn: Box<dyn Predictor>,
    ctx: Ngram,
    vocab: usize,
    nn_probs: Vec<f32>,
    ctx_probs: Vec<f32>,
    /// Mixing weight logits, one per level of the context model.
    theta: [f32; LEVELS],
    /// The level each stream used at the last prediction.
    level: Vec<usize>,
    /// Learning rate of θ.
    lr: f32,
    /// Seconds spent in the context model and the mixing.
    own_secs: f64,
}

impl Mix {
    /// Mixes `nn` with an n-gram model of the same alphabet and streams; `lr` is the
    /// learning rate of the mixing weights.
    pub fn new(nn: Box<dyn Predictor>, lr: f32) -> Mix {
        let (vocab, batch) = (nn.vocab_size(), nn.batch());
        Mix {
            ctx: Ngram::new(vocab, batch),
            nn,
            vocab,
            nn_probs: vec![0.0; vocab * batch],
            ctx_probs: vec![0.0; vocab * batch],
            theta: [0.0; LEVELS],
            level: vec![0; batch],
            lr,
            own_secs: 0.0,
        }
    }
}

impl Predictor for Mix {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn batch(&self) -> usize {
        self.level.len()
    }

    fn predict(&mut self, probs: &mut [f32]) {
        self.nn.predict(&mut self.nn_probs);
        let start = Instant::now();
        self.ctx.predict(&mut self.ctx_probs);
        let v = self.vocab;
        for (b, level) in self.level.iter_mut().enumerate() {
            *level = self.ctx.level(b);
            let w = sigmoid1(self.theta[*level]);
            let rows = b * v..(b + 1) * v;
            for ((p, &a), &c) in
                probs[rows.clone()].iter_mut().zip(&self.nn_probs[rows.clone()]).zip(&self.ctx_probs[rows])
            {
                *p = w * (a - c) + c;
            }
        }
        self.own_secs += start.elapsed().as_secs_f64();
    }

    fn update(&mut self, symbols: &[u16]) {
        let start = Instant::now();
        let v = self.vocab;
        for (b, &s) in symbols.iter().enumerate() {
            let (a, c) = (self.nn_probs[b * v + s as usize], self.ctx_probs[b * v + s as usize]);
            let theta = &mut self.theta[self.level[b]];
            let w = sigmoid1(*theta);
            let p = w * (a - c) + c;
            // d(−ln p)/dθ = −(a − c)·w·(1 − w) / p; p > 0 since both models give every symbol mass.
            let step = self.lr * (a - c) * w * (1.0 - w) / p.max(1e-30);
            *theta = (*theta + step).clamp(-THETA_MAX, THETA_MAX);
        }
        self.ctx.update(symbols);
        self.own_secs += start.elapsed().as_secs_f64();
        self.nn.update(symbols);
    }

    fn check(&self) -> anyhow::Result<()> {
        self.nn.check()?;
        self.ctx.check()
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        let mut parts = self.nn.time_breakdown();
        parts.push(("context+mix", self.own_secs));
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that always predicts the uniform distribution and never learns.
    struct Uniform(usize, usize);
    impl Predictor for Uniform {
        fn vocab_size(&self) -> usize {
            self.0
        }
        fn batch(&self) -> usize {
            self.1
        }
        fn predict(&mut self, probs: &mut [f32]) {
            probs.fill(1.0 / self.0 as f32);
        }
        fn update(&mut self, _: &[u16]) {}
    }

    #[test]
    fn learns_to_trust_the_better_model() {
        let mut mix = Mix::new(Box::new(Uniform(64, 2)), 0.05);
        let mut probs = vec![0.0; 128];
        let mut bits = 0.0;
        let data: Vec<u16> = (0..4000).map(|i| [1u16, 5, 9, 5][i % 4]).collect();
        for pair in data.chunks(2) {
            mix.predict(&mut probs);
            let s: f32 = probs[..64].iter().sum();
            assert!((s - 1.0).abs() < 1e-4);
            bits -= (probs[pair[0] as usize] as f64).log2() + (probs[64 + pair[1] as usize] as f64).log2();
            mix.update(pair);
        }
        // The context model predicts this pattern; the uniform model costs 6 bits.
        assert!(bits / (data.len() as f64) < 0.5, "{} bits/symbol", bits / data.len() as f64);
        assert!(mix.theta.iter().any(|&t| t < -2.0), "{:?}", mix.theta);
    }
}
