//! The scalar reference: the definition of every kernel's bits.
//!
//! Straightforward loops, written for clarity. Fast paths must agree with these to the
//! bit, and tests check that they do.

/// Lanes of the virtual vector that fixes the order of every reduction.
pub const LANES: usize = 16;

pub fn gemm_nn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c[i * n + j] } else { 0.0 };
            for p in 0..k {
                acc = a[i * k + p].mul_add(b[p * n + j], acc);
            }
            c[i * n + j] = acc;
        }
    }
}

pub fn gemm_tn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(a.len() >= k * m && b.len() >= k * n && c.len() >= m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c[i * n + j] } else { 0.0 };
            for p in 0..k {
                acc = a[p * m + i].mul_add(b[p * n + j], acc);
            }
            c[i * n + j] = acc;
        }
    }
}

pub fn gemm_nt(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c[i * n + j] } else { 0.0 };
            for p in 0..k {
                acc = a[i * k + p].mul_add(b[j * k + p], acc);
            }
            c[i * n + j] = acc;
        }
    }
}

pub fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// Folds 16 lane sums in the fixed tree order.
pub fn fold_lanes(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
        width /= 2;
    }
    lanes[0]
}

pub fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    for (i, &v) in x.iter().enumerate() {
        lanes[i % LANES] += v;
    }
    fold_lanes(lanes)
}

pub fn max(x: &[f32]) -> f32 {
    // max is exact and order-independent (NaN aside), so any order gives the same bits.
    x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

// exp(x) = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln2/2; e^r by a degree-6
// polynomial (Taylor coefficients, Horner with FMA). ln 2 is split in two so that
// r = x - n·ln2 is nearly exact.
pub(crate) const LOG2E: f32 = std::f32::consts::LOG2_E;
pub(crate) const LN2_HI: f32 = 0.693_145_75; // 0x3f317200: ln 2 rounded to 16 significant bits
pub(crate) const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 - LN2_HI
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: x + M - M rounds x to an integer
pub(crate) const EXP_MIN: f32 = -87.0;
pub(crate) const EXP_MAX: f32 = 88.0;
pub(crate) const EXP_POLY: [f32; 7] = [1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0];

#[inline]
pub fn exp1(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < EXP_MIN {
        return 0.0;
    }
    let x = if x > EXP_MAX { EXP_MAX } else { x };
    let n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = EXP_POLY[6];
    for &coef in EXP_POLY[..6].iter().rev() {
        p = p.mul_add(r, coef);
    }
    // n ∈ [-126, 127] here, so 2^n is a normal float built from its exponent bits.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[inline]
pub fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp1(-x))
}

#[inline]
pub fn tanh1(x: f32) -> f32 {
    2.0 / (1.0 + exp1(-2.0 * x)) - 1.0
}

// ln(x) = e·ln2 + ln(1 + f), with x = 2^e · (1 + f) and 1 + f in [√½, √2); ln(1 + f)
// = f - f²/2 + f³·P(f) with Cephes' degree-8 minimax P (logf.c), Horner with FMA, and
// ln 2 split in two (LN_C1 exact in 9 bits) so that e·ln2 adds no rounding error of
// its own. Subnormal inputs are scaled by 2^23 first.
pub(crate) const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
pub(crate) const LN_C1: f32 = 0.693_359_4; // 355/512
pub(crate) const LN_C2: f32 = -2.121_944_4e-4; // ln 2 - LN_C1
                                               // Cephes' decimal coefficients, kept verbatim for traceability; each rounds to the f32
                                               // that Cephes uses.
#[allow(clippy::excessive_precision)]
pub(crate) const LN_POLY: [f32; 9] = [
    7.037_683_629_2e-2,
    -1.151_461_031_0e-1,
    1.167_699_874_0e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];
pub(crate) const TWO_POW_23: f32 = 8_388_608.0;

/// Natural logarithm: NaN for NaN and x < 0, -∞ for ±0, +∞ for +∞.
#[inline]
pub fn ln1(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    let (x, bias) = if x < f32::MIN_POSITIVE { (x * TWO_POW_23, 126 + 23) } else { (x, 126) };
    let bits = x.to_bits();
    // x = 2^e · m with m in [0.5, 1).
    let mut e = (bits >> 23) as i32 - bias;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    // f = m' - 1 with m' in [√½, √2): both subtractions are exact.
    let f = if m < SQRT_HALF {
        e -= 1;
        (m + m) - 1.0
    } else {
        m - 1.0
    };
    let z = f * f;
    let mut p = LN_POLY[0];
    for &coef in &LN_POLY[1..] {
        p = p.mul_add(f, coef);
    }
    let y = (p * f) * z;
    let e = e as f32;
    let y = e.mul_add(LN_C2, y);
    let y = z.mul_add(-0.5, y);
    let r = f + y;
    e.mul_add(LN_C1, r)
}

pub fn ln(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = ln1(x);
    }
}

/// `y[i] = fma(a, x[i], y[i])`.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = a.mul_add(x, *y);
    }
}

/// In-place log-softmax of one row: `x[i] = (x[i] - max) - ln Σ exp(x[j] - max)`,
/// the sum in the fixed 16-lane order.
pub fn log_softmax(x: &mut [f32]) {
    let m = max(x);
    let mut lanes = [0.0f32; LANES];
    for (i, &v) in x.iter().enumerate() {
        lanes[i % LANES] += exp1(v - m);
    }
    let l = ln1(fold_lanes(lanes));
    for v in x.iter_mut() {
        *v = (*v - m) - l;
    }
}

pub fn exp(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = exp1(x);
    }
}

pub fn sigmoid(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = sigmoid1(x);
    }
}

pub fn tanh(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = tanh1(x);
    }
}

pub fn softmax(x: &mut [f32]) {
    let m = max(x);
    for v in x.iter_mut() {
        *v = exp1(*v - m);
    }
    let inv = 1.0 / sum(x);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp1(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn tanh_and_sigmoid_are_accurate() {
        let mut x = -20.0f32;
        while x < 20.0 {
            assert!((tanh1(x) as f64 - (x as f64).tanh()).abs() < 3e-7, "tanh({x})");
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid1(x) as f64 - s).abs() < 2e-7, "sigmoid({x})");
            x += 0.001;
        }
    }

    #[test]
    fn ln_is_accurate() {
        // Relative error on normal numbers, absolute near 1 (where ln → 0).
        let mut worst_rel = 0.0f64;
        let mut worst_abs = 0.0f64;
        let mut bits = f32::MIN_POSITIVE.to_bits() / 64; // subnormals too
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let got = ln1(x) as f64;
            let want = (x as f64).ln();
            let err = (got - want).abs();
            if want.abs() > 0.5 {
                worst_rel = worst_rel.max(err / want.abs());
            } else {
                worst_abs = worst_abs.max(err);
            }
            bits += 9973;
        }
        assert!(worst_rel < 1e-7, "worst relative error {worst_rel}");
        assert!(worst_abs < 3e-8, "worst absolute error {worst_abs}");
        eprintln!("ln: worst relative error {worst_rel:e} (|ln x| > 0.5), absolute {worst_abs:e}");
        assert_eq!(ln1(1.0), 0.0);
        assert_eq!(ln1(0.0), f32::NEG_INFINITY);
        assert_eq!(ln1(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln1(f32::INFINITY), f32::INFINITY);
        assert!(ln1(-1.0).is_nan() && ln1(f32::NAN).is_nan());
        assert!((ln1(1e-45) as f64 - (1e-45f32 as f64).ln()).abs() < 1e-5);
    }

    #[test]
    fn log_softmax_matches_ln_of_softmax() {
        let v: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        let mut p = v.clone();
        softmax(&mut p);
        let mut l = v.clone();
        log_softmax(&mut l);
        for (&p, &l) in p.iter().zip(&l) {
            assert!((ln1(p) - l).abs() < 2e-6, "{p} {l}");
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut v: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        softmax(&mut v);
        assert!((sum(&v) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn gemm_matches_definition() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 * 0.25).collect();
        let mut c = vec![0.0; m * n];
        gemm_nn(&mut c, &a, &b, m, k, n, false);
        let mut at = vec![0.0; m * k];
        transpose(&mut at, &a, m, k);
        let mut c2 = vec![0.0; m * n];
        gemm_tn(&mut c2, &at, &b, m, k, n, false);
        assert_eq!(c, c2);
        assert_eq!(c[0], (0..k).map(|p| a[p] * b[p * n]).sum::<f32>());
    }
}
