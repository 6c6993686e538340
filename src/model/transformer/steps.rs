//! The symbol side of the Transformer's online training, shared by the CPU model and
//! the GPU model: each segment row's input group and target, the streams' next input
//! groups, the ring of recent steps that a retraining pass revisits, and the schedule
//! (when a segment trains and at which rate, when a retraining pass runs). All of it is
//! a pure function of the configuration and the coded symbols, so the decoder replays
//! it; keeping it in one place keeps the two models' schedules one.

use super::TransformerConfig;

pub(super) struct Steps {
    /// Input group (`k` symbols, newest first) and target of each row of the segment.
    pub inputs: Vec<u16>,
    pub targets: Vec<u16>,
    /// Each stream's next input group, `B × k`, newest first.
    pub hist: Vec<u16>,
    /// Steps done in the current segment.
    pub t: usize,
    /// Coding steps done in total.
    pub steps: u64,
    /// Gradient steps of the retraining passes.
    pub retrain_steps: u64,
    /// The last `retrain_len` steps of every stream: `retrain_len × B × (k + 1)` symbols
    /// (the input group, then the target), slot `step % retrain_len`.
    ring: Vec<u16>,
}

/// What the end of a segment asks of the model: a gradient step at `lr` over the
/// segment, then, if `retrain`, a retraining pass.
pub(super) struct SegmentEnd {
    pub lr: f32,
    pub retrain: bool,
}

impl Steps {
    pub fn new(cfg: &TransformerConfig) -> Steps {
        let (b, k) = (cfg.batch, cfg.group);
        let r = cfg.seg_len * b;
        Steps {
            inputs: vec![0; r * k],
            targets: vec![0; r],
            hist: vec![0; b * k],
            t: 0,
            steps: 0,
            retrain_steps: 0,
            ring: vec![0; cfg.retrain_len * b * (k + 1)],
        }
    }

    /// The rows of step `t` in `inputs`: `B × k` symbols from `t·B·k`.
    pub fn step_rows(&self, cfg: &TransformerConfig) -> std::ops::Range<usize> {
        let n = cfg.batch * cfg.group;
        self.t * n..(self.t + 1) * n
    }

    /// Puts the streams' next input groups in the rows of step `t`, before its forward pass.
    pub fn begin_step(&mut self, cfg: &TransformerConfig) {
        let rows = self.step_rows(cfg);
        self.inputs[rows].copy_from_slice(&self.hist);
    }

    /// Records the symbols coded at step `t` (one per stream; symbols outside the
    /// `v`-symbol alphabet, a caller bug, are read as the padding symbol 0, identically
    /// in encoder and decoder) and moves on; at the end of a segment, says what to train.
    pub fn record(&mut self, cfg: &TransformerConfig, v: usize, symbols: &[u16]) -> Option<SegmentEnd> {
        let (b, k) = (cfg.batch, cfg.group);
        let len = cfg.retrain_len;
        let slot = if len > 0 { (self.steps % len as u64) as usize } else { 0 };
        for s in 0..b {
            let x = symbols.get(s).copied().filter(|&x| (x as usize) < v).unwrap_or(0);
            let row = self.t * b + s;
            self.targets[row] = x;
            if len > 0 {
                let dst = (slot * b + s) * (k + 1);
                self.ring[dst..dst + k].copy_from_slice(&self.inputs[row * k..(row + 1) * k]);
                self.ring[dst + k] = x;
            }
            let hist = &mut self.hist[s * k..(s + 1) * k];
            hist.copy_within(..k - 1, 1);
            hist[0] = x;
        }
        self.t += 1;
        self.steps += 1;
        if self.t < cfg.seg_len {
            return None;
        }
        self.t = 0;
        let lr = cfg.lr_at(cfg.lr, self.steps / cfg.seg_len as u64 - 1);
        let every = cfg.retrain_every as u64;
        let retrain = every > 0 && self.steps.is_multiple_of(every) && self.steps >= len as u64;
        Some(SegmentEnd { lr, retrain })
    }

    /// Number of segments in a retraining pass.
    pub fn retrain_segments(&self, cfg: &TransformerConfig) -> usize {
        cfg.retrain_len / cfg.seg_len
    }

    /// Fills the segment's rows with segment `seg` of a retraining pass over the last
    /// `retrain_len` steps, and returns its learning rate (counting the gradient step).
    pub fn load_retrain_segment(&mut self, cfg: &TransformerConfig, seg: usize) -> f32 {
        let (b, k, t_len, len) = (cfg.batch, cfg.group, cfg.seg_len, cfg.retrain_len);
        let first = self.steps - len as u64;
        for t in 0..t_len {
            let slot = ((first + (seg * t_len + t) as u64) % len as u64) as usize;
            for s in 0..b {
                let src = &self.ring[(slot * b + s) * (k + 1)..(slot * b + s + 1) * (k + 1)];
                let row = t * b + s;
                self.inputs[row * k..(row + 1) * k].copy_from_slice(&src[..k]);
                self.targets[row] = src[k];
            }
        }
        let lr = cfg.lr_at(cfg.retrain_lr, self.retrain_steps);
        self.retrain_steps += 1;
        lr
    }
}
