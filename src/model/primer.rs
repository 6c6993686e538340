//! The primer: 192 KiB of public-domain English that the byte context model learns
//! from before a text frame, so that it starts knowing *how* to predict text — which
//! contexts to trust when, what a bit history is worth — instead of learning it from
//! the first kilobytes of the input ([`crate::model::bytectx::ByteCtx::new`]).
//!
//! The primer's words and phrases are forgotten before the input starts — its hashed
//! contexts, the match model's index and history — and only the mixers' weights, the
//! adaptive maps, the APMs and the context-free counters are kept. So the primer is a
//! learned initialization, not a dictionary: no context of order 2 or more and no match
//! remembers it. Some of its statistics do survive, those of the last byte or two that
//! the APMs and the mixers' weight sets are chosen by (with a bias input, a set chosen by
//! the last byte is an order-1 model): a text that quotes the primer gains more than
//! another of its kind (`bytes_bench --preset fast`, 4 kB, 8 KiB of primer: Genesis 1,
//! which the primer starts with, 1.7012 → 1.4968 bits per byte, −12%; a later 4 kB of the
//! same Bible 2.4793 → 2.3825, −3.9%). It is part of the model,
//! replayed by the decoder; the header records how many of its bytes a frame used and
//! a checksum of them, so a file primed with another text is refused, not mis-decoded.
//!
//! Why: a fresh context mixer pays for its warm-up on small inputs. Primed on another
//! text (contexts forgotten), the byte model alone (`fast`) codes calgary/paper2 in
//! 1.9705 bits per byte instead of 1.9915, alice29.txt 1.8189 instead of 1.8307,
//! paper4 (13 kB) 2.3798 instead of 2.4516, and C, HTML and troff gain too
//! (see [`crate::model::bytectx::ByteCtxConfig::primer`] for the measurements).
//!
//! Contents (`data/primer.txt`, see `data/README.md`): 4 KiB pieces taken in turn from
//! the King James Bible (canterbury-large/bible.txt, from its start), Milton's Paradise
//! Lost (canterbury/plrabn12.txt, after its first 4 KiB of Project Gutenberg notes) and
//! the proceedings of the Library of Congress Workshop on Electronic Texts, 1992
//! (canterbury/lcet10.txt, after its first 8 KiB), sixteen rounds: any prefix of it
//! mixes the three.

/// The primer's bytes.
pub const PRIMER: &[u8] = include_bytes!("../../data/primer.txt");

/// The checksum of the primer's first `len` bytes that a header records (xxh32, seed 0).
pub fn check(len: usize) -> u32 {
    xxhash_rust::xxh32::xxh32(&PRIMER[..len], 0)
}
