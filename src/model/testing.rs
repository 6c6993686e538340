//! What the models' unit tests share.

/// A fixed pseudo-random symbol source (an LCG), so tests need no RNG crate.
pub fn symbols(seed: u64, n: usize, v: usize) -> Vec<u16> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % v as u64) as u16
        })
        .collect()
}

/// Runs `steps` of a sequence whose step `t` codes `syms[t·B..(t+1)·B]` through the real
/// coding path (`predict`, then `update`) and returns every step's probabilities, `B × V`
/// each, one after the other.
pub fn run_steps(m: &mut dyn super::Predictor, syms: &[u16], steps: std::ops::Range<usize>) -> Vec<f32> {
    let (b, v) = (m.batch(), m.vocab_size());
    let mut all = Vec::with_capacity(steps.len() * b * v);
    let mut p = vec![0.0f32; b * v];
    for t in steps {
        m.predict(&mut p);
        all.extend_from_slice(&p);
        m.update(&syms[t * b..(t + 1) * b]);
    }
    all
}
