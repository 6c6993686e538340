//! AVX2 + FMA path: 8 lanes, so the 16-lane virtual vector of every reduction is two
//! registers (`lo` = lanes 0..8, `hi` = lanes 8..16). Every function here computes
//! exactly what its twin in [`super::scalar`] computes, lane by lane, with the same
//! operations in the same order.
//!
//! All functions are `unsafe` because they require AVX2 and FMA; [`super`] only calls
//! them after checking the CPU.

use super::blocked::{self, gather_rows_portable, MicroKernel, Prefetch, View};
use super::scalar::{
    self, EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LN_C1, LN_C2, LN_POLY, LOG2E, ROUND_MAGIC, SQRT_HALF, TWO_POW_23,
};
use std::arch::x86_64::*;

/// Declares a micro-kernel type `$name` of `$mr` rows × `$nv` registers.
macro_rules! micro_kernel {
    ($(#[$doc:meta])* $name:ident, $mr:expr, $nv:expr, kc = $kc:expr, mc = $mc:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl MicroKernel for $name {
            const MR: usize = $mr;
            const NR: usize = $nv * 8;
            const KC: usize = $kc;
            const MC: usize = $mc;

            #[inline]
            unsafe fn run(
                rows: usize,
                kc: usize,
                a: *const f32,
                b: *const f32,
                c: *mut f32,
                ldc: usize,
                load_c: bool,
                pf: Prefetch,
            ) {
                let bd = std::ptr::null_mut();
                by_rows!(rows, $mr, R => kernel::<R, $nv, false, $mr>(kc, a, b, 0, bd, c, ldc, load_c, pf))
            }

            #[inline]
            unsafe fn run_pack(
                rows: usize,
                kc: usize,
                a: *const f32,
                bsrc: *const f32,
                ldb: usize,
                bdst: *mut f32,
                c: *mut f32,
                ldc: usize,
                load_c: bool,
                pf: Prefetch,
            ) {
                by_rows!(rows, $mr, R => kernel::<R, $nv, true, $mr>(kc, a, bsrc, ldb, bdst, c, ldc, load_c, pf))
            }

            unsafe fn gather_rows(dst: &mut [f32], b: View, p0: usize, kc: usize, n: usize) {
                gather_rows(dst, b, p0, kc, n)
            }
        }
    };
}

micro_kernel!(
    /// 6 rows × 16 columns (2 registers): 12 accumulators + 2 B vectors + 1 broadcast,
    /// within the 16 registers (the classic Haswell BLIS shape).
    K6x16, 6, 2, kc = 256, mc = 72
);

/// The micro-kernel: an `MR × (NV·8)` tile, reading the packed A panel with row
/// stride `AS` (the kernel type's full MR; `MR < AS` for short edge tiles). With `PACK`
/// it reads `B` from the unpacked source `b` (row stride `ldb`), stores each row of the
/// panel to `bdst` (unless null), so that streaming `B` from memory overlaps the FMAs.
/// Either way it prefetches its share of the next panel's rows (see [`Prefetch`]).
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const MR: usize, const NV: usize, const PACK: bool, const AS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    bdst: *mut f32,
    c: *mut f32,
    ldc: usize,
    load_c: bool,
    pf: Prefetch,
) {
    let nr = NV * 8;
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    if load_c {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(c.add(r * ldc + v * 8));
            }
        }
    }
    let mut ap = a;
    let (mut bs, bstride) = if PACK { (b, ldb) } else { (b, nr) };
    let mut bd = bdst;
    // A null `bdst`: this panel has no further tiles, so nothing needs the packed copy.
    let store = !bdst.is_null();
    let (mut pf_row, mut countdown) = (pf.next, pf.phase);
    for _ in 0..kc {
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm256_loadu_ps(bs.add(v * 8));
        }
        if PACK {
            if store {
                for (v, x) in bv.iter().enumerate() {
                    _mm256_storeu_ps(bd.add(v * 8), *x);
                }
            }
            bd = bd.wrapping_add(nr);
        }
        if !pf.next.is_null() {
            if countdown == 0 {
                // Prefetching never faults, so the row may lie past the matrix
                // (wrapping_add keeps the pointer arithmetic defined).
                let row = pf_row as *const i8;
                let mut off = 0;
                while off < nr * 4 {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(off));
                    off += 64;
                }
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(nr * 4 - 4));
                countdown = pf.every;
            }
            countdown -= 1;
            pf_row = pf_row.wrapping_add(pf.ld);
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = _mm256_broadcast_ss(&*ap.add(r));
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_fmadd_ps(ar, bv[v], *x);
            }
        }
        ap = ap.add(AS);
        bs = bs.add(bstride);
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm256_storeu_ps(c.add(r * ldc + v * 8), *x);
        }
    }
}

/// [`MicroKernel::gather_rows`] with 8-lane gathers: for each block of 8 rows of the
/// stored `b` (8 columns of B), walk `p` so the 8 source cache lines are reused.
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_rows(dst: &mut [f32], b: View, p0: usize, kc: usize, n: usize) {
    if b.rs != 1 || b.cs.checked_mul(8).is_none_or(|x| x > i32::MAX as usize) || kc == 0 {
        return gather_rows_portable(dst, b, p0, kc, n);
    }
    assert!(dst.len() >= kc * n && b.data.len() >= (n - 1) * b.cs + p0 + kc);
    let idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(b.cs as i32));
    let full = n - n % 8;
    let dp = dst.as_mut_ptr();
    for j0 in (0..full).step_by(8) {
        let base = b.data.as_ptr().add(j0 * b.cs + p0);
        for p in 0..kc {
            let v = _mm256_i32gather_ps::<4>(base.add(p), idx);
            _mm256_storeu_ps(dp.add(p * n + j0), v);
        }
    }
    for j in full..n {
        for p in 0..kc {
            dst[p * n + j] = b.data[j * b.cs + p0 + p];
        }
    }
}

/// # Safety
/// AVX2 and FMA are available; shapes are checked by the caller.
pub(crate) unsafe fn gemm(c: &mut [f32], a: View, b: View, m: usize, k: usize, n: usize, accumulate: bool) {
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
    let n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), magic), magic);
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
    _mm256_sub_ps(_mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(one, e)), one)
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
    lanes.iter().chain(&x[i..]).copied().fold(f32::NEG_INFINITY, f32::max)
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

/// Lane-wise [`scalar::ln1`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln8(x: __m256) -> __m256 {
    let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(f32::MIN_POSITIVE));
    let xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(TWO_POW_23)), tiny);
    let bias = _mm256_blendv_epi8(_mm256_set1_epi32(126), _mm256_set1_epi32(126 + 23), _mm256_castps_si256(tiny));
    let bits = _mm256_castps_si256(xs);
    let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), bias);
    let mbits = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)), _mm256_set1_epi32(0x3f00_0000));
    let m = _mm256_castsi256_ps(mbits);
    let one = _mm256_set1_ps(1.0);
    let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(m, _mm256_set1_ps(SQRT_HALF));
    // lt lanes are all ones, i.e. -1: adding it decrements e.
    let e = _mm256_add_epi32(e, _mm256_castps_si256(lt));
    let f = _mm256_blendv_ps(_mm256_sub_ps(m, one), _mm256_sub_ps(_mm256_add_ps(m, m), one), lt);
    let z = _mm256_mul_ps(f, f);
    let mut p = _mm256_set1_ps(LN_POLY[0]);
    for &c in &LN_POLY[1..] {
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c));
    }
    let y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    let ef = _mm256_cvtepi32_ps(e);
    let y = _mm256_fmadd_ps(ef, _mm256_set1_ps(LN_C2), y);
    let y = _mm256_fmadd_ps(z, _mm256_set1_ps(-0.5), y);
    let r = _mm256_add_ps(f, y);
    let r = _mm256_fmadd_ps(ef, _mm256_set1_ps(LN_C1), r);
    let inf = _mm256_set1_ps(f32::INFINITY);
    let r = _mm256_blendv_ps(r, inf, _mm256_cmp_ps::<_CMP_EQ_OQ>(x, inf));
    let zero = _mm256_setzero_ps();
    let r = _mm256_blendv_ps(r, _mm256_set1_ps(f32::NEG_INFINITY), _mm256_cmp_ps::<_CMP_EQ_OQ>(x, zero));
    let bad = _mm256_cmp_ps::<_CMP_NGE_UQ>(x, zero); // x < 0 or NaN
    _mm256_blendv_ps(r, _mm256_set1_ps(f32::NAN), bad)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn ln(y: &mut [f32], x: &[f32]) {
    map!(y, x, ln8)
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let av = _mm256_set1_ps(a);
    let mut i = 0;
    while i + 8 <= n {
        _mm256_storeu_ps(yp.add(i), _mm256_fmadd_ps(av, _mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(yp.add(i))));
        i += 8;
    }
    for j in i..n {
        // Scalar FMA: this function is compiled with the `fma` feature.
        y[j] = a.mul_add(x[j], y[j]);
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn log_softmax(x: &mut [f32]) {
    let n = x.len();
    let mf = max(x);
    let m = _mm256_set1_ps(mf);
    let xp = x.as_mut_ptr();
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        lo = _mm256_add_ps(lo, exp8(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i)), m)));
        hi = _mm256_add_ps(hi, exp8(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i + 8)), m)));
        i += 16;
    }
    if i < n {
        let t = n - i;
        let mut buf = [0.0f32; 16];
        buf[..t].copy_from_slice(&x[i..n]);
        let bp = buf.as_mut_ptr();
        for h in 0..2 {
            _mm256_storeu_ps(bp.add(8 * h), exp8(_mm256_sub_ps(_mm256_loadu_ps(bp.add(8 * h)), m)));
        }
        // Lanes past the end must add +0.0, not exp(0 - max).
        buf[t..].fill(0.0);
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(bp));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(bp.add(8)));
    }
    let lf = scalar::ln1(fold(lo, hi));
    let l = _mm256_set1_ps(lf);
    let xp = x.as_mut_ptr();
    let mut i = 0;
    while i + 8 <= n {
        _mm256_storeu_ps(xp.add(i), _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i)), m), l));
        i += 8;
    }
    for v in &mut x[i..] {
        *v = (*v - mf) - lf;
    }
}
