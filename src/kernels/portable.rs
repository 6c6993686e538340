//! The portable fast path: the same blocked driver as the SIMD paths around a micro-
//! kernel written in plain Rust over fixed-size arrays, with `f32::mul_add`.
//!
//! Where FMA is an ordinary instruction (aarch64, where NEON has it; x86-64 builds
//! with the `fma` target feature) the compiler turns the inner loops into vector FMAs
//! across outputs, which keeps each output's chain intact; elsewhere each `mul_add`
//! is a libm call, slow but still exact. This is what [`super::Isa::Scalar`] runs for
//! matrix products, and the starting point for a NEON path.

use super::blocked::{MicroKernel, Prefetch, View};

/// 4 rows × 16 columns: small enough for NEON's 32 registers (16 accumulators of 4).
pub(crate) struct K4x16;

const MR: usize = 4;
const NR: usize = 16;

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel<const R: usize, const PACK: bool>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    bdst: *mut f32,
    c: *mut f32,
    ldc: usize,
    load_c: bool,
) {
    let mut acc = [[0.0f32; NR]; R];
    if load_c {
        for (r, row) in acc.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = *c.add(r * ldc + j);
            }
        }
    }
    for p in 0..kc {
        let mut bv = [0.0f32; NR];
        let src = if PACK { b.add(p * ldb) } else { b.add(p * NR) };
        for (j, x) in bv.iter_mut().enumerate() {
            *x = *src.add(j);
        }
        if PACK && !bdst.is_null() {
            for (j, &x) in bv.iter().enumerate() {
                *bdst.add(p * NR + j) = x;
            }
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = *a.add(p * MR + r);
            for (x, &bj) in row.iter_mut().zip(&bv) {
                *x = ar.mul_add(bj, *x);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            *c.add(r * ldc + j) = x;
        }
    }
}

impl MicroKernel for K4x16 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 64;

    unsafe fn run(
        rows: usize,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        load_c: bool,
        _pf: Prefetch,
    ) {
        let bd = std::ptr::null_mut();
        by_rows!(rows, MR, R => kernel::<R, false>(kc, a, b, 0, bd, c, ldc, load_c))
    }

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
        _pf: Prefetch,
    ) {
        by_rows!(rows, MR, R => kernel::<R, true>(kc, a, bsrc, ldb, bdst, c, ldc, load_c))
    }
}

/// Shapes are checked by the caller.
pub(crate) fn gemm(c: &mut [f32], a: View, b: View, m: usize, k: usize, n: usize, accumulate: bool) {
    // SAFETY: the portable kernel needs no CPU feature.
    unsafe { super::blocked::gemm::<K4x16>(c, a, b, m, k, n, accumulate) }
}
