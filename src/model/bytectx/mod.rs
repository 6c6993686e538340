//! The byte context model: a paq/zpaq-style context mixer that outputs a full
//! distribution over the 256 next bytes.
//!
//! Each byte is seen as 8 binary decisions down a tree of 255 nodes (node 1 is the root,
//! node `k` has children `2k` and `2k + 1`, leaf `256 + c` is byte `c`). Every context
//! (the last 1, 2, 3, 4, 5, 6, 8 bytes, the current word, sparse contexts that skip the
//! last byte, the column of a fixed-length record, text contexts: the last three words,
//! the byte above in the previous line; for binary data the pixels around the next byte
//! in the rows above of a 1-bit image; since generation 2 also sparse contexts, the
//! indentation and bracket nesting of source code, and the match model's expected byte;
//! since generation 3 the indirect contexts, the bytes that followed the last byte and
//! the last two the previous times ...) owns, in one shared hash table, a
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
//! and the position in a word (generation 4 adds a seventh, by the third byte back, the
//! class of the last and the depth); a final mixer per node and match state combines them, and two
//! adaptive probability maps (APM, "SSE": by the last byte, by a hash of the last two;
//! generation 2 adds a third, by the match model's expected byte, generation 5 a fourth,
//! by the recent mispredictions) refine the result. The probability of byte `c` is the
//! product of the 8 node probabilities on its path:
//!
//! ```text
//! P(c) = Π_{d=0..8} p(bit_d(c) | node_d(c)),   node_0 = 1, node_{d+1} = 2·node_d + bit_d(c)
//! ```
//!
//! Generation 2 (versions 7 and 8, [`ByteCtxConfig::generation`]) is generation 1
//! (versions 3 to 6) with more contexts and an APM; the code is one, and generation 1 is
//! generation 2 with those parts absent, so old files decode bit for bit (the golden
//! files of every generation are tested). Generation 3 (versions 9 and 10) adds the
//! indirect contexts ([`Stream::indirect_contexts`]) the same way. Generation 4 (versions
//! 11 and 12) gives the match model paq8px's recovery (after a mismatched byte it tries
//! the byte after it, and goes on with its old length if that one matches) and a second
//! index, by the last 16 bytes, whose candidate wins when it agrees on at least
//! [`MATCH_LONG`] bytes and the current match is shorter; and the seventh mixer.
//! Generation 5 (versions 13 and 14) adds two punctuation contexts (the current word
//! with the last punctuation bytes, [`Stream::punct_contexts`]), run states that see
//! the byte before a context's last byte ([`run_state2`]), and a fourth APM by the
//! model's recent mispredictions ([`APM4_ROWS`]). Generation 6 (versions 15 and 16) adds
//! field contexts for text ([`Stream::field_contexts`]: the line's current field, a run
//! of bytes other than blanks, with its index on the line and with the same field of the
//! lines above) in the slots text leaves absent, so the mixers stay as wide.
//! Generation 7 (versions 17 and 18) adds two markup contexts ([`Markup`]: where the next
//! byte stands in XML or HTML, in a tag's name, an end tag's, an attribute's value or
//! between tags, with the open elements around it and the element that closed last at
//! that level) in eight lanes of their own: the mixers are 80 wide.
//!
//! Since version 5 the engine codes those 8 bits one at a time ([`BitPredictor`]), so
//! only the nodes on the path are evaluated; versions 3 and 4 decode through the full
//! 256-way distribution ([`ByteCtx::predict_with`]), which stays as the slow reference
//! of the bit path (the tests check that both give every byte the same code length and
//! leave the same learned state). Learning touches only the 8 nodes of the byte that
//! occurred (counters, mixer weights, APM), as in paq.
//!
//! # Layout
//!
//! One file per part, as paq8px splits its components:
//!
//! | file | part |
//! |---|---|
//! | `mod.rs` | the constants, [`ByteCtx`] and its tables, construction, priming |
//! | `config.rs` | [`ByteCtxConfig`]: sizes, filter, primer, version, header bytes |
//! | `hash.rs` | context hashing, the slot table (find, insert, prefetch) |
//! | `stream.rs` | each stream's history and contexts, record lengths, binary contexts |
//! | `counters.rs` | probability counters, bit-history states, run and match states |
//! | `mixer.rs` | stretch/squash, weight-set selection, one node's evaluation |
//! | `predict.rs` | per-byte environment, the 256-way distribution, the bit path |
//! | `learn.rs` | learning the coded byte's nodes, advancing the contexts |
//! | `markup.rs` | the markup state (tags, attributes, open elements) and its contexts |
//! | `bytemix.rs` | [`ByteMix`]: the model with a neural model over bytes mixed in |
//! | `tests.rs` | unit tests |
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

mod bytemix;
mod config;
mod counters;
mod hash;
mod learn;
mod markup;
mod mixer;
mod predict;
mod stream;
#[cfg(test)]
mod tests;

pub use bytemix::ByteMix;
pub use config::ByteCtxConfig;
use counters::*;
use hash::*;
use markup::Markup;
use mixer::*;
#[cfg(test)]
use predict::*;
use stream::*;

use super::primer::{self, PRIMER};
use super::{BitPredictor, Predictor};
use crate::filter::Filter;
use crate::kernels::scalar::{ln1, sigmoid1};
use anyhow::{bail, ensure, Result};

/// Number of hashed contexts (each with a counter per node): the general ones, then the
/// text contexts ([`Stream::text_contexts`]), then the block for binary data
/// ([`bin_contexts`]; without a trusted record length, two more text contexts), then one
/// of each stream's own: the contexts of generation 1 (versions 3 to 6). Generation 2
/// adds the sparse and code contexts ([`sparse_code_contexts`]) and the match model's
/// expected byte, generation 3 the indirect contexts, generation 5 the punctuation
/// contexts, generation 7 the markup contexts.
const N_CTX_BASE: usize = 12;
const N_CTX_TEXT: usize = 4;
const N_CTX_BIN: usize = 4;
/// Contexts of one stream alone (see `advance`).
const N_CTX_LOCAL: usize = 1;
const N_CTX_GEN1: usize = N_CTX_BASE + N_CTX_TEXT + N_CTX_BIN + N_CTX_LOCAL;
/// Generation 2: sparse contexts (two always, two on binary data), code contexts (two,
/// on text), and the match model's expected byte with the match length and last byte.
const N_CTX_SPARSE: usize = 6;
const N_CTX_MATCH: usize = 1;
const N_CTX_GEN2: usize = N_CTX_SPARSE + N_CTX_MATCH;
const SPARSE_CTX: usize = N_CTX_GEN1;
const MATCH_CTX: usize = N_CTX_GEN1 + N_CTX_SPARSE;
/// Generation 3: indirect contexts ([`Stream::indirect_contexts`]).
const N_CTX_GEN3: usize = 2;
const GEN3_CTX: usize = N_CTX_GEN1 + N_CTX_GEN2;
/// Generation 5: the punctuation contexts ([`Stream::punct_contexts`]), in the padding
/// lanes of generation 3's inputs.
const N_CTX_GEN5: usize = 2;
const GEN5_CTX: usize = GEN3_CTX + N_CTX_GEN3;
/// Generation 7: the markup contexts ([`Markup::contexts`]), in lanes of their own
/// (no slot was left that text does not use).
const N_CTX_GEN7: usize = 2;
const GEN7_CTX: usize = GEN5_CTX + N_CTX_GEN5;
const N_CTX: usize = N_CTX_GEN1 + N_CTX_GEN2 + N_CTX_GEN3 + N_CTX_GEN5 + N_CTX_GEN7;
// One bit per context in `NodeEnv::absent`.
const _: () = assert!(N_CTX <= 64);
/// A stream counts as binary (for the contexts of [`sparse_code_contexts`]) while its
/// [`Stream::binary`] score is at least this: a quarter of the recent bytes not text.
const BINARY_ON: u32 = 1 << 14;
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
/// padding to a multiple of 8 (see [`dot`]); then generation 2's contexts, counters and
/// maps, padded again; then generation 3's and 5's, padded; then generation 7's, padded.
/// Each generation's inputs keep the places they had when it was written and the newer
/// ones are 0 there, so the dot products are the same sums (adding 0 to a lane changes
/// no bit of a non-zero sum).
const IN_GEN1: usize = (2 * N_CTX_GEN1 + 4).div_ceil(8) * 8;
const IN_GEN2: usize = IN_GEN1 + (2 * N_CTX_GEN2).div_ceil(8) * 8;
const IN_GEN5: usize = IN_GEN2 + (2 * (N_CTX_GEN3 + N_CTX_GEN5)).div_ceil(8) * 8;
const N_IN: usize = IN_GEN5 + (2 * N_CTX_GEN7).div_ceil(8) * 8;
const _: () = assert!(N_IN == 80);
const IN_MATCH: usize = 2 * N_CTX_GEN1;
const IN_NN: usize = 2 * N_CTX_GEN1 + 1;
const IN_BIAS: usize = 2 * N_CTX_GEN1 + 2;
/// The input of context `i`'s counter, and of its adaptive map.
const fn in_counter(i: usize) -> usize {
    if i < N_CTX_GEN1 {
        i
    } else if i < GEN3_CTX {
        IN_GEN1 + i - N_CTX_GEN1
    } else if i < GEN5_CTX {
        IN_GEN2 + i - GEN3_CTX
    } else if i < GEN7_CTX {
        IN_GEN2 + 2 * N_CTX_GEN3 + i - GEN5_CTX
    } else {
        IN_GEN5 + i - GEN7_CTX
    }
}
const fn in_map(i: usize) -> usize {
    if i < N_CTX_GEN1 {
        N_CTX_GEN1 + i
    } else if i < GEN3_CTX {
        IN_GEN1 + N_CTX_GEN2 + i - N_CTX_GEN1
    } else if i < GEN5_CTX {
        IN_GEN2 + N_CTX_GEN3 + i - GEN3_CTX
    } else if i < GEN7_CTX {
        IN_GEN2 + 2 * N_CTX_GEN3 + N_CTX_GEN5 + i - GEN5_CTX
    } else {
        IN_GEN5 + N_CTX_GEN7 + i - GEN7_CTX
    }
}
/// The neural model's probability once more, in the linear domain: `(p − ½)·NN_LINEAR`
/// (it fills one of the padding slots, so it costs no time). The stretched input says
/// how sure the network is, this one lets a mixer trust its middle range more than its
/// extremes. Byte model `default` (LSTM mixed in): paper2 1.9527 → 1.9515 bits per byte
/// (1.9523 with a scale of 2, 1.9517 with 4), obj2 1.5967 → 1.5931, first 200 kB of
/// kennedy.xls 0.1359 → 0.1352.
const IN_NN_LINEAR: usize = 2 * N_CTX_GEN1 + 3;
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
/// Generation 4's seventh mixer: its weight sets, by the third byte back, the class of
/// the last and the depth, after the shared sets of the others. Tuning set, after the
/// match model's changes: mean −0.27% (obj2 −0.82%, sum −0.93%, kennedy.xls −0.93%, xml
/// −0.79%, reymont −0.46%, trans −0.40%, bib −0.29%; asyoulik +0.01%); without the depth:
/// −0.12%; by a 16-bit hash of the last two bytes: +0.12%; by the match model's expected
/// byte and length: +0.21%; by the column (to 63) and the class of the last byte: −0.07%.
const GEN4_SETS: usize = 256 * 4 * 8;
/// The mixer whose weights a fresh weight set of each mixer starts from: the fine sets
/// of the first (per node) from the fifth's (per depth), node × last byte from last byte.
const PARENT: [Option<usize>; N_MIXERS] = [Some(4), None, None, Some(1), None, None, None];
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
/// Generation 4 adds a seventh ([`GEN4_SETS`]); older generations run the first six, and
/// their final mixer never sees the seventh ([`ByteCtx::mixers`]).
const N_MIXERS: usize = 7;
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
/// Generation 5's run states ([`run_state2`]): those × the byte before the last (not
/// on the node's path, or on it with bit 0 or 1). Tuning set: mean −0.06% (kennedy.xls
/// −1.4%, obj2 −0.15%; texts +0.02 to +0.10%), and more with the other parts of
/// generation 5 than alone. Older generations use the first RUN_STATES of each map.
const RUN_STATES2: usize = 3 * RUN_STATES;
const MAP_SIZE: usize = BH_STATES * RUN_STATES2;
/// The match model looks up the last MATCH_MIN bytes.
const MATCH_MIN: usize = 6;
/// Longest match length the match model tells apart.
const MATCH_MAX: usize = 63;
/// Generation 4: the shortest match the second index (by the last 16 bytes) offers.
/// Tuning set (21 files, `fast`, context model alone), after recovery: mean −0.07% (xml
/// −1.27%, reymont −0.10%); by the last 12 bytes, from 12 on: −0.03% (xml −0.86%, trans
/// +0.27%). Held out: nci −1.47%, progl −0.11%, the others within 0.01%.
const MATCH_LONG: usize = 20;
/// Generation 4: a match that recovered from a mismatch may recover again after this
/// many bytes; a mismatch sooner ends it (paq8px's MINLEN_RM). Recovery, tuning set:
/// mean −0.34% (kennedy.xls −3.95%, obj2 −1.08%, sum −0.75%, ooffice −0.66%, xml −0.37%;
/// texts +0.01 to +0.06%, trans +0.13%); only for matches of 12 bytes or more: −0.17%;
/// the recovering match ahead of a new one from the index: −0.03%. Held out: make
/// −0.21%, nci +0.25%, paper6 +0.10%, the others within 0.07%.
const RECOVER_SETTLE: u32 = 3;
/// Node probabilities stay within [P_MIN, 1 − P_MIN].
const P_MIN: f32 = 1.0 / 65536.0;
/// APM: buckets over the stretched probability, and how far to trust it.
const APM_BUCKETS: usize = 33;
const APM_RATE: f32 = 0.02;
/// The second APM's contexts: a hash of the last two bytes, this many bits.
const APM2_BITS: u32 = 8;
/// The third APM's contexts (generation 2): the last byte without a match (0-255), the
/// expected byte with a match shorter than 16 (256-511), 16 to 31 (512-767), longer
/// (768-1023). Tuning set, `fast`: mean −0.055% (kennedy.xls −0.22%, pic −0.20%, the
/// texts −0.03 to −0.07%); an order-3 hash of 10 bits in its place: −0.013%.
const APM3_BITS: u32 = 10;
/// The fourth APM's rows (generation 5): misses (8) × match state (4) × orders seen (6)
/// × depth (8). Tuning set: mean −0.08% (osdb −0.40%, kennedy.xls −0.31%, geo −0.23%,
/// sum −0.14%; texts within ±0.03%); per node instead of per depth: −0.05%.
const APM4_ROWS: usize = 8 * 4 * ORDER_LEVELS * 8;
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

/// The byte context model over `B` streams (see the module docs).
pub struct ByteCtx {
    cfg: ByteCtxConfig,
    table: Vec<Slot>,
    /// Per slot (used for first-nibble slots only): bits 0-15, the first nibbles seen
    /// after this context (which second-nibble slots exist); 16-23, the last byte seen;
    /// 24-31, how many times in a row it was seen; 32-39 and 40-47, the bytes before it
    /// (before each of the last two bytes seen); 48-49, how many bytes it has seen, to 3
    /// (generation 5's [`run_state2`]).
    meta: Vec<u64>,
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
    /// Generation 4: the index by the last 16 bytes (empty before), for matches of at
    /// least MATCH_LONG.
    match_index2: Vec<u64>,
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
    /// Generation 2: APM over (the match model's expected byte and length, or the last
    /// byte without a match, node) × stretch buckets; empty in generation 1.
    apm3: Vec<f32>,
    /// Generation 5: APM by recent mispredictions, match state, orders seen and depth
    /// ([`APM4_ROWS`]) × stretch buckets; empty before.
    apm4: Vec<f32>,
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
    metas: [u64; N_CTX],
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
        let gen4_sets = if cfg.generation >= 4 { GEN4_SETS } else { 0 };
        let mut weights = vec![0.0f32; (batch * FIRST_SETS + SHARED_SETS + gen4_sets) * N_IN];
        for w in weights.chunks_exact_mut(N_IN) {
            for i in 0..N_CTX {
                w[in_counter(i)] = 0.07;
                w[in_map(i)] = 0.07;
            }
            w[IN_MATCH] = 0.5;
            w[IN_NN] = 0.5;
        }
        // The other APMs: `rows` rows, each the identity row.
        let identity = |rows: usize| apm[..APM_BUCKETS].repeat(rows);
        let apm2 = identity(256 << APM2_BITS);
        let apm3 = identity(if cfg.generation >= 2 { 256 << APM3_BITS } else { 0 });
        let apm4 = identity(if cfg.generation >= 5 { APM4_ROWS } else { 0 });
        let bh = BitHistory::new();
        let mut model = ByteCtx {
            table: super::huge::vec([0u32; 16], 1 << cfg.table_bits),
            meta: super::huge::vec(0, 1 << cfg.table_bits),
            maps: (0..N_CTX * MAP_SIZE).map(|i| bh.initial_map(i % BH_STATES)).collect(),
            states: super::huge::vec([0u8; 16], 1 << cfg.table_bits),
            bh,
            slot_mask: (1 << cfg.table_bits) - 1,
            match_index: super::huge::vec(0, 1 << cfg.match_bits),
            match_index2: if cfg.generation >= 4 { super::huge::vec(0, 1 << cfg.match_bits) } else { Vec::new() },
            set_updates: vec![0; weights.len() / N_IN],
            weights,
            final_weights: {
                let n = mixers_of(cfg.generation);
                let mut v = [0.0; N_MIXERS];
                v[..n].fill(1.0 / n as f32);
                vec![v; 256 * MATCH_STATES]
            },
            node_counters: vec![FRESH; 256],
            match_counters: vec![FRESH; 64 * 2],
            apm,
            apm2,
            apm3,
            apm4,
            streams: (0..batch).map(|_| Stream::new(per_stream, cfg.generation >= 3)).collect(),
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
        self.match_index2.fill(0);
        let hist_len = self.streams[0].hist.len();
        self.streams = (0..batch).map(|_| Stream::new(hist_len, self.cfg.generation >= 3)).collect();
        self.records = Records::default();
        for n in &mut self.set_updates {
            *n = (*n).min(PRIMED_UPDATES);
        }
    }

    /// Bytes of memory the tables take (fixed at construction).
    pub fn memory_bytes(&self) -> usize {
        self.table.len() * (72 + 16)
            + (self.match_index.len() + self.match_index2.len()) * 8
            + self.weights.len() * 4
            + (self.apm.len() + self.apm2.len() + self.apm3.len() + self.apm4.len()) * 4
            + self.streams.iter().map(|s| s.hist.len() + s.scratch.inputs.len() * 4 + 256 * 80).sum::<usize>()
            + self.streams.iter().map(|s| (s.follow1.len() + s.follow2.len()) * 2).sum::<usize>()
    }
}
