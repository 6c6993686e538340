//! Dumps, for every symbol of a tokenized file, what the LSTM and the n-gram model
//! predicted for it, so that mixers can be tried offline (a linear mix needs only each
//! component's probability of the actual symbol, plus a few context features).
//!
//! ```text
//! cargo run --release --example mix_dump -- FILE PRESET OUT [key=value ...]
//! ```
//!
//! Keys: `layers hidden embed batch seg_len lr lr_min lr_decay beta2` override the
//! preset after `LstmConfig::preset_for`, as the compressor adapts it; `mixed=1` puts
//! the LSTM mixture's prediction (what the compressor codes with) in the LSTM fields. The streams, the
//! padding and the tokenizer are the engine's. OUT is little-endian binary: a header
//! `u32 n, u32 batch, u32 vocab, u32 bytes, u32 dict_bytes`, then one 28-byte record per
//! coded symbol in coding order (time step, then stream): `u32 index, u16 symbol,
//! u16 n-gram level, f32 p_lstm, f32 p_ngram, f32 lstm max, u16 lstm argmax,
//! u16 n-gram argmax, f32 n-gram max`. `scripts/mix_replay.py` replays mixers on it.

use anyhow::{bail, Context, Result};
use nnz::model::lstm::{Lstm, LstmConfig};
use nnz::model::mix::Mix;
use nnz::model::ngram::Ngram;
use nnz::model::Predictor;
use std::io::Write;
use std::time::Instant;

/// The compressor's mixer learning rate (engine.rs).
const MIX_LR: f32 = 0.02;

fn argmax(row: &[f32]) -> (u16, f32) {
    let mut best = (0u16, row[0]);
    for (i, &p) in row.iter().enumerate() {
        if p > best.1 {
            best = (i as u16, p);
        }
    }
    best
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: mix_dump FILE PRESET OUT [key=value ...]");
    }
    let data = std::fs::read(&args[0]).with_context(|| format!("reading {}", args[0]))?;
    let dict = nnz::tokenizer::Dictionary::build(&data, &nnz::tokenizer::Options::default());
    let symbols = dict.encode(&data);
    let v = dict.vocab_size();
    let n = symbols.len();
    let mut cfg = LstmConfig::preset_for(&args[1], n as u64, v)?;
    let mut mixed = false;
    for kv in &args[3..] {
        let (k, val) = kv.split_once('=').with_context(|| format!("expected key=value, got {kv}"))?;
        let u = || val.parse::<usize>().with_context(|| format!("{k}: not an integer"));
        let f = || val.parse::<f32>().with_context(|| format!("{k}: not a number"));
        match k {
            "layers" => cfg.layers = u()?,
            "hidden" => cfg.hidden = u()?,
            "embed" => cfg.embed = u()?,
            "batch" => cfg.batch = u()?,
            "seg_len" => cfg.seg_len = u()?,
            "lr" => cfg.lr = f()?,
            "lr_min" => cfg.lr_min = f()?,
            "lr_decay" => cfg.lr_decay = f()?,
            "beta2" => cfg.beta2 = f()?,
            "mixed" => mixed = u()? != 0,
            _ => bail!("unknown key {k}"),
        }
    }
    cfg.validate()?;
    let b = cfg.batch;
    // mixed=1: the "LSTM" fields hold the whole mixture's prediction instead.
    let mut lstm: Box<dyn Predictor> =
        if mixed { Box::new(Mix::new(Box::new(Lstm::new(&cfg, v)?), MIX_LR)) } else { Box::new(Lstm::new(&cfg, v)?) };
    let mut ctx = Ngram::new(v, b);
    let len = n.div_ceil(b);
    let dict_bytes = dict.to_bytes().len();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[2])?);
    for x in [n, b, v, data.len(), dict_bytes] {
        out.write_all(&(x as u32).to_le_bytes())?;
    }
    let (mut pn, mut pc) = (vec![0.0f32; b * v], vec![0.0f32; b * v]);
    let mut step = vec![0u16; b];
    let (mut bits_nn, mut bits_ctx) = (0.0f64, 0.0f64);
    let start = Instant::now();
    for t in 0..len {
        lstm.predict(&mut pn);
        ctx.predict(&mut pc);
        for (s, sym) in step.iter_mut().enumerate() {
            let i = s * len + t;
            if i >= n {
                *sym = 0;
                continue;
            }
            let x = symbols[i];
            *sym = x;
            let (rn, rc) = (&pn[s * v..(s + 1) * v], &pc[s * v..(s + 1) * v]);
            let (na, nm) = argmax(rn);
            let (ca, cm) = argmax(rc);
            let (a, c) = (rn[x as usize], rc[x as usize]);
            bits_nn -= (a as f64).log2();
            bits_ctx -= (c as f64).log2();
            out.write_all(&(i as u32).to_le_bytes())?;
            out.write_all(&x.to_le_bytes())?;
            out.write_all(&(ctx.level(s) as u16).to_le_bytes())?;
            out.write_all(&a.to_le_bytes())?;
            out.write_all(&c.to_le_bytes())?;
            out.write_all(&nm.to_le_bytes())?;
            out.write_all(&na.to_le_bytes())?;
            out.write_all(&ca.to_le_bytes())?;
            out.write_all(&cm.to_le_bytes())?;
        }
        lstm.update(&step);
        ctx.update(&step);
    }
    let nb = data.len() as f64;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {}: n={n} V={v} B={b} dict={dict_bytes}B lstm {:.4} ngram {:.4} bpb (payload only), {:.1}s, {:.0} B/s; {cfg:?}",
        args[0],
        args[1],
        bits_nn / nb,
        bits_ctx / nb,
        secs,
        nb / secs
    );
    Ok(())
}
