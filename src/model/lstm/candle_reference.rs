//! The LSTM against candle (issue 19): the network of the module docs written again as
//! candle tensor expressions in `f64` from the model's own parameters, its gradient
//! from candle's autograd, compared with what [`Lstm`]'s kernels compute on the real
//! code path (`predict`/`update`, whose segment end runs the backward pass and leaves
//! the gradient in `grads` before the Adam step moves the weights).
//!
//! Two segments, so that the second starts from the recurrent state carried over from
//! the first (truncated backpropagation: a constant for the gradient) and from the
//! weights after one Adam step; both output-layer backward passes (dense, and sparse
//! with every column kept).
//!
//! Tolerances: probabilities within 1e-7 absolute (they are about 1/24; measured 1.4e-8,
//! the `f32` rounding through two layers); each parameter group's gradient within 1e-5
//! of its largest element (measured 5e-7). A wrong term anywhere (a missing path
//! through the cell, a gain's gradient off by a factor) gives errors of order 1, and
//! moving one weight by 1e-2 moves the probabilities by 1e-5 (tested below); a
//! cell gradient 0.1% off (`dg` × 1.001) moves the embedding's by 1.2e-3 of its largest
//! element (tried while writing this test).

use super::*;
use crate::model::candle_check::{assert_gradients, constant, ids, layer_norm, max_diff, sigmoid, values, var};
use crate::model::testing::{run_steps, symbols};
use candle_core::{Result, Tensor, Var, D};
use std::ops::Range;

const PROB_TOL: f64 = 1e-7;
const GRAD_TOL: f64 = 1e-5;

/// The model's parameters as candle variables, with the range each holds in the flat
/// parameter vector.
struct Reference {
    emb: Var,
    /// `W`, gain, bias of each layer.
    layers: Vec<[Var; 3]>,
    w_out: Var,
    b_out: Var,
    ranges: Vec<(String, Range<usize>)>,
}

impl Reference {
    fn new(m: &Lstm) -> Reference {
        let (v, d, g) = (m.v, m.cfg.embed, 3 * m.cfg.hidden);
        let lh = m.cfg.layers * m.cfg.hidden;
        let mut ranges = vec![("embedding".to_string(), m.emb..m.emb + v * d)];
        let emb = var(&m.params[ranges[0].1.clone()], &[v, d]);
        let mut layers = Vec::new();
        for (l, p) in m.lp.iter().enumerate() {
            let parts = [
                ("W", p.w, p.in_dim * g, vec![p.in_dim, g]),
                ("gain", p.gain, g, vec![g]),
                ("bias", p.bias, g, vec![g]),
            ];
            layers.push(parts.map(|(name, off, len, shape)| {
                ranges.push((format!("layer {l} {name}"), off..off + len));
                var(&m.params[off..off + len], &shape)
            }));
        }
        ranges.push(("W_out".to_string(), m.w_out..m.w_out + lh * v));
        ranges.push(("b_out".to_string(), m.b_out..m.b_out + v));
        Reference {
            emb,
            layers,
            w_out: var(&m.params[m.w_out..m.w_out + lh * v], &[lh, v]),
            b_out: var(&m.params[m.b_out..m.b_out + v], &[v]),
            ranges,
        }
    }

    /// Every variable, in the order of `ranges`.
    fn vars(&self) -> Vec<&Var> {
        let mut all = vec![&self.emb];
        for l in &self.layers {
            all.extend(l.iter());
        }
        all.push(&self.w_out);
        all.push(&self.b_out);
        all
    }

    /// One segment: the logits of its `T·B` rows (row `t·B + s`) from the inputs (`T × B`
    /// symbols) and the recurrent state carried in (`h`, `c` per layer, `B × H`, updated
    /// in place to the state after the last step).
    fn segment(&self, cfg: &LstmConfig, inputs: &[u16], h: &mut [Tensor], c: &mut [Tensor]) -> Result<Tensor> {
        let (hd, eps) = (cfg.hidden, cfg.ln_eps as f64);
        let mut logits = Vec::new();
        for step in inputs.chunks(cfg.batch) {
            let e = self.emb.index_select(&ids(step.iter().copied()), 0)?;
            for l in 0..cfg.layers {
                let [w, gain, bias] = &self.layers[l];
                let mut u = vec![e.clone()];
                if l > 0 {
                    u.push(h[l - 1].clone());
                }
                u.push(h[l].clone());
                let z = Tensor::cat(&u, 1)?.matmul(w)?;
                let gate = |k: usize| -> Result<Tensor> {
                    layer_norm(&z.narrow(1, k * hd, hd)?, eps)
                        .broadcast_mul(&gain.narrow(0, k * hd, hd)?)?
                        .broadcast_add(&bias.narrow(0, k * hd, hd)?)
                };
                let (f, o, g) = (sigmoid(&gate(0)?), sigmoid(&gate(1)?), gate(2)?.tanh()?);
                // c = f·c_prev + (1 − f)·g, written as the module docs write it.
                c[l] = ((&f * &c[l])? + ((f.affine(-1.0, 1.0)?) * &g)?)?;
                h[l] = (o * c[l].tanh()?)?;
            }
            logits.push(Tensor::cat(h, 1)?.matmul(&self.w_out)?.broadcast_add(&self.b_out)?);
        }
        Tensor::cat(&logits, 0)
    }
}

fn config(out_grad_min: f32) -> LstmConfig {
    // Two layers (the inter-layer path), a forget bias that is not 0, sizes that differ.
    LstmConfig {
        layers: 2,
        hidden: 12,
        embed: 8,
        batch: 2,
        seg_len: 6,
        forget_bias: 1.0,
        out_grad_min,
        ..LstmConfig::preset("tiny").unwrap()
    }
}

/// Input symbols (`T × B`) of the segment starting at step `t0` of a sequence whose
/// step `t` codes `syms[t·B..(t+1)·B]`: step t reads step t−1's symbols (0 before the first).
fn inputs(syms: &[u16], b: usize, t0: usize, t_len: usize) -> Vec<u16> {
    (t0..t0 + t_len).flat_map(|t| (0..b).map(move |s| if t == 0 { 0 } else { syms[(t - 1) * b + s] })).collect()
}

#[test]
fn forward_and_gradients_match_candle() {
    let v = 24;
    for out_grad_min in [0.0, 1e-30] {
        let cfg = config(out_grad_min);
        let (b, t_len, hd) = (cfg.batch, cfg.seg_len, cfg.hidden);
        let mut m = Lstm::new(&cfg, v).unwrap();
        let syms = symbols(7, 2 * t_len * b, v);
        let zeros = || (0..cfg.layers).map(|_| constant(vec![0.0; b * hd], &[b, hd])).collect::<Vec<_>>();
        let (mut h, mut c) = (zeros(), zeros());
        for seg in 0..2 {
            let r = Reference::new(&m);
            let ours = run_steps(&mut m, &syms, seg * t_len..(seg + 1) * t_len);
            let logits = r.segment(&cfg, &inputs(&syms, b, seg * t_len, t_len), &mut h, &mut c).unwrap();
            let probs = values(&candle_nn::ops::softmax(&logits, D::Minus1).unwrap());
            let (diff, _) = max_diff(&ours, &probs);
            assert!(diff <= PROB_TOL, "segment {seg}: probabilities differ from candle's by {diff:.3e}");
            let targets = ids(syms[seg * t_len * b..(seg + 1) * t_len * b].iter().copied());
            let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
            let grads = loss.backward().unwrap();
            let worst = assert_gradients(
                &format!("segment {seg}, out_grad_min {out_grad_min}"),
                &r.ranges,
                &r.vars(),
                &grads,
                &m.grads,
                GRAD_TOL,
            );
            eprintln!("segment {seg}, out_grad_min {out_grad_min}: probabilities within {diff:.2e}, gradients within {worst:.2e} (relative)");
            // The next segment starts from this state, a constant for its gradient.
            h = h.iter().map(|x| x.detach()).collect();
            c = c.iter().map(|x| x.detach()).collect();
        }
    }
}

/// The comparison can fail: one weight moved by 1e-2 shows in the probabilities far
/// beyond the tolerance; and candle's gradient of the reference is the derivative of
/// its loss (central differences in `f64`), so the reference is the network we mean.
#[test]
fn the_reference_is_sensitive_and_differentiates_its_loss() {
    let cfg = config(0.0);
    let v = 24;
    let (b, t_len, hd) = (cfg.batch, cfg.seg_len, cfg.hidden);
    let m = Lstm::new(&cfg, v).unwrap();
    let syms = symbols(11, t_len * b, v);
    let ins = inputs(&syms, b, 0, t_len);
    let targets = ids(syms.iter().copied());
    let loss_of = |params: &[f32]| -> (Tensor, Tensor, Reference) {
        let mut m2 = Lstm::new(&cfg, v).unwrap();
        m2.params.copy_from_slice(params);
        let r = Reference::new(&m2);
        let zeros = || (0..cfg.layers).map(|_| constant(vec![0.0; b * hd], &[b, hd])).collect::<Vec<_>>();
        let (mut h, mut c) = (zeros(), zeros());
        let logits = r.segment(&cfg, &ins, &mut h, &mut c).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
        (logits, loss, r)
    };
    let (logits, loss, r) = loss_of(&m.params);
    let probs = values(&candle_nn::ops::softmax(&logits, D::Minus1).unwrap());
    let grads = loss.backward().unwrap();

    let w1 = m.lp[1].w + 5;
    let mut moved = m.params.clone();
    moved[w1] += 1e-2;
    let moved_probs = values(&candle_nn::ops::softmax(&loss_of(&moved).0, D::Minus1).unwrap());
    let as_f32: Vec<f32> = moved_probs.iter().map(|&x| x as f32).collect();
    let (diff, _) = max_diff(&as_f32, &probs);
    assert!(diff > 10.0 * PROB_TOL, "a moved weight changed the probabilities by only {diff:.3e}");

    // One parameter of each group: the embedding row of a symbol that occurs, weights,
    // gains and biases of both layers, the output layer.
    let mut checked = 0;
    for ((name, range), x) in r.ranges.iter().zip(r.vars()) {
        let g = values(grads.get(x).unwrap());
        let (k, &analytic) = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        let eps = 1e-3;
        let at = |delta: f32| {
            // f32 parameters: step by a representable amount and divide by it.
            let mut p = m.params.clone();
            p[range.start + k] += delta;
            let step = (p[range.start + k] - m.params[range.start + k]) as f64;
            (values(&loss_of(&p).1)[0], step)
        };
        let ((lp, sp), (lm, sm)) = (at(eps), at(-eps));
        let numeric = (lp - lm) / (sp - sm);
        assert!(
            (numeric - analytic).abs() <= 1e-4 * analytic.abs().max(1e-3),
            "{name}[{k}]: candle's gradient {analytic:.6e}, central difference {numeric:.6e}"
        );
        checked += 1;
    }
    assert_eq!(checked, r.ranges.len());
}
