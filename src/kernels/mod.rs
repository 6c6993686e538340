//! Deterministic f32 math for the models: matrix products, activations, reductions.
//!
//! Every function here returns the same bits on every CPU, whatever SIMD it has and
//! however many threads run: a `.nnz` file is only decodable if the decoder computes
//! every probability exactly as the encoder did. The rules that make this hold:
//!
//! - Only IEEE-754 operations whose result is fully specified: add, sub, mul, div,
//!   sqrt, and fused multiply-add (`f32::mul_add`, always fused, never "maybe").
//! - Each output of a matrix product is one FMA chain over `k` in ascending order,
//!   starting from 0 or from the output's previous value. SIMD vectorizes *across
//!   outputs*, never along `k`, so the chain is the same at any vector width.
//! - Every reduction ([`sum`], softmax normalizers) runs in the order of a fixed
//!   16-lane virtual vector: lane `l` adds elements `l, l+16, l+32, ...` in order, then
//!   the lanes are folded `l += l+8`, `l += l+4`, `l += l+2`, `l += l+1`. AVX-512 holds
//!   it in one register, AVX2 in two, NEON in four; the scalar reference in an array.
//! - No platform libm: [`exp`] and friends are our own polynomials built from the
//!   operations above, so their last bit is ours.
//!
//! - Blocking never changes a chain: splitting `k` into blocks stores the running f32
//!   accumulator into `C` and loads it back, which is exact; block sizes are fixed
//!   constants anyway, never read from the cache hierarchy. Edge tiles run the full
//!   micro-kernel on zero-padded copies and keep only the valid lanes.
//! - Everything is single-threaded, so the thread count cannot matter. (The target
//!   machine's second vCPU shares the core; a second thread would add nothing.)
//!
//! Two things are outside the promise, deliberately: NaN *payloads* (which NaN comes
//! out of an operation on NaNs differs between libm's `fmaf` and the FMA instruction;
//! comparisons and `is_nan` never see a payload, and a NaN in the model means it has
//! diverged anyway), and a floating-point environment changed by someone else (the
//! default round-to-nearest with subnormals kept, i.e. no FTZ/DAZ, is assumed; Rust
//! never changes it).
//!
//! `scalar` is the plain reference every path is tested against (bit equality,
//! `to_bits`, in `tests.rs`); `avx2` and `avx512` are the x86-64 fast paths (one file
//! per ISA, the only place for SIMD intrinsics), `blocked` is the portable cache
//! blocking and packing around their micro-kernels, and `portable` a plain-Rust
//! micro-kernel for it (the `scalar` path's matrix products; a NEON path would start
//! from it).
//! Two golden hashes in the tests (a tiny LSTM trained online over a fixed text, and a
//! sweep of every element-wise function) pin the bits across paths, CPUs and builds.
//!
//! # Accuracy
//!
//! | function | error (measured bound, tested) |
//! |---|---|
//! | [`exp`] | relative < 3e-7 on `[-87, 88]`; 0 below -87; `exp(88)` above 88 |
//! | [`sigmoid`] | absolute < 2e-7 |
//! | [`tanh`] | absolute < 3e-7 |
//! | [`ln`] | relative < 1e-7 where `|ln x| > 0.5`, absolute < 3e-8 elsewhere |
//! | matrix products, [`sum`], [`axpy`] | exactly the defined operation order |
//!
//! # Speed
//!
//! GFLOP/s on one AMD Zen 5 core (stated peak 279 with AVX-512 FMA, 141 with AVX2;
//! a register-only probe reaches ~265–270), single thread, best of repeated calls, as
//! printed by `cargo run --release --example kernels_bench`:
//!
//! | product (m×k×n) | avx512 | avx2 | scalar | candle 0.9 default |
//! |---|---|---|---|---|
//! | `large` LSTM step, batch 32 (32×736×1408) | 222 (80%) | 120 (85%) | 1.0 | 122 |
//! | dX with Wᵀ kept (32×1408×736) | 210 (75%) | 117 (83%) | 1.0 | 125 |
//! | dW, gemm_tn (736×640×1408) | 225 (81%) | 124 (88%) | — | — |
//! | `default` step, batch 16 (16×416×768) | 211 (76%) | 121 (86%) | 1.0 | 123 |
//! | issue's largest step (32×1500×4096) | 221 (79%) | 113 (80%) | — | 45 |
//! | output layer, V=16384 (32×1408×16384) | 152 (54%) | 74 (52%) | — | 41 |
//!
//! The output layer at V=16384 streams a 92 MB weight matrix per step and is limited
//! by memory (about 9.5 GB/s of it at this access pattern, against 32 GB/s for a plain
//! sequential read). The scalar path calls libm's `fmaf` for every FMA on x86-64.
//! The candle column is `Tensor::matmul` of candle-core 0.9 on the same machine (its
//! default CPU backend, the `gemm` crate; process CPU time), measured with a scratch
//! program outside this repository.
//!
//! # Choosing the path
//!
//! The path is chosen once per process: the best one the CPU runs, unless the
//! environment variable `NNZ_KERNEL=scalar|avx2|avx512` forces one. Forcing an unknown
//! name or a path this CPU cannot run is an error ([`select_from_env`]), never a silent
//! fallback. All paths give the same bits, so switching ([`force`]) while running is
//! harmless to results; it only changes speed.
//!
//! ```
//! use nnz::kernels::{self, Isa};
//! kernels::force(Isa::Scalar).unwrap();
//! let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [0.5f32, -1.0]); // A: 2×2, B: 2×1
//! let mut c = [0.0f32; 2];
//! kernels::gemm_nn(&mut c, &a, &b, 2, 2, 1, false);
//! assert_eq!(c, [-1.5, -2.5]);
//! kernels::force(Isa::best()).unwrap();
//! let mut c2 = [0.0f32; 2];
//! kernels::gemm_nn(&mut c2, &a, &b, 2, 2, 1, false);
//! assert_eq!(c, c2);
//! ```
//!
//! Layout: matrices are row-major slices; shapes are given as `(rows, cols)`.

/// Calls `$body` (a micro-kernel call) with the const `$R` equal to `rows` (1..=`$mr`).
macro_rules! by_rows {
    ($rows:expr, $mr:expr, $R:ident => $body:expr) => {{
        debug_assert!((1..=$mr).contains(&$rows));
        match $rows {
            1 => {
                const $R: usize = 1;
                $body
            }
            2 => {
                const $R: usize = 2;
                $body
            }
            3 => {
                const $R: usize = 3;
                $body
            }
            4 => {
                const $R: usize = 4;
                $body
            }
            5 if $mr >= 5 => {
                const $R: usize = if $mr >= 5 { 5 } else { 1 };
                $body
            }
            6 if $mr >= 6 => {
                const $R: usize = if $mr >= 6 { 6 } else { 1 };
                $body
            }
            7 if $mr >= 7 => {
                const $R: usize = if $mr >= 7 { 7 } else { 1 };
                $body
            }
            8 if $mr >= 8 => {
                const $R: usize = if $mr >= 8 { 8 } else { 1 };
                $body
            }
            _ => unreachable!("tile of {} rows", $rows),
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocked;
mod portable;
pub mod scalar;
#[cfg(test)]
mod tests;

use anyhow::{bail, Result};
use blocked::View;
use std::sync::atomic::{AtomicU8, Ordering};

/// A kernel implementation: the instruction set its fast paths use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable code only: the [`scalar`] reference for element-wise functions and
    /// reductions, and a portable register-blocked kernel for matrix products. Runs
    /// anywhere; slowly on x86-64 (each FMA is a libm call there), at NEON speed on
    /// aarch64 where FMA is an instruction.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F, 16 lanes.
    Avx512,
}

/// Name of the environment variable that forces a kernel path.
pub const ENV_VAR: &str = "NNZ_KERNEL";

impl Isa {
    /// Every path, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name `NNZ_KERNEL` uses.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a `NNZ_KERNEL` value.
    pub fn parse(s: &str) -> Result<Isa> {
        match Isa::ALL.iter().find(|isa| isa.name() == s) {
            Some(&isa) => Ok(isa),
            None => {
                bail!("{ENV_VAR}={s:?} is not a kernel path; expected one of scalar, avx2, avx512")
            }
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest path this CPU runs.
    pub fn best() -> Isa {
        *Isa::ALL.iter().rev().find(|isa| isa.is_supported()).unwrap_or(&Isa::Scalar)
    }

    /// The paths this CPU runs, slowest first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.iter().copied().filter(|isa| isa.is_supported()).collect()
    }

    fn check(self) -> Result<Isa> {
        if !self.is_supported() {
            bail!(
                "kernel path {} needs CPU features this machine lacks (it runs: {})",
                self.name(),
                names(&Isa::supported())
            );
        }
        Ok(self)
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Isa> {
        Isa::ALL.get((code as usize).checked_sub(1)?).copied()
    }
}

fn names(isas: &[Isa]) -> String {
    isas.iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", ")
}

/// The active path; 0 = not chosen yet.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The path `NNZ_KERNEL` asks for (the best supported one when unset or empty), or an
/// error naming what is wrong.
pub fn from_env() -> Result<Isa> {
    match std::env::var(ENV_VAR) {
        Ok(v) => from_setting(Some(&v)),
        Err(std::env::VarError::NotPresent) => from_setting(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{ENV_VAR} is not valid UTF-8"),
    }
}

/// The path a `NNZ_KERNEL` value selects (`None`: unset).
fn from_setting(value: Option<&str>) -> Result<Isa> {
    match value {
        Some(v) if !v.is_empty() => Isa::parse(v)?.check().map_err(|e| e.context(format!("{ENV_VAR}={v}"))),
        _ => Ok(Isa::best()),
    }
}

/// Chooses the path from `NNZ_KERNEL` and makes it active. Call it at start-up: a bad
/// value is reported here as an error instead of a panic at the first kernel call.
pub fn select_from_env() -> Result<Isa> {
    let isa = from_env()?;
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(isa)
}

/// Makes `isa` the active path for the whole process (for tests and benchmarks).
/// Fails if this CPU cannot run it.
pub fn force(isa: Isa) -> Result<()> {
    ACTIVE.store(isa.check()?.code(), Ordering::Relaxed);
    Ok(())
}

/// The active path; on first use without [`select_from_env`] or [`force`], chosen from
/// `NNZ_KERNEL`.
///
/// # Panics
/// On first use, if `NNZ_KERNEL` is invalid and neither [`select_from_env`] nor
/// [`force`] ran before (a program that wants an error calls [`select_from_env`]).
pub fn active() -> Isa {
    if let Some(isa) = Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
        return isa;
    }
    match select_from_env() {
        Ok(isa) => isa,
        Err(e) => panic!("{e:#}"),
    }
}

fn check_gemm(what: &str, c: usize, a: usize, b: usize, (m, k, n): (usize, usize, usize)) {
    // Shapes come from model code, not from input data: a mismatch is a bug.
    assert!(
        a >= m * k && b >= k * n && c >= m * n,
        "{what}: slices too short for m={m} k={k} n={n} (a: {a}, b: {b}, c: {c})"
    );
}

/// `C (m×n) = [C +] A (m×k) · B (k×n)`.
///
/// Each `C[i][j]` is the FMA chain `acc = fma(A[i][p], B[p][j], acc)` for `p = 0..k`,
/// starting from `C[i][j]` when `accumulate`, else from `0.0`.
pub fn gemm_nn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    gemm_nn_on(active(), c, a, b, m, k, n, accumulate)
}

/// `C (m×n) = [C +] Aᵀ · B`, with `A` stored as (k×m) and `B` as (k×n).
///
/// Used for weight gradients (`dW = Xᵀ · dY`): each `C[i][j]` is the FMA chain
/// `acc = fma(A[p][i], B[p][j], acc)` for `p = 0..k`, starting as in [`gemm_nn`].
pub fn gemm_tn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    gemm_tn_on(active(), c, a, b, m, k, n, accumulate)
}

/// `C (m×n) = [C +] A · Bᵀ`, with `A` stored as (m×k) and `B` as (n×k).
///
/// For `dX = dY · Wᵀ` without a transposed copy of `W`: each `C[i][j]` is the FMA chain
/// `acc = fma(A[i][p], B[j][p], acc)` for `p = 0..k`, starting as in [`gemm_nn`]. The
/// same bits as `gemm_nn` with an explicitly transposed `B`; somewhat slower than that
/// (packing `B` gathers with a stride), so keep a transposed copy where it is reused.
pub fn gemm_nt(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    gemm_nt_on(active(), c, a, b, m, k, n, accumulate)
}

/// Runs the blocked driver with `isa`'s micro-kernel.
#[allow(clippy::too_many_arguments)]
fn gemm_views(isa: Isa, c: &mut [f32], a: View, b: View, m: usize, k: usize, n: usize, accumulate: bool) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Isa` other than Scalar only becomes active after `check`.
        Isa::Avx512 => unsafe { avx512::gemm(c, a, b, m, k, n, accumulate) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { avx2::gemm(c, a, b, m, k, n, accumulate) },
        _ => portable::gemm(c, a, b, m, k, n, accumulate),
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_nn_on(isa: Isa, c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    check_gemm("gemm_nn", c.len(), a.len(), b.len(), (m, k, n));
    let a = View { data: a, rs: k, cs: 1 };
    let b = View { data: b, rs: n, cs: 1 };
    gemm_views(isa, c, a, b, m, k, n, accumulate)
}

#[allow(clippy::too_many_arguments)]
fn gemm_tn_on(isa: Isa, c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    check_gemm("gemm_tn", c.len(), a.len(), b.len(), (m, k, n));
    let a = View { data: a, rs: 1, cs: m };
    let b = View { data: b, rs: n, cs: 1 };
    gemm_views(isa, c, a, b, m, k, n, accumulate)
}

#[allow(clippy::too_many_arguments)]
fn gemm_nt_on(isa: Isa, c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    check_gemm("gemm_nt", c.len(), a.len(), b.len(), (m, k, n));
    let a = View { data: a, rs: k, cs: 1 };
    let b = View { data: b, rs: 1, cs: k };
    gemm_views(isa, c, a, b, m, k, n, accumulate)
}

/// `dst (cols×rows) = srcᵀ`, with `src` stored as (rows×cols). Exact (a copy).
pub fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: slices too short");
    blocked::transpose(dst, src, rows, cols)
}

/// Dispatches an element-wise or reduction kernel to `isa`'s implementation.
macro_rules! dispatch {
    ($isa:expr, $f:ident($($arg:expr),*)) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Isa` other than Scalar only becomes active after `check`.
            Isa::Avx512 => unsafe { avx512::$f($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { avx2::$f($($arg),*) },
            _ => scalar::$f($($arg),*),
        }
    };
}

/// Sum in the fixed 16-lane order described in the module docs.
pub fn sum(x: &[f32]) -> f32 {
    sum_on(active(), x)
}

fn sum_on(isa: Isa, x: &[f32]) -> f32 {
    dispatch!(isa, sum(x))
}

/// `y[i] = exp(x[i])`; relative error below 3e-7 on `[-87, 88]`, 0 below -87,
/// `exp(88)` above 88. NaN stays NaN.
pub fn exp(y: &mut [f32], x: &[f32]) {
    exp_on(active(), y, x)
}

fn exp_on(isa: Isa, y: &mut [f32], x: &[f32]) {
    dispatch!(isa, exp(y, x))
}

/// `y[i] = 1 / (1 + exp(-x[i]))`, built on [`exp`].
pub fn sigmoid(y: &mut [f32], x: &[f32]) {
    sigmoid_on(active(), y, x)
}

fn sigmoid_on(isa: Isa, y: &mut [f32], x: &[f32]) {
    dispatch!(isa, sigmoid(y, x))
}

/// `y[i] = tanh(x[i])` as `2 / (1 + exp(-2x)) - 1`; absolute error below 3e-7.
pub fn tanh(y: &mut [f32], x: &[f32]) {
    tanh_on(active(), y, x)
}

fn tanh_on(isa: Isa, y: &mut [f32], x: &[f32]) {
    dispatch!(isa, tanh(y, x))
}

/// In-place softmax of one row: `x[i] = exp(x[i] - max) / Σ exp(x[j] - max)`,
/// with the sum in the fixed 16-lane order.
pub fn softmax(x: &mut [f32]) {
    softmax_on(active(), x)
}

fn softmax_on(isa: Isa, x: &mut [f32]) {
    dispatch!(isa, softmax(x))
}

/// `y[i] = ln(x[i])`: relative error below 1e-7 where `|ln x| > 0.5`, absolute error
/// below 3e-8 elsewhere (subnormals included); NaN for NaN and `x < 0`, `-∞` for ±0,
/// `+∞` for `+∞`.
pub fn ln(y: &mut [f32], x: &[f32]) {
    ln_on(active(), y, x)
}

fn ln_on(isa: Isa, y: &mut [f32], x: &[f32]) {
    dispatch!(isa, ln(y, x))
}

/// `y[i] = fma(a, x[i], y[i])` (one rounding), e.g. for gradient steps. Prefer it to
/// a loop of `f32::mul_add` in code compiled without the `fma` target feature, where
/// each `mul_add` is a libm call.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    axpy_on(active(), y, a, x)
}

fn axpy_on(isa: Isa, y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: lengths differ");
    dispatch!(isa, axpy(y, a, x))
}

/// In-place log-softmax of one row: `x[i] = (x[i] - max) - ln Σ exp(x[j] - max)`,
/// with the sum in the fixed 16-lane order and [`ln`]'s accuracy. The cross-entropy
/// of target `t` is `-x[t]` afterwards; its gradient is `softmax - onehot(t)`.
pub fn log_softmax(x: &mut [f32]) {
    log_softmax_on(active(), x)
}

fn log_softmax_on(isa: Isa, x: &mut [f32]) {
    dispatch!(isa, log_softmax(x))
}
