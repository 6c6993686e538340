//! Tokenizer measurements on real files.
//!
//! ```text
//! cargo run --release --example tokenizer_stats -- [--vocab N] [--min-freq N] FILE...
//! ```
//!
//! For each file: build and encode time, symbols per byte, dictionary bytes, and the
//! order-0 entropy in bits per input byte of the raw bytes and of the symbol stream
//! (with and without the dictionary's bytes). Verifies the round trip.

use std::io::Write;
use std::time::Instant;

use nnz::tokenizer::{Dictionary, Options};

fn order0_bits(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 * (n as f64 / c as f64).log2()).sum()
}

fn main() -> anyhow::Result<()> {
    match run() {
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if e.downcast_ref::<std::io::Error>().map(|e| e.kind()) == Some(std::io::ErrorKind::BrokenPipe) => {
            Ok(())
        }
        r => r,
    }
}

fn run() -> anyhow::Result<()> {
    let mut opts = Options::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--vocab" => opts.max_vocab = args.next().unwrap_or_default().parse()?,
            "--min-freq" => opts.min_freq = args.next().unwrap_or_default().parse()?,
            "--show" => files.push(String::from("--show")),
            "--dump-merges" => files.push(String::from("--dump-merges")),
            _ => files.push(a),
        }
    }
    let show = files.iter().any(|f| f == "--show");
    let dump = files.iter().any(|f| f == "--dump-merges");
    // writeln! rather than println!: a closed pipe ends the program with an error, not a panic.
    let mut out = std::io::stdout().lock();
    for path in files.iter().filter(|f| !f.starts_with("--")) {
        let data = std::fs::read(path)?;
        let t0 = Instant::now();
        let dict = Dictionary::build(&data, &opts);
        let t_build = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let sym = dict.encode(&data);
        let t_enc = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let mut back = Vec::with_capacity(data.len());
        dict.decode(&sym, &mut back)?;
        let t_dec = t2.elapsed().as_secs_f64();
        anyhow::ensure!(back == data, "round trip failed on {path}");
        let dbytes = dict.to_bytes().len();
        let mut raw = vec![0u64; 256];
        data.iter().for_each(|&b| raw[b as usize] += 1);
        let mut hist = vec![0u64; dict.vocab_size()];
        sym.iter().for_each(|&s| hist[s as usize] += 1);
        let n = data.len().max(1) as f64;
        let h_raw = order0_bits(&raw) / n;
        let h_sym = order0_bits(&hist) / n;
        writeln!(
            out,
            "{path}: {} bytes, V {} (merges {}, transform {}), {} symbols = {:.4} sym/byte ({:.2} bytes/sym), dict {} bytes\n  \
             order-0 bits/byte: raw {:.4}, symbols {:.4}, symbols+dict {:.4}\n  \
             build {:.2} s, encode {:.2} s, decode {:.2} s ({:.1} MB/s build+encode)",
            data.len(),
            dict.vocab_size(),
            dict.merge_count(),
            dict.uses_transform(),
            sym.len(),
            sym.len() as f64 / n,
            n / sym.len().max(1) as f64,
            dbytes,
            h_raw,
            h_sym,
            h_sym + dbytes as f64 * 8.0 / n,
            t_build,
            t_enc,
            t_dec,
            n / 1e6 / (t_build + t_enc),
        )?;
        if dump {
            for ((a, b), e) in dict.merges() {
                writeln!(out, "M {a} {b} {}", e as u8)?;
            }
        }
        if show {
            let mut top: Vec<(u64, u16)> = hist.iter().enumerate().map(|(s, &c)| (c, s as u16)).collect();
            top.sort_unstable_by(|a, b| b.cmp(a));
            let show_sym = |s: u16| -> String {
                dict.expansion(s)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&b| match b {
                        256 => "<NS>".to_string(),
                        257 => "<C>".to_string(),
                        258 => "<A>".to_string(),
                        b => (b as u8 as char).escape_default().to_string(),
                    })
                    .collect()
            };
            let line: Vec<String> = top.iter().take(60).map(|&(c, s)| format!("{}:{c}", show_sym(s))).collect();
            writeln!(out, "  top: {}", line.join(" "))?;
            let longest: Vec<String> = (256..dict.vocab_size() as u16)
                .rev()
                .take(40)
                .map(|s| format!("{}:{}", show_sym(s), hist[s as usize]))
                .collect();
            writeln!(out, "  last: {}", longest.join(" "))?;
        }
    }
    Ok(())
}
