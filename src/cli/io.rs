//! Where bytes come from and go to: files, standard streams, and atomic output.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Suffix of compressed files.
pub const SUFFIX: &str = ".nnz";

/// Where the output goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    File(PathBuf),
    /// Nowhere: `-t` decodes and checks, and writes nothing.
    Discard,
}

/// Whether a path's name ends in `.nnz` (and is more than that).
pub fn has_suffix(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() > SUFFIX.len() && n.ends_with(SUFFIX))
}

/// Whether a path is one of nnz's temporary output files.
pub fn is_temp(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n.ends_with(TEMP_SUFFIX))
}

/// Opens the input: a file, or standard input. Also returns its size when known. Read
/// errors name the input (`cannot read 'x': ...`), keeping their kind.
pub fn open_input(input: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>)> {
    match input {
        None => Ok((Box::new(Named::new(io::BufReader::with_capacity(1 << 16, io::stdin()), None, "read")), None)),
        Some(path) => {
            let f = fs::File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let meta = f.metadata().with_context(|| format!("cannot read '{}'", path.display()))?;
            if meta.is_dir() {
                bail!("cannot read '{}': it is a directory (use -r for the files under it)", path.display());
            }
            // A FIFO or a device has no meaningful length.
            let size = meta.is_file().then_some(meta.len());
            Ok((Box::new(Named::new(io::BufReader::with_capacity(1 << 16, f), Some(path), "read")), size))
        }
    }
}

/// Whether `path` is a regular file (not a FIFO, a device or a socket).
pub fn is_regular(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// A reader or writer whose errors say which file and which direction: the engine
/// reports them as they come, and a bare "No space left on device" names nothing.
pub struct Named<T> {
    inner: T,
    what: String,
}

impl<T> Named<T> {
    fn new(inner: T, path: Option<&Path>, verb: &str) -> Named<T> {
        let name = path.map_or_else(
            || format!("standard {}", if verb == "read" { "input" } else { "output" }),
            |p| format!("'{}'", p.display()),
        );
        Named { inner, what: format!("cannot {verb} {name}") }
    }

    fn name_error(&self, e: io::Error) -> io::Error {
        // The kind stays (a broken pipe is still recognised as one).
        io::Error::new(e.kind(), format!("{}: {e}", self.what))
    }
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.name_error(e))
    }
}

impl<W: Write> Write for Named<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.name_error(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.name_error(e))
    }
}

/// Resolves the output of `compress` (`compressing`) or `decompress` the way zstd does.
pub fn resolve_sink(input: Option<&Path>, output: &Option<PathBuf>, stdout: bool, compressing: bool) -> Result<Sink> {
    if stdout {
        return Ok(Sink::Stdout);
    }
    if let Some(out) = output {
        return Ok(if out == Path::new("-") { Sink::Stdout } else { Sink::File(out.clone()) });
    }
    let Some(input) = input else {
        return Ok(Sink::Stdout);
    };
    let name = input.as_os_str().to_string_lossy();
    if compressing {
        let mut out = input.as_os_str().to_owned();
        out.push(SUFFIX);
        Ok(Sink::File(PathBuf::from(out)))
    } else {
        match name.strip_suffix(SUFFIX) {
            Some(stem) if !stem.is_empty() && !stem.ends_with('/') => Ok(Sink::File(PathBuf::from(stem))),
            _ => bail!("'{name}' does not end in {SUFFIX}: name the output file, or use -c for standard output"),
        }
    }
}

/// Checks, before any work is done, that writing to `sink` is allowed.
pub fn check_sink(sink: &Sink, input: Option<&Path>, force: bool, compressed: bool) -> Result<()> {
    match sink {
        Sink::Stdout => {
            if compressed && !force && io::stdout().is_terminal() {
                bail!("refusing to write compressed data to a terminal: redirect standard output, or use -f");
            }
        }
        Sink::Discard => {}
        Sink::File(path) => {
            if let Some(input) = input {
                if same_file(input, path) {
                    bail!("'{}' is both the input and the output", path.display());
                }
            }
            if !force && fs::symlink_metadata(path).is_ok() {
                bail!("'{}' already exists: use -f to overwrite it", path.display());
            }
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Temporary files being written, removed by the signal handler on Ctrl-C.
static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Makes Ctrl-C, SIGTERM and SIGHUP remove any temporary output file before exiting
/// (status 130), so an interrupted run leaves nothing half-written. The input is never
/// touched.
pub fn remove_temp_files_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(files) = TEMP_FILES.lock() {
            for f in files.iter() {
                let _ = fs::remove_file(f);
            }
        }
        std::process::exit(130);
    });
}

/// The output being written: standard output, or a temporary file beside the target that
/// [`Output::commit`] moves into place. Dropped without a commit (an error, a panic), the
/// temporary file is removed.
pub enum Output {
    Discard(io::Sink),
    Stdout(Named<io::BufWriter<io::Stdout>>),
    File { tmp: PathBuf, target: PathBuf, file: Named<io::BufWriter<fs::File>>, force: bool },
}

impl Output {
    /// Opens the output; a file output gets the permissions of `input`, when there is one
    /// (as gzip and zstd do).
    pub fn create(sink: &Sink, force: bool, input: Option<&Path>) -> Result<Output> {
        match sink {
            Sink::Discard => Ok(Output::Discard(io::sink())),
            Sink::Stdout => {
                Ok(Output::Stdout(Named::new(io::BufWriter::with_capacity(1 << 16, io::stdout()), None, "write")))
            }
            Sink::File(target) => {
                let cannot = || format!("cannot write '{}'", target.display());
                remove_stale_temp_files(target);
                let tmp = temp_path(target);
                // Registered before it exists, so that a signal between the two still
                // finds it.
                TEMP_FILES.lock().map_err(|_| anyhow::anyhow!("internal error: lock poisoned"))?.push(tmp.clone());
                let file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp).with_context(cannot);
                let file = match file {
                    Ok(f) => f,
                    Err(e) => {
                        forget_temp(&tmp);
                        return Err(e);
                    }
                };
                if let Some(meta) = input.and_then(|i| fs::metadata(i).ok()).filter(|m| m.is_file()) {
                    let _ = file.set_permissions(meta.permissions());
                }
                let file = Named::new(io::BufWriter::with_capacity(1 << 16, file), Some(target), "write");
                Ok(Output::File { tmp, target: target.clone(), file, force })
            }
        }
    }

    /// Finishes the output: flushes it and, for a file, moves it into place. Without
    /// `force` the move never replaces a file: a hard link fails if the target exists,
    /// atomically, so of two nnz processes writing one path one wins and the other
    /// reports it; the temporary name is then removed.
    pub fn commit(mut self) -> Result<()> {
        match &mut self {
            Output::Discard(_) => Ok(()),
            Output::Stdout(out) => Ok(out.flush()?),
            Output::File { tmp, target, file, force } => {
                file.flush()?;
                let cannot = || format!("cannot write '{}'", target.display());
                file.inner.get_ref().sync_all().with_context(cannot)?;
                if *force {
                    return fs::rename(&*tmp, &*target).with_context(cannot);
                }
                match fs::hard_link(&*tmp, &*target) {
                    Ok(()) => Ok(()), // drop removes the temporary name
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        bail!(
                            "cannot write '{}': it appeared while nnz was working (use -f to overwrite)",
                            target.display()
                        )
                    }
                    // A file system without hard links: check, then rename (not atomic).
                    Err(_) if fs::symlink_metadata(&*target).is_err() => {
                        fs::rename(&*tmp, &*target).with_context(cannot)
                    }
                    Err(_) => bail!(
                        "cannot write '{}': it appeared while nnz was working (use -f to overwrite)",
                        target.display()
                    ),
                }
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Discard(out) => out.write(buf),
            Output::Stdout(out) => out.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Discard(out) => out.flush(),
            Output::Stdout(out) => out.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File { tmp, .. } = self {
            // After a rename this finds nothing to remove; after a hard link it removes
            // the temporary name and leaves the target.
            let _ = fs::remove_file(&*tmp);
            forget_temp(tmp);
        }
    }
}

fn forget_temp(tmp: &Path) {
    if let Ok(mut files) = TEMP_FILES.lock() {
        files.retain(|f| f != tmp);
    }
}

/// `dir/.name.<pid>.nnz-tmp`: hidden, beside the target (same file system for the move),
/// and recognisable: the process that wrote it is named in it.
fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!("{}{}{TEMP_SUFFIX}", temp_prefix(path), std::process::id()))
}

const TEMP_SUFFIX: &str = ".nnz-tmp";

fn temp_prefix(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".{name}.")
}

/// Removes the temporary files of `target` left by nnz processes that no longer run
/// (killed with SIGKILL, or the machine stopped). Where processes cannot be looked up
/// (no /proc), nothing is removed: a live process's file must never go.
fn remove_stale_temp_files(target: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = temp_prefix(target);
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Parses a size such as `4096`, `64K`, `256M` or `1G` (binary multiples).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_uppercase() {
                'K' => 1usize << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix '{c}' (use K, M or G)")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: usize = digits.parse().map_err(|_| format!("'{s}' is not a size"))?;
    match n.checked_mul(mult) {
        Some(0) => Err("the size must be at least 1 byte".into()),
        Some(v) if v as u64 <= crate::format::MAX_FRAME_LEN => Ok(v),
        _ => Err(format!("'{s}' is too large (at most {} GiB)", crate::format::MAX_FRAME_LEN >> 30)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_bounds() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("16G"), Ok(1 << 34));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("17G").unwrap_err().contains("too large (at most 16 GiB)"));
        assert!(parse_size("0").unwrap_err().contains("at least 1 byte"));
        assert!(parse_size("3T").unwrap_err().contains("unknown size suffix"));
        assert!(parse_size("1.5").unwrap_err().contains("not a size"));
    }

    #[test]
    fn output_names_follow_zstd() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(resolve_sink(Some(Path::new("a.txt")), &None, false, true).unwrap(), Sink::File("a.txt.nnz".into()));
        assert_eq!(
            resolve_sink(Some(Path::new("a.txt.nnz")), &None, false, false).unwrap(),
            Sink::File("a.txt".into())
        );
        assert!(resolve_sink(Some(Path::new("a.txt")), &None, false, false).is_err());
        assert!(resolve_sink(Some(Path::new(".nnz")), &None, false, false).is_err());
        assert_eq!(resolve_sink(None, &None, false, true).unwrap(), Sink::Stdout);
        assert_eq!(resolve_sink(Some(Path::new("a")), &p("-"), false, true).unwrap(), Sink::Stdout);
        assert_eq!(resolve_sink(Some(Path::new("a")), &p("b"), true, true).unwrap(), Sink::Stdout);
        assert_eq!(resolve_sink(None, &p("b"), false, true).unwrap(), Sink::File("b".into()));
    }
}
