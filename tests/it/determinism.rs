//! The same bits everywhere: every kernel path decodes every other path's files, and a
//! golden file pins the format and the model's numerics.

use super::*;

#[test]
fn every_kernel_path_writes_and_reads_the_same_bits() {
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/enwik4")).unwrap();
    assert_same_bits_on_every_kernel_path(&["-p", "tiny", "--model", "lstm"], &text);
}

/// Regenerate (only with a format or numerics version bump!) with:
/// `./target/release/nnz compress -f -p tiny --model lstm data/enwik4 data/golden/enwik4.tiny.v2.nnz`
/// (`--model lstm`: the default became `auto`, which is the byte model;
/// the golden file pins the tokenized LSTM mixture, as it always did). The format-1 file
/// data/golden/enwik4.tiny.nnz, which the first release wrote with the same command, must
/// still decode.
#[test]
fn golden_file_is_reproduced_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(root.join("data/enwik4")).unwrap();
    let old = std::fs::read(root.join("data/golden/enwik4.tiny.nnz")).unwrap();
    assert_eq!(run(&["decompress", "-q"], &old).stdout, text, "the format-1 golden file no longer decodes");
    let golden = std::fs::read(root.join("data/golden/enwik4.tiny.v2.nnz")).unwrap();
    assert_eq!(run(&["decompress", "-q"], &golden).stdout, text, "the golden file no longer decodes");
    let now = run(&["compress", "-q", "-p", "tiny", "--model", "lstm"], &text).stdout;
    assert!(
        now == golden,
        "compressing data/enwik4 with -p tiny no longer gives data/golden/enwik4.tiny.v2.nnz: the format or the \
         model's numerics changed. If that is intended, bump FORMAT_VERSION or NUMERICS_VERSION in \
         src/format/mod.rs and regenerate the golden file (see this test's doc comment)"
    );
}

/// The thread count can never change the bits: nnz computes the model on one thread, and
/// the usual thread-count variables must not change that.
#[test]
fn thread_count_does_not_change_the_bits() {
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fields.c")).unwrap();
    let mut files = Vec::new();
    for threads in ["1", "2", "16"] {
        let env = [("RAYON_NUM_THREADS", threads), ("CANDLE_NUM_THREADS", threads), ("OMP_NUM_THREADS", threads)];
        let out = run_env(&["compress", "-q", "-p", "tiny", "-c", "-"], &env, &text);
        assert!(out.status.success());
        let other = if threads == "1" { "2" } else { "1" };
        let back = run_env(&["decompress", "-q", "-c", "-"], &[("RAYON_NUM_THREADS", other)], &out.stdout);
        assert_eq!(back.stdout, text, "decoded with another thread count");
        files.push(out.stdout);
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]), "the thread count changed the compressed bits");
}
