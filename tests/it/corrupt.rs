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
