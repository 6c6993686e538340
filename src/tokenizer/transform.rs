//! The case/space transform (NNCP's preprocessor, first stage).
//!
//! A *word* is a maximal run of ASCII letters or bytes >= 128 (so UTF-8 letters stay inside
//! words). As in NNCP, a word is cut where its case changes into sub-words of one of three
//! shapes: small letters (`the`; bytes >= 128 count as small), one capital and small
//! letters (`The`), or two or more capitals (`THE`). Each sub-word is written lower-case
//! and with a leading space, so that `The`, ` the`, `(the` and `THE` all share the base
//! symbols ` the` and BPE can merge them into one token; no ASCII capital is left.
//!
//! ```text
//! sub-word := [NOSPACE] [CAP | ALLCAPS] ' ' lower-cased sub-word bytes
//! ```
//!
//! - `NOSPACE`: the sub-word had no space before it; the decoder drops the `' '` that
//!   follows (`McDonald` is `CAP " mc" NOSPACE CAP " donald"`).
//! - `CAP`: the first letter was a capital; `ALLCAPS`: all letters were.
//!
//! The escapes are dedicated symbol ids 256..259, not bytes: every byte 0..=255 keeps its
//! own meaning, so binary data, control characters and invalid UTF-8 need no literal
//! escape and cannot make the stream longer through escaping.
//!
//! ```
//! use nnz::tokenizer::transform::{forward, inverse, CAP, NOSPACE};
//! let mut base = Vec::new();
//! forward(b"The cat", &mut base);
//! assert_eq!(base, [NOSPACE, CAP, 32, 116, 104, 101, 32, 99, 97, 116]);
//! let mut back = Vec::new();
//! inverse(&base, &mut back).unwrap();
//! assert_eq!(back, b"The cat");
//! ```
//!
//! The forward transform is a pure function of one slice. Concatenating the transforms of
//! two slices is always decodable, and equals the transform of the whole when the cut
//! follows a byte that is neither a word byte nor a space ([`is_safe_cut`]).

use anyhow::{bail, Result};

/// The next word had no space before it (the `' '` after this escape is not in the data).
pub const NOSPACE: u16 = 256;
/// The next word is Capitalized.
pub const CAP: u16 = 257;
/// The next word is in ALL CAPS.
pub const ALLCAPS: u16 = 258;
/// Number of base symbols when the transform is on: 256 bytes and 3 escapes.
pub const BASE_WITH_TRANSFORM: usize = 259;

/// A byte that belongs to words: ASCII letters and all bytes >= 128.
#[inline]
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphabetic() || b >= 128
}

/// True if a chunk may end after `b` without changing the transform of the whole.
#[inline]
pub fn is_safe_cut(b: u8) -> bool {
    !is_word_byte(b) && b != b' '
}

/// An ASCII small letter or a byte >= 128 (NNCP counts those as lower case).
#[inline]
fn is_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b >= 128
}

/// The sub-word starting at `start` (a word byte): its end and its case escape.
fn subword(data: &[u8], start: usize) -> (usize, Option<u16>) {
    let run = |from: usize, f: fn(u8) -> bool| from + data[from..].iter().take_while(|&&b| f(b)).count();
    let b0 = data[start];
    if !b0.is_ascii_uppercase() {
        (run(start + 1, is_lower), None)
    } else if data.get(start + 1).is_some_and(|b| b.is_ascii_uppercase()) {
        (run(start + 1, |b| b.is_ascii_uppercase()), Some(ALLCAPS))
    } else {
        (run(start + 1, is_lower), Some(CAP))
    }
}

/// Appends the transform of `data` to `out`.
pub fn forward(data: &[u8], out: &mut Vec<u16>) {
    out.reserve(data.len() + data.len() / 8);
    let n = data.len();
    let mut i = 0;
    while i < n {
        let b = data[i];
        let spaced = b == b' ' && i + 1 < n && is_word_byte(data[i + 1]);
        if !spaced && !is_word_byte(b) {
            out.push(b as u16);
            i += 1;
            continue;
        }
        let start = if spaced { i + 1 } else { i };
        let (end, case) = subword(data, start);
        if !spaced {
            out.push(NOSPACE);
        }
        if let Some(c) = case {
            out.push(c);
        }
        out.push(b' ' as u16);
        out.extend(data[start..end].iter().map(|b| b.to_ascii_lowercase() as u16));
        i = end;
    }
}

/// What the inverse transform expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anything.
    Any,
    /// After NOSPACE: a case escape or the space.
    CaseOrSpace,
    /// After a case escape: the space.
    Space,
    /// After the space of a word group: a word byte.
    WordByte,
}

/// Inverse transform, incremental so that a decoder can feed it token by token.
pub struct Inverse {
    expect: Expect,
    nospace: bool,
    case: u16,
    /// Inside an ALL-CAPS word: word bytes are upper-cased.
    allcaps_run: bool,
}

impl Default for Inverse {
    fn default() -> Self {
        Inverse { expect: Expect::Any, nospace: false, case: 0, allcaps_run: false }
    }
}

impl Inverse {
    /// Feeds base symbols; appends the bytes they stand for.
    pub fn push(&mut self, base: &[u16], out: &mut Vec<u8>) -> Result<()> {
        for &x in base {
            match self.expect {
                Expect::Any => {
                    if self.allcaps_run {
                        if x < 256 && is_word_byte(x as u8) {
                            out.push((x as u8).to_ascii_uppercase());
                            continue;
                        }
                        self.allcaps_run = false;
                    }
                    match x {
                        NOSPACE => {
                            self.nospace = true;
                            self.expect = Expect::CaseOrSpace;
                        }
                        CAP | ALLCAPS => {
                            self.case = x;
                            self.expect = Expect::Space;
                        }
                        b if b < 256 => out.push(b as u8),
                        _ => bail!("corrupt data: base symbol {x} is not a byte or an escape"),
                    }
                }
                Expect::CaseOrSpace => match x {
                    CAP | ALLCAPS => {
                        self.case = x;
                        self.expect = Expect::Space;
                    }
                    32 => self.expect = Expect::WordByte,
                    _ => bail!("corrupt data: NOSPACE escape followed by symbol {x}, not a space"),
                },
                Expect::Space => {
                    if x != 32 {
                        bail!("corrupt data: case escape followed by symbol {x}, not a space");
                    }
                    if !self.nospace {
                        out.push(b' ');
                    }
                    self.expect = Expect::WordByte;
                }
                Expect::WordByte => {
                    if x >= 256 || !is_word_byte(x as u8) {
                        bail!("corrupt data: escape not followed by a word (symbol {x})");
                    }
                    let b = x as u8;
                    match self.case {
                        CAP => {
                            if !b.is_ascii_lowercase() {
                                bail!("corrupt data: CAP escape before byte {b}, not a small letter");
                            }
                            out.push(b.to_ascii_uppercase());
                        }
                        ALLCAPS => {
                            out.push(b.to_ascii_uppercase());
                            self.allcaps_run = true;
                        }
                        _ => out.push(b),
                    }
                    self.nospace = false;
                    self.case = 0;
                    self.expect = Expect::Any;
                }
            }
        }
        Ok(())
    }

    /// Checks that the stream did not stop inside a word group.
    pub fn finish(&self) -> Result<()> {
        if self.expect != Expect::Any {
            bail!("corrupt data: the symbols end inside an escape sequence");
        }
        Ok(())
    }
}

/// Appends the inverse transform of a whole base-symbol stream.
pub fn inverse(base: &[u16], out: &mut Vec<u8>) -> Result<()> {
    let mut inv = Inverse::default();
    inv.push(base, out)?;
    inv.finish()
}

/// Splits `data` into chunks of about `target` bytes, each cut (where one is found within
/// `target / 4` bytes) right after a [safe](is_safe_cut) byte. Returns the chunk ends.
pub fn chunk_ends(data: &[u8], target: usize) -> Vec<usize> {
    let mut ends = Vec::with_capacity(data.len() / target.max(1) + 1);
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + target).min(data.len());
        if end < data.len() {
            let limit = (end + target / 4).min(data.len());
            if let Some(k) = data[end..limit].iter().position(|&b| is_safe_cut(b)) {
                end += k + 1;
            }
        }
        ends.push(end);
        start = end;
    }
    ends
}
