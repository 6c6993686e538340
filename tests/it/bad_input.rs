//! Bad input and bad luck, each as a user meets it: a full disk, an output that cannot
//! be written, output equal to input, a directory, a FIFO, signals mid-write, two
//! processes writing one path. Each gets one clear line, status 1, and no partial output.

use super::*;
use std::time::{Duration, Instant};

fn text() -> Vec<u8> {
    b"Bad input of every kind gets one clear line. ".repeat(2000)
}

/// Starts `nnz args…` in `dir` reading a pipe that stays open, and waits until its
/// temporary output file is there.
fn start_writing(dir: &Path, args: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = nnz()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"some data, and the stream stays open").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listing(dir).iter().any(|f| f.ends_with(".nnz-tmp")) {
        assert!(Instant::now() < deadline, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, stdin)
}

fn kill(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// A file system that fills up: a 64 KiB tmpfs (needs mount rights, as root in a
/// container; elsewhere the test says it is skipped).
#[test]
fn a_full_disk_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?); /dev/full is tested below");
        return;
    }
    let input = dir.path().join("big");
    std::fs::write(&input, random_bytes(1 << 20, 7)).unwrap();
    let out =
        nnz().args(["compress", "-q", "--model", "store", "-o"]).arg(mnt.join("big.nnz")).arg(&input).output().unwrap();
    let left = listing(&mnt);
    let _ = Command::new("umount").arg(&mnt).status();
    assert_error(&out, "No space left on device");
    assert_error(&out, "big.nnz");
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(input.exists(), "the input stays");
}

#[test]
fn a_full_standard_output_is_one_line() {
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = nnz()
        .args(["compress", "-c", "-q", "--model", "store", "-"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    child.stdin.take().unwrap().write_all(&random_bytes(1 << 18, 3)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_error(&out, "cannot write standard output: No space left on device");
}

/// A directory nnz may not write to: /proc (even root cannot create files there), and a
/// mode 555 directory where the tests do not run as root.
#[test]
fn an_unwritable_directory_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), text()).unwrap();
    let out = run_in(dir.path(), &["-q", "-o", "/proc/nnz-test.nnz", "a"]);
    assert_error(&out, "cannot write '/proc/nnz-test.nnz'");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::copy(dir.path().join("a"), ro.join("a")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = run_in(&ro, &["-q", "a"]);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    if unsafe { libc::geteuid() } != 0 {
        assert_error(&out, "cannot write 'a.nnz': Permission denied");
    }
    assert!(listing(&ro).iter().all(|f| !f.ends_with(".nnz-tmp")), "{:?}", listing(&ro));
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"data").unwrap();
    for args in [&["-f", "-o", "a", "a"][..], &["-d", "-f", "-o", "a", "a"], &["-f", "a", "./a.nnz"]] {
        let out = run_in(dir.path(), args);
        if args.contains(&"./a.nnz") {
            // Not the same file (a.nnz is the output): this one works.
            assert!(out.status.success(), "{args:?}");
            continue;
        }
        assert_error(&out, "both the input and the output");
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"data");
    }
}

#[test]
fn a_directory_as_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    assert_error(&run_in(dir.path(), &["sub"]), "'sub' is a directory: use -r");
    assert_error(&run_in(dir.path(), &["-c", "sub"]), "'sub' is a directory");
    assert_error(&run_in(dir.path(), &["-d", "sub"]), "'sub' is a directory");
    assert_eq!(listing(dir.path()), ["sub"]);
}

/// A FIFO has no size and may never end: refused where the output name would be
/// derived from it (as gzip does), read when the output is named or with -f.
#[test]
fn a_fifo_is_read_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert_error(&run_in(dir.path(), &["pipe"]), "'pipe' is not a regular file");
    assert_eq!(listing(dir.path()), ["pipe"]);
    let data = text();
    let feed = |data: Vec<u8>| {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, data).unwrap())
    };
    let writer = feed(data.clone());
    let out = run_in(dir.path(), &["-c", "pipe"]);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(run(&["-d"], &out.stdout).stdout, data);
    let writer = feed(data.clone());
    let out = run_in(dir.path(), &["-q", "-f", "--rm", "pipe"]);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listing(dir.path()), ["pipe", "pipe.nnz"], "--rm never removes a FIFO");
}

/// SIGINT and SIGTERM: the temporary file goes, the exit status is 130.
#[test]
fn sigint_and_sigterm_leave_no_temporary_file() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let (child, stdin) = start_writing(dir.path(), &["compress", "-q", "-", "out.nnz"]);
        kill(&child, signal);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal}");
        assert!(listing(dir.path()).is_empty(), "{signal} left behind: {:?}", listing(dir.path()));
        drop(stdin);
    }
}

/// SIGKILL cannot be caught: the temporary file stays, named for its process
/// (`.out.nnz.<pid>.nnz-tmp`), and the next run writing that output removes it.
#[test]
fn sigkill_leaves_a_recognisable_file_the_next_run_removes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, stdin) = start_writing(dir.path(), &["compress", "-q", "-", "out.nnz"]);
    let pid = child.id();
    kill(&child, "-KILL");
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(listing(dir.path()), [format!(".out.nnz.{pid}.nnz-tmp")]);
    // A live process's temporary file is never touched: ours, for one.
    let mine = format!(".out.nnz.{}.nnz-tmp", std::process::id());
    std::fs::write(dir.path().join(&mine), b"").unwrap();
    let out =
        nnz().current_dir(dir.path()).args(["compress", "-q", "-", "out.nnz"]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listing(dir.path()), [mine, "out.nnz".to_string()]);
}

/// Two processes writing one path: the first to finish wins, the other says so and
/// removes its own temporary file; the output is the winner's, whole.
#[test]
fn two_writers_to_one_path_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (first, mut first_in) = start_writing(dir.path(), &["compress", "-q", "-", "out.nnz"]);
    let (second, mut second_in) = start_writing(dir.path(), &["compress", "-q", "-", "out.nnz"]);
    first_in.write_all(b" (first)").unwrap();
    drop(first_in);
    let a = first.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    second_in.write_all(b" (second)").unwrap();
    drop(second_in);
    let b = second.wait_with_output().unwrap();
    assert_error(&b, "cannot write 'out.nnz': it appeared while nnz was working");
    assert_eq!(listing(dir.path()), ["out.nnz"]);
    let back = run_in(dir.path(), &["-dc", "out.nnz"]);
    assert_eq!(back.stdout, b"some data, and the stream stays open (first)");
}
