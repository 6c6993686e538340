//! `nnzcat`: `nnz -dc`, as `xzcat` is `xz -dc`: decompress to standard output.

fn main() -> std::process::ExitCode {
    nnz::cli::main_with(&["-dc"])
}
