//! The Transformer through the binary: round trips of the tiny preset (retraining
//! included), the same bits on every kernel path, a golden file, `nnz info`.

use super::*;

fn enwik4() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/enwik4")).unwrap()
}

#[test]
fn tiny_transformer_roundtrips_mixed_and_alone() {
    let text = enwik4();
    for extra in [&[][..], &["--no-mix"][..], &["--no-tokenizer"][..]] {
        let mut args = vec!["compress", "-q", "--model", "transformer", "-p", "tiny"];
        args.extend_from_slice(extra);
        let packed = run(&args, &text);
        assert!(packed.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&packed.stderr));
        assert!(packed.stdout.len() < text.len() * 3 / 5, "{extra:?}: {} bytes", packed.stdout.len());
        let back = run(&["decompress", "-q"], &packed.stdout);
        assert!(back.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&back.stderr));
        assert!(back.stdout == text, "{extra:?}: decoded bytes differ");
    }
}

#[test]
fn tiny_transformer_is_the_same_on_every_kernel_path() {
    assert_same_bits_on_every_kernel_path(&["--model", "transformer", "-p", "tiny"], &enwik4());
}

/// Regenerate (only when the Transformer's numerics change on purpose) with:
/// `./target/release/nnz compress -f --model transformer -p tiny data/enwik4 data/golden/enwik4.transformer2-tiny.v2.nnz`
/// The older files must still decode: data/golden/enwik4.transformer-tiny.v2.nnz (the same
/// command with Transformer configuration version 1) and
/// data/golden/enwik4.transformer-tiny.nnz (before format 2).
#[test]
fn transformer_golden_file_is_reproduced_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = enwik4();
    for (old, what) in [
        ("enwik4.transformer-tiny.nnz", "format 1"),
        ("enwik4.transformer-tiny.v2.nnz", "Transformer configuration version 1"),
    ] {
        let old = std::fs::read(root.join("data/golden").join(old)).unwrap();
        assert!(run(&["decompress", "-q"], &old).stdout == text, "the {what} golden file no longer decodes");
    }
    let golden = std::fs::read(root.join("data/golden/enwik4.transformer2-tiny.v2.nnz")).unwrap();
    assert!(run(&["decompress", "-q"], &golden).stdout == text, "the golden file no longer decodes");
    let now = run(&["compress", "-q", "--model", "transformer", "-p", "tiny"], &text).stdout;
    assert!(now == golden, "the tiny Transformer's output changed (see this test's doc comment)");
}

#[test]
fn info_names_the_transformer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), enwik4()).unwrap();
    let out = run_in(dir.path(), &["compress", "-q", "--model", "transformer", "-p", "tiny", "in.txt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info = run_in(dir.path(), &["info", "in.txt.nnz"]);
    let s = String::from_utf8_lossy(&info.stdout);
    assert!(s.contains("transformer+ngram"), "{s}");
}

/// The thread-count variables change nothing: the model runs on one thread.
#[test]
fn thread_count_does_not_change_the_transformer_bits() {
    let text = enwik4();
    let mut files = Vec::new();
    for threads in ["1", "2", "16"] {
        let env = [("RAYON_NUM_THREADS", threads), ("CANDLE_NUM_THREADS", threads), ("OMP_NUM_THREADS", threads)];
        let out = run_env(&["compress", "-q", "--model", "transformer", "-p", "tiny", "-c", "-"], &env, &text);
        assert!(out.status.success());
        files.push(out.stdout);
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]), "the thread count changed the compressed bits");
}
