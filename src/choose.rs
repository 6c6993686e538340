//! The automatic choice of model (`nnz compress` without `--model`): the byte model, or
//! the tokenized LSTM mixture for large text.
//!
//! Measured on the Calgary and Canterbury corpora, the first MB of four Silesia files and
//! the first 4 MB of Silesia's dickens (see the table in the README), `--model bytes`
//! codes every file in fewer bits than the tokenized `--model lstm`: by 20–78% on
//! binaries, 8–24% on text up to 1 MB, and 4.5% on 4 MB of English text. The gap on text
//! narrows as the input grows (the word-level network needs data; the byte contexts
//! learn fast): 10% at 150 kB, 8% at 770 kB, 4.5% at 4 MB, falling by about 3 points per
//! 5× more data, so it closes near 32 MiB. Text frames from [`TOKENS_MIN_LEN`] on go to the
//! tokenized model (an extrapolation, not a measurement: no text that large is on the
//! development machine), everything else to the byte model.
//!
//! The look at the data is one pass of integer counts: the share of bytes that belong to
//! text (printable ASCII, tab, line feed, carriage return, well-formed UTF-8 sequences).
//! The header records the model chosen (its model kind), so the decoder never repeats the
//! choice.
//!
//! ```
//! use nnz::choose::{choose, decide, Choice, TOKENS_MIN_LEN};
//! assert_eq!(choose(b"It was the best of times, it was the worst of times."), Choice::Bytes);
//! assert_eq!(decide(TOKENS_MIN_LEN, TOKENS_MIN_LEN), Choice::Tokens); // large, all text
//! assert_eq!(decide(TOKENS_MIN_LEN, TOKENS_MIN_LEN / 2), Choice::Bytes); // large, half binary
//! ```

/// What [`choose`] picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The dictionary pass and the LSTM mixed with the n-gram model (large text).
    Tokens,
    /// The byte model: byte contexts mixed with a neural model over bytes.
    Bytes,
}

/// Text bytes per 1000 at or above which the input counts as text.
pub const TEXT_PER_MILLE: u64 = 970;

/// Text frames of at least this many bytes go to the tokenized model.
pub const TOKENS_MIN_LEN: u64 = 32 << 20;

/// The number of bytes of `data` that are text: printable ASCII, `\t`, `\n`, `\r`, and
/// the bytes of well-formed UTF-8 multi-byte sequences.
pub fn text_bytes(data: &[u8]) -> u64 {
    let mut count = 0u64;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        let len = match c {
            b'\t' | b'\n' | b'\r' | 0x20..=0x7e => {
                count += 1;
                i += 1;
                continue;
            }
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        if len > 0 && i + len <= data.len() && data[i + 1..i + len].iter().all(|&b| b & 0xc0 == 0x80) {
            count += len as u64;
            i += len;
        } else {
            i += 1;
        }
    }
    count
}

/// Whether `len` bytes of which `text` are text count as text (at least
/// [`TEXT_PER_MILLE`] of them).
fn counts_as_text(len: u64, text: u64) -> bool {
    text as u128 * 1000 >= TEXT_PER_MILLE as u128 * len as u128
}

/// Whether `data` counts as text.
pub fn is_text(data: &[u8]) -> bool {
    counts_as_text(data.len() as u64, text_bytes(data))
}

/// The choice for `len` bytes of which `text` are text.
pub fn decide(len: u64, text: u64) -> Choice {
    if len >= TOKENS_MIN_LEN && counts_as_text(len, text) {
        Choice::Tokens
    } else {
        Choice::Bytes
    }
}

/// Chooses the model for `data` (one frame).
pub fn choose(data: &[u8]) -> Choice {
    if (data.len() as u64) < TOKENS_MIN_LEN {
        return Choice::Bytes; // no need to look
    }
    decide(data.len() as u64, text_bytes(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_counts_as_text_and_broken_utf8_does_not() {
        assert_eq!(text_bytes("héllo wörld — ok".as_bytes()), "héllo wörld — ok".len() as u64);
        assert_eq!(text_bytes(&[0xc3, b'a', 0xff, 0x80]), 1);
        assert_eq!(text_bytes(&[0xe2, 0x80]), 0, "a truncated sequence is not text");
    }

    #[test]
    fn large_text_goes_to_tokens_and_the_rest_to_bytes() {
        let big = TOKENS_MIN_LEN;
        assert_eq!(decide(big, big), Choice::Tokens);
        assert_eq!(decide(big, big / 1000 * 970 + 1000), Choice::Tokens);
        assert_eq!(decide(big, big / 2), Choice::Bytes, "half binary");
        assert_eq!(decide(big - 1, big - 1), Choice::Bytes, "text under the threshold");
        assert_eq!(decide(0, 0), Choice::Bytes);
        // A little binary in a large text stays text; more does not.
        let mut data = b"plain words on a line\n".repeat(1000);
        let n = data.len() as u64;
        assert!(text_bytes(&data) * 1000 >= TEXT_PER_MILLE * n);
        data.extend(std::iter::repeat_n(0u8, 1000));
        assert!(text_bytes(&data) * 1000 < TEXT_PER_MILLE * data.len() as u64);
    }
}
