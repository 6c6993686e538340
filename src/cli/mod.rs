//! The `nnz` command: arguments, files and streams, progress. The library's engine
//! does the work; this module only moves bytes and reports.
//!
//! A command line becomes a list of jobs, one per input (`plan`), each with its own
//! output. A job that fails prints one line naming its file and the others go on, as
//! gzip, xz and zstd do; the exit status is then 1.

pub mod args;
pub mod io;
pub mod list;
pub mod progress;

use crate::engine;
use anyhow::{bail, Context, Result};
use args::{Cli, Command, CommonArgs, CompressArgs, Op};
use clap::{CommandFactory, Parser};
use io::Sink;
use progress::Bar;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The whole program: `nnz`, and `unnz` and `nnzcat`, which are `nnz` with `prefix`
/// (`-d`, `-dc`) before the arguments given. Usage errors exit with status 2, other
/// errors with one line on standard error and status 1.
pub fn main_with(prefix: &[&str]) -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let at = 1.min(argv.len());
    argv.splice(at..at, prefix.iter().map(std::ffi::OsString::from));
    let cli = Cli::parse_from(argv);
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS, // the reader went away: not our error
        Err(err) => {
            eprintln!("nnz: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    io::remove_temp_files_on_interrupt();
    // A bad NNZ_KERNEL is a clear error now, not a surprise in the middle of a file.
    crate::kernels::select_from_env()?;
    crate::device::select_from_env()?;
    let Some(command) = cli.command else {
        return match cli.op.op() {
            Op::Compress => compress_all(&cli.args),
            Op::List => list_all(&cli.args.common.inputs, cli.args.common.recursive),
            op => decode_all(&cli.args.common, op),
        };
    };
    match command {
        Command::Compress(args) => compress_all(&args),
        Command::Decompress(args) => decode_all(&args, Op::Decompress),
        Command::Test(args) => decode_all(&args, Op::Test),
        Command::List(args) => list_all(&args.files, args.recursive),
        Command::Info { files } => {
            // Written with write_all, not println!: a reader that goes away (`nnz info f |
            // head -1`) is a broken pipe error, which main_with treats as a quiet end.
            let mut stdout = std::io::stdout().lock();
            for (i, f) in files.iter().enumerate() {
                let sep = if i > 0 { "\n" } else { "" };
                stdout.write_all(format!("{sep}{}", list::info(f)?).as_bytes())?;
            }
            stdout.flush()?;
            Ok(())
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "nnz", &mut out);
            write_stdout(&out)
        }
        Command::Manpage => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// One input and where its output goes. `input` `None` is standard input.
#[derive(Debug, PartialEq, Eq)]
struct Job {
    input: Option<PathBuf>,
    sink: Sink,
    /// The output name was derived from the input's (not given by -o, -c or a path).
    derived: bool,
}

/// Turns the paths of a command line into jobs. `op` is Compress, Decompress or Test.
fn plan(c: &CommonArgs, op: Op) -> Result<Vec<Result<Job>>> {
    let compressing = op == Op::Compress;
    let dash = |p: &Path| p == Path::new("-");
    let stdin_or = |p: &Path| (!dash(p)).then(|| p.to_path_buf());
    // The two-path form of earlier versions: INPUT OUTPUT, recognised where it cannot be
    // two inputs (a compressed file's name as the second of `compress`, a plain name as
    // the second of `decompress`).
    if let [a, b] = &c.inputs[..] {
        let names_output = if compressing {
            dash(b) || io::has_suffix(b)
        } else {
            op == Op::Decompress && (dash(a) || io::has_suffix(a)) && (dash(b) || !io::has_suffix(b))
        };
        if names_output && c.output.is_none() && !c.stdout {
            let sink = if dash(b) { Sink::Stdout } else { Sink::File(b.clone()) };
            return Ok(vec![Ok(Job { input: stdin_or(a), sink, derived: false })]);
        }
    }
    let mut inputs = Vec::new();
    for p in &c.inputs {
        if c.recursive && p.is_dir() {
            walk(p, compressing, &mut inputs).with_context(|| format!("cannot read '{}'", p.display()))?;
        } else {
            inputs.push(stdin_or(p));
        }
    }
    if c.inputs.is_empty() {
        inputs.push(None);
    }
    if inputs.iter().filter(|i| i.is_none()).count() > 1 {
        bail!("standard input (-) can be read only once");
    }
    if c.output.is_some() && inputs.len() > 1 {
        bail!("-o names one output, but there are {} inputs: use -c to concatenate, or drop -o", inputs.len());
    }
    if c.rm && (c.stdout || op == Op::Test || inputs.contains(&None) || c.output.as_deref().is_some_and(dash)) {
        bail!("--rm removes an input only once its output file is complete: it cannot be used with standard output");
    }
    let explicit = c.output.is_some() || c.stdout;
    let job = |input: Option<PathBuf>| -> Result<Job> {
        if let Some(p) = input.as_deref().filter(|p| p.is_dir()) {
            bail!("'{}' is a directory: use -r for the files under it", p.display());
        }
        let sink = if op == Op::Test {
            Sink::Discard
        } else {
            io::resolve_sink(input.as_deref(), &c.output, c.stdout, compressing)?
        };
        Ok(Job { derived: !explicit && input.is_some(), input, sink })
    };
    Ok(inputs.into_iter().map(job).collect())
}

/// The files under `dir`, in name order: for compression all but `.nnz` files, for
/// decompression only `.nnz` files. Symbolic links to directories are not followed.
fn walk(dir: &Path, compressing: bool, out: &mut Vec<Option<PathBuf>>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type()?;
        if kind.is_dir() {
            walk(&path, compressing, out)?;
        } else if kind.is_file() && io::has_suffix(&path) != compressing && !io::is_temp(&path) {
            out.push(Some(path));
        }
    }
    Ok(())
}

/// Runs every job; a failure prints its line and the rest go on.
fn run_jobs(jobs: Vec<Result<Job>>, mut one: impl FnMut(&Job) -> Result<()>) -> Result<()> {
    let mut run = |job: &Result<Job>| match job {
        Ok(job) => one(job),
        Err(err) => Err(anyhow::anyhow!("{err:#}")),
    };
    if jobs.len() == 1 {
        return run(&jobs[0]);
    }
    let mut failed = 0;
    for job in &jobs {
        if let Err(err) = run(job) {
            if is_broken_pipe(&err) {
                return Err(err);
            }
            eprintln!("nnz: {err:#}");
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => bail!("{n} of {} files failed", jobs.len()),
    }
}

/// Checks that apply before a job's work starts: where the data comes from.
fn check_input(job: &Job, c: &CommonArgs) -> Result<()> {
    match &job.input {
        None if std::io::stdin().is_terminal() && !c.force => {
            bail!("standard input is a terminal: name a file, pipe the data in, or use -f")
        }
        Some(p) if job.derived && !c.force && p.exists() && !p.is_dir() && !io::is_regular(p) => {
            bail!(
                "'{}' is not a regular file (a FIFO or a device): use -c or -o to name the output, or -f",
                p.display()
            )
        }
        _ => Ok(()),
    }
}

/// `--rm`: the input goes once its output is in place; never standard input or a file
/// that is not a regular file.
fn remove_input(job: &Job, c: &CommonArgs) -> Result<()> {
    if let (true, Some(p), Sink::File(_)) = (c.rm, &job.input, &job.sink) {
        if io::is_regular(p) {
            std::fs::remove_file(p).with_context(|| format!("cannot remove '{}'", p.display()))?;
        }
    }
    Ok(())
}

/// `--device`, over `NNZ_DEVICE`.
fn select_device(c: &CommonArgs) -> Result<()> {
    if let Some(name) = &c.device {
        crate::device::select(crate::device::parse(name)?);
    }
    Ok(())
}

fn compress_all(args: &CompressArgs) -> Result<()> {
    let c = &args.common;
    select_device(c)?;
    let opts = args.options()?;
    if crate::device::active() == crate::device::Device::Cuda && args.model != args::ModelArg::Transformer && !c.quiet {
        eprintln!("nnz: note: only the Transformer (--model transformer) runs on a GPU; this model runs on the CPU");
    }
    run_jobs(plan(c, Op::Compress)?, |job| compress(job, args, &opts))
}

fn compress(job: &Job, args: &CompressArgs, opts: &engine::CompressOptions) -> Result<()> {
    let c = &args.common;
    let input = job.input.as_deref();
    check_input(job, c)?;
    io::check_sink(&job.sink, input, c.force, true)?;
    let (mut reader, size) = io::open_input(input)?;
    let start = Instant::now();
    let bar = Bar::new(size, c.quiet);
    bar.phase("reading, building dictionary");
    let mut out = io::Output::create(&job.sink, c.force, input)?;
    let totals = engine::compress_stream(&mut reader, &mut out, opts, args.block_size, c.thread_count(), &mut |p| {
        bar.update(p)
    })?;
    out.commit()?;
    bar.finish();
    remove_input(job, c)?;
    if shows_summary(c) {
        let (orig, comp) = (totals.original_bytes, totals.compressed_bytes);
        let pct = if orig == 0 { 0.0 } else { comp as f64 * 100.0 / orig as f64 };
        eprintln!(
            "{} : {pct:.2}% ({orig} => {comp} bytes, {}) {:.3} bits/byte, {}",
            input_name(input),
            sink_name(&job.sink),
            bits_per_byte(comp, orig),
            speed(orig, start)
        );
    }
    if args.stats {
        print_stats(&totals, start.elapsed().as_secs_f64());
    }
    Ok(())
}

fn decode_all(c: &CommonArgs, op: Op) -> Result<()> {
    select_device(c)?;
    run_jobs(plan(c, op)?, |job| decode(job, c, op))
}

fn decode(job: &Job, c: &CommonArgs, op: Op) -> Result<()> {
    let input = job.input.as_deref();
    check_input(job, c)?;
    io::check_sink(&job.sink, input, c.force, false)?;
    let (mut reader, _) = io::open_input(input)?;
    let name = input.map_or("standard input".to_string(), |p| format!("'{}'", p.display()));
    let start = Instant::now();
    let bar = Bar::new(None, c.quiet);
    let mut out = io::Output::create(&job.sink, c.force, input)?;
    let totals = engine::decompress_stream(&mut reader, &mut out, c.thread_count(), &mut |p| bar.update(p))
        .with_context(|| format!("cannot decompress {name}"))?;
    out.commit()?;
    bar.finish();
    remove_input(job, c)?;
    if shows_summary(c) {
        let what = if op == Op::Test { "OK, " } else { "" };
        eprintln!(
            "{} : {what}{} bytes, {}",
            input_name(input),
            totals.original_bytes,
            speed(totals.original_bytes, start)
        );
    }
    Ok(())
}

fn list_all(files: &[PathBuf], recursive: bool) -> Result<()> {
    if files.is_empty() {
        bail!("-l lists .nnz files: name at least one");
    }
    let c = CommonArgs { inputs: files.to_vec(), recursive, ..CommonArgs::default() };
    let mut paths = Vec::new();
    for p in &c.inputs {
        if recursive && p.is_dir() {
            walk(p, false, &mut paths).with_context(|| format!("cannot read '{}'", p.display()))?;
        } else {
            paths.push(Some(p.clone()));
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(format!("{}\n", list::LIST_HEADING).as_bytes())?;
    let (mut total, mut failed, mut listed) =
        (list::Listed { frames: 0, compressed: 0, original: 0, model: String::new() }, 0, 0);
    let mut models = Vec::new();
    for path in paths.iter().flatten() {
        match list::listed(path) {
            Ok(l) => {
                stdout.write_all(format!("{}\n", list::list_row(&l, &path.display().to_string())).as_bytes())?;
                total.frames += l.frames;
                total.compressed += l.compressed;
                total.original += l.original;
                if !models.contains(&l.model) {
                    models.push(l.model);
                }
                listed += 1;
            }
            Err(err) if paths.len() == 1 => return Err(err),
            Err(err) => {
                stdout.flush()?;
                eprintln!("nnz: {err:#}");
                failed += 1;
            }
        }
    }
    if listed > 1 {
        total.model = if models.len() == 1 { models.remove(0) } else { "several".to_string() };
        let rule = "-".repeat(list::LIST_HEADING.len());
        stdout.write_all(format!("{rule}\n{}\n", list::list_row(&total, &format!("{listed} files"))).as_bytes())?;
    }
    stdout.flush()?;
    match failed {
        0 => Ok(()),
        n => bail!("{n} of {} files failed", paths.len()),
    }
}

/// zstd's rule: a line per file unless -q; on a terminal, or with -v.
fn shows_summary(c: &CommonArgs) -> bool {
    !c.quiet && (c.verbose || std::io::stderr().is_terminal())
}

fn input_name(input: Option<&Path>) -> String {
    input.map_or("stdin".to_string(), |p| p.display().to_string())
}

fn sink_name(sink: &Sink) -> String {
    match sink {
        Sink::File(p) => p.display().to_string(),
        Sink::Stdout => "stdout".to_string(),
        Sink::Discard => "nowhere".to_string(),
    }
}

fn speed(bytes: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64();
    format!("{secs:.1} s, {:.1} kB/s", bytes as f64 / 1000.0 / secs.max(1e-9))
}

/// `--stats`: the numbers a tuner needs, on standard error.
fn print_stats(s: &engine::Stats, total_secs: f64) {
    let bpb = |bytes: u64| bits_per_byte(bytes, s.original_bytes);
    let header_bytes = s.compressed_bytes - s.payload_bytes - s.dictionary_bytes;
    eprintln!("frames            {} ({} stored as is)", s.frames, s.stored_frames);
    eprintln!("original bytes    {}", s.original_bytes);
    eprintln!("compressed bytes  {} ({:.4} bits/byte)", s.compressed_bytes, bpb(s.compressed_bytes));
    eprintln!("  payload         {} ({:.4} bits/byte)", s.payload_bytes, bpb(s.payload_bytes));
    eprintln!("  dictionary      {} ({:.4} bits/byte)", s.dictionary_bytes, bpb(s.dictionary_bytes));
    eprintln!("  headers, stored {header_bytes} ({:.4} bits/byte)", bpb(header_bytes));
    let per_symbol = if s.symbols > 0 { s.original_bytes as f64 / s.symbols as f64 } else { 0.0 };
    eprintln!("symbols           {} ({per_symbol:.3} bytes/symbol)", s.symbols);
    eprintln!("time              {total_secs:.3} s");
    eprintln!("  tokenizer       {:.3} s", s.tokenizer_secs);
    eprintln!("  model           {:.3} s", s.model_secs);
    for (part, secs) in &s.model_breakdown {
        eprintln!("    {part:<13} {secs:.3} s");
    }
    eprintln!("  coder           {:.3} s", s.coder_secs);
}

pub(crate) fn bits_per_byte(compressed: u64, original: u64) -> f64 {
    if original == 0 {
        0.0
    } else {
        compressed as f64 * 8.0 / original as f64
    }
}
