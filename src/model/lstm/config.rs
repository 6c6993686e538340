//! [`LstmConfig`]: every hyperparameter of the LSTM predictor, its presets, and its
//! byte layout in the container header.
//!
//! It is written in every frame of the `lstm`, `lstm+ngram` and `bytes` models, so the
//! layout is compact (versions 2 and 3): the counts as LEB128 varints (as in the frame header,
//! [`crate::format::write_varint`]; only the minimal encoding is accepted) and, of the ten
//! floats and the seed, only those that differ from a fixed reference value, flagged in a
//! bit mask. The floats that are written are exact f32 bits, so every value round-trips
//! bit for bit. The `default` preset over bytes takes 8 bytes (version 1: 69).
//!
//! ```text
//! size  field
//!    1  version      = 2, or 3 when lr_emb is not 1
//!  1-5  layers       varint, 1..=16
//!  1-5  hidden       varint, 1..=2048   cells per layer
//!  1-5  embed        varint, 1..=1024   embedding width
//!  1-5  batch        varint, 1..=1024   streams coded in lock step
//!  1-5  seg_len      varint, 1..=1024   time steps per gradient step
//!  1-2  present      varint, < 2^11 (version 3: < 2^12, bit 11 set): bit i set = field
//!                    i below follows; clear = field i has its reference value (and must
//!                    not be written out)
//!       bit field        size  reference   range
//!         0 lr           f32   0.01        (0, 1]
//!         1 lr_min       f32   0.001       [0, lr]
//!         2 lr_decay     f32   500         [0, 1e12]  0 = constant learning rate
//!         3 beta1        f32   0           [0, 1)
//!         4 beta2        f32   0.99        [0, 1)
//!         5 adam_eps     f32   1e-8        (0, 1]
//!         6 grad_clip    f32   0           [0, 1e6]   0 = no clipping
//!         7 ln_eps       f32   1e-5        (0, 1]
//!         8 forget_bias  f32   0           [-16, 16]
//!         9 out_grad_min f32   2e-5        [0, 1)     0 = exact output-layer gradient
//!        10 seed         u64   0x6e6e7a0000000001
//!        11 lr_emb       f32   1           (0, 1e4]   version 3 only
//! ```
//!
//! A configuration whose `lr_emb` is 1 is written as version 2, so the models that do not
//! use it (bytes, and every file written before it existed) keep their bytes.
//!
//! Floats are little-endian f32 bits, the seed a little-endian u64; a float equals its
//! reference when its bits do (so -0.0 is written out). The references are those of the
//! `fast` and `default` presets over bytes, and are part of the format: they never change
//! with the presets.
//!
//! Version 1 (read, no longer written) was 69 bytes of fixed fields, all little-endian: the
//! version byte (1), the five counts as u32, the ten floats as f32 bits in the order
//! above, the seed as u64.
//!
//! ```
//! use nnz::model::lstm::LstmConfig;
//! let cfg = LstmConfig::preset("default").unwrap();
//! let bytes = cfg.to_bytes();
//! assert_eq!(bytes, [2, 3, 0xc0, 0x01, 32, 16, 10, 0]);
//! assert_eq!(LstmConfig::from_bytes(&bytes).unwrap(), cfg);
//! ```

use crate::format::{read_varint, write_varint};
use anyhow::{bail, ensure, Context, Result};

/// Hyperparameters of the LSTM predictor. Together with the vocabulary size they
/// define the model and its training completely; all of them travel in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmConfig {
    /// Number of stacked LSTM layers, `L`.
    pub layers: usize,
    /// Cells per layer, `H`.
    pub hidden: usize,
    /// Width of the symbol embedding, `D`, fed to every layer.
    pub embed: usize,
    /// Streams coded in lock step, `B` (the batch of every matrix product).
    pub batch: usize,
    /// Time steps between gradient steps, `T`: truncated BPTT runs over this many steps.
    pub seg_len: usize,
    /// Initial learning rate.
    pub lr: f32,
    /// Floor of the learning rate.
    pub lr_min: f32,
    /// Decay time constant in gradient steps: `lr_n = max(lr_min, lr / (1 + n / lr_decay))`;
    /// 0 keeps `lr` constant.
    pub lr_decay: f32,
    /// Adam's first-moment decay (NNCP: 0, which also saves the moment's memory).
    pub beta1: f32,
    /// Adam's second-moment decay (NNCP: 0.9999).
    pub beta2: f32,
    /// Adam's ε, added to `√v`.
    pub adam_eps: f32,
    /// Each gradient element is clamped to `±grad_clip` before Adam; 0 disables it.
    pub grad_clip: f32,
    /// ε of the layer normalizations, added to the variance.
    pub ln_eps: f32,
    /// Initial bias of the forget gate (after its layer norm): higher = longer memory at start.
    pub forget_bias: f32,
    /// Output-layer gradient sparsity: in each segment, the output columns (symbols) whose
    /// probability stayed below this in every row and that were never a target get no
    /// gradient, and the backward pass skips them. 0 keeps the exact gradient. With a
    /// 16k-symbol vocabulary the output layer is most of the cost; this removes most of
    /// its backward pass.
    pub out_grad_min: f32,
    /// Multiple of the learning rate for the embedding table (version 3; 1 before). A
    /// symbol's embedding row only has a gradient where the symbol occurs, so with
    /// thousands of symbols the rare ones learn slowly at the shared rate; 3 for tokens
    /// ([`LstmConfig::preset_for`]).
    pub lr_emb: f32,
    /// Seed of the weight initialization.
    pub seed: u64,
}

/// Bounds checked by [`LstmConfig::validate`], named so that errors can quote them.
const MAX_LAYERS: usize = 16;
const MAX_HIDDEN: usize = 2048;
const MAX_EMBED: usize = 1024;
const MAX_BATCH: usize = 1024;
const MAX_SEG_LEN: usize = 1024;
/// The newest version [`LstmConfig::to_bytes`] writes (with `lr_emb` ≠ 1; version 2 otherwise).
const VERSION: u8 = 3;
/// The bound on `lr_emb`, far above any useful value.
const MAX_LR_EMB: f32 = 1e4;
/// Length of a version 1 configuration (fixed fields).
const V1_BYTES: usize = 69;
/// Names of the optional fields of versions 2 and 3 (bit 11: version 3 only), in the order of their bits.
const FIELDS: [&str; 12] = [
    "lr",
    "lr_min",
    "lr_decay",
    "beta1",
    "beta2",
    "adam_eps",
    "grad_clip",
    "ln_eps",
    "forget_bias",
    "out_grad_min",
    "seed",
    "lr_emb",
];
/// Version 2's reference values of the ten floats (format constants: never change them).
const FLOAT_REFS: [f32; 10] = [1e-2, 1e-3, 500.0, 0.0, 0.99, 1e-8, 0.0, 1e-5, 0.0, 2e-5];
/// Version 2's reference seed (bit 10).
const SEED_REF: u64 = 0x6e6e_7a00_0000_0001;
/// Embedding width of the `fast` preset adapted to tokens ([`LstmConfig::preset_for`]).
pub const TOKEN_EMBED_FAST: usize = 128;
/// Embedding width of the larger presets adapted to tokens.
pub const TOKEN_EMBED: usize = 192;

impl LstmConfig {
    /// The preset names accepted by [`LstmConfig::preset`].
    pub const PRESETS: [&'static str; 4] = ["tiny", "fast", "default", "large"];

    /// A named preset, sized for inputs of a few MB; [`LstmConfig::preset_for`] adapts
    /// it to the input's length and alphabet.
    /// - `tiny`: 1 layer × 32 cells, batch 4, seg_len 8 — for tests, learns anything fast.
    /// - `fast`: 2 × 96, batch 16, seg_len 10.
    /// - `default`: 3 × 192, batch 16, seg_len 10.
    /// - `large`: NNCP v1's LSTM profile, 4 × 352, batch 32, seg_len 20, lr 4e-3.
    ///
    /// `fast` and `default` use the sparse output backward with a threshold of 2e-5
    /// ([`LstmConfig::out_grad_min`]): free on bytes, 2–2.5× faster at 16k symbols.
    /// The learning rates, their decay and Adam's `β2 = 0.99` were tuned on
    /// canterbury/alice29.txt and calgary/book1 with bytes as symbols (see
    /// `examples/lstm_bench.rs`).
    pub fn preset(name: &str) -> Result<LstmConfig> {
        let base = LstmConfig {
            layers: 1,
            hidden: 32,
            embed: 16,
            batch: 4,
            seg_len: 8,
            lr: 1e-2,
            lr_min: 1e-3,
            lr_decay: 0.0,
            beta1: 0.0,
            beta2: 0.9999,
            adam_eps: 1e-8,
            grad_clip: 0.0,
            ln_eps: 1e-5,
            forget_bias: 0.0,
            out_grad_min: 0.0,
            lr_emb: 1.0,
            seed: 0x6e6e_7a00_0000_0001,
        };
        let cfg = match name {
            "tiny" => base,
            "fast" => LstmConfig {
                layers: 2,
                hidden: 96,
                embed: 32,
                batch: 16,
                seg_len: 10,
                lr: 1.2e-2,
                lr_min: 1e-3,
                lr_decay: 500.0,
                beta2: 0.99,
                out_grad_min: 2e-5,
                ..base
            },
            "default" => LstmConfig {
                layers: 3,
                hidden: 192,
                embed: 32,
                batch: 16,
                seg_len: 10,
                lr: 1e-2,
                lr_min: 1e-3,
                lr_decay: 500.0,
                beta2: 0.99,
                out_grad_min: 2e-5,
                ..base
            },
            "large" => LstmConfig {
                layers: 4,
                hidden: 352,
                embed: 32,
                batch: 32,
                seg_len: 20,
                lr: 4e-3,
                lr_min: 1e-3,
                lr_decay: 0.0,
                ..base
            },
            _ => bail!("unknown LSTM preset {name:?}; expected one of {:?}", Self::PRESETS),
        };
        Ok(cfg)
    }

    /// [`LstmConfig::preset_for`] for bytes as symbols (`vocab = 256`).
    pub fn preset_for_len(name: &str, n_symbols: u64) -> Result<LstmConfig> {
        Self::preset_for(name, n_symbols, 256)
    }

    /// [`LstmConfig::preset`] adapted to an input of `n_symbols` symbols from a
    /// `vocab`-symbol alphabet.
    ///
    /// - Fewer streams for smaller inputs, so that each stream is long enough and the
    ///   model takes enough gradient steps to learn. Fewer streams cost speed (smaller
    ///   matrix products), so `fast` aims for streams of at least 32k bytes (8k tokens)
    ///   and `default` for 128k bytes (32k tokens), with at least 2 streams.
    /// - Tokens (`vocab > 256`) want a slower learning-rate decay than bytes
    ///   (`lr_decay` 3000 instead of 500 gradient steps), a longer memory in Adam's
    ///   second moment (`β2` at least 0.999 instead of 0.99), a wider embedding (at least
    ///   [`TOKEN_EMBED_FAST`] = 128 for `fast`, with a higher learning rate, 0.016, and
    ///   [`TOKEN_EMBED`] = 192 for the larger presets, instead of 32).
    ///
    /// Measured (ideal code length, `examples/lstm_bench.rs`): on alice29.txt, bytes,
    /// `fast` with 4 streams instead of 8 saves 2%; on calgary/book1, bytes, `default` with
    /// 4 streams instead of 16 saves 1.8% at half the speed; on book1 tokenized (2037
    /// symbols) `fast` gives 2.4903 bpb with the bytes' settings and 2.3966 with these
    /// save β2, 2.3804 with β2 = 0.999 (`default`: 2.3880 → 2.3246; mixed with the
    /// n-gram model, `fast` 2.2726 → 2.2645 and `default` 2.2761 → 2.2474, `examples/mix_dump.rs`).
    /// The embedding, mixed (book1 / alice29): `fast` 32 → 2.2645 / 2.1402, 64 → 2.2624 /
    /// 2.1300, 96 → 2.2497 / 2.1297, 128 → 2.2529 / 2.1283, 128 with lr 0.016 → 2.2456;
    /// `default` 32 → 2.2474 / 2.1337, 64 → 2.2379, 96 → – / 2.1209, 128 → 2.2289 / 2.1184,
    /// 192 → 2.2214 on book1 (the LSTM's input products grow by half from 128).
    /// Larger LSTMs for `fast` did worse on book1 (hidden 128: 2.3893 alone against
    /// 2.3804; 3 layers 2.3853; 8 streams 2.3833), and so did `default` with seg_len 20.
    ///
    /// ```
    /// use nnz::model::lstm::LstmConfig;
    /// let batch = |p, n| LstmConfig::preset_for_len(p, n).unwrap().batch;
    /// assert_eq!(batch("fast", 150_000), 4);
    /// assert_eq!(batch("fast", 10_000), 1);
    /// assert_eq!(batch("fast", 100_000_000), 16);
    /// assert_eq!(batch("default", 768_771), 4);
    /// assert_eq!(batch("default", 10_000), 2);
    /// let tok = LstmConfig::preset_for("fast", 228_439, 2037).unwrap();
    /// assert_eq!((tok.batch, tok.lr_decay, tok.beta2, tok.embed), (16, 3000.0, 0.999, 128));
    /// ```
    pub fn preset_for(name: &str, n_symbols: u64, vocab: usize) -> Result<LstmConfig> {
        let mut cfg = Self::preset(name)?;
        let tokens = vocab > 256;
        let (min_stream, min_batch) = match (name, tokens) {
            ("tiny", _) => return Ok(cfg),
            ("fast", false) => (32_768, 1),
            ("fast", true) => (8_192, 1),
            (_, false) => (131_072, 2),
            (_, true) => (32_768, 2),
        };
        if tokens && cfg.lr_decay > 0.0 {
            cfg.lr_decay = 3000.0;
        }
        if tokens {
            // Rarer symbols, rarer gradients for their output weights: Adam's second
            // moment needs a longer memory than bytes' 0.99.
            cfg.beta2 = cfg.beta2.max(0.999);
            // A token carries more than a byte: a wider embedding pays for itself.
            if name == "fast" {
                cfg.embed = cfg.embed.max(TOKEN_EMBED_FAST);
                cfg.lr = 1.6e-2;
            } else {
                cfg.embed = cfg.embed.max(TOKEN_EMBED);
            }
            // Thousands of symbols, each embedding row trained only where its symbol
            // occurs: the embedding learns at 3× the rate (book1, `nnz compress --model
            // lstm`, an experimental build without the 5 header bytes that record the
            // multiple: default 213,529 → 213,057 bytes, ×10 213,403, ×40 213,923; fast
            // 215,860 → 215,198; dickens default 2,194,437 → 2,175,798). `large` is not
            // measured and keeps 1.
            if matches!(name, "fast" | "default") {
                cfg.lr_emb = 3.0;
            }
        }
        // The largest power of two up to the preset's batch that keeps streams long enough.
        let want = (n_symbols / min_stream).max(1);
        let mut batch = 1usize;
        while batch * 2 <= cfg.batch && (batch * 2) as u64 <= want {
            batch *= 2;
        }
        cfg.batch = batch.max(min_batch).min(cfg.batch);
        Ok(cfg)
    }

    /// Checks every field against its bounds, so that a corrupt or hostile header is
    /// rejected before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        let int = |name: &str, v: usize, max: usize| -> Result<()> {
            ensure!((1..=max).contains(&v), "LSTM {name} = {v} is out of range 1..={max}");
            Ok(())
        };
        int("layers", self.layers, MAX_LAYERS)?;
        int("hidden", self.hidden, MAX_HIDDEN)?;
        int("embed", self.embed, MAX_EMBED)?;
        int("batch", self.batch, MAX_BATCH)?;
        int("seg_len", self.seg_len, MAX_SEG_LEN)?;
        let float = |name: &str, v: f32, lo: f32, hi: f32, lo_open: bool, hi_open: bool| {
            let ok = v.is_finite() && if lo_open { v > lo } else { v >= lo } && if hi_open { v < hi } else { v <= hi };
            let (l, h) = (if lo_open { "(" } else { "[" }, if hi_open { ")" } else { "]" });
            ensure!(ok, "LSTM {name} = {v} is out of range {l}{lo}, {hi}{h}");
            Ok(())
        };
        float("lr", self.lr, 0.0, 1.0, true, false)?;
        float("lr_min", self.lr_min, 0.0, self.lr, false, false)?;
        float("lr_decay", self.lr_decay, 0.0, 1e12, false, false)?;
        float("beta1", self.beta1, 0.0, 1.0, false, true)?;
        float("beta2", self.beta2, 0.0, 1.0, false, true)?;
        float("adam_eps", self.adam_eps, 0.0, 1.0, true, false)?;
        float("grad_clip", self.grad_clip, 0.0, 1e6, false, false)?;
        float("ln_eps", self.ln_eps, 0.0, 1.0, true, false)?;
        float("forget_bias", self.forget_bias, -16.0, 16.0, false, false)?;
        float("out_grad_min", self.out_grad_min, 0.0, 1.0, false, true)?;
        float("lr_emb", self.lr_emb, 0.0, MAX_LR_EMB, true, false)?;
        Ok(())
    }

    /// The five counts in layout order.
    fn counts(&self) -> [usize; 5] {
        [self.layers, self.hidden, self.embed, self.batch, self.seg_len]
    }

    /// The ten floats in layout order.
    fn floats(&self) -> [f32; 10] {
        [
            self.lr,
            self.lr_min,
            self.lr_decay,
            self.beta1,
            self.beta2,
            self.adam_eps,
            self.grad_clip,
            self.ln_eps,
            self.forget_bias,
            self.out_grad_min,
        ]
    }

    /// The inverse of [`LstmConfig::counts`] and [`LstmConfig::floats`]; validated.
    fn from_fields(c: [usize; 5], f: [f32; 10], seed: u64, lr_emb: f32) -> Result<LstmConfig> {
        let cfg = LstmConfig {
            layers: c[0],
            hidden: c[1],
            embed: c[2],
            batch: c[3],
            seg_len: c[4],
            lr: f[0],
            lr_min: f[1],
            lr_decay: f[2],
            beta1: f[3],
            beta2: f[4],
            adam_eps: f[5],
            grad_clip: f[6],
            ln_eps: f[7],
            forget_bias: f[8],
            out_grad_min: f[9],
            lr_emb,
            seed,
        };
        cfg.validate().context("invalid LSTM config in header")?;
        Ok(cfg)
    }

    /// The header layout (version 2, or 3 with an embedding multiple) drawn in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let v3 = self.lr_emb.to_bits() != 1.0f32.to_bits();
        let mut out = vec![if v3 { VERSION } else { 2 }];
        for v in self.counts() {
            write_varint(&mut out, v as u64);
        }
        let floats = self.floats();
        let mut present = 0u64;
        for (i, (v, r)) in floats.iter().zip(FLOAT_REFS).enumerate() {
            if v.to_bits() != r.to_bits() {
                present |= 1 << i;
            }
        }
        if self.seed != SEED_REF {
            present |= 1 << 10;
        }
        if v3 {
            present |= 1 << 11;
        }
        write_varint(&mut out, present);
        for (i, v) in floats.iter().enumerate() {
            if present & (1 << i) != 0 {
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        if present & (1 << 10) != 0 {
            out.extend_from_slice(&self.seed.to_le_bytes());
        }
        if v3 {
            out.extend_from_slice(&self.lr_emb.to_bits().to_le_bytes());
        }
        out
    }

    /// Parses and validates [`LstmConfig::to_bytes`]'s layout, version 3, 2 or 1; `b` must
    /// be exactly one configuration.
    pub fn from_bytes(b: &[u8]) -> Result<LstmConfig> {
        match b.first() {
            None => bail!("the LSTM config is empty"),
            Some(1) => Self::from_bytes_v1(b),
            Some(&v) if v == 2 || v == VERSION => Self::from_bytes_v2(&b[1..], v),
            Some(v) => bail!("LSTM config version {v} is not supported (this build reads versions 1 to {VERSION})"),
        }
    }

    /// Versions 2 and 3 after the version byte.
    fn from_bytes_v2(b: &[u8], version: u8) -> Result<LstmConfig> {
        let mut pos = 0;
        let mut take = |n: usize, what: &str| -> Result<&[u8]> {
            let s = b.get(pos..pos + n).with_context(|| format!("the LSTM config ends early, in its {what}"))?;
            pos += n;
            Ok(s)
        };
        let mut counts = [0usize; 5];
        for (c, what) in counts.iter_mut().zip(["layers", "hidden", "embed", "batch", "seg_len"]) {
            // validate() checks the ranges; the varint only has to fit version 1's u32.
            let v = read_varint(|| Ok(take(1, what)?[0]), u32::MAX.into(), &format!("the LSTM {what}"))?;
            *c = v as usize;
        }
        let n_fields = if version == 2 { FIELDS.len() - 1 } else { FIELDS.len() };
        let present = read_varint(|| Ok(take(1, "field mask")?[0]), (1 << n_fields) - 1, "the LSTM field mask")?;
        ensure!(
            version == 2 || present & (1 << 11) != 0,
            "LSTM config version 3 without an embedding multiple (not minimally encoded: that is version 2)"
        );
        let mut floats = FLOAT_REFS;
        for (i, f) in floats.iter_mut().enumerate() {
            if present & (1 << i) != 0 {
                let bits = u32::from_le_bytes(take(4, FIELDS[i])?.try_into().context("4 bytes")?);
                ensure!(
                    bits != f.to_bits(),
                    "the LSTM {} is written out but equals its reference value {f} (not minimally encoded)",
                    FIELDS[i]
                );
                *f = f32::from_bits(bits);
            }
        }
        let mut seed = SEED_REF;
        if present & (1 << 10) != 0 {
            seed = u64::from_le_bytes(take(8, "seed")?.try_into().context("8 bytes")?);
            ensure!(
                seed != SEED_REF,
                "the LSTM seed is written out but equals its reference value (not minimally encoded)"
            );
        }
        let mut lr_emb = 1.0;
        if present & (1 << 11) != 0 {
            lr_emb = f32::from_le_bytes(take(4, "lr_emb")?.try_into().context("4 bytes")?);
            ensure!(
                lr_emb.to_bits() != 1.0f32.to_bits(),
                "the LSTM lr_emb is written out but equals its reference value 1 (not minimally encoded)"
            );
        }
        ensure!(pos == b.len(), "the LSTM config has {} bytes after its end", b.len() - pos);
        Self::from_fields(counts, floats, seed, lr_emb)
    }

    /// Version 1: fixed fields, [`V1_BYTES`] long.
    fn from_bytes_v1(b: &[u8]) -> Result<LstmConfig> {
        ensure!(b.len() == V1_BYTES, "LSTM config version 1 is {} bytes, expected {V1_BYTES}", b.len());
        let word = |i: usize| u32::from_le_bytes([b[1 + 4 * i], b[2 + 4 * i], b[3 + 4 * i], b[4 + 4 * i]]);
        let counts = std::array::from_fn(|i| word(i) as usize);
        let floats = std::array::from_fn(|i| f32::from_bits(word(5 + i)));
        let seed_bytes: [u8; 8] = b[61..69].try_into().context("LSTM config seed")?;
        Self::from_fields(counts, floats, u64::from_le_bytes(seed_bytes), 1.0)
    }

    /// Learning rate of gradient step `n` (0-based): `max(lr_min, lr / (1 + n / lr_decay))`.
    pub fn lr_at(&self, n: u64) -> f32 {
        crate::model::adam::decayed_lr(self.lr, n, self.lr_decay, self.lr_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1's layout, as the first release wrote it.
    fn v1_bytes(cfg: &LstmConfig) -> Vec<u8> {
        let mut out = vec![1];
        for v in cfg.counts() {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for v in cfg.floats() {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&cfg.seed.to_le_bytes());
        assert_eq!(out.len(), V1_BYTES);
        out
    }

    /// Every preset as the engine resolves it: bytes and tokens, small and large inputs.
    fn configs() -> Vec<LstmConfig> {
        let mut all = vec![];
        for name in LstmConfig::PRESETS {
            all.push(LstmConfig::preset(name).unwrap());
            for (n, vocab) in [(300, 256), (150_000, 256), (100_000_000, 256), (228_439, 2037), (10_000_000, 16384)] {
                all.push(LstmConfig::preset_for(name, n, vocab).unwrap());
            }
        }
        let seeded = LstmConfig { seed: 7, forget_bias: -0.0, ..LstmConfig::preset("tiny").unwrap() };
        let huge = LstmConfig { layers: 16, hidden: 2048, embed: 1024, batch: 1024, seg_len: 1024, ..seeded.clone() };
        all.extend([seeded, huge]);
        all
    }

    #[test]
    fn presets_validate_and_round_trip() {
        for cfg in configs() {
            cfg.validate().unwrap();
            let b = cfg.to_bytes();
            assert_eq!(b[0], if cfg.lr_emb == 1.0 { 2 } else { VERSION });
            assert!(b.len() <= 1 + 5 * 2 + 2 + 10 * 4 + 8 + 4, "{cfg:?}");
            let back = LstmConfig::from_bytes(&b).unwrap();
            // Bit for bit, so -0.0 is not confused with 0.0.
            assert_eq!(back.floats().map(f32::to_bits), cfg.floats().map(f32::to_bits));
            assert_eq!(back, cfg);
            // Version 1 bytes still parse to the same configuration (less the multiple).
            let old = LstmConfig::from_bytes(&v1_bytes(&cfg)).unwrap();
            assert_eq!(old.floats().map(f32::to_bits), cfg.floats().map(f32::to_bits));
            assert_eq!(old, LstmConfig { lr_emb: 1.0, ..cfg });
        }
        assert!(LstmConfig::preset("huge").is_err());
    }

    #[test]
    fn v2_layout_is_pinned() {
        // The references are format constants: a change here breaks every file written.
        assert_eq!(
            FLOAT_REFS.map(f32::to_bits),
            [0x3c23d70a, 0x3a83126f, 0x43fa0000, 0, 0x3f7d70a4, 0x322bcc77, 0, 0x3727c5ac, 0, 0x37a7c5ac]
        );
        let cfg = |name| LstmConfig::preset(name).unwrap();
        assert_eq!(cfg("default").to_bytes(), [2, 3, 0xc0, 0x01, 32, 16, 10, 0]);
        // fast: lr 0.012 (bit 0) differs from the reference.
        assert_eq!(cfg("fast").to_bytes(), [2, 2, 96, 32, 16, 10, 1, 0xa6, 0x9b, 0x44, 0x3c]);
        // tiny: lr_decay 0 (bit 2), beta2 0.9999 (bit 4), out_grad_min 0 (bit 9).
        let tiny = cfg("tiny").to_bytes();
        assert_eq!(tiny[..8], [2, 1, 32, 16, 4, 8, 0x94, 0x04]);
        assert_eq!(tiny.len(), 8 + 12);
        assert_eq!(tiny[12..16], 0.9999f32.to_bits().to_le_bytes());
        // A seed of its own takes 8 more bytes.
        let seeded = LstmConfig { seed: 1, ..cfg("default") }.to_bytes();
        assert_eq!(seeded, [&[2, 3, 0xc0, 0x01, 32, 16, 10, 0x80, 0x08][..], &1u64.to_le_bytes()].concat());
    }

    /// Version 3: version 2 plus the embedding's multiple (bit 11), written only when it
    /// is not 1.
    #[test]
    fn v3_adds_the_embedding_multiple() {
        let tok = LstmConfig::preset_for("default", 228_439, 2037).unwrap();
        assert_eq!(tok.lr_emb, 3.0);
        let b = tok.to_bytes();
        let v2 = LstmConfig { lr_emb: 1.0, ..tok.clone() }.to_bytes();
        assert_eq!(v2[0], 2);
        assert_eq!(b[0], 3);
        // The same counts, the mask with bit 11, then 3.0 at the end.
        assert_eq!(b[b.len() - 4..], 3.0f32.to_bits().to_le_bytes());
        assert_eq!(LstmConfig::from_bytes(&b).unwrap(), tok);
        // Bytes keep 1, so the byte models' configurations stay version 2.
        assert_eq!(LstmConfig::preset_for("default", 1 << 20, 256).unwrap().to_bytes()[0], 2);
        // Version 3 without bit 11, or with the multiple 1 written out, is not minimal.
        let mut no_bit = v2.clone();
        no_bit[0] = 3;
        assert!(err(&no_bit).contains("version 3 without an embedding multiple"), "{}", err(&no_bit));
        // The multiple is the last field: 1.0 in its place keeps bit 11 and the version.
        let mut one = b.clone();
        let at = one.len() - 4;
        one[at..].copy_from_slice(&1.0f32.to_bits().to_le_bytes());
        assert!(err(&one).contains("lr_emb is written out but equals"), "{}", err(&one));
    }

    /// The error's one line, with its context.
    fn err(b: &[u8]) -> String {
        let msg = format!("{:#}", LstmConfig::from_bytes(b).unwrap_err());
        assert!(!msg.contains('\n'), "{msg}");
        msg
    }

    #[test]
    fn v2_garbage_is_rejected() {
        let good = LstmConfig::preset("tiny").unwrap().to_bytes();
        assert!(err(&[]).contains("empty"));
        // Every truncation, and a byte too many.
        for n in 1..good.len() {
            assert!(err(&good[..n]).contains("ends early"), "{}", err(&good[..n]));
        }
        let mut long = good.clone();
        long.push(0);
        assert!(err(&long).contains("1 bytes after its end"));
        assert!(err(&[4]).contains("version 4 is not supported"));
        // Counts: over-long (layers 1 as 0x81 0x00), above u32, over 10 bytes, out of range.
        let with_counts = |counts: &[&[u8]]| [&[2u8][..], &counts.concat(), &good[6..]].concat();
        let ok = with_counts(&[&[1], &[32], &[16], &[4], &[8]]);
        assert_eq!(LstmConfig::from_bytes(&ok).unwrap(), LstmConfig::preset("tiny").unwrap());
        let msg = err(&with_counts(&[&[0x81, 0x00], &[32], &[16], &[4], &[8]]));
        assert!(msg.contains("the LSTM layers is not minimally encoded"), "{msg}");
        let msg = err(&with_counts(&[&[1], &[0x80, 0x80, 0x80, 0x80, 0x10], &[16], &[4], &[8]]));
        assert!(msg.contains("the LSTM hidden is 4294967296 (at most 4294967295)"), "{msg}");
        let msg = err(&with_counts(&[&[1], &[32], &[0xff; 11], &[4], &[8]]));
        assert!(msg.contains("the LSTM embed does not fit in 64 bits"), "{msg}");
        let msg = err(&with_counts(&[&[1], &[0x88, 0x27], &[16], &[4], &[8]]));
        assert!(msg.contains("LSTM hidden = 5000 is out of range 1..=2048"), "{msg}");
        let msg = err(&with_counts(&[&[1], &[32], &[16], &[0], &[8]]));
        assert!(msg.contains("LSTM batch = 0 is out of range"), "{msg}");
        // The mask: an unknown bit, and a field written out with its reference value.
        let default = LstmConfig::preset("default").unwrap().to_bytes();
        let msg = err(&[&default[..7], &[0x80, 0x10]].concat());
        assert!(msg.contains("the LSTM field mask is 2048 (at most 2047)"), "{msg}");
        let msg = err(&[&default[..7], &[0x01], &1e-2f32.to_bits().to_le_bytes()].concat());
        assert!(msg.contains("the LSTM lr is written out but equals its reference value"), "{msg}");
        let msg = err(&[&default[..7], &[0x80, 0x08], &SEED_REF.to_le_bytes()].concat());
        assert!(msg.contains("the LSTM seed is written out"), "{msg}");
        // Out-of-range floats: NaN learning rate, beta2 = 1.
        let msg = err(&[&default[..7], &[0x01], &f32::NAN.to_bits().to_le_bytes()].concat());
        assert!(msg.contains("LSTM lr = NaN"), "{msg}");
        let msg = err(&[&default[..7], &[0x10], &1.0f32.to_bits().to_le_bytes()].concat());
        assert!(msg.contains("LSTM beta2 = 1 is out of range"), "{msg}");
    }

    #[test]
    fn corruption_never_panics() {
        for cfg in configs() {
            for good in [cfg.to_bytes(), v1_bytes(&cfg)] {
                // Every single-byte corruption and truncation either parses to a valid
                // config or errors; a v2 one that parses re-encodes to its own bytes.
                let check = |b: &[u8]| {
                    if let Ok(cfg) = LstmConfig::from_bytes(b) {
                        cfg.validate().unwrap();
                        if b[0] >= 2 {
                            assert_eq!(cfg.to_bytes(), b);
                        }
                    }
                };
                for n in 0..good.len() {
                    check(&good[..n]);
                }
                for i in 0..good.len() {
                    for v in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                        let mut b = good.clone();
                        b[i] = v;
                        check(&b);
                    }
                }
            }
        }
    }

    #[test]
    fn v1_garbage_is_rejected() {
        let good = v1_bytes(&LstmConfig::preset("fast").unwrap());
        assert!(LstmConfig::from_bytes(&good[..68]).is_err());
        let mut long = good.clone();
        long.push(0);
        assert!(err(&long).contains("version 1 is 70 bytes, expected 69"));
        // Absurd sizes: hidden = 2^32 - 1, layers = 0.
        let mut b = good.clone();
        b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&b).contains("hidden"));
        let mut b = good.clone();
        b[1..5].copy_from_slice(&0u32.to_le_bytes());
        assert!(LstmConfig::from_bytes(&b).is_err());
        // NaN learning rate, beta2 = 1.
        let mut b = good.clone();
        b[21..25].copy_from_slice(&f32::NAN.to_bits().to_le_bytes());
        assert!(LstmConfig::from_bytes(&b).is_err());
        let mut b = good.clone();
        b[37..41].copy_from_slice(&1.0f32.to_bits().to_le_bytes());
        assert!(LstmConfig::from_bytes(&b).is_err());
    }

    #[test]
    fn lr_schedule_decays_to_floor() {
        let mut cfg = LstmConfig::preset("tiny").unwrap();
        assert_eq!(cfg.lr_at(1000), cfg.lr);
        cfg.lr_decay = 100.0;
        assert_eq!(cfg.lr_at(0), cfg.lr);
        assert!((cfg.lr_at(100) - cfg.lr / 2.0).abs() < 1e-9);
        assert_eq!(cfg.lr_at(1_000_000), cfg.lr_min);
    }
}
