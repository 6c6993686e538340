//! The Transformer against candle (issue 19): the network of the module docs written
//! again as candle tensor expressions in `f64` from the model's own parameters, its
//! gradient from candle's autograd, compared with what [`Transformer`]'s kernels
//! compute on the real code path (`predict`/`update`: one row of each stream per step,
//! the backward pass at the segment's end, whose gradient stays in `grads` after the
//! Adam step).
//!
//! Three segments with a memory of two: the first attends within itself, the second to
//! the first's keys and values as well, the third to both earlier segments' — keys and
//! values computed with the weights of their own segment, constants for the gradient —
//! so the relative-position biases are checked at every distance. Two layers, two
//! heads, input groups of two symbols (TRACE's grouping).
//!
//! Tolerances: probabilities within 1e-6 absolute (they are about 1/20), gradients
//! within 1e-5 of each group's largest element; what was measured is printed
//! (`--nocapture`) and stated at the constants. A wrong term shows far above them: the
//! GELU derivative's cubic coefficient off by 3% moves the embedding's gradient by
//! 6e-4 of its largest element (tried while writing this test).

use super::*;
use crate::model::candle_check::{assert_gradients, constant, ids, max_diff, rms_norm, values, var};
use crate::model::testing::{run_steps, symbols};
use candle_core::{Result, Tensor, Var, D};
use std::ops::Range;

/// Measured: 7.7e-8, 1.7e-7, 8.9e-8 in the three segments (`f32` rounding, our `exp`).
const PROB_TOL: f64 = 1e-6;
/// Measured: 6.3e-7, 9.4e-7, 6.9e-7.
const GRAD_TOL: f64 = 1e-5;

/// Keys and values of one segment for each layer, stream and head (`T × d/H` each).
type SegmentKv = Vec<Vec<(Tensor, Tensor)>>;

/// The model's parameters as candle variables, with the range each holds in the flat
/// parameter vector.
struct Reference {
    emb: Var,
    /// `g1, Wqkv, Wo, rel, g2, W1, W2` of each layer.
    layers: Vec<[Var; 7]>,
    gf: Var,
    w_out: Var,
    b_out: Var,
    ranges: Vec<(String, Range<usize>)>,
}

impl Reference {
    fn new(m: &Transformer) -> Reference {
        let c = &m.cfg;
        let (d, f, h, v, n) = (c.d_model, c.d_ff, c.heads, m.v, m.n);
        let mut ranges = Vec::new();
        let mut take = |name: String, off: usize, shape: &[usize]| {
            let len: usize = shape.iter().product();
            ranges.push((name, off..off + len));
            var(&m.params[off..off + len], shape)
        };
        let emb = take("embedding".into(), m.emb, &[v, m.e]);
        let layers =
            m.lp.iter()
                .enumerate()
                .map(|(l, p)| {
                    [
                        take(format!("layer {l} g1"), p.g1, &[d]),
                        take(format!("layer {l} Wqkv"), p.wqkv, &[d, 3 * d]),
                        take(format!("layer {l} Wo"), p.wo, &[d, d]),
                        take(format!("layer {l} position biases"), p.rel, &[h, n]),
                        take(format!("layer {l} g2"), p.g2, &[d]),
                        take(format!("layer {l} W1"), p.w1, &[d, f]),
                        take(format!("layer {l} W2"), p.w2, &[f, d]),
                    ]
                })
                .collect();
        let gf = take("gf".into(), m.gf, &[d]);
        let w_out = take("W_out".into(), m.w_out, &[d, v]);
        let b_out = take("b_out".into(), m.b_out, &[v]);
        Reference { emb, layers, gf, w_out, b_out, ranges }
    }

    /// Every variable, in the order of `ranges`.
    fn vars(&self) -> Vec<&Var> {
        let mut all = vec![&self.emb];
        for l in &self.layers {
            all.extend(l.iter());
        }
        all.extend([&self.gf, &self.w_out, &self.b_out]);
        all
    }

    /// One segment: the logits of its `R = T·B` rows (row `t·B + s`) from each row's
    /// input group (`R × k` symbols, newest first), attending to `memory` (earlier
    /// segments, oldest first); returns them with this segment's keys and values.
    fn segment(&self, cfg: &TransformerConfig, inputs: &[u16], memory: &[SegmentKv]) -> Result<(Tensor, SegmentKv)> {
        let (d, h, k, b, t_len) = (cfg.d_model, cfg.heads, cfg.group, cfg.batch, cfg.seg_len);
        let (dh, r, eps) = (d / h, t_len * b, cfg.norm_eps as f64);
        let scale = 1.0 / (dh as f64).sqrt();
        let groups: Vec<Tensor> = (0..k)
            .map(|j| self.emb.index_select(&ids((0..r).map(|row| inputs[row * k + j])), 0))
            .collect::<Result<_>>()?;
        let mut x = Tensor::cat(&groups, 1)?;
        let mut kv: SegmentKv = Vec::new();
        for (l, [g1, wqkv, wo, rel, g2, w1, w2]) in self.layers.iter().enumerate() {
            let qkv = rms_norm(&x, g1, eps).matmul(wqkv)?.reshape((t_len, b, 3 * d))?;
            let mut streams = Vec::new();
            let mut layer_kv = Vec::new();
            for s in 0..b {
                let qs = qkv.narrow(1, s, 1)?.squeeze(1)?;
                let mut heads = Vec::new();
                for hh in 0..h {
                    let q = qs.narrow(1, hh * dh, dh)?;
                    let (key, val) = (qs.narrow(1, d + hh * dh, dh)?, qs.narrow(1, 2 * d + hh * dh, dh)?);
                    let mut keys: Vec<Tensor> = memory.iter().map(|seg| seg[l][s * h + hh].0.clone()).collect();
                    let mut vals: Vec<Tensor> = memory.iter().map(|seg| seg[l][s * h + hh].1.clone()).collect();
                    keys.push(key.clone());
                    vals.push(val.clone());
                    let (keys, vals) = (Tensor::cat(&keys, 0)?, Tensor::cat(&vals, 0)?);
                    // Query t sits at position mem + t; key j at j: distance mem + t − j,
                    // masked where negative (the future).
                    let mem = memory.len() * t_len;
                    let nk = mem + t_len;
                    let (mut dist, mut mask) = (Vec::new(), Vec::new());
                    for t in 0..t_len {
                        for j in 0..nk {
                            let delta = (mem + t) as i64 - j as i64;
                            dist.push(delta.max(0) as u16);
                            mask.push(if delta >= 0 { 0.0 } else { -1e30 });
                        }
                    }
                    let bias = rel.narrow(0, hh, 1)?.squeeze(0)?.index_select(&ids(dist), 0)?.reshape((t_len, nk))?;
                    let scores = ((q.matmul(&keys.t()?)? * scale)? + bias)? + constant(mask, &[t_len, nk]);
                    let p = candle_nn::ops::softmax(&scores?, D::Minus1)?;
                    heads.push(p.matmul(&vals)?);
                    layer_kv.push((key.detach(), val.detach()));
                }
                streams.push(Tensor::cat(&heads, 1)?);
            }
            kv.push(layer_kv);
            let ao = Tensor::stack(&streams, 1)?.reshape((r, d))?;
            let xm = (&x + ao.matmul(wo)?)?;
            // candle's gelu is the tanh form, as ours.
            let ff = rms_norm(&xm, g2, eps).matmul(w1)?.gelu()?.matmul(w2)?;
            x = (xm + ff)?;
        }
        let logits = rms_norm(&x, &self.gf, eps).matmul(&self.w_out)?.broadcast_add(&self.b_out)?;
        Ok((logits, kv))
    }
}

fn config() -> TransformerConfig {
    TransformerConfig {
        layers: 2,
        d_model: 16,
        heads: 2,
        d_ff: 24,
        group: 2,
        batch: 2,
        seg_len: 4,
        mem_segs: 2,
        retrain_every: 0,
        retrain_len: 0,
        ..TransformerConfig::preset("tiny").unwrap()
    }
}

/// Input groups (`T·B × k`, newest first) of the segment starting at step `t0` of a
/// sequence whose step `t` codes `syms[t·B..(t+1)·B]`: step t reads steps t−1 … t−k
/// (0 before the first).
fn inputs(syms: &[u16], cfg: &TransformerConfig, t0: usize) -> Vec<u16> {
    let (b, k) = (cfg.batch, cfg.group);
    let mut out = Vec::new();
    for t in t0..t0 + cfg.seg_len {
        for s in 0..b {
            for j in 1..=k {
                out.push(if t >= j { syms[(t - j) * b + s] } else { 0 });
            }
        }
    }
    out
}

#[test]
fn forward_and_gradients_match_candle() {
    let cfg = config();
    let v = 20;
    let (b, t_len) = (cfg.batch, cfg.seg_len);
    let mut m = Transformer::new(&cfg, v).unwrap();
    let syms = symbols(5, 3 * t_len * b, v);
    let mut memory: Vec<SegmentKv> = Vec::new();
    for seg in 0..3 {
        let r = Reference::new(&m);
        let ours = run_steps(&mut m, &syms, seg * t_len..(seg + 1) * t_len);
        let (logits, kv) = r.segment(&cfg, &inputs(&syms, &cfg, seg * t_len), &memory).unwrap();
        let probs = values(&candle_nn::ops::softmax(&logits, D::Minus1).unwrap());
        let (diff, _) = max_diff(&ours, &probs);
        assert!(diff <= PROB_TOL, "segment {seg}: probabilities differ from candle's by {diff:.3e}");
        let targets = ids(syms[seg * t_len * b..(seg + 1) * t_len * b].iter().copied());
        let grads = candle_nn::loss::cross_entropy(&logits, &targets).unwrap().backward().unwrap();
        let worst = assert_gradients(&format!("segment {seg}"), &r.ranges, &r.vars(), &grads, &m.grads, GRAD_TOL);
        eprintln!("segment {seg}: probabilities within {diff:.2e}, gradients within {worst:.2e} (relative)");
        memory.push(kv);
        if memory.len() > cfg.mem_segs {
            memory.remove(0);
        }
    }
}

/// The comparison can fail: one weight of the second layer's `Wqkv` moved by 1e-2 moves
/// the reference's probabilities far beyond the tolerance.
#[test]
fn the_reference_sees_one_moved_weight() {
    let cfg = config();
    let v = 20;
    let m = Transformer::new(&cfg, v).unwrap();
    let syms = symbols(9, cfg.seg_len * cfg.batch, v);
    let ins = inputs(&syms, &cfg, 0);
    let probs_of = |m: &Transformer| {
        let (logits, _) = Reference::new(m).segment(&cfg, &ins, &[]).unwrap();
        values(&candle_nn::ops::softmax(&logits, D::Minus1).unwrap())
    };
    let before: Vec<f32> = probs_of(&m).iter().map(|&x| x as f32).collect();
    let mut moved = Transformer::new(&cfg, v).unwrap();
    moved.params[m.lp[1].wqkv + 3] += 1e-2;
    let (diff, _) = max_diff(&before, &probs_of(&moved));
    assert!(diff > 10.0 * PROB_TOL, "a moved weight changed the probabilities by only {diff:.3e}");
}
