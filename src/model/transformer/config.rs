//! [`TransformerConfig`]: every hyperparameter of the Transformer predictor, its presets,
//! and its fixed byte layout in the container header.
//!
//! The header layout (version 2, 101 bytes, all little-endian; floats are exact f32 bits):
//!
//! ```text
//! offset size field
//!      0    1 version       = 2
//!      1    4 layers        u32, 1..=32
//!      5    4 d_model       u32, 1..=4096   divisible by heads and by group
//!      9    4 heads         u32, 1..=64
//!     13    4 d_ff          u32, 1..=16384  feed-forward width
//!     17    4 group         u32, 1..=16     symbols concatenated per input position
//!     21    4 batch         u32, 1..=1024   streams coded in lock step
//!     25    4 seg_len       u32, 1..=1024   steps per gradient step
//!     29    4 retrain_every u32, 0..=2^24   steps between retraining passes; 0 = off
//!     33    4 retrain_len   u32, 0..=2^24   steps revisited by each pass
//!     37    4 mem_segs      u32, 1..=16     memory length, in segments
//!     41    4 lr            f32, (0, 1]
//!     45    4 lr_min        f32, [0, lr]
//!     49    4 lr_decay      f32, [0, 1e12]  0 = constant learning rate
//!     53    4 retrain_lr    f32, [0, 1]
//!     57    4 beta1         f32, [0, 1)
//!     61    4 beta2         f32, [0, 1)
//!     65    4 adam_eps      f32, (0, 1]
//!     69    4 grad_clip     f32, [0, 1e6]   0 = no clipping
//!     73    4 norm_eps      f32, (0, 1]
//!     77    4 alibi         f32, [0, 1e3]   initial position bias slope; 0 = zeros
//!     81    4 lr_emb        f32, (0, 1e4]   learning-rate multiple of the embedding
//!     85    4 lr_out        f32, (0, 1e4]   … of the output layer
//!     89    4 lr_rel        f32, (0, 1e4]   … of the position biases
//!     93    8 seed          u64
//! ```
//!
//! Version 1 (85 bytes, written before 2026-11-27) is version 2 without the four fields
//! at 77..93, the seed at 77: it reads as `alibi` 0 and multiples 1, which is what its
//! files were coded with.
//!
//! ```
//! use nnz::model::transformer::TransformerConfig;
//! let cfg = TransformerConfig::preset("tiny").unwrap();
//! let bytes = cfg.to_bytes();
//! assert_eq!(bytes.len(), TransformerConfig::BYTES);
//! assert_eq!(TransformerConfig::from_bytes(&bytes).unwrap(), cfg);
//! ```

use anyhow::{bail, ensure, Context, Result};

/// Hyperparameters of the Transformer predictor. With the vocabulary size they define
/// the model and its training completely; all of them travel in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Number of Transformer layers, `L`.
    pub layers: usize,
    /// Width of the residual stream, `d`.
    pub d_model: usize,
    /// Attention heads, `H`; each is `d / H` wide.
    pub heads: usize,
    /// Width of the feed-forward hidden layer, `F`.
    pub d_ff: usize,
    /// Symbols per input position, `k` (TRACE's byte grouping): the input at step `t` is
    /// the concatenation of the embeddings of the last `k` symbols, each `d / k` wide.
    /// 1 is NNCP.
    pub group: usize,
    /// Streams coded in lock step, `B`.
    pub batch: usize,
    /// Steps per segment, `T`: one gradient step per segment.
    pub seg_len: usize,
    /// Memory length in segments: the keys and values of the last `mem_segs` segments
    /// (`M = mem_segs · T` positions) are attended to besides the current segment's.
    pub mem_segs: usize,
    /// Steps between two retraining passes (a multiple of `seg_len`); 0 disables them.
    pub retrain_every: usize,
    /// Steps (per stream) revisited by each retraining pass (a multiple of `seg_len`,
    /// at most `retrain_every`... or more: the history is kept that long).
    pub retrain_len: usize,
    /// Initial learning rate of the coding pass.
    pub lr: f32,
    /// Floor of both learning rates.
    pub lr_min: f32,
    /// Decay time constant in gradient steps: `lr_n = max(lr_min, lr / (1 + n / lr_decay))`;
    /// 0 keeps `lr` constant. The retraining pass decays on its own step counter.
    pub lr_decay: f32,
    /// Initial learning rate of the retraining pass.
    pub retrain_lr: f32,
    /// Adam's first-moment decay (NNCP: 0).
    pub beta1: f32,
    /// Adam's second-moment decay (NNCP: 0.9999).
    pub beta2: f32,
    /// Adam's ε.
    pub adam_eps: f32,
    /// Each gradient element is clamped to `±grad_clip` before Adam; 0 disables it.
    pub grad_clip: f32,
    /// ε of the RMS normalizations, added to the mean square.
    pub norm_eps: f32,
    /// Initial relative-position bias, as ALiBi's (Press et al. 2022): head `h` of `H`
    /// starts at `bias_h[δ] = −alibi · 2^−(1 + ⌊8h/H⌋) · δ`, a preference for recent
    /// positions, steep in the first heads and nearly flat in the last, which training
    /// then adjusts; 0 starts every bias at 0.
    pub alibi: f32,
    /// Multiple of the learning rate for the embedding table. A symbol's embedding
    /// has a gradient only where the symbol occurs, so at the shared rate the rare ones
    /// hardly move; NNCP-sized inputs are long enough for that, ours are not.
    pub lr_emb: f32,
    /// Multiple of the learning rate for the output layer (weights and biases).
    pub lr_out: f32,
    /// Multiple of the learning rate for the relative-position biases.
    pub lr_rel: f32,
    /// Seed of the weight initialization.
    pub seed: u64,
}

const MAX_LAYERS: usize = 32;
const MAX_D_MODEL: usize = 4096;
const MAX_HEADS: usize = 64;
const MAX_D_FF: usize = 16384;
const MAX_GROUP: usize = 16;
const MAX_BATCH: usize = 1024;
const MAX_SEG_LEN: usize = 1024;
const MAX_RETRAIN: usize = 1 << 24;
const MAX_MEM_SEGS: usize = 16;
const VERSION: u8 = 2;
/// Bound on `alibi` and on the learning-rate multiples, far above any useful value.
const MAX_ALIBI: f32 = 1e3;
const MAX_LR_MULT: f32 = 1e4;

impl TransformerConfig {
    /// Length of [`TransformerConfig::to_bytes`]'s output.
    pub const BYTES: usize = 101;
    /// Length of a version-1 config (still read).
    pub const BYTES_V1: usize = 85;

    /// The preset names accepted by [`TransformerConfig::preset`].
    pub const PRESETS: [&'static str; 5] = ["tiny", "fast", "default", "large", "bytes"];

    /// A named preset; [`TransformerConfig::preset_for`] adapts it to the input.
    /// - `tiny`: 1 layer, d 16, 2 heads, batch 2, seg_len 4, retraining every 16 steps
    ///   over the last 16 — for tests.
    /// - `fast`: 2 layers, d 128, 8 heads, F 512, batch 16, seg_len 16.
    /// - `default`: 3 layers, d 192, 12 heads, F 768, batch 16, seg_len 16.
    /// - `large` (meant for GPUs, far too slow for a CPU): 8 layers, d 512, 16 heads,
    ///   F 2048, batch 32, seg_len 32, a memory of 2 segments, retraining every 8192
    ///   steps over the last 8192 (twice NNCP's default 4 × 256 profile in depth and
    ///   width). Not tuned: on this CPU it runs at a few hundred bytes per second, and
    ///   the GPU path, which computes the same bits, is not yet faster than the CPU.
    /// - `bytes`: TRACE-like byte model (meant for vocabulary 256, no tokenizer): 1 layer,
    ///   d 256 made of four 64-wide byte embeddings (group 4), 8 heads, F 1024, seg_len 32.
    ///
    /// Retraining is off in the CPU presets: on book1 (228k symbols) a pass over the last
    /// 2048 steps every 4096 steps cost 45% more time and gained nothing (2.2807 → 2.2823
    /// bpb); it pays on inputs much larger than the model's memory of them.
    pub fn preset(name: &str) -> Result<TransformerConfig> {
        let base = TransformerConfig {
            layers: 1,
            d_model: 16,
            heads: 2,
            d_ff: 32,
            group: 1,
            batch: 2,
            seg_len: 4,
            mem_segs: 1,
            retrain_every: 16,
            retrain_len: 16,
            lr: 3e-3,
            lr_min: 3e-4,
            lr_decay: 0.0,
            retrain_lr: 1e-3,
            beta1: 0.0,
            beta2: 0.9999,
            adam_eps: 1e-8,
            grad_clip: 0.0,
            norm_eps: 1e-5,
            alibi: 1.0,
            lr_emb: 40.0,
            lr_out: 3.0,
            lr_rel: 10.0,
            seed: 0x6e6e_7a00_0000_0002,
        };
        // What the CPU presets share, tuned on calgary/book1 tokenized (see
        // examples/transformer_bench.rs and the module docs): Adam with β2 = 0.9999 beats
        // 0.99 (2.2758 vs 2.2807 bpb) and 0.999 ties; the decay hardly matters. With the
        // per-group rates (2026-11-27) lr 1.5e-3 beats 1e-3 and 2e-3 (2.1819 vs 2.1821
        // and 2.1846 with 4 streams); alibi 1, 2 and 4 tie. The embedding's multiple:
        // 40 and 80 trade places (book1 2.1983 / 2.1979 with 8 streams; the whole of
        // silesia/dickens 2,183,241 / 2,186,762 bytes), 5 → 2.2154, 20 → 2.2015.
        let cpu = TransformerConfig {
            batch: 16,
            seg_len: 16,
            retrain_every: 0,
            retrain_len: 0,
            lr: 1.5e-3,
            lr_min: 1e-4,
            lr_decay: 4000.0,
            retrain_lr: 1e-3,
            ..base.clone()
        };
        let cfg = match name {
            "tiny" => base,
            "fast" => TransformerConfig { layers: 2, d_model: 128, heads: 8, d_ff: 512, ..cpu },
            "default" => TransformerConfig { layers: 3, d_model: 192, heads: 12, d_ff: 768, ..cpu },
            "large" => TransformerConfig {
                layers: 8,
                d_model: 512,
                heads: 16,
                d_ff: 2048,
                batch: 32,
                seg_len: 32,
                mem_segs: 2,
                retrain_every: 8192,
                retrain_len: 8192,
                lr: 1e-3,
                retrain_lr: 3e-4,
                lr_decay: 20_000.0,
                ..cpu
            },
            "bytes" => {
                TransformerConfig { layers: 1, d_model: 256, heads: 8, d_ff: 1024, group: 4, seg_len: 32, ..cpu }
            }
            _ => bail!("unknown Transformer preset {name:?}; expected one of {:?}", Self::PRESETS),
        };
        Ok(cfg)
    }

    /// [`TransformerConfig::preset`] adapted to an input of `n_symbols` symbols from a
    /// `vocab`-symbol alphabet:
    ///
    /// - Fewer streams for smaller inputs (each stream at least 32k symbols with `fast`,
    ///   64k with `default`, at least 2 streams). A model that learns fast gains more
    ///   from long streams than from wide products: on book1 (228k symbols, `default`,
    ///   ideal bpb) 8 / 4 / 2 streams give 2.1910 / 2.1797 / 2.1736 at 26 / 35 / 52 CPU
    ///   seconds (16k symbols per stream was the rule before the per-group rates).
    /// - For `fast` and `default`, a learning rate that decays sooner on smaller inputs:
    ///   `lr_decay` is one gradient step per 256 input symbols, between 1000 and the
    ///   preset's 4000. On book1 (`default`, 4 streams) 4000 / 2000 / 1000 / 500 give
    ///   2.1800 / 2.1758 / 2.1726 / 2.1725 and dickens' first 2 MB 1.8643 with 4000 and
    ///   1.8609 with 1000, but the whole of dickens (3M symbols) is better with 4000:
    ///   2,186,762 bytes against 2,191,474 with 1000 (the floor at 2e-4).
    ///
    /// ```
    /// use nnz::model::transformer::TransformerConfig;
    /// let cfg = |p, n| TransformerConfig::preset_for(p, n, 16384).unwrap();
    /// assert_eq!((cfg("default", 100_000_000).batch, cfg("default", 100_000_000).lr_decay), (16, 4000.0));
    /// assert_eq!((cfg("default", 228_439).batch, cfg("default", 228_439).lr_decay), (2, 1000.0));
    /// assert_eq!((cfg("default", 600_000).batch, cfg("default", 600_000).lr_decay), (8, 2343.0));
    /// assert_eq!((cfg("fast", 228_439).batch, cfg("fast", 228_439).lr_decay), (4, 1000.0));
    /// assert_eq!(cfg("default", 1_000).batch, 2);
    /// assert_eq!(cfg("tiny", 1_000_000).batch, 2);
    /// ```
    pub fn preset_for(name: &str, n_symbols: u64, vocab: usize) -> Result<TransformerConfig> {
        let mut cfg = Self::preset(name)?;
        let _ = vocab;
        if name == "tiny" {
            return Ok(cfg);
        }
        if matches!(name, "fast" | "default") {
            // Whole steps (the cast is exact below 2^24, and the clamp caps it far below).
            let steps = (n_symbols / 256) as f32;
            cfg.lr_decay = steps.clamp(1000.0, cfg.lr_decay);
        }
        let min_stream = if name == "default" { 65_536 } else { 32_768 };
        let want = (n_symbols / min_stream).max(1);
        let mut batch = 1usize;
        while batch * 2 <= cfg.batch && (batch * 2) as u64 <= want {
            batch *= 2;
        }
        cfg.batch = batch.max(2).min(cfg.batch);
        Ok(cfg)
    }

    /// Checks every field against its bounds, so that a corrupt or hostile header is
    /// rejected before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        let int = |name: &str, v: usize, min: usize, max: usize| -> Result<()> {
            ensure!((min..=max).contains(&v), "Transformer {name} = {v} is out of range {min}..={max}");
            Ok(())
        };
        int("layers", self.layers, 1, MAX_LAYERS)?;
        int("d_model", self.d_model, 1, MAX_D_MODEL)?;
        int("heads", self.heads, 1, MAX_HEADS)?;
        int("d_ff", self.d_ff, 1, MAX_D_FF)?;
        int("group", self.group, 1, MAX_GROUP)?;
        int("batch", self.batch, 1, MAX_BATCH)?;
        int("seg_len", self.seg_len, 1, MAX_SEG_LEN)?;
        int("retrain_every", self.retrain_every, 0, MAX_RETRAIN)?;
        int("retrain_len", self.retrain_len, 0, MAX_RETRAIN)?;
        int("mem_segs", self.mem_segs, 1, MAX_MEM_SEGS)?;
        ensure!(
            self.d_model.is_multiple_of(self.heads),
            "Transformer d_model = {} is not divisible by heads = {}",
            self.d_model,
            self.heads
        );
        ensure!(
            self.d_model.is_multiple_of(self.group),
            "Transformer d_model = {} is not divisible by group = {}",
            self.d_model,
            self.group
        );
        ensure!(
            self.retrain_every.is_multiple_of(self.seg_len) && self.retrain_len.is_multiple_of(self.seg_len),
            "Transformer retrain_every = {} and retrain_len = {} must be multiples of seg_len = {}",
            self.retrain_every,
            self.retrain_len,
            self.seg_len
        );
        ensure!(
            (self.retrain_every == 0) == (self.retrain_len == 0),
            "Transformer retrain_every = {} and retrain_len = {}: both or neither must be 0",
            self.retrain_every,
            self.retrain_len
        );
        let float = |name: &str, v: f32, lo: f32, hi: f32, lo_open: bool, hi_open: bool| {
            let ok = v.is_finite() && if lo_open { v > lo } else { v >= lo } && if hi_open { v < hi } else { v <= hi };
            let (l, h) = (if lo_open { "(" } else { "[" }, if hi_open { ")" } else { "]" });
            ensure!(ok, "Transformer {name} = {v} is out of range {l}{lo}, {hi}{h}");
            Ok(())
        };
        float("lr", self.lr, 0.0, 1.0, true, false)?;
        float("lr_min", self.lr_min, 0.0, self.lr, false, false)?;
        float("lr_decay", self.lr_decay, 0.0, 1e12, false, false)?;
        float("retrain_lr", self.retrain_lr, 0.0, 1.0, false, false)?;
        float("beta1", self.beta1, 0.0, 1.0, false, true)?;
        float("beta2", self.beta2, 0.0, 1.0, false, true)?;
        float("adam_eps", self.adam_eps, 0.0, 1.0, true, false)?;
        float("grad_clip", self.grad_clip, 0.0, 1e6, false, false)?;
        float("norm_eps", self.norm_eps, 0.0, 1.0, true, false)?;
        float("alibi", self.alibi, 0.0, MAX_ALIBI, false, false)?;
        float("lr_emb", self.lr_emb, 0.0, MAX_LR_MULT, true, false)?;
        float("lr_out", self.lr_out, 0.0, MAX_LR_MULT, true, false)?;
        float("lr_rel", self.lr_rel, 0.0, MAX_LR_MULT, true, false)?;
        Ok(())
    }

    /// The fixed little-endian header layout drawn in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.push(VERSION);
        for v in [
            self.layers,
            self.d_model,
            self.heads,
            self.d_ff,
            self.group,
            self.batch,
            self.seg_len,
            self.retrain_every,
            self.retrain_len,
            self.mem_segs,
        ] {
            // validate() bounds every count far below u32::MAX.
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for v in [
            self.lr,
            self.lr_min,
            self.lr_decay,
            self.retrain_lr,
            self.beta1,
            self.beta2,
            self.adam_eps,
            self.grad_clip,
            self.norm_eps,
            self.alibi,
            self.lr_emb,
            self.lr_out,
            self.lr_rel,
        ] {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&self.seed.to_le_bytes());
        debug_assert_eq!(out.len(), Self::BYTES);
        out
    }

    /// Parses and validates [`TransformerConfig::to_bytes`]'s layout, or version 1's.
    pub fn from_bytes(b: &[u8]) -> Result<TransformerConfig> {
        ensure!(!b.is_empty(), "Transformer config is empty");
        let (version, len) = (b[0], b.len());
        ensure!(
            version == 1 || version == VERSION,
            "Transformer config version {version} is not supported (this build reads versions 1 and {VERSION})"
        );
        let want = if version == 1 { Self::BYTES_V1 } else { Self::BYTES };
        ensure!(len == want, "Transformer config version {version} is {len} bytes, expected {want}");
        let mut pos = 1;
        let mut word = || {
            let w = u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
            w
        };
        let mut ints = [0usize; 10];
        for v in ints.iter_mut() {
            *v = word() as usize;
        }
        // Version 1 had neither the position biases' initial slope nor the multiples.
        let mut fl = [0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let n_floats = if version == 1 { 9 } else { fl.len() };
        for v in fl[..n_floats].iter_mut() {
            *v = f32::from_bits(word());
        }
        let seed_bytes: [u8; 8] = b[len - 8..].try_into().context("Transformer config seed")?;
        let [layers, d_model, heads, d_ff, group, batch, seg_len, retrain_every, retrain_len, mem_segs] = ints;
        let [lr, lr_min, lr_decay, retrain_lr, beta1, beta2, adam_eps, grad_clip, norm_eps, alibi, lr_emb, lr_out, lr_rel] =
            fl;
        let cfg = TransformerConfig {
            layers,
            d_model,
            heads,
            d_ff,
            group,
            batch,
            seg_len,
            retrain_every,
            retrain_len,
            mem_segs,
            lr,
            lr_min,
            lr_decay,
            retrain_lr,
            beta1,
            beta2,
            adam_eps,
            grad_clip,
            norm_eps,
            alibi,
            lr_emb,
            lr_out,
            lr_rel,
            seed: u64::from_le_bytes(seed_bytes),
        };
        cfg.validate().context("invalid Transformer config in header")?;
        Ok(cfg)
    }

    /// Learning rate of gradient step `n` (0-based) of a schedule starting at `lr0`:
    /// `max(lr_min, lr0 / (1 + n / lr_decay))`.
    pub fn lr_at(&self, lr0: f32, n: u64) -> f32 {
        crate::model::adam::decayed_lr(lr0, n, self.lr_decay, self.lr_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for name in TransformerConfig::PRESETS {
            let cfg = TransformerConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let b = cfg.to_bytes();
            assert_eq!(b.len(), TransformerConfig::BYTES);
            assert_eq!(TransformerConfig::from_bytes(&b).unwrap(), cfg);
        }
        assert!(TransformerConfig::preset("huge").is_err());
    }

    /// Version 1 is version 2 without `alibi` and the multiples: it reads as 0 and 1s.
    #[test]
    fn version_1_reads_as_no_alibi_and_unit_multiples() {
        let cfg = TransformerConfig::preset("default").unwrap();
        let v2 = cfg.to_bytes();
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&v2[1..77]);
        v1.extend_from_slice(&v2[93..]);
        assert_eq!(v1.len(), TransformerConfig::BYTES_V1);
        let old = TransformerConfig::from_bytes(&v1).unwrap();
        let want = TransformerConfig { alibi: 0.0, lr_emb: 1.0, lr_out: 1.0, lr_rel: 1.0, ..cfg };
        assert_eq!(old, want);
    }

    #[test]
    fn garbage_is_rejected() {
        let good = TransformerConfig::preset("default").unwrap().to_bytes();
        assert!(TransformerConfig::from_bytes(&[]).is_err());
        assert!(TransformerConfig::from_bytes(&good[..80]).is_err());
        let mut b = good.clone();
        b[0] = 3;
        assert!(TransformerConfig::from_bytes(&b).is_err());
        // A version-1 length with the version-2 byte, and the reverse.
        let mut b = good[..TransformerConfig::BYTES_V1].to_vec();
        assert!(TransformerConfig::from_bytes(&b).is_err());
        b[0] = 1;
        b.extend_from_slice(&[0; TransformerConfig::BYTES - TransformerConfig::BYTES_V1]);
        assert!(TransformerConfig::from_bytes(&b).is_err());
        // A zero learning-rate multiple would freeze the embedding.
        let mut cfg = TransformerConfig::preset("default").unwrap();
        cfg.lr_emb = 0.0;
        let err = TransformerConfig::from_bytes(&cfg.to_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("lr_emb"), "{err:#}");
        // heads = 5 does not divide d_model = 192.
        let mut b = good.clone();
        b[9..13].copy_from_slice(&5u32.to_le_bytes());
        let err = TransformerConfig::from_bytes(&b).unwrap_err();
        assert!(format!("{err:#}").contains("heads"), "{err:#}");
        // Every single-byte corruption either parses to a valid config or errors.
        for i in 0..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                if let Ok(cfg) = TransformerConfig::from_bytes(&b) {
                    cfg.validate().unwrap();
                }
            }
        }
    }
}
