//! Command-line arguments (clap), resolved into engine options.

use crate::engine::{BytesRequest, CompressOptions, LstmRequest, ModelSpec, TransformerRequest};
use crate::tokenizer;
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "Lossless compression with a neural network trained on the data while it is coded.";

const LONG_ABOUT: &str = "\
Lossless compression with a neural network trained on the data while it is coded.

nnz predicts each next symbol of the input with a model that learns the input itself, and
codes the symbols with an arithmetic coder. The model is never stored: the decoder starts
from the same seeded weights and replays the same training, bit for bit. Every file is
checked against a checksum of the original bytes when it is decompressed.

Files and streams work as with gzip, xz and zstd:
  nnz compress book.txt                 writes book.txt.nnz, keeps book.txt
  nnz decompress book.txt.nnz           writes book.txt
  tar c dir | nnz compress > dir.tar.nnz
  nnz decompress < dir.tar.nnz | tar x
  nnz info book.txt.nnz                 shows model, sizes and bits per byte";

#[derive(Parser, Debug)]
#[command(name = "nnz", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compress a file or standard input
    #[command(visible_alias = "c")]
    Compress(CompressArgs),
    /// Decompress a .nnz file or standard input
    #[command(visible_alias = "d")]
    Decompress(CommonArgs),
    /// Show what a .nnz file holds: model, sizes, bits per byte, checksum
    Info {
        /// The .nnz files to describe
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Input, output and the flags every direction shares.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Input file; `-` or absent reads standard input
    pub input: Option<PathBuf>,
    /// Output file; `-` writes standard output. Absent: INPUT.nnz when compressing,
    /// INPUT without .nnz when decompressing, standard output for standard input
    pub output: Option<PathBuf>,
    /// Write to standard output
    #[arg(short = 'c', long)]
    pub stdout: bool,
    /// Overwrite an existing output file; allow compressed data on a terminal
    #[arg(short, long)]
    pub force: bool,
    /// No progress bar or summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Keep the input file (always the case: nnz never deletes its input)
    #[arg(short, long, hide = true)]
    pub keep: bool,
    /// Where the Transformer runs: `cpu`, or `cuda` (the first NVIDIA GPU; needs a
    /// build with `--features cuda`). Files are identical either way, so either
    /// decompresses the other's. Default: $NNZ_DEVICE, else cpu
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Frames coded at once, one thread each; 0: one per core. The output is the same
    /// for every N (frames depend only on the input and --block-size), so this only
    /// trades memory (N frames in flight) for speed on inputs of several blocks
    #[arg(short = 'T', long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
}

impl CommonArgs {
    /// `--threads`, with 0 read as the number of cores; a GPU model codes one frame at a
    /// time (one device).
    pub fn thread_count(&self) -> usize {
        if crate::device::active() == crate::device::Device::Cuda {
            return 1;
        }
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Args, Debug)]
pub struct CompressArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The predictor; `auto` (the default) picks `bytes`, or `lstm` for text of 32 MiB
    /// and more (per block)
    #[arg(long, value_enum, default_value_t = ModelArg::Auto)]
    pub model: ModelArg,
    /// Model size, for every model: tiny (tests), fast (the default), default (1–6%
    /// smaller files, up to 17% on binaries; 8–15× slower), large (for large inputs or GPUs). bytes: byte
    /// contexts alone on text and with an LSTM over bytes of 2×96 cells on other data
    /// (fast), with an LSTM of 3×192 cells (default); lstm:
    /// 2×96, 3×192, 4×352 (NNCP v1's profile); transformer: 2×128, 3×192, 8×512. The
    /// number of streams adapts to the input's size (see the README)
    #[arg(short, long, default_value = "fast", value_parser = ["tiny", "fast", "default", "large"])]
    pub preset: String,
    /// Expert: network layers (overrides the preset)
    #[arg(long, value_name = "N", help_heading = "Expert network overrides")]
    pub layers: Option<usize>,
    /// Expert: LSTM cells per layer (Transformer: model width)
    #[arg(long, value_name = "N", help_heading = "Expert network overrides")]
    pub hidden: Option<usize>,
    /// Expert: streams coded in lock step (the batch of every matrix product)
    #[arg(long, value_name = "N", help_heading = "Expert network overrides")]
    pub batch: Option<usize>,
    /// Expert: time steps per gradient step (truncated back-propagation length)
    #[arg(long, value_name = "N", help_heading = "Expert network overrides")]
    pub seg_len: Option<usize>,
    /// Expert: initial learning rate
    #[arg(long, value_name = "RATE", help_heading = "Expert network overrides")]
    pub lr: Option<f32>,
    /// Expert: the network alone, not mixed with the n-gram context model
    #[arg(long, help_heading = "Expert network overrides")]
    pub no_mix: bool,
    /// Largest dictionary, in symbols (raw bytes included)
    #[arg(long, value_name = "N", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(256..=65536))]
    pub vocab: u32,
    /// Code raw bytes: no dictionary pass
    #[arg(long)]
    pub no_tokenizer: bool,
    /// Cut the input into independent blocks of this size (suffixes K, M, G); memory
    /// use grows with it, compression improves with it
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = crate::cli::io::parse_size)]
    pub block_size: usize,
    /// Print what a tuner needs at the end: symbols, bits per byte of the payload and of
    /// the dictionary, and where the time went
    #[arg(long)]
    pub stats: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// `bytes`, or `lstm` for text blocks of 32 MiB and more (src/choose.rs)
    Auto,
    /// Bytes, no dictionary: byte context model (orders 0-8, words, lines, sparse, record
    /// and 1-bit image contexts, match; x86 call filter when code is detected), mixed with
    /// an LSTM over bytes with `-p default`; the strongest model on binary and on text up to MBs
    Bytes,
    /// Bytes, no dictionary: the byte context model alone; fast
    Bytectx,
    /// Dictionary of words, an LSTM trained online (NNCP v1) mixed with an n-gram model;
    /// the fastest neural model on large text
    Lstm,
    /// Dictionary of words, a Transformer trained online (NNCP v2) mixed with an n-gram
    /// model
    Transformer,
    /// Order-2 context model: fast, modest compression
    Order2,
    /// No model: store the input as is, with framing and checksums
    Store,
}

impl CompressArgs {
    /// The engine options these arguments ask for.
    pub fn options(&self) -> Result<CompressOptions> {
        let tokenizer =
            (!self.no_tokenizer).then(|| tokenizer::Options { max_vocab: self.vocab, ..tokenizer::Options::default() });
        let lstm_request = || {
            let req = LstmRequest {
                preset: self.preset.clone(),
                layers: self.layers,
                hidden: self.hidden,
                batch: self.batch,
                seg_len: self.seg_len,
                lr: self.lr,
                mix: !self.no_mix,
            };
            let overridden = req != LstmRequest::preset(&self.preset);
            let name = if overridden { format!("{}+custom", self.preset) } else { self.preset.clone() };
            (req, name)
        };
        let (model, preset) = match self.model {
            ModelArg::Auto => {
                let (lstm, name) = lstm_request();
                let bytes = BytesRequest { preset: self.preset.clone(), lstm: lstm.clone(), text: false };
                (ModelSpec::Auto { lstm, bytes }, name)
            }
            ModelArg::Bytes => {
                let (lstm, name) = lstm_request();
                (ModelSpec::Bytes(BytesRequest { preset: self.preset.clone(), lstm, text: false }), name)
            }
            ModelArg::Bytectx => (ModelSpec::ByteCtx(self.preset.clone()), self.preset.clone()),
            ModelArg::Lstm => {
                let (req, name) = lstm_request();
                (ModelSpec::Lstm(req), name)
            }
            ModelArg::Transformer => {
                let req = TransformerRequest {
                    preset: self.preset.clone(),
                    layers: self.layers,
                    d_model: self.hidden,
                    batch: self.batch,
                    seg_len: self.seg_len,
                    lr: self.lr,
                    mix: !self.no_mix,
                };
                let overridden = req != TransformerRequest::preset(&self.preset);
                let name = format!("transformer-{}{}", self.preset, if overridden { "+custom" } else { "" });
                (ModelSpec::Transformer(req), name)
            }
            ModelArg::Order2 => (ModelSpec::Order2, "order2".to_string()),
            ModelArg::Store => (ModelSpec::Store, "store".to_string()),
        };
        model.check()?;
        if let Some(t) = &tokenizer {
            t.validate()?;
        }
        Ok(CompressOptions { model, preset, tokenizer })
    }
}
