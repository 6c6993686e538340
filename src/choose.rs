//! The automatic choice of model (`nnz compress` without `--model`): the byte model, for
//! every input, and a look at each frame that decides whether the byte model treats it as
//! text (the capitals filter, the primer, and under `fast` whether the LSTM over bytes
//! joins the mixture).
//!
//! `--model bytes` measured better than the tokenized models on every input tried: by
//! 20–78% on binaries, 8–24% on text up to 1 MB (Calgary, Canterbury, the first MB of
//! Silesia files), and on larger text too, where the word-level networks were expected to
//! catch up: silesia/dickens (10 MB) 2,094,072 bytes against the LSTM's 2,175,803 and the
//! Transformer's 2,185,945 (both `-p default`); the first 4 MiB of the Linux 6.1 sources
//! (`fast`) 523,206 against 631,792 (LSTM) and 635,627 (Transformer); the first 100 MiB of
//! them (`fast`, the README's table) 10,673,276 bytes (0.814 bits per byte) against the
//! LSTM's 14,849,886 (1.133). Until then `auto` sent
//! text frames of 32 MiB and more to the tokenized LSTM, a threshold extrapolated from
//! files up to 4 MB; the measurements did not bear it out, so that branch is gone, and
//! `--model lstm` / `--model transformer` are there for whoever asks for them.
//!
//! The look at the data is one pass of integer counts: the share of bytes that belong to
//! text (printable ASCII, tab, line feed, carriage return, well-formed UTF-8 sequences).
//! The header records the model's parameters, so the decoder never repeats the look.
//!
//! ```
//! use nnz::choose::is_text;
//! assert!(is_text(b"It was the best of times, it was the worst of times."));
//! assert!(!is_text(&[0u8, 1, 2, 3, 0xff, 0xfe]));
//! ```

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

/// Whether `len` bytes of which `text` are text count as text (at least
/// [`TEXT_PER_MILLE`] of them).
pub fn counts_as_text(len: u64, text: u64) -> bool {
    text as u128 * 1000 >= TEXT_PER_MILLE as u128 * len as u128
}

/// Whether `data` counts as text.
pub fn is_text(data: &[u8]) -> bool {
    counts_as_text(data.len() as u64, text_bytes(data))
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
    fn a_little_binary_in_a_text_stays_text_and_more_does_not() {
        let mut data = b"plain words on a line\n".repeat(1000);
        assert!(is_text(&data));
        assert!(is_text(&[]), "nothing counts as text");
        data.extend(std::iter::repeat_n(0u8, 600));
        assert!(is_text(&data), "2.7% binary");
        data.extend(std::iter::repeat_n(0u8, 200));
        assert!(!is_text(&data), "3.5% binary");
    }
}
