//! The `nnz` command: arguments, files and streams, progress. The library's engine
//! does the work; this module only moves bytes and reports.

pub mod args;
pub mod io;
pub mod progress;

use crate::engine;
use anyhow::{Context, Result};
use args::{Cli, Command, CommonArgs, CompressArgs};
use progress::Bar;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    io::remove_temp_files_on_interrupt();
    // A bad NNZ_KERNEL is a clear error now, not a surprise in the middle of a file.
    crate::kernels::select_from_env()?;
    crate::device::select_from_env()?;
    match cli.command {
        Command::Compress(args) => compress(&args),
        Command::Decompress(args) => decompress(&args),
        Command::Info { files } => {
            // Written with write_all, not println!: a reader that goes away (`nnz info f |
            // head -1`) is a broken pipe error, which main() treats as a quiet end.
            let mut stdout = std::io::stdout().lock();
            for (i, f) in files.iter().enumerate() {
                let sep = if i > 0 { "\n" } else { "" };
                stdout.write_all(format!("{sep}{}", info(f)?).as_bytes())?;
            }
            stdout.flush()?;
            Ok(())
        }
    }
}

/// `writeln!` into a String, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        writeln!($out, $($arg)*).expect("writing to a String cannot fail")
    }};
}

/// `--device`, over `NNZ_DEVICE`.
fn select_device(c: &CommonArgs) -> Result<()> {
    if let Some(name) = &c.device {
        crate::device::select(crate::device::parse(name)?);
    }
    Ok(())
}

fn compress(args: &CompressArgs) -> Result<()> {
    let c = &args.common;
    select_device(c)?;
    if crate::device::active() == crate::device::Device::Cuda && args.model != args::ModelArg::Transformer && !c.quiet {
        eprintln!("nnz: note: only the Transformer (--model transformer) runs on a GPU; this model runs on the CPU");
    }
    let opts = args.options()?;
    let input = io::input_path(&c.input);
    let sink = io::resolve_sink(input, &c.output, c.stdout, true)?;
    io::check_sink(&sink, input, c.force, true)?;
    let (mut reader, size) = io::open_input(input)?;
    let start = Instant::now();
    let bar = Bar::new(size, c.quiet);
    bar.phase("reading, building dictionary");
    let mut out = io::Output::create(&sink, c.force, input)?;
    let totals = engine::compress_stream(&mut reader, &mut out, &opts, args.block_size, c.thread_count(), &mut |p| {
        bar.update(p)
    })?;
    out.commit()?;
    bar.finish();
    summary(&bar, input, totals.original_bytes, totals.compressed_bytes, start);
    if args.stats {
        print_stats(&totals, start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// `--stats`: the numbers a tuner needs, on standard error.
fn print_stats(s: &engine::Stats, total_secs: f64) {
    let bpb = |bytes: u64| bits_per_byte(bytes, s.original_bytes);
    let header_bytes = s.compressed_bytes - s.payload_bytes - s.dictionary_bytes;
    eprintln!("frames            {} ({} stored as is)", s.frames, s.stored_frames);
    eprintln!("original bytes    {}", s.original_bytes);
    eprintln!("compressed bytes  {} ({:.4} bits/byte)", s.compressed_bytes, bpb(s.compressed_bytes));
    eprintln!("  payload         {} ({:.4} bits/byte)", s.payload_bytes, bpb(s.payload_bytes));
    eprintln!("  dictionary      {} ({:.4} bits/byte)", s.dictionary_bytes, bpb(s.dictionary_bytes));
    eprintln!("  headers, stored {header_bytes} ({:.4} bits/byte)", bpb(header_bytes));
    let per_symbol = if s.symbols > 0 { s.original_bytes as f64 / s.symbols as f64 } else { 0.0 };
    eprintln!("symbols           {} ({per_symbol:.3} bytes/symbol)", s.symbols);
    eprintln!("time              {total_secs:.3} s");
    eprintln!("  tokenizer       {:.3} s", s.tokenizer_secs);
    eprintln!("  model           {:.3} s", s.model_secs);
    for (part, secs) in &s.model_breakdown {
        eprintln!("    {part:<13} {secs:.3} s");
    }
    eprintln!("  coder           {:.3} s", s.coder_secs);
}

fn decompress(c: &CommonArgs) -> Result<()> {
    select_device(c)?;
    let input = io::input_path(&c.input);
    let sink = io::resolve_sink(input, &c.output, c.stdout, false)?;
    io::check_sink(&sink, input, c.force, false)?;
    let (mut reader, _) = io::open_input(input)?;
    let name = input.map_or("standard input".to_string(), |p| format!("'{}'", p.display()));
    let start = Instant::now();
    let bar = Bar::new(None, c.quiet);
    let mut out = io::Output::create(&sink, c.force, input)?;
    let totals = engine::decompress_stream(&mut reader, &mut out, c.thread_count(), &mut |p| bar.update(p))
        .with_context(|| format!("cannot decompress {name}"))?;
    out.commit()?;
    bar.finish();
    summary(&bar, input, totals.original_bytes, totals.compressed_bytes, start);
    Ok(())
}

/// One line after the work, like zstd's, when a progress bar was shown.
fn summary(bar: &Bar, input: Option<&Path>, original: u64, compressed: u64, start: Instant) {
    if !bar.visible() {
        return;
    }
    let name = input.map_or("stdin".to_string(), |p| p.display().to_string());
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {original} <-> {compressed} bytes, {:.3} bits/byte, {:.1} s, {:.1} kB/s",
        bits_per_byte(compressed, original),
        secs,
        original as f64 / 1000.0 / secs.max(1e-9)
    );
}

fn bits_per_byte(compressed: u64, original: u64) -> f64 {
    if original == 0 {
        0.0
    } else {
        compressed as f64 * 8.0 / original as f64
    }
}

/// What `nnz info` prints for one file.
fn info(path: &Path) -> Result<String> {
    let mut out = String::new();
    let cannot = || format!("cannot read '{}'", path.display());
    let file = std::fs::read(path).with_context(cannot)?;
    let frames = engine::list_frames(&file).with_context(cannot)?;
    let h = &frames[0]; // list_frames returns at least one frame or an error
    let original: u64 = frames.iter().map(|f| f.original_len).sum();
    let symbols: u64 = frames.iter().map(|f| f.symbols).sum();
    outln!(out, "file:              {}", path.display());
    let mut versions: Vec<String> = frames.iter().map(|f| f.version.to_string()).collect();
    versions.sort();
    versions.dedup(); // a concatenation of files may mix versions
    outln!(out, "format version:    {}", versions.join(", "));
    outln!(out, "frames:            {}", frames.len());
    if h.stored {
        outln!(out, "model:             none (stored as is)");
    } else {
        let preset = if h.preset.is_empty() { String::new() } else { format!(", preset {}", h.preset) };
        outln!(out, "model:             {}{preset}", h.model.name());
        outln!(out, "numerics version:  {}", h.numerics);
        // Each frame chooses its own filter and primer: name every filter the file uses,
        // and how much of the primer its frames learned from.
        let (mut filters, mut primed, mut most) = (Vec::new(), 0, 0);
        for f in &frames {
            let Some(cfg) = engine::frame_byte_config(f).with_context(cannot)? else { continue };
            if cfg.filter != crate::filter::Filter::None && !filters.contains(&cfg.filter) {
                filters.push(cfg.filter);
            }
            if cfg.primer > 0 {
                primed += 1;
                most = most.max(cfg.primer);
            }
        }
        for filter in filters {
            outln!(out, "filter:            {}", filter.describe());
        }
        if primed > 0 {
            let of = if frames.len() > 1 { format!(" ({primed} of {} frames)", frames.len()) } else { String::new() };
            outln!(out, "primer:            {most} bytes of nnz's built-in English text{of}");
        }
    }
    match &h.tokenizer {
        Some(t) => outln!(
            out,
            "tokenizer:         up to {} symbols, min frequency {}, dictionary {} bytes",
            t.max_vocab,
            t.min_freq,
            t.dictionary.len()
        ),
        None => outln!(out, "tokenizer:         none (raw bytes)"),
    }
    outln!(out, "original size:     {original}");
    outln!(out, "compressed size:   {}", file.len());
    outln!(out, "symbols:           {symbols}");
    outln!(out, "bits per byte:     {:.4}", bits_per_byte(file.len() as u64, original));
    if frames.len() == 1 {
        outln!(out, "checksum (xxh64):  {:016x}", h.checksum);
    } else {
        outln!(out, "checksums (xxh64): one per frame, first {:016x}", h.checksum);
    }
    Ok(out)
}
