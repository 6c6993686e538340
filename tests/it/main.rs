//! Integration tests: they run the built `nnz` binary as a user would.

mod bad_input;
mod bytes;
mod cli;
mod compare;
mod corrupt;
mod determinism;
mod files;
mod fuzz_regressions;
mod parallel;
mod roundtrip;
mod transformer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn nnz() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nnz"))
}

/// Runs `nnz args…` with `stdin` as standard input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_env(args, &[], stdin)
}

/// Runs `nnz args…` with the environment variables `env` set and `stdin` as standard input.
pub fn run_env(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = nnz()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nnz");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for nnz");
    writer.join().expect("stdin writer");
    out
}

/// Kernel paths this CPU can run (the scalar reference always).
pub fn kernel_paths() -> Vec<&'static str> {
    let paths: Vec<_> = ["scalar", "avx2", "avx512"]
        .into_iter()
        .filter(|p| run_env(&["compress", "-c", "--model", "store", "-"], &[("NNZ_KERNEL", p)], b"").status.success())
        .collect();
    assert!(paths.contains(&"scalar"), "the scalar reference path always runs");
    paths
}

/// Compresses `input` with `nnz compress -q args…` under every kernel path: every path
/// must write the same bits, and decode them back to `input`.
pub fn assert_same_bits_on_every_kernel_path(args: &[&str], input: &[u8]) {
    let with_kernel = |path: &str, args: &[&str], stdin: &[u8]| {
        let out = run_env(args, &[("NNZ_KERNEL", path)], stdin);
        assert!(out.status.success(), "NNZ_KERNEL={path} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let paths = kernel_paths();
    let compress: Vec<&str> = ["compress", "-q"].iter().chain(args).copied().collect();
    let files: Vec<Vec<u8>> = paths.iter().map(|p| with_kernel(p, &compress, input)).collect();
    for (p, f) in paths.iter().zip(&files) {
        assert!(f == &files[0], "NNZ_KERNEL={p} {args:?} wrote different bits than {}", paths[0]);
    }
    for p in &paths {
        assert!(
            with_kernel(p, &["decompress", "-q"], &files[0]) == input,
            "NNZ_KERNEL={p} {args:?} decoded differently"
        );
    }
}

/// Runs `nnz args…` in `dir` with empty standard input.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    nnz().current_dir(dir).args(args).stdin(Stdio::null()).output().expect("run nnz")
}

/// The shared benchmark corpus (../shared/corpus beside the checkout), or `NNZ_CORPUS`.
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("NNZ_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(dir.is_dir(), "corpus not found at {} (set NNZ_CORPUS)", dir.display());
    dir
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Files in `dir` (sorted), to check that nothing was left behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Asserts a failed run: exit status 1 and exactly one line on stderr, containing `needle`.
pub fn assert_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("nnz: "), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
}
