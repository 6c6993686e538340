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

/// Which rows of the next B panel a micro-kernel call prefetches from the unpacked
/// source: rows `p` with `p % every == phase`, starting at `next` (row stride `ld`
/// floats). Spreading the prefetches over all the tiles that share a panel keeps a
/// steady stream of requests to memory instead of a burst in the panel's first tile.
#[derive(Clone, Copy)]
pub(crate) struct Prefetch {
    /// The next panel's first row, or null for none. Never dereferenced: prefetching
    /// does not fault, so it may point anywhere.
    pub next: *const f32,
    pub ld: usize,
    pub every: usize,
    pub phase: usize,
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

    /// `C[r][j] = fma-chain over p < kc of a[p*MR + r] * b[p*NR + j]`, starting from
    /// `C[r][j]` (at `c + r*ldc + j`) when `load_c`, else from `+0.0`, for the first
    /// `rows` (1..=MR) rows and all `NR` columns of the tile. (A kernel compiled for
    /// exactly `rows` rows, so short edge tiles and tiny batches cost what they use.)
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; `1 <= rows <= MR`; `a` holds `kc*MR`, `b`
    /// holds `kc*NR` floats; `c` is valid for reads and writes of `rows` rows of `NR`
    /// floats with row stride `ldc`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        rows: usize,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        load_c: bool,
        pf: Prefetch,
    );

    /// As [`MicroKernel::run`], but reads the `kc×NR` panel of `B` from the unpacked
    /// row-major source `bsrc` (row stride `ldb`) and also stores it, packed, at `bdst`
    /// (unless null) for the tiles that follow. Packing while computing lets the loads
    /// from memory overlap the FMAs.
    ///
    /// # Safety
    /// As for `run`; `bsrc` is valid for `kc` rows of `NR` floats at stride `ldb`, and
    /// `bdst` is null or valid for `kc*NR` writes.
    #[allow(clippy::too_many_arguments)]
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
    );

    /// Copies rows `p0..p0+kc` of a transposed-stored `b` into `dst` row-major (`kc×n`).
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; `dst` holds `kc*n` floats.
    unsafe fn gather_rows(dst: &mut [f32], b: View, p0: usize, kc: usize, n: usize) {
        gather_rows_portable(dst, b, p0, kc, n)
    }
}

/// `dst[p*n + j] = b(p0 + p, j)` for `p < kc`, `j < n`: rows of B, row-major, from a
/// `b` stored transposed (`rs == 1`), as [`MicroKernel::gather_rows`] does by default.
pub(crate) fn gather_rows_portable(dst: &mut [f32], b: View, p0: usize, kc: usize, n: usize) {
    const T: usize = 16;
    for j0 in (0..n).step_by(T) {
        let jn = T.min(n - j0);
        for pp in (0..kc).step_by(T) {
            let pn = T.min(kc - pp);
            for j in j0..j0 + jn {
                let src = &b.data[(p0 + pp) * b.rs + j * b.cs..][..(pn - 1) * b.rs + 1];
                for p in 0..pn {
                    dst[(pp + p) * n + j] = src[p * b.rs];
                }
            }
        }
    }
}

/// 64-byte aligned storage so packed panels start on cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    static PACK_A: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    static PACK_B: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    static ROWS_B: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
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

/// Packs rows `p0..p0+kc`, columns `j0..j0+cols` (`cols <= nr`) of `b` into one
/// `NR`-column panel: `dst[p*NR + j] = b(p0 + p, j0 + j)`, zero past column `cols`.
fn pack_b_panel(dst: &mut [f32], b: View, p0: usize, kc: usize, j0: usize, cols: usize, nr: usize) {
    let panel = &mut dst[..kc * nr];
    if b.cs == 1 {
        for p in 0..kc {
            let src = &b.data[(p0 + p) * b.rs + j0..][..cols];
            panel[p * nr..p * nr + cols].copy_from_slice(src);
            panel[p * nr + cols..(p + 1) * nr].fill(0.0);
        }
    } else {
        // Bᵀ stored (gemm_nt): walk each column of B contiguously.
        for j in 0..cols {
            for p in 0..kc {
                panel[p * nr + j] = b.at(p0 + p, j0 + j);
            }
        }
        for p in 0..kc {
            panel[p * nr + cols..(p + 1) * nr].fill(0.0);
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
    // k blocks of equal size (at most KC): no short last block that pays the C
    // traffic of a full one.
    let kcb = k.div_ceil(k.div_ceil(K::KC));
    let mcb = K::MC;
    let kc_max = kcb.min(k);
    let mc_max = mcb.min(m.next_multiple_of(mr));
    // B not row-major (gemm_nt): each k block of B is first copied row-major into a
    // scratch (kc×n) by a blocked transpose, once for all row blocks of A, and the
    // fused path runs on that.
    let rows_b = if b.cs == 1 { 0 } else { kc_max * n };
    with_buffer(&ROWS_B, rows_b, |brows| {
        with_buffer(&PACK_B, kc_max * nr, |bpack| {
            with_buffer(&PACK_A, kc_max * mc_max, |apack| {
                let cp = c.as_mut_ptr();
                let mut tile = [0.0f32; 512];
                debug_assert!(mr * nr <= tile.len());
                // Loop order: k blocks, then row blocks of A (packed once, kept in L2),
                // then every panel of B across all of n (packed into L1 by the panel's
                // first tile and reused by the others), then the row tiles.
                for pc in (0..k).step_by(kcb) {
                    let kc = kcb.min(k - pc);
                    let load_c = accumulate || pc > 0;
                    // `bk` holds B's rows pc..pc+kc from its row `p0`.
                    let (bk, p0) = if b.cs == 1 {
                        (b, pc)
                    } else {
                        K::gather_rows(brows, b, pc, kc, n);
                        (View { data: &brows[..kc * n], rs: n, cs: 1 }, 0)
                    };
                    for ic in (0..m).step_by(mcb) {
                        let mc = mcb.min(m - ic);
                        pack_a(apack, a, ic, mc, pc, kc, mr);
                        for jr in (0..n).step_by(nr) {
                            let ncols = nr.min(n - jr);
                            // Packing is fused into the panel's first tile when the
                            // panel is full; otherwise it is done here.
                            let fused = ncols == nr;
                            if !fused {
                                pack_b_panel(bpack, bk, p0, kc, jr, ncols, nr);
                            }
                            let bp = bpack.as_mut_ptr();
                            for ir in (0..mc).step_by(mr) {
                                let nrows = mr.min(mc - ir);
                                let ap = apack.as_ptr().add(ir * kc);
                                let ct = cp.add((ic + ir) * n + jr);
                                // Column edge: run on a scratch copy, all NR columns.
                                let full = ncols == nr;
                                let (cdst, ldc) = if full { (ct, n) } else { (tile.as_mut_ptr(), nr) };
                                if !full && load_c {
                                    for r in 0..nrows {
                                        for j in 0..ncols {
                                            tile[r * nr + j] = *ct.add(r * n + j);
                                        }
                                    }
                                }
                                // The next panel (or the next k block's first one) is
                                // prefetched by this panel's tiles, a share each.
                                let next = if jr + nr < n {
                                    bk.data.as_ptr().wrapping_add(p0 * bk.rs + jr + nr)
                                } else if b.cs == 1 && pc + kc < k {
                                    bk.data.as_ptr().wrapping_add((p0 + kc) * bk.rs)
                                } else {
                                    std::ptr::null()
                                };
                                let pf = Prefetch { next, ld: bk.rs, every: mc.div_ceil(mr), phase: ir / mr };
                                if fused && ir == 0 {
                                    let src = bk.data.as_ptr().add(p0 * bk.rs + jr);
                                    // A single tile per panel needs no packed copy.
                                    let dst = if mc > mr { bp } else { std::ptr::null_mut() };
                                    K::run_pack(nrows, kc, ap, src, bk.rs, dst, cdst, ldc, load_c, pf);
                                } else {
                                    K::run(nrows, kc, ap, bp, cdst, ldc, load_c, pf);
                                }
                                if !full {
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
            })
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
