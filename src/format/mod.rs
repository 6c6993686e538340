//! The `.nnz` container: a sequence of frames, each a self-describing, versioned,
//! checksummed header followed by its payload.
//!
//! Everything the decoder needs is in the header (decompression takes no model flags).
//! Frames are independent: a long stream is cut into blocks, one frame each, so memory
//! stays bounded, and concatenated `.nnz` files decode to the concatenation of their
//! contents (as with gzip and zstd). Format version 2 (FORMAT_VERSION), which nnz writes:
//!
//! ```text
//! size   field
//! -----  -----------------------------------------------------------------
//!     4  magic: 0x89 'N' 'N' 'Z'
//!     1  format version (FORMAT_VERSION = 2)
//!     1  flags: bit 0 TOKENIZED (a dictionary follows)
//!               bit 1 STORED    (the payload is the original bytes, as is)
//!               bits 2-7 reserved, must be 0
//!     1  model kind (ModelKind: 0 none, 1 order2, 2 lstm, 3 lstm+ngram mix,
//!         4 transformer, 5 transformer+ngram mix, 6 bytes: byte context model +
//!         LSTM over bytes, 7 byte context model alone)
//!     1  numerics version (NUMERICS_VERSION): the kernels' arithmetic
//!  1-5   original length in bytes (varint, at most MAX_FRAME_LEN)
//!     8  xxh64 (seed 0) of the original bytes (little-endian)
//!  1-10  number of coded symbols (varint; 0 when STORED)
//!  1-5   payload length in bytes (varint, at most MAX_FRAME_LEN)
//!     1  preset: 0..=32 a name of that many ASCII bytes follows;
//!         0x80 + i the name PRESET_IDS[i] (nothing follows)
//!  1-3   model parameter length P (varint, at most 65,535), then P bytes (model-specific)
//!        if TOKENIZED:
//!  1-5   tokenizer max vocabulary (varint, u32)
//!  1-5   tokenizer min frequency (varint, u32)
//!  1-4   dictionary length D (varint, at most MAX_DICTIONARY_BYTES), then D bytes
//!     4  xxh32 (seed 0) of every header byte before this field (little-endian)
//!     …  payload (payload length bytes); the next frame, if any, follows
//! ```
//!
//! A varint is unsigned LEB128: 7 bits a byte, least significant first, the high bit set
//! on every byte but the last. Only the minimal encoding is accepted (no final 0x00 byte
//! after the first), so every header has exactly one encoding, as the fuzz check
//! (`src/fuzzing.rs`) requires: a parsed header re-serializes to its own bytes. A preset
//! name with an id must be written as the id for the same reason.
//!
//! An empty input costs 25 bytes (one STORED frame, no preset, no parameters). The
//! payload of a coded frame ends with the range coder's shortest termination
//! ([`crate::coder::Termination::Shortest`]).
//!
//! Format version 1 (read, never written) had fixed-width little-endian fields: original
//! length, symbols and payload length as u64, the preset always as a length and a name,
//! P as u16, the tokenizer fields as u32; 47 bytes for an empty input. Its payloads end
//! with the 8 bytes of the coder's state ([`crate::coder::Termination::FullState`]).
//! [`Header::version`] says which version a header was read in, and [`Header::write`]
//! writes that version, so old files stay testable.

use anyhow::{bail, ensure, Context, Result};
use xxhash_rust::{xxh32::xxh32, xxh64::xxh64};

pub const MAGIC: [u8; 4] = [0x89, b'N', b'N', b'Z'];
/// Bumped on every change to the byte layout or to what a decoder must compute.
pub const FORMAT_VERSION: u8 = 2;
/// The oldest format version this nnz reads.
pub const OLDEST_FORMAT_VERSION: u8 = 1;
/// Bumped on every change to the kernels' results (a different exp, a different
/// reduction order): files from another numerics version would decode to garbage.
pub const NUMERICS_VERSION: u8 = 1;

pub const FLAG_TOKENIZED: u8 = 1 << 0;
pub const FLAG_STORED: u8 = 1 << 1;
const FLAGS_KNOWN: u8 = FLAG_TOKENIZED | FLAG_STORED;

pub const MAX_PRESET_LEN: usize = 32;
/// Preset names stored in one byte (0x80 + index) in format 2. Append only: an index,
/// once written, names its preset forever. Any other name is stored in full.
pub const PRESET_IDS: [&str; 8] = [
    "tiny",
    "fast",
    "default",
    "large",
    "transformer-tiny",
    "transformer-fast",
    "transformer-default",
    "transformer-large",
];
const PRESET_ID_BASE: u8 = 0x80;
/// The longest model parameter section (format 1 stored its length as a u16).
pub const MAX_PARAMS_LEN: usize = u16::MAX as usize;
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
    /// The format version the header is (or will be) written in: FORMAT_VERSION for
    /// everything nnz writes, 1 for a header read from an old file.
    pub version: u8,
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
    /// Appends the header's bytes, in format version `self.version`, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.push(self.version);
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
        assert!(self.preset.len() <= MAX_PRESET_LEN && self.preset.is_ascii());
        assert!(self.model_params.len() <= MAX_PARAMS_LEN, "model parameters fit in 64 KiB");
        if let Some(t) = &self.tokenizer {
            assert!(t.dictionary.len() <= MAX_DICTIONARY_BYTES as usize);
        }
        match self.version {
            1 => self.write_v1_fields(out),
            2 => self.write_v2_fields(out),
            v => panic!("cannot write format version {v}"),
        }
        let sum = xxh32(&out[start..], 0);
        out.extend_from_slice(&sum.to_le_bytes());
    }

    fn write_v2_fields(&self, out: &mut Vec<u8>) {
        write_varint(out, self.original_len);
        out.extend_from_slice(&self.checksum.to_le_bytes());
        write_varint(out, self.symbols);
        write_varint(out, self.payload_len);
        match PRESET_IDS.iter().position(|&p| p == self.preset) {
            Some(id) => out.push(PRESET_ID_BASE + id as u8),
            None => {
                out.push(self.preset.len() as u8);
                out.extend_from_slice(self.preset.as_bytes());
            }
        }
        write_varint(out, self.model_params.len() as u64);
        out.extend_from_slice(&self.model_params);
        if let Some(t) = &self.tokenizer {
            write_varint(out, t.max_vocab.into());
            write_varint(out, t.min_freq.into());
            write_varint(out, t.dictionary.len() as u64);
            out.extend_from_slice(&t.dictionary);
        }
    }

    fn write_v1_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.original_len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.extend_from_slice(&self.symbols.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.push(self.preset.len() as u8);
        out.extend_from_slice(self.preset.as_bytes());
        out.extend_from_slice(&(self.model_params.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.model_params);
        if let Some(t) = &self.tokenizer {
            out.extend_from_slice(&t.max_vocab.to_le_bytes());
            out.extend_from_slice(&t.min_freq.to_le_bytes());
            out.extend_from_slice(&(t.dictionary.len() as u32).to_le_bytes());
            out.extend_from_slice(&t.dictionary);
        }
    }

    /// Parses a header from the start of `bytes`; returns it and its length in bytes.
    pub fn read(bytes: &[u8]) -> Result<(Header, usize)> {
        match parse(&mut &bytes[..])? {
            Some((header, bytes)) => Ok((header, bytes.len())),
            None => bail!("not an nnz file (no nnz magic number at its start)"),
        }
    }
}

/// Reads exactly one frame header from `input` and checks it; returns its bytes.
/// Each length field is checked before what it announces is read, so a corrupt length
/// cannot make us allocate much. Returns `None` at a clean end of input (no byte at all).
pub fn read_header_bytes(input: &mut (impl std::io::Read + ?Sized)) -> Result<Option<Vec<u8>>> {
    Ok(parse(input)?.map(|(_, bytes)| bytes))
}

/// The one header parser, for slices and streams alike: returns the header and its bytes.
fn parse(input: &mut (impl std::io::Read + ?Sized)) -> Result<Option<(Header, Vec<u8>)>> {
    let mut r = Reader { input, bytes: vec![0u8; MAGIC.len()] };
    match read_full(r.input, &mut r.bytes)? {
        0 => return Ok(None),
        n if n < MAGIC.len() || r.bytes != MAGIC => bail!("not an nnz file (no nnz magic number at its start)"),
        _ => {}
    }
    let version = r.u8()?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        bail!(
            "unsupported format version {version}: this nnz reads versions {OLDEST_FORMAT_VERSION} to \
             {FORMAT_VERSION}; use the nnz release that wrote the file"
        );
    }
    let v1 = version == 1;
    let flags = r.u8()?;
    if flags & !FLAGS_KNOWN != 0 {
        bail!("corrupt header: reserved flag bits set ({flags:#04x})");
    }
    let model = ModelKind::from_byte(r.u8()?)?;
    let numerics = r.u8()?;
    let original_len = if v1 { r.u64()? } else { r.varint(u64::MAX, "original length")? };
    ensure!(
        original_len <= MAX_FRAME_LEN,
        "corrupt header: a frame of {original_len} bytes (frames hold at most {MAX_FRAME_LEN})"
    );
    let checksum = r.u64()?;
    let symbols = if v1 { r.u64()? } else { r.varint(u64::MAX, "number of symbols")? };
    let payload_len = if v1 { r.u64()? } else { r.varint(MAX_FRAME_LEN, "payload length")? };
    let preset_byte = r.u8()?;
    let preset = match preset_byte {
        n if n as usize <= MAX_PRESET_LEN => {
            let name = std::str::from_utf8(r.take(n as usize)?)
                .ok()
                .filter(|s| s.is_ascii())
                .context("corrupt header: preset name is not ASCII")?
                .to_string();
            ensure!(
                v1 || !PRESET_IDS.contains(&name.as_str()),
                "corrupt header: preset name {name:?} spelled out instead of given by its id"
            );
            name
        }
        id if !v1 && id >= PRESET_ID_BASE && ((id - PRESET_ID_BASE) as usize) < PRESET_IDS.len() => {
            PRESET_IDS[(id - PRESET_ID_BASE) as usize].to_string()
        }
        n if v1 => bail!("corrupt header: preset name of {n} bytes"),
        b => bail!("corrupt header: preset byte {b:#04x} is neither a name length (0..=32) nor a preset id"),
    };
    let params_len =
        if v1 { r.u16()? as usize } else { r.varint(MAX_PARAMS_LEN as u64, "model parameter length")? as usize };
    let model_params = r.take(params_len)?.to_vec();
    let tokenizer = if flags & FLAG_TOKENIZED != 0 {
        let (max_vocab, min_freq, dict_len) = if v1 {
            (r.u32()?, r.u32()?, r.u32()? as u64)
        } else {
            let vocab = r.varint(u32::MAX.into(), "tokenizer max vocabulary")? as u32;
            let freq = r.varint(u32::MAX.into(), "tokenizer min frequency")? as u32;
            (vocab, freq, r.varint(u32::MAX.into(), "dictionary length")?)
        };
        ensure!(
            dict_len <= MAX_DICTIONARY_BYTES as u64,
            "corrupt header: dictionary of {dict_len} bytes (at most {MAX_DICTIONARY_BYTES})"
        );
        Some(TokenizerSection { max_vocab, min_freq, dictionary: r.take(dict_len as usize)?.to_vec() })
    } else {
        None
    };
    let computed = xxh32(&r.bytes, 0);
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
        version,
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
    Ok(Some((header, r.bytes)))
}

/// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
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

/// Header fields pulled from a stream; keeps every byte read (the header checksum covers
/// them). Running out of bytes means a truncated file.
struct Reader<'a, R: std::io::Read + ?Sized> {
    input: &'a mut R,
    bytes: Vec<u8>,
}

impl<R: std::io::Read + ?Sized> Reader<'_, R> {
    /// The next `n` bytes. Callers bound `n` first (at most 16 MiB).
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let start = self.bytes.len();
        self.bytes.resize(start + n, 0);
        if read_full(self.input, &mut self.bytes[start..])? < n {
            bail!("truncated file: the header ends early");
        }
        Ok(&self.bytes[start..])
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
    /// A minimal LEB128 varint of at most `max`, named `what` in errors.
    fn varint(&mut self, max: u64, what: &str) -> Result<u64> {
        read_varint(|| self.u8(), max, &format!("corrupt header: the {what}"))
    }
}

/// Reads a minimal unsigned LEB128 varint of at most `max`, taking its bytes from `next`
/// (whose errors, such as running out of input, pass through): the inverse of
/// [`write_varint`], for the header and for model parameters that use the same encoding.
/// A varint with a final 0x00 byte after its first, one of over 10 bytes or one above
/// `max` is an error whose one line starts with `what` (e.g. "the LSTM hidden").
pub fn read_varint(mut next: impl FnMut() -> Result<u8>, max: u64, what: &str) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = next()?;
        let bits = (b & 0x7F) as u64;
        // The 10th byte holds bit 63 only.
        ensure!(i < 9 || bits <= 1, "{what} does not fit in 64 bits");
        value |= bits << (7 * i);
        if b & 0x80 == 0 {
            ensure!(i == 0 || b != 0, "{what} is not minimally encoded (a varint ends in 0x00)");
            ensure!(value <= max, "{what} is {value} (at most {max})");
            return Ok(value);
        }
    }
    bail!("{what} does not fit in 64 bits (a varint of over 10 bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Header {
        Header {
            version: FORMAT_VERSION,
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

    fn samples() -> [Header; 3] {
        [sample(), Header { version: 1, ..sample() }, Header { preset: "fast+custom".into(), ..sample() }]
    }

    fn bytes_of(h: &Header) -> Vec<u8> {
        let mut buf = vec![];
        h.write(&mut buf);
        buf
    }

    /// `fields` after the magic, followed by their xxh32: a header with a valid checksum.
    fn raw(fields: &[&[u8]]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        for f in fields {
            v.extend_from_slice(f);
        }
        let sum = xxh32(&v, 0);
        v.extend_from_slice(&sum.to_le_bytes());
        v
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = vec![];
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn roundtrip() {
        for h in samples() {
            let mut buf = bytes_of(&h);
            buf.extend_from_slice(b"payload");
            let (back, len) = Header::read(&buf).unwrap();
            assert_eq!(back, h);
            assert_eq!(&buf[len..], b"payload");
        }
        // The id saves the name: 8 bytes (length and "default") become one.
        assert_eq!(bytes_of(&sample()).len() + 7, bytes_of(&Header { preset: "Default".into(), ..sample() }).len());
    }

    #[test]
    fn varints_are_leb128() {
        for (v, bytes) in [
            (0u64, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (300, &[0xAC, 0x02]),
            (MAX_FRAME_LEN, &[0x80, 0x80, 0x80, 0x80, 0x40]),
            (u64::MAX, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ] {
            assert_eq!(varint(v), bytes, "{v}");
        }
    }

    #[test]
    fn empty_stored_header_is_25_bytes_and_47_in_format_1() {
        let h = Header {
            version: FORMAT_VERSION,
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
        assert_eq!(bytes_of(&h).len(), 25);
        assert_eq!(bytes_of(&Header { version: 1, ..h }).len(), 47);
    }

    /// Format 1 as the first release wrote it: the header of a golden file parses and
    /// re-serializes to the same bytes.
    #[test]
    fn format_1_headers_still_parse() {
        let file = include_bytes!("../../data/golden/enwik4.tiny.nnz");
        let (h, len) = Header::read(file).unwrap();
        assert_eq!((h.version, h.original_len, h.preset.as_str()), (1, 10_000, "tiny"));
        assert_eq!(len as u64 + h.payload_len, file.len() as u64);
        assert_eq!(bytes_of(&h), file[..len]);
        assert_eq!(read_header_bytes(&mut &file[..]).unwrap().unwrap(), file[..len]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |b: &[u8]| Header::read(b).unwrap_err().to_string();
        assert!(err(b"hello world").contains("not an nnz file"));
        for h in samples() {
            let buf = bytes_of(&h);
            let mut v = buf.clone();
            v[4] = 9;
            assert!(err(&v).contains("unsupported format version 9"));
            v[4] = 0;
            assert!(err(&v).contains("unsupported format version 0"));
            let mut v = buf.clone();
            v[5] |= 0x80;
            assert!(err(&v).contains("reserved flag bits"));
            let mut v = buf.clone();
            v[16] ^= 1; // in the xxh64 of both versions
            assert!(err(&v).contains("header checksum mismatch"));
            assert!(err(&buf[..buf.len() - 1]).contains("truncated"));
        }
    }

    /// Every malformed varint gets a one-line error naming the field, never a panic, from
    /// both parsers.
    #[test]
    fn malformed_varints_are_rejected() {
        let err = |b: &[u8]| {
            let msg = Header::read(b).unwrap_err().to_string();
            let streamed = read_header_bytes(&mut &b[..]).unwrap_err().to_string();
            assert_eq!(msg, streamed);
            assert!(!msg.contains('\n'), "{msg}");
            msg
        };
        let start: &[u8] = &[2, 0, 1, 1]; // version 2, no flags, order2, numerics
        let sum = &[0u8; 8][..];
        // A varint cut short, at the end of the input.
        assert!(err(&[&MAGIC[..], start, &[0x80]].concat()).contains("truncated"));
        assert!(err(&[&MAGIC[..], start, &[0xFF; 4]].concat()).contains("truncated"));
        // Over-long: 5 as 0x85 0x00, 0 as 0x80 0x00.
        let msg = err(&raw(&[start, &[0x85, 0x00], sum, &[1, 1, 0, 0]]));
        assert!(msg.contains("the original length is not minimally encoded"), "{msg}");
        let msg = err(&raw(&[start, &[100], sum, &[0x80, 0x00], &[1, 0, 0]]));
        assert!(msg.contains("the number of symbols is not minimally encoded"), "{msg}");
        // Too large for 64 bits: 11 bytes, or a 10th byte above 1.
        let msg = err(&raw(&[start, &[0xFF; 10], &[0x01], sum]));
        assert!(msg.contains("the original length does not fit in 64 bits"), "{msg}");
        let msg = err(&raw(&[start, &[0xFF; 9], &[0x02], sum]));
        assert!(msg.contains("the original length does not fit in 64 bits"), "{msg}");
        // Too large for the field.
        let msg = err(&raw(&[start, &varint(MAX_FRAME_LEN + 1), sum, &[1, 1, 0, 0]]));
        assert!(msg.contains("a frame of 17179869185 bytes"), "{msg}");
        let msg = err(&raw(&[start, &[100], sum, &[1], &varint(MAX_FRAME_LEN + 1), &[0, 0]]));
        assert!(msg.contains("the payload length is 17179869185 (at most 17179869184)"), "{msg}");
        let msg = err(&raw(&[start, &[100], sum, &[1, 1, 0], &varint(65_536)]));
        assert!(msg.contains("the model parameter length is 65536 (at most 65535)"), "{msg}");
        let tokenized: &[u8] = &[2, FLAG_TOKENIZED, 2, 1];
        let msg = err(&raw(&[tokenized, &[100], sum, &[1, 1, 0, 0], &varint(1 << 32)]));
        assert!(msg.contains("the tokenizer max vocabulary is 4294967296 (at most 4294967295)"), "{msg}");
        // A preset byte that is neither a length nor an id, and a name that has an id.
        let msg = err(&raw(&[start, &[100], sum, &[1, 1, 0x40, 0]]));
        assert!(msg.contains("preset byte 0x40"), "{msg}");
        let msg = err(&raw(&[start, &[100], sum, &[1, 1, 0x80 + PRESET_IDS.len() as u8, 0]]));
        assert!(msg.contains("neither a name length"), "{msg}");
        let msg = err(&raw(&[start, &[100], sum, &[1, 1, 4], b"fast", &[0]]));
        assert!(msg.contains("spelled out"), "{msg}");
        // The same fields, well formed, parse.
        let (h, _) = Header::read(&raw(&[start, &[100], sum, &[1, 1, 0x81, 0]])).unwrap();
        assert_eq!((h.original_len, h.symbols, h.payload_len, h.preset.as_str()), (100, 1, 1, "fast"));
    }

    /// A header with a valid checksum that claims an impossible size is rejected by
    /// its fields, before any payload is read or anything allocated.
    #[test]
    fn impossible_sizes_are_rejected_at_once() {
        for version in [1, 2] {
            let err = |h: Header| Header::read(&bytes_of(&Header { version, ..h })).unwrap_err().to_string();
            let msg = err(Header { original_len: 1 << 60, ..sample() });
            assert!(msg.contains("a frame of 1152921504606846976 bytes"), "{msg}");
            let msg = err(Header { payload_len: 1 << 40, ..sample() });
            let expected = if version == 1 { "coded bytes for" } else { "payload length is 1099511627776" };
            assert!(msg.contains(expected), "{msg}");
        }
        // A dictionary length of 1 GiB: both readers stop at the length field.
        let empty_dict = TokenizerSection { max_vocab: 65536, min_freq: 1, dictionary: vec![] };
        let v1 = bytes_of(&Header { version: 1, tokenizer: Some(empty_dict.clone()), ..sample() });
        let mut v1 = v1[..v1.len() - 4].to_vec();
        let n = v1.len();
        v1[n - 4..].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let v1 = raw(&[&v1[MAGIC.len()..]]);
        let v2 = bytes_of(&Header { tokenizer: Some(empty_dict), ..sample() });
        let v2 = raw(&[&v2[MAGIC.len()..v2.len() - 5], &varint(1 << 30)]);
        for buf in [v1, v2] {
            let msg = Header::read(&buf).unwrap_err().to_string();
            assert!(msg.contains("dictionary of 1073741824 bytes"), "{msg}");
            let msg = read_header_bytes(&mut &buf[..]).unwrap_err().to_string();
            assert!(msg.contains("dictionary of 1073741824 bytes"), "{msg}");
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        for h in samples() {
            let buf = bytes_of(&h);
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
    }

    #[test]
    fn streaming_reader_takes_exactly_the_header() {
        for h in samples() {
            let mut buf = bytes_of(&h);
            let header_len = buf.len();
            buf.extend_from_slice(b"payload");
            let mut input = &buf[..];
            let bytes = read_header_bytes(&mut input).unwrap().unwrap();
            assert_eq!(bytes.len(), header_len);
            assert_eq!(input, b"payload");
            assert_eq!(Header::read(&bytes).unwrap().0, h);
            assert!(read_header_bytes(&mut &b""[..]).unwrap().is_none());
            for n in 1..header_len {
                assert!(read_header_bytes(&mut &buf[..n]).is_err(), "truncated at {n}");
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            crate::fuzzing::header(&bytes);
            for version in OLDEST_FORMAT_VERSION..=FORMAT_VERSION {
                let mut v = MAGIC.to_vec();
                v.push(version);
                v.extend_from_slice(&bytes);
                crate::fuzzing::header(&v);
            }
        }

        #[test]
        fn arbitrary_headers_roundtrip(version in OLDEST_FORMAT_VERSION..=FORMAT_VERSION,
                                       len in 1..=MAX_FRAME_LEN, sum in any::<u64>(), syms in any::<u64>(),
                                       coded in any::<u64>(),
                                       preset in prop_oneof![Just(String::new()), "[a-z+-]{1,32}",
                                                             prop::sample::select(&PRESET_IDS[..]).prop_map(String::from)],
                                       params in prop::collection::vec(any::<u8>(), 0..50),
                                       dict in prop::option::of(prop::collection::vec(any::<u8>(), 0..50))) {
            let h = Header {
                version, stored: false, model: ModelKind::Lstm, numerics: NUMERICS_VERSION,
                original_len: len, checksum: sum, symbols: syms, payload_len: coded % len, preset, model_params: params,
                tokenizer: dict.map(|d| TokenizerSection { max_vocab: 300, min_freq: 2, dictionary: d }),
            };
            let buf = bytes_of(&h);
            let (back, n) = Header::read(&buf).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(n, buf.len());
            crate::fuzzing::header(&buf);
        }
    }
}
