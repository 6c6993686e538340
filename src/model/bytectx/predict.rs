//! Prediction: the per-byte environment of each stream, the 256-way distribution
//! ([`ByteCtx::predict_with`], the slow reference and the format of versions 3 and 4),
//! and the bit path ([`BitPredictor`]: the 8 nodes of the coded byte's path).

use super::*;

/// Byte probabilities from node probabilities: the mass of each node is split between
/// its children, from the root down (what [`ByteCtx::predict_with`] does as it goes).
#[cfg(test)]
pub(super) fn leaf_probs(node_p: &[f32; 256], out: &mut [f32]) {
    let mut mass = [0.0f32; 512];
    mass[1] = 1.0;
    for k in 1..256 {
        let right = mass[k] * node_p[k];
        mass[2 * k + 1] = right;
        mass[2 * k] = mass[k] - right;
    }
    out.copy_from_slice(&mass[256..]);
}

/// Slow reference of [`leaf_probs`]: each byte's probability as the product of its path.
#[cfg(test)]
pub(super) fn leaf_probs_reference(node_p: &[f32; 256], c: u8) -> f64 {
    let mut k = 1usize;
    let mut p = 1.0f64;
    for d in 0..8 {
        let bit = ((c >> (7 - d)) & 1) as usize;
        let q = node_p[k] as f64;
        p *= if bit == 1 { q } else { 1.0 - q };
        k = 2 * k + bit;
    }
    p
}

/// The bit path (versions 5 and 6): the nodes of the byte's path evaluated one at a
/// time, each as [`ByteCtx::predict_with`] evaluates it in the whole tree (same slots,
/// same inputs, same mixers), and learning at the end of the step as
/// [`Predictor::update`] does. So the probability of a byte is the product of the same
/// 8 node probabilities whichever path codes it; this one computes 8 nodes where the
/// tree computes up to 255.
impl BitPredictor for ByteCtx {
    fn p1(&mut self, b: usize) -> f32 {
        let k = self.path[b].k;
        let mut ps = std::mem::take(&mut self.path);
        let path = &mut ps[b];
        if k == 1 {
            path.coded = true;
            let nn = if self.nn.is_empty() { None } else { Some(&self.nn[..]) };
            self.byte_env(b, nn, &mut path.env, &mut path.first, &mut path.metas);
        } else if k < 32 && k >= 16 {
            let ctx = &self.streams[b].ctx;
            // The contexts that have not seen this first nibble get their second slot
            // at the end of the step: fetch its bucket now (a hint; the first 300 kB of book1,
            // `fast`: 2.59 → 2.48 s user time, mean of 3).
            for i in 0..N_CTX {
                if path.metas[i] >> (k - 16) & 1 == 0 && ctx[i] != NO_CTX {
                    self.prefetch_slot(hash2(ctx[i], (k - 16) as u64 + 1));
                }
            }
            path.second = self.second_slots(ctx, &path.metas, k - 16);
        }
        let mut sc = std::mem::take(&mut self.streams[b].scratch);
        let p = if k < 16 {
            self.full_node(k, k, &path.first, &path.metas, &path.env, &mut sc)
        } else {
            // Node k at depth 4 + d of the tree is node j at depth d of its nibble's.
            let d = depth(k) - 4;
            let j = (1 << d) | (k & ((1 << d) - 1));
            self.full_node(k, j, &path.second, &path.metas, &path.env, &mut sc)
        };
        self.streams[b].scratch = sc;
        // The next node is one of two: fetch both's mixer weights and APM rows while the
        // bit is coded and the next node gathers its inputs (a hint; the first 300 kB of
        // book1, `fast`: 2.49 → 2.29 s user time, mean of 3).
        if k < 128 {
            self.prefetch_node(&ps[b].env, 2 * k);
            self.prefetch_node(&ps[b].env, 2 * k + 1);
        }
        self.path = ps;
        p
    }

    fn update_bit(&mut self, b: usize, bit: u32) {
        let k = 2 * self.path[b].k + bit as usize;
        self.path[b].k = if k >= 256 { 1 } else { k };
    }

    fn end_step(&mut self, symbols: &[u16]) {
        // A stream that has ended was not asked: nothing to learn, no byte to move past.
        for (b, &s) in symbols.iter().enumerate() {
            if std::mem::take(&mut self.path[b].coded) {
                self.learn(b, s as u8);
                self.advance(b, s as u8);
            }
        }
    }
}

impl Predictor for ByteCtx {
    fn vocab_size(&self) -> usize {
        256
    }

    fn batch(&self) -> usize {
        self.streams.len()
    }

    fn predict(&mut self, probs: &mut [f32]) {
        self.predict_with(None, probs);
    }

    fn update(&mut self, symbols: &[u16]) {
        for (b, &s) in symbols.iter().enumerate() {
            // The engine pads ended streams with 0; learning it is harmless and keeps
            // every stream in lock step.
            let c = s as u8;
            self.learn(b, c);
            self.advance(b, c);
        }
    }

    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        if self.cfg.bits {
            Some(self)
        } else {
            None
        }
    }
}

impl ByteCtx {
    /// Asks the CPU to fetch node `k`'s APM rows and mixer weights ahead of use: they
    /// are scattered over megabytes, and waiting for them was a fifth of the time of
    /// [`ByteCtx::full_node`] (book1, `fast`: 17% less time with this hint). A hint
    /// only: it changes no result.
    #[inline]
    pub(super) fn prefetch_node(&self, env: &NodeEnv, k: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let fetch = |v: &[f32]| {
                for at in (0..v.len()).step_by(16) {
                    // SAFETY: prefetching has no effect on memory; the address is in bounds.
                    unsafe { _mm_prefetch(v[at..].as_ptr() as *const i8, _MM_HINT_T0) };
                }
            };
            for (table, row) in
                [(&self.apm, env.c1 * 256 + k), (&self.apm2, env.h2 * 256 + k), (&self.apm3, env.h3 * 256 + k)]
            {
                if !table.is_empty() {
                    fetch(&table[row * APM_BUCKETS..(row + 1) * APM_BUCKETS]);
                }
            }
            for set in Self::weight_sets(env, k).into_iter().take(self.mixers()) {
                fetch(&self.weights[set * N_IN..(set + 1) * N_IN]);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (env, k);
    }

    /// Like [`Predictor::predict`], with the `B × 256` distribution of a neural model as
    /// one more input of the mixer.
    ///
    /// The tree is evaluated from the root down, and a node that the byte reaches with
    /// probability under `2^−prune` gets a cheap estimate (a context-free counter of
    /// that node) instead of the full mixture: on predictable data most of the 255 nodes
    /// are such, and what they would add is bounded by their tiny mass.
    pub fn predict_with(&mut self, nn: Option<&[f32]>, probs: &mut [f32]) {
        assert_eq!(probs.len(), self.streams.len() * 256);
        let prune = if self.cfg.prune == 0 { 0.0 } else { 1.0 / (1u64 << self.cfg.prune) as f32 };
        let mut env = self.new_env();
        for b in 0..self.streams.len() {
            let mut sc = std::mem::take(&mut self.streams[b].scratch);
            let ctx = self.streams[b].ctx;
            let mut first = [None; N_CTX];
            let mut metas = [0u64; N_CTX];
            self.byte_env(b, nn, &mut env, &mut first, &mut metas);
            let mut mass = [0.0f32; 512];
            mass[1] = 1.0;
            let split = |mass: &mut [f32; 512], k: usize, p: f32| {
                let right = mass[k] * p;
                mass[2 * k + 1] = right;
                mass[2 * k] = mass[k] - right;
            };
            for k in 1..16 {
                self.prefetch_node(&env, k);
            }
            for k in 1..16 {
                let p = self.full_node(k, k, &first, &metas, &env, &mut sc);
                split(&mut mass, k, p);
            }
            for hi in 0..16 {
                let mut second = [None; N_CTX];
                if mass[16 + hi] >= prune {
                    for j in 1..16 {
                        self.prefetch_node(&env, second_nibble_node(hi, j));
                    }
                    second = self.second_slots(&ctx, &metas, hi);
                }
                for j in 1..16 {
                    let k = second_nibble_node(hi, j);
                    let p = if mass[k] >= prune {
                        self.full_node(k, j, &second, &metas, &env, &mut sc)
                    } else {
                        sc.full[k] = false;
                        let c = self.node_counters[k];
                        let p = ((c >> COUNT_BITS) as f32 * (1.0 / (1u32 << 22) as f32)).clamp(P_MIN, 1.0 - P_MIN);
                        sc.p_final[k] = p;
                        p
                    };
                    split(&mut mass, k, p);
                }
            }
            probs[b * 256..(b + 1) * 256].copy_from_slice(&mass[256..]);
            self.streams[b].scratch = sc;
        }
    }

    /// A [`NodeEnv`] to be filled by [`ByteCtx::byte_env`].
    pub(super) fn new_env(&self) -> NodeEnv {
        NodeEnv {
            nn: false,
            nn_sums: [0.0; 512],
            expected: None,
            len: 0,
            match_st: 0.0,
            orders_seen: 0,
            c1: 0,
            h2: 0,
            h3: 0,
            c2: 0,
            wsel: 0,
            sel7: 0,
            absent: 0,
            misses: 0,
            set_base: 0,
            second_base: self.streams.len() * FIRST_SETS,
        }
    }

    /// What every node of stream `b`'s next byte shares: fills `env`, and the
    /// first-nibble slots of the contexts (`first`, None where absent or unseen) with
    /// their meta words.
    pub(super) fn byte_env(
        &self,
        b: usize,
        nn: Option<&[f32]>,
        env: &mut NodeEnv,
        first: &mut [Option<usize>; N_CTX],
        metas: &mut [u64; N_CTX],
    ) {
        let s = &self.streams[b];
        let ctx = s.ctx;
        env.nn = nn.is_some();
        env.expected = s.expected;
        env.len = s.match_len;
        env.match_st = self.stretch[(self.match_counters[s.match_len.min(MATCH_MAX)] >> (COUNT_BITS + 10)) as usize];
        env.c1 = (s.c8 & 0xff) as usize;
        env.c2 = ((s.c8 >> 8) & 0xff) as usize;
        env.wsel = s.word_len.min(7) as usize * 4 + byte_class(env.c1 as u8);
        env.sel7 = ((s.c8 >> 16) & 0xff) as usize + 256 * byte_class(env.c1 as u8);
        env.h2 = (hash2(40, s.c8 & 0xffff) >> (64 - APM2_BITS)) as usize;
        env.h3 = match s.expected {
            Some(e) => 256 + e as usize + 256 * len_class(s.match_len),
            None => env.c1,
        };
        env.set_base = b * FIRST_SETS;
        env.misses = s.misses;
        env.orders_seen = 0;
        env.absent = (0..N_CTX).filter(|&i| ctx[i] == NO_CTX).fold(0, |m, i| m | 1u64 << i);
        for &h in ctx.iter().filter(|&&h| h != NO_CTX) {
            self.prefetch_slot(h);
        }
        for i in 0..N_CTX {
            first[i] = if ctx[i] == NO_CTX { None } else { self.find(ctx[i]) };
            metas[i] = first[i].map_or(0, |s| self.meta[s]);
            if metas[i] != 0 && (1..=5).contains(&i) {
                env.orders_seen += 1;
            }
        }
        if let Some(nn) = nn {
            env.nn_sums[256..].copy_from_slice(&nn[b * 256..(b + 1) * 256]);
            for k in (1..256).rev() {
                env.nn_sums[k] = env.nn_sums[2 * k] + env.nn_sums[2 * k + 1];
            }
        }
    }
}
