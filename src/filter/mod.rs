//! Reversible filters applied to a frame's bytes before the byte model codes them.
//!
//! A filter rewrites the input into a form the model predicts better and is undone exactly
//! after decoding; the frame's header records which one was used (a field of
//! [`crate::model::bytectx::ByteCtxConfig`]) and its checksum covers the original bytes,
//! so a wrong inverse cannot go unnoticed. There are two: [`x86`] (relative call and
//! jump targets of x86 code made absolute; the length is kept) and [`case`] (capitalized
//! words of text as an escape and the word in lower case; the length changes, and the
//! header's symbol count is the filtered length).
//!
//! ```
//! use nnz::filter::Filter;
//! let data = vec![0x90, 0xe8, 0x10, 0x00, 0x00, 0x00, 0xc3];
//! let coded = Filter::X86.forward(&data);
//! assert_ne!(coded, data);
//! assert_eq!(Filter::X86.inverse(coded), data);
//! assert_eq!(Filter::choose(b"The text. The end."), Filter::Case);
//! ```

pub mod case;
pub mod x86;

use anyhow::{bail, Result};

/// A reversible transform of a frame's bytes (recorded in the header as one byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Filter {
    /// The bytes as they are.
    #[default]
    None,
    /// x86 E8/E9 call/jump targets made absolute ([`x86`]).
    X86,
    /// Capitalized words as an escape and the word in lower case ([`case`]).
    Case,
}

impl Filter {
    pub fn to_byte(self) -> u8 {
        match self {
            Filter::None => 0,
            Filter::X86 => 1,
            Filter::Case => 2,
        }
    }

    /// What `nnz info` calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Filter::None => "none",
            Filter::X86 => "x86 (E8/E9 call and jump targets made absolute)",
            Filter::Case => "case (capitalized words as an escape and the word in lower case)",
        }
    }

    pub fn from_byte(b: u8) -> Result<Filter> {
        Ok(match b {
            0 => Filter::None,
            1 => Filter::X86,
            2 => Filter::Case,
            _ => bail!("unknown filter {b} (0: none, 1: x86, 2: case)"),
        })
    }

    /// The filtered copy of `data` (before coding).
    pub fn forward(self, data: &[u8]) -> Vec<u8> {
        match self {
            Filter::None => data.to_vec(),
            Filter::X86 => {
                let mut out = data.to_vec();
                x86::forward(&mut out);
                out
            }
            Filter::Case => case::forward(data),
        }
    }

    /// Undoes [`Filter::forward`] (after decoding).
    pub fn inverse(self, mut data: Vec<u8>) -> Vec<u8> {
        match self {
            Filter::None => data,
            Filter::X86 => {
                x86::inverse(&mut data);
                data
            }
            Filter::Case => case::inverse(&data),
        }
    }

    /// Whether the filtered bytes are as many as the original ones.
    pub fn keeps_length(self) -> bool {
        self != Filter::Case
    }

    /// The filter for `data`: [`Filter::X86`] where [`x86::detect`] finds x86 code that
    /// the transform helps, [`Filter::Case`] for text ([`crate::choose::is_text`]) where
    /// it changes something, [`Filter::None`] otherwise.
    pub fn choose(data: &[u8]) -> Filter {
        if x86::detect(data) {
            Filter::X86
        } else if crate::choose::is_text(data) && case::applies(data) {
            Filter::Case
        } else {
            Filter::None
        }
    }
}
