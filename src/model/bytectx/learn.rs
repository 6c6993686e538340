//! Learning at the end of each byte: the 8 nodes of the coded byte (counters, bit
//! histories, maps, mixers, APMs), then the streams' contexts move on (`advance`).

use super::*;

impl ByteCtx {
    /// Learns byte `c` of stream `b`: counters, mixer, APM on the byte's 8 nodes.
    pub(super) fn learn(&mut self, b: usize, c: u8) {
        let limit = self.cfg.limit as u32;
        for i in 0..N_CTX {
            let h = self.streams[b].ctx[i];
            if h == NO_CTX {
                continue;
            }
            let first = self.find_or_insert(h);
            // The nibbles seen, the last byte and its run length (see [`run_state`]).
            let m = self.meta[first];
            let run = if (m >> 24) & 0xff != 0 && (m >> 16) & 0xff == c as u64 {
                (((m >> 24) & 0xff) + 1).min(255)
            } else {
                1
            };
            // Generation 5 reads the byte before the last too (see [`run_state2`]): the
            // bytes two and three back in this context, and how many it has seen (to 3).
            let seen = ((m >> 48) & 3).min(2) + 1;
            let older = if (m >> 24) & 0xff != 0 { ((m >> 16) & 0xff) | ((m >> 32) & 0xff) << 8 } else { 0 };
            self.meta[first] = (m & 0xffff) | 1 << (c >> 4) | (c as u64) << 16 | run << 24 | older << 32 | seen << 48;
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
            if self.cfg.generation >= 5 {
                // Which bits the model got wrong (for the fourth APM).
                let s = &mut self.streams[b];
                s.misses = s.misses << 1 | ((s.scratch.p_final[k] >= 0.5) as u32 != bit) as u64;
            }
            if self.streams[b].scratch.full[k] {
                self.learn_node(b, k, bit);
            }
            k = 2 * k + bit as usize;
        }
    }

    /// Learns `bit` at node `k` of stream `b` from what its prediction recorded: the
    /// mixers, the final mixer, the APMs, the adaptive maps, the match model's counter.
    pub(super) fn learn_node(&mut self, b: usize, k: usize, bit: u32) {
        let lr = self.cfg.lr;
        let y = bit as f32;
        let s = &self.streams[b].scratch;
        for (m, &(set, _, p)) in s.mixers[k].iter().enumerate().take(self.mixers()) {
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
        apm_train(&mut self.apm, at as usize, y, frac);
        apm_train(&mut self.apm2, s.apm2_at[k] as usize, y, frac);
        if self.cfg.generation >= 2 {
            apm_train(&mut self.apm3, s.apm3_at[k] as usize, y, frac);
        }
        if self.cfg.generation >= 5 {
            apm_train(&mut self.apm4, s.apm4_at[k] as usize, y, frac);
        }
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
    pub(super) fn advance(&mut self, b: usize, c: u8) {
        let gen2 = self.cfg.generation >= 2;
        let n_streams = self.streams.len() as u64;
        // Match model: follow the match or look for a new one.
        {
            let gen4 = self.cfg.generation >= 4;
            let s = &mut self.streams[b];
            let (ptr, len) = (s.match_ptr, s.match_len);
            if len > 0 && s.expected == Some(c) {
                s.match_len = (len + 1).min(MATCH_MAX);
                s.match_ptr = ptr + n_streams;
                if s.recovering {
                    // Generation 4: the byte after a mismatch matched; the match goes on
                    // with its old length, and recovers fully after RECOVER_SETTLE more.
                    s.match_len = (s.rec_len + 1).min(MATCH_MAX);
                    s.recovering = false;
                    s.rec_age = 0;
                } else if s.rec_len > 0 {
                    s.rec_age += 1;
                    if s.rec_age >= RECOVER_SETTLE {
                        s.rec_len = 0;
                    }
                }
            } else if gen4 && len >= MATCH_MIN && s.rec_len == 0 {
                // Generation 4: a match failed (not just after a recovery): perhaps one
                // byte differs; the next byte tries the byte after the one mispredicted.
                s.rec_len = len;
                s.recovering = true;
                s.rec_ptr = ptr + n_streams;
                s.match_len = 0;
            } else {
                s.match_len = 0;
                s.recovering = false;
                s.rec_len = 0;
            }
        }
        let s = &mut self.streams[b];
        let mask = s.hist.len() as u64 - 1;
        s.hist[(s.n & mask) as usize] = c;
        s.n += 1;
        s.c16 = (s.c16 << 8) | s.c8 >> 56;
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
        // Generation 2's code state (how binary the stream is, indentation, nesting),
        // before the contexts that read it.
        if gen2 {
            s.code_state(c);
        }
        // Generation 6: the field contexts (their state follows every byte), on text
        // only; they take the slots that text leaves absent, two sparse contexts for
        // binary data and the last of the block for binary data (in place of an image
        // context where records are found).
        let fields = (self.cfg.generation >= 6).then(|| s.field_contexts(c)).filter(|_| s.binary < BINARY_ON);
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
        if let Some(f) = fields {
            bin[3] = f[2];
        }
        s.ctx[BIN_CTX..BIN_CTX + N_CTX_BIN].copy_from_slice(&bin);
        // The last 2 bytes in this stream alone: the streams are different parts of the
        // input (a tar's PDF and its SGML), whose statistics the shared contexts average.
        // Context model alone, fast: samba's text 1.2563 → 1.2293 bits per byte (B = 16),
        // osdb 1.9743 → 1.9769, alice29 1.9877 → 1.9891 (B = 4), pic 0.4302 → 0.4325
        // (B = 8); a second one (order 3) gained more on samba (1.2217), lost more elsewhere.
        s.ctx[BIN_CTX + N_CTX_BIN] = if n_streams == 1 { NO_CTX } else { hash2(104, (c8 & 0xffff) | (b as u64) << 32) };
        // Generation 2: the sparse and code contexts (absent in generation 1, where they
        // stay NO_CTX from the start).
        if gen2 {
            let mut sparse = sparse_code_contexts(s);
            if let Some(f) = fields {
                sparse[2..4].copy_from_slice(&f[..2]);
            }
            s.ctx[SPARSE_CTX..SPARSE_CTX + N_CTX_SPARSE].copy_from_slice(&sparse);
        }
        if self.cfg.generation >= 3 {
            let ind = s.indirect_contexts();
            s.ctx[GEN3_CTX..GEN3_CTX + N_CTX_GEN3].copy_from_slice(&ind);
        }
        if self.cfg.generation >= 5 {
            let punct = s.punct_contexts(c);
            s.ctx[GEN5_CTX..GEN5_CTX + N_CTX_GEN5].copy_from_slice(&punct);
        }
        // Generation 7: the markup contexts, on text that has tags lately.
        if self.cfg.generation >= 7 {
            s.markup.update(c);
            let m = if s.binary < BINARY_ON && s.markup.active() {
                s.markup.contexts(s.word)
            } else {
                [NO_CTX; N_CTX_GEN7]
            };
            s.ctx[GEN7_CTX..GEN7_CTX + N_CTX_GEN7].copy_from_slice(&m);
        }
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
        let (mut len, mut expected) = {
            let (ptr, len) = (self.streams[b].match_ptr, self.streams[b].match_len);
            if fresh {
                match self.match_agree(b, ptr) {
                    Some((l, e)) if l >= MATCH_MIN => (l, Some(e)),
                    _ => (0, None),
                }
            } else if len > 0 {
                self.history_at(ptr).map_or((0, None), |e| (len, Some(e)))
            } else {
                (0, None)
            }
        };
        if self.cfg.generation >= 4 {
            // A second index, by the last 16 bytes, finds longer matches than the latest
            // occurrence of the last MATCH_MIN; the longer (at least MATCH_LONG) wins.
            let s = &self.streams[b];
            let key = hash2(14, hash2(s.c8, s.c16)) as usize & (self.match_index2.len() - 1);
            let cand =
                if pos >= 16 { std::mem::replace(&mut self.match_index2[key], b as u64 + n_streams * pos) } else { 0 };
            if cand > 0 && len < MATCH_LONG {
                if let Some((l, e)) = self.match_agree(b, cand) {
                    if l >= MATCH_LONG {
                        (len, expected) = (l, Some(e));
                        self.streams[b].match_ptr = cand;
                    }
                }
            }
            // No match, but one just failed: predict the byte after the one it
            // mispredicted, as a match of length 1 (which no match of the index has).
            if self.streams[b].recovering {
                let rp = self.streams[b].rec_ptr;
                match self.history_at(rp) {
                    Some(e) if len == 0 => {
                        (len, expected) = (1, Some(e));
                        self.streams[b].match_ptr = rp;
                    }
                    _ => {
                        let s = &mut self.streams[b];
                        s.recovering = false;
                        s.rec_len = 0;
                    }
                }
            }
        }
        let s = &mut self.streams[b];
        s.match_len = len;
        s.expected = expected;
        // Generation 2: the expected byte, the match length (to 15) and the last byte as
        // a context: what the match model's counter cannot learn, how often each byte's
        // prediction is right, and where it goes wrong (tuning set, `fast`: kennedy.xls's
        // first 200 kB 0.1485 → 0.1366 bits per byte, trans 1.0596 → 1.0497, obj2 1.6645
        // → 1.6548; mean of 21 files −0.50%).
        s.ctx[MATCH_CTX] = match expected {
            Some(e) if gen2 => hash2(105, e as u64 | (len.min(15) as u64) << 8 | (s.c8 & 0xff) << 16),
            _ => NO_CTX,
        };
    }

    /// The byte at global position `ptr` (byte `i` of stream `s` is `s + B·i`), if it
    /// is still in its stream's history.
    fn history_at(&self, ptr: u64) -> Option<u8> {
        let n_streams = self.streams.len() as u64;
        self.streams[(ptr % n_streams) as usize].at(ptr / n_streams)
    }

    /// How many of stream `b`'s last bytes agree with those before global position
    /// `ptr` (up to MATCH_MAX), and the byte at `ptr`; None if `ptr` is not in history.
    fn match_agree(&self, b: usize, ptr: u64) -> Option<(usize, u8)> {
        let n_streams = self.streams.len() as u64;
        let s = &self.streams[b];
        let (other, opos) = (&self.streams[(ptr % n_streams) as usize], ptr / n_streams);
        let expected = other.at(opos)?;
        let mut l = 0u64;
        while (l as usize) < MATCH_MAX && opos > l && l < s.n && other.at(opos - 1 - l) == Some(s.back(l + 1)) {
            l += 1;
        }
        Some((l as usize, expected))
    }
}
