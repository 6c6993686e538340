//! AVX-512F path: 16 lanes, so the 16-lane virtual vector of every reduction is one
//! register. Every function here computes exactly what its twin in [`super::scalar`]
//! computes, lane by lane, with the same operations in the same order.
//!
//! All functions are `unsafe` because they require AVX-512F; [`super`] only calls them
//! after checking the CPU.

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
            const NR: usize = $nv * 16;
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
    /// 8 rows × 48 columns (3 registers): 24 accumulators + 3 B vectors + 1 broadcast,
    /// within the 32 registers, and enough independent chains to keep both FMA pipes busy.
    K8x48, 8, 3, kc = 256, mc = 128
);

/// The micro-kernel: an `MR × (NV·16)` tile, reading the packed A panel with row
/// stride `AS` (the kernel type's full MR; `MR < AS` for short edge tiles). With `PACK`
/// it reads `B` from the unpacked source `b` (row stride `ldb`), stores each row of the
/// panel to `bdst` (unless null), so that streaming `B` from memory overlaps the FMAs.
/// Either way it prefetches its share of the next panel's rows (see [`Prefetch`]).
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
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
    let nr = NV * 16;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if load_c {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(c.add(r * ldc + v * 16));
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
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(bs.add(v * 16));
        }
        if PACK {
            if store {
                for (v, x) in bv.iter().enumerate() {
                    _mm512_storeu_ps(bd.add(v * 16), *x);
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
            let ar = _mm512_set1_ps(*ap.add(r));
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_fmadd_ps(ar, bv[v], *x);
            }
        }
        ap = ap.add(AS);
        bs = bs.add(bstride);
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * ldc + v * 16), *x);
        }
    }
}

/// [`MicroKernel::gather_rows`] with 16-lane gathers: for each block of 16 rows of the
/// stored `b` (16 columns of B), walk `p` so the 16 source cache lines are reused.
#[target_feature(enable = "avx512f")]
unsafe fn gather_rows(dst: &mut [f32], b: View, p0: usize, kc: usize, n: usize) {
    if b.rs != 1 || b.cs.checked_mul(16).is_none_or(|x| x > i32::MAX as usize) || kc == 0 {
        return gather_rows_portable(dst, b, p0, kc, n);
    }
    assert!(dst.len() >= kc * n && b.data.len() >= (n - 1) * b.cs + p0 + kc);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(b.cs as i32),
    );
    let full = n - n % 16;
    let dp = dst.as_mut_ptr();
    for j0 in (0..full).step_by(16) {
        let base = b.data.as_ptr().add(j0 * b.cs + p0);
        for p in 0..kc {
            let v = _mm512_i32gather_ps::<4>(idx, base.add(p));
            _mm512_storeu_ps(dp.add(p * n + j0), v);
        }
    }
    for j in full..n {
        for p in 0..kc {
            dst[p * n + j] = b.data[j * b.cs + p0 + p];
        }
    }
}

/// # Safety
/// AVX-512F is available; shapes are checked by the caller.
pub(crate) unsafe fn gemm(c: &mut [f32], a: View, b: View, m: usize, k: usize, n: usize, accumulate: bool) {
    blocked::gemm::<K8x48>(c, a, b, m, k, n, accumulate)
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn neg(x: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN)))
}

/// Lane-wise [`super::scalar::exp1`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn exp16(x: __m512) -> __m512 {
    // min(x, MAX) returns MAX for NaN lanes; they are replaced by x at the end.
    let xc = _mm512_min_ps(x, _mm512_set1_ps(EXP_MAX));
    let magic = _mm512_set1_ps(ROUND_MAGIC);
    let n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)), magic), magic);
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
    _mm512_sub_ps(_mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(one, e)), one)
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

/// Lane-wise [`scalar::ln1`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn ln16(x: __m512) -> __m512 {
    let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(f32::MIN_POSITIVE));
    let xs = _mm512_mask_blend_ps(tiny, x, _mm512_mul_ps(x, _mm512_set1_ps(TWO_POW_23)));
    let bias = _mm512_mask_blend_epi32(tiny, _mm512_set1_epi32(126), _mm512_set1_epi32(126 + 23));
    let bits = _mm512_castps_si512(xs);
    let e = _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), bias);
    let mbits = _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)), _mm512_set1_epi32(0x3f00_0000));
    let m = _mm512_castsi512_ps(mbits);
    let one = _mm512_set1_ps(1.0);
    let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m, _mm512_set1_ps(SQRT_HALF));
    let e = _mm512_mask_sub_epi32(e, lt, e, _mm512_set1_epi32(1));
    let f = _mm512_mask_blend_ps(lt, _mm512_sub_ps(m, one), _mm512_sub_ps(_mm512_add_ps(m, m), one));
    let z = _mm512_mul_ps(f, f);
    let mut p = _mm512_set1_ps(LN_POLY[0]);
    for &c in &LN_POLY[1..] {
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
    }
    let y = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    let ef = _mm512_cvtepi32_ps(e);
    let y = _mm512_fmadd_ps(ef, _mm512_set1_ps(LN_C2), y);
    let y = _mm512_fmadd_ps(z, _mm512_set1_ps(-0.5), y);
    let r = _mm512_add_ps(f, y);
    let r = _mm512_fmadd_ps(ef, _mm512_set1_ps(LN_C1), r);
    let inf = _mm512_set1_ps(f32::INFINITY);
    let r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, inf), r, inf);
    let zero = _mm512_setzero_ps();
    let r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, zero), r, _mm512_set1_ps(f32::NEG_INFINITY));
    let bad = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(x, zero); // x < 0 or NaN
    _mm512_mask_blend_ps(bad, r, _mm512_set1_ps(f32::NAN))
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn ln(y: &mut [f32], x: &[f32]) {
    map!(y, x, ln16)
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let av = _mm512_set1_ps(a);
    let mut i = 0;
    while i + 16 <= n {
        _mm512_storeu_ps(yp.add(i), _mm512_fmadd_ps(av, _mm512_loadu_ps(xp.add(i)), _mm512_loadu_ps(yp.add(i))));
        i += 16;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, xp.add(i)), _mm512_maskz_loadu_ps(mask, yp.add(i)));
        _mm512_mask_storeu_ps(yp.add(i), mask, r);
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn log_softmax(x: &mut [f32]) {
    let n = x.len();
    let m = _mm512_set1_ps(max(x));
    let xp = x.as_mut_ptr();
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        acc = _mm512_add_ps(acc, exp16(_mm512_sub_ps(_mm512_loadu_ps(xp.add(i)), m)));
        i += 16;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, xp.add(i)), m));
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(mask, e));
    }
    let l = _mm512_set1_ps(scalar::ln1(fold(acc)));
    let mut i = 0;
    while i + 16 <= n {
        let v = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xp.add(i)), m), l);
        _mm512_storeu_ps(xp.add(i), v);
        i += 16;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let v = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, xp.add(i)), m), l);
        _mm512_mask_storeu_ps(xp.add(i), mask, v);
    }
}
