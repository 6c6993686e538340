use super::*;

use crate::model::testing::symbols;

fn tiny() -> LstmConfig {
    LstmConfig::preset("tiny").unwrap()
}

#[test]
fn decoder_replay_is_bit_identical() {
    // Two layers so the inter-layer path is covered; odd sizes to catch stride bugs.
    let cfg = LstmConfig { layers: 2, hidden: 12, embed: 5, batch: 3, seg_len: 4, ..tiny() };
    let v = 11;
    let mut enc = Lstm::new(&cfg, v).unwrap();
    let mut dec = Lstm::new(&cfg, v).unwrap();
    let syms = symbols(1, 3 * 41, v);
    let (mut p1, mut p2) = (vec![0.0f32; 3 * v], vec![0.0f32; 3 * v]);
    for step in syms.chunks(3) {
        enc.predict(&mut p1);
        dec.predict(&mut p2);
        // A second predict without update must not change anything.
        dec.predict(&mut p2);
        let b1: Vec<u32> = p1.iter().map(|x| x.to_bits()).collect();
        let b2: Vec<u32> = p2.iter().map(|x| x.to_bits()).collect();
        assert_eq!(b1, b2);
        enc.update(step);
        dec.update(step);
    }
    assert_eq!(enc.opt.steps(), 10, "41 steps of seg_len 4 make 10 gradient steps");
    let w1: Vec<u32> = enc.params.iter().map(|x| x.to_bits()).collect();
    let w2: Vec<u32> = dec.params.iter().map(|x| x.to_bits()).collect();
    assert_eq!(w1, w2);
}

#[test]
fn seed_changes_the_model_and_rows_sum_to_one() {
    let cfg = tiny();
    let mut a = Lstm::new(&cfg, 20).unwrap();
    let mut b = Lstm::new(&LstmConfig { seed: 99, ..cfg.clone() }, 20).unwrap();
    let (mut pa, mut pb) = (vec![0.0; 4 * 20], vec![0.0; 4 * 20]);
    a.predict(&mut pa);
    b.predict(&mut pb);
    assert_ne!(pa, pb);
    for row in pa.chunks(20) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(row.iter().all(|&p| p > 0.0));
    }
}

#[test]
fn update_without_predict_matches_predict_then_update() {
    let cfg = tiny();
    let mut a = Lstm::new(&cfg, 9).unwrap();
    let mut b = Lstm::new(&cfg, 9).unwrap();
    let mut p = vec![0.0; 4 * 9];
    for step in symbols(5, 4 * 20, 9).chunks(4) {
        a.predict(&mut p);
        a.update(step);
        b.update(step);
    }
    assert_eq!(a.params, b.params);
}

#[test]
fn rejects_bad_vocab_and_huge_models() {
    assert!(Lstm::new(&tiny(), 1).is_err());
    assert!(Lstm::new(&tiny(), 70000).is_err());
    let huge = LstmConfig { layers: 16, hidden: 2048, batch: 1024, seg_len: 1024, ..tiny() };
    let err = Lstm::new(&huge, 65536).err().expect("must refuse");
    assert!(format!("{err}").contains("limit"), "{err}");
}

/// Saved recurrent state, to rerun one segment from the same start.
struct Snapshot {
    hcat0: Vec<f32>,
    c0: Vec<Vec<f32>>,
    pending: Vec<u16>,
}

fn snapshot(m: &Lstm) -> Snapshot {
    let n = m.cfg.batch * m.cfg.layers * m.cfg.hidden;
    Snapshot {
        hcat0: m.hcat[..n].to_vec(),
        c0: m.layers.iter().map(|l| l.c[..m.cfg.batch * m.cfg.hidden].to_vec()).collect(),
        pending: m.pending.clone(),
    }
}

/// Runs one full segment of forward steps from `snap` on `targets` (T×B), without
/// training, and returns the mean cross-entropy in nats (accumulated in f64).
fn segment_loss(m: &mut Lstm, snap: &Snapshot, targets: &[u16]) -> f64 {
    let b = m.cfg.batch;
    m.hcat[..snap.hcat0.len()].copy_from_slice(&snap.hcat0);
    for (buf, c0) in m.layers.iter_mut().zip(&snap.c0) {
        buf.c[..c0.len()].copy_from_slice(c0);
    }
    m.pending.copy_from_slice(&snap.pending);
    m.t = 0;
    let mut loss = 0.0f64;
    for t in 0..m.cfg.seg_len {
        m.forward_step();
        for s in 0..b {
            let y = targets[t * b + s];
            loss -= (m.probs[(t * b + s) * m.v + y as usize] as f64).ln();
            m.targets[t * b + s] = y;
            m.pending[s] = y;
        }
        m.t += 1;
        m.forwarded = false;
    }
    loss / (m.cfg.seg_len * b) as f64
}

/// Gradient check of the whole backward pass (embedding, gates, layer norms, both
/// layers, recurrence through h and c, output layer) against central finite differences.
#[test]
fn backward_matches_finite_differences() {
    let cfg = LstmConfig { layers: 2, hidden: 6, embed: 3, batch: 2, seg_len: 5, forget_bias: 0.5, ..tiny() };
    let v = 7;
    let mut m = Lstm::new(&cfg, v).unwrap();
    // Train one segment first so the carried state and the weights are not at their
    // initial values (gains ≠ 1 in particular).
    for step in symbols(3, 2 * 5, v).chunks(2) {
        m.update(step);
    }
    assert_eq!(m.t, 0);
    let snap = snapshot(&m);
    let targets = symbols(4, 2 * 5, v);
    segment_loss(&mut m, &snap, &targets);
    m.backward();
    let analytic = m.grads.clone();
    // backward() turned probs into dlogits; that is fine, segment_loss recomputes them.
    let eps = 5e-3f32;
    let mut worst = 0.0f64;
    let mut checked = 0;
    for i in 0..m.params.len() {
        let w = m.params[i];
        m.params[i] = w + eps;
        m.refresh_transposes();
        let lp = segment_loss(&mut m, &snap, &targets);
        m.params[i] = w - eps;
        let lm = segment_loss(&mut m, &snap, &targets);
        m.params[i] = w;
        // The perturbation actually applied, after f32 rounding.
        let h = ((w + eps) as f64) - ((w - eps) as f64);
        let numeric = (lp - lm) / h;
        let a = analytic[i] as f64;
        let err = (numeric - a).abs() / (numeric.abs().max(a.abs()) + 1e-3);
        worst = worst.max(err);
        assert!(err < 2e-2, "param {i}: analytic {a:.6e}, numeric {numeric:.6e}, relative error {err:.3e}");
        checked += 1;
    }
    m.refresh_transposes();
    assert_eq!(checked, m.num_params());
    eprintln!("gradient check: {checked} parameters, worst relative error {worst:.3e}");
}

#[test]
fn learns_a_repetitive_sequence() {
    let cfg = tiny();
    let v = 16;
    let pattern: [u16; 7] = [3, 1, 4, 1, 5, 9, 2];
    let mut m = Lstm::new(&cfg, v).unwrap();
    let b = cfg.batch;
    let mut p = vec![0.0f32; b * v];
    let steps = 600;
    let mut late_bits = 0.0f64;
    let mut late_n = 0;
    for t in 0..steps {
        m.predict(&mut p);
        // Each stream runs the pattern from its own phase.
        let syms: Vec<u16> = (0..b).map(|s| pattern[(t + 2 * s) % pattern.len()]).collect();
        if t >= steps - 100 {
            for (s, &y) in syms.iter().enumerate() {
                late_bits -= (p[s * v + y as usize] as f64).log2();
                late_n += 1;
            }
        }
        m.update(&syms);
    }
    let bits = late_bits / late_n as f64;
    assert!(bits < 0.5, "{bits} bits/symbol after {steps} steps; log2 V = 4");
}

/// Trains `cfg` on fixed symbols and returns the bits of its parameters.
fn trained_params(cfg: &LstmConfig, v: usize, steps: usize) -> Vec<u32> {
    let mut m = Lstm::new(cfg, v).unwrap();
    let mut p = vec![0.0f32; cfg.batch * v];
    for step in symbols(9, cfg.batch * steps, v).chunks(cfg.batch) {
        m.predict(&mut p);
        m.update(step);
    }
    m.params.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn sparse_output_backward_with_every_column_active_is_the_dense_one() {
    let cfg = LstmConfig { layers: 2, hidden: 10, ..tiny() };
    let v = 23;
    let dense = trained_params(&cfg, v, 40);
    // A threshold below every probability keeps every column: same chains, same bits.
    let all = LstmConfig { out_grad_min: f32::MIN_POSITIVE, ..cfg.clone() };
    assert_eq!(trained_params(&all, v, 40), dense);
    // A real threshold drops columns, so the weights differ.
    let some = LstmConfig { out_grad_min: 0.05, ..cfg };
    assert_ne!(trained_params(&some, v, 40), dense);
}

#[test]
fn sparse_output_backward_still_learns() {
    let cfg = LstmConfig { out_grad_min: 0.02, ..tiny() };
    let v = 64;
    let pattern: [u16; 5] = [10, 20, 30, 40, 50];
    let mut m = Lstm::new(&cfg, v).unwrap();
    let b = cfg.batch;
    let mut p = vec![0.0f32; b * v];
    let mut late_bits = 0.0f64;
    for t in 0..500 {
        m.predict(&mut p);
        let syms: Vec<u16> = (0..b).map(|s| pattern[(t + s) % pattern.len()]).collect();
        if t >= 400 {
            for (s, &y) in syms.iter().enumerate() {
                late_bits -= (p[s * v + y as usize] as f64).log2();
            }
        }
        m.update(&syms);
    }
    let bits = late_bits / (100 * b) as f64;
    assert!(bits < 0.5, "{bits} bits/symbol; log2 V = 6");
    // Most of the 64 columns were skipped.
    assert!(m.mean_active_columns() < 32.0, "{}", m.mean_active_columns());
}

/// After one gradient step from the same weights, the embedding has moved by `lr_emb`
/// times what it moves at the shared rate, and nothing else differs.
#[test]
fn embedding_moves_at_its_multiple() {
    let unit = LstmConfig { layers: 2, hidden: 12, embed: 5, batch: 3, seg_len: 4, ..tiny() };
    let scaled = LstmConfig { lr_emb: 4.0, ..unit.clone() };
    let v = 11;
    let (mut a, mut b) = (Lstm::new(&unit, v).unwrap(), Lstm::new(&scaled, v).unwrap());
    let w0 = a.params.clone();
    let mut p = vec![0.0f32; unit.batch * v];
    for step in symbols(5, unit.batch * unit.seg_len, v).chunks(unit.batch) {
        for m in [&mut a, &mut b] {
            m.predict(&mut p);
            m.update(step);
        }
    }
    let emb_end = a.emb + v * unit.embed;
    let mut moved = 0;
    for i in a.emb..emb_end {
        let (da, db) = (w0[i] - a.params[i], w0[i] - b.params[i]);
        assert!((db - 4.0 * da).abs() <= 4.0 * f32::EPSILON * w0[i].abs().max(1.0), "{i}: {da} {db}");
        moved += usize::from(da != 0.0);
    }
    assert!(moved > 0);
    let rest = |m: &Lstm| m.params[emb_end..].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(rest(&a), rest(&b));
}
