//! Why the format path keeps its own kernels: whether a matrix product gives the same
//! bits in the situations a decoder meets (another number of rows in the batch, another
//! number of threads, another instruction set), for candle-core 0.9's CPU `matmul` and
//! for `nnz::kernels`.
//!
//! ```text
//! cargo run --release --example candle_bits                        # this CPU, default threads
//! RAYON_NUM_THREADS=1 cargo run --release --example candle_bits    # candle on one thread
//! ```
//!
//! For each shape of the LSTM presets' products it prints: the share of output
//! elements whose bits differ between candle's product of all `m` rows and candle's
//! product of each row alone; between candle and our kernels; between our kernels'
//! paths (scalar, AVX2, AVX-512: every one this CPU runs, forced in turn); between our
//! batch and our rows alone; and an xxh64 of candle's and of our output bits, to compare
//! runs with other thread counts or other machines. A model whose coder reads
//! probabilities computed with a product that changes its bits with any of those can
//! decode a file into garbage on another machine: one flipped bit of one probability
//! changes the arithmetic coder's interval.

use candle_core::{Device, Tensor};
use nnz::kernels::{self, Isa};
use xxhash_rust::xxh64::xxh64;

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn candle(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let ta = Tensor::from_slice(a, (m, k), &Device::Cpu).unwrap();
    let tb = Tensor::from_slice(b, (k, n), &Device::Cpu).unwrap();
    ta.matmul(&tb).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn ours(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    kernels::gemm_nn(&mut c, a, b, m, k, n, false);
    c
}

/// A product `a (m×k) · b (k×n)`, row-major.
type Product = fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>;

/// Each row of `a` multiplied alone, the results stacked.
fn by_rows(f: Product, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    (0..m).flat_map(|i| f(&a[i * k..(i + 1) * k], b, 1, k, n)).collect()
}

/// Share of elements whose bits differ, in percent.
fn differ(x: &[f32], y: &[f32]) -> f64 {
    let d = x.iter().zip(y).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    100.0 * d as f64 / x.len() as f64
}

fn hash(x: &[f32]) -> u64 {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    xxh64(&bytes, 0)
}

fn main() {
    // (m, k, n): the `fast`, `default` and `large` LSTM steps' gate products (batch ×
    // input × 3H) and a token output layer (batch × L·H × V).
    let shapes = [(16, 288, 288), (16, 416, 576), (32, 736, 1408), (16, 576, 4096)];
    let best = kernels::active();
    println!("candle-core 0.9 CPU matmul against nnz::kernels; this CPU's paths: {:?}", Isa::supported());
    println!(
        "{:>16} | {:>14} | {:>13} | {:>13} | {:>13} | {:>16} | {:>16}",
        "m×k×n", "candle rows≠all", "candle≠nnz", "nnz paths≠", "nnz rows≠all", "candle xxh64", "nnz xxh64"
    );
    for (m, k, n) in shapes {
        let a = data(m * k, 1 + m as u32);
        let b = data(k * n, 7 + n as u32);
        let c_all = candle(&a, &b, m, k, n);
        let c_rows = by_rows(candle, &a, &b, m, k, n);
        let o_all = ours(&a, &b, m, k, n);
        let o_rows = by_rows(ours, &a, &b, m, k, n);
        let mut paths: f64 = 0.0;
        for isa in Isa::supported() {
            kernels::force(isa).unwrap();
            paths = paths.max(differ(&ours(&a, &b, m, k, n), &o_all));
        }
        kernels::force(best).unwrap();
        println!(
            "{:>16} | {:>13.1}% | {:>12.1}% | {:>12.1}% | {:>12.1}% | {:016x} | {:016x}",
            format!("{m}×{k}×{n}"),
            differ(&c_rows, &c_all),
            differ(&c_all, &o_all),
            paths,
            differ(&o_rows, &o_all),
            hash(&c_all),
            hash(&o_all)
        );
    }
}
