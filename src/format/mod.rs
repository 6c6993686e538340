//! The `.nnz` container: a sequence of frames, each a self-describing, versioned,
//! checksummed header followed by its payload.
//!
//! Everything the decoder needs is in the header (decompression takes no model flags).
//! Frames are independent: a long stream is cut into blocks, one frame each, so memory
//! stays bounded, and concatenated `.nnz` files decode to the concatenation of their
//! contents (as with gzip and zstd). All integers are little-endian.
//!
//! ```text
//! offset  size  field
//! ------  ----  -----------------------------------------------------------------
//!      0     4  magic: 0x89 'N' 'N' 'Z'
//!      4     1  format version (FORMAT_VERSION)
//!      5     1  flags: bit 0 TOKENIZED (a dictionary follows)
//!                      bit 1 STORED    (the payload is the original bytes, as is)
//!                      bits 2-7 reserved, must be 0
//!      6     1  model kind (ModelKind: 0 none, 1 order2, 2 lstm, 3 lstm+ngram mix,
//!                4 transformer, 5 transformer+ngram mix, 6 bytes: byte context model +
//!                LSTM over bytes, 7 byte context model alone)
//!      7     1  numerics version (NUMERICS_VERSION): the kernels' arithmetic
//!      8     8  original length in bytes (u64)
//!     16     8  xxh64 (seed 0) of the original bytes
//!     24     8  number of coded symbols (u64; 0 when STORED)
//!     32     8  payload length in bytes (u64)
//!     40     1  preset name length N (0..=32), then N bytes of ASCII
//!   41+N     2  model parameter length P (u16), then P bytes (model-specific)
//!              if TOKENIZED:
//!              4  tokenizer max vocabulary (u32)
//!              4  tokenizer min frequency (u32)
//!              4  dictionary length D (u32, at most MAX_DICTIONARY_BYTES), then D bytes
//!      …     4  xxh32 (seed 0) of every header byte before this field
//!      …     …  payload (payload length bytes); the next frame, if any, follows
//! ```
//!
//! An empty input costs 47 bytes (one STORED frame, no preset, no parameters).

use anyhow::{bail, ensure, Context, Result};
use xxhash_rust::{xxh32::xxh32, xxh64::xxh64};

pub const MAGIC: [u8; 4] = [0x89, b'N', b'N', b'Z'];
/// Bumped on every change to the byte layout or to what a decoder must compute.
pub const FORMAT_VERSION: u8 = 1;
/// Bumped on every change to the kernels' results (a different exp, a different
/// reduction order): files from another numerics version would decode to garbage.
pub const NUMERICS_VERSION: u8 = 1;

pub const FLAG_TOKENIZED: u8 = 1 << 0;
pub const FLAG_STORED: u8 = 1 << 1;
const FLAGS_KNOWN: u8 = FLAG_TOKENIZED | FLAG_STORED;

pub const MAX_PRESET_LEN: usize = 32;
/// A dictionary of 65,536 entries of average length 256 bytes fits with room to spare.
pub const MAX_DICTIONARY_BYTES: u32 = 1 << 24;
/// The longest frame nnz writes or reads (16 GiB). A frame is coded in memory (its bytes
/// plus two bytes per symbol), so no real block comes near this; a header that claims
/// more is rejected before anything is decoded.
pub const MAX_FRAME_LEN: u64 = 1 << 34;

/// Which predictor coded the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// No model: the payload is stored.
    None = 0,
    /// The order-2 context model.
    Order2 = 1,
    /// The LSTM (NNCP v1).
    Lstm = 2,
    /// The LSTM mixed with the n-gram model.
    LstmMix = 3,
    /// The Transformer (NNCP v2).
    Transformer = 4,
    /// The Transformer mixed with the n-gram model.
    TransformerMix = 5,
    /// The byte context model mixed with a neural model over bytes (no dictionary).
    Bytes = 6,
    /// The byte context model alone (no dictionary).
    ByteCtx = 7,
}

impl ModelKind {
    pub fn from_byte(b: u8) -> Result<ModelKind> {
        Ok(match b {
            0 => ModelKind::None,
            1 => ModelKind::Order2,
            2 => ModelKind::Lstm,
            3 => ModelKind::LstmMix,
            4 => ModelKind::Transformer,
            5 => ModelKind::TransformerMix,
            6 => ModelKind::Bytes,
            7 => ModelKind::ByteCtx,
            _ => bail!("unsupported model kind {b} (this nnz knows 0..=7); the file may come from a newer nnz"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::None => "none (stored)",
            ModelKind::Order2 => "order2",
            ModelKind::Lstm => "lstm",
            ModelKind::LstmMix => "lstm+ngram",
            ModelKind::Transformer => "transformer",
            ModelKind::TransformerMix => "transformer+ngram",
            ModelKind::Bytes => "bytes (byte contexts+lstm)",
            ModelKind::ByteCtx => "bytectx (byte contexts)",
        }
    }
}

/// The tokenizer's part of the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizerSection {
    pub max_vocab: u32,
    pub min_freq: u32,
    /// The serialized dictionary.
    pub dictionary: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub stored: bool,
    pub model: ModelKind,
    pub numerics: u8,
    pub original_len: u64,
    pub checksum: u64,
    pub symbols: u64,
    pub payload_len: u64,
    pub preset: String,
    pub model_params: Vec<u8>,
    pub tokenizer: Option<TokenizerSection>,
}

/// The checksum stored for the original bytes.
pub fn checksum(data: &[u8]) -> u64 {
    xxh64(data, 0)
}

impl Header {
    /// Appends the header's bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        let mut flags = 0;
        if self.tokenizer.is_some() {
            flags |= FLAG_TOKENIZED;
        }
        if self.stored {
            flags |= FLAG_STORED;
        }
        out.push(flags);
        out.push(self.model as u8);
        out.push(self.numerics);
        out.extend_from_slice(&self.original_len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.extend_from_slice(&self.symbols.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        assert!(self.preset.len() <= MAX_PRESET_LEN && self.preset.is_ascii());
        out.push(self.preset.len() as u8);
        out.extend_from_slice(self.preset.as_bytes());
        let params_len = u16::try_from(self.model_params.len()).expect("model parameters fit in 64 KiB");
        out.extend_from_slice(&params_len.to_le_bytes());
        out.extend_from_slice(&self.model_params);
        if let Some(t) = &self.tokenizer {
            out.extend_from_slice(&t.max_vocab.to_le_bytes());
            out.extend_from_slice(&t.min_freq.to_le_bytes());
            assert!(t.dictionary.len() <= MAX_DICTIONARY_BYTES as usize);
            out.extend_from_slice(&(t.dictionary.len() as u32).to_le_bytes());
            out.extend_from_slice(&t.dictionary);
        }
        let sum = xxh32(&out[start..], 0);
        out.extend_from_slice(&sum.to_le_bytes());
    }

    /// Parses a header from the start of `bytes`; returns it and its length in bytes.
    pub fn read(bytes: &[u8]) -> Result<(Header, usize)> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            bail!("not an nnz file (no nnz magic number at its start)");
        }
        let mut r = Reader { bytes, pos: MAGIC.len() };
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            bail!(
                "unsupported format version {version}: this nnz reads version {FORMAT_VERSION}; \
                 use the nnz release that wrote the file"
            );
        }
        let flags = r.u8()?;
        if flags & !FLAGS_KNOWN != 0 {
            bail!("corrupt header: reserved flag bits set ({flags:#04x})");
        }
        let model = ModelKind::from_byte(r.u8()?)?;
        let numerics = r.u8()?;
        let original_len = r.u64()?;
        ensure!(
            original_len <= MAX_FRAME_LEN,
            "corrupt header: a frame of {original_len} bytes (frames hold at most {MAX_FRAME_LEN})"
        );
        let checksum = r.u64()?;
        let symbols = r.u64()?;
        let payload_len = r.u64()?;
        let preset_len = r.u8()? as usize;
        ensure!(preset_len <= MAX_PRESET_LEN, "corrupt header: preset name of {preset_len} bytes");
        let preset = std::str::from_utf8(r.take(preset_len)?)
            .ok()
            .filter(|s| s.is_ascii())
            .context("corrupt header: preset name is not ASCII")?
            .to_string();
        let params_len = r.u16()? as usize;
        let model_params = r.take(params_len)?.to_vec();
        let tokenizer = if flags & FLAG_TOKENIZED != 0 {
            let max_vocab = r.u32()?;
            let min_freq = r.u32()?;
            let dict_len = r.u32()?;
            ensure!(
                dict_len <= MAX_DICTIONARY_BYTES,
                "corrupt header: dictionary of {dict_len} bytes (at most {MAX_DICTIONARY_BYTES})"
            );
            Some(TokenizerSection { max_vocab, min_freq, dictionary: r.take(dict_len as usize)?.to_vec() })
        } else {
            None
        };
        let computed = xxh32(&bytes[..r.pos], 0);
        let stored_sum = r.u32()?;
        if computed != stored_sum {
            bail!("corrupt header: header checksum mismatch");
        }
        let stored = flags & FLAG_STORED != 0;
        if stored {
            ensure!(model == ModelKind::None && symbols == 0, "corrupt header: stored file names a model");
        } else {
            ensure!(model != ModelKind::None, "corrupt header: coded file names no model");
            // The encoder stores a frame whose coded form would not be smaller.
            ensure!(
                payload_len < original_len,
                "corrupt header: {payload_len} coded bytes for {original_len} original bytes"
            );
            if numerics != NUMERICS_VERSION {
                bail!(
                    "unsupported numerics version {numerics}: this nnz computes version {NUMERICS_VERSION}; \
                     use the nnz release that wrote the file"
                );
            }
        }
        let header = Header {
            stored,
            model,
            numerics,
            original_len,
            checksum,
            symbols,
            payload_len,
            preset,
            model_params,
            tokenizer,
        };
        Ok((header, r.pos))
    }
}

/// Reads exactly one frame header from `input`, checking each length field before
/// reading what it announces, so a corrupt length cannot make us allocate much.
/// Returns `None` at a clean end of input (no byte at all).
pub fn read_header_bytes(input: &mut (impl std::io::Read + ?Sized)) -> Result<Option<Vec<u8>>> {
    const FIXED: usize = 41; // up to and including the preset name length
    let mut buf = vec![0u8; MAGIC.len()];
    match read_full(input, &mut buf)? {
        0 => return Ok(None),
        n if n < MAGIC.len() || buf != MAGIC => bail!("not an nnz file (no nnz magic number at its start)"),
        _ => {}
    }
    read_more(input, &mut buf, FIXED - MAGIC.len())?;
    let preset_len = buf[FIXED - 1] as usize;
    ensure!(preset_len <= MAX_PRESET_LEN, "corrupt header: preset name of {preset_len} bytes");
    read_more(input, &mut buf, preset_len + 2)?;
    let params_len = u16::from_le_bytes([buf[buf.len() - 2], buf[buf.len() - 1]]) as usize;
    read_more(input, &mut buf, params_len)?;
    if buf[5] & FLAG_TOKENIZED != 0 {
        read_more(input, &mut buf, 12)?;
        let n = buf.len();
        let dict_len = u32::from_le_bytes(buf[n - 4..].try_into().expect("4 bytes"));
        ensure!(
            dict_len <= MAX_DICTIONARY_BYTES,
            "corrupt header: dictionary of {dict_len} bytes (at most {MAX_DICTIONARY_BYTES})"
        );
        read_more(input, &mut buf, dict_len as usize)?;
    }
    read_more(input, &mut buf, 4)?;
    Ok(Some(buf))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut (impl std::io::Read + ?Sized), buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Appends exactly `n` more bytes to `buf`, or fails with "truncated".
fn read_more(input: &mut (impl std::io::Read + ?Sized), buf: &mut Vec<u8>, n: usize) -> Result<()> {
    let start = buf.len();
    buf.resize(start + n, 0);
    if read_full(input, &mut buf[start..])? < n {
        bail!("truncated file: the header ends early");
    }
    Ok(())
}

/// Bounds-checked little-endian reads; running out of bytes means a truncated file.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => bail!("truncated file: the header ends early"),
        }
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Header {
        Header {
            stored: false,
            model: ModelKind::Order2,
            numerics: NUMERICS_VERSION,
            original_len: (1 << 33) + 5,
            checksum: 0x0123_4567_89ab_cdef,
            symbols: 12345,
            payload_len: 7,
            preset: "default".into(),
            model_params: vec![1, 2, 3],
            tokenizer: Some(TokenizerSection { max_vocab: 16384, min_freq: 32, dictionary: vec![9; 100] }),
        }
    }

    #[test]
    fn roundtrip() {
        let h = sample();
        let mut buf = vec![];
        h.write(&mut buf);
        buf.extend_from_slice(b"payload");
        let (back, len) = Header::read(&buf).unwrap();
        assert_eq!(back, h);
        assert_eq!(&buf[len..], b"payload");
    }

    #[test]
    fn empty_stored_header_is_47_bytes() {
        let h = Header {
            stored: true,
            model: ModelKind::None,
            numerics: NUMERICS_VERSION,
            original_len: 0,
            checksum: checksum(b""),
            symbols: 0,
            payload_len: 0,
            preset: String::new(),
            model_params: vec![],
            tokenizer: None,
        };
        let mut buf = vec![];
        h.write(&mut buf);
        assert_eq!(buf.len(), 47);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let mut buf = vec![];
        sample().write(&mut buf);
        let err = |b: &[u8]| Header::read(b).unwrap_err().to_string();
        assert!(err(b"hello world").contains("not an nnz file"));
        let mut v = buf.clone();
        v[4] = 9;
        assert!(err(&v).contains("unsupported format version 9"));
        let mut v = buf.clone();
        v[5] |= 0x80;
        assert!(err(&v).contains("reserved flag bits"));
        let mut v = buf.clone();
        v[20] ^= 1;
        assert!(err(&v).contains("header checksum mismatch"));
        assert!(err(&buf[..buf.len() - 1]).contains("truncated"));
    }

    /// A header with a valid checksum that claims an impossible size is rejected by
    /// its fields, before any payload is read or anything allocated.
    #[test]
    fn impossible_sizes_are_rejected_at_once() {
        let err = |h: Header| {
            let mut buf = vec![];
            h.write(&mut buf);
            Header::read(&buf).unwrap_err().to_string()
        };
        let msg = err(Header { original_len: 1 << 60, ..sample() });
        assert!(msg.contains("a frame of 1152921504606846976 bytes"), "{msg}");
        let msg = err(Header { payload_len: 1 << 40, ..sample() });
        assert!(msg.contains("coded bytes for"), "{msg}");
        // A dictionary length of 1 GiB: both readers stop at the length field.
        let mut buf = vec![];
        let empty_dict = TokenizerSection { max_vocab: 65536, min_freq: 1, dictionary: vec![] };
        Header { tokenizer: Some(empty_dict), ..sample() }.write(&mut buf);
        let n = buf.len();
        buf[n - 8..n - 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let msg = Header::read(&buf).unwrap_err().to_string();
        assert!(msg.contains("dictionary of 1073741824 bytes"), "{msg}");
        let msg = read_header_bytes(&mut &buf[..]).unwrap_err().to_string();
        assert!(msg.contains("dictionary of 1073741824 bytes"), "{msg}");
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let mut buf = vec![];
        sample().write(&mut buf);
        for n in 0..buf.len() {
            assert!(Header::read(&buf[..n]).is_err(), "truncated to {n}");
        }
        for bit in 0..buf.len() * 8 {
            let mut v = buf.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            if let Ok((h, _)) = Header::read(&v) {
                panic!("bit {bit} flipped, parsed as {h:?}");
            }
        }
    }

    #[test]
    fn streaming_reader_takes_exactly_the_header() {
        let mut buf = vec![];
        sample().write(&mut buf);
        let header_len = buf.len();
        buf.extend_from_slice(b"payload");
        let mut input = &buf[..];
        let bytes = read_header_bytes(&mut input).unwrap().unwrap();
        assert_eq!(bytes.len(), header_len);
        assert_eq!(input, b"payload");
        assert_eq!(Header::read(&bytes).unwrap().0, sample());
        assert!(read_header_bytes(&mut &b""[..]).unwrap().is_none());
        for n in 1..header_len {
            assert!(read_header_bytes(&mut &buf[..n]).is_err(), "truncated at {n}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Header::read(&bytes);
            let _ = read_header_bytes(&mut &bytes[..]);
            let mut v = MAGIC.to_vec();
            v.push(FORMAT_VERSION);
            v.extend_from_slice(&bytes);
            let _ = Header::read(&v);
        }

        #[test]
        fn arbitrary_headers_roundtrip(len in 1..=MAX_FRAME_LEN, sum in any::<u64>(), syms in any::<u64>(),
                                       coded in any::<u64>(),
                                       params in prop::collection::vec(any::<u8>(), 0..50),
                                       dict in prop::option::of(prop::collection::vec(any::<u8>(), 0..50))) {
            let h = Header {
                stored: false, model: ModelKind::Lstm, numerics: NUMERICS_VERSION,
                original_len: len, checksum: sum, symbols: syms, payload_len: coded % len, preset: "fast".into(), model_params: params,
                tokenizer: dict.map(|d| TokenizerSection { max_vocab: 300, min_freq: 2, dictionary: d }),
            };
            let mut buf = vec![];
            h.write(&mut buf);
            let (back, n) = Header::read(&buf).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(n, buf.len());
        }
    }
}
