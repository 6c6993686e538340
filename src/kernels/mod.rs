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
//! `scalar` is the plain reference every fast path is tested against.
//!
//! Layout: matrices are row-major slices; shapes are given as `(rows, cols)`.

pub mod scalar;

/// `C (m×n) = [C +] A (m×k) · B (k×n)`.
///
/// Each `C[i][j]` is the FMA chain `acc = fma(A[i][p], B[p][j], acc)` for `p = 0..k`,
/// starting from `C[i][j]` when `accumulate`, else from `0.0`.
pub fn gemm_nn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    scalar::gemm_nn(c, a, b, m, k, n, accumulate)
}

/// `C (m×n) = [C +] Aᵀ · B`, with `A` stored as (k×m) and `B` as (k×n).
///
/// Used for weight gradients (`dW = Xᵀ · dY`): each `C[i][j]` is the FMA chain
/// `acc = fma(A[p][i], B[p][j], acc)` for `p = 0..k`, starting as in [`gemm_nn`].
pub fn gemm_tn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    scalar::gemm_tn(c, a, b, m, k, n, accumulate)
}

/// `dst (cols×rows) = srcᵀ`, with `src` stored as (rows×cols). Exact (a copy).
pub fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    scalar::transpose(dst, src, rows, cols)
}

/// Sum in the fixed 16-lane order described in the module docs.
pub fn sum(x: &[f32]) -> f32 {
    scalar::sum(x)
}

/// `y[i] = exp(x[i])`; relative error below 3e-7 on `[-87, 88]`, 0 below -87,
/// `exp(88)` above 88. NaN stays NaN.
pub fn exp(y: &mut [f32], x: &[f32]) {
    scalar::exp(y, x)
}

/// `y[i] = 1 / (1 + exp(-x[i]))`, built on [`exp`].
pub fn sigmoid(y: &mut [f32], x: &[f32]) {
    scalar::sigmoid(y, x)
}

/// `y[i] = tanh(x[i])` as `2 / (1 + exp(-2x)) - 1`; absolute error below 3e-7.
pub fn tanh(y: &mut [f32], x: &[f32]) {
    scalar::tanh(y, x)
}

/// In-place softmax of one row: `x[i] = exp(x[i] - max) / Σ exp(x[j] - max)`,
/// with the sum in the fixed 16-lane order.
pub fn softmax(x: &mut [f32]) {
    scalar::softmax(x)
}
