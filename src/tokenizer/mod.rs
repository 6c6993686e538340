//! Tokenizer: turns bytes into symbols so the predictor sees words and word pieces.
//!
//! Placeholder with the final API: today the dictionary is the 256 raw bytes only.

use anyhow::{bail, Result};

/// How the dictionary is built. Stored in the header for information; decoding needs
/// only the serialized dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Largest number of symbols, raw bytes included (256..=65536).
    pub max_vocab: u32,
    /// Smallest count for a merged symbol to be kept.
    pub min_freq: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_vocab: 16384, min_freq: 32 }
    }
}

/// The symbol table: symbols `0..256` are the raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dictionary {
    vocab: usize,
}

impl Dictionary {
    /// Builds the dictionary for `data`.
    pub fn build(_data: &[u8], _opts: &Options) -> Dictionary {
        Dictionary { vocab: 256 }
    }

    /// The identity dictionary: 256 symbols, one per byte, no transform.
    pub fn bytes_only() -> Dictionary {
        Dictionary { vocab: 256 }
    }

    /// Number of symbols, `V`.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// The symbols of `data`.
    pub fn encode(&self, data: &[u8]) -> Vec<u16> {
        data.iter().map(|&b| b as u16).collect()
    }

    /// Appends the bytes of `symbols` to `out`; errors on a symbol sequence that no
    /// input could have produced.
    pub fn decode(&self, symbols: &[u16], out: &mut Vec<u8>) -> Result<()> {
        for &s in symbols {
            if s as usize >= self.vocab {
                bail!("corrupt data: symbol {s} outside the dictionary of {}", self.vocab);
            }
            out.push(s as u8);
        }
        Ok(())
    }

    /// The dictionary's compact serialization.
    pub fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Parses what [`Dictionary::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Dictionary> {
        if !bytes.is_empty() {
            bail!("corrupt dictionary: {} unexpected bytes", bytes.len());
        }
        Ok(Dictionary { vocab: 256 })
    }
}
