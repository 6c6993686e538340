//! The byte context model: a paq/zpaq-style context mixer that outputs a full
//! distribution over the 256 next bytes.
//!
//! Each byte is seen as 8 binary decisions down a tree of 255 nodes (node 1 is the root,
//! node `k` has children `2k` and `2k + 1`, leaf `256 + c` is byte `c`). Every context
//! (the last 1, 2, 3, 4, 5, 6, 8 bytes, the current word, sparse contexts that skip the
//! last byte, the column of a fixed-length record, text contexts: the last three words,
//! the byte above in the previous line; for binary data the pixels around the next byte
//! in the rows above of a 1-bit image, ...) owns, in one shared hash table, a
//! probability counter for every node: the chance that the next bit is 1 given the
//! context and the bits of the byte so far, plus the context's last byte and how many
//! times in a row it came (its run), and a bit-history state per node (paq's
//! nonstationary counts of 0s and 1s with the last bit, [`BitHistory`]). Each context
//! enters the mixer twice: its counter as is, and its (run state, bit-history state)
//! through an adaptive map → observed probability.
//! Six online mixers turn the contexts' predictions (in the logistic domain,
//! `stretch(p) = ln(p / (1 − p))`) into one probability per node, with weight sets
//! chosen by the node and the state of the match model, by the last byte, by the byte
//! before, by the node and the last byte, by the depth and the match state, by the depth
//! and the position in a word; a final mixer per node and match state combines them, and two
//! adaptive probability maps (APM, "SSE": by the last byte, by a hash of the last two)
//! refine the result. Because the engine
//! codes whole bytes, every node is evaluated and the probability of byte `c` is the
//! product of the 8 node probabilities on its path:
//!
//! ```text
//! P(c) = Π_{d=0..8} p(bit_d(c) | node_d(c)),   node_0 = 1, node_{d+1} = 2·node_d + bit_d(c)
//! ```
//!
//! Learning touches only the 8 nodes of the byte that occurred (counters, mixer weights,
//! APM), as in paq.
//!
//! Memory is fixed by [`ByteCtxConfig`]: a hash table of `2^table_bits` slots of 64 bytes
//! (one nibble of nodes per slot: 15 counters and a tag), a match-model index of
//! `2^match_bits` entries and `2^history_bits` bytes of history in all. Nothing grows
//! with the input. A slot is looked up in a bucket of two; a missing context is inserted
//! on update only, replacing the slot of the bucket whose root counter has seen fewer
//! updates (ties: the first) — a deterministic rule.
//!
//! `B` lock-step streams share every table (updated in stream order at each step) and
//! one tally of record-length votes; each stream has its own history, context hashes,
//! record detector positions, match pointer and first mixer (the streams are different
//! parts of one input), and the match model may point into another stream's history.
//!
//! The frame's bytes may have gone through a reversible filter first
//! ([`ByteCtxConfig::filter`], [`crate::filter`]): the model codes what it is given.
//!
//! A neural model can join the mixture ([`ByteCtx::predict_with`]): its 256-way
//! distribution is turned into one probability per node (the mass of the node's right
//! subtree over the node's mass) and becomes one more mixer input.
//!
//! Arithmetic: counters, hashes and tables are integers; the mixer and the APM are IEEE
//! f32 add/mul/div in a fixed order, with `ln` and `sigmoid` from [`crate::kernels::scalar`];
//! so every CPU computes the same bits.
//!
//! ```
//! use nnz::model::bytectx::{ByteCtx, ByteCtxConfig};
//! use nnz::model::Predictor;
//! let mut m = ByteCtx::new(&ByteCtxConfig::preset("tiny").unwrap(), 1);
//! let mut probs = vec![0.0f32; 256];
//! for &c in b"abcabcabcabcabcabcabcabc" {
//!     m.predict(&mut probs);
//!     m.update(&[c as u16]);
//! }
//! m.predict(&mut probs);
//! assert!(probs[b'a' as usize] > 0.5);
//! ```

use super::primer::{self, PRIMER};
use super::{BitPredictor, Predictor};
use crate::filter::Filter;
use crate::kernels::scalar::{ln1, sigmoid1};
use anyhow::{bail, ensure, Result};

/// Number of hashed contexts (each with a counter per node): the general ones, then the
/// text contexts ([`Stream::text_contexts`]), then the block for binary data
/// ([`bin_contexts`]; without a trusted record length, two more text contexts), then one
/// of each stream's own.
const N_CTX_BASE: usize = 12;
const N_CTX_TEXT: usize = 4;
const N_CTX_BIN: usize = 4;
/// Contexts of one stream alone (see `advance`).
const N_CTX_LOCAL: usize = 1;
const N_CTX: usize = N_CTX_BASE + N_CTX_TEXT + N_CTX_BIN + N_CTX_LOCAL;
/// Where the block for binary data starts.
const BIN_CTX: usize = N_CTX_BASE + N_CTX_TEXT;
/// A context hash that stands for "no context": never stored, its inputs are 0. (Not 0:
/// the order-0 context's hash, `hash2(0, 0)`, is 0. A context that hashes to this value
/// by chance, once in 2^64, is merely not used: both directions agree.)
const NO_CTX: u64 = u64::MAX;
/// The adaptive map entry of an absent context: none, nothing to train.
const NO_MAP: u32 = u32::MAX;
/// The contexts for binary data need a record length of an image's row, at least
/// MIN_IMAGE_ROW bytes, or a shorter one whose votes come at least STRONG_VOTES times per
/// 4096 bytes lately ([`Records::strong`]): the detector finds periods everywhere (8 in
/// alice29.txt, 0.26 votes/kB), real records vote more often (kennedy.xls 1.9/kB). Context
/// model alone, fast: kennedy.xls (B = 16) 0.1340 with 16 (as with 3 or 8), 0.1520 with
/// rows of 16 or more only; alice29 (B = 1) 1.9797 with 3, 1.9772 with 8, 1.9758 with 16
/// (1.9759 without these contexts), book1 (B = 1) 2.1417 with 3, 2.1344 with 16 (2.1344).
const MIN_IMAGE_ROW: u64 = 16;
const STRONG_VOTES: u32 = 16;
/// Mixer inputs: the contexts' counters, the same through their adaptive maps, the
/// match model, the neural model, a bias, the neural model in the linear domain,
/// padding to a multiple of 8 (see [`dot`]).
const N_IN: usize = (2 * N_CTX + 4).div_ceil(8) * 8;
const IN_MAP: usize = N_CTX;
const IN_MATCH: usize = 2 * N_CTX;
const IN_NN: usize = 2 * N_CTX + 1;
const IN_BIAS: usize = 2 * N_CTX + 2;
/// The neural model's probability once more, in the linear domain: `(p − ½)·NN_LINEAR`
/// (it fills one of the padding slots, so it costs no time). The stretched input says
/// how sure the network is, this one lets a mixer trust its middle range more than its
/// extremes. Byte model `default` (LSTM mixed in): paper2 1.9527 → 1.9515 bits per byte
/// (1.9523 with a scale of 2, 1.9517 with 4), obj2 1.5967 → 1.5931, first 200 kB of
/// kennedy.xls 0.1359 → 0.1352.
const IN_NN_LINEAR: usize = 2 * N_CTX + 3;
const NN_LINEAR: f32 = 8.0;
/// Mixer weight sets: per node (256), match state (4) and how many of the orders 1-6
/// have been seen (0..=5).
const MATCH_STATES: usize = 4;
const ORDER_LEVELS: usize = 6;
/// Weight sets of the first mixer, per stream: the streams of a frame are different
/// parts of the input (a tar's PDF and its text), and a mixer of their own adapts to
/// each (first MB of silesia samba without its PDF, context model alone, B = 16: 1.2902
/// → 1.2563 bits per byte; pic, B = 8: 0.4326 → 0.4314; the second mixer, the final
/// mixer per stream too: worse on both).
const FIRST_SETS: usize = 256 * MATCH_STATES * ORDER_LEVELS;
/// Weight sets of the mixers after the first, shared by the streams: last byte × class
/// of the byte before (1024), byte before × class of the last (1024), node × last byte
/// (65536), depth × match state × orders seen × class of the last byte (768; without the
/// class: paper2 2.0293, asyoulik 2.1514; with: 2.0285, 2.1511), depth × word × class
/// (256).
const SHARED_SETS: usize = 2048 + 65536 + 768 + 256;
/// The mixer whose weights a fresh weight set of each mixer starts from: the fine sets
/// of the first (per node) from the fifth's (per depth), node × last byte from last byte.
const PARENT: [Option<usize>; N_MIXERS] = [Some(4), None, None, Some(1), None, None];
/// The second mixer (by the last byte) learns this much slower than the others.
const SLOW_MIXER: f32 = 0.3;
/// First-layer mixers: by node, match state and orders seen; by the last byte and the
/// class of the byte before ([`byte_class`]); by the byte before and the class of the
/// last; by node × the last byte; by depth, match state, orders seen and the class of the
/// last byte; by depth, the letters of the current word so far and the class of the last byte. Small
/// inputs need sets that learn fast: node × byte (65536 sets) leaves each set a dozen
/// updates on a 100 kB file. Context model alone, fast, real size: version 2 had node ×
/// last byte and node × the byte before after the first; by the last byte and by the
/// byte before instead: paper2 2.0711 → 2.0618, book1 2.0450 → 2.0579, obj2 1.6819 →
/// 1.6543, geo 3.5473 → 3.4673, kennedy.xls 0.1081 → 0.0936; + node × last byte: 2.0522,
/// 2.0485, 1.6406, 3.4791, 0.0937; + depth × match × orders (with the changes of the
/// same commit): 2.0456, 2.0483, 1.6255, 3.4521, 0.0886; + depth × word × class (after
/// the schedule change): paper2 2.0384 → 2.0335, asyoulik 2.1567 → 2.1536, book1 2.0418
/// → 2.0382, for 16% more time; the classes in the second and third (the final mixer per
/// match state too): paper2 2.0327 → 2.0293, asyoulik 2.1531 → 2.1514.
const N_MIXERS: usize = 6;
/// A weight set's learning rate after `n` updates, in units of the configured rate:
/// LR_FLOOR + LR_BOOST · LR_SETTLE / (LR_SETTLE + n). High at first, so that a fresh
/// set learns fast; low later, which text prefers (book1, byte contexts alone, `fast`:
/// a constant 0.02 gave 2.1273 bits per byte, 0.006 gave 2.1075 but obj2 1.8084 →
/// 1.8601; this schedule 2.1030 and 1.7970). Version 3 (five mixers, bit histories)
/// settles sooner and lower: floor 0.3 → 0.2, settle 256 → 32 (fast, real size: paper2
/// 2.0456 → 2.0384, asyoulik 2.1643 → 2.1567, alice29 1.9042 → 1.8963, book1 2.0483 →
/// 2.0418, obj2 1.6255 → 1.6334, geo 3.4521 → 3.4432, kennedy.xls 0.0886 → 0.0874;
/// settle 1024: worse, 16 or 64: about as 32, boost 6: worse).
const LR_FLOOR: f32 = 0.2;
const LR_BOOST: f32 = 3.0;
const LR_SETTLE: f32 = 32.0;
/// Learning rate of the final mixer (N_MIXERS inputs per node: the mixers' logits).
const FINAL_LR: f32 = 0.002;
/// Adaptive maps: per context, run state × bit-history state.
/// Run states of a context at a node (see [`run_state`]): none, or the bit its last
/// byte predicts × how many times in a row that byte was seen (1, 2, 3, 4+).
const RUN_STATES: usize = 9;
const MAP_SIZE: usize = BH_STATES * RUN_STATES;
/// The match model looks up the last MATCH_MIN bytes.
const MATCH_MIN: usize = 6;
/// Longest match length the match model tells apart.
const MATCH_MAX: usize = 63;
/// Node probabilities stay within [P_MIN, 1 − P_MIN].
const P_MIN: f32 = 1.0 / 65536.0;
/// APM: buckets over the stretched probability, and how far to trust it.
const APM_BUCKETS: usize = 33;
const APM_RATE: f32 = 0.02;
/// The second APM's contexts: a hash of the last two bytes, this many bits.
const APM2_BITS: u32 = 8;
/// Counters: 22-bit probability, 10-bit count.
const COUNT_BITS: u32 = 10;
const COUNT_MASK: u32 = (1 << COUNT_BITS) - 1;
const P_HALF: u32 = 1 << 21;
/// A fresh counter: p = 1/2, never updated.
const FRESH: u32 = P_HALF << COUNT_BITS;
/// The shortest primer a frame gets (when the preset has a primer): what the first
/// 8 KiB teach is worth most (paper2, `fast`: 1.9915 → 1.9821 with 8 KiB).
const MIN_PRIMER: u64 = 8192;
/// After priming, each weight set's update count is capped here, so that its learning
/// rate ([`LR_SETTLE`]) is still high when the input starts: the primer's texts are not
/// the input's (first 200 kB of silesia xml, `fast`: 0.2583 bits per byte with the
/// counts kept, 0.2568 capped at 32, 0.2570 at 8 / 0.2572 at 128; paper2 within 0.03%).
const PRIMED_UPDATES: u32 = 32;

/// The byte context model's sizes and rates; recorded in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct ByteCtxConfig {
    /// log2 of the number of 64-byte slots of the context hash table.
    pub table_bits: u8,
    /// log2 of the number of entries of the match model's index.
    pub match_bits: u8,
    /// log2 of the bytes of history kept, all streams together.
    pub history_bits: u8,
    /// Largest count of a counter: its adaptation rate never falls below 1/(limit+1.5).
    pub limit: u16,
    /// Learning rate of the mixer.
    pub lr: f32,
    /// Nodes the byte reaches with probability under 2^−prune get a cheap estimate
    /// instead of the full mixture (0: never). The distribution path only: the bit
    /// path evaluates the 8 nodes of the byte, always in full, and its configurations
    /// say 0 (so that `predict`, its slow reference, computes the same probabilities).
    pub prune: u8,
    /// Whether the engine codes the byte bit by bit down its path ([`Predictor::bits`];
    /// versions 5 and 6) or as one symbol of the 256-way distribution of the whole
    /// tree (versions 3 and 4, still decoded).
    pub bits: bool,
    /// The reversible filter the frame's bytes went through before coding (chosen per
    /// frame by the engine; the presets say none).
    pub filter: Filter,
    /// Bytes of the built-in [primer](crate::model::primer) the model learns from before
    /// the frame (through the frame's filter), then forgets the contexts of; 0: none.
    /// The presets' are a maximum: [`ByteCtxConfig::preset_for`] primes with no more
    /// than twice the input's length (and at least 8 KiB), so that a small input does not
    /// wait for the whole primer; the engine primes text frames only. Priming costs as
    /// much time as coding as many bytes with the context model: `fast` (the context
    /// model alone) takes 32 KiB, `default` (where the LSTM over bytes takes most of the
    /// time) all of it.
    ///
    /// Measured (byte model alone, `fast`, real size, primed with other texts before
    /// this primer was assembled from them: 64 KiB of bible / Milton / LoC proceedings
    /// / a third of each): paper2 1.9915 → 1.9776 / 1.9762 / 1.9677 / 1.9705, alice29
    /// 1.8307 → 1.8216 / 1.8214 / 1.8176 / 1.8189, paper4 2.4516 → 2.3798 (mix),
    /// xargs.1 2.5804 → 2.4715, progc 1.9533 → 1.9348, cp.html 1.9091 → 1.8885, news
    /// 1.8868 → 1.8824, book1 1.9941 → 1.9909; the mix of a third each, by its length: 8 / 16 / 32 /
    /// 64 / 128 KiB: paper2 1.9821 / 1.9780 / 1.9733 / 1.9705 / 1.9663. This primer
    /// (`bytes_bench --preset fast`, `BYTES_PRIMER` = 64 / 96 / 128 / 192 KiB): paper2
    /// 1.9723 / 1.9698 / 1.9694 / 1.9674, alice29 1.8188 / 1.8171 / 1.8161 / 1.8144,
    /// asyoulik 2.0548 / 2.0537 / 2.0531 / 2.0520; with the LSTM (`default`): paper2
    /// 1.9710 unprimed, 1.9527 with 81 KiB, 1.9498 with 192 KiB. Texts unlike the
    /// primer lose a little at first: the first 200 kB of silesia xml 0.2564 → 0.2568,
    /// of reymont (Polish) 1.2767 → 1.2773 (with the learning-rate counts capped at
    /// [`PRIMED_UPDATES`]; kept whole: 0.2583 and 1.2793).
    pub primer: u32,
}

impl ByteCtxConfig {
    pub const PRESETS: [&'static str; 3] = ["tiny", "fast", "default"];
    /// Serialized size.
    pub const BYTES: usize = 12;
    /// Version 2: run states in the adaptive maps, text contexts, three mixers with a
    /// learning-rate schedule, a second APM, the filter and the contexts for binary data
    /// (version 1 files are refused). Version 3: bit-history states, mixers by the last
    /// byte, the byte before (not per node) and node × last byte; version 2 files are
    /// refused. Version 4 is version 3 with a primer: the same 12 bytes, then the
    /// primer's length and checksum ([`crate::model::primer::check`]); a configuration
    /// without a primer is written as version 3, which reads as before. Versions 5 and
    /// 6 are 3 and 4 coded bit by bit ([`ByteCtxConfig::bits`]): the same model,
    /// unpruned, and the same layout.
    const VERSION: u8 = 3;
    const VERSION_PRIMED: u8 = 4;
    const VERSION_BITS: u8 = 5;
    const VERSION_BITS_PRIMED: u8 = 6;
    /// Serialized size with a primer.
    pub const BYTES_PRIMED: usize = 20;

    /// The serialized size of a configuration whose first byte is `version` (None: a
    /// version this nnz does not read).
    pub fn encoded_len(version: u8) -> Option<usize> {
        match version {
            Self::VERSION | Self::VERSION_BITS => Some(Self::BYTES),
            Self::VERSION_PRIMED | Self::VERSION_BITS_PRIMED => Some(Self::BYTES_PRIMED),
            _ => None,
        }
    }

    /// `tiny`: 256 KiB of tables (tests); `fast`: 256 MiB; `default`: 512 MiB.
    pub fn preset(name: &str) -> Result<ByteCtxConfig> {
        let base = ByteCtxConfig {
            table_bits: 12,
            match_bits: 12,
            history_bits: 16,
            limit: 255,
            lr: 0.02,
            prune: 0,
            filter: Filter::None,
            primer: 0,
            bits: true,
        };
        Ok(match name {
            "tiny" => ByteCtxConfig { primer: 4096, ..base },
            "fast" => ByteCtxConfig { table_bits: 22, match_bits: 20, history_bits: 24, primer: 32768, ..base },
            "default" | "large" => {
                ByteCtxConfig { table_bits: 23, match_bits: 22, history_bits: 26, primer: PRIMER.len() as u32, ..base }
            }
            _ => bail!("unknown byte model preset {name:?}; expected one of {:?}", Self::PRESETS),
        })
    }

    /// The preset, with tables no larger than a frame of `len` bytes needs (small inputs
    /// do not allocate the full tables; the header records the result).
    pub fn preset_for(name: &str, len: u64) -> Result<ByteCtxConfig> {
        let mut cfg = Self::preset(name)?;
        // The table: about 2 slots per context occurrence (16 contexts, 2 slots each:
        // most are new at the high orders); a full table costs much (book1, `fast`
        // alone: 2^20 slots 2.0838 bits per byte, 2^21 2.0597, 2^22 2.0467).
        let want_table = (64 - len.max(1).leading_zeros()) as u8 + 5;
        cfg.table_bits = cfg.table_bits.min(want_table.max(10));
        // The match index and history: about one entry per byte, rounded up.
        let want = (64 - len.max(1).leading_zeros()) as u8 + 3;
        cfg.match_bits = cfg.match_bits.min(want.max(10));
        cfg.history_bits = cfg.history_bits.min(want.max(12));
        cfg.primer = (cfg.primer as u64).min(len.saturating_mul(2).max(MIN_PRIMER)) as u32;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!((10..=26).contains(&self.table_bits), "byte model: table_bits {} not in 10..=26", self.table_bits);
        ensure!((10..=28).contains(&self.match_bits), "byte model: match_bits {} not in 10..=28", self.match_bits);
        ensure!(
            (12..=30).contains(&self.history_bits),
            "byte model: history_bits {} not in 12..=30",
            self.history_bits
        );
        ensure!((1..=1023).contains(&self.limit), "byte model: limit {} not in 1..=1023", self.limit);
        ensure!(self.prune <= 24, "byte model: prune {} not in 0..=24", self.prune);
        ensure!(!self.bits || self.prune == 0, "byte model: the bit path prunes nothing, not {}", self.prune);
        ensure!(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0, "byte model: learning rate {}", self.lr);
        ensure!(
            self.primer as usize <= PRIMER.len(),
            "byte model: a primer of {} bytes; this nnz has {}",
            self.primer,
            PRIMER.len()
        );
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let version = match (self.bits, self.primer != 0) {
            (false, false) => Self::VERSION,
            (false, true) => Self::VERSION_PRIMED,
            (true, false) => Self::VERSION_BITS,
            (true, true) => Self::VERSION_BITS_PRIMED,
        };
        let mut out = vec![version, self.table_bits, self.match_bits, self.history_bits];
        out.extend_from_slice(&self.limit.to_le_bytes());
        out.extend_from_slice(&self.lr.to_bits().to_le_bytes());
        out.push(self.prune);
        out.push(self.filter.to_byte());
        if self.primer != 0 {
            out.extend_from_slice(&self.primer.to_le_bytes());
            out.extend_from_slice(&primer::check(self.primer as usize).to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<ByteCtxConfig> {
        ensure!(!b.is_empty(), "byte model parameters: none");
        let Some(len) = Self::encoded_len(b[0]) else {
            bail!(
                "byte model version {} (this nnz reads versions {} to {}): the file was written by another \
                 version of nnz",
                b[0],
                Self::VERSION,
                Self::VERSION_BITS_PRIMED
            );
        };
        ensure!(b.len() == len, "byte model parameters: {} bytes, expected {len}", b.len());
        let mut primer = 0;
        if b[0] == Self::VERSION_PRIMED || b[0] == Self::VERSION_BITS_PRIMED {
            primer = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
            ensure!(
                primer != 0 && primer as usize <= PRIMER.len(),
                "byte model: a primer of {primer} bytes (this nnz's has {}): the file was written by another \
                 version of nnz",
                PRIMER.len()
            );
            let check = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
            ensure!(
                check == primer::check(primer as usize),
                "byte model: the file was primed with a text this nnz does not have: it was written by another \
                 version of nnz"
            );
        }
        let cfg = ByteCtxConfig {
            table_bits: b[1],
            match_bits: b[2],
            history_bits: b[3],
            limit: u16::from_le_bytes([b[4], b[5]]),
            lr: f32::from_bits(u32::from_le_bytes([b[6], b[7], b[8], b[9]])),
            prune: b[10],
            filter: Filter::from_byte(b[11])?,
            primer,
            bits: b[0] >= Self::VERSION_BITS,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A 64-byte slot: `[tag, 15 counters]` for the nodes of one nibble.
type Slot = [u32; 16];

/// Mixes a 64-bit value well (a bijection; SplitMix64's finalizer).
#[inline]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn hash2(a: u64, b: u64) -> u64 {
    mix64(a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b)
}

/// The per-stream state: history and the contexts derived from it.
struct Stream {
    /// Ring buffer of this stream's last bytes.
    hist: Vec<u8>,
    /// Bytes seen so far.
    n: u64,
    /// The last 8 bytes, most recent in the low byte.
    c8: u64,
    /// Hash of the current word (letters, lower-cased), 0 between words.
    word: u64,
    /// Letters in the current word so far.
    word_len: u32,
    /// Hash of the word before it.
    word_prev: u64,
    /// Text contexts: the word before `word_prev`, where the current line starts
    /// (position of the byte after the last newline) and where the line before started.
    word_prev2: u64,
    line_start: u64,
    prev_line_start: u64,
    /// Context hashes for the next byte, one per context.
    ctx: [u64; N_CTX],
    /// Record detector: the last 4 positions of each byte value.
    cpos: Vec<[u64; 4]>,
    /// Match model: global position of the predicted byte, and the match length (0: none).
    match_ptr: u64,
    match_len: usize,
    /// What the last prediction computed, for learning.
    scratch: Scratch,
    /// The byte the match model predicts at this step, if any.
    expected: Option<u8>,
}

/// What a prediction leaves for learning, per node of the byte tree.
#[derive(Default)]
struct Scratch {
    /// Whether the node got the full mixture (or the cheap estimate).
    full: Vec<bool>,
    /// Mixer inputs, N_IN per node.
    inputs: Vec<f32>,
    /// Per node: (weight set, logit, probability) of each first-layer mixer, and the
    /// final mixer's probability.
    mixers: Vec<[(u32, f32, f32); N_MIXERS]>,
    p_mix: Vec<f32>,
    apm_at: Vec<(u32, f32)>,
    /// The second APM's entry (same interpolation weight as the first's).
    apm2_at: Vec<u32>,
    /// Per node and context: the adaptive map entry used (index into `maps`).
    map_at: Vec<u32>,
}

/// What every node of one prediction shares.
struct NodeEnv {
    /// Whether a network's distribution is mixed in, and its subtree masses.
    nn: bool,
    nn_sums: [f32; 512],
    expected: Option<u8>,
    len: usize,
    match_st: f32,
    orders_seen: usize,
    /// The last byte.
    c1: usize,
    /// The second APM's context (hash of the last two bytes).
    h2: usize,
    /// The byte before the last.
    c2: usize,
    /// The sixth mixer's selector: letters of the current word (0..=7) × class of the
    /// last byte (4).
    wsel: usize,
    /// Bit i: context i is absent ([`NO_CTX`]).
    absent: u32,
    /// The first weight set of this stream's first mixer, and of the shared mixers.
    set_base: usize,
    second_base: usize,
}

impl Stream {
    fn new(hist_len: usize) -> Stream {
        Stream {
            hist: vec![0; hist_len],
            n: 0,
            c8: 0,
            word: 0,
            word_len: 0,
            word_prev: 0,
            word_prev2: 0,
            line_start: 0,
            prev_line_start: 0,
            ctx: [0; N_CTX],
            cpos: vec![[0; 4]; 256],
            match_ptr: 0,
            match_len: 0,
            scratch: Scratch {
                full: vec![false; 256],
                inputs: vec![0.0; 256 * N_IN],
                mixers: vec![[(0, 0.0, 0.5); N_MIXERS]; 256],
                p_mix: vec![0.5; 256],
                apm_at: vec![(0, 0.0); 256],
                apm2_at: vec![0; 256],
                map_at: vec![0; 256 * N_CTX],
            },
            expected: None,
        }
    }

    /// The byte `back` positions before the next one (1 = the last), 0 before the start
    /// or beyond the history.
    #[inline]
    fn back(&self, back: u64) -> u8 {
        if back == 0 || back > self.n || back > self.hist.len() as u64 {
            return 0;
        }
        let mask = self.hist.len() as u64 - 1;
        self.hist[((self.n - back) & mask) as usize]
    }

    /// Text contexts, after byte `c` was appended: ctx[N_CTX_BASE..BIN_CTX].
    fn text_contexts(&mut self, c: u8) {
        let pos = self.n;
        if c == b'\n' {
            self.prev_line_start = self.line_start;
            self.line_start = pos;
        }
        let col = pos - self.line_start;
        // The byte at the same column of the line above (0 past its end).
        let q = self.prev_line_start + col;
        let above = if q < self.line_start { self.back(pos - q) as u64 } else { 0 };
        let c8 = self.c8;
        let t = &mut self.ctx[N_CTX_BASE..BIN_CTX];
        t[0] = hash2(32, hash2(self.word, hash2(self.word_prev, self.word_prev2)));
        t[1] = hash2(33, c8);
        t[2] = hash2(34, above | (c8 & 0xff) << 8 | col.min(255) << 16);
        t[3] = hash2(35, c8 & 0xff_ffff_ffff);
    }
}

/// The record lengths a record detector has seen: the two in competition and how often
/// each was seen.
#[derive(Clone, Copy, Default)]
struct Records {
    rlen: [u64; 2],
    rcount: [u32; 2],
    /// The recent votes for the record length in force, a decaying sum (16-bit fraction).
    strength: u32,
}

impl Records {
    /// One more vote for record length `r`.
    fn vote(&mut self, r: u64) {
        if r == self.rlen[0] {
            self.rcount[0] += 1;
        } else if r == self.rlen[1] {
            self.rcount[1] += 1;
        } else if self.rcount[0] > self.rcount[1] {
            self.rlen[1] = r;
            self.rcount[1] = 1;
        } else {
            self.rlen[0] = r;
            self.rcount[0] = 1;
        }
        if self.best().0 == r {
            self.strength += 1 << 16;
        }
    }

    /// One byte later: the recent votes decay by 2^−12.
    fn tick(&mut self) {
        self.strength -= self.strength >> 12;
    }

    /// Whether the record length in force gets votes at least STRONG_VOTES times per
    /// 4096 bytes lately.
    fn strong(&self) -> bool {
        self.strength >= STRONG_VOTES << 16
    }

    /// The record length in force, 0 if none, and its votes.
    fn best(&self) -> (u64, u32) {
        let best = if self.rcount[0] >= self.rcount[1] { 0 } else { 1 };
        if self.rcount[best] >= 2 {
            (self.rlen[best], self.rcount[best])
        } else {
            (0, 0)
        }
    }
}

/// The stretch of every 12-bit probability: `ln(p / (1 − p))` at the bucket's centre.
fn stretch_table() -> Vec<f32> {
    (0..4096)
        .map(|i| {
            let p = (i as f32 + 0.5) / 4096.0;
            ln1(p) - ln1(1.0 - p)
        })
        .collect()
}

/// `sigmoid(x)` for x in [−16, 16] by linear interpolation in a table of our own
/// sigmoid (the exact function is 4× slower here, where it runs 765 times a byte).
struct Squash {
    table: Vec<f32>,
}

impl Squash {
    /// Table points per unit of x.
    const STEPS: f32 = 64.0;

    fn new() -> Squash {
        Squash { table: (0..=2049).map(|i| sigmoid1((i as f32 - 1024.0) / Self::STEPS)).collect() }
    }

    #[inline]
    fn get(&self, x: f32) -> f32 {
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
fn dot(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (wc, xc) in w.chunks_exact(8).zip(x.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += wc[l] * xc[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// The update rate of a counter that has seen `n` bits: 65536 / (n + 1.5).
fn rate_table() -> Vec<u32> {
    (0..=COUNT_MASK).map(|n| 131_072 / (2 * n + 3)).collect()
}

/// Nodes of the byte tree reached from the second-nibble slot of first nibble `hi`,
/// for local node `j` in 1..16 (the local tree's own numbering).
#[inline]
fn second_nibble_node(hi: usize, j: usize) -> usize {
    let d = (usize::BITS - 1 - j.leading_zeros()) as usize;
    ((16 + hi) << d) | (j - (1 << d))
}

/// The byte context model over `B` streams (see the module docs).
pub struct ByteCtx {
    cfg: ByteCtxConfig,
    table: Vec<Slot>,
    /// Per slot (used for first-nibble slots only): bits 0-15, the first nibbles seen
    /// after this context (which second-nibble slots exist); 16-23, the last byte seen;
    /// 24-31, how many times in a row it was seen.
    meta: Vec<u32>,
    /// Adaptive maps (indirect modelling): per context, a counter's (count, probability)
    /// → the probability that its bit is 1 as actually observed. A context seen twice,
    /// both times with the same bit, may deserve 0.99 rather than its counter's 0.9.
    maps: Vec<u32>,
    /// Per slot, the bit-history state ([`BitHistory`]) of each of its 15 nodes
    /// (byte 0 unused): parallel to `table`, reset with it.
    states: Vec<[u8; 16]>,
    /// The bit-history state machine.
    bh: BitHistory,
    slot_mask: usize,
    /// Match model index: hash of the last MATCH_MIN bytes → global position + 1 (0: empty).
    match_index: Vec<u64>,
    /// One counter per node, no context: the cheap estimate of pruned nodes.
    node_counters: Vec<u32>,
    /// Mixer weights, N_IN per set: each stream's first mixer's sets (node, match state,
    /// orders seen), then the other mixers' sets, shared ([`SHARED_SETS`]).
    weights: Vec<f32>,
    /// Updates each weight set has had (saturating), for its learning-rate schedule.
    set_updates: Vec<u32>,
    /// Final mixer: per node and match state, the weights of the first-layer mixers'
    /// logits (per node alone: paper2 2.0335, asyoulik 2.1536; with the match state:
    /// 2.0327, 2.1531).
    final_weights: Vec<[f32; N_MIXERS]>,
    /// Match model: counters of "the expected bit is right", by match length.
    match_counters: Vec<u32>,
    /// APM over (order-1 context, node) × stretch buckets.
    apm: Vec<f32>,
    /// APM over (hash of the last two bytes, node) × stretch buckets.
    apm2: Vec<f32>,
    streams: Vec<Stream>,
    /// The record lengths all streams' record detectors voted for.
    records: Records,
    stretch: Vec<f32>,
    squash: Squash,
    rate: Vec<u32>,
    /// The bit path's place in each stream's byte ([`BitPredictor`]).
    path: Vec<PathState>,
    /// The network's `B × 256` distribution for the bit path's step (empty: none).
    nn: Vec<f32>,
}

/// Where the bit path is in a stream's byte: the node, what the byte's nodes share, and
/// the slots of the nibble being coded.
struct PathState {
    /// The node the next bit is coded at: 1 (a new byte) to 255.
    k: usize,
    env: NodeEnv,
    first: [Option<usize>; N_CTX],
    second: [Option<usize>; N_CTX],
    metas: [u32; N_CTX],
    /// Whether this step coded a byte of the stream.
    coded: bool,
}

const EMPTY_SLOT: Slot =
    [0, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH, FRESH];

impl ByteCtx {
    /// A model of `batch` streams sharing their statistics.
    pub fn new(cfg: &ByteCtxConfig, batch: usize) -> ByteCtx {
        assert!(batch >= 1);
        cfg.validate().expect("a validated byte model configuration");
        // Each stream's ring buffer: a power of two, the history shared out.
        let mut per_stream = 1usize << 10;
        while per_stream * 2 * batch <= 1 << cfg.history_bits {
            per_stream *= 2;
        }
        // APM bucket i sits at stretch (i − 16) / 2 and starts as the identity.
        let apm_x: [f32; APM_BUCKETS] = std::array::from_fn(|i| (i as f32 - 16.0) * 0.5);
        let mut apm = vec![0.0f32; 256 * 256 * APM_BUCKETS];
        for row in apm.chunks_exact_mut(APM_BUCKETS) {
            for (v, &x) in row.iter_mut().zip(&apm_x) {
                *v = sigmoid1(x);
            }
        }
        let mut weights = vec![0.0f32; (batch * FIRST_SETS + SHARED_SETS) * N_IN];
        for w in weights.chunks_exact_mut(N_IN) {
            w[..N_CTX].fill(0.07);
            w[IN_MAP..IN_MAP + N_CTX].fill(0.07);
            w[IN_MATCH] = 0.5;
            w[IN_NN] = 0.5;
        }
        let apm2 = apm.chunks_exact(APM_BUCKETS).next().unwrap_or(&[]).repeat(256 << APM2_BITS);
        let bh = BitHistory::new();
        let mut model = ByteCtx {
            table: super::huge::vec([0u32; 16], 1 << cfg.table_bits),
            meta: super::huge::vec(0, 1 << cfg.table_bits),
            maps: (0..N_CTX * MAP_SIZE).map(|i| bh.initial_map(i % BH_STATES)).collect(),
            states: super::huge::vec([0u8; 16], 1 << cfg.table_bits),
            bh,
            slot_mask: (1 << cfg.table_bits) - 1,
            match_index: super::huge::vec(0, 1 << cfg.match_bits),
            set_updates: vec![0; weights.len() / N_IN],
            weights,
            final_weights: vec![[1.0 / N_MIXERS as f32; N_MIXERS]; 256 * MATCH_STATES],
            node_counters: vec![FRESH; 256],
            match_counters: vec![FRESH; 64 * 2],
            apm,
            apm2,
            streams: (0..batch).map(|_| Stream::new(per_stream)).collect(),
            records: Records::default(),
            stretch: stretch_table(),
            squash: Squash::new(),
            rate: rate_table(),
            path: Vec::new(),
            nn: Vec::new(),
            cfg: cfg.clone(),
        };
        model.path = (0..batch)
            .map(|_| PathState {
                k: 1,
                env: model.new_env(),
                first: [None; N_CTX],
                second: [None; N_CTX],
                metas: [0; N_CTX],
                coded: false,
            })
            .collect();
        if cfg.primer != 0 {
            model.prime();
        }
        model
    }

    /// Learns the first `cfg.primer` bytes of the [primer](crate::model::primer),
    /// through the frame's filter, cut into one piece per stream coded in lock step as
    /// an input is; then forgets what they said — the hashed contexts, the match
    /// model's index, the streams' histories, the record votes — and keeps how to
    /// predict: the mixers' weights (their update counts capped at [`PRIMED_UPDATES`]),
    /// the final mixer, the adaptive maps, the APMs and the context-free counters.
    fn prime(&mut self) {
        let text = self.cfg.filter.forward(&PRIMER[..self.cfg.primer as usize]);
        let batch = self.streams.len();
        let steps = text.len() / batch;
        let mut probs = vec![0.0f32; batch * 256];
        let mut step = vec![0u16; batch];
        for t in 0..steps {
            for (b, sym) in step.iter_mut().enumerate() {
                *sym = text[b * steps + t] as u16;
            }
            if self.cfg.bits {
                for (b, &c) in step.iter().enumerate() {
                    for d in (0..8).rev() {
                        self.p1(b);
                        self.update_bit(b, (c >> d) as u32 & 1);
                    }
                }
                self.end_step(&step);
            } else {
                self.predict_with(None, &mut probs);
                self.update(&step);
            }
        }
        self.table.fill([0; 16]);
        self.meta.fill(0);
        self.states.fill([0; 16]);
        self.match_index.fill(0);
        let hist_len = self.streams[0].hist.len();
        self.streams = (0..batch).map(|_| Stream::new(hist_len)).collect();
        self.records = Records::default();
        for n in &mut self.set_updates {
            *n = (*n).min(PRIMED_UPDATES);
        }
    }

    /// Bytes of memory the tables take (fixed at construction).
    pub fn memory_bytes(&self) -> usize {
        self.table.len() * (68 + 16)
            + self.match_index.len() * 8
            + self.weights.len() * 4
            + self.apm.len() * 4
            + self.streams.iter().map(|s| s.hist.len() + s.scratch.inputs.len() * 4 + 256 * 80).sum::<usize>()
    }

    /// The slot holding context hash `h`, if present.
    #[inline]
    fn find(&self, h: u64) -> Option<usize> {
        let tag = (h as u32) | 1;
        let i = ((h >> 32) as usize) & self.slot_mask & !1;
        if self.table[i][0] == tag {
            Some(i)
        } else if self.table[i + 1][0] == tag {
            Some(i + 1)
        } else {
            None
        }
    }

    /// Asks the CPU to fetch the bucket of context hash `h` ahead of [`ByteCtx::find`]
    /// (a hint: it changes no result).
    #[inline]
    fn prefetch_slot(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let i = ((h >> 32) as usize) & self.slot_mask & !1;
            // SAFETY: prefetching has no effect on memory; the address is in bounds.
            unsafe {
                _mm_prefetch(self.table[i..].as_ptr() as *const i8, _MM_HINT_T0);
                _mm_prefetch(self.states[i..].as_ptr() as *const i8, _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// The slot holding `h`, inserting it (fresh counters) over the bucket's less used
    /// slot if absent.
    fn find_or_insert(&mut self, h: u64) -> usize {
        if let Some(i) = self.find(h) {
            return i;
        }
        let tag = (h as u32) | 1;
        let i = ((h >> 32) as usize) & self.slot_mask & !1;
        let used = |s: &Slot| if s[0] == 0 { 0 } else { 1 + (s[1] & COUNT_MASK) };
        let victim = if used(&self.table[i + 1]) < used(&self.table[i]) { i + 1 } else { i };
        let mut slot = EMPTY_SLOT;
        slot[0] = tag;
        self.table[victim] = slot;
        self.meta[victim] = 0;
        self.states[victim] = [0; 16];
        victim
    }

    #[inline]
    fn train(counter: &mut u32, bit: u32, rate: &[u32], limit: u32) {
        let n = *counter & COUNT_MASK;
        let p = (*counter >> COUNT_BITS) as i64;
        let target = if bit != 0 { (1i64 << 22) - 1 } else { 0 };
        let p = p + (((target - p) * rate[n as usize] as i64) >> 16);
        let n = if n < limit { n + 1 } else { n };
        *counter = ((p as u32) << COUNT_BITS) | n;
    }

    /// The mixer's weight set for node `k` of a stream whose match model expects `expected`.
    #[inline]
    fn match_state(expected: Option<u8>, len: usize, k: usize) -> (usize, Option<u32>) {
        match expected {
            None => (0, None),
            Some(e) => {
                let d = (usize::BITS - 1 - k.leading_zeros()) as usize;
                if (256 + e as usize) >> (8 - d) == k {
                    let bit = ((e >> (7 - d)) & 1) as u32;
                    (if len < 16 { 1 } else { 2 }, Some(bit))
                } else {
                    (3, None)
                }
            }
        }
    }

    /// The mixed probability that the bit at node `k` is 1: gathers the inputs (the
    /// counters at local node `j` of `slots`, their maps, match, network, bias), runs
    /// the first-layer mixers and the final one, then the APM. Records what learning needs.
    #[allow(clippy::too_many_arguments)]
    fn full_node(
        &self,
        k: usize,
        j: usize,
        slots: &[Option<usize>; N_CTX],
        metas: &[u32; N_CTX],
        env: &NodeEnv,
        sc: &mut Scratch,
    ) -> f32 {
        let x = &mut sc.inputs[k * N_IN..(k + 1) * N_IN];
        for (i, slot) in slots.iter().enumerate() {
            let c = slot.map_or(FRESH, |s| self.table[s][j]);
            let st = slot.map_or(0, |s| self.states[s][j]) as usize;
            let at = i * MAP_SIZE + run_state(metas[i], k) * BH_STATES + st;
            sc.map_at[k * N_CTX + i] = at as u32;
            x[i] = self.stretch[(c >> (COUNT_BITS + 10)) as usize];
            x[IN_MAP + i] = self.stretch[(self.maps[at] >> (COUNT_BITS + 10)) as usize];
        }
        // Absent contexts (NO_CTX) say nothing, not even through their maps.
        for i in 0..N_CTX {
            if env.absent >> i & 1 != 0 {
                sc.map_at[k * N_CTX + i] = NO_MAP;
                x[i] = 0.0;
                x[IN_MAP + i] = 0.0;
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
        for (m, &set) in sets.iter().enumerate() {
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
        let d = ((v[0] * logits[0] + v[1] * logits[1])
            + (v[2] * logits[2] + v[3] * logits[3])
            + (v[4] * logits[4] + v[5] * logits[5]))
            .clamp(-15.0, 15.0);
        let p = self.squash.get(d).clamp(P_MIN, 1.0 - P_MIN);
        sc.p_mix[k] = p;
        // APM: interpolate between the two buckets around `d`.
        let pos = ((d + 8.0) * 2.0).clamp(0.0, (APM_BUCKETS - 1) as f32 - 0.001);
        let lo = pos as usize; // pos ≥ 0: truncation is floor
        let frac = pos - lo as f32;
        let row = (env.c1 * 256 + k) * APM_BUCKETS;
        let a = self.apm[row + lo] * (1.0 - frac) + self.apm[row + lo + 1] * frac;
        sc.apm_at[k] = ((row + lo) as u32, frac);
        let row2 = (env.h2 * 256 + k) * APM_BUCKETS;
        let a2 = self.apm2[row2 + lo] * (1.0 - frac) + self.apm2[row2 + lo + 1] * frac;
        sc.apm2_at[k] = (row2 + lo) as u32;
        sc.full[k] = true;
        ((p + 1.5 * a + 1.5 * a2) * 0.25).clamp(P_MIN, 1.0 - P_MIN)
    }

    /// The weight sets of node `k`'s mixers (see [`ByteCtx::full_node`]).
    #[inline]
    fn weight_sets(env: &NodeEnv, k: usize) -> [usize; N_MIXERS] {
        let (state, _) = Self::match_state(env.expected, env.len, k);
        let class1 = byte_class(env.c1 as u8);
        [
            env.set_base + k + 256 * (state + MATCH_STATES * env.orders_seen),
            env.second_base + env.c1 + 256 * byte_class(env.c2 as u8),
            env.second_base + 1024 + env.c2 + 256 * class1,
            env.second_base + 2048 + k + 256 * env.c1,
            env.second_base + 2048 + 65536 + depth(k) + 8 * (state + MATCH_STATES * env.orders_seen + 24 * class1),
            env.second_base + 2048 + 65536 + 768 + depth(k) + 8 * env.wsel,
        ]
    }

    /// Asks the CPU to fetch node `k`'s APM rows and mixer weights ahead of use: they
    /// are scattered over megabytes, and waiting for them was a fifth of the time of
    /// [`ByteCtx::full_node`] (book1, `fast`: 17% less time with this hint). A hint
    /// only: it changes no result.
    #[inline]
    fn prefetch_node(&self, env: &NodeEnv, k: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let fetch = |v: &[f32]| {
                for at in (0..v.len()).step_by(16) {
                    // SAFETY: prefetching has no effect on memory; the address is in bounds.
                    unsafe { _mm_prefetch(v[at..].as_ptr() as *const i8, _MM_HINT_T0) };
                }
            };
            for (table, row) in [(&self.apm, env.c1 * 256 + k), (&self.apm2, env.h2 * 256 + k)] {
                fetch(&table[row * APM_BUCKETS..(row + 1) * APM_BUCKETS]);
            }
            for set in Self::weight_sets(env, k) {
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
            let mut metas = [0u32; N_CTX];
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
                        ((c >> COUNT_BITS) as f32 * (1.0 / (1u32 << 22) as f32)).clamp(P_MIN, 1.0 - P_MIN)
                    };
                    split(&mut mass, k, p);
                }
            }
            probs[b * 256..(b + 1) * 256].copy_from_slice(&mass[256..]);
            self.streams[b].scratch = sc;
        }
    }

    /// A [`NodeEnv`] to be filled by [`ByteCtx::byte_env`].
    fn new_env(&self) -> NodeEnv {
        NodeEnv {
            nn: false,
            nn_sums: [0.0; 512],
            expected: None,
            len: 0,
            match_st: 0.0,
            orders_seen: 0,
            c1: 0,
            h2: 0,
            c2: 0,
            wsel: 0,
            absent: 0,
            set_base: 0,
            second_base: self.streams.len() * FIRST_SETS,
        }
    }

    /// What every node of stream `b`'s next byte shares: fills `env`, and the
    /// first-nibble slots of the contexts (`first`, None where absent or unseen) with
    /// their meta words.
    fn byte_env(
        &self,
        b: usize,
        nn: Option<&[f32]>,
        env: &mut NodeEnv,
        first: &mut [Option<usize>; N_CTX],
        metas: &mut [u32; N_CTX],
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
        env.h2 = (hash2(40, s.c8 & 0xffff) >> (64 - APM2_BITS)) as usize;
        env.set_base = b * FIRST_SETS;
        env.orders_seen = 0;
        env.absent = (0..N_CTX).filter(|&i| ctx[i] == NO_CTX).fold(0, |m, i| m | 1 << i);
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

    /// The second-nibble slots of contexts `ctx` after first nibble `hi`: only the first
    /// nibbles a context has seen (its meta word says which) have one.
    fn second_slots(&self, ctx: &[u64; N_CTX], metas: &[u32; N_CTX], hi: usize) -> [Option<usize>; N_CTX] {
        let hashes: [u64; N_CTX] = std::array::from_fn(|i| hash2(ctx[i], hi as u64 + 1));
        for i in 0..N_CTX {
            if metas[i] >> hi & 1 != 0 {
                self.prefetch_slot(hashes[i]);
            }
        }
        let mut second = [None; N_CTX];
        for i in 0..N_CTX {
            if metas[i] >> hi & 1 != 0 {
                second[i] = self.find(hashes[i]);
            }
        }
        second
    }

    /// Learns byte `c` of stream `b`: counters, mixer, APM on the byte's 8 nodes.
    fn learn(&mut self, b: usize, c: u8) {
        let limit = self.cfg.limit as u32;
        for i in 0..N_CTX {
            let h = self.streams[b].ctx[i];
            if h == NO_CTX {
                continue;
            }
            let first = self.find_or_insert(h);
            // The nibbles seen, the last byte and its run length (see [`run_state`]).
            let m = self.meta[first];
            let run = if m >> 24 != 0 && (m >> 16) & 0xff == c as u32 { ((m >> 24) + 1).min(255) } else { 1 };
            self.meta[first] = (m & 0xffff) | 1 << (c >> 4) | (c as u32) << 16 | run << 24;
            let mut j = 1usize;
            for d in 0..4 {
                let bit = ((c >> (7 - d)) & 1) as u32;
                Self::train(&mut self.table[first][j], bit, &self.rate, limit);
                let st = &mut self.states[first][j];
                *st = self.bh.next(*st, bit);
                j = 2 * j + bit as usize;
            }
            let second = self.find_or_insert(hash2(h, (c >> 4) as u64 + 1));
            let mut j = 1usize;
            for d in 4..8 {
                let bit = ((c >> (7 - d)) & 1) as u32;
                Self::train(&mut self.table[second][j], bit, &self.rate, limit);
                let st = &mut self.states[second][j];
                *st = self.bh.next(*st, bit);
                j = 2 * j + bit as usize;
            }
        }
        let mut k = 1usize;
        for d in 0..8 {
            let bit = ((c >> (7 - d)) & 1) as u32;
            Self::train(&mut self.node_counters[k], bit, &self.rate, limit);
            if self.streams[b].scratch.full[k] {
                self.learn_node(b, k, bit);
            }
            k = 2 * k + bit as usize;
        }
    }

    /// Learns `bit` at node `k` of stream `b` from what its prediction recorded: the
    /// mixers, the final mixer, the APMs, the adaptive maps, the match model's counter.
    fn learn_node(&mut self, b: usize, k: usize, bit: u32) {
        let lr = self.cfg.lr;
        let y = bit as f32;
        let s = &self.streams[b].scratch;
        for (m, &(set, _, p)) in s.mixers[k].iter().enumerate() {
            let set = set as usize;
            let n = self.set_updates[set];
            self.set_updates[set] = n.saturating_add(1);
            if let (0, Some(pm)) = (n, PARENT[m]) {
                let parent = s.mixers[k][pm].0 as usize;
                self.weights.copy_within(parent * N_IN..(parent + 1) * N_IN, set * N_IN);
            }
            let sched = LR_FLOOR + LR_BOOST * LR_SETTLE / (LR_SETTLE + n as f32);
            let err = (y - p) * if m == 1 { lr * SLOW_MIXER } else { lr } * sched;
            let w = &mut self.weights[set * N_IN..(set + 1) * N_IN];
            for (wi, xi) in w.iter_mut().zip(&s.inputs[k * N_IN..(k + 1) * N_IN]) {
                *wi += err * xi;
            }
        }
        let err = (y - s.p_mix[k]) * FINAL_LR;
        let st = &self.streams[b];
        let v = &mut self.final_weights[k + 256 * Self::match_state(st.expected, st.match_len, k).0];
        for (vm, mx) in v.iter_mut().zip(&s.mixers[k]) {
            *vm += err * mx.1;
        }
        let (at, frac) = s.apm_at[k];
        let at = at as usize;
        self.apm[at] += (y - self.apm[at]) * (APM_RATE * (1.0 - frac));
        self.apm[at + 1] += (y - self.apm[at + 1]) * (APM_RATE * frac);
        let at2 = s.apm2_at[k] as usize;
        self.apm2[at2] += (y - self.apm2[at2]) * (APM_RATE * (1.0 - frac));
        self.apm2[at2 + 1] += (y - self.apm2[at2 + 1]) * (APM_RATE * frac);
        for &at in &s.map_at[k * N_CTX..(k + 1) * N_CTX] {
            if at != NO_MAP {
                Self::train(&mut self.maps[at as usize], bit, &self.rate, 1023);
            }
        }
        let st = &self.streams[b];
        if let (_, Some(expected_bit)) = Self::match_state(st.expected, st.match_len, k) {
            let len = st.match_len.min(MATCH_MAX);
            Self::train(&mut self.match_counters[len], (expected_bit == bit) as u32, &self.rate, 1023);
        }
    }

    /// Appends byte `c` to stream `b`'s history and computes the next contexts.
    fn advance(&mut self, b: usize, c: u8) {
        let n_streams = self.streams.len() as u64;
        // Match model: follow the match or look for a new one.
        {
            let s = &self.streams[b];
            let (ptr, len) = (s.match_ptr, s.match_len);
            let cont = len > 0 && s.expected == Some(c);
            let s = &mut self.streams[b];
            if cont {
                s.match_len = (len + 1).min(MATCH_MAX);
                s.match_ptr = ptr + n_streams;
            } else {
                s.match_len = 0;
            }
        }
        let s = &mut self.streams[b];
        let mask = s.hist.len() as u64 - 1;
        s.hist[(s.n & mask) as usize] = c;
        s.n += 1;
        s.c8 = (s.c8 << 8) | c as u64;
        let pos = s.n; // bytes seen
                       // Record detector (paq8's): a byte value repeating at a constant distance r three
                       // times in a row votes for record length r.
        let cp = &mut s.cpos[c as usize];
        let r = pos - cp[0];
        let voted = cp[0] > 0 && r > 1 && r == cp[0] - cp[1] && cp[1] > 0 && r == cp[1] - cp[2] && cp[2] > 0;
        *cp = [pos, cp[0], cp[1], cp[2]];
        // The streams of a frame cut one input, so they share one tally of votes: a
        // stream need not find the record length again (pic: one stream, a blank top of
        // page, found it after 58 kB alone; pic 0.4709 → 0.4494 bits per byte, kennedy.xls
        // 0.1573 → 0.1305 with B = 8; a stream's own tally first lost to the shared one).
        if voted {
            self.records.vote(r);
        }
        self.records.tick();
        let rlen = self.records.best().0;
        let strong = self.records.strong();
        let s = &mut self.streams[b];
        // Words: letters, lower-cased; the hash resets at any other byte.
        let lower = c.to_ascii_lowercase();
        if lower.is_ascii_lowercase() || c >= 128 {
            s.word = hash2(s.word.wrapping_add(1), lower as u64);
            s.word_len += 1;
        } else if s.word != 0 {
            s.word_prev2 = s.word_prev;
            s.word_prev = s.word;
            s.word = 0;
            s.word_len = 0;
        }
        let c8 = s.c8;
        let above = if rlen > 0 { s.back(rlen) as u64 } else { 0 };
        let above2 = if rlen > 0 { s.back(2 * rlen) as u64 } else { 0 };
        let col = if rlen > 0 { pos % rlen } else { 0 };
        let o = |k: u32| if k >= 8 { c8 } else { c8 & ((1u64 << (8 * k)) - 1) };
        s.ctx[..N_CTX_BASE].copy_from_slice(&[
            hash2(0, 0),
            hash2(1, o(1)),
            hash2(2, o(2)),
            hash2(3, o(3)),
            hash2(4, o(4)),
            hash2(6, o(6)),
            hash2(7, hash2(s.word, c8 & 0xff)),
            hash2(8, hash2(s.word, s.word_prev)),
            hash2(9, (c8 >> 8) & 0xffff),        // bytes 2 and 3 back
            hash2(10, (c8 >> 16) & 0xffff_ffff), // bytes 3..6 back
            hash2(11, above | above2 << 8 | rlen.min(1 << 20) << 16),
            hash2(12, above | (c8 & 0xff) << 8 | col.min(255) << 16 | rlen.min(1 << 20) << 24),
        ]);
        s.text_contexts(c);
        let mut bin = bin_contexts(s, rlen, strong);
        if bin[0] == NO_CTX {
            // No records: the block serves text, with the current word and the word two
            // back, the word before and the last byte. Context model alone, fast, real
            // size: paper2 2.0467 → 2.0458, asyoulik 2.1672 → 2.1643, alice29 1.9064 →
            // 1.9042, book1 2.0485 → 2.0483, obj2 1.6279 → 1.6253; the indirect
            // contexts of paq8 (the bytes that followed the last byte, the last pair)
            // beside them: book1 2.0507, alice29 1.9071, obj2 1.6111.
            bin = [hash2(112, hash2(s.word, s.word_prev2)), hash2(113, hash2(s.word_prev, c8 & 0xff)), NO_CTX, NO_CTX];
        }
        s.ctx[BIN_CTX..BIN_CTX + N_CTX_BIN].copy_from_slice(&bin);
        // The last 2 bytes in this stream alone: the streams are different parts of the
        // input (a tar's PDF and its SGML), whose statistics the shared contexts average.
        // Context model alone, fast: samba's text 1.2563 → 1.2293 bits per byte (B = 16),
        // osdb 1.9743 → 1.9769, alice29 1.9877 → 1.9891 (B = 4), pic 0.4302 → 0.4325
        // (B = 8); a second one (order 3) gained more on samba (1.2217), lost more elsewhere.
        s.ctx[BIN_CTX + N_CTX_BIN] = if n_streams == 1 { NO_CTX } else { hash2(104, (c8 & 0xffff) | (b as u64) << 32) };
        // Match model: index the last MATCH_MIN bytes, and look for a match if none.
        // Positions are global: byte `i` of stream `b` is `b + B·i`.
        let mut fresh = false;
        if pos >= MATCH_MIN as u64 {
            let key = hash2(13, c8 & 0xffff_ffff_ffff) as usize & (self.match_index.len() - 1);
            if s.match_len == 0 {
                let cand = self.match_index[key];
                if cand > 0 {
                    s.match_ptr = cand;
                    fresh = true;
                }
            }
            self.match_index[key] = b as u64 + n_streams * pos; // the byte that comes next
        }
        // Verify the match (the index is hashed) and predict from it.
        let s = &self.streams[b];
        let mut expected = None;
        let mut len = if fresh { 0 } else { s.match_len };
        if fresh || len > 0 {
            let ptr = s.match_ptr;
            let (ob, opos) = ((ptr % n_streams) as usize, ptr / n_streams);
            let other = &self.streams[ob];
            let omask = other.hist.len() as u64 - 1;
            let known = |p: u64| p < other.n && other.n - p <= other.hist.len() as u64;
            if known(opos) {
                if fresh {
                    // A candidate from the index: count how many of the last bytes agree.
                    let mut l = 0u64;
                    while (l as usize) < MATCH_MAX && opos > l && l < s.n && known(opos - 1 - l) {
                        if other.hist[((opos - 1 - l) & omask) as usize] != s.back(l + 1) {
                            break;
                        }
                        l += 1;
                    }
                    len = if l as usize >= MATCH_MIN { l as usize } else { 0 };
                }
                if len > 0 {
                    expected = Some(other.hist[(opos & omask) as usize]);
                }
            } else {
                len = 0;
            }
        }
        let s = &mut self.streams[b];
        s.match_len = len;
        s.expected = expected;
    }
}

/// The contexts for binary data (issue #7), after the general ones.
///
/// Image contexts: in a fixed-length record of `rlen` bytes (a row of pixels, as the
/// record detector finds it), the bytes of the rows above around the next byte's column,
/// and the byte to its left. For a 1-bit bitmap each byte is 8 pixels; the node of the
/// byte tree adds the pixels of the current byte coded so far, so these are paq8's
/// 1-bit image contexts (above-left, above, above-right, two rows up, left) at byte
/// granularity. They also serve tables of fixed-size records (spreadsheets, databases).
/// Without a record length they trust they are absent ([`NO_CTX`]).
fn bin_contexts(s: &Stream, rlen: u64, strong: bool) -> [u64; N_CTX_BIN] {
    let left = s.c8 & 0xff;
    if rlen < 2 || (rlen < MIN_IMAGE_ROW && !strong) {
        return [NO_CTX; N_CTX_BIN];
    }
    let up = s.back(rlen) as u64;
    let up_l = s.back(rlen + 1) as u64;
    let up_r = s.back(rlen - 1) as u64;
    let up2 = s.back(2 * rlen) as u64;
    let up2_l = s.back(2 * rlen + 1) as u64;
    let up2_r = s.back(2 * rlen - 1) as u64;
    [
        // The byte above and its nearest pixels on either side, and left of the byte.
        hash2(100, up | (up_l & 0x01) << 8 | (up_r >> 7) << 9 | (left & 0x01) << 10),
        // Two rows up over the same columns, and the nearest pixels of the row above.
        hash2(101, up | up2 << 8 | (up_l & 0x03) << 16 | (up_r >> 6) << 18 | (left & 0x03) << 20),
        // Everything at once: sparse, but sharp where the page repeats (white rows, text).
        hash2(102, hash2(up_l | up << 8 | up_r << 16 | left << 24, up2_l | up2 << 8 | up2_r << 16)),
        // The byte above and the pixel just left of the byte: dense, learns fast.
        hash2(103, up | (left & 0x01) << 8),
    ]
}

/// A byte's class for mixer selection: letter, digit or space, punctuation, other.
#[inline]
fn byte_class(c: u8) -> usize {
    if c.is_ascii_alphabetic() {
        0
    } else if c.is_ascii_digit() || c == b' ' {
        1
    } else if c.is_ascii_punctuation() {
        2
    } else {
        3
    }
}

/// The depth of node `k` in the byte tree (0 for the root).
#[inline]
fn depth(k: usize) -> usize {
    (usize::BITS - 1 - k.leading_zeros()) as usize
}

/// Number of bit-history states (one byte each).
const BH_STATES: usize = 256;
/// Largest count of one bit in a bit history, by the count of the other bit (0..=5):
/// a history of mixed bits keeps fewer, as paq's state machine does.
const BH_BOUND: [u8; 6] = [40, 23, 12, 7, 5, 4];

/// A paq-style bit-history state machine: a state stands for the counts (n0, n1) of
/// the bits seen in a context, bounded and nonstationary (a bit discounts the count of
/// the other bit above 2, so a context that changes its mind forgets quickly), and for
/// histories of both bits, the last bit. State 0 is "nothing seen". The states are
/// numbered in the order a breadth-first walk from state 0 reaches them; the table is
/// built at start-up with integers only.
struct BitHistory {
    /// next[2·s + bit]: the state after `bit` in state `s`.
    next: Vec<u8>,
    /// (n0, n1, last bit) of each state.
    counts: Vec<(u8, u8, u8)>,
}

impl BitHistory {
    fn allowed(n0: u8, n1: u8) -> bool {
        let (lo, hi) = (n0.min(n1), n0.max(n1));
        (lo as usize) < BH_BOUND.len() && hi <= BH_BOUND[lo as usize] && lo <= hi
    }

    /// The counts after `bit`, from (n0, n1).
    fn step(n0: u8, n1: u8, bit: u32) -> (u8, u8) {
        let (mut own, mut other) = if bit == 1 { (n1, n0) } else { (n0, n1) };
        own += 1;
        if other > 2 {
            other = other / 2 + 1;
        }
        let pair = |own: u8, other: u8| if bit == 1 { (other, own) } else { (own, other) };
        while !{
            let (a, b) = pair(own, other);
            Self::allowed(a, b)
        } {
            if other > 1 {
                other -= 1;
            } else {
                own -= 1;
            }
        }
        pair(own, other)
    }

    fn new() -> BitHistory {
        let mut counts = vec![(0u8, 0u8, 0u8)];
        let mut next = Vec::new();
        let mut i = 0;
        while i < counts.len() {
            let (n0, n1, _) = counts[i];
            for bit in 0..2u32 {
                let (a, b) = Self::step(n0, n1, bit);
                // The last bit matters only when both bits were seen.
                let key = (a, b, if a > 0 && b > 0 { bit as u8 } else { 0 });
                let at = match counts.iter().position(|&c| c == key) {
                    Some(at) => at,
                    None => {
                        counts.push(key);
                        counts.len() - 1
                    }
                };
                next.push(at as u8);
            }
            i += 1;
        }
        assert!(counts.len() <= BH_STATES, "{} bit-history states", counts.len());
        next.resize(2 * BH_STATES, 0);
        BitHistory { next, counts }
    }

    #[inline]
    fn next(&self, s: u8, bit: u32) -> u8 {
        self.next[2 * s as usize + bit as usize]
    }

    /// A fresh adaptive-map entry for state `s`: (n1 + 1/2) / (n0 + n1 + 1), count 0.
    fn initial_map(&self, s: usize) -> u32 {
        let (n0, n1, _) = self.counts.get(s).copied().unwrap_or((0, 0, 0));
        let p = ((2 * n1 as u64 + 1) << 22) / (2 * (n0 as u64 + n1 as u64) + 2);
        (p.min((1 << 22) - 1) as u32) << COUNT_BITS
    }
}

/// The run state of a context at node `k`, from its slot's meta word: 0 if the context
/// has no last byte or that byte does not pass through node `k`, else 1 + 4 × (the bit
/// the last byte takes at `k`) + (its run length, 1..=4, minus 1). Deterministic
/// contexts (one byte, seen again and again) are where a counter's probability
/// undersells the evidence; the adaptive maps learn by how much.
#[inline]
fn run_state(meta: u32, k: usize) -> usize {
    let run = (meta >> 24) as usize;
    if run == 0 {
        return 0;
    }
    let last = 256 + ((meta >> 16) & 0xff) as usize;
    let d = (usize::BITS - 1 - k.leading_zeros()) as usize;
    if last >> (8 - d) != k {
        return 0;
    }
    let bit = (last >> (7 - d)) & 1;
    1 + 4 * bit + run.min(4) - 1
}

/// Byte probabilities from node probabilities: the mass of each node is split between
/// its children, from the root down (what [`ByteCtx::predict_with`] does as it goes).
#[cfg(test)]
fn leaf_probs(node_p: &[f32; 256], out: &mut [f32]) {
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
fn leaf_probs_reference(node_p: &[f32; 256], c: u8) -> f64 {
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

/// A neural model over bytes mixed into the byte context model: the network's
/// distribution is one input of the context mixer (see [`ByteCtx::predict_with`]).
///
/// The network is any 256-symbol [`Predictor`] with the same number of streams: today the
/// LSTM over bytes; the seam where a Transformer "bytes" preset plugs in.
pub struct ByteMix {
    nn: Box<dyn Predictor>,
    ctx: ByteCtx,
    nn_probs: Vec<f32>,
    ctx_secs: f64,
    /// When the bit path's step began (after the network's prediction).
    step_start: Option<std::time::Instant>,
}

impl ByteMix {
    pub fn new(nn: Box<dyn Predictor>, cfg: &ByteCtxConfig) -> Result<ByteMix> {
        ensure!(nn.vocab_size() == 256, "the byte mixer needs a 256-symbol network, got {}", nn.vocab_size());
        let batch = nn.batch();
        Ok(ByteMix {
            ctx: ByteCtx::new(cfg, batch),
            nn,
            nn_probs: vec![0.0; batch * 256],
            ctx_secs: 0.0,
            step_start: None,
        })
    }
}

impl Predictor for ByteMix {
    fn vocab_size(&self) -> usize {
        256
    }

    fn batch(&self) -> usize {
        self.ctx.batch()
    }

    fn predict(&mut self, probs: &mut [f32]) {
        self.nn.predict(&mut self.nn_probs);
        let start = std::time::Instant::now();
        self.ctx.predict_with(Some(&self.nn_probs), probs);
        self.ctx_secs += start.elapsed().as_secs_f64();
    }

    fn update(&mut self, symbols: &[u16]) {
        let start = std::time::Instant::now();
        self.ctx.update(symbols);
        self.ctx_secs += start.elapsed().as_secs_f64();
        self.nn.update(symbols);
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        let mut parts = self.nn.time_breakdown();
        parts.push(("byte contexts+mix", self.ctx_secs));
        parts
    }

    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        if self.ctx.cfg.bits {
            Some(self)
        } else {
            None
        }
    }
}

/// The network predicts the step's bytes at its start and learns them at its end; the
/// context model codes the bits in between with the network's distribution as an input.
impl BitPredictor for ByteMix {
    fn begin_step(&mut self) {
        self.nn.predict(&mut self.nn_probs);
        std::mem::swap(&mut self.ctx.nn, &mut self.nn_probs);
        self.step_start = Some(std::time::Instant::now());
    }

    fn p1(&mut self, stream: usize) -> f32 {
        self.ctx.p1(stream)
    }

    fn update_bit(&mut self, stream: usize, bit: u32) {
        self.ctx.update_bit(stream, bit);
    }

    fn end_step(&mut self, symbols: &[u16]) {
        self.ctx.end_step(symbols);
        if let Some(start) = self.step_start.take() {
            self.ctx_secs += start.elapsed().as_secs_f64();
        }
        std::mem::swap(&mut self.ctx.nn, &mut self.nn_probs);
        self.nn.update(symbols);
    }
}

#[cfg(test)]
mod tests {
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
    fn a_primer_is_recorded_with_its_checksum_and_none_keeps_version_5() {
        let primed = ByteCtxConfig::preset("tiny").unwrap();
        assert_eq!(primed.primer, 4096);
        let bytes = primed.to_bytes();
        assert_eq!((bytes[0], bytes.len()), (6, ByteCtxConfig::BYTES_PRIMED));
        let plain = ByteCtxConfig { primer: 0, ..primed.clone() };
        let plain_bytes = plain.to_bytes();
        assert_eq!((plain_bytes[0], plain_bytes.len()), (5, ByteCtxConfig::BYTES));
        assert_eq!(ByteCtxConfig::from_bytes(&plain_bytes).unwrap(), plain);
        // Another primer (another checksum), or more of it than this nnz has: refused.
        let mut other = bytes.clone();
        other[16] ^= 1;
        let err = ByteCtxConfig::from_bytes(&other).unwrap_err().to_string();
        assert!(err.contains("primed with a text this nnz does not have"), "{err}");
        let mut longer = bytes.clone();
        longer[12..16].copy_from_slice(&(PRIMER.len() as u32 + 1).to_le_bytes());
        assert!(ByteCtxConfig::from_bytes(&longer).unwrap_err().to_string().contains("another version"));
        // A version-5 layout cannot claim a primer, nor a version-6 one lack it.
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
        assert!((0..=255u32).all(|c| (1..256).all(|k| run_state(7 << 24 | c << 16, k) < RUN_STATES)));
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
        assert_eq!((m.meta[slot] >> 16) & 0xff, b'x' as u32);
        assert_eq!(m.meta[slot] >> 24, 3);
        assert_eq!(m.meta[slot] & 0xffff, 1 << (b'x' >> 4) | 1 << (b'y' >> 4));
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
        // Without records the block serves text: two word contexts, two absent.
        let s = &t.streams[0];
        assert_eq!(s.ctx[BIN_CTX], hash2(112, hash2(s.word, s.word_prev2)));
        assert!(s.ctx[BIN_CTX + 2..BIN_CTX + N_CTX_BIN].iter().all(|&h| h == NO_CTX));
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
            let cfg = ByteCtxConfig { bits: false, prune: 8, primer, ..ByteCtxConfig::preset("tiny").unwrap() };
            let bytes = cfg.to_bytes();
            assert_eq!(bytes[0], if primer == 0 { 3 } else { 4 });
            assert_eq!(ByteCtxConfig::from_bytes(&bytes).unwrap(), cfg);
            assert!(ByteCtx::new(&cfg, 1).bits().is_none());
            let bits = ByteCtxConfig { bits: true, prune: 0, ..cfg };
            assert_eq!(bits.to_bytes()[0], if primer == 0 { 5 } else { 6 });
            assert!(ByteCtx::new(&bits, 1).bits().is_some());
        }
        let bad = ByteCtxConfig { prune: 8, ..ByteCtxConfig::preset("tiny").unwrap() };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn replay_is_bit_identical() {
        let cfg = ByteCtxConfig::preset("tiny").unwrap();
        let data: Vec<u8> =
            (0..3000u32).map(|i| if i % 3 == 0 { (i >> 4) as u8 } else { b'a' + (i % 5) as u8 }).collect();
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
}
