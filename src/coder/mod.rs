//! The arithmetic coder: a range coder with 32-bit frequency precision.
//!
//! The model's float probabilities become integers in exactly one place,
//! [`quantize`]; from there on everything is integer arithmetic, so the coder itself
//! cannot be a source of encoder/decoder disagreement.
//!
//! # Why 32-bit frequencies
//!
//! With a 16,384-symbol alphabet, a classic coder with 16-bit totals must give every
//! symbol at least 1/65,536 of the range, which steals up to a quarter of it from the
//! likely symbols. Here the total is about 2³¹, so the floor of 1 costs at most
//! `V / 2³¹` (0.003% for V = 65,536) and a probability of 0.9999 is represented to
//! 9 significant digits. The range is held in 64 bits and renormalized a byte at a
//! time to stay in `[2⁵⁶, 2⁶⁴)`, so `range / total ≥ 2²⁴` and the truncation of that
//! division wastes less than 2⁻²⁴ of the range per symbol. Measured overhead against
//! the ideal `−Σ log2 p` is in the tests (well under 0.1%).
//!
//! # The end of the code
//!
//! The payload ends with the value of the final interval that has the fewest significant
//! bytes ([`Termination::Shortest`], format 2): after the last byte shifted out, 0 or 1
//! byte instead of the 8 bytes of state that format 1 flushed ([`Termination::FullState`],
//! still decoded). Trailing zero bytes are dropped, as the decoder reads zeros past the
//! end. The end check ([`Decoder::finish`]) accepts exactly the payload the encoder
//! writes for the symbols decoded, so a payload one byte short or long never passes for
//! the same symbols.
//!
//! # Example
//!
//! ```
//! use nnz::coder::{quantize, Encoder, Decoder};
//! let probs = [0.7f32, 0.2, 0.1];
//! let mut freqs = [0u32; 3];
//! let total = quantize(&probs, &mut freqs);
//! let mut enc = Encoder::new();
//! for &s in &[0usize, 2, 1, 0] {
//!     enc.encode_symbol(&freqs, total, s);
//! }
//! let bytes = enc.finish();
//! let mut dec = Decoder::new(&bytes).unwrap();
//! let decoded: Vec<usize> = (0..4).map(|_| dec.decode_symbol(&freqs, total).unwrap()).collect();
//! assert_eq!(decoded, [0, 2, 1, 0]);
//! ```

use anyhow::{bail, Result};

/// A probability of 1.0 becomes this many counts.
pub const PROB_SCALE: f32 = 2_147_483_648.0; // 2^31

/// Largest total a frequency table may have (keeps `range / total >= 2^24`).
pub const MAX_TOTAL: u64 = 1 << 32;

/// Bytes the decoder primes its state with (and the format-1 encoder flushes at the end).
const STATE_BYTES: usize = 8;
/// The range is renormalized to stay at or above this.
const RANGE_MIN: u64 = 1 << 56;
const TOP_SHIFT: u32 = 56;

/// Turns model probabilities into integer frequencies: the only float→integer step.
///
/// `freq[i] = max(1, round(p[i] · 2³¹))`, with `p` clamped to `[0, 1]` (NaN counts as
/// 0), so every symbol stays codable whatever the model outputs. Returns the total,
/// which is at most [`MAX_TOTAL`] for any input. Exact and deterministic: scaling by a
/// power of two is exact, and `x + 0.5` is exact wherever `x` has a fraction (x < 2²³).
/// Rounding rather than flooring matters: `floor + 1` would hand the ~16k unlikely
/// symbols of a peaked distribution a systematic extra count each, costing the likely
/// symbol 0.3% of the ideal code length at p = 0.9999.
pub fn quantize(probs: &[f32], freqs: &mut [u32]) -> u64 {
    assert_eq!(probs.len(), freqs.len(), "one frequency per probability");
    let mut total = 0u64;
    for (f, &p) in freqs.iter_mut().zip(probs) {
        // `as u32` saturates and maps NaN to 0; p ≤ 1 keeps p·2³¹ + 1 within u32.
        let p = if p > 1.0 { 1.0 } else { p };
        *f = ((p * PROB_SCALE + 0.5) as u32).max(1);
        total += *f as u64;
    }
    if total > MAX_TOTAL {
        // Only a model that does not normalize can get here; scale down exactly.
        total = 0;
        for f in freqs.iter_mut() {
            *f = (*f >> 16).max(1); // total <= 65536 · 2^15 = 2^31
            total += *f as u64;
        }
    }
    total
}

/// The total of a binary decision ([`Encoder::encode_bit`]): probabilities are coded
/// in 16 bits, the precision of the byte model's own bound on them (2⁻¹⁶).
pub const BIT_TOTAL: u64 = 1 << 16;

/// The probability that a bit is 1 as a count of [`BIT_TOTAL`]: `round(p · 2¹⁶)` in
/// `1..=65535`, so both bits stay codable whatever the model outputs (NaN counts as 0).
/// Exact and deterministic, as [`quantize`].
pub fn quantize_bit(p1: f32) -> u32 {
    let p = if p1 > 1.0 { 1.0 } else { p1 };
    ((p * BIT_TOTAL as f32 + 0.5) as u32).clamp(1, BIT_TOTAL as u32 - 1)
}

/// Sum of `freqs[..symbol]`.
fn cumulative(freqs: &[u32], symbol: usize) -> u64 {
    freqs[..symbol].iter().map(|&f| f as u64).sum()
}

/// Range encoder. Invariants between calls: `RANGE_MIN <= range`, and `low < 2^64`
/// once the pending carry has been folded into `cache`.
pub struct Encoder {
    /// Bottom of the current interval; bit 64 is a carry not yet propagated.
    low: u128,
    range: u64,
    /// The last byte shifted out, held back because a carry may still change it.
    cache: u8,
    /// How many bytes are held back: `cache` and then `pending - 1` bytes of 0xFF.
    pending: u64,
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { low: 0, range: u64::MAX, cache: 0, pending: 1, out: Vec::new() }
    }

    /// Codes the interval `[cum, cum + freq)` of `total`.
    pub fn encode(&mut self, cum: u64, freq: u64, total: u64) {
        debug_assert!(freq > 0 && cum + freq <= total && total <= MAX_TOTAL);
        let r = self.range / total;
        self.low += (r as u128) * (cum as u128);
        self.range = r * freq;
        while self.range < RANGE_MIN {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Codes `symbol` under the frequency table `freqs` (whose sum is `total`).
    pub fn encode_symbol(&mut self, freqs: &[u32], total: u64, symbol: usize) {
        self.encode(cumulative(freqs, symbol), freqs[symbol] as u64, total);
    }

    /// Codes `bit` where 1 has probability `p1 / BIT_TOTAL` ([`quantize_bit`]): the
    /// interval `[0, p1)` for 1, `[p1, BIT_TOTAL)` for 0.
    pub fn encode_bit(&mut self, p1: u32, bit: u32) {
        let p1 = p1 as u64;
        if bit != 0 {
            self.encode(0, p1, BIT_TOTAL);
        } else {
            self.encode(p1, BIT_TOTAL - p1, BIT_TOTAL);
        }
    }

    /// Moves the top byte of `low` out, resolving carries (LZMA's scheme).
    fn shift_low(&mut self) {
        let top = (self.low >> TOP_SHIFT) as u64; // up to 9 bits: a carry and a byte
        if top != 0xFF {
            let carry = (top >> 8) as u8;
            self.out.push(self.cache.wrapping_add(carry));
            for _ in 1..self.pending {
                self.out.push(0xFFu8.wrapping_add(carry));
            }
            self.pending = 0;
            self.cache = top as u8;
        }
        // top == 0xFF: a later carry could still turn it into 0x00, so hold it back.
        self.pending += 1;
        self.low = (self.low & ((1u128 << TOP_SHIFT) - 1)) << 8;
    }

    /// Bytes written so far (the held-back bytes not counted).
    pub fn bytes_written(&self) -> u64 {
        self.out.len() as u64
    }

    /// Exact information content coded so far, in bits: the bytes shifted out plus
    /// what the current range has used of its 64-bit window. Excludes the constant
    /// cost of the final flush. For statistics only (it uses `f64::log2`).
    pub fn bits_used(&self) -> f64 {
        let shifted = self.out.len() as u64 + self.pending - 1; // minus the initial 0 byte
        8.0 * shifted as f64 + 64.0 - (self.range as f64).log2()
    }

    /// Ends the code in the current format ([`Termination::Shortest`]) and returns the
    /// coded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.finish_with(Termination::Shortest)
    }

    /// Ends the code with the given termination and returns the coded bytes.
    pub fn finish_with(mut self, termination: Termination) -> Vec<u8> {
        if termination == Termination::Shortest {
            self.low = shortest_value(self.low, self.range);
        }
        for _ in 0..=STATE_BYTES {
            self.shift_low();
        }
        // The first byte out is the initial empty cache: always 0 (the final interval
        // lies inside the initial one, [0, 2^64)), so neither termination stores it.
        debug_assert_eq!(self.out[0], 0);
        self.out.remove(0);
        if termination == Termination::Shortest {
            // The decoder reads zeros past the end: trailing zeros carry nothing.
            while self.out.last() == Some(&0) {
                self.out.pop();
            }
        }
        self.out
    }
}

/// How a coded payload ends. Both are exact: the decoder accepts exactly one payload
/// per symbol sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// Format 1: the 8 bytes of the final `low` follow the last shifted-out byte, and the
    /// decoder must end with `code == 0` having read every byte and no more.
    FullState,
    /// Format 2: the value of the final interval with the fewest significant bytes (a
    /// multiple of 2^64 if the interval holds one, else its smallest multiple of 2^56),
    /// without trailing zero bytes. The decoder reads zeros past
    /// the end of the payload; it accepts only if it has read every stored byte, the last
    /// stored byte is not 0, and its window holds exactly that value. 0 to 1 byte after
    /// the shifted-out ones instead of 8.
    Shortest,
}

/// The value of `[low, low + range)` (`low` may carry into bit 64) that the
/// [`Termination::Shortest`] encoder writes: a multiple of 2^64 if the interval holds one
/// (nothing to write but the carry), else the smallest multiple of 2^56 in it (one byte;
/// there is one since `range >= 2^56`). Only its low 64 bits matter to the decoder, which
/// recomputes them from its own state to check the end of the code.
fn shortest_value(low: u128, range: u64) -> u128 {
    let window = low & u64::MAX as u128; // low mod 2^64
    let base = low - window;
    if window == 0 {
        low
    } else if window + range as u128 > 1 << 64 {
        base + (1 << 64)
    } else {
        // window + range <= 2^64 and range >= 2^56 keep this below 2^64.
        let step = 1u128 << TOP_SHIFT;
        base + window.div_ceil(step) * step
    }
}

/// Range decoder, the mirror of [`Encoder`]. Invariant: `code < range`.
pub struct Decoder<'a> {
    code: u64,
    range: u64,
    /// The last 8 bytes read (zeros past the end included), for the end check of
    /// [`Termination::Shortest`]: `window - code` is the encoder's `low` mod 2^64.
    window: u64,
    input: &'a [u8],
    /// Bytes read so far, those past the end of `input` included.
    pos: usize,
    termination: Termination,
}

impl<'a> Decoder<'a> {
    /// A decoder for a payload of the current format ([`Termination::Shortest`]).
    pub fn new(input: &'a [u8]) -> Result<Decoder<'a>> {
        Decoder::with_termination(input, Termination::Shortest)
    }

    /// A decoder for a payload that ends as `termination` says.
    pub fn with_termination(input: &'a [u8], termination: Termination) -> Result<Decoder<'a>> {
        let mut d = Decoder { code: 0, range: u64::MAX, window: 0, input, pos: 0, termination };
        for _ in 0..STATE_BYTES {
            d.code = (d.code << 8) | d.next_byte()? as u64;
        }
        Ok(d)
    }

    fn next_byte(&mut self) -> Result<u8> {
        let b = match self.input.get(self.pos) {
            Some(&b) => b,
            None if self.termination == Termination::Shortest => 0,
            None => bail!("truncated or corrupt data: the coded payload ended early"),
        };
        self.pos += 1;
        self.window = (self.window << 8) | b as u64;
        Ok(b)
    }

    /// The value in `0..total` that identifies the next symbol's interval.
    pub fn target(&mut self, total: u64) -> u64 {
        let r = self.range / total;
        (self.code / r).min(total - 1)
    }

    /// Removes the interval `[cum, cum + freq)` found with [`Decoder::target`].
    pub fn consume(&mut self, cum: u64, freq: u64, total: u64) -> Result<()> {
        let r = self.range / total;
        self.code -= r * cum; // cannot underflow: target() >= cum
        self.range = r * freq;
        if self.code >= self.range {
            bail!("corrupt data: the coded payload is not a valid arithmetic code");
        }
        while self.range < RANGE_MIN {
            self.range <<= 8;
            self.code = (self.code << 8) | self.next_byte()? as u64;
        }
        Ok(())
    }

    /// Decodes one symbol under `freqs` (whose sum is `total`).
    pub fn decode_symbol(&mut self, freqs: &[u32], total: u64) -> Result<usize> {
        let target = self.target(total);
        let mut cum = 0u64;
        for (s, &f) in freqs.iter().enumerate() {
            let next = cum + f as u64;
            if target < next {
                self.consume(cum, f as u64, total)?;
                return Ok(s);
            }
            cum = next;
        }
        bail!("corrupt data: frequency table does not cover the coded value")
    }

    /// Decodes a bit coded by [`Encoder::encode_bit`] with the same `p1`.
    pub fn decode_bit(&mut self, p1: u32) -> Result<u32> {
        let p1 = p1 as u64;
        if self.target(BIT_TOTAL) < p1 {
            self.consume(0, p1, BIT_TOTAL)?;
            Ok(1)
        } else {
            self.consume(p1, BIT_TOTAL - p1, BIT_TOTAL)?;
            Ok(0)
        }
    }

    /// True when every byte of the payload has been consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Checks that the payload ends exactly where the encoder's did, which catches
    /// damage to the last bytes that the decoded symbols alone might not reveal.
    ///
    /// [`Termination::FullState`]: the encoder flushes the bottom of its final interval,
    /// so a decoder that followed it exactly is left with `code == 0` and no unread byte.
    ///
    /// [`Termination::Shortest`]: the decoder has read `input` followed by zeros, its
    /// stream stands `code` above the encoder's `low`. It accepts when (1) it read every
    /// stored byte, (2) the last stored byte is not 0, and (3) its window (the last 8 bytes
    /// read) is the window of `shortest_value` for `low = window - code` and its range.
    /// Then the stream it read equals, byte for byte, the encoder's output for the symbols
    /// it decoded (both are `low + code` over the same number of bytes, by (3)), so by
    /// (1) and (2) `input` is that output with its trailing zeros removed: the one payload
    /// the encoder writes for these symbols. A payload cut short or extended decodes to
    /// other symbols (which the frame's checksum catches) or fails here.
    pub fn finish(self) -> Result<()> {
        if !self.at_end() {
            bail!("corrupt data: {} trailing bytes after the coded payload", self.input.len() - self.pos);
        }
        let ended = match self.termination {
            Termination::FullState => self.code == 0,
            Termination::Shortest => {
                if self.input.last() == Some(&0) {
                    bail!("corrupt data: the coded payload ends in a zero byte, which the encoder never writes");
                }
                let low = self.window.wrapping_sub(self.code);
                self.window == shortest_value(low as u128, self.range) as u64
            }
        };
        if !ended {
            bail!("corrupt data: the coded payload does not end where the encoder's did");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
