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
fn flush_costs_at_most_eight_bytes() {
    let enc = Encoder::new();
    assert_eq!(enc.finish().len(), STATE_BYTES);
}

#[test]
fn truncated_payload_is_an_error() {
    let probs = [0.25f32; 4];
    let mut freqs = [0u32; 4];
    let total = quantize(&probs, &mut freqs);
    let mut enc = Encoder::new();
    for i in 0..100 {
        enc.encode_symbol(&freqs, total, i % 4);
    }
    let bytes = enc.finish();
    let short = &bytes[..bytes.len() - 1];
    let mut dec = Decoder::new(short).unwrap();
    let res: Result<Vec<usize>> = (0..100).map(|_| dec.decode_symbol(&freqs, total)).collect();
    assert!(res.unwrap_err().to_string().contains("ended early"));
    assert!(Decoder::new(&bytes[..3]).is_err());
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
