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
}

/// `None` or `-` means standard input.
pub fn input_path(input: &Option<PathBuf>) -> Option<&Path> {
    input.as_deref().filter(|p| *p != Path::new("-"))
}

/// Opens the input: a file, or standard input. Also returns its size when known.
pub fn open_input(input: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>)> {
    match input {
        None => Ok((Box::new(io::BufReader::with_capacity(1 << 16, io::stdin())), None)),
        Some(path) => {
            let f = fs::File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let meta = f.metadata().with_context(|| format!("cannot read '{}'", path.display()))?;
            if meta.is_dir() {
                bail!("cannot read '{}': it is a directory", path.display());
            }
            Ok((Box::new(io::BufReader::with_capacity(1 << 16, f)), Some(meta.len())))
        }
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
/// [`Output::commit`] renames into place. Dropped without a commit (an error, a panic), the
/// temporary file is removed.
pub enum Output {
    Stdout(io::BufWriter<io::Stdout>),
    File { tmp: PathBuf, target: PathBuf, file: io::BufWriter<fs::File>, force: bool },
}

impl Output {
    /// Opens the output; a file output gets the permissions of `input`, when there is one
    /// (as gzip and zstd do).
    pub fn create(sink: &Sink, force: bool, input: Option<&Path>) -> Result<Output> {
        match sink {
            Sink::Stdout => Ok(Output::Stdout(io::BufWriter::with_capacity(1 << 16, io::stdout()))),
            Sink::File(target) => {
                let tmp = temp_path(target);
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .with_context(|| format!("cannot write '{}'", tmp.display()))?;
                TEMP_FILES.lock().map_err(|_| anyhow::anyhow!("internal error: lock poisoned"))?.push(tmp.clone());
                if let Some(meta) = input.and_then(|i| fs::metadata(i).ok()) {
                    let _ = file.set_permissions(meta.permissions());
                }
                Ok(Output::File { tmp, target: target.clone(), file: io::BufWriter::new(file), force })
            }
        }
    }

    /// Finishes the output: flushes it and, for a file, moves it into place.
    pub fn commit(mut self) -> Result<()> {
        match &mut self {
            Output::Stdout(out) => out.flush().context("cannot write standard output"),
            Output::File { tmp, target, file, force } => {
                let result = (|| -> io::Result<()> {
                    file.flush()?;
                    file.get_ref().sync_all()?;
                    if !*force && fs::symlink_metadata(&*target).is_ok() {
                        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "it appeared while nnz was working"));
                    }
                    fs::rename(&*tmp, &*target)
                })();
                result.with_context(|| format!("cannot write '{}'", target.display()))
                // on error, drop removes the temporary file
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File { tmp, .. } = self {
            // After a successful rename this finds nothing to remove.
            let _ = fs::remove_file(&*tmp);
            if let Ok(mut files) = TEMP_FILES.lock() {
                files.retain(|f| f != tmp);
            }
        }
    }
}

/// `dir/.name.<pid>.nnz-tmp`: hidden, beside the target (same file system for rename).
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.nnz-tmp", std::process::id()))
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
