//! The portable part of the fast matrix products: cache blocking and packing.
//!
//! A BLIS-style loop nest around an ISA-specific micro-kernel that computes an
//! `MR×NR` tile of `C` over a `kc`-long slice of `k`. The block sizes are fixed
//! constants of each kernel, never read from the cache hierarchy, and none of them
//! can change a result anyway: every output is still the one FMA chain over `p`
//! ascending, because splitting `k` into blocks only stores the running f32
//! accumulator into `C` and loads it back, which is exact.
//!
//! Edge tiles (fewer than `MR` rows or `NR` columns left) run the same full-size
//! micro-kernel on zero-padded packed operands into a scratch tile, then copy the
//! valid part out: padded lanes are independent outputs that are thrown away, so the
//! kept lanes see exactly the chain the scalar reference computes.

use std::cell::RefCell;

/// A read-only strided matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.rs + c * self.cs]
    }
}

/// An ISA-specific register-blocked micro-kernel.
pub(crate) trait MicroKernel {
    /// Rows of `C` per tile.
    const MR: usize;
    /// Columns of `C` per tile (a multiple of the vector width).
    const NR: usize;
    /// `k` block: how many FMA steps run before the accumulators go back to `C`.
    const KC: usize;
    /// Rows of `A` packed at once (a multiple of `MR`).
    const MC: usize;
    /// Columns of `B` packed at once (a multiple of `NR`).
    const NC: usize;

    /// `C[r][j] = fma-chain over p < kc of a[p*MR + r] * b[p*NR + j]`, starting from
    /// `C[r][j]` (at `c + r*ldc + j`) when `load_c`, else from `+0.0`, for the full
    /// `MR×NR` tile.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; `a` holds `kc*MR`, `b` holds `kc*NR` floats;
    /// `c` is valid for reads and writes of the full tile with row stride `ldc`.
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, load_c: bool);
}

/// 64-byte aligned storage so packed panels start on cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    static PACK_A: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    static PACK_B: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<Line>>>,
    floats: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| {
        // A re-entrant call (impossible today: kernels call no kernels) would get a
        // fresh buffer instead of a BorrowMutError.
        match cell.try_borrow_mut() {
            Ok(mut v) => {
                let lines = floats.div_ceil(16);
                if v.len() < lines {
                    v.resize(lines, Line([0.0; 16]));
                }
                let s = lines_as_floats(&mut v[..lines]);
                f(&mut s[..floats])
            }
            Err(_) => {
                let mut v = vec![Line([0.0; 16]); floats.div_ceil(16)];
                let s = lines_as_floats(&mut v);
                f(&mut s[..floats])
            }
        }
    })
}

fn lines_as_floats(v: &mut [Line]) -> &mut [f32] {
    // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with no padding (64 bytes).
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len() * 16) }
}

/// Packs rows `i0..i0+mc`, columns `p0..p0+kc` of `a` into `MR`-row panels:
/// `dst[q*kc*MR + p*MR + r] = a(i0 + q*MR + r, p0 + p)`, zero past row `mc`.
fn pack_a(dst: &mut [f32], a: View, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize) {
    for q in 0..mc.div_ceil(mr) {
        let panel = &mut dst[q * kc * mr..(q + 1) * kc * mr];
        let rows = mr.min(mc - q * mr);
        if a.rs == 1 {
            // Aᵀ stored: the MR values of one p are contiguous.
            for p in 0..kc {
                let src = &a.data[(p0 + p) * a.cs + i0 + q * mr..][..rows];
                panel[p * mr..p * mr + rows].copy_from_slice(src);
                panel[p * mr + rows..(p + 1) * mr].fill(0.0);
            }
        } else {
            for r in 0..rows {
                let i = i0 + q * mr + r;
                for p in 0..kc {
                    panel[p * mr + r] = a.at(i, p0 + p);
                }
            }
            for r in rows..mr {
                for p in 0..kc {
                    panel[p * mr + r] = 0.0;
                }
            }
        }
    }
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of `b` into `NR`-column panels:
/// `dst[q*kc*NR + p*NR + j] = b(p0 + p, j0 + q*NR + j)`, zero past column `nc`.
fn pack_b(dst: &mut [f32], b: View, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize) {
    for q in 0..nc.div_ceil(nr) {
        let panel = &mut dst[q * kc * nr..(q + 1) * kc * nr];
        let cols = nr.min(nc - q * nr);
        if b.cs == 1 {
            for p in 0..kc {
                let src = &b.data[(p0 + p) * b.rs + j0 + q * nr..][..cols];
                panel[p * nr..p * nr + cols].copy_from_slice(src);
                panel[p * nr + cols..(p + 1) * nr].fill(0.0);
            }
        } else {
            // Bᵀ stored (gemm_nt): walk each column of B contiguously.
            for j in 0..cols {
                let jj = j0 + q * nr + j;
                for p in 0..kc {
                    panel[p * nr + j] = b.at(p0 + p, jj);
                }
            }
            for p in 0..kc {
                panel[p * nr + cols..(p + 1) * nr].fill(0.0);
            }
        }
    }
}

/// `C (m×n, row stride n) = [C +] A (m×k) · B (k×n)` with the micro-kernel `K`.
///
/// # Safety
/// The CPU supports `K`'s ISA. (Shapes are checked by the caller.)
pub(crate) unsafe fn gemm<K: MicroKernel>(
    c: &mut [f32],
    a: View,
    b: View,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let (mr, nr) = (K::MR, K::NR);
    let kc_max = K::KC.min(k);
    let mc_max = K::MC.min(m.next_multiple_of(mr));
    let nc_max = K::NC.min(n.next_multiple_of(nr));
    with_buffer(&PACK_B, kc_max * nc_max, |bpack| {
        with_buffer(&PACK_A, kc_max * mc_max, |apack| {
            let cp = c.as_mut_ptr();
            let mut tile = [0.0f32; 512];
            debug_assert!(mr * nr <= tile.len());
            for jc in (0..n).step_by(K::NC) {
                let nc = K::NC.min(n - jc);
                for pc in (0..k).step_by(K::KC) {
                    let kc = K::KC.min(k - pc);
                    let load_c = accumulate || pc > 0;
                    pack_b(bpack, b, pc, kc, jc, nc, nr);
                    for ic in (0..m).step_by(K::MC) {
                        let mc = K::MC.min(m - ic);
                        pack_a(apack, a, ic, mc, pc, kc, mr);
                        for jr in (0..nc).step_by(nr) {
                            let ncols = nr.min(nc - jr);
                            let bp = bpack.as_ptr().add(jr * kc);
                            for ir in (0..mc).step_by(mr) {
                                let nrows = mr.min(mc - ir);
                                let ap = apack.as_ptr().add(ir * kc);
                                let ct = cp.add((ic + ir) * n + jc + jr);
                                if nrows == mr && ncols == nr {
                                    K::run(kc, ap, bp, ct, n, load_c);
                                } else {
                                    // Edge tile: run the full tile on a scratch copy.
                                    if load_c {
                                        for r in 0..nrows {
                                            for j in 0..ncols {
                                                tile[r * nr + j] = *ct.add(r * n + j);
                                            }
                                        }
                                    }
                                    K::run(kc, ap, bp, tile.as_mut_ptr(), nr, load_c);
                                    for r in 0..nrows {
                                        for j in 0..ncols {
                                            *ct.add(r * n + j) = tile[r * nr + j];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    })
}

/// Cache-blocked transpose: a copy, so any order gives the same bits.
pub(crate) fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    const T: usize = 32;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}
