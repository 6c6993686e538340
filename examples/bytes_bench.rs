//! Bits per byte of the byte context model (alone, or mixed with the LSTM over bytes)
//! on files, by ideal code length (−Σ log2 p), without the coder or the container.
//!
//! ```sh
//! cargo run --release --example bytes_bench -- [--preset fast] [--lstm fast] FILE...
//! ```
//! `--max N` reads only the first N bytes of each file; `--choose` only prints whether the
//! byte model treats the file as text; `--batch N` runs the context model alone over N lock-step
//! streams, as the LSTM's batch splits a file (the LSTM's preset sets it otherwise);
//! `--x86 auto|on|off` applies the x86 filter as `nnz compress` chooses it, always or never.
//! What `nnz compress` runs: `-p fast` is `--preset fast` alone
//! (no `--lstm`); `-p default` is `--preset default --lstm default` with the LSTM's
//! streams of at least 256 KiB (`LSTM_BATCH=1` for alice29.txt, `2` for book1).
//! Tuning overrides: `BYTES_LR`, `BYTES_PRUNE`, `BYTES_LIMIT`, `BYTES_TABLE_BITS`, `BYTES_GEN`
//! (the model generation, 1 to 7),
//! `BYTES_PRIMER` (bytes of the primer; text only by default), `LSTM_BATCH`.

use nnz::filter::Filter;
use nnz::model::bytectx::{ByteCtx, ByteCtxConfig, ByteMix};
use nnz::model::lstm::{Lstm, LstmConfig};
use nnz::model::{step_cost, Predictor};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut preset, mut lstm, mut max) = ("fast".to_string(), None::<String>, usize::MAX);
    let mut files = Vec::new();
    let mut choose_only = false;
    let mut batch = 1usize;
    let mut x86 = "auto".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--preset" => preset = args.next().expect("--preset NAME"),
            "--lstm" => lstm = Some(args.next().expect("--lstm PRESET")),
            "--max" => max = args.next().expect("--max N").parse()?,
            "--choose" => choose_only = true,
            "--batch" => batch = args.next().expect("--batch N").parse()?,
            "--x86" => x86 = args.next().expect("--x86 auto|on|off"),
            _ => files.push(a),
        }
    }
    for f in files {
        let mut data = std::fs::read(&f)?;
        data.truncate(max);
        // The x86 filter, as `nnz compress` chooses it (or forced on or off).
        let filter = match x86.as_str() {
            "on" => Filter::X86,
            "off" => Filter::None,
            _ => Filter::choose(&data),
        };
        eprintln!("{f}\tx86 {:?}\tfilter {filter:?}", nnz::filter::x86::stats(&data));
        let data = filter.forward(&data);
        if choose_only {
            let text = nnz::choose::text_bytes(&data);
            let kind = if nnz::choose::counts_as_text(data.len() as u64, text) { "text" } else { "binary" };
            let share = text as f64 / data.len().max(1) as f64;
            println!("{f}\t{kind}\ttext share {share:.4}");
            continue;
        }
        let mut cfg = ByteCtxConfig::preset_for(&preset, data.len() as u64)?;
        // Tuning overrides.
        if let Ok(v) = std::env::var("BYTES_LR") {
            cfg.lr = v.parse()?;
        }
        if let Ok(v) = std::env::var("BYTES_PRUNE") {
            cfg.prune = v.parse()?;
        }
        if let Ok(v) = std::env::var("BYTES_TABLE_BITS") {
            cfg.table_bits = v.parse()?;
        }
        if let Ok(v) = std::env::var("BYTES_GEN") {
            cfg.generation = v.parse()?;
        }
        if let Ok(v) = std::env::var("BYTES_LIMIT") {
            cfg.limit = v.parse()?;
        }
        // As `nnz compress`: the primer for text only (`BYTES_PRIMER=N` overrides).
        if !nnz::choose::is_text(&data) {
            cfg.primer = 0;
        }
        if let Ok(v) = std::env::var("BYTES_PRIMER") {
            cfg.primer = v.parse()?;
        }
        let mut model: Box<dyn Predictor> = match &lstm {
            None => Box::new(ByteCtx::new(&cfg, batch)),
            Some(p) => {
                let mut lc = LstmConfig::preset_for(p, data.len() as u64, 256)?;
                if let Ok(v) = std::env::var("LSTM_BATCH") {
                    lc.batch = v.parse()?;
                }
                Box::new(ByteMix::new(Box::new(Lstm::new(&lc, 256)?), &cfg)?)
            }
        };
        let b = model.batch();
        let len = data.len().div_ceil(b);
        let mut probs = Vec::new();
        let mut step = vec![0u16; b];
        let mut bits = 0.0f64;
        // `BYTES_COSTS=PATH`: every step's cost in bits, as little-endian f32 (one per
        // step of B bytes), for analysis.
        let costs_path = std::env::var("BYTES_COSTS").ok();
        let mut costs = costs_path.as_ref().map(|_| Vec::with_capacity(len));
        let start = Instant::now();
        for t in 0..len {
            let mut n = 0;
            for (s, sym) in step.iter_mut().enumerate() {
                let i = s * len + t;
                *sym = if i < data.len() { data[i] as u16 } else { 0 };
                n += (i < data.len()) as usize;
            }
            // Streams end only at the tail, so the live ones are the first `n`. The
            // engine's path: bit by bit where the model has one (`nnz compress`).
            let c = step_cost(model.as_mut(), &step, n, &mut probs);
            bits += c;
            if let Some(costs) = costs.as_mut() {
                costs.push(c as f32);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if let (Some(path), Some(costs)) = (&costs_path, &costs) {
            std::fs::write(path, costs.iter().flat_map(|c| c.to_le_bytes()).collect::<Vec<u8>>())?;
        }
        println!(
            "{f}\t{} bytes\t{:.4} bpb\t{:.0} kB/s\tB={b}",
            data.len(),
            bits / data.len() as f64,
            data.len() as f64 / 1000.0 / secs
        );
    }
    Ok(())
}
