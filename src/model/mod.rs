//! Predictors: models that give a probability to every possible next symbol.
//!
//! The engine drives a [`Predictor`] one time step at a time. At each step the model
//! predicts the next symbol of each of its `B` streams (the input cut into `B`
//! contiguous pieces that are coded in lock step), the engine codes the actual symbols,
//! then hands them back with [`Predictor::update`], where the model learns from them.
//! Everything a model does must be a pure function of its configuration and the symbols
//! it has been given, so that the decoder, replaying the same calls, gets the same bits.

pub mod adam;
pub mod bytectx;
#[cfg(test)]
pub(crate) mod candle_check;
pub mod huge;
pub mod init;
pub mod lstm;
pub mod mix;
pub mod ngram;
pub mod order2;
pub mod primer;
#[cfg(test)]
pub(crate) mod testing;
pub mod transformer;

/// A model of the next symbol, trained online on the symbols it is shown.
pub trait Predictor {
    /// Size of the alphabet, `V`: symbols are `0..V`.
    fn vocab_size(&self) -> usize;

    /// Number of streams coded in lock step, `B`.
    fn batch(&self) -> usize;

    /// Writes the probability of each next symbol for every stream into `probs`,
    /// a `B × V` row-major buffer. Each row must sum to about 1; the coder's
    /// quantizer keeps every symbol codable whatever the values.
    fn predict(&mut self, probs: &mut [f32]);

    /// Gives the model the symbols coded at this step, one per stream (`B` of them).
    /// Streams that have already ended get the padding symbol 0. Training happens here.
    fn update(&mut self, symbols: &[u16]);

    /// The first error the model met, if any. Models that cannot fail (every CPU
    /// model) keep the default; a GPU model reports a device error here, since
    /// `predict` and `update` cannot return one. The engine asks regularly and at the
    /// end of every frame.
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Where the model's time went, for `nnz compress --stats`: (part, seconds) pairs
    /// such as forward, backward, optimizer. Empty when the model keeps no breakdown.
    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The model's binary coding path, if it has one: byte models that predict a byte
    /// bit by bit down the path of its 8 nodes, as paq does, instead of giving all 256
    /// probabilities. The engine then codes each stream's byte as 8 binary decisions
    /// ([`crate::coder::Encoder::encode_bit`]); `predict` stays the slow reference of
    /// the same probabilities.
    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        None
    }
}

/// A model of bytes coded bit by bit (see [`Predictor::bits`]). One time step is:
/// [`BitPredictor::begin_step`]; for each stream still coding, in stream order, 8 times
/// [`BitPredictor::p1`] then [`BitPredictor::update_bit`] with the bit coded (most
/// significant first); then [`BitPredictor::end_step`] with every stream's byte (0 for
/// the streams that have ended, which were not asked). The decoder makes the same calls.
pub trait BitPredictor {
    /// A new time step begins (a network predicts its streams' next bytes here).
    fn begin_step(&mut self) {}

    /// The probability that the next bit of stream `stream`'s byte is 1.
    fn p1(&mut self, stream: usize) -> f32;

    /// The bit that was coded where [`BitPredictor::p1`] was last asked for this stream.
    fn update_bit(&mut self, stream: usize, bit: u32);

    /// The step's bytes, one per stream (0 for ended streams); learning happens here.
    fn end_step(&mut self, symbols: &[u16]);
}

/// The ideal code length, in bits, of the symbols of one step (`symbols[0..n]`, one per
/// stream; the rest are padding) under `model`, which then learns them: what the
/// engine's coder spends, without a coder, by whichever path the engine takes (the
/// binary path of [`Predictor::bits`] or the distribution). `probs` is scratch space.
pub fn step_cost(model: &mut dyn Predictor, symbols: &[u16], n: usize, probs: &mut Vec<f32>) -> f64 {
    let mut bits = 0.0f64;
    if let Some(bp) = model.bits() {
        bp.begin_step();
        for (s, &c) in symbols[..n].iter().enumerate() {
            for d in (0..8).rev() {
                let bit = (c >> d) as u32 & 1;
                let p = bp.p1(s) as f64;
                bits -= if bit == 1 { p } else { 1.0 - p }.log2();
                bp.update_bit(s, bit);
            }
        }
        bp.end_step(symbols);
        return bits;
    }
    let v = model.vocab_size();
    probs.resize(model.batch() * v, 0.0);
    model.predict(probs);
    for (s, &c) in symbols[..n].iter().enumerate() {
        bits -= (probs[s * v + c as usize] as f64).log2();
    }
    model.update(symbols);
    bits
}
