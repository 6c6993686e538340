//! Throughput of the deterministic kernels on every path this CPU runs, for the LSTM's
//! matrix shapes.
//!
//! ```text
//! nice -n 10 cargo run --release --example kernels_bench            # all shapes
//! nice -n 10 cargo run --release --example kernels_bench -- quick   # fewer shapes
//! nice -n 10 cargo run --release --example kernels_bench -- 32 1500 4096 [nn|tn|nt]
//! ```
//!
//! Prints GFLOP/s (2·m·k·n per product) and the fraction of this machine's stated
//! single-core peak: 279 GFLOP/s with AVX-512 FMA, 141 with AVX2 FMA (the scalar
//! path is compared with the AVX2 peak). Each figure is the best of several timed
//! repetitions (~0.3 s in total), timed by the thread's on-CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) where available: the machine's two vCPUs are shared
//! by many processes, and wall time mostly measured who else was running. The other
//! vCPU is the same core's second hardware thread, so a busy neighbour still slows
//! the numbers down; run when the machine is quiet for the best figures.

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

/// Nanoseconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`), so that time
/// spent descheduled while other processes share the two vCPUs does not count; `None`
/// off Linux (then wall time is used).
#[cfg(target_os = "linux")]
fn cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a plain libc call writing into a properly laid-out struct.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.sec as u64 * 1_000_000_000 + ts.nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn cpu_ns() -> Option<u64> {
    None
}

/// Best seconds per call of `f` (on-CPU time where available, else wall time).
fn time(mut f: impl FnMut(), budget_s: f64) -> f64 {
    f(); // warm-up: page faults, packing buffers
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut reps = 0;
    while reps < 3 || (start.elapsed().as_secs_f64() < budget_s && reps < 500) {
        let (c0, t) = (cpu_ns(), Instant::now());
        f();
        let wall = t.elapsed().as_secs_f64();
        let secs = match (c0, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 * 1e-9,
            _ => wall,
        };
        best = best.min(secs);
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
    // `kernels_bench M K N [nn|tn|nt]`: one custom shape.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() >= 3 {
        let dim = |i: usize| -> anyhow::Result<usize> { Ok(args[i].parse()?) };
        let op = match args.get(3).map(|s| s.as_str()) {
            Some("tn") => Op::Tn,
            Some("nt") => Op::Nt,
            _ => Op::Nn,
        };
        shapes = vec![("custom", op, dim(0)?, dim(1)?, dim(2)?)];
    } else if !quick {
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
                if isa == Isa::Scalar { 0.5 } else { 0.3 },
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
    // Transpose (a copy; path-independent): Gelem/s for a weight-sized matrix.
    let (r, c) = (1408, 704);
    let src = data(r * c, 5);
    let mut dst = vec![0.0f32; r * c];
    let secs = time(|| kernels::transpose(&mut dst, black_box(&src), r, c), 0.2);
    println!(
        "{:<36} {:>8} {:>10.2}",
        format!("transpose {r}×{c}"),
        "any",
        (r * c) as f64 / secs / 1e9
    );
    Ok(())
}
