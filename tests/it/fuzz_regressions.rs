//! Every input kept in fuzz/regressions/<target>/ (crashes the fuzzers found, and seeds)
//! is replayed here through the same check the fuzz target runs.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "fuzz regression {} fails", path.display());
    }
}

#[test]
fn decompress() {
    replay("decompress", nnz::fuzzing::decompress);
}

#[test]
fn header() {
    replay("header", nnz::fuzzing::header);
}

#[test]
fn coder() {
    replay("coder", nnz::fuzzing::coder);
}

#[test]
fn tokenizer() {
    replay("tokenizer", nnz::fuzzing::tokenizer);
}
