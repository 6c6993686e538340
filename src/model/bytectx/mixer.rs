//! The logistic mixing: stretch and squash, the weight-set selection of the six mixers,
//! and the evaluation of one node (contexts → mixers → final mixer → APMs).

use super::*;

/// The stretch of every 12-bit probability: `ln(p / (1 − p))` at the bucket's centre.
pub(super) fn stretch_table() -> Vec<f32> {
    (0..4096)
        .map(|i| {
            let p = (i as f32 + 0.5) / 4096.0;
            ln1(p) - ln1(1.0 - p)
        })
        .collect()
}

/// `sigmoid(x)` for x in [−16, 16] by linear interpolation in a table of our own
/// sigmoid (the exact function is 4× slower here, where it runs 765 times a byte).
pub(super) struct Squash {
    pub(super) table: Vec<f32>,
}

impl Squash {
    /// Table points per unit of x.
    const STEPS: f32 = 64.0;

    pub(super) fn new() -> Squash {
        Squash { table: (0..=2049).map(|i| sigmoid1((i as f32 - 1024.0) / Self::STEPS)).collect() }
    }

    #[inline]
    pub(super) fn get(&self, x: f32) -> f32 {
        let pos = ((x + 16.0) * Self::STEPS).clamp(0.0, 2048.0);
        let i = pos as usize; // pos ≥ 0: truncation is floor
        let frac = pos - i as f32;
        self.table[i] + (self.table[i + 1] - self.table[i]) * frac
    }
}

/// The dot product of two `N_IN`-vectors in a fixed order: 8 lanes, each summed in
/// order, then folded pairwise. Written out so that the compiler may vectorize it
/// without changing a single rounding.
#[inline]
pub(super) fn dot(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (wc, xc) in w.chunks_exact(8).zip(x.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += wc[l] * xc[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// The first-layer mixers of generation `generation`: 6, or 7 from generation 4.
pub(super) fn mixers_of(generation: u8) -> usize {
    if generation >= 4 {
        7
    } else {
        6
    }
}

/// An APM's output: its buckets `at` and `at + 1` interpolated, `frac` of the way.
#[inline]
pub(super) fn apm_read(table: &[f32], at: usize, frac: f32) -> f32 {
    table[at] * (1.0 - frac) + table[at + 1] * frac
}

/// An APM learns `y` (0 or 1) in the two buckets it read, each by its share of `frac`.
#[inline]
pub(super) fn apm_train(table: &mut [f32], at: usize, y: f32, frac: f32) {
    table[at] += (y - table[at]) * (APM_RATE * (1.0 - frac));
    table[at + 1] += (y - table[at + 1]) * (APM_RATE * frac);
}

impl ByteCtx {
    /// The mixed probability that the bit at node `k` is 1: gathers the inputs (the
    /// counters at local node `j` of `slots`, their maps, match, network, bias), runs
    /// the first-layer mixers and the final one, then the APM. Records what learning needs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn full_node(
        &self,
        k: usize,
        j: usize,
        slots: &[Option<usize>; N_CTX],
        metas: &[u64; N_CTX],
        env: &NodeEnv,
        sc: &mut Scratch,
    ) -> f32 {
        let x = &mut sc.inputs[k * N_IN..(k + 1) * N_IN];
        for (i, slot) in slots.iter().enumerate() {
            let c = slot.map_or(FRESH, |s| self.table[s][j]);
            let st = slot.map_or(0, |s| self.states[s][j]) as usize;
            let run = if self.cfg.generation >= 5 { run_state2(metas[i], k) } else { run_state(metas[i], k) };
            let at = i * MAP_SIZE + run * BH_STATES + st;
            sc.map_at[k * N_CTX + i] = at as u32;
            x[in_counter(i)] = self.stretch[(c >> (COUNT_BITS + 10)) as usize];
            x[in_map(i)] = self.stretch[(self.maps[at] >> (COUNT_BITS + 10)) as usize];
        }
        // Absent contexts (NO_CTX) say nothing, not even through their maps.
        for i in 0..N_CTX {
            if env.absent >> i & 1 != 0 {
                sc.map_at[k * N_CTX + i] = NO_MAP;
                x[in_counter(i)] = 0.0;
                x[in_map(i)] = 0.0;
            }
        }
        // The neural model: p(bit = 1 at node k) = mass(2k + 1) / mass(k).
        x[IN_NN] = if env.nn {
            let p = (env.nn_sums[2 * k + 1] / env.nn_sums[k].max(1e-30)).clamp(1e-6, 1.0 - 1e-6);
            x[IN_NN_LINEAR] = (p - 0.5) * NN_LINEAR;
            ln1(p) - ln1(1.0 - p)
        } else {
            x[IN_NN_LINEAR] = 0.0;
            0.0
        };
        let (_, bit) = Self::match_state(env.expected, env.len, k);
        x[IN_MATCH] = match bit {
            Some(1) => env.match_st,
            Some(_) => -env.match_st,
            None => 0.0,
        };
        x[IN_BIAS] = 0.25;
        let sets = Self::weight_sets(env, k);
        let mut logits = [0.0f32; N_MIXERS];
        for (m, &set) in sets.iter().enumerate().take(self.mixers()) {
            // A set never trained predicts with its parent's weights (and starts from
            // them when it learns).
            let src = match PARENT[m] {
                Some(pm) if self.set_updates[set] == 0 => sets[pm],
                _ => set,
            };
            let d = dot(&self.weights[src * N_IN..(src + 1) * N_IN], x).clamp(-15.0, 15.0);
            logits[m] = d;
            sc.mixers[k][m] = (set as u32, d, self.squash.get(d));
        }
        let v = self.final_weights[k + 256 * Self::match_state(env.expected, env.len, k).0];
        let d = (v[0] * logits[0] + v[1] * logits[1])
            + (v[2] * logits[2] + v[3] * logits[3])
            + (v[4] * logits[4] + v[5] * logits[5]);
        let d = if self.mixers() == 7 { d + v[6] * logits[6] } else { d }.clamp(-15.0, 15.0);
        let p = self.squash.get(d).clamp(P_MIN, 1.0 - P_MIN);
        sc.p_mix[k] = p;
        // APM: interpolate between the two buckets around `d`.
        let pos = ((d + 8.0) * 2.0).clamp(0.0, (APM_BUCKETS - 1) as f32 - 0.001);
        let lo = pos as usize; // pos ≥ 0: truncation is floor
        let frac = pos - lo as f32;
        let at = (env.c1 * 256 + k) * APM_BUCKETS + lo;
        let a = apm_read(&self.apm, at, frac);
        sc.apm_at[k] = (at as u32, frac);
        let at2 = (env.h2 * 256 + k) * APM_BUCKETS + lo;
        let a2 = apm_read(&self.apm2, at2, frac);
        sc.apm2_at[k] = at2 as u32;
        sc.full[k] = true;
        if self.cfg.generation == 1 {
            return ((p + 1.5 * a + 1.5 * a2) * 0.25).clamp(P_MIN, 1.0 - P_MIN);
        }
        // Generation 2: a third APM, by the match model's expected byte and length.
        let at3 = (env.h3 * 256 + k) * APM_BUCKETS + lo;
        let a3 = apm_read(&self.apm3, at3, frac);
        sc.apm3_at[k] = at3 as u32;
        if self.cfg.generation >= 5 {
            // Generation 5: a fourth APM, by whether the model mispredicted lately (the
            // last bit, one of the 7 before, one of the 8 before those; paq8px's
            // `misses3`), the match state and how many orders were seen, per depth.
            // The misses of this byte so far: the parent's, and whether the parent's
            // probability missed the bit that leads here (a parent is evaluated before
            // its children on either path).
            let dk = depth(k);
            sc.path_misses[k] = if k == 1 {
                0
            } else {
                let parent = k >> 1;
                sc.path_misses[parent] << 1 | ((sc.p_final[parent] >= 0.5) as u8 != (k & 1) as u8) as u8
            };
            let m = env.misses << dk | sc.path_misses[k] as u64;
            let m3 = (m & 1 != 0) as usize | ((m & 0xfe != 0) as usize) << 1 | ((m & 0xff00 != 0) as usize) << 2;
            let lb = if env.expected.is_some() { 1 + len_class(env.len) } else { 0 };
            let row = (m3 + 8 * lb + 32 * env.orders_seen) * 8 + dk;
            let at4 = row * APM_BUCKETS + lo;
            let a4 = apm_read(&self.apm4, at4, frac);
            sc.apm4_at[k] = at4 as u32;
            let r = ((p + a + a2 + a3 + a4) * 0.2).clamp(P_MIN, 1.0 - P_MIN);
            sc.p_final[k] = r;
            return r;
        }
        let r = ((p + a + a2 + a3) * 0.25).clamp(P_MIN, 1.0 - P_MIN);
        sc.p_final[k] = r;
        r
    }

    /// The first-layer mixers of this generation: 6, or 7 from generation 4.
    #[inline]
    pub(super) fn mixers(&self) -> usize {
        mixers_of(self.cfg.generation)
    }

    /// The weight sets of node `k`'s mixers (see [`ByteCtx::full_node`]).
    #[inline]
    pub(super) fn weight_sets(env: &NodeEnv, k: usize) -> [usize; N_MIXERS] {
        let (state, _) = Self::match_state(env.expected, env.len, k);
        let class1 = byte_class(env.c1 as u8);
        [
            env.set_base + k + 256 * (state + MATCH_STATES * env.orders_seen),
            env.second_base + env.c1 + 256 * byte_class(env.c2 as u8),
            env.second_base + 1024 + env.c2 + 256 * class1,
            env.second_base + 2048 + k + 256 * env.c1,
            env.second_base + 2048 + 65536 + depth(k) + 8 * (state + MATCH_STATES * env.orders_seen + 24 * class1),
            env.second_base + 2048 + 65536 + 768 + depth(k) + 8 * env.wsel,
            env.second_base + SHARED_SETS + depth(k) + 8 * env.sel7,
        ]
    }
}
