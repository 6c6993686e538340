//! The end-to-end comparison (`examples/compare`): it runs nnz and the peers found here
//! on a small file, checks every round trip, and writes a CSV that parses. The example's
//! code is compiled into this test binary, so no cargo-built example has to exist.

#[path = "../../examples/compare/main.rs"]
#[allow(dead_code)]
mod example;

use example::report::CSV_COLUMNS;
use std::path::{Path, PathBuf};

/// Peers that are fast on a 10 kB file; the neural and context-mixing ones (seconds to
/// minutes even there) are left to the manual run.
const FAST_PEERS: &str = "xz,zstd,bzip2,brotli,7z-ppmd,zpaq";

fn enwik4() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/enwik4")
}

/// Runs the comparison with `extra` arguments on `files`, writing into `out`.
fn compare(out: &Path, extra: &[&str], files: &[&Path]) -> Vec<example::report::Row> {
    let mut args: Vec<String> =
        ["compare", "--nnz-bin", env!("CARGO_BIN_EXE_nnz")].iter().map(|s| s.to_string()).collect();
    args.extend(["--out".to_string(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|f| f.display().to_string()));
    example::run_cli(args).expect("comparison runs")
}

fn read_csv(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).expect("results.csv exists");
    let headers = r.headers().expect("CSV header").clone();
    assert_eq!(headers.iter().collect::<Vec<_>>(), CSV_COLUMNS);
    r.records().map(|rec| rec.expect("CSV record")).collect()
}

fn field<'a>(rec: &'a csv::StringRecord, name: &str) -> &'a str {
    let i = CSV_COLUMNS.iter().position(|c| *c == name).expect("column");
    &rec[i]
}

#[test]
fn nnz_and_installed_peers_on_enwik4() {
    let dir = tempfile::tempdir().unwrap();
    let input = enwik4();
    compare(
        dir.path(),
        &["--nnz-args", "order2=--model order2", "--presets", "tiny", "--peers", FAST_PEERS, "--timeout", "120"],
        &[&input],
    );
    let records = read_csv(&dir.path().join("results.csv"));
    let nnz: Vec<_> = records.iter().filter(|r| field(r, "kind") == "nnz").collect();
    assert_eq!(nnz.len(), 2, "the two nnz configurations asked for");
    let tiny = nnz.iter().find(|r| field(r, "tool") == "nnz tiny").expect("a row for --presets tiny");
    assert_eq!(field(tiny, "status"), "ok", "note: {}", field(tiny, "note"));
    let row = nnz[0];
    assert_eq!(field(row, "file"), "enwik4");
    assert_eq!(field(row, "tool"), "nnz order2");
    assert_eq!(field(row, "status"), "ok", "note: {}", field(row, "note"));
    assert_eq!(field(row, "original_bytes"), "10000");
    let packed: u64 = field(row, "compressed_bytes").parse().unwrap();
    assert!(packed > 0 && packed < 10_000, "{packed} bytes");
    let bpb: f64 = field(row, "bits_per_byte").parse().unwrap();
    assert!((bpb - packed as f64 * 8.0 / 10_000.0).abs() < 1e-3);
    for rec in &records {
        // Every row is a known outcome with numbers where it has them.
        let status = field(rec, "status");
        assert!(["ok", "mismatch", "timeout", "failed"].contains(&status), "{status}");
        if status == "ok" {
            for col in ["compress_s", "decompress_s", "compress_kB_s", "bits_per_byte"] {
                let v: f64 = field(rec, col).parse().expect(col);
                assert!(v >= 0.0 && v.is_finite(), "{col} = {v}");
            }
        }
    }
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(md.contains("| **nnz order2** |"), "{md}");
    let svg = std::fs::read_to_string(dir.path().join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("nnz order2"));
}

#[test]
fn presets_are_arguments_and_missing_peers_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let input = enwik4();
    let rows = compare(
        dir.path(),
        &[
            "--nnz-args",
            "a=--model order2",
            "--nnz-args",
            "raw=--model order2 --no-tokenizer",
            "--search-path",
            &empty.path().display().to_string(),
        ],
        &[&input],
    );
    let tools: Vec<&str> = rows.iter().map(|r| r.tool.as_str()).collect();
    assert_eq!(tools, ["nnz a", "nnz raw"], "no peer is found on an empty path");
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(md.contains("Not found on the search path"), "{md}");
    assert!(md.contains("xz -9") && md.contains("paq8px"), "{md}");
    assert_eq!(read_csv(&dir.path().join("results.csv")).len(), 2);
}

#[test]
fn a_bad_nnz_argument_set_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = enwik4();
    let args = [
        "compare",
        "--nnz-bin",
        env!("CARGO_BIN_EXE_nnz"),
        "--nnz-args",
        "--model order2",
        "--out",
        &dir.path().display().to_string(),
        &input.display().to_string(),
    ]
    .map(String::from);
    let err = example::run_cli(args).unwrap_err();
    assert!(format!("{err:#}").contains("NAME=ARGS"), "{err:#}");
}

/// A fake peer on the search path: a shell script named like the real tool.
#[cfg(unix)]
fn fake_peer(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_wrong_round_trip_a_crash_and_a_hang_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    // xz: "compresses" by copying, "decompresses" to something else.
    fake_peer(bin.path(), "xz", r#"if [ "$1" = "-d" ]; then echo garbage; else cat "$3"; fi"#);
    // bzip2: fails with a message.
    fake_peer(bin.path(), "bzip2", "echo 'bzip2: out of luck' >&2; exit 3");
    // zstd: hangs (in a child process, which the time-out must kill too).
    fake_peer(bin.path(), "zstd", "sleep 30; exit 0");
    let input = enwik4();
    let start = std::time::Instant::now();
    let rows = compare(
        dir.path(),
        &[
            "--nnz-args",
            "order2=--model order2",
            "--peers",
            "xz,bzip2,zstd",
            "--timeout",
            "1",
            "--search-path",
            &bin.path().display().to_string(),
        ],
        &[&input],
    );
    assert!(start.elapsed().as_secs() < 20, "the hang was not cut short");
    let status = |tool: &str| {
        let r = rows.iter().find(|r| r.tool == tool).expect(tool);
        (r.status.as_str(), r.note.clone())
    };
    assert_eq!(status("nnz order2").0, "ok");
    let (s, note) = status("xz -9");
    assert_eq!(s, "mismatch", "{note}");
    assert!(note.contains("first difference at byte 0"), "{note}");
    let (s, note) = status("bzip2 -9");
    assert_eq!(s, "failed");
    assert!(note.contains("exit 3") && note.contains("out of luck"), "{note}");
    let (s, note) = status("zstd -19");
    assert_eq!(s, "timeout", "{note}");
    let records = read_csv(&dir.path().join("results.csv"));
    assert_eq!(records.len(), 4);
}

#[test]
fn an_empty_file_round_trips_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("out");
    let rows = compare(&out, &["--nnz-args", "order2=--model order2", "--peers", "none"], &[&empty]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status.as_str(), "ok", "{}", rows[0].note);
    assert_eq!(rows[0].bits_per_byte(), Some(0.0));
    assert!(out.join("plot.svg").is_file());
}
