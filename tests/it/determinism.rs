//! The same bits everywhere: every kernel path decodes every other path's files, and a
//! golden file pins the format and the model's numerics.

use super::*;

/// Kernel paths this CPU can run (the scalar reference always).
fn paths() -> Vec<&'static str> {
    ["scalar", "avx2", "avx512"]
        .into_iter()
        .filter(|p| {
            let out = nnz()
                .args(["compress", "-c", "--model", "store", "-"])
                .env("NNZ_KERNEL", p)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            out.status.success()
        })
        .collect()
}

fn with_kernel(path: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = nnz()
        .args(args)
        .env("NNZ_KERNEL", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "NNZ_KERNEL={path} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn every_kernel_path_writes_and_reads_the_same_bits() {
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/enwik4")).unwrap();
    let paths = paths();
    assert!(paths.contains(&"scalar"));
    let files: Vec<Vec<u8>> =
        paths.iter().map(|p| with_kernel(p, &["compress", "-q", "-p", "tiny", "--model", "lstm"], &text)).collect();
    for (p, f) in paths.iter().zip(&files) {
        assert!(f == &files[0], "NNZ_KERNEL={p} wrote different bits than {}", paths[0]);
    }
    for p in &paths {
        assert_eq!(with_kernel(p, &["decompress", "-q"], &files[0]), text, "NNZ_KERNEL={p} decoded differently");
    }
}

/// Regenerate (only with a format or numerics version bump!) with:
/// `./target/release/nnz compress -f -p tiny --model lstm data/enwik4 data/golden/enwik4.tiny.nnz`
/// (`--model lstm`: the default became `auto`, which picks the byte model at this size;
/// the golden file pins the tokenized LSTM mixture, as it always did)
#[test]
fn golden_file_is_reproduced_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(root.join("data/enwik4")).unwrap();
    let golden = std::fs::read(root.join("data/golden/enwik4.tiny.nnz")).unwrap();
    assert_eq!(run(&["decompress", "-q"], &golden).stdout, text, "the golden file no longer decodes");
    let now = run(&["compress", "-q", "-p", "tiny", "--model", "lstm"], &text).stdout;
    assert!(
        now == golden,
        "compressing data/enwik4 with -p tiny no longer gives data/golden/enwik4.tiny.nnz: the format or the \
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
        let out = nnz()
            .args(["compress", "-q", "-p", "tiny", "-c", "data/fields.c"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAYON_NUM_THREADS", threads)
            .env("CANDLE_NUM_THREADS", threads)
            .env("OMP_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success());
        let back = nnz()
            .args(["decompress", "-q", "-c", "-"])
            .env("RAYON_NUM_THREADS", if threads == "1" { "2" } else { "1" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(&out.stdout)?;
                child.wait_with_output()
            })
            .unwrap();
        assert_eq!(back.stdout, text, "decoded with another thread count");
        files.push(out.stdout);
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]), "the thread count changed the compressed bits");
}
