//! Tokenizer throughput on a real text (data/alice29.txt, 152 kB): building the
//! dictionary, and encoding the text with it, in input bytes per second.
//! `cargo bench --bench tokenizer`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnz::tokenizer::{Dictionary, Options};
use std::hint::black_box;
use std::time::Duration;

fn tokenizer(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/alice29.txt");
    let data = std::fs::read(path).expect("data/alice29.txt is in the repository");
    let mut g = c.benchmark_group("tokenizer");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("build/alice29", |b| b.iter(|| Dictionary::build(black_box(&data), &Options::default())));
    let dict = Dictionary::build(&data, &Options::default());
    g.bench_function("encode/alice29", |b| b.iter(|| dict.encode(black_box(&data))));
    g.finish();
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
