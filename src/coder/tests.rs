use super::*;
use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Codes `n` symbols drawn from `probs` and checks the round trip; returns
/// (coded bits without the flush, ideal −Σ log2 p in bits).
fn code_and_measure(probs: &[f32], n: usize, seed: u64) -> (f64, f64) {
    let mut freqs = vec![0u32; probs.len()];
    let total = quantize(probs, &mut freqs);
    let mut cum = vec![0u64; probs.len() + 1];
    for i in 0..probs.len() {
        cum[i + 1] = cum[i] + freqs[i] as u64;
    }
    // Sample from the model's own probabilities (inverse CDF in f64).
    let mut cdf = Vec::with_capacity(probs.len());
    let mut acc = 0.0f64;
    let norm: f64 = probs.iter().map(|&p| p as f64).sum();
    for &p in probs {
        acc += p as f64 / norm;
        cdf.push(acc);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let symbols: Vec<usize> = (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&c| c <= u).min(probs.len() - 1)
        })
        .collect();
    let mut enc = Encoder::new();
    let mut ideal = 0.0f64;
    for &s in &symbols {
        enc.encode(cum[s], freqs[s] as u64, total);
        ideal -= (probs[s] as f64 / norm).log2();
    }
    let bits = enc.bits_used();
    let bytes = enc.finish();
    let mut dec = Decoder::new(&bytes).unwrap();
    for &s in &symbols {
        let t = dec.target(total);
        let got = cum.partition_point(|&c| c <= t) - 1;
        assert_eq!(got, s);
        dec.consume(cum[got], freqs[got] as u64, total).unwrap();
    }
    dec.finish().unwrap();
    (bits, ideal)
}

#[test]
fn overhead_flat_16k_under_0_1_percent() {
    let probs = vec![1.0f32 / 16384.0; 16384];
    let (bits, ideal) = code_and_measure(&probs, 200_000, 1);
    let overhead = bits / ideal - 1.0;
    eprintln!("coder overhead vs ideal: {overhead:+.3e} ({bits:.0} bits, ideal {ideal:.0})");
    assert!(overhead.abs() < 1e-3, "overhead {overhead}");
}

#[test]
fn overhead_peaked_16k_under_0_1_percent() {
    let mut probs = vec![0.0001f32 / 16383.0; 16384];
    probs[7] = 0.9999;
    let (bits, ideal) = code_and_measure(&probs, 2_000_000, 2);
    let overhead = bits / ideal - 1.0;
    eprintln!("coder overhead vs ideal: {overhead:+.3e} ({bits:.0} bits, ideal {ideal:.0})");
    assert!(overhead < 1e-3, "overhead {overhead} ({bits} bits vs ideal {ideal})");
}

#[test]
fn overhead_binary_peaked_under_0_1_percent() {
    let (bits, ideal) = code_and_measure(&[0.9999, 0.0001], 2_000_000, 3);
    let overhead = bits / ideal - 1.0;
    eprintln!("coder overhead vs ideal: {overhead:+.3e} ({bits:.0} bits, ideal {ideal:.0})");
    assert!(overhead < 1e-3, "overhead {overhead}");
}

#[test]
fn every_symbol_stays_codable() {
    // A model that puts all its mass on one symbol, or outputs garbage.
    for probs in [vec![1.0f32, 0.0, 0.0, 0.0], vec![f32::NAN, -1.0, f32::INFINITY, 0.0], vec![1.0f32; 65536]] {
        let mut freqs = vec![0u32; probs.len()];
        let total = quantize(&probs, &mut freqs);
        assert!(total <= MAX_TOTAL);
        assert!(freqs.iter().all(|&f| f >= 1));
        let mut enc = Encoder::new();
        for s in 0..probs.len().min(64) {
            enc.encode_symbol(&freqs, total, s);
        }
        let bytes = enc.finish();
        let mut dec = Decoder::new(&bytes).unwrap();
        for s in 0..probs.len().min(64) {
            assert_eq!(dec.decode_symbol(&freqs, total).unwrap(), s);
        }
    }
}

#[test]
fn termination_costs() {
    // Nothing coded: the shortest termination writes nothing, format 1 the 8 state bytes.
    assert_eq!(Encoder::new().finish().len(), 0);
    assert_eq!(Encoder::new().finish_with(Termination::FullState).len(), STATE_BYTES);
    let mut dec = Decoder::new(&[]).unwrap();
    assert!(dec.at_end());
    dec.target(2);
    dec.finish().unwrap();
    // One symbol of probability 1/2 that is not the first: one byte, 0x80.
    let mut enc = Encoder::new();
    enc.encode(1, 1, 2);
    assert_eq!(enc.finish(), [0x80]);
}

/// Symbols under `freqs` coded with `termination`.
fn encode(freqs: &[u32], total: u64, symbols: &[usize], termination: Termination) -> Vec<u8> {
    let mut enc = Encoder::new();
    for &s in symbols {
        enc.encode_symbol(freqs, total, s);
    }
    enc.finish_with(termination)
}

/// Decodes `n` symbols and runs the end check.
fn decode(bytes: &[u8], freqs: &[u32], total: u64, n: usize, termination: Termination) -> Result<Vec<usize>> {
    let mut dec = Decoder::with_termination(bytes, termination)?;
    let symbols = (0..n).map(|_| dec.decode_symbol(freqs, total)).collect::<Result<Vec<_>>>()?;
    dec.finish()?;
    Ok(symbols)
}

fn uniform4() -> ([u32; 4], u64) {
    let mut freqs = [0u32; 4];
    let total = quantize(&[0.25f32; 4], &mut freqs);
    (freqs, total)
}

#[test]
fn truncated_payload_is_an_error() {
    let (freqs, total) = uniform4();
    let symbols: Vec<usize> = (0..100).map(|i| i % 4).collect();
    // Format 1: the decoder runs out of bytes.
    let bytes = encode(&freqs, total, &symbols, Termination::FullState);
    let err = decode(&bytes[..bytes.len() - 1], &freqs, total, 100, Termination::FullState).unwrap_err();
    assert!(err.to_string().contains("ended early"), "{err}");
    assert!(Decoder::with_termination(&bytes[..3], Termination::FullState).is_err());
    // Format 2: the decoder reads zeros in place of the missing byte, so the code it
    // reads lies below the final interval: other symbols, or an error.
    let bytes = encode(&freqs, total, &symbols, Termination::Shortest);
    for cut in 0..bytes.len() {
        if let Ok(other) = decode(&bytes[..cut], &freqs, total, 100, Termination::Shortest) {
            assert_ne!(other, symbols, "cut to {cut} bytes");
        }
    }
}

#[test]
fn extended_payload_is_an_error() {
    let (freqs, total) = uniform4();
    let symbols: Vec<usize> = (0..100).map(|i| (i * 7 + i / 3) % 4).collect();
    for termination in [Termination::FullState, Termination::Shortest] {
        let mut bytes = encode(&freqs, total, &symbols, termination);
        assert_eq!(decode(&bytes, &freqs, total, 100, termination).unwrap(), symbols);
        bytes.push(0);
        let err = decode(&bytes, &freqs, total, 100, termination).unwrap_err().to_string();
        let expected = if termination == Termination::Shortest { "ends in a zero byte" } else { "1 trailing bytes" };
        assert!(err.contains(expected), "{err}");
        for b in 1..=255 {
            *bytes.last_mut().unwrap() = b;
            if let Ok(other) = decode(&bytes, &freqs, total, 100, termination) {
                assert_ne!(other, symbols, "extra byte {b}");
            }
        }
    }
}

/// A table of 1 to 40 symbols, from arbitrary weights (zeros and huge peaks included).
fn table() -> impl Strategy<Value = (Vec<u32>, u64)> {
    prop::collection::vec(prop_oneof![Just(0.0f32), 0.0f32..1.0, Just(1.0f32)], 1..40).prop_map(|weights| {
        let sum: f32 = weights.iter().sum();
        let probs: Vec<f32> = weights.iter().map(|&w| if sum > 0.0 { w / sum } else { w }).collect();
        let mut freqs = vec![0u32; probs.len()];
        let total = quantize(&probs, &mut freqs);
        (freqs, total)
    })
}

proptest! {
    /// Both terminations round-trip any sequence (empty and single symbols included)
    /// under any table, and the shortest one saves at least 7 of format 1's 8 bytes.
    #[test]
    fn both_terminations_roundtrip((freqs, total) in table(), picks in prop_oneof![
        prop::collection::vec(any::<u16>(), 0..=1),
        prop::collection::vec(any::<u16>(), 0..300),
    ]) {
        let symbols: Vec<usize> = picks.iter().map(|&p| p as usize % freqs.len()).collect();
        let full = encode(&freqs, total, &symbols, Termination::FullState);
        let short = encode(&freqs, total, &symbols, Termination::Shortest);
        prop_assert_eq!(&decode(&full, &freqs, total, symbols.len(), Termination::FullState).unwrap(), &symbols);
        prop_assert_eq!(&decode(&short, &freqs, total, symbols.len(), Termination::Shortest).unwrap(), &symbols);
        prop_assert!(short.len() + 7 <= full.len(), "{} vs {} bytes", short.len(), full.len());
        prop_assert!(short.last() != Some(&0));
    }

    /// The shortest termination is canonical: whatever payload the decoder accepts is
    /// exactly what the encoder writes for the symbols it decoded. Short payloads are
    /// accepted often, so this exercises the end check's argument directly.
    #[test]
    fn accepted_payloads_are_exactly_the_encoders((freqs, total) in table(), n in 0usize..6,
                                                   payload in prop::collection::vec(any::<u8>(), 0..10)) {
        if let Ok(symbols) = decode(&payload, &freqs, total, n, Termination::Shortest) {
            prop_assert_eq!(&encode(&freqs, total, &symbols, Termination::Shortest), &payload);
        }
        if let Ok(symbols) = decode(&payload, &freqs, total, n, Termination::FullState) {
            prop_assert_eq!(&encode(&freqs, total, &symbols, Termination::FullState), &payload);
        }
    }

    /// Cutting the last byte or appending one never gives back the same symbols.
    #[test]
    fn cut_or_extended_payloads_are_rejected((freqs, total) in table(),
                                             picks in prop::collection::vec(any::<u16>(), 1..200),
                                             extra in any::<u8>()) {
        let symbols: Vec<usize> = picks.iter().map(|&p| p as usize % freqs.len()).collect();
        for termination in [Termination::FullState, Termination::Shortest] {
            let bytes = encode(&freqs, total, &symbols, termination);
            if !bytes.is_empty() {
                let cut = decode(&bytes[..bytes.len() - 1], &freqs, total, symbols.len(), termination);
                prop_assert!(cut.map_or(true, |s| s != symbols));
            }
            let mut longer = bytes.clone();
            longer.push(extra);
            let longer = decode(&longer, &freqs, total, symbols.len(), termination);
            prop_assert!(longer.map_or(true, |s| s != symbols));
        }
    }
}

proptest! {
    #[test]
    fn roundtrip_arbitrary_tables(
        table in prop::collection::vec(0.0f32..1.0, 1..300),
        picks in prop::collection::vec(any::<u16>(), 0..400),
    ) {
        let sum: f32 = table.iter().sum();
        let probs: Vec<f32> = table.iter().map(|&p| if sum > 0.0 { p / sum } else { p }).collect();
        let mut freqs = vec![0u32; probs.len()];
        let total = quantize(&probs, &mut freqs);
        let symbols: Vec<usize> = picks.iter().map(|&p| p as usize % probs.len()).collect();
        let mut enc = Encoder::new();
        for &s in &symbols { enc.encode_symbol(&freqs, total, s); }
        let bytes = enc.finish();
        let mut dec = Decoder::new(&bytes).unwrap();
        for &s in &symbols { prop_assert_eq!(dec.decode_symbol(&freqs, total).unwrap(), s); }
        prop_assert!(dec.finish().is_ok());
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let probs = [0.5f32, 0.3, 0.2];
        let mut freqs = [0u32; 3];
        let total = quantize(&probs, &mut freqs);
        if let Ok(mut dec) = Decoder::new(&bytes) {
            for _ in 0..100 {
                if dec.decode_symbol(&freqs, total).is_err() { break; }
            }
        }
    }
}

#[test]
fn quantize_bit_keeps_both_bits_codable() {
    assert_eq!(quantize_bit(0.5), 32768);
    for p in [0.0f32, -1.0, f32::NAN, 1e-9] {
        assert_eq!(quantize_bit(p), 1, "{p}");
    }
    for p in [1.0f32, 2.0, f32::INFINITY, 1.0 - 1e-9] {
        assert_eq!(quantize_bit(p), 65535, "{p}");
    }
}

proptest! {
    /// Bits and symbols interleave in one code (the byte model's bits, other frames'
    /// symbols), and a bit is the two-symbol table [p1, BIT_TOTAL − p1] with 1 first:
    /// the same bytes as `encode`.
    #[test]
    fn bits_roundtrip_and_equal_a_two_symbol_table(
        steps in prop::collection::vec((1u32..65536, any::<bool>(), any::<bool>()), 0..400)
    ) {
        let (mut enc, mut twin) = (Encoder::new(), Encoder::new());
        let (freqs, total) = uniform4();
        for (i, &(p1, bit, symbol_too)) in steps.iter().enumerate() {
            enc.encode_bit(p1, bit as u32);
            let (cum, freq) = if bit { (0, p1 as u64) } else { (p1 as u64, BIT_TOTAL - p1 as u64) };
            twin.encode(cum, freq, BIT_TOTAL);
            if symbol_too {
                enc.encode_symbol(&freqs, total, i % 4);
                twin.encode_symbol(&freqs, total, i % 4);
            }
        }
        let bytes = enc.finish();
        prop_assert_eq!(&bytes, &twin.finish());
        let mut dec = Decoder::new(&bytes).unwrap();
        for (i, &(p1, bit, symbol_too)) in steps.iter().enumerate() {
            prop_assert_eq!(dec.decode_bit(p1).unwrap(), bit as u32);
            if symbol_too {
                prop_assert_eq!(dec.decode_symbol(&freqs, total).unwrap(), i % 4);
            }
        }
        prop_assert!(dec.finish().is_ok());
    }
}
