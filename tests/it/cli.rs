//! The command line's conventions: names, overwriting, streams, info, usage errors.

use super::*;
use std::io::Read;

fn dir_with(name: &str, data: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), data).unwrap();
    dir
}

#[test]
fn names_follow_zstd_and_input_is_kept() {
    let dir = dir_with("a.txt", b"some text some text some text");
    assert!(run_in(dir.path(), &["compress", "a.txt"]).status.success());
    assert_eq!(listing(dir.path()), ["a.txt", "a.txt.nnz"]);
    std::fs::rename(dir.path().join("a.txt"), dir.path().join("orig.txt")).unwrap();
    assert!(run_in(dir.path(), &["decompress", "a.txt.nnz"]).status.success());
    assert_eq!(listing(dir.path()), ["a.txt", "a.txt.nnz", "orig.txt"]);
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"some text some text some text");
}

#[test]
fn never_overwrites_without_force() {
    let dir = dir_with("a.txt", b"new contents");
    std::fs::write(dir.path().join("a.txt.nnz"), b"precious").unwrap();
    let out = run_in(dir.path(), &["compress", "a.txt"]);
    assert_error(&out, "already exists");
    assert_eq!(std::fs::read(dir.path().join("a.txt.nnz")).unwrap(), b"precious");
    assert_eq!(listing(dir.path()), ["a.txt", "a.txt.nnz"]);
    assert!(run_in(dir.path(), &["compress", "-f", "a.txt"]).status.success());
    assert_ne!(std::fs::read(dir.path().join("a.txt.nnz")).unwrap(), b"precious");
}

#[test]
fn stdout_flag_and_dash() {
    let dir = dir_with("a.txt", b"abcabcabc");
    let out = run_in(dir.path(), &["compress", "-c", "a.txt"]);
    assert!(out.status.success());
    let out2 = run_in(dir.path(), &["compress", "a.txt", "-"]);
    assert_eq!(out.stdout, out2.stdout);
    assert_eq!(listing(dir.path()), ["a.txt"]);
    let back = run(&["decompress"], &out.stdout);
    assert_eq!(back.stdout, b"abcabcabc");
}

#[test]
fn missing_input_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    assert_error(&run_in(dir.path(), &["compress", "nope.txt"]), "cannot read 'nope.txt'");
    assert_error(&run_in(dir.path(), &["decompress", "nope.nnz"]), "cannot read 'nope.nnz'");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn decompress_needs_the_suffix_or_an_output_name() {
    let dir = dir_with("a.bin", b"x");
    assert_error(&run_in(dir.path(), &["decompress", "a.bin"]), "does not end in .nnz");
}

#[test]
fn info_describes_the_file() {
    let text = b"It was the best of times, it was the worst of times. ".repeat(40);
    let dir = dir_with("t.txt", &text);
    assert!(run_in(dir.path(), &["compress", "t.txt"]).status.success());
    let out = run_in(dir.path(), &["info", "t.txt.nnz"]);
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    let size = std::fs::metadata(dir.path().join("t.txt.nnz")).unwrap().len();
    for needle in [
        "format version:    2".to_string(),
        "model:             bytectx (byte contexts), preset fast".to_string(),
        format!("original size:     {}", text.len()),
        format!("compressed size:   {size}"),
        "frames:            1".to_string(),
        "bits per byte:".to_string(),
        "checksum (xxh64):".to_string(),
    ] {
        assert!(s.contains(&needle), "missing '{needle}' in:\n{s}");
    }
    assert_error(&run_in(dir.path(), &["info", "t.txt"]), "not an nnz file");
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["compress", "--bogus"][..], &["--frobnicate"], &["compress", "--vocab", "100"]] {
        let out = nnz().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let help = nnz().args(["compress", "--help"]).output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--vocab"));
}

#[test]
fn closed_pipe_ends_quietly() {
    let data = random_bytes(1 << 20, 1);
    let packed = run(&["compress", "-q", "--model", "store"], &data).stdout;
    let mut child = nnz()
        .args(["decompress", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&packed).unwrap();
    drop(stdin);
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `nnz info f | head -1`: the reader may be gone before nnz writes; no panic, exit 0.
#[test]
fn info_to_a_closed_pipe_ends_quietly() {
    let dir = dir_with("t.txt", b"some text to describe");
    assert!(run_in(dir.path(), &["compress", "-q", "--model", "order2", "t.txt"]).status.success());
    let mut child = nnz()
        .current_dir(dir.path())
        .args(["info", "t.txt.nnz", "t.txt.nnz", "t.txt.nnz"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before nnz writes (or, at worst, after: also fine)
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn blocks_become_frames_and_frames_concatenate() {
    let text = b"Block after block, frame after frame. ".repeat(300); // 11.4 KB
    let dir = dir_with("t.txt", &text);
    assert!(run_in(dir.path(), &["compress", "-p", "tiny", "--block-size", "4K", "t.txt"]).status.success());
    let info = String::from_utf8(run_in(dir.path(), &["info", "t.txt.nnz"]).stdout).unwrap();
    assert!(info.contains("frames:            3"), "{info}");
    let packed = std::fs::read(dir.path().join("t.txt.nnz")).unwrap();
    assert_eq!(run(&["decompress"], &packed).stdout, text);
    // Two files back to back decode to both contents, like gzip and zstd.
    let other = run(&["compress"], b"and one more").stdout;
    let both = [packed.clone(), other].concat();
    assert_eq!(run(&["decompress"], &both).stdout, [&text[..], b"and one more"].concat());
}

#[test]
fn a_damaged_later_frame_is_located() {
    let a = run(&["compress"], &b"first frame ".repeat(50)).stdout;
    let b = run(&["compress"], &b"second frame ".repeat(50)).stdout;
    let mut both = [a.clone(), b].concat();
    let last = both.len() - 5;
    both[last] ^= 0x40;
    let out = run(&["decompress"], &both);
    assert_error(&out, &format!("frame 2 (at byte {})", a.len()));
}

#[test]
fn stats_report_the_breakdown() {
    let text = b"statistics for tuners, statistics for users. ".repeat(100);
    let out = run(&["compress", "-p", "tiny", "--stats"], &text);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in ["compressed bytes  ", "payload ", "dictionary ", "symbols ", "tokenizer ", "model ", "coder "] {
        assert!(err.contains(needle), "missing '{needle}' in:\n{err}");
    }
    assert!(err.contains(&format!("original bytes    {}", text.len())), "{err}");
    assert!(err.contains(&format!("compressed bytes  {} ", out.stdout.len())), "{err}");
}

#[test]
fn unknown_or_unavailable_kernel_path_is_an_error() {
    let out = nnz().args(["compress", "-c", "-"]).env("NNZ_KERNEL", "sse9").stdin(Stdio::null()).output().unwrap();
    assert_error(&out, "NNZ_KERNEL");
    let out = nnz().args(["compress", "-c", "-"]).env("NNZ_KERNEL", "scalar").stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn unknown_or_unavailable_device_is_an_error() {
    let out = run(&["compress", "-c", "--device", "tpu", "-"], b"abc");
    assert_error(&out, "unknown device \"tpu\"");
    let out = run_env(&["compress", "-c", "-"], &[("NNZ_DEVICE", "tpu")], b"abc");
    assert_error(&out, "unknown device");
    // The CPU is always there, and is what files are decoded with unless told otherwise.
    let out = run(&["compress", "-c", "--device", "cpu", "--model", "transformer", "-p", "tiny", "-"], b"abcabc");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        run(&["compress", "-c", "-q", "--device", "cuda", "--model", "transformer", "-p", "tiny", "-"], b"abcabc");
    if cfg!(feature = "cuda") {
        // A GPU build: either a GPU is there, or a one-line error says what is missing.
        if !out.status.success() {
            assert_error(&out, "");
        }
    } else {
        assert_error(&out, "--features cuda");
    }
}

/// `nnz info` names the format version of each file, old ones included.
#[test]
fn info_names_the_format_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, version) in [("enwik4.tiny.nnz", "1"), ("enwik4.tiny.v2.nnz", "2")] {
        let out = run_in(root, &["info", &format!("data/golden/{file}")]);
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(s.contains(&format!("format version:    {version}\n")), "{s}");
        assert!(s.contains("preset tiny"), "{s}");
    }
}
