use super::*;
use crate::kernels::Isa;

pub(super) use crate::model::testing::symbols;

fn tiny() -> TransformerConfig {
    TransformerConfig::preset("tiny").unwrap()
}

/// Two layers, three heads, group 2, odd sizes: covers every path with stride bugs in sight.
pub(super) fn small() -> TransformerConfig {
    TransformerConfig {
        layers: 2,
        d_model: 12,
        heads: 3,
        d_ff: 10,
        group: 2,
        batch: 3,
        seg_len: 4,
        mem_segs: 2,
        retrain_every: 0,
        retrain_len: 0,
        ..tiny()
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn decoder_replay_is_bit_identical() {
    let cfg = TransformerConfig { retrain_every: 8, retrain_len: 12, ..small() };
    let v = 11;
    let b = cfg.batch;
    let mut enc = Transformer::new(&cfg, v).unwrap();
    let mut dec = Transformer::new(&cfg, v).unwrap();
    let (mut p1, mut p2) = (vec![0.0f32; b * v], vec![0.0f32; b * v]);
    for step in symbols(1, b * 41, v).chunks(b) {
        enc.predict(&mut p1);
        dec.predict(&mut p2);
        dec.predict(&mut p2);
        assert_eq!(bits(&p1), bits(&p2));
        enc.update(step);
        dec.update(step);
    }
    // 10 coding steps, and retraining at steps 16, 24, 32, 40 (3 segments each).
    assert_eq!(enc.opt.steps(), 10 + 4 * 3);
    assert_eq!(enc.st.retrain_steps, 12);
    assert_eq!(bits(&enc.params), bits(&dec.params));
}

#[test]
fn update_without_predict_matches_predict_then_update() {
    let cfg = tiny();
    let mut a = Transformer::new(&cfg, 9).unwrap();
    let mut b = Transformer::new(&cfg, 9).unwrap();
    let mut p = vec![0.0; 2 * 9];
    for step in symbols(5, 2 * 40, 9).chunks(2) {
        a.predict(&mut p);
        a.update(step);
        b.update(step);
    }
    assert_eq!(bits(&a.params), bits(&b.params));
}

#[test]
fn seed_changes_the_model_and_rows_sum_to_one() {
    let cfg = tiny();
    let mut a = Transformer::new(&cfg, 20).unwrap();
    let mut b = Transformer::new(&TransformerConfig { seed: 99, ..cfg.clone() }, 20).unwrap();
    let (mut pa, mut pb) = (vec![0.0; 2 * 20], vec![0.0; 2 * 20]);
    a.predict(&mut pa);
    b.predict(&mut pb);
    assert_ne!(pa, pb);
    for row in pa.chunks(20) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(row.iter().all(|&p| p > 0.0));
    }
}

#[test]
fn rejects_bad_vocab_and_huge_models() {
    assert!(Transformer::new(&tiny(), 1).is_err());
    assert!(Transformer::new(&tiny(), 70000).is_err());
    let huge = TransformerConfig {
        layers: 32,
        d_model: 4096,
        heads: 64,
        d_ff: 16384,
        batch: 1024,
        seg_len: 1024,
        retrain_every: 0,
        retrain_len: 0,
        ..tiny()
    };
    let err = Transformer::new(&huge, 65536).err().expect("must refuse");
    assert!(format!("{err}").contains("limit"), "{err}");
}

/// Runs `m` (at a segment start) through `steps` coding steps of `syms`.
fn feed(m: &mut Transformer, syms: &[u16]) {
    let b = m.cfg.batch;
    let mut p = vec![0.0f32; b * m.v];
    for step in syms.chunks(b) {
        m.predict(&mut p);
        m.update(step);
    }
}

/// The incremental forward (one step at a time, as coding runs it) and the batched
/// forward over the whole segment (as retraining runs it) give the same bits.
#[test]
fn incremental_forward_is_the_segment_forward() {
    let cfg = small();
    let (v, b, t_len) = (13, cfg.batch, cfg.seg_len);
    let mut a = Transformer::new(&cfg, v).unwrap();
    let mut c = Transformer::new(&cfg, v).unwrap();
    // Two segments first, so that the memory is full and the weights trained.
    let warm = symbols(2, b * 2 * t_len, v);
    feed(&mut a, &warm);
    feed(&mut c, &warm);
    // Segment 3: step by step in `a`, stopping before the last update (which would train).
    let seg = symbols(3, b * t_len, v);
    let mut p = vec![0.0f32; b * v];
    for (t, step) in seg.chunks(b).enumerate() {
        a.predict(&mut p);
        if t + 1 < t_len {
            a.update(step);
        }
    }
    // The same inputs, all at once, in `c`.
    c.st.inputs.copy_from_slice(&a.st.inputs);
    c.forward_rows(0, t_len);
    assert_eq!(bits(&a.probs), bits(&c.probs));
    for (la, lc) in a.acts.iter().zip(&c.acts) {
        assert_eq!(bits(&la.p), bits(&lc.p));
        assert_eq!(bits(&la.kt), bits(&lc.kt));
        assert_eq!(bits(&la.g), bits(&lc.g));
    }
    assert_eq!(bits(&a.x[cfg.layers]), bits(&c.x[cfg.layers]));
}

/// Mean cross-entropy (nats, in f64) of the segment whose inputs and targets are set,
/// from the current memory.
fn segment_loss(m: &mut Transformer) -> f64 {
    let t_len = m.cfg.seg_len;
    m.forward_rows(0, t_len);
    let v = m.v;
    let loss: f64 = m.st.targets.iter().enumerate().map(|(r, &y)| -(m.probs[r * v + y as usize] as f64).ln()).sum();
    loss / m.st.targets.len() as f64
}

/// Gradient check of the whole backward pass (embeddings with grouping, RMSNorms,
/// attention with memory and relative bias, GELU feed-forward, output layer) against
/// central finite differences.
#[test]
fn backward_matches_finite_differences() {
    let cfg = small();
    let (v, b, t_len) = (7, cfg.batch, cfg.seg_len);
    let mut m = Transformer::new(&cfg, v).unwrap();
    // Train a few segments first: memory full, gains and biases away from their init.
    feed(&mut m, &symbols(3, b * 3 * t_len, v));
    assert_eq!((m.st.t, m.mem_valid), (0, 2 * t_len));
    // Inputs of the segment under test: groups of 2 symbols, and targets.
    let ins = symbols(4, b * t_len * cfg.group, v);
    m.st.inputs.copy_from_slice(&ins);
    m.st.targets.copy_from_slice(&symbols(5, b * t_len, v));
    segment_loss(&mut m);
    m.backward();
    let analytic = m.grads.clone();
    let eps = 5e-3f32;
    let mut worst = 0.0f64;
    for (i, &ga) in analytic.iter().enumerate() {
        let w = m.params[i];
        m.params[i] = w + eps;
        let lp = segment_loss(&mut m);
        m.params[i] = w - eps;
        let lm = segment_loss(&mut m);
        m.params[i] = w;
        let h = ((w + eps) as f64) - ((w - eps) as f64);
        let numeric = (lp - lm) / h;
        let a = ga as f64;
        let err = (numeric - a).abs() / (numeric.abs().max(a.abs()) + 1e-3);
        worst = worst.max(err);
        assert!(err < 2e-2, "param {i}: analytic {a:.6e}, numeric {numeric:.6e}, relative error {err:.3e}");
    }
    // The check must not be vacuous: the relative bias, the memory's part included, got gradient.
    let rel = m.lp[0].rel;
    assert!(analytic[rel..rel + cfg.heads * m.n].iter().filter(|g| g.abs() > 1e-6).count() > m.n);
    eprintln!("gradient check: {} parameters, worst relative error {worst:.3e}", m.params.len());
}

#[test]
fn learns_a_repetitive_sequence() {
    let cfg = TransformerConfig { lr: 1e-2, ..tiny() };
    let v = 16;
    let pattern: [u16; 7] = [3, 1, 4, 1, 5, 9, 2];
    let mut m = Transformer::new(&cfg, v).unwrap();
    let b = cfg.batch;
    let mut p = vec![0.0f32; b * v];
    let steps = 600;
    let mut late_bits = 0.0f64;
    for t in 0..steps {
        m.predict(&mut p);
        let syms: Vec<u16> = (0..b).map(|s| pattern[(t + 2 * s) % pattern.len()]).collect();
        if t >= steps - 100 {
            for (s, &y) in syms.iter().enumerate() {
                late_bits -= (p[s * v + y as usize] as f64).log2();
            }
        }
        m.update(&syms);
    }
    let bits = late_bits / (100 * b) as f64;
    assert!(bits < 0.5, "{bits} bits/symbol after {steps} steps; log2 V = 4");
}

/// The tiny preset (retraining on) trained online over a fixed text: xxh64 of the bits
/// of every probability, computed on every kernel path.
fn tiny_hash() -> (u64, f64) {
    let text: &[u8] = b"It was the best of times, it was the worst of times, it was the age of \
        wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
        incredulity, it was the season of Light, it was the season of Darkness.";
    let cfg = tiny();
    let (v, b) = (256, cfg.batch);
    let len = text.len() / b;
    let mut m = Transformer::new(&cfg, v).unwrap();
    let mut p = vec![0.0f32; b * v];
    let mut out: Vec<u8> = Vec::new();
    let mut loss = 0.0f64;
    for t in 0..len {
        m.predict(&mut p);
        let step: Vec<u16> = (0..b).map(|s| text[s * len + t] as u16).collect();
        for (s, &y) in step.iter().enumerate() {
            loss -= (p[s * v + y as usize] as f64).log2();
        }
        out.extend(p.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        m.update(&step);
    }
    assert!(m.st.retrain_steps > 0);
    (xxhash_rust::xxh64::xxh64(&out, 0), loss / (len * b) as f64)
}

/// Golden hash of [`tiny_hash`]: a change in the model's numerics changes it (and makes
/// earlier transformer files undecodable). Provenance:
/// `cargo test --release transformer::tests::golden -- --nocapture` prints it.
const GOLDEN_TINY: u64 = 0xffb3_d96a_7465_38f1;

#[test]
fn golden_tiny_probabilities_on_every_kernel_path() {
    let mut hashes = Vec::new();
    for isa in Isa::ALL {
        if !isa.is_supported() {
            eprintln!("note: skipping kernel path {}: this CPU cannot run it", isa.name());
            continue;
        }
        kernels::force(isa).unwrap();
        let (hash, loss) = tiny_hash();
        eprintln!("tiny transformer on {}: hash {hash:#018x}, {loss:.4} bits/symbol", isa.name());
        hashes.push((isa.name(), hash));
    }
    kernels::force(Isa::best()).unwrap();
    for (name, hash) in hashes {
        assert_eq!(hash, GOLDEN_TINY, "path {name} computed different bits");
    }
}

/// The byte model's preset (group 4, vocabulary 256) builds, predicts and trains, and
/// its four embedding slots see the last four bytes.
#[test]
fn bytes_preset_runs_with_group_four() {
    let cfg = TransformerConfig { batch: 2, seg_len: 4, ..TransformerConfig::preset("bytes").unwrap() };
    assert_eq!(cfg.group, 4);
    let mut m = Transformer::new(&cfg, 256).unwrap();
    feed(&mut m, b"abcdefghijklmnop".iter().map(|&x| x as u16).collect::<Vec<_>>().as_slice());
    // 8 steps of 2 streams (step t codes bytes 2t and 2t+1): stream 0 saw a c e g i k m o;
    // its group holds the last four, newest first.
    assert_eq!(&m.st.hist[..4], &[b'o' as u16, b'm' as u16, b'k' as u16, b'i' as u16]);
    assert_eq!(m.gradient_steps(), 2);
}

/// The learning-rate groups cover every parameter once, in order, with the multiples
/// the configuration names where it names them.
#[test]
fn lr_groups_cover_every_parameter_once() {
    let cfg = small();
    let m = Transformer::new(&cfg, 11).unwrap();
    let mut next = 0;
    for (range, _) in &m.lr_groups {
        assert_eq!(range.start, next, "gap or overlap before {range:?}");
        assert!(range.end > range.start);
        next = range.end;
    }
    assert_eq!(next, m.num_params());
    let mult = |at: usize| m.lr_groups.iter().find(|(r, _)| r.contains(&at)).unwrap().1;
    assert_eq!(mult(m.emb), cfg.lr_emb);
    assert_eq!(mult(m.w_out), cfg.lr_out);
    assert_eq!(mult(m.b_out), cfg.lr_out);
    for p in &m.lp {
        assert_eq!(mult(p.rel), cfg.lr_rel);
        assert_eq!((mult(p.g1), mult(p.wqkv), mult(p.w1), mult(p.w2)), (1.0, 1.0, 1.0, 1.0));
    }
    assert_eq!(mult(m.gf), 1.0);
}

/// After one gradient step from the same weights, each group has moved by its multiple
/// of what it moves at the shared rate.
#[test]
fn each_group_moves_at_its_multiple() {
    let unit = TransformerConfig { lr_emb: 1.0, lr_out: 1.0, lr_rel: 1.0, ..small() };
    let scaled = TransformerConfig { lr_emb: 2.0, lr_out: 4.0, lr_rel: 8.0, ..small() };
    let v = 11;
    let mut a = Transformer::new(&unit, v).unwrap();
    let mut b = Transformer::new(&scaled, v).unwrap();
    let w0 = a.params.clone();
    assert_eq!(bits(&w0), bits(&b.params));
    feed(&mut a, &symbols(3, unit.batch * unit.seg_len, v));
    feed(&mut b, &symbols(3, unit.batch * unit.seg_len, v));
    assert_eq!(a.gradient_steps(), 1);
    for (range, mult) in &b.lr_groups {
        let mut moved = 0;
        for i in range.clone() {
            let (da, db) = (w0[i] - a.params[i], w0[i] - b.params[i]);
            // Equal up to the rounding of the two subtractions.
            assert!((db - mult * da).abs() <= 4.0 * f32::EPSILON * w0[i].abs().max(1.0), "{i}: {da} {db} ×{mult}");
            moved += usize::from(da != 0.0);
        }
        assert!(moved > 0, "nothing moved in {range:?}");
    }
}
