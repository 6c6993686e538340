//! End-to-end comparison of nnz with the other compressors installed on this machine.
//!
//! For each file, it runs every nnz configuration and every known peer found on the
//! search path (xz, zstd, bzip2, brotli, 7z PPMd, zpaq, NNCP, lstm-compress, cmix,
//! paq8px), checks each round trip byte for byte, and writes to the output directory:
//!
//! - `results.csv`: one row per tool and file (columns in [`report::CSV_COLUMNS`]);
//! - `results.md`: the same as Markdown tables, one per file, best compression first;
//! - `plot.svg`: bits per byte against compression speed (log scale).
//!
//! Peers that are not installed are skipped with a note; a peer that fails, times out or
//! does not give back the input is reported as such in its row, and the run goes on.
//!
//! ```text
//! cargo build --release && cargo run --release --example compare -- \
//!     --out target/compare data/alice29.txt
//! cargo run --release --example compare -- --presets fast,small --peers xz,zpaq book1
//! cargo run --release --example compare -- --nnz-args 'o2=--model order2 --vocab 4096' FILE
//! ```
//!
//! `scripts/compare.sh` does the build and the run in one command. The nnz binary is
//! `--nnz-bin`, else `$NNZ_BIN`, else the `nnz` built next to this example
//! (`target/release/nnz` for a release build).

pub mod measure;
pub mod report;
pub mod tools;

use anyhow::{bail, Context, Result};
use clap::Parser;
use report::{Header, Row, Status};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tools::{Tool, DECODED, INPUT};

#[derive(Parser, Debug)]
#[command(name = "compare", about = "Compare nnz with the compressors installed here: size, speed, memory, round trip")]
pub struct Args {
    /// An nnz configuration as NAME=ARGS, ARGS going to `nnz compress` (split at
    /// whitespace); repeatable. Default: the list in tools.rs (presets fast and default, order2)
    #[arg(long = "nnz-args", value_name = "NAME=ARGS", allow_hyphen_values = true)]
    nnz_args: Vec<String>,
    /// nnz presets to measure, comma-separated: NAME stands for NAME=--preset NAME
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    presets: Vec<String>,
    /// Peers to try, comma-separated ids (default: all known); `none` for nnz alone
    #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
    peers: Option<Vec<String>>,
    /// Where peers are looked for, a PATH-style list (default: $PATH)
    #[arg(long, value_name = "DIRS")]
    search_path: Option<OsString>,
    /// The nnz binary (default: $NNZ_BIN, else the nnz next to this example)
    #[arg(long, value_name = "PATH")]
    nnz_bin: Option<PathBuf>,
    /// Output directory for results.md, results.csv and plot.svg
    #[arg(long, value_name = "DIR", default_value = "target/compare")]
    out: PathBuf,
    /// Seconds each compress or decompress step may take before it is killed
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    timeout: u64,
    /// List the known peers, where each was found, and exit
    #[arg(long)]
    list_peers: bool,
    /// Files to compress
    #[arg(required_unless_present = "list_peers")]
    files: Vec<PathBuf>,
}

fn main() {
    if let Err(e) = run_cli(std::env::args_os()) {
        eprintln!("compare: {e:#}");
        std::process::exit(1);
    }
}

/// Parses a command line (program name first) and runs the comparison. Returns the
/// rows it wrote.
pub fn run_cli<I, T>(args: I) -> Result<Vec<Row>>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let parsed = Args::try_parse_from(&args)?;
    run(&parsed, &command)
}

/// Runs the comparison `args` describe; `command` is shown in results.md.
pub fn run(args: &Args, command: &str) -> Result<Vec<Row>> {
    let search_path = args.search_path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
    let (peers, missing) = tools::find_peers(args.peers.as_deref(), &search_path)?;
    if args.list_peers {
        for p in &peers {
            println!("{:<14} {}", p.id, p.program.display());
        }
        for m in &missing {
            println!("{:<14} not found: {m}", "-");
        }
        return Ok(Vec::new());
    }

    let nnz_bin = nnz_binary(args)?;
    let mut specs: Vec<String> = args.nnz_args.clone();
    specs.extend(args.presets.iter().map(|p| format!("{p}=--preset {p}")));
    if specs.is_empty() {
        specs = tools::DEFAULT_NNZ.iter().map(|s| s.to_string()).collect();
    }
    let mut all: Vec<Tool> = specs.iter().map(|s| tools::nnz_tool(s, &nnz_bin)).collect::<Result<_>>()?;
    all.extend(peers);
    for m in &missing {
        eprintln!("compare: skipping {m}: not found on the search path");
    }

    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create '{}'", args.out.display()))?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut rows = Vec::new();
    for file in &args.files {
        let original = std::fs::metadata(file).with_context(|| format!("cannot read '{}'", file.display()))?.len();
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
        for tool in &all {
            let row = measure_one(tool, file, &name, original, timeout)?;
            eprintln!("{}", progress_line(&row));
            rows.push(row);
        }
    }

    let header = Header { command: command.to_string(), machine: machine(), timeout_s: args.timeout, missing };
    let out = &args.out;
    report::write_csv(&out.join("results.csv"), &rows)?;
    report::write_markdown(&out.join("results.md"), &rows, &header)?;
    report::write_plot(&out.join("plot.svg"), &rows)?;
    eprintln!("compare: wrote {0}/results.md, {0}/results.csv, {0}/plot.svg", out.display());
    Ok(rows)
}

/// `--nnz-bin`, `$NNZ_BIN`, or `nnz` in the directory above this example's.
fn nnz_binary(args: &Args) -> Result<PathBuf> {
    let exe = if cfg!(windows) { "nnz.exe" } else { "nnz" };
    let path = match (&args.nnz_bin, std::env::var_os("NNZ_BIN")) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            let me = std::env::current_exe().context("cannot locate this program")?;
            // target/<profile>/examples/compare -> target/<profile>/nnz
            match me.parent().and_then(Path::parent) {
                Some(dir) => dir.join(exe),
                None => PathBuf::from(exe),
            }
        }
    };
    if !path.is_file() {
        bail!(
            "nnz binary not found at '{}': build it with `cargo build --release` \
             (or pass --nnz-bin / set NNZ_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs one tool on one file in a fresh directory and checks its round trip.
///
/// The file is copied and compared without holding it in memory: a child's peak memory
/// as the kernel reports it includes this process's own at the time of the spawn.
fn measure_one(tool: &Tool, path: &Path, name: &str, original: u64, timeout: Duration) -> Result<Row> {
    let dir = tempfile::Builder::new().prefix("nnz-compare-").tempdir().context("cannot create a work directory")?;
    let work = dir.path();
    std::fs::copy(path, work.join(INPUT))
        .with_context(|| format!("cannot copy '{}' to {}", path.display(), work.display()))?;
    let mut row = Row {
        file: name.to_string(),
        original,
        tool: tool.label.clone(),
        kind: tool.kind.as_str(),
        compressed: None,
        compress: None,
        decompress: None,
        status: Status::Failed,
        note: String::new(),
    };

    let c = run_step(tool, &tool.compress, work, "compress", timeout)?;
    row.compress = Some((c.0.wall, c.0.peak_kb));
    if let Some((status, note)) = c.1 {
        (row.status, row.note) = (status, note);
        return Ok(row);
    }
    let packed = work.join(&tool.packed);
    match std::fs::metadata(&packed) {
        Ok(m) => row.compressed = Some(m.len()),
        Err(_) => {
            row.note = format!("compress: no output file {}", tool.packed);
            return Ok(row);
        }
    }
    // The decompressor must not find the original lying around.
    std::fs::remove_file(work.join(INPUT))?;

    let d = run_step(tool, &tool.decompress, work, "decompress", timeout)?;
    row.decompress = Some((d.0.wall, d.0.peak_kb));
    if let Some((status, note)) = d.1 {
        (row.status, row.note) = (status, note);
        return Ok(row);
    }
    match first_difference(path, &work.join(DECODED)) {
        Ok(None) => row.status = Status::Ok,
        Ok(Some((at, len))) => {
            row.status = Status::Mismatch;
            row.note = format!("decoded {len} bytes, first difference at byte {at}");
        }
        Err(e) => row.note = format!("decompress: {e:#}"),
    }
    Ok(row)
}

/// `None` when the files are identical, else the offset of the first differing byte
/// and the length of `decoded`.
fn first_difference(original: &Path, decoded: &Path) -> Result<Option<(u64, u64)>> {
    use std::io::{BufReader, Read};
    let open = |p: &Path| -> Result<BufReader<File>> {
        let f = File::open(p).with_context(|| format!("no output file '{}'", p.display()))?;
        Ok(BufReader::with_capacity(1 << 16, f))
    };
    let (mut a, mut b) = (open(original)?, open(decoded)?);
    let decoded_len = std::fs::metadata(decoded)?.len();
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if let Some(i) = x[..n.min(m)].iter().zip(&y[..m]).position(|(p, q)| p != q) {
            return Ok(Some((offset + i as u64, decoded_len)));
        }
        if n != m {
            return Ok(Some((offset + n.min(m) as u64, decoded_len)));
        }
        if n == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..])? {
                0 => break,
                k => filled += k,
            }
        }
        Ok(filled)
    }
}

/// Runs one step; the second value is set when it did not succeed.
fn run_step(
    tool: &Tool,
    step: &tools::Step,
    work: &Path,
    what: &str,
    timeout: Duration,
) -> Result<(measure::Measured, Option<(Status, String)>)> {
    let stderr_path = work.join(format!("{what}.stderr"));
    let mut cmd = Command::new(&tool.program);
    cmd.args(step.resolved_args(&tool.packed))
        .current_dir(work)
        .stdin(Stdio::null())
        .stderr(File::create(&stderr_path)?);
    match step.resolved_stdout(&tool.packed) {
        Some(f) => cmd.stdout(File::create(work.join(f))?),
        None => cmd.stdout(Stdio::null()),
    };
    let m = measure::run(&mut cmd, timeout)?;
    let failure = match m.end {
        measure::End::Exited(0) => None,
        measure::End::TimedOut => Some((Status::Timeout, format!("{what}: killed after {} s", timeout.as_secs()))),
        end => {
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            // The line that says what went wrong: the first one mentioning an error
            // (clap ends with a usage hint), else the last one.
            let last = stderr
                .lines()
                .find(|l| l.to_ascii_lowercase().contains("error"))
                .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()));
            let how = match end {
                measure::End::Exited(c) => format!("exit {c}"),
                measure::End::Signaled(s) => format!("signal {s}"),
                measure::End::TimedOut => unreachable!("handled above"),
            };
            Some((
                Status::Failed,
                match last {
                    Some(l) => format!("{what}: {how}: {}", l.trim()),
                    None => format!("{what}: {how}"),
                },
            ))
        }
    };
    Ok((m, failure))
}

fn progress_line(r: &Row) -> String {
    let bpb = r.bits_per_byte().map_or("-".into(), |b| format!("{b:.3} bpb"));
    let c = r.compress_speed().map_or("-".into(), |s| format!("c {s:.1} kB/s"));
    let d = r.decompress_speed().map_or("-".into(), |s| format!("d {s:.1} kB/s"));
    format!(
        "{:<16} {:<24} {bpb:>10}  {c:>16}  {d:>16}  {}{}",
        r.file,
        r.tool,
        r.status.as_str(),
        if r.note.is_empty() { String::new() } else { format!(" ({})", r.note) }
    )
}

/// One line on where the numbers were taken.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{}-{}, {model}, {cpus} logical CPUs; {}", std::env::consts::OS, std::env::consts::ARCH, utc_now())
}

/// The current UTC date and time, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}
