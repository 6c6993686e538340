//! `unnz`: `nnz -d`, as `unxz` is `xz -d`.

fn main() -> std::process::ExitCode {
    nnz::cli::main_with(&["-d"])
}
