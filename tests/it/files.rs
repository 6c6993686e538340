//! The zstd/xz command line: several files, directories, -t, -l, levels, --rm, the
//! summary line, `unnz` and `nnzcat`, completions and the man page.

use super::*;

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const A: &[u8] = b"the first file, the first file, the first file";
const B: &[u8] = b"and the second one";

#[test]
fn several_files_each_get_their_own_output() {
    let dir = dir_with(&[("a", A), ("b", B), ("c", b"")]);
    let out = run_in(dir.path(), &["-q", "a", "b", "c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), ["a", "a.nnz", "b", "b.nnz", "c", "c.nnz"]);
    for f in ["a", "b", "c"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let out = run_in(dir.path(), &["-d", "-q", "a.nnz", "b.nnz", "c.nnz"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), A);
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), B);
    assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), b"");
}

/// One bad file: one line naming it, the others done, exit status 1.
#[test]
fn a_failing_file_does_not_stop_the_others() {
    let dir = dir_with(&[("a", A), ("b", B)]);
    let out = run_in(dir.path(), &["compress", "-q", "a", "missing", "b"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        ["nnz: cannot read 'missing': No such file or directory (os error 2)", "nnz: 1 of 3 files failed"],
        "{err}"
    );
    assert_eq!(listing(dir.path()), ["a", "a.nnz", "b", "b.nnz"]);
}

#[test]
fn stdout_concatenates_and_output_names_one_file() {
    let dir = dir_with(&[("a", A), ("b", B)]);
    let out = run_in(dir.path(), &["-c", "a", "b"]);
    assert!(out.status.success());
    assert_eq!(run(&["-d"], &out.stdout).stdout, [A, B].concat());
    assert_error(&run_in(dir.path(), &["-o", "x.nnz", "a", "b"]), "-o names one output, but there are 2 inputs");
    assert!(run_in(dir.path(), &["-q", "-o", "x.nnz", "a"]).status.success());
    assert!(run_in(dir.path(), &["-q", "-d", "x.nnz", "-o", "y"]).status.success());
    assert_eq!(std::fs::read(dir.path().join("y")).unwrap(), A);
    assert_eq!(listing(dir.path()), ["a", "b", "x.nnz", "y"]);
}

#[test]
fn recursive_takes_every_file_under_a_directory() {
    let dir = dir_with(&[("d/a", A), ("d/sub/b", B), ("d/sub/old.nnz", b"not touched when compressing")]);
    assert_error(&run_in(dir.path(), &["d"]), "'d' is a directory: use -r");
    let out = run_in(dir.path(), &["-r", "-q", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = dir.path().join("d");
    assert_eq!(listing(&d), ["a", "a.nnz", "sub"]);
    assert_eq!(listing(&d.join("sub")), ["b", "b.nnz", "old.nnz"]);
    std::fs::remove_file(d.join("a")).unwrap();
    std::fs::remove_file(d.join("sub/b")).unwrap();
    std::fs::remove_file(d.join("sub/old.nnz")).unwrap();
    let out = run_in(dir.path(), &["-d", "-r", "-q", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.join("a")).unwrap(), A);
    assert_eq!(std::fs::read(d.join("sub/b")).unwrap(), B);
}

#[test]
fn test_checks_without_writing() {
    let dir = dir_with(&[("a", A)]);
    assert!(run_in(dir.path(), &["-q", "a"]).status.success());
    std::fs::remove_file(dir.path().join("a")).unwrap();
    for args in [&["-t", "a.nnz"][..], &["test", "a.nnz"]] {
        let out = run_in(dir.path(), args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let out = run_in(dir.path(), &["-t", "-v", "a.nnz"]);
    assert!(stderr(&out).starts_with(&format!("a.nnz : OK, {} bytes", A.len())), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), ["a.nnz"]);
    let mut packed = std::fs::read(dir.path().join("a.nnz")).unwrap();
    let last = packed.len() - 3;
    packed[last] ^= 1;
    std::fs::write(dir.path().join("bad.nnz"), packed).unwrap();
    assert_error(&run_in(dir.path(), &["-t", "bad.nnz"]), "cannot decompress 'bad.nnz'");
    assert_eq!(listing(dir.path()), ["a.nnz", "bad.nnz"]);
}

#[test]
fn list_shows_one_line_per_file_and_totals() {
    let dir = dir_with(&[("a", A), ("b", B)]);
    assert!(run_in(dir.path(), &["-q", "a", "b"]).status.success());
    let (sa, sb) = (
        std::fs::metadata(dir.path().join("a.nnz")).unwrap().len(),
        std::fs::metadata(dir.path().join("b.nnz")).unwrap().len(),
    );
    let out = run_in(dir.path(), &["-l", "a.nnz", "b.nnz"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("Frames   Compressed  Uncompressed"), "{text}");
    let fields = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(fields(lines[1])[..3], ["1".to_string(), sa.to_string(), A.len().to_string()], "{text}");
    assert_eq!(fields(lines[1]).last().unwrap(), "a.nnz");
    assert_eq!(fields(lines[2])[..3], ["1".to_string(), sb.to_string(), B.len().to_string()], "{text}");
    assert_eq!(fields(lines[4])[..3], ["2".to_string(), (sa + sb).to_string(), (A.len() + B.len()).to_string()]);
    assert!(lines[4].ends_with("2 files"), "{text}");
    let same = run_in(dir.path(), &["list", "a.nnz", "b.nnz"]);
    assert_eq!(String::from_utf8(same.stdout).unwrap(), text);
    assert_error(&run_in(dir.path(), &["-l", "a"]), "cannot read 'a': not an nnz file");
}

#[test]
fn levels_map_onto_presets() {
    let text = b"levels are presets, presets are levels. ".repeat(20);
    let with = |args: &[&str]| {
        let out = run(args, &text);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out.stdout
    };
    let fast = with(&["-q", "-p", "fast"]);
    assert_eq!(with(&["-q", "-1"]), fast);
    assert_eq!(with(&["-q", "-3"]), fast);
    assert_eq!(with(&["-q"]), fast);
    assert_eq!(with(&["compress", "-q", "-2"]), fast);
    let info = |packed: &[u8]| {
        let dir = dir_with(&[("x.nnz", packed)]);
        String::from_utf8(run_in(dir.path(), &["info", "x.nnz"]).stdout).unwrap()
    };
    assert!(info(&with(&["-q", "-6", "--model", "bytectx"])).contains("preset default"));
    assert!(info(&with(&["-q", "-9", "--model", "bytectx"])).contains("preset large"));
    assert_error(&run(&["-9", "-p", "fast"], b"x"), "-9 means preset large, which conflicts with -p fast");
    assert!(run(&["-q", "-9", "-p", "large", "--model", "order2"], b"x").status.success());
    assert_eq!(run(&["-1", "-9"], b"x").status.code(), Some(2), "two levels are a usage error");
}

#[test]
fn rm_removes_the_input_only_after_success() {
    let dir = dir_with(&[("a", A), ("b", B)]);
    std::fs::write(dir.path().join("b.nnz"), b"precious").unwrap();
    let out = run_in(dir.path(), &["--rm", "-q", "a", "b"]);
    assert_eq!(out.status.code(), Some(1), "b.nnz exists: b fails");
    assert_eq!(listing(dir.path()), ["a.nnz", "b", "b.nnz"]);
    assert!(run_in(dir.path(), &["-d", "--rm", "-q", "a.nnz"]).status.success());
    assert_eq!(listing(dir.path()), ["a", "b", "b.nnz"]);
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), A);
    assert_error(&run_in(dir.path(), &["--rm", "-c", "a"]), "cannot be used with standard output");
    assert_eq!(run_in(dir.path(), &["--rm", "-k", "a"]).status.code(), Some(2));
    assert!(run_in(dir.path(), &["-k", "-q", "-f", "a"]).status.success());
    assert_eq!(listing(dir.path()), ["a", "a.nnz", "b", "b.nnz"]);
}

/// The summary line, as zstd writes it, with -v when standard error is not a terminal.
#[test]
fn verbose_prints_a_summary_per_file() {
    let dir = dir_with(&[("a", A)]);
    let out = run_in(dir.path(), &["-v", "a"]);
    let size = std::fs::metadata(dir.path().join("a.nnz")).unwrap().len();
    let err = stderr(&out);
    let pct = size as f64 * 100.0 / A.len() as f64;
    assert!(err.starts_with(&format!("a : {pct:.2}% ({} => {size} bytes, a.nnz) ", A.len())), "{err}");
    assert!(err.contains(" bits/byte, "), "{err}");
    assert!(run_in(dir.path(), &["-f", "a"]).stderr.is_empty(), "not a terminal, no -v: silent");
}

#[test]
fn unnz_and_nnzcat_decompress() {
    let dir = dir_with(&[("a", A)]);
    assert!(run_in(dir.path(), &["-q", "a"]).status.success());
    let cat = Command::new(env!("CARGO_BIN_EXE_nnzcat")).current_dir(dir.path()).arg("a.nnz").output().unwrap();
    assert!(cat.status.success(), "{}", stderr(&cat));
    assert_eq!(cat.stdout, A);
    std::fs::remove_file(dir.path().join("a")).unwrap();
    let un = Command::new(env!("CARGO_BIN_EXE_unnz")).current_dir(dir.path()).args(["-q", "a.nnz"]).output().unwrap();
    assert!(un.status.success(), "{}", stderr(&un));
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), A);
}

/// Without a subcommand, standard input to standard output, as `tar c | zstd > x.zst`.
#[test]
fn no_subcommand_filters_standard_streams() {
    let packed = run(&[], A);
    assert!(packed.status.success());
    assert_eq!(run(&["-d"], &packed.stdout).stdout, A);
    assert_eq!(run(&["--decompress"], &packed.stdout).stdout, A);
    assert_eq!(run(&["-z", "-d"], b"").status.code(), Some(2), "two operations are a usage error");
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell], b"");
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("decompress") && text.contains("--block-size"), "{shell}: {text}");
    }
    let man = String::from_utf8(run(&["manpage"], b"").stdout).unwrap();
    assert!(man.contains(".TH nnz 1") && man.contains("decompress"), "{man}");
}
