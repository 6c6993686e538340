//! What the tests that hold the hand-written networks against candle share (issue 19).
//!
//! The LSTM and the Transformer compute their forward and backward passes with
//! [`crate::kernels`], in `f32`, in a fixed order. Their tests
//! (`lstm/candle_reference.rs`, `transformer/candle_reference.rs`) write the same
//! networks a second time as candle tensor expressions in `f64`, from the model's
//! parameters, and let candle's autograd give the gradient: an implementation that
//! shares no code with ours (candle-core's CPU ops, candle-nn's softmax and
//! cross-entropy). The difference between the two is then our `f32` rounding, some
//! 1e-7 relative, far below what any wrong term of a gradient would give.
//!
//! candle is a dev-dependency only: the format path never runs it, because a file must
//! decode to the same bits on every CPU, and candle's CPU kernels pick their summation
//! order by instruction set (see the README, "Why nnz has its own kernels").

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var, D};
use std::ops::Range;

/// A trainable `f64` tensor holding `data` (the model's `f32` parameters, widened exactly).
pub fn var(data: &[f32], shape: &[usize]) -> Var {
    let wide: Vec<f64> = data.iter().map(|&x| x as f64).collect();
    Var::from_tensor(&Tensor::from_vec(wide, shape, &Device::Cpu).unwrap()).unwrap()
}

/// Symbol indices as candle's `u32` index tensor.
pub fn ids(symbols: impl IntoIterator<Item = u16>) -> Tensor {
    let v: Vec<u32> = symbols.into_iter().map(u32::from).collect();
    let n = v.len();
    Tensor::from_vec(v, n, &Device::Cpu).unwrap()
}

/// A constant `f64` tensor.
pub fn constant(data: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

/// A tensor's elements, row-major.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// Layer norm over the last dimension, without gain: `(z − μ) / √(σ² + eps)`.
pub fn layer_norm(z: &Tensor, eps: f64) -> Tensor {
    let zc = z.broadcast_sub(&z.mean_keepdim(D::Minus1).unwrap()).unwrap();
    let var = zc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    zc.broadcast_div(&var.affine(1.0, eps).unwrap().sqrt().unwrap()).unwrap()
}

/// RMS norm over the last dimension with gain `g`: `x / √(mean(x²) + eps) ⊙ g`.
pub fn rms_norm(x: &Tensor, g: &Tensor, eps: f64) -> Tensor {
    let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    x.broadcast_div(&ms.affine(1.0, eps).unwrap().sqrt().unwrap()).unwrap().broadcast_mul(g).unwrap()
}

/// `σ(x) = 1 / (1 + e^−x)` from elementary ops, so autograd sees through it.
pub fn sigmoid(x: &Tensor) -> Tensor {
    x.neg().unwrap().exp().unwrap().affine(1.0, 1.0).unwrap().recip().unwrap()
}

/// The largest absolute difference between `ours` and `reference`, and the largest
/// absolute value of `reference`.
pub fn max_diff(ours: &[f32], reference: &[f64]) -> (f64, f64) {
    assert_eq!(ours.len(), reference.len(), "the two sides hold different numbers of values");
    let diff = ours.iter().zip(reference).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
    let scale = reference.iter().map(|x| x.abs()).fold(0.0, f64::max);
    (diff, scale)
}

/// Asserts that a parameter group's gradient matches the reference within `rel_tol` of
/// the group's largest reference element, and that this element is not negligible (a
/// group whose gradient is all zero on both sides would prove nothing). Returns the
/// relative error, for the test's report.
fn assert_gradient(name: &str, ours: &[f32], reference: &[f64], rel_tol: f64) -> f64 {
    let (diff, scale) = max_diff(ours, reference);
    assert!(scale > 1e-4, "{name}: the reference gradient is negligible ({scale:.3e}); the check would prove nothing");
    let rel = diff / scale;
    assert!(
        rel <= rel_tol,
        "{name}: gradient differs from candle's by {diff:.3e} (largest element {scale:.3e}, relative {rel:.3e} > {rel_tol:.0e})"
    );
    rel
}

/// [`assert_gradient`] for every parameter group: `groups` names each group and its
/// range in the model's flat gradient `ours`, `vars` holds the reference's variable for
/// each, in the same order. Returns the worst relative error.
pub fn assert_gradients(
    label: &str,
    groups: &[(String, Range<usize>)],
    vars: &[&Var],
    grads: &GradStore,
    ours: &[f32],
    rel_tol: f64,
) -> f64 {
    assert_eq!(groups.len(), vars.len());
    let mut worst: f64 = 0.0;
    for ((name, range), x) in groups.iter().zip(vars) {
        let reference = values(grads.get(x).expect("every parameter is used"));
        worst = worst.max(assert_gradient(&format!("{label}, {name}"), &ours[range.clone()], &reference, rel_tol));
    }
    worst
}
