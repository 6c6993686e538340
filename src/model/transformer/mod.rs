//! A Transformer predictor in the style of NNCP v2 ("NNCP v2: Lossless Data Compression
//! with Transformer", Bellard 2021), trained online, with its forward and backward passes
//! written on top of the deterministic [`crate::kernels`].
//!
//! # Model
//!
//! ```text
//!   input at step t:  x = [E[s_{t-1}] ; E[s_{t-2}] ; … ; E[s_{t-k}]]      (d = k·e)
//!                     (k = `group`: TRACE's byte grouping; k = 1 is NNCP; s_{<0} = 0)
//!   layer l (pre-norm):
//!     a = RMSNorm(x) ⊙ g1
//!     q | k | v = a · Wqkv                                   (3d, H heads of d/H)
//!     per head: s_j = (q·k_j)/√(d/H) + bias_h[i − j]       j over memory + past + i
//!               o = Σ_j softmax(s)_j v_j
//!     x ← x + o · Wo
//!     x ← x + GELU(RMSNorm(x) ⊙ g2 · W1) · W2
//!   output:  P(next) = softmax(RMSNorm(x) ⊙ gf · W_out + b_out)        (untied)
//! ```
//!
//! Shapes are row-major; a segment holds `R = T·B` rows, row `t·B + s` being step `t`
//! of stream `s`.
//!
//! **Memory** (Transformer-XL): the keys and values of the last `mem_segs` segments
//! (`M = mem_segs·T` positions per layer, stream and head) stay in the key/value cache
//! and are attended to by the current segment. They are constants for the gradient: no
//! gradient reaches earlier segments, and they keep the weights they were computed with
//! (NNCP recomputes them from stored hidden states; keeping them saves a projection of
//! `M` rows per layer and segment, and the learning rate is small enough that the
//! staleness of a few gradient steps does not show).
//!
//! **Positions**: a learned per-head relative-position bias (`bias_h[δ]` for the
//! distances `δ = 0 … M+T−1`, as T5 does) instead of NNCP's learned relative position
//! embeddings (`q·r_δ`). The bias costs `M+T` parameters per head and one add per score,
//! while `q·r_δ` costs as much as `q·k` again (a second score product per head, and
//! its backward); at the widths that run on a CPU the content part of `q·r_δ` buys little.
//! The biases start as ALiBi's (`cfg.alibi`: head `h` at `−2^−(1+⌊8h/H⌋)·δ`), a
//! preference for recent positions that training adjusts, instead of at 0.
//!
//! # Online training
//!
//! [`Predictor::predict`] runs the forward pass of one step (the `B` rows of step `t`)
//! and stores every activation in slot `t` of the segment buffers, with the step's keys
//! and values appended to the cache. Weights do not change within a segment, so these
//! are exactly the activations of a forward pass over the whole segment: after `T`
//! steps the backward pass runs over them directly, then one Adam step (β1 = 0), then
//! the segment's keys and values become the memory of the next one. The same function
//! ([`Transformer::forward_rows`]) serves one step and a whole segment: the kernels'
//! matrix products give each row the same bits whatever the number of rows, so both
//! give identical activations (tested).
//!
//! **Retraining** (NNCP v2/v3): every `retrain_every` steps, one extra pass over the last
//! `retrain_len` steps of every stream (inputs kept in a ring), segment by segment from
//! an empty memory, with the batched forward, a backward pass and an Adam step per
//! segment on a learning-rate schedule of its own (`retrain_lr`, decayed on the count of
//! retraining steps). The coding pass's memory is saved before and restored after. It
//! is a pure function of the coded symbols, so the decoder replays it. (No dropout: it
//! would help large models on large inputs; at these sizes it costs more than it gives.)
//!
//! **Learning rates by group**: the embedding, the output layer and the position biases
//! learn at multiples of the shared rate (`lr_emb` 40, `lr_out` 3, `lr_rel` 10 in the
//! presets). A symbol's embedding row, and its output row's share of the gradient, only
//! move when the symbol occurs, and Adam's per-parameter normalization does not make up
//! for that: at the shared rate a token seen a hundred times has barely left its random
//! start. NNCP's inputs (enwik8/9) are long enough not to care; ours are not. This is
//! what closed most of the gap to the LSTM (see Measured).
//!
//! All buffers are allocated in [`Transformer::new`]; the hot loop allocates nothing.
//!
//! # Where the time goes
//!
//! Per step (B rows) the forward pass costs `B·(L·(4d² + 2dF) + dV)` multiply-adds in
//! the projections and `B·L·2·n·d` in attention (`n` ≤ M+T keys); the backward pass about
//! twice that. The projections and the feed-forward layers go through the kernels'
//! matrix products (B rows per coding step, `T·B` rows in the backward pass). Attention
//! runs per stream, head and row (coding cannot batch it across rows): one query against
//! at most `M+T` keys, as plain mul/add loops vectorized along the keys (scores, against
//! a transposed key cache) and along the head's width (weighted values) — one-row kernel
//! calls spent more time in their set-up than in arithmetic (forward attention 18% of
//! the time with them, 8% without). [`Transformer::timings`] has the breakdown
//! (`nnz compress --stats` prints it).
//!
//! # Measured
//!
//! 2 vCPUs sharing one Zen 5 core, AVX-512 kernels, `nnz compress --model M -p P`
//! (tokenizer, mixed with the n-gram model, header and dictionary included), round trips
//! checked, 2026-11-27. CPU seconds are user time; the dickens runs shared the core with
//! another job, so their wall time is about twice that.
//!
//! ```text
//! file                  model                      bytes       bpb     CPU s
//! calgary/book1         transformer default      213,076    2.2173      45
//! calgary/book1         transformer fast         214,470    2.2318      12
//! calgary/book1         lstm default             213,062    2.2172      50
//! calgary/book1         lstm default, emb ×1     213,529    2.2220      50
//! calgary/book1         lstm fast                215,203    2.2394       9
//! calgary/book1         nncp 2024-06-05 default  268,054    2.789      191   (earlier session)
//! silesia/dickens       transformer default  2,185,945    1.7157     445
//! silesia/dickens       lstm default           2,175,803    1.7078     821   (see below)
//! silesia/dickens       lstm default, emb ×1   2,194,437    1.7224     856
//! silesia/dickens       nncp 2024-06-05 default 2,391,315   1.8769    2910   (earlier session)
//! ```
//!
//! Before the per-group learning rates the Transformer trailed the LSTM by 3.2% on book1
//! (2.294 bpb) and 4.8% on dickens (2,299,614 bytes, 1.8050). With them it passed the
//! LSTM of that day ("emb ×1" above) by 0.2% and 0.4%; the same cure for the LSTM's
//! embedding (`LstmConfig::lr_emb` 3 for tokens) then put the LSTM back ahead: a tie on
//! book1 (14 bytes) and 0.46% on dickens. (That dickens LSTM figure is an experimental
//! build's 2,175,798 bytes plus the 5 header bytes that record the multiple: the same
//! arithmetic, whose book1 file differs from the release's by exactly those 5 bytes.)
//! At these sizes the recurrent network still learns a little more per symbol; NNCP's
//! Transformer pulls ahead at enwik scale, with more depth and width than this CPU runs
//! at speed. What closed the gap, in order
//! (book1, ideal bpb of the network mixed with the n-gram model,
//! `examples/transformer_bench.rs`, `default`):
//!
//! ```text
//! before                                                 2.2450
//! ALiBi-initialized position biases (slopes ×1, ×2, ×4 tie)  2.2370
//! embedding learning rate ×5 / ×10 / ×20 / ×40 / ×80     2.2154 / 2.2075 / 2.2015 / 2.1983 / 2.1979
//! + output layer ×3, position biases ×10 (embedding ×40) 2.1917
//! + lr 1.5e-3 instead of 2e-3 (3e-3: 2.1960)             2.1910
//! + 4 streams instead of 8 (32k symbols each)            2.1797 (embedding ×80)
//! + 2 streams (64k each), lr_decay 1000 (input-sized)    2.1669 (embedding ×80)
//! ```
//!
//! Dickens' first 2 MB went from 1.9254 to 1.8734 with the first four. On the whole of
//! dickens the embedding multiple 40 beats 80 (2,183,241 against 2,186,762 bytes) and a
//! decay of 4000 steps beats 1000 (2,186,762 against 2,191,474): hence a decay sized by
//! the input (one step per 256 symbols, between 1000 and 4000) and ×40.
//!
//! What did not help, this round (book1, 4 streams, against 2.1797–2.1819): GEGLU instead
//! of GELU (2.1810 at 1.25× the time; with F 512, the same parameters, 2.1822); a second
//! embedding table for the symbol before, summed into the input (2.1819–2.1823);
//! zero-initialized output projections (−0.0006); the output layer initialized at 0 or
//! doubled (2.2690, 2.2639 against 2.2450 then); β2 0.999 (a tie); a memory of 2
//! segments (−0.0004 at 1.2× the time); 6 heads of 32 or F 1024 (2.1811 both). With
//! the final presets (2 streams, 2.1683): output ×5 2.1711, position biases ×30 2.1674,
//! lr 2e-3 2.1688, a memory of 2 segments 2.1687, seg_len 8 / 32 2.1703 / 2.1705.
//!
//! Earlier (before the per-group rates; book1, against 2.2758 for 3 × 192 with 6 heads
//! and F 384): a wider model (d 256: 2.2754; on dickens' first 2 MB 1.9907 against 1.9954
//! at 1.5× the time), a fourth layer (2.2787), longer segments (seg_len 32: 2.2851; 8:
//! 2.2799), a longer memory (`mem_segs` 2: 2.2712, 4: 2.2713 against 2.2714 with 1; on
//! dickens' first 2 MB 1 / 4 / 8 segments gave 1.9254 / 1.9241 / 1.9233 at 34.8 / 28.1 /
//! 21.3 kB/s per CPU second), grouping two tokens per position (2.2935), retraining
//! (every 4096 steps over the last 2048: 2.2823 vs 2.2807; dickens 2 MB 1.9949 vs 1.9954,
//! at 1.45× the time). A wider feed-forward layer and 16-wide heads did help (2.2758 →
//! 2.2707): they are in the presets.
//!
//! The time split (`default` on book1 with 8 streams, `examples/transformer_bench.rs`):
//! forward layers 19%, attention 7%, output 5%; backward output 11%, layers (attention
//! included) 47%; Adam 8%; n-gram model and mixing 3%: about 100 GFLOP/s counted as 3×
//! the forward pass's multiply-adds. The kernels run these products at 160–230 GFLOP/s
//! (`gemm_nt` with `T·B = 128` rows at 160, so a transposed copy of the weights for
//! `gemm_nn` would not pay: the transposition costs 40% of the product). Fewer streams
//! mean smaller products: book1 takes 52 CPU seconds with 2 streams against 26 with 8.
//!
//! # Determinism
//!
//! Every number goes through [`crate::kernels`] (fixed-order products and reductions,
//! our own `exp`/`tanh`) or single IEEE operations in a fixed order; the weights come
//! from [`crate::model::init::Init`] seeded with `cfg.seed`.
//!
//! ```
//! use nnz::model::{transformer::{Transformer, TransformerConfig}, Predictor};
//! let cfg = TransformerConfig::preset("tiny").unwrap();
//! let mut m = Transformer::new(&cfg, 16).unwrap();
//! let mut p = vec![0.0f32; m.batch() * m.vocab_size()];
//! m.predict(&mut p);
//! let row_sum: f32 = p[..16].iter().sum();
//! assert!((row_sum - 1.0).abs() < 1e-5);
//! m.update(&[1, 2]);
//! ```

mod config;
#[cfg(feature = "cuda")]
mod gpu;
mod steps;

pub use config::TransformerConfig;
#[cfg(feature = "cuda")]
pub use gpu::TransformerGpu;

use crate::kernels;
use crate::model::adam::Adam;
use crate::model::init::Init;
use crate::model::Predictor;
use anyhow::{ensure, Result};
use std::ops::Range;
use std::time::{Duration, Instant};
use steps::Steps;

/// Upper bound on the floats one model may allocate: 1 Gi floats = 4 GiB.
const MAX_FLOATS: usize = 1 << 30;

/// `√(2/π)` and the cubic coefficient of the tanh form of GELU.
const GELU_C: f32 = 0.797_884_6;
const GELU_K: f32 = 0.044_715;

/// Where the time went, accumulated since the model was built.
#[derive(Clone, Debug, Default)]
pub struct TransformerTimings {
    /// Projections, normalizations and feed-forward layers, forward.
    pub forward_layers: Duration,
    /// Attention scores, softmax and weighted values, forward.
    pub forward_attention: Duration,
    /// Output layer and softmax, forward.
    pub forward_output: Duration,
    /// Output layer, backward.
    pub backward_output: Duration,
    /// Layers (attention included), backward.
    pub backward_layers: Duration,
    /// Adam steps.
    pub optimizer: Duration,
    /// Retraining passes, all phases together.
    pub retrain: Duration,
}

/// Offsets of one layer's parameters in the flat parameter vector.
#[derive(Clone, Copy, Debug)]
struct LayerParams {
    /// RMSNorm gain before attention, `d`.
    g1: usize,
    /// `Wqkv`, `d × 3d`.
    wqkv: usize,
    /// `Wo`, `d × d`.
    wo: usize,
    /// Relative-position bias, `H × (M+T)`.
    rel: usize,
    /// RMSNorm gain before the feed-forward layer, `d`.
    g2: usize,
    /// `W1`, `d × F`.
    w1: usize,
    /// `W2`, `F × d`.
    w2: usize,
}

/// One layer's activations over a segment (`R = T·B` rows).
struct LayerAct {
    /// `1/rms` of the layer input, `R`.
    r1: Vec<f32>,
    /// Normalized input `a`, `R × d`.
    a1: Vec<f32>,
    /// `q | k | v`, `R × 3d`.
    qkv: Vec<f32>,
    /// Key cache, transposed per stream and head: `B × H × d/H × (M+T)`, so that one
    /// query's scores are a sum of rows scaled by the query's elements (vectorized along
    /// the keys). Positions `0..M` are the memory, `M..M+T` the current segment.
    kt: Vec<f32>,
    /// Value cache, `B × H × (M+T) × d/H`, positions as in `kt`.
    vc: Vec<f32>,
    /// Attention probabilities, `R × H × (M+T)` (0 outside the attended range).
    p: Vec<f32>,
    /// Attention output before `Wo`, `R × d`.
    ao: Vec<f32>,
    /// Residual stream after attention, `R × d`.
    xm: Vec<f32>,
    /// `1/rms` of `xm`, `R`.
    r2: Vec<f32>,
    /// Normalized `xm`, `R × d`.
    a2: Vec<f32>,
    /// Feed-forward pre-activation, its tanh term and GELU output, `R × F` each.
    u: Vec<f32>,
    th: Vec<f32>,
    g: Vec<f32>,
}

/// The Transformer predictor; see the module docs.
pub struct Transformer {
    cfg: TransformerConfig,
    /// Vocabulary size `V`.
    v: usize,
    /// Embedding width `e = d / group`, head width `d / H`, key positions `n = M + T`.
    e: usize,
    dh: usize,
    n: usize,
    /// Memory positions, `M = mem_segs · T`: keys `0..M` of the cache are the memory.
    m: usize,
    params: Vec<f32>,
    grads: Vec<f32>,
    opt: Adam,
    emb: usize,
    lp: Vec<LayerParams>,
    gf: usize,
    w_out: usize,
    b_out: usize,
    /// The parameters' ranges and their multiples of the learning rate, covering every
    /// parameter once, in order (see [`Transformer::lr_groups`]).
    lr_groups: Vec<(Range<usize>, f32)>,
    /// Residual stream at each layer's input, and the output of the last: `L+1` of `R × d`.
    x: Vec<Vec<f32>>,
    acts: Vec<LayerAct>,
    /// Final normalization: `1/rms` (`R`) and output (`R × d`).
    rf: Vec<f32>,
    af: Vec<f32>,
    /// Probabilities of each row, `R × V`; turned into `dlogits` in place by the backward.
    probs: Vec<f32>,
    /// The rows' input groups and targets, the streams' histories and the schedule.
    st: Steps,
    /// Whether step `st.t` has had its forward pass.
    forwarded: bool,
    /// Memory positions that hold keys (0 for the first segment, then `T`, … up to `M`).
    mem_valid: usize,
    /// The coding pass's memory, saved during a retraining pass: per layer, keys then
    /// values, `B × H × T × d/H` each.
    saved_mem: Vec<f32>,
    /// Backward scratch: gradients of the residual stream and of a normalized input
    /// (`R × d`), of `q|k|v` (`R × 3d`), of the attention output (`R × d`), of the
    /// feed-forward hidden layer (`R × F`).
    dx: Vec<f32>,
    da: Vec<f32>,
    dqkv: Vec<f32>,
    dao: Vec<f32>,
    dff: Vec<f32>,
    /// Attention backward scratch for one stream and head: `T × d/H` (q, dO, dQ),
    /// `T × (M+T)` (P, dP), `(M+T) × d/H` (dK, dV).
    s_q: Vec<f32>,
    s_do: Vec<f32>,
    s_dq: Vec<f32>,
    s_p: Vec<f32>,
    s_dp: Vec<f32>,
    s_dk: Vec<f32>,
    s_dv: Vec<f32>,
    /// Scratch row as wide as the widest of `d`, `F`, `M + T`.
    sq: Vec<f32>,
    timings: TransformerTimings,
}

/// `out = x / rms(x) ⊙ g` for each row of width `d`; `rinv` gets `1/rms` per row.
fn rms_rows(out: &mut [f32], rinv: &mut [f32], x: &[f32], g: &[f32], d: usize, eps: f32, sq: &mut [f32]) {
    let inv_d = 1.0 / d as f32;
    let sq = &mut sq[..d];
    for ((o, r), xr) in out.chunks_exact_mut(d).zip(rinv.iter_mut()).zip(x.chunks_exact(d)) {
        for (s, &v) in sq.iter_mut().zip(xr) {
            *s = v * v;
        }
        let ms = kernels::sum(sq) * inv_d;
        let ri = 1.0 / (ms + eps).sqrt();
        *r = ri;
        for ((ov, &xv), &gv) in o.iter_mut().zip(xr).zip(g) {
            *ov = xv * ri * gv;
        }
    }
}

/// Backward of [`rms_rows`]: adds `dx` for each row given `da`, and the gain's gradient
/// to `dg`. With `n = x·r`: `dx = r·(dn − n·mean(dn ⊙ n))`, `dn = da ⊙ g`.
#[allow(clippy::too_many_arguments)]
fn rms_rows_backward(
    dx: &mut [f32],
    dg: &mut [f32],
    da: &[f32],
    x: &[f32],
    rinv: &[f32],
    g: &[f32],
    d: usize,
    sq: &mut [f32],
) {
    let inv_d = 1.0 / d as f32;
    let sq = &mut sq[..d];
    for (((dxr, dar), xr), &r) in dx.chunks_exact_mut(d).zip(da.chunks_exact(d)).zip(x.chunks_exact(d)).zip(rinv) {
        for j in 0..d {
            let n = xr[j] * r;
            dg[j] += dar[j] * n;
            sq[j] = dar[j] * g[j] * n;
        }
        let m = kernels::sum(sq) * inv_d;
        for j in 0..d {
            let n = xr[j] * r;
            let dn = dar[j] * g[j];
            dxr[j] += r * (dn - n * m);
        }
    }
}

/// The Transformer for `vocab` symbols on the selected [`crate::device`]: the CPU
/// model, or the GPU model (which computes the same bits).
pub fn build(cfg: &TransformerConfig, vocab: usize) -> Result<Box<dyn Predictor>> {
    match crate::device::active() {
        crate::device::Device::Cpu => Ok(Box::new(Transformer::new(cfg, vocab)?)),
        #[cfg(feature = "cuda")]
        crate::device::Device::Cuda => Ok(Box::new(TransformerGpu::new(cfg, vocab)?)),
        #[cfg(not(feature = "cuda"))]
        crate::device::Device::Cuda => Err(crate::device::no_gpu_support()),
    }
}

impl Transformer {
    /// Builds the model for `vocab` symbols with weights drawn from `cfg.seed`.
    pub fn new(cfg: &TransformerConfig, vocab: usize) -> Result<Transformer> {
        cfg.validate()?;
        ensure!((2..=65536).contains(&vocab), "Transformer vocabulary of {vocab} symbols; expected 2..=65536");
        let (l_n, d, h, f, k, b, t_len, v) =
            (cfg.layers, cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch, cfg.seg_len, vocab);
        let m_len = cfg.mem_segs * t_len;
        let (e, dh, n, r) = (d / k, d / h, m_len + t_len, t_len * b);

        let mut n_params = 0;
        let mut take = |len: usize| {
            let off = n_params;
            n_params += len;
            off
        };
        let emb = take(v * e);
        let mut lp = Vec::with_capacity(l_n);
        for _ in 0..l_n {
            lp.push(LayerParams {
                g1: take(d),
                wqkv: take(d * 3 * d),
                wo: take(d * d),
                rel: take(h * n),
                g2: take(d),
                w1: take(d * f),
                w2: take(f * d),
            });
        }
        let gf = take(d);
        let w_out = take(d * v);
        let b_out = take(v);

        let per_layer = r * (2 + 3 * d + 3 * d + h * n + 3 * d + 3 * f) + 2 * b * h * n * dh;
        let floats = 4 * n_params
            + l_n * per_layer
            + (l_n + 1) * r * d
            + r * (1 + d + v)
            + r * (3 * d + 3 * d + f)
            + 2 * l_n * b * m_len * d
            + 4 * n * n.max(dh);
        let ring = cfg.retrain_len * b * (k + 1);
        ensure!(
            floats + ring / 2 <= MAX_FLOATS,
            "Transformer of {l_n} layers × {d}, vocabulary {v}, batch {b}, seg_len {t_len} needs \
             {floats} floats of memory, more than the limit of {MAX_FLOATS}"
        );

        // Seeded initialization, in a fixed order: embedding, layers, output.
        let mut params = vec![0.0f32; n_params];
        let mut init = Init::new(cfg.seed);
        init.uniform(&mut params[emb..emb + v * e], 1.0);
        // Residual branches start small (GPT-2's 1/√(2L)) so that the stream is the
        // embedding at first and each layer learns a correction to it.
        let depth = 1.0 / ((2 * l_n) as f32).sqrt();
        for p in &lp {
            let sd = (3.0 / d as f32).sqrt();
            let sf = (3.0 / f as f32).sqrt();
            params[p.g1..p.g1 + d].fill(1.0);
            init.uniform(&mut params[p.wqkv..p.wqkv + 3 * d * d], sd);
            init.uniform(&mut params[p.wo..p.wo + d * d], sd * depth);
            params[p.g2..p.g2 + d].fill(1.0);
            init.uniform(&mut params[p.w1..p.w1 + d * f], sd);
            init.uniform(&mut params[p.w2..p.w2 + f * d], sf * depth);
        }
        params[gf..gf + d].fill(1.0);
        init.uniform(&mut params[w_out..w_out + d * v], (3.0 / d as f32).sqrt());
        // ALiBi's slopes: head h prefers recent positions by alibi · 2^−(1 + ⌊8h/H⌋) per
        // position (exact powers of two, so no libm call decides a bit).
        if cfg.alibi > 0.0 {
            for p in &lp {
                for hh in 0..h {
                    let mut slope = cfg.alibi * 0.5;
                    for _ in 0..8 * hh / h {
                        slope *= 0.5;
                    }
                    for (delta, b) in params[p.rel + hh * n..p.rel + (hh + 1) * n].iter_mut().enumerate() {
                        *b = -slope * delta as f32;
                    }
                }
            }
        }
        let lr_groups = Self::lr_groups(cfg, &lp, emb, gf, w_out, n_params);

        let acts = (0..l_n)
            .map(|_| LayerAct {
                r1: vec![0.0; r],
                a1: vec![0.0; r * d],
                qkv: vec![0.0; r * 3 * d],
                kt: vec![0.0; b * h * dh * n],
                vc: vec![0.0; b * h * n * dh],
                p: vec![0.0; r * h * n],
                ao: vec![0.0; r * d],
                xm: vec![0.0; r * d],
                r2: vec![0.0; r],
                a2: vec![0.0; r * d],
                u: vec![0.0; r * f],
                th: vec![0.0; r * f],
                g: vec![0.0; r * f],
            })
            .collect();
        Ok(Transformer {
            cfg: cfg.clone(),
            v,
            e,
            dh,
            n,
            m: m_len,
            grads: vec![0.0; n_params],
            opt: Adam::new(n_params, cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.grad_clip),
            params,
            emb,
            lp,
            gf,
            w_out,
            b_out,
            lr_groups,
            x: (0..=l_n).map(|_| vec![0.0; r * d]).collect(),
            acts,
            rf: vec![0.0; r],
            af: vec![0.0; r * d],
            probs: vec![0.0; r * v],
            st: Steps::new(cfg),
            forwarded: false,
            mem_valid: 0,
            saved_mem: vec![0.0; 2 * l_n * b * m_len * d],
            dx: vec![0.0; r * d],
            da: vec![0.0; r * d],
            dqkv: vec![0.0; r * 3 * d],
            dao: vec![0.0; r * d],
            dff: vec![0.0; r * f],
            s_q: vec![0.0; t_len * dh],
            s_do: vec![0.0; t_len * dh],
            s_dq: vec![0.0; t_len * dh],
            s_p: vec![0.0; t_len * n],
            s_dp: vec![0.0; t_len * n],
            s_dk: vec![0.0; n * dh],
            s_dv: vec![0.0; n * dh],
            sq: vec![0.0; d.max(f).max(n)],
            timings: TransformerTimings::default(),
        })
    }

    /// The learning-rate multiple of every parameter, as contiguous ranges in order:
    /// the embedding at `lr_emb`, each layer's position biases at `lr_rel`, the output
    /// layer (weights and biases) at `lr_out`, everything else at 1.
    fn lr_groups(
        cfg: &TransformerConfig,
        lp: &[LayerParams],
        emb: usize,
        gf: usize,
        w_out: usize,
        n_params: usize,
    ) -> Vec<(Range<usize>, f32)> {
        let mut groups = vec![(emb..lp.first().map_or(gf, |p| p.g1), cfg.lr_emb)];
        for (l, p) in lp.iter().enumerate() {
            let end = lp.get(l + 1).map_or(gf, |next| next.g1);
            groups.push((p.g1..p.rel, 1.0));
            groups.push((p.rel..p.g2, cfg.lr_rel));
            groups.push((p.g2..end, 1.0));
        }
        groups.push((gf..w_out, 1.0));
        groups.push((w_out..n_params, cfg.lr_out));
        groups
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &TransformerConfig {
        &self.cfg
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Cumulative time spent in each phase.
    pub fn timings(&self) -> &TransformerTimings {
        &self.timings
    }

    /// Gradient steps taken (coding and retraining together).
    pub fn gradient_steps(&self) -> u64 {
        self.opt.steps()
    }

    /// Multiply-adds of one coding step's forward pass for the whole batch, with a full
    /// memory (the backward pass costs about twice as much); for reporting FLOP/s.
    pub fn forward_macs_per_step(&self) -> usize {
        let (d, f, t) = (self.cfg.d_model, self.cfg.d_ff, self.cfg.seg_len);
        // Keys attended on average: the memory plus half the segment.
        let keys = t + t / 2;
        self.cfg.batch * (self.cfg.layers * (4 * d * d + 2 * d * f + 2 * keys * d) + d * self.v)
    }

    /// Forward pass of the steps `t0..t1` of the segment, whose input groups are in
    /// `self.inputs`: fills those rows of every activation buffer, appends their keys and
    /// values to the cache and writes their probabilities. Rows get the same bits
    /// whether they are computed one step at a time or all at once.
    fn forward_rows(&mut self, t0: usize, t1: usize) {
        let start = Instant::now();
        let cfg = &self.cfg;
        let (d, h, f, k, b) = (cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch);
        let (e, dh, n, v, m) = (self.e, self.dh, self.n, self.v, self.m);
        let eps = cfg.norm_eps;
        let (r0, r1) = (t0 * b, t1 * b);
        let rows = r1 - r0;
        let scale = 1.0 / (dh as f32).sqrt();
        let params = &self.params;

        // Input: the concatenated embeddings of each row's group.
        let x0 = &mut self.x[0][r0 * d..r1 * d];
        for (row, xr) in (r0..r1).zip(x0.chunks_exact_mut(d)) {
            for j in 0..k {
                let sym = self.st.inputs[row * k + j] as usize;
                xr[j * e..(j + 1) * e].copy_from_slice(&params[self.emb + sym * e..self.emb + (sym + 1) * e]);
            }
        }
        let mut attn = Duration::ZERO;
        for l in 0..cfg.layers {
            let p = self.lp[l];
            let a = &mut self.acts[l];
            let (xs_in, xs_out) = self.x.split_at_mut(l + 1);
            let x_in = &xs_in[l][r0 * d..r1 * d];
            let x_out = &mut xs_out[0][r0 * d..r1 * d];
            rms_rows(&mut a.a1[r0 * d..r1 * d], &mut a.r1[r0..r1], x_in, &params[p.g1..p.g1 + d], d, eps, &mut self.sq);
            let qkv = &mut a.qkv[r0 * 3 * d..r1 * 3 * d];
            kernels::gemm_nn(qkv, &a.a1[r0 * d..r1 * d], &params[p.wqkv..p.wqkv + 3 * d * d], rows, d, 3 * d, false);
            // Append the keys and values to the cache, at position T + t.
            for (row, qr) in (r0..r1).zip(qkv.chunks_exact(3 * d)) {
                let (t, s) = (row / b, row % b);
                for hh in 0..h {
                    let base = (s * h + hh) * n * dh;
                    for (c, &kv) in qr[d + hh * dh..d + (hh + 1) * dh].iter().enumerate() {
                        a.kt[base + c * n + m + t] = kv;
                    }
                    let dst = base + (m + t) * dh;
                    a.vc[dst..dst + dh].copy_from_slice(&qr[2 * d + hh * dh..2 * d + (hh + 1) * dh]);
                }
            }
            // Attention, one row, stream and head at a time: row t attends to the valid
            // memory and to the segment's positions up to its own.
            let att_start = Instant::now();
            let rel = &params[p.rel..p.rel + h * n];
            let lo = m - self.mem_valid;
            for (row, qr) in (r0..r1).zip(a.qkv[r0 * 3 * d..r1 * 3 * d].chunks_exact(3 * d)) {
                let (t, s) = (row / b, row % b);
                let i = m + t;
                let hi = i + 1;
                for hh in 0..h {
                    let q = &qr[hh * dh..(hh + 1) * dh];
                    let base = (s * h + hh) * n * dh;
                    let prow = &mut a.p[(row * h + hh) * n..(row * h + hh + 1) * n];
                    prow[..lo].fill(0.0);
                    prow[hi..].fill(0.0);
                    let pv = &mut prow[lo..hi];
                    // Scores q·k_j for the attended keys: rows of kt scaled by q's
                    // elements, summed in the order c = 0, 1, … (a mul and an add each,
                    // IEEE-rounded; vectorized along the keys, the same bits at any width).
                    // One-row kernel calls would spend more in their set-up than in
                    // arithmetic at these sizes.
                    pv.fill(0.0);
                    for (c, &qc) in q.iter().enumerate() {
                        let krow = &a.kt[base + c * n + lo..base + c * n + hi];
                        for (sv, &kv) in pv.iter_mut().zip(krow) {
                            *sv += qc * kv;
                        }
                    }
                    let bias = &rel[hh * n..(hh + 1) * n];
                    for (j, sv) in (lo..hi).zip(pv.iter_mut()) {
                        *sv = *sv * scale + bias[i - j];
                    }
                    kernels::softmax(pv);
                    // o = Σ_j p_j v_j in the order j = lo, lo+1, … (vectorized along o).
                    let o = &mut a.ao[row * d + hh * dh..row * d + (hh + 1) * dh];
                    o.fill(0.0);
                    for (&pj, vrow) in pv.iter().zip(a.vc[base + lo * dh..base + hi * dh].chunks_exact(dh)) {
                        for (ov, &vv) in o.iter_mut().zip(vrow) {
                            *ov += pj * vv;
                        }
                    }
                }
            }
            attn += att_start.elapsed();
            // x ← x + o · Wo.
            let xm = &mut a.xm[r0 * d..r1 * d];
            xm.copy_from_slice(x_in);
            kernels::gemm_nn(xm, &a.ao[r0 * d..r1 * d], &params[p.wo..p.wo + d * d], rows, d, d, true);
            // Feed-forward: x ← x + GELU(RMSNorm(x) ⊙ g2 · W1) · W2.
            let a2 = &mut a.a2[r0 * d..r1 * d];
            rms_rows(a2, &mut a.r2[r0..r1], xm, &params[p.g2..p.g2 + d], d, eps, &mut self.sq);
            let u = &mut a.u[r0 * f..r1 * f];
            kernels::gemm_nn(u, a2, &params[p.w1..p.w1 + d * f], rows, d, f, false);
            let g = &mut a.g[r0 * f..r1 * f];
            let th = &mut a.th[r0 * f..r1 * f];
            // GELU(u) = u/2 · (1 + tanh(√(2/π)·(u + 0.044715·u³))); g holds the tanh's argument first.
            for (gv, &uv) in g.iter_mut().zip(u.iter()) {
                *gv = GELU_C * (uv + GELU_K * (uv * uv * uv));
            }
            kernels::tanh(th, g);
            for ((gv, &uv), &tv) in g.iter_mut().zip(u.iter()).zip(th.iter()) {
                *gv = 0.5 * uv * (1.0 + tv);
            }
            x_out.copy_from_slice(xm);
            kernels::gemm_nn(x_out, g, &params[p.w2..p.w2 + f * d], rows, f, d, true);
        }
        let mid = Instant::now();
        self.timings.forward_attention += attn;
        self.timings.forward_layers += (mid - start) - attn;

        // Output: softmax(RMSNorm(x) ⊙ gf · W_out + b_out).
        let l_n = self.cfg.layers;
        let af = &mut self.af[r0 * d..r1 * d];
        rms_rows(
            af,
            &mut self.rf[r0..r1],
            &self.x[l_n][r0 * d..r1 * d],
            &params[self.gf..self.gf + d],
            d,
            eps,
            &mut self.sq,
        );
        let probs = &mut self.probs[r0 * v..r1 * v];
        for row in probs.chunks_exact_mut(v) {
            row.copy_from_slice(&params[self.b_out..self.b_out + v]);
        }
        kernels::gemm_nn(probs, af, &params[self.w_out..self.w_out + d * v], rows, d, v, true);
        for row in probs.chunks_exact_mut(v) {
            kernels::softmax(row);
        }
        self.timings.forward_output += mid.elapsed();
    }

    /// Backward pass over the segment's `R` rows (forwarded, with targets): fills
    /// `self.grads` with the gradient of the mean cross-entropy. The memory is constant.
    fn backward(&mut self) {
        let start = Instant::now();
        let cfg = &self.cfg;
        let (d, h, f, k, b, t_len) = (cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch, cfg.seg_len);
        let (e, dh, n, v, l_n, m) = (self.e, self.dh, self.n, self.v, cfg.layers, self.m);
        let r = t_len * b;
        let scale = 1.0 / (dh as f32).sqrt();
        self.grads.fill(0.0);
        let params = &self.params;
        let grads = &mut self.grads;

        // dlogits = (p − onehot(target)) / R, in place; b_out's gradient is its column sum.
        let inv_r = 1.0 / r as f32;
        for (row, &y) in self.probs.chunks_exact_mut(v).zip(&self.st.targets) {
            row[y as usize] -= 1.0;
            for x in row.iter_mut() {
                *x *= inv_r;
            }
        }
        {
            let gb = &mut grads[self.b_out..self.b_out + v];
            for row in self.probs.chunks_exact(v) {
                for (g, &x) in gb.iter_mut().zip(row) {
                    *g += x;
                }
            }
        }
        let dl = &self.probs;
        kernels::gemm_tn(&mut grads[self.w_out..self.w_out + d * v], &self.af, dl, d, r, v, false);
        kernels::gemm_nt(&mut self.da, dl, &params[self.w_out..self.w_out + d * v], r, v, d, false);
        self.dx.fill(0.0);
        let (gr_gf, _) = grads[self.gf..].split_at_mut(d);
        rms_rows_backward(
            &mut self.dx,
            gr_gf,
            &self.da,
            &self.x[l_n],
            &self.rf,
            &params[self.gf..self.gf + d],
            d,
            &mut self.sq,
        );
        let mid = Instant::now();
        self.timings.backward_output += mid - start;

        for l in (0..l_n).rev() {
            let p = self.lp[l];
            let a = &self.acts[l];
            // Feed-forward: self.dx is the gradient w.r.t. this layer's output.
            kernels::gemm_tn(&mut grads[p.w2..p.w2 + f * d], &a.g, &self.dx, f, r, d, false);
            kernels::gemm_nt(&mut self.dff, &self.dx, &params[p.w2..p.w2 + f * d], r, d, f, false);
            for ((dv, &uv), &tv) in self.dff.iter_mut().zip(&a.u).zip(&a.th) {
                // d/du of u/2·(1 + tanh(c·(u + κu³))).
                let u2 = uv * uv;
                let dgelu = 0.5 * (1.0 + tv) + 0.5 * uv * (1.0 - tv * tv) * GELU_C * (1.0 + 3.0 * GELU_K * u2);
                *dv *= dgelu;
            }
            kernels::gemm_tn(&mut grads[p.w1..p.w1 + d * f], &a.a2, &self.dff, d, r, f, false);
            kernels::gemm_nt(&mut self.da, &self.dff, &params[p.w1..p.w1 + d * f], r, f, d, false);
            rms_rows_backward(
                &mut self.dx,
                &mut grads[p.g2..p.g2 + d],
                &self.da,
                &a.xm,
                &a.r2,
                &params[p.g2..p.g2 + d],
                d,
                &mut self.sq,
            );
            // Attention output projection: self.dx is now the gradient w.r.t. xm.
            kernels::gemm_tn(&mut grads[p.wo..p.wo + d * d], &a.ao, &self.dx, d, r, d, false);
            kernels::gemm_nt(&mut self.dao, &self.dx, &params[p.wo..p.wo + d * d], r, d, d, false);
            // Attention, per stream and head, over the T rows at once.
            let lo = m - self.mem_valid;
            let (sq_, sdo, sdq, sp, sdp, sdk, sdv) = (
                &mut self.s_q,
                &mut self.s_do,
                &mut self.s_dq,
                &mut self.s_p,
                &mut self.s_dp,
                &mut self.s_dk,
                &mut self.s_dv,
            );
            for s in 0..b {
                for hh in 0..h {
                    for t in 0..t_len {
                        let row = t * b + s;
                        sq_[t * dh..(t + 1) * dh]
                            .copy_from_slice(&a.qkv[row * 3 * d + hh * dh..row * 3 * d + (hh + 1) * dh]);
                        sdo[t * dh..(t + 1) * dh]
                            .copy_from_slice(&self.dao[row * d + hh * dh..row * d + (hh + 1) * dh]);
                        sp[t * n..(t + 1) * n].copy_from_slice(&a.p[(row * h + hh) * n..(row * h + hh + 1) * n]);
                    }
                    let base = (s * h + hh) * n * dh;
                    let kt = &a.kt[base..base + n * dh];
                    let vmat = &a.vc[base..base + n * dh];
                    // dP = dO · Vᵀ; dS = P ⊙ (dP − Σ P ⊙ dP), zero wherever P is.
                    kernels::gemm_nt(sdp, sdo, vmat, t_len, dh, n, false);
                    let rel_g = &mut grads[p.rel + hh * n..p.rel + (hh + 1) * n];
                    for t in 0..t_len {
                        let pr = &sp[t * n..(t + 1) * n];
                        let dpr = &mut sdp[t * n..(t + 1) * n];
                        let tmp = &mut self.sq[..n];
                        for ((x, &pv), &dpv) in tmp.iter_mut().zip(pr).zip(dpr.iter()) {
                            *x = pv * dpv;
                        }
                        let dot = kernels::sum(tmp);
                        let i = m + t;
                        for (j, (dpv, &pv)) in dpr.iter_mut().zip(pr).enumerate() {
                            let ds = pv * (*dpv - dot);
                            if (lo..=i).contains(&j) {
                                rel_g[i - j] += ds;
                            }
                            *dpv = ds * scale;
                        }
                    }
                    // dV = Pᵀ · dO; dQ = dS · K; dK = dSᵀ · Q (dS scaled above).
                    kernels::gemm_tn(sdv, sp, sdo, n, t_len, dh, false);
                    kernels::gemm_nt(sdq, sdp, kt, t_len, n, dh, false);
                    kernels::gemm_tn(sdk, sdp, sq_, n, t_len, dh, false);
                    // Scatter to dqkv; the memory's rows (0..T) of dK and dV are dropped.
                    for t in 0..t_len {
                        let row = (t * b + s) * 3 * d;
                        self.dqkv[row + hh * dh..row + (hh + 1) * dh].copy_from_slice(&sdq[t * dh..(t + 1) * dh]);
                        let kr = (m + t) * dh;
                        self.dqkv[row + d + hh * dh..row + d + (hh + 1) * dh].copy_from_slice(&sdk[kr..kr + dh]);
                        self.dqkv[row + 2 * d + hh * dh..row + 2 * d + (hh + 1) * dh]
                            .copy_from_slice(&sdv[kr..kr + dh]);
                    }
                }
            }
            kernels::gemm_tn(&mut grads[p.wqkv..p.wqkv + 3 * d * d], &a.a1, &self.dqkv, d, r, 3 * d, false);
            kernels::gemm_nt(&mut self.da, &self.dqkv, &params[p.wqkv..p.wqkv + 3 * d * d], r, 3 * d, d, false);
            rms_rows_backward(
                &mut self.dx,
                &mut grads[p.g1..p.g1 + d],
                &self.da,
                &self.x[l],
                &a.r1,
                &params[p.g1..p.g1 + d],
                d,
                &mut self.sq,
            );
        }
        // Embeddings: each slot of a row's group gets its part of the input's gradient.
        for (row, dxr) in self.dx.chunks_exact(d).enumerate() {
            for j in 0..k {
                let sym = self.st.inputs[row * k + j] as usize;
                let ge = &mut grads[self.emb + sym * e..self.emb + (sym + 1) * e];
                for (gv, &x) in ge.iter_mut().zip(&dxr[j * e..(j + 1) * e]) {
                    *gv += x;
                }
            }
        }
        self.timings.backward_layers += mid.elapsed();
    }

    /// The segment's keys and values become the memory of the next segment.
    fn shift_memory(&mut self) {
        let t_len = self.cfg.seg_len;
        let (n, dh) = (self.n, self.dh);
        for a in self.acts.iter_mut() {
            // Each chunk is [memory | segment] along the positions (`unit` floats each):
            // everything moves T positions down, the oldest segment falls off.
            for (c, unit) in [(&mut a.kt, 1), (&mut a.vc, dh)] {
                let chunk = n * unit;
                for base in (0..c.len()).step_by(chunk) {
                    c.copy_within(base + t_len * unit..base + chunk, base);
                }
            }
        }
        self.mem_valid = (self.mem_valid + t_len).min(self.m);
    }

    /// Backward, Adam step at learning rate `lr`, memory shift.
    fn train_segment(&mut self, lr: f32) {
        self.backward();
        let start = Instant::now();
        self.opt.step_groups(&mut self.params, &self.grads, lr, &self.lr_groups);
        self.timings.optimizer += start.elapsed();
        self.shift_memory();
    }

    /// One retraining pass over the last `retrain_len` steps of every stream.
    fn retrain(&mut self) {
        let start = Instant::now();
        let (b, t_len, d) = (self.cfg.batch, self.cfg.seg_len, self.cfg.d_model);
        let (n, dh, m) = (self.n, self.dh, self.m);
        // Save the coding pass's memory: the first M positions of each chunk of the caches.
        let mut off = 0;
        for a in &self.acts {
            for (c, unit) in [(&a.kt, 1), (&a.vc, dh)] {
                let (chunk, mem) = (n * unit, m * unit);
                for base in (0..c.len()).step_by(chunk) {
                    self.saved_mem[off..off + mem].copy_from_slice(&c[base..base + mem]);
                    off += mem;
                }
            }
        }
        debug_assert_eq!(off, 2 * self.cfg.layers * b * m * d);
        let saved_valid = self.mem_valid;
        self.mem_valid = 0;
        for seg in 0..self.st.retrain_segments(&self.cfg) {
            let lr = self.st.load_retrain_segment(&self.cfg, seg);
            self.forward_rows(0, t_len);
            self.train_segment(lr);
        }
        // Restore the coding pass's memory.
        let mut off = 0;
        for a in self.acts.iter_mut() {
            for (c, unit) in [(&mut a.kt, 1), (&mut a.vc, dh)] {
                let (chunk, mem) = (n * unit, m * unit);
                for base in (0..c.len()).step_by(chunk) {
                    c[base..base + mem].copy_from_slice(&self.saved_mem[off..off + mem]);
                    off += mem;
                }
            }
        }
        self.mem_valid = saved_valid;
        self.timings.retrain += start.elapsed();
    }

    /// Forward pass of step `st.t` from the streams' input groups.
    fn forward_step(&mut self) {
        self.st.begin_step(&self.cfg);
        let t = self.st.t;
        self.forward_rows(t, t + 1);
        self.forwarded = true;
    }
}

impl Predictor for Transformer {
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
        let t = self.st.t;
        let len = probs.len().min(n);
        probs[..len].copy_from_slice(&self.probs[t * n..t * n + len]);
    }

    fn update(&mut self, symbols: &[u16]) {
        if !self.forwarded {
            self.forward_step();
        }
        self.forwarded = false;
        if let Some(end) = self.st.record(&self.cfg, self.v, symbols) {
            self.train_segment(end.lr);
            if end.retrain {
                self.retrain();
            }
        }
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        let t = &self.timings;
        vec![
            ("forward layers", t.forward_layers.as_secs_f64()),
            ("forward attention", t.forward_attention.as_secs_f64()),
            ("forward output", t.forward_output.as_secs_f64()),
            ("backward output", t.backward_output.as_secs_f64()),
            ("backward layers", t.backward_layers.as_secs_f64()),
            ("optimizer", t.optimizer.as_secs_f64()),
            ("retrain (all phases)", t.retrain.as_secs_f64()),
        ]
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod candle_reference;
