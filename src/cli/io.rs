//! Where bytes come from and go to: files, standard streams, and atomic output.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

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

pub fn read_input(input: Option<&Path>) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    match input {
        None => {
            io::stdin()
                .lock()
                .read_to_end(&mut data)
                .context("cannot read standard input")?;
        }
        Some(path) => {
            data = fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
        }
    }
    Ok(data)
}

/// Resolves the output of `compress` (`compressing`) or `decompress` the way zstd does.
pub fn resolve_sink(
    input: Option<&Path>,
    output: &Option<PathBuf>,
    stdout: bool,
    compressing: bool,
) -> Result<Sink> {
    if stdout {
        return Ok(Sink::Stdout);
    }
    if let Some(out) = output {
        return Ok(if out == Path::new("-") {
            Sink::Stdout
        } else {
            Sink::File(out.clone())
        });
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
                bail!(
                    "'{}' already exists: use -f to overwrite it",
                    path.display()
                );
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

/// Writes `data` to `sink`. A file is written to a temporary name beside it and renamed
/// into place only when complete, so a failure never leaves a partial output. It gets
/// the permissions of the input file, when there is one (as gzip and zstd do).
pub fn write_output(sink: &Sink, data: &[u8], force: bool, input: Option<&Path>) -> Result<()> {
    match sink {
        Sink::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(data)
                .context("cannot write standard output")?;
            out.flush().context("cannot write standard output")?;
        }
        Sink::File(path) => {
            let tmp = temp_path(path);
            let result = (|| -> io::Result<()> {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                f.write_all(data)?;
                if let Some(meta) = input.and_then(|i| fs::metadata(i).ok()) {
                    f.set_permissions(meta.permissions())?;
                }
                f.sync_all()?;
                drop(f);
                if !force && fs::symlink_metadata(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "appeared while nnz was working",
                    ));
                }
                fs::rename(&tmp, path)
            })();
            if let Err(e) = result {
                let _ = fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write '{}'", path.display()));
            }
        }
    }
    Ok(())
}

/// `dir/.name.<pid>.nnz-tmp`: hidden, beside the target (same file system for rename).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.nnz-tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_zstd() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            resolve_sink(Some(Path::new("a.txt")), &None, false, true).unwrap(),
            Sink::File("a.txt.nnz".into())
        );
        assert_eq!(
            resolve_sink(Some(Path::new("a.txt.nnz")), &None, false, false).unwrap(),
            Sink::File("a.txt".into())
        );
        assert!(resolve_sink(Some(Path::new("a.txt")), &None, false, false).is_err());
        assert!(resolve_sink(Some(Path::new(".nnz")), &None, false, false).is_err());
        assert_eq!(
            resolve_sink(None, &None, false, true).unwrap(),
            Sink::Stdout
        );
        assert_eq!(
            resolve_sink(Some(Path::new("a")), &p("-"), false, true).unwrap(),
            Sink::Stdout
        );
        assert_eq!(
            resolve_sink(Some(Path::new("a")), &p("b"), true, true).unwrap(),
            Sink::Stdout
        );
        assert_eq!(
            resolve_sink(None, &p("b"), false, true).unwrap(),
            Sink::File("b".into())
        );
    }
}
