//! Every fast path against the scalar reference, bit for bit (`to_bits`), on many
//! shapes and on special values. Paths this CPU cannot run are skipped with a note.
//!
//! The tests call the per-path functions directly, not through the process-wide
//! active path, so they can run in parallel.

use super::*;

/// The fast paths this CPU runs; prints a note for each one it skips.
fn fast_paths() -> Vec<Isa> {
    let mut out = Vec::new();
    for isa in [Isa::Avx2, Isa::Avx512] {
        if isa.is_supported() {
            out.push(isa);
        } else {
            eprintln!(
                "note: skipping kernel path {}: this CPU cannot run it",
                isa.name()
            );
        }
    }
    out
}

/// Small deterministic generator (xorshift64*); values with varied magnitudes and
/// signs so that any change of operation order shows in the low bits.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn f32(&mut self) -> f32 {
        let r = self.next();
        let unit = (r >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
        let scale = [0.125f32, 0.5, 1.0, 1.0, 2.0, 8.0][(r & 7) as usize % 6];
        (unit * 2.0 - 1.0) * scale
    }

    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// Bit equality, except that any NaN equals any NaN: NaN payloads are not specified
/// (a NaN reaching the model means it has diverged; comparisons and `is_nan` do not
/// see payloads).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(g, w),
            "{what}: element {i}: got {g:e} ({:#010x}), want {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

const DIMS: [usize; 12] = [0, 1, 2, 5, 7, 8, 9, 16, 17, 31, 48, 49];

type GemmOn = fn(Isa, &mut [f32], &[f32], &[f32], usize, usize, usize, bool);
type GemmRef = fn(&mut [f32], &[f32], &[f32], usize, usize, usize, bool);

fn check_gemm_variant(
    name: &str,
    fast: GemmOn,
    reference: GemmRef,
    shapes: &[(usize, usize, usize)],
) {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for isa in fast_paths() {
        for &(m, k, n) in shapes {
            let a = g.vec(m * k);
            let b = g.vec(k * n);
            let c0 = g.vec(m * n);
            for accumulate in [false, true] {
                let mut want = c0.clone();
                reference(&mut want, &a, &b, m, k, n, accumulate);
                let mut got = c0.clone();
                fast(isa, &mut got, &a, &b, m, k, n, accumulate);
                assert_same(
                    &got,
                    &want,
                    &format!("{name} {} m={m} k={k} n={n} acc={accumulate}", isa.name()),
                );
            }
        }
    }
}

fn small_shapes() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for &m in &DIMS {
        for &k in &[0, 1, 3, 16, 33] {
            for &n in &DIMS {
                v.push((m, k, n));
            }
        }
    }
    // Past the block sizes: k > KC (256), n > NC (480/512), m > MC (64/72).
    v.extend([
        (3, 300, 40),
        (9, 520, 17),
        (70, 20, 530),
        (80, 257, 97),
        (33, 600, 1000),
        (1, 1, 1100),
    ]);
    v
}

#[test]
fn gemm_nn_matches_scalar() {
    check_gemm_variant("gemm_nn", gemm_nn_on, scalar::gemm_nn, &small_shapes());
}

#[test]
fn gemm_tn_matches_scalar() {
    check_gemm_variant("gemm_tn", gemm_tn_on, scalar::gemm_tn, &small_shapes());
}

#[test]
fn gemm_nt_matches_scalar() {
    check_gemm_variant("gemm_nt", gemm_nt_on, scalar::gemm_nt, &small_shapes());
}

#[test]
fn gemm_nt_equals_nn_with_transposed_b() {
    let mut g = Gen(7);
    let (m, k, n) = (13, 70, 37);
    let (a, bt) = (g.vec(m * k), g.vec(n * k));
    let mut b = vec![0.0; k * n];
    transpose(&mut b, &bt, n, k);
    for isa in Isa::supported() {
        let mut c1 = vec![0.0; m * n];
        let mut c2 = vec![0.0; m * n];
        gemm_nt_on(isa, &mut c1, &a, &bt, m, k, n, false);
        gemm_nn_on(isa, &mut c2, &a, &b, m, k, n, false);
        assert_same(&c1, &c2, isa.name());
    }
}

/// Values that stress IEEE corner cases: signed zeros, subnormals, huge products
/// that overflow, infinities and NaN.
fn specials() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE / 8.0,
        1e-45,
        3e38,
        -3e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0 + f32::EPSILON,
        0.1,
        -7.5,
        65504.0,
    ]
}

#[test]
fn gemm_special_values_match_scalar() {
    let sp = specials();
    let mut g = Gen(11);
    for isa in fast_paths() {
        for &(m, k, n) in &[(9, 5, 17), (8, 16, 48), (3, 40, 20)] {
            // Mostly specials, some ordinary values, at varied positions.
            let pick = |g: &mut Gen| {
                let r = g.next();
                if r % 3 == 0 {
                    g.f32()
                } else {
                    sp[(r >> 8) as usize % sp.len()]
                }
            };
            let a: Vec<f32> = (0..m * k).map(|_| pick(&mut g)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| pick(&mut g)).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| pick(&mut g)).collect();
            for accumulate in [false, true] {
                let mut want = c0.clone();
                scalar::gemm_nn(&mut want, &a, &b, m, k, n, accumulate);
                let mut got = c0.clone();
                gemm_nn_on(isa, &mut got, &a, &b, m, k, n, accumulate);
                assert_same(
                    &got,
                    &want,
                    &format!("gemm_nn specials {} {m}x{k}x{n}", isa.name()),
                );
            }
        }
        // Signed zero: -0·x chains must start from +0.0, as in the reference.
        let mut c = [1.0f32; 1];
        gemm_nn_on(isa, &mut c, &[-0.0], &[1.0], 1, 1, 1, false);
        assert_eq!(c[0].to_bits(), 0.0f32.to_bits(), "{}", isa.name());
        let mut c = [-0.0f32; 1];
        gemm_nn_on(isa, &mut c, &[-0.0], &[1.0], 1, 1, 1, true);
        assert_eq!(c[0].to_bits(), (-0.0f32).to_bits(), "{}", isa.name());
    }
}

/// Inputs for element-wise kernels: a dense sweep over the useful range, both sides
/// of every threshold, and the specials.
fn activation_inputs() -> Vec<f32> {
    let mut v = specials();
    let mut x = -100.0f32;
    while x < 100.0 {
        v.push(x);
        x += 0.0173;
    }
    for t in [-87.0f32, 88.0, 0.0, -43.5, 44.0] {
        let mut y = t;
        for _ in 0..8 {
            y = f32::from_bits(y.to_bits() + 1);
            v.push(y);
            v.push(-y);
        }
    }
    let mut g = Gen(3);
    v.extend((0..5000).map(|_| g.f32() * 12.0));
    v.extend((0..200).map(|i| f32::from_bits(0x3300_0000 + i * 0x0011_1111)));
    v
}

type MapOn = fn(Isa, &mut [f32], &[f32]);

fn check_map(name: &str, fast: MapOn, reference: fn(&mut [f32], &[f32])) {
    let x = activation_inputs();
    for isa in fast_paths() {
        // Every length up to 40 checks the tails, then the whole input.
        for len in (0..=40).chain([x.len()]) {
            for start in [0, 3] {
                let len = len.min(x.len() - start);
                let xs = &x[start..start + len];
                let mut want = vec![0.0; len];
                reference(&mut want, xs);
                let mut got = vec![1.0; len];
                fast(isa, &mut got, xs);
                assert_same(
                    &got,
                    &want,
                    &format!("{name} {} len={len} start={start}", isa.name()),
                );
            }
        }
    }
}

#[test]
fn exp_matches_scalar() {
    check_map("exp", exp_on, scalar::exp);
}

#[test]
fn sigmoid_matches_scalar() {
    check_map("sigmoid", sigmoid_on, scalar::sigmoid);
}

#[test]
fn tanh_matches_scalar() {
    check_map("tanh", tanh_on, scalar::tanh);
}

#[test]
fn sum_and_softmax_match_scalar() {
    let mut g = Gen(5);
    for isa in fast_paths() {
        for len in (0..70).chain([255, 256, 257, 1000, 16384, 16385]) {
            let x: Vec<f32> = (0..len).map(|_| g.f32() * 10.0).collect();
            assert!(
                same(sum_on(isa, &x), scalar::sum(&x)),
                "sum {} len={len}",
                isa.name()
            );
            let mut want = x.clone();
            scalar::softmax(&mut want);
            let mut got = x.clone();
            softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("softmax {} len={len}", isa.name()));
        }
        // Special rows: -inf entries, all equal, a NaN, +inf, huge spread.
        let rows: Vec<Vec<f32>> = vec![
            vec![f32::NEG_INFINITY, 0.0, 1.0, f32::NEG_INFINITY, -0.0],
            vec![3.0; 19],
            vec![1.0, f32::NAN, 2.0],
            vec![1.0, f32::INFINITY, 2.0],
            vec![f32::NEG_INFINITY; 17],
            (0..33).map(|i| i as f32 * 10.0 - 160.0).collect(),
            vec![-0.0, 0.0, -0.0],
        ];
        for row in rows {
            assert!(
                same(sum_on(isa, &row), scalar::sum(&row)),
                "sum {} {row:?}",
                isa.name()
            );
            let mut want = row.clone();
            scalar::softmax(&mut want);
            let mut got = row.clone();
            softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("softmax {} {row:?}", isa.name()));
        }
    }
}

#[test]
fn isa_names_round_trip_and_errors_are_clear() {
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()).unwrap(), isa);
    }
    let e = Isa::parse("sse9").unwrap_err().to_string();
    assert!(e.contains("NNZ_KERNEL") && e.contains("avx512"), "{e}");
    assert!(Isa::supported().contains(&Isa::Scalar));
    assert!(Isa::best().is_supported());
    for isa in Isa::ALL {
        assert_eq!(force(isa).is_ok(), isa.is_supported());
    }
    force(Isa::best()).unwrap();
    assert_eq!(active(), Isa::best());
}

#[test]
fn transpose_is_exact() {
    let mut g = Gen(9);
    for &(r, c) in &[(0, 5), (1, 1), (3, 70), (65, 33)] {
        let src = g.vec(r * c);
        let mut want = vec![0.0; r * c];
        scalar::transpose(&mut want, &src, r, c);
        let mut got = vec![0.0; r * c];
        transpose(&mut got, &src, r, c);
        assert_same(&got, &want, "transpose");
    }
}
