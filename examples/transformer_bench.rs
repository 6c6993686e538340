//! Ideal code length and speed of the Transformer predictor on one file, as the
//! compressor runs it: the project's tokenizer (or bytes), the preset adapted to the
//! input, mixed with the order-2 model (or not).
//!
//! ```text
//! cargo run --release --example transformer_bench -- FILE [PRESET] [key=value ...]
//! cargo run --release --example transformer_bench -- /work/shared/corpus/calgary/book1 default
//! cargo run --release --example transformer_bench -- book1 default lr=0.002 retrain_every=4096 retrain_len=2048
//! ```
//!
//! Keys: any numeric field of `TransformerConfig` (layers, d_model, heads, d_ff, group,
//! batch, seg_len, mem_segs, retrain_every, retrain_len, lr, lr_min, lr_decay, retrain_lr, beta1,
//! beta2, adam_eps, grad_clip, norm_eps, alibi, lr_emb, lr_out, lr_rel, seed), plus `limit=N` (first N bytes only),
//! `tok=N` (tokenizer vocabulary, default 16384; `tok=0` codes bytes) and `mix=0|1`
//! (default 1: mixed with the order-2 model as `nnz compress` does). The ideal code
//! length is `Σ −log2 p(actual symbol)` plus the dictionary; the coder adds < 0.1%.
//!
//! # Measured (2 vCPUs sharing one Zen 5 core, AVX-512 kernels, release build)
//!
//! ```text
//! file                 preset   mix  bpb (+dict)        CPU s   time: fwd layers/attn/out, bwd out/layers, adam, mix (%)
//! calgary/book1        default  yes  2.2714 (2.3189)    23.9    19 7 5, 11 47, 8, 3
//! calgary/book1        default  no   2.4548 (2.5023)    22.2    20 8 5, 11 47, 8, -
//! dickens, first 2 MB  default  yes  1.9584 (1.9954)    55.3
//! ```
//!
//! With the per-group learning rates and input-sized presets (2026-11-27; book1 in 2
//! streams with `default`, 4 with `fast`; another job on the core):
//!
//! ```text
//! calgary/book1        default  yes  2.1683 (2.2158)    55.3
//! calgary/book1        fast     yes  2.1828 (2.2303)    13.4
//! ```
//!
//! The module docs of `nnz::model::transformer` list what else was tried.

use anyhow::{bail, Context, Result};
use nnz::model::mix::Mix;
use nnz::model::transformer::{Transformer, TransformerConfig};
use nnz::model::Predictor;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        bail!("usage: transformer_bench FILE [PRESET] [key=value ...]");
    };
    let preset = args.get(1).map(String::as_str).unwrap_or("default");
    let mut data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let (mut tok, mut mix) = (16384u32, true);
    for kv in args.iter().skip(2) {
        let (k, v) = kv.split_once('=').with_context(|| format!("expected key=value, got {kv}"))?;
        match k {
            "limit" => data.truncate(v.parse().context("limit: not an integer")?),
            "tok" => tok = v.parse().context("tok: not an integer")?,
            "mix" => mix = v != "0",
            _ => {}
        }
    }
    let (symbols, vocab, dict_bits) = if tok > 0 {
        let opts = nnz::tokenizer::Options { max_vocab: tok, ..Default::default() };
        let dict = nnz::tokenizer::Dictionary::build(&data, &opts);
        (dict.encode(&data), dict.vocab_size(), 8.0 * dict.to_bytes().len() as f64)
    } else {
        (data.iter().map(|&x| x as u16).collect::<Vec<u16>>(), 256, 0.0)
    };
    let mut cfg = TransformerConfig::preset_for(preset, symbols.len() as u64, vocab)?;
    for kv in args.iter().skip(2) {
        let (k, v) = kv.split_once('=').with_context(|| format!("expected key=value, got {kv}"))?;
        let u = || v.parse::<usize>().with_context(|| format!("{k}: not an integer"));
        let f = || v.parse::<f32>().with_context(|| format!("{k}: not a number"));
        match k {
            "layers" => cfg.layers = u()?,
            "d_model" => cfg.d_model = u()?,
            "heads" => cfg.heads = u()?,
            "d_ff" => cfg.d_ff = u()?,
            "group" => cfg.group = u()?,
            "batch" => cfg.batch = u()?,
            "seg_len" => cfg.seg_len = u()?,
            "mem_segs" => cfg.mem_segs = u()?,
            "retrain_every" => cfg.retrain_every = u()?,
            "retrain_len" => cfg.retrain_len = u()?,
            "lr" => cfg.lr = f()?,
            "lr_min" => cfg.lr_min = f()?,
            "lr_decay" => cfg.lr_decay = f()?,
            "retrain_lr" => cfg.retrain_lr = f()?,
            "beta1" => cfg.beta1 = f()?,
            "beta2" => cfg.beta2 = f()?,
            "adam_eps" => cfg.adam_eps = f()?,
            "grad_clip" => cfg.grad_clip = f()?,
            "norm_eps" => cfg.norm_eps = f()?,
            "alibi" => cfg.alibi = f()?,
            "lr_emb" => cfg.lr_emb = f()?,
            "lr_out" => cfg.lr_out = f()?,
            "lr_rel" => cfg.lr_rel = f()?,
            "seed" => cfg.seed = v.parse()?,
            "limit" | "tok" | "mix" => {}
            _ => bail!("unknown key {k}"),
        }
    }
    let v = vocab;
    let net = Transformer::new(&cfg, v)?;
    let n_params = net.num_params();
    let macs = net.forward_macs_per_step();
    let mut model: Box<dyn Predictor> = if mix { Box::new(Mix::new(Box::new(net), 0.02)) } else { Box::new(net) };
    let b = cfg.batch;
    let n = symbols.len();
    let nbytes = data.len();
    let stream_len = n.div_ceil(b);
    println!("file {path}: {nbytes} bytes, {n} symbols (vocabulary {v}); preset {preset}: {cfg:?}");
    println!("params {n_params}, {b} streams of {stream_len} symbols, mix {mix}");
    let mut probs = vec![0.0f32; b * v];
    let mut syms = vec![0u16; b];
    let mut bits = 0.0f64;
    let start = Instant::now();
    let cpu_start = cpu_seconds();
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
        if t + 1 == next_report * stream_len / 4 {
            println!(
                "  {:3}%: {:.4} bpb so far",
                next_report * 25,
                bits * n as f64 / ((t + 1) * b).min(n) as f64 / nbytes as f64
            );
            next_report += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, cpu_seconds()) {
        (Some(c0), Some(c1)) => c1 - c0,
        _ => secs,
    };
    let gflop = 2.0 * 3.0 * macs as f64 * stream_len as f64 / 1e9;
    println!(
        "RESULT {path} preset={preset} bytes={nbytes} symbols={n} bpb={:.4} (+dict {:.4}) wall={secs:.1}s cpu={cpu:.1}s \
         {:.1} kB/s per CPU s (~{:.1} GFLOP/s nominal, fwd+bwd ≈ 3× fwd, retraining not counted)",
        bits / nbytes as f64,
        (bits + dict_bits) / nbytes as f64,
        nbytes as f64 / cpu / 1e3,
        gflop / cpu
    );
    let parts = model.time_breakdown();
    let line: Vec<String> = parts.iter().map(|(k, s)| format!("{k} {:.0}%", 100.0 * s / secs)).collect();
    println!("time: {}", line.join(", "));
    Ok(())
}

/// User + system CPU time of this process from `/proc/self/stat` (Linux; 100 ticks/s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
