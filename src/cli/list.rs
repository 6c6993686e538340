//! `nnz info` and `nnz -l`: what a `.nnz` file holds, read from its headers alone.

use super::bits_per_byte;
use crate::engine;
use anyhow::{Context, Result};
use std::path::Path;

/// `writeln!` into a String, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        writeln!($out, $($arg)*).expect("writing to a String cannot fail")
    }};
}

/// What `nnz info` prints for one file.
pub fn info(path: &Path) -> Result<String> {
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

/// One file's line of `nnz -l`.
pub struct Listed {
    pub frames: usize,
    pub compressed: u64,
    pub original: u64,
    pub model: String,
}

/// Reads the headers of `path` for `nnz -l`.
pub fn listed(path: &Path) -> Result<Listed> {
    let cannot = || format!("cannot read '{}'", path.display());
    let file = std::fs::read(path).with_context(cannot)?;
    let frames = engine::list_frames(&file).with_context(cannot)?;
    let name = |h: &crate::format::Header| {
        if h.stored {
            "store".to_string()
        } else {
            // The short name ("bytectx", "lstm+ngram"), and the preset where there is one.
            let short = h.model.name().split(' ').next().unwrap_or_default();
            if h.preset.is_empty() {
                short.to_string()
            } else {
                format!("{short} {}", h.preset)
            }
        }
    };
    let mut models: Vec<String> = frames.iter().filter(|h| !h.stored).map(name).collect();
    models.dedup();
    let model = match models.len() {
        0 => "store".to_string(),
        1 => models.remove(0),
        _ => "several".to_string(),
    };
    Ok(Listed {
        frames: frames.len(),
        compressed: file.len() as u64,
        original: frames.iter().map(|f| f.original_len).sum(),
        model,
    })
}

/// The table's heading, as `xz -l` has one.
pub const LIST_HEADING: &str = "Frames   Compressed  Uncompressed   Ratio  Bits/byte  Model              Filename";

/// One row of the table; `name` is the file's, or the totals' label.
pub fn list_row(l: &Listed, name: &str) -> String {
    let ratio = if l.original == 0 { 0.0 } else { l.compressed as f64 / l.original as f64 };
    format!(
        "{:>6} {:>12} {:>13} {:>7.4} {:>10.4}  {:<18} {name}",
        l.frames,
        l.compressed,
        l.original,
        ratio,
        bits_per_byte(l.compressed, l.original),
        l.model
    )
}
