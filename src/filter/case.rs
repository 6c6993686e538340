//! The capitals filter for text: a capitalized word becomes an escape and the word in
//! lower case, so that "The" and "the" share the byte model's contexts.
//!
//! The tokenizer does the same for the tokenized models (NNCP's case transform); this is
//! its byte-level form, as paq8's and cmix's text preprocessors have it. Forward, at each
//! position `i` of the input:
//! - a byte [`CAP`], [`UPPER`] or [`ESC`] (1, 2, 3: control bytes text never holds)
//!   becomes `ESC` and the byte;
//! - at the start of a word (position 0 or after a byte that is not an ASCII letter), a
//!   run of two or more ASCII capitals that ends the word (the byte after it is no ASCII
//!   letter, or the input ends) becomes `UPPER` and the run in lower case;
//! - at the start of a word, any other capital becomes `CAP` and the letter in lower case;
//! - every other byte is copied.
//!
//! Why the inverse is exact for any input: it reads the output left to right, and each
//! forward rule starts with a byte that no other rule writes at that place — `ESC` and
//! `CAP` are followed by the one byte they stand for (copied back, or upper-cased: `CAP`
//! always precedes a lower-case letter); `UPPER` by lower-case letters that end where the
//! word ended, at a byte that is no ASCII letter — so no lower-case letter — and that is
//! itself written by a later rule; every other byte stands for itself, since the bytes
//! 1, 2 and 3 of the input were all escaped. On bytes that no forward pass wrote (a
//! corrupt file), the inverse still ends and writes something; the checksum rejects it.
//!
//! Measured with `nnz compress -p fast` (the byte context model alone), the files with
//! the filter against without: calgary paper2 −0.4%, bib −0.8%, news −1.4%, progc −0.9%,
//! book1 −0.2%; canterbury asyoulik.txt −1.1%, alice29.txt −0.6%, cp.html −3.8%,
//! plrabn12.txt −1.1%, lcet10.txt −0.1%. It is chosen for text frames only
//! ([`crate::choose::is_text`]): calgary trans, a terminal session full of control
//! sequences, grew by 0.8% with it, and is not text by that test.
//!
//! ```
//! use nnz::filter::case;
//! let text = b"The CAT saw McDonald and I.";
//! let coded = case::forward(text);
//! assert_eq!(coded, b"\x01the \x02cat saw \x01mcDonald and \x01i.");
//! assert_eq!(case::inverse(&coded), text);
//! ```

/// Escape of a capitalized word: the next byte is its first letter, in lower case.
pub const CAP: u8 = 1;
/// Escape of a word in capitals: the lower-case letters that follow are its letters.
pub const UPPER: u8 = 2;
/// Escape of the input's own bytes 1, 2 and 3.
pub const ESC: u8 = 3;

/// Whether a word may start after `prev` (`None`: at the start).
fn word_start(prev: Option<u8>) -> bool {
    prev.is_none_or(|b| !b.is_ascii_alphabetic())
}

/// The filtered form of `data`.
pub fn forward(data: &[u8]) -> Vec<u8> {
    let n = data.len();
    let mut out = Vec::with_capacity(n + n / 32 + 16);
    let mut i = 0;
    while i < n {
        let c = data[i];
        if (CAP..=ESC).contains(&c) {
            out.extend_from_slice(&[ESC, c]);
            i += 1;
        } else if c.is_ascii_uppercase() && word_start(i.checked_sub(1).map(|p| data[p])) {
            let run = data[i..].iter().take_while(|b| b.is_ascii_uppercase()).count();
            let ends_word = data.get(i + run).is_none_or(|b| !b.is_ascii_alphabetic());
            if run >= 2 && ends_word {
                out.push(UPPER);
                out.extend(data[i..i + run].iter().map(u8::to_ascii_lowercase));
                i += run;
            } else {
                out.extend_from_slice(&[CAP, c.to_ascii_lowercase()]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Undoes [`forward`].
pub fn inverse(data: &[u8]) -> Vec<u8> {
    let n = data.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        match data[i] {
            ESC | CAP => {
                if let Some(&b) = data.get(i + 1) {
                    out.push(if data[i] == CAP { b.to_ascii_uppercase() } else { b });
                }
                i += 2;
            }
            UPPER => {
                i += 1;
                while i < n && data[i].is_ascii_lowercase() {
                    out.push(data[i].to_ascii_uppercase());
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Whether the filter changes `data` at all: some word starts with a capital, or the
/// input holds an escape byte.
pub fn applies(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &c)| {
        (CAP..=ESC).contains(&c) || (c.is_ascii_uppercase() && word_start(i.checked_sub(1).map(|p| data[p])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        for (text, coded) in [
            (&b""[..], &b""[..]),
            (b"A", b"\x01a"),
            (b"AB", b"\x02ab"),
            (b"ABc", b"\x01aBc"),
            (b"I'M OK.", b"\x01i'\x01m \x02ok."),
            (b"x\x01\x02\x03y", b"x\x03\x01\x03\x02\x03\x03y"),
            (b"NASA\x01", b"\x02nasa\x03\x01"),
            (b"aBC Dd", b"aBC \x01dd"),
            (b"\xc3\x89T\xc3\xa9", b"\xc3\x89\x01t\xc3\xa9"),
        ] {
            assert_eq!(forward(text), coded, "{:?}", String::from_utf8_lossy(text));
            assert_eq!(inverse(coded), text);
        }
    }

    #[test]
    fn corrupt_input_does_not_panic() {
        for bad in [&b"\x01"[..], b"\x03", b"\x02", b"\x02\x02\x01", b"\x01\x01\x01"] {
            let _ = inverse(bad);
        }
    }

    /// Bytes where the rules meet: letters of both cases, escapes, spaces, other bytes.
    fn texty() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b"ABCZabcz".to_vec()),
                2 => proptest::sample::select(b" .'\n".to_vec()),
                1 => proptest::sample::select(vec![0u8, 1, 2, 3, 4, 0x80, 0xc3, 0xff]),
            ],
            0..200,
        )
    }

    proptest! {
        #[test]
        fn inverse_undoes_forward(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(inverse(&forward(&data)), data);
        }

        #[test]
        fn inverse_undoes_forward_on_text(data in texty()) {
            let coded = forward(&data);
            prop_assert_eq!(applies(&data), coded != data);
            prop_assert_eq!(inverse(&coded), data);
        }

        #[test]
        fn inverse_of_anything_ends(data in texty()) {
            let _ = inverse(&data);
        }
    }
}
