//! Round trips through files and through standard streams.

use super::*;

fn pipe_roundtrip(data: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["compress", "-q", "-p", "tiny"];
    args.extend_from_slice(extra);
    let packed = run(&args, data);
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    let back = run(&["decompress", "-q"], &packed.stdout);
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    assert!(back.stdout == data, "round trip differs ({} bytes)", data.len());
    packed.stdout
}

fn file_roundtrip(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, data).unwrap();
    assert!(run_in(dir.path(), &["compress", "-q", "-p", "tiny", "in.bin"]).status.success());
    assert_eq!(std::fs::read(&input).unwrap(), data, "input untouched");
    assert!(run_in(dir.path(), &["decompress", "-q", "in.bin.nnz", "out.bin"]).status.success());
    assert_eq!(std::fs::read(dir.path().join("out.bin")).unwrap(), data);
    assert_eq!(listing(dir.path()), ["in.bin", "in.bin.nnz", "out.bin"]);
}

#[test]
fn tiny_and_edge_inputs() {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![b'x'],
        vec![0],
        all_bytes.clone(),
        all_bytes.iter().rev().cycle().take(3000).copied().collect(),
        random_bytes(20_000, 7),
        b"Hello, World! HELLO world. \xff\xfe invalid \xc3\x28 utf-8 ".repeat(50),
    ];
    for data in &cases {
        pipe_roundtrip(data, &[]);
        pipe_roundtrip(data, &["--no-tokenizer"]);
        file_roundtrip(data);
    }
}

#[test]
fn empty_and_incompressible_inputs_stay_small() {
    assert_eq!(pipe_roundtrip(b"", &[]).len(), 25);
    let random = random_bytes(50_000, 3);
    // A stored frame: the 25 bytes, plus 2 for each of the two lengths of 3-byte varints.
    assert!(pipe_roundtrip(&random, &[]).len() <= random.len() + 29);
}

#[test]
fn every_corpus_file_roundtrips() {
    let corpus = corpus();
    let mut count = 0;
    for set in ["calgary", "canterbury"] {
        let mut files: Vec<_> = std::fs::read_dir(corpus.join(set)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let packed = pipe_roundtrip(&data, &[]);
            assert!(packed.len() < data.len(), "{} does not compress", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 18 + 11);
}
