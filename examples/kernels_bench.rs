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

/// Measured FMA peak of one thread: 24 independent register-only FMA chains, no
/// loads, to tell the micro-kernel's losses from the clock the core really runs at.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_probe_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); 24];
    let x = _mm512_set1_ps(black_box(0.999_999));
    let y = _mm512_set1_ps(black_box(1e-7));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    let mut s = _mm512_setzero_ps();
    for a in acc {
        s = _mm512_add_ps(s, a);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
fn fma_peak_gflops() -> Option<f64> {
    if !Isa::Avx512.is_supported() {
        return None;
    }
    let iters = 2_000_000;
    // SAFETY: AVX-512F checked above.
    let secs = time(
        || {
            black_box(unsafe { fma_probe_avx512(iters) });
        },
        0.3,
    );
    Some(iters as f64 * 24.0 * 32.0 / secs / 1e9)
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak_gflops() -> Option<f64> {
    None
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
    println!("paths this CPU runs: {:?}", paths.iter().map(|i| i.name()).collect::<Vec<_>>());
    if let Some(g) = fma_peak_gflops() {
        println!(
            "measured AVX-512 FMA peak (register-only probe): {g:.1} GFLOP/s = {:.1}% of the stated {PEAK_AVX512}",
            100.0 * g / PEAK_AVX512
        );
    }
    // (label, op, m, k, n)
    // The LSTM's products (K = embed + 2·hidden inputs per layer, 4H gate columns,
    // lh = layers·hidden into the output layer; backward dW over seg_len·B rows).
    let mut shapes: Vec<(&str, Op, usize, usize, usize)> = vec![
        ("large fwd   B=32 K=736  4H=1408", Op::Nn, 32, 736, 1408),
        ("large out   B=32 lh=1408 V=16384", Op::Nn, 32, 1408, 16384),
        ("large dX    B=32 (Wt) 4H=1408 K=736", Op::Nn, 32, 1408, 736),
        ("large dW    tn K=736 k=640 4H=1408", Op::Tn, 736, 640, 1408),
        ("issue fwd   B=32 K=1500 4H=4096", Op::Nn, 32, 1500, 4096),
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
            ("default fwd B=16 K=416 4H=768", Op::Nn, 16, 416, 768),
            ("default out B=16 lh=576 V=256", Op::Nn, 16, 576, 256),
            ("default out B=16 lh=576 V=16384", Op::Nn, 16, 576, 16384),
            ("default dW  tn K=416 k=160 4H=768", Op::Tn, 416, 160, 768),
            ("small   fwd B=4 K=416 4H=768", Op::Nn, 4, 416, 768),
            ("issue out   B=32 H=352 V=16384", Op::Nn, 32, 352, 16384),
            ("issue fwd   B=64 K=1024 4H=4096", Op::Nn, 64, 1024, 4096),
            ("issue dX    B=32 4H=4096 K=1500", Op::Nn, 32, 4096, 1500),
            ("issue dW    tn K=1500 k=2048 4H=4096", Op::Tn, 1500, 2048, 4096),
            ("large dWout tn lh=1408 k=640 V=16384", Op::Tn, 1408, 640, 16384),
            ("large dX    nt (W as is) 4H=1408 K=736", Op::Nt, 32, 1408, 736),
        ]);
    }
    println!("{:<36} {:>8} {:>10} {:>9} {:>7}", "shape (m×k×n)", "path", "ms/call", "GFLOP/s", "%peak");
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
                "{:<52} {:>7} {:>9.3} {:>8.1} {:>5.1}%",
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
    println!("{:<36} {:>8} {:>10}", "element-wise (16384)", "path", "Gelem/s");
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
            println!("{:<36} {:>8} {:>10.2}", name, isa.name(), x.len() as f64 / secs / 1e9);
        }
    }
    // Memory bandwidth for reference: sum over a matrix the size of the large output
    // layer's weights (92 MB), which no cache holds.
    let big = data(1408 * 16384, 6);
    let secs = time(
        || {
            black_box(kernels::sum(black_box(&big)));
        },
        0.3,
    );
    println!(
        "{:<36} {:>8} {:>10.2} GB/s",
        "read bandwidth (sum of 92 MB)",
        kernels::active().name(),
        big.len() as f64 * 4.0 / secs / 1e9
    );
    // Transpose (a copy; path-independent): Gelem/s for a weight-sized matrix.
    let (r, c) = (1408, 704);
    let src = data(r * c, 5);
    let mut dst = vec![0.0f32; r * c];
    let secs = time(|| kernels::transpose(&mut dst, black_box(&src), r, c), 0.2);
    println!("{:<36} {:>8} {:>10.2}", format!("transpose {r}×{c}"), "any", (r * c) as f64 / secs / 1e9);
    Ok(())
}
