use super::*;

fn cost(model: &mut dyn Predictor, data: &[u8]) -> f64 {
    let b = model.batch();
    let mut probs = vec![0.0f32; 256 * b];
    let mut bits = 0.0;
    for &c in data {
        model.predict(&mut probs);
        let sum: f32 = probs[..256].iter().sum();
        assert!((sum - 1.0).abs() < 1e-3, "sum {sum}");
        bits -= (probs[c as usize] as f64).log2();
        let mut step = vec![0u16; b];
        step[0] = c as u16;
        model.update(&step);
    }
    bits / data.len() as f64
}

#[test]
fn leaf_probs_match_the_reference() {
    let mut node_p = [0.5f32; 256];
    for (k, p) in node_p.iter_mut().enumerate() {
        *p = ((k * 37 % 101) as f32 + 0.5) / 101.0;
    }
    let mut out = [0.0f32; 256];
    leaf_probs(&node_p, &mut out);
    let total: f64 = out.iter().map(|&p| p as f64).sum();
    assert!((total - 1.0).abs() < 1e-5);
    for c in 0..=255u8 {
        let r = leaf_probs_reference(&node_p, c);
        assert!((out[c as usize] as f64 - r).abs() < 1e-6 * r.max(1e-3), "byte {c}");
    }
}

#[test]
fn second_nibble_nodes_cover_the_lower_tree() {
    let mut seen = [false; 256];
    for hi in 0..16 {
        for j in 1..16 {
            let k = second_nibble_node(hi, j);
            assert!((16..256).contains(&k) && !seen[k]);
            seen[k] = true;
        }
    }
    assert_eq!(seen.iter().filter(|&&s| s).count(), 240);
}

#[test]
fn config_round_trips_and_rejects_bad_values() {
    for name in ByteCtxConfig::PRESETS {
        let cfg = ByteCtxConfig::preset(name).unwrap();
        assert_eq!(ByteCtxConfig::from_bytes(&cfg.to_bytes()).unwrap(), cfg);
    }
    let mut bytes = ByteCtxConfig::preset("tiny").unwrap().to_bytes();
    bytes[1] = 40;
    assert!(ByteCtxConfig::from_bytes(&bytes).is_err());
    assert!(ByteCtxConfig::from_bytes(&bytes[..5]).is_err());
}

#[test]
fn a_primer_is_recorded_with_its_checksum_and_none_keeps_version_17() {
    let primed = ByteCtxConfig::preset("tiny").unwrap();
    assert_eq!(primed.primer, 4096);
    let bytes = primed.to_bytes();
    assert_eq!((bytes[0], bytes.len()), (18, ByteCtxConfig::BYTES_PRIMED));
    let plain = ByteCtxConfig { primer: 0, ..primed.clone() };
    let plain_bytes = plain.to_bytes();
    assert_eq!((plain_bytes[0], plain_bytes.len()), (17, ByteCtxConfig::BYTES));
    assert_eq!(ByteCtxConfig::from_bytes(&plain_bytes).unwrap(), plain);
    // Another primer (another checksum), or more of it than this nnz has: refused.
    let mut other = bytes.clone();
    other[16] ^= 1;
    let err = ByteCtxConfig::from_bytes(&other).unwrap_err().to_string();
    assert!(err.contains("primed with a text this nnz does not have"), "{err}");
    let mut longer = bytes.clone();
    longer[12..16].copy_from_slice(&(PRIMER.len() as u32 + 1).to_le_bytes());
    assert!(ByteCtxConfig::from_bytes(&longer).unwrap_err().to_string().contains("another version"));
    // A version-15 layout cannot claim a primer, nor a version-16 one lack it.
    assert!(ByteCtxConfig::from_bytes(&bytes[..ByteCtxConfig::BYTES]).is_err());
    let mut zero = bytes;
    zero[12..16].fill(0);
    assert!(ByteCtxConfig::from_bytes(&zero).is_err());
}

#[test]
fn the_primer_grows_with_the_input_up_to_the_preset() {
    let fast = ByteCtxConfig::preset("fast").unwrap().primer;
    assert_eq!(ByteCtxConfig::preset_for("fast", 100).unwrap().primer, MIN_PRIMER as u32);
    assert_eq!(ByteCtxConfig::preset_for("fast", 10_000).unwrap().primer, 20_000);
    assert_eq!(ByteCtxConfig::preset_for("fast", 1 << 40).unwrap().primer, fast);
    assert_eq!(ByteCtxConfig::preset_for("default", 1 << 20).unwrap().primer as usize, PRIMER.len());
}

#[test]
fn priming_keeps_how_to_predict_and_forgets_what_the_primer_said() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/alice29.txt")).unwrap();
    let text = &text[20_000..28_000];
    let primed_cfg = ByteCtxConfig::preset("tiny").unwrap();
    let plain_cfg = ByteCtxConfig { primer: 0, ..primed_cfg.clone() };
    let primed = ByteCtx::new(&primed_cfg, 1);
    let plain = ByteCtx::new(&plain_cfg, 1);
    // The contexts, the match model and the history are as in a fresh model...
    assert!(primed.table == plain.table && primed.meta == plain.meta && primed.states == plain.states);
    assert!(primed.match_index == plain.match_index);
    assert!(primed.streams.iter().all(|s| s.n == 0 && s.c8 == 0 && s.match_len == 0));
    // ...the mixers are not, with their learning rates still high.
    assert!(primed.weights != plain.weights);
    assert!(primed.set_updates.iter().all(|&n| n <= PRIMED_UPDATES));
    assert!(primed.set_updates.contains(&PRIMED_UPDATES));
    // And they know how to predict text it has not seen.
    let (mut primed, mut plain) = (primed, plain);
    let (with, without) = (cost(&mut primed, text), cost(&mut plain, text));
    assert!(with < 0.99 * without, "{with} bits primed, {without} not"); // 3.254 vs 3.310
                                                                         // Priming is a pure function of the configuration: two models agree.
    let mut again = ByteCtx::new(&primed_cfg, 1);
    let mut primed = ByteCtx::new(&primed_cfg, 1);
    assert_eq!(cost(&mut again, text).to_bits(), cost(&mut primed, text).to_bits());
}

#[test]
fn priming_feeds_every_stream() {
    let cfg = ByteCtxConfig::preset("tiny").unwrap();
    let m = ByteCtx::new(&cfg, 2);
    // Both streams' first mixers learned (each stream has FIRST_SETS sets of its own).
    for b in 0..2 {
        let sets = &m.set_updates[b * FIRST_SETS..(b + 1) * FIRST_SETS];
        assert!(sets.iter().any(|&n| n > 0), "stream {b}");
    }
}

#[test]
fn run_states_follow_the_last_byte() {
    // No last byte: state 0 everywhere.
    assert!((1..256).all(|k| run_state(0, k) == 0));
    // Last byte 0b1010_0000 seen 3 times: on its path, 1 + 4·bit + 2; off it, 0.
    let meta = 3 << 24 | 0xa0 << 16 | 1 << 0xa;
    let mut k = 1usize;
    for d in 0..8 {
        let bit = (0xa0 >> (7 - d)) & 1;
        assert_eq!(run_state(meta, k), 1 + 4 * bit + 2, "node {k}");
        k = 2 * k + bit;
        // The child the byte does not take is off its path.
        assert_eq!(run_state(meta, k ^ 1), 0, "node {}", k ^ 1);
    }
    // Long runs share the last state; every state fits the maps.
    let long = 200 << 24 | 0xff << 16;
    assert_eq!(run_state(long, 255), 1 + 4 + 3);
    assert!((0..=255u64).all(|c| (1..256).all(|k| run_state(7 << 24 | c << 16, k) < RUN_STATES)));
}

#[test]
fn bit_histories_count_and_forget() {
    let bh = BitHistory::new();
    // The table agrees with the step rule it was built from, for every state.
    for (s, &(n0, n1, _)) in bh.counts.iter().enumerate() {
        for bit in 0..2u32 {
            let (a, b) = BitHistory::step(n0, n1, bit);
            let (a2, b2, last) = bh.counts[bh.next(s as u8, bit) as usize];
            assert_eq!((a, b), (a2, b2), "state {s} bit {bit}");
            assert!(BitHistory::allowed(a, b));
            assert_eq!(last, if a > 0 && b > 0 { bit as u8 } else { 0 });
        }
    }
    // Ten 1s, then a 0: the 1s are discounted to 6, the 0 counted.
    let mut s = 0u8;
    for _ in 0..10 {
        s = bh.next(s, 1);
    }
    assert_eq!(bh.counts[s as usize], (0, 10, 0));
    assert_eq!(bh.counts[bh.next(s, 0) as usize], (1, 6, 0));
    // A long run saturates at the bound.
    for _ in 0..100 {
        s = bh.next(s, 1);
    }
    assert_eq!(bh.counts[s as usize], (0, BH_BOUND[0], 0));
}

#[test]
fn learning_keeps_the_run_of_the_last_byte() {
    let mut m = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
    let mut probs = vec![0.0f32; 256];
    for &c in b"xyxxx" {
        m.predict(&mut probs);
        m.update(&[c as u16]);
    }
    // The order-0 context saw x, y, x, x, x: last byte x, a run of 3.
    let slot = m.find(hash2(0, 0)).expect("order 0 present");
    assert_eq!((m.meta[slot] >> 16) & 0xff, b'x' as u64);
    assert_eq!((m.meta[slot] >> 24) & 0xff, 3);
    assert_eq!(m.meta[slot] & 0xffff, 1 << (b'x' >> 4) | 1 << (b'y' >> 4));
    // The two bytes before the last (x, x: the bytes before each x of the run) and
    // three or more bytes seen.
    assert_eq!((m.meta[slot] >> 32) & 0xffff, (b'x' as u64) << 8 | b'x' as u64);
    assert_eq!(m.meta[slot] >> 48, 3);
}

#[test]
fn tables_grow_with_the_input_up_to_the_preset() {
    let fast = ByteCtxConfig::preset("fast").unwrap();
    assert_eq!(ByteCtxConfig::preset_for("fast", 768_771).unwrap().table_bits, fast.table_bits);
    assert_eq!(ByteCtxConfig::preset_for("default", 152_089).unwrap().table_bits, 23);
    assert_eq!(ByteCtxConfig::preset_for("fast", 100).unwrap().table_bits, 12);
    assert_eq!(ByteCtxConfig::preset_for("tiny", 1 << 30).unwrap(), ByteCtxConfig::preset("tiny").unwrap());
}

#[test]
fn older_versions_are_refused_clearly() {
    let mut bytes = ByteCtxConfig::preset("tiny").unwrap().to_bytes();
    bytes[0] = 1;
    let err = ByteCtxConfig::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("another version of nnz"), "{err}");
}

#[test]
fn learns_records_and_repeats() {
    // Fixed-length records with a counter column: the record and match contexts win.
    let mut data = Vec::new();
    for i in 0..800u32 {
        data.extend_from_slice(&[0x10, (i % 7) as u8, 0xff, b'x', (i & 0xff) as u8, 0, 0, 1, 2, 3, 4]);
    }
    let bpb = cost(&mut ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1), &data);
    assert!(bpb < 1.0, "{bpb} bits per byte");
}

#[test]
fn memory_does_not_grow_with_the_input() {
    let cfg = ByteCtxConfig::preset("tiny").unwrap();
    let mut m = ByteCtx::new(&cfg, 2);
    let before = m.memory_bytes();
    let table_len = m.table.len();
    let data: Vec<u16> = (0..20_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u16).collect();
    let mut probs = vec![0.0; 512];
    for pair in data.chunks(2) {
        m.predict(&mut probs);
        m.update(pair);
    }
    assert_eq!((m.memory_bytes(), m.table.len()), (before, table_len));
    assert_eq!(m.table.capacity(), table_len);
}

#[test]
fn the_general_contexts_are_never_absent() {
    // NO_CTX must not be a hash the general contexts produce (0 was: order 0's).
    let mut m = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
    let mut probs = vec![0.0; 256];
    for i in 0..300u32 {
        assert!(m.streams[0].ctx[..N_CTX_BASE].iter().all(|&h| h != NO_CTX), "byte {i}");
        m.predict(&mut probs);
        m.update(&[(i % 7) as u16 * 40]);
    }
}

#[test]
fn image_contexts_need_a_trusted_record_length() {
    // Rows of 64 bytes (a bitmap): the binary contexts come on; text keeps them off.
    let mut m = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
    let mut probs = vec![0.0; 256];
    for i in 0..64 * 40u32 {
        m.predict(&mut probs);
        let c = if i % 64 == 10 { 0x3c } else { (i / 64 % 3) as u16 };
        m.update(&[c]);
    }
    assert_eq!(m.records.best().0, 64);
    assert!(m.streams[0].ctx[BIN_CTX..BIN_CTX + N_CTX_BIN].iter().all(|&h| h != NO_CTX));
    let mut t = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
    // Words of a pseudo-random text: periods come and go, none is trusted.
    let words = ["alice ", "was ", "beginning ", "to ", "get ", "very ", "tired ", "of ", "sitting "];
    let mut x = 12345u32;
    for _ in 0..400 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        for &c in words[(x >> 16) as usize % words.len()].as_bytes() {
            t.predict(&mut probs);
            t.update(&[c as u16]);
        }
    }
    // Without records the block serves text: two word contexts, one absent, and
    // generation 6's field context.
    let s = &t.streams[0];
    assert_eq!(s.ctx[BIN_CTX], hash2(112, hash2(s.word, s.word_prev2)));
    assert_eq!(s.ctx[BIN_CTX + 2], NO_CTX);
    assert_ne!(s.ctx[BIN_CTX + 3], NO_CTX);
}

#[test]
fn the_bit_path_gives_the_trees_probabilities() {
    // `predict` (the whole tree, unpruned: the slow reference) and the bit path (the
    // byte's 8 nodes) on the same bytes, two streams: the same code length for every
    // byte, and learning from both leaves bit-identical models.
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/alice29.txt")).unwrap();
    let cfg = ByteCtxConfig::preset("tiny").unwrap();
    assert!(cfg.bits && cfg.prune == 0);
    let (mut tree, mut path) = (ByteCtx::new(&cfg, 2), ByteCtx::new(&cfg, 2));
    let mut probs = vec![0.0f32; 512];
    for step in text[..6000].chunks_exact(2) {
        let syms = [step[0] as u16, step[1] as u16];
        tree.predict(&mut probs);
        path.begin_step();
        for (b, &c) in step.iter().enumerate() {
            let mut p = 1.0f64;
            for d in (0..8).rev() {
                let bit = (c >> d) as u32 & 1;
                let q = path.p1(b) as f64;
                p *= if bit == 1 { q } else { 1.0 - q };
                path.update_bit(b, bit);
            }
            let t = probs[b * 256 + c as usize] as f64;
            assert!((t.log2() - p.log2()).abs() < 1e-4, "byte {c}: tree {t}, path {p}");
        }
        tree.update(&syms);
        path.end_step(&syms);
    }
    assert!(tree.weights.iter().zip(&path.weights).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(tree.apm.iter().zip(&path.apm).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(tree.table == path.table && tree.maps == path.maps && tree.states == path.states);
    assert!(tree.match_counters == path.match_counters && tree.set_updates == path.set_updates);
}

#[test]
fn version_3_and_4_files_keep_the_distribution_path() {
    for primer in [0, 4096] {
        let cfg =
            ByteCtxConfig { bits: false, prune: 8, primer, generation: 1, ..ByteCtxConfig::preset("tiny").unwrap() };
        let bytes = cfg.to_bytes();
        assert_eq!(bytes[0], if primer == 0 { 3 } else { 4 });
        assert_eq!(ByteCtxConfig::from_bytes(&bytes).unwrap(), cfg);
        assert!(ByteCtx::new(&cfg, 1).bits().is_none());
        let bits = ByteCtxConfig { bits: true, prune: 0, ..cfg };
        assert_eq!(bits.to_bytes()[0], if primer == 0 { 5 } else { 6 });
        assert_eq!(ByteCtxConfig::from_bytes(&bits.to_bytes()).unwrap(), bits);
        assert!(ByteCtx::new(&bits, 1).bits().is_some());
        let gen2 = ByteCtxConfig { generation: 2, ..bits };
        assert_eq!(gen2.to_bytes()[0], if primer == 0 { 7 } else { 8 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen2.to_bytes()).unwrap(), gen2);
        let gen3 = ByteCtxConfig { generation: 3, ..bits };
        assert_eq!(gen3.to_bytes()[0], if primer == 0 { 9 } else { 10 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen3.to_bytes()).unwrap(), gen3);
        let gen4 = ByteCtxConfig { generation: 4, ..bits };
        assert_eq!(gen4.to_bytes()[0], if primer == 0 { 11 } else { 12 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen4.to_bytes()).unwrap(), gen4);
        let gen5 = ByteCtxConfig { generation: 5, ..bits };
        assert_eq!(gen5.to_bytes()[0], if primer == 0 { 13 } else { 14 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen5.to_bytes()).unwrap(), gen5);
        let gen6 = ByteCtxConfig { generation: 6, ..bits };
        assert_eq!(gen6.to_bytes()[0], if primer == 0 { 15 } else { 16 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen6.to_bytes()).unwrap(), gen6);
        let gen7 = ByteCtxConfig { generation: 7, ..bits };
        assert_eq!(gen7.to_bytes()[0], if primer == 0 { 17 } else { 18 });
        assert_eq!(ByteCtxConfig::from_bytes(&gen7.to_bytes()).unwrap(), gen7);
    }
    assert!(ByteCtxConfig { generation: 8, ..ByteCtxConfig::preset("tiny").unwrap() }.validate().is_err());
    let bad = ByteCtxConfig { prune: 8, ..ByteCtxConfig::preset("tiny").unwrap() };
    assert!(bad.validate().is_err());
    // Generations 2 to 7 have no distribution-path version.
    let bad = ByteCtxConfig { bits: false, ..ByteCtxConfig::preset("tiny").unwrap() };
    assert!(bad.validate().is_err());
}

#[test]
fn replay_is_bit_identical() {
    let cfg = ByteCtxConfig::preset("tiny").unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| if i % 3 == 0 { (i >> 4) as u8 } else { b'a' + (i % 5) as u8 }).collect();
    let (mut a, mut b) = (ByteCtx::new(&cfg, 3), ByteCtx::new(&cfg, 3));
    let (mut pa, mut pb) = (vec![0.0; 768], vec![0.0; 768]);
    for step in data.chunks_exact(3) {
        let syms: Vec<u16> = step.iter().map(|&c| c as u16).collect();
        a.predict(&mut pa);
        b.predict(&mut pb);
        assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
        a.update(&syms);
        b.update(&syms);
    }
}

/// Feeds `text` to a one-stream model, byte by byte.
fn feed(m: &mut ByteCtx, text: &[u8]) {
    let mut probs = vec![0.0; 256];
    for &c in text {
        m.predict(&mut probs);
        m.update(&[c as u16]);
    }
}

/// A one-stream model of the tiny preset in `generation`, after `text`.
fn fed(generation: u8, text: &[u8]) -> ByteCtx {
    let cfg = ByteCtxConfig { generation, ..ByteCtxConfig::preset("tiny").unwrap() };
    let mut m = ByteCtx::new(&cfg, 1);
    feed(&mut m, text);
    m
}

#[test]
fn indirect_contexts_remember_what_followed() {
    // Generation 3 keeps, per byte and per pair, the two bytes that followed them last.
    let mut m = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
    feed(&mut m, b"xab.yac.za");
    let s = &m.streams[0];
    // 'a' was followed by 'b', then 'c' (the latest in the low byte); "ya" by 'c'.
    let bc = u16::from_be_bytes([b'b', b'c']);
    assert_eq!(s.follow1[b'a' as usize], bc);
    assert_eq!(s.follow2[u16::from_be_bytes([b'y', b'a']) as usize], b'c' as u16);
    // After "za": the last byte 'a' with "bc"; the pair "za" with nothing yet.
    let after_za = hash2(114, b'a' as u64 | (bc as u64) << 8);
    assert_eq!(s.ctx[GEN3_CTX], after_za);
    assert_eq!(s.ctx[GEN3_CTX + 1], hash2(115, u16::from_be_bytes([b'z', b'a']) as u64));
    // The same last byte after other followers ("cd"): another context.
    feed(&mut m, b"d.qa");
    assert_eq!(m.streams[0].follow1[b'a' as usize], u16::from_be_bytes([b'c', b'd']));
    assert_ne!(m.streams[0].ctx[GEN3_CTX], after_za);
    // Generation 2 never computes them: absent, the tables never allocated.
    let gen2 = ByteCtxConfig { generation: 2, ..ByteCtxConfig::preset("tiny").unwrap() };
    let mut old = ByteCtx::new(&gen2, 1);
    feed(&mut old, b"xab.yac.za");
    assert!(old.streams[0].ctx[GEN3_CTX..].iter().all(|&h| h == NO_CTX));
    assert!(old.streams[0].follow1.is_empty());
}

#[test]
fn match_recovers_after_one_changed_byte() {
    // Generation 4: after a mismatch the match model tries the byte after the one it
    // mispredicted (length 1), and on success goes on with its old length.
    let tiny = ByteCtxConfig::preset("tiny").unwrap();
    let mut m = ByteCtx::new(&tiny, 1);
    feed(&mut m, b"0123456789abcdefghijklmnopqrstuvwxyz.");
    feed(&mut m, b"0123456789abcdefghij");
    let s = &m.streams[0];
    assert_eq!((s.expected, s.match_len), (Some(b'k'), 20));
    feed(&mut m, b"X");
    // The index knows no match for "...hijX"; the recovering match predicts 'l'.
    let s = &m.streams[0];
    assert_eq!((s.expected, s.match_len, s.recovering), (Some(b'l'), 1, true));
    feed(&mut m, b"l");
    let s = &m.streams[0];
    assert_eq!((s.expected, s.match_len, s.recovering), (Some(b'm'), 21, false));
    // A second mismatch within RECOVER_SETTLE bytes ends it.
    feed(&mut m, b"Y");
    let s = &m.streams[0];
    assert_eq!((s.expected, s.match_len), (None, 0));
    // Generation 3 gives up at the first mismatch.
    let mut old = ByteCtx::new(&ByteCtxConfig { generation: 3, ..tiny }, 1);
    feed(&mut old, b"0123456789abcdefghijklmnopqrstuvwxyz.0123456789abcdefghijX");
    assert_eq!((old.streams[0].expected, old.streams[0].match_len), (None, 0));
    assert!(old.match_index2.is_empty());
}

#[test]
fn long_index_prefers_the_longer_match() {
    // A match (the second line) fails; the latest occurrence of the last 6 bytes is a
    // short one (the third line), but the first line agrees on 23 bytes: generation 4's
    // index by the last 16 bytes finds it, generation 3 takes the short one.
    let text = b"0123456789abcdefghijklmnopqrstuvwx1 0123456789abcdefghijkl# +hijklm2 0123456789abcdefghijklm";
    for (generation, want) in [(4, b'n'), (3, b'2')] {
        let m = fed(generation, text);
        assert_eq!(m.streams[0].expected, Some(want), "generation {generation}");
    }
}

#[test]
fn run_state2_reads_the_byte_before_the_last() {
    // Last byte 0x41 (a run of 1), the byte before 0xc1: at the root both pass (bits 0
    // and 1); at node 2 (first bit 0) only 0x41 does; at node 3 only 0xc1 (next bit 1).
    let meta = (0x41u64 << 16) | 1 << 24 | (0xc1u64 << 32) | 2 << 48;
    let base = |k| run_state(meta, k);
    assert_eq!(run_state2(meta, 1), base(1) + RUN_STATES * 2);
    assert_eq!(run_state2(meta, 2), base(2));
    assert_eq!(run_state2(meta, 3), RUN_STATES * 2);
    assert_eq!(base(3), 0);
    // With one byte seen the byte before does not count.
    let young = (0x41u64 << 16) | 1 << 24 | 1 << 48;
    assert_eq!(run_state2(young, 1), run_state(young, 1));
    assert!((0..256).all(|k| run_state2(meta, k.max(1)) < RUN_STATES2));
}

#[test]
fn punctuation_contexts_follow_the_last_punctuation() {
    // The same word after different punctuation is a different context in generation 5,
    // and absent before it.
    let ctx_after =
        |text: &[u8], generation| fed(generation, text).streams[0].ctx[GEN5_CTX..GEN5_CTX + N_CTX_GEN5].to_vec();
    let (a, b) = (ctx_after(b"x := (hi", 5), ctx_after(b"x := [hi", 5));
    assert!(a.iter().zip(&b).all(|(x, y)| x != y));
    assert!(a.iter().all(|&h| h != NO_CTX));
    assert!(ctx_after(b"x := (hi", 4).iter().all(|&h| h == NO_CTX));
}

#[test]
fn field_contexts_follow_the_fields_of_the_line_above() {
    // In generation 6 the same field after different lines above is a different
    // context (the field with the same field of the line before), the field alone is the
    // same; they are absent before generation 6.
    let fields_after = |text: &[u8], generation| {
        let ctx = fed(generation, text).streams[0].ctx;
        [ctx[SPARSE_CTX + 2], ctx[SPARSE_CTX + 3], ctx[BIN_CTX + 3]]
    };
    let a = fields_after(b"  1.5  2.0\n  3.5  4.25\n  1.5  2.", 6);
    let b = fields_after(b"  1.5  2.0\n  3.5  4.75\n  1.5  2.", 6);
    let c = fields_after(b"  1.5  2.0\n  3.5  4.75\n  1.5  3.", 6);
    assert_eq!(a[0], b[0], "the field and its index alone");
    assert_ne!(a[1], b[1], "the field above differs");
    assert_ne!(a[2], b[2]);
    assert_ne!(b[0], c[0], "the field itself differs");
    assert!(a.iter().all(|&h| h != NO_CTX));
    // The same field text at another index on the line is another context.
    let d = fields_after(b"  1.5  2.0\n  3.5  4.75\n  2.", 6);
    assert_ne!(b[0], d[0]);
    assert_eq!(fields_after(b"  1.5  2.0\n  3.5  4.25\n  1.5  2.", 5)[..2], [NO_CTX; 2]);
}

#[test]
fn misses_count_the_mispredicted_bits() {
    // After a long run of one byte the model predicts it; a different byte is
    // mispredicted at some node, and the misses record it.
    let cfg = ByteCtxConfig::preset("tiny").unwrap();
    let mut m = ByteCtx::new(&cfg, 1);
    feed(&mut m, &[b'a'; 200]);
    assert_eq!(m.streams[0].misses & 0xff, 0, "a run is predicted");
    feed(&mut m, b"\xa5");
    assert_ne!(m.streams[0].misses & 0xff, 0, "a surprise is a miss");
}

#[test]
fn markup_contexts_follow_the_open_elements() {
    // Generation 7: an end tag's name is read against the innermost open element, a tag
    // after a closed one against that sibling; the contexts are the same where the
    // elements are, whatever came before.
    let markup = |text: &[u8]| fed(7, text).streams[0].ctx[GEN7_CTX..GEN7_CTX + N_CTX_GEN7].to_vec();
    assert_ne!(markup(b"<a><b></"), markup(b"<a><c></"), "the open element differs");
    assert_eq!(markup(b"<a><b></b></"), markup(b"<a></"), "b closed: a is open again");
    assert_ne!(markup(b"<r><x/><"), markup(b"<r><y/><"), "the previous sibling differs");
    assert_eq!(markup(b"<r><x></x><"), markup(b"<r><x y=\"1\"/><"), "an empty element is a sibling too");
    assert_ne!(markup(b"<r><t a=\"1"), markup(b"<r><t b=\"1"), "the attribute differs");
    // Before any tag has ended the contexts are off.
    assert_eq!(markup(b"<t a=\"1"), [NO_CTX; N_CTX_GEN7]);
    // The capitals filter's escapes are part of a name.
    assert_ne!(markup(b"<\x01x></"), markup(b"<\x01y></"));
    assert!(markup(b"<a><b></").iter().all(|&h| h != NO_CTX));
    // Not markup: a comparison is no tag, and the contexts stay absent; as they are
    // before generation 7.
    assert_eq!(markup(b"if a < b then c > d"), [NO_CTX; N_CTX_GEN7]);
    assert_eq!(fed(6, b"<a><b></").streams[0].ctx[GEN7_CTX..GEN7_CTX + N_CTX_GEN7], [NO_CTX; N_CTX_GEN7]);
    // Deeper than the stack remembers, and end tags that close nothing: the state stays
    // sane (the outer elements come back when the deep ones close).
    let deep = [b"<a><b>".repeat(50), b"</x>".repeat(99), b"</".to_vec()].concat();
    assert_eq!(markup(&deep), markup(b"<a></"));
    let unbalanced = [b"</x>".repeat(5), b"<a></".to_vec()].concat();
    assert_eq!(markup(&unbalanced), markup(b"<a></"));
}
