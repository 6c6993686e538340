//! [`LstmConfig`]: every hyperparameter of the LSTM predictor, its presets, and its
//! fixed byte layout in the container header.
//!
//! The header layout (version 1, 69 bytes, all little-endian; floats are exact f32 bits):
//!
//! ```text
//! offset size field
//!      0    1 version      = 1
//!      1    4 layers       u32, 1..=16
//!      5    4 hidden       u32, 1..=2048   cells per layer
//!      9    4 embed        u32, 1..=1024   embedding width
//!     13    4 batch        u32, 1..=1024   streams coded in lock step
//!     17    4 seg_len      u32, 1..=1024   time steps per gradient step
//!     21    4 lr           f32, (0, 1]
//!     25    4 lr_min       f32, [0, lr]
//!     29    4 lr_decay     f32, [0, 1e12]  0 = constant learning rate
//!     33    4 beta1        f32, [0, 1)
//!     37    4 beta2        f32, [0, 1)
//!     41    4 adam_eps     f32, (0, 1]
//!     45    4 grad_clip    f32, [0, 1e6]   0 = no clipping
//!     49    4 ln_eps       f32, (0, 1]
//!     53    4 forget_bias  f32, [-16, 16]
//!     57    4 out_grad_min f32, [0, 1)      0 = exact output-layer gradient
//!     61    8 seed         u64
//! ```
//!
//! ```
//! use nnz::model::lstm::LstmConfig;
//! let cfg = LstmConfig::preset("tiny").unwrap();
//! let bytes = cfg.to_bytes();
//! assert_eq!(bytes.len(), LstmConfig::BYTES);
//! assert_eq!(LstmConfig::from_bytes(&bytes).unwrap(), cfg);
//! ```

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
    /// Seed of the weight initialization.
    pub seed: u64,
}

/// Bounds checked by [`LstmConfig::validate`], named so that errors can quote them.
const MAX_LAYERS: usize = 16;
const MAX_HIDDEN: usize = 2048;
const MAX_EMBED: usize = 1024;
const MAX_BATCH: usize = 1024;
const MAX_SEG_LEN: usize = 1024;
const VERSION: u8 = 1;
/// Embedding width of the `fast` preset adapted to tokens ([`LstmConfig::preset_for`]).
pub const TOKEN_EMBED_FAST: usize = 128;
/// Embedding width of the larger presets adapted to tokens.
pub const TOKEN_EMBED: usize = 192;

impl LstmConfig {
    /// Length of [`LstmConfig::to_bytes`]'s output.
    pub const BYTES: usize = 69;

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
        Ok(())
    }

    /// The fixed little-endian header layout drawn in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.push(VERSION);
        for v in [self.layers, self.hidden, self.embed, self.batch, self.seg_len] {
            // validate() bounds every count far below u32::MAX.
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for v in [
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
        ] {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&self.seed.to_le_bytes());
        debug_assert_eq!(out.len(), Self::BYTES);
        out
    }

    /// Parses and validates [`LstmConfig::to_bytes`]'s layout.
    pub fn from_bytes(b: &[u8]) -> Result<LstmConfig> {
        ensure!(b.len() == Self::BYTES, "LSTM config is {} bytes, expected {}", b.len(), Self::BYTES);
        ensure!(b[0] == VERSION, "LSTM config version {} is not supported (this build reads version {VERSION})", b[0]);
        let mut pos = 1;
        let mut word = || {
            let w = u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
            w
        };
        let layers = word() as usize;
        let hidden = word() as usize;
        let embed = word() as usize;
        let batch = word() as usize;
        let seg_len = word() as usize;
        let mut f = || f32::from_bits(word());
        let (lr, lr_min, lr_decay) = (f(), f(), f());
        let (beta1, beta2, adam_eps, grad_clip) = (f(), f(), f(), f());
        let (ln_eps, forget_bias, out_grad_min) = (f(), f(), f());
        let seed_bytes: [u8; 8] = b[61..69].try_into().context("LSTM config seed")?;
        let cfg = LstmConfig {
            layers,
            hidden,
            embed,
            batch,
            seg_len,
            lr,
            lr_min,
            lr_decay,
            beta1,
            beta2,
            adam_eps,
            grad_clip,
            ln_eps,
            forget_bias,
            out_grad_min,
            seed: u64::from_le_bytes(seed_bytes),
        };
        cfg.validate().context("invalid LSTM config in header")?;
        Ok(cfg)
    }

    /// Learning rate of gradient step `n` (0-based): `max(lr_min, lr / (1 + n / lr_decay))`.
    pub fn lr_at(&self, n: u64) -> f32 {
        crate::model::adam::decayed_lr(self.lr, n, self.lr_decay, self.lr_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for name in LstmConfig::PRESETS {
            let cfg = LstmConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let b = cfg.to_bytes();
            assert_eq!(b.len(), LstmConfig::BYTES);
            assert_eq!(LstmConfig::from_bytes(&b).unwrap(), cfg);
        }
        assert!(LstmConfig::preset("huge").is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        let good = LstmConfig::preset("fast").unwrap().to_bytes();
        assert!(LstmConfig::from_bytes(&[]).is_err());
        assert!(LstmConfig::from_bytes(&good[..68]).is_err());
        let mut long = good.clone();
        long.push(0);
        assert!(LstmConfig::from_bytes(&long).is_err());
        // Wrong version.
        let mut b = good.clone();
        b[0] = 2;
        assert!(LstmConfig::from_bytes(&b).is_err());
        // Absurd sizes: hidden = 2^32 - 1, layers = 0.
        let mut b = good.clone();
        b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = LstmConfig::from_bytes(&b).unwrap_err();
        assert!(format!("{err:#}").contains("hidden"), "{err:#}");
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
        // Every single-byte corruption either parses to a valid config or errors; never panics.
        for i in 0..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                if let Ok(cfg) = LstmConfig::from_bytes(&b) {
                    cfg.validate().unwrap();
                }
            }
        }
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
