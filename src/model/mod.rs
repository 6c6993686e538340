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
pub mod init;
pub mod lstm;
pub mod mix;
pub mod ngram;
pub mod order2;
pub mod primer;
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
}
