//! The results: one row per tool and file, written as CSV, Markdown and an SVG plot.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Columns of results.csv, in order. The integration test checks them.
pub const CSV_COLUMNS: &[&str] = &[
    "file",
    "original_bytes",
    "tool",
    "kind",
    "compressed_bytes",
    "bits_per_byte",
    "compress_s",
    "decompress_s",
    "compress_kB_s",
    "decompress_kB_s",
    "compress_peak_kB",
    "decompress_peak_kB",
    "status",
    "note",
];

/// Outcome of one tool on one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Compressed, decompressed, and the output matched the input byte for byte.
    Ok,
    /// Both steps succeeded but the decoded bytes differ from the input.
    Mismatch,
    /// A step ran past `--timeout` and was killed.
    Timeout,
    /// A step failed (non-zero exit, signal, missing output).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Mismatch => "mismatch",
            Status::Timeout => "timeout",
            Status::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    pub file: String,
    pub original: u64,
    pub tool: String,
    pub kind: &'static str,
    pub compressed: Option<u64>,
    pub compress: Option<(Duration, Option<u64>)>,
    pub decompress: Option<(Duration, Option<u64>)>,
    pub status: Status,
    /// Why a row is not ok (which step, exit status, last line of its stderr).
    pub note: String,
}

impl Row {
    pub fn bits_per_byte(&self) -> Option<f64> {
        let c = self.compressed?;
        Some(if self.original == 0 { 0.0 } else { 8.0 * c as f64 / self.original as f64 })
    }

    pub fn compress_speed(&self) -> Option<f64> {
        self.compress.map(|(t, _)| kb_per_s(self.original, t))
    }

    pub fn decompress_speed(&self) -> Option<f64> {
        self.decompress.map(|(t, _)| kb_per_s(self.original, t))
    }
}

/// Original kilobytes (1000 bytes) per second.
fn kb_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1000.0 / t.as_secs_f64().max(1e-6)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

pub fn write_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write '{}'", path.display()))?;
    w.write_record(CSV_COLUMNS)?;
    for r in rows {
        w.write_record([
            r.file.clone(),
            r.original.to_string(),
            r.tool.clone(),
            r.kind.to_string(),
            opt(r.compressed, |c| c.to_string()),
            opt(r.bits_per_byte(), |b| format!("{b:.4}")),
            opt(r.compress, |(t, _)| format!("{:.3}", t.as_secs_f64())),
            opt(r.decompress, |(t, _)| format!("{:.3}", t.as_secs_f64())),
            opt(r.compress_speed(), |s| format!("{s:.1}")),
            opt(r.decompress_speed(), |s| format!("{s:.1}")),
            opt(r.compress.and_then(|(_, m)| m), |m| m.to_string()),
            opt(r.decompress.and_then(|(_, m)| m), |m| m.to_string()),
            r.status.as_str().to_string(),
            r.note.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Context printed above the table.
pub struct Header {
    pub command: String,
    pub machine: String,
    pub timeout_s: u64,
    pub missing: Vec<String>,
}

pub fn write_markdown(path: &Path, rows: &[Row], h: &Header) -> Result<()> {
    let mut s = String::new();
    writeln!(s, "# nnz compared with other compressors\n")?;
    writeln!(s, "- command: `{}`", h.command)?;
    writeln!(s, "- machine: {}", h.machine)?;
    writeln!(
        s,
        "- every round trip is checked byte for byte; speeds are original kB (1000 bytes) \
         per second of wall time; peak memory is the maximum resident set of the process \
         and its children (the kernel counts the spawning process's own few MB in it, so \
         about 3 MB is the floor); each step is limited to {} s",
        h.timeout_s
    )?;
    writeln!(s)?;
    let mut files: Vec<(&str, u64)> = Vec::new();
    for r in rows {
        if !files.iter().any(|(f, _)| *f == r.file) {
            files.push((&r.file, r.original));
        }
    }
    for (file, original) in files {
        writeln!(s, "## {file} ({original} bytes)\n")?;
        writeln!(s, "| tool | bytes | bits/byte | compress kB/s | decompress kB/s | peak MB (c / d) | status |")?;
        writeln!(s, "|---|--:|--:|--:|--:|--:|---|")?;
        // Best compression first; rows without a size at the end, in run order.
        let mut these: Vec<&Row> = rows.iter().filter(|r| r.file == file).collect();
        these.sort_by(|a, b| {
            let key = |r: &Row| r.bits_per_byte().filter(|_| r.status == Status::Ok);
            match (key(a), key(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
        for r in these {
            let mb = |m: Option<(Duration, Option<u64>)>| {
                opt(m.and_then(|(_, k)| k), |k| format!("{:.1}", k as f64 / 1024.0))
            };
            let status = if r.note.is_empty() {
                r.status.as_str().to_string()
            } else {
                format!("{}: {}", r.status.as_str(), r.note.replace('|', "\\|"))
            };
            let tool = if r.kind == "nnz" { format!("**{}**", r.tool) } else { r.tool.clone() };
            writeln!(
                s,
                "| {tool} | {} | {} | {} | {} | {} / {} | {status} |",
                opt(r.compressed, |c| c.to_string()),
                opt(r.bits_per_byte(), |b| format!("{b:.3}")),
                opt(r.compress_speed(), speed),
                opt(r.decompress_speed(), speed),
                mb(r.compress),
                mb(r.decompress),
            )?;
        }
        writeln!(s)?;
    }
    if !h.missing.is_empty() {
        writeln!(s, "Not found on the search path, skipped:\n")?;
        for m in &h.missing {
            writeln!(s, "- {m}")?;
        }
        writeln!(s)?;
    }
    std::fs::write(path, s).with_context(|| format!("cannot write '{}'", path.display()))
}

/// Three significant digits or so, without scientific notation.
fn speed(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Colours for the files of the plot: dark enough for labels beside them on white.
const FILE_COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Bits per byte (y) against compression speed (x, log scale), one labelled point per
/// tool and file that round-tripped; one colour per file.
pub fn write_plot(path: &Path, rows: &[Row]) -> Result<()> {
    let points: Vec<(&Row, f64, f64)> = rows
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| Some((r, r.compress_speed()?, r.bits_per_byte()?)))
        .filter(|&(_, x, _)| x > 0.0) // an empty file has no speed on a log axis
        .collect();
    let mut files: Vec<&str> = Vec::new();
    for (r, _, _) in &points {
        if !files.contains(&r.file.as_str()) {
            files.push(&r.file);
        }
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(_, x, y) in &points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if points.is_empty() {
        (x0, x1, y0, y1) = (1.0, 1000.0, 0.0, 8.0);
    }
    // Room for the labels: a factor of 3 on the log axis, a margin on the linear one.
    let (x0, x1) = ((x0 / 3.0).max(1e-3), x1 * 3.0);
    let pad = ((y1 - y0) * 0.1).max(0.1);
    let (y0, y1) = ((y0 - pad).max(0.0), y1 + pad);

    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing '{}': {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Bits per byte against compression speed (lower is better)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("compression speed, kB/s (log scale)")
        .y_desc("bits per byte")
        .x_label_formatter(&|v| speed(*v))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, file) in files.iter().enumerate() {
        let color = FILE_COLORS[i % FILE_COLORS.len()];
        let mine: Vec<(&Row, f64, f64)> = points.iter().filter(|(r, _, _)| r.file == *file).copied().collect();
        chart
            .draw_series(mine.iter().map(|&(r, x, y)| {
                let size = if r.kind == "nnz" { 6 } else { 4 };
                EmptyElement::at((x, y))
                    + Circle::new((0, 0), size, color.filled())
                    + Text::new(r.tool.clone(), (7, -12), ("sans-serif", 13))
            }))
            .map_err(|e| err(&e))?
            .label(*file)
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    if !files.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
