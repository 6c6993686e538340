//! The checks behind the fuzz targets (`fuzz/`), kept in the library so that every input
//! a fuzzer ever found is replayed by `cargo test` (`tests/it/fuzz_regressions.rs`).
//!
//! Each function panics exactly when nnz misbehaves: a panic inside nnz, or a round
//! trip that does not give back its input.

use crate::coder::{quantize, Decoder, Encoder, Termination};
use crate::engine::{self, CompressOptions};
use crate::format::{self, Header};
use crate::tokenizer::{Dictionary, Options};

/// Decompressing arbitrary bytes returns an error or some output, never panics; any
/// input that decodes re-encodes to itself in the same model (checksums make a wrong
/// decode fail, so success means the bytes were a real file).
pub fn decompress(data: &[u8]) {
    let _ = engine::decompress(data, &mut |_| {});
    // Also through a valid header, so the fuzzer reaches the payload decoder quickly.
    if let Some((&flip, rest)) = data.split_first() {
        let packed = engine::compress(rest, &CompressOptions::default(), &mut |_| {}).expect("compress");
        let mut bad = packed.clone();
        let i = flip as usize % bad.len();
        bad[i] ^= 1 << (flip % 8);
        if let Ok(out) = engine::decompress(&bad, &mut |_| {}) {
            assert_eq!(out, rest, "a damaged file decoded to the wrong bytes");
        }
        assert_eq!(engine::decompress(&packed, &mut |_| {}).expect("round trip"), rest);
    }
}

/// Parsing arbitrary bytes as a header never panics, and both parsers agree.
pub fn header(data: &[u8]) {
    let from_slice = Header::read(data);
    let streamed = format::read_header_bytes(&mut &data[..]);
    if let Ok((h, len)) = &from_slice {
        let bytes = streamed.expect("stream parser rejects a valid header").expect("a header");
        assert_eq!(bytes.len(), *len);
        let mut again = Vec::new();
        h.write(&mut again);
        assert_eq!(&again[..], &data[..*len], "header does not re-serialize to itself");
    }
}

/// Frequencies from arbitrary probabilities, arbitrary symbols: the round trip holds with
/// both terminations; arbitrary bytes as a payload give errors, not panics, and a payload
/// the decoder accepts is exactly what the encoder writes for what it decoded.
pub fn coder(data: &[u8]) {
    let Some((&v, rest)) = data.split_first() else { return };
    let v = v as usize % 64 + 1;
    if rest.len() < v {
        return;
    }
    let (table, picks) = rest.split_at(v);
    let probs: Vec<f32> = table.iter().map(|&b| b as f32 / 255.0).collect();
    let mut freqs = vec![0u32; v];
    let total = quantize(&probs, &mut freqs);
    let symbols: Vec<usize> = picks.iter().map(|&p| p as usize % v).collect();
    let encode = |symbols: &[usize], termination| {
        let mut enc = Encoder::new();
        for &s in symbols {
            enc.encode_symbol(&freqs, total, s);
        }
        enc.finish_with(termination)
    };
    for termination in [Termination::Shortest, Termination::FullState] {
        let bytes = encode(&symbols, termination);
        let mut dec = Decoder::with_termination(&bytes, termination).expect("decoder");
        for &s in &symbols {
            assert_eq!(dec.decode_symbol(&freqs, total).expect("decode"), s);
        }
        dec.finish().expect("exact end");
        // And arbitrary bytes as a payload.
        if let Ok(mut dec) = Decoder::with_termination(picks, termination) {
            let decoded: Result<Vec<usize>, _> =
                (0..picks.len() % 8).map(|_| dec.decode_symbol(&freqs, total)).collect();
            if let (Ok(decoded), Ok(())) = (decoded, dec.finish()) {
                assert_eq!(encode(&decoded, termination), picks, "an accepted payload is not the encoder's");
            }
        }
    }
    if let Ok(mut dec) = Decoder::new(picks) {
        for _ in 0..picks.len() * 4 {
            if dec.decode_symbol(&freqs, total).is_err() {
                break;
            }
        }
    }
}

/// The dictionary pass round-trips any input; arbitrary dictionaries and symbol
/// sequences give errors, not panics.
pub fn tokenizer(data: &[u8]) {
    let opts = Options { max_vocab: 300, min_freq: 2 };
    let dict = Dictionary::build(data, &opts);
    let symbols = dict.encode(data);
    let mut out = Vec::new();
    dict.decode(&symbols, &mut out).expect("decode own symbols");
    assert_eq!(out, data, "tokenizer round trip");
    let parsed = Dictionary::from_bytes(&dict.to_bytes()).expect("parse own dictionary");
    assert_eq!(parsed, dict);
    if let Ok(d) = Dictionary::from_bytes(data) {
        let syms: Vec<u16> = data.chunks(2).map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
        let syms: Vec<u16> = syms.into_iter().filter(|&s| (s as usize) < d.vocab_size()).collect();
        let _ = d.decode(&syms, &mut Vec::new());
    }
}
