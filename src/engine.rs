//! The engine: the one loop that compresses and decompresses, and the pipeline around it.
//!
//! ```text
//! compress:   bytes ─► tokenizer ─► symbols ─► run(Encode) ─► header + payload
//! decompress: header ─► run(Decode) ─► symbols ─► detokenize ─► bytes ─► checksum
//! ```
//!
//! [`run`] is shared by both directions (NNCP's `process_block(is_decode)`): the model is
//! asked for its predictions, each stream's symbol is coded or decoded, and the model is
//! shown the symbols. The only branch between the two directions is at the coding call,
//! so the decoder replays exactly what the encoder computed.
//!
//! The `n` symbols are cut into `B` contiguous streams of `ceil(n / B)` symbols (the last
//! ones may be shorter or empty); at step `t` stream `b` codes symbol `b·L + t`.
//!
//! A file is a sequence of independent frames (see `format`): [`compress_stream`] cuts its
//! input into blocks and writes one frame per block, so memory stays bounded whatever the
//! input's length; [`decompress_stream`] decodes frame after frame.
//!
//! # Example
//!
//! ```
//! use nnz::engine::{compress, decompress, CompressOptions};
//! let text = b"a rose is a rose is a rose";
//! let packed = compress(text, &CompressOptions::default(), &mut |_| {}).unwrap();
//! assert_eq!(decompress(&packed, &mut |_| {}).unwrap(), text);
//! ```

use crate::coder::{self, Decoder, Encoder, Termination};
use crate::filter::Filter;
use crate::format::{self, Header, ModelKind, TokenizerSection, NUMERICS_VERSION};
use crate::model::bytectx::{ByteCtx, ByteCtxConfig, ByteMix};
use crate::model::lstm::{Lstm, LstmConfig};
use crate::model::mix::Mix;
use crate::model::order2::Order2;
use crate::model::transformer::{self, TransformerConfig};
use crate::model::Predictor;
use crate::tokenizer::{self, Dictionary};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Instant;

/// How often (in time steps) the progress callback is called.
const PROGRESS_EVERY: u64 = 256;

/// Default block size of [`compress_stream`]: one frame per GiB of input.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 30;

/// Where the coding stands, for progress reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Original bytes covered so far (estimated from the symbols coded within a frame).
    pub bytes_done: u64,
    /// Compressed bits so far (when compressing: the exact information content).
    pub bits: f64,
}

/// Where the loop stands, in symbols.
#[derive(Clone, Copy, Debug, Default)]
struct LoopProgress {
    symbols_done: u64,
    symbols_total: u64,
    bits: f64,
}

/// Turns the loop's symbol counts into original bytes, for a frame of `len` bytes that
/// starts `offset` bytes and `bits_before` bits into the stream.
fn frame_progress<'a>(
    progress: &'a mut dyn FnMut(&Progress),
    len: u64,
    offset: u64,
    bits_before: f64,
) -> impl FnMut(&LoopProgress) + 'a {
    move |p: &LoopProgress| {
        let within = (p.symbols_done as u128 * len as u128 / p.symbols_total.max(1) as u128) as u64;
        progress(&Progress { bytes_done: offset + within, bits: bits_before + p.bits });
    }
}

/// Which predictor to use, as asked for. Some choices depend on the input (an LSTM
/// preset adapts its number of streams to the frame's length), so a request is
/// [resolved](ModelSpec::resolve) per frame into the [`Model`] the header records.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// No model: every frame is stored as is (framing and checksums only).
    Store,
    /// The order-2 context model.
    Order2,
    /// The LSTM: a preset, with expert overrides.
    Lstm(LstmRequest),
    /// The Transformer: a preset, with expert overrides.
    Transformer(TransformerRequest),
    /// Bytes, no dictionary: the byte context model mixed with a neural model over bytes.
    Bytes(BytesRequest),
    /// Bytes, no dictionary: the byte context model alone (a preset name).
    ByteCtx(String),
}

/// The byte model: a preset of the byte context model and the neural model over bytes.
///
/// The neural part is the seam where another 256-symbol network plugs in. It is the
/// LSTM, configured as for bytes: the Transformer's TRACE-like "bytes" preset (one
/// layer, four byte embeddings per position) in its place measured worse and slower
/// (bytectx fast mixed with it: alice29 1.979 bits per byte at 10 kB/s, obj2 1.835;
/// with the LSTM fast: 1.971 at 23 kB/s and 1.810 at 17 kB/s — ideal code lengths from
/// `examples/bytes_bench.rs` with the network swapped, 2026-11-26).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BytesRequest {
    /// One of [`ByteCtxConfig::PRESETS`] (`large` means `default`).
    pub preset: String,
    /// The LSTM over bytes (its `mix` field is ignored: the context model is the mixer).
    pub lstm: LstmRequest,
    /// Whether the frame is text ([`crate::choose::is_text`]; set per frame by
    /// [`ModelSpec::for_data`]): `fast` leaves the network out on text only.
    pub text: bool,
}

impl BytesRequest {
    pub fn preset(name: &str) -> BytesRequest {
        BytesRequest { preset: name.to_string(), lstm: LstmRequest::preset(name), text: false }
    }

    fn resolve(&self, len: u64) -> Result<Model> {
        let ctx = ByteCtxConfig::preset_for(&self.preset, len)?;
        // `fast` on text is the byte contexts alone (unless an LSTM field is given): there
        // the LSTM over bytes nearly tripled the time for 0.2% (book1, `nnz compress`:
        // 2.047 bits per byte at 57 kB/s alone, 2.042 at 21 kB/s mixed). On binary data it
        // pays for its time: kennedy.xls 0.132 → 0.109, the first MB of silesia osdb
        // 1.900 → 1.823, obj2 1.752 → 1.696 (at 30, 19 and 14 kB/s).
        let l = &self.lstm;
        let overrides = l.layers.is_some() || l.hidden.is_some() || l.batch.is_some() || l.seg_len.is_some();
        if self.preset == "fast" && self.text && !overrides && l.lr.is_none() {
            return Ok(Model::ByteCtx(ctx));
        }
        let mut lstm = self.lstm.resolve(len, 256)?;
        if l.batch.is_none() && self.preset != "tiny" {
            lstm.batch = bytes_lstm_batch(lstm.batch, len);
        }
        Ok(Model::Bytes(ctx, lstm))
    }
}

/// The LSTM's number of streams in the byte model: at most `preset_batch`, streams of
/// at least 256 KiB (a power of two, at least 1). Mixed with the byte contexts, the
/// network pays for longer streams more than alone (alice29.txt, `default`: 2 streams
/// 1.9049 bits per byte at 8 kB/s, 1 stream 1.8951 at 5 kB/s).
fn bytes_lstm_batch(preset_batch: usize, len: u64) -> usize {
    let want = (len / 262_144).max(1);
    let mut batch = 1usize;
    while batch * 2 <= preset_batch && (batch * 2) as u64 <= want {
        batch *= 2;
    }
    batch
}

/// A Transformer preset and the fields to override in it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TransformerRequest {
    /// One of [`TransformerConfig::PRESETS`].
    pub preset: String,
    pub layers: Option<usize>,
    pub d_model: Option<usize>,
    pub batch: Option<usize>,
    pub seg_len: Option<usize>,
    pub lr: Option<f32>,
    /// Mix the network with the n-gram context model.
    pub mix: bool,
}

impl TransformerRequest {
    pub fn preset(name: &str) -> TransformerRequest {
        TransformerRequest { preset: name.to_string(), mix: true, ..TransformerRequest::default() }
    }

    /// The configuration for a frame of `symbols` symbols from a `vocab`-symbol alphabet.
    fn resolve(&self, symbols: u64, vocab: usize) -> Result<TransformerConfig> {
        let mut cfg = TransformerConfig::preset_for(&self.preset, symbols, vocab)?;
        cfg.layers = self.layers.unwrap_or(cfg.layers);
        cfg.d_model = self.d_model.unwrap_or(cfg.d_model);
        cfg.batch = self.batch.unwrap_or(cfg.batch);
        if let Some(t) = self.seg_len {
            // Keep the retraining schedule a whole number of segments.
            if cfg.retrain_every > 0 {
                cfg.retrain_every = cfg.retrain_every.div_ceil(t) * t;
                cfg.retrain_len = cfg.retrain_len.div_ceil(t) * t;
            }
            cfg.seg_len = t;
        }
        if let Some(lr) = self.lr {
            cfg.lr = lr;
            cfg.lr_min = cfg.lr_min.min(lr);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// An LSTM preset and the fields to override in it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LstmRequest {
    /// One of [`LstmConfig::PRESETS`].
    pub preset: String,
    pub layers: Option<usize>,
    pub hidden: Option<usize>,
    pub batch: Option<usize>,
    pub seg_len: Option<usize>,
    pub lr: Option<f32>,
    /// Mix the network with the n-gram context model (the default: it is what makes
    /// small and medium inputs compress well).
    pub mix: bool,
}

impl LstmRequest {
    pub fn preset(name: &str) -> LstmRequest {
        LstmRequest { preset: name.to_string(), mix: true, ..LstmRequest::default() }
    }

    /// The configuration for a frame of `symbols` symbols from a `vocab`-symbol alphabet.
    fn resolve(&self, symbols: u64, vocab: usize) -> Result<LstmConfig> {
        let mut cfg = LstmConfig::preset_for(&self.preset, symbols, vocab)?;
        cfg.layers = self.layers.unwrap_or(cfg.layers);
        cfg.hidden = self.hidden.unwrap_or(cfg.hidden);
        cfg.batch = self.batch.unwrap_or(cfg.batch);
        cfg.seg_len = self.seg_len.unwrap_or(cfg.seg_len);
        if let Some(lr) = self.lr {
            cfg.lr = lr;
            cfg.lr_min = cfg.lr_min.min(lr);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl ModelSpec {
    /// Checks the request before any input is read (bad overrides fail early).
    pub fn check(&self) -> Result<()> {
        match self {
            ModelSpec::Lstm(req) => {
                req.resolve(1 << 20, 256)?;
            }
            ModelSpec::Transformer(req) => {
                req.resolve(1 << 20, 256)?;
            }
            ModelSpec::Bytes(req) => {
                req.resolve(1 << 20)?;
            }
            ModelSpec::ByteCtx(preset) => {
                ByteCtxConfig::preset(preset)?;
            }
            ModelSpec::Store | ModelSpec::Order2 => {}
        }
        Ok(())
    }

    /// The request for this frame: the byte model looks at whether the frame is text.
    fn for_data(&self, data: &[u8]) -> ModelSpec {
        match self {
            ModelSpec::Bytes(req) => {
                ModelSpec::Bytes(BytesRequest { text: crate::choose::is_text(data), ..req.clone() })
            }
            other => other.clone(),
        }
    }

    /// Whether this model codes the dictionary's symbols (false: raw bytes).
    fn tokenized(&self) -> bool {
        !matches!(self, ModelSpec::Bytes(_) | ModelSpec::ByteCtx(_))
    }

    /// The model for a frame of `symbols` symbols from a `vocab`-symbol alphabet (`None`
    /// for [`ModelSpec::Store`]).
    fn resolve(&self, symbols: u64, vocab: usize) -> Result<Option<Model>> {
        Ok(match self {
            ModelSpec::Store => None,
            ModelSpec::Order2 => Some(Model::Order2),
            ModelSpec::Lstm(req) if req.mix => Some(Model::LstmMix(req.resolve(symbols, vocab)?, MIX_LR)),
            ModelSpec::Lstm(req) => Some(Model::Lstm(req.resolve(symbols, vocab)?)),
            ModelSpec::Transformer(req) if req.mix => Some(Model::TransformerMix(req.resolve(symbols, vocab)?, MIX_LR)),
            ModelSpec::Transformer(req) => Some(Model::Transformer(req.resolve(symbols, vocab)?)),
            ModelSpec::Bytes(req) => Some(req.resolve(symbols)?),
            ModelSpec::ByteCtx(preset) => Some(Model::ByteCtx(ByteCtxConfig::preset_for(preset, symbols)?)),
        })
    }
}

/// Learning rate of the network/n-gram mixing weights.
const MIX_LR: f32 = 0.02;
/// Version of the mixer's parameter layout.
/// Version 1 (the first release) mixed with the order-2 model; version 2 mixes with the
/// order-3 Kneser–Ney model ([`crate::model::ngram`]).
const MIX_VERSION: u8 = 2;
/// Version of the byte model's parameter layout.
/// Version 2: the byte context model's version 2 (see `ByteCtxConfig`: run states, text
/// and binary contexts, three mixers, the x86 filter); version 1 files are refused.
/// Version 3: the network's probability enters the mixers a second time, in the linear
/// domain (`IN_NN_LINEAR` in `src/model/bytectx/`); version 2 files are refused.
const BYTES_VERSION: u8 = 3;
/// The most memory a model may ask for ([`Model::memory_estimate`]): 8 GiB, eight times
/// the largest preset.
const MAX_MODEL_BYTES: u64 = 8 << 30;

/// A fully specified predictor: what a frame's header records.
#[derive(Clone, Debug, PartialEq)]
enum Model {
    Order2,
    Lstm(LstmConfig),
    /// The LSTM mixed with the n-gram model; the mixer's learning rate.
    LstmMix(LstmConfig, f32),
    Transformer(TransformerConfig),
    /// The Transformer mixed with the n-gram model; the mixer's learning rate.
    TransformerMix(TransformerConfig, f32),
    /// The byte context model with the LSTM over bytes as one of its inputs.
    Bytes(ByteCtxConfig, LstmConfig),
    /// The byte context model alone.
    ByteCtx(ByteCtxConfig),
}

impl Model {
    fn kind(&self) -> ModelKind {
        match self {
            Model::Order2 => ModelKind::Order2,
            Model::Lstm(_) => ModelKind::Lstm,
            Model::LstmMix(..) => ModelKind::LstmMix,
            Model::Transformer(_) => ModelKind::Transformer,
            Model::TransformerMix(..) => ModelKind::TransformerMix,
            Model::Bytes(..) => ModelKind::Bytes,
            Model::ByteCtx(_) => ModelKind::ByteCtx,
        }
    }

    /// The model's parameters as stored in the header.
    fn to_params(&self) -> Vec<u8> {
        match self {
            Model::Order2 => Vec::new(),
            Model::Lstm(cfg) => cfg.to_bytes(),
            Model::LstmMix(cfg, lr) => mix_params(*lr, &cfg.to_bytes()),
            Model::Transformer(cfg) => cfg.to_bytes(),
            Model::TransformerMix(cfg, lr) => mix_params(*lr, &cfg.to_bytes()),
            Model::Bytes(ctx, lstm) => {
                let mut out = vec![BYTES_VERSION];
                out.extend_from_slice(&ctx.to_bytes());
                out.extend_from_slice(&lstm.to_bytes());
                out
            }
            Model::ByteCtx(ctx) => ctx.to_bytes(),
        }
    }

    /// The inverse of [`Model::kind`] and [`Model::to_params`].
    fn from_header(kind: ModelKind, params: &[u8]) -> Result<Model> {
        match kind {
            ModelKind::Order2 => {
                ensure!(params.is_empty(), "corrupt header: order2 takes no parameters");
                Ok(Model::Order2)
            }
            ModelKind::Lstm => Ok(Model::Lstm(LstmConfig::from_bytes(params).context("corrupt header")?)),
            ModelKind::LstmMix => {
                let (lr, rest) = split_mix_params(params)?;
                Ok(Model::LstmMix(LstmConfig::from_bytes(rest).context("corrupt header")?, lr))
            }
            ModelKind::Transformer => {
                Ok(Model::Transformer(TransformerConfig::from_bytes(params).context("corrupt header")?))
            }
            ModelKind::TransformerMix => {
                let (lr, rest) = split_mix_params(params)?;
                Ok(Model::TransformerMix(TransformerConfig::from_bytes(rest).context("corrupt header")?, lr))
            }
            ModelKind::Bytes => {
                ensure!(
                    params.is_empty() || params[0] == BYTES_VERSION,
                    "byte model version {} (this nnz reads version {BYTES_VERSION}): the file was written by \
                     another version of nnz",
                    params[0]
                );
                ensure!(params.len() > 1, "corrupt header: bad byte model parameters");
                // The context model's parameters say their length by their version.
                let n = ByteCtxConfig::encoded_len(params[1]).unwrap_or(ByteCtxConfig::BYTES);
                ensure!(params.len() > n + 1, "corrupt header: bad byte model parameters");
                let ctx = ByteCtxConfig::from_bytes(&params[1..n + 1]).context("corrupt header")?;
                Ok(Model::Bytes(ctx, LstmConfig::from_bytes(&params[n + 1..]).context("corrupt header")?))
            }
            ModelKind::ByteCtx => Ok(Model::ByteCtx(ByteCtxConfig::from_bytes(params).context("corrupt header")?)),
            ModelKind::None => bail!("corrupt header: a coded frame names no model"),
        }
    }

    /// An estimate of the memory the model needs for a `vocab`-symbol alphabet, in
    /// bytes: its parameters four times over (weights, gradients, Adam's moments), the
    /// activations of one segment and the context models' tables. The dominant terms
    /// only; the presets need 35 MB to 1 GB, far under [`MAX_MODEL_BYTES`].
    fn memory_estimate(&self, vocab: usize) -> u64 {
        let v = vocab as u64;
        let lstm = |c: &LstmConfig| {
            let (l, h, e) = (c.layers as u64, c.hidden as u64, c.embed as u64);
            let params = v * e + l * 4 * h * (e + 2 * h + 8) + l * h * v + v;
            let activations = (c.seg_len * c.batch) as u64 * (l * 16 * h + 2 * v + e);
            4 * (4 * params + activations)
        };
        let transformer = |c: &TransformerConfig| {
            let (l, d, f) = (c.layers as u64, c.d_model as u64, c.d_ff as u64);
            let positions = (c.mem_segs as u64 + 1) * c.seg_len as u64;
            let params = v * d + l * (4 * d * d + 2 * d * f + 4 * d + positions * c.heads as u64) + d * v + v;
            let rows = (c.seg_len * c.batch) as u64;
            let activations = rows * (l * (16 * d + 3 * f) + 2 * v) + positions * c.batch as u64 * l * 2 * d;
            4 * (4 * params + activations) + 2 * (c.retrain_len * c.batch) as u64
        };
        let bytectx = |c: &ByteCtxConfig| (64u64 << c.table_bits) + (4u64 << c.match_bits) + (1u64 << c.history_bits);
        // The n-gram model and the order-2 model bound their own tables (MAX_PAIRS, MAX_ENTRIES).
        const CONTEXT_MODEL: u64 = 400 << 20;
        match self {
            Model::Order2 => CONTEXT_MODEL,
            Model::Lstm(c) => lstm(c),
            Model::LstmMix(c, _) => lstm(c) + CONTEXT_MODEL,
            Model::Transformer(c) => transformer(c),
            Model::TransformerMix(c, _) => transformer(c) + CONTEXT_MODEL,
            Model::Bytes(ctx, c) => bytectx(ctx) + lstm(c),
            Model::ByteCtx(ctx) => bytectx(ctx),
        }
    }

    /// The filter a byte model's frame went through ([`Filter::None`] for the others).
    fn filter(&self) -> Filter {
        match self {
            Model::Bytes(ctx, _) | Model::ByteCtx(ctx) => ctx.filter,
            _ => Filter::None,
        }
    }

    /// Records the filter of a byte model's frame (others take none), and leaves the
    /// primer out unless the frame is text (it is English).
    fn set_frame(&mut self, filter: Filter, text: bool) {
        match self {
            Model::Bytes(ctx, _) | Model::ByteCtx(ctx) => {
                ctx.filter = filter;
                if !text {
                    ctx.primer = 0;
                }
            }
            _ => assert_eq!(filter, Filter::None, "only the byte models filter"),
        }
    }

    fn build(&self, vocab: usize) -> Result<Box<dyn Predictor>> {
        // A header may name any configuration within the fields' ranges; refuse one whose
        // model would not fit in memory before allocating it (compression checks the same,
        // so nnz never writes a file it would refuse to decode).
        let need = self.memory_estimate(vocab);
        ensure!(
            need <= MAX_MODEL_BYTES,
            "the model needs about {} MiB, more than nnz allows ({} MiB): choose a smaller model \
             (a file that asks for it is corrupt or was not written by nnz)",
            need >> 20,
            MAX_MODEL_BYTES >> 20
        );
        Ok(match self {
            Model::Order2 => Box::new(Order2::new(vocab)),
            Model::Lstm(cfg) => Box::new(Lstm::new(cfg, vocab)?),
            Model::LstmMix(cfg, lr) => Box::new(Mix::new(Box::new(Lstm::new(cfg, vocab)?), *lr)),
            Model::Transformer(cfg) => transformer::build(cfg, vocab)?,
            Model::TransformerMix(cfg, lr) => Box::new(Mix::new(transformer::build(cfg, vocab)?, *lr)),
            Model::Bytes(ctx, lstm) => {
                ensure!(vocab == 256, "corrupt header: the byte model codes bytes, not {vocab} symbols");
                Box::new(ByteMix::new(Box::new(Lstm::new(lstm, 256)?), ctx)?)
            }
            Model::ByteCtx(ctx) => {
                ensure!(vocab == 256, "corrupt header: the byte model codes bytes, not {vocab} symbols");
                Box::new(ByteCtx::new(ctx, 1))
            }
        })
    }
}

/// A mixed model's parameters: the mixer's version and learning rate, then the network's.
fn mix_params(lr: f32, net: &[u8]) -> Vec<u8> {
    let mut out = vec![MIX_VERSION];
    out.extend_from_slice(&lr.to_bits().to_le_bytes());
    out.extend_from_slice(net);
    out
}

/// The inverse of [`mix_params`]: the mixer's learning rate and the network's bytes.
fn split_mix_params(params: &[u8]) -> Result<(f32, &[u8])> {
    ensure!(params.len() > 5, "corrupt header: bad mixer parameters");
    ensure!(
        params[0] == MIX_VERSION,
        "unsupported mixer version {}: this nnz mixes with version {MIX_VERSION}; \
         use the nnz release that wrote the file",
        params[0]
    );
    let lr = f32::from_bits(u32::from_le_bytes(params[1..5].try_into().expect("4 bytes")));
    ensure!(lr.is_finite() && (0.0..=1.0).contains(&lr), "corrupt header: mixer learning rate {lr}");
    Ok((lr, &params[5..]))
}

/// Everything `compress` needs to know; the result records all of it in the header.
#[derive(Clone, Debug)]
pub struct CompressOptions {
    pub model: ModelSpec,
    /// Preset name, recorded for `nnz info`.
    pub preset: String,
    /// `None` codes raw bytes (a 256-symbol alphabet).
    pub tokenizer: Option<tokenizer::Options>,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            model: ModelSpec::Order2,
            preset: "order2".into(),
            tokenizer: Some(tokenizer::Options::default()),
        }
    }
}

/// The two directions of [`run`]: the only place where they differ.
enum Direction<'a> {
    Encode {
        symbols: &'a [u16],
        coder: Encoder,
    },
    /// Decoded symbols are collected per stream and joined at the end.
    Decode {
        coder: Decoder<'a>,
        streams: Vec<Vec<u16>>,
    },
}

impl Direction<'_> {
    fn bits(&self) -> f64 {
        match self {
            Direction::Encode { coder, .. } => coder.bits_used(),
            Direction::Decode { .. } => 0.0,
        }
    }
}

/// The loop shared by compression and decompression.
fn run(
    model: &mut dyn Predictor,
    n: u64,
    dir: &mut Direction,
    progress: &mut dyn FnMut(&LoopProgress),
    stats: &mut Stats,
) -> Result<()> {
    if model.bits().is_some() {
        return run_bits(model, n, dir, progress, stats);
    }
    let b = model.batch();
    let v = model.vocab_size();
    let len = n.div_ceil(b as u64);
    let mut probs = vec![0.0f32; b * v];
    let mut freqs = vec![0u32; v];
    let mut step = vec![0u16; b];
    let mut report = LoopProgress { symbols_done: 0, symbols_total: n, bits: 0.0 };
    let (mut model_secs, mut coder_secs) = (0.0, 0.0);
    for t in 0..len {
        let t0 = Instant::now();
        model.predict(&mut probs);
        let t1 = Instant::now();
        for (s, sym) in step.iter_mut().enumerate() {
            let index = s as u64 * len + t;
            if index >= n {
                *sym = 0; // this stream has ended: pad
                continue;
            }
            let total = coder::quantize(&probs[s * v..(s + 1) * v], &mut freqs);
            *sym = match dir {
                Direction::Encode { symbols, coder } => {
                    let x = symbols[index as usize];
                    coder.encode_symbol(&freqs, total, x as usize);
                    x
                }
                Direction::Decode { coder, streams } => {
                    let x = coder.decode_symbol(&freqs, total)? as u16;
                    streams[s].push(x);
                    x
                }
            };
            report.symbols_done += 1;
        }
        let t2 = Instant::now();
        model.update(&step);
        model_secs += (t1 - t0).as_secs_f64() + t2.elapsed().as_secs_f64();
        coder_secs += (t2 - t1).as_secs_f64();
        if t % PROGRESS_EVERY == PROGRESS_EVERY - 1 || t + 1 == len {
            model.check()?;
            report.bits = dir.bits();
            progress(&report);
        }
    }
    model.check()?;
    stats.model_secs += model_secs;
    stats.coder_secs += coder_secs;
    Ok(())
}

/// [`run`] for a model with a binary path ([`Predictor::bits`]): each stream's byte is
/// coded as its 8 bits, most significant first, each under the model's probability for
/// it, and the model learns the step's bytes at the end of the step.
fn run_bits(
    model: &mut dyn Predictor,
    n: u64,
    dir: &mut Direction,
    progress: &mut dyn FnMut(&LoopProgress),
    stats: &mut Stats,
) -> Result<()> {
    let b = model.batch();
    let len = n.div_ceil(b as u64);
    let mut step = vec![0u16; b];
    let mut report = LoopProgress { symbols_done: 0, symbols_total: n, bits: 0.0 };
    let start = Instant::now();
    let bp = model.bits().expect("a model with a bit path");
    for t in 0..len {
        bp.begin_step();
        for (s, sym) in step.iter_mut().enumerate() {
            let index = s as u64 * len + t;
            if index >= n {
                *sym = 0; // this stream has ended: pad
                continue;
            }
            *sym = match dir {
                Direction::Encode { symbols, coder } => {
                    let x = symbols[index as usize];
                    for d in (0..8).rev() {
                        let bit = (x >> d) as u32 & 1;
                        coder.encode_bit(coder::quantize_bit(bp.p1(s)), bit);
                        bp.update_bit(s, bit);
                    }
                    x
                }
                Direction::Decode { coder, streams } => {
                    let mut x = 0u16;
                    for _ in 0..8 {
                        let bit = coder.decode_bit(coder::quantize_bit(bp.p1(s)))?;
                        bp.update_bit(s, bit);
                        x = x << 1 | bit as u16;
                    }
                    streams[s].push(x);
                    x
                }
            };
            report.symbols_done += 1;
        }
        bp.end_step(&step);
        if t % PROGRESS_EVERY == PROGRESS_EVERY - 1 || t + 1 == len {
            report.bits = dir.bits();
            progress(&report);
        }
    }
    model.check()?;
    // Model and coder interleave bit by bit: the loop's time is the model's.
    stats.model_secs += start.elapsed().as_secs_f64();
    Ok(())
}

/// Compresses `data` into one frame: a complete `.nnz` file.
pub fn compress(data: &[u8], opts: &CompressOptions, progress: &mut dyn FnMut(&Progress)) -> Result<Vec<u8>> {
    compress_frame(data, opts, &mut frame_progress(progress, data.len() as u64, 0, 0.0), &mut Stats::default())
}

fn compress_frame(
    data: &[u8],
    opts: &CompressOptions,
    progress: &mut dyn FnMut(&LoopProgress),
    stats: &mut Stats,
) -> Result<Vec<u8>> {
    let checksum = format::checksum(data);
    if data.is_empty() || opts.model == ModelSpec::Store {
        stats.stored_frames += 1;
        return Ok(stored_file(data, checksum));
    }
    let model_request = opts.model.for_data(data);
    // The byte models may code the frame through a reversible filter (x86 code).
    let filter = if model_request.tokenized() { Filter::None } else { Filter::choose(data) };
    let filtered;
    let data_in = if filter == Filter::None {
        data
    } else {
        filtered = filter.forward(data);
        &filtered[..]
    };
    let tokenizer_start = Instant::now();
    let (dictionary, tokenizer) = match &opts.tokenizer {
        Some(topts) if model_request.tokenized() => {
            let dict = Dictionary::build(data, topts);
            let section =
                TokenizerSection { max_vocab: topts.max_vocab, min_freq: topts.min_freq, dictionary: dict.to_bytes() };
            (dict, Some(section))
        }
        _ => (Dictionary::identity(), None),
    };
    let symbols = dictionary.encode(data_in);
    let tokenizer_secs = tokenizer_start.elapsed().as_secs_f64();
    let mut model_spec =
        model_request.resolve(symbols.len() as u64, dictionary.vocab_size())?.expect("store handled above");
    let text = match &model_request {
        ModelSpec::Bytes(req) => req.text,
        ModelSpec::ByteCtx(_) => crate::choose::is_text(data),
        _ => false,
    };
    model_spec.set_frame(filter, text);
    let mut model = model_spec.build(dictionary.vocab_size())?;
    let mut frame_stats = Stats { tokenizer_secs, ..Stats::default() };
    let mut dir = Direction::Encode { symbols: &symbols, coder: Encoder::new() };
    run(model.as_mut(), symbols.len() as u64, &mut dir, progress, &mut frame_stats)?;
    let Direction::Encode { coder, .. } = dir else { unreachable!("direction does not change") };
    let payload = coder.finish();
    frame_stats.add_breakdown(model.time_breakdown().into_iter().map(|(n, s)| (n.to_string(), s)));

    let header = Header {
        version: format::FORMAT_VERSION,
        stored: false,
        model: model_spec.kind(),
        numerics: NUMERICS_VERSION,
        original_len: data.len() as u64,
        checksum,
        symbols: symbols.len() as u64,
        payload_len: payload.len() as u64,
        preset: opts.preset.clone(),
        model_params: model_spec.to_params(),
        tokenizer,
    };
    let mut out = Vec::with_capacity(payload.len() + 64);
    header.write(&mut out);
    out.extend_from_slice(&payload);
    // Never expand by more than the stored header: incompressible data is kept as is.
    if out.len() >= stored_header(data.len() as u64, checksum).len() + data.len() {
        stats.stored_frames += 1;
        return Ok(stored_file(data, checksum));
    }
    stats.symbols += symbols.len() as u64;
    stats.dictionary_bytes += header.tokenizer.as_ref().map_or(0, |t| t.dictionary.len() as u64);
    stats.payload_bytes += payload.len() as u64;
    stats.tokenizer_secs += frame_stats.tokenizer_secs;
    stats.model_secs += frame_stats.model_secs;
    stats.coder_secs += frame_stats.coder_secs;
    stats.add_breakdown(frame_stats.model_breakdown);
    Ok(out)
}

/// The header of a stored frame of `len` bytes.
fn stored_header(len: u64, checksum: u64) -> Vec<u8> {
    let header = Header {
        version: format::FORMAT_VERSION,
        stored: true,
        model: ModelKind::None,
        numerics: NUMERICS_VERSION,
        original_len: len,
        checksum,
        symbols: 0,
        payload_len: len,
        preset: String::new(),
        model_params: Vec::new(),
        tokenizer: None,
    };
    let mut out = Vec::with_capacity(64);
    header.write(&mut out);
    out
}

/// A frame holding `data` as is.
fn stored_file(data: &[u8], checksum: u64) -> Vec<u8> {
    let mut out = stored_header(data.len() as u64, checksum);
    out.reserve_exact(data.len());
    out.extend_from_slice(data);
    out
}

/// Decompresses a complete `.nnz` file (all its frames), verifying every checksum.
pub fn decompress(file: &[u8], progress: &mut dyn FnMut(&Progress)) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_stream(&mut &file[..], &mut out, 1, progress)?;
    Ok(out)
}

/// Decodes one frame's payload and checks it against the header.
fn decompress_frame(header: &Header, payload: &[u8], progress: &mut dyn FnMut(&LoopProgress)) -> Result<Vec<u8>> {
    let data = if header.stored {
        ensure!(
            header.payload_len == header.original_len,
            "corrupt header: a stored frame of {} bytes holds {} bytes",
            header.original_len,
            header.payload_len
        );
        payload.to_vec()
    } else {
        decode_payload(header, payload, progress)?
    };
    if format::checksum(&data) != header.checksum {
        bail!("checksum mismatch: the decompressed data is corrupt");
    }
    Ok(data)
}

/// What happened to a stream: totals for the summary line, and the breakdown a tuner
/// wants (`nnz compress --stats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub frames: u64,
    /// Frames kept as they were (the model would not have made them smaller).
    pub stored_frames: u64,
    pub original_bytes: u64,
    pub compressed_bytes: u64,
    /// Symbols coded (frames coded with a model only).
    pub symbols: u64,
    /// Bytes of serialized dictionaries, inside the headers.
    pub dictionary_bytes: u64,
    /// Bytes of coded payload (frames coded with a model only).
    pub payload_bytes: u64,
    /// Seconds in the dictionary pass (build and encode).
    pub tokenizer_secs: f64,
    /// Seconds in the model: predictions and training.
    pub model_secs: f64,
    /// Seconds quantizing probabilities and coding symbols.
    pub coder_secs: f64,
    /// The model's own breakdown of its time, when it keeps one (name, seconds).
    pub model_breakdown: Vec<(String, f64)>,
}

impl Stats {
    /// Adds a frame's coding figures (not its counts of frames and bytes, which the
    /// writer keeps) to these totals.
    fn absorb(&mut self, frame: &Stats) {
        self.stored_frames += frame.stored_frames;
        self.symbols += frame.symbols;
        self.dictionary_bytes += frame.dictionary_bytes;
        self.payload_bytes += frame.payload_bytes;
        self.tokenizer_secs += frame.tokenizer_secs;
        self.model_secs += frame.model_secs;
        self.coder_secs += frame.coder_secs;
        self.add_breakdown(frame.model_breakdown.iter().cloned());
    }

    fn add_breakdown(&mut self, parts: impl IntoIterator<Item = (String, f64)>) {
        for (name, secs) in parts {
            match self.model_breakdown.iter_mut().find(|(n, _)| *n == name) {
                Some((_, s)) => *s += secs,
                None => self.model_breakdown.push((name, secs)),
            }
        }
    }
}

/// Compresses everything `input` yields, `block_size` bytes at a time, one frame per
/// block, into `output`. An empty input gives one empty frame.
///
/// Up to `threads` blocks (at least one) are compressed at once, each on its own thread,
/// and their frames are written in input order. Block boundaries depend only on the input
/// and `block_size`, and each frame only on its block, so the output never depends on
/// `threads`. Memory stays bounded: a block is read only while fewer than `threads` frames
/// are in flight (being coded, or coded and waiting for their turn to be written).
pub fn compress_stream(
    input: &mut dyn Read,
    output: &mut dyn Write,
    opts: &CompressOptions,
    block_size: usize,
    threads: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Stats> {
    ensure!(block_size > 0, "the block size must be at least 1 byte");
    ensure!(
        block_size as u64 <= format::MAX_FRAME_LEN,
        "the block size must be at most {} GiB",
        format::MAX_FRAME_LEN >> 30
    );
    let (mut first, mut ended) = (true, false);
    // Reading stops after the first short block; an empty input still gives one frame.
    let mut source = || -> Option<Result<(Vec<u8>, u64)>> {
        if ended {
            return None;
        }
        let mut block = Vec::new();
        if let Err(e) = input.take(block_size as u64).read_to_end(&mut block) {
            ended = true;
            return Some(Err(anyhow::Error::new(e).context("cannot read the input")));
        }
        if block.is_empty() && !first {
            return None;
        }
        first = false;
        ended = block.len() < block_size;
        let len = block.len() as u64;
        Some(Ok((block, len)))
    };
    let work = |block: Vec<u8>, report: &mut dyn FnMut(&LoopProgress)| -> Result<(Vec<u8>, Stats, u64)> {
        let mut stats = Stats::default();
        let frame = compress_frame(&block, opts, report, &mut stats)?;
        Ok((frame, stats, block.len() as u64))
    };
    let mut totals = Stats::default();
    in_order(threads, &mut source, &work, progress, |(frame, stats, original)| {
        output.write_all(&frame).context("cannot write the output")?;
        totals.absorb(&stats);
        totals.frames += 1;
        totals.original_bytes += original;
        totals.compressed_bytes += frame.len() as u64;
        Ok(totals.compressed_bytes as f64 * 8.0)
    })?;
    Ok(totals)
}

/// Decompresses every frame of `input` into `output`. On damage it stops at the first bad
/// frame with an error that says which frame and at what byte offset it starts; the
/// frames before it have already been written.
///
/// Frame boundaries come from the headers (each records its payload's length), so up to
/// `threads` frames are decoded at once, found without decoding anything; they are
/// written in order, and the error reported is that of the first bad frame in file
/// order, as a serial decode would report it.
pub fn decompress_stream(
    input: &mut dyn Read,
    output: &mut dyn Write,
    threads: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Stats> {
    let (mut frames_read, mut offset, mut ended) = (0u64, 0u64, false);
    let mut source = || -> Option<Result<(Frame, u64)>> {
        if ended {
            return None;
        }
        let (n, at) = (frames_read, offset);
        let mut read = || -> Result<Option<Frame>> {
            let header_bytes = match format::read_header_bytes(input).map_err(|e| locate(e, n, at))? {
                Some(bytes) => bytes,
                None if n > 0 => return Ok(None),
                None => bail!("not an nnz file (it is empty)"),
            };
            let (header, _) = Header::read(&header_bytes).map_err(|e| locate(e, n, at))?;
            let mut payload = Vec::new();
            input.take(header.payload_len).read_to_end(&mut payload).context("cannot read the input")?;
            if (payload.len() as u64) < header.payload_len {
                return Err(locate(anyhow::anyhow!("truncated file: the payload ends early"), n, at));
            }
            let len = (header_bytes.len() + payload.len()) as u64;
            Ok(Some(Frame { header, payload, len, index: n, offset: at }))
        };
        match read() {
            Ok(Some(frame)) => {
                frames_read += 1;
                offset += frame.len;
                let original = frame.header.original_len;
                Some(Ok((frame, original)))
            }
            Ok(None) => None,
            Err(e) => {
                ended = true;
                Some(Err(e))
            }
        }
    };
    let work = |f: Frame, report: &mut dyn FnMut(&LoopProgress)| -> Result<(Vec<u8>, u64)> {
        let data = decompress_frame(&f.header, &f.payload, report).map_err(|e| locate(e, f.index, f.offset))?;
        Ok((data, f.len))
    };
    let mut totals = Stats::default();
    in_order(threads, &mut source, &work, progress, |(data, len)| {
        output.write_all(&data).context("cannot write the output")?;
        totals.frames += 1;
        totals.original_bytes += data.len() as u64;
        totals.compressed_bytes += len;
        Ok(0.0)
    })?;
    Ok(totals)
}

/// A frame read from a file, not yet decoded: its header, its payload, its length in the
/// file, and where it stands (for error messages).
struct Frame {
    header: Header,
    payload: Vec<u8>,
    len: u64,
    index: u64,
    offset: u64,
}

/// Adds "frame N (at byte OFFSET)" to an error of any frame but the first (a single-frame
/// file needs no such note).
fn locate(e: anyhow::Error, frame: u64, offset: u64) -> anyhow::Error {
    match frame {
        0 => e,
        n => e.context(format!("frame {} (at byte {offset})", n + 1)),
    }
}

/// Stack of a frame's worker thread: the models keep their state on the heap, this is
/// headroom (the main thread's default is 8 MiB, a spawned thread's only 2).
const WORKER_STACK: usize = 16 << 20;

/// What a frame's worker tells the thread that writes: how far it is, and its result.
enum Message<R> {
    Progress { frame: usize, bytes: u64, bits: f64 },
    Done { frame: usize, result: Result<R> },
}

/// The pipeline of both directions: `source` yields jobs (with their original length in
/// bytes, for progress) or an error; `work` runs each job on a thread of its own, at most
/// `threads` jobs in flight (running, or done and waiting); `sink` takes the results in
/// the order of the jobs and returns the compressed bits written so far (for progress).
/// The first error in job order ends the pipeline (after the jobs already running have
/// finished), whether it came from `source`, `work` or `sink`: exactly what a serial
/// loop would report.
fn in_order<J: Send, R: Send>(
    threads: usize,
    source: &mut dyn FnMut() -> Option<Result<(J, u64)>>,
    work: &(dyn Fn(J, &mut dyn FnMut(&LoopProgress)) -> Result<R> + Sync),
    progress: &mut dyn FnMut(&Progress),
    mut sink: impl FnMut(R) -> Result<f64>,
) -> Result<()> {
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<Message<R>>();
        // In flight, by job index: (original bytes, bytes done, bits so far).
        let mut flight: BTreeMap<usize, (u64, u64, f64)> = BTreeMap::new();
        let mut results: BTreeMap<usize, Result<R>> = BTreeMap::new();
        let (mut next, mut to_write, mut exhausted) = (0usize, 0usize, false);
        let (mut bytes_written, mut bits_written) = (0u64, 0.0f64);
        loop {
            while !exhausted && next - to_write < threads {
                match source() {
                    None => exhausted = true,
                    Some(Err(e)) => {
                        results.insert(next, Err(e));
                        next += 1;
                        exhausted = true;
                    }
                    Some(Ok((job, len))) => {
                        let frame = next;
                        next += 1;
                        flight.insert(frame, (len, 0, 0.0));
                        let tx = tx.clone();
                        let body = move || {
                            let mut report = |p: &LoopProgress| {
                                let bytes =
                                    (p.symbols_done as u128 * len as u128 / p.symbols_total.max(1) as u128) as u64;
                                let _ = tx.send(Message::Progress { frame, bytes, bits: p.bits });
                            };
                            let result =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(job, &mut report)))
                                    .unwrap_or_else(|_| {
                                        Err(anyhow::anyhow!("internal error: frame {} failed", frame + 1))
                                    });
                            let _ = tx.send(Message::Done { frame, result });
                        };
                        std::thread::Builder::new()
                            .name(format!("nnz frame {}", frame + 1))
                            .stack_size(WORKER_STACK)
                            .spawn_scoped(scope, body)
                            .context("cannot start a thread")?;
                    }
                }
            }
            while let Some(result) = results.remove(&to_write) {
                bits_written = sink(result?)?;
                bytes_written += flight.remove(&to_write).map_or(0, |(len, _, _)| len);
                to_write += 1;
            }
            if exhausted && to_write == next {
                let p = Progress { bytes_done: bytes_written, bits: bits_written };
                progress(&p);
                return Ok(());
            }
            if !exhausted && next - to_write < threads {
                continue; // room for another job: start it before waiting
            }
            // Here the job `to_write` is running (its result would have been written), so
            // a message will come.
            match rx.recv() {
                Ok(Message::Progress { frame, bytes, bits }) => {
                    if let Some(f) = flight.get_mut(&frame) {
                        (f.1, f.2) = (bytes, bits);
                    }
                    let bytes_done = bytes_written + flight.values().map(|f| f.1).sum::<u64>();
                    let bits = bits_written + flight.values().map(|f| f.2).sum::<f64>();
                    progress(&Progress { bytes_done, bits });
                }
                Ok(Message::Done { frame, result }) => {
                    results.insert(frame, result);
                }
                Err(_) => bail!("internal error: a frame's thread ended without a result"),
            }
        }
    })
}
fn decode_payload(header: &Header, payload: &[u8], progress: &mut dyn FnMut(&LoopProgress)) -> Result<Vec<u8>> {
    // Every symbol stands for at least one byte, escapes aside (at most three per word).
    let max_symbols = header.original_len.saturating_mul(4).saturating_add(16);
    ensure!(
        header.symbols <= max_symbols && header.symbols > 0,
        "corrupt header: {} symbols for {} bytes",
        header.symbols,
        header.original_len
    );
    let spec = Model::from_header(header.model, &header.model_params)?;
    let dictionary = match &header.tokenizer {
        Some(t) => Dictionary::from_bytes(&t.dictionary).context("corrupt dictionary")?,
        None => {
            // Bytes, one per symbol; through a filter that changes the length (capitals)
            // at most two symbols per byte.
            let filter = spec.filter();
            let fits = if filter.keeps_length() {
                header.symbols == header.original_len
            } else {
                header.symbols <= header.original_len.saturating_mul(2)
            };
            ensure!(
                fits,
                "corrupt header: {} symbols for {} bytes coded one byte per symbol (filter: {})",
                header.symbols,
                header.original_len,
                filter.describe()
            );
            Dictionary::identity()
        }
    };
    let mut model = spec.build(dictionary.vocab_size())?;
    let streams = vec![Vec::new(); model.batch()];
    // `payload` is exactly the frame's payload: the end check holds the decoder to exactly these bytes.
    let termination = if header.version == 1 { Termination::FullState } else { Termination::Shortest };
    let mut dir = Direction::Decode { coder: Decoder::with_termination(payload, termination)?, streams };
    run(model.as_mut(), header.symbols, &mut dir, progress, &mut Stats::default())?;
    let Direction::Decode { coder, streams } = dir else { unreachable!("direction does not change") };
    coder.finish()?;
    let symbols: Vec<u16> = streams.concat();
    let mut out = Vec::new();
    dictionary.decode(&symbols, &mut out)?;
    let out = spec.filter().inverse(out);
    if out.len() as u64 != header.original_len {
        bail!("corrupt data: decoded {} bytes, the header says {}", out.len(), header.original_len);
    }
    Ok(out)
}

/// The byte context model's configuration of a frame (its filter, its primer); `None`
/// for a stored frame and for the other models.
pub fn frame_byte_config(header: &Header) -> Result<Option<ByteCtxConfig>> {
    if header.stored {
        return Ok(None);
    }
    Ok(match Model::from_header(header.model, &header.model_params)? {
        Model::Bytes(ctx, _) | Model::ByteCtx(ctx) => Some(ctx),
        _ => None,
    })
}

/// The headers of every frame of a `.nnz` file, without decoding anything.
pub fn list_frames(file: &[u8]) -> Result<Vec<Header>> {
    let mut frames = Vec::new();
    let mut rest = file;
    while !rest.is_empty() || frames.is_empty() {
        let (header, len) = Header::read(rest)?;
        let end = (len as u64).checked_add(header.payload_len).filter(|&e| e <= rest.len() as u64);
        let Some(end) = end else { bail!("truncated file: frame {} ends early", frames.len() + 1) };
        rest = &rest[end as usize..];
        frames.push(header);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every preset fits well under the limit; a configuration within the header fields'
    /// ranges but far too large is refused before anything is allocated.
    #[test]
    fn model_memory_is_checked_before_allocation() {
        let mib = |m: &Model, v: usize| m.memory_estimate(v) >> 20;
        let len = 100 << 20;
        for name in LstmConfig::PRESETS {
            let m = Model::LstmMix(LstmConfig::preset_for(name, len, 16384).unwrap(), MIX_LR);
            eprintln!("lstm {name}: {} MiB", mib(&m, 16384));
            assert!(m.memory_estimate(16384) < MAX_MODEL_BYTES / 4, "lstm {name}");
        }
        for name in TransformerConfig::PRESETS {
            let m = Model::TransformerMix(TransformerConfig::preset_for(name, len, 16384).unwrap(), MIX_LR);
            eprintln!("transformer {name}: {} MiB", mib(&m, 16384));
            assert!(m.memory_estimate(16384) < MAX_MODEL_BYTES / 4, "transformer {name}");
        }
        for name in ByteCtxConfig::PRESETS {
            let m = BytesRequest::preset(name).resolve(len).unwrap();
            eprintln!("bytes {name}: {} MiB", mib(&m, 256));
            assert!(m.memory_estimate(256) < MAX_MODEL_BYTES / 4, "bytes {name}");
        }
        let huge = LstmConfig { layers: 16, hidden: 2048, embed: 1024, ..LstmConfig::preset("large").unwrap() };
        huge.validate().unwrap(); // within the fields' ranges...
        let err = Model::LstmMix(huge, MIX_LR).build(65536).err().expect("refused").to_string();
        assert!(err.contains("more than nnz allows"), "{err}"); // ...but refused
    }

    #[test]
    fn bytes_model_fast_is_the_contexts_alone_on_text_and_default_has_long_streams() {
        // `fast` leaves the network out on text only, as `for_data` finds it.
        let fast = ModelSpec::Bytes(BytesRequest::preset("fast"));
        let text = b"Alice was beginning to get very tired of sitting by her sister.\n".repeat(20);
        let binary: Vec<u8> = (0..1300u32).map(|i| (i * 7 % 251) as u8).collect();
        let model = |data: &[u8]| fast.for_data(data).resolve(data.len() as u64, 256).unwrap().unwrap();
        assert!(matches!(model(&text), Model::ByteCtx(_)));
        assert!(matches!(model(&binary), Model::Bytes(..)));
        let mut req = BytesRequest::preset("fast");
        req.text = true;
        assert!(matches!(req.resolve(768_771).unwrap(), Model::ByteCtx(_)));
        req.lstm.hidden = Some(64);
        assert!(matches!(req.resolve(768_771).unwrap(), Model::Bytes(..)));
        let batch = |len| match BytesRequest::preset("default").resolve(len).unwrap() {
            Model::Bytes(_, l) => l.batch,
            other => panic!("{other:?}"),
        };
        assert_eq!((batch(152_089), batch(768_771), batch(1 << 30)), (1, 2, 16));
        assert_eq!(bytes_lstm_batch(4, 10 << 20), 4);
    }

    fn roundtrip(data: &[u8], opts: &CompressOptions) -> Vec<u8> {
        let packed = compress(data, opts, &mut |_| {}).unwrap();
        assert_eq!(decompress(&packed, &mut |_| {}).unwrap(), data);
        packed
    }

    #[test]
    fn empty_input_is_a_bare_header() {
        assert_eq!(roundtrip(b"", &CompressOptions::default()).len(), 25);
    }

    #[test]
    fn random_bytes_grow_by_the_header_only() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let packed = roundtrip(&data, &CompressOptions::default());
        assert!(packed.len() <= data.len() + 27); // the stored header: 25 bytes, 2 more for 5000 twice
    }

    #[test]
    fn text_compresses() {
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(200);
        let packed = roundtrip(text.as_bytes(), &CompressOptions::default());
        assert!(packed.len() < text.len() / 10, "{} bytes", packed.len());
        let no_tok = CompressOptions { tokenizer: None, ..Default::default() };
        roundtrip(text.as_bytes(), &no_tok);
    }

    /// A reader of `len` pseudo-random bytes (incompressible, cheap to regenerate).
    struct Pattern {
        len: u64,
        pos: u64,
    }

    impl Pattern {
        fn byte(pos: u64) -> u8 {
            (pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
        }
    }

    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min((self.len - self.pos) as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = Pattern::byte(self.pos + i as u64);
            }
            self.pos += n as u64;
            Ok(n)
        }
    }

    /// Streams over 4 GiB through compression and decompression in bounded memory: 64-bit
    /// lengths and offsets everywhere, frames past 2^32 bytes, every byte checked.
    #[test]
    fn streams_past_4_gib() {
        use std::sync::mpsc;
        const LEN: u64 = (1 << 32) + 12345;
        const BLOCK: usize = 256 << 20;

        struct ChannelWriter(mpsc::SyncSender<Vec<u8>>);
        impl Write for ChannelWriter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.send(buf.to_vec()).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        struct ChannelReader(mpsc::Receiver<Vec<u8>>, Vec<u8>, usize);
        impl Read for ChannelReader {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.2 == self.1.len() {
                    match self.0.recv() {
                        Ok(v) => (self.1, self.2) = (v, 0),
                        Err(_) => return Ok(0),
                    }
                }
                let n = buf.len().min(self.1.len() - self.2);
                buf[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
                self.2 += n;
                Ok(n)
            }
        }
        /// Checks every decompressed byte against the pattern.
        struct Verifier(u64);
        impl Write for Verifier {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                for (i, &b) in buf.iter().enumerate() {
                    assert_eq!(b, Pattern::byte(self.0 + i as u64), "byte {}", self.0 + i as u64);
                }
                self.0 += buf.len() as u64;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let (tx, rx) = mpsc::sync_channel(2);
        let decoder = std::thread::spawn(move || {
            let mut verifier = Verifier(0);
            let totals = decompress_stream(&mut ChannelReader(rx, Vec::new(), 0), &mut verifier, 2, &mut |_| {});
            (totals.unwrap(), verifier.0)
        });
        let opts = CompressOptions { model: ModelSpec::Store, ..Default::default() };
        let mut input = Pattern { len: LEN, pos: 0 };
        let sent = compress_stream(&mut input, &mut ChannelWriter(tx), &opts, BLOCK, 2, &mut |_| {}).unwrap();
        let (received, verified) = decoder.join().unwrap();
        assert_eq!(sent.frames, LEN.div_ceil(BLOCK as u64));
        assert_eq!(sent.stored_frames, sent.frames);
        assert_eq!(
            (received.frames, received.original_bytes, received.compressed_bytes),
            (sent.frames, sent.original_bytes, sent.compressed_bytes)
        );
        assert_eq!(verified, LEN);
    }

    #[test]
    fn progress_reaches_the_end() {
        let text = b"abracadabra ".repeat(100);
        let mut last = Progress::default();
        compress(&text, &CompressOptions::default(), &mut |p| last = *p).unwrap();
        assert_eq!(last.bytes_done, text.len() as u64);
        assert!(last.bits > 0.0);
    }
}
