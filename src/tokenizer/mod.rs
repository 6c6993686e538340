//! Tokenizer: turns bytes into symbols so that the predictor sees words and word pieces.
//!
//! Two stages, both reversible:
//!
//! 1. [`transform`]: NNCP's case/space transform. Words are lower-cased and carry their
//!    leading space; escape symbols mark Capitalized and ALL-CAPS words and words with no
//!    space before them.
//! 2. [`bpe`]: BPE-like merging of adjacent symbols, each merge scored by the order-0
//!    entropy it saves minus the cost of its dictionary entry (integer arithmetic only),
//!    up to 32 symbol-disjoint merges per round, rare intermediate symbols pruned from the
//!    output alphabet. An incremental structure (pair counts in a lazy max-heap, position
//!    lists, a branch-and-bound scan) keeps the time about linear in the input;
//!    [`bpe::train_reference`] is the slow recount-everything version it is tested against.
//!
//! Symbols `0..256` are always the raw bytes, so any input round-trips. The escapes are
//! dedicated symbols 256, 257, 258 rather than bytes (NNCP uses bytes 1..4 and escapes
//! their literal occurrences): no byte ever needs an escape, binary data passes through
//! unchanged, and the decoder has one meaning per symbol. Merged symbols follow.
//!
//! Every choice is made by the same order-0 estimate (symbol stream + dictionary bytes):
//! the transform is used only if it pays on a sample of the input ([`PROBE_LIMIT`]), and
//! the whole dictionary only if it beats the raw bytes; on random or already compressed
//! data the dictionary is the identity (256 symbols, `encode` returns the bytes). Ties
//! are broken by pair key and no hash-map order reaches the output: the same input gives
//! the same dictionary on every machine. Building is single-threaded.
//!
//! ```
//! use nnz::tokenizer::{Dictionary, Options};
//! let text = b"The cat sat on the mat. The cat sat on the hat. ".repeat(40);
//! let dict = Dictionary::build(&text, &Options { max_vocab: 512, min_freq: 8 });
//! let symbols = dict.encode(&text);
//! assert!(symbols.len() < text.len() / 3);
//! let mut back = Vec::new();
//! dict.decode(&symbols, &mut back).unwrap();
//! assert_eq!(back, text);
//! let again = Dictionary::from_bytes(&dict.to_bytes()).unwrap();
//! assert_eq!(again, dict);
//! ```
//!
//! Encoding and training work on chunks of about [`CHUNK`] bytes cut after a byte that is
//! neither a letter nor a space ([`transform::chunk_ends`]); no token spans two chunks.
//! Inputs larger than [`TRAIN_LIMIT`] are trained on evenly spaced chunks of that total
//! size, so that the build's memory stays bounded (about 10 bytes per trained byte);
//! all of the input is encoded.
//!
//! # Measured
//!
//! `cargo run --release --example tokenizer_stats -- FILE`, default options (16384, 32),
//! on the 2-vCPU development machine (times vary with its load):
//!
//! | file | bytes/symbol | V | dictionary | order-0 bits/byte: raw → symbols (+dict) | CPU s |
//! |---|---|---|---|---|---|
//! | calgary/book1 (769 kB) | 3.37 | 2037 | 4,567 B | 4.527 → 2.906 (2.954) | 0.2 |
//! | silesia/dickens (10.2 MB) | 5.31 | 12267 | 35,037 B | 4.532 → 2.281 (2.308) | 1.8–3 |
//! | silesia concatenated (103.5 MB) | 4.92 | 16311 | 62,642 B | 5.659 → 2.477 (2.482) | 17–19 |
//!
//! (CPU s: user time of build + encode + decode; 1.1 GB peak memory on the 103.5 MB file.)
//! The dictionary costs about 21 bits per merge ([`dict`]).

pub mod bpe;
pub mod dict;
pub mod encode;
pub mod transform;

use anyhow::{bail, Result};

use bpe::{pair_key, Log2, PairMap, FRAC_BITS, MAX_TOKEN_LEN};
use transform::BASE_WITH_TRANSFORM;

/// Chunk size for encoding and training.
pub const CHUNK: usize = 1 << 18;
/// Most input bytes that training looks at.
pub const TRAIN_LIMIT: usize = 128 << 20;
/// Input bytes used to decide whether the case/space transform pays.
pub const PROBE_LIMIT: usize = 1 << 20;

/// How the dictionary is built. Stored in the header for information; decoding needs
/// only the serialized dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Largest number of symbols, raw bytes and escapes included (256..=65536).
    pub max_vocab: u32,
    /// Smallest count for a merge to be made, and for a merged symbol to stay in the
    /// output alphabet (values below 2 act as 2).
    pub min_freq: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_vocab: 16384, min_freq: 32 }
    }
}

impl Options {
    /// Checks the ranges a user may ask for ([`Dictionary::build`] clamps instead).
    pub fn validate(&self) -> Result<()> {
        if !(256..=65536).contains(&self.max_vocab) {
            bail!("--vocab {} is outside 256..=65536", self.max_vocab);
        }
        if self.min_freq < 2 {
            bail!("minimum frequency {} is below 2 (a symbol seen once cannot pay)", self.min_freq);
        }
        Ok(())
    }
}

/// The symbol table: symbols `0..256` are the raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dictionary {
    transform: bool,
    /// Merge `k` makes internal symbol `base + k`.
    merges: Vec<(u16, u16)>,
    /// Whether merge `k`'s symbol is in the output alphabet.
    emitted: Vec<bool>,
    // Derived from the above.
    /// Internal symbol -> output symbol (`u32::MAX`: not emitted, split into its parts).
    out_id: Vec<u32>,
    /// Output symbol `s` stands for base symbols `exp[exp_off[s]..exp_off[s + 1]]`.
    exp_off: Vec<u32>,
    exp: Vec<u16>,
    rank: PairMap<u32>,
}

/// Decodes a symbol stream given in pieces ([`Dictionary::decoder`]).
pub struct Decoder<'a> {
    dict: &'a Dictionary,
    inv: transform::Inverse,
}

impl Decoder<'_> {
    /// Appends the bytes of the next `symbols` to `out`.
    pub fn push(&mut self, symbols: &[u16], out: &mut Vec<u8>) -> Result<()> {
        let d = self.dict;
        let v = d.vocab_size();
        out.reserve(symbols.len());
        for &s in symbols {
            if s as usize >= v {
                bail!("corrupt data: symbol {s} outside the dictionary of {v}");
            }
            let exp = &d.exp[d.exp_off[s as usize] as usize..d.exp_off[s as usize + 1] as usize];
            if d.transform {
                self.inv.push(exp, out)?;
            } else {
                out.extend(exp.iter().map(|&b| b as u8));
            }
        }
        Ok(())
    }

    /// Checks that the stream did not end inside a word group.
    pub fn finish(&self) -> Result<()> {
        self.inv.finish()
    }
}

/// A candidate dictionary and its estimated cost.
struct Built {
    dict: Dictionary,
    /// Order-0 bits of the symbol stream plus the dictionary's bytes, in fixed point.
    cost: u64,
}

impl Dictionary {
    /// The identity dictionary: 256 symbols, one per byte.
    pub fn identity() -> Dictionary {
        Self::from_parts(dict::Parts { transform: false, merges: Vec::new(), emitted: Vec::new() })
            .expect("the identity dictionary is valid")
    }

    /// Builds the dictionary for `data`.
    pub fn build(data: &[u8], opts: &Options) -> Dictionary {
        let max_vocab = opts.max_vocab.clamp(256, 65536) as usize;
        let min_freq = opts.min_freq.max(2);
        if data.is_empty() || max_vocab == 256 {
            return Self::identity();
        }
        let lg = Log2::new();
        let chunks = chunk_ranges(data);
        let probe = sample(&chunks, data.len(), PROBE_LIMIT);
        let train = sample(&chunks, data.len(), TRAIN_LIMIT);
        // The transform is kept if it pays on the probe.
        let plain = build_on(&lg, data, &probe, false, max_vocab, min_freq);
        // The transform's escapes need room in the alphabet.
        let cased = (max_vocab > BASE_WITH_TRANSFORM)
            .then(|| build_on(&lg, data, &probe, true, max_vocab, min_freq))
            .filter(|cased| cased.cost < plain.cost);
        let transform = cased.is_some();
        let best = if probe.len() == train.len() {
            cased.unwrap_or(plain)
        } else {
            build_on(&lg, data, &train, transform, max_vocab, min_freq)
        };
        let identity_cost = identity_cost(&lg, data, &train);
        if best.cost < identity_cost {
            best.dict
        } else {
            Self::identity()
        }
    }

    /// Number of symbols, `V`.
    pub fn vocab_size(&self) -> usize {
        self.exp_off.len() - 1
    }

    /// Whether the case/space transform is on.
    pub fn uses_transform(&self) -> bool {
        self.transform
    }

    /// Number of merges, emitted or not.
    pub fn merge_count(&self) -> usize {
        self.merges.len()
    }

    /// The merges in order: merge `k` makes internal symbol `base + k` (base = 259 with
    /// the transform, 256 without) and is emitted or only an intermediate step.
    pub fn merges(&self) -> impl Iterator<Item = ((u16, u16), bool)> + '_ {
        self.merges.iter().copied().zip(self.emitted.iter().copied())
    }

    fn base(&self) -> usize {
        base_of(self.transform)
    }

    /// The symbols of `data`.
    pub fn encode(&self, data: &[u8]) -> Vec<u16> {
        if !self.transform && self.merges.is_empty() {
            return data.iter().map(|&b| b as u16).collect();
        }
        let mut merger = encode::Merger::new(self.base(), &self.merges, &self.rank);
        let mut out = Vec::with_capacity(data.len() / 2);
        let mut syms = Vec::new();
        let mut start = 0;
        for end in transform::chunk_ends(data, CHUNK) {
            syms.clear();
            self.base_symbols(&data[start..end], &mut syms);
            let len = merger.merge(&mut syms);
            for &s in &syms[..len] {
                self.emit(s, &mut out);
            }
            start = end;
        }
        out
    }

    /// Appends the output symbols for internal symbol `s`, splitting pruned symbols.
    fn emit(&self, s: u16, out: &mut Vec<u16>) {
        let id = self.out_id[s as usize];
        if id != u32::MAX {
            out.push(id as u16);
            return;
        }
        let (a, b) = self.merges[s as usize - self.base()];
        self.emit(a, out);
        self.emit(b, out);
    }

    fn base_symbols(&self, data: &[u8], out: &mut Vec<u16>) {
        if self.transform {
            transform::forward(data, out);
        } else {
            out.extend(data.iter().map(|&b| b as u16));
        }
    }

    /// Appends the bytes of `symbols` (a whole encoded stream) to `out`; errors on a
    /// symbol outside the dictionary or on escapes that do not form a word group. To
    /// decode a stream in pieces, use [`Dictionary::decoder`].
    pub fn decode(&self, symbols: &[u16], out: &mut Vec<u8>) -> Result<()> {
        let mut dec = self.decoder();
        dec.push(symbols, out)?;
        dec.finish()
    }

    /// An incremental decoder: a word group may span two calls of [`Decoder::push`].
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder { dict: self, inv: transform::Inverse::default() }
    }

    /// The base symbols (bytes, or escapes 256..259) that output symbol `s` stands for.
    pub fn expansion(&self, s: u16) -> Option<&[u16]> {
        let s = s as usize;
        if s >= self.vocab_size() {
            return None;
        }
        Some(&self.exp[self.exp_off[s] as usize..self.exp_off[s + 1] as usize])
    }

    /// The dictionary's compact serialization (format in [`dict`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let parts =
            dict::Parts { transform: self.transform, merges: self.merges.clone(), emitted: self.emitted.clone() };
        dict::write(&parts, self.base())
    }

    /// Parses what [`Dictionary::to_bytes`] wrote; rejects anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Dictionary> {
        Self::from_parts(dict::read(bytes)?)
    }

    /// Checks the merges and derives the tables.
    fn from_parts(parts: dict::Parts) -> Result<Dictionary> {
        let base = base_of(parts.transform);
        let m = parts.merges.len();
        let mut len: Vec<u32> = vec![1; base];
        let mut rank = PairMap::default();
        for (k, &(a, b)) in parts.merges.iter().enumerate() {
            if a as usize >= base + k || b as usize >= base + k {
                bail!("corrupt dictionary: merge {k} uses an undefined symbol");
            }
            let l = len[a as usize] + len[b as usize];
            if l > MAX_TOKEN_LEN {
                bail!("corrupt dictionary: merge {k} makes a token of {l} symbols, over {MAX_TOKEN_LEN}");
            }
            len.push(l);
            if rank.insert(pair_key(a, b), k as u32).is_some() {
                bail!("corrupt dictionary: merge {k} repeats the pair ({a}, {b})");
            }
        }
        let mut out_id = Vec::with_capacity(base + m);
        out_id.extend(0..base as u32);
        let mut next = base as u32;
        for &e in &parts.emitted {
            if e {
                out_id.push(next);
                next += 1;
            } else {
                out_id.push(u32::MAX);
            }
        }
        // Expansions of all internal symbols, then keep the emitted ones.
        let mut int_off = vec![0u32; base + m + 1];
        let mut int_exp: Vec<u16> = Vec::new();
        for s in 0..base {
            int_exp.push(s as u16);
            int_off[s + 1] = int_exp.len() as u32;
        }
        for (k, &(a, b)) in parts.merges.iter().enumerate() {
            for p in [a as usize, b as usize] {
                let (lo, hi) = (int_off[p] as usize, int_off[p + 1] as usize);
                int_exp.extend_from_within(lo..hi);
            }
            int_off[base + k + 1] = int_exp.len() as u32;
        }
        let mut exp_off = vec![0u32];
        let mut exp = Vec::new();
        for s in 0..base + m {
            if out_id[s] != u32::MAX {
                exp.extend_from_slice(&int_exp[int_off[s] as usize..int_off[s + 1] as usize]);
                exp_off.push(exp.len() as u32);
            }
        }
        Ok(Dictionary {
            transform: parts.transform,
            merges: parts.merges,
            emitted: parts.emitted,
            out_id,
            exp_off,
            exp,
            rank,
        })
    }
}

fn base_of(transform: bool) -> usize {
    if transform {
        BASE_WITH_TRANSFORM
    } else {
        256
    }
}

/// The chunks of `data`, as byte ranges.
fn chunk_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    let mut start = 0;
    transform::chunk_ends(data, CHUNK)
        .into_iter()
        .map(|end| {
            let r = (start, end);
            start = end;
            r
        })
        .collect()
}

/// Evenly spaced chunks of about `limit` bytes in total (all chunks if the data fits).
fn sample(chunks: &[(usize, usize)], total: usize, limit: usize) -> Vec<(usize, usize)> {
    if total <= limit {
        return chunks.to_vec();
    }
    let want = (limit / CHUNK).max(1);
    let step = chunks.len().div_ceil(want);
    chunks.iter().copied().step_by(step.max(1)).collect()
}

/// Order-0 cost of the raw bytes of `chunks`, plus the identity dictionary's bytes.
fn identity_cost(lg: &Log2, data: &[u8], chunks: &[(usize, usize)]) -> u64 {
    let mut counts = vec![0u64; 256];
    for &(s, e) in chunks {
        for &b in &data[s..e] {
            counts[b as usize] += 1;
        }
    }
    lg.order0_cost(&counts) + ((3 * 8) << FRAC_BITS)
}

/// Trains a dictionary on `chunks` of `data` and estimates its cost there.
fn build_on(
    lg: &Log2,
    data: &[u8],
    chunks: &[(usize, usize)],
    transform: bool,
    max_vocab: usize,
    min_freq: u32,
) -> Built {
    let base = base_of(transform);
    let mut stream = Vec::new();
    let mut seg_starts = Vec::with_capacity(chunks.len());
    for &(s, e) in chunks {
        seg_starts.push(stream.len());
        if transform {
            transform::forward(&data[s..e], &mut stream);
        } else {
            stream.extend(data[s..e].iter().map(|&b| b as u16));
        }
    }
    let trained = bpe::train(lg, stream, &seg_starts, base, max_vocab, min_freq, bpe::MAX_SCAN);
    let mut counts = trained.counts;
    // Prune rare symbols; raise the threshold until the output alphabet fits (it does
    // once every merged symbol is pruned, as base <= max_vocab).
    let mut threshold = min_freq as u64;
    let emitted = loop {
        let mut c = counts.clone();
        let emitted = bpe::prune(&trained.merges, &mut c, base, threshold);
        if base + emitted.iter().filter(|&&e| e).count() <= max_vocab {
            counts = c;
            break emitted;
        }
        threshold += threshold / 8 + 1;
    };
    let dict = Dictionary::from_parts(dict::Parts { transform, merges: trained.merges, emitted })
        .expect("training makes valid dictionaries");
    let cost = lg.order0_cost(&counts) + ((dict.to_bytes().len() as u64 * 8) << FRAC_BITS);
    Built { dict, cost }
}

#[cfg(test)]
mod tests;
