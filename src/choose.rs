//! The automatic choice of model: the tokenized LSTM mixture for text, the byte model
//! for everything else.
//!
//! The dictionary pass and the word-level LSTM pay off on text; on executables, tables,
//! images and databases, a byte-level context model wins (see the README's table). The
//! choice looks at the data once, cheaply (one pass, integer counts only): the share of
//! bytes that belong to text — printable ASCII, tab, line feed, carriage return, and
//! well-formed UTF-8 sequences. Deterministic; the header records the model chosen (its
//! model kind), so the decoder never repeats the choice.
//!
//! ```
//! use nnz::choose::{choose, Choice};
//! assert_eq!(choose(b"It was the best of times, it was the worst of times."), Choice::Tokens);
//! assert_eq!(choose(&[0u8, 1, 2, 3, 200, 17, 0, 0, 9, 255, 4, 0]), Choice::Bytes);
//! ```

/// What [`choose`] picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The dictionary pass and the LSTM mixed with order-2 (text).
    Tokens,
    /// The byte model: byte contexts mixed with a neural model over bytes.
    Bytes,
}

/// Text bytes per 1000 at or above which the input counts as text.
pub const TEXT_PER_MILLE: u64 = 970;

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

/// Chooses the model for `data`: text at [`TEXT_PER_MILLE`] or more goes to the
/// tokenized model.
pub fn choose(data: &[u8]) -> Choice {
    if data.is_empty() || text_bytes(data) * 1000 >= TEXT_PER_MILLE * data.len() as u64 {
        Choice::Tokens
    } else {
        Choice::Bytes
    }
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
    fn a_little_binary_in_text_stays_text() {
        let mut data = b"plain words on a line\n".repeat(100);
        data.extend_from_slice(&[0, 1, 2, 3]);
        assert_eq!(choose(&data), Choice::Tokens);
        data.extend(std::iter::repeat_n(0u8, 200));
        assert_eq!(choose(&data), Choice::Bytes);
    }
}
