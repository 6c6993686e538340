//! Throughput of the deterministic kernels on every path this CPU runs, for the LSTM's
//! matrix shapes.
//!
//! ```text
//! nice -n 10 cargo run --release --example kernels_bench            # all shapes
//! nice -n 10 cargo run --release --example kernels_bench -- quick   # fewer shapes
//! ```
//!
//! Prints GFLOP/s (2·m·k·n per product) and the fraction of this machine's stated
//! single-core peak: 279 GFLOP/s with AVX-512 FMA, 141 with AVX2 FMA (the scalar
//! path is compared with the AVX2 peak). Each figure is the best of several timed
//! repetitions of at least ~0.2 s in total.

use nnz::kernels::{self, Isa};
use std::hint::black_box;
use std::time::Instant;

const PEAK_AVX512: f64 = 279.0;
const PEAK_AVX2: f64 = 141.0;

fn peak(isa: Isa) -> f64 {
    if isa == Isa::Avx512 {
        PEAK_AVX512
    } else {
        PEAK_AVX2
    }
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// Best seconds per call of `f`.
fn time(mut f: impl FnMut(), budget_s: f64) -> f64 {
    f(); // warm-up: page faults, packing buffers
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut reps = 0;
    while reps < 3 || (start.elapsed().as_secs_f64() < budget_s && reps < 200) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    best
}

#[derive(Clone, Copy)]
enum Op {
    Nn,
    Tn,
    Nt,
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "quick");
    let paths = Isa::supported();
    println!(
        "paths this CPU runs: {:?}",
        paths.iter().map(|i| i.name()).collect::<Vec<_>>()
    );
    // (label, op, m, k, n)
    let mut shapes: Vec<(&str, Op, usize, usize, usize)> = vec![
        ("fwd  B=32 K=704  4H=1408", Op::Nn, 32, 704, 1408),
        ("fwd  B=32 K=1500 4H=4096", Op::Nn, 32, 1500, 4096),
        ("out  B=32 H=352  V=16384", Op::Nn, 32, 352, 16384),
        ("dX   B=32 4H=4096 K=1500", Op::Nn, 32, 4096, 1500),
        ("dW   K=704 k=640 4H=1408 (tn)", Op::Tn, 704, 640, 1408),
    ];
    if !quick {
        shapes.extend([
            ("fwd  B=16 K=256  4H=512", Op::Nn, 16, 256, 512),
            ("fwd  B=64 K=1024 4H=4096", Op::Nn, 64, 1024, 4096),
            ("out  B=64 H=1024 V=16384", Op::Nn, 64, 1024, 16384),
            ("dX   B=32 (nt, W not transposed)", Op::Nt, 32, 1408, 704),
            ("dW   K=1500 k=2048 4H=4096 (tn)", Op::Tn, 1500, 2048, 4096),
            ("dWout H=352 k=640 V=16384 (tn)", Op::Tn, 352, 640, 16384),
        ]);
    }
    println!(
        "{:<36} {:>8} {:>10} {:>9} {:>7}",
        "shape (m×k×n)", "path", "ms/call", "GFLOP/s", "%peak"
    );
    for &(label, op, m, k, n) in &shapes {
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut c = data(m * n, 3);
        let flops = 2.0 * (m * k * n) as f64;
        for &isa in &paths {
            // The reference path is slow (a libm fmaf call per FMA): only small shapes.
            if isa == Isa::Scalar && flops > 2e8 {
                continue;
            }
            kernels::force(isa)?;
            let secs = time(
                || match op {
                    Op::Nn => kernels::gemm_nn(&mut c, black_box(&a), &b, m, k, n, false),
                    Op::Tn => kernels::gemm_tn(&mut c, black_box(&a), &b, m, k, n, false),
                    Op::Nt => kernels::gemm_nt(&mut c, black_box(&a), &b, m, k, n, false),
                },
                if isa == Isa::Scalar { 0.5 } else { 0.2 },
            );
            let gflops = flops / secs / 1e9;
            println!(
                "{:<36} {:>8} {:>10.3} {:>9.1} {:>6.1}%",
                format!("{label} ({m}×{k}×{n})"),
                isa.name(),
                secs * 1e3,
                gflops,
                100.0 * gflops / peak(isa)
            );
        }
    }
    // Element-wise kernels: G elements per second.
    let x: Vec<f32> = data(16384, 4).iter().map(|v| v * 20.0).collect();
    let mut y = vec![0.0f32; x.len()];
    println!(
        "{:<36} {:>8} {:>10}",
        "element-wise (16384)", "path", "Gelem/s"
    );
    for &isa in &paths {
        kernels::force(isa)?;
        let mut row = x.clone();
        for name in ["exp", "sigmoid", "tanh", "sum", "softmax"] {
            let secs = time(
                || match name {
                    "exp" => kernels::exp(&mut y, black_box(&x)),
                    "sigmoid" => kernels::sigmoid(&mut y, black_box(&x)),
                    "tanh" => kernels::tanh(&mut y, black_box(&x)),
                    "sum" => {
                        black_box(kernels::sum(black_box(&x)));
                    }
                    _ => {
                        row.copy_from_slice(&x);
                        kernels::softmax(&mut row)
                    }
                },
                0.1,
            );
            println!(
                "{:<36} {:>8} {:>10.2}",
                name,
                isa.name(),
                x.len() as f64 / secs / 1e9
            );
        }
    }
    Ok(())
}
