//! [`ByteMix`]: the byte model with a neural model over bytes as one more mixer input.

use super::*;

/// A neural model over bytes mixed into the byte context model: the network's
/// distribution is one input of the context mixer (see [`ByteCtx::predict_with`]).
///
/// The network is any 256-symbol [`Predictor`] with the same number of streams: today the
/// LSTM over bytes; the seam where a Transformer "bytes" preset plugs in.
pub struct ByteMix {
    nn: Box<dyn Predictor>,
    ctx: ByteCtx,
    nn_probs: Vec<f32>,
    ctx_secs: f64,
    /// When the bit path's step began (after the network's prediction).
    step_start: Option<std::time::Instant>,
}

impl ByteMix {
    pub fn new(nn: Box<dyn Predictor>, cfg: &ByteCtxConfig) -> Result<ByteMix> {
        ensure!(nn.vocab_size() == 256, "the byte mixer needs a 256-symbol network, got {}", nn.vocab_size());
        let batch = nn.batch();
        Ok(ByteMix {
            ctx: ByteCtx::new(cfg, batch),
            nn,
            nn_probs: vec![0.0; batch * 256],
            ctx_secs: 0.0,
            step_start: None,
        })
    }
}

impl Predictor for ByteMix {
    fn vocab_size(&self) -> usize {
        256
    }

    fn batch(&self) -> usize {
        self.ctx.batch()
    }

    fn predict(&mut self, probs: &mut [f32]) {
        self.nn.predict(&mut self.nn_probs);
        let start = std::time::Instant::now();
        self.ctx.predict_with(Some(&self.nn_probs), probs);
        self.ctx_secs += start.elapsed().as_secs_f64();
    }

    fn update(&mut self, symbols: &[u16]) {
        let start = std::time::Instant::now();
        self.ctx.update(symbols);
        self.ctx_secs += start.elapsed().as_secs_f64();
        self.nn.update(symbols);
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        let mut parts = self.nn.time_breakdown();
        parts.push(("byte contexts+mix", self.ctx_secs));
        parts
    }

    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        if self.ctx.cfg.bits {
            Some(self)
        } else {
            None
        }
    }
}

/// The network predicts the step's bytes at its start and learns them at its end; the
/// context model codes the bits in between with the network's distribution as an input.
impl BitPredictor for ByteMix {
    fn begin_step(&mut self) {
        self.nn.predict(&mut self.nn_probs);
        std::mem::swap(&mut self.ctx.nn, &mut self.nn_probs);
        self.step_start = Some(std::time::Instant::now());
    }

    fn p1(&mut self, stream: usize) -> f32 {
        self.ctx.p1(stream)
    }

    fn update_bit(&mut self, stream: usize, bit: u32) {
        self.ctx.update_bit(stream, bit);
    }

    fn end_step(&mut self, symbols: &[u16]) {
        self.ctx.end_step(symbols);
        if let Some(start) = self.step_start.take() {
            self.ctx_secs += start.elapsed().as_secs_f64();
        }
        std::mem::swap(&mut self.ctx.nn, &mut self.nn_probs);
        self.nn.update(symbols);
    }
}
