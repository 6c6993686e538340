//! What to run: the nnz configurations and the table of peer compressors.
//!
//! Every tool is run the same way: in a fresh work directory that holds a copy of the
//! input named [`INPUT`], the compress step must leave the compressed file `packed`
//! (the tool's [`Tool::packed`]); the input copy is then deleted, and the decompress step
//! must leave [`DECODED`], which is compared byte for byte with the original. Arguments
//! may use the placeholders `{in}`, `{packed}` and `{out}` for those three names. A step
//! whose tool writes to standard output names the file that receives it.

use anyhow::{bail, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Name of the input copy in the work directory.
pub const INPUT: &str = "data";
/// Name of the decoded file the decompress step must produce.
pub const DECODED: &str = "data.out";

/// nnz configurations measured when none is given on the command line, as `NAME=ARGS`.
/// Edit this list when presets change, or pass `--nnz-args`/`--presets`: no other code
/// change is needed. (`large` is left out: hours on a few MB.)
pub const DEFAULT_NNZ: &[&str] = &["fast=--preset fast", "default=--preset default", "order2=--model order2"];

/// One command of a tool: its arguments and, for tools that write to standard output,
/// the file that receives it.
#[derive(Clone, Debug)]
pub struct Step {
    pub args: Vec<String>,
    pub stdout: Option<String>,
}

impl Step {
    fn new(args: &[&str], stdout: Option<&str>) -> Step {
        Step { args: args.iter().map(|s| s.to_string()).collect(), stdout: stdout.map(str::to_string) }
    }

    /// The arguments with the placeholders replaced by the work-directory names.
    pub fn resolved_args(&self, packed: &str) -> Vec<String> {
        self.args.iter().map(|a| resolve(a, packed)).collect()
    }

    pub fn resolved_stdout(&self, packed: &str) -> Option<String> {
        self.stdout.as_deref().map(|s| resolve(s, packed))
    }
}

fn resolve(arg: &str, packed: &str) -> String {
    arg.replace("{in}", INPUT).replace("{packed}", packed).replace("{out}", DECODED)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Nnz,
    Peer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nnz => "nnz",
            Kind::Peer => "peer",
        }
    }
}

/// A compressor ready to run: a program found on disk and its two steps.
#[derive(Clone, Debug)]
pub struct Tool {
    /// Short identifier (`xz`, `7z-ppmd`, `nnz-order2`).
    pub id: String,
    /// What the tables show (`xz -9`, `nnz order2`).
    pub label: String,
    pub kind: Kind,
    pub program: PathBuf,
    /// Name of the compressed file in the work directory.
    pub packed: String,
    pub compress: Step,
    pub decompress: Step,
}

/// An nnz configuration given as `NAME=ARGS`, where ARGS (split at whitespace; no
/// quoting) go to `nnz compress` between `-q` and the file names.
pub fn nnz_tool(spec: &str, nnz_bin: &Path) -> Result<Tool> {
    let Some((name, args)) = spec.split_once('=') else {
        bail!("--nnz-args expects NAME=ARGS (e.g. 'order2=--model order2'), got '{spec}'");
    };
    let name = name.trim();
    if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
        bail!("--nnz-args '{spec}': NAME must be a word such as 'fast' before the '='");
    }
    let mut compress = vec!["compress", "-q"];
    compress.extend(args.split_whitespace());
    compress.extend(["{in}", "{packed}"]);
    Ok(Tool {
        id: format!("nnz-{name}"),
        label: format!("nnz {name}"),
        kind: Kind::Nnz,
        program: nnz_bin.to_path_buf(),
        packed: "data.nnz".to_string(),
        compress: Step::new(&compress, None),
        decompress: Step::new(&["decompress", "-q", "{packed}", "{out}"], None),
    })
}

/// A peer compressor as the table describes it.
struct PeerSpec {
    id: &'static str,
    label: &'static str,
    /// Program names tried in order; the first one on the search path is used.
    programs: &'static [&'static str],
    packed: &'static str,
    compress: (&'static [&'static str], Option<&'static str>),
    decompress: (&'static [&'static str], Option<&'static str>),
}

/// The peers, strongest settings their users commonly pick. Tools that print progress
/// to standard output get it sent to a log file (`*.log`), which is not measured.
const PEERS: &[PeerSpec] = &[
    PeerSpec {
        id: "xz",
        label: "xz -9",
        programs: &["xz"],
        packed: "data.xz",
        compress: (&["-9", "-c", "{in}"], Some("{packed}")),
        decompress: (&["-d", "-c", "{packed}"], Some("{out}")),
    },
    PeerSpec {
        id: "zstd",
        label: "zstd -19",
        programs: &["zstd"],
        packed: "data.zst",
        compress: (&["-q", "-19", "-c", "{in}"], Some("{packed}")),
        decompress: (&["-q", "-d", "-c", "{packed}"], Some("{out}")),
    },
    PeerSpec {
        id: "bzip2",
        label: "bzip2 -9",
        programs: &["bzip2"],
        packed: "data.bz2",
        compress: (&["-9", "-c", "{in}"], Some("{packed}")),
        decompress: (&["-d", "-c", "{packed}"], Some("{out}")),
    },
    PeerSpec {
        id: "brotli",
        label: "brotli -q 11",
        programs: &["brotli"],
        packed: "data.br",
        compress: (&["-q", "11", "-c", "{in}"], Some("{packed}")),
        decompress: (&["-d", "-c", "{packed}"], Some("{out}")),
    },
    PeerSpec {
        id: "7z-ppmd",
        label: "7z PPMd -mx=9",
        programs: &["7z", "7za", "7zz"],
        packed: "data.7z",
        compress: (&["a", "-bd", "-m0=PPMd", "-mx=9", "{packed}", "{in}"], Some("7z-c.log")),
        decompress: (&["e", "-bd", "-so", "{packed}"], Some("{out}")),
    },
    PeerSpec {
        id: "zpaq",
        label: "zpaq -m5",
        programs: &["zpaq"],
        packed: "data.zpaq",
        compress: (&["a", "{packed}", "{in}", "-m5"], Some("zpaq-c.log")),
        // `-to` renames the one stored file on extraction.
        decompress: (&["x", "{packed}", "{in}", "-to", "{out}"], Some("zpaq-d.log")),
    },
    PeerSpec {
        id: "nncp",
        label: "nncp (default, -T 1)",
        programs: &["nncp"],
        packed: "data.nncp",
        compress: (&["-T", "1", "c", "{in}", "{packed}"], Some("nncp-c.log")),
        decompress: (&["-T", "1", "d", "{packed}", "{out}"], Some("nncp-d.log")),
    },
    PeerSpec {
        id: "lstm-compress",
        label: "lstm-compress",
        programs: &["lstm-compress"],
        packed: "data.lstm",
        compress: (&["-c", "{in}", "{packed}"], Some("lstm-c.log")),
        decompress: (&["-d", "{packed}", "{out}"], Some("lstm-d.log")),
    },
    PeerSpec {
        id: "cmix",
        label: "cmix",
        programs: &["cmix"],
        packed: "data.cmix",
        compress: (&["-c", "{in}", "{packed}"], Some("cmix-c.log")),
        decompress: (&["-d", "{packed}", "{out}"], Some("cmix-d.log")),
    },
    PeerSpec {
        id: "paq8px",
        label: "paq8px -8L",
        programs: &["paq8px"],
        packed: "data.paq8px",
        compress: (&["-8L", "{in}", "{packed}"], Some("paq8px-c.log")),
        decompress: (&["-d", "{packed}", "{out}"], Some("paq8px-d.log")),
    },
];

/// Identifiers of all known peers, in table order.
pub fn peer_ids() -> Vec<&'static str> {
    PEERS.iter().map(|p| p.id).collect()
}

/// The peers whose ids are in `wanted` (all of them when `None`), split into those found
/// on `search_path` (a `PATH`-style list) and the labels of those that were not.
pub fn find_peers(wanted: Option<&[String]>, search_path: &OsStr) -> Result<(Vec<Tool>, Vec<String>)> {
    if let Some(ids) = wanted {
        for id in ids {
            if id != "none" && !PEERS.iter().any(|p| p.id == id) {
                bail!("unknown peer '{id}'; known peers: {}", peer_ids().join(", "));
            }
        }
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for spec in PEERS {
        if wanted.is_some_and(|ids| !ids.iter().any(|id| id == spec.id)) {
            continue;
        }
        match spec.programs.iter().find_map(|p| which(p, search_path)) {
            Some(program) => found.push(Tool {
                id: spec.id.to_string(),
                label: spec.label.to_string(),
                kind: Kind::Peer,
                program,
                packed: spec.packed.to_string(),
                compress: Step::new(spec.compress.0, spec.compress.1),
                decompress: Step::new(spec.decompress.0, spec.decompress.1),
            }),
            None => missing.push(format!("{} (`{}`)", spec.label, spec.programs.join("`/`"))),
        }
    }
    Ok((found, missing))
}

/// The first executable file called `name` in the directories of `search_path`.
pub fn which(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file() || p.with_extension("exe").is_file()
}
