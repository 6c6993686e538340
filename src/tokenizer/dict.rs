//! The dictionary's byte format.
//!
//! ```text
//! offset  size  field
//! 0       1     version, 1
//! 1       1     flags: bit 0 = case/space transform on; bits 1-7 reserved, must be 0
//! 2       1-3   M, the number of merges, LEB128 (shortest form)
//! ...           M merge records, bit-packed LSB-first:
//!                 left id, right id: w_k bits each, w_k = bits needed for base + k - 1
//!                 emitted: 1 bit (0 = the merged symbol is only an intermediate step)
//!               zero bits up to the next byte boundary, then nothing
//! ```
//!
//! `base` is 259 with the transform (256 bytes and 3 escapes) and 256 without; merge `k`
//! creates internal symbol `base + k`, so its parts are below `base + k` and `w_k` bits
//! hold them. The identity dictionary is the three bytes `01 00 00`.

use anyhow::{bail, Result};

pub const VERSION: u8 = 1;
pub const FLAG_TRANSFORM: u8 = 1;

/// The fields of a dictionary as stored.
pub struct Parts {
    pub transform: bool,
    pub merges: Vec<(u16, u16)>,
    pub emitted: Vec<bool>,
}

fn width(n: usize) -> u32 {
    // Bits to write any value below n (n >= 2).
    usize::BITS - (n - 1).leading_zeros()
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    fn put(&mut self, v: u32, w: u32) {
        self.acc |= (v as u64) << self.nbits;
        self.nbits += w;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
}

impl BitReader<'_> {
    fn get(&mut self, w: u32) -> Result<u32> {
        while self.nbits < w {
            let Some(&b) = self.bytes.get(self.pos) else {
                bail!("corrupt dictionary: truncated merge list");
            };
            self.acc |= (b as u64) << self.nbits;
            self.pos += 1;
            self.nbits += 8;
        }
        let v = (self.acc & ((1u64 << w) - 1)) as u32;
        self.acc >>= w;
        self.nbits -= w;
        Ok(v)
    }
}

pub fn write(parts: &Parts, base: usize) -> Vec<u8> {
    let mut out = vec![VERSION, if parts.transform { FLAG_TRANSFORM } else { 0 }];
    let mut m = parts.merges.len();
    loop {
        let byte = (m & 0x7f) as u8;
        m >>= 7;
        if m == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    let mut w = BitWriter {
        out,
        acc: 0,
        nbits: 0,
    };
    for (k, (&(a, b), &e)) in parts.merges.iter().zip(&parts.emitted).enumerate() {
        let wk = width(base + k);
        w.put(a as u32, wk);
        w.put(b as u32, wk);
        w.put(e as u32, 1);
    }
    w.finish()
}

/// Parses the format above; checks only the syntax and the id ranges (the caller checks
/// what the merges mean).
pub fn read(bytes: &[u8]) -> Result<Parts> {
    if bytes.len() < 3 {
        bail!(
            "corrupt dictionary: {} bytes, expected at least 3",
            bytes.len()
        );
    }
    if bytes[0] != VERSION {
        bail!(
            "corrupt dictionary: version {}, expected {VERSION}",
            bytes[0]
        );
    }
    let flags = bytes[1];
    if flags & !FLAG_TRANSFORM != 0 {
        bail!("corrupt dictionary: reserved flag bits set ({flags:#04x})");
    }
    let transform = flags & FLAG_TRANSFORM != 0;
    let base = if transform {
        super::transform::BASE_WITH_TRANSFORM
    } else {
        256
    };
    let mut m = 0usize;
    let mut pos = 2;
    for shift in (0..21).step_by(7) {
        let Some(&b) = bytes.get(pos) else {
            bail!("corrupt dictionary: truncated merge count")
        };
        pos += 1;
        m |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                bail!("corrupt dictionary: merge count not in shortest form");
            }
            break;
        }
        if shift == 14 {
            bail!("corrupt dictionary: merge count too long");
        }
    }
    if base + m > 65536 {
        bail!(
            "corrupt dictionary: {m} merges, at most {} fit 16-bit symbols",
            65536 - base
        );
    }
    let mut r = BitReader {
        bytes: &bytes[pos..],
        pos: 0,
        acc: 0,
        nbits: 0,
    };
    let mut merges = Vec::with_capacity(m);
    let mut emitted = Vec::with_capacity(m);
    for k in 0..m {
        let wk = width(base + k);
        let a = r.get(wk)?;
        let b = r.get(wk)?;
        let e = r.get(1)?;
        if a as usize >= base + k || b as usize >= base + k {
            bail!(
                "corrupt dictionary: merge {k} uses symbol {}, not yet defined",
                a.max(b)
            );
        }
        merges.push((a as u16, b as u16));
        emitted.push(e == 1);
    }
    if r.acc != 0 {
        bail!("corrupt dictionary: non-zero padding bits");
    }
    if r.pos != r.bytes.len() {
        bail!(
            "corrupt dictionary: {} unexpected trailing bytes",
            r.bytes.len() - r.pos
        );
    }
    Ok(Parts {
        transform,
        merges,
        emitted,
    })
}
