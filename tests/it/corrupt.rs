//! Bad input: a clear one-line error, exit status 1, and no output file left behind.

use super::*;

fn compressed_sample() -> Vec<u8> {
    let text = b"the rain in spain stays mainly in the plain. ".repeat(30);
    let out = run(&["compress", "-q", "-p", "tiny"], &text);
    assert!(out.status.success());
    out.stdout
}

/// Writes `file` as bad.nnz, decompresses it, checks the error and that only bad.nnz remains.
fn assert_rejected(file: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.nnz"), file).unwrap();
    assert_error(&run_in(dir.path(), &["decompress", "bad.nnz"]), needle);
    assert_eq!(listing(dir.path()), ["bad.nnz"], "nothing may be left behind");
}

#[test]
fn not_an_nnz_file() {
    assert_rejected(b"PK\x03\x04 this is a zip file", "not an nnz file");
    assert_rejected(b"", "not an nnz file");
}

#[test]
fn unsupported_version() {
    let mut f = compressed_sample();
    f[4] = 200;
    assert_rejected(&f, "unsupported format version 200");
}

#[test]
fn truncated_file() {
    let f = compressed_sample();
    assert_rejected(&f[..20], "truncated");
    assert_rejected(&f[..f.len() - 3], "truncated");
}

#[test]
fn corrupt_payload_or_checksum() {
    let f = compressed_sample();
    let mut bad = f.clone();
    let n = bad.len();
    bad[n - 12] ^= 0x10;
    assert_rejected(&bad, "corrupt");
    let mut stored = run(&["compress", "-q"], &random_bytes(1000, 9)).stdout;
    let last = stored.len() - 1;
    stored[last] ^= 1; // a stored file: only the checksum can tell
    assert_rejected(&stored, "checksum mismatch");
}

#[test]
fn every_bit_flip_and_truncation_is_an_error() {
    // Through the library: thousands of cases in milliseconds.
    let f = compressed_sample();
    for n in 0..f.len() {
        assert!(nnz::engine::decompress(&f[..n], &mut |_| {}).is_err(), "truncated to {n} bytes");
    }
    for bit in 0..f.len() * 8 {
        let mut v = f.clone();
        v[bit / 8] ^= 1 << (bit % 8);
        assert!(nnz::engine::decompress(&v, &mut |_| {}).is_err(), "bit {bit} flipped was accepted");
    }
}

/// A payload one byte short or one byte long, under a header that agrees with it (its
/// checksum valid): the coder's end check, or the checksum of the output, rejects it. In
/// format 1 (the golden file) and format 2 alike.
#[test]
fn payload_one_byte_short_or_long_is_an_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let v1 = std::fs::read(root.join("data/golden/obj2.8k.bytectx.tiny.nnz")).unwrap();
    for file in [compressed_sample(), v1] {
        let (header, len) = nnz::format::Header::read(&file).unwrap();
        let payload = &file[len..];
        assert!(nnz::engine::decompress(&file, &mut |_| {}).is_ok());
        for changed in [&payload[..payload.len() - 1], &[payload, &[0]].concat(), &[payload, &[0x5a]].concat()] {
            let mut bad = Vec::new();
            nnz::format::Header { payload_len: changed.len() as u64, ..header.clone() }.write(&mut bad);
            bad.extend_from_slice(changed);
            let err = nnz::engine::decompress(&bad, &mut |_| {}).unwrap_err().to_string();
            assert!(err.contains("corrupt"), "format {}: {err}", header.version);
        }
    }
}
