//! AVX-512F path: 16 lanes, so the 16-lane virtual vector of every reduction is one
//! register. Every function here computes exactly what its twin in [`super::scalar`]
//! computes, lane by lane, with the same operations in the same order.
//!
//! All functions are `unsafe` because they require AVX-512F; [`super`] only calls them
//! after checking the CPU.

use super::blocked::{self, MicroKernel, View};
use super::scalar::{EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};
use std::arch::x86_64::*;

/// 8 rows × 48 columns (3 registers): 24 accumulators + 3 B vectors + 1 broadcast,
/// within the 32 registers, and enough independent chains to keep both FMA pipes busy.
pub(crate) struct K8x48;

impl MicroKernel for K8x48 {
    const MR: usize = 8;
    const NR: usize = 48;
    const KC: usize = 256;
    const MC: usize = 64;
    const NC: usize = 480;

    #[inline]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, load_c: bool) {
        kernel_8x48(kc, a, b, c, ldc, load_c)
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn kernel_8x48(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    load_c: bool,
) {
    const MR: usize = 8;
    const NV: usize = 3;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if load_c {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(c.add(r * ldc + v * 16));
            }
        }
    }
    let mut ap = a;
    let mut bp = b;
    for _ in 0..kc {
        let bv = [
            _mm512_loadu_ps(bp),
            _mm512_loadu_ps(bp.add(16)),
            _mm512_loadu_ps(bp.add(32)),
        ];
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = _mm512_set1_ps(*ap.add(r));
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_fmadd_ps(ar, bv[v], *x);
            }
        }
        ap = ap.add(MR);
        bp = bp.add(NV * 16);
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * ldc + v * 16), *x);
        }
    }
}

/// # Safety
/// AVX-512F is available; shapes are checked by the caller.
pub(crate) unsafe fn gemm(
    c: &mut [f32],
    a: View,
    b: View,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    blocked::gemm::<K8x48>(c, a, b, m, k, n, accumulate)
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn neg(x: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(x),
        _mm512_set1_epi32(i32::MIN),
    ))
}

/// Lane-wise [`super::scalar::exp1`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn exp16(x: __m512) -> __m512 {
    // min(x, MAX) returns MAX for NaN lanes; they are replaced by x at the end.
    let xc = _mm512_min_ps(x, _mm512_set1_ps(EXP_MAX));
    let magic = _mm512_set1_ps(ROUND_MAGIC);
    let n = _mm512_sub_ps(
        _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)), magic),
        magic,
    );
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), xc);
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    let mut p = _mm512_set1_ps(EXP_POLY[6]);
    for i in (0..6).rev() {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_POLY[i]));
    }
    let e = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e));
    let y = _mm512_mul_ps(p, scale);
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_MIN));
    let y = _mm512_mask_blend_ps(under, y, _mm512_setzero_ps());
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    _mm512_mask_blend_ps(nan, y, x)
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sigmoid16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    _mm512_div_ps(one, _mm512_add_ps(one, exp16(neg(x))))
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tanh16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0), x));
    _mm512_sub_ps(
        _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(one, e)),
        one,
    )
}

/// Mask of the first `len` lanes (`len < 16`).
#[inline(always)]
fn tail_mask(len: usize) -> __mmask16 {
    ((1u32 << len) - 1) as __mmask16
}

/// Applies a lane-wise function to a slice; a macro rather than a generic function
/// so that everything is compiled inside the caller's `target_feature` context.
macro_rules! map {
    ($y:expr, $x:expr, $f:ident) => {{
        let (y, x): (&mut [f32], &[f32]) = ($y, $x);
        let n = y.len().min(x.len());
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        let mut i = 0;
        while i + 16 <= n {
            _mm512_storeu_ps(yp.add(i), $f(_mm512_loadu_ps(xp.add(i))));
            i += 16;
        }
        if i < n {
            let mask = tail_mask(n - i);
            let v = _mm512_maskz_loadu_ps(mask, xp.add(i));
            _mm512_mask_storeu_ps(yp.add(i), mask, $f(v));
        }
    }};
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn exp(y: &mut [f32], x: &[f32]) {
    map!(y, x, exp16)
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sigmoid(y: &mut [f32], x: &[f32]) {
    map!(y, x, sigmoid16)
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tanh(y: &mut [f32], x: &[f32]) {
    map!(y, x, tanh16)
}

/// The module-level fold: `l += l+8`, `l += l+4`, `l += l+2`, `l += l+1`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn fold(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let s8 = _mm256_add_ps(lo, hi);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sum(x: &[f32]) -> f32 {
    let n = x.len();
    let xp = x.as_ptr();
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        acc = _mm512_add_ps(acc, _mm512_loadu_ps(xp.add(i)));
        i += 16;
    }
    if i < n {
        // Missing lanes add +0.0, which leaves a lane sum unchanged: a lane sum
        // starts at +0.0 and so can never be -0.0.
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(n - i), xp.add(i)));
    }
    fold(acc)
}

#[target_feature(enable = "avx512f")]
unsafe fn max(x: &[f32]) -> f32 {
    // max is exact; with NaN inputs the result may differ from scalar's, but then
    // softmax's sum is NaN on every path and so is every output.
    let n = x.len();
    let xp = x.as_ptr();
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut acc = ninf;
    let mut i = 0;
    while i + 16 <= n {
        acc = _mm512_max_ps(acc, _mm512_loadu_ps(xp.add(i)));
        i += 16;
    }
    if i < n {
        acc = _mm512_max_ps(acc, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), xp.add(i)));
    }
    let mut lanes = [0.0f32; 16];
    _mm512_storeu_ps(lanes.as_mut_ptr(), acc);
    lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn softmax(x: &mut [f32]) {
    let n = x.len();
    let m = _mm512_set1_ps(max(x));
    let xp = x.as_mut_ptr();
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(xp.add(i)), m));
        _mm512_storeu_ps(xp.add(i), e);
        acc = _mm512_add_ps(acc, e);
        i += 16;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, xp.add(i)), m));
        _mm512_mask_storeu_ps(xp.add(i), mask, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(mask, e));
    }
    let inv = _mm512_set1_ps(1.0 / fold(acc));
    let mut i = 0;
    while i + 16 <= n {
        _mm512_storeu_ps(xp.add(i), _mm512_mul_ps(_mm512_loadu_ps(xp.add(i)), inv));
        i += 16;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let v = _mm512_maskz_loadu_ps(mask, xp.add(i));
        _mm512_mask_storeu_ps(xp.add(i), mask, _mm512_mul_ps(v, inv));
    }
}
