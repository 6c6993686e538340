//! AVX2 + FMA path: 8 lanes, so the 16-lane virtual vector of every reduction is two
//! registers (`lo` = lanes 0..8, `hi` = lanes 8..16). Every function here computes
//! exactly what its twin in [`super::scalar`] computes, lane by lane, with the same
//! operations in the same order.
//!
//! All functions are `unsafe` because they require AVX2 and FMA; [`super`] only calls
//! them after checking the CPU.

use super::blocked::{self, MicroKernel, View};
use super::scalar::{EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};
use std::arch::x86_64::*;

/// 6 rows × 16 columns (2 registers): 12 accumulators + 2 B vectors + 1 broadcast,
/// within the 16 registers (the classic Haswell BLIS shape).
pub(crate) struct K6x16;

impl MicroKernel for K6x16 {
    const MR: usize = 6;
    const NR: usize = 16;
    const KC: usize = 256;
    const MC: usize = 72;
    const NC: usize = 512;

    #[inline]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, load_c: bool) {
        kernel_6x16(kc, a, b, c, ldc, load_c)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_6x16(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    load_c: bool,
) {
    const MR: usize = 6;
    const NV: usize = 2;
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    if load_c {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(c.add(r * ldc + v * 8));
            }
        }
    }
    let mut ap = a;
    let mut bp = b;
    for _ in 0..kc {
        let bv = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))];
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = _mm256_broadcast_ss(&*ap.add(r));
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_fmadd_ps(ar, bv[v], *x);
            }
        }
        ap = ap.add(MR);
        bp = bp.add(NV * 8);
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm256_storeu_ps(c.add(r * ldc + v * 8), *x);
        }
    }
}

/// # Safety
/// AVX2 and FMA are available; shapes are checked by the caller.
pub(crate) unsafe fn gemm(
    c: &mut [f32],
    a: View,
    b: View,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    blocked::gemm::<K6x16>(c, a, b, m, k, n, accumulate)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn neg(x: __m256) -> __m256 {
    _mm256_xor_ps(x, _mm256_set1_ps(-0.0))
}

/// Lane-wise [`super::scalar::exp1`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp8(x: __m256) -> __m256 {
    // min(x, MAX) returns MAX for NaN lanes; they are replaced by x at the end.
    let xc = _mm256_min_ps(x, _mm256_set1_ps(EXP_MAX));
    let magic = _mm256_set1_ps(ROUND_MAGIC);
    let n = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), magic),
        magic,
    );
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), xc);
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    let mut p = _mm256_set1_ps(EXP_POLY[6]);
    for i in (0..6).rev() {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_POLY[i]));
    }
    let e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e));
    let y = _mm256_mul_ps(p, scale);
    let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
    let y = _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
    let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
    _mm256_blendv_ps(y, x, nan)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sigmoid8(x: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    _mm256_div_ps(one, _mm256_add_ps(one, exp8(neg(x))))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh8(x: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    let e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0), x));
    _mm256_sub_ps(
        _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(one, e)),
        one,
    )
}

/// Applies a lane-wise function to a slice; the tail goes through a zero-padded
/// buffer. A macro so that everything compiles in the caller's `target_feature`.
macro_rules! map {
    ($y:expr, $x:expr, $f:ident) => {{
        let (y, x): (&mut [f32], &[f32]) = ($y, $x);
        let n = y.len().min(x.len());
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(yp.add(i), $f(_mm256_loadu_ps(xp.add(i))));
            i += 8;
        }
        if i < n {
            let mut buf = [0.0f32; 8];
            buf[..n - i].copy_from_slice(&x[i..n]);
            _mm256_storeu_ps(buf.as_mut_ptr(), $f(_mm256_loadu_ps(buf.as_ptr())));
            y[i..n].copy_from_slice(&buf[..n - i]);
        }
    }};
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp(y: &mut [f32], x: &[f32]) {
    map!(y, x, exp8)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn sigmoid(y: &mut [f32], x: &[f32]) {
    map!(y, x, sigmoid8)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tanh(y: &mut [f32], x: &[f32]) {
    map!(y, x, tanh8)
}

/// The module-level fold of the 16-lane vector `(lo, hi)`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn fold(lo: __m256, hi: __m256) -> f32 {
    let s8 = _mm256_add_ps(lo, hi);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn sum(x: &[f32]) -> f32 {
    let n = x.len();
    let xp = x.as_ptr();
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(xp.add(i)));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(xp.add(i + 8)));
        i += 16;
    }
    if i < n {
        // Missing lanes add +0.0, which leaves a lane sum unchanged: a lane sum
        // starts at +0.0 and so can never be -0.0.
        let mut buf = [0.0f32; 16];
        buf[..n - i].copy_from_slice(&x[i..n]);
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(buf.as_ptr()));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(buf.as_ptr().add(8)));
    }
    fold(lo, hi)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn max(x: &[f32]) -> f32 {
    // max is exact; with NaN inputs the result may differ from scalar's, but then
    // softmax's sum is NaN on every path and so is every output.
    let n = x.len();
    let xp = x.as_ptr();
    let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i + 8 <= n {
        acc = _mm256_max_ps(acc, _mm256_loadu_ps(xp.add(i)));
        i += 8;
    }
    let mut lanes = [0.0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    lanes
        .iter()
        .chain(&x[i..])
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn softmax(x: &mut [f32]) {
    let n = x.len();
    let m = _mm256_set1_ps(max(x));
    let xp = x.as_mut_ptr();
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        let e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i)), m));
        let e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i + 8)), m));
        _mm256_storeu_ps(xp.add(i), e0);
        _mm256_storeu_ps(xp.add(i + 8), e1);
        lo = _mm256_add_ps(lo, e0);
        hi = _mm256_add_ps(hi, e1);
        i += 16;
    }
    if i < n {
        let t = n - i;
        let mut buf = [0.0f32; 16];
        buf[..t].copy_from_slice(&x[i..n]);
        let bp = buf.as_mut_ptr();
        for h in 0..2 {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(bp.add(8 * h)), m));
            _mm256_storeu_ps(bp.add(8 * h), e);
        }
        // Lanes past the end must add +0.0, not exp(0 - max).
        buf[t..].fill(0.0);
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(bp));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(bp.add(8)));
        x[i..n].copy_from_slice(&buf[..t]);
    }
    let inv = _mm256_set1_ps(1.0 / fold(lo, hi));
    let xp = x.as_mut_ptr();
    let mut i = 0;
    while i + 8 <= n {
        _mm256_storeu_ps(xp.add(i), _mm256_mul_ps(_mm256_loadu_ps(xp.add(i)), inv));
        i += 8;
    }
    let inv = _mm_cvtss_f32(_mm256_castps256_ps128(inv));
    for v in &mut x[i..] {
        *v *= inv;
    }
}
