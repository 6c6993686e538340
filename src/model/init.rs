//! Seeded weight initialization: the only source of randomness of the models.
//!
//! Weights are drawn from `rand_chacha`'s ChaCha8 stream seeded with the 64-bit seed
//! stored in the container header, so the decoder rebuilds the exact same initial
//! model. Each draw takes one `u32`, keeps its top 24 bits (exactly representable in
//! an f32) and maps them to `[-scale, scale)` with one exact multiply and one rounded
//! fused multiply-add: the result depends on nothing but the seed and the call order.
//!
//! ```
//! use nnz::model::init::Init;
//! let mut a = Init::new(7);
//! let mut b = Init::new(7);
//! let (mut x, mut y) = ([0.0f32; 4], [0.0f32; 4]);
//! a.uniform(&mut x, 0.5);
//! b.uniform(&mut y, 0.5);
//! assert_eq!(x, y);
//! assert!(x.iter().all(|v| (-0.5..0.5).contains(v)));
//! ```

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A deterministic generator of initial weights.
pub struct Init {
    rng: ChaCha8Rng,
}

impl Init {
    /// A generator for `seed`; the same seed always yields the same sequence.
    pub fn new(seed: u64) -> Init {
        Init {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One value uniform in `[0, 1)`, a multiple of 2^-24.
    pub fn unit(&mut self) -> f32 {
        // 24 bits fit an f32 mantissa exactly; the multiply by a power of two is exact.
        (self.rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Fills `out` with values uniform in `[-scale, scale)`.
    pub fn uniform(&mut self, out: &mut [f32], scale: f32) {
        for v in out.iter_mut() {
            let u = self.unit();
            // 2u - 1 is exact (u has 24 bits); one rounding in the final product.
            *v = u.mul_add(2.0, -1.0) * scale;
        }
    }
}
