//! `nnz`: the command line (src/cli/).

fn main() -> std::process::ExitCode {
    nnz::cli::main_with(&[])
}
