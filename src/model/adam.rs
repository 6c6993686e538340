//! Adam optimizer over one flat parameter vector, deterministic to the bit.
//!
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, `w ← w − lr_t · m / (√v + ε)` with the
//! usual bias correction folded into the step size, `lr_t = lr · √(1−β2^t) / (1−β1^t)`.
//! The powers `β^t` are running products (one f32 multiply per step), never `powf`,
//! and every operation is an IEEE add/mul/div/sqrt, so the update is the same on every
//! machine. NNCP uses `β1 = 0`: then `m` is just `g`, and is not stored.
//!
//! Bias correction matters with NNCP's `β2 = 0.9999`: without it the first steps divide
//! by `√v ≈ 0.01·|g|` and move each weight by about `100·lr`.
//!
//! ```
//! use nnz::model::adam::Adam;
//! let mut w = vec![1.0f32, -1.0];
//! let mut opt = Adam::new(w.len(), 0.0, 0.9999, 1e-8, 0.0);
//! opt.step(&mut w, &[0.5, -2.0], 0.01);
//! // The first bias-corrected step moves each weight by lr against its gradient's sign.
//! assert!((w[0] - 0.99).abs() < 1e-6 && (w[1] + 0.99).abs() < 1e-6);
//! ```

use std::ops::Range;

/// The learning-rate schedule shared by the networks: `lr0 / (1 + n / decay)` after `n`
/// gradient steps, never below `min`; constant when `decay ≤ 0`.
pub fn decayed_lr(lr0: f32, n: u64, decay: f32, min: f32) -> f32 {
    if decay <= 0.0 {
        return lr0;
    }
    // n as f32 is exact up to 2^24 steps and deterministic (round-to-nearest) beyond.
    let lr = lr0 / (1.0 + n as f32 / decay);
    if lr < min {
        min
    } else {
        lr
    }
}

/// Adam state for `n` parameters.
pub struct Adam {
    /// First moments; empty when `beta1 == 0`.
    m: Vec<f32>,
    /// Second moments.
    v: Vec<f32>,
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// Each gradient element is clamped to `[-clip, clip]` first; 0 disables clipping.
    clip: f32,
    /// `beta1^t` and `beta2^t`, as running products.
    beta1_pow: f32,
    beta2_pow: f32,
    /// Number of steps taken.
    steps: u64,
}

impl Adam {
    pub fn new(n: usize, beta1: f32, beta2: f32, eps: f32, clip: f32) -> Adam {
        Adam {
            m: if beta1 == 0.0 { Vec::new() } else { vec![0.0; n] },
            v: vec![0.0; n],
            beta1,
            beta2,
            eps,
            clip,
            beta1_pow: 1.0,
            beta2_pow: 1.0,
            steps: 0,
        }
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Counts a step and returns its bias-corrected step size `lr_t` — the scalar part
    /// of [`Adam::step`], for a model whose element-wise update runs elsewhere (a GPU).
    pub fn next_step_size(&mut self, lr: f32) -> f32 {
        self.steps += 1;
        self.beta1_pow *= self.beta1;
        self.beta2_pow *= self.beta2;
        lr * (1.0 - self.beta2_pow).sqrt() / (1.0 - self.beta1_pow)
    }

    /// One update of `params` with gradient `grads` and base learning rate `lr`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        let all = 0..params.len();
        self.step_groups(params, grads, lr, &[(all, 1.0)]);
    }

    /// One update in which each range of parameters moves at its own multiple of the
    /// step size (the ranges need not cover everything: the others do not move, and
    /// their moments are not updated). With one range of multiple 1 it is [`Adam::step`]:
    /// `lr_t · 1` is `lr_t` exactly, so the bits are the same.
    pub fn step_groups(&mut self, params: &mut [f32], grads: &[f32], lr: f32, groups: &[(Range<usize>, f32)]) {
        assert_eq!(params.len(), self.v.len());
        assert_eq!(grads.len(), self.v.len());
        let lr_t = self.next_step_size(lr);
        let (b1, b2, eps, clip) = (self.beta1, self.beta2, self.eps, self.clip);
        let (c1, c2) = (1.0 - b1, 1.0 - b2);
        let clamp = |g: f32| if clip > 0.0 { g.clamp(-clip, clip) } else { g };
        for (range, mult) in groups {
            let lr_g = lr_t * mult;
            let (w, v, g) = (&mut params[range.clone()], &mut self.v[range.clone()], &grads[range.clone()]);
            if self.m.is_empty() {
                for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(g) {
                    let g = clamp(g);
                    *v = b2 * *v + c2 * g * g;
                    *w -= lr_g * g / (v.sqrt() + eps);
                }
            } else {
                let m = &mut self.m[range.clone()];
                for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                    let g = clamp(g);
                    *m = b1 * *m + c1 * g;
                    *v = b2 * *v + c2 * g * g;
                    *w -= lr_g * *m / (v.sqrt() + eps);
                }
            }
        }
    }
}
