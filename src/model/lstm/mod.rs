//! The LSTM predictor of NNCP v1 ("Lossless Data Compression with Neural Networks",
//! Bellard 2019), trained online, with its forward and backward passes written on top of
//! the deterministic [`crate::kernels`].
//!
//! # Model
//!
//! ```text
//!   x_t = symbol coded at t-1 (0 before the first)      e = E[x_t]            (D)
//!   layer l:   u = [e ; h(l-1)_t (l>0) ; h(l)_{t-1}]                           (I_l)
//!              z = u · W_l                                   gates f | o | g   (3H)
//!              a_k = LN(z_k) ⊙ gain_k + bias_k   for each gate k (layer norm over H)
//!              f = σ(a_f)  o = σ(a_o)  g = tanh(a_g)
//!              c_t = f ⊙ c_{t-1} + (1 − f) ⊙ g       (coupled input/forget gates)
//!              h_t = o ⊙ tanh(c_t)
//!   output:    P(next) = softmax([h(0)_t ; … ; h(L-1)_t] · W_out + b_out)           (V)
//! ```
//!
//! Shapes per step are batch-major: every activation is `B × width`, row-major.
//!
//! # Online training
//!
//! [`Predictor::predict`] runs one forward step for all `B` streams and stores every
//! activation it computes in slot `t` of a segment buffer. [`Predictor::update`] records
//! the coded symbols; after `seg_len` steps, the backward pass runs over the stored
//! activations (the weights have not changed within the segment, so the coding pass *is*
//! the training pass's forward: nothing is recomputed), then one Adam step. The
//! recurrent state carries over to the next segment (truncated BPTT). The loss is the
//! mean cross-entropy over the segment's `seg_len × B` predictions.
//!
//! All buffers are allocated in [`Lstm::new`]; the hot loop allocates nothing.
//!
//! # Where the time goes
//!
//! Per symbol the forward pass costs `Σ_l I_l·3H + L·H·V` multiply-adds and the backward
//! pass about twice that. The output layer is batched over the whole segment in the
//! backward pass (`T·B` rows); the recurrent part cannot be (step `t` needs step `t+1`'s
//! gradient), so each step's `du = dz · W_lᵀ` is a small `B`-row product, against a
//! transposed copy of `W_l` refreshed after each Adam step. With a large vocabulary the
//! output layer dominates; [`LstmConfig::out_grad_min`] restricts its backward pass to
//! the symbols that were likely or occurred in the segment. `examples/lstm_bench.rs`
//! prints the breakdown ([`LstmTimings`]) and its docs hold measured numbers.
//!
//! # Determinism
//!
//! Every number goes through [`crate::kernels`] (fixed-order matrix products and
//! reductions, our own `exp`) or single IEEE operations, in one fixed order that does
//! not depend on anything but the configuration and the symbols. The weights come from
//! [`crate::model::init::Init`] seeded with `cfg.seed`.
//!
//! ```
//! use nnz::model::{lstm::{Lstm, LstmConfig}, Predictor};
//! let cfg = LstmConfig::preset("tiny").unwrap();
//! let mut m = Lstm::new(&cfg, 16).unwrap();
//! let mut p = vec![0.0f32; m.batch() * m.vocab_size()];
//! m.predict(&mut p);
//! let row_sum: f32 = p[..16].iter().sum();
//! assert!((row_sum - 1.0).abs() < 1e-5);
//! m.update(&[1, 2, 3, 4]);
//! ```

mod config;

pub use config::{LstmConfig, TOKEN_EMBED, TOKEN_EMBED_FAST};

use crate::kernels;
use crate::model::adam::Adam;
use crate::model::init::Init;
use crate::model::Predictor;
use anyhow::{ensure, Result};
use std::time::{Duration, Instant};

/// Upper bound on the floats one model may allocate (parameters, optimizer state and
/// segment buffers together): 1 Gi floats = 4 GiB. Guards against absurd headers.
const MAX_FLOATS: usize = 1 << 30;

/// Where the time went, accumulated since the model was built.
#[derive(Clone, Debug, Default)]
pub struct LstmTimings {
    /// LSTM layers, forward (gate products, layer norms, cells).
    pub forward_lstm: Duration,
    /// Output layer and softmax, forward.
    pub forward_output: Duration,
    /// Output layer, backward (its weight gradient and the gradient to the hidden states).
    pub backward_output: Duration,
    /// LSTM layers, backward through time, and their weight gradients.
    pub backward_lstm: Duration,
    /// Adam step and refresh of the transposed weights.
    pub optimizer: Duration,
}

/// Offsets of one layer's parameters in the flat parameter vector.
#[derive(Clone, Copy, Debug)]
struct LayerParams {
    /// Input width `I_l = D + H (l = 0) or D + 2H`.
    in_dim: usize,
    /// `W_l`, `I_l × 3H`.
    w: usize,
    /// Layer-norm gains, `3H`.
    gain: usize,
    /// Layer-norm biases, `3H`.
    bias: usize,
}

/// Per-layer activations of one segment (slot `t` of each `T × …` buffer is step `t`).
struct LayerBuf {
    /// Inputs `u`, `T × B × I`.
    u: Vec<f32>,
    /// Layer-normalized gate pre-activations `(z − μ)/σ`, `T × B × 3H`.
    n: Vec<f32>,
    /// `1/σ` of each gate's layer norm, `T × B × 3`.
    rstd: Vec<f32>,
    /// Gate activations `f | o | g`, `T × B × 3H`.
    act: Vec<f32>,
    /// Cell states, `(T+1) × B × H`; slot 0 is the state carried in from the last segment.
    c: Vec<f32>,
    /// `tanh(c_t)`, `T × B × H`.
    tc: Vec<f32>,
    /// Gradient of the loss w.r.t. `z`, `T × B × 3H`.
    dz: Vec<f32>,
    /// Gradient w.r.t. `u` at the step being processed, and at the step after it, `B × I`.
    du_cur: Vec<f32>,
    du_next: Vec<f32>,
    /// Gradient w.r.t. the cell state flowing back from step `t+1`, `B × H`.
    dc: Vec<f32>,
}

/// NNCP v1's LSTM predictor; see the module docs.
pub struct Lstm {
    cfg: LstmConfig,
    /// Vocabulary size `V`.
    v: usize,
    /// All parameters, flat: embedding `V × D`, then each layer's `W`, gain, bias,
    /// then `W_out` (`L·H × V`) and `b_out` (`V`).
    params: Vec<f32>,
    grads: Vec<f32>,
    emb: usize,
    lp: Vec<LayerParams>,
    w_out: usize,
    b_out: usize,
    /// `W_lᵀ` (`3H × I_l`) per layer, refreshed after each Adam step, for `du = dz · W_lᵀ`.
    wt: Vec<Vec<f32>>,
    opt: Adam,
    layers: Vec<LayerBuf>,
    /// Hidden states of all layers, `(T+1) × B × L·H`; slot 0 is carried in.
    hcat: Vec<f32>,
    /// Probabilities of step `t` in slot `t`, `T × B × V`; turned into `dlogits` in place.
    probs: Vec<f32>,
    /// Input and target symbols of each step, `T × B`.
    inputs: Vec<u16>,
    targets: Vec<u16>,
    /// Input of the next step, `B`.
    pending: Vec<u16>,
    /// Steps done in the current segment.
    t: usize,
    /// Whether slot `t`'s forward pass has been run.
    forwarded: bool,
    /// Backward scratch: `dlogitsᵀ` (`V × TB`), `dHcatᵀ` (`LH × TB`), `dHcat` (`TB × LH`).
    dlt: Vec<f32>,
    dhcat_t: Vec<f32>,
    dhcat: Vec<f32>,
    /// Sparse output backward (only allocated when `out_grad_min > 0`): the largest
    /// probability of each symbol in the segment (`V`), the active columns, `dW_out` and
    /// `W_out` restricted to them (`LH × V` at most).
    colmax: Vec<f32>,
    cols: Vec<u32>,
    dw_c: Vec<f32>,
    w_c: Vec<f32>,
    /// Sum over segments of the number of active output columns, for reporting.
    active_cols: u64,
    /// Scratch rows of width `H`.
    s1: Vec<f32>,
    s2: Vec<f32>,
    s3: Vec<f32>,
    timings: LstmTimings,
}

impl Lstm {
    /// Builds the model for `vocab` symbols with weights drawn from `cfg.seed`.
    pub fn new(cfg: &LstmConfig, vocab: usize) -> Result<Lstm> {
        cfg.validate()?;
        ensure!((2..=65536).contains(&vocab), "LSTM vocabulary of {vocab} symbols; expected 2..=65536");
        let (l_n, h, d, b, t_len, v) = (cfg.layers, cfg.hidden, cfg.embed, cfg.batch, cfg.seg_len, vocab);
        let g = 3 * h;
        let lh = l_n * h;
        let tb = t_len * b;

        // Parameter layout.
        let mut n_params = 0;
        let mut take = |n: usize| {
            let off = n_params;
            n_params += n;
            off
        };
        let emb = take(v * d);
        let mut lp = Vec::with_capacity(l_n);
        for l in 0..l_n {
            let in_dim = d + if l > 0 { 2 * h } else { h };
            let w = take(in_dim * g);
            let gain = take(g);
            let bias = take(g);
            lp.push(LayerParams { in_dim, w, gain, bias });
        }
        let w_out = take(lh * v);
        let b_out = take(v);

        // Refuse absurd sizes before allocating anything big.
        let per_layer: usize = lp
            .iter()
            .map(|p| tb * (p.in_dim + 3 * g + 3 + h) + (t_len + 1) * b * h + 2 * b * p.in_dim + p.in_dim * g)
            .sum();
        let sparse = cfg.out_grad_min > 0.0;
        let floats = 4 * n_params
            + per_layer
            + (t_len + 1) * b * lh
            + 2 * tb * v
            + 2 * tb * lh
            + if sparse { 2 * lh * v + v } else { 0 };
        ensure!(
            floats <= MAX_FLOATS,
            "LSTM of {l_n} layers × {h} cells, vocabulary {v}, batch {b}, seg_len {t_len} needs \
             {floats} floats of memory, more than the limit of {MAX_FLOATS}"
        );

        // Seeded initialization, in a fixed order: embedding, layers, output.
        let mut params = vec![0.0f32; n_params];
        let mut init = Init::new(cfg.seed);
        init.uniform(&mut params[emb..emb + v * d], 1.0);
        for p in &lp {
            // Uniform with variance 1/I: the layer norm makes the scale matter only
            // relative to Adam's step size.
            let scale = (3.0 / p.in_dim as f32).sqrt();
            init.uniform(&mut params[p.w..p.w + p.in_dim * g], scale);
            params[p.gain..p.gain + g].fill(1.0);
            params[p.bias..p.bias + h].fill(cfg.forget_bias);
        }
        let scale = (3.0 / lh as f32).sqrt();
        init.uniform(&mut params[w_out..w_out + lh * v], scale);

        let layers = lp
            .iter()
            .map(|p| LayerBuf {
                u: vec![0.0; tb * p.in_dim],
                n: vec![0.0; tb * g],
                rstd: vec![0.0; tb * 3],
                act: vec![0.0; tb * g],
                c: vec![0.0; (t_len + 1) * b * h],
                tc: vec![0.0; tb * h],
                dz: vec![0.0; tb * g],
                du_cur: vec![0.0; b * p.in_dim],
                du_next: vec![0.0; b * p.in_dim],
                dc: vec![0.0; b * h],
            })
            .collect();
        let wt = lp.iter().map(|p| vec![0.0; g * p.in_dim]).collect();

        let mut m = Lstm {
            cfg: cfg.clone(),
            v,
            grads: vec![0.0; n_params],
            opt: Adam::new(n_params, cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.grad_clip),
            params,
            emb,
            lp,
            w_out,
            b_out,
            wt,
            layers,
            hcat: vec![0.0; (t_len + 1) * b * lh],
            probs: vec![0.0; tb * v],
            inputs: vec![0; tb],
            targets: vec![0; tb],
            pending: vec![0; b],
            t: 0,
            forwarded: false,
            dlt: vec![0.0; v * tb],
            dhcat_t: vec![0.0; lh * tb],
            dhcat: vec![0.0; tb * lh],
            colmax: if sparse { vec![0.0; v] } else { Vec::new() },
            cols: Vec::with_capacity(if sparse { v } else { 0 }),
            dw_c: if sparse { vec![0.0; lh * v] } else { Vec::new() },
            w_c: if sparse { vec![0.0; lh * v] } else { Vec::new() },
            active_cols: 0,
            s1: vec![0.0; h],
            s2: vec![0.0; h],
            s3: vec![0.0; h],
            timings: LstmTimings::default(),
        };
        m.refresh_transposes();
        Ok(m)
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &LstmConfig {
        &self.cfg
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Average number of output columns the sparse output backward kept per gradient
    /// step (0 when `out_grad_min` is 0).
    pub fn mean_active_columns(&self) -> f64 {
        let steps = self.opt.steps();
        if steps == 0 {
            0.0
        } else {
            self.active_cols as f64 / steps as f64
        }
    }

    /// Cumulative time spent in each phase.
    pub fn timings(&self) -> &LstmTimings {
        &self.timings
    }

    /// Multiply-adds of one forward step for the whole batch (the backward pass costs
    /// about twice as much); for reporting FLOP/s.
    pub fn forward_macs_per_step(&self) -> usize {
        let g = 3 * self.cfg.hidden;
        let lstm: usize = self.lp.iter().map(|p| p.in_dim * g).sum();
        self.cfg.batch * (lstm + self.cfg.layers * self.cfg.hidden * self.v)
    }

    /// `W_lᵀ` for the backward pass; called whenever the weights change.
    fn refresh_transposes(&mut self) {
        let g = 3 * self.cfg.hidden;
        for (p, wt) in self.lp.iter().zip(self.wt.iter_mut()) {
            kernels::transpose(wt, &self.params[p.w..p.w + p.in_dim * g], p.in_dim, g);
        }
    }

    /// Forward pass of step `self.t` on input `self.pending`; fills every slot-`t` buffer.
    fn forward_step(&mut self) {
        let start = Instant::now();
        let (l_n, h, d, b, v) = (self.cfg.layers, self.cfg.hidden, self.cfg.embed, self.cfg.batch, self.v);
        let (g, lh, t) = (3 * h, l_n * h, self.t);
        let ln_eps = self.cfg.ln_eps;
        let inv_h = 1.0 / h as f32;
        self.inputs[t * b..(t + 1) * b].copy_from_slice(&self.pending);

        for l in 0..l_n {
            let p = self.lp[l];
            let i_dim = p.in_dim;
            let buf = &mut self.layers[l];
            // Gather u = [E[x] ; h(l-1)_t ; h(l)_{t-1}] for each stream.
            let u = &mut buf.u[t * b * i_dim..(t + 1) * b * i_dim];
            for s in 0..b {
                let row = &mut u[s * i_dim..(s + 1) * i_dim];
                let x = self.inputs[t * b + s] as usize;
                row[..d].copy_from_slice(&self.params[self.emb + x * d..self.emb + (x + 1) * d]);
                let mut off = d;
                if l > 0 {
                    let src = (t + 1) * b * lh + s * lh + (l - 1) * h;
                    row[off..off + h].copy_from_slice(&self.hcat[src..src + h]);
                    off += h;
                }
                let src = t * b * lh + s * lh + l * h;
                row[off..off + h].copy_from_slice(&self.hcat[src..src + h]);
            }
            // z = u · W_l, into the `n` slot; normalized in place below.
            let n = &mut buf.n[t * b * g..(t + 1) * b * g];
            kernels::gemm_nn(n, u, &self.params[p.w..p.w + i_dim * g], b, i_dim, g, false);
            let act = &mut buf.act[t * b * g..(t + 1) * b * g];
            let (s1, s2) = (&mut self.s1, &mut self.s2);
            for s in 0..b {
                for k in 0..3 {
                    let z = &mut n[s * g + k * h..s * g + (k + 1) * h];
                    let mean = kernels::sum(z) * inv_h;
                    for (sq, zv) in s1.iter_mut().zip(z.iter_mut()) {
                        *zv -= mean;
                        *sq = *zv * *zv;
                    }
                    let var = kernels::sum(s1) * inv_h;
                    let r = 1.0 / (var + ln_eps).sqrt();
                    buf.rstd[(t * b + s) * 3 + k] = r;
                    let gain = &self.params[p.gain + k * h..p.gain + (k + 1) * h];
                    let bias = &self.params[p.bias + k * h..p.bias + (k + 1) * h];
                    for j in 0..h {
                        z[j] *= r;
                        s2[j] = z[j] * gain[j] + bias[j];
                    }
                    let a = &mut act[s * g + k * h..s * g + (k + 1) * h];
                    if k < 2 {
                        kernels::sigmoid(a, s2);
                    } else {
                        kernels::tanh(a, s2);
                    }
                }
            }
            // Cell: c = f·c_prev + (1−f)·g = g + f·(c_prev − g);  h = o·tanh(c).
            let (c_prev, c_new) = buf.c.split_at_mut((t + 1) * b * h);
            let c_prev = &c_prev[t * b * h..];
            let c_new = &mut c_new[..b * h];
            for s in 0..b {
                let a = &act[s * g..(s + 1) * g];
                let (f, o, gg) = (&a[..h], &a[h..2 * h], &a[2 * h..]);
                let cp = &c_prev[s * h..(s + 1) * h];
                let cn = &mut c_new[s * h..(s + 1) * h];
                for j in 0..h {
                    cn[j] = f[j] * (cp[j] - gg[j]) + gg[j];
                }
                let tc = &mut buf.tc[(t * b + s) * h..(t * b + s + 1) * h];
                kernels::tanh(tc, cn);
                let dst = (t + 1) * b * lh + s * lh + l * h;
                for (hv, (&ov, &tv)) in self.hcat[dst..dst + h].iter_mut().zip(o.iter().zip(tc.iter())) {
                    *hv = ov * tv;
                }
            }
        }
        let mid = Instant::now();
        self.timings.forward_lstm += mid - start;

        // Output layer: logits = b_out + hcat · W_out, then softmax per stream.
        let probs = &mut self.probs[t * b * v..(t + 1) * b * v];
        let b_out = &self.params[self.b_out..self.b_out + v];
        for row in probs.chunks_exact_mut(v) {
            row.copy_from_slice(b_out);
        }
        let hrow = &self.hcat[(t + 1) * b * lh..(t + 2) * b * lh];
        kernels::gemm_nn(probs, hrow, &self.params[self.w_out..self.w_out + lh * v], b, lh, v, true);
        for row in probs.chunks_exact_mut(v) {
            kernels::softmax(row);
        }
        self.timings.forward_output += mid.elapsed();
        self.forwarded = true;
    }

    /// Backward pass over the `T` stored steps: fills `self.grads`.
    fn backward(&mut self) {
        let start = Instant::now();
        let (l_n, h, d, b, t_len) =
            (self.cfg.layers, self.cfg.hidden, self.cfg.embed, self.cfg.batch, self.cfg.seg_len);
        let (g, lh, tb) = (3 * h, l_n * h, t_len * b);
        let inv_h = 1.0 / h as f32;
        self.grads.fill(0.0);

        if self.cfg.out_grad_min > 0.0 {
            self.backward_output_sparse();
        } else {
            self.backward_output_dense();
        }
        let mid = Instant::now();
        self.timings.backward_output += mid - start;

        // Back through time, top layer first at each step.
        for buf in self.layers.iter_mut() {
            buf.dc.fill(0.0);
        }
        for t in (0..t_len).rev() {
            for l in (0..l_n).rev() {
                let p = self.lp[l];
                let i_dim = p.in_dim;
                let (lower, upper) = self.layers.split_at_mut(l + 1);
                let buf = &mut lower[l];
                std::mem::swap(&mut buf.du_cur, &mut buf.du_next);
                let rec = d + if l > 0 { h } else { 0 };
                let act = &buf.act[t * b * g..(t + 1) * b * g];
                let nrm = &buf.n[t * b * g..(t + 1) * b * g];
                let dz = &mut buf.dz[t * b * g..(t + 1) * b * g];
                for s in 0..b {
                    // dh = from the output layer + from layer l+1 at t + from layer l at t+1.
                    let dh = &mut self.s3;
                    let r0 = (t * b + s) * lh + l * h;
                    dh.copy_from_slice(&self.dhcat[r0..r0 + h]);
                    if l + 1 < l_n {
                        // Layer l+1 reads h(l)_t at offset D of its input.
                        let ui = self.lp[l + 1].in_dim;
                        let up = &upper[0].du_cur[s * ui + d..s * ui + d + h];
                        for (x, &y) in dh.iter_mut().zip(up) {
                            *x += y;
                        }
                    }
                    if t + 1 < t_len {
                        let nx = &buf.du_next[s * i_dim + rec..s * i_dim + rec + h];
                        for (x, &y) in dh.iter_mut().zip(nx) {
                            *x += y;
                        }
                    }
                    let a = &act[s * g..(s + 1) * g];
                    let (f, o, gg) = (&a[..h], &a[h..2 * h], &a[2 * h..]);
                    let tc = &buf.tc[(t * b + s) * h..(t * b + s + 1) * h];
                    let cp = &buf.c[(t * b + s) * h..(t * b + s + 1) * h];
                    let dc = &mut buf.dc[s * h..(s + 1) * h];
                    let dzr = &mut dz[s * g..(s + 1) * g];
                    let (dzf, rest) = dzr.split_at_mut(h);
                    let (dzo, dzg) = rest.split_at_mut(h);
                    let (dh, dc) = (&dh[..h], &mut dc[..h]);
                    for j in 0..h {
                        // h = o·tanh(c)
                        let dcj = dh[j] * o[j] * (1.0 - tc[j] * tc[j]) + dc[j];
                        let d_o = dh[j] * tc[j];
                        // c = g + f·(c_prev − g)
                        let df = dcj * (cp[j] - gg[j]);
                        let dg = dcj * (1.0 - f[j]);
                        dc[j] = dcj * f[j];
                        dzf[j] = df * f[j] * (1.0 - f[j]);
                        dzo[j] = d_o * o[j] * (1.0 - o[j]);
                        dzg[j] = dg * (1.0 - gg[j] * gg[j]);
                    }
                    // Layer-norm backward per gate: da → dz. With n = (z − μ)/σ and
                    // dn = da ⊙ gain: dz = (dn − mean(dn) − n ⊙ mean(dn ⊙ n)) / σ.
                    for k in 0..3 {
                        let da = &mut dzr[k * h..(k + 1) * h];
                        let nk = &nrm[s * g + k * h..s * g + (k + 1) * h];
                        let gain = &self.params[p.gain + k * h..p.gain + (k + 1) * h];
                        let (gr_gain, gr_bias) = self.grads[p.gain..p.bias + g].split_at_mut(g);
                        let gr_gain = &mut gr_gain[k * h..(k + 1) * h];
                        let gr_bias = &mut gr_bias[k * h..(k + 1) * h];
                        let (s1, s2) = (&mut self.s1[..h], &mut self.s2[..h]);
                        for j in 0..h {
                            gr_gain[j] += da[j] * nk[j];
                            gr_bias[j] += da[j];
                            let dn = da[j] * gain[j];
                            s1[j] = dn;
                            s2[j] = dn * nk[j];
                        }
                        let m1 = kernels::sum(s1) * inv_h;
                        let m2 = kernels::sum(s2) * inv_h;
                        let r = buf.rstd[(t * b + s) * 3 + k];
                        for j in 0..h {
                            da[j] = r * (s1[j] - m1 - nk[j] * m2);
                        }
                    }
                }
                // du = dz · W_lᵀ; its embedding part goes to E's gradient.
                kernels::gemm_nn(&mut buf.du_cur, dz, &self.wt[l], b, g, i_dim, false);
                for s in 0..b {
                    let x = self.inputs[t * b + s] as usize;
                    let ge = &mut self.grads[self.emb + x * d..self.emb + (x + 1) * d];
                    for (a, &y) in ge.iter_mut().zip(&buf.du_cur[s * i_dim..s * i_dim + d]) {
                        *a += y;
                    }
                }
            }
        }
        // Weight gradients of the layers, batched over all T·B rows.
        for (p, buf) in self.lp.iter().zip(self.layers.iter()) {
            kernels::gemm_tn(&mut self.grads[p.w..p.w + p.in_dim * g], &buf.u, &buf.dz, p.in_dim, tb, g, false);
        }
        self.timings.backward_lstm += mid.elapsed();
    }

    /// Output layer backward, exact: `dlogits`, `b_out`'s and `W_out`'s gradients, and
    /// `dhcat`, the gradient w.r.t. the output layer's input.
    fn backward_output_dense(&mut self) {
        let (l_n, h, b, v, t_len) = (self.cfg.layers, self.cfg.hidden, self.cfg.batch, self.v, self.cfg.seg_len);
        let (lh, tb) = (l_n * h, t_len * b);
        // b_out's gradient Σ (p − onehot) / (T·B), computed as the sparse path does.
        let scale = 1.0 / tb as f32;
        {
            let gb = &mut self.grads[self.b_out..self.b_out + v];
            for (r, row) in self.probs.chunks_exact(v).enumerate() {
                for (g, &p) in gb.iter_mut().zip(row) {
                    *g += p * scale;
                }
                gb[self.targets[r] as usize] -= scale;
            }
        }
        // dlogits = (p − onehot(target)) / (T·B), in place over the stored probabilities.
        for (r, row) in self.probs.chunks_exact_mut(v).enumerate() {
            let y = self.targets[r] as usize;
            row[y] -= 1.0;
            for x in row.iter_mut() {
                *x *= scale;
            }
        }
        let dl = &self.probs;
        // dW_out = hcatᵀ · dlogits over all T·B rows (slots 1..=T of hcat).
        let hrows = &self.hcat[b * lh..(t_len + 1) * b * lh];
        kernels::gemm_tn(&mut self.grads[self.w_out..self.w_out + lh * v], hrows, dl, lh, tb, v, false);
        // dhcat = dlogits · W_outᵀ, computed as (W_out · dlogitsᵀ)ᵀ to avoid transposing W_out.
        kernels::transpose(&mut self.dlt, dl, tb, v);
        kernels::gemm_nn(&mut self.dhcat_t, &self.params[self.w_out..self.w_out + lh * v], &self.dlt, lh, v, tb, false);
        kernels::transpose(&mut self.dhcat, &self.dhcat_t, lh, tb);
    }

    /// Output layer backward restricted to the active columns (see
    /// [`LstmConfig::out_grad_min`]) for `W_out` and the hidden states; `b_out` gets its
    /// exact gradient. With every column active, `W_out`'s gradient and `dhcat` are the
    /// dense path's FMA chains, bit for bit.
    fn backward_output_sparse(&mut self) {
        let (l_n, h, b, v, t_len) = (self.cfg.layers, self.cfg.hidden, self.cfg.batch, self.v, self.cfg.seg_len);
        let (lh, tb) = (l_n * h, t_len * b);
        let scale = 1.0 / tb as f32;
        // Largest probability of each symbol over the segment, and the exact gradient of
        // b_out (cheap: one pass over the probabilities, which the scan reads anyway), so
        // that the bias still pushes down the symbols whose weights are left alone.
        let colmax = &mut self.colmax;
        colmax.fill(0.0);
        let gb = &mut self.grads[self.b_out..self.b_out + v];
        for (r, row) in self.probs.chunks_exact(v).enumerate() {
            for ((m, g), &p) in colmax.iter_mut().zip(gb.iter_mut()).zip(row) {
                *m = if p > *m { p } else { *m };
                *g += p * scale;
            }
            let y = self.targets[r] as usize;
            gb[y] -= scale;
        }
        for &y in &self.targets {
            colmax[y as usize] = 1.0;
        }
        self.cols.clear();
        let thr = self.cfg.out_grad_min;
        self.cols.extend((0..v as u32).filter(|&j| colmax[j as usize] >= thr));
        let cols = &self.cols;
        let a = cols.len();
        // Compact dlogits (T·B × A) = (p − onehot) / (T·B) over the active columns.
        let dl = &mut self.dlt[..tb * a];
        for (r, (row, dst)) in self.probs.chunks_exact(v).zip(dl.chunks_exact_mut(a)).enumerate() {
            for (d, &j) in dst.iter_mut().zip(cols) {
                *d = row[j as usize];
            }
            let y = self.targets[r] as u32;
            // cols is ascending and contains y.
            if let Ok(k) = cols.binary_search(&y) {
                dst[k] -= 1.0;
            }
            for x in dst.iter_mut() {
                *x *= scale;
            }
        }
        // dW_out[:, cols] = hcatᵀ · dl, then scattered into the full gradient.
        let hrows = &self.hcat[b * lh..(t_len + 1) * b * lh];
        let dw = &mut self.dw_c[..lh * a];
        kernels::gemm_tn(dw, hrows, dl, lh, tb, a, false);
        let w_out = self.w_out;
        for (i, row) in dw.chunks_exact(a).enumerate() {
            let gw = &mut self.grads[w_out + i * v..w_out + (i + 1) * v];
            for (&x, &j) in row.iter().zip(cols) {
                gw[j as usize] = x;
            }
        }
        // dhcat = dl · W_out[:, cols]ᵀ.
        let wc = &mut self.w_c[..lh * a];
        for (i, row) in wc.chunks_exact_mut(a).enumerate() {
            let w = &self.params[w_out + i * v..w_out + (i + 1) * v];
            for (x, &j) in row.iter_mut().zip(cols) {
                *x = w[j as usize];
            }
        }
        kernels::gemm_nt(&mut self.dhcat, dl, wc, tb, a, lh, false);
        self.active_cols += a as u64;
    }

    /// End of a segment: backward, Adam, carry the recurrent state over.
    fn train(&mut self) {
        self.backward();
        let start = Instant::now();
        let lr = self.cfg.lr_at(self.opt.steps());
        // The embedding at its own multiple of the rate (1 keeps every earlier file's bits:
        // lr_t · 1 is lr_t exactly).
        let (emb_end, n) = (self.emb + self.v * self.cfg.embed, self.params.len());
        let groups = [(self.emb..emb_end, self.cfg.lr_emb), (emb_end..n, 1.0)];
        self.opt.step_groups(&mut self.params, &self.grads, lr, &groups);
        self.refresh_transposes();
        self.carry_state();
        self.timings.optimizer += start.elapsed();
    }

    /// Moves the last step's recurrent state to slot 0 and restarts the segment.
    fn carry_state(&mut self) {
        let (b, h, t_len) = (self.cfg.batch, self.cfg.hidden, self.t);
        let lh = self.cfg.layers * h;
        self.hcat.copy_within(t_len * b * lh..(t_len + 1) * b * lh, 0);
        for buf in self.layers.iter_mut() {
            buf.c.copy_within(t_len * b * h..(t_len + 1) * b * h, 0);
        }
        self.t = 0;
    }
}

impl Predictor for Lstm {
    fn vocab_size(&self) -> usize {
        self.v
    }

    fn batch(&self) -> usize {
        self.cfg.batch
    }

    fn predict(&mut self, probs: &mut [f32]) {
        if !self.forwarded {
            self.forward_step();
        }
        let n = self.cfg.batch * self.v;
        let t = self.t;
        let len = probs.len().min(n);
        probs[..len].copy_from_slice(&self.probs[t * n..t * n + len]);
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        let t = &self.timings;
        vec![
            ("forward lstm", t.forward_lstm.as_secs_f64()),
            ("forward output", t.forward_output.as_secs_f64()),
            ("backward output", t.backward_output.as_secs_f64()),
            ("backward lstm", t.backward_lstm.as_secs_f64()),
            ("optimizer", t.optimizer.as_secs_f64()),
        ]
    }

    fn update(&mut self, symbols: &[u16]) {
        if !self.forwarded {
            self.forward_step();
        }
        let b = self.cfg.batch;
        for s in 0..b {
            // Symbols outside the alphabet (a caller bug) are read as the padding symbol 0,
            // identically in encoder and decoder.
            let x = symbols.get(s).copied().filter(|&x| (x as usize) < self.v).unwrap_or(0);
            self.targets[self.t * b + s] = x;
            self.pending[s] = x;
        }
        self.t += 1;
        self.forwarded = false;
        if self.t == self.cfg.seg_len {
            self.train();
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod candle_reference;
