//! Arithmetic coder throughput: symbols per second for encoding and decoding, and the
//! cost of turning one probability vector into frequencies.
//!
//! The distribution is fixed (Zipf, `p(i) ∝ 1/(i+1)`), as a well-trained model's output
//! roughly is, for V = 256 (raw bytes) and V = 16,384 (the dictionary's size). The
//! coder's cumulative frequency is a linear scan, so its cost grows with the symbol
//! index: a flatter distribution is slower. `cargo bench --bench coder`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnz::coder::{quantize, Decoder, Encoder};
use std::hint::black_box;
use std::time::Duration;

/// Symbols coded per iteration.
const N: usize = 20_000;
const VOCABS: [usize; 2] = [256, 16_384];

fn zipf(v: usize) -> Vec<f32> {
    let w: Vec<f64> = (0..v).map(|i| 1.0 / (i + 1) as f64).collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| (x / sum) as f32).collect()
}

/// `n` symbols drawn from `freqs` with a fixed xorshift generator.
fn draw(freqs: &[u32], total: u64, n: usize) -> Vec<usize> {
    let cum: Vec<u64> = freqs
        .iter()
        .scan(0u64, |c, &f| {
            *c += f as u64;
            Some(*c)
        })
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let target = x % total;
            cum.partition_point(|&c| c <= target)
        })
        .collect()
}

fn coder(c: &mut Criterion) {
    let mut g = c.benchmark_group("coder");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for v in VOCABS {
        let mut freqs = vec![0u32; v];
        let total = quantize(&zipf(v), &mut freqs);
        let symbols = draw(&freqs, total, N);
        let encode = |symbols: &[usize]| {
            let mut enc = Encoder::new();
            for &s in symbols {
                enc.encode_symbol(&freqs, total, s);
            }
            enc.finish()
        };
        let bytes = encode(&symbols);

        g.throughput(Throughput::Elements(N as u64));
        g.bench_with_input(BenchmarkId::new("encode", v), &symbols, |b, s| b.iter(|| encode(black_box(s))));
        g.bench_with_input(BenchmarkId::new("decode", v), &bytes, |b, bytes| {
            b.iter(|| {
                let mut dec = Decoder::new(black_box(bytes)).expect("valid payload");
                for _ in 0..N {
                    black_box(dec.decode_symbol(&freqs, total).expect("valid payload"));
                }
            })
        });

        // One quantization per coded step: elements are probabilities.
        let probs = zipf(v);
        let mut out = vec![0u32; v];
        g.throughput(Throughput::Elements(v as u64));
        g.bench_function(BenchmarkId::new("quantize", v), |b| b.iter(|| quantize(black_box(&probs), &mut out)));
    }
    g.finish();
}

criterion_group!(benches, coder);
criterion_main!(benches);
