//! Frames coded on several threads (`-T`): the same bytes for every thread count, decoded
//! in parallel to what a serial decode gives, and parts compressed apart concatenated.

use super::*;

/// Real text, cut into several frames by a small block size.
fn sample() -> Vec<u8> {
    std::fs::read(corpus().join("calgary/paper1")).unwrap()[..40_000].to_vec()
}

fn compress_with(data: &[u8], threads: &str) -> Vec<u8> {
    let out = run(&["compress", "-q", "-p", "tiny", "--block-size", "8K", "-T", threads], data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let data = sample();
    let one = compress_with(&data, "1");
    assert_eq!(compress_with(&data, "2"), one, "-T 2");
    assert_eq!(compress_with(&data, "8"), one, "-T 8");
    assert_eq!(compress_with(&data, "0"), one, "-T 0");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.nnz"), &one).unwrap();
    let info = run_in(dir.path(), &["info", "f.nnz"]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("frames:            5"), "{info:?}");
}

#[test]
fn parallel_decompression_equals_serial() {
    let data = sample();
    let packed = compress_with(&data, "1");
    for threads in ["1", "3", "8"] {
        let out = run(&["decompress", "-q", "-T", threads], &packed);
        assert!(out.status.success(), "-T {threads}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == data, "-T {threads}: round trip differs");
    }
}

/// What a cluster job does (README): byte ranges at multiples of the block size compressed
/// independently, the parts concatenated with `cat`.
#[test]
fn parts_compressed_apart_concatenate() {
    let data = sample();
    let mut joined = Vec::new();
    for part in data.chunks(16 << 10) {
        joined.extend(compress_with(part, "1"));
    }
    let out = run(&["decompress", "-q", "-T", "4"], &joined);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == data);
    // Ranges at multiples of the block size give exactly the one-job file.
    assert_eq!(joined, compress_with(&data, "2"));
}

#[test]
fn damage_in_a_parallel_decode_is_an_error_and_leaves_no_output() {
    let data = sample();
    let packed = compress_with(&data, "1");
    let dir = tempfile::tempdir().unwrap();
    // A flipped payload byte in the middle of the file (inside a later frame), and a file cut short.
    let mut corrupt = packed.clone();
    let mid = corrupt.len() * 3 / 5;
    corrupt[mid] ^= 0x55;
    let truncated = packed[..packed.len() - 10].to_vec();
    for (name, bytes, needle) in [("corrupt.nnz", &corrupt, "frame "), ("truncated.nnz", &truncated, "truncated")] {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let out = run_in(dir.path(), &["decompress", "-q", "-T", "4", name, "out"]);
        assert!(!out.status.success(), "{name}: damage must fail");
        assert_error(&out, needle);
        assert!(!dir.path().join("out").exists(), "{name}: no output file");
        let leftovers: Vec<_> = listing(dir.path()).into_iter().filter(|f| f.contains("nnz-tmp")).collect();
        assert!(leftovers.is_empty(), "{name}: temporary files left: {leftovers:?}");
    }
}
