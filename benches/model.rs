//! One step of each predictor: `predict` for all `B` streams, then `update` with the
//! coded symbols (where training happens), after a warm-up on real text so the model is
//! in its steady state. `cargo bench --bench model`.
//!
//! Throughput is reported in symbols per step (`elem/s` = symbols/s) for models with no
//! FLOP count, and in FLOPs for those with one, so that criterion's `Gelem/s` reads as
//! GFLOP/s: compare it with the machine's peak (ANCHORS.md: about 279 GFLOP/s with
//! AVX-512 FMA on this machine's one core).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnz::model::order2::Order2;
use nnz::model::Predictor;
use nnz::tokenizer::{Dictionary, Options};
use std::hint::black_box;
use std::time::Duration;

/// A model to measure.
struct Preset {
    name: &'static str,
    make: fn() -> Box<dyn Predictor>,
    /// Floating-point operations of one step (forward for B streams plus the amortized
    /// gradient step), where the model can say; `None` reports symbols/s instead.
    flops_per_step: Option<fn() -> f64>,
}

fn order2_bytes() -> Box<dyn Predictor> {
    Box::new(Order2::new(256))
}

fn order2_dictionary() -> Box<dyn Predictor> {
    Box::new(Order2::new(16_384))
}

/// The presets. Add the LSTM/Transformer presets here as they land, e.g.
/// `Preset { name: "lstm-fast", make: lstm_fast, flops_per_step: Some(lstm_fast_flops) }`
/// with `lstm_fast` building the model from its named config and seed, and
/// `lstm_fast_flops` computing the count from the same config.
const PRESETS: &[Preset] = &[
    Preset { name: "order2-v256", make: order2_bytes, flops_per_step: None },
    Preset { name: "order2-v16384", make: order2_dictionary, flops_per_step: None },
];

/// Steps of warm-up before measuring.
const WARMUP: usize = 20_000;

fn model(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/alice29.txt");
    let text = std::fs::read(path).expect("data/alice29.txt is in the repository");
    let dict = Dictionary::build(&text, &Options::default());
    let symbols = dict.encode(&text);
    let mut g = c.benchmark_group("model-step");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for preset in PRESETS {
        let mut m = (preset.make)();
        let (v, batch) = (m.vocab_size(), m.batch());
        // Stream b reads the text from offset b·len/B, as the engine's streams do;
        // symbols beyond the model's alphabet (a byte model on dictionary symbols) wrap.
        let stride = symbols.len() / batch;
        let at = |t: usize, b: usize| symbols[(b * stride + t) % symbols.len()] % v as u16;
        let mut probs = vec![0.0f32; batch * v];
        let mut step_symbols = vec![0u16; batch];
        let mut t = 0usize;
        let mut step = |m: &mut Box<dyn Predictor>, probs: &mut [f32], s: &mut [u16]| {
            m.predict(probs);
            for (b, x) in s.iter_mut().enumerate() {
                *x = at(t, b);
            }
            m.update(s);
            t += 1;
        };
        for _ in 0..WARMUP {
            step(&mut m, &mut probs, &mut step_symbols);
        }
        g.throughput(match preset.flops_per_step {
            Some(flops) => Throughput::Elements(flops().round() as u64),
            None => Throughput::Elements(batch as u64),
        });
        let unit = if preset.flops_per_step.is_some() { "flops" } else { "symbols" };
        g.bench_function(BenchmarkId::new(unit, preset.name), |b| {
            b.iter(|| {
                step(&mut m, &mut probs, &mut step_symbols);
                black_box(&probs);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
