//! The `nnz` command: arguments, files and streams, progress. The library's engine
//! does the work; this module only moves bytes and reports.

pub mod args;
pub mod io;
pub mod progress;

use crate::engine;
use anyhow::{Context, Result};
use args::{Cli, Command, CommonArgs, CompressArgs};
use progress::Bar;
use std::path::Path;
use std::time::Instant;

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Compress(args) => compress(&args),
        Command::Decompress(args) => decompress(&args),
        Command::Info { files } => {
            for (i, f) in files.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                info(f)?;
            }
            Ok(())
        }
    }
}

fn compress(args: &CompressArgs) -> Result<()> {
    let c = &args.common;
    let opts = args.options()?;
    let input = io::input_path(&c.input);
    let sink = io::resolve_sink(input, &c.output, c.stdout, true)?;
    io::check_sink(&sink, input, c.force, true)?;
    let data = io::read_input(input)?;
    let start = Instant::now();
    let bar = Bar::new(data.len() as u64, c.quiet);
    bar.phase("building dictionary");
    let packed = engine::compress(&data, &opts, &mut |p| bar.update(p))?;
    bar.finish();
    io::write_output(&sink, &packed, c.force, input)?;
    summary(&bar, input, data.len(), packed.len(), start);
    Ok(())
}

fn decompress(c: &CommonArgs) -> Result<()> {
    let input = io::input_path(&c.input);
    let sink = io::resolve_sink(input, &c.output, c.stdout, false)?;
    io::check_sink(&sink, input, c.force, false)?;
    let file = io::read_input(input)?;
    let name = input.map_or("standard input".to_string(), |p| {
        format!("'{}'", p.display())
    });
    let (header, _) =
        engine::read_header(&file).with_context(|| format!("cannot decompress {name}"))?;
    let start = Instant::now();
    let bar = Bar::new(header.original_len, c.quiet);
    let data = engine::decompress(&file, &mut |p| bar.update(p))
        .with_context(|| format!("cannot decompress {name}"))?;
    bar.finish();
    io::write_output(&sink, &data, c.force, input)?;
    summary(&bar, input, data.len(), file.len(), start);
    Ok(())
}

/// One line after the work, like zstd's, when a progress bar was shown.
fn summary(bar: &Bar, input: Option<&Path>, original: usize, compressed: usize, start: Instant) {
    if !bar.visible() {
        return;
    }
    let name = input.map_or("stdin".to_string(), |p| p.display().to_string());
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {original} <-> {compressed} bytes, {:.3} bits/byte, {:.1} s, {:.1} kB/s",
        bits_per_byte(compressed as u64, original as u64),
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

fn info(path: &Path) -> Result<()> {
    let file = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let (h, payload) =
        engine::read_header(&file).with_context(|| format!("cannot read '{}'", path.display()))?;
    println!("file:              {}", path.display());
    println!("format version:    {}", crate::format::FORMAT_VERSION);
    if h.stored {
        println!("model:             none (stored as is)");
    } else {
        let preset = if h.preset.is_empty() {
            String::new()
        } else {
            format!(", preset {}", h.preset)
        };
        println!("model:             {}{preset}", h.model.name());
        println!("numerics version:  {}", h.numerics);
    }
    match &h.tokenizer {
        Some(t) => println!(
            "tokenizer:         up to {} symbols, min frequency {}, dictionary {} bytes",
            t.max_vocab,
            t.min_freq,
            t.dictionary.len()
        ),
        None => println!("tokenizer:         none (raw bytes)"),
    }
    println!("original size:     {}", h.original_len);
    println!("compressed size:   {}", file.len());
    println!("payload:           {payload} bytes, {} symbols", h.symbols);
    println!(
        "bits per byte:     {:.4}",
        bits_per_byte(file.len() as u64, h.original_len)
    );
    println!("checksum (xxh64):  {:016x}", h.checksum);
    Ok(())
}
