//! One step of each predictor: `predict` for all `B` streams, then `update` with the
//! coded symbols (where training happens), after a warm-up on real text so the model is
//! in its steady state. `cargo bench --bench model`.
//!
//! Throughput is reported in symbols per step (`elem/s` = symbols/s) for models with no
//! FLOP count, and in FLOPs for those with one, so that criterion's `Gelem/s` reads as
//! GFLOP/s: compare it with the machine's peak (ANCHORS.md: about 279 GFLOP/s with
//! AVX-512 FMA on this machine's one core).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnz::model::lstm::{Lstm, LstmConfig};
use nnz::model::order2::Order2;
use nnz::model::Predictor;
use nnz::tokenizer::{Dictionary, Options};
use std::hint::black_box;
use std::time::Duration;

/// A model to measure.
struct Preset {
    name: &'static str,
    /// Builds the model for an alphabet of `V` symbols.
    make: fn(usize) -> Box<dyn Predictor>,
    /// Nominal floating-point operations of one step, where the model can say; `None`
    /// reports symbols/s instead.
    flops_per_step: Option<fn(&dyn Predictor) -> f64>,
    /// Steps run before measuring, to reach the steady state (several gradient steps).
    warmup: usize,
}

fn order2(v: usize) -> Box<dyn Predictor> {
    Box::new(Order2::new(v))
}

fn lstm(name: &str, v: usize) -> Box<dyn Predictor> {
    let cfg = LstmConfig::preset(name).expect("known preset");
    Box::new(Lstm::new(&cfg, v).expect("valid preset"))
}

fn lstm_fast(v: usize) -> Box<dyn Predictor> {
    lstm("fast", v)
}

fn lstm_default(v: usize) -> Box<dyn Predictor> {
    lstm("default", v)
}

fn lstm_large(v: usize) -> Box<dyn Predictor> {
    lstm("large", v)
}

/// LSTM FLOPs per step: 2 per multiply-add, forward plus a backward pass of twice its
/// cost (the usual 3× rule). The sparse output backward of `fast` and `default` does
/// less than that, so for them this is an effective rate, comparable across presets.
/// The FLOP count is recomputed from the config because `Box<dyn Predictor>` hides
/// `Lstm::forward_macs_per_step`.
fn lstm_flops(m: &dyn Predictor, name: &str) -> f64 {
    let cfg = LstmConfig::preset(name).expect("known preset");
    let probe = Lstm::new(&cfg, m.vocab_size()).expect("valid preset");
    6.0 * probe.forward_macs_per_step() as f64
}

/// The presets, each measured for bytes (V = 256) and for the dictionary that
/// `Dictionary::build` makes of alice29.txt. The LSTM presets are measured alone (the
/// engine mixes them with an order-2 model, whose own cost is the `order2` row).
const PRESETS: &[Preset] = &[
    Preset { name: "order2", make: order2, flops_per_step: None, warmup: 20_000 },
    Preset { name: "lstm-fast", make: lstm_fast, flops_per_step: Some(|m| lstm_flops(m, "fast")), warmup: 50 },
    Preset { name: "lstm-default", make: lstm_default, flops_per_step: Some(|m| lstm_flops(m, "default")), warmup: 50 },
    Preset { name: "lstm-large", make: lstm_large, flops_per_step: Some(|m| lstm_flops(m, "large")), warmup: 60 },
];

fn model(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/alice29.txt");
    let text = std::fs::read(path).expect("data/alice29.txt is in the repository");
    let dict = Dictionary::build(&text, &Options::default());
    let symbols = dict.encode(&text);
    let mut g = c.benchmark_group("model-step");
    // Few samples: an lstm-large step at V = 16k takes a good fraction of a second.
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let vocabs = [256, dict.vocab_size()];
    for preset in PRESETS {
        for v in vocabs {
            let mut m = (preset.make)(v);
            let batch = m.batch();
            // Stream b reads the text from offset b·len/B, as the engine's streams do;
            // for the byte-sized alphabet, symbols wrap.
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
            for _ in 0..preset.warmup {
                step(&mut m, &mut probs, &mut step_symbols);
            }
            let (unit, throughput) = match preset.flops_per_step {
                Some(flops) => ("flops", Throughput::Elements(flops(m.as_ref()).round() as u64)),
                None => ("symbols", Throughput::Elements(batch as u64)),
            };
            g.throughput(throughput);
            let id = BenchmarkId::new(format!("{}/{unit}", preset.name), format!("V{v}-B{batch}"));
            g.bench_function(id, |b| {
                b.iter(|| {
                    step(&mut m, &mut probs, &mut step_symbols);
                    black_box(&probs);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
