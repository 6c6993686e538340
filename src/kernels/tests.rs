//! Every fast path against the scalar reference, bit for bit (`to_bits`), on many
//! shapes and on special values. Paths this CPU cannot run are skipped with a note.
//!
//! The tests call the per-path functions directly, not through the process-wide
//! active path, so they can run in parallel.

use super::*;

/// The paths this CPU runs, to test against the reference; prints a note for each one
/// it skips. (`Scalar` runs the reference itself for element-wise functions, but the
/// portable blocked kernel for matrix products.)
fn fast_paths() -> Vec<Isa> {
    let mut out = Vec::new();
    for isa in Isa::ALL {
        if isa.is_supported() {
            out.push(isa);
        } else {
            eprintln!("note: skipping kernel path {}: this CPU cannot run it", isa.name());
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

fn check_gemm_variant(name: &str, fast: GemmOn, reference: GemmRef, shapes: &[(usize, usize, usize)]) {
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
                assert_same(&got, &want, &format!("{name} {} m={m} k={k} n={n} acc={accumulate}", isa.name()));
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
    // Past the block sizes: k > KC (256), m > MC (72/128), n over many panels.
    v.extend([(3, 300, 40), (9, 520, 17), (70, 20, 530), (80, 257, 97), (33, 600, 1000), (1, 1, 1100), (150, 260, 50)]);
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
                if r.is_multiple_of(3) {
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
                assert_same(&got, &want, &format!("gemm_nn specials {} {m}x{k}x{n}", isa.name()));
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
                assert_same(&got, &want, &format!("{name} {} len={len} start={start}", isa.name()));
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
fn ln_matches_scalar() {
    // Negative, zero and special inputs from the activation set, plus positives across
    // every binade, subnormals included, and both sides of √½.
    let mut x = activation_inputs();
    for e in 0..255u32 {
        for mant in [0, 1, 0x2a_aaab, 0x35_04f3, 0x35_04f4, 0x40_0000, 0x55_5555, 0x7f_ffff] {
            x.push(f32::from_bits(e << 23 | mant));
        }
    }
    for t in [std::f32::consts::FRAC_1_SQRT_2, 1.0, 0.5, 2.0] {
        let mut y = t;
        for _ in 0..6 {
            x.extend([y, f32::from_bits(t.to_bits() - (y.to_bits() - t.to_bits()))]);
            y = f32::from_bits(y.to_bits() + 1);
        }
    }
    for isa in fast_paths() {
        for len in (0..=40).chain([x.len()]) {
            let xs = &x[x.len() - len..];
            let mut want = vec![0.0; len];
            scalar::ln(&mut want, xs);
            let mut got = vec![1.0; len];
            ln_on(isa, &mut got, xs);
            assert_same(&got, &want, &format!("ln {} len={len}", isa.name()));
        }
    }
}

#[test]
fn axpy_matches_scalar() {
    let mut g = Gen(13);
    for isa in fast_paths() {
        for len in (0..40).chain([1000]) {
            let x = g.vec(len);
            let y0 = g.vec(len);
            for a in [0.0f32, -0.0, 1.0, -0.3, 1e30, f32::NAN] {
                let mut want = y0.clone();
                scalar::axpy(&mut want, a, &x);
                let mut got = y0.clone();
                axpy_on(isa, &mut got, a, &x);
                assert_same(&got, &want, &format!("axpy {} len={len} a={a}", isa.name()));
            }
        }
    }
}

#[test]
fn sum_and_softmax_match_scalar() {
    let mut g = Gen(5);
    for isa in fast_paths() {
        for len in (0..70).chain([255, 256, 257, 1000, 16384, 16385]) {
            let x: Vec<f32> = (0..len).map(|_| g.f32() * 10.0).collect();
            assert!(same(sum_on(isa, &x), scalar::sum(&x)), "sum {} len={len}", isa.name());
            let mut want = x.clone();
            scalar::softmax(&mut want);
            let mut got = x.clone();
            softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("softmax {} len={len}", isa.name()));
            let mut want = x.clone();
            scalar::log_softmax(&mut want);
            let mut got = x.clone();
            log_softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("log_softmax {} len={len}", isa.name()));
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
            assert!(same(sum_on(isa, &row), scalar::sum(&row)), "sum {} {row:?}", isa.name());
            let mut want = row.clone();
            scalar::softmax(&mut want);
            let mut got = row.clone();
            softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("softmax {} {row:?}", isa.name()));
            let mut want = row.clone();
            scalar::log_softmax(&mut want);
            let mut got = row.clone();
            log_softmax_on(isa, &mut got);
            assert_same(&got, &want, &format!("log_softmax {} {row:?}", isa.name()));
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
fn env_setting_is_checked() {
    assert_eq!(from_setting(None).unwrap(), Isa::best());
    assert_eq!(from_setting(Some("")).unwrap(), Isa::best());
    assert_eq!(from_setting(Some("scalar")).unwrap(), Isa::Scalar);
    for isa in Isa::ALL {
        let r = from_setting(Some(isa.name()));
        if isa.is_supported() {
            assert_eq!(r.unwrap(), isa);
        } else {
            let e = format!("{:#}", r.unwrap_err());
            assert!(e.contains("NNZ_KERNEL") && e.contains("lacks"), "{e}");
        }
    }
    for bad in ["AVX2", "sse2", "avx512 ", "neon"] {
        let e = format!("{:#}", from_setting(Some(bad)).unwrap_err());
        assert!(e.contains("NNZ_KERNEL") && e.contains("expected one of"), "{e}");
    }
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

/// A tiny LSTM language model trained online on a fixed text, computed with the
/// kernels of one path: returns an xxh64 hash of the bits of every probability it
/// predicts (and of its final output weights), and its total cross-entropy in bits.
/// Shapes are chosen to hit vector tails (37 cells, 53 inputs, 148 gate columns) and
/// the weight update makes later steps depend on earlier gemm_tn/axpy results.
fn tiny_model_hash(isa: Isa) -> (u64, f64) {
    const B: usize = 4; // streams
    const E: usize = 16; // embedding
    const H: usize = 37; // cells
    const V: usize = 256; // byte symbols
    const SEG: usize = 8; // steps per weight update
    const X: usize = E + H;
    let text: &[u8] = b"It was the best of times, it was the worst of times, it was the age of \
        wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
        incredulity, it was the season of Light, it was the season of Darkness, it was the \
        spring of hope, it was the winter of despair.";
    let t_len = text.len() / B;
    let sym = |s: usize, t: usize| text[s * t_len + t] as usize;
    let mut g = Gen(2024);
    let scaled = |g: &mut Gen, n: usize, s: f32| -> Vec<f32> { g.vec(n).iter().map(|v| v * s).collect() };
    let emb = scaled(&mut g, V * E, 0.5);
    let w = scaled(&mut g, X * 4 * H, 0.2);
    let mut bias = vec![0.0f32; 4 * H];
    bias[H..2 * H].fill(1.0); // forget gate
    let mut wout = scaled(&mut g, H * V, 0.2);
    let (mut h, mut c) = (vec![0.0f32; B * H], vec![0.0f32; B * H]);
    let mut hs = vec![0.0f32; SEG * B * H];
    let mut dlogits = vec![0.0f32; SEG * B * V];
    let mut dw = vec![0.0f32; H * V];
    let mut bits: Vec<u32> = Vec::new();
    let mut loss = 0.0f64;
    let (mut x, mut z) = (vec![0.0f32; B * X], vec![0.0f32; B * 4 * H]);
    let mut gates = vec![0.0f32; 4 * H];
    let mut logits = vec![0.0f32; B * V];
    let mut tmp = vec![0.0f32; H];
    for t in 0..t_len - 1 {
        for s in 0..B {
            x[s * X..s * X + E].copy_from_slice(&emb[sym(s, t) * E..][..E]);
            x[s * X + E..(s + 1) * X].copy_from_slice(&h[s * H..(s + 1) * H]);
            z[s * 4 * H..(s + 1) * 4 * H].copy_from_slice(&bias);
        }
        gemm_nn_on(isa, &mut z, &x, &w, B, X, 4 * H, true);
        for s in 0..B {
            let zs = &z[s * 4 * H..(s + 1) * 4 * H];
            sigmoid_on(isa, &mut gates[..2 * H], &zs[..2 * H]);
            tanh_on(isa, &mut gates[2 * H..3 * H], &zs[2 * H..3 * H]);
            sigmoid_on(isa, &mut gates[3 * H..], &zs[3 * H..]);
            for j in 0..H {
                let cs = &mut c[s * H + j];
                *cs = gates[H + j] * *cs + gates[j] * gates[2 * H + j];
            }
            tanh_on(isa, &mut tmp, &c[s * H..(s + 1) * H]);
            for j in 0..H {
                h[s * H + j] = gates[3 * H + j] * tmp[j];
            }
        }
        gemm_nn_on(isa, &mut logits, &h, &wout, B, H, V, false);
        let row = t % SEG;
        hs[row * B * H..(row + 1) * B * H].copy_from_slice(&h);
        for s in 0..B {
            let next = sym(s, t + 1);
            let mut p = logits[s * V..(s + 1) * V].to_vec();
            softmax_on(isa, &mut p);
            let mut lp = logits[s * V..(s + 1) * V].to_vec();
            log_softmax_on(isa, &mut lp);
            bits.extend(p.iter().map(|v| v.to_bits()));
            bits.push(lp[next].to_bits());
            loss -= lp[next] as f64 / std::f64::consts::LN_2;
            p[next] -= 1.0;
            dlogits[(row * B + s) * V..(row * B + s + 1) * V].copy_from_slice(&p);
        }
        if row == SEG - 1 {
            // dWout = Hsᵀ · dLogits over the segment, then a plain SGD step.
            gemm_tn_on(isa, &mut dw, &hs, &dlogits, H, SEG * B, V, false);
            axpy_on(isa, &mut wout, -0.05, &dw);
        }
    }
    bits.extend(wout.iter().map(|v| v.to_bits()));
    let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    (xxhash_rust::xxh64::xxh64(&bytes, 0), loss)
}

/// The golden hash of [`tiny_model_hash`]. It pins the kernels' bits across paths,
/// CPUs, compilers and later builds: if it changes, every `.nnz` file written before
/// no longer decodes. Provenance: `cargo test --release golden -- --nocapture`
/// prints the hash of every path (first computed on an AMD Zen 5 with all three).
const GOLDEN_TINY_MODEL: u64 = 0x22c6_2796_00e6_d49f;

#[test]
fn golden_tiny_model_is_identical_on_every_path() {
    for isa in Isa::ALL {
        if !isa.is_supported() {
            eprintln!("note: skipping kernel path {}: this CPU cannot run it", isa.name());
            continue;
        }
        let (hash, loss) = tiny_model_hash(isa);
        eprintln!("golden tiny model on {}: hash {hash:#018x}, {loss:.3} bits", isa.name());
        assert_eq!(hash, GOLDEN_TINY_MODEL, "path {} computed different bits", isa.name());
    }
}

/// xxh64 of the bits of exp, sigmoid, tanh, ln, softmax and log_softmax over the
/// activation test inputs, on one path.
fn elementwise_hash(isa: Isa) -> u64 {
    let x = activation_inputs();
    let mut bits: Vec<u32> = Vec::new();
    let mut y = vec![0.0f32; x.len()];
    for f in [exp_on, sigmoid_on, tanh_on, ln_on] {
        f(isa, &mut y, &x);
        bits.extend(y.iter().map(|v| v.to_bits()));
    }
    // Softmax rows of a few lengths from the finite inputs in [-50, 50].
    let finite: Vec<f32> = x.iter().copied().filter(|v| v.abs() <= 50.0).collect();
    for row in finite.chunks(777) {
        let mut p = row.to_vec();
        softmax_on(isa, &mut p);
        bits.extend(p.iter().map(|v| v.to_bits()));
        let mut p = row.to_vec();
        log_softmax_on(isa, &mut p);
        bits.extend(p.iter().map(|v| v.to_bits()));
    }
    // NaN payloads are not specified: hash every NaN as the canonical one.
    let canon = |b: u32| {
        if f32::from_bits(b).is_nan() {
            f32::NAN.to_bits()
        } else {
            b
        }
    };
    let bytes: Vec<u8> = bits.iter().flat_map(|&b| canon(b).to_le_bytes()).collect();
    xxhash_rust::xxh64::xxh64(&bytes, 0)
}

/// The golden hash of [`elementwise_hash`]; provenance as for [`GOLDEN_TINY_MODEL`].
const GOLDEN_ELEMENTWISE: u64 = 0x7f43_2380_571d_9fe1;

#[test]
fn golden_elementwise_is_identical_on_every_path() {
    for isa in Isa::ALL {
        if !isa.is_supported() {
            eprintln!("note: skipping kernel path {}: this CPU cannot run it", isa.name());
            continue;
        }
        let hash = elementwise_hash(isa);
        eprintln!("golden element-wise on {}: hash {hash:#018x}", isa.name());
        assert_eq!(hash, GOLDEN_ELEMENTWISE, "path {} computed different bits", isa.name());
    }
}

/// `NNZ_KERNEL` end to end: this test re-runs itself as a child process with the
/// variable set, and the child reports what [`select_from_env`] and [`active`] made of
/// it. (A child process, because the variable is read once per process.)
#[test]
fn nnz_kernel_env_selects_or_errors() {
    const CHILD: &str = "NNZ_KERNEL_TEST_CHILD";
    const NAME: &str = "kernels::tests::nnz_kernel_env_selects_or_errors";
    if std::env::var_os(CHILD).is_some() {
        match select_from_env() {
            Ok(isa) => println!("RESULT selected {} active {}", isa.name(), active().name()),
            Err(e) => println!("RESULT error {e:#}"),
        }
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let run = |value: Option<&str>| -> String {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([NAME, "--exact", "--nocapture", "--test-threads=1"]).env(CHILD, "1");
        match value {
            Some(v) => cmd.env(ENV_VAR, v),
            None => cmd.env_remove(ENV_VAR),
        };
        let out = cmd.output().expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // The harness may print "test <name> ... " on the same line first.
        let line = stdout.lines().find_map(|l| l.split_once("RESULT ")).map(|(_, r)| r);
        line.unwrap_or_default().to_string()
    };
    let best = Isa::best().name();
    assert_eq!(run(None), format!("selected {best} active {best}"));
    for isa in Isa::ALL {
        let got = run(Some(isa.name()));
        if isa.is_supported() {
            assert_eq!(got, format!("selected {0} active {0}", isa.name()));
        } else {
            assert!(got.starts_with("error") && got.contains("lacks"), "{}: {got}", isa.name());
        }
    }
    let got = run(Some("avx1024"));
    assert!(got.starts_with("error") && got.contains("expected one of"), "{got}");
}
