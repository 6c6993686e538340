//! Ideal code length and speed of the LSTM predictor on one file, bytes as symbols (V = 256).
//!
//! ```text
//! cargo run --release --example lstm_bench -- FILE [PRESET] [key=value ...]
//! cargo run --release --example lstm_bench -- /work/shared/corpus/calgary/book1 fast
//! cargo run --release --example lstm_bench -- book1 default layers=2 hidden=128 lr=0.008 limit=100000
//! ```
//!
//! The file is cut into `batch` contiguous streams coded in lock step, exactly as the
//! engine does; the ideal code length is `Σ −log2 p(actual byte)` over the real bytes
//! (padding after a short last stream is not counted). The preset is adapted to the
//! input's length (`LstmConfig::preset_for_len`) before the overrides apply. Keys: any numeric field of
//! `LstmConfig` (layers, hidden, embed, batch, seg_len, lr, lr_min, lr_decay, beta1, beta2,
//! adam_eps, grad_clip, forget_bias, out_grad_min, seed), plus `limit=N` to use only the first N bytes and
//! `vocab=N` to time a model with an N-symbol output layer (bytes are still the symbols),
//! and `bpe=N` to code symbols from N greedy byte-pair merges instead of bytes (a stand-in
//! tokenizer; the dictionary's own cost is not counted).

use anyhow::{bail, Context, Result};
use nnz::model::lstm::{Lstm, LstmConfig};
use nnz::model::Predictor;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        bail!("usage: lstm_bench FILE [PRESET] [key=value ...]");
    };
    let preset = args.get(1).map(String::as_str).unwrap_or("fast");
    let mut data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    for kv in args.iter().skip(2) {
        if let Some(n) = kv.strip_prefix("limit=") {
            data.truncate(n.parse().context("limit: not an integer")?);
        }
    }
    // Optional stand-in tokenizer (plain byte-pair merges), to see what symbols longer
    // than a byte do to the LSTM before the real tokenizer lands.
    let mut symbols: Vec<u16> = data.iter().map(|&x| x as u16).collect();
    let mut vocab = 256;
    for kv in args.iter().skip(2) {
        if let Some(n) = kv.strip_prefix("bpe=") {
            let t0 = Instant::now();
            vocab = 256 + bpe(&mut symbols, n.parse().context("bpe: not an integer")?);
            println!(
                "bpe: {} bytes -> {} symbols, vocabulary {vocab}, in {:.1}s",
                data.len(),
                symbols.len(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    // The preset adapted to the input's length, as the compressor does; overrides follow.
    let mut cfg = LstmConfig::preset_for_len(preset, symbols.len() as u64)?;
    for kv in args.iter().skip(2) {
        let (k, v) = kv.split_once('=').with_context(|| format!("expected key=value, got {kv}"))?;
        let u = || v.parse::<usize>().with_context(|| format!("{k}: not an integer"));
        let f = || v.parse::<f32>().with_context(|| format!("{k}: not a number"));
        match k {
            "layers" => cfg.layers = u()?,
            "hidden" => cfg.hidden = u()?,
            "embed" => cfg.embed = u()?,
            "batch" => cfg.batch = u()?,
            "seg_len" => cfg.seg_len = u()?,
            "lr" => cfg.lr = f()?,
            "lr_min" => cfg.lr_min = f()?,
            "lr_decay" => cfg.lr_decay = f()?,
            "beta1" => cfg.beta1 = f()?,
            "beta2" => cfg.beta2 = f()?,
            "adam_eps" => cfg.adam_eps = f()?,
            "grad_clip" => cfg.grad_clip = f()?,
            "forget_bias" => cfg.forget_bias = f()?,
            "out_grad_min" => cfg.out_grad_min = f()?,
            "seed" => cfg.seed = v.parse()?,
            "limit" | "bpe" => {}
            // A larger alphabet than the bytes use, to time the output layer at a
            // tokenizer's vocabulary size (the extra symbols never occur).
            "vocab" => vocab = u()?.max(256),
            _ => bail!("unknown key {k}"),
        }
    }
    let v = vocab;
    let mut model = Lstm::new(&cfg, v)?;
    let b = cfg.batch;
    let n = symbols.len();
    let nbytes = data.len();
    let stream_len = n.div_ceil(b);
    println!(
        "file {path}: {nbytes} bytes, {n} symbols; preset {preset}: {cfg:?}\nparams {}, {} streams of {stream_len} symbols",
        model.num_params(),
        b
    );
    let mut probs = vec![0.0f32; b * v];
    let mut syms = vec![0u16; b];
    let mut bits = 0.0f64;
    let start = Instant::now();
    let mut next_report = 1usize;
    for t in 0..stream_len {
        model.predict(&mut probs);
        for s in 0..b {
            let i = s * stream_len + t;
            syms[s] = if i < n { symbols[i] } else { 0 };
            if i < n {
                // Bench-only measurement: f64 ln does not reach any coded bit.
                bits -= (probs[s * v + syms[s] as usize] as f64).log2();
            }
        }
        model.update(&syms);
        if t + 1 == next_report * stream_len / 10 {
            let done = (t + 1) * b;
            println!(
                "  {:3}%: {:.4} bpb so far, {:.0} B/s",
                next_report * 10,
                bits * n as f64 / (done.min(n) as f64 * nbytes as f64),
                done.min(n) as f64 * nbytes as f64 / n as f64 / start.elapsed().as_secs_f64()
            );
            next_report += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let tm = model.timings();
    let gflop = 2.0 * 3.0 * model.forward_macs_per_step() as f64 * stream_len as f64 / 1e9;
    println!(
        "RESULT {path} preset={preset} bytes={nbytes} symbols={n} vocab={v} bpb={:.4} speed={:.0} B/s ({:.0} symbols/s) time={secs:.1}s (~{:.1} GFLOP/s, fwd+bwd ≈ 3× fwd)",
        bits / nbytes as f64,
        nbytes as f64 / secs,
        n as f64 / secs,
        gflop / secs
    );
    if cfg.out_grad_min > 0.0 {
        println!(
            "sparse output backward: {:.0} of {v} columns active per gradient step on average",
            model.mean_active_columns()
        );
    }
    let pct = |d: std::time::Duration| 100.0 * d.as_secs_f64() / secs;
    println!(
        "time: forward lstm {:.1}%, forward output+softmax {:.1}%, backward output {:.1}%, backward lstm {:.1}%, adam {:.1}%",
        pct(tm.forward_lstm),
        pct(tm.forward_output),
        pct(tm.backward_output),
        pct(tm.backward_lstm),
        pct(tm.optimizer)
    );
    Ok(())
}

/// Greedy byte-pair encoding, in place: `merges` times, the most frequent adjacent pair
/// (ties: the smallest pair) becomes a new symbol. Returns the number of merges done.
/// A quick stand-in for the project's tokenizer, for measurements only.
fn bpe(seq: &mut Vec<u16>, merges: usize) -> usize {
    use std::collections::HashMap;
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for m in 0..merges {
        counts.clear();
        for w in seq.windows(2) {
            *counts.entry((w[0] as u32) << 16 | w[1] as u32).or_insert(0) += 1;
        }
        // Max count, then smallest pair: independent of the map's order.
        let Some((&pair, &count)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            return m;
        };
        if count < 2 {
            return m;
        }
        let (x, y, new) = ((pair >> 16) as u16, pair as u16, (256 + m) as u16);
        let mut out = 0;
        let mut i = 0;
        while i < seq.len() {
            if i + 1 < seq.len() && seq[i] == x && seq[i + 1] == y {
                seq[out] = new;
                i += 2;
            } else {
                seq[out] = seq[i];
                i += 1;
            }
            out += 1;
        }
        seq.truncate(out);
    }
    merges
}
