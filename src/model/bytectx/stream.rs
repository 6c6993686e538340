//! What each lock-step stream keeps (history, context hashes, word and line state,
//! the record-length detector) and the contexts computed from it per byte.

use super::*;

/// The per-stream state: history and the contexts derived from it.
pub(super) struct Stream {
    /// Ring buffer of this stream's last bytes.
    pub(super) hist: Vec<u8>,
    /// Bytes seen so far.
    pub(super) n: u64,
    /// The last 8 bytes, most recent in the low byte.
    pub(super) c8: u64,
    /// The 8 bytes before those.
    pub(super) c16: u64,
    /// Hash of the current word (letters, lower-cased), 0 between words.
    pub(super) word: u64,
    /// Letters in the current word so far.
    pub(super) word_len: u32,
    /// Hash of the word before it.
    pub(super) word_prev: u64,
    /// Text contexts: the word before `word_prev`, where the current line starts
    /// (position of the byte after the last newline) and where the line before started.
    pub(super) word_prev2: u64,
    /// How binary the recent bytes are: a decaying count of bytes that are not text
    /// (16-bit fraction, decay 1/16 per byte).
    pub(super) binary: u32,
    /// Leading blanks of the current line (still counting while `in_indent`), the
    /// line's first other byte, and the nesting of brackets.
    pub(super) indent: u32,
    pub(super) in_indent: bool,
    pub(super) line_head: u8,
    pub(super) nest: u32,
    pub(super) line_start: u64,
    pub(super) prev_line_start: u64,
    /// Context hashes for the next byte, one per context.
    pub(super) ctx: [u64; N_CTX],
    /// Record detector: the last 4 positions of each byte value.
    pub(super) cpos: Vec<[u64; 4]>,
    /// Match model: global position of the predicted byte, and the match length (0: none).
    pub(super) match_ptr: u64,
    pub(super) match_len: usize,
    /// Generation 4: the match length before a mismatch, while the match may recover;
    /// where the byte after the mispredicted one is (global position); whether this
    /// byte is that try; bytes since the match recovered.
    pub(super) rec_len: usize,
    pub(super) rec_ptr: u64,
    pub(super) recovering: bool,
    pub(super) rec_age: u32,
    /// What the last prediction computed, for learning.
    pub(super) scratch: Scratch,
    /// The byte the match model predicts at this step, if any.
    pub(super) expected: Option<u8>,
    /// Generation 5: the bits the model mispredicted (probability under ½ for the bit
    /// that came), the last in the low bit; the last three punctuation bytes.
    pub(super) misses: u64,
    pub(super) punct: u64,
    /// Generation 3's indirect tables ([`Stream::indirect_contexts`]): per byte value,
    /// the two bytes that followed it the last two times; per pair of bytes, the same.
    /// Empty in older generations.
    pub(super) follow1: Vec<u16>,
    pub(super) follow2: Vec<u16>,
    /// Generation 6's fields ([`Stream::field_contexts`]): the hash of the current
    /// field's bytes (0 between fields), its index on the line (to [`N_FIELDS`] − 1),
    /// and the hashes of the fields of this line, the line before and the one before
    /// that (the last entry holds the line's last field from there on).
    pub(super) field: u64,
    pub(super) field_idx: usize,
    pub(super) fields: [u64; N_FIELDS],
    pub(super) fields_prev: [u64; N_FIELDS],
    pub(super) fields_prev2: [u64; N_FIELDS],
    /// Generation 7's markup state ([`Markup`]).
    pub(super) markup: Markup,
}

/// Fields of a line that generation 6 remembers.
pub(super) const N_FIELDS: usize = 16;

/// What a prediction leaves for learning, per node of the byte tree.
#[derive(Default)]
pub(super) struct Scratch {
    /// Whether the node got the full mixture (or the cheap estimate).
    pub(super) full: Vec<bool>,
    /// Mixer inputs, N_IN per node.
    pub(super) inputs: Vec<f32>,
    /// Per node: (weight set, logit, probability) of each first-layer mixer, and the
    /// final mixer's probability.
    pub(super) mixers: Vec<[(u32, f32, f32); N_MIXERS]>,
    pub(super) p_mix: Vec<f32>,
    pub(super) apm_at: Vec<(u32, f32)>,
    /// The second APM's entry (same interpolation weight as the first's).
    pub(super) apm2_at: Vec<u32>,
    /// The third APM's entry (generation 2; same interpolation weight).
    pub(super) apm3_at: Vec<u32>,
    /// The fourth APM's entry (generation 5; same interpolation weight).
    pub(super) apm4_at: Vec<u32>,
    /// The node's final probability, the model's output (for the misses).
    pub(super) p_final: Vec<f32>,
    /// Generation 5: per node, which of the nodes above it on its path missed the bit
    /// that leads to it (the parent's in bit 0).
    pub(super) path_misses: Vec<u8>,
    /// Per node and context: the adaptive map entry used (index into `maps`).
    pub(super) map_at: Vec<u32>,
}

/// What every node of one prediction shares.
pub(super) struct NodeEnv {
    /// Whether a network's distribution is mixed in, and its subtree masses.
    pub(super) nn: bool,
    pub(super) nn_sums: [f32; 512],
    pub(super) expected: Option<u8>,
    pub(super) len: usize,
    pub(super) match_st: f32,
    pub(super) orders_seen: usize,
    /// The last byte.
    pub(super) c1: usize,
    /// The second APM's context (hash of the last two bytes).
    pub(super) h2: usize,
    /// The third APM's context (generation 2; see [`APM3_BITS`]).
    pub(super) h3: usize,
    /// The byte before the last.
    pub(super) c2: usize,
    /// The sixth mixer's selector: letters of the current word (0..=7) × class of the
    /// last byte (4).
    pub(super) wsel: usize,
    /// Generation 4: the seventh mixer's selector: the third byte back × class of the
    /// last byte (1024).
    pub(super) sel7: usize,
    /// Bit i: context i is absent ([`NO_CTX`]).
    pub(super) absent: u64,
    /// The stream's [`Stream::misses`] before this byte.
    pub(super) misses: u64,
    /// The first weight set of this stream's first mixer, and of the shared mixers.
    pub(super) set_base: usize,
    pub(super) second_base: usize,
}

impl Stream {
    /// A stream with `hist_len` bytes of history, and the indirect tables if `indirect`
    /// (generation 3).
    pub(super) fn new(hist_len: usize, indirect: bool) -> Stream {
        let table = |len: usize| if indirect { vec![0; len] } else { Vec::new() };
        Stream {
            hist: vec![0; hist_len],
            n: 0,
            c8: 0,
            c16: 0,
            word: 0,
            word_len: 0,
            word_prev: 0,
            word_prev2: 0,
            binary: 0,
            indent: 0,
            in_indent: true,
            line_head: 0,
            nest: 0,
            line_start: 0,
            prev_line_start: 0,
            // Before the first byte every context of generation 1 is hash 0, as it always
            // was; later generations' are absent until the first byte sets them.
            ctx: std::array::from_fn(|i| if i < N_CTX_GEN1 { 0 } else { NO_CTX }),
            cpos: vec![[0; 4]; 256],
            match_ptr: 0,
            match_len: 0,
            rec_len: 0,
            rec_ptr: 0,
            recovering: false,
            rec_age: 0,
            scratch: Scratch {
                full: vec![false; 256],
                inputs: vec![0.0; 256 * N_IN],
                mixers: vec![[(0, 0.0, 0.5); N_MIXERS]; 256],
                p_mix: vec![0.5; 256],
                apm_at: vec![(0, 0.0); 256],
                apm2_at: vec![0; 256],
                apm3_at: vec![0; 256],
                apm4_at: vec![0; 256],
                p_final: vec![0.5; 256],
                path_misses: vec![0; 256],
                map_at: vec![0; 256 * N_CTX],
            },
            expected: None,
            misses: 0,
            punct: 0,
            follow1: table(256),
            follow2: table(65536),
            field: 0,
            field_idx: 0,
            fields: [0; N_FIELDS],
            fields_prev: [0; N_FIELDS],
            fields_prev2: [0; N_FIELDS],
            markup: Markup::new(),
        }
    }

    /// Byte `pos` of this stream (0 = its first), if it is still in the history.
    #[inline]
    pub(super) fn at(&self, pos: u64) -> Option<u8> {
        let known = pos < self.n && self.n - pos <= self.hist.len() as u64;
        known.then(|| self.hist[(pos & (self.hist.len() as u64 - 1)) as usize])
    }

    /// The byte `back` positions before the next one (1 = the last), 0 before the start
    /// or beyond the history.
    #[inline]
    pub(super) fn back(&self, back: u64) -> u8 {
        if back == 0 || back > self.n || back > self.hist.len() as u64 {
            return 0;
        }
        let mask = self.hist.len() as u64 - 1;
        self.hist[((self.n - back) & mask) as usize]
    }

    /// Generation 2's per-byte state after byte `c`: how binary the recent bytes are, the
    /// line's indentation and first byte, the nesting of brackets.
    pub(super) fn code_state(&mut self, c: u8) {
        let text_byte = matches!(c, b'\t' | b'\n' | b'\r' | 32..=126);
        self.binary = self.binary - (self.binary >> 4) + if text_byte { 0 } else { 1 << 12 };
        match c {
            b'\n' => {
                self.indent = 0;
                self.in_indent = true;
                self.line_head = 0;
            }
            b' ' | b'\t' if self.in_indent => self.indent += 1,
            _ => {
                if self.in_indent {
                    self.line_head = c;
                }
                self.in_indent = false;
            }
        }
        match c {
            b'(' | b'[' | b'{' => self.nest += 1,
            b')' | b']' | b'}' => self.nest = self.nest.saturating_sub(1),
            _ => {}
        }
    }

    /// Generation 3's indirect contexts (paq8's indirect model), after byte `c` was
    /// appended: the last byte with the two bytes that followed it the last two times it
    /// occurred; the last two bytes with the two that followed them. What followed a
    /// context before says what follows it now beyond that context's own statistics: a
    /// table's columns, a markup's closing tags, code's idioms. Tuning set (21 files,
    /// `fast`, context model alone): mean −0.54% bits per byte (xml −3.5%, reymont −2.3%,
    /// kennedy.xls −1.0%, obj2 −1.0%, trans −0.9%, cp.html −0.6%; pic +0.3%, book1 and
    /// alice29 +0.05%), 9% more time. One follower for pairs instead of two: mean
    /// −0.49%; a third context by the last three bytes: −0.05% more.
    pub(super) fn indirect_contexts(&mut self) -> [u64; N_CTX_GEN3] {
        let c8 = self.c8;
        let c = c8 & 0xff;
        if self.n >= 2 {
            let p1 = ((c8 >> 8) & 0xff) as usize;
            self.follow1[p1] = self.follow1[p1] << 8 | c as u16;
        }
        if self.n >= 3 {
            let p2 = ((c8 >> 8) & 0xffff) as usize;
            self.follow2[p2] = self.follow2[p2] << 8 | c as u16;
        }
        let f1 = self.follow1[c as usize] as u64;
        let f2 = self.follow2[(c8 & 0xffff) as usize] as u64;
        [hash2(114, c | f1 << 8), hash2(115, (c8 & 0xffff) | f2 << 16)]
    }

    /// Generation 5's punctuation contexts, after byte `c` was appended (and the word
    /// and nesting updated): the current word with the last punctuation byte and the
    /// bracket nesting; the current word with the last byte and the last three
    /// punctuation bytes. In source code the byte after an identifier is mostly
    /// punctuation, and which one the statement says: `hi` after `(` is followed by `)`
    /// or `,`, after `:=` by `;`. Tuning set (21 files, `fast`, context model alone):
    /// mean −0.19% (fields.c −0.93%, cp.html −0.73%, xml −0.67%, progc −0.51%, obj2
    /// −0.33%, sum −0.31%; pic +0.30%, kennedy.xls +0.23%); held out: progp −1.09%,
    /// progl −0.92%, the others −0.05 to −0.17%. The word with the word before and
    /// the punctuation in place of the second: −0.09%; orders 11 and 14 (as paq8px's
    /// NormalModel) in their place: −0.03%.
    pub(super) fn punct_contexts(&mut self, c: u8) -> [u64; N_CTX_GEN5] {
        if c.is_ascii_punctuation() {
            self.punct = (self.punct << 8 | c as u64) & 0xff_ffff;
        }
        let p1 = self.punct & 0xff;
        [
            hash2(116, hash2(self.word, p1 | (self.nest.min(7) as u64) << 8)),
            hash2(117, hash2(self.word ^ (self.c8 & 0xff) << 56, self.punct)),
        ]
    }

    /// Generation 6's field contexts, after byte `c` was appended: a line's fields are
    /// its runs of bytes other than blanks (space, tab); the current field so far (or,
    /// between fields, the blank just seen) with its index on the line; with the same
    /// field of the line before too; and with the same field of the two lines before.
    /// Tables of numbers in columns (chemical records, logs, listings) repeat a
    /// field's values and steps down a column, which byte contexts see only as far as the
    /// byte above. Used on text only ([`BINARY_ON`]), in slots text leaves absent.
    /// Context model alone, `fast`: tuning set (21 files) mean −0.13% (fields.c −0.51%,
    /// progc −0.39%, bib, dickens, trans −0.31%; obj2 +0.04%, kennedy.xls +0.08%); held
    /// out: the first 200 kB of silesia nci −7.3%, progl −1.1%, progp −0.3%, paper6
    /// −0.1%; a second held-out set: nci at 5 MB −5.8%, xml at 3 MB −2.9%, samba at 8 MB
    /// −0.3%, news −0.25%, but small texts lose (grammar.lsp, 3.7 kB, +0.7%; paper4,
    /// paper5, xargs.1 +0.2%). Tried: the field with the field before it on the same line
    /// in place of the first (no gain), only on fields that start with a digit or sign
    /// (small texts even, progl +0.8%), only where the field starts in the column of the
    /// same field above (progl +0.5%), in place of all four image contexts on text (xml
    /// +1.4%) or of the third (xml +1.0%).
    pub(super) fn field_contexts(&mut self, c: u8) -> [u64; 3] {
        if matches!(c, b'\n' | b' ' | b'\t') {
            // A blank or the line's end closes the field (fields past the last entry
            // share it).
            if self.field != 0 {
                self.fields[self.field_idx] = self.field;
                self.field_idx = (self.field_idx + 1).min(N_FIELDS - 1);
                self.field = 0;
            }
            if c == b'\n' {
                self.fields_prev2 = self.fields_prev;
                self.fields_prev = self.fields;
                self.fields = [0; N_FIELDS];
                self.field_idx = 0;
            }
        } else {
            self.field = hash2(self.field.wrapping_add(1), c as u64);
        }
        let idx = self.field_idx;
        let blanks = if self.field == 0 { (self.c8 & 0xff) as u64 | 1 << 8 } else { 0 };
        let above = self.fields_prev[idx];
        [
            hash2(118, hash2(self.field ^ blanks, idx as u64)),
            hash2(119, hash2(hash2(self.field ^ blanks, above), idx as u64)),
            hash2(120, hash2(hash2(self.field ^ blanks, above), self.fields_prev2[idx] ^ (idx as u64) << 56)),
        ]
    }

    /// Text contexts, after byte `c` was appended: ctx[N_CTX_BASE..BIN_CTX].
    pub(super) fn text_contexts(&mut self, c: u8) {
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

/// Generation 2's sparse and code contexts ([`N_CTX_SPARSE`]). Measured one group at a
/// time on the tuning set (21 files, `fast`, context model alone, change of bits per byte):
/// - the last byte with the third, and bytes 4 and 5 back: objects and binaries (obj2
///   −1.79%, ooffice −1.75%, sum −0.53%), text −0.05% (mean −0.29%);
/// - on binary data only, the last two bytes with the position mod 4 and bytes 2 and 4
///   back (word-aligned tables and code): obj2 −1.11%, ooffice −0.92%, sum −0.86% (on
///   text too they cost 0.02% and 4% of the time, so they are off there);
/// - on text only, the last two bytes with the line's indentation and first byte, and
///   the last byte with the bracket nesting, whether the line has begun and the word
///   before (source code): progc −0.55%, fields.c −0.45%, sum −0.42%, trans −0.28%
///   (on binary data they lost: pic +0.30%, kennedy.xls +0.22%).
///
/// A stream is binary while a quarter of its recent bytes are not text
/// ([`Stream::binary`], [`BINARY_ON`]); the contexts for the other kind are absent.
pub(super) fn sparse_code_contexts(s: &Stream) -> [u64; N_CTX_SPARSE] {
    let c8 = s.c8;
    let binary = s.binary >= BINARY_ON;
    let on = |on: bool, h: u64| if on { h } else { NO_CTX };
    [
        hash2(106, (c8 & 0xff) | ((c8 >> 16) & 0xff) << 8),
        hash2(107, (c8 >> 24) & 0xffff),
        on(binary, hash2(108, (c8 & 0xffff) | (s.n & 3) << 16)),
        on(binary, hash2(109, ((c8 >> 8) & 0xff) | ((c8 >> 24) & 0xff) << 8)),
        on(!binary, hash2(110, (c8 & 0xffff) | (s.indent.min(63) as u64) << 16 | (s.line_head as u64) << 24)),
        on(
            !binary,
            hash2(
                111,
                (c8 & 0xff) | (s.nest.min(31) as u64) << 8 | (s.in_indent as u64) << 13 | (s.word_prev & 0xffff) << 16,
            ),
        ),
    ]
}

/// The record lengths a record detector has seen: the two in competition and how often
/// each was seen.
#[derive(Clone, Copy, Default)]
pub(super) struct Records {
    pub(super) rlen: [u64; 2],
    pub(super) rcount: [u32; 2],
    /// The recent votes for the record length in force, a decaying sum (16-bit fraction).
    pub(super) strength: u32,
}

impl Records {
    /// One more vote for record length `r`.
    pub(super) fn vote(&mut self, r: u64) {
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
    pub(super) fn tick(&mut self) {
        self.strength -= self.strength >> 12;
    }

    /// Whether the record length in force gets votes at least STRONG_VOTES times per
    /// 4096 bytes lately.
    pub(super) fn strong(&self) -> bool {
        self.strength >= STRONG_VOTES << 16
    }

    /// The record length in force, 0 if none, and its votes.
    pub(super) fn best(&self) -> (u64, u32) {
        let best = if self.rcount[0] >= self.rcount[1] { 0 } else { 1 };
        if self.rcount[best] >= 2 {
            (self.rlen[best], self.rcount[best])
        } else {
            (0, 0)
        }
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
pub(super) fn bin_contexts(s: &Stream, rlen: u64, strong: bool) -> [u64; N_CTX_BIN] {
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
pub(super) fn byte_class(c: u8) -> usize {
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
pub(super) fn depth(k: usize) -> usize {
    (usize::BITS - 1 - k.leading_zeros()) as usize
}
