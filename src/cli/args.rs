//! Command-line arguments (clap), resolved into engine options.

use crate::engine::{BytesRequest, CompressOptions, LstmRequest, ModelSpec, TransformerRequest};
use crate::tokenizer;
use anyhow::{bail, Result};
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
  nnz book.txt                          writes book.txt.nnz, keeps book.txt (--rm removes it)
  nnz -d book.txt.nnz                   writes book.txt (also: nnz decompress, unnz)
  nnz a.txt b.txt c.txt                 writes a.txt.nnz, b.txt.nnz, c.txt.nnz
  nnz -r dir/                           every file under dir/, each to its own .nnz
  nnz -9 book.txt -o book.nnz           levels -1..-9: -1..-3 fast, -4..-7 default, -8, -9 large
  nnz -t book.txt.nnz                   decode and verify the checksum, write nothing
  nnz -l *.nnz                          one line per file: sizes, ratio, bits per byte, model
  nnz -dc book.txt.nnz | less           to standard output (also: nnzcat)
  tar c dir | nnz > dir.tar.nnz         standard input to standard output
  nnz decompress < dir.tar.nnz | tar x
  nnz info book.txt.nnz                 everything the header says

A file named like a subcommand (compress, decompress, test, list, info) is written ./test.

Exit status: 0 on success, 1 when a file could not be processed (each failure is one line
on standard error naming the file; the other files are still done), 2 on a usage error.";

#[derive(Parser, Debug)]
#[command(name = "nnz", version, about = ABOUT, long_about = LONG_ABOUT, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, what to do (zstd's flags): compress, the default
    #[command(flatten)]
    pub op: OpFlags,
    /// Without a subcommand: the arguments of `compress` (and of -d, -t, -l)
    #[command(flatten)]
    pub args: CompressArgs,
}

/// zstd's and xz's operation flags, for use without a subcommand.
#[derive(Args, Debug, Default)]
#[group(id = "operation", multiple = false)]
pub struct OpFlags {
    /// Compress (the default)
    #[arg(short = 'z', long = "compress")]
    pub compress: bool,
    /// Decompress
    #[arg(short = 'd', long = "decompress", visible_alias = "uncompress")]
    pub decompress: bool,
    /// Decompress and verify the checksum, writing nothing
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// List the files: sizes, ratio, bits per byte, model
    #[arg(short = 'l', long = "list")]
    pub list: bool,
}

/// What a command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Compress,
    Decompress,
    Test,
    List,
}

impl OpFlags {
    pub fn op(&self) -> Op {
        if self.decompress {
            Op::Decompress
        } else if self.test {
            Op::Test
        } else if self.list {
            Op::List
        } else {
            Op::Compress
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compress files or standard input
    Compress(CompressArgs),
    /// Decompress .nnz files or standard input
    Decompress(CommonArgs),
    /// Decompress and verify the checksum, writing nothing (as -t)
    Test(CommonArgs),
    /// One line per .nnz file, like `xz -l`: frames, sizes, ratio, bits per byte, model
    List(ListArgs),
    /// Show what a .nnz file holds: model, sizes, bits per byte, checksum
    Info {
        /// The .nnz files to describe
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a shell completion script to standard output, e.g.
    /// `nnz completions bash > ~/.local/share/bash-completion/completions/nnz`
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output, e.g. `nnz manpage > nnz.1`
    Manpage,
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// The .nnz files to list
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Descend into directories (their .nnz files)
    #[arg(short, long)]
    pub recursive: bool,
}

/// Inputs, outputs and the flags every direction shares.
#[derive(Args, Debug, Default)]
pub struct CommonArgs {
    /// Input files; `-` or none reads standard input. Each file gets its own output:
    /// FILE.nnz when compressing, FILE without .nnz when decompressing. Two paths where
    /// the second is the output (`nnz compress a a.nnz`, `nnz decompress a.nnz a`, or
    /// `-` for standard output) name that output, as before
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Write to FILE (one input only)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write to standard output (several inputs: one after the other)
    #[arg(short = 'c', long)]
    pub stdout: bool,
    /// Overwrite existing output files; read FIFOs and devices; allow compressed data on
    /// a terminal
    #[arg(short, long)]
    pub force: bool,
    /// No progress bar and no summary line
    #[arg(short, long)]
    pub quiet: bool,
    /// A summary line per file even when standard error is not a terminal
    #[arg(short, long)]
    pub verbose: bool,
    /// Keep the input files (the default)
    #[arg(short, long)]
    pub keep: bool,
    /// Remove each input file once its output is complete
    #[arg(long, conflicts_with = "keep")]
    pub rm: bool,
    /// Descend into directories: every file under them (compress skips .nnz files;
    /// decompress, test and list take only .nnz files)
    #[arg(short, long)]
    pub recursive: bool,
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
    #[command(flatten)]
    pub level: LevelFlags,
    /// The predictor; `auto` (the default) is the model nnz recommends for the input: today
    /// `bytes` for every input, which measured better than the tokenized models on every text tried
    #[arg(long, value_enum, default_value_t = ModelArg::Auto)]
    pub model: ModelArg,
    /// Model size, for every model (default: fast): tiny (tests), fast (the default), default (1–6%
    /// smaller files, up to 17% on binaries; 8–15× slower), large (for large inputs or GPUs). bytes: byte
    /// contexts alone on text and with an LSTM over bytes of 2×96 cells on other data
    /// (fast), with an LSTM of 3×192 cells (default); lstm:
    /// 2×96, 3×192, 4×352 (NNCP v1's profile); transformer: 2×128, 3×192, 8×512. The
    /// number of streams adapts to the input's size (see the README)
    /// (-1..-9 are levels: -1..-3 fast, -4..-7 default, -8, -9 large)
    #[arg(short, long, value_parser = ["tiny", "fast", "default", "large"])]
    pub preset: Option<String>,
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

/// `-1` … `-9`, as gzip, xz and zstd spell levels; mapped onto the presets.
#[derive(Args, Debug, Default)]
#[group(id = "level", multiple = false)]
pub struct LevelFlags {
    #[arg(short = '1', hide = true)]
    pub l1: bool,
    #[arg(short = '2', hide = true)]
    pub l2: bool,
    #[arg(short = '3', hide = true)]
    pub l3: bool,
    #[arg(short = '4', hide = true)]
    pub l4: bool,
    #[arg(short = '5', hide = true)]
    pub l5: bool,
    #[arg(short = '6', hide = true)]
    pub l6: bool,
    #[arg(short = '7', hide = true)]
    pub l7: bool,
    #[arg(short = '8', hide = true)]
    pub l8: bool,
    #[arg(short = '9', hide = true)]
    pub l9: bool,
}

impl LevelFlags {
    /// The level given, if any.
    pub fn level(&self) -> Option<u8> {
        let set = [self.l1, self.l2, self.l3, self.l4, self.l5, self.l6, self.l7, self.l8, self.l9];
        set.iter().position(|&b| b).map(|i| i as u8 + 1)
    }
}

/// The preset a level stands for: 1-3 fast (the default), 4-7 default, 8-9 large.
pub fn level_preset(level: u8) -> &'static str {
    match level {
        1..=3 => "fast",
        4..=7 => "default",
        _ => "large",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// The recommended model: `bytes` for every input (measured better than `lstm` and
    /// `transformer` on every text tried, src/choose.rs)
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
    /// The preset: `-p`, or the level's, or fast.
    pub fn preset_name(&self) -> Result<String> {
        match (&self.preset, self.level.level()) {
            (Some(p), Some(l)) if p != level_preset(l) => {
                bail!("-{l} means preset {}, which conflicts with -p {p}: give one of them", level_preset(l))
            }
            (Some(p), _) => Ok(p.clone()),
            (None, Some(l)) => Ok(level_preset(l).to_string()),
            (None, None) => Ok("fast".to_string()),
        }
    }

    pub fn options(&self) -> Result<CompressOptions> {
        let preset_name = self.preset_name()?;
        let tokenizer =
            (!self.no_tokenizer).then(|| tokenizer::Options { max_vocab: self.vocab, ..tokenizer::Options::default() });
        let lstm_request = || {
            let req = LstmRequest {
                preset: preset_name.clone(),
                layers: self.layers,
                hidden: self.hidden,
                batch: self.batch,
                seg_len: self.seg_len,
                lr: self.lr,
                mix: !self.no_mix,
            };
            let overridden = req != LstmRequest::preset(&preset_name);
            let name = if overridden { format!("{}+custom", preset_name) } else { preset_name.clone() };
            (req, name)
        };
        let (model, preset) = match self.model {
            // `auto` is the byte model: it measured better than the tokenized models on
            // every input tried (src/choose.rs).
            ModelArg::Auto | ModelArg::Bytes => {
                let (lstm, name) = lstm_request();
                (ModelSpec::Bytes(BytesRequest { preset: preset_name.clone(), lstm, text: false }), name)
            }
            ModelArg::Bytectx => (ModelSpec::ByteCtx(preset_name.clone()), preset_name.clone()),
            ModelArg::Lstm => {
                let (req, name) = lstm_request();
                (ModelSpec::Lstm(req), name)
            }
            ModelArg::Transformer => {
                let req = TransformerRequest {
                    preset: preset_name.clone(),
                    layers: self.layers,
                    d_model: self.hidden,
                    batch: self.batch,
                    seg_len: self.seg_len,
                    lr: self.lr,
                    mix: !self.no_mix,
                };
                let overridden = req != TransformerRequest::preset(&preset_name);
                let name = format!("transformer-{}{}", preset_name, if overridden { "+custom" } else { "" });
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
