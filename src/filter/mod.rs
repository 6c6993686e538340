//! Reversible filters applied to a frame's bytes before the byte model codes them.
//!
//! A filter rewrites the input into a form the model predicts better and is undone exactly
//! after decoding; the frame's header records which one was used (a field of
//! [`crate::model::bytectx::ByteCtxConfig`]) and its checksum covers the original bytes,
//! so a wrong inverse cannot go unnoticed. Today there is one filter, [`x86`]: relative
//! call and jump targets of x86 code made absolute.
//!
//! ```
//! use nnz::filter::Filter;
//! let mut data = vec![0x90, 0xe8, 0x10, 0x00, 0x00, 0x00, 0xc3];
//! let original = data.clone();
//! Filter::X86.forward(&mut data);
//! assert_ne!(data, original);
//! Filter::X86.inverse(&mut data);
//! assert_eq!(data, original);
//! ```

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
}

impl Filter {
    pub fn to_byte(self) -> u8 {
        match self {
            Filter::None => 0,
            Filter::X86 => 1,
        }
    }

    /// What `nnz info` calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Filter::None => "none",
            Filter::X86 => "x86 (E8/E9 call and jump targets made absolute)",
        }
    }

    pub fn from_byte(b: u8) -> Result<Filter> {
        Ok(match b {
            0 => Filter::None,
            1 => Filter::X86,
            _ => bail!("unknown filter {b} (0: none, 1: x86)"),
        })
    }

    /// Applies the filter in place (before coding).
    pub fn forward(self, data: &mut [u8]) {
        match self {
            Filter::None => {}
            Filter::X86 => x86::forward(data),
        }
    }

    /// Undoes [`Filter::forward`] in place (after decoding).
    pub fn inverse(self, data: &mut [u8]) {
        match self {
            Filter::None => {}
            Filter::X86 => x86::inverse(data),
        }
    }

    /// The filter for `data`: [`Filter::X86`] where [`x86::detect`] finds x86 code that
    /// the transform helps, [`Filter::None`] otherwise.
    pub fn choose(data: &[u8]) -> Filter {
        if x86::detect(data) {
            Filter::X86
        } else {
            Filter::None
        }
    }
}
