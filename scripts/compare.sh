#!/usr/bin/env bash
# Builds nnz and the comparison example in release mode, then compares nnz with the
# compressors installed here. All arguments go to the example (see --help); relative
# paths are taken from the current directory.
#
#   scripts/compare.sh --out target/compare data/alice29.txt
#   scripts/compare.sh --presets fast --peers xz,zpaq,nncp --timeout 900 FILE...
#
# Peers are looked for on PATH; extend it (or pass --search-path) for private builds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin nnz --example compare
exec "$target/release/examples/compare" --nnz-bin "$target/release/nnz" "$@"
