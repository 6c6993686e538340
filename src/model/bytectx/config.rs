//! [`ByteCtxConfig`]: the byte model's table sizes, filter, primer and version, as
//! recorded in a frame's header.

use super::*;

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
    /// The model's generation: 1, the model of versions 3 to 6; 2 (versions 7 and 8,
    /// bit path only) adds sparse and source-code contexts, the match model's expected
    /// byte as a context, and an APM by that byte; 3 (versions 9 and 10) adds indirect
    /// contexts; 4 (versions 11 and 12) a match model that recovers from a mismatched
    /// byte and a second index for long matches, and a seventh mixer (by the third byte
    /// back); 5 (versions 13 and 14) punctuation contexts, run states with the byte
    /// before the last, and an APM by recent mispredictions; 6 (versions 15 and 16) field
    /// contexts for text: the current field of the line (a run of bytes other than
    /// blanks) with its index, and with the same field of the lines above; 7 (versions
    /// 17 and 18) markup contexts: where the next byte stands in XML or HTML and which
    /// elements are open around it. An older
    /// generation's model is the newest code with the newer parts absent (their inputs 0
    /// and in their own lanes, their tables untouched), so old files decode as they were
    /// written.
    pub generation: u8,
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
    /// unpruned, and the same layout. Versions 7 and 8 are 5 and 6 with the generation-2
    /// model ([`ByteCtxConfig::generation`]), 9 and 10 with generation 3, 11 and 12 with
    /// generation 4, 13 and 14 with generation 5, 15 and 16 with generation 6, 17 and 18
    /// with generation 7; all of 3 to 18 decode.
    const VERSION: u8 = 3;
    const VERSION_PRIMED: u8 = 4;
    const VERSION_BITS: u8 = 5;
    const VERSION_BITS_PRIMED: u8 = 6;
    /// Versions 7 and 8: 5 and 6 with the generation-2 model.
    const VERSION_GEN2: u8 = 7;
    const VERSION_GEN2_PRIMED: u8 = 8;
    /// Versions 9 and 10: 5 and 6 with the generation-3 model.
    const VERSION_GEN3: u8 = 9;
    const VERSION_GEN3_PRIMED: u8 = 10;
    /// Versions 11 and 12: 5 and 6 with the generation-4 model.
    const VERSION_GEN4: u8 = 11;
    const VERSION_GEN4_PRIMED: u8 = 12;
    /// Versions 13 and 14: 5 and 6 with the generation-5 model.
    const VERSION_GEN5: u8 = 13;
    const VERSION_GEN5_PRIMED: u8 = 14;
    /// Versions 15 and 16: 5 and 6 with the generation-6 model.
    const VERSION_GEN6: u8 = 15;
    const VERSION_GEN6_PRIMED: u8 = 16;
    /// Versions 17 and 18: 5 and 6 with the generation-7 model.
    const VERSION_GEN7: u8 = 17;
    const VERSION_GEN7_PRIMED: u8 = 18;
    /// Serialized size with a primer.
    pub const BYTES_PRIMED: usize = 20;

    /// The serialized size of a configuration whose first byte is `version` (None: a
    /// version this nnz does not read).
    pub fn encoded_len(version: u8) -> Option<usize> {
        match version {
            Self::VERSION
            | Self::VERSION_BITS
            | Self::VERSION_GEN2
            | Self::VERSION_GEN3
            | Self::VERSION_GEN4
            | Self::VERSION_GEN5
            | Self::VERSION_GEN6
            | Self::VERSION_GEN7 => Some(Self::BYTES),
            Self::VERSION_PRIMED
            | Self::VERSION_BITS_PRIMED
            | Self::VERSION_GEN2_PRIMED
            | Self::VERSION_GEN3_PRIMED
            | Self::VERSION_GEN4_PRIMED
            | Self::VERSION_GEN5_PRIMED
            | Self::VERSION_GEN6_PRIMED
            | Self::VERSION_GEN7_PRIMED => Some(Self::BYTES_PRIMED),
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
            generation: 7,
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
        ensure!((1..=7).contains(&self.generation), "byte model: generation {} not 1 to 7", self.generation);
        ensure!(self.generation == 1 || self.bits, "byte model: generation {} is coded bit by bit", self.generation);
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
        let version = match (self.generation, self.bits, self.primer != 0) {
            (1, false, false) => Self::VERSION,
            (1, false, true) => Self::VERSION_PRIMED,
            (1, true, false) => Self::VERSION_BITS,
            (1, true, true) => Self::VERSION_BITS_PRIMED,
            (2, _, false) => Self::VERSION_GEN2,
            (2, _, true) => Self::VERSION_GEN2_PRIMED,
            (3, _, false) => Self::VERSION_GEN3,
            (3, _, true) => Self::VERSION_GEN3_PRIMED,
            (4, _, false) => Self::VERSION_GEN4,
            (4, _, true) => Self::VERSION_GEN4_PRIMED,
            (5, _, false) => Self::VERSION_GEN5,
            (5, _, true) => Self::VERSION_GEN5_PRIMED,
            (6, _, false) => Self::VERSION_GEN6,
            (6, _, true) => Self::VERSION_GEN6_PRIMED,
            (_, _, false) => Self::VERSION_GEN7,
            (_, _, true) => Self::VERSION_GEN7_PRIMED,
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
                Self::VERSION_GEN7_PRIMED
            );
        };
        ensure!(b.len() == len, "byte model parameters: {} bytes, expected {len}", b.len());
        let mut primer = 0;
        if matches!(
            b[0],
            Self::VERSION_PRIMED
                | Self::VERSION_BITS_PRIMED
                | Self::VERSION_GEN2_PRIMED
                | Self::VERSION_GEN3_PRIMED
                | Self::VERSION_GEN4_PRIMED
                | Self::VERSION_GEN5_PRIMED
                | Self::VERSION_GEN6_PRIMED
                | Self::VERSION_GEN7_PRIMED
        ) {
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
            generation: match b[0] {
                Self::VERSION_GEN7.. => 7,
                Self::VERSION_GEN6.. => 6,
                Self::VERSION_GEN5.. => 5,
                Self::VERSION_GEN4.. => 4,
                Self::VERSION_GEN3.. => 3,
                Self::VERSION_GEN2.. => 2,
                _ => 1,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
